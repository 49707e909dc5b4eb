//! goose: `<version>_<name>.sql` with `-- +goose Up` and `-- +goose Down` sections (annotations
//! compared case-insensitively, as recent goose does, and only at the very start of a line).
//! `-- +goose StatementBegin` / `StatementEnd` blocks are kept in the text: PostgreSQL's parser
//! splits them correctly, `$$` bodies included. `-- +goose NO TRANSACTION` anywhere in the file
//! makes both sections no-transaction. As goose does, SQL before `-- +goose Up`, a second Up or
//! Down, and Down before Up are errors. `.go` migrations are listed as skipped: pgshift cannot
//! run Go code.

use std::path::Path;
use std::sync::Arc;

use super::{
    leading_number, load_single_files, sections_from_markers, sql_before, Direction, Marker,
    NameVerdict,
};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, NoTransactionMarker, RecordValue, ToolRecord,
    TransactionModel,
};
use crate::lines::lines;
use crate::read::Entry;
use crate::{Format, MigrationSet, Script, SourceError};

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "goose",
    aliases: &[],
    title: "goose",
    transaction: TransactionModel::Wrapped,
    no_transaction: Some(NoTransactionMarker {
        text: "-- +goose NO TRANSACTION",
        help: "`-- +goose NO TRANSACTION`",
        example: &[(
            "00001_index.sql",
            "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n",
        )],
    }),
    history: &[HistoryTable {
        table: "goose_db_version",
        required_column: None,
        // goose appends a row per up and per down; the newest row of a version decides.
        applied: "SELECT version_id::text FROM (
                      SELECT DISTINCT ON (version_id) version_id, is_applied
                        FROM goose_db_version ORDER BY version_id, id DESC) latest
                   WHERE is_applied AND version_id > 0",
        rows: AppliedRows::Versions,
        checksum: None,
        // goose v3's Postgres store: a row per up; a down deletes the version's rows.
        record: Some(ToolRecord {
            insert: "INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1::text::bigint, TRUE)",
            insert_params: &[RecordValue::Version],
            delete: "DELETE FROM goose_db_version WHERE version_id = $1::text::bigint",
            delete_params: &[RecordValue::Version],
            checksum: None,
        }),
    }],
    content_marker: Some(has_marker),
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    load_single_files(Format::Goose, dir, name_of, split)
}

fn name_of(entry: &Entry) -> NameVerdict {
    if entry.name.ends_with(".go") {
        return Err("a goose Go migration; pgshift cannot run Go code (port it to SQL, or keep running it with goose)".to_owned());
    }
    let Some(stem) = entry.name.strip_suffix(".sql") else {
        return Err("not a `.sql` file; goose SQL migrations end in `.sql`".to_owned());
    };
    match leading_number(stem) {
        Some((number, name)) if stem[number.len()..].starts_with('_') => {
            Ok((number.to_owned(), name.to_owned()))
        }
        _ => Err("not a goose migration name (expected <version>_<name>.sql)".to_owned()),
    }
}

/// A goose annotation: the text after `-- +goose`, for lines that start with `--`.
#[derive(Debug, PartialEq, Eq)]
enum Annotation {
    Up,
    Down,
    NoTransaction,
    Other,
}

fn annotation(line: &str) -> Option<Annotation> {
    let command = line.strip_prefix("--")?.trim();
    let rest = command
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("+goose"))?;
    let word = command[rest.len()..].trim();
    Some(if word.eq_ignore_ascii_case("up") {
        Annotation::Up
    } else if word.eq_ignore_ascii_case("down") {
        Annotation::Down
    } else if word
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .eq(["NO", "TRANSACTION"])
    {
        Annotation::NoTransaction
    } else {
        Annotation::Other
    })
}

/// Whether the text has a goose annotation.
pub(crate) fn has_marker(text: &str) -> bool {
    lines(text).any(|l| annotation(l.text).is_some())
}

/// Splits a goose file into its Up and (optional) Down sections.
pub(crate) fn split(path: &Path, text: &Arc<str>) -> Result<(Script, Option<Script>), SourceError> {
    let mut up: Option<Marker> = None;
    let mut down: Option<Marker> = None;
    let mut no_transaction = false;
    for line in lines(text) {
        let found = match annotation(line.text) {
            Some(Annotation::Up) => Marker {
                direction: Direction::Up,
                line: line.number,
                start: line.start,
            },
            Some(Annotation::Down) => Marker {
                direction: Direction::Down,
                line: line.number,
                start: line.start,
            },
            Some(Annotation::NoTransaction) => {
                no_transaction = true;
                continue;
            }
            Some(Annotation::Other) | None => continue,
        };
        if found.direction == Direction::Down && up.is_none() {
            return Err(SourceError::Malformed {
                path: path.to_path_buf(),
                line: found.line,
                problem: "`-- +goose Down` comes before `-- +goose Up`".to_owned(),
                fix: "start the file with `-- +goose Up`, as goose requires",
            });
        }
        let slot = match found.direction {
            Direction::Up => &mut up,
            Direction::Down => &mut down,
        };
        if let Some(first) = slot {
            return Err(SourceError::Malformed {
                path: path.to_path_buf(),
                line: found.line,
                problem: format!(
                    "a second `-- +goose {:?}` annotation (the first is on line {})",
                    found.direction, first.line
                ),
                fix: "keep one Up and at most one Down annotation per file, as goose requires",
            });
        }
        *slot = Some(found);
    }
    let Some(up) = up else {
        return Err(SourceError::MissingMarker {
            path: path.to_path_buf(),
            line: 1,
            format: Format::Goose,
            marker: "-- +goose Up",
        });
    };
    if let Some(line) = sql_before(text, up.start) {
        return Err(SourceError::Malformed {
            path: path.to_path_buf(),
            line,
            problem: "SQL before `-- +goose Up`, which goose refuses to run".to_owned(),
            fix: "move it below `-- +goose Up`",
        });
    }
    Ok(sections_from_markers(
        path,
        text,
        up,
        down,
        no_transaction,
        no_transaction,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<(Script, Option<Script>), SourceError> {
        split(Path::new("1_x.sql"), &Arc::from(text))
    }

    #[test]
    fn annotations_are_case_insensitive_and_anchored() {
        assert_eq!(annotation("-- +goose Up"), Some(Annotation::Up));
        assert_eq!(annotation("-- +goose up"), Some(Annotation::Up));
        assert_eq!(annotation("--+goose DOWN  "), Some(Annotation::Down));
        assert_eq!(
            annotation("-- +goose NO TRANSACTION"),
            Some(Annotation::NoTransaction)
        );
        assert_eq!(
            annotation("-- +goose StatementBegin"),
            Some(Annotation::Other)
        );
        assert_eq!(annotation("  -- +goose Up"), None);
        assert_eq!(annotation("-- goose up"), None);
        assert_eq!(annotation("-- +gooseé"), Some(Annotation::Other));
        assert_eq!(annotation("-- +goos"), None);
    }

    #[test]
    fn statement_blocks_stay_in_the_up_section() -> Result<(), SourceError> {
        let text = "-- +goose Up\n-- +goose StatementBegin\ncreate function f() returns int as $$ begin return 1; end $$ language plpgsql;\n-- +goose StatementEnd\n\n-- +goose Down\ndrop function f();\n";
        let (up, down) = run(text)?;
        assert!(up.sql().contains("$$ begin return 1; end $$"));
        assert!(up.sql().ends_with("-- +goose StatementEnd\n\n"));
        assert_eq!(
            down.map(|d| d.sql().to_owned()),
            Some("-- +goose Down\ndrop function f();\n".to_owned())
        );
        assert!(!up.no_transaction);
        Ok(())
    }

    #[test]
    fn no_transaction_applies_to_both_sections() -> Result<(), SourceError> {
        let (up, down) = run("-- +goose NO TRANSACTION\n-- +goose Up\ncreate index concurrently i on t (a);\n-- +goose Down\ndrop index concurrently i;\n")?;
        assert!(up.no_transaction);
        assert!(down.is_some_and(|d| d.no_transaction));
        Ok(())
    }

    #[test]
    fn malformed_files_are_errors_with_lines() {
        let msg = |t: &str| run(t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg("select 1;\n").contains("1_x.sql:1: goose migration has no `-- +goose Up`"));
        assert!(msg("-- +goose Down\nselect 1;\n-- +goose Up\n")
            .contains("1_x.sql:1: `-- +goose Down` comes before"));
        assert!(msg("-- +goose Up\n-- +goose Up\n").contains("1_x.sql:2: a second"));
        assert!(msg("select 1;\n-- +goose Up\n").contains("1_x.sql:1: SQL before"));
    }
}
