//! Failure paths: source errors and panics, the `max_len` cap, a full disk, a missing temp dir,
//! bad arguments and a buggy `Read`. Invariants 5 (no SIGBUS) and 8 (errors reach everyone,
//! bad arguments are `InvalidInput`) of DESIGN.md.

mod common;

use common::offsets::{assert_pattern, byte_at, fill_pattern, pieces, temp_dir, KIB, MIB};
use common::{no_hang, wait_for, LONG_HANG_GUARD as HANG_GUARD};
use std::io::{self, BufRead, ErrorKind, Read, Seek, SeekFrom};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use streamcache::{Status, StreamCache};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `len` bytes of the pattern, in reads of at most `piece` bytes (so reads do not line up with
/// chunk or arena boundaries).
struct PatternReader {
    pos: u64,
    len: u64,
    piece: usize,
}

impl PatternReader {
    fn new(len: u64, piece: usize) -> Self {
        Self { pos: 0, len, piece }
    }
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(self.piece)
            .min((self.len - self.pos) as usize);
        fill_pattern(self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

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

/// Returns a full buffer of the pattern per read, each read waiting for a go from the test;
/// panics on its third read.
struct PanicsOnThirdRead {
    go: Receiver<()>,
    pos: u64,
    reads: u32,
}

impl Read for PanicsOnThirdRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.go.recv().is_err() {
            return Ok(0);
        }
        self.reads += 1;
        if self.reads == 3 {
            panic!("the source exploded on its third read");
        }
        fill_pattern(self.pos, buf);
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
}

/// A source that panics fails the stream: every reader past the bytes it delivered gets an
/// error (none hangs), the bytes before stay readable.
#[test]
fn a_panicking_source_fails_the_stream() {
    // Shorter under miri, which takes ~250 µs per generated or checked byte.
    const CHUNK: u64 = if cfg!(miri) { 512 } else { 16 << 10 };
    let (go, rx) = mpsc::channel();
    let source = PanicsOnThirdRead {
        go: rx,
        pos: 0,
        reads: 0,
    };
    let cache = StreamCache::builder()
        .chunk_size(CHUNK as usize)
        .spawn(source)
        .unwrap();

    // Park readers first, at and past where the panic will happen.
    let parked: Vec<_> = [CHUNK * 2 + 1, CHUNK * 3, u64::MAX]
        .into_iter()
        .map(|target| {
            let cache = cache.clone();
            thread::spawn(move || cache.wait_for(target))
        })
        .collect();
    let slicer = {
        let cache = cache.clone();
        thread::spawn(move || cache.slice(..).map(<[u8]>::to_vec))
    };
    for _ in 0..3 {
        go.send(()).unwrap();
    }

    let check = |e: io::Error, what: &str| {
        assert!(
            e.to_string().contains("the source exploded"),
            "{what}: the error {e:?} does not carry the panic's message"
        );
    };
    for t in parked {
        let result = no_hang("a parked reader", move || t.join().unwrap());
        check(result.expect_err("a reader past the panic"), "wait_for");
    }
    let result = no_hang("slice(..)", move || slicer.join().unwrap());
    check(result.expect_err("slice(..) past the panic"), "slice(..)");

    let Status::Failed { available, error } = cache.status() else {
        panic!("expected Failed, got {:?}", cache.status());
    };
    assert_eq!(
        available,
        2 * CHUNK,
        "the two reads before the panic were kept"
    );
    assert_eq!(cache.wait_complete().unwrap_err().kind(), error);
    assert_eq!(cache.len(), None);
    assert_pattern(
        0,
        cache.slice(..available).unwrap(),
        "bytes before the panic",
    );
    check(
        cache.read_at(available, &mut [0; 1]).unwrap_err(),
        "read_at after",
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
        SourceKind::Read => builder.spawn(PatternReader::new(len, 40_000)),
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
// A full disk (invariant 5: no SIGBUS)
// ---------------------------------------------------------------------------------------------

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `size` (e.g. "4m"), or returns `None` (after saying why) when that is
    /// not allowed here. With `STREAMCACHE_REQUIRE_TMPFS=1` a failed mount fails the test.
    fn new(size: &str) -> Option<Self> {
        let dir = temp_dir("tmpfs");
        let result = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let failure = match result {
            Ok(out) if out.status.success() => return Some(Self { dir }),
            Ok(out) => format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
            Err(e) => e.to_string(),
        };
        let message = format!("cannot mount a tmpfs (are we root?): {}", failure.trim());
        if std::env::var("STREAMCACHE_REQUIRE_TMPFS").as_deref() == Ok("1") {
            panic!("STREAMCACHE_REQUIRE_TMPFS=1 and {message}");
        }
        eprintln!("SKIPPED full-disk test: {message}");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        // The filler may take a moment to close the spill file after the last handle drops;
        // fall back to a lazy unmount so the mount never outlives the test process.
        for _ in 0..100 {
            let ok = Command::new("umount").arg(self.path()).status();
            if matches!(ok, Ok(s) if s.success()) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// A 16 MiB stream into a 4 MiB tmpfs: the cache fails with `StorageFull` (never SIGBUS, which
/// would kill this process), the error names the directory, and the bytes that fit stay readable.
fn full_disk(memory_limit: usize) {
    const TOTAL: u64 = 16 * MIB;
    let Some(mount) = TmpfsMount::new("4m") else {
        return;
    };
    let cache = StreamCache::builder()
        .memory_limit(memory_limit)
        .temp_dir(mount.path())
        .spawn(PatternReader::new(TOTAL, 64 << 10))
        .unwrap();
    // A reader streaming through, checking every byte it gets.
    let streaming = {
        let mut reader = cache.reader();
        thread::spawn(move || {
            let mut buf = vec![0u8; 100_000];
            loop {
                let at = reader.position();
                match reader.read(&mut buf) {
                    Ok(0) => return (at, Ok(())),
                    Ok(n) => assert_pattern(at, &buf[..n], "streaming reader"),
                    Err(e) => return (at, Err(e)),
                }
            }
        })
    };

    let err = wait_for(&cache, u64::MAX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
    let dir = mount.path().display().to_string();
    assert!(
        err.to_string().contains(&dir),
        "the error {err} does not name the temp dir {dir}"
    );
    let Status::Failed { available, error } = cache.status() else {
        panic!("expected Failed, got {:?}", cache.status());
    };
    assert_eq!(error, ErrorKind::StorageFull);
    assert!(
        available > 0 && available <= 4 * MIB,
        "{available} bytes fit in a 4 MiB tmpfs"
    );
    assert!(available >= memory_limit as u64, "the arena was kept");
    assert_pattern(
        0,
        cache.slice(..available).unwrap(),
        "bytes before the full disk",
    );

    let (at, result) = no_hang("the streaming reader", move || streaming.join().unwrap());
    assert_eq!(
        at, available,
        "the streaming reader got every byte that fit"
    );
    assert_eq!(result.unwrap_err().kind(), ErrorKind::StorageFull);
    drop(cache);
}

#[test]
// Mounts a tmpfs (spawns `mount`) and spills to it: neither works under miri.
#[cfg_attr(miri, ignore = "mounts a tmpfs")]
fn full_disk_without_arena_is_storage_full_not_sigbus() {
    full_disk(0);
}

#[test]
// Mounts a tmpfs (spawns `mount`) and spills to it: neither works under miri.
#[cfg_attr(miri, ignore = "mounts a tmpfs")]
fn full_disk_after_arena_is_storage_full_not_sigbus() {
    full_disk(1 << 20);
}

// ---------------------------------------------------------------------------------------------
// A temp dir that does not exist
// ---------------------------------------------------------------------------------------------

/// The arena's bytes stay readable; readers past it get an error that names the directory as it
/// was given.
fn missing_temp_dir(memory_limit: usize) {
    let parent = temp_dir("missing");
    let missing: PathBuf = parent.path().join("does-not-exist").join("spill");
    let given = missing.display().to_string();
    let cache = StreamCache::builder()
        .memory_limit(memory_limit)
        .temp_dir(&missing)
        .spawn(PatternReader::new(256 * KIB, 10_000))
        .unwrap();
    let err = wait_for(&cache, u64::MAX).unwrap_err();
    assert!(
        err.to_string().contains(&given),
        "the error {err} does not name {given}"
    );
    let arena = memory_limit as u64;
    assert_eq!(
        cache.status(),
        Status::Failed {
            available: arena,
            error: err.kind()
        }
    );
    assert_pattern(0, cache.slice(..arena).unwrap(), "bytes in the arena");
    assert_eq!(cache.wait_for(arena).unwrap(), arena);
    for result in [
        cache.read_at(arena, &mut [0; 10]).map(drop),
        cache.slice(arena..arena + 1).map(drop),
        cache.reader_at(arena).read(&mut [0; 10]).map(drop),
    ] {
        let e = result.expect_err("a read past the arena");
        assert_eq!(e.kind(), err.kind());
        assert!(e.to_string().contains(&given), "{e} does not name {given}");
    }
}

#[test]
// Tries to create the spill file (tempfile_in uses O_TMPFILE), which miri does not support.
#[cfg_attr(miri, ignore = "creates the spill file")]
fn missing_temp_dir_fails_past_the_arena() {
    missing_temp_dir(64 << 10);
}

#[test]
// Tries to create the spill file (tempfile_in uses O_TMPFILE), which miri does not support.
#[cfg_attr(miri, ignore = "creates the spill file")]
fn missing_temp_dir_without_arena() {
    missing_temp_dir(0);
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
    let cache = StreamCache::new(PatternReader::new(LEN, 64)).unwrap();
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
// A buggy `Read` that claims more than the buffer
// ---------------------------------------------------------------------------------------------

/// The largest good read of an [`Overclaiming`] source: smaller under miri, which takes ~250 µs
/// per generated byte.
const OVERCLAIM_PIECE: usize = if cfg!(miri) { 100 } else { 10_000 };

/// Reads of up to `OVERCLAIM_PIECE` pattern bytes; after `good_reads` of them, fills the buffer
/// and claims `claim(buf.len())` bytes. `delivered` counts the bytes of the good reads.
struct Overclaiming {
    delivered: Arc<AtomicU64>,
    good_reads: u32,
    reads: u32,
    claim: fn(usize) -> usize,
}

impl Read for Overclaiming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pos = self.delivered.load(Ordering::SeqCst);
        let n = buf.len().min(OVERCLAIM_PIECE);
        fill_pattern(pos, &mut buf[..n]);
        if self.reads == self.good_reads {
            return Ok((self.claim)(buf.len()));
        }
        self.reads += 1;
        self.delivered.store(pos + n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

/// The cache refuses the impossible count with `InvalidData` instead of reading or publishing
/// memory past the buffer; the bytes before stay correct.
fn overclaiming_source(memory_limit: usize, good_reads: u32, claim: fn(usize) -> usize) {
    let dir = temp_dir("overclaim");
    let delivered = Arc::new(AtomicU64::new(0));
    let cache = StreamCache::builder()
        .memory_limit(memory_limit)
        .temp_dir(dir.path())
        .chunk_size(32 << 10)
        .spawn(Overclaiming {
            delivered: delivered.clone(),
            good_reads,
            reads: 0,
            claim,
        })
        .unwrap();
    let err = wait_for(&cache, u64::MAX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    let good = delivered.load(Ordering::SeqCst);
    assert!(
        good >= u64::from(good_reads),
        "the good reads were delivered"
    );
    assert_eq!(
        cache.status(),
        Status::Failed {
            available: good,
            error: ErrorKind::InvalidData
        }
    );
    assert_pattern(0, cache.slice(..good).unwrap(), "bytes before the bad read");
    let e = cache.read_at(good, &mut [0; 1]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
}

#[test]
fn a_read_claiming_more_than_the_buffer_fails_in_the_arena() {
    overclaiming_source(1 << 20, 20, |len| len + 1);
    overclaiming_source(1 << 20, 20, |_| usize::MAX);
}

#[test]
// Spills to the temp file, which miri cannot map.
#[cfg_attr(miri, ignore = "spills to a file mapping")]
fn a_read_claiming_more_than_the_buffer_fails_in_the_spill_file() {
    overclaiming_source(64 << 10, 30, |len| len + 1);
    overclaiming_source(64 << 10, 30, |_| usize::MAX);
}
