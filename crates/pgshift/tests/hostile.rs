//! The `pgshift` binary on hostile input, as users and CI logs see it: no secret printed
//! anywhere, nothing read from outside the migrations folder, no escape sequence or forged line
//! reaching a terminal or a CI log, Markdown that stays one row per statement, and no hang.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pgshift_db::testing::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

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
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write");
}

/// Every command, with the arguments that make it reach the point where it reads the URL.
const COMMANDS: &[&[&str]] = &[
    &["init", "project"],
    &["new", "x"],
    &["check"],
    &["rules"],
    &["explain", "require-concurrent-index"],
    &["plan"],
    &["up"],
    &["down"],
    &["status"],
    &["redo"],
    &["baseline", "20240101000000"],
    &["restamp", "--all"],
    &["resolve", "20240101000000", "--finished"],
    &["trace", "--database-url-from-env"],
    &["verify"],
];

/// A generated password holding an unencoded `?` and `/` was printed whole in the
/// invalid-URL error of every command (issue 14).
#[test]
fn a_password_with_question_mark_and_slash_is_never_printed() {
    let secret_part = "S3cr3tPart";
    let url = format!("postgres://app:pa?ss/{secret_part}@db.invalid/app");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("migrations")).expect("mkdir");
    write(
        &dir.path().join("migrations"),
        "20240101000000_a.up.sql",
        "CREATE TABLE a (id int);\n",
    );
    for args in COMMANDS {
        let mut args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| *a != "--database-url-from-env")
            .collect();
        let takes_flag = !matches!(args[0], "init" | "new" | "check" | "rules" | "explain");
        // Through the environment, as most deployments pass it.
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(dir.path())
            .env("DATABASE_URL", &url)
            .env("NO_COLOR", "1")
            .output()
            .expect("run pgshift");
        for leaked in [secret_part, "pa?ss"] {
            assert!(
                !text(&out).contains(leaked),
                "{args:?} (DATABASE_URL) printed the password: {}",
                text(&out)
            );
        }
        if takes_flag {
            args.extend(["--database-url", &url]);
            let out = pgshift(&args, dir.path());
            for leaked in [secret_part, "pa?ss"] {
                assert!(
                    !text(&out).contains(leaked),
                    "{args:?} printed the password: {}",
                    text(&out)
                );
            }
        }
    }
}

const ROLE_MIGRATION: &str = "\
CREATE ROLE hostile_app LOGIN PASSWORD 'RoleS3cret';
ALTER ROLE hostile_app WITH ENCRYPTED PASSWORD 'AlterS3cret';
CREATE FOREIGN DATA WRAPPER hostile_fdw;
CREATE SERVER hostile_srv FOREIGN DATA WRAPPER hostile_fdw;
CREATE USER MAPPING FOR hostile_app SERVER hostile_srv OPTIONS (user 'remote', password 'MappingS3cret');
";

const SECRETS: [&str; 3] = ["RoleS3cret", "AlterS3cret", "MappingS3cret"];

fn assert_no_secret(what: &str, out: &Output) {
    for secret in SECRETS {
        assert!(
            !text(out).contains(secret),
            "{what} printed {secret}:\n{}",
            text(out)
        );
    }
}

/// `plan` printed `CREATE ROLE ... PASSWORD '...'` verbatim; so did the logs of `up`. Every
/// output format, the logs and the history the status shows hide the password.
#[tokio::test]
async fn role_and_user_mapping_passwords_are_hidden_in_plan_up_status_and_trace() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "20240101000000_roles.up.sql", ROLE_MIGRATION);
    write(
        dir.path(),
        "20240101000000_roles.down.sql",
        "DROP USER MAPPING FOR hostile_app SERVER hostile_srv;\nDROP SERVER hostile_srv;\nDROP FOREIGN DATA WRAPPER hostile_fdw;\nDROP ROLE hostile_app;\n",
    );
    let url = db.url().to_string();
    let d = dir.path().to_string_lossy().to_string();
    for format in ["human", "json", "markdown"] {
        let out = pgshift(
            &[
                "plan",
                "--database-url",
                &url,
                "--dir",
                &d,
                "--format",
                format,
            ],
            dir.path(),
        );
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
        assert!(
            text(&out).contains("PASSWORD '***'"),
            "{format}: {}",
            text(&out)
        );
        assert_no_secret(&format!("plan --format {format}"), &out);
    }
    let out = pgshift(
        &[
            "trace",
            "--database-url",
            &url,
            "--dir",
            &d,
            "--format",
            "markdown",
        ],
        dir.path(),
    );
    assert_no_secret("trace", &out);
    let out = pgshift(&["up", "--database-url", &url, "--dir", &d], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_no_secret("up", &out);
    let out = pgshift(
        &[
            "status",
            "--database-url",
            &url,
            "--dir",
            &d,
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_no_secret("status", &out);
    // `check` shows the statement a finding is about, and its line.
    let out = pgshift(&["check", &d], dir.path());
    assert_no_secret("check", &out);
    let out = pgshift(&["check", "--format", "json", &d], dir.path());
    assert_no_secret("check --format json", &out);
}

/// A migration's file name with an escape sequence and a newline: `status`, `up`, `plan`
/// and the GitHub annotations of `check` show it escaped; no line of output is forged.
#[tokio::test]
async fn escape_sequences_and_newlines_in_file_names_reach_no_terminal_or_ci_log() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "20240101000000_a\x1b]0;pwned\x07\x1b[2J\n::error::forged.up.sql";
    write(
        dir.path(),
        name,
        "CREATE TABLE a (id int);\nCREATE INDEX a_idx ON a (id);\n",
    );
    let url = db.url().to_string();
    let d = dir.path().to_string_lossy().to_string();
    let runs: Vec<Vec<&str>> = vec![
        vec!["plan", "--database-url", &url, "--dir", &d],
        vec![
            "plan",
            "--database-url",
            &url,
            "--dir",
            &d,
            "--format",
            "markdown",
        ],
        vec!["up", "--database-url", &url, "--dir", &d],
        vec!["status", "--database-url", &url, "--dir", &d],
        vec!["check", "--format", "github", &d],
        vec!["check", &d],
    ];
    for args in runs {
        let out = pgshift(&args, dir.path());
        let all = text(&out);
        assert!(
            !all.contains('\x1b') && !all.contains('\x07'),
            "{args:?}: {all:?}"
        );
        assert!(
            !all.lines().any(|l| l.starts_with("::error::forged")),
            "{args:?} let a name forge a line: {all}"
        );
        assert!(
            all.contains("\\x1b") || all.contains('\u{fffd}'),
            "{args:?} shows that something was there: {all}"
        );
    }
}

/// An identifier with a backtick, a `|` and a newline keeps the plan's Markdown table one row
/// per statement, and shows the name inside a code span that holds it.
#[tokio::test]
async fn markdown_reports_stay_tables_whatever_the_identifiers_hold() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20240101000000_odd.up.sql",
        "CREATE TABLE \"we`ird|na\nme\" (id int);\nCREATE TABLE plain (id int);\n",
    );
    let url = db.url().to_string();
    let d = dir.path().to_string_lossy().to_string();
    for command in ["plan", "trace"] {
        let out = pgshift(
            &[
                command,
                "--database-url",
                &url,
                "--dir",
                &d,
                "--format",
                "markdown",
            ],
            dir.path(),
        );
        let md = String::from_utf8_lossy(&out.stdout).to_string();
        let rows: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| line"))
            .collect();
        assert_eq!(rows.len(), 2, "{command}: one row per statement:\n{md}");
        assert!(
            rows[0].contains("``CREATE TABLE \"we`ird\\|na me\" (id int)``"),
            "{command}: {md}"
        );
        assert!(rows.iter().all(|r| r.ends_with('|')), "{command}: {md}");
    }
}

/// `ln -s /proc/self/environ migrations/2_b.up.sql` printed the environment: now the file is
/// refused, the error says why and what to do, and nothing of the target is printed.
#[test]
fn check_refuses_a_migration_linked_from_outside_the_folder() {
    let outside = tempfile::tempdir().expect("tempdir");
    write(
        outside.path(),
        "token.sql",
        "SELECT 'GITHUB_TOKEN=ghp_Leaked';\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "20240101000000_a.up.sql", "SELECT 1;\n");
    std::os::unix::fs::symlink(
        outside.path().join("token.sql"),
        dir.path().join("20240102000000_b.up.sql"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(
        "/proc/self/environ",
        dir.path().join("20240103000000_c.up.sql"),
    )
    .expect("symlink");
    let d = dir.path().to_string_lossy().to_string();
    for args in [vec!["check", &d], vec!["check", "--format", "json", &d]] {
        let out = Command::new(BIN)
            .args(&args)
            .env("SECRET_TOKEN", "env-S3cret")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("symbolic link"), "{}", text(&out));
        assert!(!text(&out).contains("ghp_Leaked"), "{}", text(&out));
        assert!(!text(&out).contains("env-S3cret"), "{}", text(&out));
    }
}

/// 100,000 nested comments hung `check` for over a minute; now it answers at once, with an
/// error that names the file and line and says what to do.
#[test]
fn deeply_nested_comments_are_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let depth = 100_000;
    write(
        dir.path(),
        "1_deep.sql",
        &format!(
            "SELECT 1;\n{}SELECT 2{};\n",
            "/*".repeat(depth),
            "*/".repeat(depth)
        ),
    );
    let started = Instant::now();
    let out = pgshift(&["check", &dir.path().to_string_lossy()], dir.path());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("1_deep.sql:2:1"), "{all}");
    assert!(all.contains("nested more than 1000 levels"), "{all}");
    assert!(
        all.len() < 10_000,
        "the 200 KB line is clipped: {} bytes",
        all.len()
    );
}

/// A statement of a megabyte (a generated index predicate, a long CHECK) made every report
/// quote its safe form in full: `check` printed 3.7 MB (human) and 7.4 MB (JSON) for 3
/// statements. Each format now stays within a constant per finding, and the JSON fix, narrowed
/// to the bytes that change, still turns the file into the safe form.
#[test]
fn a_megabyte_statement_makes_a_report_of_findings_not_of_its_text() {
    let migration = |terms: usize| {
        let predicate = (0..terms)
            .map(|i| format!("name = 'value number {i}'"))
            .collect::<Vec<_>>()
            .join(" OR ");
        format!(
            "CREATE INDEX big_idx ON users (name) WHERE {predicate};\n\
             ALTER TABLE users ADD CONSTRAINT c CHECK ({predicate});\n"
        )
    };
    let small = tempfile::tempdir().expect("tempdir");
    write(small.path(), "20240101000000_big.up.sql", &migration(10));
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = migration(20_000);
    assert!(sql.len() > 1_000_000);
    write(dir.path(), "20240101000000_big.up.sql", &sql);
    let path = dir.path().to_string_lossy().to_string();
    for format in ["human", "json", "sarif", "github", "gitlab"] {
        let printed = |dir: &Path| {
            let out = pgshift(&["check", &dir.to_string_lossy(), "--format", format], dir);
            assert_eq!(out.status.code(), Some(1), "{format}: {}", text(&out));
            out.stdout.len() + out.stderr.len()
        };
        let (short, long) = (printed(small.path()), printed(dir.path()));
        // The same findings; each may quote up to a few KB of its statement (help, fix).
        assert!(
            long < short + 8 * (4096 + 16384),
            "{format}: {long} bytes printed for a 1 MB migration, {short} for a short one"
        );
    }
    let out = pgshift(&["check", &path, "--format", "json"], dir.path());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = doc["findings"].as_array().expect("findings");
    let index = findings
        .iter()
        .find(|f| f["rule"] == "require-concurrent-index")
        .expect("the index finding");
    assert!(
        index["help"]
            .as_str()
            .is_some_and(|h| h.contains("more bytes left out")),
        "{}",
        index["help"]
    );
    let fix = &index["fix"];
    let (start, end) = (
        fix["byte_start"].as_u64().expect("start") as usize,
        fix["byte_end"].as_u64().expect("end") as usize,
    );
    let fixed = format!(
        "{}{}{}",
        &sql[..start],
        fix["replacement"].as_str().expect("replacement"),
        &sql[end..]
    );
    assert!(
        fixed.starts_with("-- in its own migration")
            && fixed.contains("\nCREATE INDEX CONCURRENTLY IF NOT EXISTS big_idx ON users"),
        "{}",
        &fixed[..300]
    );
    assert!(fixed.contains("'value number 19999';\nALTER TABLE users"));
    assert!(
        (start, end) != (0, sql.find(';').unwrap_or(0) + 1),
        "the fix is narrowed"
    );
}
