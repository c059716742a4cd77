//! `Builder::spawn_url` (feature `http`) against scripted HTTP servers on 127.0.0.1
//! (`common/http_server.rs`): one that honours `Range` and `If-Range`, one that ignores
//! `Range`, one whose resource changes between requests, one that breaks or stalls mid-body,
//! one that throttles, redirects, error statuses, empty resources, bad URLs and headers.
//! Every wait is bounded by a hang guard; no test needs the network.
#![cfg(all(feature = "http", not(miri)))]

mod common;

use common::http::{assert_intact, read_all, readers_read_it_all};
use common::http_server::{resource, Answer, Request, Send, Server};
use common::{eventually, finishes, outcome, pattern, threads_named, wait_for, HANG_GUARD};
use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use streamcache::{Builder, Status, StreamCache};

const LEN: usize = (1 << 20) + 4321;
const ETAG: &str = "\"v1\"";
const DATE: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

/// A builder for the tests: a small memory limit (so the spill file is used too) and a
/// short backoff.
fn builder() -> Builder {
    StreamCache::builder()
        .memory_limit(256 << 10)
        .retry_backoff(Duration::from_millis(1))
}

/// An agent whose reads time out after `per_read`.
fn agent(per_read: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(HANG_GUARD))
        .timeout_per_read(Some(per_read))
        .build()
        .into()
}

/// `spawn_url` on its own thread, under the hang guard.
fn spawn(builder: Builder, url: String) -> io::Result<StreamCache> {
    finishes(move || builder.spawn_url(&url))
}

/// The `Range` of every request, as `(start, end)`.
fn ranges(server: &Server) -> Vec<Option<(u64, Option<u64>)>> {
    server.requests().iter().map(Request::range).collect()
}

#[test]
fn a_range_server_makes_a_ranged_source_of_the_content_range_length() {
    let body: Arc<[u8]> = pattern(LEN).into();
    let server = Server::start(move |r| resource(r, &body, Some(ETAG), None));
    let cache = spawn(builder(), server.url("/data")).expect("spawn_url");
    assert_eq!(
        cache.expected_len(),
        Some(LEN as u64),
        "from the Content-Range"
    );
    assert_eq!(
        cache.known_len(),
        Some(LEN as u64),
        "known from the first answer"
    );
    readers_read_it_all(&cache, 3, LEN, "ranged download");
    // One request, the first: `bytes=0-`, no If-Range, identity encoding.
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].range(), Some((0, None)));
    assert_eq!(requests[0].header("if-range"), None);
    assert_eq!(requests[0].header("accept-encoding"), Some("identity"));
    assert_eq!(requests[0].path(), "/data");
}

#[test]
fn a_body_that_breaks_is_resumed_with_range_and_if_range() {
    // The validator sent back: the strong ETag, or else the Last-Modified date (a weak ETag
    // cannot validate a range).
    for (etag, date, if_range) in [
        (Some(ETAG), Some(DATE), Some(ETAG)),
        (None, Some(DATE), Some(DATE)),
        (Some("W/\"weak\""), Some(DATE), Some(DATE)),
        (None, None, None),
    ] {
        let what = format!("ETag {etag:?}, Last-Modified {date:?}");
        let body: Arc<[u8]> = pattern(LEN).into();
        // The first answer is cut after 300_001 bytes, the second after 1 more, the third
        // stalls (ureq's read timeout), the fourth is whole, in slow pieces.
        let cuts = [Send::Cut(300_001), Send::Cut(1), Send::Stall(200_000)];
        let paced = Send::Paced {
            piece: 100 << 10,
            pause: Duration::from_millis(1),
        };
        let server = Server::start(move |r| {
            let answer = resource(r, &body, etag, date);
            answer.send(cuts.get(r.index).copied().unwrap_or(paced))
        });
        let builder = builder().http_agent(agent(Duration::from_millis(1000)));
        let cache = spawn(builder, server.url("/data")).expect(&what);
        let (data, result) = read_all(&cache);
        result.expect(&what);
        assert_eq!(data.len(), LEN, "{what}");
        assert_intact(&data, &what);
        let last = Some(LEN as u64 - 1);
        assert_eq!(
            ranges(&server),
            [
                Some((0, None)),
                Some((300_001, last)),
                Some((300_002, last)),
                Some((500_002, last))
            ],
            "{what}: bytes=0-, then a closed range from each break"
        );
        let sent: Vec<_> = server
            .requests()
            .iter()
            .map(|r| r.header("if-range").map(str::to_owned))
            .collect();
        let want = if_range.map(str::to_owned);
        assert_eq!(sent, [None, want.clone(), want.clone(), want], "{what}");
    }
}

#[test]
fn a_body_longer_than_its_range_is_cut_at_the_range() {
    // Every answer carries 100 bytes of junk past the range its Content-Range announces (and
    // counts them in its Content-Length); the first one breaks, or not.
    for first in [Send::Whole, Send::Cut(70_000)] {
        let body: Arc<[u8]> = pattern(LEN).into();
        let server = Server::start(move |r| {
            let mut answer = resource(r, &body, Some(ETAG), None);
            answer.body.extend_from_slice(&[0xEE; 100]);
            answer.send(if r.index == 0 { first } else { Send::Whole })
        });
        let cache = spawn(builder(), server.url("/data")).expect("spawn_url");
        let (data, result) = read_all(&cache);
        result.expect("a download");
        assert_eq!(data.len(), LEN, "{first:?}: the junk is not read");
        assert_intact(&data, "capped download");
        assert_eq!(cache.status(), Status::Complete { len: LEN as u64 });
    }
}

#[test]
fn a_server_that_ignores_range_gives_a_plain_stream() {
    let body = pattern(LEN);
    let server = Server::start(move |_| Answer::new(200, body.clone()).header("ETag", ETAG));
    let cache = spawn(builder(), server.url("/data")).expect("spawn_url");
    assert_eq!(cache.expected_len(), Some(LEN as u64), "the Content-Length");
    // A Content-Length is a hint: the length is known only once the stream ended.
    if cache.known_len().is_some() {
        assert!(
            cache.is_complete(),
            "a plain stream's length before its end"
        );
    }
    let (data, result) = read_all(&cache);
    assert_eq!(cache.known_len(), Some(LEN as u64));
    result.expect("a plain download");
    assert_eq!(data.len(), LEN);
    assert_intact(&data, "plain download");
    assert_eq!(ranges(&server), [Some((0, None))], "asked once");
}

#[test]
fn a_plain_stream_that_breaks_fails_and_is_not_resumed() {
    const CUT: usize = 200_000;
    let body = pattern(LEN);
    let server = Server::start(move |_| Answer::new(200, body.clone()).send(Send::Cut(CUT)));
    let cache = spawn(builder(), server.url("/data")).expect("spawn_url");
    let (data, result) = read_all(&cache);
    assert_intact(&data, "a broken plain download");
    assert_eq!(data.len(), CUT, "every byte before the break");
    let err = result.expect_err("a plain download cut short");
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    assert!(matches!(cache.status(), Status::Failed { .. }));
    assert_eq!(server.requests().len(), 1, "not resumed");
}

#[test]
fn a_resource_that_changes_fails_with_invalid_data_never_wrong_bytes() {
    const CUT: usize = 400_000;
    #[derive(Debug, Clone, Copy)]
    enum Change {
        /// The server honours If-Range: the new version, whole, with `200`.
        WholeAgain,
        /// The server ignores If-Range: `206` with the range of the new version, new ETag.
        NewEtag,
        /// `206` with the new version's range, no ETag, but a new Last-Modified.
        NewDate,
        /// `206` whose Content-Range has another total.
        NewLength,
        /// `206` with a Content-Range that is not the one asked for.
        OtherRange,
    }
    for (change, says) in [
        (
            Change::WholeAgain,
            "got 200 OK instead of 206 Partial Content",
        ),
        (Change::NewEtag, "the etag changed"),
        (Change::NewDate, "the last-modified changed"),
        (Change::NewLength, "the length changed"),
        (Change::OtherRange, "got Content-Range \"bytes 399999-"),
    ] {
        let what = format!("{change:?}");
        let first = pattern(LEN);
        let second: Vec<u8> = first.iter().map(|b| b ^ 0x5a).collect();
        let server = Server::start(move |r| {
            if r.index == 0 {
                let etag = (!matches!(change, Change::NewDate)).then_some(ETAG);
                return resource(r, &first, etag, Some(DATE)).send(Send::Cut(CUT));
            }
            let (start, _) = r.range().expect("a range request");
            let start = start as usize;
            match change {
                Change::WholeAgain => resource(r, &second, Some("\"v2\""), None),
                Change::NewEtag => Answer::new(206, &second[start..])
                    .header("Content-Range", format!("bytes {start}-{}/{LEN}", LEN - 1))
                    .header("ETag", "\"v2\""),
                Change::NewDate => Answer::new(206, &second[start..])
                    .header("Content-Range", format!("bytes {start}-{}/{LEN}", LEN - 1))
                    .header("Last-Modified", "Thu, 22 Oct 2015 07:28:00 GMT"),
                Change::NewLength => Answer::new(206, &second[start..])
                    .header(
                        "Content-Range",
                        format!("bytes {start}-{}/{}", LEN, LEN + 1),
                    )
                    .header("ETag", ETAG),
                Change::OtherRange => Answer::new(206, &first[start - 1..])
                    .header(
                        "Content-Range",
                        format!("bytes {}-{}/{LEN}", start - 1, LEN - 1),
                    )
                    .header("ETag", ETAG),
            }
        });
        let cache = spawn(builder(), server.url("/data")).expect(&what);
        let (data, result) = read_all(&cache);
        assert_intact(&data, &what);
        assert_eq!(data.len(), CUT, "{what}: the bytes before the break");
        let err = result.expect_err(&what);
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{what}: {err}");
        let message = err.to_string();
        assert!(message.contains(says), "{what}: {message}");
        assert!(message.contains("/data"), "{what}: {message}");
        assert_eq!(
            cache.status(),
            Status::Failed {
                available: CUT as u64,
                error: ErrorKind::InvalidData
            },
            "{what}"
        );
        // Not transient: one Range request after the break, not retried.
        assert_eq!(server.requests().len(), 2, "{what}");
    }
}

#[test]
fn a_throttled_server_is_read_as_it_arrives() {
    const HELD: usize = LEN - 1000;
    let body: Arc<[u8]> = pattern(LEN).into();
    let server = Server::start(move |r| {
        // Slow pieces, then the last 1000 bytes only when the test says so.
        let send = Send::Gated(HELD);
        resource(r, &body, Some(ETAG), None).send(send)
    });
    let cache = spawn(builder(), server.url("/data")).expect("spawn_url");
    // Everything before the gate arrives while the stream is still open.
    assert_eq!(
        wait_for(&cache, HELD as u64).expect("the first part"),
        HELD as u64
    );
    assert_intact(
        cache.slice(..HELD as u64).expect("a slice"),
        "before the gate",
    );
    assert!(!cache.is_complete());
    assert_eq!(cache.available(), HELD as u64);
    server.open_gate();
    assert_eq!(outcome(&cache).expect("the end"), LEN as u64);
    assert_intact(cache.slice(..).expect("a slice"), "after the gate");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn error_statuses_have_their_kinds_and_name_the_url_without_its_query() {
    for (status, kind) in [
        (404, ErrorKind::NotFound),
        (410, ErrorKind::NotFound),
        (401, ErrorKind::PermissionDenied),
        (403, ErrorKind::PermissionDenied),
        (500, ErrorKind::Other),
        (503, ErrorKind::Other),
        (416, ErrorKind::Other), // not `bytes */0`: not an empty resource
    ] {
        let server =
            Server::start(move |_| Answer::new(status, "no").header("Content-Range", "bytes */10"));
        let url = server.url("/dir/file.bin?token=s3cret&x=1#frag");
        let err = spawn(builder(), url).expect_err("an error status");
        let message = err.to_string();
        assert_eq!(err.kind(), kind, "{status}: {message}");
        assert!(message.contains(&status.to_string()), "{status}: {message}");
        assert!(
            message.contains(&server.url("/dir/file.bin")),
            "{status}: {message}"
        );
        assert!(!message.contains("s3cret"), "{status}: {message}");
        assert!(!message.contains("token"), "{status}: {message}");
        assert!(!message.contains("frag"), "{status}: {message}");
    }
    // Nor its user info (a password).
    let server = Server::start(|_| Answer::new(404, ""));
    let url = server.url("/x").replace("http://", "http://user:pa55word@");
    let err = spawn(builder(), url).expect_err("a 404");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&server.url("/x")), "{err}");
    assert!(!err.to_string().contains("pa55word"), "{err}");
}

#[test]
fn a_resource_gone_on_a_later_request_fails_the_stream_with_not_found() {
    const CUT: usize = 100_000;
    let body: Arc<[u8]> = pattern(LEN).into();
    let server = Server::start(move |r| match r.index {
        0 => resource(r, &body, Some(ETAG), None).send(Send::Cut(CUT)),
        _ => Answer::new(404, ""),
    });
    let cache = spawn(builder(), server.url("/data?sig=s3cret")).expect("spawn_url");
    let (data, result) = read_all(&cache);
    assert_eq!(data.len(), CUT);
    assert_intact(&data, "before the 404");
    let err = result.expect_err("a 404 on resuming");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("404"), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert_eq!(server.requests().len(), 2, "NotFound is not retried");
}

#[test]
fn redirects_are_followed_with_the_range() {
    for status in [301, 302] {
        let body: Arc<[u8]> = pattern(LEN).into();
        let cuts = [Send::Whole, Send::Cut(250_000)];
        let server = Server::start(move |r| {
            if r.path() == "/old" {
                return Answer::new(status, "").header("Location", "/new?x=1");
            }
            let answer = resource(r, &body, Some(ETAG), None);
            answer.send(cuts.get(r.index).copied().unwrap_or_default())
        });
        let cache = spawn(builder(), server.url("/old")).expect("spawn_url");
        let (data, result) = read_all(&cache);
        result.expect("a redirected download");
        assert_eq!(data.len(), LEN, "{status}");
        assert_intact(&data, "redirected download");
        let seen: Vec<_> = server
            .requests()
            .iter()
            .map(|r| {
                (
                    r.path().to_owned(),
                    r.range(),
                    r.header("if-range").is_some(),
                )
            })
            .collect();
        let last = Some(LEN as u64 - 1);
        assert_eq!(
            seen,
            [
                ("/old".to_owned(), Some((0, None)), false),
                ("/new".to_owned(), Some((0, None)), false),
                ("/old".to_owned(), Some((250_000, last)), true),
                ("/new".to_owned(), Some((250_000, last)), true),
            ],
            "{status}: the Range and If-Range survive the redirect"
        );
    }
}

#[test]
fn an_empty_resource_is_an_empty_complete_stream() {
    let empty_range = Server::start(|r| resource(r, &[], Some(ETAG), None));
    let empty_body = Server::start(|_| Answer::new(200, ""));
    for server in [empty_range, empty_body] {
        let cache = spawn(builder(), server.url("/empty")).expect("spawn_url");
        assert_eq!(outcome(&cache).expect("the end"), 0);
        assert_eq!(cache.status(), Status::Complete { len: 0 });
        assert_eq!(cache.len(), Some(0));
        assert_eq!(cache.slice(..).expect("a slice"), b"");
        assert_eq!(server.requests().len(), 1);
    }
    // The first server answered 416 with `bytes */0` (checked: else it would not be empty).
}

#[test]
fn bad_urls_are_invalid_input_not_panics() {
    for url in [
        "",
        "not a url",
        "ftp://example.com/file",
        "http://",
        "/relative/path",
        "http://exa mple.com/",
        "https://[::1/x",
    ] {
        let err = spawn(builder(), url.to_owned()).expect_err(url);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url:?}: {err}");
    }
    let err = StreamCache::from_url("http://exa mple.com/?token=s3cret").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn bad_headers_are_invalid_input_and_their_values_stay_secret() {
    let server = Server::start(|_| Answer::new(200, "x"));
    for (name, value) in [
        ("bad name", "x"),
        ("X-Ok", "bad\nvalue s3cret"),
        ("Authorization", "Bearer … s3cret"),
        ("Range", "bytes=5-"),
        ("if-range", "\"v0\""),
    ] {
        let builder = builder().http_header(name, value);
        let err = spawn(builder, server.url("/x")).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}: {err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
    assert_eq!(server.requests().len(), 0, "nothing is sent");
    let builder = builder().http_header("Authorization", "Bearer s3cret");
    assert!(!format!("{builder:?}").contains("s3cret"));
}

#[test]
fn http_headers_are_sent_with_every_request() {
    const CUT: usize = 123_456;
    let body: Arc<[u8]> = pattern(LEN).into();
    let server = Server::start(move |r| {
        if r.header("authorization") != Some("Bearer s3cret") {
            return Answer::new(401, "");
        }
        let answer = resource(r, &body, Some(ETAG), None);
        answer.send(if r.index == 0 {
            Send::Cut(CUT)
        } else {
            Send::Whole
        })
    });
    let authorized = builder()
        .http_header("Authorization", "Bearer s3cret")
        .http_header("X-Trace", "a")
        .http_header("X-Trace", "b");
    let cache = spawn(authorized, server.url("/private")).expect("spawn_url");
    let (data, result) = read_all(&cache);
    result.expect("an authorized download");
    assert_intact(&data, "authorized download");
    assert_eq!(data.len(), LEN);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        let traces: Vec<_> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-trace"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(traces, ["a", "b"], "{r:?}");
    }

    // Without it: PermissionDenied, from spawn_url.
    let err = spawn(builder(), server.url("/private")).expect_err("no Authorization");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

#[test]
fn a_first_answer_that_is_not_the_whole_range_is_invalid_data() {
    for content_range in [
        "bytes 5-9/10",
        "bytes 0-9/*",
        "bytes 0-4/10",
        "nonsense",
        "",
    ] {
        let server = Server::start(move |_| {
            let answer = Answer::new(206, "0123456789");
            if content_range.is_empty() {
                answer
            } else {
                answer.header("Content-Range", content_range)
            }
        });
        let err = spawn(builder(), server.url("/x")).expect_err(content_range);
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidData,
            "{content_range:?}: {err}"
        );
        assert!(err.to_string().contains("Content-Range"), "{err}");
    }
}

#[test]
fn connection_errors_and_timeouts_keep_their_kinds() {
    // Nobody listens: refused, from spawn_url.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = spawn(builder(), format!("http://127.0.0.1:{port}/x?k=s3cret")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}/x")),
        "{err}"
    );
    assert!(!err.to_string().contains("s3cret"), "{err}");

    // A server that accepts and never answers: TimedOut, from spawn_url.
    let stalls = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&stalls);
    let server = Server::start(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_secs(2));
        Answer::new(200, "late")
    });
    let builder = builder().http_agent(agent(Duration::from_millis(200)));
    let err = spawn(builder, server.url("/slow")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("/slow"), "{err}");
    assert_eq!(stalls.load(Ordering::SeqCst), 1);
}

#[test]
fn stalls_on_resumed_requests_are_retried_until_retries_run_out() {
    const CUT: usize = 50_000;
    let body: Arc<[u8]> = pattern(LEN).into();
    // The first answer breaks; every later one sends its head, then stalls.
    let server = Server::start(move |r| {
        let send = if r.index == 0 {
            Send::Cut(CUT)
        } else {
            Send::Stall(0)
        };
        resource(r, &body, Some(ETAG), None).send(send)
    });
    let builder = builder()
        .retries(2)
        .http_agent(agent(Duration::from_millis(500)));
    let cache = spawn(builder, server.url("/data")).expect("spawn_url");
    let err = outcome(&cache).expect_err("stalls until the retries run out");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("/data"), "{err}");
    assert_eq!(cache.available(), CUT as u64);
    assert_intact(cache.slice(..CUT as u64).unwrap(), "before the stalls");
    // The break and the first stall are the two retries: three requests in all.
    assert_eq!(ranges(&server).len(), 3);
}

#[test]
fn dropping_every_handle_closes_every_connection_and_ends_every_thread() {
    let body: Arc<[u8]> = pattern(LEN).into();
    // The first answer stalls after 64 KiB, every resume at once (no progress, ever), until
    // the client hangs up; the tail is sent whole.
    let server = Server::start(move |r| {
        let send = match r.range() {
            Some((0, _)) => Send::Stall(64 << 10),
            Some((a, _)) if a < (LEN - (256 << 10)) as u64 => Send::Stall(0),
            _ => Send::Whole,
        };
        resource(r, &body, Some(ETAG), None).send(send)
    });
    let threads = || threads_named("sc-url-drop");
    // Reads time out quickly, so that the filler, blocked in a stalled read, sees the drop.
    // Retried without end but for the drop: only cancellation ends the filler.
    let builder = builder()
        .fetch_ahead(128 << 10)
        .retries(u32::MAX)
        .http_agent(agent(Duration::from_millis(100)))
        .thread_name("sc-url-drop");
    let cache = spawn(builder, server.url("/data")).expect("spawn_url");
    let tail = cache
        .slice(LEN as u64 - 100..LEN as u64)
        .expect("the tail, fetched");
    assert_eq!(tail, &pattern(LEN)[LEN - 100..]);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.range().is_some_and(|(a, _)| a > 0)),
        "the tail came from a fetch"
    );
    assert!(threads() >= 1);
    drop(cache);
    eventually("every thread of the cache ended", || threads() == 0);
    eventually("every connection closed", || server.live_connections() == 0);
}
