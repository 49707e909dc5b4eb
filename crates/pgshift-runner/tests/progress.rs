//! Feedback on long work: while a step runs, `up` reports about every second how long it has
//! been running and what it waits for, against a real PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgshift_db::testing::TestDb;
use pgshift_runner::{Event, Migrator, RunOptions};
use pgshift_source::{load, Format};

/// (elapsed, sql, waiting_for) of every `StepRunning` event of an `up`.
type Seen = Arc<Mutex<Vec<(Duration, String, Option<String>)>>>;

async fn up_watching(db: &TestDb, sql: &str, options: RunOptions) -> Seen {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("20240101000000_slow.up.sql"), sql).expect("write");
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, options)
        .await
        .expect("connect");
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let observer = move |e: &Event| {
        if let Event::StepRunning {
            elapsed,
            sql,
            waiting_for,
            ..
        } = e
        {
            if let Ok(mut s) = sink.lock() {
                s.push((*elapsed, sql.clone(), waiting_for.clone()));
            }
        }
    };
    m.up(None, &observer).await.expect("up");
    seen
}

/// A statement that takes 2.5 s is reported while it runs, with its time and its SQL, not only
/// when it ends.
#[tokio::test]
async fn a_long_statement_is_reported_while_it_runs() {
    let db = TestDb::new().await;
    let seen = up_watching(&db, "SELECT pg_sleep(2.5);\n", RunOptions::default()).await;
    let seen = seen.lock().expect("events").clone();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(
        seen.iter().all(|(_, sql, _)| sql.contains("pg_sleep(2.5)")),
        "{seen:?}"
    );
    assert!(seen[0].0 >= Duration::from_secs(1), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
}

/// The statements of a migration's transaction are sent together, in one round trip: the line
/// follows the one the server is on, each with its own time.
#[tokio::test]
async fn in_a_migration_of_several_statements_the_line_names_the_one_running() {
    let db = TestDb::new().await;
    let seen = up_watching(
        &db,
        "CREATE TABLE t (id int);\nSELECT pg_sleep(1.6);\nSELECT pg_sleep(2.2);\nINSERT INTO t VALUES (1);\n",
        RunOptions::default(),
    )
    .await;
    let seen = seen.lock().expect("events").clone();
    let first: Vec<_> = seen
        .iter()
        .filter(|(_, sql, _)| sql.contains("pg_sleep(1.6)"))
        .collect();
    let second: Vec<_> = seen
        .iter()
        .filter(|(_, sql, _)| sql.contains("pg_sleep(2.2)"))
        .collect();
    assert_eq!(first.len() + second.len(), seen.len(), "{seen:?}");
    assert!(!first.is_empty() && second.len() >= 2, "{seen:?}");
    // The second statement's time counts from when it started, not from the transaction's start.
    assert!(second[0].0 < Duration::from_millis(1500), "{seen:?}");
    let before_second = seen
        .iter()
        .position(|(_, sql, _)| sql.contains("pg_sleep(2.2)"));
    assert!(
        before_second.is_some_and(|i| seen[..i]
            .iter()
            .all(|(_, sql, _)| sql.contains("pg_sleep(1.6)"))),
        "{seen:?}"
    );
}

/// A statement queued behind another session's lock says so, naming the session.
#[tokio::test]
async fn a_step_waiting_for_a_lock_names_who_holds_it() {
    let db = TestDb::new().await;
    let holder = db.connect().await;
    holder
        .batch_execute("CREATE TABLE items (id int)")
        .await
        .expect("table");
    holder
        .batch_execute("BEGIN; LOCK TABLE items IN ACCESS SHARE MODE;")
        .await
        .expect("hold a lock");
    let holder_pid = holder.backend_pid();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        holder.batch_execute("COMMIT").await.expect("release");
    });
    let options = RunOptions {
        lock_timeout: Duration::from_secs(10),
        guard_max_wait: Duration::ZERO,
        ..RunOptions::default()
    };
    let seen = up_watching(&db, "ALTER TABLE items ADD COLUMN note text;\n", options).await;
    release.await.expect("released");
    let seen = seen.lock().expect("events").clone();
    let want = format!("a lock held by pid {holder_pid}");
    assert!(
        seen.iter()
            .any(|(_, _, w)| w.as_deref() == Some(want.as_str())),
        "{seen:?}"
    );
}
