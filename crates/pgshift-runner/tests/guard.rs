//! The lock-queue guard against a real PostgreSQL. Blocking is observed the way an operator
//! would: a third session samples `pg_blocking_pids` every 20 ms (no wall-clock thresholds on
//! the migration itself).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgshift_db::testing::TestDb;
use pgshift_runner::{Event, Migrator, RunOptions};
use pgshift_source::{load, Format};

const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// What the sampler saw.
#[derive(Debug, Default)]
struct Observed {
    /// The longest stretch during which an application query waited behind the migration.
    longest_app_wait_behind_us: Duration,
    /// Samples in which the migration itself was queued for a lock while the long
    /// transaction was open.
    migration_queued_samples: usize,
    samples: usize,
}

async fn setup(db: &TestDb) -> tempfile::TempDir {
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, v int);
         INSERT INTO items SELECT g, g FROM generate_series(1, 1000) g;",
    )
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("20240101000000_note.up.sql"),
        "ALTER TABLE items ADD COLUMN note text;\n",
    )
    .expect("write");
    dir
}

/// `items` as `setup` makes it, with `before` run on it, and a folder of one migration: `name`,
/// holding `sql`.
async fn one_migration(db: &TestDb, before: &str, name: &str, sql: &str) -> tempfile::TempDir {
    let dir = setup(db).await;
    db.connect()
        .await
        .batch_execute(before)
        .await
        .expect("before");
    std::fs::remove_file(dir.path().join("20240101000000_note.up.sql")).expect("remove");
    std::fs::write(dir.path().join(name), sql).expect("write");
    dir
}

/// Runs `up` while a long transaction holds ACCESS SHARE on `items` for `hold`, with an
/// application session querying `items` in a loop, and samples who blocks whom.
async fn run_with_long_reader(
    db: &TestDb,
    dir: &Path,
    options: RunOptions,
    hold: Duration,
) -> (Observed, Vec<Event>) {
    let holder = db.connect().await;
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM items;")
        .await
        .expect("long reader");

    let set = load(dir, Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, options)
        .await
        .expect("connect");
    let migrator_pid = m.connection().backend_pid();

    let app = db.connect().await;
    let app_pid = app.backend_pid();
    let stop = Arc::new(AtomicBool::new(false));
    let app_stop = stop.clone();
    let app_task = tokio::spawn(async move {
        while !app_stop.load(Ordering::Relaxed) {
            app.query_one("SELECT count(*) FROM items", &[])
                .await
                .expect("app query");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let up = tokio::spawn(async move {
        let observer = move |e: &Event| sink.lock().expect("events").push(e.clone());
        m.up(None, &observer).await
    });

    let sampler = db.connect().await;
    let mut seen = Observed::default();
    let started = Instant::now();
    let mut released = false;
    let mut app_blocked_since: Option<Instant> = None;
    while !up.is_finished() {
        if !released && started.elapsed() >= hold {
            holder.batch_execute("COMMIT").await.expect("release");
            released = true;
        }
        let rows = sampler
            .query(
                "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE pid = ANY($1)",
                &[&vec![app_pid, migrator_pid]],
            )
            .await
            .expect("sample");
        let now = Instant::now();
        seen.samples += 1;
        for row in rows {
            let pid: i32 = row.get(0);
            let blockers: Vec<i32> = row.get(1);
            if pid == app_pid {
                if blockers.contains(&migrator_pid) {
                    let since = *app_blocked_since.get_or_insert(now);
                    seen.longest_app_wait_behind_us = seen
                        .longest_app_wait_behind_us
                        .max(now - since + SAMPLE_EVERY);
                } else {
                    app_blocked_since = None;
                }
            } else if pid == migrator_pid && !blockers.is_empty() && !released {
                seen.migration_queued_samples += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the migration did not finish"
        );
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    if !released {
        // The guard may have terminated it (guard_cancel_after).
        let _ = holder.batch_execute("COMMIT").await;
    }
    up.await.expect("join").expect("up");
    stop.store(true, Ordering::Relaxed);
    app_task.await.expect("app");
    let events = events.lock().expect("events").clone();
    (seen, events)
}

async fn has_note_column(db: &TestDb) -> bool {
    let c = db.connect().await;
    c.query_opt(
        "SELECT 1 FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'note'",
        &[],
    )
    .await
    .expect("query")
    .is_some()
}

/// Runs `up` of `dir` until the guard says it waits (failing if it never does), then ends
/// `holder`'s transaction and lets `up` finish; its events.
async fn up_once_the_guard_waits(
    db: &TestDb,
    dir: &Path,
    holder: &pgshift_db::Connection,
) -> Vec<Event> {
    let set = load(dir, Some(Format::Pgshift)).expect("load");
    let m = Migrator::connect(&db.url(), set, options())
        .await
        .expect("connect");
    run_up_once_the_guard_waits(m, holder).await
}

/// [`up_once_the_guard_waits`] with a `Migrator` the caller made (and may have run before).
async fn run_up_once_the_guard_waits(
    mut m: Migrator,
    holder: &pgshift_db::Connection,
) -> Vec<Event> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let up = tokio::spawn(async move {
        let observer = move |e: &Event| sink.lock().expect("events").push(e.clone());
        m.up(None, &observer).await
    });
    let started = Instant::now();
    while !events
        .lock()
        .expect("events")
        .iter()
        .any(|e| matches!(e, Event::GuardWaiting { .. }))
    {
        assert!(
            !up.is_finished() && started.elapsed() < Duration::from_secs(30),
            "the guard did not wait for the reader: {:#?}",
            events.lock().expect("events")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    holder.batch_execute("COMMIT").await.expect("release");
    up.await.expect("join").expect("up");
    let events = events.lock().expect("events").clone();
    events
}

fn options() -> RunOptions {
    RunOptions {
        lock_timeout: Duration::from_millis(300),
        lock_retry_initial_delay: Duration::from_millis(100),
        lock_retry_max_delay: Duration::from_millis(400),
        lock_retry_budget: Duration::from_secs(30),
        ..RunOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_a_long_transaction_reads_the_table_no_query_queues_behind_the_alter() {
    let db = TestDb::new().await;
    let dir = setup(&db).await;
    let opts = options();
    let lock_timeout = opts.lock_timeout;
    let (seen, events) =
        run_with_long_reader(&db, dir.path(), opts, Duration::from_millis(1500)).await;

    assert!(seen.samples > 20, "sampled throughout: {seen:?}");
    assert!(
        seen.longest_app_wait_behind_us <= lock_timeout + Duration::from_millis(150),
        "an application query waited behind the migration for longer than lock_timeout: {seen:?}"
    );
    assert_eq!(
        seen.migration_queued_samples, 0,
        "the guard waits outside the lock queue while the long transaction is open: {seen:?}"
    );
    let waiting = events.iter().find_map(|e| match e {
        Event::GuardWaiting {
            sessions, tables, ..
        } => Some((sessions.clone(), tables.clone())),
        _ => None,
    });
    let (sessions, tables) = waiting.expect("the guard reported who it waits for");
    assert_eq!(tables, vec!["items".to_string()]);
    assert_eq!(sessions[0].state, "idle in transaction", "{sessions:?}");
    assert!(sessions[0].xact_age.is_some());
    assert!(has_note_column(&db).await, "the migration completed");
}

/// `DROP INDEX` as written (`--exact`) locks the index's table: the guard knows the table from
/// the catalog and waits outside the queue for the session using it, as for any other statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drop_index_run_as_written_is_guarded_by_its_table() {
    let db = TestDb::new().await;
    let dir = one_migration(
        &db,
        "CREATE INDEX items_v_idx ON items (v)",
        "20240101000000_drop_index.up.sql",
        "DROP INDEX items_v_idx;\n",
    )
    .await;
    let opts = RunOptions {
        exact: true,
        ..options()
    };
    let (seen, events) =
        run_with_long_reader(&db, dir.path(), opts, Duration::from_millis(1500)).await;
    assert_eq!(
        seen.migration_queued_samples, 0,
        "the guard waits outside the lock queue while the long transaction is open: {seen:?}"
    );
    let tables = events.iter().find_map(|e| match e {
        Event::GuardWaiting { tables, .. } => Some(tables.clone()),
        _ => None,
    });
    assert_eq!(tables, Some(vec!["items".to_string()]), "{events:#?}");
    let left: i64 = db
        .connect()
        .await
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'items_v_idx'",
            &[],
        )
        .await
        .expect("query")
        .get(0);
    assert_eq!(left, 0, "the index is gone");
}

/// The same run without the guard: the migration joins the lock queue (so the test above can
/// fail), and `lock_timeout` with retry still bounds how long queries wait behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_guard_the_alter_queues_but_lock_timeout_bounds_the_wait() {
    let db = TestDb::new().await;
    let dir = setup(&db).await;
    let opts = RunOptions {
        guard_max_wait: Duration::ZERO,
        ..options()
    };
    let lock_timeout = opts.lock_timeout;
    let (seen, events) =
        run_with_long_reader(&db, dir.path(), opts, Duration::from_millis(1500)).await;
    assert!(
        seen.migration_queued_samples > 0,
        "without the guard the ALTER waits in the lock queue: {seen:?}"
    );
    assert!(
        seen.longest_app_wait_behind_us <= lock_timeout + Duration::from_millis(150),
        "{seen:?}"
    );
    assert!(events.iter().any(|e| matches!(e, Event::LockRetry { .. })));
    assert!(has_note_column(&db).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_guard_can_end_the_session_in_the_way_after_a_grace_period() {
    let db = TestDb::new().await;
    let dir = setup(&db).await;
    let opts = RunOptions {
        guard_cancel_after: Duration::from_millis(500),
        ..options()
    };
    // Held far longer than the test runs: only the guard's terminate can end it.
    let (_seen, events) =
        run_with_long_reader(&db, dir.path(), opts, Duration::from_secs(3600)).await;
    let ended = events.iter().find_map(|e| match e {
        Event::GuardCancelled {
            terminated,
            signalled,
            ..
        } => Some((*terminated, *signalled)),
        _ => None,
    });
    assert_eq!(
        ended,
        Some((true, true)),
        "an idle-in-transaction session is terminated"
    );
    assert!(has_note_column(&db).await);
}

/// A table an earlier migration of the same `up` created was used by nobody before the run:
/// the guard does not look at it (a session that locks it meanwhile is met by the unit's
/// `lock_timeout` and retry instead), while a table that existed before the command is still
/// guarded. Nor is the index on the new table built CONCURRENTLY: it is built as written, in
/// its migration's transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_created_earlier_in_the_run_is_not_guarded() {
    let db = TestDb::new().await;
    let dir = setup(&db).await;
    std::fs::write(
        dir.path().join("20240102000000_fresh.up.sql"),
        "CREATE TABLE fresh (id int, v int);\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("20240103000000_fresh_change.up.sql"),
        "ALTER TABLE fresh ADD COLUMN w int;\nCREATE INDEX fresh_v ON fresh (v);\n",
    )
    .expect("write");
    // Once `fresh` exists, a session takes a lock on it and keeps it for a while.
    let holder = Arc::new(db.connect().await);
    let release = holder.clone();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let observer = move |e: &Event| {
        if matches!(e, Event::Applied { version, .. } if version == "20240102000000") {
            let holder = holder.clone();
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async {
                    holder
                        .batch_execute("BEGIN; LOCK TABLE fresh IN ACCESS SHARE MODE")
                        .await
                        .expect("lock fresh")
                })
            });
            let release = release.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                release.batch_execute("COMMIT").await.expect("release");
            });
        }
        sink.lock().expect("events").push(e.clone());
    };
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    m.up(None, &observer).await.expect("up");
    let events = events.lock().expect("events").clone();
    let guarded: Vec<&Vec<String>> = events
        .iter()
        .filter_map(|e| match e {
            Event::GuardWaiting { tables, .. } => Some(tables),
            _ => None,
        })
        .collect();
    assert!(guarded.is_empty(), "{guarded:?}");
    let retries = events
        .iter()
        .filter(|e| matches!(e, Event::LockRetry { version, .. } if version == "20240103000000"))
        .count();
    assert!(
        retries > 0,
        "the ALTER met the lock under lock_timeout: {events:#?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Rewrite { .. })),
        "{events:#?}"
    );
    let c = db.connect().await;
    let valid: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_index WHERE indexrelid = 'fresh_v'::regclass AND indisvalid",
            &[],
        )
        .await
        .expect("index")
        .get(0);
    assert_eq!(valid, 1);
}

/// A table is new only to the command that made it: the next `up` of the same `Migrator`
/// (an application that embeds pgshift, and keeps it) looks at it like any other.
#[tokio::test]
async fn a_table_an_earlier_command_created_is_guarded_in_the_next() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("20240101000000_fresh.up.sql"),
        "CREATE TABLE fresh (id int);\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("20240102000000_change.up.sql"),
        "ALTER TABLE fresh ADD COLUMN w int;\n",
    )
    .expect("write");
    let mut m = Migrator::connect(
        &db.url(),
        load(dir.path(), Some(Format::Pgshift)).expect("load"),
        options(),
    )
    .await
    .expect("connect");
    let first = pgshift_source::Version::parse("20240101000000").expect("version");
    m.up(Some(&first), &|_: &Event| {}).await.expect("first up");
    let reader = db.connect().await;
    reader
        .batch_execute("BEGIN; SELECT * FROM fresh")
        .await
        .expect("read");
    run_up_once_the_guard_waits(m, &reader).await;
}

/// The guard's first look takes the unit's locks NOWAIT with its BEGIN; a table that is not
/// there to lock makes that look fail, and the unit still runs (the guard then finds nobody in
/// the way of a table that does not exist).
#[tokio::test]
async fn a_unit_on_a_table_that_is_not_there_still_runs() {
    let db = TestDb::new().await;
    let dir = setup(&db).await;
    std::fs::write(
        dir.path().join("20240102000000_gone.up.sql"),
        "DROP TABLE IF EXISTS never_created;\nALTER TABLE items ADD COLUMN after_drop int;\n",
    )
    .expect("write");
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let observer = move |e: &Event| sink.lock().expect("events").push(e.clone());
    let applied = m.up(None, &observer).await.expect("up");
    assert_eq!(applied.len(), 2);
    let events = events.lock().expect("events").clone();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::GuardWaiting { .. } | Event::LockRetry { .. })),
        "{events:#?}"
    );
    let c = db.connect().await;
    let column: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'after_drop'",
            &[],
        )
        .await
        .expect("column")
        .get(0);
    assert_eq!(column, 1);
}

/// A `LOCK` on a view locks every table the view reads, in the same mode: the guard's NOWAIT
/// first look never locks a view (it looks at who is in the way instead), so dropping a view
/// takes no lock on the table under it.
#[tokio::test]
async fn dropping_a_view_never_locks_the_table_it_reads() {
    let db = TestDb::new().await;
    let dir = setup(&db).await;
    let c = db.connect().await;
    c.batch_execute("CREATE VIEW items_view AS SELECT id, v FROM items")
        .await
        .expect("view");
    std::fs::write(
        dir.path().join("20240102000000_drop_view.up.sql"),
        "DROP VIEW items_view;\nCREATE TABLE locks_seen AS SELECT mode FROM pg_locks WHERE relation = 'items'::regclass AND pid = pg_backend_pid();\n",
    )
    .expect("write");
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    m.up(None, &pgshift_runner::Silent).await.expect("up");
    let modes: Vec<String> = c
        .query("SELECT mode FROM locks_seen ORDER BY 1", &[])
        .await
        .expect("locks seen")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !modes.iter().any(|m| m == "AccessExclusiveLock"),
        "the migration held {modes:?} on items"
    );
}

/// The guard's first look at a view is `pg_locks`, in the unit's own round trip: a session
/// reading the view in an open transaction fails it, and the guard waits for that session
/// outside the lock queue, as for a table, instead of the `DROP VIEW` queueing (lock
/// timeouts and retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_view_read_in_an_open_transaction_is_waited_for_before_it_is_dropped() {
    let db = TestDb::new().await;
    let dir = one_migration(
        &db,
        "CREATE VIEW items_view AS SELECT id, v FROM items",
        "20240102000000_drop_view.up.sql",
        "DROP VIEW items_view;\n",
    )
    .await;
    let c = db.connect().await;
    let holder = db.connect().await;
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM items_view;")
        .await
        .expect("reader");
    let events = up_once_the_guard_waits(&db, dir.path(), &holder).await;
    let tables = events.iter().find_map(|e| match e {
        Event::GuardWaiting { tables, .. } => Some(tables.clone()),
        _ => None,
    });
    assert_eq!(tables, Some(vec!["items_view".to_string()]));
    assert!(
        !events.iter().any(|e| matches!(e, Event::LockRetry { .. })),
        "{events:#?}"
    );
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'items_view'",
            &[],
        )
        .await
        .expect("view gone")
        .get(0);
    assert_eq!(left, 0);
}

/// `CREATE TABLE IF NOT EXISTS` may find the table there, in use: what the migration does to
/// it after is guarded as on any table (it was taken for a new table once, and not looked at).
#[tokio::test]
async fn a_table_created_if_not_exists_that_was_there_and_in_use_is_waited_for() {
    let db = TestDb::new().await;
    let dir = one_migration(
        &db,
        "SELECT 1",
        "20240102000000_note.up.sql",
        "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, v int);\nALTER TABLE items ADD COLUMN note text;\n",
    )
    .await;
    let holder = db.connect().await;
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM items;")
        .await
        .expect("reader");
    let events = up_once_the_guard_waits(&db, dir.path(), &holder).await;
    assert!(
        !events.iter().any(|e| matches!(e, Event::LockRetry { .. })),
        "{events:#?}"
    );
    assert!(has_note_column(&db).await);
}

/// A deadlock the server breaks by rolling the migration's unit back is retried, as a lock
/// timeout is: the application's transaction that closed the cycle goes on, and the migration
/// lands on the next attempt.
#[tokio::test]
async fn a_unit_rolled_back_by_a_deadlock_is_retried_and_lands() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET deadlock_timeout = %L', current_database(), '100ms'); END $$;",
    )
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    // Takes `a`, pauses, then needs `b`: the application holds `b` and then asks for `a`.
    std::fs::write(
        dir.path().join("20240101000000_ab.up.sql"),
        "ALTER TABLE a ADD COLUMN x int;\nSELECT pg_sleep(0.4);\nALTER TABLE b ADD COLUMN y int;\n",
    )
    .expect("write");
    let app = db.connect().await;
    app.batch_execute("SET deadlock_timeout = '10s'; BEGIN; LOCK TABLE b IN ROW EXCLUSIVE MODE;")
        .await
        .expect("app holds b");
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let options = RunOptions {
        guard_max_wait: Duration::ZERO,
        lock_timeout: Duration::from_secs(5),
        lock_retry_initial_delay: Duration::from_millis(50),
        ..RunOptions::default()
    };
    let mut m = Migrator::connect(&db.url(), set, options)
        .await
        .expect("connect");
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let up = tokio::spawn(async move {
        let observer = move |e: &Event| seen.lock().unwrap().push(e.clone());
        m.up(None, &observer).await
    });
    // The migration holds `a` and sleeps; the application asks for `a` (it waits), then the
    // migration asks for `b`: a cycle, which the migration's shorter deadlock_timeout finds.
    tokio::time::sleep(Duration::from_millis(150)).await;
    app.batch_execute("SELECT count(*) FROM a; COMMIT;")
        .await
        .expect("the application's transaction goes on");
    up.await.expect("join").expect("up lands on a retry");
    let retried = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::LockRetry { .. }))
        .count();
    assert!(retried >= 1, "the deadlock was retried");
    let cols: i64 = c
        .query_one("SELECT count(*) FROM pg_attribute WHERE attname IN ('x', 'y') AND attrelid IN ('a'::regclass, 'b'::regclass)", &[])
        .await
        .expect("q")
        .get(0);
    assert_eq!(cols, 2);
}

/// A unit that locks several tables (an online key change's contract) never waits for one
/// table while holding another: under a stream of short application transactions, which
/// the guard does not wait for, it takes its locks NOWAIT until they are all free at once.
/// A sampler watches the migrating session's lock requests: none is ever left waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_locking_several_tables_never_waits_while_holding_one() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE customers (id int PRIMARY KEY);
         CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers);
         INSERT INTO customers SELECT generate_series(1, 100);
         INSERT INTO orders (customer_id) SELECT 1 + g % 100 FROM generate_series(1, 1000) g;",
    )
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("20240101000000_key.up.sql"),
        "ALTER TABLE customers ALTER COLUMN id TYPE bigint;\n",
    )
    .expect("write");
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    m.up(None, &|_: &Event| {}).await.expect("expand");

    // The application: short transactions on orders (younger than the guard's threshold).
    let stop = Arc::new(AtomicBool::new(false));
    let app = {
        let (url, stop) = (db.url(), stop.clone());
        tokio::spawn(async move {
            let c = pgshift_db::connect(&url).await.expect("app");
            // Not the migrating session's name, which the sampler looks for.
            c.batch_execute("SET application_name = 'app'")
                .await
                .expect("name");
            while !stop.load(Ordering::Relaxed) {
                // Holding orders most of the time, each transaction younger than the guard's
                // threshold (100 ms): ordinary traffic it lets pass.
                c.batch_execute("BEGIN; INSERT INTO orders (customer_id) VALUES (7); SELECT pg_sleep(0.04); COMMIT;")
                    .await
                    .expect("app transaction");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let waits = Arc::new(Mutex::new(Vec::<String>::new()));
    let sampler = {
        let (url, stop, waits) = (db.url(), stop.clone(), waits.clone());
        tokio::spawn(async move {
            let c = pgshift_db::connect(&url).await.expect("sampler");
            c.batch_execute("SET application_name = 'sampler'")
                .await
                .expect("name");
            let mut samples = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let rows = c
                    .query(
                        "SELECT l.relation::regclass::text || ' ' || l.mode || ' ' || a.query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                          WHERE a.datname = current_database() AND a.application_name = 'pgshift'
                            AND NOT l.granted AND l.locktype = 'relation'",
                        &[],
                    )
                    .await
                    .expect("sample");
                waits
                    .lock()
                    .unwrap()
                    .extend(rows.iter().map(|r| r.get::<_, String>(0)));
                samples += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            samples
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    m.complete(None, &|_: &Event| {}).await.expect("complete");
    stop.store(true, Ordering::Relaxed);
    app.await.expect("app");
    let samples = sampler.await.expect("sampler");
    assert!(samples > 20, "the sampler ran ({samples} samples)");
    let waits = waits.lock().unwrap().clone();
    assert!(waits.is_empty(), "the contract waited for {waits:?}");
    let ty: String = c
        .query_one("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'customer_id'", &[])
        .await
        .expect("q")
        .get(0);
    assert_eq!(ty, "bigint");
}

/// An autovacuum gives way to any lock request (the server cancels it once a request has
/// waited `deadlock_timeout`) and may run for hours on a large table: the guard neither waits
/// for it to finish nor queues behind it. It cancels it, says so, and the migration runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_autovacuum_in_the_way_is_cancelled_not_waited_for() {
    // A cluster of its own, where autovacuum looks every second.
    let cluster = pgshift_db::TempCluster::start(
        pgshift_db::ClusterOptions::default().setting("autovacuum_naptime", "1"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let c = pgshift_db::connect(&url).await.expect("connect");
    // Dead rows, and a vacuum that sleeps 100 ms at nearly every page: it runs for minutes.
    c.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, v int) WITH (
           autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
           autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1,
           autovacuum_analyze_threshold = 2000000000);
         INSERT INTO items SELECT g, g FROM generate_series(1, 200000) g;
         DELETE FROM items WHERE id % 2 = 0;",
    )
    .await
    .expect("setup");
    let started = Instant::now();
    let vacuum_pid = loop {
        let row = c
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE 'autovacuum: VACUUM public.items%'",
                &[],
            )
            .await
            .expect("look");
        if let Some(row) = row {
            break row.get::<_, i32>(0);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "autovacuum never started on items"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("20240101000000_note.up.sql"),
        "ALTER TABLE items ADD COLUMN note text;\n",
    )
    .expect("write");
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    // Longer than the test may take: a guard that waited for the vacuum would give up only
    // after the test failed.
    let opts = RunOptions {
        guard_max_wait: Duration::from_secs(600),
        ..options()
    };
    let mut m = Migrator::connect(&url, set, opts).await.expect("migrator");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let observer = move |e: &Event| sink.lock().expect("events").push(e.clone());
    tokio::time::timeout(Duration::from_secs(60), m.up(None, &observer))
        .await
        .expect("the migration waited for the autovacuum")
        .expect("up");
    let events = events.lock().expect("events").clone();
    let cancelled = events.iter().find_map(|e| match e {
        Event::GuardCancelled {
            session,
            terminated,
            signalled,
            ..
        } => Some((session.pid, *terminated, *signalled)),
        _ => None,
    });
    assert_eq!(cancelled, Some((vacuum_pid, false, true)), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::GuardGaveUp { .. })),
        "{events:?}"
    );
    let note: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'note'",
            &[],
        )
        .await
        .expect("look")
        .get(0);
    assert_eq!(note, 1);
}

/// A unit whose statements all fail unless their relation is a table is looked at without
/// asking what the relation is: on a view the `LOCK` is granted (its tables are free), the
/// statement fails with its own error, and the rolled-back unit holds nothing.
#[tokio::test]
async fn a_statement_that_fails_on_a_view_gets_its_own_error_and_holds_nothing() {
    let db = TestDb::new().await;
    let dir = one_migration(
        &db,
        "CREATE VIEW items_view AS SELECT id, v FROM items",
        "20240102000000_view_column.up.sql",
        "ALTER TABLE items_view ADD COLUMN z int;\n",
    )
    .await;
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, options())
        .await
        .expect("connect");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let observer = move |e: &Event| sink.lock().expect("events").push(e.clone());
    let err = m
        .up(None, &observer)
        .await
        .expect_err("a view takes no new column");
    let message = err.to_string();
    assert!(
        message.contains("cannot be performed on relation \"items_view\""),
        "{message}"
    );
    assert!(
        message.contains("20240102000000_view_column.up.sql"),
        "{message}"
    );
    // The view's table is free again at once, and nothing was recorded.
    let c = db.connect().await;
    c.batch_execute("BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE NOWAIT; ROLLBACK")
        .await
        .expect("items is free");
    let recorded: i64 = c
        .query_one(
            "SELECT count(*) FROM pgshift.migrations WHERE state = 'applied'",
            &[],
        )
        .await
        .expect("history")
        .get(0);
    assert_eq!(recorded, 0);
    assert!(
        !events
            .lock()
            .expect("events")
            .iter()
            .any(|e| matches!(e, Event::LockRetry { .. })),
        "{:#?}",
        events.lock().expect("events")
    );
}

/// The guard's first look locks a table `NOWAIT` only once the same round trip has told it
/// is a table: an ordinary table, unlogged, temporary or partitioned, passes; a view (whose
/// `LOCK` would lock every table it reads) or a name that is not there does not, and the unit
/// gets the guard's usual look.
#[tokio::test]
async fn the_first_look_takes_tables_of_every_persistence_and_never_a_view() {
    use pgshift_runner::guard::{lock_nowait, GuardedTable};
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE plain_t (id int);
         CREATE UNLOGGED TABLE unlogged_t (id int);
         CREATE TEMP TABLE temp_t (id int);
         CREATE TABLE parted_t (id int) PARTITION BY RANGE (id);
         CREATE VIEW view_v AS SELECT 1 AS a;",
    )
    .await
    .expect("relations");
    let unit = pgshift_runner::units::Unit::new(true, false, Vec::new());
    for (name, is_table) in [
        ("plain_t", true),
        ("unlogged_t", true),
        ("temp_t", true),
        ("parted_t", true),
        ("view_v", false),
        ("missing_t", false),
    ] {
        let table = GuardedTable {
            quoted: name.to_string(),
            display: name.to_string(),
            lock: pgshift_db::LockLevel::AccessExclusive,
            pg_locks_only: false,
            kind_checked: true,
        };
        let sql = lock_nowait(&unit, &[table], &RunOptions::default())
            .expect("a first look")
            .sql;
        let outcome = c
            .batch_execute(&format!("BEGIN; {sql}"))
            .await
            .map_err(|e| e.code().map(|c| c.code().to_string()));
        c.batch_execute("ROLLBACK").await.expect("rollback");
        assert_eq!(outcome.is_ok(), is_table, "{name}: {outcome:?}");
    }
}
