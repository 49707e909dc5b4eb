//! `[run] record_in_old_tool`: during a gradual switch, each migration pgshift applies is
//! also written into the old tool's own history table (and removed when pgshift reverts it),
//! in that tool's own format, so that the old tool, run afterwards, does not apply it again.
//!
//! What the tool writes is data in its [`FormatDescriptor`](pgshift_source::FormatDescriptor)
//! ([`HistoryTable::record`]); this module only binds the values and runs the statement, in
//! the transaction that writes pgshift's own history row. Only the table of the migrations'
//! own format is written, and only when it exists: the tool made it, so it is that tool's.

use std::time::Instant;

use pgshift_db::DbError;
use pgshift_source::{
    HistoryTable, Migration, MigrationSet, RecordValue, ToolChecksum, ToolRecord,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use crate::error::RunError;
use crate::history;

/// The old tool's history table that pgshift writes into.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OldTool {
    pub(crate) tool: &'static str,
    pub(crate) table: &'static str,
    record: ToolRecord,
    checksum: Option<ToolChecksum>,
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

impl OldTool {
    /// The table of `set`'s format that pgshift can write, when it exists in this database.
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
            let exists = client
                .query_one("SELECT to_regclass($1)::oid IS NOT NULL", &[&table.table])
                .await
                .map_err(DbError::from)?
                .get::<_, bool>(0);
            if exists {
                return Ok(Ok(OldTool {
                    tool,
                    table: table.table,
                    record: *record,
                    checksum: table.checksum,
                }));
            }
        }
        Ok(Err(NotWritten::NoTable {
            tool,
            table: first.0.table,
        }))
    }

    /// The row that records `m` as applied.
    pub(crate) fn applied(&self, m: &Migration) -> OldToolRow {
        let checksum = self.checksum.map(|c| c.of(m.up.sql())).unwrap_or_default();
        self.row(true, m.version.as_str(), &m.name, &m.up.path, checksum)
    }

    /// The statement that removes the reverted migration `version`, whose up file was `path`.
    pub(crate) fn reverted(&self, version: &str, name: &str, path: &std::path::Path) -> OldToolRow {
        self.row(false, version, name, path, Vec::new())
    }

    /// The insert (`applied`) or the delete, its parameters bound to the migration's values.
    fn row(
        &self,
        applied: bool,
        version: &str,
        name: &str,
        path: &std::path::Path,
        checksum: Vec<u8>,
    ) -> OldToolRow {
        let (statement, params) = if applied {
            (self.record.insert, self.record.insert_params)
        } else {
            (self.record.delete, self.record.delete_params)
        };
        let values = params
            .iter()
            .map(|p| match p {
                RecordValue::Version => Value::Text(version.to_owned()),
                RecordValue::FileStem => Value::Text(file_stem(path)),
                RecordValue::Description => Value::Text(name.replace('_', " ")),
                RecordValue::ToolChecksum => Value::Bytes(checksum.clone()),
                RecordValue::ElapsedNanos => Value::ElapsedNanos,
            })
            .collect();
        OldToolRow {
            tool: self.tool,
            table: self.table,
            statement,
            values,
            version: version.to_owned(),
            applied,
        }
    }
}

fn file_stem(path: &std::path::Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Bytes(Vec<u8>),
    /// Filled in when the row is written: the run's duration so far.
    ElapsedNanos,
}

/// One statement on the old tool's table, with its values bound.
#[derive(Debug, Clone)]
pub(crate) struct OldToolRow {
    pub(crate) tool: &'static str,
    pub(crate) table: &'static str,
    statement: &'static str,
    values: Vec<Value>,
    pub(crate) version: String,
    /// An insert (the migration applied) rather than a delete (reverted).
    pub(crate) applied: bool,
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

    /// Runs the statement; `started` is when the migration started (for a tool that records
    /// how long it ran).
    pub(crate) async fn write(&self, client: &Client, started: Instant) -> Result<(), DbError> {
        let elapsed = i64::try_from(started.elapsed().as_nanos())
            .unwrap_or(i64::MAX)
            .to_string();
        let params: Vec<&(dyn ToSql + Sync)> = self
            .values
            .iter()
            .map(|v| -> &(dyn ToSql + Sync) {
                match v {
                    Value::Text(t) => t,
                    Value::Bytes(b) => b,
                    Value::ElapsedNanos => &elapsed,
                }
            })
            .collect();
        if let Err(e) = client.execute(self.statement, &params).await {
            // The server's message alone ("null value in column ...") would read as the
            // migration's own statement failing.
            let mut error = DbError::from(e);
            if let DbError::Query(q) = &mut error {
                let what = if self.applied {
                    "recording it as applied in"
                } else {
                    "removing it from"
                };
                q.hint = Some(format!(
                    "this failed while {what} {tool}'s {table} ([run] record_in_old_tool), in the same transaction as the migration, so neither was kept. {tool}'s table is not as {tool} makes it: repair it, or turn record_in_old_tool off and remove {tool} from every deploy path.",
                    tool = self.tool,
                    table = self.table,
                ));
            }
            return Err(error);
        }
        // What pgshift remembers of the old tool's rows follows (the table exists: see
        // `Migrator::find_old_tool`): a row pgshift removed that shows up again later was
        // written by the old tool, and is adopted, not run twice.
        if self.applied {
            history::mark_foreign_seen(client, self.tool, &self.version).await
        } else {
            history::forget_foreign_seen(client, self.tool, &self.version).await
        }?;
        Ok(())
    }
}
