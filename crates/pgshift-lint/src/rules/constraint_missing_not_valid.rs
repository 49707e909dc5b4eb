//! `constraint-missing-not-valid` (PGS201): ADD CHECK without NOT VALID (or ADD COLUMN with an inline CHECK) scans the table under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/constraint-missing-not-valid.md` (printed by `pgshift explain constraint-missing-not-valid`).

use super::{alter_table, lock_sentence};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{
    alter_commands, column_constraints, command_constraint, constraint_type,
};
use crate::knowledge::lock::LockLevel;
use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::NodeEnum;
use pgshift_sql::ident::quote_ident;

pub const RULE: Rule = Rule {
    code: "PGS201",
    name: "constraint-missing-not-valid",
    severity: Severity::Error,
    opt_in: false,
    summary: "ADD CHECK without NOT VALID scans the table under ACCESS EXCLUSIVE",
    doc: include_str!("../../docs/rules/constraint-missing-not-valid.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some((table, a)) = alter_table(s) else {
        return;
    };
    for (kind, cmd) in alter_commands(a) {
        match kind {
            AlterTableType::AtAddConstraint => {
                let Some(c) = command_constraint(cmd) else {
                    continue;
                };
                if constraint_type(c) != ConstrType::ConstrCheck
                    || c.skip_validation
                    || !s.existing(&table)
                {
                    continue;
                }
                let Some(lock) = s.lock_on(&table) else {
                    continue;
                };
                let d = s.lock_diagnostic(
                    format!(
                        "ADD CHECK without NOT VALID scans the whole table while it {}",
                        lock_sentence(lock, &table)
                    ),
                    [&table],
                );
                out.push(if s.rewrite.is_some() {
                    s.with_rewrite(d, "Add it NOT VALID (brief lock, no scan), then VALIDATE it in a separate transaction (SHARE UPDATE EXCLUSIVE: reads and writes continue):")
                } else {
                    d.help(format!("Add `NOT VALID` to the constraint, then run `ALTER TABLE {} VALIDATE CONSTRAINT <name>;` in a separate transaction", table.quoted()))
                });
            }
            AlterTableType::AtAddColumn => {
                // `ADD COLUMN c int CHECK (...)` validates every existing row (even when the new
                // column is NULL everywhere: one seq scan on 15.20), and an inline constraint
                // cannot be NOT VALID.
                let Some(NodeEnum::ColumnDef(col)) =
                    cmd.def.as_deref().and_then(|d| d.node.as_ref())
                else {
                    continue;
                };
                let has_check = column_constraints(col)
                    .any(|c| constraint_type(c) == ConstrType::ConstrCheck && !c.skip_validation);
                if !has_check || !s.existing(&table) {
                    continue;
                }
                let Some(lock) = s.lock_on(&table) else {
                    continue;
                };
                let (t, c) = (table.quoted(), quote_ident(&col.colname));
                out.push(
                    s.lock_diagnostic(
                        format!(
                            "ADD COLUMN `{}` with an inline CHECK scans the whole table to validate it while it {}",
                            col.colname,
                            lock_sentence(lock, &table)
                        ),
                        [&table],
                    )
                    .help(format!(
                        "Add the column without the CHECK, then add the CHECK NOT VALID (brief lock, no scan) and VALIDATE it in a separate transaction (SHARE UPDATE EXCLUSIVE: reads and writes continue):\nALTER TABLE {t} ADD COLUMN {c} <type and default as written, without CHECK>;\nALTER TABLE {t} ADD CONSTRAINT <name> CHECK (<expression>) NOT VALID;\n-- then, in a separate transaction:\nALTER TABLE {t} VALIDATE CONSTRAINT <name>;"
                    )),
                );
            }
            AlterTableType::AtValidateConstraint => {
                // VALIDATE in the transaction that added the constraint: the ADD's ACCESS
                // EXCLUSIVE lock is still held during the scan, so NOT VALID bought nothing.
                let Some(held) = &s.ctx.held else { continue };
                if held.lock == LockLevel::AccessExclusive
                    && held.table.same_object(&table)
                    && s.ctx.is_not_valid(&table, &cmd.name)
                    && s.ctx.foreign_key_target(&table, &cmd.name).is_none()
                {
                    out.push(
                        s.diagnostic(format!(
                            "VALIDATE CONSTRAINT {} runs in the same transaction that holds ACCESS EXCLUSIVE on `{table}`: the scan happens under that lock, which blocks all reads and writes",
                            cmd.name
                        ))
                        // No lock: a finding's lock is the one its statement takes (VALIDATE
                        // takes SHARE UPDATE EXCLUSIVE); the message names the lock the
                        // transaction already holds.
                        .table(&table)
                        .help("Commit after `ADD CONSTRAINT ... NOT VALID`, and VALIDATE in a separate transaction (a separate migration)"),
                    );
                }
            }
            _ => {}
        }
    }
}
