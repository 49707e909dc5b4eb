//! `docs/output-formats.md` is a promise: every field its `field` tables document for a
//! command is in that command's JSON, as the binary prints it against a real PostgreSQL.

use std::path::Path;
use std::process::{Command, Output};

use pgshift_db::testing::TestDb;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

fn pgshift(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgshift")
}

fn json(args: &[&str]) -> Value {
    let out = pgshift(args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The documented field paths of the section whose heading names `command`
/// (`## \`pgshift status --format json\``): the first column of its `field` tables.
fn documented(command: &str) -> Vec<String> {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/output-formats.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/output-formats.md");
    let heading = format!("## `pgshift {command} --format json`");
    let Some(start) = doc.find(&heading) else {
        panic!("no section {heading} in docs/output-formats.md");
    };
    let section = &doc[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let fields: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect();
    assert!(!fields.is_empty(), "{heading} documents no field");
    fields
}

/// Whether `path` (`a.b`, `a[].b`, `[].c`) exists in `value`; for an array, in at least one
/// element (the test fills every optional part somewhere). Returns the missing prefix.
fn missing(value: &Value, path: &str) -> Option<String> {
    fn walk(value: &Value, parts: &[&str], seen: &str) -> Option<String> {
        // An exhausted path was found whole.
        let (first, rest) = parts.split_first()?;
        let (key, each) = match first.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (*first, false),
        };
        let here = if key.is_empty() {
            value
        } else {
            match value.get(key) {
                Some(v) => v,
                None => return Some(format!("{seen}{key}")),
            }
        };
        if each {
            let Some(items) = here.as_array() else {
                return Some(format!("{seen}{key} (not an array)"));
            };
            if items.is_empty() && !rest.is_empty() {
                return Some(format!("{seen}{key}[] (empty: the test must fill it)"));
            }
            let seen = format!("{seen}{key}[].");
            let mut first_miss = None;
            for item in items {
                match walk(item, rest, &seen) {
                    None => return None,
                    Some(miss) => first_miss = first_miss.or(Some(miss)),
                }
            }
            first_miss
        } else if rest.is_empty() {
            None
        } else if here.is_null() {
            Some(format!("{seen}{key} (null: the test must fill it)"))
        } else {
            walk(here, rest, &format!("{seen}{key}."))
        }
    }
    let parts: Vec<&str> = path.split('.').collect();
    walk(value, &parts, "")
}

fn assert_documented_fields(command: &str, value: &Value) {
    let absent: Vec<String> = documented(command)
        .iter()
        .filter_map(|path| missing(value, path))
        .collect();
    assert!(
        absent.is_empty(),
        "`pgshift {command} --format json` lacks documented fields: {absent:?}\n{value:#}"
    );
}

#[test]
fn rules_json_has_every_documented_field() {
    assert_documented_fields("rules", &json(&["rules", "--format", "json"]));
}

#[tokio::test]
async fn status_and_plan_json_have_every_documented_field() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, body: &str| std::fs::write(dir.path().join(name), body).expect("write");
    write(
        "20240101000000_orders.up.sql",
        "CREATE TABLE orders (id int, a int);\nINSERT INTO orders SELECT g, g FROM generate_series(1, 1000) g;\nANALYZE orders;\n",
    );
    write("20240101000000_orders.down.sql", "DROP TABLE orders;\n");
    write(
        "20240102000000_change.up.sql",
        "CREATE INDEX orders_a_idx ON orders (a);\nALTER TABLE orders ALTER COLUMN a TYPE bigint;\n",
    );
    let url = db.url().to_string();
    let d = dir.path().to_string_lossy().to_string();
    let out = pgshift(&[
        "up",
        "--database-url",
        &url,
        "--dir",
        &d,
        "--to",
        "20240101000000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status = json(&[
        "status",
        "--database-url",
        &url,
        "--dir",
        &d,
        "--format",
        "json",
    ]);
    assert_documented_fields("status", &status);

    // A session in the way, so that `conflicting_now` has an element.
    let holder = db.connect().await;
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM orders;")
        .await
        .expect("reader");
    let plan = json(&[
        "plan",
        "--database-url",
        &url,
        "--dir",
        &d,
        "--format",
        "json",
    ]);
    assert_documented_fields("plan", &plan);
}
