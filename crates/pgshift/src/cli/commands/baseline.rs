use pgshift_runner::Event;

use super::up::version_arg;
use crate::cli::output::log_event;
use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Every migration up to and including this version is recorded as applied.
    pub version: String,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let version = version_arg("VERSION", &args.version)?;
    let mut migrator = ctx.migrator(ctx.run_options()).await?;
    let style = ctx.err_style;
    let observer = move |e: &Event| log_event(style, e);
    let marked = migrator.baseline(&version, &observer).await?;
    outln!(
        "recorded {} migration{} as applied (baseline {version}); none of them ran",
        marked.len(),
        if marked.len() == 1 { "" } else { "s" }
    )?;
    Ok(exit::OK)
}
