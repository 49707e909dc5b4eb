//! pgshift: safe, zero-downtime PostgreSQL schema changes, as a library.
//!
//! Everything the `pgshift` command does is here, in the crates this one re-exports:
//!
//! | module | crate | what it is for |
//! |---|---|---|
//! | [`sql`] | `pgshift-sql` | SQL text to statements with byte spans (the real PostgreSQL parser) |
//! | [`source`] | `pgshift-source` | migration folders in every supported tool's format |
//! | [`lint`] | `pgshift-lint` | lock knowledge, the rules of `pgshift check`, findings and their renderers |
//! | [`db`] | `pgshift-db` | connections (TLS, redaction), the throwaway cluster, catalog introspection |
//! | [`runner`] | `pgshift-runner` | history, the runner lock, safe execution, `up`/`down`/`status` |
//!
//! An application can run its migrations at start-up with the same safety and the same
//! advisory lock as the CLI, so N copies starting at once apply each migration exactly once:
//!
//! ```no_run
//! # async fn start() -> Result<(), pgshift::Error> {
//! let applied = pgshift::migrate("postgres://app@db/app", "migrations").await?;
//! println!("applied {} migrations", applied.len());
//! # Ok(()) }
//! ```

pub mod config;
pub mod embed;

pub use pgshift_db as db;
pub use pgshift_lint as lint;
pub use pgshift_runner as runner;
pub use pgshift_source as source;
pub use pgshift_sql as sql;

use std::ops::RangeInclusive;
use std::path::Path;

/// The PostgreSQL major releases pgshift supports: from the oldest its catalog queries work
/// on ([`db::OLDEST_SUPPORTED_MAJOR`]) to the release whose grammar its parser is
/// ([`sql::grammar_version`]): a newer server may accept syntax the parser does not know.
/// `pgshift --version` shows it; `scripts/fetch-pg.sh` offers the same majors (a test keeps
/// the two in step).
pub fn supported_pg_majors() -> RangeInclusive<u32> {
    let newest =
        pgshift_sql::grammar_version().map_or(pgshift_db::OLDEST_SUPPORTED_MAJOR, |v| v.major);
    pgshift_db::OLDEST_SUPPORTED_MAJOR..=newest
}

/// Errors of the convenience functions of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Db(#[from] pgshift_db::DbError),
    #[error(transparent)]
    Source(#[from] pgshift_source::SourceError),
    #[error(transparent)]
    Run(#[from] pgshift_runner::RunError),
}

/// Applies every pending migration in `dir` (any supported format, detected) to the database
/// at `url`, with pgshift's default safety settings. Returns the versions applied. An online
/// (expand/contract) migration is expanded and never contracted here: the application that
/// calls this at start-up may still have old instances running; `pgshift complete` contracts
/// it after the deploy (the migrations after it wait until then).
pub async fn migrate(
    url: &str,
    dir: impl AsRef<Path>,
) -> Result<Vec<pgshift_source::Version>, Error> {
    let url = pgshift_db::DatabaseUrl::parse(url)?;
    let set = pgshift_source::load(dir.as_ref(), None)?;
    let mut migrator =
        pgshift_runner::Migrator::connect(&url, set, pgshift_runner::RunOptions::default()).await?;
    Ok(migrator.up(None, &pgshift_runner::Silent).await?)
}
