//! The high-water mark, the terminal state, and the waiting and waking around them. No I/O.
//!
//! One writer (the filler) raises `mark` with a Release store after each write; readers check it
//! with one Acquire load and only take the lock when their target is not there yet.
//!
//! ## The protocol (invariant 3: no lost wake-up, no busy wait)
//!
//! A waiter registers its target in the waiter list under the lock and lowers `lowest_target`;
//! then `fence(SeqCst)`; then loads `mark`. The filler stores `mark`; then `fence(SeqCst)`; then
//! loads `lowest_target`, and takes the lock only when that target has been reached. The two
//! fences are ordered one way or the other: either the waiter sees the new mark and does not park,
//! or the filler sees the waiter's target and wakes it under the lock the waiter still holds
//! until it is parked. When nobody waits, `lowest_target` is `u64::MAX` and publishing costs one
//! store, one fence and one load.
//!
//! Each waiter has its own wake signal, so the filler wakes only the waiters whose target it
//! crossed; the terminal states (complete, failed) wake everyone. Terminal states change only
//! under the lock, and waiters check them under the lock, so they cannot be missed.
//!
//! This file is compiled unchanged by `loom-tests` with loom's primitives (see `sync.rs`).

use crate::status::Status;
use crate::sync::{fence, wait_deadline, Arc, AtomicU64, AtomicU8, Condvar, Mutex, Ordering};
use std::fmt;
use std::io;
use std::task::Waker;
use std::time::Instant;

const FILLING: u8 = 0;
const COMPLETE: u8 = 1;
const FAILED: u8 = 2;

/// The mark, the terminal state and the parked waiters.
pub(crate) struct Watermark {
    /// Bytes `[0, mark)` are written and never change again (invariant 1).
    mark: AtomicU64,
    /// `FILLING`, `COMPLETE` or `FAILED`; changes only under `waiters`' lock.
    state: AtomicU8,
    /// The smallest target of any registered waiter, `u64::MAX` when none; written under the lock.
    lowest_target: AtomicU64,
    waiters: Mutex<Waiters>,
}

/// How a registered waiter is woken.
pub(crate) enum Wake {
    /// A parked thread, waiting on its own condition variable.
    Thread(Arc<Condvar>),
    /// An async task.
    Task(Waker),
}

impl Wake {
    fn wake(self) {
        match self {
            Wake::Thread(cond) => {
                cond.notify_one();
            }
            Wake::Task(waker) => waker.wake(),
        }
    }
}

/// Wakes outside the lock, so that a waker that polls inline (and so takes the lock again)
/// cannot deadlock. Safe because a removed thread
/// waiter holds the lock from registering until it is parked, so it is parked (or about to
/// re-check the mark, which has passed) by the time the lock is free.
fn wake_all(woken: Vec<Wake>) {
    for wake in woken {
        wake.wake();
    }
}

struct Waiter {
    id: u64,
    target: u64,
    wake: Wake,
}

#[derive(Default)]
struct Waiters {
    list: Vec<Waiter>,
    next_id: u64,
    failure: Option<Failure>,
}

impl Waiters {
    fn lowest_target(&self) -> u64 {
        self.list.iter().map(|w| w.target).min().unwrap_or(u64::MAX)
    }
}

/// A source failure, kept so every reader past `offset` gets it (invariant 8).
#[derive(Clone)]
struct Failure {
    offset: u64,
    error: Arc<io::Error>,
}

/// The error handed to readers: the source's own error, shared, with the offset it failed at.
///
/// Its `kind()` (through `io::Error::new`) and message are the source's; `source()` is the
/// source's error itself.
pub(crate) struct StreamError {
    offset: u64,
    error: Arc<io::Error>,
}

impl fmt::Debug for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamError")
            .field("offset", &self.offset)
            .field("error", &*self.error)
            .finish()
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (stream failed at byte {})", self.error, self.offset)
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.error)
    }
}

impl Failure {
    fn to_io_error(&self) -> io::Error {
        io::Error::new(
            self.error.kind(),
            StreamError {
                offset: self.offset,
                error: Arc::clone(&self.error),
            },
        )
    }

    /// What a wait for `target` returns once the stream has failed: the bytes before the failure
    /// are still there, anything past it is the source's error.
    fn wait_result(&self, target: u64) -> io::Result<u64> {
        if target <= self.offset {
            Ok(self.offset)
        } else {
            Err(self.to_io_error())
        }
    }
}

/// The outcome of one registration attempt by an async waiter.
pub(crate) enum WaitPoll {
    /// The target is reached (or the stream ended): the available mark.
    Ready(io::Result<u64>),
    /// Registered (or re-registered) under this id; the waker will be woken.
    Pending(u64),
}

impl Watermark {
    pub(crate) fn new() -> Self {
        Self {
            mark: AtomicU64::new(0),
            state: AtomicU8::new(FILLING),
            lowest_target: AtomicU64::new(u64::MAX),
            waiters: Mutex::new(Waiters::default()),
        }
    }

    /// The published mark. Bytes below it may be read (Acquire pairs with `publish`'s Release).
    #[inline]
    pub(crate) fn available(&self) -> u64 {
        self.mark.load(Ordering::Acquire)
    }

    /// Where the stream stands, without waiting.
    pub(crate) fn status(&self) -> Status {
        match self.state.load(Ordering::Acquire) {
            FILLING => Status::Filling {
                available: self.available(),
            },
            COMPLETE => Status::Complete {
                len: self.available(),
            },
            _ => {
                let g = self.waiters.lock();
                let f = g.failure.as_ref().expect("FAILED is set with its failure");
                Status::Failed {
                    available: f.offset,
                    error: f.error.kind(),
                }
            }
        }
    }

    /// True while the source is still being read (one Acquire load, no lock).
    #[inline]
    pub(crate) fn is_filling(&self) -> bool {
        self.state.load(Ordering::Acquire) == FILLING
    }

    /// Filler only: bytes `[0, mark)` are written. `mark` never goes down.
    #[inline]
    pub(crate) fn publish(&self, mark: u64) {
        debug_assert!(mark >= self.mark.load(Ordering::Relaxed));
        self.mark.store(mark, Ordering::Release);
        // Pairs with the waiter's fence in `wait_until`: see the module docs.
        fence(Ordering::SeqCst);
        if self.lowest_target.load(Ordering::Relaxed) <= mark {
            self.wake_reached(mark);
        }
    }

    #[cold]
    fn wake_reached(&self, mark: u64) {
        let mut woken = Vec::new();
        let mut g = self.waiters.lock();
        let mut i = 0;
        while i < g.list.len() {
            if g.list[i].target <= mark {
                woken.push(g.list.swap_remove(i).wake);
            } else {
                i += 1;
            }
        }
        self.lowest_target
            .store(g.lowest_target(), Ordering::Relaxed);
        drop(g);
        wake_all(woken);
    }

    /// Filler only: the source ended at the current mark.
    pub(crate) fn complete(&self) {
        self.finish(None);
    }

    /// Filler only: the source failed at the current mark with `error`.
    pub(crate) fn fail(&self, error: io::Error) {
        self.finish(Some(error));
    }

    fn finish(&self, error: Option<io::Error>) {
        let mut g = self.waiters.lock();
        if self.state.load(Ordering::Relaxed) != FILLING {
            return; // The first outcome stands.
        }
        match error {
            None => self.state.store(COMPLETE, Ordering::Release),
            Some(error) => {
                g.failure = Some(Failure {
                    offset: self.mark.load(Ordering::Relaxed),
                    error: Arc::new(error),
                });
                self.state.store(FAILED, Ordering::Release);
            }
        }
        self.lowest_target.store(u64::MAX, Ordering::Relaxed);
        let woken: Vec<Wake> = g.list.drain(..).map(|w| w.wake).collect();
        drop(g);
        wake_all(woken);
    }

    /// Without taking the lock: `Some` when the wait for `target` is already decided.
    #[inline]
    fn try_ready(&self, target: u64) -> Option<io::Result<u64>> {
        self.decide(target, |target| self.failure_result(target))
    }

    /// The wait for `target` as the mark and state stand now: `None` while it must go on.
    /// `failed` gives the result on a failed stream (it needs the failure, under the lock).
    #[inline]
    fn decide(
        &self,
        target: u64,
        failed: impl FnOnce(u64) -> io::Result<u64>,
    ) -> Option<io::Result<u64>> {
        let mark = self.available();
        if mark >= target {
            return Some(Ok(mark));
        }
        match self.state.load(Ordering::Acquire) {
            FILLING => None,
            COMPLETE => Some(Ok(self.available())),
            _ => Some(failed(target)),
        }
    }

    #[cold]
    fn failure_result(&self, target: u64) -> io::Result<u64> {
        let g = self.waiters.lock();
        g.failure
            .as_ref()
            .expect("FAILED is set with its failure")
            .wait_result(target)
    }

    /// Under the lock, after registering: the decided result, if any.
    fn check_locked(&self, g: &Waiters, target: u64) -> Option<io::Result<u64>> {
        // Pairs with the filler's fence in `publish`: see the module docs.
        fence(Ordering::SeqCst);
        self.decide(target, |target| {
            g.failure
                .as_ref()
                .expect("FAILED is set with its failure")
                .wait_result(target)
        })
    }

    fn register(&self, g: &mut Waiters, target: u64, wake: Wake) -> u64 {
        let id = g.next_id;
        g.next_id += 1;
        self.insert(g, id, target, wake);
        id
    }

    fn insert(&self, g: &mut Waiters, id: u64, target: u64, wake: Wake) {
        g.list.push(Waiter { id, target, wake });
        if target < self.lowest_target.load(Ordering::Relaxed) {
            self.lowest_target.store(target, Ordering::Relaxed);
        }
    }

    fn deregister(&self, g: &mut Waiters, id: u64) {
        if let Some(i) = g.list.iter().position(|w| w.id == id) {
            g.list.swap_remove(i);
            self.lowest_target
                .store(g.lowest_target(), Ordering::Relaxed);
        }
    }

    /// Blocks until `available() >= target`, or the stream ends or fails, or `deadline` passes.
    ///
    /// `Ok(Some(mark))` when the target is reached or the stream completed (then `mark` is the
    /// final length, possibly below `target`), or the stream failed at or past `target`;
    /// `Err` with the source's error when it failed before `target`; `Ok(None)` on timeout.
    pub(crate) fn wait_until(
        &self,
        target: u64,
        deadline: Option<Instant>,
    ) -> io::Result<Option<u64>> {
        if let Some(ready) = self.try_ready(target) {
            return ready.map(Some);
        }
        let signal = Arc::new(Condvar::new());
        let mut g = self.waiters.lock();
        let id = self.register(&mut g, target, Wake::Thread(Arc::clone(&signal)));
        loop {
            if let Some(ready) = self.check_locked(&g, target) {
                self.deregister(&mut g, id);
                return ready.map(Some);
            }
            match deadline {
                None => signal.wait(&mut g),
                Some(deadline) => {
                    if wait_deadline(&signal, &mut g, deadline) {
                        let ready = self.check_locked(&g, target);
                        self.deregister(&mut g, id);
                        return match ready {
                            Some(ready) => ready.map(Some),
                            None => Ok(None),
                        };
                    }
                }
            }
            // Woken (or spuriously): if the filler woke us it removed our entry; put it back
            // before checking again, so a later publish still finds us.
            if !g.list.iter().any(|w| w.id == id) {
                self.insert(&mut g, id, target, Wake::Thread(Arc::clone(&signal)));
            }
        }
    }

    /// Async waiting: decided now, or registered with `waker` under `id` (a previous
    /// registration of the same id is replaced, so a re-polled future holds one entry).
    pub(crate) fn poll_wait(&self, target: u64, id: Option<u64>, waker: &Waker) -> WaitPoll {
        if let Some(ready) = self.try_ready(target) {
            if let Some(id) = id {
                self.forget(id);
            }
            return WaitPoll::Ready(ready);
        }
        let mut g = self.waiters.lock();
        if let Some(id) = id {
            self.deregister(&mut g, id);
        }
        let id = self.register(&mut g, target, Wake::Task(waker.clone()));
        if let Some(ready) = self.check_locked(&g, target) {
            self.deregister(&mut g, id);
            return WaitPoll::Ready(ready);
        }
        WaitPoll::Pending(id)
    }

    /// Removes an async registration (a future dropped or finished); a no-op if already woken.
    pub(crate) fn forget(&self, id: u64) {
        let mut g = self.waiters.lock();
        self.deregister(&mut g, id);
    }

    /// How many waiters are registered: the loom models check that none is left behind.
    #[cfg(streamcache_loom)]
    pub(crate) fn waiter_count(&self) -> usize {
        self.waiters.lock().list.len()
    }
}

impl fmt::Debug for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watermark")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}
