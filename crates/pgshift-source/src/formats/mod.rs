//! One module per migration format. Each module knows its tool's file names, how the tool splits
//! a file into up and down, and its no-transaction marker, and turns a directory into a
//! [`MigrationSet`]; its `DESCRIPTOR` states the format's facts (see [`crate::format`]). What
//! the modules share (sorting, duplicate detection, up/down pairing, the up/down file layout of
//! pgshift and sqlx, sections between marker lines) lives here.

pub(crate) mod atlas;
pub(crate) mod dbmate;
pub(crate) mod diesel;
pub(crate) mod drizzle;
pub(crate) mod flyway;
pub(crate) mod golang_migrate;
pub(crate) mod goose;
pub(crate) mod node_pg_migrate;
pub(crate) mod pgshift;
pub(crate) mod plain;
pub(crate) mod prisma;
pub(crate) mod sqlx;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::lines::has_pgshift_no_transaction;
use crate::read::Entry;
use crate::{Format, Migration, MigrationSet, Script, SourceError, Version};

/// Reads `dir` in `format`.
pub(crate) fn load(format: Format, dir: &Path) -> Result<MigrationSet, SourceError> {
    (format.descriptor().load)(dir)
}

/// A script for `range` of a file; pgshift's own `-- pgshift:no-transaction` counts in every format.
pub(crate) fn section(
    path: &Path,
    text: &Arc<str>,
    range: Range<usize>,
    format_marker: bool,
) -> Script {
    let no_transaction = format_marker
        || text
            .get(range.clone())
            .is_some_and(has_pgshift_no_transaction);
    Script {
        path: path.to_path_buf(),
        file_text: Arc::clone(text),
        range,
        no_transaction,
    }
}

/// A script for a whole file.
pub(crate) fn whole(path: &Path, text: &Arc<str>, format_marker: bool) -> Script {
    section(path, text, 0..text.len(), format_marker)
}

/// Sorts migrations by version and rejects two with the same version, naming both files.
pub(crate) fn finish(
    format: Format,
    dir: &Path,
    mut migrations: Vec<Migration>,
    mut repeatable: Vec<Migration>,
    skipped: Vec<(PathBuf, String)>,
) -> Result<MigrationSet, SourceError> {
    sort_unique(&mut migrations)?;
    sort_unique(&mut repeatable)?;
    Ok(MigrationSet {
        format,
        dir: dir.to_path_buf(),
        migrations,
        repeatable,
        skipped,
    })
}

fn sort_unique(migrations: &mut [Migration]) -> Result<(), SourceError> {
    // Stable: of two equal versions, the one listed first (by name) is reported as the first.
    migrations.sort_by(|a, b| a.version.cmp(&b.version));
    for pair in migrations.windows(2) {
        if let [a, b] = pair {
            if a.version == b.version {
                return Err(SourceError::DuplicateVersion {
                    version: b.version.to_string(),
                    first: a.up.path.clone(),
                    second: b.up.path.clone(),
                });
            }
        }
    }
    Ok(())
}

/// `<digits><separator><name>` → (digits, name). The separator (`_`, `-` or `.`) is optional;
/// `None` when the text does not start with a digit.
pub(crate) fn leading_number(stem: &str) -> Option<(&str, &str)> {
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (number, rest) = stem.split_at(digits);
    let name = rest.strip_prefix(['_', '-', '.']).unwrap_or(rest);
    Some((number, name))
}

/// The version of a file name, or an error naming the file.
pub(crate) fn version_of(
    path: &Path,
    raw: &str,
    reason: &'static str,
) -> Result<Version, SourceError> {
    Version::parse(raw).ok_or_else(|| SourceError::InvalidVersion {
        path: path.to_path_buf(),
        raw: raw.to_owned(),
        reason,
    })
}

/// Which way a file or section goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Up,
    Down,
}

/// A file in a separate-files layout (pgshift, sqlx, golang-migrate, Flyway): its version,
/// name and direction, already read from the file name.
pub(crate) struct SeparateFile<'a> {
    pub entry: &'a Entry,
    pub version: Version,
    pub name: String,
    pub direction: Direction,
}

/// Pairs up and down files by version and reads them. `no_transaction` reads the format's
/// marker from a file's text. A down without an up, or two ups (or downs) with one version, is
/// an error naming the files.
pub(crate) fn pair_files(
    files: Vec<SeparateFile<'_>>,
    expected_up: impl Fn(&Version) -> String,
    no_transaction: impl Fn(&str) -> bool,
) -> Result<Vec<Migration>, SourceError> {
    let mut ups: BTreeMap<Version, SeparateFile<'_>> = BTreeMap::new();
    let mut downs: BTreeMap<Version, SeparateFile<'_>> = BTreeMap::new();
    for file in files {
        let side = match file.direction {
            Direction::Up => &mut ups,
            Direction::Down => &mut downs,
        };
        if let Some(first) = side.get(&file.version) {
            return Err(SourceError::DuplicateVersion {
                version: file.version.to_string(),
                first: first.entry.path.clone(),
                second: file.entry.path.clone(),
            });
        }
        side.insert(file.version.clone(), file);
    }
    if let Some((version, down)) = downs.iter().find(|(v, _)| !ups.contains_key(*v)) {
        return Err(SourceError::DownWithoutUp {
            path: down.entry.path.clone(),
            expected: expected_up(version),
        });
    }
    let mut migrations = Vec::with_capacity(ups.len());
    for (version, up) in ups {
        let text = crate::read::read_text(&up.entry.path)?;
        let up_script = whole(&up.entry.path, &text, no_transaction(&text));
        let down = match downs.remove(&version) {
            Some(down) => {
                let text = crate::read::read_text(&down.entry.path)?;
                Some(whole(&down.entry.path, &text, no_transaction(&text)))
            }
            None => None,
        };
        migrations.push(Migration {
            version,
            name: up.name,
            up: up_script,
            down,
        });
    }
    Ok(migrations)
}

/// The `<version>_<name>.up.sql` / `<version>_<name>.down.sql` layout that pgshift and sqlx
/// share (a bare `<version>_<name>.sql` is a forward-only up). What differs between the two
/// formats is this data; [`load_up_down`] is the one reader.
pub(crate) struct UpDownLayout {
    pub format: Format,
    /// The names the format reads, for the note on a skipped file.
    pub expected: &'static str,
    /// What the text before the first `_` must be.
    pub version: UpDownVersion,
    /// The format's no-transaction marker, read from a file's text.
    pub no_transaction: fn(&str) -> bool,
}

/// The version rule of an [`UpDownLayout`].
pub(crate) enum UpDownVersion {
    /// Digits, any number of them; a file whose name is not `<digits>_...` is skipped.
    Digits,
    /// Digits that fit an `i64`, as sqlx parses them; any other text before the first `_` is
    /// an error with this reason (sqlx refuses such a folder too).
    I64 { reason: &'static str },
}

/// Reads a directory in an up/down layout.
pub(crate) fn load_up_down(dir: &Path, layout: &UpDownLayout) -> Result<MigrationSet, SourceError> {
    let listing = crate::read::list(dir)?;
    let mut skipped = listing.skipped_names();
    let mut files = Vec::new();
    for entry in listing.files() {
        match up_down_name(entry, layout)? {
            Some(file) => files.push(file),
            None => skipped.push((
                entry.path.clone(),
                format!(
                    "not a {} migration name (expected {})",
                    layout.format, layout.expected
                ),
            )),
        }
    }
    for entry in listing.dirs() {
        skipped.push((
            entry.path.clone(),
            format!("a directory; {} migrations are files", layout.format),
        ));
    }
    let migrations = pair_files(files, |v| format!("{v}_*.up.sql"), layout.no_transaction)?;
    finish(layout.format, dir, migrations, Vec::new(), skipped)
}

/// `<version>_<name>.up.sql`, `.down.sql` or `.sql`; `None` for a name the layout skips.
fn up_down_name<'a>(
    entry: &'a Entry,
    layout: &UpDownLayout,
) -> Result<Option<SeparateFile<'a>>, SourceError> {
    let Some((number, rest)) = entry.name.split_once('_') else {
        return Ok(None);
    };
    let Some(rest) = rest.strip_suffix(".sql") else {
        return Ok(None);
    };
    let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    let reason = match layout.version {
        UpDownVersion::Digits if digits => "expected digits",
        UpDownVersion::Digits => return Ok(None),
        UpDownVersion::I64 { .. } if digits && number.parse::<i64>().is_ok() => {
            "expected an integer"
        }
        UpDownVersion::I64 { reason } => {
            return Err(SourceError::InvalidVersion {
                path: entry.path.clone(),
                raw: number.to_owned(),
                reason,
            })
        }
    };
    let (name, direction) = if let Some(n) = rest.strip_suffix(".up") {
        (n, Direction::Up)
    } else if let Some(n) = rest.strip_suffix(".down") {
        (n, Direction::Down)
    } else {
        (rest, Direction::Up)
    };
    Ok(Some(SeparateFile {
        entry,
        version: version_of(&entry.path, number, reason)?,
        name: name.to_owned(),
        direction,
    }))
}

/// A section marker line found in a single-file format (dbmate, goose, node-pg-migrate).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Marker {
    pub direction: Direction,
    /// 1-based line number.
    pub line: usize,
    /// Byte offset of the start of the marker line: sections include their marker line, so a
    /// directive written on it stays visible to the SQL layer.
    pub start: usize,
}

/// What a single-file format makes of a file name: a migration (version text, name) or a
/// reason to skip the file.
pub(crate) type NameVerdict = Result<(String, String), String>;

/// Reads a directory of single-file migrations (dbmate, goose, node-pg-migrate, plain): each
/// file named by `name_of` is read and split into up and down by `split`.
pub(crate) fn load_single_files(
    format: Format,
    dir: &Path,
    name_of: impl Fn(&Entry) -> NameVerdict,
    split: impl Fn(&Path, &Arc<str>) -> Result<(Script, Option<Script>), SourceError>,
) -> Result<MigrationSet, SourceError> {
    let listing = crate::read::list(dir)?;
    let mut skipped = listing.skipped_names();
    let mut migrations = Vec::new();
    for entry in listing.files() {
        match name_of(entry) {
            Ok((version, name)) => {
                let version = version_of(
                    &entry.path,
                    &version,
                    "the file name must start with a version",
                )?;
                let text = crate::read::read_text(&entry.path)?;
                let (up, down) = split(&entry.path, &text)?;
                migrations.push(Migration {
                    version,
                    name,
                    up,
                    down,
                });
            }
            Err(reason) => skipped.push((entry.path.clone(), reason)),
        }
    }
    for entry in listing.dirs() {
        skipped.push((
            entry.path.clone(),
            format!("a directory; {format} migrations are files"),
        ));
    }
    finish(format, dir, migrations, Vec::new(), skipped)
}

/// The name verdict for `<digits>[_-]<name>.sql` files, the convention of dbmate, goose and
/// node-pg-migrate.
pub(crate) fn numbered_sql_file(entry: &Entry, format: Format) -> NameVerdict {
    let Some(stem) = entry.name.strip_suffix(".sql") else {
        return Err(format!(
            "not a `.sql` file; {format} SQL migrations end in `.sql`"
        ));
    };
    match leading_number(stem) {
        Some((number, name)) => Ok((number.to_owned(), name.to_owned())),
        None => Err(format!(
            "the name does not start with a version number, so {format} does not run it"
        )),
    }
}

/// Up and down sections from the first up and first down marker. A section runs from its
/// marker line to the next marker of the other direction (or the end of the file).
pub(crate) fn sections_from_markers(
    path: &Path,
    text: &Arc<str>,
    up: Marker,
    down: Option<Marker>,
    up_format_marker: bool,
    down_format_marker: bool,
) -> (Script, Option<Script>) {
    let end = text.len();
    let up_end = match down {
        Some(d) if d.start > up.start => d.start,
        _ => end,
    };
    let up_script = section(path, text, up.start..up_end, up_format_marker);
    let down_script = down.map(|d| {
        let down_end = if up.start > d.start { up.start } else { end };
        section(path, text, d.start..down_end, down_format_marker)
    });
    (up_script, down_script)
}

/// The first line before `before` that is neither blank nor a `--` comment: SQL standing
/// outside any section, which dbmate and goose refuse.
pub(crate) fn sql_before(text: &str, before: usize) -> Option<usize> {
    crate::lines::lines(text)
        .take_while(|l| l.start < before)
        .find(|l| !crate::lines::is_blank_or_comment(l.text))
        .map(|l| l.number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_number_splits_version_and_name() {
        assert_eq!(leading_number("0001_init"), Some(("0001", "init")));
        assert_eq!(
            leading_number("1700000000000_create-users"),
            Some(("1700000000000", "create-users"))
        );
        assert_eq!(leading_number("42"), Some(("42", "")));
        assert_eq!(leading_number("init"), None);
    }
}
