//! `verify` against a real PostgreSQL: the fixture sets under `tests/fixtures/verify/`.
//!
//! The correct set runs the way a user runs it, with nothing configured (a throwaway cluster
//! of its own); the others use a scratch database of the shared test server to save the
//! cluster start-up.

use std::path::{Path, PathBuf};

use pgshift_db::testing::TestDb;
use pgshift_runner::verify::{
    render_json, render_markdown, render_terminal, verify, Outcome, Phase, VerifyOptions,
    VerifyReport,
};
use pgshift_runner::{RunError, Silent};
use pgshift_source::{Format, MigrationSet};

fn fixture(name: &str) -> MigrationSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verify")
        .join(name);
    pgshift_source::load(&dir, Some(Format::Pgshift)).unwrap_or_else(|e| panic!("{e}"))
}

async fn verify_in(db: &TestDb, set: &MigrationSet) -> VerifyReport {
    let options = VerifyOptions {
        database_url: Some(db.url()),
        ..VerifyOptions::default()
    };
    verify(set, &options, &Silent)
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"))
}

fn terminal(report: &VerifyReport) -> String {
    let mut out = Vec::new();
    render_terminal(report, &mut out).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_correct_set_passes_on_a_throwaway_cluster_with_nothing_configured() {
    let set = fixture("good");
    let report = verify(&set, &VerifyOptions::default(), &Silent)
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    let text = terminal(&report);
    assert!(report.passed, "{text}");
    assert!(report.failures.is_empty(), "{text}");
    assert!(
        report.server.starts_with("throwaway cluster"),
        "{}",
        report.server
    );
    assert!(
        report
            .migrations
            .iter()
            .all(|m| m.up == Outcome::Passed && m.down == Outcome::Passed),
        "{text}"
    );
    assert!(text.contains("PASSED"), "{text}");

    // The trace ran: adding a column takes ACCESS EXCLUSIVE on the existing table.
    let trace = report
        .trace
        .as_ref()
        .unwrap_or_else(|| panic!("no trace: {text}"));
    assert_eq!(trace.statement_count(), 3, "{text}");
    let add_column = &trace.migrations[2].statements[0];
    assert!(
        add_column
            .locks
            .iter()
            .any(|l| l.relation.name == "users" && l.mode == pgshift_db::LockLevel::AccessExclusive),
        "{add_column:#?}"
    );
    assert!(text.contains("takes ACCESS EXCLUSIVE on users"), "{text}");

    let mut md = Vec::new();
    render_markdown(&report, &mut md).unwrap_or_else(|e| panic!("{e}"));
    let md = String::from_utf8_lossy(&md);
    assert!(md.starts_with("## pgshift verify: ✅ passed"), "{md}");
    let mut json = Vec::new();
    render_json(&report, &mut json).unwrap_or_else(|e| panic!("{e}"));
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value["passed"], true);
}

#[tokio::test]
async fn a_down_that_drops_a_constraint_instead_of_the_index_is_named() {
    let db = TestDb::new().await;
    let report = verify_in(&db, &fixture("down_drops_wrong_object")).await;
    let text = terminal(&report);
    assert!(!report.passed, "{text}");
    assert_eq!(report.failures.len(), 1, "{text}");
    let failure = &report.failures[0];
    assert_eq!(failure.phase, Phase::Restore);
    assert_eq!(
        failure.migration.as_deref(),
        Some("20240102000000 users_email_unique"),
        "{text}"
    );
    assert!(
        failure.message.contains("does not restore the schema"),
        "{text}"
    );
    assert_eq!(
        failure.differences,
        vec!["index users_email_key: only after its down"],
        "{text}"
    );
    // The migrations around it are fine.
    assert_eq!(report.migrations[0].down, Outcome::Passed);
    assert_eq!(report.migrations[1].down, Outcome::Differs);
    assert_eq!(report.migrations[2].down, Outcome::Passed);
}

#[tokio::test]
async fn a_down_that_forgets_a_column_is_named() {
    let db = TestDb::new().await;
    let report = verify_in(&db, &fixture("down_forgets_column")).await;
    let text = terminal(&report);
    assert!(!report.passed, "{text}");
    assert_eq!(report.failures.len(), 1, "{text}");
    assert_eq!(
        report.failures[0].migration.as_deref(),
        Some("20240102000000 add_profile")
    );
    assert_eq!(
        report.failures[0].differences,
        vec!["column users.avatar_url: only after its down"],
        "{text}"
    );
    assert!(
        text.contains("✗ the down of 20240102000000 add_profile does not restore the schema"),
        "{text}"
    );
}

#[tokio::test]
async fn a_down_with_a_syntax_error_is_reported_with_file_and_line() {
    let db = TestDb::new().await;
    let report = verify_in(&db, &fixture("down_syntax_error")).await;
    let text = terminal(&report);
    assert!(!report.passed, "{text}");
    let failure = report
        .failures
        .iter()
        .find(|f| f.phase == Phase::Down)
        .unwrap_or_else(|| panic!("no down failure: {text}"));
    assert_eq!(
        failure.migration.as_deref(),
        Some("20240102000000 add_status")
    );
    assert!(
        failure
            .message
            .contains("20240102000000_add_status.down.sql:2:"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("syntax error"),
        "{}",
        failure.message
    );
    // The down phase stopped there: the first migration was never reverted.
    assert_eq!(report.migrations[0].down, Outcome::NotRun);
}

#[tokio::test]
async fn a_forward_only_migration_ends_the_down_phase_with_a_note() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verify/good");
    for entry in std::fs::read_dir(&good).unwrap_or_else(|e| panic!("{e}")) {
        let path: PathBuf = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Migration 2 loses its down file.
        if name == "20240102000000_users_email_index.down.sql" {
            continue;
        }
        std::fs::copy(&path, dir.path().join(&name)).unwrap_or_else(|e| panic!("{e}"));
    }
    let set =
        pgshift_source::load(dir.path(), Some(Format::Pgshift)).unwrap_or_else(|e| panic!("{e}"));
    let db = TestDb::new().await;
    let report = verify_in(&db, &set).await;
    let text = terminal(&report);
    assert!(report.passed, "{text}");
    assert_eq!(report.migrations[1].down, Outcome::ForwardOnly);
    assert_eq!(report.migrations[0].down, Outcome::NotRun);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("20240102000000 users_email_index is forward-only")),
        "{text}"
    );
}

#[tokio::test]
async fn a_non_empty_scratch_database_is_refused_unless_allowed() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch_execute("CREATE TABLE precious (id int)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let set = fixture("good");
    let refused = verify(
        &set,
        &VerifyOptions {
            database_url: Some(db.url()),
            trace: false,
            ..VerifyOptions::default()
        },
        &Silent,
    )
    .await;
    match refused {
        Err(RunError::Usage(message)) => {
            assert!(
                message.contains("is not empty (table precious"),
                "{message}"
            );
            assert!(message.contains("--allow-non-empty"), "{message}");
            // verify never reads --database-url: the advice names the flag it does read.
            assert!(message.contains("without --scratch-url"), "{message}");
            assert!(!message.contains("--database-url"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let allowed = verify(
        &set,
        &VerifyOptions {
            database_url: Some(db.url()),
            allow_non_empty: true,
            trace: false,
            ..VerifyOptions::default()
        },
        &Silent,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(allowed.passed, "{}", terminal(&allowed));
    // Its table is untouched.
    conn.batch_execute("SELECT * FROM precious")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_seed_file_is_loaded_first_and_an_up_failing_on_its_data_is_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("20240101000000_unique_email.up.sql"),
        "CREATE UNIQUE INDEX people_email_idx ON people (email);\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("20240101000000_unique_email.down.sql"),
        "DROP INDEX people_email_idx;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let seed = dir.path().join("seed.sql");
    std::fs::write(
        &seed,
        "CREATE TABLE people (email text); INSERT INTO people VALUES ('a@x'), ('a@x');",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap_or_else(|e| panic!("{e}"));
    for name in [
        "20240101000000_unique_email.up.sql",
        "20240101000000_unique_email.down.sql",
    ] {
        std::fs::rename(dir.path().join(name), migrations.join(name))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let set =
        pgshift_source::load(&migrations, Some(Format::Pgshift)).unwrap_or_else(|e| panic!("{e}"));
    let db = TestDb::new().await;
    let report = verify(
        &set,
        &VerifyOptions {
            database_url: Some(db.url()),
            seed: Some(seed),
            ..VerifyOptions::default()
        },
        &Silent,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let text = terminal(&report);
    assert!(!report.passed, "{text}");
    assert_eq!(report.failures[0].phase, Phase::Up, "{text}");
    assert_eq!(
        report.failures[0].migration.as_deref(),
        Some("20240101000000 unique_email")
    );
    assert!(
        report.failures[0]
            .message
            .contains("could not create unique index")
            || report.failures[0].message.contains("duplicate"),
        "{text}"
    );
}
