//! `Builder::cache_dir`: one entry shared by every process. Processes, not threads: the tests
//! start this test binary again as children (the `child` test, which does nothing unless
//! `SC_CHILD` is set), each a cache of one key over a pattern source that counts the bytes it
//! delivers (a server that counts what it sends), and read what the children report.
#![cfg(unix)]

mod common;

use common::{fill_pattern, threads_named};
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamcache::{Builder, StreamCache};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const SPAN: u64 = 256 * KIB;

/// The pattern's bytes `range`, `pace` per 64 KiB, counted into `delivered`.
struct PatternPart {
    at: u64,
    end: u64,
    pace: Duration,
    delivered: Arc<AtomicU64>,
}

impl Read for PatternPart {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min((self.end - self.at) as usize).min(64 << 10);
        if n > 0 && !self.pace.is_zero() {
            std::thread::sleep(self.pace);
        }
        fill_pattern(self.at, &mut buf[..n]);
        self.at += n as u64;
        self.delivered.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

/// A cache of `key` in `dir` over the pattern, `len` bytes, each 64 KiB taking `pace`.
fn cache(dir: &Path, key: &str, len: u64, pace: Duration) -> (StreamCache, Arc<AtomicU64>) {
    let delivered = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&delivered);
    let cache = builder(dir, key)
        .spawn_ranged(len, move |range: Range<u64>| {
            Ok(PatternPart {
                at: range.start,
                end: range.end,
                pace,
                delivered: Arc::clone(&counted),
            })
        })
        .unwrap();
    (cache, delivered)
}

fn builder(dir: &Path, key: &str) -> Builder {
    StreamCache::builder()
        .cache_dir(dir)
        .cache_key(key)
        .fetch_ahead(SPAN)
        .fetch_span(SPAN)
        // Not a divisor of the span map's 64 KiB blocks: a block is completed by several
        // writes, and a kill lands between them.
        .chunk_size(20_000)
        .thread_name(format!("sc-{key}"))
}

/// Whether `bytes` are the pattern's from `offset`.
fn is_pattern(offset: u64, bytes: &[u8]) -> bool {
    let mut expected = vec![0; bytes.len()];
    fill_pattern(offset, &mut expected);
    expected == bytes
}

/// What a child does (`SC_CHILD`): `all` reads every byte; `tail` reads the last MiB only;
/// `progress` reads in order and prints how far it got as it goes (for a kill to land
/// mid-write); `wait` waits for the last byte for at most `SC_WAIT_MS`. Then one line:
/// `RESULT delivered=D available=A ok=1` (`available` when the read returned). `async`:
/// see [`async_waits_served`].
#[test]
fn child() {
    let Ok(what) = std::env::var("SC_CHILD") else {
        return; // Not a child: nothing to do.
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let len: u64 = var("SC_LEN").parse().unwrap();
    let pace = Duration::from_micros(var("SC_PACE_US").parse().unwrap());
    let (cache, delivered) = cache(Path::new(&var("SC_DIR")), &var("SC_KEY"), len, pace);
    let (ok, available) = match what.as_str() {
        "all" => {
            cache.wait_complete().unwrap();
            (is_pattern(0, cache.slice(..).unwrap()), cache.available())
        }
        "tail" => {
            let tail = cache.slice(len - MIB..).unwrap();
            let available = cache.available();
            (is_pattern(len - MIB, tail), available)
        }
        "progress" => {
            let mut at = 0;
            while at < len {
                let end = (at + 64 * KIB).min(len);
                let ok = is_pattern(at, cache.slice(at..end).unwrap());
                assert!(ok, "wrong bytes at {at}");
                at = end;
                println!("PROGRESS {}", cache.available());
            }
            (true, cache.available())
        }
        "wait" => {
            let limit = Duration::from_millis(var("SC_WAIT_MS").parse().unwrap());
            let got = cache.wait_for_timeout(len, limit).unwrap();
            (got.is_none(), cache.available())
        }
        "async" => (async_waits_served(&cache, len), cache.available()),
        "hold" => {
            cache.wait_complete().unwrap();
            println!("HELD");
            // Open until the parent closes our stdin.
            let _ = io::stdin().read_to_end(&mut Vec::new());
            (is_pattern(0, cache.slice(..).unwrap()), cache.available())
        }
        other => panic!("no such child: {other}"),
    };
    println!(
        "RESULT delivered={} available={available} ok={}",
        delivered.load(Ordering::SeqCst),
        u8::from(ok)
    );
}

/// The `async` child, a reader whose writer starts once it prints `READY` on stderr: async
/// waits are served however the process's blocking waits come and go. A thread that waits
/// mirrors the entry by itself and the mirror thread keeps quiet meanwhile, so (1) an async
/// wait that parks after the blocking wait returned must wake the mirror thread, and (2) the
/// last blocking wait to return while an async one is parked must too. With the child's
/// liveness step at 10 minutes, a wake-up missed in either shows as a wait past 30 s.
fn async_waits_served(cache: &StreamCache, len: u64) -> bool {
    use std::future::Future;
    use std::task::{Context, Wake, Waker};
    struct Signal(std::sync::Mutex<std::sync::mpsc::Sender<()>>);
    impl Wake for Signal {
        fn wake(self: Arc<Self>) {
            let _ = self.0.lock().unwrap().send(());
        }
    }
    type Wait = std::pin::Pin<Box<dyn Future<Output = io::Result<u64>>>>;
    let (tx, woken) = std::sync::mpsc::channel();
    let waker = Waker::from(Arc::new(Signal(std::sync::Mutex::new(tx))));
    let mut cx = Context::from_waker(&waker);
    // Polled until ready, each next poll after a wake-up: false if none came within 30 s.
    let until_ready = |wait: &mut Wait, cx: &mut Context<'_>| {
        while wait.as_mut().poll(cx).is_pending() {
            if woken.recv_timeout(Duration::from_secs(30)).is_err() {
                return false;
            }
        }
        true
    };
    eprintln!("READY");
    // (1) The mirror thread goes quiet while this thread waits; then an async wait parks.
    cache.wait_for(len / 4).unwrap();
    let mut half: Wait = Box::pin(cache.wait_for_async(len / 2));
    if !until_ready(&mut half, &mut cx) {
        eprintln!("an async wait parked after a blocking one was never woken");
        return false;
    }
    // (2) An async wait parks, then a blocking one comes and goes.
    let mut all: Wait = Box::pin(cache.wait_for_async(len));
    let parked = all.as_mut().poll(&mut cx).is_pending();
    cache.wait_for(len * 3 / 4).unwrap();
    // Not polled again before a wake-up (a poll would itself wake the mirror thread).
    if woken.recv_timeout(Duration::from_secs(30)).is_err() || !until_ready(&mut all, &mut cx) {
        eprintln!("an async wait left alone by a blocking one was never woken");
        return false;
    }
    parked && is_pattern(0, cache.slice(..).unwrap())
}

/// A child of this binary doing `what` on the entry `key` of `dir`.
fn spawn_child(dir: &Path, key: &str, len: u64, pace: Duration, what: &str) -> Child {
    child_command(dir, key, len, pace, what).spawn().unwrap()
}

/// A child whose sleeps on the entry last 10 minutes unless a publish (or a kick) wakes them:
/// a wake-up that does not come shows as a hang past the guard.
#[cfg(target_os = "linux")]
fn spawn_unwoken_child(dir: &Path, key: &str, len: u64, what: &str) -> Child {
    child_command(dir, key, len, Duration::ZERO, what)
        .env("STREAMCACHE_TEST_LIVENESS_MS", "600000")
        .spawn()
        .unwrap()
}

fn child_command(dir: &Path, key: &str, len: u64, pace: Duration, what: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("SC_CHILD", what)
        .env("SC_DIR", dir)
        .env("SC_KEY", key)
        .env("SC_LEN", len.to_string())
        .env("SC_PACE_US", pace.as_micros().to_string())
        .env("SC_WAIT_MS", "300")
        .envs(
            std::env::var("SC_LIVENESS_MS")
                .ok()
                .map(|ms| ("STREAMCACHE_TEST_LIVENESS_MS", ms)),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A child's report.
#[derive(Debug)]
struct Report {
    delivered: u64,
    available: u64,
    ok: bool,
}

fn report_of(child: Child) -> Report {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The test harness may print its own words before ours on the line.
    let line = stdout
        .lines()
        .find_map(|line| line.find("RESULT ").map(|at| &line[at..]))
        .unwrap_or_else(|| {
            panic!(
                "a child reported nothing ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let field = |name: &str| -> u64 {
        let key = format!("{name}=");
        let at = line.find(&key).unwrap() + key.len();
        line[at..].split(' ').next().unwrap().parse().unwrap()
    };
    Report {
        delivered: field("delivered"),
        available: field("available"),
        ok: field("ok") == 1,
    }
}

#[test]
fn eight_processes_on_one_key_make_one_writer_and_one_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let len = 8 * MIB + 12_345;
    let pace = Duration::from_micros(500);
    let children: Vec<Child> = (0..8)
        .map(|_| spawn_child(dir.path(), "eight", len, pace, "all"))
        .collect();
    let reports: Vec<Report> = children.into_iter().map(report_of).collect();
    assert!(reports.iter().all(|r| r.ok), "{reports:?}");
    let sent: u64 = reports.iter().map(|r| r.delivered).sum();
    assert!(
        sent <= len + 8 * SPAN,
        "the source sent {sent} bytes for {len}: {reports:?}"
    );
    let writers = reports.iter().filter(|r| r.delivered > 0).count();
    assert_eq!(writers, 1, "one writer: {reports:?}");
}

#[test]
fn a_process_that_needs_the_last_mib_gets_it_by_a_fetch_before_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let len = 32 * MIB;
    // The fill takes 512 × 2 ms ≈ 1 s at least.
    let pace = Duration::from_millis(2);
    let writer = spawn_child(dir.path(), "tail", len, pace, "all");
    wait_for_entry(dir.path());
    let tail = report_of(spawn_child(dir.path(), "tail", len, pace, "tail"));
    assert!(tail.ok, "{tail:?}");
    assert_eq!(
        tail.delivered, 0,
        "the reader fetched nothing itself: {tail:?}"
    );
    assert!(
        tail.available < len - MIB,
        "the last MiB came before the rest: {tail:?}"
    );
    let writer = report_of(writer);
    assert!(writer.ok, "{writer:?}");
    assert!(writer.delivered <= len + 2 * SPAN, "{writer:?}");
}

/// Waits until `dir` holds an entry file (its writer made it).
fn wait_for_entry(dir: &Path) {
    let deadline = Instant::now() + common::HANG_GUARD;
    while !std::fs::read_dir(dir)
        .unwrap()
        .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "entry"))
    {
        assert!(Instant::now() < deadline, "no entry made");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_writer_killed_mid_write_is_taken_over_and_only_the_missing_bytes_are_fetched() {
    let mut taken_over = 0;
    // Kill points spread over the fill by a fixed generator (xorshift): the same each time.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for run in 0..12u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let dir = tempfile::tempdir().unwrap();
        let len = 4 * MIB + 777;
        let key = format!("killed-{run}");
        let mut writer = spawn_child(dir.path(), &key, len, Duration::from_millis(1), "progress");
        // Kill it after a different amount of progress each run, anywhere in the first
        // 3.5 MiB (and so mostly mid-block: the 20 000-byte chunks do not divide 64 KiB).
        let stdout = writer.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let stop_after = state % (3 * MIB + MIB / 2);
        let mut seen = 0;
        for line in &mut lines {
            let line = line.unwrap();
            if let Some(at) = line.find("PROGRESS ") {
                seen = line[at + 9..].trim().parse().unwrap();
                if seen >= stop_after {
                    break;
                }
            }
        }
        // Even runs: a reader already attached takes over (woken by the dead writer's
        // silence); odd runs: a process that opens the entry afterwards.
        let attached =
            (run % 2 == 0).then(|| spawn_child(dir.path(), &key, len, Duration::ZERO, "all"));
        if attached.is_some() {
            std::thread::sleep(Duration::from_millis(20));
        }
        writer.kill().unwrap(); // SIGKILL
        writer.wait().unwrap();
        let next = report_of(
            attached.unwrap_or_else(|| spawn_child(dir.path(), &key, len, Duration::ZERO, "all")),
        );
        assert!(
            next.ok,
            "run {run}: every byte right after the takeover: {next:?}"
        );
        // What the killed writer had published stays; a block it was writing is fetched.
        let missing = len - seen;
        assert!(
            next.delivered <= missing + 2 * SPAN,
            "run {run}: {} bytes fetched, {missing} were missing",
            next.delivered
        );
        eprintln!(
            "run {run}: killed at {seen}, the next fetched {}",
            next.delivered
        );
        taken_over += usize::from(next.delivered > 0 && next.delivered < len);
    }
    assert!(taken_over >= 6, "only {taken_over} kills landed mid-fill");
}

#[test]
fn a_stopped_writer_keeps_its_lock_and_readers_time_out_without_a_takeover() {
    let dir = tempfile::tempdir().unwrap();
    let len = 16 * MIB;
    let writer = spawn_child(dir.path(), "stopped", len, Duration::from_millis(2), "all");
    wait_for_entry(dir.path());
    let pid = writer.id() as i32;
    // SAFETY: a plain system call on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let waiter = report_of(spawn_child(
        dir.path(),
        "stopped",
        len,
        Duration::ZERO,
        "wait",
    ));
    assert!(waiter.ok, "the wait timed out: {waiter:?}");
    assert_eq!(waiter.delivered, 0, "nobody took over: {waiter:?}");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let writer = report_of(writer);
    assert!(
        writer.ok && writer.delivered <= len + 2 * SPAN,
        "{writer:?}"
    );
}

/// In this process: a complete entry is reused without a transfer; a torn header or span
/// map is detected and the entry rebuilt (every byte fetched again), never served.
#[test]
fn a_torn_header_or_span_map_is_rebuilt_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let len = 3 * MIB + 5;
    let done = |cache: StreamCache| {
        assert!(is_pattern(0, cache.slice(..).unwrap()));
        drop(cache);
        common::eventually("the writer ended", || threads_named("sc-torn") == 0);
    };
    let (first, sent) = cache(dir.path(), "torn", len, Duration::ZERO);
    first.wait_complete().unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), len);
    done(first);

    let (again, sent) = cache(dir.path(), "torn", len, Duration::ZERO);
    assert_eq!(again.wait_complete().unwrap(), len);
    assert_eq!(
        sent.load(Ordering::SeqCst),
        0,
        "a complete entry: nothing sent"
    );
    done(again);

    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "entry"))
        .unwrap();
    // Byte 20 is the header's length field; byte 4096 the span map's first word.
    for (what, at) in [("header", 20u64), ("span map", 4096)] {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&entry);
        let file = file.unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        file.write_all_at(&[byte[0] ^ 0x01], at).unwrap();
        drop(file);
        let (rebuilt, sent) = cache(dir.path(), "torn", len, Duration::ZERO);
        assert_eq!(rebuilt.wait_complete().unwrap(), len, "{what}");
        assert_eq!(
            sent.load(Ordering::SeqCst),
            len,
            "{what}: rebuilt, every byte again"
        );
        done(rebuilt);
    }
}

#[test]
fn a_plain_source_or_a_missing_key_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let err = StreamCache::builder()
        .cache_dir(dir.path())
        .spawn(io::empty())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = StreamCache::builder()
        .cache_dir(dir.path())
        .spawn_ranged(10, |_| Ok(io::empty()))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = StreamCache::builder()
        .cache_dir(dir.path())
        .cache_key("k".repeat(5000))
        .spawn_ranged(10, |_| Ok(io::empty()))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}

/// The lengths of the streams whose entries are in `dir` (small entries: one header page and
/// one page of span map before the data).
fn entry_lens(dir: &Path) -> Vec<u64> {
    let mut lens: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "entry"))
        .map(|p| p.metadata().unwrap().len() - 8192)
        .collect();
    lens.sort();
    lens
}

#[test]
fn cache_limit_evicts_the_least_recently_used_unused_entries_and_never_an_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d) = (MIB + 1, MIB + 2, MIB + 3, MIB + 4);
    let complete = |key: &str, len: u64, limit: Option<u64>| {
        let (cache, _) = match limit {
            None => cache(dir.path(), key, len, Duration::ZERO),
            Some(limit) => {
                let delivered = Arc::new(AtomicU64::new(0));
                let counted = Arc::clone(&delivered);
                let cache = builder(dir.path(), key)
                    .cache_limit(limit)
                    .spawn_ranged(len, move |range: Range<u64>| {
                        Ok(PatternPart {
                            at: range.start,
                            end: range.end,
                            pace: Duration::ZERO,
                            delivered: Arc::clone(&counted),
                        })
                    })
                    .unwrap();
                (cache, delivered)
            }
        };
        cache.wait_complete().unwrap();
        drop(cache);
        let name = format!("sc-{key}");
        common::eventually("the writer ended", || threads_named(&name) == 0);
        std::thread::sleep(Duration::from_millis(20)); // Distinct modification times.
    };
    complete("a", a, None);
    // Another process has A open; then B is made: A is the least recently used.
    let mut holder = spawn_child(dir.path(), "a", a, Duration::ZERO, "hold");
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().contains("HELD")));
    std::thread::sleep(Duration::from_millis(20));
    complete("b", b, None);
    // C with room for two entries: B goes (A is the oldest, but open).
    let limit = 2 * MIB + 3 * MIB / 4 + 3 * 8192;
    complete("c", c, Some(limit));
    assert_eq!(entry_lens(dir.path()), vec![a, c]);
    // A closed: D makes it go, the least recently used.
    drop(holder.stdin.take());
    holder.wait().unwrap();
    complete("d", d, Some(limit));
    assert_eq!(entry_lens(dir.path()), vec![c, d]);
}

/// A URL keys its entry by its ETag: a later cache validates with one byte and reads the
/// entry; a new ETag is a new entry, fetched whole.
#[cfg(feature = "http")]
#[test]
fn a_url_entry_is_reused_after_a_one_byte_validation_and_a_new_etag_is_a_new_entry() {
    use common::http_server::{resource, Server};
    use std::sync::Mutex;
    let dir = tempfile::tempdir().unwrap();
    let len = 2 * MIB + 3;
    let mut body = vec![0; len as usize];
    fill_pattern(0, &mut body);
    let etag = Arc::new(Mutex::new("\"v1\"".to_owned()));
    let served = Arc::clone(&etag);
    let server = Server::start(move |request| {
        let etag = served.lock().unwrap().clone();
        resource(request, &body, Some(&etag), None)
    });
    let url = server.url("/model.bin");
    let read = |name: &str| {
        let cache = StreamCache::builder()
            .cache_dir(dir.path())
            .thread_name(name)
            .spawn_url(&url)
            .unwrap();
        assert_eq!(cache.wait_complete().unwrap(), len);
        assert!(is_pattern(0, cache.slice(..).unwrap()));
        drop(cache);
        common::eventually("the writer ended", || threads_named(name) == 0);
        server.body_bytes_sent()
    };
    let first = read("sc-url-1");
    assert!(first >= len && first <= len + 1, "{first}");
    let second = read("sc-url-2");
    assert!(
        second - first <= 1,
        "a validation of one byte: {}",
        second - first
    );
    *etag.lock().unwrap() = "\"v2\"".to_owned();
    let third = read("sc-url-3");
    assert!(third - second >= len, "a new ETag: fetched again");
    assert_eq!(entry_count(dir.path()), 2, "a new ETag is a new entry");
}

fn entry_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "entry")
        })
        .count()
}

/// A disk that cannot hold the entry: `StorageFull` at spawn, for the first cache and for
/// one that comes after it, never a SIGBUS (the entry is reserved whole before it is named).
#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn a_full_disk_is_storage_full_never_sigbus() {
    let mount = common::faults::TmpfsMount::new("size=4m");
    for _ in 0..2 {
        let err = builder(mount.path(), "full")
            .spawn_ranged(16 * MIB, |_| Ok(io::empty()))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
        assert!(
            err.to_string()
                .contains(&mount.path().display().to_string()),
            "{err}"
        );
    }
    // Nothing left behind: no entry, no half-made file.
    let left: Vec<_> = std::fs::read_dir(mount.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| !name.to_string_lossy().ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A disk filled to its last byte while an entry fills: the writer goes on writing and a
/// reader in another process reads every byte, neither faulting (the entry's blocks were
/// reserved before it was named), and the next new entry is `StorageFull`.
#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn a_disk_filled_mid_fill_faults_neither_writer_nor_reader() {
    use std::io::Write;
    let mount = common::faults::TmpfsMount::new("size=8m");
    let len = 4 * MIB + 777;
    // 20 000 bytes every 2 ms: about 0.4 s for the entry.
    let mut writer = spawn_child(
        mount.path(),
        "filling",
        len,
        Duration::from_millis(2),
        "progress",
    );
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    let mut progress = || -> Option<String> { lines.next().map(|line| line.unwrap()) };
    // The harness's own lines come first.
    while !progress()
        .expect("the writer reports progress")
        .contains("PROGRESS ")
    {}
    let reader = spawn_child(mount.path(), "filling", len, Duration::ZERO, "all");
    let mut ballast = std::fs::File::create(mount.path().join("ballast")).unwrap();
    let full = loop {
        if let Err(e) = ballast
            .write_all(&[7; 4096])
            .and_then(|()| ballast.sync_data())
        {
            break e;
        }
    };
    assert_eq!(full.kind(), io::ErrorKind::StorageFull, "{full}");
    // The writer was still filling when the disk became full, and finished.
    let mut after_full = None;
    let mut result = None;
    while let Some(line) = progress() {
        if let Some(at) = line.find("PROGRESS ") {
            let available: u64 = line[at + 9..].trim().parse().unwrap();
            after_full.get_or_insert(available);
        }
        if let Some(at) = line.find("RESULT ") {
            result = Some(line[at..].to_owned());
        }
    }
    let status = writer.wait().unwrap();
    assert!(status.success(), "the writer: {status}");
    assert!(
        result.as_deref().is_some_and(|r| r.ends_with("ok=1")),
        "the writer's bytes: {result:?}"
    );
    let after_full = after_full.expect("progress after the disk was full");
    assert!(
        after_full < len,
        "the fill was over before the disk was full"
    );
    let reader = report_of(reader);
    assert!(reader.ok, "the reader's bytes: {reader:?}");
    assert_eq!(
        reader.delivered, 0,
        "the reader fetched nothing: {reader:?}"
    );
    let err = builder(mount.path(), "another")
        .spawn_ranged(MIB, |_| Ok(io::empty()))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
}

/// `connections` apply to the writer of a shared entry: its fill runs over that many
/// connections at once, every byte is sent once, and a reader in another process reads them.
#[test]
fn connections_apply_to_the_writer_of_a_shared_entry() {
    use std::sync::atomic::AtomicUsize;
    /// A part of the source, counted among the open ones while it lives.
    struct Open {
        part: PatternPart,
        open: Arc<AtomicUsize>,
    }
    impl Read for Open {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.part.read(buf)
        }
    }
    impl Drop for Open {
        fn drop(&mut self) {
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let len = 8 * MIB + 999;
    let delivered = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (delivered, open, most) = (delivered.clone(), open.clone(), most.clone());
        builder(dir.path(), "lanes")
            .connections(4)
            .spawn_ranged(len, move |range: Range<u64>| {
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                Ok(Open {
                    part: PatternPart {
                        at: range.start,
                        end: range.end,
                        // 20 000 bytes a millisecond: a span takes 13 ms, the whole 0.4 s
                        // over one connection.
                        pace: Duration::from_millis(1),
                        delivered: Arc::clone(&delivered),
                    },
                    open: Arc::clone(&open),
                })
            })
            .unwrap()
    };
    wait_for_entry(dir.path());
    let reader = report_of(spawn_child(dir.path(), "lanes", len, Duration::ZERO, "all"));
    assert!(reader.ok, "the reader's bytes: {reader:?}");
    assert_eq!(
        reader.delivered, 0,
        "the reader fetched nothing: {reader:?}"
    );
    writer.wait_complete().unwrap();
    assert!(is_pattern(0, writer.slice(..).unwrap()));
    assert_eq!(most.load(Ordering::SeqCst), 4, "four connections at once");
    let sent = delivered.load(Ordering::SeqCst);
    assert!(sent <= len + 4 * SPAN, "{sent} bytes sent for {len}");
}

/// Two caches of one key in one process: the second is a reader of the first's entry (the
/// locks are per open file, so a process can be both); its far read is fetched by the writer.
/// Dropping every handle ends every thread of both, writer and reader, mid-fill.
#[test]
fn a_second_cache_in_one_process_reads_through_the_writer_and_dropping_ends_every_thread() {
    let dir = tempfile::tempdir().unwrap();
    let len = 64 * MIB;
    let (writer, writer_sent) = cache(dir.path(), "drop", len, Duration::from_millis(2));
    let (reader, reader_sent) = cache(dir.path(), "drop", len, Duration::ZERO);
    let tail = reader.slice(len - 100 * KIB..).unwrap();
    assert!(is_pattern(len - 100 * KIB, tail));
    assert_eq!(
        reader_sent.load(Ordering::SeqCst),
        0,
        "the reader fetched nothing itself"
    );
    assert!(
        writer_sent.load(Ordering::SeqCst) < len / 2,
        "the fill is far from the end"
    );
    assert!(threads_named("sc-drop") >= 2);
    drop((writer, reader));
    common::eventually("every thread ended", || threads_named("sc-drop") == 0);
}

/// A wait in one process is woken by a publish in another: the reader child's sleeps last 10
/// minutes unless a publish wakes them (`STREAMCACHE_TEST_LIVENESS_MS`), so a wake that did not
/// come would hang it past the guard. Linux only: elsewhere the fallback is a 20 ms poll.
#[cfg(target_os = "linux")]
#[test]
fn a_wait_in_one_process_is_woken_by_a_publish_in_another() {
    let dir = tempfile::tempdir().unwrap();
    let len = 4 * MIB;
    // The writer here, in this process, 64 chunks of 64 KiB 5 ms apart: every block the
    // reader needs comes after it started waiting.
    let (writer, _) = cache(dir.path(), "woken", len, Duration::from_millis(5));
    let reader = spawn_unwoken_child(dir.path(), "woken", len, "all");
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(report_of(reader)));
    let report = result
        .recv_timeout(common::HANG_GUARD)
        .expect("the reader was not woken by the writer's publishes");
    assert!(report.ok && report.delivered == 0, "{report:?}");
    drop(writer);
}

/// A reader process's async waits are served while its blocking waits come and go (the
/// threads that wait mirror by themselves, the mirror thread keeps quiet meanwhile: see
/// [`async_waits_served`]). The writer, here, starts once the child has its first waits
/// ready, 64 chunks 5 ms apart; the child's sleeps last 10 minutes unless something wakes them.
#[cfg(target_os = "linux")]
#[test]
fn async_waits_in_a_reader_are_woken_as_its_blocking_waits_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let len = 4 * MIB;
    let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let opened = Arc::clone(&gate);
    let writer = builder(dir.path(), "async")
        .spawn_ranged(len, move |range: Range<u64>| {
            let (open, opens) = &*opened;
            let _open = opens
                .wait_while(open.lock().unwrap(), |open| !*open)
                .unwrap();
            Ok(PatternPart {
                at: range.start,
                end: range.end,
                pace: Duration::from_millis(5),
                delivered: Arc::new(AtomicU64::new(0)),
            })
        })
        .unwrap();
    let mut reader = spawn_unwoken_child(dir.path(), "async", len, "async");
    let mut lines = BufReader::new(reader.stderr.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("READY"));
    assert!(ready, "the child never got ready");
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    // The rest of its stderr, for the report if it fails.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(report_of(reader)));
    let report = result
        .recv_timeout(common::HANG_GUARD)
        .expect("the reader's async waits were never served");
    assert!(
        report.ok && report.delivered == 0,
        "{report:?}: {:?}",
        rest.join().unwrap()
    );
    drop(writer);
}

/// The `VmFlags` of every mapping of this process whose file is a `.entry` in `dir`.
#[cfg(target_os = "linux")]
fn entry_mapping_flags(dir: &Path) -> Vec<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let dir = dir.canonicalize().unwrap();
    let mut flags = Vec::new();
    let mut in_entry = false;
    for line in smaps.lines() {
        if let Some(vm) = line.strip_prefix("VmFlags:") {
            if in_entry {
                flags.push(vm.trim().to_owned());
            }
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|a| a.contains('-'))
        {
            // A mapping's first line: `start-end perms offset dev inode [path]`.
            let path = line.split_whitespace().nth(5).map(Path::new);
            in_entry = path.is_some_and(|p| {
                p.starts_with(&dir) && p.extension().is_some_and(|e| e == "entry")
            });
        }
    }
    flags
}

/// The writer of a new entry maps it for huge pages, so that its write faults fill the page
/// cache with 2 MiB folios that other processes' reads map whole; a reader's mapping is not
/// advised (a fault on a cold page cache would then read 4 MiB). Where the kernel has no
/// transparent huge pages there is no advice to see.
#[cfg(target_os = "linux")]
#[test]
fn a_new_entry_is_advised_huge_pages_in_its_writer_only() {
    if !Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
        eprintln!("skipped: this kernel has no transparent huge pages");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let len = 8 * MIB;
    let (writer, _) = cache(dir.path(), "huge", len, Duration::ZERO);
    writer.wait_complete().unwrap();
    let (reader, reader_sent) = cache(dir.path(), "huge", len, Duration::ZERO);
    assert!(is_pattern(len - MIB, reader.slice(len - MIB..).unwrap()));
    assert_eq!(
        reader_sent.load(Ordering::SeqCst),
        0,
        "the second is a reader"
    );
    let mut flags = entry_mapping_flags(dir.path());
    flags.sort_by_key(|f| !f.split_whitespace().any(|f| f == "hg"));
    let huge: Vec<bool> = flags
        .iter()
        .map(|f| f.split_whitespace().any(|f| f == "hg"))
        .collect();
    assert_eq!(
        huge,
        [true, false],
        "the writer's mapping advised huge, the reader's not: {flags:?}"
    );
}
