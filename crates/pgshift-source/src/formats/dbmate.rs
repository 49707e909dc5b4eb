//! dbmate: `<version>*.sql` (matched like dbmate's `^(\d+).*\.sql$`, conventionally
//! `YYYYMMDDHHMMSS_name.sql`), with `-- migrate:up` and `-- migrate:down` sections in one file.
//! As in dbmate, the up section runs from its marker to the down marker, nothing but comments may
//! precede `-- migrate:up`, and up must come first. dbmate also demands a down section; pgshift
//! reads a file without one as forward-only. No-transaction marker: an option on the section's
//! marker line, `-- migrate:up transaction:false` (each section has its own).

use std::path::Path;
use std::sync::Arc;

use super::{
    load_single_files, numbered_sql_file, sections_from_markers, sql_before, Direction, Marker,
};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, NoTransactionMarker, RecordValue, ToolRecord,
    TransactionModel,
};
use crate::lines::lines;
use crate::{Format, MigrationSet, Script, SourceError};

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "dbmate",
    aliases: &[],
    title: "dbmate",
    transaction: TransactionModel::Wrapped,
    no_transaction: Some(NoTransactionMarker {
        text: "transaction:false",
        help: "`-- migrate:up transaction:false`",
        example: &[(
            "1_index.sql",
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n\n-- migrate:down\nDROP INDEX t_a;\n",
        )],
    }),
    history: &[HistoryTable {
        table: "schema_migrations",
        required_column: None,
        applied: "SELECT version::text FROM schema_migrations",
        rows: AppliedRows::Versions,
        checksum: None,
        // dbmate's own statements (pkg/driver/postgres: InsertMigration, DeleteMigration).
        record: Some(ToolRecord {
            insert: "INSERT INTO schema_migrations (version) VALUES ($1::text)",
            insert_params: &[RecordValue::Version],
            delete: "DELETE FROM schema_migrations WHERE version = $1::text",
            delete_params: &[RecordValue::Version],
            checksum: None,
        }),
    }],
    content_marker: Some(has_marker),
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    load_single_files(
        Format::Dbmate,
        dir,
        |e| numbered_sql_file(e, Format::Dbmate),
        split,
    )
}

/// A `-- migrate:up` / `-- migrate:down` line: its direction and whether it says
/// `transaction:false`. dbmate wants `--` at the very start of the line.
fn marker(line: &str) -> Option<(Direction, bool)> {
    let body = line
        .strip_prefix("--")?
        .trim_start()
        .strip_prefix("migrate:")?;
    let (direction, options) = if let Some(rest) = body.strip_prefix("up") {
        (Direction::Up, rest)
    } else {
        (Direction::Down, body.strip_prefix("down")?)
    };
    if !(options.is_empty() || options.starts_with(char::is_whitespace)) {
        return None;
    }
    let no_transaction = options
        .split_whitespace()
        .any(|pair| pair.split(':').collect::<Vec<_>>() == ["transaction", "false"]);
    Some((direction, no_transaction))
}

/// Whether the text has a dbmate section marker.
pub(crate) fn has_marker(text: &str) -> bool {
    lines(text).any(|l| marker(l.text).is_some())
}

/// Splits a dbmate file into its up and (optional) down sections.
pub(crate) fn split(path: &Path, text: &Arc<str>) -> Result<(Script, Option<Script>), SourceError> {
    let mut up = None;
    let mut down = None;
    for line in lines(text) {
        if let Some((direction, no_tx)) = marker(line.text) {
            let found = (
                Marker {
                    direction,
                    line: line.number,
                    start: line.start,
                },
                no_tx,
            );
            match direction {
                Direction::Up if up.is_none() => up = Some(found),
                Direction::Down if down.is_none() => down = Some(found),
                _ => {}
            }
        }
    }
    let Some((up, up_no_tx)) = up else {
        return Err(SourceError::MissingMarker {
            path: path.to_path_buf(),
            line: 1,
            format: Format::Dbmate,
            marker: "-- migrate:up",
        });
    };
    if let Some((d, _)) = down {
        if d.start < up.start {
            return Err(SourceError::Malformed {
                path: path.to_path_buf(),
                line: d.line,
                problem: format!(
                    "`-- migrate:down` comes before `-- migrate:up` (line {})",
                    up.line
                ),
                fix: "move the down section below the up section, as dbmate requires",
            });
        }
    }
    if let Some(line) = sql_before(text, up.start) {
        return Err(SourceError::Malformed {
            path: path.to_path_buf(),
            line,
            problem: "SQL before `-- migrate:up`, which dbmate refuses to run".to_owned(),
            fix: "move it into the up section, below `-- migrate:up`",
        });
    }
    let down_no_tx = down.is_some_and(|(_, no_tx)| no_tx);
    Ok(sections_from_markers(
        path,
        text,
        up,
        down.map(|(m, _)| m),
        up_no_tx,
        down_no_tx,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<(Script, Option<Script>), SourceError> {
        split(Path::new("1_x.sql"), &Arc::from(text))
    }

    #[test]
    fn markers_and_options() {
        assert_eq!(marker("-- migrate:up"), Some((Direction::Up, false)));
        assert_eq!(
            marker("--migrate:down transaction:false"),
            Some((Direction::Down, true))
        );
        assert_eq!(
            marker("-- migrate:up  transaction:false other:x"),
            Some((Direction::Up, true))
        );
        assert_eq!(marker("-- migrate:upgrade"), None);
        assert_eq!(marker(" -- migrate:up"), None);
        assert_eq!(
            marker("-- migrate:up transaction:false:x"),
            Some((Direction::Up, false))
        );
    }

    #[test]
    fn sections_include_their_marker_line() -> Result<(), SourceError> {
        let (up, down) = run("-- comment\n-- migrate:up transaction:false\ncreate index concurrently i on t (a);\n\n-- migrate:down\ndrop index i;\n")?;
        assert_eq!(
            up.sql(),
            "-- migrate:up transaction:false\ncreate index concurrently i on t (a);\n\n"
        );
        assert!(up.no_transaction);
        let down = down.ok_or(SourceError::InvalidName {
            name: "no down".into(),
        })?;
        assert_eq!(down.sql(), "-- migrate:down\ndrop index i;\n");
        assert!(!down.no_transaction);
        assert_eq!(down.first_line(), 5);
        Ok(())
    }

    #[test]
    fn missing_up_wrong_order_and_sql_outside_are_errors() {
        let msg = |t: &str| run(t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg("create table t ();\n")
            .contains("1_x.sql:1: dbmate migration has no `-- migrate:up`"));
        assert!(
            msg("-- migrate:down\ndrop table t;\n-- migrate:up\ncreate table t ();\n")
                .contains("1_x.sql:1:")
        );
        assert!(msg("\ncreate type e as enum ('a');\n-- migrate:up\n")
            .contains("1_x.sql:2: SQL before"));
    }

    #[test]
    fn a_missing_down_is_forward_only() -> Result<(), SourceError> {
        let (up, down) = run("-- migrate:up\nselect 1;\n")?;
        assert_eq!(up.sql(), "-- migrate:up\nselect 1;\n");
        assert!(down.is_none());
        Ok(())
    }
}
