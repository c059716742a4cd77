//! What the failure suites (failures, faults) share: a scripted `open` for `spawn_resumable`
//! ([`Opener`]), checks of how a stream ended ([`assert_complete`], [`assert_failed`]), a
//! reader streaming through it ([`streamer`]) and a tmpfs mount ([`TmpfsMount`]).

use super::offsets::{assert_pattern, temp_dir};
use super::source::{Fault, PatternSource};
use super::{no_hang, outcome};
use std::io::{self, ErrorKind, Read};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use streamcache::{Builder, Status, StreamCache};

/// A backoff short enough not to slow the suite down.
pub const QUICK: Duration = Duration::from_millis(1);

/// A builder for `spawn_resumable` with `retries` and a [`QUICK`] backoff.
pub fn retrying(retries: u32) -> Builder {
    StreamCache::builder().retries(retries).retry_backoff(QUICK)
}

/// A reader streaming through the cache with odd buffer sizes, checking every byte; returns
/// where it stopped and how (`Ok` at the end of the stream).
pub fn streamer(cache: &StreamCache, what: &'static str) -> JoinHandle<(u64, io::Result<()>)> {
    let mut reader = cache.reader();
    thread::spawn(move || {
        let mut buf = vec![0u8; 70_001];
        let sizes = [1, 4095, 4097, 65_536, 70_001, 333];
        for size in sizes.iter().cycle() {
            let at = reader.position();
            match reader.read(&mut buf[..*size]) {
                Ok(0) => return (at, Ok(())),
                Ok(n) => assert_pattern(at, &buf[..n], what),
                Err(e) => return (at, Err(e)),
            }
        }
        unreachable!()
    })
}

/// Joins a [`streamer`], bounded.
#[track_caller]
pub fn join_streamer(
    handle: JoinHandle<(u64, io::Result<()>)>,
    what: &str,
) -> (u64, io::Result<()>) {
    let label = what.to_owned();
    no_hang(what, move || {
        handle
            .join()
            .unwrap_or_else(|_| panic!("{label}: the reader panicked"))
    })
}

/// The stream completed with `len` bytes, all of them right, and nothing says otherwise.
#[track_caller]
pub fn assert_complete(cache: &StreamCache, len: u64, what: &str) {
    match outcome(cache) {
        Ok(got) => assert_eq!(got, len, "{what}: final length"),
        Err(e) => panic!("{what}: expected a complete stream of {len} bytes, got {e:?}"),
    }
    assert_eq!(cache.status(), Status::Complete { len }, "{what}");
    assert_eq!(cache.len(), Some(len), "{what}");
    assert!(cache.is_complete(), "{what}");
    assert_pattern(0, cache.slice(..).unwrap(), what);
    assert_eq!(
        cache.read_at(len, &mut [0; 8]).unwrap(),
        0,
        "{what}: read at the end"
    );
    let mut all = Vec::new();
    cache.reader().read_to_end(&mut all).unwrap();
    assert_eq!(all.len() as u64, len, "{what}: read_to_end");
    assert_pattern(0, &all, what);
}

/// The stream failed at `at` with `kind` and a message containing `message`; every byte before
/// `at` is right and readable, every read past it gets the error. Returns the error.
#[track_caller]
pub fn assert_failed(
    cache: &StreamCache,
    at: u64,
    kind: ErrorKind,
    message: &str,
    what: &str,
) -> io::Error {
    let err = outcome(cache).expect_err(what);
    assert_eq!(err.kind(), kind, "{what}: kind of {err}");
    assert!(
        err.to_string().contains(message),
        "{what}: the error {err:?} does not contain {message:?}"
    );
    assert_eq!(
        cache.status(),
        Status::Failed {
            available: at,
            error: kind
        },
        "{what}: {err}"
    );
    assert_eq!(cache.len(), None, "{what}");
    assert_pattern(0, cache.slice(..at).unwrap(), what);
    assert_pattern(0, &cache.bytes(..at).unwrap(), what);
    assert_eq!(cache.wait_for(at).unwrap(), at, "{what}: wait_for(at)");
    for (how, result) in [
        ("read_at", cache.read_at(at, &mut [0; 10]).map(drop)),
        ("slice", cache.slice(at..at + 1).map(drop)),
        ("reader", cache.reader_at(at).read(&mut [0; 10]).map(drop)),
        ("wait_complete", cache.wait_complete().map(drop)),
    ] {
        let e = result.expect_err(how);
        assert_eq!(e.kind(), kind, "{what}: {how}: {e}");
        assert!(
            e.to_string().contains(message),
            "{what}: {how}: {e:?} does not contain {message:?}"
        );
    }
    err
}

/// What one call of a scripted `open` does.
#[derive(Debug, Clone, Copy)]
pub enum Open {
    /// `open` itself fails with this kind.
    Refuse(ErrorKind),
    /// `open` panics.
    Panic,
    /// A reader whose first read does the fault.
    Fails(Fault),
    /// A reader that delivers this many bytes, then does the fault.
    After(u64, Fault),
    /// A reader that does the fault when it reaches this absolute offset.
    At(u64, Fault),
    /// A reader of the rest of the stream.
    Clean,
}

/// One call of `open`.
#[derive(Debug, Clone)]
pub struct OpenCall {
    /// The offset asked for.
    pub offset: u64,
    /// When.
    pub at: Instant,
    /// The name of the thread it ran on.
    pub thread: Option<String>,
}

/// Every call of an [`Opener`], in order.
pub type OpenLog = Arc<Mutex<Vec<OpenCall>>>;

/// The offsets of the calls in `log`, in order.
pub fn offsets(log: &OpenLog) -> Vec<u64> {
    log.lock().unwrap().iter().map(|c| c.offset).collect()
}

/// Sends on its channel when dropped: tells the test that the filler let go of the closure.
struct DropSignal(Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A scripted `open`: call `i` does `plan[i]`, and every call after the plan does `then` (cycled).
/// The readers it returns serve the pattern up to `len` in pieces of `piece` bytes. Past
/// [`RUNAWAY`] calls it fails with `NotFound`, to end a retry loop that does not end by itself.
pub struct Opener {
    len: u64,
    piece: usize,
    storm: u32,
    interrupts: Arc<AtomicU64>,
    plan: Vec<Open>,
    then: Vec<Open>,
    log: OpenLog,
    notify: Option<Sender<u64>>,
    _on_drop: Option<DropSignal>,
    runaway: usize,
}

/// More calls of `open` than any test here makes on purpose.
const RUNAWAY: usize = 1000;

impl Opener {
    /// Serves `len` bytes of the pattern; call `i` does `plan[i]`, later calls cycle through
    /// `then` (a clean reader if `then` is empty).
    pub fn new(len: u64, plan: &[Open], then: &[Open]) -> Self {
        Self {
            len,
            piece: usize::MAX,
            storm: 0,
            interrupts: Arc::default(),
            plan: plan.to_vec(),
            then: then.to_vec(),
            log: Arc::default(),
            notify: None,
            _on_drop: None,
            runaway: RUNAWAY,
        }
    }

    /// Its readers return at most `piece` bytes a read.
    pub fn piece(mut self, piece: usize) -> Self {
        self.piece = piece;
        self
    }

    /// Its readers raise `per_read` `Interrupted` errors before every real read.
    pub fn storm(mut self, per_read: u32) -> Self {
        self.storm = per_read;
        self
    }

    /// Sends the offset of every call.
    pub fn notify(mut self) -> (Self, Receiver<u64>) {
        let (tx, rx) = mpsc::channel();
        self.notify = Some(tx);
        (self, rx)
    }

    /// Signals when the opener (and so the closure owning it) is dropped. No runaway limit:
    /// the test ends the retries by dropping the cache.
    pub fn on_drop(mut self) -> (Self, Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        self._on_drop = Some(DropSignal(tx));
        self.runaway = usize::MAX;
        (self, rx)
    }

    /// The count of `Interrupted` errors its readers' storms injected.
    pub fn interrupts(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.interrupts)
    }

    /// A handle on its calls.
    pub fn log(&self) -> OpenLog {
        Arc::clone(&self.log)
    }

    fn open(&mut self, offset: u64) -> io::Result<PatternSource> {
        let n = {
            let mut log = self.log.lock().unwrap();
            log.push(OpenCall {
                offset,
                at: Instant::now(),
                thread: thread::current().name().map(str::to_owned),
            });
            log.len()
        };
        if let Some(tx) = &self.notify {
            let _ = tx.send(offset);
        }
        if n > self.runaway {
            return Err(io::Error::new(
                ErrorKind::NotFound,
                format!("runaway: open called {n} times"),
            ));
        }
        let step = match self.plan.get(n - 1) {
            Some(step) => *step,
            None if self.then.is_empty() => Open::Clean,
            None => self.then[(n - 1 - self.plan.len()) % self.then.len()],
        };
        let tag = format!("open #{n}");
        let source = PatternSource::new(self.len)
            .at(offset)
            .piece(self.piece)
            .storm(self.storm, &self.interrupts)
            .tag(tag.clone());
        match step {
            Open::Refuse(kind) => Err(io::Error::new(
                kind,
                format!("{tag} at {offset}: refused with {kind:?}"),
            )),
            Open::Panic => panic!("{tag} at {offset}: injected panic in open"),
            Open::Fails(fault) => Ok(source.fault(offset, fault)),
            Open::After(bytes, fault) => Ok(source.fault(offset + bytes, fault)),
            Open::At(at, fault) => Ok(source.fault(at, fault)),
            Open::Clean => Ok(source),
        }
    }

    /// `builder.spawn_resumable` over this `open`.
    pub fn spawn(mut self, builder: Builder) -> StreamCache {
        builder
            .spawn_resumable(move |offset| self.open(offset))
            .expect("spawn_resumable")
    }
}

/// A tmpfs mounted on a fresh directory, unmounted on drop: a small disk that fills, or a
/// read-only one. Mounting needs root: a test that uses it is
/// `#[ignore = "needs root: mounts a tmpfs"]`, run by `.ci/run` with `--ignored`, and fails
/// (never skips) when the mount fails.
pub struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    /// Mounts a tmpfs with `options` (e.g. "size=4m", "size=1m,ro"); panics if it cannot.
    #[track_caller]
    pub fn new(options: &str) -> Self {
        let dir = temp_dir("tmpfs");
        let result = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output();
        match result {
            Ok(out) if out.status.success() => Self { dir },
            Ok(out) => panic!(
                "cannot mount a tmpfs (are we root?): {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => panic!("cannot mount a tmpfs (are we root?): {e}"),
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
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
