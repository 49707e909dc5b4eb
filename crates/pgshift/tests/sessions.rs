//! Every session pgshift opens is closed properly: the server sees the protocol's goodbye,
//! not a socket torn down by a process exiting ("could not receive data from client:
//! Connection reset by peer", "unexpected EOF on client connection" in its log, one per
//! command, on every deploy).

use std::process::Command;

use pgshift_db::{ClusterOptions, TempCluster};

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

#[test]
fn commands_say_goodbye_to_the_server() {
    // A socket closed without the goodbye is logged at DEBUG1 ("unexpected EOF on client
    // connection") unless a transaction was open.
    let cluster =
        TempCluster::start(ClusterOptions::default().setting("log_min_messages", "debug1"))
            .expect("cluster");
    let url = cluster.url().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).expect("mkdir");
    std::fs::write(
        migrations.join("20240101000000_t.up.sql"),
        "CREATE TABLE t (id int PRIMARY KEY, v int);\nINSERT INTO t SELECT g, NULL FROM generate_series(1, 100) g;\n",
    )
    .expect("write");
    for args in [
        vec!["up"],
        vec!["status"],
        vec!["plan"],
        vec!["backfill", "--table", "t", "--set", "v = id"],
        vec!["backfill", "status"],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .args(["--database-url", &url, "--dir"])
            .arg(&migrations)
            .current_dir(dir.path())
            .output()
            .expect("run pgshift");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log_path = cluster
        .data_dir()
        .parent()
        .expect("cluster directory")
        .join("server.log");
    let log = std::fs::read_to_string(&log_path).expect("server log");
    for torn in [
        "Connection reset by peer",
        "unexpected EOF on client connection",
    ] {
        assert!(
            !log.contains(torn),
            "the server saw a session torn down:\n{log}"
        );
    }
}
