//! The runner: apply, revert and report migrations against one database.
//!
//! Invariants:
//! - one runner at a time per database: every command that writes takes a session advisory
//!   lock first and holds it to the end, so N copies of an application starting at once
//!   apply each migration exactly once;
//! - the history is true to the schema at every instant: a transactional unit records its
//!   progress in its own transaction; a statement outside a transaction is recorded right
//!   after it completes (a crash between the two re-runs that one statement on resume);
//! - an applied file whose checksum changed stops `up` before anything runs.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pgshift_db::{Connection, DatabaseUrl, DbError};
use pgshift_lint::{Context, PgVersion};
use pgshift_source::{Migration, MigrationSet, Version};
use pgshift_sql::ident::QualifiedName;
use rand::Rng;

use crate::adopt;
use crate::backup;
use crate::error::{Result, RunError};
use crate::event::{Event, Observer};
use crate::executor::{Executor, Record, Relay, SentWhole, Transactions};
use crate::history::{self, HistoryRow, NewRow, RowState};
use crate::inflight::{self, Verdict};
use crate::old_tool::{announce, write_rows, NotWritten, OldTool, OldToolRow};
use crate::options::RunOptions;
use crate::prepare::{prepare, Prepared, Purpose};
use crate::progress::Progress;
use crate::small_tables::{SmallForm, SmallTry};
use crate::units::Execution;
use futures_util::future::BoxFuture;

/// The advisory lock key every pgshift runner takes: the bytes of "pgshift" as a bigint.
pub const RUNNER_LOCK_KEY: i64 = 0x0070_6773_6869_6674;

/// Which applied migrations `down` reverts.
#[derive(Debug, Clone)]
pub enum DownTarget {
    /// The newest N.
    Steps(usize),
    /// Every migration newer than this version (the version itself stays applied).
    To(Version),
    /// All of them.
    All,
}

/// What the user found, for `resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The next step (the one in flight, or the one that failed) completed: record it done.
    Done,
    /// It did not: the next run runs it again.
    Redo,
    /// The whole migration, or its revert, was finished by hand.
    Finished,
}

/// The state of one migration, as `status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryState {
    Applied,
    Pending,
    /// Applied, but the file changed since.
    Changed,
    /// In the history, not on disk.
    MissingFromDisk,
    /// Stopped partway; `up` resumes it.
    Partial,
    /// Its revert stopped partway; `down` finishes it.
    Reverting,
    Baseline,
    Adopted,
    /// An online change whose expand is running or stopped partway: `start` continues it.
    Expanding,
    /// An online change expanded: old and new code both work; `complete` after the deploy.
    Expanded,
    /// An online change whose contract is running or stopped partway: `complete` finishes it.
    Contracting,
    /// An online change being rolled back: `rollback` finishes it.
    RollingBack,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusEntry {
    pub version: String,
    pub name: String,
    pub state: EntryState,
    pub path: Option<String>,
    pub applied_at: Option<String>,
    pub applied_by: Option<String>,
    pub duration_ms: Option<i64>,
    /// Units completed / total, for partial states.
    pub progress: Option<(i32, i32)>,
    pub has_down: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub format: String,
    pub dir: String,
    pub database: String,
    pub entries: Vec<StatusEntry>,
}

impl Status {
    pub fn pending(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| {
                matches!(
                    e.state,
                    EntryState::Pending
                        | EntryState::Partial
                        | EntryState::Expanding
                        | EntryState::Contracting
                        | EntryState::RollingBack
                )
            })
            .count()
    }
}

/// A runner bound to one database and one migration set.
pub struct Migrator {
    conn: Connection,
    set: MigrationSet,
    options: RunOptions,
    /// The server's version, read at the start of each command: which safe rewrites apply
    /// (`SET NOT NULL` through a CHECK from 12, `REINDEX CONCURRENTLY` from 12).
    pg: PgVersion,
    /// [`Self::read_server_version`] ran on this session (the server version taken, the
    /// connection check set).
    session_ready: bool,
    /// The old tool's table this command also records in (`[run] record_in_old_tool`).
    old_tool: Option<OldTool>,
    /// Tables the migrations this command ran created (`IF NOT EXISTS` only where
    /// `tables_before_run` did not hold one of that name), under the names they have now: no
    /// session used them before it, so the lock-queue guard leaves them alone, and their
    /// statements run as written, without the safe rewrites (unless `new_tables_as_in_use`:
    /// `verify` runs the rewrites production runs, on a fresh database).
    new_tables: Vec<QualifiedName>,
    /// The tables (and views) of the user's there were when `up` started (their OIDs; not
    /// the system's nor pgshift's own): one not among them was made by this run (created,
    /// `IF NOT EXISTS` where none was, or renamed since), and no code used it before. Empty:
    /// a fresh database, every table of the run is new. Not read for `start` (which runs no
    /// change as written) nor when `new_tables_as_in_use`.
    tables_before_run: Option<std::collections::HashSet<u32>>,
    /// The session holds pgshift's timeouts (`SET`, not `SET LOCAL`), set for a migration run
    /// outside a transaction and kept until the run ends, unless a migration's own statement
    /// may have changed them.
    timeouts_set: std::sync::atomic::AtomicBool,
}

/// Which way a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Apply,
    Revert,
}

impl Direction {
    /// The state of the row while a run in this direction is partway.
    fn running_state(self) -> RowState {
        match self {
            Direction::Apply => RowState::Partial,
            Direction::Revert => RowState::Reverting,
        }
    }
}

/// A migration's plan, and its first attempt when it was sent ahead ([`crate::handoff`]).
type Ready<P> = (P, Option<SentWhole>);

/// An apply prepared, ready to run: and what the run learns of its tables once it has.
struct Applying {
    run: Run,
    /// The `pg_dump` to take first (`on_drop = "pg_dump"`).
    dump: Option<backup::PlannedDump>,
    /// The tables of the run as it leaves them, when the context was told them.
    made_in_run: Option<Vec<QualifiedName>>,
    created: Vec<QualifiedName>,
    /// Created `IF NOT EXISTS`: new only if the run started without them.
    if_missing: Vec<QualifiedName>,
    /// Its SQL may reset the session: pgshift's settings are made again after it.
    resets: bool,
}

/// A revert prepared, ready to run.
struct Revert {
    run: Run,
    /// Its SQL may reset the session: pgshift's settings are made again after it.
    resets: bool,
}

/// One migration to run in one direction: its units and the history row it starts from.
struct Run {
    direction: Direction,
    /// For a revert, the down script stands in as `up`.
    migration: Migration,
    exec: Execution,
    /// The migration as written, tried first when its relations are small and free.
    small: Option<SmallForm>,
    row: Option<HistoryRow>,
    /// A revert whose down SQL comes from the history (the file is gone).
    from_history: bool,
    /// The row written into (or removed from) the old tool's table with the history's.
    old_tool: Option<OldToolRow>,
}

impl Migrator {
    pub async fn connect(
        url: &DatabaseUrl,
        set: MigrationSet,
        options: RunOptions,
    ) -> Result<Migrator> {
        let conn = pgshift_db::connect(url).await?;
        Ok(Migrator::from_connection(conn, set, options))
    }

    pub fn from_connection(conn: Connection, set: MigrationSet, options: RunOptions) -> Migrator {
        Migrator {
            conn,
            set,
            options,
            pg: PgVersion::DEFAULT,
            session_ready: false,
            old_tool: None,
            new_tables: Vec::new(),
            tables_before_run: None,
            timeouts_set: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The old tool's table this command also records in, once [`Self::find_old_tool`] ran.
    pub(crate) fn old_tool(&self) -> Option<&OldTool> {
        self.old_tool.as_ref()
    }

    /// The executor on this runner's session.
    pub(crate) fn executor(&self) -> Executor<'_> {
        Executor {
            conn: &self.conn,
            options: &self.options,
            transactions: Transactions::Own,
            new_tables: if self.fresh() {
                crate::guard::MadeInRun::All
            } else {
                crate::guard::MadeInRun::Named(&self.new_tables)
            },
        }
    }

    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// The database held no table or view of the user's when this `up` started (see
    /// `tables_before_run`): every table is one the run made.
    fn fresh(&self) -> bool {
        self.tables_before_run
            .as_ref()
            .is_some_and(|before| before.is_empty())
    }

    /// The tables there were when this `up` started, when it looked.
    pub(crate) fn tables_before_run(&self) -> Option<&std::collections::HashSet<u32>> {
        self.tables_before_run.as_ref()
    }

    /// Reads the server version, which decides the safe rewrites. From PostgreSQL 14 the
    /// session also asks the server to check every second that pgshift is still connected:
    /// a statement whose runner died is then cancelled (and a transaction rolled back)
    /// instead of running on, holding its locks, with nobody to record its end. The setting is
    /// made at the start of each command and again after a migration that may have reset it
    /// (`RESET ALL`, `DISCARD ALL`).
    pub(crate) async fn read_server_version(&mut self) -> Result<()> {
        let num = self.conn.server_version_num();
        self.session_ready = true;
        if let Some(v) = PgVersion::parse(&num.to_string()) {
            self.pg = v;
        }
        if num >= 140_000 {
            self.conn
                .batch_execute("SET client_connection_check_interval = '1s'")
                .await
                .map_err(DbError::from)?;
        }
        Ok(())
    }

    /// The session as the command set it up, again, after a migration that changed its
    /// settings ([`resets_session`]): pgshift's own, and the `search_path` it connected with.
    async fn restore_session(&mut self) -> Result<()> {
        self.timeouts_reset();
        self.conn.restore_search_path().await?;
        self.read_server_version().await
    }

    /// [`Self::read_server_version`] unless this session already did.
    pub(crate) async fn ensure_server_version(&mut self) -> Result<()> {
        if !self.session_ready {
            self.read_server_version().await?;
        }
        Ok(())
    }

    /// The server version read at the start of the current command.
    pub(crate) fn pg(&self) -> PgVersion {
        self.pg
    }

    pub fn set(&self) -> &MigrationSet {
        &self.set
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Applied, pending, changed and missing migrations. Takes no lock and writes nothing.
    pub async fn status(&self) -> Result<Status> {
        // Migrations another tool applied show as adopted, even before `up` records them.
        let rows = adopt::history_view(&self.conn, &self.set).await?;
        let online = crate::online::state::read(&self.conn).await?;
        let mut entries = Vec::new();
        for m in &self.set.migrations {
            let row = find_row(&rows, &m.version);
            let change = online.iter().find(|c| c.version == m.version.as_str());
            let state = match (row, change) {
                (None, Some(c)) => match c.phase {
                    crate::online::OnlinePhase::Expanding => EntryState::Expanding,
                    crate::online::OnlinePhase::Expanded => EntryState::Expanded,
                    crate::online::OnlinePhase::Contracting => EntryState::Contracting,
                    crate::online::OnlinePhase::RollingBack => EntryState::RollingBack,
                },
                (None, None) => EntryState::Pending,
                (Some(r), _) => match r.state {
                    RowState::Partial => EntryState::Partial,
                    RowState::Reverting => EntryState::Reverting,
                    _ if r.checksum != m.checksum() => EntryState::Changed,
                    RowState::Baseline => EntryState::Baseline,
                    RowState::Adopted => EntryState::Adopted,
                    RowState::Applied => EntryState::Applied,
                },
            };
            let progress = row
                .filter(|r| matches!(r.state, RowState::Partial | RowState::Reverting))
                .map(|r| (r.progress, r.units))
                .or_else(|| {
                    change.map(|c| {
                        let total = c.plan.units(c.phase).len();
                        let done = if c.phase == crate::online::OnlinePhase::Expanded {
                            total
                        } else {
                            c.done
                        };
                        (
                            i32::try_from(done).unwrap_or(i32::MAX),
                            i32::try_from(total).unwrap_or(i32::MAX),
                        )
                    })
                });
            entries.push(StatusEntry {
                version: m.version.to_string(),
                name: m.name.clone(),
                state,
                path: Some(m.up.path.display().to_string()),
                applied_at: row.map(|r| r.applied_at.clone()),
                applied_by: row.map(|r| r.applied_by.clone()),
                duration_ms: row.and_then(|r| r.duration_ms),
                progress,
                has_down: m.down.is_some() || row.is_some_and(|r| r.down_sql.is_some()),
            });
        }
        for r in &rows {
            let on_disk = Version::parse(&r.version).is_some_and(|v| self.set.find(&v).is_some());
            if !on_disk {
                entries.push(StatusEntry {
                    version: r.version.clone(),
                    name: r.name.clone(),
                    state: EntryState::MissingFromDisk,
                    path: r.path.clone(),
                    applied_at: Some(r.applied_at.clone()),
                    applied_by: Some(r.applied_by.clone()),
                    duration_ms: r.duration_ms,
                    progress: None,
                    has_down: r.down_sql.is_some(),
                });
            }
        }
        entries.sort_by(
            |a, b| match (Version::parse(&a.version), Version::parse(&b.version)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => a.version.cmp(&b.version),
            },
        );
        Ok(Status {
            format: self.set.format.name().to_string(),
            dir: self.set.dir.display().to_string(),
            database: self.conn.url().redacted(),
            entries,
        })
    }

    /// Applies pending migrations in order, up to and including `to` when given. Returns the
    /// versions applied.
    pub async fn up(
        &mut self,
        to: Option<&Version>,
        observer: &dyn Observer,
    ) -> Result<Vec<Version>> {
        if let Some(v) = to {
            self.require_known(v, &[])?;
        }
        self.acquire_runner_lock(observer).await?;
        let outcome = self.up_locked(to.cloned(), observer).await;
        self.release_runner_lock().await;
        outcome
    }

    async fn up_locked(
        &mut self,
        to: Option<Version>,
        observer: &dyn Observer,
    ) -> Result<Vec<Version>> {
        if self.history_there().await? {
            self.reconcile(observer, false).await?;
        } else {
            self.create_history_and_adopt(observer).await?;
        }
        self.read_server_version().await?;
        self.find_old_tool(observer).await?;
        let rows = history::read(&self.conn).await?;
        if let Some(r) = rows.iter().find(|r| r.state == RowState::Reverting) {
            return Err(RunError::HalfReverted {
                version: r.version.clone(),
                name: r.name.clone(),
                done: r.progress,
                total: r.units,
            });
        }
        self.check_drift(&rows)?;
        let missing: Vec<String> = rows
            .iter()
            .filter(|r| Version::parse(&r.version).is_none_or(|v| self.set.find(&v).is_none()))
            .map(|r| r.version.clone())
            .collect();
        if !missing.is_empty() {
            observer.event(&Event::MissingFromDisk { versions: missing });
        }
        let latest_done = rows
            .iter()
            .filter(|r| r.state.is_done())
            .filter_map(|r| Version::parse(&r.version))
            .max();

        self.tables_before_run = None;
        // (`start` asks for the expand itself: it never runs a change as written.)
        if !self.options.new_tables_as_in_use && !self.options.online_required {
            self.tables_before_run = Some(user_relations(&self.conn).await?);
        }
        let mut applied = Vec::new();
        // The online changes in progress come first: an expand that stopped continues; once
        // expanded, a change waits for `complete` (or `up --complete` contracts it now), and
        // so do the migrations after it, except online ones that name none of its tables:
        // those expand too (deployed together, completed together).
        let changes = crate::online::state::read(&self.conn).await?;
        let in_progress: Vec<String> = changes.iter().map(|c| c.version.clone()).collect();
        for change in changes {
            if change.phase == crate::online::OnlinePhase::Expanding {
                let m = self.migration_of(&change)?;
                self.expand(&m, change, observer).await?;
            }
        }
        // The changes still in progress after that; one that is gone finished with its
        // expand (it had nothing to contract).
        let now = crate::online::state::read(&self.conn).await?;
        for v in &in_progress {
            if !now.iter().any(|c| &c.version == v) {
                applied.extend(Version::parse(v));
            }
        }
        // The expanded changes the migrations after them wait for, and the tables they hold.
        let mut expanded: Vec<String> = Vec::new();
        let mut held: Vec<u32> = Vec::new();
        for change in now {
            let m = self.migration_of(&change)?;
            match change.phase {
                crate::online::OnlinePhase::Expanded | crate::online::OnlinePhase::Contracting
                    if self.options.online_complete =>
                {
                    self.complete_locked(Some(m.version.clone()), observer)
                        .await?;
                    applied.push(m.version.clone());
                }
                crate::online::OnlinePhase::Expanded => {
                    held.extend(change.plan.held_tables());
                    expanded.push(change.version);
                }
                phase => {
                    observer.event(&Event::Info(format!(
                        "  {} {} is {}: the migrations after it wait. {}",
                        change.version,
                        change.name,
                        phase.as_str(),
                        match phase {
                            crate::online::OnlinePhase::RollingBack =>
                                "`pgshift rollback` finishes the rollback.",
                            _ => "`pgshift complete` finishes the contract.",
                        }
                    )));
                    return Ok(applied);
                }
            }
        }

        let pending: Vec<(Migration, Option<HistoryRow>)> = self
            .set
            .migrations
            .iter()
            .filter(|m| to.as_ref().is_none_or(|t| m.version <= *t))
            .filter(|m| !in_progress.contains(&m.version.to_string()))
            .filter_map(|m| match find_row(&rows, &m.version) {
                None => Some((m.clone(), None)),
                Some(r) if r.state == RowState::Partial => Some((m.clone(), Some(r.clone()))),
                Some(_) => None,
            })
            .collect();

        // A fresh database: every table the run touches is one it made, which no code used
        // before it. Every migration runs as written (no online change, no safe rewrite, no
        // look at the lock queue): said once here, instead of once per migration.
        let fresh = self.fresh();
        let skipped: Vec<&str> = [
            (self.options.online && !self.options.exact, "online changes"),
            (!self.options.exact, "safe rewrites"),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect();
        if fresh && !pending.is_empty() && !skipped.is_empty() {
            observer.event(&Event::Info(format!(
                "  the database holds no table yet: every migration runs as written, without {} (no code uses its tables before this run; `pgshift verify` runs them as production will)",
                skipped.join(" or ")
            )));
        }
        // On a fresh database each migration is sent behind the one before it, before its
        // answer ([`crate::handoff`]): `ready` is the next one's plan, and what was sent.
        let tokens = crate::handoff::Tokens::new();
        let mut ready: Option<Ready<Applying>> = None;
        for (i, (m, partial)) in pending.iter().enumerate() {
            if let Some(latest) = &latest_done {
                if m.version < *latest && partial.is_none() {
                    observer.event(&Event::OutOfOrder {
                        version: m.version.to_string(),
                        latest_applied: latest.to_string(),
                    });
                }
            }
            if !expanded.is_empty() && partial.is_some() {
                self.waits(
                    m,
                    &expanded,
                    "it was partly applied as an ordinary migration",
                    observer,
                );
                return Ok(applied);
            }
            if partial.is_none() && !fresh {
                let planned = self.online_plan(m).await?;
                if !expanded.is_empty() {
                    let why = match &planned {
                        crate::online::Planned::Online(plan) => plan
                            .held_tables()
                            .any(|o| held.contains(&o))
                            .then_some("it changes a table an online change in progress holds"),
                        _ => Some("it is not an online change: it would run against the expanded schema, before the contract it may rely on"),
                    };
                    if let Some(why) = why {
                        self.waits(m, &expanded, why, observer);
                        return Ok(applied);
                    }
                }
                if let (crate::online::Planned::AsWritten(reason), true) =
                    (&planned, self.options.online_required)
                {
                    return Err(RunError::Usage(format!(
                        "{reason}. So migration {} cannot run as an online change, and `pgshift start` runs nothing as written. `pgshift up` applies it as written (it may break code running against the old schema; `pgshift plan` shows what it locks); or change the migration. Nothing was changed.",
                        m.version
                    )));
                }
                if let crate::online::Planned::AsWritten(reason) = &planned {
                    observer.event(&Event::Info(format!(
                        "  warning: {reason}. So migration {} cannot run as an online change: it runs as written, as an ordinary migration (it may break code running against the old schema)",
                        m.version
                    )));
                }
                // Only tables this run made: no code used them before it, and nobody else
                // can have them locked, so the migration runs as written, as an ordinary one
                // (verify and trace run the online plan, to prove it).
                let on_new_tables = match &planned {
                    crate::online::Planned::OnNewTables => true,
                    crate::online::Planned::Online(plan) => {
                        expanded.is_empty()
                            && !self.options.new_tables_as_in_use
                            && self.only_tables_new_in_this_run(plan)
                    }
                    _ => false,
                };
                if on_new_tables {
                    observer.event(&Event::Info(format!(
                        "  {} {} runs as written, not as an online change: it changes only tables this run made, which no code used before it",
                        m.version, m.name
                    )));
                    self.apply(m, partial.as_ref(), observer, ready.take(), None)
                        .await?;
                    applied.push(m.version.clone());
                    continue;
                }
                if let crate::online::Planned::Online(plan) = planned {
                    self.expand_new(m, plan, observer).await?;
                    let change = crate::online::state::read(&self.conn)
                        .await?
                        .into_iter()
                        .find(|c| c.version == m.version.as_str());
                    if let Some(change) = change {
                        if !self.options.online_complete {
                            held.extend(change.plan.held_tables());
                            expanded.push(change.version);
                            continue;
                        }
                        self.complete_locked(Some(m.version.clone()), observer)
                            .await?;
                    }
                    applied.push(m.version.clone());
                    continue;
                }
            }
            let next = pending
                .get(i + 1)
                .filter(|(_, partial)| fresh && expanded.is_empty() && partial.is_none())
                .map(|(next, _)| (next, tokens.gate_after(i, i + 2 < pending.len())));
            ready = self
                .apply(m, partial.as_ref(), observer, ready.take(), next)
                .await?;
            applied.push(m.version.clone());
        }
        Ok(applied)
    }

    /// Whether every table `plan` holds was made by this run (see `tables_before_run`).
    fn only_tables_new_in_this_run(&self, plan: &crate::online::OnlinePlan) -> bool {
        let Some(before) = &self.tables_before_run else {
            return false;
        };
        let mut held = plan.held_tables().peekable();
        held.peek().is_some() && held.all(|oid| !before.contains(&oid))
    }

    /// Says that `m` waits for the expanded online changes (`versions`) to be completed.
    fn waits(&self, m: &Migration, versions: &[String], why: &str, observer: &dyn Observer) {
        observer.event(&Event::Info(format!(
            "  {} {} waits, and the migrations after it, until {} {} completed: {why}. Deploy the new code, then `pgshift complete` (or `pgshift up --complete`)",
            m.version,
            m.name,
            versions.join(", "),
            if versions.len() == 1 { "is" } else { "are" }
        )));
    }

    /// Whether the history table is there, with the columns this pgshift writes added to an
    /// older one's ([`history::ensure`], whose reading of the owners only that needs).
    async fn history_there(&self) -> Result<bool> {
        match history::shape(&self.conn).await? {
            history::Shape::Missing => Ok(false),
            history::Shape::Older => history::ensure(&self.conn).await.map(|()| true),
            history::Shape::Current => Ok(true),
        }
    }

    /// Reverts applied migrations, newest first. Returns the versions reverted.
    pub async fn down(
        &mut self,
        target: DownTarget,
        observer: &dyn Observer,
    ) -> Result<Vec<String>> {
        self.acquire_runner_lock(observer).await?;
        let outcome = self.down_locked(target, observer).await;
        self.release_runner_lock().await;
        outcome
    }

    async fn down_locked(
        &mut self,
        target: DownTarget,
        observer: &dyn Observer,
    ) -> Result<Vec<String>> {
        if self.history_there().await? {
            self.reconcile(observer, false).await?;
        } else if adopt::find(&self.conn, &self.set).await?.is_some() {
            // Before the first `up` on a database another tool migrated: its migrations are
            // what there is to revert.
            self.create_history_and_adopt(observer).await?;
        } else {
            return Ok(Vec::new());
        }
        self.read_server_version().await?;
        self.find_old_tool(observer).await?;
        // An online change in progress sits on top of the history: what `down` would revert
        // comes before it (and may be what it changes). It is finished or undone first.
        if let Some(c) = crate::online::state::read(&self.conn).await?.first() {
            return Err(RunError::Usage(format!(
                "migration {} is an online change in progress ({}): `pgshift complete` or `pgshift rollback` it before reverting anything. Nothing was reverted.",
                c.version,
                c.phase.as_str()
            )));
        }
        // Newest first; each version parsed once, not at every comparison.
        let mut keyed: Vec<(Option<Version>, HistoryRow)> = history::read(&self.conn)
            .await?
            .into_iter()
            .map(|r| (Version::parse(&r.version), r))
            .collect();
        keyed.sort_by(|(va, a), (vb, b)| match (vb, va) {
            (Some(x), Some(y)) => x.cmp(y),
            _ => b.version.cmp(&a.version),
        });
        let mut applied: Vec<HistoryRow> = keyed.into_iter().map(|(_, r)| r).collect();
        // A half-finished revert is always finished first.
        if let Some(pos) = applied.iter().position(|r| r.state == RowState::Reverting) {
            let row = applied.remove(pos);
            applied.insert(0, row);
        }
        let chosen: Vec<HistoryRow> = match &target {
            DownTarget::Steps(n) => applied.into_iter().take(*n).collect(),
            DownTarget::All => applied,
            DownTarget::To(v) => {
                self.require_known(v, &applied)?;
                applied
                    .into_iter()
                    .filter(|r| {
                        Version::parse(&r.version).is_some_and(|rv| rv > *v)
                            || r.state == RowState::Reverting
                    })
                    .collect()
            }
        };
        self.revert_all(&chosen, observer).await
    }

    /// Reverts the newest applied migration and applies it again.
    pub async fn redo(&mut self, observer: &dyn Observer) -> Result<Option<Version>> {
        let reverted = self.down(DownTarget::Steps(1), observer).await?;
        let Some(version) = reverted.first().and_then(|v| Version::parse(v)) else {
            return Ok(None);
        };
        if self.set.find(&version).is_none() {
            return Err(RunError::Usage(format!(
                "reverted {version}, but it is not on disk, so it cannot be applied again"
            )));
        }
        self.up(Some(&version), observer).await?;
        Ok(Some(version))
    }

    /// Records every migration up to and including `version` as applied without running it:
    /// for a database whose schema already matches.
    pub async fn baseline(
        &mut self,
        version: &Version,
        observer: &dyn Observer,
    ) -> Result<Vec<Version>> {
        self.require_known(version, &[])?;
        self.acquire_runner_lock(observer).await?;
        let outcome = self.baseline_locked(version, observer).await;
        self.release_runner_lock().await;
        outcome
    }

    async fn baseline_locked(
        &mut self,
        version: &Version,
        observer: &dyn Observer,
    ) -> Result<Vec<Version>> {
        // Another tool's history is taken in after the baseline rows are written: a version
        // the user baselines is theirs to vouch for (the way out of an edited-file refusal).
        let existed = history::exists(&self.conn).await?;
        history::ensure(&self.conn).await?;
        if !existed {
            history::ensure_foreign(&self.conn).await?;
        }
        let rows = history::read(&self.conn).await?;
        self.find_old_tool(observer).await?;
        let mut marked = Vec::new();
        for m in self.set.migrations.iter().filter(|m| m.version <= *version) {
            if let Some(row) = find_row(&rows, &m.version) {
                if matches!(row.state, RowState::Partial | RowState::Reverting) {
                    let what = if row.state == RowState::Partial {
                        "applied"
                    } else {
                        "reverted"
                    };
                    observer.event(&Event::Info(format!(
                        "  {} {} was not recorded: it stopped partway when it was {what} ({} of {} steps), so part of it is in the database and part is not. `pgshift up` finishes it, `pgshift down` reverts it; if you finished it by hand, `pgshift resolve {} --finished` records that",
                        m.version, m.name, row.progress, row.units, m.version
                    )));
                }
                continue;
            }
            // With record_in_old_tool the old tool is told too, so that it does not run what
            // the baseline says is in the database.
            let old_tool = self.old_tool_applied(m);
            in_transaction(&self.conn, async {
                history::upsert(
                    &self.conn,
                    &row_for(
                        m,
                        RowState::Baseline,
                        1,
                        1,
                        None,
                        self.set.format.name(),
                        Vec::new(),
                    ),
                )
                .await?;
                write_rows(&self.conn, &old_tool).await
            })
            .await?;
            announce(&old_tool, observer);
            marked.push(m.version.clone());
        }
        self.reconcile(observer, false).await?;
        Ok(marked)
    }

    /// Records what happened to a migration that stopped partway (in `up` or `down`), after
    /// the user looked at the database: the step pgshift could not settle by itself, or the
    /// whole migration finished by hand. `step` (1-based), when given, must be the next step
    /// the history expects, so a decision about one step cannot land on another. Returns what
    /// was recorded, in words.
    pub async fn resolve(
        &mut self,
        version: &Version,
        step: Option<usize>,
        resolution: Resolution,
        observer: &dyn Observer,
    ) -> Result<String> {
        self.acquire_runner_lock(observer).await?;
        let outcome = match self.find_old_tool(observer).await {
            Ok(()) => {
                self.resolve_locked(version, step, resolution, observer)
                    .await
            }
            Err(e) => Err(e),
        };
        self.release_runner_lock().await;
        outcome
    }

    async fn resolve_locked(
        &mut self,
        version: &Version,
        step: Option<usize>,
        resolution: Resolution,
        observer: &dyn Observer,
    ) -> Result<String> {
        history::ensure(&self.conn).await?;
        let rows = history::read(&self.conn).await?;
        let Some(row) = find_row(&rows, version) else {
            return Err(RunError::Usage(format!(
                "migration {version} is not in the history, so nothing stopped partway; `pgshift status` lists where each migration stands"
            )));
        };
        let state = row.state;
        if !matches!(state, RowState::Partial | RowState::Reverting) {
            return Err(RunError::Usage(format!(
                "migration {version} is {}, not stopped partway: there is nothing to resolve",
                state.as_str()
            )));
        }
        let done = usize::try_from(row.progress).unwrap_or(0);
        let total = usize::try_from(row.units).unwrap_or(0);
        let next = done + 1;
        if next > total && resolution != Resolution::Finished {
            return Err(RunError::Usage(format!(
                "all {total} steps of migration {version} are recorded as done; `pgshift {}` records the end (or `pgshift resolve {version} --finished`). Nothing was recorded.",
                if state == RowState::Partial { "up" } else { "down" }
            )));
        }
        if let Some(n) = step {
            if n != next {
                return Err(RunError::Usage(format!(
                    "step {n} is not the step to resolve: migration {version} has {done} of {total} steps recorded as done, so the next one is step {next}. Nothing was recorded."
                )));
            }
        }
        let what = if state == RowState::Partial {
            "applied"
        } else {
            "reverted"
        };
        let checksum = self.set.find(version).map(Migration::checksum);
        // The end of the migration (or of its revert) goes into the old tool's table with
        // pgshift's own record, as `up` and `down` would have written it.
        let old_tool: Vec<OldToolRow> = match (&self.old_tool, self.set.find(version)) {
            (None, _) => Vec::new(),
            (Some(_), Some(m)) if state == RowState::Partial => self.old_tool_applied(m),
            // Applied, but no file to make the tool's row from: left as it is.
            (Some(_), None) if state == RowState::Partial => Vec::new(),
            (Some(o), found) => {
                let path = found
                    .map(|m| m.up.path.clone())
                    .or_else(|| row.path.as_ref().map(std::path::PathBuf::from))
                    .unwrap_or_default();
                vec![o.reverted(&row.version, &row.name, &path, &self.set)]
            }
        };
        let conn = &self.conn;
        let finish = || async {
            in_transaction(conn, async {
                if state == RowState::Partial {
                    if let Some(checksum) = &checksum {
                        history::set_checksum(conn, &row.version, checksum, None).await?;
                    }
                    history::finish(conn, &row.version, 0).await?;
                } else {
                    history::delete(conn, &row.version).await?;
                }
                write_rows(conn, &old_tool).await
            })
            .await?;
            announce(&old_tool, observer);
            Ok::<(), RunError>(())
        };
        match resolution {
            Resolution::Done if next == total => {
                finish().await?;
                Ok(format!(
                    "recorded step {next} of {total} as done: migration {version} is now {what}"
                ))
            }
            Resolution::Done => {
                let progress = i32::try_from(next).unwrap_or(i32::MAX);
                history::set_progress(&self.conn, &row.version, state, progress, None).await?;
                Ok(format!(
                    "recorded step {next} of {total} of migration {version} as done; `pgshift {}` goes on with step {}",
                    if state == RowState::Partial { "up" } else { "down" },
                    next + 1
                ))
            }
            Resolution::Redo => {
                history::clear_inflight(&self.conn, &row.version).await?;
                Ok(format!(
                    "step {next} of {total} of migration {version} will run again on the next `pgshift {}`",
                    if state == RowState::Partial { "up" } else { "down" }
                ))
            }
            Resolution::Finished => {
                finish().await?;
                Ok(format!(
                    "recorded migration {version} as {what}, finished by hand"
                ))
            }
        }
    }

    /// Records the current checksum (and down SQL) of applied migrations whose files changed:
    /// of `version` only, or of all of them.
    pub async fn restamp(
        &mut self,
        version: Option<&Version>,
        observer: &dyn Observer,
    ) -> Result<Vec<String>> {
        self.acquire_runner_lock(observer).await?;
        let outcome = self.restamp_locked(version).await;
        self.release_runner_lock().await;
        outcome
    }

    async fn restamp_locked(&mut self, version: Option<&Version>) -> Result<Vec<String>> {
        let rows = history::read(&self.conn).await?;
        if let Some(v) = version {
            if find_row(&rows, v).is_none() {
                return Err(RunError::Usage(format!(
                    "migration {v} is not applied, so there is no checksum to re-stamp; `pgshift status` lists what is applied"
                )));
            }
        }
        let mut stamped = Vec::new();
        for row in &rows {
            let Some(rv) = Version::parse(&row.version) else {
                continue;
            };
            if version.is_some_and(|v| *v != rv) {
                continue;
            }
            let Some(m) = self.set.find(&rv) else {
                continue;
            };
            let checksum = m.checksum();
            if checksum != row.checksum {
                history::set_checksum(
                    &self.conn,
                    &row.version,
                    &checksum,
                    m.recorded_down().as_deref(),
                )
                .await?;
                stamped.push(row.version.clone());
            }
        }
        Ok(stamped)
    }

    // ---- applying and reverting: one loop -------------------------------------------------

    /// Applies `m`: the plan `ready` brings (prepared, maybe sent, while the migration before
    /// ran), or one made now. With `next`, the migration after it prepares itself while this
    /// one runs, and comes back ready ([`crate::handoff`]).
    async fn apply(
        &mut self,
        m: &Migration,
        partial: Option<&HistoryRow>,
        observer: &dyn Observer,
        ready: Option<Ready<Applying>>,
        next: Option<(&Migration, crate::handoff::Gate)>,
    ) -> Result<Option<Ready<Applying>>> {
        let (applying, ahead) = match ready {
            Some(ready) => ready,
            None => (self.plan_apply(m, partial).await?, None),
        };
        let Applying {
            run,
            dump,
            made_in_run,
            mut created,
            if_missing,
            resets,
        } = applying;
        self.prepare_records(resets).await?;
        // Only on a fresh database: every table is new whatever the migration before made, so
        // the next one's plan does not depend on it.
        let next = next
            .filter(|_| !resets && self.fresh())
            .map(|(m, gate)| Next::new(self, m, gate));
        let relay = Relay {
            ahead,
            successor: next.as_ref().map(|n| n as &dyn crate::handoff::Successor),
        };
        self.execute(run, dump, observer, relay).await?;
        let ready = next.and_then(Next::take);
        created.extend(self.new_since_run_started(if_missing).await?);
        if let Some(made) = made_in_run {
            self.new_tables = made;
        }
        for t in created {
            if !self.new_tables.contains(&t) {
                self.new_tables.push(t);
            }
        }
        if resets {
            self.restore_session().await?;
        }
        Ok(ready)
    }

    /// What applying `m` runs: its script prepared against what the run made so far.
    async fn plan_apply(&self, m: &Migration, partial: Option<&HistoryRow>) -> Result<Applying> {
        let mut ctx = Context::new(self.pg, true);
        if self.fresh() {
            ctx.assume_all_made_in_run();
        } else if !self.options.new_tables_as_in_use {
            ctx.assume_made_in_run(&self.new_tables);
        }
        let prepared = prepare(
            &self.conn,
            m.version.as_str(),
            &m.up,
            &self.options,
            Purpose::Apply,
            &mut ctx,
        )
        .await?;
        // The tables of the run as this migration leaves them (renamed, dropped), when it was
        // told them; then the ones it created.
        let made_in_run: Option<Vec<QualifiedName>> = (!ctx.all_made_in_run()
            && !self.options.new_tables_as_in_use)
            .then(|| ctx.tables_made_in_run().cloned().collect());
        let created: Vec<QualifiedName> = ctx.tables_created().cloned().collect();
        let if_missing: Vec<QualifiedName> = ctx.tables_created_if_missing().cloned().collect();
        let resets = resets_session(&prepared.exec);
        let run = Run {
            direction: Direction::Apply,
            migration: m.clone(),
            exec: prepared.exec,
            small: prepared.small,
            row: partial.cloned(),
            from_history: false,
            old_tool: self.old_tool.as_ref().map(|o| o.applied(&self.set, m)),
        };
        Ok(Applying {
            run,
            dump: prepared.dump,
            made_in_run,
            created,
            if_missing,
            resets,
        })
    }

    /// Of the tables a migration created `IF NOT EXISTS`, those the catalog did not hold when
    /// the run started (on a fresh database, all of them).
    async fn new_since_run_started(
        &self,
        if_missing: Vec<QualifiedName>,
    ) -> Result<Vec<QualifiedName>> {
        let Some(before) = &self.tables_before_run else {
            return Ok(Vec::new());
        };
        if before.is_empty() || if_missing.is_empty() {
            return Ok(if_missing);
        }
        let names: Vec<String> = if_missing.iter().map(QualifiedName::quoted).collect();
        let oids: Vec<Option<u32>> = self
            .conn
            .query_one(
                "SELECT array_agg(to_regclass(n)::oid ORDER BY i)
                   FROM unnest($1::text[]) WITH ORDINALITY u(n, i)",
                &[&names],
            )
            .await
            .map_err(DbError::from)?
            .get(0);
        Ok(if_missing
            .into_iter()
            .zip(oids)
            .filter(|(_, oid)| oid.is_some_and(|o| !before.contains(&o)))
            .map(|(t, _)| t)
            .collect())
    }

    /// Whether `run` goes as one unit with no query before it (no small-table try, nothing to
    /// resume or settle: an apply from nothing, a revert of an applied migration), and does
    /// not reset the session, so that its first attempt may be sent behind the migration
    /// before ([`crate::handoff`]).
    fn sends_ahead(&self, run: &Run, resets: bool) -> bool {
        !resets
            && one_unit(&run.exec)
            && run
                .row
                .as_ref()
                .is_none_or(|r| r.state == RowState::Applied)
            && run
                .small
                .as_ref()
                .is_none_or(|s| self.executor().small_locks(s).is_none())
    }

    /// Sends the one unit of `exec` behind the unit running now, with `record` and `gate`,
    /// when that one has not answered yet and no gate of the run failed after a commit
    /// ([`crate::handoff::Gate::closed`]); notes it in `handoff`.
    fn send_behind(
        &self,
        handoff: &crate::handoff::Handoff,
        gate: &crate::handoff::Gate,
        exec: &Execution,
        record: &Record,
    ) -> Option<SentWhole> {
        if gate.is_closed() || !handoff.unanswered() {
            return None;
        }
        let sent = self.executor().send_ahead(&exec.units[0], record, gate);
        if sent.is_some() {
            handoff.note_successor_sent();
        }
        sent
    }

    /// Reverts `chosen` in order, each migration sent behind the one before it when both go
    /// to the server whole ([`crate::handoff`]): the server goes from one to the next without
    /// waiting for pgshift.
    async fn revert_all(
        &mut self,
        chosen: &[HistoryRow],
        observer: &dyn Observer,
    ) -> Result<Vec<String>> {
        let tokens = crate::handoff::Tokens::new();
        let mut reverted = Vec::new();
        let mut ready: Option<Ready<Revert>> = None;
        for (i, row) in chosen.iter().enumerate() {
            let (Revert { run, resets }, ahead) = match ready.take() {
                Some(ready) => ready,
                None => (self.plan_revert(row, observer).await?, None),
            };
            // Nothing to send when the records are prepared already (one sent ahead does not
            // reset the session; its answers are read by a task of their own meanwhile).
            self.prepare_records(resets).await?;
            // A migration that resets the session is followed by pgshift's settings again,
            // before anything else is sent.
            let next = chosen
                .get(i + 1)
                .filter(|_| !resets)
                .map(|next| Next::new(self, next, tokens.gate_after(i, i + 2 < chosen.len())));
            let relay = Relay {
                ahead,
                successor: next.as_ref().map(|n| n as &dyn crate::handoff::Successor),
            };
            self.execute(run, None, observer, relay).await?;
            ready = next.and_then(Next::take);
            if resets {
                self.restore_session().await?;
            }
            reverted.push(row.version.clone());
        }
        Ok(reverted)
    }

    /// What reverting `row` runs: its down script prepared (the file's, or the SQL the history
    /// kept), and whether it resets the session. A migration that stopped partway has the
    /// statement it left in flight settled first.
    async fn plan_revert(&self, row: &HistoryRow, observer: &dyn Observer) -> Result<Revert> {
        let on_disk = Version::parse(&row.version).and_then(|v| self.set.find(&v).cloned());
        let (script, from_history) = match on_disk.as_ref().and_then(|m| m.down.clone()) {
            Some(down) => (down, false),
            None => match &row.down_sql {
                Some(sql) => (
                    pgshift_source::Script::from_recorded(
                        format!(
                            "<down SQL of {} recorded in pgshift.migrations>",
                            row.version
                        )
                        .into(),
                        sql,
                    ),
                    true,
                ),
                None if on_disk.is_some() => {
                    return Err(RunError::NoDown {
                        version: row.version.clone(),
                        name: row.name.clone(),
                    })
                }
                None => {
                    return Err(RunError::MissingDown {
                        version: row.version.clone(),
                    })
                }
            },
        };
        let Prepared { exec, small, .. } = prepare(
            &self.conn,
            &row.version,
            &script,
            &self.options,
            Purpose::Revert,
            &mut Context::new(self.pg, true),
        )
        .await?;
        let resets = resets_session(&exec);
        let migration = Migration {
            version: Version::parse(&row.version).ok_or_else(|| {
                RunError::Usage(format!(
                    "the history holds version `{}`, which is not a version pgshift can read",
                    row.version
                ))
            })?,
            name: row.name.clone(),
            up: script,
            down: None,
        };
        let mut row = row.clone();
        if row.state == RowState::Partial {
            // A migration that stopped partway is reverted with the down written for the
            // whole of it; a statement of its up still in flight is settled first, so the
            // history says what the down starts from.
            if row.inflight.is_some() {
                let up = on_disk
                    .as_ref()
                    .map(|m| m.up.path.clone())
                    .unwrap_or_default();
                let done = self
                    .settle_inflight(&row, &migration.name, &up, RowState::Partial, observer)
                    .await?;
                row.progress = i32::try_from(done).unwrap_or(i32::MAX);
                row.inflight = None;
            }
            observer.event(&Event::Info(format!(
                "  migration {} stopped after {} of {} steps when it was applied; its down, written for the whole migration, runs as written (a statement undoing a step that never ran may fail: finish by hand and record it with `pgshift resolve {} --finished`)",
                row.version, row.progress, row.units, row.version
            )));
        }
        let up_path = match (&on_disk, &row.path) {
            (Some(m), _) => m.up.path.clone(),
            (None, Some(p)) => std::path::PathBuf::from(p),
            (None, None) => std::path::PathBuf::new(),
        };
        let old_tool = self
            .old_tool
            .as_ref()
            .map(|o| o.reverted(&row.version, &row.name, &up_path, &self.set));
        let run = Run {
            direction: Direction::Revert,
            migration,
            exec,
            small,
            row: Some(row),
            from_history,
            old_tool,
        };
        Ok(Revert { run, resets })
    }

    /// Runs a migration's up (apply) or down (revert) unit by unit: resumes where an earlier
    /// run stopped, records progress with each unit, settles a statement the earlier run left
    /// in flight, and records the end.
    /// `relay`: the first attempt already sent behind the migration before
    /// ([`Migrator::sends_ahead`] said it runs as one unit), and the migration after this one.
    async fn execute(
        &self,
        run: Run,
        dump: Option<backup::PlannedDump>,
        observer: &dyn Observer,
        relay: Relay<'_>,
    ) -> Result<()> {
        let Run {
            direction,
            migration: m,
            exec,
            small,
            row,
            from_history,
            old_tool,
        } = run;
        let version = m.version.to_string();
        let total = exec.units.len();
        // Fingerprints of the units (a hash of each one's text): only what a record keeps.
        let digests = || exec.digests();
        let state = direction.running_state();
        // The row to resume from: a partial apply, or a revert that stopped partway.
        let resuming = row.as_ref().filter(|r| r.state == state);
        let resume_at = match resuming {
            Some(r) => self.resume_point(&m, &exec, r, direction, observer).await?,
            None => 0,
        };
        // Tried as written first (one transaction) when its relations may be small and the
        // guard can take its locks NOWAIT.
        let small = small.filter(|s| {
            relay.ahead.is_none() && resuming.is_none() && self.executor().small_locks(s).is_some()
        });
        match direction {
            Direction::Apply => observer.event(&Event::Applying {
                version: version.clone(),
                name: m.name.clone(),
                units: if small.is_some() { 1 } else { total },
                resume_at,
                no_transaction: exec
                    .no_transaction_reason
                    .clone()
                    .filter(|_| small.is_none()),
            }),
            Direction::Revert => observer.event(&Event::Reverting {
                version: version.clone(),
                name: m.name.clone(),
                from_history,
            }),
        }
        if let Some(dump) = dump.filter(|_| resuming.is_none()) {
            backup::announce_dump(&version, &dump, observer);
            let url = self.conn.url().clone();
            let v = version.clone();
            // pg_dump is a child process; keep it off the async executor.
            tokio::task::spawn_blocking(move || backup::run_dump(&url, &v, &dump))
                .await
                .map_err(|e| RunError::Usage(format!("the pg_dump task failed: {e}")))??;
        }
        let started = Instant::now();
        let format = self.set.format.name();
        let mut progress = Progress::new(&self.conn, &version, observer);

        // A statement of the migration that names a timeout may set it for the session (a
        // plain `SET` in a transaction outlives its commit): the next migration run outside a
        // transaction sets pgshift's again.
        let may_set_timeouts = exec
            .units
            .iter()
            .flat_map(|u| &u.steps)
            .any(|s| pgshift_sql::lines::contains_ignore_ascii_case(s.sql(), "timeout"));
        if may_set_timeouts {
            self.timeouts_reset();
        }
        // The migration as written, when its relations are small and free: it commits with
        // its history record, or nothing of it stays and the rewritten form runs.
        let final_record = |digests: &dyn Fn() -> Vec<String>| {
            end_record(direction, &m, format, started, old_tool.clone(), digests)
        };
        let tried = match &small {
            Some(small) => {
                let record = final_record(&|| vec![small.unit.digest()]);
                Some(
                    self.executor()
                        .run_small(small, observer, &record, &mut progress)
                        .await?,
                )
            }
            None => None,
        };
        let mb = crate::small_tables::SMALL_TABLES_BYTES >> 20;
        let why_rewritten = match tried {
            Some(SmallTry::Ran) => None,
            Some(SmallTry::NotSmallOrBusy) => Some(format!(
                "its tables hold more than {mb} MB in all, or one was in use"
            )),
            Some(SmallTry::Failed) => Some("a statement failed as written".to_string()),
            None => None,
        };
        if let Some(why) = why_rewritten {
            let outside = exec
                .no_transaction_reason
                .as_ref()
                .map(|r| format!(", outside a transaction: {r}"))
                .unwrap_or_default();
            observer.event(&Event::Info(format!(
                "  runs with its safe rewrites ({why}){outside}"
            )));
        }
        if tried == Some(SmallTry::Ran) {
            observer.event(&Event::Info(format!(
                "  ran as written, in one transaction: its tables hold at most {mb} MB in all, and their locks were free"
            )));
        } else if one_unit(&exec) && resuming.is_none() {
            // The common case: the whole migration and its history record commit together.
            let record = final_record(&digests);
            self.executor()
                .run_unit((&m, &exec, 0), observer, &record, &mut progress, relay)
                .await?;
        } else {
            debug_assert!(relay.ahead.is_none(), "sent ahead, yet not one unit");
            // The partial row and the session's timeouts go out together: one round trip.
            let partial = (resuming.is_none() && direction == Direction::Apply).then(|| {
                row_for(
                    &m,
                    RowState::Partial,
                    0,
                    i32::try_from(total).unwrap_or(i32::MAX),
                    None,
                    format,
                    digests(),
                )
            });
            let executor = self.executor();
            let set_timeouts = !self.timeouts_set.load(Ordering::Relaxed);
            let (recorded, timeouts) = futures_util::future::join(
                async {
                    match &partial {
                        Some(row) => history::upsert(&self.conn, row).await,
                        None => Ok(()),
                    }
                },
                async {
                    match set_timeouts {
                        true => executor.set_session_timeouts().await,
                        false => Ok(()),
                    }
                },
            )
            .await;
            recorded?;
            timeouts?;
            self.timeouts_set
                .store(!may_set_timeouts, Ordering::Relaxed);
            let digests = (direction == Direction::Revert).then(digests);
            for i in resume_at..total {
                if i == resume_at && resuming.is_some() {
                    self.executor().clean_invalid_index(&exec.units[i]).await?;
                }
                let record = Record::Progress {
                    version: version.clone(),
                    state,
                    progress: i32::try_from(i + 1).unwrap_or(i32::MAX),
                    // A revert marks the row as reverting only once a unit of it is done
                    // (or in flight): a down that fails before leaves the migration applied.
                    digests: digests.clone(),
                    // The last unit records the end with its own work: one commit less.
                    ends_at: (i + 1 == total).then_some(started),
                    old_tool: old_tool.clone().filter(|_| i + 1 == total),
                };
                self.executor()
                    .run_unit(
                        (&m, &exec, i),
                        observer,
                        &record,
                        &mut progress,
                        Relay::default(),
                    )
                    .await?;
            }
            // The session keeps pgshift's timeouts until the run ends: every transactional
            // unit sets its own (`SET LOCAL`), every bare one is preceded by the set above, and
            // the runner lock's release resets them (`release_runner_lock`).
            if resume_at >= total {
                // Every unit was recorded done by an earlier run, but not the end: the record
                // the last unit would have written.
                Record::Progress {
                    version: version.clone(),
                    state,
                    progress: i32::try_from(total).unwrap_or(i32::MAX),
                    digests: None,
                    ends_at: Some(started),
                    old_tool: old_tool.clone(),
                }
                .write(&self.conn)
                .await?;
            }
        }
        if let Some(o) = &old_tool {
            o.announce(observer);
        }
        match direction {
            Direction::Apply => observer.event(&Event::Applied {
                version,
                name: m.name.clone(),
                duration: started.elapsed(),
            }),
            Direction::Revert => observer.event(&Event::Reverted {
                version,
                name: m.name.clone(),
                duration: started.elapsed(),
            }),
        }
        Ok(())
    }

    /// Where a stopped run resumes: after the units it recorded as done, provided they are
    /// still the first units of the script (what comes after may have been fixed), and after
    /// settling the statement it left in flight. Records the script as it is now.
    async fn resume_point(
        &self,
        m: &Migration,
        exec: &Execution,
        row: &HistoryRow,
        direction: Direction,
        observer: &dyn Observer,
    ) -> Result<usize> {
        let total = exec.units.len();
        let digests = exec.digests();
        let done = usize::try_from(row.progress).unwrap_or(0);
        let same_start = if row.unit_digests.is_empty() {
            // Recorded by an older pgshift, without fingerprints: only the shape can be
            // compared.
            usize::try_from(row.units).ok() == Some(total)
                && (direction == Direction::Revert || row.checksum == m.checksum())
        } else {
            done <= total && row.unit_digests.get(..done) == digests.get(..done)
        };
        let inflight_changed = row.inflight.as_ref().is_some_and(|f| {
            usize::try_from(f.unit).ok() != Some(done)
                || exec
                    .units
                    .get(done)
                    .and_then(|u| u.steps.first())
                    .is_none_or(|s| s.sql() != f.sql)
        });
        if !same_start || inflight_changed {
            let (done, total) = (row.progress, row.units);
            let (version, path) = (m.version.to_string(), exec.path.clone());
            return Err(match direction {
                Direction::Apply => RunError::ResumeMismatch {
                    version,
                    path,
                    done,
                    total,
                },
                Direction::Revert => RunError::RevertMismatch {
                    version,
                    path,
                    done,
                    total,
                },
            });
        }
        let state = direction.running_state();
        let done = if row.inflight.is_some() {
            self.settle_inflight(row, &m.name, &exec.path, state, observer)
                .await?
        } else {
            done
        };
        let checksum = (direction == Direction::Apply).then(|| m.checksum());
        history::start_units(
            &self.conn,
            &row.version,
            state,
            i32::try_from(done).unwrap_or(i32::MAX),
            &digests,
            checksum.as_deref(),
        )
        .await?;
        Ok(done)
    }

    /// Settles the statement a stopped run left in flight: returns the units done after it.
    async fn settle_inflight(
        &self,
        row: &HistoryRow,
        name: &str,
        path: &std::path::Path,
        state: RowState,
        observer: &dyn Observer,
    ) -> Result<usize> {
        let done = usize::try_from(row.progress).unwrap_or(0);
        let Some(f) = &row.inflight else {
            return Ok(done);
        };
        let verdict = inflight::settle(&self.conn, &row.version, f, observer).await?;
        let step = done + 1;
        match verdict {
            Verdict::Landed(why) => {
                let progress = i32::try_from(step).unwrap_or(i32::MAX);
                history::set_progress(&self.conn, &row.version, state, progress, None).await?;
                observer.event(&Event::Settled {
                    version: row.version.clone(),
                    step,
                    landed: true,
                    why,
                });
                Ok(step)
            }
            Verdict::NotLanded(why) => {
                history::clear_inflight(&self.conn, &row.version).await?;
                observer.event(&Event::Settled {
                    version: row.version.clone(),
                    step,
                    landed: false,
                    why,
                });
                Ok(done)
            }
            Verdict::Unknown(why) => Err(RunError::InFlightUnknown(Box::new(
                crate::error::InFlightUnknown {
                    version: row.version.clone(),
                    name: name.to_string(),
                    path: path.to_path_buf(),
                    step,
                    total: row.units,
                    sql: inflight::clip(&pgshift_sql::redact_secrets(&f.sql)),
                    why,
                },
            ))),
        }
    }

    // ---- locking, drift, adoption ---------------------------------------------------------

    /// The history's record statements prepared on the session (one round trip, the first
    /// time), unless the migration about to run may deallocate prepared statements (`DISCARD
    /// ALL`, `DEALLOCATE`): then the session forgets them and records are sent unprepared.
    async fn prepare_records(&self, resets: bool) -> Result<()> {
        if resets {
            self.conn.forget_prepared();
            return Ok(());
        }
        Ok(history::prepare_records(&self.conn).await?)
    }

    /// The session's timeouts were reset: the next migration run outside a transaction sets
    /// them again.
    pub(crate) fn timeouts_reset(&self) {
        self.timeouts_set.store(false, Ordering::Relaxed);
    }

    /// Ends a run: the session's timeouts back to the server's (a migration run outside a
    /// transaction set them for the session) and the runner lock released, in one round trip.
    pub(crate) async fn release_runner_lock(&self) {
        self.timeouts_reset();
        // A session lock: it also goes away if this connection dies, so a failure here is
        // harmless.
        let _ = futures_util::future::join(
            self.conn
                .batch_execute("RESET lock_timeout; RESET statement_timeout"),
            self.conn.execute_typed(
                "SELECT pg_advisory_unlock($1)",
                &[(&RUNNER_LOCK_KEY, tokio_postgres::types::Type::INT8)],
            ),
        )
        .await;
    }

    /// Takes the runner lock: a command starts. What an earlier command of this `Migrator`
    /// made is not new to this one (the guard looks at it, the safe rewrites apply).
    pub(crate) async fn acquire_runner_lock(&mut self, observer: &dyn Observer) -> Result<()> {
        self.new_tables.clear();
        self.tables_before_run = None;
        let started = Instant::now();
        let mut told = false;
        loop {
            let row = self
                .conn
                .query_one("SELECT pg_try_advisory_lock($1)", &[&RUNNER_LOCK_KEY])
                .await
                .map_err(DbError::from)?;
            if row.get::<_, bool>(0) {
                return Ok(());
            }
            let holder = self.runner_lock_holder().await;
            if !told {
                observer.event(&Event::WaitingForRunnerLock { holder_pid: holder });
                told = true;
            }
            if started.elapsed() > self.options.runner_lock_wait {
                return Err(RunError::LockWait {
                    waited_secs: started.elapsed().as_secs(),
                    holder: holder.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
                });
            }
            let pause = rand::thread_rng().gen_range(50..250);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    async fn runner_lock_holder(&self) -> Option<i32> {
        let classid = RUNNER_LOCK_KEY >> 32;
        let objid = RUNNER_LOCK_KEY & 0xffff_ffff;
        self.conn
            .query_opt(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&classid, &objid],
            )
            .await
            .ok()
            .flatten()
            .map(|r| r.get(0))
    }

    fn check_drift(&self, rows: &[HistoryRow]) -> Result<()> {
        for row in rows.iter().filter(|r| r.state.is_done()) {
            let Some(m) = Version::parse(&row.version).and_then(|v| self.set.find(&v)) else {
                continue;
            };
            let current = m.checksum();
            if current != row.checksum {
                return Err(RunError::Drift {
                    version: row.version.clone(),
                    path: m.up.path.clone(),
                    applied: short(&row.checksum),
                    current: short(&current),
                });
            }
        }
        Ok(())
    }

    /// With `[run] record_in_old_tool` (once [`Self::find_old_tool`] found the table), the
    /// statements that leave the old tool's table recording `m` as applied exactly once
    /// ([`OldTool::applied`]).
    pub(crate) fn old_tool_applied(&self, m: &Migration) -> Vec<OldToolRow> {
        self.old_tool
            .as_ref()
            .map(|o| o.applied(&self.set, m))
            .into_iter()
            .collect()
    }

    /// With `[run] record_in_old_tool`, finds the old tool's table this command also writes,
    /// and says so when there is none.
    pub(crate) async fn find_old_tool(&mut self, observer: &dyn Observer) -> Result<()> {
        self.old_tool = None;
        if !self.options.record_in_old_tool {
            return Ok(());
        }
        match OldTool::find(&self.conn, &self.set).await? {
            Ok(found) => {
                // Each row written is also remembered as seen, so the next adoption does not
                // take it for the old tool's own.
                history::ensure_foreign(&self.conn).await?;
                self.old_tool = Some(found);
            }
            Err(NotWritten::Unsupported { tool }) => {
                let writable = pgshift_source::Format::all()
                    .iter()
                    .filter(|f| f.descriptor().history.iter().any(|t| t.record.is_some()))
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ");
                observer.event(&Event::Info(format!(
                    "warning: record_in_old_tool is on, but pgshift cannot write {tool}'s history (it can for {writable}): nothing is recorded for {tool}. Remove {tool} from every deploy path, or it will run again what pgshift applies."
                )))
            }
            Err(NotWritten::NoTable { tool, table }) => observer.event(&Event::Info(format!(
                "warning: record_in_old_tool is on, but this database has no {table} ({tool}'s history table): nothing is recorded for {tool}. pgshift writes only a table {tool} created."
            ))),
        }
        Ok(())
    }

    /// Creates pgshift's history and fills it from another tool's, in one transaction.
    async fn create_history_and_adopt(&self, observer: &dyn Observer) -> Result<()> {
        self.reconcile(observer, true).await
    }

    /// Takes in what another tool recorded since pgshift last looked, in one transaction: a
    /// migration that tool applied (a teammate, another environment, an application still
    /// running that tool at start-up) is recorded as adopted, never run a second time. Every
    /// row of the other tool's table is remembered once seen (`pgshift.foreign_history`), so
    /// a migration pgshift reverted is not adopted again from that tool's stale table. The
    /// transaction makes a failed adoption (a dirty golang-migrate database) leave nothing
    /// behind, so the next run after the repair adopts.
    async fn reconcile(&self, observer: &dyn Observer, creating_history: bool) -> Result<()> {
        in_transaction(&self.conn, async {
            if creating_history {
                history::ensure(&self.conn).await?;
                history::ensure_foreign(&self.conn).await?;
            }
            self.adopt_new(observer, creating_history).await
        })
        .await
    }

    async fn adopt_new(&self, observer: &dyn Observer, creating_history: bool) -> Result<()> {
        let Some(found) = adopt::find(&self.conn, &self.set).await? else {
            return Ok(());
        };
        // A history made before pgshift remembered the other tool's rows: which of that
        // tool's versions pgshift has not recorded were reverted by pgshift, and which were
        // applied by the tool since, cannot be told.
        let first_look = history::ensure_foreign(&self.conn).await?;
        let seen = history::foreign_seen(&self.conn, found.tool).await?;
        let mut found = found;
        let seen_versions: Vec<Version> = seen.iter().filter_map(|s| Version::parse(s)).collect();
        found.versions = adopt::new_versions(&found, &seen_versions);
        let rows = history::read(&self.conn).await?;
        // A file edited after the other tool applied it is not what ran: adopting it would
        // record the edit as applied (sqlx and Flyway themselves refuse to go on).
        let new = |v: &Version| {
            !seen
                .iter()
                .any(|s| Version::parse(s).is_some_and(|sv| sv == *v))
                && find_row(&rows, v).is_none()
        };
        if let Some(v) = found.edited.iter().find(|v| new(v)) {
            let path = self
                .set
                .find(v)
                .map(|m| m.up.path.display().to_string())
                .unwrap_or_default();
            return Err(RunError::Usage(format!(
                "{path}: {tool} applied migration {v} with a different checksum than the file has now ({table}): the file was edited after {tool} ran it, so what is on disk is not what ran. Nothing was recorded. Restore the file as it was applied; or, if the database already matches the edited file, record it with `pgshift baseline {v}`.",
                tool = found.tool,
                table = found.table,
            )));
        }
        let mut adopted = 0;
        let mut unknown = Vec::new();
        for v in &found.versions {
            let text = v.to_string();
            if seen
                .iter()
                .any(|s| Version::parse(s).is_some_and(|sv| sv == *v))
            {
                continue;
            }
            history::mark_foreign_seen(&self.conn, found.tool, &text).await?;
            if find_row(&rows, v).is_some() {
                continue;
            }
            if first_look && !creating_history {
                unknown.push(text);
                continue;
            }
            if let Some(m) = self.set.find(v) {
                history::upsert(
                    &self.conn,
                    &row_for(
                        m,
                        RowState::Adopted,
                        1,
                        1,
                        None,
                        self.set.format.name(),
                        Vec::new(),
                    ),
                )
                .await?;
                adopted += 1;
            }
        }
        if adopted > 0 || creating_history {
            observer.event(&Event::Adopted {
                tool: found.tool,
                table: found.table,
                count: adopted,
            });
        }
        if !unknown.is_empty() {
            observer.event(&Event::Info(format!(
                "warning: {} records {} as applied but pgshift's history does not, and this history predates pgshift remembering {}'s rows: pgshift cannot tell whether it reverted them or {} applied them since. They count as pending. If {} applied them, record them with `pgshift baseline VERSION` before `pgshift up`.",
                found.table,
                unknown.join(", "),
                found.tool,
                found.tool,
                found.tool
            )));
        }
        Ok(())
    }

    fn require_known(&self, v: &Version, rows: &[HistoryRow]) -> Result<()> {
        let in_history = rows
            .iter()
            .any(|r| Version::parse(&r.version).is_some_and(|rv| rv == *v));
        if self.set.find(v).is_none() && !in_history {
            return Err(RunError::UnknownVersion {
                version: v.to_string(),
                dir: self.set.dir.clone(),
            });
        }
        Ok(())
    }
}

/// A migration that may have changed the session's settings (`RESET ALL`, `DISCARD ALL`, a
/// `SET search_path` or pg_dump's `set_config('search_path', '', false)`, ...), after which the
/// runner makes its own again: the next migration runs as it would in a run of its own.
pub(crate) fn resets_session(exec: &Execution) -> bool {
    let starts_with = |sql: &str, word: &str| {
        sql.get(..word.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(word))
    };
    exec.units.iter().flat_map(|u| &u.steps).any(|s| {
        let sql = s.sql().trim_start();
        starts_with(sql, "reset")
            || starts_with(sql, "discard")
            || starts_with(sql, "deallocate")
            || starts_with(sql, "set schema")
            || pgshift_sql::lines::contains_ignore_ascii_case(
                sql,
                "client_connection_check_interval",
            )
            || pgshift_sql::lines::contains_ignore_ascii_case(sql, "search_path")
    })
}

fn short(checksum: &str) -> String {
    checksum.chars().take(12).collect()
}

fn find_row<'r>(rows: &'r [HistoryRow], v: &Version) -> Option<&'r HistoryRow> {
    // The row is recorded with the version's own text almost always: compare text first, and
    // parse every row only when that finds nothing (each `up` looks up every migration, so
    // parsing each row for each would cost n² parses per run).
    let text = v.to_string();
    rows.iter().find(|r| r.version == text).or_else(|| {
        rows.iter()
            .find(|r| Version::parse(&r.version).is_some_and(|rv| rv == *v))
    })
}

/// The record that ends a migration run in one transaction: the row applied (with its
/// duration since `started`), or, for a revert, gone.
fn end_record(
    direction: Direction,
    m: &Migration,
    format: &str,
    started: Instant,
    old_tool: Option<OldToolRow>,
    digests: &dyn Fn() -> Vec<String>,
) -> Record {
    match direction {
        Direction::Apply => Record::Applied {
            row: row_for(m, RowState::Applied, 1, 1, None, format, digests()),
            started,
            old_tool,
            timed_by_server: false,
        },
        Direction::Revert => Record::Reverted {
            version: m.version.to_string(),
            old_tool,
        },
    }
}

/// Whether a script runs as one transactional unit committed with its record. Not a unit that
/// may run outside a transaction instead (`Unit::when_busy`): it records its progress as one
/// that always would, in flight first when it does.
fn one_unit(exec: &Execution) -> bool {
    matches!(&exec.units[..], [unit] if unit.transactional && unit.when_busy.is_none())
}

/// The next migration of a run, preparing itself while the one before it runs
/// ([`crate::handoff`]): `what` is a row to revert or a migration to apply.
struct Next<'a, W: Upcoming> {
    migrator: &'a Migrator,
    what: W,
    /// The gate it is sent ahead with: what the migration running now marks when it
    /// commits, and what this one marks.
    gate: crate::handoff::Gate,
    /// Its plan, and its first attempt when it was sent.
    ready: std::sync::Mutex<Option<Ready<W::Plan>>>,
}

impl<'a, W: Upcoming> Next<'a, W> {
    fn new(migrator: &'a Migrator, what: W, gate: crate::handoff::Gate) -> Self {
        Next {
            migrator,
            what,
            gate,
            ready: std::sync::Mutex::new(None),
        }
    }

    /// What it prepared and sent, when the migration before committed at its first attempt.
    fn take(self) -> Option<Ready<W::Plan>> {
        self.ready.into_inner().ok().flatten()
    }
}

/// What a [`Next`] prepares, and when it may go ahead.
trait Upcoming: Send + Sync {
    type Plan: Send;
    /// Its plan, made while the migration before runs; `None` when it is made at its turn
    /// instead (an error is found again then, and said).
    fn plan<'a>(&'a self, migrator: &'a Migrator) -> BoxFuture<'a, Option<Self::Plan>>;
    /// The record its one unit is sent with, when it may go ahead: one unit with no query
    /// before it (no small-table try, no `pg_dump`, nothing to resume or settle).
    fn ahead(plan: &Self::Plan, migrator: &Migrator) -> Option<Record>;
    fn exec(plan: &Self::Plan) -> &Execution;
}

impl Upcoming for &HistoryRow {
    type Plan = Revert;

    fn plan<'a>(&'a self, migrator: &'a Migrator) -> BoxFuture<'a, Option<Revert>> {
        Box::pin(async move {
            // A migration applied partway, or half reverted, is settled before its revert.
            if self.state != RowState::Applied {
                return None;
            }
            migrator.plan_revert(self, &crate::Silent).await.ok()
        })
    }

    fn ahead(plan: &Revert, migrator: &Migrator) -> Option<Record> {
        let run = &plan.run;
        migrator.sends_ahead(run, plan.resets).then(|| {
            end_record(
                Direction::Revert,
                &run.migration,
                migrator.set.format.name(),
                Instant::now(),
                run.old_tool.clone(),
                &|| run.exec.digests(),
            )
        })
    }

    fn exec(plan: &Revert) -> &Execution {
        &plan.run.exec
    }
}

impl Upcoming for &Migration {
    type Plan = Applying;

    fn plan<'a>(&'a self, migrator: &'a Migrator) -> BoxFuture<'a, Option<Applying>> {
        Box::pin(async move { migrator.plan_apply(self, None).await.ok() })
    }

    fn ahead(plan: &Applying, migrator: &Migrator) -> Option<Record> {
        let run = &plan.run;
        (plan.dump.is_none() && migrator.sends_ahead(run, plan.resets)).then(|| {
            let mut record = end_record(
                Direction::Apply,
                &run.migration,
                migrator.set.format.name(),
                Instant::now(),
                run.old_tool.clone(),
                &|| run.exec.digests(),
            );
            if let Record::Applied {
                timed_by_server, ..
            } = &mut record
            {
                *timed_by_server = true;
            }
            record
        })
    }

    fn exec(plan: &Applying) -> &Execution {
        &plan.run.exec
    }
}

impl<W: Upcoming> crate::handoff::Successor for Next<'_, W> {
    fn token_before(&self) -> &str {
        self.gate.after.as_deref().unwrap_or_default()
    }

    fn while_unanswered<'a>(&'a self, handoff: &'a crate::handoff::Handoff) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(plan) = self.what.plan(self.migrator).await else {
                return;
            };
            let sent = W::ahead(&plan, self.migrator).and_then(|record| {
                self.migrator
                    .send_behind(handoff, &self.gate, W::exec(&plan), &record)
            });
            if let Ok(mut ready) = self.ready.lock() {
                *ready = Some((plan, sent));
            }
        })
    }

    fn discard(&self) {
        if let Ok(mut ready) = self.ready.lock() {
            *ready = None;
        }
    }
}

fn row_for(
    m: &Migration,
    state: RowState,
    progress: i32,
    units: i32,
    duration_ms: Option<i64>,
    format: &str,
    unit_digests: Vec<String>,
) -> NewRow {
    NewRow {
        version: m.version.to_string(),
        name: m.name.clone(),
        checksum: m.checksum(),
        state,
        progress,
        units,
        duration_ms,
        down_sql: m.recorded_down(),
        path: m.up.path.display().to_string(),
        format: format.to_string(),
        unit_digests,
    }
}

/// The OIDs of the user's tables, views and foreign tables (not the system's nor pgshift's
/// own). Empty: a fresh database.
pub(crate) async fn user_relations(
    conn: &pgshift_db::Connection,
) -> Result<std::collections::HashSet<u32>> {
    let oids: Vec<u32> = conn
        .query_one(
            "SELECT coalesce(array_agg(c.oid), '{}') FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshift')",
            &[],
        )
        .await
        .map_err(DbError::from)?
        .get(0);
    Ok(oids.into_iter().collect())
}

/// One line about a session in the way: who, doing what, for how long.
pub fn describe_session(s: &pgshift_db::Session) -> String {
    let app = if s.application_name.is_empty() {
        "no application_name"
    } else {
        s.application_name.as_str()
    };
    let age = s.xact_age.map_or_else(String::new, |a| {
        format!(", in a transaction for {:.1} s", a.as_secs_f64())
    });
    // Another session's query can hold anything, a password included.
    let query: String = pgshift_sql::redact_secrets(&s.query)
        .chars()
        .take(80)
        .collect();
    let line = format!(
        "pid {} ({app}, user {}, {}{age}): {query}",
        s.pid, s.user, s.state
    );
    pgshift_sql::printable_line(&line).into_owned()
}

/// Runs `work` in a transaction of its own on `conn`: committed when it succeeds, rolled back
/// when it fails.
pub(crate) async fn in_transaction(
    conn: &pgshift_db::Connection,
    work: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    conn.batch_execute("BEGIN")
        .await
        .map_err(pgshift_db::DbError::from)?;
    match work.await {
        Ok(()) => Ok(conn
            .batch_execute("COMMIT")
            .await
            .map_err(pgshift_db::DbError::from)?),
        Err(e) => {
            let _ = conn.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}
