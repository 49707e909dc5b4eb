//! `set-not-null` (PGS203): SET NOT NULL (and PostgreSQL 18's ADD CONSTRAINT ... NOT NULL) scans the whole table under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/set-not-null.md` (printed by `pgshift explain set-not-null`).

use super::{alter_table, lock_sentence};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{
    alter_commands, command_constraint, command_effect, constraint_type,
};
use crate::knowledge::version::Feature;
use pg_query::protobuf::{AlterTableType, ConstrType};
use pgshift_sql::ident::{quote_ident, strings};

pub const RULE: Rule = Rule {
    code: "PGS203",
    name: "set-not-null",
    severity: Severity::Error,
    opt_in: false,
    summary: "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE",
    doc: include_str!("../../docs/rules/set-not-null.md"),
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
        // PostgreSQL 18's `ADD CONSTRAINT n NOT NULL col` is a SET NOT NULL with a name.
        let (column, named) = match kind {
            AlterTableType::AtSetNotNull => (cmd.name.clone(), false),
            AlterTableType::AtAddConstraint => match command_constraint(cmd) {
                Some(c) if constraint_type(c) == ConstrType::ConstrNotnull => {
                    match strings(&c.keys).into_iter().next() {
                        Some(col) => (col, true),
                        None => continue,
                    }
                }
                _ => continue,
            },
            _ => continue,
        };
        // No scan when NOT VALID, or when a validated CHECK proves the column has no NULLs (12+).
        if !command_effect(&table, cmd, s.ctx).scan {
            continue;
        }
        let Some(lock) = s.lock_on(&table) else {
            continue;
        };
        let what = if named {
            "ADD CONSTRAINT ... NOT NULL (a SET NOT NULL)"
        } else {
            "SET NOT NULL"
        };
        let d = s.lock_diagnostic(
            format!(
                "{what} on `{column}` scans the whole table while it {}",
                lock_sentence(lock, &table)
            ),
            [&table],
        );
        let c = quote_ident(&column);
        out.push(if named {
            // Only PostgreSQL 18+ parses this form, and 18 can validate it separately.
            if s.rewrite.is_some() {
                s.with_rewrite(d, "Add it NOT VALID (brief lock, no scan), then VALIDATE it in a separate transaction (SHARE UPDATE EXCLUSIVE: reads and writes continue; PostgreSQL 18+):")
            } else {
                d.help(format!(
                    "Add it `NOT VALID` (no scan), then run `ALTER TABLE {} VALIDATE CONSTRAINT <name>;` in a separate transaction (SHARE UPDATE EXCLUSIVE: reads and writes continue); split this ALTER so the constraint is alone",
                    table.quoted()
                ))
            }
        } else if s.ctx.version.has(Feature::CheckBackedSetNotNull) {
            if s.rewrite.is_some() {
                s.with_rewrite(d, "Prove it with a CHECK first (PostgreSQL 12+ then skips the scan):")
            } else {
                d.help(format!(
                    "Add `CHECK ({c} IS NOT NULL) NOT VALID`, VALIDATE it in a separate transaction, then SET NOT NULL (no scan on 12+) and drop the CHECK; split this ALTER so SET NOT NULL is alone"
                ))
            }
        } else {
            d.help(format!(
                "PostgreSQL {} always scans for SET NOT NULL; keep a validated `CHECK ({c} IS NOT NULL)` constraint instead (added NOT VALID, then VALIDATE), or upgrade to 12+",
                s.ctx.version
            ))
        });
    }
}
