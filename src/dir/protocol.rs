//! The publish-and-wake protocol of a shared entry, apart from the files and mappings so that
//! the loom crate compiles this very file (with loom's atomics, `--cfg streamcache_loom`) and
//! checks it with threads standing in for processes (`loom-tests/src/models.rs`).
//!
//! The writer writes a block's bytes, sets its bit in the span map with Release
//! ([`mark_written`]), then bumps the publish word with Release and wakes it ([`announce`]).
//! A reader loads the publish word (Acquire), then looks for new bits ([`newly_present`],
//! Acquire), and sleeps only while the publish word still holds what it loaded ([`Wake::wait`]
//! compares and sleeps atomically, as a futex does). So:
//! - a set bit seen means its block's bytes are seen (Release/Acquire on the bit);
//! - no wake-up is lost: a publish after the reader's load changes the word, so the reader's
//!   sleep returns at once, or the wake finds it asleep (invariant 3, across processes).

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// The futex, or what stands for it: a sleep that returns once `word` differs from `seen`
/// (or sooner), and a wake of every sleeper on `word`.
pub(crate) trait Wake {
    fn wait(&self, word: &AtomicU32, seen: u32);
    fn wake_all(&self, word: &AtomicU32);
}

/// The writer: block `k`'s bytes are all written; sets its bit. True if it was not set.
pub(crate) fn mark_written(map: &[AtomicU64], k: u64) -> bool {
    let bit = 1u64 << (k % 64);
    map[(k / 64) as usize].fetch_or(bit, Ordering::Release) & bit == 0
}

/// Whether block `k`'s bit is set (the writer's look before it sets one).
pub(crate) fn is_marked(map: &[AtomicU64], k: u64) -> bool {
    map[(k / 64) as usize].load(Ordering::Relaxed) & (1u64 << (k % 64)) != 0
}

/// The writer, after setting bits: every reader that sleeps on `publish` wakes.
pub(crate) fn announce(publish: &AtomicU32, wake: &impl Wake) {
    publish.fetch_add(1, Ordering::Release);
    wake.wake_all(publish);
}

/// One round of a reader (or of the writer's requests thread): `look()` takes what is new
/// and says whether to sleep; the sleep then lasts until a publish after the look began. The
/// word is loaded before the look: loaded after, a publish between the two would be slept
/// through.
pub(crate) fn round(publish: &AtomicU32, wake: &impl Wake, look: impl FnOnce() -> bool) {
    let seen = publish.load(Ordering::Acquire);
    if look() {
        wake.wait(publish, seen);
    }
}

/// A reader: calls `each(k)` for every block set in `map` and not yet in `mirrored` (this
/// process's copy of the map), in order, and records them. Their bytes are readable.
pub(crate) fn newly_present(map: &[AtomicU64], mirrored: &mut [u64], mut each: impl FnMut(u64)) {
    for (w, (word, copy)) in map.iter().zip(mirrored.iter_mut()).enumerate() {
        let now = word.load(Ordering::Acquire);
        let mut new = now & !*copy;
        while new != 0 {
            let b = new.trailing_zeros() as u64;
            each(w as u64 * 64 + b);
            new &= new - 1;
        }
        *copy = now;
    }
}
