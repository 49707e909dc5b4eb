//! node-pg-migrate, SQL migrations: `<timestamp>_<name>.sql` with `-- Up Migration` and
//! `-- Down Migration` sections, matched like node-pg-migrate's `^\s*--[\s-]*up\s+migration`
//! (case-insensitive). As in node-pg-migrate, a file without an up marker is all up, and each
//! section runs to the other marker (or the end). `.js`/`.ts` migrations are listed as skipped.
//! node-pg-migrate has no per-file no-transaction marker in SQL files.

use std::path::Path;
use std::sync::Arc;

use super::{load_single_files, numbered_sql_file, section, Direction, NameVerdict};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, RecordValue, ToolRecord, TransactionModel,
};
use crate::lines::lines;
use crate::read::Entry;
use crate::{Format, MigrationSet, Script, SourceError};

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "node-pg-migrate",
    aliases: &["nodepgmigrate", "pg-migrate"],
    title: "node-pg-migrate",
    transaction: TransactionModel::Wrapped,
    no_transaction: None,
    history: &[HistoryTable {
        table: "pgmigrations",
        required_column: None,
        applied: "SELECT name FROM pgmigrations",
        rows: AppliedRows::FileStems,
        checksum: None,
        // node-pg-migrate's own statements (src/migration.ts: `INSERT INTO ... (name, run_on)
        // VALUES ('<file name without extension>', NOW())`, `DELETE FROM ... WHERE name=...`).
        record: Some(ToolRecord {
            insert: "INSERT INTO pgmigrations (name, run_on) VALUES ($1::text, NOW())",
            insert_params: &[RecordValue::FileStem],
            delete: "DELETE FROM pgmigrations WHERE name = $1::text",
            delete_params: &[RecordValue::FileStem],
            checksum: None,
        }),
    }],
    content_marker: Some(has_marker),
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    load_single_files(Format::NodePgMigrate, dir, name_of, |p, t| Ok(split(p, t)))
}

fn name_of(entry: &Entry) -> NameVerdict {
    let code = [".js", ".cjs", ".mjs", ".ts", ".cts", ".mts"];
    if code.iter().any(|ext| entry.name.ends_with(ext)) {
        return Err(
            "a JavaScript/TypeScript migration; pgshift reads SQL migrations only".to_owned(),
        );
    }
    numbered_sql_file(entry, Format::NodePgMigrate)
}

fn marker(line: &str) -> Option<Direction> {
    let body = line.trim_start().strip_prefix("--")?;
    let body = body.trim_start_matches(|c: char| c == '-' || c.is_whitespace());
    let (word, rest) = body.split_at(body.find(char::is_whitespace)?);
    let direction = if word.eq_ignore_ascii_case("up") {
        Direction::Up
    } else if word.eq_ignore_ascii_case("down") {
        Direction::Down
    } else {
        return None;
    };
    let rest = rest.trim_start();
    rest.get(..9)
        .filter(|m| m.eq_ignore_ascii_case("migration"))
        .map(|_| direction)
}

/// Whether the text has a node-pg-migrate section marker.
pub(crate) fn has_marker(text: &str) -> bool {
    lines(text).any(|l| marker(l.text).is_some())
}

/// Splits a node-pg-migrate SQL file into up and (optional) down sections.
pub(crate) fn split(path: &Path, text: &Arc<str>) -> (Script, Option<Script>) {
    let first = |wanted: Direction| {
        lines(text)
            .find(|l| marker(l.text) == Some(wanted))
            .map(|l| l.start)
    };
    let up = first(Direction::Up);
    let down = first(Direction::Down);
    let end = text.len();
    let up_range = match (up, down) {
        (Some(u), Some(d)) if d > u => u..d,
        (Some(u), _) => u..end,
        // No up marker: the whole file runs up (node-pg-migrate does the same).
        (None, _) => 0..end,
    };
    let down_range = down.map(|d| match up {
        Some(u) if u > d => d..u,
        _ => d..end,
    });
    (
        section(path, text, up_range, false),
        down_range.map(|r| section(path, text, r, false)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_match_the_node_pg_migrate_regex() {
        assert_eq!(marker("-- Up Migration"), Some(Direction::Up));
        assert_eq!(marker("  ---- down   MIGRATION"), Some(Direction::Down));
        assert_eq!(marker("-- Up Migrations here"), Some(Direction::Up));
        assert_eq!(marker("-- Upmigration"), None);
        assert_eq!(marker("-- up"), None);
        assert_eq!(marker("select 1; -- Up Migration"), None);
    }

    #[test]
    fn sections_follow_node_pg_migrate() {
        let text: Arc<str> =
            Arc::from("-- Up Migration\ncreate table t ();\n-- Down Migration\ndrop table t;\n");
        let (up, down) = split(Path::new("1_x.sql"), &text);
        assert_eq!(up.sql(), "-- Up Migration\ncreate table t ();\n");
        assert_eq!(
            down.map(|d| d.sql().to_owned()),
            Some("-- Down Migration\ndrop table t;\n".to_owned())
        );
        let text: Arc<str> = Arc::from("create table t ();\n");
        let (up, down) = split(Path::new("1_x.sql"), &text);
        assert_eq!(up.sql(), "create table t ();\n");
        assert!(down.is_none());
    }
}
