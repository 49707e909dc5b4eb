//! `require-concurrent-index` (PGS101): CREATE INDEX without CONCURRENTLY blocks writes for the whole build.
//!
//! Documentation: `docs/rules/require-concurrent-index.md` (printed by `pgshift explain require-concurrent-index`).

use super::NO_TRANSACTION_HELP;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS101",
    name: "require-concurrent-index",
    severity: Severity::Error,
    opt_in: false,
    summary: "CREATE INDEX without CONCURRENTLY blocks writes for the whole build",
    doc: include_str!("../../docs/rules/require-concurrent-index.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let NodeEnum::IndexStmt(i) = s.node else {
        return;
    };
    let Some(rv) = &i.relation else { return };
    let table = QualifiedName::from_range_var(rv);
    if i.concurrent || !s.existing(&table) {
        return;
    }
    let Some(lock) = s.lock_on(&table) else {
        return;
    };
    let d = s.lock_diagnostic(
        format!(
            "CREATE INDEX without CONCURRENTLY holds {} on `{table}` for the whole index build, which {}",
            lock.sql_name(),
            lock.blocks_description()
        ),
        [&table],
    );
    out.push(s.with_rewrite(d, &format!("Build it with CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes continue). {NO_TRANSACTION_HELP}")));
}
