//! `Builder::spawn_stream`: an async `Stream` of chunks driven on the filler thread, with no
//! runtime of its own. Chunks of every size (empty ones skipped), an error item failing the
//! stream at its offset, streams that are pending and woken from other threads (or spuriously,
//! or before they have even returned `Pending`), and cancellation: dropping every handle while
//! the stream is pending stops the filler and drops the stream.
//!
//! Then end to end: reqwest (no TLS) against a local HTTP server on 127.0.0.1, its
//! `bytes_stream()` into `spawn_stream`, and 8 async readers on a tokio runtime verifying the
//! body, which is fetched once.
//!
//! Every wait is bounded (a generous hang guard), and nothing asserts on timing.
#![cfg(not(miri))]

mod common;

use common::{cut, no_hang, pattern, HANG_GUARD};
use futures::StreamExt;
use futures_core::Stream;
use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;
use streamcache::{Status, StreamCache};

/// Reads the whole stream through `fill_buf` on `threads` threads; every result.
fn read_on_threads(cache: &StreamCache, threads: usize) -> Vec<io::Result<Vec<u8>>> {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let mut reader = cache.reader();
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let buf = reader.fill_buf()?;
                    if buf.is_empty() {
                        return Ok(got);
                    }
                    got.extend_from_slice(buf);
                    let n = buf.len();
                    reader.consume(n);
                }
            })
        })
        .collect();
    no_hang("the reader threads", move || {
        handles
            .into_iter()
            .map(|h| h.join().expect("a reader panicked"))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Chunks

#[test]
fn chunks_of_every_size_with_empty_ones_skipped() {
    let data = pattern(1 << 20);
    // Empty chunks first, in a row, in the middle and last: none of them is the end.
    let mut chunks: Vec<Vec<u8>> = vec![Vec::new(), Vec::new()];
    chunks.extend(cut(&data, &[1, 0, 0, 4095, 65_536, 0, 7, 200_000, 3]));
    chunks.push(Vec::new());
    let items = chunks.into_iter().map(io::Result::Ok);
    let cache = StreamCache::builder()
        .chunk_size(10_000) // smaller than some chunks: a chunk spans several reads
        .spawn_stream(futures::stream::iter(items))
        .expect("spawn");
    assert_eq!(cache.wait_complete().expect("complete"), data.len() as u64);
    assert_eq!(cache.slice(..).expect("slice"), &data[..]);
    for got in read_on_threads(&cache, 4) {
        assert!(got.expect("read") == data);
    }
}

#[test]
fn an_empty_stream_and_a_stream_of_empty_chunks_are_empty() {
    let cache = StreamCache::builder()
        .spawn_stream(futures::stream::empty::<io::Result<Vec<u8>>>())
        .expect("spawn");
    assert_eq!(cache.wait_complete().expect("complete"), 0);
    let cache = StreamCache::builder()
        .spawn_stream(futures::stream::iter(
            (0..100).map(|_| Ok(Vec::<u8>::new())),
        ))
        .expect("spawn");
    assert_eq!(cache.wait_complete().expect("complete"), 0);
    assert_eq!(cache.status(), Status::Complete { len: 0 });
}

#[test]
fn items_need_not_be_send_only_the_stream() {
    // `B` is consumed on the filler thread where the stream makes it: `Rc<[u8]>` is fine.
    let data = pattern(100_000);
    let stream = futures::stream::iter(cut(&data, &[999, 0, 5000]))
        .map(|chunk| io::Result::Ok(Rc::<[u8]>::from(chunk)));
    let cache = StreamCache::builder().spawn_stream(stream).expect("spawn");
    assert_eq!(cache.slice(..).expect("slice"), &data[..]);
    // And `bytes::Bytes`, the item type of reqwest's `bytes_stream()`.
    let stream = futures::stream::iter(cut(&data, &[12_345]))
        .map(|chunk| io::Result::Ok(bytes::Bytes::from(chunk)));
    let cache = StreamCache::builder().spawn_stream(stream).expect("spawn");
    assert_eq!(cache.slice(..).expect("slice"), &data[..]);
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn an_error_item_fails_the_stream_at_its_offset() {
    const GOOD: usize = 300_000;
    let data = pattern(GOOD);
    let dropped = Arc::new(AtomicBool::new(false));
    let polled_after_error = Arc::new(AtomicUsize::new(0));
    let mut items: Vec<io::Result<Vec<u8>>> =
        cut(&data, &[70_000, 0]).into_iter().map(Ok).collect();
    items.push(Err(io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the server hung up",
    )));
    items.push(Ok(vec![1, 2, 3])); // never used: the error ends the stream
    let stream = {
        let flag = DropFlag(Arc::clone(&dropped));
        let polled_after_error = Arc::clone(&polled_after_error);
        let mut errored = false;
        futures::stream::iter(items).map(move |item| {
            let _keep = &flag;
            if errored {
                polled_after_error.fetch_add(1, Ordering::SeqCst);
            }
            errored |= item.is_err();
            item
        })
    };
    let cache = StreamCache::builder().spawn_stream(stream).expect("spawn");

    let err = cache.wait_complete().expect_err("the stream failed");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    assert!(err.to_string().contains("the server hung up"), "{err}");
    assert_eq!(
        cache.status(),
        Status::Failed {
            available: GOOD as u64,
            error: io::ErrorKind::ConnectionAborted
        }
    );
    assert_eq!(cache.len(), None);
    assert_eq!(cache.slice(..GOOD as u64).expect("before"), &data[..]);
    assert_eq!(
        cache.wait_for(GOOD as u64).expect("at the cut"),
        GOOD as u64
    );
    let err = cache
        .read_at(GOOD as u64, &mut [0u8; 1])
        .expect_err("at the cut");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    for got in read_on_threads(&cache, 3) {
        let err = got.expect_err("every reader gets the error");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }
    // The failed stream is dropped (on the filler, before the failure is published) and was not
    // polled past its error.
    assert!(dropped.load(Ordering::SeqCst), "the stream was not dropped");
    assert_eq!(polled_after_error.load(Ordering::SeqCst), 0);
}

#[test]
fn a_stream_that_panics_fails_the_cache_instead_of_hanging_it() {
    let data = pattern(5000);
    let mut items = cut(&data, &[1000]).into_iter();
    let stream = futures::stream::poll_fn(move |_| match items.next() {
        Some(chunk) => Poll::Ready(Some(io::Result::Ok(chunk))),
        None => panic!("the stream broke"),
    });
    let cache = StreamCache::builder().spawn_stream(stream).expect("spawn");
    let err = no_hang("the panicking stream", {
        let cache = cache.clone();
        move || cache.wait_complete()
    })
    .expect_err("a panicking source fails the stream");
    assert!(err.to_string().contains("the stream broke"), "{err}");
    assert_eq!(cache.slice(..5000).expect("before the panic"), &data[..]);
    assert!(matches!(
        cache.status(),
        Status::Failed {
            available: 5000,
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------------
// Pending streams and their wakers

/// Records the name of every thread that polled it.
struct NamedPolls<S> {
    inner: S,
    names: Arc<Mutex<Vec<Option<String>>>>,
}

impl<S: Stream + Unpin> Stream for NamedPolls<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.names
            .lock()
            .unwrap()
            .push(thread::current().name().map(str::to_owned));
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[test]
fn a_pending_stream_is_woken_from_another_thread() {
    let data = pattern(2 << 20);
    let (tx, rx) = futures::channel::mpsc::unbounded::<io::Result<Vec<u8>>>();
    let names = Arc::new(Mutex::new(Vec::new()));
    let cache = StreamCache::builder()
        .thread_name("stream-filler")
        .spawn_stream(NamedPolls {
            inner: rx,
            names: Arc::clone(&names),
        })
        .expect("spawn");
    let producer = {
        let data = data.clone();
        thread::spawn(move || {
            for (k, chunk) in cut(&data, &[100_000, 0, 1, 33_333]).into_iter().enumerate() {
                tx.unbounded_send(Ok(chunk)).expect("the filler is alive");
                if k % 4 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            // Dropping the sender ends the stream.
        })
    };
    for got in read_on_threads(&cache, 4) {
        assert!(got.expect("read") == data);
    }
    producer.join().expect("producer");
    assert_eq!(cache.len(), Some(data.len() as u64));
    let names = names.lock().unwrap();
    assert!(!names.is_empty());
    assert!(
        names.iter().all(|n| n.as_deref() == Some("stream-filler")),
        "the stream was polled off the filler thread: {names:?}"
    );
}

/// Before each item, returns `Pending` `spins` times, waking itself in the way `how` says.
struct Wakes {
    items: VecDeque<Vec<u8>>,
    spins: usize,
    left: usize,
    how: How,
}

#[derive(Clone, Copy)]
enum How {
    /// `wake_by_ref` before returning `Pending` (a cooperative yield).
    Inline,
    /// Another thread wakes a clone of the waker, maybe before `Pending` is even returned.
    Racing,
}

impl Stream for Wakes {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.left > 0 {
            self.left -= 1;
            match self.how {
                How::Inline => cx.waker().wake_by_ref(),
                How::Racing => {
                    let waker: Waker = cx.waker().clone();
                    thread::spawn(move || waker.wake());
                }
            }
            return Poll::Pending;
        }
        self.left = self.spins;
        Poll::Ready(self.items.pop_front().map(Ok))
    }
}

#[test]
fn wakes_before_pending_are_not_lost() {
    let data = pattern(200_000);
    for how in [How::Inline, How::Racing] {
        let stream = Wakes {
            items: cut(&data, &[1000, 0, 4096]).into(),
            spins: 3,
            left: 3,
            how,
        };
        let cache = StreamCache::builder().spawn_stream(stream).expect("spawn");
        let got = no_hang("slice(..)", move || cache.slice(..).map(<[u8]>::to_vec));
        assert!(got.expect("complete") == data);
    }
}

// ---------------------------------------------------------------------------------------------
// Cancellation

/// What a [`Pushed`] stream yields next: chunks, then the end once `ended`.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Vec<u8>>,
    ended: bool,
    waker: Option<Waker>,
}

type SharedQueue = Arc<Mutex<Queue>>;

/// A stream that yields what the test pushes and is pending otherwise (keeping the latest
/// waker, woken by the next push); reports its drop on a channel.
struct Pushed {
    queue: SharedQueue,
    dropped: mpsc::Sender<()>,
}

impl Stream for Pushed {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut queue = self.queue.lock().unwrap();
        if let Some(chunk) = queue.chunks.pop_front() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        if queue.ended {
            return Poll::Ready(None);
        }
        queue.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Pushed {
    fn drop(&mut self) {
        let _ = self.dropped.send(());
    }
}

/// Pushes `chunk` (or the end, for `None`) and wakes the stream's poller.
fn push(queue: &SharedQueue, chunk: Option<Vec<u8>>) {
    let waker = {
        let mut queue = queue.lock().unwrap();
        match chunk {
            Some(chunk) => queue.chunks.push_back(chunk),
            None => queue.ended = true,
        }
        queue.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

fn pushed_cache() -> (SharedQueue, mpsc::Receiver<()>, StreamCache) {
    let queue = SharedQueue::default();
    let (dropped_tx, dropped) = mpsc::channel();
    let cache = StreamCache::builder()
        .spawn_stream(Pushed {
            queue: Arc::clone(&queue),
            dropped: dropped_tx,
        })
        .expect("spawn");
    (queue, dropped, cache)
}

/// A short look for a drop that must not happen: a wrong implementation is caught most of the
/// time, a right one never fails (no timing is asserted).
const NOT_DROPPED_LOOK: Duration = Duration::from_millis(20);

#[test]
fn dropping_every_handle_while_the_stream_is_pending_stops_the_filler() {
    // Never any data: the filler is parked in the stream's Pending.
    let (_queue, dropped, cache) = pushed_cache();
    let readers: Vec<_> = (0..3).map(|i| cache.reader_at(i)).collect();
    let clone = cache.clone();
    assert!(
        dropped.recv_timeout(NOT_DROPPED_LOOK).is_err(),
        "the stream was dropped while handles live"
    );
    drop((cache, clone, readers));
    dropped
        .recv_timeout(HANG_GUARD)
        .expect("the filler stopped and dropped the stream");
}

#[test]
fn with_only_bytes_left_the_filler_stops_and_the_bytes_stay() {
    let (queue, dropped, cache) = pushed_cache();
    push(&queue, Some(b"kept bytes".to_vec()));
    assert_eq!(cache.wait_for(10).expect("wait"), 10);
    let bytes = cache.bytes(..10).expect("bytes");
    drop(cache);
    dropped
        .recv_timeout(HANG_GUARD)
        .expect("the filler stopped and dropped the stream");
    assert_eq!(&bytes[..], b"kept bytes");
}

#[test]
fn a_reader_waiting_on_a_thread_keeps_the_stream_going_to_its_end() {
    let (queue, dropped, cache) = pushed_cache();
    push(&queue, Some(b"first, ".to_vec()));
    let waiting = {
        let mut reader = cache.reader();
        thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).map(|_| all)
        })
    };
    drop(cache); // the waiting reader is a handle too
    assert!(
        dropped.recv_timeout(NOT_DROPPED_LOOK).is_err(),
        "the stream was dropped while a reader waits"
    );
    push(&queue, Some(b"then the rest".to_vec()));
    push(&queue, None);
    let all = no_hang("the waiting reader", move || {
        waiting.join().expect("no panic").expect("read")
    });
    assert_eq!(all, b"first, then the rest");
    dropped
        .recv_timeout(HANG_GUARD)
        .expect("the ended stream was dropped");
}

// ---------------------------------------------------------------------------------------------
// End to end: reqwest's body stream into spawn_stream, async readers on tokio

#[cfg(feature = "tokio")]
mod reqwest_end_to_end {
    use super::common::http::{cut_server, Server};
    use super::{pattern, HANG_GUARD};
    use futures::StreamExt;
    use std::io;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;
    use streamcache::{Status, StreamCache};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    }

    /// A client that talks to 127.0.0.1 directly (no proxy from the environment).
    fn client() -> reqwest::Client {
        // With the feature `object-store`, reqwest is built with rustls but no provider of its
        // own (see Cargo.toml): a program's own reqwest client needs one installed first.
        #[cfg(feature = "object-store")]
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a reqwest client")
    }

    /// GETs `url` and hands its body stream to `spawn_stream`, as a user would.
    async fn download(url: &str) -> io::Result<StreamCache> {
        let response = client()
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(io::Error::other)?;
        let mut builder = StreamCache::builder().thread_name("reqwest-body");
        if let Some(len) = response.content_length() {
            builder = builder.expected_len(len);
        }
        let body = response
            .bytes_stream()
            .map(|item| item.map_err(io::Error::other));
        builder.spawn_stream(body)
    }

    /// 8 async readers, each verifying the whole body its own way.
    async fn eight_readers_verify(cache: &StreamCache, body: &Arc<[u8]>) {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let mut reader = cache.reader();
                let cache = cache.clone();
                let body = Arc::clone(body);
                tokio::spawn(async move {
                    let len = body.len();
                    match i % 4 {
                        // read_to_end
                        0 => {
                            let mut all = Vec::new();
                            reader.read_to_end(&mut all).await?;
                            assert!(all[..] == body[..], "reader {i}: bytes differ");
                        }
                        // fill_buf/consume, comparing in place (zero-copy)
                        1 => {
                            let mut at = 0;
                            loop {
                                let buf = reader.fill_buf().await?;
                                if buf.is_empty() {
                                    break;
                                }
                                assert!(buf == &body[at..at + buf.len()], "reader {i} at {at}");
                                at += buf.len();
                                let n = buf.len();
                                reader.consume(n);
                            }
                            assert_eq!(at, len, "reader {i} read the whole body");
                        }
                        // Seek ahead into what has not arrived, read from there, then the head.
                        2 => {
                            let mid = len / 2 + i;
                            reader.seek(io::SeekFrom::Start(mid as u64)).await?;
                            let mut tail = Vec::new();
                            reader.read_to_end(&mut tail).await?;
                            assert!(tail[..] == body[mid..], "reader {i}: tail differs");
                            reader.seek(io::SeekFrom::Start(0)).await?;
                            let mut head = vec![0u8; mid];
                            reader.read_exact(&mut head).await?;
                            assert!(head[..] == body[..mid], "reader {i}: head differs");
                        }
                        // bytes_async of the second half, then the end by seeking.
                        _ => {
                            let half = (len / 2) as u64;
                            let bytes = cache.bytes_async(half..).await?;
                            assert!(bytes[..] == body[len / 2..], "reader {i}: bytes differ");
                            let end = reader.seek(io::SeekFrom::End(0)).await?;
                            assert_eq!(end, len as u64);
                        }
                    }
                    io::Result::Ok(())
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            task.await
                .unwrap_or_else(|e| panic!("reader task {i} panicked: {e}"))
                .unwrap_or_else(|e| panic!("reader task {i} failed: {e}"));
        }
    }

    fn body_stream_into_spawn_stream(content_length: bool) {
        const LEN: usize = 8 << 20;
        let body: Arc<[u8]> = pattern(LEN).into();
        let server = Server::start(Arc::clone(&body), content_length);
        let url = server.url.clone();
        let rt = runtime();
        let cache = rt.block_on(async {
            tokio::time::timeout(HANG_GUARD, async {
                let cache = download(&url).await.expect("GET");
                let expected = content_length.then_some(LEN as u64);
                assert_eq!(cache.expected_len(), expected, "Content-Length");
                eight_readers_verify(&cache, &body).await;
                cache
            })
            .await
            .expect("the download and the readers finished within the hang guard")
        });
        assert_eq!(cache.status(), Status::Complete { len: LEN as u64 });
        assert_eq!(server.requests.load(Ordering::SeqCst), 1, "fetched once");
        drop(cache);
        drop(rt);
    }

    #[test]
    fn reqwest_body_with_content_length_reaches_eight_async_readers() {
        body_stream_into_spawn_stream(true);
    }

    #[test]
    fn reqwest_chunked_body_reaches_eight_async_readers() {
        body_stream_into_spawn_stream(false);
    }

    #[test]
    fn a_connection_cut_mid_body_fails_the_readers_and_keeps_what_arrived() {
        const LEN: usize = 2 << 20;
        const CUT: usize = (1 << 20) + 4321;
        let body: Arc<[u8]> = pattern(LEN).into();
        // A raw server: promises LEN bytes, sends CUT of them, then closes the connection.
        let (url, server) = cut_server(Arc::clone(&body), CUT, 128 << 10, Duration::from_millis(1));
        let rt = runtime();
        rt.block_on(async {
            tokio::time::timeout(HANG_GUARD, async {
                let cache = download(&url).await.expect("GET");
                let tasks: Vec<_> = (0..4)
                    .map(|_| {
                        let mut reader = cache.reader();
                        tokio::spawn(async move {
                            let mut all = Vec::new();
                            let err = reader.read_to_end(&mut all).await.expect_err("cut");
                            (err, all)
                        })
                    })
                    .collect();
                for task in tasks {
                    let (err, all) = task.await.expect("no panic");
                    assert_eq!(all.len(), CUT, "everything before the cut was read");
                    assert!(all[..] == body[..CUT]);
                    // reqwest's error, mapped with io::Error::other by the user.
                    assert_eq!(err.kind(), io::ErrorKind::Other, "{err}");
                }
                assert_eq!(cache.available(), CUT as u64);
                assert!(matches!(cache.status(), Status::Failed { available, .. } if available == CUT as u64));
                assert_eq!(cache.bytes_async(..CUT as u64).await.expect("before"), body[..CUT]);
            })
            .await
            .expect("finished within the hang guard")
        });
        server.join().expect("server").expect("server io");
    }
}
