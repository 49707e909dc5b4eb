//! What every command shares: the global flags, the configuration, where the migrations
//! are, the database, and how failures become exit codes.

use std::path::{Path, PathBuf};

use pgshift::config::{self, LoadedConfig};
use pgshift_db::{DatabaseUrl, DbError};
use pgshift_runner::{Migrator, RunError, RunOptions};
use pgshift_source::{Format, MigrationSet, SourceError};

use super::exit;
use super::output::Style;

#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// The database URL (postgres://user@host:port/db?sslmode=...). Default: $DATABASE_URL, then pgshift.toml.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The migrations directory. Default: pgshift.toml's `dir`, then ./migrations.
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// Force the migration format instead of detecting it (pgshift, sqlx, golang-migrate, flyway, dbmate, goose, diesel, prisma, drizzle, atlas, node-pg-migrate, plain).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub dir_format: Option<String>,
    /// The configuration file. Default: the nearest pgshift.toml from the current directory up.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

/// A command's failure: the message to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: exit::USAGE,
        }
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Failure {
        Failure::usage(e.to_string())
    }
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Failure {
        Failure::usage(e.to_string())
    }
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Failure {
        let code = match &e {
            DbError::Connect { .. } | DbError::TlsSetup { .. } | DbError::ConnectionLost { .. } => {
                exit::DATABASE
            }
            DbError::InvalidUrl { .. } => exit::USAGE,
            _ => exit::FAILED,
        };
        Failure {
            message: e.to_string(),
            code,
        }
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Failure {
        match e {
            RunError::Db(db) => Failure::from(db),
            RunError::Source(s) => Failure::from(s),
            RunError::Statement(_)
            | RunError::Backfill { .. }
            | RunError::LockBudget { .. }
            | RunError::LockWait { .. }
            | RunError::HistoryPermission(_)
            | RunError::Backup(pgshift_runner::backup::BackupError::PgDumpFailed { .. }) => {
                Failure {
                    message: e.to_string(),
                    code: exit::FAILED,
                }
            }
            other => Failure::usage(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        // Writing to a closed pipe (`pgshift status | head`) is not worth a message; the exit
        // code still says the output was not all delivered.
        let message = if e.kind() == std::io::ErrorKind::BrokenPipe {
            String::new()
        } else {
            format!("cannot write the output: {e}")
        };
        Failure {
            message,
            code: exit::FAILED,
        }
    }
}

pub struct Context {
    pub global: GlobalArgsOwned,
    pub config: LoadedConfig,
    pub out_style: Style,
    pub err_style: Style,
}

/// The global flags, kept after parsing.
pub struct GlobalArgsOwned {
    pub database_url: Option<String>,
    pub dir: Option<PathBuf>,
    pub dir_format: Option<String>,
}

impl Context {
    pub fn new(global: &GlobalArgs) -> Result<Context, Failure> {
        let cwd = std::env::current_dir()
            .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))?;
        let config = config::load(global.config.as_deref(), &cwd)?;
        Ok(Context {
            global: GlobalArgsOwned {
                database_url: global.database_url.clone(),
                dir: global.dir.clone(),
                dir_format: global.dir_format.clone(),
            },
            config,
            out_style: Style::stdout(),
            err_style: Style::stderr(),
        })
    }

    /// `--dir`, else the configuration's `dir`, else `./migrations`.
    pub fn migrations_dir(&self) -> PathBuf {
        let dir = self
            .global
            .dir
            .clone()
            .or_else(|| self.config.dir())
            .unwrap_or_else(|| PathBuf::from("migrations"));
        // Messages and CI annotations want paths relative to where pgshift runs (the
        // repository root in CI), not the absolute path the config file was found at.
        match std::env::current_dir() {
            Ok(cwd) => match dir.strip_prefix(&cwd) {
                Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
                _ => dir,
            },
            Err(_) => dir,
        }
    }

    /// `--dir-format`, else the configuration's `format`, else detection.
    pub fn format(&self) -> Result<Option<Format>, Failure> {
        let name = self
            .global
            .dir_format
            .as_deref()
            .or(self.config.config.format.as_deref());
        name.map(|n| {
            n.parse::<Format>().map_err(|_| {
                let known: Vec<&str> = Format::all().iter().map(|f| f.name()).collect();
                Failure::usage(format!(
                    "unknown migration format `{n}`; pgshift reads {}",
                    known.join(", ")
                ))
            })
        })
        .transpose()
    }

    /// The migrations to run, with a warning on stderr for every file that is in the
    /// directory but will not run: a user must not believe a file applied that never is.
    pub fn load_set(&self) -> Result<MigrationSet, Failure> {
        let set = self.load_set_from(&self.migrations_dir())?;
        self.warn_not_run(&set);
        Ok(set)
    }

    fn warn_not_run(&self, set: &MigrationSet) {
        for line in not_run_warnings(set) {
            eprintln!("{} {line}", self.err_style.yellow("warning:"));
        }
    }

    pub fn load_set_from(&self, dir: &Path) -> Result<MigrationSet, Failure> {
        Ok(pgshift_source::load(dir, self.format()?)?)
    }

    /// The database: `--database-url`, else `DATABASE_URL`, else pgshift.toml.
    pub fn database_url(&self) -> Result<DatabaseUrl, Failure> {
        let raw = self
            .global
            .database_url
            .clone()
            .or_else(|| self.config.config.database_url.clone())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                Failure::usage(
                    "this command needs a database: pass --database-url, set DATABASE_URL, or set database_url in pgshift.toml",
                )
            })?;
        Ok(DatabaseUrl::parse(&raw)?)
    }

    pub fn run_options(&self) -> RunOptions {
        self.config.config.run.clone()
    }

    pub async fn migrator(&self, options: RunOptions) -> Result<Migrator, Failure> {
        // Say a missing database first: it is the first thing a newcomer hits.
        let url = self.database_url()?;
        // The folder is read on a thread of its own while the server starts the session: each
        // takes a few milliseconds (a backend's start; a few hundred files). The folder's
        // errors still come first, without waiting for a server that is slow to answer: the
        // session, if any, is then closed unused.
        let (dir, format) = (self.migrations_dir(), self.format()?);
        let (send, loaded) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            // The receiver is gone only when the command already failed.
            let _ = send.send(pgshift_source::load(&dir, format));
        });
        let loaded = async {
            match loaded.await {
                Ok(set) => set.map_err(Failure::from),
                Err(_) => Err(Failure::usage(
                    "reading the migrations folder stopped without an answer",
                )),
            }
        };
        let connecting = pgshift_db::connect(&url);
        tokio::pin!(loaded, connecting);
        let (set, conn) = tokio::select! {
            set = &mut loaded => {
                let set = set?;
                (set, connecting.await)
            }
            conn = &mut connecting => (loaded.await?, conn),
        };
        self.warn_not_run(&set);
        Ok(Migrator::from_connection(conn?, set, options))
    }
}

/// The files of `set` that `up` never runs: other tools' repeatable migrations and the files
/// the format reader skipped (with its reason).
fn not_run_warnings(set: &MigrationSet) -> Vec<String> {
    let repeatable = set.repeatable.iter().map(|m| {
        format!(
            "{}: a repeatable migration is checked but not run by pgshift; apply it with Flyway, or make it a versioned migration (V<version>__<name>.sql)",
            m.up.path.display()
        )
    });
    let skipped = set
        .skipped
        .iter()
        .map(|(path, why)| format!("{}: not run: {why}", path.display()));
    repeatable.chain(skipped).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_never_run_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, sql) in [
            ("V1__create.sql", "CREATE TABLE t (id int);"),
            (
                "R__views.sql",
                "CREATE OR REPLACE VIEW v AS SELECT id FROM t;",
            ),
        ] {
            std::fs::write(dir.path().join(name), sql).expect("write");
        }
        let set = pgshift_source::load(dir.path(), Some(Format::Flyway)).expect("load");
        let warnings = not_run_warnings(&set);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("R__views.sql"), "{warnings:?}");
        assert!(warnings[0].contains("not run"), "{warnings:?}");
    }
}
