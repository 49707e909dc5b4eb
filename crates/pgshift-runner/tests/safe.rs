//! Safe execution against a real PostgreSQL: automatic safe rewrites end in exactly the
//! schema the author wrote, resume at the right step, and `CREATE INDEX CONCURRENTLY` waiting
//! for an old snapshot neither loops forever nor leaves an INVALID index.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgshift_db::testing::TestDb;
use pgshift_runner::{EntryState, Event, Migrator, RunError, RunOptions, Silent};
use pgshift_source::{load, Format};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

async fn migrator(db: &TestDb, dir: &Path, options: RunOptions) -> Migrator {
    let set = load(dir, Some(Format::Pgshift)).expect("load");
    Migrator::connect(&db.url(), set, options)
        .await
        .expect("connect")
}

/// `up` of the folder's first migration (the setup) on a migrator of its own, then a
/// migrator for the rest: the setup's tables are then tables that were there before the run,
/// as in production, so the safe rewrites apply to them (the statements on a table the same
/// `up` made run as written).
async fn after_setup(db: &TestDb, dir: &Path, options: RunOptions) -> Migrator {
    let set = load(dir, Some(Format::Pgshift)).expect("load");
    let setup = set.migrations[0].version.clone();
    Migrator::connect(&db.url(), set, options.clone())
        .await
        .expect("connect")
        .up(Some(&setup), &Silent)
        .await
        .expect("setup");
    migrator(db, dir, options).await
}

/// The rewritten form whatever the tables' size: these tests' tables are small, and a
/// migration on small free tables would otherwise run as written
/// (`a_migration_on_small_free_tables_runs_as_written_and_otherwise_rewritten`).
fn rewritten() -> RunOptions {
    RunOptions {
        small_tables_as_written: false,
        ..RunOptions::default()
    }
}

/// Collects events for assertions.
#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<Event>>>);

impl Log {
    fn observer(&self) -> impl Fn(&Event) + Send + Sync + '_ {
        move |e: &Event| self.0.lock().expect("log").push(e.clone())
    }
    fn rewrites(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("log")
            .iter()
            .filter_map(|e| match e {
                Event::Rewrite { sql, .. } => Some(sql.clone()),
                _ => None,
            })
            .collect()
    }
    fn lock_retries(&self) -> usize {
        self.0
            .lock()
            .expect("log")
            .iter()
            .filter(|e| matches!(e, Event::LockRetry { .. }))
            .count()
    }
}

/// Constraints, indexes and NOT NULL columns of the public schema, as comparable text.
async fn schema_state(db: &TestDb) -> Vec<String> {
    let c = db.connect().await;
    let mut out = Vec::new();
    for sql in [
        "SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || contype::text || ' validated=' || convalidated || ' ' || pg_get_constraintdef(oid)
           FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1",
        "SELECT 'index ' || c.relname || ' valid=' || i.indisvalid || ' ' || pg_get_indexdef(i.indexrelid)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1",
        "SELECT 'column ' || attrelid::regclass::text || '.' || attname || ' notnull=' || attnotnull
           FROM pg_attribute WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r')
            AND attnum > 0 AND NOT attisdropped ORDER BY 1",
    ] {
        for row in c.query(sql, &[]).await.expect("schema query") {
            out.push(row.get(0));
        }
    }
    out
}

const SETUP: &str = "CREATE TABLE users (id int PRIMARY KEY);
INSERT INTO users SELECT g FROM generate_series(1, 50) g;
CREATE TABLE orders (id int, user_id int, a int, code text, old_idx int);
INSERT INTO orders SELECT g, g % 50 + 1, g, 'c' || g, g FROM generate_series(1, 500) g;
CREATE INDEX orders_old_idx ON orders (old_idx);
";

const CHANGES: &str = "CREATE INDEX orders_a_idx ON orders (a);
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE orders ADD CHECK (a > 0);
ALTER TABLE orders ALTER COLUMN a SET NOT NULL;
ALTER TABLE orders ADD UNIQUE (code);
ALTER TABLE orders ADD CONSTRAINT orders_user_code UNIQUE NULLS NOT DISTINCT (user_id, code) INCLUDE (a);
ALTER TABLE orders ADD PRIMARY KEY (id);
DROP INDEX orders_old_idx;
REINDEX INDEX orders_a_idx;
CREATE TABLE audit (id int, note text);
CREATE INDEX audit_id_idx ON audit (id);
";

fn changes_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "20240101000000_setup.up.sql", SETUP);
    write(dir.path(), "20240102000000_changes.up.sql", CHANGES);
    dir
}

#[tokio::test]
async fn safe_rewrites_end_in_exactly_the_schema_the_author_wrote() {
    let dir = changes_dir();

    let exact_db = TestDb::new().await;
    let exact = RunOptions {
        exact: true,
        ..rewritten()
    };
    let exact_log = Log::default();
    after_setup(&exact_db, dir.path(), exact)
        .await
        .up(None, &exact_log.observer())
        .await
        .expect("up --exact");
    assert!(exact_log.rewrites().is_empty(), "--exact rewrites nothing");

    let safe_db = TestDb::new().await;
    let safe_log = Log::default();
    let mut m = after_setup(&safe_db, dir.path(), rewritten()).await;
    m.up(None, &safe_log.observer()).await.expect("up");

    let rewrites = safe_log.rewrites();
    for expected in [
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_a_idx",
        "FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
        "VALIDATE CONSTRAINT \"orders_user_fk\"",
        "ADD CONSTRAINT orders_a_check CHECK (a > 0) NOT VALID",
        "CHECK (\"a\" IS NOT NULL) NOT VALID",
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"orders_code_key\"",
        "ADD CONSTRAINT \"orders_pkey\" PRIMARY KEY USING INDEX \"orders_pkey\"",
        "REINDEX INDEX CONCURRENTLY \"orders_a_idx\"",
    ] {
        assert!(
            rewrites.iter().any(|r| r.contains(expected)),
            "no rewrite containing {expected:?} in {rewrites:#?}"
        );
    }
    assert!(
        !rewrites.iter().any(|r| r.contains("audit")),
        "a table created in the same migration is left alone: {rewrites:#?}"
    );
    assert!(
        !rewrites.iter().any(|r| r.contains("orders_old_idx")),
        "a small index of a table nobody else uses is dropped as written: {rewrites:#?}"
    );

    let (a, b) = (schema_state(&exact_db).await, schema_state(&safe_db).await);
    assert_eq!(a, b, "same end state with and without rewrites");
    assert!(
        a.iter()
            .any(|l| l.contains("orders_user_fk f validated=true")),
        "{a:#?}"
    );

    let status = m.status().await.expect("status");
    assert!(status
        .entries
        .iter()
        .all(|e| e.state == EntryState::Applied));
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let c = safe_db.connect().await;
    let recorded: String = c
        .query_one(
            "SELECT checksum FROM pgshift.migrations WHERE version = '20240102000000'",
            &[],
        )
        .await
        .expect("history")
        .get(0);
    assert_eq!(
        recorded,
        set.migrations[1].checksum(),
        "the checksum is the file's"
    );
}

#[tokio::test]
async fn a_rewritten_migration_resumes_at_the_failed_step() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_setup.up.sql",
        "CREATE TABLE t (id int, a int, b int);\nINSERT INTO t SELECT g, g, CASE WHEN g = 7 THEN NULL ELSE g END FROM generate_series(1, 100) g;\n",
    );
    write(
        dir.path(),
        "20240102000000_tighten.up.sql",
        "ALTER TABLE t ADD CONSTRAINT t_a_positive CHECK (a > 0);\nCREATE INDEX t_a_idx ON t (a);\nALTER TABLE t ALTER COLUMN b SET NOT NULL;\n",
    );
    let mut m = after_setup(&db, dir.path(), rewritten()).await;
    let err = m.up(None, &Silent).await.expect_err("b has a NULL");
    match &err {
        RunError::Statement(s) => {
            assert_eq!(s.sqlstate, "23514", "{err}");
            assert_eq!(s.line, 3, "points at the SET NOT NULL: {err}");
            assert!(s.rewrite.is_some(), "names the rewritten step: {err}");
        }
        other => panic!("expected a statement error, got {other}"),
    }
    let status = m.status().await.expect("status");
    let entry = &status.entries[1];
    assert_eq!(entry.state, EntryState::Partial);
    // The look for rows breaking t_a_positive, ADD CHECK NOT VALID, VALIDATE, CREATE INDEX
    // CONCURRENTLY, ADD CHECK (b IS NOT NULL) NOT VALID have committed; the VALIDATE of the
    // NOT NULL check failed.
    assert_eq!(entry.progress, Some((5, 7)), "{status:#?}");

    let c = db.connect().await;
    c.batch_execute("UPDATE t SET b = 0 WHERE b IS NULL")
        .await
        .expect("fix the data");
    // Had the earlier steps run again, ADD CONSTRAINT would fail with "already exists".
    m.up(None, &Silent).await.expect("resume");
    let state = schema_state(&db).await;
    assert!(
        state.iter().any(|l| l == "column t.b notnull=true"),
        "{state:#?}"
    );
    assert!(
        !state.iter().any(|l| l.contains("t_b_not_null_pgshift")),
        "the helper CHECK is gone: {state:#?}"
    );
    assert!(
        state.iter().any(|l| l.contains("t_a_idx valid=true")),
        "{state:#?}"
    );
}

#[tokio::test]
async fn an_old_snapshot_makes_create_index_concurrently_give_up_without_an_invalid_index() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = db.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 1000); CREATE TABLE other (x int);",
        )
        .await
        .expect("setup");
    write(
        dir.path(),
        "20240101000000_index.up.sql",
        "CREATE INDEX t_a_idx ON t (a);\n",
    );
    // An old snapshot, on another table: CREATE INDEX CONCURRENTLY must wait for it before
    // it can mark the index valid.
    let holder = db.connect().await;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM other;")
        .await
        .expect("snapshot");

    let options = RunOptions {
        concurrent_lock_timeout: Duration::from_millis(300),
        lock_retry_budget: Duration::from_secs(2),
        lock_retry_initial_delay: Duration::from_millis(100),
        ..rewritten()
    };
    let log = Log::default();
    let mut m = migrator(&db, dir.path(), options).await;
    let err = m
        .up(None, &log.observer())
        .await
        .expect_err("the snapshot outlives the budget");
    assert!(matches!(err, RunError::LockBudget { .. }), "{err}");
    assert!(log.lock_retries() >= 1, "each timeout was retried first");
    let invalid: i64 = setup
        .query_one(
            "SELECT count(*) FROM pg_index WHERE NOT indisvalid AND indrelid = 't'::regclass",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(invalid, 0, "no INVALID index is left behind");

    holder.batch_execute("COMMIT").await.expect("release");
    m.up(None, &Silent)
        .await
        .expect("up after the snapshot ends");
    let valid: bool = setup
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a_idx'::regclass",
            &[],
        )
        .await
        .expect("index")
        .get(0);
    assert!(valid);
}

/// The constraints of table `t`: name, type, validated, definition.
async fn constraints_of_t(conn: &pgshift_db::tokio_postgres::Client) -> Vec<String> {
    conn.query(
        "SELECT conname || ' ' || contype::text || ' validated=' || convalidated || ' ' || pg_get_constraintdef(oid)
           FROM pg_constraint WHERE conrelid = 'public.t'::regclass ORDER BY 1",
        &[],
    )
    .await
    .expect("constraints")
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

/// `SET NOT NULL` runs as a validated helper CHECK first; on PostgreSQL 18, where the column's
/// NOT NULL is a constraint named `<table>_<column>_not_null`, the helper must neither collide
/// with an existing one ("already exists" on a column that has one) nor take the name, so the
/// end state has exactly the names the statement as written gives — a later migration that
/// renames the constraint by name works. Checked against `--exact` on every listed server.
#[tokio::test]
async fn set_not_null_leaves_the_names_the_statement_as_written_leaves_on_every_listed_server() {
    for pg_bin in pgshift_db::testing::listed_servers() {
        let (cluster, major, on) = pgshift_db::testing::start_cluster(pg_bin).await;

        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = vec![
            (
                "setup",
                "CREATE TABLE t (a int, b int NOT NULL, c int);
                 INSERT INTO t SELECT g, g, g FROM generate_series(1, 1000) g;",
            ),
            // A nullable column: 18 names its new NOT NULL constraint t_a_not_null.
            ("a_not_null", "ALTER TABLE t ALTER COLUMN a SET NOT NULL;"),
            // Already NOT NULL: on 18 the column has the constraint t_b_not_null.
            ("b_not_null", "ALTER TABLE t ALTER COLUMN b SET NOT NULL;"),
        ];
        if major >= 18 {
            files.extend([
                // A named NOT NULL constraint, not yet validated: SET NOT NULL validates it.
                (
                    "c_named",
                    "ALTER TABLE t ADD CONSTRAINT c_must_be_set NOT NULL c NOT VALID;",
                ),
                ("c_not_null", "ALTER TABLE t ALTER COLUMN c SET NOT NULL;"),
                // Renaming by the name the statement as written gives.
                (
                    "rename",
                    "ALTER TABLE t RENAME CONSTRAINT t_a_not_null TO t_a_required;",
                ),
            ]);
        }
        for (i, (name, sql)) in files.iter().enumerate() {
            write(
                dir.path(),
                &format!("2024010100{:04}_{name}.up.sql", i + 1),
                sql,
            );
        }
        let set = load(dir.path(), Some(Format::Pgshift)).expect("load");

        let admin = pgshift_db::connect(&cluster.url()).await.expect("admin");
        let mut states = Vec::new();
        for (db, exact) in [("rewritten", false), ("as_written", true)] {
            admin
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .await
                .expect("create database");
            let url = cluster.url().with_database(db);
            let log = Log::default();
            let options = RunOptions {
                exact,
                ..rewritten()
            };
            // The setup in a command of its own: `t` is then a table that was there before.
            let setup = set.migrations[0].version.clone();
            Migrator::connect(&url, set.clone(), options.clone())
                .await
                .expect("connect")
                .up(Some(&setup), &Silent)
                .await
                .expect("setup");
            let mut m = Migrator::connect(&url, set.clone(), options)
                .await
                .expect("connect");
            m.up(None, &log.observer())
                .await
                .unwrap_or_else(|e| panic!("{on}, exact={exact}: {e}"));
            if !exact {
                assert!(
                    log.rewrites()
                        .iter()
                        .any(|s| s.contains("t_a_not_null_pgshift")),
                    "{on}: the rewrite ran: {:?}",
                    log.rewrites()
                );
            }
            let conn = pgshift_db::connect(&url).await.expect("connect");
            states.push(constraints_of_t(&conn).await);
        }
        assert_eq!(states[0], states[1], "{on}: rewritten vs as written");
        if major >= 18 {
            assert_eq!(
                states[0],
                vec![
                    "c_must_be_set n validated=true NOT NULL c",
                    "t_a_required n validated=true NOT NULL a",
                    "t_b_not_null n validated=true NOT NULL b",
                ],
                "{on}"
            );
        } else {
            assert!(states[0].is_empty(), "{on}: {:?}", states[0]);
        }
    }
}

/// Rows that break a constraint a migration adds are found before the constraint is: the
/// migration fails with examples and leaves nothing (no NOT VALID constraint, no index); a
/// cleanup earlier in the same file counts; `--exact` runs the statement as written.
#[tokio::test]
async fn rows_that_break_an_added_constraint_are_reported_with_examples_and_nothing_changes() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE parents (id int PRIMARY KEY);
         INSERT INTO parents SELECT generate_series(1, 10);
         CREATE TABLE t (id int, qty int, email text, parent_id int);
         INSERT INTO t SELECT g, g - 3, 'e' || (g % 8), CASE WHEN g > 12 THEN g ELSE g % 10 + 1 END
           FROM generate_series(1, 20) g;",
    )
    .await
    .unwrap();
    let before = schema_state(&db).await;
    let cases = [
        (
            "ALTER TABLE t ADD CONSTRAINT qty_positive CHECK (qty > 0);",
            vec!["rows already in t break CHECK constraint qty_positive (qty > 0) (3 found)", "\"qty\":-2"],
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT t_email_key UNIQUE (email);",
            vec!["rows already in t break UNIQUE t_email_key (email) (more than 5 found)", "(email) = (e1) in 3 rows"],
        ),
        (
            "CREATE UNIQUE INDEX t_email_idx ON t (email);",
            vec!["rows already in t break UNIQUE t_email_idx (email)"],
        ),
        (
            "ALTER TABLE t ADD PRIMARY KEY (parent_id);",
            vec!["rows already in t break PRIMARY KEY t_pkey (parent_id) (2 found)", "(parent_id) = (2) in 2 rows"],
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT t_parent_fkey FOREIGN KEY (parent_id) REFERENCES parents;",
            vec!["rows already in t break FOREIGN KEY t_parent_fkey (parent_id) REFERENCES parents (id) (more than 5 found)", "(parent_id) = (13) not in parents"],
        ),
    ];
    for (i, (sql, expected)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &format!("2026010100000{i}_add.up.sql"),
            &format!("{sql}\n"),
        );
        let mut m = migrator(&db, dir.path(), rewritten()).await;
        let err = m.up(None, &Silent).await.expect_err(sql);
        let shown = format!("{err}");
        for e in expected {
            assert!(shown.contains(e), "{sql}: `{e}` not in:\n{shown}");
        }
        assert!(shown.contains("for example:"), "{shown}");
        assert_eq!(schema_state(&db).await, before, "{sql} left something");
        c.batch_execute("DROP SCHEMA pgshift CASCADE")
            .await
            .unwrap();
    }
    // A NULL in a primary key column is reported as such.
    c.batch_execute("UPDATE t SET parent_id = NULL WHERE id = 1")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "20260102000000_pk.up.sql",
        "ALTER TABLE t ADD PRIMARY KEY (parent_id);\n",
    );
    let mut m = migrator(&db, dir.path(), rewritten()).await;
    let err = m.up(None, &Silent).await.expect_err("NULL key");
    assert!(
        err.to_string().contains("a primary key cannot be NULL"),
        "{err}"
    );
    c.batch_execute("DROP SCHEMA pgshift CASCADE")
        .await
        .unwrap();

    // A cleanup before the constraint, in the same file, is seen by the look.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "20260103000000_clean_then_check.up.sql",
        "UPDATE t SET qty = 1 WHERE qty <= 0;\nDELETE FROM t WHERE parent_id NOT IN (SELECT id FROM parents) OR parent_id IS NULL;\nALTER TABLE t ADD CONSTRAINT qty_positive CHECK (qty > 0);\nALTER TABLE t ADD CONSTRAINT t_parent_fkey FOREIGN KEY (parent_id) REFERENCES parents (id);\n",
    );
    let mut m = migrator(&db, dir.path(), rewritten()).await;
    m.up(None, &Silent).await.expect("clean rows pass");
    let state = schema_state(&db).await.join("\n");
    assert!(
        state.contains("qty_positive c validated=true CHECK ((qty > 0))"),
        "{state}"
    );
    assert!(state.contains("t_parent_fkey f validated=true"), "{state}");
}

/// The look for rows that break a constraint holds no lock but its read's: writers of the
/// table go on while it scans (in the constraint's own transaction, the lock-queue guard would
/// hold the constraint's ACCESS EXCLUSIVE lock during the scan).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_look_before_a_constraint_blocks_no_writer() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, qty int);
         INSERT INTO t SELECT g, g FROM generate_series(1, 400) g;",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The expression sleeps a little per row: the look takes a while, long enough to watch.
    write(
        dir.path(),
        "20260101000000_check.up.sql",
        "ALTER TABLE t ADD CONSTRAINT qty_positive CHECK (qty > 0 AND pg_sleep(0.002) IS NOT NULL);\n",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let held = Arc::new(Mutex::new(Vec::<String>::new()));
    let looks = Arc::new(Mutex::new(0u32));
    let sampler = {
        let (url, stop, held, looks) = (db.url(), stop.clone(), held.clone(), looks.clone());
        tokio::spawn(async move {
            let c = pgshift_db::connect(&url).await.expect("sampler");
            c.batch_execute("SET application_name = 'sampler'")
                .await
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let rows = c
                    .query(
                        "SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                          WHERE a.datname = current_database() AND a.application_name = 'pgshift'
                            AND a.query LIKE '%DO $pgshift_rows$%' AND l.relation = 't'::regclass",
                        &[],
                    )
                    .await
                    .expect("sample");
                if !rows.is_empty() {
                    *looks.lock().unwrap() += 1;
                }
                held.lock()
                    .unwrap()
                    .extend(rows.iter().map(|r| r.get::<_, String>(0)));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut m = migrator(&db, dir.path(), rewritten()).await;
    m.up(None, &Silent).await.expect("up");
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    assert!(*looks.lock().unwrap() > 5, "the look was watched");
    let held = held.lock().unwrap().clone();
    assert!(
        held.iter().all(|m| m == "AccessShareLock"),
        "the look held {held:?}"
    );
}

const PARTITIONED_SETUP: &str = "CREATE TABLE users (id int PRIMARY KEY);
INSERT INTO users SELECT g FROM generate_series(1, 50) g;
CREATE TABLE orders (id int NOT NULL, region int NOT NULL, user_id int, a int, code text, old_idx int)
    PARTITION BY LIST (region);
CREATE TABLE orders_1 PARTITION OF orders FOR VALUES IN (1);
CREATE TABLE orders_2 PARTITION OF orders FOR VALUES IN (2, 3) PARTITION BY LIST (region);
CREATE TABLE orders_2a PARTITION OF orders_2 FOR VALUES IN (2);
CREATE TABLE orders_2b PARTITION OF orders_2 FOR VALUES IN (3);
INSERT INTO orders SELECT g, 1 + g % 3, g % 50 + 1, g, 'c' || g, g FROM generate_series(1, 600) g;
CREATE INDEX orders_old_idx ON orders (old_idx);
";

const PARTITIONED_CHANGES: &str = "CREATE INDEX orders_a_idx ON orders (a);
CREATE INDEX ON orders (a);
CREATE UNIQUE INDEX ON orders (code, region);
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE orders ADD CHECK (a > 0);
ALTER TABLE orders ALTER COLUMN a SET NOT NULL;
ALTER TABLE orders ADD UNIQUE (code, region);
ALTER TABLE orders ADD CONSTRAINT orders_code_inc UNIQUE NULLS NOT DISTINCT (code, region) INCLUDE (a);
ALTER TABLE orders ADD PRIMARY KEY (id, region);
DROP INDEX orders_old_idx;
";

#[tokio::test]
async fn on_a_partitioned_table_the_safe_rewrites_work_per_partition_and_end_in_the_written_schema()
{
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "20240101000000_setup.up.sql", PARTITIONED_SETUP);
    write(
        dir.path(),
        "20240102000000_changes.up.sql",
        PARTITIONED_CHANGES,
    );

    let exact_db = TestDb::new().await;
    let exact = RunOptions {
        exact: true,
        ..rewritten()
    };
    after_setup(&exact_db, dir.path(), exact)
        .await
        .up(None, &Silent)
        .await
        .expect("up --exact");

    let safe_db = TestDb::new().await;
    let safe_log = Log::default();
    after_setup(&safe_db, dir.path(), rewritten())
        .await
        .up(None, &safe_log.observer())
        .await
        .expect("up");
    let rewrites = safe_log.rewrites();
    let major: i32 = safe_db
        .connect()
        .await
        .query_one(
            "SELECT current_setting('server_version_num')::int / 10000",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // No index is built on a partitioned table, concurrently or not: each leaf's is built
    // concurrently and attached; no foreign key is added NOT VALID to one before 18 (18 can).
    let fk = if major >= 18 {
        "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID"
    } else {
        "ALTER TABLE public.orders_2a ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID"
    };
    for expected in [
        "CREATE INDEX IF NOT EXISTS orders_a_idx ON ONLY orders",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_1_a_idx ON public.orders_1",
        "ALTER INDEX \"orders_a_idx\" ATTACH PARTITION \"public\".\"orders_2_a_idx\"",
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"orders_2b_code_region_key\" ON \"public\".\"orders_2b\"",
        "ADD CONSTRAINT \"orders_1_pkey\" PRIMARY KEY USING INDEX \"orders_1_pkey\"",
        fk,
    ] {
        assert!(
            rewrites.iter().any(|r| r.contains(expected)),
            "no rewrite containing {expected:?} in {rewrites:#?}"
        );
    }
    // A partitioned table's index is dropped as written: PostgreSQL cannot drop it
    // concurrently (and the drop reads no row).
    assert!(
        !rewrites.iter().any(|r| r.contains("CONCURRENTLY")
            && (r.contains(" orders ") || r.contains("orders_old_idx"))),
        "{rewrites:#?}"
    );
    let (a, b) = (schema_state(&exact_db).await, schema_state(&safe_db).await);
    assert_eq!(a, b, "same end state with and without rewrites");
    assert!(
        b.iter()
            .all(|l| !l.contains("valid=false") && !l.contains("validated=false")),
        "{b:#?}"
    );
    assert!(
        b.iter()
            .any(|l| l.contains("index orders_2b_code_region_key valid=true")),
        "{b:#?}"
    );
}

/// A UNIQUE constraint over rows that first need de-duplication, added while the application
/// writes: the look reports the duplicates with examples, nothing of the constraint is left,
/// and no write of the application failed or waited long.
#[tokio::test]
async fn duplicates_found_while_the_application_writes_are_reported_and_change_nothing() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE users (id bigserial PRIMARY KEY, email text);
         INSERT INTO users (email) SELECT 'u' || (g % 40000) || '@x' FROM generate_series(1, 50000) g;",
    )
    .await
    .unwrap();
    let before = schema_state(&db).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (url, stop) = (db.url(), stop.clone());
        tokio::spawn(async move {
            let w = pgshift_db::connect(&url).await.expect("writer");
            let (mut n, mut slowest) = (0u64, Duration::ZERO);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = std::time::Instant::now();
                w.batch_execute("INSERT INTO users (email) VALUES ('new@x'); UPDATE users SET email = email WHERE id = 7")
                    .await
                    .expect("the application's write");
                slowest = slowest.max(t.elapsed());
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (n, slowest)
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "20260101000000_unique_email.up.sql",
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);\n",
    );
    let mut m = migrator(&db, dir.path(), rewritten()).await;
    let err = m.up(None, &Silent).await.expect_err("duplicates");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (writes, slowest) = writer.await.expect("writer");
    let shown = err.to_string();
    assert!(
        shown.contains("rows already in users break UNIQUE users_email_key (email)")
            && shown.contains("for example:"),
        "{shown}"
    );
    assert_eq!(
        schema_state(&db).await,
        before,
        "nothing of the constraint is left"
    );
    assert!(writes > 10, "the application wrote ({writes})");
    assert!(
        slowest < Duration::from_secs(1),
        "a write waited {slowest:?}"
    );
}

async fn public_indexes(c: &pgshift_db::Connection) -> Vec<String> {
    c.query(
        "SELECT relname::text FROM pg_class WHERE relkind = 'i' AND relnamespace = 'public'::regnamespace ORDER BY 1",
        &[],
    )
    .await
    .expect("indexes")
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

/// Drops `index` in a migration of its own (`version`), run by `up` with events logged.
fn drop_index_dir(migrations: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (version, index) in migrations {
        write(
            dir.path(),
            &format!("{version}_drop_{index}.up.sql"),
            &format!("DROP INDEX {index};\n"),
        );
    }
    dir
}

#[tokio::test]
async fn a_small_index_is_dropped_as_written_when_its_table_is_free_and_concurrently_otherwise() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    // Tables and indexes from before the run: the application may be using them.
    c.batch_execute(
        "CREATE TABLE small_t (id int, a int);
         INSERT INTO small_t SELECT g, g FROM generate_series(1, 500) g;
         CREATE INDEX small_idx ON small_t (a);
         CREATE INDEX busy_idx ON small_t (id);
         CREATE INDEX unguarded_idx ON small_t (id, a);
         CREATE TABLE big_t (id int);
         INSERT INTO big_t SELECT g FROM generate_series(1, 100000) g;
         CREATE INDEX big_idx ON big_t (id);",
    )
    .await
    .expect("setup");
    let pages: i32 = c
        .query_one(
            "SELECT relpages FROM pg_class WHERE relname = 'big_idx'",
            &[],
        )
        .await
        .expect("relpages")
        .get(0);
    assert!(
        pages > pgshift_lint::SMALL_INDEX_PAGES,
        "big_idx is {pages} pages"
    );
    // Free tables: the small index as written, the large one concurrently.
    let dir = drop_index_dir(&[
        ("20240101000000", "small_idx"),
        ("20240102000000", "big_idx"),
    ]);
    let log = Log::default();
    let mut m = migrator(&db, dir.path(), RunOptions::default()).await;
    m.up(None, &log.observer()).await.expect("up");
    assert_eq!(
        log.rewrites(),
        vec!["DROP INDEX CONCURRENTLY big_idx".to_string()],
        "only the large index is dropped concurrently"
    );
    assert_eq!(
        public_indexes(&c).await,
        vec!["busy_idx".to_string(), "unguarded_idx".to_string()]
    );

    // A session in a transaction that read the table: its lock is not free at once, so the
    // small index is dropped concurrently, which waits for that transaction without making
    // anyone else wait.
    let reader = db.connect().await;
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM small_t")
        .await
        .expect("reader");
    write(
        dir.path(),
        "20240103000000_drop_busy_idx.up.sql",
        "DROP INDEX busy_idx;\n",
    );
    let busy_log = Log::default();
    let run = {
        let (db_url, path, busy_log) = (db.url(), dir.path().to_path_buf(), busy_log.clone());
        tokio::spawn(async move {
            let set = load(&path, Some(Format::Pgshift)).expect("load");
            let mut m = Migrator::connect(&db_url, set, RunOptions::default())
                .await
                .expect("connect");
            m.up(None, &busy_log.observer()).await
        })
    };
    // The drop is waiting for the reader; the application still writes.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !busy_log.rewrites().iter().any(|r| r.contains("busy_idx")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no concurrent drop began"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let writer = db.connect().await;
    writer
        .batch_execute("SET lock_timeout = '200ms'; INSERT INTO small_t VALUES (0, 0)")
        .await
        .expect("the application writes while the drop waits");
    assert!(
        !run.is_finished(),
        "the concurrent drop waits for the reader"
    );
    reader.batch_execute("COMMIT").await.expect("commit");
    run.await.expect("join").expect("up");
    assert_eq!(
        busy_log.rewrites(),
        vec!["DROP INDEX CONCURRENTLY busy_idx".to_string()]
    );

    // With the guard off nothing takes the table's lock NOWAIT first: concurrently.
    write(
        dir.path(),
        "20240104000000_drop_unguarded_idx.up.sql",
        "DROP INDEX unguarded_idx;\n",
    );
    let unguarded_log = Log::default();
    let unguarded = RunOptions {
        guard_max_wait: Duration::ZERO,
        ..RunOptions::default()
    };
    let mut m = migrator(&db, dir.path(), unguarded).await;
    m.up(None, &unguarded_log.observer()).await.expect("up");
    assert_eq!(
        unguarded_log.rewrites(),
        vec!["DROP INDEX CONCURRENTLY unguarded_idx".to_string()]
    );
    assert!(public_indexes(&c).await.is_empty());
}

/// A table an earlier migration of the same `up` made was used by no code before it: its
/// statements run as written, in their migration's transaction (a table created `IF NOT
/// EXISTS` counts when there was none, and a renamed one keeps counting). A table that was
/// there before the run keeps its rewrites, and so does a foreign key from a new table to it
/// (validating it locks that table against writes while it reads the new one's rows). On a
/// database that held no table yet, nothing is rewritten, and `up` says why once.
#[tokio::test]
async fn statements_on_tables_this_run_made_run_as_written() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE users (id int PRIMARY KEY);
         INSERT INTO users SELECT g FROM generate_series(1, 5) g;
         CREATE TABLE legacy (id int);",
    )
    .await
    .expect("tables from before the run");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_new.up.sql",
        "CREATE TABLE orders (id int, user_id int, a int);
INSERT INTO orders SELECT g, g % 5 + 1, g FROM generate_series(1, 100) g;
CREATE TABLE IF NOT EXISTS lines (id int, n int);
CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY);
CREATE TABLE draft (id int);
CREATE TABLE scratch (id int);
",
    );
    // A table the run made renamed keeps counting; a table from before given the name of one
    // the run made and dropped does not.
    write(
        dir.path(),
        "20240102000000_renamed.up.sql",
        "ALTER TABLE draft RENAME TO notes;\nDROP TABLE scratch;\nALTER TABLE legacy RENAME TO scratch;\n",
    );
    write(
        dir.path(),
        "20240103000000_changes.up.sql",
        "CREATE INDEX orders_a_idx ON orders (a);
ALTER TABLE orders ADD CONSTRAINT orders_a_check CHECK (a > 0);
ALTER TABLE orders ALTER COLUMN a SET NOT NULL;
CREATE INDEX lines_n_idx ON lines (n);
CREATE INDEX notes_id_idx ON notes (id);
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
CREATE INDEX users_id_idx ON users (id);
CREATE INDEX scratch_id_idx ON scratch (id);
REINDEX TABLE orders;
",
    );
    let log = Log::default();
    let mut m = migrator(&db, dir.path(), rewritten()).await;
    m.up(None, &log.observer()).await.expect("up");
    let rewrites = log.rewrites();
    for table in [
        "orders_a_idx",
        "orders_a_check",
        "\"a\" IS NOT NULL",
        "lines_n_idx",
        "notes_id_idx",
        "REINDEX",
    ] {
        assert!(
            !rewrites.iter().any(|r| r.contains(table)),
            "{table} runs as written: {rewrites:#?}"
        );
    }
    for expected in [
        "FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
        "VALIDATE CONSTRAINT \"orders_user_fk\"",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_id_idx",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS scratch_id_idx",
    ] {
        assert!(
            rewrites.iter().any(|r| r.contains(expected)),
            "no rewrite containing {expected:?} in {rewrites:#?}"
        );
    }
    let state = schema_state(&db).await;
    for expected in [
        "constraint orders orders_a_check c validated=true CHECK ((a > 0))",
        "constraint orders orders_user_fk f validated=true",
        "column orders.a notnull=true",
        "index users_id_idx valid=true",
    ] {
        assert!(
            state.iter().any(|l| l.starts_with(expected)),
            "{expected:?} not in {state:#?}"
        );
    }

    // A fresh database: the same folder without the table from before. Nothing is
    // rewritten, and one line says why.
    let fresh = TestDb::new().await;
    write(
        dir.path(),
        "20240100000000_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users SELECT g FROM generate_series(1, 5) g;\nCREATE TABLE legacy (id int);\n",
    );
    let log = Log::default();
    migrator(&fresh, dir.path(), RunOptions::default())
        .await
        .up(None, &log.observer())
        .await
        .expect("up on a fresh database");
    assert!(log.rewrites().is_empty(), "{:#?}", log.rewrites());
    let said = log
        .0
        .lock()
        .expect("log")
        .iter()
        .filter(
            |e| matches!(e, Event::Info(line) if line.contains("the database holds no table yet")),
        )
        .count();
    assert_eq!(said, 1);
    assert_eq!(schema_state(&fresh).await, state, "the same end state");
}

/// The version of each migration a line containing `needle` was said for.
fn said_for(log: &Log, needle: &str) -> Vec<String> {
    let mut current = String::new();
    let mut out = Vec::new();
    for e in log.0.lock().expect("log").iter() {
        match e {
            Event::Applying { version, .. } | Event::Reverting { version, .. } => {
                current = version.clone();
            }
            Event::Info(line) if line.contains(needle) => out.push(current.clone()),
            _ => {}
        }
    }
    out
}

/// The version of each migration a "ran as written" line was said for.
fn ran_as_written(log: &Log) -> Vec<String> {
    said_for(log, "ran as written, in one transaction")
}

/// A migration the safe rewrites would split runs as written, in one transaction, when every
/// relation it names holds at most 1 MB in all and its locks are free at once: on a small
/// table the rewrites' work (CONCURRENTLY builds, VALIDATE, the NOT NULL check) costs more
/// than the statements' own. Past 1 MB (one large table is enough), with a session in the
/// way, with user code (`DO`) in the migration, a reindex of an index whose table is not
/// known, a partitioned table, or with `small_tables_as_written` off, the rewritten form runs.
/// `down` does the same.
#[tokio::test]
async fn a_migration_on_small_free_tables_runs_as_written_and_otherwise_rewritten() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_setup.up.sql",
        "CREATE TABLE small (id int PRIMARY KEY, v int);
INSERT INTO small SELECT g, g FROM generate_series(1, 200) g;
CREATE TABLE large (id int PRIMARY KEY, v int, pad text);
INSERT INTO large SELECT g, g, repeat('x', 200) FROM generate_series(1, 10000) g;
CREATE TABLE busy (id int PRIMARY KEY, v int);
",
    );
    write(
        dir.path(),
        "20240102000000_small.up.sql",
        "CREATE TABLE extra (id int REFERENCES small (id));
CREATE INDEX small_v_idx ON small (v);
ALTER TABLE small ALTER COLUMN v SET NOT NULL;
ALTER TABLE small ADD CONSTRAINT small_v_check CHECK (v > 0);
",
    );
    write(
        dir.path(),
        "20240103000000_large.up.sql",
        "CREATE INDEX small_id_v_idx ON small (id, v);\nCREATE INDEX large_v_idx ON large (v);\n",
    );
    write(
        dir.path(),
        "20240104000000_busy.up.sql",
        "CREATE INDEX busy_v_idx ON busy (v);\n",
    );
    write(
        dir.path(),
        "20240105000000_drop.up.sql",
        "DROP INDEX small_v_idx;\n",
    );
    write(
        dir.path(),
        "20240105000000_drop.down.sql",
        "CREATE INDEX small_v_idx ON small (v);\n",
    );
    let c = db.connect().await;
    let mut m = after_setup(&db, dir.path(), RunOptions::default()).await;
    let size: i64 = c
        .query_one("SELECT pg_table_size('large')", &[])
        .await
        .expect("size")
        .get(0);
    assert!(
        size > pgshift_runner::small_tables::SMALL_TABLES_BYTES,
        "{size}"
    );
    // `plan` says which may run as written as the tables are now (the sizes and locks decide
    // when they run): 102 (`extra`, which it creates, counts as empty); not 103, whose `large`
    // is past 1 MB; 105, because the index it drops is not there yet, so not known small (a
    // small index's drop runs as written on its own).
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let report = pgshift_runner::plan::plan(&c, &set, &Default::default())
        .await
        .expect("plan");
    let may: Vec<(&str, bool)> = report
        .migrations
        .iter()
        .map(|m| (m.version.as_str(), m.as_written_when_small))
        .collect();
    assert_eq!(
        may,
        vec![
            ("20240102000000", true),
            ("20240103000000", false),
            ("20240104000000", true),
            ("20240105000000", true)
        ]
    );

    // An application transaction that wrote to `busy` and is still open: a SHARE lock on it is
    // not granted at once. It commits a moment after the migration has begun.
    let writer = db.connect().await;
    writer
        .batch_execute("BEGIN; INSERT INTO busy VALUES (1, 1)")
        .await
        .expect("writer");
    let commit = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        writer.batch_execute("COMMIT").await.expect("commit");
    });
    let log = Log::default();
    m.up(None, &log.observer()).await.expect("up");
    commit.await.expect("join");
    assert_eq!(ran_as_written(&log), vec!["20240102000000".to_string()]);
    // The two it tried and could not: said why.
    assert_eq!(
        said_for(
            &log,
            "runs with its safe rewrites (its tables hold more than 1 MB in all, or one was in use)"
        ),
        vec!["20240103000000".to_string(), "20240104000000".to_string()]
    );
    let rewrites = log.rewrites();
    for small in ["small_v_idx", "small_v_check", "\"v\" IS NOT NULL"] {
        assert!(
            !rewrites.iter().any(|r| r.contains(small)),
            "{small} ran as written: {rewrites:#?}"
        );
    }
    for rewritten in [
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS small_id_v_idx",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS large_v_idx",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS busy_v_idx",
    ] {
        assert!(
            rewrites.iter().any(|r| r.contains(rewritten)),
            "no {rewritten:?} in {rewrites:#?}"
        );
    }
    let units: i32 = c
        .query_one(
            "SELECT units FROM pgshift.migrations WHERE version = '20240102000000'",
            &[],
        )
        .await
        .expect("history")
        .get(0);
    assert_eq!(units, 1, "one transaction");
    let state = schema_state(&db).await;
    for expected in [
        "column small.v notnull=true",
        "constraint small small_v_check c validated=true CHECK ((v > 0))",
        "index small_id_v_idx valid=true",
        "index busy_v_idx valid=true",
    ] {
        assert!(
            state.iter().any(|l| l.starts_with(expected)),
            "{expected:?} not in {state:#?}"
        );
    }
    assert!(
        !state.iter().any(|l| l.contains("pgshift")),
        "no helper constraint is left: {state:#?}"
    );

    // `down`: the index its down builds on the small table, as written.
    let log = Log::default();
    m.down(pgshift_runner::DownTarget::Steps(1), &log.observer())
        .await
        .expect("down");
    assert_eq!(ran_as_written(&log), vec!["20240105000000".to_string()]);
    assert!(log.rewrites().is_empty(), "{:#?}", log.rewrites());
    assert!(schema_state(&db)
        .await
        .iter()
        .any(|l| l.starts_with("index small_v_idx valid=true")));

    // User code (a `DO` block here) does work no size bounds: the rewritten form.
    write(
        dir.path(),
        "20240106000000_code.up.sql",
        "DO $$ BEGIN PERFORM count(*) FROM small; END $$;\nCREATE INDEX small_id_idx ON small (id);\n",
    );
    // A reindex reads the whole table, and the statement names the index alone: its table's
    // size is not known, so it is not tried either.
    write(
        dir.path(),
        "20240107000000_reindex.up.sql",
        "REINDEX INDEX small_pkey;\n",
    );
    // A partitioned table's own size leaves its partitions out: tried, and refused.
    c.batch_execute(
        "CREATE TABLE parted (id int) PARTITION BY RANGE (id);
         CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);",
    )
    .await
    .expect("a partitioned table from before the run");
    write(
        dir.path(),
        "20240108000000_parted.up.sql",
        "CREATE INDEX parted_id_idx ON parted (id);\n",
    );
    let mut m = migrator(&db, dir.path(), RunOptions::default()).await;
    let log = Log::default();
    m.up(None, &log.observer()).await.expect("up");
    assert!(
        ran_as_written(&log).is_empty(),
        "{:?}",
        ran_as_written(&log)
    );
    assert_eq!(
        said_for(&log, "runs with its safe rewrites"),
        vec!["20240108000000".to_string()],
        "only the partitioned table's migration was tried"
    );
    for rewritten in [
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS small_id_idx",
        "REINDEX INDEX CONCURRENTLY \"small_pkey\"",
    ] {
        assert!(
            log.rewrites().iter().any(|r| r.contains(rewritten)),
            "no {rewritten:?} in {:#?}",
            log.rewrites()
        );
    }

    // Switched off: the rewritten form, however small the table.
    let off = TestDb::new().await;
    let options = RunOptions {
        small_tables_as_written: false,
        ..RunOptions::default()
    };
    let log = Log::default();
    after_setup(&off, dir.path(), options)
        .await
        .up(
            Some(&pgshift_source::Version::parse("20240102000000").expect("v")),
            &log.observer(),
        )
        .await
        .expect("up");
    assert!(ran_as_written(&log).is_empty());
    assert!(
        log.rewrites()
            .iter()
            .any(|r| r.contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS small_v_idx")),
        "{:#?}",
        log.rewrites()
    );
}
