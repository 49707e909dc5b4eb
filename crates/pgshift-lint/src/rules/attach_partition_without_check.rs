//! `attach-partition-without-check` (PGS511): ATTACH PARTITION scans the partition under ACCESS EXCLUSIVE unless a CHECK proves the bound.
//!
//! Documentation: `docs/rules/attach-partition-without-check.md` (printed by `pgshift explain attach-partition-without-check`).

use super::alter_table;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::alter_commands;
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
        // The effects know whether a validated CHECK proves the bound (then nothing is read),
        // and which lock each table takes on the target version.
        let scanned = s
            .effects
            .iter()
            .any(|e| e.scan && e.table.same_object(&part));
        let (Some(part_lock), Some(parent_lock)) = (s.lock_on(&part), s.lock_on(&parent)) else {
            continue;
        };
        if !scanned {
            continue;
        }
        out.push(
            s.lock_diagnostic(
                format!(
                    "ATTACH PARTITION scans `{part}` to check the partition bound while it holds {} on `{part}` (and {} on `{parent}`)",
                    part_lock.sql_name(),
                    parent_lock.sql_name()
                ),
                [&part, &parent],
            )
            .help(format!(
                "Prove the bound first with a CHECK that matches it, validated without blocking; ATTACH then skips the scan:\nALTER TABLE {p} ADD CONSTRAINT {c} CHECK (<partition bound as a condition>) NOT VALID;\n-- then, in a separate transaction:\nALTER TABLE {p} VALIDATE CONSTRAINT {c};\n-- then ATTACH, and drop the CHECK",
                p = part.quoted(),
                c = quote_ident(&format!("{}_bound", part.name))
            )),
        );
    }
}
