//! `index-too-many-columns` (PGS107): a non-unique index on more than three columns is rarely the best index.
//!
//! Documentation: `docs/rules/index-too-many-columns.md` (printed by `pgshift explain index-too-many-columns`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS107",
    name: "index-too-many-columns",
    severity: Severity::Hint,
    opt_in: false,
    summary: "a non-unique index on more than three columns is rarely the best index",
    doc: include_str!("../../docs/rules/index-too-many-columns.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let NodeEnum::IndexStmt(i) = s.node else {
        return;
    };
    if i.unique || i.primary || i.index_params.len() <= 3 {
        return;
    }
    out.push(
        s.diagnostic(format!("non-unique index on {} columns", i.index_params.len()))
            .help("An index on more than three columns is large and slow to maintain, and is used only by queries that filter on its leading columns; an index on the first one to three most selective columns usually serves the same queries"),
    );
}
