//! The `http_share` example's `--resume` path (`examples/http_share/resume.rs`: ureq, Range
//! requests, `Builder::spawn_resumable`) against a raw HTTP server on 127.0.0.1 that breaks its
//! first answers mid-body: the readers see one intact stream. A server that does not answer a
//! Range request with the bytes asked for fails the cache with a clear error: never wrong bytes.
#![cfg(not(miri))]

#[path = "../examples/http_share/resume.rs"]
mod resume;

mod common;

use common::http::read_range_request;
use common::{finishes, pattern, HANG_GUARD};
use resume::RangeGet;
use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use streamcache::{Status, StreamCache};

const LEN: usize = (3 << 20) + 333;

/// How the server's answer number `i` ends (later answers are sent whole).
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// After this many body bytes, close the connection (the body ends before its length).
    Close(usize),
    /// After this many body bytes, send nothing more until the client gives up.
    Stall(usize),
}

/// How the server answers `Range: bytes=N-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ranges {
    /// `206`, `Content-Range: bytes N-(LEN-1)/LEN`, the bytes from N.
    Honour,
    /// `200` and the whole body again.
    Ignore,
    /// `206`, but from N - 100 (and says so in its Content-Range).
    Early,
    /// `206` from N, but the total in Content-Range is not the length of the first answer.
    Resized,
}

struct Server {
    url: String,
    /// The `Range` start of every request (`None`: no Range header).
    requests: Arc<Mutex<Vec<Option<usize>>>>,
}

/// Serves `pattern(LEN)` at `/data`; answer `i` ends as `cuts[i]` says.
fn server(cuts: Vec<Cut>, ranges: Ranges) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://{}/data", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&requests);
    let body: Arc<[u8]> = pattern(LEN).into();
    // Lives until the test process ends, blocked in `accept` once the test is done.
    thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { continue };
            let (body, log, cut) = (Arc::clone(&body), Arc::clone(&log), cuts.get(i).copied());
            thread::spawn(move || {
                if let Err(e) = serve(conn, &body, cut, ranges, &log) {
                    eprintln!("server: answer {i}: {e}");
                }
            });
        }
    });
    Server { url, requests }
}

fn serve(
    conn: TcpStream,
    body: &[u8],
    cut: Option<Cut>,
    ranges: Ranges,
    log: &Mutex<Vec<Option<usize>>>,
) -> io::Result<()> {
    conn.set_read_timeout(Some(HANG_GUARD))?;
    let mut head = BufReader::new(conn.try_clone()?);
    let range = read_range_request(&mut head)?
        .map(|n| usize::try_from(n).expect("a range within the body"));
    log.lock().unwrap().push(range);
    let len = body.len();
    let (status, start, total) = match (range, ranges) {
        (None, _) | (Some(_), Ranges::Ignore) => ("200 OK", 0, None),
        (Some(n), Ranges::Honour) => ("206 Partial Content", n, Some(len)),
        (Some(n), Ranges::Early) => ("206 Partial Content", n.saturating_sub(100), Some(len)),
        (Some(n), Ranges::Resized) => ("206 Partial Content", n, Some(len + 1)),
    };
    let mut answer = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", len - start);
    if let Some(total) = total {
        answer.push_str(&format!(
            "Content-Range: bytes {start}-{}/{total}\r\n",
            len - 1
        ));
    }
    answer.push_str("Connection: close\r\n\r\n");
    let mut out = &conn;
    out.write_all(answer.as_bytes())?;
    let rest = &body[start..];
    match cut {
        None => out.write_all(rest)?,
        Some(Cut::Close(n)) => out.write_all(&rest[..n])?,
        Some(Cut::Stall(n)) => {
            out.write_all(&rest[..n])?;
            // Until the client hangs up (its read timeout).
            let _ = head.read_to_end(&mut Vec::new());
        }
    }
    conn.shutdown(Shutdown::Write)
}

/// The client of the example, with a read timeout of `per_read`.
fn download(server: &Server, per_read: Duration) -> (StreamCache, Arc<Mutex<Vec<u64>>>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_per_read(Some(per_read))
        .build()
        .into();
    let builder = StreamCache::builder()
        .memory_limit(1 << 20)
        .retry_backoff(Duration::from_millis(1));
    let resumed = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&resumed);
    let cache = RangeGet::new(agent, server.url.as_str())
        .spawn(builder, move |offset| log.lock().unwrap().push(offset))
        .expect("the first request");
    (cache, resumed)
}

/// Reads the whole stream through a `Reader`: the bytes before the error (if any) and it.
fn read_all(cache: &StreamCache) -> (Vec<u8>, io::Result<()>) {
    let mut reader = cache.reader();
    finishes(move || {
        let mut data = Vec::new();
        let mut buf = vec![0u8; 50_000];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return (data, Ok(())),
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) => return (data, Err(e)),
            }
        }
    })
}

/// The readers' bytes are the body's, at the offsets they claim.
fn assert_intact(data: &[u8], what: &str) {
    let want = pattern(data.len());
    if let Some(i) = (0..data.len()).find(|&i| data[i] != want[i]) {
        panic!("{what}: wrong byte at offset {i} of {}", data.len());
    }
}

#[test]
fn a_connection_closed_mid_body_is_resumed_with_a_range_request() {
    const FIRST: usize = 700_001;
    let server = server(vec![Cut::Close(FIRST)], Ranges::Honour);
    let (cache, resumed) = download(&server, HANG_GUARD);
    assert_eq!(cache.expected_len(), Some(LEN as u64), "the Content-Length");
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let cache = cache.clone();
            thread::spawn(move || read_all(&cache))
        })
        .collect();
    for reader in readers {
        let (data, result) = reader.join().unwrap();
        result.expect("a reader of a resumed download");
        assert_eq!(data.len(), LEN);
        assert_intact(&data, "resumed download");
    }
    assert_eq!(cache.status(), Status::Complete { len: LEN as u64 });
    assert_eq!(
        *server.requests.lock().unwrap(),
        vec![None, Some(FIRST)],
        "one plain GET, then one Range request from where it broke"
    );
    assert_eq!(*resumed.lock().unwrap(), vec![FIRST as u64]);
}

#[test]
fn stalls_and_closes_are_resumed_until_the_end() {
    // A stalled answer is ureq's timeout: it must come out as a kind `spawn_resumable` retries.
    let cuts = vec![Cut::Stall(100_000), Cut::Close(1), Cut::Stall(1_000_000)];
    let server = server(cuts, Ranges::Honour);
    let (cache, resumed) = download(&server, Duration::from_secs(1));
    let (data, result) = read_all(&cache);
    result.expect("a download through stalls and closes");
    assert_eq!(data.len(), LEN);
    assert_intact(&data, "download through stalls and closes");
    let starts = [100_000, 100_001, 1_100_001];
    let requests = server.requests.lock().unwrap().clone();
    let expected: Vec<_> = [None].into_iter().chain(starts.map(Some)).collect();
    assert_eq!(requests, expected);
    assert_eq!(*resumed.lock().unwrap(), starts.map(|s| s as u64));
}

#[test]
fn a_wrong_answer_to_a_range_request_fails_the_cache_never_wrong_bytes() {
    const FIRST: usize = 500_000;
    for (ranges, says) in [
        (
            Ranges::Ignore,
            "got 200 OK instead of 206 Partial Content: the server ignored Range",
        ),
        (Ranges::Early, "got Content-Range \"bytes 499900-"),
        (Ranges::Resized, "the length changed"),
    ] {
        let what = format!("{ranges:?}");
        let server = server(vec![Cut::Close(FIRST)], ranges);
        let (cache, _) = download(&server, HANG_GUARD);
        let (data, result) = read_all(&cache);
        assert_intact(&data, &what);
        assert_eq!(data.len(), FIRST, "{what}: the bytes before the break");
        let err = result.expect_err(&what);
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{what}: {err}");
        assert!(err.to_string().contains(says), "{what}: {err}");
        assert_eq!(
            cache.status(),
            Status::Failed {
                available: FIRST as u64,
                error: ErrorKind::InvalidData
            },
            "{what}"
        );
        // Not transient: one Range request, not retried.
        assert_eq!(
            *server.requests.lock().unwrap(),
            vec![None, Some(FIRST)],
            "{what}"
        );
    }
}
