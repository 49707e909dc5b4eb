//! The whole `pgshift check` pipeline on arbitrary bytes: loader → parser → rules →
//! every renderer. Any panic, and any output that breaks a format's own rules (JSON that does
//! not parse, an annotation split over two lines, colour when none was asked for), is a bug.

#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use pgshift_lint::render::{render, OutputFormat};
use pgshift_lint::{check_set, CheckOptions, Finding, Report};
use pgshift_source::{Format, MigrationSet};
use pgshift_sql::LineIndex;
use serde::de::IgnoredAny;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // stdin as `pgshift check -` reads it: dbmate, goose and node-pg-migrate markers in the text
    // split it into up and down scripts.
    let migration = pgshift_source::from_text("migrations/0001_a,b:c.sql", &text);
    // Every format wraps migrations in a transaction unless the file says otherwise; what
    // differs is whether the runner sets lock/statement timeouts (pgshift's does, the others'
    // don't), so one of each covers every context the checker can assume.
    for format in [Format::Pgshift, Format::Plain] {
        let set = MigrationSet {
            format,
            dir: PathBuf::from("migrations"),
            migrations: vec![migration.clone()],
            repeatable: Vec::new(),
            skipped: Vec::new(),
        };
        let options = CheckOptions {
            enable: vec!["all".to_string()],
            ..CheckOptions::default()
        };
        let report = check_set(&set, &options);
        for file in &report.files {
            for finding in &file.findings {
                assert_finding_fits(finding, &file.text);
            }
        }
        render_everything(&report, format == Format::Plain);
    }
});

/// A finding's span must lie in its file, on character boundaries, and agree with its line and
/// column: editors and CI place annotations by them.
fn assert_finding_fits(finding: &Finding, text: &str) {
    let span = &finding.span;
    assert!(
        span.start <= span.end && span.end <= text.len(),
        "span {span:?} outside {} bytes",
        text.len()
    );
    assert!(
        text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
        "span {span:?} splits a character"
    );
    let index = LineIndex::new(text);
    assert_eq!(
        finding.start,
        index.line_col(text, span.start),
        "start of {span:?}"
    );
    assert_eq!(
        finding.end,
        index.line_col(text, span.end),
        "end of {span:?}"
    );
}

/// Every format into memory; the human one with and without colour. The JSON formats are
/// checked for syntax without building a value tree. The SARIF log carries every rule's
/// documentation (the same ~200 KB each time) and dominates the time per input, so it is
/// rendered for one of the two contexts only (`with_sarif`).
fn render_everything(report: &Report, with_sarif: bool) {
    let findings = report.findings().count();
    for format in OutputFormat::ALL {
        if format == OutputFormat::Sarif && !with_sarif {
            continue;
        }
        let colours: &[bool] = if format == OutputFormat::Human {
            &[false, true]
        } else {
            &[false]
        };
        for &color in colours {
            let mut out = Vec::new();
            if let Err(err) = render(report, format, &mut out, color) {
                panic!("{format} failed to write into memory: {err}");
            }
            let Ok(out) = String::from_utf8(out) else {
                panic!("{format} wrote invalid UTF-8")
            };
            match format {
                OutputFormat::Json | OutputFormat::Sarif | OutputFormat::Gitlab => {
                    if let Err(err) = serde_json::from_str::<IgnoredAny>(&out) {
                        panic!("{format} output is not JSON: {err}");
                    }
                }
                OutputFormat::Github => {
                    assert_eq!(out.lines().count(), findings, "one annotation per line")
                }
                OutputFormat::Human => {
                    if !color {
                        assert!(!out.contains('\x1b'), "escape sequence in plain output");
                    }
                }
            }
        }
    }
}
