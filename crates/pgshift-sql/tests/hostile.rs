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
