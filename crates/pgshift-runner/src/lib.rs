//! The runner: applies and reverts migrations against one database, safely.
//!
//! - [`Migrator`] holds a connection and a [`pgshift_source::MigrationSet`] and implements
//!   `up`, `down`, `redo`, `status`, `baseline`, `restamp` and `resolve`; applying and
//!   reverting are one loop over the units.
//! - [`prepare`] reads a script once into steps with their facts; the executor (`executor.rs`)
//!   runs a unit of them, with `trace`'s tracer watching as a hook.
//! - [`inflight`] tells, after pgshift died during a statement that runs outside any
//!   transaction, whether it landed.
//! - [`units`] turns a migration's statements into units that commit on their own (one
//!   transaction by default; statement by statement when it cannot run in a transaction).
//! - [`history`] is the `pgshift.migrations` table; [`adopt`] reads other tools' history
//!   tables so adopting pgshift never re-runs history.
//! - Safe execution: [`safe`] applies pgshift-lint's mechanical rewrites to the units
//!   (CONCURRENTLY, NOT VALID + VALIDATE, ...), [`small_tables`] runs a migration they split
//!   as written instead when its tables are small and free, [`guard`] waits for sessions that would make a
//!   DDL statement queue in front of the application's queries, [`backup`] makes destructive
//!   steps recoverable (`on_drop`).
//! - [`backfill`] runs an `UPDATE` over a large table in short, throttled, resumable
//!   batches, and proves the end.
//! - [`online`] runs a migration whose statements would break running code as an
//!   expand/contract change: `start` (or `up`) expands, `complete` contracts, `rollback`
//!   undoes the expand.
//! - [`plan`] predicts, against the live database, what each pending statement will lock and
//!   for how long; [`verify`] proves a set up → down → up on a throwaway cluster; [`trace`]
//!   records the locks statements really take.
//!
//! Architecture invariants: the runner reads a migration's SQL in one place, [`prepare`],
//! which turns it into steps carrying their facts; everything downstream (the one executor
//! `up`, `down` and `trace` share, the guard, `on_drop`, `plan`) reads those facts and never
//! parses or looks at a parse tree again (`crates/pgshift/tests/architecture.rs`). It never
//! finds files (that is `pgshift-source`); it decides *how* statements run.

pub mod adopt;
pub mod backfill;
pub mod backup;
pub mod error;
pub mod event;
pub(crate) mod executor;
mod existing_rows;
pub mod guard;
pub(crate) mod handoff;
pub mod history;
pub mod inflight;
pub mod migrator;
pub(crate) mod old_tool;
pub mod online;
pub mod options;
pub mod plan;
pub mod prepare;
pub(crate) mod progress;
pub mod report;
pub mod safe;
pub mod small_tables;
pub mod trace;
pub mod units;
pub mod verify;

pub use error::{HistoryPermission, Result, RunError, StatementError};
pub use event::{Event, Observer, Silent};
pub use migrator::{
    DownTarget, EntryState, Migrator, Resolution, Status, StatusEntry, RUNNER_LOCK_KEY,
};
pub use options::{parse_duration, OnDrop, RunOptions};
