//! golang-migrate: `<version>_<name>.up.<ext>` / `<version>_<name>.down.<ext>`, matched like its
//! `^([0-9]+)_(.*)\.(down|up)\.(.*)$` (the name is greedy, so the last `.up.`/`.down.` counts).
//! Only `.sql` files are read; other extensions are listed as skipped.
//!
//! golang-migrate has no no-transaction marker and no `BEGIN` of its own: it sends each file as
//! one `Exec`, which PostgreSQL runs as one implicit transaction. pgshift models that as
//! transactional; `-- pgshift:no-transaction` still turns it off.

use std::path::Path;

use super::{finish, pair_files, version_of, Direction, SeparateFile};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, RecordValue, ToolRecord, TransactionModel,
};
use crate::read::list;
use crate::{Format, MigrationSet, SourceError};

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "golang-migrate",
    aliases: &["migrate", "golangmigrate"],
    title: "golang-migrate",
    transaction: TransactionModel::OneQueryString,
    no_transaction: None,
    history: &[HistoryTable {
        table: "schema_migrations",
        required_column: Some("dirty"),
        applied: "SELECT version::text, dirty::boolean FROM schema_migrations",
        rows: AppliedRows::CurrentVersion,
        checksum: None,
        // golang-migrate keeps one row, the current version (`SetVersion`: the table emptied,
        // the version written with `dirty` false; nothing for no version). Here the other rows
        // go by DELETE rather than TRUNCATE, which would wait for every reader of the table;
        // the version never moves down (a migration pgshift applies out of order, or a baseline
        // below it, leaves it), and a revert makes the migration before it current only when
        // the reverted one is.
        record: Some(ToolRecord {
            insert: "WITH gone AS (DELETE FROM schema_migrations WHERE version < $1::text::bigint)
                     INSERT INTO schema_migrations (version, dirty) SELECT $1::text::bigint, FALSE
                      WHERE NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version > $1::text::bigint)
                     ON CONFLICT (version) DO UPDATE SET dirty = FALSE",
            insert_params: &[RecordValue::Version],
            delete: "WITH gone AS (DELETE FROM schema_migrations WHERE version = $2::text::bigint RETURNING 1)
                     INSERT INTO schema_migrations (version, dirty) SELECT $1::text::bigint, FALSE FROM gone
                      WHERE $1::text IS NOT NULL
                     ON CONFLICT (version) DO UPDATE SET dirty = FALSE",
            delete_params: &[RecordValue::PreviousVersion, RecordValue::Version],
            checksum: None,
        }),
    }],
    content_marker: None,
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let listing = list(dir)?;
    let mut skipped = listing.skipped_names();
    let mut files = Vec::new();
    for entry in listing.files() {
        match parse_name(&entry.name) {
            Some((number, name, direction, "sql")) => {
                let version = version_of(&entry.path, number, "expected digits")?;
                files.push(SeparateFile { entry, version, name: name.to_owned(), direction });
            }
            Some((_, _, _, ext)) => {
                skipped.push((entry.path.clone(), format!("a `.{ext}` migration; pgshift reads SQL files only")));
            }
            None => skipped.push((
                entry.path.clone(),
                "not a golang-migrate migration name (expected <version>_<name>.up.sql or .down.sql)".to_owned(),
            )),
        }
    }
    for entry in listing.dirs() {
        skipped.push((
            entry.path.clone(),
            "a directory; golang-migrate reads files".to_owned(),
        ));
    }
    let migrations = pair_files(files, |v| format!("{v}_*.up.sql"), |_| false)?;
    // Atlas generates golang-migrate directories too, with an `atlas.sum` beside them.
    super::atlas::verify_golang_migrate_sum(dir)?;
    skipped
        .retain(|(path, _)| path.file_name() != Some(std::ffi::OsStr::new(super::atlas::SUM_FILE)));
    finish(Format::GolangMigrate, dir, migrations, Vec::new(), skipped)
}

/// `(version, name, direction, extension)` for a golang-migrate file name.
pub(crate) fn parse_name(file_name: &str) -> Option<(&str, &str, Direction, &str)> {
    let digits = file_name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || file_name.as_bytes().get(digits) != Some(&b'_') {
        return None;
    }
    let number = &file_name[..digits];
    let rest = &file_name[digits + 1..];
    // The regex's name group is greedy: the direction is the last `.up.` or `.down.`.
    let up = rest.rfind(".up.").map(|i| (i, Direction::Up, 4));
    let down = rest.rfind(".down.").map(|i| (i, Direction::Down, 6));
    let (at, direction, len) = match (up, down) {
        (Some(u), Some(d)) => {
            if u.0 > d.0 {
                u
            } else {
                d
            }
        }
        (Some(u), None) => u,
        (None, Some(d)) => d,
        (None, None) => return None,
    };
    Some((number, &rest[..at], direction, &rest[at + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_greedy_regex() {
        assert_eq!(
            parse_name("000001_init.up.sql"),
            Some(("000001", "init", Direction::Up, "sql"))
        );
        assert_eq!(
            parse_name("2_a.up.b.down.sql"),
            Some(("2", "a.up.b", Direction::Down, "sql"))
        );
        assert_eq!(
            parse_name("3_x.down.json"),
            Some(("3", "x", Direction::Down, "json"))
        );
        assert_eq!(parse_name("3x.up.sql"), None);
        assert_eq!(parse_name("_x.up.sql"), None);
        assert_eq!(parse_name("4_x.sql"), None);
    }
}
