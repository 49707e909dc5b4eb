//! `type-change-unknown-source` (PGS316): ALTER COLUMN ... TYPE to text/varchar/numeric is free only from a compatible type, and the current type is unknown.
//!
//! Documentation: `docs/rules/type-change-unknown-source.md` (printed by `pgshift explain type-change-unknown-source`).

use super::{alter_table, lock_sentence};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::casts::{likely_safe_target, TypeSpec};
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS316",
    name: "type-change-unknown-source",
    severity: Severity::Warning,
    opt_in: false,
    summary: "ALTER COLUMN ... TYPE to text/varchar/numeric is free only from a compatible type, and the current type is unknown",
    doc: include_str!("../../docs/rules/type-change-unknown-source.md"),
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
        let Some(NodeEnum::ColumnDef(col)) = cmd.def.as_deref().and_then(|d| d.node.as_ref())
        else {
            continue;
        };
        // With USING, or to any other target, `changing-column-type` reports the rewrite; with a
        // known current type it decides exactly. Only the "probably fine" guess is left here.
        let Some(new) = col.type_name.as_ref().map(TypeSpec::from_type_name) else {
            continue;
        };
        if col.raw_default.is_some()
            || !likely_safe_target(&new)
            || s.ctx.column_type(&table, &cmd.name).is_some()
        {
            continue;
        }
        let compatible = if new.name == "numeric" {
            "numeric"
        } else {
            "varchar or text"
        };
        let Some(lock) = s.lock_on(&table) else {
            continue;
        };
        out.push(
            s.lock_diagnostic(format!(
                "changing `{}` to {} is free only if it is {compatible} now, and pgshift cannot see its current type (no migration in this set defines it); from any other type (integer, uuid, ...) it rewrites the table and its indexes while it {}",
                cmd.name,
                new.sql(),
                lock_sentence(lock, &table)
            ), [&table])
            .help(format!(
                "Check the current type (`SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{}'::regclass AND attname = '{}'`) or run `pgshift plan` against the database. If it is not binary-compatible, change it in phases: a new column, a trigger keeping both in step, a batched backfill, then switch and drop the old one.",
                table.quoted().replace('\'', "''"),
                cmd.name.replace('\'', "''")
            )),
        );
    }
}
