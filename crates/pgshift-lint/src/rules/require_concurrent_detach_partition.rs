//! `require-concurrent-detach-partition` (PGS105): DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent.
//!
//! Documentation: `docs/rules/require-concurrent-detach-partition.md` (printed by `pgshift explain require-concurrent-detach-partition`).

use super::{alter_table, lock_sentence, NO_TRANSACTION_HELP};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::alter_commands;
use crate::knowledge::version::Feature;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS105",
    name: "require-concurrent-detach-partition",
    severity: Severity::Warning,
    opt_in: false,
    summary: "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent",
    doc: include_str!("../../docs/rules/require-concurrent-detach-partition.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some((table, a)) = alter_table(s) else {
        return;
    };
    for (kind, cmd) in alter_commands(a) {
        if kind != AlterTableType::AtDetachPartition {
            continue;
        }
        let Some(NodeEnum::PartitionCmd(p)) = cmd.def.as_deref().and_then(|d| d.node.as_ref())
        else {
            continue;
        };
        if p.concurrent || !s.existing(&table) {
            continue;
        }
        let part = p.name.as_ref().map(QualifiedName::from_range_var);
        let Some(lock) = s.lock_on(&table) else {
            continue;
        };
        let d = s.lock_diagnostic(
            format!(
                "DETACH PARTITION without CONCURRENTLY {}, and the same on the partition",
                lock_sentence(lock, &table)
            ),
            std::iter::once(&table).chain(part.iter()),
        );
        let part_sql = part
            .as_ref()
            .map_or_else(|| "partition".to_string(), QualifiedName::quoted);
        out.push(if s.ctx.version.has(Feature::DetachPartitionConcurrently) {
            d.help(format!(
                "Detach it concurrently (SHARE UPDATE EXCLUSIVE on the parent):\nALTER TABLE {} DETACH PARTITION {part_sql} CONCURRENTLY;\n{NO_TRANSACTION_HELP}",
                table.quoted()
            ))
        } else {
            d.help(format!("PostgreSQL {} has no DETACH ... CONCURRENTLY (it arrived in 14): run it with a short lock_timeout and retries", s.ctx.version))
        });
    }
}
