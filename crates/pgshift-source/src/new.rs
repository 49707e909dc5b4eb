//! `pgshift new NAME`: writing a timestamped pair of migration files in pgshift's own layout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::SourceError;

/// Writes `<YYYYMMDDHHMMSS>_<name>.up.sql` and `.down.sql` (UTC time `now`) in `dir`, creating
/// `dir` if needed, and returns their paths. `name` is lowercased and reduced to `[a-z0-9_]`
/// ("Add users.email" → `add_users_email`). Refuses to overwrite an existing file.
pub fn new_migration(
    dir: &Path,
    name: &str,
    now: SystemTime,
) -> Result<(PathBuf, PathBuf), SourceError> {
    let clean = sanitise(name);
    if clean.is_empty() {
        return Err(SourceError::InvalidName {
            name: name.to_owned(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| SourceError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    // Two `pgshift new` in the same second (a script, or an expand and its contract written
    // together) would share a version, and a duplicate version stops every command: take the
    // next free second instead.
    let mut at = now;
    while version_taken(dir, &timestamp(at))? {
        at += Duration::from_secs(1);
    }
    let stem = format!("{}_{clean}", timestamp(at));
    let up = dir.join(format!("{stem}.up.sql"));
    let down = dir.join(format!("{stem}.down.sql"));
    for path in [&up, &down] {
        if path.exists() {
            return Err(SourceError::AlreadyExists { path: path.clone() });
        }
    }
    write_new(&up, &format!("-- {stem}: the forward change.\n-- `pgshift check` reviews it; `-- pgshift:no-transaction` runs it outside a transaction.\n\n"))?;
    write_new(&down, &format!("-- {stem}: undo the up migration.\n-- Delete this file to make the migration forward-only.\n\n"))?;
    Ok((up, down))
}

/// Whether a file or directory in `dir` already carries `version` (`<version>_...`).
fn version_taken(dir: &Path, version: &str) -> Result<bool, SourceError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SourceError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let prefix = format!("{version}_");
    for entry in entries {
        let entry = entry.map_err(|source| SourceError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn write_new(path: &Path, text: &str) -> Result<(), SourceError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                SourceError::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                SourceError::Write {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    file.write_all(text.as_bytes())
        .map_err(|source| SourceError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// The longest name kept: `<14 digits>_<name>.down.sql` must fit the 255 bytes most file
/// systems allow in a file name, with room to spare.
const MAX_NAME: usize = 200;

/// Lowercase ASCII letters, digits and single underscores, no leading or trailing underscore,
/// at most [`MAX_NAME`] characters.
fn sanitise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if out.len() >= MAX_NAME {
            break;
        }
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

/// `YYYYMMDDHHMMSS` in UTC. Times before 1970 are written as 1970 (no clock is that wrong on purpose).
fn timestamp(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitise("Add users.email"), "add_users_email");
        assert_eq!(sanitise("  --x--y__z!! "), "x_y_z");
        assert_eq!(sanitise("Ünïcode"), "n_code");
        assert_eq!(sanitise("!!!"), "");
    }

    #[test]
    fn two_migrations_created_in_the_same_second_get_different_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = UNIX_EPOCH + Duration::from_secs(1_709_251_199);
        let (first, _) = new_migration(dir.path(), "expand", now).expect("first");
        let (second, _) = new_migration(dir.path(), "contract", now).expect("second");
        let (third, _) = new_migration(dir.path(), "contract", now).expect("third");
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        assert_eq!(
            name(&first).as_deref(),
            Some("20240229235959_expand.up.sql")
        );
        assert_eq!(
            name(&second).as_deref(),
            Some("20240301000000_contract.up.sql")
        );
        assert_eq!(
            name(&third).as_deref(),
            Some("20240301000001_contract.up.sql")
        );
        let set = crate::load(dir.path(), None).expect("the set loads: no duplicate version");
        assert_eq!(set.migrations.len(), 3);
    }

    #[test]
    fn very_long_names_are_shortened_to_fit_a_file_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (up, down) = new_migration(dir.path(), &"x".repeat(400), UNIX_EPOCH).expect("new");
        for path in [up, down] {
            let len = path.file_name().map_or(0, |n| n.len());
            assert!(len <= 255, "{len}");
        }
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "19700101000000");
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "20240229235959"
        );
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229000000"
        );
        assert_eq!(
            timestamp(UNIX_EPOCH - Duration::from_secs(5)),
            "19700101000000"
        );
    }
}
