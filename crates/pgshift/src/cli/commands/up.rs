use pgshift_runner::{parse_duration, Event, OnDrop, RunOptions};
use pgshift_source::Version;

use crate::cli::output::log_event;
use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply up to and including this version.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Contract an online change right after its expand (deploys where old and new code never run at once: one instance, CI). Without it, `up` expands an online migration and stops there; `pgshift complete` contracts after the deploy.
    #[arg(long)]
    pub complete: bool,
    #[command(flatten)]
    pub run: RunFlags,
}

/// Flags that override `[run]` in pgshift.toml; shared by every command that runs migrations.
#[derive(Debug, Clone, clap::Args)]
pub struct RunFlags {
    /// lock_timeout for every statement (e.g. 500ms, 2s). Default 500ms.
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<String>,
    /// statement_timeout for every statement (0 = none). Default 1h.
    #[arg(long, value_name = "DURATION")]
    pub statement_timeout: Option<String>,
    /// Total time spent retrying statements that hit lock_timeout. Default 5m.
    #[arg(long, value_name = "DURATION")]
    pub lock_retry_budget: Option<String>,
    /// Run statements exactly as written: no automatic safe rewrites, no online (expand/contract) change.
    #[arg(long)]
    pub exact: bool,
    /// Let an online type change through although some values do not survive the conversion to the new type and back.
    #[arg(long)]
    pub allow_lossy: bool,
    /// What DROP TABLE / DROP COLUMN do: drop, deprecate, backup or pg_dump. Default drop.
    #[arg(long, value_name = "MODE")]
    pub on_drop: Option<String>,
    /// Longest wait for sessions holding a conflicting lock before taking a strong one (0 = guard off). Default 60s.
    #[arg(long, value_name = "DURATION")]
    pub guard_max_wait: Option<String>,
    /// Cancel (or terminate, when idle in transaction) the sessions in the way after this wait (0 = never, the default).
    #[arg(long, value_name = "DURATION")]
    pub guard_cancel_after: Option<String>,
}

impl RunFlags {
    pub fn apply(&self, mut options: RunOptions) -> Result<RunOptions, Failure> {
        let parse = |flag: &str, v: &str| {
            parse_duration(v).map_err(|e| Failure::usage(format!("--{flag}: {e}")))
        };
        if let Some(v) = &self.lock_timeout {
            options.lock_timeout = parse("lock-timeout", v)?;
        }
        if let Some(v) = &self.statement_timeout {
            options.statement_timeout = parse("statement-timeout", v)?;
        }
        if let Some(v) = &self.lock_retry_budget {
            options.lock_retry_budget = parse("lock-retry-budget", v)?;
        }
        if self.exact {
            options.exact = true;
        }
        if self.allow_lossy {
            options.online_allow_lossy = true;
        }
        if let Some(v) = &self.on_drop {
            options.on_drop =
                OnDrop::parse(v).map_err(|e| Failure::usage(format!("--on-drop: {e}")))?;
        }
        if let Some(v) = &self.guard_max_wait {
            options.guard_max_wait = parse("guard-max-wait", v)?;
        }
        if let Some(v) = &self.guard_cancel_after {
            options.guard_cancel_after = parse("guard-cancel-after", v)?;
        }
        Ok(options)
    }
}

pub fn version_arg(flag: &str, v: &str) -> Result<Version, Failure> {
    Version::parse(v)
        .ok_or_else(|| Failure::usage(format!("{flag} `{v}` is not a migration version")))
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let mut options = args.run.apply(ctx.run_options())?;
    if args.complete {
        options.online_complete = true;
    }
    let to = args
        .to
        .as_deref()
        .map(|v| version_arg("--to", v))
        .transpose()?;
    let mut migrator = ctx.migrator(options).await?;
    let style = ctx.err_style;
    let observer = move |e: &Event| log_event(style, e);
    let applied = migrator.up(to.as_ref(), &observer).await?;
    let changes = migrator.online_changes().await?;
    if !applied.is_empty() || changes.is_empty() {
        if applied.is_empty() {
            outln!("nothing to apply: the database is up to date")?;
        } else {
            outln!(
                "applied {} migration{}",
                applied.len(),
                if applied.len() == 1 { "" } else { "s" }
            )?;
        }
    }
    crate::cli::commands::online::tell_in_progress(&changes)?;
    Ok(exit::OK)
}
