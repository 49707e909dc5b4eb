//! `pgshift plan`: what `up` would do on the target database, statement by statement, with
//! the pre-flight checklist. Exits 1 when a statement would hold a blocking lock on a
//! non-empty table for longer than `--max-lock`.

use pgshift_runner::parse_duration;
use pgshift_runner::plan::{self, PlanOptions};

use crate::cli::commands::up::RunFlags;
use std::io::Write as _;

use crate::cli::output::{write_report, ReportFormat};
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
    /// Fail (exit 1) when a statement would hold a lock blocking reads or writes on a
    /// non-empty table for longer than this (e.g. 500ms, 2s). Default 2s.
    #[arg(long, value_name = "DURATION")]
    pub max_lock: Option<String>,
    /// Assumed table rewrite throughput for the estimates, in MB/s. Default 50.
    #[arg(long, value_name = "MB_PER_SEC")]
    pub rewrite_rate: Option<f64>,
    /// Assumed throughput of a scan (constraint check), in MB/s. Default 200.
    #[arg(long, value_name = "MB_PER_SEC")]
    pub scan_rate: Option<f64>,
    /// Assumed throughput of an index build, in MB/s. Default 30.
    #[arg(long, value_name = "MB_PER_SEC")]
    pub index_rate: Option<f64>,
    #[command(flatten)]
    pub run: RunFlags,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let url = ctx.database_url()?;
    let set = ctx.load_set()?;
    let mut options = PlanOptions {
        run: args.run.apply(ctx.run_options())?,
        ..PlanOptions::default()
    };
    if let Some(v) = &args.max_lock {
        options.max_lock =
            parse_duration(v).map_err(|e| Failure::usage(format!("--max-lock: {e}")))?;
    }
    for (flag, value, slot) in [
        (
            "--rewrite-rate",
            args.rewrite_rate,
            &mut options.rewrite_mb_per_sec,
        ),
        ("--scan-rate", args.scan_rate, &mut options.scan_mb_per_sec),
        (
            "--index-rate",
            args.index_rate,
            &mut options.index_mb_per_sec,
        ),
    ] {
        if let Some(rate) = value {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(Failure::usage(format!(
                    "{flag} must be a positive number of MB/s"
                )));
            }
            *slot = rate;
        }
    }
    let conn = pgshift_db::connect(&url).await?;
    let report = plan::plan(&conn, &set, &options).await?;
    let text = match args.format {
        ReportFormat::Human => plan::render_terminal(&report),
        ReportFormat::Json => plan::render_json(&report),
        ReportFormat::Markdown => plan::render_markdown(&report),
    };
    write_report(args.format, |out| writeln!(out, "{}", text.trim_end()))?;
    Ok(if report.over_limit().is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}
