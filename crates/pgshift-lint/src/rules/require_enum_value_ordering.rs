//! `require-enum-value-ordering` (PGS314): ALTER TYPE ... ADD VALUE without BEFORE/AFTER appends at the end.
//!
//! Documentation: `docs/rules/require-enum-value-ordering.md` (printed by `pgshift explain require-enum-value-ordering`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS314",
    name: "require-enum-value-ordering",
    severity: Severity::Hint,
    opt_in: false,
    summary: "ALTER TYPE ... ADD VALUE without BEFORE/AFTER appends at the end",
    doc: include_str!("../../docs/rules/require-enum-value-ordering.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if let NodeEnum::AlterEnumStmt(e) = s.node {
        if e.old_val.is_empty() && e.new_val_neighbor.is_empty() && !e.new_val.is_empty() {
            out.push(
                s.diagnostic(format!("ADD VALUE '{}' without BEFORE or AFTER appends it last: enum comparisons and ORDER BY follow declaration order", e.new_val))
                    .help(format!("Say where it goes: ALTER TYPE ... ADD VALUE IF NOT EXISTS '{}' AFTER '<existing value>';", e.new_val.replace('\'', "''"))),
            );
        }
    }
}
