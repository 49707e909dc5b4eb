//! A project switching from Alembic or Django to pgshift, with the real tools from PyPI (the
//! README's "Switching from Alembic" and "Switching from Django"). Their migrations are Python,
//! which pgshift does not run: the old revisions stay with the old tool, and the schema they
//! built becomes pgshift's first migration, a `pg_dump`, recorded with `pgshift baseline` on the
//! existing database. Then what a user relies on: pgshift applies the new SQL migrations (one
//! multiplies a value, so a second run would show), the old tool run again applies nothing and
//! does not fail, in either order (also after `pgshift down`), the tool's own drift checks stay
//! clean, `pgshift verify` replays the folder from an empty database, and a database built by
//! pgshift alone is one the old tool sees at its head.
//!
//! The projects are in `tests/fixtures/python_tools/` (its README). The tools are those of the
//! venv `PGSHIFT_PYTHON_TOOLS` names (its `bin`), else `<target>/tools/bin`, where
//! `scripts/dev.sh test` installs them; without them each test says SKIPPED and passes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgshift_db::testing::{shared_cluster, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

/// Every external command is stopped after this long; each takes about a second.
const LIMIT: Duration = Duration::from_secs(60);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_tools")
}

/// A finished command: its exit code and what it printed (stdout and stderr, interleaved;
/// stderr only when stdout went to a file).
struct Ran {
    shown: String,
    code: Option<i32>,
    out: String,
}

impl Ran {
    /// The output, after asserting the command succeeded.
    fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "{} failed:\n{}", self.shown, self.out);
        self.out
    }
}

/// Runs `cmd` for at most [`LIMIT`], its standard output into `stdout` when given.
fn run_to(cmd: &mut Command, stdout: Option<File>) -> Ran {
    let shown = format!("{cmd:?}");
    let log = tempfile::NamedTempFile::new().expect("temp file");
    let err = log.reopen().expect("reopen");
    let out = match stdout {
        Some(file) => file,
        None => err.try_clone().expect("clone"),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env("NO_COLOR", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .spawn()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{shown}: still running after {LIMIT:?}, stopped:\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        shown,
        code: status.code(),
        out: std::fs::read_to_string(log.path()).unwrap_or_default(),
    }
}

fn run(cmd: &mut Command) -> Ran {
    run_to(cmd, None)
}

/// `<target>`, from the test binary's place (`<target>/debug/deps/`).
fn target_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.ancestors().nth(3)?.to_path_buf())
}

/// The `bin` of a venv with Alembic, Django and psycopg, or `None`, said loudly.
fn python_tools(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("PGSHIFT_PYTHON_TOOLS") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => target_dir().map(|t| t.join("tools/bin")),
    };
    let why = match &dir {
        None => "no target directory to look for <target>/tools in".to_owned(),
        Some(dir) if !dir.join("python").is_file() => {
            format!("no Python venv at {}", dir.display())
        }
        Some(dir) => {
            let ran =
                run(Command::new(dir.join("python"))
                    .args(["-c", "import alembic, django, psycopg"]));
            if ran.code == Some(0) && dir.join("alembic").is_file() {
                return Some(dir.clone());
            }
            format!(
                "the venv at {} lacks alembic, django or psycopg ({})",
                dir.display(),
                ran.out.trim().lines().last().unwrap_or_default()
            )
        }
    };
    eprintln!(
        "SKIPPED {test}: {why}. `scripts/dev.sh test` installs Alembic, Django and psycopg \
         from PyPI into <target>/tools; or set PGSHIFT_PYTHON_TOOLS to the bin of a venv that \
         has them"
    );
    None
}

/// The test database as the Python tools and pg_dump reach it: over TCP, as libpq's URL and
/// as libpq's variables.
struct Server {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: String,
}

impl Server {
    fn of(db: &TestDb, test: &str) -> Option<Server> {
        let url = db.url();
        match url.hosts().first() {
            Some(h) if !h.is_unix_socket() => Some(Server {
                host: h.host.clone(),
                port: h.port,
                user: url.user().to_owned(),
                password: url.password().map(str::to_owned),
                database: url.database().to_owned(),
            }),
            _ => {
                eprintln!(
                    "SKIPPED {test}: the test database is not on TCP; the Python tools are tested over TCP"
                );
                None
            }
        }
    }

    /// `postgresql://...`: SQLAlchemy's, libpq's and pgshift's URL alike.
    fn url(&self) -> String {
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
        let auth = match &self.password {
            Some(p) => format!("{}:{}", enc(&self.user), enc(p)),
            None => enc(&self.user),
        };
        format!(
            "postgresql://{auth}@{}:{}/{}",
            self.host,
            self.port,
            enc(&self.database)
        )
    }

    /// `PGHOST`, `PGPORT`, ...: what the Django project's settings read.
    fn libpq_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGPASSWORD", self.password.as_deref().unwrap_or(""))
            .env("PGDATABASE", &self.database)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// `pgshift ARGS` in `project`, on the database `url`.
fn pgshift(project: &Path, url: &str, args: &[&str]) -> Ran {
    run(Command::new(BIN)
        .args(args)
        .current_dir(project)
        .env("DATABASE_URL", url))
}

/// pg_dump of the cluster in use (its major matches the server), else the one on PATH.
fn pg_dump() -> PathBuf {
    shared_cluster()
        .map(|c| c.bin_dir().join("pg_dump"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("pg_dump"))
}

/// The file `migrations/<version>_<name>.up.sql` that `pgshift new NAME` made.
fn new_file(project: &Path, name: &str) -> PathBuf {
    let suffix = format!("_{name}.up.sql");
    let found: Vec<PathBuf> = std::fs::read_dir(project.join("migrations"))
        .expect("migrations/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .collect();
    assert_eq!(found.len(), 1, "one {suffix}: {found:?}");
    found.into_iter().next().expect("one")
}

fn version_of(up: &Path) -> String {
    let name = up.file_name().expect("name").to_string_lossy();
    name.split('_').next().expect("version").to_owned()
}

/// `pgshift new NAME` with the SQL written into its two files; the version.
fn new_migration(project: &Path, url: &str, name: &str, up: &str, down: &str) -> String {
    pgshift(project, url, &["new", name]).ok();
    let up_file = new_file(project, name);
    std::fs::write(&up_file, up).expect("write up");
    let down_file = up_file.to_string_lossy().replace(".up.sql", ".down.sql");
    std::fs::write(down_file, down).expect("write down");
    version_of(&up_file)
}

/// The switch, for both tools: `pgshift init`; `pgshift new baseline`, its up file replaced
/// by `pg_dump` of the schema the tool built and of the tool's history table's rows, as
/// pg_dump writes them (its `set_config('search_path', '', false)` does not reach the
/// migrations after it: pgshift restores the session's); its down file removed (the
/// baseline is forward-only: nothing reverts the whole schema); and `pgshift baseline VERSION`
/// on the database the tool migrated. Returns the baseline's version.
fn switch_to_pgshift(project: &Path, server: &Server, history_table: &str) -> String {
    let url = server.url();
    pgshift(project, &url, &["init"]).ok();
    pgshift(project, &url, &["new", "baseline"]).ok();
    let baseline = new_file(project, "baseline");
    std::fs::remove_file(baseline.to_string_lossy().replace(".up.sql", ".down.sql"))
        .expect("remove the baseline's down");
    let dump = |args: &[&str], append: bool| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&baseline)
            .expect("open the baseline");
        run_to(
            Command::new(pg_dump()).args(args).arg("--dbname").arg(&url),
            Some(file),
        )
        .ok();
    };
    dump(&["--schema-only", "--no-owner", "--no-privileges"], false);
    dump(
        &[
            "--data-only",
            "--inserts",
            &format!("--table={history_table}"),
        ],
        true,
    );
    let version = version_of(&baseline);
    let out = pgshift(project, &url, &["baseline", &version]).ok();
    assert!(
        out.contains(&format!(
            "recorded 1 migration as applied (baseline {version}); none of them ran"
        )),
        "{out}"
    );
    version
}

async fn credits(db: &TestDb, table: &str) -> Vec<i32> {
    db.connect()
        .await
        .query(&format!("SELECT credits FROM {table} ORDER BY id"), &[])
        .await
        .expect("credits")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// pgshift's new migrations after the switch, the same for both projects: a column the
/// application's models declare, and a data migration that would show running twice.
fn write_new_migrations(project: &Path, url: &str, users: &str, orgs: &str) -> [String; 2] {
    [
        new_migration(
            project,
            url,
            "nickname",
            &format!("ALTER TABLE {users} ADD COLUMN nickname text;\n"),
            &format!("ALTER TABLE {users} DROP COLUMN nickname;\n"),
        ),
        new_migration(
            project,
            url,
            "credits_in_cents",
            &format!("UPDATE {orgs} SET credits = credits * 100;\n"),
            &format!("UPDATE {orgs} SET credits = credits / 100;\n"),
        ),
    ]
}

/// `pgshift verify` on the folder: the baseline replays on an empty database and the
/// migrations after it go up, down and up again.
fn assert_verify_passes(project: &Path) {
    let out = run(Command::new(BIN)
        .arg("verify")
        .current_dir(project)
        .env_remove("DATABASE_URL"))
    .ok();
    assert!(out.contains("PASSED"), "{out}");
    assert!(out.contains("baseline is forward-only"), "{out}");
}

#[tokio::test]
async fn alembic_project_switches_to_pgshift_and_no_migration_runs_twice() {
    const TEST: &str = "alembic_project_switches_to_pgshift_and_no_migration_runs_twice";
    let Some(tools) = python_tools(TEST) else {
        return;
    };
    let db = TestDb::new().await;
    let Some(server) = Server::of(&db, TEST) else {
        return;
    };
    let url = server.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path();
    copy_dir(&fixtures().join("alembic_project"), project);
    let alembic = |url: &str, args: &[&str]| {
        run(Command::new(tools.join("alembic"))
            .args(args)
            .current_dir(project)
            .env("DATABASE_URL", url))
    };

    // Alembic migrates the database: two revisions, one org with 3 credits.
    let out = alembic(&url, &["upgrade", "head"]).ok();
    assert!(out.contains("Running upgrade  -> 0001"), "{out}");
    assert!(out.contains("Running upgrade 0001 -> 0002"), "{out}");
    assert_eq!(credits(&db, "orgs").await, [3]);

    let baseline = switch_to_pgshift(project, &server, "alembic_version");
    let status = pgshift(project, &url, &["status"]).ok();
    assert!(
        status
            .lines()
            .any(|l| l.contains(&baseline) && l.contains(" baseline ")),
        "{status}"
    );
    let [nickname, cents] = write_new_migrations(project, &url, "users", "orgs");

    // pgshift applies its two migrations, not the baseline.
    let out = pgshift(project, &url, &["up"]).ok();
    assert!(out.contains("applied 2 migrations"), "{out}");
    assert!(
        out.contains(&format!("applied {nickname} nickname")),
        "{out}"
    );
    assert!(
        out.contains(&format!("applied {cents} credits_in_cents")),
        "{out}"
    );
    assert!(!out.contains(&format!("applying {baseline}")), "{out}");
    assert_eq!(credits(&db, "orgs").await, [300]);

    // Alembic, run again, applies nothing and does not fail; nor does pgshift.
    let out = alembic(&url, &["upgrade", "head"]).ok();
    assert!(!out.contains("Running upgrade"), "{out}");
    assert!(alembic(&url, &["current"]).ok().contains("0002 (head)"));
    let out = pgshift(project, &url, &["up"]).ok();
    assert!(
        out.contains("nothing to apply: the database is up to date"),
        "{out}"
    );
    assert_eq!(credits(&db, "orgs").await, [300], "each ran once");

    // The other order: pgshift reverts its newest, Alembic applies nothing, pgshift again.
    let out = pgshift(project, &url, &["down", "--steps", "1"]).ok();
    assert!(
        out.contains(&format!("reverted {cents} credits_in_cents")),
        "{out}"
    );
    assert_eq!(credits(&db, "orgs").await, [3]);
    let out = alembic(&url, &["upgrade", "head"]).ok();
    assert!(!out.contains("Running upgrade"), "{out}");
    assert_eq!(credits(&db, "orgs").await, [3]);
    let out = pgshift(project, &url, &["up"]).ok();
    assert!(out.contains("applied 1 migration"), "{out}");
    assert_eq!(credits(&db, "orgs").await, [300]);

    // `alembic check` compares the models (which declare pgshift's `nickname`) with the
    // database: nothing to do, and pgshift's tables, in schema `pgshift`, are not compared.
    let out = alembic(&url, &["check"]).ok();
    assert!(out.contains("No new upgrade operations detected."), "{out}");
    // An env.py that compares every schema would drop pgshift's history; `include_name`
    // leaves the schema out.
    let all = alembic(&url, &["-x", "include_schemas=1", "check"]);
    assert_ne!(all.code, Some(0), "{}", all.out);
    assert!(
        all.out
            .contains("Detected removed table 'pgshift.migrations'"),
        "{}",
        all.out
    );
    alembic(
        &url,
        &["-x", "include_schemas=1", "-x", "skip_pgshift=1", "check"],
    )
    .ok();

    assert_verify_passes(project);

    // A database built by pgshift alone (a new environment) is at Alembic's head: the
    // baseline holds alembic_version's row, so Alembic applies nothing there either, and
    // the schema is what the models say.
    let fresh = TestDb::new().await;
    let Some(fresh) = Server::of(&fresh, TEST) else {
        return;
    };
    let fresh_url = fresh.url();
    let out = pgshift(project, &fresh_url, &["up"]).ok();
    assert!(out.contains("applied 3 migrations"), "{out}");
    let out = alembic(&fresh_url, &["upgrade", "head"]).ok();
    assert!(!out.contains("Running upgrade"), "{out}");
    assert!(alembic(&fresh_url, &["current"])
        .ok()
        .contains("0002 (head)"));
    alembic(&fresh_url, &["check"]).ok();
}

#[tokio::test]
async fn django_project_switches_to_pgshift_and_no_migration_runs_twice() {
    const TEST: &str = "django_project_switches_to_pgshift_and_no_migration_runs_twice";
    let Some(tools) = python_tools(TEST) else {
        return;
    };
    let db = TestDb::new().await;
    let Some(server) = Server::of(&db, TEST) else {
        return;
    };
    let url = server.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path();
    copy_dir(&fixtures().join("django_project"), project);
    let manage = |server: &Server, args: &[&str]| {
        run(server.libpq_env(
            Command::new(tools.join("python"))
                .arg("manage.py")
                .args(args)
                .current_dir(project),
        ))
    };

    // Django migrates the database: two migrations, one org with 3 credits.
    let out = manage(&server, &["migrate"]).ok();
    assert!(out.contains("Applying shop.0001_create... OK"), "{out}");
    assert!(out.contains("Applying shop.0002_credits... OK"), "{out}");
    assert_eq!(credits(&db, "shop_org").await, [3]);

    // Django keeps a state of the models of its own: the models become `managed = False`
    // (and declare the column pgshift will add), which `makemigrations` records in a last
    // migration that runs no SQL; `migrate` records it.
    std::fs::copy(
        fixtures().join("django_after_switch/models.py"),
        project.join("shop/models.py"),
    )
    .expect("the models after the switch");
    let out = manage(
        &server,
        &["makemigrations", "shop", "--name", "pgshift_owns_schema"],
    )
    .ok();
    assert!(out.contains("0003_pgshift_owns_schema.py"), "{out}");
    let sql = manage(&server, &["sqlmigrate", "shop", "0003"]).ok();
    let statements: Vec<&str> = sql
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--") && *l != "BEGIN;" && *l != "COMMIT;")
        .collect();
    assert!(statements.is_empty(), "0003 runs SQL: {sql}");
    let out = manage(&server, &["migrate"]).ok();
    assert!(
        out.contains("Applying shop.0003_pgshift_owns_schema... OK"),
        "{out}"
    );

    let baseline = switch_to_pgshift(project, &server, "django_migrations");
    let [nickname, cents] = write_new_migrations(project, &url, "shop_customer", "shop_org");

    let out = pgshift(project, &url, &["up"]).ok();
    assert!(out.contains("applied 2 migrations"), "{out}");
    assert!(
        out.contains(&format!("applied {nickname} nickname")),
        "{out}"
    );
    assert!(
        out.contains(&format!("applied {cents} credits_in_cents")),
        "{out}"
    );
    assert!(!out.contains(&format!("applying {baseline}")), "{out}");
    assert_eq!(credits(&db, "shop_org").await, [300]);

    // Django, run again, applies nothing and does not fail; nothing is pending for it, its
    // models need no migration, and they read what pgshift changed.
    let out = manage(&server, &["migrate"]).ok();
    assert!(out.contains("No migrations to apply."), "{out}");
    manage(&server, &["migrate", "--check"]).ok();
    let out = manage(&server, &["makemigrations", "--check", "--dry-run"]).ok();
    assert!(out.contains("No changes detected"), "{out}");
    let out = manage(
        &server,
        &[
            "shell",
            "-c",
            "from shop.models import Org, Customer; \
             print('credits', list(Org.objects.values_list('credits', flat=True)), \
             'without nickname', Customer.objects.filter(nickname__isnull=True).count())",
        ],
    )
    .ok();
    assert!(out.contains("credits [300] without nickname 0"), "{out}");
    let out = pgshift(project, &url, &["up"]).ok();
    assert!(
        out.contains("nothing to apply: the database is up to date"),
        "{out}"
    );
    assert_eq!(credits(&db, "shop_org").await, [300], "each ran once");

    // The other order: pgshift reverts its newest, Django applies nothing, pgshift again.
    let out = pgshift(project, &url, &["down", "--steps", "1"]).ok();
    assert!(
        out.contains(&format!("reverted {cents} credits_in_cents")),
        "{out}"
    );
    assert_eq!(credits(&db, "shop_org").await, [3]);
    let out = manage(&server, &["migrate"]).ok();
    assert!(out.contains("No migrations to apply."), "{out}");
    assert_eq!(credits(&db, "shop_org").await, [3]);
    let out = pgshift(project, &url, &["up"]).ok();
    assert!(out.contains("applied 1 migration"), "{out}");
    assert_eq!(credits(&db, "shop_org").await, [300]);

    assert_verify_passes(project);

    // A database built by pgshift alone is one where Django has nothing to apply: the
    // baseline holds django_migrations' rows.
    let fresh_db = TestDb::new().await;
    let Some(fresh) = Server::of(&fresh_db, TEST) else {
        return;
    };
    let out = pgshift(project, &fresh.url(), &["up"]).ok();
    assert!(out.contains("applied 3 migrations"), "{out}");
    let out = manage(&fresh, &["migrate"]).ok();
    assert!(out.contains("No migrations to apply."), "{out}");
    manage(&fresh, &["migrate", "--check"]).ok();
}
