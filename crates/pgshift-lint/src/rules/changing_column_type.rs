//! `changing-column-type` (PGS303): ALTER COLUMN TYPE rewrites the table and its indexes unless the change is binary-compatible.
//!
//! Documentation: `docs/rules/changing-column-type.md` (printed by `pgshift explain changing-column-type`).

use super::{alter_table, lock_sentence};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{alter_commands, command_effect};
use pg_query::protobuf::AlterTableType;

pub const RULE: Rule = Rule {
    code: "PGS303",
    name: "changing-column-type",
    severity: Severity::Error,
    opt_in: false,
    summary: "ALTER COLUMN TYPE rewrites the table and its indexes unless the change is binary-compatible",
    doc: include_str!("../../docs/rules/changing-column-type.md"),
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
    for (kind, cmd) in alter_commands(a) {
        if kind != AlterTableType::AtAlterColumnType {
            continue;
        }
        let e = command_effect(&table, cmd, s.ctx);
        if !e.rewrite {
            continue;
        }
        let Some(lock) = s.lock_on(&table) else {
            continue;
        };
        out.push(
            s.lock_diagnostic(
                format!(
                    "changing the type of `{}`: {}, while it {}",
                    cmd.name,
                    e.note,
                    lock_sentence(lock, &table)
                ),
                [&table],
            )
            .help(format!(
                "Change it in phases (expand/contract): add a new column of the new type, keep both in step with a trigger, backfill in batches, switch the code to the new column, then drop the old one. Binary-compatible changes (varchar(n) to text or to a larger varchar, numeric(p,s) to numeric(q>=p,s), cidr to inet) do not rewrite. Table: {}",
                table
            )),
        );
    }
}
