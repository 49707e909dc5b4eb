//! Automatic safe rewrites: the statements a team already writes, executed the way the seeds
//! prescribe (`CREATE INDEX` → `CONCURRENTLY` outside the transaction, `ADD FOREIGN KEY` →
//! `NOT VALID` then `VALIDATE` in its own transaction, ...).
//!
//! The rewrites themselves are pgshift-lint's [`safe_rewrite`]: the same steps the rules
//! print as their fix, so the advice and what `up` executes cannot disagree. This module only
//! decides *where* the steps run: a step that may share the migration's transaction stays in
//! it, a `CONCURRENTLY` step runs outside any transaction, and a `VALIDATE` gets a transaction
//! of its own (so its long scan holds only SHARE UPDATE EXCLUSIVE, and nothing stronger taken
//! earlier in the migration). A rewritten migration therefore spans several units; the
//! runner records progress per unit, so a crash resumes at the right step, and the history
//! keeps the checksum of the file as written.
//!
//! Statements on tables created earlier in the same migration are left alone (the table is
//! new, empty and invisible to other sessions until commit): [`safe_rewrite`] knows this
//! from the [`Context`] walked here statement by statement.

use std::collections::HashMap;

use pgshift_lint::{statement_effects, Context, Direction, Effect, PgVersion, SafeRewrite};
use pgshift_source::Script;
use pgshift_sql::{ParsedScript, Statement};

use crate::backup::{self, PlannedDump};
use crate::error::RunError;
use crate::options::RunOptions;
use crate::units::{units_as_written, Execution, Step, Unit};

/// What `up` will run for one migration, and the dump to take first (`on_drop = "pg_dump"`).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub exec: Execution,
    pub dump: Option<PlannedDump>,
}

/// The units `up` (and `plan`) use for a migration's up script: as written with `exact`,
/// otherwise with safe rewrites; then with `on_drop` applied. Reads the catalog, changes
/// nothing.
pub async fn prepare(
    client: &tokio_postgres::Client,
    version: &str,
    script: &Script,
    options: &RunOptions,
    pg: PgVersion,
) -> Result<Prepared, RunError> {
    let parsed = pgshift_sql::parse_range(&script.file_text, script.range.clone());
    let exec = if options.exact {
        units_as_written(version, script, &parsed)?
    } else {
        safe_units(version, script, &parsed, pg)?
    };
    let (exec, dump) = backup::protect(
        client,
        version,
        exec,
        options.on_drop,
        pg,
        &options.pg_dump_dir,
    )
    .await?;
    Ok(Prepared { exec, dump })
}

/// One statement of a script as pgshift sees it before running it.
#[derive(Debug, Clone)]
pub struct AnalysedStatement<'a> {
    pub statement: &'a Statement,
    /// What it locks, rewrites and scans, as written.
    pub effects: Vec<Effect>,
    /// What runs instead, when a mechanical safe form exists.
    pub rewrite: Option<SafeRewrite>,
}

/// Walks a script's statements in order, with the linter's [`Context`], so that knowledge
/// such as "this table was created earlier in this migration" is the linter's.
pub fn analyse<'a>(
    script: &Script,
    parsed: &'a ParsedScript,
    mut ctx: Context,
    runner_transaction: bool,
) -> Vec<AnalysedStatement<'a>> {
    ctx.start_script(runner_transaction, Direction::Up);
    parsed
        .statements
        .iter()
        .map(|statement| {
            let rewrite = pgshift_lint::safe_rewrite(statement, &script.file_text, &ctx);
            let effects = statement_effects(&statement.node, &ctx);
            ctx.observe(&statement.node, &effects, statement.span.clone());
            AnalysedStatement {
                statement,
                effects,
                rewrite,
            }
        })
        .collect()
}

/// The units `up` runs by default: [`units_as_written`], with each statement that has a safe
/// form replaced by its steps, and the units split where a step must run outside the
/// migration's transaction.
pub fn safe_units(
    version: &str,
    script: &Script,
    parsed: &ParsedScript,
    pg: PgVersion,
) -> Result<Execution, RunError> {
    let written = units_as_written(version, script, parsed)?;
    let runner_transaction = written.no_transaction_reason.is_none();
    let rewrites: HashMap<usize, SafeRewrite> =
        analyse(script, parsed, Context::new(pg, true), runner_transaction)
            .into_iter()
            .filter_map(|a| a.rewrite.map(|r| (a.statement.span.start, r)))
            .collect();
    Ok(apply_rewrites(written, &rewrites))
}

/// Replaces steps by their rewrites (keyed by the statement's start offset in the file) and
/// regroups the units.
fn apply_rewrites(written: Execution, rewrites: &HashMap<usize, SafeRewrite>) -> Execution {
    if rewrites.is_empty() {
        return written;
    }
    let Execution {
        path,
        file_text,
        units,
        no_transaction_reason,
    } = written;
    let mut out: Vec<Unit> = Vec::new();
    for unit in units {
        let Unit {
            transactional,
            in_author_transaction,
            steps,
        } = unit;
        // The steps of the transaction being assembled; flushed whenever a step must run on
        // its own.
        let mut current: Vec<Step> = Vec::new();
        for step in steps {
            let Some(rewrite) = rewrites.get(&step.origin.start) else {
                if transactional {
                    current.push(step);
                } else {
                    out.push(Unit {
                        transactional: false,
                        in_author_transaction,
                        steps: vec![step],
                    });
                }
                continue;
            };
            for rs in &rewrite.steps {
                let new =
                    Step::generated(rs.sql.clone(), step.origin.clone(), rs.purpose.to_string());
                if rs.transaction && transactional {
                    current.push(new);
                    continue;
                }
                flush(&mut current, &mut out);
                // Outside the migration's transaction: CONCURRENTLY runs on its own; anything
                // else (VALIDATE, the brief ALTERs around it) gets a short transaction of its
                // own, so it runs with `SET LOCAL` timeouts and commits with its progress
                // record. Inside a transaction the author opened, everything joins it.
                let outside = new.facts.outside_transaction.is_some();
                out.push(Unit {
                    transactional: !outside && !in_author_transaction,
                    in_author_transaction,
                    steps: vec![new],
                });
            }
        }
        flush(&mut current, &mut out);
    }
    let no_transaction_reason = no_transaction_reason.or_else(|| {
        (out.len() > 1).then(|| {
            "pgshift's safe rewrites split it: CONCURRENTLY cannot run in a transaction, VALIDATE runs in its own".to_string()
        })
    });
    Execution {
        path,
        file_text,
        units: out,
        no_transaction_reason,
    }
}

fn flush(current: &mut Vec<Step>, out: &mut Vec<Unit>) {
    if !current.is_empty() {
        out.push(Unit {
            transactional: true,
            in_author_transaction: false,
            steps: std::mem::take(current),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(sql: &str) -> Vec<(bool, Vec<String>)> {
        let script = pgshift_source::from_text("m.sql", sql).up;
        let parsed = pgshift_sql::parse_range(&script.file_text, script.range.clone());
        let exec = safe_units("1", &script, &parsed, PgVersion::new(15, 0)).expect("units");
        exec.units
            .into_iter()
            .map(|u| {
                (
                    u.transactional,
                    u.steps.into_iter().map(|s| s.sql).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn create_index_leaves_the_transaction() {
        let got = units("ALTER TABLE t ADD COLUMN b int;\nCREATE INDEX t_b ON t (b);\nUPDATE t SET b = 1 WHERE false;\n");
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[0],
            (true, vec!["ALTER TABLE t ADD COLUMN b int".to_string()])
        );
        assert!(!got[1].0);
        assert!(
            got[1].1[0].starts_with("CREATE INDEX CONCURRENTLY"),
            "{got:?}"
        );
        assert!(got[2].0);
    }

    #[test]
    fn set_not_null_spans_three_transactions() {
        let got = units("ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n");
        let shape: Vec<(bool, usize)> = got.iter().map(|(t, s)| (*t, s.len())).collect();
        assert_eq!(shape, vec![(true, 1), (true, 1), (true, 2)], "{got:?}");
        assert!(got[1].1[0].contains("VALIDATE CONSTRAINT"));
    }

    #[test]
    fn new_tables_are_left_alone() {
        let got = units("CREATE TABLE n (a int);\nCREATE INDEX n_a ON n (a);\nALTER TABLE n ADD CONSTRAINT c CHECK (a > 0);\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1[1], "CREATE INDEX n_a ON n (a)");
    }

    #[test]
    fn a_no_transaction_script_stays_statement_by_statement() {
        let got = units("-- pgshift:no-transaction\nALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id);\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got.iter().all(|(tx, _)| *tx),
            "each step in a short transaction of its own"
        );
    }

    #[test]
    fn statements_that_wait_without_blocking_are_recognised() {
        let long = |sql: &str| crate::units::StepFacts::of_sql(sql).runs_long_without_blocking;
        assert!(long("CREATE INDEX CONCURRENTLY i ON t (a)"));
        assert!(long("ALTER TABLE t VALIDATE CONSTRAINT c"));
        assert!(long("REINDEX INDEX CONCURRENTLY i"));
        assert!(long("DROP INDEX CONCURRENTLY i"));
        assert!(!long("CREATE INDEX i ON t (a)"));
        assert!(!long("ALTER TABLE t ADD COLUMN a int"));
    }
}
