//! Adoption: on a database another tool migrated, read that tool's history table so that
//! pgshift does not run its migrations again.
//!
//! Which tables each tool keeps, and the query that returns what it applied, are data in the
//! tool's [`FormatDescriptor`](pgshift_source::FormatDescriptor) (`history`); this module runs
//! them. The versions are matched to the migrations on disk by [`Version`] equality (so `0001`
//! matches `1`, and diesel's dashed versions match).

use pgshift_source::{AppliedRows, Format, HistoryTable, MigrationSet, ToolChecksum, Version};
use tokio_postgres::Client;

use crate::error::RunError;

/// What adoption found.
#[derive(Debug, Clone)]
pub struct Adoption {
    pub tool: &'static str,
    pub table: &'static str,
    pub versions: Vec<Version>,
    /// Of `versions`, those whose file no longer has the checksum the tool recorded when it
    /// applied it (for tools that record one): edited since, so not what ran.
    pub edited: Vec<Version>,
    /// The tool records only its current version, every migration up to it applied
    /// (golang-migrate): it moves strictly upwards, so only versions above the highest one
    /// pgshift has seen there are new.
    pub cumulative: bool,
}

/// Reads the history table of the tool that migrated this database, if it has one, and
/// returns the migrations of `set` it records as applied.
///
/// The set's own format is tried first, then every other tool: layouts are ambiguous (a
/// golang-migrate folder of `.up.sql` files reads as sqlx unless forced), and missing another
/// tool's history would run its migrations a second time, while a false match needs that
/// tool to have recorded exactly the versions of these files.
pub async fn find(client: &Client, set: &MigrationSet) -> Result<Option<Adoption>, RunError> {
    // Collected: an iterator of closures held across the awaits below would keep the future
    // from being `Send`.
    let ordered: Vec<(Format, &HistoryTable)> = std::iter::once(set.format)
        .chain(Format::all().iter().copied().filter(|f| *f != set.format))
        .flat_map(|format| format.descriptor().history.iter().map(move |t| (format, t)))
        .collect();
    // Which of the tools' tables exist, in one round trip (this runs before every command).
    let names: Vec<&str> = ordered.iter().map(|(_, t)| t.table).collect();
    let existing: Vec<bool> = client
        .query_typed(
            "SELECT to_regclass(n) IS NOT NULL FROM unnest($1::text[]) WITH ORDINALITY u(n, i) ORDER BY i",
            &[(&names, tokio_postgres::types::Type::TEXT_ARRAY)],
        )
        .await
        .map_err(pgshift_db::DbError::from)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for ((format, table), _) in ordered
        .into_iter()
        .zip(existing)
        .filter(|(_, exists)| *exists)
    {
        if table.required_column.is_some() && !has_required_column(client, table).await? {
            continue;
        }
        let rows = client
            .query(table.applied, &[])
            .await
            .map_err(pgshift_db::DbError::from)?;
        let mut recorded = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(value) = row.get::<_, Option<String>>(0) else {
                continue;
            };
            let dirty = table.rows == AppliedRows::CurrentVersion
                && row
                    .try_get::<_, Option<bool>>(1)
                    .map_err(pgshift_db::DbError::from)?
                    .unwrap_or(false);
            let checksum = match table.checksum {
                Some(_) => row
                    .try_get::<_, Option<String>>(1)
                    .map_err(pgshift_db::DbError::from)?,
                None => None,
            };
            recorded.push(Recorded {
                value,
                dirty,
                checksum,
            });
        }
        let versions = match_versions(format, table, set, &recorded)?;
        if format != set.format && versions.is_empty() {
            // Another tool's table that records none of these files: not their history.
            continue;
        }
        let edited = match table.checksum {
            Some(kind) => edited(kind, set, &versions, &recorded),
            None => Vec::new(),
        };
        return Ok(Some(Adoption {
            tool: format.name(),
            table: table.table,
            versions,
            edited,
            cumulative: table.rows == AppliedRows::CurrentVersion,
        }));
    }
    Ok(None)
}

/// Whether `table` exists with its [`HistoryTable::required_column`] (false without one).
pub(crate) async fn has_required_column(
    client: &Client,
    table: &HistoryTable,
) -> Result<bool, RunError> {
    let Some(column) = table.required_column else {
        return Ok(false);
    };
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped)",
            &[&table.table, &column],
        )
        .await
        .map_err(pgshift_db::DbError::from)?
        .get::<_, bool>(0))
}

/// Whether `table`'s `applied` query returns nothing: the tool has recorded no migration.
pub(crate) async fn records_nothing(
    client: &Client,
    table: &HistoryTable,
) -> Result<bool, RunError> {
    Ok(client
        .query(table.applied, &[])
        .await
        .map_err(pgshift_db::DbError::from)?
        .is_empty())
}

/// Of the versions `found` records, those that can be new to pgshift given the versions it has
/// `seen` in that table: all of them, except for a tool that keeps only its current version
/// (golang-migrate), which applies strictly upwards, so that nothing at or below the highest
/// version seen there is new (a late file, or one pgshift has not applied yet, is not the
/// tool's).
pub(crate) fn new_versions(found: &Adoption, seen: &[Version]) -> Vec<Version> {
    match seen.iter().max().filter(|_| found.cumulative) {
        Some(highest) => found
            .versions
            .iter()
            .filter(|v| *v > highest)
            .cloned()
            .collect(),
        None => found.versions.clone(),
    }
}

/// One row of a history table's `applied` query.
struct Recorded {
    /// A version or a file stem, as the table's [`AppliedRows`] says.
    value: String,
    /// The tool stopped halfway at this version ([`AppliedRows::CurrentVersion`] only).
    dirty: bool,
    /// The tool's fingerprint of what it applied, where it records one, as text.
    checksum: Option<String>,
}

/// Of the adopted `versions`, those whose file no longer has the fingerprint the tool
/// recorded. Atlas's fingerprint runs over every earlier file too, so an edit shows in every
/// later one: only the first file that differs is the edited one.
fn edited(
    kind: ToolChecksum,
    set: &MigrationSet,
    versions: &[Version],
    recorded: &[Recorded],
) -> Vec<Version> {
    let computed = kind.of_set(set);
    let mut edited = Vec::new();
    for (m, now) in set.migrations.iter().zip(&computed) {
        if !versions.contains(&m.version) {
            continue;
        }
        let differs = recorded.iter().any(|r| {
            Version::parse(&r.value).is_some_and(|rv| rv == m.version)
                && r.checksum
                    .as_deref()
                    .is_some_and(|c| !kind.matches(c, now, m))
        });
        if differs {
            edited.push(m.version.clone());
            if kind == ToolChecksum::AtlasSum {
                break;
            }
        }
    }
    edited
}

fn match_versions(
    format: Format,
    table: &HistoryTable,
    set: &MigrationSet,
    recorded: &[Recorded],
) -> Result<Vec<Version>, RunError> {
    match table.rows {
        AppliedRows::FileStems => Ok(set
            .migrations
            .iter()
            .filter(|m| {
                recorded.iter().any(|r| {
                    m.up.path
                        .file_stem()
                        .is_some_and(|stem| stem.to_string_lossy() == r.value.as_str())
                })
            })
            .map(|m| m.version.clone())
            .collect()),
        AppliedRows::CurrentVersion => {
            let Some(current) = recorded.first() else {
                return Ok(Vec::new());
            };
            if current.dirty {
                let (tool, table, version) = (format.name(), table.table, &current.value);
                return Err(RunError::Usage(format!(
                    "{tool}'s {table} says the database is dirty at version {version}: a migration failed halfway. \
                     Repair the schema by hand, then tell pgshift where it stands with `pgshift baseline {version}`."
                )));
            }
            let Some(current) = Version::parse(&current.value) else {
                return Ok(Vec::new());
            };
            Ok(set
                .migrations
                .iter()
                .filter(|m| m.version <= current)
                .map(|m| m.version.clone())
                .collect())
        }
        AppliedRows::Versions => {
            let recorded: Vec<Version> = recorded
                .iter()
                .filter_map(|r| Version::parse(&r.value))
                .collect();
            Ok(set
                .migrations
                .iter()
                .filter(|m| recorded.contains(&m.version))
                .map(|m| m.version.clone())
                .collect())
        }
    }
}

/// The history as a reader should see it: pgshift's own rows, plus a row for each migration
/// another tool applied that the next `up` or `down` will record as adopted (before the first
/// `up`, every migration that tool applied). Reads only; `status` and `plan` use it so that
/// they neither list applied migrations as pending nor plan statements that already ran. An
/// unreadable other history (a dirty golang-migrate database) leaves pgshift's rows alone: the
/// next `up` reports it.
pub async fn history_view(
    client: &Client,
    set: &MigrationSet,
) -> Result<Vec<crate::history::HistoryRow>, RunError> {
    use crate::history::{self, HistoryRow, RowState};
    let has_history = history::exists(client).await?;
    let mut rows = history::read(client).await?;
    let Ok(Some(found)) = find(client, set).await else {
        return Ok(rows);
    };
    let seen: Vec<Version> = if !has_history {
        Vec::new()
    } else if client
        .query_one(
            "SELECT to_regclass('pgshift.foreign_history') IS NOT NULL",
            &[],
        )
        .await
        .map_err(pgshift_db::DbError::from)?
        .get::<_, bool>(0)
    {
        history::foreign_seen(client, found.tool)
            .await?
            .iter()
            .filter_map(|v| Version::parse(v))
            .collect()
    } else {
        // A history that predates remembering the other tool's rows: the next run decides.
        return Ok(rows);
    };
    let mut found = found;
    found.versions = new_versions(&found, &seen);
    for v in &found.versions {
        let recorded = rows
            .iter()
            .any(|r| Version::parse(&r.version).is_some_and(|rv| rv == *v));
        if recorded || seen.contains(v) {
            continue;
        }
        let Some(m) = set.find(v) else { continue };
        rows.push(HistoryRow {
            version: m.version.to_string(),
            name: m.name.clone(),
            checksum: m.checksum(),
            state: RowState::Adopted,
            progress: 1,
            units: 1,
            applied_at: String::new(),
            applied_by: format!(
                "{} ({}); pgshift records it on the next up",
                found.tool, found.table
            ),
            duration_ms: None,
            down_sql: m.recorded_down(),
            path: Some(m.up.path.display().to_string()),
            inflight: None,
            unit_digests: Vec::new(),
        });
    }
    Ok(rows)
}
