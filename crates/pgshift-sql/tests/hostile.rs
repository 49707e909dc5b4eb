//! Input built to hurt: what a user relies on is a prompt, clear answer, never a hang.

use std::time::{Duration, Instant};

use pgshift_sql::lexer::MAX_COMMENT_NESTING;

fn nested(depth: usize) -> String {
    format!(
        "{}select 1{};\nselect 2;\n",
        "/*".repeat(depth),
        "*/".repeat(depth)
    )
}

/// 100,000 nested comments kept PostgreSQL's scanner busy for over a minute; they are refused
/// at once, with an error that says why and what to do, at the comment's position.
#[test]
fn comments_nested_past_the_limit_are_refused_at_once() {
    let text = format!("select 0;\n{}", nested(100_000));
    let started = Instant::now();
    let script = pgshift_sql::parse(&text);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(script.errors.len(), 1, "{:?}", script.errors);
    let error = &script.errors[0];
    assert_eq!(error.offset, "select 0;\n".len());
    assert!(
        error
            .message
            .contains(&format!("more than {MAX_COMMENT_NESTING} levels")),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("close each comment"),
        "{}",
        error.message
    );
}

#[test]
fn comments_nested_up_to_the_limit_still_parse() {
    let script = pgshift_sql::parse(&nested(MAX_COMMENT_NESTING));
    assert!(script.errors.is_empty(), "{:?}", script.errors);
    assert_eq!(script.statements.len(), 1);
    let script = pgshift_sql::parse(&nested(MAX_COMMENT_NESTING + 1));
    assert_eq!(script.errors.len(), 1);
}

/// A file larger than one parser run is parsed in runs of whole statements (bounded memory);
/// what comes out is what parsing it whole gives: the same statements with the same spans,
/// even when a `BEGIN ATOMIC` body (whose `;`s split the lexer's pieces) sits on a run's edge.
#[test]
fn large_files_parse_in_runs_to_the_same_statements() {
    let mut text = String::new();
    let mut n = 0;
    while text.len() < 1_200_000 {
        n += 1;
        text.push_str(&format!(
            "INSERT INTO t (id, note) VALUES ({n}, 'row {n}; not a split');\n"
        ));
        if n % 5000 == 0 {
            text.push_str(
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\n",
            );
        }
    }
    let script = pgshift_sql::parse(&text);
    assert!(script.errors.is_empty(), "{:?}", script.errors);
    // Walking it a run at a time (what `check` does) sees the same statements, in order.
    let walk = pgshift_sql::walk_range(&text, 0..text.len());
    let spans: Vec<_> = script.statements.iter().map(|s| s.span.clone()).collect();
    assert_eq!(walk.spans, spans);
    let mut walked = Vec::new();
    walk.for_each(|i, s| walked.push((i, s.span.clone())));
    assert_eq!(walked.len(), spans.len());
    assert!(walked.iter().all(|(i, span)| spans[*i] == *span));
    let functions = n / 5000;
    assert_eq!(script.statements.len(), n + functions);
    let last = &script.statements[script.statements.len() - 1];
    assert!(
        last.text(&text).starts_with("INSERT INTO t"),
        "{}",
        last.text(&text)
    );
    for s in &script.statements {
        let t = s.text(&text);
        assert!(
            t.starts_with("INSERT INTO t (id, note) VALUES (") && t.ends_with("')")
                || t.starts_with("CREATE FUNCTION f()") && t.ends_with("END"),
            "{t:?}"
        );
    }
}
