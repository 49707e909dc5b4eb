//! `foreign-key-missing-not-valid` (PGS202): ADD FOREIGN KEY without NOT VALID blocks writes on both tables while it scans.
//!
//! Documentation: `docs/rules/foreign-key-missing-not-valid.md` (printed by `pgshift explain foreign-key-missing-not-valid`).

use super::alter_table;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{
    alter_commands, column_constraints, command_constraint, command_effect, constraint_type,
};
use crate::knowledge::lock::LockLevel;
use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::NodeEnum;
use pgshift_sql::ident::{quote_ident, strings, QualifiedName};

pub const RULE: Rule = Rule {
    code: "PGS202",
    name: "foreign-key-missing-not-valid",
    severity: Severity::Error,
    opt_in: false,
    summary: "ADD FOREIGN KEY without NOT VALID blocks writes on both tables while it scans",
    doc: include_str!("../../docs/rules/foreign-key-missing-not-valid.md"),
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
                if constraint_type(c) != ConstrType::ConstrForeign
                    || c.skip_validation
                    || !s.existing(&table)
                {
                    continue;
                }
                let referenced = c.pktable.as_ref().map(QualifiedName::from_range_var);
                let other = referenced
                    .as_ref()
                    .map_or_else(String::new, |r| format!(" and `{r}`"));
                let Some(lock) = s.lock_on(&table) else {
                    continue;
                };
                let d = s.lock_diagnostic(
                    format!(
                        "ADD FOREIGN KEY without NOT VALID scans `{table}` while it holds {} on `{table}`{other}, which blocks all writes to both tables",
                        lock.sql_name()
                    ),
                    std::iter::once(&table).chain(referenced.iter()),
                );
                out.push(if s.rewrite.is_some() {
                    s.with_rewrite(d, "Add it NOT VALID (brief lock, no scan), then VALIDATE it in a separate transaction (SHARE UPDATE EXCLUSIVE on the table, ROW SHARE on the referenced table: reads and writes continue):")
                } else {
                    d.help(format!("Add `NOT VALID` to the constraint, then run `ALTER TABLE {} VALIDATE CONSTRAINT <name>;` in a separate transaction", table.quoted()))
                });
            }
            AlterTableType::AtAddColumn => {
                // `ADD COLUMN c_id bigint DEFAULT 1 NOT NULL REFERENCES c (id)` (Django, Rails):
                // the effects say whether existing rows are checked (a non-NULL default on a
                // table that existed before); an inline REFERENCES cannot be NOT VALID.
                let Some(NodeEnum::ColumnDef(col)) =
                    cmd.def.as_deref().and_then(|d| d.node.as_ref())
                else {
                    continue;
                };
                let Some(fk) = column_constraints(col)
                    .find(|c| constraint_type(c) == ConstrType::ConstrForeign)
                else {
                    continue;
                };
                if !s.existing(&table) || !command_effect(&table, cmd, s.ctx).scan {
                    continue;
                }
                let referenced = fk.pktable.as_ref().map(QualifiedName::from_range_var);
                let Some(lock) = s.lock_on(&table) else {
                    continue;
                };
                let other = match referenced.as_ref().and_then(|r| Some((r, s.lock_on(r)?))) {
                    Some((r, l)) => format!(" and {} on `{r}`", l.sql_name()),
                    None => String::new(),
                };
                let (t, c) = (table.quoted(), quote_ident(&col.colname));
                let name = quote_ident(&format!("{}_{}_fkey", table.name, col.colname));
                let target = match &referenced {
                    Some(r) => {
                        let cols = strings(&fk.pk_attrs);
                        if cols.is_empty() {
                            r.quoted()
                        } else {
                            let cols: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
                            format!("{} ({})", r.quoted(), cols.join(", "))
                        }
                    }
                    None => "<table> (<column>)".into(),
                };
                out.push(
                    s.lock_diagnostic(
                        format!(
                            "ADD COLUMN `{}` with a DEFAULT and an inline REFERENCES checks every existing row against the referenced table while it holds {} on `{table}`{other}",
                            col.colname,
                            lock.sql_name()
                        ),
                        std::iter::once(&table).chain(referenced.iter()),
                    )
                    .help(format!(
                        "Add the column without REFERENCES, then the foreign key NOT VALID (brief lock, no scan), and VALIDATE it in a separate transaction (SHARE UPDATE EXCLUSIVE on the table, ROW SHARE on the referenced table: reads and writes continue):\nALTER TABLE {t} ADD COLUMN {c} <type, DEFAULT and NOT NULL as written>;\nALTER TABLE {t} ADD CONSTRAINT {name} FOREIGN KEY ({c}) REFERENCES {target} NOT VALID;\n-- then, in a separate transaction:\nALTER TABLE {t} VALIDATE CONSTRAINT {name};"
                    )),
                );
            }
            AlterTableType::AtValidateConstraint => {
                let Some(held) = &s.ctx.held else { continue };
                if held.lock >= LockLevel::ShareRowExclusive
                    && held.table.same_object(&table)
                    && s.ctx.is_not_valid(&table, &cmd.name)
                    && s.ctx.foreign_key_target(&table, &cmd.name).is_some()
                {
                    out.push(
                        s.diagnostic(format!(
                            "VALIDATE CONSTRAINT {} runs in the same transaction that added the foreign key: the scan happens under its SHARE ROW EXCLUSIVE lock, which blocks writes to both tables",
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
