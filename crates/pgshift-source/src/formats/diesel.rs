//! diesel: one directory per migration, `<version>_<name>/up.sql` plus `down.sql`, and an
//! optional `metadata.toml` whose `run_in_transaction = false` makes both scripts
//! no-transaction. The version is the text before the first `_`, compared with dashes removed
//! and as text, exactly as diesel sorts them: `2017-09-26-200549` and `20170708133715` sort
//! together, and `2025-06-01-000000-0000` comes before `2026-01-01-000000` (a longer version is
//! not a larger one). diesel's own
//! `00000000000000_diesel_initial_setup` is an ordinary migration. A missing `down.sql` reads
//! as forward-only; a `down.sql` without `up.sql` is an error.

use std::path::Path;

use super::{finish, version_of, whole};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, NoTransactionMarker, RecordValue, ToolRecord,
    TransactionModel,
};
use crate::read::{list, read_text};
use crate::{Format, Migration, MigrationSet, SourceError};

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "diesel",
    aliases: &[],
    title: "diesel",
    transaction: TransactionModel::Wrapped,
    no_transaction: Some(NoTransactionMarker {
        text: "run_in_transaction = false",
        help: "`run_in_transaction = false` in metadata.toml",
        example: &[
            (
                "2024-01-01-000000_index/up.sql",
                "CREATE INDEX CONCURRENTLY t_a ON t (a);\n",
            ),
            (
                "2024-01-01-000000_index/metadata.toml",
                "run_in_transaction = false\n",
            ),
        ],
    }),
    history: &[HistoryTable {
        table: "__diesel_schema_migrations",
        required_column: None,
        applied: "SELECT version FROM __diesel_schema_migrations",
        rows: AppliedRows::Versions,
        checksum: None,
        // diesel_migrations' own statements: the version with its dashes removed, `run_on`
        // its default.
        record: Some(ToolRecord {
            insert: "INSERT INTO __diesel_schema_migrations (version) VALUES ($1::text)",
            insert_params: &[RecordValue::VersionUndashed],
            delete: "DELETE FROM __diesel_schema_migrations WHERE version = $1::text",
            delete_params: &[RecordValue::VersionUndashed],
            checksum: None,
        }),
    }],
    content_marker: None,
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let listing = list(dir)?;
    let mut skipped = listing.skipped_names();
    for entry in listing.files() {
        skipped.push((
            entry.path.clone(),
            "a file; diesel migrations are directories holding up.sql".to_owned(),
        ));
    }
    let mut migrations = Vec::new();
    for entry in listing.dirs() {
        let inner = list(&entry.path)?;
        let up = inner.has_file("up.sql");
        let down = inner.has_file("down.sql");
        if !up && !down {
            skipped.push((entry.path.clone(), "no up.sql in this directory".to_owned()));
            continue;
        }
        if !up {
            return Err(SourceError::DownWithoutUp {
                path: entry.path.join("down.sql"),
                expected: entry.path.join("up.sql").display().to_string(),
            });
        }
        let (raw_version, name) = entry
            .name
            .split_once('_')
            .unwrap_or((entry.name.as_str(), ""));
        let version = version_of(
            &entry.path,
            raw_version,
            "diesel versions are the text before the first `_`",
        )?
        .diesel_ordered();
        let no_transaction = if inner.has_file("metadata.toml") {
            !runs_in_transaction(&entry.path.join("metadata.toml"))?
        } else {
            false
        };
        let up_path = entry.path.join("up.sql");
        let up_text = read_text(&up_path)?;
        let down = if down {
            let down_path = entry.path.join("down.sql");
            let down_text = read_text(&down_path)?;
            Some(whole(&down_path, &down_text, no_transaction))
        } else {
            None
        };
        migrations.push(Migration {
            version,
            name: name.to_owned(),
            up: whole(&up_path, &up_text, no_transaction),
            down,
        });
    }
    finish(Format::Diesel, dir, migrations, Vec::new(), skipped)
}

/// `run_in_transaction` from diesel's `metadata.toml` (default `true`).
fn runs_in_transaction(path: &Path) -> Result<bool, SourceError> {
    let text = read_text(path)?;
    parse_metadata(path, &text)
}

fn parse_metadata(path: &Path, text: &str) -> Result<bool, SourceError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SourceError::SideFile {
            path: path.to_path_buf(),
            line: e.span().map(|s| crate::lines::line_of(text, s.start)),
            problem: format!("not valid TOML: {}", e.message()),
            fix: "fix the TOML (diesel reads `run_in_transaction = false`)",
        })?;
    match table.get("run_in_transaction") {
        None => Ok(true),
        Some(toml::Value::Boolean(b)) => Ok(*b),
        Some(other) => Err(SourceError::SideFile {
            path: path.to_path_buf(),
            line: None,
            problem: format!("run_in_transaction must be true or false, not {other}"),
            fix: "write `run_in_transaction = false` to run the migration outside a transaction",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_read_and_bad_metadata_named() -> Result<(), SourceError> {
        let p = Path::new("m/metadata.toml");
        assert!(!parse_metadata(p, "run_in_transaction = false\n")?);
        assert!(parse_metadata(p, "")?);
        let err = parse_metadata(p, "\nrun_in_transaction = \n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("m/metadata.toml:2: not valid TOML"),
            "{err}"
        );
        let err = parse_metadata(p, "run_in_transaction = \"no\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("must be true or false"), "{err}");
        Ok(())
    }
}
