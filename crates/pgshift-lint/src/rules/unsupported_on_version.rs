//! `unsupported-on-version` (PGS904): syntax the target PostgreSQL version does not have.
//!
//! Documentation: `docs/rules/unsupported-on-version.md` (printed by `pgshift explain unsupported-on-version`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::version::{fact, required_features};

pub const RULE: Rule = Rule {
    code: "PGS904",
    name: "unsupported-on-version",
    severity: Severity::Error,
    opt_in: false,
    summary:
        "syntax the target PostgreSQL version (--pg-version) does not have: the statement fails",
    doc: include_str!("../../docs/rules/unsupported-on-version.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    // Which release introduced what is data (`knowledge::version::FACTS`); this rule only
    // compares it with the target.
    for feature in required_features(s.node) {
        if s.ctx.version.has(feature) {
            continue;
        }
        let f = fact(feature);
        let d = s.diagnostic(format!(
            "{} needs PostgreSQL {} or later; the target is PostgreSQL {}, which rejects this statement",
            f.what, f.since, s.ctx.version
        ));
        out.push(d.help(match f.before {
            Some(instead) => format!(
                "On PostgreSQL {}: {instead}. If the server is newer, say so with `--pg-version` (or `pg_version` in pgshift.toml)",
                s.ctx.version
            ),
            None => "If the server is newer, say so with `--pg-version` (or `pg_version` in pgshift.toml)".into(),
        }));
    }
}
