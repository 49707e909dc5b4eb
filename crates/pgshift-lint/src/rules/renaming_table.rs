//! `renaming-table` (PGS402): renaming a table breaks every running copy of the old code.
//!
//! Documentation: `docs/rules/renaming-table.md` (printed by `pgshift explain renaming-table`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::ident::{quote_ident, QualifiedName};
use crate::knowledge::lock::LockLevel;
use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

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
    let NodeEnum::RenameStmt(r) = s.node else {
        return;
    };
    let kind = ObjectType::try_from(r.rename_type).unwrap_or(ObjectType::Undefined);
    if !matches!(
        kind,
        ObjectType::ObjectTable | ObjectType::ObjectView | ObjectType::ObjectMatview
    ) {
        return;
    }
    let Some(rv) = &r.relation else { return };
    let table = QualifiedName::from_range_var(rv);
    if !s.existing(&table) {
        return;
    }
    out.push(
        s.diagnostic(format!("renaming `{table}` to `{}` breaks every running copy of the code that still uses the old name", r.newname))
            .lock(LockLevel::AccessExclusive)
            .table(&table)
            .help(format!(
                "Rename, then create a view with the old name so old code keeps working until it is gone:\nALTER TABLE {old} RENAME TO {new};\nCREATE VIEW {old} AS SELECT * FROM {new};\n-- drop the view once no code uses the old name",
                old = table.quoted(),
                new = quote_ident(&r.newname)
            )),
    );
}
