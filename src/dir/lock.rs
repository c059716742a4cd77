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
