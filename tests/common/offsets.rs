//! The pattern by offset range, for the suites that build and check streams piece by piece
//! (concurrency, failures, faults, cancel, memory, platform): every byte is [`byte_at`] its offset, so that a
//! byte read from the wrong place, or a stream that skipped or repeated bytes, does not match.

use std::path::PathBuf;

pub use super::{byte_at, fill_pattern};

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;

/// The pattern `[start, end)`.
pub fn pattern(start: u64, end: u64) -> Vec<u8> {
    let mut out = vec![0; usize::try_from(end - start).expect("a pattern that fits in memory")];
    fill_pattern(start, &mut out);
    out
}

/// The pattern `[start, end)` in pieces of at most `piece` bytes, in order.
pub fn pieces(start: u64, end: u64, piece: u64) -> impl Iterator<Item = Vec<u8>> {
    assert!(piece > 0, "pieces must make progress");
    (start..end)
        .step_by(usize::try_from(piece).unwrap_or(usize::MAX))
        .map(move |at| pattern(at, (at + piece).min(end)))
}

/// Panics, naming the first wrong byte, unless `data` is the pattern at `offset`.
#[track_caller]
pub fn assert_pattern(offset: u64, data: &[u8], what: &str) {
    if let Some(i) = (0..data.len()).find(|&i| data[i] != byte_at(offset + i as u64)) {
        panic!(
            "{what}: wrong byte at offset {} (got {:#04x}, expected {:#04x})",
            offset + i as u64,
            data[i],
            byte_at(offset + i as u64)
        );
    }
}

/// A fresh directory for one test's spill files, `streamcache-<suite>-<name>-*` (the suite is
/// the test crate), removed when the guard drops.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("streamcache-{}-{name}-", env!("CARGO_CRATE_NAME")))
        .tempdir()
        .expect("create a temp dir")
}

/// [`temp_dir`], with its canonical path (as `/proc` shows it).
pub fn canonical_temp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = temp_dir(name);
    let path = dir.path().canonicalize().expect("canonical temp dir");
    (dir, path)
}
