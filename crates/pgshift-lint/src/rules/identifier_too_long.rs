//! `identifier-too-long` (PGS603): identifiers longer than 63 bytes are silently truncated.
//!
//! Documentation: `docs/rules/identifier-too-long.md` (printed by `pgshift explain identifier-too-long`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{alter_commands, column_constraints};
use pg_query::NodeEnum;
use pgshift_sql::ident::MAX_IDENTIFIER_BYTES;

pub const RULE: Rule = Rule {
    code: "PGS603",
    name: "identifier-too-long",
    severity: Severity::Warning,
    opt_in: false,
    summary: "identifiers longer than 63 bytes are silently truncated",
    doc: include_str!("../../docs/rules/identifier-too-long.md"),
    check,
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
    // The parser has already truncated long identifiers to 63 bytes (with only a NOTICE), so a
    // 63-byte name in the tree that continues in the text is one that was cut.
    let sql = s.sql();
    for n in names {
        if n.len() != MAX_IDENTIFIER_BYTES {
            continue;
        }
        let Some(written) = sql.match_indices(n).find_map(|(at, _)| {
            let rest = &sql[at + n.len()..];
            let tail: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                .collect();
            (!tail.is_empty()).then(|| format!("{n}{tail}"))
        }) else {
            continue;
        };
        out.push(
        s.diagnostic(format!(
            "identifier `{written}` is {} bytes; PostgreSQL silently truncates it to 63 bytes: `{n}`",
            written.len()
        ))
        .help("Shorten it to at most 63 bytes, so the name in the database is the name in the code"),
    );
    }
}
