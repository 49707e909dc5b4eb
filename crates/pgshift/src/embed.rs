//! Migrations compiled into an application's binary, run at start-up with the same safety
//! and the same runner lock as the CLI.
//!
//! In the application's `build.rs` (with `pgshift` also under `[build-dependencies]`):
//!
//! ```no_run
//! // build.rs
//! pgshift::embed::generate("migrations").expect("embed migrations");
//! ```
//!
//! and at start-up:
//!
//! ```ignore
//! static MIGRATIONS: pgshift::embed::Embedded = pgshift::embedded_migrations!();
//!
//! let applied = pgshift::embed::migrate(&database_url, &MIGRATIONS).await?;
//! ```
//!
//! Every file of the directory is embedded (format markers, `meta/_journal.json`, `atlas.sum`,
//! Flyway `.conf` files), so any supported format works, detected as on disk.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pgshift_source::{Format, MigrationSet, SourceError, Version};

use crate::Error;

/// The name of the file [`generate`] writes into `OUT_DIR`.
pub const GENERATED_FILE: &str = "pgshift_embedded_migrations.rs";

/// A migrations directory compiled into the binary: relative paths and contents.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// The directory as it was named at build time (shown in messages).
    pub dir: &'static str,
    pub files: &'static [(&'static str, &'static [u8])],
}

/// Expands to the [`Embedded`] that `pgshift::embed::generate` wrote in `build.rs`.
#[macro_export]
macro_rules! embedded_migrations {
    () => {
        include!(concat!(env!("OUT_DIR"), "/pgshift_embedded_migrations.rs"))
    };
}

/// For `build.rs`: writes `$OUT_DIR/pgshift_embedded_migrations.rs`, an [`Embedded`] holding
/// every file under `dir`, and tells cargo to rebuild when any of them changes.
pub fn generate(dir: impl AsRef<Path>) -> std::io::Result<PathBuf> {
    let out_dir = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            std::io::Error::other("OUT_DIR is not set: call pgshift::embed::generate from build.rs")
        })?;
    let dir = dir.as_ref();
    let code = manifest(dir)?;
    println!("cargo:rerun-if-changed={}", dir.display());
    let path = out_dir.join(GENERATED_FILE);
    std::fs::write(&path, code)?;
    Ok(path)
}

/// The Rust expression `generate` writes: an `Embedded` with `include_bytes!` of every file.
pub fn manifest(dir: &Path) -> std::io::Result<String> {
    let root = std::fs::canonicalize(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let mut files = Vec::new();
    collect(&root, &root, &mut files)?;
    files.sort();
    let mut code = String::new();
    let _ = writeln!(code, "::pgshift::embed::Embedded {{");
    let _ = writeln!(code, "    dir: {:?},", dir.display().to_string());
    let _ = writeln!(code, "    files: &[");
    for (rel, abs) in &files {
        println!("cargo:rerun-if-changed={}", abs.display());
        let _ = writeln!(
            code,
            "        ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        );
    }
    let _ = writeln!(code, "    ],");
    let _ = writeln!(code, "}}");
    Ok(code)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path));
        }
    }
    Ok(())
}

impl Embedded {
    /// Reads the embedded files with the same loaders as a directory on disk (format detected,
    /// or `format`). Paths in messages are `<dir>/<file>` as named at build time.
    pub fn load(&self, format: Option<Format>) -> Result<MigrationSet, SourceError> {
        // The format loaders read directories; give them one, then point every path back at
        // the name the developer knows.
        let scratch = tempfile::tempdir().map_err(|source| SourceError::ReadDir {
            path: PathBuf::from(self.dir),
            source,
        })?;
        for (rel, bytes) in self.files {
            let path = scratch.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| SourceError::ReadDir {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(&path, bytes).map_err(|source| SourceError::ReadDir {
                path: path.clone(),
                source,
            })?;
        }
        let mut set = pgshift_source::load(scratch.path(), format)?;
        let shown = Path::new(self.dir);
        let rename = |p: &mut PathBuf| {
            if let Ok(rel) = p.strip_prefix(scratch.path()) {
                *p = shown.join(rel);
            }
        };
        for m in set.migrations.iter_mut().chain(set.repeatable.iter_mut()) {
            rename(&mut m.up.path);
            if let Some(down) = m.down.as_mut() {
                rename(&mut down.path);
            }
        }
        set.dir = shown.to_path_buf();
        Ok(set)
    }
}

/// Applies every pending embedded migration to the database at `url`, with pgshift's default
/// safety settings and the runner lock. Returns the versions applied.
pub async fn migrate(url: &str, embedded: &Embedded) -> Result<Vec<Version>, Error> {
    let url = pgshift_db::DatabaseUrl::parse(url)?;
    let set = embedded.load(None)?;
    let mut migrator =
        pgshift_runner::Migrator::connect(&url, set, pgshift_runner::RunOptions::default()).await?;
    Ok(migrator.up(None, &pgshift_runner::Silent).await?)
}
