//! A model check of ranged sources (`Builder::spawn_ranged`): random lengths, fetch settings
//! and connections, breaks and a changed byte; random reads, slices and seeks from three threads at once. Every
//! read is checked against the source's bytes: a byte may be the changed version only at the
//! changed offset, and the only error a well-formed read may get is the `InvalidData` of a
//! source caught changing.

mod common;

use common::{finishes_within, pattern, HANG_GUARD};
use proptest::prelude::*;
use std::collections::HashSet;
use std::io::{self, Cursor, ErrorKind, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamcache::StreamCache;

#[derive(Debug, Clone)]
enum Op {
    ReadAt(u64, usize),
    Slice(u64, u64),
    SeekRead(u64, usize),
    SeekEndRead(u64, usize),
    Present,
    KnownLen,
}

fn op(len: u64) -> impl Strategy<Value = Op> {
    let at = 0..len + 10;
    prop_oneof![
        (at.clone(), 1usize..20_000).prop_map(|(a, n)| Op::ReadAt(a, n)),
        (at.clone(), 0u64..30_000).prop_map(|(a, n)| Op::Slice(a, a + n)),
        (at.clone(), 1usize..20_000).prop_map(|(a, n)| Op::SeekRead(a, n)),
        (0..len + 1, 1usize..5_000).prop_map(|(back, n)| Op::SeekEndRead(back, n)),
        Just(Op::Present),
        Just(Op::KnownLen),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    len: u64,
    chunk: usize,
    ahead: u64,
    span: u64,
    max_fetches: usize,
    connections: usize,
    breaks: Vec<u64>,
    changed: Option<u64>,
    threads: Vec<Vec<Op>>,
}

/// The longest stream a case makes: under miri, short enough to run in minutes.
const MAX_LEN: u64 = if cfg!(miri) { 3_000 } else { 300_000 };

fn case() -> impl Strategy<Value = Case> {
    (0..MAX_LEN).prop_flat_map(|len| {
        (
            1usize..20_000,
            0..MAX_LEN / 3,
            1..MAX_LEN / 3,
            0usize..4,
            1usize..5,
            proptest::collection::vec(0..len.max(1), 0..4),
            proptest::option::weighted(0.3, 0..len.max(1)),
            proptest::collection::vec(proptest::collection::vec(op(len), 1..12), 3),
        )
            .prop_map(
                move |(chunk, ahead, span, max_fetches, connections, breaks, changed, threads)| {
                    Case {
                        len,
                        chunk,
                        ahead,
                        span,
                        max_fetches,
                        connections,
                        breaks,
                        changed: changed.filter(|_| len > 0),
                        threads,
                    }
                },
            )
    })
}

/// The bytes a read of `[at, at + got.len())` may have returned.
fn check(case: &Case, data: &[u8], at: u64, got: &[u8], what: &str) {
    assert!(
        got.is_empty() || at + got.len() as u64 <= case.len,
        "{what}: past the end"
    );
    for (i, &b) in got.iter().enumerate() {
        let offset = at + i as u64;
        let right = data[offset as usize];
        let changed = case.changed == Some(offset) && b == !right;
        assert!(
            b == right || changed,
            "{what}: byte {offset} is {b}, not {right}"
        );
    }
}

/// An error is allowed only where the source was caught changing.
fn check_error(case: &Case, e: &io::Error, what: &str) {
    assert!(
        case.changed.is_some() && e.kind() == ErrorKind::InvalidData,
        "{what}: {e}"
    );
}

fn run(case: Case) {
    let data = Arc::new(pattern(case.len as usize));
    let used_breaks = Arc::new(Mutex::new(HashSet::new()));
    let (d, c, used) = (Arc::clone(&data), case.clone(), Arc::clone(&used_breaks));
    let cache = StreamCache::builder()
        .chunk_size(case.chunk)
        .fetch_ahead(case.ahead)
        .fetch_span(case.span)
        .max_fetches(case.max_fetches)
        .connections(case.connections)
        .retries(8)
        .retry_backoff(Duration::ZERO)
        .spawn_ranged(case.len, move |r: Range<u64>| {
            // The fill: the filler thread, and its lanes with `connections` > 1.
            let name = std::thread::current().name().unwrap_or("").to_owned();
            let fill = name == "streamcache-filler" || name == "streamcache-filler:span";
            let mut bytes = d[r.start as usize..r.end as usize].to_vec();
            if let Some(x) = c.changed.filter(|x| fill && r.contains(x)) {
                bytes[(x - r.start) as usize] ^= 0xFF;
            }
            // The first open over a break point ends there.
            let mut used = used.lock().unwrap();
            if let Some(&b) = c
                .breaks
                .iter()
                .find(|&&b| r.start < b && b < r.end && !used.contains(&b))
            {
                used.insert(b);
                bytes.truncate((b - r.start) as usize);
            }
            Ok(Cursor::new(bytes))
        })
        .unwrap();
    assert_eq!(cache.known_len(), Some(case.len), "known at once");
    let workers: Vec<_> = case
        .threads
        .iter()
        .cloned()
        .map(|ops| {
            let (cache, data, case) = (cache.clone(), Arc::clone(&data), case.clone());
            std::thread::spawn(move || {
                let mut reader = cache.reader();
                for op in ops {
                    let what = format!("{op:?}");
                    match op {
                        Op::ReadAt(at, n) => {
                            let mut buf = vec![0; n];
                            match cache.read_at(at, &mut buf) {
                                // Past the known end is the end, whatever failed before it.
                                got if at >= case.len => assert_eq!(got.unwrap(), 0, "{what}"),
                                Ok(got) => {
                                    assert!(got > 0, "{what}: 0 bytes before the end");
                                    check(&case, &data, at, &buf[..got], &what);
                                }
                                Err(e) => check_error(&case, &e, &what),
                            }
                        }
                        Op::Slice(a, b) => match cache.slice(a..b) {
                            Ok(got) => check(&case, &data, a, got, &what),
                            Err(e) if b > case.len => {
                                assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{what}")
                            }
                            Err(e) => check_error(&case, &e, &what),
                        },
                        Op::SeekRead(at, n) | Op::SeekEndRead(at, n) => {
                            let to = match op {
                                Op::SeekRead(..) => SeekFrom::Start(at),
                                _ => SeekFrom::End(-(at as i64)),
                            };
                            let pos = reader.seek(to).unwrap();
                            let mut buf = vec![0; n];
                            match reader.read(&mut buf) {
                                got if pos >= case.len => assert_eq!(got.unwrap(), 0, "{what}"),
                                Ok(got) => check(&case, &data, pos, &buf[..got], &what),
                                Err(e) => check_error(&case, &e, &what),
                            }
                        }
                        // Known from the start, whatever the fill and fetches did since.
                        Op::KnownLen => assert_eq!(cache.known_len(), Some(case.len), "{what}"),
                        Op::Present => {
                            let present = cache.present();
                            for w in present.windows(2) {
                                assert!(w[0].end < w[1].start, "{what}: {present:?}");
                            }
                            for r in present {
                                let got = cache.try_slice(r.clone()).expect("present bytes");
                                check(&case, &data, r.start, got, &what);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    match cache.wait_complete() {
        Ok(len) => {
            assert_eq!(len, case.len);
            assert_eq!(cache.len(), Some(len), "len() once complete");
            check(
                &case,
                &data,
                0,
                cache.slice(..).unwrap(),
                "the whole stream",
            );
        }
        Err(e) => check_error(&case, &e, "the end"),
    }
    // Never disagrees with the final length, complete or failed.
    assert_eq!(cache.known_len(), Some(case.len), "known_len() at the end");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 64 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn ranged_reads_match_the_source(case in case()) {
        finishes_within(HANG_GUARD, "the case", move || run(case));
    }
}
