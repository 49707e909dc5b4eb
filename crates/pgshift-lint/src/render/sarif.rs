//! `--format sarif`: SARIF 2.1.0, the format code scanning reads (GitHub's `upload-sarif`,
//! Azure DevOps, IDE viewers).
//!
//! One run; `tool.driver.rules` lists every rule of the registry (so `ruleIndex` is the same in
//! every report and the viewer can show a rule's documentation even for rules that did not
//! fire). Columns count Unicode code points, which the run declares with `columnKind`, so they
//! agree with the other formats. URIs are relative to the directory `pgshift check` ran in
//! (the repository root in CI), with forward slashes and percent-encoding.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use pgshift_sql::LineIndex;
use serde::Serialize;
use serde_json::{json, Value};

use crate::finding::{Finding, Report, Severity};
use crate::registry;

use super::{fingerprints, report_path};

/// The JSON schema the document declares.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The SARIF version the document declares.
pub const SARIF_VERSION: &str = "2.1.0";

/// Writes the report as one SARIF 2.1.0 log, pretty-printed, followed by a newline.
pub fn render_sarif(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &sarif_log(report))?;
    writeln!(out)
}

/// What SARIF needs to know about a rule. Borrowed: the documentation of every rule is large
/// (the registry's Markdown), and copying it into a JSON value tree for every report made
/// rendering SARIF slower than checking.
struct RuleMeta {
    code: &'static str,
    name: &'static str,
    severity: Severity,
    summary: &'static str,
    documentation: &'static str,
}

/// The log, typed so that it serialises straight from borrowed data in SARIF's field order.
#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    column_kind: &'static str,
    results: Vec<Value>,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    version: &'static str,
    rules: Vec<SarifRule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRule<'a> {
    id: &'a str,
    name: &'a str,
    short_description: Text<'a>,
    full_description: Text<'a>,
    help: Help<'a>,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Text<'a> {
    text: Cow<'a, str>,
}

#[derive(Serialize)]
struct Help<'a> {
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    markdown: Option<&'a str>,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

fn sarif_log(report: &Report) -> Log<'static> {
    let rules = rule_metadata(report);
    let index: HashMap<&str, usize> = rules.iter().enumerate().map(|(i, r)| (r.code, i)).collect();
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

    let rules = rules
        .iter()
        .map(|rule| SarifRule {
            id: rule.code,
            name: rule.name,
            short_description: Text {
                text: Cow::Borrowed(rule.summary),
            },
            full_description: Text {
                text: full_description(rule),
            },
            help: help(rule),
            default_configuration: Configuration {
                level: level(rule.severity),
            },
        })
        .collect();

    Log {
        schema: SARIF_SCHEMA,
        version: SARIF_VERSION,
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "pgshift",
                    version: env!("CARGO_PKG_VERSION"),
                    rules,
                },
            },
            column_kind: "unicodeCodePoints",
            results,
        }],
    }
}

/// Every rule of the registry, then any rule a finding names that the registry does not know
/// (a report built by another version, or by hand), so every `ruleIndex` points somewhere.
fn rule_metadata(report: &Report) -> Vec<RuleMeta> {
    let mut rules: Vec<RuleMeta> = registry::RULES
        .iter()
        .map(|rule| RuleMeta {
            code: rule.code,
            name: rule.name,
            severity: rule.severity,
            summary: rule.summary,
            documentation: rule.doc,
        })
        .collect();
    for finding in report.files.iter().flat_map(|f| &f.findings) {
        if !rules.iter().any(|r| r.code == finding.code) {
            rules.push(RuleMeta {
                code: finding.code,
                name: finding.rule,
                severity: finding.severity,
                summary: finding.rule,
                documentation: "",
            });
        }
    }
    rules
}

/// SARIF's `fullDescription`: the documentation's first paragraph of prose (under
/// `## What it does` when the document has that section), else the summary.
fn full_description(rule: &RuleMeta) -> Cow<'static, str> {
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
        Cow::Borrowed(rule.summary)
    } else {
        Cow::Owned(paragraph.join(" "))
    }
}

/// The rule's documentation for viewers that render Markdown (GitHub does), and a short
/// plain-text form for the others: the whole documentation twice would double the log's size.
fn help(rule: &RuleMeta) -> Help<'static> {
    Help {
        text: format!(
            "{}\n\n`pgshift explain {}` prints the full documentation.",
            rule.summary, rule.name
        ),
        markdown: Some(rule.documentation).filter(|doc| !doc.is_empty()),
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
        Severity::Hint | Severity::Note => "note",
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
        let rule = |documentation: &'static str| RuleMeta {
            code: "PGS1",
            name: "r",
            severity: Severity::Error,
            summary: "the summary",
            documentation,
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
