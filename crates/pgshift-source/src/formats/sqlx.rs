//! sqlx (`sqlx migrate`): `<version>_<description>.sql` (simple, forward-only) or
//! `<version>_<description>.up.sql` / `.down.sql` (reversible). The version is the text before
//! the first `_` and must be an `i64`, as sqlx parses it; files without `_` or not ending in
//! `.sql` are ignored, as sqlx ignores them. No-transaction marker: the file *starts with*
//! `-- no-transaction` (sqlx checks the first bytes, nothing else).

use std::path::Path;

use super::{load_up_down, UpDownLayout, UpDownVersion};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, NoTransactionMarker, RecordValue, ToolRecord,
    TransactionModel,
};
use crate::ToolChecksum;
use crate::{Format, MigrationSet, SourceError};

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "sqlx",
    aliases: &[],
    title: "sqlx",
    transaction: TransactionModel::Wrapped,
    no_transaction: Some(NoTransactionMarker {
        text: "-- no-transaction",
        help: "first line `-- no-transaction`",
        example: &[(
            "1_index.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n",
        )],
    }),
    history: &[HistoryTable {
        table: "_sqlx_migrations",
        required_column: None,
        applied: "SELECT version::text, encode(checksum, 'hex') FROM _sqlx_migrations WHERE success",
        rows: AppliedRows::Versions,
        checksum: Some(ToolChecksum::Sha384),
        // sqlx's own row (sqlx-postgres/src/migrate.rs: inserted with `success` TRUE, the
        // SHA-384 of the up SQL, and the run's duration in nanoseconds).
        record: Some(ToolRecord {
            insert: "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1::text::bigint, $2::text, TRUE, decode($3::text, 'hex'), $4::text::bigint)",
            insert_params: &[
                RecordValue::Version,
                RecordValue::Description,
                RecordValue::ToolChecksum,
                RecordValue::ElapsedNanos,
            ],
            delete: "DELETE FROM _sqlx_migrations WHERE version = $1::text::bigint",
            delete_params: &[RecordValue::Version],
            checksum: Some(ToolChecksum::Sha384),
        }),
    }],
    content_marker: None,
    load,
};

static LAYOUT: UpDownLayout = UpDownLayout {
    format: Format::Sqlx,
    expected: "<version>_<description>.sql",
    version: UpDownVersion::I64 {
        reason: "sqlx needs an integer version before the first `_` (e.g. `20240101120000_add_users.sql`)",
    },
    no_transaction: has_marker,
};

fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    load_up_down(dir, &LAYOUT)
}

/// sqlx's marker: the text begins with `-- no-transaction`.
pub(crate) fn has_marker(text: &str) -> bool {
    text.starts_with("-- no-transaction")
}
