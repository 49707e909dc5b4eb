//! How a [`PlanReport`] reads: a report for a terminal, JSON (every field), and Markdown for
//! a pull request.

use std::fmt::Write as _;

use pgshift_sql::printable_line;

use crate::plan::{Answer, Checklist, PlanReport, TableLock};
use crate::report::markdown;

/// What `up` does first with a migration the rewrites split, when it may (see
/// [`crate::small_tables`]).
const SMALL_TABLES: &str = "runs as written, in one transaction, when its tables hold at most 1 MB in all and their locks are free at once";

/// `0.4 ms`, `12 ms`, `3.2 s`, `4.5 min`.
pub fn format_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.1} min", ms / 60_000.0)
    }
}

/// `-1` → `?`; otherwise `1.2M`, `35k`, `12`.
fn format_rows(rows: Option<i64>) -> String {
    match rows {
        None => "new".into(),
        Some(r) if r < 0 => "?".into(),
        Some(r) if r >= 1_000_000 => format!("{:.1}M", r as f64 / 1e6),
        Some(r) if r >= 10_000 => format!("{}k", r / 1000),
        Some(r) => r.to_string(),
    }
}

fn format_bytes(bytes: Option<i64>) -> String {
    match bytes {
        None => "-".into(),
        Some(b) if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        Some(b) if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        Some(b) if b >= 1 << 10 => format!("{} kB", b >> 10),
        Some(b) => format!("{b} B"),
    }
}

fn table_summary(t: &TableLock) -> String {
    let mut what = Vec::new();
    if t.rewrite {
        what.push("rewrite");
    }
    if t.scan {
        what.push("scan");
    }
    let what = if what.is_empty() {
        String::new()
    } else {
        format!(", {}", what.join("+"))
    };
    format!(
        "{} {} ({} rows, {}{what})",
        t.lock,
        t.table,
        format_rows(t.rows_estimate),
        format_bytes(t.bytes)
    )
}

fn yes_no(a: &Answer) -> &'static str {
    if a.ok {
        "ok"
    } else {
        "check"
    }
}

/// The plan for a terminal: one block per migration, one entry per statement.
pub fn render_terminal(report: &PlanReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan for {} (PostgreSQL {}){}",
        printable_line(&report.database),
        report.server_version,
        if report.exact {
            ", --exact: no safe rewrites"
        } else {
            ""
        }
    );
    if report.migrations.is_empty() {
        let _ = writeln!(out, "nothing pending");
        return out;
    }
    for m in &report.migrations {
        let _ = writeln!(out);
        let resume = m
            .resumes_at
            .map(|r| format!(", resumes at step {}", r + 1))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {} ({}; {}{resume})",
            printable_line(&m.version),
            printable_line(&m.name),
            printable_line(&m.path),
            match &m.online {
                Some(o) => format!(
                    "expand {}, contract {}",
                    crate::report::count(o.expand.len(), "step"),
                    crate::report::count(o.contract.len(), "step")
                ),
                None => crate::report::count(m.units, "step"),
            }
        );
        if let Some(d) = &m.dump {
            let _ = writeln!(out, "  first: pg_dump of the dropped tables to {d}");
        }
        if let Some(reason) = &m.runs_as_written {
            let _ = writeln!(
                out,
                "  runs as written, not as an online change: {}",
                printable_line(reason)
            );
        }
        if m.as_written_when_small {
            let _ = writeln!(out, "  {SMALL_TABLES}; otherwise as below");
        }
        if let Some(o) = &m.online {
            let _ = writeln!(out, "  {}", online_line(o));
            for op in &o.operations {
                let _ = writeln!(out, "    - {}", printable_line(op));
            }
            for (phase, units) in [("expand", &o.expand), ("contract", &o.contract)] {
                for (i, what) in units.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "    {phase} {}/{}: {}",
                        i + 1,
                        units.len(),
                        printable_line(what)
                    );
                }
            }
            for caveat in &o.caveats {
                let _ = writeln!(out, "    before complete: {}", printable_line(caveat));
            }
            let _ = writeln!(
                out,
                "  the statements below are what the file says; they run as the phases above"
            );
        }
        for s in &m.statements {
            let _ = writeln!(out, "  line {}: {}", s.line, s.sql);
            for t in &s.tables {
                let _ = writeln!(out, "    locks    {}", table_summary(t));
            }
            for r in &s.runs_instead {
                let _ = writeln!(out, "    runs     {} [{}]", r.sql, r.runs);
                let _ = writeln!(out, "             {}", r.purpose);
            }
            match &s.blocking {
                Some(b) => {
                    let _ = writeln!(
                        out,
                        "    blocks   {} on {} for ≈ {}",
                        b.blocks,
                        b.table,
                        format_ms(b.estimate_ms)
                    );
                }
                None if !s.tables.is_empty() => {
                    let _ = writeln!(out, "    blocks   no reads or writes");
                }
                None => {}
            }
            for c in &s.conflicting_now {
                let _ = writeln!(
                    out,
                    "    in the way now: pid {} ({}, {}{}): {}",
                    c.pid,
                    if c.application_name.is_empty() {
                        "no application_name".into()
                    } else {
                        printable_line(&c.application_name)
                    },
                    printable_line(&c.state),
                    c.xact_age_ms
                        .map(|a| format!(", transaction open {}", format_ms(a as f64)))
                        .unwrap_or_default(),
                    c.query
                );
            }
        }
        let _ = writeln!(out, "  checklist");
        for (q, a) in checklist_rows(&m.checklist) {
            let _ = writeln!(out, "    [{}] {q} {}", yes_no(a), printable_line(&a.text));
        }
    }
    let over = report.over_limit();
    let _ = writeln!(out);
    if over.is_empty() {
        let _ = writeln!(
            out,
            "no statement holds a blocking lock on a non-empty table for longer than {}",
            format_ms(report.max_lock_ms as f64)
        );
    } else {
        for o in &over {
            let _ = writeln!(
                out,
                "over the limit: {} line {}: {} on {} for ≈ {} (max {})",
                o.version,
                o.line,
                o.lock,
                o.table,
                format_ms(o.estimate_ms),
                format_ms(report.max_lock_ms as f64)
            );
        }
    }
    out
}

fn checklist_rows(c: &Checklist) -> [(&'static str, &Answer); 4] {
    [
        (
            "Backward compatible with the running code?",
            &c.backward_compatible,
        ),
        ("What if it fails halfway?", &c.if_it_fails_halfway),
        ("Rollback script?", &c.rollback),
        ("Locking operations and expected lock duration?", &c.locking),
    ]
}

/// The report as JSON (every field of [`PlanReport`]).
pub fn render_json(report: &PlanReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The report as Markdown, to paste into a pull request.
pub fn render_markdown(report: &PlanReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## pgshift plan");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Database {}, PostgreSQL {}{}. Estimates: rewrite {} MB/s, index build {} MB/s, scan {} MB/s, catalog-only {} ms.",
        markdown::code(&report.database),
        report.server_version,
        if report.exact { " (`--exact`: no safe rewrites)" } else { "" },
        report.model.rewrite_mb_per_sec,
        report.model.index_mb_per_sec,
        report.model.scan_mb_per_sec,
        report.model.catalog_ms
    );
    if report.migrations.is_empty() {
        let _ = writeln!(out, "\nNothing pending.");
        return out;
    }
    for m in &report.migrations {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "### {} {}",
            markdown::text(&m.version),
            markdown::text(&m.name)
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}, {}{}",
            markdown::code(&m.path),
            crate::report::count(m.units, "step"),
            m.resumes_at
                .map(|r| format!(", resumes at step {}", r + 1))
                .unwrap_or_default()
        );
        if let Some(d) = &m.dump {
            let _ = writeln!(
                out,
                "\nFirst: `pg_dump` of the dropped tables to {}.",
                markdown::code(d)
            );
        }
        if let Some(reason) = &m.runs_as_written {
            let _ = writeln!(
                out,
                "\nRuns as written, not as an online change: {}",
                markdown::text(reason)
            );
        }
        if m.as_written_when_small {
            let _ = writeln!(out, "\nIt {SMALL_TABLES}; otherwise as below.");
        }
        if let Some(o) = &m.online {
            let _ = writeln!(
                out,
                "\n**Online change**: {}.\n",
                online_line(o).trim_start_matches("online change: ")
            );
            for op in &o.operations {
                let _ = writeln!(out, "- {}", markdown::text(op));
            }
            for (phase, units) in [("Expand", &o.expand), ("Contract", &o.contract)] {
                let _ = writeln!(out, "\n{phase}:\n");
                for (i, what) in units.iter().enumerate() {
                    let _ = writeln!(out, "{}. {}", i + 1, markdown::text(what));
                }
            }
            if !o.caveats.is_empty() {
                let _ = writeln!(out, "\nBefore complete:\n");
                for caveat in &o.caveats {
                    let _ = writeln!(out, "- {}", markdown::text(caveat));
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| line | statement | locks | runs instead | blocks | in the way now |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for s in &m.statements {
            let locks: Vec<String> = s.tables.iter().map(table_summary).collect();
            let runs: Vec<String> = s
                .runs_instead
                .iter()
                .map(|r| format!("{} ({})", markdown::code_cell(&r.sql), r.runs))
                .collect();
            let blocks = match &s.blocking {
                Some(b) => format!(
                    "{} on {}, ≈ {}",
                    b.blocks,
                    b.table,
                    format_ms(b.estimate_ms)
                ),
                None => "nothing".into(),
            };
            let way: Vec<String> = s
                .conflicting_now
                .iter()
                .map(|c| format!("pid {} ({})", c.pid, c.state))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                s.line,
                markdown::code_cell(&s.sql),
                locks
                    .iter()
                    .map(|l| markdown::text(l))
                    .collect::<Vec<_>>()
                    .join("<br>"),
                runs.join("<br>"),
                markdown::text(&blocks),
                markdown::text(&way.join(", "))
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "Pre-flight checklist:");
        let _ = writeln!(out);
        for (q, a) in checklist_rows(&m.checklist) {
            let _ = writeln!(
                out,
                "- [{}] **{q}** {}",
                if a.ok { "x" } else { " " },
                markdown::prose(&a.text)
            );
        }
    }
    let over = report.over_limit();
    let _ = writeln!(out);
    if over.is_empty() {
        let _ = writeln!(
            out,
            "No statement holds a blocking lock on a non-empty table for longer than {}.",
            format_ms(report.max_lock_ms as f64)
        );
    } else {
        for o in &over {
            let _ = writeln!(
                out,
                "**Over the limit:** {} line {}: {} on {} for ≈ {} (max {}).",
                markdown::text(&o.version),
                o.line,
                o.lock,
                markdown::text(&o.table),
                format_ms(o.estimate_ms),
                format_ms(report.max_lock_ms as f64)
            );
        }
    }
    out
}

/// What an online change's phases mean now: to come, or where the change in progress stands.
fn online_line(o: &crate::plan::OnlineOutline) -> String {
    match o.phase.as_deref() {
        None => "online change: expand now (`pgshift start` or `up`), contract after the deploy (`pgshift complete`)".to_string(),
        Some("expanded") => "online change: expanded (old and new code both work): contract after the deploy (`pgshift complete`), or undo the expand (`pgshift rollback`)".to_string(),
        Some(phase) => format!(
            "online change: {phase}, stopped partway: `pgshift {}` continues it",
            match phase {
                "contracting" => "complete",
                "rolling-back" => "rollback",
                _ => "start",
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(format_ms(0.42), "0.4 ms");
        assert_eq!(format_ms(250.0), "250 ms");
        assert_eq!(format_ms(3200.0), "3.2 s");
        assert_eq!(format_rows(Some(1_500_000)), "1.5M");
        assert_eq!(format_rows(Some(-1)), "?");
        assert_eq!(format_rows(None), "new");
        assert_eq!(format_bytes(Some(3 << 20)), "3.0 MB");
    }
}
