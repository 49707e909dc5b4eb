//! `add-primary-key` (PGS205): ADD PRIMARY KEY builds its index (and checks NOT NULL) under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/add-primary-key.md` (printed by `pgshift explain add-primary-key`).

use super::{index_backed_constraint, IndexBackedConstraint};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::protobuf::ConstrType;

pub const RULE: Rule = Rule {
    code: "PGS205",
    name: "add-primary-key",
    severity: Severity::Error,
    opt_in: false,
    summary: "ADD PRIMARY KEY builds its index (and checks NOT NULL) under ACCESS EXCLUSIVE",
    doc: include_str!("../../docs/rules/add-primary-key.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    index_backed_constraint(
        s,
        out,
        &IndexBackedConstraint {
            kind: ConstrType::ConstrPrimary,
            what: "ADD PRIMARY KEY builds its index (and checks the columns for NULLs)",
            rewrite_intro: "Make the columns NOT NULL first (see set-not-null), build the unique index concurrently, then attach it as the primary key:",
            recipe: "Make the columns NOT NULL safely, CREATE UNIQUE INDEX CONCURRENTLY <name> ON {table} (<columns>), then ALTER TABLE {table} ADD CONSTRAINT <name> PRIMARY KEY USING INDEX <name>;",
        },
    );
}
