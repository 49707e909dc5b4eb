//! Adoption: on a database another tool migrated, read that tool's history table so that
//! pgshift does not run its migrations again.
//!
//! Each tool's table is one entry of [`TOOLS`]: where it lives and a query returning the
//! versions it considers applied. The versions are matched to the migrations on disk by
//! [`Version`] equality (so `0001` matches `1`, and diesel's dashed versions match).

use pgshift_source::{Format, MigrationSet, Version};
use tokio_postgres::Client;

use crate::error::RunError;

/// One tool's history table.
struct Tool {
    format: Format,
    /// `schema.table` as `to_regclass` takes it.
    table: &'static str,
    /// A column that must exist (tells golang-migrate's `schema_migrations` from dbmate's).
    required_column: Option<&'static str>,
    /// Returns one text column: the applied versions (or, for golang-migrate, the one
    /// current version: every migration up to it is applied).
    query: &'static str,
    /// The versions are names/file stems rather than versions.
    by_name: bool,
    /// The table holds only the latest version; everything up to it is applied.
    latest_only: bool,
}

const TOOLS: &[Tool] = &[
    Tool {
        format: Format::Sqlx,
        table: "_sqlx_migrations",
        required_column: None,
        query: "SELECT version::text FROM _sqlx_migrations WHERE success",
        by_name: false,
        latest_only: false,
    },
    Tool {
        format: Format::GolangMigrate,
        table: "schema_migrations",
        required_column: Some("dirty"),
        query: "SELECT CASE WHEN dirty THEN 'dirty:' ELSE '' END || version::text FROM schema_migrations",
        by_name: false,
        latest_only: true,
    },
    Tool {
        format: Format::Dbmate,
        table: "schema_migrations",
        required_column: None,
        query: "SELECT version::text FROM schema_migrations",
        by_name: false,
        latest_only: false,
    },
    Tool {
        format: Format::Flyway,
        table: "flyway_schema_history",
        required_column: None,
        query: "SELECT version FROM flyway_schema_history WHERE success AND version IS NOT NULL",
        by_name: false,
        latest_only: false,
    },
    Tool {
        format: Format::Diesel,
        table: "__diesel_schema_migrations",
        required_column: None,
        query: "SELECT version FROM __diesel_schema_migrations",
        by_name: false,
        latest_only: false,
    },
    Tool {
        format: Format::Prisma,
        table: "_prisma_migrations",
        required_column: None,
        query: "SELECT split_part(migration_name, '_', 1) FROM _prisma_migrations
                 WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL",
        by_name: false,
        latest_only: false,
    },
    Tool {
        format: Format::Goose,
        table: "goose_db_version",
        required_column: None,
        // goose appends a row per up and per down; the newest row of a version decides.
        query: "SELECT version_id::text FROM (
                    SELECT DISTINCT ON (version_id) version_id, is_applied
                      FROM goose_db_version ORDER BY version_id, id DESC) latest
                 WHERE is_applied AND version_id > 0",
        by_name: false,
        latest_only: false,
    },
    Tool {
        format: Format::Atlas,
        table: "atlas_schema_revisions.atlas_schema_revisions",
        required_column: None,
        query: "SELECT version FROM atlas_schema_revisions.atlas_schema_revisions WHERE applied = total",
        by_name: false,
        latest_only: false,
    },
    Tool {
        format: Format::Drizzle,
        table: "drizzle.__drizzle_migrations",
        required_column: None,
        // drizzle records the journal entry's `when`, which is the version pgshift reads.
        query: "SELECT created_at::text FROM drizzle.__drizzle_migrations",
        by_name: false,
        latest_only: false,
    },
    Tool {
        format: Format::NodePgMigrate,
        table: "pgmigrations",
        required_column: None,
        query: "SELECT name FROM pgmigrations",
        by_name: true,
        latest_only: false,
    },
];

/// What adoption found.
#[derive(Debug, Clone)]
pub struct Adoption {
    pub tool: &'static str,
    pub table: &'static str,
    pub versions: Vec<Version>,
}

/// Reads the history table of the tool that migrated this database, if it has one, and
/// returns the migrations of `set` it records as applied.
///
/// The set's own format is tried first, then every other tool: layouts are ambiguous (a
/// golang-migrate folder of `.up.sql` files reads as sqlx unless forced), and missing another
/// tool's history would run its migrations a second time, while a false match needs that
/// tool to have recorded exactly the versions of these files.
pub async fn find(client: &Client, set: &MigrationSet) -> Result<Option<Adoption>, RunError> {
    let ordered = TOOLS
        .iter()
        .filter(|t| t.format == set.format)
        .chain(TOOLS.iter().filter(|t| t.format != set.format));
    for tool in ordered {
        let row = client
            .query_one("SELECT to_regclass($1)::oid IS NOT NULL", &[&tool.table])
            .await
            .map_err(pgshift_db::DbError::from)?;
        if !row.get::<_, bool>(0) {
            continue;
        }
        if let Some(column) = tool.required_column {
            let has = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped)",
                    &[&tool.table, &column],
                )
                .await
                .map_err(pgshift_db::DbError::from)?;
            if !has.get::<_, bool>(0) {
                continue;
            }
        }
        let rows = client
            .query(tool.query, &[])
            .await
            .map_err(pgshift_db::DbError::from)?;
        let recorded: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get::<_, Option<String>>(0))
            .collect();
        let versions = match_versions(tool, set, &recorded)?;
        if tool.format != set.format && versions.is_empty() {
            // Another tool's table that records none of these files: not their history.
            continue;
        }
        return Ok(Some(Adoption {
            tool: tool.format.name(),
            table: tool.table,
            versions,
        }));
    }
    Ok(None)
}

fn match_versions(
    tool: &Tool,
    set: &MigrationSet,
    recorded: &[String],
) -> Result<Vec<Version>, RunError> {
    if tool.by_name {
        return Ok(set
            .migrations
            .iter()
            .filter(|m| {
                recorded.iter().any(|name| {
                    m.up.path
                        .file_stem()
                        .is_some_and(|stem| stem.to_string_lossy() == name.as_str())
                })
            })
            .map(|m| m.version.clone())
            .collect());
    }
    if tool.latest_only {
        let Some(current) = recorded.first() else {
            return Ok(Vec::new());
        };
        if let Some(version) = current.strip_prefix("dirty:") {
            return Err(RunError::Usage(format!(
                "golang-migrate's schema_migrations says the database is dirty at version {version}: a migration failed halfway. \
                 Repair the schema by hand, then tell pgshift where it stands with `pgshift baseline {version}`."
            )));
        }
        let Some(current) = Version::parse(current) else {
            return Ok(Vec::new());
        };
        return Ok(set
            .migrations
            .iter()
            .filter(|m| m.version <= current)
            .map(|m| m.version.clone())
            .collect());
    }
    let recorded: Vec<Version> = recorded.iter().filter_map(|v| Version::parse(v)).collect();
    Ok(set
        .migrations
        .iter()
        .filter(|m| recorded.contains(&m.version))
        .map(|m| m.version.clone())
        .collect())
}
