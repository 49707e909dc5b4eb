//! The migration formats pgshift reads. [`Format`] names one; its [`FormatDescriptor`], defined
//! in the format's own module under `formats/`, holds every fact about it that the rest of
//! pgshift needs: names, transaction model, no-transaction marker and how to write it, the
//! tool's history tables and how to read them, its loader and its detection marker.
//!
//! Adding a format: write `formats/<format>.rs` with its loader and `DESCRIPTOR`, declare the
//! module in `formats/mod.rs`, and add its line to the `formats!` table below. Detection
//! (`detect.rs`) needs a rule only when the format's layout cannot be told by a content marker.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::{MigrationSet, SourceError, ToolChecksum};

/// Declares [`Format`] with one variant per line and the module whose `DESCRIPTOR` describes
/// it, so that a variant without a descriptor cannot exist.
macro_rules! formats {
    ($($variant:ident => $module:ident,)*) => {
        /// A migration tool whose directory layout pgshift can read.
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(rename_all = "kebab-case")]
        pub enum Format {
            $($variant,)*
        }

        const ALL: &[Format] = &[$(Format::$variant,)*];

        impl Format {
            /// Everything pgshift knows about this format (from `formats/<format>.rs`).
            pub fn descriptor(self) -> &'static FormatDescriptor {
                match self {
                    $(Format::$variant => &crate::formats::$module::DESCRIPTOR,)*
                }
            }
        }
    };
}

// The registry, in the order formats are listed (crate documentation, error messages, the
// order in which adoption looks for history tables).
formats! {
    Pgshift => pgshift,
    Sqlx => sqlx,
    GolangMigrate => golang_migrate,
    Flyway => flyway,
    Dbmate => dbmate,
    Goose => goose,
    Diesel => diesel,
    Prisma => prisma,
    Drizzle => drizzle,
    Atlas => atlas,
    NodePgMigrate => node_pg_migrate,
    Plain => plain,
}

/// The facts about one migration format, as data. The runner, `check` and the rule help read
/// them; this crate never executes the SQL it holds (it never connects).
pub struct FormatDescriptor {
    /// The kebab-case name used on the command line, in `pgshift.toml` and in JSON (the same as
    /// the [`Format`] variant's serde name).
    pub name: &'static str,
    /// Other spellings `--dir-format` accepts, lowercase with `-` for `_`.
    pub aliases: &'static [&'static str],
    /// The tool's own spelling, for prose (`Flyway`, `Atlas`).
    pub title: &'static str,
    /// How the tool runs a migration's statements.
    pub transaction: TransactionModel,
    /// The tool's own way of marking a script to run outside a transaction, if it has one.
    /// pgshift's `-- pgshift:no-transaction` line is honoured in every format on top of it.
    pub no_transaction: Option<NoTransactionMarker>,
    /// The tables in which the tool records what it applied, read to adopt a database it
    /// migrated. Empty for pgshift (its own history is the runner's) and plain SQL.
    pub history: &'static [HistoryTable],
    /// A line only this tool writes in its `.sql` files (dbmate, goose, node-pg-migrate):
    /// finding one in a directory tells its format.
    pub(crate) content_marker: Option<fn(&str) -> bool>,
    /// Reads a directory in this format.
    pub(crate) load: fn(&Path) -> Result<MigrationSet, SourceError>,
}

/// How a tool sends a migration's statements to PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionModel {
    /// pgshift's own runner runs the folder: statements grouped into units that commit on
    /// their own, statements that cannot run in a transaction run outside one.
    PgshiftRunner,
    /// The tool runs the statements between `BEGIN` and `COMMIT` (each migration on its own or,
    /// like Drizzle, all pending ones together).
    Wrapped,
    /// The tool sends each file as one query string without `BEGIN` (golang-migrate, Prisma).
    /// PostgreSQL runs a string of several statements as one implicit transaction, but a string
    /// holding a single statement outside any: that is how these tools' users run
    /// `CREATE INDEX CONCURRENTLY`, alone in its file.
    OneQueryString,
}

impl TransactionModel {
    /// Whether a migration runs inside a transaction unless a marker turns it off. Every model
    /// does: even a file sent as one query string runs as one implicit transaction (and
    /// `CREATE INDEX CONCURRENTLY` fails inside it).
    pub fn wraps_in_transaction(self) -> bool {
        match self {
            TransactionModel::PgshiftRunner
            | TransactionModel::Wrapped
            | TransactionModel::OneQueryString => true,
        }
    }
}

/// A tool's no-transaction marker.
pub struct NoTransactionMarker {
    /// The text that turns the transaction off, as written (`-- +goose NO TRANSACTION`).
    pub text: &'static str,
    /// How to write it, for help messages: where it goes, quoting [`Self::text`]
    /// (``first line `-- no-transaction` ``).
    pub help: &'static str,
    /// A migration directory, as (file name, contents), whose one migration carries
    /// [`Self::text`]. The format's loader must read its up script as no-transaction, and as
    /// transactional once the text is removed: a test holds every format to its help.
    pub example: &'static [(&'static str, &'static str)],
}

/// One history table of another tool, and how to read the versions it records as applied.
pub struct HistoryTable {
    /// `schema.table` as `to_regclass` takes it.
    pub table: &'static str,
    /// A column that must exist for the table to be this tool's (golang-migrate's
    /// `schema_migrations` has `dirty`, dbmate's does not).
    pub required_column: Option<&'static str>,
    /// The query that returns what the tool applied; its columns are described by `rows`.
    pub applied: &'static str,
    /// What each row of `applied` means.
    pub rows: AppliedRows,
    /// How the tool fingerprints a migration, when `applied` returns, as a second text
    /// column, the fingerprint it recorded: a file that no longer matches it was edited after
    /// the tool ran it, and is not adopted silently (sqlx and Flyway refuse to go on too,
    /// Prisma's `migrate dev` asks for a reset; `None` for Drizzle, which never compares).
    pub checksum: Option<ToolChecksum>,
    /// How the tool itself writes a migration it applied into this table and removes one it
    /// reverted, for `[run] record_in_old_tool`; `None` when pgshift does not write it.
    pub record: Option<ToolRecord>,
}

/// The statements a tool runs on its own history table, as that tool writes them. Their
/// parameters are the [`RecordValue`]s listed, in order, each passed as text (a statement
/// casts what it needs: `$1::text::bigint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToolRecord {
    /// Records a migration as applied.
    pub insert: &'static str,
    pub insert_params: &'static [RecordValue],
    /// Removes a reverted migration.
    pub delete: &'static str,
    pub delete_params: &'static [RecordValue],
    /// The fingerprint [`RecordValue::ToolChecksum`] stands for.
    pub checksum: Option<ToolChecksum>,
}

/// A value of a migration that a [`ToolRecord`] statement takes, always as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordValue {
    /// The version as written in the file name (`0001`, not `1`).
    Version,
    /// The version with `_` read as `.` (Flyway: `V1_1__x.sql` is version `1.1`).
    VersionDotted,
    /// The version with its dashes removed (diesel: `2024-01-01-000000` is `20240101000000`).
    VersionUndashed,
    /// The file name without its extension (`1700000000000_init`).
    FileStem,
    /// The name of the folder holding the file (Prisma's `20240101000000_init`).
    DirName,
    /// The file's path below the migrations folder, `/`-separated (Flyway's `script`).
    ScriptPath,
    /// The name from the file name with `_` read as spaces (sqlx's and Flyway's description).
    Description,
    /// The name from the file name as written (Atlas's description).
    Name,
    /// The tool's fingerprint of the migration ([`ToolRecord::checksum`]).
    ToolChecksum,
    /// How long the migration ran, in nanoseconds.
    ElapsedNanos,
    /// How long the migration ran, in milliseconds.
    ElapsedMillis,
    /// The version of the migration before this one in the folder, as written; NULL for the
    /// first (golang-migrate records only the current version).
    PreviousVersion,
}

/// What the rows of a [`HistoryTable::applied`] query mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppliedRows {
    /// One text column per row: a version the tool applied.
    Versions,
    /// One text column per row: the file stem of a migration the tool applied.
    FileStems,
    /// One row, (version text, dirty boolean): the tool's current version, every migration up
    /// to it applied. Dirty means a migration failed halfway; such a database is not adopted.
    CurrentVersion,
}

impl Format {
    /// Every format, in a stable order (the order of the table in the crate documentation).
    pub fn all() -> &'static [Format] {
        ALL
    }

    /// The kebab-case name used on the command line, in `pgshift.toml` and in JSON.
    pub fn name(self) -> &'static str {
        self.descriptor().name
    }

    /// Whether this tool's runner wraps each migration in a transaction by default (every
    /// format does: see [`TransactionModel::wraps_in_transaction`]); the per-file markers
    /// ([`crate::Script::no_transaction`]) are what turn it off.
    pub fn wraps_in_transaction(self) -> bool {
        self.descriptor().transaction.wraps_in_transaction()
    }

    /// Whether this tool sends each file to PostgreSQL as one query string
    /// ([`TransactionModel::OneQueryString`]) rather than statement by statement.
    pub fn sends_file_as_one_query(self) -> bool {
        self.descriptor().transaction == TransactionModel::OneQueryString
    }

    /// The names of all formats, comma separated, for error messages.
    pub(crate) fn names_list() -> String {
        ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = SourceError;

    /// Accepts the kebab-case names, case-insensitively, plus the spellings people use for the
    /// tools themselves (each descriptor's `aliases`: `migrate`, `drizzle-kit`, `sql`, ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        ALL.iter()
            .copied()
            .find(|f| f.name() == wanted)
            .or_else(|| {
                ALL.iter()
                    .copied()
                    .find(|f| f.descriptor().aliases.contains(&wanted.as_str()))
            })
            .ok_or_else(|| SourceError::UnknownFormat { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() -> Result<(), Box<dyn std::error::Error>> {
        for format in Format::all() {
            assert_eq!(format.name().parse::<Format>()?, *format);
            assert_eq!(
                serde_json::to_string(format)?,
                format!("\"{}\"", format.name())
            );
            assert_eq!(format.to_string(), format.name());
        }
        Ok(())
    }

    #[test]
    fn aliases_and_case_are_accepted() -> Result<(), SourceError> {
        assert_eq!("golang_migrate".parse::<Format>()?, Format::GolangMigrate);
        assert_eq!("Flyway".parse::<Format>()?, Format::Flyway);
        assert_eq!("node_pg_migrate".parse::<Format>()?, Format::NodePgMigrate);
        assert_eq!("migrate".parse::<Format>()?, Format::GolangMigrate);
        assert_eq!("drizzle-kit".parse::<Format>()?, Format::Drizzle);
        assert_eq!("prisma-migrate".parse::<Format>()?, Format::Prisma);
        assert_eq!("pg-migrate".parse::<Format>()?, Format::NodePgMigrate);
        assert_eq!("sql".parse::<Format>()?, Format::Plain);
        Ok(())
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = "liquibase"
            .parse::<Format>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("liquibase"), "{err}");
        assert!(err.contains("golang-migrate"), "{err}");
    }
}
