//! `concurrently-in-transaction` (PGS103): CONCURRENTLY cannot run inside a transaction block: the migration fails at deploy.
//!
//! Documentation: `docs/rules/concurrently-in-transaction.md` (printed by `pgshift explain concurrently-in-transaction`).

use super::NO_TRANSACTION_HELP;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pgshift_sql::forbidden_in_transaction;

pub const RULE: Rule = Rule {
    code: "PGS103",
    name: "concurrently-in-transaction",
    severity: Severity::Error,
    opt_in: false,
    summary: "CONCURRENTLY cannot run inside a transaction block: the migration fails at deploy",
    doc: include_str!("../../docs/rules/concurrently-in-transaction.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some(what) = forbidden_in_transaction(s.node) else {
        return;
    };
    if !what.contains("CONCURRENTLY") || !s.ctx.in_transaction() {
        return;
    }
    let why = if s.ctx.explicit_depth > 0 {
        "it follows a BEGIN"
    } else {
        "the migration runner wraps this migration in a transaction"
    };
    out.push(
        s.diagnostic(format!(
            "{what} cannot run inside a transaction block, and {why}: the migration fails at deploy time (SQLSTATE 25001)"
        ))
        .help(NO_TRANSACTION_HELP.to_string()),
    );
}
