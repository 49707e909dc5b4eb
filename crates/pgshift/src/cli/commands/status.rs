use pgshift_runner::EntryState;
use pgshift_sql::printable_line;

use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output: human or json.
    #[arg(long, default_value = "human")]
    pub format: String,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    if !matches!(args.format.as_str(), "human" | "json") {
        return Err(Failure::usage(format!(
            "unknown format `{}` for `status`; use human or json",
            args.format
        )));
    }
    let migrator = ctx.migrator(ctx.run_options()).await?;
    let status = migrator.status().await?;
    if args.format == "json" {
        outln!(
            "{}",
            serde_json::to_string_pretty(&status).map_err(|e| Failure::usage(e.to_string()))?
        )?;
        return Ok(exit::OK);
    }
    let style = ctx.out_style;
    outln!(
        "{} {} ({}) → {}",
        style.bold("migrations:"),
        printable_line(&status.dir),
        status.format,
        printable_line(&status.database)
    )?;
    for e in &status.entries {
        let state = match e.state {
            EntryState::Applied => style.green("applied"),
            EntryState::Baseline => style.green("baseline"),
            EntryState::Adopted => style.green("adopted"),
            EntryState::Pending => style.yellow("pending"),
            EntryState::Partial => style.yellow("partial"),
            EntryState::Reverting => style.yellow("reverting"),
            EntryState::Changed => style.red("changed"),
            EntryState::MissingFromDisk => style.red("missing"),
            EntryState::Expanding => style.yellow("expanding"),
            EntryState::Expanded => style.green("expanded"),
            EntryState::Contracting => style.yellow("contracting"),
            EntryState::RollingBack => style.yellow("rolling-back"),
        };
        let when = e.applied_at.as_deref().unwrap_or("");
        let progress = e
            .progress
            .map(|(d, t)| format!(" ({d}/{t} steps)"))
            .unwrap_or_default();
        let down = if e.has_down { "" } else { " [forward-only]" };
        outln!(
            "  {:<20} {:<10} {:<40} {}{progress}{}",
            printable_line(&e.version),
            strip(&state, style.color),
            printable_line(&e.name),
            style.dim(when),
            style.dim(down)
        )?;
    }
    let pending = status.pending();
    let changed = status
        .entries
        .iter()
        .filter(|e| e.state == EntryState::Changed)
        .count();
    let stopped: Vec<&str> = status
        .entries
        .iter()
        .filter(|e| matches!(e.state, EntryState::Partial | EntryState::Reverting))
        .map(|e| e.version.as_str())
        .collect();
    let stopped = if stopped.is_empty() {
        String::new()
    } else {
        format!(
            ", {} stopped partway ({}: `pgshift up` finishes a partial one, `pgshift down` a reverting one)",
            stopped.len(),
            printable_line(&stopped.join(", "))
        )
    };
    outln!(
        "{} pending, {changed} changed{stopped}, {} total",
        pending,
        status.entries.len()
    )?;
    for e in &status.entries {
        let next = match e.state {
            EntryState::Expanding => "`pgshift start` finishes its expand (`pgshift rollback` undoes it)",
            EntryState::Expanded => "old and new code both work; after the deploy, `pgshift complete` contracts it (`pgshift rollback` undoes the expand)",
            EntryState::Contracting => "`pgshift complete` finishes its contract",
            EntryState::RollingBack => "`pgshift rollback` finishes undoing its expand",
            _ => continue,
        };
        outln!("online change {}: {next}", printable_line(&e.version))?;
    }
    Ok(exit::OK)
}

/// Column alignment must not count ANSI escapes; pad the plain text instead.
fn strip(s: &str, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let plain: String = {
        let mut out = String::new();
        let mut in_escape = false;
        for c in s.chars() {
            match (in_escape, c) {
                (false, '\x1b') => in_escape = true,
                (true, 'm') => in_escape = false,
                (false, c) => out.push(c),
                _ => {}
            }
        }
        out
    };
    let pad = 10usize.saturating_sub(plain.chars().count());
    format!("{s}{}", " ".repeat(pad))
}
