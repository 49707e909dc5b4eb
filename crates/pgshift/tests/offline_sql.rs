//! `pgshift check -` on the SQL Alembic (`alembic upgrade head --sql`) and Django
//! (`manage.py sqlmigrate`) really print, stored in `tests/fixtures/offline_sql/` (its README
//! says how each file was made and with which versions). No database is involved: the tools'
//! output is read from standard input, as the README's recipe pipes it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/offline_sql")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `pgshift check - --format json` with `sql` on standard input.
fn check_stdin(sql: &str) -> (Output, serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .args(["check", "-", "--format", "json"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgshift");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

/// (rule, line) of every finding.
fn findings(json: &serde_json::Value) -> Vec<(String, u64)> {
    json["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_owned(),
                f["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// The 1-based line of the only line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(hits.len(), 1, "`{needle}` must be on exactly one line");
    hits[0] as u64
}

/// Rules that would mean the tool's own transaction was taken for the author's.
const TRANSACTION_RULES: &[&str] = &[
    "transaction-nesting",
    "ban-uncommitted-transaction",
    "concurrently-in-transaction",
];

fn assert_no_transaction_findings(found: &[(String, u64)]) {
    for (rule, line) in found {
        assert!(
            !TRANSACTION_RULES.contains(&rule.as_str()),
            "false `{rule}` at line {line}: the tool's BEGIN/COMMIT are its transaction; all: {found:?}"
        );
    }
}

fn assert_reported(found: &[(String, u64)], rule: &str, line: u64) {
    assert!(
        found.iter().any(|(r, l)| r == rule && *l == line),
        "expected `{rule}` at line {line}; found {found:?}"
    );
}

/// Both of Alembic's transaction layouts: one transaction for the run (the default), and one
/// per revision (`transaction_per_migration=True`).
#[test]
fn alembic_streams_report_each_revisions_dangers_and_no_false_nesting() {
    for name in [
        "alembic_upgrade_head.sql",
        "alembic_upgrade_head_per_migration.sql",
    ] {
        let sql = fixture(name);
        let (out, json) = check_stdin(&sql);
        let found = findings(&json);
        assert_no_transaction_findings(&found);
        // Revision 0002 changes `users`, which revision 0001 created: an existing table.
        assert_reported(
            &found,
            "require-concurrent-index",
            line_of(&sql, "CREATE INDEX users_org_id_idx"),
        );
        assert_reported(
            &found,
            "foreign-key-missing-not-valid",
            line_of(&sql, "ADD CONSTRAINT users_org_id_fkey"),
        );
        assert_reported(
            &found,
            "set-not-null",
            line_of(&sql, "ALTER COLUMN org_id SET NOT NULL"),
        );
        assert_reported(
            &found,
            "renaming-column",
            line_of(&sql, "RENAME email TO login"),
        );
        // Revision 0004's CONCURRENTLY runs between Alembic's COMMIT and BEGIN
        // (`autocommit_block()`): nothing to say about it.
        let concurrently = line_of(&sql, "CREATE INDEX CONCURRENTLY users_login_idx");
        assert!(
            !found.iter().any(|(r, l)| *l == concurrently
                && (r == "require-concurrent-index" || r == "cannot-run-in-transaction")),
            "{name}: {found:?}"
        );
        // Alembic's version table is its bookkeeping, not the author's schema.
        let version_table = line_of(&sql, "CREATE TABLE alembic_version");
        let bookkeeping: Vec<u64> = sql
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("alembic_version"))
            .map(|(i, _)| i as u64 + 1)
            .collect();
        assert!(bookkeeping.contains(&version_table));
        assert!(
            !found.iter().any(|(_, l)| bookkeeping.contains(l)),
            "{name}: a finding on Alembic's bookkeeping: {found:?}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("read as Alembic's SQL, 4 migration(s)"),
            "{name}: {stderr}"
        );
        assert_eq!(out.status.code(), Some(1), "{name}: errors exit 1");
    }
}

#[test]
fn django_sqlmigrate_reports_the_dangers_and_no_false_nesting() {
    let create = fixture("django_sqlmigrate_shop_0001.sql");
    let (out, json) = check_stdin(&create);
    assert_no_transaction_findings(&findings(&json));
    assert_eq!(out.status.code(), Some(0), "{json}");

    let add = fixture("django_sqlmigrate_shop_0002.sql");
    let (_, json) = check_stdin(&add);
    let found = findings(&json);
    assert_no_transaction_findings(&found);
    assert_reported(
        &found,
        "require-concurrent-index",
        line_of(&add, "CREATE INDEX \"shop_customer_org_id_083433ef\""),
    );

    let rename = fixture("django_sqlmigrate_shop_0003.sql");
    let (_, json) = check_stdin(&rename);
    let found = findings(&json);
    assert_no_transaction_findings(&found);
    assert_reported(&found, "renaming-column", line_of(&rename, "RENAME COLUMN"));
    assert_reported(&found, "set-not-null", line_of(&rename, "SET NOT NULL"));
}

/// `for m in 0001 0002 0003; do python manage.py sqlmigrate shop $m; done | pgshift check -`:
/// each BEGIN/COMMIT block is a migration, so the tables 0001 creates exist in 0002.
#[test]
fn django_migrations_piped_together_are_checked_one_by_one() {
    let create = fixture("django_sqlmigrate_shop_0001.sql");
    let add = fixture("django_sqlmigrate_shop_0002.sql");
    let rename = fixture("django_sqlmigrate_shop_0003.sql");
    let all = format!("{create}{add}{rename}");
    let (out, json) = check_stdin(&all);
    let found = findings(&json);
    assert_no_transaction_findings(&found);
    let offset = create.lines().count() as u64;
    assert_reported(
        &found,
        "require-concurrent-index",
        offset + line_of(&add, "CREATE INDEX \"shop_customer_org_id_083433ef\""),
    );
    let offset = offset + add.lines().count() as u64;
    assert_reported(
        &found,
        "renaming-column",
        offset + line_of(&rename, "RENAME COLUMN"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("read as Django's SQL, 3 migration(s)"),
        "{stderr}"
    );
}

/// A hand-written file wrapped in BEGIN/COMMIT is no tool's output: the nesting is reported.
#[test]
fn a_plain_stream_is_still_one_migration() {
    let (_, json) = check_stdin("BEGIN;\nCREATE INDEX i ON t (a);\nCOMMIT;\n");
    let found = findings(&json);
    assert_reported(&found, "transaction-nesting", 1);
    assert_reported(&found, "require-concurrent-index", 2);
}

/// The venv holding the real tools: `PGSHIFT_PYTHON_TOOLS`, else
/// `$CARGO_TARGET_DIR/tools/bin` (the fixtures README says how it is made).
fn python_tools() -> Option<PathBuf> {
    let dir = match std::env::var_os("PGSHIFT_PYTHON_TOOLS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
            target.join("tools/bin")
        }
    };
    dir.join("alembic").is_file().then_some(dir)
}

/// The stored Alembic output is what Alembic prints today (offline mode needs no database).
#[test]
fn alembic_output_is_still_what_alembic_prints() {
    let Some(tools) = python_tools() else {
        eprintln!(
            "SKIPPED alembic_output_is_still_what_alembic_prints: no alembic found (set \
             PGSHIFT_PYTHON_TOOLS to a venv's bin with `pip install alembic`, or create \
             $CARGO_TARGET_DIR/tools, as scripts/dev.sh test does); the stored fixtures were still checked"
        );
        return;
    };
    let project = fixtures().join("alembic_project");
    for (args, stored) in [
        (vec!["upgrade", "head", "--sql"], "alembic_upgrade_head.sql"),
        (
            vec!["-x", "per_migration=1", "upgrade", "head", "--sql"],
            "alembic_upgrade_head_per_migration.sql",
        ),
    ] {
        let out = Command::new(tools.join("alembic"))
            .args(&args)
            .current_dir(&project)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("run alembic");
        assert!(
            out.status.success(),
            "alembic {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            fixture(stored),
            "`alembic {}` no longer prints {stored}: regenerate it (fixtures README) and check the tests still hold",
            args.join(" ")
        );
        let (_, json) = check_stdin(&String::from_utf8_lossy(&out.stdout));
        assert_no_transaction_findings(&findings(&json));
    }
}
