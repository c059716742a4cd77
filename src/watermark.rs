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
//! ## Ranges (a ranged source: several writers)
//!
//! With [`Watermark::ranged`], bytes may also become present above the mark, written by
//! on-demand fetches. Those islands, and every writer's claim on the bytes it is about to write,
//! live in [`Ranges`] under the same lock; every writer publishes through
//! [`publish_range`](Watermark::publish_range), under the lock, which moves the mark when the
//! prefix grows and wakes the waiters whose whole range is now present. A waiter waits for a
//! range `[start, end)`: it is ready when `end <= mark` (checked without the lock, as above) or
//! when the islands cover it (checked under the lock, where islands change). A wait for the
//! prefix is the range `[0, end)`. The stream is complete when the mark reaches the length.
//!
//! This file is compiled unchanged by `loom-tests` with loom's primitives (see `sync.rs`).

use crate::ranges::{At, Ranges, WriterId};
use crate::status::Status;
use crate::sync::{fence, wait_deadline, Arc, AtomicU64, AtomicU8, Condvar, Mutex, Ordering};
use std::fmt;
use std::io;
use std::ops::Range;
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
    /// A ranged stream's length, known from the start; `None` for a stream read to its end.
    len: Option<u64>,
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
    /// The range waited for is `[start, target)`.
    start: u64,
    target: u64,
    wake: Wake,
}

#[derive(Default)]
struct Waiters {
    list: Vec<Waiter>,
    next_id: u64,
    failure: Option<Failure>,
    /// A ranged stream's islands and claims (empty for other streams).
    ranges: Ranges,
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
}

/// The outcome of one registration attempt by an async waiter.
pub(crate) enum WaitPoll {
    /// The target is reached (or the stream ended): the available mark.
    Ready(io::Result<u64>),
    /// Registered (or re-registered) under this id; the waker will be woken.
    Pending(u64),
}

impl Watermark {
    /// For a stream read to its end by one writer.
    pub(crate) fn new() -> Self {
        Self::with_len(None)
    }

    /// For a ranged stream of `len` bytes, written by several writers (an empty one is
    /// complete at once).
    pub(crate) fn ranged(len: u64) -> Self {
        let mark = Self::with_len(Some(len));
        if len == 0 {
            mark.state.store(COMPLETE, Ordering::Release);
        }
        mark
    }

    fn with_len(len: Option<u64>) -> Self {
        Self {
            mark: AtomicU64::new(0),
            state: AtomicU8::new(FILLING),
            lowest_target: AtomicU64::new(u64::MAX),
            waiters: Mutex::new(Waiters::default()),
            len,
        }
    }

    /// A ranged stream's length, known from the start.
    pub(crate) fn known_len(&self) -> Option<u64> {
        self.len
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
        let mut g = self.waiters.lock();
        let woken = self.take_covered(&mut g, mark);
        drop(g);
        wake_all(woken);
    }

    /// Under the lock: removes and returns the waiters whose range is present, given `mark`.
    fn take_covered(&self, g: &mut Waiters, mark: u64) -> Vec<Wake> {
        let mut woken = Vec::new();
        let mut i = 0;
        while i < g.list.len() {
            let w = &g.list[i];
            if w.target <= mark || g.ranges.covers(mark, w.start, self.clamp(w.target)) {
                woken.push(g.list.swap_remove(i).wake);
            } else {
                i += 1;
            }
        }
        self.lowest_target
            .store(g.lowest_target(), Ordering::Relaxed);
        woken
    }

    /// A target past a ranged stream's length waits only for the bytes up to it.
    fn clamp(&self, target: u64) -> u64 {
        self.len.map_or(target, |len| target.min(len))
    }

    /// Writer `me` of a ranged stream: what lies at `offset`. If it is free, it is claimed for
    /// `me` up to `want_end` at most (and the returned `end` is the claim's).
    pub(crate) fn claim_at(&self, me: WriterId, offset: u64, want_end: u64) -> At {
        let len = self.len.expect("a ranged stream");
        let mut g = self.waiters.lock();
        let mark = self.mark.load(Ordering::Relaxed);
        match g.ranges.at(mark, len, offset, me) {
            At::Free { end } => {
                let end = end.min(want_end);
                g.ranges.claim(me, offset..end);
                At::Free { end }
            }
            other => other,
        }
    }

    /// For an on-demand fetch: claims for `me` the bytes that are neither present nor claimed
    /// around `offset`, from `offset` rounded down to `align` (not below a present or claimed
    /// byte) up to `offset + span` (not past one). `None` when `offset` is present or claimed,
    /// or at or past the end.
    pub(crate) fn claim_fetch(
        &self,
        me: WriterId,
        offset: u64,
        span: u64,
        align: u64,
    ) -> Option<Range<u64>> {
        let len = self.len.expect("a ranged stream");
        if offset >= len || self.state.load(Ordering::Acquire) != FILLING {
            return None;
        }
        let mut g = self.waiters.lock();
        let mark = self.mark.load(Ordering::Relaxed);
        let At::Free { end } = g.ranges.at(mark, len, offset, me) else {
            return None;
        };
        let end = end.min(offset.saturating_add(span));
        let aligned = offset - offset % align.max(1);
        let start = aligned.max(g.ranges.free_start(mark, offset, me));
        g.ranges.claim(me, start..end);
        Some(start..end)
    }

    /// For a span of a parallel fill (`Builder::connections`): claims for `me` the lowest
    /// bytes that are neither present nor claimed, at most `span` of them, so that the prefix
    /// grows in order. `None` when every byte is present or claimed, or the stream is over.
    pub(crate) fn claim_lowest(&self, me: WriterId, span: u64) -> Option<Range<u64>> {
        let len = self.len.expect("a ranged stream");
        if self.state.load(Ordering::Acquire) != FILLING {
            return None;
        }
        let mut g = self.waiters.lock();
        let mark = self.mark.load(Ordering::Relaxed);
        let free = g.ranges.first_free(mark, len, me)?;
        let end = free.end.min(free.start.saturating_add(span));
        g.ranges.claim(me, free.start..end);
        Some(free.start..end)
    }

    /// Drops `me`'s claim (a writer that finished, failed or moved on).
    pub(crate) fn release(&self, me: WriterId) {
        self.waiters.lock().ranges.release(me);
    }

    /// The end of the claim holding `offset`, if a writer holds one.
    pub(crate) fn claimed_until(&self, offset: u64) -> Option<u64> {
        self.waiters
            .lock()
            .ranges
            .claim_at(offset)
            .map(|claim| claim.end)
    }

    /// Writer `me` of a ranged stream: `[start, end)`, inside its claim, is written. Makes it
    /// present, moves the mark if the prefix grew, wakes the waiters it completes, and
    /// completes the stream when all of it is present.
    pub(crate) fn publish_range(&self, me: WriterId, start: u64, end: u64) {
        let mut g = self.waiters.lock();
        let old = self.mark.load(Ordering::Relaxed);
        let mark = g.ranges.publish(me, old, start, end);
        if mark != old {
            self.mark.store(mark, Ordering::Release);
        }
        if Some(mark) == self.len {
            drop(g);
            self.complete();
            return;
        }
        let woken = self.take_covered(&mut g, mark);
        drop(g);
        wake_all(woken);
    }

    /// Every present byte: the prefix and the islands, sorted, disjoint, merged.
    pub(crate) fn present(&self) -> Vec<Range<u64>> {
        let g = self.waiters.lock();
        let mark = self.mark.load(Ordering::Acquire);
        let prefix = (mark > 0).then_some(0..mark);
        prefix
            .into_iter()
            .chain(g.ranges.islands().iter().cloned())
            .collect()
    }

    /// The end of the present run holding `offset`, if `offset` is present. Never waits.
    pub(crate) fn run_end(&self, offset: u64) -> Option<u64> {
        let mark = self.available();
        if offset < mark {
            return Some(mark);
        }
        self.len?; // Islands only on a ranged stream.
        let g = self.waiters.lock();
        g.ranges.run_end(self.mark.load(Ordering::Acquire), offset)
    }

    /// The first byte of `[start, end)` that is not present, if any. Never waits.
    pub(crate) fn first_missing(&self, start: u64, end: u64) -> Option<u64> {
        let g = self.waiters.lock();
        g.ranges
            .first_missing(self.mark.load(Ordering::Acquire), start, self.clamp(end))
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
        if error.is_none()
            && self
                .len
                .is_some_and(|len| self.mark.load(Ordering::Relaxed) < len)
        {
            return; // A ranged stream is complete only once all of it is present.
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

    /// Without taking the lock: `Some` when the wait for `[start, target)` is already decided.
    #[inline]
    pub(crate) fn try_ready(&self, start: u64, target: u64) -> Option<io::Result<u64>> {
        let mark = self.available();
        if mark >= target {
            return Some(Ok(mark));
        }
        match self.state.load(Ordering::Acquire) {
            // Without islands, only the mark can decide it.
            FILLING if self.len.is_none() => None,
            // All of the stream is present.
            COMPLETE => Some(Ok(mark.max(self.available()))),
            _ => self.decide_locked(&self.waiters.lock(), start, target),
        }
    }

    /// Under the lock: the wait for `[start, target)` as the mark, the islands and the state
    /// stand now, `None` while it must go on. `Ok` carries the end of the present run from
    /// `start` (the mark, for a wait from 0), or the stream's length once it is complete.
    fn decide_locked(&self, g: &Waiters, start: u64, target: u64) -> Option<io::Result<u64>> {
        let mark = self.available();
        if mark >= target {
            return Some(Ok(mark));
        }
        let end = self.clamp(target);
        if end <= start && self.len.is_some() {
            // An empty range of a ranged stream (or one past its end, once clamped): nothing
            // to wait for. (A stream read to its end waits for the mark to reach `target`.)
            return Some(Ok(mark.max(end)));
        }
        if let Some(run) = g.ranges.run_end(mark, start).filter(|&run| run >= end) {
            return Some(Ok(run));
        }
        match self.state.load(Ordering::Acquire) {
            FILLING => None,
            COMPLETE => Some(Ok(self.available())),
            _ => {
                let failure = g.failure.as_ref().expect("FAILED is set with its failure");
                Some(Err(failure.to_io_error()))
            }
        }
    }

    /// Under the lock, after registering: the decided result, if any.
    fn check_locked(&self, g: &Waiters, start: u64, target: u64) -> Option<io::Result<u64>> {
        // Pairs with the filler's fence in `publish`: see the module docs.
        fence(Ordering::SeqCst);
        self.decide_locked(g, start, target)
    }

    fn register(&self, g: &mut Waiters, start: u64, target: u64, wake: Wake) -> u64 {
        let id = g.next_id;
        g.next_id += 1;
        self.insert(g, id, start, target, wake);
        id
    }

    fn insert(&self, g: &mut Waiters, id: u64, start: u64, target: u64, wake: Wake) {
        g.list.push(Waiter {
            id,
            start,
            target,
            wake,
        });
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
    #[cfg_attr(not(streamcache_loom), allow(dead_code))] // The loom models' wait from 0.
    pub(crate) fn wait_until(
        &self,
        target: u64,
        deadline: Option<Instant>,
    ) -> io::Result<Option<u64>> {
        self.wait_range(0, target, deadline)
    }

    /// Blocks until all of `[start, target)` is present, or the stream ends or fails, or
    /// `deadline` passes. `Ok(Some(end))`: the end of the present run from `start` (at or past
    /// `target`, or the stream's length if it ends before); `Err` when the stream failed with
    /// a byte of the range missing; `Ok(None)` on timeout.
    pub(crate) fn wait_range(
        &self,
        start: u64,
        target: u64,
        deadline: Option<Instant>,
    ) -> io::Result<Option<u64>> {
        if let Some(ready) = self.try_ready(start, target) {
            return ready.map(Some);
        }
        let signal = Arc::new(Condvar::new());
        let mut g = self.waiters.lock();
        let id = self.register(&mut g, start, target, Wake::Thread(Arc::clone(&signal)));
        loop {
            if let Some(ready) = self.check_locked(&g, start, target) {
                self.deregister(&mut g, id);
                return ready.map(Some);
            }
            match deadline {
                None => signal.wait(&mut g),
                Some(deadline) => {
                    if wait_deadline(&signal, &mut g, deadline) {
                        let ready = self.check_locked(&g, start, target);
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
                let wake = Wake::Thread(Arc::clone(&signal));
                self.insert(&mut g, id, start, target, wake);
            }
        }
    }

    /// Async waiting for `[start, target)`: decided now, or registered with `waker` under `id`
    /// (a previous registration of the same id is replaced, so a re-polled future holds one
    /// entry).
    pub(crate) fn poll_wait(
        &self,
        start: u64,
        target: u64,
        id: Option<u64>,
        waker: &Waker,
    ) -> WaitPoll {
        if let Some(ready) = self.try_ready(start, target) {
            if let Some(id) = id {
                self.forget(id);
            }
            return WaitPoll::Ready(ready);
        }
        let mut g = self.waiters.lock();
        if let Some(id) = id {
            self.deregister(&mut g, id);
        }
        let id = self.register(&mut g, start, target, Wake::Task(waker.clone()));
        if let Some(ready) = self.check_locked(&g, start, target) {
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

    /// How many waiters are registered: the loom models check that none is left behind, and a
    /// reader of a shared entry whether async waiters need its mirror thread (`src/dir/`).
    #[cfg(any(unix, streamcache_loom))]
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
