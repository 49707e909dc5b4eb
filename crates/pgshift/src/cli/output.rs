//! Terminal output: colour only on a terminal and never with `NO_COLOR`, the runner's events
//! as log lines on stderr, and failures as one readable paragraph.

use std::io::IsTerminal;
use std::process::ExitCode;

use pgshift_runner::Event;

use super::Failure;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn stdout() -> Style {
        Style {
            color: std::io::stdout().is_terminal() && color_allowed(),
        }
    }

    pub fn stderr() -> Style {
        Style {
            color: std::io::stderr().is_terminal() && color_allowed(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn red(self, t: &str) -> String {
        self.paint("1;31", t)
    }
    pub fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
    pub fn green(self, t: &str) -> String {
        self.paint("32", t)
    }
    pub fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
    pub fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
}

fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `println!` that returns the write error instead of panicking, for `?`: stdout may be a pipe
/// the reader has closed (`pgshift status | head`), which `println!` turns into a panic.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

pub fn report_failure(failure: &Failure, style: Style) -> ExitCode {
    // A closed stdout (the reader of a pipe stopped reading) is not worth a message.
    if !failure.message.is_empty() {
        eprintln!("{} {}", style.red("error:"), failure.message);
    }
    ExitCode::from(failure.code)
}

/// Renders the runner's events as log lines on stderr.
pub fn log_event(style: Style, event: &Event) {
    let line = match event {
        Event::WaitingForRunnerLock { holder_pid } => format!(
            "{} another pgshift runner holds the migration lock{} (the session of a killed run lets go within seconds)",
            style.yellow("waiting:"),
            holder_pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ),
        Event::Adopted { tool, table, count } => {
            format!("{} {count} migrations recorded as applied by {tool} in {table}", style.bold("adopted:"))
        }
        Event::OutOfOrder { version, latest_applied } => format!(
            "{} {version} is older than {latest_applied}, which is already applied; applying it now",
            style.yellow("warning:")
        ),
        Event::MissingFromDisk { versions } => format!(
            "{} applied but not on disk: {}",
            style.yellow("warning:"),
            versions.join(", ")
        ),
        Event::Applying { version, name, units, resume_at, no_transaction } => {
            let mut s = format!("{} {version} {name}", style.bold("applying"));
            if *resume_at >= *units && *units > 0 {
                s.push_str(" (every step was done by an earlier run; recording the end)");
            } else if *resume_at > 0 {
                s.push_str(&format!(" (resuming at step {} of {units})", resume_at + 1));
            }
            if let Some(why) = no_transaction {
                s.push_str(&style.dim(&format!(" — outside a transaction: {why}")));
            }
            s
        }
        Event::Rewrite { purpose, sql, .. } => format!("  {} {purpose}\n    {}", style.dim("safe rewrite:"), sql),
        Event::Notice { severity, message } => format!("  {} {message}", style.dim(&format!("{}:", severity.to_lowercase()))),
        Event::LockRetry { attempt, wait, blockers, .. } => format!(
            "  {} lock_timeout hit (attempt {attempt}); rolled back, retrying in {} ms. In the way: {blockers}",
            style.yellow("retry:"),
            wait.as_millis()
        ),
        Event::Applied { version, name, duration } => {
            format!("  {} {version} {name} ({} ms)", style.green("applied"), duration.as_millis())
        }
        Event::Reverting { version, name, from_history } => format!(
            "{} {version} {name}{}",
            style.bold("reverting"),
            if *from_history { style.dim(" — using the down SQL recorded at apply time") } else { String::new() }
        ),
        Event::Reverted { version, name, duration } => {
            format!("  {} {version} {name} ({} ms)", style.green("reverted"), duration.as_millis())
        }
        Event::GuardWaiting { tables, sessions, waited, .. } => format!(
            "  {} {} in the way of the lock on {} (waited {} ms); not joining the lock queue:\n{}",
            style.yellow("guard:"),
            if sessions.len() == 1 { "1 session".to_string() } else { format!("{} sessions", sessions.len()) },
            tables.join(", "),
            waited.as_millis(),
            sessions
                .iter()
                .map(|s| format!("    {}", pgshift_runner::migrator::describe_session(s)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        Event::GuardClear { waited, .. } => format!("  {} the way is clear after {} ms", style.dim("guard:"), waited.as_millis()),
        Event::GuardGaveUp { waited, .. } => format!(
            "  {} still blocked after {} ms (guard_max_wait); going ahead under lock_timeout with retries",
            style.yellow("guard:"),
            waited.as_millis()
        ),
        Event::GuardCancelled { session, terminated, signalled, .. } => format!(
            "  {} {} pid {} ({}){}",
            style.yellow("guard:"),
            if *terminated { "terminated" } else { "cancelled the query of" },
            session.pid,
            session.application_name,
            if *signalled { "" } else { " — the server refused the signal" }
        ),
        Event::Backup { mode, object, kept_in, .. } => {
            format!("  {} {object} kept in {kept_in} (on_drop = {mode})", style.dim("backup:"))
        }
        Event::Settled { version, step, landed, why } => format!(
            "  {} step {step} of {version} was in flight when the last run stopped: {why}; {}",
            style.yellow("recovered:"),
            if *landed { "it completed and is now recorded" } else { "it runs again" }
        ),
        Event::BackfillStarted { id, table, walk, estimate, resumed_at } => format!(
            "  {} {id} of {table} by {walk}{}{}",
            style.bold("backfill"),
            estimate.map(|e| format!(", about {e} rows to update")).unwrap_or_default(),
            resumed_at.map(|r| format!(", resuming after {r} rows done")).unwrap_or_default()
        ),
        // In a log, only what matters: waits with their reason, and the end. `pgshift
        // backfill` draws the full progress itself.
        Event::BackfillProgress(p) => match (&p.phase, &p.throttle) {
            (pgshift_runner::backfill::Phase::Done, _) => format!(
                "  {} backfill {}: {} rows, proved complete",
                style.green("done:"),
                p.id,
                p.rows_done
            ),
            (_, Some(reason)) => format!("  {} backfill {}: {reason}", style.yellow("waiting:"), p.id),
            _ => return,
        },
        Event::Info(text) => text.clone(),
    };
    eprintln!("{line}");
}
