//! Finding the migrations when nobody named their folder: another tool's conventional place
//! (`pgshift init`), `migrations/` beside a schema dump (`pgshift check db`), and the folder a
//! single file belongs to (`pgshift check FILE`).

use std::fs;
use std::path::{Path, PathBuf};

use pgshift_source::{find_tool_folder, load_with_folder, migrations_below, Format};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn write(root: &Path, name: &str, body: &str) -> std::io::Result<()> {
    let path = root.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, body)
}

const DBMATE_INDEX: &str = "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n\n-- migrate:down\nDROP INDEX t_a;\n";

#[test]
fn each_tools_conventional_folder_is_found() -> TestResult {
    let tmp = tempfile::tempdir()?;

    let prisma = tmp.path().join("prisma-app");
    write(
        &prisma,
        "prisma/migrations/20240101000000_init/migration.sql",
        "CREATE TABLE t (a int);\n",
    )?;
    write(
        &prisma,
        "prisma/migrations/migration_lock.toml",
        "provider = \"postgresql\"\n",
    )?;
    write(&prisma, "prisma/schema.prisma", "// schema\n")?;
    let found = find_tool_folder(&prisma).ok_or("prisma not found")?;
    assert_eq!(found.dir, prisma.join("prisma/migrations"));
    assert_eq!(found.format, Format::Prisma);

    // drizzle-kit's default `out`.
    let drizzle = tmp.path().join("drizzle-app");
    write(&drizzle, "drizzle/meta/_journal.json", "{\"entries\":[]}")?;
    let found = find_tool_folder(&drizzle).ok_or("drizzle not found")?;
    assert_eq!(found.dir, drizzle.join("drizzle"));
    assert_eq!(found.format, Format::Drizzle);

    // `out` set in drizzle.config.ts wins over the default.
    let configured = tmp.path().join("drizzle-configured");
    write(
        &configured,
        "drizzle.config.ts",
        "import { defineConfig } from 'drizzle-kit';\nexport default defineConfig({\n  schema: './src/schema.ts',\n  out: './src/db/migrations',\n  dialect: 'postgresql',\n});\n",
    )?;
    write(
        &configured,
        "src/db/migrations/meta/_journal.json",
        "{\"entries\":[]}",
    )?;
    let found = find_tool_folder(&configured).ok_or("drizzle config not found")?;
    assert_eq!(found.dir, configured.join("src/db/migrations"));
    assert!(found.source.contains("drizzle.config.ts"), "{found:?}");

    let dbmate = tmp.path().join("dbmate-app");
    write(
        &dbmate,
        "db/migrations/20240101000000_index.sql",
        DBMATE_INDEX,
    )?;
    write(&dbmate, "db/schema.sql", "CREATE TABLE t (a int);\n")?;
    let found = find_tool_folder(&dbmate).ok_or("dbmate not found")?;
    assert_eq!(found.dir, dbmate.join("db/migrations"));
    assert_eq!(found.format, Format::Dbmate);

    // A new project has none.
    let fresh = tmp.path().join("fresh");
    fs::create_dir_all(&fresh)?;
    assert_eq!(find_tool_folder(&fresh), None);
    Ok(())
}

#[test]
fn a_folder_with_a_schema_dump_and_migrations_below_reads_the_migrations() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = tmp.path().join("db");
    write(&db, "migrations/20240101000000_index.sql", DBMATE_INDEX)?;
    write(&db, "schema.sql", "CREATE TABLE t (a int);\n")?;
    let found = migrations_below(&db)?.ok_or("db/migrations not found")?;
    assert_eq!(found.dir, db.join("migrations"));
    assert_eq!(found.format, Format::Dbmate);
    assert!(found.source.contains("schema.sql"), "{found:?}");

    // A folder with versioned migrations of its own is read as it is.
    write(&db, "20230101000000_old.sql", "SELECT 1;\n")?;
    assert_eq!(migrations_below(&db)?, None);
    // And so is a folder without a `migrations/` inside.
    assert_eq!(migrations_below(&db.join("migrations"))?, None);
    Ok(())
}

#[test]
fn a_single_file_is_read_as_its_folder_reads_it() -> TestResult {
    let tmp = tempfile::tempdir()?;

    // sqlx wraps a file without `-- no-transaction` in a transaction; plain SQL would not.
    let sqlx = tmp.path().join("sqlx");
    write(&sqlx, "1_create.sql", "CREATE TABLE t (a int);\n")?;
    write(
        &sqlx,
        "2_index.sql",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\n",
    )?;
    let file = sqlx.join("2_index.sql");
    let set = load_with_folder(&file, None)?;
    assert_eq!(set.format, Format::Sqlx);
    assert_eq!(
        set.migrations.len(),
        2,
        "earlier migrations give the context"
    );
    assert!(set.migrations.iter().any(|m| m.up.path == file));

    // A file in a migration's own subdirectory belongs to the folder above it.
    let diesel = tmp.path().join("diesel");
    write(
        &diesel,
        "2024-01-01-000000_index/up.sql",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\n",
    )?;
    write(
        &diesel,
        "2024-01-01-000000_index/down.sql",
        "DROP INDEX t_a;\n",
    )?;
    let file = diesel.join("2024-01-01-000000_index/down.sql");
    let set = load_with_folder(&file, None)?;
    assert_eq!(set.format, Format::Diesel);
    assert_eq!(
        set.migrations[0].down.as_ref().map(|d| d.path.clone()),
        Some(file)
    );

    // The path stays as given, so findings name the file the user named.
    let dbmate = tmp.path().join("dbmate");
    write(&dbmate, "20240101000000_index.sql", DBMATE_INDEX)?;
    let given: PathBuf = dbmate.join(".").join("20240101000000_index.sql");
    let set = load_with_folder(&given, None)?;
    assert_eq!(set.format, Format::Dbmate);
    assert_eq!(set.migrations[0].up.path, given);
    assert!(set.migrations[0].up.no_transaction);

    // A file that is no migration of its folder is read alone, as plain SQL.
    write(&sqlx, "notes/seed.sql", "INSERT INTO t VALUES (1);\n")?;
    let set = load_with_folder(&sqlx.join("notes/seed.sql"), None)?;
    assert_eq!(set.format, Format::Plain);
    assert_eq!(set.migrations.len(), 1);
    Ok(())
}
