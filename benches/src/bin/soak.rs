//! The soak (issue 7): random caches, for as long as you like, every result checked against a
//! model of what the cache must do.
//!
//! ```text
//! cargo run -p streamcache-benches --release --bin soak                # 600 s (or: scripts/soak)
//! cargo run -p streamcache-benches --release --bin soak -- 3600        # an hour
//! cargo run -p streamcache-benches --release --bin soak -- --case SEED # one case again
//! SOAK_SEED=0x1234 SOAK_THREADS=8 cargo run -p streamcache-benches --release --bin soak -- 60
//! ```
//!
//! Each of 8 worker threads makes caches one after the other, each from a random case: the
//! stream's length (0 B to 48 MiB), memory limit (0, below, at or above the length), chunk size,
//! expected and maximum length, a missing `temp_dir`, the source (a `Read`, a chunk iterator, or
//! `spawn_resumable` with its retries and backoff) and its faults (errors of every kind at any
//! offset, early ends, `Interrupted` storms, empty chunks, panics, reads that claim more than
//! their buffer, `open` failing, re-opens that fail again), then 1 to 4 reader threads of
//! different kinds (streaming `Read`, `BufRead`, random `read_at` / `read_exact_at` / `slice` /
//! `bytes` / `wait_for` / seeks, a status watcher), sometimes dropping everything early.
//!
//! The model says, before the cache starts, how the stream ends (its length, or the offset and
//! kind of its error) and how often a resumable source is opened; every byte any reader sees and
//! every result is checked against it. Once a minute the workers pause between caches and the
//! process is measured at rest: a line with caches done, bytes verified, faults injected, open
//! fds, threads and RssAnon. It fails (exit 1) on a wrong byte or result, a cache or filler that
//! hangs (a watchdog: 120 s per case), a leaked fd or thread, or RssAnon growing at rest.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, ErrorKind, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};
use streamcache::{Status, StreamCache};

/// A case running longer than this is a hang.
const CASE_LIMIT: Duration = Duration::from_secs(120);
/// After the last handle drops, the filler must let go of the source within this.
const STOP_LIMIT: Duration = Duration::from_secs(60);
/// How far RssAnon at rest may grow over its level after the first minute.
const RSS_GROWTH_LIMIT: u64 = 64 << 20;
/// RssAnon while running: 8 workers hold at most ~16 MiB each (memory limit 8 MiB, buffers).
const RSS_HARD_LIMIT: u64 = 2 << 30;
const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Randomness and the byte pattern
// ---------------------------------------------------------------------------------------------

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.below(hi - lo + 1)
        }
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Log-uniform in `lo..=hi` (`lo >= 1`): small values as likely as large ones.
    fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let lo = lo.max(1);
        if hi <= lo {
            return lo;
        }
        let (l, h) = ((lo as f64).ln(), ((hi + 1) as f64).ln());
        ((l + (h - l) * self.unit()).exp() as u64).clamp(lo, hi)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The stream of case `seed`: 8 bytes per splitmix word, so that a byte from the wrong offset
/// (or the wrong case) does not match.
fn word(seed: u64, index: u64) -> [u8; 8] {
    mix(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93)).to_le_bytes()
}

fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut i = 0;
    while i < buf.len() {
        let at = offset + i as u64;
        let start = (at % 8) as usize;
        let take = (8 - start).min(buf.len() - i);
        buf[i..i + take].copy_from_slice(&word(seed, at / 8)[start..start + take]);
        i += take;
    }
}

fn first_mismatch(seed: u64, offset: u64, data: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < data.len() {
        let at = offset + i as u64;
        let start = (at % 8) as usize;
        let take = (8 - start).min(data.len() - i);
        let want = &word(seed, at / 8)[start..start + take];
        if let Some(j) = (0..take).find(|&j| data[i + j] != want[j]) {
            return Some(i + j);
        }
        i += take;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Chunks,
    Resumable,
}

/// One injected fault at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// A read fails with this kind.
    Error(ErrorKind),
    /// A read returns `Ok(0)` (a resumable source's early end).
    End,
    /// A read panics.
    Panic,
    /// A read fills its buffer and claims this many bytes more.
    Overclaim(u64),
    /// (resumable) `open` fails with this kind.
    Refuse(ErrorKind),
    /// (resumable) `open` panics.
    OpenPanic,
}

impl Fail {
    fn in_open(self) -> bool {
        matches!(self, Fail::Refuse(_) | Fail::OpenPanic)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `Read` from a start to the end, random buffer sizes.
    Stream,
    /// `BufRead::fill_buf` / `consume` to the end.
    Buffered,
    /// Random operations at random offsets.
    Random,
    /// Polls `status` and `available` until the end.
    Watcher,
}

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    kind: Kind,
    len: u64,
    memory_limit: usize,
    chunk_size: usize,
    /// The largest single read or chunk of the source.
    piece: usize,
    expected_len: Option<u64>,
    max_len: Option<u64>,
    missing_dir: bool,
    /// Percent of reads preceded by an `Interrupted` (items, for chunks).
    interrupt_pct: u64,
    /// Percent of chunks that are empty.
    empty_pct: u64,
    /// By offset, the faults there in the order they happen. A plain or chunk source has one
    /// (terminal) fault at most. For a resumable source the first is done by the reader that
    /// reaches the offset (or by the first `open` at 0), the rest by the re-opens there, each
    /// either in `open` or at the first read of the reader it returns.
    faults: BTreeMap<u64, Vec<Fail>>,
    retries: u32,
    backoff_us: u64,
    readers: Vec<Style>,
    /// Drop every handle once the readers got this far (not waiting for the end).
    cancel_at: Option<u64>,
}

// The kinds injected (in this order, so that a seed gives the same case): transient ones (the
// library's `TRANSIENT_ERROR_KINDS`, which `is_transient` asks), less `Interrupted` in a read
// (the filler retries that at once), and permanent ones.
const TRANSIENT_READ: [ErrorKind; 5] = [
    ErrorKind::ConnectionReset,
    ErrorKind::ConnectionAborted,
    ErrorKind::BrokenPipe,
    ErrorKind::TimedOut,
    ErrorKind::UnexpectedEof,
];
const TRANSIENT_OPEN: [ErrorKind; 6] = [
    ErrorKind::ConnectionReset,
    ErrorKind::ConnectionAborted,
    ErrorKind::BrokenPipe,
    ErrorKind::TimedOut,
    ErrorKind::UnexpectedEof,
    ErrorKind::Interrupted,
];
const PERMANENT: [ErrorKind; 7] = [
    ErrorKind::NotFound,
    ErrorKind::PermissionDenied,
    ErrorKind::InvalidData,
    ErrorKind::Other,
    ErrorKind::WouldBlock,
    ErrorKind::Unsupported,
    ErrorKind::OutOfMemory,
];

/// Whether the resumable source retries after `kind`: the library's own list.
fn is_transient(kind: ErrorKind) -> bool {
    streamcache::TRANSIENT_ERROR_KINDS.contains(&kind)
}

impl Case {
    fn generate(seed: u64) -> Case {
        let mut r = Rng(seed);
        let len = match r.below(100) {
            0..=14 => r.range(0, 100),
            15..=49 => r.range(0, 256 << 10),
            50..=84 => r.range(256 << 10, 8 << 20),
            _ => r.range(8 << 20, 48 << 20),
        };
        // At most ~20,000 source reads and filler chunks per case.
        let floor = (len / 20_000).max(1);
        let chunk_size = r.log_range(floor, MIB) as usize;
        let piece = r.log_range(floor, MIB) as usize;
        let memory_limit = match r.below(10) {
            0 | 1 => 0,
            2..=4 => r.log_range(1, 64 << 10),
            5..=7 => r.range(0, len),
            _ => len + r.range(0, 4096),
        }
        .min(8 << 20) as usize;
        let kind = match r.below(20) {
            0..=6 => Kind::Plain,
            7..=11 => Kind::Chunks,
            _ => Kind::Resumable,
        };
        let interrupt_pct = if r.chance(0.3) { r.range(1, 30) } else { 0 };
        let empty_pct = if kind == Kind::Chunks && r.chance(0.5) {
            r.range(1, 30)
        } else {
            0
        };
        let expected_len = match r.below(20) {
            0..=5 => None,
            6..=14 => Some(len),
            15 | 16 => Some(len.saturating_sub(r.range(1, 10_000))),
            17 | 18 => Some(len + r.range(1, 10_000)),
            _ => Some(u64::MAX),
        };
        let max_len = r.chance(0.15).then(|| match r.below(4) {
            0 => len,
            1 => len.saturating_sub(r.range(1, 5000)),
            2 => len + r.range(1, 5000),
            _ => r.range(0, len),
        });
        let missing_dir = r.chance(0.05);
        let retries = r.range(0, 4) as u32;
        let backoff_us = r.pick(&[0, 0, 100, 500, 1000, 2000]);
        let mut faults = BTreeMap::new();
        match kind {
            Kind::Plain | Kind::Chunks => {
                if r.chance(0.35) {
                    let fail = match r.below(20) {
                        0 => Fail::Panic,
                        1 | 2 if kind == Kind::Plain => {
                            Fail::Overclaim(r.pick(&[1, 7, 4096, u64::MAX]))
                        }
                        _ => Fail::Error(r.pick(&[
                            ErrorKind::ConnectionReset,
                            ErrorKind::BrokenPipe,
                            ErrorKind::TimedOut,
                            ErrorKind::UnexpectedEof,
                            ErrorKind::NotFound,
                            ErrorKind::PermissionDenied,
                            ErrorKind::InvalidData,
                            ErrorKind::Other,
                            ErrorKind::WouldBlock,
                        ])),
                    };
                    faults.insert(r.range(0, len), vec![fail]);
                }
            }
            Kind::Resumable => {
                for _ in 0..r.range(0, 5) {
                    let at = r.range(0, len);
                    if faults.contains_key(&at) {
                        continue;
                    }
                    let early = expected_len.is_some_and(|e| at < e);
                    // Mostly failures the retries absorb; sometimes one too many.
                    let count = if retries > 0 && r.chance(0.8) {
                        r.range(1, u64::from(retries))
                    } else {
                        u64::from(retries) + 1
                    };
                    let mut seq = Vec::new();
                    while (seq.len() as u64) < count {
                        let in_open_ok = !seq.is_empty() || at == 0;
                        let fail = match r.below(10) {
                            6 if early => Fail::End,
                            7 | 8 if in_open_ok => Fail::Refuse(r.pick(&TRANSIENT_OPEN)),
                            _ => Fail::Error(r.pick(&TRANSIENT_READ)),
                        };
                        seq.push(fail);
                    }
                    if r.chance(0.15) {
                        // A fault no retry helps with, after the transient ones.
                        seq.push(match r.below(6) {
                            0 => Fail::Panic,
                            1 => Fail::OpenPanic,
                            2 => Fail::Overclaim(r.pick(&[1, 7, 4096])),
                            3 => Fail::Refuse(r.pick(&PERMANENT)),
                            _ => Fail::Error(r.pick(&PERMANENT)),
                        });
                    }
                    faults.insert(at, seq);
                }
            }
        }
        let readers = (0..r.range(1, 4))
            .map(|_| {
                r.pick(&[
                    Style::Stream,
                    Style::Buffered,
                    Style::Random,
                    Style::Random,
                    Style::Watcher,
                ])
            })
            .collect();
        let cancel_at = r.chance(0.08).then(|| r.range(0, len));
        Case {
            seed,
            kind,
            len,
            memory_limit,
            chunk_size,
            piece,
            expected_len,
            max_len,
            missing_dir,
            interrupt_pct,
            empty_pct,
            faults,
            retries,
            backoff_us,
            readers,
            cancel_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The model: how the stream must end, decided before it starts
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Complete(u64),
    Failed {
        at: u64,
        kind: ErrorKind,
        /// A part of the error's message ("" when the message is not ours).
        message: String,
    },
}

#[derive(Debug, Clone)]
struct Model {
    outcome: Outcome,
    /// How many times a resumable source is opened.
    opens: u64,
}

impl Model {
    /// Bytes `[0, good_end)` are readable; what is at or past it is the end or the error.
    fn good_end(&self) -> u64 {
        match self.outcome {
            Outcome::Complete(len) => len,
            Outcome::Failed { at, .. } => at,
        }
    }
}

/// What reading the source at one offset comes to.
enum Stop {
    End,
    Fail(ErrorKind, String),
    Overclaim,
}

fn injected(kind: ErrorKind) -> String {
    format!("soak: injected {kind:?}")
}

const INJECTED_PANIC: &str = "soak: injected panic";
const REFUSED: &str = "soak: refused";

impl Case {
    fn model(&self, temp_dir: &str) -> Model {
        // The filler's arena ends at the memory limit (or at max_len, below it).
        let arena = (self.memory_limit as u64).min(self.max_len.unwrap_or(u64::MAX));
        let mut points: Vec<u64> = self.faults.keys().copied().collect();
        points.push(self.len);
        points.extend(self.max_len);
        if self.missing_dir {
            points.push(arena);
        }
        points.sort_unstable();
        points.dedup();
        let mut opens = 1;
        for p in points {
            let (stop, reopens) = self.at(p);
            opens += reopens;
            let failed = |kind, message: &str| Outcome::Failed {
                at: p,
                kind,
                message: message.to_owned(),
            };
            let outcome = if self.max_len == Some(p) {
                // The filler probes for one more byte.
                match stop {
                    Some(Stop::End) => Outcome::Complete(p),
                    Some(Stop::Fail(kind, message)) => failed(kind, &message),
                    Some(Stop::Overclaim) | None => failed(ErrorKind::StorageFull, ""),
                }
            } else {
                match stop {
                    Some(Stop::End) => Outcome::Complete(p),
                    Some(Stop::Fail(kind, message)) => failed(kind, &message),
                    Some(Stop::Overclaim) => failed(ErrorKind::InvalidData, ""),
                    // Bytes past the arena, and no spill file: the error names the directory.
                    None if self.missing_dir && p == arena => failed(ErrorKind::NotFound, temp_dir),
                    None => continue,
                }
            };
            return Model { outcome, opens };
        }
        unreachable!("the stream ends at its length at the latest")
    }

    /// What a read of the source at `p` comes to, and how many re-opens it takes.
    fn at(&self, p: u64) -> (Option<Stop>, u64) {
        let seq = self.faults.get(&p).map_or(&[][..], Vec::as_slice);
        if self.kind != Kind::Resumable {
            return match seq.first() {
                Some(Fail::Error(kind)) => (Some(Stop::Fail(*kind, injected(*kind))), 0),
                Some(Fail::Panic) => (Some(Stop::Fail(ErrorKind::Other, INJECTED_PANIC.into())), 0),
                Some(Fail::Overclaim(_)) => (Some(Stop::Overclaim), 0),
                Some(Fail::End) => (Some(Stop::End), 0),
                Some(f) => unreachable!("{f:?} in a plain source"),
                None if p == self.len => (Some(Stop::End), 0),
                None => (None, 0),
            };
        }
        // `spawn_resumable`: retry transient failures, at most `retries` times in a row.
        let early = self.expected_len.is_some_and(|e| p < e);
        let mut failures = 0u64;
        // At its true end a resumable source ends again at every re-open.
        let natural_end =
            std::iter::repeat_n(Fail::End, if p == self.len { usize::MAX } else { 0 });
        for fail in seq.iter().copied().chain(natural_end) {
            let (kind, message) = match fail {
                Fail::Panic | Fail::OpenPanic => {
                    let stop = Stop::Fail(ErrorKind::Other, INJECTED_PANIC.into());
                    return (Some(stop), failures);
                }
                Fail::Overclaim(_) => return (Some(Stop::Overclaim), failures),
                Fail::End if !early => return (Some(Stop::End), failures),
                Fail::End => (ErrorKind::UnexpectedEof, String::new()),
                Fail::Error(kind) => (kind, injected(kind)),
                Fail::Refuse(kind) => (kind, REFUSED.to_owned()),
            };
            if !is_transient(kind) || failures >= u64::from(self.retries) {
                // An `Interrupted` that runs out the retries is not handed on as it is (the
                // filler would retry it at once): the cache fails with `Other`, naming it.
                let kind = match kind {
                    ErrorKind::Interrupted => ErrorKind::Other,
                    kind => kind,
                };
                return (Some(Stop::Fail(kind, message)), failures);
            }
            failures += 1;
        }
        (None, failures)
    }
}

// ---------------------------------------------------------------------------------------------
// The sources
// ---------------------------------------------------------------------------------------------

/// Counters of the whole run.
#[derive(Default)]
struct Stats {
    caches: AtomicU64,
    complete: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    verified: AtomicU64,
    faults: AtomicU64,
}

/// The state the sources of one case share (a resumable source's readers and its `open`).
struct SourceState {
    seed: u64,
    len: u64,
    piece: usize,
    interrupt_pct: u64,
    empty_pct: u64,
    /// Faults not done yet, by offset.
    pending: Mutex<BTreeMap<u64, Vec<Fail>>>,
    /// Bytes delivered: where a resumable source must be re-opened.
    delivered: AtomicU64,
    opens: AtomicU64,
    problem: Mutex<Option<String>>,
    stats: Arc<Stats>,
}

impl SourceState {
    /// The next fault at `p`, if it is of the right side (in `open` or in a read).
    fn take(&self, p: u64, in_open: bool) -> Option<Fail> {
        let mut pending = self.pending.lock().unwrap();
        let seq = pending.get_mut(&p)?;
        if seq.first()?.in_open() != in_open {
            return None;
        }
        let fail = seq.remove(0);
        if seq.is_empty() {
            pending.remove(&p);
        }
        self.stats.faults.fetch_add(1, Ordering::Relaxed);
        Some(fail)
    }

    /// Where the next read must stop: the next offset with a fault pending, or the end.
    fn stop_after(&self, pos: u64) -> u64 {
        let pending = self.pending.lock().unwrap();
        pending
            .range(pos + 1..)
            .next()
            .map_or(self.len, |(&at, _)| at.min(self.len))
    }

    fn interrupt(&self, rng: &mut Rng) -> bool {
        let hit = self.interrupt_pct > 0 && rng.below(100) < self.interrupt_pct;
        if hit {
            self.stats.faults.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    fn problem(&self, message: String) {
        self.problem.lock().unwrap().get_or_insert(message);
    }

    /// One read at `pos`: a fault, or pattern bytes up to the next fault.
    fn read(&self, pos: &mut u64, rng: &mut Rng, buf: &mut [u8]) -> io::Result<usize> {
        if self.interrupt(rng) {
            return Err(io::Error::new(ErrorKind::Interrupted, "soak: interrupted"));
        }
        if let Some(fail) = self.take(*pos, false) {
            return match fail {
                Fail::Error(kind) => {
                    Err(io::Error::new(kind, format!("{} at {pos}", injected(kind))))
                }
                Fail::End => Ok(0),
                Fail::Panic => panic!("{INJECTED_PANIC} in a read at {pos}"),
                Fail::Overclaim(extra) => {
                    fill(self.seed, *pos, buf);
                    Ok(buf
                        .len()
                        .saturating_add(usize::try_from(extra).unwrap_or(usize::MAX)))
                }
                Fail::Refuse(_) | Fail::OpenPanic => unreachable!("taken in reads only"),
            };
        }
        let end = self.stop_after(*pos);
        let n = (end - *pos)
            .min(buf.len() as u64)
            .min(rng.range(1, self.piece as u64)) as usize;
        fill(self.seed, *pos, &mut buf[..n]);
        *pos += n as u64;
        self.delivered.store(*pos, Ordering::Relaxed);
        Ok(n)
    }
}

/// Sends when dropped: the filler let go of the source.
struct DropSignal(mpsc::Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

struct PlainSource {
    state: Arc<SourceState>,
    pos: u64,
    rng: Rng,
    _signal: Option<DropSignal>,
}

impl Read for PlainSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.state.read(&mut self.pos, &mut self.rng, buf)
    }
}

struct ChunkSource {
    state: Arc<SourceState>,
    pos: u64,
    rng: Rng,
    _signal: DropSignal,
}

impl Iterator for ChunkSource {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        let state = Arc::clone(&self.state);
        if state.interrupt(&mut self.rng) {
            return Some(Err(io::Error::new(
                ErrorKind::Interrupted,
                "soak: interrupted",
            )));
        }
        if state.empty_pct > 0 && self.rng.below(100) < state.empty_pct {
            state.stats.faults.fetch_add(1, Ordering::Relaxed);
            return Some(Ok(Vec::new()));
        }
        if let Some(fail) = state.take(self.pos, false) {
            return match fail {
                Fail::Error(kind) => Some(Err(io::Error::new(kind, injected(kind)))),
                Fail::Panic => panic!("{INJECTED_PANIC} in a chunk at {}", self.pos),
                Fail::End => None,
                f => unreachable!("{f:?} in a chunk source"),
            };
        }
        if self.pos == state.len {
            return None;
        }
        let end = state.stop_after(self.pos);
        let n = (end - self.pos).min(self.rng.range(1, state.piece as u64)) as usize;
        let mut chunk = vec![0; n];
        fill(state.seed, self.pos, &mut chunk);
        self.pos += n as u64;
        Some(Ok(chunk))
    }
}

/// `open` of a resumable source: checks that it is opened where the stream broke.
struct Opener {
    state: Arc<SourceState>,
    rng: Rng,
    _signal: DropSignal,
}

impl Opener {
    fn open(&mut self, offset: u64) -> io::Result<PlainSource> {
        let state = &self.state;
        state.opens.fetch_add(1, Ordering::Relaxed);
        let delivered = state.delivered.load(Ordering::Relaxed);
        if offset != delivered {
            state.problem(format!(
                "open({offset}) after {delivered} bytes were delivered"
            ));
            return Err(io::Error::other("soak: opened at the wrong offset"));
        }
        match state.take(offset, true) {
            Some(Fail::Refuse(kind)) => Err(io::Error::new(kind, format!("{REFUSED} at {offset}"))),
            Some(Fail::OpenPanic) => panic!("{INJECTED_PANIC} in open({offset})"),
            Some(f) => unreachable!("{f:?} taken in open"),
            None => Ok(PlainSource {
                state: Arc::clone(state),
                pos: offset,
                rng: Rng(self.rng.next()),
                _signal: None,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

/// What one reader thread checks against.
#[derive(Clone)]
struct Checker {
    seed: u64,
    model: Model,
    stats: Arc<Stats>,
}

impl Checker {
    fn bytes(&self, offset: u64, data: &[u8], what: &str) -> Check {
        if let Some(i) = first_mismatch(self.seed, offset, data) {
            return Err(format!(
                "{what}: wrong byte at offset {} (of {} from {offset})",
                offset + i as u64,
                data.len()
            ));
        }
        self.stats
            .verified
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// `err` is the stream's error (a failed stream), or `if_complete` on a complete one.
    fn error(&self, err: &io::Error, if_complete: Option<ErrorKind>, what: &str) -> Check {
        match &self.model.outcome {
            Outcome::Failed { kind, message, .. } => {
                ensure!(
                    err.kind() == *kind && err.to_string().contains(message.as_str()),
                    "{what}: got {err:?}, expected the stream's {kind:?} containing {message:?}"
                );
            }
            Outcome::Complete(len) => {
                ensure!(
                    Some(err.kind()) == if_complete,
                    "{what}: got {err:?} on a stream that completes with {len} bytes"
                );
            }
        }
        Ok(())
    }

    fn status(&self, status: Status, last_available: &mut u64, what: &str) -> Check {
        let good_end = self.model.good_end();
        match status {
            Status::Filling { available } => {
                ensure!(
                    available <= good_end,
                    "{what}: {status:?}, but the stream ends at {good_end}"
                );
                ensure!(
                    available >= *last_available,
                    "{what}: {status:?} went back from {last_available}"
                );
                *last_available = available;
            }
            Status::Complete { len } => {
                ensure!(
                    self.model.outcome == Outcome::Complete(len),
                    "{what}: {status:?}, expected {:?}",
                    self.model.outcome
                );
            }
            Status::Failed { available, error } => {
                let ok = matches!(&self.model.outcome, Outcome::Failed { at, kind, .. } if *at == available && *kind == error);
                ensure!(ok, "{what}: {status:?}, expected {:?}", self.model.outcome);
            }
        }
        Ok(())
    }

    /// `read_at(offset)` with a buffer of `size`.
    fn read_at(&self, cache: &StreamCache, offset: u64, size: usize, buf: &mut Vec<u8>) -> Check {
        let what = format!("read_at({offset}, {size})");
        buf.resize(size, 0);
        let good_end = self.model.good_end();
        match cache.read_at(offset, &mut buf[..size]) {
            Ok(n) => {
                if size == 0 {
                    ensure!(n == 0, "{what}: {n} bytes into an empty buffer");
                } else if offset < good_end {
                    ensure!(
                        n >= 1 && n as u64 <= (good_end - offset).min(size as u64),
                        "{what}: {n} bytes, the stream has {good_end}"
                    );
                } else {
                    ensure!(
                        n == 0 && matches!(self.model.outcome, Outcome::Complete(_)),
                        "{what}: Ok({n}) at or past {good_end} ({:?})",
                        self.model.outcome
                    );
                }
                self.bytes(offset, &buf[..n], &what)
            }
            Err(e) => {
                ensure!(
                    offset >= good_end && size > 0,
                    "{what}: {e:?} before {good_end}"
                );
                self.error(&e, None, &what)
            }
        }
    }

    fn read_exact_at(
        &self,
        cache: &StreamCache,
        offset: u64,
        size: usize,
        buf: &mut Vec<u8>,
    ) -> Check {
        let what = format!("read_exact_at({offset}, {size})");
        buf.resize(size, 0);
        let end = offset + size as u64;
        match cache.read_exact_at(offset, &mut buf[..size]) {
            Ok(()) => {
                ensure!(
                    end <= self.model.good_end(),
                    "{what}: Ok past {}",
                    self.model.good_end()
                );
                self.bytes(offset, &buf[..size], &what)
            }
            Err(e) => {
                ensure!(
                    end > self.model.good_end(),
                    "{what}: {e:?} before {}",
                    self.model.good_end()
                );
                self.error(&e, Some(ErrorKind::UnexpectedEof), &what)
            }
        }
    }

    /// `slice(start..end)` (`end` `None`: `start..`), or `bytes` of the same.
    fn slice(&self, cache: &StreamCache, start: u64, end: Option<u64>, as_bytes: bool) -> Check {
        let what = format!(
            "{}({start}..{end:?})",
            if as_bytes { "bytes" } else { "slice" }
        );
        let good_end = self.model.good_end();
        let fits = match (end, &self.model.outcome) {
            (Some(end), _) => end <= good_end,
            (None, Outcome::Complete(len)) => start <= *len,
            (None, Outcome::Failed { .. }) => false,
        };
        // Checked where they are (a whole-stream slice is not copied).
        let ok = |data: &[u8]| -> Check {
            ensure!(
                fits,
                "{what}: Ok({} bytes) but the stream ends at {good_end}",
                data.len()
            );
            let want = end.unwrap_or(good_end) - start;
            ensure!(
                data.len() as u64 == want,
                "{what}: {} bytes, expected {want}",
                data.len()
            );
            self.bytes(start, data, &what)
        };
        let result = match (end, as_bytes) {
            (Some(end), false) => cache.slice(start..end).map(ok),
            (None, false) => cache.slice(start..).map(ok),
            (Some(end), true) => cache.bytes(start..end).map(|b| ok(&b)),
            (None, true) => cache.bytes(start..).map(|b| ok(&b)),
        };
        match result {
            Ok(check) => check,
            Err(e) => {
                ensure!(!fits, "{what}: {e:?}, but the bytes are there");
                self.error(&e, Some(ErrorKind::UnexpectedEof), &what)
            }
        }
    }

    fn wait_for(&self, cache: &StreamCache, offset: u64, timeout: Option<Duration>) -> Check {
        let what = format!("wait_for({offset}, {timeout:?})");
        let result = match timeout {
            None => cache.wait_for(offset).map(Some),
            Some(t) => cache.wait_for_timeout(offset, t),
        };
        let good_end = self.model.good_end();
        match result {
            Ok(None) => ensure!(timeout.is_some(), "{what}: None without a timeout"),
            Ok(Some(available)) => {
                let complete = matches!(self.model.outcome, Outcome::Complete(_));
                ensure!(available <= good_end, "{what}: {available} > {good_end}");
                ensure!(
                    available >= offset || (complete && available == good_end),
                    "{what}: returned {available} ({:?})",
                    self.model.outcome
                );
                ensure!(
                    complete || offset <= good_end,
                    "{what}: Ok({available}) past the failure at {good_end}"
                );
            }
            Err(e) => {
                ensure!(offset > good_end, "{what}: {e:?}");
                self.error(&e, None, &what)?;
            }
        }
        Ok(())
    }
}

/// One reader thread.
fn run_reader(
    cache: StreamCache,
    style: Style,
    check: Checker,
    seed: u64,
    limit: Option<u64>,
    stop: Arc<AtomicBool>,
) -> Check {
    let mut r = Rng(seed);
    let good_end = check.model.good_end();
    let complete = matches!(check.model.outcome, Outcome::Complete(_));
    // The furthest this reader may need: the end (+ a bit past), or the cancel point.
    let reach = limit.unwrap_or(good_end + 16);
    let floor = (good_end / 20_000).max(1);
    let mut buf = Vec::new();
    match style {
        Style::Stream => {
            let start = if r.chance(0.2) { r.range(0, reach) } else { 0 };
            let mut reader = cache.reader_at(start);
            let max_buf = r.log_range(floor, MIB) as usize;
            buf.resize(max_buf, 0);
            loop {
                let at = reader.position();
                if limit.is_some_and(|l| at >= l) {
                    return Ok(());
                }
                let size = r.range(1, max_buf as u64) as usize;
                match reader.read(&mut buf[..size]) {
                    Ok(0) => {
                        ensure!(
                            complete && at >= good_end,
                            "Read: Ok(0) at {at}, expected {:?}",
                            check.model.outcome
                        );
                        return Ok(());
                    }
                    Ok(n) => check.bytes(at, &buf[..n], "Read")?,
                    Err(e) => {
                        ensure!(at >= good_end, "Read: {e:?} at {at}");
                        return check.error(&e, None, "Read");
                    }
                }
            }
        }
        Style::Buffered => {
            let mut reader = cache.reader();
            loop {
                let at = reader.position();
                if limit.is_some_and(|l| at >= l) {
                    return Ok(());
                }
                let n = match reader.fill_buf() {
                    Ok([]) => {
                        ensure!(
                            complete && at == good_end,
                            "fill_buf: empty at {at}, expected {:?}",
                            check.model.outcome
                        );
                        return Ok(());
                    }
                    Ok(data) => {
                        check.bytes(at, data, "fill_buf")?;
                        data.len()
                    }
                    Err(e) => {
                        ensure!(at == good_end, "fill_buf: {e:?} at {at}");
                        return check.error(&e, None, "fill_buf");
                    }
                };
                reader.consume(r.range(1, n as u64) as usize);
            }
        }
        Style::Watcher => {
            let mut last = 0;
            loop {
                let status = cache.status();
                check.status(status, &mut last, "status")?;
                let available = cache.available();
                ensure!(
                    available >= last && available <= good_end,
                    "available() = {available} (last {last}, end {good_end})"
                );
                last = available;
                let from = r.range(0, available);
                let to = (from + (64 << 10)).min(available);
                if let Some(data) = cache.try_slice(from..to) {
                    check.bytes(from, data, "try_slice")?;
                }
                if !matches!(status, Status::Filling { .. }) || stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                thread::sleep(Duration::from_micros(r.range(0, 2000)));
            }
        }
        Style::Random => {
            let offset = |r: &mut Rng| -> u64 {
                let o = match r.below(6) {
                    0 => 0,
                    1 => good_end.saturating_sub(r.range(0, 3)),
                    2 => good_end + r.range(0, 3),
                    _ => r.range(0, reach),
                };
                limit.map_or(o, |l| o.min(l))
            };
            for _ in 0..r.range(5, 60) {
                let a = offset(&mut r);
                let size =
                    r.log_range(1, (64 << 10).max(floor)) as usize - usize::from(r.chance(0.05));
                let size = limit.map_or(size, |l| size.min((l - a) as usize));
                match r.below(11) {
                    0 | 1 => check.read_at(&cache, a, size, &mut buf)?,
                    2 => check.read_exact_at(&cache, a, size, &mut buf)?,
                    3 => check.slice(&cache, a, Some(a + size as u64), false)?,
                    4 => check.slice(&cache, a, Some(a + size as u64), true)?,
                    5 if limit.is_none() => check.slice(&cache, a, None, r.chance(0.5))?,
                    6 => check.wait_for(&cache, a, None)?,
                    7 => {
                        check.wait_for(&cache, a, Some(Duration::from_micros(r.range(0, 2000))))?
                    }
                    8 if limit.is_none() => {
                        // Seek from the end (waits for it), then read there.
                        let mut reader = cache.reader();
                        let back = r.range(0, 100);
                        match reader.seek(SeekFrom::End(-(back as i64))) {
                            Ok(pos) => {
                                ensure!(
                                    complete && back <= good_end && pos == good_end - back,
                                    "seek(End(-{back})) = {pos} ({:?})",
                                    check.model.outcome
                                );
                                check.read_at(&cache, pos, size, &mut buf)?;
                            }
                            Err(e) => {
                                let past_start = complete && back > good_end;
                                let expect = if past_start {
                                    Some(ErrorKind::InvalidInput)
                                } else {
                                    None
                                };
                                check.error(&e, expect, "seek from the end")?;
                            }
                        }
                    }
                    9 => {
                        let end = a + size as u64;
                        if let Some(data) = cache.try_slice(a..end) {
                            ensure!(end <= good_end, "try_slice({a}..{end}) past {good_end}");
                            check.bytes(a, data, "try_slice")?;
                        }
                    }
                    _ => {
                        let mut last = 0;
                        check.status(cache.status(), &mut last, "status")?;
                    }
                }
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One case
// ---------------------------------------------------------------------------------------------

struct Env {
    dir: tempfile::TempDir,
    stats: Arc<Stats>,
}

/// How a case went.
enum Ran {
    Complete,
    Failed,
    Cancelled,
}

fn run_case(case: &Case, env: &Env) -> Result<Ran, String> {
    let dir: PathBuf = if case.missing_dir {
        env.dir
            .path()
            .join("missing")
            .join(format!("{:x}", case.seed))
    } else {
        env.dir.path().to_owned()
    };
    let model = case.model(&dir.display().to_string());
    let stats = Arc::clone(&env.stats);
    let state = Arc::new(SourceState {
        seed: case.seed,
        len: case.len,
        piece: case.piece,
        interrupt_pct: case.interrupt_pct,
        empty_pct: case.empty_pct,
        pending: Mutex::new(case.faults.clone()),
        delivered: AtomicU64::new(0),
        opens: AtomicU64::new(0),
        problem: Mutex::new(None),
        stats: Arc::clone(&stats),
    });
    let (signal_tx, signal_rx) = mpsc::channel();
    let signal = DropSignal(signal_tx);
    let mut builder = StreamCache::builder()
        .memory_limit(case.memory_limit)
        .chunk_size(case.chunk_size)
        .temp_dir(&dir)
        .thread_name(format!("soak-filler-{:x}", case.seed))
        .retries(case.retries)
        .retry_backoff(Duration::from_micros(case.backoff_us));
    if let Some(len) = case.expected_len {
        builder = builder.expected_len(len);
    }
    if let Some(len) = case.max_len {
        builder = builder.max_len(len);
    }
    let mut rng = Rng(case.seed ^ 0x5EED);
    let spawned = match case.kind {
        Kind::Plain => builder.spawn(PlainSource {
            state: Arc::clone(&state),
            pos: 0,
            rng: Rng(rng.next()),
            _signal: Some(signal),
        }),
        Kind::Chunks => builder.spawn_chunks(ChunkSource {
            state: Arc::clone(&state),
            pos: 0,
            rng: Rng(rng.next()),
            _signal: signal,
        }),
        Kind::Resumable => {
            let mut opener = Opener {
                state: Arc::clone(&state),
                rng: Rng(rng.next()),
                _signal: signal,
            };
            builder.spawn_resumable(move |offset| opener.open(offset))
        }
    };
    let cache = spawned.map_err(|e| format!("spawn: {e}"))?;
    if case.missing_dir || case.max_len.is_some() {
        stats.faults.fetch_add(1, Ordering::Relaxed);
    }

    let checker = Checker {
        seed: case.seed,
        model: model.clone(),
        stats: Arc::clone(&stats),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = case
        .readers
        .iter()
        .map(|&style| {
            let (cache, check, stop) = (cache.clone(), checker.clone(), Arc::clone(&stop));
            let (seed, limit) = (rng.next(), case.cancel_at);
            thread::Builder::new()
                .name("soak-reader".into())
                .spawn(move || run_reader(cache, style, check, seed, limit, stop))
                .expect("spawn a reader")
        })
        .collect();

    let mut result = Ok(());
    if case.cancel_at.is_none() {
        let end = cache
            .wait_for_timeout(u64::MAX, CASE_LIMIT)
            .and_then(|r| r.ok_or_else(|| io::Error::other("timed out")));
        result = match (&end, &model.outcome) {
            (Ok(len), Outcome::Complete(want)) if len == want => Ok(()),
            (Err(e), _) => checker.error(e, None, "the stream's end"),
            (got, want) => Err(format!("the stream ended with {got:?}, expected {want:?}")),
        };
        let mut last = 0;
        result = result.and_then(|()| checker.status(cache.status(), &mut last, "final status"));
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let r = reader
            .join()
            .unwrap_or_else(|_| Err("a reader panicked".into()));
        result = result.and(r);
    }
    // A Bytes outliving every handle.
    let available = cache.available();
    let kept_from = rng.range(0, available);
    let kept = cache
        .bytes(kept_from..available)
        .map_err(|e| format!("bytes below the mark: {e}"))?;
    let was_complete = cache.is_complete();
    drop(cache);
    if signal_rx.recv_timeout(STOP_LIMIT).is_err() {
        return Err(format!(
            "the filler kept the source {STOP_LIMIT:?} after every handle was dropped"
        ));
    }
    checker.bytes(kept_from, &kept, "a Bytes after every handle dropped")?;
    drop(kept);
    result?;
    if let Some(problem) = state.problem.lock().unwrap().take() {
        return Err(problem);
    }
    if case.kind == Kind::Resumable && case.cancel_at.is_none() {
        let opens = state.opens.load(Ordering::Relaxed);
        ensure!(
            opens == model.opens,
            "open was called {opens} times, expected {}",
            model.opens
        );
    }
    Ok(match (&model.outcome, case.cancel_at) {
        (_, Some(_)) if !was_complete => Ran::Cancelled,
        (Outcome::Complete(_), _) => Ran::Complete,
        (Outcome::Failed { .. }, _) => Ran::Failed,
    })
}

// ---------------------------------------------------------------------------------------------
// The process: workers, a watchdog, measurements at rest
// ---------------------------------------------------------------------------------------------

/// A worker's current case: when it started and what it is.
type Slot = Mutex<Option<(Instant, u64)>>;

struct Run {
    env: Env,
    slots: Vec<Slot>,
    pause: Mutex<bool>,
    resume: Condvar,
    idle: AtomicUsize,
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Run {
    fn fail(&self, message: String) {
        self.failure.lock().unwrap().get_or_insert(message);
    }

    fn failed(&self) -> bool {
        self.failure.lock().unwrap().is_some()
    }
}

fn worker(run: &Run, index: usize, seed: u64) {
    let mut r = Rng(seed);
    loop {
        {
            let mut paused = run.pause.lock().unwrap();
            if *paused {
                run.idle.fetch_add(1, Ordering::SeqCst);
                while *paused && !run.stop.load(Ordering::SeqCst) {
                    paused = run.resume.wait(paused).unwrap();
                }
                run.idle.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if run.stop.load(Ordering::SeqCst) || run.failed() {
            return;
        }
        let case_seed = r.next();
        let case = Case::generate(case_seed);
        *run.slots[index].lock().unwrap() = Some((Instant::now(), case_seed));
        let outcome = run_case(&case, &run.env);
        *run.slots[index].lock().unwrap() = None;
        let stats = &run.env.stats;
        stats.caches.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(Ran::Complete) => stats.complete.fetch_add(1, Ordering::Relaxed),
            Ok(Ran::Failed) => stats.failed.fetch_add(1, Ordering::Relaxed),
            Ok(Ran::Cancelled) => stats.cancelled.fetch_add(1, Ordering::Relaxed),
            Err(message) => {
                run.fail(format!(
                    "case {case_seed:#x} (repeat: cargo run -p streamcache-benches --release --bin soak -- --case {case_seed:#x}): {message}\n  {case:?}"
                ));
                return;
            }
        };
    }
}

/// The process at rest.
#[derive(Debug, Clone, Copy)]
struct Measure {
    fds: usize,
    threads: usize,
    rss_anon: u64,
}

fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn measure() -> Measure {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: glibc's malloc_trim has no preconditions; it only returns free memory to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
    Measure {
        fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
        threads: proc_status("Threads:") as usize,
        rss_anon: proc_status("RssAnon:") * 1024,
    }
}

/// What the open fds point to, most frequent first: `target ×count`.
fn open_fds() -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for target in dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok()) {
            *counts.entry(target.display().to_string()).or_default() += 1;
        }
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts
        .iter()
        .take(10)
        .map(|(target, n)| format!("{target} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Pauses the workers between cases and waits for the fillers to be gone; `None` on a failure.
fn quiesce(run: &Run, workers: usize, baseline: Option<Measure>) -> Option<Measure> {
    *run.pause.lock().unwrap() = true;
    while run.idle.load(Ordering::SeqCst) < workers {
        if run.failed() {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
    // Fillers finish shortly after they drop their source: give them a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = measure();
        match baseline {
            Some(b) if (m.fds > b.fds || m.threads > b.threads) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            _ => return Some(m),
        }
    }
}

fn release(run: &Run) {
    *run.pause.lock().unwrap() = false;
    run.resume.notify_all();
}

struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if b >= (1u64 << 30) as f64 {
            write!(f, "{:.1} GiB", b / (1u64 << 30) as f64)
        } else {
            write!(f, "{:.1} MiB", b / MIB as f64)
        }
    }
}

fn line(elapsed: Duration, stats: &Stats, m: Measure, baseline: Measure) -> String {
    format!(
        "soak: {:>4} s: caches {} (complete {}, failed {}, cancelled {}), verified {}, faults {}, \
         fds {} (start {}), threads {} (start {}), RssAnon {} (start {})",
        elapsed.as_secs(),
        stats.caches.load(Ordering::Relaxed),
        stats.complete.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        stats.cancelled.load(Ordering::Relaxed),
        Bytes(stats.verified.load(Ordering::Relaxed)),
        stats.faults.load(Ordering::Relaxed),
        m.fds,
        baseline.fds,
        m.threads,
        baseline.threads,
        Bytes(m.rss_anon),
        Bytes(baseline.rss_anon),
    )
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Ends the process (destructors do not run: the spill directory is removed here).
fn exit(code: i32, dir: &std::path::Path) -> ! {
    let _ = std::fs::remove_dir_all(dir);
    process::exit(code)
}

fn quiet_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !message.contains(INJECTED_PANIC) {
            default(info);
        }
    }));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    quiet_injected_panics();
    let env = Env {
        dir: tempfile::Builder::new()
            .prefix("streamcache-soak-")
            .tempdir()
            .expect("a temp dir"),
        stats: Arc::default(),
    };
    if args.first().map(String::as_str) == Some("--case") {
        let seed = args.get(1).and_then(|s| parse_u64(s)).expect("--case SEED");
        let case = Case::generate(seed);
        println!("{case:#?}");
        println!(
            "model: {:?}",
            case.model(
                &env.dir
                    .path()
                    .join("missing")
                    .join(format!("{seed:x}"))
                    .display()
                    .to_string()
            )
        );
        match run_case(&case, &env) {
            Ok(_) => println!("case {seed:#x}: OK"),
            Err(e) => {
                println!("case {seed:#x}: FAILED: {e}");
                exit(1, env.dir.path());
            }
        }
        return;
    }
    let seconds = match args.first() {
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("usage: soak [SECONDS] | soak --case SEED");
            process::exit(2)
        }),
        None => 600,
    };
    let workers = env_u64("SOAK_THREADS").unwrap_or(8) as usize;
    let master = env_u64("SOAK_SEED").unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        mix(t.as_nanos() as u64 ^ u64::from(process::id()))
    });
    println!("soak: {seconds} s on {workers} threads, SOAK_SEED={master:#x}");

    let run = Arc::new(Run {
        env,
        slots: (0..workers).map(|_| Mutex::new(None)).collect(),
        pause: Mutex::new(true),
        resume: Condvar::new(),
        idle: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        failure: Mutex::new(None),
    });
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            let run = Arc::clone(&run);
            let seed = mix(master ^ (i as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
            thread::Builder::new()
                .name(format!("soak-worker-{i}"))
                .spawn(move || worker(&run, i, seed))
                .expect("spawn a worker")
        })
        .collect();

    // The watchdog: a case over CASE_LIMIT is a hang; RssAnon over the hard limit is unbounded.
    {
        let run = Arc::clone(&run);
        thread::Builder::new()
            .name("soak-watchdog".into())
            .spawn(move || loop {
                thread::sleep(Duration::from_secs(1));
                for (i, slot) in run.slots.iter().enumerate() {
                    if let Some((start, seed)) = *slot.lock().unwrap() {
                        if start.elapsed() > CASE_LIMIT {
                            let case = Case::generate(seed);
                            println!("soak: FAILED: HANG: worker {i}, case {seed:#x} running for {:?} (repeat: --case {seed:#x})\n  {case:?}", start.elapsed());
                            exit(1, run.env.dir.path());
                        }
                    }
                }
                let rss = proc_status("RssAnon:") * 1024;
                if rss > RSS_HARD_LIMIT {
                    println!("soak: FAILED: RssAnon {} over {}", Bytes(rss), Bytes(RSS_HARD_LIMIT));
                    exit(1, run.env.dir.path());
                }
            })
            .expect("spawn the watchdog");
    }

    let start = Instant::now();
    let baseline = quiesce(&run, workers, None).expect("workers start paused");
    release(&run);
    let mut rest_rss: Option<u64> = None;
    let mut next = Duration::from_secs(60);
    let end = Duration::from_secs(seconds);
    let verdict: Result<(), String> = loop {
        let target = next.min(end);
        while start.elapsed() < target && !run.failed() {
            thread::sleep(Duration::from_millis(100));
        }
        if run.failed() {
            break Err(run.failure.lock().unwrap().clone().unwrap_or_default());
        }
        let Some(m) = quiesce(&run, workers, Some(baseline)) else {
            break Err(run.failure.lock().unwrap().clone().unwrap_or_default());
        };
        println!("{}", line(start.elapsed(), &run.env.stats, m, baseline));
        if m.fds > baseline.fds {
            break Err(format!(
                "fd leak: {} open at rest, {} at the start: {}",
                m.fds,
                baseline.fds,
                open_fds()
            ));
        }
        if m.threads > baseline.threads {
            break Err(format!(
                "thread leak: {} at rest, {} at the start",
                m.threads, baseline.threads
            ));
        }
        // The level at rest after the first minute (allocator arenas warmed up) is the reference.
        let reference = *rest_rss.get_or_insert(m.rss_anon);
        if m.rss_anon > reference + RSS_GROWTH_LIMIT {
            break Err(format!(
                "RssAnon at rest grew from {} to {}",
                Bytes(reference),
                Bytes(m.rss_anon)
            ));
        }
        if start.elapsed() >= end {
            break Ok(());
        }
        next += Duration::from_secs(60);
        release(&run);
    };
    run.stop.store(true, Ordering::SeqCst);
    release(&run);
    let stats = &run.env.stats;
    match verdict {
        Ok(()) => {
            for h in handles {
                let _ = h.join();
            }
            println!(
                "soak: PASSED: {} s, {} caches, {} verified, {} faults injected, no wrong byte, hang, fd leak or RSS growth",
                start.elapsed().as_secs(),
                stats.caches.load(Ordering::Relaxed),
                Bytes(stats.verified.load(Ordering::Relaxed)),
                stats.faults.load(Ordering::Relaxed),
            );
            // The watchdog holds the run (and its temp dir) until the process ends.
            let _ = std::fs::remove_dir_all(run.env.dir.path());
        }
        Err(message) => {
            println!(
                "soak: FAILED after {} s: {message}",
                start.elapsed().as_secs()
            );
            exit(1, run.env.dir.path());
        }
    }
}
