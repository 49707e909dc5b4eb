//! The `pgshift` binary as users run it: real processes against a real PostgreSQL.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pgshift_db::testing::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

fn pgshift(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgshift")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write");
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_processes_at_once_all_succeed_and_apply_each_migration_once() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 1..=6 {
        write(
            dir.path(),
            &format!("2024010{i}000000_m{i}.up.sql"),
            &format!("CREATE TABLE IF NOT EXISTS applied (n int);\nINSERT INTO applied VALUES ({i});\nSELECT pg_sleep(0.1);\n"),
        );
    }
    write(
        dir.path(),
        "20240107000000_idx.up.sql",
        "CREATE INDEX CONCURRENTLY applied_n_idx ON applied (n);\n",
    );
    let url = db.url().to_string();
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(BIN)
                .args(["up", "--database-url", &url, "--dir"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let c = db.connect().await;
    let rows: Vec<i32> = c
        .query("SELECT n FROM applied ORDER BY n", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rows,
        vec![1, 2, 3, 4, 5, 6],
        "each migration ran exactly once"
    );
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pgshift.migrations WHERE state = 'applied'",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    assert_eq!(n, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_any_moment_leaves_history_true_to_the_schema() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Transactional migrations that each create one table, interleaved with a migration that
    // runs statement by statement outside a transaction.
    for i in 1..=8 {
        write(
            dir.path(),
            &format!("202401{i:02}000000_t{i}.up.sql"),
            &format!("CREATE TABLE t{i} (id int);\nSELECT pg_sleep(0.08);\nINSERT INTO t{i} VALUES ({i});\n"),
        );
    }
    write(
        dir.path(),
        "20240109000000_outside.up.sql",
        "-- pgshift:no-transaction\nCREATE TABLE o1 (id int);\nSELECT pg_sleep(0.1);\nCREATE TABLE o2 (id int);\nSELECT pg_sleep(0.1);\nCREATE TABLE o3 (id int);\n",
    );
    let url = db.url().to_string();
    let c = db.connect().await;
    // Kill at increasing moments; after each kill the history must match the schema.
    for delay_ms in [30u64, 150, 300, 450, 600, 800, 1000] {
        let mut child = Command::new(BIN)
            .args(["up", "--database-url", &url, "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // The server notices the dead client and rolls back its open transaction; wait until
        // the backend is gone so we read a settled state.
        for _ in 0..100 {
            let n: i64 = c
                .query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'pgshift'", &[])
                .await
                .expect("activity")
                .get(0);
            if n == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_history_matches_schema(&c).await;
    }
    let out = pgshift(
        &[
            "up",
            "--database-url",
            &url,
            "--dir",
            &dir.path().to_string_lossy(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_history_matches_schema(&c).await;
    let done: i64 = c
        .query_one(
            "SELECT count(*) FROM pgshift.migrations WHERE state = 'applied'",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    assert_eq!(done, 9, "the next run finished the job");
}

async fn assert_history_matches_schema(c: &pgshift_db::Connection) {
    let has_history: bool = c
        .query_one("SELECT to_regclass('pgshift.migrations') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    let exists = |name: String| async move {
        c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await
            .expect("q")
            .get::<_, bool>(0)
    };
    for i in 1..=8 {
        let version = format!("202401{i:02}000000");
        let applied = has_history
            && c.query_opt(
                "SELECT 1 FROM pgshift.migrations WHERE version = $1 AND state = 'applied'",
                &[&version],
            )
            .await
            .expect("q")
            .is_some();
        assert_eq!(
            exists(format!("t{i}")).await,
            applied,
            "table t{i} exists iff migration {version} is recorded applied"
        );
    }
    if has_history {
        if let Some(row) = c
            .query_opt(
                "SELECT state, progress FROM pgshift.migrations WHERE version = '20240109000000'",
                &[],
            )
            .await
            .expect("q")
        {
            let progress: i32 = row.get(1);
            let state: String = row.get(0);
            // Statement k (1-based) creates o1/o2/o3 at k = 1, 3, 5. Each commits with its
            // progress record, so a table exists exactly when its statement is recorded done,
            // wherever the kill landed.
            for (k, table) in [(1, "o1"), (3, "o2"), (5, "o3")] {
                assert_eq!(
                    exists(table.to_string()).await,
                    progress >= k || state == "applied",
                    "{table} exists iff recorded done (progress {progress}, state {state})"
                );
            }
        }
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_a_nonzero_exit_and_changes_nothing() {
    let db = TestDb::new().await;
    let url = db.url().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_string_lossy().to_string();

    // No database configured.
    let out = pgshift(&["up", "--dir", &d], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("needs a database"), "{}", text(&out));

    // Malformed SQL: names file, line and column; nothing runs.
    write(
        dir.path(),
        "20240101000000_ok.up.sql",
        "CREATE TABLE ok (id int);\n",
    );
    write(
        dir.path(),
        "20240102000000_bad.up.sql",
        "CREATE TABLE fine (id int);\nALTER TABLE fine ADD COLUMN x int NOT NULL DEFAULT;\n",
    );
    let out = pgshift(&["up", "--database-url", &url, "--dir", &d], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("20240102000000_bad.up.sql:2:"),
        "{}",
        text(&out)
    );
    let c = db.connect().await;
    let fine: bool = c
        .query_one("SELECT to_regclass('fine') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(!fine);

    // A failing statement: exit 1, file:line:column and SQLSTATE.
    write(
        dir.path(),
        "20240102000000_bad.up.sql",
        "CREATE TABLE fine (id int);\nINSERT INTO fine SELECT nope FROM fine;\n",
    );
    let out = pgshift(&["up", "--database-url", &url, "--dir", &d], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("20240102000000_bad.up.sql:2:25"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("42703"), "{}", text(&out));

    // An unknown format.
    let out = pgshift(
        &[
            "status",
            "--database-url",
            &url,
            "--dir",
            &d,
            "--dir-format",
            "liquibase",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("unknown migration format `liquibase`"),
        "{}",
        text(&out)
    );

    // Edited history.
    std::fs::remove_file(dir.path().join("20240102000000_bad.up.sql")).expect("rm");
    let out = pgshift(&["up", "--database-url", &url, "--dir", &d], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    write(
        dir.path(),
        "20240101000000_ok.up.sql",
        "CREATE TABLE ok (id bigint);\n",
    );
    let out = pgshift(&["up", "--database-url", &url, "--dir", &d], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("pgshift restamp 20240101000000"),
        "{}",
        text(&out)
    );
    let out = pgshift(
        &[
            "restamp",
            "20240101000000",
            "--database-url",
            &url,
            "--dir",
            &d,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = pgshift(&["up", "--database-url", &url, "--dir", &d], dir.path());
    assert!(out.status.success(), "{}", text(&out));

    // Down on a forward-only migration.
    let out = pgshift(&["down", "--database-url", &url, "--dir", &d], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("forward-only"), "{}", text(&out));
}

#[tokio::test]
async fn passwords_never_appear_in_any_output() {
    let secret = "s3cr3t-Pa55word";
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_a.up.sql",
        "CREATE TABLE a (id int);\n",
    );
    let d = dir.path().to_string_lossy().to_string();

    // Unreachable server.
    let url = format!("postgres://alice:{secret}@127.0.0.1:1/app?connect_timeout=2");
    for cmd in ["up", "status", "down"] {
        let out = pgshift(&[cmd, "--database-url", &url, "--dir", &d], dir.path());
        assert_eq!(out.status.code(), Some(3), "{cmd}: {}", text(&out));
        assert!(
            !text(&out).contains(secret),
            "{cmd} printed the password: {}",
            text(&out)
        );
        assert!(text(&out).contains("127.0.0.1"), "{}", text(&out));
    }
    // Through the environment too, and in --help.
    let out = Command::new(BIN)
        .args(["up", "--help"])
        .env("DATABASE_URL", &url)
        .output()
        .expect("help");
    assert!(!text(&out).contains(secret), "{}", text(&out));

    // Wrong password on a server that checks it.
    let cluster = pgshift_db::TempCluster::start(
        pgshift_db::ClusterOptions::default().password("right-password"),
    )
    .expect("cluster");
    let base = cluster.url();
    let wrong = format!(
        "postgres://postgres:{secret}@127.0.0.1:{}/postgres?sslmode=disable",
        base.hosts()[0].port
    );
    let out = pgshift(
        &["status", "--database-url", &wrong, "--dir", &d],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("authentication failed"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(secret), "{}", text(&out));
}

#[test]
fn check_reports_findings_with_exit_1_and_json_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, email text);\n",
    );
    write(
        dir.path(),
        "20240102000000_idx.up.sql",
        "CREATE INDEX t_email_idx ON t (email);\n",
    );
    let d = dir.path().to_string_lossy().to_string();
    let out = pgshift(
        &["check", &d, "--dir-format", "pgshift", "--exact"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("20240102000000_idx.up.sql:1:1"),
        "{}",
        text(&out)
    );

    let out = pgshift(
        &[
            "check",
            &d,
            "--dir-format",
            "pgshift",
            "--exact",
            "--format",
            "json",
        ],
        dir.path(),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let f = &json["findings"][0];
    for key in [
        "path",
        "line",
        "column",
        "end_line",
        "end_column",
        "rule",
        "code",
        "severity",
        "message",
        "help",
        "lock",
        "tables",
    ] {
        assert!(f.get(key).is_some(), "finding lacks `{key}`: {f}");
    }

    // Unusable input is exit 2, not a crash.
    let out = pgshift(&["check", "/no/such/dir"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let out = pgshift(&["check", &d, "--format", "xml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_reads_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .args([
            "check",
            "--stdin-filename",
            "alembic.sql",
            "--format",
            "json",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n")
            .expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let paths: Vec<&str> = json["findings"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(paths.contains(&"alembic.sql"), "{json}");
}

/// Runs pgshift with stdout connected to a pipe whose reading end is already closed, as in
/// `pgshift rules | head -1` once `head` has exited: every write fails with EPIPE.
fn pgshift_into_closed_pipe(args: &[&str], cwd: &Path) -> Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: both descriptors were just created by pipe(2) and are owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read_end);
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(write_end))
        .output()
        .expect("run pgshift")
}

#[tokio::test]
async fn a_closed_stdout_pipe_ends_quietly_without_a_panic() {
    let db = TestDb::new().await;
    let url = db.url().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_idx.up.sql",
        "CREATE INDEX t_email_idx ON t (email);\n",
    );
    let d = dir.path().to_string_lossy().to_string();
    for args in [
        vec!["rules"],
        vec!["explain", "require-concurrent-index"],
        vec!["check", &d],
        vec!["check", &d, "--format", "sarif"],
        vec!["status", "--database-url", &url, "--dir", &d],
        vec!["plan", "--database-url", &url, "--dir", &d],
    ] {
        let out = pgshift_into_closed_pipe(&args, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {stderr}");
        assert!(out.status.code().is_some(), "{args:?} died of a signal");
        assert!(stderr.trim().is_empty(), "{args:?} printed: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_up_cancels_the_statement_and_releases_every_lock() {
    signal_during_cancels_the_statement_and_releases_every_lock("up", libc::SIGINT, 130, "SIGINT")
        .await;
}

/// What Kubernetes, `docker stop`, systemd and CI cancels send.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_up_cancels_the_statement_and_releases_every_lock() {
    signal_during_cancels_the_statement_and_releases_every_lock(
        "up",
        libc::SIGTERM,
        143,
        "SIGTERM",
    )
    .await;
}

/// `trace` on a database runs the migrations in sessions of its own, inside the library.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_trace_on_a_database_cancels_the_statement_and_releases_every_lock() {
    signal_during_cancels_the_statement_and_releases_every_lock(
        "trace",
        libc::SIGTERM,
        143,
        "SIGTERM",
    )
    .await;
}

/// What a closed terminal or SSH session sends.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_during_up_cancels_the_statement_and_releases_every_lock() {
    signal_during_cancels_the_statement_and_releases_every_lock("up", libc::SIGHUP, 129, "SIGHUP")
        .await;
}

/// `pgshift <command>` gets `signal` while its migration holds ACCESS EXCLUSIVE on `t` (and
/// `up` the runner's advisory lock) in a statement that would run for a minute: pgshift must
/// exit with 128 + the signal number within moments, and the server must not keep running the
/// statement: no lock, no session, nothing recorded, and the next `up` runs.
async fn signal_during_cancels_the_statement_and_releases_every_lock(
    command: &str,
    signal: libc::c_int,
    code: i32,
    name: &str,
) {
    let db = TestDb::new().await;
    let url = db.url().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_t.up.sql",
        "CREATE TABLE t (id int);\n",
    );
    write(
        dir.path(),
        "20240102000000_slow.up.sql",
        "CREATE TABLE started (id int);\nLOCK TABLE t IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(60);\n",
    );
    if command != "up" {
        // `trace` runs what is pending in a transaction it rolls back: `t` must exist already.
        let out = pgshift(
            &[
                "up",
                "--database-url",
                url.as_str(),
                "--dir",
                &dir.path().to_string_lossy(),
                "--to",
                "20240101000000",
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let c = db.connect().await;
    let count = |sql: &'static str| {
        let c = &c;
        async move {
            let n: i64 = c.query_one(sql, &[]).await.expect(sql).get(0);
            n
        }
    };
    let sleeping = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgshift' AND query LIKE 'SELECT pg_sleep%'";
    // pg_locks lists the whole cluster, which other tests share: only this database counts.
    let locks_on_t = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = current_database() AND l.locktype = 'relation' AND l.relation = 't'::regclass AND l.pid <> pg_backend_pid()";
    let advisory = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = current_database() AND l.locktype = 'advisory'";
    let sessions = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgshift' AND pid <> pg_backend_pid()";

    let mut child = Command::new(BIN)
        .args([command, "--database-url", url.as_str(), "--dir"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(sleeping).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the migration never reached its slow statement"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // What the signal must undo: the table lock and (`up`) the runner lock, held right now.
    assert_eq!(
        count(locks_on_t).await,
        1,
        "the migration holds its lock on t"
    );
    if command == "up" {
        assert_eq!(
            count(advisory).await,
            1,
            "the runner holds its advisory lock"
        );
    }

    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on the child we spawned and have not waited for yet.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pgshift was still running 5 s after {name}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(code), "{name}: {status:?}, {stderr}");
    assert!(
        stderr.contains(&format!("interrupted by {name}"))
            && stderr
                .contains("the running statement was cancelled and its transaction rolled back"),
        "{stderr}"
    );

    // The statement was cancelled, not left running: its session, its lock on t and the
    // runner's advisory lock are gone within moments, not after the 60 s sleep.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = (
            count(sessions).await,
            count(locks_on_t).await,
            count(advisory).await,
        );
        if left == (0, 0, 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "5 s after {name}: (pgshift sessions, locks on t, advisory locks) = {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started: bool = c
        .query_one("SELECT to_regclass('started') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(
        !started,
        "the interrupted migration's transaction was rolled back"
    );
    let recorded = "SELECT count(*) FROM pgshift.migrations WHERE version = '20240102000000'";
    assert_eq!(
        count(recorded).await,
        0,
        "the interrupted migration is not recorded"
    );
    let earlier = "SELECT count(*) FROM pgshift.migrations WHERE version = '20240101000000' AND state = 'applied'";
    assert_eq!(
        count(earlier).await,
        1,
        "the migration before stays applied"
    );

    // Nothing is left in the way of the next run.
    write(
        dir.path(),
        "20240102000000_slow.up.sql",
        "CREATE TABLE started (id int);\nLOCK TABLE t IN ACCESS EXCLUSIVE MODE;\n",
    );
    let out = pgshift(
        &[
            "up",
            "--database-url",
            url.as_str(),
            "--dir",
            &dir.path().to_string_lossy(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let applied = "SELECT count(*) FROM pgshift.migrations WHERE version = '20240102000000' AND state = 'applied'";
    assert_eq!(count(applied).await, 1, "{}", text(&out));
}

/// `verify` on the bundled example as an ordinary user: directly when the tests run as one,
/// through `runuser -u postgres` when they run as root (initdb refuses root, so the cluster
/// code takes a different path for each).
#[test]
fn verify_works_as_an_ordinary_user() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/migrations");
    // A copy the ordinary user can read, wherever the checkout lives.
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("migrations");
    std::fs::create_dir(&copy).expect("mkdir");
    for entry in std::fs::read_dir(&example).expect("example") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), copy.join(entry.file_name())).expect("copy");
    }
    std::fs::write(dir.path().join("pgshift.toml"), "format = \"pgshift\"\n").expect("config");
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if is_root {
        use std::os::unix::fs::PermissionsExt;
        // The checkout (and so target/) may be in a directory the user cannot enter: run a
        // copy of the binary from the readable temporary directory.
        let bin = dir.path().join("pgshift");
        std::fs::copy(BIN, &bin).expect("copy the binary");
        for p in [dir.path().to_path_buf(), copy.clone(), bin.clone()] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&bin);
        c
    } else {
        Command::new(BIN)
    };
    let out = cmd
        .args(["verify", "--dir"])
        .arg(&copy)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run verify");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("PASSED"), "{}", text(&out));
}

/// `verify --changed-since REF`: the analyzer gates only the migrations added or changed since
/// the ref (a blocking index already deployed by sqlx is history), while up/down/up still runs
/// every one; `--output FILE` writes the whole report and the markdown on stdout names it.
#[test]
fn verify_changed_since_gates_the_analyzer_and_output_writes_the_full_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "pgshift test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "pgshift test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    std::fs::create_dir(root.join("migrations")).expect("mkdir");
    // sqlx runs these in production, as written: the blocking index is an error.
    write(
        root,
        "pgshift.toml",
        "dir = \"migrations\"\nformat = \"sqlx\"\n",
    );
    let m = root.join("migrations");
    write(
        &m,
        "20240101000000_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    write(&m, "20240101000000_users.down.sql", "DROP TABLE users;\n");
    write(
        &m,
        "20240102000000_index.up.sql",
        "CREATE INDEX users_email_idx ON users (email);\n",
    );
    write(
        &m,
        "20240102000000_index.down.sql",
        "DROP INDEX users_email_idx;\n",
    );
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "base"]);
    git(&["tag", "base"]);
    write(
        &m,
        "20240103000000_nickname.up.sql",
        "ALTER TABLE users ADD COLUMN nickname text;\n",
    );
    write(
        &m,
        "20240103000000_nickname.down.sql",
        "ALTER TABLE users DROP COLUMN nickname;\n",
    );

    let all = pgshift(&["verify", "--no-trace"], root);
    assert_eq!(all.status.code(), Some(1), "{}", text(&all));
    assert!(
        text(&all).contains(
            "error[require-concurrent-index] at migrations/20240102000000_index.up.sql:1:1"
        ),
        "{}",
        text(&all)
    );

    let gated = pgshift(
        &[
            "verify",
            "--no-trace",
            "--changed-since",
            "base",
            "--format",
            "markdown",
            "--output",
            "verify-full.md",
        ],
        root,
    );
    assert_eq!(gated.status.code(), Some(0), "{}", text(&gated));
    let stdout = String::from_utf8_lossy(&gated.stdout);
    assert!(
        stdout.starts_with("## pgshift verify: ✅ passed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Gated to the migrations changed since base;"),
        "{stdout}"
    );
    let full = std::fs::read_to_string(root.join("verify-full.md")).expect("the full report");
    assert!(full.starts_with("## pgshift verify: ✅ passed"), "{full}");
    assert!(
        full.contains("| `20240103000000` nickname | ok | ok | ok |"),
        "{full}"
    );
}

/// README, "Already using another tool?": `record_in_old_tool = true` under `[run]` in
/// `pgshift.toml` makes `up` write the old tool's row (and `down` remove it), and says so.
#[tokio::test]
async fn record_in_old_tool_in_pgshift_toml_writes_the_old_tools_row_and_says_so() {
    let db = TestDb::new().await;
    let url = db.url().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("db/migrations")).expect("mkdir");
    write(
        dir.path(),
        "pgshift.toml",
        "dir = \"db/migrations\"\n\n[run]\nrecord_in_old_tool = true\n",
    );
    write(
        dir.path(),
        "db/migrations/20240101000000_t.sql",
        "-- migrate:up\nCREATE TABLE t (x int);\n\n-- migrate:down\nDROP TABLE t;\n",
    );
    let c = db.connect().await;
    // dbmate's table, as dbmate creates it.
    c.batch_execute("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)")
        .await
        .expect("dbmate's table");
    let out = pgshift(&["up", "--database-url", &url], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(
            "20240101000000 recorded as applied in dbmate's schema_migrations (record_in_old_tool)"
        ),
        "{}",
        text(&out)
    );
    let rows = c
        .query("SELECT version::text FROM schema_migrations", &[])
        .await
        .expect("schema_migrations");
    let versions: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, ["20240101000000"]);

    let out = pgshift(
        &["down", "--steps", "1", "--database-url", &url],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("20240101000000 removed from dbmate's schema_migrations"),
        "{}",
        text(&out)
    );
    let rows = c
        .query("SELECT version::text FROM schema_migrations", &[])
        .await
        .expect("schema_migrations");
    assert!(rows.is_empty());
}
