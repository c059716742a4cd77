//! Failure paths of plain sources and of the storage: source errors and panics, the `max_len`
//! cap, a buggy `Read` that claims more than its buffer, a full disk (a small tmpfs), a temp
//! dir that is missing, a file or not writable, and bad arguments. Invariants 5 (no SIGBUS) and
//! 8 (errors reach everyone, bad arguments are `InvalidInput`) of DESIGN.md. The faults of
//! resumable sources, injected at every chunk boundary, and the retry policy are in `faults.rs`.
//!
//! The tests that mount a tmpfs (a full disk; a read-only temp dir, as root) need root: they are
//! ignored unless run with `--ignored` (as `.ci/run` does), and fail when the mount fails.

mod common;

use common::faults::{
    assert_failed, join_streamer, offsets, streamer, Open, Opener, TmpfsMount, QUICK,
};
use common::offsets::{assert_pattern, byte_at, pattern, pieces, temp_dir, KIB, MIB};
use common::source::{everything, one_more, Fault, PatternSource};
use common::{no_hang, outcome, wait_for, HANG_GUARD};
use std::io::{self, BufRead, ErrorKind, Read, Seek, SeekFrom};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use streamcache::{Status, StreamCache};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// What a [`ChanSource`] does next.
enum Step {
    Data(Vec<u8>),
    Fail(ErrorKind, &'static str),
}

/// A `Read` source driven by the test through a channel: it blocks until told what to return.
/// A dropped sender is the end of the stream.
struct ChanSource {
    rx: Receiver<Step>,
    pending: Vec<u8>,
    taken: usize,
}

impl ChanSource {
    fn new() -> (Sender<Step>, Self) {
        let (tx, rx) = mpsc::channel();
        let source = Self {
            rx,
            pending: Vec::new(),
            taken: 0,
        };
        (tx, source)
    }
}

impl Read for ChanSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.taken == self.pending.len() {
            match self.rx.recv() {
                Ok(Step::Data(data)) => {
                    self.pending = data;
                    self.taken = 0;
                }
                Ok(Step::Fail(kind, message)) => return Err(io::Error::new(kind, message)),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.taken);
        buf[..n].copy_from_slice(&self.pending[self.taken..self.taken + n]);
        self.taken += n;
        Ok(n)
    }
}

/// Sends the pattern `[start, end)` in pieces of `piece` bytes.
fn feed(tx: &Sender<Step>, start: u64, end: u64, piece: u64) {
    for chunk in pieces(start, end, piece) {
        tx.send(Step::Data(chunk)).expect("the source is alive");
    }
}

// ---------------------------------------------------------------------------------------------
// A source error at offset N reaches every reader past N (invariant 8)
// ---------------------------------------------------------------------------------------------

const RESET_MESSAGE: &str = "custom message: peer hung up";

/// Asserts `result` is the source's error: its kind and its message.
#[track_caller]
fn assert_source_error<T: std::fmt::Debug>(result: io::Result<T>, what: &str) {
    match result {
        Ok(v) => panic!("{what}: expected the source's error, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{what}: kind of {e}");
            assert!(
                e.to_string().contains(RESET_MESSAGE),
                "{what}: the message {e:?} does not contain the source's {RESET_MESSAGE:?}"
            );
        }
    }
}

type ReaderJob = Box<dyn FnOnce(&StreamCache) -> io::Result<()> + Send>;

/// Readers that all need a byte at or past `n`, each in its own way. `Ok` would be a bug.
fn readers_past(n: u64) -> Vec<(&'static str, ReaderJob)> {
    let jobs: Vec<(&'static str, ReaderJob)> = vec![
        (
            "wait_for(n + 1)",
            Box::new(move |c| c.wait_for(n + 1).map(drop)),
        ),
        (
            "wait_for(n + 1 MiB)",
            Box::new(move |c| c.wait_for(n + MIB).map(drop)),
        ),
        ("wait_complete", Box::new(|c| c.wait_complete().map(drop))),
        (
            "wait_for_timeout(n + 1)",
            Box::new(move |c| c.wait_for_timeout(n + 1, HANG_GUARD).map(drop)),
        ),
        (
            "read_at(n)",
            Box::new(move |c| c.read_at(n, &mut [0; 1]).map(drop)),
        ),
        (
            "read_at(n + 4 KiB)",
            Box::new(move |c| c.read_at(n + 4 * KIB, &mut [0; 4096]).map(drop)),
        ),
        (
            "read_exact_at(straddling n)",
            Box::new(move |c| c.read_exact_at(n.saturating_sub(10), &mut [0; 20])),
        ),
        (
            "slice(straddling n)",
            Box::new(move |c| c.slice(n.saturating_sub(5)..n + 5).map(drop)),
        ),
        ("slice(..)", Box::new(|c| c.slice(..).map(drop))),
        ("bytes(n..=n)", Box::new(move |c| c.bytes(n..=n).map(drop))),
        (
            "Reader::read at n",
            Box::new(move |c| c.reader_at(n).read(&mut [0; 100]).map(drop)),
        ),
        (
            "Reader::fill_buf at n",
            Box::new(move |c| c.reader_at(n).fill_buf().map(drop)),
        ),
        (
            "Reader::read_to_end from 0",
            Box::new(move |c| {
                let mut all = Vec::new();
                let result = c.reader().read_to_end(&mut all);
                // Everything before the failure was delivered, and correctly.
                assert_eq!(
                    all.len() as u64,
                    n,
                    "read_to_end delivered the bytes before n"
                );
                assert_pattern(0, &all, "read_to_end before the failure");
                result.map(drop)
            }),
        ),
        (
            "Reader::seek(End(0))",
            Box::new(|c| c.reader().seek(SeekFrom::End(0)).map(drop)),
        ),
    ];
    jobs
}

/// Delivers `[0, n)`, parks many readers that need bytes at or past `n`, then fails the source
/// with `ConnectionReset`: each reader gets that error, and `[0, n)` stays readable.
fn source_error_reaches_every_reader(memory_limit: usize, n: u64) {
    let dir = temp_dir("error");
    let (tx, source) = ChanSource::new();
    let cache = StreamCache::builder()
        .memory_limit(memory_limit)
        .temp_dir(dir.path())
        .chunk_size(64 << 10)
        .spawn(source)
        .unwrap();
    feed(&tx, 0, n, 50_000);
    assert_eq!(wait_for(&cache, n).unwrap(), n);
    assert_eq!(cache.status(), Status::Filling { available: n });

    // Park every reader before the error happens.
    let jobs = readers_past(n);
    let count = jobs.len();
    let started = Arc::new(Barrier::new(count + 1));
    let (done_tx, done_rx) = mpsc::channel();
    for (name, job) in jobs {
        let (cache, started, done_tx) = (cache.clone(), started.clone(), done_tx.clone());
        thread::spawn(move || {
            started.wait();
            let _ = done_tx.send((name, job(&cache)));
        });
    }
    started.wait();
    // Give them time to park. Not needed for correctness: the outcome must be the same whether
    // a reader parks before the error or comes after it.
    thread::sleep(Duration::from_millis(100));
    // None of them has its bytes yet, so none may have returned.
    if let Ok((name, result)) = done_rx.try_recv() {
        panic!("{name} returned {result:?} before the source failed");
    }

    tx.send(Step::Fail(ErrorKind::ConnectionReset, RESET_MESSAGE))
        .unwrap();
    for _ in 0..count {
        let (name, result) = done_rx
            .recv_timeout(HANG_GUARD)
            .expect("a reader hung (or panicked) after the source failed");
        assert_source_error(result, name);
    }

    // The stream's state.
    assert_eq!(
        cache.status(),
        Status::Failed {
            available: n,
            error: ErrorKind::ConnectionReset
        }
    );
    assert_eq!(cache.len(), None);
    assert!(!cache.is_complete());
    assert_eq!(cache.available(), n);

    // Everything before n is readable, through every path.
    assert_pattern(0, cache.slice(..n).unwrap(), "slice(..n)");
    assert_pattern(0, &cache.bytes(..n).unwrap(), "bytes(..n)");
    assert_eq!(cache.try_slice(..n).map(<[u8]>::len), Some(n as usize));
    assert_eq!(cache.try_slice(..n + 1), None);
    if n > 0 {
        let mut one = [0u8; 1];
        assert_eq!(cache.read_at(n - 1, &mut one).unwrap(), 1);
        assert_eq!(one[0], byte_at(n - 1));
        // A read that starts before n gets what there is, not an error.
        let start = n.saturating_sub(10);
        let mut buf = [0u8; 100];
        let got = cache.read_at(start, &mut buf).unwrap();
        assert_eq!(got as u64, n - start);
        assert_pattern(start, &buf[..got], "read_at straddling n");
        let mut reader = cache.reader_at(start);
        let got = reader.fill_buf().unwrap();
        assert_eq!(got.len() as u64, n - start);
        assert_pattern(start, got, "fill_buf before n");
    }

    // wait_for: Ok(n) at or below n, the error above.
    for o in [0, n / 2, n] {
        assert_eq!(cache.wait_for(o).unwrap(), n, "wait_for({o})");
        assert_eq!(
            cache.wait_for_timeout(o, HANG_GUARD).unwrap(),
            Some(n),
            "wait_for_timeout({o})"
        );
    }
    for o in [n + 1, n + MIB, u64::MAX] {
        assert_source_error(
            cache.wait_for(o),
            &format!("wait_for({o}) after the failure"),
        );
    }

    // Readers that come after the failure get the same error, without waiting.
    for (name, job) in readers_past(n) {
        assert_source_error(job(&cache), &format!("{name} after the failure"));
    }
}

/// The failure offset lies in the arena.
#[test]
fn source_error_in_the_arena_reaches_every_reader() {
    // Shorter under miri, which takes ~250 µs per generated or checked byte.
    source_error_reaches_every_reader(1 << 20, if cfg!(miri) { 1_001 } else { 300_001 });
}

/// The failure offset lies in the spill file (the arena is 64 KiB).
#[test]
// The failure lies in the spill file, which miri cannot map.
#[cfg_attr(miri, ignore = "spills to a file mapping")]
fn source_error_in_the_spill_file_reaches_every_reader() {
    source_error_reaches_every_reader(64 << 10, MIB + 12_345);
}

/// The source fails before its first byte, and with no arena at all.
#[test]
fn source_error_at_offset_zero_reaches_every_reader() {
    source_error_reaches_every_reader(0, 0);
}

// ---------------------------------------------------------------------------------------------
// A panicking source
// ---------------------------------------------------------------------------------------------

/// A source that, before its first read, waits until the test opens its gate (drops the
/// sender): readers can park before anything happens.
struct Gated {
    gate: Option<Receiver<()>>,
    inner: PatternSource,
}

impl Read for Gated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.recv();
        }
        self.inner.read(buf)
    }
}

/// A source that panics on its third read fails the stream with `Other` and the panic's
/// message: every reader past the bytes it delivered gets that error (the ones parked before
/// the panic too; none hangs), the bytes before stay readable.
#[test]
fn a_panicking_source_fails_the_stream() {
    // Shorter under miri, which takes ~250 µs per generated or checked byte.
    const PIECE: u64 = if cfg!(miri) { 512 } else { 16 << 10 };
    const AT: u64 = 2 * PIECE;
    let dir = temp_dir("panic");
    // All in the arena; the arena ending in the second read (the third is the first one in the
    // spill file); no arena. Only the first under miri, which cannot map the spill file.
    let limits: &[u64] = if cfg!(miri) {
        &[MIB]
    } else {
        &[MIB, PIECE * 3 / 2, 0]
    };
    for &memory_limit in limits {
        let what = format!("panic on the third read (memory_limit {memory_limit})");
        let message = format!("source: injected panic at byte {AT}");
        let (gate, closed) = mpsc::channel();
        let cache = StreamCache::builder()
            .memory_limit(memory_limit as usize)
            .temp_dir(dir.path())
            .chunk_size(PIECE as usize)
            .spawn(Gated {
                gate: Some(closed),
                inner: PatternSource::new(MIB)
                    .piece(PIECE as usize)
                    .fault(AT, Fault::Panic),
            })
            .unwrap();

        // Park readers first, at and past where the panic will happen.
        let parked: Vec<_> = [AT + 1, AT + PIECE, u64::MAX]
            .into_iter()
            .map(|target| {
                let cache = cache.clone();
                thread::spawn(move || cache.wait_for(target).map(drop))
            })
            .chain([{
                let cache = cache.clone();
                thread::spawn(move || cache.slice(..).map(drop))
            }])
            .collect();
        thread::sleep(Duration::from_millis(20));
        assert!(
            parked.iter().all(|t| !t.is_finished()),
            "{what}: a reader returned before the source read anything"
        );
        drop(gate);

        for t in parked {
            let result = no_hang("a parked reader", move || t.join().unwrap());
            let e = result.expect_err("a reader past the panic");
            assert_eq!(e.kind(), ErrorKind::Other, "{what}: {e}");
            assert!(
                e.to_string().contains(&message),
                "{what}: the error {e:?} does not carry the panic's message"
            );
        }
        let err = assert_failed(&cache, AT, ErrorKind::Other, &message, &what);
        assert!(err.to_string().contains("panicked"), "{what}: {err}");
    }
}

/// A chunk iterator that panics on its third item fails the stream in the same way.
#[test]
// The third item lies in the spill file, which miri cannot map.
#[cfg_attr(miri, ignore = "spills to a file mapping")]
fn a_chunk_iterator_panicking_on_its_third_item() {
    let mut n = 0u64;
    let chunks = std::iter::from_fn(move || {
        n += 1;
        assert!(n < 3, "chunk iterator: injected panic on item 3");
        Some(Ok::<_, io::Error>(pattern((n - 1) * 1000, n * 1000)))
    });
    let cache = StreamCache::builder()
        .memory_limit(1500)
        .spawn_chunks(chunks)
        .unwrap();
    assert_failed(
        &cache,
        2000,
        ErrorKind::Other,
        "chunk iterator: injected panic on item 3",
        "chunk iterator panic",
    );
}

// ---------------------------------------------------------------------------------------------
// max_len
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum SourceKind {
    Read,
    Chunks,
}

/// A cache over `len` pattern bytes, capped at `cap`.
fn capped(kind: SourceKind, memory_limit: usize, cap: u64, len: u64, dir: &Path) -> StreamCache {
    let builder = StreamCache::builder()
        .memory_limit(memory_limit)
        .temp_dir(dir)
        .max_len(cap)
        .chunk_size(48 << 10);
    match kind {
        SourceKind::Read => builder.spawn(PatternSource::new(len).piece(40_000)),
        SourceKind::Chunks => builder.spawn_chunks(pieces(0, len, 30_000).map(io::Result::Ok)),
    }
    .unwrap()
}

/// Streams longer than the cap fail with `StorageFull` at the cap, every byte below it
/// readable; streams of exactly the cap or shorter complete.
fn check_cap(kind: SourceKind, memory_limit: usize, cap: u64) {
    let dir = temp_dir("cap");
    // Far past the cap: less far under miri, which takes ~250 µs per generated byte.
    let far = if cfg!(miri) { KIB } else { MIB };
    for len in [cap + 1, cap + far + 3] {
        let what = format!("{kind:?} source of {len} bytes, max_len {cap}");
        let cache = capped(kind, memory_limit, cap, len, dir.path());
        let err = wait_for(&cache, u64::MAX).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull, "{what}: {err}");
        assert_eq!(
            cache.status(),
            Status::Failed {
                available: cap,
                error: ErrorKind::StorageFull
            },
            "{what}"
        );
        assert_eq!(cache.len(), None, "{what}");
        assert_eq!(cache.wait_for(cap).unwrap(), cap, "{what}");
        assert_pattern(0, cache.slice(..cap).unwrap(), &what);
        let err = cache.read_at(cap, &mut [0; 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull, "{what}: read_at(cap)");
        let err = cache.slice(..cap + 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull, "{what}: slice(..=cap)");
    }
    for len in [cap, cap.saturating_sub(1)] {
        let what = format!("{kind:?} source of {len} bytes, max_len {cap}");
        let cache = capped(kind, memory_limit, cap, len, dir.path());
        assert_eq!(wait_for(&cache, u64::MAX).unwrap(), len, "{what}");
        assert_eq!(cache.status(), Status::Complete { len }, "{what}");
        assert_pattern(0, cache.slice(..).unwrap(), &what);
    }
}

#[test]
fn max_len_inside_the_arena() {
    // Shorter under miri, which takes ~250 µs per generated or checked byte.
    let cap = if cfg!(miri) { 1_007 } else { 300_007 };
    check_cap(SourceKind::Read, 1 << 20, cap);
    check_cap(SourceKind::Chunks, 1 << 20, cap);
}

#[test]
// The cap lies in the spill file, which miri cannot map.
#[cfg_attr(miri, ignore = "spills to a file mapping")]
fn max_len_inside_the_spill_file() {
    check_cap(SourceKind::Read, 64 << 10, MIB + 3);
    check_cap(SourceKind::Chunks, 64 << 10, MIB + 3);
}

#[test]
fn max_len_zero() {
    check_cap(SourceKind::Read, 1 << 20, 0);
    check_cap(SourceKind::Chunks, 0, 0);
}

/// Readers parked past the cap are woken with `StorageFull`.
#[test]
fn max_len_wakes_readers_parked_past_the_cap() {
    // Shorter under miri, which takes ~250 µs per generated or checked byte.
    const CAP: u64 = if cfg!(miri) { 1_000 } else { 200_000 };
    let (tx, source) = ChanSource::new();
    let cache = StreamCache::builder().max_len(CAP).spawn(source).unwrap();
    let parked: Vec<_> = [CAP + 1, CAP + 10_000, u64::MAX]
        .into_iter()
        .map(|target| {
            let cache = cache.clone();
            thread::spawn(move || cache.wait_for(target))
        })
        .collect();
    // The filler drops the source (and its receiver) once it is past the cap, so a piece sent
    // after that would fail: send up to the cap exactly (allowed), then one piece across it.
    // Shorter under miri and the sanitizers, where every byte is slow.
    let piece = if cfg!(miri) || cfg!(streamcache_sanitizer) {
        CAP / 2
    } else {
        CAP / 10
    };
    feed(&tx, 0, CAP, piece);
    feed(&tx, CAP, CAP + CAP / 4, CAP / 4);
    for t in parked {
        let result = no_hang("a reader parked past the cap", move || t.join().unwrap());
        assert_eq!(result.unwrap_err().kind(), ErrorKind::StorageFull);
    }
    assert_pattern(0, cache.slice(..CAP).unwrap(), "bytes up to the cap");
}

// ---------------------------------------------------------------------------------------------
// A temp dir that is missing or not writable
// ---------------------------------------------------------------------------------------------

/// How the test source is made.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Plain,
    Resumable,
}

/// The bytes that fit in memory stay readable; readers past them get an error naming `dir` as
/// it was given; a resumable source is not re-opened for a storage error.
fn bad_temp_dir(dir: &Path, memory_limit: u64, kind: Kind) {
    const LEN: u64 = 300 * KIB;
    let given = dir.display().to_string();
    let what = format!("temp_dir {given} ({kind:?}, memory_limit {memory_limit})");
    let builder = StreamCache::builder()
        .memory_limit(memory_limit as usize)
        .chunk_size(10_000)
        .temp_dir(dir);
    let (cache, log) = match kind {
        Kind::Plain => (
            builder.spawn(PatternSource::new(LEN).piece(7000)).unwrap(),
            None,
        ),
        Kind::Resumable => {
            let opener = Opener::new(LEN, &[], &[]).piece(7000);
            let log = opener.log();
            (
                opener.spawn(builder.expected_len(LEN).retry_backoff(QUICK)),
                Some(log),
            )
        }
    };
    let reader = streamer(&cache, "streaming reader");
    let err = outcome(&cache).expect_err(&what);
    let Status::Failed { available, error } = cache.status() else {
        panic!("{what}: expected Failed, got {:?}", cache.status());
    };
    assert_eq!(error, err.kind(), "{what}");
    assert_eq!(
        available, memory_limit,
        "{what}: every byte in memory is kept"
    );
    let err = assert_failed(&cache, memory_limit, err.kind(), &given, &what);
    assert!(
        !matches!(err.kind(), ErrorKind::Other),
        "{what}: the OS error's kind is kept: {err:?}"
    );
    let (stopped, result) = join_streamer(reader, &what);
    assert_eq!(stopped, memory_limit, "{what}");
    assert!(result.unwrap_err().to_string().contains(&given), "{what}");
    if let Some(log) = log {
        assert_eq!(
            offsets(&log),
            vec![0],
            "{what}: a storage error is not retried"
        );
    }
}

#[test]
// Tries to create the spill file (tempfile_in uses O_TMPFILE), which miri does not support.
#[cfg_attr(miri, ignore = "creates the spill file")]
fn missing_temp_dir() {
    let parent = temp_dir("missing");
    let missing = parent.path().join("does-not-exist").join("spill");
    for kind in [Kind::Plain, Kind::Resumable] {
        for memory_limit in [64 * KIB, 0] {
            bad_temp_dir(&missing, memory_limit, kind);
        }
    }
}

#[test]
// Tries to create the spill file (tempfile_in uses O_TMPFILE), which miri does not support.
#[cfg_attr(miri, ignore = "creates the spill file")]
fn missing_relative_temp_dir_is_named_as_given() {
    // Integration tests run in the package root; this relative path does not exist there.
    let relative = PathBuf::from(format!(
        "streamcache-failures-missing-{}/spill",
        std::process::id()
    ));
    assert!(!relative.exists());
    bad_temp_dir(&relative, 64 * KIB, Kind::Plain);
    bad_temp_dir(&relative, 0, Kind::Resumable);
}

#[test]
// Tries to create the spill file (tempfile_in uses O_TMPFILE), which miri does not support.
#[cfg_attr(miri, ignore = "creates the spill file")]
fn temp_dir_that_is_a_file() {
    let parent = temp_dir("file");
    let file = parent.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    for kind in [Kind::Plain, Kind::Resumable] {
        bad_temp_dir(&file, 64 * KIB, kind);
    }
}

#[test]
// As root (CI), where permissions do not stop a write, this mounts a read-only tmpfs; without
// root, a directory without write permission does. Never skipped when run.
#[ignore = "needs root: mounts a tmpfs"]
#[cfg_attr(miri, ignore = "creates the spill file")]
fn temp_dir_that_is_not_writable() {
    let parent = temp_dir("readonly");
    let dir = parent.path().join("ro");
    std::fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o555);
    let mount = if tempfile::tempfile_in(&dir).is_ok() {
        // Writable anyway: we are root.
        Some(TmpfsMount::new("size=1m,ro"))
    } else {
        None
    };
    let unwritable = mount.as_ref().map_or(dir.as_path(), TmpfsMount::path);
    assert!(
        tempfile::tempfile_in(unwritable).is_err(),
        "{} is writable",
        unwritable.display()
    );
    for kind in [Kind::Plain, Kind::Resumable] {
        for memory_limit in [64 * KIB, 0] {
            bad_temp_dir(unwritable, memory_limit, kind);
        }
    }
    drop(mount);
    set_mode(&dir, 0o755);
}

#[cfg(unix)]
fn set_mode(dir: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
fn set_mode(dir: &Path, mode: u32) {
    let mut permissions = std::fs::metadata(dir).unwrap().permissions();
    permissions.set_readonly(mode & 0o200 == 0);
    std::fs::set_permissions(dir, permissions).unwrap();
}

// ---------------------------------------------------------------------------------------------
// A full disk mid-spill: an error, never SIGBUS (invariant 5)
// ---------------------------------------------------------------------------------------------

/// A 16 MiB stream into a 4 MiB tmpfs: `StorageFull` naming the directory (a SIGBUS would kill
/// the test process), the bytes that fit readable; `breaks` for a resumable source, which must
/// not be re-opened for the full disk.
fn full_disk(memory_limit: u64, kind: Kind, breaks: &[Open]) {
    const LEN: u64 = 16 * MIB;
    let mount = TmpfsMount::new("size=4m");
    let given = mount.path().display().to_string();
    let what = format!("full disk ({kind:?}, memory_limit {memory_limit})");
    let builder = StreamCache::builder()
        .memory_limit(memory_limit as usize)
        .temp_dir(mount.path());
    let (cache, log) = match kind {
        Kind::Plain => (
            builder
                .spawn(PatternSource::new(LEN).piece(50_000))
                .unwrap(),
            None,
        ),
        Kind::Resumable => {
            let opener = Opener::new(LEN, breaks, &[]).piece(50_000);
            let log = opener.log();
            (
                opener.spawn(builder.expected_len(LEN).retries(1).retry_backoff(QUICK)),
                Some(log),
            )
        }
    };
    let reader = streamer(&cache, "streaming reader");
    let err = outcome(&cache).expect_err(&what);
    assert_eq!(err.kind(), ErrorKind::StorageFull, "{what}: {err}");
    let Status::Failed { available, .. } = cache.status() else {
        panic!("{what}: expected Failed, got {:?}", cache.status());
    };
    assert!(
        available >= memory_limit.max(3 * MIB) && available <= 4 * MIB,
        "{what}: {available} bytes in a 4 MiB tmpfs"
    );
    assert_failed(&cache, available, ErrorKind::StorageFull, &given, &what);
    let (stopped, result) = join_streamer(reader, &what);
    assert_eq!(
        stopped, available,
        "{what}: the reader got every byte that fit"
    );
    assert_eq!(result.unwrap_err().kind(), ErrorKind::StorageFull, "{what}");
    if let Some(log) = log {
        let mut expected = vec![0];
        for step in breaks {
            if let Open::At(at, _) = step {
                expected.push(*at);
            }
        }
        assert_eq!(
            offsets(&log),
            expected,
            "{what}: a full disk is not retried"
        );
    }
    drop(cache);
    drop(mount);
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
// Mounts a tmpfs (spawns `mount`) and spills to it: neither works under miri.
#[cfg_attr(miri, ignore = "mounts a tmpfs")]
fn full_disk_mid_spill_is_storage_full_not_sigbus() {
    full_disk(0, Kind::Plain, &[]);
    full_disk(MIB, Kind::Plain, &[]);
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
// Mounts a tmpfs (spawns `mount`) and spills to it: neither works under miri.
#[cfg_attr(miri, ignore = "mounts a tmpfs")]
fn full_disk_with_a_resumable_source() {
    let breaks = [
        Open::At(MIB + 12_345, Fault::Error(ErrorKind::ConnectionReset)),
        Open::At(3 * MIB - 1, Fault::End),
    ];
    full_disk(0, Kind::Resumable, &breaks);
    full_disk(MIB / 2, Kind::Resumable, &breaks);
    full_disk(MIB, Kind::Resumable, &[]);
}

// ---------------------------------------------------------------------------------------------
// Bad arguments: InvalidInput, never a panic, never a wait
// ---------------------------------------------------------------------------------------------

/// A range as its two bounds, the way a caller can write any range.
type Bounds = (Bound<u64>, Bound<u64>);

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: io::Result<T>, what: &str) {
    match result {
        Ok(v) => panic!("{what}: expected InvalidInput, got Ok({v:?})"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}"),
    }
}

/// On a stream that is still filling (and never ends during the test), bad arguments are
/// refused at once: none of these calls may wait for bytes.
#[test]
fn bad_arguments_are_invalid_input_without_waiting() {
    let (tx, source) = ChanSource::new();
    let cache = StreamCache::builder().spawn(source).unwrap();
    feed(&tx, 0, 1000, 1000);
    assert_eq!(wait_for(&cache, 1000).unwrap(), 1000);

    no_hang("bad arguments", move || {
        // Held in variables so the ranges are inverted at run time, as a caller's would be.
        let (hi, lo) = (10u64, 5u64);
        let ranges: [(&str, Bounds); 6] = [
            ("10..5", (Bound::Included(hi), Bound::Excluded(lo))),
            ("10..=5", (Bound::Included(hi), Bound::Included(lo))),
            ("1001..1000", (Bound::Included(1001), Bound::Excluded(1000))),
            (
                "u64::MAX..0",
                (Bound::Included(u64::MAX), Bound::Excluded(0)),
            ),
            (
                "0..=u64::MAX",
                (Bound::Included(0), Bound::Included(u64::MAX)),
            ),
            (
                "(u64::MAX)..",
                (Bound::Excluded(u64::MAX), Bound::Unbounded),
            ),
        ];
        for (name, range) in ranges {
            assert_invalid(cache.slice(range), &format!("slice({name})"));
            assert_invalid(cache.bytes(range), &format!("bytes({name})"));
            assert_eq!(cache.try_slice(range), None, "try_slice({name})");
        }

        // offset + len overflowing u64.
        let mut ten = [0u8; 10];
        for offset in [u64::MAX, u64::MAX - 9, u64::MAX - 5] {
            assert_invalid(
                cache.read_at(offset, &mut ten),
                &format!("read_at({offset})"),
            );
            assert_invalid(
                cache.read_exact_at(offset, &mut ten),
                &format!("read_exact_at({offset})"),
            );
        }
        assert_invalid(cache.read_at(u64::MAX, &mut [0; 1]), "read_at(u64::MAX, 1)");
        // An empty read asks for nothing: Ok(0), even at u64::MAX.
        assert_eq!(cache.read_at(u64::MAX, &mut []).unwrap(), 0);

        // Seeking before 0 or past u64::MAX; a refused seek leaves the cursor where it was.
        let mut reader = cache.reader();
        assert_invalid(reader.seek(SeekFrom::Current(-1)), "seek(Current(-1)) at 0");
        assert_invalid(
            reader.seek(SeekFrom::Current(i64::MIN)),
            "seek(Current(MIN))",
        );
        assert_eq!(reader.position(), 0);
        reader.seek(SeekFrom::Start(5)).unwrap();
        assert_invalid(reader.seek(SeekFrom::Current(-6)), "seek(Current(-6)) at 5");
        assert_eq!(reader.position(), 5);
        assert_eq!(reader.seek(SeekFrom::Start(u64::MAX)).unwrap(), u64::MAX);
        assert_invalid(reader.seek(SeekFrom::Current(1)), "seek(Current(1)) at MAX");
        assert_invalid(
            reader.seek(SeekFrom::Current(i64::MAX)),
            "seek(Current(i64::MAX))",
        );
        assert_eq!(reader.position(), u64::MAX);
        // The largest step back is fine from the top.
        assert_eq!(
            reader.seek(SeekFrom::Current(i64::MIN)).unwrap(),
            u64::MAX - (1 << 63)
        );

        // Nothing above changed what is readable.
        assert_pattern(0, cache.slice(..1000).unwrap(), "bytes after bad arguments");
        drop(tx);
    });
}

/// On a complete stream: seeks from the end before 0, huge well-formed ranges past the end and
/// reads at the very top of the offset space.
#[test]
fn bad_arguments_on_a_complete_stream() {
    const LEN: u64 = 100;
    let cache = StreamCache::new(PatternSource::new(LEN).piece(64)).unwrap();
    assert_eq!(wait_for(&cache, u64::MAX).unwrap(), LEN);

    let mut reader = cache.reader_at(7);
    assert_invalid(reader.seek(SeekFrom::End(i64::MIN)), "seek(End(i64::MIN))");
    assert_invalid(
        reader.seek(SeekFrom::End(-(LEN as i64) - 1)),
        "seek(End(-101))",
    );
    assert_eq!(reader.position(), 7);
    assert_eq!(reader.seek(SeekFrom::End(-(LEN as i64))).unwrap(), 0);

    // Ranges the size of the address space are well formed: past the end, not a panic or an
    // allocation.
    let huge = usize::MAX as u64;
    for (name, result) in [
        ("slice(0..usize::MAX)", cache.slice(0..huge).map(drop)),
        (
            "slice(1..=usize::MAX - 1)",
            cache.slice(1..=huge - 1).map(drop),
        ),
        (
            "slice(u64::MAX - 1..u64::MAX)",
            cache.slice(u64::MAX - 1..u64::MAX).map(drop),
        ),
        ("bytes(0..u64::MAX)", cache.bytes(0..u64::MAX).map(drop)),
        ("slice(u64::MAX..)", cache.slice(u64::MAX..).map(drop)),
    ] {
        let e = result.expect_err(name);
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{name}: {e}");
    }
    assert_eq!(cache.try_slice(0..huge), None);
    assert_eq!(cache.try_slice(u64::MAX..), None);

    // At the top of the offset space: nothing to read, no overflow.
    assert_eq!(cache.read_at(u64::MAX - 1, &mut [0; 1]).unwrap(), 0);
    let mut top = cache.reader_at(u64::MAX);
    assert_eq!(top.read(&mut [0; 16]).unwrap(), 0);
    assert_eq!(top.fill_buf().unwrap(), b"");
    top.consume(10);
    assert_eq!(top.position(), u64::MAX);
    let mut top = cache.reader_at(u64::MAX - 1);
    assert_eq!(top.read(&mut [0; 16]).unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// A buggy Read that claims more than the buffer
// ---------------------------------------------------------------------------------------------

/// The cache refuses the impossible count with `InvalidData` instead of reading or publishing
/// memory past the buffer; the bytes before stay correct and readable.
#[test]
fn a_read_claiming_more_than_its_buffer_is_invalid_data() {
    // Shorter under miri, which takes ~250 µs per generated byte and cannot map the spill file.
    let (at, piece, limits): (u64, usize, &[usize]) = if cfg!(miri) {
        (2_000, 100, &[MIB as usize])
    } else {
        // In the arena; in the spill file after an arena; with no arena.
        (50_000, 5000, &[MIB as usize, 30_000, 0])
    };
    let dir = temp_dir("overclaim");
    for &memory_limit in limits {
        for (name, claim) in [
            ("len + 1", one_more as fn(usize) -> usize),
            ("usize::MAX", everything),
        ] {
            let what = format!("plain overclaim {name} (memory_limit {memory_limit})");
            let cache = StreamCache::builder()
                .memory_limit(memory_limit)
                .temp_dir(dir.path())
                .chunk_size(8000)
                .spawn(
                    PatternSource::new(MIB)
                        .piece(piece)
                        .fault(at, Fault::Overclaim(claim)),
                )
                .unwrap();
            assert_failed(&cache, at, ErrorKind::InvalidData, "", &what);
        }
    }
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
#[cfg_attr(miri, ignore = "mounts a tmpfs")]
fn a_ranged_source_longer_than_the_disk_is_storage_full_at_spawn() {
    let mount = TmpfsMount::new("size=4m");
    let open = |r: std::ops::Range<u64>| Ok(std::io::repeat(1).take(r.end - r.start));
    let error = StreamCache::builder()
        .memory_limit(0)
        .temp_dir(mount.path())
        .spawn_ranged(8 * MIB, open)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StorageFull, "{error}");
    assert!(
        error
            .to_string()
            .contains(&mount.path().display().to_string()),
        "{error}"
    );
    // What fits is reserved whole at spawn, and then cannot run out.
    let cache = StreamCache::builder()
        .memory_limit(0)
        .temp_dir(mount.path())
        .spawn_ranged(2 * MIB, open)
        .unwrap();
    assert_eq!(cache.slice(..).unwrap(), vec![1; 2 * MIB as usize]);
}
