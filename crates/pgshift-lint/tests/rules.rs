//! Every rule's fixture (`tests/fixtures/<rule>.sql`: bad and good cases) checked against its
//! snapshot (`tests/fixtures/<rule>.snap`: one line per finding of that rule,
//! `line:col code rule severity message`). `UPDATE_SNAPSHOTS=1 cargo test -p pgshift-lint`
//! rewrites the snapshots; review the diff, it is the specification.
//!
//! A fixture is one migration, or several: a line `-- fixture: next migration` starts the next
//! one, checked with what the earlier ones established (their tables exist and are no longer
//! new; their column types and functions are known; a new migration is a new session). The
//! first line may set options for every migration, a `next migration` line for its own:
//! `-- fixture: wrapped=false pg_version=14.2 runner_sets_timeouts=false` and
//! `-- fixture: next migration format=golang-migrate` (the runner's transaction model is that
//! format's).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgshift_lint::{
    breaking_changes, check_in, check_in_as, statement_effects, BreakingKind, CheckOptions,
    Context, Direction, Effect, Finding, LockLevel, PgVersion, RULES,
};
use pgshift_source::{Format, Script};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The options of one migration of a fixture.
#[derive(Clone)]
struct FixtureOptions {
    check: CheckOptions,
    wrapped: bool,
    format: Option<Format>,
}

/// The options the first line sets for every migration.
fn options_for(text: &str) -> FixtureOptions {
    let defaults = FixtureOptions {
        check: CheckOptions {
            pg_version: PgVersion::new(15, 0),
            runner_sets_timeouts: Some(true),
            enable: vec!["all".into()],
            ..CheckOptions::default()
        },
        wrapped: true,
        format: None,
    };
    match text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("-- fixture:"))
    {
        Some(header) if !header.trim_start().starts_with("next migration") => {
            with_options(defaults, header)
        }
        _ => defaults,
    }
}

/// `o` with the `name=value` pairs of `pairs`.
fn with_options(mut o: FixtureOptions, pairs: &str) -> FixtureOptions {
    for pair in pairs.split_whitespace() {
        match pair.split_once('=') {
            Some(("wrapped", v)) => o.wrapped = v == "true",
            Some(("pg_version", v)) => o.check.pg_version = v.parse().unwrap_or(o.check.pg_version),
            Some(("runner_sets_timeouts", v)) => o.check.runner_sets_timeouts = Some(v == "true"),
            Some(("format", v)) => {
                o.format = Some(v.parse().unwrap_or_else(|e| panic!("fixture format: {e}")))
            }
            _ => panic!("unknown fixture option {pair}"),
        }
    }
    o
}

const NEXT_MIGRATION: &str = "-- fixture: next migration";

/// The migrations of a fixture: the byte ranges between `-- fixture: next migration` lines,
/// each with its options.
fn migrations_of(text: &str) -> Vec<(std::ops::Range<usize>, FixtureOptions)> {
    let first = options_for(text);
    let mut out = Vec::new();
    let (mut start, mut options) = (0, first.clone());
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some(pairs) = line.trim_end().strip_prefix(NEXT_MIGRATION) {
            out.push((start..at, options));
            start = at + line.len();
            options = with_options(first.clone(), pairs);
        }
        at += line.len();
    }
    out.push((start..text.len(), options));
    out
}

/// The context a fixture's migrations share, as `check_set` keeps one for a whole set.
fn context_for(text: &str) -> Context {
    let o = options_for(text);
    Context::new(
        o.check.pg_version,
        o.check.runner_sets_timeouts.unwrap_or(false),
    )
}

fn check_fixture(name: &str) -> Vec<Finding> {
    let path = fixtures().join(format!("{name}.sql"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut ctx = context_for(&text);
    let text: Arc<str> = Arc::from(text.as_str());
    let mut findings = Vec::new();
    for (range, o) in migrations_of(&text) {
        let script = Script {
            range,
            ..Script::whole_file(
                PathBuf::from(format!("{name}.sql")),
                text.clone(),
                !o.wrapped,
            )
        };
        findings.extend(match o.format {
            Some(format) => check_in_as(&mut ctx, &script, format, Direction::Up, &o.check),
            None => check_in(&mut ctx, &script, o.wrapped, Direction::Up, &o.check),
        });
    }
    findings
}

fn snapshot_line(f: &Finding) -> String {
    format!(
        "{}:{} {} {} {} {}",
        f.start.line, f.start.column, f.code, f.rule, f.severity, f.message
    )
}

#[test]
fn every_rule_matches_its_snapshot() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    for rule in RULES {
        let findings = check_fixture(rule.name);
        let mine: Vec<&Finding> = findings.iter().filter(|f| f.rule == rule.name).collect();
        assert!(
            !mine.is_empty(),
            "the fixture of {} triggers no finding of it: add a bad case",
            rule.name
        );
        let actual: String = mine.iter().map(|f| snapshot_line(f) + "\n").collect();
        let snap = fixtures().join(format!("{}.snap", rule.name));
        if update {
            std::fs::write(&snap, &actual).unwrap_or_else(|e| panic!("{}: {e}", snap.display()));
            continue;
        }
        let expected = std::fs::read_to_string(&snap).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "--- {}\n{expected}+++ actual\n{actual}",
                snap.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "snapshots differ (UPDATE_SNAPSHOTS=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn findings_carry_spans_locks_and_help() {
    let findings = check_fixture("require-concurrent-index");
    let f = findings
        .iter()
        .find(|f| f.rule == "require-concurrent-index")
        .unwrap_or_else(|| panic!("no finding"));
    assert_eq!(f.lock, Some(pgshift_lint::LockLevel::Share));
    assert_eq!(f.tables, vec!["orders".to_string()]);
    assert_eq!((f.start.line, f.start.column), (2, 1));
    let help = f.help.clone().unwrap_or_default();
    assert!(help.contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_idx ON orders USING btree (user_id);"), "{help}");
    let fix = f.fix.clone().unwrap_or_else(|| panic!("no fix"));
    let text = std::fs::read_to_string(fixtures().join("require-concurrent-index.sql"))
        .unwrap_or_default();
    // The replacement ends its statement with `;`, so the statement's own `;` is replaced too:
    // applying the fix leaves no `;;`.
    assert_eq!(
        &text[fix.span.clone()],
        "CREATE INDEX orders_user_id_idx ON orders (user_id);"
    );
    let fixed = format!(
        "{}{}{}",
        &text[..fix.span.start],
        fix.replacement,
        &text[fix.span.end..]
    );
    assert!(!fixed.contains(";;"), "{fixed}");
}

/// The rules about code running against the old schema, and the breaking change each reports.
/// Most fire on exactly what `knowledge::compat` reports (and `plan`'s checklist lists); the
/// last two fire for their lock or rewrite, on a subset of what compat reports.
const BACKWARD_COMPATIBILITY_RULES: &[(&str, &[BreakingKind])] = &[
    ("renaming-enum-value", &[BreakingKind::RenameEnumValue]),
    ("renaming-column", &[BreakingKind::RenameColumn]),
    ("renaming-table", &[BreakingKind::RenameTable]),
    ("renaming-schema", &[BreakingKind::RenameSchema]),
    ("ban-drop-column", &[BreakingKind::DropColumn]),
    ("ban-drop-table", &[BreakingKind::DropTable]),
    (
        "ban-drop-database",
        &[BreakingKind::DropDatabase, BreakingKind::DropSchema],
    ),
    ("ban-drop-not-null", &[BreakingKind::DropNotNull]),
    ("drop-constraint", &[BreakingKind::DropConstraint]),
    ("adding-required-field", &[BreakingKind::AddRequiredColumn]),
    ("changing-column-type", &[BreakingKind::RetypeColumn]),
    ("set-not-null", &[BreakingKind::SetNotNull]),
];

/// Each statement of a fixture (by span) with what `knowledge::compat` reports for it and its
/// effects (`knowledge::effects`), each computed with the context the checker has before it.
struct FixtureStatement {
    span: std::ops::Range<usize>,
    breaking: Vec<BreakingKind>,
    effects: Vec<Effect>,
}

fn statements_of_fixture(name: &str) -> Vec<FixtureStatement> {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.sql")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut ctx = context_for(&text);
    let mut out = Vec::new();
    for (range, o) in migrations_of(&text) {
        ctx.start_script(o.wrapped, Direction::Up);
        let parsed = pgshift_sql::parse_range(&text, range);
        out.extend(parsed.statements.iter().map(|s| {
            let breaking = breaking_changes(&s.node, &ctx)
                .into_iter()
                .map(|b| b.kind)
                .collect();
            let effects = statement_effects(&s.node, &ctx);
            ctx.observe(&s.node, &effects, s.span.clone());
            FixtureStatement {
                span: s.span.clone(),
                breaking,
                effects,
            }
        }));
    }
    out
}

fn statement_at<'s>(statements: &'s [FixtureStatement], f: &Finding) -> &'s FixtureStatement {
    statements
        .iter()
        .find(|s| s.span.contains(&f.span.start))
        .unwrap_or_else(|| panic!("{}: no statement at line {}", f.rule, f.start.line))
}

/// `check` and `plan` cannot disagree: every finding of a backward-compatibility rule is on a
/// statement the compat knowledge reports as breaking, with one of that rule's kinds of change.
#[test]
fn backward_compatibility_findings_are_breaking_changes() {
    for (rule, rule_kinds) in BACKWARD_COMPATIBILITY_RULES {
        let statements = statements_of_fixture(rule);
        let findings: Vec<Finding> = check_fixture(rule)
            .into_iter()
            .filter(|f| f.rule == *rule)
            .collect();
        assert!(!findings.is_empty(), "{rule}: no finding in its fixture");
        for f in findings {
            let kinds = &statement_at(&statements, &f).breaking;
            assert!(
                kinds.iter().any(|k| rule_kinds.contains(k)),
                "{rule} fires at line {} but compat reports {kinds:?}, not {rule_kinds:?}",
                f.start.line
            );
        }
    }
}

/// `check` and `trace` cannot disagree: a finding's lock is the strongest lock its statement's
/// effects (`knowledge::effects`, what `plan`, the guard and `trace` predict) give on the
/// finding's tables. Every finding of every fixture is checked, whatever rule reports it.
#[test]
fn finding_locks_are_the_statements_effects() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for rule in RULES {
        let statements = statements_of_fixture(rule.name);
        for f in check_fixture(rule.name) {
            let Some(lock) = f.lock else { continue };
            let s = statement_at(&statements, &f);
            let predicted: Option<LockLevel> = s
                .effects
                .iter()
                .filter(|e| f.tables.contains(&e.table.to_string()))
                .map(|e| e.lock)
                .max();
            checked += 1;
            if predicted != Some(lock) {
                wrong.push(format!(
                    "{}.sql:{} {}: the finding says {} on {:?}; the effects say {}",
                    rule.name,
                    f.start.line,
                    f.rule,
                    lock.sql_name(),
                    f.tables,
                    predicted.map_or("nothing", LockLevel::sql_name),
                ));
            }
        }
    }
    assert!(checked >= 40, "only {checked} findings carry a lock");
    assert!(
        wrong.is_empty(),
        "findings whose lock is not their statement's effect:\n{}",
        wrong.join("\n")
    );
}

/// No rule decides a lock itself: outside comments, a rule file names a `LockLevel::` constant
/// only to compare against it (`held.lock > LockLevel::RowExclusive`). What a statement takes
/// comes from its effects (`StatementCheck::lock_on`, `StatementCheck::lock_diagnostic`).
#[test]
fn rules_name_lock_levels_only_to_compare() {
    const COMPARISONS: &[&str] = &["==", "!=", ">=", "<=", ">", "<"];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    assert!(files.len() > 50, "{files:?}");
    let mut found = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let mut rest = code;
            let mut before = String::new();
            while let Some(at) = rest.find("LockLevel::") {
                before.push_str(&rest[..at]);
                let operand = before.trim_end();
                // `=>` and `->` end with `>` but compare nothing.
                let compared = COMPARISONS.iter().any(|op| operand.ends_with(op))
                    && !operand.ends_with("=>")
                    && !operand.ends_with("->");
                if !compared {
                    found.push(format!(
                        "{}:{}: {}",
                        path.file_name()
                            .map(|f| f.to_string_lossy())
                            .unwrap_or_default(),
                        n + 1,
                        line.trim()
                    ));
                }
                before.push_str("LockLevel::");
                rest = &rest[at + "LockLevel::".len()..];
            }
        }
    }
    assert!(
        found.is_empty(),
        "rules that name a lock level instead of reading the statement's effects:\n{}",
        found.join("\n")
    );
}

/// A rule whose fix is the runner's safe rewrite (`with_rewrite`) becomes a note when pgshift
/// runs the migrations; its documentation (`pgshift explain`) must say so.
#[test]
fn rules_answered_by_a_safe_rewrite_document_the_note() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for rule in pgshift_lint::RULES {
        let source = dir
            .join("src/rules")
            .join(format!("{}.rs", rule.name.replace('-', "_")));
        let Ok(text) = std::fs::read_to_string(&source) else {
            continue;
        };
        if text.contains("with_rewrite(") {
            checked += 1;
            assert!(
                rule.doc.contains("## When pgshift runs the migrations")
                    && rule.doc.contains("**note**"),
                "{}: its documentation does not say that pgshift up runs it safely (a note)",
                rule.name
            );
        }
    }
    assert!(checked >= 6, "{checked}");
}
