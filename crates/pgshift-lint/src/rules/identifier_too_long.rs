//! `identifier-too-long` (PGS603): identifiers longer than 63 bytes are silently truncated.
//!
//! Documentation: `docs/rules/identifier-too-long.md` (printed by `pgshift explain identifier-too-long`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;
use crate::knowledge::effects::{alter_commands, column_constraints};

pub const RULE: Rule = Rule {
    code: "PGS603",
    name: "identifier-too-long",
    severity: Severity::Warning,
    opt_in: false,
    summary: "identifiers longer than 63 bytes are silently truncated",
    doc: include_str!("../../docs/rules/identifier-too-long.md"),
    check: check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let mut names: Vec<&str> = Vec::new();
    match s.node {
        NodeEnum::CreateStmt(c) => {
            if let Some(rv) = &c.relation {
                names.push(&rv.relname);
            }
            for e in &c.table_elts {
                match &e.node {
                    Some(NodeEnum::ColumnDef(col)) => {
                        names.push(&col.colname);
                        names.extend(column_constraints(col).map(|k| k.conname.as_str()));
                    }
                    Some(NodeEnum::Constraint(k)) => names.push(&k.conname),
                    _ => {}
                }
            }
        }
        NodeEnum::IndexStmt(i) => names.push(&i.idxname),
        NodeEnum::RenameStmt(r) => names.push(&r.newname),
        NodeEnum::AlterTableStmt(a) => {
            for (_, cmd) in alter_commands(a) {
                match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                    Some(NodeEnum::ColumnDef(col)) => names.push(&col.colname),
                    Some(NodeEnum::Constraint(k)) => names.push(&k.conname),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    for n in names {
        if n.len() > MAX_IDENTIFIER_BYTES {
            let mut end = MAX_IDENTIFIER_BYTES;
            while !n.is_char_boundary(end) {
                end -= 1;
            }
            out.push(
                s.diagnostic(format!("identifier `{n}` is {} bytes; PostgreSQL silently truncates it to 63 bytes: `{}`", n.len(), &n[..end]))
                    .help("Shorten it to at most 63 bytes, so the name in the database is the name in the code"),
            );
        }
    }
}

/// NAMEDATALEN - 1.
const MAX_IDENTIFIER_BYTES: usize = 63;
