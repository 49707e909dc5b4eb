//! `pgshift.backfills`: one row per backfill, written in the same transaction as each batch,
//! so the row always says exactly which keys are done. It is also how machines talk to a
//! running backfill: `--pause` sets `pause_requested`, which the runner reads at its next
//! checkpoint, and `status` reads what the runner last wrote.

use pgshift_db::DbError;
use tokio_postgres::Client;

use super::BackfillError;

const CREATE: &str = "
CREATE SCHEMA IF NOT EXISTS pgshift;
CREATE TABLE IF NOT EXISTS pgshift.backfills (
    id text PRIMARY KEY,
    table_name text NOT NULL,
    -- The UPDATE as written; a resumed backfill must be the same one.
    statement text NOT NULL,
    -- 'key (a, b)' or 'ctid'.
    walk text NOT NULL,
    -- The walk's bounds, fixed when a pass starts, and the last key (or next page) done,
    -- each as the key columns' text forms.
    lower_bound text[],
    upper_bound text[],
    cursor text[],
    -- The table's file node when a ctid walk started: a rewrite invalidates positions.
    relfilenode oid,
    -- Why it runs once over the rows in scope (its SET reads a column it writes, calls
    -- something volatile, reads the clock); NULL when it updates what still needs it.
    runs_once text,
    pass integer NOT NULL DEFAULT 1,
    rows_done bigint NOT NULL DEFAULT 0,
    batches bigint NOT NULL DEFAULT 0,
    batch_size bigint NOT NULL DEFAULT 0,
    estimate bigint,
    progress real,
    rows_per_second real,
    -- running | paused | throttled | proving | done | failed
    status text NOT NULL,
    pause_requested boolean NOT NULL DEFAULT false,
    throttle_reason text,
    last_error text,
    -- host and process of the pgshift that runs it, and its server session.
    owner text,
    owner_pid integer,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat timestamptz,
    finished_at timestamptz
);";

/// Columns added after the table's first release, for a table an older pgshift created.
const UPGRADE: &str = "ALTER TABLE pgshift.backfills ADD COLUMN IF NOT EXISTS runs_once text";

async fn exists(client: &Client) -> Result<bool, DbError> {
    Ok(client
        .query_one("SELECT to_regclass('pgshift.backfills') IS NOT NULL", &[])
        .await?
        .get(0))
}

pub async fn ensure(client: &Client) -> Result<(), BackfillError> {
    // Skip the DDL (and its catalog locks) when the table is there and current: this runs on
    // every start.
    let row = client
        .query_one(
            "SELECT to_regclass('pgshift.backfills') IS NOT NULL,
                    EXISTS (SELECT 1 FROM pg_attribute
                             WHERE attrelid = to_regclass('pgshift.backfills')
                               AND attname = 'runs_once' AND NOT attisdropped),
                    (SELECT pg_get_userbyid(relowner)::text FROM pg_class
                      WHERE oid = to_regclass('pgshift.backfills'))",
            &[],
        )
        .await
        .map_err(DbError::from)?;
    let (table, current): (bool, bool) = (row.get(0), row.get(1));
    if !table {
        // The schema usually exists (the history is in it): no notice saying so.
        client
            .batch_execute(&format!(
                "SET client_min_messages = warning; {CREATE} RESET client_min_messages;"
            ))
            .await
            .map_err(DbError::from)?;
    } else if !current {
        if let Err(err) = client.batch_execute(UPGRADE).await {
            let err = DbError::from(err);
            // Only the table's owner may add a column.
            if err.as_query_error().is_some_and(|e| e.code == "42501") {
                return Err(BackfillError::StateUpgrade {
                    owner: row.get::<_, Option<String>>(2).unwrap_or_default(),
                    sql: UPGRADE.to_owned(),
                });
            }
            return Err(err.into());
        }
    }
    Ok(())
}

/// What `status` shows about one backfill.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackfillState {
    pub id: String,
    pub table: String,
    pub statement: String,
    pub walk: String,
    pub status: String,
    pub pass: i32,
    pub rows_done: i64,
    pub batches: i64,
    pub batch_size: i64,
    /// Rows the planner expected to need the update when the backfill started.
    pub estimate: Option<i64>,
    /// Share of the walk done, 0 to 1.
    pub progress: Option<f32>,
    pub rows_per_second: Option<f32>,
    pub pause_requested: bool,
    pub throttle_reason: Option<String>,
    pub last_error: Option<String>,
    pub owner: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    pub heartbeat: Option<String>,
    pub finished_at: Option<String>,
    /// Whether a pgshift session is working on it now (it holds the backfill's lock).
    pub active: bool,
    /// Why it runs once over the rows in scope instead of until no row still needs it.
    pub runs_once: Option<String>,
}

/// The row's columns that `resume` needs.
#[derive(Debug, Clone)]
pub struct Saved {
    pub statement: String,
    pub status: String,
    pub lower_bound: Option<Vec<String>>,
    pub upper_bound: Option<Vec<String>>,
    pub cursor: Option<Vec<String>>,
    pub relfilenode: Option<u32>,
    pub pass: i32,
    pub rows_done: i64,
    pub batches: i64,
    pub batch_size: i64,
    pub estimate: Option<i64>,
}

pub async fn load(client: &Client, id: &str) -> Result<Option<Saved>, DbError> {
    let row = client
        .query_opt(
            "SELECT statement, status, lower_bound, upper_bound, cursor, relfilenode, pass,
                    rows_done, batches, batch_size, estimate
               FROM pgshift.backfills WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(row.map(|r| Saved {
        statement: r.get(0),
        status: r.get(1),
        lower_bound: r.get(2),
        upper_bound: r.get(3),
        cursor: r.get(4),
        relfilenode: r.get(5),
        pass: r.get(6),
        rows_done: r.get(7),
        batches: r.get(8),
        batch_size: r.get(9),
        estimate: r.get(10),
    }))
}

/// Every backfill recorded, newest first; empty when none ever ran here.
pub async fn list(client: &Client) -> Result<Vec<BackfillState>, DbError> {
    if !exists(client).await? {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT b.id, b.table_name, b.statement, b.walk, b.status, b.pass, b.rows_done,
                    b.batches, b.batch_size, b.estimate, b.progress, b.rows_per_second,
                    b.pause_requested, b.throttle_reason, b.last_error, b.owner,
                    to_char(b.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    to_char(b.heartbeat AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    to_char(b.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    EXISTS (SELECT 1 FROM pg_locks l
                             WHERE l.locktype = 'advisory' AND l.granted
                               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                               AND l.classid = $1::int::oid
                               AND l.objid = hashtext(b.id)::oid AND l.objsubid = 2),
                    -- Read through the row's JSON: a table an older pgshift created lacks
                    -- the column until the next run adds it.
                    to_jsonb(b) ->> 'runs_once'
               FROM pgshift.backfills b ORDER BY b.started_at DESC, b.id",
            &[&LOCK_CLASS],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| BackfillState {
            id: r.get(0),
            table: r.get(1),
            statement: r.get(2),
            walk: r.get(3),
            status: r.get(4),
            pass: r.get(5),
            rows_done: r.get(6),
            batches: r.get(7),
            batch_size: r.get(8),
            estimate: r.get(9),
            progress: r.get(10),
            rows_per_second: r.get(11),
            pause_requested: r.get(12),
            throttle_reason: r.get(13),
            last_error: r.get(14),
            owner: r.get(15),
            started_at: r.get(16),
            heartbeat: r.get(17),
            finished_at: r.get(18),
            active: r.get(19),
            runs_once: r.get(20),
        })
        .collect())
}

/// The first half of the advisory lock key a running backfill holds (`pg_advisory_lock(int,
/// int)`, second half `hashtext(id)`): one runner per backfill.
pub const LOCK_CLASS: i32 = 0x7067_6266; // "pgbf"

/// Takes the backfill's lock for this session; false when another session holds it.
pub async fn try_lock(client: &Client, id: &str) -> Result<bool, DbError> {
    Ok(client
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            &[&LOCK_CLASS, &id],
        )
        .await?
        .get(0))
}

pub async fn unlock(client: &Client, id: &str) -> Result<(), DbError> {
    client
        .query_one(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&LOCK_CLASS, &id],
        )
        .await?;
    Ok(())
}

/// Who holds the backfill's lock: its owner as recorded, and its server session.
pub async fn holder(client: &Client, id: &str) -> Result<Option<(Option<String>, i32)>, DbError> {
    let row = client
        .query_opt(
            "SELECT (SELECT owner FROM pgshift.backfills WHERE id = $2), l.pid
               FROM pg_locks l
              WHERE l.locktype = 'advisory' AND l.granted
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND l.classid = $1::int::oid AND l.objid = hashtext($2)::oid AND l.objsubid = 2
              LIMIT 1",
            &[&LOCK_CLASS, &id],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Records the backfill as finished (a partitioned table's with each of its leaves'). Run by the backfill itself, or by a caller that records
/// its own step in the same transaction (`BackfillOptions::caller_marks_done`).
pub async fn mark_done(client: &Client, id: &str) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE pgshift.backfills SET status = 'done', finished_at = now(),
                    heartbeat = now(), progress = 1, throttle_reason = NULL,
                    last_error = NULL WHERE id = $1 OR left(id, length($1) + 1) = $1 || ':'",
            &[&id],
        )
        .await?;
    Ok(())
}

/// Sets or clears `pause_requested` (of a partitioned table's backfill and each of its
/// leaves'); false when there is no such backfill.
pub async fn request_pause(client: &Client, id: &str, pause: bool) -> Result<bool, DbError> {
    if !exists(client).await? {
        return Ok(false);
    }
    let n = client
        .execute(
            "UPDATE pgshift.backfills SET pause_requested = $2
              WHERE id = $1 OR left(id, length($1) + 1) = $1 || ':'",
            &[&id, &pause],
        )
        .await?;
    Ok(n > 0)
}
