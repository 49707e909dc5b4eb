//! Test support for every pgshift crate: a fresh, uniquely named database per test on a real
//! PostgreSQL server.
//!
//! ```no_run
//! # async fn example() {
//! let db = pgshift_db::testing::TestDb::new().await;
//! let conn = db.connect().await;
//! conn.batch_execute("CREATE TABLE t (id int)").await.unwrap();
//! # }
//! ```
//!
//! The server is `PGSHIFT_TEST_DATABASE_URL` when set (any database on it that the user may
//! `CREATE DATABASE` from), otherwise one throwaway [`TempCluster`] shared by all tests of the
//! test binary, started on first use. The shared cluster lives in a `static`, which is never
//! dropped; its watcher (see [`crate::cluster`]) stops it and removes its directory when the
//! test process exits.
//!
//! Failures panic: this module is for tests only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::cluster::{ClusterOptions, TempCluster};
use crate::connect::{connect, Connection};
use crate::url::DatabaseUrl;
use pgshift_sql::ident::quote_ident;

/// The environment variable naming an existing server for tests.
pub const TEST_DATABASE_URL_ENV: &str = "PGSHIFT_TEST_DATABASE_URL";

struct SharedServer {
    admin_url: DatabaseUrl,
    cluster: Option<TempCluster>,
}

static SHARED: OnceLock<Result<SharedServer, String>> = OnceLock::new();
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

fn shared_server() -> &'static SharedServer {
    let server = SHARED.get_or_init(|| match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(text) if !text.trim().is_empty() => DatabaseUrl::parse(&text)
            .map(|admin_url| SharedServer {
                admin_url,
                cluster: None,
            })
            .map_err(|e| format!("{TEST_DATABASE_URL_ENV}: {e}")),
        _ => TempCluster::start(ClusterOptions::default())
            .map(|cluster| SharedServer {
                admin_url: cluster.url(),
                cluster: Some(cluster),
            })
            .map_err(|e| format!("starting the shared test cluster: {e}")),
    });
    match server {
        Ok(server) => server,
        Err(message) => panic!("TestDb: {message}"),
    }
}

/// Starts a throwaway cluster of the server binaries in `bin_dir` (the machine's when
/// `None`), off the async runtime's threads; returns it with its major version and a name
/// for messages (`PostgreSQL 14 (Some("/..."))`).
pub async fn start_cluster(bin_dir: Option<std::path::PathBuf>) -> (TempCluster, i32, String) {
    let options = match &bin_dir {
        Some(dir) => ClusterOptions::default().bin_dir(dir),
        None => ClusterOptions::default(),
    };
    let cluster = tokio::task::spawn_blocking(move || TempCluster::start(options))
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cluster on {bin_dir:?}: {e}"));
    let major = cluster.server_version_num() / 10_000;
    let on = format!("PostgreSQL {major} ({bin_dir:?})");
    (cluster, major, on)
}

/// The servers for version-dependent tests: `None` (the machine's), then each directory of
/// server binaries `PGSHIFT_PG_BINS` lists, separated by `:` (e.g.
/// `$(scripts/fetch-pg.sh 18):$(scripts/fetch-pg.sh 14)`; `scripts/dev.sh test` sets it).
pub fn listed_servers() -> Vec<Option<std::path::PathBuf>> {
    std::iter::once(None)
        .chain(
            std::env::var("PGSHIFT_PG_BINS")
                .unwrap_or_default()
                .split(':')
                .filter(|s| !s.trim().is_empty())
                .map(|s| Some(std::path::PathBuf::from(s))),
        )
        .collect()
}

/// The throwaway cluster shared by this test binary, or `None` when the tests use
/// `PGSHIFT_TEST_DATABASE_URL` (tests that need the server binaries, e.g. `pg_dump`, can take
/// them from [`TempCluster::bin_dir`]).
pub fn shared_cluster() -> Option<&'static TempCluster> {
    shared_server().cluster.as_ref()
}

/// A database that exists for the lifetime of this value. See the [module docs](self).
pub struct TestDb {
    name: String,
    url: DatabaseUrl,
    admin_url: DatabaseUrl,
}

impl TestDb {
    /// Creates a new empty database `pgshift_test_<pid>_<n>` on the test server.
    pub async fn new() -> TestDb {
        // Starting the cluster blocks for a second or two, once per test binary.
        let server = shared_server();
        let n = NEXT_DATABASE.fetch_add(1, Ordering::Relaxed);
        let name = format!("pgshift_test_{}_{n}", std::process::id());
        let admin = connect(&server.admin_url)
            .await
            .unwrap_or_else(|e| panic!("TestDb: {e}"));
        // The DROP removes a database left over from a crashed run whose pid was reused.
        // Two round trips: CREATE/DROP DATABASE refuse to share a multi-statement query.
        for sql in [
            format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ),
            format!("CREATE DATABASE {}", quote_ident(&name)),
        ] {
            admin.batch_execute(&sql).await.unwrap_or_else(|e| {
                panic!(
                    "TestDb: creating database {name}: {}",
                    crate::DbError::from(e)
                )
            });
        }
        TestDb {
            url: server.admin_url.with_database(&name),
            admin_url: server.admin_url.clone(),
            name,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for this database (superuser on a throwaway cluster).
    pub fn url(&self) -> DatabaseUrl {
        self.url.clone()
    }

    /// A URL for the server's maintenance database, for tests that need to act outside this
    /// database.
    pub fn admin_url(&self) -> DatabaseUrl {
        self.admin_url.clone()
    }

    /// A new session on this database.
    pub async fn connect(&self) -> Connection {
        connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("TestDb: {e}"))
    }
}

/// What [`crate::snapshot::SchemaWatch`] left in the database `conn` is on: its event
/// triggers (any event trigger counts) and its schema. Zero once it is uninstalled.
pub async fn watch_leftovers(conn: &Connection) -> i64 {
    conn.query_one(
        "SELECT (SELECT count(*) FROM pg_event_trigger)
              + (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshift_watch')",
        &[],
    )
    .await
    .unwrap_or_else(|e| panic!("watch_leftovers: {e}"))
    .get(0)
}

impl Drop for TestDb {
    /// Drops the database, forcing out sessions still connected. `Drop` is synchronous and
    /// may run inside (or outside) a runtime, so the work runs on its own thread with its own
    /// small runtime.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        let worker = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = connect(&admin_url).await.map_err(|e| e.to_string())?;
                admin
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| crate::DbError::from(e).to_string())
            })
        });
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("TestDb: could not drop database {}: {err}", self.name),
            Err(_) => eprintln!(
                "TestDb: the thread dropping database {} panicked",
                self.name
            ),
        }
    }
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("url", &self.url).finish()
    }
}
