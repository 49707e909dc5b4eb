//! The migration formats pgshift reads, with their names and runner defaults.

use std::fmt;
use std::str::FromStr;

use crate::SourceError;

/// A migration tool whose directory layout pgshift can read.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Pgshift,
    Sqlx,
    GolangMigrate,
    Flyway,
    Dbmate,
    Goose,
    Diesel,
    Prisma,
    Drizzle,
    Atlas,
    NodePgMigrate,
    Plain,
}

const ALL: &[Format] = &[
    Format::Pgshift,
    Format::Sqlx,
    Format::GolangMigrate,
    Format::Flyway,
    Format::Dbmate,
    Format::Goose,
    Format::Diesel,
    Format::Prisma,
    Format::Drizzle,
    Format::Atlas,
    Format::NodePgMigrate,
    Format::Plain,
];

impl Format {
    /// Every format, in a stable order (the order of the table in the crate documentation).
    pub fn all() -> &'static [Format] {
        ALL
    }

    /// The kebab-case name used on the command line, in `pgshift.toml` and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pgshift => "pgshift",
            Format::Sqlx => "sqlx",
            Format::GolangMigrate => "golang-migrate",
            Format::Flyway => "flyway",
            Format::Dbmate => "dbmate",
            Format::Goose => "goose",
            Format::Diesel => "diesel",
            Format::Prisma => "prisma",
            Format::Drizzle => "drizzle",
            Format::Atlas => "atlas",
            Format::NodePgMigrate => "node-pg-migrate",
            Format::Plain => "plain",
        }
    }

    /// Whether this tool's runner wraps each migration in a transaction by default.
    ///
    /// golang-migrate and Prisma send a file as one multi-statement query without `BEGIN`;
    /// PostgreSQL runs such a query as one implicit transaction (and `CREATE INDEX CONCURRENTLY`
    /// fails inside it), so they count as transactional too. Drizzle runs all pending migrations
    /// in one transaction. Every format therefore answers `true`; the per-file markers
    /// ([`crate::Script::no_transaction`]) are what turn it off.
    pub fn wraps_in_transaction(self) -> bool {
        match self {
            Format::Pgshift
            | Format::Sqlx
            | Format::GolangMigrate
            | Format::Flyway
            | Format::Dbmate
            | Format::Goose
            | Format::Diesel
            | Format::Prisma
            | Format::Drizzle
            | Format::Atlas
            | Format::NodePgMigrate
            | Format::Plain => true,
        }
    }

    /// Whether this tool sends each file to PostgreSQL as one query string (golang-migrate,
    /// Prisma) rather than statement by statement inside `BEGIN`/`COMMIT`.
    ///
    /// PostgreSQL runs a query string of several statements as one implicit transaction, but a
    /// query string holding a single statement runs outside any transaction block: that is how
    /// these tools' users run `CREATE INDEX CONCURRENTLY`, alone in its migration file.
    pub fn sends_file_as_one_query(self) -> bool {
        matches!(self, Format::GolangMigrate | Format::Prisma)
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
    /// tools themselves (`migrate`, `golang_migrate`, `drizzle-kit`, `prisma-migrate`, `sql`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        if let Some(format) = ALL.iter().find(|f| f.name() == wanted) {
            return Ok(*format);
        }
        match wanted.as_str() {
            "migrate" | "golangmigrate" => Ok(Format::GolangMigrate),
            "drizzle-kit" => Ok(Format::Drizzle),
            "prisma-migrate" => Ok(Format::Prisma),
            "nodepgmigrate" | "pg-migrate" => Ok(Format::NodePgMigrate),
            "sql" => Ok(Format::Plain),
            _ => Err(SourceError::UnknownFormat { name: s.to_owned() }),
        }
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
