//! Every rule's fixture (`tests/fixtures/<rule>.sql`: bad and good cases) checked against its
//! snapshot (`tests/fixtures/<rule>.snap`: one line per finding of that rule,
//! `line:col code rule severity message`). `UPDATE_SNAPSHOTS=1 cargo test -p pgshift-lint`
//! rewrites the snapshots; review the diff, it is the specification.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgshift_lint::{
    breaking_changes, check_script, statement_effects, BreakingKind, CheckOptions, Context,
    Direction, Finding, PgVersion, RULES,
};
use pgshift_source::Script;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Reads `-- fixture: wrapped=false pg_version=14.2 runner_sets_timeouts=false` from the first line.
fn options_for(text: &str) -> (CheckOptions, bool) {
    let mut options = CheckOptions {
        pg_version: PgVersion::new(15, 0),
        runner_sets_timeouts: Some(true),
        enable: vec!["all".into()],
        ..CheckOptions::default()
    };
    let mut wrapped = true;
    if let Some(header) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("-- fixture:"))
    {
        for pair in header.split_whitespace() {
            match pair.split_once('=') {
                Some(("wrapped", v)) => wrapped = v == "true",
                Some(("pg_version", v)) => {
                    options.pg_version = v.parse().unwrap_or(options.pg_version)
                }
                Some(("runner_sets_timeouts", v)) => {
                    options.runner_sets_timeouts = Some(v == "true")
                }
                _ => panic!("unknown fixture option {pair}"),
            }
        }
    }
    (options, wrapped)
}

fn check_fixture(name: &str) -> Vec<Finding> {
    let path = fixtures().join(format!("{name}.sql"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (options, wrapped) = options_for(&text);
    let script = Script::whole_file(
        PathBuf::from(format!("{name}.sql")),
        Arc::from(text.as_str()),
        !wrapped,
    );
    check_script(&script, wrapped, &options)
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
    assert_eq!(
        &text[fix.span],
        "CREATE INDEX orders_user_id_idx ON orders (user_id)"
    );
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

/// What `knowledge::compat` reports for each statement of a fixture (by span), with the
/// context the checker has before it.
fn breaking_kinds_of_fixture(name: &str) -> Vec<(std::ops::Range<usize>, Vec<BreakingKind>)> {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.sql")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let (options, wrapped) = options_for(&text);
    let mut ctx = Context::new(
        options.pg_version,
        options.runner_sets_timeouts.unwrap_or(false),
    );
    ctx.start_script(wrapped, Direction::Up);
    let parsed = pgshift_sql::parse(&text);
    parsed
        .statements
        .iter()
        .map(|s| {
            let kinds = breaking_changes(&s.node, &ctx)
                .into_iter()
                .map(|b| b.kind)
                .collect();
            let effects = statement_effects(&s.node, &ctx);
            ctx.observe(&s.node, &effects, s.span.clone());
            (s.span.clone(), kinds)
        })
        .collect()
}

/// `check` and `plan` cannot disagree: every finding of a backward-compatibility rule is on a
/// statement the compat knowledge reports as breaking, with one of that rule's kinds of change.
#[test]
fn backward_compatibility_findings_are_breaking_changes() {
    for (rule, rule_kinds) in BACKWARD_COMPATIBILITY_RULES {
        let statements = breaking_kinds_of_fixture(rule);
        let findings: Vec<Finding> = check_fixture(rule)
            .into_iter()
            .filter(|f| f.rule == *rule)
            .collect();
        assert!(!findings.is_empty(), "{rule}: no finding in its fixture");
        for f in findings {
            let (_, kinds) = statements
                .iter()
                .find(|(span, _)| span.contains(&f.span.start))
                .unwrap_or_else(|| panic!("{rule}: no statement at {:?}", f.span));
            assert!(
                kinds.iter().any(|k| rule_kinds.contains(k)),
                "{rule} fires at line {} but compat reports {kinds:?}, not {rule_kinds:?}",
                f.start.line
            );
        }
    }
}
