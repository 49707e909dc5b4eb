//! Terminal output: colour only on a terminal and never with `NO_COLOR`, the runner's events
//! as log lines on stderr, and failures as one readable paragraph.

use std::io::IsTerminal;
use std::process::ExitCode;

use pgshift_runner::Event;
use pgshift_sql::{printable, printable_line};

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

/// `--format` of the reports of `plan`, `verify` and `trace`. One vocabulary across
/// commands: `human` everywhere (the default), `json` for tools, `markdown` for a pull request;
/// `check` adds `sarif`, `github` and `gitlab`, `status` and `rules` take `human` and `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A readable report (`terminal`, its former name, still works).
    #[value(alias = "terminal")]
    Human,
    /// Every field, for tools (docs/output-formats.md).
    Json,
    /// To paste in a pull request.
    Markdown,
}

/// Writes a report rendered by `render` to stdout. Human and Markdown text has its control
/// characters escaped (an escape sequence in a migration's name must not reach the terminal);
/// JSON is escaped by the serializer and written as it is.
pub fn write_report(
    format: ReportFormat,
    render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut buffer = Vec::new();
    render(&mut buffer)?;
    let mut out = std::io::stdout().lock();
    match format {
        ReportFormat::Json => out.write_all(&buffer)?,
        ReportFormat::Human | ReportFormat::Markdown => {
            let text = String::from_utf8_lossy(&buffer);
            out.write_all(printable(&text).as_bytes())?;
        }
    }
    out.flush()
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
        // An error message quotes paths, names and server text: escape sequences are shown.
        eprintln!("{} {}", style.red("error:"), printable(&failure.message));
    }
    ExitCode::from(failure.code)
}

/// Whether the last thing written to stderr is a live progress line without its newline.
static LIVE_LINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A step still running: on a terminal, one line redrawn in place every second; elsewhere (a
/// CI log, a file), a plain line every five seconds.
fn log_running(style: Style, event: &Event) {
    let Event::StepRunning {
        version,
        sql,
        elapsed,
        waiting_for,
        progress,
    } = event
    else {
        return;
    };
    let p = |text: &str| printable_line(text).into_owned();
    let mut line = format!(
        "  {} {} for {} s: {}",
        style.dim("running"),
        p(version),
        elapsed.as_secs(),
        p(sql)
    );
    if let Some(waiting) = waiting_for {
        line.push_str(&format!(" — waiting for {}", p(waiting)));
    }
    if let Some(progress) = progress {
        line.push_str(&format!(" — {}", p(progress)));
    }
    if std::io::stderr().is_terminal() {
        // `\r` and erase-line: the next line (or the next tick) takes its place.
        eprint!("\r\x1b[2K{line}");
        LIVE_LINE.store(true, std::sync::atomic::Ordering::SeqCst);
    } else if elapsed.as_secs() % 5 == 0 {
        eprintln!("{line}");
    }
}

/// Renders the runner's events as log lines on stderr.
pub fn log_event(style: Style, event: &Event) {
    if matches!(event, Event::StepRunning { .. }) {
        return log_running(style, event);
    }
    if LIVE_LINE.swap(false, std::sync::atomic::Ordering::SeqCst) {
        eprint!("\r\x1b[2K");
    }
    // Names, SQL and server messages come from files and databases: shown, never obeyed.
    let p = |text: &str| printable_line(text).into_owned();
    let line = match event {
        Event::WaitingForRunnerLock { holder_pid } => format!(
            "{} another pgshift runner holds the migration lock{} (the session of a killed run lets go within seconds)",
            style.yellow("waiting:"),
            holder_pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ),
        Event::Adopted { tool, table, count } => {
            format!(
                "{} {} recorded as applied by {tool} in {table}",
                style.bold("adopted:"),
                pgshift_runner::report::count(*count, "migration")
            )
        }
        Event::OutOfOrder { version, latest_applied } => format!(
            "{} {} is older than {}, which is already applied; applying it now",
            style.yellow("warning:"),
            p(version),
            p(latest_applied)
        ),
        Event::MissingFromDisk { versions } => format!(
            "{} applied but not on disk: {}",
            style.yellow("warning:"),
            p(&versions.join(", "))
        ),
        Event::Applying { version, name, units, resume_at, no_transaction } => {
            let mut s = format!("{} {} {}", style.bold("applying"), p(version), p(name));
            if *resume_at >= *units && *units > 0 {
                s.push_str(" (every step was done by an earlier run; recording the end)");
            } else if *resume_at > 0 {
                s.push_str(&format!(" (resuming at step {} of {units})", resume_at + 1));
            }
            if let Some(why) = no_transaction {
                s.push_str(&style.dim(&format!(" — outside a transaction: {}", p(why))));
            }
            s
        }
        Event::Rewrite { purpose, sql, .. } => format!("  {} {}\n    {}", style.dim("safe rewrite:"), p(purpose), printable(sql)),
        Event::Notice { severity, message } => format!("  {} {}", style.dim(&format!("{}:", p(&severity.to_lowercase()))), printable(message)),
        Event::LockRetry { attempt, wait, blockers, .. } => format!(
            "  {} lock_timeout hit (attempt {attempt}); rolled back, retrying in {} ms. In the way: {}",
            style.yellow("retry:"),
            wait.as_millis(),
            p(blockers)
        ),
        Event::Applied { version, name, duration } => {
            format!("  {} {} {} ({} ms)", style.green("applied"), p(version), p(name), duration.as_millis())
        }
        Event::Reverting { version, name, from_history } => format!(
            "{} {} {}{}",
            style.bold("reverting"),
            p(version),
            p(name),
            if *from_history { style.dim(" — using the down SQL recorded at apply time") } else { String::new() }
        ),
        Event::Reverted { version, name, duration } => {
            format!("  {} {} {} ({} ms)", style.green("reverted"), p(version), p(name), duration.as_millis())
        }
        Event::GuardWaiting { tables, sessions, waited, .. } => format!(
            "  {} {} in the way of the lock on {} (waited {} ms); not joining the lock queue:\n{}",
            style.yellow("guard:"),
            if sessions.len() == 1 { "1 session".to_string() } else { format!("{} sessions", sessions.len()) },
            p(&tables.join(", ")),
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
            // An autovacuum has no application_name: its query says what it is.
            p(if session.application_name.is_empty() { &session.query } else { &session.application_name }),
            if *signalled { "" } else { " — the server refused the signal" }
        ),
        Event::Backup { mode, object, kept_in, .. } => {
            format!("  {} {} kept in {} (on_drop = {mode})", style.dim("backup:"), p(object), p(kept_in))
        }
        Event::Settled { version, step, landed, why } => format!(
            "  {} step {step} of {} was in flight when the last run stopped: {}; {}",
            style.yellow("recovered:"),
            p(version),
            p(why),
            if *landed { "it completed and is now recorded" } else { "it runs again" }
        ),
        Event::BackfillStarted { id, table, walk, estimate, resumed_at, runs_once } => format!(
            "  {} {} of {} by {walk}{}{}{}",
            style.bold("backfill"),
            p(id),
            p(table),
            estimate.map(|e| format!(", about {e} rows to update")).unwrap_or_default(),
            resumed_at.map(|r| format!(", resuming after {r} rows done")).unwrap_or_default(),
            runs_once.as_deref().map(|why| format!("; {}", p(&pgshift_runner::backfill::mode::explain(why)))).unwrap_or_default()
        ),
        // In a log, only what matters: waits with their reason, and the end. `pgshift
        // backfill` draws the full progress itself.
        Event::BackfillProgress(p) => match (&p.phase, &p.throttle) {
            (pgshift_runner::backfill::Phase::Done, _) => format!(
                "  {} backfill {}: {} rows, {}",
                style.green("done:"),
                printable_line(&p.id),
                p.rows_done,
                if p.runs_once { "each updated once (walked once, not counted)" } else { "proved complete" }
            ),
            (_, Some(reason)) => format!(
                "  {} backfill {}: {}",
                style.yellow("waiting:"),
                printable_line(&p.id),
                printable_line(reason)
            ),
            _ => return,
        },
        Event::OnlineChange {
            version,
            operations,
        } => format!(
            "  {} runs as an online change (expand now, contract after the deploy):\n{}",
            printable(version),
            operations
                .iter()
                .map(|o| format!("    - {}", printable(o)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        Event::Info(text) => printable(text).into_owned(),
        Event::StepRunning { .. } => return,
    };
    // One write per event: stderr is unbuffered, and `eprintln!` writes the line and its end
    // apart (a run of hundreds of migrations made a thousand writes).
    let mut line = line;
    line.push('\n');
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}
