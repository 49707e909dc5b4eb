//! `pgshift start`, `complete` and `rollback`: the phases of an online (expand/contract)
//! change.

use pgshift_runner::online::OnlineChange;
use pgshift_runner::Event;

use crate::cli::commands::up::{version_arg, RunFlags};
use crate::cli::output::{log_event, outln};
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Apply pending migrations up to and including this version; the online ones are
    /// expanded (several, when each names tables no other in progress holds) and the run
    /// stops before the first migration that must wait for `complete`.
    pub version: Option<String>,
    #[command(flatten)]
    pub run: RunFlags,
}

#[derive(Debug, clap::Args)]
pub struct PhaseArgs {
    /// The online change (default: every one in progress; complete goes oldest first,
    /// rollback newest first).
    pub version: Option<String>,
    #[command(flatten)]
    pub run: RunFlags,
}

/// `pgshift start`: `up` that expands the online migrations and stops before the first
/// migration that must wait for `complete`.
pub async fn start(args: StartArgs, ctx: &Context) -> Result<u8, Failure> {
    let mut options = args.run.apply(ctx.run_options())?;
    options.online_complete = false;
    options.online_required = true;
    let to = args
        .version
        .as_deref()
        .map(|v| version_arg("VERSION", v))
        .transpose()?;
    let mut migrator = ctx.migrator(options).await?;
    let style = ctx.err_style;
    let observer = move |e: &Event| log_event(style, e);
    let applied = migrator.up(to.as_ref(), &observer).await?;
    let changes = migrator.online_changes().await?;
    tell_in_progress(&changes)?;
    if changes.is_empty() {
        if applied.is_empty() {
            outln!("nothing to start: no migration is pending")?;
        } else {
            outln!(
                "applied {} migration{}; none of them needed an online change",
                applied.len(),
                if applied.len() == 1 { "" } else { "s" }
            )?;
        }
    }
    Ok(exit::OK)
}

/// The migrator and the version a phase command (`complete`, `rollback`) names.
async fn phase(
    args: PhaseArgs,
    ctx: &Context,
) -> Result<(pgshift_runner::Migrator, Option<pgshift_source::Version>), Failure> {
    let options = args.run.apply(ctx.run_options())?;
    let version = args
        .version
        .as_deref()
        .map(|v| version_arg("VERSION", v))
        .transpose()?;
    Ok((ctx.migrator(options).await?, version))
}

/// `pgshift complete`.
pub async fn complete(args: PhaseArgs, ctx: &Context) -> Result<u8, Failure> {
    let (mut migrator, version) = phase(args, ctx).await?;
    let style = ctx.err_style;
    let observer = move |e: &Event| log_event(style, e);
    let completed = migrator.complete(version.as_ref(), &observer).await?;
    for done in &completed {
        outln!(
            "completed {} {}: the migration is applied; the old schema is gone",
            done.version,
            done.name
        )?;
    }
    if completed.is_empty() {
        outln!("nothing to complete: no online change is in progress")?;
    }
    Ok(exit::OK)
}

/// `pgshift rollback`.
pub async fn rollback(args: PhaseArgs, ctx: &Context) -> Result<u8, Failure> {
    let (mut migrator, version) = phase(args, ctx).await?;
    let style = ctx.err_style;
    let observer = move |e: &Event| log_event(style, e);
    for done in migrator.rollback(version.as_ref(), &observer).await? {
        outln!(
            "rolled back {} {}: the expand is undone and the migration is pending again",
            done.version,
            done.name
        )?;
        if !done.not_undone.is_empty() {
            outln!("left in place (pgshift cannot undo these statements of the expand; revert them by hand if needed):")?;
            for s in &done.not_undone {
                outln!("  {s}")?;
            }
        }
    }
    Ok(exit::OK)
}

/// Where each online change in progress stands and what to do next (`start` and `up` end
/// with it), with what would break at `complete` unless changed first.
pub(crate) fn tell_in_progress(changes: &[OnlineChange]) -> std::io::Result<()> {
    for c in changes {
        outln!(
            "{} {} is {}: old and new code both work. Deploy the new code, then run `pgshift complete` (`pgshift rollback` undoes the expand)",
            c.version,
            c.name,
            c.phase.as_str()
        )?;
        for caveat in &c.plan.caveats {
            outln!("  before complete: {caveat}")?;
        }
    }
    Ok(())
}
