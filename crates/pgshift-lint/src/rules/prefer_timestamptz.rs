//! `prefer-timestamptz` (PGS311): timestamp without time zone loses the offset; use timestamptz.
//!
//! Documentation: `docs/rules/prefer-timestamptz.md` (printed by `pgshift explain prefer-timestamptz`).

use super::{alter_table, new_columns};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::casts::TypeSpec;
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS311",
    name: "prefer-timestamptz",
    severity: Severity::Hint,
    opt_in: false,
    summary: "timestamp without time zone loses the offset; use timestamptz",
    doc: include_str!("../../docs/rules/prefer-timestamptz.md"),
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
        if ty.name == "timestamp" {
            out.push(s.diagnostic(format!("column `{column}` is timestamp without time zone: it stores wall-clock time and loses the offset", column = column)).help("Use timestamptz (timestamp with time zone): it stores an instant and converts to the session time zone"));
        }
    }
}
