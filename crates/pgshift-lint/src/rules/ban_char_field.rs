//! `ban-char-field` (PGS312): char(n) pads with spaces; use text or varchar.
//!
//! Documentation: `docs/rules/ban-char-field.md` (printed by `pgshift explain ban-char-field`).

use super::{alter_table, new_columns};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::casts::TypeSpec;
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS312",
    name: "ban-char-field",
    severity: Severity::Hint,
    opt_in: false,
    summary: "char(n) pads with spaces; use text or varchar",
    doc: include_str!("../../docs/rules/ban-char-field.md"),
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
        if ty.name == "bpchar" {
            out.push(s.diagnostic(format!("column `{column}` is {ty}: values are padded with spaces, and trailing spaces are ignored in comparisons", column = column, ty = ty.sql())).help("Use text (or varchar), with a CHECK constraint if the length matters"));
        }
    }
}
