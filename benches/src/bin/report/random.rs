//! (b): random 4 KiB reads over the completed stream.

use crate::best;
use crate::table::{Report, Row};
use crate::throughput::sc_of;
use crate::Opts;
use std::io;
use streamcache_benches::{Contender, Prepared, Setup};

pub(crate) fn random(
    opts: &Opts,
    setup: &Setup,
    cores: usize,
    report: &mut Report,
) -> io::Result<()> {
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
