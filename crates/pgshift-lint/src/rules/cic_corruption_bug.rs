//! `cic-corruption-bug` (PGS106): CREATE/REINDEX CONCURRENTLY on PostgreSQL 14.0-14.3 can silently corrupt the index.
//!
//! Documentation: `docs/rules/cic-corruption-bug.md` (printed by `pgshift explain cic-corruption-bug`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::version::Feature;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS106",
    name: "cic-corruption-bug",
    severity: Severity::Error,
    opt_in: false,
    summary: "CREATE/REINDEX CONCURRENTLY on PostgreSQL 14.0-14.3 can silently corrupt the index",
    doc: include_str!("../../docs/rules/cic-corruption-bug.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if !s.ctx.version.has(Feature::ConcurrentIndexCorruptionBug) {
        return;
    }
    let concurrent = match s.node {
        NodeEnum::IndexStmt(i) => i.concurrent,
        NodeEnum::ReindexStmt(r) => r.params.iter().any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently"))),
        _ => false,
    };
    if concurrent {
        out.push(
            s.diagnostic(format!(
                "PostgreSQL {} has a bug in CREATE INDEX CONCURRENTLY / REINDEX CONCURRENTLY that can silently leave rows out of the index (fixed in 14.4)",
                s.ctx.version
            ))
            .help("Upgrade the server to 14.4 or later before building indexes concurrently; then check existing indexes built concurrently on 14.0-14.3 with `amcheck` (`pg_amcheck --heapallindexed`) and rebuild the broken ones"),
        );
    }
}
