//! Plain SQL files: every `*.sql` file in the directory is one migration, ordered by the number
//! its name starts with (then by name, for files without one). The version is that number, or
//! the file stem when there is none. Single files (`pgshift check file.sql`) and stdin are read
//! the same way.
//!
//! Because a plain file often comes from another tool, the section markers of dbmate
//! (`-- migrate:up`), goose (`-- +goose Up`) and node-pg-migrate (`-- Up Migration`) are honoured
//! when present, and so are the no-transaction markers that fit a single file: sqlx's first line
//! `-- no-transaction`, Atlas's `-- atlas:txmode none` and `-- pgshift:no-transaction`.

use std::path::Path;
use std::sync::Arc;

use super::{
    dbmate, goose, leading_number, load_single_files, node_pg_migrate, whole, NameVerdict,
};
use crate::format::{FormatDescriptor, TransactionModel};
use crate::read::Entry;
use crate::{Format, Migration, MigrationSet, Script, SourceError, Version};

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "plain",
    aliases: &["sql"],
    title: "plain SQL",
    // pgshift's own runner runs a plain folder.
    transaction: TransactionModel::PgshiftRunner,
    // Its own marker is pgshift's; the single-file markers of other tools are honoured too.
    no_transaction: None,
    history: &[],
    content_marker: None,
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    load_single_files(Format::Plain, dir, name_of, split)
}

fn name_of(entry: &Entry) -> NameVerdict {
    match entry.name.strip_suffix(".sql") {
        Some(stem) => Ok(version_and_name(stem)),
        None => Err("not a `.sql` file".to_owned()),
    }
}

/// The version (leading number, else the stem) and name of a plain file stem.
fn version_and_name(stem: &str) -> (String, String) {
    match leading_number(stem) {
        Some((number, name)) => (number.to_owned(), name.to_owned()),
        None => (stem.to_owned(), stem.to_owned()),
    }
}

/// Splits one file by whichever tool's markers it holds; a file without markers is all up.
pub(crate) fn split(path: &Path, text: &Arc<str>) -> Result<(Script, Option<Script>), SourceError> {
    if dbmate::has_marker(text) {
        return dbmate::split(path, text);
    }
    if goose::has_marker(text) {
        return goose::split(path, text);
    }
    if node_pg_migrate::has_marker(text) {
        return Ok(node_pg_migrate::split(path, text));
    }
    let marker = super::sqlx::has_marker(text) || super::atlas::says_txmode_none(text);
    Ok((whole(path, text, marker), None))
}

/// One migration from one file; the path is kept as given.
pub(crate) fn load_file(path: &Path) -> Result<Migration, SourceError> {
    let text = crate::read::read_text(path)?;
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(".sql").unwrap_or(n))
        .unwrap_or("");
    let (version, name) = version_and_name(stem);
    let version = Version::parse(&version).unwrap_or_else(Version::zero);
    let (up, down) = split(path, &text)?;
    Ok(Migration {
        version,
        name,
        up,
        down,
    })
}

/// One migration from text that has no file (stdin). Markers are honoured as for a file; when
/// they are malformed, the whole text is the up script so that `check` still reviews it.
pub(crate) fn from_text(name: &str, text: &str) -> Migration {
    let path = Path::new(name);
    let text: Arc<str> = Arc::from(text);
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(".sql").unwrap_or(n))
        .unwrap_or(name);
    // Only a leading number is a version here: stdin has no file stem worth ordering by.
    let (version, migration_name) = match leading_number(stem) {
        Some((number, rest)) => (
            Version::parse(number).unwrap_or_else(Version::zero),
            rest.to_owned(),
        ),
        None => (Version::zero(), stem.to_owned()),
    };
    let (up, down) = split(path, &text).unwrap_or_else(|_| (whole(path, &text, false), None));
    Migration {
        version,
        name: migration_name,
        up,
        down,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_text_becomes_one_migration() {
        let m = from_text(
            "<stdin>",
            "-- pgshift:no-transaction\ncreate index concurrently i on t (a);\n",
        );
        assert_eq!(m.version, Version::zero());
        assert!(m.no_transaction());
        assert_eq!(m.up.path, Path::new("<stdin>"));
        assert!(m.down.is_none());
    }

    #[test]
    fn stdin_honours_other_tools_markers_and_survives_malformed_ones() {
        let m = from_text(
            "0042_x.sql",
            "-- +goose Up\nselect 1;\n-- +goose Down\nselect 2;\n",
        );
        assert_eq!(m.version.as_str(), "0042");
        assert_eq!(m.name, "x");
        assert_eq!(m.down_sql(), Some("-- +goose Down\nselect 2;\n"));
        let m = from_text("x", "select 1;\n-- migrate:up\n");
        assert_eq!(m.up.sql(), "select 1;\n-- migrate:up\n");
        assert!(from_text("x", "-- no-transaction\nselect 1;").no_transaction());
    }
}
