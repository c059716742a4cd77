//! (d): peak `RssAnon`, each stream in a child process.

use crate::table::gib_s;
use crate::table::{Report, Row};
use crate::Opts;
use crate::RSS_SLACK;
use std::io;
use streamcache_benches::{free_space, rss_measure, Contender, MIB};

pub(crate) fn rss(opts: &Opts, report: &mut Report) -> io::Result<()> {
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
