//! Yielding to the application: the backfill rests between batches while its batches make the
//! server answer slower.
//!
//! A probe on a connection of its own asks the server a trivial query (`SELECT 1`) every
//! `probe_every` and times the answer. On a server with CPUs to spare the answer takes about
//! the same time whether a batch runs or not; on a saturated one every query waits for a CPU,
//! the probe's and the application's alike. The [`Pacer`] compares the probe's median while
//! batches run with its median while none runs (measured before the first batch and in the
//! rests), and sets the share of time spent in batches (the duty): cut by 40% in each window
//! where the rise passes `max_latency_rise` (from the second such window in a row: one may be
//! noise), given back 5 points per window where it does not, never below `min_duty` (the
//! backfill always ends). While it rests, batches are kept short (`SHORT_BATCH`) so that the
//! server is never held for long at a stretch. Off by default (`BackfillOptions::pacing`): on
//! a small shared machine a batch alone can double the probe's answer (docs/backfill.md).
//!
//! The idea is the one behind LEDBAT (RFC 6817) for background transfers and CockroachDB's
//! elastic admission control for its backfills: background work measures the queueing it
//! causes and takes only what the foreground leaves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgshift_db::{connect, DatabaseUrl, DbError};

/// Batches aim at most this long while the backfill rests between them.
pub const SHORT_BATCH: Duration = Duration::from_millis(50);

/// How the backfill yields; see the module documentation.
#[derive(Debug, Clone)]
pub struct PacingOptions {
    /// How many times the probe's median answer may rise while batches run before the
    /// backfill rests more (2.0: up to twice as slow).
    pub max_latency_rise: f64,
    /// A rise smaller than this is never counted, whatever the ratio (a 20 µs answer that
    /// becomes 60 µs slows nobody).
    pub min_latency_rise: Duration,
    pub probe_every: Duration,
    /// The probe: any cheap query (one that stands for the application's can be given).
    pub probe_sql: String,
    /// The least share of time in batches.
    pub min_duty: f64,
    /// How often the duty is reconsidered.
    pub window: Duration,
}

impl Default for PacingOptions {
    fn default() -> PacingOptions {
        PacingOptions {
            max_latency_rise: 2.0,
            min_latency_rise: Duration::from_micros(50),
            probe_every: Duration::from_millis(10),
            probe_sql: "SELECT 1".into(),
            min_duty: 0.05,
            window: Duration::from_millis(500),
        }
    }
}

/// One answer of the probe.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// A batch was running when the probe was sent.
    pub busy: bool,
    pub latency: Duration,
}

/// The probe's task and what it measured since the last [`Probe::take`].
pub struct Probe {
    samples: Arc<Mutex<Vec<Sample>>>,
    busy: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    /// Connects and starts probing every `every`. Fails when the second connection cannot be
    /// opened (the caller then runs without pacing and says so).
    pub async fn start(url: &DatabaseUrl, options: &PacingOptions) -> Result<Probe, DbError> {
        let conn = connect(url).await?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let busy = Arc::new(AtomicBool::new(false));
        let (every, sql) = (options.probe_every, options.probe_sql.clone());
        let (out, flag) = (samples.clone(), busy.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let busy = flag.load(Ordering::Relaxed);
                let sent = Instant::now();
                if conn.client().simple_query(&sql).await.is_err() {
                    // A probe that fails measures nothing; the loop then runs at the user's
                    // duty ([`Pacing::batch_ended`]).
                    return;
                }
                let latency = sent.elapsed();
                if let Ok(mut s) = out.lock() {
                    s.push(Sample { busy, latency });
                }
            }
        });
        Ok(Probe {
            samples,
            busy,
            task,
        })
    }

    /// A batch starts (`true`) or ends (`false`).
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Relaxed);
    }

    /// The probe still runs (its query has not failed).
    pub fn alive(&self) -> bool {
        !self.task.is_finished()
    }

    /// The samples measured since the last call.
    pub fn take(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Dropping the task drops its connection, which closes it.
        self.task.abort();
    }
}

/// The control law, apart from any connection (tested on made-up samples).
#[derive(Debug, Clone)]
pub struct Pacer {
    options: PacingOptions,
    max_duty: f64,
    duty: f64,
    /// Medians of the probe without batches, newest last, with when they were taken: the
    /// smallest of the last minute is the base.
    idle: Vec<(Instant, Duration)>,
    busy: Vec<Duration>,
    quiet: Vec<Duration>,
    window_started: Instant,
    last_idle: Instant,
    /// Windows in a row where batches slowed the probe down.
    slow_windows: u32,
    /// The last window's verdict, shown while the duty is below its maximum.
    reason: Option<String>,
}

/// Medians of the probe without batches are kept this long; the smallest is the base.
const BASE_MEMORY: Duration = Duration::from_secs(60);
/// At full duty there are no rests to measure the base in: one is made this often.
const BASE_REFRESH: Duration = Duration::from_secs(5);
/// Fewer samples than this in a window decide nothing.
const MIN_SAMPLES: usize = 5;

impl Pacer {
    /// `max_duty`: the user's duty (1: batches back to back when nothing slows down).
    pub fn new(options: PacingOptions, max_duty: f64, now: Instant) -> Pacer {
        let max_duty = max_duty.clamp(options.min_duty, 1.0);
        Pacer {
            options,
            max_duty,
            duty: max_duty,
            idle: Vec::new(),
            busy: Vec::new(),
            quiet: Vec::new(),
            window_started: now,
            last_idle: now,
            slow_windows: 0,
            reason: None,
        }
    }

    pub fn duty(&self) -> f64 {
        self.duty
    }

    /// Why the backfill rests more than the user asked, while it does.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The median answer without batches that rises are measured against.
    pub fn base(&self) -> Option<Duration> {
        self.idle.iter().map(|(_, d)| *d).min()
    }

    /// Takes the samples in, and at the end of each window reconsiders the duty.
    pub fn observe(&mut self, samples: &[Sample], now: Instant) {
        for s in samples {
            if s.busy {
                self.busy.push(s.latency);
            } else {
                self.quiet.push(s.latency);
            }
        }
        if now.duration_since(self.window_started) < self.options.window {
            return;
        }
        self.window_started = now;
        if self.quiet.len() >= MIN_SAMPLES {
            let m = median(&mut self.quiet);
            self.idle.push((now, m));
            self.last_idle = now;
        }
        self.idle
            .retain(|(t, _)| now.duration_since(*t) <= BASE_MEMORY);
        self.quiet.clear();
        let busy = if self.busy.len() >= MIN_SAMPLES {
            Some(median(&mut self.busy))
        } else {
            None
        };
        self.busy.clear();
        let (Some(base), Some(busy)) = (self.base(), busy) else {
            return;
        };
        let limit = base
            .mul_f64(self.options.max_latency_rise)
            .max(base + self.options.min_latency_rise);
        if busy > limit {
            // One slow window may be the machine's noise (another tenant, a checkpoint): the
            // duty is cut from the second one in a row.
            self.slow_windows += 1;
            if self.slow_windows < 2 {
                return;
            }
            self.duty = (self.duty * 0.6).max(self.options.min_duty);
            self.reason = Some(format!(
                "the server answers {:.1}x slower while batches run ({:.1} ms against {:.1} ms): it has no CPU to spare; batches run {:.0}% of the time",
                busy.as_secs_f64() / base.as_secs_f64().max(1e-6),
                busy.as_secs_f64() * 1000.0,
                base.as_secs_f64() * 1000.0,
                self.duty * 100.0
            ));
        } else {
            self.slow_windows = 0;
            self.duty = (self.duty + 0.05).min(self.max_duty);
            if self.duty >= self.max_duty {
                self.reason = None;
            }
        }
    }

    /// How long to rest after a batch that took `took`. At full duty a rest is still made
    /// now and then, long enough for the probe to measure the server without batches.
    pub fn rest_after(&self, took: Duration, now: Instant) -> Duration {
        let rest = if self.duty < 1.0 {
            took.mul_f64(1.0 / self.duty - 1.0)
        } else {
            Duration::ZERO
        };
        if now.duration_since(self.last_idle) >= BASE_REFRESH || self.idle.is_empty() {
            rest.max(self.options.probe_every * (MIN_SAMPLES as u32 + 2))
        } else {
            rest
        }
    }

    /// The batch duration to aim at, given the user's: short while resting.
    pub fn batch_target(&self, target: Duration) -> Duration {
        if self.duty < self.max_duty {
            target.min(SHORT_BATCH)
        } else {
            target
        }
    }
}

/// The probe and the pacer together, as the batch loop uses them.
pub struct Pacing {
    probe: Probe,
    pacer: Pacer,
    max_duty: f64,
}

impl Pacing {
    /// Starts the probe; `max_duty` is the user's duty.
    pub async fn start(
        url: &DatabaseUrl,
        options: &PacingOptions,
        max_duty: f64,
    ) -> Result<Pacing, DbError> {
        let probe = Probe::start(url, options).await?;
        Ok(Pacing {
            probe,
            pacer: Pacer::new(options.clone(), max_duty, Instant::now()),
            max_duty,
        })
    }

    pub fn batch_started(&self) {
        self.probe.set_busy(true);
    }

    /// A batch that took `took` ended: the rest to make before the next one.
    pub fn batch_ended(&mut self, took: Duration) -> Duration {
        self.probe.set_busy(false);
        if !self.probe.alive() {
            // Nothing to measure by: the user's duty alone.
            return took.mul_f64(1.0 / self.max_duty.clamp(0.05, 1.0) - 1.0);
        }
        let now = Instant::now();
        self.pacer.observe(&self.probe.take(), now);
        self.pacer.rest_after(took, now)
    }

    /// The batch duration to aim at, given the user's.
    pub fn batch_target(&self, target: Duration) -> Duration {
        self.pacer.batch_target(target)
    }

    /// Why the backfill rests more than the user asked, while it does.
    pub fn reason(&self) -> Option<&str> {
        self.probe.alive().then(|| self.pacer.reason()).flatten()
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(busy: bool, ms: f64, n: usize) -> Vec<Sample> {
        vec![
            Sample {
                busy,
                latency: Duration::from_secs_f64(ms / 1000.0),
            };
            n
        ]
    }

    /// One window: `n` samples at `quiet_ms` without batches and at `busy_ms` with.
    fn window(p: &mut Pacer, t: &mut Instant, quiet_ms: f64, busy_ms: f64) {
        let mut s = samples(false, quiet_ms, 10);
        s.extend(samples(true, busy_ms, 40));
        *t += Duration::from_millis(500);
        p.observe(&s, *t);
    }

    #[test]
    fn a_saturated_server_cuts_the_duty_and_says_why() {
        let mut t = Instant::now();
        let mut p = Pacer::new(PacingOptions::default(), 1.0, t);
        window(&mut p, &mut t, 0.5, 3.0);
        assert_eq!(p.duty(), 1.0, "one slow window may be noise");
        window(&mut p, &mut t, 0.5, 3.0);
        assert!((p.duty() - 0.6).abs() < 1e-9, "{}", p.duty());
        let why = p.reason().expect("a reason while resting");
        assert!(why.contains("6.0x slower"), "{why}");
        assert!(why.contains("60% of the time"), "{why}");
        for _ in 0..20 {
            window(&mut p, &mut t, 0.5, 3.0);
        }
        assert!((p.duty() - 0.05).abs() < 1e-9, "never below min_duty");
        // Rest after a 50 ms batch at 5%: 950 ms; batches short while resting.
        let rest = p.rest_after(Duration::from_millis(50), t);
        assert_eq!(rest.as_millis(), 950);
        assert_eq!(p.batch_target(Duration::from_millis(200)), SHORT_BATCH);
    }

    #[test]
    fn a_server_with_spare_cpu_gets_full_duty_back() {
        let mut t = Instant::now();
        let mut p = Pacer::new(PacingOptions::default(), 1.0, t);
        for _ in 0..3 {
            window(&mut p, &mut t, 0.5, 3.0);
        }
        assert!(p.duty() < 0.5);
        // The load goes: batches no longer slow the probe down.
        for _ in 0..20 {
            window(&mut p, &mut t, 0.5, 0.6);
        }
        assert_eq!(p.duty(), 1.0);
        assert_eq!(p.reason(), None);
        assert_eq!(
            p.batch_target(Duration::from_millis(200)),
            Duration::from_millis(200)
        );
        // The user's duty is the ceiling.
        let mut q = Pacer::new(PacingOptions::default(), 0.5, t);
        window(&mut q, &mut t, 0.5, 0.5);
        assert_eq!(q.duty(), 0.5);
    }

    #[test]
    fn small_rises_and_thin_windows_change_nothing() {
        let mut t = Instant::now();
        let mut p = Pacer::new(PacingOptions::default(), 1.0, t);
        // 20 µs becoming 60 µs is 3x but under the 50 µs floor; 0.5 ms becoming 0.9 ms is
        // under 2x.
        window(&mut p, &mut t, 0.02, 0.06);
        assert_eq!(p.duty(), 1.0);
        window(&mut p, &mut t, 0.5, 0.9);
        assert_eq!(p.duty(), 1.0);
        // Too few samples with batches running: no verdict.
        t += Duration::from_millis(500);
        let mut s = samples(false, 0.1, 10);
        s.extend(samples(true, 50.0, 2));
        p.observe(&s, t);
        assert_eq!(p.duty(), 1.0);
        // Within a window, samples only accumulate.
        let mut q = Pacer::new(PacingOptions::default(), 1.0, t);
        q.observe(&samples(true, 50.0, 100), t + Duration::from_millis(100));
        assert_eq!(q.duty(), 1.0);
    }

    #[test]
    fn the_base_is_the_smallest_quiet_median_of_the_last_minute() {
        let mut t = Instant::now();
        let mut p = Pacer::new(PacingOptions::default(), 1.0, t);
        // No base yet: the first batch is preceded by a rest long enough to measure one.
        assert!(p.rest_after(Duration::from_millis(200), t) >= Duration::from_millis(70));
        window(&mut p, &mut t, 0.4, 0.4);
        window(&mut p, &mut t, 2.0, 0.4);
        assert_eq!(p.base(), Some(Duration::from_micros(400)));
        // At full duty with a fresh base, no rest; five seconds later, one to refresh it.
        assert_eq!(p.rest_after(Duration::from_millis(200), t), Duration::ZERO);
        assert!(
            p.rest_after(Duration::from_millis(200), t + Duration::from_secs(6))
                >= Duration::from_millis(70)
        );
        // A minute later the old quiet medians are forgotten.
        t += Duration::from_secs(61);
        p.observe(&samples(false, 2.0, 10), t);
        assert_eq!(p.base(), Some(Duration::from_millis(2)));
    }
}
