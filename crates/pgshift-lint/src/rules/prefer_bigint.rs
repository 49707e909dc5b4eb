//! `prefer-bigint` (PGS309): int and smallint keys overflow; use bigint.
//!
//! Documentation: `docs/rules/prefer-bigint.md` (printed by `pgshift explain prefer-bigint`).

use super::{alter_table, new_columns};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::casts::TypeSpec;
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS309",
    name: "prefer-bigint",
    severity: Severity::Hint,
    opt_in: false,
    summary: "int and smallint keys overflow; use bigint",
    doc: include_str!("../../docs/rules/prefer-bigint.md"),
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
        if (matches!(ty.name.as_str(), "int4" | "int2" | "serial" | "smallserial"))
            && (column == "id" || column.ends_with("_id"))
        {
            out.push(s.diagnostic(format!("key column `{column}` is {ty}: it overflows at 2,147,483,647 (32,767 for smallint), and widening it later rewrites the table", column = column, ty = ty.sql())).help("Use bigint (or bigserial / bigint GENERATED ... AS IDENTITY)"));
        }
    }
}
