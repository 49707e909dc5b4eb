//! The throwaway cluster: it starts, serves, and leaves nothing behind — neither when dropped
//! nor when the process that started it dies without running any destructor.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pgshift_db::{connect, ClusterOptions, ConnectFailure, DbError, TempCluster};

/// Pids of processes whose command line mentions `needle` (a data directory).
fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().into_owned();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // The watcher shell mentions the directory too; it exits right after cleanup.
            if cmdline.contains(&needle) {
                found.push(format!("{pid}: {cmdline}"));
            }
        }
    }
    found
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[tokio::test]
async fn cluster_serves_queries_and_drop_leaves_nothing_behind() {
    let cluster = TempCluster::start(ClusterOptions::default().setting("work_mem", "7MB"))
        .unwrap_or_else(|e| panic!("{e}"));
    let data_dir = cluster.data_dir().to_path_buf();
    let cluster_dir = data_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    assert!(data_dir.join("PG_VERSION").is_file());
    assert!(cluster.bin_dir().join("initdb").is_file());

    let url = cluster.url();
    assert_eq!(url.database(), "postgres");
    assert_eq!(url.hosts()[0].host, "127.0.0.1");
    let conn = connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let version = pgshift_db::server_version_num(&conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(version, cluster.server_version_num());
    let row = conn
        .query_one(
            "SELECT current_setting('work_mem'), current_setting('fsync')",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(row.get::<_, String>(0), "7MB");
    assert_eq!(row.get::<_, String>(1), "off");
    drop(conn);

    drop(cluster);
    assert!(
        !cluster_dir.exists(),
        "{} still exists",
        cluster_dir.display()
    );
    assert!(
        wait_until(Duration::from_secs(5), || processes_mentioning(&data_dir)
            .is_empty()),
        "left running: {:?}",
        processes_mentioning(&data_dir)
    );
    match connect(&url).await {
        Ok(_) => panic!("the server still answers after drop"),
        Err(DbError::Connect { failure, .. }) => assert_eq!(failure, ConnectFailure::Refused),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[test]
fn bad_setting_fails_with_the_server_log() {
    let err = match TempCluster::start(ClusterOptions::default().setting("no_such_setting_x", "1"))
    {
        Ok(_) => panic!("a cluster with an unknown setting started"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("pg_ctl"), "{err}");
    assert!(err.contains("no_such_setting_x"), "{err}");
}

/// Run by `cluster_is_cleaned_up_when_the_process_dies` in a child process: starts a
/// cluster, reports its directory, and aborts without running any destructor.
#[test]
#[ignore = "helper, run in a child process by another test"]
fn helper_start_cluster_and_abort() {
    if std::env::var_os("PGSHIFT_ABORT_HELPER").is_none() {
        return;
    }
    let cluster = TempCluster::start(ClusterOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    println!("DATA_DIR={}", cluster.data_dir().display());
    std::process::abort();
}

#[test]
fn cluster_is_cleaned_up_when_the_process_dies() {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let output = std::process::Command::new(exe)
        .args([
            "--exact",
            "helper_start_cluster_and_abort",
            "--ignored",
            "--nocapture",
        ])
        .env("PGSHIFT_ABORT_HELPER", "1")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!output.status.success(), "the helper was supposed to abort");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let data_dir: PathBuf = stdout
        .lines()
        .find_map(|line| line.strip_prefix("DATA_DIR="))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "no DATA_DIR in helper output:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let cluster_dir = data_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(15), || !cluster_dir.exists()
            && processes_mentioning(&data_dir).is_empty()),
        "after the process died: dir exists = {}, processes = {:?}",
        cluster_dir.exists(),
        processes_mentioning(&data_dir)
    );
}
