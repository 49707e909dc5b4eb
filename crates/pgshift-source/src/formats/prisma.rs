//! Prisma Migrate: `<timestamp>_<name>/migration.sql`, one directory per migration, next to a
//! `migration_lock.toml`. Prisma has no down migrations and no no-transaction marker (it sends a
//! file as one multi-statement query). Directories without `migration.sql` are listed as
//! skipped.

use std::path::Path;

use super::{finish, version_of, whole};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, RecordValue, ToolRecord, TransactionModel,
};
use crate::read::{list, read_text};
use crate::ToolChecksum;
use crate::{Format, Migration, MigrationSet, SourceError};

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "prisma",
    aliases: &["prisma-migrate"],
    title: "Prisma",
    transaction: TransactionModel::OneQueryString,
    no_transaction: None,
    history: &[HistoryTable {
        table: "_prisma_migrations",
        required_column: None,
        // Finished and not rolled back: a failed or rolled-back row is not applied.
        applied: "SELECT split_part(migration_name, '_', 1), checksum FROM _prisma_migrations
                   WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL",
        rows: AppliedRows::Versions,
        checksum: Some(ToolChecksum::Sha256Hex),
        // Prisma's row once a migration succeeded (schema-engine's record_migration_started,
        // record_successful_step and record_migration_finished, as one insert). Prisma has no
        // down: a migration pgshift reverts loses its row, so Prisma would apply it again.
        record: Some(ToolRecord {
            insert: "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count) VALUES (gen_random_uuid()::text, $1::text, $2::text, now(), now(), 1)",
            insert_params: &[RecordValue::ToolChecksum, RecordValue::DirName],
            delete: "DELETE FROM _prisma_migrations WHERE migration_name = $1::text",
            delete_params: &[RecordValue::DirName],
            checksum: Some(ToolChecksum::Sha256Hex),
        }),
    }],
    content_marker: None,
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let listing = list(dir)?;
    let mut skipped = listing.skipped_names();
    for entry in listing.files() {
        if entry.name != "migration_lock.toml" {
            skipped.push((
                entry.path.clone(),
                "a file; Prisma migrations are directories holding migration.sql".to_owned(),
            ));
        }
    }
    let mut migrations = Vec::new();
    for entry in listing.dirs() {
        let sql = entry.path.join("migration.sql");
        if !sql.is_file() {
            skipped.push((
                entry.path.clone(),
                "no migration.sql in this directory".to_owned(),
            ));
            continue;
        }
        let (raw_version, name) = entry
            .name
            .split_once('_')
            .unwrap_or((entry.name.as_str(), ""));
        let version = version_of(
            &entry.path,
            raw_version,
            "Prisma migration directories are named <timestamp>_<name>",
        )?;
        let text = read_text(&sql)?;
        migrations.push(Migration {
            version,
            name: name.to_owned(),
            up: whole(&sql, &text, false),
            down: None,
        });
    }
    finish(Format::Prisma, dir, migrations, Vec::new(), skipped)
}
