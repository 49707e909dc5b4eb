//! `renaming-schema` (PGS403): renaming a schema breaks every query that names it.
//!
//! Documentation: `docs/rules/renaming-schema.md` (printed by `pgshift explain renaming-schema`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

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
    let NodeEnum::RenameStmt(r) = s.node else {
        return;
    };
    if r.rename_type != ObjectType::ObjectSchema as i32 {
        return;
    }
    out.push(
        s.diagnostic(format!("renaming schema `{}` to `{}` breaks every query and search_path that names it", r.subname, r.newname))
            .help("Create the new schema, move or recreate objects there while the old names stay available (views), move the code, then drop the old schema"),
    );
}
