//! `multiple-alter-table` (PGS504): several ALTER TABLE statements on one table take its lock (and scan) several times.
//!
//! Documentation: `docs/rules/multiple-alter-table.md` (printed by `pgshift explain multiple-alter-table`).

use super::alter_table;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS504",
    name: "multiple-alter-table",
    severity: Severity::Hint,
    opt_in: false,
    summary: "several ALTER TABLE statements on one table take its lock (and scan) several times",
    doc: include_str!("../../docs/rules/multiple-alter-table.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some((table, _)) = alter_table(s) else {
        return;
    };
    if !s.existing(&table) || !s.ctx.in_transaction() {
        return;
    }
    if let Some((_, first)) = s.ctx.altered.iter().find(|(t, _)| t.same_object(&table)) {
        let line = s.file_text[..first.start.min(s.file_text.len())]
            .matches('\n')
            .count()
            + 1;
        out.push(
            s.diagnostic(format!("`{table}` was already altered at line {line} in this transaction"))
                .table(&table)
                .help("Combine the subcommands into one ALTER TABLE, separated by commas: one lock acquisition and at most one scan or rewrite"),
        );
    }
}
