//! `[run] record_in_old_tool`: during a gradual switch, what pgshift applies is also written
//! into the old tool's own history table, exactly as that tool writes it, and removed when
//! pgshift reverts it; so the old tool, run afterwards, applies nothing twice. Each case builds
//! the tool's table as the tool creates it (the real tools run in `old_tools_e2e.rs`).

use std::path::Path;
use std::sync::Mutex;

use pgshift_db::testing::TestDb;
use pgshift_runner::{DownTarget, Event, Migrator, RunOptions, Silent};
use pgshift_source::{load, Format};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        std::fs::write(dir.join(name), body).expect("write migration");
    }
}

fn on() -> RunOptions {
    RunOptions {
        record_in_old_tool: true,
        ..RunOptions::default()
    }
}

/// The info lines `up`/`down` show the user.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl pgshift_runner::Observer for Lines {
    fn event(&self, event: &Event) {
        if let Event::Info(line) = event {
            self.0.lock().expect("lines").push(line.clone());
        }
    }
}

impl Lines {
    fn all(&self) -> Vec<String> {
        self.0.lock().expect("lines").clone()
    }
}

async fn texts(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    c.query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

const DBMATE_TABLE: &str = "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);";

const DBMATE_FILES: &[(&str, &str)] = &[
    (
        "20240101000000_first.sql",
        "-- migrate:up\nCREATE TABLE t (x int);\nINSERT INTO t VALUES (3);\n\n-- migrate:down\nDROP TABLE t;\n",
    ),
    (
        "20240102000000_scale.sql",
        "-- migrate:up\nUPDATE t SET x = x * 100;\n\n-- migrate:down\nUPDATE t SET x = x / 100;\n",
    ),
];

/// A dbmate project whose first migration dbmate applied (its table and row as dbmate leaves
/// them), the second pending: the database, the folder, a session, and the loaded set.
async fn dbmate_after_its_first_migration() -> (
    TestDb,
    tempfile::TempDir,
    pgshift_db::Connection,
    pgshift_source::MigrationSet,
) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), DBMATE_FILES);
    let c = db.connect().await;
    c.batch_execute(&format!(
        "{DBMATE_TABLE} CREATE TABLE t (x int); INSERT INTO t VALUES (3);
         INSERT INTO schema_migrations (version) VALUES ('20240101000000');"
    ))
    .await
    .expect("dbmate's state");
    let set = load(dir.path(), Some(Format::Dbmate)).expect("load");
    (db, dir, c, set)
}

#[tokio::test]
async fn dbmate_gets_its_version_row_on_up_and_loses_it_on_down() {
    let (db, _dir, c, set) = dbmate_after_its_first_migration().await;
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    let lines = Lines::default();
    m.up(None, &lines).await.expect("up");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations ORDER BY 1").await,
        ["20240101000000", "20240102000000"]
    );
    assert!(
        lines.all().iter().any(|l| l.contains(
            "20240102000000 recorded as applied in dbmate's schema_migrations (record_in_old_tool)"
        )),
        "the user is told what was recorded: {:?}",
        lines.all()
    );

    m.down(DownTarget::Steps(1), &lines).await.expect("down");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations ORDER BY 1").await,
        ["20240101000000"]
    );
    assert!(lines
        .all()
        .iter()
        .any(|l| l.contains("20240102000000 removed from dbmate's schema_migrations")));
}

#[tokio::test]
async fn with_the_mode_off_the_old_tools_table_is_left_alone() {
    let (db, _dir, c, set) = dbmate_after_its_first_migration().await;
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("up");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations").await,
        ["20240101000000"]
    );
}

#[tokio::test]
async fn node_pg_migrate_gets_its_name_row_with_run_on_and_loses_it_on_down() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "1700000000000_first.sql",
                "-- Up Migration\nCREATE TABLE t (x int);\n-- Down Migration\nDROP TABLE t;\n",
            ),
            (
                "1700000000001_second-step.sql",
                "-- Up Migration\nCREATE TABLE u (x int);\n-- Down Migration\nDROP TABLE u;\n",
            ),
        ],
    );
    let c = db.connect().await;
    // As node-pg-migrate 9 creates it.
    c.batch_execute(
        "CREATE TABLE t (x int);
         CREATE TABLE pgmigrations (id SERIAL PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);
         INSERT INTO pgmigrations (name, run_on) VALUES ('1700000000000_first', NOW());",
    )
    .await
    .expect("node-pg-migrate's state");
    let set = load(dir.path(), Some(Format::NodePgMigrate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("up");
    let rows = c
        .query(
            "SELECT id, name::text, run_on IS NOT NULL AND run_on > now()::timestamp - interval '1 minute' FROM pgmigrations ORDER BY id",
            &[],
        )
        .await
        .expect("pgmigrations");
    let rows: Vec<(i32, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [
            (1, "1700000000000_first".to_owned(), true),
            (2, "1700000000001_second-step".to_owned(), true)
        ]
    );
    m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    assert_eq!(
        texts(&c, "SELECT name::text FROM pgmigrations").await,
        ["1700000000000_first"]
    );
}

#[tokio::test]
async fn sqlx_gets_its_row_with_description_checksum_and_duration() {
    use sha2::Digest;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let second = "CREATE TABLE u (x int);\n";
    write(
        dir.path(),
        &[
            ("1_first_table.up.sql", "CREATE TABLE t (x int);\n"),
            ("1_first_table.down.sql", "DROP TABLE t;\n"),
            ("2_second_table.up.sql", second),
            ("2_second_table.down.sql", "DROP TABLE u;\n"),
        ],
    );
    let c = db.connect().await;
    // As sqlx 0.8 creates it (sqlx-postgres/src/migrate.rs).
    c.batch_execute(
        "CREATE TABLE t (x int);
         CREATE TABLE _sqlx_migrations (
             version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);",
    )
    .await
    .expect("sqlx's table");
    let first = sha2::Sha384::digest(b"CREATE TABLE t (x int);\n").to_vec();
    c.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'first table', TRUE, $1, 1000)",
        &[&first],
    )
    .await
    .expect("sqlx's row");
    let set = load(dir.path(), Some(Format::Sqlx)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("up");
    let row = c
        .query_one(
            "SELECT description, success, checksum, execution_time, installed_on IS NOT NULL FROM _sqlx_migrations WHERE version = 2",
            &[],
        )
        .await
        .expect("sqlx row for 2");
    assert_eq!(row.get::<_, String>(0), "second table");
    assert!(row.get::<_, bool>(1));
    assert_eq!(
        row.get::<_, Vec<u8>>(2),
        sha2::Sha384::digest(second.as_bytes()).to_vec(),
        "sqlx's checksum: SHA-384 of the up file"
    );
    assert!(row.get::<_, i64>(3) >= 0);
    assert!(row.get::<_, bool>(4));
    m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    assert_eq!(
        texts(&c, "SELECT version::text FROM _sqlx_migrations").await,
        ["1"]
    );
}

/// A migration that runs outside a transaction records its end (and the old tool's row) with
/// its last statement.
#[tokio::test]
async fn a_migration_outside_a_transaction_is_recorded_too() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "1_table.sql",
                "-- migrate:up\nCREATE TABLE t (x int);\n-- migrate:down\nDROP TABLE t;\n",
            ),
            (
                "2_index.sql",
                "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_x ON t (x);\n-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_x;\n",
            ),
        ],
    );
    let c = db.connect().await;
    c.batch_execute(DBMATE_TABLE).await.expect("dbmate's table");
    let set = load(dir.path(), Some(Format::Dbmate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("up");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations ORDER BY 1").await,
        ["1", "2"]
    );
    m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations").await,
        ["1"]
    );
}

/// pgshift writes only a table the old tool made, and says when there is none.
#[tokio::test]
async fn without_the_old_tools_table_nothing_is_created_and_the_user_is_told() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), DBMATE_FILES);
    let set = load(dir.path(), Some(Format::Dbmate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    let lines = Lines::default();
    m.up(None, &lines).await.expect("up");
    let c = db.connect().await;
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .expect("regclass")
        .get(0);
    assert!(!exists, "pgshift must not create the old tool's table");
    assert!(
        lines
            .all()
            .iter()
            .any(|l| l
                .contains("record_in_old_tool is on, but this database has no schema_migrations")),
        "{:?}",
        lines.all()
    );
}

/// A migration pgshift reverted and the old tool applied again afterwards is adopted, not run
/// a second time: removing the row also forgets that pgshift had seen it.
#[tokio::test]
async fn after_a_revert_the_old_tool_applying_it_again_is_adopted() {
    let (db, _dir, c, set) = dbmate_after_its_first_migration().await;
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("up");
    // A second up takes in the table again (and remembers 2 as seen).
    m.up(None, &Silent).await.expect("second up");
    m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    // dbmate applies 2 itself.
    c.batch_execute(
        "UPDATE t SET x = x * 100; INSERT INTO schema_migrations (version) VALUES ('20240102000000');",
    )
    .await
    .expect("dbmate applies 2");
    let ran = m.up(None, &Silent).await.expect("up after dbmate");
    assert!(ran.is_empty(), "pgshift ran {ran:?} again");
    let x: i32 = c.query_one("SELECT x FROM t", &[]).await.expect("t").get(0);
    assert_eq!(x, 300, "the UPDATE ran once");
}

/// The old tool's row is written in the migration's transaction: when it cannot be written,
/// the migration is not kept either, and the error says what pgshift was writing.
#[tokio::test]
async fn a_row_the_old_tools_table_refuses_rolls_the_migration_back_and_says_why() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &DBMATE_FILES[..1]);
    let c = db.connect().await;
    // Not as dbmate makes it: a column dbmate does not fill.
    c.batch_execute(
        "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY, owner text NOT NULL);",
    )
    .await
    .expect("a changed table");
    let set = load(dir.path(), Some(Format::Dbmate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    let Err(e) = m.up(None, &Silent).await else {
        panic!("up succeeded although the row could not be written");
    };
    let text = e.to_string();
    assert!(
        text.contains("while recording it as applied in dbmate's schema_migrations ([run] record_in_old_tool)"),
        "{text}"
    );
    let t: bool = c
        .query_one("SELECT to_regclass('t') IS NOT NULL", &[])
        .await
        .expect("regclass")
        .get(0);
    assert!(!t, "the migration was kept without the old tool's row");
    let recorded: i64 = c
        .query_one("SELECT count(*) FROM pgshift.migrations", &[])
        .await
        .expect("history")
        .get(0);
    assert_eq!(recorded, 0);
}

/// A format whose history pgshift does not write (plain SQL has no tool): said, with what to do.
#[tokio::test]
async fn a_format_pgshift_cannot_record_for_is_named_with_what_to_do() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &[("1_t.sql", "CREATE TABLE t (x int);")]);
    let set = load(dir.path(), Some(Format::Plain)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    let lines = Lines::default();
    m.up(None, &lines).await.expect("up");
    assert!(
        lines.all().iter().any(|l| l.contains(
            "record_in_old_tool is on, but pgshift cannot write plain's history (it can for sqlx, golang-migrate, flyway, dbmate, goose, diesel, prisma, drizzle, atlas, node-pg-migrate)"
        ) && l.contains("Remove plain from every deploy path")),
        "{:?}",
        lines.all()
    );
}

/// An online change's row goes into the old tool's table when the expand ends: from then on old
/// and new code run side by side, and the old tool applying the migration's SQL as written (a
/// rename) would break the old code. `rollback` removes it; `complete` leaves exactly one.
#[tokio::test]
async fn an_online_change_is_recorded_once_expanded_and_removed_by_rollback() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[(
            "2_rename.sql",
            "-- migrate:up\nALTER TABLE users RENAME COLUMN full_name TO display_name;\n-- migrate:down\nALTER TABLE users RENAME COLUMN display_name TO full_name;\n",
        )],
    );
    let c = db.connect().await;
    c.batch_execute(&format!(
        "{DBMATE_TABLE} CREATE TABLE users (id bigserial PRIMARY KEY, full_name text);
         INSERT INTO users (full_name) VALUES ('a');"
    ))
    .await
    .expect("state");
    let set = load(dir.path(), Some(Format::Dbmate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    let lines = Lines::default();
    m.up(None, &lines).await.expect("up expands");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations").await,
        ["2"],
        "expanded: dbmate must not run the rename now"
    );
    assert!(
        lines
            .all()
            .iter()
            .any(|l| l.contains("2 recorded as applied in dbmate's schema_migrations")),
        "{:?}",
        lines.all()
    );
    m.rollback(None, &Silent).await.expect("rollback");
    assert!(
        texts(&c, "SELECT version::text FROM schema_migrations")
            .await
            .is_empty(),
        "rolled back: pending again for both tools"
    );
    m.up(None, &Silent).await.expect("expand again");
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations").await,
        ["2"]
    );
}

/// `baseline` says the database already holds these migrations: with the mode on, the old tool
/// is told as well (and a row it has already is not doubled).
#[tokio::test]
async fn baseline_records_in_the_old_tools_table_too() {
    let (db, _dir, c, set) = dbmate_after_its_first_migration().await;
    c.batch_execute("UPDATE t SET x = x * 100")
        .await
        .expect("2 applied by hand");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    let v2 = pgshift_source::Version::parse("20240102000000").expect("v");
    m.baseline(&v2, &Silent).await.expect("baseline");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations ORDER BY 1").await,
        ["20240101000000", "20240102000000"]
    );
    assert!(m.up(None, &Silent).await.expect("up").is_empty());
    let x: i32 = c.query_one("SELECT x FROM t", &[]).await.expect("t").get(0);
    assert_eq!(x, 300);
}

/// A migration that stopped partway and was finished by hand: `resolve --finished` records
/// its end in the old tool's table, as `up` would have.
#[tokio::test]
async fn resolve_finished_records_in_the_old_tools_table_too() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[(
            "20240101000000_two_steps.sql",
            "-- migrate:up transaction:false\nCREATE TABLE t (x int);\nSELECT 1/0;\n-- migrate:down\nDROP TABLE t;\n",
        )],
    );
    let c = db.connect().await;
    c.batch_execute(DBMATE_TABLE).await.expect("dbmate's table");
    let set = load(dir.path(), Some(Format::Dbmate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    assert!(m.up(None, &Silent).await.is_err(), "stops at 1/0");
    assert!(texts(&c, "SELECT version::text FROM schema_migrations")
        .await
        .is_empty());
    let v = pgshift_source::Version::parse("20240101000000").expect("v");
    m.resolve(&v, None, pgshift_runner::Resolution::Finished, &Silent)
        .await
        .expect("resolve");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations").await,
        ["20240101000000"]
    );
}

/// `trace --commit` runs and records what is pending: it never runs what the old tool applied,
/// and with the mode on records what it ran in the old tool's table.
#[tokio::test]
async fn trace_commit_skips_what_the_old_tool_applied_and_records_what_it_ran() {
    let (db, _dir, c, set) = dbmate_after_its_first_migration().await;
    let options = pgshift_runner::trace::TraceOptions {
        target: pgshift_runner::trace::Target::Database {
            url: db.url(),
            commit: true,
        },
        seed: None,
        from: None,
        run: on(),
    };
    let report = pgshift_runner::trace::trace(&set, &options)
        .await
        .expect("trace");
    let traced: Vec<&str> = report
        .migrations
        .iter()
        .map(|m| m.version.as_str())
        .collect();
    assert_eq!(traced, ["20240102000000"], "dbmate applied the first");
    assert_eq!(
        texts(&c, "SELECT version::text FROM schema_migrations ORDER BY 1").await,
        ["20240101000000", "20240102000000"]
    );
    let x: i32 = c.query_one("SELECT x FROM t", &[]).await.expect("t").get(0);
    assert_eq!(x, 300, "each ran once");
}

/// The old tool's table is named with the schema it was found in: a migration that empties
/// `search_path` (as a pg_dump does) still gets its row written, in that table.
#[tokio::test]
async fn a_migration_that_empties_search_path_still_gets_its_row() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[(
            "20240101000000_dump.sql",
            "-- migrate:up\nSELECT pg_catalog.set_config('search_path', '', false);\nCREATE TABLE public.t (x int);\n-- migrate:down\nDROP TABLE public.t;\n",
        )],
    );
    let c = db.connect().await;
    c.batch_execute(DBMATE_TABLE).await.expect("dbmate's table");
    let set = load(dir.path(), Some(Format::Dbmate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("up");
    assert_eq!(
        texts(&c, "SELECT version::text FROM public.schema_migrations").await,
        ["20240101000000"]
    );
}
