//! `ban-uncommitted-transaction` (PGS506): BEGIN without COMMIT: the migration's changes are rolled back.
//!
//! Documentation: `docs/rules/ban-uncommitted-transaction.md` (printed by `pgshift explain ban-uncommitted-transaction`).

use super::{Diagnostic, Rule, ScriptEnd};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS506",
    name: "ban-uncommitted-transaction",
    severity: Severity::Error,
    opt_in: false,
    summary: "BEGIN without COMMIT: the migration's changes are rolled back",
    doc: include_str!("../../docs/rules/ban-uncommitted-transaction.md"),
    check: super::no_statement_check,
    finish: Some(finish),
};

fn finish(end: &ScriptEnd<'_>, out: &mut Vec<Diagnostic>) {
    if let Some(begin) = &end.open_begin {
        let _ = (end.ctx, end.file_text, &end.range, &end.last_statement);
        out.push(
            Diagnostic::new(begin.clone(), "BEGIN without a matching COMMIT: the transaction is rolled back when the session ends, so none of these changes persist")
                .help("Add COMMIT; at the end of the transaction"),
        );
    }
}
