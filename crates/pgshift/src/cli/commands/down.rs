use pgshift_runner::{DownTarget, Event};

use super::up::{version_arg, RunFlags};
use crate::cli::output::log_event;
use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Revert the newest N migrations (default 1).
    #[arg(long, value_name = "N", conflicts_with_all = ["to", "all"])]
    pub steps: Option<usize>,
    /// Revert every migration newer than VERSION (VERSION stays applied).
    #[arg(long, value_name = "VERSION", conflicts_with = "all")]
    pub to: Option<String>,
    /// Revert every applied migration.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub run: RunFlags,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let target = if args.all {
        DownTarget::All
    } else if let Some(v) = &args.to {
        DownTarget::To(version_arg("--to", v)?)
    } else {
        DownTarget::Steps(args.steps.unwrap_or(1))
    };
    let options = args.run.apply(ctx.run_options())?;
    let mut migrator = ctx.migrator(options).await?;
    let style = ctx.err_style;
    let observer = move |e: &Event| log_event(style, e);
    let reverted = migrator.down(target, &observer).await?;
    if reverted.is_empty() {
        outln!("nothing to revert")?;
    } else {
        outln!(
            "reverted {} migration{}",
            reverted.len(),
            if reverted.len() == 1 { "" } else { "s" }
        )?;
    }
    Ok(exit::OK)
}
