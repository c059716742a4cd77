//! `Reader` as tokio's `AsyncRead + AsyncBufRead + AsyncSeek`, and `wait_for_async` /
//! `bytes_async` on a tokio runtime: correct bytes, no runtime worker ever blocked while data is
//! missing, and futures dropped mid-wait (tokio `select!` with a timer) that leak no waker
//! registration, move no cursor and hang nothing.
//!
//! Every wait is bounded (a generous hang guard), and nothing asserts on timing.
#![cfg(feature = "tokio")]
#![cfg(not(miri))]

mod common;

use common::wake::{assert_send, assert_send_static, channel_cache, counting_waker, held};
use common::{eventually, pattern, HANG_GUARD};
use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};
use streamcache::{Reader, Status, StreamCache};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, ReadBuf,
};
use tokio::runtime::Runtime;
use tokio::time::{sleep, timeout, MissedTickBehavior};

// `Reader` stays `Unpin` (the contract): tokio's `*Ext` methods need it, and so do users who
// poll it by hand.
const _: fn() = || {
    fn unpin<T: Unpin>() {}
    fn send_sync<T: Send + Sync>() {}
    unpin::<Reader>();
    send_sync::<Reader>();
};

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// Runs `body` on a 2-worker runtime under the hang guard: any single test's whole async body
/// must finish within it (a correct implementation needs well under a second).
fn run<F: Future<Output = ()>>(body: F) {
    runtime(2).block_on(async {
        timeout(HANG_GUARD, body)
            .await
            .expect("the test did not finish within the hang guard")
    });
}

// ---------------------------------------------------------------------------------------------
// No worker blocked

/// The stream of the ticker test: 32 MiB in 128 pieces of 256 KiB (4 MiB in 128 pieces of
/// 32 KiB under a sanitizer, which slows every byte copied tenfold and more).
const SLOW_LEN: usize = if cfg!(streamcache_sanitizer) {
    4 << 20
} else {
    32 << 20
};
const PIECE: usize = SLOW_LEN / 128;
/// Piece `k` is released once the ticker has ticked `(k + 1) * TICKS_PER_PIECE` times...
const TICKS_PER_PIECE: u64 = 2;
/// ...or, if the ticker does not tick (a blocked runtime), after this long, so that the test
/// then fails on its assertion (in about 128 * 25 ms) rather than hangs.
const PIECE_FALLBACK: Duration = Duration::from_millis(25);

/// A source that fills slowly, paced by the ticker of the test: the stream cannot complete
/// before the ticker has ticked `128 * TICKS_PER_PIECE` times, unless the ticker is starved.
struct Paced {
    data: Arc<[u8]>,
    at: usize,
    ticks: Arc<AtomicU64>,
}

impl io::Read for Paced {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.data.len() {
            return Ok(0);
        }
        let piece = self.at / PIECE;
        if self.at.is_multiple_of(PIECE) {
            let need = (piece as u64 + 1) * TICKS_PER_PIECE;
            let start = Instant::now();
            while self.ticks.load(Ordering::SeqCst) < need && start.elapsed() < PIECE_FALLBACK {
                thread::sleep(Duration::from_micros(250));
            }
        }
        let end = ((piece + 1) * PIECE).min(self.data.len());
        let n = buf.len().min(end - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// 16 tasks on a 2-worker runtime each `read_to_end` (half of them after seeking ahead) and
/// `seek` a slowly filling 32 MiB stream, while another task on the same runtime ticks.
///
/// Why a blocked worker fails this: the readers start before the data is there, so a reader
/// that blocked its worker thread (a blocking wait inside `poll_read`) would hold it until the
/// stream is complete. With 2 workers and 16 such readers both workers are held and the ticker
/// never runs; the source then advances only on its 25 ms fallback per piece and the readers
/// finish having seen the ticker at ~0 ticks. Readers that return `Pending` leave the workers
/// to the ticker, and the source releases its pieces as the ticks come, so the readers cannot
/// finish before the ticker has ticked about 256 times (asserted: more than 50).
#[test]
fn sixteen_tasks_on_two_workers_read_and_seek_while_a_ticker_keeps_ticking() {
    const READERS: usize = 16;
    let data: Arc<[u8]> = pattern(SLOW_LEN).into();
    let ticks = Arc::new(AtomicU64::new(0));
    let cache = StreamCache::builder()
        .expected_len(SLOW_LEN as u64)
        .spawn(Paced {
            data: Arc::clone(&data),
            at: 0,
            ticks: Arc::clone(&ticks),
        })
        .expect("spawn the filler");

    run(async move {
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_millis(1));
                // A starved ticker counts one tick when it runs again, not every missed one.
                interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };

        let tasks: Vec<_> = (0..READERS)
            .map(|i| {
                let mut reader = cache.reader();
                let data = Arc::clone(&data);
                let ticks = Arc::clone(&ticks);
                tokio::spawn(async move {
                    // Odd readers first seek ahead of what has arrived (a seek from the start
                    // never waits).
                    let start = if i % 2 == 1 {
                        (i * 1_234_567) % SLOW_LEN
                    } else {
                        0
                    };
                    let at = reader.seek(SeekFrom::Start(start as u64)).await?;
                    assert_eq!(at, start as u64);
                    let mut all = Vec::new();
                    let n = reader.read_to_end(&mut all).await?;
                    let ticks_when_done = ticks.load(Ordering::SeqCst);
                    assert_eq!(n, SLOW_LEN - start, "reader {i} read to the end");
                    assert!(all[..] == data[start..], "reader {i}: bytes differ");
                    assert_eq!(reader.position(), SLOW_LEN as u64);

                    // Seeks, now that the stream is complete: from the end, back, forward.
                    let pos = reader.seek(SeekFrom::End(-4096)).await?;
                    assert_eq!(pos, (SLOW_LEN - 4096) as u64);
                    let mut tail = vec![0u8; 4096];
                    reader.read_exact(&mut tail).await?;
                    assert!(tail[..] == data[SLOW_LEN - 4096..], "reader {i}: tail");
                    let back = (i * 987_654) % (SLOW_LEN - 100_000);
                    reader.seek(SeekFrom::Start(back as u64)).await?;
                    let mut piece = vec![0u8; 100_000];
                    reader.read_exact(&mut piece).await?;
                    assert!(piece[..] == data[back..back + 100_000], "reader {i}: piece");
                    let pos = reader.seek(SeekFrom::Current(-50_000)).await?;
                    assert_eq!(pos, (back + 50_000) as u64);
                    assert_eq!(reader.stream_position().await?, pos);
                    assert_eq!(reader.read_u8().await?, data[back + 50_000]);
                    io::Result::Ok(ticks_when_done)
                })
            })
            .collect();

        let mut fewest_ticks = u64::MAX;
        for (i, task) in tasks.into_iter().enumerate() {
            let ticks_when_done = task
                .await
                .unwrap_or_else(|e| panic!("reader task {i} panicked: {e}"))
                .unwrap_or_else(|e| panic!("reader task {i} failed: {e}"));
            fewest_ticks = fewest_ticks.min(ticks_when_done);
        }
        ticker.abort();
        eprintln!("the ticker had ticked {fewest_ticks} times when the first reader finished");
        assert!(
            fewest_ticks > 50,
            "a reader finished when the ticker had ticked only {fewest_ticks} times: a worker \
             was blocked while the readers waited"
        );
        assert_eq!(
            cache.status(),
            Status::Complete {
                len: SLOW_LEN as u64
            }
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Reading and seeking through tokio's traits

#[test]
fn read_exact_read_line_and_seek_match_the_blocking_reader() {
    let text = b"alpha\nbeta\ngamma\n".to_vec();
    let cache = StreamCache::new(io::Cursor::new(text.clone())).expect("spawn");
    run(async move {
        let mut reader = cache.reader();
        let mut line = String::new();
        assert_eq!(reader.read_line(&mut line).await.expect("line"), 6);
        assert_eq!(line, "alpha\n");
        assert_eq!(reader.position(), 6);

        let mut four = [0u8; 4];
        reader.read_exact(&mut four).await.expect("read_exact");
        assert_eq!(&four, b"beta");

        assert_eq!(reader.seek(SeekFrom::End(-6)).await.expect("seek"), 11);
        let mut rest = String::new();
        reader.read_to_string(&mut rest).await.expect("to end");
        assert_eq!(rest, "gamma\n");
        // At the end: reads return 0, fill_buf is empty.
        assert_eq!(reader.read(&mut four).await.expect("read at end"), 0);
        assert!(reader.fill_buf().await.expect("fill_buf at end").is_empty());

        assert_eq!(reader.seek(SeekFrom::Current(-11)).await.expect("seek"), 6);
        assert_eq!(reader.stream_position().await.expect("position"), 6);
        let mut lines = reader.clone().lines();
        assert_eq!(
            lines.next_line().await.expect("line").as_deref(),
            Some("beta")
        );
        assert_eq!(
            lines.next_line().await.expect("line").as_deref(),
            Some("gamma")
        );
        assert_eq!(lines.next_line().await.expect("end"), None);

        // Past the end is allowed; reads there return 0.
        assert_eq!(
            reader.seek(SeekFrom::Start(1000)).await.expect("seek"),
            1000
        );
        assert_eq!(reader.read(&mut four).await.expect("read"), 0);
        assert_eq!(
            reader.seek(SeekFrom::Start(u64::MAX)).await.expect("seek"),
            u64::MAX
        );
        assert_eq!(reader.read(&mut four).await.expect("read"), 0);
        assert!(reader.fill_buf().await.expect("fill_buf").is_empty());

        // A zero-length read is ready at once, even before the data is there.
        let mut empty = [0u8; 0];
        assert_eq!(
            cache.reader().read(&mut empty).await.expect("empty read"),
            0
        );
    });
}

#[test]
fn invalid_seeks_are_invalid_input_and_leave_the_cursor() {
    let cache = StreamCache::new(&b"0123456789"[..]).expect("spawn");
    run(async move {
        let mut reader = cache.reader_at(3);
        for to in [
            SeekFrom::Current(-4),
            SeekFrom::End(-11),
            SeekFrom::End(i64::MIN),
        ] {
            let err = reader.seek(to).await.expect_err("a seek before byte 0");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{to:?}");
            assert_eq!(reader.position(), 3, "{to:?} moved the cursor");
        }
        reader
            .seek(SeekFrom::Start(u64::MAX - 1))
            .await
            .expect("seek");
        let err = reader
            .seek(SeekFrom::Current(2))
            .await
            .expect_err("past u64::MAX");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(reader.position(), u64::MAX - 1);
        // The reader still works after the errors.
        reader.seek(SeekFrom::Start(7)).await.expect("seek");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.expect("read");
        assert_eq!(rest, b"789");
    });
}

#[test]
fn fill_buf_hands_out_the_caches_own_memory() {
    let data = pattern(3 << 20);
    let cache = StreamCache::builder()
        .memory_limit(1 << 20) // spilled: the mapping, not the arena
        .spawn(io::Cursor::new(data.clone()))
        .expect("spawn");
    run(async move {
        cache.wait_complete().expect("complete");
        let mut reader = cache.reader_at(12_345);
        let buf = reader.fill_buf().await.expect("fill_buf");
        let slice = cache.slice(12_345..).expect("slice");
        assert_eq!(buf.as_ptr(), slice.as_ptr(), "fill_buf copied");
        assert_eq!(buf.len(), slice.len());
        Pin::new(&mut reader).consume(1000);
        assert_eq!(reader.position(), 13_345);

        // Read the whole stream through fill_buf/consume only.
        let mut reader = cache.reader();
        let mut got = Vec::new();
        loop {
            let buf = reader.fill_buf().await.expect("fill_buf");
            if buf.is_empty() {
                break;
            }
            let n = buf.len().min(70_001);
            got.extend_from_slice(&buf[..n]);
            reader.consume(n);
        }
        assert!(got == data, "fill_buf/consume bytes differ");
    });
}

#[test]
fn readers_waiting_on_a_live_stream_get_every_chunk_as_it_is_sent() {
    let data = pattern(1 << 20);
    let (tx, cache) = channel_cache();
    run(async move {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let mut reader = cache.reader();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    if i % 2 == 0 {
                        reader.read_to_end(&mut got).await?;
                    } else {
                        // Small reads: most of them wait.
                        let mut buf = [0u8; 1000];
                        loop {
                            let n = reader.read(&mut buf).await?;
                            if n == 0 {
                                break;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                    }
                    io::Result::Ok(got)
                })
            })
            .collect();
        // Send from a plain thread, in uneven chunks with pauses (empty chunks are skipped).
        let sender = {
            let data = data.clone();
            thread::spawn(move || {
                let mut at = 0;
                for size in [1usize, 0, 4095, 65_536, 7, 0, 100_000].iter().cycle() {
                    if at >= data.len() {
                        break;
                    }
                    let end = (at + size).min(data.len());
                    tx.send(Ok(data[at..end].to_vec()))
                        .expect("the filler is alive");
                    at = end;
                    thread::sleep(Duration::from_micros(300));
                }
            })
        };
        for (i, task) in tasks.into_iter().enumerate() {
            let got = task.await.expect("no panic").expect("read");
            assert!(got == data, "reader {i}: bytes differ");
        }
        sender.join().expect("sender");
    });
}

#[test]
fn a_failed_stream_fails_async_readers_with_the_source_error() {
    const CUT: usize = 100_000;
    let data = pattern(CUT);
    let (tx, cache) = channel_cache();
    run(async move {
        let waiting: Vec<_> = (0..4)
            .map(|i| {
                let mut reader = cache.reader();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let err = if i == 3 {
                        reader
                            .seek(SeekFrom::End(0))
                            .await
                            .expect_err("seek to a failed end")
                    } else {
                        reader
                            .read_to_end(&mut got)
                            .await
                            .expect_err("read past the cut")
                    };
                    (err, got, reader.position())
                })
            })
            .collect();
        tx.send(Ok(data.clone())).expect("send");
        tx.send(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "peer went away",
        )))
        .expect("send");
        for (i, task) in waiting.into_iter().enumerate() {
            let (err, got, pos) = task.await.expect("no panic");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "reader {i}");
            assert!(
                err.to_string().contains("peer went away"),
                "reader {i}: {err}"
            );
            if i == 3 {
                assert_eq!(pos, 0, "a failed seek does not move the cursor");
            } else {
                assert_eq!(got.len(), CUT, "reader {i} got everything before the cut");
                assert!(got == data, "reader {i}: bytes differ");
                assert_eq!(pos, CUT as u64);
            }
        }
        // Everything before the cut stays readable.
        let mut reader = cache.reader_at(10);
        let mut buf = vec![0u8; CUT - 10];
        reader.read_exact(&mut buf).await.expect("before the cut");
        assert!(buf[..] == data[10..]);
        let err = reader.read(&mut [0u8; 1]).await.expect_err("at the cut");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let err = reader.fill_buf().await.expect_err("at the cut");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(reader.position(), CUT as u64);
    });
}

// ---------------------------------------------------------------------------------------------
// wait_for_async / bytes_async

#[test]
fn wait_for_async_and_bytes_async_give_the_blocking_answers() {
    use std::ops::Bound;
    let data = pattern(10_000);
    let cache = StreamCache::new(io::Cursor::new(data.clone())).expect("spawn");
    run(async move {
        assert_eq!(cache.wait_for_async(5).await.expect("wait"), 10_000);
        assert_eq!(cache.wait_for_async(0).await.expect("wait"), 10_000);
        // Past the end: the end, like `wait_for`.
        assert_eq!(cache.wait_for_async(20_000).await.expect("wait"), 10_000);
        assert_eq!(cache.wait_for_async(u64::MAX).await.expect("wait"), 10_000);

        let bytes = cache.bytes_async(100..200).await.expect("bytes");
        assert_eq!(bytes, data[100..200]);
        assert_eq!(
            bytes.as_ptr(),
            cache.slice(100..200).expect("slice").as_ptr(),
            "bytes_async copied"
        );
        assert_eq!(cache.bytes_async(..).await.expect("all"), data[..]);
        assert_eq!(
            cache.bytes_async(9_990..).await.expect("tail"),
            data[9_990..]
        );
        assert_eq!(cache.bytes_async(..=9).await.expect("head"), data[..10]);
        assert!(cache.bytes_async(10_000..).await.expect("empty").is_empty());
        assert!(cache
            .bytes_async(10_000..10_000)
            .await
            .expect("empty")
            .is_empty());

        let err = cache
            .bytes_async(9_000..10_001)
            .await
            .expect_err("past the end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = cache
            .bytes_async(20_000..20_001)
            .await
            .expect_err("past the end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        // Inverted and overflowing ranges: InvalidInput, never a wait or a panic.
        let inverted = (Bound::Included(200u64), Bound::Excluded(100u64));
        let err = cache.bytes_async(inverted).await.expect_err("inverted");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = cache.bytes_async(5..=u64::MAX).await.expect_err("overflow");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let excluded_start = (Bound::Excluded(u64::MAX), Bound::Unbounded);
        let err = cache
            .bytes_async(excluded_start)
            .await
            .expect_err("overflow");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn invalid_ranges_fail_at_once_even_while_the_stream_is_filling() {
    use std::ops::Bound;
    let (_tx, cache) = channel_cache(); // never sends: still filling
    run(async move {
        let inverted = (Bound::Included(2u64), Bound::Excluded(1u64));
        let err = cache.bytes_async(inverted).await.expect_err("inverted");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = cache.bytes_async(..=u64::MAX).await.expect_err("overflow");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // Nothing is needed for offset 0 or an empty range at 0.
        assert_eq!(cache.wait_for_async(0).await.expect("wait"), 0);
        assert!(cache.bytes_async(0..0).await.expect("empty").is_empty());
    });
}

#[test]
fn wait_for_async_and_bytes_async_on_a_failed_stream() {
    let data = pattern(600);
    let (tx, cache) = channel_cache();
    run(async move {
        let early = tokio::spawn(cache.wait_for_async(601));
        let early_bytes = tokio::spawn(cache.bytes_async(500..700));
        let fine = tokio::spawn(cache.bytes_async(100..600));
        tx.send(Ok(data[..300].to_vec())).expect("send");
        tx.send(Ok(data[300..].to_vec())).expect("send");
        tx.send(Err(io::Error::new(io::ErrorKind::TimedOut, "too slow")))
            .expect("send");

        let err = early
            .await
            .expect("no panic")
            .expect_err("past the failure");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("too slow"), "{err}");
        let err = early_bytes
            .await
            .expect("no panic")
            .expect_err("past the failure");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            fine.await.expect("no panic").expect("before"),
            data[100..600]
        );

        // At or below the failure offset: the available count, as `wait_for`.
        assert_eq!(cache.wait_for_async(600).await.expect("at the cut"), 600);
        assert_eq!(cache.wait_for_async(1).await.expect("below"), 600);
        let err = cache.wait_for_async(u64::MAX).await.expect_err("the end");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let err = cache.bytes_async(..).await.expect_err("the whole stream");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(cache.bytes_async(..600).await.expect("before"), data[..]);
        assert_eq!(
            cache.status(),
            Status::Failed {
                available: 600,
                error: io::ErrorKind::TimedOut
            }
        );
    });
}

#[test]
fn async_futures_are_send_and_static() {
    let (_tx, cache) = channel_cache();
    let wait = cache.wait_for_async(1);
    let bytes = cache.bytes_async(1..2);
    assert_send_static(&wait);
    assert_send_static(&bytes);
    drop(cache); // the futures do not borrow the cache
    drop((wait, bytes));

    let (_tx, cache) = channel_cache();
    let mut reader = cache.reader();
    let mut buf = [0u8; 4];
    let mut all = Vec::new();
    let mut line = String::new();
    assert_send(&reader.read(&mut buf));
    assert_send(&reader.read_to_end(&mut all));
    assert_send(&reader.read_line(&mut line));
    assert_send(&reader.fill_buf());
    assert_send(&reader.seek(SeekFrom::End(0)));
}

// ---------------------------------------------------------------------------------------------
// Cancellation: futures dropped mid-wait

#[test]
fn a_dropped_wait_for_async_deregisters_its_waker() {
    let (tx, cache) = channel_cache();
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut wait = pin!(cache.wait_for_async(10));
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert_eq!(held(&count), 1, "a pending wait holds its waker");
        // Polling again (as an executor does after a spurious wake) replaces, never adds.
        for _ in 0..100 {
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(held(&count), 1, "re-polling added registrations");
    }
    assert_eq!(
        held(&count),
        0,
        "dropping the future leaked its registration"
    );

    // Many futures, each dropped while pending: none stays registered, none is woken.
    for target in 1..=1000 {
        let mut wait = pin!(cache.wait_for_async(target));
        assert!(wait.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(held(&count), 0);
    tx.send(Ok(vec![7; 2000])).expect("send");
    assert_eq!(cache.wait_for(2000).expect("wait"), 2000);
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        0,
        "a dropped future was woken"
    );

    // A registration that fires is consumed: the watermark keeps no copy.
    {
        let mut wait = pin!(cache.wait_for_async(3000));
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        tx.send(Ok(vec![7; 1000])).expect("send");
        eventually("the pending wait is woken", || {
            count.0.load(Ordering::SeqCst) == 1
        });
        eventually("the woken registration is released", || held(&count) == 0);
        match wait.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(available)) => assert_eq!(available, 3000),
            other => panic!("expected Ready(Ok(3000)), got {other:?}"),
        }
    }
}

/// Polls tokio's `poll_read` once with `cx`.
fn poll_read_once(reader: &mut Reader, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<usize> {
    let mut buf = ReadBuf::new(buf);
    match Pin::new(reader).poll_read(cx, &mut buf) {
        Poll::Ready(result) => {
            result.expect("read");
            Poll::Ready(buf.filled().len())
        }
        Poll::Pending => Poll::Pending,
    }
}

#[test]
fn a_reader_holds_at_most_one_registration_and_releases_it() {
    let (tx, cache) = channel_cache();
    let mut reader = cache.reader();
    let mut buf = [0u8; 16];

    // One waker after another (a task moved between executors, or select! re-polling with a
    // new waker each time): only the latest stays registered.
    let wakers: Vec<_> = (0..50).map(|_| counting_waker()).collect();
    for (count, waker) in &wakers {
        let mut cx = Context::from_waker(waker);
        assert_eq!(
            poll_read_once(&mut reader, &mut cx, &mut buf),
            Poll::Pending
        );
        assert_eq!(held(count), 1);
    }
    let (last, rest) = wakers.split_last().expect("wakers");
    for (i, (count, _)) in rest.iter().enumerate() {
        assert_eq!(held(count), 0, "waker {i} is still registered");
    }
    assert_eq!(held(&last.0), 1);

    // AsyncBufRead and AsyncSeek (End waits) share the one registration.
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut reader).poll_fill_buf(&mut cx).is_pending());
    assert_eq!((held(&last.0), held(&count)), (0, 1));
    let (seek_count, seek_waker) = counting_waker();
    let mut cx = Context::from_waker(&seek_waker);
    AsyncSeek::start_seek(Pin::new(&mut reader), SeekFrom::End(0)).expect("start_seek");
    assert!(AsyncSeek::poll_complete(Pin::new(&mut reader), &mut cx).is_pending());
    assert_eq!((held(&count), held(&seek_count)), (0, 1));
    assert_eq!(reader.position(), 0, "a pending seek moved the cursor");

    // Dropping the reader releases it.
    drop(reader);
    assert_eq!(
        held(&seek_count),
        0,
        "a dropped reader leaked its registration"
    );

    // A reader whose wait resolves drops its registration too, and reads.
    let mut reader = cache.reader();
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(
        poll_read_once(&mut reader, &mut cx, &mut buf),
        Poll::Pending
    );
    tx.send(Ok(b"hello".to_vec())).expect("send");
    assert_eq!(cache.wait_for(5).expect("wait"), 5);
    assert_eq!(
        poll_read_once(&mut reader, &mut cx, &mut buf),
        Poll::Ready(5)
    );
    assert_eq!(&buf[..5], b"hello");
    eventually("the resolved wait is released", || held(&count) == 0);
    assert_eq!(reader.position(), 5);
}

#[test]
fn reads_dropped_mid_wait_by_select_move_no_cursor_and_hang_nothing() {
    const TASKS: usize = 16;
    const CANCELS: usize = 20;
    let data = pattern(256 << 10);
    let (tx, cache) = channel_cache();
    tx.send(Ok(data[..1000].to_vec())).expect("send");
    assert_eq!(cache.wait_for(1000).expect("wait"), 1000);

    run(async move {
        let cancelled = Arc::new(tokio::sync::Barrier::new(TASKS + 1));
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                // Half of the readers wait at the end of what has arrived, half further on.
                let start = if i % 2 == 0 { 1000 } else { 5000 + i as u64 };
                let mut reader = cache.reader_at(start);
                let cache = cache.clone();
                let cancelled = Arc::clone(&cancelled);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for round in 0..CANCELS {
                        // Each kind of wait, raced against a timer that wins: the data is not
                        // sent before every task is through here.
                        tokio::select! {
                            r = reader.read(&mut buf) => panic!("read finished early: {r:?}"),
                            _ = sleep(Duration::from_millis(1)) => {}
                        }
                        tokio::select! {
                            r = reader.read_exact(&mut buf) => panic!("read_exact: {r:?}"),
                            _ = sleep(Duration::from_millis(1)) => {}
                        }
                        tokio::select! {
                            r = reader.fill_buf() => panic!("fill_buf: {:?}", r.map(<[u8]>::len)),
                            _ = sleep(Duration::from_millis(1)) => {}
                        }
                        let mut all = Vec::new();
                        tokio::select! {
                            r = reader.read_to_end(&mut all) => panic!("read_to_end: {r:?}"),
                            _ = sleep(Duration::from_millis(1)) => {}
                        }
                        tokio::select! {
                            r = cache.wait_for_async(start + 1) => panic!("wait_for_async: {r:?}"),
                            _ = sleep(Duration::from_millis(1)) => {}
                        }
                        tokio::select! {
                            r = cache.bytes_async(start..start + 10) => panic!("bytes_async: {r:?}"),
                            _ = sleep(Duration::from_millis(1)) => {}
                        }
                        assert_eq!(reader.position(), start, "round {round} moved the cursor");
                    }
                    cancelled.wait().await;
                    // Nothing hangs: the same reader reads everything once it is sent.
                    let mut rest = Vec::new();
                    reader.read_to_end(&mut rest).await?;
                    io::Result::Ok((start, rest))
                })
            })
            .collect();
        cancelled.wait().await;
        let mut at = 1000;
        while at < data.len() {
            let end = (at + 10_000).min(data.len());
            tx.send(Ok(data[at..end].to_vec())).expect("send");
            at = end;
        }
        drop(tx);
        for (i, task) in tasks.into_iter().enumerate() {
            let (start, rest) = task.await.expect("no panic").expect("read");
            assert!(rest[..] == data[start as usize..], "task {i}: bytes differ");
        }
    });
}

#[test]
fn a_cancelled_read_moves_no_cursor_under_timeout() {
    let (tx, cache) = channel_cache();
    tx.send(Ok(b"abc".to_vec())).expect("send");
    run(async move {
        let mut reader = cache.reader();
        let mut three = [0u8; 3];
        reader.read_exact(&mut three).await.expect("read");
        assert_eq!(&three, b"abc");

        // Nothing has arrived past the cursor: the read is pending when the timer drops it.
        let mut buf = [0u8; 4];
        let r = timeout(Duration::from_millis(5), reader.read(&mut buf)).await;
        assert!(r.is_err(), "nothing to read yet: the read must time out");
        assert_eq!(reader.position(), 3, "a cancelled read moved the cursor");

        let r = timeout(Duration::from_millis(5), reader.seek(SeekFrom::End(0))).await;
        assert!(
            r.is_err(),
            "the end is not known yet: the seek must time out"
        );
        assert_eq!(reader.position(), 3, "a cancelled seek moved the cursor");

        tx.send(Ok(b"defg".to_vec())).expect("send");
        let n = reader.read(&mut buf).await.expect("read");
        assert!(n > 0);
        assert_eq!(&buf[..n], &b"defg"[..n]);
        assert_eq!(reader.position(), 3 + n as u64);

        // The read dropped the abandoned seek: asking for the position neither waits for the
        // end (the stream is still open) nor jumps there.
        let at = timeout(Duration::from_secs(5), reader.stream_position())
            .await
            .expect("stream_position waited for an abandoned seek")
            .expect("position");
        assert_eq!(at, 3 + n as u64);
        drop(tx);
    });
}

/// Without a read in between, an abandoned `seek(End)` stays submitted, as tokio's `AsyncSeek`
/// contract has it ("the job has been submitted"): the next seek completes it first, then
/// applies its own, so the cursor lands where the latest seek says.
#[test]
fn a_later_seek_completes_an_abandoned_seek_then_applies_its_own() {
    let (tx, cache) = channel_cache();
    tx.send(Ok(b"abcdef".to_vec())).expect("send");
    run(async move {
        let mut reader = cache.reader();
        let r = timeout(Duration::from_millis(5), reader.seek(SeekFrom::End(-1))).await;
        assert!(
            r.is_err(),
            "the end is not known yet: the seek must time out"
        );
        assert_eq!(reader.position(), 0);

        // Submit the next seek, then end the stream: the abandoned one completes (to 5),
        // then `Current(-2)` applies from there.
        let seek = tokio::spawn(async move {
            let at = reader.seek(SeekFrom::Current(-2)).await;
            (at, reader)
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(tx);
        let (at, mut reader) = seek.await.expect("no panic");
        assert_eq!(at.expect("seek"), 3);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.expect("read");
        assert_eq!(rest, b"def");
    });
}

/// A stream that is pending forever and says when it is dropped.
struct NeverReady(mpsc::Sender<()>);

impl futures_core::Stream for NeverReady {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Pending
    }
}

impl Drop for NeverReady {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[test]
fn pending_async_waits_end_when_every_handle_is_dropped() {
    let (dropped_tx, dropped) = mpsc::channel();
    let cache = StreamCache::builder()
        .spawn_stream(NeverReady(dropped_tx))
        .expect("spawn");
    run(async move {
        // wait_for_async holds no handle: it does not keep the filler going, and it ends (with
        // an error) once the filler stops.
        let wait = tokio::spawn(cache.wait_for_async(1));
        let mut reader = cache.reader();
        let mut buf = [0u8; 8];
        let r = timeout(Duration::from_millis(5), reader.read(&mut buf)).await;
        assert!(r.is_err(), "the read must still be pending");
        drop(reader);
        drop(cache);
        let result = wait.await.expect("no panic");
        assert!(
            result.is_err(),
            "a stopped stream cannot give byte 1: {result:?}"
        );
    });
    dropped
        .recv_timeout(HANG_GUARD)
        .expect("the filler stopped and dropped the stream");
}
