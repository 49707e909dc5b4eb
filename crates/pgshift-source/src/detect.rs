//! Working out which tool a migration directory belongs to; the rules are on [`detect`].

use std::path::Path;

use crate::formats::{drizzle, flyway, golang_migrate};
use crate::read::{list, list_recursive, read_text, Listing};
use crate::{Format, SourceError};

/// The format of the migrations in `dir`, from its contents.
///
/// Decisive signals are checked first:
///
/// 1. `meta/_journal.json` → Drizzle;
/// 2. `migration_lock.toml`, or a subdirectory holding `migration.sql` → Prisma;
/// 3. a subdirectory holding `up.sql` → diesel;
/// 4. `atlas.sum` → Atlas, unless the files are named `<version>_<name>.up.sql` /
///    `.down.sql`: then golang-migrate, as Atlas writes it (`?format=golang-migrate`), its
///    `atlas.sum` still verified;
/// 5. a Flyway name (`V1__x.sql`, `U1__x.sql`, `R__x.sql`) → Flyway (also when only found in
///    subdirectories, checked last);
/// 6. a marker inside a `.sql` file that one tool writes (its descriptor's `content_marker`):
///    `-- migrate:up` → dbmate, `-- +goose` → goose (or a numbered `.go` file mentioning
///    goose), `-- Up Migration` → node-pg-migrate;
/// 7. `<version>_<name>.up.<ext>` / `.down.<ext>` files. golang-migrate and sqlx's reversible
///    layout have exactly this shape. The rule: an `.up.`/`.down.` file with an extension other
///    than `sql`, or a version too large for a 64-bit integer, means golang-migrate; a
///    `pgshift.toml` in the directory or its parent means pgshift; otherwise sqlx. Reading one
///    as the other changes whether a first line `-- no-transaction` counts (sqlx honours it,
///    golang-migrate has no marker) and whether a file of one statement runs outside a
///    transaction (golang-migrate sends the file as one query; sqlx wraps it): a golang-migrate
///    project with `CREATE INDEX CONCURRENTLY` alone in a file needs `--dir-format golang-migrate`
///    (or `format = "golang-migrate"` in pgshift.toml);
/// 8. `.sql` files all named `<integer>_<description>.sql` → sqlx (its simple layout), or pgshift
///    when `pgshift.toml` is nearby; any other `.sql` files → plain.
///
/// An empty directory is an error (unless `pgshift.toml` is nearby: a fresh `pgshift init`);
/// a directory with no `.sql` files and no signal is an error listing what was seen.
pub fn detect(dir: &Path) -> Result<Format, SourceError> {
    let listing = list(dir)?;
    let pgshift_project = has_pgshift_toml(dir);
    if listing.entries.is_empty() {
        return if pgshift_project {
            Ok(Format::Pgshift)
        } else {
            Err(SourceError::EmptyDir {
                path: dir.to_path_buf(),
            })
        };
    }
    if dir.join(drizzle::JOURNAL).is_file() {
        return Ok(Format::Drizzle);
    }
    let subdir_has = |file: &str| listing.dirs().any(|d| d.path.join(file).is_file());
    if listing.has_file("migration_lock.toml") || subdir_has("migration.sql") {
        return Ok(Format::Prisma);
    }
    if subdir_has("up.sql") {
        return Ok(Format::Diesel);
    }
    if listing.has_file(crate::formats::atlas::SUM_FILE) {
        // Atlas writes golang-migrate directories too (`?format=golang-migrate`): their
        // `.up.sql`/`.down.sql` names are never Atlas's own `<version>_<name>.sql`.
        let golang_migrate = listing
            .files()
            .any(|f| golang_migrate::parse_name(&f.name).is_some());
        return Ok(if golang_migrate {
            Format::GolangMigrate
        } else {
            Format::Atlas
        });
    }
    if listing
        .files()
        .any(|f| flyway::parse_name(&f.name).is_some())
    {
        return Ok(Format::Flyway);
    }
    if let Some(format) = content_markers(&listing) {
        return Ok(format);
    }
    let up_down: Vec<_> = listing
        .files()
        .filter_map(|f| golang_migrate::parse_name(&f.name))
        .collect();
    if !up_down.is_empty() {
        if up_down
            .iter()
            .any(|(number, _, _, ext)| *ext != "sql" || number.parse::<i64>().is_err())
        {
            return Ok(Format::GolangMigrate);
        }
        return Ok(if pgshift_project {
            Format::Pgshift
        } else {
            Format::Sqlx
        });
    }
    let sql: Vec<&str> = listing
        .files()
        .map(|f| f.name.as_str())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    if !sql.is_empty() {
        let sqlx_simple = |name: &&str| {
            name.split_once('_').is_some_and(|(v, _)| {
                v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<i64>().is_ok()
            })
        };
        return Ok(match (sql.iter().all(sqlx_simple), pgshift_project) {
            (true, true) => Format::Pgshift,
            (true, false) => Format::Sqlx,
            (false, _) => Format::Plain,
        });
    }
    if pgshift_project && listing.files().next().is_none() {
        return Ok(Format::Pgshift);
    }
    // Flyway locations are often split into subdirectories (`db/migration/v1/V1__x.sql`).
    if listing.dirs().next().is_some()
        && list_recursive(dir)?
            .files()
            .any(|f| flyway::parse_name(f.name.rsplit('/').next().unwrap_or("")).is_some())
    {
        return Ok(Format::Flyway);
    }
    if let Some(error) = code_migrations(dir, &listing) {
        return Err(error);
    }
    Err(SourceError::UnknownLayout {
        path: dir.to_path_buf(),
        seen: describe(&listing),
    })
}

/// Migrations written in a programming language, by file extension: what they are and what
/// their users can do instead.
const CODE_MIGRATIONS: &[(&[&str], &str, &str)] = &[
    (
        &["js", "ts", "mjs", "cjs", "mts", "cts"],
        "JavaScript/TypeScript (Knex, TypeORM, Sequelize, ...)",
        "Write new migrations as `.sql` files in a format pgshift reads (`pgshift init`, `pgshift new NAME`; the tool can keep running its old ones), or check the SQL the tool runs: neither Knex nor TypeORM prints it without running it, so save what it logs on a scratch database (Knex: `DEBUG=knex:query knex migrate:latest`; TypeORM: the data source's `logging: [\"query\"]`) to a `.sql` file and run `pgshift check FILE`",
    ),
    (
        &["py"],
        "Python (Alembic, Django)",
        "Check the SQL the tool prints: `alembic upgrade head --sql | pgshift check -`, or `python manage.py sqlmigrate APP MIGRATION | pgshift check -`",
    ),
];

/// The error for a directory of code migrations and no `.sql` file.
fn code_migrations(dir: &Path, listing: &Listing) -> Option<SourceError> {
    let extension = |name: &str| {
        name.rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
    };
    CODE_MIGRATIONS
        .iter()
        .find_map(|(extensions, language, what_to_do)| {
            let files: Vec<&str> = listing
                .files()
                .map(|f| f.name.as_str())
                .filter(|n| extension(n).is_some_and(|e| extensions.contains(&e.as_str())))
                .filter(|n| *n != "__init__.py")
                .collect();
            let first = files.first()?;
            let more = if files.len() > 1 { ", ..." } else { "" };
            Some(SourceError::CodeMigrations {
                path: dir.to_path_buf(),
                seen: format!(
                    "{} {} ({first}{more})",
                    files.len(),
                    if files.len() == 1 { "file" } else { "files" }
                ),
                language,
                what_to_do,
            })
        })
}

/// `pgshift.toml` in the directory or its parent: a pgshift project.
fn has_pgshift_toml(dir: &Path) -> bool {
    dir.join("pgshift.toml").is_file()
        || dir
            .parent()
            .is_some_and(|p| p.join("pgshift.toml").is_file())
}

/// The format whose marker appears in one of the `.sql` files (or goose `.go` files).
fn content_markers(listing: &Listing) -> Option<Format> {
    for file in listing.files() {
        let is_go =
            file.name.ends_with(".go") && file.name.starts_with(|c: char| c.is_ascii_digit());
        if !file.name.ends_with(".sql") && !is_go {
            continue;
        }
        // Unreadable or non-UTF-8 files are reported when the directory is loaded, with the
        // format's rules; detection just looks past them.
        let Ok(text) = read_text(&file.path) else {
            continue;
        };
        if is_go {
            if text.contains("goose.") {
                return Some(Format::Goose);
            }
            continue;
        }
        // Each format's own marker (its descriptor's), in registry order.
        let marked = Format::all().iter().copied().find(|format| {
            format
                .descriptor()
                .content_marker
                .is_some_and(|has_marker| has_marker(&text))
        });
        if marked.is_some() {
            return marked;
        }
    }
    None
}

/// "3 entries: README.md, schema.rb, seeds/" (at most 8 names).
fn describe(listing: &Listing) -> String {
    const SHOWN: usize = 8;
    let names: Vec<String> = listing
        .entries
        .iter()
        .take(SHOWN)
        .map(|e| {
            if e.is_dir {
                format!("{}/", e.name)
            } else {
                e.name.clone()
            }
        })
        .collect();
    let total = listing.entries.len();
    let more = if total > SHOWN {
        format!(" and {} more", total - SHOWN)
    } else {
        String::new()
    };
    format!(
        "{total} {}, none of them `.sql` files: {}{more}",
        if total == 1 { "entry" } else { "entries" },
        names.join(", ")
    )
}
