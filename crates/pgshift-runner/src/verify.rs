//! `pgshift verify`: prove a migration set on a scratch PostgreSQL — the CI gate of
//! up → down → up → nothing pending, with the schema compared at every step.
//!
//! 1. Apply each migration in order (as `pgshift up` would, safe rewrites included), taking a
//!    [`Snapshot`] of the schema before and after each.
//! 2. Revert them newest first; after each down, compare with the snapshot taken before its
//!    up. Any difference is "the down of MIGRATION does not restore the schema", with the
//!    difference in words. A down that fails is reported with its file and line. A migration
//!    without a down (forward-only) ends the down phase, with a note.
//! 3. Apply everything again and compare with the schema the first pass ended with.
//! 4. Confirm nothing is pending.
//!
//! Alongside, the analyzer ([`pgshift_lint::check_set`]) reviews the set, and the set is
//! traced ([`crate::trace`]) in a second scratch database on the same server.
//!
//! It runs on a throwaway cluster by default (nothing to configure), or in a scratch database
//! given by URL, which must be empty unless `allow_non_empty`.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pgshift_db::snapshot::{Difference, ObjectKind, Snapshot};
use pgshift_db::{Connection, DatabaseUrl, LockLevel};
use pgshift_lint::{check_set, CheckOptions, Severity};
use pgshift_source::MigrationSet;
use serde::Serialize;

use crate::error::{Result, RunError};
use crate::event::Observer;
use crate::history;
use crate::migrator::{DownTarget, Migrator};
use crate::options::RunOptions;
use crate::trace::{
    cell, load_seed, trace_fresh_database, version_text, ScratchServer, TraceOptions, TraceReport,
};

/// The scratch databases verify creates on a throwaway cluster (or a given server).
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
            trace: true,
            run: RunOptions::default(),
        }
    }
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
    /// Applying again after the downs failed, or gave a different schema.
    Reapply,
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
    /// What went wrong, with file and line where known.
    pub message: String,
    /// The schema differences, in words.
    pub differences: Vec<String>,
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
    /// Not reached (an earlier step failed or the down phase ended).
    NotRun,
}

impl Outcome {
    fn symbol(self) -> &'static str {
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
    pub up: Outcome,
    pub up_ms: Option<u64>,
    pub down: Outcome,
    pub down_ms: Option<u64>,
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

/// The analyzer's verdict on the set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnalyzerSummary {
    pub errors: usize,
    pub warnings: usize,
    pub hints: usize,
    pub findings: Vec<AnalyzerFinding>,
}

/// The result of `pgshift verify`; every renderer formats this.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub passed: bool,
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
    let version_num = pgshift_db::server_version_num(&inspector).await?;
    if let Some(seed) = &options.seed {
        load_seed(&inspector, seed).await?;
    }

    let mut run = Run {
        report: VerifyReport {
            passed: false,
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
                })
                .collect(),
            failures: Vec::new(),
            notes: Vec::new(),
            analyzer: AnalyzerSummary::default(),
            trace: None,
            duration_ms: 0,
        },
        inspector: &inspector,
    };
    let conn = pgshift_db::connect(&url).await?;
    let mut migrator = Migrator::from_connection(conn, set.clone(), options.run.clone());
    let first_pass_ok = run.cycle(set, &mut migrator, observer).await?;

    run.report.analyzer = analyze(set, &options.check);
    if run.report.analyzer.errors > 0 {
        run.report.failures.push(Failure {
            phase: Phase::Analyzer,
            migration: None,
            message: format!(
                "the analyzer reports {} error(s); run `pgshift check` for the details and the safe rewrites",
                run.report.analyzer.errors
            ),
            differences: Vec::new(),
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
                    Ok(report) => run.report.trace = Some(report),
                    Err(e) => run.report.notes.push(format!("the trace could not run: {e}")),
                }
                server.drop_database(&trace_db).await;
            }
            Err(e) => run.report.notes.push(format!(
                "the trace was skipped: it needs a second scratch database and `CREATE DATABASE` failed: {e}"
            )),
        }
    } else if options.trace {
        run.report
            .notes
            .push("the trace was skipped because the first up pass failed".to_string());
    }

    let mut report = run.report;
    drop(inspector);
    if options.database_url.is_none() {
        server.drop_database(VERIFY_DATABASE).await;
    }
    report.passed = report.failures.is_empty();
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

fn analyze(set: &MigrationSet, options: &CheckOptions) -> AnalyzerSummary {
    let report = check_set(set, options);
    let counts = report.counts();
    AnalyzerSummary {
        errors: counts.error,
        warnings: counts.warning,
        hints: counts.hint,
        findings: report
            .findings()
            .map(|f| AnalyzerFinding {
                location: format!("{}:{}:{}", f.path.display(), f.start.line, f.start.column),
                severity: f.severity,
                rule: f.rule.to_string(),
                message: f.message.clone(),
            })
            .collect(),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The state of one verify run.
struct Run<'c> {
    report: VerifyReport,
    /// A session of its own for snapshots: it sees exactly what the runner committed.
    inspector: &'c Connection,
}

impl Run<'_> {
    async fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot::take(self.inspector).await?)
    }

    fn fail(
        &mut self,
        phase: Phase,
        migration: Option<String>,
        message: String,
        differences: Vec<String>,
    ) {
        self.report.failures.push(Failure {
            phase,
            migration,
            message,
            differences,
        });
    }

    /// Up each, down each, up all, nothing pending. Returns whether the first up pass
    /// completed.
    async fn cycle(
        &mut self,
        set: &MigrationSet,
        migrator: &mut Migrator,
        observer: &dyn Observer,
    ) -> Result<bool> {
        // 1. Up, one at a time.
        let mut before_up = vec![self.snapshot().await?];
        for (i, m) in set.migrations.iter().enumerate() {
            let started = Instant::now();
            let outcome = migrator.up(Some(&m.version), observer).await;
            self.report.migrations[i].up_ms = Some(millis(started.elapsed()));
            if let Err(e) = outcome {
                self.report.migrations[i].up = Outcome::Failed;
                self.fail(Phase::Up, Some(label(m)), e.to_string(), Vec::new());
                return Ok(false);
            }
            self.report.migrations[i].up = Outcome::Passed;
            before_up.push(self.snapshot().await?);
        }
        let Some(final_schema) = before_up.last().cloned() else {
            return Ok(true);
        };

        // 2. Down, newest first, each compared with the schema before its up. Differences
        // already blamed on a later migration's down are not blamed again on earlier ones.
        let mut blamed: BTreeSet<Difference> = BTreeSet::new();
        for (i, m) in set.migrations.iter().enumerate().rev() {
            if m.down.is_none() {
                self.report.notes.push(format!(
                    "{} is forward-only (it has no down), so the down phase ends there{}",
                    label(m),
                    if i > 0 {
                        format!("; the {i} migration(s) before it were not reverted")
                    } else {
                        String::new()
                    }
                ));
                break;
            }
            let started = Instant::now();
            let outcome = migrator.down(DownTarget::Steps(1), observer).await;
            self.report.migrations[i].down_ms = Some(millis(started.elapsed()));
            if let Err(e) = outcome {
                self.report.migrations[i].down = Outcome::Failed;
                self.fail(
                    Phase::Down,
                    Some(label(m)),
                    format!("the down of {} failed: {e}", label(m)),
                    Vec::new(),
                );
                break;
            }
            let after_down = self.snapshot().await?;
            let fresh: Vec<Difference> = Snapshot::diff(&before_up[i], &after_down)
                .into_iter()
                .filter(|d| !blamed.contains(d))
                .collect();
            if fresh.is_empty() {
                self.report.migrations[i].down = Outcome::Passed;
            } else {
                self.report.migrations[i].down = Outcome::Differs;
                let described = fresh
                    .iter()
                    .map(|d| d.describe("before its up", "after its down"))
                    .collect();
                blamed.extend(fresh);
                self.fail(
                    Phase::Restore,
                    Some(label(m)),
                    format!(
                        "the down of {} does not restore the schema ({})",
                        label(m),
                        m.down
                            .as_ref()
                            .map(|d| d.path.display().to_string())
                            .unwrap_or_default()
                    ),
                    described,
                );
            }
        }

        // 3. Up again, all at once, to the same schema as the first pass.
        if let Err(e) = migrator.up(None, observer).await {
            self.fail(
                Phase::Reapply,
                None,
                format!("applying the migrations again after the downs failed: {e}"),
                Vec::new(),
            );
            return Ok(true);
        }
        let again = self.snapshot().await?;
        let diff = Snapshot::diff(&final_schema, &again);
        if !diff.is_empty() {
            self.fail(
                Phase::Reapply,
                None,
                "applying the migrations again after the downs does not give the schema of the first pass".to_string(),
                diff.iter()
                    .map(|d| d.describe("after the first up", "after up again"))
                    .collect(),
            );
        }

        // 4. Nothing pending.
        let status = migrator.status().await?;
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
            self.fail(
                Phase::Pending,
                None,
                format!("{} migration(s) not applied at the end", pending.len()),
                pending,
            );
        }
        Ok(true)
    }
}

fn label(m: &pgshift_source::Migration) -> String {
    format!("{} {}", m.version, m.name)
}

// ---- rendering ---------------------------------------------------------------------------------

/// Statements worth a person's attention in the trace: a lock that blocks writes (or reads)
/// on a table that already existed, or a rewrite. `(location, what)`.
pub fn trace_highlights(trace: &TraceReport) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in &trace.migrations {
        for s in &m.statements {
            let strong: Vec<String> = s
                .locks
                .iter()
                .filter(|l| l.mode.conflicts_with(LockLevel::RowExclusive))
                .map(|l| format!("{} on {}", l.mode, crate::trace::shown(&l.relation)))
                .collect();
            let mut parts = Vec::new();
            if !strong.is_empty() {
                parts.push(format!("takes {}", strong.join(", ")));
            }
            if !s.rewritten.is_empty() {
                parts.push(format!("rewrites {}", s.rewritten.join(", ")));
            }
            if !parts.is_empty() {
                out.push((format!("{}:{}", m.path, s.line), parts.join("; ")));
            }
        }
    }
    out
}

/// The report for a terminal: one line per phase and migration, then failures.
pub fn render_terminal(report: &VerifyReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "pgshift verify: {} ({} format, {} migrations) on {}",
        report.dir,
        report.format,
        report.migrations.len(),
        report.server
    )?;
    writeln!(
        out,
        "\n  {:<28} {:<10} {:<14}",
        "migration", "up", "down (restores?)"
    )?;
    for m in &report.migrations {
        writeln!(
            out,
            "  {:<28} {:<10} {:<14}",
            clip(&format!("{} {}", m.version, m.name), 28),
            m.up.symbol(),
            m.down.symbol()
        )?;
    }

    let a = &report.analyzer;
    writeln!(
        out,
        "\n  analyzer: {} error(s), {} warning(s), {} hint(s)",
        a.errors, a.warnings, a.hints
    )?;
    for f in &a.findings {
        writeln!(
            out,
            "    {} {}[{}]: {}",
            f.location,
            f.severity.name(),
            f.rule,
            f.message
        )?;
    }
    if let Some(trace) = &report.trace {
        let disagreements = trace.disagreements();
        writeln!(
            out,
            "\n  trace: {} statement(s); {} disagreement(s) with pgshift's lock knowledge",
            trace.statement_count(),
            disagreements.len()
        )?;
        for (at, what) in trace_highlights(trace) {
            writeln!(out, "    {at} {what}")?;
        }
        for d in disagreements {
            writeln!(out, "    ≠ {d}")?;
        }
        if let Some(e) = trace.error() {
            writeln!(out, "    trace error: {e}")?;
        }
    }
    for n in &report.notes {
        writeln!(out, "\n  note: {n}")?;
    }
    if !report.failures.is_empty() {
        writeln!(out)?;
    }
    for f in &report.failures {
        writeln!(out, "  ✗ {}", f.message.replace('\n', "\n    "))?;
        for d in &f.differences {
            writeln!(out, "      - {d}")?;
        }
    }
    writeln!(
        out,
        "\n{} in {:.1} s{}",
        if report.passed { "PASSED" } else { "FAILED" },
        report.duration_ms as f64 / 1000.0,
        if report.passed {
            String::new()
        } else {
            format!(" ({} failure(s))", report.failures.len())
        }
    )
}

/// The report as JSON (the [`VerifyReport`] fields).
pub fn render_json(report: &VerifyReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}

/// The report as markdown, for a pull request comment.
pub fn render_markdown(report: &VerifyReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "## pgshift verify: {}\n",
        if report.passed {
            "✅ passed"
        } else {
            "❌ failed"
        }
    )?;
    writeln!(
        out,
        "`{}` ({} format, {} migrations), up → down → up on PostgreSQL {}, {:.1} s.\n",
        cell(&report.dir),
        report.format,
        report.migrations.len(),
        report.server_version,
        report.duration_ms as f64 / 1000.0
    )?;
    if !report.failures.is_empty() {
        writeln!(out, "### Failures\n")?;
        for f in &report.failures {
            writeln!(
                out,
                "- **{}**",
                cell(f.message.lines().next().unwrap_or(""))
            )?;
            let rest: Vec<&str> = f.message.lines().skip(1).collect();
            let block: Vec<String> = rest
                .iter()
                .map(|l| l.trim().to_string())
                .chain(f.differences.iter().cloned())
                .collect();
            if !block.is_empty() {
                writeln!(out, "  ```\n  {}\n  ```", block.join("\n  "))?;
            }
        }
        writeln!(out)?;
    }
    writeln!(out, "| migration | up | down restores schema |")?;
    writeln!(out, "|---|---|---|")?;
    for m in &report.migrations {
        writeln!(
            out,
            "| `{}` {} | {} | {} |",
            m.version,
            cell(&m.name),
            m.up.symbol(),
            m.down.symbol()
        )?;
    }
    let a = &report.analyzer;
    writeln!(
        out,
        "\n### Analyzer: {} error(s), {} warning(s), {} hint(s)\n",
        a.errors, a.warnings, a.hints
    )?;
    for f in &a.findings {
        writeln!(
            out,
            "- `{}` **{}** `{}`: {}",
            cell(&f.location),
            f.severity.name(),
            f.rule,
            cell(&f.message)
        )?;
    }
    if let Some(trace) = &report.trace {
        let disagreements = trace.disagreements();
        writeln!(
            out,
            "\n### Lock trace: {} statement(s), {} disagreement(s) with pgshift's knowledge\n",
            trace.statement_count(),
            disagreements.len()
        )?;
        for (at, what) in trace_highlights(trace) {
            writeln!(out, "- `{}` {}", cell(&at), cell(&what))?;
        }
        for d in &disagreements {
            writeln!(out, "- ≠ {}", cell(d))?;
        }
        writeln!(out, "\n<details><summary>Every statement</summary>\n")?;
        crate::trace::write_markdown_tables(trace, out)?;
        writeln!(out, "</details>")?;
    }
    if !report.notes.is_empty() {
        writeln!(out)?;
        for n in &report.notes {
            writeln!(out, "> {}", cell(n))?;
        }
    }
    Ok(())
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() > width {
        let cut: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(passed: bool) -> VerifyReport {
        VerifyReport {
            passed,
            dir: "migrations".into(),
            format: "pgshift".into(),
            server: "throwaway cluster".into(),
            server_version: "15.18".into(),
            migrations: vec![MigrationResult {
                version: "20240101000000".into(),
                name: "create_users".into(),
                path: "migrations/20240101000000_create_users.up.sql".into(),
                up: Outcome::Passed,
                up_ms: Some(3),
                down: if passed {
                    Outcome::Passed
                } else {
                    Outcome::Differs
                },
                down_ms: Some(2),
            }],
            failures: if passed {
                Vec::new()
            } else {
                vec![Failure {
                    phase: Phase::Restore,
                    migration: Some("20240101000000 create_users".into()),
                    message: "the down of 20240101000000 create_users does not restore the schema"
                        .into(),
                    differences: vec!["index users_email_idx: only after its down".into()],
                }]
            },
            notes: Vec::new(),
            analyzer: AnalyzerSummary::default(),
            trace: None,
            duration_ms: 1234,
        }
    }

    fn rendered(
        f: fn(&VerifyReport, &mut dyn Write) -> io::Result<()>,
        r: &VerifyReport,
    ) -> String {
        let mut out = Vec::new();
        f(r, &mut out).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_terminal_report_names_the_guilty_migration_and_the_difference() {
        let text = rendered(render_terminal, &report(false));
        assert!(
            text.contains("✗ the down of 20240101000000 create_users does not restore the schema"),
            "{text}"
        );
        assert!(
            text.contains("- index users_email_idx: only after its down"),
            "{text}"
        );
        assert!(
            text.trim_end().ends_with("FAILED in 1.2 s (1 failure(s))"),
            "{text}"
        );
        let ok = rendered(render_terminal, &report(true));
        assert!(ok.contains("PASSED in 1.2 s"), "{ok}");
    }

    #[test]
    fn markdown_is_a_pull_request_comment() {
        let text = rendered(render_markdown, &report(false));
        assert!(text.starts_with("## pgshift verify: ❌ failed"), "{text}");
        assert!(
            text.contains("| `20240101000000` create_users | ok | DIFFERS |"),
            "{text}"
        );
        assert!(
            text.contains("index users_email_idx: only after its down"),
            "{text}"
        );
    }

    #[test]
    fn json_has_the_documented_fields() {
        let text = rendered(render_json, &report(true));
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value["passed"], true);
        assert_eq!(value["migrations"][0]["down"], "passed");
        assert_eq!(value["server_version"], "15.18");
        assert!(value["failures"].as_array().is_some_and(Vec::is_empty));
    }
}
