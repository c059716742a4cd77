//! The models: the shipped `Watermark` (compiled against loom by `sync.rs`) driven by a filler and
//! waiters, with the stream's bytes in loom cells so that reading them is checked too.
//!
//! How a broken protocol shows up here:
//! - a lost wake-up: every thread blocked, loom panics with "deadlock" (no model ever calls
//!   `complete`/`fail` to rescue a waiter the filler's `publish` forgot, unless that race is the
//!   point of the model);
//! - a reader not ordered after the filler's write: loom's `UnsafeCell` panics with "causality
//!   violation" on the chunk read;
//! - a wrong result or a leftover registration: an assertion.
//!
//! Preemption bounds are per model (`model(bound, …)`), chosen so the whole suite runs in about
//! three minutes on this project's two-core machine; `LOOM_MAX_PREEMPTIONS` overrides them all
//! (`LOOM_MAX_PREEMPTIONS=2` runs everything in seconds). Models with one filler and one waiter
//! (two threads) are small enough to explore every interleaving (`None`); three-thread models run
//! with bound 4 (a few seconds each); the four-thread model with bound 3 (about two minutes, a
//! million executions). Run with `--nocapture` to see the counts.

use crate::ranges::At;
use crate::status::Status;
use crate::wait_async::{MarkHandle, WaitFor};
use crate::watermark::{WaitPoll, Watermark};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Bytes per chunk: the filler writes and publishes whole chunks, so every mark is a multiple.
const CHUNK: u64 = 4;

/// Runs `f` under loom with `preemptions` as the bound (`None`: every interleaving), unless
/// `LOOM_MAX_PREEMPTIONS` is set; prints how many executions were explored (see `--nocapture`).
fn model<F>(preemptions: Option<usize>, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = preemptions;
    }
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&executions);
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{}: {} executions, preemption bound {:?}",
        thread_name(),
        executions.load(std::sync::atomic::Ordering::Relaxed),
        builder.preemption_bound,
    );
}

/// The test's name, as libtest names its thread.
fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

/// A stream being filled: the shipped watermark plus the bytes behind it, one loom cell per chunk.
struct Stream {
    mark: Watermark,
    chunks: Vec<UnsafeCell<u8>>,
}

// SAFETY: this is what the models check rather than assume (invariant 2): chunk `k` is written
// only by the filler, before it publishes a mark past `k`, and read only below a mark that a wait
// returned. loom's `UnsafeCell` panics on any write and read of one chunk that are not ordered by
// happens-before, so a model passing is the proof that sharing `Stream` is sound.
unsafe impl Sync for Stream {}

impl Stream {
    fn new(chunks: usize) -> Arc<Self> {
        Arc::new(Self {
            mark: Watermark::new(),
            chunks: (0..chunks).map(|_| UnsafeCell::new(0)).collect(),
        })
    }

    /// What chunk `k` holds once written.
    fn byte(k: usize) -> u8 {
        0xA0 + k as u8
    }

    /// Filler: writes chunk `k`, then publishes the mark past it.
    fn fill(&self, k: usize) {
        // SAFETY: the filler is the only writer, and chunk `k` is above every published mark.
        self.chunks[k].with_mut(|p| unsafe { *p = Self::byte(k) });
        self.mark.publish((k as u64 + 1) * CHUNK);
    }

    /// Reader: every chunk below `mark` holds the filler's bytes; loom checks the reads are
    /// ordered after the writes.
    fn read_below(&self, mark: u64) {
        assert_eq!(mark % CHUNK, 0, "marks are published on chunk boundaries");
        for k in 0..(mark / CHUNK) as usize {
            // SAFETY: `mark` was returned by a wait, so chunk `k` below it is published.
            let byte = self.chunks[k].with(|p| unsafe { *p });
            assert_eq!(byte, Self::byte(k), "chunk {k} below mark {mark}");
        }
    }

    /// A blocking waiter for `target` on a stream that reaches it: returns at or past it.
    fn wait(&self, target: u64, deadline: Option<Instant>) -> u64 {
        let mark = self
            .mark
            .wait_until(target, deadline)
            .expect("the stream does not fail")
            .expect("no timeout");
        assert!(mark >= target, "woken at {mark}, below its target {target}");
        self.read_below(mark);
        mark
    }
}

/// A waker that counts its wake-ups.
struct Recorder(AtomicUsize);

impl Recorder {
    fn new() -> (std::sync::Arc<Self>, Waker) {
        let recorder = std::sync::Arc::new(Recorder(AtomicUsize::new(0)));
        let waker = Waker::from(std::sync::Arc::clone(&recorder));
        (recorder, waker)
    }

    fn wakes(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Wake for Recorder {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// The models' futures are the crate's own `WaitFor`, holding the stream.
impl MarkHandle for Arc<Stream> {
    fn mark(&self) -> &Watermark {
        &self.mark
    }
}

/// One filler publishing `chunks` chunks in steps, one blocking waiter per target (each at or
/// below the last mark). The stream never completes, so only `publish` can wake them: a lost
/// wake-up is a deadlock.
fn filler_wakes_waiters(preemptions: Option<usize>, chunks: usize, targets: &'static [u64]) {
    model(preemptions, move || {
        let stream = Stream::new(chunks);
        let waiters: Vec<_> = targets
            .iter()
            .map(|&target| {
                let stream = Arc::clone(&stream);
                thread::spawn(move || stream.wait(target, None))
            })
            .collect();
        for k in 0..chunks {
            stream.fill(k);
        }
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

#[test]
fn one_waiter_two_steps() {
    // The first publish (4) is below the target and must not lose the registration.
    filler_wakes_waiters(None, 2, &[6]);
}

#[test]
fn two_waiters_two_steps() {
    // The first publish wakes only the first waiter and leaves `lowest_target` at the second's.
    filler_wakes_waiters(Some(4), 2, &[2, 8]);
}

#[test]
fn three_waiters_three_steps() {
    // Four threads, three publishes: bound 3 is about a million executions (two minutes here),
    // the slowest model by far; bound 4 would not fit the suite's budget.
    filler_wakes_waiters(Some(3), 3, &[1, 5, 12]);
}

/// The publish fast path (no lock when `lowest_target` is above the mark) racing a waiter that
/// registers and is about to park: one publish, one waiter, nothing else that could wake it.
/// Every interleaving (no preemption bound).
#[test]
fn publish_fast_path_races_parking_waiter() {
    model(None, || {
        let stream = Stream::new(1);
        let waiter = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || stream.wait(CHUNK, None))
        };
        stream.fill(0);
        assert_eq!(waiter.join().unwrap(), CHUNK);
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// Waiters racing the end of the stream: one past the end gets `Ok(len)`, one at the end gets
/// the mark; either may be woken by the publish or by `complete`.
#[test]
fn waiter_races_completion() {
    model(Some(4), || {
        let stream = Stream::new(1);
        let past_end = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || {
                let len = stream.mark.wait_until(3 * CHUNK, None).unwrap().unwrap();
                stream.read_below(len);
                len
            })
        };
        let at_end = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || stream.wait(CHUNK, None))
        };
        stream.fill(0);
        stream.mark.complete();
        assert_eq!(past_end.join().unwrap(), CHUNK, "Ok(len) past the end");
        assert_eq!(at_end.join().unwrap(), CHUNK);
        assert_eq!(stream.mark.status(), Status::Complete { len: CHUNK });
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// Waiters racing a failure at offset 4: past it, the source's error with its kind and message;
/// at it (target <= offset), `Ok` with the bytes before the failure readable.
#[test]
fn waiter_races_failure() {
    model(Some(4), || {
        let stream = Stream::new(2);
        let past_failure = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || {
                stream
                    .mark
                    .wait_until(2 * CHUNK, None)
                    .expect_err("the stream failed before the target")
            })
        };
        let before_failure = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || stream.wait(CHUNK, None))
        };
        stream.fill(0);
        stream.mark.fail(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "source broke",
        ));
        let error = past_failure.join().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        assert!(error.to_string().contains("source broke"), "{error}");
        assert_eq!(before_failure.join().unwrap(), CHUNK);
        assert_eq!(
            stream.mark.status(),
            Status::Failed {
                available: CHUNK,
                error: io::ErrorKind::ConnectionReset
            }
        );
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// `wait_until(target, Some(deadline))` with a deadline far ahead, racing two publishes. loom has
/// no clock, so this timed wait is untimed here (see `sync.rs`): the model covers the deadline
/// branch of the wait loop (wake, re-register, re-check) against lost wake-ups and unordered
/// reads, not the timer itself.
#[test]
fn deadline_wait_races_publish() {
    model(None, || {
        let stream = Stream::new(2);
        let waiter = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(3600);
                stream.wait(6, Some(deadline))
            })
        };
        stream.fill(0);
        stream.fill(1);
        assert_eq!(waiter.join().unwrap(), 2 * CHUNK);
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// Deadlines already passed: loom's shim times the wait out at once, releasing and retaking the
/// lock as a real timed-out wait does, racing a publish that may wake (and remove) the waiter in
/// between. The first wait's target is reached by the publish: a timeout (`None`) or the mark.
/// The second's never is: always a timeout, and it must not leave its registration behind.
#[test]
fn expired_deadline_races_publish() {
    model(None, || {
        let stream = Stream::new(1);
        let waiter = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || {
                let reached = stream.mark.wait_until(CHUNK, Some(Instant::now())).unwrap();
                if let Some(mark) = reached {
                    stream.read_below(mark);
                }
                let beyond = stream
                    .mark
                    .wait_until(2 * CHUNK, Some(Instant::now()))
                    .unwrap();
                (reached, beyond)
            })
        };
        stream.fill(0);
        let (reached, beyond) = waiter.join().unwrap();
        assert!(matches!(reached, None | Some(CHUNK)), "{reached:?}");
        assert_eq!(beyond, None, "the mark never reaches {}", 2 * CHUNK);
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// An async waiter polls once with a recording waker while the filler publishes its target: it
/// is either `Ready` at once or woken exactly once, and then `Ready` on the next poll.
#[test]
fn async_poll_races_publish() {
    model(None, || {
        let stream = Stream::new(1);
        let (recorder, waker) = Recorder::new();
        let poller = {
            let stream = Arc::clone(&stream);
            thread::spawn(
                move || match stream.mark.poll_wait(0, CHUNK, None, &waker) {
                    WaitPoll::Ready(result) => {
                        let mark = result.unwrap();
                        stream.read_below(mark);
                        None
                    }
                    WaitPoll::Pending(id) => Some(id),
                },
            )
        };
        stream.fill(0);
        if let Some(id) = poller.join().unwrap() {
            assert_eq!(recorder.wakes(), 1, "pending, so the publish must wake it");
            let waker = Waker::from(std::sync::Arc::clone(&recorder));
            match stream.mark.poll_wait(0, CHUNK, Some(id), &waker) {
                WaitPoll::Ready(result) => stream.read_below(result.unwrap()),
                WaitPoll::Pending(_) => panic!("woken, but not ready on the next poll"),
            }
        }
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// The crate's future shape driven by `loom::future::block_on` (which also polls spuriously, so
/// re-registration under the same id is exercised) racing two publishes: a lost wake-up parks the
/// task forever and loom reports a deadlock.
#[test]
fn async_future_races_publishes() {
    model(None, || {
        let stream = Stream::new(2);
        let task = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || {
                let mark = loom::future::block_on(WaitFor::new(Arc::clone(&stream), 6)).unwrap();
                assert!(mark >= 6);
                stream.read_below(mark);
            })
        };
        stream.fill(0);
        stream.fill(1);
        task.join().unwrap();
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// The future racing the end of the stream: past the end it resolves to `Ok(len)`.
#[test]
fn async_future_races_completion() {
    model(None, || {
        let stream = Stream::new(1);
        let task = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || {
                loom::future::block_on(WaitFor::new(Arc::clone(&stream), 3 * CHUNK))
            })
        };
        stream.fill(0);
        stream.mark.complete();
        assert_eq!(task.join().unwrap().unwrap(), CHUNK);
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// A registered future is dropped (`cancel(id)`) while the filler crosses its target and wakes
/// it; a blocking waiter with a higher target is parked meanwhile, so a `lowest_target` left wrong
/// by the cancel or the wake would lose its wake-up on the second publish. No panic, no leftover
/// registration, and the dropped future's waker is woken at most once.
#[test]
fn cancel_races_wake() {
    model(Some(4), || {
        let stream = Stream::new(2);
        let (recorder, waker) = Recorder::new();
        let cancelled = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || {
                let mut future = WaitFor::new(Arc::clone(&stream), CHUNK);
                let mut cx = Context::from_waker(&waker);
                if let Poll::Ready(result) = Pin::new(&mut future).poll(&mut cx) {
                    stream.read_below(result.unwrap());
                }
                drop(future); // cancels a registration that the filler may be waking
            })
        };
        let parked = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || stream.wait(2 * CHUNK, None))
        };
        stream.fill(0);
        stream.fill(1);
        cancelled.join().unwrap();
        assert_eq!(parked.join().unwrap(), 2 * CHUNK);
        assert!(recorder.wakes() <= 1);
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Ranged streams: several writers (the sequential fill, writer 0, and an on-demand fetch,
// writer 1), each claiming what it writes, and waiters on ranges that either may complete.

impl Stream {
    /// A ranged stream of `chunks` chunks, known length.
    fn ranged(chunks: usize) -> Arc<Self> {
        Arc::new(Self {
            mark: Watermark::ranged(chunks as u64 * CHUNK),
            chunks: (0..chunks).map(|_| UnsafeCell::new(0)).collect(),
        })
    }

    /// Writer `me` writes chunk `k`, which it has claimed, then publishes it.
    fn write(&self, me: u64, k: usize) {
        // SAFETY: chunk `k` is inside `me`'s claim: no other writer writes it, and no reader
        // reads it before it is published (invariant 2, generalized; loom checks the reads).
        self.chunks[k].with_mut(|p| unsafe {
            assert_eq!(
                *p, 0,
                "chunk {k} written twice (the second time by writer {me})"
            );
            *p = Self::byte(k)
        });
        let start = k as u64 * CHUNK;
        self.mark.publish_range(me, start, start + CHUNK);
    }

    /// [`wait_range`](Self::wait_range) on a thread of its own.
    fn spawn_wait_range(stream: &Arc<Self>, start: u64, end: u64) -> thread::JoinHandle<u64> {
        let stream = Arc::clone(stream);
        thread::spawn(move || stream.wait_range(start, end))
    }

    /// An on-demand fetch (writer 1) of chunk `k`, on a thread of its own: claims it unless
    /// another writer has, writes it, and releases its claim.
    fn spawn_fetch(stream: &Arc<Self>, k: usize) -> thread::JoinHandle<()> {
        let stream = Arc::clone(stream);
        thread::spawn(move || {
            let at = k as u64 * CHUNK;
            if let Some(range) = stream.mark.claim_fetch(1, at, CHUNK, CHUNK) {
                assert_eq!(range, at..at + CHUNK);
                stream.write(1, k);
            }
            stream.mark.release(1);
        })
    }

    /// A blocking waiter for `[start, end)` that reaches it: every chunk of it holds its bytes.
    fn wait_range(&self, start: u64, end: u64) -> u64 {
        let run = self
            .mark
            .wait_range(start, end, None)
            .expect("the stream does not fail")
            .expect("no timeout");
        assert!(
            run >= end,
            "woken with the run ending at {run}, before {end}"
        );
        for k in (start / CHUNK) as usize..(end / CHUNK) as usize {
            // SAFETY: the wait returned: chunk `k` of the range is present.
            let byte = self.chunks[k].with(|p| unsafe { *p });
            assert_eq!(byte, Self::byte(k), "chunk {k} of {start}..{end}");
        }
        run
    }
}

/// The sequential fill (chunks 0 and 1, claimed one at a time) and a fetch (chunk 2, claimed
/// whole) write at once; a waiter waits for a range that spans both writers' bytes, another
/// for the fetch's alone. The fill, reaching chunk 2, finds it present or claimed, never free:
/// no byte is written twice. The last publish completes the stream.
#[test]
fn fill_and_fetch_meet_and_wake_a_waiter_spanning_both() {
    model(Some(3), || {
        let stream = Stream::ranged(3);
        let spanning = Stream::spawn_wait_range(&stream, CHUNK, 3 * CHUNK);
        let fetch = Stream::spawn_fetch(&stream, 2);
        for k in 0..3 {
            let at = k as u64 * CHUNK;
            match stream.mark.claim_at(0, at, at + CHUNK) {
                At::Free { end } => {
                    assert_eq!(end, at + CHUNK);
                    stream.write(0, k);
                }
                At::Present { .. } | At::Claimed { .. } => assert_eq!(k, 2, "only the fetch's"),
            }
        }
        stream.mark.release(0);
        fetch.join().unwrap();
        assert_eq!(spanning.join().unwrap(), 3 * CHUNK);
        assert_eq!(stream.mark.status(), Status::Complete { len: 3 * CHUNK });
        assert_eq!(stream.mark.present(), vec![0..3 * CHUNK]);
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// A waiter on an island (bytes far ahead of the prefix) is woken by the fetch that writes it,
/// while the fill publishes below: only `publish_range` under the lock can wake it, so a lost
/// wake-up is a deadlock. Every interleaving.
#[test]
fn a_waiter_on_an_island_is_woken_by_its_fetch() {
    model(None, || {
        let stream = Stream::ranged(3);
        let waiter = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || stream.wait_range(2 * CHUNK, 3 * CHUNK))
        };
        let range = stream.mark.claim_fetch(1, 2 * CHUNK, CHUNK, CHUNK);
        assert_eq!(range, Some(2 * CHUNK..3 * CHUNK));
        stream.write(1, 2);
        stream.mark.release(1);
        assert_eq!(waiter.join().unwrap(), 3 * CHUNK);
        assert_eq!(stream.mark.present(), vec![2 * CHUNK..3 * CHUNK]);
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// A fetch cancelled mid-way: it has claimed chunks 1 and 2, written chunk 1, and stops (every
/// handle dropped), failing the stream and releasing its claim. A waiter on chunk 1 gets its
/// bytes or, if it looked after the failure with chunk 1 present, still its bytes; a waiter on
/// chunk 2 gets the error, never a hang and never unwritten bytes; the fill's chunk 0 stays
/// readable.
#[test]
fn a_fetch_cancelled_mid_way_fails_only_the_missing_bytes() {
    model(Some(3), || {
        let stream = Stream::ranged(3);
        let on_written = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || stream.wait_range(CHUNK, 2 * CHUNK))
        };
        let on_missing = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || {
                stream
                    .mark
                    .wait_range(2 * CHUNK, 3 * CHUNK, None)
                    .expect_err("never written")
            })
        };
        if let At::Free { .. } = stream.mark.claim_at(0, 0, CHUNK) {
            stream.write(0, 0);
        }
        stream.mark.release(0);
        let range = stream.mark.claim_fetch(1, CHUNK, 2 * CHUNK, CHUNK);
        assert_eq!(range, Some(CHUNK..3 * CHUNK));
        stream.write(1, 1);
        stream
            .mark
            .fail(io::Error::other("every handle was dropped"));
        stream.mark.release(1);
        assert_eq!(on_written.join().unwrap(), 2 * CHUNK);
        let error = on_missing.join().unwrap();
        assert!(error.to_string().contains("dropped"), "{error}");
        assert_eq!(stream.mark.present(), vec![0..2 * CHUNK]);
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}

/// `connections(2)`: two lanes of the fill (writers 10 and 11), each taking the lowest chunk
/// that is neither present nor claimed (`claim_lowest`) until none is free, and a fetch
/// (writer 1) of the last chunk, all at once; a waiter for a range across all three writers'
/// bytes. Every chunk is written exactly once (a second write fails `Stream::write`, and loom
/// reports the two as a race), the waiter is woken with its bytes written, and the last publish
/// completes the stream.
#[test]
fn two_lanes_and_a_fetch_claim_disjoint_chunks_and_wake_a_waiter_across_them() {
    model(Some(3), || {
        let stream = Stream::ranged(3);
        let across = Stream::spawn_wait_range(&stream, CHUNK, 3 * CHUNK);
        let fetch = Stream::spawn_fetch(&stream, 2);
        let lane = |stream: &Stream, me: u64| {
            while let Some(range) = stream.mark.claim_lowest(me, CHUNK) {
                assert_eq!(range.end - range.start, CHUNK, "{range:?}");
                stream.write(me, (range.start / CHUNK) as usize);
            }
            stream.mark.release(me);
        };
        let other = {
            let stream = Arc::clone(&stream);
            thread::spawn(move || lane(&stream, 11))
        };
        lane(&stream, 10);
        other.join().unwrap();
        fetch.join().unwrap();
        assert_eq!(across.join().unwrap(), 3 * CHUNK);
        assert_eq!(stream.mark.status(), Status::Complete { len: 3 * CHUNK });
        assert_eq!(stream.mark.present(), vec![0..3 * CHUNK]);
        assert_eq!(stream.mark.waiter_count(), 0);
    });
}
