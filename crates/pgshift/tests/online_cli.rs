//! `pgshift start`, `complete` and `rollback` as a user runs them, against a real PostgreSQL:
//! the messages and exit codes, `status` showing the phase, and `kill -9` of the process at
//! several moments of the expand, the contract and a rollback, then the same command again:
//! the result is the result of a run nobody interrupted.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgshift_db::testing::TestDb;
use pgshift_db::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

fn pgshift(url: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--database-url", url, "--dir"])
        .arg(dir)
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

async fn one(c: &Connection, sql: &str) -> String {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

const SETUP: &str = "CREATE TABLE people (id bigint PRIMARY KEY, full_name text NOT NULL DEFAULT 'anonymous', age int);
CREATE INDEX people_full_name_idx ON people (full_name);
INSERT INTO people SELECT g, 'person ' || g, g % 90 FROM generate_series(1, 60000) g;
ANALYZE people;";

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("20260101000000_rename.up.sql"),
        "ALTER TABLE people RENAME COLUMN full_name TO display_name;\nALTER TABLE people ALTER COLUMN age TYPE bigint;\n",
    )
    .expect("write");
    dir
}

/// The table as a user sees it: columns, indexes, constraints, triggers, and a digest of the
/// rows read through `name` (the name column, as the migration left it).
async fn picture(c: &Connection, name: &str) -> String {
    one(
        c,
        &format!("SELECT concat_ws(E'\\n',
            (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull || ' ' || coalesce(pg_get_expr(adbin, adrelid), ''), ', ' ORDER BY attname)
               FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
              WHERE attrelid = 'people'::regclass AND attnum > 0 AND NOT attisdropped),
            (SELECT string_agg(pg_get_indexdef(indexrelid), ', ' ORDER BY pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = 'people'::regclass),
            (SELECT coalesce(string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname), '') FROM pg_constraint WHERE conrelid = 'people'::regclass),
            (SELECT count(*)::text FROM pg_trigger WHERE tgrelid = 'people'::regclass),
            (SELECT md5(string_agg(id || ':' || {name} || ':' || age, ',' ORDER BY id)) FROM people))"),
    )
    .await
}

async fn sessions_ended(c: &Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while one(c, "SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle' AND application_name = 'pgshift'").await != "0" {
        assert!(Instant::now() < deadline, "killed sessions never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill_after(url: &str, dir: &Path, command: &str, ms: u64) {
    let mut child = Command::new(BIN)
        .args([command, "--database-url", url, "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(ms));
    child.kill().expect("kill -9");
    let _ = child.wait();
}

#[tokio::test]
async fn kill_9_during_start_and_complete_then_the_same_command_gives_the_uninterrupted_result() {
    let dir = folder();
    // The reference: nobody interrupts it.
    let reference = TestDb::new().await;
    let rc = reference.connect().await;
    rc.batch_execute(SETUP).await.expect("setup");
    let url = reference.url().to_string();
    let out = pgshift(&url, dir.path(), &["start"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is expanded"), "{}", text(&out));
    let status = pgshift(&url, dir.path(), &["status"]);
    assert!(text(&status).contains("expanded"), "{}", text(&status));
    assert!(
        text(&status).contains("pgshift complete"),
        "{}",
        text(&status)
    );
    let out = pgshift(&url, dir.path(), &["complete"]);
    assert!(out.status.success(), "{}", text(&out));
    let want = picture(&rc, "display_name").await;
    assert!(
        want.contains("display_name text true 'anonymous'::text"),
        "{want}"
    );
    assert!(want.contains("age bigint false"), "{want}");

    // The same, killed at several moments of the expand, and of the contract.
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(SETUP).await.expect("setup");
    let url = db.url().to_string();
    for ms in [150u64, 400, 700, 1000] {
        kill_after(&url, dir.path(), "start", ms);
        sessions_ended(&c).await;
    }
    let out = pgshift(&url, dir.path(), &["start"]);
    assert!(out.status.success(), "{}", text(&out));
    for ms in [5u64, 40] {
        kill_after(&url, dir.path(), "complete", ms);
        sessions_ended(&c).await;
    }
    let status = pgshift(&url, dir.path(), &["status"]);
    if !text(&status).contains("applied") {
        let out = pgshift(&url, dir.path(), &["complete"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(picture(&c, "display_name").await, want);
}

#[tokio::test]
async fn phase_commands_say_what_to_do_and_a_rollback_of_nothing_exits_2() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(SETUP).await.expect("setup");
    let dir = folder();
    let url = db.url().to_string();
    // complete with nothing in progress is a no-op a deploy script can repeat; rollback is
    // an error.
    let out = pgshift(&url, dir.path(), &["complete"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing to complete"), "{}", text(&out));
    let out = pgshift(&url, dir.path(), &["rollback"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no online change is in progress"),
        "{}",
        text(&out)
    );
    let out = pgshift(&url, dir.path(), &["up"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("is expanded: old and new code both work"),
        "{}",
        text(&out)
    );
    // `plan` shows the change in progress as it stands (its stored plan), not "expand now".
    let plan = pgshift(&url, dir.path(), &["plan"]);
    assert!(
        plan.status.success()
            && text(&plan).contains("online change: expanded (old and new code both work)")
            && text(&plan).contains("rename public.people.full_name to display_name"),
        "{}",
        text(&plan)
    );
    let out = pgshift(&url, dir.path(), &["rollback"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("rolled back"), "{}", text(&out));
    let plan = pgshift(&url, dir.path(), &["plan"]);
    assert!(
        text(&plan).contains("online change: expand now")
            && text(&plan).contains("rename public.people.full_name to display_name")
            && text(&plan).contains("contract 1/2")
            && text(&plan).contains("contract 2/2: analyze public.people (display_name, age)"),
        "{}",
        text(&plan)
    );
}

#[tokio::test]
async fn the_library_expands_at_start_up_and_never_contracts() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(SETUP).await.expect("setup");
    let dir = folder();
    let applied = pgshift::migrate(&db.url().to_string(), dir.path())
        .await
        .expect("migrate");
    assert!(applied.is_empty(), "{applied:?}");
    // Expanded: both names work, the old column is still there.
    c.batch_execute("SELECT full_name, display_name FROM people LIMIT 1")
        .await
        .expect("both names");
    // Again at the next start-up: still expanded, nothing contracted.
    pgshift::migrate(&db.url().to_string(), dir.path())
        .await
        .expect("migrate again");
    c.batch_execute("SELECT full_name FROM people LIMIT 1")
        .await
        .expect("the old name stays until complete");
    assert_eq!(
        one(&c, "SELECT phase FROM pgshift.online_changes").await,
        "expanded"
    );
}

#[tokio::test]
async fn kill_9_during_rollback_then_rollback_again_restores_the_table() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(SETUP).await.expect("setup");
    let before = picture(&c, "full_name").await;
    let dir = folder();
    let url = db.url().to_string();
    let out = pgshift(&url, dir.path(), &["start"]);
    assert!(out.status.success(), "{}", text(&out));
    for ms in [5u64, 30, 80] {
        kill_after(&url, dir.path(), "rollback", ms);
        sessions_ended(&c).await;
    }
    let status = pgshift(&url, dir.path(), &["status"]);
    if !text(&status).contains("pending") {
        let out = pgshift(&url, dir.path(), &["rollback"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let after = picture(&c, "full_name").await;
    assert_eq!(after, before);
    let status = pgshift(&url, dir.path(), &["status"]);
    assert!(text(&status).contains("pending"), "{}", text(&status));
}

#[tokio::test]
async fn plan_answers_for_the_phases_and_max_lock_does_not_count_what_runs_online() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(SETUP).await.expect("setup");
    let dir = folder();
    let url = db.url().to_string();
    // As written, the retype rewrites 60,000 rows under ACCESS EXCLUSIVE: over a 1 ms limit.
    let exact = pgshift(&url, dir.path(), &["plan", "--max-lock", "1ms", "--exact"]);
    assert_eq!(exact.status.code(), Some(1), "{}", text(&exact));
    let online = pgshift(&url, dir.path(), &["plan", "--max-lock", "1ms"]);
    assert_eq!(online.status.code(), Some(0), "{}", text(&online));
    assert!(
        text(&online)
            .contains("Backward compatible with the running code? yes, while it is expanded"),
        "{}",
        text(&online)
    );
}

/// Markers are read in any case, and a marker at the end of a statement's own line (after
/// its `;`) is about that statement, as one on the line before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_in_any_case_and_at_the_end_of_the_line_are_obeyed() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(SETUP).await.expect("setup");
    let url = db.url().to_string();
    let trailing = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        trailing.path().join("20260101000000_rename.up.sql"),
        "ALTER TABLE people RENAME COLUMN age TO years; -- PGSHIFT:Rename View\n",
    )
    .expect("write");
    let plan = pgshift(&url, trailing.path(), &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        text(&plan).contains("rename public.people.age to years through a view (no copy)"),
        "{}",
        text(&plan)
    );
    let off = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        off.path().join("20260101000000_rename.up.sql"),
        "-- Pgshift:ONLINE off\nALTER TABLE people RENAME COLUMN age TO years;\n",
    )
    .expect("write");
    let plan = pgshift(&url, off.path(), &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        !text(&plan).contains("rename public.people.age"),
        "{}",
        text(&plan)
    );
    let up = pgshift(&url, off.path(), &["up"]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    assert_eq!(
        one(&c, "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'people'::regclass AND attnum > 0 AND NOT attisdropped").await,
        "id,full_name,years",
        "run as written: renamed in place, no view, no copy"
    );
    assert_eq!(
        one(
            &c,
            "SELECT relkind::text FROM pg_class WHERE relname = 'people'"
        )
        .await,
        "r"
    );
}

/// A function whose body names the renamed column works while the change is expanded (the
/// old column is still there) and breaks at `complete`: `plan` and `start` say so first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_start_warn_of_a_function_that_names_the_renamed_column() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(SETUP).await.expect("setup");
    c.batch_execute(
        "CREATE FUNCTION greeting(p bigint) RETURNS text LANGUAGE sql AS
           $$ SELECT 'hello ' || full_name FROM people WHERE id = p $$;",
    )
    .await
    .expect("function");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("20260101000000_rename.up.sql"),
        "ALTER TABLE people RENAME COLUMN full_name TO display_name;\n",
    )
    .expect("write");
    let url = db.url().to_string();
    let caveat = "function greeting(bigint) names public.people.full_name in its body: it works until `pgshift complete` drops full_name and fails from then on; change it to display_name before you complete";
    let plan = pgshift(&url, dir.path(), &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        text(&plan).contains(&format!("    before complete: {caveat}")),
        "{}",
        text(&plan)
    );
    assert!(
        text(&plan).contains("yes, while it is expanded")
            && text(&plan).contains(&format!("; but {caveat}")),
        "{}",
        text(&plan)
    );
    let json = pgshift(&url, dir.path(), &["plan", "--format", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan JSON");
    let caveats = doc["migrations"][0]["online"]["caveats"]
        .as_array()
        .expect("caveats");
    assert_eq!(caveats.len(), 1, "{caveats:?}");
    assert!(
        caveats[0].as_str().is_some_and(|c| c.starts_with(caveat)),
        "{caveats:?}"
    );
    let markdown = pgshift(&url, dir.path(), &["plan", "--format", "markdown"]);
    assert!(
        text(&markdown).contains("\nBefore complete:\n\n- function greeting"),
        "{}",
        text(&markdown)
    );
    // `start` expands; `up` then says the same while the change waits for its complete.
    for command in ["start", "up"] {
        let out = pgshift(&url, dir.path(), &[command]);
        assert_eq!(out.status.code(), Some(0), "{command}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("  before complete: {caveat}")),
            "{command}: {}",
            text(&out)
        );
    }
    // Meanwhile the function works; it is the contract that would break it.
    assert_eq!(one(&c, "SELECT greeting(1)").await, "hello person 1");
}
