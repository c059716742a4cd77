//! Who mirrors a reader process's watermark: the threads that wait, or the mirror thread.
//!
//! A thread of a reader process that waits for bytes (`Entry::wait`) sleeps on the entry's
//! publish futex itself and mirrors the span map when a publish wakes it: one hop from the
//! writer's publish to the waiting thread, where the mirror thread's wake-up and then a
//! condition variable's would be two. While such threads wait, the mirror thread keeps
//! quiet: a second sleeper on the futex would be woken by every publish too, and on a machine
//! with few cores would take a CPU from the thread that needs it (measured: a cross-process
//! wake 2.1-2.7× an in-process one with it awake, 0.87-1.25× with it quiet).
//!
//! Quiet, the mirror thread sleeps on a local condition variable, for at most the liveness
//! step (it still looks for a dead writer). It is kicked awake, to sleep on the futex again,
//! whenever a waiter the waiting threads would not serve is left without them:
//! - an async waiter parks while no thread waits ([`Handoff::parked`]);
//! - the last waiting thread leaves while async waiters remain, or once the stream has
//!   ended, so that the mirror thread ends too ([`Handoff::leave`]);
//! - the writer stopped with bytes missing: the mirror thread takes over at once.
//!
//! A lost kick would leave an async waiter unserved until the liveness step: this file is
//! compiled by `loom-tests` (with `--cfg streamcache_loom`), whose model of a writer, a
//! waiting thread, an async waiter and the mirror thread finds one as a deadlock (loom's
//! condition variable never times out).

use crate::sync::{wait_deadline, AtomicU64, Condvar, Mutex, Ordering};
use std::time::Instant;

/// The hand-off between a reader process's waiting threads and its mirror thread.
#[derive(Debug)]
pub(crate) struct Handoff {
    /// Threads inside `Entry::wait`: each sleeps on the publish futex and mirrors.
    waiting: AtomicU64,
    /// Set by a kick, cleared by the mirror thread's next quiet sleep.
    kicked: Mutex<bool>,
    kick: Condvar,
}

impl Default for Handoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Handoff {
    pub(crate) fn new() -> Self {
        Self {
            waiting: AtomicU64::new(0),
            kicked: Mutex::new(false),
            kick: Condvar::new(),
        }
    }

    /// A thread starts waiting (and mirroring) by itself.
    pub(crate) fn enter(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
    }

    /// A thread stops waiting. If it was the last and `unserved()` (async waiters remain, or
    /// the stream has ended), the mirror thread is kicked. SeqCst, with the watermark's lock
    /// that `unserved` takes, pairs with [`parked`](Self::parked): either the async waiter
    /// sees no thread waiting and kicks, or the last thread to leave sees its registration.
    pub(crate) fn leave(&self, unserved: impl FnOnce() -> bool) {
        if self.waiting.fetch_sub(1, Ordering::SeqCst) == 1 && unserved() {
            self.kick();
        }
    }

    /// An async waiter registered with the watermark: unless threads wait (and mirror for
    /// it), the mirror thread must sleep on the futex, not quietly.
    pub(crate) fn parked(&self) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            self.kick();
        }
    }

    /// Wakes the mirror thread from a quiet sleep (or makes its next one return at once).
    pub(crate) fn kick(&self) {
        *self.kicked.lock() = true;
        self.kick.notify_one();
    }

    /// The mirror thread: whether to keep quiet, because threads wait and mirror themselves.
    pub(crate) fn quiet(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    /// The mirror thread, quiet: sleeps until kicked, or until `deadline`.
    pub(crate) fn sleep(&self, deadline: Instant) {
        let mut kicked = self.kicked.lock();
        if !*kicked {
            wait_deadline(&self.kick, &mut kicked, deadline);
        }
        *kicked = false;
    }
}
