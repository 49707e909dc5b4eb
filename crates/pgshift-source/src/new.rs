//! `pgshift new NAME`: writing a timestamped pair of migration files in pgshift's own layout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

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
    let stem = format!("{}_{clean}", timestamp(now));
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

/// Lowercase ASCII letters, digits and single underscores, no leading or trailing underscore.
fn sanitise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
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
    use std::time::Duration;

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitise("Add users.email"), "add_users_email");
        assert_eq!(sanitise("  --x--y__z!! "), "x_y_z");
        assert_eq!(sanitise("Ünïcode"), "n_code");
        assert_eq!(sanitise("!!!"), "");
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
