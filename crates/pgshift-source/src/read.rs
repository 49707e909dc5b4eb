//! Listing migration directories and reading migration files as UTF-8, with errors that name
//! the path. Every format reads through here so that the rules (hidden files ignored, names in
//! byte order, non-UTF-8 reported) are the same everywhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::SourceError;

/// One directory entry, name already known to be UTF-8.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub is_dir: bool,
}

/// A directory's entries, sorted by name, plus the ones whose names are not UTF-8 (which no
/// format can match, so they are reported as skipped).
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub entries: Vec<Entry>,
    pub unreadable_names: Vec<PathBuf>,
}

impl Listing {
    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.is_dir)
    }

    pub fn dirs(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.is_dir)
    }

    pub fn has_file(&self, name: &str) -> bool {
        self.files().any(|e| e.name == name)
    }

    /// Skipped-list entries for the names that are not UTF-8.
    pub fn skipped_names(&self) -> Vec<(PathBuf, String)> {
        self.unreadable_names
            .iter()
            .map(|p| (p.clone(), "the file name is not UTF-8".to_owned()))
            .collect()
    }
}

/// Lists `dir`, ignoring hidden entries (`.gitkeep`, editor swap files) and sorting by name.
pub(crate) fn list(dir: &Path) -> Result<Listing, SourceError> {
    let read = std::fs::read_dir(dir).map_err(|source| SourceError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut listing = Listing::default();
    for entry in read {
        let entry = entry.map_err(|source| SourceError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(entry.file_name());
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            listing.unreadable_names.push(path);
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // Follow symlinks: a linked migration directory is still a directory. The entry's
        // own type needs no call to the file system, except for a link.
        let is_dir = match entry.file_type() {
            Ok(t) if !t.is_symlink() => t.is_dir(),
            _ => std::fs::metadata(&path)
                .map(|m| m.is_dir())
                .unwrap_or(false),
        };
        listing.entries.push(Entry { name, path, is_dir });
    }
    listing.entries.sort_by(|a, b| a.name.cmp(&b.name));
    listing.unreadable_names.sort();
    Ok(listing)
}

/// How deep [`list_recursive`] goes: deeper than any real migration tree, shallow enough that
/// a symlink pointing back up the tree cannot make it run away.
const MAX_DEPTH: usize = 8;

/// Lists `dir` and the directories below it, up to [`MAX_DEPTH`] levels (Flyway scans its
/// locations recursively). Entry names are relative to `dir`, `/`-separated.
pub(crate) fn list_recursive(dir: &Path) -> Result<Listing, SourceError> {
    let mut all = Listing::default();
    let mut pending = vec![(dir.to_path_buf(), String::new(), 0)];
    // A directory reached twice (through a symlink) is read once, so a loop is harmless.
    let mut seen = std::collections::HashSet::new();
    while let Some((current, prefix, depth)) = pending.pop() {
        if let Ok(real) = std::fs::canonicalize(&current) {
            if !seen.insert(real) {
                continue;
            }
        }
        let listing = list(&current)?;
        all.unreadable_names.extend(listing.unreadable_names);
        for entry in listing.entries {
            let name = format!("{prefix}{}", entry.name);
            if entry.is_dir && depth < MAX_DEPTH {
                pending.push((entry.path.clone(), format!("{name}/"), depth + 1));
            }
            all.entries.push(Entry {
                name,
                path: entry.path,
                is_dir: entry.is_dir,
            });
        }
    }
    all.entries.sort_by(|a, b| a.name.cmp(&b.name));
    all.unreadable_names.sort();
    Ok(all)
}

/// Reads a file as UTF-8 text. A leading byte-order mark is kept (offsets stay file-relative);
/// PostgreSQL's parser rejects it, which the SQL layer reports with a position.
///
/// A file that resolves (through symbolic links) outside the folder it was found in is
/// refused, and so is anything that is not a regular file: `ln -s /proc/self/environ
/// migrations/2_x.up.sql` must not make `check` print the environment, and a FIFO or
/// `/dev/zero` must not hang it or fill memory. A linked *folder* is followed; the files in
/// it must then be inside it.
pub(crate) fn read_text(path: &Path) -> Result<Arc<str>, SourceError> {
    if let Some(text) = REMEMBERED.with(|r| r.borrow_mut().as_mut().and_then(|m| m.remove(path))) {
        return Ok(text);
    }
    let bytes = read_bytes(path)?;
    let text: Arc<str> = match String::from_utf8(bytes) {
        Ok(text) => Arc::from(text),
        Err(e) => {
            return Err(SourceError::NotUtf8 {
                path: path.to_path_buf(),
                offset: e.utf8_error().valid_up_to(),
            })
        }
    };
    REMEMBERED.with(|r| {
        if let Some(m) = r.borrow_mut().as_mut() {
            m.insert(path.to_path_buf(), text.clone());
        }
    });
    Ok(text)
}

thread_local! {
    /// While [`remembering`] runs: each text read, until it is read a second time.
    static REMEMBERED: std::cell::RefCell<Option<std::collections::HashMap<PathBuf, Arc<str>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `read` with each text it reads kept until it reads it again: a folder whose format is
/// detected from its files' contents and then loaded is read from disk once (a golang-migrate
/// or sqlx folder has no marker, so detection reads every file). Only for the length of one
/// call: a later one reads the files as they are then.
pub(crate) fn remembering<T>(read: impl FnOnce() -> T) -> T {
    struct Forget;
    impl Drop for Forget {
        fn drop(&mut self) {
            REMEMBERED.with(|r| *r.borrow_mut() = None);
        }
    }
    let outermost = REMEMBERED.with(|r| {
        let mut r = r.borrow_mut();
        let outermost = r.is_none();
        if outermost {
            *r = Some(std::collections::HashMap::new());
        }
        outermost
    });
    let _forget = outermost.then_some(Forget);
    read()
}

/// A migration file's bytes, with the refusals of [`read_text`].
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, SourceError> {
    let read_error = |source| SourceError::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let entry = std::fs::symlink_metadata(path).map_err(read_error)?;
    let is_link = entry.file_type().is_symlink();
    if is_link {
        let target = std::fs::canonicalize(path).map_err(read_error)?;
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        let folder = folder.unwrap_or(Path::new("."));
        let real_folder = std::fs::canonicalize(folder).map_err(read_error)?;
        if !target.starts_with(&real_folder) {
            return Err(SourceError::LinkOutsideFolder {
                path: path.to_path_buf(),
                target,
                folder: folder.to_path_buf(),
            });
        }
    }
    // What a link points at is looked at once more; anything else, `entry` already says.
    let is_file = match is_link {
        true => std::fs::metadata(path).map_err(read_error)?.is_file(),
        false => entry.is_file(),
    };
    if !is_file {
        return Err(SourceError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    std::fs::read(path).map_err(read_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_from_disk_once_within_one_load_and_anew_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("1_a.up.sql");
        std::fs::write(&path, "SELECT 1;").expect("write");
        let (first, second) = remembering(|| {
            let first = read_text(&path).expect("read");
            std::fs::write(&path, "SELECT 2;").expect("write");
            (first, read_text(&path).expect("read again"))
        });
        assert_eq!((&*first, &*second), ("SELECT 1;", "SELECT 1;"));
        assert_eq!(&*read_text(&path).expect("after"), "SELECT 2;");
        // Refusals are not remembered: a missing file is an error every time.
        let missing = dir.path().join("2_b.up.sql");
        remembering(|| {
            assert!(read_text(&missing).is_err());
            std::fs::write(&missing, "SELECT 3;").expect("write");
            assert_eq!(&*read_text(&missing).expect("now there"), "SELECT 3;");
        });
    }
}
