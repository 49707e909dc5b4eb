use pgshift_runner::Event;

use super::up::version_arg;
use crate::cli::output::log_event;
use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The applied migration whose file was edited.
    #[arg(required_unless_present = "all")]
    pub version: Option<String>,
    /// Re-stamp every applied migration whose file changed.
    #[arg(long, conflicts_with = "version")]
    pub all: bool,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let version = args
        .version
        .as_deref()
        .map(|v| version_arg("VERSION", v))
        .transpose()?;
    let mut migrator = ctx.migrator(ctx.run_options()).await?;
    let style = ctx.err_style;
    let observer = move |e: &Event| log_event(style, e);
    let stamped = migrator.restamp(version.as_ref(), &observer).await?;
    if stamped.is_empty() {
        outln!("no applied migration has a changed file; nothing re-stamped")?;
    } else {
        for v in &stamped {
            outln!("re-stamped {v} with the file's current checksum")?;
        }
    }
    Ok(exit::OK)
}
