//! Every output format of `pgshift check`, against hand-written reports.
//!
//! The expected outputs live in `tests/render/` and are reviewed by eye: they are what users
//! and CI systems will read. `UPDATE_SNAPSHOTS=1 cargo test -p pgshift-lint --test render`
//! rewrites them after an intended change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgshift_lint::render::{
    render, render_github, render_gitlab, render_human, render_json, render_sarif,
    render_streaming, JsonOutput, OutputFormat, SARIF_SCHEMA,
};
use pgshift_lint::{CheckedFile, Finding, Fix, LockLevel, Report, Severity};
use pgshift_sql::LineIndex;
use serde_json::Value;

const INDEX_FILE: &str = "-- add an index on email\nSET lock_timeout = '1s';\nCREATE INDEX users_email_idx ON users (email);\n";

/// A multi-line statement with a tab, non-ASCII identifiers and CRLF line endings, in a file
/// whose name has a comma and a colon (both delimiters in GitHub's annotation syntax).
const ALTER_FILE: &str = "ALTER TABLE \"ユーザー\"\r\n\tADD COLUMN note text,\r\n\tALTER COLUMN \"名前\" SET NOT NULL;\r\nSELECT 'café';\r\n";

const BROKEN_FILE: &str = "ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT;\n";

fn finding(path: &str, text: &str, span: std::ops::Range<usize>) -> Finding {
    let index = LineIndex::new(text);
    Finding {
        rule: "",
        code: "",
        severity: Severity::Error,
        path: PathBuf::from(path),
        start: index.line_col(text, span.start),
        end: index.line_col(text, span.end),
        span,
        message: String::new(),
        help: None,
        lock: None,
        tables: Vec::new(),
        fix: None,
    }
}

fn span_of(text: &str, needle: &str) -> std::ops::Range<usize> {
    let start = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the fixture"));
    start..start + needle.len()
}

fn report() -> Report {
    let index_path = "./migrations/0002_idx.up.sql";
    let create = span_of(INDEX_FILE, "CREATE INDEX users_email_idx ON users (email)");
    let index_finding = Finding {
        rule: "require-concurrent-index",
        code: "PGS101",
        severity: Severity::Error,
        message: "CREATE INDEX on \"users\" blocks writes while the index builds".into(),
        help: Some(
            "build the index without blocking writes, outside a transaction:\n\n\
             -- pgshift:no-transaction\n\
             CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"
                .into(),
        ),
        lock: Some(LockLevel::Share),
        tables: vec!["users".into()],
        fix: Some(Fix {
            span: create.clone(),
            replacement: "CREATE INDEX CONCURRENTLY users_email_idx ON users (email)".into(),
        }),
        ..finding(index_path, INDEX_FILE, create)
    };

    let alter_path = "migrations/0003_a,b:c.sql";
    let alter = span_of(ALTER_FILE, "ALTER TABLE \"ユーザー\"\r\n\tADD COLUMN note text,\r\n\tALTER COLUMN \"名前\" SET NOT NULL");
    let set_not_null = Finding {
        rule: "set-not-null",
        code: "PGS203",
        severity: Severity::Warning,
        message:
            "SET NOT NULL scans \"ユーザー\" under an ACCESS EXCLUSIVE lock, 50% of the time: long"
                .into(),
        help: Some(
            "add a CHECK (\"名前\" IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL".into(),
        ),
        lock: Some(LockLevel::AccessExclusive),
        tables: vec!["ユーザー".into(), "public.audit".into()],
        ..finding(alter_path, ALTER_FILE, alter)
    };
    let literal = Finding {
        rule: "opaque-statement",
        code: "PGS605",
        severity: Severity::Hint,
        message: "pgshift cannot tell what this statement locks".into(),
        ..finding(alter_path, ALTER_FILE, span_of(ALTER_FILE, "'café'"))
    };

    let broken_offset = BROKEN_FILE.find(';').unwrap_or(0);
    let syntax = Finding {
        rule: "syntax-error",
        code: "PGS901",
        severity: Severity::Error,
        message: "syntax error at or near \";\"".into(),
        ..finding("stdin", BROKEN_FILE, broken_offset..broken_offset)
    };

    Report {
        files: vec![
            CheckedFile {
                path: index_path.into(),
                text: Arc::from(INDEX_FILE),
                findings: vec![index_finding],
            },
            CheckedFile {
                path: alter_path.into(),
                text: Arc::from(ALTER_FILE),
                findings: vec![set_not_null, literal],
            },
            CheckedFile {
                path: "stdin".into(),
                text: Arc::from(BROKEN_FILE),
                findings: vec![syntax],
            },
            CheckedFile {
                path: "migrations/0001_init.up.sql".into(),
                text: Arc::from("CREATE TABLE users (id int);\n"),
                findings: vec![],
            },
        ],
    }
}

fn rendered(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    if let Err(err) = f(&mut out) {
        panic!("rendering into memory failed: {err}");
    }
    match String::from_utf8(out) {
        Ok(text) => text,
        Err(err) => panic!("renderer wrote invalid UTF-8: {err}"),
    }
}

/// Compares `actual` with `tests/render/<name>`; `UPDATE_SNAPSHOTS=1` rewrites the file.
fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/render")
        .join(name);
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let expected = std::fs::read_to_string(&path).ok();
    if update || expected.is_none() {
        if let Err(err) = std::fs::write(&path, actual) {
            panic!("cannot write snapshot {}: {err}", path.display());
        }
        if expected.is_none() && !update {
            panic!(
                "{} did not exist and was written: review it and run the tests again",
                path.display()
            );
        }
        return;
    }
    let expected = expected.unwrap_or_default();
    if expected != actual {
        panic!(
            "{} differs from the output.\n--- expected\n{expected}\n--- actual\n{actual}\n\
             (rerun with UPDATE_SNAPSHOTS=1 if the change is intended)",
            path.display()
        );
    }
}

fn parse_json(text: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => panic!("output is not JSON: {err}\n{text}"),
    }
}

#[test]
fn human_output_matches_snapshot() {
    let report = report();
    assert_snapshot(
        "human.txt",
        &rendered(|out| render_human(&report, out, false)),
    );
}

#[test]
fn human_output_in_colour_matches_snapshot_and_plain_has_no_escapes() {
    let report = report();
    let plain = rendered(|out| render_human(&report, out, false));
    assert!(
        !plain.contains('\x1b'),
        "colour must be off unless asked for"
    );
    let coloured = rendered(|out| render_human(&report, out, true));
    assert!(coloured.contains("\x1b[1;31merror[PGS101 require-concurrent-index]\x1b[0m"));
    assert_snapshot("human_color.txt", &coloured);
}

#[test]
fn human_summary_counts_every_severity_and_file() {
    let report = report();
    let text = rendered(|out| render_human(&report, out, false));
    assert!(
        text.ends_with("2 errors, 1 warning, 1 hint in 4 files\n"),
        "{text}"
    );
    let empty = rendered(|out| render_human(&Report::default(), out, false));
    assert_eq!(empty, "0 errors, 0 warnings, 0 hints in 0 files\n");
}

/// `check` writes human and JSON output as the files are checked: what it writes is what the
/// whole report renders to, in every format, also when a file's two scripts (a dbmate file's up
/// and down) come one after the other, and for no file at all. The counts returned are the
/// report's.
#[test]
fn streamed_output_is_the_whole_reports() {
    let whole = report();
    // Each file handed over as a checker gives it: a file with findings split in two, as its
    // up and down scripts are checked one after the other.
    let pieces: Vec<CheckedFile> = whole
        .files
        .iter()
        .flat_map(|file| {
            let (first, second) = file.findings.split_at(file.findings.len() / 2);
            let piece = |findings: &[Finding]| CheckedFile {
                findings: findings.to_vec(),
                ..file.clone()
            };
            if file.findings.len() > 1 {
                vec![piece(second), piece(first)]
            } else {
                vec![piece(&file.findings)]
            }
        })
        .collect();
    assert!(
        pieces.len() > whole.files.len(),
        "a file comes in two pieces"
    );
    for format in [
        OutputFormat::Human,
        OutputFormat::Json,
        OutputFormat::Sarif,
        OutputFormat::Github,
        OutputFormat::Gitlab,
    ] {
        for (files, report) in [
            (pieces.clone(), whole.clone()),
            (Vec::new(), Report::default()),
        ] {
            let expected = rendered(|out| render(&report, format, out, false));
            let mut counts = None;
            let streamed = rendered(|out| {
                let mut source = |each: &mut dyn FnMut(CheckedFile)| {
                    for file in files.clone() {
                        each(file);
                    }
                };
                counts = Some(render_streaming(format, out, false, &mut source)?);
                Ok(())
            });
            assert_eq!(streamed, expected, "{format:?}");
            assert_eq!(counts, Some(report.counts()), "{format:?}");
        }
    }
}

#[test]
fn json_output_matches_snapshot_and_round_trips() {
    let report = report();
    let text = rendered(|out| render_json(&report, out));
    assert_snapshot("json.json", &text);

    let parsed: JsonOutput = match serde_json::from_str(&text) {
        Ok(parsed) => parsed,
        Err(err) => panic!("JSON output does not read back into JsonOutput: {err}"),
    };
    assert_eq!(parsed, JsonOutput::from_report(&report));
    assert_eq!(parsed.version, 1);
    assert_eq!(parsed.files_checked, 4);
    assert_eq!(
        (
            parsed.summary.error,
            parsed.summary.warning,
            parsed.summary.hint
        ),
        (2, 1, 1)
    );
    let originals: Vec<&Finding> = report.findings().collect();
    assert_eq!(parsed.findings.len(), originals.len());
    for (json, original) in parsed.findings.iter().zip(originals) {
        assert_eq!(json.code, original.code);
        assert_eq!(
            (json.line, json.column),
            (original.start.line, original.start.column)
        );
        assert_eq!(
            (json.end_line, json.end_column),
            (original.end.line, original.end.column)
        );
        assert_eq!(json.byte_start..json.byte_end, original.span);
        assert_eq!(json.severity, original.severity);
        assert_eq!(json.message, original.message);
        assert_eq!(json.lock.as_deref(), original.lock.map(LockLevel::sql_name));
    }
    assert_eq!(
        parsed.findings[0].path, "migrations/0002_idx.up.sql",
        "no ./ prefix"
    );
}

#[test]
fn json_documents_every_field_it_writes() {
    let text = rendered(|out| render_json(&report(), out));
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/output-formats.md"),
    )
    .unwrap_or_default();
    let value = parse_json(&text);
    let mut fields: Vec<String> = Vec::new();
    if let Some(object) = value.as_object() {
        fields.extend(object.keys().cloned());
    }
    for finding in value["findings"].as_array().into_iter().flatten() {
        fields.extend(
            finding
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys().cloned()),
        );
        if let Some(fix) = finding["fix"].as_object() {
            fields.extend(fix.keys().cloned());
        }
    }
    for field in fields {
        assert!(
            doc.contains(&format!("`{field}`")),
            "docs/output-formats.md does not document `{field}`"
        );
    }
}

#[test]
fn sarif_has_every_required_field() {
    let report = report();
    let sarif = parse_json(&rendered(|out| render_sarif(&report, out)));
    assert_eq!(sarif["$schema"], SARIF_SCHEMA);
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "pgshift");
    // No informationUri until the project has a public home (the field is optional).
    assert!(driver.get("informationUri").is_none());
    let rules = driver["rules"].as_array().cloned().unwrap_or_default();
    for rule in &rules {
        for key in [
            "id",
            "name",
            "shortDescription",
            "fullDescription",
            "help",
            "defaultConfiguration",
        ] {
            assert!(rule.get(key).is_some(), "rule {} lacks {key}", rule["id"]);
        }
        assert!(rule["shortDescription"]["text"].is_string());
        assert!(rule["fullDescription"]["text"].is_string());
        assert!(["error", "warning", "note"]
            .contains(&rule["defaultConfiguration"]["level"].as_str().unwrap_or("")));
    }

    assert!(rules.len() >= pgshift_lint::RULES.len());
    for (rule, registered) in rules.iter().zip(pgshift_lint::RULES) {
        assert_eq!(rule["id"], registered.code);
        assert_eq!(rule["name"], registered.name);
        assert_eq!(
            rule["help"]["markdown"], registered.doc,
            "the same text as `pgshift explain`"
        );
    }

    let results = run["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 4);
    for result in &results {
        let index = result["ruleIndex"].as_u64().unwrap_or(u64::MAX) as usize;
        assert_eq!(
            rules.get(index).map(|r| &r["id"]),
            Some(&result["ruleId"]),
            "ruleIndex points at its rule"
        );
        assert!(result["message"]["text"].is_string());
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap_or("");
        assert!(
            !uri.contains('\\') && !uri.starts_with("./") && !uri.contains(':'),
            "{uri}"
        );
        let region = &location["region"];
        for key in ["startLine", "startColumn", "endLine", "endColumn"] {
            assert!(
                region[key].as_u64().is_some_and(|n| n >= 1),
                "{key} in {region}"
            );
        }
        let (start, end) = (
            (region["startLine"].as_u64(), region["startColumn"].as_u64()),
            (region["endLine"].as_u64(), region["endColumn"].as_u64()),
        );
        assert!(end > start, "a region ends after it starts: {region}");
    }
    let levels: Vec<&str> = results.iter().filter_map(|r| r["level"].as_str()).collect();
    assert_eq!(levels, ["error", "warning", "note", "error"]);
    assert_eq!(
        results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "migrations/0003_a%2Cb%3Ac.sql"
    );
    let fix = &results[0]["fixes"][0]["artifactChanges"][0]["replacements"][0];
    assert_eq!(
        fix["insertedContent"]["text"],
        "CREATE INDEX CONCURRENTLY users_email_idx ON users (email)"
    );
    assert_eq!(fix["deletedRegion"]["startLine"], 3);
    assert!(results[1].get("fixes").is_none(), "no fixes without a fix");
}

#[test]
fn sarif_results_match_snapshot() {
    let report = report();
    let mut sarif = parse_json(&rendered(|out| render_sarif(&report, out)));
    // The rules list and so each `ruleIndex` follow the registry (a new rule shifts them); they
    // are checked field by field above. The rest of each result is what this renderer decides.
    for result in sarif["runs"][0]["results"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if let Some(result) = result.as_object_mut() {
            result.remove("ruleIndex");
        }
    }
    let results = match serde_json::to_string_pretty(&sarif["runs"][0]["results"]) {
        Ok(text) => text + "\n",
        Err(err) => panic!("{err}"),
    };
    assert_snapshot("sarif_results.json", &results);
}

#[test]
fn github_output_matches_snapshot() {
    let report = report();
    let text = rendered(|out| render_github(&report, out));
    assert_snapshot("github.txt", &text);
    for line in text.lines() {
        assert!(
            line.starts_with("::error ")
                || line.starts_with("::warning ")
                || line.starts_with("::notice ")
        );
    }
    assert_eq!(
        text.lines().count(),
        4,
        "one line per finding: newlines in messages are escaped"
    );
    assert!(text.contains("file=migrations/0003_a%2Cb%3Ac.sql,line=1,col=1,endLine=3,endColumn=32"));
    assert!(text.contains("50%25 of the time"));
}

#[test]
fn gitlab_output_matches_snapshot_with_stable_fingerprints() {
    let report = report();
    let text = rendered(|out| render_gitlab(&report, out));
    assert_snapshot("gitlab.json", &text);
    let issues = parse_json(&text);
    let issues = issues.as_array().cloned().unwrap_or_default();
    assert_eq!(issues.len(), 4);
    let severities: Vec<&str> = issues
        .iter()
        .filter_map(|i| i["severity"].as_str())
        .collect();
    assert_eq!(severities, ["blocker", "major", "minor", "blocker"]);
    assert_eq!(issues[1]["location"]["lines"]["begin"], 1);
    assert_eq!(issues[1]["location"]["lines"]["end"], 3);

    // Moving the statement down two lines and re-indenting it keeps its fingerprint.
    let moved_text = format!(
        "-- a header\n\n{}",
        INDEX_FILE.replace("ON users", "ON\n   users")
    );
    let create = span_of(
        &moved_text,
        "CREATE INDEX users_email_idx ON\n   users (email)",
    );
    let moved_finding = Finding {
        rule: "require-concurrent-index",
        code: "PGS101",
        ..finding("migrations/0002_idx.up.sql", &moved_text, create)
    };
    let moved = Report {
        files: vec![CheckedFile {
            path: "migrations/0002_idx.up.sql".into(),
            text: Arc::from(moved_text.as_str()),
            findings: vec![moved_finding.clone()],
        }],
    };
    let moved_issues = parse_json(&rendered(|out| render_gitlab(&moved, out)));
    assert_eq!(moved_issues[0]["fingerprint"], issues[0]["fingerprint"]);
    assert_eq!(moved_issues[0]["location"]["lines"]["begin"], 5);

    // The same statement twice in one file: two different fingerprints.
    let twice = Report {
        files: vec![CheckedFile {
            path: "migrations/0002_idx.up.sql".into(),
            text: Arc::from(moved_text.as_str()),
            findings: vec![moved_finding.clone(), moved_finding],
        }],
    };
    let twice = parse_json(&rendered(|out| render_gitlab(&twice, out)));
    assert_ne!(twice[0]["fingerprint"], twice[1]["fingerprint"]);
    assert_eq!(
        parse_json(&rendered(|out| render_gitlab(&Report::default(), out))),
        Value::Array(vec![])
    );
}

#[test]
fn render_dispatches_on_format() {
    let report = report();
    for format in OutputFormat::ALL {
        let text = rendered(|out| render(&report, format, out, false));
        assert!(!text.is_empty(), "{format} wrote nothing");
    }
    let github = rendered(|out| render(&report, OutputFormat::Github, out, false));
    assert_eq!(github, rendered(|out| render_github(&report, out)));
}

#[test]
fn findings_whose_spans_do_not_fit_the_text_render_without_panicking() {
    let mut report = report();
    for file in &mut report.files {
        for finding in &mut file.findings {
            // Reversed and out of bounds: what a buggy rule could produce.
            #[allow(clippy::reversed_empty_ranges)]
            {
                finding.span = 10_000..5;
            }
            finding.start.line = 999;
            finding.end.line = 0;
            if let Some(fix) = &mut finding.fix {
                fix.span = 7..100_000;
            }
        }
        file.text = Arc::from("é");
    }
    for format in OutputFormat::ALL {
        rendered(|out| render(&report, format, out, true));
    }
}

/// A finding at the end of a 200,000-character line (a minified dump, a hostile file) prints a
/// clipped window around the carets, not the whole line.
#[test]
fn a_long_source_line_is_clipped_around_the_finding() {
    let filler = format!("SELECT '{}'; ", "x".repeat(200_000));
    let text = format!("{filler}CREATE INDEX i ON t (a);\n");
    let span = span_of(&text, "CREATE INDEX i ON t (a)");
    let report = Report {
        files: vec![CheckedFile {
            path: PathBuf::from("m/1_long.sql"),
            text: Arc::from(text.as_str()),
            findings: vec![Finding {
                message: "CREATE INDEX blocks writes".into(),
                ..finding("m/1_long.sql", &text, span)
            }],
        }],
    };
    let out = rendered(|o| render_human(&report, o, false));
    assert!(out.len() < 2_000, "{} bytes printed", out.len());
    let line = out
        .lines()
        .find(|l| l.contains("CREATE INDEX i ON t (a)"))
        .unwrap_or_else(|| panic!("the statement is shown:\n{out}"));
    assert!(line.contains('…'), "the cut is marked: {line}");
    // The carets still sit under the statement.
    let lines: Vec<&str> = out.lines().collect();
    let at = lines.iter().position(|l| *l == line).unwrap_or(0);
    let carets = lines[at + 1];
    let columns = |l: &str, at: usize| l[..at].chars().count();
    let column = line.find("CREATE").map(|at| columns(line, at));
    let caret = carets.find('^').map(|at| columns(carets, at));
    assert_eq!(caret, column, "{line}\n{carets}");
}

/// A password on the line a finding shows is hidden in the human report.
#[test]
fn a_password_on_a_shown_line_is_hidden() {
    let text = "CREATE ROLE app LOGIN PASSWORD 'S3cr3t-pw'; CREATE INDEX i ON t (a);\n";
    let span = span_of(text, "CREATE INDEX i ON t (a)");
    let report = Report {
        files: vec![CheckedFile {
            path: PathBuf::from("m/1_role.sql"),
            text: Arc::from(text),
            findings: vec![finding("m/1_role.sql", text, span)],
        }],
    };
    let out = rendered(|o| render_human(&report, o, false));
    assert!(!out.contains("S3cr3t"), "{out}");
    assert!(out.contains("PASSWORD '***'"), "{out}");
}

/// A file name holding an escape sequence or a newline cannot drive the terminal or forge a
/// workflow command in any text format.
#[test]
fn control_characters_in_file_names_are_escaped_in_every_text_format() {
    let path = "m/1_\x1b[31mred\n::error::forged.sql";
    let text = "CREATE INDEX i ON t (a);\n";
    let report = Report {
        files: vec![CheckedFile {
            path: PathBuf::from(path),
            text: Arc::from(text),
            findings: vec![finding(path, text, 0..text.len() - 2)],
        }],
    };
    for format in [OutputFormat::Human, OutputFormat::Github] {
        let out = rendered(|o| render(&report, format, o, false));
        assert!(!out.contains('\x1b'), "{format:?}: {out:?}");
        assert!(
            !out.lines().any(|l| l.starts_with("::error::forged")),
            "{format:?}: {out}"
        );
    }
}
