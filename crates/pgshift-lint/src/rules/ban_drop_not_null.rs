//! `ban-drop-not-null` (PGS407): DROP NOT NULL lets NULLs reach readers that do not expect them.
//!
//! Documentation: `docs/rules/ban-drop-not-null.md` (printed by `pgshift explain ban-drop-not-null`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::context::Direction;
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};

pub const RULE: Rule = Rule {
    code: "PGS407",
    name: "ban-drop-not-null",
    severity: Severity::Warning,
    opt_in: false,
    summary: "DROP NOT NULL lets NULLs reach readers that do not expect them",
    doc: include_str!("../../docs/rules/ban-drop-not-null.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if s.ctx.direction != Direction::Up {
        return;
    }
    for b in breaking_changes(s.node, s.ctx) {
        if b.kind != BreakingKind::DropNotNull {
            continue;
        }
        out.push(
            s.diagnostic(format!("DROP NOT NULL on `{}`: running code that assumes the column is never NULL may break on the first NULL", b.part.unwrap_or_default()))
                .table(&b.object)
                .help("Make sure every reader handles NULL before new code starts writing NULLs"),
        );
    }
}
