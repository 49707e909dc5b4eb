//! `drop-constraint` (PGS207): dropping a constraint removes a guarantee the data and the code rely on.
//!
//! Documentation: `docs/rules/drop-constraint.md` (printed by `pgshift explain drop-constraint`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::context::Direction;
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};

pub const RULE: Rule = Rule {
    code: "PGS207",
    name: "drop-constraint",
    severity: Severity::Warning,
    opt_in: false,
    summary: "dropping a constraint removes a guarantee the data and the code rely on",
    doc: include_str!("../../docs/rules/drop-constraint.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if s.ctx.direction != Direction::Up {
        return;
    }
    for b in breaking_changes(s.node, s.ctx) {
        if b.kind != BreakingKind::DropConstraint {
            continue;
        }
        let table = b.object;
        out.push(
            s.lock_diagnostic(format!("dropping constraint `{}` on `{table}` removes a guarantee that the data and the code may rely on", b.part.unwrap_or_default()), [&table])
                .help("Make sure no code relies on the constraint (a foreign key's ON DELETE action, a CHECK the code assumes), and keep its definition in the down migration so it can be restored"),
        );
    }
}
