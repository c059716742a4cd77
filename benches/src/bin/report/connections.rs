//! (n): many connections fill one stream. Against Debian's nginx at `limit_rate` per request,
//! for n = 1, 2, 4, 8: streamcache's fill with `connections(n)`, `aria2c -x n -s n` and
//! `hf_transfer.download(max_files=n)`, in turn within each repetition, each run begun at the
//! same point of a wall-clock second; at n = 8 also a reader hashing the stream as it arrives,
//! and streamcache and hf_transfer with the default `fetch_span` as well; then peak `RssAnon`
//! with `connections(8)` against `connections(1)`, each in a child process.

use crate::table::{Report, Row};
use crate::{Opts, READER_COUNTS, RSS_SLACK};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use streamcache_benches::{
    aria2c, at_second_start, conn_rss_measure, find_program, hf_transfer, hf_transfer_version,
    probe, streamcache_fill, streamcache_hashing, write_generated, Download, Nginx, Sent,
    FETCH_SPAN, MIB, SECOND_PHASE,
};

/// The n of the targets.
const TOP: usize = 8;
/// How long nginx may go on writing after a run before the run counts as failed.
const DRAIN: Duration = Duration::from_secs(120);

/// One contender at one n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// streamcache's fill, `connections(n)`, `fetch_span(span)`.
    Fill {
        n: usize,
        span: u64,
    },
    /// `connections(TOP)`, `fetch_span(span)`, a reader hashing the stream beside the fill.
    Hashing {
        span: u64,
    },
    Aria2(usize),
    /// `hf_transfer.download(max_files=n, chunk_size=chunk)`.
    Hf {
        n: usize,
        chunk: u64,
    },
}

impl Who {
    /// streamcache's fill at `n` with the bench's span.
    fn fill(n: usize, opts: &Opts) -> Who {
        Who::Fill {
            n,
            span: opts.conn_span,
        }
    }

    /// Who runs at `n`, in this order: at TOP, also the hashing reader, and every span-taking
    /// contender again with the default span where it is not the bench's (hf_transfer's better
    /// chunk here: its source takes a chunk's whole body, `response.bytes()`, before writing
    /// it to the file, so large chunks cost it time at the end).
    fn lineup(n: usize, opts: &Opts) -> Vec<Who> {
        let span = opts.conn_span;
        let mut all = vec![
            Who::fill(n, opts),
            Who::Aria2(n),
            Who::Hf { n, chunk: span },
        ];
        if n == TOP {
            all.push(Who::Hashing { span });
            if span != FETCH_SPAN {
                let span = FETCH_SPAN;
                all.extend([
                    Who::Fill { n, span },
                    Who::Hf { n, chunk: span },
                    Who::Hashing { span },
                ]);
            }
        }
        all
    }

    fn n(self) -> usize {
        match self {
            Who::Fill { n, .. } | Who::Aria2(n) | Who::Hf { n, .. } => n,
            Who::Hashing { .. } => TOP,
        }
    }

    /// streamcache's `fetch_span` for this run, if streamcache runs.
    fn span(self) -> Option<u64> {
        match self {
            Who::Fill { span, .. } => Some(span),
            Who::Hashing { span } => Some(span),
            Who::Aria2(_) | Who::Hf { .. } => None,
        }
    }

    /// The streamcache fill this row's ×sc compares with: the same n, the same requests.
    fn reference(self, opts: &Opts) -> Option<Who> {
        match self {
            Who::Hf { n, chunk } => Some(Who::Fill { n, span: chunk }),
            Who::Aria2(n) => Some(Who::fill(n, opts)),
            Who::Fill { n, span } if span != opts.conn_span => Some(Who::fill(n, opts)),
            Who::Fill { .. } | Who::Hashing { .. } => None,
        }
    }

    fn name(self) -> String {
        match self {
            Who::Fill { n, span } => {
                format!(
                    "streamcache connections({n}), fetch_span {}: fill",
                    mib(span)
                )
            }
            Who::Hashing { span } => format!(
                "streamcache connections({TOP}), fetch_span {}: SHA-256 reader done",
                mib(span)
            ),
            Who::Aria2(n) => format!("aria2c -x{n} -s{n}"),
            Who::Hf { n, chunk } => {
                format!(
                    "hf_transfer.download(max_files={n}, chunk_size={})",
                    mib(chunk)
                )
            }
        }
    }
}

/// The spans the bench runs streamcache and hf_transfer with at TOP: its own and the default.
fn spans(opts: &Opts) -> Vec<u64> {
    let mut spans = vec![opts.conn_span, FETCH_SPAN];
    spans.dedup();
    spans
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes as f64 / MIB as f64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The peers found on this machine, or why each is missing.
struct Peers {
    aria2c: Result<PathBuf, String>,
    /// The Python that imports hf_transfer.
    hf: Result<PathBuf, String>,
}

impl Peers {
    fn find(opts: &Opts, report: &mut Report) -> Peers {
        let aria2c = find_program("aria2c").ok_or_else(|| {
            "skipped: aria2c is not installed (apt-get install -y aria2)".to_owned()
        });
        if let Ok(binary) = &aria2c {
            report.info("(n) aria2c", first_line(binary, "--version"));
        }
        let hf = hf_transfer_version(&opts.hf_python)
            .map(|version| {
                report.info(
                    "(n) hf_transfer",
                    format!("{version}, run by {}", opts.hf_python.display()),
                );
                opts.hf_python.clone()
            })
            .map_err(|e| {
                format!(
                    "skipped: {e}: python3 -m venv target/bench-venv && \
                     target/bench-venv/bin/pip install hf-transfer"
                )
            });
        Peers { aria2c, hf }
    }

    /// Why `who` cannot run here, if it cannot.
    fn missing(&self, who: Who) -> Option<&str> {
        match who {
            Who::Aria2(_) => self.aria2c.as_ref().err(),
            Who::Hf { .. } => self.hf.as_ref().err(),
            _ => None,
        }
        .map(String::as_str)
    }
}

/// The first line `binary arg` prints.
fn first_line(binary: &Path, arg: &str) -> String {
    Command::new(binary).arg(arg).output().map_or_else(
        |e| format!("{}: {e}", binary.display()),
        |out| {
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines().next().unwrap_or("").trim().to_owned()
        },
    )
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Timed {
    time: Duration,
    /// The hashing run's own fill (from `spawn_url` to `wait_complete`).
    fill: Option<Duration>,
    sent: Sent,
}

/// A contender's best run of every repetition, and the most nginx sent in any.
#[derive(Debug)]
struct Tally {
    who: Who,
    best: Option<Timed>,
    most_sent: u64,
    error: Option<String>,
}

impl Tally {
    fn record(&mut self, run: io::Result<Timed>) {
        match run {
            Ok(run) => {
                self.most_sent = self.most_sent.max(run.sent.bytes);
                if self.best.is_none_or(|b| run.time < b.time) {
                    self.best = Some(run);
                }
            }
            Err(e) => self.error = Some(format!("failed: {e}")),
        }
    }

    fn time_ms(&self) -> Option<f64> {
        self.best.map(|b| ms(b.time))
    }
}

/// Everything one run needs.
struct Bench<'a> {
    opts: &'a Opts,
    nginx: Nginx,
    download: Download,
    peers: Peers,
}

impl Bench<'_> {
    /// Runs `who` once, from the start of a second, and takes what nginx sent for it.
    fn run(&mut self, who: Who) -> io::Result<Timed> {
        let d = &self.download;
        let n = who.n();
        // hf_transfer waits for the second itself, once its interpreter is up.
        if !matches!(who, Who::Hf { .. }) {
            at_second_start();
        }
        let (time, fill) = match who {
            Who::Fill { span, .. } => (streamcache_fill(d, n, span), None),
            Who::Hashing { span } => match streamcache_hashing(d, n, span) {
                Ok(h) => (Ok(h.reader), Some(h.fill)),
                Err(e) => (Err(e), None),
            },
            Who::Aria2(_) => (
                aria2c(self.peers.aria2c.as_ref().expect("found"), d, n),
                None,
            ),
            Who::Hf { chunk, .. } => {
                let python = self.peers.hf.as_ref().expect("found");
                (hf_transfer(python, d, n, chunk), None)
            }
        };
        // Taken even after a failure, so that the next run counts only its own bytes.
        let sent = self.nginx.take_sent(DRAIN)?;
        Ok(Timed {
            time: time?,
            fill,
            sent,
        })
    }
}

pub(crate) fn connections(opts: &Opts, report: &mut Report) -> io::Result<()> {
    println!("(n) many connections fill one stream ...");
    let nginx = Nginx::find()
        .ok_or_else(|| "nginx is not installed (apt-get install -y nginx)".to_owned())
        .and_then(|binary| {
            let nginx = Nginx::start(&binary, opts.conn_rate, &opts.temp_dir)
                .map_err(|e| format!("nginx does not start: {e}"))?;
            Ok((Nginx::version(&binary), nginx))
        });
    let (version, nginx) = match nginx {
        Ok(found) => found,
        Err(reason) => {
            println!("  skipped: {reason}");
            report
                .rows
                .push(Row::new("n", "every row", None, "ms").note(reason));
            return Ok(());
        }
    };
    let path = nginx.www().join("file.bin");
    let sha256 = write_generated(&path, opts.conn_len)?;
    let download = Download {
        url: nginx.url("file.bin"),
        sha256,
        temp_dir: opts.temp_dir.clone(),
    };
    header(opts, &version, report);
    let peers = Peers::find(opts, report);
    let mut bench = Bench {
        opts,
        nginx,
        download,
        peers,
    };
    let probes = Probes::measure(&mut bench, report);
    let tallies = repetitions(&mut bench);
    let rss = memory(&mut bench);
    rows(opts, &bench.peers, &tallies, &probes, &rss, report);
    verdicts(opts, &tallies, &probes, &rss, report);
    Ok(())
}

fn header(opts: &Opts, version: &str, report: &mut Report) {
    report.info(
        "(n) nginx",
        format!(
            "{version} on 127.0.0.1, limit_rate {} MiB/s per request, a file of {}; nginx caps a \
             response at rate × (whole seconds since it began + 1) and waits written / rate \
             (whole ms) after each write (the probe below shows what one request gets); every \
             run begins {} ms into a wall-clock second",
            opts.conn_rate / MIB,
            mib(opts.conn_len),
            SECOND_PHASE.as_millis()
        ),
    );
    report.info(
        "(n) requests",
        format!(
            "streamcache connections(n > 1): fetch_span {} (one span per lane at n = {TOP}, as \
             aria2c cuts the file), connections(1): one request for the whole file; hf_transfer: \
             chunk_size the same (the same requests as streamcache's spans); at n = {TOP} both \
             also with {} (streamcache's default); aria2c: -s n pieces of len / n, \
             --min-split-size=1M, piece length 1 MiB (default), file allocation none",
            mib(opts.conn_span),
            mib(FETCH_SPAN)
        ),
    );
    report.info(
        "(n) timing",
        "streamcache: spawn_url to wait_complete (spilling into --temp-dir); aria2c: the \
         process; hf_transfer: download() alone, timed inside Python (interpreter and import \
         not counted); every download's SHA-256 checked afterwards, untimed",
    );
}

/// One request alone of each span size the bench uses, from the start of a second: what one
/// connection gets at nginx's rate, in bytes per second.
struct Probes {
    /// (span, rate or why not measured)
    rates: Vec<(u64, Result<f64, String>)>,
}

impl Probes {
    fn measure(bench: &mut Bench<'_>, report: &mut Report) -> Probes {
        let rates = spans(bench.opts)
            .into_iter()
            .map(|span| {
                at_second_start();
                let time = probe(&bench.download.url, span.min(bench.opts.conn_len));
                let drained = bench.nginx.take_sent(DRAIN);
                let rate = time
                    .and_then(|t| drained.map(|_| t))
                    .map(|t| span.min(bench.opts.conn_len) as f64 / t.as_secs_f64())
                    .map_err(|e| format!("failed: {e}"));
                (span, rate)
            })
            .collect();
        let probes = Probes { rates };
        report.info("(n) probe, one request alone", probes.describe(bench.opts));
        probes
    }

    fn rate(&self, span: u64) -> Option<f64> {
        self.rates
            .iter()
            .find(|(s, _)| *s == span)
            .and_then(|(_, r)| r.as_ref().ok().copied())
    }

    fn describe(&self, opts: &Opts) -> String {
        let one = |(span, rate): &(u64, Result<f64, String>)| match rate {
            Ok(r) => format!(
                "{}: {:.1} MiB/s ({:.2} × limit_rate)",
                mib(*span),
                r / MIB as f64,
                r / opts.conn_rate as f64
            ),
            Err(e) => format!("{}: {e}", mib(*span)),
        };
        self.rates.iter().map(one).collect::<Vec<_>>().join(", ")
    }
}

/// Every contender at every n, in turn, `--reps` times.
fn repetitions(bench: &mut Bench<'_>) -> Vec<Tally> {
    let mut tallies: Vec<Tally> = Vec::new();
    for rep in 0..bench.opts.reps {
        for n in READER_COUNTS {
            for who in Who::lineup(n, bench.opts) {
                let i = tallies
                    .iter()
                    .position(|t| t.who == who)
                    .unwrap_or_else(|| {
                        tallies.push(Tally {
                            who,
                            best: None,
                            most_sent: 0,
                            error: None,
                        });
                        tallies.len() - 1
                    });
                if bench.peers.missing(who).is_some() {
                    continue;
                }
                let run = bench.run(who);
                print_run(bench.opts, rep, who, &run);
                tallies[i].record(run);
            }
        }
    }
    tallies
}

fn print_run(opts: &Opts, rep: usize, who: Who, run: &io::Result<Timed>) {
    let name = who.name();
    match run {
        Ok(r) => println!(
            "  rep {rep} {name}: {:.0} ms ({:.1} MiB/s){}, nginx sent {:.1} MiB in {} requests",
            ms(r.time),
            opts.conn_len as f64 / MIB as f64 / r.time.as_secs_f64(),
            r.fill
                .map_or_else(String::new, |f| format!(", its fill {:.0} ms", ms(f))),
            r.sent.bytes as f64 / MIB as f64,
            r.sent.requests
        ),
        Err(e) => println!("  rep {rep} {name}: failed: {e}"),
    }
}

/// Peak `RssAnon` of the fill with connections(1) and connections(TOP): (n, result).
type Rss = Vec<(usize, Result<(u64, u64), String>)>;

fn memory(bench: &mut Bench<'_>) -> Rss {
    [1, TOP]
        .into_iter()
        .map(|n| {
            let measured = conn_rss_measure(&bench.download, n, bench.opts.conn_span);
            let drained = bench.nginx.take_sent(DRAIN);
            let result = measured.and_then(|m| drained.map(|_| m));
            match &result {
                Ok((baseline, peak, elapsed)) => println!(
                    "  RssAnon, connections({n}): peak {:.1} MiB (baseline {:.1} MiB), fill {:.0} ms",
                    *peak as f64 / MIB as f64,
                    *baseline as f64 / MIB as f64,
                    ms(*elapsed)
                ),
                Err(e) => println!("  RssAnon, connections({n}): failed: {e}"),
            }
            (n, result.map(|(b, p, _)| (b, p)).map_err(|e| format!("failed: {e}")))
        })
        .collect()
}

fn tally(tallies: &[Tally], who: Who) -> &Tally {
    tallies
        .iter()
        .find(|t| t.who == who)
        .expect("every contender has a tally")
}

/// nginx's rate as configured, for `n` connections: the time the file would take at it.
fn ideal_ms(opts: &Opts, n: usize) -> f64 {
    opts.conn_len as f64 / (n as f64 * opts.conn_rate as f64) * 1e3
}

fn rows(
    opts: &Opts,
    peers: &Peers,
    tallies: &[Tally],
    probes: &Probes,
    rss: &Rss,
    report: &mut Report,
) {
    for n in READER_COUNTS {
        for who in Who::lineup(n, opts) {
            let row = row(opts, peers, probes, tally(tallies, who), tallies);
            report.rows.push(row);
        }
    }
    let one = rss
        .iter()
        .find(|(n, _)| *n == 1)
        .and_then(|(_, r)| r.as_ref().ok());
    for (n, result) in rss {
        let name = format!("streamcache connections({n}): peak RssAnon of the fill");
        let mut row = Row::new("n", &name, Some(*n), "MiB");
        match result {
            Ok((baseline, peak)) => {
                row = row.value(*peak as f64).note(format!(
                    "baseline {:.1} MiB, in a child process",
                    *baseline as f64 / MIB as f64
                ));
                if let (TOP, Some((_, p1))) = (*n, one) {
                    row = row.limit("(1)+16M", (p1 + RSS_SLACK) as f64);
                }
            }
            Err(e) => row = row.note(e.clone()),
        }
        report.rows.push(row);
    }
}

fn row(opts: &Opts, peers: &Peers, probes: &Probes, t: &Tally, tallies: &[Tally]) -> Row {
    let who = t.who;
    let n = who.n();
    let mut row = Row::new("n", &who.name(), Some(n), "ms");
    let Some(best) = t.best else {
        let why = peers.missing(who).map(str::to_owned).or(t.error.clone());
        return row.note(why.unwrap_or_else(|| "not run".to_owned()));
    };
    let v = ms(best.time);
    row = row.value(v);
    row = match who {
        Who::Hashing { span } => match tally(tallies, Who::Fill { n, span }).time_ms() {
            Some(fill) => row.limit("fill", fill),
            None => row,
        },
        _ => row.limit("len/(n×rate)", ideal_ms(opts, n)),
    };
    let sc = who
        .reference(opts)
        .and_then(|r| tally(tallies, r).time_ms());
    row.vs_streamcache = sc.map(|sc| v / sc);
    let rate = opts.conn_len as f64 / MIB as f64 / best.time.as_secs_f64();
    let mut note = format!(
        "{rate:.1} MiB/s; nginx sent {:.1} MiB in {} requests (most of any rep: {:.1} MiB)",
        best.sent.bytes as f64 / MIB as f64,
        best.sent.requests,
        t.most_sent as f64 / MIB as f64
    );
    note += &match who {
        Who::Fill { n: 1, .. } => "; one request: limit_rate throttles it all along".to_owned(),
        Who::Hashing { .. } => format!(
            "; its own fill {:.0} ms; ×limit: vs the fill alone (target <= 1.1); in order, the \
             reader reaches the other lanes' spans only as the lowest ends: the larger the span, \
             the more is left to hash after the last byte",
            best.fill.map_or(f64::NAN, ms)
        ),
        Who::Fill { span, .. } | Who::Hf { chunk: span, .. } if span != opts.conn_span => {
            probes.rate(span).map_or_else(String::new, |r| {
                format!(
                    "; one {} request alone got {:.2} × limit_rate (probe)",
                    mib(span),
                    r / opts.conn_rate as f64
                )
            })
        }
        _ => String::new(),
    };
    if let Some(e) = &t.error {
        note += &format!("; another rep {e}");
    }
    row.note(note)
}

fn verdicts(opts: &Opts, tallies: &[Tally], probes: &Probes, rss: &Rss, report: &mut Report) {
    let fill = tally(tallies, Who::fill(TOP, opts)).time_ms();
    // Each at the better of its two spans (the bench's and the default), stated.
    let best = |make: fn(u64) -> Who| {
        spans(opts)
            .into_iter()
            .filter_map(|span| Some((tally(tallies, make(span)).time_ms()?, span)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    };
    let sc = best(|span| Who::Fill { n: TOP, span });
    let hf = best(|chunk| Who::Hf { n: TOP, chunk });
    report.verdict(
        "(n) n = 8: streamcache's fill <= hf_transfer.download(max_files=8), each at its better \
         span"
            .to_owned(),
        match (sc, hf) {
            (Some((s, s_span)), Some((h, h_span))) => format!(
                "{s:.0} ms (fetch_span {}) vs {h:.0} ms (chunk_size {}): {:.2}×",
                mib(s_span),
                mib(h_span),
                s / h
            ),
            _ => "not measured".to_owned(),
        },
        sc.zip(hf).map(|((s, _), (h, _))| s <= h),
    );
    let aria2 = tally(tallies, Who::Aria2(TOP)).time_ms();
    report.verdict(
        format!(
            "(n) n = 8: streamcache's fill (fetch_span {}) <= aria2c -x8 -s8",
            mib(opts.conn_span)
        ),
        match (fill, aria2) {
            (Some(f), Some(a)) => format!("{f:.0} ms vs {a:.0} ms ({:.2}×)", f / a),
            _ => "not measured".to_owned(),
        },
        fill.zip(aria2).map(|(f, a)| f <= a),
    );
    // One connection's rate: limit_rate, or what one span's request alone got if more.
    let one = probes
        .rate(opts.conn_span)
        .map_or(opts.conn_rate as f64, |p| p.max(opts.conn_rate as f64));
    let rate = fill.map(|f| opts.conn_len as f64 / (f / 1e3));
    report.verdict(
        "(n) n = 8: streamcache's fill >= 0.9 × 8 × one connection's rate".to_owned(),
        rate.map_or_else(
            || "not measured".to_owned(),
            |r| {
                format!(
                    "{:.1} MiB/s = {:.2} × 8 × {:.1} MiB/s (the larger of limit_rate and one \
                     {} request alone)",
                    r / MIB as f64,
                    r / (TOP as f64 * one),
                    one / MIB as f64,
                    mib(opts.conn_span)
                )
            },
        ),
        rate.map(|r| r >= 0.9 * TOP as f64 * one),
    );
    for span in spans(opts) {
        let hashing = tally(tallies, Who::Hashing { span }).time_ms();
        let fill = tally(tallies, Who::Fill { n: TOP, span }).time_ms();
        report.verdict(
            format!(
                "(n) n = 8, fetch_span {}: the hashing reader done <= 1.1 × the fill alone",
                mib(span)
            ),
            match (hashing, fill) {
                (Some(h), Some(f)) => format!("{:.3} × ({h:.0} ms / {f:.0} ms)", h / f),
                _ => "not measured".to_owned(),
            },
            hashing.zip(fill).map(|(h, f)| h <= 1.1 * f),
        );
    }
    bytes_verdict(opts, tallies, report);
    rss_verdict(rss, report);
}

/// Every streamcache run's bytes against `len + n × fetch_span`: the worst of them.
fn bytes_verdict(opts: &Opts, tallies: &[Tally], report: &mut Report) {
    let worst = tallies
        .iter()
        .filter_map(|t| {
            let span = t.who.span()?;
            t.best?;
            let budget = opts.conn_len + t.who.n() as u64 * span;
            Some((t.most_sent as f64 - budget as f64, t))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    report.verdict(
        "(n) bytes nginx sent for each streamcache fill <= len + n × fetch_span".to_owned(),
        worst.map_or_else(
            || "not measured".to_owned(),
            |(over, t)| {
                format!(
                    "worst: {}: {} bytes, {:+.1} MiB over len, {:+.1} MiB over len + n × span",
                    t.who.name(),
                    t.most_sent,
                    (t.most_sent as f64 - opts.conn_len as f64) / MIB as f64,
                    over / MIB as f64
                )
            },
        ),
        worst.map(|(over, _)| over <= 0.0),
    );
}

fn rss_verdict(rss: &Rss, report: &mut Report) {
    let peak = |n: usize| {
        rss.iter()
            .find(|(k, _)| *k == n)
            .and_then(|(_, r)| r.as_ref().ok().map(|(_, p)| *p))
    };
    let both = peak(1).zip(peak(TOP));
    report.verdict(
        "(n) peak RssAnon with connections(8) <= connections(1) + 16 MiB".to_owned(),
        both.map_or_else(
            || "not measured".to_owned(),
            |(one, top)| {
                format!(
                    "{:.1} MiB vs {:.1} MiB",
                    top as f64 / MIB as f64,
                    one as f64 / MIB as f64
                )
            },
        ),
        both.map(|(one, top)| top <= one + RSS_SLACK),
    );
}
