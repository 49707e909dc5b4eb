//! `pgshift plan`: what `up` would do on *this* database, before it does it.
//!
//! For each pending migration and statement: the lock it takes and on which tables, each
//! table's live size (rows estimate and bytes, from the catalog), whether it rewrites or scans,
//! the safe rewrite `up` will run instead, an estimate of how long the part that blocks
//! reads or writes holds its lock, and the sessions that would conflict right now. Then the
//! seeds' pre-flight checklist, answered for this plan.
//!
//! The units planned are the ones `up` runs ([`crate::prepare`]), so the plan and the
//! execution cannot disagree. Planning reads the catalog and changes nothing (its session
//! sets a short `lock_timeout`, so sizing a never-analysed table cannot queue behind DDL).
//!
//! ## The estimate model
//!
//! A statement's work on an existing table takes `bytes / rate`, with `bytes` the table's
//! `pg_total_relation_size` and the rate by kind of work ([`PlanOptions`], all configurable):
//! a rewrite (`rewrite_mb_per_sec`, default 50 MB/s), a non-concurrent index build
//! (`index_mb_per_sec`, 30 MB/s), a scan (`scan_mb_per_sec`, 200 MB/s); catalog-only changes
//! take `catalog_ms` (1 ms). A lock taken in a transaction is held until it commits, so the
//! blocking time of a statement is its own work plus that of every later statement in the
//! same unit. Lock waits are not included: the runner bounds them with `lock_timeout`.

use std::collections::HashMap;
use std::time::Duration;

use pgshift_db::{Connection, DbError, Session, TableSize};
use pgshift_lint::{BreakingChange, Context, LockLevel, PgVersion};
use pgshift_source::{Migration, MigrationSet, Version};
use serde::Serialize;

use crate::error::RunError;
use crate::history::RowState;
use crate::options::RunOptions;
use crate::prepare::{prepare, Purpose};

/// How `plan` estimates and when it fails.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The options `up` would run with (`exact`, `on_drop`, timeouts).
    pub run: RunOptions,
    /// A statement that would hold a lock blocking reads or writes on a non-empty table for
    /// longer than this makes the plan fail (`--max-lock`).
    pub max_lock: Duration,
    pub rewrite_mb_per_sec: f64,
    pub index_mb_per_sec: f64,
    pub scan_mb_per_sec: f64,
    pub catalog_ms: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            run: RunOptions::default(),
            max_lock: Duration::from_secs(2),
            rewrite_mb_per_sec: 50.0,
            index_mb_per_sec: 30.0,
            scan_mb_per_sec: 200.0,
            catalog_ms: 1.0,
        }
    }
}

/// The rates the estimates used, stated in every report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimateModel {
    pub rewrite_mb_per_sec: f64,
    pub index_mb_per_sec: f64,
    pub scan_mb_per_sec: f64,
    pub catalog_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanReport {
    /// The database, password redacted.
    pub database: String,
    pub server_version: String,
    pub exact: bool,
    pub max_lock_ms: u64,
    pub model: EstimateModel,
    pub migrations: Vec<PlannedMigration>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedMigration {
    pub version: String,
    pub name: String,
    pub path: String,
    /// Units that commit on their own (1: the whole migration in one transaction).
    pub units: usize,
    /// Set when an earlier run stopped partway: the unit `up` resumes at.
    pub resumes_at: Option<usize>,
    /// The `pg_dump` file written first (`on_drop = "pg_dump"`).
    pub dump: Option<String>,
    pub statements: Vec<PlannedStatement>,
    pub checklist: Checklist,
    /// How it runs as an online (expand/contract) change, when it is one.
    pub online: Option<OnlineOutline>,
    /// Why it runs as written although it would break running code, when it cannot be
    /// planned as an online change.
    pub runs_as_written: Option<String>,
    /// `up` runs it as written instead of its rewritten statements, in one transaction, when
    /// its tables hold at most 1 MB in all and their locks are free at once
    /// ([`crate::small_tables`]): set when the migration may, and its tables are that small
    /// now.
    pub as_written_when_small: bool,
}

/// An online change's phases, as `plan` shows them: expand now, contract after the deploy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OnlineOutline {
    /// The phase of an online change already in progress (`expanding`, `expanded`, ...), whose
    /// stored plan this is; `None` for one not started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub operations: Vec<String>,
    /// What each unit of the expand does (`pgshift start`, or `up`).
    pub expand: Vec<String>,
    /// What each unit of the contract does (`pgshift complete`, after the deploy).
    pub contract: Vec<String>,
    /// What `pgshift rollback` does, before `complete`.
    pub rollback: Vec<String>,
    /// What works while expanded but breaks at `complete` unless changed first.
    pub caveats: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStatement {
    /// Line of the statement in its file.
    pub line: usize,
    /// The statement as written, on one line, shortened.
    pub sql: String,
    /// Every table the statement as written locks.
    pub tables: Vec<TableLock>,
    /// The steps `up` runs instead, when it rewrites the statement.
    pub runs_instead: Vec<RunStep>,
    /// The part that blocks reads or writes, as it will run.
    pub blocking: Option<Blocking>,
    /// Sessions holding or waiting for a lock that conflicts with it, right now.
    pub conflicting_now: Vec<SessionSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableLock {
    pub table: String,
    pub lock: LockLevel,
    pub rewrite: bool,
    pub scan: bool,
    /// -1 when unknown; `None` when the table does not exist yet.
    pub rows_estimate: Option<i64>,
    pub bytes: Option<i64>,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunStep {
    pub sql: String,
    pub purpose: String,
    /// `in the migration's transaction`, `own transaction` or `outside a transaction`.
    pub runs: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocking {
    pub table: String,
    pub lock: LockLevel,
    /// `reads and writes` or `writes`.
    pub blocks: String,
    pub estimate_ms: f64,
    /// Whether the table has rows (only then does the limit apply).
    pub table_has_rows: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub pid: i32,
    pub application_name: String,
    pub state: String,
    pub xact_age_ms: Option<u64>,
    pub query: String,
}

impl From<&Session> for SessionSummary {
    fn from(s: &Session) -> Self {
        SessionSummary {
            pid: s.pid,
            application_name: s.application_name.clone(),
            state: s.state.clone(),
            xact_age_ms: s
                .xact_age
                .map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
            query: one_line(&pgshift_sql::redact_secrets(&s.query), 80),
        }
    }
}

/// The seeds' pre-flight checklist, answered for one migration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checklist {
    pub backward_compatible: Answer,
    pub if_it_fails_halfway: Answer,
    pub rollback: Answer,
    pub locking: Answer,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// `true`: nothing to worry about; `false`: read `text`.
    pub ok: bool,
    pub text: String,
}

/// A statement over the `--max-lock` limit.
#[derive(Debug, Clone, PartialEq)]
pub struct OverLimit {
    pub version: String,
    pub line: usize,
    pub table: String,
    pub lock: LockLevel,
    pub estimate_ms: f64,
}

impl PlanReport {
    /// Statements that would hold a blocking lock on a non-empty table for longer than
    /// `max_lock_ms`: the reasons `plan` exits non-zero.
    pub fn over_limit(&self) -> Vec<OverLimit> {
        let mut out = Vec::new();
        // An online migration's statements do not run as written (the estimates describe the
        // file): its expand takes short locks, its contract one short lock per table.
        for m in self.migrations.iter().filter(|m| m.online.is_none()) {
            for s in &m.statements {
                if let Some(b) = &s.blocking {
                    if b.table_has_rows && b.estimate_ms > self.max_lock_ms as f64 {
                        out.push(OverLimit {
                            version: m.version.clone(),
                            line: s.line,
                            table: b.table.clone(),
                            lock: b.lock,
                            estimate_ms: b.estimate_ms,
                        });
                    }
                }
            }
        }
        out
    }
}

/// Plans every pending (or partly applied) migration of `set` against `conn`.
pub async fn plan(
    conn: &Connection,
    set: &MigrationSet,
    options: &PlanOptions,
) -> Result<PlanReport, RunError> {
    // Sizing a never-analysed table counts rows under ACCESS SHARE: never queue for it.
    conn.batch_execute("SET lock_timeout = '200ms'")
        .await
        .map_err(DbError::from)?;
    let num = conn.server_version_num();
    let pg = PgVersion::parse(&num.to_string()).unwrap_or_default();
    // Migrations another tool applied are not pending, even before the first `up` records them.
    let rows = crate::adopt::history_view(conn, set).await?;
    let mut migrations = Vec::new();
    // What the pending migrations before each establish (a partitioned table one creates,
    // whose indexes a later one builds per partition), as `up` would carry it.
    let mut ctx = Context::new(pg, true);
    // A fresh database: `up` runs every migration as written (no table is in use yet).
    let fresh = crate::migrator::user_relations(conn).await?.is_empty();
    if fresh {
        ctx.assume_all_made_in_run();
    }
    let in_progress = crate::online::state::read(conn).await?;
    for m in &set.migrations {
        let row = rows
            .iter()
            .find(|r| Version::parse(&r.version).is_some_and(|v| v == m.version));
        let resumes_at = match row {
            None => None,
            Some(r) if r.state == RowState::Partial => usize::try_from(r.progress).ok(),
            Some(_) => continue,
        };
        let change = in_progress
            .iter()
            .find(|c| Version::parse(&c.version).is_some_and(|v| v == m.version));
        migrations.push(plan_migration(conn, m, resumes_at, change, options, &mut ctx).await?);
        // As `up` runs them: the statements of later migrations on the tables this one
        // creates run as written, `IF NOT EXISTS` included where there is no such table now
        // (before the run).
        let mut created: Vec<_> = ctx.tables_created().cloned().collect();
        let if_missing: Vec<_> = ctx.tables_created_if_missing().cloned().collect();
        if !if_missing.is_empty() {
            let names: Vec<String> = if_missing.iter().map(|t| t.quoted()).collect();
            let missing: Vec<bool> = conn
                .query_one(
                    "SELECT array_agg(to_regclass(n) IS NULL ORDER BY i)
                       FROM unnest($1::text[]) WITH ORDINALITY u(n, i)",
                    &[&names],
                )
                .await
                .map_err(DbError::from)?
                .get(0);
            created.extend(
                if_missing
                    .into_iter()
                    .zip(missing)
                    .filter(|(_, missing)| *missing)
                    .map(|(t, _)| t),
            );
        }
        ctx.assume_made_in_run(&created);
    }
    Ok(PlanReport {
        database: conn.url().redacted(),
        server_version: pg.to_string(),
        exact: options.run.exact,
        max_lock_ms: u64::try_from(options.max_lock.as_millis()).unwrap_or(u64::MAX),
        model: EstimateModel {
            rewrite_mb_per_sec: options.rewrite_mb_per_sec,
            index_mb_per_sec: options.index_mb_per_sec,
            scan_mb_per_sec: options.scan_mb_per_sec,
            catalog_ms: options.catalog_ms,
        },
        migrations,
    })
}

async fn plan_migration(
    conn: &Connection,
    m: &Migration,
    resumes_at: Option<usize>,
    in_progress: Option<&crate::online::OnlineChange>,
    options: &PlanOptions,
    ctx: &mut Context,
) -> Result<PlannedMigration, RunError> {
    let pg = ctx.version;
    let version = m.version.to_string();
    // The live catalog's types of retyped columns are read by `prepare`, so `ALTER ... TYPE`
    // is judged (rewrite or not) instead of guessed.
    let prepared = prepare(conn, &version, &m.up, &options.run, Purpose::Plan, ctx).await?;
    let exec = &prepared.exec;
    let analysed = &prepared.statements;
    let breaking: Vec<(usize, BreakingChange)> = analysed
        .iter()
        .flat_map(|a| a.breaking.iter().map(|b| (a.span.start, b.clone())))
        .collect();
    let line_index = pgshift_sql::LineIndex::new(&m.up.file_text);

    // Sizes of every table any statement (as written or as run) touches.
    let mut names: Vec<pgshift_sql::ident::QualifiedName> = Vec::new();
    for a in analysed {
        for e in &a.effects {
            names.push(e.table.clone());
        }
    }
    if let Some(small) = &prepared.small {
        names.extend(small.relations.iter().cloned());
    }
    names.dedup();
    let sizes: Vec<TableSize> = pgshift_db::table_sizes(conn, &names).await?;
    let size_of = |t: &pgshift_sql::ident::QualifiedName| -> Option<&TableSize> {
        sizes.iter().find(|s| {
            s.name.name == t.name
                && t.schema
                    .as_ref()
                    .is_none_or(|sc| *sc == s.name.schema.clone().unwrap_or_default())
        })
    };

    // Blocking time per statement (by its start offset), from the steps as they run (their
    // effects leave out tables created earlier in the migration).
    let mut blocking: HashMap<usize, Blocking> = HashMap::new();
    for unit in &exec.units {
        let mut steps: Vec<StepEstimate> = Vec::new();
        for step in &unit.steps {
            let mut work = 0.0_f64;
            let mut strongest: Option<(String, LockLevel, bool)> = None;
            for e in &step.facts.effects {
                let size = size_of(&e.table);
                let bytes = size.map_or(0, |s| s.total_bytes.max(0)) as f64;
                let mb = bytes / 1_048_576.0;
                let w = if e.rewrite {
                    mb / options.rewrite_mb_per_sec * 1000.0
                } else if e.scan && step.facts.index_build {
                    mb / options.index_mb_per_sec * 1000.0
                } else if e.scan {
                    mb / options.scan_mb_per_sec * 1000.0
                } else {
                    options.catalog_ms
                };
                work = work.max(w);
                if e.lock.blocks_writes() && size.is_some() {
                    let rows = size.is_some_and(|s| s.rows_estimate != 0);
                    if strongest.as_ref().is_none_or(|(_, l, _)| e.lock > *l) {
                        strongest = Some((e.table.to_string(), e.lock, rows));
                    }
                }
            }
            steps.push((step.origin.start, strongest, work));
        }
        for (i, (origin, strongest, _)) in steps.iter().enumerate() {
            let Some((table, lock, rows)) = strongest else {
                continue;
            };
            let held: f64 = if unit.transactional {
                steps[i..].iter().map(|s| s.2).sum()
            } else {
                steps[i].2
            };
            let entry = Blocking {
                table: table.clone(),
                lock: *lock,
                blocks: if lock.blocks_reads() {
                    "reads and writes"
                } else {
                    "writes"
                }
                .to_string(),
                estimate_ms: (held * 10.0).round() / 10.0,
                table_has_rows: *rows,
            };
            match blocking.get(origin) {
                Some(b) if b.estimate_ms >= entry.estimate_ms => {}
                _ => {
                    blocking.insert(*origin, entry);
                }
            }
        }
    }

    let mut statements = Vec::new();
    for a in analysed {
        let start = a.span.start;
        let tables = a
            .effects
            .iter()
            .map(|e| {
                let size = size_of(&e.table);
                TableLock {
                    table: e.table.to_string(),
                    lock: e.lock,
                    rewrite: e.rewrite,
                    scan: e.scan,
                    rows_estimate: size.map(|s| s.rows_estimate),
                    bytes: size.map(|s| s.total_bytes),
                    note: e.note.to_string(),
                }
            })
            .collect();
        let mut runs_instead: Vec<RunStep> = exec
            .units
            .iter()
            .flat_map(|u| u.steps.iter().map(move |s| (u, s)))
            .filter(|(_, s)| {
                s.origin.start == start && (!s.is_verbatim() || s.facts.backfill.is_some())
            })
            .map(|(u, s)| RunStep {
                sql: pgshift_sql::redact_secrets(s.sql()).into_owned(),
                purpose: if s.facts.backfill.is_some() {
                    "a batched, resumable backfill (`-- pgshift:backfill`): key ranges sized to ~200 ms, each committed with its checkpoint, then the end proved".to_string()
                } else {
                    s.rewrite.as_deref().unwrap_or_default().to_string()
                },
                runs: if s.facts.backfill.is_some() {
                    "in batches, each its own transaction"
                } else if !u.transactional {
                    "outside a transaction"
                } else if u.steps.len() == 1 && exec.units.len() > 1 {
                    "own transaction"
                } else {
                    "in the migration's transaction"
                }
                .to_string(),
            })
            .collect();
        // A small index's drop: as written when its table's lock is free at once.
        for (u, other) in exec.units.iter().filter_map(|u| {
            u.when_busy
                .as_deref()
                .filter(|o| o.origin.start == start)
                .map(|o| (u, o))
        }) {
            runs_instead.extend(u.steps.iter().map(|s| RunStep {
                sql: pgshift_sql::redact_secrets(s.sql()).into_owned(),
                purpose: format!(
                    "as written when its table's lock is free at once (taken NOWAIT): an index of at most {} kB drops in about a millisecond",
                    pgshift_lint::SMALL_INDEX_PAGES * 8
                ),
                runs: "own transaction".to_string(),
            }));
            runs_instead.push(RunStep {
                sql: pgshift_sql::redact_secrets(other.sql()).into_owned(),
                purpose: other.rewrite.as_deref().unwrap_or_default().to_string(),
                runs: "outside a transaction, when the table is in use".to_string(),
            });
        }
        let b = blocking.remove(&start);
        let mut conflicting_now = Vec::new();
        if let Some(b) = &b {
            let oid = sizes
                .iter()
                .find(|s| s.name.to_string() == b.table || s.name.name == b.table)
                .map(|s| s.oid);
            if let Some(oid) = oid {
                for s in pgshift_db::conflicting_sessions(conn, &[oid], b.lock).await? {
                    conflicting_now.push(SessionSummary::from(&s));
                }
            }
        }
        statements.push(PlannedStatement {
            line: line_index.line_col(&m.up.file_text, start).line,
            // `CREATE ROLE ... PASSWORD '...'` is shown without the password, in every format.
            sql: one_line(
                &pgshift_sql::redact_secrets(&m.up.file_text[a.span.clone()]),
                100,
            ),
            tables,
            runs_instead,
            blocking: b,
            conflicting_now,
        });
    }
    let mut checklist = checklist(m, &breaking, exec, &statements, &line_index);
    // An online change in progress runs the plan stored when its expand started, whatever
    // the schema (expanded) or the file says now.
    let planned = if let Some(change) = in_progress {
        crate::online::Planned::Online(change.plan.clone())
    } else if options.run.exact
        || !options.run.online
        || resumes_at.is_some()
        || ctx.all_made_in_run()
    {
        crate::online::Planned::Ordinary
    } else {
        crate::online::plan(conn, m, pg, None).await?
    };
    let runs_as_written = match &planned {
        crate::online::Planned::AsWritten(reason) => Some(reason.clone()),
        _ => None,
    };
    let online = {
        match planned {
            crate::online::Planned::Online(p) => Some(p),
            _ => None,
        }
        .map(|p| {
            let what = |units: &[crate::online::PhaseUnit]| {
                units.iter().map(|u| u.what.clone()).collect::<Vec<_>>()
            };
            OnlineOutline {
                phase: in_progress.map(|c| c.phase.as_str().to_string()),
                operations: p.operations.iter().map(|o| o.summary.clone()).collect(),
                expand: what(&p.expand),
                contract: what(&p.contract),
                rollback: what(&p.rollback),
                caveats: p.caveats.clone(),
            }
        })
    };
    if let Some(o) = &online {
        online_checklist(&mut checklist, o);
    }
    // As the tables are now (indexes included: `up` reads less); `up` reads them again.
    let as_written_when_small = prepared.small.as_ref().is_some_and(|small| {
        small
            .relations
            .iter()
            .map(|r| size_of(r).map_or(0, |s| s.total_bytes.max(0)))
            .sum::<i64>()
            <= crate::small_tables::SMALL_TABLES_BYTES
    });
    Ok(PlannedMigration {
        version,
        name: m.name.clone(),
        path: m.up.path.display().to_string(),
        units: exec.units.len(),
        resumes_at,
        dump: prepared.dump.map(|d| d.file.display().to_string()),
        statements,
        checklist,
        online,
        runs_as_written,
        as_written_when_small,
    })
}

/// The checklist of a migration that runs as an online change: its answers are about the
/// phases, not about the file as written (the rollback answer, about its down file, stays).
fn online_checklist(c: &mut Checklist, o: &OnlineOutline) {
    let window = "yes, while it is expanded: old code keeps its names and types (kept in step by triggers, or shown by a view named as the table) until `pgshift complete`, which you run once no old code is left";
    c.backward_compatible = if o.caveats.is_empty() {
        Answer {
            ok: true,
            text: window.into(),
        }
    } else {
        Answer {
            ok: false,
            text: format!("{window}; but {}", o.caveats.join("; ")),
        }
    };
    c.if_it_fails_halfway = Answer {
        ok: true,
        text: format!(
            "it runs in {} expand and {} contract steps, each recorded when done: the same command continues at the failed step, and `pgshift rollback` undoes the expand until `complete` starts",
            o.expand.len(),
            o.contract.len()
        ),
    };
    c.locking = Answer {
        ok: true,
        text: "the expand takes only short locks (a new column, triggers, a renamed column behind a view, `NOT VALID` constraints) and builds indexes concurrently; the backfill locks a batch of rows at a time; `complete` takes one short ACCESS EXCLUSIVE lock per table, under lock_timeout, retried".into(),
    };
}

/// One step as it will run: the statement it comes from (by start offset), the strongest
/// blocking lock it takes on an existing table (table, lock, whether the table has rows), and
/// its estimated work in ms.
type StepEstimate = (usize, Option<(String, LockLevel, bool)>, f64);

/// The pre-flight checklist of a migration. `breaking` is what in each statement breaks code
/// running against the old schema (the lint crate's compat knowledge, which `check`'s
/// backward-compatibility rules read too), with the statement's start offset.
fn checklist(
    m: &Migration,
    breaking: &[(usize, BreakingChange)],
    exec: &crate::units::Execution,
    statements: &[PlannedStatement],
    lines: &pgshift_sql::LineIndex,
) -> Checklist {
    let breaking: Vec<String> = breaking
        .iter()
        .map(|(start, b)| format!("line {}: {b}", lines.line_col(&m.up.file_text, *start).line))
        .collect();
    let backward_compatible = if breaking.is_empty() {
        Answer {
            ok: true,
            text: "yes: nothing is dropped, renamed, retyped or made mandatory".into(),
        }
    } else {
        Answer {
            ok: false,
            text: format!(
                "no: {}. Deploy code that no longer depends on it first, or make the change in expand/contract steps",
                breaking.join("; ")
            ),
        }
    };
    let if_it_fails_halfway = if exec.units.len() == 1 && exec.units[0].transactional {
        Answer {
            ok: true,
            text: "it is rolled back as a whole: the database stays as it was".into(),
        }
    } else {
        let why = exec
            .no_transaction_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let text = if exec.units.len() == 1 {
            format!("it runs as one step outside a transaction{why}; `pgshift up` again retries it")
        } else {
            format!(
                "it runs in {}, not one transaction{why}; each completed step is recorded, so `pgshift up` again resumes at the failed step, and completed steps stay applied",
                crate::report::count(exec.units.len(), "step")
            )
        };
        Answer { ok: true, text }
    };
    let rollback = match &m.down {
        Some(down) => Answer {
            ok: true,
            text: format!("down script present: {}", down.path.display()),
        },
        None => Answer {
            ok: false,
            text: "forward-only: there is no down script; undoing it means writing a new migration"
                .into(),
        },
    };
    let locks: Vec<String> = statements
        .iter()
        .filter_map(|s| {
            s.blocking.as_ref().map(|b| {
                format!(
                    "line {}: {} on {} blocks {} for ≈ {}",
                    s.line,
                    b.lock,
                    b.table,
                    b.blocks,
                    format_ms(b.estimate_ms)
                )
            })
        })
        .collect();
    let locking = if locks.is_empty() {
        Answer {
            ok: true,
            text: "no step takes a lock that blocks reads or writes of an existing table".into(),
        }
    } else {
        Answer {
            ok: false,
            text: locks.join("; "),
        }
    };
    Checklist {
        backward_compatible,
        if_it_fails_halfway,
        rollback,
        locking,
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = pgshift_sql::printable_line(&flat).into_owned();
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

// Rendering lives in `report::plan`; these names stay for callers of `plan::*`.
pub use crate::report::plan::{format_ms, render_json, render_markdown, render_terminal};
