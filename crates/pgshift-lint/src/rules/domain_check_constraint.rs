//! `domain-check-constraint` (PGS208): a CHECK on a domain is validated against every column of that domain.
//!
//! Documentation: `docs/rules/domain-check-constraint.md` (printed by `pgshift explain domain-check-constraint`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::constraint_type;
use pg_query::protobuf::ConstrType;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS208",
    name: "domain-check-constraint",
    severity: Severity::Warning,
    opt_in: false,
    summary: "a CHECK on a domain is validated against every column of that domain",
    doc: include_str!("../../docs/rules/domain-check-constraint.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    match s.node {
        NodeEnum::CreateDomainStmt(d) => {
            let has_check = d.constraints.iter().any(|c| matches!(&c.node, Some(NodeEnum::Constraint(k)) if constraint_type(k) == ConstrType::ConstrCheck));
            if has_check {
                out.push(
                    s.diagnostic("a CHECK on a domain is validated against every column that uses the domain whenever it changes")
                        .help("Prefer a plain CHECK constraint on each table column (added NOT VALID, then VALIDATE); it can be changed one table at a time"),
                );
            }
        }
        NodeEnum::AlterDomainStmt(d) if d.subtype == "C" => {
            let not_valid = matches!(d.def.as_deref().and_then(|n| n.node.as_ref()), Some(NodeEnum::Constraint(k)) if k.skip_validation);
            if !not_valid {
                out.push(
                    s.diagnostic("ALTER DOMAIN ... ADD CONSTRAINT checks every column of every table that uses the domain, holding locks on all of them")
                        .help("Add it NOT VALID, then `ALTER DOMAIN ... VALIDATE CONSTRAINT` in a separate transaction, or use CHECK constraints on the tables instead"),
                );
            }
        }
        _ => {}
    }
}
