//! `ban-drop-database` (PGS406): dropping a schema or database loses everything in it.
//!
//! Documentation: `docs/rules/ban-drop-database.md` (printed by `pgshift explain ban-drop-database`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::context::Direction;
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};

pub const RULE: Rule = Rule {
    code: "PGS406",
    name: "ban-drop-database",
    severity: Severity::Error,
    opt_in: false,
    summary: "dropping a schema or database loses everything in it",
    doc: include_str!("../../docs/rules/ban-drop-database.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if s.ctx.direction != Direction::Up {
        return;
    }
    let breaks = breaking_changes(s.node, s.ctx);
    let names = |kind: BreakingKind| -> Vec<String> {
        breaks
            .iter()
            .filter(|b| b.kind == kind)
            .map(|b| b.object.name.clone())
            .collect()
    };
    let (databases, schemas) = (
        names(BreakingKind::DropDatabase),
        names(BreakingKind::DropSchema),
    );
    let what = if !databases.is_empty() {
        format!("database `{}`", databases.join("`, `"))
    } else if !schemas.is_empty() {
        format!("schema `{}`", schemas.join("`, `"))
    } else {
        return;
    };
    out.push(
        s.diagnostic(format!("dropping {what} loses everything in it"))
            .help("Back it up first (pg_dump), and make sure nothing uses it; suppress with `-- pgshift:allow ban-drop-database <reason>` once reviewed"),
    );
}
