//! `ban-truncate-cascade` (PGS408): TRUNCATE ... CASCADE silently empties every table that references this one.
//!
//! Documentation: `docs/rules/ban-truncate-cascade.md` (printed by `pgshift explain ban-truncate-cascade`).

use super::{truncated_tables, Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS408",
    name: "ban-truncate-cascade",
    severity: Severity::Error,
    opt_in: false,
    summary: "TRUNCATE ... CASCADE silently empties every table that references this one",
    doc: include_str!("../../docs/rules/ban-truncate-cascade.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let Some((tables, true)) = truncated_tables(s) else {
        return;
    };
    out.push(
        s.lock_diagnostic("TRUNCATE ... CASCADE also empties every table with a foreign key to these tables, and every table referencing those, without naming them", &tables)
            .help("Name every table to truncate explicitly, without CASCADE: TRUNCATE a, b, c;"),
    );
}
