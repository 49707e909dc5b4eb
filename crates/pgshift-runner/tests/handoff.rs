//! `down`, and `up` on a fresh database, send each migration behind the one before it, before
//! that one's answer (`handoff.rs`), and nothing of it stays unless the one before committed.
//! Against a real PostgreSQL: each test gets its own database.

use std::path::Path;
use std::time::Duration;

use pgshift_db::testing::TestDb;
use pgshift_runner::{DownTarget, Event, Migrator, RunOptions, Silent};
use pgshift_source::{load, Format};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

async fn migrator(db: &TestDb, dir: &Path) -> Migrator {
    let set = load(dir, Some(Format::Pgshift)).expect("load");
    let options = RunOptions {
        // The test holds a lock the migration waits for while it looks.
        lock_timeout: Duration::from_secs(60),
        ..RunOptions::default()
    };
    Migrator::connect(&db.url(), set, options)
        .await
        .expect("connect")
}

/// The text column `sql` selects, row by row.
async fn texts(db: &TestDb, sql: &str) -> Vec<String> {
    db.connect()
        .await
        .query(sql, &[])
        .await
        .expect(sql)
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn versions(db: &TestDb) -> Vec<String> {
    texts(
        db,
        "SELECT version FROM pgshift.migrations ORDER BY version",
    )
    .await
}

async fn tables(db: &TestDb) -> Vec<String> {
    texts(
        db,
        "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1",
    )
    .await
}

/// The text session `pid` runs once it waits for a lock (for at most 30 s): how it was sent.
async fn text_once_waiting(db: &TestDb, pid: i32) -> String {
    let watcher = db.connect().await;
    for _ in 0..600 {
        let row = watcher
            .query_opt(
                "SELECT query FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                &[&pid],
            )
            .await
            .expect("activity");
        if let Some(row) = row {
            return row.get(0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    String::new()
}

/// Three migrations, `a`, `b` and `c`; `c`'s down is `c_down`. `b` makes nothing: its row in
/// the history is what tells whether it was reverted.
fn three(c_down: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(
        d,
        "1_a.up.sql",
        "CREATE TABLE parent (id int PRIMARY KEY);
         CREATE TABLE child (id int, p int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
         INSERT INTO parent VALUES (1);
         INSERT INTO child VALUES (1, 1);\n",
    );
    write(d, "1_a.down.sql", "DROP TABLE child;\nDROP TABLE parent;\n");
    // Its down waits while the test holds the lock: a statement of its own, a text of its own.
    write(d, "2_b.up.sql", "SELECT 1;\n");
    write(d, "2_b.down.sql", "SELECT pg_advisory_xact_lock(4242);\n");
    write(d, "3_c.up.sql", "CREATE TABLE c (id int);\n");
    write(d, "3_c.down.sql", c_down);
    dir
}

/// Applies [`three`] with `c_down`, runs `down --all`, which must fail at `c`, and checks that
/// nothing was reverted: `b`, sent behind `c`, did not run. Returns the migrator and what the
/// error said.
async fn down_fails_at_c(db: &TestDb, c_down: &str) -> (Migrator, String) {
    let dir = three(c_down);
    let mut m = migrator(db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    let err = m
        .down(DownTarget::All, &Silent)
        .await
        .expect_err("c's down fails");
    assert_eq!(versions(db).await, ["1", "2", "3"]);
    assert_eq!(tables(db).await, ["c", "child", "parent"]);
    (m, err.to_string())
}

#[tokio::test]
async fn the_next_migration_goes_out_before_the_answer_and_all_revert_in_order() {
    let db = TestDb::new().await;
    let dir = three("DROP TABLE c;\n");
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    // `b`'s down waits for a lock the test holds: while it waits, its text is the one the
    // server runs, and it shows how it was sent.
    let holder = db.connect().await;
    holder
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(4242)")
        .await
        .expect("hold");
    let pid = m.connection().backend_pid();
    let down = tokio::spawn(async move {
        let reverted = m.down(DownTarget::All, &Silent).await;
        (m, reverted)
    });
    let text = text_once_waiting(&db, pid).await;
    holder.batch_execute("COMMIT").await.expect("release");
    let (_m, reverted) = down.await.expect("the down task");
    let reverted = reverted.expect("down --all");
    // Sent behind `c`'s, checking that `c` committed before anything else ran.
    assert!(
        text.starts_with("BEGIN; SELECT 1 / (current_setting('pgshift.gate') = '"),
        "{text}"
    );
    assert!(text.contains("pg_advisory_xact_lock(4242)"), "{text}");
    assert_eq!(reverted, ["3", "2", "1"]);
    assert!(versions(&db).await.is_empty());
    assert!(tables(&db).await.is_empty());
}

/// A `COMMIT` that fails (a deferred foreign key) ends the transaction: the migration sent
/// behind it would run on its own, but for its gate.
#[tokio::test]
async fn a_migration_whose_commit_fails_leaves_the_one_sent_behind_it_unrun() {
    let db = TestDb::new().await;
    let (mut m, said) = down_fails_at_c(&db, "DROP TABLE c;\nDELETE FROM parent;\n").await;
    assert!(said.contains("foreign key"), "{said}");
    assert!(said.contains("3_c.down.sql"), "{said}");
    // The session is usable: with the data fixed, the same down reverts everything.
    db.connect()
        .await
        .batch_execute("DELETE FROM child")
        .await
        .expect("fix");
    m.down(DownTarget::All, &Silent).await.expect("down again");
    assert!(versions(&db).await.is_empty());
    assert!(tables(&db).await.is_empty());
}

/// A statement that fails leaves the transaction aborted: what was sent behind it is refused.
#[tokio::test]
async fn a_migration_whose_statement_fails_leaves_the_one_sent_behind_it_unrun() {
    let db = TestDb::new().await;
    let (_, said) = down_fails_at_c(&db, "DROP TABLE c;\nDROP TABLE not_there;\n").await;
    assert!(said.contains("not_there"), "{said}");
}

/// A one-statement migration is one text: when the server cannot parse it (syntax newer than
/// the server), nothing of it runs, not even its `BEGIN`, and no transaction is left to
/// refuse what comes behind it.
#[tokio::test]
async fn a_migration_the_server_cannot_parse_leaves_the_one_sent_behind_it_unrun() {
    let db = TestDb::new().await;
    let version: i32 = db
        .connect()
        .await
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .expect("version")
        .get(0);
    // Syntax the parser pgshift reads with accepts, and the server's does not.
    let newer = match version {
        ..160_000 => "CREATE TABLE j AS SELECT JSON_OBJECT('a' : 1) AS o;\n",
        160_000..170_000 => "CREATE TABLE j AS SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a int PATH '$')) t;\n",
        170_000..180_000 => "CREATE TABLE j (a int, b int GENERATED ALWAYS AS (a) VIRTUAL);\n",
        _ => {
            eprintln!("skipped: no syntax pgshift's parser has that PostgreSQL {version} lacks");
            return;
        }
    };
    let (_, said) = down_fails_at_c(&db, newer).await;
    assert!(said.contains("syntax error"), "{said}");
}

/// Through a transaction-mode pooler, the transaction after a migration's may run on another
/// server session, without the setting the gate checks: the migration sent ahead then fails
/// its gate although the one before committed. Nothing of it ran; it is sent again, and the
/// run sends nothing more ahead. Here a trigger run at `COMMIT` changes the setting, as
/// another session would hold a different one.
#[tokio::test]
async fn a_gate_that_fails_after_a_commit_sends_the_migration_again() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (v, table) in [("1", "a"), ("2", "b"), ("3", "c"), ("4", "d")] {
        write(
            dir.path(),
            &format!("{v}_{table}.up.sql"),
            &format!("CREATE TABLE {table} (id int);\n"),
        );
        write(
            dir.path(),
            &format!("{v}_{table}.down.sql"),
            &format!("DROP TABLE {table};\n"),
        );
    }
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    db.connect()
        .await
        .batch_execute(
            "CREATE FUNCTION elsewhere() RETURNS trigger LANGUAGE plpgsql AS
               $$BEGIN PERFORM set_config('pgshift.gate', 'another session', false); RETURN NULL; END$$;
             CREATE CONSTRAINT TRIGGER elsewhere AFTER DELETE ON pgshift.migrations
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION elsewhere();",
        )
        .await
        .expect("trigger");
    let reverted = m.down(DownTarget::All, &Silent).await.expect("down --all");
    assert_eq!(reverted, ["4", "3", "2", "1"]);
    assert!(versions(&db).await.is_empty());
    assert!(tables(&db).await.is_empty());
}

/// A migration sent ahead takes its table's lock `NOWAIT` as it begins, as any other: when a
/// long transaction reads the table, the look fails at once, nothing queues in front of the
/// application's queries, and the guard waits for the reader before the migration runs.
#[tokio::test]
async fn a_migration_sent_ahead_whose_table_is_in_use_waits_for_the_guard_queueing_nothing() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "1_t.up.sql", "CREATE TABLE t (id int);\n");
    write(
        dir.path(),
        "1_t.down.sql",
        "ALTER TABLE t ADD COLUMN gone int;\n",
    );
    write(dir.path(), "2_u.up.sql", "CREATE TABLE u (id int);\n");
    write(dir.path(), "2_u.down.sql", "DROP TABLE u;\n");
    let mut m = migrator(&db, dir.path()).await;
    m.up(None, &Silent).await.expect("up");
    let reader = db.connect().await;
    reader
        .batch_execute("BEGIN; SELECT * FROM t")
        .await
        .expect("read");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let down = tokio::spawn(async move {
        let observer = move |e: &Event| sink.lock().expect("events").push(e.clone());
        m.down(DownTarget::All, &observer).await
    });
    let waiting = || {
        events
            .lock()
            .expect("events")
            .iter()
            .any(|e| matches!(e, Event::GuardWaiting { .. }))
    };
    for _ in 0..600 {
        if waiting() || down.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        waiting(),
        "the guard did not wait for the reader: {:#?}",
        events.lock().expect("events")
    );
    // `u` is reverted; nobody waits for a lock on `t` behind the reader.
    assert_eq!(versions(&db).await, ["1"]);
    let queued: i64 = db
        .connect()
        .await
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE relation = 't'::regclass AND NOT granted",
            &[],
        )
        .await
        .expect("locks")
        .get(0);
    assert_eq!(queued, 0);
    reader.batch_execute("COMMIT").await.expect("release");
    let reverted = down.await.expect("join").expect("down --all");
    assert_eq!(reverted, ["2", "1"]);
    assert!(versions(&db).await.is_empty());
}

/// `up` on a fresh database: each migration goes out behind the one before it, checks its
/// gate first, and records how long it ran as the server timed it (it started when the one
/// before ended, which pgshift does not see).
#[tokio::test]
async fn up_on_a_fresh_database_sends_each_migration_behind_the_one_before() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "1_a.up.sql", "CREATE TABLE a (id int);\n");
    write(d, "2_wait.up.sql", "SELECT pg_advisory_xact_lock(4242);\n");
    write(d, "3_slow.up.sql", "SELECT pg_sleep(0.3);\n");
    write(d, "4_d.up.sql", "CREATE TABLE d (id int);\n");
    let mut m = migrator(&db, d).await;
    let holder = db.connect().await;
    holder
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(4242)")
        .await
        .expect("hold");
    let pid = m.connection().backend_pid();
    let up = tokio::spawn(async move { m.up(None, &Silent).await });
    let text = text_once_waiting(&db, pid).await;
    holder.batch_execute("COMMIT").await.expect("release");
    let applied = up.await.expect("the up task").expect("up");
    assert_eq!(applied.len(), 4);
    assert!(
        text.starts_with("BEGIN; SELECT 1 / (current_setting('pgshift.gate') = '"),
        "{text}"
    );
    assert_eq!(versions(&db).await, ["1", "2", "3", "4"]);
    let slow: i64 = db
        .connect()
        .await
        .query_one(
            "SELECT duration_ms FROM pgshift.migrations WHERE version = '3'",
            &[],
        )
        .await
        .expect("duration")
        .get(0);
    assert!(slow >= 300, "recorded {slow} ms for a migration of 300 ms");
}

/// `up`'s migrations are gated as `down`'s: one whose `COMMIT` fails (a deferred foreign key)
/// leaves the one sent behind it unapplied.
#[tokio::test]
async fn up_a_migration_whose_commit_fails_leaves_the_one_sent_behind_it_unapplied() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(
        d,
        "1_a.up.sql",
        "CREATE TABLE parent (id int PRIMARY KEY);
         CREATE TABLE child (id int, p int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n",
    );
    write(d, "2_b.up.sql", "INSERT INTO child VALUES (1, 99);\n");
    write(d, "3_c.up.sql", "CREATE TABLE c (id int);\n");
    let mut m = migrator(&db, d).await;
    let err = m
        .up(None, &Silent)
        .await
        .expect_err("the deferred key fails at COMMIT");
    assert!(err.to_string().contains("foreign key"), "{err}");
    assert_eq!(versions(&db).await, ["1"]);
    assert_eq!(tables(&db).await, ["child", "parent"]);
}
