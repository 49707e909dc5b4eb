//! `transaction-nesting` (PGS505): BEGIN inside a transaction (or the runner's) does nothing; COMMIT ends the runner's transaction.
//!
//! Documentation: `docs/rules/transaction-nesting.md` (printed by `pgshift explain transaction-nesting`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pgshift_sql::{transaction_control, TransactionControl};

pub const RULE: Rule = Rule {
    code: "PGS505",
    name: "transaction-nesting",
    severity: Severity::Error,
    opt_in: false,
    summary: "BEGIN inside a transaction (or the runner's) does nothing; COMMIT ends the runner's transaction",
    doc: include_str!("../../docs/rules/transaction-nesting.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    match transaction_control(s.node) {
        // In a query string (golang-migrate, Prisma) the first BEGIN turns PostgreSQL's
        // implicit transaction into an explicit one: no warning, still one transaction.
        Some(TransactionControl::Begin)
            if s.ctx.in_transaction()
                && !(s.ctx.implicit_transaction && s.ctx.explicit_depth == 0) =>
        {
            let why = if s.ctx.explicit_depth > 0 {
                "a transaction is already open (an earlier BEGIN)"
            } else {
                "the migration runner already wraps this migration in a transaction"
            };
            out.push(
                s.diagnostic(format!("BEGIN does nothing here: {why} (PostgreSQL only warns)"))
                    .help("Remove BEGIN/COMMIT and let the runner manage the transaction, or mark the migration to run outside a transaction if it must control its own"),
            );
        }
        Some(TransactionControl::Commit | TransactionControl::Rollback)
            if s.ctx.runner_transaction
                && s.ctx.explicit_depth == 0
                && s.ctx.implicit_transaction =>
        {
            out.push(
                s.diagnostic("COMMIT/ROLLBACK without BEGIN ends the implicit transaction PostgreSQL runs this file in (it warns \"there is no transaction in progress\"): the statements before it stay committed if a later one fails")
                    .help("Remove it, or wrap the whole file in BEGIN; ... COMMIT;, or split the migration into several migrations"),
            );
        }
        Some(TransactionControl::Commit | TransactionControl::Rollback)
            if s.ctx.runner_transaction && s.ctx.explicit_depth == 0 =>
        {
            out.push(
                s.diagnostic("COMMIT/ROLLBACK ends the runner's transaction: the statements after it run outside any transaction, and a failure no longer rolls the migration back")
                    .help("Remove it, or split the migration into several migrations"),
            );
        }
        _ => {}
    }
}
