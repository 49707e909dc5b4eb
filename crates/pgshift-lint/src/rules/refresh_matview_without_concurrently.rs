//! `refresh-matview-without-concurrently` (PGS510): REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads for the whole refresh.
//!
//! Documentation: `docs/rules/refresh-matview-without-concurrently.md` (printed by `pgshift explain refresh-matview-without-concurrently`).

use super::lock_sentence;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS510",
    name: "refresh-matview-without-concurrently",
    severity: Severity::Warning,
    opt_in: false,
    summary: "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads for the whole refresh",
    doc: include_str!("../../docs/rules/refresh-matview-without-concurrently.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let NodeEnum::RefreshMatViewStmt(r) = s.node else {
        return;
    };
    let Some(rv) = &r.relation else { return };
    let view = QualifiedName::from_range_var(rv);
    if r.concurrent || !s.existing(&view) {
        return;
    }
    let Some(lock) = s.lock_on(&view) else {
        return;
    };
    out.push(
        s.lock_diagnostic(
            format!(
                "REFRESH MATERIALIZED VIEW without CONCURRENTLY {} for the whole refresh",
                lock_sentence(lock, &view)
            ),
            [&view],
        )
        .help(format!(
            "Refresh concurrently (EXCLUSIVE: reads continue); it needs a unique index on the view:\nREFRESH MATERIALIZED VIEW CONCURRENTLY {};",
            view.quoted()
        )),
    );
}
