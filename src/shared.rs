//! The state every handle, every `Bytes` and the filler share.

use crate::cancel::Cancel;
use crate::settings::Settings;
use crate::storage::Storage;
use crate::wait_async::MarkHandle;
use crate::watermark::Watermark;
use std::sync::Arc;

/// The watermark, the storage behind it, the settings they were made with, and cancellation.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) mark: Watermark,
    pub(crate) storage: Storage,
    pub(crate) settings: Settings,
    /// Set when the last `StreamCache`/`Reader` drops; the filler stops at its next read.
    pub(crate) cancel: Cancel,
}

impl Shared {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            mark: Watermark::new(),
            storage: Storage::new(),
            settings,
            cancel: Cancel::default(),
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
}

impl MarkHandle for Arc<Shared> {
    fn mark(&self) -> &Watermark {
        &self.mark
    }
}
