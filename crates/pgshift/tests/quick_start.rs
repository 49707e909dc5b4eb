//! The README's quick start, copied line by line as a new user would: each line of its
//! code block is run by bash in an empty directory, with the `pgshift` this suite built on
//! `PATH`, and what the line promises is checked. A line this test does not know fails it,
//! so the README cannot grow a step nobody ran.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pgshift_db::testing::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The commands of the README's quick start block, comments cut off.
fn quick_start_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(repository().join("README.md")).expect("read README");
    let section = readme
        .split_once("\n## Quick start\n")
        .expect("the README has a Quick start section")
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("a sh block in Quick start")
        .1
        .split_once("```")
        .expect("the block ends")
        .0;
    block
        .lines()
        // A comment starts with `#` after two spaces; `#` inside a command is not one.
        .map(|l| l.split_once("  #").map_or(l, |(cmd, _)| cmd).trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_quick_start_line_works_as_written() {
    let db = TestDb::new().await;
    let project = tempfile::tempdir().expect("tempdir");
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut database_url: Option<String> = None;
    let mut ran = Vec::new();

    for line in quick_start_lines() {
        if let Some(package) = line.strip_prefix("cargo install --path ") {
            // Not run: a release build of the whole tree takes minutes, and the suite has just
            // built the same package. What is checked: the path is the package whose binary is
            // `pgshift` (the one every other line runs).
            let manifest = std::fs::read_to_string(repository().join(package).join("Cargo.toml"))
                .unwrap_or_else(|e| panic!("`{line}`: {package}/Cargo.toml: {e}"));
            let manifest: toml::Value = manifest.parse().expect("Cargo.toml is TOML");
            let bins = manifest["bin"].as_array().expect("[[bin]]");
            assert!(
                bins.iter().any(|b| b["name"].as_str() == Some("pgshift")),
                "`{line}` installs no `pgshift` binary"
            );
            ran.push(line);
            continue;
        }
        if let Some(url) = line.strip_prefix("export DATABASE_URL=") {
            // The README's URL names the user's server; here, a throwaway database stands in
            // for it (the tests never use a server they did not start).
            assert!(url.starts_with("postgres://"), "{line}");
            database_url = Some(db.url().to_string());
            ran.push(line);
            continue;
        }

        let script = if line.starts_with("source <(pgshift completions bash)") {
            // Sourcing only defines the completion: ask bash whether `pgshift` now has one.
            format!("{line} && complete -p pgshift")
        } else {
            line.clone()
        };
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &script])
            .current_dir(project.path())
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env_remove("DATABASE_URL");
        if let Some(url) = &database_url {
            cmd.env("DATABASE_URL", url);
        }
        let out = cmd.output().expect("run bash");
        assert!(out.status.success(), "`{line}` failed:\n{}", text(&out));
        let said = text(&out);
        let migrations = project.path().join("migrations");

        match line.as_str() {
            "pgshift init" => {
                assert!(project.path().join("pgshift.toml").is_file(), "{said}");
                assert!(migrations.is_dir(), "{said}");
            }
            "pgshift new add_users_email_index" => {
                let mut written = Vec::new();
                for entry in std::fs::read_dir(&migrations).expect("migrations/") {
                    let path = entry.expect("entry").path();
                    let name = path
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .to_string();
                    assert!(name.contains("_add_users_email_index."), "{name}");
                    // What the user writes next, in the files `new` made.
                    let sql = if name.ends_with(".up.sql") {
                        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n\
                         CREATE INDEX users_email_idx ON users (email);\n"
                    } else {
                        "DROP TABLE users;\n"
                    };
                    std::fs::write(&path, sql).expect("write the migration");
                    written.push(name);
                }
                written.sort();
                assert_eq!(written.len(), 2, "an up and a down file: {written:?}");
            }
            // The index is on a table the same migration creates: nothing to report, and
            // both files were read.
            "pgshift check" => assert!(
                said.contains("0 errors") && said.contains("in 2 files"),
                "{said}"
            ),
            "pgshift plan" => assert!(said.contains("add_users_email_index"), "{said}"),
            "pgshift up" => assert!(table_exists(&db, "users").await, "{said}"),
            "pgshift status" => assert!(said.contains("applied"), "{said}"),
            "pgshift down --steps 1" => assert!(!table_exists(&db, "users").await, "{said}"),
            "pgshift verify" => assert!(said.contains("PASSED"), "{said}"),
            l if l.starts_with("source <(pgshift completions bash)") => {
                assert!(said.contains("pgshift"), "no completion registered: {said}");
            }
            other => {
                panic!("the README's quick start has a line this test does not run: `{other}`")
            }
        }
        ran.push(line);
    }
    assert!(ran.len() >= 10, "quick start lines run: {ran:?}");
}

async fn table_exists(db: &TestDb, name: &str) -> bool {
    let c = db.connect().await;
    let row = c
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .expect("to_regclass");
    row.get(0)
}

/// The README's first screen shows two commands: the example, and the test suite CI runs.
/// `.ci/run` runs exactly the second; both go through `scripts/dev.sh`, which ends in the
/// cargo command each stands for (the example's `verify` run is `cli.rs`'s
/// `verify_works_as_an_ordinary_user`, on the same folder).
#[test]
fn the_first_screen_commands_are_what_ci_and_the_script_run() {
    let readme = std::fs::read_to_string(repository().join("README.md")).expect("read README");
    let first = readme
        .split_once("```sh\n")
        .and_then(|(before, rest)| {
            assert!(
                !before.contains("\n## "),
                "the first code block is on the first screen"
            );
            rest.split_once("```")
        })
        .expect("a first sh block")
        .0;
    let commands: Vec<&str> = first
        .lines()
        .map(|l| l.split_once("  #").map_or(l, |(cmd, _)| cmd).trim())
        .collect();
    assert_eq!(commands, ["scripts/dev.sh example", "scripts/dev.sh test"]);

    let ci = std::fs::read_to_string(repository().join(".ci/run")).expect(".ci/run");
    let last = ci
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a command in .ci/run");
    assert_eq!(last, "scripts/dev.sh test", ".ci/run's command");

    let script = std::fs::read_to_string(repository().join("scripts/dev.sh")).expect("dev.sh");
    assert!(
        script.contains("exec cargo test --workspace\n"),
        "dev.sh test"
    );
    assert!(
        script.contains("exec cargo run -- verify --dir examples/shop/migrations\n"),
        "dev.sh example"
    );
    assert!(repository().join("examples/shop/migrations").is_dir());
}

/// Where `scripts/dev.sh` cannot install (here: told it is on macOS, where it never runs
/// brew itself, and Xcode's libclang is absent), it names the command and exits 1 before any
/// build: the `cargo` on PATH is a stub that would leave a mark.
#[test]
fn dev_sh_names_what_is_missing_and_stops_before_building() {
    use std::os::unix::fs::PermissionsExt;
    let stub = tempfile::tempdir().expect("tempdir");
    let mark = stub.path().join("cargo-ran");
    let cargo = stub.path().join("cargo");
    std::fs::write(
        &cargo,
        format!("#!/bin/sh\ntouch '{}'\nexit 99\n", mark.display()),
    )
    .expect("stub cargo");
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    for mode in ["example", "test"] {
        let out = Command::new("bash")
            .arg(repository().join("scripts/dev.sh"))
            .arg(mode)
            .env("PATH", format!("{}:/usr/bin:/bin", stub.path().display()))
            .env("PGSHIFT_DEV_SYSTEM", "macos")
            .env_remove("LIBCLANG_PATH")
            .output()
            .expect("run scripts/dev.sh");
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains("libclang"), "{said}");
        assert!(said.contains("    xcode-select --install"), "{said}");
        assert!(
            said.contains(&format!("run scripts/dev.sh {mode} again")),
            "{said}"
        );
        assert!(
            !mark.exists(),
            "cargo ran although something was missing: {said}"
        );
    }
}
