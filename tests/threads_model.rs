//! The concurrent state machine ("fuzz") test: one random stream, read by 2–4 threads at once,
//! each running its own random sequence of operations, every result checked against a plain
//! model of the stream and the outcome the contract decides.
//!
//! A case picks a stream (length, memory limit from 0 to past the length, a `Read` source with
//! random read sizes or `spawn_chunks` with random chunk sizes including empty ones, an optional
//! `chunk_size`, `max_len` and `expected_len`, a source error at the end of the delivered bytes,
//! `Interrupted` reports at random offsets, and a pace: yields and short sleeps in the source)
//! and, per thread, a plan: `read_at`, `read_exact_at`, `slice`, `try_slice`, `bytes`,
//! `wait_for`, `wait_for_timeout`, `wait_complete`, `status`, reader seeks from the start, the
//! current position and the end (then a read), `read`, `read_exact`, `read_to_end`,
//! `fill_buf`/`consume`, new, cloned and dropped readers, readers handed to other threads, and
//! dropping the thread's own `StreamCache` clone.
//!
//! The threads start together with the source (a gate holds the source's first read back until
//! every thread is at its first operation) and the source mostly trickles, so that many
//! operations run while the stream is filling; "eager" threads ask only for bytes inside the
//! stream and never wait for its end. The checks accept exactly what the contract allows then
//! (a partial `read_at`, `None` from `try_slice`, a `wait_for` that returns anything between
//! its target and the end) and are exact once the stream has ended. Some threads keep `Bytes` and `&[u8]` slices across their
//! operations and check them again at the end (stable bytes); the `Bytes` are checked once more
//! after every handle is gone.
//!
//! A case that does not finish within [`HANG_GUARD`] is a hang: the test prints the case and
//! exits the process (leaked, blocked threads would make shrinking meaningless).
//!
//! 32 cases by default; `PROPTEST_CASES` for more (`scripts/fuzz` runs 10,000 in release).

mod common;

use bytes::Bytes;
use common::model::{
    check_bytes, check_read, check_read_exact_at, check_seek, check_slice, check_status,
    check_try_slice, check_wait, check_wait_complete, check_whole_stream, config, fill_buf_consume,
    is_terminal, kind_of, read_len, reader_read, resolve, shape, Model, Range, Shape, StreamSetup,
};
use common::source::PatternSource;
use common::{spill_dir, HANG_GUARD};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, SeekFrom, Write};
use std::ops::Bound;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use streamcache::{Reader, Status, StreamCache};

/// Error kinds a source may fail with.
const SOURCE_ERRORS: [ErrorKind; 7] = [
    ErrorKind::ConnectionReset,
    ErrorKind::TimedOut,
    ErrorKind::BrokenPipe,
    ErrorKind::PermissionDenied,
    ErrorKind::UnexpectedEof,
    ErrorKind::InvalidData,
    ErrorKind::Other,
];

// ---------------------------------------------------------------------------------------------
// The case
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Setup {
    /// The source and how the cache is built.
    stream: StreamSetup,
    expected_len: Option<u64>,
    /// The source reports `Interrupted` once when it reaches each of these offsets.
    interrupts: Vec<u64>,
    /// The source yields before every read.
    yield_each_read: bool,
    /// The source sleeps this many microseconds when it reaches each offset.
    pauses: Vec<(u64, u32)>,
    /// `(steps, micros)`: the source also sleeps `micros` every `len / steps` bytes, so that the
    /// threads' operations overlap the filling.
    trickle: Option<(u64, u32)>,
    /// The test's main thread keeps a `StreamCache` while the threads run. Without it, the
    /// threads' handles are the only ones and the filler may be cancelled when they are gone.
    main_holds: bool,
}

/// One thread's operations.
#[derive(Debug, Clone)]
struct Plan {
    /// The thread keeps a second `StreamCache` for its whole life, and keeps slices borrowed
    /// from it (`Slice(_, true)`) to check them again at the end.
    anchor: bool,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy)]
enum Timeout {
    Zero,
    Micros(u32),
    /// `Duration::MAX`: waits as long as it takes.
    Forever,
}

#[derive(Debug, Clone)]
enum Op {
    ReadAt(u64, usize),
    ReadExactAt(u64, usize),
    /// `true`: keep the slice (if the thread has an anchor).
    Slice(Range, bool),
    TrySlice(Range),
    /// `true`: keep the `Bytes`.
    Bytes(Range, bool),
    WaitFor(u64),
    WaitForTimeout(u64, Timeout),
    WaitComplete,
    Status,
    /// Seek reader `.0`, then read this many bytes.
    Seek(usize, SeekFrom, Option<usize>),
    Read(usize, usize),
    ReadExact(usize, usize),
    ReadToEnd(usize),
    /// `fill_buf`, then `consume` this many thousandths of what it returned.
    FillBuf(usize, u16),
    NewReader(u64),
    CloneReader(usize),
    DropReader(usize),
    /// Put a clone of a reader in the mailbox shared by the threads.
    GiveReader(usize),
    /// Take a reader (any thread's) from the mailbox.
    TakeReader,
    /// Drop this thread's own `StreamCache` (its readers and anchor still hold the stream).
    DropCache,
    /// Yield (0) or sleep this many microseconds.
    Pause(u32),
}

// ---------------------------------------------------------------------------------------------
// The sources
// ---------------------------------------------------------------------------------------------

/// Holds the source's first read back until every thread is ready.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }

    fn wait(&self) {
        let open = self.open.lock().unwrap();
        let _ = self
            .cond
            .wait_timeout_while(open, HANG_GUARD, |open| !*open);
    }
}

/// The pace of a source: the gate, yields, pauses and `Interrupted` reports, by offset.
struct Pace {
    gate: Option<Arc<Gate>>,
    yield_each_read: bool,
    pauses: VecDeque<(u64, u32)>,
    interrupts: VecDeque<u64>,
}

impl Pace {
    fn new(setup: &Setup, gate: Arc<Gate>) -> Self {
        let mut pauses = setup.pauses.clone();
        if let Some((steps, micros)) = setup.trickle {
            let len = setup.stream.len as u64;
            pauses.extend((1..steps).map(|k| (len * k / steps, micros)));
        }
        pauses.sort_unstable();
        let mut interrupts = setup.interrupts.clone();
        interrupts.sort_unstable();
        Self {
            gate: Some(gate),
            yield_each_read: setup.yield_each_read,
            pauses: pauses.into(),
            interrupts: interrupts.into(),
        }
    }

    /// Called before delivering the bytes at `pos`.
    fn before(&mut self, pos: u64) -> io::Result<()> {
        if let Some(gate) = self.gate.take() {
            gate.wait();
        }
        if self.yield_each_read {
            thread::yield_now();
        }
        while let Some(&(at, micros)) = self.pauses.front() {
            if at > pos {
                break;
            }
            self.pauses.pop_front();
            thread::sleep(Duration::from_micros(micros.into()));
        }
        if self.interrupts.front().is_some_and(|&at| at <= pos) {
            self.interrupts.pop_front();
            return Err(io::Error::new(ErrorKind::Interrupted, "model interruption"));
        }
        Ok(())
    }
}

/// A [`PatternSource`], paced by offset, that checks what the filler asks of it.
struct Source {
    reads: PatternSource,
    chunk_size: Option<usize>,
    pace: Pace,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A failed assertion here panics the filler, which fails the stream: the model sees it.
        assert!(!buf.is_empty(), "the filler asked the source for 0 bytes");
        if let Some(max) = self.chunk_size {
            assert!(buf.len() <= max, "asked for {} > chunk_size", buf.len());
        }
        self.pace.before(self.reads.position())?;
        self.reads.read(buf)
    }
}

/// A chunk iterator for `spawn_chunks`, paced by offset.
struct Chunks {
    items: std::vec::IntoIter<io::Result<Vec<u8>>>,
    pos: u64,
    pace: Pace,
}

impl Iterator for Chunks {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.pace.before(self.pos) {
            return Some(Err(e));
        }
        let item = self.items.next()?;
        if let Ok(chunk) = &item {
            self.pos += chunk.len() as u64;
        }
        Some(item)
    }
}

/// Starts the cache that `setup` describes; its source waits for `gate`.
fn spawn(setup: &Setup, dir: &std::path::Path, gate: Arc<Gate>) -> StreamCache {
    let stream = &setup.stream;
    let mut builder = stream.builder(dir).thread_name("threads-model-filler");
    if let Some(len) = setup.expected_len {
        builder = builder.expected_len(len);
    }
    let pace = Pace::new(setup, gate);
    match &stream.shape {
        Shape::Reads(sizes) => builder
            .spawn(Source {
                reads: stream.reads(sizes),
                chunk_size: stream.chunk_size,
                pace,
            })
            .unwrap(),
        Shape::Chunks(sizes) => builder
            .spawn_chunks(Chunks {
                items: stream.chunk_items(sizes).into_iter(),
                pos: 0,
                pace,
            })
            .unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------
// One thread
// ---------------------------------------------------------------------------------------------

/// A reader and where the model says its cursor is.
type Cursor = (Reader, u64);

/// What a thread shares with the others.
struct Ctx {
    index: usize,
    m: Arc<Model>,
    expected_len: Option<u64>,
    mailbox: Arc<Mutex<Vec<Cursor>>>,
    progress: Arc<Vec<AtomicUsize>>,
}

/// Runs `plan` and checks every result; returns the `Bytes` it kept, for a last check after
/// every handle is gone.
fn run_thread(ctx: &Ctx, cache: StreamCache, plan: &Plan) -> Vec<(u64, Bytes)> {
    let m = &*ctx.m;
    let anchor = plan.anchor.then(|| cache.clone());
    let mut own = Some(cache);
    let mut readers: Vec<Cursor> = vec![(own.as_ref().unwrap().reader(), 0)];
    let mut kept_slices: Vec<(u64, &[u8])> = Vec::new();
    let mut kept_bytes: Vec<(u64, Bytes)> = Vec::new();
    let mut last_available = 0;

    for (i, op) in plan.ops.iter().enumerate() {
        ctx.progress[ctx.index].store(i + 1, Ordering::Relaxed);
        let what = format!("thread {} op {i} {op:?}", ctx.index);
        // Any handle this thread still has: its own, its anchor, or a reader's.
        let h: Option<StreamCache> = own
            .as_ref()
            .or(anchor.as_ref())
            .or(readers.first().map(|(r, _)| r.cache()))
            .cloned();
        let Some(h) = h else {
            // Nothing left but the mailbox.
            if let Op::TakeReader = op {
                if let Some(cursor) = ctx.mailbox.lock().unwrap().pop() {
                    readers.push(cursor);
                }
            }
            continue;
        };
        let terminal = is_terminal(&h);
        let r = if readers.is_empty() {
            None
        } else {
            match *op {
                Op::Seek(r, ..)
                | Op::Read(r, _)
                | Op::ReadExact(r, _)
                | Op::ReadToEnd(r)
                | Op::FillBuf(r, _)
                | Op::CloneReader(r)
                | Op::DropReader(r)
                | Op::GiveReader(r) => Some(r % readers.len()),
                _ => None,
            }
        };

        match *op {
            Op::ReadAt(offset, len) => {
                let mut buf = vec![0u8; len];
                let result = h.read_at(offset, &mut buf);
                check_read(m, &what, terminal, offset, len, result, &buf);
            }
            Op::ReadExactAt(offset, len) => {
                let mut buf = vec![0u8; len];
                let result = h.read_exact_at(offset, &mut buf);
                check_read_exact_at(m, &what, offset, len, result, &buf);
            }
            Op::Slice(range, keep) => match (keep, anchor.as_ref()) {
                (true, Some(anchor)) => {
                    if let Some(slice) = check_slice(m, &what, range, anchor.slice(range)) {
                        kept_slices.push((resolve(range).unwrap().0, slice));
                    }
                }
                _ => {
                    check_slice(m, &what, range, h.slice(range));
                }
            },
            Op::TrySlice(range) => check_try_slice(m, &what, terminal, range, h.try_slice(range)),
            Op::Bytes(range, keep) => {
                if let Some(bytes) = check_bytes(m, &what, terminal, &h, range) {
                    if keep {
                        kept_bytes.push((resolve(range).unwrap().0, bytes));
                    }
                }
            }
            Op::WaitFor(offset) => {
                let got = h.wait_for(offset);
                check_wait(m, &what, terminal, offset, got);
            }
            Op::WaitForTimeout(offset, timeout) => {
                let available_before = h.available();
                let duration = match timeout {
                    Timeout::Zero => Duration::ZERO,
                    Timeout::Micros(us) => Duration::from_micros(us.into()),
                    Timeout::Forever => Duration::MAX,
                };
                match h.wait_for_timeout(offset, duration) {
                    Ok(None) => {
                        assert!(!terminal, "{what}: timed out after the end was decided");
                        assert!(
                            offset > available_before,
                            "{what}: timed out, but {available_before} were there already"
                        );
                        assert!(
                            !matches!(timeout, Timeout::Forever),
                            "{what}: an endless wait timed out"
                        );
                    }
                    Ok(Some(available)) => check_wait(m, &what, terminal, offset, Ok(available)),
                    Err(e) => check_wait(m, &what, terminal, offset, Err(e)),
                }
            }
            Op::WaitComplete => check_wait_complete(m, &what, &h),
            Op::Status => {
                let status = h.status();
                check_status(m, &what, status);
                // Read after the status: it can only have moved on.
                match h.len() {
                    Some(len) => {
                        assert_eq!(m.failure, None, "{what}: a length for a failed stream");
                        assert_eq!(len, m.end(), "{what}");
                    }
                    None => assert!(
                        !matches!(status, Status::Complete { .. }),
                        "{what}: complete, then no length"
                    ),
                }
                assert_eq!(h.expected_len(), ctx.expected_len, "{what}");
                assert!(format!("{h:?}").starts_with("StreamCache"), "{what}");
            }
            Op::Seek(_, to, then_read) => {
                let Some(r) = r else { continue };
                let (reader, pos) = &mut readers[r];
                check_seek(m, &what, reader, pos, to);
                if let Some(len) = then_read {
                    // A seek from the end decided the end: the read is exact.
                    let terminal = terminal || is_terminal(reader.cache());
                    reader_read(m, &what, terminal, reader, pos, len);
                }
            }
            Op::Read(_, len) => {
                let Some(r) = r else { continue };
                let (reader, pos) = &mut readers[r];
                reader_read(m, &what, terminal, reader, pos, len);
            }
            Op::ReadExact(_, len) => {
                let Some(r) = r else { continue };
                let (reader, pos) = &mut readers[r];
                let mut buf = vec![0u8; len];
                let result = reader.read_exact(&mut buf);
                match pos.checked_add(len as u64) {
                    _ if len == 0 => result.unwrap_or_else(|e| panic!("{what}: {e}")),
                    Some(end) if end <= m.end() => {
                        result.unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert!(buf == m.bytes(*pos, end), "{what}: wrong bytes");
                        *pos = end;
                    }
                    _ => {
                        // Up to the end, then the failure or the end of the stream.
                        let at = (*pos).max(m.end());
                        let kind = if at == u64::MAX {
                            ErrorKind::UnexpectedEof // no byte can be there: nothing to wait for
                        } else {
                            m.past_end()
                        };
                        assert_eq!(kind_of(result), kind, "{what}");
                        // How far a failed `read_exact` got is std's to say; not past the end.
                        let now = reader.position();
                        assert!((*pos..=at).contains(&now), "{what}: cursor at {now}");
                        *pos = now;
                    }
                }
            }
            Op::ReadToEnd(_) => {
                let Some(r) = r else { continue };
                let (reader, pos) = &mut readers[r];
                let mut buf = Vec::new();
                let got = reader.read_to_end(&mut buf).map_err(|e| e.kind());
                let rest = if *pos < m.end() {
                    m.bytes(*pos, m.end())
                } else {
                    &[]
                };
                let expected = match m.failure {
                    Some(kind) if *pos < u64::MAX => Err(kind),
                    _ => Ok(rest.len()),
                };
                assert_eq!(got, expected, "{what}");
                assert!(buf == rest, "{what}: wrong bytes ({} of them)", buf.len());
                *pos = (*pos).max(m.end());
            }
            Op::FillBuf(_, per_mille) => {
                let Some(r) = r else { continue };
                let (reader, pos) = &mut readers[r];
                fill_buf_consume(m, &what, terminal, &h, reader, pos, per_mille);
            }
            Op::NewReader(offset) => {
                let reader = h.reader_at(offset);
                readers.push((reader, offset));
            }
            Op::CloneReader(_) => {
                let Some(r) = r else { continue };
                let cursor = readers[r].clone();
                readers.push(cursor);
            }
            Op::DropReader(_) => {
                let Some(r) = r else { continue };
                drop(readers.remove(r));
            }
            Op::GiveReader(_) => {
                let Some(r) = r else { continue };
                ctx.mailbox.lock().unwrap().push(readers[r].clone());
            }
            Op::TakeReader => {
                if let Some(cursor) = ctx.mailbox.lock().unwrap().pop() {
                    readers.push(cursor);
                }
            }
            Op::DropCache => own = None,
            Op::Pause(0) => thread::yield_now(),
            Op::Pause(micros) => thread::sleep(Duration::from_micros(micros.into())),
        }

        for (j, (reader, pos)) in readers.iter().enumerate() {
            assert_eq!(reader.position(), *pos, "reader {j} after {what}");
        }
        let available = h.available();
        assert!(available >= last_available, "{what}: the mark went down");
        assert!(available <= m.end(), "{what}: published past the end");
        last_available = available;
    }

    // Stable bytes: everything kept is still what it was.
    for (start, slice) in &kept_slices {
        let end = start + slice.len() as u64;
        assert!(
            *slice == m.bytes(*start, end),
            "thread {}: kept slice {start}..{end} changed",
            ctx.index
        );
    }
    for (start, bytes) in &kept_bytes {
        let end = start + bytes.len() as u64;
        assert!(
            bytes[..] == *m.bytes(*start, end),
            "thread {}: kept bytes {start}..{end} changed",
            ctx.index
        );
    }
    kept_bytes
}

// ---------------------------------------------------------------------------------------------
// One case: the threads, the watchdog, the last checks
// ---------------------------------------------------------------------------------------------

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

type ThreadResult = Result<Vec<(u64, Bytes)>, String>;

fn run(setup: &Setup, plans: &[Plan]) {
    let dir = spill_dir();
    let m = Arc::new(setup.stream.model());
    let gate = Arc::new(Gate::default());
    let cache = spawn(setup, dir.path(), Arc::clone(&gate));
    let n = plans.len();
    let barrier = Arc::new(Barrier::new(n + 1));
    let mailbox: Arc<Mutex<Vec<Cursor>>> = Arc::default();
    let progress: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    let (tx, rx) = mpsc::channel::<(usize, ThreadResult)>();
    for (index, plan) in plans.iter().enumerate() {
        let ctx = Ctx {
            index,
            m: Arc::clone(&m),
            expected_len: setup.expected_len,
            mailbox: Arc::clone(&mailbox),
            progress: Arc::clone(&progress),
        };
        let plan = plan.clone();
        let cache = cache.clone();
        let barrier = Arc::clone(&barrier);
        let tx = tx.clone();
        thread::Builder::new()
            .name(format!("threads-model-{index}"))
            .spawn(move || {
                barrier.wait();
                let result =
                    panic::catch_unwind(AssertUnwindSafe(|| run_thread(&ctx, cache, &plan)));
                let _ = tx.send((index, result.map_err(panic_message)));
            })
            .expect("spawn a model thread");
    }
    drop(tx);
    let main_cache = setup.main_holds.then(|| cache.clone());
    drop(cache);
    barrier.wait();
    gate.open();

    // The watchdog.
    let deadline = Instant::now() + HANG_GUARD;
    let mut results: Vec<Option<ThreadResult>> = (0..n).map(|_| None).collect();
    for _ in 0..n {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((index, result)) => results[index] = Some(result),
            Err(_) => hang(setup, plans, &progress, &results, main_cache.as_ref()),
        }
    }

    let mut kept = Vec::new();
    for (index, result) in results.into_iter().enumerate() {
        match result.expect("every thread reported") {
            Ok(bytes) => kept.extend(bytes),
            Err(message) => panic!("thread {index} failed: {message}"),
        }
    }

    // Whatever the threads did, the whole stream is right in the end.
    if let Some(cache) = &main_cache {
        check_whole_stream(&m, cache);
    }

    // Every handle gone: the `Bytes` alone keep the storage alive.
    drop(main_cache);
    drop(mailbox);
    for (start, bytes) in &kept {
        let end = start + bytes.len() as u64;
        assert!(
            bytes[..] == *m.bytes(*start, end),
            "bytes {start}..{end} changed after every handle was dropped"
        );
    }
}

/// A case did not finish: print it (past the test harness's capture) and end the process, since
/// its blocked threads cannot be stopped and would poison every case after it.
fn hang(
    setup: &Setup,
    plans: &[Plan],
    progress: &[AtomicUsize],
    results: &[Option<ThreadResult>],
    cache: Option<&StreamCache>,
) -> ! {
    let mut message = format!("\nHANG: a case did not finish within {HANG_GUARD:?}\n");
    message += &format!("setup: {setup:#?}\n");
    for (i, plan) in plans.iter().enumerate() {
        let done = results[i].is_some();
        let at = progress[i].load(Ordering::Relaxed);
        message += &format!(
            "thread {i}: {} (at op {}) {plan:?}\n",
            if done { "finished" } else { "STUCK" },
            at.saturating_sub(1)
        );
    }
    if let Some(cache) = cache {
        message += &format!("status: {:?}\n", cache.status());
    }
    let _ = io::stderr().write_all(message.as_bytes());
    std::process::exit(101);
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn setup() -> impl Strategy<Value = Setup> {
    let len = prop_oneof![0..=262_144usize, 0..5_000usize, 0..4usize];
    len.prop_flat_map(|len| {
        let memory_limit = prop_oneof![
            Just(0usize),
            0..5_000usize,
            0..=len + 10,
            0..300_000usize,
            // "Never spill". Not `usize::MAX` yet: a limit above `isize::MAX` fails the stream
            // at byte 0 (`InvalidData`, "memory map length overflows isize") instead of
            // getting the largest arena that can be mapped.
            Just(isize::MAX as usize),
        ];
        let chunk_size = prop::option::of(prop_oneof![1..16usize, 1..100_000usize]);
        let l = len as u64;
        let max_len = prop::option::weighted(
            0.25,
            prop_oneof![0..=l + 10, l.saturating_sub(2)..=l + 2, 0..5_000u64],
        );
        let expected_len =
            prop::option::weighted(0.2, prop_oneof![0..=2 * l + 10, Just(l), Just(u64::MAX)]);
        let error = prop::option::weighted(0.3, prop::sample::select(SOURCE_ERRORS.to_vec()));
        let interrupts = prop::collection::vec(0..=l, 0..4);
        let pace = (
            prop::bool::weighted(0.2),
            prop::collection::vec((0..=l, 0..3_000u32), 0..6),
            prop::option::weighted(0.7, (2..40u64, 20..1_000u32)),
        );
        (
            Just(len),
            memory_limit,
            shape(),
            chunk_size,
            max_len,
            expected_len,
            error,
            interrupts,
            pace,
            any::<bool>(),
        )
            .prop_map(
                |(
                    len,
                    memory_limit,
                    shape,
                    chunk_size,
                    max_len,
                    expected_len,
                    error,
                    interrupts,
                    (yield_each_read, pauses, trickle),
                    main_holds,
                )| Setup {
                    stream: StreamSetup {
                        len,
                        memory_limit,
                        shape,
                        chunk_size,
                        max_len,
                        error,
                    },
                    expected_len,
                    interrupts,
                    yield_each_read,
                    pauses,
                    trickle,
                    main_holds,
                },
            )
    })
}

fn timeout() -> impl Strategy<Value = Timeout> {
    prop_oneof![
        Just(Timeout::Zero),
        (0..2_000u32).prop_map(Timeout::Micros),
        Just(Timeout::Forever),
    ]
}

/// An offset inside the stream (0 for an empty one): waiting for it never waits for the end.
fn inner_offset(setup: &Setup) -> impl Strategy<Value = u64> {
    0..setup.stream.end().max(1)
}

/// A well-formed range inside the stream.
fn inner_range(setup: &Setup) -> impl Strategy<Value = Range> {
    let end = setup.stream.end();
    (inner_offset(setup), prop_oneof![0..5_000u64, 0..300_000u64]).prop_map(move |(s, width)| {
        let s = s.min(end);
        (
            Bound::Included(s),
            Bound::Excluded(s.saturating_add(width).min(end)),
        )
    })
}

/// `read_exact_at` inside the stream.
fn inner_exact(setup: &Setup) -> impl Strategy<Value = (u64, usize)> {
    let end = setup.stream.end();
    inner_offset(setup).prop_flat_map(move |o| {
        let room = usize::try_from(end.saturating_sub(o)).unwrap_or(usize::MAX);
        (Just(o), 0..=room.min(120_000))
    })
}

fn inner_seek(setup: &Setup) -> impl Strategy<Value = SeekFrom> {
    prop_oneof![
        inner_offset(setup).prop_map(SeekFrom::Start),
        (-5_000..=5_000i64).prop_map(SeekFrom::Current),
    ]
}

/// One operation. An `eager` thread only asks for bytes inside the stream (it never waits for
/// the end), so that its operations overlap the filling; the others ask for anything.
fn op(setup: &Setup, eager: bool) -> impl Strategy<Value = Op> {
    let at = || -> BoxedStrategy<u64> {
        if eager {
            inner_offset(setup).boxed()
        } else {
            setup.stream.offsets().offset().boxed()
        }
    };
    let ranges = || -> BoxedStrategy<Range> {
        if eager {
            inner_range(setup).boxed()
        } else {
            setup
                .stream
                .offsets()
                .range(prop_oneof![0..5_000u64, 0..300_000u64])
                .boxed()
        }
    };
    let exact = if eager {
        inner_exact(setup).boxed()
    } else {
        (setup.stream.offsets().offset(), read_len()).boxed()
    };
    let seeks = if eager {
        inner_seek(setup).boxed()
    } else {
        setup.stream.offsets().seek().boxed()
    };
    let reader = 0..8usize;
    let keep = || prop::bool::weighted(0.4);
    let mut arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            3,
            (at(), read_len())
                .prop_map(|(o, l)| Op::ReadAt(o, l))
                .boxed(),
        ),
        (2, exact.prop_map(|(o, l)| Op::ReadExactAt(o, l)).boxed()),
        (
            3,
            (ranges(), keep())
                .prop_map(|(r, k)| Op::Slice(r, k))
                .boxed(),
        ),
        (2, ranges().prop_map(Op::TrySlice).boxed()),
        (
            2,
            (ranges(), keep())
                .prop_map(|(r, k)| Op::Bytes(r, k))
                .boxed(),
        ),
        (1, at().prop_map(Op::WaitFor).boxed()),
        (
            1,
            (at(), timeout())
                .prop_map(|(o, t)| Op::WaitForTimeout(o, t))
                .boxed(),
        ),
        (1, Just(Op::Status).boxed()),
        (
            3,
            (reader.clone(), seeks, prop::option::of(read_len()))
                .prop_map(|(r, s, l)| Op::Seek(r, s, l))
                .boxed(),
        ),
        (
            3,
            (reader.clone(), read_len())
                .prop_map(|(r, l)| Op::Read(r, l))
                .boxed(),
        ),
        (
            1,
            (reader.clone(), read_len())
                .prop_map(|(r, l)| Op::ReadExact(r, l))
                .boxed(),
        ),
        (
            3,
            (reader.clone(), 0..=1000u16)
                .prop_map(|(r, p)| Op::FillBuf(r, p))
                .boxed(),
        ),
        (1, at().prop_map(Op::NewReader).boxed()),
        (1, reader.clone().prop_map(Op::CloneReader).boxed()),
        (1, reader.clone().prop_map(Op::DropReader).boxed()),
        (1, reader.clone().prop_map(Op::GiveReader).boxed()),
        (1, Just(Op::TakeReader).boxed()),
        (1, Just(Op::DropCache).boxed()),
        (
            1,
            prop_oneof![Just(0u32), 1..300u32]
                .prop_map(Op::Pause)
                .boxed(),
        ),
    ];
    if !eager {
        arms.push((1, Just(Op::WaitComplete).boxed()));
        arms.push((1, reader.prop_map(Op::ReadToEnd).boxed()));
    }
    prop::strategy::Union::new_weighted(arms)
}

fn plan(setup: &Setup) -> impl Strategy<Value = Plan> {
    let setup = setup.clone();
    (prop::bool::weighted(0.5), prop::bool::weighted(0.5)).prop_flat_map(move |(anchor, eager)| {
        prop::collection::vec(op(&setup, eager), 1..30).prop_map(move |ops| Plan { anchor, ops })
    })
}

fn case() -> impl Strategy<Value = (Setup, Vec<Plan>)> {
    setup().prop_flat_map(|setup| {
        let plans = prop::collection::vec(plan(&setup), 2..=4);
        (Just(setup), plans)
    })
}

proptest! {
    // 32 cases unless `PROPTEST_CASES` says otherwise.
    #![proptest_config(config(32))]

    /// Several threads, each with its own operations, agree with the model at every step.
    // Miri cannot map files, and the streams spill.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn threads_agree_with_a_vec((setup, plans) in case()) {
        run(&setup, &plans);
    }
}
