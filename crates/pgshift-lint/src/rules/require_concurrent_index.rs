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
    // `ON ONLY` a partitioned table reads no row.
    if i.concurrent || !rv.inh || !s.existing(&table) {
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
    let help = if s.ctx.partitions(&table).is_some() {
        format!("PostgreSQL builds no index on a partitioned table CONCURRENTLY: create it ON ONLY the partitioned table (no rows read), build each partition's index CONCURRENTLY, then ALTER INDEX ... ATTACH PARTITION each, which makes the partitioned table's index valid (`pgshift up` does this). {NO_TRANSACTION_HELP}")
    } else {
        format!("Build it with CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes continue). {NO_TRANSACTION_HELP}")
    };
    out.push(s.with_rewrite(d, &help));
}
