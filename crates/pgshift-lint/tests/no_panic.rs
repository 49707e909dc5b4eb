//! No input makes the checker panic: arbitrary text, and SQL-looking text, through
//! parse → rules → findings.

use std::path::PathBuf;
use std::sync::Arc;

use pgshift_lint::{check_script, CheckOptions};
use pgshift_source::Script;
use proptest::prelude::*;

fn run(text: &str, wrapped: bool) {
    let options = CheckOptions {
        enable: vec!["all".into()],
        ..CheckOptions::default()
    };
    let script = Script::whole_file(PathBuf::from("x.sql"), Arc::from(text), !wrapped);
    for f in check_script(&script, wrapped, &options) {
        assert!(f.span.start <= f.span.end && f.span.end <= text.len());
        assert!(text.is_char_boundary(f.span.start) && text.is_char_boundary(f.span.end));
    }
}

const FRAGMENTS: &[&str] = &[
    "CREATE INDEX i ON t (a);",
    "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT random();",
    "BEGIN;",
    "COMMIT;",
    "ALTER TABLE t ALTER COLUMN c SET NOT NULL;",
    "-- pgshift:allow ",
    "require-concurrent-index",
    " reason\n",
    "DROP TABLE t CASCADE;",
    "CREATE TABLE t (id serial, j json, c char(2));",
    "$$",
    "'",
    "\"",
    "/*",
    "*/",
    ";",
    "ALTER TABLE t ADD CONSTRAINT k FOREIGN KEY (a) REFERENCES u (id) NOT VALID;",
    "ALTER TABLE t VALIDATE CONSTRAINT k;",
    "REINDEX TABLE t;",
    "DO $x$ BEGIN END $x$;",
    "é",
    "\u{0}",
    "COPY t FROM stdin;\n1\n\\.\n",
    "-- squawk-ignore\n",
    "-- safety-assured:start\n",
    "UPDATE t SET a = 1;",
    "ALTER TYPE e ADD VALUE 'x';",
    "VACUUM FULL t;",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}", wrapped in any::<bool>()) {
        run(&text, wrapped);
    }

    #[test]
    fn sql_fragments_never_panic(parts in proptest::collection::vec(0..FRAGMENTS.len(), 0..12), wrapped in any::<bool>()) {
        let text: String = parts.iter().map(|i| FRAGMENTS[*i]).collect();
        run(&text, wrapped);
    }
}
