//! `on_drop`: each mode against a real PostgreSQL, including restoring what was kept.

use std::path::Path;

use pgshift_db::testing::TestDb;
use pgshift_runner::{Migrator, OnDrop, RunOptions, Silent};
use pgshift_source::{load, Format};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

/// A table `people` with data, then a migration dropping a column of it and the whole table
/// `scratch`; the table `temp_only` is created and dropped in the same migration.
fn dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_setup.up.sql",
        "CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
         INSERT INTO people SELECT g, 'n' || g, 'e' || g FROM generate_series(1, 20) g;
         CREATE TABLE scratch (k text);
         INSERT INTO scratch VALUES ('a'), ('b');\n",
    );
    write(
        dir.path(),
        "20240102000000_cleanup.up.sql",
        "ALTER TABLE people DROP COLUMN email;
         DROP TABLE scratch;
         CREATE TABLE temp_only (x int);
         DROP TABLE temp_only;\n",
    );
    dir
}

/// `up`, contracting at once: the drops are the contract of an online change, and `on_drop`
/// applies to them there.
async fn up(db: &TestDb, dir: &Path, options: RunOptions) {
    let options = RunOptions {
        online_complete: true,
        ..options
    };
    let set = load(dir, Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&db.url(), set, options)
        .await
        .expect("connect");
    m.up(None, &Silent).await.expect("up");
}

async fn today(db: &TestDb) -> String {
    db.connect()
        .await
        .query_one("SELECT to_char(now(), 'YYYYMMDD')", &[])
        .await
        .expect("date")
        .get(0)
}

async fn tables(db: &TestDb) -> Vec<String> {
    db.connect()
        .await
        .query(
            "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn columns(db: &TestDb, table: &str) -> Vec<String> {
    db.connect()
        .await
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&table],
        )
        .await
        .expect("columns")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn drop_drops() {
    let db = TestDb::new().await;
    let d = dir();
    up(&db, d.path(), RunOptions::default()).await;
    assert_eq!(tables(&db).await, vec!["people"]);
    assert_eq!(columns(&db, "people").await, vec!["id", "name"]);
}

#[tokio::test]
async fn deprecate_renames_instead_of_dropping_and_renaming_back_restores() {
    let db = TestDb::new().await;
    let d = dir();
    let options = RunOptions {
        on_drop: OnDrop::Deprecate,
        ..RunOptions::default()
    };
    up(&db, d.path(), options).await;
    let date = today(&db).await;
    let kept_table = format!("scratch_deprecated_{date}");
    let kept_column = format!("email_deprecated_{date}");
    assert_eq!(
        tables(&db).await,
        vec!["people".to_string(), kept_table.clone()]
    );
    assert_eq!(
        columns(&db, "people").await,
        vec!["id".to_string(), "name".to_string(), kept_column.clone()]
    );
    let c = db.connect().await;
    // New code that no longer knows the column can still insert.
    c.batch_execute("INSERT INTO people (id, name) VALUES (100, 'new')")
        .await
        .expect("insert without the deprecated column");
    // Restore, as docs/safe-execution.md says.
    c.batch_execute(&format!(
        "ALTER TABLE people RENAME COLUMN \"{kept_column}\" TO email; ALTER TABLE \"{kept_table}\" RENAME TO scratch;"
    ))
    .await
    .expect("restore");
    let email: String = c
        .query_one("SELECT email FROM people WHERE id = 3", &[])
        .await
        .expect("row")
        .get(0);
    assert_eq!(email, "e3");
}

#[tokio::test]
async fn backup_copies_the_table_and_the_column_with_its_primary_key() {
    let db = TestDb::new().await;
    let d = dir();
    let options = RunOptions {
        on_drop: OnDrop::Backup,
        ..RunOptions::default()
    };
    up(&db, d.path(), options).await;
    let date = today(&db).await;
    let people_backup = format!("_backup_people_{date}");
    let scratch_backup = format!("_backup_scratch_{date}");
    let mut expected = vec![
        people_backup.clone(),
        scratch_backup.clone(),
        "people".to_string(),
    ];
    expected.sort();
    assert_eq!(
        tables(&db).await,
        expected,
        "no backup of a table created in the migration"
    );
    assert_eq!(columns(&db, "people").await, vec!["id", "name"]);
    assert_eq!(columns(&db, &people_backup).await, vec!["id", "email"]);
    let c = db.connect().await;
    let n: i64 = c
        .query_one(&format!("SELECT count(*) FROM \"{scratch_backup}\""), &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 2);
    // Restore the column, as docs/safe-execution.md says.
    c.batch_execute(&format!(
        "ALTER TABLE people ADD COLUMN email text;
         UPDATE people p SET email = b.email FROM \"{people_backup}\" b WHERE b.id = p.id;"
    ))
    .await
    .expect("restore");
    let email: String = c
        .query_one("SELECT email FROM people WHERE id = 7", &[])
        .await
        .expect("row")
        .get(0);
    assert_eq!(email, "e7");
}

#[tokio::test]
async fn pg_dump_writes_a_restorable_file_before_dropping() {
    let db = TestDb::new().await;
    let d = dir();
    let dumps = tempfile::tempdir().expect("tempdir");
    let options = RunOptions {
        on_drop: OnDrop::PgDump,
        pg_dump_dir: dumps.path().join("nested"),
        ..RunOptions::default()
    };
    up(&db, d.path(), options).await;
    assert_eq!(tables(&db).await, vec!["people"]);
    let files: Vec<_> = std::fs::read_dir(dumps.path().join("nested"))
        .expect("dump dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    assert!(name.starts_with("pgshift_20240102000000_"), "{name}");
    let text = std::fs::read_to_string(&files[0]).expect("read dump");
    assert!(
        text.contains("CREATE TABLE public.people"),
        "dumps the table losing a column"
    );
    assert!(text.contains("CREATE TABLE public.scratch"));
    assert!(!text.contains("temp_only"));

    assert!(
        text.contains("3\tn3\te3"),
        "the dropped column's data is in the dump"
    );

    // Restore into a scratch database, as docs/safe-execution.md says (psql -f FILE).
    let restore = TestDb::new().await;
    let url = restore.url();
    let psql = pgshift_runner::backup::find_pg_dump()
        .expect("pg_dump")
        .with_file_name("psql");
    let host = &url.hosts()[0];
    let status = std::process::Command::new(psql)
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--host",
            &host.host,
            "--port",
        ])
        .arg(host.port.to_string())
        .args(["--username", url.user(), "--dbname", url.database(), "-f"])
        .arg(&files[0])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run psql");
    assert!(status.success());
    let email: String = restore
        .connect()
        .await
        .query_one("SELECT email FROM people WHERE id = 3", &[])
        .await
        .expect("restored row")
        .get(0);
    assert_eq!(email, "e3");
}

#[tokio::test]
async fn deprecate_still_drops_the_other_tables_a_drop_names() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_setup.up.sql",
        "CREATE TABLE old_t (k int);\n",
    );
    write(
        dir.path(),
        "20240102000000_cleanup.up.sql",
        "CREATE TABLE fresh (x int);\nDROP TABLE IF EXISTS fresh, old_t, never_existed;\n",
    );
    up(
        &db,
        dir.path(),
        RunOptions {
            on_drop: OnDrop::Deprecate,
            ..RunOptions::default()
        },
    )
    .await;
    let day = today(&db).await;
    assert_eq!(
        tables(&db).await,
        vec![format!("old_t_deprecated_{day}")],
        "old_t is kept under a new name; fresh is dropped as written"
    );
}

/// A 63-byte table name (the longest PostgreSQL keeps): the kept table still ends in
/// `_deprecated_<date>` / starts with `_backup_` and ends in `_<date>`; the table part is cut.
#[tokio::test]
async fn on_a_63_byte_table_name_the_kept_names_keep_their_date_suffix() {
    let long = "t".repeat(63);
    for (mode, want_start, want_end) in [
        (OnDrop::Deprecate, "tttt", "_deprecated_"),
        (OnDrop::Backup, "_backup_tttt", "_"),
    ] {
        let db = TestDb::new().await;
        let date = today(&db).await;
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "20240101000000_setup.up.sql",
            &format!("CREATE TABLE {long} (k int);\nINSERT INTO {long} VALUES (1);\n"),
        );
        write(
            dir.path(),
            "20240102000000_drop.up.sql",
            &format!("DROP TABLE {long};\n"),
        );
        let options = RunOptions {
            on_drop: mode,
            ..RunOptions::default()
        };
        up(&db, dir.path(), options).await;
        let kept = tables(&db).await;
        let suffix = format!("{want_end}{date}");
        let found = kept
            .iter()
            .find(|t| t.starts_with(want_start) && t.ends_with(&suffix));
        let Some(found) = found else {
            panic!("{mode:?}: no table named {want_start}..{suffix} in {kept:?}");
        };
        assert_eq!(found.len(), 63, "{found}");
    }
}
