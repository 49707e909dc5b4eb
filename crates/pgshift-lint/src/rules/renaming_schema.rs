//! `renaming-schema` (PGS403): renaming a schema breaks every query that names it.
//!
//! Documentation: `docs/rules/renaming-schema.md` (printed by `pgshift explain renaming-schema`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};

pub const RULE: Rule = Rule {
    code: "PGS403",
    name: "renaming-schema",
    severity: Severity::Error,
    opt_in: false,
    summary: "renaming a schema breaks every query that names it",
    doc: include_str!("../../docs/rules/renaming-schema.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    for b in breaking_changes(s.node, s.ctx) {
        if b.kind != BreakingKind::RenameSchema {
            continue;
        }
        out.push(
            s.diagnostic(format!("renaming schema `{}` to `{}` breaks every query and search_path that names it", b.object.name, b.new_name.unwrap_or_default()))
                .help("Create the new schema, move or recreate objects there while the old names stay available (views), move the code, then drop the old schema"),
        );
    }
}
