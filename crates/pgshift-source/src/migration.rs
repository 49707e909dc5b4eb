//! The model every format is read into: [`Script`] (one SQL text to run), [`Migration`] (a
//! version with its up and optional down script) and [`MigrationSet`] (a whole directory).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::{Format, Version};

/// One SQL text a migration runs: a whole file, or a section of one (dbmate, goose and
/// node-pg-migrate keep up and down in one file).
///
/// Spans reported later (by the SQL parser and the linter) are byte offsets into `file_text`, so
/// that line and column numbers are those of the file on disk; `range` says where this section
/// sits inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The file, as given or as found (relative to the working directory when the migration
    /// directory was given as a relative path).
    pub path: PathBuf,
    /// The whole file.
    pub file_text: Arc<str>,
    /// This section's bytes within `file_text`.
    pub range: Range<usize>,
    /// Must run outside a transaction: the format's own marker, or `-- pgshift:no-transaction`.
    pub no_transaction: bool,
}

impl Script {
    /// A script covering a whole file.
    pub fn whole_file(path: PathBuf, file_text: Arc<str>, no_transaction: bool) -> Script {
        let range = 0..file_text.len();
        Script {
            path,
            file_text,
            range,
            no_transaction,
        }
    }

    /// This section's SQL text.
    pub fn sql(&self) -> &str {
        // The range is built by this crate on line boundaries, but a caller may have edited the
        // public fields; an out-of-range or mid-character range reads as empty rather than panicking.
        self.file_text.get(self.range.clone()).unwrap_or("")
    }

    /// Lowercase hex SHA-256 of [`Script::sql`] with CRLF and lone CR turned into LF, so that a
    /// checkout with different line endings does not count as an edit.
    pub fn checksum(&self) -> String {
        checksum_of(self.sql())
    }

    /// The SQL to record in the history so the script can run again once its file is gone:
    /// its text, with `-- pgshift:no-transaction` in front when it runs outside a
    /// transaction for a reason the text does not carry (a format's file-level marker, such
    /// as goose's `-- +goose NO TRANSACTION` or diesel's `metadata.toml`).
    pub fn recorded_sql(&self) -> String {
        let sql = self.sql();
        if self.no_transaction && !crate::lines::has_pgshift_no_transaction(sql) {
            format!("-- pgshift:no-transaction\n{sql}")
        } else {
            sql.to_string()
        }
    }

    /// A script read back from SQL recorded in the history ([`Script::recorded_sql`]). It
    /// runs outside a transaction when it holds pgshift's marker as a comment on a line of
    /// its own, decided the way every file is read; the marker's words inside a string
    /// literal or anywhere else do not count.
    pub fn from_recorded(label: PathBuf, sql: &str) -> Script {
        let no_transaction = crate::lines::has_pgshift_no_transaction(sql);
        Script::whole_file(label, Arc::from(sql), no_transaction)
    }

    /// The 1-based line of `file_text` on which this section starts.
    pub fn first_line(&self) -> usize {
        let start = self.range.start.min(self.file_text.len());
        self.file_text.as_bytes()[..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }
}

/// SHA-256 of a text with line endings normalised and a leading byte-order mark ignored, as
/// lowercase hex.
pub fn checksum_of(sql: &str) -> String {
    let mut hasher = Sha256::new();
    // An editor that adds or drops a byte-order mark has not changed the migration, any more
    // than one that changes line endings.
    let bytes = sql.strip_prefix('\u{feff}').unwrap_or(sql).as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' {
            hasher.update(&bytes[start..i]);
            hasher.update(b"\n");
            // CRLF counts once: skip the LF that follows the CR.
            i += if bytes.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            start = i;
        } else {
            i += 1;
        }
    }
    hasher.update(&bytes[start..]);
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One migration: a version, a name, the forward script and, when the format has one, the revert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: Version,
    /// The human description from the file name (`add_users`), as written.
    pub name: String,
    pub up: Script,
    /// `None` when the migration is forward-only.
    pub down: Option<Script>,
}

impl Migration {
    /// Whether the up script must run outside a transaction.
    pub fn no_transaction(&self) -> bool {
        self.up.no_transaction
    }

    /// The checksum recorded in history: that of the up script.
    pub fn checksum(&self) -> String {
        self.up.checksum()
    }

    /// The down script's SQL, if there is one.
    pub fn down_sql(&self) -> Option<&str> {
        self.down.as_ref().map(Script::sql)
    }

    /// The down script as recorded in the history ([`Script::recorded_sql`]).
    pub fn recorded_down(&self) -> Option<String> {
        self.down.as_ref().map(Script::recorded_sql)
    }
}

/// A directory of migrations, read in one format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationSet {
    pub format: Format,
    pub dir: PathBuf,
    /// Ascending by version; versions are unique.
    pub migrations: Vec<Migration>,
    /// Flyway `R__` files, ascending by description (their version); empty for other formats.
    pub repeatable: Vec<Migration>,
    /// Files that were seen and deliberately not read, with the reason (a goose `.go`
    /// migration cannot be run by pgshift; a Drizzle file missing from the journal is never run).
    pub skipped: Vec<(PathBuf, String)>,
}

impl MigrationSet {
    /// The migration with this version.
    pub fn find(&self, version: &Version) -> Option<&Migration> {
        self.migrations
            .binary_search_by(|m| m.version.cmp(version))
            .ok()
            .and_then(|i| self.migrations.get(i))
    }

    /// The migrations after `version` (all of them for `None`), in order.
    pub fn after(&self, version: Option<&Version>) -> &[Migration] {
        match version {
            None => &self.migrations,
            Some(v) => {
                let first = self.migrations.partition_point(|m| &m.version <= v);
                &self.migrations[first..]
            }
        }
    }

    /// The directory the set was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(text: &str, range: Range<usize>) -> Script {
        Script {
            path: PathBuf::from("x.sql"),
            file_text: Arc::from(text),
            range,
            no_transaction: false,
        }
    }

    #[test]
    fn a_recorded_script_keeps_its_no_transaction_marker_and_nothing_else_counts() {
        let marked = Script::whole_file(
            PathBuf::from("x.sql"),
            Arc::from("DROP INDEX CONCURRENTLY i;\n"),
            true,
        );
        let recorded = marked.recorded_sql();
        assert!(recorded.starts_with("-- pgshift:no-transaction\n"));
        assert!(Script::from_recorded(PathBuf::from("h"), &recorded).no_transaction);
        let literal = "DROP TABLE a; SELECT 'see pgshift:no-transaction'; SELECT 1/0;";
        assert!(!Script::from_recorded(PathBuf::from("h"), literal).no_transaction);
        let plain = Script::whole_file(PathBuf::from("x.sql"), Arc::from("SELECT 1;\n"), false);
        assert_eq!(plain.recorded_sql(), "SELECT 1;\n");
    }

    #[test]
    fn checksum_ignores_line_endings() {
        let lf = checksum_of("create table t (id int);\nselect 1;\n");
        assert_eq!(lf, checksum_of("create table t (id int);\r\nselect 1;\r\n"));
        assert_eq!(lf, checksum_of("create table t (id int);\rselect 1;\r"));
        assert_ne!(lf, checksum_of("create table t (id int);\n\nselect 1;\n"));
        assert_eq!(lf.len(), 64);
        assert!(lf
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn checksum_ignores_a_byte_order_mark() {
        let plain = checksum_of("create table t (id int);\n");
        assert_eq!(plain, checksum_of("\u{feff}create table t (id int);\r\n"));
        assert_ne!(plain, checksum_of("create table t (id bigint);\n"));
    }

    #[test]
    fn checksum_of_empty_text_is_sha256_of_nothing() {
        assert_eq!(
            checksum_of(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn sql_is_the_section_and_bad_ranges_read_as_empty() {
        let s = script("-- up\nselect 1;\n-- down\n", 6..16);
        assert_eq!(s.sql(), "select 1;\n");
        assert_eq!(s.first_line(), 2);
        assert_eq!(script("é", 1..2).sql(), "");
        assert_eq!(script("abc", 2..10).sql(), "");
    }
}
