//! Atlas: `<YYYYMMDDHHMMSS>_<name>.sql` files, ordered by name, guarded by `atlas.sum`.
//!
//! `atlas.sum` is verified exactly as Atlas computes it (`sql/migrate/dir.go`): one running
//! SHA-256 is fed, for each `*.sql` file in byte order of the name, the file name and then the
//! file's bytes (only the name, for a file whose first line carries `atlas:sum ignore`); after
//! each file the running digest, base64-encoded, is that file's `h1:` entry. The first line is
//! `h1:` + base64(SHA-256 of every entry's name and hash concatenated). A file that was edited,
//! added without re-hashing or removed is reported by name. Because the per-file hashes are
//! cumulative, the first differing entry is the file to look at.
//!
//! No-transaction marker: `-- atlas:txmode none` in the file's leading comment block (Atlas
//! also wants a blank line after that block; pgshift does not, so a marker is never ignored).
//! Atlas has no down files.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{finish, version_of, whole};
use crate::format::{
    AppliedRows, FormatDescriptor, HistoryTable, NoTransactionMarker, RecordValue, ToolRecord,
    TransactionModel,
};
use crate::lines::lines;
use crate::read::read_text;
use crate::ToolChecksum;
use crate::{Format, Migration, MigrationSet, SourceError};

/// Atlas's integrity file name.
pub(crate) const SUM_FILE: &str = "atlas.sum";

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "atlas",
    aliases: &[],
    title: "Atlas",
    transaction: TransactionModel::Wrapped,
    no_transaction: Some(NoTransactionMarker {
        text: "-- atlas:txmode none",
        help: "`-- atlas:txmode none`",
        // `atlas:sum ignore` keeps the file out of atlas.sum, so the sum (that of no entries)
        // holds with and without the marker.
        example: &[
            (
                "20240101000000_index.sql",
                "-- atlas:sum ignore\n-- atlas:txmode none\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n",
            ),
            (SUM_FILE, "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"),
        ],
    }),
    history: &[HistoryTable {
        table: "atlas_schema_revisions.atlas_schema_revisions",
        required_column: None,
        applied: "SELECT version, hash FROM atlas_schema_revisions.atlas_schema_revisions WHERE applied = total",
        rows: AppliedRows::Versions,
        checksum: Some(ToolChecksum::AtlasSum),
        // Atlas's revision once a file is applied (sql/migrate `Executor.Execute`): type 2
        // (executed), every statement applied (`applied` = `total`; pgshift counts the file
        // as one), the file's running hash, the duration in nanoseconds.
        record: Some(ToolRecord {
            insert: "INSERT INTO atlas_schema_revisions.atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, hash, operator_version) VALUES ($1::text, $2::text, 2, 1, 1, now(), $3::text::bigint, $4::text, 'pgshift')",
            insert_params: &[
                RecordValue::Version,
                RecordValue::Name,
                RecordValue::ElapsedNanos,
                RecordValue::ToolChecksum,
            ],
            delete: "DELETE FROM atlas_schema_revisions.atlas_schema_revisions WHERE version = $1::text",
            delete_params: &[RecordValue::Version],
            checksum: Some(ToolChecksum::AtlasSum),
        }),
    }],
    content_marker: None,
    load,
};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let files = sql_files(dir)?;
    let sum_path = dir.join(SUM_FILE);
    if !sum_path.is_file() {
        if files.is_empty() {
            return finish(Format::Atlas, dir, Vec::new(), Vec::new(), Vec::new());
        }
        return Err(SourceError::AtlasSumMissing { path: sum_path });
    }
    let sum_text = read_text(&sum_path)?;
    let recorded = parse_sum(&sum_path, &sum_text)?;
    let mut contents = Vec::with_capacity(files.len());
    for (name, path) in &files {
        let bytes = crate::read::read_bytes(path)?;
        contents.push((name.clone(), bytes));
    }
    let computed = hash_files(contents.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    let has_crlf = |name: &str| {
        contents
            .iter()
            .any(|(n, b)| n == name && b.windows(2).any(|w| w == b"\r\n"))
    };
    verify(dir, &sum_path, &recorded, &computed, has_crlf)?;

    let mut migrations = Vec::with_capacity(files.len());
    for (name, path) in files {
        let text = read_text(&path)?;
        let stem = name.strip_suffix(".sql").unwrap_or(&name);
        let (raw_version, description) = stem.split_once('_').unwrap_or((stem, ""));
        let version = version_of(
            &path,
            raw_version,
            "Atlas versions are the text before the first `_`",
        )?;
        let no_transaction = says_txmode_none(&text);
        migrations.push(Migration {
            version,
            name: description.to_owned(),
            up: whole(&path, &text, no_transaction),
            down: None,
        });
    }
    finish(Format::Atlas, dir, migrations, Vec::new(), Vec::new())
}

/// Verifies the `atlas.sum` Atlas writes beside a golang-migrate directory it generates
/// (`atlas migrate diff --dir "file://migrations?format=golang-migrate"`), when there is one.
/// Atlas hashes the files its golang-migrate directory reads, the `.up.sql` files, so a sum
/// whose entries are all `.up.sql` files is checked over the `.up.sql` files; a sum that lists
/// other files too is checked over every `.sql` file, as for an Atlas directory.
pub(crate) fn verify_golang_migrate_sum(dir: &Path) -> Result<(), SourceError> {
    let sum_path = dir.join(SUM_FILE);
    if !sum_path.is_file() {
        return Ok(());
    }
    let recorded = parse_sum(&sum_path, &read_text(&sum_path)?)?;
    let ups_only = recorded.iter().all(|e| e.name.ends_with(".up.sql"));
    let mut contents = Vec::new();
    for (name, path) in sql_files(dir)? {
        if ups_only && !name.ends_with(".up.sql") {
            continue;
        }
        contents.push((name, crate::read::read_bytes(&path)?));
    }
    let computed = hash_files(contents.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    let has_crlf = |name: &str| {
        contents
            .iter()
            .any(|(n, b)| n == name && b.windows(2).any(|w| w == b"\r\n"))
    };
    verify(dir, &sum_path, &recorded, &computed, has_crlf)
}

/// Every `*.sql` file directly in `dir` (hidden ones too, as Go's `fs.Glob("*.sql")` finds
/// them), sorted by name bytes, as Atlas sorts them.
fn sql_files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, SourceError> {
    let read = std::fs::read_dir(dir).map_err(|source| SourceError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in read {
        let entry = entry.map_err(|source| SourceError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = dir.join(&name);
        if name.ends_with(".sql") && path.is_file() {
            files.push((name, path));
        }
    }
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(files)
}

/// One line of `atlas.sum`: a file name and its `h1:` hash (base64, without the prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SumEntry {
    pub name: String,
    pub hash: String,
}

/// Atlas's per-file hashes for files given in order.
pub(crate) fn hash_files<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Vec<SumEntry> {
    let mut running = Sha256::new();
    let mut entries = Vec::new();
    for (name, bytes) in files {
        running.update(name.as_bytes());
        if directive(bytes, "sum").is_some_and(|mode| mode == "ignore") {
            continue;
        }
        running.update(bytes);
        entries.push(SumEntry {
            name: name.to_owned(),
            hash: base64(&running.clone().finalize()),
        });
    }
    entries
}

/// The directory hash on the first line of `atlas.sum`.
pub(crate) fn total(entries: &[SumEntry]) -> String {
    let mut sha = Sha256::new();
    for entry in entries {
        sha.update(entry.name.as_bytes());
        sha.update(entry.hash.as_bytes());
    }
    base64(&sha.finalize())
}

/// The whole `atlas.sum` text for these entries, as `atlas migrate hash` writes it.
#[cfg(test)]
pub(crate) fn render_sum(entries: &[SumEntry]) -> String {
    let mut out = format!("h1:{}\n", total(entries));
    for entry in entries {
        out.push_str(&format!("{} h1:{}\n", entry.name, entry.hash));
    }
    out
}

/// Reads `atlas.sum`, checking that its first line matches its file lines.
fn parse_sum(path: &Path, text: &str) -> Result<Vec<SumEntry>, SourceError> {
    let mut all = lines(text);
    let head = all.next().map(|l| l.text).unwrap_or("");
    let recorded_total = head.strip_prefix("h1:").unwrap_or(head);
    let mut entries = Vec::new();
    for line in all {
        let Some((name, hash)) = line.text.split_once("h1:") else {
            return Err(SourceError::SideFile {
                path: path.to_path_buf(),
                line: Some(line.number),
                problem: "not a `<file> h1:<hash>` line".to_owned(),
                fix: "run `atlas migrate hash` to rewrite atlas.sum",
            });
        };
        entries.push(SumEntry {
            name: name.trim().to_owned(),
            hash: hash.to_owned(),
        });
    }
    if total(&entries) != recorded_total {
        return Err(SourceError::SideFile {
            path: path.to_path_buf(),
            line: Some(1),
            problem: "the directory hash on the first line does not match the file lines (atlas.sum was edited by hand or merged)".to_owned(),
            fix: "run `atlas migrate hash` or fix the file",
        });
    }
    Ok(entries)
}

/// Compares recorded and computed entries and names the first file that differs.
fn verify(
    dir: &Path,
    sum: &Path,
    recorded: &[SumEntry],
    computed: &[SumEntry],
    has_crlf: impl Fn(&str) -> bool,
) -> Result<(), SourceError> {
    if total(recorded) == total(computed) {
        return Ok(());
    }
    let mismatch = |name: &str, problem: &'static str| SourceError::AtlasSumMismatch {
        sum: sum.to_path_buf(),
        file: dir.join(name),
        problem,
    };
    for (r, c) in recorded.iter().zip(computed) {
        if r.name != c.name {
            // Names are in sorted order on both sides: the smaller one is the odd one out.
            return Err(if c.name < r.name {
                mismatch(&c.name, "the file is not listed in atlas.sum")
            } else {
                mismatch(&r.name, "atlas.sum lists this file but it is missing")
            });
        }
        if r.hash != c.hash {
            // Atlas hashes bytes: a Windows checkout (core.autocrlf) changes every file.
            return Err(mismatch(
                &c.name,
                if has_crlf(&c.name) {
                    "its contents changed since atlas.sum was written; it has CRLF line endings, so a checkout that converted LF to CRLF may be the cause"
                } else {
                    "its contents changed since atlas.sum was written"
                },
            ));
        }
    }
    Err(
        match (recorded.get(computed.len()), computed.get(recorded.len())) {
            (Some(r), _) => mismatch(&r.name, "atlas.sum lists this file but it is missing"),
            (_, Some(c)) => mismatch(&c.name, "the file is not listed in atlas.sum"),
            (None, None) => SourceError::SideFile {
                path: sum.to_path_buf(),
                line: Some(1),
                problem: "the directory hash does not match".to_owned(),
                fix: "run `atlas migrate hash` or fix the file",
            },
        },
    )
}

/// Atlas's `directive` on a whole file: the first line is matched against
/// `^([ -~]*)atlas:(\w+)(?: +([ -~]*))*` and the argument is returned when the name matches.
fn directive<'a>(bytes: &'a [u8], name: &str) -> Option<&'a str> {
    // `[ -~]` is printable ASCII: the match cannot leave the first printable run of the file.
    let printable = bytes
        .iter()
        .take_while(|b| (b' '..=b'~').contains(*b))
        .count();
    let line = std::str::from_utf8(&bytes[..printable]).ok()?;
    // The prefix group is greedy, so the last `atlas:<word>` on the line is the one that counts.
    let (at, found) = line
        .match_indices("atlas:")
        .filter_map(|(i, _)| {
            let rest = &line[i + 6..];
            let word_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (word_len > 0).then(|| (i + 6 + word_len, &rest[..word_len]))
        })
        .last()?;
    if found != name {
        return None;
    }
    // `(?: +([ -~]*))*`: after one or more spaces the rest of the line is the argument.
    let rest = &line[at..];
    let argument = rest.trim_start_matches(' ');
    Some(if argument.len() == rest.len() {
        ""
    } else {
        argument
    })
}

/// Whether the leading comment block of a file holds `-- atlas:txmode none`.
pub(crate) fn says_txmode_none(text: &str) -> bool {
    lines(text)
        .take_while(|l| l.text.starts_with("--") || l.text.starts_with('#'))
        .any(|l| {
            directive(l.text.trim().as_bytes(), "txmode").is_some_and(|mode| mode.trim() == "none")
        })
}

/// Standard base64 with padding (RFC 4648), as Go's `base64.StdEncoding`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A golang-migrate directory as Atlas generates it: `atlas.sum` over the `.up.sql` files
    /// only, `.down.sql` files beside them.
    fn atlas_golang_migrate_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [
            (
                "20240101000000_users.up.sql",
                "CREATE TABLE users (id int);\n",
            ),
            ("20240101000000_users.down.sql", "DROP TABLE users;\n"),
            (
                "20240102000000_email.up.sql",
                "ALTER TABLE users ADD email text;\n",
            ),
            (
                "20240102000000_email.down.sql",
                "ALTER TABLE users DROP email;\n",
            ),
        ];
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).expect("write");
        }
        let ups: Vec<(&str, &[u8])> = files
            .iter()
            .filter(|(n, _)| n.ends_with(".up.sql"))
            .map(|(n, b)| (*n, b.as_bytes()))
            .collect();
        std::fs::write(dir.path().join(SUM_FILE), render_sum(&hash_files(ups))).expect("sum");
        dir
    }

    #[test]
    fn an_atlas_generated_golang_migrate_directory_is_golang_migrate_with_its_sum_verified() {
        let dir = atlas_golang_migrate_dir();
        assert_eq!(crate::detect(dir.path()).ok(), Some(Format::GolangMigrate));
        let set = crate::load(dir.path(), None).expect("loads without `atlas migrate hash`");
        assert_eq!(set.migrations.len(), 2);
        assert!(set.migrations.iter().all(|m| m.down.is_some()));
        assert!(set.skipped.is_empty(), "{:?}", set.skipped);
        // A down file is not in the sum: editing it is not an integrity error.
        std::fs::write(
            dir.path().join("20240102000000_email.down.sql"),
            "SELECT 1;\n",
        )
        .expect("write");
        assert!(crate::load(dir.path(), None).is_ok());
        // An edited up file is, named.
        let up = dir.path().join("20240101000000_users.up.sql");
        std::fs::write(&up, "CREATE TABLE users (id bigint);\n").expect("write");
        let err = crate::load(dir.path(), None)
            .expect_err("edited up file")
            .to_string();
        assert!(err.contains("20240101000000_users.up.sql"), "{err}");
        assert!(err.contains("changed since atlas.sum"), "{err}");
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn per_file_hashes_are_cumulative() {
        let one = hash_files([("1_a.sql", b"select 1;\n".as_slice())]);
        let two = hash_files([
            ("1_a.sql", b"select 1;\n".as_slice()),
            ("2_b.sql", b"select 2;\n".as_slice()),
        ]);
        assert_eq!(one[0], two[0]);
        let mut running = Sha256::new();
        running.update(b"1_a.sql");
        running.update(b"select 1;\n");
        running.update(b"2_b.sql");
        running.update(b"select 2;\n");
        assert_eq!(two[1].hash, base64(&running.finalize()));
    }

    #[test]
    fn sum_ignore_drops_the_entry_but_keeps_the_name_in_the_hash() {
        let files = [
            ("1_a.sql", b"-- atlas:sum ignore\nselect 1;".as_slice()),
            ("2_b.sql", b"select 2;".as_slice()),
        ];
        let entries = hash_files(files);
        assert_eq!(entries.len(), 1);
        let mut running = Sha256::new();
        running.update(b"1_a.sql");
        running.update(b"2_b.sql");
        running.update(b"select 2;");
        assert_eq!(entries[0].hash, base64(&running.finalize()));
    }

    #[test]
    fn directives_follow_atlas_regex() {
        assert_eq!(directive(b"-- atlas:sum ignore\nx", "sum"), Some("ignore"));
        assert_eq!(directive(b"-- atlas:sum", "sum"), Some(""));
        assert_eq!(
            directive(b"-- atlas:txmode none atlas:sum ignore", "sum"),
            Some("ignore")
        );
        assert_eq!(
            directive(b"-- atlas:txmode none atlas:sum ignore", "txmode"),
            None
        );
        assert_eq!(directive(b"select 1;\n-- atlas:sum ignore", "sum"), None);
        assert_eq!(directive(b"-- atlas:summary x", "sum"), None);
    }

    #[test]
    fn txmode_is_read_from_the_leading_comments() {
        assert!(says_txmode_none(
            "-- atlas:txmode none\n\ncreate index concurrently i on t (a);\n"
        ));
        assert!(says_txmode_none(
            "-- a comment\r\n-- atlas:txmode none\r\ncreate index concurrently i on t (a);\r\n"
        ));
        assert!(!says_txmode_none("select 1;\n-- atlas:txmode none\n"));
        assert!(!says_txmode_none("-- atlas:txmode file\n"));
    }

    #[test]
    fn sum_round_trips_and_detects_edits() -> Result<(), SourceError> {
        let entries = hash_files([("1_a.sql", b"select 1;".as_slice())]);
        let text = render_sum(&entries);
        assert_eq!(parse_sum(Path::new("atlas.sum"), &text)?, entries);
        let tampered = text.replacen("1_a.sql", "1_b.sql", 1);
        let err = parse_sum(Path::new("atlas.sum"), &tampered)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("atlas.sum:1:"), "{err}");
        Ok(())
    }
}
