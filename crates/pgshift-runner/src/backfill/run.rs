//! The backfill loop: validate, take the backfill's lock, walk in batches (one short
//! transaction each, checkpoint included), then prove the end.

use std::time::{Duration, Instant};

use pgshift_db::{Connection, DbError};
use pgshift_sql::ident::quote_ident;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::busy::Busy;
use super::mode::{self, Mode};
use super::sizing::BatchSizer;
use super::state;
use super::statements::{from_clause, needed_predicate, Statements, CHECKPOINT};
use super::throttle::{Throttle, Verdict};
use super::walk::{self, Table, Walk};
use super::{Backfill, BackfillError};
use crate::event::{Event, Observer};

/// The shortest batch duration aimed at while the application waits on the backfill's rows.
const MIN_TARGET: Duration = Duration::from_millis(20);

/// Where a backfill is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Walking the table, updating rows; passes after the first take rows inserted behind
    /// the walk or changed back meanwhile.
    Walking {
        pass: u32,
    },
    /// Counting what still needs the update.
    Proving,
    Done,
}

/// A progress report, sent after each batch and while waiting.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress {
    pub id: String,
    pub table: String,
    pub phase: Phase,
    /// Rows updated so far, over every run of this backfill.
    pub rows_done: u64,
    /// Rows the planner expected to need the update at the start.
    pub estimate: Option<u64>,
    /// Share of the current walk done, 0 to 1.
    pub fraction: Option<f64>,
    pub rows_per_second: f64,
    pub eta: Option<Duration>,
    pub batch_size: u64,
    /// Why it is waiting or slowed down, when it is.
    pub throttle: Option<String>,
    /// It walks once, each row in scope updated once, and is not proved by counting
    /// ([`Mode::Once`]).
    pub runs_once: bool,
}

/// What a finished backfill did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub id: String,
    pub table: String,
    /// Rows updated by this run.
    pub rows_updated: u64,
    /// Rows updated over every run of this backfill.
    pub rows_total: u64,
    pub batches: u64,
    pub passes: u32,
    pub duration: Duration,
    /// Rows in scope for which the SET expressions give NULL (they hold NULL now).
    pub null_results: u64,
    /// Rows inserted after the walk's upper bound was fixed that would need the update too:
    /// outside this backfill (the application should write them; a new run takes them).
    pub beyond_bound: u64,
    /// It had finished before; nothing ran.
    pub already_done: bool,
    /// Why it ran once over the rows in scope instead of until no row still needs it (then
    /// `passes` is 1 and nothing was counted: `null_results` is 0); `None` when it did the
    /// latter.
    pub runs_once: Option<String>,
}

/// The backfill recorded under the same name, and whether this run starts it over
/// (`--restart`, or `restart_if_done` and it finished). One recorded with another statement is
/// refused unless it starts over.
pub(super) async fn recorded(
    backfill: &Backfill,
    client: &Client,
) -> Result<(Option<state::Saved>, bool), BackfillError> {
    let (spec, options) = (&backfill.spec, &backfill.options);
    let saved = state::load(client, &spec.id).await?;
    let restart = options.restart
        || (options.restart_if_done && saved.as_ref().is_some_and(|s| s.status == "done"));
    if let Some(saved) = &saved {
        let statement = spec.statement();
        if saved.statement != statement && !restart {
            return Err(BackfillError::Changed {
                id: spec.id.clone(),
                recorded: saved.statement.clone(),
                current: statement,
            });
        }
    }
    Ok((saved, restart))
}

impl Outcome {
    /// A backfill recorded as finished before: nothing ran.
    pub(super) fn done_before(
        spec: &super::BackfillSpec,
        table: &pgshift_sql::ident::QualifiedName,
        saved: &state::Saved,
        started: Instant,
        runs_once: Option<String>,
    ) -> Outcome {
        Outcome {
            id: spec.id.clone(),
            table: table.to_string(),
            rows_updated: 0,
            rows_total: saved.rows_done.max(0) as u64,
            batches: 0,
            passes: saved.pass.max(0) as u32,
            duration: started.elapsed(),
            null_results: 0,
            beyond_bound: 0,
            already_done: true,
            runs_once,
        }
    }
}

/// What `--dry-run` tells before anything runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Estimate {
    pub id: String,
    pub table: String,
    pub walk: String,
    pub statement: String,
    /// Rows in the table (planner statistics).
    pub table_rows: u64,
    /// Rows the planner expects to need the update.
    pub rows_needed: u64,
    pub batches: u64,
    /// WAL the whole backfill should write, from a sample batch rolled back.
    pub wal_bytes: u64,
    pub time: Duration,
    pub sample_rows: u64,
    pub sample_duration: Duration,
    /// Why it would run once over the rows in scope instead of until no row still needs it
    /// (`rows_needed` then counts every row in scope); `None` when it would do the latter.
    pub runs_once: Option<String>,
}

/// What a backfill that runs once needs from its walk: positions that do not move when a row
/// is updated (a key, not ctids), and a key the SET leaves alone.
fn once_needs(
    mode: &Mode,
    walk: &Walk,
    spec: &super::BackfillSpec,
    table: &Table,
) -> Result<(), BackfillError> {
    let Mode::Once { why } = mode else {
        return Ok(());
    };
    match walk {
        Walk::Pages => Err(BackfillError::OnceNeedsKey {
            table: table.name.to_string(),
            why: why.clone(),
        }),
        Walk::Key { columns, .. } => match spec
            .assignments
            .iter()
            .find(|a| columns.contains(&a.column))
        {
            Some(a) => Err(BackfillError::OnceAssignsKey {
                column: a.column.clone(),
                walk: walk.describe(),
                why: why.clone(),
            }),
            None => Ok(()),
        },
    }
}

/// Everything the loop works with.
pub(super) struct Job<'a> {
    backfill: &'a Backfill,
    client: &'a Client,
    observer: &'a dyn Observer,
    table: Table,
    walk: Walk,
    mode: Mode,
    statements: Statements,
    estimate: Option<u64>,
    /// The proof counts by page ranges (PostgreSQL 14+, a table without children): a
    /// sequential read, where key ranges would also visit every dead version the walk left
    /// behind through the index.
    prove_by_pages: bool,
}

/// The bounds and position of the current pass.
#[derive(Debug, Clone)]
struct Position {
    lower: Option<Vec<String>>,
    upper: Option<Vec<String>>,
    cursor: Option<Vec<String>>,
    pass: u32,
    /// Keys (or pages) walked this pass, for progress on non-integer keys.
    walked: u64,
}

impl Backfill {
    /// Runs the backfill to its proved end, resuming a run that stopped partway.
    pub async fn run(
        &self,
        conn: &Connection,
        observer: &dyn Observer,
    ) -> Result<Outcome, BackfillError> {
        let client = conn.client();
        if !self.spec.only {
            if let Some(leaves) = super::partitions::leaves(client, &self.spec.table).await? {
                return super::partitions::run(self, conn, observer, leaves).await;
            }
        }
        let mut job = Job::prepare(self, client, observer).await?;
        state::ensure(client).await?;
        job.statements.checkpoint = Some(client.prepare(CHECKPOINT).await.map_err(DbError::from)?);
        let id = &self.spec.id;
        if !state::try_lock(client, id).await? {
            let (owner, pid) = state::holder(client, id).await?.unwrap_or((None, 0));
            return Err(BackfillError::Running {
                id: id.clone(),
                owner,
                pid,
            });
        }
        let result = job.run().await;
        // The session ending releases the lock too; this frees it for a caller that goes on
        // using the connection.
        let _ = state::unlock(client, id).await;
        if let Err(
            err @ (BackfillError::Batch { .. }
            | BackfillError::Unproved { .. }
            | BackfillError::Rewritten { .. }
            | BackfillError::Db(_)),
        ) = &result
        {
            let _ = client
                .execute(
                    "UPDATE pgshift.backfills SET status = 'failed', last_error = $2,
                            heartbeat = now() WHERE id = $1 AND status <> 'done'",
                    &[id, &err.to_string()],
                )
                .await;
        }
        result
    }
}

/// Validates the backfill and estimates its cost without changing anything: one sample
/// batch runs in a transaction that is rolled back, for the time and WAL per row.
pub async fn dry_run(backfill: &Backfill, conn: &Connection) -> Result<Estimate, BackfillError> {
    let client = conn.client();
    if !backfill.spec.only {
        if let Some(leaves) = super::partitions::leaves(client, &backfill.spec.table).await? {
            return Box::pin(super::partitions::dry_run(backfill, conn, leaves)).await;
        }
    }
    let job = Job::prepare(backfill, client, &crate::event::Silent).await?;
    let (lower, upper) = job.bounds().await?;
    let sample_rows;
    let sample_duration;
    let wal_bytes_sample;
    match upper {
        None => {
            sample_rows = 0;
            sample_duration = Duration::ZERO;
            wal_bytes_sample = 0;
        }
        Some(upper) => {
            let pos = Position {
                lower,
                upper: Some(upper),
                cursor: None,
                pass: 1,
                walked: 0,
            };
            client
                .batch_execute(&job.begin_sql())
                .await
                .map_err(DbError::from)?;
            let started = Instant::now();
            let wal_before: i64 = client
                .query_one(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::int8",
                    &[],
                )
                .await
                .map_err(DbError::from)?
                .get(0);
            let result = job.batch_update(&pos, job.initial_units()).await;
            let wal_after: Result<i64, _> = client
                .query_one(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::int8",
                    &[],
                )
                .await
                .map(|r| r.get(0));
            sample_duration = started.elapsed();
            client
                .batch_execute("ROLLBACK")
                .await
                .map_err(DbError::from)?;
            let (rows, _) = result?;
            sample_rows = rows;
            wal_bytes_sample = (wal_after.map_err(DbError::from)? - wal_before).max(0) as u64;
        }
    }
    let rows_needed = job.estimate.unwrap_or(0);
    let per_row = if sample_rows > 0 {
        sample_duration.as_secs_f64() / sample_rows as f64
    } else {
        0.0
    };
    let wal_per_row = if sample_rows > 0 {
        wal_bytes_sample as f64 / sample_rows as f64
    } else {
        0.0
    };
    let rows_per_batch = if per_row > 0.0 {
        (backfill.options.target_batch.as_secs_f64() / per_row).clamp(
            backfill.options.min_batch as f64,
            backfill.options.max_batch as f64,
        )
    } else {
        backfill.options.initial_batch as f64
    };
    Ok(Estimate {
        id: backfill.spec.id.clone(),
        table: job.table.name.to_string(),
        walk: job.walk.describe(),
        statement: backfill.spec.statement(),
        table_rows: job.table.reltuples.max(0.0) as u64,
        rows_needed,
        batches: (rows_needed as f64 / rows_per_batch).ceil() as u64,
        wal_bytes: (wal_per_row * rows_needed as f64) as u64,
        time: Duration::from_secs_f64(per_row * rows_needed as f64),
        sample_rows,
        sample_duration,
        runs_once: job.mode.once().map(str::to_owned),
    })
}

impl<'a> Job<'a> {
    /// Reads the table, picks the walk, prepares and tries every statement. Changes nothing.
    pub(super) async fn prepare(
        backfill: &'a Backfill,
        client: &'a Client,
        observer: &'a dyn Observer,
    ) -> Result<Job<'a>, BackfillError> {
        let spec = &backfill.spec;
        let table =
            walk::table(client, &spec.table)
                .await?
                .ok_or_else(|| BackfillError::NoTable {
                    table: spec.table.to_string(),
                })?;
        for a in &spec.assignments {
            if !table.columns.iter().any(|c| c.name == a.column) {
                return Err(BackfillError::NoColumn {
                    table: table.name.to_string(),
                    column: a.column.clone(),
                });
            }
        }
        let version = pgshift_db::catalog::server_version_num(client).await?;
        let walk = walk::choose(client, &table, version).await?;
        let mode = mode::decide(client, spec).await?;
        client
            .batch_execute("SET plan_cache_mode = force_custom_plan")
            .await
            .map_err(DbError::from)?;
        if let Some(filter) = &spec.filter {
            // On its own first, so a condition that is not boolean is reported as such, not
            // as an operand of the AND the batch statement joins it with.
            let sql = format!("SELECT 1 FROM {} WHERE ({filter})", from_clause(spec));
            if let Err(e) = client.prepare(&sql).await {
                return Err(match DbError::from(e) {
                    DbError::Query(server) => BackfillError::Invalid {
                        table: table.name.to_string(),
                        statement: spec.statement(),
                        server,
                    },
                    other => other.into(),
                });
            }
        }
        let statements = Statements::prepare(backfill, client, &table, &walk, &mode).await?;
        // After the server has read the statements: a misspelt function is reported as
        // such, not as a reason to run once.
        once_needs(&mode, &walk, spec, &table)?;
        let prove_by_pages = version >= 140000 && table.relkind == 'r' && !table.has_children;
        let mut job = Job {
            backfill,
            client,
            observer,
            table,
            walk,
            mode,
            statements,
            estimate: None,
            prove_by_pages,
        };
        job.try_first_rows().await?;
        job.estimate = job.planner_estimate().await;
        Ok(job)
    }

    fn invalid(&self, err: DbError) -> BackfillError {
        match err {
            DbError::Query(server) => BackfillError::Invalid {
                table: self.table.name.to_string(),
                statement: self.backfill.spec.statement(),
                server,
            },
            other => other.into(),
        }
    }

    /// Evaluates the SET expressions on the first rows in scope (read only), so an
    /// expression that fails at run time (a bad cast, a division by zero) is reported before
    /// the first batch commits anything.
    async fn try_first_rows(&self) -> Result<(), BackfillError> {
        let spec = &self.backfill.spec;
        let exprs: Vec<String> = spec
            .assignments
            .iter()
            .map(|a| format!("({})", a.expression))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} LIMIT 100",
            exprs.join(", "),
            from_clause(spec),
            spec.filter
                .as_deref()
                .map_or("true".to_owned(), |f| format!("({f})")),
        );
        // A transaction rolled back, not a read-only one: an expression may call nextval().
        self.client
            .batch_execute("BEGIN; SET LOCAL statement_timeout = '10s'")
            .await
            .map_err(DbError::from)?;
        let result = self.client.query(&sql, &[]).await;
        let _ = self.client.batch_execute("ROLLBACK").await;
        result.map_err(|e| self.invalid(DbError::from(e)))?;
        Ok(())
    }

    /// The rows that need the update: the planner's estimate, or, when a column the backfill
    /// writes has no statistics (a table never analyzed, or a column added since: the
    /// planner would guess the predicate's selectivity, e.g. 0.5% for `IS NULL`), the rows of
    /// a sample of the table's pages that need it, scaled by the share of pages sampled.
    async fn planner_estimate(&self) -> Option<u64> {
        let spec = &self.backfill.spec;
        let predicate = format!(
            "{} AND ({})",
            spec.filter
                .as_deref()
                .map_or("true".to_owned(), |f| format!("({f})")),
            needed_predicate(self.backfill, &self.table, &self.mode),
        );
        let written: Vec<&str> = spec.assignments.iter().map(|a| a.column.as_str()).collect();
        let analyzed: bool = self
            .client
            .query_one(
                "SELECT count(DISTINCT s.attname) = cardinality($2::text[])
                   FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename
                   JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
                  WHERE c.oid = $1 AND s.attname = ANY ($2)",
                &[&self.table.oid, &written],
            )
            .await
            .ok()?
            .get(0);
        if analyzed {
            return self.plan_rows(&predicate).await;
        }
        let rows = self.plan_rows("true").await?;
        if let Some(needed) = self.sampled(&predicate, rows).await.ok().flatten() {
            return Some(needed);
        }
        self.plan_rows(&predicate).await
    }

    /// The planner's row count for the table under `predicate`.
    async fn plan_rows(&self, predicate: &str) -> Option<u64> {
        let sql = format!(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE {predicate}",
            from_clause(&self.backfill.spec),
        );
        // The simple protocol returns the plan as text (the extended one as `json`).
        let messages = self.client.simple_query(&sql).await.ok()?;
        let plan = messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })?;
        let value: serde_json::Value = serde_json::from_str(&plan).ok()?;
        value[0]["Plan"]["Plan Rows"].as_f64().map(|r| r as u64)
    }

    /// The rows for which `predicate` holds, from about 30,000 rows (by the planner's count
    /// `rows`) read from whole pages picked at random (`TABLESAMPLE SYSTEM`), scaled by the
    /// share sampled; `None` when the sample holds no row. At most 5 s, in a transaction that
    /// is rolled back.
    async fn sampled(&self, predicate: &str, rows: u64) -> Result<Option<u64>, DbError> {
        let percent = (3_000_000.0 / rows.max(1) as f64).clamp(0.001, 100.0);
        let sql = format!(
            "SELECT count(*) FILTER (WHERE {predicate})::float8, count(*)::float8
               FROM {} TABLESAMPLE SYSTEM ({percent}) REPEATABLE (0)",
            from_clause(&self.backfill.spec),
        );
        self.client
            .batch_execute("BEGIN; SET LOCAL statement_timeout = '5s'")
            .await?;
        let result = self.client.query_one(&sql, &[]).await;
        let _ = self.client.batch_execute("ROLLBACK").await;
        let row = result?;
        let (needed, seen): (f64, f64) = (row.get(0), row.get(1));
        Ok((seen > 0.0).then(|| (needed * 100.0 / percent).round() as u64))
    }

    fn begin_sql(&self) -> String {
        let o = &self.backfill.options;
        format!(
            "BEGIN; SET LOCAL lock_timeout = '{}ms'; SET LOCAL statement_timeout = '{}ms'; \
             SET LOCAL pgshift.backfill = 'on'",
            o.lock_timeout.as_millis().max(1),
            o.statement_timeout.as_millis(),
        )
    }

    /// The walk's bounds now: the first and last key, or pages 0 and the table's length.
    async fn bounds(&self) -> Result<(Option<Vec<String>>, Option<Vec<String>>), BackfillError> {
        let from = from_clause(&self.backfill.spec);
        match &self.walk {
            Walk::Key { .. } => {
                let cols = self.walk.column_list();
                let desc: Vec<String> = self
                    .walk
                    .key_columns()
                    .iter()
                    .map(|c| format!("{} DESC", quote_ident(c)))
                    .collect();
                let first = self
                    .client
                    .query_opt(
                        &format!(
                            "SELECT {} FROM {from} ORDER BY {cols} LIMIT 1",
                            self.walk.select_list()
                        ),
                        &[],
                    )
                    .await
                    .map_err(DbError::from)?;
                let last = self
                    .client
                    .query_opt(
                        &format!(
                            "SELECT {} FROM {from} ORDER BY {} LIMIT 1",
                            self.walk.select_list(),
                            desc.join(", ")
                        ),
                        &[],
                    )
                    .await
                    .map_err(DbError::from)?;
                Ok((first.map(|r| texts(&r)), last.map(|r| texts(&r))))
            }
            Walk::Pages => {
                let pages = self.table_pages().await?;
                Ok((
                    Some(vec!["0".into()]),
                    (pages > 0).then(|| vec![pages.to_string()]),
                ))
            }
        }
    }

    async fn run(mut self) -> Result<Outcome, BackfillError> {
        let started = Instant::now();
        let spec = &self.backfill.spec;
        let options = &self.backfill.options;
        let statement = spec.statement();
        let (saved, restart) = recorded(self.backfill, self.client).await?;
        if let Some(saved) = &saved {
            if saved.status == "done" && !restart {
                return Ok(Outcome::done_before(
                    spec,
                    &self.table.name,
                    saved,
                    started,
                    self.mode.once().map(str::to_owned),
                ));
            }
        }
        if let (Mode::Once { why }, Some(saved)) = (&self.mode, &saved) {
            if options.restart && saved.rows_done > 0 {
                self.observer.event(&Event::Info(format!(
                    "backfill {}: --restart updates every row in scope again, including the {} rows earlier runs updated: it runs once, because {why}",
                    spec.id, saved.rows_done
                )));
            }
        }
        let resume = saved.filter(|_| !restart);
        if let (Mode::Once { why }, Some(saved)) = (&self.mode, &resume) {
            // Walked again by an earlier pgshift, which compared rows a run-once backfill
            // cannot compare: rows may have been updated more than once already.
            if saved.pass > 1 {
                return Err(BackfillError::WalkedBefore {
                    id: spec.id.clone(),
                    passes: saved.pass,
                    why: why.clone(),
                });
            }
        }
        let mut pos = match &resume {
            Some(saved) => {
                if self.walk == Walk::Pages && saved.relfilenode != Some(self.table.filenode) {
                    return Err(BackfillError::Rewritten {
                        id: spec.id.clone(),
                        table: self.table.name.to_string(),
                    });
                }
                Position {
                    lower: saved.lower_bound.clone(),
                    upper: saved.upper_bound.clone(),
                    cursor: saved.cursor.clone(),
                    pass: saved.pass.max(1) as u32,
                    walked: 0,
                }
            }
            None => {
                let (lower, upper) = self.bounds().await?;
                Position {
                    lower,
                    upper,
                    cursor: None,
                    pass: 1,
                    walked: 0,
                }
            }
        };
        if let Some(saved) = &resume {
            self.estimate = saved.estimate.map(|e| e.max(0) as u64).or(self.estimate);
        }
        self.save_start(&statement, &pos, resume.is_none()).await?;
        let prior_rows = resume.as_ref().map_or(0, |s| s.rows_done.max(0) as u64);
        let prior_batches = resume.as_ref().map_or(0, |s| s.batches.max(0) as u64);
        self.observer.event(&Event::BackfillStarted {
            id: spec.id.clone(),
            table: self.table.name.to_string(),
            walk: self.walk.describe(),
            estimate: self.estimate,
            resumed_at: resume.as_ref().map(|s| s.rows_done.max(0) as u64),
            runs_once: self.mode.once().map(str::to_owned),
        });

        let mut throttle =
            Throttle::new(self.client, options.throttle.clone(), self.table.oid).await?;
        let initial = resume
            .as_ref()
            .map(|s| s.batch_size.max(0) as u64)
            .filter(|s| *s > 0)
            .unwrap_or(self.initial_units());
        let mut sizer = BatchSizer::new(
            initial,
            self.unit_bound(options.min_batch),
            self.unit_bound(options.max_batch),
            options.target_batch,
        );
        let mut counters = Counters {
            rows: prior_rows,
            rows_this_run: 0,
            batches: prior_batches,
            started,
        };
        // How busy the application is carries over from one pass to the next.
        let mut busy = Busy::new(options.when_busy.clone());
        loop {
            self.walk_pass(
                &mut pos,
                &mut sizer,
                &mut throttle,
                &mut busy,
                &mut counters,
            )
            .await?;
            let (remaining, null_results) = match self.mode {
                Mode::StillNeeded => {
                    self.set_status("proving", None).await?;
                    self.progress(Phase::Proving, &pos, &sizer, &counters, None);
                    self.prove(&sizer, pos.upper.as_deref(), &busy).await?
                }
                // Nothing to count: a row done and a row not done look alike. Each batch
                // committed its cursor with its rows, so each range ran exactly once.
                Mode::Once { .. } => (0, 0),
            };
            if remaining == 0 {
                let beyond = self.beyond(pos.upper.as_deref()).await?;
                if !options.caller_marks_done {
                    state::mark_done(self.client, &spec.id).await?;
                }
                self.progress(Phase::Done, &pos, &sizer, &counters, None);
                return Ok(Outcome {
                    id: spec.id.clone(),
                    table: self.table.name.to_string(),
                    rows_updated: counters.rows_this_run,
                    rows_total: counters.rows,
                    batches: counters.batches - prior_batches,
                    passes: pos.pass,
                    duration: started.elapsed(),
                    null_results,
                    beyond_bound: beyond,
                    already_done: false,
                    runs_once: self.mode.once().map(str::to_owned),
                });
            }
            if pos.pass >= options.max_passes {
                return Err(BackfillError::Unproved {
                    id: spec.id.clone(),
                    table: self.table.name.to_string(),
                    passes: pos.pass,
                    remaining,
                    null_results,
                });
            }
            self.observer.event(&Event::Info(format!(
                "backfill {}: {remaining} rows still need the update after pass {} (inserted behind the walk or changed back meanwhile); walking again",
                spec.id, pos.pass
            )));
            // The same range again: rows inserted beyond the upper bound are outside this
            // backfill's scope (that is what makes it end under any insert rate).
            pos = Position {
                cursor: None,
                pass: pos.pass + 1,
                walked: 0,
                ..pos
            };
            self.save_start(&statement, &pos, false).await?;
        }
    }

    /// Batch sizes are in rows for a key walk and in pages for a ctid walk.
    fn unit_bound(&self, rows: u64) -> u64 {
        match self.walk {
            Walk::Key { .. } => rows,
            Walk::Pages => (rows as f64 / self.rows_per_page()).ceil().max(1.0) as u64,
        }
    }

    fn initial_units(&self) -> u64 {
        self.unit_bound(self.backfill.options.initial_batch)
    }

    fn rows_per_page(&self) -> f64 {
        if self.table.relpages > 0 && self.table.reltuples > 0.0 {
            (self.table.reltuples / self.table.relpages as f64).max(1.0)
        } else {
            50.0
        }
    }

    async fn save_start(
        &self,
        statement: &str,
        pos: &Position,
        fresh: bool,
    ) -> Result<(), BackfillError> {
        let spec = &self.backfill.spec;
        let owner = owner();
        self.client
            .execute(
                "INSERT INTO pgshift.backfills AS b (id, table_name, statement, walk, lower_bound,
                        upper_bound, cursor, relfilenode, pass, estimate, status, owner, owner_pid,
                        heartbeat, runs_once)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running', $11, pg_backend_pid(), now(), $13)
                 ON CONFLICT (id) DO UPDATE SET table_name = $2, statement = $3, walk = $4,
                        runs_once = $13,
                        lower_bound = $5, upper_bound = $6, cursor = $7, relfilenode = $8, pass = $9,
                        estimate = CASE WHEN $12 THEN $10 ELSE coalesce(b.estimate, $10) END,
                        status = 'running', owner = $11,
                        owner_pid = pg_backend_pid(), heartbeat = now(), last_error = NULL,
                        finished_at = NULL,
                        rows_done = CASE WHEN $12 THEN 0 ELSE b.rows_done END,
                        batches = CASE WHEN $12 THEN 0 ELSE b.batches END,
                        started_at = CASE WHEN $12 THEN now() ELSE b.started_at END",
                &[
                    &spec.id,
                    &self.table.name.to_string(),
                    &statement,
                    &self.walk.describe(),
                    &pos.lower,
                    &pos.upper,
                    &pos.cursor,
                    &self.table.filenode,
                    &(pos.pass as i32),
                    &self.estimate.map(|e| e as i64),
                    &owner,
                    &fresh,
                    &self.mode.once(),
                ],
            )
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    async fn set_status(&self, status: &str, reason: Option<&str>) -> Result<(), BackfillError> {
        self.client
            .execute(
                "UPDATE pgshift.backfills SET status = $2, throttle_reason = $3, heartbeat = now()
                  WHERE id = $1",
                &[&self.backfill.spec.id, &status, &reason],
            )
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    /// Walks from the cursor to the upper bound.
    async fn walk_pass(
        &self,
        pos: &mut Position,
        sizer: &mut BatchSizer,
        throttle: &mut Throttle,
        busy: &mut Busy,
        counters: &mut Counters,
    ) -> Result<(), BackfillError> {
        let options = &self.backfill.options;
        let mut reason: Option<String> = None;
        let mut conflicts = 0u32;
        while pos.upper.is_some() && !self.reached_end(pos) {
            // Throttle signals, read at most every `check_every`. A signal that fired also
            // halves the next batch: the system was under strain when it last ran.
            let mut signalled = false;
            loop {
                match throttle.check(self.client).await? {
                    Verdict::Go => break,
                    Verdict::Pause(why) => {
                        signalled = true;
                        self.set_status("throttled", Some(&why)).await?;
                        self.progress(
                            Phase::Walking { pass: pos.pass },
                            pos,
                            sizer,
                            counters,
                            Some(why),
                        );
                        tokio::time::sleep(options.throttle.check_every).await;
                    }
                    Verdict::Slow(wait, why) => {
                        signalled = true;
                        self.progress(
                            Phase::Walking { pass: pos.pass },
                            pos,
                            sizer,
                            counters,
                            Some(why),
                        );
                        tokio::time::sleep(wait).await;
                        break;
                    }
                }
            }
            if signalled {
                sizer.halve();
                self.set_status("running", None).await?;
            }
            let size = sizer.size();
            let batch_started = Instant::now();
            match self
                .batch(pos, size, counters, sizer, reason.as_deref())
                .await
            {
                Ok(step) => {
                    conflicts = 0;
                    let took = batch_started.elapsed();
                    busy.record(step.others_active);
                    reason = busy.reason(options.duty);
                    // A session waiting on this batch's row locks waits until it commits:
                    // while that happens, batches aim shorter (down to MIN_TARGET) and come
                    // back by a quarter per batch once nobody waits, up to the duration for
                    // how busy the application is.
                    let ceiling = busy.target(options.target_batch);
                    let target = if step.blocked > 0 {
                        (sizer.target() / 2)
                            .min(ceiling)
                            .max(MIN_TARGET.min(ceiling))
                    } else {
                        sizer.target().mul_f64(1.25).min(ceiling)
                    };
                    sizer.set_target(target);
                    sizer.record(step.walked, took);
                    if step.blocked > 0 {
                        sizer.halve();
                        reason = Some(format!(
                            "{} session(s) waited on the backfill's row locks; batches shortened to {} ms",
                            step.blocked,
                            target.as_millis()
                        ));
                    }
                    self.progress(
                        Phase::Walking { pass: pos.pass },
                        pos,
                        sizer,
                        counters,
                        reason.clone(),
                    );
                    if step.pause_requested {
                        self.wait_while_paused(pos, sizer, counters).await?;
                    }
                    rest(took, busy.duty(options.duty)).await;
                    if let Some(rate) = options.max_rows_per_second.filter(|r| *r > 0) {
                        let due =
                            Duration::from_secs_f64(counters.rows_this_run as f64 / rate as f64);
                        let elapsed = counters.started.elapsed();
                        if due > elapsed {
                            tokio::time::sleep(due - elapsed).await;
                        }
                    }
                }
                Err(BatchError::Conflict(why)) => {
                    conflicts += 1;
                    sizer.halve();
                    let why = format!("{why}; batch halved to {}", sizer.size());
                    self.set_status("running", Some(&why)).await?;
                    self.progress(
                        Phase::Walking { pass: pos.pass },
                        pos,
                        sizer,
                        counters,
                        Some(why.clone()),
                    );
                    reason = Some(why);
                    if sizer.size() <= 1 {
                        // The row itself is held: wait for its holder, longer each time (a
                        // held row is retried until it is free, never skipped).
                        let wait = Duration::from_millis(50u64 << conflicts.min(5));
                        tokio::time::sleep(wait).await;
                    }
                }
                Err(BatchError::Fatal(err)) => return Err(err),
            }
        }
        Ok(())
    }

    fn reached_end(&self, pos: &Position) -> bool {
        match (&pos.cursor, &pos.upper) {
            (Some(cursor), Some(upper)) => match self.walk {
                Walk::Pages => page(cursor) >= page(upper),
                Walk::Key { .. } => cursor == upper,
            },
            _ => false,
        }
    }

    /// One batch, in its own transaction, checkpoint included.
    async fn batch(
        &self,
        pos: &mut Position,
        size: u64,
        counters: &mut Counters,
        sizer: &BatchSizer,
        reason: Option<&str>,
    ) -> Result<Step, BatchError> {
        let client = self.client;
        client
            .batch_execute(&self.begin_sql())
            .await
            .map_err(|e| BatchError::Fatal(DbError::from(e).into()))?;
        let result = self
            .batch_in_transaction(pos, size, counters, sizer, reason)
            .await;
        match result {
            Ok((step, next)) => {
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| BatchError::Fatal(DbError::from(e).into()))?;
                pos.cursor = Some(next.cursor);
                pos.walked += next.walked;
                counters.rows += step.rows;
                counters.rows_this_run += step.rows;
                counters.batches += 1;
                Ok(step)
            }
            Err(err) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(err)
            }
        }
    }

    async fn batch_in_transaction(
        &self,
        pos: &Position,
        size: u64,
        counters: &Counters,
        sizer: &BatchSizer,
        reason: Option<&str>,
    ) -> Result<(Step, Next), BatchError> {
        let (rows, next) = self
            .batch_update(pos, size)
            .await
            .map_err(|err| match err {
                BackfillError::Db(DbError::Query(q))
                    if q.is_lock_timeout() || q.is_deadlock() || q.is_query_canceled() =>
                {
                    BatchError::Conflict(match q.code.as_str() {
                        "55P03" => "rows are locked by other sessions".to_owned(),
                        "40P01" => "a deadlock with another session's row locks".to_owned(),
                        _ => "the batch ran past statement_timeout".to_owned(),
                    })
                }
                BackfillError::Db(DbError::Query(q)) => BatchError::Fatal(BackfillError::Batch {
                    id: self.backfill.spec.id.clone(),
                    range: self.describe_range(pos),
                    rows_done: counters.rows,
                    server: q,
                }),
                other => BatchError::Fatal(other),
            })?;
        let total = counters.rows + rows;
        let fraction = self.fraction(pos, &next);
        let elapsed = counters.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            (counters.rows_this_run + rows) as f64 / elapsed
        } else {
            0.0
        };
        let row = self
            .client
            .query_one(
                self.statements.checkpoint.as_ref().ok_or_else(|| {
                    BatchError::Fatal(BackfillError::Db(DbError::Driver {
                        reason: "the checkpoint statement was not prepared".into(),
                    }))
                })?,
                &[
                    &self.backfill.spec.id,
                    &next.cursor,
                    &(total as i64),
                    &(sizer.size() as i64),
                    &fraction.map(|f| f as f32),
                    &(rate as f32),
                    &reason,
                    &self.table.oid,
                ],
            )
            .await
            .map_err(|e| BatchError::Fatal(DbError::from(e).into()))?;
        let pause_requested: bool = row.get(0);
        let blocked: i64 = row.get(1);
        let filenode: Option<u32> = row.get(2);
        let others_active: i64 = row.get(3);
        if self.walk == Walk::Pages && filenode != Some(self.table.filenode) {
            return Err(BatchError::Fatal(BackfillError::Rewritten {
                id: self.backfill.spec.id.clone(),
                table: self.table.name.to_string(),
            }));
        }
        Ok((
            Step {
                rows,
                walked: next.walked,
                blocked: blocked.max(0) as u64,
                others_active: others_active.max(0) as u64,
                pause_requested,
            },
            next,
        ))
    }

    /// The key `n` keys after `lower` (from the start when `None`), at most `upper`; `None`
    /// when fewer keys are left.
    async fn locate(
        &self,
        lower: Option<&[String]>,
        upper: &[String],
        n: u64,
    ) -> Result<Option<Vec<String>>, BackfillError> {
        let offset = n.saturating_sub(1) as i64;
        let mut params = text_params(&[lower.unwrap_or_default(), upper]);
        params.push(&offset);
        let row = self
            .client
            .query_opt(
                &self.statements.locate[usize::from(lower.is_some())],
                &params,
            )
            .await
            .map_err(DbError::from)?;
        Ok(row.map(|r| texts(&r)))
    }

    /// The table's length in pages now.
    async fn table_pages(&self) -> Result<i64, BackfillError> {
        Ok(self
            .client
            .query_one(
                "SELECT pg_relation_size($1::oid::regclass) / current_setting('block_size')::int8",
                &[&self.table.oid],
            )
            .await
            .map_err(DbError::from)?
            .get(0))
    }

    /// Locates the batch's end and updates the range; inside a transaction the caller owns.
    async fn batch_update(&self, pos: &Position, size: u64) -> Result<(u64, Next), BackfillError> {
        let Some(upper) = &pos.upper else {
            return Ok((
                0,
                Next {
                    cursor: Vec::new(),
                    walked: 0,
                },
            ));
        };
        let s = &self.statements;
        match &self.walk {
            Walk::Key { .. } => {
                let lower = pos.cursor.as_deref();
                let which = usize::from(lower.is_some());
                // Fewer than `size` keys left: the batch ends at the upper bound.
                let end = self
                    .locate(lower, upper, size)
                    .await?
                    .unwrap_or_else(|| upper.clone());
                let params = text_params(&[lower.unwrap_or_default(), &end]);
                let rows = self
                    .client
                    .execute(&s.update[which], &params)
                    .await
                    .map_err(DbError::from)?;
                Ok((
                    rows,
                    Next {
                        cursor: end,
                        walked: size,
                    },
                ))
            }
            Walk::Pages => {
                let from = pos.cursor.as_ref().map_or(0, |c| page(c));
                let to = (from + size as i64).min(page(upper));
                let (lo, hi) = (format!("({from},0)"), format!("({to},0)"));
                let rows = self
                    .client
                    .execute(&s.update[1], &[&lo, &hi])
                    .await
                    .map_err(DbError::from)?;
                Ok((
                    rows,
                    Next {
                        cursor: vec![to.to_string()],
                        walked: (to - from).max(0) as u64,
                    },
                ))
            }
        }
    }

    /// Counts, range by range, the rows that still need the update (and those whose new
    /// value is NULL). Read only; each range is its own short snapshot. The ranges rest as the
    /// batches did (the application's activity and `--duty`): a count at full speed takes a
    /// CPU as a batch does.
    async fn prove(
        &self,
        sizer: &BatchSizer,
        upper: Option<&[String]>,
        busy: &Busy,
    ) -> Result<(u64, u64), BackfillError> {
        let Some(upper) = upper.map(<[String]>::to_vec) else {
            return Ok((0, 0));
        };
        let duty = busy.duty(self.backfill.options.duty);
        if self.prove_by_pages {
            return self.prove_by_pages(&upper, duty).await;
        }
        let chunk = (sizer.size() * 10).max(match self.walk {
            Walk::Key { .. } => 10_000,
            Walk::Pages => 1_000,
        });
        let s = &self.statements;
        let mut remaining = 0u64;
        let mut nulls = 0u64;
        let mut cursor: Option<Vec<String>> = None;
        loop {
            let started = Instant::now();
            match &self.walk {
                Walk::Key { .. } => {
                    let lower = cursor.as_deref();
                    let which = usize::from(lower.is_some());
                    let end = self
                        .locate(lower, &upper, chunk)
                        .await?
                        .unwrap_or_else(|| upper.clone());
                    let params = text_params(&[lower.unwrap_or_default(), &end]);
                    let row = self
                        .client
                        .query_one(&s.count[which], &params)
                        .await
                        .map_err(DbError::from)?;
                    remaining += row.get::<_, i64>(0) as u64;
                    nulls += row.get::<_, i64>(1) as u64;
                    let done = end == upper;
                    cursor = Some(end);
                    if done {
                        break;
                    }
                    rest(started.elapsed(), duty).await;
                }
                Walk::Pages => {
                    let from = cursor.as_ref().map_or(0, |c| page(c));
                    let to = (from + chunk as i64).min(page(&upper));
                    let (lo, hi) = (format!("({from},0)"), format!("({to},0)"));
                    let row = self
                        .client
                        .query_one(&s.count[1], &[&lo, &hi])
                        .await
                        .map_err(DbError::from)?;
                    remaining += row.get::<_, i64>(0) as u64;
                    nulls += row.get::<_, i64>(1) as u64;
                    cursor = Some(vec![to.to_string()]);
                    if to >= page(&upper) {
                        break;
                    }
                    rest(started.elapsed(), duty).await;
                }
            }
        }
        Ok((remaining, nulls))
    }

    /// The proof by page ranges: every page of the table now (rows the walk moved are
    /// wherever their new version went), limited to the walk's range of keys (a ctid walk's
    /// range is its pages).
    async fn prove_by_pages(
        &self,
        upper: &[String],
        duty: f64,
    ) -> Result<(u64, u64), BackfillError> {
        // Smaller chunks while resting between them: each is as long as a CPU is taken.
        let chunk_pages: i64 = if duty < 1.0 { 512 } else { 4096 };
        let pages = match self.walk {
            Walk::Pages => page(upper),
            Walk::Key { .. } => self.table_pages().await?,
        };
        let (mut remaining, mut nulls) = (0u64, 0u64);
        let mut from = 0i64;
        while from < pages {
            let started = Instant::now();
            let to = (from + chunk_pages).min(pages);
            let (lo, hi) = (format!("({from},0)"), format!("({to},0)"));
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&lo, &hi];
            if matches!(self.walk, Walk::Key { .. }) {
                params.extend(text_params(&[upper]));
            }
            let row = self
                .client
                .query_one(&self.statements.count_pages, &params)
                .await
                .map_err(DbError::from)?;
            remaining += row.get::<_, i64>(0) as u64;
            nulls += row.get::<_, i64>(1) as u64;
            from = to;
            if from < pages {
                rest(started.elapsed(), duty).await;
            }
        }
        Ok((remaining, nulls))
    }

    /// Rows past the upper bound that need the update (inserted after the walk started).
    async fn beyond(&self, upper: Option<&[String]>) -> Result<u64, BackfillError> {
        let Some(upper) = upper else { return Ok(0) };
        // A key walk compares with the bound's key values; a ctid walk with its first page.
        let bound: Vec<String> = match self.walk {
            Walk::Key { .. } => upper.to_vec(),
            Walk::Pages => vec![format!("({},0)", page(upper))],
        };
        let params = text_params(&[&bound]);
        let row = self
            .client
            .query_one(&self.statements.beyond, &params)
            .await
            .map_err(DbError::from)?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    async fn wait_while_paused(
        &self,
        pos: &Position,
        sizer: &BatchSizer,
        counters: &Counters,
    ) -> Result<(), BackfillError> {
        let why = "paused by `pgshift backfill --pause`; `pgshift backfill --resume` continues it";
        loop {
            self.set_status("paused", Some(why)).await?;
            self.progress(
                Phase::Walking { pass: pos.pass },
                pos,
                sizer,
                counters,
                Some(why.to_owned()),
            );
            tokio::time::sleep(self.backfill.options.throttle.check_every).await;
            let paused: bool = self
                .client
                .query_one(
                    "SELECT pause_requested FROM pgshift.backfills WHERE id = $1",
                    &[&self.backfill.spec.id],
                )
                .await
                .map_err(DbError::from)?
                .get(0);
            if !paused {
                self.set_status("running", None).await?;
                return Ok(());
            }
        }
    }

    /// The share of the walk done: key arithmetic for one integer key, pages for a ctid
    /// walk, keys walked over the table's row estimate otherwise.
    fn fraction(&self, pos: &Position, next: &Next) -> Option<f64> {
        let upper = pos.upper.as_ref()?;
        let f = match &self.walk {
            Walk::Pages => page(&next.cursor) as f64 / page(upper).max(1) as f64,
            _ if self.walk.integer_key() => {
                let lo = pos.lower.as_ref()?.first()?.parse::<f64>().ok()?;
                let hi = upper.first()?.parse::<f64>().ok()?;
                let at = next.cursor.first()?.parse::<f64>().ok()?;
                if hi > lo {
                    (at - lo) / (hi - lo)
                } else {
                    1.0
                }
            }
            _ => {
                if self.table.reltuples > 0.0 {
                    ((pos.walked + next.walked) as f64 / self.table.reltuples).min(0.99)
                } else {
                    return None;
                }
            }
        };
        Some(f.clamp(0.0, 1.0))
    }

    fn progress(
        &self,
        phase: Phase,
        pos: &Position,
        sizer: &BatchSizer,
        counters: &Counters,
        throttle: Option<String>,
    ) {
        let elapsed = counters.started.elapsed();
        let rate = if elapsed.as_secs_f64() > 0.0 {
            counters.rows_this_run as f64 / elapsed.as_secs_f64()
        } else {
            0.0
        };
        let fraction = match phase {
            Phase::Done => Some(1.0),
            _ => pos
                .cursor
                .as_ref()
                .and_then(|c| {
                    self.fraction(
                        &Position {
                            walked: 0,
                            ..pos.clone()
                        },
                        &Next {
                            cursor: c.clone(),
                            walked: pos.walked,
                        },
                    )
                })
                .or(Some(0.0)),
        };
        let eta = fraction
            .filter(|f| *f > 0.01 && *f < 1.0)
            .map(|f| Duration::from_secs_f64(elapsed.as_secs_f64() / f * (1.0 - f)));
        self.observer.event(&Event::BackfillProgress(Progress {
            id: self.backfill.spec.id.clone(),
            table: self.table.name.to_string(),
            phase,
            rows_done: counters.rows,
            estimate: self.estimate,
            fraction,
            rows_per_second: rate,
            eta,
            batch_size: match self.walk {
                Walk::Key { .. } => sizer.size(),
                Walk::Pages => (sizer.size() as f64 * self.rows_per_page()) as u64,
            },
            throttle,
            runs_once: self.mode.once().is_some(),
        }));
    }

    fn describe_range(&self, pos: &Position) -> String {
        let cols = self.walk.column_list();
        match (&pos.cursor, &self.walk) {
            (Some(c), Walk::Pages) => format!("ctid from page {}", c.join(", ")),
            (Some(c), _) => format!("({cols}) after ({})", c.join(", ")),
            (None, _) => format!("the first ({cols}) values"),
        }
    }
}

struct Counters {
    rows: u64,
    rows_this_run: u64,
    batches: u64,
    started: Instant,
}

struct Step {
    rows: u64,
    walked: u64,
    blocked: u64,
    /// Other client sessions at work (running a query, or in a transaction that ran one
    /// within the last second) when the checkpoint ran.
    others_active: u64,
    pause_requested: bool,
}

struct Next {
    cursor: Vec<String>,
    walked: u64,
}

enum BatchError {
    /// A lock timeout, a deadlock or a statement timeout: rolled back, retried smaller.
    Conflict(String),
    Fatal(BackfillError),
}

fn texts(row: &tokio_postgres::Row) -> Vec<String> {
    (0..row.len())
        .map(|i| row.get::<_, Option<String>>(i).unwrap_or_default())
        .collect()
}

/// Key values as the statements' text parameters, list after list.
fn text_params<'a>(lists: &[&'a [String]]) -> Vec<&'a (dyn ToSql + Sync)> {
    lists
        .iter()
        .flat_map(|list| list.iter().map(|v| v as &(dyn ToSql + Sync)))
        .collect()
}

fn page(values: &[String]) -> i64 {
    values.first().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// `host:pid` of this process, for status.
pub(super) fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// After a piece of work that took `took`, rests so that work takes `duty` of the time
/// (nothing at 1).
async fn rest(took: Duration, duty: f64) {
    if duty > 0.0 && duty < 1.0 {
        tokio::time::sleep(took.mul_f64(1.0 / duty - 1.0)).await;
    }
}
