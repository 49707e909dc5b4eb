//! `cannot-run-in-transaction` (PGS507): a statement that cannot run inside a transaction block is in one.
//!
//! Documentation: `docs/rules/cannot-run-in-transaction.md` (printed by `pgshift explain cannot-run-in-transaction`).

use super::NO_TRANSACTION_HELP;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::version::Feature;
use pg_query::NodeEnum;
use pgshift_sql::forbidden_in_transaction;

pub const RULE: Rule = Rule {
    code: "PGS507",
    name: "cannot-run-in-transaction",
    severity: Severity::Error,
    opt_in: false,
    summary: "a statement that cannot run inside a transaction block is in one",
    doc: include_str!("../../docs/rules/cannot-run-in-transaction.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if !s.ctx.in_transaction() {
        return;
    }
    if let Some(what) = forbidden_in_transaction(s.node) {
        // CONCURRENTLY forms are concurrently-in-transaction's.
        if !what.contains("CONCURRENTLY") {
            out.push(
                s.diagnostic(format!("{what} cannot run inside a transaction block: the migration fails at deploy time (SQLSTATE 25001)"))
                    .help(NO_TRANSACTION_HELP.to_string()),
            );
        }
        return;
    }
    if let NodeEnum::AlterEnumStmt(e) = s.node {
        if e.old_val.is_empty() && !s.ctx.version.has(Feature::AddEnumValueInTransaction) {
            out.push(
                s.diagnostic(format!("before PostgreSQL 12, ALTER TYPE ... ADD VALUE cannot run inside a transaction block (target: {})", s.ctx.version))
                    .help(NO_TRANSACTION_HELP.to_string()),
            );
        }
    }
}
