//! `require-concurrent-index-drop` (PGS102): DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table.
//!
//! Documentation: `docs/rules/require-concurrent-index-drop.md` (printed by `pgshift explain require-concurrent-index-drop`).

use super::NO_TRANSACTION_HELP;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS102",
    name: "require-concurrent-index-drop",
    severity: Severity::Warning,
    opt_in: false,
    summary: "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table",
    doc: include_str!("../../docs/rules/require-concurrent-index-drop.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let NodeEnum::DropStmt(d) = s.node else {
        return;
    };
    if d.concurrent || d.remove_type != ObjectType::ObjectIndex as i32 {
        return;
    }
    let names: Vec<QualifiedName> = QualifiedName::dropped(d)
        .filter(|n| !s.ctx.is_new_index(n))
        .collect();
    if names.is_empty() {
        return;
    }
    let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let diag = s.lock_diagnostic(
        format!(
            "DROP INDEX {} without CONCURRENTLY takes ACCESS EXCLUSIVE on the index's table, which blocks all reads and writes while it waits for running queries",
            list.join(", ")
        ),
        &names,
    );
    let diag = if s.rewrite.is_some() {
        s.with_rewrite(
            diag,
            &format!("Drop it concurrently. {NO_TRANSACTION_HELP}"),
        )
    } else {
        diag.help(format!("Drop each index with its own `DROP INDEX CONCURRENTLY` (it takes one index and no CASCADE). {NO_TRANSACTION_HELP}"))
    };
    out.push(diag);
}
