//! `set-not-null` (PGS203): SET NOT NULL scans the whole table under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/set-not-null.md` (printed by `pgshift explain set-not-null`).

use super::{alter_table, lock_sentence};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{alter_commands, command_effect};
use crate::knowledge::version::Feature;
use pg_query::protobuf::AlterTableType;
use pgshift_sql::ident::quote_ident;

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
        if kind != AlterTableType::AtSetNotNull {
            continue;
        }
        // No scan when a validated CHECK proves the column has no NULLs (12+).
        if !command_effect(&table, cmd, s.ctx).scan {
            continue;
        }
        let Some(lock) = s.lock_on(&table) else {
            continue;
        };
        let d = s.lock_diagnostic(
            format!(
                "SET NOT NULL on `{}` scans the whole table while it {}",
                cmd.name,
                lock_sentence(lock, &table)
            ),
            [&table],
        );
        out.push(if s.ctx.version.has(Feature::CheckBackedSetNotNull) {
            if s.rewrite.is_some() {
                s.with_rewrite(d, "Prove it with a CHECK first (PostgreSQL 12+ then skips the scan):")
            } else {
                d.help(format!(
                    "Add `CHECK ({c} IS NOT NULL) NOT VALID`, VALIDATE it in a separate transaction, then SET NOT NULL (no scan on 12+) and drop the CHECK; split this ALTER so SET NOT NULL is alone",
                    c = quote_ident(&cmd.name)
                ))
            }
        } else {
            d.help(format!(
                "PostgreSQL {} always scans for SET NOT NULL; keep a validated `CHECK ({} IS NOT NULL)` constraint instead (added NOT VALID, then VALIDATE), or upgrade to 12+",
                s.ctx.version,
                quote_ident(&cmd.name)
            ))
        });
    }
}
