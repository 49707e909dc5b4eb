//! `set-tablespace` (PGS307): SET TABLESPACE copies the whole table under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/set-tablespace.md` (printed by `pgshift explain set-tablespace`).

use super::{alter_table, lock_sentence};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;

pub const RULE: Rule = Rule {
    code: "PGS307",
    name: "set-tablespace",
    severity: Severity::Error,
    opt_in: false,
    summary: "SET TABLESPACE copies the whole table under ACCESS EXCLUSIVE",
    doc: include_str!("../../docs/rules/set-tablespace.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some((table, a)) = alter_table(s) else {
        return;
    };
    if !s.existing(&table) || s.ctx.is_new_index(&table) {
        return;
    }
    let Some(lock) = s.lock_on(&table) else {
        return;
    };
    for (kind, cmd) in alter_commands(a) {
        if kind == AlterTableType::AtSetTableSpace {
            out.push(
                s.lock_diagnostic(
                    format!(
                        "SET TABLESPACE {} copies every file of `{table}` while it {}",
                        cmd.name,
                        lock_sentence(lock, &table)
                    ),
                    [&table],
                )
                .help("Move it with pg_repack (`--tablespace`), which copies online, or in a maintenance window"),
            );
        }
    }
}
