//! Backfills against a real PostgreSQL: the walk (primary key, composite key, no key), the
//! application writing and inserting meanwhile, a run killed partway and resumed, pause and
//! resume from another session, the user's throttle probe, rows the application holds
//! locked, and bad input that changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgshift_db::testing::TestDb;
use pgshift_db::Connection;
use pgshift_runner::backfill::{Backfill, BackfillError, BackfillOptions, BackfillSpec};
use pgshift_runner::{Event, Silent};

async fn exec(c: &Connection, sql: &str) {
    c.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn one(c: &Connection, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Waits until the server has noticed the sessions of dropped runs and rolled back the batch
/// each left open.
async fn dropped_sessions_ended(c: &Connection) {
    let start = Instant::now();
    while one(c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'pgshift' AND state <> 'idle'").await > 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "dropped sessions never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Small batches so that a few thousand rows take many batches.
fn small() -> BackfillOptions {
    BackfillOptions {
        target_batch: Duration::from_millis(5),
        initial_batch: 50,
        min_batch: 10,
        max_batch: 200,
        ..BackfillOptions::default()
    }
}

fn backfill(table: &str, set: &str, filter: Option<&str>, options: BackfillOptions) -> Backfill {
    Backfill {
        spec: BackfillSpec::from_flags(table, set, filter, None).expect("spec"),
        options,
    }
}

/// The throttle reasons a backfill shows, collected, and the observer that collects them.
fn reasons_seen() -> (
    Arc<Mutex<Vec<String>>>,
    impl Fn(&Event) + Send + Sync + 'static,
) {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let observer = move |e: &Event| {
        if let Event::BackfillProgress(p) = e {
            if let Some(t) = &p.throttle {
                seen.lock().unwrap().push(t.clone());
            }
        }
    };
    (reasons, observer)
}

/// Rows with a counter the trigger bumps on every update, to see each row updated once.
async fn items(c: &Connection, rows: i64) {
    exec(
        c,
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, a int NOT NULL, b int, touched int NOT NULL DEFAULT 0);
             INSERT INTO items (id, a) SELECT g, g % 1000 FROM generate_series(1, {rows}) g;
             CREATE FUNCTION count_touch() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $$;
             CREATE TRIGGER count_touch BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION count_touch();
             ANALYZE items;"
        ),
    )
    .await;
}

#[tokio::test]
async fn a_primary_key_walk_updates_every_row_once_and_proves_the_end() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 3000).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer = move |e: &Event| seen.lock().unwrap().push(format!("{e:?}"));
    let outcome = backfill("items", "b = a * 2", Some("b IS NULL"), small())
        .run(&c, &observer)
        .await
        .expect("backfill");
    assert_eq!(outcome.rows_updated, 3000);
    assert_eq!(outcome.passes, 1);
    assert!(outcome.batches > 10, "{} batches", outcome.batches);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM items WHERE b IS DISTINCT FROM a * 2"
        )
        .await,
        0
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM items WHERE touched <> 1").await,
        0
    );
    let status: String = c
        .query_one("SELECT status FROM pgshift.backfills", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "done");
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.contains("BackfillProgress")));

    // The same command again: already done, nothing runs.
    let again = backfill("items", "b = a * 2", Some("b IS NULL"), small())
        .run(&c, &Silent)
        .await
        .expect("again");
    assert!(again.already_done);
    assert_eq!(
        one(&c, "SELECT count(*) FROM items WHERE touched <> 1").await,
        0
    );
}

#[tokio::test]
async fn an_application_writing_and_inserting_meanwhile_loses_nothing_and_the_backfill_ends() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 4000).await;
    let app = db.connect().await;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // New code writes b itself (a value the backfill would not compute), and old code keeps
    // inserting rows without b.
    let writer = tokio::spawn(async move {
        let mut written = Vec::new();
        let mut next_id = 1_000_000i64;
        let mut i = 0i64;
        while !flag.load(Ordering::Relaxed) {
            let id = (i * 7919) % 4000 + 1;
            app.execute("UPDATE items SET b = -id WHERE id = $1", &[&id])
                .await
                .expect("app update");
            written.push(id);
            app.execute("INSERT INTO items (id, a) VALUES ($1, 1)", &[&next_id])
                .await
                .expect("app insert");
            next_id += 1;
            i += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        written
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let outcome = backfill("items", "b = a * 2", Some("b IS NULL"), small())
        .run(&c, &Silent)
        .await
        .expect("backfill ends while rows keep arriving");
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    assert!(written.len() > 20, "the writer ran during the backfill");
    for id in written {
        let b: Option<i32> = c
            .query_one("SELECT b FROM items WHERE id = $1", &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            b,
            Some(-(id as i32)),
            "the application's write to row {id} was overwritten"
        );
    }
    // Every row that existed at the start is done; rows inserted after are reported.
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM items WHERE id <= 4000 AND b IS NULL"
        )
        .await,
        0
    );
    let inserted_null = one(
        &c,
        "SELECT count(*) FROM items WHERE id > 4000 AND b IS NULL",
    )
    .await;
    assert!(outcome.beyond_bound <= inserted_null as u64);
}

#[tokio::test]
async fn a_run_stopped_partway_resumes_without_updating_a_row_twice() {
    let db = TestDb::new().await;
    let setup = db.connect().await;
    items(&setup, 5000).await;
    for stop_after in [Duration::from_millis(300), Duration::from_millis(400)] {
        let conn = db.connect().await;
        let task = tokio::spawn(async move {
            // Slowed down so that it is surely stopped partway.
            let mut options = small();
            options.max_rows_per_second = Some(4000);
            backfill("items", "b = a + 1", None, options)
                .run(&conn, &Silent)
                .await
        });
        tokio::time::sleep(stop_after).await;
        // Dropping the task drops its connection mid-batch, as kill -9 would.
        task.abort();
        let _ = task.await;
    }
    dropped_sessions_ended(&setup).await;
    let done_before = one(&setup, "SELECT count(*) FROM items WHERE touched = 1").await;
    assert!(
        done_before > 0 && done_before < 5000,
        "stopped partway: {done_before} rows done"
    );
    let outcome = backfill("items", "b = a + 1", None, small())
        .run(&setup, &Silent)
        .await
        .expect("resume");
    assert_eq!(outcome.rows_total, 5000);
    assert_eq!(
        outcome.rows_updated as i64,
        5000 - done_before,
        "resumed at the checkpoint"
    );
    assert_eq!(
        one(&setup, "SELECT count(*) FROM items WHERE touched <> 1").await,
        0
    );
}

#[tokio::test]
async fn pause_from_another_session_stops_batches_until_resume() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 20_000).await;
    let mut options = small();
    options.throttle.check_every = Duration::from_millis(50);
    let bf = backfill("items", "b = a", None, options);
    let id = bf.spec.id.clone();
    let conn = db.connect().await;
    let task = tokio::spawn(async move { bf.run(&conn, &Silent).await });
    let other = db.connect().await;
    // Wait for the first checkpoint, then pause.
    while one(
        &other,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'pgshift' AND tablename = 'backfills'",
    )
    .await
        == 0
        || one(
            &other,
            "SELECT coalesce(max(rows_done), 0) FROM pgshift.backfills",
        )
        .await
            == 0
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        pgshift_runner::backfill::state::request_pause(&other, &id, true)
            .await
            .unwrap()
    );
    let start = Instant::now();
    loop {
        let status: String = other
            .query_one("SELECT status FROM pgshift.backfills", &[])
            .await
            .unwrap()
            .get(0);
        if status == "paused" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never paused");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_pause = one(&other, "SELECT count(*) FROM items WHERE touched = 1").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        one(&other, "SELECT count(*) FROM items WHERE touched = 1").await,
        at_pause,
        "no batch ran while paused"
    );
    assert!(at_pause < 20_000);
    let listed = pgshift_runner::backfill::state::list(&other).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].active, "a runner holds it");
    assert!(listed[0]
        .throttle_reason
        .as_deref()
        .unwrap_or("")
        .contains("paused"));
    pgshift_runner::backfill::state::request_pause(&other, &id, false)
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("finishes after resume")
        .unwrap()
        .expect("backfill");
    assert_eq!(outcome.rows_total, 20_000);
}

#[tokio::test]
async fn the_throttle_query_pauses_while_it_returns_true() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 2000).await;
    exec(
        &c,
        "CREATE TABLE hold (on_ boolean); INSERT INTO hold VALUES (true)",
    )
    .await;
    let mut options = small();
    options.throttle.check_every = Duration::from_millis(50);
    options.throttle.throttle_query = Some("SELECT EXISTS (SELECT 1 FROM hold)".into());
    let (reasons, observer) = reasons_seen();
    let conn = db.connect().await;
    let task = tokio::spawn(async move {
        backfill("items", "b = 1", None, options)
            .run(&conn, &observer)
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        one(&c, "SELECT count(*) FROM items WHERE b IS NOT NULL").await,
        0
    );
    assert!(reasons
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.contains("--throttle-query returned true")));
    exec(&c, "DELETE FROM hold").await;
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("continues once the probe says go")
        .unwrap()
        .expect("backfill");
    assert_eq!(
        one(&c, "SELECT count(*) FROM items WHERE b IS NULL").await,
        0
    );
}

#[tokio::test]
async fn a_row_the_application_holds_is_waited_for_never_skipped() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 1000).await;
    let app = db.connect().await;
    exec(&app, "BEGIN; SELECT * FROM items WHERE id = 500 FOR UPDATE").await;
    let conn = db.connect().await;
    let task = tokio::spawn(async move {
        let mut options = small();
        options.lock_timeout = Duration::from_millis(20);
        backfill("items", "b = 5", None, options)
            .run(&conn, &Silent)
            .await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!task.is_finished(), "it waits for the held row");
    let before = one(&c, "SELECT count(*) FROM items WHERE b = 5").await;
    assert!(before < 1000);
    exec(&app, "COMMIT").await;
    let outcome = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("finishes once the row is free")
        .unwrap()
        .expect("backfill");
    assert_eq!(outcome.rows_total, 1000);
    assert_eq!(
        one(&c, "SELECT count(*) FROM items WHERE b IS DISTINCT FROM 5").await,
        0
    );
}

#[tokio::test]
async fn a_composite_key_and_a_table_without_key_are_walked_too() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE pairs (region text, n int, v int, PRIMARY KEY (region, n));
         INSERT INTO pairs SELECT r, g, NULL FROM unnest(ARRAY['eu', 'us', 'ap']) r, generate_series(1, 700) g;
         CREATE TABLE heap (a int, v int);
         INSERT INTO heap SELECT g, NULL FROM generate_series(1, 3000) g;
         ANALYZE pairs; ANALYZE heap;",
    )
    .await;
    let outcome = backfill("pairs", "v = n * 10", None, small())
        .run(&c, &Silent)
        .await
        .expect("composite");
    assert_eq!(outcome.rows_total, 2100);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pairs WHERE v IS DISTINCT FROM n * 10"
        )
        .await,
        0
    );

    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer = move |e: &Event| {
        if let Event::BackfillStarted { walk, .. } = e {
            seen.lock().unwrap().push(walk.clone());
        }
    };
    let outcome = backfill("heap", "v = a + 1", None, small())
        .run(&c, &observer)
        .await
        .expect("ctid walk");
    assert_eq!(events.lock().unwrap().as_slice(), ["ctid"]);
    assert_eq!(outcome.rows_total, 3000);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM heap WHERE v IS DISTINCT FROM a + 1"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_unique_not_null_index_orders_the_walk_when_there_is_no_primary_key() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE codes (code uuid NOT NULL, v int, nullable_id int UNIQUE);
         CREATE UNIQUE INDEX codes_code ON codes (code);
         INSERT INTO codes SELECT gen_random_uuid(), NULL, NULL FROM generate_series(1, 2500);
         ANALYZE codes;",
    )
    .await;
    let walks = Arc::new(Mutex::new(Vec::new()));
    let seen = walks.clone();
    let observer = move |e: &Event| {
        if let Event::BackfillStarted { walk, .. } = e {
            seen.lock().unwrap().push(walk.clone());
        }
    };
    let outcome = backfill("codes", "v = 1", None, small())
        .run(&c, &observer)
        .await
        .expect("uuid walk");
    // The nullable unique column cannot order a walk (NULLs repeat); the NOT NULL one can.
    assert_eq!(walks.lock().unwrap().as_slice(), ["key (code)"]);
    assert_eq!(outcome.rows_total, 2500);
}

#[tokio::test]
async fn rows_that_keep_needing_the_update_fail_it_with_the_count_after_three_passes() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 1000).await;
    // Something that keeps writing the old way: every update of a row with a >= 990 is undone.
    exec(
        &c,
        "CREATE FUNCTION undo() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.a >= 990 THEN NEW.b := NULL; END IF; RETURN NEW; END $$;
         CREATE TRIGGER undo BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION undo();",
    )
    .await;
    let err = backfill("items", "b = a", None, small())
        .run(&c, &Silent)
        .await
        .expect_err("never proved");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            BackfillError::Unproved {
                remaining: 10,
                passes: 3,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("10 rows still need the update"), "{text}");
    let (status, last_error): (String, Option<String>) = {
        let r = c
            .query_one("SELECT status, last_error FROM pgshift.backfills", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "failed");
    assert!(last_error.unwrap_or_default().contains("still need"));
}

#[tokio::test]
async fn rows_whose_new_value_is_null_are_counted_not_walked_forever() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 2000).await;
    // The seeds' loop never ends here: `b IS NULL` stays true for the 2 rows in each thousand
    // where the expression gives NULL.
    let outcome = backfill(
        "items",
        "b = NULLIF(a, 7) + NULLIF(a, 8) * 0",
        Some("b IS NULL"),
        small(),
    )
    .run(&c, &Silent)
    .await
    .expect("ends");
    assert_eq!(outcome.passes, 1);
    assert_eq!(outcome.null_results, 4);
    assert_eq!(outcome.rows_total, 1996);
}

#[tokio::test]
async fn a_ctid_walk_refuses_to_resume_on_a_rewritten_table_and_restart_starts_over() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE heap (a int, v int, touched int NOT NULL DEFAULT 0);
         INSERT INTO heap (a) SELECT g FROM generate_series(1, 40000) g;
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $$;
         CREATE TRIGGER touch BEFORE UPDATE ON heap FOR EACH ROW EXECUTE FUNCTION touch();
         ANALYZE heap;",
    )
    .await;
    let conn = db.connect().await;
    let task = tokio::spawn(async move {
        let mut options = small();
        options.max_rows_per_second = Some(5000);
        backfill("heap", "v = a", None, options)
            .run(&conn, &Silent)
            .await
    });
    let start = Instant::now();
    while one(&c, "SELECT count(*) FROM heap WHERE touched > 0").await < 200 {
        assert!(start.elapsed() < Duration::from_secs(20), "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let _ = task.await;
    dropped_sessions_ended(&c).await;
    exec(&c, "VACUUM FULL heap").await;
    let err = backfill("heap", "v = a", None, small())
        .run(&c, &Silent)
        .await
        .expect_err("positions mean nothing now");
    assert!(matches!(err, BackfillError::Rewritten { .. }), "{err}");
    assert!(err.to_string().contains("--restart"), "{err}");

    let mut options = small();
    options.restart = true;
    let outcome = backfill("heap", "v = a", None, options)
        .run(&c, &Silent)
        .await
        .expect("restart");
    assert_eq!(
        one(&c, "SELECT count(*) FROM heap WHERE v IS DISTINCT FROM a").await,
        0
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM heap WHERE touched > 1").await,
        0,
        "rows done before are skipped"
    );
    // The count starts over with the restart, and the rows done before it were not updated again.
    assert_eq!(outcome.rows_total, outcome.rows_updated);
    assert!(outcome.rows_updated < 40000, "{}", outcome.rows_updated);
}

#[tokio::test]
async fn bad_input_fails_before_the_first_batch_and_changes_nothing() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 100).await;
    exec(&c, "CREATE TABLE words (id int PRIMARY KEY, w text, n int); INSERT INTO words VALUES (1, '1', NULL), (2, 'two', NULL)").await;
    let cases: Vec<(&str, &str, Option<&str>, &str)> = vec![
        ("nope", "b = 1", None, "does not exist"),
        ("items", "zz = 1", None, "column zz does not exist"),
        ("items", "b = a / 0", None, "division by zero"),
        ("items", "b = a", Some("a + 1"), "must be type boolean"),
        ("items", "b = no_such_column", None, "no_such_column"),
        ("words", "n = w::int", None, "invalid input syntax"),
    ];
    for (table, set, filter, expected) in cases {
        let err = backfill(table, set, filter, small())
            .run(&c, &Silent)
            .await
            .expect_err(set);
        let text = err.to_string();
        assert!(text.contains(expected), "{set}: {text}");
        assert!(text.contains("othing was changed"), "{set}: {text}");
    }
    assert_eq!(
        one(&c, "SELECT count(*) FROM items WHERE touched > 0").await,
        0
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM words WHERE n IS NOT NULL").await,
        0
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'pgshift'"
        )
        .await,
        0,
        "no state table either"
    );
}

#[tokio::test]
async fn a_second_runner_of_the_same_backfill_is_refused() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 20_000).await;
    let mut options = small();
    options.max_rows_per_second = Some(2_000);
    let conn = db.connect().await;
    let first = tokio::spawn(async move {
        backfill("items", "b = 3", None, options)
            .run(&conn, &Silent)
            .await
    });
    let other = db.connect().await;
    while one(
        &other,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'pgshift' AND tablename = 'backfills'",
    )
    .await
        == 0
        || one(
            &other,
            "SELECT coalesce(max(rows_done), 0) FROM pgshift.backfills",
        )
        .await
            == 0
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = backfill("items", "b = 3", None, small())
        .run(&other, &Silent)
        .await
        .expect_err("refused");
    assert!(matches!(err, BackfillError::Running { .. }), "{err}");
    first.abort();
}

/// Prices in whole units, to be turned into cents: `amount = id` before, `id * 100` after.
async fn prices(c: &Connection, rows: i64, key: bool) {
    exec(
        c,
        &format!(
            "CREATE TABLE prices (id bigint {}NOT NULL, amount numeric NOT NULL, touched int NOT NULL DEFAULT 0);
             INSERT INTO prices (id, amount) SELECT g, g FROM generate_series(1, {rows}) g;
             CREATE FUNCTION count_price_touch() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $$;
             CREATE TRIGGER count_touch BEFORE UPDATE ON prices FOR EACH ROW EXECUTE FUNCTION count_price_touch();
             ANALYZE prices;",
            if key { "PRIMARY KEY " } else { "" }
        ),
    )
    .await;
}

#[tokio::test]
async fn a_set_reading_the_column_it_writes_multiplies_each_row_once_even_across_a_resume() {
    let db = TestDb::new().await;
    let setup = db.connect().await;
    prices(&setup, 4000, true).await;
    const SET: &str = "amount = amount * 100";

    // --dry-run says which way it runs, and changes nothing.
    let estimate =
        pgshift_runner::backfill::dry_run(&backfill("prices", SET, None, small()), &setup)
            .await
            .expect("dry run");
    let why = estimate.runs_once.expect("runs once");
    assert!(
        why.contains("reads a column it writes (amount = amount * 100)"),
        "{why}"
    );
    let idempotent = pgshift_runner::backfill::dry_run(
        &backfill("prices", "amount = id * 100", None, small()),
        &setup,
    )
    .await
    .expect("dry run");
    assert_eq!(idempotent.runs_once, None);
    assert_eq!(
        one(&setup, "SELECT count(*) FROM prices WHERE touched > 0").await,
        0
    );

    // Two runs stopped partway (their connection dropped mid-batch, as kill -9 would)...
    for stop_after in [Duration::from_millis(300), Duration::from_millis(400)] {
        let conn = db.connect().await;
        let task = tokio::spawn(async move {
            let mut options = small();
            options.max_rows_per_second = Some(4000);
            backfill("prices", SET, None, options)
                .run(&conn, &Silent)
                .await
        });
        tokio::time::sleep(stop_after).await;
        task.abort();
        let _ = task.await;
    }
    dropped_sessions_ended(&setup).await;
    let done_before = one(&setup, "SELECT count(*) FROM prices WHERE touched = 1").await;
    assert!(
        done_before > 0 && done_before < 4000,
        "stopped partway: {done_before} rows done"
    );
    assert_eq!(
        one(&setup, "SELECT count(*) FROM prices WHERE touched > 1").await,
        0
    );

    // ... then the same backfill again: it resumes at the checkpoint and walks once.
    let outcome = backfill("prices", SET, None, small())
        .run(&setup, &Silent)
        .await
        .expect("resume");
    assert!(outcome.runs_once.is_some());
    assert_eq!(outcome.passes, 1);
    assert_eq!(outcome.rows_total, 4000);
    assert_eq!(outcome.rows_updated as i64, 4000 - done_before);
    assert_eq!(
        one(
            &setup,
            "SELECT count(*) FROM prices WHERE amount <> id * 100"
        )
        .await,
        0,
        "every row exactly ×100"
    );
    assert_eq!(
        one(&setup, "SELECT count(*) FROM prices WHERE touched <> 1").await,
        0
    );
    let (status, runs_once): (String, Option<String>) = {
        let r = setup
            .query_one("SELECT status, runs_once FROM pgshift.backfills", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "done");
    assert!(runs_once
        .unwrap_or_default()
        .contains("reads a column it writes"));

    // Done is done: the same command changes nothing.
    let again = backfill("prices", SET, None, small())
        .run(&setup, &Silent)
        .await
        .expect("again");
    assert!(again.already_done);
    assert_eq!(
        one(
            &setup,
            "SELECT count(*) FROM prices WHERE amount <> id * 100"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_backfill_its_caller_did_not_mark_done_resumes_at_its_end_and_updates_nothing() {
    // A migration's backfill is marked done in the transaction that records the migration's
    // step. A crash between the end of the walk and that transaction must not start it over
    // (`restart_if_done`): a backfill that runs once would multiply every row again.
    let db = TestDb::new().await;
    let c = db.connect().await;
    prices(&c, 1500, true).await;
    let options = || BackfillOptions {
        restart_if_done: true,
        caller_marks_done: true,
        ..small()
    };
    let first = backfill("prices", "amount = amount * 100", None, options())
        .run(&c, &Silent)
        .await
        .expect("first");
    assert_eq!(first.rows_updated, 1500);
    let status: String = c
        .query_one("SELECT status FROM pgshift.backfills", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(status, "done", "left for the caller to mark");
    // The caller "crashed" before marking it: the step runs again.
    let again = backfill("prices", "amount = amount * 100", None, options())
        .run(&c, &Silent)
        .await
        .expect("again");
    assert_eq!(again.rows_updated, 0);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM prices WHERE amount <> id * 100 OR touched <> 1"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_run_once_backfill_an_earlier_pgshift_walked_twice_is_not_resumed() {
    // An earlier pgshift compared rows of `amount = amount * 100` and walked again: some rows
    // may be ×10,000 already. Resuming would hide that; it stops and says what happened.
    let db = TestDb::new().await;
    let c = db.connect().await;
    prices(&c, 500, true).await;
    let options = || BackfillOptions {
        caller_marks_done: true,
        ..small()
    };
    backfill("prices", "amount = amount * 100", None, options())
        .run(&c, &Silent)
        .await
        .expect("first");
    exec(
        &c,
        "UPDATE pgshift.backfills SET pass = 2, status = 'failed'",
    )
    .await;
    let err = backfill("prices", "amount = amount * 100", None, options())
        .run(&c, &Silent)
        .await
        .expect_err("refused");
    assert!(
        matches!(err, BackfillError::WalkedBefore { passes: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--restart"), "{err}");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM prices WHERE amount <> id * 100 OR touched <> 1"
        )
        .await,
        0,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_state_table_from_an_older_pgshift_gets_its_new_column_or_says_who_may_add_it() {
    let db = TestDb::new().await;
    let admin = db.connect().await;
    prices(&admin, 300, true).await;
    backfill("prices", "touched = touched", Some("false"), small())
        .run(&admin, &Silent)
        .await
        .expect("creates pgshift.backfills");
    // As an older pgshift left it: no runs_once. status still lists it.
    exec(
        &admin,
        "ALTER TABLE pgshift.backfills DROP COLUMN runs_once",
    )
    .await;
    let listed = pgshift_runner::backfill::state::list(&admin)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].runs_once, None);

    // A role that may write the table but does not own it cannot add the column: told who can.
    let role = format!("{}_bf", db.name());
    let role_q = pgshift_sql::ident::quote_ident(&role);
    exec(
        &admin,
        &format!(
            "CREATE ROLE {role_q} LOGIN PASSWORD 'not-a-secret';
             GRANT USAGE ON SCHEMA pgshift TO {role_q};
             GRANT SELECT, INSERT, UPDATE ON pgshift.backfills, prices TO {role_q};"
        ),
    )
    .await;
    let role_url = db
        .url()
        .with_user(&role)
        .with_password(Some("not-a-secret"));
    let outcome = tokio::spawn(async move {
        let conn = pgshift_db::connect(&role_url)
            .await
            .expect("connect as the role");
        backfill("prices", "amount = amount * 100", None, small())
            .run(&conn, &Silent)
            .await
    })
    .await;
    exec(
        &admin,
        &format!("DROP OWNED BY {role_q}; DROP ROLE {role_q};"),
    )
    .await;
    let err = outcome.expect("task").expect_err("cannot add the column");
    assert!(matches!(err, BackfillError::StateUpgrade { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("ADD COLUMN IF NOT EXISTS runs_once text"),
        "{err}"
    );
    assert_eq!(
        one(&admin, "SELECT count(*) FROM prices WHERE touched > 0").await,
        0
    );

    // Its owner adds it on the next run.
    let outcome = backfill("prices", "amount = amount * 100", None, small())
        .run(&admin, &Silent)
        .await
        .expect("owner");
    assert!(outcome.runs_once.is_some());
    let listed = pgshift_runner::backfill::state::list(&admin)
        .await
        .expect("list");
    assert!(listed.iter().any(|b| b.runs_once.is_some()));
}

#[tokio::test]
async fn swapped_columns_and_a_subquery_over_the_table_itself_run_once_too() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE pairs (id int PRIMARY KEY, a int, b int);
         INSERT INTO pairs SELECT g, g, -g FROM generate_series(1, 1500) g;
         ANALYZE pairs;",
    )
    .await;
    let outcome = backfill("pairs", "a = b, b = a", None, small())
        .run(&c, &Silent)
        .await
        .expect("swap");
    assert!(outcome.runs_once.is_some());
    assert_eq!(
        one(&c, "SELECT count(*) FROM pairs WHERE a <> -id OR b <> id").await,
        0,
        "swapped once"
    );
    // Each row's b becomes the number of rows up to it, read from the table itself.
    let outcome = backfill(
        "pairs",
        "b = (SELECT count(*) FROM pairs p WHERE p.id <= pairs.id)",
        None,
        small(),
    )
    .run(&c, &Silent)
    .await
    .expect("subquery");
    assert!(
        outcome.runs_once.is_some(),
        "a subquery over the table itself"
    );
    assert_eq!(one(&c, "SELECT count(*) FROM pairs WHERE b <> id").await, 0);
}

#[tokio::test]
async fn volatile_and_clock_values_update_each_row_exactly_once() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE tokens (id int PRIMARY KEY, token uuid, seen_at timestamptz, touched int NOT NULL DEFAULT 0);
         INSERT INTO tokens (id) SELECT g FROM generate_series(1, 3000) g;
         CREATE FUNCTION count_token_touch() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $$;
         CREATE TRIGGER count_touch BEFORE UPDATE ON tokens FOR EACH ROW EXECUTE FUNCTION count_token_touch();
         ANALYZE tokens;",
    )
    .await;
    let outcome = backfill("tokens", "token = gen_random_uuid()", None, small())
        .run(&c, &Silent)
        .await
        .expect("volatile");
    let why = outcome.runs_once.expect("runs once");
    assert!(
        why.contains("gen_random_uuid(), which is volatile"),
        "{why}"
    );
    assert_eq!(outcome.passes, 1);
    assert_eq!(outcome.rows_updated, 3000);
    assert_eq!(
        one(&c, "SELECT count(*) FROM tokens WHERE touched <> 1").await,
        0
    );
    assert_eq!(
        one(&c, "SELECT count(DISTINCT token) FROM tokens").await,
        3000
    );

    // now() is stable, but each batch is its own transaction with its own now().
    let outcome = backfill("tokens", "seen_at = now()", None, small())
        .run(&c, &Silent)
        .await
        .expect("clock");
    assert!(outcome.runs_once.expect("runs once").contains("now()"));
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM tokens WHERE touched <> 2 OR seen_at IS NULL"
        )
        .await,
        0
    );
    let outcome = backfill(
        "tokens",
        "seen_at = CURRENT_TIMESTAMP",
        Some("id <= 100"),
        small(),
    )
    .run(&c, &Silent)
    .await
    .expect("clock");
    assert!(outcome
        .runs_once
        .expect("runs once")
        .contains("CURRENT_TIMESTAMP"));
    assert_eq!(outcome.rows_updated, 100, "only the rows of its --where");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM tokens WHERE touched <> CASE WHEN id <= 100 THEN 3 ELSE 2 END"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_run_once_backfill_without_a_key_or_moving_the_key_is_refused_before_anything_is_written()
{
    let db = TestDb::new().await;
    let c = db.connect().await;
    prices(&c, 3000, false).await;
    for set in ["amount = amount * 100", "amount = random()"] {
        let bf = backfill("prices", set, None, small());
        let err = pgshift_runner::backfill::dry_run(&bf, &c)
            .await
            .expect_err("dry run refused too");
        assert!(matches!(err, BackfillError::OnceNeedsKey { .. }), "{err}");
        let err = bf.run(&c, &Silent).await.expect_err("refused");
        let text = err.to_string();
        assert!(matches!(err, BackfillError::OnceNeedsKey { .. }), "{text}");
        assert!(text.contains("Add a primary key"), "{text}");
        assert!(text.contains("Nothing was changed"), "{text}");
    }
    // A misspelt function is reported as the server reports it, not as a reason to run once.
    let err = backfill("prices", "amount = no_such_fn(amount)", None, small())
        .run(&c, &Silent)
        .await
        .expect_err("refused");
    assert!(matches!(err, BackfillError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    // An idempotent one still walks the same table by position.
    exec(&c, "ALTER TABLE prices ADD COLUMN cents numeric").await;
    backfill("prices", "cents = amount * 100", None, small())
        .run(&c, &Silent)
        .await
        .expect("idempotent ctid walk");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM prices WHERE amount <> id OR cents <> id * 100"
        )
        .await,
        0,
        "amount untouched, cents filled once"
    );

    // With a key, a run-once backfill may not move the key it walks by.
    exec(&c, "ALTER TABLE prices ADD PRIMARY KEY (id)").await;
    let err = backfill("prices", "id = id + 1000000", None, small())
        .run(&c, &Silent)
        .await
        .expect_err("refused");
    assert!(matches!(err, BackfillError::OnceAssignsKey { .. }), "{err}");
    assert!(err.to_string().contains("Nothing was changed"), "{err}");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM prices WHERE id > 3000 OR touched > 1"
        )
        .await,
        0
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pgshift.backfills WHERE status <> 'done'"
        )
        .await,
        0,
        "no record of the refused ones"
    );
}

mod in_migrations {
    use super::*;
    use pgshift_runner::plan::{plan, PlanOptions};
    use pgshift_runner::{Migrator, RunOptions};
    use pgshift_source::{load, Format};

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, sql) in files {
            std::fs::write(dir.path().join(name), sql).expect("write");
        }
        dir
    }

    const ADD_AND_FILL: &str = "ALTER TABLE items ADD COLUMN c int;
-- pgshift:backfill
UPDATE items SET c = a + 7 WHERE c IS NULL;
ALTER TABLE items ADD CONSTRAINT items_c_not_null CHECK (c IS NOT NULL) NOT VALID;
";

    #[tokio::test]
    async fn a_marked_update_runs_as_a_backfill_that_up_resumes_after_a_crash() {
        let db = TestDb::new().await;
        let c = db.connect().await;
        items(&c, 20_000).await;
        let dir = folder(&[("20240101000000_fill_c.up.sql", ADD_AND_FILL)]);
        let set = load(dir.path(), Some(Format::Pgshift)).expect("load");

        // plan says how it runs.
        let report = plan(&c, &set, &PlanOptions::default()).await.expect("plan");
        let text = format!("{report:?}");
        assert!(text.contains("batched, resumable backfill"), "{text}");

        // A run stopped partway (its connection dropped mid-batch)...
        let options = RunOptions {
            backfill_batch_time: Duration::from_millis(5),
            ..RunOptions::default()
        };
        let url = db.url();
        let (set2, options2) = (
            load(dir.path(), Some(Format::Pgshift)).unwrap(),
            options.clone(),
        );
        let task = tokio::spawn(async move {
            let mut m = Migrator::connect(&url, set2, options2)
                .await
                .expect("connect");
            m.up(None, &Silent).await
        });
        let start = Instant::now();
        while one(&c, "SELECT count(*) FROM items WHERE touched = 1").await < 500 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the backfill never started"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task.abort();
        let _ = task.await;
        dropped_sessions_ended(&c).await;
        let partway = one(&c, "SELECT count(*) FROM items WHERE touched = 1").await;
        assert!(partway < 20_000, "stopped partway ({partway})");

        // ... and `up` again: the ADD COLUMN is not run twice, the backfill resumes, the rest runs.
        let mut m = Migrator::connect(&db.url(), set, options)
            .await
            .expect("connect");
        m.up(None, &Silent).await.expect("up resumes");
        assert_eq!(
            one(&c, "SELECT count(*) FROM items WHERE touched <> 1").await,
            0,
            "no row updated twice"
        );
        assert_eq!(
            one(
                &c,
                "SELECT count(*) FROM items WHERE c IS DISTINCT FROM a + 7"
            )
            .await,
            0
        );
        assert_eq!(
            one(
                &c,
                "SELECT count(*) FROM pg_constraint WHERE conname = 'items_c_not_null'"
            )
            .await,
            1
        );
        let (id, status): (String, String) = {
            let r = c
                .query_one("SELECT id, status FROM pgshift.backfills", &[])
                .await
                .unwrap();
            (r.get(0), r.get(1))
        };
        assert_eq!(
            (id.as_str(), status.as_str()),
            ("20240101000000-up-2", "done")
        );
        assert_eq!(
            one(
                &c,
                "SELECT count(*) FROM pgshift.migrations WHERE state = 'applied'"
            )
            .await,
            1
        );
    }

    #[tokio::test]
    async fn up_down_up_backfills_again_and_a_down_backfill_has_its_own_checkpoint() {
        let db = TestDb::new().await;
        let c = db.connect().await;
        items(&c, 3000).await;
        let dir = folder(&[
            ("20240101000000_fill_c.up.sql", ADD_AND_FILL),
            (
                "20240101000000_fill_c.down.sql",
                "ALTER TABLE items DROP CONSTRAINT items_c_not_null;\n-- pgshift:backfill\nUPDATE items SET b = NULL WHERE b IS NOT NULL;\nALTER TABLE items DROP COLUMN c;\n",
            ),
        ]);
        exec(&c, "UPDATE items SET b = 1").await;
        let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
        let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
            .await
            .expect("connect");
        m.up(None, &Silent).await.expect("up");
        m.down(pgshift_runner::DownTarget::All, &Silent)
            .await
            .expect("down");
        assert_eq!(
            one(&c, "SELECT count(*) FROM items WHERE b IS NOT NULL").await,
            0,
            "the down's backfill ran"
        );
        m.up(None, &Silent).await.expect("up again");
        assert_eq!(
            one(
                &c,
                "SELECT count(*) FROM items WHERE c IS DISTINCT FROM a + 7"
            )
            .await,
            0,
            "filled again"
        );
        let ids: Vec<String> = c
            .query("SELECT id FROM pgshift.backfills ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(ids, ["20240101000000-down-2", "20240101000000-up-2"]);
    }

    #[tokio::test]
    async fn a_marked_update_reading_what_it_writes_runs_once_per_up_and_per_down() {
        let db = TestDb::new().await;
        let c = db.connect().await;
        prices(&c, 2000, true).await;
        let dir = folder(&[
            (
                "20240101000000_cents.up.sql",
                "-- pgshift:backfill\nUPDATE prices SET amount = amount * 100;\n",
            ),
            (
                "20240101000000_cents.down.sql",
                "-- pgshift:backfill\nUPDATE prices SET amount = amount / 100;\n",
            ),
        ]);
        let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
        let options = RunOptions {
            backfill_batch_time: Duration::from_millis(5),
            ..RunOptions::default()
        };
        let mut m = Migrator::connect(&db.url(), set, options)
            .await
            .expect("connect");
        m.up(None, &Silent).await.expect("up");
        assert_eq!(
            one(
                &c,
                "SELECT count(*) FROM prices WHERE amount <> id * 100 OR touched <> 1"
            )
            .await,
            0,
            "×100 once"
        );
        m.down(pgshift_runner::DownTarget::All, &Silent)
            .await
            .expect("down");
        assert_eq!(
            one(
                &c,
                "SELECT count(*) FROM prices WHERE amount <> id OR touched <> 2"
            )
            .await,
            0,
            "÷100 once"
        );
        m.up(None, &Silent).await.expect("up again");
        assert_eq!(
            one(
                &c,
                "SELECT count(*) FROM prices WHERE amount <> id * 100 OR touched <> 3"
            )
            .await,
            0,
            "×100 once more"
        );
        let states: Vec<(String, String)> = c
            .query("SELECT id, status FROM pgshift.backfills ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(
            states,
            [
                ("20240101000000-down-1".to_owned(), "done".to_owned()),
                ("20240101000000-up-1".to_owned(), "done".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn a_marker_inside_the_authors_own_transaction_is_refused() {
        let db = TestDb::new().await;
        let c = db.connect().await;
        items(&c, 10).await;
        let dir = folder(&[(
            "20240101000000_own_tx.up.sql",
            "BEGIN;\nALTER TABLE items ADD COLUMN c int;\nCOMMIT;\nBEGIN;\n-- pgshift:backfill\nUPDATE items SET c = 1;\nCOMMIT;\n",
        )]);
        let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
        let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
            .await
            .expect("connect");
        let err = m.up(None, &Silent).await.expect_err("refused").to_string();
        assert!(err.contains("controls its own transactions"), "{err}");
        assert_eq!(
            one(&c, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'c'").await,
            0
        );
    }

    #[tokio::test]
    async fn a_marker_on_a_statement_that_cannot_be_a_backfill_is_refused_with_its_line() {
        let db = TestDb::new().await;
        let c = db.connect().await;
        items(&c, 10).await;
        let dir = folder(&[(
            "20240101000000_bad.up.sql",
            "ALTER TABLE items ADD COLUMN c int;\n-- pgshift:backfill\nDELETE FROM items WHERE a = 1;\n",
        )]);
        let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
        let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
            .await
            .expect("connect");
        let err = m.up(None, &Silent).await.expect_err("refused").to_string();
        assert!(err.contains("20240101000000_bad.up.sql:3"), "{err}");
        assert!(err.contains("cannot run as a backfill"), "{err}");
        assert_eq!(
            one(&c, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'c'").await,
            0,
            "nothing ran"
        );
    }

    /// The bundled example's expand step: its trigger keeps both columns in step whichever
    /// version writes, and its backfill fills the rows that existed before.
    #[tokio::test]
    async fn the_shop_example_keeps_old_and_new_writes() {
        let db = TestDb::new().await;
        let c = db.connect().await;
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/migrations");
        let set = load(&example, Some(Format::Pgshift)).expect("load");
        let versions: Vec<_> = set.migrations.iter().map(|m| m.version.clone()).collect();
        let before_expand = versions[versions.len() - 2].clone();
        let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
            .await
            .expect("connect");
        m.up(Some(&before_expand), &Silent)
            .await
            .expect("up to before the expand");
        exec(&c, "INSERT INTO users (email, full_name) SELECT 'u' || g || '@x', 'Name ' || g FROM generate_series(1, 500) g").await;
        m.up(None, &Silent).await.expect("expand");
        assert_eq!(
            one(
                &c,
                "SELECT count(*) FROM users WHERE display_name IS DISTINCT FROM full_name"
            )
            .await,
            0,
            "backfilled"
        );
        // Old code renames by full_name, after the backfill: the new column follows.
        exec(
            &c,
            "UPDATE users SET full_name = 'Ada King' WHERE email = 'u1@x'",
        )
        .await;
        // New code renames by display_name: the old column follows.
        exec(
            &c,
            "UPDATE users SET display_name = 'Grace H' WHERE email = 'u2@x'",
        )
        .await;
        // Old code inserts without display_name, new code without full_name.
        exec(
            &c,
            "INSERT INTO users (email, full_name) VALUES ('old@x', 'Old Writer')",
        )
        .await;
        exec(
            &c,
            "INSERT INTO users (email, display_name) VALUES ('new@x', 'New Writer')",
        )
        .await;
        let rows = c
            .query("SELECT email, full_name, display_name FROM users WHERE email IN ('u1@x', 'u2@x', 'old@x', 'new@x') ORDER BY email", &[])
            .await
            .unwrap();
        let got: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(
            got,
            [
                ("new@x".into(), "New Writer".into(), "New Writer".into()),
                ("old@x".into(), "Old Writer".into(), "Old Writer".into()),
                ("u1@x".into(), "Ada King".into(), "Ada King".into()),
                ("u2@x".into(), "Grace H".into(), "Grace H".into()),
            ]
        );
    }
}

/// A partitioned table two levels deep, with a leaf that has a key of its own and a leaf that
/// has none (walked by position), each row counting its updates.
async fn partitioned_events(c: &Connection) {
    exec(
        c,
        "CREATE TABLE events (id bigint NOT NULL, region int NOT NULL, a int NOT NULL, b int,
                              touched int NOT NULL DEFAULT 0) PARTITION BY LIST (region);
         CREATE TABLE events_eu PARTITION OF events FOR VALUES IN (1);
         ALTER TABLE events_eu ADD PRIMARY KEY (id);
         CREATE TABLE events_us PARTITION OF events FOR VALUES IN (2);
         CREATE TABLE events_asia PARTITION OF events FOR VALUES IN (3, 4) PARTITION BY LIST (region);
         CREATE TABLE events_asia_3 PARTITION OF events_asia FOR VALUES IN (3);
         ALTER TABLE events_asia_3 ADD PRIMARY KEY (id);
         CREATE TABLE events_asia_4 PARTITION OF events_asia FOR VALUES IN (4);
         ALTER TABLE events_asia_4 ADD PRIMARY KEY (id);
         INSERT INTO events (id, region, a) SELECT g, 1 + g % 4, g % 1000 FROM generate_series(1, 6000) g;
         CREATE FUNCTION count_touch() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $$;
         CREATE TRIGGER count_touch BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION count_touch();
         ANALYZE events;",
    )
    .await;
}

#[tokio::test]
async fn a_partitioned_table_is_walked_leaf_by_leaf_and_a_stopped_run_resumes_each_leaf() {
    let db = TestDb::new().await;
    let setup = db.connect().await;
    partitioned_events(&setup).await;
    // A bad expression fails before anything is written, not even pgshift.backfills.
    let err = backfill("events", "b = a / 0", None, small())
        .run(&setup, &Silent)
        .await
        .expect_err("division by zero");
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert_eq!(
        one(&setup, "SELECT count(*) FROM events WHERE touched > 0 OR to_regclass('pgshift.backfills') IS NOT NULL").await,
        0
    );
    // Stopped partway twice, as kill -9 would (the task and its sessions dropped).
    for stop_after in [Duration::from_millis(300), Duration::from_millis(500)] {
        let conn = db.connect().await;
        let task = tokio::spawn(async move {
            let mut options = small();
            options.max_rows_per_second = Some(6000);
            backfill("events", "b = a + 1", None, options)
                .run(&conn, &Silent)
                .await
        });
        tokio::time::sleep(stop_after).await;
        task.abort();
        let _ = task.await;
    }
    dropped_sessions_ended(&setup).await;
    let done_before = one(&setup, "SELECT count(*) FROM events WHERE touched = 1").await;
    assert!(
        done_before > 0 && done_before < 6000,
        "stopped partway: {done_before} rows done"
    );
    let outcome = backfill("events", "b = a + 1", None, small())
        .run(&setup, &Silent)
        .await
        .expect("resume");
    assert_eq!(outcome.rows_total, 6000);
    assert_eq!(outcome.rows_updated as i64, 6000 - done_before);
    assert_eq!(outcome.table, "public.events");
    // Every row updated exactly once, in every leaf, whatever its walk.
    assert_eq!(
        one(
            &setup,
            "SELECT count(*) FROM events WHERE touched <> 1 OR b IS DISTINCT FROM a + 1"
        )
        .await,
        0
    );
    // One checkpoint per leaf, each walked its own way, and the whole recorded done.
    let rows = setup
        .query(
            "SELECT table_name, walk, status FROM pgshift.backfills ORDER BY table_name",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2)
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "public.events 4 partitions, 2 at once done",
            "public.events_asia_3 key (id) done",
            "public.events_asia_4 key (id) done",
            "public.events_eu key (id) done",
            "public.events_us ctid done",
        ]
    );
    // Run again: recorded done, nothing walked.
    let again = backfill("events", "b = a + 1", None, small())
        .run(&setup, &Silent)
        .await
        .expect("again");
    assert!(again.already_done);
    assert_eq!(
        one(&setup, "SELECT count(*) FROM events WHERE touched <> 1").await,
        0
    );
    // An expression that names the partitioned table reads each leaf's row.
    let qualified = backfill("events", "b = events.a + 1", None, small())
        .run(&setup, &Silent)
        .await
        .expect("qualified by the partitioned table's name");
    assert_eq!(qualified.rows_updated, 0, "every row already holds it");
    // The leaves' sessions resolve names as the caller's does (its search_path).
    exec(
        &setup,
        "CREATE SCHEMA helpers;
         CREATE FUNCTION helpers.plus_one(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1';
         SET search_path = public, helpers;",
    )
    .await;
    let resolved = backfill("events", "b = plus_one(a)", None, small())
        .run(&setup, &Silent)
        .await
        .expect("plus_one found on every leaf's session");
    assert_eq!(resolved.rows_updated, 0);
    // A bad expression fails before any leaf is written.
    let err = backfill("events", "b = a / 0", None, small())
        .run(&setup, &Silent)
        .await
        .expect_err("division by zero");
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert_eq!(
        one(&setup, "SELECT count(*) FROM events WHERE touched <> 1").await,
        0
    );
}

/// On a table never analyzed the planner guesses a predicate's selectivity (0.5% for
/// `IS NULL`); the estimate is read off a sample of the table's pages instead.
#[tokio::test]
async fn the_estimate_on_a_table_never_analyzed_comes_from_a_sample() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE fresh (id bigint PRIMARY KEY, a int NOT NULL, b int)
           WITH (autovacuum_enabled = off);
         INSERT INTO fresh SELECT g, g % 1000, CASE WHEN g % 4 = 0 THEN NULL ELSE 1 END
           FROM generate_series(1, 100000) g;",
    )
    .await;
    let bf = backfill("fresh", "b = a * 2", Some("b IS NULL"), small());
    let estimate = pgshift_runner::backfill::dry_run(&bf, &c)
        .await
        .expect("dry run");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_stats WHERE tablename = 'fresh'"
        )
        .await,
        0,
        "the dry run leaves the statistics as they were"
    );
    let needed = estimate.rows_needed as f64;
    assert!(
        (needed - 25_000.0).abs() < 25_000.0 * 0.2,
        "25,000 rows need it; estimated {needed}"
    );
    // Analyzed, the planner's estimate is used.
    exec(&c, "ANALYZE fresh").await;
    let estimate = pgshift_runner::backfill::dry_run(&bf, &c)
        .await
        .expect("dry run");
    let needed = estimate.rows_needed as f64;
    assert!(
        (needed - 25_000.0).abs() < 25_000.0 * 0.2,
        "25,000 rows need it; estimated {needed}"
    );
    // A column added since (the usual backfill) has no statistics of its own: sampled too.
    exec(&c, "ALTER TABLE fresh ADD COLUMN c int").await;
    let added = backfill("fresh", "c = a + 1", Some("c IS NULL"), small());
    let estimate = pgshift_runner::backfill::dry_run(&added, &c)
        .await
        .expect("dry run");
    let needed = estimate.rows_needed as f64;
    assert!(
        (needed - 100_000.0).abs() < 100_000.0 * 0.2,
        "every row needs it; estimated {needed}"
    );
}

/// While another session runs a query, the backfill yields (short batches, mostly rest) and
/// says why; once nobody else runs anything it goes at full speed and says nothing.
#[tokio::test]
async fn the_backfill_yields_while_the_application_runs_queries() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 3000).await;
    let app = db.connect().await;
    exec(&app, "SET application_name = 'app'").await;
    let sleeper = tokio::spawn(async move {
        let _ = app.batch_execute("SELECT pg_sleep(60)").await;
    });
    while one(
        &c,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'app' AND state = 'active'",
    )
    .await
        == 0
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let run = |set: &'static str, options: BackfillOptions| {
        let db_conn = db.connect();
        async move {
            let conn = db_conn.await;
            let (reasons, observer) = reasons_seen();
            backfill("items", set, None, options)
                .run(&conn, &observer)
                .await
                .expect("backfill");
            let all = reasons.lock().unwrap().clone();
            all
        }
    };
    let busy = run("b = 1", small()).await;
    assert!(
        busy.iter().any(|r| r.contains("the application is busy (")
            && r.contains("other session(s) at work): yielding, 10% of the time in batches")),
        "{busy:?}"
    );
    // Turned off, the same application does not slow it down.
    let mut off = small();
    off.when_busy = None;
    let ignored = run("b = 2", off).await;
    assert!(
        !ignored.iter().any(|r| r.contains("application is busy")),
        "{ignored:?}"
    );
    exec(
        &c,
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'app'",
    )
    .await;
    sleeper.await.unwrap();
    let quiet = run("b = 3", small()).await;
    assert!(
        !quiet.iter().any(|r| r.contains("application is busy")),
        "{quiet:?}"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM items WHERE b IS DISTINCT FROM 3").await,
        0
    );
}

/// An ordinary vacuum runs beside the backfill (it conflicts with no batch and reclaims their
/// dead rows); only a vacuum that prevents transaction ID wraparound is waited for.
#[tokio::test]
async fn only_a_vacuum_against_wraparound_pauses_the_backfill() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 40000).await;
    // Wraparound vacuums start at this age for this table (the smallest the server allows).
    exec(
        &c,
        "ALTER TABLE items SET (autovacuum_freeze_max_age = 100000)",
    )
    .await;
    // A vacuum that sleeps 100 ms at every page: at work on the table for about half a
    // minute, until it is cancelled.
    let vacuumer = db.connect().await;
    let vacuumer_pid = vacuumer.backend_pid();
    let vacuum = tokio::spawn(async move {
        vacuumer
            .batch_execute("SET vacuum_cost_delay = 100; SET vacuum_cost_limit = 1")
            .await
            .expect("settings");
        // Cancelled at the end of the test (VACUUM runs alone: not in a transaction block).
        let _ = vacuumer.batch_execute("VACUUM items").await;
    });
    let start = Instant::now();
    while one(
        &c,
        "SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = 'items'::regclass",
    )
    .await
        == 0
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the vacuum never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let run = |set: &'static str| {
        let db_conn = db.connect();
        async move {
            let conn = db_conn.await;
            let (reasons, observer) = reasons_seen();
            let mut options = small();
            options.when_busy = None;
            backfill("items", set, None, options)
                .run(&conn, &observer)
                .await
                .expect("backfill");
            let all = reasons.lock().unwrap().clone();
            all
        }
    };
    // The table is young: the vacuum is an ordinary one and the backfill does not wait for it
    // (it used to pause up to 10 minutes).
    let ordinary = tokio::time::timeout(Duration::from_secs(60), run("b = 1"))
        .await
        .expect("the backfill waited for an ordinary vacuum");
    assert!(
        !ordinary.iter().any(|r| r.contains("vacuum")),
        "{ordinary:?}"
    );
    // 100,001 transaction IDs later the table is past its freeze age: the same vacuum now
    // prevents wraparound, and the backfill waits until it has finished.
    exec(
        &c,
        "DO $$ BEGIN FOR i IN 1..100001 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$",
    )
    .await;
    let release = async {
        let start = Instant::now();
        while one(
            &c,
            "SELECT count(*) FROM pgshift.backfills WHERE throttle_reason LIKE '%wraparound%'",
        )
        .await
            == 0
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the backfill never waited for the wraparound vacuum"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            one(&c, "SELECT count(*) FROM items WHERE b = 2").await,
            0,
            "batches ran while the wraparound vacuum worked"
        );
        exec(&c, &format!("SELECT pg_cancel_backend({vacuumer_pid})")).await;
        vacuum.await.unwrap();
    };
    let (reasons, ()) = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::join!(run("b = 2"), release)
    })
    .await
    .expect("the backfill went on waiting after the vacuum");
    assert!(
        reasons.iter().any(|r| r
            == "a vacuum to prevent transaction ID wraparound is working on the table; the backfill waits so it can finish"),
        "{reasons:?}"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM items WHERE b IS DISTINCT FROM 2").await,
        0
    );
}

/// An application write that waits on a row a batch holds is counted by the batch's own
/// checkpoint: the next batches aim shorter, the reason says so, and the write lands.
#[tokio::test]
async fn sessions_waiting_on_a_batch_shorten_the_batches_and_are_shown() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    items(&c, 3000).await;
    // A slow row every 1,000: the batch holds the rows before it while it sleeps there.
    exec(
        &c,
        "CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$;
         CREATE TRIGGER slow_row BEFORE UPDATE ON items FOR EACH ROW
           WHEN (NEW.b IS DISTINCT FROM OLD.b AND NEW.id % 1000 = 0) EXECUTE FUNCTION slow_row();",
    )
    .await;
    let app = db.connect().await;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // The application keeps writing the rows just before the slow ones.
    let writer = tokio::spawn(async move {
        let mut writes = 0i64;
        while !flag.load(Ordering::Relaxed) {
            app.batch_execute("UPDATE items SET a = a + 1 WHERE id IN (999, 1999, 2999)")
                .await
                .expect("app update");
            writes += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        writes
    });
    let (reasons, observer) = reasons_seen();
    let mut options = small();
    options.target_batch = Duration::from_millis(200);
    options.when_busy = None;
    let bf = db.connect().await;
    backfill("items", "b = a * 2", Some("b IS NULL"), options)
        .run(&bf, &observer)
        .await
        .expect("backfill");
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.expect("writer");
    let reasons = reasons.lock().unwrap().clone();
    assert!(
        reasons
            .iter()
            .any(|r| r
                .contains("session(s) waited on the backfill's row locks; batches shortened to")),
        "{reasons:?}"
    );
    // Every application write landed: a is its start value plus the writes.
    assert_eq!(
        one(
            &c,
            &format!("SELECT count(*) FROM items WHERE id IN (999, 1999, 2999) AND a = id % 1000 + {writes}")
        )
        .await,
        3
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM items WHERE b IS NULL").await,
        0
    );
}
