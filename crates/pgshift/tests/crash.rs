//! `kill -9` of `pgshift up` at random moments *inside* long statements that run outside a
//! single transaction, against a real PostgreSQL: the run that follows must leave exactly
//! the schema and data of an uninterrupted run, never repeat a statement, and never get
//! stuck. The seed of each run is printed so a failure can be replayed
//! (`PGSHIFT_CRASH_SEED=...`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pgshift_db::testing::TestDb;
use pgshift_db::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write");
}

fn spawn(command: &str, url: &str, dir: &Path) -> Child {
    Command::new(BIN)
        .args([command, "--database-url", url, "--dir"])
        .arg(dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgshift")
}

fn up_to_the_end(url: &str, dir: &Path) {
    let out = Command::new(BIN)
        .args(["up", "--database-url", url, "--dir"])
        .arg(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgshift");
    assert!(
        out.status.success(),
        "the run after the kills must finish the job:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until no pgshift session is busy on the test database (the server notices the dead
/// client within `client_connection_check_interval`, or when the statement ends). The test's
/// own idle connections carry the same application_name.
async fn wait_for_pgshift_sessions_to_end(c: &Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND pid <> pg_backend_pid() AND application_name = 'pgshift'
                   AND state <> 'idle'",
                &[],
            )
            .await
            .expect("activity")
            .get(0);
        if n == 0 {
            return;
        }
        if Instant::now() > deadline {
            let rows = c
                .query(
                    "SELECT pid::text || ' ' || coalesce(state, '') || ' ' || coalesce(wait_event_type, '') || ' ' || coalesce(wait_event, '') || ' ' || query
                       FROM pg_stat_activity WHERE datname = current_database()",
                    &[],
                )
                .await
                .expect("activity");
            let rows: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            panic!("a pgshift session outlived its process: {rows:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A small deterministic generator, seeded per run.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("PGSHIFT_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("PGSHIFT_CRASH_SEED={seed}");
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// The schema and data a user would compare: rows, their sum, every index with its
/// definition and validity, and the history's states.
async fn state(c: &Connection) -> (i64, i64, Vec<String>, Vec<String>) {
    let row = c
        .query_one("SELECT count(*), coalesce(sum(a), 0)::bigint FROM t", &[])
        .await
        .expect("rows");
    let indexes = c
        .query(
            "SELECT pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
               FROM pg_index i WHERE i.indrelid = 't'::regclass ORDER BY 1",
            &[],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let history = c
        .query(
            "SELECT version || ' ' || state FROM pgshift.migrations ORDER BY version",
            &[],
        )
        .await
        .expect("history")
        .iter()
        .map(|r| r.get(0))
        .collect();
    (row.get(0), row.get(1), indexes, history)
}

fn long_no_transaction_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (a int);\n",
    );
    // Outside a single transaction because of the index build; the INSERT and the UPDATE
    // each take a good part of a second.
    write(
        dir.path(),
        "20240102000000_fill.up.sql",
        "-- pgshift:no-transaction\nINSERT INTO t (a) SELECT g FROM generate_series(1, 300000) g;\nCREATE INDEX CONCURRENTLY t_a ON t (a);\nUPDATE t SET a = a + 1 WHERE a % 3 = 0;\nCREATE INDEX ON t ((a % 7));\n",
    );
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_inside_long_statements_outside_a_transaction_ends_as_an_uninterrupted_run() {
    let dir = long_no_transaction_project();

    // The reference: one uninterrupted run, timed.
    let reference = TestDb::new().await;
    let started = Instant::now();
    up_to_the_end(&reference.url().to_string(), dir.path());
    let whole_run = started.elapsed();
    let expected = state(&reference.connect().await).await;
    assert_eq!(expected.0, 300_000);

    let db = TestDb::new().await;
    let url = db.url().to_string();
    let c = db.connect().await;
    let mut rng = Rng::seeded();
    let budget_ms = u64::try_from(whole_run.as_millis())
        .unwrap_or(2_000)
        .max(200);
    for round in 0..6 {
        let mut child = spawn("up", &url, dir.path());
        let delay = 30 + rng.below(budget_ms);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        wait_for_pgshift_sessions_to_end(&c).await;
        // Whatever the moment, the INSERT happened entirely or not at all, and at most once.
        if c.query_one("SELECT to_regclass('t') IS NOT NULL", &[])
            .await
            .expect("q")
            .get::<_, bool>(0)
        {
            let n: i64 = c
                .query_one("SELECT count(*) FROM t", &[])
                .await
                .expect("count")
                .get(0);
            assert!(
                n == 0 || n == 300_000,
                "round {round}, killed after {delay} ms: {n} rows"
            );
        }
    }
    up_to_the_end(&url, dir.path());
    assert_eq!(
        state(&c).await,
        expected,
        "the interrupted runs ended differently from an uninterrupted run"
    );
}

/// Waits until a pgshift session runs a statement starting with `prefix` and waits for a
/// lock or another transaction (the index build is then partway).
async fn wait_until_waiting(c: &Connection, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let pattern = format!("{prefix}%");
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND application_name = 'pgshift' AND query LIKE $1 AND wait_event_type = 'Lock'",
                &[&pattern],
            )
            .await
            .expect("activity")
            .get(0);
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pgshift never reached `{prefix}`"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `pgshift <command>` while another session holds `blocker` open, kills it with
/// SIGKILL once its statement starting with `prefix` waits for that session, then ends the
/// blocker and waits for the orphaned server session to finish.
async fn kill_while_waiting(
    db: &TestDb,
    dir: &Path,
    command: &str,
    blocker_sql: &str,
    prefix: &str,
) {
    let c = db.connect().await;
    let blocker = db.connect().await;
    blocker.batch_execute(blocker_sql).await.expect("blocker");
    let mut child = spawn(command, &db.url().to_string(), dir);
    wait_until_waiting(&c, prefix).await;
    let _ = child.kill();
    let _ = child.wait();
    blocker.batch_execute("COMMIT").await.expect("commit");
    wait_for_pgshift_sessions_to_end(&c).await;
}

async fn index_names(c: &Connection) -> Vec<(String, bool)> {
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

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_an_unnamed_index_build_leaves_one_index_after_the_next_run() {
    let db = TestDb::new().await;
    let url = db.url().to_string();
    let c = db.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (a int);\nINSERT INTO t SELECT generate_series(1, 40000);\n",
    );
    // Rewritten to CREATE INDEX CONCURRENTLY (the table is past 1 MB, so not run as written):
    // the server names it t_a_idx.
    write(
        dir.path(),
        "20240102000000_idx.up.sql",
        "CREATE INDEX ON t (a);\n",
    );
    up_partway(&url, dir.path(), "20240101000000");

    // A transaction with an older snapshot: the build waits for it after creating the index,
    // so the kill lands inside the statement.
    kill_while_waiting(
        &db,
        dir.path(),
        "up",
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class",
        "CREATE INDEX CONCURRENTLY",
    )
    .await;

    up_to_the_end(&url, dir.path());
    assert_eq!(
        index_names(&c).await,
        vec![("t_a_idx".to_string(), true)],
        "one valid index, named as the statement would name it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_concurrent_drop_does_not_leave_the_next_runs_stuck() {
    let db = TestDb::new().await;
    let url = db.url().to_string();
    let c = db.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\n",
    );
    // Rewritten to DROP INDEX CONCURRENTLY, without IF EXISTS.
    write(
        dir.path(),
        "20240102000000_drop.up.sql",
        "DROP INDEX t_a;\n",
    );
    write(
        dir.path(),
        "20240102000000_drop.down.sql",
        "CREATE INDEX t_a ON t (a);\n",
    );
    up_partway(&url, dir.path(), "20240101000000");

    // A transaction using the table: the drop waits for it after marking the index invalid.
    kill_while_waiting(
        &db,
        dir.path(),
        "up",
        "BEGIN; SELECT count(*) FROM t",
        "DROP INDEX CONCURRENTLY",
    )
    .await;

    up_to_the_end(&url, dir.path());
    assert!(index_names(&c).await.is_empty());
    // And down/up keep working.
    let down = Command::new(BIN)
        .args(["down", "--database-url", &url, "--dir"])
        .arg(dir.path())
        .output()
        .expect("down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    up_to_the_end(&url, dir.path());
    assert!(index_names(&c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_concurrent_drop_in_a_down_lets_the_next_down_finish() {
    // Seen on a real project: a revert killed inside its first statement, a DROP INDEX
    // CONCURRENTLY, made every later `down` refuse to go on.
    let db = TestDb::new().await;
    let url = db.url().to_string();
    let c = db.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (a int);\n",
    );
    write(
        dir.path(),
        "20240102000000_idx.up.sql",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\nALTER TABLE t ADD COLUMN b int;\n",
    );
    write(
        dir.path(),
        "20240102000000_idx.down.sql",
        "DROP INDEX CONCURRENTLY t_a;\nALTER TABLE t DROP COLUMN b;\n",
    );
    up_to_the_end(&url, dir.path());
    kill_while_waiting(
        &db,
        dir.path(),
        "down",
        "BEGIN; SELECT count(*) FROM t",
        "DROP INDEX CONCURRENTLY",
    )
    .await;

    let down = Command::new(BIN)
        .args(["down", "--database-url", &url, "--dir"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("down");
    assert!(
        down.status.success(),
        "the next down finishes the revert:\n{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(index_names(&c).await.is_empty());
    let b_exists: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'b' AND NOT attisdropped)",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    assert!(!b_exists, "the rest of the down ran");
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM pgshift.migrations WHERE version = '20240102000000'",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    assert_eq!(left, 0, "the migration is recorded as reverted");
    up_to_the_end(&url, dir.path());
    assert_eq!(index_names(&c).await, vec![("t_a".to_string(), true)]);
}

fn up_partway(url: &str, dir: &Path, to: &str) {
    let out = Command::new(BIN)
        .args(["up", "--database-url", url, "--to", to, "--dir"])
        .arg(dir)
        .output()
        .expect("up --to");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
