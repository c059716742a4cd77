//! (r): ranged sources. A zip of stored entries over HTTP (`ZipArchive::new` and the last
//! entry against the whole download on the same cache, the bytes the server sent,
//! stream-download beside it), then `spawn_ranged` against `spawn_resumable` with no seek.

use crate::table::{gib_s, Report, Row};
use crate::Opts;
use std::io;
use std::time::{Duration, Instant};
use streamcache_benches::{
    fill_sequential, stored_zip, zip_stream_download, zip_streamcache, Fill, HttpServer, Setup,
    ZipRun, FETCH_SPAN, MIB,
};

/// How many entries the served zip has: 16 MiB each in the 1 GiB zip. Their size scales with
/// the zip, so that the share of the download the last entry is (and the target's ratio) does
/// not depend on `--zip-len`.
const ENTRIES: u64 = 64;

const SC_FILL: &str = "streamcache spawn_url: fill to the end";
const SC_ZIP: &str = "streamcache spawn_url: ZipArchive::new + last entry";
const SD_ZIP: &str = "stream-download (reqwest): ZipArchive::new + last entry";
const SC_SEQ_ZIP: &str = "streamcache spawn_url, max_fetches(0): ZipArchive::new + last entry";
const SC_BYTES: &str = "streamcache spawn_url: bytes sent, whole download";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn ranged(opts: &Opts, setup: &Setup, report: &mut Report) -> io::Result<()> {
    zip_over_http(opts, setup, report)?;
    no_seek(opts, setup, report)
}

/// The zip over HTTP (row 1).
fn zip_over_http(opts: &Opts, setup: &Setup, report: &mut Report) -> io::Result<()> {
    println!("(r) ranged: a zip over HTTP ...");
    let t = Instant::now();
    let entry = (opts.zip_len / ENTRIES).max(64 << 10);
    let zip = stored_zip(opts.zip_len, entry)?;
    let len = zip.bytes.len() as u64;
    let rate = opts.http_rate as f64;
    println!(
        "  zip: {} entries of {:.1} MiB, {len} bytes, made in {:.1} s",
        zip.entries,
        entry as f64 / MIB as f64,
        t.elapsed().as_secs_f64()
    );
    report.info(
        "(r) zip",
        format!(
            "{} stored entries of {:.1} MiB ({:.1} MiB), served on 127.0.0.1 at {:.0} MiB/s per \
             connection",
            zip.entries,
            entry as f64 / MIB as f64,
            len as f64 / MIB as f64,
            rate / MIB as f64
        ),
    );
    let server = HttpServer::start(std::sync::Arc::clone(&zip.bytes), rate)?;
    // Best of `reps` (the run with the lowest ratio; the bytes sent: the most of any run).
    let mut sc: Result<ZipRun, String> = Err("not run".to_owned());
    let mut sc_most_sent = 0u64;
    let mut sd: Result<ZipRun, String> = Err("not run".to_owned());
    let ratio = |r: &ZipRun| {
        r.complete.map_or(f64::INFINITY, |c| {
            r.open_and_last.as_secs_f64() / c.as_secs_f64()
        })
    };
    for rep in 0..opts.reps {
        match zip_streamcache(&server, &zip, streamcache_benches::spawn_url) {
            Ok(run) => {
                println!(
                    "  rep {rep} streamcache: zip + last entry {:.0} ms, complete {:.0} ms, \
                     {:.1} MiB sent in {} requests",
                    ms(run.open_and_last),
                    run.complete.map_or(f64::NAN, ms),
                    run.sent as f64 / MIB as f64,
                    run.requests
                );
                println!("    requests: {}", run.log.join(", "));
                sc_most_sent = sc_most_sent.max(run.sent);
                if sc.as_ref().map_or(true, |b| ratio(&run) < ratio(b)) {
                    sc = Ok(run);
                }
            }
            Err(e) => {
                println!("  rep {rep} streamcache: failed: {e}");
                sc = Err(format!("failed: {e}"));
            }
        }
        match zip_stream_download(&server, &zip, setup) {
            Ok(run) => {
                println!(
                    "  rep {rep} stream-download: zip + last entry {:.0} ms, {:.1} MiB sent in \
                     {} requests",
                    ms(run.open_and_last),
                    run.sent as f64 / MIB as f64,
                    run.requests
                );
                println!("    requests: {}", run.log.join(", "));
                if sd
                    .as_ref()
                    .map_or(true, |b| run.open_and_last < b.open_and_last)
                {
                    sd = Ok(run);
                }
            }
            Err(e) => {
                println!("  rep {rep} stream-download: failed: {e}");
                if sd.is_err() {
                    sd = Err(format!("failed: {e}"));
                }
            }
        }
    }
    // The same reads with on-demand fetches off (the fill alone, as before issue 14): once.
    let sequential_only = zip_streamcache(&server, &zip, |url| {
        streamcache::StreamCache::builder()
            .max_fetches(0)
            .spawn_url(url)
    });
    match &sequential_only {
        Ok(run) => println!(
            "  max_fetches(0): zip + last entry {:.0} ms, complete {:.0} ms\n    requests: {}",
            ms(run.open_and_last),
            run.complete.map_or(f64::NAN, ms),
            run.log.join(", ")
        ),
        Err(e) => println!("  max_fetches(0): failed: {e}"),
    }
    drop(server);
    drop(zip);

    let fill = sc.as_ref().ok().and_then(|r| r.complete).map(ms);
    let sc_zip = sc.as_ref().ok().map(|r| ms(r.open_and_last));
    let with_fill = |row: Row| match fill {
        Some(f) => row.limit("fill", f),
        None => row,
    };
    let note = |r: &Result<ZipRun, String>, extra: &str| match r {
        Ok(_) => extra.to_owned(),
        Err(e) => e.clone(),
    };
    // The fill, the reads, the peer.
    let mut row = Row::new("r", SC_FILL, Some(1), "ms").note(note(
        &sc,
        "wait_complete from spawn_url, same cache as the row below",
    ));
    if let Some(f) = fill {
        row = row.value(f);
    }
    report.rows.push(row);
    let mut row = Row::new("r", SC_ZIP, Some(1), "ms").note(note(
        &sc,
        "from spawn_url; ×limit: share of the fill's time (target <= 0.05)",
    ));
    if let Some(v) = sc_zip {
        row = with_fill(row.value(v));
        row.vs_streamcache = Some(1.0);
    }
    report.rows.push(row);
    let sd_note = match &sd {
        Ok(run) => format!(
            "from new_http; {:.1} MiB sent in {} requests until dropped; ×limit: vs streamcache's fill",
            run.sent as f64 / MIB as f64,
            run.requests
        ),
        Err(e) => e.clone(),
    };
    let mut row = Row::new("r", SD_ZIP, Some(1), "ms").note(sd_note);
    if let Ok(run) = &sd {
        let v = ms(run.open_and_last);
        row = with_fill(row.value(v));
        row.vs_streamcache = sc_zip.map(|sc| v / sc);
    }
    report.rows.push(row);
    let mut row = Row::new("r", SC_SEQ_ZIP, Some(1), "ms");
    match &sequential_only {
        Ok(run) => {
            let v = ms(run.open_and_last);
            row = with_fill(row.value(v)).note(
                "reference: the fill alone (before issue 14), one run; ×limit: vs the fill above",
            );
            row.vs_streamcache = sc_zip.map(|sc| v / sc);
        }
        Err(e) => row = row.note(format!("failed: {e}")),
    }
    report.rows.push(row);
    // The bytes.
    let budget = len + 2 * FETCH_SPAN;
    let mut row = Row::new("r", SC_BYTES, Some(1), "MiB");
    if let Ok(run) = &sc {
        row = row
            .value(sc_most_sent as f64)
            .limit("len+2×span", budget as f64)
            .note(format!(
                "body bytes the server sent, the most of {} run(s); {} requests; len {len}",
                opts.reps, run.requests
            ));
    } else {
        row = row.note(note(&sc, ""));
    }
    report.rows.push(row);

    report.verdict(
        "(r) zip: ZipArchive::new + last entry <= 0.05 × the fill to the end".to_owned(),
        match (sc_zip, fill) {
            (Some(z), Some(f)) => format!("{:.3} × ({z:.0} ms / {f:.0} ms)", z / f),
            _ => "not measured".to_owned(),
        },
        sc_zip.zip(fill).map(|(z, f)| z <= 0.05 * f),
    );
    report.verdict(
        "(r) zip: bytes sent for the whole download <= len + 2 × fetch_span".to_owned(),
        match &sc {
            Ok(_) => format!(
                "{sc_most_sent} vs {budget} bytes ({:+.1} MiB over len)",
                (sc_most_sent as f64 - len as f64) / MIB as f64
            ),
            Err(_) => "not measured".to_owned(),
        },
        sc.as_ref().ok().map(|_| sc_most_sent <= budget),
    );
    Ok(())
}

fn class_name(memory: bool) -> &'static str {
    if memory {
        "memory"
    } else {
        "spill"
    }
}

/// No seek (row 2): `spawn_ranged` against `spawn_resumable`, one reader, the best of several
/// interleaved runs of each.
fn no_seek(opts: &Opts, setup: &Setup, report: &mut Report) -> io::Result<()> {
    println!("(r) ranged: no seek, spawn_ranged vs spawn_resumable ...");
    let reps = (2 * opts.reps).max(4);
    // (memory?, fill, best time or the error)
    let mut best: Vec<(bool, Fill, Result<Duration, String>)> = Vec::new();
    // Every run: (rep, memory?, fill, time), for the ratios within each rep.
    let mut runs: Vec<(usize, bool, Fill, Duration)> = Vec::new();
    for rep in 0..reps {
        for memory in [true, false] {
            // Each rep swaps which goes first.
            let order = if rep % 2 == 0 {
                [Fill::Ranged, Fill::Resumable]
            } else {
                [Fill::Resumable, Fill::Ranged]
            };
            for fill in order {
                streamcache_benches::prewarm(opts.prewarm)?;
                let outcome = fill_sequential(fill, setup, memory);
                println!(
                    "  rep {rep} {:<16} ({}): {}",
                    fill.name(),
                    class_name(memory),
                    match &outcome {
                        Ok(d) => gib_s(setup.len as f64 / d.as_secs_f64()),
                        Err(e) => format!("failed: {e}"),
                    }
                );
                if let Ok(d) = &outcome {
                    runs.push((rep, memory, fill, *d));
                }
                let slot = best.iter_mut().find(|(m, f, _)| *m == memory && *f == fill);
                match (slot, outcome) {
                    (None, o) => best.push((memory, fill, o.map_err(|e| format!("failed: {e}")))),
                    (Some((_, _, Ok(b))), Ok(d)) if d < *b => *b = d,
                    (Some(_), Ok(_)) => {}
                    (Some(slot), Err(e)) => slot.2 = Err(format!("failed: {e}")),
                }
            }
        }
    }
    let rate = |memory: bool, fill: Fill| -> Result<f64, String> {
        best.iter()
            .find(|(m, f, _)| *m == memory && *f == fill)
            .map_or(Err("not run".to_owned()), |(_, _, o)| {
                o.clone().map(|d| setup.len as f64 / d.as_secs_f64())
            })
    };
    for memory in [true, false] {
        let resumable = rate(memory, Fill::Resumable);
        let ranged = rate(memory, Fill::Ranged);
        let class = class_name(memory);
        // ranged / resumable within each rep (the two ran back to back).
        let mut paired: Vec<f64> = (0..reps)
            .filter_map(|rep| {
                let time = |fill: Fill| {
                    runs.iter()
                        .find(|(r, m, f, _)| *r == rep && *m == memory && *f == fill)
                        .map(|(_, _, _, d)| d.as_secs_f64())
                };
                Some(time(Fill::Resumable)? / time(Fill::Ranged)?)
            })
            .collect();
        paired.sort_by(f64::total_cmp);
        let paired_note = if paired.is_empty() {
            String::new()
        } else {
            format!(
                "; ratio within each rep: median {:.2} (min {:.2}, max {:.2})",
                paired[paired.len() / 2],
                paired[0],
                paired[paired.len() - 1]
            )
        };
        for (fill, r) in [(Fill::Resumable, &resumable), (Fill::Ranged, &ranged)] {
            let mut row = Row::new(
                "r",
                &format!("{} ({class}), no seek", fill.name()),
                Some(1),
                "GiB/s",
            );
            match r {
                Ok(v) => {
                    row = row.value(*v).note(format!(
                        "{} MiB, best of {reps} interleaved",
                        setup.len / MIB
                    ))
                }
                Err(e) => row = row.note(e.clone()),
            }
            if fill == Fill::Ranged {
                if let Ok(l) = &resumable {
                    row = row.limit("resumable", *l);
                }
                let note = format!("{}{paired_note}", row.note);
                row = row.note(note);
            }
            report.rows.push(row);
        }
        let ratio = ranged.as_ref().ok().zip(resumable.as_ref().ok());
        report.verdict(
            format!("(r) no seek ({class}): spawn_ranged >= 0.95 × spawn_resumable"),
            ratio.map_or_else(
                || "not measured".to_owned(),
                |(a, b)| format!("{:.3} × ({} / {})", a / b, gib_s(*a), gib_s(*b)) + &paired_note,
            ),
            ratio.map(|(a, b)| *a >= 0.95 * *b),
        );
    }
    Ok(())
}
