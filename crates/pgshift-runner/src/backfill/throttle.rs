//! Signals that the backfill should slow down or wait, each one query, read at most once per
//! `check_every`. A signal either pauses the backfill until it clears (replica lag, WAL held by
//! logical slots, the archiver's backlog, autovacuum on the table, the user's probe) or halves
//! the batch (sessions waited on the backfill's row locks, which the batch itself reports).
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
    /// Pause while autovacuum works on the table, for at most this long per vacuum. `None`: off.
    pub autovacuum_wait: Option<Duration>,
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
            autovacuum_wait: Some(Duration::from_secs(600)),
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
        let o = &self.options;
        let row = client
            .query_one(
                "SELECT
                   (SELECT max(extract(epoch FROM replay_lag))::float8 FROM pg_stat_replication),
                   (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::int8
                      FROM pg_stat_replication),
                   (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn))::int8
                      FROM pg_replication_slots WHERE slot_type = 'logical'),
                   pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8,
                   EXISTS (SELECT 1 FROM pg_stat_progress_vacuum WHERE relid = $1)",
                &[&self.table_oid],
            )
            .await?;
        let lag: Option<f64> = row.get(0);
        let lag_bytes: Option<i64> = row.get(1);
        let slot_bytes: Option<i64> = row.get(2);
        let wal: i64 = row.get(3);
        let vacuum: bool = row.get(4);

        if let (Some(max), Some(lag)) = (o.max_replica_lag, lag) {
            if lag > max.as_secs_f64() {
                return Ok(Verdict::Pause(format!(
                    "replica replay lag {lag:.1}s is above {:.1}s",
                    max.as_secs_f64()
                )));
            }
        }
        if let (Some(max), Some(bytes)) = (o.max_replica_lag_bytes, lag_bytes) {
            if bytes > max as i64 {
                return Ok(Verdict::Pause(format!(
                    "a replica is {} of WAL behind (limit {})",
                    bytes_text(bytes),
                    bytes_text(max as i64)
                )));
            }
        }
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
            if let (Some(max), Some(lag)) = (o.max_replica_lag, lag) {
                if lag > max.as_secs_f64() {
                    return Ok(Verdict::Pause(format!(
                        "the replica given by --replica-url is {lag:.1}s behind (limit {:.1}s)",
                        max.as_secs_f64()
                    )));
                }
            }
        }
        if let (Some(max), Some(bytes)) = (o.max_slot_wal_bytes, slot_bytes) {
            if bytes > max as i64 {
                return Ok(Verdict::Pause(format!(
                    "a logical replication slot holds back {} of WAL (limit {}): its consumer is behind",
                    bytes_text(bytes),
                    bytes_text(max as i64)
                )));
            }
        }
        if self.archiver_readable {
            if let Some(max) = o.max_archive_ready {
                let ready: Option<i64> = client
                    .query_one(
                        "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
                        &[],
                    )
                    .await
                    .ok()
                    .map(|r| r.get(0));
                if let Some(ready) = ready.filter(|r| *r > max) {
                    return Ok(Verdict::Pause(format!(
                        "{ready} WAL segments wait for archive_command (limit {max})"
                    )));
                }
            }
        }
        if vacuum {
            if let Some(limit) = o.autovacuum_wait {
                let since = *self.vacuum_since.get_or_insert(now);
                if now.duration_since(since) < limit {
                    return Ok(Verdict::Pause(
                        "a vacuum is working on the table; the backfill waits so it can finish"
                            .into(),
                    ));
                }
            }
        } else {
            self.vacuum_since = None;
        }
        if let Some(query) = &o.throttle_query {
            match probe(client, query).await {
                Ok(true) => return Ok(Verdict::Pause("the --throttle-query returned true".into())),
                Ok(false) => {}
                Err(reason) => {
                    return Ok(Verdict::Pause(format!(
                        "the --throttle-query failed: {reason}"
                    )))
                }
            }
        }
        let previous = self.last_wal.replace((now, wal));
        if let (Some(max), Some((then, before))) = (o.max_wal_rate, previous) {
            let secs = now.duration_since(then).as_secs_f64();
            let written = (wal - before).max(0) as f64;
            if secs > 0.0 && written / secs > max as f64 {
                // Sleep long enough that the average over the interval comes back to the limit.
                let wait = Duration::from_secs_f64(written / max as f64 - secs);
                return Ok(Verdict::Slow(
                    wait,
                    format!(
                        "WAL written at {}/s (limit {}/s)",
                        bytes_text((written / secs) as i64),
                        bytes_text(max as i64)
                    ),
                ));
            }
        }
        Ok(Verdict::Go)
    }
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
