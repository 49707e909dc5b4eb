//! `verify` against a real PostgreSQL: the fixture sets under `tests/fixtures/verify/`.
//!
//! The correct set runs the way a user runs it, with nothing configured (a throwaway cluster
//! of its own); the others use a scratch database of the shared test server to save the
//! cluster start-up.

use std::path::{Path, PathBuf};

use pgshift_db::testing::TestDb;
use pgshift_runner::verify::{
    render_json, render_markdown, render_markdown_capped, render_terminal, verify, Outcome, Phase,
    VerifyOptions, VerifyReport, MARKDOWN_LIMIT,
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
    assert!(text.starts_with("pgshift verify PASSED"), "{text}");

    let mut md = Vec::new();
    render_markdown(&report, &mut md).unwrap_or_else(|e| panic!("{e}"));
    let md = String::from_utf8_lossy(&md);
    assert!(md.starts_with("## pgshift verify: ✅ passed"), "{md}");
    assert!(md.contains("takes ACCESS EXCLUSIVE on users"), "{md}");
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
    // Verification went on: the first migration's down was checked too.
    assert_eq!(report.migrations[0].down, Outcome::Passed);
    assert_eq!(report.migrations[1].down, Outcome::Failed);
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
    // Each down is checked on its own, so the one before the forward-only migration is too.
    assert_eq!(report.migrations[0].down, Outcome::Passed);
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
    // The look before the unique index finds the duplicate seed rows.
    assert!(
        report.failures[0]
            .message
            .contains("rows already in people break UNIQUE"),
        "{text}"
    );
}

#[tokio::test]
async fn a_down_that_re_adds_a_column_last_restores_the_schema() {
    let db = TestDb::new().await;
    let set = fixture("column_readded_last");
    let report = verify_in(&db, &set).await;
    let text = terminal(&report);
    assert!(report.passed, "{text}");
    assert_eq!(report.counts.downs_checked, 2, "{text}");
    // A scratch database given by URL keeps none of verify's event triggers.
    let conn = db.connect().await;
    assert_eq!(
        pgshift_db::testing::watch_leftovers(&conn).await,
        0,
        "{text}"
    );

    // With --strict-order the position counts.
    let db = TestDb::new().await;
    let options = VerifyOptions {
        database_url: Some(db.url()),
        strict_order: true,
        trace: false,
        ..VerifyOptions::default()
    };
    let strict = verify(&set, &options, &Silent)
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    let text = terminal(&strict);
    assert!(!strict.passed, "{text}");
    assert!(
        strict.failures[0]
            .differences
            .iter()
            .any(|d| d == "column users.email: position 2 → 3"),
        "{text}"
    );
}

#[tokio::test]
async fn a_function_re_created_with_other_whitespace_is_the_same_function() {
    let db = TestDb::new().await;
    let report = verify_in(&db, &fixture("function_whitespace")).await;
    let text = terminal(&report);
    assert!(report.passed, "{text}");
}

#[tokio::test]
async fn a_function_body_that_differs_is_shown_as_a_line_diff() {
    let db = TestDb::new().await;
    let report = verify_in(&db, &fixture("function_body_changed")).await;
    let text = terminal(&report);
    assert!(!report.passed, "{text}");
    assert_eq!(report.failures.len(), 1, "{text}");
    let f = &report.failures[0];
    assert_eq!(
        f.differences,
        vec!["function score(n integer): definition differs; before its up: `RETURN n;`, after its down: `RETURN n + 1;`"],
        "{text}"
    );
    assert!(f.details.iter().any(|l| l == "- RETURN n;"), "{text}");
    assert!(f.details.iter().any(|l| l == "+ RETURN n + 1;"), "{text}");
}

/// Verify's own session prepares its catalog queries once; a down that deallocates every
/// prepared statement, checked in that session's transaction, must not break the snapshots
/// after it (a missing statement would abort the transaction).
#[tokio::test]
async fn a_down_that_deallocates_prepared_statements_is_checked_and_the_next_down_too() {
    let db = TestDb::new().await;
    let report = verify_in(&db, &fixture("deallocates")).await;
    let text = terminal(&report);
    assert!(!report.passed, "{text}");
    assert_eq!(report.counts.downs_checked, 2, "{text}");
    assert_eq!(report.failures.len(), 1, "{text}");
    assert_eq!(
        report.failures[0].migration.as_deref(),
        Some("20240102000000 add_email"),
        "{text}"
    );
    assert!(
        report.failures[0]
            .differences
            .iter()
            .any(|d| d.contains("users.email")),
        "{text}"
    );
}

#[tokio::test]
async fn three_independent_broken_downs_are_all_named_in_one_run() {
    let db = TestDb::new().await;
    let report = verify_in(&db, &fixture("three_broken_downs")).await;
    let text = terminal(&report);
    assert!(!report.passed, "{text}");
    let named: Vec<(&str, Phase)> = report
        .failures
        .iter()
        .map(|f| (f.migration.as_deref().unwrap_or("-"), f.phase))
        .collect();
    // Each broken down once, with its cause, and nothing else: no knock-on effect of one
    // broken down is reported against another migration.
    assert_eq!(
        named,
        vec![
            ("20240102000000 add_avatar", Phase::Restore),
            ("20240103000000 index_email", Phase::Down),
            ("20240104000000 create_orders", Phase::Restore),
        ],
        "{text}"
    );
    assert_eq!(
        report.failures[0].differences,
        vec!["column users.avatar_url: only after its down"]
    );
    assert!(
        report.failures[1]
            .message
            .contains("index_email.down.sql:2:1")
            && report.failures[1].message.contains("users_mail_idx"),
        "{text}"
    );
    assert_eq!(
        report.failures[2].differences,
        vec!["table orders: only after its down"]
    );
    assert_eq!(report.counts.downs_broken, 3);
    assert_eq!(report.counts.downs_checked, 5);
    assert_eq!(report.migrations[4].down, Outcome::Passed);
    // Verdict and counts first, then one line per problem.
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0]
            .starts_with("pgshift verify FAILED: 3 failure(s); 5 migrations, 3 of 5 downs broken"),
        "{text}"
    );
    assert_eq!(text.matches("  ✗ ").count(), 3, "{text}");
}

/// A 300-migration set whose every down is broken makes a report far beyond a pull request
/// comment: the markdown on standard output stays under the cap and says what it cut and
/// where the rest is; the full report has everything.
#[tokio::test]
async fn markdown_of_a_300_migration_set_fits_a_pull_request_comment() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let write = |name: String, text: String| {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"))
    };
    write(
        "20240000000000_create_wide_table_for_the_report.up.sql".into(),
        "CREATE TABLE a_table_with_a_long_name_for_the_report (id bigint PRIMARY KEY);\n".into(),
    );
    write(
        "20240000000000_create_wide_table_for_the_report.down.sql".into(),
        "DROP TABLE a_table_with_a_long_name_for_the_report;\n".into(),
    );
    for i in 1..300 {
        let version = format!("2024{i:010}");
        write(
            format!("{version}_add_a_column_whose_down_forgets_it_{i}.up.sql"),
            format!("ALTER TABLE a_table_with_a_long_name_for_the_report ADD COLUMN column_number_{i}_with_a_long_name text;\n"),
        );
        write(
            format!("{version}_add_a_column_whose_down_forgets_it_{i}.down.sql"),
            "SELECT 1;\n".into(),
        );
    }
    let set =
        pgshift_source::load(dir.path(), Some(Format::Pgshift)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.migrations.len(), 300);
    let db = TestDb::new().await;
    let options = VerifyOptions {
        database_url: Some(db.url()),
        trace: false,
        ..VerifyOptions::default()
    };
    let report = verify(&set, &options, &Silent)
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    assert_eq!(
        report.counts.downs_broken,
        299,
        "{:?}",
        report
            .migrations
            .iter()
            .filter(|m| m.down != Outcome::Differs)
            .take(5)
            .collect::<Vec<_>>()
    );

    let mut full = Vec::new();
    render_markdown(&report, &mut full).unwrap_or_else(|e| panic!("{e}"));
    let full = String::from_utf8_lossy(&full).into_owned();
    assert!(full.chars().count() > MARKDOWN_LIMIT, "{}", full.len());

    let mut capped = Vec::new();
    render_markdown_capped(&report, MARKDOWN_LIMIT, None, &mut capped)
        .unwrap_or_else(|e| panic!("{e}"));
    let capped = String::from_utf8_lossy(&capped).into_owned();
    assert!(
        capped.chars().count() <= MARKDOWN_LIMIT,
        "{} characters",
        capped.chars().count()
    );
    assert!(
        capped.starts_with("## pgshift verify: ❌ failed\n\n**FAILED: 299 failure(s); 300 migrations, 299 of 300 downs broken"),
        "{}",
        &capped[..300]
    );
    assert!(
        capped.contains("> ✂ Cut to fit a pull request comment"),
        "{capped}"
    );
    assert!(capped.contains("--output FILE"), "{capped}");
    // The problems come first, one line each, as many as fit; what did not is counted.
    let shown = capped.matches("\n- the down of ").count();
    assert!(shown >= 250, "{shown} problem lines");
    if shown < 299 {
        assert!(
            capped.contains(&format!("{} line(s) of problems", 299 - shown)),
            "{}",
            &capped[capped.len() - 600..]
        );
    }
}

/// A blocking `CREATE INDEX` in history that `pgshift up` runs CONCURRENTLY is a note, never
/// a failure; with `--exact` it runs as written and fails the gate — unless the gate only
/// covers migrations newer than a baseline.
#[tokio::test]
async fn what_pgshift_up_makes_safe_never_fails_verify_and_the_gate_skips_history() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = [
        (
            "20240101000000_users.up.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
        ),
        ("20240101000000_users.down.sql", "DROP TABLE users;\n"),
        (
            "20240102000000_index.up.sql",
            "CREATE INDEX users_email_idx ON users (email);\n",
        ),
        (
            "20240102000000_index.down.sql",
            "DROP INDEX users_email_idx;\n",
        ),
        (
            "20240103000000_nickname.up.sql",
            "ALTER TABLE users ADD COLUMN nickname text;\n",
        ),
        (
            "20240103000000_nickname.down.sql",
            "ALTER TABLE users DROP COLUMN nickname;\n",
        ),
    ];
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).unwrap_or_else(|e| panic!("{e}"));
    }
    let set =
        pgshift_source::load(dir.path(), Some(Format::Pgshift)).unwrap_or_else(|e| panic!("{e}"));
    let run = |exact: bool, gate: Option<pgshift_runner::verify::Gate>| {
        let set = set.clone();
        async move {
            let db = TestDb::new().await;
            let mut options = VerifyOptions {
                database_url: Some(db.url()),
                trace: false,
                gate,
                ..VerifyOptions::default()
            };
            options.run.exact = exact;
            if exact {
                options.check.runner_rewrites = Some(false);
            }
            verify(&set, &options, &Silent)
                .await
                .unwrap_or_else(|e| panic!("verify: {e}"))
        }
    };

    let report = run(false, None).await;
    let text = terminal(&report);
    assert!(report.passed, "{text}");
    assert!(report.analyzer.notes >= 1, "{text}");
    let note = report
        .analyzer
        .findings
        .iter()
        .find(|f| f.rule == "require-concurrent-index")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(note.severity, pgshift_lint::Severity::Note);
    assert!(
        note.message
            .starts_with("runs as `CREATE INDEX CONCURRENTLY"),
        "{}",
        note.message
    );

    let exact = run(true, None).await;
    let text = terminal(&exact);
    assert!(!exact.passed, "{text}");
    assert_eq!(exact.failures.len(), 1, "{text}");
    assert_eq!(exact.failures[0].phase, Phase::Analyzer, "{text}");

    // The index is history: the gate covers only what came after it.
    let version = pgshift_source::Version::parse("20240102000000").unwrap_or_else(|| panic!());
    let gated = run(
        true,
        Some(pgshift_runner::verify::Gate::after_version(&set, &version)),
    )
    .await;
    let text = terminal(&gated);
    assert!(gated.passed, "{text}");
    assert!(gated.analyzer.outside_gate >= 1, "{text}");
    assert!(
        text.contains("analyzer gated to the migrations changed since baseline 20240102000000"),
        "{text}"
    );
}

/// Library users run verify on a multi-threaded runtime.
#[test]
fn verify_can_be_spawned_on_a_multi_threaded_runtime() {
    fn is_send<T: Send>(_: &T) {}
    let set = fixture("good");
    let options = VerifyOptions::default();
    let future = verify(&set, &options, &Silent);
    is_send(&future);
}

/// A down that cannot run in a transaction block is checked through the runner with real
/// commits; when it does not restore the schema the throwaway database is built again up to
/// that migration, and verification goes on.
#[tokio::test]
async fn a_down_checked_with_real_commits_is_named_and_verification_goes_on() {
    let set = fixture("down_outside_any_transaction");
    let options = VerifyOptions {
        trace: false,
        ..VerifyOptions::default()
    };
    let report = verify(&set, &options, &Silent)
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    let text = terminal(&report);
    assert!(!report.passed, "{text}");
    let named: Vec<(&str, Phase)> = report
        .failures
        .iter()
        .map(|f| (f.migration.as_deref().unwrap_or("-"), f.phase))
        .collect();
    assert_eq!(
        named,
        vec![("20240102000000 add_avatar", Phase::Restore)],
        "{text}"
    );
    assert_eq!(
        report.failures[0].differences,
        vec!["column users.avatar_url: only after its down"]
    );
    assert_eq!(report.migrations[2].down, Outcome::Passed, "{text}");
    assert_eq!(report.migrations[0].down, Outcome::Passed, "{text}");
}

/// A rename that `up` ran as an online change is a note in verify's analyzer, not an error:
/// the gate does not fail on what pgshift made safe. Run as written (`--exact`), it fails.
#[tokio::test]
async fn a_migration_run_online_is_a_note_not_an_analyzer_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = [
        (
            "20240101000000_users.up.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY, full_name text NOT NULL);\nINSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 100) g;\n",
        ),
        ("20240101000000_users.down.sql", "DROP TABLE users;\n"),
        (
            "20240102000000_rename.up.sql",
            "ALTER TABLE users RENAME COLUMN full_name TO display_name;\n",
        ),
    ];
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).unwrap_or_else(|e| panic!("{e}"));
    }
    // (A down that renames back would run as written, and stays an error.)
    let set =
        pgshift_source::load(dir.path(), Some(Format::Pgshift)).unwrap_or_else(|e| panic!("{e}"));
    let db = TestDb::new().await;
    let options = VerifyOptions {
        database_url: Some(db.url()),
        trace: false,
        ..VerifyOptions::default()
    };
    let report = verify(&set, &options, &Silent)
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    let text = terminal(&report);
    let rename = report
        .analyzer
        .findings
        .iter()
        .find(|f| f.rule == "renaming-column" && f.location.contains("20240102000000_rename.up"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(rename.severity, pgshift_lint::Severity::Note, "{text}");
    assert!(
        rename.message.starts_with("ran as an online change"),
        "{text}"
    );
    assert!(report.passed, "{text}");
}

/// PostgreSQL cannot drop an enum label: a down that leaves the labels its up added (in the
/// middle or at the end) restores the schema, with a note; a label renamed and not renamed
/// back is still a difference.
#[tokio::test]
async fn enum_labels_an_up_added_may_stay_after_its_down_a_renamed_label_may_not() {
    let db = TestDb::new().await;
    let set = fixture("enum_labels");
    let report = verify_in(&db, &set).await;
    let text = terminal(&report);
    assert!(!report.passed, "{text}");
    assert_eq!(report.migrations[1].down, Outcome::Passed, "{text}");
    assert!(
        report.notes.iter().any(|n| n.contains(
            "the down of 20240101000002 status_dormant leaves the enum labels its up added (status: 'dormant', 'it''s, gone')"
        )),
        "{text}"
    );
    assert_eq!(report.failures.len(), 1, "{text}");
    assert_eq!(report.failures[0].phase, Phase::Restore, "{text}");
    assert_eq!(
        report.failures[0].migration.as_deref(),
        Some("20240101000003 status_renamed"),
        "{text}"
    );
}
