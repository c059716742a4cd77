//! streamcache side by side with its peers and with the machine's limits, in one process, with
//! every ratio taken inside the same run (absolute numbers drift on a shared machine; ratios
//! taken together do not).
//!
//! ```text
//! cargo run --release --example bench_report                      # 1 GiB streams, best of 3
//! cargo run --release --example bench_report -- --quick           # 128 MiB streams, one pass
//! cargo run --release --example bench_report -- --json report.json
//! cargo run --release --example bench_report -- --only ab --reps 5
//! ```
//!
//! Workloads (the contenders and their settings are in `benches/common/mod.rs`):
//! (a) 1, 2, 4, 8 readers each read the whole stream and fold every byte;
//! (b) 4 threads doing random 4 KiB reads over the completed stream;
//! (c) wake latency: from the filler's publish to a parked reader's return;
//! (d) peak `RssAnon` while 4 readers read a stream 4× `memory_limit`, and an 8 GiB one
//!     (each in a child process of its own, so nothing else is counted).
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
//! to the host (a first touch of that costs a host fault; see `common::prewarm`).

#[path = "../benches/common/mod.rs"]
mod common;

use common::{Class, Contender, Limit, Prepared, Setup, WakeTarget, RANDOM_READ};
use std::fmt::Write as _;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
const READER_COUNTS: [usize; 4] = [1, 2, 4, 8];
/// The slack over `memory_limit` that (d) allows.
const RSS_SLACK: u64 = 16 * MIB;

fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--rss-child") {
        let rest: Vec<String> = args.collect();
        std::process::exit(match rss_child(&rest) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rss child: {e}");
                1
            }
        });
    }
    let opts = match Opts::parse() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("bench_report: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("bench_report: {e}");
        std::process::exit(1);
    }
}

const USAGE: &str = "usage: bench_report [--quick] [--json PATH] [--reps N] [--len SIZE] \
[--big SIZE] [--rss-limit SIZE] [--temp-dir DIR] [--only abcd] [--contenders IDS] [--readers LIST]
[--prewarm SIZE]
  --quick           128 MiB streams, one pass, a 1 GiB stream in place of 8 GiB in (d)
  --json PATH       also write the table and the verdicts as JSON
  --reps N          best of N for (a) and (b) (default 3, 1 with --quick)
  --len SIZE        stream length for (a) and (b) (default 1G; K, M, G suffixes)
  --big SIZE        the large stream of (d) (default 8G)
  --rss-limit SIZE  memory_limit in (d) (default 64M; the small stream is 4x this)
  --temp-dir DIR    where temp files go (default: the system temp dir; must not be tmpfs)
  --only LETTERS    run only these workloads, e.g. --only ac
  --contenders IDS  (a) only for these, e.g. streamcache-mem,naive (ids: naive, streamcatcher,
                    stream-download, spooled, streamcache-mem, streamcache-spill)
  --readers LIST    (a) only with these reader counts, e.g. 1,4
  --prewarm SIZE    memory touched and freed before each timed run of the limits and (a)
                    (default 2x the stream + 512M, at most half of MemAvailable; 0: none)";

#[derive(Debug)]
struct Opts {
    quick: bool,
    json: Option<PathBuf>,
    reps: usize,
    len: u64,
    big: u64,
    rss_limit: u64,
    temp_dir: PathBuf,
    only: String,
    contenders: Vec<Contender>,
    readers: Vec<usize>,
    /// Bytes touched and freed before each timed run of the limits and (a): see
    /// `common::prewarm`.
    prewarm: u64,
    random_ops: u64,
    wake_iters: usize,
}

impl Opts {
    fn parse() -> Result<Opts, String> {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        args.retain(|a| a != "--quick");
        let mut opts = Opts {
            quick,
            json: None,
            reps: if quick { 1 } else { 3 },
            len: if quick { 128 * MIB } else { 1024 * MIB },
            big: if quick { 1024 * MIB } else { 8192 * MIB },
            rss_limit: if quick { 32 * MIB } else { 64 * MIB },
            temp_dir: std::env::temp_dir(),
            only: "abcd".to_owned(),
            contenders: Contender::ALL.to_vec(),
            readers: READER_COUNTS.to_vec(),
            prewarm: u64::MAX,
            random_ops: if quick { 100_000 } else { 500_000 },
            wake_iters: if quick { 300 } else { 2000 },
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--json" => opts.json = Some(PathBuf::from(value()?)),
                "--reps" => opts.reps = value()?.parse().map_err(|e| format!("--reps: {e}"))?,
                "--len" => opts.len = size(&value()?)?,
                "--big" => opts.big = size(&value()?)?,
                "--rss-limit" => opts.rss_limit = size(&value()?)?,
                "--temp-dir" => opts.temp_dir = PathBuf::from(value()?),
                "--only" => opts.only = value()?,
                "--prewarm" => opts.prewarm = size(&value()?)?,
                "--contenders" => {
                    opts.contenders = value()?
                        .split(',')
                        .map(|id| Contender::from_id(id).ok_or(format!("no contender {id:?}")))
                        .collect::<Result<_, _>>()?
                }
                "--readers" => {
                    opts.readers = value()?
                        .split(',')
                        .map(|n| n.parse().map_err(|e| format!("--readers: {e}")))
                        .collect::<Result<_, _>>()?
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        if opts.reps == 0 || opts.len < 2 * RANDOM_READ as u64 {
            return Err("--reps must be at least 1 and --len at least 8K".to_owned());
        }
        if opts.prewarm == u64::MAX {
            let half_available = mem_available().map_or(u64::MAX, |a| a / 2);
            opts.prewarm = (2 * opts.len + 512 * MIB).min(half_available);
        }
        Ok(opts)
    }

    fn runs(&self, workload: char) -> bool {
        self.only.contains(workload)
    }
}

/// Parses `123`, `64K`, `8M`, `1G`.
fn size(arg: &str) -> Result<u64, String> {
    let (digits, shift) = match arg.chars().last() {
        Some('K' | 'k') => (&arg[..arg.len() - 1], 10),
        Some('M' | 'm') => (&arg[..arg.len() - 1], 20),
        Some('G' | 'g') => (&arg[..arg.len() - 1], 30),
        _ => (arg, 0),
    };
    digits
        .parse::<u64>()
        .map(|n| n << shift)
        .map_err(|e| format!("{arg:?} is not a size: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The report

/// One line of the table (and one object in the JSON).
#[derive(Debug, Clone)]
struct Row {
    workload: &'static str,
    contender: String,
    readers: Option<usize>,
    /// `None`: not measured (see `note`).
    value: Option<f64>,
    unit: &'static str,
    limit_name: String,
    limit: Option<f64>,
    /// value / limit.
    vs_limit: Option<f64>,
    /// value / streamcache's value in the same workload (same storage class).
    vs_streamcache: Option<f64>,
    note: String,
}

impl Row {
    fn new(
        workload: &'static str,
        contender: &str,
        readers: Option<usize>,
        unit: &'static str,
    ) -> Row {
        Row {
            workload,
            contender: contender.to_owned(),
            readers,
            value: None,
            unit,
            limit_name: String::new(),
            limit: None,
            vs_limit: None,
            vs_streamcache: None,
            note: String::new(),
        }
    }

    fn value(mut self, value: f64) -> Row {
        self.value = Some(value);
        self
    }

    fn limit(mut self, name: &str, limit: f64) -> Row {
        self.limit_name = name.to_owned();
        self.limit = Some(limit);
        self.vs_limit = self.value.map(|v| v / limit);
        self
    }

    fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
}

/// One target of the issue, with its verdict.
#[derive(Debug, Clone)]
struct Verdict {
    target: String,
    measured: String,
    /// `None`: could not be measured.
    met: Option<bool>,
}

#[derive(Debug, Default)]
struct Report {
    header: Vec<(String, String)>,
    rows: Vec<Row>,
    verdicts: Vec<Verdict>,
}

impl Report {
    fn info(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        println!("  {key}: {value}");
        self.header.push((key.to_owned(), value));
    }

    fn verdict(&mut self, target: String, measured: String, met: Option<bool>) {
        self.verdicts.push(Verdict {
            target,
            measured,
            met,
        });
    }

    fn value(&self, workload: &str, contender: &str, readers: Option<usize>) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.workload == workload && r.contender == contender && r.readers == readers)
            .and_then(|r| r.value)
    }
}

fn gib_s(rate: f64) -> String {
    format!("{:.2} GiB/s", rate / GIB)
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "GiB/s" => format!("{:.2}", v / GIB),
        "MiB" => format!("{:.1}", v / MIB as f64),
        _ => format!("{v:.1}"),
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
}

fn print_table(report: &Report) {
    let header = [
        "wl",
        "contender",
        "N",
        "value",
        "unit",
        "limit",
        "×limit",
        "×sc",
        "note",
    ];
    let mut lines: Vec<[String; 9]> = vec![header.map(str::to_owned)];
    for r in &report.rows {
        let limit = match r.limit {
            Some(l) => format!("{} {}", r.limit_name, fmt_value(l, r.unit)),
            None => r.limit_name.clone(),
        };
        lines.push([
            r.workload.to_owned(),
            r.contender.clone(),
            r.readers.map_or_else(|| "-".to_owned(), |n| n.to_string()),
            r.value
                .map_or_else(|| "n/a".to_owned(), |v| fmt_value(v, r.unit)),
            r.unit.to_owned(),
            limit,
            fmt_ratio(r.vs_limit),
            fmt_ratio(r.vs_streamcache),
            r.note.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (k, line) in lines.iter().enumerate() {
        let mut out = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i < 8 {
                let pad = widths[i] - cell.chars().count();
                // Numbers right-aligned, text left-aligned.
                if matches!(i, 2 | 3 | 6 | 7) {
                    let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
                } else {
                    let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
                }
            } else {
                out.push_str(cell);
            }
        }
        println!("{}", out.trim_end());
        if k == 0 {
            println!("{}", "-".repeat(widths.iter().sum::<usize>() + 2 * 8 + 4));
        }
    }
}

fn print_verdicts(report: &Report) {
    let w = report
        .verdicts
        .iter()
        .map(|v| v.target.chars().count())
        .max()
        .unwrap_or(0);
    for v in &report.verdicts {
        let verdict = match v.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "n/a",
        };
        let pad = w - v.target.chars().count();
        println!(
            "{:<7}  {}{}  {}",
            verdict,
            v.target,
            " ".repeat(pad),
            v.measured
        );
    }
    let met = report
        .verdicts
        .iter()
        .filter(|v| v.met == Some(true))
        .count();
    let not = report
        .verdicts
        .iter()
        .filter(|v| v.met == Some(false))
        .count();
    println!("{met} met, {not} not met");
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".to_owned(),
    }
}

fn to_json(report: &Report) -> String {
    let mut out = String::from("{\n  \"header\": {");
    for (i, (k, v)) in report.header.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}\n    {}: {}", json_str(k), json_str(v));
    }
    out.push_str("\n  },\n  \"rows\": [");
    for (i, r) in report.rows.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        // Throughputs are in bytes per second and sizes in bytes in the JSON.
        let unit = match r.unit {
            "GiB/s" => "bytes/s",
            "MiB" => "bytes",
            u => u,
        };
        let _ = write!(
            out,
            "{sep}\n    {{\"workload\": {}, \"contender\": {}, \"readers\": {}, \"value\": {}, \
             \"unit\": {}, \"limit_name\": {}, \"limit\": {}, \"vs_limit\": {}, \
             \"vs_streamcache\": {}, \"note\": {}}}",
            json_str(r.workload),
            json_str(&r.contender),
            r.readers
                .map_or_else(|| "null".to_owned(), |n| n.to_string()),
            json_num(r.value),
            json_str(unit),
            json_str(&r.limit_name),
            json_num(r.limit),
            json_num(r.vs_limit),
            json_num(r.vs_streamcache),
            json_str(&r.note),
        );
    }
    out.push_str("\n  ],\n  \"targets\": [");
    for (i, v) in report.verdicts.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let met = v.met.map_or_else(|| "null".to_owned(), |m| m.to_string());
        let _ = write!(
            out,
            "{sep}\n    {{\"target\": {}, \"measured\": {}, \"met\": {met}}}",
            json_str(&v.target),
            json_str(&v.measured),
        );
    }
    out.push_str("\n  ]\n}\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Running

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// The CPU bound of the stream's rate with `n` readers: the filler's work (1/F per byte) and the
/// readers' (n/S per byte) shared by the cores, and never above F.
fn cpu_bound(f: f64, s: f64, n: usize, cores: usize) -> f64 {
    f.min(cores as f64 / (1.0 / f + n as f64 / s))
}

/// The best (shortest) of `reps` runs of `f`.
fn best<T>(
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

fn free_space(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: `statvfs` only writes into the zeroed struct we pass.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
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
            if common::is_tmpfs(&opts.temp_dir) {
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
    common::expected_sum(setup.len);

    if opts.runs('a') {
        let mut lim = Limits::measure(opts, &setup)?;
        sequential(opts, &setup, &mut lim, cores, &mut report)?;
        lim.report(&mut report);
    }
    if opts.runs('b') {
        random(opts, &setup, cores, &mut report)?;
    }
    if opts.runs('c') {
        wake(opts, &setup, &mut report)?;
    }
    if opts.runs('d') {
        rss(opts, &mut report)?;
    }
    report.info("load average at end", loadavg());
    report.info("took", format!("{:.0} s", started.elapsed().as_secs_f64()));

    println!();
    print_table(&report);
    println!();
    print_verdicts(&report);
    if let Some(path) = &opts.json {
        std::fs::write(path, to_json(&report))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// One measurement of every limit, each after the prewarm (bytes per second).
#[derive(Debug, Clone, Copy)]
struct LimitRates {
    mem_vec: f64,
    mem_huge: f64,
    file_map: f64,
    file_pwrite: f64,
    s: f64,
    f_mem: f64,
    f_spill: f64,
}

impl LimitRates {
    fn measure(opts: &Opts, setup: &Setup) -> io::Result<LimitRates> {
        let len = setup.len as f64;
        let rate = |d: Duration| len / d.as_secs_f64();
        let limit = |limit: Limit| -> io::Result<f64> {
            common::prewarm(opts.prewarm)?;
            common::limit(limit, setup).map(rate)
        };
        let filler_alone = |spill: bool| -> io::Result<f64> {
            common::prewarm(opts.prewarm)?;
            common::filler_alone(setup, spill).map(rate)
        };
        // A fresh buffer each time: one kept for minutes folds slower and slower here (4.6
        // against 8 to 10 GiB/s), likely as the host merges its repeating pages, which readers
        // of a stream, reading bytes just written, never meet.
        let present = common::present_buffer(setup.len)?;
        if common::fold(0, &present) != common::expected_sum(setup.len) {
            return Err(io::Error::other("fold of the present buffer disagrees"));
        }
        let s = rate(common::fold_time(&present));
        drop(present);
        Ok(LimitRates {
            mem_vec: limit(Limit::MemVec)?,
            mem_huge: limit(Limit::MemHuge)?,
            file_map: limit(Limit::FileMap)?,
            file_pwrite: limit(Limit::FilePwrite)?,
            s,
            f_mem: filler_alone(false)?,
            f_spill: filler_alone(true)?,
        })
    }

    /// Each limit's best of the two.
    fn max(self, o: LimitRates) -> LimitRates {
        LimitRates {
            mem_vec: self.mem_vec.max(o.mem_vec),
            mem_huge: self.mem_huge.max(o.mem_huge),
            file_map: self.file_map.max(o.file_map),
            file_pwrite: self.file_pwrite.max(o.file_pwrite),
            s: self.s.max(o.s),
            f_mem: self.f_mem.max(o.f_mem),
            f_spill: self.f_spill.max(o.f_spill),
        }
    }
}

/// L-mem, L-file, S and F for each storage: the best seen in the whole run. The limits are
/// measured `reps` times before (a), then once more at the start of each later repetition of
/// (a), so that a slow moment of the machine does not lower a bound (and flatter a ratio).
struct Limits {
    best: LimitRates,
    samples: usize,
}

impl Limits {
    fn measure(opts: &Opts, setup: &Setup) -> io::Result<Limits> {
        println!("limits ...");
        let mut limits = Limits {
            best: LimitRates::measure(opts, setup)?,
            samples: 1,
        };
        for _ in 1..opts.reps {
            limits.sample(opts, setup)?;
        }
        println!("  limits: {}", limits.summary());
        Ok(limits)
    }

    /// One more sample, interleaved with (a).
    fn refresh(&mut self, opts: &Opts, setup: &Setup) -> io::Result<()> {
        self.sample(opts, setup)?;
        println!("  limits so far: {}", self.summary());
        Ok(())
    }

    fn sample(&mut self, opts: &Opts, setup: &Setup) -> io::Result<()> {
        self.best = self.best.max(LimitRates::measure(opts, setup)?);
        self.samples += 1;
        Ok(())
    }

    /// The limits in one line, for the progress output and the report's header.
    fn summary(&self) -> String {
        format!(
            "best of {} samples: L-mem {}, L-file {}, S {}, F-mem {}, F-spill {}",
            self.samples,
            gib_s(self.l_mem()),
            gib_s(self.l_file()),
            gib_s(self.best.s),
            gib_s(self.best.f_mem),
            gib_s(self.best.f_spill)
        )
    }

    fn l_mem(&self) -> f64 {
        self.best.mem_vec.max(self.best.mem_huge)
    }

    fn l_file(&self) -> f64 {
        self.best.file_map.max(self.best.file_pwrite)
    }

    fn s(&self) -> f64 {
        self.best.s
    }

    fn l(&self, class: Class) -> (f64, &'static str) {
        match class {
            Class::Memory => (self.l_mem(), "L-mem"),
            Class::File => (self.l_file(), "L-file"),
        }
    }

    fn f(&self, class: Class) -> f64 {
        match class {
            Class::Memory => self.best.f_mem,
            Class::File => self.best.f_spill,
        }
    }

    /// What an (a) row with `n` readers in `class` is compared with: L at one reader, the CPU
    /// bound beyond.
    fn for_readers(&self, class: Class, n: usize, cores: usize) -> (f64, &'static str) {
        if n == 1 {
            return self.l(class);
        }
        let name = match class {
            Class::Memory => "bound(F-mem)",
            Class::File => "bound(F-spill)",
        };
        (cpu_bound(self.f(class), self.s(), n, cores), name)
    }

    /// The limits' rows, at the top of the table, and the header line.
    fn report(&self, report: &mut Report) {
        let b = &self.best;
        let candidate = |limit: Limit, rate: f64| {
            Row::new("limit", limit.name(), None, "GiB/s")
                .value(rate)
                .note(match limit.class() {
                    Class::Memory => "candidate for L-mem",
                    Class::File => "candidate for L-file",
                })
        };
        let rows = vec![
            candidate(Limit::MemVec, b.mem_vec),
            candidate(Limit::MemHuge, b.mem_huge),
            candidate(Limit::FileMap, b.file_map),
            candidate(Limit::FilePwrite, b.file_pwrite),
            Row::new(
                "limit",
                "S: one core folding a present buffer",
                Some(1),
                "GiB/s",
            )
            .value(b.s),
            Row::new(
                "limit",
                "F: streamcache filler alone (memory)",
                Some(0),
                "GiB/s",
            )
            .value(b.f_mem)
            .limit("L-mem", self.l_mem()),
            Row::new(
                "limit",
                "F: streamcache filler alone (spill)",
                Some(0),
                "GiB/s",
            )
            .value(b.f_spill)
            .limit("L-file", self.l_file()),
        ];
        report.rows.splice(0..0, rows);
        report.info("limits", self.summary());
    }
}

fn bare_name(class: Class) -> &'static str {
    match class {
        Class::Memory => "P: bare pipeline (memory)",
        Class::File => "P: bare pipeline (file)",
    }
}

/// What the verdict on streamcache in `class` with `n` readers adds about P, the bare pipeline:
/// how close P itself comes to the target's limit, and streamcache to P.
fn against_bare(report: &Report, class: Class, n: usize, limit: f64) -> String {
    let sc = report.value("a", sc_of(class).name(), Some(n));
    match (sc, report.value("a", bare_name(class), Some(n))) {
        (Some(sc), Some(p)) => format!(
            "; P {} = {:.2} × limit, streamcache {:.2} × P",
            gib_s(p),
            p / limit,
            sc / p
        ),
        _ => String::new(),
    }
}

fn sc_of(class: Class) -> Contender {
    match class {
        Class::Memory => Contender::StreamcacheMem,
        Class::File => Contender::StreamcacheSpill,
    }
}

fn sequential(
    opts: &Opts,
    setup: &Setup,
    lim: &mut Limits,
    cores: usize,
    report: &mut Report,
) -> io::Result<()> {
    println!("(a) sequential readers ...");
    // Best of `reps`, the repetitions interleaved so that drift hits every contender alike.
    let mut best: Vec<(Contender, usize, Result<Duration, String>)> = Vec::new();
    // P, the bare pipeline, for each storage class streamcache is measured in.
    let classes: Vec<Class> = [Class::Memory, Class::File]
        .into_iter()
        .filter(|&class| opts.contenders.contains(&sc_of(class)))
        .collect();
    let mut bare: Vec<(Class, usize, Duration)> = Vec::new();
    for rep in 0..opts.reps {
        if rep > 0 {
            lim.refresh(opts, setup)?;
        }
        for &n in &opts.readers {
            for &class in &classes {
                common::prewarm(opts.prewarm)?;
                let run = common::bare_pipeline(setup, n, class)?;
                run.check(setup.len)?;
                println!(
                    "  rep {rep} {:<28} N={n}: {}",
                    bare_name(class),
                    gib_s(run.rate(setup.len))
                );
                match bare.iter_mut().find(|(bc, bn, _)| *bc == class && *bn == n) {
                    None => bare.push((class, n, run.elapsed)),
                    Some((_, _, b)) => *b = (*b).min(run.elapsed),
                }
            }
            for &c in &opts.contenders {
                if c.max_readers().is_some_and(|max| n > max) {
                    if rep == 0 {
                        best.push((c, n, Err(format!("n/a: {} reader(s) per download", 1))));
                    }
                    continue;
                }
                common::prewarm(opts.prewarm)?;
                let t = Instant::now();
                let outcome = common::sequential(c, setup, n).and_then(|run| {
                    run.check(setup.len)?;
                    Ok(run.elapsed)
                });
                println!(
                    "  rep {rep} {:<28} N={n}: {}",
                    c.name(),
                    match &outcome {
                        Ok(d) => format!(
                            "{} ({:.2} s)",
                            gib_s(setup.len as f64 / d.as_secs_f64()),
                            t.elapsed().as_secs_f64()
                        ),
                        Err(e) => format!("failed: {e}"),
                    }
                );
                let slot = best.iter_mut().find(|(bc, bn, _)| *bc == c && *bn == n);
                match (slot, outcome) {
                    (None, outcome) => {
                        best.push((c, n, outcome.map_err(|e| format!("failed: {e}"))))
                    }
                    (Some((_, _, Ok(b))), Ok(d)) if d < *b => *b = d,
                    (Some(_), Ok(_)) => {}
                    (Some(slot), Err(e)) => slot.2 = Err(format!("failed: {e}")),
                }
            }
        }
    }
    for &n in &opts.readers {
        for &c in &opts.contenders {
            let (_, _, outcome) = best
                .iter()
                .find(|(bc, bn, _)| *bc == c && *bn == n)
                .expect("ran");
            let class = c.class();
            let mut row = Row::new("a", c.name(), Some(n), "GiB/s");
            match outcome {
                Ok(d) => row = row.value(setup.len as f64 / d.as_secs_f64()),
                Err(e) => row = row.note(e.clone()),
            }
            let (limit, name) = lim.for_readers(class, n, cores);
            report.rows.push(row.limit(name, limit));
        }
        for &(class, _, d) in bare.iter().filter(|(_, bn, _)| *bn == n) {
            let p = setup.len as f64 / d.as_secs_f64();
            let (limit, name) = lim.for_readers(class, n, cores);
            report.rows.push(
                Row::new("a", bare_name(class), Some(n), "GiB/s")
                    .value(p)
                    .limit(name, limit)
                    .note("P: no library, no parking; the machine's bound for this dataflow"),
            );
        }
        // Ratios to streamcache (same storage class, same N).
        for i in 0..report.rows.len() {
            let r = &report.rows[i];
            if r.workload != "a" || r.readers != Some(n) {
                continue;
            }
            // The bare pipeline rows are limits, not contenders.
            let Some(c) = Contender::ALL.into_iter().find(|c| c.name() == r.contender) else {
                continue;
            };
            let sc = report.value("a", sc_of(c.class()).name(), Some(n));
            let v = r.value;
            report.rows[i].vs_streamcache = v.zip(sc).map(|(v, sc)| v / sc);
        }
    }

    // Verdicts.
    for (c, l, name) in [
        (Contender::StreamcacheMem, lim.l_mem(), "L-mem"),
        (Contender::StreamcacheSpill, lim.l_file(), "L-file"),
    ] {
        let v = report.value("a", c.name(), Some(1));
        report.verdict(
            format!("(a) 1 reader: {} >= 0.9 × {name}", c.name()),
            v.map_or_else(
                || "not measured".to_owned(),
                |v| {
                    format!("{:.2} × ({} / {})", v / l, gib_s(v), gib_s(l))
                        + &against_bare(report, c.class(), 1, l)
                },
            ),
            v.map(|v| v >= 0.9 * l),
        );
    }
    for n in [2, 4, 8] {
        for c in [Contender::StreamcacheMem, Contender::StreamcacheSpill] {
            let (bound, _) = lim.for_readers(c.class(), n, cores);
            let v = report.value("a", c.name(), Some(n));
            report.verdict(
                format!("(a) {n} readers: {} >= 0.85 × CPU bound", c.name()),
                v.map_or_else(
                    || "not measured".to_owned(),
                    |v| {
                        format!("{:.2} × ({} / {})", v / bound, gib_s(v), gib_s(bound))
                            + &against_bare(report, c.class(), n, bound)
                    },
                ),
                v.map(|v| v >= 0.85 * bound),
            );
        }
    }
    for n in READER_COUNTS {
        // Against each peer, the streamcache of the peer's storage class.
        let mut worst: Option<(f64, &str)> = None;
        let mut complete = true;
        for c in Contender::ALL.into_iter().filter(|c| !c.is_streamcache()) {
            if c.max_readers().is_some_and(|max| n > max) {
                continue;
            }
            let (Some(peer), Some(sc)) = (
                report.value("a", c.name(), Some(n)),
                report.value("a", sc_of(c.class()).name(), Some(n)),
            ) else {
                complete = false;
                continue;
            };
            if worst.is_none_or(|(w, _)| sc / peer < w) {
                worst = Some((sc / peer, c.name()));
            }
        }
        report.verdict(
            format!("(a) {n} reader(s): streamcache ahead of every peer"),
            worst.map_or_else(
                || "not measured".to_owned(),
                |(r, name)| format!("closest: {r:.2}× {name}"),
            ),
            worst.map(|(r, _)| r > 1.0 && complete),
        );
    }
    for n in [4, 8] {
        for peer in [Contender::Streamcatcher, Contender::Naive] {
            let sc = report.value("a", Contender::StreamcacheMem.name(), Some(n));
            let p = report.value("a", peer.name(), Some(n));
            let ratio = sc.zip(p).map(|(sc, p)| sc / p);
            report.verdict(
                format!(
                    "(a) {n} readers: streamcache (memory) >= 3 × {}",
                    peer.name()
                ),
                ratio.map_or_else(|| "not measured".to_owned(), |r| format!("{r:.2}×")),
                ratio.map(|r| r >= 3.0),
            );
        }
    }
    Ok(())
}

fn random(opts: &Opts, setup: &Setup, cores: usize, report: &mut Report) -> io::Result<()> {
    println!("(b) random 4 KiB reads ...");
    const THREADS: usize = 4;
    // The cost of one read: the reading threads' CPU time / reads done (robust to whatever
    // else runs on the machine). Also shown: wall time × the cores the threads can use / reads,
    // which equals it on a quiet machine unless the readers wait for each other asleep.
    let measure = |prepared: &Prepared, threads: usize| -> io::Result<(f64, f64)> {
        let run = best(
            opts.reps,
            || prepared.random_reads(setup.len, threads, opts.random_ops),
            |r| r.cpu,
        )?;
        let reads = threads as f64 * opts.random_ops as f64;
        let busy = threads.min(cores) as f64;
        Ok((
            run.cpu.as_secs_f64() * 1e9 / reads,
            run.wall.as_secs_f64() * 1e9 * busy / reads,
        ))
    };
    let wall_note = |wall: f64| format!("wall-based {wall:.0} ns/read");
    let (vec, vec_wall) = measure(&Prepared::new(None, setup)?, THREADS)?;
    let (huge, huge_wall) = {
        let p = Prepared::new_memcpy_hugepage(setup)?;
        measure(&p, THREADS)?
    };
    let memcpy = vec.min(huge);
    report.rows.push(
        Row::new("b", "memcpy 4 KiB from a Vec", Some(THREADS), "CPU ns/read")
            .value(vec)
            .note(format!("baseline candidate; {}", wall_note(vec_wall))),
    );
    report.rows.push(
        Row::new(
            "b",
            "memcpy 4 KiB from a MADV_HUGEPAGE map",
            Some(THREADS),
            "CPU ns/read",
        )
        .value(huge)
        .note(format!("baseline candidate; {}", wall_note(huge_wall))),
    );
    for c in Contender::ALL {
        let prepared = match Prepared::new(Some(c), setup) {
            Ok(p) => p,
            Err(e) => {
                report.rows.push(
                    Row::new("b", c.name(), Some(THREADS), "CPU ns/read")
                        .note(format!("failed: {e}")),
                );
                continue;
            }
        };
        let threads = THREADS.min(prepared.max_threads());
        let mut row = Row::new("b", c.name(), Some(threads), "CPU ns/read");
        match measure(&prepared, threads) {
            Ok((ns, wall)) => row = row.value(ns).limit("memcpy", memcpy).note(wall_note(wall)),
            Err(e) => row = row.note(format!("failed: {e}")),
        }
        if threads < THREADS {
            let note = format!(
                "n/a for {THREADS} readers (one reader per download), 1 shown; {}",
                row.note
            );
            row = row.note(note);
        }
        println!(
            "  {:<28} {}",
            c.name(),
            row.value
                .map_or_else(|| row.note.clone(), |v| format!("{v:.0} ns/read"))
        );
        report.rows.push(row);
        drop(prepared);
    }
    for i in 0..report.rows.len() {
        let r = &report.rows[i];
        if r.workload != "b" {
            continue;
        }
        let Some(c) = Contender::ALL.into_iter().find(|c| c.name() == r.contender) else {
            continue;
        };
        let sc = report.value("b", sc_of(c.class()).name(), Some(THREADS));
        report.rows[i].vs_streamcache = r.value.zip(sc).map(|(v, sc)| v / sc);
    }
    for c in [Contender::StreamcacheMem, Contender::StreamcacheSpill] {
        let v = report.value("b", c.name(), Some(THREADS));
        let goal = 1.5 * memcpy + 20.0;
        report.verdict(
            format!("(b) {} read_at 4 KiB <= 1.5 × memcpy + 20 ns", c.name()),
            v.map_or_else(
                || "not measured".to_owned(),
                |v| format!("{v:.0} ns vs {goal:.0} ns (memcpy {memcpy:.0} ns)"),
            ),
            v.map(|v| v <= goal),
        );
    }
    Ok(())
}

fn wake(opts: &Opts, setup: &Setup, report: &mut Report) -> io::Result<()> {
    println!("(c) wake latency ...");
    let park = Duration::from_micros(300);
    let targets = [
        WakeTarget::ParkingLot,
        WakeTarget::ParkingLotFiller,
        WakeTarget::Contender(Contender::StreamcacheMem),
        WakeTarget::Contender(Contender::StreamcacheSpill),
        WakeTarget::Contender(Contender::Naive),
        WakeTarget::Contender(Contender::Spooled),
        WakeTarget::Contender(Contender::StreamDownload),
        WakeTarget::Contender(Contender::Streamcatcher),
    ];
    let mut medians = Vec::new();
    for target in targets {
        match common::wake_latencies(target, setup, opts.wake_iters, park) {
            Ok(mut lat) => {
                let median = common::quantile(&mut lat, 0.5).as_nanos() as f64 / 1e3;
                let p99 = common::quantile(&mut lat, 0.99).as_nanos() as f64 / 1e3;
                println!(
                    "  {:<28} median {median:.1} µs, p99 {p99:.1} µs",
                    target.name()
                );
                medians.push((target, median, p99));
            }
            Err(e) => {
                println!("  {:<28} n/a: {e}", target.name());
                report.rows.push(
                    Row::new("c", target.name(), Some(1), "µs median").note(format!("n/a: {e}")),
                );
            }
        }
    }
    let median_of = |target: WakeTarget| {
        medians
            .iter()
            .find(|(t, ..)| *t == target)
            .map(|&(_, m, _)| m)
    };
    // Two floors: the bare ping-pong (the timing thread notifies), and the same wake-up in the
    // contenders' shape (a thread woken by the gate notifies), which pays what their fillers
    // pay for waking a reader on the other, possibly halted, vCPU.
    let floors = [
        (median_of(WakeTarget::ParkingLot), "parking_lot"),
        (
            median_of(WakeTarget::ParkingLotFiller),
            "parking_lot-filler",
        ),
    ];
    let sc = median_of(WakeTarget::Contender(Contender::StreamcacheMem));
    for &(target, median, p99) in &medians {
        let mut row = Row::new("c", target.name(), Some(1), "µs median").value(median);
        let mut note = format!("p99 {p99:.1} µs");
        if let (Some(floor), name) = floors[0] {
            row = row.limit(name, floor);
        }
        if let (Some(floor), name) = floors[1] {
            let _ = write!(note, "; {:.2} × {name}", median / floor);
        }
        row.vs_streamcache = sc.map(|sc| median / sc);
        report.rows.push(row.note(note));
    }
    for c in [Contender::StreamcacheMem, Contender::StreamcacheSpill] {
        let m = median_of(WakeTarget::Contender(c));
        for (floor, name) in floors {
            report.verdict(
                format!("(c) {} median wake <= 2 × {name}", c.name()),
                match (m, floor) {
                    (Some(m), Some(f)) => {
                        format!("{m:.1} µs vs {:.1} µs ({:.2}×)", 2.0 * f, m / f)
                    }
                    _ => "not measured".to_owned(),
                },
                m.zip(floor).map(|(m, f)| m <= 2.0 * f),
            );
        }
    }
    Ok(())
}

// --- (d): peak RssAnon, each stream in a child process ----------------------------------------

/// Runs in the child: `--rss-child CONTENDER LEN LIMIT READERS TEMP_DIR`. Prints
/// `rss BASELINE_KB PEAK_KB ELAPSED_NS`.
fn rss_child(args: &[String]) -> io::Result<()> {
    let [id, len, limit, readers, dir] = args else {
        return Err(io::Error::other(
            "expected CONTENDER LEN LIMIT READERS TEMP_DIR",
        ));
    };
    let bad = |e: std::num::ParseIntError| io::Error::other(e.to_string());
    let c = Contender::from_id(id).ok_or_else(|| io::Error::other(format!("no contender {id}")))?;
    let setup = Setup {
        len: len.parse().map_err(bad)?,
        spill_limit: limit.parse().map_err(bad)?,
        temp_dir: PathBuf::from(dir),
    };
    let readers: usize = readers.parse().map_err(bad)?;
    // The checksum first: its pass over the generator must not count.
    common::expected_sum(setup.len);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(rss_anon_kb().unwrap_or(0));
                std::thread::sleep(Duration::from_millis(1));
            }
            peak.max(rss_anon_kb().unwrap_or(0))
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let baseline = rss_anon_kb()?;
    let run = common::sequential(c, &setup, readers)?;
    stop.store(true, Ordering::Relaxed);
    let peak = sampler
        .join()
        .map_err(|_| io::Error::other("sampler panicked"))?;
    run.check(setup.len)?;
    println!("rss {baseline} {peak} {}", run.elapsed.as_nanos());
    Ok(())
}

fn rss_anon_kb() -> io::Result<u64> {
    let status = std::fs::File::open("/proc/self/status")?;
    for line in io::BufReader::new(status).lines() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("RssAnon:") {
            let kb = rest.trim().trim_end_matches("kB").trim();
            return kb
                .parse()
                .map_err(|e: std::num::ParseIntError| io::Error::other(e.to_string()));
        }
    }
    Err(io::Error::other("no RssAnon in /proc/self/status"))
}

/// Runs one (d) measurement in a child process: (baseline, peak) in bytes and the elapsed time.
fn rss_measure(
    c: Contender,
    len: u64,
    limit: u64,
    readers: usize,
    dir: &Path,
) -> io::Result<(u64, u64, Duration)> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--rss-child", c.id()])
        .arg(len.to_string())
        .arg(limit.to_string())
        .arg(readers.to_string())
        .arg(dir)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rss "))
        .ok_or_else(|| {
            io::Error::other(format!(
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
    let nums: Vec<u64> = line[4..]
        .split(' ')
        .filter_map(|s| s.parse().ok())
        .collect();
    match nums[..] {
        [baseline, peak, ns] => Ok((baseline * 1024, peak * 1024, Duration::from_nanos(ns))),
        _ => Err(io::Error::other(format!("bad child output {line:?}"))),
    }
}

fn rss(opts: &Opts, report: &mut Report) -> io::Result<()> {
    println!("(d) peak RssAnon ...");
    let limit = opts.rss_limit;
    let small = 4 * limit;
    let allowed = (limit + RSS_SLACK) as f64;
    let limit_name = format!("limit+16M ({} MiB + 16)", limit / MIB);
    let run = |report: &mut Report, c: Contender, len: u64, readers: usize, label: &str| {
        let mut row = Row::new("d", &format!("{} {label}", c.name()), Some(readers), "MiB");
        let value = match rss_measure(c, len, limit, readers, &opts.temp_dir) {
            Ok((baseline, peak, elapsed)) => {
                println!(
                    "  {:<28} {label}: peak {} MiB (baseline {} MiB) in {:.1} s",
                    c.name(),
                    peak / MIB,
                    baseline / MIB,
                    elapsed.as_secs_f64()
                );
                row = row
                    .value(peak as f64)
                    .limit(&limit_name, allowed)
                    .note(format!(
                        "baseline {:.1} MiB, {}",
                        baseline as f64 / MIB as f64,
                        gib_s(len as f64 / elapsed.as_secs_f64())
                    ));
                Some(peak as f64)
            }
            Err(e) => {
                row = row.note(format!("failed: {e}"));
                None
            }
        };
        report.rows.push(row);
        value
    };
    let small_label = format!("{} MiB", small / MIB);
    let big_label = format!("{} MiB", opts.big / MIB);
    let sc_small = run(report, Contender::StreamcacheSpill, small, 4, &small_label);
    let room = free_space(&opts.temp_dir);
    let sc_big = if room.is_some_and(|free| free > opts.big + (2 << 30)) {
        run(report, Contender::StreamcacheSpill, opts.big, 4, &big_label)
    } else {
        report.rows.push(
            Row::new(
                "d",
                &format!("{} {big_label}", Contender::StreamcacheSpill.name()),
                Some(4),
                "MiB",
            )
            .note(format!(
                "n/a: not enough free space in {}",
                opts.temp_dir.display()
            )),
        );
        None
    };
    for c in [
        Contender::Naive,
        Contender::Streamcatcher,
        Contender::Spooled,
        Contender::StreamDownload,
    ] {
        let readers = c.max_readers().unwrap_or(4).min(4);
        run(report, c, small, readers, &small_label);
    }
    for (label, v) in [(small_label, sc_small), (big_label, sc_big)] {
        report.verdict(
            format!("(d) streamcache RssAnon peak <= memory_limit + 16 MiB, {label} stream"),
            v.map_or_else(
                || "not measured".to_owned(),
                |v| {
                    format!(
                        "{:.1} MiB vs {:.0} MiB",
                        v / MIB as f64,
                        allowed / MIB as f64
                    )
                },
            ),
            v.map(|v| v <= allowed),
        );
    }
    Ok(())
}
