//! The state every handle, every `Bytes` and the filler share.

use crate::storage::Storage;
use crate::wait_async::MarkHandle;
use crate::watermark::Watermark;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// The watermark and the storage behind it, plus the cancellation flag.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) mark: Watermark,
    pub(crate) storage: Storage,
    pub(crate) expected_len: Option<u64>,
    /// Set when the last `StreamCache`/`Reader` drops; the filler stops at its next chunk.
    cancelled: AtomicBool,
    /// Wakes a filler sleeping between retries when the last handle drops.
    cancel_lock: Mutex<()>,
    cancel_signal: Condvar,
    /// A filler parked on an async source, to unpark when the last handle drops.
    filler_thread: OnceLock<Thread>,
}

impl Shared {
    pub(crate) fn new(expected_len: Option<u64>) -> Self {
        Self {
            mark: Watermark::new(),
            storage: Storage::new(),
            expected_len,
            cancelled: AtomicBool::new(false),
            cancel_lock: Mutex::new(()),
            cancel_signal: Condvar::new(),
            filler_thread: OnceLock::new(),
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
        let _guard = self.cancel_lock.lock();
        self.cancelled.store(true, Ordering::Relaxed);
        self.cancel_signal.notify_all();
        if let Some(filler) = self.filler_thread.get() {
            filler.unpark();
        }
    }

    /// Filler only, for sources that park the filler thread (async streams).
    pub(crate) fn set_filler_thread(&self, thread: Thread) {
        let _ = self.filler_thread.set(thread);
    }

    /// Filler only: sleeps for `duration` unless every handle is dropped first. Returns false
    /// when cancelled.
    pub(crate) fn sleep_unless_cancelled(&self, duration: Duration) -> bool {
        let deadline = Instant::now().checked_add(duration);
        let mut guard = self.cancel_lock.lock();
        while !self.is_cancelled() {
            match deadline {
                Some(deadline) => {
                    if self
                        .cancel_signal
                        .wait_until(&mut guard, deadline)
                        .timed_out()
                    {
                        return !self.is_cancelled();
                    }
                }
                None => self.cancel_signal.wait(&mut guard),
            }
        }
        false
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

impl MarkHandle for Arc<Shared> {
    fn mark(&self) -> &Watermark {
        &self.mark
    }
}
