//! `drop-cascade` (PGS409): DROP ... CASCADE silently drops every dependent object.
//!
//! Documentation: `docs/rules/drop-cascade.md` (printed by `pgshift explain drop-cascade`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::cascade::{cascade_reach, Reach, TRIGGER_FUNCTION};
use pg_query::protobuf::{DropBehavior, ObjectType};
use pg_query::NodeEnum;
use pgshift_sql::ident::strings;

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
    // What CASCADE can reach depends on what is dropped (`knowledge::cascade`): the severity
    // follows it.
    let (cascade, what, reach) = match s.node {
        NodeEnum::DropStmt(d) => {
            let kind = ObjectType::try_from(d.remove_type).unwrap_or(ObjectType::Undefined);
            let mut reach = cascade_reach(kind);
            let functions = matches!(
                kind,
                ObjectType::ObjectFunction | ObjectType::ObjectRoutine
            );
            let all_trigger_functions = functions
                && d.objects.iter().all(|o| match &o.node {
                    Some(NodeEnum::ObjectWithArgs(f)) => {
                        s.ctx.is_trigger_function(&strings(&f.objname))
                    }
                    _ => false,
                });
            if all_trigger_functions {
                reach = &TRIGGER_FUNCTION;
            }
            (
                d.behavior == DropBehavior::DropCascade as i32,
                "DROP ... CASCADE",
                reach,
            )
        }
        NodeEnum::AlterTableStmt(a) => (
            a.cmds.iter().any(|c| matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd)) if cmd.behavior == DropBehavior::DropCascade as i32)),
            "ALTER TABLE ... DROP ... CASCADE",
            cascade_reach(ObjectType::ObjectColumn),
        ),
        _ => return,
    };
    if !cascade {
        return;
    }
    let unnamed = if reach.reach == Reach::Nothing {
        ""
    } else {
        ", without naming them"
    };
    let d = s
        .diagnostic(format!("{what} also drops {}{unnamed}", reach.what))
        .help("Drop the dependent objects explicitly first, so the migration says what it removes, then drop without CASCADE");
    out.push(match reach.reach {
        Reach::Data => d,
        Reach::Callers => d.severity(Severity::Warning),
        Reach::Nothing => d.severity(Severity::Hint),
    });
}
