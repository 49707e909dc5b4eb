//! `create-trigger-lock` (PGS509): CREATE TRIGGER takes SHARE ROW EXCLUSIVE, blocking writes.
//!
//! Documentation: `docs/rules/create-trigger-lock.md` (printed by `pgshift explain create-trigger-lock`).

use super::lock_sentence;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS509",
    name: "create-trigger-lock",
    severity: Severity::Warning,
    opt_in: false,
    summary: "CREATE TRIGGER takes SHARE ROW EXCLUSIVE, blocking writes",
    doc: include_str!("../../docs/rules/create-trigger-lock.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let NodeEnum::CreateTrigStmt(t) = s.node else {
        return;
    };
    let Some(rv) = &t.relation else { return };
    let table = QualifiedName::from_range_var(rv);
    if !s.existing(&table) {
        return;
    }
    let Some(lock) = s.lock_on(&table) else {
        return;
    };
    out.push(
        s.lock_diagnostic(format!("CREATE TRIGGER {}", lock_sentence(lock, &table)), [&table])
            .help("The trigger is created quickly, but the lock waits behind running transactions and writes queue behind it: run it with a short lock_timeout (SET lock_timeout = '2s';) and retry, in a transaction of its own"),
    );
}
