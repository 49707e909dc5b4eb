//! `renaming-column` (PGS401): renaming a column breaks every running copy of the old code.
//!
//! Documentation: `docs/rules/renaming-column.md` (printed by `pgshift explain renaming-column`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};

pub const RULE: Rule = Rule {
    code: "PGS401",
    name: "renaming-column",
    severity: Severity::Error,
    opt_in: false,
    summary: "renaming a column breaks every running copy of the old code",
    doc: include_str!("../../docs/rules/renaming-column.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    for b in breaking_changes(s.node, s.ctx) {
        if b.kind != BreakingKind::RenameColumn {
            continue;
        }
        let table = b.object;
        let (old, new) = (b.part.unwrap_or_default(), b.new_name.unwrap_or_default());
        out.push(
            s.lock_diagnostic(format!(
                "renaming column `{old}` of `{table}` to `{new}` breaks every running copy of the code that still uses the old name"
            ), [&table])
            .help(format!(
                "Rename in phases so old and new code both work (expand/contract): add `{new}`, keep both columns in step with a trigger, backfill, move the code to `{new}`, then drop `{old}`. Or keep the column name and alias it in the application"
            )),
        );
    }
}
