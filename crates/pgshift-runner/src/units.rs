//! How a migration's SQL becomes units of execution.
//!
//! A *unit* is what commits on its own: one transaction holding several statements, or one
//! statement run outside any transaction. Progress is recorded per unit, in the unit's own
//! transaction where it has one, so after a crash the next run resumes at the first unit
//! that did not commit. A migration that is one transactional unit records its history row in
//! that same transaction: it is applied entirely or not at all.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use pgshift_source::Script;
use pgshift_sql::{
    forbidden_in_transaction, transaction_control, ParsedScript, TransactionControl,
};

use crate::error::RunError;

/// One statement to send.
#[derive(Debug, Clone)]
pub struct Step {
    /// The SQL sent to the server.
    pub sql: String,
    /// Data for `COPY ... FROM stdin`, without the `\.` terminator.
    pub copy_data: Option<String>,
    /// The byte span in the file of the statement this step comes from.
    pub origin: Range<usize>,
    /// Set when the step is not the statement as written but part of a safe rewrite of it:
    /// what the step is for, shown before it runs and in errors.
    pub rewrite: Option<String>,
}

impl Step {
    /// Sends the step on `client`: a simple query, or `COPY ... FROM stdin` with its data.
    pub async fn send(&self, client: &tokio_postgres::Client) -> Result<(), pgshift_db::DbError> {
        match &self.copy_data {
            None => client
                .batch_execute(&self.sql)
                .await
                .map_err(pgshift_db::DbError::from),
            Some(data) => {
                use futures_util::SinkExt;
                let sink = client.copy_in::<_, bytes::Bytes>(self.sql.as_str()).await?;
                futures_util::pin_mut!(sink);
                sink.send(bytes::Bytes::from(data.clone().into_bytes()))
                    .await?;
                sink.finish().await?;
                Ok(())
            }
        }
    }

    /// True when `sql` is exactly the statement's text, so server error positions map into
    /// the file.
    pub fn is_verbatim(&self) -> bool {
        self.rewrite.is_none()
    }
}

/// The statement that opens a unit's transaction: `SET LOCAL` keeps the timeouts inside it,
/// so they hold through transaction-mode poolers and end with it.
pub fn begin_with_timeouts(
    lock_timeout: std::time::Duration,
    statement_timeout: std::time::Duration,
) -> String {
    format!(
        "BEGIN; SET LOCAL lock_timeout = '{}ms'; SET LOCAL statement_timeout = '{}ms'",
        lock_timeout.as_millis(),
        statement_timeout.as_millis()
    )
}

/// Statements that commit together.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Run inside `BEGIN ... COMMIT` with `SET LOCAL` timeouts; otherwise the single step runs
    /// on its own with session timeouts.
    pub transactional: bool,
    pub steps: Vec<Step>,
}

/// A script broken into units, with what is needed to report errors against the file.
#[derive(Debug, Clone)]
pub struct Execution {
    pub path: PathBuf,
    pub file_text: Arc<str>,
    pub units: Vec<Unit>,
    /// Why the script runs outside a transaction, when it does.
    pub no_transaction_reason: Option<String>,
}

impl Execution {
    pub fn step_count(&self) -> usize {
        self.units.iter().map(|u| u.steps.len()).sum()
    }
}

/// Breaks a parsed script into units as written (no safe rewrites):
/// - one transaction for the whole script by default;
/// - statement by statement outside a transaction when the format's or pgshift's
///   no-transaction marker says so, or when a top-level statement cannot run inside a
///   transaction block (decided from the parse tree);
/// - a script wrapped in its own `BEGIN; ... COMMIT;` runs in pgshift's transaction instead
///   (same effect, and the history row commits with it); any other explicit transaction
///   control runs as written, statement by statement.
pub fn units_as_written(
    version: &str,
    script: &Script,
    parsed: &ParsedScript,
) -> Result<Execution, RunError> {
    if let Some(err) = parsed.errors.first() {
        let idx = pgshift_sql::LineIndex::new(&script.file_text);
        let at = idx.line_col(&script.file_text, err.offset);
        return Err(RunError::Syntax {
            version: version.to_string(),
            path: script.path.clone(),
            line: at.line,
            column: at.column,
            message: err.message.clone(),
        });
    }
    let text = &script.file_text;
    // psql meta-commands are not SQL. pg_dump's `\restrict`/`\unrestrict` only guard psql
    // itself and are safe to skip; anything else (`\connect`, `\i`, `\set`) changes what the
    // script means, and pgshift cannot do it.
    if let Some(meta) = parsed.meta_commands.iter().find(|r| {
        let cmd = text[(*r).clone()].split_whitespace().next().unwrap_or("");
        !matches!(cmd, "\\restrict" | "\\unrestrict")
    }) {
        let at = pgshift_sql::LineIndex::new(text).line_col(text, meta.start);
        return Err(RunError::Syntax {
            version: version.to_string(),
            path: script.path.clone(),
            line: at.line,
            column: at.column,
            message: format!(
                "`{}` is a psql meta-command, not SQL; pgshift sends SQL to the server and cannot run it. Remove it, or run this file with psql",
                &text[meta.clone()]
            ),
        });
    }
    let mut statements: Vec<&pgshift_sql::Statement> = parsed.statements.iter().collect();

    let controls: Vec<Option<TransactionControl>> = statements
        .iter()
        .map(|s| transaction_control(&s.node))
        .collect();
    let wrapped_by_author = statements.len() >= 2
        && controls.first() == Some(&Some(TransactionControl::Begin))
        && controls.last() == Some(&Some(TransactionControl::Commit))
        && controls[1..controls.len() - 1].iter().all(|c| c.is_none());
    if wrapped_by_author {
        statements = statements[1..statements.len() - 1].to_vec();
    }
    let has_own_control = !wrapped_by_author
        && controls.iter().any(|c| {
            matches!(
                c,
                Some(
                    TransactionControl::Begin
                        | TransactionControl::Commit
                        | TransactionControl::Rollback
                )
            )
        });

    let forbidden = statements
        .iter()
        .find_map(|s| forbidden_in_transaction(&s.node));
    let no_transaction_reason = if script.no_transaction {
        Some("the migration is marked no-transaction".to_string())
    } else if let Some(what) = forbidden {
        Some(format!("{what} cannot run inside a transaction block"))
    } else if has_own_control {
        Some("the migration controls its own transactions (BEGIN/COMMIT)".to_string())
    } else {
        None
    };

    let steps: Vec<Step> = statements
        .iter()
        .map(|s| Step {
            sql: s.text(text).to_string(),
            copy_data: s.copy_data.clone().map(|r| strip_copy_terminator(&text[r])),
            origin: s.span.clone(),
            rewrite: None,
        })
        .collect();

    let units = if no_transaction_reason.is_some() {
        steps
            .into_iter()
            .map(|step| Unit {
                transactional: false,
                steps: vec![step],
            })
            .collect()
    } else {
        vec![Unit {
            transactional: true,
            steps,
        }]
    };
    Ok(Execution {
        path: script.path.clone(),
        file_text: script.file_text.clone(),
        units,
        no_transaction_reason,
    })
}

/// The unit whose `BEGIN` the author left open when unit `index` runs, if any: a script that
/// controls its own transactions runs statement by statement, and a failure between its
/// `BEGIN` and `COMMIT` rolls back everything since that `BEGIN` (the progress recorded
/// meanwhile included), so the run must resume there, not at the failing statement.
pub fn open_transaction_start(exec: &Execution, index: usize) -> Option<usize> {
    let mut open = None;
    // pgshift's own transactional units never hold the author's BEGIN (a wrapping one is
    // stripped), so only statements run on their own are looked at.
    for (i, unit) in exec.units.iter().enumerate().take(index) {
        if unit.transactional {
            continue;
        }
        for step in &unit.steps {
            let parsed = pgshift_sql::parse(&step.sql);
            match parsed
                .statements
                .first()
                .and_then(|s| transaction_control(&s.node))
            {
                Some(TransactionControl::Begin) => open = open.or(Some(i)),
                Some(TransactionControl::Commit | TransactionControl::Rollback) => open = None,
                _ => {}
            }
        }
    }
    open
}

fn strip_copy_terminator(data: &str) -> String {
    let trimmed = data.trim_end_matches(['\n', '\r']);
    match trimmed.strip_suffix("\\.") {
        Some(rest) if rest.is_empty() || rest.ends_with('\n') => rest.to_string(),
        _ => data.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(sql: &str, no_tx: bool) -> Execution {
        let mut script = pgshift_source::from_text("m.sql", sql).up;
        script.no_transaction = no_tx;
        let parsed = pgshift_sql::parse_range(&script.file_text, script.range.clone());
        units_as_written("1", &script, &parsed).expect("units")
    }

    #[test]
    fn a_plain_script_is_one_transaction() {
        let e = exec("CREATE TABLE a (id int); CREATE INDEX ON a (id);", false);
        assert_eq!(e.units.len(), 1);
        assert!(e.units[0].transactional);
        assert_eq!(e.units[0].steps.len(), 2);
    }

    #[test]
    fn concurrently_runs_statement_by_statement() {
        let e = exec(
            "CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY i ON a (id);",
            false,
        );
        assert_eq!(e.units.len(), 2);
        assert!(e.units.iter().all(|u| !u.transactional));
        assert!(e
            .no_transaction_reason
            .unwrap_or_default()
            .contains("CREATE INDEX CONCURRENTLY"));
    }

    #[test]
    fn an_author_wrapped_script_uses_our_transaction() {
        let e = exec("BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n", false);
        assert_eq!(e.units.len(), 1);
        assert!(e.units[0].transactional);
        assert_eq!(e.units[0].steps.len(), 1);
        assert_eq!(e.units[0].steps[0].sql, "CREATE TABLE a (id int)");
    }

    #[test]
    fn other_transaction_control_runs_as_written() {
        let e = exec(
            "BEGIN; CREATE TABLE a (id int); COMMIT; BEGIN; CREATE TABLE b (id int); COMMIT;",
            false,
        );
        assert_eq!(e.units.len(), 6);
        assert!(e.units.iter().all(|u| !u.transactional));
    }

    #[test]
    fn the_authors_open_transaction_is_found() {
        let e = exec(
            "BEGIN; CREATE TABLE a (id int); COMMIT; BEGIN; CREATE TABLE b (id int); COMMIT;",
            false,
        );
        let open: Vec<Option<usize>> = (0..e.units.len())
            .map(|i| open_transaction_start(&e, i))
            .collect();
        assert_eq!(open, vec![None, Some(0), Some(0), None, Some(3), Some(3)]);
        let plain = exec(
            "CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY i ON a (id);",
            false,
        );
        assert_eq!(open_transaction_start(&plain, 1), None);
    }

    #[test]
    fn copy_data_travels_with_its_statement() {
        let e = exec(
            "CREATE TABLE t (a int);\nCOPY t (a) FROM stdin;\n1\n2\n\\.\n",
            false,
        );
        let copy = &e.units[0].steps[1];
        assert_eq!(copy.copy_data.as_deref(), Some("1\n2\n"));
    }

    #[test]
    fn pg_dump_restrict_lines_are_skipped_and_other_meta_commands_refused() {
        let e = exec(
            "\\restrict k\nCREATE TABLE a (id int);\n\\unrestrict k\n",
            false,
        );
        assert_eq!(e.step_count(), 1);
        let script = pgshift_source::from_text("m.sql", "SELECT 1;\n\\connect other\n").up;
        let parsed = pgshift_sql::parse_range(&script.file_text, script.range.clone());
        match units_as_written("1", &script, &parsed) {
            Err(RunError::Syntax { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("\\connect other"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let script = pgshift_source::from_text("m.sql", "SELECT 1;\nSELEC 2;").up;
        let parsed = pgshift_sql::parse_range(&script.file_text, script.range.clone());
        match units_as_written("7", &script, &parsed) {
            Err(RunError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 1)),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
}
