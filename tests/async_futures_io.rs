//! `Reader` as futures-io's `AsyncRead + AsyncBufRead + AsyncSeek`, driven by the `futures`
//! crate's small executor (`block_on`, one thread): correct bytes and seeks, errors that reach
//! every reader, no thread blocked while data is missing (readers and the producer share one
//! thread), and reads dropped mid-wait that move no cursor and leak no waker registration.
//!
//! Every wait is bounded (a generous hang guard), and nothing asserts on timing.
#![cfg(feature = "futures-io")]
#![cfg(not(miri))]

mod common;

use common::wake::{assert_send, channel_cache, counting_waker, held};
use common::{eventually, no_hang, pattern};
use futures::executor::block_on;
use futures::future::join_all;
use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt};
use futures::poll;
use futures_io::{AsyncBufRead, AsyncRead, AsyncSeek};
use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;
use streamcache::{Reader, StreamCache};

// `Reader` stays `Unpin` (the contract): futures' `*Ext` methods need it.
const _: fn() = || {
    fn unpin<T: Unpin>() {}
    unpin::<Reader>();
};

#[test]
fn readers_and_the_producer_share_one_thread() {
    // One thread polls 8 readers and the task that sends the data. A reader that blocked the
    // thread while waiting would starve the producer: the test would hang (and fail on the
    // hang guard). With readers that return Pending, the producer runs between their polls.
    const LEN: usize = 2 << 20;
    const CHUNK: usize = 50_000;
    let data = pattern(LEN);
    let (tx, cache) = channel_cache();
    let expected = data.clone();
    let results = no_hang("the readers and the producer", move || {
        block_on(async move {
            let readers = (0..8).map(|i| {
                let mut reader = cache.reader();
                async move {
                    let mut got = Vec::new();
                    if i % 2 == 0 {
                        reader.read_to_end(&mut got).await?;
                    } else {
                        // Zero-copy: straight from fill_buf.
                        loop {
                            let buf = reader.fill_buf().await?;
                            if buf.is_empty() {
                                break;
                            }
                            got.extend_from_slice(buf);
                            let n = buf.len();
                            reader.consume_unpin(n);
                        }
                    }
                    io::Result::Ok(got)
                }
            });
            let producer = {
                let cache = cache.clone();
                async move {
                    for (k, chunk) in data.chunks(CHUNK).enumerate() {
                        tx.send(Ok(chunk.to_vec())).expect("the filler is alive");
                        // Let the readers run before the next chunk: wait (asynchronously) for
                        // this one to be published.
                        let end = (k * CHUNK + chunk.len()) as u64;
                        assert!(cache.wait_for_async(end).await.expect("wait") >= end);
                    }
                }
            };
            let (results, ()) = futures::join!(join_all(readers), producer);
            results
        })
    });
    for (i, got) in results.into_iter().enumerate() {
        let got = got.expect("read");
        assert!(got == expected, "reader {i}: bytes differ");
    }
}

#[test]
fn readers_on_many_threads_each_with_its_own_executor() {
    let data = pattern(4 << 20);
    let (tx, cache) = channel_cache();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let mut reader = cache.reader_at(i * 1000);
            thread::spawn(move || {
                block_on(async move {
                    let mut got = Vec::new();
                    reader.read_to_end(&mut got).await?;
                    // Then seek back, from the end and from the cursor.
                    let end = reader.seek(SeekFrom::End(-10)).await?;
                    let mut ten = [0u8; 10];
                    reader.read_exact(&mut ten).await?;
                    let back = reader.seek(SeekFrom::Current(-(end as i64) - 10)).await?;
                    io::Result::Ok((got, end, ten, back))
                })
            })
        })
        .collect();
    let sender = {
        let data = data.clone();
        thread::spawn(move || {
            for chunk in data.chunks(100_000) {
                tx.send(Ok(chunk.to_vec())).expect("send");
                thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let results = no_hang("the reader threads", move || {
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic").expect("read"))
            .collect::<Vec<_>>()
    });
    sender.join().expect("sender");
    let len = data.len();
    for (i, (got, end, ten, back)) in results.into_iter().enumerate() {
        assert!(got[..] == data[i * 1000..], "reader {i}: bytes differ");
        assert_eq!(end, (len - 10) as u64);
        assert_eq!(ten[..], data[len - 10..]);
        assert_eq!(back, 0);
    }
}

#[test]
fn read_line_read_exact_seek_and_copy() {
    let text = b"one\ntwo\nthree\n".to_vec();
    let cache = StreamCache::new(io::Cursor::new(text.clone())).expect("spawn");
    no_hang("the reads and seeks", move || {
        block_on(async move {
            let mut reader = cache.reader();
            let mut line = String::new();
            assert_eq!(reader.read_line(&mut line).await.expect("line"), 4);
            assert_eq!(line, "one\n");
            let mut three = [0u8; 3];
            reader.read_exact(&mut three).await.expect("read_exact");
            assert_eq!(&three, b"two");
            assert_eq!(reader.position(), 7);

            assert_eq!(reader.seek(SeekFrom::End(-6)).await.expect("seek"), 8);
            let mut rest = String::new();
            reader.read_to_string(&mut rest).await.expect("rest");
            assert_eq!(rest, "three\n");
            assert_eq!(reader.read(&mut three).await.expect("at end"), 0);
            assert!(reader.fill_buf().await.expect("at end").is_empty());

            assert_eq!(reader.seek(SeekFrom::Current(-10)).await.expect("seek"), 4);
            assert_eq!(reader.seek(SeekFrom::Start(2)).await.expect("seek"), 2);
            let mut out = futures::io::Cursor::new(Vec::new());
            let copied = futures::io::copy_buf(&mut reader, &mut out)
                .await
                .expect("copy");
            assert_eq!(copied, text.len() as u64 - 2);
            assert_eq!(out.into_inner(), text[2..]);

            // Past the end is allowed; reads there return 0.
            assert_eq!(reader.seek(SeekFrom::Start(500)).await.expect("seek"), 500);
            assert_eq!(reader.read(&mut three).await.expect("past end"), 0);
            assert_eq!(
                reader.seek(SeekFrom::Start(u64::MAX)).await.expect("seek"),
                u64::MAX
            );
            assert_eq!(reader.read(&mut three).await.expect("at u64::MAX"), 0);
            assert!(reader.fill_buf().await.expect("at u64::MAX").is_empty());

            // Bad seeks: InvalidInput, cursor unchanged.
            reader.seek(SeekFrom::Start(5)).await.expect("seek");
            for to in [
                SeekFrom::Current(-6),
                SeekFrom::End(-100),
                SeekFrom::End(i64::MIN),
            ] {
                let err = reader.seek(to).await.expect_err("before byte 0");
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{to:?}");
                assert_eq!(reader.position(), 5, "{to:?} moved the cursor");
            }
            reader.seek(SeekFrom::Start(u64::MAX)).await.expect("seek");
            let err = reader
                .seek(SeekFrom::Current(1))
                .await
                .expect_err("overflow");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(reader.position(), u64::MAX);
        })
    });
}

#[test]
fn fill_buf_hands_out_the_caches_own_memory() {
    let data = pattern(3 << 20);
    let cache = StreamCache::builder()
        .memory_limit(1 << 20)
        .spawn(io::Cursor::new(data))
        .expect("spawn");
    no_hang("fill_buf", move || {
        block_on(async move {
            cache.wait_complete().expect("complete");
            let mut reader = cache.reader_at(2 << 20);
            let buf = reader.fill_buf().await.expect("fill_buf");
            let slice = cache.slice(2 << 20..).expect("slice");
            assert_eq!(buf.as_ptr(), slice.as_ptr(), "fill_buf copied");
            assert_eq!(buf.len(), slice.len());
            Pin::new(&mut reader).consume(10);
            assert_eq!(reader.position(), (2 << 20) + 10);
        })
    });
}

#[test]
fn a_failed_stream_fails_readers_with_the_source_error() {
    let data = pattern(70_000);
    let (tx, cache) = channel_cache();
    let waiting: Vec<_> = (0..3)
        .map(|i| {
            let mut reader = cache.reader();
            thread::spawn(move || {
                block_on(async move {
                    let mut got = Vec::new();
                    let err = match i {
                        0 => reader
                            .read_to_end(&mut got)
                            .await
                            .expect_err("past the cut"),
                        1 => reader.seek(SeekFrom::End(0)).await.expect_err("failed end"),
                        _ => {
                            reader.seek(SeekFrom::Start(80_000)).await.expect("seek");
                            reader.fill_buf().await.expect_err("past the cut")
                        }
                    };
                    (err, got.len(), reader.position())
                })
            })
        })
        .collect();
    tx.send(Ok(data.clone())).expect("send");
    tx.send(Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe burst")))
        .expect("send");
    let results = no_hang("the waiting readers", move || {
        waiting
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect::<Vec<_>>()
    });
    for (i, (err, got, pos)) in results.into_iter().enumerate() {
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "reader {i}");
        assert!(err.to_string().contains("pipe burst"), "reader {i}: {err}");
        match i {
            0 => assert_eq!((got, pos), (70_000, 70_000)),
            1 => assert_eq!(pos, 0, "a failed seek moved the cursor"),
            _ => assert_eq!(pos, 80_000),
        }
    }
    // Everything before the cut stays readable.
    block_on(async {
        let mut reader = cache.reader_at(69_990);
        let mut ten = [0u8; 10];
        reader.read_exact(&mut ten).await.expect("before the cut");
        assert_eq!(ten[..], data[69_990..]);
        let err = reader.read(&mut ten).await.expect_err("at the cut");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    });
}

#[test]
fn a_cancelled_read_or_seek_moves_no_cursor() {
    let (tx, cache) = channel_cache();
    tx.send(Ok(b"abc".to_vec())).expect("send");
    cache.wait_for(3).expect("wait");
    let mut reader = cache.reader();
    block_on(async {
        let mut buf = [0u8; 2];
        reader.read_exact(&mut buf).await.expect("read");
        assert_eq!(reader.position(), 2);

        // Pending once, then dropped: nothing moves.
        let mut big = [0u8; 10];
        {
            let mut read = reader.read(&mut big);
            // There is one byte: the read is ready at once with it...
            assert!(matches!(poll!(&mut read), Poll::Ready(Ok(1))));
        }
        assert_eq!(reader.position(), 3);
        {
            // ...and now nothing: pending.
            let mut read = reader.read(&mut big);
            assert!(poll!(&mut read).is_pending());
        }
        assert_eq!(reader.position(), 3, "a cancelled read moved the cursor");
        {
            let mut exact = reader.read_exact(&mut big);
            assert!(poll!(&mut exact).is_pending());
        }
        assert_eq!(
            reader.position(),
            3,
            "a cancelled read_exact moved the cursor"
        );
        {
            let mut fill = reader.fill_buf();
            assert!(poll!(&mut fill).is_pending());
        }
        assert_eq!(reader.position(), 3);
        {
            let mut seek = reader.seek(SeekFrom::End(-1));
            assert!(poll!(&mut seek).is_pending(), "the end is not known yet");
        }
        assert_eq!(reader.position(), 3, "a cancelled seek moved the cursor");
    });
    // The abandoned seek left nothing behind: reading goes on from 3.
    tx.send(Ok(b"defg".to_vec())).expect("send");
    drop(tx);
    let rest = no_hang("the rest", move || {
        block_on(async move {
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).await.expect("rest");
            (rest, reader.position())
        })
    });
    assert_eq!(rest, (b"defg".to_vec(), 7));
}

#[test]
fn a_reader_holds_at_most_one_registration_and_releases_it() {
    let (tx, cache) = channel_cache();
    let mut reader = cache.reader();
    let mut buf = [0u8; 8];
    let (first, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut reader)
        .poll_read(&mut cx, &mut buf)
        .is_pending());
    assert_eq!(held(&first), 1);
    for _ in 0..100 {
        assert!(Pin::new(&mut reader)
            .poll_read(&mut cx, &mut buf)
            .is_pending());
    }
    assert_eq!(held(&first), 1, "re-polling added registrations");

    let (second, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut reader).poll_fill_buf(&mut cx).is_pending());
    assert_eq!((held(&first), held(&second)), (0, 1));

    let (third, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut reader)
        .poll_seek(&mut cx, SeekFrom::End(0))
        .is_pending());
    assert_eq!((held(&second), held(&third)), (0, 1));
    assert_eq!(reader.position(), 0);

    // The wait resolves: woken, registration consumed, the read succeeds.
    tx.send(Ok(b"xyz".to_vec())).expect("send");
    drop(tx);
    cache.wait_complete().expect("complete");
    eventually("the pending seek is woken", || {
        third.0.load(Ordering::SeqCst) == 1
    });
    eventually("the woken registration is released", || held(&third) == 0);
    match Pin::new(&mut reader).poll_read(&mut cx, &mut buf) {
        Poll::Ready(Ok(3)) => assert_eq!(&buf[..3], b"xyz"),
        other => panic!("expected 3 bytes, got {other:?}"),
    }
    assert_eq!(held(&third), 0);

    // A pending registration is released when the reader drops.
    let (tx, cache) = channel_cache();
    let mut reader = cache.reader();
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut reader)
        .poll_read(&mut cx, &mut buf)
        .is_pending());
    assert_eq!(held(&count), 1);
    drop(reader);
    assert_eq!(held(&count), 0, "a dropped reader leaked its registration");
    // And a clone does not share the original's registration.
    let mut reader = cache.reader();
    assert!(Pin::new(&mut reader)
        .poll_read(&mut cx, &mut buf)
        .is_pending());
    let clone = reader.clone();
    drop(reader);
    assert_eq!(held(&count), 0);
    drop((clone, tx));
}

#[test]
fn wait_for_async_and_bytes_async_with_the_futures_executor() {
    let data = pattern(1000);
    let (tx, cache) = channel_cache();
    let waiter = {
        let cache = cache.clone();
        thread::spawn(move || {
            block_on(async {
                let available = cache.wait_for_async(700).await?;
                let bytes = cache.bytes_async(500..1000).await?;
                io::Result::Ok((available, bytes))
            })
        })
    };
    tx.send(Ok(data[..400].to_vec())).expect("send");
    tx.send(Ok(data[400..].to_vec())).expect("send");
    drop(tx);
    let (available, bytes) = no_hang("the waiter", move || {
        waiter.join().expect("no panic").expect("wait")
    });
    assert!((700..=1000).contains(&available), "{available}");
    assert_eq!(bytes, data[500..]);
    // The source has ended, but the filler may not have said so yet: wait, so that the
    // unbounded range below has a known end.
    assert_eq!(cache.wait_complete().expect("complete"), 1000);
    let waker = counting_waker().1;
    let mut cx = Context::from_waker(&waker);
    let mut all = pin!(cache.bytes_async(..));
    match all.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(all)) => assert_eq!(all, data),
        other => panic!("a completed stream is ready at once: {other:?}"),
    }
    let err = block_on(cache.bytes_async(999..1001)).expect_err("past the end");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn futures_of_the_ext_traits_are_send() {
    let (_tx, cache) = channel_cache();
    let mut reader = cache.reader();
    let mut buf = [0u8; 4];
    let mut all = Vec::new();
    assert_send(&reader.read(&mut buf));
    assert_send(&reader.read_to_end(&mut all));
    assert_send(&reader.fill_buf());
    assert_send(&reader.seek(SeekFrom::End(0)));
    assert_send(&cache.wait_for_async(3));
    assert_send(&cache.bytes_async(..3));
}
