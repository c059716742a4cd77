//! streamcache side by side with its peers and with the machine's limits, in one process, with
//! every ratio taken inside the same run (absolute numbers drift on a shared machine; ratios
//! taken together do not).
//!
//! ```text
//! cargo run -p streamcache-benches --release --bin report              # 1 GiB, best of 3
//! cargo run -p streamcache-benches --release --bin report -- --quick   # 128 MiB, one pass
//! cargo run -p streamcache-benches --release --bin report -- --json report.json
//! cargo run -p streamcache-benches --release --bin report -- --only ab --reps 5
//! cargo run -p streamcache-benches --release --bin report -- --only n --quick
//! cargo run -p streamcache-benches --release --bin report -- --only s3
//! ```
//!
//! Workloads (the contenders and their settings are in `benches/src/contenders.rs`):
//! (a) 1, 2, 4, 8 readers each read the whole stream and fold every byte;
//! (b) 4 threads doing random 4 KiB reads over the completed stream;
//! (c) wake latency: from the filler's publish to a parked reader's return;
//! (d) peak `RssAnon` while 4 readers read a stream 4× `memory_limit`, and an 8 GiB one
//!     (each in a child process of its own, so nothing else is counted);
//! (r) ranged sources: a zip over HTTP (`ZipArchive::new` + the last entry against the whole
//!     download, the bytes sent, stream-download beside it), and `spawn_ranged` against
//!     `spawn_resumable` with no seek.
//! (n) many connections fill one stream: against Debian's nginx at `limit_rate` per request,
//!     `connections(n)` for n = 1, 2, 4, 8 against `aria2c -x n -s n` and hf_transfer's
//!     `download(max_files=n)`, a reader hashing the stream as it arrives, the bytes nginx sent,
//!     peak `RssAnon` with 8 connections against 1 (needs nginx; aria2c and hf_transfer when
//!     found, see `--hf-python`).
//! (p) one entry shared by processes (`cache_dir` + `cache_key`; the other processes are this
//!     binary again, Unix only): a complete 256 MiB entry read in a new process against in the
//!     writer's; the wake of a reader in another process against a thread of the writer's,
//!     from the paced source's return of each chunk (`CLOCK_MONOTONIC`, one clock for all);
//!     8 processes started together on one fresh key against one alone (256 MiB at 256 MiB/s).
//! (s3) an object in S3 on moto's server (not in the default set; needs scripts/object-servers
//!     and s3fs in its venv): a 256 MiB zip's entry list and last entry with `spawn_object_url`
//!     against s3fs, the bytes moto sent, and the whole object with `connections(8)` against
//!     s3fs's `cat`.
//!
//! Limits, measured in the same run: L-mem (the best copy of the stream into fresh anonymous
//! memory), L-file (the best copy into a pre-sized, fallocated temp file), S (one core folding a
//! buffer already in memory), F (streamcache's filler alone, per storage). With N readers on C
//! cores the CPU bound of the stream's rate is `min(F, C / (1/F + N/S))`. Each limit is the best
//! of samples taken before (a) and at the start of each of its repetitions, so that a slow
//! moment of a shared machine does not lower a bound.
//!
//! Two more references show what bounds a miss. P, the bare pipeline: (a)'s dataflow with no
//! library (one writer, N folders spinning on an atomic mark), measured beside streamcache at
//! each N; the CPU bound leaves out the memory bandwidth the writer and readers share, P does
//! not. And (c) has two floors: the bare `Condvar` wake-up notified from the timing thread, and
//! the same notified from a thread woken by the gate, the shape every filler has.
//!
//! Every timed run of the limits and of (a) follows the same prewarm (`--prewarm`): memory
//! touched and freed just before, so that no run meets memory the VM's balloon has handed back
//! to the host (a first touch of that costs a host fault; see `streamcache_benches::prewarm`).

mod cli;
mod connections;
mod memory;
mod object_store;
mod random;
mod ranged;
mod shared_entry;
mod table;
mod throughput;
mod wake;

use cli::Opts;
use std::io;
use std::time::{Duration, Instant};
use streamcache_benches::{
    cores, expected_sum, is_tmpfs, loadavg, Setup, CONN_RSS_CHILD, MIB, RSS_CHILD,
};
use table::Report;

pub(crate) const GIB: f64 = (1u64 << 30) as f64;
pub(crate) const READER_COUNTS: [usize; 4] = [1, 2, 4, 8];
/// The slack over `memory_limit` that (d) allows.
pub(crate) const RSS_SLACK: u64 = 16 * MIB;

/// What the binary does when run again as a child of one memory measurement.
type Child = fn(&[String]) -> io::Result<()>;

fn main() {
    let mut args = std::env::args().skip(1);
    let child: Option<Child> = match args.next().as_deref() {
        Some(RSS_CHILD) => Some(streamcache_benches::rss_child),
        Some(CONN_RSS_CHILD) => Some(streamcache_benches::conn_rss_child),
        #[cfg(unix)]
        Some(streamcache_benches::SHARED_CHILD) => Some(streamcache_benches::shared_child),
        _ => None,
    };
    if let Some(child) = child {
        let rest: Vec<String> = args.collect();
        std::process::exit(match child(&rest) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rss child: {e}");
                1
            }
        });
    }
    let opts = Opts::parse();
    if let Err(e) = run(&opts) {
        eprintln!("report: {e}");
        std::process::exit(1);
    }
}

/// The CPU bound of the stream's rate with `n` readers: the filler's work (1/F per byte) and the
/// readers' (n/S per byte) shared by the cores, and never above F.
pub(crate) fn cpu_bound(f: f64, s: f64, n: usize, cores: usize) -> f64 {
    f.min(cores as f64 / (1.0 / f + n as f64 / s))
}

/// The best (shortest) of `reps` runs of `f`.
pub(crate) fn best<T>(
    reps: usize,
    mut f: impl FnMut() -> io::Result<T>,
    time: impl Fn(&T) -> Duration,
) -> io::Result<T> {
    let mut best: Option<T> = None;
    for _ in 0..reps {
        let t = f()?;
        if best.as_ref().is_none_or(|b| time(&t) < time(b)) {
            best = Some(t);
        }
    }
    Ok(best.expect("reps >= 1"))
}

fn run(opts: &Opts) -> io::Result<()> {
    let cores = cores();
    let mut report = Report::default();
    let setup = Setup {
        len: opts.len,
        spill_limit: 8 << 20,
        temp_dir: opts.temp_dir.clone(),
    };
    println!("streamcache bench_report");
    report.info("cores", cores.to_string());
    report.info("load average at start", loadavg());
    report.info("stream", format!("{} MiB", opts.len / MIB));
    report.info("best of", opts.reps.to_string());
    report.info(
        "temp dir",
        format!(
            "{}{}",
            opts.temp_dir.display(),
            if is_tmpfs(&opts.temp_dir) {
                " (tmpfs: file numbers are memory numbers!)"
            } else {
                ""
            }
        ),
    );
    report.info("mode", if opts.quick { "quick" } else { "full" });
    report.info(
        "prewarm",
        format!(
            "{} MiB touched and freed before each timed run of the limits and (a)",
            opts.prewarm / MIB
        ),
    );
    let started = Instant::now();

    // The expected checksum, once (not timed).
    expected_sum(setup.len);

    if opts.runs('a') {
        let mut lim = throughput::Limits::measure(opts, &setup)?;
        throughput::sequential(opts, &setup, &mut lim, cores, &mut report)?;
        lim.report(&mut report);
    }
    if opts.runs('b') {
        random::random(opts, &setup, cores, &mut report)?;
    }
    if opts.runs('c') {
        wake::wake(opts, &setup, &mut report)?;
    }
    if opts.runs('d') {
        memory::rss(opts, &mut report)?;
    }
    if opts.runs('r') {
        ranged::ranged(opts, &setup, &mut report)?;
    }
    if opts.runs('n') {
        connections::connections(opts, &mut report)?;
    }
    if opts.runs('p') {
        shared_entry::processes(opts, &mut report)?;
    }
    if opts.runs('s') {
        object_store::object_store(opts, &mut report)?;
    }
    report.info("load average at end", loadavg());
    report.info("took", format!("{:.0} s", started.elapsed().as_secs_f64()));

    println!();
    report.print_table();
    println!();
    report.print_verdicts();
    if let Some(path) = &opts.json {
        std::fs::write(path, report.to_json())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
