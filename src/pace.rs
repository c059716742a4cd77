//! The filler's pace: how often it has been publishing lately, so that a reader that has caught
//! up can tell whether the next bytes are microseconds away (spin a little longer: parking and
//! being woken costs more than that) or not (park at once).
//!
//! Why: a reader that keeps pace with a fast filler catches up after nearly every chunk. Parked,
//! it costs the filler a wake-up and itself a wake-up latency; measured here, a spilled stream
//! with one reader parked 8,900 times per GiB and ran at 0.88× the bare pipeline, which spins.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The longest a reader spins for the next publish, whatever the pace: beyond this, parking
/// is cheaper than spinning (invariant 3: a reader never spins for long).
pub(crate) const MAX_SPIN: Duration = Duration::from_micros(50);

/// How many intervals a reader spins for before it parks: more than one, as intervals vary.
const SPIN_INTERVALS: u32 = 2;

/// The recent interval between the filler's publishes, smoothed.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    /// Nanoseconds, an exponential moving average over about 8 publishes; 0 before the first.
    /// Written by the filler alone; only ever a hint, so Relaxed: a stale value costs at most
    /// one early park, or one short spin.
    interval_ns: AtomicU64,
}

impl Pace {
    /// The filler published, `since` after its previous publish.
    #[inline]
    pub(crate) fn record(&self, since: Duration) {
        let sample = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        let old = self.interval_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.interval_ns.store(new, Ordering::Relaxed);
    }

    /// How long a reader that has caught up should spin for the next publish before it parks:
    /// `None` while the filler publishes too seldom for spinning to pay (or has not yet).
    #[inline]
    pub(crate) fn spin_budget(&self) -> Option<Duration> {
        let interval = Duration::from_nanos(self.interval_ns.load(Ordering::Relaxed));
        let budget = interval.checked_mul(SPIN_INTERVALS)?;
        (!interval.is_zero() && budget <= MAX_SPIN).then_some(budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(intervals: &[u64]) -> Pace {
        let pace = Pace::default();
        for &us in intervals {
            pace.record(Duration::from_micros(us));
        }
        pace
    }

    #[test]
    fn no_spin_before_the_first_publish() {
        assert_eq!(Pace::default().spin_budget(), None);
    }

    #[test]
    fn a_fast_filler_earns_a_spin_of_two_intervals() {
        assert_eq!(
            after(&[10; 20]).spin_budget(),
            Some(Duration::from_micros(20))
        );
    }

    #[test]
    fn a_slow_filler_earns_none() {
        assert_eq!(after(&[10, 1_000]).spin_budget(), None);
        assert_eq!(
            after(&[30; 20]).spin_budget(),
            None,
            "60 µs is past MAX_SPIN"
        );
    }

    #[test]
    fn the_pace_follows_the_filler() {
        // A filler that slows down (a network stream after a burst) stops earning spins
        // within a few publishes, and earns them again when it speeds up.
        let pace = after(&[5; 20]);
        for _ in 0..8 {
            pace.record(Duration::from_millis(1));
        }
        assert_eq!(pace.spin_budget(), None);
        for _ in 0..40 {
            pace.record(Duration::from_micros(5));
        }
        assert!(pace
            .spin_budget()
            .is_some_and(|b| b <= Duration::from_micros(20)));
    }
}
