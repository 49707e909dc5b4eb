//! `check` parses a set's files on several threads: the report must be the same, byte for
//! byte, whatever the number of threads, including findings that depend on what earlier files
//! did (a table created earlier, an enum value added in the same batch).

use pgshift_lint::render::{render, OutputFormat};
use pgshift_lint::{check_set, CheckOptions};
use pgshift_source::{load, Format};

fn report_with(dir: &std::path::Path, threads: usize, format: OutputFormat) -> String {
    let set = load(dir, Some(Format::Pgshift)).expect("load");
    let options = CheckOptions {
        threads: Some(threads),
        ..CheckOptions::default()
    };
    let report = check_set(&set, &options);
    let mut out = Vec::new();
    render(&report, format, &mut out, false).expect("render");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn the_report_is_the_same_whatever_the_number_of_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut sources: Vec<std::path::PathBuf> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    sources.sort();
    assert!(sources.len() > 50, "{} fixtures", sources.len());
    let mut n = 0;
    let mut write = |name: &str, up: &str, down: Option<&str>| {
        n += 1;
        let stem = format!("2024{n:010}_{name}");
        std::fs::write(dir.path().join(format!("{stem}.up.sql")), up).expect("write up");
        if let Some(down) = down {
            std::fs::write(dir.path().join(format!("{stem}.down.sql")), down).expect("write down");
        }
    };
    // Findings that depend on earlier files: a table created in one migration is not new in
    // the next one, and an index created earlier is known by name.
    write(
        "orders",
        "CREATE TABLE orders (id bigint PRIMARY KEY, a int);\n",
        Some("DROP TABLE orders;\n"),
    );
    write(
        "orders_index",
        "CREATE INDEX orders_a ON orders (a);\nALTER TABLE orders ADD COLUMN b int NOT NULL DEFAULT random();\n",
        Some("DROP INDEX orders_a;\n"),
    );
    for source in &sources {
        let text = std::fs::read_to_string(source).expect("fixture");
        let name = source
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("fixture")
            .replace('-', "_");
        write(&name, &text, Some("SELECT 1;\n"));
    }
    std::fs::write(dir.path().join("pgshift.toml"), "").expect("config");

    let one = report_with(dir.path(), 1, OutputFormat::Json);
    assert!(one.contains("\"rule\""), "findings expected: {one}");
    for threads in [2, 3, 8] {
        assert_eq!(
            report_with(dir.path(), threads, OutputFormat::Json),
            one,
            "JSON with {threads} threads"
        );
    }
    assert_eq!(
        report_with(dir.path(), 4, OutputFormat::Human),
        report_with(dir.path(), 1, OutputFormat::Human),
        "terminal output with 4 threads"
    );
}
