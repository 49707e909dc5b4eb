//! `ban-drop-table` (PGS405): dropping a table loses its data and breaks old code.
//!
//! Documentation: `docs/rules/ban-drop-table.md` (printed by `pgshift explain ban-drop-table`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::context::Direction;
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS405",
    name: "ban-drop-table",
    severity: Severity::Error,
    opt_in: false,
    summary: "dropping a table loses its data and breaks old code",
    doc: include_str!("../../docs/rules/ban-drop-table.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if s.ctx.direction != Direction::Up {
        return;
    }
    // Tables only, not (materialized) views: their rows are derived and come back with the view.
    let tables: Vec<QualifiedName> = breaking_changes(s.node, s.ctx)
        .into_iter()
        .filter(|b| b.kind == BreakingKind::DropTable)
        .map(|b| b.object)
        .collect();
    if tables.is_empty() {
        return;
    }
    let list: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
    out.push(
        s.lock_diagnostic(format!("dropping {} loses its data and breaks running code that still uses it", list.join(", ")), &tables)
            .help("Deploy code that no longer uses the table first; rename it (e.g. to `<name>_deprecated`) and drop it in a later release, or back it up (pg_dump -t) before dropping"),
    );
}
