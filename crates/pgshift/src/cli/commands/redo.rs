use pgshift_runner::Event;

use super::up::RunFlags;
use crate::cli::output::log_event;
use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub run: RunFlags,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let options = args.run.apply(ctx.run_options())?;
    let mut migrator = ctx.migrator(options).await?;
    let style = ctx.err_style;
    let observer = move |e: &Event| log_event(style, e);
    let redone = migrator.redo(&observer).await?;
    match redone {
        Some(v) => outln!("redid {v}")?,
        None => outln!("nothing applied, nothing to redo")?,
    }
    Ok(exit::OK)
}
