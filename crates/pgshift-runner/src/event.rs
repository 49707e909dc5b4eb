//! What the runner tells its caller as it works. The CLI renders these as log lines; an
//! application embedding pgshift can route them to its own logging.

use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Event {
    /// Another runner holds the migration lock; we wait.
    WaitingForRunnerLock { holder_pid: Option<i32> },
    /// Another tool's history was read and recorded.
    Adopted {
        tool: &'static str,
        table: &'static str,
        count: usize,
    },
    /// Out-of-order: a pending migration is older than one already applied.
    OutOfOrder {
        version: String,
        latest_applied: String,
    },
    /// Applied migrations that are not on disk any more.
    MissingFromDisk { versions: Vec<String> },
    /// A migration starts (or resumes at `resume_at`).
    Applying {
        version: String,
        name: String,
        units: usize,
        resume_at: usize,
        no_transaction: Option<String>,
    },
    /// A step that is not the statement as written is about to run.
    Rewrite {
        version: String,
        purpose: String,
        sql: String,
    },
    /// A server NOTICE or WARNING.
    Notice { severity: String, message: String },
    /// A unit hit `lock_timeout`; it was rolled back and will be retried.
    LockRetry {
        version: String,
        attempt: u32,
        wait: Duration,
        blockers: String,
    },
    Applied {
        version: String,
        name: String,
        duration: Duration,
    },
    Reverting {
        version: String,
        name: String,
        from_history: bool,
    },
    Reverted {
        version: String,
        name: String,
        duration: Duration,
    },
    /// The lock-queue guard waits for sessions that hold (or wait for) a lock conflicting
    /// with what the next unit needs, instead of queueing behind them. Sent when the wait
    /// starts, when the set of sessions changes, and every few seconds.
    GuardWaiting {
        version: String,
        /// The tables the unit locks strongly.
        tables: Vec<String>,
        /// Who is in the way: pid, application_name, state, transaction age, query.
        sessions: Vec<pgshift_db::Session>,
        waited: Duration,
    },
    /// The sessions the guard waited for are gone; the unit runs now.
    GuardClear { version: String, waited: Duration },
    /// The guard waited `guard_max_wait`; the unit runs anyway, under `lock_timeout`.
    GuardGaveUp { version: String, waited: Duration },
    /// `guard_cancel_after` passed: a session in the way was cancelled (running a query) or
    /// terminated (idle in transaction).
    GuardCancelled {
        version: String,
        session: pgshift_db::Session,
        terminated: bool,
        /// Whether the server accepted the signal.
        signalled: bool,
    },
    /// A destructive step was made recoverable (`on_drop`): what was kept, and where.
    Backup {
        version: String,
        /// `deprecate`, `backup` or `pg_dump`.
        mode: &'static str,
        /// The table or column affected.
        object: String,
        /// Where the data is now: the renamed table or column, the backup table, the dump file.
        kept_in: String,
    },
    /// A statement the last run left in flight (sent outside any transaction, its end not
    /// recorded) was looked up in the catalog before resuming.
    Settled {
        version: String,
        /// 1-based.
        step: usize,
        /// It completed and is now recorded; otherwise it runs again.
        landed: bool,
        /// What the catalog showed.
        why: String,
    },
    /// A step is still running, sent about every second while it does: for a live line on a
    /// terminal (plain lines every few seconds elsewhere).
    StepRunning {
        version: String,
        /// The step, on one line, shortened, passwords hidden.
        sql: String,
        elapsed: Duration,
        /// What it waits for, when it waits: `a lock held by pid 123`, `IO (DataFileRead)`.
        waiting_for: Option<String>,
        /// An index build's progress as PostgreSQL reports it: `building index: scanning
        /// table, 41% (12000 of 29000)`.
        progress: Option<String>,
    },
    /// A backfill starts (or resumes after `resumed_at` rows done in earlier runs).
    BackfillStarted {
        id: String,
        table: String,
        /// `key (id)` or `ctid`.
        walk: String,
        /// Rows the planner expects to need the update.
        estimate: Option<u64>,
        resumed_at: Option<u64>,
        /// Why it runs once over the rows in scope ([`crate::backfill::Mode::Once`]).
        runs_once: Option<String>,
    },
    /// A backfill's progress: after each batch, and while it waits (with the reason).
    BackfillProgress(crate::backfill::Progress),
    /// A migration runs as an online (expand/contract) change: its operations, in words.
    OnlineChange {
        version: String,
        operations: Vec<String>,
    },
    /// Anything else worth telling a person.
    Info(String),
}

/// Receives events. `&dyn Fn(&Event)` works as one.
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> Observer for F {
    fn event(&self, event: &Event) {
        self(event)
    }
}

/// Discards events.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event) {}
}
