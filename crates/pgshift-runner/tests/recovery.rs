//! What the runner does with a migration that stopped partway: a statement left in flight
//! outside any transaction, a file fixed after a failure, a down that failed before doing
//! anything, a down recorded in the history. Against a real PostgreSQL.
//!
//! The in-flight records here are the ones a run killed during the statement leaves (the
//! `kill -9` tests of the binary, in `crates/pgshift/tests/crash.rs`, produce them for real);
//! writing them directly lets each outcome (landed, stopped halfway, unknowable) be tested
//! without racing the server.

use std::path::Path;
use std::sync::{Arc, Mutex};

use pgshift_db::testing::TestDb;
use pgshift_lint::PgVersion;
use pgshift_runner::history::{self, NewRow, RowState};
use pgshift_runner::inflight::{self, Landing};
use pgshift_runner::{
    DownTarget, EntryState, Event, Migrator, Resolution, RunError, RunOptions, Silent,
};
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

/// Events, kept for assertions.
#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<Event>>>);

impl Log {
    fn observer(&self) -> impl Fn(&Event) + Send + Sync + '_ {
        |e: &Event| self.0.lock().expect("log").push(e.clone())
    }
    fn settled(&self) -> Vec<(usize, bool, String)> {
        self.0
            .lock()
            .expect("log")
            .iter()
            .filter_map(|e| match e {
                Event::Settled {
                    step, landed, why, ..
                } => Some((*step, *landed, why.clone())),
                _ => None,
            })
            .collect()
    }
    fn infos(&self) -> String {
        self.0
            .lock()
            .expect("log")
            .iter()
            .filter_map(|e| match e {
                Event::Info(t) => Some(t.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

const TABLE: &str = "20240101000000_t.up.sql";
const INDEX: &str = "20240102000000_idx.up.sql";

/// A table with rows, then a no-transaction migration whose second statement is an index
/// build outside any transaction.
fn index_project(build: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        TABLE,
        "CREATE TABLE t (a int);\nINSERT INTO t SELECT generate_series(1, 1000);\n",
    );
    write(
        dir.path(),
        INDEX,
        &format!("-- pgshift:no-transaction\nSELECT 1;\n{build};\nINSERT INTO t VALUES (-1);\n"),
    );
    dir
}

/// Leaves the history as a run killed during unit `unit` of migration 20240102000000 does:
/// the units before it recorded, that one in flight.
async fn killed_during(db: &TestDb, dir: &Path, unit: usize, landing: Landing) {
    let set = load(dir, Some(Format::Pgshift)).expect("load");
    let m = set.find(&v("20240102000000")).expect("migration").clone();
    let exec = pgshift_runner::prepare::prepare_offline(
        "20240102000000",
        &m.up,
        false,
        PgVersion::new(15, 0),
    )
    .expect("units")
    .exec;
    let c = db.connect().await;
    history::upsert(
        &c,
        &NewRow {
            version: "20240102000000".into(),
            name: m.name.clone(),
            checksum: m.checksum(),
            state: RowState::Partial,
            progress: i32::try_from(unit).expect("unit"),
            units: i32::try_from(exec.units.len()).expect("units"),
            duration_ms: None,
            down_sql: None,
            path: m.up.path.display().to_string(),
            format: "pgshift".into(),
            unit_digests: exec.digests(),
        },
    )
    .await
    .expect("row");
    let sql = exec.units[unit].steps[0].sql();
    let progress = inflight::Progress {
        state: RowState::Partial,
        done: i32::try_from(unit).expect("unit"),
        digests: None,
    };
    inflight::record(&c, "20240102000000", progress, unit, sql, &landing)
        .await
        .expect("in flight");
}

async fn indexes(db: &TestDb) -> Vec<(String, bool)> {
    let c = db.connect().await;
    c.query(
        "SELECT c.relname::text, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE i.indrelid = 't'::regclass ORDER BY 1",
        &[],
    )
    .await
    .expect("indexes")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

async fn rows(db: &TestDb) -> i64 {
    let c = db.connect().await;
    c.query_one("SELECT count(*) FROM t", &[])
        .await
        .expect("count")
        .get(0)
}

async fn state_of(m: &Migrator, version: &str) -> EntryState {
    m.status()
        .await
        .expect("status")
        .entries
        .iter()
        .find(|e| e.version == version)
        .map(|e| e.state)
        .expect("entry")
}

#[tokio::test]
async fn an_index_build_that_completed_after_pgshift_died_is_recorded_not_repeated() {
    let db = TestDb::new().await;
    let dir = index_project("CREATE INDEX CONCURRENTLY t_a ON t (a)");
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240101000000")), &Silent).await.expect("up");
    let landing = Landing::CreateIndex {
        schema: String::new(),
        name: "t_a".into(),
        if_not_exists: false,
    };
    killed_during(&db, dir.path(), 1, landing).await;
    // The orphaned server session finished the statement.
    db.connect()
        .await
        .batch_execute("CREATE INDEX CONCURRENTLY t_a ON t (a)")
        .await
        .expect("build");

    let log = Log::default();
    m.up(None, &log.observer()).await.expect("the run resumes");
    let settled = log.settled();
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert_eq!((settled[0].0, settled[0].1), (2, true), "{settled:?}");
    assert_eq!(indexes(&db).await, vec![("t_a".to_string(), true)]);
    assert_eq!(rows(&db).await, 1001, "the statement after it ran once");
    assert_eq!(state_of(&m, "20240102000000").await, EntryState::Applied);
}

#[tokio::test]
async fn an_index_build_that_stopped_halfway_is_dropped_and_run_again() {
    let db = TestDb::new().await;
    let dir = index_project("CREATE INDEX CONCURRENTLY t_a ON t (a)");
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240101000000")), &Silent).await.expect("up");
    let landing = Landing::CreateIndex {
        schema: String::new(),
        name: "t_a".into(),
        if_not_exists: false,
    };
    killed_during(&db, dir.path(), 1, landing).await;
    // A build cancelled partway leaves an INVALID index of that name.
    let c = db.connect().await;
    c.batch_execute("INSERT INTO t VALUES (1)")
        .await
        .expect("dup");
    assert!(c
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a)")
        .await
        .is_err());
    c.batch_execute("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t WHERE a = 1)")
        .await
        .expect("undup");
    assert_eq!(indexes(&db).await, vec![("t_a".to_string(), false)]);

    let log = Log::default();
    m.up(None, &log.observer()).await.expect("the run resumes");
    let settled = log.settled();
    assert_eq!((settled[0].0, settled[0].1), (2, false), "{settled:?}");
    assert!(settled[0].2.contains("INVALID"), "{settled:?}");
    assert_eq!(indexes(&db).await, vec![("t_a".to_string(), true)]);
    assert_eq!(rows(&db).await, 1001);
}

#[tokio::test]
async fn an_unnamed_index_build_that_completed_is_not_built_a_second_time() {
    let db = TestDb::new().await;
    let dir = index_project("CREATE INDEX CONCURRENTLY ON t (a)");
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240101000000")), &Silent).await.expect("up");
    let landing = Landing::CreateUnnamedIndex {
        table: "\"t\"".into(),
    };
    killed_during(&db, dir.path(), 1, landing).await;
    db.connect()
        .await
        .batch_execute("CREATE INDEX CONCURRENTLY ON t (a)")
        .await
        .expect("build");

    m.up(None, &Silent).await.expect("the run resumes");
    assert_eq!(
        indexes(&db).await,
        vec![("t_a_idx".to_string(), true)],
        "no t_a_idx1"
    );
}

#[tokio::test]
async fn a_drop_that_completed_after_pgshift_died_does_not_fail_the_next_run() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        TABLE,
        "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\n",
    );
    // Rewritten to DROP INDEX CONCURRENTLY, without IF EXISTS.
    write(
        dir.path(),
        INDEX,
        "DROP INDEX t_a;\nINSERT INTO t VALUES (-1);\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240101000000")), &Silent).await.expect("up");
    let landing = Landing::DropIndex {
        schema: String::new(),
        name: "t_a".into(),
    };
    killed_during(&db, dir.path(), 0, landing).await;
    db.connect()
        .await
        .batch_execute("DROP INDEX CONCURRENTLY t_a")
        .await
        .expect("drop");

    m.up(None, &Silent).await.expect("no 42704 on the next run");
    assert!(indexes(&db).await.is_empty());
    assert_eq!(rows(&db).await, 1);
    assert_eq!(state_of(&m, "20240102000000").await, EntryState::Applied);
}

#[tokio::test]
async fn a_statement_pgshift_cannot_look_up_stops_the_run_until_resolved() {
    let db = TestDb::new().await;
    let dir = index_project("VACUUM t");
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240101000000")), &Silent).await.expect("up");
    killed_during(&db, dir.path(), 1, Landing::Unknown).await;

    let err = m.up(None, &Silent).await.expect_err("must stop");
    assert!(matches!(err, RunError::InFlightUnknown(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains(INDEX), "{text}");
    assert!(text.contains("`VACUUM t`"), "{text}");
    assert!(
        text.contains("pgshift resolve 20240102000000 --step 2 --done"),
        "{text}"
    );
    assert!(text.contains("--step 2 --redo"), "{text}");
    assert_eq!(rows(&db).await, 1000, "nothing ran");
    assert_eq!(state_of(&m, "20240102000000").await, EntryState::Partial);

    // A decision about another step is refused and records nothing.
    let wrong = m
        .resolve(&v("20240102000000"), Some(3), Resolution::Done, &Silent)
        .await
        .expect_err("not the next step");
    assert!(
        wrong.to_string().contains("the next one is step 2"),
        "{wrong}"
    );

    let said = m
        .resolve(&v("20240102000000"), Some(2), Resolution::Done, &Silent)
        .await
        .expect("resolve");
    assert!(said.contains("step 2 of 3"), "{said}");
    m.up(None, &Silent).await.expect("goes on with step 3");
    assert_eq!(rows(&db).await, 1001);
    assert_eq!(state_of(&m, "20240102000000").await, EntryState::Applied);
}

#[tokio::test]
async fn a_fixed_failing_statement_resumes_without_repeating_the_steps_done() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), TABLE, "CREATE TABLE t (a int);\n");
    write(
        dir.path(),
        INDEX,
        "-- pgshift:no-transaction\nINSERT INTO t VALUES (1);\nCREATE INDEX CONCURRENTLY t_a ON t (a);\nSELECT 1/0;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    let err = m.up(None, &Silent).await.expect_err("division by zero");
    let text = err.to_string();
    assert!(text.contains("it resumes at this step"), "{text}");
    assert_eq!(state_of(&m, "20240102000000").await, EntryState::Partial);

    // The fix the message asks for: the failing statement, and one added after it.
    write(
        dir.path(),
        INDEX,
        "-- pgshift:no-transaction\nINSERT INTO t VALUES (1);\nCREATE INDEX CONCURRENTLY t_a ON t (a);\nSELECT 1;\nINSERT INTO t VALUES (2);\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("the fixed file resumes");
    assert_eq!(rows(&db).await, 2, "the first INSERT ran once");
    assert_eq!(
        state_of(&m, "20240102000000").await,
        EntryState::Applied,
        "recorded with the fixed file's checksum, not reported as changed"
    );
}

#[tokio::test]
async fn a_partial_migration_whose_done_step_was_edited_is_refused() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), TABLE, "CREATE TABLE t (a int);\n");
    write(
        dir.path(),
        INDEX,
        "-- pgshift:no-transaction\nINSERT INTO t VALUES (1);\nSELECT 1/0;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    assert!(m.up(None, &Silent).await.is_err());
    write(
        dir.path(),
        INDEX,
        "-- pgshift:no-transaction\nINSERT INTO t VALUES (10);\nSELECT 1;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    let err = m.up(None, &Silent).await.expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, RunError::ResumeMismatch { .. }), "{text}");
    assert!(text.contains("1 of 2"), "{text}");
    assert!(
        text.contains("pgshift resolve 20240102000000 --finished"),
        "{text}"
    );
    assert_eq!(rows(&db).await, 1);

    // Finished by hand: resolve records it, with the file as it is now.
    m.resolve(&v("20240102000000"), None, Resolution::Finished, &Silent)
        .await
        .expect("resolve");
    assert_eq!(state_of(&m, "20240102000000").await, EntryState::Applied);
}

#[tokio::test]
async fn baseline_and_down_say_what_they_do_with_a_partial_migration() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), TABLE, "CREATE TABLE t (a int);\n");
    write(
        dir.path(),
        INDEX,
        "-- pgshift:no-transaction\nCREATE TABLE u (a int);\nSELECT 1/0;\n",
    );
    write(
        dir.path(),
        "20240102000000_idx.down.sql",
        "DROP TABLE IF EXISTS u;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    assert!(m.up(None, &Silent).await.is_err());

    let log = Log::default();
    let marked = m
        .baseline(&v("20240102000000"), &log.observer())
        .await
        .expect("baseline");
    assert!(marked.is_empty(), "{marked:?}");
    let said = log.infos();
    assert!(said.contains("20240102000000"), "{said}");
    assert!(said.contains("stopped partway"), "{said}");
    assert!(said.contains("1 of 2"), "{said}");

    let log = Log::default();
    m.down(DownTarget::Steps(1), &log.observer())
        .await
        .expect("down");
    let said = log.infos();
    assert!(said.contains("stopped after 1 of 2 steps"), "{said}");
    assert!(said.contains("its down"), "{said}");
    assert_eq!(state_of(&m, "20240102000000").await, EntryState::Pending);
}

#[tokio::test]
async fn a_down_of_a_no_transaction_migration_that_failed_before_any_step_leaves_it_applied() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), TABLE, "CREATE TABLE t (a int);\n");
    write(
        dir.path(),
        INDEX,
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\n",
    );
    write(
        dir.path(),
        "20240102000000_idx.down.sql",
        "DROP INDEX CONCURRENTLY t_missing;\nDROP INDEX CONCURRENTLY t_a;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    let err = m
        .down(DownTarget::Steps(1), &Silent)
        .await
        .expect_err("no such index");
    assert!(err.to_string().contains("t_missing"), "{err}");
    assert_eq!(
        state_of(&m, "20240102000000").await,
        EntryState::Applied,
        "nothing was reverted"
    );
    // And `up` is not blocked by a half-finished revert.
    m.up(None, &Silent).await.expect("up is not blocked");
}

#[tokio::test]
async fn a_recorded_down_runs_in_a_transaction_unless_it_holds_the_marker_as_a_comment() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), TABLE, "CREATE TABLE a (id int);\n");
    write(
        dir.path(),
        "20240101000000_t.down.sql",
        "DROP TABLE a; SELECT 'see pgshift:no-transaction'; SELECT 1/0;\n",
    );
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    // The files are gone: the down comes from the history.
    std::fs::remove_file(dir.path().join(TABLE)).expect("rm");
    std::fs::remove_file(dir.path().join("20240101000000_t.down.sql")).expect("rm");
    let mut m = migrator(&db, dir.path()).await;
    assert!(m.down(DownTarget::Steps(1), &Silent).await.is_err());
    let c = db.connect().await;
    let exists: bool = c
        .query_one("SELECT to_regclass('a') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(
        exists,
        "the DROP was rolled back with the failing statement"
    );
    let state: String = c
        .query_one("SELECT state FROM pgshift.migrations", &[])
        .await
        .expect("q")
        .get(0);
    assert_eq!(state, "applied");
}

#[tokio::test]
async fn a_failed_unnamed_index_build_leaves_no_invalid_index_and_the_retry_keeps_the_name() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        TABLE,
        "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (1);\n",
    );
    // Rewritten to CREATE UNIQUE INDEX CONCURRENTLY: fails on the duplicate. (On an
    // expression: on plain columns, the look for existing duplicates would stop it first.)
    write(dir.path(), INDEX, "CREATE UNIQUE INDEX ON t ((a + 0));\n");
    let mut m = migrator(&db, dir.path()).await;
    let err = m.up(None, &Silent).await.expect_err("duplicate key");
    assert!(err.to_string().contains("23505"), "{err}");
    assert!(
        indexes(&db).await.is_empty(),
        "the INVALID index of the failed build is gone"
    );
    db.connect()
        .await
        .batch_execute("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)")
        .await
        .expect("dedup");
    m.up(None, &Silent).await.expect("the retry builds it");
    assert_eq!(indexes(&db).await, vec![("t_expr_idx".to_string(), true)]);
}

#[tokio::test]
async fn a_history_made_by_an_older_pgshift_is_read_as_is_and_upgraded_by_the_next_run() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    // The table as the first release created it: no in-flight record, no unit fingerprints.
    c.batch_execute(
        "CREATE SCHEMA pgshift;
         CREATE TABLE pgshift.migrations (
             version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
             state text NOT NULL DEFAULT 'applied', progress integer NOT NULL DEFAULT 0,
             units integer NOT NULL DEFAULT 1, applied_at timestamptz NOT NULL DEFAULT now(),
             applied_by text NOT NULL, duration_ms bigint, down_sql text, path text, format text);
         CREATE TABLE t (a int);",
    )
    .await
    .expect("old history");
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), TABLE, "CREATE TABLE t (a int);\n");
    write(dir.path(), INDEX, "INSERT INTO t VALUES (1);\n");
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let checksum = set.migrations[0].checksum();
    c.execute(
        "INSERT INTO pgshift.migrations (version, name, checksum, applied_by) VALUES ('20240101000000', 't', $1, 'old')",
        &[&checksum],
    )
    .await
    .expect("row");

    let mut m = migrator(&db, dir.path()).await;
    // Reading writes nothing: status works on the old table.
    assert_eq!(state_of(&m, "20240101000000").await, EntryState::Applied);
    assert_eq!(state_of(&m, "20240102000000").await, EntryState::Pending);
    m.up(None, &Silent).await.expect("up on the old history");
    assert_eq!(rows(&db).await, 1);
    let columns: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'pgshift.migrations'::regclass
               AND attname IN ('inflight', 'unit_digests')",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    assert_eq!(columns, 2, "the history was upgraded");
}

#[tokio::test]
async fn resolve_refuses_a_step_past_the_end_and_up_records_the_end() {
    let db = TestDb::new().await;
    let dir = index_project("VACUUM t");
    let mut m = migrator(&db, dir.path()).await;
    m.up(Some(&v("20240101000000")), &Silent).await.expect("up");
    // Every unit recorded, the end not (a run killed between its last unit and the end).
    killed_during(&db, dir.path(), 2, Landing::Unknown).await;
    db.connect()
        .await
        .batch_execute(
            "INSERT INTO t VALUES (-1);
             UPDATE pgshift.migrations SET progress = 3, inflight = NULL WHERE version = '20240102000000'",
        )
        .await
        .expect("simulate");
    let err = m
        .resolve(&v("20240102000000"), None, Resolution::Done, &Silent)
        .await
        .expect_err("nothing left to resolve");
    assert!(err.to_string().contains("all 3 steps"), "{err}");
    m.up(None, &Silent).await.expect("up records the end");
    assert_eq!(state_of(&m, "20240102000000").await, EntryState::Applied);
    assert_eq!(rows(&db).await, 1001, "no step ran again");
}
