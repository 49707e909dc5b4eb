//! The runner against a real PostgreSQL: each test gets its own database on a throwaway
//! cluster (or on `PGSHIFT_TEST_DATABASE_URL`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgshift_db::testing::TestDb;
use pgshift_runner::{DownTarget, EntryState, Event, Migrator, RunError, RunOptions, Silent};
use pgshift_source::{load, Format, Version};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

fn v(s: &str) -> Version {
    Version::parse(s).expect("version")
}

async fn migrator(db: &TestDb, dir: &Path) -> Migrator {
    let set = load(dir, Some(Format::Pgshift)).expect("load");
    Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect")
}

async fn tables(db: &TestDb) -> Vec<String> {
    let c = db.connect().await;
    c.query("SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1", &[])
        .await
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn basic_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    write(
        dir.path(),
        "20240101000000_users.down.sql",
        "DROP TABLE users;\n",
    );
    write(
        dir.path(),
        "20240102000000_posts.up.sql",
        "CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint);\n",
    );
    write(
        dir.path(),
        "20240102000000_posts.down.sql",
        "DROP TABLE posts;\n",
    );
    write(
        dir.path(),
        "20240103000000_tags.up.sql",
        "CREATE TABLE tags (id int);\nINSERT INTO tags VALUES (1), (2);\n",
    );
    write(
        dir.path(),
        "20240103000000_tags.down.sql",
        "DROP TABLE tags;\n",
    );
    dir
}

#[tokio::test]
async fn up_applies_in_order_records_history_and_status_reports_it() {
    let db = TestDb::new().await;
    let dir = basic_dir();
    let mut m = migrator(&db, dir.path()).await;
    let before = m.status().await.expect("status");
    assert_eq!(before.pending(), 3);

    let applied = m.up(None, &Silent).await.expect("up");
    assert_eq!(
        applied,
        vec![
            v("20240101000000"),
            v("20240102000000"),
            v("20240103000000")
        ]
    );
    assert_eq!(tables(&db).await, vec!["posts", "tags", "users"]);

    let status = m.status().await.expect("status");
    assert!(
        status
            .entries
            .iter()
            .all(|e| e.state == EntryState::Applied),
        "{status:?}"
    );
    let c = db.connect().await;
    let row = c
        .query_one("SELECT name, down_sql, applied_by, duration_ms FROM pgshift.migrations WHERE version = '20240101000000'", &[])
        .await
        .expect("history row");
    assert_eq!(row.get::<_, String>(0), "users");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("DROP TABLE users;\n")
    );
    assert!(
        row.get::<_, String>(2).starts_with("postgres"),
        "applied_by names the role"
    );
    assert!(row.get::<_, Option<i64>>(3).is_some());

    // Nothing pending: a second run applies nothing.
    assert!(m.up(None, &Silent).await.expect("up again").is_empty());
}

#[tokio::test]
async fn up_to_stops_at_the_version_and_down_variants_revert_newest_first() {
    let db = TestDb::new().await;
    let dir = basic_dir();
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240102000000")), &Silent)
        .await
        .expect("up --to");
    assert_eq!(tables(&db).await, vec!["posts", "users"]);
    m.up(None, &Silent).await.expect("up");

    let reverted = m.down(DownTarget::Steps(1), &Silent).await.expect("down 1");
    assert_eq!(reverted, vec!["20240103000000"]);
    assert_eq!(tables(&db).await, vec!["posts", "users"]);

    m.up(None, &Silent).await.expect("up");
    let reverted = m
        .down(DownTarget::To(v("20240101000000")), &Silent)
        .await
        .expect("down --to");
    assert_eq!(reverted, vec!["20240103000000", "20240102000000"]);
    assert_eq!(tables(&db).await, vec!["users"]);

    m.down(DownTarget::All, &Silent).await.expect("down --all");
    assert!(tables(&db).await.is_empty());
    assert_eq!(m.status().await.expect("status").pending(), 3);
}

#[tokio::test]
async fn a_failing_statement_names_file_line_and_column_and_rolls_back_the_migration() {
    let db = TestDb::new().await;
    let dir = basic_dir();
    write(
        dir.path(),
        "20240104000000_broken.up.sql",
        "CREATE TABLE half (id int);\n-- the next line refers to a missing table\nINSERT INTO half SELECT id FROM nowhere;\n",
    );
    write(
        dir.path(),
        "20240105000000_after.up.sql",
        "CREATE TABLE after_broken (id int);\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    let err = m.up(None, &Silent).await.expect_err("must fail");
    match &err {
        RunError::Statement(e) => {
            assert!(e.path.ends_with("20240104000000_broken.up.sql"));
            assert_eq!((e.line, e.column), (3, 33), "points at `nowhere`");
            assert_eq!(e.sqlstate, "42P01");
            assert_eq!(e.version, "20240104000000");
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("20240104000000_broken.up.sql:3:33"), "{text}");
    assert!(text.contains("rolled back"), "{text}");
    let t = tables(&db).await;
    assert!(
        !t.contains(&"half".to_string()),
        "the failed migration was rolled back: {t:?}"
    );
    assert!(
        !t.contains(&"after_broken".to_string()),
        "nothing after the failure ran: {t:?}"
    );
    let status = m.status().await.expect("status");
    assert_eq!(status.pending(), 2);
}

#[tokio::test]
async fn an_edited_applied_file_stops_up_until_restamped() {
    let db = TestDb::new().await;
    let dir = basic_dir();
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");

    // Line endings alone are not a change.
    write(
        dir.path(),
        "20240102000000_posts.up.sql",
        "CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint);\r\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("CRLF is not drift");

    write(
        dir.path(),
        "20240102000000_posts.up.sql",
        "CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint, x int);\n",
    );
    write(
        dir.path(),
        "20240106000000_more.up.sql",
        "CREATE TABLE more (id int);\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    let err = m.up(None, &Silent).await.expect_err("drift");
    let text = err.to_string();
    assert!(matches!(err, RunError::Drift { .. }), "{err:?}");
    assert!(text.contains("20240102000000_posts.up.sql"), "{text}");
    assert!(text.contains("pgshift restamp 20240102000000"), "{text}");
    assert!(
        !tables(&db).await.contains(&"more".to_string()),
        "nothing ran"
    );
    assert_eq!(
        m.status().await.expect("status").entries[1].state,
        EntryState::Changed
    );

    let stamped = m
        .restamp(Some(&v("20240102000000")), &Silent)
        .await
        .expect("restamp");
    assert_eq!(stamped, vec!["20240102000000"]);
    m.up(None, &Silent).await.expect("up after restamp");
    assert!(tables(&db).await.contains(&"more".to_string()));
}

#[tokio::test]
async fn down_uses_the_recorded_sql_when_the_file_is_gone() {
    let db = TestDb::new().await;
    let dir = basic_dir();
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    std::fs::remove_file(dir.path().join("20240103000000_tags.up.sql")).expect("rm");
    std::fs::remove_file(dir.path().join("20240103000000_tags.down.sql")).expect("rm");
    let mut m = migrator(&db, dir.path()).await;
    let status = m.status().await.expect("status");
    assert_eq!(status.entries[2].state, EntryState::MissingFromDisk);
    let reverted = m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    assert_eq!(reverted, vec!["20240103000000"]);
    assert!(!tables(&db).await.contains(&"tags".to_string()));
}

#[tokio::test]
async fn forward_only_migrations_refuse_down_and_change_nothing() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_a.up.sql",
        "CREATE TABLE a (id int);\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    let err = m
        .down(DownTarget::Steps(1), &Silent)
        .await
        .expect_err("no down");
    assert!(matches!(err, RunError::NoDown { .. }), "{err:?}");
    assert_eq!(tables(&db).await, vec!["a"]);
}

#[tokio::test]
async fn concurrent_index_runs_outside_a_transaction_and_resumes_after_a_failure() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "20240101000000_t.up.sql", "CREATE TABLE t (id int, v int);\nINSERT INTO t SELECT g, g FROM generate_series(1, 100) g;\n");
    // Statement 2 fails the first time (the table it needs does not exist yet).
    write(
        dir.path(),
        "20240102000000_idx.up.sql",
        "CREATE INDEX CONCURRENTLY t_v_idx ON t (v);\nINSERT INTO later VALUES (1);\nCREATE INDEX CONCURRENTLY t_id_idx ON t (id);\n",
    );
    write(
        dir.path(),
        "20240102000000_idx.down.sql",
        "DROP INDEX CONCURRENTLY t_id_idx;\nDROP INDEX CONCURRENTLY t_v_idx;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    let err = m.up(None, &Silent).await.expect_err("statement 2 fails");
    assert!(
        err.to_string()
            .contains("failed at step 2; the 1 step before it completed and is recorded"),
        "{err}"
    );
    let c = db.connect().await;
    let row = c
        .query_one("SELECT state, progress, units FROM pgshift.migrations WHERE version = '20240102000000'", &[])
        .await
        .expect("row");
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, i32>(1),
            row.get::<_, i32>(2)
        ),
        ("partial".to_string(), 1, 3)
    );
    let status = m.status().await.expect("status");
    assert_eq!(status.entries[1].state, EntryState::Partial);

    c.batch_execute("CREATE TABLE later (id int)")
        .await
        .expect("fix");
    let applied = m.up(None, &Silent).await.expect("resume");
    assert_eq!(applied, vec![v("20240102000000")]);
    let later: i64 = c
        .query_one("SELECT count(*) FROM later", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(later, 1, "statement 2 ran exactly once");
    let valid: i64 = c
        .query_one("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('t_v_idx', 't_id_idx') AND i.indisvalid", &[])
        .await
        .expect("indexes")
        .get(0);
    assert_eq!(valid, 2);
    m.down(DownTarget::Steps(1), &Silent)
        .await
        .expect("down runs concurrently too");
}

#[tokio::test]
async fn copy_from_stdin_and_function_bodies_run() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_dump.up.sql",
        "CREATE TABLE t (a int, b text);\nCOPY t (a, b) FROM stdin;\n1\tone; DROP TABLE t;\n2\t\\N\n\\.\n\
         CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN (SELECT count(*) FROM t); END $$;\n\
         DO $$ BEGIN IF f() <> 2 THEN RAISE EXCEPTION 'copy lost rows'; END IF; END $$;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    let c = db.connect().await;
    let rows = c
        .query("SELECT a, b FROM t ORDER BY a", &[])
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].get::<_, Option<String>>(1).as_deref(),
        Some("one; DROP TABLE t;")
    );
    assert_eq!(rows[1].get::<_, Option<String>>(1), None);
}

#[tokio::test]
async fn eight_runners_at_once_apply_each_migration_exactly_once() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 1..=5 {
        write(
            dir.path(),
            &format!("2024010{i}000000_m{i}.up.sql"),
            &format!("CREATE TABLE IF NOT EXISTS counter (n int);\nINSERT INTO counter VALUES ({i});\nSELECT pg_sleep(0.05);\n"),
        );
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = db.url();
        let path = dir.path().to_path_buf();
        tasks.push(tokio::spawn(async move {
            let set = load(&path, Some(Format::Pgshift)).expect("load");
            let mut m = Migrator::connect(&url, set, RunOptions::default())
                .await
                .expect("connect");
            m.up(None, &Silent).await.map(|v| v.len())
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("join").expect("every runner succeeds");
    }
    assert_eq!(total, 5, "each migration applied by exactly one runner");
    let c = db.connect().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM counter", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 5);
}

/// A history table an older pgshift made (without the `inflight` and `unit_digests` columns)
/// is read as the current one is: `status` reports the same, and adds no column.
#[tokio::test]
async fn a_history_table_of_an_older_pgshift_reads_as_the_current_one() {
    let db = TestDb::new().await;
    let dir = basic_dir();
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    let summary = |status: pgshift_runner::Status| -> Vec<(String, EntryState, Option<String>)> {
        status
            .entries
            .into_iter()
            .map(|e| (e.version, e.state, e.applied_by))
            .collect()
    };
    let current = summary(m.status().await.expect("status"));
    assert_eq!(current.len(), 3);
    assert!(current
        .iter()
        .all(|(_, state, _)| *state == EntryState::Applied));
    let c = db.connect().await;
    c.batch_execute(
        "ALTER TABLE pgshift.migrations DROP COLUMN inflight, DROP COLUMN unit_digests",
    )
    .await
    .expect("an older table");
    let m = migrator(&db, dir.path()).await;
    assert_eq!(summary(m.status().await.expect("status")), current);
    let columns: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'pgshift.migrations'::regclass
              AND attname IN ('inflight', 'unit_digests') AND NOT attisdropped",
            &[],
        )
        .await
        .expect("columns")
        .get(0);
    assert_eq!(columns, 0, "status wrote nothing");
}

/// A migration run outside a transaction (here the author's own transactions) runs under
/// pgshift's timeouts: the first one of a run, one after an index built concurrently (whose
/// long timeouts are put back), and one after a migration that set its own for the session.
/// When the run ends, the session is back to the server's settings.
#[tokio::test]
async fn statements_outside_a_transaction_run_under_pgshifts_timeouts_and_the_session_is_reset() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = |key: &str| {
        format!(
            "BEGIN;\nINSERT INTO seen SELECT '{key}', current_setting('lock_timeout'), current_setting('statement_timeout');\nCOMMIT;\nBEGIN;\nSELECT 1;\nCOMMIT;\n"
        )
    };
    write(
        dir.path(),
        "20240101000000_seen.up.sql",
        "CREATE TABLE seen (k text, lock_timeout text, statement_timeout text);\n",
    );
    write(dir.path(), "20240102000000_first.up.sql", &seen("first"));
    write(
        dir.path(),
        "20240103000000_index.up.sql",
        "CREATE INDEX CONCURRENTLY seen_k ON seen (k);\n",
    );
    write(
        dir.path(),
        "20240104000000_after_index.up.sql",
        &seen("after index"),
    );
    write(
        dir.path(),
        "20240105000000_own.up.sql",
        "SET lock_timeout = '7s';\nSET statement_timeout = '8s';\n",
    );
    write(
        dir.path(),
        "20240106000000_after_own.up.sql",
        &seen("after own"),
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    let c = db.connect().await;
    let rows: Vec<(String, String, String)> = c
        .query(
            "SELECT k, lock_timeout, statement_timeout FROM seen ORDER BY k",
            &[],
        )
        .await
        .expect("seen")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected = |k: &str| (k.to_string(), "500ms".to_string(), "1h".to_string());
    assert_eq!(
        rows,
        vec![
            expected("after index"),
            expected("after own"),
            expected("first")
        ]
    );
    let session = m.connection();
    let show = |name: &'static str| async move {
        session
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .expect("show")
            .get::<_, String>(0)
    };
    assert_eq!(show("lock_timeout").await, "0");
    assert_eq!(show("statement_timeout").await, "0");
}

#[tokio::test]
async fn a_lock_timeout_is_retried_until_the_blocker_goes() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (id int);\n",
    );
    write(
        dir.path(),
        "20240102000000_col.up.sql",
        "ALTER TABLE t ADD COLUMN x int;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240101000000")), &Silent)
        .await
        .expect("up 1");

    let blocker = db.connect().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .expect("lock");
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        blocker.batch_execute("COMMIT").await.expect("commit");
        blocker
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let observer = move |e: &Event| {
        if let Event::LockRetry { attempt, .. } = e {
            sink.lock().expect("events").push(*attempt);
        }
    };
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let opts = RunOptions {
        lock_timeout: Duration::from_millis(100),
        // This test is about the retry; the lock-queue guard (tests/guard.rs) would wait for
        // the idle-in-transaction blocker instead of running into lock_timeout.
        guard_max_wait: Duration::ZERO,
        ..RunOptions::default()
    };
    let mut m = Migrator::connect(&db.url(), set, opts)
        .await
        .expect("connect");
    m.up(None, &observer)
        .await
        .expect("up completes once the blocker commits");
    let _ = release.await;
    assert!(
        !events.lock().expect("events").is_empty(),
        "at least one retry was reported"
    );
    let c = db.connect().await;
    let has: bool = c
        .query_one("SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 't' AND column_name = 'x')", &[])
        .await
        .expect("q")
        .get(0);
    assert!(has);
}

#[tokio::test]
async fn baseline_marks_without_running_and_adoption_reads_sqlx_history() {
    let db = TestDb::new().await;
    let dir = basic_dir();
    let mut m = migrator(&db, dir.path()).await;
    let marked = m
        .baseline(&v("20240102000000"), &Silent)
        .await
        .expect("baseline");
    assert_eq!(marked.len(), 2);
    m.up(None, &Silent).await.expect("up");
    assert_eq!(
        tables(&db).await,
        vec!["tags"],
        "baselined migrations did not run"
    );

    // A database sqlx migrated: pgshift adopts its history instead of re-running it.
    let db2 = TestDb::new().await;
    let sqlx_dir = tempfile::tempdir().expect("tempdir");
    write(
        sqlx_dir.path(),
        "1_first.sql",
        "CREATE TABLE first (id int);\n",
    );
    write(
        sqlx_dir.path(),
        "2_second.sql",
        "CREATE TABLE second (id int);\n",
    );
    let c = db2.connect().await;
    c.batch_execute(
        "CREATE TABLE first (id int);
         CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text, installed_on timestamptz DEFAULT now(),
             success boolean NOT NULL, checksum bytea, execution_time bigint);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'first', true, '\\x91e56efd5ea0cf6fefc5463c018d3bf87fedba8423ba802fca5b7093d8839e6f98b15fda6cb65298ecbacc8dec5e8c09', 1);",
    )
    .await
    .expect("fake sqlx history");
    let set = load(sqlx_dir.path(), Some(Format::Sqlx)).expect("load sqlx");
    let mut m = Migrator::connect(&db2.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let adopted = Arc::new(Mutex::new(0usize));
    let sink = adopted.clone();
    let observer = move |e: &Event| {
        if let Event::Adopted { count, .. } = e {
            *sink.lock().expect("adopted") = *count;
        }
    };
    let applied = m
        .up(None, &observer)
        .await
        .expect("up adopts then applies the rest");
    assert_eq!(applied, vec![v("2")]);
    assert_eq!(*adopted.lock().expect("adopted"), 1);
    let status = m.status().await.expect("status");
    assert_eq!(status.entries[0].state, EntryState::Adopted);
}

#[tokio::test]
async fn a_lock_timeout_inside_the_authors_own_transaction_is_not_retried_alone() {
    // The migration opens its own transaction and also runs CONCURRENTLY, so it runs
    // statement by statement. When the ALTER hits lock_timeout, the server rolls back the
    // author's whole transaction (CREATE TABLE a included). Retrying the ALTER alone would
    // run it outside any transaction and record the migration as applied without `a`.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (id int);\n",
    );
    write(
        dir.path(),
        "20240102000000_own.up.sql",
        "BEGIN;\nCREATE TABLE a (id int);\nALTER TABLE t ADD COLUMN x int;\nCOMMIT;\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240101000000")), &Silent)
        .await
        .expect("up 1");

    let blocker = db.connect().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .expect("lock");
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        blocker.batch_execute("COMMIT").await.expect("commit");
        blocker
    });
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let opts = RunOptions {
        lock_timeout: Duration::from_millis(100),
        guard_max_wait: Duration::ZERO,
        ..RunOptions::default()
    };
    let mut m = Migrator::connect(&db.url(), set, opts)
        .await
        .expect("connect");
    let first = m.up(None, &Silent).await;
    let _ = release.await;
    match first {
        Err(RunError::Statement(e)) => {
            assert_eq!(e.line, 3, "{e}");
            assert!(e.outcome.contains("BEGIN"), "{}", e.outcome);
        }
        other => panic!("expected the lock timeout to stop the run, got {other:?}"),
    }
    // The history rolled back with the author's transaction: the next run starts at BEGIN.
    m.up(None, &Silent).await.expect("up again");
    assert_eq!(tables(&db).await, vec!["a", "t"]);
}

#[tokio::test]
async fn a_half_finished_revert_resumes_after_a_fix_and_refuses_when_a_done_step_changed() {
    // The down runs statement by statement and stops after its first statement.
    let db = TestDb::new().await;
    let c = db.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_log.up.sql",
        "CREATE TABLE log (what text);\n",
    );
    let down = "20240101000000_log.down.sql";
    write(
        dir.path(),
        down,
        "-- pgshift:no-transaction\nINSERT INTO log VALUES ('reverted');\nDROP TABLE missing;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    assert!(m.down(DownTarget::Steps(1), &Silent).await.is_err());
    let count = || async {
        c.query_one("SELECT count(*) FROM log", &[])
            .await
            .expect("count")
            .get::<_, i64>(0)
    };

    // A done step edited: which steps ran can no longer be told, so nothing runs.
    write(
        dir.path(),
        down,
        "-- pgshift:no-transaction\nINSERT INTO log VALUES ('reverted twice');\nDROP TABLE IF EXISTS missing;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    let err = m
        .down(DownTarget::Steps(1), &Silent)
        .await
        .expect_err("a revert whose done step changed must stop");
    let text = err.to_string();
    assert!(text.contains(down), "{text}");
    assert!(text.contains("1 of 2"), "{text}");
    assert!(text.contains("pgshift resolve 20240101000000"), "{text}");
    assert_eq!(count().await, 1, "the INSERT ran again");

    // The failing statement fixed and one added after it: the revert resumes after the
    // INSERT it already did.
    write(
        dir.path(),
        down,
        "-- pgshift:no-transaction\nINSERT INTO log VALUES ('reverted');\nDROP TABLE IF EXISTS missing;\nUPDATE log SET what = what || '!';\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.down(DownTarget::Steps(1), &Silent)
        .await
        .expect("the fixed down resumes");
    assert_eq!(count().await, 1, "the INSERT ran again");
    let what: String = c
        .query_one("SELECT what FROM log", &[])
        .await
        .expect("q")
        .get(0);
    assert_eq!(what, "reverted!");
    assert!(m.status().await.expect("status").entries[0].state == EntryState::Pending);
}

/// The history record and the COMMIT are sent together: when the record fails, the
/// migration's work is rolled back with it, and the next run applies the migration once.
#[tokio::test]
async fn a_history_record_that_fails_rolls_the_migration_back() {
    let db = TestDb::new().await;
    let dir = basic_dir();
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240101000000")), &Silent)
        .await
        .expect("first");
    let c = db.connect().await;
    c.batch_execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN RAISE EXCEPTION 'history refused for %', NEW.version; END$$;
         CREATE TRIGGER refuse BEFORE INSERT ON pgshift.migrations
           FOR EACH ROW WHEN (NEW.version = '20240102000000') EXECUTE FUNCTION refuse();",
    )
    .await
    .expect("trigger");
    let err = m
        .up(Some(&v("20240102000000")), &Silent)
        .await
        .expect_err("the record fails");
    assert!(
        format!("{err:?}").contains("history refused for 20240102000000"),
        "{err:?}"
    );
    assert_eq!(tables(&db).await, vec!["users"]);
    c.batch_execute("DROP TRIGGER refuse ON pgshift.migrations")
        .await
        .expect("drop trigger");
    let applied = m.up(None, &Silent).await.expect("again");
    assert_eq!(applied, vec![v("20240102000000"), v("20240103000000")]);
    assert_eq!(tables(&db).await, vec!["posts", "tags", "users"]);
    let tags: i64 = c
        .query_one("SELECT count(*) FROM tags", &[])
        .await
        .expect("tags")
        .get(0);
    assert_eq!(tags, 2);
}

/// The runner's own statements prepared once per session (the in-flight record of a statement
/// run outside a transaction) are prepared again after a migration deallocates them.
#[tokio::test]
async fn prepared_statements_survive_a_migration_that_deallocates_them() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (id int, a int, b int);\n",
    );
    write(
        dir.path(),
        "20240102000000_a.up.sql",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\n",
    );
    write(
        dir.path(),
        "20240103000000_deallocate.up.sql",
        "DEALLOCATE ALL;\n",
    );
    write(
        dir.path(),
        "20240104000000_b.up.sql",
        "CREATE INDEX CONCURRENTLY t_b ON t (b);\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    let applied = m.up(None, &Silent).await.expect("up");
    assert_eq!(applied.len(), 4);
    let c = db.connect().await;
    let valid: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_index WHERE indexrelid IN ('t_a'::regclass, 't_b'::regclass) AND indisvalid",
            &[],
        )
        .await
        .expect("indexes")
        .get(0);
    assert_eq!(valid, 2);
}

/// A migration that empties `search_path` (every `pg_dump` baseline does, with
/// `set_config('search_path', '', false)`) leaves the next migration of the same run with the
/// session's own: the files run the same in one `up` as in one `up` each.
#[tokio::test]
async fn a_search_path_one_migration_sets_does_not_reach_the_next() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_dump.up.sql",
        "SELECT pg_catalog.set_config('search_path', '', false);\nCREATE TABLE public.t (x int);\n",
    );
    write(
        dir.path(),
        "20240102000000_uses_t.up.sql",
        "INSERT INTO t VALUES (1);\n",
    );
    write(
        dir.path(),
        "20240103000000_sets_it.up.sql",
        "SET search_path TO pg_catalog;\n",
    );
    write(
        dir.path(),
        "20240104000000_uses_t_again.up.sql",
        "INSERT INTO t VALUES (2);\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    let ran = m.up(None, &Silent).await.expect("one up runs all four");
    assert_eq!(ran.len(), 4);
    let c = db.connect().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .expect("t")
        .get(0);
    assert_eq!(n, 2);
}

/// With Prisma's `?schema=NAME`, the schema the session connected with is what the next
/// migration gets back after one that changed `search_path`.
#[tokio::test]
async fn the_urls_schema_is_what_the_next_migration_gets_back() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute("CREATE SCHEMA other")
        .await
        .expect("schema");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_elsewhere.up.sql",
        "SET search_path TO public;\nCREATE TABLE p (x int);\n",
    );
    write(
        dir.path(),
        "20240102000000_here.up.sql",
        "CREATE TABLE q (x int);\n",
    );
    let base = db.url();
    let text = base.redacted();
    let separator = if text.contains('?') { '&' } else { '?' };
    let url = pgshift_db::url::DatabaseUrl::parse(&format!("{text}{separator}schema=other"))
        .expect("url")
        .with_password(base.password());
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&url, set, RunOptions::default())
        .await
        .expect("connect");
    assert_eq!(m.up(None, &Silent).await.expect("up").len(), 2);
    let schemas: Vec<String> = c
        .query(
            "SELECT relname::text || ' in ' || relnamespace::regnamespace::text FROM pg_class WHERE relname IN ('p', 'q') ORDER BY 1",
            &[],
        )
        .await
        .expect("q")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(schemas, ["p in public", "q in other"]);
}

/// A migration sent whole, its history record's values written into the text: the history
/// holds exactly the values a bound statement would (quotes and backslashes in the folder's
/// name and the down SQL), a statement that ends in a comment ends there, and an error names
/// the statement's own line and column, also a syntax error only the server finds (which stops
/// the whole text before anything of it runs) and an error in a first statement sent after
/// the guard's look.
#[tokio::test]
async fn a_migration_sent_as_one_message_records_exact_values_and_points_at_its_errors() {
    let db = TestDb::new().await;
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("it's a \\ folder");
    std::fs::create_dir(&dir).expect("mkdir");
    write(
        &dir,
        "20240101000000_quotes.up.sql",
        "-- the table\nCREATE TABLE q (id int) -- it's the end, \\ and no newline",
    );
    write(
        &dir,
        "20240101000000_quotes.down.sql",
        "DROP TABLE q; -- it's \\ gone\n",
    );
    let mut m = migrator(&db, &dir).await;
    m.up(None, &Silent).await.expect("up");
    assert_eq!(tables(&db).await, vec!["q"]);
    let c = db.connect().await;
    let row = c
        .query_one(
            "SELECT path, down_sql, checksum, state, units, applied_by, current_user::text
               FROM pgshift.migrations",
            &[],
        )
        .await
        .expect("row");
    let set = load(&dir, Some(Format::Pgshift)).expect("load");
    let written = &set.migrations[0];
    assert_eq!(
        row.get::<_, String>(0),
        written.up.path.display().to_string()
    );
    assert!(row.get::<_, String>(0).contains("it's a \\ folder"));
    assert_eq!(row.get::<_, Option<String>>(1), written.recorded_down());
    assert!(row
        .get::<_, Option<String>>(1)
        .is_some_and(|d| d.contains("it's \\ gone")));
    assert_eq!(row.get::<_, String>(2), written.checksum());
    assert_eq!(row.get::<_, String>(3), "applied");
    assert_eq!(row.get::<_, i32>(4), 1);
    assert!(row
        .get::<_, String>(5)
        .starts_with(&row.get::<_, String>(6)));

    // A runtime error: the statement's own line and column, not the text's.
    write(
        &dir,
        "20240102000000_broken.up.sql",
        "-- copies\n\nINSERT INTO q\n  SELECT id FROM nowhere;\n",
    );
    let mut m = migrator(&db, &dir).await;
    match m.up(None, &Silent).await.expect_err("fails") {
        RunError::Statement(e) => {
            assert_eq!((e.line, e.column, e.sqlstate.as_str()), (4, 18, "42P01"));
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
    std::fs::remove_file(dir.join("20240102000000_broken.up.sql")).expect("rm");

    // A syntax error the server finds (pgshift's parser knows PostgreSQL 18's grammar): the
    // statement's line and column, and nothing of the migration ran.
    let server: i32 = c
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .expect("version")
        .get(0);
    if server < 180_000 {
        write(
            &dir,
            "20240103000000_virtual.up.sql",
            "\nCREATE TABLE t2 (a int,\n  b int GENERATED ALWAYS AS (a * 2) VIRTUAL);\n",
        );
        let mut m = migrator(&db, &dir).await;
        match m.up(None, &Silent).await.expect_err("fails") {
            RunError::Statement(e) => {
                assert_eq!((e.line, e.column, e.sqlstate.as_str()), (3, 37, "42601"));
                assert!(e.path.ends_with("20240103000000_virtual.up.sql"));
            }
            other => panic!("expected a statement error, got {other:?}"),
        }
        std::fs::remove_file(dir.join("20240103000000_virtual.up.sql")).expect("rm");
    }
    // A migration of several statements: its first goes in one text with the guard's look at
    // `q` (made by an earlier run); an error in it is still its own line and column.
    write(
        &dir,
        "20240104000000_trigger.up.sql",
        "CREATE TRIGGER tg BEFORE UPDATE ON q FOR EACH ROW\n  WHEN (NEW.nope > 0) EXECUTE FUNCTION suppress_redundant_updates_trigger();\nCREATE TABLE never (id int);\n",
    );
    let mut m = migrator(&db, &dir).await;
    match m.up(None, &Silent).await.expect_err("fails") {
        RunError::Statement(e) => {
            assert_eq!((e.line, e.column, e.sqlstate.as_str()), (2, 9, "42703"));
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
    std::fs::remove_file(dir.join("20240104000000_trigger.up.sql")).expect("rm");
    assert_eq!(
        tables(&db).await,
        vec!["q"],
        "nothing of the failures stayed"
    );
    let rows: i64 = c
        .query_one("SELECT count(*) FROM pgshift.migrations", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 1);

    // The revert is one message too: the row goes with the table.
    let mut m = migrator(&db, &dir).await;
    m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    assert!(tables(&db).await.is_empty());
    let rows: i64 = c
        .query_one("SELECT count(*) FROM pgshift.migrations", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 0);
}

/// What the server is running while a migration of one statement runs is the whole migration:
/// one text with its `BEGIN`, timeouts, statement and history record (and `COMMIT`, past what
/// `pg_stat_activity` shows of a long text).
#[tokio::test]
async fn a_migration_of_one_statement_goes_to_the_server_as_one_message() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_slow.up.sql",
        "SELECT pg_sleep(1.5);\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    let watcher = db.connect().await;
    let running = async {
        for _ in 0..150 {
            let seen = watcher
                .query(
                    "SELECT query FROM pg_stat_activity
                      WHERE query LIKE '%pg_sleep(1.5)%' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .expect("activity");
            if let Some(row) = seen.first() {
                return row.get::<_, String>(0);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        String::new()
    };
    let (applied, query) = tokio::join!(m.up(None, &Silent), running);
    applied.expect("up");
    assert!(
        query.starts_with("BEGIN; SET LOCAL lock_timeout"),
        "{query}"
    );
    assert!(
        query.contains("INSERT INTO pgshift.migrations") && query.contains("'20240101000000'"),
        "{query}"
    );
}
