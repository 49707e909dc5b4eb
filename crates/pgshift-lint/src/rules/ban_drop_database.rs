//! `ban-drop-database` (PGS406): dropping a schema or database loses everything in it.
//!
//! Documentation: `docs/rules/ban-drop-database.md` (printed by `pgshift explain ban-drop-database`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::context::Direction;
use crate::finding::Severity;
use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

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
    let what = match s.node {
        NodeEnum::DropdbStmt(d) => format!("database `{}`", d.dbname),
        NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectSchema as i32 => {
            let names: Vec<String> = d
                .objects
                .iter()
                .filter_map(|o| match &o.node {
                    Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                    _ => None,
                })
                .collect();
            format!("schema `{}`", names.join("`, `"))
        }
        _ => return,
    };
    out.push(
        s.diagnostic(format!("dropping {what} loses everything in it"))
            .help("Back it up first (pg_dump), and make sure nothing uses it; suppress with `-- pgshift:allow ban-drop-database <reason>` once reviewed"),
    );
}
