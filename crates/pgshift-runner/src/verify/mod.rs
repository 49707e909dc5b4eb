//! `pgshift verify`: prove a migration set on a scratch PostgreSQL — the CI gate of
//! up → down → up → nothing pending, with the schema compared at every step, and every broken
//! down named in one run.
//!
//! 1. **Each migration on its own.** Apply it as `pgshift up` would (safe rewrites included)
//!    and snapshot the schema; then, in a transaction that is rolled back, apply its down and
//!    compare with the snapshot taken before its up, and apply its up again and compare with
//!    the snapshot after it. A down that fails or does not restore the schema is reported and
//!    verification goes on: the rollback leaves the schema as the up made it, so the next
//!    migration is checked against the schema it really starts from and each broken down is
//!    reported once, for what it does, not for what an earlier one left behind.
//!    `CONCURRENTLY` statements run without it in that transaction (the same object results);
//!    a migration with a statement that cannot run in a transaction at all (`CREATE DATABASE`,
//!    `ALTER SYSTEM`, ...) is checked with real commits through the runner instead, and the
//!    database is rebuilt after a failure.
//! 2. **The full cycle.** Revert everything through the runner, newest first, compare with the
//!    schema before the first migration; apply everything again and compare with the schema
//!    the first pass ended with; confirm nothing is pending. Differences in objects a broken
//!    down was already blamed for are not reported again.
//!
//! Alongside, the analyzer ([`pgshift_lint::check_set`]) reviews the set — gated to the
//! migrations added or changed since a reference when [`VerifyOptions::gate`] says so — and the
//! set is traced ([`crate::trace`]) in a second scratch database on the same server.
//!
//! Schema comparison is [`Snapshot::diff_with`]: column order ignored unless
//! [`VerifyOptions::strict_order`], bodies normalised, generated names matched by what they
//! name. Rendering is in [`crate::report::verify`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pgshift_db::snapshot::{
    unseen_by_event_triggers, DiffOptions, Difference, ObjectKind, SchemaWatch, Snapshot,
};
use pgshift_db::{Connection, DatabaseUrl, DbError};
use pgshift_lint::{check_set, CheckOptions, PgVersion, Severity};
use pgshift_source::{Migration, MigrationSet, Script};
use serde::Serialize;

use crate::error::{Result, RunError};
use crate::event::Observer;
use crate::history;
use crate::migrator::{DownTarget, Migrator};
use crate::options::RunOptions;
use crate::trace::{
    load_seed, trace_fresh_database, version_text, ScratchServer, TraceOptions, TraceReport,
};
use crate::units::{InTransaction, Step};

pub use crate::report::verify::{
    render_json, render_markdown, render_markdown_capped, render_terminal, trace_highlights,
    MARKDOWN_LIMIT,
};

/// The scratch database verify creates on a throwaway cluster (or a given server).
const VERIFY_DATABASE: &str = "pgshift_verify";

/// The trace's scratch database: unique per run, because with `--database-url` several verify
/// runs (CI jobs, tests) may share one server.
fn trace_database() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "pgshift_verify_trace_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// How `verify` runs.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// A scratch database to run in. `None`: a throwaway cluster.
    pub database_url: Option<DatabaseUrl>,
    /// Run in `database_url` even when it already holds objects.
    pub allow_non_empty: bool,
    /// The PostgreSQL server binaries for the throwaway cluster (another major version).
    pub pg_bin: Option<PathBuf>,
    /// SQL loaded before the first migration, so the migrations run against data.
    pub seed: Option<PathBuf>,
    /// The analyzer's configuration.
    pub check: CheckOptions,
    /// Which migrations the analyzer gates; `None`: all of them.
    pub gate: Option<Gate>,
    /// Compare the order of columns too.
    pub strict_order: bool,
    /// Trace the set too.
    pub trace: bool,
    /// How migrations are applied.
    pub run: RunOptions,
}

impl Default for VerifyOptions {
    fn default() -> VerifyOptions {
        VerifyOptions {
            database_url: None,
            allow_non_empty: false,
            pg_bin: None,
            seed: None,
            check: CheckOptions::default(),
            gate: None,
            strict_order: false,
            trace: true,
            run: RunOptions::default(),
        }
    }
}

/// The migrations whose analyzer findings count: the others are history nobody can change
/// (up/down/up still runs every migration).
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    /// What the set was compared with: `--changed-since origin/main`, `baseline 2024...`.
    pub since: String,
    /// The files added or changed since (canonical paths).
    pub files: BTreeSet<PathBuf>,
}

impl Gate {
    /// Migrations newer than `version` are gated (a baseline in `pgshift.toml`).
    pub fn after_version(set: &MigrationSet, version: &pgshift_source::Version) -> Gate {
        let files = set
            .migrations
            .iter()
            .filter(|m| m.version > *version)
            .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_ref()))
            .map(|s| canonical(&s.path))
            .collect();
        Gate {
            since: format!("baseline {version}"),
            files,
        }
    }

    fn covers(&self, path: &Path) -> bool {
        self.files.contains(&canonical(path))
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The step of verify where a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// A migration's up failed during the first pass.
    Up,
    /// A down failed.
    Down,
    /// A down ran but the schema differs from before its up.
    Restore,
    /// A migration's up, applied again after its down, failed or gave a different schema;
    /// or applying everything again after the full cycle's down did.
    Reapply,
    /// Reverting everything did not give back the schema before the first migration (beyond
    /// what the broken downs already explain).
    Cycle,
    /// Something is still pending at the end.
    Pending,
    /// The analyzer reports errors.
    Analyzer,
}

/// One reason verify fails.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub phase: Phase,
    /// `VERSION NAME` of the guilty migration, when there is one.
    pub migration: Option<String>,
    /// The file at fault (`path`, or `path:line:column` where a statement failed).
    pub file: Option<String>,
    /// What went wrong, in one line.
    pub message: String,
    /// The schema differences, one line each.
    pub differences: Vec<String>,
    /// More: the rest of an error message, line diffs of function and view bodies.
    pub details: Vec<String>,
}

/// What happened to one migration in each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Passed,
    Failed,
    /// Ran, but left a different schema than expected.
    Differs,
    /// No down part.
    ForwardOnly,
    /// Not reached (an earlier step failed).
    NotRun,
}

impl Outcome {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Outcome::Passed => "ok",
            Outcome::Failed => "FAILED",
            Outcome::Differs => "DIFFERS",
            Outcome::ForwardOnly => "forward-only",
            Outcome::NotRun => "-",
        }
    }
}

/// One migration's results.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationResult {
    pub version: String,
    pub name: String,
    pub path: String,
    /// The first up.
    pub up: Outcome,
    pub up_ms: Option<u64>,
    /// Its down, checked on its own.
    pub down: Outcome,
    pub down_ms: Option<u64>,
    /// Its up again, after its down.
    pub reapply: Outcome,
}

/// One finding of the analyzer, flattened for the report.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyzerFinding {
    /// `path:line:column`.
    pub location: String,
    pub severity: Severity,
    pub rule: String,
    pub message: String,
}

/// The analyzer's verdict on the set. Hints are counted, not listed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnalyzerSummary {
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
    pub hints: usize,
    /// Findings in migrations outside the gate (not counted above, not listed).
    pub outside_gate: usize,
    /// What the gate compared with, when there is one.
    pub gate: Option<String>,
    /// Errors, warnings and notes, in file order.
    pub findings: Vec<AnalyzerFinding>,
}

/// The counts the verdict line gives.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub migrations: usize,
    /// Downs checked on their own.
    pub downs_checked: usize,
    /// Downs that failed or do not restore the schema.
    pub downs_broken: usize,
    pub forward_only: usize,
    /// Every failure of the report.
    pub failures: usize,
}

/// Where the time went, and what the schema snapshots cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Snapshots taken.
    pub snapshots: usize,
    /// Their total time.
    pub snapshot_ms: u64,
    /// The average time and size (objects) of the first and the last tenth of the snapshots:
    /// a snapshot's cost follows the size of the schema, not the number of migrations applied.
    pub first_tenth: SnapshotCost,
    pub last_tenth: SnapshotCost,
}

/// The average cost of some snapshots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotCost {
    pub ms: f64,
    pub objects: f64,
}

/// The result of `pgshift verify`; every renderer formats this.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub passed: bool,
    pub counts: Counts,
    pub dir: String,
    pub format: String,
    /// Where it ran: the throwaway cluster or the redacted scratch URL.
    pub server: String,
    pub server_version: String,
    pub migrations: Vec<MigrationResult>,
    pub failures: Vec<Failure>,
    pub notes: Vec<String>,
    pub analyzer: AnalyzerSummary,
    /// `None` when tracing was off or could not run (see `notes`).
    pub trace: Option<TraceReport>,
    pub duration_ms: u64,
    pub timings: Timings,
}

impl VerifyReport {
    /// The verdict with its counts, in one line: `FAILED: 3 of 40 downs broken, ...`.
    pub fn verdict(&self) -> String {
        let c = &self.counts;
        let mut parts = vec![format!("{} migrations", c.migrations)];
        parts.push(format!(
            "{} of {} downs broken",
            c.downs_broken, c.downs_checked
        ));
        if c.forward_only > 0 {
            parts.push(format!("{} forward-only", c.forward_only));
        }
        let a = &self.analyzer;
        parts.push(format!(
            "analyzer {} error(s), {} warning(s), {} note(s), {} hint(s)",
            a.errors, a.warnings, a.notes, a.hints
        ));
        if let Some(t) = &self.trace {
            parts.push(format!("trace {} disagreement(s)", t.disagreements().len()));
        }
        format!(
            "{}: {} failure(s); {}",
            if self.passed { "PASSED" } else { "FAILED" },
            c.failures,
            parts.join(", ")
        )
    }
}

/// Runs verify over `set`. `Err` only when verification could not be done at all (no
/// PostgreSQL binaries, unreachable or non-empty scratch database); every problem of the
/// migrations themselves is a [`Failure`] in the report.
pub async fn verify(
    set: &MigrationSet,
    options: &VerifyOptions,
    observer: &dyn Observer,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let server = match &options.database_url {
        Some(url) => ScratchServer::start(None, Some(url.clone())).await?,
        None => ScratchServer::start(options.pg_bin.clone(), None).await?,
    };
    let url = match &options.database_url {
        Some(url) => url.clone(),
        None => server.create_database(VERIFY_DATABASE).await?,
    };
    let inspector = pgshift_db::connect(&url).await?;
    if options.database_url.is_some() && !options.allow_non_empty {
        refuse_non_empty(&inspector, &url).await?;
    }
    let version_num = inspector.server_version_num();
    if let Some(seed) = &options.seed {
        load_seed(&inspector, seed).await?;
    }
    let watch = SchemaWatch::install(&inspector).await?;
    let conn = pgshift_db::connect(&url).await?;
    // verify proves the whole set, online changes included: each is expanded, then completed.
    let migrator = Migrator::from_connection(conn, set.clone(), whole(&options.run));

    let mut run = Run {
        report: VerifyReport {
            passed: false,
            counts: Counts::default(),
            dir: set.dir.display().to_string(),
            format: set.format.name().to_string(),
            server: server.describe(),
            server_version: version_text(version_num),
            migrations: set
                .migrations
                .iter()
                .map(|m| MigrationResult {
                    version: m.version.to_string(),
                    name: m.name.clone(),
                    path: m.up.path.display().to_string(),
                    up: Outcome::NotRun,
                    up_ms: None,
                    down: if m.down.is_some() {
                        Outcome::NotRun
                    } else {
                        Outcome::ForwardOnly
                    },
                    down_ms: None,
                    reapply: Outcome::NotRun,
                })
                .collect(),
            failures: Vec::new(),
            notes: Vec::new(),
            analyzer: AnalyzerSummary::default(),
            trace: None,
            duration_ms: 0,
            timings: Timings::default(),
        },
        inspector,
        watch: tokio::sync::Mutex::new(watch),
        migrator,
        url,
        rebuildable: options.database_url.is_none(),
        server: &server,
        options,
        pg: PgVersion::parse(&version_num.to_string()).unwrap_or(PgVersion::DEFAULT),
        diff: DiffOptions {
            strict_order: options.strict_order,
        },
        blamed: BTreeSet::new(),
        snapshot_costs: std::sync::Mutex::new(Vec::new()),
        labels_left: std::sync::Mutex::new(Vec::new()),
    };
    // The migrations that ran as online changes: the analyzer's findings about what made them
    // online (a rename, a retype, a dropped column) are notes, since `up` ran them online here.
    let online_versions = std::sync::Mutex::new(BTreeSet::new());
    let watching = |e: &crate::event::Event| {
        if let crate::event::Event::OnlineChange { version, .. } = e {
            if let Ok(mut v) = online_versions.lock() {
                v.insert(version.clone());
            }
        }
        observer.event(e)
    };
    let cycled = run.cycle(set, &watching).await;
    if cycled.is_err() {
        // Best effort: the error is what the user needs to see.
        let _ = run.watch.lock().await.uninstall(&run.inspector).await;
    }
    let first_pass_ok = cycled?;
    let Run {
        mut report,
        inspector,
        watch,
        migrator,
        snapshot_costs,
        ..
    } = run;
    report.timings = timings(&snapshot_costs.into_inner().unwrap_or_default());
    // A scratch database given by URL is left without pgshift's event triggers.
    watch.into_inner().uninstall(&inspector).await?;
    drop(inspector);
    drop(migrator);

    let online_versions = online_versions.into_inner().unwrap_or_default();
    report.analyzer = analyze(set, &options.check, options.gate.as_ref(), &online_versions);
    if report.analyzer.errors > 0 {
        report.failures.push(Failure {
            phase: Phase::Analyzer,
            migration: None,
            file: None,
            message: format!(
                "the analyzer reports {} error(s){}; `pgshift check` shows each with its safe rewrite",
                report.analyzer.errors,
                report
                    .analyzer
                    .gate
                    .as_ref()
                    .map(|g| format!(" in the migrations changed since {g}"))
                    .unwrap_or_default()
            ),
            differences: Vec::new(),
            details: Vec::new(),
        });
    }

    if options.trace && first_pass_ok {
        let trace_db = trace_database();
        match server.create_database(&trace_db).await {
            Ok(trace_url) => {
                let trace_options = TraceOptions {
                    seed: options.seed.clone(),
                    run: options.run.clone(),
                    ..TraceOptions::throwaway()
                };
                match trace_fresh_database(&trace_url, &server.describe(), set, &trace_options)
                    .await
                {
                    Ok(trace) => report.trace = Some(trace),
                    Err(e) => report.notes.push(format!("the trace could not run: {e}")),
                }
                server.drop_database(&trace_db).await;
            }
            Err(e) => report.notes.push(format!(
                "the trace was skipped: it needs a second scratch database and `CREATE DATABASE` failed: {e}"
            )),
        }
    } else if options.trace {
        report
            .notes
            .push("the trace was skipped because the first up pass failed".to_string());
    }

    if options.database_url.is_none() {
        server.drop_database(VERIFY_DATABASE).await;
    }
    report.passed = report.failures.is_empty();
    report.counts.migrations = report.migrations.len();
    report.counts.downs_checked = report
        .migrations
        .iter()
        .filter(|m| !matches!(m.down, Outcome::NotRun | Outcome::ForwardOnly))
        .count();
    report.counts.downs_broken = report
        .migrations
        .iter()
        .filter(|m| matches!(m.down, Outcome::Failed | Outcome::Differs))
        .count();
    report.counts.forward_only = report
        .migrations
        .iter()
        .filter(|m| m.down == Outcome::ForwardOnly)
        .count();
    report.counts.failures = report.failures.len();
    report.duration_ms = millis(started.elapsed());
    Ok(report)
}

/// A scratch database must not hold anything (beyond the `public` schema and `plpgsql`):
/// verify reverts every migration, and would happily drop what is there.
async fn refuse_non_empty(conn: &Connection, url: &DatabaseUrl) -> Result<()> {
    let snapshot = Snapshot::take(conn).await?;
    let found: Vec<String> = snapshot
        .objects
        .iter()
        .filter(|o| {
            !(o.kind == ObjectKind::Schema && o.name == "public"
                || o.kind == ObjectKind::Extension && o.name == "plpgsql")
        })
        .take(5)
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect();
    if !found.is_empty() || history::exists(conn).await? {
        let what = if found.is_empty() {
            "pgshift's history table".to_string()
        } else {
            found.join(", ")
        };
        return Err(RunError::Usage(format!(
            "{} is not empty ({what}, ...). verify applies and reverts every migration there, so it needs a scratch database: create an empty one, run without --scratch-url (and PGSHIFT_SCRATCH_DATABASE_URL) to use a throwaway cluster, or pass --allow-non-empty if this database really is disposable",
            url.redacted()
        )));
    }
    Ok(())
}

/// The analyzer's findings; hints counted only, findings outside the gate left out.
/// The run options with online changes completed right after their expand.
fn whole(run: &RunOptions) -> RunOptions {
    RunOptions {
        online_complete: true,
        new_tables_as_in_use: true,
        ..run.clone()
    }
}

fn analyze(
    set: &MigrationSet,
    options: &CheckOptions,
    gate: Option<&Gate>,
    online_versions: &BTreeSet<String>,
) -> AnalyzerSummary {
    let report = check_set(set, options);
    let online_paths: Vec<&std::path::Path> = set
        .migrations
        .iter()
        .filter(|m| online_versions.contains(m.version.as_str()))
        .map(|m| m.up.path.as_path())
        .collect();
    let mut summary = AnalyzerSummary {
        gate: gate.map(|g| g.since.clone()),
        ..AnalyzerSummary::default()
    };
    for f in report.findings() {
        if gate.is_some_and(|g| !g.covers(&f.path)) {
            summary.outside_gate += 1;
            continue;
        }
        let ran_online = f.severity != Severity::Hint
            && pgshift_lint::ONLINE_RULES.contains(&f.rule)
            && online_paths.contains(&f.path.as_path());
        let (severity, message) = if ran_online {
            (
                Severity::Note,
                format!(
                    "ran as an online change (expand, then contract after the deploy): {}",
                    f.message
                ),
            )
        } else {
            (f.severity, f.message.clone())
        };
        match severity {
            Severity::Error => summary.errors += 1,
            Severity::Warning => summary.warnings += 1,
            Severity::Note => summary.notes += 1,
            Severity::Hint => {
                summary.hints += 1;
                continue;
            }
        }
        summary.findings.push(AnalyzerFinding {
            location: format!("{}:{}:{}", f.path.display(), f.start.line, f.start.column),
            severity,
            rule: f.rule.to_string(),
            message,
        });
    }
    summary
}

fn timings(costs: &[(Duration, usize)]) -> Timings {
    let tenth = (costs.len() / 10).max(1).min(costs.len());
    let average = |part: &[(Duration, usize)]| {
        let n = part.len().max(1) as f64;
        SnapshotCost {
            ms: part
                .iter()
                .map(|(d, _)| d.as_secs_f64() * 1000.0)
                .sum::<f64>()
                / n,
            objects: part.iter().map(|(_, o)| *o as f64).sum::<f64>() / n,
        }
    };
    Timings {
        snapshots: costs.len(),
        snapshot_ms: millis(costs.iter().map(|(d, _)| *d).sum()),
        first_tenth: average(&costs[..tenth]),
        last_tenth: average(&costs[costs.len() - tenth..]),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn label(m: &Migration) -> String {
    format!("{} {}", m.version, m.name)
}

/// The first line of a message, and the rest as detail lines.
fn split_message(text: &str) -> (String, Vec<String>) {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").to_string();
    let rest = lines
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    (first, rest)
}

/// How a migration's down (and its up again) behaved in a rolled-back transaction.
enum Checked {
    /// Down restored the schema and the up again gave the same schema.
    Passed,
    /// A statement failed: where and why.
    DownFailed {
        at: String,
        error: String,
    },
    DownDiffers(Vec<Difference>),
    UpFailed {
        at: String,
        error: String,
    },
    UpDiffers(Vec<Difference>),
}

impl Checked {
    fn is_unsafe_new_enum_value(&self) -> bool {
        matches!(self, Checked::DownFailed { error, .. } | Checked::UpFailed { error, .. } if error.contains("55P04"))
    }
}

/// The state of one verify run.
struct Run<'a> {
    report: VerifyReport,
    /// A session of its own for snapshots (it sees exactly what the runner committed) and for
    /// the rolled-back checks of each down.
    inspector: Connection,
    /// The schema as the inspector last saw it, read again where DDL touched it.
    watch: tokio::sync::Mutex<SchemaWatch>,
    migrator: Migrator,
    url: DatabaseUrl,
    /// A throwaway database that can be dropped and built again after a down that could only
    /// be checked with real commits failed.
    rebuildable: bool,
    server: &'a ScratchServer,
    options: &'a VerifyOptions,
    pg: PgVersion,
    diff: DiffOptions,
    /// Objects a broken down was blamed for: not blamed again in the full cycle.
    blamed: BTreeSet<(ObjectKind, String)>,
    /// Each snapshot's duration and size, in order.
    snapshot_costs: std::sync::Mutex<Vec<(Duration, usize)>>,
    /// The enum labels the down being checked left (its up added them; PostgreSQL cannot
    /// drop one), as `type: labels`.
    labels_left: std::sync::Mutex<Vec<String>>,
}

impl Run<'_> {
    /// The differences a down left from the schema before its up, but for enum labels its
    /// up added, which no down can drop (PostgreSQL has no `DROP VALUE`): those are noted.
    fn left_by_down(&self, diff: Vec<Difference>) -> Vec<Difference> {
        let (kept, rest): (Vec<_>, Vec<_>) = diff
            .into_iter()
            .partition(|d| d.enum_labels_added().is_some());
        if let Ok(mut left) = self.labels_left.lock() {
            left.extend(kept.iter().map(|d| {
                format!(
                    "{}: {}",
                    d.name,
                    d.enum_labels_added().unwrap_or_default().join(", ")
                )
            }));
        }
        rest
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let started = Instant::now();
        let snapshot = self.watch.lock().await.take(&self.inspector).await?;
        if let Ok(mut costs) = self.snapshot_costs.lock() {
            costs.push((started.elapsed(), snapshot.objects.len()));
        }
        Ok(snapshot)
    }

    /// The next snapshot reads the whole schema: after SQL whose effect the watch's event
    /// triggers may not report, and after a runner failure (a statement that failed halfway
    /// outside a transaction reports nothing).
    async fn invalidate_after(&self, sql: Option<&str>) {
        if sql.is_none_or(unseen_by_event_triggers) {
            self.watch.lock().await.invalidate();
        }
    }

    fn fail(&mut self, failure: Failure) {
        self.report.failures.push(failure);
    }

    /// A problem of the full cycle: a failure, unless a down (or an up applied again after it)
    /// was already found broken on its own — then the full cycle mostly sees that down's
    /// consequences (a table its down left behind makes the up again fail with "already
    /// exists"), which are noted, not reported as problems of their own.
    fn fail_cycle(&mut self, failure: Failure) {
        let broken = self.report.migrations.iter().any(|m| {
            matches!(m.down, Outcome::Failed | Outcome::Differs)
                || matches!(m.reapply, Outcome::Failed | Outcome::Differs)
        });
        if broken {
            self.report.notes.push(format!(
                "the full cycle (every down, then every up) found more, probably a consequence of the broken downs above: {}{}",
                failure.message,
                failure
                    .differences
                    .first()
                    .map(|d| format!(" ({d}{})", if failure.differences.len() > 1 { ", ..." } else { "" }))
                    .unwrap_or_default()
            ));
        } else {
            self.fail(failure);
        }
    }

    fn blame(&mut self, differences: &[Difference]) {
        self.blamed
            .extend(differences.iter().map(|d| (d.kind, d.name.clone())));
    }

    /// Differences not already explained by a broken down.
    fn unexplained(&self, differences: Vec<Difference>) -> Vec<Difference> {
        differences
            .into_iter()
            .filter(|d| !self.blamed.contains(&(d.kind, d.name.clone())))
            .collect()
    }

    /// Each migration on its own, then the full cycle. Returns whether the first up pass
    /// completed.
    async fn cycle(&mut self, set: &MigrationSet, observer: &dyn Observer) -> Result<bool> {
        // The full cycle (2.) reverts down to the newest forward-only migration: the schema
        // after it is what the cycle must give back.
        let stop = set.migrations.iter().rposition(|m| m.down.is_none());
        let expected = stop.map_or(0, |f| f + 1);
        // 1. Each migration: up, then its down and its up again, checked on their own. Only
        // the snapshots the checks compare are kept (before and after the current migration,
        // and the cycle's start), so the snapshots held do not grow with the migrations.
        let mut before = self.snapshot().await?;
        let mut cycle_start = (expected == 0).then(|| before.clone());
        for (i, m) in set.migrations.iter().enumerate() {
            let started = Instant::now();
            let outcome = self.migrator.up(Some(&m.version), observer).await;
            self.report.migrations[i].up_ms = Some(millis(started.elapsed()));
            if let Err(e) = outcome {
                self.report.migrations[i].up = Outcome::Failed;
                let (message, details) = split_message(&e.to_string());
                self.fail(Failure {
                    phase: Phase::Up,
                    migration: Some(label(m)),
                    file: Some(m.up.path.display().to_string()),
                    message: format!("the up of {} failed: {message}", label(m)),
                    differences: Vec::new(),
                    details,
                });
                return Ok(false);
            }
            self.report.migrations[i].up = Outcome::Passed;
            self.invalidate_after(Some(m.up.sql())).await;
            let after = self.snapshot().await?;
            if i + 1 == expected {
                cycle_start = Some(after.clone());
            }
            let before_m = std::mem::replace(&mut before, after);
            let after = &before;
            let Some(down) = &m.down else { continue };
            let started = Instant::now();
            // An enum value added by the down and used by the up again (or the other way
            // round) is unusable in the transaction that added it (SQLSTATE 55P04), though the
            // runner commits in between: such a migration is checked with real commits.
            let in_transaction = self
                .check_in_transaction(m, down, &before_m, after)
                .await?
                .filter(|c| !c.is_unsafe_new_enum_value());
            let checked = match in_transaction {
                Some(checked) => checked,
                None => {
                    // Checked again: what the first check noted is noted again, or not.
                    if let Ok(mut left) = self.labels_left.lock() {
                        left.clear();
                    }
                    match self
                        .check_with_commits(m, &before_m, after, observer)
                        .await?
                    {
                        Some(checked) => checked,
                        None => return Ok(true),
                    }
                }
            };
            self.report.migrations[i].down_ms = Some(millis(started.elapsed()));
            self.record(i, m, down, checked);
        }

        // 2. The full cycle: everything down (to the newest forward-only migration), everything
        // up again, nothing pending.
        if let Some(f) = stop {
            self.report.notes.push(format!(
                "{} is forward-only (it has no down), so the full cycle reverts only the migrations after it{}",
                label(&set.migrations[f]),
                if f > 0 {
                    format!("; the {f} migration(s) before it were checked one by one only as far as their downs go")
                } else {
                    String::new()
                }
            ));
        }
        let target = match stop {
            Some(f) => DownTarget::To(set.migrations[f].version.clone()),
            None => DownTarget::All,
        };
        match self.migrator.down(target, observer).await {
            Err(e) => {
                let guilty = guilty_migration(&e, set);
                let known = guilty.is_some_and(|i| {
                    matches!(
                        self.report.migrations[i].down,
                        Outcome::Failed | Outcome::Differs
                    )
                });
                if known {
                    self.report.notes.push(format!(
                        "the full cycle's down stopped at {}, whose down is reported above",
                        guilty
                            .map(|i| label(&set.migrations[i]))
                            .unwrap_or_default()
                    ));
                } else {
                    let (message, details) = split_message(&e.to_string());
                    self.fail_cycle(Failure {
                        phase: Phase::Down,
                        migration: guilty.map(|i| label(&set.migrations[i])),
                        file: None,
                        message: format!(
                            "reverting everything newest first failed, though each down passed on its own: {message}"
                        ),
                        differences: Vec::new(),
                        details,
                    });
                }
            }
            Ok(_) => {
                // The full cycle's two snapshots read everything.
                self.invalidate_after(None).await;
                let after = self.snapshot().await?;
                let start = cycle_start.as_ref().unwrap_or(&before);
                let diff = self.unexplained(Snapshot::diff_with(start, &after, self.diff));
                if !diff.is_empty() {
                    self.fail_cycle(Failure {
                        phase: Phase::Cycle,
                        migration: None,
                        file: None,
                        message: "reverting every migration newest first does not give back the schema before the first, though each down restores it on its own".to_string(),
                        differences: diff
                            .iter()
                            .map(|d| d.describe("before the first up", "after every down"))
                            .collect(),
                        details: diff.iter().flat_map(Difference::details).collect(),
                    });
                }
            }
        }
        if let Err(e) = self.migrator.up(None, observer).await {
            let (message, details) = split_message(&e.to_string());
            self.fail_cycle(Failure {
                phase: Phase::Reapply,
                migration: guilty_migration(&e, set).map(|i| label(&set.migrations[i])),
                file: None,
                message: format!(
                    "applying the migrations again after the full down failed: {message}"
                ),
                differences: Vec::new(),
                details,
            });
            return Ok(true);
        }
        self.invalidate_after(None).await;
        let again = self.snapshot().await?;
        let diff = self.unexplained(Snapshot::diff_with(&before, &again, self.diff));
        if !diff.is_empty() {
            self.fail_cycle(Failure {
                phase: Phase::Reapply,
                migration: None,
                file: None,
                message: "applying the migrations again after the full down does not give the schema of the first pass".to_string(),
                differences: diff
                    .iter()
                    .map(|d| d.describe("after the first up", "after up again"))
                    .collect(),
                details: diff.iter().flat_map(Difference::details).collect(),
            });
        }

        // 3. Nothing pending.
        let status = self.migrator.status().await?;
        let pending: Vec<String> = status
            .entries
            .iter()
            .filter(|e| {
                !matches!(
                    e.state,
                    crate::migrator::EntryState::Applied
                        | crate::migrator::EntryState::Baseline
                        | crate::migrator::EntryState::Adopted
                )
            })
            .map(|e| format!("{} {} ({:?})", e.version, e.name, e.state))
            .collect();
        if !pending.is_empty() {
            self.fail_cycle(Failure {
                phase: Phase::Pending,
                migration: None,
                file: None,
                message: format!("{} migration(s) not applied at the end", pending.len()),
                differences: pending,
                details: Vec::new(),
            });
        }
        Ok(true)
    }

    /// Records what the check of one migration's down found.
    fn record(&mut self, i: usize, m: &Migration, down: &Script, checked: Checked) {
        let down_path = down.path.display().to_string();
        let left = self
            .labels_left
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        if !left.is_empty() {
            self.report.notes.push(format!(
                "the down of {} leaves the enum labels its up added ({}): PostgreSQL cannot drop an enum label, so this is not counted as a difference (a down that must remove them re-creates the type)",
                label(m),
                left.join("; ")
            ));
        }
        let result = &mut self.report.migrations[i];
        match checked {
            Checked::Passed => {
                result.down = Outcome::Passed;
                result.reapply = Outcome::Passed;
            }
            Checked::DownFailed { at, error } => {
                result.down = Outcome::Failed;
                let (message, details) = split_message(&error);
                self.fail(Failure {
                    phase: Phase::Down,
                    migration: Some(label(m)),
                    file: Some(at.clone()),
                    message: format!("the down of {} failed at {at}: {message}", label(m)),
                    differences: Vec::new(),
                    details,
                });
            }
            Checked::DownDiffers(diff) => {
                result.down = Outcome::Differs;
                self.blame(&diff);
                self.fail(Failure {
                    phase: Phase::Restore,
                    migration: Some(label(m)),
                    file: Some(down_path.clone()),
                    message: format!("the down of {} does not restore the schema", label(m)),
                    differences: diff
                        .iter()
                        .map(|d| d.describe("before its up", "after its down"))
                        .collect(),
                    details: diff.iter().flat_map(Difference::details).collect(),
                });
            }
            Checked::UpFailed { at, error } => {
                result.down = Outcome::Passed;
                result.reapply = Outcome::Failed;
                let (message, details) = split_message(&error);
                self.fail(Failure {
                    phase: Phase::Reapply,
                    migration: Some(label(m)),
                    file: Some(at.clone()),
                    message: format!(
                        "the up of {} fails when applied again after its down, at {at}: {message}",
                        label(m)
                    ),
                    differences: Vec::new(),
                    details,
                });
            }
            Checked::UpDiffers(diff) => {
                result.down = Outcome::Passed;
                result.reapply = Outcome::Differs;
                self.blame(&diff);
                self.fail(Failure {
                    phase: Phase::Reapply,
                    migration: Some(label(m)),
                    file: Some(m.up.path.display().to_string()),
                    message: format!(
                        "the up of {} gives another schema when applied again after its down",
                        label(m)
                    ),
                    differences: diff
                        .iter()
                        .map(|d| d.describe("after its first up", "after up again"))
                        .collect(),
                    details: diff.iter().flat_map(Difference::details).collect(),
                });
            }
        }
    }

    /// Checks a down, and the up after it, in a transaction that is rolled back. `None` when a
    /// statement cannot run in a transaction block at all.
    async fn check_in_transaction(
        &self,
        m: &Migration,
        down: &Script,
        before: &Snapshot,
        after: &Snapshot,
    ) -> Result<Option<Checked>> {
        let version = m.version.to_string();
        let down_steps = match crate::prepare::prepare_offline(&version, down, true, self.pg) {
            Ok(p) => p.exec,
            Err(e) => {
                return Ok(Some(Checked::DownFailed {
                    at: down.path.display().to_string(),
                    error: e.to_string(),
                }))
            }
        };
        let up_steps = crate::prepare::prepare_offline(&version, &m.up, true, self.pg)?.exec;
        let steps = |exec: &crate::units::Execution| -> Vec<Step> {
            exec.units.iter().flat_map(|u| u.steps.clone()).collect()
        };
        let (down_list, up_list) = (steps(&down_steps), steps(&up_steps));
        if down_list
            .iter()
            .chain(&up_list)
            .any(|s| s.facts.in_rolled_back_transaction == InTransaction::Impossible)
        {
            return Ok(None);
        }
        self.watch.lock().await.mark();
        self.inspector
            .batch_execute("BEGIN")
            .await
            .map_err(DbError::from)?;
        let checked = self
            .run_both(&down_steps, &down_list, &up_steps, &up_list, before, after)
            .await;
        let rolled_back = self.inspector.batch_execute("ROLLBACK").await;
        self.watch.lock().await.rolled_back();
        let checked = checked?;
        rolled_back.map_err(DbError::from)?;
        Ok(Some(checked))
    }

    async fn run_both(
        &self,
        down_exec: &crate::units::Execution,
        down: &[Step],
        up_exec: &crate::units::Execution,
        up: &[Step],
        before: &Snapshot,
        after: &Snapshot,
    ) -> Result<Checked> {
        if let Err((at, error)) = self.run_steps(down_exec, down).await {
            return Ok(Checked::DownFailed { at, error });
        }
        self.invalidate_after(Some(&down_exec.file_text)).await;
        let diff = self.left_by_down(Snapshot::diff_with(
            before,
            &self.snapshot().await?,
            self.diff,
        ));
        if !diff.is_empty() {
            return Ok(Checked::DownDiffers(diff));
        }
        if let Err((at, error)) = self.run_steps(up_exec, up).await {
            return Ok(Checked::UpFailed { at, error });
        }
        self.invalidate_after(Some(&up_exec.file_text)).await;
        let diff = Snapshot::diff_with(after, &self.snapshot().await?, self.diff);
        if !diff.is_empty() {
            return Ok(Checked::UpDiffers(diff));
        }
        Ok(Checked::Passed)
    }

    /// Runs steps in the open transaction; on failure, `path:line:column` and the error.
    async fn run_steps(
        &self,
        exec: &crate::units::Execution,
        steps: &[Step],
    ) -> std::result::Result<(), (String, String)> {
        for step in steps {
            let sent = match &step.facts.in_rolled_back_transaction {
                InTransaction::AsWritten => step.send(&self.inspector).await,
                InTransaction::Instead(sql) => self
                    .inspector
                    .batch_execute(sql)
                    .await
                    .map_err(DbError::from),
                InTransaction::Skip | InTransaction::Impossible => Ok(()),
            };
            if let Err(e) = sent {
                self.forget_prepared_after(exec);
                let text = &exec.file_text;
                let at = pgshift_sql::LineIndex::new(text).line_col(text, step.origin.start);
                return Err((
                    format!("{}:{}:{}", exec.path.display(), at.line, at.column),
                    e.to_string(),
                ));
            }
        }
        self.forget_prepared_after(exec);
        Ok(())
    }

    /// SQL that may have deallocated the inspector's prepared statements (`DISCARD ALL`,
    /// `DEALLOCATE ALL`) makes it prepare them again: a statement found missing inside the
    /// open transaction would abort it.
    fn forget_prepared_after(&self, exec: &crate::units::Execution) {
        if crate::migrator::resets_session(exec) {
            self.inspector.forget_prepared();
        }
    }

    /// Checks a down, and the up after it, through the runner with real commits. After a
    /// failure the database is built again up to this migration; `None` when it cannot be
    /// (a scratch database given by URL), which ends the run.
    async fn check_with_commits(
        &mut self,
        m: &Migration,
        before: &Snapshot,
        after: &Snapshot,
        observer: &dyn Observer,
    ) -> Result<Option<Checked>> {
        let down_path = m
            .down
            .as_ref()
            .map(|d| d.path.display().to_string())
            .unwrap_or_default();
        let reverted = self.migrator.down(DownTarget::Steps(1), observer).await;
        self.invalidate_after(reverted.as_ref().ok().and(m.down.as_ref().map(Script::sql)))
            .await;
        let checked = match reverted {
            Err(e) => Checked::DownFailed {
                at: down_path,
                error: e.to_string(),
            },
            Ok(_) => {
                let diff = self.left_by_down(Snapshot::diff_with(
                    before,
                    &self.snapshot().await?,
                    self.diff,
                ));
                if !diff.is_empty() {
                    Checked::DownDiffers(diff)
                } else {
                    let applied = self.migrator.up(Some(&m.version), observer).await;
                    self.invalidate_after(applied.as_ref().ok().map(|_| m.up.sql()))
                        .await;
                    match applied {
                        Err(e) => Checked::UpFailed {
                            at: m.up.path.display().to_string(),
                            error: e.to_string(),
                        },
                        Ok(_) => {
                            let diff =
                                Snapshot::diff_with(after, &self.snapshot().await?, self.diff);
                            if diff.is_empty() {
                                return Ok(Some(Checked::Passed));
                            }
                            Checked::UpDiffers(diff)
                        }
                    }
                }
            }
        };
        if !self.rebuildable {
            self.report.notes.push(format!(
                "verification stopped after {}: its down could only be checked with real commits, it left the scratch database in a state verify cannot undo, and a scratch database given by URL cannot be rebuilt (run on a throwaway cluster to check every down)",
                label(m)
            ));
            return Ok(None);
        }
        self.rebuild(m, observer).await?;
        Ok(Some(checked))
    }

    /// Drops the database and applies every migration up to and including `m` again.
    async fn rebuild(&mut self, m: &Migration, observer: &dyn Observer) -> Result<()> {
        let fresh = self.server.create_database(VERIFY_DATABASE).await?;
        self.url = fresh;
        self.inspector = pgshift_db::connect(&self.url).await?;
        if let Some(seed) = &self.options.seed {
            load_seed(&self.inspector, seed).await?;
        }
        self.watch = tokio::sync::Mutex::new(SchemaWatch::install(&self.inspector).await?);
        let conn = pgshift_db::connect(&self.url).await?;
        self.migrator =
            Migrator::from_connection(conn, self.migrator.set().clone(), whole(&self.options.run));
        self.migrator.up(Some(&m.version), observer).await?;
        Ok(())
    }
}

/// The migration a runner error names, as an index into the set.
fn guilty_migration(e: &RunError, set: &MigrationSet) -> Option<usize> {
    let version = match e {
        RunError::Statement(s) => s.version.clone(),
        RunError::Syntax { version, .. } => version.clone(),
        _ => return None,
    };
    set.migrations
        .iter()
        .position(|m| m.version.to_string() == version)
}
