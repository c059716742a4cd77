//! Workload (d): peak `RssAnon` while readers read a stream, each stream in a child process of
//! its own (the report's binary run again with [`RSS_CHILD`]), so that nothing else is counted.

use crate::{expected_sum, rss_anon_kb, sequential, Contender, Setup};
use std::ffi::OsString;
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
    let (baseline, peak, run) = peak_rss_anon(|| sequential(c, &setup, readers))?;
    run.check(setup.len)?;
    print_rss(baseline, peak, run.elapsed);
    Ok(())
}

/// Runs `f` while a thread samples this process's `RssAnon` every millisecond: the baseline
/// just before `f` and the peak while it ran (KiB), and what `f` returned.
pub(crate) fn peak_rss_anon<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<(u64, u64, T)> {
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
    let baseline = rss_anon_kb();
    let out = f();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler
        .join()
        .map_err(|_| io::Error::other("sampler panicked"))?;
    Ok((baseline?, peak, out?))
}

/// The line a child prints for [`child_rss`] to read.
pub(crate) fn print_rss(baseline_kb: u64, peak_kb: u64, elapsed: Duration) {
    println!("rss {baseline_kb} {peak_kb} {}", elapsed.as_nanos());
}

/// Runs one (d) measurement in a child process: (baseline, peak) in bytes and the elapsed time.
pub fn rss_measure(
    c: Contender,
    len: u64,
    limit: u64,
    readers: usize,
    dir: &Path,
) -> io::Result<(u64, u64, Duration)> {
    let args = [
        RSS_CHILD.into(),
        c.id().into(),
        len.to_string().into(),
        limit.to_string().into(),
        readers.to_string().into(),
        dir.into(),
    ];
    child_rss(&args)
}

/// Runs this binary again with `args` (a child mode's first argument and its own) and reads
/// the line it prints with [`print_rss`]: (baseline, peak) in bytes and the elapsed time.
pub(crate) fn child_rss(args: &[OsString]) -> io::Result<(u64, u64, Duration)> {
    let out = Command::new(std::env::current_exe()?).args(args).output()?;
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
