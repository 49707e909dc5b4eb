//! `prefer-repack` (PGS508): VACUUM FULL and CLUSTER rewrite the table under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/prefer-repack.md` (printed by `pgshift explain prefer-repack`).

use super::lock_sentence;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS508",
    name: "prefer-repack",
    severity: Severity::Error,
    opt_in: false,
    summary: "VACUUM FULL and CLUSTER rewrite the table under ACCESS EXCLUSIVE",
    doc: include_str!("../../docs/rules/prefer-repack.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let what = match s.node {
        NodeEnum::VacuumStmt(v) if v.options.iter().any(|o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("full"))) => "VACUUM FULL",
        NodeEnum::ClusterStmt(_) => "CLUSTER",
        _ => return,
    };
    let Some(e) = s.main_effect() else {
        // Every table of the database, one after the other: the effects name no table, so the
        // finding carries no lock (a finding's lock is its statement's lock on its tables).
        out.push(s.diagnostic(format!("{what} rewrites tables under ACCESS EXCLUSIVE")));
        return;
    };
    if s.ctx.is_new_table(&e.table) {
        return;
    }
    out.push(
        s.lock_diagnostic(format!("{what} rewrites the whole table while it {}", lock_sentence(e.lock, &e.table)), [&e.table])
            .help(format!("Use pg_repack (`pg_repack --table {}`), which rebuilds online and swaps with a brief lock", e.table)),
    );
}
