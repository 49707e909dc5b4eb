//! `ban-drop-table` (PGS405): dropping a table loses its data and breaks old code.
//!
//! Documentation: `docs/rules/ban-drop-table.md` (printed by `pgshift explain ban-drop-table`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::context::Direction;
use crate::finding::Severity;
use crate::ident::QualifiedName;
use crate::knowledge::lock::LockLevel;
use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

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
    let NodeEnum::DropStmt(d) = s.node else {
        return;
    };
    // Not materialized views: their rows are derived and come back with the view.
    if ObjectType::try_from(d.remove_type) != Ok(ObjectType::ObjectTable) {
        return;
    }
    let tables: Vec<QualifiedName> = d
        .objects
        .iter()
        .filter_map(|o| match &o.node {
            Some(NodeEnum::List(l)) => QualifiedName::from_names(&l.items),
            _ => None,
        })
        .filter(|t| s.existing(t))
        .collect();
    if tables.is_empty() {
        return;
    }
    let list: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
    out.push(
        s.diagnostic(format!("dropping {} loses its data and breaks running code that still uses it", list.join(", ")))
            .lock(LockLevel::AccessExclusive)
            .tables(&tables)
            .help("Deploy code that no longer uses the table first; rename it (e.g. to `<name>_deprecated`) and drop it in a later release, or back it up (pg_dump -t) before dropping"),
    );
}
