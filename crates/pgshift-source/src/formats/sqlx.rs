//! sqlx (`sqlx migrate`): `<version>_<description>.sql` (simple, forward-only) or
//! `<version>_<description>.up.sql` / `.down.sql` (reversible). The version is the text before
//! the first `_` and must be an `i64`, as sqlx parses it; files without `_` or not ending in
//! `.sql` are ignored, as sqlx ignores them. No-transaction marker: the file *starts with*
//! `-- no-transaction` (sqlx checks the first bytes, nothing else).

use std::path::Path;

use super::{finish, pair_files, version_of, Direction, SeparateFile};
use crate::read::{list, Entry};
use crate::{Format, MigrationSet, SourceError};

pub(crate) fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let listing = list(dir)?;
    let mut skipped = listing.skipped_names();
    let mut files = Vec::new();
    for entry in listing.files() {
        match parse_name(entry)? {
            Some(file) => files.push(file),
            None => skipped.push((
                entry.path.clone(),
                "not a sqlx migration name (expected <version>_<description>.sql)".to_owned(),
            )),
        }
    }
    for entry in listing.dirs() {
        skipped.push((
            entry.path.clone(),
            "a directory; sqlx migrations are files".to_owned(),
        ));
    }
    let migrations = pair_files(files, |v| format!("{v}_*.up.sql"), has_marker)?;
    finish(Format::Sqlx, dir, migrations, Vec::new(), skipped)
}

/// sqlx's marker: the text begins with `-- no-transaction`.
pub(crate) fn has_marker(text: &str) -> bool {
    text.starts_with("-- no-transaction")
}

fn parse_name(entry: &Entry) -> Result<Option<SeparateFile<'_>>, SourceError> {
    let Some((number, rest)) = entry.name.split_once('_') else {
        return Ok(None);
    };
    let Some(rest) = rest.strip_suffix(".sql") else {
        return Ok(None);
    };
    if number.parse::<i64>().is_err() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SourceError::InvalidVersion {
            path: entry.path.clone(),
            raw: number.to_owned(),
            reason: "sqlx needs an integer version before the first `_` (e.g. `20240101120000_add_users.sql`)",
        });
    }
    let (name, direction) = if let Some(n) = rest.strip_suffix(".up") {
        (n, Direction::Up)
    } else if let Some(n) = rest.strip_suffix(".down") {
        (n, Direction::Down)
    } else {
        (rest, Direction::Up)
    };
    let version = version_of(&entry.path, number, "expected an integer")?;
    Ok(Some(SeparateFile {
        entry,
        version,
        name: name.to_owned(),
        direction,
    }))
}
