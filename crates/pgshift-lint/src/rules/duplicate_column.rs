//! `duplicate-column` (PGS604): the same column is defined twice.
//!
//! Documentation: `docs/rules/duplicate-column.md` (printed by `pgshift explain duplicate-column`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS604",
    name: "duplicate-column",
    severity: Severity::Error,
    opt_in: false,
    summary: "the same column is defined twice",
    doc: include_str!("../../docs/rules/duplicate-column.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let names: Vec<&str> = match s.node {
        NodeEnum::CreateStmt(c) => c
            .table_elts
            .iter()
            .filter_map(|e| match &e.node {
                Some(NodeEnum::ColumnDef(col)) => Some(col.colname.as_str()),
                _ => None,
            })
            .collect(),
        NodeEnum::AlterTableStmt(a) => alter_commands(a)
            .filter(|(k, _)| *k == AlterTableType::AtAddColumn)
            .filter_map(
                |(_, cmd)| match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                    Some(NodeEnum::ColumnDef(col)) => Some(col.colname.as_str()),
                    _ => None,
                },
            )
            .collect(),
        NodeEnum::UpdateStmt(u) => u
            .target_list
            .iter()
            .filter_map(|t| match &t.node {
                Some(NodeEnum::ResTarget(r)) => Some(r.name.as_str()),
                _ => None,
            })
            .collect(),
        NodeEnum::InsertStmt(i) => i
            .cols
            .iter()
            .filter_map(|t| match &t.node {
                Some(NodeEnum::ResTarget(r)) => Some(r.name.as_str()),
                _ => None,
            })
            .collect(),
        _ => return,
    };
    let mut seen: Vec<&str> = Vec::new();
    for n in names {
        if seen.contains(&n) {
            out.push(
                s.diagnostic(format!(
                    "column `{n}` appears twice: PostgreSQL rejects the statement"
                ))
                .help("Remove or rename the duplicate"),
            );
        } else {
            seen.push(n);
        }
    }
}
