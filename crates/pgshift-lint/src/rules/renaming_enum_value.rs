//! `renaming-enum-value` (PGS315): renaming an enum value breaks code that still writes the old value.
//!
//! Documentation: `docs/rules/renaming-enum-value.md` (printed by `pgshift explain renaming-enum-value`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};

pub const RULE: Rule = Rule {
    code: "PGS315",
    name: "renaming-enum-value",
    severity: Severity::Error,
    opt_in: false,
    summary: "renaming an enum value breaks code that still writes the old value",
    doc: include_str!("../../docs/rules/renaming-enum-value.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    for b in breaking_changes(s.node, s.ctx) {
        if b.kind != BreakingKind::RenameEnumValue {
            continue;
        }
        let (old, new) = (b.part.unwrap_or_default(), b.new_name.unwrap_or_default());
        out.push(
            s.diagnostic(format!(
                "RENAME VALUE '{old}' TO '{new}': running code that reads or writes '{old}' fails immediately"
            ))
            .help("Add the new value, make the code accept both, move existing rows in batches of UPDATEs that each commit, then stop using the old value (it cannot be removed from the type)"),
        );
    }
}
