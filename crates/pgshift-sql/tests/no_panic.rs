//! Whatever bytes a migration file holds, parsing never panics and every span it reports lies
//! inside the text on character boundaries (so slicing with it can never panic either).

use proptest::prelude::*;

fn sql_like() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "select 1",
        ";",
        "'",
        "\"",
        "$$",
        "$a$",
        "--",
        "/*",
        "*/",
        "\n",
        "COPY t FROM stdin",
        "\\.",
        "(",
        ")",
        "E'\\'",
        "CREATE INDEX CONCURRENTLY i ON t (a)",
        "é",
        "\r\n",
        "BEGIN",
        "COMMIT",
        " ",
        "DO $$ BEGIN END $$",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsing_never_panics_and_spans_are_valid(text in sql_like()) {
        check(&text);
    }

    #[test]
    fn arbitrary_unicode_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }
}

fn check(text: &str) {
    let parsed = pgshift_sql::parse(text);
    for s in &parsed.statements {
        assert!(
            text.get(s.span.clone()).is_some(),
            "statement span {:?} in {text:?}",
            s.span
        );
        if let Some(d) = &s.copy_data {
            assert!(text.get(d.clone()).is_some());
        }
    }
    for e in &parsed.errors {
        assert!(
            e.offset <= text.len() && text.is_char_boundary(e.offset),
            "error offset {} in {text:?}",
            e.offset
        );
        assert!(text.get(e.statement.clone()).is_some());
    }
    for c in &parsed.comments {
        assert!(text.get(c.span.clone()).is_some());
    }
    let index = pgshift_sql::LineIndex::new(text);
    for e in &parsed.errors {
        let _ = index.line_col(text, e.offset);
    }
}
