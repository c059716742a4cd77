//! The cross-process wake of a shared entry (`src/dir/`): a 32-bit word in the entry's shared
//! mapping that a writer bumps on every publish, and that a process waits on until it changes.
//!
//! Linux: a futex on the shared mapping (not `FUTEX_PRIVATE_FLAG`: the word is in a file every
//! process maps), so a wait sleeps in the kernel and a publish in any process wakes it at once.
//! Elsewhere: the documented fallback, a sleep of at most [`FALLBACK_STEP`] between looks, so a
//! wake is at most that late.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How late a wake may be where there is no futex.
#[cfg(not(target_os = "linux"))]
pub(crate) const FALLBACK_STEP: Duration = Duration::from_millis(20);

/// Sleeps while `word` still holds `seen`, for at most `timeout`. It may return early (a wake,
/// a signal, a spurious wake-up): the caller looks at what it waits for again.
pub(crate) fn wait(word: &AtomicU32, seen: u32, timeout: Duration) {
    if word.load(Ordering::Acquire) != seen {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        // SAFETY: `word` is a valid, aligned 32-bit word for the whole call (it lives in a
        // mapping the caller keeps); FUTEX_WAIT only reads it, and `timeout` outlives the call.
        // The kernel compares `*word` with `seen` atomically before sleeping, so a bump between
        // the load above and the sleep is never missed (invariant 3, across processes).
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                seen,
                &timeout as *const libc::timespec,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::thread::sleep(timeout.min(FALLBACK_STEP));
    }
}

/// Wakes every process (and thread) waiting on `word`; the caller has bumped it first.
pub(crate) fn wake_all(word: &AtomicU32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as in `wait`: a valid, aligned word in a live mapping; FUTEX_WAKE reads
        // nothing from it but its address.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = word; // The waiters look again within `FALLBACK_STEP`.
    }
}
