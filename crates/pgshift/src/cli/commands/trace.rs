//! `pgshift trace`: run migrations statement by statement and show the locks each one really
//! took, the tables it rewrote, what it created and dropped, and where that disagrees with
//! pgshift's own lock knowledge.
//!
//! Without a database it runs on a throwaway cluster. With `--database-url` (or
//! `DATABASE_URL`) it traces the pending migrations inside one transaction that is rolled
//! back, unless `--commit`. Exits 1 when a statement fails (or, with
//! `--fail-on-disagreement`, when an observation contradicts a prediction).

use std::path::PathBuf;

use pgshift_runner::trace::{self, Target, TraceOptions};

use crate::cli::commands::up::{version_arg, RunFlags};
use crate::cli::commands::verify::ReportFormat;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
    /// Directory of the PostgreSQL server binaries for the throwaway cluster (another major version).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// SQL file loaded before the migrations (throwaway cluster only).
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Trace from this version on; earlier migrations are replayed untraced.
    #[arg(long, value_name = "VERSION")]
    pub from: Option<String>,
    /// Use a throwaway cluster even when a database URL is configured.
    #[arg(long, conflicts_with = "commit")]
    pub throwaway: bool,
    /// On the database: commit the traced migrations (and record them) instead of rolling back.
    #[arg(long)]
    pub commit: bool,
    /// Exit 1 when an observed lock or rewrite contradicts pgshift's prediction.
    #[arg(long)]
    pub fail_on_disagreement: bool,
    #[command(flatten)]
    pub run: RunFlags,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let set = ctx.load_set()?;
    let configured = ctx
        .global
        .database_url
        .clone()
        .or_else(|| ctx.config.config.database_url.clone())
        .filter(|s| !s.trim().is_empty());
    let target = match configured {
        Some(_) if !args.throwaway => {
            if args.seed.is_some() {
                return Err(Failure::usage(
                    "--seed only applies to a throwaway cluster; the database already has its data (add --throwaway to trace on a fresh cluster)",
                ));
            }
            Target::Database {
                url: ctx.database_url()?,
                commit: args.commit,
            }
        }
        _ => {
            if args.commit {
                return Err(Failure::usage(
                    "--commit needs a database (--database-url); a throwaway cluster is discarded anyway",
                ));
            }
            Target::Throwaway {
                pg_bin: args.pg_bin.clone(),
                server: None,
            }
        }
    };
    let options = TraceOptions {
        target,
        seed: args.seed,
        from: args
            .from
            .as_deref()
            .map(|v| version_arg("--from", v))
            .transpose()?,
        run: args.run.apply(ctx.run_options())?,
    };
    let report = trace::trace(&set, &options).await?;
    crate::cli::output::write_report(args.format, |out| match args.format {
        ReportFormat::Human => trace::render_terminal(&report, out),
        ReportFormat::Json => trace::render_json(&report, out),
        ReportFormat::Markdown => trace::render_markdown(&report, out),
    })?;
    let failed = report.error().is_some()
        || (args.fail_on_disagreement && !report.disagreements().is_empty());
    Ok(if failed { exit::FAILED } else { exit::OK })
}
