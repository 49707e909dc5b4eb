//! `require-lock-timeout` (PGS501): a dangerous lock is taken with no lock_timeout: every query queues behind it.
//!
//! Documentation: `docs/rules/require-lock-timeout.md` (printed by `pgshift explain require-lock-timeout`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS501",
    name: "require-lock-timeout",
    severity: Severity::Warning,
    opt_in: false,
    summary: "a dangerous lock is taken with no lock_timeout: every query queues behind it",
    doc: include_str!("../../docs/rules/require-lock-timeout.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if s.ctx.has_lock_timeout() {
        return;
    }
    // Report the statement that first takes (or strengthens) a traffic-blocking lock in the
    // transaction: later statements find the lock already granted.
    let Some(e) = s
        .effects
        .iter()
        .filter(|e| {
            e.lock.blocks_writes()
                && !s.creates(&e.table)
                && !s.ctx.is_new_table(&e.table)
                && !s.ctx.is_new_index(&e.table)
        })
        .max_by_key(|e| e.lock)
    else {
        return;
    };
    if s.ctx.held.as_ref().is_some_and(|h| h.lock >= e.lock) {
        return;
    }
    out.push(
        s.lock_diagnostic(format!(
            "this statement waits for {} on `{}` with no lock_timeout: while it waits behind a long-running query, every new query on the table queues behind it",
            e.lock.sql_name(),
            e.table
        ), [&e.table])
        .help("Set a short lock timeout at the start of the migration and retry on failure (pgshift's own runner does both):\nSET lock_timeout = '2s';"),
    );
}
