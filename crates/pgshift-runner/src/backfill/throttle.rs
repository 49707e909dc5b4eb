//! Signals that the backfill should slow down or wait, each one query, read at most once per
//! `check_every`. A signal either pauses the backfill until it clears (replica lag, WAL held by
//! logical slots, the archiver's backlog, a vacuum against wraparound on the table, the user's
//! probe) or halves the batch (sessions waited on the backfill's row locks, which the batch
//! itself reports).
//! The reason is always given to the caller, which shows it.

use std::time::{Duration, Instant};

use pgshift_db::{connect, Connection, DatabaseUrl, DbError};
use tokio_postgres::Client;

/// Limits; every signal can be turned off.
#[derive(Debug, Clone)]
pub struct ThrottleOptions {
    /// Pause while a streaming replica's replay lag is above this. `None`: off.
    pub max_replica_lag: Option<Duration>,
    /// Pause while a replica is this many bytes of WAL behind. `None`: off.
    pub max_replica_lag_bytes: Option<u64>,
    /// Pause while a logical replication slot holds back more WAL than this. `None`: off.
    pub max_slot_wal_bytes: Option<u64>,
    /// Slow down while WAL is written faster than this, in bytes per second. `None`: off.
    pub max_wal_rate: Option<u64>,
    /// Pause while more WAL segments than this wait for `archive_command`. `None`: off.
    pub max_archive_ready: Option<i64>,
    /// Pause while a vacuum to prevent transaction ID wraparound works on the table (its
    /// `relfrozenxid` or `relminmxid` is older than the autovacuum freeze limits), for at most
    /// this long per vacuum. An ordinary vacuum runs beside the backfill and is not waited for:
    /// it does not conflict with the batches and reclaims their dead rows as it goes, while
    /// waiting would stop the backfill for as long as the vacuum takes (54 s of a 76 s run on
    /// 8M rows, measured). `None`: off.
    pub wraparound_vacuum_wait: Option<Duration>,
    /// A query that returns one boolean; true pauses.
    pub throttle_query: Option<String>,
    /// A replica to read replay lag from directly (a replica pg_stat_replication does not
    /// list, e.g. a cascading one).
    pub replica_url: Option<DatabaseUrl>,
    pub check_every: Duration,
}

impl Default for ThrottleOptions {
    fn default() -> ThrottleOptions {
        ThrottleOptions {
            max_replica_lag: Some(Duration::from_secs(2)),
            max_replica_lag_bytes: Some(256 << 20),
            max_slot_wal_bytes: Some(1 << 30),
            max_wal_rate: None,
            max_archive_ready: Some(42),
            wraparound_vacuum_wait: Some(Duration::from_secs(600)),
            throttle_query: None,
            replica_url: None,
            check_every: Duration::from_secs(1),
        }
    }
}

/// What the signals say now.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Go,
    /// Wait before the next batch, saying why; checked again after `check_every`.
    Pause(String),
    /// Wait this long (WAL rate), saying why.
    Slow(Duration, String),
}

pub struct Throttle {
    options: ThrottleOptions,
    table_oid: u32,
    replica: Option<Connection>,
    last_check: Option<Instant>,
    last_wal: Option<(Instant, i64)>,
    archiver_readable: bool,
    vacuum_since: Option<Instant>,
    last: Verdict,
}

impl Throttle {
    /// Connects to the replica if one is named, and tries the user's probe once so a broken
    /// probe fails before the first batch.
    pub async fn new(
        client: &Client,
        options: ThrottleOptions,
        table_oid: u32,
    ) -> Result<Throttle, super::BackfillError> {
        if let Some(query) = &options.throttle_query {
            probe(client, query)
                .await
                .map_err(|server| super::BackfillError::ThrottleQuery {
                    query: query.clone(),
                    reason: server,
                })?;
        }
        let replica = match &options.replica_url {
            Some(url) => Some(connect(url).await?),
            None => None,
        };
        // pg_ls_archive_statusdir needs superuser or pg_monitor; without it the signal is off.
        let archiver_readable = options.max_archive_ready.is_some()
            && client
                .query_one(
                    "SELECT current_setting('archive_mode') <> 'off'
                        AND (pg_has_role('pg_monitor', 'USAGE')
                             OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))",
                    &[],
                )
                .await
                .map(|r| r.get::<_, bool>(0))
                .unwrap_or(false);
        Ok(Throttle {
            options,
            table_oid,
            replica,
            last_check: None,
            last_wal: None,
            archiver_readable,
            vacuum_since: None,
            last: Verdict::Go,
        })
    }

    /// The verdict, read anew when `check_every` has passed since the last reading.
    pub async fn check(&mut self, client: &Client) -> Result<Verdict, DbError> {
        let now = Instant::now();
        if self
            .last_check
            .is_some_and(|t| now.duration_since(t) < self.options.check_every)
        {
            // Between readings a pause stands (the caller sleeps and asks again); a slow-down
            // was already served.
            return Ok(match &self.last {
                Verdict::Slow(..) => Verdict::Go,
                other => other.clone(),
            });
        }
        self.last_check = Some(now);
        self.last = self.read(client, now).await?;
        Ok(self.last.clone())
    }

    async fn read(&mut self, client: &Client, now: Instant) -> Result<Verdict, DbError> {
        let row = client
            .query_one(
                "SELECT
                   (SELECT max(extract(epoch FROM replay_lag))::float8 FROM pg_stat_replication),
                   (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::int8
                      FROM pg_stat_replication),
                   (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn))::int8
                      FROM pg_replication_slots WHERE slot_type = 'logical'),
                   pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8,
                   EXISTS (SELECT 1 FROM pg_stat_progress_vacuum WHERE relid = $1)
                   AND EXISTS (
                     SELECT 1 FROM pg_class c
                      WHERE c.oid = $1
                        AND ((c.relfrozenxid::text <> '0'
                              AND age(c.relfrozenxid) > least(
                                    current_setting('autovacuum_freeze_max_age')::int8,
                                    (SELECT option_value::int8 FROM pg_options_to_table(c.reloptions)
                                      WHERE option_name = 'autovacuum_freeze_max_age')))
                          OR (c.relminmxid::text <> '0'
                              AND mxid_age(c.relminmxid) > least(
                                    current_setting('autovacuum_multixact_freeze_max_age')::int8,
                                    (SELECT option_value::int8 FROM pg_options_to_table(c.reloptions)
                                      WHERE option_name = 'autovacuum_multixact_freeze_max_age')))))",
                &[&self.table_oid],
            )
            .await?;
        let mut readings = Readings {
            replica_lag: row.get(0),
            replica_lag_bytes: row.get(1),
            slot_bytes: row.get(2),
            archive_ready: None,
            wraparound_vacuum_for: None,
            probe: None,
            wal_rate: None,
        };
        let wal: i64 = row.get(3);
        let wraparound_vacuum: bool = row.get(4);
        if let Some(replica) = &self.replica {
            let r = replica
                .client()
                .query_one(
                    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8",
                    &[],
                )
                .await?;
            let lag: Option<f64> = r.get(0);
            readings.replica_lag = match (readings.replica_lag, lag) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        if self.archiver_readable {
            readings.archive_ready = client
                .query_one(
                    "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
                    &[],
                )
                .await
                .ok()
                .map(|r| r.get(0));
        }
        if wraparound_vacuum {
            readings.wraparound_vacuum_for =
                Some(now.duration_since(*self.vacuum_since.get_or_insert(now)));
        } else {
            self.vacuum_since = None;
        }
        if let Some(query) = &self.options.throttle_query {
            readings.probe = Some(probe(client, query).await);
        }
        if let Some((then, before)) = self.last_wal.replace((now, wal)) {
            let secs = now.duration_since(then).as_secs_f64();
            if secs > 0.0 {
                readings.wal_rate = Some(((wal - before).max(0) as f64 / secs, secs));
            }
        }
        Ok(judge(&readings, &self.options))
    }
}

/// What the signals read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Readings {
    /// Seconds, the largest over the replicas.
    pub replica_lag: Option<f64>,
    pub replica_lag_bytes: Option<i64>,
    /// WAL held back by the most-behind logical slot.
    pub slot_bytes: Option<i64>,
    /// WAL segments waiting for `archive_command`.
    pub archive_ready: Option<i64>,
    /// How long a vacuum to prevent wraparound has been working on the table.
    pub wraparound_vacuum_for: Option<Duration>,
    /// The user's probe: its value, or why it failed.
    pub probe: Option<Result<bool, String>>,
    /// WAL written per second since the last reading, and that interval in seconds.
    pub wal_rate: Option<(f64, f64)>,
}

/// The verdict for `readings` under `options`: the first limit exceeded, with its reason.
pub fn judge(readings: &Readings, o: &ThrottleOptions) -> Verdict {
    if let (Some(max), Some(lag)) = (o.max_replica_lag, readings.replica_lag) {
        if lag > max.as_secs_f64() {
            return Verdict::Pause(format!(
                "replica replay lag {lag:.1}s is above {:.1}s",
                max.as_secs_f64()
            ));
        }
    }
    if let (Some(max), Some(bytes)) = (o.max_replica_lag_bytes, readings.replica_lag_bytes) {
        if bytes > max as i64 {
            return Verdict::Pause(format!(
                "a replica is {} of WAL behind (limit {})",
                bytes_text(bytes),
                bytes_text(max as i64)
            ));
        }
    }
    if let (Some(max), Some(bytes)) = (o.max_slot_wal_bytes, readings.slot_bytes) {
        if bytes > max as i64 {
            return Verdict::Pause(format!(
                "a logical replication slot holds back {} of WAL (limit {}): its consumer is behind",
                bytes_text(bytes),
                bytes_text(max as i64)
            ));
        }
    }
    if let (Some(max), Some(ready)) = (o.max_archive_ready, readings.archive_ready) {
        if ready > max {
            return Verdict::Pause(format!(
                "{ready} WAL segments wait for archive_command (limit {max})"
            ));
        }
    }
    if let (Some(limit), Some(running)) = (o.wraparound_vacuum_wait, readings.wraparound_vacuum_for)
    {
        if running < limit {
            return Verdict::Pause(
                "a vacuum to prevent transaction ID wraparound is working on the table; the \
                 backfill waits so it can finish"
                    .into(),
            );
        }
    }
    match &readings.probe {
        Some(Ok(true)) => return Verdict::Pause("the --throttle-query returned true".into()),
        Some(Err(reason)) => {
            return Verdict::Pause(format!("the --throttle-query failed: {reason}"))
        }
        _ => {}
    }
    if let (Some(max), Some((rate, secs))) = (o.max_wal_rate, readings.wal_rate) {
        if rate > max as f64 {
            // Long enough that the average over the interval comes back to the limit.
            let wait = Duration::from_secs_f64(rate * secs / max as f64 - secs);
            return Verdict::Slow(
                wait,
                format!(
                    "WAL written at {}/s (limit {}/s)",
                    bytes_text(rate as i64),
                    bytes_text(max as i64)
                ),
            );
        }
    }
    Verdict::Go
}

/// Runs the user's probe; Ok(value) or the reason it is unusable.
async fn probe(client: &Client, query: &str) -> Result<bool, String> {
    let rows = client
        .query(query, &[])
        .await
        .map_err(|e| DbError::from(e).to_string())?;
    match rows.as_slice() {
        [row] if row.len() == 1 => row
            .try_get::<_, Option<bool>>(0)
            .map(|v| v.unwrap_or(false))
            .map_err(|_| "it must return one boolean column".to_owned()),
        _ => Err(format!(
            "it must return exactly one row with one boolean column; it returned {} rows",
            rows.len()
        )),
    }
}

fn bytes_text(bytes: i64) -> String {
    const MB: f64 = (1 << 20) as f64;
    if bytes >= 1 << 30 {
        format!("{:.1} GB", bytes as f64 / (1 << 30) as f64)
    } else {
        format!("{:.0} MB", bytes as f64 / MB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paused(r: Readings) -> String {
        match judge(&r, &ThrottleOptions::default()) {
            Verdict::Pause(why) => why,
            other => panic!("expected a pause, got {other:?}"),
        }
    }

    #[test]
    fn each_signal_over_its_default_limit_pauses_with_its_reason() {
        assert!(paused(Readings {
            replica_lag: Some(3.0),
            ..Readings::default()
        })
        .contains("replica replay lag 3.0s"));
        assert!(paused(Readings {
            replica_lag_bytes: Some(300 << 20),
            ..Readings::default()
        })
        .contains("300 MB of WAL behind"));
        assert!(paused(Readings {
            slot_bytes: Some(2 << 30),
            ..Readings::default()
        })
        .contains("logical replication slot"));
        assert!(paused(Readings {
            archive_ready: Some(43),
            ..Readings::default()
        })
        .contains("archive_command"));
        assert!(paused(Readings {
            wraparound_vacuum_for: Some(Duration::from_secs(5)),
            ..Readings::default()
        })
        .contains("vacuum"));
        assert!(paused(Readings {
            probe: Some(Ok(true)),
            ..Readings::default()
        })
        .contains("--throttle-query returned true"));
        assert!(paused(Readings {
            probe: Some(Err("boom".into())),
            ..Readings::default()
        })
        .contains("boom"));
    }

    #[test]
    fn under_the_limits_it_goes() {
        let calm = Readings {
            replica_lag: Some(0.5),
            replica_lag_bytes: Some(1 << 20),
            slot_bytes: Some(1 << 20),
            archive_ready: Some(3),
            wraparound_vacuum_for: None,
            probe: Some(Ok(false)),
            wal_rate: Some((100.0 * (1 << 20) as f64, 1.0)),
        };
        assert_eq!(judge(&calm, &ThrottleOptions::default()), Verdict::Go);
        // A vacuum against wraparound is waited for at most wraparound_vacuum_wait.
        let long_vacuum = Readings {
            wraparound_vacuum_for: Some(Duration::from_secs(601)),
            ..Readings::default()
        };
        assert_eq!(
            judge(&long_vacuum, &ThrottleOptions::default()),
            Verdict::Go
        );
        // Every limit can be turned off.
        let off = ThrottleOptions {
            max_replica_lag: None,
            max_replica_lag_bytes: None,
            max_slot_wal_bytes: None,
            max_archive_ready: None,
            wraparound_vacuum_wait: None,
            ..ThrottleOptions::default()
        };
        let stormy = Readings {
            replica_lag: Some(99.0),
            replica_lag_bytes: Some(1 << 40),
            slot_bytes: Some(1 << 40),
            archive_ready: Some(1000),
            wraparound_vacuum_for: Some(Duration::from_secs(1)),
            ..Readings::default()
        };
        assert_eq!(judge(&stormy, &off), Verdict::Go);
    }

    #[test]
    fn a_wal_rate_over_the_limit_slows_down_to_bring_the_average_back() {
        let o = ThrottleOptions {
            max_wal_rate: Some(10 << 20),
            ..ThrottleOptions::default()
        };
        // 40 MB/s for 1 s against a 10 MB/s limit: 3 s more brings the average to 10 MB/s.
        let r = Readings {
            wal_rate: Some((40.0 * (1 << 20) as f64, 1.0)),
            ..Readings::default()
        };
        match judge(&r, &o) {
            Verdict::Slow(wait, why) => {
                assert_eq!(wait.as_secs(), 3);
                assert!(why.contains("WAL written at 40 MB/s"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
}
