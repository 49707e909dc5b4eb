//! `add-unique-constraint` (PGS204): ADD UNIQUE builds its index under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/add-unique-constraint.md` (printed by `pgshift explain add-unique-constraint`).

use super::{alter_table, lock_sentence};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{
    alter_commands, column_constraints, command_constraint, constraint_type,
};
use crate::knowledge::lock::LockLevel;
use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS204",
    name: "add-unique-constraint",
    severity: Severity::Error,
    opt_in: false,
    summary: "ADD UNIQUE builds its index under ACCESS EXCLUSIVE",
    doc: include_str!("../../docs/rules/add-unique-constraint.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some((table, a)) = alter_table(s) else {
        return;
    };
    if !s.existing(&table) {
        return;
    }
    for (kind, cmd) in alter_commands(a) {
        let found = match kind {
            AlterTableType::AtAddConstraint => command_constraint(cmd).is_some_and(|c| {
                constraint_type(c) == ConstrType::ConstrUnique && c.indexname.is_empty()
            }),
            AlterTableType::AtAddColumn => match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::ColumnDef(col)) => {
                    column_constraints(col).any(|c| constraint_type(c) == ConstrType::ConstrUnique)
                }
                _ => false,
            },
            _ => false,
        };
        if !found {
            continue;
        }
        let d = s
            .diagnostic(format!(
                "ADD UNIQUE builds its index while it {}",
                lock_sentence(LockLevel::AccessExclusive, &table)
            ))
            .lock(LockLevel::AccessExclusive)
            .table(&table);
        out.push(if s.rewrite.is_some() {
            s.with_rewrite(d, "Build the unique index concurrently, then attach it as the constraint (brief lock, no build):")
        } else {
            d.help(format!(
                "CREATE UNIQUE INDEX CONCURRENTLY <name> ON {} (<columns>); then ALTER TABLE {} ADD CONSTRAINT <name> UNIQUE USING INDEX <name>;",
                table.quoted(),
                table.quoted()
            ))
        });
    }
}
