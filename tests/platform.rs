//! Platform limits (crate docs, "Platforms"): a stream that no longer fits one contiguous mapping
//! in the address space fails cleanly, with `OutOfMemory`, and every byte before the failure
//! stays readable: no crash, no undefined behaviour, no wrong bytes.
//!
//! The address space is made small with `RLIMIT_AS`, so that this runs in about a second on any
//! Linux target: on 64-bit it goes through the fallback from the 64 GiB first mapping to one that
//! fits, on 32-bit (i686) through a growth step that finds no room. Its own test binary, with a
//! single test: the limit applies to the whole process.
#![cfg(target_os = "linux")]

mod common;

use common::byte_at;
use common::offsets::MIB;
use common::source::PatternSource;
use std::io;
use streamcache::{Status, StreamCache};

/// Address space left to the process above what it uses when the test starts.
const ROOM: u64 = 384 * MIB;

/// This process's virtual memory size, from `/proc/self/status`.
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .expect("VmSize in /proc/self/status")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmSize in kB");
    kib * 1024
}

/// Lowers the soft `RLIMIT_AS` while it lives; the old limit comes back on drop (also on panic).
struct AddressSpaceLimit {
    old: libc::rlimit,
}

impl AddressSpaceLimit {
    fn set(bytes: u64) -> Self {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is a valid `rlimit` for the call to fill in.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) }, 0);
        let new = libc::rlimit {
            rlim_cur: libc::rlim_t::try_from(bytes)
                .unwrap_or(libc::RLIM_INFINITY)
                .min(old.rlim_max),
            rlim_max: old.rlim_max,
        };
        // SAFETY: `new` is a valid `rlimit`, read by the call.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &new) }, 0);
        Self { old }
    }
}

impl Drop for AddressSpaceLimit {
    fn drop(&mut self) {
        // SAFETY: as in `set`.
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &self.old) };
    }
}

#[test]
#[cfg_attr(miri, ignore = "file mappings, setrlimit")]
fn a_stream_past_the_address_space_fails_with_out_of_memory() {
    let dir = tempfile::Builder::new()
        .prefix("streamcache-platform-")
        .tempdir_in(std::env::temp_dir())
        .expect("create a temp dir");

    let (cache, error) = {
        let _limit = AddressSpaceLimit::set(vm_size() + ROOM);
        let cache = StreamCache::builder()
            .memory_limit(0)
            .chunk_size(MIB as usize)
            .temp_dir(dir.path())
            .spawn(PatternSource::new(u64::MAX))
            .expect("spawn");
        let error = cache
            .wait_complete()
            .expect_err("an endless stream cannot complete");
        (cache, error)
    };

    let available = cache.available();
    println!("failed at {} MiB: {error}", available / MIB);
    assert_eq!(error.kind(), io::ErrorKind::OutOfMemory, "{error}");
    assert!(
        (MIB..=ROOM).contains(&available),
        "failed at {available} bytes with {ROOM} bytes of address space to spare"
    );
    assert_eq!(
        cache.status(),
        Status::Failed {
            available,
            error: io::ErrorKind::OutOfMemory
        }
    );

    // Everything before the failure is there, and right.
    let stored = cache
        .slice(..available)
        .expect("the bytes before the failure");
    assert_eq!(stored.len() as u64, available);
    for offset in (0..available).step_by(4093).chain(available - 1..available) {
        assert_eq!(stored[offset as usize], byte_at(offset), "byte {offset}");
    }
    // A read past it gets the error.
    let err = cache
        .read_at(available, &mut [0; 16])
        .expect_err("past the failure");
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
}
