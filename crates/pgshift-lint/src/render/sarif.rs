//! `--format sarif`: SARIF 2.1.0, the format code scanning reads (GitHub's `upload-sarif`,
//! Azure DevOps, IDE viewers).
//!
//! One run; `tool.driver.rules` lists every rule of the registry (so `ruleIndex` is the same in
//! every report and the viewer can show a rule's documentation even for rules that did not
//! fire). Columns count Unicode code points, which the run declares with `columnKind`, so they
//! agree with the other formats. URIs are relative to the directory `pgshift check` ran in
//! (the repository root in CI), with forward slashes and percent-encoding.

use std::collections::HashMap;
use std::io::{self, Write};

use pgshift_sql::LineIndex;
use serde_json::{json, Value};

use crate::finding::{Finding, Report, Severity};
use crate::registry;

use super::{fingerprints, report_path};

/// The JSON schema the document declares.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The SARIF version the document declares.
pub const SARIF_VERSION: &str = "2.1.0";
/// Where code-scanning viewers send a user who wants to know what pgshift is.
const INFORMATION_URI: &str = "https://github.com/pgshift/pgshift";

/// Writes the report as one SARIF 2.1.0 log, pretty-printed, followed by a newline.
pub fn render_sarif(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &sarif_log(report))?;
    writeln!(out)
}

/// What SARIF needs to know about a rule.
struct RuleMeta {
    code: String,
    name: String,
    severity: Severity,
    summary: String,
    documentation: String,
}

fn sarif_log(report: &Report) -> Value {
    let rules = rule_metadata(report);
    let index: HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.code.as_str(), i))
        .collect();
    let fingerprints = fingerprints(report);

    let mut results = Vec::new();
    for (file, prints) in report.files.iter().zip(&fingerprints) {
        let lines = LineIndex::new(&file.text);
        for (finding, print) in file.findings.iter().zip(prints) {
            let uri = uri(&report_path(&finding.path));
            let mut result = json!({
                "ruleId": finding.code,
                "ruleIndex": index.get(finding.code).copied().unwrap_or(0),
                "level": level(finding.severity),
                "message": { "text": message_text(finding) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri },
                        "region": {
                            "startLine": finding.start.line.max(1),
                            "startColumn": finding.start.column.max(1),
                            "endLine": finding.end.line.max(finding.start.line).max(1),
                            "endColumn": end_column(finding),
                        }
                    }
                }],
                "partialFingerprints": { "pgshift/v1": print },
            });
            if let Some(fix) = &finding.fix {
                let start = lines.line_col(&file.text, fix.span.start);
                let end = lines.line_col(&file.text, fix.span.end.max(fix.span.start));
                result["fixes"] = json!([{
                    "description": { "text": format!("Apply pgshift's safe replacement for {}", finding.rule) },
                    "artifactChanges": [{
                        "artifactLocation": { "uri": uri },
                        "replacements": [{
                            "deletedRegion": {
                                "startLine": start.line,
                                "startColumn": start.column,
                                "endLine": end.line,
                                "endColumn": end.column,
                            },
                            "insertedContent": { "text": fix.replacement },
                        }]
                    }]
                }]);
            }
            results.push(result);
        }
    }

    let rules: Vec<Value> = rules
        .iter()
        .map(|rule| {
            json!({
                "id": rule.code,
                "name": rule.name,
                "shortDescription": { "text": rule.summary },
                "fullDescription": { "text": full_description(rule) },
                "help": help(rule),
                "defaultConfiguration": { "level": level(rule.severity) },
            })
        })
        .collect();

    json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {
                "driver": {
                    "name": "pgshift",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": INFORMATION_URI,
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// Every rule of the registry, then any rule a finding names that the registry does not know
/// (a report built by another version, or by hand), so every `ruleIndex` points somewhere.
fn rule_metadata(report: &Report) -> Vec<RuleMeta> {
    let mut rules: Vec<RuleMeta> = registry::RULES
        .iter()
        .map(|rule| RuleMeta {
            code: rule.code.to_string(),
            name: rule.name.to_string(),
            severity: rule.severity,
            summary: rule.summary.to_string(),
            documentation: rule.doc.to_string(),
        })
        .collect();
    for finding in report.files.iter().flat_map(|f| &f.findings) {
        if !rules.iter().any(|r| r.code == finding.code) {
            rules.push(RuleMeta {
                code: finding.code.to_string(),
                name: finding.rule.to_string(),
                severity: finding.severity,
                summary: finding.rule.to_string(),
                documentation: String::new(),
            });
        }
    }
    rules
}

/// SARIF's `fullDescription`: the documentation's first paragraph of prose (under
/// `## What it does` when the document has that section), else the summary.
fn full_description(rule: &RuleMeta) -> String {
    let lines: Vec<&str> = rule.documentation.lines().collect();
    let section = lines
        .iter()
        .position(|l| l.trim().eq_ignore_ascii_case("## what it does"))
        .map_or(0, |i| i + 1);
    let paragraph: Vec<&str> = lines[section..]
        .iter()
        .skip_while(|l| l.trim().is_empty() || l.starts_with('#'))
        .take_while(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.trim())
        .collect();
    if paragraph.is_empty() {
        rule.summary.clone()
    } else {
        paragraph.join(" ")
    }
}

/// The rule's documentation for viewers that render Markdown (GitHub does), and a short
/// plain-text form for the others: the whole documentation twice would double the log's size.
fn help(rule: &RuleMeta) -> Value {
    let text = format!(
        "{}\n\n`pgshift explain {}` prints the full documentation.",
        rule.summary, rule.name
    );
    if rule.documentation.is_empty() {
        json!({ "text": text })
    } else {
        json!({ "text": text, "markdown": rule.documentation })
    }
}

/// The result's message: the finding's message, then its help (the safe replacement), which
/// code-scanning UIs show under the alert.
fn message_text(finding: &Finding) -> String {
    match finding.help.as_deref().filter(|h| !h.trim().is_empty()) {
        Some(help) => format!("{}\n\n{}", finding.message, help.trim_end()),
        None => finding.message.clone(),
    }
}

/// SARIF regions must not end before they start; an empty span still covers one column.
fn end_column(finding: &Finding) -> usize {
    if finding.end.line > finding.start.line {
        finding.end.column.max(1)
    } else {
        finding.end.column.max(finding.start.column.max(1) + 1)
    }
}

/// `error` → `error`, `warning` → `warning`, `hint` → `note`.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Hint => "note",
    }
}

/// A relative URI reference for a path: everything but unreserved characters and `/` is
/// percent-encoded. (A `:` left as is in the first segment would make `a:b.sql` read as a URI
/// with scheme `a`.) Absolute paths become `file://` URIs.
fn uri(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                encoded.push(char::from(byte))
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    if path.starts_with('/') {
        format!("file://{encoded}")
    } else {
        encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_percent_encoded_relative_references() {
        assert_eq!(
            uri("migrations/0001_init.up.sql"),
            "migrations/0001_init.up.sql"
        );
        assert_eq!(uri("a,b:c d.sql"), "a%2Cb%3Ac%20d.sql");
        assert_eq!(uri("é.sql"), "%C3%A9.sql");
        assert_eq!(uri("/abs/x.sql"), "file:///abs/x.sql");
    }

    #[test]
    fn full_description_is_what_the_rule_does() {
        let rule = |documentation: &str| RuleMeta {
            code: "PGS1".into(),
            name: "r".into(),
            severity: Severity::Error,
            summary: "the summary".into(),
            documentation: documentation.into(),
        };
        let doc = "# r (PGS1)\n\nDefault severity: **error**.\n\n## What it does\n\nFinds this\nand that.\n\n## Why\n\nBecause.";
        assert_eq!(full_description(&rule(doc)), "Finds this and that.");
        assert_eq!(
            full_description(&rule("# r\n\nFirst paragraph.\n")),
            "First paragraph."
        );
        assert_eq!(full_description(&rule("")), "the summary");
    }

    #[test]
    fn every_registry_rule_is_described() {
        let rules = rule_metadata(&Report::default());
        assert_eq!(rules.len(), registry::RULES.len());
        for rule in &rules {
            assert!(!full_description(rule).is_empty(), "{}", rule.code);
            assert!(!rule.summary.is_empty(), "{}", rule.code);
        }
    }

    #[test]
    fn hints_are_notes() {
        assert_eq!(level(Severity::Hint), "note");
        assert_eq!(level(Severity::Error), "error");
    }
}
