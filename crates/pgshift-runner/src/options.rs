//! How the runner behaves; every field has a safe default and is settable from
//! `pgshift.toml` (`[run]`) and from flags.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunOptions {
    /// `lock_timeout` for every statement, set with `SET LOCAL` inside each transaction: the
    /// longest the application's queries can queue behind a DDL statement waiting for its lock.
    #[serde(with = "millis")]
    pub lock_timeout: Duration,
    /// `statement_timeout` for every statement except `CREATE INDEX CONCURRENTLY` and
    /// `VALIDATE`, which may legitimately run long (see `long_statement_timeout`).
    #[serde(with = "millis")]
    pub statement_timeout: Duration,
    /// `statement_timeout` for statements that build or scan without blocking writes.
    #[serde(with = "millis")]
    pub long_statement_timeout: Duration,
    /// Total time spent retrying a unit that hit `lock_timeout` (SQLSTATE 55P03) before giving up.
    #[serde(with = "millis")]
    pub lock_retry_budget: Duration,
    /// First backoff after a lock timeout; doubles each attempt, with jitter, up to `lock_retry_max_delay`.
    #[serde(with = "millis")]
    pub lock_retry_initial_delay: Duration,
    #[serde(with = "millis")]
    pub lock_retry_max_delay: Duration,
    /// How long to wait for another pgshift runner that holds the migration lock.
    #[serde(with = "millis")]
    pub runner_lock_wait: Duration,
    /// `lock_timeout` for statements that take no lock blocking reads or writes but wait for
    /// other transactions as part of their work: `CREATE INDEX CONCURRENTLY` (which waits for
    /// every transaction with an older snapshot), `REINDEX CONCURRENTLY`, `DROP INDEX
    /// CONCURRENTLY` and `VALIDATE CONSTRAINT`. Longer than `lock_timeout` because their
    /// queueing hurts no application query; bounded so that an idle-in-transaction session
    /// surfaces as a retry message instead of a silent hang. `0`: wait without limit.
    #[serde(with = "millis")]
    pub concurrent_lock_timeout: Duration,
    /// Run the statements exactly as written: no automatic safe rewrites (`--exact`).
    pub exact: bool,
    /// The lock-queue guard: before a unit that needs a lock blocking reads or writes, wait
    /// up to this long for sessions holding a conflicting lock on its tables to finish, rather
    /// than queueing behind them (and making every query that arrives after us queue too).
    /// After that, the unit runs with the normal `lock_timeout` and retry. `0` turns the guard off.
    #[serde(with = "millis")]
    pub guard_max_wait: Duration,
    /// Sessions running a query in a transaction younger than this are not waited for: they
    /// are ordinary short queries that will be done well within `lock_timeout`. (A session
    /// idle in its transaction is always waited for.)
    #[serde(with = "millis")]
    pub guard_ignore_younger_than: Duration,
    /// Also wait for any transaction in this database open longer than this, even one that
    /// holds no lock on the tables (it may take one at any moment). `0` (default): off.
    #[serde(with = "millis")]
    pub guard_long_transaction: Duration,
    /// After waiting this long, end the sessions in the way: `pg_cancel_backend` for one
    /// running a query, `pg_terminate_backend` for one idle in a transaction (a cancel does
    /// nothing to those). `0` (default): never.
    #[serde(with = "millis")]
    pub guard_cancel_after: Duration,
    /// What `DROP TABLE` / `ALTER TABLE ... DROP COLUMN` on an existing table does; see
    /// [`OnDrop`].
    pub on_drop: OnDrop,
    /// Batches of an `UPDATE` marked `-- pgshift:backfill` aim at this duration (their rows
    /// stay locked that long).
    #[serde(with = "millis")]
    pub backfill_batch_time: Duration,
    /// `lock_timeout` of each backfill batch: how long it waits for a row the application
    /// holds before it is retried smaller.
    #[serde(with = "millis")]
    pub backfill_lock_timeout: Duration,
    /// Share of the time a backfill spends in batches while other sessions are at work
    /// ([`crate::backfill::busy`]), from 0.01 to 1; 1: full speed whatever the application
    /// does.
    #[serde(deserialize_with = "when_busy")]
    pub backfill_when_busy: f64,
    /// Where `on_drop = "pg_dump"` writes its dump files (created when missing).
    pub pg_dump_dir: PathBuf,
    /// A migration the safe rewrites split runs as written instead, in one transaction, when
    /// its locks are free at once and its relations hold at most 1 MB in all
    /// ([`crate::small_tables`]). Off: the rewritten form always runs.
    pub small_tables_as_written: bool,
    /// Plan migrations that would break running code as online (expand/contract) changes.
    /// Off: every migration runs as written (with the safe rewrites), as before.
    pub online: bool,
    /// `up` contracts an online change right after its expand (`--complete`): for deploys
    /// where old and new code never run at once (a single instance, CI). Off by default:
    /// `up` expands and stops, and `pgshift complete` contracts after the deploy.
    pub online_complete: bool,
    /// Treat the tables this run made as tables code uses: an online change runs as one even
    /// when every table it changes was made by this run, and the safe rewrites apply to them
    /// (`verify` and `trace`, which prove what `up` runs against tables in use). Otherwise
    /// such a migration, and such a statement, runs as written: no code used those tables
    /// before the run. Not a setting.
    #[serde(skip)]
    pub new_tables_as_in_use: bool,
    /// `pgshift start`: a migration that would break running code but cannot be planned as an
    /// online change is refused instead of run as written. Not a setting.
    #[serde(skip)]
    pub online_required: bool,
    /// Let an online type change through although converting sampled values to the new type
    /// and back does not give them back (`--allow-lossy`).
    pub online_allow_lossy: bool,
    /// During a gradual switch from another tool: also record each migration pgshift applies
    /// (and remove each it reverts) in that tool's own history table, in its own format, so
    /// that the old tool run afterwards does not apply it again. Off by default; written only
    /// when the table of the migrations' own format exists and pgshift knows how that tool
    /// writes it (`HistoryTable::record` in its format descriptor).
    pub record_in_old_tool: bool,
}

/// How destructive steps are made recoverable (`[run] on_drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDrop {
    /// Drop as written.
    #[default]
    Drop,
    /// Rename the table or column to `<name>_deprecated_<YYYYMMDD>` instead of dropping it.
    Deprecate,
    /// Copy the table (or the column with the primary key) to `_backup_<table>_<YYYYMMDD>`
    /// in the same transaction, then drop.
    Backup,
    /// Run `pg_dump -t` of the affected tables into `pg_dump_dir` before the migration.
    PgDump,
}

impl OnDrop {
    /// Reads `drop`, `deprecate`, `backup` or `pg_dump` (also `pg-dump`).
    pub fn parse(text: &str) -> Result<OnDrop, String> {
        match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "drop" => Ok(OnDrop::Drop),
            "deprecate" => Ok(OnDrop::Deprecate),
            "backup" => Ok(OnDrop::Backup),
            "pg_dump" => Ok(OnDrop::PgDump),
            _ => Err(format!(
                "`{text}` is not an on_drop mode; use drop, deprecate, backup or pg_dump"
            )),
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            lock_timeout: Duration::from_millis(500),
            statement_timeout: Duration::from_secs(3600),
            long_statement_timeout: Duration::from_secs(0),
            lock_retry_budget: Duration::from_secs(300),
            lock_retry_initial_delay: Duration::from_millis(200),
            lock_retry_max_delay: Duration::from_secs(10),
            runner_lock_wait: Duration::from_secs(600),
            concurrent_lock_timeout: Duration::from_secs(60),
            exact: false,
            guard_max_wait: Duration::from_secs(60),
            guard_ignore_younger_than: Duration::from_millis(100),
            guard_long_transaction: Duration::ZERO,
            guard_cancel_after: Duration::ZERO,
            on_drop: OnDrop::Drop,
            pg_dump_dir: PathBuf::from("pgshift-backups"),
            small_tables_as_written: true,
            backfill_batch_time: Duration::from_millis(200),
            backfill_lock_timeout: Duration::from_millis(100),
            backfill_when_busy: crate::backfill::BusyOptions::default().duty,
            online: true,
            online_complete: false,
            new_tables_as_in_use: false,
            online_allow_lossy: false,
            online_required: false,
            record_in_old_tool: false,
        }
    }
}

impl RunOptions {
    /// How a backfill marked in a migration runs.
    pub fn backfill_options(&self) -> crate::backfill::BackfillOptions {
        crate::backfill::BackfillOptions {
            target_batch: self.backfill_batch_time,
            lock_timeout: self.backfill_lock_timeout,
            when_busy: Some(crate::backfill::BusyOptions {
                duty: self.backfill_when_busy,
                ..crate::backfill::BusyOptions::default()
            }),
            ..crate::backfill::BackfillOptions::default()
        }
    }
}

/// `backfill_when_busy`: a fraction from 0.01 to 1 (an integer 1 too).
fn when_busy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = <f64 as serde::Deserialize>::deserialize(d)?;
    if (0.01..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "backfill_when_busy = {v}: give a fraction from 0.01 to 1 (1: full speed whatever the application does)"
        )))
    }
}

mod millis {
    //! Durations in the config file are written as `"500ms"`, `"5s"`, `"2m"`, `"1h"` or a
    //! number of milliseconds; `0` means no limit (PostgreSQL's meaning of a zero timeout).
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(ms) => Ok(Duration::from_millis(ms)),
            Raw::Text(text) => super::parse_duration(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `500ms`, `5s`, `2m`, `1h`, or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 500ms, 5s, 2m or 1h"))?;
    let ms = match unit.trim() {
        "" | "ms" => value,
        "s" => value * 1000.0,
        "m" | "min" => value * 60_000.0,
        "h" => value * 3_600_000.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ms, s, m or h"
            ))
        }
    };
    if !ms.is_finite() || ms < 0.0 {
        return Err(format!("`{text}` is not a valid duration"));
    }
    Ok(Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn config_table_reads_durations() {
        let opts: RunOptions =
            toml::from_str("lock_timeout = \"2s\"\nlock_retry_budget = 60000").expect("parse");
        assert_eq!(opts.lock_timeout, Duration::from_secs(2));
        assert_eq!(opts.lock_retry_budget, Duration::from_secs(60));
        assert_eq!(
            opts.statement_timeout,
            RunOptions::default().statement_timeout
        );
    }

    #[test]
    fn safety_settings_read_from_the_config_table() {
        let opts: RunOptions = toml::from_str(
            "exact = true\non_drop = \"pg_dump\"\nguard_max_wait = \"0\"\nguard_cancel_after = \"30s\"",
        )
        .expect("parse");
        assert!(opts.exact);
        assert_eq!(opts.on_drop, OnDrop::PgDump);
        assert_eq!(opts.guard_max_wait, Duration::ZERO);
        assert_eq!(opts.guard_cancel_after, Duration::from_secs(30));
        assert!(toml::from_str::<RunOptions>("on_drop = \"shred\"").is_err());
        assert_eq!(OnDrop::parse("pg-dump"), Ok(OnDrop::PgDump));
        assert!(OnDrop::parse("keep").is_err());
    }
}
