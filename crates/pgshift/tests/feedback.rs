//! What `pgshift up` prints while a statement runs, when its output is not a terminal (a CI
//! log, a file): a plain line every five seconds, never a carriage return or an escape.

use std::process::Command;

use pgshift_db::testing::TestDb;

#[tokio::test]
async fn a_long_statement_prints_plain_progress_lines_in_a_log() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("20240101000000_slow.up.sql"),
        "SELECT pg_sleep(5.5);\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_pgshift"))
        .args(["up", "--database-url", &db.url().to_string(), "--dir"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgshift");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let running: Vec<&str> = stderr.lines().filter(|l| l.contains("running")).collect();
    assert_eq!(
        running,
        vec!["  running 20240101000000 for 5 s: SELECT pg_sleep(5.5)"],
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
}
