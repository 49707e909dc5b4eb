//! Yielding the server to the application. A batch takes a CPU for as long as it runs; an
//! application on the same server queues behind it, and on a busy server its slowest
//! transactions get many times slower, locks or not (measured on 2 cores:
//! the load's p99 from 1.8 ms to 27-69 ms during full-speed batches). So while other
//! sessions are at work, the backfill works in short batches and rests most of the time;
//! when nobody else is running anything it goes at full speed.
//!
//! Each batch's checkpoint returns how many other client sessions were at work at that
//! moment, in any database of the server (`pg_stat_activity`: running a query, or inside a
//! transaction that ran one within the last second; sessions with the backfill's own
//! `application_name`, pgshift's other sessions, left out). Between the statements of a
//! transaction a session is `idle in transaction`, and an application of short transactions
//! is seen running a query at only some batch ends: counting only `active` sessions let the
//! backfill take half the time in batches under a steady load. A moving average of "someone
//! was" is how busy the application is; it rises at once when someone is seen and falls
//! slowly (about 3 s of batch ends that see nobody), so a few quiet samples do not send the
//! backfill back to full speed. At half or more, batches aim at
//! [`BusyOptions::target_batch`] and take [`BusyOptions::duty`] of the time; below that, in
//! proportion. Sessions of roles the
//! backfill's role is not a member of are seen only with `pg_read_all_stats` (`pg_monitor`)
//! or as a superuser; otherwise their activity does not count.

use std::time::Duration;

/// How the backfill runs while the application is busy.
#[derive(Debug, Clone, PartialEq)]
pub struct BusyOptions {
    /// Share of the time spent in batches; the rest is rest between batches.
    pub duty: f64,
    /// How long a batch aims to take.
    pub target_batch: Duration,
}

impl Default for BusyOptions {
    fn default() -> BusyOptions {
        BusyOptions {
            duty: 0.1,
            target_batch: Duration::from_millis(10),
        }
    }
}

/// How busy the application has been over recent batches.
#[derive(Debug, Clone)]
pub(super) struct Busy {
    options: Option<BusyOptions>,
    /// Moving average of "another session was at work when a batch ended".
    share: f64,
    /// Sessions seen at work at the end of the last batch that saw any.
    last_seen: u64,
}

impl Busy {
    pub fn new(options: Option<BusyOptions>) -> Busy {
        Busy {
            options: options.filter(|o| o.duty < 1.0),
            share: 0.0,
            last_seen: 0,
        }
    }

    /// A batch ended with `others` sessions at work.
    pub fn record(&mut self, others: u64) {
        if others > 0 {
            self.share = self.share * 0.5 + 0.5;
            self.last_seen = others;
        } else {
            self.share *= 0.9;
        }
    }

    /// How far towards the busy settings: 0 with nobody else active, 1 from half the
    /// samples on.
    fn weight(&self) -> f64 {
        if self.options.is_some() {
            (self.share * 2.0).min(1.0)
        } else {
            0.0
        }
    }

    /// The share of time in batches now, given the one asked for when nobody else is active.
    pub fn duty(&self, base: f64) -> f64 {
        match &self.options {
            Some(o) if o.duty < base => base + (o.duty - base) * self.weight(),
            _ => base,
        }
    }

    /// The batch duration aimed at now, at most `base`.
    pub fn target(&self, base: Duration) -> Duration {
        match &self.options {
            Some(o) if o.target_batch < base => {
                base.mul_f64(1.0 - self.weight()) + o.target_batch.mul_f64(self.weight())
            }
            _ => base,
        }
    }

    /// Why the backfill goes slower than it could, while it does.
    pub fn reason(&self, base_duty: f64) -> Option<String> {
        if self.weight() < 0.5 || self.duty(base_duty) >= base_duty {
            return None;
        }
        Some(format!(
            "the application is busy ({} other session(s) at work): yielding, {:.0}% of the time in batches",
            self.last_seen,
            self.duty(base_duty) * 100.0
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_speed_while_nobody_else_runs_anything() {
        let mut b = Busy::new(Some(BusyOptions::default()));
        for _ in 0..20 {
            b.record(0);
        }
        assert_eq!(b.duty(1.0), 1.0);
        assert_eq!(
            b.target(Duration::from_millis(200)),
            Duration::from_millis(200)
        );
        assert_eq!(b.reason(1.0), None);
    }

    #[test]
    fn short_batches_and_mostly_rest_while_the_application_is_busy() {
        let mut b = Busy::new(Some(BusyOptions::default()));
        for _ in 0..20 {
            b.record(3);
        }
        assert!((b.duty(1.0) - 0.1).abs() < 1e-9, "{}", b.duty(1.0));
        assert_eq!(
            b.target(Duration::from_millis(200)),
            Duration::from_millis(10)
        );
        assert!(b.reason(1.0).unwrap().contains("3 other session(s)"));
        // A batch that saw nobody does not make the reason say "0 sessions".
        b.record(0);
        assert!(b.reason(1.0).unwrap().contains("3 other session(s)"));
        // A few batch ends that see nobody (between an application's transactions) do not
        // send it back to full speed...
        for _ in 0..5 {
            b.record(0);
        }
        assert!(b.duty(1.0) < 0.15, "{}", b.duty(1.0));
        // ... a quiet application does, within 30 batch ends (about 3 s at 10 ms / 10 %).
        for _ in 0..25 {
            b.record(0);
        }
        assert!(b.duty(1.0) > 0.9, "{}", b.duty(1.0));
    }

    #[test]
    fn a_lighter_application_slows_the_backfill_less() {
        // One batch end in five sees someone: the application is at work much of the time.
        let mut five = Busy::new(Some(BusyOptions::default()));
        // One in twenty: now and then.
        let mut twenty = Busy::new(Some(BusyOptions::default()));
        for i in 0..200 {
            five.record(u64::from(i % 5 == 0));
            twenty.record(u64::from(i % 20 == 0));
        }
        let (d5, d20) = (five.duty(1.0), twenty.duty(1.0));
        assert!(d5 < 0.3, "{d5}");
        assert!(d20 > d5 && d20 < 0.9, "{d20}");
    }

    #[test]
    fn off_and_slower_settings_asked_for_are_kept() {
        let mut off = Busy::new(None);
        let mut one = Busy::new(Some(BusyOptions {
            duty: 1.0,
            ..BusyOptions::default()
        }));
        for _ in 0..20 {
            off.record(5);
            one.record(5);
        }
        assert_eq!(off.duty(1.0), 1.0);
        assert_eq!(one.duty(1.0), 1.0);
        assert_eq!(off.reason(1.0), None);
        // A duty asked for below the busy one stays.
        let mut b = Busy::new(Some(BusyOptions::default()));
        b.record(5);
        assert_eq!(b.duty(0.05), 0.05);
        assert_eq!(b.reason(0.05), None, "nothing slower than asked for");
    }
}
