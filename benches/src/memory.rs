//! Workload (d): peak `RssAnon` while readers read a stream, each stream in a child process of
//! its own (the report's binary run again with [`RSS_CHILD`]), so that nothing else is counted.

use crate::{expected_sum, rss_anon_kb, sequential, Contender, Setup};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The first argument that makes the report's binary the child of one (d) measurement.
pub const RSS_CHILD: &str = "--rss-child";

/// Runs in the child: `--rss-child CONTENDER LEN LIMIT READERS TEMP_DIR`. Prints
/// `rss BASELINE_KB PEAK_KB ELAPSED_NS`.
pub fn rss_child(args: &[String]) -> io::Result<()> {
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
    expected_sum(setup.len);
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
    let run = sequential(c, &setup, readers)?;
    stop.store(true, Ordering::Relaxed);
    let peak = sampler
        .join()
        .map_err(|_| io::Error::other("sampler panicked"))?;
    run.check(setup.len)?;
    println!("rss {baseline} {peak} {}", run.elapsed.as_nanos());
    Ok(())
}

/// Runs one (d) measurement in a child process: (baseline, peak) in bytes and the elapsed time.
pub fn rss_measure(
    c: Contender,
    len: u64,
    limit: u64,
    readers: usize,
    dir: &Path,
) -> io::Result<(u64, u64, Duration)> {
    let out = Command::new(std::env::current_exe()?)
        .args([RSS_CHILD, c.id()])
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
