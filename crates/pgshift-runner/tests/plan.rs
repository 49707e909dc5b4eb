//! `pgshift plan`: against a real PostgreSQL, and snapshots of the renderers on a fixed report
//! (`PGSHIFT_UPDATE_SNAPSHOTS=1` rewrites them; review the diff).

use std::path::Path;
use std::time::Duration;

use pgshift_db::testing::TestDb;
use pgshift_lint::LockLevel;
use pgshift_runner::plan::{
    plan, render_json, render_markdown, render_terminal, Answer, Blocking, Checklist,
    EstimateModel, PlanOptions, PlanReport, PlannedMigration, PlannedStatement, RunStep,
    SessionSummary, TableLock,
};
use pgshift_runner::{Migrator, Silent};
use pgshift_source::{load, Format, Version};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_orders.up.sql",
        "CREATE TABLE orders (id int, a int, note text);\nINSERT INTO orders SELECT g, g, repeat('x', 200) FROM generate_series(1, 20000) g;\nANALYZE orders;\n",
    );
    write(
        dir.path(),
        "20240102000000_change.up.sql",
        "CREATE INDEX orders_a_idx ON orders (a);\nALTER TABLE orders ADD COLUMN flag bool;\nALTER TABLE orders ALTER COLUMN a TYPE bigint;\n",
    );
    write(
        dir.path(),
        "20240102000000_change.down.sql",
        "DROP INDEX orders_a_idx;\n",
    );
    dir
}

#[tokio::test]
async fn plan_reports_locks_sizes_rewrites_and_who_is_in_the_way() {
    let db = TestDb::new().await;
    let dir = fixture();
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set.clone(), Default::default())
        .await
        .expect("connect");
    m.up(Some(&Version::parse("20240101000000").expect("v")), &Silent)
        .await
        .expect("up the first");

    let holder = db.connect().await;
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM orders;")
        .await
        .expect("reader");

    let conn = db.connect().await;
    // As written (`[run] online = false`): what each statement locks, and the gate on it.
    let as_written = PlanOptions {
        run: pgshift_runner::RunOptions {
            online: false,
            ..Default::default()
        },
        ..PlanOptions::default()
    };
    let report = plan(&conn, &set, &as_written).await.expect("plan");
    assert_eq!(report.migrations.len(), 1, "only the pending one");
    let mig = &report.migrations[0];
    assert_eq!(mig.version, "20240102000000");
    let [index, add, retype] = mig.statements.as_slice() else {
        panic!("three statements: {mig:#?}");
    };

    assert_eq!(index.line, 1);
    assert_eq!(index.tables[0].lock, LockLevel::Share);
    assert!(
        index.tables[0].rows_estimate.unwrap_or(0) >= 19_000,
        "{index:#?}"
    );
    assert!(index.tables[0].bytes.unwrap_or(0) > 1_000_000, "{index:#?}");
    assert!(index.runs_instead[0]
        .sql
        .starts_with("CREATE INDEX CONCURRENTLY"));
    assert_eq!(index.runs_instead[0].runs, "outside a transaction");
    assert!(
        index.blocking.is_none(),
        "the concurrent build blocks nothing"
    );

    assert_eq!(add.tables[0].lock, LockLevel::AccessExclusive);
    assert!(add.runs_instead.is_empty());
    let b = add.blocking.as_ref().expect("ADD COLUMN blocks briefly");
    assert_eq!(b.blocks, "reads and writes");
    assert_eq!(add.conflicting_now.len(), 1, "the open reader: {add:#?}");
    assert_eq!(add.conflicting_now[0].state, "idle in transaction");

    assert!(retype.tables[0].rewrite);
    let r = retype.blocking.as_ref().expect("the rewrite blocks");
    assert!(
        r.estimate_ms > 1.0,
        "a rewrite of ~5 MB takes longer than a catalog change: {r:?}"
    );
    assert!(
        b.estimate_ms > r.estimate_ms,
        "ADD COLUMN's lock is held until its transaction commits, after the rewrite: {b:?} {r:?}"
    );
    assert!(r.table_has_rows);

    assert!(!mig.checklist.backward_compatible.ok, "the type change");
    assert!(mig.checklist.rollback.ok, "has a down file");
    assert!(mig.checklist.if_it_fails_halfway.text.contains("steps"));
    assert!(report.over_limit().is_empty(), "within the default 2 s");

    let strict = PlanOptions {
        max_lock: Duration::ZERO,
        ..as_written.clone()
    };
    let report = plan(&conn, &set, &strict).await.expect("plan");
    let over = report.over_limit();
    assert!(over.iter().any(|o| o.line == 3), "{over:?}");
    assert!(
        !over.iter().any(|o| o.line == 1),
        "CONCURRENTLY is never over"
    );
    // By default the type change runs online: the checklist answers about the phases, and
    // the gate does not count statements that do not run as written.
    let online = plan(
        &conn,
        &set,
        &PlanOptions {
            max_lock: Duration::ZERO,
            ..PlanOptions::default()
        },
    )
    .await
    .expect("plan");
    let mig = &online.migrations[0];
    assert!(mig.online.is_some(), "{mig:#?}");
    assert!(mig.checklist.backward_compatible.ok, "{:?}", mig.checklist);
    assert!(online.over_limit().is_empty());

    let exact = PlanOptions {
        run: pgshift_runner::RunOptions {
            exact: true,
            ..Default::default()
        },
        ..PlanOptions::default()
    };
    let report = plan(&conn, &set, &exact).await.expect("plan");
    let index = &report.migrations[0].statements[0];
    assert!(index.runs_instead.is_empty());
    assert_eq!(
        index.blocking.as_ref().map(|b| b.blocks.as_str()),
        Some("writes")
    );
    holder.batch_execute("COMMIT").await.expect("release");
}

fn fixed_report() -> PlanReport {
    let answer = |ok: bool, text: &str| Answer {
        ok,
        text: text.to_string(),
    };
    PlanReport {
        database: "postgres://app:***@db.internal:5432/shop".into(),
        server_version: "15.4".into(),
        exact: false,
        max_lock_ms: 2000,
        model: EstimateModel {
            rewrite_mb_per_sec: 50.0,
            index_mb_per_sec: 30.0,
            scan_mb_per_sec: 200.0,
            catalog_ms: 1.0,
        },
        migrations: vec![PlannedMigration {
            version: "20240102000000".into(),
            name: "change".into(),
            path: "migrations/20240102000000_change.up.sql".into(),
            units: 3,
            resumes_at: None,
            dump: None,
            statements: vec![
                PlannedStatement {
                    line: 1,
                    sql: "CREATE INDEX orders_a_idx ON orders (a)".into(),
                    tables: vec![TableLock {
                        table: "orders".into(),
                        lock: LockLevel::Share,
                        rewrite: false,
                        scan: true,
                        rows_estimate: Some(1_250_000),
                        bytes: Some(300 << 20),
                        note: "CREATE INDEX blocks writes for the whole build".into(),
                    }],
                    runs_instead: vec![RunStep {
                        sql: "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_a_idx ON orders USING btree (a)".into(),
                        purpose: "build the index without blocking writes".into(),
                        runs: "outside a transaction".into(),
                    }],
                    blocking: None,
                    conflicting_now: vec![],
                },
                PlannedStatement {
                    line: 2,
                    sql: "ALTER TABLE orders ALTER COLUMN a TYPE bigint".into(),
                    tables: vec![TableLock {
                        table: "orders".into(),
                        lock: LockLevel::AccessExclusive,
                        rewrite: true,
                        scan: false,
                        rows_estimate: Some(1_250_000),
                        bytes: Some(300 << 20),
                        note: "int to bigint rewrites the table and rebuilds its indexes".into(),
                    }],
                    runs_instead: vec![],
                    blocking: Some(Blocking {
                        table: "orders".into(),
                        lock: LockLevel::AccessExclusive,
                        blocks: "reads and writes".into(),
                        estimate_ms: 6000.0,
                        table_has_rows: true,
                    }),
                    conflicting_now: vec![SessionSummary {
                        pid: 4242,
                        application_name: "billing".into(),
                        state: "idle in transaction".into(),
                        xact_age_ms: Some(95_000),
                        query: "SELECT * FROM orders WHERE id = $1".into(),
                    }],
                },
            ],
            checklist: Checklist {
                backward_compatible: answer(false, "no: line 2: changes a column's type under the running code. Deploy code that no longer depends on it first, or use an expand/contract change (`pgshift start`)"),
                if_it_fails_halfway: answer(true, "it runs in 3 steps; each completed step is recorded, so `pgshift up` again resumes at the failed step"),
                rollback: answer(false, "forward-only: there is no down script; undoing it means writing a new migration"),
                locking: answer(false, "line 2: ACCESS EXCLUSIVE on orders blocks reads and writes for ≈ 6.0 s"),
            },
            online: None,
            runs_as_written: None,
            as_written_when_small: true,
        }],
    }
}

fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("PGSHIFT_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with PGSHIFT_UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    assert_eq!(actual, expected, "snapshot {name} changed");
}

#[test]
fn terminal_rendering_snapshot() {
    check_snapshot("plan.txt", &render_terminal(&fixed_report()));
}

#[test]
fn markdown_rendering_snapshot() {
    check_snapshot("plan.md", &render_markdown(&fixed_report()));
}

#[test]
fn json_keeps_every_field_and_reports_over_limit() {
    let report = fixed_report();
    let json: serde_json::Value = serde_json::from_str(&render_json(&report)).expect("valid JSON");
    assert_eq!(
        json["migrations"][0]["statements"][1]["blocking"]["lock"],
        "access-exclusive"
    );
    assert_eq!(json["max_lock_ms"], 2000);
    assert_eq!(json["migrations"][0]["as_written_when_small"], true);
    let over = report.over_limit();
    assert_eq!(over.len(), 1);
    assert_eq!(over[0].line, 2);
}

#[tokio::test]
async fn the_checklist_reads_well_for_a_single_statement_run_outside_a_transaction() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (id int, a int);\n",
    );
    write(
        dir.path(),
        "20240102000000_idx.up.sql",
        "CREATE INDEX t_a_idx ON t (a);\n",
    );
    write(
        dir.path(),
        "20240103000000_retype.up.sql",
        "ALTER TABLE t ALTER COLUMN a TYPE bigint;\n",
    );
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set.clone(), Default::default())
        .await
        .expect("connect");
    m.up(Some(&Version::parse("20240101000000").expect("v")), &Silent)
        .await
        .expect("up the first");
    let conn = db.connect().await;
    let as_written = PlanOptions {
        run: pgshift_runner::RunOptions {
            online: false,
            ..Default::default()
        },
        ..PlanOptions::default()
    };
    let report = plan(&conn, &set, &as_written).await.expect("plan");
    let [index, retype] = report.migrations.as_slice() else {
        panic!("two pending: {report:#?}");
    };
    // The safe rewrite makes the index one CONCURRENTLY step of its own.
    let text = &index.checklist.if_it_fails_halfway.text;
    assert!(
        text.starts_with("it runs as one step outside a transaction"),
        "{text}"
    );
    assert!(!text.contains("()") && !text.contains("1 steps"), "{text}");
    // No advice to run a command pgshift does not have.
    let text = &retype.checklist.backward_compatible.text;
    assert!(!retype.checklist.backward_compatible.ok, "{text}");
    assert!(!text.contains("pgshift start"), "{text}");
}

/// A table created outside the migration set: only the live catalog knows its column types,
/// and they decide whether `ALTER ... TYPE` rewrites it.
#[tokio::test]
async fn plan_judges_type_changes_by_the_live_column_types() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE legacy (id bigint PRIMARY KEY, amount bigint, code varchar(10));
         INSERT INTO legacy SELECT g, g, 'c' || g FROM generate_series(1, 1000) g; ANALYZE legacy;",
    )
    .await
    .expect("legacy table");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("20240101000000_retype.up.sql"),
        "ALTER TABLE legacy ALTER COLUMN amount TYPE numeric;\nALTER TABLE legacy ALTER COLUMN code TYPE text;\n",
    )
    .expect("write");
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let report = plan(&c, &set, &PlanOptions::default()).await.expect("plan");
    let [amount, code] = report.migrations[0].statements.as_slice() else {
        panic!("two statements: {report:#?}");
    };
    assert!(
        amount.tables[0].rewrite,
        "bigint to numeric rewrites: {amount:#?}"
    );
    assert!(amount.blocking.is_some(), "{amount:#?}");
    assert!(
        !code.tables[0].rewrite,
        "varchar(10) to text is binary-compatible: {code:#?}"
    );
}

/// A (partitioned) table a pending migration creates: no code uses it before that `up`, so the
/// index a later pending one builds on it is planned as written, as `up` will run it (on a
/// table that was there before, `plan` shows the rewrite per partition: see
/// `safe.rs`'s partitioned test for what `up` then runs).
#[tokio::test]
async fn plan_runs_as_written_what_up_runs_on_a_table_an_earlier_pending_migration_creates() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_events.up.sql",
        "CREATE TABLE events (id bigint, k int) PARTITION BY RANGE (k);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (10);
",
    );
    write(
        dir.path(),
        "20240102000000_index.up.sql",
        "CREATE INDEX events_id_idx ON events (id);
",
    );
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let report = plan(&c, &set, &PlanOptions::default()).await.expect("plan");
    let runs = &report.migrations[1].statements[0].runs_instead;
    assert!(runs.is_empty(), "{runs:#?}");
    // And `up` runs exactly that.
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer = move |e: &pgshift_runner::Event| seen.lock().unwrap().push(e.clone());
    let mut m = Migrator::connect(&db.url(), set, pgshift_runner::RunOptions::default())
        .await
        .expect("connect");
    m.up(None, &observer).await.expect("up");
    let events = events.lock().unwrap().clone();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, pgshift_runner::Event::Rewrite { .. })),
        "{events:#?}"
    );
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_id_idx'::regclass",
            &[],
        )
        .await
        .expect("index")
        .get(0);
    assert!(valid);
}

/// A table a pending migration creates `IF NOT EXISTS` counts as made by the run when there is
/// none now, as `up` counts it; one that is there already keeps its rewrites.
#[tokio::test]
async fn plan_tells_a_table_created_if_not_exists_from_one_already_there_as_up_does() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute("CREATE TABLE items (id int, n int)")
        .await
        .expect("a table from before");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_tables.up.sql",
        "CREATE TABLE IF NOT EXISTS items (id int, n int);\nCREATE TABLE IF NOT EXISTS lines (id int, n int);\n",
    );
    write(
        dir.path(),
        "20240102000000_indexes.up.sql",
        "CREATE INDEX items_n_idx ON items (n);\nCREATE INDEX lines_n_idx ON lines (n);\n",
    );
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let report = plan(&c, &set, &PlanOptions::default()).await.expect("plan");
    let rewritten: Vec<usize> = report.migrations[1]
        .statements
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.runs_instead.is_empty())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(rewritten, vec![0], "only items' index is rewritten");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer = move |e: &pgshift_runner::Event| seen.lock().unwrap().push(e.clone());
    // The rewritten form, as `plan` shows it (on a table this small `up` would otherwise run
    // the migration as written).
    let rewritten = pgshift_runner::RunOptions {
        small_tables_as_written: false,
        ..Default::default()
    };
    Migrator::connect(&db.url(), set, rewritten)
        .await
        .expect("connect")
        .up(None, &observer)
        .await
        .expect("up");
    let rewrites: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            pgshift_runner::Event::Rewrite { sql, .. } => Some(sql.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(rewrites.len(), 1, "{rewrites:#?}");
    assert!(rewrites[0].contains("items_n_idx"), "{rewrites:#?}");
}

/// Issue 17: `plan` said "backward compatible" for migrations `check` reports as breaking,
/// because it kept its own shorter list. Both now read the lint crate's compat knowledge: each
/// migration that breaks running code is a "no" naming the change, with the `check` finding
/// of the same statement; an additive migration is still a "yes".
#[tokio::test]
async fn plan_and_check_agree_on_what_breaks_the_running_code() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_base.up.sql",
        "CREATE SCHEMA app;\nCREATE TYPE mood AS ENUM ('a', 'c');\nCREATE TABLE app.users (id bigint PRIMARY KEY, email text NOT NULL CONSTRAINT users_email_key UNIQUE, feeling mood);\n",
    );
    // (file, SQL, what plan names, the rule `check` reports)
    let breaking = [
        (
            "20240102000000_rename_schema.up.sql",
            "ALTER SCHEMA app RENAME TO app2;\n",
            "renames schema `app` to `app2`",
            "renaming-schema",
        ),
        (
            "20240104000000_drop_not_null.up.sql",
            "ALTER TABLE app.users ALTER COLUMN email DROP NOT NULL;\n",
            "drops NOT NULL on `email` of `app.users`",
            "ban-drop-not-null",
        ),
        (
            "20240105000000_drop_constraint.up.sql",
            "ALTER TABLE app.users DROP CONSTRAINT users_email_key;\n",
            "drops constraint `users_email_key` of `app.users`",
            "drop-constraint",
        ),
    ];
    for (file, sql, _, _) in &breaking {
        write(dir.path(), file, sql);
    }
    write(
        dir.path(),
        "20240106000000_additive.up.sql",
        "CREATE TABLE app.events (id bigint PRIMARY KEY, payload text NOT NULL);\nALTER TABLE app.users ADD COLUMN nickname text;\nCREATE INDEX users_nickname_idx ON app.users (nickname);\n",
    );
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set.clone(), Default::default())
        .await
        .expect("connect");
    m.up(Some(&Version::parse("20240101000000").expect("v")), &Silent)
        .await
        .expect("up the base");

    let conn = db.connect().await;
    let report = plan(&conn, &set, &PlanOptions::default())
        .await
        .expect("plan");
    assert_eq!(report.migrations.len(), breaking.len() + 1, "{report:#?}");
    for ((_, sql, names, rule), planned) in breaking.iter().zip(&report.migrations) {
        let answer = &planned.checklist.backward_compatible;
        assert!(!answer.ok, "{sql}: plan says {}", answer.text);
        assert!(
            answer.text.starts_with(&format!("no: line 1: {names}: ")),
            "{sql}: {}",
            answer.text
        );
        let migration = set
            .migrations
            .iter()
            .find(|m| m.version.to_string() == planned.version)
            .expect("the planned migration");
        let findings =
            pgshift_lint::check_script(&migration.up, true, &pgshift_lint::CheckOptions::default());
        assert!(
            findings.iter().any(|f| f.rule == *rule),
            "{sql}: check does not report {rule}: {findings:#?}"
        );
    }
    let additive = &report.migrations[breaking.len()]
        .checklist
        .backward_compatible;
    assert!(additive.ok, "{}", additive.text);
    assert_eq!(
        additive.text,
        "yes: nothing is dropped, renamed, retyped or made mandatory"
    );
}

#[tokio::test]
async fn plan_shows_both_forms_of_a_small_index_s_drop() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch_execute(
        "CREATE TABLE t (a int);
         INSERT INTO t SELECT g FROM generate_series(1, 100) g;
         CREATE INDEX t_a_idx ON t (a);",
    )
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_drop.up.sql",
        "DROP INDEX t_a_idx;\n",
    );
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let report = plan(&conn, &set, &PlanOptions::default())
        .await
        .expect("plan");
    let drop = &report.migrations[0].statements[0];
    let forms: Vec<(&str, &str)> = drop
        .runs_instead
        .iter()
        .map(|s| (s.sql.as_str(), s.runs.as_str()))
        .collect();
    assert_eq!(
        forms,
        vec![
            ("DROP INDEX t_a_idx", "own transaction"),
            (
                "DROP INDEX CONCURRENTLY t_a_idx",
                "outside a transaction, when the table is in use"
            ),
        ]
    );
    assert!(drop.runs_instead[0].purpose.contains("NOWAIT"));
    // The statement as written locks the index's table, which the catalog names.
    assert!(
        drop.tables
            .iter()
            .any(|t| t.table == "t" && t.lock == LockLevel::AccessExclusive),
        "{:#?}",
        drop.tables
    );
}
