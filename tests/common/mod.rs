//! Helpers shared by the integration tests: deterministic data, a source driven by a channel,
//! and the hang guard. By topic, in submodules: the pattern by offset range ([`offsets`]), the
//! pattern as a `Read` source with awkward read shapes and injected faults ([`source`]), what
//! the failure suites share (a scripted resumable source, checks of a stream's outcome, a tmpfs
//! mount: [`faults`]), the model tests' oracle ([`model`]), async wakers and caches ([`wake`])
//! and a slow local HTTP server ([`http`]).
//!
//! Each test crate uses only some of these.
#![allow(dead_code)]

pub mod faults;
pub mod http;
pub mod http_server;
pub mod model;
pub mod offsets;
pub mod source;
pub mod wake;

use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use streamcache::{Builder, StreamCache};

/// How long any wait in a test may take before the test is declared hung: the one hang guard
/// of every suite. Generous: the machine is shared, and some guarded work is heavy (whole
/// streams of megabytes on several threads or tasks, tmpfs mounts, local servers); a correct
/// implementation is done long before it. Longer under miri, which runs the tests hundreds of
/// times slower against the real clock.
pub const HANG_GUARD: Duration = Duration::from_secs(if cfg!(miri) { 600 } else { 60 });

/// Word `w` of every generated stream (bytes `8 * w .. 8 * w + 8`, little-endian).
fn word_at(w: u64) -> u64 {
    // splitmix64's finaliser: every input bit affects every output bit.
    let mut z = w.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The byte at offset `i` of every generated stream: a mix of the offset's bits, so that a byte
/// read from the wrong offset (or a run copied to the wrong place) does not match. Made a word
/// at a time, so that [`fill_pattern`] is cheap enough for gigabytes.
pub fn byte_at(i: u64) -> u8 {
    (word_at(i / 8) >> (8 * (i % 8))) as u8
}

/// Fills `buf` with the pattern from `offset` on, a word at a time.
pub fn fill_pattern(offset: u64, buf: &mut [u8]) {
    // Bytes up to the next word boundary, whole words, then the remaining bytes.
    let len = buf.len();
    let head = (offset.wrapping_neg() % 8).min(len as u64) as usize;
    let (head_bytes, rest) = buf.split_at_mut(head);
    for (i, b) in head_bytes.iter_mut().enumerate() {
        *b = byte_at(offset + i as u64);
    }
    let start = offset + head as u64;
    let mut words = rest.chunks_exact_mut(8);
    for (i, word) in (&mut words).enumerate() {
        word.copy_from_slice(&word_at(start / 8 + i as u64).to_le_bytes());
    }
    let tail = words.into_remainder();
    let tail_start = offset + (len - tail.len()) as u64;
    for (i, b) in tail.iter_mut().enumerate() {
        *b = byte_at(tail_start + i as u64);
    }
}

/// `len` bytes of the deterministic pattern, `pattern(n)[i] == byte_at(i)`.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    fill_pattern(0, &mut out);
    out
}

/// `len` pseudo-random bytes from `seed` (xorshift64): incompressible, with no short period,
/// and unlike [`pattern`] not tied to offsets (for data that must not compress, or a body whose
/// digest changes when bytes move).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Cuts `data` into chunks whose lengths cycle through `sizes` (a size of 0 gives an empty
/// chunk), as `spawn_chunks` items.
pub fn chunks_of(data: &[u8], sizes: &[usize]) -> Vec<io::Result<Vec<u8>>> {
    cut(data, sizes).into_iter().map(Ok).collect()
}

/// Cuts `data` into chunks whose lengths cycle through `sizes` (a size of 0 gives an empty
/// chunk).
pub fn cut(data: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
    assert!(sizes.iter().any(|&s| s > 0), "sizes must make progress");
    let mut out = Vec::new();
    let mut pos = 0;
    for &size in sizes.iter().cycle() {
        if pos >= data.len() {
            break;
        }
        let end = (pos + size).min(data.len());
        out.push(data[pos..end].to_vec());
        pos = end;
    }
    out
}

/// One item of a chunk source.
pub type Chunk = io::Result<Vec<u8>>;

/// A chunk source that yields only what the test sends: `spawn_chunks(rx.into_iter())` blocks
/// the filler until the next send, and the stream ends when every sender is dropped.
pub fn channel() -> (mpsc::Sender<Chunk>, mpsc::Receiver<Chunk>) {
    mpsc::channel()
}

/// Runs `f` on its own thread and returns its result, failing the test if it does not finish
/// within [`HANG_GUARD`] (the thread is then leaked: the test has failed anyway).
#[track_caller]
pub fn finishes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    finishes_within(HANG_GUARD, "the test", f)
}

/// [`finishes`], naming `what` if it hangs or panics.
#[track_caller]
pub fn no_hang<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    finishes_within(HANG_GUARD, what, f)
}

/// Runs `f` on its own thread and returns its result, failing the test, naming `what`, if it
/// does not finish within `guard` or panics (a hung thread is leaked: the test has failed
/// anyway).
#[track_caller]
pub fn finishes_within<T: Send + 'static>(
    guard: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(guard) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not finish within {guard:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the thread panicked"),
    }
}

/// Polls `cond` every millisecond until it holds or `limit` passes; whether it held.
pub fn eventually_within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until `cond` holds, failing the test (`never: {what}`) if it does not within the
/// [`HANG_GUARD`]: for effects that another thread completes a moment after the one the
/// test synchronised on (a filler drops the wakers it woke just after publishing).
#[track_caller]
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    assert!(eventually_within(HANG_GUARD, cond), "never: {what}");
}

/// `wait_for(offset)` bounded by the [`HANG_GUARD`]: a timeout fails the test.
#[track_caller]
pub fn wait_for(cache: &StreamCache, offset: u64) -> io::Result<u64> {
    match cache.wait_for_timeout(offset, HANG_GUARD) {
        Ok(Some(available)) => Ok(available),
        Ok(None) => panic!("wait_for_timeout({offset}) timed out: the cache hangs"),
        Err(e) => Err(e),
    }
}

/// Waits for the end of the stream (complete or failed), failing the test on a hang.
#[track_caller]
pub fn outcome(cache: &StreamCache) -> io::Result<u64> {
    wait_for(cache, u64::MAX)
}

/// A builder for a cache that keeps up to `memory_limit` bytes in memory and spills the rest
/// into `dir`.
pub fn spilling(memory_limit: usize, dir: impl Into<PathBuf>) -> Builder {
    StreamCache::builder()
        .memory_limit(memory_limit)
        .temp_dir(dir)
}

/// A fresh directory for spill files, removed when the guard drops: [`offsets::temp_dir`] for
/// suites that need only one name.
pub fn spill_dir() -> tempfile::TempDir {
    offsets::temp_dir("spill")
}

/// How many of this process's threads have a name starting with `prefix` (Linux: from
/// `/proc/self/task/*/comm`, which keeps a name's first 15 bytes). Give the cache under test a
/// `thread_name` of its own: other tests run at the same time.
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter(|task| {
            let comm = task.as_ref().expect("a task").path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|name| name.starts_with(prefix))
        })
        .count()
}
