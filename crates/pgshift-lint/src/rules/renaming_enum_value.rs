//! `renaming-enum-value` (PGS315): renaming an enum value breaks code that still writes the old value.
//!
//! Documentation: `docs/rules/renaming-enum-value.md` (printed by `pgshift explain renaming-enum-value`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::ident::QualifiedName;
use pg_query::NodeEnum;

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
    if let NodeEnum::AlterEnumStmt(e) = s.node {
        let name =
            QualifiedName::from_names(&e.type_name).unwrap_or_else(|| QualifiedName::new(None, ""));
        if !e.old_val.is_empty() && !s.ctx.is_new_type(&name) {
            out.push(
                s.diagnostic(format!(
                    "RENAME VALUE '{}' TO '{}': running code that reads or writes '{}' fails immediately",
                    e.old_val, e.new_val, e.old_val
                ))
                .help("Add the new value, make the code accept both, move existing rows in batches of UPDATEs that each commit, then stop using the old value (it cannot be removed from the type)"),
            );
        }
    }
}
