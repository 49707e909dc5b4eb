//! The format descriptors are the one statement of each format's facts; these tests hold the
//! facts to what the loaders and the adoption order really do.

use std::collections::BTreeMap;
use std::path::Path;

use pgshift_source::{load, Format, SourceError};

fn write_files(dir: &Path, files: &[(&str, String)]) -> std::io::Result<()> {
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// Whether the first migration's up script of `files`, read as `format`, runs outside a
/// transaction.
fn up_is_no_transaction(
    format: Format,
    files: &[(&str, String)],
) -> Result<bool, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    write_files(dir.path(), files)?;
    let set = load(dir.path(), Some(format))?;
    let first = set
        .migrations
        .first()
        .ok_or_else(|| format!("{format}: the example holds no migration"))?;
    Ok(first.up.no_transaction)
}

#[test]
fn every_no_transaction_marker_the_help_names_is_honoured_by_its_loader(
) -> Result<(), Box<dyn std::error::Error>> {
    let mut with_marker = 0;
    for format in Format::all() {
        let Some(marker) = &format.descriptor().no_transaction else {
            continue;
        };
        with_marker += 1;
        assert!(
            marker.help.contains(marker.text),
            "{format}: the help `{}` does not show the marker `{}`",
            marker.help,
            marker.text
        );
        assert!(
            marker
                .example
                .iter()
                .any(|(_, text)| text.contains(marker.text)),
            "{format}: the example does not carry the marker `{}`",
            marker.text
        );
        let example: Vec<(&str, String)> = marker
            .example
            .iter()
            .map(|(name, text)| (*name, (*text).to_owned()))
            .collect();
        assert!(
            up_is_no_transaction(*format, &example)?,
            "{format}: the loader ignores `{}`, the marker the help tells users to write",
            marker.text
        );
        let without: Vec<(&str, String)> = example
            .iter()
            .map(|(name, text)| (*name, text.replace(marker.text, "")))
            .collect();
        assert!(
            !up_is_no_transaction(*format, &without)?,
            "{format}: the example runs outside a transaction even without `{}`",
            marker.text
        );
    }
    // pgshift, sqlx, Flyway, dbmate, goose, diesel, Atlas.
    assert_eq!(with_marker, 7);
    Ok(())
}

#[test]
fn names_and_aliases_each_name_one_format() -> Result<(), SourceError> {
    let mut seen: BTreeMap<&str, Format> = BTreeMap::new();
    for format in Format::all() {
        let descriptor = format.descriptor();
        for name in std::iter::once(&descriptor.name).chain(descriptor.aliases) {
            assert_eq!(
                *name,
                name.to_ascii_lowercase().replace('_', "-"),
                "{format}: `{name}` is not in the form `--dir-format` is compared in"
            );
            if let Some(other) = seen.insert(name, *format) {
                panic!("`{name}` names both {other} and {format}");
            }
            assert_eq!(name.parse::<Format>()?, *format);
        }
    }
    Ok(())
}

#[test]
fn history_tables_are_read_from_the_table_named_and_shared_names_are_told_apart() {
    let mut first_claim: BTreeMap<&str, (Format, Option<&str>)> = BTreeMap::new();
    for format in Format::all() {
        for table in format.descriptor().history {
            assert!(
                table.applied.contains(&format!("FROM {}", table.table)),
                "{format}: the query does not read {}: {}",
                table.table,
                table.applied
            );
            // Adoption takes the first tool (in registry order, after the folder's own) whose
            // table exists: a tool listed earlier under the same table name must demand a
            // column the later one's table lacks, or it claims the other tool's history.
            match first_claim.get(table.table) {
                None => {
                    first_claim.insert(table.table, (*format, table.required_column));
                }
                Some((earlier, required)) => assert!(
                    required.is_some() && *required != table.required_column,
                    "{earlier} and {format} both keep `{}`; {earlier} comes first, so it needs a \
                     `required_column` that {format}'s table does not have",
                    table.table
                ),
            }
        }
    }
}
