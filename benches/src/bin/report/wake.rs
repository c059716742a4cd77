//! (c): wake latency.

use crate::table::{Report, Row};
use crate::Opts;
use std::fmt::Write as _;
use std::io;
use std::time::Duration;
use streamcache_benches::{Contender, Setup, WakeTarget};

pub(crate) fn wake(opts: &Opts, setup: &Setup, report: &mut Report) -> io::Result<()> {
    println!("(c) wake latency ...");
    let park = Duration::from_micros(300);
    let mut medians = Vec::new();
    for target in WakeTarget::ALL {
        match streamcache_benches::wake_latencies(target, setup, opts.wake_iters, park) {
            Ok(mut lat) => {
                let median = streamcache_benches::quantile(&mut lat, 0.5).as_nanos() as f64 / 1e3;
                let p99 = streamcache_benches::quantile(&mut lat, 0.99).as_nanos() as f64 / 1e3;
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
