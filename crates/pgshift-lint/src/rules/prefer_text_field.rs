//! `prefer-text-field` (PGS304): varchar(n) limits are changed by ALTER TYPE; text with a CHECK is easier to change.
//!
//! Documentation: `docs/rules/prefer-text-field.md` (printed by `pgshift explain prefer-text-field`).

use super::{alter_table, new_columns};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::casts::TypeSpec;
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS304",
    name: "prefer-text-field",
    severity: Severity::Hint,
    opt_in: false,
    summary: "varchar(n) limits are changed by ALTER TYPE; text with a CHECK is easier to change",
    doc: include_str!("../../docs/rules/prefer-text-field.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let mut types: Vec<(String, TypeSpec)> = new_columns(s)
        .into_iter()
        .filter_map(|(_, col, _)| {
            col.type_name
                .as_ref()
                .map(|t| (col.colname.clone(), TypeSpec::from_type_name(t)))
        })
        .collect();

    if let Some((_, a)) = alter_table(s) {
        for (kind, cmd) in alter_commands(a) {
            if kind == AlterTableType::AtAlterColumnType {
                if let Some(NodeEnum::ColumnDef(col)) =
                    cmd.def.as_deref().and_then(|d| d.node.as_ref())
                {
                    if let Some(t) = &col.type_name {
                        types.push((cmd.name.clone(), TypeSpec::from_type_name(t)));
                    }
                }
            }
        }
    }

    for (column, ty) in types {
        if ty.name == "varchar" && !ty.mods.is_empty() {
            out.push(s.diagnostic(format!("column `{column}` is {ty}: changing the limit later is an ALTER TYPE (a rewrite when it shrinks)", column = column, ty = ty.sql())).help("Use text, with a CHECK (length(col) <= n) constraint if a limit is needed: a CHECK can be replaced NOT VALID and validated without blocking"));
        }
    }
}
