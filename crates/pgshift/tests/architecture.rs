//! The invariants ARCHITECTURE.md states about what each crate may depend on and where
//! SQL is read, enforced on the source tree. An invariant no test enforces drifts.

use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .to_path_buf()
}

/// The names of the packages in a crate's `[dependencies]` table.
fn dependencies(krate: &str) -> Vec<String> {
    let path = crates_dir().join(krate).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("Cargo.toml");
    let manifest: toml::Value = toml::from_str(&text).expect("toml");
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every `.rs` file under a crate's `src/`, with its text up to its `#[cfg(test)]` module
/// (unit tests may build what they test any way they like).
fn sources(krate: &str) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = crates_dir().join(krate).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("source");
            let code = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            let name = p
                .strip_prefix(&root)
                .expect("under src")
                .display()
                .to_string();
            (name, code)
        })
        .collect()
}

fn assert_no_dependency(krate: &str, forbidden: &[&str], why: &str) {
    let deps = dependencies(krate);
    for f in forbidden {
        assert!(
            !deps.iter().any(|d| d == f),
            "{krate} depends on {f}, but {why}"
        );
    }
}

#[test]
fn the_sql_crate_knows_no_formats_and_no_databases() {
    assert_no_dependency(
        "pgshift-sql",
        &[
            "pgshift-source",
            "pgshift-lint",
            "pgshift-db",
            "pgshift-runner",
            "tokio",
            "tokio-postgres",
        ],
        "pgshift-sql knows SQL text only",
    );
}

#[test]
fn the_source_crate_never_parses_sql_and_never_connects() {
    assert_no_dependency(
        "pgshift-source",
        &[
            "pgshift-sql",
            "pg_query",
            "pgshift-db",
            "tokio",
            "tokio-postgres",
        ],
        "pgshift-source finds and splits files only",
    );
}

#[test]
fn the_linter_needs_no_database_and_no_async() {
    assert_no_dependency(
        "pgshift-lint",
        &["pgshift-db", "pgshift-runner", "tokio", "tokio-postgres"],
        "static analysis must work with nothing running",
    );
    for (file, code) in sources("pgshift-lint") {
        assert!(
            !code.contains("async fn"),
            "pgshift-lint/src/{file} has an async fn"
        );
    }
}

#[test]
fn the_database_crate_knows_nothing_about_migrations_or_rules() {
    assert_no_dependency(
        "pgshift-db",
        &["pgshift-source", "pgshift-lint", "pgshift-runner"],
        "pgshift-db knows connections and catalogs, not migrations or rules",
    );
}

#[test]
fn the_runner_reads_sql_only_while_preparing_steps() {
    // Where a statement's parse tree may be looked at: building steps and their facts, and
    // reading a backfill's definition from the flags a person typed.
    const PREPARING: &[&str] = &["prepare.rs", "units.rs", "inflight.rs", "backfill/spec.rs"];
    for (file, code) in sources("pgshift-runner") {
        if PREPARING.contains(&file.as_str()) {
            continue;
        }
        for needle in ["pgshift_sql::parse", "parse_range(", "NodeEnum", "pg_query"] {
            assert!(
                !code.contains(needle),
                "pgshift-runner/src/{file} uses `{needle}`: what a statement is must come from its facts (crate::prepare), not from parsing it again"
            );
        }
    }
}

#[test]
fn the_cli_holds_no_sql() {
    // The CLI parses flags and renders results: every query lives in a library crate.
    for (file, code) in sources("pgshift") {
        if !file.starts_with("cli") {
            continue;
        }
        for needle in [
            "tokio_postgres",
            ".query(",
            ".query_one(",
            ".batch_execute(",
        ] {
            assert!(
                !code.contains(needle),
                "pgshift/src/{file} talks to the database (`{needle}`); that belongs in a library crate"
            );
        }
    }
}
