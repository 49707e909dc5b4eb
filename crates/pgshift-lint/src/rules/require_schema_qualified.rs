//! `require-schema-qualified` (PGS602): an unqualified name depends on search_path.
//!
//! Documentation: `docs/rules/require-schema-qualified.md` (printed by `pgshift explain require-schema-qualified`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS602",
    name: "require-schema-qualified",
    severity: Severity::Hint,
    opt_in: true,
    summary: "an unqualified name depends on search_path",
    doc: include_str!("../../docs/rules/require-schema-qualified.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let rv = match s.node {
        NodeEnum::CreateStmt(c) => c.relation.as_ref(),
        NodeEnum::AlterTableStmt(a) => a.relation.as_ref(),
        NodeEnum::IndexStmt(i) => i.relation.as_ref(),
        NodeEnum::CreateTrigStmt(t) => t.relation.as_ref(),
        _ => None,
    };
    if let Some(rv) = rv {
        if rv.schemaname.is_empty() {
            out.push(
                s.diagnostic(format!("`{}` is not schema-qualified: which table this is depends on the search_path at run time", rv.relname))
                    .help(format!("Qualify it: public.{}", rv.relname)),
            );
        }
    }
}
