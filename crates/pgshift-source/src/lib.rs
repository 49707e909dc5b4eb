//! Migration sources: how migration files are found, ordered, split into up and down parts and
//! marked as needing to run outside a transaction, for every migration tool pgshift reads.
//!
//! This crate knows nothing about databases or SQL syntax. It hands out [`Script`]s (text plus
//! the byte range of the section to run, inside the whole file so that line numbers stay the
//! file's) for the SQL layer to parse, and [`Migration`]s and [`MigrationSet`]s for the runner.
//! Each format's facts (names, transaction model, no-transaction marker and its help, the
//! tool's history tables and how to read them) are one [`FormatDescriptor`] in its module under
//! `formats/`; the runner's adoption and the rule help read them. Adding a format means adding
//! that module and its line in the registry (`format.rs`), plus a detection rule in `detect.rs`
//! when no content marker tells it; nothing outside this crate changes.
//!
//! # Formats
//!
//! | format | layout | version and order | down | no-transaction marker |
//! |---|---|---|---|---|
//! | `pgshift` | `<YYYYMMDDHHMMSS>_<name>.up.sql` + optional `.down.sql` (a bare `.sql` is forward-only) | the number | `.down.sql` | `-- pgshift:no-transaction` |
//! | `sqlx` | `<ver>_<desc>.sql` or `<ver>_<desc>.up.sql` / `.down.sql` | `i64` before the first `_` | `.down.sql` | file starts with `-- no-transaction` |
//! | `golang-migrate` | `<ver>_<name>.up.<ext>` / `.down.<ext>` (only `sql` read; an `atlas.sum` beside them, as Atlas writes one, verified) | the number | `.down.sql` | none: one `Exec`, an implicit transaction |
//! | `flyway` | `V<ver>__<desc>.sql`, `U<ver>__…` undo, `R__<desc>.sql` repeatable; subdirectories scanned | segments split at `.`/`_`, compared as numbers (`1_9` < `1_10` < `2`, `1.1` = `1_1`) | `U` file | `<file>.conf` with `executeInTransaction=false` |
//! | `dbmate` | `<ver>*.sql` with `-- migrate:up` … `-- migrate:down` | leading digits | same file | `-- migrate:up transaction:false` |
//! | `goose` | `<ver>_<name>.sql` with `-- +goose Up` / `Down` (`StatementBegin/End` kept); `.go` skipped | leading digits | same file | `-- +goose NO TRANSACTION` |
//! | `diesel` | `<ver>_<name>/up.sql` + `down.sql` (+ `metadata.toml`) | dashes removed, compared as text as diesel does (`2017-09-26-200549` ~ `20170926200549`; `2025-06-01-000000-0000` before `2026-01-01-000000`) | `down.sql` | `run_in_transaction = false` |
//! | `prisma` | `<ts>_<name>/migration.sql` (+ `migration_lock.toml`) | the timestamp | none | none |
//! | `drizzle` | `<NNNN>_<name>.sql` listed in `meta/_journal.json` | journal `idx` order; version = the entry's `when` | none | none |
//! | `atlas` | `<YYYYMMDDHHMMSS>_<name>.sql` + `atlas.sum` (verified) | text before the first `_` | none | `-- atlas:txmode none` |
//! | `node-pg-migrate` | `<ts>_<name>.sql` with `-- Up Migration` / `-- Down Migration` | leading digits | same file | none |
//! | `plain` | any `*.sql`, one file = one migration | leading digits, else the file stem (numbers first) | none | `-- pgshift:no-transaction` (and the single-file markers above) |
//!
//! In every format `-- pgshift:no-transaction` on its own line marks a script too. Versions
//! compare by the rules in [`Version`]; two migrations with equal versions are an error naming
//! both files. Checksums ([`Script::checksum`]) are SHA-256 over the text with line endings
//! normalised, so a CRLF checkout of an applied file is not an edit.
//!
//! How a directory's format is guessed is described in [`detect`]; it can always be forced by
//! passing a [`Format`] to [`load`]. Where the migrations are when nobody said (another tool's
//! conventional folder, `migrations/` beside a schema dump, the folder of a single file) is
//! [`find_tool_folder`], [`migrations_below`] and [`load_with_folder`]; which of them changed
//! since a git ref, [`changed_since`].
//!
//! # Architecture invariant
//!
//! No database access, no SQL parsing, no printing: every problem is a [`SourceError`] that
//! names the file (and line) and says what to do. No input, however malformed, panics.

mod changed;
mod detect;
mod error;
mod fingerprint;
mod format;
mod formats;
mod lines;
mod migration;
mod new;
mod project;
mod read;
mod stream;
mod version;

use std::path::Path;

pub use changed::changed_since;
pub use detect::detect;
pub use error::SourceError;
pub use fingerprint::ToolChecksum;
pub use format::{
    AppliedRows, Format, FormatDescriptor, HistoryTable, NoTransactionMarker, RecordValue,
    ToolRecord, TransactionModel,
};
pub use migration::{checksum_of, Migration, MigrationSet, Script};
pub use new::new_migration;
pub use project::{find_tool_folder, load_with_folder, migrations_below, FoundFolder};
pub use stream::{read_stream, SqlStream, StreamPart, StreamTool};
pub use version::{InvalidVersion, Version};

/// Reads the migrations in `dir`, in `format`, or in the format [`detect`] finds when `None`.
pub fn load(dir: &Path, format: Option<Format>) -> Result<MigrationSet, SourceError> {
    // The files detection reads are read from disk once.
    read::remembering(|| {
        let format = match format {
            Some(format) => format,
            None => detect(dir)?,
        };
        formats::load(format, dir)
    })
}

/// Reads one file as one migration, alone ([`load_with_folder`] reads it as its folder does).
/// The version is the number the file name starts with (else the stem); dbmate, goose and
/// node-pg-migrate section markers in the file are honoured, so `up` is the up section and
/// `down` the down section.
pub fn load_file(path: &Path) -> Result<Migration, SourceError> {
    formats::plain::load_file(path)
}

/// One migration from text without a file (stdin); `name` becomes the script's path (e.g.
/// `<stdin>`) and gives the version when it starts with a number. Never fails: markers that do
/// not parse leave the whole text as the up script, which `check` then reviews.
pub fn from_text(name: &str, text: &str) -> Migration {
    formats::plain::from_text(name, text)
}
