//! The kernel-released locks of a shared entry (`flock`, unix): a process's lock goes when its
//! descriptor closes, and so when the process dies, however it dies. No pid files, no guessing
//! whether a process is alive.
//!
//! - `NAME.lock`, exclusive: the entry's one writer holds it.
//! - `NAME.entry`, shared: every process that has the entry open holds it; eviction takes it
//!   exclusive (without waiting), so an entry in use is never removed.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Takes `how` (`LOCK_EX` or `LOCK_SH`) on `file`, without waiting when `wait` is false:
/// `Ok(false)` when someone else holds a conflicting lock.
pub(crate) fn flock(file: &File, how: libc::c_int, wait: bool) -> io::Result<bool> {
    let how = if wait { how } else { how | libc::LOCK_NB };
    loop {
        // SAFETY: a plain system call on a descriptor `file` owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), how) } == 0 {
            return Ok(true);
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(error),
        }
    }
}

/// Whether `file` is still the file at `path`: a lock taken on a file that eviction unlinked
/// meanwhile locks nothing anyone else will look at, and must be taken again on the new one.
pub(crate) fn still_at(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(open.nlink() > 0 && named.ino() == open.ino() && named.dev() == open.dev()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `flock` on files of `dir` can be trusted to exclude other processes: not on a
/// network filesystem (NFS, SMB/CIFS), where locks may be emulated per client or dropped.
/// There `cache_dir` falls back to a private cache, as documented.
pub(crate) fn locks_trusted(dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        // The nearest existing ancestor: the directory itself may not exist yet.
        let mut probe = dir;
        while !probe.exists() {
            match probe.parent() {
                Some(parent) => probe = parent,
                None => return true,
            }
        }
        let Ok(path) = std::ffi::CString::new(probe.as_os_str().as_bytes()) else {
            return true;
        };
        // SAFETY: `statfs` is plain data (integers): all zeroes is a valid value.
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a valid C string and `stat` a struct the call fills in; both
        // outlive the call, and nothing else points to them.
        if unsafe { libc::statfs(path.as_ptr(), &mut stat) } != 0 {
            return true; // Unknown: the open will say what is wrong, if anything.
        }
        !is_network_filesystem(stat.f_type as i64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        true
    }
}

/// Linux's magic numbers of the network filesystems (`statfs(2)`).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // Linux's `statfs` only.
pub(crate) fn is_network_filesystem(f_type: i64) -> bool {
    const NFS: i64 = 0x6969;
    const SMB: i64 = 0x517b;
    const CIFS: i64 = 0xff53_4d42;
    const SMB2: i64 = 0xfe53_4d42;
    // `f_type` is signed on some targets: compare the low 32 bits.
    matches!(f_type & 0xffff_ffff, NFS | SMB | CIFS | SMB2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_filesystems_are_not_trusted_and_local_ones_are() {
        assert!(is_network_filesystem(0x6969));
        assert!(is_network_filesystem(0xff53_4d42));
        assert!(is_network_filesystem(0xff53_4d42_u32 as i32 as i64));
        assert!(!is_network_filesystem(0xef53)); // ext4
        assert!(!is_network_filesystem(0x0102_1994)); // tmpfs
        assert!(locks_trusted(&std::env::temp_dir()));
    }
}
