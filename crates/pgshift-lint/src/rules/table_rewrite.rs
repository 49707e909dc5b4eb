//! `table-rewrite` (PGS306): SET LOGGED/UNLOGGED and SET ACCESS METHOD rewrite the table under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/table-rewrite.md` (printed by `pgshift explain table-rewrite`).

use super::{alter_table, lock_sentence};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;

pub const RULE: Rule = Rule {
    code: "PGS306",
    name: "table-rewrite",
    severity: Severity::Error,
    opt_in: false,
    summary: "SET LOGGED/UNLOGGED and SET ACCESS METHOD rewrite the table under ACCESS EXCLUSIVE",
    doc: include_str!("../../docs/rules/table-rewrite.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some((table, a)) = alter_table(s) else {
        return;
    };
    if !s.existing(&table) {
        return;
    }
    for (kind, _) in alter_commands(a) {
        let what = match kind {
            AlterTableType::AtSetLogged => "SET LOGGED",
            AlterTableType::AtSetUnLogged => "SET UNLOGGED",
            AlterTableType::AtSetAccessMethod => "SET ACCESS METHOD",
            _ => continue,
        };
        let Some(lock) = s.lock_on(&table) else {
            continue;
        };
        out.push(
            s.lock_diagnostic(format!("{what} rewrites the whole table while it {}", lock_sentence(lock, &table)), [&table])
                .help("Do it in a maintenance window, or build a new table with the wanted property, copy the data in batches and swap"),
        );
    }
}
