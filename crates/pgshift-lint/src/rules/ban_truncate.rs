//! `ban-truncate` (PGS410): TRUNCATE of an existing table deletes all its rows under ACCESS EXCLUSIVE.
//!
//! Documentation: `docs/rules/ban-truncate.md` (printed by `pgshift explain ban-truncate`).

use super::{lock_sentence, truncated_tables, Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS410",
    name: "ban-truncate",
    severity: Severity::Error,
    opt_in: false,
    summary: "TRUNCATE of an existing table deletes every row, under ACCESS EXCLUSIVE",
    doc: include_str!("../../docs/rules/ban-truncate.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    // TRUNCATE ... CASCADE is ban-truncate-cascade's finding.
    let Some((tables, false)) = truncated_tables(s) else {
        return;
    };
    let tables: Vec<QualifiedName> = tables.into_iter().filter(|t| s.existing(t)).collect();
    let Some(first) = tables.first() else {
        return;
    };
    let Some(lock) = s.lock_on(first) else {
        return;
    };
    let names: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
    out.push(
        s.lock_diagnostic(
            format!(
                "TRUNCATE deletes every row of {} (new, empty files: no undo once committed) and {}",
                names.join(", "),
                lock_sentence(lock, first)
            ),
            &tables,
        )
        .help("Keep data changes out of schema migrations: to retire a table, stop writing to it and drop it later (ban-drop-table); to purge rows, DELETE in batches outside the migration. If emptying it is intended, mark it: -- pgshift:allow ban-truncate <why>"),
    );
}
