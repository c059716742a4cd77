//! The state every handle, every `Bytes` and the filler share.

use crate::storage::Storage;
use crate::watermark::Watermark;
use std::sync::atomic::{AtomicBool, Ordering};

/// The watermark and the storage behind it, plus the cancellation flag.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) mark: Watermark,
    pub(crate) storage: Storage,
    pub(crate) expected_len: Option<u64>,
    /// Set when the last `StreamCache`/`Reader` drops; the filler stops at its next chunk.
    cancelled: AtomicBool,
}

impl Shared {
    pub(crate) fn new(expected_len: Option<u64>) -> Self {
        Self {
            mark: Watermark::new(),
            storage: Storage::new(),
            expected_len,
            cancelled: AtomicBool::new(false),
        }
    }

    /// `[start, end)` if it is all published, without waiting.
    #[inline]
    pub(crate) fn published(&self, start: u64, end: u64) -> Option<&[u8]> {
        if start <= end && end <= self.mark.available() {
            // SAFETY: `end` is at or below the mark just loaded with Acquire (invariant 1:
            // those bytes are written, stable, and covered by the newest region).
            Some(unsafe { self.storage.slice(start, end) })
        } else {
            None
        }
    }

    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}
