//! Detection edge cases, `pgshift new`, and the errors for inputs that are not migrations at all.
//! These build their directories in a temporary folder, since git cannot hold empty directories
//! or files that are not UTF-8.

use std::fs;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use pgshift_source::{detect, load, load_file, new_migration, Format, SourceError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn message(result: Result<impl std::fmt::Debug, SourceError>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_empty_directory_says_how_to_force_or_create() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("migrations");
    fs::create_dir(&dir)?;
    let err = message(load(&dir, None));
    assert!(
        err.contains("is empty") && err.contains("pgshift new") && err.contains("--dir-format"),
        "{err}"
    );
    // A fresh `pgshift init`: pgshift.toml next to an empty migrations directory.
    fs::write(tmp.path().join("pgshift.toml"), "")?;
    assert_eq!(detect(&dir)?, Format::Pgshift);
    assert!(load(&dir, None)?.migrations.is_empty());
    Ok(())
}

#[test]
fn a_forced_format_on_an_empty_directory_is_an_empty_set() -> TestResult {
    let tmp = tempfile::tempdir()?;
    for format in Format::all() {
        let set = load(tmp.path(), Some(*format));
        match format {
            // Drizzle cannot run without its journal.
            Format::Drizzle => assert!(message(set).contains("_journal.json")),
            _ => assert!(set?.migrations.is_empty(), "{format}"),
        }
    }
    Ok(())
}

#[test]
fn a_directory_with_nothing_recognisable_lists_what_it_saw() -> TestResult {
    let tmp = tempfile::tempdir()?;
    fs::write(tmp.path().join("README.md"), "hi")?;
    fs::create_dir(tmp.path().join("seeds"))?;
    let err = message(detect(tmp.path()));
    assert!(
        err.contains("2 entries") && err.contains("README.md") && err.contains("seeds/"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_missing_directory_is_named() {
    let err = message(load(Path::new("/nonexistent/pgshift/migrations"), None));
    assert!(
        err.contains("/nonexistent/pgshift/migrations")
            && err.contains("cannot read migration directory"),
        "{err}"
    );
}

#[test]
fn a_non_utf8_file_is_named_with_the_offset() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("1_init.sql");
    fs::write(&file, b"select '\xff';\n")?;
    let err = message(load(tmp.path(), Some(Format::Plain)));
    assert!(
        err.contains("1_init.sql") && err.contains("not valid UTF-8") && err.contains("offset 8"),
        "{err}"
    );
    assert!(message(load_file(&file)).contains("not valid UTF-8"));
    Ok(())
}

#[test]
fn content_markers_decide_between_single_file_tools() -> TestResult {
    let cases = [
        (
            "-- migrate:up\nselect 1;\n-- migrate:down\n",
            Format::Dbmate,
        ),
        ("-- +goose Up\nselect 1;\n", Format::Goose),
        ("-- Up Migration\nselect 1;\n", Format::NodePgMigrate),
        ("select 1;\n", Format::Sqlx),
    ];
    for (text, format) in cases {
        let tmp = tempfile::tempdir()?;
        fs::write(tmp.path().join("20240101000000_x.sql"), text)?;
        assert_eq!(detect(tmp.path())?, format, "{text:?}");
    }
    Ok(())
}

#[test]
fn up_down_shape_is_sqlx_unless_golang_migrate_or_pgshift_is_evident() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("migrations");
    fs::create_dir(&dir)?;
    fs::write(dir.join("20240101000000_x.up.sql"), "select 1;")?;
    assert_eq!(detect(&dir)?, Format::Sqlx);
    fs::write(dir.join("99999999999999999999_big.up.sql"), "select 1;")?;
    assert_eq!(
        detect(&dir)?,
        Format::GolangMigrate,
        "a version beyond i64 is not sqlx"
    );
    fs::remove_file(dir.join("99999999999999999999_big.up.sql"))?;
    fs::write(tmp.path().join("pgshift.toml"), "")?;
    assert_eq!(detect(&dir)?, Format::Pgshift);
    Ok(())
}

#[test]
fn new_migration_writes_a_timestamped_pair_that_loads_back() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("migrations");
    let now = UNIX_EPOCH + Duration::from_secs(1_704_164_645); // 2024-01-02T03:04:05Z
    let (up, down) = new_migration(&dir, "Add users.email!", now)?;
    assert_eq!(
        up.file_name().and_then(|n| n.to_str()),
        Some("20240102030405_add_users_email.up.sql")
    );
    assert_eq!(
        down.file_name().and_then(|n| n.to_str()),
        Some("20240102030405_add_users_email.down.sql")
    );
    let set = load(&dir, Some(Format::Pgshift))?;
    assert_eq!(set.migrations.len(), 1);
    assert_eq!(set.migrations[0].name, "add_users_email");
    assert!(set.migrations[0].down.is_some());
    assert!(
        !set.migrations[0].no_transaction(),
        "the template mentions the marker without setting it"
    );

    fs::write(&up, "create table t ();\n")?;
    // The same second again: the next free version, never the existing files.
    let (again, _) = new_migration(&dir, "add users email", now)?;
    assert_eq!(
        again.file_name().and_then(|n| n.to_str()),
        Some("20240102030406_add_users_email.up.sql")
    );
    assert_eq!(
        fs::read_to_string(&up)?,
        "create table t ();\n",
        "an existing file is never overwritten"
    );
    assert!(message(new_migration(&dir, "!!!", now)).contains("not a usable migration name"));
    Ok(())
}

#[test]
fn duplicate_versions_with_different_leading_zeros_are_caught() -> TestResult {
    let tmp = tempfile::tempdir()?;
    fs::write(tmp.path().join("001_a.sql"), "select 1;")?;
    fs::write(tmp.path().join("1_b.sql"), "select 2;")?;
    let err = message(load(tmp.path(), None));
    assert!(
        err.contains("001_a.sql") && err.contains("1_b.sql") && err.contains("version"),
        "{err}"
    );
    Ok(())
}

#[test]
fn relative_directories_give_relative_script_paths() -> TestResult {
    // Tests run from the crate directory.
    let set = load(Path::new("tests/fixtures/plain"), None)?;
    assert!(set
        .migrations
        .iter()
        .all(|m| m.up.path.starts_with("tests/fixtures/plain")));
    Ok(())
}

#[test]
fn flyway_found_only_in_subdirectories_is_detected() -> TestResult {
    let tmp = tempfile::tempdir()?;
    fs::create_dir_all(tmp.path().join("v1"))?;
    fs::write(tmp.path().join("v1/V1__init.sql"), "select 1;")?;
    assert_eq!(detect(tmp.path())?, Format::Flyway);
    assert_eq!(load(tmp.path(), None)?.migrations.len(), 1);
    Ok(())
}

#[test]
fn a_byte_order_mark_does_not_hide_a_first_line_marker() -> TestResult {
    let tmp = tempfile::tempdir()?;
    fs::write(
        tmp.path().join("20240101000000_x.sql"),
        "\u{feff}-- migrate:up\nselect 1;\n-- migrate:down\nselect 2;\n",
    )?;
    let set = load(tmp.path(), None)?;
    assert_eq!(set.format, Format::Dbmate);
    assert_eq!(
        set.migrations[0].down_sql(),
        Some("-- migrate:down\nselect 2;\n")
    );
    Ok(())
}

#[test]
fn a_symlink_loop_under_a_flyway_location_terminates() -> TestResult {
    let tmp = tempfile::tempdir()?;
    fs::write(tmp.path().join("V1__init.sql"), "select 1;")?;
    std::os::unix::fs::symlink(tmp.path(), tmp.path().join("loop"))?;
    let set = load(tmp.path(), None)?;
    assert_eq!(set.format, Format::Flyway);
    // The loop leads back to the same directory, which is read once.
    assert_eq!(set.migrations.len(), 1);
    Ok(())
}

/// `ln -s /proc/self/environ migrations/2_b.up.sql` printed the environment (tokens included)
/// in `check`'s report: a file linked from outside the folder is refused, naming the link,
/// where it leads and what to do; its content is never read.
#[test]
fn a_migration_file_linked_from_outside_the_folder_is_refused() -> TestResult {
    let outside = tempfile::tempdir()?;
    let secret = outside.path().join("secrets.env");
    fs::write(&secret, "select 'TOKEN=hunter2';\n")?;
    let tmp = tempfile::tempdir()?;
    fs::write(tmp.path().join("20240101000000_a.up.sql"), "select 1;\n")?;
    std::os::unix::fs::symlink(&secret, tmp.path().join("20240102000000_b.up.sql"))?;
    let err = load(tmp.path(), None).expect_err("an outside link is refused");
    let message = err.to_string();
    assert!(message.contains("20240102000000_b.up.sql"), "{message}");
    assert!(message.contains("symbolic link"), "{message}");
    assert!(
        message.contains("copy the file into the folder"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");

    // Environment files under /proc are links to outside too.
    let proc_dir = tempfile::tempdir()?;
    std::os::unix::fs::symlink("/proc/self/environ", proc_dir.path().join("1_a.sql"))?;
    let err = load(proc_dir.path(), Some(Format::Plain)).expect_err("refused");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    Ok(())
}

/// A link to a file inside the folder (a renamed migration kept under its old name) still reads.
#[test]
fn a_link_inside_the_folder_is_read() -> TestResult {
    let tmp = tempfile::tempdir()?;
    fs::create_dir(tmp.path().join("shared"))?;
    fs::write(tmp.path().join("shared/a.sql"), "select 1;\n")?;
    std::os::unix::fs::symlink(
        tmp.path().join("shared/a.sql"),
        tmp.path().join("20240101000000_a.up.sql"),
    )?;
    let set = load(tmp.path(), Some(Format::Pgshift))?;
    assert_eq!(set.migrations.len(), 1);
    assert_eq!(set.migrations[0].up.file_text.as_ref(), "select 1;\n");
    Ok(())
}

/// A FIFO named like a migration would block `check` forever; a device would fill memory.
#[test]
fn a_migration_that_is_not_a_regular_file_is_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let fifo = tmp.path().join("20240101000000_a.up.sql");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    assert!(status.success());
    let err = load(tmp.path(), Some(Format::Pgshift)).expect_err("a FIFO is refused");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    Ok(())
}

#[test]
fn knex_and_typeorm_folders_say_js_and_ts_are_not_read_and_what_to_do() -> TestResult {
    for (files, shows) in [
        (
            &[
                "20240101120000_create_users.js",
                "20240102120000_add_email.js",
            ][..],
            "2 files (20240101120000_create_users.js, ...)",
        ),
        (
            &["1700000000000-Init.ts"][..],
            "1 file (1700000000000-Init.ts)",
        ),
    ] {
        let tmp = tempfile::tempdir()?;
        for name in files {
            fs::write(
                tmp.path().join(name),
                "exports.up = (knex) => knex.schema;\n",
            )?;
        }
        let err = message(load(tmp.path(), None));
        assert!(err.contains(shows), "{err}");
        assert!(
            err.contains("JavaScript/TypeScript") && err.contains("it reads SQL files only"),
            "{err}"
        );
        // What a Knex or TypeORM user can do, rather than a flag no format honours.
        assert!(err.contains("no `--dir-format` reads these"), "{err}");
        assert!(
            err.contains("`.sql` files") && err.contains("DEBUG=knex:query"),
            "{err}"
        );
        assert!(!err.contains("Force a layout"), "{err}");
    }
    Ok(())
}

#[test]
fn alembic_and_django_folders_point_at_the_sql_they_print() -> TestResult {
    let tmp = tempfile::tempdir()?;
    fs::write(tmp.path().join("__init__.py"), "")?;
    fs::write(
        tmp.path().join("0001_initial.py"),
        "from django.db import migrations\n",
    )?;
    let err = message(load(tmp.path(), None));
    assert!(err.contains("1 file (0001_initial.py)"), "{err}");
    assert!(err.contains("Python (Alembic, Django)"), "{err}");
    assert!(
        err.contains("sqlmigrate APP MIGRATION | pgshift check -"),
        "{err}"
    );
    Ok(())
}
