//! Unix: a mapping may reach past the end of the file (touching a page beyond it raises SIGBUS,
//! so every byte is reserved before it is written), and blocks are reserved with
//! `posix_fallocate`, or `F_PREALLOCATE` + `ftruncate` on Apple systems, which lack it. On
//! 32-bit glibc `off_t` is 32 bits: there `posix_fallocate64` takes the 64-bit `off64_t`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// The file is mapped far ahead of its end and grows under the mapping.
pub(super) const MAP_PAST_END_OF_FILE: bool = true;

/// The file offset type of the call used below: `off64_t` on glibc, whose `off_t` is 32 bits on
/// 32-bit targets; `off_t` elsewhere (64 bits on 64-bit targets, musl, the BSDs and Apple).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Off = libc::off64_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Off = libc::off_t;

#[cfg(not(any(target_vendor = "apple", all(target_os = "linux", target_env = "gnu"))))]
use libc::posix_fallocate;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
use libc::posix_fallocate64 as posix_fallocate;

fn file_offset(n: u64) -> io::Result<Off> {
    Off::try_from(n).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            "the stream is too long for this platform's file offsets",
        )
    })
}

/// Allocates file blocks for `[from, to)` and makes the file at least `to` long, so that
/// writing there through a mapping cannot fault (invariant 5).
#[cfg(not(target_vendor = "apple"))]
pub(super) fn allocate(file: &File, from: u64, to: u64) -> io::Result<()> {
    let (offset, len) = (file_offset(from)?, file_offset(to - from)?);
    loop {
        // SAFETY: a plain system call on a file descriptor we own; no memory is passed.
        let rc = unsafe { posix_fallocate(file.as_raw_fd(), offset, len) };
        match rc {
            0 => return Ok(()),
            libc::EINTR => continue,
            code => return Err(io::Error::from_raw_os_error(code)),
        }
    }
}

/// Apple systems have no `posix_fallocate`: reserve the blocks with `F_PREALLOCATE` (which
/// fails with `ENOSPC` on a full disk), then extend the file over them.
#[cfg(target_vendor = "apple")]
pub(super) fn allocate(file: &File, from: u64, to: u64) -> io::Result<()> {
    let mut store = libc::fstore_t {
        fst_flags: libc::F_ALLOCATECONTIG,
        fst_posmode: libc::F_PEOFPOSMODE,
        fst_offset: 0,
        fst_length: file_offset(to - from)?,
        fst_bytesalloc: 0,
    };
    // SAFETY: `store` is a valid, initialised `fstore_t` that outlives the call.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_PREALLOCATE, &mut store) } == -1 {
        store.fst_flags = libc::F_ALLOCATEALL;
        // SAFETY: as above; a second try without asking for contiguous blocks.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_PREALLOCATE, &mut store) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    file.set_len(to)
}

/// Writes all of `bytes` at `offset` (`pwrite`, retried on `Interrupted` and short writes).
pub(super) fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}
