use pgshift_runner::{Event, Resolution};

use super::up::version_arg;
use crate::cli::output::log_event;
use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["done", "redo", "finished"])))]
pub struct Args {
    /// The migration that stopped partway (`pgshift status` shows it as partial or reverting).
    pub version: String,
    /// The step the decision is about, as the error message numbers it (1-based); refused if
    /// it is not the next step the history expects.
    #[arg(long)]
    pub step: Option<usize>,
    /// The step completed: record it as done.
    #[arg(long)]
    pub done: bool,
    /// The step did not complete: run it again on the next `up` (or `down`).
    #[arg(long)]
    pub redo: bool,
    /// The whole migration (or its revert) was finished by hand: record it as applied (or
    /// reverted).
    #[arg(long)]
    pub finished: bool,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let version = version_arg("VERSION", &args.version)?;
    let resolution = if args.done {
        Resolution::Done
    } else if args.redo {
        Resolution::Redo
    } else {
        Resolution::Finished
    };
    let mut migrator = ctx.migrator(ctx.run_options()).await?;
    let style = ctx.err_style;
    let observer = move |e: &Event| log_event(style, e);
    let said = migrator
        .resolve(&version, args.step, resolution, &observer)
        .await?;
    outln!("{said}")?;
    Ok(exit::OK)
}
