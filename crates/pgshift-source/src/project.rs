//! Where a project's migrations are, when the user has not said: the folder another tool keeps
//! in its conventional place ([`find_tool_folder`], for `pgshift init`), the migrations folder
//! inside a folder that also holds a schema dump ([`migrations_below`], for `pgshift check db`
//! in a dbmate project), and the folder a single file belongs to ([`load_with_folder`], so that
//! `pgshift check FILE` reads the file as checking its folder does).

use std::path::{Path, PathBuf};

use crate::formats::drizzle;
use crate::read::list;
use crate::{detect, Format, Migration, MigrationSet, SourceError};

/// A migrations folder found without being named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundFolder {
    /// The folder, joined onto the directory that was searched.
    pub dir: PathBuf,
    /// Its format: detected from its contents, else the format of the tool whose conventional
    /// place it is (a folder the tool created but has not written to yet).
    pub format: Format,
    /// Where the folder's location came from, for the user (`Prisma's folder`,
    /// ``the `out` of drizzle.config.ts``).
    pub source: String,
}

/// The files a Drizzle Kit configuration can be written in, in the order drizzle-kit looks.
const DRIZZLE_CONFIGS: &[&str] = &[
    "drizzle.config.ts",
    "drizzle.config.mts",
    "drizzle.config.cts",
    "drizzle.config.js",
    "drizzle.config.mjs",
    "drizzle.config.cjs",
    "drizzle.config.json",
];

/// The migrations folder another tool keeps in `project`, in the tool's conventional place:
///
/// - `prisma/migrations` (Prisma);
/// - the `out` folder named in `drizzle.config.*`, else `drizzle/` (drizzle-kit's default),
///   when it holds Drizzle's `meta/_journal.json`;
/// - `db/migrations` (dbmate's default `--migrations-dir`).
///
/// Only folders that exist count. `None` when there is none (a new project).
pub fn find_tool_folder(project: &Path) -> Option<FoundFolder> {
    let found = |relative: &str, tool: Format, source: String| {
        let dir = project.join(relative);
        dir.is_dir().then(|| FoundFolder {
            format: detect(&dir).unwrap_or(tool),
            dir,
            source,
        })
    };
    if let Some(f) = found(
        "prisma/migrations",
        Format::Prisma,
        "Prisma's folder".into(),
    ) {
        return Some(f);
    }
    for config in DRIZZLE_CONFIGS {
        let Ok(text) = std::fs::read_to_string(project.join(config)) else {
            continue;
        };
        if let Some(out) = drizzle_out(&text) {
            let out = out.trim_start_matches("./").trim_end_matches('/');
            if let Some(f) = found(out, Format::Drizzle, format!("the `out` of {config}")) {
                return Some(f);
            }
        }
    }
    if project.join("drizzle").join(drizzle::JOURNAL).is_file() {
        return found("drizzle", Format::Drizzle, "drizzle-kit's folder".into());
    }
    found("db/migrations", Format::Dbmate, "dbmate's folder".into())
}

/// The string value of the `out` key in a drizzle config (`out: "./drizzle"`, `"out": "x"`).
/// A config that computes the value leaves it unread.
fn drizzle_out(text: &str) -> Option<&str> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    for (at, _) in text.match_indices("out") {
        if text[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &text[at + "out".len()..];
        let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
        let Some(rest) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(quote) = rest
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\'' | '`'))
        else {
            continue;
        };
        let value = &rest[1..];
        if let Some(end) = value.find(quote) {
            let value = &value[..end];
            if !value.is_empty() && !value.contains("${") {
                return Some(value);
            }
        }
    }
    None
}

/// The `migrations/` folder inside `dir`, when `dir` is a project folder rather than a
/// migrations folder: it holds `migrations/` in a format detection recognises, and none of its
/// own `.sql` files is a versioned migration (a name starting with a digit) nor does its own
/// layout name a tool — what it holds is a schema dump (`db/schema.sql` in a dbmate project,
/// `structure.sql`) or nothing. `None` otherwise, and then `dir` is read as it is.
pub fn migrations_below(dir: &Path) -> Result<Option<FoundFolder>, SourceError> {
    let below = dir.join("migrations");
    if !below.is_dir() {
        return Ok(None);
    }
    let listing = list(dir)?;
    let own_migration = listing
        .files()
        .any(|f| f.name.ends_with(".sql") && f.name.starts_with(|c: char| c.is_ascii_digit()));
    // A folder another tool's layout recognises (diesel's, Prisma's) is a migrations folder.
    let own_layout = detect(dir).is_ok_and(|f| f != Format::Plain);
    if own_migration || own_layout {
        return Ok(None);
    }
    let Ok(format) = detect(&below) else {
        return Ok(None);
    };
    let dumps: Vec<&str> = listing
        .files()
        .filter(|f| f.name.ends_with(".sql"))
        .map(|f| f.name.as_str())
        .collect();
    let source = if dumps.is_empty() {
        format!("{} holds no migrations of its own", dir.display())
    } else {
        format!(
            "{} holds a schema dump ({}), not migrations",
            dir.display(),
            dumps.join(", ")
        )
    };
    Ok(Some(FoundFolder {
        dir: below,
        format,
        source,
    }))
}

/// The files a migration's own subdirectory holds: Prisma's `migration.sql`, diesel's `up.sql`
/// and `down.sql`.
const SUBDIRECTORY_FILES: [&str; 3] = ["migration.sql", "up.sql", "down.sql"];

/// The migrations of the folder `file` belongs to, read in `format` (or the detected one), with
/// `file`'s script keeping the path as given: checking the set and keeping `file`'s findings
/// gives what checking the folder gives for it (its up/down parts, its no-transaction marker,
/// its tool's transaction model, what earlier migrations created).
///
/// The folder is the file's own, or the one above it for a file in a migration's subdirectory
/// (Prisma's `<ts>_<name>/migration.sql`, diesel's `<ver>_<name>/up.sql`); a folder of another
/// tool wins over a plain reading of the nearer one. A file that is no migration of either
/// folder (or whose folder cannot be read) is read alone as plain SQL, as [`crate::load_file`]
/// does.
pub fn load_with_folder(file: &Path, format: Option<Format>) -> Result<MigrationSet, SourceError> {
    let given = std::fs::canonicalize(file).map_err(|source| SourceError::ReadFile {
        path: file.to_path_buf(),
        source,
    })?;
    let non_empty = |p: &Path| {
        if p.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            p.to_path_buf()
        }
    };
    let parent = file.parent().map(non_empty);
    // Only a file named as a migration subdirectory's file can belong to the folder above:
    // reading any other file's grandparent would detect (and walk) a folder that may be a
    // whole project, or `/tmp`.
    let in_subdirectory = file
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| SUBDIRECTORY_FILES.contains(&n));
    let grandparent = file
        .parent()
        .and_then(Path::parent)
        .map(non_empty)
        .filter(|_| in_subdirectory);
    let mut plain = None;
    for dir in parent.into_iter().chain(grandparent) {
        // As `load` does: the files detection reads are read from disk once.
        let Some(mut set) = crate::read::remembering(|| {
            let format = format.or_else(|| detect(&dir).ok())?;
            crate::formats::load(format, &dir).ok()
        }) else {
            continue;
        };
        if !rename_script(&mut set, &given, file) {
            continue;
        }
        if set.format != Format::Plain {
            return Ok(set);
        }
        plain.get_or_insert(set);
    }
    if let Some(set) = plain {
        return Ok(set);
    }
    let migration = crate::load_file(file)?;
    Ok(MigrationSet {
        format: Format::Plain,
        dir: file.parent().map(non_empty).unwrap_or_default(),
        migrations: vec![migration],
        repeatable: Vec::new(),
        skipped: Vec::new(),
    })
}

/// Gives the script of `set` that is the file `real` (a canonical path) the path `shown`;
/// whether one was found.
fn rename_script(set: &mut MigrationSet, real: &Path, shown: &Path) -> bool {
    let scripts = set
        .migrations
        .iter_mut()
        .chain(set.repeatable.iter_mut())
        .flat_map(|m: &mut Migration| std::iter::once(&mut m.up).chain(m.down.as_mut()));
    let mut found = false;
    for script in scripts {
        if std::fs::canonicalize(&script.path).is_ok_and(|p| p == real) {
            script.path = shown.to_path_buf();
            found = true;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drizzle_out_reads_the_config_value() {
        assert_eq!(
            drizzle_out("export default defineConfig({\n  schema: './s.ts',\n  out: \"./migrations/pg\",\n});"),
            Some("./migrations/pg")
        );
        assert_eq!(drizzle_out(r#"{"out": "drizzle"}"#), Some("drizzle"));
        assert_eq!(drizzle_out("const layout = 1; out: `./x`"), Some("./x"));
        assert_eq!(drizzle_out("out: process.env.OUT"), None);
        assert_eq!(drizzle_out("out: `${base}/x`"), None);
    }
}
