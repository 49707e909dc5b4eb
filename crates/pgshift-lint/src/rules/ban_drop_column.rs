//! `ban-drop-column` (PGS404): dropping a column breaks old code that still reads or writes it.
//!
//! Documentation: `docs/rules/ban-drop-column.md` (printed by `pgshift explain ban-drop-column`).

use super::alter_table;
use super::{Diagnostic, Rule, StatementCheck};
use crate::context::Direction;
use crate::finding::Severity;
use crate::knowledge::effects::alter_commands;
use crate::knowledge::lock::LockLevel;
use pg_query::protobuf::AlterTableType;

pub const RULE: Rule = Rule {
    code: "PGS404",
    name: "ban-drop-column",
    severity: Severity::Error,
    opt_in: false,
    summary: "dropping a column breaks old code that still reads or writes it",
    doc: include_str!("../../docs/rules/ban-drop-column.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if s.ctx.direction != Direction::Up {
        return;
    }
    let Some((table, a)) = alter_table(s) else {
        return;
    };
    if !s.existing(&table) {
        return;
    }
    for (kind, cmd) in alter_commands(a) {
        if kind == AlterTableType::AtDropColumn {
            out.push(
                s.diagnostic(format!("dropping column `{}` of `{table}` breaks running code that still reads or writes it, and loses its data", cmd.name))
                    .lock(LockLevel::AccessExclusive)
                    .table(&table)
                    .help("First deploy code that no longer uses the column (ORMs: mark it ignored), then drop it in a later migration; keep a backup of the data if it may be needed"),
            );
        }
    }
}
