//! `renaming-table` (PGS402): renaming a table breaks every running copy of the old code.
//!
//! Documentation: `docs/rules/renaming-table.md` (printed by `pgshift explain renaming-table`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};
use pgshift_sql::ident::quote_ident;

pub const RULE: Rule = Rule {
    code: "PGS402",
    name: "renaming-table",
    severity: Severity::Error,
    opt_in: false,
    summary: "renaming a table breaks every running copy of the old code",
    doc: include_str!("../../docs/rules/renaming-table.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    for b in breaking_changes(s.node, s.ctx) {
        if b.kind != BreakingKind::RenameTable {
            continue;
        }
        let table = b.object;
        let new = b.new_name.unwrap_or_default();
        out.push(
            s.lock_diagnostic(format!("renaming `{table}` to `{new}` breaks every running copy of the code that still uses the old name"), [&table])
                .help(format!(
                    "Rename, then create a view with the old name so old code keeps working until it is gone:\nALTER TABLE {old} RENAME TO {new};\nCREATE VIEW {old} AS SELECT * FROM {new};\n-- drop the view once no code uses the old name",
                    old = table.quoted(),
                    new = quote_ident(&new)
                )),
        );
    }
}
