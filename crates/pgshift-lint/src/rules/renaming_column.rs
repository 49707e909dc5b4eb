//! `renaming-column` (PGS401): renaming a column breaks every running copy of the old code.
//!
//! Documentation: `docs/rules/renaming-column.md` (printed by `pgshift explain renaming-column`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::ident::QualifiedName;
use crate::knowledge::lock::LockLevel;
use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

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
    let NodeEnum::RenameStmt(r) = s.node else {
        return;
    };
    if r.rename_type != ObjectType::ObjectColumn as i32 {
        return;
    }
    let Some(rv) = &r.relation else { return };
    let table = QualifiedName::from_range_var(rv);
    if !s.existing(&table) {
        return;
    }
    out.push(
        s.diagnostic(format!(
            "renaming column `{}` of `{table}` to `{}` breaks every running copy of the code that still uses the old name",
            r.subname, r.newname
        ))
        .lock(LockLevel::AccessExclusive)
        .table(&table)
        .help(format!(
            "Rename in phases so old and new code both work (expand/contract): add `{new}`, keep both columns in step with a trigger, backfill, move the code to `{new}`, then drop `{old}`. Or keep the column name and alias it in the application",
            new = r.newname,
            old = r.subname
        )),
    );
}
