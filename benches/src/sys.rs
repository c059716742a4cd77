//! Facts about the machine and this process.

use std::io::{self, BufRead};
use std::path::Path;
use std::time::Duration;

/// The number of cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
pub fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The load averages over 1, 5 and 15 minutes.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// Free space for an unprivileged user in the file system of `dir`, in bytes.
pub fn free_space(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: `statvfs` only writes into the zeroed struct we pass.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// This process's `RssAnon` from `/proc/self/status`, in KiB.
pub fn rss_anon_kb() -> io::Result<u64> {
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

/// Whether a path is on a tmpfs (where a "file" would really be memory).
// `f_type` and `TMPFS_MAGIC` have different integer types on different targets.
#[allow(clippy::unnecessary_cast)]
pub fn is_tmpfs(path: &Path) -> bool {
    // SAFETY: `statfs` only writes into the zeroed struct we pass.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a valid out-pointer.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type as i64 == libc::TMPFS_MAGIC as i64
}

/// This thread's CPU time.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: `clock_gettime` only writes into the zeroed struct we pass.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What one thread used: CPU time, minor page faults, and the times it gave up the CPU
/// (voluntary context switches: parks, yields, waits for a lock).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThreadUsage {
    pub cpu: Duration,
    pub minor_faults: u64,
    pub switches: u64,
}

impl ThreadUsage {
    /// This thread's use so far: [`thread_cpu_time`], and `getrusage(RUSAGE_THREAD)`'s counts.
    pub fn now() -> ThreadUsage {
        // SAFETY: `getrusage` only writes into the zeroed struct we pass.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid `who` and out-pointer; RUSAGE_THREAD cannot fail on Linux.
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
        ThreadUsage {
            cpu: thread_cpu_time(),
            minor_faults: ru.ru_minflt as u64,
            switches: ru.ru_nvcsw as u64,
        }
    }

    /// What this thread used while running `f`, with `f`'s result.
    pub fn of<T>(f: impl FnOnce() -> T) -> (T, ThreadUsage) {
        let before = ThreadUsage::now();
        let out = f();
        let after = ThreadUsage::now();
        let used = ThreadUsage {
            cpu: after.cpu.saturating_sub(before.cpu),
            minor_faults: after.minor_faults - before.minor_faults,
            switches: after.switches - before.switches,
        };
        (out, used)
    }

    /// The mean over `all` (zero for none).
    pub fn mean(all: &[ThreadUsage]) -> ThreadUsage {
        let n = all.len().max(1) as u64;
        ThreadUsage {
            cpu: all.iter().map(|u| u.cpu).sum::<Duration>() / n as u32,
            minor_faults: all.iter().map(|u| u.minor_faults).sum::<u64>() / n,
            switches: all.iter().map(|u| u.switches).sum::<u64>() / n,
        }
    }
}

/// The KiB of files this process maps with huge (PMD) entries now, from
/// `/proc/self/smaps_rollup`'s `FilePmdMapped`; `None` where the kernel does not say.
pub fn file_pmd_mapped_kib() -> Option<u64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    rollup
        .lines()
        .find_map(|line| line.strip_prefix("FilePmdMapped:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
