//! `pgshift trace`: run migrations statement by statement and record what each one really
//! did — the relation locks it took (mode, relation, kind), whether it rewrote a table or
//! index, what it created, dropped or altered, and how long it took — then compare that with
//! what the analyzer predicts ([`pgshift_lint::statement_effects`]). Every disagreement is
//! reported: that is how holes in pgshift's lock knowledge are found.
//!
//! How locks are seen (the way eugene does it): the migration runs on one session; after each
//! statement, while its transaction is still open and nothing has been released, a second
//! session reads the first one's rows in `pg_locks`. Statements that cannot run in a
//! transaction (`CREATE INDEX CONCURRENTLY`, ...) release their locks as they finish, so for
//! them the second session samples `pg_locks` while the statement runs ([`LockSource::Sampled`]);
//! a very short lock can slip between two samples.
//!
//! Relations created by the migration itself are left out of the lock report: nobody else can
//! be waiting for them. Where it runs:
//! - [`Target::Throwaway`]: a throwaway cluster (or any server given by URL that lets us
//!   `CREATE DATABASE`), in a fresh database, each migration committed so the next builds on
//!   it; migrations before the first traced one are replayed untraced.
//! - [`Target::Database`]: an existing database. The pending migrations run inside ONE
//!   transaction that is rolled back at the end (committed only with `commit`). Statements that
//!   cannot run in a transaction are then skipped, with a note.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgshift_db::trace::{
    relation_locks, relations, sequential_scans, RelationChanges, RelationState,
};
use pgshift_db::{
    ClusterOptions, Connection, DatabaseUrl, DbError, LockLevel, RelationKind, TempCluster,
};
use pgshift_lint::{Context, PgVersion};
use pgshift_source::{Migration, MigrationSet, Version};
use pgshift_sql::ident::{quote_ident, QualifiedName};
use pgshift_sql::LineIndex;
use serde::Serialize;

use futures_util::future::BoxFuture;

use crate::error::{Result, RunError};
use crate::executor::{Executor, Record, StepHook, Transactions};
use crate::history::{self, NewRow, RowState};
use crate::migrator::Migrator;
use crate::options::RunOptions;
use crate::prepare::{prepare, Purpose};
use crate::units::Step;
use crate::Silent;

/// How often `pg_locks` is read while a statement outside a transaction runs.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(1);

/// Where to trace.
#[derive(Debug, Clone)]
pub enum Target {
    /// A fresh database on a throwaway cluster started from `pg_bin` (or the binaries found on
    /// the machine), or on the server at `server` when given (which must allow
    /// `CREATE DATABASE`).
    Throwaway {
        pg_bin: Option<PathBuf>,
        server: Option<DatabaseUrl>,
    },
    /// An existing database: pending migrations run in one transaction, rolled back unless
    /// `commit`.
    Database { url: DatabaseUrl, commit: bool },
}

/// What to trace and how.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    pub target: Target,
    /// SQL file loaded before the migrations (throwaway target only), so statements run
    /// against data.
    pub seed: Option<PathBuf>,
    /// Trace from this version on; earlier migrations are replayed untraced.
    pub from: Option<Version>,
    /// `lock_timeout` and `statement_timeout` for the traced statements.
    pub run: RunOptions,
}

impl TraceOptions {
    /// Tracing on a throwaway cluster from the binaries found on the machine.
    pub fn throwaway() -> TraceOptions {
        TraceOptions {
            target: Target::Throwaway {
                pg_bin: None,
                server: None,
            },
            seed: None,
            from: None,
            run: RunOptions::default(),
        }
    }
}

/// How the locks of a statement were seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockSource {
    /// Read once after the statement, inside its still-open transaction: complete.
    AfterStatement,
    /// Sampled while the statement ran outside a transaction: may miss short locks.
    Sampled,
}

/// One lock a statement took on a relation that existed before its migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedLock {
    pub relation: QualifiedName,
    pub kind: RelationKind,
    pub mode: LockLevel,
}

/// What the analyzer predicted for a statement on a relation that existed before the
/// migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PredictedLock {
    pub relation: String,
    pub mode: LockLevel,
    pub rewrite: bool,
}

/// Everything traced about one statement.
#[derive(Debug, Clone, Serialize)]
pub struct StatementTrace {
    pub line: usize,
    pub column: usize,
    pub sql: String,
    /// Ran inside a transaction (the migration's own, or the rolled-back trace transaction).
    pub in_transaction: bool,
    pub lock_source: LockSource,
    /// Locks newly taken by this statement (not held before it in the same transaction).
    pub locks: Vec<ObservedLock>,
    pub rewritten: Vec<String>,
    /// Tables the statement read in full (sequential scans it started); only known for
    /// statements traced inside a transaction.
    pub scanned: Vec<String>,
    pub created: Vec<String>,
    pub dropped: Vec<String>,
    pub altered: Vec<String>,
    pub duration_ms: f64,
    pub predicted: Vec<PredictedLock>,
    /// Where observation and prediction disagree, in words.
    pub disagreements: Vec<String>,
}

/// One traced migration.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationTrace {
    pub version: String,
    pub name: String,
    pub path: String,
    pub statements: Vec<StatementTrace>,
    /// Why some statements were not run (e.g. CONCURRENTLY inside the rolled-back transaction).
    pub notes: Vec<String>,
    /// The statement that failed, `file:line:column: message`; tracing stopped there.
    pub error: Option<String>,
}

/// The result of `pgshift trace`.
#[derive(Debug, Clone, Serialize)]
pub struct TraceReport {
    /// `15.18`.
    pub server_version: String,
    /// Where it ran: "throwaway cluster" or the redacted URL.
    pub target: String,
    /// Whether the traced migrations' changes were kept.
    pub committed: bool,
    pub migrations: Vec<MigrationTrace>,
    pub notes: Vec<String>,
}

impl TraceReport {
    /// Every disagreement, with the file and line of its statement.
    pub fn disagreements(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.migrations {
            for s in &m.statements {
                for d in &s.disagreements {
                    out.push(format!("{}:{}: {d}", m.path, s.line));
                }
            }
        }
        out
    }

    /// The first statement error, if tracing stopped on one.
    pub fn error(&self) -> Option<&str> {
        self.migrations.iter().find_map(|m| m.error.as_deref())
    }

    /// Number of statements traced.
    pub fn statement_count(&self) -> usize {
        self.migrations.iter().map(|m| m.statements.len()).sum()
    }
}

/// Traces `set` as `options` say.
pub async fn trace(set: &MigrationSet, options: &TraceOptions) -> Result<TraceReport> {
    match &options.target {
        Target::Throwaway { pg_bin, server } => {
            let server = ScratchServer::start(pg_bin.clone(), server.clone()).await?;
            let url = server.create_database("pgshift_trace").await?;
            let report = trace_fresh_database(&url, &server.describe(), set, options).await;
            server.drop_database("pgshift_trace").await;
            report
        }
        Target::Database { url, commit } => trace_existing(url, *commit, set, options).await,
    }
}

/// Traces every migration of `set` (from `options.from`) in an empty database, committing
/// each. `verify` calls this on its throwaway cluster.
pub async fn trace_fresh_database(
    url: &DatabaseUrl,
    target: &str,
    set: &MigrationSet,
    options: &TraceOptions,
) -> Result<TraceReport> {
    let worker = pgshift_db::connect(url).await?;
    let observer = pgshift_db::connect(url).await?;
    if let Some(seed) = &options.seed {
        load_seed(&worker, seed).await?;
    }
    let mut notes = Vec::new();
    let mut first = 0;
    if let Some(from) = &options.from {
        first = set
            .migrations
            .iter()
            .position(|m| m.version >= *from)
            .unwrap_or(set.migrations.len());
        if first > 0 {
            let last_untraced = set.migrations[first - 1].version.clone();
            let conn = pgshift_db::connect(url).await?;
            let run = RunOptions {
                online_complete: true,
                new_tables_as_in_use: true,
                ..options.run.clone()
            };
            let mut migrator = Migrator::from_connection(conn, set.clone(), run);
            migrator.up(Some(&last_untraced), &Silent).await?;
            notes.push(format!(
                "{first} earlier migration(s) replayed untraced, up to {last_untraced}"
            ));
        }
    }
    let version_num = worker.server_version_num();
    let mut tracer = Tracer::new(&worker, &observer, version_num, &options.run, true);
    let mut migrations = Vec::new();
    for m in &set.migrations[first..] {
        let traced = tracer.migration(m).await?;
        let failed = traced.error.is_some();
        migrations.push(traced);
        if failed {
            notes.push("tracing stopped at the failing statement".to_string());
            break;
        }
    }
    Ok(TraceReport {
        server_version: version_text(version_num),
        target: target.to_string(),
        committed: true,
        migrations,
        notes,
    })
}

/// Traces the pending migrations of an existing database in one transaction.
async fn trace_existing(
    url: &DatabaseUrl,
    commit: bool,
    set: &MigrationSet,
    options: &TraceOptions,
) -> Result<TraceReport> {
    let worker = pgshift_db::connect(url).await?;
    let observer = pgshift_db::connect(url).await?;
    let version_num = worker.server_version_num();
    // What another tool applied counts as applied, as it does for `up`: never traced (and,
    // with `commit`, never run) a second time.
    let applied: BTreeSet<String> = crate::adopt::history_view(&worker, set)
        .await?
        .into_iter()
        .filter(|r| r.state.is_done())
        .map(|r| r.version)
        .collect();
    let pending: Vec<&Migration> = set
        .migrations
        .iter()
        .filter(|m| !applied.contains(m.version.as_str()))
        .filter(|m| options.from.as_ref().is_none_or(|f| m.version >= *f))
        .collect();
    let mut notes = Vec::new();
    if pending.is_empty() {
        notes.push("nothing pending: every migration is applied".to_string());
    }
    let mut migrations = Vec::new();
    if commit {
        // Each migration as `up` would run it (committed unit by unit), recorded in the history.
        let mut tracer = Tracer::new(&worker, &observer, version_num, &options.run, true);
        history::ensure(&worker).await?;
        // With record_in_old_tool, what is committed goes into the old tool's table too.
        let old_tool = if options.run.record_in_old_tool {
            match crate::old_tool::OldTool::find(&worker, set).await? {
                Ok(found) => {
                    history::ensure_foreign(&worker).await?;
                    Some(found)
                }
                Err(crate::old_tool::NotWritten::Unsupported { tool }) => {
                    notes.push(format!(
                        "record_in_old_tool is on, but pgshift cannot write {tool}'s history: nothing was recorded for {tool}"
                    ));
                    None
                }
                Err(crate::old_tool::NotWritten::NoTable { tool, table }) => {
                    notes.push(format!(
                        "record_in_old_tool is on, but this database has no {table} ({tool}'s history table): nothing was recorded for {tool}"
                    ));
                    None
                }
            }
        } else {
            None
        };
        for m in pending {
            let traced = tracer.migration(m).await?;
            let failed = traced.error.is_some();
            migrations.push(traced);
            if failed {
                notes.push("tracing stopped at the failing statement; the migrations before it are committed and recorded".to_string());
                break;
            }
            // pgshift's record and the old tool's row together, or neither.
            let rows: Vec<crate::old_tool::OldToolRow> =
                old_tool.iter().map(|o| o.applied(set, m)).collect();
            crate::migrator::in_transaction(&worker, async {
                history::upsert(&worker, &history_row(m, set)).await?;
                crate::old_tool::write_rows(&worker, &rows).await
            })
            .await?;
            for row in &rows {
                notes.push(format!(
                    "{} recorded as applied in {}'s {} (record_in_old_tool)",
                    row.version, row.tool, row.table
                ));
            }
        }
    } else {
        worker
            .batch_execute(&crate::units::begin_with_timeouts(
                options.run.lock_timeout,
                options.run.statement_timeout,
            ))
            .await
            .map_err(DbError::from)?;
        let mut tracer = Tracer::new(&worker, &observer, version_num, &options.run, false);
        let mut outcome = Ok(());
        for m in pending {
            match tracer.migration(m).await {
                Ok(traced) => {
                    let failed = traced.error.is_some();
                    migrations.push(traced);
                    if failed {
                        notes.push("tracing stopped at the failing statement".to_string());
                        break;
                    }
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        // Whatever happened, nothing of this trace is kept.
        let rollback = worker
            .batch_execute("ROLLBACK")
            .await
            .map_err(DbError::from);
        outcome?;
        rollback?;
        notes.push("everything was rolled back: the database is unchanged".to_string());
    }
    Ok(TraceReport {
        server_version: version_text(version_num),
        target: url.redacted(),
        committed: commit,
        migrations,
        notes,
    })
}

fn history_row(m: &Migration, set: &MigrationSet) -> NewRow {
    NewRow {
        version: m.version.to_string(),
        name: m.name.clone(),
        checksum: m.checksum(),
        state: RowState::Applied,
        progress: 1,
        units: 1,
        duration_ms: None,
        down_sql: m.recorded_down(),
        path: m.up.path.display().to_string(),
        format: set.format.name().to_string(),
        unit_digests: Vec::new(),
    }
}

/// `150018` → `15.18`.
pub fn version_text(num: i32) -> String {
    format!("{}.{}", num / 10_000, num % 10_000)
}

/// Loads a seed SQL file; errors name the file.
pub(crate) async fn load_seed(conn: &Connection, path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        RunError::Usage(format!("cannot read the seed file {}: {e}", path.display()))
    })?;
    conn.batch_execute(&text).await.map_err(|e| {
        let e = DbError::from(e);
        RunError::Usage(format!(
            "{}: the seed SQL failed: {e}. Fix the seed file; no migration was run",
            path.display()
        ))
    })
}

/// Traces migrations on one session: runs their units with the executor `up` uses, watching
/// each step ([`TraceHook`]) from a second session.
struct Tracer<'c> {
    worker: &'c Connection,
    observer: &'c Connection,
    ctx: Context,
    run: &'c RunOptions,
    /// Each migration's transactional units get their own `BEGIN ... COMMIT`; otherwise the
    /// caller holds one transaction open around everything.
    own_transactions: bool,
}

impl<'c> Tracer<'c> {
    fn new(
        worker: &'c Connection,
        observer: &'c Connection,
        version_num: i32,
        run: &'c RunOptions,
        own_transactions: bool,
    ) -> Tracer<'c> {
        let version = PgVersion::parse(&version_num.to_string()).unwrap_or(PgVersion::DEFAULT);
        Tracer {
            worker,
            observer,
            ctx: Context::new(version, true),
            run,
            own_transactions,
        }
    }

    async fn migration(&mut self, m: &Migration) -> Result<MigrationTrace> {
        // The statements as written, each with the effects the analyzer predicts, walked with
        // the context of the migrations traced before it.
        let exec = prepare(
            self.worker,
            m.version.as_str(),
            &m.up,
            self.run,
            Purpose::Trace,
            &mut self.ctx,
        )
        .await?
        .exec;
        let lines = LineIndex::new(&m.up.file_text);
        let text: &str = &m.up.file_text;
        let mut traced = MigrationTrace {
            version: m.version.to_string(),
            name: m.name.clone(),
            path: m.up.path.display().to_string(),
            statements: Vec::new(),
            notes: Vec::new(),
            error: None,
        };
        let existing = relations(self.worker).await?;
        let executor = Executor {
            conn: self.worker,
            options: self.run,
            transactions: if self.own_transactions {
                Transactions::Own
            } else {
                Transactions::Caller
            },
            new_tables: crate::guard::MadeInRun::Named(&[]),
        };
        if self.own_transactions {
            executor.set_session_timeouts().await?;
        }
        for (index, unit) in exec.units.iter().enumerate() {
            // A statement PostgreSQL refuses in a transaction block, or the author's own
            // transaction control, cannot run inside the rolled-back trace transaction.
            let must_run_alone = !unit.transactional
                && unit.steps.iter().any(|step| {
                    step.facts.outside_transaction.is_some()
                        || step.facts.transaction_control.is_some()
                });
            if must_run_alone && !self.own_transactions {
                for step in &unit.steps {
                    let at = lines.line_col(text, step.origin.start);
                    traced.notes.push(format!(
                        "line {}: not run: {} cannot run inside the rolled-back trace transaction; trace on a throwaway cluster (without --database-url) to see it",
                        at.line,
                        clip(step.sql(), 40)
                    ));
                }
                continue;
            }
            let mut hook = TraceHook {
                worker: self.worker,
                observer: self.observer,
                existing: &existing,
                lines: &lines,
                text,
                caller_transaction: !self.own_transactions,
                held: BTreeSet::new(),
                before: BTreeMap::new(),
                scans_before: BTreeMap::new(),
                statements: Vec::new(),
            };
            let outcome = executor
                .try_unit(unit, index, &Record::Nothing, &mut hook, None, None)
                .await;
            traced.statements.append(&mut hook.statements);
            if let Err(failure) = outcome {
                let origin = unit.steps.get(failure.step).map_or(0, |s| s.origin.start);
                let at = lines.line_col(text, origin);
                traced.error = Some(format!(
                    "{}:{}:{}: {}",
                    m.up.path.display(),
                    at.line,
                    at.column,
                    failure.error
                ));
                return Ok(traced);
            }
        }
        // The next migration runs with the session as it would find it in a run of its own
        // (a pg_dump baseline empties `search_path`).
        // Statements prepared on the session may have been deallocated with it.
        if crate::migrator::resets_session(&exec) {
            self.worker.forget_prepared();
            self.worker.restore_search_path().await?;
        }
        Ok(traced)
    }
}

/// What the tracer records of each step, from the observer session: the relation locks the
/// worker holds (read after a statement in a transaction, sampled while a statement outside
/// one runs), the relations created, dropped and rewritten, and the tables read whole.
struct TraceHook<'h> {
    worker: &'h Connection,
    observer: &'h Connection,
    /// The relations before the migration: only they count.
    existing: &'h BTreeMap<u32, RelationState>,
    lines: &'h LineIndex,
    text: &'h str,
    /// Everything runs inside one transaction the caller holds.
    caller_transaction: bool,
    /// The locks held before the current step.
    held: BTreeSet<(u32, LockLevel)>,
    before: BTreeMap<u32, RelationState>,
    scans_before: BTreeMap<u32, i64>,
    statements: Vec<StatementTrace>,
}

impl TraceHook<'_> {
    /// The granted relation locks of the worker session, as seen by the observer.
    async fn current_locks(&self) -> std::result::Result<Vec<(u32, LockLevel)>, DbError> {
        Ok(relation_locks(self.observer, self.worker.backend_pid())
            .await?
            .into_iter()
            .filter(|l| l.granted)
            .map(|l| (l.oid, l.mode))
            .collect())
    }
}

impl StepHook for TraceHook<'_> {
    fn unit_started(&mut self) -> BoxFuture<'_, std::result::Result<(), DbError>> {
        Box::pin(async move {
            // Inside the caller's transaction, earlier statements' locks are still held: only
            // what is new counts.
            self.held = if self.caller_transaction {
                self.current_locks().await?.into_iter().collect()
            } else {
                BTreeSet::new()
            };
            Ok(())
        })
    }

    fn before_step<'a>(
        &'a mut self,
        _step: &'a Step,
        in_transaction: bool,
    ) -> BoxFuture<'a, std::result::Result<(), DbError>> {
        Box::pin(async move {
            self.before = relations(self.worker).await?;
            self.scans_before = if in_transaction {
                sequential_scans(self.worker).await?
            } else {
                BTreeMap::new()
            };
            Ok(())
        })
    }

    fn while_running<'a>(&'a self, done: &'a AtomicBool) -> BoxFuture<'a, Vec<(u32, LockLevel)>> {
        Box::pin(async move {
            let mut seen: BTreeSet<(u32, LockLevel)> = BTreeSet::new();
            while !done.load(Ordering::SeqCst) {
                if let Ok(locks) = self.current_locks().await {
                    seen.extend(locks);
                }
                tokio::time::sleep(SAMPLE_INTERVAL).await;
            }
            seen.into_iter().collect()
        })
    }

    fn after_step<'a>(
        &'a mut self,
        step: &'a Step,
        in_transaction: bool,
        sampled: Vec<(u32, LockLevel)>,
        took: Duration,
    ) -> BoxFuture<'a, std::result::Result<(), DbError>> {
        Box::pin(async move {
            let at = self.lines.line_col(self.text, step.origin.start);
            let now_held: Vec<(u32, LockLevel)> = if in_transaction {
                self.current_locks().await?
            } else {
                sampled
            };
            let after = relations(self.worker).await?;
            let scanned: Vec<String> = if in_transaction {
                sequential_scans(self.worker)
                    .await?
                    .into_iter()
                    .filter(|(oid, n)| self.scans_before.get(oid).is_none_or(|b| n > b))
                    .filter_map(|(oid, _)| self.existing.get(&oid).map(|r| shown(&r.name)))
                    .collect()
            } else {
                Vec::new()
            };
            let new_locks: Vec<(u32, LockLevel)> = now_held
                .iter()
                .filter(|l| !self.held.contains(l))
                .copied()
                .collect();
            self.held.extend(now_held.iter().copied());
            let changes = RelationChanges::between(&self.before, &after);
            let source = if in_transaction {
                LockSource::AfterStatement
            } else {
                LockSource::Sampled
            };
            let mut statement_trace = describe_statement(
                step,
                at.line,
                at.column,
                in_transaction,
                source,
                self.existing,
                &self.before,
                &self.held,
                &new_locks,
                &changes,
                &step.facts.effects,
                took,
            );
            statement_trace.scanned = scanned;
            self.statements.push(statement_trace);
            Ok(())
        })
    }
}

/// Relation kinds whose locks are compared with predictions even when the prediction does not
/// name them (indexes, sequences and the like are locked as a side effect of their table).
fn is_table_like(kind: RelationKind) -> bool {
    matches!(
        kind,
        RelationKind::Table
            | RelationKind::PartitionedTable
            | RelationKind::MaterializedView
            | RelationKind::ForeignTable
            | RelationKind::View
    )
}

/// Whether a predicted relation name means this relation.
fn names_match(predicted: &QualifiedName, actual: &QualifiedName) -> bool {
    predicted.name == actual.name
        && match &predicted.schema {
            Some(schema) => actual.schema.as_deref() == Some(schema.as_str()),
            None => true,
        }
}

/// A relation name for people: bare in `public`, schema-qualified elsewhere.
pub(crate) fn shown(name: &QualifiedName) -> String {
    match name.schema.as_deref() {
        Some("public") | None => name.name.clone(),
        Some(schema) => format!("{schema}.{}", name.name),
    }
}

#[allow(clippy::too_many_arguments)]
fn describe_statement(
    step: &Step,
    line: usize,
    column: usize,
    in_transaction: bool,
    source: LockSource,
    existing: &BTreeMap<u32, RelationState>,
    current: &BTreeMap<u32, RelationState>,
    held: &BTreeSet<(u32, LockLevel)>,
    new_locks: &[(u32, LockLevel)],
    changes: &RelationChanges,
    effects: &[pgshift_lint::Effect],
    duration: Duration,
) -> StatementTrace {
    // Only relations that existed before the migration count: the migration's own new
    // objects are invisible to everyone else.
    let locks: Vec<ObservedLock> = new_locks
        .iter()
        .filter_map(|(oid, mode)| {
            existing.get(oid).map(|r| ObservedLock {
                relation: r.name.clone(),
                kind: r.kind,
                mode: *mode,
            })
        })
        .collect();
    let held_on = |oid: u32| -> Vec<LockLevel> {
        held.iter()
            .filter(|(o, _)| *o == oid)
            .map(|(_, m)| *m)
            .collect()
    };
    let existed = |oid: &u32| existing.contains_key(oid);
    let rewritten_oids: BTreeSet<u32> = changes
        .rewritten
        .iter()
        .map(|r| r.oid)
        .filter(existed)
        .collect();

    let mut predicted = Vec::new();
    let mut disagreements = Vec::new();
    let mut predicted_oids = BTreeSet::new();
    let mut rewrite_predicted = BTreeSet::new();
    let mut predicted_mode: BTreeMap<u32, LockLevel> = BTreeMap::new();
    for effect in effects {
        // By the name it has now (the migration may have renamed it, or dropped it and made
        // another of that name), among the relations there before the migration.
        let Some((oid, relation)) = current
            .iter()
            .find(|(oid, r)| names_match(&effect.table, &r.name) && existing.contains_key(oid))
        else {
            // A relation this migration creates (or one that does not exist).
            continue;
        };
        predicted_oids.insert(*oid);
        let strongest = predicted_mode.entry(*oid).or_insert(effect.lock);
        *strongest = (*strongest).max(effect.lock);
        if effect.rewrite {
            rewrite_predicted.insert(*oid);
        }
        let mode = effect.lock;
        let name = shown(&relation.name);
        predicted.push(PredictedLock {
            relation: name.clone(),
            mode,
            rewrite: effect.rewrite,
        });
        let observed = held_on(*oid);
        let this_statement: Vec<LockLevel> = new_locks
            .iter()
            .filter(|(o, _)| o == oid)
            .map(|(_, m)| *m)
            .collect();
        match source {
            LockSource::AfterStatement if !observed.contains(&mode) => {
                disagreements.push(format!(
                    "predicted {mode} on {name}, observed {}",
                    modes_text(&this_statement)
                ));
            }
            LockSource::Sampled
                if !this_statement.is_empty() && !this_statement.contains(&mode) =>
            {
                disagreements.push(format!(
                    "predicted {mode} on {name}, sampled {}",
                    modes_text(&this_statement)
                ));
            }
            _ => {}
        }
        if let Some(stronger) = this_statement.iter().filter(|m| **m > mode).max() {
            disagreements.push(format!(
                "took {stronger} on {name}, stronger than the predicted {mode}"
            ));
        }
        let was_rewritten = rewritten_oids.contains(oid);
        if effect.rewrite && !was_rewritten && relation.filenode != 0 {
            disagreements.push(format!(
                "predicted a rewrite of {name}; it was not rewritten"
            ));
        }
        if !effect.rewrite && was_rewritten {
            disagreements.push(format!("{name} was rewritten; no rewrite was predicted"));
        }
    }
    // A lock on a partition (or a partition's index) is the lock its partitioned table's
    // prediction covers: PostgreSQL takes it on every partition the statement reaches.
    let covered_by = |oid: &u32| {
        let mut at = Some(*oid);
        for _ in 0..64 {
            let o = at?;
            if predicted_oids.contains(&o) {
                return Some(o);
            }
            at = existing.get(&o).and_then(|r| r.parent);
        }
        None
    };
    let covered = |oid: &u32| covered_by(oid).is_some();
    for lock in &locks {
        let Some((oid, _)) = existing.iter().find(|(_, r)| r.name == lock.relation) else {
            continue;
        };
        // A partition's lock is compared with its partitioned table's prediction.
        if let Some(ancestor) = covered_by(oid).filter(|a| a != oid) {
            let predicted = predicted_mode.get(&ancestor).copied();
            if let Some(predicted) = predicted.filter(|p| lock.mode > *p) {
                disagreements.push(format!(
                    "took {} on {} {}, stronger than the predicted {predicted} on {}",
                    lock.mode,
                    kind_text(lock.kind),
                    shown(&lock.relation),
                    existing
                        .get(&ancestor)
                        .map(|r| shown(&r.name))
                        .unwrap_or_default()
                ));
            }
            continue;
        }
        // Reads (ACCESS SHARE) happen everywhere (a view's query) and block only ACCESS
        // EXCLUSIVE; a foreign key's check of the row it references takes ROW SHARE on the
        // referenced table, which blocks only EXCLUSIVE and ACCESS EXCLUSIVE. They are shown
        // but not compared.
        if covered(oid)
            || !is_table_like(lock.kind)
            || matches!(lock.mode, LockLevel::AccessShare | LockLevel::RowShare)
        {
            continue;
        }
        disagreements.push(format!(
            "took {} on {} {}; not predicted",
            lock.mode,
            kind_text(lock.kind),
            shown(&lock.relation)
        ));
    }
    for oid in &rewritten_oids {
        // A partition rewritten under its partitioned table's predicted rewrite.
        let predicted_rewrite = covered_by(oid).is_some_and(|o| rewrite_predicted.contains(&o));
        if predicted_oids.contains(oid) || predicted_rewrite {
            continue;
        }
        if let Some(r) = existing.get(oid).filter(|r| is_table_like(r.kind)) {
            disagreements.push(format!(
                "{} was rewritten; no rewrite was predicted",
                shown(&r.name)
            ));
        }
    }
    disagreements.dedup();

    let names = |list: &[pgshift_db::trace::ChangedRelation]| -> Vec<String> {
        list.iter()
            .filter(|r| r.kind != RelationKind::ToastTable)
            .map(|r| format!("{} {}", kind_text(r.kind), shown(&r.name)))
            .collect()
    };
    StatementTrace {
        line,
        column,
        sql: pgshift_sql::redact_secrets(step.sql().trim()).into_owned(),
        in_transaction,
        lock_source: source,
        locks,
        rewritten: names(
            &changes
                .rewritten
                .iter()
                .filter(|r| existed(&r.oid))
                .cloned()
                .collect::<Vec<_>>(),
        ),
        scanned: Vec::new(),
        created: names(&changes.created),
        dropped: names(&changes.dropped),
        altered: names(&changes.altered),
        duration_ms: duration.as_secs_f64() * 1000.0,
        predicted,
        disagreements,
    }
}

fn modes_text(modes: &[LockLevel]) -> String {
    if modes.is_empty() {
        "no new lock".to_string()
    } else {
        modes
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

fn kind_text(kind: RelationKind) -> &'static str {
    match kind {
        RelationKind::Table => "table",
        RelationKind::PartitionedTable => "partitioned table",
        RelationKind::View => "view",
        RelationKind::MaterializedView => "materialized view",
        RelationKind::Index => "index",
        RelationKind::PartitionedIndex => "partitioned index",
        RelationKind::Sequence => "sequence",
        RelationKind::ForeignTable => "foreign table",
        RelationKind::ToastTable => "toast table",
        RelationKind::CompositeType => "type",
    }
}

// ---- the server verify and trace run on ------------------------------------------------------

/// A server to make scratch databases on: a throwaway cluster, or a given server.
pub(crate) struct ScratchServer {
    cluster: Option<TempCluster>,
    admin: DatabaseUrl,
}

impl ScratchServer {
    /// Starts a throwaway cluster (from `pg_bin` when given), or uses `server`.
    pub(crate) async fn start(
        pg_bin: Option<PathBuf>,
        server: Option<DatabaseUrl>,
    ) -> Result<ScratchServer> {
        if let Some(admin) = server {
            return Ok(ScratchServer {
                cluster: None,
                admin,
            });
        }
        let options = match pg_bin {
            Some(dir) => ClusterOptions::default().bin_dir(dir),
            None => ClusterOptions::default(),
        };
        // initdb and pg_ctl block for a second or two.
        let cluster = tokio::task::spawn_blocking(move || TempCluster::start(options))
            .await
            .map_err(|e| {
                RunError::Usage(format!("the throwaway cluster could not be started: {e}"))
            })??;
        Ok(ScratchServer {
            admin: cluster.url(),
            cluster: Some(cluster),
        })
    }

    pub(crate) fn describe(&self) -> String {
        match &self.cluster {
            Some(c) => format!(
                "throwaway cluster (PostgreSQL {}, {})",
                version_text(c.server_version_num()),
                c.bin_dir().display()
            ),
            None => self.admin.redacted(),
        }
    }

    /// Creates an empty database (dropping a leftover of the same name) and returns its URL.
    pub(crate) async fn create_database(&self, name: &str) -> Result<DatabaseUrl> {
        let admin = pgshift_db::connect(&self.admin).await?;
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)),
            format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(name)),
        ] {
            admin.batch_execute(&sql).await.map_err(DbError::from)?;
        }
        Ok(self.admin.with_database(name))
    }

    /// Drops a scratch database; failures are ignored (a throwaway cluster goes anyway).
    pub(crate) async fn drop_database(&self, name: &str) {
        if let Ok(admin) = pgshift_db::connect(&self.admin).await {
            let _ = admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(name)
                ))
                .await;
        }
    }
}

// Rendering lives in `report::trace`; these names stay for callers of `trace::*`.
pub(crate) use crate::report::trace::{cell, clip, write_markdown_tables};
pub use crate::report::trace::{render_json, render_markdown, render_terminal};

#[cfg(test)]
mod tests {

    #[test]
    fn the_terminal_header_names_the_server_version_once() {
        let header = |target: &str| {
            let report = TraceReport {
                server_version: "15.20".into(),
                target: target.into(),
                committed: false,
                migrations: Vec::new(),
                notes: Vec::new(),
            };
            let mut out = Vec::new();
            render_terminal(&report, &mut out).expect("render");
            String::from_utf8_lossy(&out)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            header("throwaway cluster (PostgreSQL 15.20, /usr/lib/postgresql/15/bin)"),
            "trace on throwaway cluster (PostgreSQL 15.20, /usr/lib/postgresql/15/bin), rolled back"
        );
        assert_eq!(
            header("postgres://app@db/app"),
            "trace on postgres://app@db/app (PostgreSQL 15.20), rolled back"
        );
    }

    use super::*;

    fn relation(name: &str, kind: RelationKind) -> RelationState {
        RelationState {
            name: QualifiedName::qualified("public", name),
            kind,
            filenode: 100,
            signature: String::new(),
            parent: None,
        }
    }

    fn step(sql: &str) -> Step {
        let mut step = Step::generated(sql.to_string(), 0..sql.len(), String::new());
        step.rewrite = None;
        step
    }

    fn effects_of(sql: &str) -> Vec<pgshift_lint::Effect> {
        let parsed = pgshift_sql::parse(sql);
        let ctx = Context::new(PgVersion::DEFAULT, true);
        parsed
            .statements
            .first()
            .map(|s| pgshift_lint::statement_effects(&s.node, &ctx))
            .unwrap_or_default()
    }

    /// A statement traced inside its transaction: `locks` are the locks it took (and all the
    /// transaction holds).
    fn after_statement(
        sql: &str,
        existing: &BTreeMap<u32, RelationState>,
        current: &BTreeMap<u32, RelationState>,
        locks: &[(u32, LockLevel)],
        changes: &RelationChanges,
    ) -> StatementTrace {
        let held: BTreeSet<(u32, LockLevel)> = locks.iter().copied().collect();
        describe_statement(
            &step(sql),
            1,
            1,
            true,
            LockSource::AfterStatement,
            existing,
            current,
            &held,
            locks,
            changes,
            &effects_of(sql),
            Duration::ZERO,
        )
    }

    #[test]
    fn a_relation_renamed_or_made_again_in_the_migration_is_known_by_its_name_now() {
        // Renamed earlier in the migration: the UPDATE names the new name, the lock is on the
        // same relation.
        let sql = "UPDATE stats SET a = 1";
        let existing: BTreeMap<u32, RelationState> =
            [(1, relation("agent_stats", RelationKind::Table))].into();
        let current: BTreeMap<u32, RelationState> =
            [(1, relation("stats", RelationKind::Table))].into();
        let s = after_statement(
            sql,
            &existing,
            &current,
            &[(1, LockLevel::RowExclusive)],
            &RelationChanges::default(),
        );
        assert!(s.disagreements.is_empty(), "{:?}", s.disagreements);
        assert_eq!(s.predicted.len(), 1);

        // Dropped and made again: the new view is the migration's own, nothing is predicted
        // on the old one.
        let sql = "COMMENT ON VIEW v IS 'x'";
        let existing: BTreeMap<u32, RelationState> =
            [(1, relation("v", RelationKind::View))].into();
        let current: BTreeMap<u32, RelationState> = [(2, relation("v", RelationKind::View))].into();
        let s = after_statement(sql, &existing, &current, &[], &RelationChanges::default());
        assert!(s.disagreements.is_empty(), "{:?}", s.disagreements);
        assert!(s.predicted.is_empty(), "{:?}", s.predicted);
    }

    #[test]
    fn agreement_leaves_no_disagreement() {
        let sql = "CREATE INDEX i ON t (a)";
        let existing: BTreeMap<u32, RelationState> =
            [(1, relation("t", RelationKind::Table))].into();
        let s = after_statement(
            sql,
            &existing,
            &existing,
            &[(1, LockLevel::Share)],
            &RelationChanges::default(),
        );
        assert_eq!(s.locks.len(), 1);
        assert_eq!(s.predicted.len(), 1);
        assert!(s.disagreements.is_empty(), "{:?}", s.disagreements);
    }

    #[test]
    fn a_missing_stronger_or_unpredicted_lock_is_a_disagreement() {
        let sql = "CREATE INDEX i ON t (a)";
        let existing: BTreeMap<u32, RelationState> = [
            (1, relation("t", RelationKind::Table)),
            (2, relation("other", RelationKind::Table)),
        ]
        .into();
        let s = after_statement(
            sql,
            &existing,
            &existing,
            &[
                (1, LockLevel::AccessExclusive),
                (2, LockLevel::RowExclusive),
            ],
            &RelationChanges::default(),
        );
        let text = s.disagreements.join("\n");
        assert!(
            text.contains("predicted SHARE on t, observed ACCESS EXCLUSIVE"),
            "{text}"
        );
        assert!(
            text.contains("took ACCESS EXCLUSIVE on t, stronger than the predicted SHARE"),
            "{text}"
        );
        assert!(
            text.contains("took ROW EXCLUSIVE on table other; not predicted"),
            "{text}"
        );
    }

    #[test]
    fn an_unpredicted_rewrite_is_a_disagreement_and_new_objects_are_left_out() {
        let sql = "ALTER TABLE t ADD COLUMN c int";
        let existing: BTreeMap<u32, RelationState> =
            [(1, relation("t", RelationKind::Table))].into();
        let changes = RelationChanges {
            rewritten: vec![pgshift_db::trace::ChangedRelation {
                oid: 1,
                name: QualifiedName::qualified("public", "t"),
                kind: RelationKind::Table,
            }],
            ..RelationChanges::default()
        };
        let s = after_statement(
            sql,
            &existing,
            &existing,
            &[
                (1, LockLevel::AccessExclusive),
                (9, LockLevel::AccessExclusive),
            ],
            &changes,
        );
        // oid 9 did not exist before the migration: not reported.
        assert_eq!(s.locks.len(), 1);
        assert_eq!(s.rewritten, vec!["table t"]);
        assert!(
            s.disagreements
                .iter()
                .any(|d| d == "t was rewritten; no rewrite was predicted"),
            "{:?}",
            s.disagreements
        );
    }

    #[test]
    fn sampled_statements_without_observed_locks_do_not_disagree() {
        let sql = "CREATE INDEX CONCURRENTLY i ON t (a)";
        let existing: BTreeMap<u32, RelationState> =
            [(1, relation("t", RelationKind::Table))].into();
        let s = describe_statement(
            &step(sql),
            1,
            1,
            false,
            LockSource::Sampled,
            &existing,
            &existing,
            &BTreeSet::new(),
            &[],
            &RelationChanges::default(),
            &effects_of(sql),
            Duration::ZERO,
        );
        assert!(s.disagreements.is_empty(), "{:?}", s.disagreements);
    }

    #[test]
    fn versions_read_like_people_write_them() {
        assert_eq!(version_text(150018), "15.18");
        assert_eq!(version_text(170010), "17.10");
        assert_eq!(clip("SELECT   1\n FROM t", 40), "SELECT 1 FROM t");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
