//! Adopting pgshift on a database another tool migrated: the tool's history table is read and
//! its migrations are recorded as applied, never run again. Each case builds the tool's real
//! history table (columns as the tool creates them), marks some migrations applied, creates
//! the objects they made (so running one again would fail), then runs `up`.

use std::path::Path;

use pgshift_db::testing::TestDb;
use pgshift_runner::{EntryState, Migrator, RunError, RunOptions, Silent};
use pgshift_source::{load, Format, Version};

struct Case {
    format: Format,
    files: &'static [(&'static str, &'static str)],
    /// The tool's history table with the state "first migration applied" (plus the table
    /// the first migration created).
    history: &'static str,
    /// The versions `up` must run.
    expect_run: &'static [&'static str],
    /// The versions that must show as adopted.
    expect_adopted: &'static [&'static str],
}

async fn run_case(case: &Case) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, body) in case.files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, body).expect("write");
    }
    let c = db.connect().await;
    c.batch_execute(case.history).await.expect("tool history");
    let set = load(dir.path(), Some(case.format)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let ran = m
        .up(None, &Silent)
        .await
        .unwrap_or_else(|e| panic!("{}: up failed: {e}", case.format));
    let ran: Vec<String> = ran.iter().map(Version::to_string).collect();
    assert_eq!(ran, case.expect_run, "{}: what up ran", case.format);
    let status = m.status().await.expect("status");
    let adopted: Vec<&str> = status
        .entries
        .iter()
        .filter(|e| e.state == EntryState::Adopted)
        .map(|e| e.version.as_str())
        .collect();
    assert_eq!(adopted, case.expect_adopted, "{}: adopted", case.format);
    assert_eq!(status.pending(), 0, "{}: nothing pending", case.format);
}

#[tokio::test]
async fn golang_migrate_schema_migrations() {
    run_case(&Case {
        format: Format::GolangMigrate,
        files: &[
            ("1_first.up.sql", "CREATE TABLE first (id int);"),
            ("1_first.down.sql", "DROP TABLE first;"),
            ("2_second.up.sql", "CREATE TABLE second (id int);"),
            ("2_second.down.sql", "DROP TABLE second;"),
        ],
        history: "CREATE TABLE first (id int);
                  CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
                  INSERT INTO schema_migrations VALUES (1, false);",
        expect_run: &["2"],
        expect_adopted: &["1"],
    })
    .await;
}

#[tokio::test]
async fn golang_migrate_dirty_database_is_refused_with_what_to_do() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("1_first.up.sql"),
        "CREATE TABLE first (id int);",
    )
    .expect("write");
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
         INSERT INTO schema_migrations VALUES (1, true);",
    )
    .await
    .expect("history");
    let set = load(dir.path(), Some(Format::GolangMigrate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let err = m.up(None, &Silent).await.expect_err("dirty");
    assert!(matches!(err, RunError::Usage(_)), "{err:?}");
    assert!(err.to_string().contains("pgshift baseline 1"), "{err}");
    let exists: bool = c
        .query_one("SELECT to_regclass('first') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(!exists, "nothing ran");
}

#[tokio::test]
async fn dbmate_schema_migrations() {
    run_case(&Case {
        format: Format::Dbmate,
        files: &[
            ("20240101000000_first.sql", "-- migrate:up\nCREATE TABLE first (id int);\n\n-- migrate:down\nDROP TABLE first;\n"),
            ("20240102000000_second.sql", "-- migrate:up\nCREATE TABLE second (id int);\n\n-- migrate:down\nDROP TABLE second;\n"),
        ],
        history: "CREATE TABLE first (id int);
                  CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);
                  INSERT INTO schema_migrations VALUES ('20240101000000');",
        expect_run: &["20240102000000"],
        expect_adopted: &["20240101000000"],
    })
    .await;
}

#[tokio::test]
async fn flyway_schema_history() {
    run_case(&Case {
        format: Format::Flyway,
        files: &[
            ("V1__first.sql", "CREATE TABLE first (id int);"),
            ("V1_1__first_more.sql", "ALTER TABLE first ADD COLUMN x int;"),
            ("V2__second.sql", "CREATE TABLE second (id int);"),
        ],
        history: "CREATE TABLE first (id int, x int);
                  CREATE TABLE flyway_schema_history (
                      installed_rank integer NOT NULL PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL,
                      type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum integer,
                      installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(),
                      execution_time integer NOT NULL, success boolean NOT NULL);
                  INSERT INTO flyway_schema_history VALUES
                      (1, '1', 'first', 'SQL', 'V1__first.sql', -1904223420, 'app', now(), 5, true),
                      (2, '1.1', 'first more', 'SQL', 'V1_1__first_more.sql', -121782505, 'app', now(), 5, true),
                      (3, '2', 'second', 'SQL', 'V2__second.sql', -700451544, 'app', now(), 5, false);",
        // Flyway writes 1.1 for V1_1, and each file's CRC-32 (checked); a failed row
        // (success = false) is not applied.
        expect_run: &["2"],
        expect_adopted: &["1", "1_1"],
    })
    .await;
}

#[tokio::test]
async fn diesel_schema_migrations_with_dashed_versions() {
    run_case(&Case {
        format: Format::Diesel,
        files: &[
            ("2024-01-01-000000_first/up.sql", "CREATE TABLE first (id int);"),
            ("2024-01-01-000000_first/down.sql", "DROP TABLE first;"),
            ("2024-01-02-000000_second/up.sql", "CREATE TABLE second (id int);"),
            ("2024-01-02-000000_second/down.sql", "DROP TABLE second;"),
        ],
        // diesel records the version with the dashes removed.
        history: "CREATE TABLE first (id int);
                  CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY NOT NULL,
                                                           run_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP);
                  INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000000');",
        expect_run: &["2024-01-02-000000"],
        expect_adopted: &["2024-01-01-000000"],
    })
    .await;
}

#[tokio::test]
async fn prisma_migrations_table() {
    run_case(&Case {
        format: Format::Prisma,
        files: &[
            ("migration_lock.toml", "provider = \"postgresql\"\n"),
            ("20240101000000_first/migration.sql", "CREATE TABLE first (id int);"),
            ("20240102000000_second/migration.sql", "CREATE TABLE second (id int);"),
            ("20240103000000_third/migration.sql", "CREATE TABLE third (id int);"),
        ],
        // The second one was rolled back (`prisma migrate resolve --rolled-back`): not applied.
        history: "CREATE TABLE first (id int);
                  CREATE TABLE _prisma_migrations (
                      id varchar(36) PRIMARY KEY NOT NULL, checksum varchar(64) NOT NULL, finished_at timestamptz,
                      migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
                      started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0);
                  INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, rolled_back_at, applied_steps_count) VALUES
                      ('a', '9306ca57b3a4fb17ae7aa78ad99be9dd1357a32738ef31c6967a59bd2346ee96', now(), '20240101000000_first', NULL, 1),
                      ('b', 'c2', NULL, '20240102000000_second', now(), 0);",
        expect_run: &["20240102000000", "20240103000000"],
        expect_adopted: &["20240101000000"],
    })
    .await;
}

#[tokio::test]
async fn goose_db_version_newest_row_decides() {
    run_case(&Case {
        format: Format::Goose,
        files: &[
            ("00001_first.sql", "-- +goose Up\nCREATE TABLE first (id int);\n-- +goose Down\nDROP TABLE first;\n"),
            ("00002_second.sql", "-- +goose Up\nCREATE TABLE second (id int);\n-- +goose Down\nDROP TABLE second;\n"),
            ("00003_third.sql", "-- +goose Up\nCREATE TABLE third (id int);\n-- +goose Down\nDROP TABLE third;\n"),
        ],
        // goose appends a row per up and per down: 2 was applied, then rolled back.
        history: "CREATE TABLE first (id int);
                  CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL,
                                                 is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());
                  INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (2, false);",
        expect_run: &["00002", "00003"],
        expect_adopted: &["00001"],
    })
    .await;
}

#[tokio::test]
async fn drizzle_migrations_by_journal_time() {
    run_case(&Case {
        format: Format::Drizzle,
        files: &[
            (
                "meta/_journal.json",
                r#"{"version":"7","dialect":"postgresql","entries":[
                    {"idx":0,"version":"7","when":1700000000000,"tag":"0000_first","breakpoints":true},
                    {"idx":1,"version":"7","when":1700000500000,"tag":"0001_second","breakpoints":true}]}"#,
            ),
            ("0000_first.sql", "CREATE TABLE first (id int);"),
            ("0001_second.sql", "CREATE TABLE second (id int);\n--> statement-breakpoint\nCREATE INDEX second_id_idx ON second (id);"),
        ],
        history: "CREATE TABLE first (id int);
                  CREATE SCHEMA drizzle;
                  CREATE TABLE drizzle.__drizzle_migrations (id serial PRIMARY KEY, hash text NOT NULL, created_at bigint);
                  INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('h', 1700000000000);",
        expect_run: &["1700000500000"],
        expect_adopted: &["1700000000000"],
    })
    .await;
}

#[tokio::test]
async fn node_pg_migrate_pgmigrations_by_name() {
    run_case(&Case {
        format: Format::NodePgMigrate,
        files: &[
            ("1700000000000_first.sql", "-- Up Migration\nCREATE TABLE first (id int);\n-- Down Migration\nDROP TABLE first;\n"),
            ("1700000000001_second.sql", "-- Up Migration\nCREATE TABLE second (id int);\n-- Down Migration\nDROP TABLE second;\n"),
        ],
        history: "CREATE TABLE first (id int);
                  CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);
                  INSERT INTO pgmigrations (name, run_on) VALUES ('1700000000000_first', now());",
        expect_run: &["1700000000001"],
        expect_adopted: &["1700000000000"],
    })
    .await;
}

#[tokio::test]
async fn a_migration_the_old_tool_applies_later_is_adopted_not_run_again() {
    // The switch seen in the field: pgshift took over a sqlx database, then sqlx applied one
    // more migration (an application still calling `sqlx::migrate!()` at start-up). pgshift
    // ran it a second time: 999.00 became 99900.00, then 9990000.00.
    let db = TestDb::new().await;
    let c = db.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("1_prices.sql"),
        "CREATE TABLE prices (amount numeric NOT NULL);\nINSERT INTO prices VALUES (999.00);\n",
    )
    .expect("write");
    c.batch_execute(
        "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text, installed_on timestamptz DEFAULT now(),
             success boolean NOT NULL, checksum bytea, execution_time bigint);
         CREATE TABLE prices (amount numeric NOT NULL);
         INSERT INTO prices VALUES (999.00);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'prices', true, '\\x2b369bec913cf6b886164ed13970318cdffdbd8cb9396a5b7e46b23fa8f108c1b98d05f421f0b6a8d2b9a561475fc583', 1);",
    )
    .await
    .expect("sqlx applied 1");
    let set = load(dir.path(), Some(Format::Sqlx)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    assert!(m.up(None, &Silent).await.expect("adopts 1").is_empty());

    // A teammate adds migration 2 and sqlx applies it.
    std::fs::write(
        dir.path().join("2_cents.sql"),
        "UPDATE prices SET amount = amount * 100;\n",
    )
    .expect("write");
    c.batch_execute(
        "UPDATE prices SET amount = amount * 100;
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (2, 'cents', true, '\\x5007bb1e8ff80d510ac2980e5bef6dbd503074990d9a1add22cc4e7f492d6457d3f8c9a76c513d667814f973c4ba5f7c', 1);",
    )
    .await
    .expect("sqlx applied 2");

    let set = load(dir.path(), Some(Format::Sqlx)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let events = std::sync::Mutex::new(Vec::new());
    let observer =
        |e: &pgshift_runner::Event| events.lock().expect("events").push(format!("{e:?}"));
    let ran = m.up(None, &observer).await.expect("up");
    assert!(ran.is_empty(), "ran {ran:?} again");
    let amount: String = c
        .query_one("SELECT amount::text FROM prices", &[])
        .await
        .expect("q")
        .get(0);
    assert_eq!(amount, "99900.00", "migration 2 ran twice");
    let said = events.lock().expect("events").join("\n");
    assert!(
        said.contains("Adopted") && said.contains("count: 1"),
        "{said}"
    );
    let state: String = c
        .query_one(
            "SELECT state FROM pgshift.migrations WHERE version = '2'",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    assert_eq!(state, "adopted");
}

#[tokio::test]
async fn pgshifts_own_history_wins_over_the_old_tools_row_for_the_same_version() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("1_first.sql"),
        "CREATE TABLE first (id int);",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("2_second.sql"),
        "CREATE TABLE second (id int);",
    )
    .expect("write");
    let set = load(dir.path(), Some(Format::Sqlx)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("up");
    // sqlx's table appears later claiming both: pgshift applied them, nothing changes.
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text, installed_on timestamptz DEFAULT now(),
             success boolean NOT NULL, checksum bytea, execution_time bigint);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'a', true, '\\x00', 1), (2, 'b', true, '\\x00', 1);",
    )
    .await
    .expect("history");
    assert!(m.up(None, &Silent).await.expect("up").is_empty());
    let states: Vec<String> = c
        .query("SELECT state FROM pgshift.migrations ORDER BY version", &[])
        .await
        .expect("q")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(states, vec!["applied", "applied"]);
}

/// The Atlas fixture's `users` table and Atlas's revisions table (ent's schema on PostgreSQL)
/// holding the rows `values` (SQL tuples of the insert's columns).
fn atlas_applied(values: &str) -> String {
    format!(
        r#"CREATE TABLE "users" ("id" bigint NOT NULL, PRIMARY KEY ("id"));
           CREATE SCHEMA atlas_schema_revisions;
           CREATE TABLE atlas_schema_revisions.atlas_schema_revisions (
               version varchar NOT NULL PRIMARY KEY, description varchar NOT NULL, type bigint NOT NULL DEFAULT 2,
               applied bigint NOT NULL DEFAULT 0, total bigint NOT NULL DEFAULT 0, executed_at timestamptz NOT NULL,
               execution_time bigint NOT NULL, error text, error_stmt text, hash varchar NOT NULL,
               partial_hashes jsonb, operator_version varchar NOT NULL);
           INSERT INTO atlas_schema_revisions.atlas_schema_revisions
               (version, description, applied, total, executed_at, execution_time, hash, operator_version)
           VALUES {values};"#
    )
}

#[tokio::test]
async fn atlas_schema_revisions() {
    // The source crate's verified Atlas fixture (its atlas.sum is checked on load).
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../pgshift-source/tests/fixtures/atlas/good");
    let db = TestDb::new().await;
    let c = db.connect().await;
    c.batch_execute(
        &atlas_applied(
            "('20240101000000', 'init', 1, 1, now(), 1, '1iw0qeStmzcmCpojO42atuhgstr7+DMye/txkpU3X2E=', 'Atlas CLI v0.30.0')",
        ),
    )
    .await
    .expect("history");
    let set = load(&dir, Some(Format::Atlas)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let ran = m.up(None, &Silent).await.expect("up");
    assert_eq!(ran, vec![Version::parse("20240102000000").expect("v")]);
    let status = m.status().await.expect("status");
    assert_eq!(status.entries[0].state, EntryState::Adopted);
}

#[tokio::test]
async fn another_tools_history_is_found_when_the_layout_was_read_as_a_different_format() {
    // golang-migrate's `.up.sql`/`.down.sql` layout is detected as sqlx; its history must
    // still be adopted, or its migrations would run twice.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, body) in [
        ("1_first.up.sql", "CREATE TABLE first (id int);"),
        ("1_first.down.sql", "DROP TABLE first;"),
        ("2_second.up.sql", "CREATE TABLE second (id int);"),
        ("2_second.down.sql", "DROP TABLE second;"),
    ] {
        std::fs::write(dir.path().join(name), body).expect("write");
    }
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE first (id int);
         CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
         INSERT INTO schema_migrations VALUES (1, false);",
    )
    .await
    .expect("history");
    let set = load(dir.path(), None).expect("load");
    assert_eq!(
        set.format,
        Format::Sqlx,
        "the layout is ambiguous and reads as sqlx"
    );
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let ran = m.up(None, &Silent).await.expect("up");
    assert_eq!(
        ran,
        vec![Version::parse("2").expect("v")],
        "migration 1 was adopted, not re-run"
    );
}

#[tokio::test]
async fn after_reverting_everything_the_other_tools_table_is_not_adopted_again() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, body) in [
        ("1_first.up.sql", "CREATE TABLE first (id int);"),
        ("1_first.down.sql", "DROP TABLE first;"),
        ("2_second.up.sql", "CREATE TABLE second (id int);"),
        ("2_second.down.sql", "DROP TABLE second;"),
    ] {
        std::fs::write(dir.path().join(name), body).expect("write");
    }
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE first (id int);
         CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
         INSERT INTO schema_migrations VALUES (1, false);",
    )
    .await
    .expect("tool history");
    let set = load(dir.path(), Some(Format::GolangMigrate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("first up");
    let reverted = m
        .down(pgshift_runner::DownTarget::All, &Silent)
        .await
        .expect("down all");
    assert_eq!(reverted, vec!["2".to_string(), "1".to_string()]);
    // pgshift's history is now empty but exists; golang-migrate's table still says 1. The
    // schema has neither table, so `up` must run both, not adopt 1 again.
    let ran = m.up(None, &Silent).await.expect("second up");
    let ran: Vec<String> = ran.iter().map(Version::to_string).collect();
    assert_eq!(ran, vec!["1", "2"]);
    let first: bool = c
        .query_one("SELECT to_regclass('first') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(first, "migration 1 was recorded as applied without running");
}

#[tokio::test]
async fn a_failed_adoption_leaves_no_empty_history_behind() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, body) in [
        ("1_first.up.sql", "CREATE TABLE first (id int);"),
        ("2_second.up.sql", "CREATE TABLE second (id int);"),
    ] {
        std::fs::write(dir.path().join(name), body).expect("write");
    }
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE first (id int);
         CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
         INSERT INTO schema_migrations VALUES (1, true);",
    )
    .await
    .expect("tool history");
    let set = load(dir.path(), Some(Format::GolangMigrate)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    assert!(
        m.up(None, &Silent).await.is_err(),
        "a dirty database stops up"
    );
    // The user repairs golang-migrate's state; the next `up` must still adopt it.
    c.batch_execute("UPDATE schema_migrations SET dirty = false")
        .await
        .expect("repair");
    let ran = m.up(None, &Silent).await.expect("up after repair");
    let ran: Vec<String> = ran.iter().map(Version::to_string).collect();
    assert_eq!(ran, vec!["2"]);
}

/// Adding a format touches nothing in the runner: which tables each tool keeps and how to read
/// them come from the format descriptors, so no runner source names a format or its table.
#[test]
fn the_runner_names_no_format_and_no_other_tools_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut read = 0;
    for entry in std::fs::read_dir(&src).expect("runner src") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        read += 1;
        for format in Format::all() {
            let variant = format!("Format::{format:?}");
            assert!(
                !text.contains(&variant),
                "{} names {variant}: put what the runner needs in the format's descriptor",
                path.display()
            );
            for table in format.descriptor().history {
                assert!(
                    !text.contains(table.table),
                    "{} names {format}'s table {}: adoption reads it from the descriptor",
                    path.display(),
                    table.table
                );
            }
        }
    }
    assert!(read > 5, "read {read} files of {}", src.display());
}

#[tokio::test]
async fn down_takes_in_what_the_old_tool_applied_before_choosing_what_to_revert() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).expect("write");
    write(
        "1_prices.up.sql",
        "CREATE TABLE prices (amount numeric NOT NULL);\nINSERT INTO prices VALUES (999.00);\n",
    );
    write("1_prices.down.sql", "DROP TABLE prices;\n");
    let set = load(dir.path(), Some(Format::Sqlx)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("pgshift applies 1");
    // sqlx, still deployed somewhere, applies migration 2.
    write(
        "2_cents.up.sql",
        "UPDATE prices SET amount = amount * 100;\n",
    );
    write(
        "2_cents.down.sql",
        "UPDATE prices SET amount = amount / 100;\n",
    );
    c.batch_execute(
        "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text, installed_on timestamptz DEFAULT now(),
             success boolean NOT NULL, checksum bytea, execution_time bigint);
         UPDATE prices SET amount = amount * 100;
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'prices', true, '\\x00', 1), (2, 'cents', true, '\\x5007bb1e8ff80d510ac2980e5bef6dbd503074990d9a1add22cc4e7f492d6457d3f8c9a76c513d667814f973c4ba5f7c', 1);",
    )
    .await
    .expect("sqlx applied 2");
    let set = load(dir.path(), Some(Format::Sqlx)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let reverted = m
        .down(pgshift_runner::DownTarget::Steps(1), &Silent)
        .await
        .expect("down");
    assert_eq!(reverted, vec!["2".to_string()], "the newest is sqlx's 2");
    let amount: String = c
        .query_one("SELECT round(amount, 2)::text FROM prices", &[])
        .await
        .expect("the table is still there")
        .get(0);
    assert_eq!(amount, "999.00");
}

#[tokio::test]
async fn before_the_first_up_status_plan_and_down_see_what_the_old_tool_applied() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).expect("write");
    write("1_users.up.sql", "CREATE TABLE users (id int);\n");
    write("1_users.down.sql", "DROP TABLE users;\n");
    write("2_posts.up.sql", "CREATE TABLE posts (id int);\n");
    write("2_posts.down.sql", "DROP TABLE posts;\n");
    c.batch_execute(
        "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text, installed_on timestamptz DEFAULT now(),
             success boolean NOT NULL, checksum bytea, execution_time bigint);
         CREATE TABLE users (id int);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'users', true, '\\x6337697883ead93bde2c64aa4c89983e494facc84418dc07c69854725a0401e9abccd1b1a56f06b2871d89dd25d29d40', 1);",
    )
    .await
    .expect("sqlx applied 1");
    let set = load(dir.path(), Some(Format::Sqlx)).expect("load");
    let mut m = Migrator::connect(&db.url(), set.clone(), RunOptions::default())
        .await
        .expect("connect");

    let status = m.status().await.expect("status");
    let states: Vec<_> = status
        .entries
        .iter()
        .map(|e| (e.version.clone(), e.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("1".to_string(), pgshift_runner::EntryState::Adopted),
            ("2".to_string(), pgshift_runner::EntryState::Pending)
        ]
    );
    let created: bool = c
        .query_one("SELECT to_regnamespace('pgshift') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(!created, "status wrote nothing");

    let report =
        pgshift_runner::plan::plan(&c, &set, &pgshift_runner::plan::PlanOptions::default())
            .await
            .expect("plan");
    let planned: Vec<String> = report
        .migrations
        .iter()
        .map(|p| p.version.clone())
        .collect();
    assert_eq!(
        planned,
        vec!["2".to_string()],
        "no phantom CREATE TABLE users"
    );

    let reverted = m
        .down(pgshift_runner::DownTarget::Steps(1), &Silent)
        .await
        .expect("down");
    assert_eq!(reverted, vec!["1".to_string()], "not 'nothing to revert'");
    let users: bool = c
        .query_one("SELECT to_regclass('users') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(!users);
}

#[tokio::test]
async fn a_file_edited_after_the_old_tool_applied_it_is_not_adopted_silently() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let applied = "CREATE TABLE users (id int);\n";
    // sqlx applied the file as it was: its checksum is SHA-384 of that text.
    c.batch_execute(&format!(
        "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text, installed_on timestamptz DEFAULT now(),
             success boolean NOT NULL, checksum bytea, execution_time bigint);
         CREATE TABLE users (id int);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
              VALUES (1, 'users', true, sha384(convert_to({}, 'UTF8')), 1);",
        pgshift_sql::ident::quote_literal(applied)
    ))
    .await
    .expect("sqlx applied 1");
    // Then someone edits the applied file (which `sqlx migrate run` refuses).
    std::fs::write(
        dir.path().join("1_users.sql"),
        "CREATE TABLE users (id bigint);\n",
    )
    .expect("write");
    let set = load(dir.path(), Some(Format::Sqlx)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let err = m.up(None, &Silent).await.expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("1_users.sql"), "{text}");
    assert!(text.contains("different checksum"), "{text}");
    assert!(text.contains("pgshift baseline 1"), "{text}");
    let recorded: bool = c
        .query_one("SELECT to_regclass('pgshift.migrations') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(!recorded, "nothing was recorded");

    // The way out the message gives.
    m.baseline(&Version::parse("1").expect("v"), &Silent)
        .await
        .expect("baseline");
    assert!(m.up(None, &Silent).await.expect("up").is_empty());

    // The file as sqlx applied it is adopted without a word.
    let db2 = TestDb::new().await;
    let c2 = db2.connect().await;
    c2.batch_execute(&format!(
        "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text, installed_on timestamptz DEFAULT now(),
             success boolean NOT NULL, checksum bytea, execution_time bigint);
         CREATE TABLE users (id int);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
              VALUES (1, 'users', true, sha384(convert_to({}, 'UTF8')), 1);",
        pgshift_sql::ident::quote_literal(applied)
    ))
    .await
    .expect("sqlx applied 1");
    std::fs::write(dir.path().join("1_users.sql"), applied).expect("write");
    let set = load(dir.path(), Some(Format::Sqlx)).expect("load");
    let mut m = Migrator::connect(&db2.url(), set, RunOptions::default())
        .await
        .expect("connect");
    assert!(m.up(None, &Silent).await.expect("adopts").is_empty());
}

/// An edited file against the checksum the old tool recorded: refused with the file named,
/// nothing recorded.
async fn refused_as_edited(db: &TestDb, dir: &Path, format: Format, file: &str) {
    let set = load(dir, Some(format)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let text = m.up(None, &Silent).await.expect_err("refused").to_string();
    assert!(text.contains(file), "{text}");
    assert!(text.contains("different checksum"), "{text}");
    let c = db.connect().await;
    let recorded: bool = c
        .query_one("SELECT to_regclass('pgshift.migrations') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(!recorded, "nothing was recorded");
}

const PRISMA_TABLE: &str = "CREATE TABLE _prisma_migrations (
    id varchar(36) PRIMARY KEY NOT NULL, checksum varchar(64) NOT NULL, finished_at timestamptz,
    migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0);";

#[tokio::test]
async fn prismas_checksum_refuses_an_edited_file_and_accepts_other_line_endings() {
    let applied = "CREATE TABLE first (id int);\nCREATE TABLE other (id int);\n";
    let history = format!(
        "{PRISMA_TABLE} CREATE TABLE first (id int); CREATE TABLE other (id int);
         INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
              VALUES ('a', encode(sha256(convert_to({}, 'UTF8')), 'hex'), now(), '20240101000000_first', 1);",
        pgshift_sql::ident::quote_literal(applied)
    );
    for (on_disk, edited) in [
        (
            "CREATE TABLE first (id bigint);\nCREATE TABLE other (id int);\n",
            true,
        ),
        // A Windows checkout: Prisma accepts it, and so does pgshift.
        (
            "CREATE TABLE first (id int);\r\nCREATE TABLE other (id int);\r\n",
            false,
        ),
    ] {
        let db = TestDb::new().await;
        db.connect()
            .await
            .batch_execute(&history)
            .await
            .expect("prisma applied");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("20240101000000_first")).expect("mkdir");
        std::fs::write(
            dir.path().join("20240101000000_first/migration.sql"),
            on_disk,
        )
        .expect("write");
        if edited {
            refused_as_edited(&db, dir.path(), Format::Prisma, "migration.sql").await;
        } else {
            let set = load(dir.path(), Some(Format::Prisma)).expect("load");
            let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
                .await
                .expect("connect");
            assert!(m.up(None, &Silent).await.expect("adopted").is_empty());
        }
    }
}

#[tokio::test]
async fn flyways_crc32_refuses_an_edited_file() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch_execute(
            "CREATE TABLE t (id int);
             CREATE TABLE flyway_schema_history (
                 installed_rank integer NOT NULL PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL,
                 type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum integer,
                 installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(),
                 execution_time integer NOT NULL, success boolean NOT NULL);
             -- Flyway applied `CREATE TABLE t (id int);`, CRC-32 92137680.
             INSERT INTO flyway_schema_history VALUES (1, '1', 'init', 'SQL', 'V1__init.sql', 92137680, 'app', now(), 5, true);",
        )
        .await
        .expect("flyway applied");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("V1__init.sql"),
        "CREATE TABLE t (id bigint);\n",
    )
    .expect("write");
    refused_as_edited(&db, dir.path(), Format::Flyway, "V1__init.sql").await;
    // As applied (line endings aside), it is adopted.
    std::fs::write(
        dir.path().join("V1__init.sql"),
        "CREATE TABLE t (id int);\r\n",
    )
    .expect("write");
    let set = load(dir.path(), Some(Format::Flyway)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    assert!(m.up(None, &Silent).await.expect("adopted").is_empty());
}

#[tokio::test]
async fn atlas_revision_hash_refuses_an_edited_file() {
    // The files as they are now (their atlas.sum re-hashed after an edit); the revisions
    // recorded the first file's earlier hash, and so every later hash differs too.
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../pgshift-source/tests/fixtures/atlas/good");
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch_execute(
            &atlas_applied(
            "('20240101000000', 'init', 1, 1, now(), 1, 'b2xkZXIgaGFzaA==', 'Atlas CLI v0.30.0'), ('20240102000000', 'index', 1, 1, now(), 1, 'b2xkZXIgdG9v', 'Atlas CLI v0.30.0')",
        ),
        )
        .await
        .expect("atlas applied");
    let set = load(&dir, Some(Format::Atlas)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let text = m.up(None, &Silent).await.expect_err("refused").to_string();
    assert!(text.contains("20240101000000_init.sql"), "{text}");
    assert!(text.contains("different checksum"), "{text}");
}

#[tokio::test]
async fn atlas_names_the_edited_file_when_the_ones_before_it_match() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../pgshift-source/tests/fixtures/atlas/good");
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch_execute(
            &atlas_applied(
            "('20240101000000', 'init', 1, 1, now(), 1, '1iw0qeStmzcmCpojO42atuhgstr7+DMye/txkpU3X2E=', 'Atlas CLI v0.30.0'), ('20240102000000', 'index', 1, 1, now(), 1, 'b2xkZXIgaGFzaA==', 'Atlas CLI v0.30.0')",
        ),
        )
        .await
        .expect("atlas applied");
    let set = load(&dir, Some(Format::Atlas)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, RunOptions::default())
        .await
        .expect("connect");
    let text = m.up(None, &Silent).await.expect_err("refused").to_string();
    assert!(text.contains("20240102000000_index.sql"), "{text}");
    assert!(!text.contains("20240101000000_init.sql"), "{text}");
}
