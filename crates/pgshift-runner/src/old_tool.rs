//! `[run] record_in_old_tool`: during a gradual switch, each migration pgshift applies is
//! also written into the old tool's own history table (and removed when pgshift reverts it),
//! in that tool's own format, so that the old tool, run afterwards, does not apply it again.
//!
//! What the tool writes is data in its [`FormatDescriptor`](pgshift_source::FormatDescriptor)
//! ([`HistoryTable::record`]); this module only binds the values and runs the statements, in
//! the transaction that writes pgshift's own history row. Only the table of the migrations'
//! own format (or of the tool whose history holds these files) is written, and only when it
//! exists: the tool made it, so it is that tool's. The table is named with the schema it was
//! found in, so a migration that changes `search_path` does not send the row elsewhere.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use pgshift_db::DbError;
use pgshift_source::{HistoryTable, Migration, MigrationSet, RecordValue, ToolRecord};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use crate::error::RunError;
use crate::history;

/// The old tool's history table that pgshift writes into.
#[derive(Debug, Clone)]
pub(crate) struct OldTool {
    pub(crate) tool: &'static str,
    pub(crate) table: &'static str,
    record: ToolRecord,
    /// The record's insert and delete, the table named with its schema.
    insert: Arc<str>,
    delete: Arc<str>,
}

/// Why nothing is written into the old tool's table although the mode is on.
pub(crate) enum NotWritten {
    /// pgshift does not know how this format's tool writes its history.
    Unsupported { tool: &'static str },
    /// The tool's table is not in this database.
    NoTable {
        tool: &'static str,
        table: &'static str,
    },
}

/// What a row of the old tool's table is made of: the migration's file and where it lies.
struct Facts<'a> {
    version: &'a str,
    name: &'a str,
    /// The up file.
    path: &'a Path,
    /// The migrations folder.
    dir: &'a Path,
    /// The migration before this one in the folder, if any.
    previous: Option<&'a str>,
    /// The tool's fingerprint of the file, when the tool records one.
    checksum: String,
}

impl OldTool {
    /// The table of `set`'s format that pgshift can write, when it exists in this database;
    /// else, for a layout two tools share (golang-migrate's `.up.sql` files read as sqlx), the
    /// table of the tool whose history records these files, or whose table is unmistakably
    /// its own (a column only that tool has) and records nothing yet.
    pub(crate) async fn find(
        client: &Client,
        set: &MigrationSet,
    ) -> Result<Result<OldTool, NotWritten>, RunError> {
        let tool = set.format.name();
        let writable: Vec<(&HistoryTable, ToolRecord)> = set
            .format
            .descriptor()
            .history
            .iter()
            .filter_map(|t| t.record.map(|r| (t, r)))
            .collect();
        let Some(first) = writable.first() else {
            return Ok(Err(NotWritten::Unsupported { tool }));
        };
        for (table, record) in &writable {
            if let Some(found) = OldTool::at(client, tool, table, *record).await? {
                return Ok(Ok(found));
            }
        }
        let adopted = crate::adopt::find(client, set).await?;
        for format in pgshift_source::Format::all() {
            for table in format.descriptor().history {
                let Some(record) = table.record else { continue };
                // Recording these files, or made by that tool (its own column) and still empty:
                // another application's table that records other files is not touched.
                let theirs = adopted
                    .as_ref()
                    .is_some_and(|a| a.tool == format.name() && a.table == table.table)
                    || (table.required_column.is_some()
                        && crate::adopt::has_required_column(client, table).await?
                        && crate::adopt::records_nothing(client, table).await?);
                if !theirs {
                    continue;
                }
                if let Some(found) = OldTool::at(client, format.name(), table, record).await? {
                    return Ok(Ok(found));
                }
            }
        }
        Ok(Err(NotWritten::NoTable {
            tool,
            table: first.0.table,
        }))
    }

    /// `table` of `tool`, when it exists, with its statements naming it with its schema.
    async fn at(
        client: &Client,
        tool: &'static str,
        table: &HistoryTable,
        record: ToolRecord,
    ) -> Result<Option<OldTool>, RunError> {
        let schema: Option<String> = client
            .query_opt(
                "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = to_regclass($1)",
                &[&table.table],
            )
            .await
            .map_err(DbError::from)?
            .map(|r| r.get(0));
        let Some(schema) = schema else {
            return Ok(None);
        };
        Ok(Some(OldTool {
            tool,
            table: table.table,
            record,
            insert: qualify(record.insert, table.table, &schema).into(),
            delete: qualify(record.delete, table.table, &schema).into(),
        }))
    }

    /// The statements that leave the tool's table recording `m`, a migration of `set`, as
    /// applied exactly once: a row it may hold already (a failed attempt the tool recorded, an
    /// earlier record) removed, then the row written.
    pub(crate) fn applied(&self, set: &MigrationSet, m: &Migration) -> OldToolRow {
        let checksum = self
            .record
            .checksum
            .map(|c| c.of(set, m))
            .unwrap_or_default();
        let facts = Facts {
            version: m.version.as_str(),
            name: &m.name,
            path: &m.up.path,
            dir: &set.dir,
            previous: previous(set, m.version.as_str()),
            checksum,
        };
        let mut row = self.row(false, &facts);
        let insert = self.row(true, &facts);
        row.steps.extend(insert.steps);
        OldToolRow {
            applied: true,
            also_seen: None,
            ..row
        }
    }

    /// The statement that removes the reverted migration `version` of `set`, whose up file
    /// was `path`.
    pub(crate) fn reverted(
        &self,
        version: &str,
        name: &str,
        path: &Path,
        set: &MigrationSet,
    ) -> OldToolRow {
        self.row(
            false,
            &Facts {
                version,
                name,
                path,
                dir: &set.dir,
                previous: previous(set, version),
                checksum: String::new(),
            },
        )
    }

    /// The insert (`applied`) or the delete, its parameters bound to the migration's values.
    fn row(&self, applied: bool, facts: &Facts<'_>) -> OldToolRow {
        let (statement, params) = if applied {
            (self.insert.clone(), self.record.insert_params)
        } else {
            (self.delete.clone(), self.record.delete_params)
        };
        let values = params
            .iter()
            .map(|p| match p {
                RecordValue::Version => Value::Text(facts.version.to_owned()),
                RecordValue::VersionDotted => Value::Text(facts.version.replace('_', ".")),
                RecordValue::VersionUndashed => Value::Text(facts.version.replace('-', "")),
                RecordValue::FileStem => Value::Text(file_stem(facts.path)),
                RecordValue::DirName => Value::Text(
                    facts
                        .path
                        .parent()
                        .and_then(Path::file_name)
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                RecordValue::ScriptPath => Value::Text(
                    facts
                        .path
                        .strip_prefix(facts.dir)
                        .unwrap_or(facts.path)
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                ),
                RecordValue::Description => Value::Text(facts.name.replace('_', " ")),
                RecordValue::Name => Value::Text(facts.name.to_owned()),
                RecordValue::ToolChecksum => Value::Text(facts.checksum.clone()),
                RecordValue::ElapsedNanos => Value::ElapsedNanos,
                RecordValue::ElapsedMillis => Value::ElapsedMillis,
                RecordValue::PreviousVersion => Value::Maybe(facts.previous.map(str::to_owned)),
            })
            .collect();
        // A tool that keeps only its current version (golang-migrate) now says the one before
        // is applied: remembered as seen, it is not adopted from there (pgshift runs it if it
        // is pending).
        let also_seen = (!applied && params.contains(&RecordValue::PreviousVersion))
            .then(|| facts.previous.map(str::to_owned))
            .flatten();
        OldToolRow {
            tool: self.tool,
            table: self.table,
            steps: vec![(statement, values)],
            version: facts.version.to_owned(),
            applied,
            also_seen,
        }
    }
}

/// `statement` with every mention of the unqualified `table` named `schema.table`.
fn qualify(statement: &str, table: &str, schema: &str) -> String {
    if table.contains('.') {
        return statement.to_owned();
    }
    let qualified = format!("{}.{table}", pgshift_sql::ident::quote_ident(schema));
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "_.\"$".contains(c));
    let mut out = String::with_capacity(statement.len() + 16);
    let mut rest = statement;
    while let Some(at) = rest.find(table) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + table.len()..].chars().next();
        out.push_str(&rest[..at]);
        if word(before) || word(after) {
            out.push_str(table);
        } else {
            out.push_str(&qualified);
        }
        rest = &rest[at + table.len()..];
    }
    out.push_str(rest);
    out
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The version of the migration before `version` in `set`.
fn previous<'a>(set: &'a MigrationSet, version: &str) -> Option<&'a str> {
    let version = pgshift_source::Version::parse(version)?;
    set.migrations
        .iter()
        .rev()
        .find(|m| m.version < version)
        .map(|m| m.version.as_str())
}

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    /// Text or NULL.
    Maybe(Option<String>),
    /// Filled in when the row is written: the run's duration so far.
    ElapsedNanos,
    ElapsedMillis,
}

/// The statements on the old tool's table for one migration, with their values bound.
#[derive(Debug, Clone)]
pub(crate) struct OldToolRow {
    pub(crate) tool: &'static str,
    pub(crate) table: &'static str,
    steps: Vec<(Arc<str>, Vec<Value>)>,
    pub(crate) version: String,
    /// The migration recorded as applied rather than removed (reverted).
    pub(crate) applied: bool,
    /// A version the table now records as applied besides this one (see [`OldTool::row`]).
    also_seen: Option<String>,
}

impl OldToolRow {
    /// Tells the user what was written, once it is committed.
    pub(crate) fn announce(&self, observer: &dyn crate::event::Observer) {
        let done = if self.applied {
            "recorded as applied in"
        } else {
            "removed from"
        };
        observer.event(&crate::event::Event::Info(format!(
            "  {} {done} {}'s {} (record_in_old_tool)",
            self.version, self.tool, self.table
        )));
    }

    /// Runs the statements; `started` is when the migration started (for a tool that records
    /// how long it ran).
    pub(crate) async fn write(&self, client: &Client, started: Instant) -> Result<(), DbError> {
        let nanos = i64::try_from(started.elapsed().as_nanos())
            .unwrap_or(i64::MAX)
            .to_string();
        let millis = i32::try_from(started.elapsed().as_millis())
            .unwrap_or(i32::MAX)
            .to_string();
        for (statement, values) in &self.steps {
            let params: Vec<&(dyn ToSql + Sync)> = values
                .iter()
                .map(|v| -> &(dyn ToSql + Sync) {
                    match v {
                        Value::Text(t) => t,
                        Value::Maybe(t) => t,
                        Value::ElapsedNanos => &nanos,
                        Value::ElapsedMillis => &millis,
                    }
                })
                .collect();
            if let Err(e) = client.execute(&**statement, &params).await {
                return Err(self.explained(e));
            }
        }
        // What pgshift remembers of the old tool's rows follows (the table exists: see
        // `Migrator::find_old_tool`): a row pgshift removed that shows up again later was
        // written by the old tool, and is adopted, not run twice.
        if self.applied {
            history::mark_foreign_seen(client, self.tool, &self.version).await?;
        } else {
            history::forget_foreign_seen(client, self.tool, &self.version).await?;
        }
        if let Some(v) = &self.also_seen {
            history::mark_foreign_seen(client, self.tool, v).await?;
        }
        Ok(())
    }

    /// The server's error, with what pgshift was doing: its message alone ("null value in
    /// column ...") would read as the migration's own statement failing.
    fn explained(&self, e: tokio_postgres::Error) -> DbError {
        {
            let mut error = DbError::from(e);
            if let DbError::Query(q) = &mut error {
                let what = if self.applied {
                    "recording it as applied in"
                } else {
                    "removing it from"
                };
                q.hint = Some(format!(
                    "this failed while {what} {tool}'s {table} ([run] record_in_old_tool), in the same transaction as the migration, so neither was kept. Either {tool} wrote to its table at the same moment (run pgshift again), or the table is not as {tool} makes it: repair it, or turn record_in_old_tool off and remove {tool} from every deploy path.",
                    tool = self.tool,
                    table = self.table,
                ));
            }
            error
        }
    }
}

/// Writes the old tool's rows, in order.
pub(crate) async fn write_rows(client: &Client, rows: &[OldToolRow]) -> Result<(), RunError> {
    let started = Instant::now();
    for row in rows {
        row.write(client, started).await?;
    }
    Ok(())
}

/// Tells the user what the old tool's table now says, once it is committed.
pub(crate) fn announce(rows: &[OldToolRow], observer: &dyn crate::event::Observer) {
    for row in rows {
        row.announce(observer);
    }
}

#[cfg(test)]
mod tests {
    use super::qualify;

    #[test]
    fn qualify_names_every_mention_of_the_table_and_nothing_else() {
        assert_eq!(
            qualify(
                "WITH gone AS (DELETE FROM tool_history WHERE v = 1) INSERT INTO tool_history (v) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM tool_history)",
                "tool_history",
                "app",
            ),
            "WITH gone AS (DELETE FROM \"app\".tool_history WHERE v = 1) INSERT INTO \"app\".tool_history (v) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM \"app\".tool_history)"
        );
        assert_eq!(
            qualify("DELETE FROM old_tool_history", "tool_history", "app"),
            "DELETE FROM old_tool_history"
        );
        assert_eq!(
            qualify("DELETE FROM t", "t", "My Schema"),
            "DELETE FROM \"My Schema\".t"
        );
        assert_eq!(
            qualify("DELETE FROM drizzle.x", "drizzle.x", "public"),
            "DELETE FROM drizzle.x"
        );
    }
}
