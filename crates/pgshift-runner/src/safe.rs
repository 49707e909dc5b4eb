//! Automatic safe rewrites: the statements a team already writes, executed the way the seeds
//! prescribe (`CREATE INDEX` → `CONCURRENTLY` outside the transaction, `ADD FOREIGN KEY` →
//! `NOT VALID` then `VALIDATE` in its own transaction, ...).
//!
//! The rewrites themselves are pgshift-lint's `safe_rewrite`, found for each statement by
//! [`crate::prepare`]: the same steps the rules print as their fix, so the advice and what
//! `up` executes cannot disagree. This module only decides *where* the steps run: a step that may share the migration's transaction stays in
//! it, a `CONCURRENTLY` step runs outside any transaction, and a `VALIDATE` gets a transaction
//! of its own (so its long scan holds only SHARE UPDATE EXCLUSIVE, and nothing stronger taken
//! earlier in the migration). A rewritten migration therefore spans several units; the
//! runner records progress per unit, so a crash resumes at the right step, and the history
//! keeps the checksum of the file as written.
//!
//! Statements on tables created earlier in the same migration are left alone (the table is
//! new, empty and invisible to other sessions until commit): `safe_rewrite` knows this from
//! the linter's context, walked statement by statement.

use std::collections::HashMap;

use pgshift_lint::SafeRewrite;

use crate::units::{Execution, Step, Unit};

/// Replaces steps by their rewrites (keyed by the statement's start offset in the file) and
/// regroups the units.
pub(crate) fn apply_rewrites(
    written: Execution,
    rewrites: &HashMap<usize, SafeRewrite>,
) -> Execution {
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
            when_busy: _,
        } = unit;
        // The steps of the transaction being assembled; flushed whenever a step must run on
        // its own.
        let mut current: Vec<Step> = Vec::new();
        for step in steps {
            let Some(rewrite) = rewrites.get(&step.origin.start) else {
                if transactional {
                    current.push(step);
                } else {
                    out.push(Unit::new(false, in_author_transaction, vec![step]));
                }
                continue;
            };
            if let ([rs], true, false) = (
                rewrite.steps.as_slice(),
                rewrite.as_written_when_free,
                in_author_transaction,
            ) {
                // As written in a transaction of its own when its table's lock is granted at
                // once; the rewrite, outside a transaction, when it is not.
                flush(&mut current, &mut out);
                let other =
                    Step::generated(rs.sql.clone(), step.origin.clone(), rs.purpose.to_string());
                out.push(Unit {
                    when_busy: Some(Box::new(other)),
                    ..Unit::new(true, false, vec![step])
                });
                continue;
            }
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
                out.push(Unit::new(
                    !outside && !in_author_transaction,
                    in_author_transaction,
                    vec![new],
                ));
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
        out.push(Unit::new(true, false, std::mem::take(current)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgshift_lint::PgVersion;

    fn units(sql: &str) -> Vec<(bool, Vec<String>)> {
        let script = pgshift_source::from_text("m.sql", sql).up;
        let exec = crate::prepare::prepare_offline("1", &script, false, PgVersion::new(15, 0))
            .expect("units")
            .exec;
        exec.units
            .into_iter()
            .map(|u| {
                (
                    u.transactional,
                    u.steps.into_iter().map(|s| s.sql().to_string()).collect(),
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
        let long = |sql: &str| {
            Step::generated(sql.to_string(), 0..0, String::new())
                .facts
                .runs_long_without_blocking
        };
        assert!(long("CREATE INDEX CONCURRENTLY i ON t (a)"));
        assert!(long("ALTER TABLE t VALIDATE CONSTRAINT c"));
        assert!(long("REINDEX INDEX CONCURRENTLY i"));
        assert!(long("DROP INDEX CONCURRENTLY i"));
        assert!(!long("CREATE INDEX i ON t (a)"));
        assert!(!long("ALTER TABLE t ADD COLUMN a int"));
    }
}
