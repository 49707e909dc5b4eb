//! `exclusion-constraint` (PGS206): ADD EXCLUDE builds an index and checks every row under ACCESS EXCLUSIVE; it cannot be NOT VALID.
//!
//! Documentation: `docs/rules/exclusion-constraint.md` (printed by `pgshift explain exclusion-constraint`).

use super::{alter_table, lock_sentence};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{alter_commands, command_constraint, constraint_type};
use pg_query::protobuf::{AlterTableType, ConstrType};

pub const RULE: Rule = Rule {
    code: "PGS206",
    name: "exclusion-constraint",
    severity: Severity::Error,
    opt_in: false,
    summary: "ADD EXCLUDE builds an index and checks every row under ACCESS EXCLUSIVE; it cannot be NOT VALID",
    doc: include_str!("../../docs/rules/exclusion-constraint.md"),
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
    let Some(lock) = s.lock_on(&table) else {
        return;
    };
    for (kind, cmd) in alter_commands(a) {
        if kind == AlterTableType::AtAddConstraint
            && command_constraint(cmd)
                .is_some_and(|c| constraint_type(c) == ConstrType::ConstrExclusion)
        {
            out.push(
                s.lock_diagnostic(format!(
                    "ADD EXCLUDE builds an index and checks every row while it {}; exclusion constraints cannot be added NOT VALID",
                    lock_sentence(lock, &table)
                ), [&table])
                .help("There is no online way to add an exclusion constraint to a large table: create a new table with the constraint, copy the data in batches while triggers keep it in step, and swap; or add it while the table is small"),
            );
        }
    }
}
