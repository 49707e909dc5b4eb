//! The executor: the one place a unit of steps runs, for `up`, `down`, `redo` and `trace`.
//!
//! A unit runs as pgshift's own transaction (`BEGIN` with `SET LOCAL` timeouts, its steps, its
//! progress record, `COMMIT`), or as one bare statement (recorded in flight first when it
//! cannot run in a transaction block, see [`crate::inflight`]), or inside a transaction the
//! caller holds open (`trace` without `--commit`). Around it: the lock-queue guard, retry on
//! `lock_timeout` with backoff and jitter within the budget, the long-running timeouts for
//! `CONCURRENTLY` and `VALIDATE`, dropping the INVALID index a failed concurrent build leaves,
//! and a [`StepHook`] that watches each step (the tracer records the locks it takes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use pgshift_db::{Connection, DbError, ErrorPosition, LockLevel};
use pgshift_source::Migration;
use pgshift_sql::lines::char_position_to_offset;
use pgshift_sql::LineIndex;
use rand::Rng;

use crate::error::{Result, RunError};
use crate::event::{Event, Observer};
use crate::guard;
use crate::handoff::{Gate, Handoff, Successor};
use crate::history::{self, NewRow, RowState};
use crate::inflight;
use crate::migrator::describe_session;
use crate::old_tool::OldToolRow;
use crate::options::RunOptions;
use crate::small_tables::{SmallForm, SmallTry};
use crate::units::{open_transaction_start, Execution, Step, Unit};

/// Who opens the transactions of transactional units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transactions {
    /// pgshift: one per unit, committed with its progress record.
    Own,
    /// The caller holds one open around everything (`trace` without `--commit`): steps are
    /// sent inside it, nothing is committed or recorded, nothing can be retried.
    Caller,
}

/// Watches the steps the executor runs. Every method has a default that does nothing.
pub(crate) trait StepHook: Send + Sync {
    /// A unit starts (inside its transaction, when it has one).
    fn unit_started(&mut self) -> BoxFuture<'_, std::result::Result<(), DbError>> {
        Box::pin(async { Ok(()) })
    }
    /// A step is about to be sent.
    fn before_step<'a>(
        &'a mut self,
        _step: &'a Step,
        _in_transaction: bool,
    ) -> BoxFuture<'a, std::result::Result<(), DbError>> {
        Box::pin(async { Ok(()) })
    }
    /// Runs while a step outside a transaction runs, until `done`: what it samples (the
    /// relation locks seen) is handed to [`StepHook::after_step`].
    fn while_running<'a>(&'a self, _done: &'a AtomicBool) -> BoxFuture<'a, Vec<(u32, LockLevel)>> {
        Box::pin(async { Vec::new() })
    }
    /// Runs while any step runs (the progress line). Never completes on its own: it is dropped
    /// when the step ends, so a fast step waits for nothing.
    fn while_sending<'a>(&'a self, _step: &'a Step) -> BoxFuture<'a, ()> {
        Box::pin(std::future::pending())
    }
    /// Whether `unit_started`, `before_step` and `after_step` do nothing but note (no query,
    /// no wait): a one-statement transactional unit is then sent whole in one round trip.
    fn passive(&self) -> bool {
        false
    }
    /// A step completed.
    fn after_step<'a>(
        &'a mut self,
        _step: &'a Step,
        _in_transaction: bool,
        _sampled: Vec<(u32, LockLevel)>,
        _took: Duration,
    ) -> BoxFuture<'a, std::result::Result<(), DbError>> {
        Box::pin(async { Ok(()) })
    }
}

/// What a unit records in the history when it completes (in its own transaction when it
/// has one).
pub(crate) enum Record {
    /// The whole migration in one transaction: its row, as applied.
    Applied {
        row: NewRow,
        started: Instant,
        /// Also written into the old tool's table (`[run] record_in_old_tool`).
        old_tool: Option<OldToolRow>,
        /// Sent whole, its duration is the server's, from its transaction's start: it was
        /// sent ahead ([`crate::handoff`]), and started when the migration before ended.
        timed_by_server: bool,
    },
    /// One unit of several done (and nothing in flight).
    Progress {
        version: String,
        state: RowState,
        progress: i32,
        /// The fingerprints of the units, recorded with the first progress of a revert.
        digests: Option<Vec<String>>,
        /// Set for the last unit (to when the run started): the record is the end instead —
        /// the row applied (with its duration), or, for a revert, gone.
        ends_at: Option<Instant>,
        /// Written with the end, into the old tool's table (`[run] record_in_old_tool`).
        old_tool: Option<OldToolRow>,
    },
    /// The whole revert in one transaction: the row goes.
    Reverted {
        version: String,
        old_tool: Option<OldToolRow>,
    },
    /// A unit of an online change's phase done: `done` units and `sub` parts of the next.
    Online {
        version: String,
        done: usize,
        sub: usize,
        /// The checkpoint name of the unit's backfill, when it is one.
        backfill_id: String,
    },
    /// Nothing: `trace` keeps no history of what it runs.
    Nothing,
}

impl Record {
    /// The record is at most one statement, sent whole (typed parameters, nothing prepared
    /// first) as soon as [`Record::write`] is first polled: a COMMIT can be sent right behind
    /// it without waiting for its answer. (A statement prepared first would let the COMMIT
    /// overtake it: the history functions these variants call are typed for this.)
    fn is_one_statement_at_most(&self) -> bool {
        match self {
            Record::Applied { old_tool, .. }
            | Record::Progress { old_tool, .. }
            | Record::Reverted { old_tool, .. } => old_tool.is_none(),
            Record::Nothing => true,
            Record::Online { .. } => false,
        }
    }

    /// The record as SQL text with its values in it, for a unit sent whole
    /// ([`Executor::try_sent_whole`]): empty for [`Record::Nothing`], `None` where it is more
    /// than one statement ([`Record::is_one_statement_at_most`]).
    fn inline_sql(&self) -> Option<String> {
        if !self.is_one_statement_at_most() {
            return None;
        }
        let elapsed =
            |started: &Instant| i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        Some(match self {
            Record::Applied {
                row,
                started,
                timed_by_server,
                ..
            } => history::upsert_sql(
                &NewRow {
                    duration_ms: Some(elapsed(started)),
                    ..row.clone()
                },
                *timed_by_server,
            ),
            Record::Progress {
                version,
                state,
                ends_at: Some(started),
                ..
            } => match state {
                RowState::Reverting => history::delete_sql(version),
                _ => history::finish_sql(version, elapsed(started)),
            },
            Record::Progress {
                version,
                state,
                progress,
                digests,
                ends_at: None,
                ..
            } => history::set_progress_sql(version, *state, *progress, digests.as_deref()),
            Record::Reverted { version, .. } => history::delete_sql(version),
            Record::Nothing => String::new(),
            Record::Online { .. } => return None,
        })
    }

    pub(crate) async fn write(&self, client: &Connection) -> Result<(), DbError> {
        match self {
            Record::Applied {
                row,
                started,
                old_tool,
                ..
            } => {
                let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
                history::upsert(
                    client,
                    &NewRow {
                        duration_ms: Some(elapsed),
                        ..row.clone()
                    },
                )
                .await?;
                match old_tool {
                    Some(o) => o.write(client, *started).await,
                    None => Ok(()),
                }
            }
            Record::Progress {
                version,
                state,
                progress,
                digests,
                ends_at,
                old_tool,
            } => match (ends_at, state) {
                (Some(started), RowState::Reverting) => {
                    history::delete(client, version).await?;
                    match old_tool {
                        Some(o) => o.write(client, *started).await,
                        None => Ok(()),
                    }
                }
                (Some(started), _) => {
                    let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
                    history::finish(client, version, elapsed).await?;
                    match old_tool {
                        Some(o) => o.write(client, *started).await,
                        None => Ok(()),
                    }
                }
                (None, _) => {
                    history::set_progress(client, version, *state, *progress, digests.as_deref())
                        .await
                }
            },
            Record::Reverted { version, old_tool } => {
                history::delete(client, version).await?;
                match old_tool {
                    Some(o) => o.write(client, Instant::now()).await,
                    None => Ok(()),
                }
            }
            Record::Online {
                version, done, sub, ..
            } => crate::online::state::set_progress(client, version, *done, *sub).await,
            Record::Nothing => Ok(()),
        }
    }
}

/// A unit that failed: which step, and the server's error.
pub(crate) struct UnitFailure {
    pub(crate) step: usize,
    pub(crate) error: DbError,
    /// It was the guard's first look, the unit's locks taken `NOWAIT` as its transaction
    /// began, that failed, or the gate of a unit sent ahead ([`crate::handoff::Gate`]):
    /// nothing of the unit ran, and it is sent again after the guard's usual look.
    pub(crate) guard_lock: bool,
}

/// Runs units on one session.
pub(crate) struct Executor<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) options: &'a RunOptions,
    pub(crate) transactions: Transactions,
    /// Tables created earlier in this run: the lock-queue guard does not look at them.
    pub(crate) new_tables: guard::MadeInRun<'a>,
}

impl Executor<'_> {
    /// A unit of one statement may go as one simple query with its `BEGIN` and timeouts
    /// ([`Executor::try_sent_whole`]): the server is PostgreSQL 13 or later, which times each
    /// statement of such a query on its own (before, `statement_timeout` timed the whole text,
    /// from before its `SET LOCAL`).
    fn one_message(&self) -> bool {
        self.conn.server_version_num() >= 130_000
    }

    /// Runs unit `index` of `exec`, `m`'s, retrying it when it hits `lock_timeout`, then runs
    /// `after` in the same transaction (transactional units) or right after (others).
    pub(crate) async fn run_unit(
        &self,
        (m, exec, index): (&Migration, &Execution, usize),
        observer: &dyn Observer,
        after: &Record,
        hook: &mut dyn StepHook,
        relay: Relay<'_>,
    ) -> Result<()> {
        let Relay {
            mut ahead,
            mut successor,
        } = relay;
        // Borrowed: a unit can hold a large file's steps, and only the retry outside a
        // transaction block below changes it.
        let mut unit = std::borrow::Cow::Borrowed(&exec.units[index]);
        if let (Some(parts), Transactions::Own) = (unit.backfill(), self.transactions) {
            return self
                .run_backfill(m, exec, index, parts, observer, after)
                .await;
        }
        let deadline = Instant::now() + self.options.lock_retry_budget;
        let mut delay = self.options.lock_retry_initial_delay;
        let mut attempt: u32 = 0;
        let mut guarded = guard::guarded_tables(&unit, self.new_tables);
        let guard_deadline = Instant::now() + self.options.guard_max_wait;
        // The guard's first look at a transactional unit is its locks taken NOWAIT as the
        // transaction begins (no query of pg_locks, no round trip of its own); only when one
        // is not granted at once does the guard look at who is in the way, and wait.
        let mut lock_first = (unit.transactional && self.transactions == Transactions::Own)
            .then(|| guard::lock_nowait(&unit, &guarded, self.options))
            .flatten();
        // A unit with another form for a busy table runs as written only when its locks can be
        // taken NOWAIT (or its tables are new in this run): it never waits for them.
        if lock_first.is_none() && !guarded.is_empty() {
            if let Some(other) = unit.when_busy() {
                unit = std::borrow::Cow::Owned(other);
                guarded = guard::guarded_tables(&unit, self.new_tables);
            }
        }
        // A unit that locks several tables (an online change's contract) takes them all NOWAIT
        // again each time the way is clear (a few milliseconds apart, at most NOWAIT_LOOKS
        // times, within the guard's deadline): waiting for one while holding another could
        // deadlock with the application's transactions, which take them in their own order.
        let mut several = guarded.len() > 1 && lock_first.is_some();
        let mut nowait_looks_left = NOWAIT_LOOKS;
        let mut announced = false;
        loop {
            attempt += 1;
            if !guarded.is_empty() && lock_first.is_none() {
                let look = guard::wait_for_clear_path(
                    self.conn,
                    m.version.as_str(),
                    &guarded,
                    self.options,
                    guard_deadline,
                    observer,
                )
                .await?;
                if several
                    && matches!(look, guard::GuardOutcome::Clear { .. })
                    && Instant::now() < guard_deadline
                    && nowait_looks_left > 0
                {
                    // Not at once: the way looks clear when the sessions holding the locks
                    // are short queries the guard lets pass; they need a moment to end.
                    nowait_looks_left -= 1;
                    let jitter = rand::thread_rng().gen_range(0.5..1.5);
                    tokio::time::sleep(retry_wait(NOWAIT_PAUSE, jitter, NOWAIT_PAUSE * 2)).await;
                    lock_first = guard::lock_nowait(&unit, &guarded, self.options);
                }
            }
            for step in unit
                .steps
                .iter()
                .filter(|s| !s.is_verbatim() && !s.is_online())
            {
                if !announced {
                    observer.event(&Event::Rewrite {
                        version: m.version.to_string(),
                        purpose: step.rewrite.as_deref().unwrap_or_default().to_string(),
                        sql: pgshift_sql::redact_secrets(step.sql()).into_owned(),
                    });
                }
            }
            announced = true;
            // Only the first attempt has a successor preparing itself alongside.
            let outcome = match ahead.take() {
                // Sent while the migration before ran, with the same first look, for a hook
                // that only notes (`StepHook::passive`: nothing to do as the unit starts).
                Some(sent) => {
                    lock_first = None;
                    self.read_whole(sent, &unit.steps, hook, successor.take())
                        .await
                }
                None => {
                    self.try_unit(
                        &unit,
                        index,
                        after,
                        hook,
                        lock_first.take().as_ref(),
                        successor.take(),
                    )
                    .await
                }
            };
            self.forward_notices(observer);
            let Err(failure) = outcome else {
                return Ok(());
            };
            if failure.guard_lock {
                // Nothing ran. A unit with another form for a busy table runs that instead.
                if let Some(other) = unit.when_busy() {
                    unit = std::borrow::Cow::Owned(other);
                    guarded = guard::guarded_tables(&unit, self.new_tables);
                    several = false;
                    announced = false;
                    attempt -= 1;
                    continue;
                }
                // A lock was not granted at once (or a table is not there to lock): nothing
                // ran; the guard looks at who is in the way, as for any other unit. Only a
                // lock not granted is worth looking NOWAIT again for.
                let busy = failure
                    .error
                    .as_query_error()
                    .is_some_and(|q| q.is_lock_timeout());
                several &= busy;
                attempt -= 1;
                continue;
            }
            let query = failure.error.as_query_error();
            // A statement of a no-transaction migration that PostgreSQL refuses in a
            // transaction block although pgshift does not know it: run it bare, recorded in
            // flight, as it would for a statement it knows.
            if query.is_some_and(|q| q.code == "25001")
                && unit.transactional
                && unit.steps.len() == 1
                && exec.no_transaction_reason.is_some()
            {
                let unit = unit.to_mut();
                unit.transactional = false;
                if let Some(step) = unit.steps.first_mut() {
                    step.facts.landing = Some(Box::new(inflight::Landing::Unknown));
                }
                continue;
            }
            // A deadlock rolled the unit back as a lock timeout does: retried the same way.
            let lock_timeout = query.is_some_and(|q| q.is_lock_timeout() || q.is_deadlock());
            let now = Instant::now();
            // Inside the author's own BEGIN the server rolled back the whole transaction:
            // retrying this statement alone would run it outside it and skip the statements
            // before it. The error says to run again, which resumes at that BEGIN.
            // Inside a transaction the caller holds, nothing can be retried either.
            let retry_alone = open_transaction_start(exec, index).is_none()
                && self.transactions == Transactions::Own;
            let jitter = rand::thread_rng().gen_range(0.5..1.5);
            let wait = retry_wait(delay, jitter, self.options.lock_retry_max_delay);
            if lock_timeout && retry_alone && now + wait < deadline {
                let blockers = self.describe_blockers().await;
                observer.event(&Event::LockRetry {
                    version: m.version.to_string(),
                    attempt,
                    wait,
                    blockers,
                });
                if !unit.transactional {
                    self.clean_invalid_index(&unit).await?;
                }
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(self.options.lock_retry_max_delay);
                continue;
            }
            if !unit.transactional {
                // A failed CREATE INDEX CONCURRENTLY leaves an INVALID index that would slow
                // every write and make the next run fail: drop it now. The next run drops it
                // too, should this fail.
                let _ = self.clean_invalid_index(&unit).await;
            }
            if lock_timeout && retry_alone {
                return Err(RunError::LockBudget {
                    version: m.version.to_string(),
                    name: m.name.clone(),
                    attempts: attempt,
                    waited_secs: self.options.lock_retry_budget.as_secs(),
                    lock_timeout_ms: u64::try_from(self.options.lock_timeout.as_millis())
                        .unwrap_or(u64::MAX),
                    blockers: self.describe_blockers().await,
                });
            }
            return Err(self.statement_error(m, exec, index, failure));
        }
    }

    /// The guard's `NOWAIT` locks of `small`, when it is tried at all: in a transaction of
    /// pgshift's, with the guard on and something to lock.
    pub(crate) fn small_locks(&self, small: &SmallForm) -> Option<guard::FirstLook> {
        if self.transactions != Transactions::Own {
            return None;
        }
        let guarded = guard::guarded_tables(&small.unit, self.new_tables);
        guard::lock_nowait(&small.unit, &guarded, self.options)
    }

    /// Runs a rewritten migration as written, once, when its relations are small and free
    /// ([`crate::small_tables`]): its relations' sizes read and its locks taken `NOWAIT` as its
    /// transaction begins, then its statements and `after`, in one transaction. Anything but
    /// [`SmallTry::Ran`]: nothing of it stayed, and the rewritten form runs then (and reports
    /// any error of its own). Not tried where [`Self::small_locks`] has none (as busy).
    pub(crate) async fn run_small(
        &self,
        small: &SmallForm,
        observer: &dyn Observer,
        after: &Record,
        hook: &mut dyn StepHook,
    ) -> Result<SmallTry> {
        let Some(locks) = self.small_locks(small) else {
            return Ok(SmallTry::NotSmallOrBusy);
        };
        // The sizes first, before the migration holds any lock of its own: reading them takes
        // ACCESS SHARE, which may wait (up to the lock timeout) for someone else's lock. A
        // transaction still writing to a table holds a lock the `NOWAIT` ones then fail on.
        let first = locks.after(small.size_check());
        match self
            .try_unit(&small.unit, 0, after, hook, Some(&first), None)
            .await
        {
            Ok(()) => {
                self.forward_notices(observer);
                Ok(SmallTry::Ran)
            }
            // The server refused something and rolled the transaction back: what it said
            // comes again, if it still applies, from the form that runs instead.
            Err(failure) if failure.error.as_query_error().is_some() => {
                drop(self.conn.take_notices());
                Ok(if failure.guard_lock {
                    SmallTry::NotSmallOrBusy
                } else {
                    SmallTry::Failed
                })
            }
            Err(failure) => Err(failure.error.into()),
        }
    }

    /// An `UPDATE` marked `-- pgshift:backfill`: the backfill engine runs it in batches (its
    /// checkpoint named after the migration and step, so running `up` again resumes it), then
    /// the unit's record is written.
    async fn run_backfill(
        &self,
        m: &Migration,
        exec: &Execution,
        index: usize,
        parts: &pgshift_sql::UpdateParts,
        observer: &dyn Observer,
        after: &Record,
    ) -> Result<()> {
        use crate::backfill::{Backfill, BackfillSpec};
        let step = &exec.units[index].steps[0];
        if !step.is_online() {
            observer.event(&Event::Rewrite {
                version: m.version.to_string(),
                purpose: "runs as a batched, resumable backfill (`-- pgshift:backfill`)".into(),
                sql: step.sql().to_string(),
            });
        }
        // Named after the migration, the direction and the step, so an up and a down never
        // share a checkpoint; one that finished before (applied, reverted, applied again)
        // runs again.
        let direction = match after {
            Record::Progress {
                state: RowState::Reverting,
                ..
            } => "down",
            _ => "up",
        };
        let mut options = self.options.backfill_options();
        // An online change's backfill that finished stays finished: its expand is resumed,
        // never run twice (a rollback deletes its checkpoint).
        options.restart_if_done = !matches!(after, Record::Online { .. });
        options.caller_marks_done = true;
        let id = match after {
            Record::Online { backfill_id, .. } => backfill_id.clone(),
            _ => format!("{}-{direction}-{}", m.version, index + 1),
        };
        let backfill = Backfill {
            spec: BackfillSpec::from_update(parts.clone(), Some(id)),
            options,
        };
        if let Err(error) = backfill.run(self.conn, observer).await {
            let at = LineIndex::new(&exec.file_text).line_col(&exec.file_text, step.origin.start);
            return Err(RunError::Backfill {
                version: m.version.to_string(),
                path: exec.path.clone(),
                line: at.line,
                error: Box::new(error),
            });
        }
        // The backfill done and the step recorded in one transaction: a crash between them
        // would otherwise run the backfill again from the start (see `caller_marks_done`).
        let client: &tokio_postgres::Client = self.conn;
        client.batch_execute("BEGIN").await.map_err(DbError::from)?;
        let recorded = async {
            after.write(self.conn).await?;
            crate::backfill::state::mark_done(client, &backfill.spec.id).await?;
            client.batch_execute("COMMIT").await?;
            Ok::<(), DbError>(())
        }
        .await;
        if recorded.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        recorded?;
        Ok(())
    }

    /// The record's text when `unit` goes to the server whole, in one round trip
    /// ([`Executor::try_sent_whole`]): a transaction of pgshift's, of at most
    /// [`SENT_WHOLE_STEPS_MAX`] statements and no `COPY`, whose hook only notes, whose record
    /// is one statement.
    fn sent_whole_record(&self, unit: &Unit, after: &Record, passive: bool) -> Option<String> {
        (self.transactions == Transactions::Own
            && unit.transactional
            && !unit.steps.is_empty()
            && unit.steps.len() <= SENT_WHOLE_STEPS_MAX
            && passive
            && unit.steps.iter().all(|s| s.copy_data.is_none()))
        .then(|| after.inline_sql())
        .flatten()
    }

    /// Sends `unit` whole, behind the unit before it that has not answered yet, when its first
    /// attempt needs nothing from the server first ([`crate::handoff`]): no backfill, its
    /// guard's look its locks taken `NOWAIT` (or nothing to look at). `None` when it does.
    pub(crate) fn send_ahead(&self, unit: &Unit, after: &Record, gate: &Gate) -> Option<SentWhole> {
        if unit.backfill().is_some() {
            return None;
        }
        let record = self.sent_whole_record(unit, after, true)?;
        let guarded = guard::guarded_tables(unit, self.new_tables);
        let lock_first = guard::lock_nowait(unit, &guarded, self.options);
        if lock_first.is_none() && !guarded.is_empty() {
            return None;
        }
        Some(self.send_whole(&unit.steps, &record, lock_first.as_ref(), gate))
    }

    /// One attempt at a unit: its steps, each watched by `hook`, and its record. With
    /// `lock_first` (`LOCK TABLE ... NOWAIT` statements), a transactional unit takes those
    /// locks as its transaction begins, in the same round trip.
    pub(crate) async fn try_unit(
        &self,
        unit: &Unit,
        index: usize,
        after: &Record,
        hook: &mut dyn StepHook,
        lock_first: Option<&guard::FirstLook>,
        successor: Option<&dyn Successor>,
    ) -> std::result::Result<(), UnitFailure> {
        let client: &tokio_postgres::Client = self.conn;
        let last = unit.steps.len().saturating_sub(1);
        if unit.transactional && self.transactions == Transactions::Caller {
            // Inside the caller's transaction: no BEGIN, no COMMIT, no record.
            hook.unit_started().await.map_err(|error| UnitFailure {
                guard_lock: false,
                step: 0,
                error,
            })?;
            for (i, step) in unit.steps.iter().enumerate() {
                self.send_watched(step, true, hook)
                    .await
                    .map_err(|error| UnitFailure {
                        guard_lock: false,
                        step: i,
                        error,
                    })?;
            }
            return Ok(());
        }
        if let Some(record) = self.sent_whole_record(unit, after, hook.passive()) {
            return self
                .try_sent_whole(&unit.steps, &record, hook, lock_first, successor)
                .await;
        }
        if unit.transactional {
            let (lock_timeout, statement_timeout) = self.timeouts_for(&unit.steps);
            let mut begin = crate::units::begin_with_timeouts(lock_timeout, statement_timeout);
            if let Some(look) = lock_first {
                begin.push_str("; ");
                begin.push_str(&look.sql);
            }
            if let Err(e) = client.batch_execute(&begin).await {
                // The BEGIN may have opened a transaction that is now aborted; end it so the
                // session (and the runner lock's release) stays usable.
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(UnitFailure {
                    guard_lock: lock_first.is_some(),
                    step: 0,
                    error: e.into(),
                });
            }
            if let Err(error) = hook.unit_started().await {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(UnitFailure {
                    guard_lock: false,
                    step: 0,
                    error,
                });
            }
            for (i, step) in unit.steps.iter().enumerate() {
                if let Err(error) = self.send_watched(step, true, hook).await {
                    let _ = client.batch_execute("ROLLBACK").await;
                    return Err(UnitFailure {
                        guard_lock: false,
                        step: i,
                        error,
                    });
                }
            }
            if after.is_one_statement_at_most() {
                // The record and the COMMIT go together, in one round trip. Should the record
                // fail, the server ends the failed transaction with a rollback at the COMMIT.
                let (written, committed) = futures_util::future::join(
                    after.write(self.conn),
                    client.batch_execute("COMMIT"),
                )
                .await;
                written.map_err(|error| UnitFailure {
                    guard_lock: false,
                    step: last,
                    error,
                })?;
                return committed.map_err(|e| UnitFailure {
                    guard_lock: false,
                    step: last,
                    error: e.into(),
                });
            }
            if let Err(error) = after.write(self.conn).await {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(UnitFailure {
                    guard_lock: false,
                    step: last,
                    error,
                });
            }
            return client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| UnitFailure {
                    guard_lock: false,
                    step: last,
                    error: e.into(),
                });
        }
        // Bare: the author's transaction control (the record joins their transaction), or a
        // statement that cannot run in a transaction block, recorded in flight first.
        let in_flight = match (unit.runs_in_flight(), after) {
            (
                true,
                Record::Progress {
                    version,
                    state,
                    digests,
                    ..
                },
            ) => Some((version.as_str(), *state, digests.as_deref())),
            _ => None,
        };
        hook.unit_started().await.map_err(|error| UnitFailure {
            guard_lock: false,
            step: 0,
            error,
        })?;
        // The normal timeouts back after the last step's long ones: sent with the record.
        let mut restore_with_record = false;
        for (i, step) in unit.steps.iter().enumerate() {
            let mut record = None;
            let long = step.facts.runs_long_without_blocking;
            let set_long = long.then(|| {
                let (lock_timeout, statement_timeout) =
                    self.timeouts_for(std::slice::from_ref(step));
                format!(
                    "SET lock_timeout = {}; SET statement_timeout = {}",
                    millis(lock_timeout),
                    millis(statement_timeout)
                )
            });
            // The step's long timeouts go out with its in-flight record: one round trip.
            let set_long = async {
                match &set_long {
                    Some(sql) => client.batch_execute(sql).await,
                    None => Ok(()),
                }
            };
            let set = if let Some((version, state, digests)) = in_flight {
                let landing = step
                    .facts
                    .landing
                    .as_deref()
                    .cloned()
                    .unwrap_or(inflight::Landing::Unknown);
                // The row says where the run stands (a revert's first record turns an applied
                // row into a reverting one with 0 of its units done) and what is in flight.
                let progress = inflight::Progress {
                    state,
                    done: i32::try_from(index).unwrap_or(i32::MAX),
                    digests,
                };
                let (noted, set) = futures_util::future::join(
                    inflight::record(self.conn, version, progress, index, step.sql(), &landing),
                    set_long,
                )
                .await;
                match noted {
                    Ok(noted) => record = Some(noted),
                    Err(error) => {
                        if long {
                            let _ = self.set_session_timeouts().await;
                        }
                        return Err(UnitFailure {
                            guard_lock: false,
                            step: i,
                            error,
                        });
                    }
                }
                set
            } else {
                set_long.await
            };
            set.map_err(|e| UnitFailure {
                guard_lock: false,
                step: i,
                error: e.into(),
            })?;
            // Inside the author's transaction the statement's locks outlast it and are read after
            // it; a statement outside any transaction is sampled while it runs.
            let sent = self
                .send_watched(step, unit.in_author_transaction, hook)
                .await;
            if long {
                if sent.is_ok() && i == last {
                    restore_with_record = true;
                } else {
                    // Back to the session's normal timeouts for whatever runs next.
                    let _ = self.set_session_timeouts().await;
                }
            }
            if let Err(error) = sent {
                if unit.in_author_transaction {
                    // A statement the author wrapped in their own BEGIN may leave the session
                    // in a failed transaction; end it so the advisory unlock can run.
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                if let (Some((version, state, _)), Some(_)) = (in_flight, error.as_query_error()) {
                    // The server answered: the statement did not complete, nothing is in
                    // flight. What it left half-done (an INVALID index, named or not, the
                    // copies of a stopped REINDEX) goes now, as the next run would drop it.
                    if let Some(r) = record
                        .as_ref()
                        .filter(|r| r.landing.leaves_invalid_indexes())
                    {
                        let _ = inflight::settle(client, version, r, &crate::Silent).await;
                    }
                    // A revert with nothing done yet leaves the migration applied.
                    let _ = if state == RowState::Reverting && index == 0 {
                        history::restore_applied(client, version).await
                    } else {
                        history::clear_inflight(client, version).await
                    };
                }
                return Err(UnitFailure {
                    guard_lock: false,
                    step: i,
                    error,
                });
            }
        }
        let written = if restore_with_record {
            futures_util::future::join(self.set_session_timeouts(), after.write(self.conn))
                .await
                .1
        } else {
            after.write(self.conn).await
        };
        written.map_err(|error| UnitFailure {
            guard_lock: false,
            step: last,
            error,
        })
    }

    /// A transactional unit sent whole, without waiting for any answer: `BEGIN` and the
    /// timeouts; the guard's first look and the first statement; each statement after it; the
    /// last one with the history record (its values written into the text) and `COMMIT`. A
    /// unit of one statement is all of that in one text on PostgreSQL 13 and later
    /// ([`Executor::one_message`]). The server answers each text once, when it ends, and the
    /// client wakes for each answer: grouping them so costs one wake-up per statement at most,
    /// and the progress line still knows which statement the server is on (the one in the text
    /// after the last answered). The server runs the texts in order; after an error the rest
    /// fails, and pgshift rolls the transaction back, so nothing of the unit stays (`BEGIN`,
    /// in a text of its own but for a lone one-message unit, has opened it whatever the
    /// others hold). How many statements of the failing text completed tells which failed:
    /// one of the first look's is the guard's. The server counts an error's position from the
    /// start of its text; it is made the statement's own again, and it also tells the
    /// statement of a syntax error the server finds (which stops its whole text unrun).
    /// While the answers come, `successor` may send the next migration behind this one
    /// ([`crate::handoff`]).
    async fn try_sent_whole(
        &self,
        steps: &[Step],
        record: &str,
        hook: &mut dyn StepHook,
        lock_first: Option<&guard::FirstLook>,
        successor: Option<&dyn Successor>,
    ) -> std::result::Result<(), UnitFailure> {
        hook.unit_started().await.map_err(|error| UnitFailure {
            guard_lock: false,
            step: 0,
            error,
        })?;
        let gate = Gate {
            mark: successor.map(|s| s.token_before().to_string()),
            ..Gate::default()
        };
        let sent = self.send_whole(steps, record, lock_first, &gate);
        self.read_whole(sent, steps, hook, successor).await
    }

    /// Sends a transactional unit whole (see [`Executor::try_sent_whole`]), at once (nothing
    /// here waits), and starts reading its answers as they come, so that whatever is sent
    /// after it never waits behind answers nobody reads.
    pub(crate) fn send_whole(
        &self,
        steps: &[Step],
        record: &str,
        lock_first: Option<&guard::FirstLook>,
        gate: &Gate,
    ) -> SentWhole {
        use futures_util::FutureExt;
        let client: &tokio_postgres::Client = self.conn;
        let (lock_timeout, statement_timeout) = self.timeouts_for(steps);
        let begin = crate::units::begin_with_timeouts(lock_timeout, statement_timeout);
        let texts = whole_unit_texts(
            &begin,
            lock_first,
            steps,
            record,
            self.one_message() && steps.len() == 1,
            gate,
        );
        // Queued for the connection on the first poll: the driver's send does not wait. Were
        // one not taken at once, none after it is sent, and the unit fails at it.
        let mut answers = Vec::with_capacity(texts.len());
        for text in &texts {
            let answer = client.simple_query_raw(&text.sql).now_or_never();
            let taken = answer.is_some();
            answers.push(answer);
            if !taken {
                break;
            }
        }
        let reading = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let moved_on = std::sync::Arc::new(tokio::sync::Notify::new());
        let collector = {
            let (reading, moved_on) = (reading.clone(), moved_on.clone());
            async move {
                use futures_util::TryStreamExt;
                // The first error: which text, and how many of its statements completed.
                let mut failed: Option<(usize, usize, DbError)> = None;
                for (i, answer) in answers.into_iter().enumerate() {
                    reading.store(i, Ordering::SeqCst);
                    moved_on.notify_waiters();
                    let Some(answer) = answer else {
                        failed.get_or_insert((
                            i,
                            0,
                            DbError::Driver {
                                reason: "the driver did not take a statement at once".to_string(),
                            },
                        ));
                        break;
                    };
                    let mut completed = 0;
                    let read = async {
                        let stream = answer?;
                        futures_util::pin_mut!(stream);
                        while let Some(message) = stream.try_next().await? {
                            if let tokio_postgres::SimpleQueryMessage::CommandComplete(_) = message
                            {
                                completed += 1;
                            }
                        }
                        Ok::<(), tokio_postgres::Error>(())
                    };
                    // The texts after a failed one fail too; their answers are read all the same.
                    if let (Err(error), None) = (read.await, &failed) {
                        failed = Some((i, completed, error.into()));
                    }
                }
                failed
            }
        };
        SentWhole {
            texts,
            looked: lock_first.is_some(),
            gate_closed: gate.closed.clone(),
            reading,
            moved_on,
            answered: tokio::spawn(collector),
        }
    }

    /// The answers to a unit sent whole: `Ok` when it committed, else which statement failed
    /// (the transaction rolled back). `successor` prepares the next migration meanwhile.
    pub(crate) async fn read_whole(
        &self,
        sent: SentWhole,
        steps: &[Step],
        hook: &dyn StepHook,
        successor: Option<&dyn Successor>,
    ) -> std::result::Result<(), UnitFailure> {
        let client: &tokio_postgres::Client = self.conn;
        let SentWhole {
            texts,
            looked,
            gate_closed,
            reading,
            moved_on,
            answered,
        } = sent;
        let handoff = Handoff::default();
        let run = async {
            let failed = match answered.await {
                Ok(failed) => failed,
                Err(e) => Some((
                    0,
                    0,
                    DbError::Driver {
                        reason: format!("reading the answers stopped: {e}"),
                    },
                )),
            };
            handoff.note_answered();
            failed
        };
        let watching: &dyn StepHook = hook;
        // Follows the statement the server is on; never ends by itself.
        let progress = async {
            loop {
                let at = reading.load(Ordering::SeqCst);
                let moved = async {
                    loop {
                        let next = moved_on.notified();
                        tokio::pin!(next);
                        next.as_mut().enable();
                        if reading.load(Ordering::SeqCst) != at {
                            return;
                        }
                        next.await;
                    }
                };
                match texts.get(at).and_then(|t| t.step) {
                    Some((step, _)) => tokio::select! {
                        () = watching.while_sending(&steps[step]) => {}
                        () = moved => {}
                    },
                    None => moved.await,
                }
            }
        };
        let reading_answers = async {
            tokio::select! {
                biased;
                failed = run => failed,
                () = progress => None,
            }
        };
        let next = async {
            if let Some(s) = successor {
                s.while_unanswered(&handoff).await;
            }
        };
        let (failed, ()) = futures_util::future::join(reading_answers, next).await;
        let Some((text, completed, mut error)) = failed else {
            return Ok(());
        };
        // What was sent behind this unit is void: its answers go unread, and the ROLLBACK
        // below ends whatever transaction it opened.
        let successor_sent = handoff.successor_sent();
        if let Some(s) = successor {
            s.discard();
        }
        let failing = &texts[text];
        // A position inside the text's statement is that statement's, counted from its start.
        let own_position = match (&error, failing.step) {
            (DbError::Query(q), Some((step, start))) => match q.position {
                Some(ErrorPosition::Original(p)) => (p as usize)
                    .checked_sub(start)
                    .filter(|&own| own >= 1 && own <= steps[step].sql().chars().count())
                    .map(|own| (step, own)),
                _ => None,
            },
            _ => None,
        };
        let what = match own_position {
            Some((step, _)) => Sent::Step(step),
            None => failing
                .statements
                .get(completed)
                .copied()
                .unwrap_or(Sent::Commit),
        };
        if let DbError::Query(q) = &mut error {
            if matches!(q.position, Some(ErrorPosition::Original(_))) {
                q.position = own_position
                    .and_then(|(_, own)| u32::try_from(own).ok())
                    .map(ErrorPosition::Original);
            }
        }
        // The transaction is open and failed, unless the COMMIT failed (which ends it) or a
        // lone text did not parse (nothing of it ran, not even its `BEGIN`). A unit sent
        // behind this one may have opened one of its own.
        let nothing_ran = texts.len() == 1 && completed == 0;
        if successor_sent || (what != Sent::Commit && !nothing_ran) {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        if let (Sent::Gate, Some(closed)) = (what, &gate_closed) {
            closed.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let last = steps.len().saturating_sub(1);
        Err(UnitFailure {
            guard_lock: (what == Sent::Look && looked) || what == Sent::Gate,
            step: match what {
                Sent::Step(step) => step,
                Sent::Begin | Sent::Gate | Sent::Look => 0,
                Sent::Record | Sent::Commit => last,
            },
            error,
        })
    }

    /// Sends one step with `hook` watching: before, alongside (a step outside a transaction
    /// is sampled while it runs: its locks end with it), and after.
    async fn send_watched(
        &self,
        step: &Step,
        in_transaction: bool,
        hook: &mut dyn StepHook,
    ) -> std::result::Result<(), DbError> {
        hook.before_step(step, in_transaction).await?;
        let started = Instant::now();
        let done = AtomicBool::new(false);
        let send = async {
            let sent = step.send(self.conn).await;
            done.store(true, Ordering::SeqCst);
            sent
        };
        // The hook's futures are made here, not inside `watched`: a `&dyn StepHook` held
        // across an await would make `up`'s future not `Send`.
        let sampler = (!in_transaction).then(|| hook.while_running(&done));
        let progress = hook.while_sending(step);
        let watched = async {
            match sampler {
                Some(sampler) => tokio::join!(send, sampler),
                None => (send.await, Vec::new()),
            }
        };
        // The progress watcher ends with the step: `while_sending` never completes.
        let (sent, sampled) = tokio::select! {
            biased;
            result = watched => result,
            () = progress => (Ok(()), Vec::new()),
        };
        sent?;
        hook.after_step(step, in_transaction, sampled, started.elapsed())
            .await
    }

    /// `(lock_timeout, statement_timeout)` for these steps: the long-running, non-blocking
    /// policy when every step is a `CONCURRENTLY` build or a `VALIDATE`, the normal one otherwise.
    fn timeouts_for(&self, steps: &[Step]) -> (Duration, Duration) {
        let all_long =
            !steps.is_empty() && steps.iter().all(|s| s.facts.runs_long_without_blocking);
        if all_long {
            (
                self.options.concurrent_lock_timeout,
                self.options.long_statement_timeout,
            )
        } else {
            (self.options.lock_timeout, self.options.statement_timeout)
        }
    }

    pub(crate) async fn set_session_timeouts(&self) -> Result<()> {
        let sql = format!(
            "SET lock_timeout = {}; SET statement_timeout = {}",
            millis(self.options.lock_timeout),
            millis(self.options.statement_timeout)
        );
        self.conn.batch_execute(&sql).await.map_err(DbError::from)?;
        Ok(())
    }

    /// Before retrying or resuming a `CREATE INDEX CONCURRENTLY`, drop the INVALID index a
    /// failed attempt leaves behind; otherwise the retry fails with "already exists".
    pub(crate) async fn clean_invalid_index(&self, unit: &Unit) -> Result<()> {
        for (schema, name) in unit.steps.iter().filter_map(|s| s.facts.builds_index()) {
            let row = self
                .conn
                .query_opt(
                    "SELECT n.nspname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE c.relname = $1 AND NOT i.indisvalid
                        AND ($2 = '' AND n.oid = ANY (current_schemas(false)::regnamespace[]) OR n.nspname = $2)",
                    &[&name, &schema],
                )
                .await
                .map_err(DbError::from)?;
            if let Some(row) = row {
                let nsp: String = row.get(0);
                let sql = format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS {}.{}",
                    pgshift_sql::ident::quote_ident(&nsp),
                    pgshift_sql::ident::quote_ident(name)
                );
                self.conn.batch_execute(&sql).await.map_err(DbError::from)?;
            }
        }
        Ok(())
    }
    /// Who is holding transactions open right now, for messages about lock waits.
    async fn describe_blockers(&self) -> String {
        match pgshift_db::catalog::long_transactions(self.conn, Duration::from_millis(0)).await {
            Ok(sessions) if !sessions.is_empty() => sessions
                .iter()
                .take(5)
                .map(describe_session)
                .collect::<Vec<_>>()
                .join("; "),
            _ => "none found (the conflicting transaction ended)".to_string(),
        }
    }

    fn forward_notices(&self, observer: &dyn Observer) {
        for n in self.conn.take_notices() {
            observer.event(&Event::Notice {
                severity: n.severity,
                message: n.message,
            });
        }
    }

    fn statement_error(
        &self,
        m: &Migration,
        exec: &Execution,
        unit_index: usize,
        failure: UnitFailure,
    ) -> RunError {
        let unit = &exec.units[unit_index];
        let step = unit.steps.get(failure.step).or(unit.steps.last());
        let text = &exec.file_text;
        let offset = match (
            step,
            failure
                .error
                .as_query_error()
                .and_then(|q| q.position.clone()),
        ) {
            (Some(step), Some(ErrorPosition::Original(pos))) if step.is_verbatim() => {
                step.origin.start + char_position_to_offset(step.sql(), pos as usize)
            }
            (Some(step), _) => step.origin.start,
            (None, _) => 0,
        };
        let at = LineIndex::new(text).line_col(text, offset);
        let outcome = if step.is_some_and(|s| s.is_online()) {
            format!(
                "{}; the steps of this phase before it are done and recorded. Fix the cause and run the same command again: it continues at this step (`pgshift rollback` undoes an expand).",
                if unit.transactional {
                    "this step ran in a transaction of its own, which was rolled back"
                } else {
                    "this step ran outside a transaction and did not complete"
                }
            )
        } else if unit.transactional && exec.units.len() == 1 {
            "the migration was rolled back; nothing after it ran.".to_string()
        } else if let Some(begin) = open_transaction_start(exec, unit_index) {
            // Steps are counted as the history counts them: one per unit.
            let done = begin;
            let line = exec.units[begin].steps.first().map_or(0, |s| {
                LineIndex::new(text).line_col(text, s.origin.start).line
            });
            let before = match done {
                0 => "No step before it had completed".to_string(),
                n => format!(
                    "The {} before it completed and {} recorded",
                    crate::report::count(n, "step"),
                    if n == 1 { "is" } else { "are" }
                ),
            };
            format!(
                "this migration runs statement by statement and opens its own transaction with BEGIN at line {line}; the server rolled back everything since that BEGIN. {before}; nothing after the failing statement ran. Fix the statement and run the command again: it resumes at that BEGIN."
            )
        } else {
            let how = if unit.transactional {
                "it ran in a transaction of its own, which was rolled back"
            } else {
                "it ran outside any transaction and the server reported the error, so it did not complete"
            };
            let before = match unit_index {
                0 => "no step before it had completed".to_string(),
                1 => "the 1 step before it completed and is recorded".to_string(),
                n => format!("the {n} steps before it completed and are recorded"),
            };
            format!(
                "this migration runs in {} outside a single transaction and failed at step {}; {before}; {how}. Nothing after it ran. Fix the statement and run the command again: it resumes at this step.",
                crate::report::count(exec.units.len(), "step"),
                unit_index + 1
            )
        };
        match failure.error {
            DbError::Query(q) => RunError::Statement(Box::new(crate::error::StatementError {
                version: m.version.to_string(),
                name: m.name.clone(),
                path: exec.path.clone(),
                line: at.line,
                column: at.column,
                sqlstate: q.code.clone(),
                message: format!("{}: {}", q.severity, q.message),
                detail: q.detail.clone(),
                hint: q.hint.clone(),
                rewrite: step.and_then(|s| s.rewrite.as_deref().map(str::to_string)),
                outcome,
            })),
            other => RunError::Db(other),
        }
    }
}

/// The pause (jittered, 5 to 15 ms) between two NOWAIT looks of a unit that locks several
/// tables, and how many it takes before it runs its statements under `lock_timeout` (a wait
/// that may deadlock, which is retried) as a unit locking one table does: under a load that
/// keeps one of the tables busy nearly all the time, NOWAIT alone could take long to find them
/// all free at once.
const NOWAIT_PAUSE: Duration = Duration::from_millis(10);
const NOWAIT_LOOKS: u32 = 200;

/// The most statements a transactional unit sends at once, in one round trip: a larger one (a
/// data file of thousands of `INSERT`s) goes a statement at a time, so that what waits to be
/// sent stays small.
const SENT_WHOLE_STEPS_MAX: usize = 200;

/// A statement of a unit sent whole ([`Executor::try_sent_whole`]), for telling which one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Begin,
    /// The check that the migration sent before this one committed ([`crate::handoff`]).
    Gate,
    /// The timeouts and the guard's first look.
    Look,
    Step(usize),
    Record,
    Commit,
}

/// How a unit's first attempt meets the migrations around it ([`crate::handoff`]).
#[derive(Default)]
pub(crate) struct Relay<'a> {
    /// The attempt, already sent while the migration before ran.
    pub(crate) ahead: Option<SentWhole>,
    /// The next migration, preparing itself while this unit runs.
    pub(crate) successor: Option<&'a dyn Successor>,
}

/// A transactional unit sent whole ([`Executor::send_whole`]), its answers being read as they
/// come (by a task of their own, which reads them to the end even when this is dropped).
pub(crate) struct SentWhole {
    texts: Vec<WholeText>,
    /// Its first text takes the guard's locks `NOWAIT`.
    looked: bool,
    /// Where to note that its gate failed ([`crate::handoff::Gate::closed`]).
    gate_closed: Option<std::sync::Arc<AtomicBool>>,
    /// The text whose answer is awaited: the server is running it.
    reading: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    moved_on: std::sync::Arc<tokio::sync::Notify>,
    /// The first error: which text, and how many of its statements completed.
    answered: tokio::task::JoinHandle<Option<(usize, usize, DbError)>>,
}

/// One simple query of a unit sent whole: its text, its statements in order, and the unit's
/// statement in it with where that starts, in characters (as the server counts positions).
struct WholeText {
    sql: String,
    statements: Vec<Sent>,
    step: Option<(usize, usize)>,
}

/// The texts a transactional unit is sent as (see [`Executor::try_sent_whole`]): `begin`
/// (`BEGIN` and the timeouts); `look` and the first statement; each statement after it; the
/// last with `record` and `COMMIT`. All of it one text when `lone`. A statement may end in a
/// `--` comment: the separators around statements are on lines of their own.
fn whole_unit_texts(
    begin: &str,
    look: Option<&guard::FirstLook>,
    steps: &[Step],
    record: &str,
    lone: bool,
    gate: &Gate,
) -> Vec<WholeText> {
    const BETWEEN: &str = "\n;\n";
    let begin_statements = begin.split("; ").count();
    // Right after its `BEGIN`: nothing of the unit runs unless the one before committed.
    let (begin, checked) = match (&gate.after, begin.split_once("; ")) {
        (Some(token), Some((first, rest))) => {
            (format!("{first}; {}; {rest}", Gate::check_sql(token)), true)
        }
        _ => (begin.to_string(), false),
    };
    let mut texts = vec![WholeText {
        sql: begin,
        statements: std::iter::once(Sent::Begin)
            .chain(checked.then_some(Sent::Gate))
            .chain(std::iter::repeat_n(Sent::Look, begin_statements - 1))
            .collect(),
        step: None,
    }];
    for (i, step) in steps.iter().enumerate() {
        if !lone {
            texts.push(WholeText {
                sql: String::new(),
                statements: Vec::new(),
                step: None,
            });
        }
        let Some(text) = texts.last_mut() else {
            continue;
        };
        if let Some(look) = look.filter(|_| i == 0) {
            if !text.sql.is_empty() {
                text.sql.push_str("; ");
            }
            text.sql.push_str(&look.sql);
            text.statements
                .extend(std::iter::repeat_n(Sent::Look, look.statements));
        }
        if !text.sql.is_empty() {
            text.sql.push_str(BETWEEN);
        }
        text.step = Some((i, text.sql.chars().count()));
        text.sql.push_str(step.sql());
        text.sql.push_str(BETWEEN);
        text.statements.push(Sent::Step(i));
    }
    if let Some(text) = texts.last_mut() {
        if !record.is_empty() {
            text.sql.push_str(record);
            text.sql.push_str(";\n");
            text.statements.push(Sent::Record);
        }
        if let Some(token) = &gate.mark {
            text.sql.push_str(&Gate::mark_sql(token));
            text.sql.push_str(";\n");
            text.statements.push(Sent::Record);
        }
        text.sql.push_str("COMMIT");
        text.statements.push(Sent::Commit);
    }
    texts
}

/// The wait before retrying a unit that hit `lock_timeout`: the backoff delay with jitter,
/// never more than the documented cap (jitter applied after the cap once gave 13.4 s waits
/// against a 10 s maximum).
fn retry_wait(delay: Duration, jitter: f64, max: Duration) -> Duration {
    delay.mul_f64(jitter).min(max)
}

fn millis(d: Duration) -> String {
    format!("'{}ms'", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(sql: &str) -> Step {
        Step::generated(sql.to_string(), 0..0, "test".to_string())
    }

    #[test]
    fn a_unit_sent_whole_is_begin_then_a_text_per_statement_or_one_text_alone() {
        let begin =
            crate::units::begin_with_timeouts(Duration::from_millis(500), Duration::from_secs(60));
        let look = guard::FirstLook {
            sql: "SELECT 1; LOCK TABLE ONLY t IN SHARE MODE NOWAIT".to_string(),
            statements: 2,
        };
        let steps = [
            step("CREATE INDEX i ON t (a) -- ends in a comment"),
            step("ALTER TABLE t ADD COLUMN b int"),
            step("UPDATE t SET b = 1"),
        ];
        let record = "DELETE FROM pgshift.migrations WHERE version = '1'";
        let texts = whole_unit_texts(&begin, Some(&look), &steps, record, false, &Gate::default());
        assert_eq!(texts.len(), 4);
        assert_eq!(texts[0].sql, begin);
        assert_eq!(texts[0].statements, [Sent::Begin, Sent::Look, Sent::Look]);
        assert_eq!(texts[1].statements, [Sent::Look, Sent::Look, Sent::Step(0)]);
        assert_eq!(texts[2].statements, [Sent::Step(1)]);
        assert_eq!(
            texts[3].statements,
            [Sent::Step(2), Sent::Record, Sent::Commit]
        );
        assert!(texts[3].sql.ends_with(&format!("{record};\nCOMMIT")));
        // Where each text's statement starts, in characters.
        for (i, text) in texts.iter().enumerate().skip(1) {
            let (at, start) = text.step.expect("a statement");
            assert_eq!(at, i - 1);
            let rest: String = text.sql.chars().skip(start).collect();
            assert!(rest.starts_with(steps[at].sql()), "{rest}");
        }
        // The comment ends with its line: the `;` after it is a statement separator.
        assert!(texts[1].sql.ends_with("-- ends in a comment\n;\n"));

        let lone = whole_unit_texts(&begin, Some(&look), &steps[..1], "", true, &Gate::default());
        assert_eq!(lone.len(), 1);
        assert_eq!(
            lone[0].statements,
            [
                Sent::Begin,
                Sent::Look,
                Sent::Look,
                Sent::Look,
                Sent::Look,
                Sent::Step(0),
                Sent::Commit
            ]
        );
        let (_, start) = lone[0].step.expect("the statement");
        let rest: String = lone[0].sql.chars().skip(start).collect();
        assert!(rest.starts_with("CREATE INDEX i ON t"), "{rest}");
        assert!(lone[0].sql.starts_with(&begin));
    }

    #[test]
    fn a_unit_sent_behind_another_checks_its_gate_right_after_begin_and_marks_before_commit() {
        let begin =
            crate::units::begin_with_timeouts(Duration::from_millis(500), Duration::from_secs(60));
        let gate = Gate {
            after: Some("a.1".to_string()),
            mark: Some("a.2".to_string()),
            closed: None,
        };
        let steps = [step("DROP TABLE t"), step("DROP TYPE k")];
        let record = "DELETE FROM pgshift.migrations WHERE version = '1'";
        let texts = whole_unit_texts(&begin, None, &steps, record, false, &gate);
        assert!(texts[0].sql.starts_with(&format!(
            "BEGIN; {}; SET LOCAL lock_timeout",
            Gate::check_sql("a.1")
        )));
        assert_eq!(
            texts[0].statements,
            [Sent::Begin, Sent::Gate, Sent::Look, Sent::Look]
        );
        assert!(texts[2]
            .sql
            .ends_with(&format!("{record};\n{};\nCOMMIT", Gate::mark_sql("a.2"))));
        assert_eq!(
            texts[2].statements,
            [Sent::Step(1), Sent::Record, Sent::Record, Sent::Commit]
        );
        let lone = whole_unit_texts(&begin, None, &steps[..1], record, true, &gate);
        assert_eq!(lone.len(), 1);
        assert_eq!(lone[0].statements[..2], [Sent::Begin, Sent::Gate]);
        assert!(lone[0].sql.ends_with("';\nCOMMIT"));
    }

    #[test]
    fn the_jittered_retry_wait_never_exceeds_the_cap() {
        let max = Duration::from_secs(10);
        for jitter in [0.5, 1.0, 1.34, 1.49999] {
            assert!(retry_wait(max, jitter, max) <= max);
            assert!(retry_wait(Duration::from_secs(8), jitter, max) <= max);
        }
        assert_eq!(
            retry_wait(Duration::from_millis(200), 0.5, max),
            Duration::from_millis(100)
        );
    }
}
