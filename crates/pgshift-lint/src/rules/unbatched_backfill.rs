//! `unbatched-backfill` (PGS606): one UPDATE/DELETE over an existing table locks every row it touches until commit.
//!
//! Documentation: `docs/rules/unbatched-backfill.md` (printed by `pgshift explain unbatched-backfill`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS606",
    name: "unbatched-backfill",
    severity: Severity::Warning,
    opt_in: false,
    summary: "one UPDATE/DELETE over an existing table locks every row it touches until commit",
    doc: include_str!("../../docs/rules/unbatched-backfill.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let (rv, verb) = match s.node {
        NodeEnum::UpdateStmt(u) => (u.relation.as_ref(), "UPDATE"),
        NodeEnum::DeleteStmt(d) => (d.relation.as_ref(), "DELETE"),
        _ => return,
    };
    let Some(rv) = rv else { return };
    if s.marked_backfill {
        // `pgshift up` runs it as a batched, resumable backfill.
        return;
    }
    let table = QualifiedName::from_range_var(rv);
    if !s.existing(&table) {
        return;
    }
    let Some(lock) = s.lock_on(&table) else {
        return;
    };
    let held = match &s.ctx.held {
        Some(h) if s.ctx.in_transaction() && h.lock > lock => {
            format!(
                ", and the transaction already holds {} on `{}`, kept for the whole {verb}",
                h.lock.sql_name(),
                h.table
            )
        }
        _ => String::new(),
    };
    out.push(
        s.lock_diagnostic(format!(
            "one {verb} over existing table `{table}`: it locks every row it touches until commit, blocks concurrent writers to those rows, and writes all its WAL at once{held}"
        ), [&table])
        .help(if verb == "UPDATE" {
            "Mark it `-- pgshift:backfill` (the line before it) and `pgshift up` runs it as a batched, throttled, resumable backfill; or run it apart from the migration with `pgshift backfill --table T --set \"col = expr\" --where \"<not done yet>\"`"
        } else {
            "Delete in batches that commit one by one, walking the primary key in ranges (`DELETE FROM t WHERE id > $last AND id <= $next AND <condition>`), outside the schema migration"
        }),
    );
}
