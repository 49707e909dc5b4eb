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
