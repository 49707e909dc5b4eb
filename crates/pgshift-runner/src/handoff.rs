//! Sending the next migration before the answer to this one: the server goes from one to the
//! next without waiting for pgshift to read an answer and send again.
//!
//! While a migration's unit, sent whole ([`crate::executor`]), runs on the server, its
//! [`Successor`] prepares the next migration. When that one is a single unit sent whole too
//! (no query needed before it: its locks taken `NOWAIT`, no small-table try, nothing to settle)
//! and the first has not answered yet, its texts go out behind the first's `COMMIT`.
//!
//! Nothing of the second may stay unless the first committed. When a statement of the first
//! fails, the server refuses everything after it until pgshift's `ROLLBACK` (the transaction
//! block is aborted), the second's `BEGIN` among it. A `COMMIT` that fails (a deferred
//! constraint) or a lone text the server could not parse leaves no transaction block, though,
//! and the second's would run. So the first's last text sets a session value, [`Gate`], in its
//! transaction (a plain `SET` is undone with the transaction that made it), and the second's
//! first text checks it right after its `BEGIN`: unless the first committed, it fails and
//! nothing of the second runs. Whenever the first fails, pgshift ignores what the second
//! answered, sends `ROLLBACK` after it, and prepares and sends the second again once the first
//! is done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::future::BoxFuture;

/// The gate between a migration and the next one sent ahead of its answer. Both values are
/// the same token: `mark` in the first's last text, `after` in the second's first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    /// The token the migration before set when it committed: checked right after `BEGIN`.
    pub(crate) after: Option<String>,
    /// The token this migration sets with its record, for the next one.
    pub(crate) mark: Option<String>,
    /// Set when the check fails although the migration before committed: the session did
    /// not carry the setting from one transaction to the next (a transaction-mode pooler may
    /// give each its own server session). Nothing of the unit ran; it is sent again, and the
    /// run sends nothing ahead any more ([`Gate::is_closed`]).
    pub(crate) closed: Option<Arc<AtomicBool>>,
}

/// The session setting the gate uses. A placeholder (no extension defines it); it dies with
/// the session.
const SETTING: &str = "pgshift.gate";

impl Gate {
    /// A gate of the run failed although the migration before it committed: nothing more is
    /// sent ahead in this run.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }

    /// Fails (division by zero) unless the setting holds `token`; an unset setting fails too.
    pub(crate) fn check_sql(token: &str) -> String {
        format!("SELECT 1 / (current_setting('{SETTING}') = '{token}')::int")
    }

    /// Sets the token for the session; undone when its transaction does not commit.
    pub(crate) fn mark_sql(token: &str) -> String {
        format!("SET {SETTING} = '{token}'")
    }
}

/// A run's tokens: a random prefix (so no value an earlier run left in the session matches)
/// and the migration's place in the run.
#[derive(Debug)]
pub(crate) struct Tokens {
    run: u64,
    closed: Arc<AtomicBool>,
}

impl Tokens {
    pub(crate) fn new() -> Self {
        Tokens {
            run: rand::random(),
            closed: Arc::default(),
        }
    }

    /// The gate between migration `i` and the one after it, for that one.
    pub(crate) fn gate_after(&self, i: usize, marks: bool) -> Gate {
        Gate {
            after: Some(self.of(i)),
            mark: marks.then(|| self.of(i + 1)),
            closed: Some(self.closed.clone()),
        }
    }

    /// The token migration `i` of the run marks with.
    fn of(&self, i: usize) -> String {
        format!("{:016x}.{i}", self.run)
    }
}

/// What a unit sent whole shares with the successor preparing itself while the unit runs.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    /// The unit's last answer has been read (whatever it said).
    answered: AtomicBool,
    /// The successor's first attempt was sent behind the unit's texts.
    successor_sent: AtomicBool,
}

impl Handoff {
    /// Whether the unit has not answered yet: only then does a successor send ahead. Checked
    /// and followed by the send with no await between them.
    pub(crate) fn unanswered(&self) -> bool {
        !self.answered.load(Ordering::SeqCst)
    }

    pub(crate) fn note_successor_sent(&self) {
        self.successor_sent.store(true, Ordering::SeqCst);
    }

    pub(crate) fn successor_sent(&self) -> bool {
        self.successor_sent.load(Ordering::SeqCst)
    }

    pub(crate) fn note_answered(&self) {
        self.answered.store(true, Ordering::SeqCst);
    }
}

/// The next migration, preparing itself while this one's unit runs.
pub(crate) trait Successor: Send + Sync {
    /// The token the unit running now marks with ([`Gate::mark`]).
    fn token_before(&self) -> &str;
    /// Prepares the next migration and, if `handoff` says the unit running now has not
    /// answered yet and the next can be sent whole without a query first, sends it. Called
    /// once the unit's texts are all sent, and polled alongside the reading of its answers;
    /// it may query the server (its queries run after the unit, as they would have).
    fn while_unanswered<'a>(&'a self, handoff: &'a Handoff) -> BoxFuture<'a, ()>;
    /// Forgets what it prepared and sent: the unit before it failed. Its answers go unread.
    fn discard(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokens_of_two_runs_differ_and_a_check_names_its_token() {
        let (a, b) = (Tokens::new(), Tokens::new());
        assert_ne!(a.of(3), b.of(3));
        assert_ne!(a.of(3), a.of(4));
        let token = a.of(7);
        assert!(Gate::check_sql(&token).contains(&format!("= '{token}'")));
        assert_eq!(
            Gate::mark_sql(&token),
            format!("SET pgshift.gate = '{token}'")
        );
    }
}
