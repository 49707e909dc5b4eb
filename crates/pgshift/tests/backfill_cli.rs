//! `pgshift backfill` as a user runs it: the whole job with its summary, `status`, the pause
//! switch, `--dry-run`, bad input with its exit code, and `kill -9` of the process partway
//! then the same command again, against a real PostgreSQL.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgshift_db::testing::TestDb;
use pgshift_db::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

fn pgshift(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("backfill")
        .args(args)
        .args(["--database-url", url])
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgshift")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn one(c: &Connection, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

async fn table(c: &Connection, rows: i64) {
    c.batch_execute(&format!(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, cents bigint,
                                touched int NOT NULL DEFAULT 0);
         INSERT INTO accounts (id, balance) SELECT g, g % 500 FROM generate_series(1, {rows}) g;
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $$;
         CREATE TRIGGER touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
         ANALYZE accounts;"
    ))
    .await
    .expect("table");
}

const SET: &str = "cents = balance * 100";
const WHERE: &str = "cents IS NULL";

#[tokio::test]
async fn a_backfill_runs_reports_and_is_listed() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    table(&c, 5000).await;
    let url = db.url().to_string();

    let dry = pgshift(
        &url,
        &[
            "--table",
            "accounts",
            "--set",
            SET,
            "--where",
            WHERE,
            "--dry-run",
        ],
    );
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("nothing was changed"), "{}", text(&dry));
    assert_eq!(
        one(&c, "SELECT count(*) FROM accounts WHERE touched > 0").await,
        0
    );

    let out = pgshift(
        &url,
        &["--table", "accounts", "--set", SET, "--where", WHERE],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("5000 rows updated"), "{}", text(&out));
    assert!(text(&out).contains("proved"), "{}", text(&out));
    // Not a terminal: plain progress lines (the first at once, the last at the end), no bar
    // redrawn in place.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rows/s"), "{stderr}");
    assert!(stderr.contains("100.0% done"), "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr}");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM accounts WHERE cents IS DISTINCT FROM balance * 100"
        )
        .await,
        0
    );

    let status = Command::new(BIN)
        .args([
            "backfill",
            "status",
            "--format",
            "json",
            "--database-url",
            &url,
        ])
        .output()
        .expect("status");
    assert!(status.status.success(), "{}", text(&status));
    let listed: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(listed[0]["status"], "done");
    assert_eq!(listed[0]["rows_done"], 5000);
    assert_eq!(listed[0]["table"], "public.accounts");

    // Nothing unfinished: --pause has nothing to pause.
    let pause = pgshift(&url, &["--pause"]);
    assert_eq!(pause.status.code(), Some(2), "{}", text(&pause));
    assert!(
        text(&pause).contains("no unfinished backfill"),
        "{}",
        text(&pause)
    );
}

#[tokio::test]
async fn bad_input_exits_2_naming_the_problem_and_changes_nothing() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    table(&c, 100).await;
    let url = db.url().to_string();
    for (args, expected) in [
        (
            vec!["--table", "nope", "--set", SET],
            "table nope does not exist",
        ),
        (
            vec!["--table", "accounts", "--set", "cents = "],
            "not valid SQL",
        ),
        (
            vec!["--table", "accounts", "--set", SET, "--where", "balance"],
            "argument of WHERE must be type boolean",
        ),
        (
            vec![
                "--table",
                "accounts",
                "--set",
                "cents = 1; DROP TABLE accounts",
            ],
            "one UPDATE statement",
        ),
        (vec!["--table", "accounts"], "needs --table and --set"),
        (
            vec!["--table", "accounts", "--set", SET, "--duty", "3"],
            "--duty",
        ),
        (
            vec!["--table", "accounts", "--set", SET, "--when-busy", "0"],
            "--when-busy: give a fraction from 0.01 to 1, or `off`",
        ),
    ] {
        let out = pgshift(&url, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
    assert_eq!(
        one(&c, "SELECT count(*) FROM accounts WHERE touched > 0").await,
        0
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'accounts'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_set_reading_what_it_writes_runs_once_says_so_and_without_a_key_exits_2() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    table(&c, 3000).await;
    let url = db.url().to_string();
    const TIMES_100: &str = "balance = balance * 100";
    let args = [
        "--table",
        "accounts",
        "--set",
        TIMES_100,
        "--batch-size",
        "200",
    ];

    let dry = pgshift(&url, &[&args[..], &["--dry-run"]].concat());
    assert!(dry.status.success(), "{}", text(&dry));
    let said = text(&dry);
    assert!(said.contains("mode:      runs once"), "{said}");
    assert!(
        said.contains("reads a column it writes (balance = balance * 100)"),
        "{said}"
    );
    let idempotent = pgshift(&url, &["--table", "accounts", "--set", SET, "--dry-run"]);
    assert!(
        text(&idempotent).contains("mode:      updates the rows that still need it"),
        "{}",
        text(&idempotent)
    );

    let out = pgshift(&url, &args);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("3000 rows updated"), "{said}");
    assert!(said.contains("one pass"), "{said}");
    assert!(said.contains("not proved by counting"), "{said}");
    assert!(!said.contains("proved: no row"), "{said}");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM accounts WHERE balance <> (id % 500) * 100 OR touched <> 1"
        )
        .await,
        0
    );
    let status = Command::new(BIN)
        .args(["backfill", "status", "--database-url", &url])
        .env("NO_COLOR", "1")
        .output()
        .expect("status");
    assert!(text(&status).contains("runs once"), "{}", text(&status));

    // Without a key it would walk by position, where a moved row can be met twice: refused.
    c.batch_execute(
        "CREATE TABLE heap (amount int);
         INSERT INTO heap SELECT g FROM generate_series(1, 500) g;",
    )
    .await
    .expect("heap");
    let out = pgshift(&url, &["--table", "heap", "--set", "amount = amount * 100"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("Add a primary key"), "{}", text(&out));
    assert_eq!(
        one(&c, "SELECT count(*) FROM heap WHERE amount > 500").await,
        0
    );
}

#[tokio::test]
async fn kill_9_partway_then_the_same_command_finishes_without_updating_a_row_twice() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    table(&c, 30_000).await;
    let url = db.url().to_string();
    for kill_after in [300u64, 500, 700] {
        let mut child = Command::new(BIN)
            .args([
                "backfill",
                "--database-url",
                &url,
                "--table",
                "accounts",
                "--set",
                SET,
            ])
            .args([
                "--where",
                WHERE,
                "--max-rate",
                "10000",
                "--batch-time",
                "20ms",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(kill_after));
        child.kill().expect("kill -9");
        let _ = child.wait();
    }
    // The server rolls back the batch a killed client left open once it notices.
    let deadline = Instant::now() + Duration::from_secs(30);
    while one(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle' AND application_name = 'pgshift'").await > 0 {
        assert!(Instant::now() < deadline, "killed sessions never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    let partway = one(&c, "SELECT count(*) FROM accounts WHERE touched = 1").await;
    assert!(
        partway > 0 && partway < 30_000,
        "stopped partway: {partway}"
    );

    let status = Command::new(BIN)
        .args(["backfill", "status", "--database-url", &url])
        .env("NO_COLOR", "1")
        .output()
        .expect("status");
    assert!(
        text(&status).contains("stopped (no runner"),
        "{}",
        text(&status)
    );

    let out = pgshift(
        &url,
        &["--table", "accounts", "--set", SET, "--where", WHERE],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("resuming after"), "{}", text(&out));
    assert_eq!(
        one(&c, "SELECT count(*) FROM accounts WHERE touched <> 1").await,
        0,
        "every row updated exactly once"
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM accounts WHERE cents IS DISTINCT FROM balance * 100"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_second_runner_exits_1_and_ctrl_c_exits_130_leaving_it_resumable() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    table(&c, 20_000).await;
    let url = db.url().to_string();
    let first = Command::new(BIN)
        .args([
            "backfill",
            "--database-url",
            &url,
            "--table",
            "accounts",
            "--set",
            SET,
        ])
        .args([
            "--where",
            WHERE,
            "--max-rate",
            "2000",
            "--batch-time",
            "20ms",
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while one(&c, "SELECT count(*) FROM accounts WHERE touched = 1").await == 0 {
        assert!(Instant::now() < deadline, "the first runner never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = pgshift(
        &url,
        &["--table", "accounts", "--set", SET, "--where", WHERE],
    );
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        text(&second).contains("already running"),
        "{}",
        text(&second)
    );

    // SAFETY: sends SIGINT to the child we spawned.
    unsafe { libc::kill(first.id() as i32, libc::SIGINT) };
    let out = first.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the same command resumes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = pgshift(
        &url,
        &["--table", "accounts", "--set", SET, "--where", WHERE],
    );
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(
        one(&c, "SELECT count(*) FROM accounts WHERE touched <> 1").await,
        0
    );
}
