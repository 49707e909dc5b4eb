//! Flyway: `V<version>__<description>.sql` (versioned), `U<version>__<description>.sql` (undo,
//! read as the down of `V<version>`), `R__<description>.sql` (repeatable, re-run when changed;
//! its version is its description). Version segments are separated by `.` or `_` and compare
//! as numbers, so `1_10` follows `1_9` and `1.1` equals `1_1` (a duplicate). Locations are
//! scanned recursively, as Flyway does. No-transaction marker: a sibling `<file>.conf` (e.g.
//! `V2__index.sql.conf`) holding `executeInTransaction=false`, or the same setting as an
//! in-script comment line, `-- flyway:executeInTransaction=false`. Other `.sql` files (callbacks
//! such as `afterMigrate.sql`) are listed as skipped.

use std::path::{Path, PathBuf};

use super::{finish, pair_files, version_of, whole, Direction, SeparateFile};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, NoTransactionMarker, RecordValue, ToolRecord,
    TransactionModel,
};
use crate::read::{list_recursive, read_text, Entry};
use crate::ToolChecksum;
use crate::{Format, Migration, MigrationSet, SourceError};

/// What a Flyway file name says about the file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FlywayName<'a> {
    Versioned {
        version: &'a str,
        description: &'a str,
    },
    Undo {
        version: &'a str,
        description: &'a str,
    },
    Repeatable {
        description: &'a str,
    },
}

/// Reads a Flyway file name (base name, not path). `None` when it is not a migration name.
pub(crate) fn parse_name(file_name: &str) -> Option<FlywayName<'_>> {
    let stem = file_name.strip_suffix(".sql")?;
    if let Some(description) = stem.strip_prefix("R__") {
        return Some(FlywayName::Repeatable { description });
    }
    let (kind, rest) = stem.split_at_checked(1)?;
    let (version, description) = rest.split_once("__")?;
    let version_ok = version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '_');
    if !version_ok {
        return None;
    }
    match kind {
        "V" => Some(FlywayName::Versioned {
            version,
            description,
        }),
        "U" => Some(FlywayName::Undo {
            version,
            description,
        }),
        _ => None,
    }
}

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "flyway",
    aliases: &[],
    title: "Flyway",
    transaction: TransactionModel::Wrapped,
    no_transaction: Some(NoTransactionMarker {
        text: "executeInTransaction=false",
        help: "`executeInTransaction=false` in the `.sql.conf`",
        example: &[
            ("V1__index.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"),
            ("V1__index.sql.conf", "executeInTransaction=false\n"),
        ],
    }),
    history: &[HistoryTable {
        table: "flyway_schema_history",
        required_column: None,
        applied: "SELECT version, checksum::text FROM flyway_schema_history WHERE success AND version IS NOT NULL",
        rows: AppliedRows::Versions,
        checksum: Some(ToolChecksum::FlywayCrc32),
        // Flyway's row for a versioned SQL migration (Database.getInsertStatement, its rank
        // from SchemaHistory.calculateInstalledRank): the next rank, the dotted version, the
        // description with spaces (cut to 200 as Flyway does), the script's path below the
        // location, its CRC-32, the user, the time in milliseconds.
        record: Some(ToolRecord {
            insert: "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) SELECT COALESCE(MAX(installed_rank), 0) + 1, $1::text, CASE WHEN length($2::text) > 200 THEN left($2::text, 197) || '...' ELSE $2::text END, 'SQL', $3::text, $4::text::integer, current_user, $5::text::integer, TRUE FROM flyway_schema_history",
            insert_params: &[
                RecordValue::VersionDotted,
                RecordValue::Description,
                RecordValue::ScriptPath,
                RecordValue::ToolChecksum,
                RecordValue::ElapsedMillis,
            ],
            delete: "DELETE FROM flyway_schema_history WHERE version = $1::text",
            delete_params: &[RecordValue::VersionDotted],
            checksum: Some(ToolChecksum::FlywayCrc32),
        }),
    }],
    content_marker: None,
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let listing = list_recursive(dir)?;
    let mut skipped = listing.skipped_names();
    let mut files = Vec::new();
    let mut repeatable_entries: Vec<(&Entry, &str)> = Vec::new();
    for entry in listing.files() {
        let base = entry.name.rsplit('/').next().unwrap_or(&entry.name);
        if base.ends_with(".sql.conf") {
            continue; // read together with its script
        }
        match parse_name(base) {
            Some(FlywayName::Versioned { version, description }) => files.push(SeparateFile {
                entry,
                version: version_of(&entry.path, version, "Flyway versions are digits separated by `.` or `_`")?,
                name: description.to_owned(),
                direction: Direction::Up,
            }),
            Some(FlywayName::Undo { version, description }) => files.push(SeparateFile {
                entry,
                version: version_of(&entry.path, version, "Flyway versions are digits separated by `.` or `_`")?,
                name: description.to_owned(),
                direction: Direction::Down,
            }),
            Some(FlywayName::Repeatable { description }) => repeatable_entries.push((entry, description)),
            None => skipped.push((
                entry.path.clone(),
                "not a Flyway migration name (V<version>__<description>.sql, U... or R__...); callbacks are not run".to_owned(),
            )),
        }
    }
    let mut migrations = pair_files(files, |v| format!("V{v}__*.sql"), |_| false)?;
    for migration in &mut migrations {
        migration.up.no_transaction |= conf_says_no_transaction(&migration.up.path)?
            || script_says_no_transaction(&migration.up.file_text);
        if let Some(down) = &mut migration.down {
            down.no_transaction |= conf_says_no_transaction(&down.path)?
                || script_says_no_transaction(&down.file_text);
        }
    }
    let mut repeatable = Vec::with_capacity(repeatable_entries.len());
    for (entry, description) in repeatable_entries {
        let text = read_text(&entry.path)?;
        let no_transaction =
            conf_says_no_transaction(&entry.path)? || script_says_no_transaction(&text);
        repeatable.push(Migration {
            version: version_of(
                &entry.path,
                description,
                "a repeatable migration needs a description after `R__`",
            )?,
            name: description.to_owned(),
            up: whole(&entry.path, &text, no_transaction),
            down: None,
        });
    }
    finish(Format::Flyway, dir, migrations, repeatable, skipped)
}

/// Whether `<script>.conf` exists and sets `executeInTransaction=false`.
fn conf_says_no_transaction(script: &Path) -> Result<bool, SourceError> {
    let mut conf = script.as_os_str().to_owned();
    conf.push(".conf");
    let conf = PathBuf::from(conf);
    if !conf.is_file() {
        return Ok(false);
    }
    let text = read_text(&conf)?;
    parse_conf(&conf, &text)
}

/// Whether the script carries Flyway's in-script configuration comment
/// `-- flyway:executeInTransaction=false` (Flyway 9.19+), on a line of its own.
fn script_says_no_transaction(text: &str) -> bool {
    text.lines().any(|line| {
        line.trim()
            .strip_prefix("--")
            .map(str::trim_start)
            .and_then(|c| c.strip_prefix("flyway:"))
            .and_then(|c| c.split_once('='))
            .is_some_and(|(key, value)| {
                key.trim() == "executeInTransaction" && value.trim().eq_ignore_ascii_case("false")
            })
    })
}

/// Flyway script configuration: `key=value` lines, `#` comments. Only `executeInTransaction`
/// matters here; an unreadable value for it is an error rather than a silent default.
fn parse_conf(conf: &Path, text: &str) -> Result<bool, SourceError> {
    let mut no_transaction = false;
    for line in crate::lines::lines(text) {
        let trimmed = line.text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            continue;
        };
        if key.trim() != "executeInTransaction" {
            continue;
        }
        no_transaction =
            match value.trim().to_ascii_lowercase().as_str() {
                "false" => true,
                "true" => false,
                _ => return Err(SourceError::SideFile {
                    path: conf.to_path_buf(),
                    line: Some(line.number),
                    problem: format!(
                        "executeInTransaction must be true or false, not `{}`",
                        value.trim()
                    ),
                    fix: "write executeInTransaction=false to run the script outside a transaction",
                }),
            };
    }
    Ok(no_transaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_script_configuration_comment_turns_the_transaction_off() {
        assert!(script_says_no_transaction(
            "-- why this runs outside a transaction\n\n-- flyway:executeInTransaction=false\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
        ));
        assert!(script_says_no_transaction(
            "--flyway:executeInTransaction = FALSE\nSELECT 1;\n"
        ));
        assert!(!script_says_no_transaction(
            "-- flyway:executeInTransaction=true\nSELECT 1;\n"
        ));
        // Only a comment line counts, not text inside a statement.
        assert!(!script_says_no_transaction(
            "SELECT '-- flyway:executeInTransaction=false';\n"
        ));
        assert!(!script_says_no_transaction("SELECT 1;\n"));
    }

    #[test]
    fn names_are_classified() {
        assert_eq!(
            parse_name("V1_1__init.sql"),
            Some(FlywayName::Versioned {
                version: "1_1",
                description: "init"
            })
        );
        assert_eq!(
            parse_name("V2.0.1__a__b.sql"),
            Some(FlywayName::Versioned {
                version: "2.0.1",
                description: "a__b"
            })
        );
        assert_eq!(
            parse_name("U3__undo.sql"),
            Some(FlywayName::Undo {
                version: "3",
                description: "undo"
            })
        );
        assert_eq!(
            parse_name("R__views.sql"),
            Some(FlywayName::Repeatable {
                description: "views"
            })
        );
        assert_eq!(parse_name("afterMigrate.sql"), None);
        assert_eq!(parse_name("V__x.sql"), None);
        assert_eq!(parse_name("Vx__y.sql"), None);
        assert_eq!(parse_name("V1__x.sql.conf"), None);
        assert_eq!(parse_name("é1__x.sql"), None);
    }

    #[test]
    fn conf_reads_execute_in_transaction() -> Result<(), SourceError> {
        let p = Path::new("V1__x.sql.conf");
        assert!(parse_conf(p, "# comment\nexecuteInTransaction=false\n")?);
        assert!(parse_conf(p, "executeInTransaction = FALSE\r\n")?);
        assert!(!parse_conf(p, "executeInTransaction=true\n")?);
        assert!(!parse_conf(p, "encoding=UTF-8\n")?);
        let err = parse_conf(p, "\nexecuteInTransaction=maybe\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("V1__x.sql.conf:2"), "{err}");
        Ok(())
    }
}
