//! `--format gitlab`: GitLab's code-quality report (a JSON array, the subset of the Code
//! Climate issue format that GitLab reads), for `artifacts: reports: codequality:`.
//!
//! Severities: `error` → `blocker` (it fails the pipeline: `pgshift check` exits 1), `warning`
//! → `major`, `hint` → `minor`. The fingerprint is stable under edits elsewhere in the file (it
//! hashes the path, the rule and the statement's text, never the line), so GitLab does not show
//! a moved statement as one finding fixed and another introduced.

use std::io::{self, Write};

use serde::Serialize;

use crate::finding::{Report, Severity};

use super::{fingerprints, report_path};

#[derive(Serialize)]
struct Issue<'a> {
    description: String,
    check_name: &'static str,
    fingerprint: &'a str,
    severity: &'static str,
    location: Location,
}

#[derive(Serialize)]
struct Location {
    path: String,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: usize,
    end: usize,
}

/// The GitLab code-quality severity of a pgshift severity.
pub fn gitlab_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "blocker",
        Severity::Warning => "major",
        Severity::Hint => "minor",
        Severity::Note => "info",
    }
}

/// Writes the report as a pretty-printed JSON array followed by a newline (`[]` when clean:
/// GitLab then shows the merge request as having no code-quality issues).
pub fn render_gitlab(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let fingerprints = fingerprints(report);
    let issues: Vec<Issue<'_>> = report
        .files
        .iter()
        .zip(&fingerprints)
        .flat_map(|(file, prints)| file.findings.iter().zip(prints))
        .map(|(finding, fingerprint)| Issue {
            description: format!("{} [{} {}]", finding.message, finding.code, finding.rule),
            check_name: finding.rule,
            fingerprint,
            severity: gitlab_severity(finding.severity),
            location: Location {
                path: report_path(&finding.path),
                lines: Lines {
                    begin: finding.start.line.max(1),
                    end: finding.end.line.max(finding.start.line).max(1),
                },
            },
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &issues)?;
    writeln!(out)
}
