//! `pgshift verify`: the CI gate. Applies every migration, reverts them one by one checking
//! that each down restores the schema, applies them again, checks nothing is pending, runs the
//! analyzer and traces the locks — on a throwaway PostgreSQL, so it needs no database.
//! Exits 1 when anything fails.
//!
//! It never uses `--database-url`/`DATABASE_URL`: it reverts everything it applies, so it runs
//! on a database of its own unless `--scratch-url` names one.

use std::io::Write as _;
use std::path::PathBuf;

use pgshift_db::DatabaseUrl;
use pgshift_runner::verify::{self, VerifyOptions};
use pgshift_runner::Silent;

use crate::cli::commands::up::RunFlags;
use crate::cli::{exit, Context, Failure};

pub use crate::cli::output::ReportFormat;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
    /// Directory of the PostgreSQL server binaries (initdb, pg_ctl, postgres) for the throwaway
    /// cluster, e.g. another major version fetched with scripts/fetch-pg.sh. Default: PGSHIFT_PG_BIN, PATH, pg_config.
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// SQL file loaded before the first migration, so the migrations run against data.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Run in this existing scratch database instead of a throwaway cluster. It must be empty.
    #[arg(
        long,
        value_name = "URL",
        env = "PGSHIFT_SCRATCH_DATABASE_URL",
        hide_env_values = true
    )]
    pub scratch_url: Option<String>,
    /// Accept a scratch database that already holds objects.
    #[arg(long)]
    pub allow_non_empty: bool,
    /// Skip the lock trace.
    #[arg(long)]
    pub no_trace: bool,
    /// Compare the order of columns too (by default a down that re-adds a column last
    /// restores the schema).
    #[arg(long)]
    pub strict_order: bool,
    /// The analyzer gates only migrations added or changed since this git ref (up/down/up
    /// still runs every migration). Default: `[check] baseline` in pgshift.toml, if set.
    #[arg(long, value_name = "GIT_REF")]
    pub changed_since: Option<String>,
    /// Write the full report (uncut) to this file too; the markdown on standard output names it.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunFlags,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let set = ctx.load_set()?;
    let scratch = match args.scratch_url.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(raw) => Some(DatabaseUrl::parse(raw)?),
        None => None,
    };
    if scratch.is_none() && args.allow_non_empty {
        return Err(Failure::usage(
            "--allow-non-empty only applies with --scratch-url (a throwaway cluster is always empty)",
        ));
    }
    let run = args.run.apply(ctx.run_options())?;
    let mut check = ctx.config.config.check.clone();
    if run.exact {
        check.runner_rewrites = Some(false);
    }
    let gate = match (&args.changed_since, &check.baseline) {
        (Some(git_ref), _) => {
            let files = pgshift_source::changed_since(std::slice::from_ref(&set.dir), git_ref)
                .map_err(|e| Failure::usage(format!("--changed-since: {e}")))?;
            Some(verify::Gate {
                since: git_ref.clone(),
                files,
            })
        }
        (None, Some(baseline)) => {
            let version = pgshift_source::Version::parse(baseline).ok_or_else(|| {
                Failure::usage(format!(
                    "[check] baseline = \"{baseline}\" is not a migration version"
                ))
            })?;
            Some(verify::Gate::after_version(&set, &version))
        }
        (None, None) => None,
    };
    let options = VerifyOptions {
        database_url: scratch,
        allow_non_empty: args.allow_non_empty,
        pg_bin: args.pg_bin,
        seed: args.seed,
        check,
        gate,
        strict_order: args.strict_order,
        trace: !args.no_trace,
        run,
    };
    eprintln!(
        "{}",
        ctx.err_style.dim(&format!(
            "verifying {} migration(s) in {} on {}...",
            set.migrations.len(),
            set.dir.display(),
            if options.database_url.is_some() {
                "the scratch database"
            } else {
                "a throwaway cluster"
            }
        ))
    );
    let report = verify::verify(&set, &options, &Silent).await?;
    if let Some(path) = &args.output {
        let mut file = std::fs::File::create(path).map_err(|e| {
            Failure::usage(format!("--output {}: cannot write: {e}", path.display()))
        })?;
        match args.format {
            ReportFormat::Human => verify::render_terminal(&report, &mut file)?,
            ReportFormat::Json => verify::render_json(&report, &mut file)?,
            ReportFormat::Markdown => verify::render_markdown(&report, &mut file)?,
        }
        file.flush()?;
    }
    let output = args.output.as_ref().map(|p| p.display().to_string());
    crate::cli::output::write_report(args.format, |out| match args.format {
        ReportFormat::Human => verify::render_terminal(&report, out),
        ReportFormat::Json => verify::render_json(&report, out),
        ReportFormat::Markdown => {
            verify::render_markdown_capped(&report, verify::MARKDOWN_LIMIT, output.as_deref(), out)
        }
    })?;
    Ok(if report.passed {
        exit::OK
    } else {
        exit::FAILED
    })
}
