//! The synchronisation primitives the watermark protocol is written against.
//!
//! Normal builds use `parking_lot` and `std` atomics. Under `--cfg streamcache_loom` the very same
//! `watermark.rs` is compiled by the `loom-tests` crate against loom's types, so the protocol that
//! ships is the protocol that is model-checked. parking_lot has no loom support, hence the small
//! adapter below with parking_lot's shape (`lock()`, `wait(&mut guard)`).

#[cfg(not(streamcache_loom))]
mod imp {
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
    #[cfg(unix)]
    pub(crate) use std::sync::atomic::AtomicU32; // A shared entry's futex words (`src/dir/`).
    pub(crate) use std::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};
    pub(crate) use std::sync::Arc;

    /// Waits on `cond` until notified or `deadline` passes; true when the deadline passed.
    pub(crate) fn wait_deadline<T>(
        cond: &Condvar,
        guard: &mut MutexGuard<'_, T>,
        deadline: std::time::Instant,
    ) -> bool {
        cond.wait_until(guard, deadline).timed_out()
    }
}

#[cfg(streamcache_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};

    /// loom's `Arc` with the `Debug` and `Display` that std's forwards to its contents (loom's
    /// has neither, and `watermark.rs` formats an `Arc<io::Error>`).
    pub(crate) struct Arc<T: ?Sized>(loom::sync::Arc<T>);

    impl<T> Arc<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Arc::new(value))
        }
    }

    impl<T: ?Sized> Clone for Arc<T> {
        fn clone(&self) -> Self {
            Self(loom::sync::Arc::clone(&self.0))
        }
    }

    impl<T: ?Sized> std::ops::Deref for Arc<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.0
        }
    }

    impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for Arc<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            std::fmt::Debug::fmt(&**self, f)
        }
    }

    impl<T: ?Sized + std::fmt::Display> std::fmt::Display for Arc<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            std::fmt::Display::fmt(&**self, f)
        }
    }

    /// loom's mutex behind parking_lot's shape: `lock()` returns the guard directly.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// A guard that can be handed to [`Condvar::wait`] by `&mut`, as with parking_lot. It keeps
    /// its mutex so that a timed-out wait can release and retake the lock (see [`wait_deadline`]).
    pub(crate) struct MutexGuard<'a, T> {
        mutex: &'a loom::sync::Mutex<T>,
        guard: Option<loom::sync::MutexGuard<'a, T>>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                mutex: &self.0,
                guard: Some(self.0.lock().expect("loom mutex poisoned")),
            }
        }
    }

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.guard.as_ref().expect("guard present outside wait")
        }
    }

    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.guard.as_mut().expect("guard present outside wait")
        }
    }

    /// loom's condition variable with parking_lot's `wait(&mut guard)`.
    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }
        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.guard.take().expect("guard present before wait");
            guard.guard = Some(self.0.wait(inner).expect("loom mutex poisoned"));
        }
        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }
        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }

    /// loom has no clock. A deadline that has already passed times out at once: the lock is
    /// released and retaken (as a real timed-out wait does, so other threads may run in between)
    /// and the wait reports a timeout, which lets models drive the timeout path. Any later
    /// deadline is an untimed wait (loom's condvar never times out): the wake-up wins the race.
    pub(crate) fn wait_deadline<T>(
        cond: &Condvar,
        guard: &mut MutexGuard<'_, T>,
        deadline: std::time::Instant,
    ) -> bool {
        if deadline <= std::time::Instant::now() {
            drop(guard.guard.take());
            guard.guard = Some(guard.mutex.lock().expect("loom mutex poisoned"));
            return true;
        }
        cond.wait(guard);
        false
    }
}

pub(crate) use imp::*;
