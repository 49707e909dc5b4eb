//! `require-statement-timeout` (PGS502): no statement_timeout: a long statement holds its locks without bound.
//!
//! Documentation: `docs/rules/require-statement-timeout.md` (printed by `pgshift explain require-statement-timeout`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS502",
    name: "require-statement-timeout",
    severity: Severity::Hint,
    opt_in: false,
    summary: "no statement_timeout: a long statement holds its locks without bound",
    doc: include_str!("../../docs/rules/require-statement-timeout.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if s.ctx.has_statement_timeout() {
        return;
    }
    let Some(e) = s
        .effects
        .iter()
        .find(|e| (e.rewrite || e.scan) && e.lock.blocks_writes() && !s.ctx.is_new_table(&e.table))
    else {
        return;
    };
    // The strongest lock on that table, should the effects list it more than once.
    let lock = s.lock_on(&e.table).unwrap_or(e.lock);
    out.push(
        s.lock_diagnostic(format!(
            "no statement_timeout: this statement {} `{}` under {} with no upper bound on how long",
            if e.rewrite { "rewrites" } else { "scans" },
            e.table,
            lock.sql_name()
        ), [&e.table])
        .help("Bound it: SET statement_timeout = '5min'; (pgshift's runner sets one for every migration)"),
    );
}
