//! `statements-after-access-exclusive` (PGS503): statements after an ACCESS EXCLUSIVE lock in the same transaction extend it.
//!
//! Documentation: `docs/rules/statements-after-access-exclusive.md` (printed by `pgshift explain statements-after-access-exclusive`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::lock::LockLevel;
use pg_query::NodeEnum;
use pgshift_sql::transaction_control;

pub const RULE: Rule = Rule {
    code: "PGS503",
    name: "statements-after-access-exclusive",
    severity: Severity::Warning,
    opt_in: false,
    summary: "statements after an ACCESS EXCLUSIVE lock in the same transaction extend it",
    doc: include_str!("../../docs/rules/statements-after-access-exclusive.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some(held) = &s.ctx.held else { return };
    if held.lock != LockLevel::AccessExclusive
        || held.statements_after > 0
        || !s.ctx.in_transaction()
    {
        return;
    }
    if transaction_control(s.node).is_some() || matches!(s.node, NodeEnum::VariableSetStmt(_)) {
        return;
    }
    out.push(
        s.diagnostic(format!(
            "this statement runs while the transaction holds ACCESS EXCLUSIVE on `{}` (taken by an earlier statement): every read and write of `{}` waits until the transaction commits",
            held.table, held.table
        ))
        // No `.lock(..)`: a finding's lock is the one its statement takes, and this statement
        // takes none of it; the message names the lock the transaction already holds.
        .table(&held.table)
        .help("Commit right after the statement that takes ACCESS EXCLUSIVE: move it to the end of the migration, or move the statements after it to a migration of their own"),
    );
}
