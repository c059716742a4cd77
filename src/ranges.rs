//! Which bytes of a ranged stream are present, and which are claimed by a writer: plain data,
//! kept under the watermark's lock. No I/O, no synchronisation: `loom-tests` compiles this file
//! with `watermark.rs`.
//!
//! Invariant 2, generalized: every byte that is not present is claimed by at most one writer at
//! a time, and a writer writes only inside its claim. Invariant 1, generalized: a byte becomes
//! present once, after it was written, and never stops being present.

use std::ops::Range;

/// Who holds a claim: the sequential fill, or one on-demand fetch.
pub(crate) type WriterId = u64;

/// The present bytes above the contiguous prefix, and every writer's claim.
#[derive(Debug, Default)]
pub(crate) struct Ranges {
    /// Present ranges that do not touch the prefix `[0, mark)`: sorted, disjoint, merged.
    islands: Vec<Range<u64>>,
    /// Claimed, not yet present: disjoint from each other and from every present byte.
    claims: Vec<(WriterId, Range<u64>)>,
}

/// What lies at an offset, for a writer deciding where to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum At {
    /// Neither present nor claimed up to `end` (the next present or claimed byte, or the end of
    /// the stream).
    Free { end: u64 },
    /// Present up to `end`.
    Present { end: u64 },
    /// Claimed by another writer up to `end`.
    Claimed { end: u64 },
}

impl Ranges {
    /// The islands, in order.
    pub(crate) fn islands(&self) -> &[Range<u64>] {
        &self.islands
    }

    /// The end of the present run that contains `offset`, given the prefix `[0, mark)`; `None`
    /// when `offset` is not present.
    pub(crate) fn run_end(&self, mark: u64, offset: u64) -> Option<u64> {
        if offset < mark {
            return Some(mark);
        }
        self.islands
            .iter()
            .find(|r| r.start <= offset && offset < r.end)
            .map(|r| r.end)
    }

    /// True when all of `[start, end)` is present (an empty range always is).
    pub(crate) fn covers(&self, mark: u64, start: u64, end: u64) -> bool {
        start >= end || self.run_end(mark, start).is_some_and(|run| run >= end)
    }

    /// The first byte of `[start, end)` that is not present, if any.
    pub(crate) fn first_missing(&self, mark: u64, start: u64, end: u64) -> Option<u64> {
        let mut at = start;
        while at < end {
            match self.run_end(mark, at) {
                Some(run) => at = run,
                None => return Some(at),
            }
        }
        None
    }

    /// What lies at `offset` (below `len`), as writer `me` sees it: its own claim counts as free.
    pub(crate) fn at(&self, mark: u64, len: u64, offset: u64, me: WriterId) -> At {
        if let Some(end) = self.run_end(mark, offset) {
            return At::Present { end };
        }
        if let Some((_, claim)) = self
            .claims
            .iter()
            .find(|(id, r)| *id != me && r.start <= offset && offset < r.end)
        {
            return At::Claimed { end: claim.end };
        }
        let next_island = self.islands.iter().map(|r| r.start).filter(|&s| s > offset);
        let next_claim = self
            .claims
            .iter()
            .filter(|(id, _)| *id != me)
            .map(|(_, r)| r.start)
            .filter(|&s| s > offset);
        let end = next_island.chain(next_claim).fold(len, u64::min);
        At::Free { end }
    }

    /// The lowest free run (neither present nor claimed by another writer than `me`) of
    /// `[0, len)`, given the prefix `[0, mark)`: where a span of a parallel fill goes next.
    pub(crate) fn first_free(&self, mark: u64, len: u64, me: WriterId) -> Option<Range<u64>> {
        let mut at = mark;
        while at < len {
            match self.at(mark, len, at, me) {
                At::Free { end } => return Some(at..end),
                At::Present { end } | At::Claimed { end } => at = end,
            }
        }
        None
    }

    /// The start of the free run holding `offset` (which is free for `me`): the end of the
    /// present or claimed bytes just below it, or 0.
    pub(crate) fn free_start(&self, mark: u64, offset: u64, me: WriterId) -> u64 {
        let islands = self.islands.iter().map(|r| r.end);
        let claims = self
            .claims
            .iter()
            .filter(|(id, _)| *id != me)
            .map(|(_, r)| r.end);
        islands
            .chain(claims)
            .filter(|&end| end <= offset)
            .fold(mark.min(offset), u64::max)
    }

    /// Claims `range` for `me`, replacing any claim `me` held. The caller has checked with
    /// [`at`](Self::at) that it is free.
    pub(crate) fn claim(&mut self, me: WriterId, range: Range<u64>) {
        debug_assert!(range.start < range.end);
        self.release(me);
        self.claims.push((me, range));
    }

    /// Drops `me`'s claim, if any (its writer finished, failed or moved on).
    pub(crate) fn release(&mut self, me: WriterId) {
        self.claims.retain(|(id, _)| *id != me);
    }

    /// The end of `me`'s claim, if it holds one.
    #[cfg(test)]
    pub(crate) fn claim_end(&self, me: WriterId) -> Option<u64> {
        self.claims
            .iter()
            .find(|(id, _)| *id == me)
            .map(|(_, r)| r.end)
    }

    /// The claim (of any writer) that contains `offset`.
    pub(crate) fn claim_at(&self, offset: u64) -> Option<Range<u64>> {
        self.claims
            .iter()
            .find(|(_, r)| r.start <= offset && offset < r.end)
            .map(|(_, r)| r.clone())
    }

    /// `[start, end)`, written by `me` inside its claim, is now present. Returns the new
    /// prefix mark: `mark`, or further when the new bytes join the prefix (absorbing the
    /// islands they reach).
    pub(crate) fn publish(&mut self, me: WriterId, mark: u64, start: u64, end: u64) -> u64 {
        debug_assert!(start < end);
        // The claim shrinks to what is still to be written.
        if let Some((_, claim)) = self.claims.iter_mut().find(|(id, _)| *id == me) {
            debug_assert!(
                claim.start <= start && end <= claim.end,
                "write outside its claim"
            );
            if claim.start == start {
                claim.start = end;
            }
            if claim.start >= claim.end {
                self.release(me);
            }
        }
        // Insert and merge with neighbours.
        let i = self.islands.partition_point(|r| r.end < start);
        let mut merged = start..end;
        while i < self.islands.len() && self.islands[i].start <= merged.end {
            let r = self.islands.remove(i);
            merged = merged.start.min(r.start)..merged.end.max(r.end);
        }
        if merged.start <= mark {
            // Joins the prefix: the mark moves to its end.
            return mark.max(merged.end);
        }
        self.islands.insert(i, merged);
        mark
    }
}

#[cfg(all(test, not(streamcache_loom)))]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn islands_merge_and_join_the_prefix() {
        let mut r = Ranges::default();
        r.claim(1, 10..20);
        assert_eq!(r.publish(1, 0, 10, 15), 0);
        assert_eq!(r.islands(), &[10..15]);
        assert_eq!(r.claim_end(1), Some(20));
        r.claim(2, 30..40);
        assert_eq!(r.publish(2, 0, 30, 40), 0);
        assert_eq!(r.claim_end(2), None);
        assert_eq!(r.publish(1, 0, 15, 20), 0);
        assert_eq!(r.islands(), &[10..20, 30..40]);
        assert_eq!(r.at(0, 50, 20, 0), At::Free { end: 30 });
        assert_eq!(r.at(0, 50, 12, 0), At::Present { end: 20 });
        r.claim(0, 0..10);
        assert_eq!(r.publish(0, 0, 0, 10), 20);
        assert_eq!(r.islands(), &[30..40]);
        assert!(r.covers(20, 5, 20));
        assert!(!r.covers(20, 5, 21));
        assert!(r.covers(20, 31, 40));
        assert_eq!(r.first_missing(20, 0, 45), Some(20));
        assert_eq!(r.first_missing(20, 30, 45), Some(40));
        assert_eq!(r.run_end(20, 35), Some(40));
    }

    #[test]
    fn the_first_free_run_skips_present_and_claimed_bytes() {
        let mut r = Ranges::default();
        assert_eq!(r.first_free(0, 100, 1), Some(0..100));
        r.claim(1, 0..10);
        assert_eq!(r.first_free(0, 100, 2), Some(10..100));
        assert_eq!(
            r.first_free(0, 100, 1),
            Some(0..100),
            "its own claim is free to it"
        );
        r.claim(2, 10..20);
        r.publish(3, 0, 20, 30); // a fetch's island
        r.claim(4, 40..50);
        assert_eq!(r.first_free(0, 100, 5), Some(30..40));
        r.claim(5, 30..40);
        assert_eq!(r.first_free(0, 100, 6), Some(50..100));
        assert_eq!(r.first_free(100, 100, 6), None);
        r.claim(6, 50..100);
        assert_eq!(r.first_free(0, 100, 7), None);
    }

    #[test]
    fn another_writers_claim_is_not_free() {
        let mut r = Ranges::default();
        r.claim(7, 100..200);
        assert_eq!(r.at(0, 1000, 150, 1), At::Claimed { end: 200 });
        assert_eq!(r.at(0, 1000, 150, 7), At::Free { end: 1000 });
        assert_eq!(r.at(0, 1000, 50, 1), At::Free { end: 100 });
        assert_eq!(r.claim_at(199), Some(100..200));
        r.release(7);
        assert_eq!(r.at(0, 1000, 150, 1), At::Free { end: 1000 });
    }
}
