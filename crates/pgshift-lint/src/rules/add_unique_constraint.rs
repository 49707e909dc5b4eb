//! `add-unique-constraint` (PGS204): ADD UNIQUE builds its index under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/add-unique-constraint.md` (printed by `pgshift explain add-unique-constraint`).

use super::{index_backed_constraint, IndexBackedConstraint};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::protobuf::ConstrType;

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
    index_backed_constraint(
        s,
        out,
        &IndexBackedConstraint {
            kind: ConstrType::ConstrUnique,
            what: "ADD UNIQUE builds its index",
            rewrite_intro: "Build the unique index concurrently, then attach it as the constraint (brief lock, no build):",
            recipe: "CREATE UNIQUE INDEX CONCURRENTLY <name> ON {table} (<columns>); then ALTER TABLE {table} ADD CONSTRAINT <name> UNIQUE USING INDEX <name>;",
        },
    );
}
