//! `verify`'s reports: terminal, JSON and markdown. Each leads with the verdict and its counts,
//! then one line per problem, then the details; hints are counted, never listed.
//!
//! Markdown is a pull request comment, so it is capped below GitHub's 65,536-character limit
//! ([`MARKDOWN_LIMIT`]): sections are added in order of importance and whatever does not fit
//! is named in a closing line that says where the full report is (`--output FILE`).

use std::fmt::Write as _;
use std::io::{self, Write};

use pgshift_db::LockLevel;

use pgshift_lint::Severity;

use crate::trace::{cell, TraceReport};
use crate::verify::VerifyReport;

/// The detail lines (line diffs) the terminal shows per problem; JSON and markdown have all.
const TERMINAL_DETAIL_LINES: usize = 40;

/// The most characters a markdown report has, cut note included.
pub const MARKDOWN_LIMIT: usize = 60_000;

/// Statements worth a person's attention in the trace: a lock that blocks writes (or reads)
/// on a table that already existed, or a rewrite. `(location, what)`.
pub fn trace_highlights(trace: &TraceReport) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in &trace.migrations {
        for s in &m.statements {
            let strong: Vec<String> = s
                .locks
                .iter()
                .filter(|l| l.mode.conflicts_with(LockLevel::RowExclusive))
                .map(|l| format!("{} on {}", l.mode, crate::trace::shown(&l.relation)))
                .collect();
            let mut parts = Vec::new();
            if !strong.is_empty() {
                parts.push(format!("takes {}", strong.join(", ")));
            }
            if !s.rewritten.is_empty() {
                parts.push(format!("rewrites {}", s.rewritten.join(", ")));
            }
            if !parts.is_empty() {
                out.push((format!("{}:{}", m.path, s.line), parts.join("; ")));
            }
        }
    }
    out
}

/// The report for a terminal: the verdict, one line per problem, then the details.
pub fn render_terminal(report: &VerifyReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "pgshift verify {} in {:.1} s",
        report.verdict(),
        report.duration_ms as f64 / 1000.0
    )?;
    writeln!(
        out,
        "  {} ({} format) on {}",
        report.dir, report.format, report.server
    )?;
    if !report.failures.is_empty() {
        writeln!(out, "\nproblems:")?;
        for f in &report.failures {
            writeln!(out, "  ✗ {}", one_line(f))?;
        }
    }
    let a = &report.analyzer;
    if a.errors > 0 {
        writeln!(
            out,
            "\nanalyzer errors, by rule (`pgshift check` lists each, and the warnings, notes and hints):"
        )?;
        for line in error_groups(a) {
            writeln!(out, "  {line}")?;
        }
    }
    if let Some(g) = &a.gate {
        writeln!(
            out,
            "  analyzer gated to the migrations changed since {g}; {} finding(s) in older ones not counted",
            a.outside_gate
        )?;
    }
    if let Some(trace) = &report.trace {
        let highlights = trace_highlights(trace);
        let disagreements = trace.disagreements();
        writeln!(
            out,
            "\ntrace: {} statement(s), {} that block writes or rewrite, {} disagreement(s) with pgshift's lock knowledge",
            trace.statement_count(),
            highlights.len(),
            disagreements.len()
        )?;
        for d in disagreements {
            writeln!(out, "  ≠ {d}")?;
        }
        if let Some(e) = trace.error() {
            writeln!(out, "  trace error: {e}")?;
        }
    }
    for n in &report.notes {
        writeln!(out, "note: {n}")?;
    }
    if report.failures.iter().any(has_details) {
        writeln!(out, "\ndetails:")?;
        for f in &report.failures {
            if !has_details(f) {
                continue;
            }
            writeln!(out, "  {}", f.migration.as_deref().unwrap_or(&f.message))?;
            for d in &f.differences {
                writeln!(out, "      - {d}")?;
            }
            for d in f.details.iter().take(TERMINAL_DETAIL_LINES) {
                writeln!(out, "        {d}")?;
            }
            if f.details.len() > TERMINAL_DETAIL_LINES {
                writeln!(
                    out,
                    "        … {} more line(s): --format json or --output FILE",
                    f.details.len() - TERMINAL_DETAIL_LINES
                )?;
            }
        }
    }
    writeln!(out, "\n{}", if report.passed { "PASSED" } else { "FAILED" })
}

/// The analyzer's errors, one line per rule: how many, and the first with its location
/// (`pgshift check` lists every one).
fn error_groups(a: &crate::verify::AnalyzerSummary) -> Vec<String> {
    let mut groups: Vec<(&str, usize, &crate::verify::AnalyzerFinding)> = Vec::new();
    for f in a.findings.iter().filter(|f| f.severity == Severity::Error) {
        match groups.iter_mut().find(|(rule, _, _)| *rule == f.rule) {
            Some(group) => group.1 += 1,
            None => groups.push((&f.rule, 1, f)),
        }
    }
    groups
        .into_iter()
        .map(|(rule, n, first)| match n {
            1 => format!("error[{rule}] at {}: {}", first.location, first.message),
            n => format!(
                "error[{rule}] ×{n}, the first at {}: {}",
                first.location, first.message
            ),
        })
        .collect()
}

/// Whether a failure has more to say than its line: several differences, or detail lines.
fn has_details(f: &crate::verify::Failure) -> bool {
    f.differences.len() > 1 || !f.details.is_empty()
}

/// A failure in one line: the message, and the first difference when there is one.
fn one_line(f: &crate::verify::Failure) -> String {
    match f.differences.as_slice() {
        [] => f.message.clone(),
        [one] => format!("{}: {one}", f.message),
        [first, rest @ ..] => format!("{}: {first} (and {} more)", f.message, rest.len()),
    }
}

/// The report as JSON (the [`VerifyReport`] fields, documented in docs/verify-and-trace.md).
pub fn render_json(report: &VerifyReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}

/// The whole report as markdown, uncut (for `--output FILE`).
pub fn render_markdown(report: &VerifyReport, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(markdown(report, usize::MAX, None).as_bytes())
}

/// The report as markdown for a pull request comment: at most `limit` characters, the cut
/// sections named at the end with where the full report is (`full`: the `--output` file).
pub fn render_markdown_capped(
    report: &VerifyReport,
    limit: usize,
    full: Option<&str>,
    out: &mut dyn Write,
) -> io::Result<()> {
    out.write_all(markdown(report, limit, full).as_bytes())
}

/// Sections in order of importance; each is added whole, or in part line by line, while it
/// fits.
fn markdown(report: &VerifyReport, limit: usize, full: Option<&str>) -> String {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    let mut head = String::new();
    let _ = writeln!(
        head,
        "## pgshift verify: {}\n",
        if report.passed {
            "✅ passed"
        } else {
            "❌ failed"
        }
    );
    let _ = writeln!(head, "**{}**\n", cell(&report.verdict()));
    let _ = writeln!(
        head,
        "`{}` ({} format): each down checked on its own, then up → down → up on PostgreSQL {}, {:.1} s.\n",
        cell(&report.dir),
        report.format,
        report.server_version,
        report.duration_ms as f64 / 1000.0
    );
    if !report.failures.is_empty() {
        let mut lines = vec!["### Problems\n".to_string()];
        lines.extend(
            report
                .failures
                .iter()
                .map(|f| format!("- {}", cell(&one_line(f)))),
        );
        lines.push(String::new());
        sections.push(("problems".to_string(), lines));
    }
    let a = &report.analyzer;
    if a.errors > 0 || a.gate.is_some() {
        let mut lines = vec![format!(
            "### Analyzer: {} error(s), {} warning(s), {} note(s), {} hint(s) (not listed)\n",
            a.errors, a.warnings, a.notes, a.hints
        )];
        if let Some(g) = &a.gate {
            lines.push(format!(
                "Gated to the migrations changed since {}; {} finding(s) in older ones not counted.\n",
                cell(g),
                a.outside_gate
            ));
        }
        lines.push(
            "Errors by rule; `pgshift check` lists each, and the warnings and notes (what `pgshift up` runs instead).\n"
                .to_string(),
        );
        lines.extend(error_groups(a).iter().map(|l| format!("- {}", cell(l))));
        lines.push(String::new());
        sections.push(("analyzer findings".to_string(), lines));
    }
    if !report.notes.is_empty() {
        let mut lines: Vec<String> = report
            .notes
            .iter()
            .map(|n| format!("> {}", cell(n)))
            .collect();
        lines.push(String::new());
        sections.push(("notes".to_string(), lines));
    }
    if report.failures.iter().any(has_details) {
        let mut lines = vec!["### Details\n".to_string()];
        for f in &report.failures {
            if !has_details(f) {
                continue;
            }
            let mut block = format!(
                "**{}**\n```\n",
                cell(f.migration.as_deref().unwrap_or(&f.message))
            );
            for d in &f.differences {
                let _ = writeln!(block, "- {d}");
            }
            for d in &f.details {
                let _ = writeln!(block, "  {}", d.replace("```", "'''"));
            }
            block.push_str("```\n");
            lines.push(block);
        }
        sections.push(("problem details".to_string(), lines));
    }
    if let Some(trace) = &report.trace {
        let disagreements = trace.disagreements();
        let mut lines = vec![format!(
            "### Lock trace: {} statement(s), {} disagreement(s) with pgshift's knowledge\n",
            trace.statement_count(),
            disagreements.len()
        )];
        lines.extend(disagreements.iter().map(|d| format!("- ≠ {}", cell(d))));
        lines.extend(
            trace_highlights(trace)
                .into_iter()
                .map(|(at, what)| format!("- `{}` {}", cell(&at), cell(&what))),
        );
        lines.push(String::new());
        sections.push(("lock trace highlights".to_string(), lines));
    }
    let mut table = vec![
        "<details><summary>Every migration</summary>\n".to_string(),
        "| migration | up | down restores schema | up again |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    table.extend(report.migrations.iter().map(|m| {
        format!(
            "| `{}` {} | {} | {} | {} |",
            m.version,
            cell(&m.name),
            m.up.symbol(),
            m.down.symbol(),
            m.reapply.symbol()
        )
    }));
    table.push("\n</details>\n".to_string());
    sections.push(("the table of every migration".to_string(), table));
    if let Some(trace) = &report.trace {
        let mut tables = Vec::new();
        let _ = crate::trace::write_markdown_tables(trace, &mut tables);
        let mut lines = vec!["<details><summary>Every traced statement</summary>\n".to_string()];
        lines.extend(String::from_utf8_lossy(&tables).lines().map(str::to_string));
        lines.push("</details>".to_string());
        sections.push(("the trace of every statement".to_string(), lines));
    }

    // What the cut note costs at most, so it always fits.
    let reserve = 600;
    let mut out = head;
    let mut cut: Vec<String> = Vec::new();
    for (name, lines) in sections {
        let whole: usize = lines.iter().map(|l| l.chars().count() + 1).sum();
        if cut.is_empty() && out.chars().count() + whole + reserve <= limit {
            for l in &lines {
                out.push_str(l);
                out.push('\n');
            }
            continue;
        }
        // Partly: whole lines while they fit, then the rest is cut. A `<details>` block or a
        // code fence is never left open: such sections go whole or not at all.
        let splittable = !lines
            .iter()
            .any(|l| l.contains("```") || l.contains("<details>"));
        let mut shown = 0;
        if cut.is_empty() && splittable {
            let mut used = out.chars().count();
            for l in &lines {
                let n = l.chars().count() + 1;
                if used + n + reserve > limit {
                    break;
                }
                out.push_str(l);
                out.push('\n');
                used += n;
                shown += 1;
            }
        }
        let items = lines[shown..]
            .iter()
            .filter(|l| !l.trim().is_empty())
            .count();
        if shown > 0 {
            cut.push(format!("{items} line(s) of {name}"));
        } else {
            cut.push(name);
        }
    }
    if !cut.is_empty() {
        let whereto = match full {
            Some(path) => format!("the full report is in `{}`", cell(path)),
            None => "run `pgshift verify --format markdown --output FILE` to write the full report to a file (a CI artifact)".to_string(),
        };
        let mut note = format!(
            "\n> ✂ Cut to fit a pull request comment ({limit} characters): {}; {whereto}.\n",
            cut.join(", ")
        );
        if note.chars().count() > reserve {
            note = format!(
                "\n> ✂ Cut to fit a pull request comment ({limit} characters): {} section(s); {whereto}.\n",
                cut.len()
            );
        }
        out.push_str(&note);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::*;

    fn report(passed: bool) -> VerifyReport {
        VerifyReport {
            passed,
            counts: Counts {
                migrations: 1,
                downs_checked: 1,
                downs_broken: usize::from(!passed),
                forward_only: 0,
                failures: usize::from(!passed),
            },
            dir: "migrations".into(),
            format: "pgshift".into(),
            server: "throwaway cluster".into(),
            server_version: "15.18".into(),
            migrations: vec![MigrationResult {
                version: "20240101000000".into(),
                name: "create_users".into(),
                path: "migrations/20240101000000_create_users.up.sql".into(),
                up: Outcome::Passed,
                up_ms: Some(3),
                down: if passed {
                    Outcome::Passed
                } else {
                    Outcome::Differs
                },
                down_ms: Some(2),
                reapply: Outcome::Passed,
            }],
            failures: if passed {
                Vec::new()
            } else {
                vec![Failure {
                    phase: Phase::Restore,
                    migration: Some("20240101000000 create_users".into()),
                    file: None,
                    message: "the down of 20240101000000 create_users does not restore the schema"
                        .into(),
                    differences: vec!["index users_email_idx: only after its down".into()],
                    details: Vec::new(),
                }]
            },
            notes: Vec::new(),
            analyzer: AnalyzerSummary::default(),
            trace: None,
            duration_ms: 1234,
            timings: Timings::default(),
        }
    }

    fn rendered(
        f: fn(&VerifyReport, &mut dyn Write) -> io::Result<()>,
        r: &VerifyReport,
    ) -> String {
        let mut out = Vec::new();
        f(r, &mut out).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_terminal_report_starts_with_the_verdict_and_names_the_guilty_migration() {
        let text = rendered(render_terminal, &report(false));
        assert!(
            text.starts_with(
                "pgshift verify FAILED: 1 failure(s); 1 migrations, 1 of 1 downs broken"
            ),
            "{text}"
        );
        assert!(
            text.contains("✗ the down of 20240101000000 create_users does not restore the schema: index users_email_idx: only after its down"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("FAILED"), "{text}");
        let ok = rendered(render_terminal, &report(true));
        assert!(ok.starts_with("pgshift verify PASSED"), "{ok}");
    }

    #[test]
    fn markdown_is_a_pull_request_comment() {
        let text = rendered(render_markdown, &report(false));
        assert!(text.starts_with("## pgshift verify: ❌ failed"), "{text}");
        assert!(
            text.contains("| `20240101000000` create_users | ok | DIFFERS | ok |"),
            "{text}"
        );
        assert!(
            text.contains("index users_email_idx: only after its down"),
            "{text}"
        );
    }

    #[test]
    fn capped_markdown_says_what_was_cut_and_where_the_rest_is() {
        let mut big = report(false);
        for i in 0..2000 {
            big.migrations.push(MigrationResult {
                version: format!("2024{i:010}"),
                ..big.migrations[0].clone()
            });
            big.failures.push(Failure {
                differences: vec![format!("column t{i}.c: only after its down"); 3],
                ..big.failures[0].clone()
            });
        }
        big.counts.failures = big.failures.len();
        let mut out = Vec::new();
        render_markdown_capped(&big, MARKDOWN_LIMIT, Some("verify-full.md"), &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.chars().count() <= MARKDOWN_LIMIT, "{}", text.len());
        assert!(
            text.contains("the full report is in `verify-full.md`"),
            "{text}"
        );
        assert!(text.contains("the table of every migration"), "{text}");
        assert!(
            text.starts_with("## pgshift verify: ❌ failed\n\n**FAILED: 2001 failure(s)"),
            "{text}"
        );
    }

    #[test]
    fn json_has_the_documented_fields() {
        let text = rendered(render_json, &report(true));
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value["passed"], true);
        assert_eq!(value["migrations"][0]["down"], "passed");
        assert_eq!(value["migrations"][0]["reapply"], "passed");
        assert_eq!(value["counts"]["downs_checked"], 1);
        assert_eq!(value["server_version"], "15.18");
        assert!(value["failures"].as_array().is_some_and(Vec::is_empty));
    }
}
