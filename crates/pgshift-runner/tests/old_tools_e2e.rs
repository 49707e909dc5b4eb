//! The real old tools beside pgshift with `[run] record_in_old_tool`: dbmate, node-pg-migrate
//! and Drizzle's migrator (drizzle-orm with node-postgres) from npm, and sqlx-cli from cargo,
//! apply the first migrations; pgshift adopts them and applies the next one, and the tool run
//! again applies nothing (a data migration that multiplies would show running twice). The
//! other way round too, for the tools with downs: after pgshift reverts a migration, the tool
//! applies it again, and pgshift adopts it instead of running it a third time.
//!
//! The npm tools are installed once into `<target>/tools/npm` (npm's cache beside them) and
//! reused; sqlx-cli is found where `scripts/dev.sh test` installs it. Without node/npm, the
//! registry or sqlx-cli each test says so loudly and passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgshift_db::testing::TestDb;
use pgshift_runner::{DownTarget, Migrator, RunOptions, Silent};
use pgshift_source::{load, Format};

const PACKAGES: &[&str] = &[
    "dbmate@2.36.0",
    "node-pg-migrate@9.0.0",
    "pg@8",
    "drizzle-orm@0.45.4",
];

/// `<target>/tools/npm`, from the test binary's place (`<target>/debug/deps/`).
fn tools_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir).join("tools/npm"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.ancestors().nth(3)?.join("tools/npm"))
}

/// Runs `cmd` for at most `limit`; its output on failure.
fn run(mut cmd: Command, limit: Duration) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out_file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let out = out_file.reopen().map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{shown}: still running after {limit:?}, stopped"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(out_file.path()).unwrap_or_default();
    if status.success() {
        Ok(text)
    } else {
        Err(format!("{shown}: {status}\n{text}"))
    }
}

/// The installed tool `bin` (`node_modules/.bin/<bin>`), installing the packages first when
/// missing; `None` (said loudly) when that cannot be done here.
fn tool(bin: &str) -> Option<PathBuf> {
    installed(&Path::new("node_modules/.bin").join(bin), bin)
}

/// `relative` below the tools folder (a package's file), installing the packages first when
/// missing; `None` (said loudly, naming `what`) when that cannot be done here.
fn installed(relative: &Path, what: &str) -> Option<PathBuf> {
    let bin = what;
    // One npm install at a time: the tests of this binary run in parallel.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(dir) = tools_dir() else {
        eprintln!("SKIPPED: no target directory to install {bin} into");
        return None;
    };
    let path = dir.join(relative);
    if path.exists() {
        return Some(path);
    }
    let _ = std::fs::create_dir_all(&dir);
    let mut npm = Command::new("npm");
    npm.arg("install")
        .arg("--prefix")
        .arg(&dir)
        .arg("--cache")
        .arg(dir.join("cache"))
        .args(["--no-audit", "--no-fund", "--prefer-offline"])
        .args(PACKAGES);
    match run(npm, Duration::from_secs(300)) {
        Ok(_) if path.exists() => Some(path),
        Ok(_) => {
            eprintln!(
                "SKIPPED: npm install finished but {} is missing",
                path.display()
            );
            None
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: the real {bin} is not available (npm install of {PACKAGES:?} failed; needs node, npm and the npm registry): {e}"
            );
            None
        }
    }
}

/// The test database's URL as the tools read it, or `None` (said) when it is not TCP.
fn tool_url(db: &TestDb) -> Option<String> {
    let url = db.url();
    let Some(host) = url.hosts().first() else {
        eprintln!("SKIPPED: the test database has no host");
        return None;
    };
    if host.is_unix_socket() {
        eprintln!(
            "SKIPPED: the test database is on a unix socket; the npm tools are tested over TCP"
        );
        return None;
    }
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let auth = match url.password() {
        Some(p) => format!("{}:{}", enc(url.user()), enc(p)),
        None => enc(url.user()),
    };
    Some(format!(
        "postgres://{auth}@{}:{}/{}?sslmode=disable",
        host.host,
        host.port,
        enc(url.database())
    ))
}

fn on() -> RunOptions {
    RunOptions {
        record_in_old_tool: true,
        ..RunOptions::default()
    }
}

async fn x(db: &TestDb) -> i32 {
    db.connect()
        .await
        .query_one("SELECT x FROM t", &[])
        .await
        .expect("t")
        .get(0)
}

const LIMIT: Duration = Duration::from_secs(60);

fn dbmate(bin: &Path, url: &str, dir: &Path) -> Result<String, String> {
    let mut cmd = Command::new(bin);
    cmd.arg("--url")
        .arg(url)
        .arg("--migrations-dir")
        .arg(dir)
        .args(["--no-dump-schema", "up"]);
    run(cmd, LIMIT)
}

/// The scenario each old tool goes through: it applies two migrations (the second multiplies
/// `x` by 100); pgshift adopts them and applies a third (×10); the old tool, run again,
/// applies nothing; with `revert` (a tool with downs), pgshift reverts the third, the old
/// tool applies it, and pgshift, run again, adopts it instead of applying it. `files` are
/// the files each of the three migrations adds in the tool's format (name, text; a file
/// written again replaces the earlier one, as a journal does); `up` runs the tool on the
/// folder.
async fn never_twice(
    db: &TestDb,
    name: &str,
    format: Format,
    files: [&[(&str, &str)]; 3],
    revert: bool,
    up: impl Fn(&Path) -> Result<String, String>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let migrations = dir.path();
    let file = |files: &[(&str, &str)]| {
        for (name, body) in files {
            let path = migrations.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(path, body).expect("write");
        }
    };
    file(files[0]);
    file(files[1]);
    up(migrations).unwrap_or_else(|e| panic!("{name} up: {e}"));
    assert_eq!(x(db).await, 300);

    file(files[2]);
    let set = load(migrations, Some(format)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    let ran = m.up(None, &Silent).await.expect("pgshift up");
    assert_eq!(ran.len(), 1, "pgshift adopts 1-2 and runs 3 only");
    assert_eq!(x(db).await, 3000);

    let out = up(migrations).unwrap_or_else(|e| panic!("{name} up again: {e}"));
    assert_eq!(
        x(db).await,
        3000,
        "{name} ran pgshift's migration again:\n{out}"
    );

    if !revert {
        return;
    }
    // The other way round: pgshift reverts 3, the tool applies it, pgshift adopts it.
    m.down(DownTarget::Steps(1), &Silent)
        .await
        .expect("pgshift down");
    assert_eq!(x(db).await, 300);
    up(migrations).unwrap_or_else(|e| panic!("{name} up after down: {e}"));
    assert_eq!(x(db).await, 3000, "{name} applies what pgshift reverted");
    let ran = m
        .up(None, &Silent)
        .await
        .unwrap_or_else(|e| panic!("pgshift up after {name}: {e}"));
    assert!(ran.is_empty(), "pgshift ran {ran:?} that {name} applied");
    assert_eq!(x(db).await, 3000);
}

#[tokio::test]
async fn real_dbmate_and_pgshift_never_apply_a_migration_twice() {
    let Some(bin) = tool("dbmate") else { return };
    let db = TestDb::new().await;
    let Some(url) = tool_url(&db) else { return };
    never_twice(
        &db,
        "dbmate",
        Format::Dbmate,
        [
            &[(
                "20240101000000_create.sql",
                "-- migrate:up\nCREATE TABLE t (x int);\nINSERT INTO t VALUES (3);\n\n-- migrate:down\nDROP TABLE t;\n",
            )],
            &[(
                "20240102000000_cents.sql",
                "-- migrate:up\nUPDATE t SET x = x * 100;\n\n-- migrate:down\nUPDATE t SET x = x / 100;\n",
            )],
            &[(
                "20240103000000_more.sql",
                "-- migrate:up\nUPDATE t SET x = x * 10;\n\n-- migrate:down\nUPDATE t SET x = x / 10;\n",
            )],
        ],
        true,
        |dir| dbmate(&bin, &url, dir),
    )
    .await;
}

fn node_pg_migrate(bin: &Path, url: &str, dir: &Path) -> Result<String, String> {
    let mut cmd = Command::new(bin);
    cmd.arg("up")
        .arg("-m")
        .arg(dir)
        .env("DATABASE_URL", url)
        .current_dir(dir);
    run(cmd, LIMIT)
}

#[tokio::test]
async fn real_node_pg_migrate_and_pgshift_never_apply_a_migration_twice() {
    let Some(bin) = tool("node-pg-migrate") else {
        return;
    };
    let db = TestDb::new().await;
    let Some(url) = tool_url(&db) else { return };
    // node-pg-migrate also checks that what it recorded is in the order of the files.
    never_twice(
        &db,
        "node-pg-migrate",
        Format::NodePgMigrate,
        [
            &[(
                "1700000000000_create.sql",
                "-- Up Migration\nCREATE TABLE t (x int);\nINSERT INTO t VALUES (3);\n-- Down Migration\nDROP TABLE t;\n",
            )],
            &[(
                "1700000000001_cents.sql",
                "-- Up Migration\nUPDATE t SET x = x * 100;\n-- Down Migration\nUPDATE t SET x = x / 100;\n",
            )],
            &[(
                "1700000000002_more.sql",
                "-- Up Migration\nUPDATE t SET x = x * 10;\n-- Down Migration\nUPDATE t SET x = x / 10;\n",
            )],
        ],
        true,
        |dir| node_pg_migrate(&bin, &url, dir),
    )
    .await;
}

/// drizzle-orm's own migrator for node-postgres, run on `dir` (what `migrate(db, {
/// migrationsFolder })` does in an application at start-up).
fn drizzle_migrate(script: &Path, url: &str, dir: &Path) -> Result<String, String> {
    let mut cmd = Command::new("node");
    cmd.arg(script).arg(dir).env("DATABASE_URL", url);
    run(cmd, LIMIT)
}

const DRIZZLE_MIGRATE: &str = r#"const { drizzle } = require('drizzle-orm/node-postgres');
const { migrate } = require('drizzle-orm/node-postgres/migrator');
const { Pool } = require('pg');
(async () => {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL });
  await migrate(drizzle(pool), { migrationsFolder: process.argv[2] });
  await pool.end();
})().catch((e) => { console.error(e); process.exit(1); });
"#;

/// The journal drizzle-kit writes, listing the first `n` migrations.
fn drizzle_journal(n: usize) -> String {
    let entries: Vec<String> = ["0000_create", "0001_cents", "0002_more"]
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, tag)| {
            format!(
                r#"{{"idx":{i},"version":"7","when":{},"tag":"{tag}","breakpoints":true}}"#,
                1_700_000_000_000_u64 + i as u64 * 1000
            )
        })
        .collect();
    format!(
        r#"{{"version":"7","dialect":"postgresql","entries":[{}]}}"#,
        entries.join(",")
    )
}

#[tokio::test]
async fn real_drizzle_migrator_and_pgshift_never_apply_a_migration_twice() {
    let Some(package) = installed(
        Path::new("node_modules/drizzle-orm/package.json"),
        "drizzle-orm",
    ) else {
        return;
    };
    let Some(tools) = package.ancestors().nth(3) else {
        return;
    };
    // Beside node_modules, so that `require` finds drizzle-orm and pg.
    let script = tools.join("drizzle-migrate.cjs");
    std::fs::write(&script, DRIZZLE_MIGRATE).expect("write the migrator script");
    let db = TestDb::new().await;
    let Some(url) = tool_url(&db) else { return };
    let (one, two, three) = (drizzle_journal(1), drizzle_journal(2), drizzle_journal(3));
    // Drizzle has no down migrations: pgshift cannot revert, so only the first half runs.
    never_twice(
        &db,
        "drizzle-orm's migrator",
        Format::Drizzle,
        [
            &[
                (
                    "0000_create.sql",
                    "CREATE TABLE t (x int);\n--> statement-breakpoint\nINSERT INTO t VALUES (3);\n",
                ),
                ("meta/_journal.json", &one),
            ],
            &[
                ("0001_cents.sql", "UPDATE t SET x = x * 100;\n"),
                ("meta/_journal.json", &two),
            ],
            &[
                ("0002_more.sql", "UPDATE t SET x = x * 10;\n"),
                ("meta/_journal.json", &three),
            ],
        ],
        false,
        |dir| drizzle_migrate(&script, &url, dir),
    )
    .await;
}

/// sqlx-cli: `PGSHIFT_SQLX`, else `sqlx` on PATH, else `<target>/tools/bin/sqlx` (where
/// `scripts/dev.sh test` installs it with `cargo install`); `None`, said loudly, otherwise.
fn sqlx_cli() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("PGSHIFT_SQLX").map(PathBuf::from),
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("sqlx"))
                .find(|p| p.is_file())
        }),
        tools_dir().and_then(|npm| npm.parent().map(|tools| tools.join("bin/sqlx"))),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "SKIPPED: the real sqlx-cli is not installed (scripts/dev.sh test installs it into <target>/tools/bin with `cargo install sqlx-cli`; or set PGSHIFT_SQLX); sqlx's table is still checked as sqlx writes it in record_in_old_tool.rs"
        );
    }
    found
}

#[tokio::test]
async fn real_sqlx_cli_and_pgshift_never_apply_a_migration_twice() {
    let Some(bin) = sqlx_cli() else { return };
    let db = TestDb::new().await;
    let Some(url) = tool_url(&db) else { return };
    // sqlx also refuses to go on when an applied migration's checksum is not the file's: the
    // rows pgshift writes must carry sqlx's own SHA-384.
    never_twice(
        &db,
        "sqlx-cli",
        Format::Sqlx,
        [
            &[
                (
                    "1_create.up.sql",
                    "CREATE TABLE t (x int);\nINSERT INTO t VALUES (3);\n",
                ),
                ("1_create.down.sql", "DROP TABLE t;\n"),
            ],
            &[
                ("2_cents.up.sql", "UPDATE t SET x = x * 100;\n"),
                ("2_cents.down.sql", "UPDATE t SET x = x / 100;\n"),
            ],
            &[
                ("3_more.up.sql", "UPDATE t SET x = x * 10;\n"),
                ("3_more.down.sql", "UPDATE t SET x = x / 10;\n"),
            ],
        ],
        true,
        |dir| {
            let mut cmd = Command::new(&bin);
            cmd.args(["migrate", "run", "--database-url", &url, "--source"])
                .arg(dir);
            run(cmd, LIMIT)
        },
    )
    .await;
}
