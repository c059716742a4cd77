//! `Builder::connections(n)`: a ranged stream filled by `n` transfers at once, the lowest
//! missing span first. Through `spawn_ranged` (where the test sees every open and every byte
//! read) and through `spawn_url` against the local server (which counts connections and the
//! body bytes it sent): how many transfers run at once, in what order the stream grows, that a
//! far read does not queue behind them, breaks, a changed source, and dropping the cache.

mod common;

use common::http_server::{resource, Answer, Request, Send, Server};
use common::{eventually, finishes, pattern, threads_named};
use std::io::{self, Cursor, ErrorKind, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use streamcache::{Builder, Status, StreamCache};

const KIB: u64 = 1 << 10;

/// How long a fill transfer of [`Counter`] waits for the others to open: a fill that opens
/// fewer fails its test's assertion after this, well within the hang guard.
const HOLD: Duration = Duration::from_secs(10);

/// Whether the current thread is one of the fill's (the filler thread or one of its lanes),
/// not an on-demand fetch: the fetch threads' names end in `:fetch`.
fn on_fill_thread() -> bool {
    !thread::current()
        .name()
        .is_some_and(|name| name.ends_with(":fetch"))
}

/// A ranged source that counts what it is asked: the transfers open now (fill and fetches
/// apart), the most at once, the bytes read, and every range opened. Until `hold` fill
/// transfers are open at once, each new one waits for that (at most [`HOLD`]), so that
/// a fill that opens fewer at once is seen doing so instead of finishing too fast to tell.
#[derive(Default)]
struct Counter {
    state: Mutex<Counts>,
    all_open: Condvar,
    read: AtomicU64,
}

#[derive(Default, Debug)]
struct Counts {
    fill_open: usize,
    fetch_open: usize,
    most_fill: usize,
    most_total: usize,
    /// The fill reached `hold` transfers at once: nobody waits any more.
    released: bool,
    opened: Vec<(bool, Range<u64>)>,
}

/// One transfer of [`Counter`]'s source: reads from `data`, slowly (`pause` after each 16 KiB),
/// and counts itself closed when dropped.
struct Transfer {
    counter: Arc<Counter>,
    fill: bool,
    data: Cursor<Vec<u8>>,
    pause: Duration,
}

impl Read for Transfer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(16 << 10);
        let n = self.data.read(&mut buf[..n])?;
        self.counter.read.fetch_add(n as u64, Ordering::SeqCst);
        thread::sleep(self.pause);
        Ok(n)
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        let mut counts = self.counter.state.lock().unwrap();
        if self.fill {
            counts.fill_open -= 1;
        } else {
            counts.fetch_open -= 1;
        }
    }
}

impl Counter {
    fn open(
        self: &Arc<Self>,
        data: &[u8],
        range: Range<u64>,
        hold: usize,
        pause: Duration,
    ) -> Transfer {
        let fill = on_fill_thread();
        let mut counts = self.state.lock().unwrap();
        counts.opened.push((fill, range.clone()));
        if fill {
            counts.fill_open += 1;
        } else {
            counts.fetch_open += 1;
        }
        counts.most_fill = counts.most_fill.max(counts.fill_open);
        counts.most_total = counts.most_total.max(counts.fill_open + counts.fetch_open);
        if fill && counts.fill_open >= hold {
            counts.released = true;
            self.all_open.notify_all();
        }
        if fill && !counts.released {
            let deadline = Instant::now() + HOLD;
            while !counts.released && Instant::now() < deadline {
                counts = self.all_open.wait_timeout(counts, HOLD).unwrap().0;
            }
        }
        drop(counts);
        Transfer {
            counter: Arc::clone(self),
            fill,
            data: Cursor::new(data[range.start as usize..range.end as usize].to_vec()),
            pause,
        }
    }
}

/// A cache from `builder` over [`Counter`]'s source of `len` bytes (`hold` and `pause` as
/// for [`Counter::open`]): the cache, the source's bytes, and the counter.
fn counted(
    builder: Builder,
    len: usize,
    hold: usize,
    pause: Duration,
) -> (StreamCache, Arc<Vec<u8>>, Arc<Counter>) {
    let data = Arc::new(pattern(len));
    let counter = Arc::new(Counter::default());
    let (d, c) = (Arc::clone(&data), Arc::clone(&counter));
    let cache = builder
        .spawn_ranged(len as u64, move |range| Ok(c.open(&d, range, hold, pause)))
        .unwrap();
    (cache, data, counter)
}

/// `n` connections at once, never more than `n + max_fetches` with far reads beside them;
/// every span at most `fetch_span` long; the bytes read within `len + n × fetch_span`.
#[test]
fn n_transfers_fill_at_once_and_never_more_than_n_plus_max_fetches() {
    for n in [2usize, 4] {
        finishes(move || {
            const LEN: usize = 2 << 20;
            let span = 64 * KIB;
            let max_fetches = 2;
            let builder = StreamCache::builder()
                .connections(n)
                .fetch_span(span)
                .fetch_ahead(256 * KIB)
                .max_fetches(max_fetches);
            let (cache, data, counter) = counted(builder, LEN, n, Duration::from_millis(2));
            // Far reads from three threads while the fill goes on: fetches beside the lanes.
            let far: Vec<_> = (0..3u64)
                .map(|t| {
                    let (cache, data) = (cache.clone(), Arc::clone(&data));
                    thread::spawn(move || {
                        for i in 0..6u64 {
                            let at = LEN as u64 - (1 + t + 3 * i) * 40 * KIB;
                            let got = cache.slice(at..at + 1000).unwrap();
                            assert_eq!(got, &data[at as usize..at as usize + 1000]);
                        }
                    })
                })
                .collect();
            for t in far {
                t.join().unwrap();
            }
            assert_eq!(cache.slice(..).unwrap(), &data[..], "every byte right");
            let counts = counter.state.lock().unwrap();
            assert_eq!(counts.most_fill, n, "fill transfers at once: {counts:?}");
            assert!(
                counts.most_total <= n + max_fetches,
                "{} transfers at once, more than {n} + {max_fetches}",
                counts.most_total
            );
            for (fill, range) in &counts.opened {
                assert!(
                    !fill || range.end - range.start <= span,
                    "a fill transfer of more than a span: {range:?}"
                );
            }
            let read = counter.read.load(Ordering::SeqCst);
            assert!(
                read <= LEN as u64 + n as u64 * span,
                "{read} bytes read for {LEN} (n = {n})"
            );
        });
    }
}

/// Lowest missing spans first: while the fill goes on (no fetches), the bytes missing below
/// the highest present byte are never more than `n` spans (the ones being written), and the
/// prefix grows from 0.
#[test]
fn the_lowest_missing_spans_are_filled_first() {
    finishes(|| {
        const LEN: usize = 4 << 20;
        let (n, span) = (4usize, 64 * KIB);
        let builder = StreamCache::builder()
            .connections(n)
            .fetch_span(span)
            .max_fetches(0);
        let (cache, data, counter) = counted(builder, LEN, 1, Duration::from_millis(1));
        let mut samples = 0;
        let mut last_mark = 0;
        while !matches!(cache.status(), Status::Complete { .. }) {
            // The prefix and the islands of one look.
            let present = cache.present();
            let mark = present
                .first()
                .filter(|r| r.start == 0)
                .map_or(0, |r| r.end);
            assert!(mark >= last_mark, "the prefix went back");
            last_mark = mark;
            // A lane takes the lowest span neither present nor claimed: every byte missing
            // below the highest present one is in a span some lane is still writing, so at
            // most `n` spans of them (a lane slower than the others may hold the prefix back
            // while they go on, but never leaves a hole behind them unclaimed).
            let top = present.last().map_or(0, |r| r.end);
            let have: u64 = present.iter().map(|r| r.end - r.start).sum();
            assert!(
                top - have <= n as u64 * span,
                "{} bytes missing below {top}: not the lowest spans first ({present:?})",
                top - have
            );
            samples += 1;
            thread::sleep(Duration::from_micros(500));
        }
        assert!(samples > 10, "the fill was watched ({samples} samples)");
        assert_eq!(cache.slice(..).unwrap(), &data[..]);
        let counts = counter.state.lock().unwrap();
        assert_eq!(counts.most_fill, n, "{counts:?}");
    });
}

/// `connections(0)` is refused by a ranged source, URL or not; a plain source ignores it.
#[test]
fn zero_connections_is_invalid_input_and_a_plain_source_ignores_it() {
    let err = StreamCache::builder()
        .connections(0)
        .spawn_ranged(10, |_| Ok(io::empty()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("connections"), "{err}");

    let plain = StreamCache::builder()
        .connections(0)
        .spawn(Cursor::new(b"plain".to_vec()))
        .unwrap();
    assert_eq!(plain.slice(..).unwrap(), b"plain");

    let body = Arc::new(pattern(1000));
    let b = Arc::clone(&body);
    let ranged = Server::start(move |r| resource(r, &b, Some("\"v1\""), None));
    let err = StreamCache::builder()
        .connections(0)
        .spawn_url(&ranged.url("/data"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let b = Arc::clone(&body);
    let ignores_range = Server::start(move |_| Answer::new(200, b.to_vec()));
    let cache = StreamCache::builder()
        .connections(0)
        .spawn_url(&ignores_range.url("/data"))
        .unwrap();
    assert_eq!(cache.slice(..).unwrap(), &body[..]);
}

const URL_LEN: usize = 1 << 20;

/// A server of `body` (ETag "v1") that answers with `send(request)`.
fn url_server(
    body: &Arc<Vec<u8>>,
    send: impl Fn(&Request) -> Send + std::marker::Send + Sync + 'static,
) -> Server {
    let body = Arc::clone(body);
    Server::start(move |r| resource(r, &body, Some("\"v1\""), None).send(send(r)))
}

fn url_builder(n: usize) -> Builder {
    StreamCache::builder()
        .connections(n)
        .fetch_span(64 * KIB)
        .fetch_ahead(128 * KIB)
}

/// Through a URL: the first request asks for the first span alone; the server sees `n`
/// connections at once, and never more than `n + max_fetches` (plus one: a connection whose
/// last byte is written counts until its server thread returns, which may be after the client
/// has read it and asked for the next span; the exact bound is checked on the client's side
/// above); it sends every body byte within `len + n × fetch_span`.
#[test]
fn through_a_url_the_server_sees_n_connections_and_sends_the_file_once() {
    finishes(|| {
        let (n, max_fetches) = (4, 2);
        let body = Arc::new(pattern(URL_LEN));
        let paced = Send::Paced {
            piece: 8 << 10,
            pause: Duration::from_millis(2),
        };
        let server = url_server(&body, move |_| paced);
        let cache = url_builder(n)
            .max_fetches(max_fetches)
            .spawn_url(&server.url("/data"))
            .unwrap();
        let tail = cache.slice(URL_LEN as u64 - 1000..).unwrap();
        assert_eq!(tail, &body[URL_LEN - 1000..], "a far read beside the lanes");
        assert_eq!(cache.slice(..).unwrap(), &body[..]);
        let most = server.most_live_connections();
        assert!(most >= n, "the server saw only {most} connections at once");
        assert!(
            most <= n + max_fetches + 1,
            "the server saw {most} connections at once"
        );
        let sent = server.body_bytes_sent();
        assert!(
            sent <= URL_LEN as u64 + n as u64 * 64 * KIB,
            "{sent} body bytes sent for {URL_LEN}"
        );
        let requests = server.requests();
        assert_eq!(
            requests[0].range(),
            Some((0, Some(64 * KIB - 1))),
            "the first span"
        );
        assert!(
            requests.len() >= URL_LEN / (64 << 10),
            "{} requests",
            requests.len()
        );
    });
}

/// A far read during a parallel fill is answered by a fetch of its own while the server holds
/// back every span of the fill: it does not queue behind them.
#[test]
fn a_far_read_does_not_wait_for_the_held_spans_of_the_fill() {
    finishes(|| {
        let far = URL_LEN as u64 - 64 * KIB;
        let body = Arc::new(pattern(URL_LEN));
        let server = url_server(&body, move |r| match r.range() {
            Some((start, _)) if start >= far => Send::Whole,
            _ => Send::Gated(0), // the fill's spans: nothing until the gate opens
        });
        let cache = url_builder(4).spawn_url(&server.url("/data")).unwrap();
        eventually("the fill's four spans asked for", || {
            server.requests().len() >= 4
        });
        let tail = cache.slice(URL_LEN as u64 - 100..).unwrap();
        assert_eq!(tail, &body[URL_LEN - 100..]);
        assert_eq!(cache.available(), 0, "the fill's spans are still held");
        server.open_gate();
        assert_eq!(cache.slice(..).unwrap(), &body[..]);
    });
}

/// A span cut short is asked for again from the byte where it broke, to its own end; every
/// byte right.
#[test]
fn a_break_in_one_span_resumes_that_span_at_the_break() {
    finishes(|| {
        let span = 64 * KIB;
        let (start, cut) = (3 * span, 10_000u64);
        let body = Arc::new(pattern(URL_LEN));
        let cut_once = AtomicBool::new(false);
        let server = url_server(&body, move |r| match r.range() {
            Some((s, Some(_))) if s == start && !cut_once.swap(true, Ordering::SeqCst) => {
                Send::Cut(cut as usize)
            }
            _ => Send::Whole,
        });
        let cache = url_builder(3)
            .retry_backoff(Duration::ZERO)
            .spawn_url(&server.url("/data"))
            .unwrap();
        assert_eq!(cache.slice(..).unwrap(), &body[..]);
        let ranges: Vec<_> = server
            .requests()
            .iter()
            .filter_map(Request::range)
            .collect();
        assert!(
            ranges.contains(&(start, Some(start + span - 1))),
            "{ranges:?}"
        );
        assert!(
            ranges.contains(&(start + cut, Some(start + span - 1))),
            "resumed at the break, to the span's end: {ranges:?}"
        );
    });
}

/// The resource changes during the fill: the spans answered after the change fail the stream
/// with `InvalidData` (the server answers the old ETag's If-Range with the new version, whole);
/// the bytes already present stay the first version, and a read of a missing byte gets the
/// error: never the new version spliced in.
#[test]
fn a_span_showing_a_changed_source_fails_the_stream_never_a_splice() {
    finishes(|| {
        let old = Arc::new(pattern(URL_LEN));
        let new: Arc<Vec<u8>> = Arc::new(old.iter().map(|b| !b).collect());
        let served = AtomicUsize::new(0);
        let (o, nw) = (Arc::clone(&old), Arc::clone(&new));
        let server = Server::start(move |r| {
            // The first answer and the first three spans are the old version.
            if served.fetch_add(1, Ordering::SeqCst) < 4 {
                resource(r, &o, Some("\"v1\""), None)
            } else {
                resource(r, &nw, Some("\"v2\""), None)
            }
        });
        let cache = url_builder(2)
            .max_fetches(0)
            .spawn_url(&server.url("/data"))
            .unwrap();
        let err = cache.slice(..).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert!(matches!(
            cache.status(),
            Status::Failed {
                error: ErrorKind::InvalidData,
                ..
            }
        ));
        let present = cache.present();
        assert!(!present.is_empty(), "the old spans stay");
        for r in &present {
            let got = cache.try_slice(r.clone()).unwrap();
            assert_eq!(
                got,
                &old[r.start as usize..r.end as usize],
                "{r:?}: the old version"
            );
        }
        let gap = (0..URL_LEN as u64)
            .find(|o| !present.iter().any(|r| r.contains(o)))
            .expect("a missing byte");
        let mut buf = [0u8; 1];
        match cache.read_at(gap, &mut buf) {
            Err(err) => assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}"),
            // A lane still answering with the old version published it after `present`
            // looked (seen once on a loaded i686 run): the old byte, never the new one.
            Ok(n) => assert_eq!(buf[..n], old[gap as usize..][..n], "{gap}: the old version"),
        }
    });
}

/// Dropping every handle mid-fill closes every connection and ends every thread (lanes,
/// fetches and filler).
#[test]
fn dropping_every_handle_closes_every_connection_and_ends_every_thread() {
    let threads = || threads_named("sc-conn-drop");
    let body = Arc::new(pattern(URL_LEN));
    let slow = Send::Paced {
        piece: 1 << 10,
        pause: Duration::from_millis(5),
    };
    let server = url_server(&body, move |_| slow);
    let cache = url_builder(4)
        .thread_name("sc-conn-drop")
        .spawn_url(&server.url("/data"))
        .unwrap();
    eventually("four connections open", || server.live_connections() >= 4);
    let tail = cache.clone();
    let reader = thread::spawn(move || tail.slice(URL_LEN as u64 - 10..).map(<[u8]>::to_vec));
    eventually("a fetch beside them", || server.live_connections() >= 5);
    assert!(
        threads() >= 4,
        "the filler and three lanes: {} threads",
        threads()
    );
    drop(reader.join().unwrap().unwrap());
    drop(cache);
    eventually("every thread of the cache ended", || threads() == 0);
    eventually("every connection closed", || server.live_connections() == 0);
}

/// A panic in one lane's `open` fails the stream at once, while the other lanes are held: the
/// readers get the panic's message, they do not wait for every other span first.
#[test]
fn a_panic_in_one_lane_fails_the_stream_at_once() {
    finishes(|| {
        let span = 64 * KIB;
        let held = Arc::new((Mutex::new(true), Condvar::new()));
        let gate = Arc::clone(&held);
        let cache = StreamCache::builder()
            .connections(3)
            .fetch_span(span)
            .max_fetches(0)
            .spawn_ranged(16 * span, move |range| {
                if range.start == span {
                    panic!("open refused {range:?}");
                }
                // Every other span waits until the test is over.
                let (lock, released) = &*gate;
                let mut still = lock.lock().unwrap();
                while *still {
                    still = released.wait(still).unwrap();
                }
                Ok(io::repeat(7).take(range.end - range.start))
            })
            .unwrap();
        let err = cache.slice(..).unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        assert!(err.to_string().contains("open refused"), "{err}");
        assert!(matches!(cache.status(), Status::Failed { .. }));
        *held.0.lock().unwrap() = false;
        held.1.notify_all();
    });
}
