//! `open(range)` as a [`Source`]: one part of a ranged source (`Builder::spawn_ranged`), read by
//! the sequential fill (`0..len`) or by an on-demand fetch. The retrying is
//! [`Feed`](super::Feed)'s; skipping past bytes already present is the fill's.

use super::Source;
use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;

/// The caller's `open`, shared by the fill and every fetch.
pub(crate) type OpenRange = dyn Fn(Range<u64>) -> io::Result<Box<dyn Read + Send>> + Send + Sync;

/// Reads `[start, end)` of the source: `open(start + offset..end)` at each (re-)open. More than
/// `end - start` bytes is never read: the caller's reads never ask past the part's end.
pub(crate) struct RangedPart {
    open: Arc<OpenRange>,
    start: u64,
    end: u64,
    current: Option<Box<dyn Read + Send>>,
}

impl RangedPart {
    pub(crate) fn new(open: Arc<OpenRange>, range: Range<u64>) -> Self {
        Self {
            open,
            start: range.start,
            end: range.end,
            current: None,
        }
    }
}

impl Source for RangedPart {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.current {
            Some(reader) => reader.read(buf),
            None => Err(io::Error::other("read before open")),
        }
    }

    fn resumable(&self) -> bool {
        true
    }

    fn open(&mut self, offset: u64) -> io::Result<()> {
        self.current = None;
        let at = self.start + offset;
        self.current = Some((self.open)(at..self.end)?);
        Ok(())
    }
}
