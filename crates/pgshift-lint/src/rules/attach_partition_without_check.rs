//! `attach-partition-without-check` (PGS511): ATTACH PARTITION scans the partition under ACCESS EXCLUSIVE unless a CHECK proves the bound.
//!
//! Documentation: `docs/rules/attach-partition-without-check.md` (printed by `pgshift explain attach-partition-without-check`).

use super::alter_table;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::alter_commands;
use crate::knowledge::lock::LockLevel;
use crate::knowledge::version::Feature;
use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;
use pgshift_sql::ident::{quote_ident, QualifiedName};

pub const RULE: Rule = Rule {
    code: "PGS511",
    name: "attach-partition-without-check",
    severity: Severity::Warning,
    opt_in: false,
    summary: "ATTACH PARTITION scans the partition under ACCESS EXCLUSIVE unless a CHECK proves the bound",
    doc: include_str!("../../docs/rules/attach-partition-without-check.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some((parent, a)) = alter_table(s) else {
        return;
    };
    for (kind, cmd) in alter_commands(a) {
        if kind != AlterTableType::AtAttachPartition {
            continue;
        }
        let Some(NodeEnum::PartitionCmd(p)) = cmd.def.as_deref().and_then(|d| d.node.as_ref())
        else {
            continue;
        };
        let Some(rv) = &p.name else { continue };
        let part = QualifiedName::from_range_var(rv);
        if s.ctx.has_partition_check(&part) {
            continue;
        }
        out.push(
            s.diagnostic(format!(
                "ATTACH PARTITION scans `{part}` to check the partition bound while it holds ACCESS EXCLUSIVE on `{part}` (and {} on `{parent}`)",
                if s.ctx.version.has(Feature::AttachPartitionShareUpdateExclusive) { "SHARE UPDATE EXCLUSIVE" } else { "ACCESS EXCLUSIVE" }
            ))
            .lock(LockLevel::AccessExclusive)
            .table(&part)
            .table(&parent)
            .help(format!(
                "Prove the bound first with a CHECK that matches it, validated without blocking; ATTACH then skips the scan:\nALTER TABLE {p} ADD CONSTRAINT {c} CHECK (<partition bound as a condition>) NOT VALID;\n-- then, in a separate transaction:\nALTER TABLE {p} VALIDATE CONSTRAINT {c};\n-- then ATTACH, and drop the CHECK",
                p = part.quoted(),
                c = quote_ident(&format!("{}_bound", part.name))
            )),
        );
    }
}
