//! `pgshift check`, `rules` and `explain` as a user runs them: real processes on real files,
//! in a real git repository where the command needs one. No database is involved.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

/// A migration that every default configuration reports as an error (PGS101).
const BLOCKING_INDEX: &str = "CREATE INDEX users_email_idx ON users (email);\n";

fn pgshift(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgshift")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dirs");
    }
    std::fs::write(path, body).expect("write");
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// The distinct `path`s of the findings of a `--format json` run, by file name.
fn reported_files(o: &Output) -> Vec<String> {
    let mut names: Vec<String> = json(o)["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings array: {}", text(o)))
        .iter()
        .filter_map(|f| f["path"].as_str())
        .filter_map(|p| Path::new(p).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn git(args: &[&str], cwd: &Path) {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        // A fixed identity and no user/system configuration: the test must not depend on
        // (or change) the machine's git setup.
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "pgshift test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "pgshift test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
}

#[test]
fn changed_since_reports_only_migrations_added_or_changed_after_the_ref() {
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path();
    git(&["init", "-q", "-b", "main"], root);
    write(root, "pgshift.toml", "dir = \"migrations\"\n");
    write(
        root,
        "migrations/20240101000000_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    // Already on main, and bad: it must not be reported once it is older than the ref.
    write(
        root,
        "migrations/20240102000000_old_index.up.sql",
        BLOCKING_INDEX,
    );
    // Changed after the ref: reported.
    write(
        root,
        "migrations/20240103000000_edited.up.sql",
        "ALTER TABLE users ADD COLUMN name text;\n",
    );
    git(&["add", "."], root);
    git(&["commit", "-q", "-m", "base"], root);
    git(&["tag", "base"], root);

    write(
        root,
        "migrations/20240103000000_edited.up.sql",
        "ALTER TABLE users ADD COLUMN name text;\nCREATE INDEX users_name_idx ON users (name);\n",
    );
    write(
        root,
        "migrations/20240104000000_added.up.sql",
        "CREATE INDEX users_id_email_idx ON users (id, email);\n",
    );
    git(&["add", "."], root);
    git(&["commit", "-q", "-m", "feature"], root);
    // Not committed, not even added: a pull request's new file before `git add`.
    write(
        root,
        "migrations/20240105000000_untracked.up.sql",
        "CREATE INDEX users_lower_email_idx ON users (lower(email));\n",
    );

    // `--exact`: the blocking indexes are errors, as they run as written (without it,
    // `pgshift up` builds them CONCURRENTLY and they are notes).
    // Without the filter the old file is reported: the filter is what hides it.
    let all = pgshift(&["check", "--exact", "--format", "json"], root);
    assert_eq!(all.status.code(), Some(1), "{}", text(&all));
    assert!(
        reported_files(&all).contains(&"20240102000000_old_index.up.sql".to_string()),
        "{}",
        text(&all)
    );

    let out = pgshift(
        &[
            "check",
            "--exact",
            "--changed-since",
            "base",
            "--format",
            "json",
        ],
        root,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        reported_files(&out),
        vec![
            "20240103000000_edited.up.sql".to_string(),
            "20240104000000_added.up.sql".to_string(),
            "20240105000000_untracked.up.sql".to_string(),
        ],
        "{}",
        text(&out)
    );

    // Nothing changed since HEAD except the untracked file.
    let out = pgshift(
        &[
            "check",
            "--exact",
            "--changed-since",
            "HEAD",
            "--format",
            "json",
        ],
        root,
    );
    assert_eq!(
        reported_files(&out),
        vec!["20240105000000_untracked.up.sql".to_string()],
        "{}",
        text(&out)
    );

    // A ref that does not exist is unusable input: exit 2 and a message that names it.
    let out = pgshift(&["check", "--changed-since", "no-such-ref"], root);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-ref"), "{}", text(&out));
    assert!(stderr.contains("--changed-since"), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
}

#[test]
fn changed_since_outside_a_git_repository_is_unusable_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "migrations/1_a.sql", BLOCKING_INDEX);
    let out = Command::new(BIN)
        .args(["check", "migrations", "--changed-since", "main"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        // Stop git from finding a repository above the temporary directory.
        .env(
            "GIT_CEILING_DIRECTORIES",
            dir.path().parent().expect("parent"),
        )
        .output()
        .expect("run pgshift");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("git"),
        "{}",
        text(&out)
    );
}

#[test]
fn sarif_is_valid_2_1_0_with_located_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "migrations/20240101000000_index.up.sql",
        &format!("-- a comment first, so the finding is on line 2\n{BLOCKING_INDEX}"),
    );
    let out = pgshift(&["check", "migrations", "--format", "sarif"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let sarif = json(&out);
    assert_eq!(sarif["version"], "2.1.0", "{sarif}");
    assert!(
        sarif["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("sarif") && s.contains("2.1.0")),
        "{sarif}"
    );
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "pgshift", "{sarif}");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert!(
        rules.iter().any(|r| r["id"] == "PGS101"),
        "driver rules lack PGS101: {sarif}"
    );
    let results = run["results"].as_array().expect("results");
    let result = results
        .iter()
        .find(|r| r["ruleId"] == "PGS101")
        .unwrap_or_else(|| panic!("no PGS101 result: {sarif}"));
    assert_eq!(result["level"], "error", "{result}");
    assert!(result["message"]["text"].as_str().is_some(), "{result}");
    let location = &result["locations"][0]["physicalLocation"];
    assert!(
        location["artifactLocation"]["uri"]
            .as_str()
            .is_some_and(|u| u.ends_with("migrations/20240101000000_index.up.sql")),
        "{result}"
    );
    let region = &location["region"];
    assert_eq!(region["startLine"], 2, "{result}");
    assert_eq!(region["startColumn"], 1, "{result}");
    assert_eq!(region["endLine"], 2, "{result}");
    // SARIF columns are 1-based and the end is exclusive: the region is the statement up to,
    // not including, its `;` (the same span the terminal underlines).
    let statement = BLOCKING_INDEX.trim_end().trim_end_matches(';');
    assert_eq!(region["endColumn"], statement.len() + 1, "{result}");
    // Every result's rule is declared in the driver.
    for r in results {
        let id = r["ruleId"].as_str().expect("ruleId");
        assert!(rules.iter().any(|d| d["id"] == id), "{id} not in driver");
        assert!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64() >= Some(1),
            "{r}"
        );
    }
}

#[test]
fn github_format_prints_workflow_annotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "migrations/20240101000000_index.up.sql",
        &format!("\n\n{BLOCKING_INDEX}"),
    );
    let out = pgshift(&["check", "migrations", "--format", "github"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("PGS101"))
        .unwrap_or_else(|| panic!("no PGS101 annotation: {}", text(&out)));
    assert!(
        line.starts_with(
            "::error file=migrations/20240101000000_index.up.sql,line=3,col=1,endLine=3,"
        ),
        "{line}"
    );
    assert!(line.contains("title="), "{line}");
    // Every line is an annotation: GitHub would print anything else as plain log text.
    for l in stdout.lines().filter(|l| !l.is_empty()) {
        assert!(
            l.starts_with("::error ") || l.starts_with("::warning ") || l.starts_with("::notice "),
            "not an annotation: {l}"
        );
        // A newline inside a message must be escaped, or the annotation is cut short.
        assert!(!l.contains('\r'), "{l}");
    }
}

#[test]
fn check_config_table_disables_overrides_and_excludes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        root,
        "migrations/20240101000000_index.up.sql",
        BLOCKING_INDEX,
    );
    write(
        root,
        "migrations/20240102000000_not_null.up.sql",
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n",
    );
    write(
        root,
        "migrations/20230101000000_legacy_drop.up.sql",
        "DROP TABLE old_things;\n",
    );

    // The baseline, with no configuration: all three rules fire (`--exact`: as errors, not as
    // notes on what `pgshift up` runs instead).
    write(root, "pgshift.toml", "dir = \"migrations\"\n");
    let out = pgshift(&["check", "--exact", "--format", "json"], root);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let codes = |o: &Output| -> Vec<(String, String)> {
        json(o)["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                (
                    f["code"].as_str().unwrap_or_default().to_string(),
                    f["severity"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let before = codes(&out);
    for code in ["PGS101", "PGS203", "PGS405"] {
        assert!(
            before.iter().any(|(c, _)| c == code),
            "{code} missing without config: {before:?}"
        );
    }
    let set_not_null = pgshift_lint::find_rule("set-not-null").expect("rule");
    assert_eq!(set_not_null.code, "PGS203");

    write(
        root,
        "pgshift.toml",
        r#"dir = "migrations"

[check]
disable = ["require-concurrent-index"]
severity = { PGS203 = "hint" }
exclude = ["migrations/*_legacy_*"]
"#,
    );
    let out = pgshift(&["check", "--exact", "--format", "json"], root);
    let after = codes(&out);
    assert!(
        !after.iter().any(|(c, _)| c == "PGS101"),
        "disabled rule still reported: {after:?}"
    );
    assert!(
        !after.iter().any(|(c, _)| c == "PGS405"),
        "excluded file still checked: {after:?}"
    );
    assert!(
        after.iter().any(|(c, s)| c == "PGS203" && s == "hint"),
        "severity override not applied: {after:?}"
    );
    assert!(
        !reported_files(&out).iter().any(|f| f.contains("drop")),
        "{}",
        text(&out)
    );
    // Only a hint is left, so the verdict passes.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A rule the configuration names but pgshift does not know is unusable input.
    write(
        root,
        "pgshift.toml",
        "dir = \"migrations\"\n[check]\ndisable = [\"no-such-rule\"]\n",
    );
    let out = pgshift(&["check"], root);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-rule"),
        "{}",
        text(&out)
    );
}

#[test]
fn explain_prints_the_rule_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../pgshift-lint/docs/rules/require-concurrent-index.md"),
    )
    .expect("rule documentation");
    for name in ["PGS101", "pgs101", "require-concurrent-index"] {
        let out = pgshift(&["explain", name], dir.path());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("PGS101 require-concurrent-index (error)\n"),
            "{stdout}"
        );
        assert!(
            stdout.trim_end().ends_with(doc.trim_end()),
            "`explain {name}` differs from the rule's file:\n{stdout}"
        );
    }
    let out = pgshift(&["explain", "concurrent-index"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("require-concurrent-index"),
        "a close name is suggested: {}",
        text(&out)
    );
}

#[test]
fn rules_lists_every_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = pgshift(&["rules"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(pgshift_lint::RULES.len() >= 57);
    for rule in pgshift_lint::RULES {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(rule.code))
            .unwrap_or_else(|| panic!("{} missing from `pgshift rules`:\n{stdout}", rule.code));
        assert!(line.contains(rule.name), "{line}");
        assert!(line.contains(rule.severity.name()), "{line}");
    }
    assert!(
        stdout.contains(&format!("{} rules", pgshift_lint::RULES.len())),
        "{stdout}"
    );

    let out = pgshift(&["rules", "--format", "json"], dir.path());
    let list = json(&out);
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), pgshift_lint::RULES.len());
    // Every rule can be explained by the code `rules` gives.
    for rule in list.iter().take(3) {
        let code = rule["code"].as_str().expect("code");
        let out = pgshift(&["explain", code], dir.path());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
}

/// Every `pgshift COMMAND` a rule's documentation tells the user to run is a command this
/// binary has (the docs once sent users to `pgshift backfill` and `pgshift start`).
#[test]
fn rule_documentation_mentions_only_commands_that_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut mentioned = std::collections::BTreeSet::new();
    for rule in pgshift_lint::RULES {
        let out = pgshift(&["explain", rule.code], dir.path());
        assert!(out.status.success(), "{}", text(&out));
        let doc = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in doc.lines() {
            let code_line = line
                .trim_start()
                .trim_start_matches("-- ")
                .trim_start_matches("$ ");
            let starts: Vec<usize> = line
                .match_indices("`pgshift ")
                .map(|(i, _)| i + 1)
                .chain(line.match_indices("(pgshift ").map(|(i, _)| i + 1))
                .chain(
                    code_line
                        .starts_with("pgshift ")
                        .then(|| line.len() - code_line.len()),
                )
                .collect();
            for start in starts {
                let word: String = line[start + "pgshift ".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                    .collect();
                if !word.is_empty() {
                    mentioned.insert((word, rule.name));
                }
            }
        }
    }
    assert!(
        mentioned.iter().any(|(w, _)| w == "explain" || w == "up"),
        "the scan finds mentions at all: {mentioned:?}"
    );
    for (command, rule) in &mentioned {
        let out = pgshift(&[command.as_str(), "--help"], dir.path());
        assert!(
            out.status.success(),
            "the documentation of {rule} mentions `pgshift {command}`, which is not a command"
        );
    }
}

/// The `(rule, line)` of each finding of a `--format json` run about the file named `name`.
fn findings_of(o: &Output, name: &str) -> Vec<(String, u64)> {
    json(o)["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings array: {}", text(o)))
        .iter()
        .filter(|f| {
            f["path"]
                .as_str()
                .and_then(|p| Path::new(p).file_name())
                .is_some_and(|n| n == name)
        })
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_owned(),
                f["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn checking_one_file_finds_what_checking_its_folder_finds_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // dbmate: the up section runs outside a transaction, the down section inside one.
    write(
        root,
        "db/migrations/20240101000000_users.sql",
        "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n\n-- migrate:down\nDROP TABLE users;\n",
    );
    write(
        root,
        "db/migrations/20240102000000_index.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n\n-- migrate:down\nDROP INDEX CONCURRENTLY users_email_idx;\n",
    );
    // sqlx wraps every file without `-- no-transaction` in a transaction.
    write(
        root,
        "sqlx/1_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    write(
        root,
        "sqlx/2_index.sql",
        "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n",
    );

    let folder = pgshift(&["check", "db/migrations", "--format", "json"], root);
    let file = "20240102000000_index.sql";
    let lone = pgshift(
        &[
            "check",
            &format!("db/migrations/{file}"),
            "--format",
            "json",
        ],
        root,
    );
    let up_findings: Vec<_> = findings_of(&lone, file)
        .into_iter()
        .filter(|(rule, line)| rule == "concurrently-in-transaction" && *line == 2)
        .collect();
    assert!(up_findings.is_empty(), "{}", text(&lone));
    assert_eq!(
        findings_of(&lone, file),
        findings_of(&folder, file),
        "lone:\n{}\nfolder:\n{}",
        text(&lone),
        text(&folder)
    );
    // The down section has no `transaction:false`: dbmate runs it in a transaction.
    assert!(
        findings_of(&lone, file).contains(&("concurrently-in-transaction".to_owned(), 5)),
        "{}",
        text(&lone)
    );

    let folder = pgshift(&["check", "sqlx", "--format", "json"], root);
    for file in ["1_users.sql", "2_index.sql"] {
        let lone = pgshift(
            &["check", &format!("sqlx/{file}"), "--format", "json"],
            root,
        );
        assert_eq!(
            findings_of(&lone, file),
            findings_of(&folder, file),
            "lone:\n{}\nfolder:\n{}",
            text(&lone),
            text(&folder)
        );
    }
    let lone = pgshift(&["check", "sqlx/2_index.sql"], root);
    assert_eq!(lone.status.code(), Some(1), "{}", text(&lone));
    assert!(
        String::from_utf8_lossy(&lone.stdout).contains("concurrently-in-transaction"),
        "{}",
        text(&lone)
    );
}

#[test]
fn changed_since_asks_the_repository_that_holds_the_migrations() {
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path();
    git(&["init", "-q", "-b", "main"], root);
    write(
        root,
        "service/migrations/20240101000000_old_index.up.sql",
        BLOCKING_INDEX,
    );
    git(&["add", "."], root);
    git(&["commit", "-q", "-m", "base"], root);
    git(&["tag", "base"], root);
    write(
        root,
        "service/migrations/20240102000000_added.up.sql",
        "CREATE INDEX users_id_idx ON users (id);\n",
    );
    git(&["add", "."], root);
    git(&["commit", "-q", "-m", "feature"], root);
    // Untracked: listed by `git ls-files` relative to where git runs.
    write(
        root,
        "service/migrations/20240103000000_untracked.up.sql",
        "CREATE INDEX users_email_idx2 ON users (email);\n",
    );

    // pgshift runs somewhere else entirely, outside any repository.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let migrations = root.join("service/migrations");
    let out = Command::new(BIN)
        .args(["check", "--format", "json", "--changed-since", "base"])
        .arg(&migrations)
        .current_dir(elsewhere.path())
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .env(
            "GIT_CEILING_DIRECTORIES",
            elsewhere.path().parent().expect("parent"),
        )
        .output()
        .expect("run pgshift");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        reported_files(&out),
        vec![
            "20240102000000_added.up.sql".to_string(),
            "20240103000000_untracked.up.sql".to_string(),
        ],
        "{}",
        text(&out)
    );

    // A file given from a subdirectory of the repository maps the same way.
    let out = pgshift(
        &[
            "check",
            "--format",
            "json",
            "--changed-since",
            "HEAD",
            "20240103000000_untracked.up.sql",
            "20240101000000_old_index.up.sql",
        ],
        &migrations,
    );
    assert_eq!(
        reported_files(&out),
        vec!["20240103000000_untracked.up.sql".to_string()],
        "{}",
        text(&out)
    );
}

#[test]
fn check_help_states_the_pg_version_default_check_assumes() {
    let out = pgshift(&["check", "--help"], Path::new("."));
    let help = String::from_utf8_lossy(&out.stdout);
    let line = help
        .lines()
        .find(|l| l.contains("--pg-version"))
        .unwrap_or_else(|| panic!("no --pg-version in {help}"));
    let default = pgshift::lint::PgVersion::DEFAULT.to_string();
    let named = line
        .split_once(&format!("then {default}"))
        .is_some_and(|(_, after)| !after.starts_with(|c: char| c.is_ascii_digit()));
    assert!(named, "the help must name the default {default}: {line}");
}

#[test]
fn checking_a_dbmate_db_folder_checks_its_migrations_not_the_schema_dump() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        root,
        "db/migrations/20240101000000_index.sql",
        &format!("-- migrate:up\n{BLOCKING_INDEX}\n-- migrate:down\nDROP INDEX users_email_idx;\n"),
    );
    write(
        root,
        "db/schema.sql",
        "CREATE TABLE public.users (id bigint NOT NULL, email text);\n",
    );
    let out = pgshift(&["check", "db", "--format", "json"], root);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        reported_files(&out),
        vec!["20240101000000_index.sql".to_string()],
        "{}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("db/migrations") && stderr.contains("dbmate"),
        "say which folder was read: {}",
        text(&out)
    );
}

#[test]
fn a_statement_pgshift_up_makes_safe_is_a_note_saying_what_runs_unless_exact_or_another_runner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        root,
        "migrations/20240101000000_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    write(
        root,
        "migrations/20240102000000_index.up.sql",
        BLOCKING_INDEX,
    );
    write(
        root,
        "pgshift.toml",
        "dir = \"migrations\"\nformat = \"pgshift\"\n",
    );
    let findings = |o: &Output| -> Vec<(String, String, String)> {
        json(o)["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap_or_default().to_string(),
                    f["severity"].as_str().unwrap_or_default().to_string(),
                    f["message"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };

    // pgshift's own format: pgshift runs it, as CREATE INDEX CONCURRENTLY.
    let out = pgshift(&["check", "--format", "json"], root);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let got = findings(&out);
    let note = got
        .iter()
        .find(|(rule, _, _)| rule == "require-concurrent-index")
        .unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!(note.1, "note", "{got:?}");
    assert!(
        note.2.starts_with("runs as `CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users USING btree (email)`"),
        "{}",
        note.2
    );
    let human = pgshift(&["check"], root);
    assert!(text(&human).contains("1 note"), "{}", text(&human));

    // --exact: it runs as written, an error.
    let out = pgshift(&["check", "--exact", "--format", "json"], root);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        findings(&out)
            .iter()
            .any(|(rule, sev, _)| rule == "require-concurrent-index" && sev == "error"),
        "{}",
        text(&out)
    );

    // Another runner: sqlx runs the same files as written, an error.
    write(
        root,
        "pgshift.toml",
        "dir = \"migrations\"\nformat = \"sqlx\"\n",
    );
    let out = pgshift(&["check", "--format", "json"], root);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // And when the configuration says pgshift does not run them.
    write(
        root,
        "pgshift.toml",
        "dir = \"migrations\"\nformat = \"pgshift\"\n[check]\nrunner_rewrites = false\n",
    );
    let out = pgshift(&["check", "--format", "json"], root);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
