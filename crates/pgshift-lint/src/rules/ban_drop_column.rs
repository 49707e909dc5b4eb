//! `ban-drop-column` (PGS404): dropping a column breaks old code that still reads or writes it.
//!
//! Documentation: `docs/rules/ban-drop-column.md` (printed by `pgshift explain ban-drop-column`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::context::Direction;
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};

pub const RULE: Rule = Rule {
    code: "PGS404",
    name: "ban-drop-column",
    severity: Severity::Error,
    opt_in: false,
    summary: "dropping a column breaks old code that still reads or writes it",
    doc: include_str!("../../docs/rules/ban-drop-column.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if s.ctx.direction != Direction::Up {
        return;
    }
    for b in breaking_changes(s.node, s.ctx) {
        if b.kind != BreakingKind::DropColumn {
            continue;
        }
        let table = b.object;
        out.push(
            s.lock_diagnostic(format!("dropping column `{}` of `{table}` breaks running code that still reads or writes it, and loses its data", b.part.unwrap_or_default()), [&table])
                .help("First deploy code that no longer uses the column (ORMs: mark it ignored), then drop it in a later migration; keep a backup of the data if it may be needed"),
        );
    }
}
