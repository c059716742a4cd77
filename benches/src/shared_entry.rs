//! Workload (p): one entry shared by processes (`Builder::cache_dir` + `cache_key`). The
//! report's binary runs again as the other processes ([`SHARED_CHILD`]); every time is read
//! on `CLOCK_MONOTONIC` ([`monotonic_ns`]), one clock for every process.
//!
//! 1. [`read_in_process`] and [`read_in_child`]: a complete entry folded through
//!    `slice(..)` in [`PIECE`]s, in the writer's process and in a new process that opens the
//!    same key (and finds the entry complete).
//! 2. [`wake_run`]: the writer's paced source stamps each chunk as it returns it; a thread
//!    of the writer's process or a child process (each alone, or both at once) waits for
//!    every next chunk and stamps its wake.
//! 3. [`race`]: `n` processes started together (on a go line on their stdin, once all are
//!    up) open one fresh key over a paced source and read every byte; the time from the go to
//!    the last one's last byte.

use crate::{fold, Generator, ThreadUsage, CHUNK};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::Range;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use streamcache::StreamCache;

/// The first argument that makes the report's binary one of (p)'s other processes.
pub const SHARED_CHILD: &str = "--shared-child";

/// The piece every reader of (p) folds at a time: `slice(at..at + PIECE)`.
pub const PIECE: u64 = 4 << 20;

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of the machine.
pub fn monotonic_ns() -> u64 {
    // SAFETY: `clock_gettime` only writes into the zeroed struct we pass.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn since(start_ns: u64) -> Duration {
    Duration::from_nanos(monotonic_ns().saturating_sub(start_ns))
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

// --- the source ------------------------------------------------------------------------------

/// Ends of chunks and when the source returned them: `(offset after the chunk, monotonic ns)`.
pub type Stamps = Arc<Mutex<Vec<(u64, u64)>>>;

/// The generated stream's bytes `range`, at most [`CHUNK`] a read; paced (`ns_per_byte` > 0:
/// the read that ends at `start + b` returns no earlier than `b * ns_per_byte` after the
/// open), counted into `delivered`, and stamped into `stamps` when given.
struct Pattern {
    gen: Generator,
    at: u64,
    start: u64,
    opened_ns: u64,
    ns_per_byte: f64,
    delivered: Arc<AtomicU64>,
    stamps: Option<Stamps>,
}

impl Pattern {
    fn open(
        range: Range<u64>,
        ns_per_byte: f64,
        delivered: Arc<AtomicU64>,
        stamps: Option<Stamps>,
    ) -> io::Result<Pattern> {
        let mut gen = Generator::new(range.end);
        // Only a fetch or a take-over opens past 0: none does in the runs here.
        io::copy(&mut (&mut gen).take(range.start), &mut io::sink())?;
        Ok(Pattern {
            gen,
            at: range.start,
            start: range.start,
            opened_ns: monotonic_ns(),
            ns_per_byte,
            delivered,
            stamps,
        })
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(CHUNK);
        let n = self.gen.read(&mut buf[..want])?;
        if n == 0 {
            return Ok(0);
        }
        self.at += n as u64;
        if self.ns_per_byte > 0.0 {
            let due = self.opened_ns + ((self.at - self.start) as f64 * self.ns_per_byte) as u64;
            let now = monotonic_ns();
            if due > now {
                std::thread::sleep(Duration::from_nanos(due - now));
            }
        }
        if let Some(stamps) = &self.stamps {
            stamps.lock().unwrap().push((self.at, monotonic_ns()));
        }
        self.delivered.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A gate the writer's source waits at before its first byte, until [`Gate::open`].
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// The cache of `key` in `dir` over the generated stream of `len` bytes, `rate` bytes per
/// second (0: as fast as the generator goes), every delivered byte counted into `delivered`.
fn shared_cache(
    dir: &Path,
    key: &str,
    len: u64,
    rate: f64,
    delivered: &Arc<AtomicU64>,
) -> io::Result<StreamCache> {
    let ns_per_byte = if rate > 0.0 { 1e9 / rate } else { 0.0 };
    let delivered = Arc::clone(delivered);
    StreamCache::builder()
        .cache_dir(dir)
        .cache_key(key)
        .spawn_ranged(len, move |range| {
            Pattern::open(range, ns_per_byte, Arc::clone(&delivered), None)
        })
}

/// Folds `[0, len)` of `cache` in [`PIECE`]s, each waited for first (so that no read of a
/// growing entry is a far read): the checksum.
fn fold_pieces(cache: &StreamCache, len: u64) -> io::Result<u64> {
    let mut sum = 0u64;
    let mut at = 0;
    while at < len {
        let end = (at + PIECE).min(len);
        cache.wait_for(end)?;
        sum = fold(sum, cache.slice(at..end)?);
        at = end;
    }
    Ok(sum)
}

fn check_sum(what: &str, sum: u64, expected: u64) -> io::Result<()> {
    if sum == expected {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{what}: checksum {sum:#x}, the stream's is {expected:#x}"
        )))
    }
}

// --- the child processes ---------------------------------------------------------------------

/// Runs in a child: `--shared-child MODE DIR KEY LEN ...`, one of
///
/// - `read DIR KEY LEN SUM`: opens the (complete) entry, folds it twice; prints
///   `shared-read OPEN_NS FIRST_NS SECOND_NS FIRST_FAULTS SECOND_FAULTS` (minor page faults).
/// - `wake DIR KEY LEN STEP SUM`: opens the entry (the parent writes it), prints `ready`,
///   waits for every next `STEP` bytes and stamps each wake; prints `shared-wakes T1 T2 ...`.
/// - `race DIR KEY LEN RATE SUM`: prints `ready`, waits for a line on stdin, opens the entry
///   over a source of `RATE` bytes per second and folds every byte; prints
///   `shared-race START_NS END_NS DELIVERED`.
pub fn shared_child(args: &[String]) -> io::Result<()> {
    let [mode, dir, key, len, rest @ ..] = args else {
        return Err(other("expected MODE DIR KEY LEN ..."));
    };
    let dir = Path::new(dir);
    let len: u64 = len.parse().map_err(other)?;
    let delivered = Arc::new(AtomicU64::new(0));
    match (mode.as_str(), rest) {
        ("read", [sum]) => {
            let expected: u64 = sum.parse().map_err(other)?;
            let start = monotonic_ns();
            let cache = shared_cache(dir, key, len, 0.0, &delivered)?;
            cache.wait_complete()?;
            let open = since(start);
            let ((first, sum), first_use) = ThreadUsage::of(|| read_complete(&cache, len));
            check_sum("child, first pass", sum?, expected)?;
            // Read after the first pass: how much of the entry its faults mapped huge.
            let huge_kib = crate::file_pmd_mapped_kib();
            let ((second, sum), second_use) = ThreadUsage::of(|| read_complete(&cache, len));
            check_sum("child, second pass", sum?, expected)?;
            if delivered.load(Ordering::Relaxed) != 0 {
                return Err(other(
                    "the child's source was opened: the entry was not complete",
                ));
            }
            println!(
                "shared-read {} {} {} {} {} {}",
                open.as_nanos(),
                first.as_nanos(),
                second.as_nanos(),
                first_use.minor_faults,
                second_use.minor_faults,
                // The kernel's own "no huge mappings" is 0; one that does not say is u64::MAX.
                huge_kib.unwrap_or(u64::MAX)
            );
        }
        ("wake", [step, sum]) => {
            let step: u64 = step.parse().map_err(other)?;
            let expected: u64 = sum.parse().map_err(other)?;
            let cache = shared_cache(dir, key, len, 0.0, &delivered)?;
            println!("ready");
            let wakes = wait_each(&cache, len, step)?;
            check_sum("wake child", fold_pieces(&cache, len)?, expected)?;
            if delivered.load(Ordering::Relaxed) != 0 {
                return Err(other("the child's source was opened: it was not a reader"));
            }
            let wakes: Vec<String> = wakes.iter().map(u64::to_string).collect();
            println!("shared-wakes {}", wakes.join(" "));
        }
        ("race", [rate, sum]) => {
            let rate: f64 = rate.parse().map_err(other)?;
            let expected: u64 = sum.parse().map_err(other)?;
            println!("ready");
            io::stdin().lock().read_line(&mut String::new())?;
            let start = monotonic_ns();
            let cache = shared_cache(dir, key, len, rate, &delivered)?;
            let sum = fold_pieces(&cache, len)?;
            let end = monotonic_ns();
            check_sum("race child", sum, expected)?;
            println!(
                "shared-race {start} {end} {}",
                delivered.load(Ordering::Relaxed)
            );
        }
        _ => return Err(other(format!("no such mode or wrong arguments: {args:?}"))),
    }
    Ok(())
}

/// Waits for every next `step` bytes of `cache` up to `len`: the monotonic time of each wake.
fn wait_each(cache: &StreamCache, len: u64, step: u64) -> io::Result<Vec<u64>> {
    let mut wakes = Vec::with_capacity(len.div_ceil(step) as usize);
    let mut at = 0;
    while at < len {
        at = (at + step).min(len);
        cache.wait_for(at)?;
        wakes.push(monotonic_ns());
    }
    Ok(wakes)
}

/// A child of this binary in mode `mode`, its stdin and stdout piped.
fn spawn_child(mode: &str, dir: &Path, key: &str, len: u64, rest: &[String]) -> io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .arg(SHARED_CHILD)
        .arg(mode)
        .arg(dir)
        .arg(key)
        .arg(len.to_string())
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// The rest of the child's line that starts with `tag` (the next such line of `out`); the
/// child's stderr in the error if it ends first.
fn line_of(child: &mut Child, out: &mut BufReader<ChildStdout>, tag: &str) -> io::Result<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line)? == 0 {
            let status = child.wait()?;
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                stderr.read_to_string(&mut err)?;
            }
            return Err(other(format!(
                "child ended ({status}) before {tag:?}: {}",
                err.trim()
            )));
        }
        if let Some(rest) = line.trim_end().strip_prefix(tag) {
            return Ok(rest.trim().to_owned());
        }
    }
}

fn numbers(line: &str) -> io::Result<Vec<u64>> {
    line.split_whitespace()
        .map(|n| n.parse().map_err(other))
        .collect()
}

/// Waits for `child` and fails if it failed.
fn reap(mut child: Child) -> io::Result<()> {
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            stderr.read_to_string(&mut err)?;
        }
        Err(other(format!("child failed ({status}): {}", err.trim())))
    }
}

// --- 1. a complete entry, read here and in another process -----------------------------------

/// A complete entry of the generated stream of `len` bytes, made by this process (its
/// writer): the cache, kept open by the caller while the others read, and the time from the
/// open to the last byte in the entry (the writer's fill).
pub fn complete_entry(dir: &Path, key: &str, len: u64) -> io::Result<(StreamCache, Duration)> {
    let start = monotonic_ns();
    let cache = shared_cache(dir, key, len, 0.0, &Arc::new(AtomicU64::new(0)))?;
    cache.wait_complete()?;
    Ok((cache, since(start)))
}

/// Folds every byte of the complete `cache` through `slice` in [`PIECE`]s: the time and the
/// checksum.
fn read_complete(cache: &StreamCache, len: u64) -> (Duration, io::Result<u64>) {
    let start = monotonic_ns();
    let mut sum = 0u64;
    let mut at = 0;
    while at < len {
        let end = (at + PIECE).min(len);
        match cache.slice(at..end) {
            Ok(bytes) => sum = fold(sum, bytes),
            Err(e) => return (since(start), Err(e)),
        }
        at = end;
    }
    (since(start), Ok(sum))
}

/// One fold of the complete entry in this (the writer's) process: its time and the minor page
/// faults it took, the checksum checked against `expected`.
pub fn read_in_process(
    cache: &StreamCache,
    len: u64,
    expected: u64,
) -> io::Result<(Duration, u64)> {
    let ((elapsed, sum), used) = ThreadUsage::of(|| read_complete(cache, len));
    check_sum("writer's process", sum?, expected)?;
    Ok((elapsed, used.minor_faults))
}

/// A new process's reads of the complete entry `key` of `dir`.
#[derive(Debug, Clone, Copy)]
pub struct ChildRead {
    /// From the child's `spawn_ranged` to its `wait_complete`'s return.
    pub open: Duration,
    /// Its first fold of the entry (the first touch of its mapping).
    pub first: Duration,
    /// Its second fold (the mapping already touched).
    pub second: Duration,
    /// The minor page faults of each fold.
    pub first_faults: u64,
    pub second_faults: u64,
    /// The KiB of files the child mapped with huge (PMD) entries after its first fold
    /// (`FilePmdMapped`), where the kernel says.
    pub huge_kib: Option<u64>,
}

/// Starts a child that opens the complete entry `key` of `dir` and folds it twice.
pub fn read_in_child(dir: &Path, key: &str, len: u64, expected: u64) -> io::Result<ChildRead> {
    let mut child = spawn_child("read", dir, key, len, &[expected.to_string()])?;
    drop(child.stdin.take());
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let line = line_of(&mut child, &mut out, "shared-read")?;
    reap(child)?;
    match numbers(&line)?[..] {
        [open, first, second, first_faults, second_faults, huge_kib] => Ok(ChildRead {
            open: Duration::from_nanos(open),
            first: Duration::from_nanos(first),
            second: Duration::from_nanos(second),
            first_faults,
            second_faults,
            huge_kib: (huge_kib != u64::MAX).then_some(huge_kib),
        }),
        _ => Err(other(format!("bad child line {line:?}"))),
    }
}

// --- 2. wake latency, in the writer's process and in another -------------------------------

/// Per chunk, from the source's return of it to a waiter's wake (empty for a waiter the run
/// did not have).
#[derive(Debug, Clone)]
pub struct WakeRun {
    /// A thread of the writer's process.
    pub in_process: Vec<Duration>,
    /// A reader in another process.
    pub cross_process: Vec<Duration>,
}

/// Who waits in a [`wake_run`]: one waiter alone (its wake measured without the other's
/// thread competing for the CPUs), or both at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiters {
    InProcess,
    CrossProcess,
    Both,
}

/// The writer (this process) over a source that returns one `chunk` every `pace`, `chunks`
/// of them; a thread here, a child process, or both, each wait for every next chunk.
pub fn wake_run(
    dir: &Path,
    chunks: u64,
    chunk: u64,
    pace: Duration,
    waiters: Waiters,
) -> io::Result<WakeRun> {
    let key = "wake";
    let len = chunks * chunk;
    let gate = Arc::new(Gate::default());
    let stamps: Stamps = Arc::new(Mutex::new(Vec::with_capacity(chunks as usize + 1)));
    let ns_per_byte = pace.as_nanos() as f64 / chunk as f64;
    let writer = {
        let gate = Arc::clone(&gate);
        let stamps = Arc::clone(&stamps);
        let delivered = Arc::new(AtomicU64::new(0));
        StreamCache::builder()
            .cache_dir(dir)
            .cache_key(key)
            .chunk_size(chunk as usize)
            .spawn_ranged(len, move |range| {
                gate.wait();
                Pattern::open(
                    range,
                    ns_per_byte,
                    Arc::clone(&delivered),
                    Some(Arc::clone(&stamps)),
                )
            })?
    };
    let expected = crate::expected_sum(len);
    let mut child = match waiters {
        Waiters::InProcess => None,
        Waiters::CrossProcess | Waiters::Both => {
            let mut child = spawn_child(
                "wake",
                dir,
                key,
                len,
                &[chunk.to_string(), expected.to_string()],
            )?;
            drop(child.stdin.take());
            let out = BufReader::new(child.stdout.take().expect("piped"));
            Some((child, out))
        }
    };
    let result = std::thread::scope(|scope| -> io::Result<(Vec<u64>, Option<String>)> {
        if let Some((child, out)) = child.as_mut() {
            line_of(child, out, "ready")?;
        }
        let here = (waiters != Waiters::CrossProcess)
            .then(|| scope.spawn(|| wait_each(&writer, len, chunk)));
        // Every waiter parked before the first chunk.
        std::thread::sleep(Duration::from_millis(50));
        gate.open();
        let line = child
            .as_mut()
            .map(|(child, out)| line_of(child, out, "shared-wakes"));
        let here = match here {
            Some(here) => here
                .join()
                .map_err(|_| other("the in-process waiter panicked"))??,
            None => Vec::new(),
        };
        Ok((here, line.transpose()?))
    });
    let (here, line) = match result {
        Ok(r) => r,
        Err(e) => {
            gate.open(); // Lets the writer's filler end.
            if let Some((mut child, _)) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(e);
        }
    };
    let there = match (child, line) {
        (Some((child, _)), Some(line)) => {
            reap(child)?;
            numbers(&line)?
        }
        _ => Vec::new(),
    };
    let stamps = stamps.lock().unwrap().clone();
    let latencies = |wakes: &[u64], who: &str| -> io::Result<Vec<Duration>> {
        if wakes.len() as u64 != chunks {
            return Err(other(format!(
                "{who}: {} wakes for {chunks} chunks",
                wakes.len()
            )));
        }
        let mut out = Vec::with_capacity(wakes.len());
        for (k, &wake) in wakes.iter().enumerate() {
            let end = (k as u64 + 1) * chunk;
            let Some(&(_, sent)) = stamps.iter().find(|&&(at, _)| at >= end) else {
                return Err(other(format!("{who}: no stamp of the source at {end}")));
            };
            if wake < sent {
                return Err(other(format!(
                    "{who}: woken for {end} {} µs before the source returned it",
                    (sent - wake) / 1000
                )));
            }
            out.push(Duration::from_nanos(wake - sent));
        }
        Ok(out)
    };
    let measured = |wakes: &[u64], who: &str, had: bool| {
        if had {
            latencies(wakes, who)
        } else {
            Ok(Vec::new())
        }
    };
    Ok(WakeRun {
        in_process: measured(&here, "in-process", waiters != Waiters::CrossProcess)?,
        cross_process: measured(&there, "cross-process", waiters != Waiters::InProcess)?,
    })
}

// --- 3. n processes on one key ---------------------------------------------------------------

/// One run of [`race`].
#[derive(Debug, Clone)]
pub struct RaceRun {
    /// From the go to the last process's last byte.
    pub elapsed: Duration,
    /// Each process's own time, from its go to its last byte.
    pub each: Vec<Duration>,
    /// The bytes every source delivered, together.
    pub sent: u64,
}

/// `n` child processes, started and waiting for a go line, then all told to go: each opens
/// the fresh entry `key` of `dir` over a source of `rate` bytes per second, `len` bytes, and
/// folds every byte.
pub fn race(dir: &Path, key: &str, n: usize, len: u64, rate: f64) -> io::Result<RaceRun> {
    let expected = crate::expected_sum(len);
    let rest = [rate.to_string(), expected.to_string()];
    let mut children = Vec::with_capacity(n);
    let run = (|| {
        for _ in 0..n {
            let mut child = spawn_child("race", dir, key, len, &rest)?;
            let out = BufReader::new(child.stdout.take().expect("piped"));
            children.push((child, out));
        }
        for (child, out) in &mut children {
            line_of(child, out, "ready")?;
        }
        let go = monotonic_ns();
        for (child, _) in &mut children {
            let mut stdin = child.stdin.take().expect("piped");
            stdin.write_all(b"go\n")?;
        }
        let mut last = go;
        let mut each = Vec::with_capacity(n);
        let mut sent = 0;
        for (child, out) in &mut children {
            let line = line_of(child, out, "shared-race")?;
            let [start, end, delivered] = numbers(&line)?[..] else {
                return Err(other(format!("bad child line {line:?}")));
            };
            last = last.max(end);
            each.push(Duration::from_nanos(end.saturating_sub(start)));
            sent += delivered;
        }
        Ok(RaceRun {
            elapsed: Duration::from_nanos(last - go),
            each,
            sent,
        })
    })();
    let mut failed = None;
    for (mut child, _) in children {
        if run.is_err() {
            let _ = child.kill();
        }
        if let Err(e) = reap(child) {
            failed.get_or_insert(e);
        }
    }
    match (run, failed) {
        (Ok(run), None) => Ok(run),
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_the_generated_stream_and_paced() {
        let len = 5 * CHUNK as u64 + 123;
        let delivered = Arc::new(AtomicU64::new(0));
        let stamps: Stamps = Arc::default();
        // 1 ms per chunk.
        let ns_per_byte = 1e6 / CHUNK as f64;
        let start = monotonic_ns();
        let source = Pattern::open(
            0..len,
            ns_per_byte,
            Arc::clone(&delivered),
            Some(Arc::clone(&stamps)),
        )
        .unwrap();
        let sum = crate::fold_read(source).unwrap();
        assert_eq!(sum, crate::expected_sum(len));
        assert_eq!(delivered.load(Ordering::Relaxed), len);
        let stamps = stamps.lock().unwrap();
        assert_eq!(stamps.last().unwrap().0, len);
        assert!(stamps.last().unwrap().1 - start >= 5_000_000);
    }
}
