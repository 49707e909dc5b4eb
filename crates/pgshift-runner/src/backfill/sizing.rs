//! How many rows (or pages) the next batch takes: as many as fit the target duration.
//!
//! A batch holds its rows' locks until it commits, so its duration is what an application
//! writer to one of those rows may wait; a batch far shorter than the target wastes round
//! trips. The size follows a moving average of recent batch times, moving at most ×2 up and
//! ×0.5 down per batch, and is halved at once when a batch hit a lock timeout or a throttle
//! signal said the backfill is in someone's way.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BatchSizer {
    size: u64,
    min: u64,
    max: u64,
    target: Duration,
    /// Exponential moving average of the time per unit (row or page), in seconds.
    per_unit: Option<f64>,
}

impl BatchSizer {
    pub fn new(initial: u64, min: u64, max: u64, target: Duration) -> BatchSizer {
        let min = min.max(1);
        let max = max.max(min);
        BatchSizer {
            size: initial.clamp(min, max),
            min,
            max,
            target,
            per_unit: None,
        }
    }

    /// The size of the next batch.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The duration batches aim at now.
    pub fn target(&self) -> Duration {
        self.target
    }

    /// Aim at another duration (the caller shortens it while sessions wait on the batch's
    /// row locks, and lengthens it back when they stop).
    pub fn set_target(&mut self, target: Duration) {
        self.target = target;
    }

    /// A batch of `units` took `took`. Batches that walked fewer units than asked (the last
    /// one) still tell the time per unit.
    pub fn record(&mut self, units: u64, took: Duration) {
        if units == 0 {
            return;
        }
        let sample = took.as_secs_f64() / units as f64;
        let per_unit = match self.per_unit {
            Some(avg) => avg * 0.7 + sample * 0.3,
            None => sample,
        };
        self.per_unit = Some(per_unit);
        let wanted = if per_unit > 0.0 {
            self.target.as_secs_f64() / per_unit
        } else {
            self.max as f64
        };
        let current = self.size as f64;
        let next = wanted.clamp(current * 0.5, current * 2.0);
        self.size = (next.round() as u64).clamp(self.min, self.max);
    }

    /// A lock timeout or a throttle signal: half as many at once, down to one. Below `min`
    /// only on lock conflicts, so that a batch can shrink around a row another session holds.
    pub fn halve(&mut self) {
        self.size = (self.size / 2).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_towards_the_target_duration_at_most_twofold_per_batch() {
        let mut s = BatchSizer::new(1000, 100, 100_000, Duration::from_millis(200));
        // 1000 rows in 20 ms: 10x too small; the size doubles, not more.
        s.record(1000, Duration::from_millis(20));
        assert_eq!(s.size(), 2000);
        for _ in 0..10 {
            let took = Duration::from_secs_f64(s.size() as f64 * 0.000_02);
            s.record(s.size(), took);
        }
        assert_eq!(s.size(), 10_000, "200 ms at 20 µs per row");
    }

    #[test]
    fn shrinks_when_batches_are_slow_and_stays_in_bounds() {
        let mut s = BatchSizer::new(10_000, 100, 20_000, Duration::from_millis(200));
        s.record(10_000, Duration::from_secs(10));
        assert_eq!(s.size(), 5_000, "at most halved per batch");
        for _ in 0..20 {
            s.record(s.size(), Duration::from_secs(10));
        }
        assert_eq!(s.size(), 100, "the lower bound");
        for _ in 0..40 {
            s.record(s.size(), Duration::from_micros(1));
        }
        assert_eq!(s.size(), 20_000, "the upper bound");
    }

    #[test]
    fn halving_goes_below_the_minimum_down_to_one_row() {
        let mut s = BatchSizer::new(150, 100, 1000, Duration::from_millis(200));
        s.halve();
        assert_eq!(s.size(), 75);
        for _ in 0..10 {
            s.halve();
        }
        assert_eq!(s.size(), 1);
    }
}
