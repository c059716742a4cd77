#![cfg(not(miri))]
//! The fault suite (issue 7): resumable sources against a real TCP server that hangs up, source
//! faults at every chunk boundary ±1 (in the arena and in the spill file), `Interrupted` storms,
//! panicking and over-claiming resumable sources and `open`s, the exact retry count and backoff
//! of `spawn_resumable`, and cancellation while retrying. The failures of plain sources and of
//! the storage (a panicking or over-claiming `Read`, a missing or unwritable `temp_dir`, a full
//! disk, with plain and resumable sources) are in `failures.rs`.
//!
//! Every wait is bounded by [`HANG_GUARD`]; timing checks are lower bounds only.

mod common;

use common::faults::{
    assert_complete, assert_failed, join_streamer, offsets, retrying, streamer, Open, OpenLog,
    Opener, QUICK,
};
use common::http::{range_server, Cut, Ranges};
use common::offsets::{assert_pattern, pattern, temp_dir, KIB, MIB};
use common::source::{everything, injected, one_more, Fault, PatternSource};
use common::{no_hang, outcome, HANG_GUARD};
use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use streamcache::{Builder, Status, StreamCache, TRANSIENT_ERROR_KINDS};

/// The kinds `spawn_resumable` retries, as the issue and the crate docs list them. The tests
/// below use the library's own list, [`TRANSIENT_ERROR_KINDS`]; this pins it, once.
#[test]
fn the_transient_kinds_are_the_documented_ones() {
    assert_eq!(
        TRANSIENT_ERROR_KINDS,
        [
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionAborted,
            ErrorKind::BrokenPipe,
            ErrorKind::TimedOut,
            ErrorKind::Interrupted,
            ErrorKind::UnexpectedEof,
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP server on 127.0.0.1 that hangs up, and honours Range on the next request
// (common::http::range_server), and a raw client
// ---------------------------------------------------------------------------------------------

/// The client's `open(offset)`: a GET, with `Range: bytes=offset-` past 0; returns the body.
fn http_open(addr: SocketAddr, offset: u64) -> io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(addr)?;
    // A hang guard: a timeout is `WouldBlock` here, not retried, so a stuck test fails.
    stream.set_read_timeout(Some(HANG_GUARD))?;
    let mut request = format!("GET /data HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if offset > 0 {
        request.push_str(&format!("Range: bytes={offset}-\r\n"));
    }
    request.push_str("\r\n");
    (&stream).write_all(request.as_bytes())?;
    let mut body = BufReader::new(stream);
    let mut status = String::new();
    if body.read_line(&mut status)? == 0 {
        return Err(io::Error::new(
            ErrorKind::UnexpectedEof,
            "the server closed before answering",
        ));
    }
    let want = if offset > 0 { "206" } else { "200" };
    if status.split_whitespace().nth(1) != Some(want) {
        return Err(io::Error::other(format!(
            "status {status:?} for offset {offset}"
        )));
    }
    let mut content_range = None;
    loop {
        let mut line = String::new();
        if body.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "the server closed in the headers",
            ));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-range") {
                content_range = Some(value.trim().to_owned());
            }
        }
    }
    if offset > 0 {
        let ok = content_range
            .as_deref()
            .is_some_and(|r| r.starts_with(&format!("bytes {offset}-")));
        if !ok {
            return Err(io::Error::other(format!(
                "Content-Range {content_range:?} for offset {offset}"
            )));
        }
    }
    Ok(body)
}

/// Four readers of different kinds over the whole stream; none may see an error.
fn readers_see_one_intact_stream(cache: &StreamCache, len: u64) {
    let streamers = [streamer(cache, "reader 1"), streamer(cache, "reader 2")];
    let buffered = {
        let mut reader = cache.reader();
        thread::spawn(move || {
            let mut total = 0u64;
            loop {
                let at = reader.position();
                let buf = reader.fill_buf()?;
                if buf.is_empty() {
                    return Ok::<_, io::Error>(total);
                }
                assert_pattern(at, buf, "fill_buf reader");
                let n = buf.len();
                total += n as u64;
                reader.consume(n);
            }
        })
    };
    let random = {
        let cache = cache.clone();
        thread::spawn(move || {
            let mut x = 0x1234_5678_u64;
            let mut buf = vec![0u8; 9000];
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = x % len;
                let n = cache.read_at(at, &mut buf)?;
                assert!(n > 0, "read_at({at}) before the end returned 0");
                assert_pattern(at, &buf[..n], "read_at reader");
            }
            Ok::<_, io::Error>(())
        })
    };
    for (i, s) in streamers.into_iter().enumerate() {
        let (at, result) = join_streamer(s, "streaming reader");
        result.unwrap_or_else(|e| panic!("streaming reader {i} got an error at {at}: {e:?}"));
        assert_eq!(at, len, "streaming reader {i} ended early");
    }
    let total = no_hang("fill_buf reader", move || buffered.join().unwrap()).unwrap();
    assert_eq!(total, len);
    no_hang("read_at reader", move || random.join().unwrap()).unwrap();
}

#[test]
fn http_server_hangs_up_after_n_bytes_then_honours_range() {
    const LEN: u64 = 2 * MIB + 333;
    const FIRST: u64 = 700_001;
    let server = range_server(
        pattern(0, LEN).into(),
        vec![Cut::Close(FIRST)],
        Ranges::Honour,
    );
    let addr = server.addr;
    let cache = StreamCache::builder()
        .memory_limit(512 << 10)
        .chunk_size(64 << 10)
        .expected_len(LEN) // the Content-Length
        .retry_backoff(QUICK)
        .spawn_resumable(move |offset| http_open(addr, offset))
        .unwrap();
    readers_see_one_intact_stream(&cache, LEN);
    assert_complete(&cache, LEN, "resumed download");
    assert_eq!(
        *server.requests.lock().unwrap(),
        vec![None, Some(FIRST)],
        "one plain GET, then one Range request from where it broke"
    );
}

#[test]
fn http_server_resets_and_closes_repeatedly() {
    const LEN: u64 = 3 * MIB + 17;
    let plan = vec![
        Cut::Reset(100_000),
        Cut::Close(600_000),
        Cut::Reset(1_000_000),
        Cut::Close(1),
    ];
    let server = range_server(pattern(0, LEN).into(), plan.clone(), Ranges::Honour);
    let addr = server.addr;
    let cache = StreamCache::builder()
        .memory_limit(1 << 20)
        .chunk_size(32 << 10)
        .expected_len(LEN)
        .retry_backoff(QUICK)
        .spawn_resumable(move |offset| http_open(addr, offset))
        .unwrap();
    readers_see_one_intact_stream(&cache, LEN);
    assert_complete(&cache, LEN, "download through resets");
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), plan.len() + 1, "{requests:?}");
    assert_eq!(requests[0], None, "{requests:?}");
    // A Range header exactly when resuming past 0.
    let starts: Vec<u64> = requests.iter().map(|r| r.unwrap_or(0)).collect();
    assert!(requests[1..].iter().all(|r| r != &Some(0)), "{requests:?}");
    for (i, w) in starts.windows(2).enumerate() {
        match plan[i] {
            // A clean close delivers every byte sent: the next request starts right after.
            Cut::Close(n) => assert_eq!(w[1], w[0] + n, "request {i}: {requests:?}"),
            // A RST may discard bytes the client had not read yet: it resumes from what it got.
            Cut::Reset(n) => assert!(w[0] <= w[1] && w[1] <= w[0] + n, "{requests:?}"),
            Cut::Stall(_) => unreachable!("no stalls in this plan"),
        }
    }
}

#[test]
fn http_server_that_always_hangs_up_after_progress() {
    // Every response stops after 64 KiB: each re-open makes progress, so `retries(1)` is enough.
    const LEN: u64 = MIB + 5;
    const STEP: u64 = 64 << 10;
    let plan = vec![Cut::Close(STEP); (LEN / STEP) as usize];
    let server = range_server(pattern(0, LEN).into(), plan, Ranges::Honour);
    let addr = server.addr;
    let cache = retrying(1)
        .memory_limit(200 << 10)
        .expected_len(LEN)
        .spawn_resumable(move |offset| http_open(addr, offset))
        .unwrap();
    readers_see_one_intact_stream(&cache, LEN);
    assert_complete(&cache, LEN, "download in 64 KiB pieces");
    let requests = server.requests.lock().unwrap().clone();
    let expected: Vec<Option<u64>> = (0..=LEN / STEP)
        .map(|i| (i > 0).then_some(i * STEP))
        .collect();
    assert_eq!(requests, expected);
}

// ---------------------------------------------------------------------------------------------
// Source faults at every chunk boundary ±1, in the arena and in the spill file
// ---------------------------------------------------------------------------------------------

const CHUNK: usize = 4096;
const TOTAL: u64 = 41_000;

/// Where the filler's reads start and end for a source that fills every buffer: chunk-sized
/// reads in the arena up to its end, then chunk-sized reads in the spill file.
fn read_boundaries(memory_limit: u64) -> Vec<u64> {
    let mut ends = vec![0];
    let mut pos = 0;
    while pos < TOTAL {
        let room = if pos < memory_limit {
            (memory_limit - pos).min(CHUNK as u64)
        } else {
            CHUNK as u64
        };
        pos = (pos + room).min(TOTAL);
        ends.push(pos);
    }
    ends
}

/// Every chunk boundary, the arena's end and the stream's end, each -1, +0 and +1.
fn fault_offsets(memory_limit: u64) -> BTreeSet<u64> {
    let mut at = BTreeSet::new();
    for b in read_boundaries(memory_limit)
        .into_iter()
        .chain([memory_limit.min(TOTAL), TOTAL])
    {
        for o in [b.saturating_sub(1), b, b + 1] {
            if o <= TOTAL {
                at.insert(o);
            }
        }
    }
    at
}

/// Memory limits: all in the arena, arena then spill (not a multiple of the chunk), spill only.
const MEMORY_LIMITS: [u64; 3] = [MIB, 10_000, 0];

fn boundary_builder(memory_limit: u64, dir: &Path) -> Builder {
    StreamCache::builder()
        .memory_limit(memory_limit as usize)
        .chunk_size(CHUNK)
        .temp_dir(dir)
}

#[test]
fn source_errors_at_every_chunk_boundary() {
    let dir = temp_dir("boundary-errors");
    for memory_limit in MEMORY_LIMITS {
        for at in fault_offsets(memory_limit) {
            let what = format!("error at {at} (memory_limit {memory_limit})");
            let kind = ErrorKind::ConnectionReset;
            let cache = boundary_builder(memory_limit, dir.path())
                .spawn(PatternSource::new(TOTAL).fault(at, Fault::Error(kind)))
                .unwrap();
            let reader = streamer(&cache, "streaming reader");
            let message = injected("source", kind, at);
            assert_failed(&cache, at, kind, &message, &what);
            let (stopped, result) = join_streamer(reader, &what);
            assert_eq!(
                stopped, at,
                "{what}: the streaming reader got every byte before"
            );
            assert_eq!(result.unwrap_err().kind(), kind, "{what}");
        }
    }
}

#[test]
fn chunk_source_errors_at_every_chunk_boundary() {
    let dir = temp_dir("boundary-chunks");
    for memory_limit in MEMORY_LIMITS {
        for at in fault_offsets(memory_limit) {
            let what = format!("chunk error at {at} (memory_limit {memory_limit})");
            // Chunks of 3000 bytes (not lined up with reads), cut at the fault, then the error.
            let mut chunks: Vec<io::Result<Vec<u8>>> = Vec::new();
            let mut pos = 0;
            while pos < at {
                let end = (pos + 3000).min(at);
                chunks.push(Ok(pattern(pos, end)));
                pos = end;
            }
            chunks.push(Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("chunk at {at}"),
            )));
            chunks.push(Ok(vec![0xEE; 100])); // never reached
            let cache = boundary_builder(memory_limit, dir.path())
                .spawn_chunks(chunks)
                .unwrap();
            assert_failed(
                &cache,
                at,
                ErrorKind::TimedOut,
                &format!("chunk at {at}"),
                &what,
            );
        }
    }
}

#[test]
fn overclaiming_reads_at_every_chunk_boundary() {
    let dir = temp_dir("boundary-overclaim");
    for memory_limit in MEMORY_LIMITS {
        for (i, at) in fault_offsets(memory_limit).into_iter().enumerate() {
            let claim = if i % 2 == 0 { one_more } else { everything };
            let what = format!("overclaim at {at} (memory_limit {memory_limit})");
            let cache = boundary_builder(memory_limit, dir.path())
                .spawn(PatternSource::new(TOTAL).fault(at, Fault::Overclaim(claim)))
                .unwrap();
            assert_failed(&cache, at, ErrorKind::InvalidData, "", &what);
        }
    }
}

#[test]
fn resumable_breaks_at_every_chunk_boundary() {
    let dir = temp_dir("boundary-resume");
    // Every transient way to break: an error of each retried kind, or an early end.
    let breaks: Vec<Fault> = TRANSIENT_ERROR_KINDS
        .iter()
        .filter(|&&k| k != ErrorKind::Interrupted) // retried at once on the same reader: no break
        .map(|&k| Fault::Error(k))
        .chain([Fault::End])
        .collect();
    for memory_limit in MEMORY_LIMITS {
        for (i, at) in fault_offsets(memory_limit).into_iter().enumerate() {
            let fault = breaks[i % breaks.len()];
            let what = format!("{fault:?} at {at} (memory_limit {memory_limit})");
            let opener = Opener::new(TOTAL, &[Open::At(at, fault)], &[]);
            let log = opener.log();
            let cache = opener.spawn(
                boundary_builder(memory_limit, dir.path())
                    .expected_len(TOTAL)
                    .retries(1)
                    .retry_backoff(QUICK),
            );
            let reader = streamer(&cache, "streaming reader");
            assert_complete(&cache, TOTAL, &what);
            let (stopped, result) = join_streamer(reader, &what);
            result.unwrap_or_else(|e| panic!("{what}: the streaming reader got {e:?}"));
            assert_eq!(stopped, TOTAL, "{what}");
            // An end at the expected length is the end, not a break.
            let expected = if at == TOTAL && matches!(fault, Fault::End) {
                vec![0]
            } else {
                vec![0, at]
            };
            assert_eq!(offsets(&log), expected, "{what}: the offsets opened");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Interrupted storms
// ---------------------------------------------------------------------------------------------

#[test]
fn interrupted_storm_from_a_read_source() {
    const LEN: u64 = 300 * KIB + 7;
    let dir = temp_dir("storm");
    for memory_limit in [MIB as usize, 64 << 10, 0] {
        let count = Arc::new(AtomicU64::new(0));
        let cache = StreamCache::builder()
            .memory_limit(memory_limit)
            .temp_dir(dir.path())
            .chunk_size(8 << 10)
            .spawn(PatternSource::new(LEN).piece(999).storm(50, &count))
            .unwrap();
        assert_complete(&cache, LEN, "storm");
        assert!(
            count.load(Ordering::Relaxed) >= 300 * 50,
            "the storm happened"
        );
    }
}

#[test]
fn interrupted_storm_from_a_chunk_source() {
    const LEN: u64 = 100 * KIB;
    let mut items: Vec<io::Result<Vec<u8>>> = Vec::new();
    let mut pos = 0;
    while pos < LEN {
        for _ in 0..100 {
            items.push(Err(io::Error::new(ErrorKind::Interrupted, "storm")));
        }
        let end = (pos + 1000).min(LEN);
        items.push(Ok(pattern(pos, end)));
        pos = end;
    }
    let dir = temp_dir("storm-chunks");
    let cache = StreamCache::builder()
        .memory_limit(32 << 10)
        .temp_dir(dir.path())
        .spawn_chunks(items)
        .unwrap();
    assert_complete(&cache, LEN, "chunk storm");
}

#[test]
fn interrupted_storm_from_a_resumable_source_is_not_a_retry() {
    // `Interrupted` from a reader is retried at once on the same reader: no re-open, no
    // backoff, and it does not count against `retries` (0 here: any counted failure fails).
    const LEN: u64 = 200 * KIB + 1;
    let dir = temp_dir("storm-resume");
    for memory_limit in [MIB as usize, 0] {
        let opener = Opener::new(LEN, &[], &[]).piece(777).storm(40);
        let count = opener.interrupts();
        let log = opener.log();
        let cache = opener.spawn(
            StreamCache::builder()
                .memory_limit(memory_limit)
                .temp_dir(dir.path())
                .expected_len(LEN)
                .retries(0)
                .retry_backoff(Duration::from_secs(3600)),
        );
        assert_complete(&cache, LEN, "resumable storm");
        assert_eq!(offsets(&log), vec![0], "Interrupted re-opened the source");
        assert!(count.load(Ordering::Relaxed) >= 40 * 200);
    }
}

#[test]
fn interrupted_storm_then_a_real_break() {
    const LEN: u64 = 150 * KIB;
    const AT: u64 = 70_001;
    let opener = Opener::new(
        LEN,
        &[Open::At(AT, Fault::Error(ErrorKind::ConnectionReset))],
        &[],
    )
    .piece(1001)
    .storm(20);
    let log = opener.log();
    let cache = opener.spawn(retrying(1).memory_limit(64 << 10).expected_len(LEN));
    assert_complete(&cache, LEN, "storm and a break");
    assert_eq!(offsets(&log), vec![0, AT]);
}

#[test]
fn interrupted_from_open_counts_against_retries() {
    // `Interrupted` is in the transient list, and "an open that itself fails with a transient
    // kind counts as one": with `retries(2)`, the third failure in a row is the last, and the
    // cache fails with it. (Its kind is not pinned here: a cache failed with `Interrupted`
    // would make std's `read_to_end` and `read_exact` on a `Reader` retry it forever.)
    for (plan, at) in [
        (vec![], 0),
        (
            vec![Open::At(5000, Fault::Error(ErrorKind::ConnectionReset))],
            5000,
        ),
    ] {
        let what = format!("open fails with Interrupted at {at}");
        let opener = Opener::new(20_000, &plan, &[Open::Refuse(ErrorKind::Interrupted)]);
        let log = opener.log();
        let cache = opener.spawn(retrying(2));
        let err = outcome(&cache).expect_err(&what);
        let opens = offsets(&log);
        assert!(
            err.to_string().contains("refused with Interrupted"),
            "{what}: the cache failed with {err:?} after {} opens (expected 3 at {at})",
            opens.len()
        );
        assert!(
            matches!(cache.status(), Status::Failed { available, .. } if available == at),
            "{what}: {:?}",
            cache.status()
        );
        let mut expected = vec![0];
        expected.resize(3, at);
        assert_eq!(opens, expected, "{what}: the offsets opened");
    }
}

#[test]
fn interrupted_from_open_is_transient() {
    // An `open` that fails with a transient kind counts as one re-open (Interrupted included).
    const LEN: u64 = 10_000;
    let opener = Opener::new(LEN, &[Open::Refuse(ErrorKind::Interrupted)], &[]);
    let log = opener.log();
    let cache = opener.spawn(retrying(1));
    assert_complete(&cache, LEN, "open interrupted once");
    assert_eq!(offsets(&log), vec![0, 0]);
}

// ---------------------------------------------------------------------------------------------
// A resumable source or its `open` panicking; `open` failing
// ---------------------------------------------------------------------------------------------

#[test]
fn a_resumable_source_panicking_is_not_retried() {
    const LEN: u64 = 100 * KIB;
    let opener = Opener::new(LEN, &[Open::At(2000, Fault::Panic)], &[]).piece(1000);
    let log = opener.log();
    let cache = opener.spawn(retrying(5).memory_limit(1500).expected_len(LEN));
    assert_failed(
        &cache,
        2000,
        ErrorKind::Other,
        "open #1: injected panic at byte 2000",
        "resumable panic on the third read",
    );
    assert_eq!(offsets(&log), vec![0], "a panic is not retried");
}

#[test]
fn open_panicking() {
    const LEN: u64 = 100 * KIB;
    for (plan, at) in [
        (vec![Open::Panic], 0),
        (
            vec![
                Open::At(5000, Fault::Error(ErrorKind::ConnectionReset)),
                Open::Panic,
            ],
            5000,
        ),
    ] {
        let opener = Opener::new(LEN, &plan, &[]);
        let log = opener.log();
        let cache = opener.spawn(retrying(5));
        let n = plan.len();
        assert_failed(
            &cache,
            at,
            ErrorKind::Other,
            &format!("open #{n} at {at}: injected panic in open"),
            "open panics",
        );
        assert_eq!(offsets(&log).len(), n);
    }
}

#[test]
fn open_failing_with_a_permanent_error_is_not_retried() {
    for kind in [ErrorKind::NotFound, ErrorKind::PermissionDenied] {
        let opener = Opener::new(1000, &[Open::Refuse(kind)], &[]);
        let log = opener.log();
        let cache = opener.spawn(retrying(5));
        assert_failed(
            &cache,
            0,
            kind,
            &format!("open #1 at 0: refused with {kind:?}"),
            "open(0) fails",
        );
        assert_eq!(offsets(&log), vec![0]);
    }
    // And at a re-open, mid-stream.
    let opener = Opener::new(
        50_000,
        &[
            Open::At(12_345, Fault::Error(ErrorKind::ConnectionAborted)),
            Open::Refuse(ErrorKind::NotFound),
        ],
        &[],
    );
    let log = opener.log();
    let cache = opener.spawn(retrying(5));
    assert_failed(
        &cache,
        12_345,
        ErrorKind::NotFound,
        "open #2 at 12345: refused with NotFound",
        "re-open fails",
    );
    assert_eq!(offsets(&log), vec![0, 12_345]);
}

#[test]
fn open_failing_transiently_then_succeeding() {
    const LEN: u64 = 64 * KIB;
    let opener = Opener::new(
        LEN,
        &[
            Open::Refuse(ErrorKind::TimedOut),
            Open::Refuse(ErrorKind::ConnectionReset),
        ],
        &[],
    );
    let log = opener.log();
    let cache = opener.spawn(retrying(2));
    assert_complete(&cache, LEN, "open fails twice");
    assert_eq!(offsets(&log), vec![0, 0, 0]);
}

// ---------------------------------------------------------------------------------------------
// Retry counting
// ---------------------------------------------------------------------------------------------

#[test]
fn n_retries_is_n_plus_one_opens_at_one_offset() {
    for n in [0, 1, 2, 5] {
        // At offset 0: the first open and n re-opens.
        let opener = Opener::new(
            1000,
            &[],
            &[Open::Fails(Fault::Error(ErrorKind::BrokenPipe))],
        );
        let log = opener.log();
        let cache = opener.spawn(retrying(n));
        let last = format!("open #{}: injected BrokenPipe at byte 0", n + 1);
        assert_failed(&cache, 0, ErrorKind::BrokenPipe, &last, "fails at 0");
        assert_eq!(offsets(&log), vec![0; n as usize + 1], "retries({n})");

        // Mid-stream: progress to 5000, then n re-opens at 5000 without progress.
        let opener = Opener::new(
            20_000,
            &[Open::At(5000, Fault::Error(ErrorKind::ConnectionReset))],
            &[Open::Fails(Fault::Error(ErrorKind::ConnectionReset))],
        );
        let log = opener.log();
        let cache = opener.spawn(retrying(n).memory_limit(3000));
        let last = format!("open #{}: injected ConnectionReset at byte 5000", n + 1);
        assert_failed(
            &cache,
            5000,
            ErrorKind::ConnectionReset,
            &last,
            "fails at 5000",
        );
        let mut expected = vec![0];
        expected.extend(std::iter::repeat_n(5000, n as usize));
        assert_eq!(offsets(&log), expected, "retries({n}) mid-stream");
    }
}

#[test]
fn failing_opens_count_as_retries() {
    // Opens that fail and readers that fail at once, alternating: n + 1 calls in all; the cache
    // fails with the last error.
    let opener = Opener::new(
        1000,
        &[],
        &[
            Open::Refuse(ErrorKind::TimedOut),
            Open::Fails(Fault::Error(ErrorKind::ConnectionAborted)),
        ],
    );
    let log = opener.log();
    let cache = opener.spawn(retrying(4));
    assert_failed(
        &cache,
        0,
        ErrorKind::TimedOut,
        "open #5 at 0: refused with TimedOut",
        "alternating failures",
    );
    assert_eq!(offsets(&log), vec![0; 5]);
}

#[test]
fn the_default_is_three_retries() {
    let opener = Opener::new(1000, &[], &[Open::Refuse(ErrorKind::ConnectionReset)]);
    let log = opener.log();
    let cache = opener.spawn(StreamCache::builder().retry_backoff(QUICK));
    assert_failed(
        &cache,
        0,
        ErrorKind::ConnectionReset,
        "open #4",
        "default retries",
    );
    assert_eq!(offsets(&log), vec![0; 4]);
}

#[test]
fn progress_resets_the_retry_count() {
    // Every reader delivers 1000 bytes, then breaks; the next open fails too: two failures at
    // each offset. With `retries(2)` this completes, since progress resets the count...
    const LEN: u64 = 30_500;
    let plan = [
        Open::After(1000, Fault::Error(ErrorKind::ConnectionReset)),
        Open::Refuse(ErrorKind::TimedOut),
    ];
    let opener = Opener::new(LEN, &[], &plan);
    let log = opener.log();
    let cache = opener.spawn(retrying(2).memory_limit(8000).expected_len(LEN));
    assert_complete(&cache, LEN, "progress between failures");
    // At each k * 1000: a refused open, then a reader that gets to (k + 1) * 1000.
    let mut expected = vec![0];
    for k in 1..=LEN / 1000 {
        expected.extend([k * 1000, k * 1000]);
    }
    assert_eq!(offsets(&log), expected);

    // ...and with `retries(1)` the second failure at 1000 is one too many.
    let opener = Opener::new(LEN, &[], &plan);
    let log = opener.log();
    let cache = opener.spawn(retrying(1).expected_len(LEN));
    assert_failed(
        &cache,
        1000,
        ErrorKind::TimedOut,
        "open #2 at 1000: refused with TimedOut",
        "two failures, retries(1)",
    );
    assert_eq!(offsets(&log), vec![0, 1000]);
}

#[test]
fn permanent_kinds_are_never_retried() {
    for kind in [
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::InvalidData,
        ErrorKind::InvalidInput,
        ErrorKind::Other,
        ErrorKind::WouldBlock,
        ErrorKind::StorageFull,
        ErrorKind::OutOfMemory,
        ErrorKind::Unsupported,
        ErrorKind::AddrNotAvailable,
        ErrorKind::NotConnected,
    ] {
        let what = format!("{kind:?} from a reader");
        let opener = Opener::new(20_000, &[Open::At(7777, Fault::Error(kind))], &[]);
        let log = opener.log();
        let cache = opener.spawn(retrying(10).expected_len(20_000));
        assert_failed(&cache, 7777, kind, &injected("open #1", kind, 7777), &what);
        assert_eq!(offsets(&log), vec![0], "{what}");

        let what = format!("{kind:?} from open");
        let opener = Opener::new(20_000, &[Open::Refuse(kind)], &[]);
        let log = opener.log();
        let cache = opener.spawn(retrying(10));
        assert_failed(&cache, 0, kind, "open #1 at 0", &what);
        assert_eq!(offsets(&log), vec![0], "{what}");
    }
}

#[test]
fn every_transient_kind_is_retried() {
    const LEN: u64 = 20_000;
    for &kind in TRANSIENT_ERROR_KINDS {
        if kind == ErrorKind::Interrupted {
            continue; // retried on the same reader: see the storm tests
        }
        let opener = Opener::new(LEN, &[Open::At(7777, Fault::Error(kind))], &[]);
        let log = opener.log();
        let cache = opener.spawn(retrying(1));
        assert_complete(&cache, LEN, &format!("{kind:?}"));
        assert_eq!(offsets(&log), vec![0, 7777], "{kind:?}");
    }
}

#[test]
fn an_early_end_is_a_break_only_with_an_expected_len() {
    const LEN: u64 = 20_000;
    // With the Content-Length: resumed.
    let opener = Opener::new(LEN, &[Open::At(7777, Fault::End)], &[]);
    let log = opener.log();
    let cache = opener.spawn(retrying(1).expected_len(LEN));
    assert_complete(&cache, LEN, "early end, resumed");
    assert_eq!(offsets(&log), vec![0, 7777]);

    // Without: the end of the stream.
    let opener = Opener::new(LEN, &[Open::At(7777, Fault::End)], &[]);
    let log = opener.log();
    let cache = opener.spawn(retrying(1));
    assert_complete(&cache, 7777, "early end without expected_len");
    assert_eq!(offsets(&log), vec![0]);
}

#[test]
fn a_source_shorter_than_expected_fails_with_unexpected_eof() {
    // Every re-open at 9000 ends at once: after the retries, UnexpectedEof at 9000.
    let opener = Opener::new(9000, &[], &[]);
    let log = opener.log();
    let cache = opener.spawn(retrying(2).memory_limit(4000).expected_len(10_000));
    assert_failed(&cache, 9000, ErrorKind::UnexpectedEof, "", "short source");
    assert_eq!(offsets(&log), vec![0, 9000, 9000]);
}

#[test]
fn a_source_longer_than_expected_completes_with_its_true_length() {
    let dir = temp_dir("longer");
    for memory_limit in [MIB as usize, 3000, 0] {
        // Plainly longer.
        let opener = Opener::new(12_000, &[], &[]).piece(700);
        let log = opener.log();
        let cache = opener.spawn(
            StreamCache::builder()
                .memory_limit(memory_limit)
                .temp_dir(dir.path())
                .expected_len(5000)
                .retries(0),
        );
        assert_complete(&cache, 12_000, "longer than expected");
        assert_eq!(offsets(&log), vec![0]);

        // Longer, and breaking past the expected length: resumed there.
        let opener = Opener::new(
            12_000,
            &[Open::At(8000, Fault::Error(ErrorKind::ConnectionReset))],
            &[],
        );
        let log = opener.log();
        let cache = opener.spawn(
            retrying(1)
                .memory_limit(memory_limit)
                .temp_dir(dir.path())
                .expected_len(5000),
        );
        assert_complete(&cache, 12_000, "longer, breaking past expected_len");
        assert_eq!(offsets(&log), vec![0, 8000]);

        // Plain sources too.
        let cache = StreamCache::builder()
            .memory_limit(memory_limit)
            .temp_dir(dir.path())
            .expected_len(5000)
            .spawn(PatternSource::new(12_000).piece(700))
            .unwrap();
        assert_complete(&cache, 12_000, "plain source longer than expected");
    }
}

#[test]
fn a_break_at_exactly_the_expected_len_resumes_at_the_end() {
    const LEN: u64 = 10_000;
    let opener = Opener::new(
        LEN,
        &[Open::At(LEN, Fault::Error(ErrorKind::ConnectionReset))],
        &[],
    );
    let log = opener.log();
    let cache = opener.spawn(retrying(1).expected_len(LEN));
    assert_complete(&cache, LEN, "break at the end");
    assert_eq!(offsets(&log), vec![0, LEN]);
}

#[test]
fn open_is_called_on_the_filler_thread() {
    let opener = Opener::new(
        10_000,
        &[Open::At(10, Fault::Error(ErrorKind::TimedOut))],
        &[],
    );
    let log = opener.log();
    let cache = opener.spawn(
        StreamCache::builder()
            .thread_name("faults-filler")
            .retry_backoff(QUICK),
    );
    assert_complete(&cache, 10_000, "thread name");
    let names: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.thread.clone())
        .collect();
    assert_eq!(names, vec![Some("faults-filler".to_owned()); 2]);
}

// ---------------------------------------------------------------------------------------------
// Backoff: lower bounds only
// ---------------------------------------------------------------------------------------------

/// The gaps between consecutive opens.
fn gaps(log: &OpenLog) -> Vec<Duration> {
    let calls = log.lock().unwrap();
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[test]
fn backoff_doubles_per_failure_without_progress() {
    const FIRST: Duration = Duration::from_millis(20);
    let opener = Opener::new(1000, &[], &[Open::Refuse(ErrorKind::ConnectionReset)]);
    let log = opener.log();
    let cache = opener.spawn(StreamCache::builder().retries(4).retry_backoff(FIRST));
    outcome(&cache).unwrap_err();
    let gaps = gaps(&log);
    assert_eq!(gaps.len(), 4);
    for (i, gap) in gaps.iter().enumerate() {
        let least = FIRST * (1 << i);
        assert!(
            *gap >= least,
            "re-open {} came after {gap:?} < {least:?}",
            i + 1
        );
    }
}

#[test]
fn the_default_backoff_is_100_ms_doubling() {
    let opener = Opener::new(1000, &[], &[Open::Fails(Fault::Error(ErrorKind::TimedOut))]);
    let log = opener.log();
    let cache = opener.spawn(StreamCache::builder());
    outcome(&cache).unwrap_err();
    let gaps = gaps(&log);
    assert_eq!(gaps.len(), 3, "default retries");
    for (i, gap) in gaps.iter().enumerate() {
        let least = Duration::from_millis(100) * (1 << i);
        assert!(
            *gap >= least,
            "re-open {} came after {gap:?} < {least:?}",
            i + 1
        );
    }
}

#[test]
fn progress_resets_the_backoff() {
    // 40 breaks, each after progress. With the backoff reset by progress they cost ~40 × 10 ms;
    // without it the waits would double to the 30 s cap and blow the hang guard.
    const LEN: u64 = 40 * 500 + 1;
    const FIRST: Duration = Duration::from_millis(10);
    let opener = Opener::new(
        LEN,
        &[],
        &[Open::After(500, Fault::Error(ErrorKind::ConnectionReset))],
    );
    let log = opener.log();
    let cache = opener.spawn(
        StreamCache::builder()
            .expected_len(LEN)
            .retries(1)
            .retry_backoff(FIRST),
    );
    assert_complete(&cache, LEN, "backoff reset");
    assert_eq!(offsets(&log).len(), 41);
    for (i, gap) in gaps(&log).iter().enumerate() {
        assert!(*gap >= FIRST, "re-open {} came after {gap:?}", i + 1);
    }
}

#[test]
fn readers_wait_through_a_break_and_see_no_error() {
    // While the filler is between a break and the re-open, the stream is Filling, readers past
    // the break wait, and none of them sees an error.
    const LEN: u64 = 50_000;
    const AT: u64 = 20_000;
    let (opened_tx, opened_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let cache = StreamCache::builder()
        .memory_limit(8000)
        .expected_len(LEN)
        .retries(1)
        .retry_backoff(Duration::from_millis(5))
        .spawn_resumable(move |offset| {
            if offset == 0 {
                return Ok(
                    PatternSource::new(LEN).fault(AT, Fault::Error(ErrorKind::ConnectionReset))
                );
            }
            opened_tx.send(offset).unwrap();
            go_rx.recv_timeout(HANG_GUARD).unwrap();
            Ok(PatternSource::new(LEN).at(offset))
        })
        .unwrap();
    let waiting: Vec<_> = [AT + 1, LEN, u64::MAX]
        .into_iter()
        .map(|target| {
            let cache = cache.clone();
            thread::spawn(move || cache.wait_for(target))
        })
        .collect();
    let reader = streamer(&cache, "reader through the break");
    assert_eq!(opened_rx.recv_timeout(HANG_GUARD).unwrap(), AT);
    // The re-open is in progress (blocked on `go`): nothing has failed.
    assert_eq!(cache.status(), Status::Filling { available: AT });
    assert_eq!(
        cache
            .wait_for_timeout(AT + 1, Duration::from_millis(50))
            .unwrap(),
        None
    );
    assert!(waiting.iter().all(|t| !t.is_finished()));
    go_tx.send(()).unwrap();
    for t in waiting {
        let result = no_hang("a waiting reader", move || t.join().unwrap());
        assert!(result.unwrap() > AT);
    }
    let (at, result) = join_streamer(reader, "reader through the break");
    result.unwrap();
    assert_eq!(at, LEN);
    assert_complete(&cache, LEN, "after the break");
}

// ---------------------------------------------------------------------------------------------
// Dropping every handle stops retrying
// ---------------------------------------------------------------------------------------------

/// A resumable cache whose source fails forever (after `plan`), with `retries(u32::MAX)`.
struct Forever {
    cache: StreamCache,
    log: OpenLog,
    /// The offset of every `open`.
    opened: Receiver<u64>,
    /// Signalled when the filler drops the `open` closure.
    dropped: Receiver<()>,
}

fn failing_forever(backoff: Duration, plan: &[Open]) -> Forever {
    let forever = [Open::Fails(Fault::Error(ErrorKind::ConnectionReset))];
    let (opener, opened) = Opener::new(MIB, plan, &forever).notify();
    let (opener, dropped) = opener.on_drop();
    let log = opener.log();
    let cache = opener.spawn(
        StreamCache::builder()
            .retries(u32::MAX)
            .retry_backoff(backoff),
    );
    Forever {
        cache,
        log,
        opened,
        dropped,
    }
}

#[test]
fn dropping_every_handle_during_a_long_backoff_stops_the_filler() {
    let Forever {
        cache,
        log,
        opened,
        dropped,
    } = failing_forever(Duration::from_secs(3600), &[]);
    assert_eq!(opened.recv_timeout(HANG_GUARD).unwrap(), 0);
    // Let the filler settle into its hour-long backoff.
    thread::sleep(Duration::from_millis(50));
    drop(cache);
    dropped
        .recv_timeout(HANG_GUARD)
        .expect("the filler kept the closure: it is still sleeping between retries");
    assert_eq!(
        offsets(&log),
        vec![0],
        "open was called again after the drop"
    );
}

#[test]
fn dropping_every_handle_stops_a_busy_retry_loop() {
    // No backoff at all: the filler re-opens in a tight loop until the handles are gone.
    let Forever {
        cache,
        log,
        opened,
        dropped,
    } = failing_forever(Duration::ZERO, &[]);
    for _ in 0..100 {
        opened.recv_timeout(HANG_GUARD).unwrap();
    }
    // A reader alone keeps it going...
    let reader = cache.reader();
    drop(cache);
    let before = offsets(&log).len();
    let deadline = Instant::now() + HANG_GUARD;
    while offsets(&log).len() < before + 100 {
        assert!(
            Instant::now() < deadline,
            "retrying stopped while a Reader lived"
        );
        thread::sleep(Duration::from_millis(1));
    }
    // ...until it is dropped too.
    drop(reader);
    dropped
        .recv_timeout(HANG_GUARD)
        .expect("the filler kept retrying after every handle was dropped");
}

#[test]
fn a_live_bytes_does_not_keep_the_retries_going() {
    // 5000 bytes, then a break and an hour's backoff.
    let Forever {
        cache,
        log,
        opened,
        dropped,
    } = failing_forever(
        Duration::from_secs(3600),
        &[Open::After(5000, Fault::Error(ErrorKind::ConnectionReset))],
    );
    let bytes = cache.bytes(..5000).unwrap();
    assert_eq!(opened.recv_timeout(HANG_GUARD).unwrap(), 0);
    drop(cache);
    dropped
        .recv_timeout(HANG_GUARD)
        .expect("a Bytes kept the filler retrying");
    assert_eq!(offsets(&log), vec![0]);
    assert_pattern(0, &bytes, "the Bytes after the filler stopped");
}

// ---------------------------------------------------------------------------------------------
// A resumable read that claims more than its buffer
// ---------------------------------------------------------------------------------------------

#[test]
fn a_resumable_read_claiming_more_than_its_buffer_is_invalid_data() {
    let dir = temp_dir("overclaim-resume");
    for memory_limit in [MIB as usize, 30_000, 0] {
        for (name, claim) in [
            ("len + 1", one_more as fn(usize) -> usize),
            ("usize::MAX", everything),
        ] {
            for at in [0, 50_000] {
                let what =
                    format!("resumable overclaim {name} at {at} (memory_limit {memory_limit})");
                let opener =
                    Opener::new(MIB, &[Open::At(at, Fault::Overclaim(claim))], &[]).piece(5000);
                let log = opener.log();
                let cache = opener.spawn(
                    StreamCache::builder()
                        .memory_limit(memory_limit)
                        .temp_dir(dir.path())
                        .chunk_size(8000)
                        .expected_len(MIB)
                        .retry_backoff(QUICK),
                );
                assert_failed(&cache, at, ErrorKind::InvalidData, "", &what);
                assert_eq!(offsets(&log), vec![0], "{what}");
            }
        }
    }
}
