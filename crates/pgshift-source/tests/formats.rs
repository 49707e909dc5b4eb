//! Every format read from its fixture directory under `tests/fixtures/`, with each tool's
//! ordering quirk, no-transaction marker and up/down split checked.

use std::path::{Path, PathBuf};

use pgshift_source::{detect, load, Format, Migration, MigrationSet, SourceError};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Loads with detection and checks that detection picked `format`.
fn load_detected(rel: &str, format: Format) -> Result<MigrationSet, SourceError> {
    let dir = fixture(rel);
    assert_eq!(detect(&dir)?, format, "detected format of {rel}");
    let set = load(&dir, None)?;
    assert_eq!(set.format, format);
    Ok(set)
}

fn versions(set: &MigrationSet) -> Vec<&str> {
    set.migrations.iter().map(|m| m.version.as_str()).collect()
}

fn names(set: &MigrationSet) -> Vec<&str> {
    set.migrations.iter().map(|m| m.name.as_str()).collect()
}

fn file_name(m: &Migration) -> &str {
    m.up.path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

fn skipped_names(set: &MigrationSet) -> Vec<String> {
    set.skipped
        .iter()
        .map(|(p, _)| {
            p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[test]
fn pgshift_native_pairs_up_and_down_and_reads_its_marker() -> Result<(), SourceError> {
    let set = load_detected("pgshift/migrations", Format::Pgshift)?;
    assert_eq!(versions(&set), ["20240101000000", "20240102000000"]);
    assert_eq!(names(&set), ["create_users", "index_email"]);
    assert_eq!(set.migrations[0].down_sql(), Some("drop table users;\n"));
    assert!(!set.migrations[0].no_transaction());
    assert!(set.migrations[1].no_transaction());
    assert!(
        set.migrations[1].down.is_none(),
        "no .down.sql means forward-only"
    );
    assert!(set.migrations[0]
        .up
        .path
        .starts_with(fixture("pgshift/migrations")));
    Ok(())
}

#[test]
fn sqlx_simple_layout_orders_numerically_and_reads_the_first_line_marker() -> Result<(), SourceError>
{
    let set = load_detected("sqlx/simple", Format::Sqlx)?;
    assert_eq!(versions(&set), ["1", "2", "10"]);
    assert_eq!(names(&set), ["init", "index", "later"]);
    assert_eq!(
        set.migrations
            .iter()
            .map(Migration::no_transaction)
            .collect::<Vec<_>>(),
        [false, true, false]
    );
    assert!(set.migrations.iter().all(|m| m.down.is_none()));
    Ok(())
}

#[test]
fn sqlx_reversible_layout_pairs_files() -> Result<(), SourceError> {
    let set = load_detected("sqlx/reversible", Format::Sqlx)?;
    assert_eq!(versions(&set), ["20240101000000", "20240102000000"]);
    assert_eq!(set.migrations[0].down_sql(), Some("drop table t;\n"));
    assert!(set.migrations[1].no_transaction());
    assert!(set.migrations[1]
        .down
        .as_ref()
        .is_some_and(|d| d.no_transaction));
    Ok(())
}

#[test]
fn sqlx_refuses_a_non_integer_version() {
    let err = load(&fixture("sqlx/bad-version"), Some(Format::Sqlx))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("abc_init.sql") && err.contains("integer version"),
        "{err}"
    );
}

#[test]
fn golang_migrate_reads_sql_and_skips_other_extensions() -> Result<(), SourceError> {
    let set = load_detected("golang-migrate", Format::GolangMigrate)?;
    assert_eq!(versions(&set), ["000001", "000002"]);
    assert_eq!(names(&set), ["init", "add_note"]);
    assert_eq!(
        set.migrations[1].down_sql(),
        Some("alter table t drop column note;\n")
    );
    assert_eq!(skipped_names(&set), ["000003_seed.up.json"]);
    assert!(Format::GolangMigrate.wraps_in_transaction());
    // One Exec per file: a file of one statement runs outside a transaction block.
    assert!(Format::GolangMigrate.sends_file_as_one_query());
    assert!(Format::Prisma.sends_file_as_one_query());
    assert!(!Format::Sqlx.sends_file_as_one_query());
    assert!(!Format::Drizzle.sends_file_as_one_query());
    Ok(())
}

#[test]
fn the_shared_up_down_shape_can_be_forced_either_way() -> Result<(), SourceError> {
    let dir = fixture("sqlx/reversible");
    let as_golang = load(&dir, Some(Format::GolangMigrate))?;
    // golang-migrate has no marker: sqlx's `-- no-transaction` line is just a comment there.
    assert!(!as_golang.migrations[1].no_transaction());
    assert_eq!(versions(&as_golang), ["20240101000000", "20240102000000"]);
    Ok(())
}

#[test]
fn a_down_without_an_up_is_an_error_naming_the_file() {
    let err = load(
        &fixture("golang-migrate-orphan-down"),
        Some(Format::GolangMigrate),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("2_b.down.sql") && err.contains("no matching up migration"),
        "{err}"
    );
}

#[test]
fn flyway_orders_by_numeric_segments_and_reads_undo_conf_and_repeatables() -> Result<(), SourceError>
{
    let set = load_detected("flyway/ordering", Format::Flyway)?;
    assert_eq!(versions(&set), ["1", "1_9", "1_10", "2", "2.1", "3"]);
    let two = &set.migrations[3];
    assert_eq!(
        two.down_sql(),
        Some("alter table t drop column two;\n"),
        "U2 is the down of V2"
    );
    assert!(
        set.migrations[4].no_transaction(),
        "V2.1__index.sql.conf says executeInTransaction=false"
    );
    assert!(!two.no_transaction());
    assert_eq!(
        file_name(&set.migrations[5]),
        "V3__nested.sql",
        "subdirectories are scanned"
    );
    assert_eq!(set.repeatable.len(), 1);
    assert_eq!(set.repeatable[0].name, "views");
    assert_eq!(skipped_names(&set), ["afterMigrate.sql"]);
    Ok(())
}

#[test]
fn flyway_one_dot_one_and_one_underscore_one_are_a_duplicate() {
    let err = load(&fixture("flyway/duplicate"), None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("V1.1__a.sql") && err.contains("V1_1__b.sql"),
        "{err}"
    );
}

#[test]
fn flyway_undo_without_versioned_is_an_error() {
    let err = load(&fixture("flyway/undo-without-versioned"), None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("U2__b.sql") && err.contains("V2__*.sql"),
        "{err}"
    );
}

#[test]
fn dbmate_splits_sections_and_reads_transaction_false() -> Result<(), SourceError> {
    let set = load_detected("dbmate/basic", Format::Dbmate)?;
    assert_eq!(names(&set), ["create_users", "index"]);
    let first = &set.migrations[0];
    assert_eq!(
        first.up.sql(),
        "-- migrate:up\ncreate table users (id bigint primary key);\n\n"
    );
    assert_eq!(
        first.down_sql(),
        Some("-- migrate:down\ndrop table users;\n")
    );
    assert!(!first.no_transaction());
    let index = &set.migrations[1];
    assert!(index.no_transaction());
    assert!(index.down.as_ref().is_some_and(|d| d.no_transaction));
    // Sections keep file offsets: the down script starts on line 4 of its file.
    assert_eq!(index.down.as_ref().map(|d| d.first_line()), Some(4));
    Ok(())
}

#[test]
fn dbmate_file_without_up_marker_is_an_error_with_path_and_line() {
    let err = load(&fixture("dbmate/missing-up"), Some(Format::Dbmate))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("20240101000000_x.sql:1:") && err.contains("-- migrate:up"),
        "{err}"
    );
}

#[test]
fn goose_reads_sections_statement_blocks_and_no_transaction() -> Result<(), SourceError> {
    let set = load_detected("goose", Format::Goose)?;
    assert_eq!(versions(&set), ["00001", "00002", "00003"]);
    let function = &set.migrations[1];
    assert!(function.up.sql().contains(
        "as $$\nbegin\n  new.updated_at := now();\n  return new;\nend;\n$$ language plpgsql;"
    ));
    assert!(function.up.sql().contains("-- +goose StatementEnd"));
    assert_eq!(
        function.down_sql(),
        Some("-- +goose down\ndrop function touch();\n")
    );
    assert!(set.migrations[2].no_transaction());
    assert!(!set.migrations[0].no_transaction());
    assert_eq!(skipped_names(&set), ["00004_backfill.go"]);
    assert!(set.skipped[0].1.contains("Go"));
    Ok(())
}

#[test]
fn diesel_mixes_dashed_and_plain_versions_and_reads_metadata() -> Result<(), SourceError> {
    let set = load_detected("diesel", Format::Diesel)?;
    assert_eq!(
        versions(&set),
        [
            "00000000000000",
            "20170708133715",
            "2017-09-26-200549",
            "2018-01-01-000000"
        ]
    );
    assert_eq!(
        names(&set),
        [
            "diesel_initial_setup",
            "create_users",
            "create_posts",
            "index_posts"
        ]
    );
    assert!(set.migrations[3].no_transaction());
    assert!(set.migrations[3]
        .down
        .as_ref()
        .is_some_and(|d| d.no_transaction));
    assert!(!set.migrations[1].no_transaction());
    assert_eq!(set.migrations[2].down_sql(), Some("drop table posts;\n"));
    Ok(())
}

#[test]
fn diesel_keeps_two_all_zero_versions_of_different_widths_apart() -> Result<(), SourceError> {
    // diesel compares versions as text: a project may keep diesel's 14-zero initial setup
    // and a 15-zero migration of its own; diesel runs both, the shorter first.
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, sql) in [
        ("000000000000000_guard", "SELECT 1;\n"),
        ("00000000000000_diesel_initial_setup", "SELECT 0;\n"),
        (
            "2020-01-01-000000_create_things",
            "CREATE TABLE things (id bigint);\n",
        ),
    ] {
        let m = dir.path().join(name);
        std::fs::create_dir(&m).expect("mkdir");
        std::fs::write(m.join("up.sql"), sql).expect("write");
    }
    let set = load(dir.path(), Some(Format::Diesel))?;
    assert_eq!(
        versions(&set),
        ["00000000000000", "000000000000000", "2020-01-01-000000"]
    );
    assert_eq!(
        names(&set),
        ["diesel_initial_setup", "guard", "create_things"]
    );
    Ok(())
}

#[test]
fn diesel_orders_versions_as_text_like_diesel_not_as_numbers() -> Result<(), SourceError> {
    // diesel_migrations sorts `version_from_string`'s dash-stripped `String`s: "2025..." comes
    // before "2026..." whatever their lengths. As numbers, 20260101000000 is the smaller.
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "2026-01-01-000000_a",
        "2025-06-01-000000-0000_b",
        "20250101000000_c",
    ] {
        let m = dir.path().join(name);
        std::fs::create_dir(&m).expect("mkdir");
        std::fs::write(m.join("up.sql"), "SELECT 1;\n").expect("write");
    }
    let set = load(dir.path(), Some(Format::Diesel))?;
    assert_eq!(names(&set), ["c", "b", "a"]);
    // What diesel records in `__diesel_schema_migrations` (dashes removed) finds the migration.
    for recorded in ["202506010000000000", "20260101000000", "20250101000000"] {
        let v = pgshift_source::Version::parse(recorded).expect("version");
        assert!(set.find(&v).is_some(), "{recorded} not found");
        assert_eq!(
            set.after(Some(&v)).len() + set.migrations.partition_point(|m| m.version <= v),
            3
        );
    }
    Ok(())
}

#[test]
fn prisma_reads_migration_directories() -> Result<(), SourceError> {
    let set = load_detected("prisma/migrations", Format::Prisma)?;
    assert_eq!(versions(&set), ["20240101000000", "20240201000000"]);
    assert_eq!(names(&set), ["init", "add_email"]);
    assert!(set.migrations.iter().all(|m| m.down.is_none()));
    assert!(
        set.skipped.is_empty(),
        "migration_lock.toml is expected, not skipped: {:?}",
        set.skipped
    );
    Ok(())
}

#[test]
fn drizzle_follows_the_journal_not_the_file_listing() -> Result<(), SourceError> {
    let set = load_detected("drizzle/good", Format::Drizzle)?;
    // Listing order is init, alpha_posts, zeta_users; the journal says init, zeta_users, alpha_posts.
    assert_eq!(names(&set), ["init", "zeta_users", "alpha_posts"]);
    assert_eq!(
        versions(&set),
        ["1700000000000", "1700000100000", "1700000200000"]
    );
    assert!(set.migrations[0]
        .up
        .sql()
        .contains("--> statement-breakpoint"));
    assert_eq!(skipped_names(&set), ["0002_orphan.sql"]);
    Ok(())
}

#[test]
fn drizzle_journal_entry_without_file_is_an_error() {
    let err = load(&fixture("drizzle/missing-file"), None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("_journal.json") && err.contains("0000_gone"),
        "{err}"
    );
}

#[test]
fn atlas_verifies_a_good_sum_and_reads_txmode() -> Result<(), SourceError> {
    let set = load_detected("atlas/good", Format::Atlas)?;
    assert_eq!(versions(&set), ["20240101000000", "20240102000000"]);
    assert!(!set.migrations[0].no_transaction());
    assert!(set.migrations[1].no_transaction());
    Ok(())
}

#[test]
fn atlas_tampered_file_is_named_with_the_fix() {
    let err = load(&fixture("atlas/tampered"), None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("20240102000000_index.sql"), "{err}");
    assert!(
        err.contains("run `atlas migrate hash` or fix the file"),
        "{err}"
    );
}

#[test]
fn atlas_file_missing_from_the_sum_is_named() {
    let err = load(&fixture("atlas/unlisted"), None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("20240103000000_new.sql") && err.contains("not listed"),
        "{err}"
    );
}

#[test]
fn node_pg_migrate_splits_up_and_down_and_skips_js() -> Result<(), SourceError> {
    let set = load_detected("node-pg-migrate", Format::NodePgMigrate)?;
    assert_eq!(names(&set), ["create-users", "add-email"]);
    assert_eq!(
        set.migrations[0].down_sql(),
        Some("-- Down Migration\nDROP TABLE users;\n")
    );
    assert!(set.migrations[1].down.is_none());
    assert_eq!(skipped_names(&set), ["1700000000002_seed.js"]);
    Ok(())
}

#[test]
fn plain_orders_numbers_first_then_names() -> Result<(), SourceError> {
    let set = load_detected("plain", Format::Plain)?;
    assert_eq!(versions(&set), ["001", "2", "10", "zz_extra"]);
    assert_eq!(names(&set), ["init", "second", "tenth", "zz_extra"]);
    assert_eq!(skipped_names(&set), ["README.txt"]);
    Ok(())
}

#[test]
fn crlf_twin_has_the_same_checksum_as_its_lf_original() -> Result<(), SourceError> {
    let lf = pgshift_source::load_file(&fixture("crlf/lf/1_twin.sql"))?;
    let crlf = pgshift_source::load_file(&fixture("crlf/crlf/1_twin.sql"))?;
    assert_ne!(
        lf.up.sql(),
        crlf.up.sql(),
        "the fixture must really differ in line endings"
    );
    assert_eq!(lf.checksum(), crlf.checksum());
    Ok(())
}

#[test]
fn find_and_after_select_by_version() -> Result<(), SourceError> {
    let set = load(&fixture("flyway/ordering"), None)?;
    let v1_10 = pgshift_source::Version::parse("1.10").ok_or(SourceError::InvalidName {
        name: "1.10".into(),
    })?;
    assert_eq!(set.find(&v1_10).map(|m| m.name.as_str()), Some("ten"));
    assert_eq!(set.after(Some(&v1_10)).len(), 3);
    assert_eq!(set.after(None).len(), 6);
    Ok(())
}

#[test]
fn atlas_crlf_checkout_is_explained() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    for entry in std::fs::read_dir(fixture("atlas/good"))? {
        let entry = entry?;
        let mut bytes = std::fs::read(entry.path())?;
        if entry.file_name() == "20240101000000_init.sql" {
            bytes = String::from_utf8(bytes)?.replace('\n', "\r\n").into_bytes();
        }
        std::fs::write(tmp.path().join(entry.file_name()), bytes)?;
    }
    let err = load(tmp.path(), None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("20240101000000_init.sql") && err.contains("CRLF"),
        "{err}"
    );
    Ok(())
}
