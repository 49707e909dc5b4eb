//! Batched, throttled, resumable data backfills: `UPDATE t SET ... [WHERE ...]` run over a
//! large table in short transactions that the application does not feel.
//!
//! - [`spec`]: what to backfill, read once from flags or from an `UPDATE` in a migration.
//! - [`partitions`]: a partitioned table walked leaf by leaf, several at once.
//! - [`walk`]: the order of the walk: keyset ranges over the primary key (or a unique index on
//!   NOT NULL columns), TID ranges when there is neither (PostgreSQL 14+).
//! - [`sizing`]: batches sized to a target duration, halved at once on a lock conflict.
//! - [`busy`]: short batches and mostly rest while other sessions are at work.
//! - [`throttle`]: replica lag, WAL held by slots, WAL rate, the archiver, a vacuum against
//!   wraparound, the user's probe.
//! - `statements`: the batch, locate, count and checkpoint statements, put together and
//!   prepared once.
//! - [`state`]: `pgshift.backfills`, the checkpoint written in each batch's transaction, and
//!   the pause switch other machines set.
//! - [`mode`]: whether a row that still needs the update can be told from the row: not when
//!   the SET reads a column it writes, calls something volatile or reads the clock.
//! - `run`: the loop: per batch one transaction with `SET LOCAL lock_timeout` and
//!   `statement_timeout`, the UPDATE restricted to the batch's key range and to rows that
//!   still need it (`(col) IS DISTINCT FROM (expr)`), and the checkpoint. Then the end is
//!   proved by counting what still needs the update; another pass runs if rows remain
//!   (inserted behind the walk or changed back), and the backfill fails with the count after
//!   `max_passes`. A backfill that cannot tell ([`Mode::Once`]) walks once, restricted only
//!   by the user's WHERE, and is not proved; it needs a key walk (keys do not move, positions
//!   do) that does not assign the key.
//!
//! Why "still needs it" matters: a row the application changed after the batch read it is
//! re-evaluated on its latest version (READ COMMITTED's recheck of the locked row), so a
//! concurrent write is never overwritten with a value computed from stale data, and a rerun
//! touches only what is left.

pub mod busy;
pub mod mode;
pub mod partitions;
mod run;
pub mod sizing;
pub mod spec;
pub mod state;
mod statements;
pub mod throttle;
pub mod walk;

use std::time::Duration;

use pgshift_db::{DbError, QueryError};
use pgshift_sql::NotBatchable;

pub use busy::BusyOptions;
pub use mode::Mode;
pub use run::{dry_run, Estimate, Outcome, Phase, Progress};
pub use spec::BackfillSpec;
pub use state::BackfillState;
pub use throttle::ThrottleOptions;

/// A backfill ready to run: what, and how.
#[derive(Debug, Clone)]
pub struct Backfill {
    pub spec: BackfillSpec,
    pub options: BackfillOptions,
}

/// How a backfill runs; every field has a default that suits an OLTP database.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// How long one batch should take. Its rows stay locked until it commits, so this is
    /// also about the longest an application write to one of them waits.
    pub target_batch: Duration,
    pub initial_batch: u64,
    pub min_batch: u64,
    pub max_batch: u64,
    /// `SET LOCAL lock_timeout` of each batch: how long it waits for a row the application
    /// holds before it is rolled back and retried smaller.
    pub lock_timeout: Duration,
    /// `SET LOCAL statement_timeout` of each batch statement.
    pub statement_timeout: Duration,
    /// Share of the time spent in batches; below 1 the backfill rests between batches
    /// (`batch time × (1/duty − 1)`).
    pub duty: f64,
    /// How it runs while other sessions are at work ([`busy`]): shorter batches, more rest.
    /// `None`: as when nobody else is active.
    pub when_busy: Option<BusyOptions>,
    /// Rows per second at most.
    pub max_rows_per_second: Option<u64>,
    /// Walks of the table before giving up on rows that keep needing the update.
    pub max_passes: u32,
    /// Start over even if a run with the same definition stopped partway or finished.
    pub restart: bool,
    /// A backfill recorded as finished runs again from the start instead of being skipped: a
    /// migration's backfill that runs again was reverted in between (`down`, `redo`), so its
    /// old end says nothing about the rows now.
    pub restart_if_done: bool,
    /// The backfill is left unfinished in `pgshift.backfills` when its walk ends; the caller
    /// records it done ([`state::mark_done`]) in the transaction that records its own step.
    /// Otherwise a crash between the two would leave the backfill done and the step not, and
    /// the step, run again, would start the backfill over (`restart_if_done`): harmless for
    /// rows that are skipped once done, but a backfill that runs once would update them all
    /// again. Left unfinished, it resumes at its end and updates nothing.
    pub caller_marks_done: bool,
    /// Leaf partitions of a partitioned table walked at once, each on a session of its own
    /// ([`partitions`]).
    pub partitions_at_once: usize,
    pub throttle: ThrottleOptions,
}

impl Default for BackfillOptions {
    fn default() -> BackfillOptions {
        BackfillOptions {
            target_batch: Duration::from_millis(200),
            initial_batch: 1000,
            min_batch: 100,
            max_batch: 100_000,
            lock_timeout: Duration::from_millis(100),
            statement_timeout: Duration::from_secs(30),
            duty: 1.0,
            when_busy: Some(BusyOptions::default()),
            max_rows_per_second: None,
            max_passes: 3,
            restart: false,
            restart_if_done: false,
            caller_marks_done: false,
            partitions_at_once: 2,
            throttle: ThrottleOptions::default(),
        }
    }
}

/// Why a backfill did not start or did not finish. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Db(#[from] DbError),

    #[error("the backfill is not valid SQL: {message}\n  statement: {statement}")]
    Syntax { statement: String, message: String },

    #[error("this UPDATE cannot run as a backfill: {reason}")]
    NotBatchable { reason: NotBatchable },

    #[error("`{name}` is not a usable backfill name: use letters, digits, '-', '_', '.' or ':' (at most 100)")]
    BadName { name: String },

    #[error("table {table} does not exist (or is not a table); nothing was changed")]
    NoTable { table: String },

    #[error("column {column} does not exist in table {table}; nothing was changed")]
    NoColumn { table: String, column: String },

    #[error("table {table} cannot be backfilled in batches: {why}; nothing was changed")]
    NoKey { table: String, why: String },

    #[error("table {table} has no primary key or unique index on NOT NULL columns, so the backfill would walk it by physical position, and this one must update each row exactly once: it runs once, because {why}. A row updated by one batch moves to a new position, possibly ahead of the walk, where a later batch would update it again. Nothing was changed. Add a primary key (or a unique index on NOT NULL columns) and run it again, or write the SET so that running it twice gives what running it once does (e.g. write into a new column: SET amount_cents = amount * 100).")]
    OnceNeedsKey { table: String, why: String },

    #[error("this backfill assigns {column}, a column of the key that orders its walk ({walk}), and it must update each row exactly once: it runs once, because {why}. A row whose key moves ahead of the walk would be updated again. Nothing was changed. Change the key in a statement of its own (not a backfill), or write the new values into a new column.")]
    OnceAssignsKey {
        column: String,
        walk: String,
        why: String,
    },

    #[error("backfill {id} was walked {passes} times by an earlier pgshift, but it must update each row exactly once: it runs once, because {why}. Rows may already have been updated more than once. Nothing was changed. Check the table's data and repair it; then --restart runs the backfill again over every row in scope, or name a backfill with --name and a --where for the rows still to do.")]
    WalkedBefore {
        id: String,
        passes: i32,
        why: String,
    },

    #[error("pgshift.backfills was created by an older pgshift and lacks a column this one records (runs_once), which only its owner may add: as {owner} (or a superuser), run `{sql};`. Nothing was changed.")]
    StateUpgrade { owner: String, sql: String },

    #[error("the backfill of {table} does not run: {server}\n  statement: {statement}\n  Nothing was changed. Fix the SET expressions or the WHERE condition.")]
    Invalid {
        table: String,
        statement: String,
        server: Box<QueryError>,
    },

    #[error("the --throttle-query `{query}` is unusable: {reason}; nothing was changed")]
    ThrottleQuery { query: String, reason: String },

    #[error("backfill {id} is already running{}: one runner per backfill. `pgshift backfill status` shows its progress; `pgshift backfill --pause {id}` pauses it", match (owner, pid) { (Some(o), p) => format!(" in {o} (server pid {p})"), (None, p) => format!(" (server pid {p})") })]
    Running {
        id: String,
        owner: Option<String>,
        pid: i32,
    },

    #[error("backfill {id} was started with another statement:\n    {recorded}\n  this run has:\n    {current}\n  Rerun the first, or pass --restart to start over with this one (rows it already updated stay updated), or name this one differently with --name.")]
    Changed {
        id: String,
        recorded: String,
        current: String,
    },

    #[error("table {table} was rewritten while backfill {id} walked it by physical position (VACUUM FULL, CLUSTER or pg_repack): the saved position means nothing now. Run it again with --restart; rows already done are skipped cheaply.")]
    Rewritten { id: String, table: String },

    #[error("backfill {id} failed on the rows with {range}: {server}\n  The batch was rolled back; {rows_done} rows done before it stay done. Fix the expression or those rows and run the same command again to resume.")]
    Batch {
        id: String,
        range: String,
        rows_done: u64,
        server: Box<QueryError>,
    },

    #[error("backfill {id} walked {table} {passes} times and {remaining} rows still need the update{}. Something keeps writing the old way (old application code, a trigger) — find it, then run the same command again.", if *null_results > 0 { format!(" ({null_results} rows in scope get NULL from the SET expressions)") } else { String::new() })]
    Unproved {
        id: String,
        table: String,
        passes: u32,
        remaining: u64,
        null_results: u64,
    },

    #[error(
        "no backfill named {id} is recorded in this database; `pgshift backfill status` lists them"
    )]
    Unknown { id: String },
}
