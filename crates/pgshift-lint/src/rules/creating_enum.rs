//! `creating-enum` (PGS313): enum values are hard to remove or rename; consider a lookup table.
//!
//! Documentation: `docs/rules/creating-enum.md` (printed by `pgshift explain creating-enum`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS313",
    name: "creating-enum",
    severity: Severity::Hint,
    opt_in: false,
    summary: "enum values are hard to remove or rename; consider a lookup table",
    doc: include_str!("../../docs/rules/creating-enum.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if let NodeEnum::CreateEnumStmt(e) = s.node {
        let name = QualifiedName::from_names(&e.type_name)
            .map(|n| n.to_string())
            .unwrap_or_default();
        out.push(
            s.diagnostic(format!("enum type `{name}`: values can be added but not removed, and renaming one breaks running code"))
                .help("Consider a lookup table with a foreign key, or a text column with a CHECK constraint, which can be changed online"),
        );
    }
}
