//! Running an online change's phases: the expand (from `up` and `start`), `complete` and
//! `rollback`, each unit by the one executor, its progress recorded in its own transaction.

use std::time::Instant;

use pgshift_source::{Migration, Script, Version};

use super::state::{self, OnlineChange, OnlinePhase};
use super::{OnlinePlan, PhaseUnit, UnitKind};
use crate::error::{Result, RunError};
use crate::event::{Event, Observer};
use crate::executor::Record;
use crate::migrator::in_transaction;
use crate::migrator::Migrator;
use crate::old_tool::{announce, write_rows, OldToolRow};
use crate::prepare::{backfill_execution, generated_execution, prepare, Purpose};
use crate::progress::Progress;
use crate::units::Execution;

/// What `complete` or `rollback` did.
#[derive(Debug, Clone)]
pub struct Finished {
    pub version: String,
    pub name: String,
    /// Statements of the expand a rollback left in place (it cannot undo them).
    pub not_undone: Vec<String>,
}

impl Migrator {
    /// The online changes in progress.
    pub async fn online_changes(&self) -> Result<Vec<OnlineChange>> {
        state::read(self.connection()).await
    }

    /// How a migration runs: as an online change, or as written.
    pub async fn online_plan(&mut self, m: &Migration) -> Result<super::Planned> {
        self.ensure_server_version().await?;
        if self.options().exact || !self.options().online {
            return Ok(super::Planned::Ordinary);
        }
        let before = (!self.options().new_tables_as_in_use)
            .then_some(self.tables_before_run())
            .flatten();
        super::plan(self.connection(), m, self.pg(), before).await
    }

    /// Expands `m` (planned as `plan`): records the plan, runs the expand units, leaves it
    /// expanded. A change with nothing to contract is then complete at once.
    pub(crate) async fn expand_new(
        &mut self,
        m: &Migration,
        plan: OnlinePlan,
        observer: &dyn Observer,
    ) -> Result<()> {
        self.preflight(m, &plan, observer).await?;
        state::ensure(self.connection()).await?;
        state::begin(
            self.connection(),
            m.version.as_str(),
            &m.name,
            &m.checksum(),
            &plan,
        )
        .await?;
        let change = state::read(self.connection())
            .await?
            .into_iter()
            .find(|c| c.version == m.version.as_str())
            .ok_or_else(|| RunError::Usage("the online change just recorded is gone".into()))?;
        self.expand(m, change, observer).await
    }

    /// The operations' checks on a sample of the rows, read-only, before anything is written.
    async fn preflight(
        &self,
        m: &Migration,
        plan: &OnlinePlan,
        observer: &dyn Observer,
    ) -> Result<()> {
        let conn = self.connection();
        for op in &plan.operations {
            for check in &op.preflight {
                conn.batch_execute("BEGIN READ ONLY; SET LOCAL statement_timeout = '60s'")
                    .await
                    .map_err(pgshift_db::DbError::from)?;
                let outcome = conn.query_one(check.sql.as_str(), &[]).await;
                let _ = conn.batch_execute("ROLLBACK").await;
                let failure = match outcome {
                    Ok(row) => {
                        let failing: i64 = row.get(0);
                        if check.lossy && failing > 0 {
                            if self.options().online_allow_lossy {
                                observer.event(&Event::Info(format!(
                                    "  warning: {}: {} ({failing} of the first {} rows); going on because lossy changes are allowed",
                                    op.summary,
                                    check.failing,
                                    super::PREFLIGHT_ROWS
                                )));
                                None
                            } else {
                                Some(format!(
                                    "{failing} of the first {} rows: {}. If that is intended, run with `--allow-lossy`",
                                    super::PREFLIGHT_ROWS,
                                    check.failing
                                ))
                            }
                        } else {
                            None
                        }
                    }
                    // What the migration creates before the operation (a function its fill
                    // calls, a column its USING reads) is not there yet: the check cannot run,
                    // and the backfill tries its statements before its first batch instead.
                    Err(e)
                        if e.code().is_some_and(|c| {
                            ["42883", "42P01", "42703", "42704", "3F000"].contains(&c.code())
                        }) =>
                    {
                        observer.event(&Event::Info(format!(
                            "  {}: the check on existing rows was skipped: it names something this migration creates first ({})",
                            op.summary,
                            e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string())
                        )));
                        None
                    }
                    Err(e) => {
                        let e = pgshift_db::DbError::from(e);
                        Some(format!("{}: {e}", check.failing))
                    }
                };
                if let Some(why) = failure {
                    return Err(RunError::Usage(format!(
                        "{}: migration {} cannot start: {}: {why}\n  Nothing was changed.",
                        m.up.path.display(),
                        m.version,
                        op.summary
                    )));
                }
            }
        }
        Ok(())
    }

    /// Runs (or continues) the expand of `change`.
    pub(crate) async fn expand(
        &mut self,
        m: &Migration,
        change: OnlineChange,
        observer: &dyn Observer,
    ) -> Result<()> {
        observer.event(&Event::OnlineChange {
            version: change.version.clone(),
            operations: change
                .plan
                .operations
                .iter()
                .map(|op| op.summary.clone())
                .collect(),
        });
        self.run_phase(m, &change, OnlinePhase::Expanding, observer)
            .await?;
        if change.plan.contract.is_empty() {
            self.finish_contract(m, &change, observer).await?;
            return Ok(());
        }
        // From here old code and new code both run, and the old tool must not apply this
        // migration's SQL as written: its row goes in with the phase.
        let rows = self.old_tool_rows(m, true);
        let conn = self.connection();
        in_transaction(conn, async {
            state::set_phase(conn, &change.version, OnlinePhase::Expanded).await?;
            write_rows(conn, &rows).await
        })
        .await?;
        announce(&rows, observer);
        if !self.options().online_complete {
            observer.event(&Event::Info(format!(
                "  {} {} is expanded: old and new code both work now. Deploy the new code, then run `pgshift complete` (or `pgshift rollback` to undo the expand)",
                m.version, m.name
            )));
        }
        Ok(())
    }

    /// Contracts the expanded online change `version`, or, when none is named, every online
    /// change in progress, oldest first (migrations expanded together are completed
    /// together): each refuses until every backfill of its expand is recorded done.
    /// Empty when no online change is in progress and none was named: there is nothing to
    /// complete (a deploy script that runs `complete` again after it succeeded).
    pub async fn complete(
        &mut self,
        version: Option<&Version>,
        observer: &dyn Observer,
    ) -> Result<Vec<Finished>> {
        if version.is_none() && self.online_changes().await?.is_empty() {
            return Ok(Vec::new());
        }
        self.acquire_runner_lock(observer).await?;
        let outcome = match self.find_old_tool(observer).await {
            Ok(()) => self.complete_each(version.cloned(), observer).await,
            Err(e) => Err(e),
        };
        self.release_runner_lock().await;
        outcome
    }

    async fn complete_each(
        &mut self,
        version: Option<Version>,
        observer: &dyn Observer,
    ) -> Result<Vec<Finished>> {
        let versions = match version {
            Some(v) => vec![Some(v)],
            None => self.in_progress_versions().await?,
        };
        let mut done = Vec::with_capacity(versions.len());
        for v in versions {
            done.push(self.complete_locked(v, observer).await?);
        }
        Ok(done)
    }

    /// The versions of the online changes in progress, oldest first (`None` for one whose
    /// recorded version cannot be read: it is then the only one a command can pick).
    async fn in_progress_versions(&self) -> Result<Vec<Option<Version>>> {
        let mut versions: Vec<Option<Version>> = state::read(self.connection())
            .await?
            .iter()
            .map(|c| Version::parse(&c.version))
            .collect();
        versions.sort();
        Ok(versions)
    }

    pub(crate) async fn complete_locked(
        &mut self,
        version: Option<Version>,
        observer: &dyn Observer,
    ) -> Result<Finished> {
        self.read_server_version().await?;
        let change = self.pick_change(version.as_ref(), "complete").await?;
        let m = self.migration_of(&change)?;
        match change.phase {
            OnlinePhase::Expanding => {
                return Err(RunError::Usage(format!(
                    "migration {} is still expanding ({} of {} expand steps done): run `pgshift start` (or `pgshift up`) to finish the expand first. Nothing was changed.",
                    change.version,
                    change.done,
                    change.plan.expand.len()
                )))
            }
            OnlinePhase::RollingBack => {
                return Err(RunError::Usage(format!(
                    "migration {} is being rolled back: run `pgshift rollback` to finish that. Nothing was changed.",
                    change.version
                )))
            }
            OnlinePhase::Expanded | OnlinePhase::Contracting => {}
        }
        if change.phase == OnlinePhase::Expanded {
            let ids = backfill_ids(&change);
            let open =
                state::unfinished_backfills(self.connection(), &change.version, &ids).await?;
            if !open.is_empty() {
                let list: Vec<String> = open.iter().map(|(id, s)| format!("{id} ({s})")).collect();
                return Err(RunError::Usage(format!(
                    "migration {}: not every backfill of its expand is proved done: {}. Run `pgshift start` to finish it (`pgshift backfill status` shows where each stands). Nothing was changed.",
                    change.version,
                    list.join(", ")
                )));
            }
            state::set_phase(self.connection(), &change.version, OnlinePhase::Contracting).await?;
        }
        let change = self.reread(&change.version).await?;
        if self
            .set()
            .find(&m.version)
            .is_some_and(|f| f.checksum() != change.checksum)
        {
            observer.event(&Event::Info(format!(
                "  warning: {} changed since its expand started; the plan stored then is what completes (`pgshift rollback`, then `pgshift start`, runs the file as it is now)",
                m.up.path.display()
            )));
        }
        observer.event(&Event::Info(format!(
            "  completing {} {}: {} contract steps",
            change.version,
            change.name,
            change.plan.contract.len()
        )));
        self.run_phase(&m, &change, OnlinePhase::Contracting, observer)
            .await?;
        self.finish_contract(&m, &change, observer).await?;
        Ok(Finished {
            version: change.version.clone(),
            name: change.name.clone(),
            not_undone: Vec::new(),
        })
    }

    /// Undoes the expand of the online change `version` at any time before `complete`
    /// started, or, when none is named, of every online change in progress, newest first.
    /// A change expanded after the one named (on top of its expand) is rolled back first.
    pub async fn rollback(
        &mut self,
        version: Option<&Version>,
        observer: &dyn Observer,
    ) -> Result<Vec<Finished>> {
        self.acquire_runner_lock(observer).await?;
        let outcome = match self.find_old_tool(observer).await {
            Ok(()) => self.rollback_each(version.cloned(), observer).await,
            Err(e) => Err(e),
        };
        self.release_runner_lock().await;
        outcome
    }

    async fn rollback_each(
        &mut self,
        version: Option<Version>,
        observer: &dyn Observer,
    ) -> Result<Vec<Finished>> {
        let mut versions = self.in_progress_versions().await?;
        versions.reverse();
        let versions = match version {
            // Not in progress: `rollback_locked` says so.
            Some(v) if !versions.contains(&Some(v.clone())) => vec![Some(v)],
            Some(v) => {
                if let Some(Some(later)) =
                    versions.iter().find(|l| l.as_ref().is_some_and(|l| *l > v))
                {
                    return Err(RunError::Usage(format!(
                        "online change {later} was expanded after {v}, on top of its expand: roll it back first (`pgshift rollback {later}`), or run `pgshift rollback` without a version to roll back every online change in progress, newest first. Nothing was changed."
                    )));
                }
                vec![Some(v)]
            }
            None if versions.is_empty() => vec![None],
            None => versions,
        };
        let mut done = Vec::with_capacity(versions.len());
        for v in versions {
            done.push(self.rollback_locked(v, observer).await?);
        }
        Ok(done)
    }

    async fn rollback_locked(
        &mut self,
        version: Option<Version>,
        observer: &dyn Observer,
    ) -> Result<Finished> {
        self.read_server_version().await?;
        let change = self.pick_change(version.as_ref(), "rollback").await?;
        let m = self.migration_of(&change)?;
        if change.phase == OnlinePhase::Contracting && (change.done > 0 || change.sub > 0) {
            return Err(RunError::Usage(format!(
                "migration {}: `pgshift complete` has started ({} of {} contract steps done), so the expand can no longer be undone: run `pgshift complete` to finish it, then revert it with its down file (`pgshift down`) or a new migration. Nothing was changed.",
                change.version,
                change.done,
                change.plan.contract.len()
            )));
        }
        if change.phase != OnlinePhase::RollingBack {
            state::set_phase(self.connection(), &change.version, OnlinePhase::RollingBack).await?;
        }
        let change = self.reread(&change.version).await?;
        self.run_phase(&m, &change, OnlinePhase::RollingBack, observer)
            .await?;
        let rows = self.old_tool_rows(&m, false);
        let conn = self.connection();
        in_transaction(conn, async {
            state::end(conn, &change.version).await?;
            write_rows(conn, &rows).await
        })
        .await?;
        announce(&rows, observer);
        observer.event(&Event::Info(format!(
            "  rolled back {} {}: it is pending again",
            change.version, change.name
        )));
        Ok(Finished {
            version: change.version.clone(),
            name: change.name.clone(),
            not_undone: change.plan.not_undone.clone(),
        })
    }

    pub(crate) async fn reread(&self, version: &str) -> Result<OnlineChange> {
        state::read(self.connection())
            .await?
            .into_iter()
            .find(|c| c.version == version)
            .ok_or_else(|| RunError::Usage(format!("online change {version} is gone")))
    }

    /// The online change a command names, or the only one.
    async fn pick_change(&self, version: Option<&Version>, command: &str) -> Result<OnlineChange> {
        let changes = state::read(self.connection()).await?;
        match version {
            Some(v) => changes
                .into_iter()
                .find(|c| Version::parse(&c.version).as_ref() == Some(v))
                .ok_or_else(|| {
                    RunError::Usage(format!(
                        "migration {v} is not an online change in progress, so there is nothing to {command}; `pgshift status` shows where each migration stands"
                    ))
                }),
            None => match changes.len() {
                0 => Err(RunError::Usage(format!(
                    "no online change is in progress, so there is nothing to {command}; `pgshift start` expands the next online migration"
                ))),
                1 => Ok(changes.into_iter().next().expect("one")),
                _ => Err(RunError::Usage(format!(
                    "several online changes are in progress ({}): name the one to {command}",
                    changes.iter().map(|c| c.version.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            },
        }
    }

    /// The migration of a change: the file, or (when it is gone) a stand-in that names it.
    pub(crate) fn migration_of(&self, change: &OnlineChange) -> Result<Migration> {
        let version = Version::parse(&change.version).ok_or_else(|| {
            RunError::Usage(format!(
                "`{}` is not a version pgshift can read",
                change.version
            ))
        })?;
        if let Some(m) = self.set().find(&version) {
            return Ok(m.clone());
        }
        Ok(Migration {
            version,
            name: change.name.clone(),
            up: Script::from_recorded(
                format!(
                    "<online change {} recorded in pgshift.online_changes>",
                    change.version
                )
                .into(),
                "",
            ),
            down: None,
        })
    }

    /// The contract is done: the migration is applied (its history row written, and the old
    /// tool's with `record_in_old_tool`) and the change ends, in one transaction.
    async fn finish_contract(
        &mut self,
        m: &Migration,
        change: &OnlineChange,
        observer: &dyn Observer,
    ) -> Result<()> {
        // Written at the end of the expand already, unless that expand ran before pgshift
        // did so: removed and written again, it is there once either way.
        let rows = self.old_tool_rows(m, true);
        let conn = self.connection();
        in_transaction(conn, async {
            // From the start of the expand to the end of the contract, deploy included.
            let duration_ms: Option<i64> = conn
                .query_one(
                    "SELECT (extract(epoch FROM now() - started_at) * 1000)::bigint
                       FROM pgshift.online_changes WHERE version = $1",
                    &[&change.version],
                )
                .await
                .ok()
                .and_then(|r| r.get(0));
            crate::history::upsert(
                conn,
                &crate::history::NewRow {
                    version: change.version.clone(),
                    name: change.name.clone(),
                    checksum: change.checksum.clone(),
                    state: crate::history::RowState::Applied,
                    progress: 1,
                    units: 1,
                    duration_ms,
                    down_sql: m.recorded_down(),
                    path: m.up.path.display().to_string(),
                    format: self.set().format.name().to_string(),
                    unit_digests: Vec::new(),
                },
            )
            .await?;
            write_rows(conn, &rows).await?;
            Ok(state::end(conn, &change.version).await?)
        })
        .await?;
        announce(&rows, observer);
        Ok(())
    }

    /// With `[run] record_in_old_tool`, the statements that leave the old tool's table
    /// recording `m` as applied (once, whatever was there) or not (removed).
    fn old_tool_rows(&self, m: &Migration, applied: bool) -> Vec<OldToolRow> {
        if applied {
            return self.old_tool_applied(m);
        }
        self.old_tool()
            .map(|o| o.reverted(m.version.as_str(), &m.name, &m.up.path, self.set()))
            .into_iter()
            .collect()
    }

    /// Runs the units of `phase` from where the change stands.
    async fn run_phase(
        &mut self,
        m: &Migration,
        change: &OnlineChange,
        phase: OnlinePhase,
        observer: &dyn Observer,
    ) -> Result<()> {
        let units = change.plan.units(phase);
        let started = Instant::now();
        let version = change.version.clone();
        let mut progress = Progress::new(self.connection(), &version, observer);
        for (i, unit) in units.iter().enumerate().skip(change.done) {
            observer.event(&Event::Info(format!(
                "  {} [{}/{}] {}",
                phase.as_str(),
                i + 1,
                units.len(),
                unit.what
            )));
            let first_sub = if i == change.done { change.sub } else { 0 };
            let exec = self
                .unit_execution(m, unit, first_sub == 0, observer)
                .await?;
            let backfill_id = format!("{version}-online-{}", i + 1);
            for j in first_sub..exec.units.len() {
                if j == first_sub {
                    // A concurrent index build killed midway left an INVALID index.
                    self.executor().clean_invalid_index(&exec.units[j]).await?;
                }
                let last = j + 1 == exec.units.len();
                let record = Record::Online {
                    version: version.clone(),
                    done: if last { i + 1 } else { i },
                    sub: if last { 0 } else { j + 1 },
                    backfill_id: backfill_id.clone(),
                };
                self.executor()
                    .run_unit(
                        (m, &exec, j),
                        observer,
                        &record,
                        &mut progress,
                        Default::default(),
                    )
                    .await
                    .map_err(|e| in_phase(e, phase, i, units.len(), unit))?;
            }
            if exec.units.is_empty() {
                state::set_progress(self.connection(), &version, i + 1, 0).await?;
            }
        }
        self.timeouts_reset();
        self.connection()
            .batch_execute("RESET lock_timeout; RESET statement_timeout")
            .await
            .map_err(pgshift_db::DbError::from)?;
        observer.event(&Event::Info(format!(
            "  {} done in {:.1}s",
            phase.as_str(),
            started.elapsed().as_secs_f64()
        )));
        Ok(())
    }

    /// The executor's units for one unit of a phase.
    async fn unit_execution(
        &mut self,
        m: &Migration,
        unit: &PhaseUnit,
        first_run: bool,
        observer: &dyn Observer,
    ) -> Result<Execution> {
        let path = m.up.path.clone();
        // A plan read back from the database could have been edited by hand.
        let first = unit.sql.first().map(String::as_str).unwrap_or_default();
        Ok(match unit.kind {
            UnitKind::Transaction => {
                generated_execution(&path, &unit.what, vec![(true, unit.sql.clone())], self.pg())
            }
            UnitKind::Outside => generated_execution(
                &path,
                &unit.what,
                vec![(false, unit.sql.clone())],
                self.pg(),
            ),
            UnitKind::Backfill => backfill_execution(&path, &unit.what, first, self.pg())?,
            UnitKind::AsWritten => {
                let script = Script::from_recorded(path, first);
                let options = self.options().clone();
                let prepared = prepare(
                    self.connection(),
                    m.version.as_str(),
                    &script,
                    &options,
                    Purpose::Apply,
                    &mut pgshift_lint::Context::new(self.pg(), true),
                )
                .await?;
                // `on_drop = "pg_dump"`: the dump before the statements that drop, on the
                // first run of the unit (a resumed one has dropped some already).
                if let (Some(dump), true) = (prepared.dump, first_run) {
                    crate::backup::announce_dump(m.version.as_str(), &dump, observer);
                    let url = self.connection().url().clone();
                    let v = m.version.to_string();
                    tokio::task::spawn_blocking(move || crate::backup::run_dump(&url, &v, &dump))
                        .await
                        .map_err(|e| RunError::Usage(format!("the pg_dump task failed: {e}")))??;
                }
                prepared.exec
            }
        })
    }
}

/// An error of a phase's unit, saying where the phase stopped and what runs next: the stored
/// plan, from this unit (the file is not read again until a rollback).
fn in_phase(
    e: RunError,
    phase: OnlinePhase,
    index: usize,
    total: usize,
    unit: &PhaseUnit,
) -> RunError {
    let what = unit.what.as_str();
    let next = match phase {
        OnlinePhase::Expanding | OnlinePhase::Expanded => {
            "`pgshift start` continues at this step once the cause is fixed (the plan stored when the expand started runs, not the file: to change the SQL, `pgshift rollback` first); `pgshift rollback` undoes the expand"
        }
        OnlinePhase::Contracting => {
            "`pgshift complete` continues at this step once the cause is fixed"
        }
        OnlinePhase::RollingBack => {
            "`pgshift rollback` continues at this step once the cause is fixed"
        }
    };
    let place = format!(
        "{} step {} of {total} ({what}) stopped; the steps before it are done and recorded. {next}.",
        phase.as_str(),
        index + 1
    );
    match e {
        RunError::Statement(mut s) => {
            s.outcome = place;
            // The statement of the file the unit comes from, not the generated SQL's line.
            if let Some(line) = unit.line {
                s.line = line;
                s.column = 1;
            }
            RunError::Statement(s)
        }
        RunError::Backfill {
            version,
            path,
            line,
            error,
        } => {
            let at_statement = RunError::Backfill {
                version,
                path,
                line: unit.line.unwrap_or(line),
                error,
            };
            RunError::Usage(format!("{at_statement}\n  {place}"))
        }
        RunError::LockBudget { .. } | RunError::Usage(_) => e,
        other => RunError::Usage(format!("{other}\n  {place}")),
    }
}

/// The checkpoint names of the expand's backfills.
fn backfill_ids(change: &OnlineChange) -> Vec<String> {
    change
        .plan
        .expand
        .iter()
        .enumerate()
        .filter(|(_, u)| u.kind == UnitKind::Backfill)
        .map(|(i, _)| format!("{}-online-{}", change.version, i + 1))
        .collect()
}
