//! `require-concurrent-reindex` (PGS104): REINDEX without CONCURRENTLY blocks writes and the queries that use the index.
//!
//! Documentation: `docs/rules/require-concurrent-reindex.md` (printed by `pgshift explain require-concurrent-reindex`).

use super::NO_TRANSACTION_HELP;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::version::Feature;
use pg_query::protobuf::ReindexObjectType;
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS104",
    name: "require-concurrent-reindex",
    severity: Severity::Error,
    opt_in: false,
    summary: "REINDEX without CONCURRENTLY blocks writes and the queries that use the index",
    doc: include_str!("../../docs/rules/require-concurrent-reindex.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let NodeEnum::ReindexStmt(r) = s.node else {
        return;
    };
    let concurrent = r.params.iter().any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently")));
    let kind = ReindexObjectType::try_from(r.kind).unwrap_or(ReindexObjectType::Undefined);
    if concurrent
        || !matches!(
            kind,
            ReindexObjectType::ReindexObjectIndex | ReindexObjectType::ReindexObjectTable
        )
    {
        return;
    }
    let Some(rv) = &r.relation else { return };
    let name = QualifiedName::from_range_var(rv);
    if s.ctx.is_new_table(&name) || s.ctx.is_new_index(&name) {
        return;
    }
    // REINDEX INDEX: ACCESS EXCLUSIVE on the index; REINDEX TABLE: SHARE on the table (and
    // ACCESS EXCLUSIVE on each of its indexes, which the statement does not name).
    let d = s.lock_diagnostic(format!(
            "REINDEX without CONCURRENTLY blocks writes to the table of `{name}` and locks its indexes in ACCESS EXCLUSIVE mode: queries that would use them wait for the whole rebuild"
        ), [&name]);
    out.push(if s.ctx.version.has(Feature::ReindexConcurrently) {
        s.with_rewrite(d, &format!("Rebuild it concurrently. {NO_TRANSACTION_HELP}"))
    } else {
        d.help(format!(
            "PostgreSQL {} has no REINDEX CONCURRENTLY (it arrived in 12): build a new index with CREATE INDEX CONCURRENTLY, then drop the old one with DROP INDEX CONCURRENTLY",
            s.ctx.version
        ))
    });
}
