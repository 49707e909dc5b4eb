//! `prefer-jsonb` (PGS308): json has no equality operator and re-parses on every access; use jsonb.
//!
//! Documentation: `docs/rules/prefer-jsonb.md` (printed by `pgshift explain prefer-jsonb`).

use super::{alter_table, new_columns};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::casts::TypeSpec;
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS308",
    name: "prefer-jsonb",
    severity: Severity::Hint,
    opt_in: false,
    summary: "json has no equality operator and re-parses on every access; use jsonb",
    doc: include_str!("../../docs/rules/prefer-jsonb.md"),
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
        if ty.name == "json" {
            out.push(s.diagnostic(format!("column `{column}` is json: it has no equality operator (SELECT DISTINCT, GROUP BY and UNION fail) and is re-parsed on every access", column = column)).help("Use jsonb"));
        }
    }
}
