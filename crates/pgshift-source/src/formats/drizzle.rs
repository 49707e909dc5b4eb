//! Drizzle Kit: `<NNNN>_<name>.sql` files whose order and identity come from
//! `meta/_journal.json` (`entries[].idx`, `.tag` = file stem, `.when` = creation time in
//! milliseconds), not from the file listing. Statements are separated by
//! `--> statement-breakpoint`, a comment the SQL parser skips, so the text is left alone.
//!
//! The version of a Drizzle migration is its journal `when`: that is the value drizzle-orm's
//! migrator records (`__drizzle_migrations.created_at`) and compares to decide what is pending.
//! Journal entries must therefore have increasing `when` in `idx` order; a journal where they do
//! not would make Drizzle skip migrations, and is reported. SQL files that the journal does not
//! list are never run by Drizzle and are listed as skipped. Drizzle has no down migrations and
//! runs all pending migrations in one transaction.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{finish, leading_number, whole};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, RecordValue, ToolRecord, TransactionModel,
};
use crate::read::{list, read_text};
use crate::ToolChecksum;
use crate::{Format, Migration, MigrationSet, SourceError, Version};

/// Where the journal lives, relative to the migration directory.
pub(crate) const JOURNAL: &str = "meta/_journal.json";

#[derive(serde::Deserialize)]
struct Journal {
    entries: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    idx: u64,
    when: u64,
    tag: String,
}

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "drizzle",
    aliases: &["drizzle-kit"],
    title: "Drizzle",
    // All pending migrations in one transaction.
    transaction: TransactionModel::Wrapped,
    no_transaction: None,
    history: &[HistoryTable {
        table: "drizzle.__drizzle_migrations",
        required_column: None,
        // drizzle records the journal entry's `when`, which is the version pgshift reads.
        applied: "SELECT created_at::text FROM drizzle.__drizzle_migrations",
        rows: AppliedRows::Versions,
        // Drizzle records a hash but never compares it: an edited file is Drizzle's to accept.
        checksum: None,
        // drizzle-orm's migrator (pg-core dialect `migrate`): the file's SHA-256 and the
        // journal's `when`. It runs what is newer than the newest `created_at`, so a reverted
        // migration's row goes.
        record: Some(ToolRecord {
            insert: "INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ($1::text, $2::text::bigint)",
            insert_params: &[RecordValue::ToolChecksum, RecordValue::Version],
            delete: "DELETE FROM drizzle.__drizzle_migrations WHERE created_at = $1::text::bigint",
            delete_params: &[RecordValue::Version],
            checksum: Some(ToolChecksum::Sha256Hex),
        }),
    }],
    content_marker: None,
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let journal_path = dir.join(JOURNAL);
    let entries = read_journal(&journal_path)?;
    let listing = list(dir)?;
    let mut skipped = listing.skipped_names();
    let mut listed = BTreeSet::new();
    let mut migrations = Vec::with_capacity(entries.len());
    for entry in &entries {
        let file_name = format!("{}.sql", entry.tag);
        let path = dir.join(&file_name);
        if !listing.has_file(&file_name) {
            return Err(journal_error(
                &journal_path,
                format!(
                    "entry {} (`{}`) has no file {}",
                    entry.idx,
                    entry.tag,
                    path.display()
                ),
                "restore the file, or remove the entry with `drizzle-kit drop`",
            ));
        }
        if !listed.insert(file_name) {
            return Err(journal_error(
                &journal_path,
                format!("entry {} repeats the tag `{}`", entry.idx, entry.tag),
                "each migration file must appear once in the journal",
            ));
        }
        let text = read_text(&path)?;
        let name = leading_number(&entry.tag).map_or(entry.tag.as_str(), |(_, name)| name);
        let version = Version::parse(&entry.when.to_string()).unwrap_or_else(Version::zero);
        migrations.push(Migration {
            version,
            name: name.to_owned(),
            up: whole(&path, &text, false),
            down: None,
        });
    }
    for file in listing.files() {
        if file.name.ends_with(".sql") && !listed.contains(&file.name) {
            skipped.push((
                file.path.clone(),
                format!("not listed in {JOURNAL}, so Drizzle never runs it"),
            ));
        }
    }
    finish(Format::Drizzle, dir, migrations, Vec::new(), skipped)
}

/// The journal's entries in `idx` order, checked: unique tags and `idx`, increasing `when`.
fn read_journal(path: &Path) -> Result<Vec<Entry>, SourceError> {
    let text = read_text(path)?;
    let journal: Journal = serde_json::from_str(&text).map_err(|e| SourceError::SideFile {
        path: path.to_path_buf(),
        line: Some(e.line()),
        problem: format!("not a Drizzle journal: {e}"),
        fix: "restore it from version control or regenerate it with drizzle-kit",
    })?;
    let mut entries = journal.entries;
    entries.sort_by_key(|e| e.idx);
    for pair in entries.windows(2) {
        if let [a, b] = pair {
            if a.idx == b.idx {
                return Err(journal_error(
                    path,
                    format!("two entries have idx {}", a.idx),
                    "give each entry its own idx",
                ));
            }
            if b.when <= a.when {
                return Err(journal_error(
                    path,
                    format!("entry {} (`{}`) is not newer than entry {} (`{}`), so Drizzle would skip it", b.idx, b.tag, a.idx, a.tag),
                    "regenerate the later migration with drizzle-kit so its `when` is newer",
                ));
            }
        }
    }
    if let Some(bad) = entries
        .iter()
        .find(|e| e.tag.is_empty() || e.tag.contains(['/', '\\']) || e.tag.contains(".."))
    {
        return Err(journal_error(
            path,
            format!("entry {} has an unusable tag `{}`", bad.idx, bad.tag),
            "tags are file names without `.sql`",
        ));
    }
    Ok(entries)
}

fn journal_error(path: &Path, problem: String, fix: &'static str) -> SourceError {
    SourceError::SideFile {
        path: PathBuf::from(path),
        line: None,
        problem,
        fix,
    }
}
