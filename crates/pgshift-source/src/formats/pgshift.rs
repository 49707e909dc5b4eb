//! pgshift's own layout, the one `pgshift new` writes: `<YYYYMMDDHHMMSS>_<name>.up.sql` plus an
//! optional `<YYYYMMDDHHMMSS>_<name>.down.sql` (forward-only without it). A `<version>_<name>.sql`
//! without `.up` is read as a forward-only migration too, so that a hand-made file is never
//! silently ignored. No-transaction marker: `-- pgshift:no-transaction` (honoured everywhere).

use std::path::Path;

use super::{finish, leading_number, pair_files, version_of, Direction, SeparateFile};
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
                "not a pgshift migration name (expected <YYYYMMDDHHMMSS>_<name>.up.sql or .down.sql)".to_owned(),
            )),
        }
    }
    for entry in listing.dirs() {
        skipped.push((
            entry.path.clone(),
            "a directory; pgshift migrations are files".to_owned(),
        ));
    }
    let migrations = pair_files(files, |v| format!("{v}_*.up.sql"), |_| false)?;
    finish(Format::Pgshift, dir, migrations, Vec::new(), skipped)
}

/// `<digits>_<name>.up.sql`, `.down.sql` or `.sql`; `None` for anything else.
fn parse_name(entry: &Entry) -> Result<Option<SeparateFile<'_>>, SourceError> {
    let Some(stem) = entry.name.strip_suffix(".sql") else {
        return Ok(None);
    };
    let (stem, direction) = if let Some(s) = stem.strip_suffix(".up") {
        (s, Direction::Up)
    } else if let Some(s) = stem.strip_suffix(".down") {
        (s, Direction::Down)
    } else {
        (stem, Direction::Up)
    };
    let Some((number, name)) = leading_number(stem) else {
        return Ok(None);
    };
    if !stem[number.len()..].starts_with('_') {
        return Ok(None);
    }
    let version = version_of(&entry.path, number, "expected digits")?;
    Ok(Some(SeparateFile {
        entry,
        version,
        name: name.to_owned(),
        direction,
    }))
}
