//! What can stop a run, each with the file, the line and what to do.

use std::path::PathBuf;

use pgshift_db::DbError;
use pgshift_source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Db(#[from] DbError),

    #[error(transparent)]
    Source(#[from] SourceError),

    /// An `UPDATE` marked `-- pgshift:backfill` stopped or was refused.
    #[error("{}:{line}: migration {version}: {error}\n  Batches already committed stay done; `pgshift up` resumes the backfill where it stopped.", path.display())]
    Backfill {
        version: String,
        path: PathBuf,
        line: usize,
        error: Box<crate::backfill::BackfillError>,
    },

    /// The file does not parse; nothing was run.
    #[error("{}:{line}:{column}: syntax error: {message}\n  migration {version} was not run, and nothing after it. Fix the SQL and run the command again.", path.display())]
    Syntax {
        version: String,
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    /// The server rejected a statement. Boxed: it is the largest variant by far.
    #[error(transparent)]
    Statement(Box<StatementError>),

    /// An applied migration's file changed since it was applied.
    #[error("{}: migration {version} was applied with checksum {applied} but the file now has checksum {current}.\n  Applied migrations must not change. If the edit is cosmetic (whitespace, comments) and the schema is already right, record the new checksum with `pgshift restamp {version}`; otherwise revert the edit and write a new migration.", path.display())]
    Drift {
        version: String,
        path: PathBuf,
        applied: String,
        current: String,
    },

    /// A version given on the command line is not in the directory or the history.
    #[error("no migration with version {version} in {} or in the history; `pgshift status` lists them", dir.display())]
    UnknownVersion { version: String, dir: PathBuf },

    /// A revert was asked for a migration that has no down part anywhere.
    #[error("migration {version} ({name}) is forward-only: it has no down file and no down SQL was recorded when it was applied. Nothing was reverted. Write a new migration that undoes it instead.")]
    NoDown { version: String, name: String },

    /// An applied migration is gone from disk and its down SQL was not recorded.
    #[error("migration {version} is applied but not on disk, and no down SQL was recorded for it. Nothing was reverted.")]
    MissingDown { version: String },

    /// A migration is half reverted; the next step must be chosen.
    #[error("migration {version} ({name}) was being reverted when the last run stopped ({done} of {total} steps reverted). Run `pgshift down` to finish reverting it before applying migrations.")]
    HalfReverted {
        version: String,
        name: String,
        done: i32,
        total: i32,
    },

    /// A partially applied migration whose steps already done are no longer the first steps
    /// of its file, so its progress cannot be trusted.
    #[error("{}: migration {version} stopped after {done} of {total} steps in an earlier run, but the steps already done (or the one in flight) are no longer the first steps of the file: resuming could skip or repeat work. Restore those statements as they were (later ones may change) and run `pgshift up` to resume; or finish the migration by hand and record it with `pgshift resolve {version} --finished`.", path.display())]
    ResumeMismatch {
        version: String,
        path: PathBuf,
        done: i32,
        total: i32,
    },

    /// A half-finished revert whose steps already done are no longer the first steps of its
    /// down: which of them ran can no longer be told.
    #[error("{}: the revert of migration {version} stopped after {done} of {total} steps in an earlier run, but the steps already done (or the one in flight) are no longer the first steps of its down. Starting over could repeat work and resuming could skip some. Restore those statements as they were and run `pgshift down` again; or finish the revert by hand and record it with `pgshift resolve {version} --finished`.", path.display())]
    RevertMismatch {
        version: String,
        path: PathBuf,
        done: i32,
        total: i32,
    },

    /// A statement run outside any transaction was in flight when the last run stopped, and
    /// the catalog cannot tell whether it completed. Boxed: it is large.
    #[error(transparent)]
    InFlightUnknown(Box<InFlightUnknown>),

    /// Another runner holds the lock for longer than we are willing to wait.
    #[error("another pgshift runner has held the migration lock on this database for {waited_secs} s (pid {holder}); gave up waiting. If no runner is active, that session is stuck: end it with `SELECT pg_terminate_backend({holder})`.")]
    LockWait { waited_secs: u64, holder: String },

    /// Retried lock timeouts used up the whole budget.
    #[error("migration {version} ({name}): could not get the locks it needs within the retry budget ({attempts} attempts over {waited_secs} s; lock_timeout {lock_timeout_ms} ms each). The sessions in its way: {blockers}. Nothing of this attempt was kept. Try again at a quieter time, or raise `--lock-retry-budget`.")]
    LockBudget {
        version: String,
        name: String,
        attempts: u32,
        waited_secs: u64,
        lock_timeout_ms: u64,
        blockers: String,
    },

    /// `on_drop` could not make a destructive step recoverable; nothing of the migration ran.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),

    /// The role may not create pgshift's schema or history table. Boxed: it is large.
    #[error(transparent)]
    HistoryPermission(Box<HistoryPermission>),

    /// A command that needs an argument it did not get, or got a contradictory one.
    #[error("{0}")]
    Usage(String),

    /// A migration that would be an online change, but cannot be planned as one: it runs as
    /// written instead (the planner turns this into [`crate::online::Planned::AsWritten`]).
    #[error("{}:{line}: migration {version} cannot run as an online change: {reason}", path.display())]
    NotOnline {
        version: String,
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

pub type Result<T, E = RunError> = std::result::Result<T, E>;

/// A statement the server rejected, located in its file.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {message}\n  migration {version} ({name}) failed with SQLSTATE {sqlstate}{}{}{}\n  {outcome}", path.display(),
    detail.as_deref().map(|d| format!("\n  detail: {d}")).unwrap_or_default(),
    hint.as_deref().map(|h| format!("\n  hint: {h}")).unwrap_or_default(),
    rewrite.as_deref().map(|r| format!("\n  while running pgshift's safe rewrite: {r}")).unwrap_or_default())]
pub struct StatementError {
    pub version: String,
    pub name: String,
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The purpose of the rewritten step that failed, when it was one.
    pub rewrite: Option<String>,
    /// What state the database was left in.
    pub outcome: String,
}

/// The server refused to let pgshift create what it keeps its history in (SQLSTATE 42501):
/// says what that was, for which role in which database, and the statement that fixes it.
#[derive(Debug, thiserror::Error)]
#[error("pgshift could not create {creating}: {server} (database {database}, role {role}).\n  Nothing was created and no migration ran. To fix it, {fix}")]
pub struct HistoryPermission {
    /// What was being created, e.g. "its schema (`CREATE SCHEMA pgshift`)".
    pub creating: String,
    /// `current_database()`.
    pub database: String,
    /// `current_user`.
    pub role: String,
    /// The server's message, e.g. "permission denied for database app".
    pub server: String,
    /// The statement(s) that grant what is missing, naming this database and role.
    pub fix: String,
}

/// A statement run outside any transaction was in flight when the last run stopped, and the
/// catalog cannot tell whether it completed: the user decides with `pgshift resolve`.
#[derive(Debug, thiserror::Error)]
#[error("{}: migration {version} ({name}): step {step} of {total}, `{sql}`, runs outside a transaction and was still running when the last run stopped; {why}. Nothing was run. Look at the database, then record what happened: `pgshift resolve {version} --step {step} --done` if it completed, or `pgshift resolve {version} --step {step} --redo` to run it again.", path.display())]
pub struct InFlightUnknown {
    pub version: String,
    pub name: String,
    pub path: PathBuf,
    pub step: usize,
    pub total: i32,
    pub sql: String,
    pub why: String,
}
