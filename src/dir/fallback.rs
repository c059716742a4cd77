//! Where there is no `flock` (Windows): the documented fallback of `Builder::cache_dir` is a
//! private cache, as without it. Nothing here is ever made: [`open_entry`] is never called
//! (`Shared::ranged` asks [`usable`] first), and an [`Entry`] cannot exist.

use crate::shared::Shared;
use crate::watermark::Watermark;
use memmap2::MmapRaw;
use std::io;
use std::sync::Arc;

/// A shared entry's block (never used here).
pub(crate) const BLOCK: u64 = 1 << 16;

#[path = "wanted.rs"]
#[allow(dead_code)] // Taken, never used: there is no entry here.
mod wanted;
pub(crate) use wanted::{Role, Wanted};

/// Never: there are no shared entries here.
pub(crate) fn usable(_dir: &std::path::Path) -> bool {
    false
}

/// Uninhabited: no entry on this platform.
#[derive(Debug)]
pub(crate) enum Entry {}

impl Entry {
    pub(crate) fn is_reader(&self) -> bool {
        match *self {}
    }
    pub(crate) fn post(&self, _offset: u64) {
        match *self {}
    }
    pub(crate) fn published(&self, _mark: &Watermark, _start: u64, _end: u64) {
        match *self {}
    }
    pub(crate) fn begin_writing(&self, _mark: &Watermark) {
        match *self {}
    }
    pub(crate) fn mirror(&self, _mark: &Watermark) {
        match *self {}
    }
    pub(crate) fn catch_up(&self, _mark: &Watermark) {
        match *self {}
    }
    pub(crate) fn wait(
        &self,
        _mark: &Watermark,
        _start: u64,
        _target: u64,
        _deadline: Option<std::time::Instant>,
    ) -> Option<io::Result<Option<u64>>> {
        match *self {}
    }
    pub(crate) fn parked(&self) {
        match *self {}
    }
    pub(crate) fn kick(&self) {
        match *self {}
    }
    pub(crate) fn wake_waiters(&self) {
        match *self {}
    }
}

pub(crate) fn open_entry(_wanted: &Wanted<'_>) -> io::Result<(Entry, MmapRaw, u64, Role)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "shared cache entries need flock (unix)",
    ))
}

pub(crate) fn run(shared: &Arc<Shared>) -> io::Result<()> {
    match *shared.entry.as_ref().expect("never: no entry here") {}
}
