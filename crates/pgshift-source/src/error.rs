//! The one error type of this crate. Every variant names the file or directory it is about (and the
//! line, where there is one) and says what the user can do about it, because these messages reach
//! the terminal unchanged.

use std::path::PathBuf;

use crate::Format;

/// Why a migration source could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The migration directory could not be listed.
    #[error("cannot read migration directory {}: {source}; check that it exists and that you may read it", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A migration file could not be read.
    #[error("cannot read migration file {}: {source}; check that it exists and that you may read it", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A migration file that is a symbolic link to a file outside the folder it is listed in.
    #[error("{}: the file is a symbolic link to {}, outside {}; pgshift reads migration files only from inside the migrations folder (a link could make it print any file); copy the file into the folder, or link the whole folder instead", path.display(), target.display(), folder.display())]
    LinkOutsideFolder {
        path: PathBuf,
        target: PathBuf,
        folder: PathBuf,
    },

    /// A migration file that is not a regular file (a device, a FIFO, a socket).
    #[error("{}: not a regular file (a device, a pipe or a socket); a migration must be a file of SQL text", path.display())]
    NotAFile { path: PathBuf },

    /// A migration file is not UTF-8 text.
    #[error("{}: the file is not valid UTF-8 (first bad byte at offset {offset}); re-save it as UTF-8", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },

    /// The directory holds nothing at all.
    #[error("{}: the migration directory is empty; create a migration with `pgshift new NAME`, or point at the directory that holds your migrations (force a layout with `--dir-format`, one of: {})", path.display(), Format::names_list())]
    EmptyDir { path: PathBuf },

    /// Nothing in the directory looks like a migration of any known format.
    #[error("{}: no migration format recognised; saw {seen}. Force a layout with `--dir-format` (one of: {}), or add `.sql` files", path.display(), Format::names_list())]
    UnknownLayout { path: PathBuf, seen: String },

    /// A directory of migrations written as code (Knex, TypeORM, Alembic, Django), which no
    /// format reads: pgshift reads SQL.
    #[error("{}: {seen}: {language} migrations, which pgshift does not read: it reads SQL files only, and no `--dir-format` reads these. {what_to_do}", path.display())]
    CodeMigrations {
        path: PathBuf,
        /// "12 `.ts` files (1700000000000-Init.ts, ...)".
        seen: String,
        language: &'static str,
        what_to_do: &'static str,
    },

    /// A format name that pgshift does not know.
    #[error(
        "unknown migration format `{name}`; use one of: {}",
        Format::names_list()
    )]
    UnknownFormat { name: String },

    /// Two migrations share one version.
    #[error("{}: version {version} is also used by {}; give one of them a new version (rename the file)", second.display(), first.display())]
    DuplicateVersion {
        version: String,
        first: PathBuf,
        second: PathBuf,
    },

    /// A down (or undo) script whose up script does not exist.
    #[error("{}: this down migration has no matching up migration {expected}; add the up file or delete this one", path.display())]
    DownWithoutUp { path: PathBuf, expected: String },

    /// A file name that fits the format's pattern but whose version cannot be used.
    #[error("{}: invalid version `{raw}`: {reason}; rename the file", path.display())]
    InvalidVersion {
        path: PathBuf,
        raw: String,
        reason: &'static str,
    },

    /// A required section marker is missing from a file (dbmate `-- migrate:up`, goose `-- +goose Up`).
    #[error("{}:{line}: {format} migration has no `{marker}` line; add it above the SQL it introduces", path.display())]
    MissingMarker {
        path: PathBuf,
        line: usize,
        format: Format,
        marker: &'static str,
    },

    /// A file's sections are in an order its tool rejects, or SQL stands outside any section.
    #[error("{}:{line}: {problem}; {fix}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        problem: String,
        fix: &'static str,
    },

    /// A side file (Flyway `.conf`, diesel `metadata.toml`, Drizzle `_journal.json`, `atlas.sum`) could not be understood.
    #[error("{}{}: {problem}; {fix}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    SideFile {
        path: PathBuf,
        line: Option<usize>,
        problem: String,
        fix: &'static str,
    },

    /// Atlas's directory checksum file is missing.
    #[error("{}: atlas.sum is missing; run `atlas migrate hash` to create it, or use `--dir-format plain` to read the files without integrity checking", path.display())]
    AtlasSumMissing { path: PathBuf },

    /// A migration file does not match its entry in `atlas.sum`.
    #[error("{}: does not match {} ({problem}); run `atlas migrate hash` or fix the file", file.display(), sum.display())]
    AtlasSumMismatch {
        sum: PathBuf,
        file: PathBuf,
        problem: &'static str,
    },

    /// `pgshift new` was given a name with nothing usable in it.
    #[error("`{name}` is not a usable migration name; use letters, digits and underscores, e.g. `add_users_email`")]
    InvalidName { name: String },

    /// `pgshift new` would overwrite a file.
    #[error("{}: already exists; pick another name or wait a second for a new timestamp", path.display())]
    AlreadyExists { path: PathBuf },

    /// `pgshift new` could not write a file.
    #[error("cannot write {}: {source}; check that the directory exists and is writable", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Asking git which files changed failed.
    #[error("`{command}` failed: {problem}. Is this a git checkout, and does the ref exist (in CI, fetch it first: `git fetch origin main`)?")]
    Git { command: String, problem: String },
}

impl SourceError {
    /// The file or directory the error is about, for diagnostics that point at it.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            SourceError::ReadDir { path, .. }
            | SourceError::ReadFile { path, .. }
            | SourceError::NotUtf8 { path, .. }
            | SourceError::LinkOutsideFolder { path, .. }
            | SourceError::NotAFile { path }
            | SourceError::EmptyDir { path }
            | SourceError::UnknownLayout { path, .. }
            | SourceError::CodeMigrations { path, .. }
            | SourceError::DownWithoutUp { path, .. }
            | SourceError::InvalidVersion { path, .. }
            | SourceError::MissingMarker { path, .. }
            | SourceError::Malformed { path, .. }
            | SourceError::SideFile { path, .. }
            | SourceError::AtlasSumMissing { path }
            | SourceError::AlreadyExists { path }
            | SourceError::Write { path, .. } => Some(path),
            SourceError::DuplicateVersion { second, .. } => Some(second),
            SourceError::AtlasSumMismatch { file, .. } => Some(file),
            SourceError::UnknownFormat { .. }
            | SourceError::InvalidName { .. }
            | SourceError::Git { .. } => None,
        }
    }

    /// The 1-based line in [`SourceError::path`] the error is about, where there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            SourceError::MissingMarker { line, .. } | SourceError::Malformed { line, .. } => {
                Some(*line)
            }
            SourceError::SideFile { line, .. } => *line,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_line_point_at_the_problem() {
        let err = SourceError::Malformed {
            path: PathBuf::from("a.sql"),
            line: 3,
            problem: "x".into(),
            fix: "y",
        };
        assert_eq!(err.path(), Some(std::path::Path::new("a.sql")));
        assert_eq!(err.line(), Some(3));
        let dup = SourceError::DuplicateVersion {
            version: "1".into(),
            first: "1_a.sql".into(),
            second: "1_b.sql".into(),
        };
        assert_eq!(dup.path(), Some(std::path::Path::new("1_b.sql")));
        assert_eq!(dup.line(), None);
        assert_eq!(SourceError::UnknownFormat { name: "x".into() }.path(), None);
    }
}
