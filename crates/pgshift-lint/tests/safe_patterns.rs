//! The safe patterns of issue 3 (point 2) produce no error-severity finding when checked as a
//! migration set, each migration with its format's transaction behaviour; and the unsafe
//! versions of the same changes do.

use std::path::PathBuf;
use std::sync::Arc;

use pgshift_lint::{check_set, CheckOptions, PgVersion, Severity};
use pgshift_source::{Format, Migration, MigrationSet, Script, Version};

fn migration(version: &str, up: &str, no_transaction: bool) -> Migration {
    let path = PathBuf::from(format!("migrations/{version}_m.up.sql"));
    Migration {
        version: Version::parse(version).unwrap_or_else(|| panic!("version {version}")),
        name: "m".into(),
        up: Script::whole_file(path, Arc::from(up), no_transaction),
        down: None,
    }
}

fn set(format: Format, migrations: Vec<Migration>) -> MigrationSet {
    MigrationSet {
        format,
        dir: PathBuf::from("migrations"),
        migrations,
        repeatable: Vec::new(),
        skipped: Vec::new(),
    }
}

fn errors(set: &MigrationSet, version: PgVersion) -> Vec<String> {
    let options = CheckOptions {
        pg_version: version,
        ..CheckOptions::default()
    };
    check_set(set, &options)
        .findings()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}:{} {} {}", f.path.display(), f.start, f.rule, f.message))
        .collect()
}

#[test]
fn safe_patterns_have_no_errors() {
    let s = set(
        Format::Sqlx,
        vec![
            // CIC in a no-transaction migration
            migration("1", "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_idx ON orders (user_id);", true),
            // NOT VALID, then VALIDATE in a later transaction
            migration(
                "2",
                "ALTER TABLE orders ADD CONSTRAINT orders_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nALTER TABLE orders ADD CONSTRAINT orders_amount_check CHECK (amount > 0) NOT VALID;",
                false,
            ),
            migration("3", "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fkey;\nALTER TABLE orders VALIDATE CONSTRAINT orders_amount_check;", false),
            // SET NOT NULL after a validated CHECK (12+)
            migration("4", "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;", false),
            migration("5", "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;", false),
            migration("6", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\nALTER TABLE users DROP CONSTRAINT users_email_nn;", false),
            // a constant default on 11+
            migration("7", "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;", false),
            // ADD CONSTRAINT ... USING INDEX after a concurrent unique index
            migration("8", "-- no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_login_key ON users (login);", true),
            migration("9", "ALTER TABLE users ADD CONSTRAINT users_login_key UNIQUE USING INDEX users_login_key;", false),
            // objects created in the same migration are new and empty
            migration(
                "10",
                "CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sku text NOT NULL, name varchar(50));\nCREATE INDEX items_sku_idx ON items (sku);\nALTER TABLE items ADD CONSTRAINT items_sku_check CHECK (sku <> '');\nALTER TABLE items ALTER COLUMN name TYPE text;",
                false,
            ),
        ],
    );
    assert_eq!(errors(&s, PgVersion::new(15, 0)), Vec::<String>::new());
    assert_eq!(errors(&s, PgVersion::new(12, 0)), Vec::<String>::new());
}

#[test]
fn the_unsafe_versions_are_errors() {
    let s = set(
        Format::Sqlx,
        vec![
            migration("1", "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_idx ON orders (user_id);", false),
            migration(
                "2",
                "ALTER TABLE orders ADD CONSTRAINT orders_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_user_fkey;",
                false,
            ),
            migration("3", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;", false),
            migration("4", "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", false),
            migration("5", "ALTER TABLE users ADD CONSTRAINT users_login_key UNIQUE (login);", false),
        ],
    );
    let found = errors(&s, PgVersion::new(15, 0));
    for rule in [
        "concurrently-in-transaction",
        "foreign-key-missing-not-valid",
        "set-not-null",
        "adding-field-with-volatile-default",
        "add-unique-constraint",
    ] {
        assert!(
            found.iter().any(|f| f.contains(rule)),
            "{rule} missing from {found:#?}"
        );
    }
}

#[test]
fn a_concurrent_index_alone_in_a_one_query_file_runs_outside_a_transaction() {
    // golang-migrate and Prisma send the whole file as one query string: one statement runs
    // outside a transaction block (their documented way to build an index concurrently),
    // several statements run as one implicit transaction, where CONCURRENTLY fails.
    let alone = "-- build it without blocking writes\nCREATE INDEX CONCURRENTLY orders_user_idx ON orders (user_id);\n";
    let with_other = "CREATE INDEX CONCURRENTLY orders_day_idx ON orders (day);\nALTER TABLE orders ADD COLUMN note text;\n";
    for format in [Format::GolangMigrate, Format::Prisma] {
        let s = set(format, vec![migration("1", alone, false)]);
        assert_eq!(
            errors(&s, PgVersion::new(15, 0)),
            Vec::<String>::new(),
            "{format}"
        );
        let s = set(format, vec![migration("1", with_other, false)]);
        let errs = errors(&s, PgVersion::new(15, 0));
        assert!(
            errs.iter()
                .any(|e| e.contains("concurrently-in-transaction")),
            "{format}: {errs:?}"
        );
    }
    // Tools that wrap the file in BEGIN/COMMIT fail even on a single statement.
    let s = set(Format::Sqlx, vec![migration("1", alone, false)]);
    let errs = errors(&s, PgVersion::new(15, 0));
    assert!(
        errs.iter()
            .any(|e| e.contains("concurrently-in-transaction")),
        "{errs:?}"
    );
}

#[test]
fn set_not_null_before_12_still_scans() {
    let s = set(
        Format::Sqlx,
        vec![
            migration("1", "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;", false),
            migration("2", "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;", false),
            migration("3", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;", false),
        ],
    );
    assert!(errors(&s, PgVersion::new(11, 0))
        .iter()
        .any(|f| f.contains("set-not-null")));
    assert!(errors(&s, PgVersion::new(12, 0)).is_empty());
}

#[test]
fn pgshift_format_sets_timeouts_and_others_do_not() {
    let sql = "ALTER TABLE users ADD COLUMN nickname text;";
    let options = CheckOptions::default();
    let pg = check_set(
        &set(Format::Pgshift, vec![migration("1", sql, false)]),
        &options,
    );
    assert!(!pg.findings().any(|f| f.rule == "require-lock-timeout"));
    let sqlx = check_set(
        &set(Format::Sqlx, vec![migration("1", sql, false)]),
        &options,
    );
    assert!(sqlx.findings().any(|f| f.rule == "require-lock-timeout"));
}

#[test]
fn suppressions_and_foreign_markers() {
    let sql = "-- pgshift:allow require-concurrent-index reviewed: config table with 12 rows\nCREATE INDEX a ON t (x);\n-- squawk-ignore require-concurrent-index-creation\nCREATE INDEX b ON t (y);\n-- eugene: ignore E6\nCREATE INDEX c ON t (z);\n-- safety-assured:start\nCREATE INDEX d ON t (w);\n-- safety-assured:end\nCREATE INDEX e ON t (v);\n";
    let report = check_set(
        &set(Format::Pgshift, vec![migration("1", sql, false)]),
        &CheckOptions::default(),
    );
    let lines: Vec<usize> = report
        .findings()
        .filter(|f| f.rule == "require-concurrent-index")
        .map(|f| f.start.line)
        .collect();
    assert_eq!(lines, vec![10], "only the unsuppressed index");
    assert!(!report.findings().any(|f| f.rule == "unused-allow"));
}

/// pgshift's runner runs a migration holding CREATE INDEX CONCURRENTLY outside a transaction by
/// itself, so a pgshift-format folder needs no marker; a sqlx folder (sqlx wraps it) does.
#[test]
fn concurrently_needs_no_marker_under_pgshifts_runner() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pgshift.toml"), "").expect("write");
    std::fs::write(
        dir.path().join("20240101000000_t.up.sql"),
        "CREATE TABLE t (id bigint PRIMARY KEY, v int);\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("20240102000000_i.up.sql"),
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_v_idx ON t (v);\n",
    )
    .expect("write");
    let options = pgshift_lint::CheckOptions::default();
    let pgshift =
        pgshift_source::load(dir.path(), Some(pgshift_source::Format::Pgshift)).expect("load");
    let report = pgshift_lint::check_set(&pgshift, &options);
    assert!(
        !report
            .findings()
            .any(|f| f.rule == "concurrently-in-transaction"),
        "{:?}",
        report.findings().map(|f| f.rule).collect::<Vec<_>>()
    );
    let sqlx = pgshift_source::load(dir.path(), Some(pgshift_source::Format::Sqlx)).expect("load");
    let report = pgshift_lint::check_set(&sqlx, &options);
    assert!(report
        .findings()
        .any(|f| f.rule == "concurrently-in-transaction"));
}

/// A new enum value used in a later migration: an error only when the tool runs both
/// migrations in one transaction (Drizzle, node-pg-migrate), never when each commits on its own.
#[test]
fn new_enum_value_in_a_later_migration_fails_only_in_a_batch() {
    let migrations = || {
        vec![
            migration("1", "ALTER TYPE mood ADD VALUE 'meh';", false),
            migration("2", "UPDATE people SET mood = 'meh' WHERE id = 1;", false),
        ]
    };
    let rule = |format: Format| -> Vec<String> {
        errors(&set(format, migrations()), PgVersion::new(15, 0))
            .into_iter()
            .filter(|e| e.contains("enum-value-used-before-commit"))
            .collect()
    };
    for batched in [Format::Drizzle, Format::NodePgMigrate] {
        let found = rule(batched);
        assert_eq!(found.len(), 1, "{batched}: {found:?}");
        assert!(found[0].contains("2_m.up.sql"), "{found:?}");
    }
    for separate in [
        Format::Sqlx,
        Format::Goose,
        Format::Pgshift,
        Format::GolangMigrate,
    ] {
        assert_eq!(rule(separate), Vec::<String>::new(), "{separate}");
    }
    // In one migration, every format fails.
    let one = set(
        Format::Sqlx,
        vec![migration(
            "1",
            "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE people SET mood = 'meh' WHERE id = 1;",
            false,
        )],
    );
    let found: Vec<String> = errors(&one, PgVersion::new(15, 0))
        .into_iter()
        .filter(|e| e.contains("enum-value-used-before-commit"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
}

/// With pgshift as the runner, a finding about a change `pgshift up` plans as an online change
/// says so (and keeps its severity: whether it can be planned depends on the live catalog);
/// `-- pgshift:online off` and another runner's format do not.
#[test]
fn breaking_changes_say_pgshift_runs_them_online_when_it_is_the_runner() {
    let says = |format: Format, sql: &str| {
        let s = set(format, vec![migration("20240101000000", sql, false)]);
        check_set(&s, &CheckOptions::default())
            .findings()
            .filter(|f| f.rule == "renaming-column")
            .map(|f| {
                assert_eq!(f.severity, Severity::Error);
                f.help
                    .clone()
                    .unwrap_or_default()
                    .contains("runs this as an online change")
            })
            .collect::<Vec<_>>()
    };
    let rename = "ALTER TABLE users RENAME COLUMN a TO b;\n";
    assert_eq!(says(Format::Pgshift, rename), [true]);
    assert_eq!(
        says(Format::Pgshift, &format!("-- pgshift:online off\n{rename}")),
        [false]
    );
    assert_eq!(says(Format::Sqlx, rename), [false]);
}

/// The pairs `pgshift up` plans as one online change — a fill `UPDATE` before `SET NOT NULL`,
/// a cleanup `UPDATE` before a CHECK on a column it writes — say so on both statements'
/// findings; an `UPDATE` unrelated to the constraint after it does not.
#[test]
fn a_fill_or_cleanup_and_its_constraint_say_pgshift_runs_them_online() {
    let online = |sql: &str| {
        let s = set(
            Format::Pgshift,
            vec![
                migration(
                    "20240101000000",
                    "CREATE TABLE t (id int PRIMARY KEY, c int, d int);",
                    false,
                ),
                migration("20240102000000", sql, false),
            ],
        );
        let mut said: Vec<(String, bool)> = check_set(&s, &CheckOptions::default())
            .findings()
            .filter(|f| f.rule == "unbatched-backfill" || f.rule == "may-fail-on-existing-data")
            .map(|f| {
                (
                    f.rule.to_string(),
                    f.help
                        .clone()
                        .unwrap_or_default()
                        .contains("runs this as an online change"),
                )
            })
            .collect();
        said.sort();
        said
    };
    let both = |v: bool| {
        vec![
            ("may-fail-on-existing-data".to_string(), v),
            ("unbatched-backfill".to_string(), v),
        ]
    };
    assert_eq!(
        online("UPDATE t SET c = 0 WHERE c < 0;\nALTER TABLE t ADD CONSTRAINT c_nonneg CHECK (c >= 0);"),
        both(true)
    );
    assert_eq!(
        online("UPDATE t SET d = c WHERE d IS NULL;\nALTER TABLE t ALTER COLUMN d SET NOT NULL;"),
        both(true)
    );
    // The UPDATE writes a column the CHECK does not read: not its cleanup.
    assert_eq!(
        online("UPDATE t SET d = 0;\nALTER TABLE t ADD CONSTRAINT c_nonneg CHECK (c >= 0);"),
        both(false)
    );
    // Applied again it would multiply again: not kept true by a trigger, runs as written.
    assert_eq!(
        online("UPDATE t SET c = c * 100 WHERE c < 10;\nALTER TABLE t ADD CONSTRAINT c_min CHECK (c >= 10);"),
        both(false)
    );
}
