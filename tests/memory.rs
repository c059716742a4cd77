//! Bounded memory (invariant 7): a stream far larger than `memory_limit` goes through with flat
//! anonymous memory; the spill file's pages are the page cache's, not ours.
//!
//! Its own test binary, with a single test: it samples this process's `RssAnon`, which other
//! tests running in the same process would disturb.

mod common;

use common::byte_at;
use common::offsets::MIB;
use common::source::PatternSource;
use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use streamcache::StreamCache;

const GIB: u64 = 1 << 30;
/// The stream's length: almost 400 times the arena.
const TOTAL: u64 = 3 * GIB;
const MEMORY_LIMIT: u64 = 8 * MIB;
/// Room for everything else: thread stacks, read buffers, allocator slack.
const SLACK: u64 = 64 * MIB;
/// Every `SAMPLE`-th byte is checked (plus the whole first and last `SAMPLE` bytes).
const SAMPLE: u64 = 4096;

/// Checks `data` (the bytes at `offset`) at every `SAMPLE`-th offset, and every byte of the
/// first and last `SAMPLE` bytes of the stream.
fn check_sampled(offset: u64, data: &[u8], what: &str) {
    let end = offset + data.len() as u64;
    let check = |o: u64| {
        let got = data[(o - offset) as usize];
        assert_eq!(got, byte_at(o), "{what}: wrong byte at offset {o}");
    };
    let first_sample = offset.div_ceil(SAMPLE) * SAMPLE;
    for o in (first_sample..end).step_by(SAMPLE as usize) {
        check(o);
    }
    for o in offset..end.min(SAMPLE) {
        check(o);
    }
    for o in offset.max(TOTAL - SAMPLE)..end {
        check(o);
    }
}

/// `RssAnon` of this process, in bytes.
fn rss_anon() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .expect("RssAnon in /proc/self/status");
    let kib: u64 = line
        .trim_start_matches("RssAnon:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("RssAnon in kB");
    kib * 1024
}

/// A 3 GiB stream through an 8 MiB arena into a spill file on disk (not tmpfs), read by two
/// threads (zero-copy `fill_buf`, and copying `read`) that check samples of every page, while a
/// third samples `RssAnon` every few milliseconds: its peak stays within the arena plus slack.
#[test]
// 3 GiB through the spill file, sampled in /proc/self/status: miri can do neither.
#[cfg_attr(miri, ignore = "3 GiB through a file mapping, /proc")]
#[cfg_attr(target_pointer_width = "32", ignore = "needs 3 GiB of address space")]
fn anonymous_memory_stays_bounded_for_a_multi_gib_stream() {
    let dir = tempfile::Builder::new()
        .prefix("streamcache-memory-")
        .tempdir_in(std::env::temp_dir())
        .expect("create a temp dir");

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        thread::spawn(move || {
            let mut samples = 0u64;
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(rss_anon(), Ordering::SeqCst);
                samples += 1;
                thread::sleep(Duration::from_millis(3));
            }
            samples
        })
    };
    let baseline = rss_anon();
    let started = Instant::now();

    let cache = StreamCache::builder()
        .memory_limit(MEMORY_LIMIT as usize)
        .temp_dir(dir.path())
        .spawn(PatternSource::new(TOTAL))
        .unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    // Zero-copy: the cache's own memory, piece by piece.
    {
        let mut reader = cache.reader();
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            loop {
                let at = reader.position();
                let got = reader.fill_buf().unwrap();
                if got.is_empty() {
                    break;
                }
                check_sampled(at, got, "fill_buf reader");
                let n = got.len();
                reader.consume(n);
            }
            let _ = done_tx.send(("fill_buf", reader.position()));
        });
    }
    // Copying, through a 256 KiB buffer.
    {
        let mut reader = cache.reader();
        thread::spawn(move || {
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let at = reader.position();
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                check_sampled(at, &buf[..n], "read reader");
            }
            let _ = done_tx.send(("read", reader.position()));
        });
    }
    for _ in 0..2 {
        let (name, read) = done_rx
            .recv_timeout(Duration::from_secs(600))
            .expect("a reader hung or panicked");
        assert_eq!(read, TOTAL, "the {name} reader read the whole stream");
    }
    assert_eq!(cache.wait_complete().unwrap(), TOTAL);
    let elapsed = started.elapsed();
    drop(cache);

    done.store(true, Ordering::SeqCst);
    let samples = sampler.join().unwrap();
    let peak = peak.load(Ordering::SeqCst).max(rss_anon());
    let bound = baseline + MEMORY_LIMIT + SLACK;
    println!(
        "{} GiB in {:.1} s; RssAnon baseline {} KiB, peak {} KiB (+{:.1} MiB), {samples} samples",
        TOTAL / GIB,
        elapsed.as_secs_f64(),
        baseline / 1024,
        peak / 1024,
        (peak.saturating_sub(baseline)) as f64 / MIB as f64,
    );
    assert!(samples > 10, "the sampler ran ({samples} samples)");
    assert!(
        peak <= bound,
        "peak RssAnon {} KiB exceeds baseline {} KiB + memory_limit {} KiB + slack {} KiB = {} KiB",
        peak / 1024,
        baseline / 1024,
        MEMORY_LIMIT / 1024,
        SLACK / 1024,
        bound / 1024
    );
}
