//! `may-fail-on-existing-data` (PGS209): the statement fails if existing rows violate it (duplicates, NULLs).
//!
//! Documentation: `docs/rules/may-fail-on-existing-data.md` (printed by `pgshift explain may-fail-on-existing-data`).

use super::alter_table;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{alter_commands, command_constraint, constraint_type};
use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS209",
    name: "may-fail-on-existing-data",
    severity: Severity::Warning,
    opt_in: false,
    summary: "the statement fails if existing rows violate it (duplicates, NULLs)",
    doc: include_str!("../../docs/rules/may-fail-on-existing-data.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    match s.node {
        NodeEnum::IndexStmt(i) if i.unique => {
            let Some(rv) = &i.relation else { return };
            let table = QualifiedName::from_range_var(rv);
            if s.existing(&table) {
                out.push(
                    s.diagnostic(format!("CREATE UNIQUE INDEX fails if `{table}` already has duplicate values in the indexed columns"))
                        .table(&table)
                        .help("Check first: SELECT <columns>, count(*) FROM <table> GROUP BY <columns> HAVING count(*) > 1; (a failed CONCURRENTLY build leaves an INVALID index to drop)"),
                );
            }
        }
        NodeEnum::AlterTableStmt(_) => {
            let Some((table, a)) = alter_table(s) else {
                return;
            };
            if !s.existing(&table) {
                return;
            }
            for (kind, cmd) in alter_commands(a) {
                let what = match kind {
                    AlterTableType::AtAddConstraint => match command_constraint(cmd) {
                        Some(c)
                            if matches!(
                                constraint_type(c),
                                ConstrType::ConstrUnique | ConstrType::ConstrPrimary
                            ) && c.indexname.is_empty() =>
                        {
                            "ADD UNIQUE/PRIMARY KEY fails if existing rows have duplicate values"
                                .to_string()
                        }
                        Some(c)
                            if constraint_type(c) == ConstrType::ConstrCheck
                                && !c.skip_validation =>
                        {
                            "ADD CHECK fails if any existing row violates it".to_string()
                        }
                        _ => continue,
                    },
                    AlterTableType::AtSetNotNull
                        if !s.ctx.has_validated_not_null_check(&table, &cmd.name) =>
                    {
                        format!(
                            "SET NOT NULL fails if any existing row has `{}` NULL",
                            cmd.name
                        )
                    }
                    _ => continue,
                };
                out.push(
                    s.diagnostic(format!("{what} in `{table}`"))
                        .table(&table)
                        .help("Check the data first (fix violating rows with batched UPDATEs) and make sure the application no longer writes violating rows before this runs"),
                );
            }
        }
        _ => {}
    }
}
