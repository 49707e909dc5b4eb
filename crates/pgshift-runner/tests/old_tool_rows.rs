//! `[run] record_in_old_tool` for each format pgshift writes: the row pgshift leaves in the old
//! tool's table is the one that tool writes itself (columns, derived names, checksum), read
//! back with pgshift's own adoption as applied, and removed on revert where the format has a
//! down. Each tool's table is built as the tool creates it (its source is named at each
//! table); the real tools run in `old_tools_e2e.rs`.

use std::path::Path;

use pgshift_db::testing::TestDb;
use pgshift_runner::{DownTarget, Migrator, RunOptions, Silent};
use pgshift_source::{load, Format};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, body).expect("write migration");
    }
}

fn on() -> RunOptions {
    RunOptions {
        record_in_old_tool: true,
        ..RunOptions::default()
    }
}

/// One row of `sql`, every column read as text (NULL as `None`).
async fn row(c: &tokio_postgres::Client, sql: &str) -> Vec<Option<String>> {
    let rows = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no row from {sql}"))
}

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// golang-migrate's table, as its database/postgres driver creates it (`ensureVersionTable`).
const GOLANG_MIGRATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null);";

/// golang-migrate's one row: (version, dirty).
async fn current_version(c: &tokio_postgres::Client) -> Vec<Option<String>> {
    row(
        c,
        "SELECT version::text, dirty::text FROM schema_migrations",
    )
    .await
}

/// Applies the folder with the mode on; the second `up` must find everything applied (the
/// row written reads back as applied through the tool's own table too).
async fn up(db: &TestDb, dir: &Path, format: Format) -> Migrator {
    let set = load(dir, Some(format)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    assert!(!m.up(None, &Silent).await.expect("up").is_empty());
    m
}

/// A fresh history that only the old tool's table can vouch for: pgshift's own is dropped,
/// and the next `up` must adopt every migration from the row pgshift wrote (none run again).
async fn adopted_from_the_tool_alone(db: &TestDb, dir: &Path, format: Format) {
    let c = db.connect().await;
    c.batch_execute("DROP SCHEMA pgshift CASCADE")
        .await
        .expect("drop pgshift's history");
    let set = load(dir, Some(format)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let ran = m.up(None, &Silent).await.expect("up from the tool's table");
    assert!(
        ran.is_empty(),
        "ran {ran:?} again: the row is not the tool's"
    );
}

#[tokio::test]
async fn prisma_gets_a_finished_row_with_its_checksum() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = "CREATE TABLE t (id int);\n";
    write(
        dir.path(),
        &[
            ("migration_lock.toml", "provider = \"postgresql\"\n"),
            ("20240101000000_init/migration.sql", sql),
        ],
    );
    let c = db.connect().await;
    // schema-engine's sql-schema-connector, flavour/postgres.rs `create_migrations_table`.
    c.batch_execute(
        "CREATE TABLE _prisma_migrations (
             id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL,
             finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL, logs TEXT,
             rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
             applied_steps_count INTEGER NOT NULL DEFAULT 0);",
    )
    .await
    .expect("prisma's table");
    up(&db, dir.path(), Format::Prisma).await;
    let got = row(
        &c,
        "SELECT migration_name, checksum, length(id)::text, finished_at IS NOT NULL, rolled_back_at IS NULL,
                applied_steps_count::text, logs IS NULL, started_at <= finished_at
           FROM _prisma_migrations",
    )
    .await;
    let sha256 = row(
        &c,
        &format!(
            "SELECT encode(sha256(convert_to({}, 'UTF8')), 'hex')",
            pgshift_sql::ident::quote_literal(sql)
        ),
    )
    .await;
    let t = Some("t".to_owned());
    assert_eq!(
        got,
        vec![
            Some("20240101000000_init".to_owned()),
            sha256[0].clone(),
            Some("36".to_owned()),
            t.clone(),
            t.clone(),
            Some("1".to_owned()),
            t.clone(),
            t
        ]
    );
    adopted_from_the_tool_alone(&db, dir.path(), Format::Prisma).await;
}

#[tokio::test]
async fn drizzle_gets_its_hash_and_the_journal_time() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = "CREATE TABLE t (id int);\n--> statement-breakpoint\nCREATE INDEX t_id ON t (id);\n";
    write(
        dir.path(),
        &[
            (
                "meta/_journal.json",
                r#"{"version":"7","dialect":"postgresql","entries":[
                    {"idx":0,"version":"7","when":1700000000000,"tag":"0000_init","breakpoints":true}]}"#,
            ),
            ("0000_init.sql", sql),
        ],
    );
    let c = db.connect().await;
    // drizzle-orm pg-core/dialect.ts `migrate`.
    c.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS drizzle;
         CREATE TABLE IF NOT EXISTS drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint);",
    )
    .await
    .expect("drizzle's table");
    up(&db, dir.path(), Format::Drizzle).await;
    let got = row(
        &c,
        &format!(
            "SELECT created_at::text, hash = encode(sha256(convert_to({}, 'UTF8')), 'hex') FROM drizzle.__drizzle_migrations",
            pgshift_sql::ident::quote_literal(sql)
        ),
    )
    .await;
    assert_eq!(
        got,
        vec![Some("1700000000000".to_owned()), Some("t".to_owned())]
    );
    adopted_from_the_tool_alone(&db, dir.path(), Format::Drizzle).await;
}

#[tokio::test]
async fn diesel_gets_the_version_without_dashes_and_loses_it_on_revert() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "2024-01-01-000000_create_t/up.sql",
                "CREATE TABLE t (id int);\n",
            ),
            ("2024-01-01-000000_create_t/down.sql", "DROP TABLE t;\n"),
        ],
    );
    let c = db.connect().await;
    // diesel/src/migration/setup_migration_table.sql.
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
             version VARCHAR(50) PRIMARY KEY NOT NULL,
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);",
    )
    .await
    .expect("diesel's table");
    let mut m = up(&db, dir.path(), Format::Diesel).await;
    assert_eq!(
        row(&c, "SELECT version FROM __diesel_schema_migrations").await,
        vec![Some("20240101000000".to_owned())]
    );
    m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    assert_eq!(
        count(&c, "SELECT count(*) FROM __diesel_schema_migrations").await,
        0
    );
    m.up(None, &Silent).await.expect("up again");
    adopted_from_the_tool_alone(&db, dir.path(), Format::Diesel).await;
}

#[tokio::test]
async fn goose_gets_an_applied_row_and_a_down_deletes_it() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[(
            "00001_create_t.sql",
            "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n",
        )],
    );
    let c = db.connect().await;
    // goose v3 internal/dialects/postgres.go, with the version-0 row goose writes first.
    c.batch_execute(
        "CREATE TABLE goose_db_version (
             id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
             version_id bigint NOT NULL, is_applied boolean NOT NULL,
             tstamp timestamp NOT NULL DEFAULT now());
         INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);",
    )
    .await
    .expect("goose's table");
    let mut m = up(&db, dir.path(), Format::Goose).await;
    assert_eq!(
        row(
            &c,
            "SELECT version_id::text, is_applied::text FROM goose_db_version WHERE version_id > 0"
        )
        .await,
        vec![Some("1".to_owned()), Some("true".to_owned())]
    );
    m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM goose_db_version WHERE version_id = 1"
        )
        .await,
        0
    );
    m.up(None, &Silent).await.expect("up again");
    adopted_from_the_tool_alone(&db, dir.path(), Format::Goose).await;
}

#[tokio::test]
async fn flyway_gets_rank_dotted_version_script_and_crc32() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("V1__init.sql", "CREATE TABLE t (id int);\n"),
            (
                "sub/V1_1__add_a_column.sql",
                "ALTER TABLE t ADD COLUMN x int;\n",
            ),
            (
                "sub/U1_1__add_a_column.sql",
                "ALTER TABLE t DROP COLUMN x;\n",
            ),
        ],
    );
    let c = db.connect().await;
    // flyway-database-postgresql PostgreSQLDatabase.getRawCreateScript.
    c.batch_execute(
        r#"CREATE TABLE "flyway_schema_history" (
               "installed_rank" INT NOT NULL, "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL,
               "type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL, "checksum" INTEGER,
               "installed_by" VARCHAR(100) NOT NULL, "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
               "execution_time" INTEGER NOT NULL, "success" BOOLEAN NOT NULL);
           ALTER TABLE "flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");"#,
    )
    .await
    .expect("flyway's table");
    let mut m = up(&db, dir.path(), Format::Flyway).await;
    let rows: Vec<Vec<Option<String>>> = vec![
        row(&c, "SELECT installed_rank::text, version, description, type, script, checksum::text, installed_by = current_user, success::text FROM flyway_schema_history WHERE installed_rank = 1").await,
        row(&c, "SELECT installed_rank::text, version, description, type, script, checksum::text, installed_by = current_user, success::text FROM flyway_schema_history WHERE installed_rank = 2").await,
    ];
    let s = |v: &str| Some(v.to_owned());
    // The CRC-32 of `CREATE TABLE t (id int);` without its line break, as Flyway's
    // ChecksumCalculator computes it (and `zlib.crc32` does).
    assert_eq!(
        rows[0],
        vec![
            s("1"),
            s("1"),
            s("init"),
            s("SQL"),
            s("V1__init.sql"),
            s("92137680"),
            s("t"),
            s("true")
        ]
    );
    assert_eq!(
        rows[1][..5],
        [
            s("2"),
            s("1.1"),
            s("add a column"),
            s("SQL"),
            s("sub/V1_1__add_a_column.sql")
        ]
    );
    m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM flyway_schema_history WHERE version = '1.1'"
        )
        .await,
        0
    );
    m.up(None, &Silent).await.expect("up again");
    adopted_from_the_tool_alone(&db, dir.path(), Format::Flyway).await;
}

#[tokio::test]
async fn golang_migrate_gets_the_current_version_and_a_revert_the_one_before() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("1_t.up.sql", "CREATE TABLE t (id int);\n"),
            ("1_t.down.sql", "DROP TABLE t;\n"),
            ("2_u.up.sql", "CREATE TABLE u (id int);\n"),
            ("2_u.down.sql", "DROP TABLE u;\n"),
        ],
    );
    let c = db.connect().await;
    c.batch_execute(GOLANG_MIGRATE_TABLE)
        .await
        .expect("golang-migrate's table");
    let s = |v: &str| Some(v.to_owned());
    let mut m = up(&db, dir.path(), Format::GolangMigrate).await;
    assert_eq!(count(&c, "SELECT count(*) FROM schema_migrations").await, 1);
    assert_eq!(current_version(&c).await, vec![s("2"), s("false")]);
    m.down(DownTarget::Steps(1), &Silent).await.expect("down");
    assert_eq!(current_version(&c).await, vec![s("1"), s("false")]);
    m.down(DownTarget::All, &Silent).await.expect("down all");
    assert_eq!(count(&c, "SELECT count(*) FROM schema_migrations").await, 0);
    m.up(None, &Silent).await.expect("up again");
    adopted_from_the_tool_alone(&db, dir.path(), Format::GolangMigrate).await;
}

#[tokio::test]
async fn atlas_gets_a_finished_revision_with_the_files_running_hash() {
    // The source crate's verified Atlas fixture: its atlas.sum lists each file's hash.
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../pgshift-source/tests/fixtures/atlas/good");
    let sum = std::fs::read_to_string(dir.join("atlas.sum")).expect("atlas.sum");
    let hash_of = |file: &str| {
        sum.lines()
            .find_map(|l| l.strip_prefix(file))
            .and_then(|rest| rest.trim().strip_prefix("h1:"))
            .map(str::to_owned)
    };
    let db = TestDb::new().await;
    let c = db.connect().await;
    // Atlas's revisions table (ent schema in cmd/atlas/internal/migrate/ent, on PostgreSQL).
    c.batch_execute(
        r#"CREATE SCHEMA atlas_schema_revisions;
           CREATE TABLE atlas_schema_revisions.atlas_schema_revisions (
               version varchar NOT NULL PRIMARY KEY, description varchar NOT NULL, type bigint NOT NULL DEFAULT 2,
               applied bigint NOT NULL DEFAULT 0, total bigint NOT NULL DEFAULT 0, executed_at timestamptz NOT NULL,
               execution_time bigint NOT NULL, error text, error_stmt text, hash varchar NOT NULL,
               partial_hashes jsonb, operator_version varchar NOT NULL);"#,
    )
    .await
    .expect("atlas's table");
    up(&db, &dir, Format::Atlas).await;
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        row(&c, "SELECT version, description, type::text, (applied = total)::text, hash, error IS NULL FROM atlas_schema_revisions.atlas_schema_revisions WHERE version = '20240102000000'").await,
        vec![s("20240102000000"), s("index"), s("2"), s("true"), hash_of("20240102000000_index.sql"), s("t")]
    );
    assert_eq!(
        row(&c, "SELECT hash FROM atlas_schema_revisions.atlas_schema_revisions WHERE version = '20240101000000'").await,
        vec![hash_of("20240101000000_init.sql")]
    );
    adopted_from_the_tool_alone(&db, &dir, Format::Atlas).await;
}

/// golang-migrate's `.up.sql`/`.down.sql` folder is read as sqlx unless forced; the old tool
/// is still golang-migrate, found by its history recording these files.
#[tokio::test]
async fn a_golang_migrate_folder_read_as_sqlx_records_in_golang_migrates_table() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("1_t.up.sql", "CREATE TABLE t (id int);\n"),
            ("1_t.down.sql", "DROP TABLE t;\n"),
            ("2_u.up.sql", "CREATE TABLE u (id int);\n"),
            ("2_u.down.sql", "DROP TABLE u;\n"),
        ],
    );
    let c = db.connect().await;
    c.batch_execute(&format!(
        "{GOLANG_MIGRATE_TABLE}
         CREATE TABLE t (id int);
         INSERT INTO schema_migrations VALUES (1, false);"
    ))
    .await
    .expect("golang-migrate applied 1");
    let set = load(dir.path(), None).expect("load");
    assert_eq!(set.format, Format::Sqlx, "the layout reads as sqlx");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    assert_eq!(m.up(None, &Silent).await.expect("up").len(), 1);
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(current_version(&c).await, vec![s("2"), s("false")]);
}

/// golang-migrate's one row never moves down: a migration pgshift applies out of order (a late
/// file below the current version) leaves it, and is run by pgshift, not taken as applied.
#[tokio::test]
async fn golang_migrates_version_never_moves_down_for_a_late_file() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("1_t.up.sql", "CREATE TABLE t (id int);\n"),
            ("1_t.down.sql", "DROP TABLE t;\n"),
            ("3_u.up.sql", "CREATE TABLE u (id int);\n"),
            ("3_u.down.sql", "DROP TABLE u;\n"),
        ],
    );
    let c = db.connect().await;
    c.batch_execute(GOLANG_MIGRATE_TABLE)
        .await
        .expect("golang-migrate's table");
    up(&db, dir.path(), Format::GolangMigrate).await;
    write(
        dir.path(),
        &[
            ("2_late.up.sql", "CREATE TABLE late (id int);\n"),
            ("2_late.down.sql", "DROP TABLE late;\n"),
        ],
    );
    let set = load(dir.path(), Some(Format::GolangMigrate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    let status = m.status().await.expect("status");
    let late = status
        .entries
        .iter()
        .find(|e| e.version == "2")
        .map(|e| e.state);
    assert_eq!(
        late,
        Some(pgshift_runner::EntryState::Pending),
        "status shows the late file pending, as up treats it"
    );
    let ran = m.up(None, &Silent).await.expect("up");
    assert_eq!(
        ran.len(),
        1,
        "the late file is run, not adopted from version 3"
    );
    assert_eq!(count(&c, "SELECT count(*) FROM late").await, 0);
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(current_version(&c).await, vec![s("3"), s("false")]);
}

/// A golang-migrate table that records nothing yet (the tool only created it) is still the old
/// tool's when the layout reads as sqlx: its `dirty` column says whose it is.
#[tokio::test]
async fn an_empty_golang_migrate_table_is_found_for_a_folder_read_as_sqlx() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("1_t.up.sql", "CREATE TABLE t (id int);\n"),
            ("1_t.down.sql", "DROP TABLE t;\n"),
        ],
    );
    let c = db.connect().await;
    c.batch_execute(GOLANG_MIGRATE_TABLE)
        .await
        .expect("golang-migrate's table");
    let set = load(dir.path(), None).expect("load");
    assert_eq!(set.format, Format::Sqlx);
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("up");
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(current_version(&c).await, vec![s("1"), s("false")]);
    m.down(DownTarget::All, &Silent).await.expect("down");
    assert_eq!(count(&c, "SELECT count(*) FROM schema_migrations").await, 0);
    m.up(None, &Silent)
        .await
        .expect("up again: still found, empty");
    assert_eq!(count(&c, "SELECT count(*) FROM schema_migrations").await, 1);
}

/// A row the tool left for a failed attempt (sqlx's `success = false`) is replaced, not
/// doubled (its primary key would refuse the second row).
#[tokio::test]
async fn a_failed_attempts_row_is_replaced_by_the_applied_one() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("1_t.up.sql", "CREATE TABLE t (id int);\n"),
            ("1_t.down.sql", "DROP TABLE t;\n"),
        ],
    );
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE _sqlx_migrations (
             version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
              VALUES (1, 't', FALSE, '\\x00', -1);",
    )
    .await
    .expect("sqlx's failed attempt");
    up(&db, dir.path(), Format::Sqlx).await;
    assert_eq!(
        row(
            &c,
            "SELECT count(*)::text, bool_and(success)::text FROM _sqlx_migrations"
        )
        .await,
        vec![Some("1".to_owned()), Some("true".to_owned())]
    );
}

/// Another application's golang-migrate table in the same database, recording a version none
/// of these files has reached, is not taken for this folder's old tool.
#[tokio::test]
async fn another_applications_golang_migrate_table_is_left_alone() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("20240101000000_t.up.sql", "CREATE TABLE t (id int);\n"),
            ("20240101000000_t.down.sql", "DROP TABLE t;\n"),
        ],
    );
    let c = db.connect().await;
    c.batch_execute(&format!(
        "{GOLANG_MIGRATE_TABLE} INSERT INTO schema_migrations VALUES (5, false);"
    ))
    .await
    .expect("another application's table");
    let set = load(dir.path(), None).expect("load");
    let mut m = Migrator::connect(&db.url(), set, on())
        .await
        .expect("connect");
    assert_eq!(m.up(None, &Silent).await.expect("up").len(), 1);
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(current_version(&c).await, vec![s("5"), s("false")]);
}
