//! `--format json`: one JSON document with every finding, for scripts and editors.
//!
//! The schema is a promise: fields are only ever added, and a change that would break a reader
//! bumps [`JSON_SCHEMA_VERSION`]. Every field is documented in `docs/output-formats.md`; the
//! types here are public (and deserialisable) so that Rust callers can read the output back.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::finding::{Report, Severity};

use super::report_path;

/// The `version` field of the document.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonOutput {
    pub version: u32,
    pub files_checked: usize,
    pub summary: JsonSummary,
    pub findings: Vec<JsonFinding>,
}

/// How many findings of each severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSummary {
    pub error: usize,
    pub warning: usize,
    pub hint: usize,
    /// Statements `pgshift up` runs in a safe form; absent when there are none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub note: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One finding. Lines and columns are 1-based, columns count characters (Unicode scalar
/// values); `end_*` and `byte_end` point just past the last character of the span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonFinding {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub byte_start: usize,
    pub byte_end: usize,
    pub rule: String,
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    /// The lock the statement takes, as PostgreSQL's documentation and `LOCK TABLE` spell it
    /// (`ACCESS EXCLUSIVE`), when the rule knows it.
    pub lock: Option<String>,
    pub tables: Vec<String>,
    pub fix: Option<JsonFix>,
}

/// A mechanical fix: replace the file's bytes `byte_start..byte_end` with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonFix {
    pub byte_start: usize,
    pub byte_end: usize,
    pub replacement: String,
}

impl JsonOutput {
    /// The document for a report.
    pub fn from_report(report: &Report) -> JsonOutput {
        let counts = report.counts();
        let findings = report
            .files
            .iter()
            .flat_map(|file| &file.findings)
            .map(|f| JsonFinding {
                path: report_path(&f.path),
                line: f.start.line,
                column: f.start.column,
                end_line: f.end.line,
                end_column: f.end.column,
                byte_start: f.span.start,
                byte_end: f.span.end,
                rule: f.rule.to_string(),
                code: f.code.to_string(),
                severity: f.severity,
                message: f.message.clone(),
                help: f.help.clone(),
                lock: f.lock.map(|lock| lock.sql_name().to_string()),
                tables: f.tables.clone(),
                fix: f.fix.as_ref().map(|fix| JsonFix {
                    byte_start: fix.span.start,
                    byte_end: fix.span.end,
                    replacement: fix.replacement.clone(),
                }),
            })
            .collect();
        JsonOutput {
            version: JSON_SCHEMA_VERSION,
            files_checked: report.files.len(),
            summary: JsonSummary {
                error: counts.error,
                warning: counts.warning,
                hint: counts.hint,
                note: counts.note,
            },
            findings,
        }
    }
}

/// Writes the report as one pretty-printed JSON document followed by a newline.
pub fn render_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &JsonOutput::from_report(report))?;
    writeln!(out)
}

/// One rule in `pgshift rules --format json` (documented in `docs/output-formats.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonRule {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub opt_in: bool,
    pub summary: &'static str,
}

/// The rules as `pgshift rules --format json` prints them: an array, in registry order.
pub fn render_rules_json(rules: &[&crate::rules::Rule]) -> String {
    let list: Vec<JsonRule> = rules
        .iter()
        .map(|r| JsonRule {
            code: r.code,
            name: r.name,
            severity: r.severity,
            opt_in: r.opt_in,
            summary: r.summary,
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_default()
}
