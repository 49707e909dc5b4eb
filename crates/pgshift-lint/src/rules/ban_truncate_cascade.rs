//! `ban-truncate-cascade` (PGS408): TRUNCATE ... CASCADE silently empties every table that references this one.
//!
//! Documentation: `docs/rules/ban-truncate-cascade.md` (printed by `pgshift explain ban-truncate-cascade`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::protobuf::DropBehavior;
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS408",
    name: "ban-truncate-cascade",
    severity: Severity::Error,
    opt_in: false,
    summary: "TRUNCATE ... CASCADE silently empties every table that references this one",
    doc: include_str!("../../docs/rules/ban-truncate-cascade.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let NodeEnum::TruncateStmt(t) = s.node else {
        return;
    };
    if t.behavior != DropBehavior::DropCascade as i32 {
        return;
    }
    let tables: Vec<QualifiedName> = t
        .relations
        .iter()
        .filter_map(|r| match &r.node {
            Some(NodeEnum::RangeVar(rv)) => Some(QualifiedName::from_range_var(rv)),
            _ => None,
        })
        .collect();
    out.push(
        s.lock_diagnostic("TRUNCATE ... CASCADE also empties every table with a foreign key to these tables, and every table referencing those, without naming them", &tables)
            .help("Name every table to truncate explicitly, without CASCADE: TRUNCATE a, b, c;"),
    );
}
