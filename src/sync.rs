//! The synchronisation primitives the watermark protocol is written against.
//!
//! Normal builds use `parking_lot` and `std` atomics. Under `--cfg streamcache_loom` the very same
//! `watermark.rs` is compiled by the `loom-tests` crate against loom's types, so the protocol that
//! ships is the protocol that is model-checked. parking_lot has no loom support, hence the small
//! adapter below with parking_lot's shape (`lock()`, `wait(&mut guard)`).

#[cfg(not(streamcache_loom))]
mod imp {
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
    pub(crate) use std::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};
    pub(crate) use std::sync::Arc;

    /// Waits on `cond` until notified or `deadline` passes; true when the deadline passed.
    pub(crate) fn wait_until<T>(
        cond: &Condvar,
        guard: &mut MutexGuard<'_, T>,
        deadline: std::time::Instant,
    ) -> bool {
        cond.wait_until(guard, deadline).timed_out()
    }
}

#[cfg(streamcache_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};
    pub(crate) use loom::sync::Arc;

    /// loom's mutex behind parking_lot's shape: `lock()` returns the guard directly.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// A guard that can be handed to [`Condvar::wait`] by `&mut`, as with parking_lot.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().expect("loom mutex poisoned")))
        }
    }

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard present outside wait")
        }
    }

    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard present outside wait")
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
            let inner = guard.0.take().expect("guard present before wait");
            guard.0 = Some(self.0.wait(inner).expect("loom mutex poisoned"));
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

    /// loom has no clock: a timed wait is an untimed wait that loom may end spuriously.
    pub(crate) fn wait_until<T>(
        cond: &Condvar,
        guard: &mut MutexGuard<'_, T>,
        _deadline: std::time::Instant,
    ) -> bool {
        cond.wait(guard);
        false
    }
}

pub(crate) use imp::*;
