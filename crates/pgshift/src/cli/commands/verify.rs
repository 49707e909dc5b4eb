//! `pgshift verify`: the CI gate. Applies every migration, reverts them one by one checking
//! that each down restores the schema, applies them again, checks nothing is pending, runs the
//! analyzer and traces the locks — on a throwaway PostgreSQL, so it needs no database.
//! Exits 1 when anything fails.
//!
//! It never uses `--database-url`/`DATABASE_URL`: it reverts everything it applies, so it runs
//! on a database of its own unless `--scratch-url` names one.

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
    let options = VerifyOptions {
        database_url: scratch,
        allow_non_empty: args.allow_non_empty,
        pg_bin: args.pg_bin,
        seed: args.seed,
        check: ctx.config.config.check.clone(),
        trace: !args.no_trace,
        run: args.run.apply(ctx.run_options())?,
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
    crate::cli::output::write_report(args.format, |out| match args.format {
        ReportFormat::Human => verify::render_terminal(&report, out),
        ReportFormat::Json => verify::render_json(&report, out),
        ReportFormat::Markdown => verify::render_markdown(&report, out),
    })?;
    Ok(if report.passed {
        exit::OK
    } else {
        exit::FAILED
    })
}
