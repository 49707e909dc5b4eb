//! `enum-value-used-before-commit` (PGS512): a new enum value used in the transaction that added it.
//!
//! Documentation: `docs/rules/enum-value-used-before-commit.md` (printed by `pgshift explain enum-value-used-before-commit`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::version::Feature;
use pg_query::protobuf::{a_const, AlterTableType};
use pg_query::{NodeEnum, NodeRef};

pub const RULE: Rule = Rule {
    code: "PGS512",
    name: "enum-value-used-before-commit",
    severity: Severity::Error,
    opt_in: false,
    summary: "a value added by ALTER TYPE ... ADD VALUE is used before its transaction commits: the statement fails",
    doc: include_str!("../../docs/rules/enum-value-used-before-commit.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    // Before 12, ADD VALUE cannot run in a transaction block at all (cannot-run-in-transaction).
    if s.ctx.enum_values_added.is_empty() || !s.ctx.version.has(Feature::AddEnumValueInTransaction)
    {
        return;
    }
    let literals = string_literals(s.node);
    for (ty, value) in &s.ctx.enum_values_added {
        if !literals.iter().any(|l| l == value) {
            continue;
        }
        out.push(
            s.diagnostic(format!(
                "'{value}' was added to enum `{ty}` earlier in this transaction: PostgreSQL refuses to use it before that transaction commits (\"unsafe use of new value\")"
            ))
            .help(format!(
                "Commit between them: put `ALTER TYPE {} ADD VALUE '{value}'` in a migration of its own (one that commits before the next runs: formats that run all pending migrations in one transaction need the use in a later deploy)",
                ty.quoted()
            )),
        );
    }
}

/// Every string constant the statement contains: in queries (the parse-tree walk) and in the
/// expressions ALTER TABLE carries (defaults, CHECKs, USING), which the walk does not enter.
fn string_literals(node: &NodeEnum) -> Vec<String> {
    let mut roots: Vec<&NodeEnum> = vec![node];
    if let NodeEnum::AlterTableStmt(a) = node {
        for cmd in &a.cmds {
            let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else {
                continue;
            };
            let kind = AlterTableType::try_from(cmd.subtype).unwrap_or(AlterTableType::Undefined);
            match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::ColumnDef(col)) => {
                    roots.extend(col.raw_default.as_deref().and_then(|n| n.node.as_ref()));
                    for c in &col.constraints {
                        if let Some(NodeEnum::Constraint(c)) = &c.node {
                            roots.extend(c.raw_expr.as_deref().and_then(|n| n.node.as_ref()));
                        }
                    }
                }
                Some(NodeEnum::Constraint(c)) => {
                    roots.extend(c.raw_expr.as_deref().and_then(|n| n.node.as_ref()))
                }
                Some(other) if kind == AlterTableType::AtColumnDefault => roots.push(other),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    while let Some(root) = roots.pop() {
        for (n, ..) in root.nodes() {
            match n {
                NodeRef::AConst(c) => {
                    if let Some(a_const::Val::Sval(v)) = &c.val {
                        out.push(v.sval.clone());
                    }
                }
                // The walk skips `VALUES (...)` rows (INSERT ... VALUES).
                NodeRef::SelectStmt(sel) => {
                    roots.extend(sel.values_lists.iter().filter_map(|n| n.node.as_ref()))
                }
                _ => {}
            }
        }
    }
    out
}
