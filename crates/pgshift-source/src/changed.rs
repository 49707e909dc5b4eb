//! Which migration files changed since a git ref (`pgshift check --changed-since`), asked of
//! the repository that holds them, not of the directory pgshift runs in: the migrations may
//! live in another checkout (a monorepo's service, a path given on the command line).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::SourceError;

/// Files added, copied, modified or renamed since `git_ref` (committed or not), plus untracked
/// files, as canonical paths, in every repository holding one of `paths` (a directory, or a
/// file whose folder is asked).
pub fn changed_since(paths: &[PathBuf], git_ref: &str) -> Result<BTreeSet<PathBuf>, SourceError> {
    let mut tops = BTreeSet::new();
    for path in paths {
        let dir = if path.is_dir() {
            path.as_path()
        } else {
            match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            }
        };
        let top = git(dir, &["rev-parse", "--show-toplevel"])?;
        tops.insert(PathBuf::from(top.trim_end_matches(['\n', '\r'])));
    }
    let mut changed = BTreeSet::new();
    for top in &tops {
        // Both commands run at the top of the work tree, so both list paths relative to it
        // (`ls-files` lists relative to where it runs); `-z` keeps names unquoted.
        let mut names = git(
            top,
            &[
                "diff",
                "--name-only",
                "-z",
                "--diff-filter=ACMR",
                git_ref,
                "--",
            ],
        )?;
        names.push('\0');
        names.push_str(&git(
            top,
            &["ls-files", "-z", "--others", "--exclude-standard"],
        )?);
        changed.extend(
            names
                .split('\0')
                .filter(|l| !l.is_empty())
                .filter_map(|l| std::fs::canonicalize(top.join(l)).ok()),
        );
    }
    Ok(changed)
}

/// `git -C dir args...`'s standard output.
fn git(dir: &Path, args: &[&str]) -> Result<String, SourceError> {
    let command = format!("git -C {} {}", dir.display(), args.join(" "));
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| SourceError::Git {
            command: command.clone(),
            problem: format!("cannot run git: {e}"),
        })?;
    if !out.status.success() {
        return Err(SourceError::Git {
            command,
            problem: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
