//! The renderers on real findings: every file of the fuzz seed corpus (`fuzz/corpus_seed/`)
//! goes through the loader, the checker and every output format, and each output must keep
//! its format's promises. The same checks run under `cargo fuzz` on generated inputs; this
//! keeps them in the ordinary test suite.

use std::path::{Path, PathBuf};

use pgshift_lint::render::{render, JsonOutput, OutputFormat};
use pgshift_lint::{check_set, CheckOptions, Report};
use pgshift_source::{Format, MigrationSet};
use serde_json::Value;

fn seeds() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus_seed/check_pipeline");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) => panic!("cannot read {}: {err}", dir.display()),
    };
    let mut seeds: Vec<(PathBuf, String)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| {
            std::fs::read(&p)
                .ok()
                .map(|b| (p, String::from_utf8_lossy(&b).into_owned()))
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 12, "the seed corpus has a dozen migrations");
    seeds
}

fn checked(name: &str, text: &str) -> Report {
    let set = MigrationSet {
        format: Format::Plain,
        dir: PathBuf::from("migrations"),
        migrations: vec![pgshift_source::from_text(name, text)],
        repeatable: Vec::new(),
        skipped: Vec::new(),
    };
    check_set(
        &set,
        &CheckOptions {
            enable: vec!["all".into()],
            ..CheckOptions::default()
        },
    )
}

fn rendered(report: &Report, format: OutputFormat, color: bool) -> String {
    let mut out = Vec::new();
    if let Err(err) = render(report, format, &mut out, color) {
        panic!("{format}: {err}");
    }
    match String::from_utf8(out) {
        Ok(text) => text,
        Err(err) => panic!("{format} wrote invalid UTF-8: {err}"),
    }
}

#[test]
fn every_seed_renders_in_every_format_and_keeps_each_formats_promises() {
    let mut total = 0;
    for (path, text) in seeds() {
        let name = format!(
            "migrations/{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        let report = checked(&name, &text);
        let findings: Vec<_> = report.findings().collect();
        total += findings.len();

        let human = rendered(&report, OutputFormat::Human, false);
        assert!(
            !human.contains('\x1b'),
            "{name}: escape sequence without colour"
        );
        for finding in &findings {
            let location = format!("--> {name}:{}:{}", finding.start.line, finding.start.column);
            assert!(
                human.contains(&location),
                "{name}: human output lacks {location}\n{human}"
            );
        }
        let coloured = rendered(&report, OutputFormat::Human, true);
        assert!(
            coloured.contains("\x1b[1m"),
            "{name}: colour when asked for"
        );

        let json: JsonOutput =
            match serde_json::from_str(&rendered(&report, OutputFormat::Json, false)) {
                Ok(json) => json,
                Err(err) => panic!("{name}: JSON does not read back: {err}"),
            };
        assert_eq!(json, JsonOutput::from_report(&report));
        for finding in &json.findings {
            assert!(
                finding.byte_start <= finding.byte_end && finding.byte_end <= text.len(),
                "{name}: {finding:?}"
            );
            assert!(
                (finding.line, finding.column) <= (finding.end_line, finding.end_column),
                "{name}: {finding:?}"
            );
        }

        let github = rendered(&report, OutputFormat::Github, false);
        assert_eq!(
            github.lines().count(),
            findings.len(),
            "{name}: one annotation per line\n{github}"
        );

        for format in [OutputFormat::Sarif, OutputFormat::Gitlab] {
            let text = rendered(&report, format, false);
            if let Err(err) = serde_json::from_str::<Value>(&text) {
                panic!("{name}: {format} output is not JSON: {err}");
            }
        }
    }
    assert!(total > 0, "the seed corpus produces findings to render");
}
