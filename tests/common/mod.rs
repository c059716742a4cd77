//! Helpers shared by the integration tests: deterministic data, sources with awkward read
//! shapes, a source driven by a channel, and hang guards. By topic, in submodules: the
//! pattern by offset range ([`offsets`]), the model tests' oracle ([`model`]), async wakers and
//! caches ([`wake`]) and a slow local HTTP server ([`http`]).
//!
//! Each test crate uses only some of these.
#![allow(dead_code)]

pub mod http;
pub mod model;
pub mod offsets;
pub mod wake;

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};
use streamcache::{Builder, StreamCache};

/// How long any wait in a test may take before the test is declared hung. Generous: the
/// machine is shared; a correct implementation is done in milliseconds. Longer under miri, which
/// runs the tests hundreds of times slower against the real clock.
pub const HANG_GUARD: Duration = Duration::from_secs(if cfg!(miri) { 300 } else { 30 });

/// The hang guard of the suites whose guarded work is heavier (whole streams of megabytes on
/// several threads or tasks, tmpfs mounts, local servers): twice [`HANG_GUARD`]. Only a guard
/// against hangs: every wait under it should end long before it.
pub const LONG_HANG_GUARD: Duration = Duration::from_secs(if cfg!(miri) { 600 } else { 60 });

/// The byte at offset `i` of every generated stream: a mix of the offset's bits, so that a byte
/// read from the wrong offset (or a run copied to the wrong place) does not match.
pub fn byte_at(i: u64) -> u8 {
    // splitmix64's finaliser: every input bit affects every output bit.
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u8
}

/// `len` bytes of the deterministic pattern, `pattern(n)[i] == byte_at(i)`.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64).map(byte_at).collect()
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

/// A `Read` source over `data` whose reads return at most `sizes[k % sizes.len()]` bytes on the
/// k-th call (a size of 0 is skipped: it would mean end of stream), optionally failing with
/// `fail_with` once all of `data` is delivered instead of returning end of stream.
///
/// It records, on every call, the buffer length asked for and the thread it ran on.
pub struct OddReads {
    data: Vec<u8>,
    pos: usize,
    sizes: Vec<usize>,
    call: usize,
    fail_with: Option<(io::ErrorKind, String)>,
    log: Arc<Mutex<ReadLog>>,
}

/// What an [`OddReads`] source saw.
#[derive(Debug, Default)]
pub struct ReadLog {
    /// The length of every buffer the source was handed.
    pub asked: Vec<usize>,
    /// The thread of every call.
    pub threads: Vec<ThreadId>,
    /// The thread name of every call.
    pub names: Vec<Option<String>>,
}

impl OddReads {
    /// A source over `data`, reads sized by `sizes` (cycled).
    pub fn new(data: Vec<u8>, sizes: &[usize]) -> Self {
        let sizes: Vec<usize> = sizes.iter().copied().filter(|&s| s > 0).collect();
        assert!(!sizes.is_empty(), "sizes must make progress");
        Self {
            data,
            pos: 0,
            sizes,
            call: 0,
            fail_with: None,
            log: Arc::default(),
        }
    }

    /// Fails with `kind` and `message` after the last byte instead of ending.
    pub fn failing(mut self, kind: io::ErrorKind, message: &str) -> Self {
        self.fail_with = Some((kind, message.to_owned()));
        self
    }

    /// A handle on what the source records.
    pub fn log(&self) -> Arc<Mutex<ReadLog>> {
        Arc::clone(&self.log)
    }

    /// How many bytes the source has delivered.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }
}

impl Read for OddReads {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        {
            let mut log = self.log.lock().unwrap();
            log.asked.push(buf.len());
            log.threads.push(thread::current().id());
            log.names.push(thread::current().name().map(str::to_owned));
        }
        let rest = &self.data[self.pos..];
        if rest.is_empty() {
            return match &self.fail_with {
                Some((kind, message)) => Err(io::Error::new(*kind, message.clone())),
                None => Ok(0),
            };
        }
        let size = self.sizes[self.call % self.sizes.len()];
        self.call += 1;
        let n = size.min(rest.len()).min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
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

/// [`finishes`] under the [`LONG_HANG_GUARD`], naming `what` if it hangs or panics.
#[track_caller]
pub fn no_hang<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    finishes_within(LONG_HANG_GUARD, what, f)
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
/// [`LONG_HANG_GUARD`]: for effects that another thread completes a moment after the one the
/// test synchronised on (a filler drops the wakers it woke just after publishing).
#[track_caller]
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    assert!(eventually_within(LONG_HANG_GUARD, cond), "never: {what}");
}

/// `wait_for(offset)` bounded by the [`LONG_HANG_GUARD`]: a timeout fails the test.
#[track_caller]
pub fn wait_for(cache: &StreamCache, offset: u64) -> io::Result<u64> {
    match cache.wait_for_timeout(offset, LONG_HANG_GUARD) {
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

/// A fresh directory for spill files, removed when the guard drops.
pub fn spill_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temp dir")
}
