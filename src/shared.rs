//! The state every handle, every `Bytes` and the filler share.

use crate::cancel::Cancel;
use crate::pace::Pace;
use crate::ranged::{OpenRange, Ranged};
use crate::settings::Settings;
use crate::storage::{Fixed, Storage};
use crate::wait_async::MarkHandle;
use crate::watermark::Watermark;
use std::io;
use std::sync::Arc;

/// The watermark, the storage behind it, the settings they were made with, and cancellation.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) mark: Watermark,
    pub(crate) storage: Storage,
    pub(crate) settings: Settings,
    /// Set when the last `StreamCache`/`Reader` drops; the filler stops at its next read.
    pub(crate) cancel: Cancel,
    /// A ranged source's storage, `open` and fetches (`Builder::spawn_ranged`).
    pub(crate) ranged: Option<Ranged>,
    /// How often the filler publishes: how long a reader that caught up spins.
    pub(crate) pace: Pace,
    /// A ranged stream in a shared entry of `cache_dir` (`src/dir/`). Declared after
    /// `storage`: its pointers are into the storage's mapping, which outlives it.
    pub(crate) entry: Option<crate::dir::Entry>,
}

impl Shared {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            mark: Watermark::new(),
            storage: Storage::new(),
            settings,
            cancel: Cancel::default(),
            ranged: None,
            pace: Pace::default(),
            entry: None,
        }
    }

    /// For a ranged source of `len` bytes: its storage laid out now, for all of it.
    ///
    /// # Errors
    ///
    /// As [`Fixed::new`]: a spill file that cannot be reserved for `len`.
    pub(crate) fn ranged(settings: Settings, len: u64, open: Arc<OpenRange>) -> io::Result<Self> {
        let mut shared = Self::new(settings);
        shared.mark = Watermark::ranged(len);
        let fixed = match (&shared.settings.cache_dir, &shared.settings.cache_key) {
            // The documented fallback where entries cannot be shared safely: a private cache.
            (Some(dir), Some(key)) if crate::dir::usable(dir) => {
                let wanted = crate::dir::Wanted {
                    dir,
                    key: key.as_bytes(),
                    validator: shared
                        .settings
                        .validator
                        .as_deref()
                        .unwrap_or("")
                        .as_bytes(),
                    len,
                    cache_limit: shared.settings.cache_limit,
                };
                let (entry, map, data_at, role) = crate::dir::open_entry(&wanted)?;
                let fixed = Fixed::in_entry(&shared.storage, map, data_at, len);
                if role == crate::dir::Role::Writer {
                    entry.begin_writing(&shared.mark);
                } else {
                    // What the entry has is readable before the first read.
                    entry.mirror(&shared.mark);
                }
                shared.entry = Some(entry);
                fixed
            }
            _ => Fixed::new(&shared.storage, &shared.settings, len)?,
        };
        let defer_fill = shared.settings.fetch.defer_fill;
        shared.ranged = Some(Ranged::new(fixed, open, defer_fill));
        Ok(shared)
    }

    /// `[start, end)` if it is all present, without waiting.
    #[inline]
    pub(crate) fn published(&self, start: u64, end: u64) -> Option<&[u8]> {
        if start > end {
            return None;
        }
        if end > self.mark.available() {
            self.catch_up(); // A reader of a shared entry: the writer's last publishes.
        }
        if end <= self.mark.available() || self.mark.run_end(start).is_some_and(|run| run >= end) {
            // SAFETY: `[start, end)` is present: below the mark just loaded with Acquire, or
            // in an island published under the lock `run_end` took (invariant 1: those bytes
            // are written, stable, and covered by the newest region).
            Some(unsafe { self.storage.slice(start, end) })
        } else {
            None
        }
    }

    /// On a ranged stream, the part of `[start, end)` to wait for next: from its first missing
    /// byte to the end of whatever will bring it (a fetch's claim, else the next byte), after
    /// asking for fetches of it and of the missing parts after it (up to `max_fetches` at
    /// once) when it is far ahead of the mark. `None` when nothing is missing, or the stream
    /// is not ranged.
    pub(crate) fn next_missing(self: &Arc<Self>, start: u64, end: u64) -> Option<(u64, u64)> {
        self.ranged.as_ref()?;
        if end <= self.mark.available() {
            return None; // In the prefix: no lock, as for any stream (a read keeping pace).
        }
        let missing = self.mark.first_missing(start, end)?;
        crate::ranged::prefetch_far(self, missing, end);
        let until = self
            .mark
            .claimed_until(missing)
            .unwrap_or(missing + 1)
            .min(end);
        Some((missing, until))
    }

    /// A writer of a ranged stream published `[start, end)` (as [`Watermark::publish_range`]);
    /// in a shared entry, the blocks it completes go into the span map for the other
    /// processes.
    pub(crate) fn publish_range(&self, me: crate::ranges::WriterId, start: u64, end: u64) {
        self.mark.publish_range(me, start, end);
        if let Some(entry) = &self.entry {
            entry.published(&self.mark, start, end);
        }
    }

    /// Waits until all of `[start, end)` is present (or the stream ends, fails, or `deadline`
    /// passes), as [`Watermark::wait_range`]. On a ranged stream, a byte far enough ahead of
    /// the mark is fetched at once, and so is each next missing one.
    pub(crate) fn wait_range(
        self: &Arc<Self>,
        start: u64,
        end: u64,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<Option<u64>> {
        while let Some((missing, until)) = self.next_missing(start, end) {
            match self.wait_marked(missing, until, deadline)? {
                None => return Ok(None),
                Some(run) if run <= missing => break, // The stream ends before.
                Some(_) => {}
            }
        }
        self.wait_marked(start, end, deadline)
    }

    /// [`Watermark::wait_range`], or in a reader of a shared entry, the entry's own wait: the
    /// thread sleeps on the writer's futex and mirrors what it publishes (`src/dir/`).
    pub(crate) fn wait_marked(
        &self,
        start: u64,
        end: u64,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<Option<u64>> {
        if let Some(entry) = self.entry.as_ref().filter(|entry| entry.is_reader()) {
            if let Some(waited) = entry.wait(&self.mark, start, end, deadline) {
                return waited;
            }
        }
        self.mark.wait_range(start, end, deadline)
    }

    /// In a reader of a shared entry, the writer's progress mirrored into the watermark first
    /// (one load when there is none): before any look at what is present.
    #[inline]
    pub(crate) fn catch_up(&self) {
        if let Some(entry) = &self.entry {
            entry.catch_up(&self.mark);
        }
    }
}

impl MarkHandle for Arc<Shared> {
    fn mark(&self) -> &Watermark {
        &self.mark
    }

    fn parked(&self) {
        if let Some(entry) = &self.entry {
            entry.parked();
        }
    }
}
