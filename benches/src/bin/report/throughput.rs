//! (a): the limits, then 1, 2, 4, 8 readers each reading the whole stream, and the verdicts.

use crate::table::gib_s;
use crate::table::{Report, Row};
use crate::Opts;
use crate::{cpu_bound, READER_COUNTS};
use std::io;
use std::time::{Duration, Instant};
use streamcache_benches::{Class, Contender, Limit, Setup, ThreadUsage};

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
    pub(crate) fn measure(opts: &Opts, setup: &Setup) -> io::Result<LimitRates> {
        let len = setup.len as f64;
        let rate = |d: Duration| len / d.as_secs_f64();
        let limit = |limit: Limit| -> io::Result<f64> {
            streamcache_benches::prewarm(opts.prewarm)?;
            streamcache_benches::limit(limit, setup).map(rate)
        };
        let filler_alone = |spill: bool| -> io::Result<f64> {
            streamcache_benches::prewarm(opts.prewarm)?;
            streamcache_benches::filler_alone(setup, spill).map(rate)
        };
        // A fresh buffer each time: one kept for minutes folds slower and slower here (4.6
        // against 8 to 10 GiB/s), likely as the host merges its repeating pages, which readers
        // of a stream, reading bytes just written, never meet.
        let present = streamcache_benches::present_buffer(setup.len)?;
        if streamcache_benches::fold(0, &present) != streamcache_benches::expected_sum(setup.len) {
            return Err(io::Error::other("fold of the present buffer disagrees"));
        }
        let s = rate(streamcache_benches::fold_time(&present));
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
pub(crate) struct Limits {
    best: LimitRates,
    samples: usize,
}

impl Limits {
    pub(crate) fn measure(opts: &Opts, setup: &Setup) -> io::Result<Limits> {
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
    pub(crate) fn report(&self, report: &mut Report) {
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

/// A run's time, and what one of its readers used on average.
type Timed = (Duration, ThreadUsage);

/// What one reader used, on average, per GiB it read (in the fastest run): where the time of a
/// row that scales badly with readers goes, with no profiler (issue 16).
fn per_reader(used: &ThreadUsage, len: u64) -> String {
    let gib = len as f64 / (1u64 << 30) as f64;
    format!(
        "per reader per GiB: {:.3} s CPU, {:.0} faults, {:.0} waits",
        used.cpu.as_secs_f64() / gib,
        used.minor_faults as f64 / gib,
        used.switches as f64 / gib
    )
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

pub(crate) fn sc_of(class: Class) -> Contender {
    match class {
        Class::Memory => Contender::StreamcacheMem,
        Class::File => Contender::StreamcacheSpill,
    }
}

pub(crate) fn sequential(
    opts: &Opts,
    setup: &Setup,
    lim: &mut Limits,
    cores: usize,
    report: &mut Report,
) -> io::Result<()> {
    println!("(a) sequential readers ...");
    // Best of `reps`, the repetitions interleaved so that drift hits every contender alike.
    let mut best: Vec<(Contender, usize, Result<Timed, String>)> = Vec::new();
    // P, the bare pipeline, for each storage class streamcache is measured in.
    let classes: Vec<Class> = [Class::Memory, Class::File]
        .into_iter()
        .filter(|&class| opts.contenders.contains(&sc_of(class)))
        .collect();
    let mut bare: Vec<(Class, usize, Timed)> = Vec::new();
    for rep in 0..opts.reps {
        if rep > 0 {
            lim.refresh(opts, setup)?;
        }
        for &n in &opts.readers {
            for &class in &classes {
                streamcache_benches::prewarm(opts.prewarm)?;
                let run = streamcache_benches::bare_pipeline(setup, n, class)?;
                run.check(setup.len)?;
                println!(
                    "  rep {rep} {:<28} N={n}: {}",
                    bare_name(class),
                    gib_s(run.rate(setup.len))
                );
                let used = ThreadUsage::mean(&run.readers);
                match bare
                    .iter_mut()
                    .find(|(bc, bn, ..)| *bc == class && *bn == n)
                {
                    None => bare.push((class, n, (run.elapsed, used))),
                    Some((_, _, b)) if run.elapsed < b.0 => *b = (run.elapsed, used),
                    Some(_) => {}
                }
            }
            for &c in &opts.contenders {
                if c.max_readers().is_some_and(|max| n > max) {
                    if rep == 0 {
                        best.push((c, n, Err(format!("n/a: {} reader(s) per download", 1))));
                    }
                    continue;
                }
                streamcache_benches::prewarm(opts.prewarm)?;
                let t = Instant::now();
                let outcome = streamcache_benches::sequential(c, setup, n).and_then(|run| {
                    run.check(setup.len)?;
                    Ok((run.elapsed, ThreadUsage::mean(&run.readers)))
                });
                println!(
                    "  rep {rep} {:<28} N={n}: {}",
                    c.name(),
                    match &outcome {
                        Ok((d, _)) => format!(
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
                    (Some((_, _, Ok(b))), Ok(d)) if d.0 < b.0 => *b = d,
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
                Ok((d, used)) => {
                    row = row.value(setup.len as f64 / d.as_secs_f64());
                    if c.is_streamcache() {
                        row = row.note(per_reader(used, setup.len));
                    }
                }
                Err(e) => row = row.note(e.clone()),
            }
            let (limit, name) = lim.for_readers(class, n, cores);
            report.rows.push(row.limit(name, limit));
        }
        for &(class, _, (d, used)) in bare.iter().filter(|(_, bn, _)| *bn == n) {
            let p = setup.len as f64 / d.as_secs_f64();
            let (limit, name) = lim.for_readers(class, n, cores);
            report.rows.push(
                Row::new("a", bare_name(class), Some(n), "GiB/s")
                    .value(p)
                    .limit(name, limit)
                    .note(format!(
                        "P: no library, no parking; the machine's bound for this dataflow; {}",
                        per_reader(&used, setup.len)
                    )),
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
