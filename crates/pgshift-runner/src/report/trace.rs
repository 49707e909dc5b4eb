//! How a [`TraceReport`] reads: a table for a terminal, JSON, and Markdown for a pull request
//! (whose per-migration tables `verify`'s report reuses).

use std::io::{self, Write};

use pgshift_db::{LockLevel, RelationKind};
use pgshift_sql::printable_line;

use crate::trace::{shown, LockSource, StatementTrace, TraceReport};

/// `sql` on one line, at most `width` characters, control characters escaped.
pub(crate) fn clip(sql: &str, width: usize) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let one_line = pgshift_sql::printable_line(&one_line).into_owned();
    if one_line.chars().count() > width {
        let cut: String = one_line.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

fn locks_text(s: &StatementTrace) -> String {
    if s.locks.is_empty() {
        return "-".to_string();
    }
    // Index reads come with every table read; JSON keeps them, the tables leave them out.
    s.locks
        .iter()
        .filter(|l| !(l.kind == RelationKind::Index && l.mode == LockLevel::AccessShare))
        .map(|l| format!("{} {}", l.mode, shown(&l.relation)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn changes_text(s: &StatementTrace) -> String {
    let mut parts = Vec::new();
    for r in &s.rewritten {
        parts.push(format!("REWROTE {r}"));
    }
    for r in &s.scanned {
        parts.push(format!("scanned {r}"));
    }
    for (label, list) in [
        ("created", &s.created),
        ("dropped", &s.dropped),
        ("altered", &s.altered),
    ] {
        if !list.is_empty() {
            parts.push(format!("{label} {}", list.join(", ")));
        }
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join("; ")
    }
}

/// The trace as a table for a terminal.
pub fn render_terminal(report: &TraceReport, out: &mut dyn Write) -> io::Result<()> {
    // A throwaway cluster's description already names its version; a URL does not.
    let version = if report
        .target
        .contains(&format!("PostgreSQL {}", report.server_version))
    {
        String::new()
    } else {
        format!(" (PostgreSQL {})", report.server_version)
    };
    writeln!(
        out,
        "trace on {}{version}{}",
        report.target,
        if report.committed {
            ""
        } else {
            ", rolled back"
        }
    )?;
    for m in &report.migrations {
        writeln!(
            out,
            "\n{} {}  ({})",
            printable_line(&m.version),
            printable_line(&m.name),
            printable_line(&m.path)
        )?;
        for s in &m.statements {
            writeln!(
                out,
                "  {:>4}  {:<48}  {:>8.1} ms{}",
                s.line,
                clip(&s.sql, 48),
                s.duration_ms,
                if s.lock_source == LockSource::Sampled {
                    "  (no transaction; locks sampled)"
                } else {
                    ""
                }
            )?;
            writeln!(out, "        locks:   {}", locks_text(s))?;
            let changes = changes_text(s);
            if changes != "-" {
                writeln!(out, "        changes: {changes}")?;
            }
            for d in &s.disagreements {
                writeln!(out, "        ≠ {d}")?;
            }
        }
        for n in &m.notes {
            writeln!(out, "  note: {n}")?;
        }
        if let Some(e) = &m.error {
            writeln!(out, "  error: {e}")?;
        }
    }
    let disagreements = report.disagreements();
    writeln!(
        out,
        "\n{} statement(s) traced in {} migration(s); {} disagreement(s) with pgshift's lock knowledge",
        report.statement_count(),
        report.migrations.len(),
        disagreements.len()
    )?;
    for n in &report.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

/// The trace as JSON (the [`TraceReport`] fields).
pub fn render_json(report: &TraceReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}

/// Escapes text for a markdown table cell (`verify`'s report uses it too).
pub(crate) fn cell(text: &str) -> String {
    crate::report::markdown::cell(text)
}

/// The trace as markdown (one table per migration), for a pull request comment.
pub fn render_markdown(report: &TraceReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "### Lock trace (PostgreSQL {}{})\n",
        report.server_version,
        if report.committed {
            ""
        } else {
            ", rolled back"
        }
    )?;
    write_markdown_tables(report, out)
}

/// The per-migration tables, shared with `verify`'s markdown report.
pub(crate) fn write_markdown_tables(report: &TraceReport, out: &mut dyn Write) -> io::Result<()> {
    for m in &report.migrations {
        writeln!(
            out,
            "**{} {}** ({})\n",
            crate::report::markdown::text(&m.version),
            crate::report::markdown::text(&m.name),
            crate::report::markdown::code(&m.path)
        )?;
        writeln!(
            out,
            "| line | statement | locks taken | changes | ms | disagreements |"
        )?;
        writeln!(out, "|---:|---|---|---|---:|---|")?;
        for s in &m.statements {
            writeln!(
                out,
                "| {} | {} | {}{} | {} | {:.1} | {} |",
                s.line,
                crate::report::markdown::code_cell(&clip(&s.sql, 60)),
                cell(&locks_text(s)),
                if s.lock_source == LockSource::Sampled {
                    " (sampled)"
                } else {
                    ""
                },
                cell(&changes_text(s)),
                s.duration_ms,
                cell(&s.disagreements.join("; "))
            )?;
        }
        for n in &m.notes {
            writeln!(out, "\n> note: {}", cell(n))?;
        }
        if let Some(e) = &m.error {
            writeln!(out, "\n> **error:** {}", cell(e))?;
        }
        writeln!(out)?;
    }
    Ok(())
}
