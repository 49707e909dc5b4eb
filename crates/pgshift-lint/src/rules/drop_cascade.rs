//! `drop-cascade` (PGS409): DROP ... CASCADE silently drops every dependent object.
//!
//! Documentation: `docs/rules/drop-cascade.md` (printed by `pgshift explain drop-cascade`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::protobuf::DropBehavior;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS409",
    name: "drop-cascade",
    severity: Severity::Error,
    opt_in: false,
    summary: "DROP ... CASCADE silently drops every dependent object",
    doc: include_str!("../../docs/rules/drop-cascade.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let (cascade, what) = match s.node {
        NodeEnum::DropStmt(d) => (d.behavior == DropBehavior::DropCascade as i32, "DROP ... CASCADE"),
        NodeEnum::AlterTableStmt(a) => (
            a.cmds.iter().any(|c| matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd)) if cmd.behavior == DropBehavior::DropCascade as i32)),
            "ALTER TABLE ... DROP ... CASCADE",
        ),
        _ => return,
    };
    if cascade {
        out.push(
            s.diagnostic(format!("{what} also drops every object that depends on it (views, foreign keys, defaults, ...), without naming them"))
                .help("Drop the dependent objects explicitly first, so the migration says what it removes, then drop without CASCADE"),
        );
    }
}
