//! `pgshift.toml`: where the migrations are, which database, and the settings of each
//! command. Found in the current directory or the nearest parent; `--config` names one.
//!
//! Precedence everywhere: command-line flag, then environment (`DATABASE_URL`), then this file,
//! then the built-in default.

use std::path::{Path, PathBuf};

use pgshift_lint::CheckOptions;
use pgshift_runner::RunOptions;
use serde::Deserialize;

pub const FILE_NAME: &str = "pgshift.toml";

/// The contents of `pgshift.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The database to migrate. Prefer `DATABASE_URL` for URLs with passwords.
    pub database_url: Option<String>,
    /// The migrations directory, relative to this file.
    pub dir: Option<PathBuf>,
    /// The migration format, when detection should not decide (`"sqlx"`, `"flyway"`, ...).
    pub format: Option<String>,
    /// How `up`/`down` run statements: timeouts, retries, the runner lock.
    pub run: RunOptions,
    /// `pgshift check`: PostgreSQL version, rules on/off, severities, excluded paths.
    pub check: CheckOptions,
}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    pub config: Config,
    /// The file, or `None` when no file was found and defaults apply.
    pub path: Option<PathBuf>,
}

impl LoadedConfig {
    /// The migrations directory the configuration names, resolved against the file's folder.
    pub fn dir(&self) -> Option<PathBuf> {
        let dir = self.config.dir.as_ref()?;
        Some(match self.path.as_ref().and_then(|p| p.parent()) {
            Some(base) if dir.is_relative() && !base.as_os_str().is_empty() => base.join(dir),
            _ => dir.clone(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the configuration: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}\n  `pgshift init` writes a commented example of every setting.", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// Loads `explicit` if given (it must exist), else the nearest `pgshift.toml` from `start`
/// upwards, else defaults.
pub fn load(explicit: Option<&Path>, start: &Path) -> Result<LoadedConfig, ConfigError> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => find(start),
    };
    let Some(path) = path else {
        return Ok(LoadedConfig::default());
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let config = parse(&path, &text)?;
    Ok(LoadedConfig {
        config,
        path: Some(path),
    })
}

pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| {
                let idx = pgshift_sql::LineIndex::new(text);
                let at = idx.line_col(text, s.start);
                (at.line, at.column)
            })
            .unwrap_or((1, 1));
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().to_string(),
        }
    })?;
    config.check.validate().map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: format!("[check] {e}"),
    })?;
    Ok(config)
}

fn find(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let candidate = d.join(FILE_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

/// What `pgshift init` writes: the commented template with the migrations directory `dir`
/// (relative to the file, `/`-separated) and the default PostgreSQL version `check` assumes.
pub fn template(dir: &str) -> String {
    let dir = toml::Value::String(dir.to_owned()).to_string();
    TEMPLATE
        .replace("dir = \"migrations\"", &format!("dir = {dir}"))
        .replace(
            "{pg_version}",
            &pgshift_lint::PgVersion::DEFAULT.to_string(),
        )
}

/// The text of `pgshift.toml` as `pgshift init` writes it, before [`template`] fills in the
/// directory and `{pg_version}`.
const TEMPLATE: &str = r#"# pgshift configuration. Every setting is optional; flags and DATABASE_URL override it.

# The migrations directory, relative to this file.
dir = "migrations"

# The database. Prefer the DATABASE_URL environment variable for URLs with passwords.
# database_url = "postgres://app@localhost:5432/app?sslmode=verify-full"

# The migration format; detected from the directory when unset.
# format = "pgshift"   # or sqlx, golang-migrate, flyway, dbmate, goose, diesel, prisma, drizzle, atlas, node-pg-migrate, plain

[run]
# lock_timeout = "500ms"          # the longest app queries queue behind a DDL statement
# statement_timeout = "1h"
# lock_retry_budget = "5m"        # total time retrying statements that hit lock_timeout
# lock_retry_initial_delay = "200ms"
# lock_retry_max_delay = "10s"
# runner_lock_wait = "10m"        # wait for another pgshift runner on the same database
# concurrent_lock_timeout = "60s" # lock_timeout of CREATE INDEX CONCURRENTLY, VALIDATE, ... (0: no limit)
# long_statement_timeout = 0      # statement_timeout of those statements (0: none)
# exact = false                   # true: run statements as written, no safe rewrites (--exact)
# small_tables_as_written = true  # a migration the rewrites split runs as written, in one transaction, when its tables hold 1 MB at most in all and their locks are free
# guard_max_wait = "60s"          # wait for sessions holding a conflicting lock (0: guard off)
# guard_ignore_younger_than = "100ms"
# guard_long_transaction = 0      # also wait for any transaction open longer than this (0: off)
# guard_cancel_after = 0          # end the sessions in the way after this wait (0: never)
# on_drop = "drop"                # or "deprecate", "backup", "pg_dump" (docs/safe-execution.md)
# pg_dump_dir = "pgshift-backups" # where on_drop = "pg_dump" writes
# backfill_batch_time = "200ms"   # an UPDATE marked -- pgshift:backfill: each batch aims at this
# backfill_lock_timeout = "100ms" # ... and waits this long for a row the app holds, then shrinks
# backfill_when_busy = 0.1        # ... and spends this share of the time in batches while other sessions are at work (1: full speed)
# online = true                 # plan breaking changes as expand/contract (docs/online.md); false: as written
# online_complete = false        # `up` contracts an online change right after its expand (one instance, CI)
# online_allow_lossy = false     # let an online type change through when sampled values do not convert back
# record_in_old_tool = false     # also record what pgshift applies/reverts in the old tool's own table, as that tool writes it

[check]
# pg_version = "{pg_version}"               # the server your migrations run on (this is the default)
# disable = ["prefer-bigint"]
# enable = ["require-schema-qualified"]
# severity = { ban-drop-column = "warning" }
# exclude = ["migrations/legacy/**"]
# runner_sets_timeouts = true     # detected from the format when unset
# runner_rewrites = true          # pgshift up runs the safe rewrites (findings they answer are notes); detected from the format and [run] exact when unset
# baseline = "20240101000000"     # verify's analyzer gates only migrations newer than this (history nobody can change)
# honour_foreign_markers = true   # squawk-ignore, eugene: ignore, atlas:nolint, safety-assured
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses() {
        let c = parse(Path::new("pgshift.toml"), &template("migrations")).expect("template");
        assert_eq!(c.dir.as_deref(), Some(Path::new("migrations")));
        let c = parse(Path::new("pgshift.toml"), &template("db/migrations")).expect("template");
        assert_eq!(c.dir.as_deref(), Some(Path::new("db/migrations")));
    }

    #[test]
    fn backfill_when_busy_reaches_the_backfills_of_up_and_start() {
        let c = parse(
            Path::new("pgshift.toml"),
            "[run]\nbackfill_when_busy = 0.5\n",
        )
        .expect("config");
        let busy = c.run.backfill_options().when_busy.expect("yields");
        assert_eq!(busy.duty, 0.5);
        let c = parse(Path::new("pgshift.toml"), "").expect("config");
        assert_eq!(
            c.run.backfill_options().when_busy.map(|b| b.duty),
            Some(0.1)
        );
        // 0 is not "never yield": refused with its line, as a value out of range.
        let err = parse(Path::new("pgshift.toml"), "[run]\nbackfill_when_busy = 0\n")
            .expect_err("0 is refused");
        let text = err.to_string();
        assert!(text.contains("pgshift.toml:2"), "{text}");
        assert!(text.contains("from 0.01 to 1"), "{text}");
    }

    #[test]
    fn the_template_names_the_default_pg_version() {
        let line = template("migrations")
            .lines()
            .find(|l| l.contains("pg_version"))
            .map(str::to_owned)
            .unwrap_or_default();
        let expected = format!("pg_version = \"{}\"", pgshift_lint::PgVersion::DEFAULT);
        assert!(line.contains(&expected), "{line}");
    }

    /// The keys serde accepts in a table, read from its "unknown field" error.
    fn keys_of_table(table: &str) -> Vec<String> {
        let err = parse(
            Path::new("pgshift.toml"),
            &format!("[{table}]\nno_such_key = 1\n"),
        )
        .expect_err("unknown key");
        let text = err.to_string();
        let listed = text.split("expected one of").nth(1).unwrap_or_default();
        listed
            .split(',')
            .filter_map(|k| k.split('`').nth(1).map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_template_names_every_setting_and_each_one_parses_uncommented() {
        let mut uncommented = String::new();
        for line in template("migrations").lines() {
            // `# key = value   # why` → `key = value`; prose comments stay comments.
            let setting = line.strip_prefix("# ").filter(|l| {
                l.split_once(" = ")
                    .is_some_and(|(k, _)| !k.is_empty() && !k.contains(' '))
            });
            match setting {
                Some(l) => {
                    let value_end = l.find("  #").unwrap_or(l.len());
                    uncommented.push_str(&l[..value_end]);
                }
                None => uncommented.push_str(line),
            }
            uncommented.push('\n');
        }
        parse(Path::new("pgshift.toml"), &uncommented).expect("every setting, uncommented");
        for key in ["database_url", "dir", "format"] {
            assert!(
                uncommented
                    .lines()
                    .any(|l| l.starts_with(&format!("{key} = "))),
                "{key}"
            );
        }
        for table in ["run", "check"] {
            let keys = keys_of_table(table);
            assert!(keys.len() > 3, "[{table}] keys read from serde: {keys:?}");
            for key in keys {
                assert!(
                    uncommented
                        .lines()
                        .any(|l| l.starts_with(&format!("{key} = "))),
                    "`pgshift init` does not write [{table}] {key}"
                );
            }
        }
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = parse(
            Path::new("pgshift.toml"),
            "dir = \"m\"\n[run]\nlock_timeout = \"soon\"\n",
        )
        .expect_err("bad");
        let text = err.to_string();
        assert!(text.starts_with("pgshift.toml:3:"), "{text}");
        let err = parse(Path::new("x/pgshift.toml"), "colour = 1\n").expect_err("unknown key");
        assert!(err.to_string().contains("x/pgshift.toml:1:1"), "{err}");
    }

    #[test]
    fn dir_is_relative_to_the_file() {
        let loaded = LoadedConfig {
            config: Config {
                dir: Some("migrations".into()),
                ..Config::default()
            },
            path: Some("project/pgshift.toml".into()),
        };
        assert_eq!(loaded.dir(), Some(PathBuf::from("project/migrations")));
    }
}
