//! `--format json`: one JSON document with every finding, for scripts and editors.
//!
//! The schema is a promise: fields are only ever added, and a change that would break a reader
//! bumps [`JSON_SCHEMA_VERSION`]. Every field is documented in `docs/output-formats.md`; the
//! types here are public (and deserialisable) so that Rust callers can read the output back.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::finding::{Counts, Finding, Report, Severity};

use super::report_path;

/// The `version` field of the document.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonOutput {
    pub version: u32,
    pub findings: Vec<JsonFinding>,
    pub files_checked: usize,
    pub summary: JsonSummary,
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
    /// The document for a report: what [`render_json`] writes, read back into owned values.
    pub fn from_report(report: &Report) -> JsonOutput {
        // Both sides are this module's types with the same fields: the round trip cannot
        // fail (`tests/render.rs` compares the two).
        serde_json::to_value(document(report))
            .and_then(serde_json::from_value)
            .unwrap_or_else(|_| JsonOutput {
                version: JSON_SCHEMA_VERSION,
                files_checked: report.files.len(),
                summary: JsonSummary {
                    error: 0,
                    warning: 0,
                    hint: 0,
                    note: 0,
                },
                findings: Vec::new(),
            })
    }
}

/// Writes the report as one pretty-printed JSON document followed by a newline: the
/// document [`JsonOutput::from_report`] builds, written as it is read from the report, without
/// a copy of every finding in memory.
pub fn render_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(report))?;
    writeln!(out)
}

fn document(report: &Report) -> Document<'_> {
    Document {
        version: JSON_SCHEMA_VERSION,
        findings: Findings(report),
        files_checked: report.files.len(),
        summary: summary(report.counts()),
    }
}

fn summary(counts: Counts) -> JsonSummary {
    JsonSummary {
        error: counts.error,
        warning: counts.warning,
        hint: counts.hint,
        note: counts.note,
    }
}

/// [`JsonOutput`], borrowing from the report (same fields, same order).
#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    findings: Findings<'a>,
    files_checked: usize,
    summary: JsonSummary,
}

/// Every finding of a report, serialized one at a time.
struct Findings<'a>(&'a Report);

impl Serialize for Findings<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .files
                .iter()
                .flat_map(|file| &file.findings)
                .map(finding_ref),
        )
    }
}

fn finding_ref(f: &Finding) -> FindingRef<'_> {
    FindingRef {
        path: report_path(&f.path),
        line: f.start.line,
        column: f.start.column,
        end_line: f.end.line,
        end_column: f.end.column,
        byte_start: f.span.start,
        byte_end: f.span.end,
        rule: f.rule,
        code: f.code,
        severity: f.severity,
        message: &f.message,
        help: f.help.as_deref(),
        lock: f.lock.map(|lock| lock.sql_name()),
        tables: &f.tables,
        fix: f.fix.as_ref().map(|fix| FixRef {
            byte_start: fix.span.start,
            byte_end: fix.span.end,
            replacement: &fix.replacement,
        }),
    }
}

/// Writes the document of the files `files` hands over, as they come (see
/// [`super::render_streaming`]): the same document [`render_json`] writes of the whole report,
/// holding one file's findings at a time. Returns the counts and the number of files.
pub(crate) fn render_json_streaming(
    out: &mut dyn Write,
    files: &mut super::FileSource<'_>,
) -> io::Result<(Counts, usize)> {
    let streamed = Streamed {
        files: RefCell::new(files),
        tally: Cell::new((Counts::default(), 0)),
    };
    serde_json::to_writer_pretty(&mut *out, &streamed)?;
    writeln!(out)?;
    Ok(streamed.tally.get())
}

/// The document, its findings serialized while the files are checked; the counts, known once
/// they are, after them.
struct Streamed<'a, 'b> {
    files: RefCell<&'a mut super::FileSource<'b>>,
    tally: Cell<(Counts, usize)>,
}

impl Serialize for Streamed<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut document = serializer.serialize_struct("JsonOutput", 4)?;
        document.serialize_field("version", &JSON_SCHEMA_VERSION)?;
        document.serialize_field("findings", &StreamedFindings(self))?;
        let (counts, files) = self.tally.get();
        document.serialize_field("files_checked", &files)?;
        document.serialize_field("summary", &summary(counts))?;
        document.end()
    }
}

struct StreamedFindings<'s, 'a, 'b>(&'s Streamed<'a, 'b>);

impl Serialize for StreamedFindings<'_, '_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(None)?;
        let mut failed: Option<S::Error> = None;
        let tally = super::whole_files(&mut **self.0.files.borrow_mut(), &mut |file| {
            for f in &file.findings {
                if failed.is_none() {
                    if let Err(e) = seq.serialize_element(&finding_ref(f)) {
                        failed = Some(e);
                    }
                }
            }
        });
        self.0.tally.set(tally);
        match failed {
            Some(e) => Err(e),
            None => seq.end(),
        }
    }
}

/// [`JsonFinding`], borrowing from the finding.
#[derive(Serialize)]
struct FindingRef<'a> {
    path: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    byte_start: usize,
    byte_end: usize,
    rule: &'a str,
    code: &'a str,
    severity: Severity,
    message: &'a str,
    help: Option<&'a str>,
    lock: Option<&'static str>,
    tables: &'a [String],
    fix: Option<FixRef<'a>>,
}

/// [`JsonFix`], borrowing from the fix.
#[derive(Serialize)]
struct FixRef<'a> {
    byte_start: usize,
    byte_end: usize,
    replacement: &'a str,
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
