//! Cancellation (invariant 6): when every `StreamCache`, `Reader` and `Bytes` is gone, the filler
//! stops at its next chunk, drops the source on its own thread and releases the spill file;
//! dropping never blocks on the source. Also invariant 4: the spill file lives only in
//! `/proc/self/fd` and `/proc/self/maps`, and leaves neither behind.
//!
//! Its own test binary: it inspects this process's file descriptors and mappings (each test
//! only looks at its own temp dir, so the tests here may run in parallel).

mod common;

use common::offsets::{assert_pattern, canonical_temp_dir, fill_pattern, KIB, MIB};
use common::{eventually_within, HANG_GUARD};
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;
use streamcache::StreamCache;

/// How long the filler may take to notice that every handle is gone (it needs one more chunk).
const STOP_GUARD: Duration = Duration::from_secs(if cfg!(miri) { 300 } else { 30 });
const FILLER_NAME: &str = "cancel-test-filler";

/// This process's open file descriptors that point into `dir` (an unnamed file shows as
/// `DIR/#1234 (deleted)` or `DIR/.tmpXXXX (deleted)`).
fn fds_into(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd") {
        let Ok(entry) = entry else { continue };
        // The descriptor may be closed between listing and reading it: skip it then.
        if let Ok(target) = std::fs::read_link(entry.path()) {
            if target.starts_with(dir) {
                found.push(format!(
                    "fd {:?} -> {}",
                    entry.file_name(),
                    target.display()
                ));
            }
        }
    }
    found
}

/// This process's mappings of files in `dir`.
fn maps_into(dir: &Path) -> Vec<String> {
    let dir = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .filter(|line| line.contains(&dir))
        .map(str::to_owned)
        .collect()
}

/// Where and whether a source was dropped.
#[derive(Default)]
struct DropRecord {
    dropped: AtomicBool,
    thread: Mutex<Option<String>>,
}

impl DropRecord {
    fn dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }

    fn thread(&self) -> Option<String> {
        self.thread.lock().unwrap().clone()
    }

    fn record(&self) {
        *self.thread.lock().unwrap() = thread::current().name().map(str::to_owned);
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// How far an [`Endless`] source may go: reads block at the limit until it is raised.
#[derive(Default)]
struct Gate {
    allowed: Mutex<u64>,
    raised: Condvar,
}

impl Gate {
    fn allow(&self, upto: u64) {
        *self.allowed.lock().unwrap() = upto;
        self.raised.notify_all();
    }

    /// Blocks until bytes at `pos` are allowed; how many.
    fn wait_past(&self, pos: u64) -> u64 {
        let mut allowed = self.allowed.lock().unwrap();
        while *allowed <= pos {
            allowed = self.raised.wait(allowed).unwrap();
        }
        *allowed - pos
    }
}

/// A source that never ends: reads of up to 64 KiB of the pattern, each after a short pause, as
/// far as its gate allows. Records where it is dropped.
struct Endless {
    pos: u64,
    gate: Arc<Gate>,
    record: Arc<DropRecord>,
}

impl Endless {
    fn new() -> (Self, Arc<Gate>, Arc<DropRecord>) {
        let gate = Arc::new(Gate::default());
        let record = Arc::new(DropRecord::default());
        let source = Self {
            pos: 0,
            gate: gate.clone(),
            record: record.clone(),
        };
        (source, gate, record)
    }
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let allowed = self.gate.wait_past(self.pos);
        // Slow-ish (at most 32 MiB/s), so a filler that fails to stop cannot fill the disk.
        thread::sleep(Duration::from_millis(2));
        let n = buf.len().min(64 << 10).min(allowed as usize);
        fill_pattern(self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.record.record();
    }
}

/// Asserts the source was dropped, on the filler thread, within `STOP_GUARD`.
#[track_caller]
fn assert_source_dropped_by_filler(record: &DropRecord) {
    assert!(
        eventually_within(STOP_GUARD, || record.dropped()),
        "the filler did not stop (its source was not dropped) within {STOP_GUARD:?} of the last \
         handle being dropped"
    );
    assert_eq!(
        record.thread().as_deref(),
        Some(FILLER_NAME),
        "the source was dropped on the wrong thread"
    );
}

/// Asserts no descriptor and no mapping into `dir` remains, within `STOP_GUARD`.
#[track_caller]
fn assert_released(dir: &Path) {
    let released = eventually_within(STOP_GUARD, || {
        fds_into(dir).is_empty() && maps_into(dir).is_empty()
    });
    assert!(
        released,
        "the spill file in {} is still open or mapped: {:?} {:?}",
        dir.display(),
        fds_into(dir),
        maps_into(dir)
    );
}

/// Dropping every `StreamCache` and `Reader` (clones included, one of them last) stops the
/// filler at its next chunk and releases the spill file; while one `Reader` is left, the filler
/// keeps going.
#[test]
// Needs the spill file (miri cannot map files) and reads /proc/self/{fd,maps}.
#[cfg_attr(miri, ignore = "spill file and /proc")]
fn dropping_every_handle_stops_the_filler_and_releases_the_file() {
    let (_guard, dir) = canonical_temp_dir("handles");
    let (source, gate, record) = Endless::new();
    gate.allow(u64::MAX);
    let cache = StreamCache::builder()
        .memory_limit(256 << 10)
        .temp_dir(&dir)
        .chunk_size(64 << 10)
        .thread_name(FILLER_NAME)
        .spawn(source)
        .unwrap();
    assert_eq!(
        cache
            .wait_for_timeout(MIB, HANG_GUARD)
            .unwrap()
            .map(|m| m >= MIB),
        Some(true)
    );

    // Past the 256 KiB arena, the spill file exists: the checks below can see it.
    assert!(
        !fds_into(&dir).is_empty(),
        "no fd into {} found",
        dir.display()
    );
    assert!(
        !maps_into(&dir).is_empty(),
        "no mapping of {} found",
        dir.display()
    );

    let clone = cache.clone();
    let reader = cache.reader();
    let mut last = reader.clone();
    drop(cache);
    drop(clone);
    drop(reader);

    // One Reader is left: the filler goes on, and the reader reads what comes next.
    let beyond = last.cache().available() + MIB;
    let mut buf = vec![0u8; 4096];
    std::io::Seek::seek(&mut last, std::io::SeekFrom::Start(beyond)).unwrap();
    last.read_exact(&mut buf).unwrap();
    assert_pattern(beyond, &buf, "read through the last Reader");
    assert!(
        !record.dropped(),
        "the source was dropped while a Reader was left"
    );

    drop(last);
    assert_source_dropped_by_filler(&record);
    assert_released(&dir);
}

/// With only `Bytes` left (one from the arena, one from the spill file), the filler stops too;
/// the `Bytes` stay readable and correct, and once they are gone the file is released.
#[test]
// Needs the spill file (miri cannot map files) and reads /proc/self/{fd,maps}.
#[cfg_attr(miri, ignore = "spill file and /proc")]
fn with_only_bytes_left_the_filler_stops_and_the_bytes_stay_readable() {
    let (_guard, dir) = canonical_temp_dir("bytes");
    let (source, gate, record) = Endless::new();
    let cache = StreamCache::builder()
        .memory_limit(1 << 20)
        .temp_dir(&dir)
        .chunk_size(64 << 10)
        .thread_name(FILLER_NAME)
        .spawn(source)
        .unwrap();

    // Taken while the stream is still in the arena.
    gate.allow(4 * KIB);
    let early = cache.bytes(0..4 * KIB).unwrap();
    // Taken after the spill, across the arena's end.
    gate.allow(3 * MIB);
    let late = cache.bytes(512 * KIB..3 * MIB).unwrap();
    assert!(
        !fds_into(&dir).is_empty(),
        "no fd into {} found",
        dir.display()
    );

    // The source is endless from here on; only the Bytes hold on.
    gate.allow(u64::MAX);
    drop(cache);
    assert_source_dropped_by_filler(&record);

    assert_pattern(0, &early, "arena Bytes after the filler stopped");
    assert_pattern(512 * KIB, &late, "spill Bytes after the filler stopped");
    let piece = late.slice(100..200);
    drop(late);
    assert_pattern(512 * KIB + 100, &piece, "a slice of a dropped Bytes");
    drop(piece);
    assert_pattern(0, &early, "arena Bytes after the others dropped");
    drop(early);
    assert_released(&dir);
}

/// A source blocked in `read` until the test says so; records where it is dropped.
struct Blocked {
    entered: Sender<()>,
    release: Receiver<Vec<u8>>,
    record: Arc<DropRecord>,
}

impl Read for Blocked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = self.entered.send(());
        match self.release.recv() {
            Ok(data) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
            Err(_) => Ok(0),
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        self.record.record();
    }
}

/// With the source blocked forever in `read`, dropping every handle returns at once (it does not
/// wait for the filler). Once the read returns one chunk, the filler stops without reading again.
#[test]
fn dropping_never_blocks_on_the_source() {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let record = Arc::new(DropRecord::default());
    let cache = StreamCache::builder()
        .thread_name(FILLER_NAME)
        .spawn(Blocked {
            entered: entered_tx,
            release: release_rx,
            record: record.clone(),
        })
        .unwrap();
    entered
        .recv_timeout(HANG_GUARD)
        .expect("the filler never read the source");

    // Drop every handle on another thread; it must finish while the source is still blocked.
    let reader = cache.reader();
    let handles = (cache.clone(), cache, reader.clone(), reader);
    let (dropped_tx, dropped_rx) = mpsc::channel();
    thread::spawn(move || {
        drop(handles);
        let _ = dropped_tx.send(());
    });
    dropped_rx
        .recv_timeout(STOP_GUARD)
        .expect("dropping the handles blocked on the source");
    assert!(
        !record.dropped(),
        "the source cannot be dropped while in read"
    );

    // Let the blocked read return one chunk: the filler must stop there. Reading again would
    // block (the sender lives on), and the source would never be dropped.
    release.send(vec![7u8; 1000]).unwrap();
    assert_source_dropped_by_filler(&record);
    drop(release);
}
