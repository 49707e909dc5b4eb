//! `prefer-robust-stmts` (PGS601): DDL without IF [NOT] EXISTS fails when a migration is retried after a partial failure.
//!
//! Documentation: `docs/rules/prefer-robust-stmts.md` (printed by `pgshift explain prefer-robust-stmts`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::alter_commands;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS601",
    name: "prefer-robust-stmts",
    severity: Severity::Hint,
    opt_in: false,
    summary:
        "DDL without IF [NOT] EXISTS fails when a migration is retried after a partial failure",
    doc: include_str!("../../docs/rules/prefer-robust-stmts.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if let NodeEnum::IndexStmt(i) = s.node {
        if i.concurrent && i.idxname.is_empty() {
            out.push(
                s.diagnostic("CREATE INDEX CONCURRENTLY without a name: if it fails it leaves an INVALID index under a generated name, and a retry builds a second one")
                    .help("Name the index and add IF NOT EXISTS: CREATE INDEX CONCURRENTLY IF NOT EXISTS <name> ON ..."),
            );
            return;
        }
    }
    // Inside a transaction a failure rolls everything back, so a retry starts clean.
    if s.ctx.in_transaction() {
        return;
    }
    let what = match s.node {
        NodeEnum::CreateStmt(c) if !c.if_not_exists => "CREATE TABLE without IF NOT EXISTS",
        NodeEnum::IndexStmt(i) if !i.if_not_exists => "CREATE INDEX without IF NOT EXISTS",
        NodeEnum::DropStmt(d) if !d.missing_ok => "DROP without IF EXISTS",
        NodeEnum::AlterTableStmt(a) => {
            let fragile = alter_commands(a).any(|(kind, cmd)| {
                matches!(
                    kind,
                    AlterTableType::AtAddColumn
                        | AlterTableType::AtDropColumn
                        | AlterTableType::AtDropConstraint
                ) && !cmd.missing_ok
            });
            if !fragile {
                return;
            }
            "ADD COLUMN / DROP COLUMN / DROP CONSTRAINT without IF [NOT] EXISTS"
        }
        _ => return,
    };
    out.push(
        s.diagnostic(format!("{what}: this migration runs outside a transaction, so a retry after a partial failure fails on this statement"))
            .help("Write it so it can run twice: CREATE ... IF NOT EXISTS, DROP ... IF EXISTS, ADD COLUMN IF NOT EXISTS"),
    );
}
