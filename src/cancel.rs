//! [`Cancel`]: the one way the filler learns that every handle is gone (invariant 6).

use crate::sync::{wait_deadline, Condvar, Mutex};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Set once, when the last `StreamCache`/`Reader` drops. The filler checks it before every read
/// from the source; a filler sleeping between retries, waiting to start (`Builder::defer_fill`),
/// or parked on an async source, is woken.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    cancelled: AtomicBool,
    /// Wakes a filler sleeping between retries, or waiting to start.
    lock: Mutex<()>,
    signal: Condvar,
    /// A filler parked on an async source, to unpark.
    parked: OnceLock<Thread>,
}

impl Cancel {
    /// Tells the filler to stop, waking it wherever it sleeps.
    pub(crate) fn cancel(&self) {
        let _guard = self.lock.lock();
        self.cancelled.store(true, Ordering::Relaxed);
        self.signal.notify_all();
        if let Some(filler) = self.parked.get() {
            filler.unpark();
        }
    }

    /// `Err` once every handle is dropped: what a source returns to stop the filler.
    pub(crate) fn check(&self) -> io::Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(io::Error::other("every handle was dropped"))
        } else {
            Ok(())
        }
    }

    /// The calling thread parks while its source is pending: `cancel` unparks it.
    pub(crate) fn unpark_on_cancel(&self, thread: Thread) {
        let _ = self.parked.set(thread);
    }

    /// Wakes whoever waits in [`wait_until`](Self::wait_until) to look at its condition again.
    /// The caller makes the condition true before calling: the waiter looks at it under the
    /// lock this takes, so the wake is never lost.
    pub(crate) fn wake(&self) {
        let _guard = self.lock.lock();
        self.signal.notify_all();
    }

    /// Waits until `ready()` (then `Ok`) or until cancelled (then `Err`, as
    /// [`check`](Self::check)). Whoever makes `ready()` true calls [`wake`](Self::wake).
    pub(crate) fn wait_until(&self, ready: impl Fn() -> bool) -> io::Result<()> {
        let mut guard = self.lock.lock();
        while self.check().is_ok() && !ready() {
            self.signal.wait(&mut guard);
        }
        self.check()
    }

    /// Sleeps for `duration`, or until cancelled (then `Err`, as [`check`](Self::check)).
    pub(crate) fn sleep(&self, duration: Duration) -> io::Result<()> {
        let deadline = Instant::now().checked_add(duration);
        let mut guard = self.lock.lock();
        while self.check().is_ok() {
            match deadline {
                Some(deadline) => {
                    if wait_deadline(&self.signal, &mut guard, deadline) {
                        break;
                    }
                }
                None => self.signal.wait(&mut guard),
            }
        }
        self.check()
    }
}
