//! The `http_share` example's `--resume` path (`examples/http_share/resume.rs`: ureq, Range
//! requests, `Builder::spawn_resumable`) against a raw HTTP server on 127.0.0.1 that breaks its
//! first answers mid-body: the readers see one intact stream. A server that does not answer a
//! Range request with the bytes asked for fails the cache with a clear error: never wrong bytes.
#![cfg(not(miri))]

#[path = "../examples/http_share/resume.rs"]
mod resume;

mod common;

use common::http::{
    assert_intact, range_server, read_all, readers_read_it_all, Cut, RangeServer, Ranges,
};
use common::{pattern, HANG_GUARD};
use resume::RangeGet;
use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamcache::{Status, StreamCache};

const LEN: usize = (3 << 20) + 333;

/// Serves `pattern(LEN)`; answer `i` ends as `cuts[i]` says.
fn server(cuts: Vec<Cut>, ranges: Ranges) -> RangeServer {
    range_server(pattern(LEN).into(), cuts, ranges)
}

/// The client of the example, with a read timeout of `per_read`.
fn download(server: &RangeServer, per_read: Duration) -> (StreamCache, Arc<Mutex<Vec<u64>>>) {
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

#[test]
fn a_connection_closed_mid_body_is_resumed_with_a_range_request() {
    const FIRST: u64 = 700_001;
    let server = server(vec![Cut::Close(FIRST)], Ranges::Honour);
    let (cache, resumed) = download(&server, HANG_GUARD);
    assert_eq!(cache.expected_len(), Some(LEN as u64), "the Content-Length");
    readers_read_it_all(&cache, 3, LEN, "resumed download");
    assert_eq!(
        *server.requests.lock().unwrap(),
        vec![None, Some(FIRST)],
        "one plain GET, then one Range request from where it broke"
    );
    assert_eq!(*resumed.lock().unwrap(), vec![FIRST]);
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
    assert_eq!(*resumed.lock().unwrap(), starts);
}

#[test]
fn a_wrong_answer_to_a_range_request_fails_the_cache_never_wrong_bytes() {
    const FIRST: u64 = 500_000;
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
        assert_eq!(
            data.len() as u64,
            FIRST,
            "{what}: the bytes before the break"
        );
        let err = result.expect_err(&what);
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{what}: {err}");
        assert!(err.to_string().contains(says), "{what}: {err}");
        assert_eq!(
            cache.status(),
            Status::Failed {
                available: FIRST,
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
