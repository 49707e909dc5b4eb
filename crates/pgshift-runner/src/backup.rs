//! Recoverable destructive steps (`[run] on_drop`): what `DROP TABLE` and `ALTER TABLE ...
//! DROP COLUMN` on a table that existed before the migration do instead of (or before)
//! destroying data.
//!
//! - `drop` (default): as written.
//! - `deprecate`: rename instead of drop — the table to `<table>_deprecated_<YYYYMMDD>`, the
//!   column to `<column>_deprecated_<YYYYMMDD>` (and its NOT NULL dropped, so code that no
//!   longer knows the column can still insert). Restore: rename it back.
//! - `backup`: copy first, in the same transaction as the drop — the table with
//!   `CREATE TABLE _backup_<table>_<YYYYMMDD> AS TABLE <table>`, a column with the table's
//!   primary key (`AS SELECT <pk>, <column> FROM <table>`; the whole table when there is no
//!   primary key). Restore: `CREATE TABLE ... AS TABLE` back, or `UPDATE ... FROM` the backup.
//! - `pg_dump`: before the migration runs, `pg_dump --table` of every affected table into
//!   one plain-SQL file in `pg_dump_dir`. Restore: `psql -f <file>` (into a scratch database
//!   to pick out a column).
//!
//! Names come from the server's clock (`now()`), are made unique with a `_2`, `_3`, ...
//! suffix when taken, and are cut to PostgreSQL's 63-byte limit. Only the up direction is
//! affected; a down migration that drops what its up created drops it.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgshift_db::{DatabaseUrl, DbError};
use pgshift_sql::ident::{clip, quote_ident, MAX_IDENTIFIER_BYTES};

use crate::event::{Event, Observer};
use crate::options::OnDrop;
use crate::prepare::{Drops, StatementFacts};
use crate::units::{Execution, Step, Unit};

/// What went wrong making a destructive step recoverable. Nothing of the migration ran.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("on_drop = \"pg_dump\": no pg_dump found (searched {searched}). Install the PostgreSQL client programs, set PGSHIFT_PG_BIN to their directory, or choose another on_drop mode. Nothing was run.")]
    PgDumpNotFound { searched: String },

    #[error("on_drop = \"pg_dump\": could not create the dump directory {}: {source}. Nothing was run; set `pg_dump_dir` to a writable directory.", dir.display())]
    DumpDir {
        dir: PathBuf,
        source: std::io::Error,
    },

    #[error("on_drop = \"pg_dump\": `{program}` failed for migration {version} ({status}): {stderr}\n  Nothing of the migration was run. Fix the cause, or choose another on_drop mode.")]
    PgDumpFailed {
        version: String,
        program: String,
        status: String,
        stderr: String,
    },
}

/// A `pg_dump` to run before a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDump {
    /// Resolved, schema-qualified tables, for messages (`public.users`).
    pub tables: Vec<String>,
    /// `--table` patterns, each double-quoted so that it matches exactly one table.
    pub patterns: Vec<String>,
    pub file: PathBuf,
}

/// A table or column about to be dropped, resolved on the live database.
#[derive(Debug, Clone)]
struct Target {
    schema: String,
    table: String,
    column: Option<String>,
}

impl Target {
    fn quoted_table(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
    fn display(&self) -> String {
        match &self.column {
            Some(c) => format!("{}.{}.{c}", self.schema, self.table),
            None => format!("{}.{}", self.schema, self.table),
        }
    }
}

/// Rewrites the drop steps of `exec` as `mode` says. Reads the catalog (table schemas,
/// primary keys, which names are free) but changes nothing; `pg_dump` mode returns the dump
/// to run with [`run_dump`] before the migration.
pub async fn protect(
    client: &tokio_postgres::Client,
    version: &str,
    exec: Execution,
    statements: &[StatementFacts],
    mode: OnDrop,
    dump_dir: &Path,
) -> Result<(Execution, Option<PlannedDump>), DbError> {
    if mode == OnDrop::Drop {
        return Ok((exec, None));
    }
    let date: String = client
        .query_one("SELECT to_char(now(), 'YYYYMMDD')", &[])
        .await?
        .try_get(0)?;
    let mut taken: Vec<String> = Vec::new();
    let mut dumped: Vec<Target> = Vec::new();
    let mut units = Vec::with_capacity(exec.units.len());
    for unit in exec.units {
        let mut steps: Vec<Step> = Vec::with_capacity(unit.steps.len());
        let mut transactional = unit.transactional;
        for step in unit.steps {
            // A statement as written (not a step of a safe rewrite) that drops data.
            let drops = statements
                .iter()
                .find(|s| s.span.start == step.origin.start)
                .filter(|_| step.is_verbatim())
                .and_then(|s| s.drops.as_deref());
            let targets = match drops {
                Some(drops) => drop_targets(client, drops).await?,
                None => Vec::new(),
            };
            if targets.is_empty() {
                steps.push(step);
                continue;
            }
            match mode {
                OnDrop::Drop => steps.push(step),
                OnDrop::PgDump => {
                    dumped.extend(targets);
                    steps.push(step);
                }
                OnDrop::Deprecate => {
                    for t in &targets {
                        steps.extend(deprecate(client, t, &date, &step, &mut taken).await?);
                    }
                    // `DROP TABLE kept, new_in_this_migration`: the tables that are not kept
                    // still go, as the author wrote (IF EXISTS and CASCADE included).
                    if let Some(sql) = leftover_drop(client, drops, &targets).await? {
                        steps.push(protected_step(
                            sql,
                            "on_drop = deprecate: drop the other tables the statement names"
                                .to_string(),
                            &step,
                        ));
                    }
                }
                OnDrop::Backup => {
                    for t in &targets {
                        steps.push(backup(client, t, &date, &step, &mut taken).await?);
                    }
                    // The copy and the drop commit together, so a crash between them cannot
                    // leave a backup that a resumed run would try to create again.
                    transactional = true;
                    steps.push(step);
                }
            }
        }
        // Another form for a busy table stands in for the one statement only.
        let when_busy = unit.when_busy.clone().filter(|_| steps.len() == 1);
        units.push(Unit {
            when_busy,
            ..Unit::new(transactional, unit.in_author_transaction, steps)
        });
    }
    let dump = if dumped.is_empty() {
        None
    } else {
        let stamp: String = client
            .query_one("SELECT to_char(now(), 'YYYYMMDD\"T\"HH24MISS')", &[])
            .await?
            .try_get(0)?;
        let mut tables: Vec<String> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        for t in dumped {
            let pattern = t.quoted_table();
            if !patterns.contains(&pattern) {
                tables.push(format!("{}.{}", t.schema, t.table));
                patterns.push(pattern);
            }
        }
        Some(PlannedDump {
            tables,
            patterns,
            file: dump_dir.join(format!("pgshift_{version}_{stamp}.sql")),
        })
    };
    Ok((Execution { units, ..exec }, dump))
}

/// For a `DROP TABLE` naming several tables: a `DROP TABLE` of the ones that are not in
/// `targets` (created in this migration, or absent under IF EXISTS), with the statement's
/// IF EXISTS and CASCADE; `None` when every table named is a target.
async fn leftover_drop(
    client: &tokio_postgres::Client,
    drops: Option<&Drops>,
    targets: &[Target],
) -> Result<Option<String>, DbError> {
    let Some(Drops::Tables {
        all,
        if_exists,
        cascade,
        ..
    }) = drops
    else {
        return Ok(None);
    };
    let mut rest = Vec::new();
    for name in all {
        let resolved = resolve(client, &name.quoted()).await?;
        let kept = resolved.is_some_and(|(schema, table)| {
            targets
                .iter()
                .any(|t| t.column.is_none() && t.schema == schema && t.table == table)
        });
        if !kept {
            rest.push(name.quoted());
        }
    }
    if rest.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "DROP TABLE {}{}{}",
        if *if_exists { "IF EXISTS " } else { "" },
        rest.join(", "),
        if *cascade { " CASCADE" } else { "" }
    )))
}

/// The existing tables (and column) a statement drops, resolved on the live database;
/// nothing for a table created in this migration or absent under IF EXISTS.
async fn drop_targets(
    client: &tokio_postgres::Client,
    drops: &Drops,
) -> Result<Vec<Target>, DbError> {
    let mut out = Vec::new();
    match drops {
        Drops::Tables { existing, .. } => {
            for name in existing {
                if let Some((schema, table)) = resolve(client, &name.quoted()).await? {
                    out.push(Target {
                        schema,
                        table,
                        column: None,
                    });
                }
            }
        }
        Drops::Column {
            table: name,
            column,
        } => {
            if let Some((schema, table)) = resolve(client, &name.quoted()).await? {
                let exists = client
                    .query_opt(
                        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                        &[&name.quoted(), column],
                    )
                    .await?
                    .is_some();
                if exists {
                    out.push(Target {
                        schema,
                        table,
                        column: Some(column.clone()),
                    });
                }
            }
        }
    }
    Ok(out)
}

async fn resolve(
    client: &tokio_postgres::Client,
    quoted: &str,
) -> Result<Option<(String, String)>, DbError> {
    let row = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')",
            &[&quoted],
        )
        .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    })
}

/// Where a new name must be free.
enum NameSpace<'a> {
    /// A relation name in this schema.
    Schema(&'a str),
    /// A column name of this (quoted) table.
    Columns(&'a str),
}

/// The name an object is kept under: `<prefix><object><suffix>` and, from the second try on,
/// `_<n>`. The object's name is what gets shortened to fit PostgreSQL's 63 bytes, never the
/// prefix, the suffix (which carries the date) or the counter: on a 63-byte table name,
/// `<table>_deprecated_<date>` keeps its date, as the docs promise.
pub fn kept_name(prefix: &str, object: &str, suffix: &str, n: usize) -> String {
    let counter = if n <= 1 {
        String::new()
    } else {
        format!("_{n}")
    };
    let fixed = prefix.len() + suffix.len() + counter.len();
    let room = MAX_IDENTIFIER_BYTES.saturating_sub(fixed);
    format!("{prefix}{}{suffix}{counter}", clip(object, room))
}

/// The first of `kept_name(prefix, object, suffix, 1)`, `..., 2)`, ... that is free.
async fn free_name(
    client: &tokio_postgres::Client,
    (prefix, object, suffix): (&str, &str, &str),
    space: NameSpace<'_>,
    taken: &mut Vec<String>,
) -> Result<String, DbError> {
    let mut n = 1;
    loop {
        let candidate = kept_name(prefix, object, suffix, n);
        if !taken.contains(&candidate) && is_free(client, &space, &candidate).await? {
            taken.push(candidate.clone());
            return Ok(candidate);
        }
        n += 1;
    }
}

async fn is_free(
    client: &tokio_postgres::Client,
    space: &NameSpace<'_>,
    name: &str,
) -> Result<bool, DbError> {
    let row = match space {
        NameSpace::Schema(schema) => {
            let quoted = format!("{}.{}", quote_ident(schema), quote_ident(name));
            client
                .query_one("SELECT to_regclass($1) IS NULL", &[&quoted])
                .await?
        }
        NameSpace::Columns(table) => {
            client
                .query_one(
                    "SELECT NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped)",
                    &[table, &name],
                )
                .await?
        }
    };
    Ok(row.try_get(0)?)
}

fn protected_step(sql: String, purpose: String, origin: &Step) -> Step {
    Step::generated(sql, origin.origin.clone(), purpose)
}

async fn deprecate(
    client: &tokio_postgres::Client,
    t: &Target,
    date: &str,
    step: &Step,
    taken: &mut Vec<String>,
) -> Result<Vec<Step>, DbError> {
    let table = t.quoted_table();
    match &t.column {
        None => {
            let suffix = format!("_deprecated_{date}");
            let base = ("", t.table.as_str(), suffix.as_str());
            let name = free_name(client, base, NameSpace::Schema(&t.schema), taken).await?;
            Ok(vec![protected_step(
                format!("ALTER TABLE {table} RENAME TO {}", quote_ident(&name)),
                format!(
                    "on_drop = deprecate: keep {} as {}.{name} instead of dropping it",
                    t.display(),
                    t.schema
                ),
                step,
            )])
        }
        Some(column) => {
            let suffix = format!("_deprecated_{date}");
            let base = ("", column.as_str(), suffix.as_str());
            let name = free_name(client, base, NameSpace::Columns(&table), taken).await?;
            let mut steps = vec![protected_step(
                format!(
                    "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                    quote_ident(column),
                    quote_ident(&name)
                ),
                format!(
                    "on_drop = deprecate: keep {} as column {name} instead of dropping it",
                    t.display()
                ),
                step,
            )];
            // A NOT NULL column that the application no longer writes would make its
            // inserts fail; a primary-key column cannot drop NOT NULL (and is rarely dropped).
            let needs_nullable = client
                .query_one(
                    "SELECT a.attnotnull AND NOT EXISTS (
                        SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary
                           AND a.attnum = ANY (i.indkey::int2[]))
                       FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2",
                    &[&table, column],
                )
                .await?
                .try_get::<_, bool>(0)?;
            if needs_nullable {
                steps.push(protected_step(
                    format!(
                        "ALTER TABLE {table} ALTER COLUMN {} DROP NOT NULL",
                        quote_ident(&name)
                    ),
                    "on_drop = deprecate: the kept column must not make new inserts fail"
                        .to_string(),
                    step,
                ));
            }
            Ok(steps)
        }
    }
}

async fn backup(
    client: &tokio_postgres::Client,
    t: &Target,
    date: &str,
    step: &Step,
    taken: &mut Vec<String>,
) -> Result<Step, DbError> {
    let table = t.quoted_table();
    let suffix = format!("_{date}");
    let base = ("_backup_", t.table.as_str(), suffix.as_str());
    let name = free_name(client, base, NameSpace::Schema(&t.schema), taken).await?;
    let target = format!("{}.{}", quote_ident(&t.schema), quote_ident(&name));
    let (select, what) = match &t.column {
        None => (format!("TABLE {table}"), "the table".to_string()),
        Some(column) => {
            let pk: Vec<String> = client
                .query(
                    "SELECT a.attname::text FROM pg_index i
                       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
                      WHERE i.indrelid = to_regclass($1) AND i.indisprimary
                      ORDER BY array_position(i.indkey::int2[], a.attnum)",
                    &[&table],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            if pk.is_empty() || pk.contains(column) {
                (
                    format!("TABLE {table}"),
                    "the whole table (it has no primary key to match the column's rows by)"
                        .to_string(),
                )
            } else {
                let mut cols: Vec<String> = pk.iter().map(|c| quote_ident(c)).collect();
                cols.push(quote_ident(column));
                (
                    format!("SELECT {} FROM {table}", cols.join(", ")),
                    format!("column {column} with the primary key ({})", pk.join(", ")),
                )
            }
        }
    };
    Ok(protected_step(
        format!("CREATE TABLE {target} AS {select}"),
        format!(
            "on_drop = backup: copy {what} of {} to {}.{name} before dropping",
            t.display(),
            t.schema
        ),
        step,
    ))
}

/// Tells the observer what `protect` changed: each rewritten step is announced by the runner
/// as it runs (`Event::Rewrite`); the dump is announced here, before it is taken.
pub fn announce_dump(version: &str, dump: &PlannedDump, observer: &dyn Observer) {
    observer.event(&Event::Backup {
        version: version.to_string(),
        mode: "pg_dump",
        object: dump.tables.join(", "),
        kept_in: dump.file.display().to_string(),
    });
}

/// Finds `pg_dump` the way the throwaway cluster finds the server programs:
/// `PGSHIFT_PG_BIN`, then `PATH`, then `pg_config --bindir`, then the newest
/// `/usr/lib/postgresql/*/bin`.
pub fn find_pg_dump() -> Result<PathBuf, BackupError> {
    let mut searched = Vec::new();
    if let Some(dir) = std::env::var_os("PGSHIFT_PG_BIN").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(dir).join("pg_dump");
        if p.is_file() {
            return Ok(p);
        }
        searched.push(format!("{} (PGSHIFT_PG_BIN)", p.display()));
    }
    searched.push("PATH".to_string());
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("pg_dump");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    searched.push("pg_config --bindir".to_string());
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("pg_dump");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    searched.push("/usr/lib/postgresql/*/bin".to_string());
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<(Vec<u32>, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let version: Vec<u32> = name
                    .split('.')
                    .map(|p| p.parse().ok())
                    .collect::<Option<_>>()?;
                let p = e.path().join("bin").join("pg_dump");
                p.is_file().then_some((version, p))
            })
            .collect();
        found.sort();
        if let Some((_, p)) = found.pop() {
            return Ok(p);
        }
    }
    Err(BackupError::PgDumpNotFound {
        searched: searched.join(", "),
    })
}

/// Runs the planned `pg_dump`. The password goes through `PGPASSWORD` in the child's
/// environment, never on its command line (which other users can read in `ps`).
pub fn run_dump(url: &DatabaseUrl, version: &str, dump: &PlannedDump) -> Result<(), BackupError> {
    let program = find_pg_dump()?;
    if let Some(dir) = dump.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| BackupError::DumpDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let mut cmd = Command::new(&program);
    let host = url.hosts().first();
    if let Some(h) = host {
        cmd.arg("--host")
            .arg(&h.host)
            .arg("--port")
            .arg(h.port.to_string());
    }
    cmd.arg("--username")
        .arg(url.user())
        .arg("--dbname")
        .arg(url.database())
        .arg("--no-password")
        .arg("--file")
        .arg(&dump.file);
    for p in &dump.patterns {
        cmd.arg("--table").arg(p);
    }
    cmd.env_remove("PGPASSWORD");
    if let Some(pw) = url.password() {
        cmd.env("PGPASSWORD", pw);
    }
    cmd.env("PGSSLMODE", url.ssl_mode().as_str());
    if let Some(root) = url.ssl_root_cert() {
        cmd.env("PGSSLROOTCERT", root);
    }
    let shown = format!(
        "{} --table {} --file {}",
        program.display(),
        dump.patterns.join(" --table "),
        dump.file.display()
    );
    let out = cmd.output().map_err(|e| BackupError::PgDumpFailed {
        version: version.to_string(),
        program: shown.clone(),
        status: "could not start".to_string(),
        stderr: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(BackupError::PgDumpFailed {
            version: version.to_string(),
            program: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_to_the_identifier_limit() {
        let long = "x".repeat(80);
        assert_eq!(clip(&long, MAX_IDENTIFIER_BYTES).len(), 63);
        assert_eq!(clip("é", 1), "");
        assert_eq!(clip("abc", MAX_IDENTIFIER_BYTES), "abc");
    }

    /// On a 63-byte table name the date suffix the docs promise survives; the table part is
    /// what gets shorter, on a character boundary.
    #[test]
    fn kept_names_keep_their_suffix_and_counter() {
        let table = "t".repeat(MAX_IDENTIFIER_BYTES);
        let name = kept_name("", &table, "_deprecated_20250101", 1);
        assert_eq!(name.len(), MAX_IDENTIFIER_BYTES);
        assert!(name.ends_with("t_deprecated_20250101"), "{name}");
        let name = kept_name("_backup_", &table, "_20250101", 3);
        assert_eq!(name.len(), MAX_IDENTIFIER_BYTES);
        assert!(
            name.starts_with("_backup_t") && name.ends_with("t_20250101_3"),
            "{name}"
        );
        let wide = "é".repeat(40);
        let name = kept_name("", &wide, "_deprecated_20250101", 1);
        assert!(name.len() <= MAX_IDENTIFIER_BYTES && name.ends_with("é_deprecated_20250101"));
        assert_eq!(
            kept_name("", "orders", "_deprecated_20250101", 1),
            "orders_deprecated_20250101"
        );
    }
}
