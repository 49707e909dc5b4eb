//! Suppressions: pgshift's own `-- pgshift:allow RULE reason`, and the markers of the tools
//! whose folders pgshift reads (`squawk-ignore`, `eugene: ignore`, `atlas:nolint`,
//! `-- safety-assured:start/end`), mapped to pgshift's rules through one table.

/// Which pgshift rules another tool's rule name or code stands for.
pub const FOREIGN_RULES: &[(&str, &str, &[&str])] = &[
    // squawk rule names
    (
        "squawk",
        "adding-field-with-default",
        &["adding-field-with-volatile-default"],
    ),
    (
        "squawk",
        "adding-foreign-key-constraint",
        &["foreign-key-missing-not-valid"],
    ),
    ("squawk", "adding-not-nullable-field", &["set-not-null"]),
    (
        "squawk",
        "adding-required-field",
        &["adding-required-field"],
    ),
    (
        "squawk",
        "adding-serial-primary-key-field",
        &["add-primary-key"],
    ),
    ("squawk", "ban-char-field", &["ban-char-field"]),
    (
        "squawk",
        "ban-concurrent-index-creation-in-transaction",
        &["concurrently-in-transaction"],
    ),
    ("squawk", "ban-drop-column", &["ban-drop-column"]),
    ("squawk", "ban-drop-database", &["ban-drop-database"]),
    ("squawk", "ban-drop-not-null", &["ban-drop-not-null"]),
    ("squawk", "ban-drop-table", &["ban-drop-table"]),
    ("squawk", "ban-truncate-cascade", &["ban-truncate-cascade"]),
    (
        "squawk",
        "ban-uncommitted-transaction",
        &["ban-uncommitted-transaction"],
    ),
    (
        "squawk",
        "ban-create-domain-with-constraint",
        &["domain-check-constraint"],
    ),
    (
        "squawk",
        "ban-alter-domain-with-add-constraint",
        &["domain-check-constraint"],
    ),
    (
        "squawk",
        "ban-duplicate-column-assignments",
        &["duplicate-column"],
    ),
    ("squawk", "changing-column-type", &["changing-column-type"]),
    (
        "squawk",
        "constraint-missing-not-valid",
        &[
            "constraint-missing-not-valid",
            "foreign-key-missing-not-valid",
        ],
    ),
    (
        "squawk",
        "disallowed-unique-constraint",
        &["add-unique-constraint"],
    ),
    ("squawk", "identifier-too-long", &["identifier-too-long"]),
    ("squawk", "prefer-big-int", &["prefer-bigint"]),
    ("squawk", "prefer-bigint-over-int", &["prefer-bigint"]),
    ("squawk", "prefer-bigint-over-smallint", &["prefer-bigint"]),
    ("squawk", "prefer-identity", &["prefer-identity"]),
    ("squawk", "prefer-repack", &["prefer-repack"]),
    ("squawk", "prefer-robust-stmts", &["prefer-robust-stmts"]),
    ("squawk", "prefer-text-field", &["prefer-text-field"]),
    ("squawk", "prefer-timestamp-tz", &["prefer-timestamptz"]),
    ("squawk", "renaming-column", &["renaming-column"]),
    ("squawk", "renaming-table", &["renaming-table"]),
    (
        "squawk",
        "require-concurrent-index-creation",
        &["require-concurrent-index"],
    ),
    (
        "squawk",
        "require-concurrent-index-deletion",
        &["require-concurrent-index-drop"],
    ),
    (
        "squawk",
        "require-concurrent-reindex",
        &["require-concurrent-reindex"],
    ),
    (
        "squawk",
        "require-concurrent-partition-detach",
        &["require-concurrent-detach-partition"],
    ),
    (
        "squawk",
        "require-enum-value-ordering",
        &["require-enum-value-ordering"],
    ),
    ("squawk", "require-lock-timeout", &["require-lock-timeout"]),
    (
        "squawk",
        "require-statement-timeout",
        &["require-statement-timeout"],
    ),
    (
        "squawk",
        "require-timeout-settings",
        &["require-lock-timeout", "require-statement-timeout"],
    ),
    (
        "squawk",
        "require-table-schema",
        &["require-schema-qualified"],
    ),
    ("squawk", "transaction-nesting", &["transaction-nesting"]),
    ("squawk", "syntax-error", &["syntax-error"]),
    // eugene hint IDs
    (
        "eugene",
        "E1",
        &[
            "constraint-missing-not-valid",
            "foreign-key-missing-not-valid",
        ],
    ),
    ("eugene", "E2", &["set-not-null"]),
    ("eugene", "E3", &["prefer-jsonb"]),
    ("eugene", "E4", &["statements-after-access-exclusive"]),
    ("eugene", "E5", &["changing-column-type"]),
    ("eugene", "E6", &["require-concurrent-index"]),
    ("eugene", "E7", &["add-unique-constraint"]),
    ("eugene", "E8", &["exclusion-constraint"]),
    ("eugene", "E9", &["require-lock-timeout"]),
    (
        "eugene",
        "E11",
        &[
            "adding-rewriting-column",
            "adding-field-with-volatile-default",
        ],
    ),
    ("eugene", "W12", &["multiple-alter-table"]),
    ("eugene", "W13", &["creating-enum"]),
    ("eugene", "W14", &["add-primary-key"]),
    // Atlas analyzer codes and analyzer names
    ("atlas", "PG101", &["require-concurrent-index"]),
    ("atlas", "PG102", &["require-concurrent-index-drop"]),
    ("atlas", "PG103", &["concurrently-in-transaction"]),
    ("atlas", "PG104", &["add-primary-key"]),
    ("atlas", "PG105", &["add-unique-constraint"]),
    ("atlas", "PG301", &["changing-column-type"]),
    ("atlas", "PG302", &["adding-field-with-volatile-default"]),
    ("atlas", "PG303", &["set-not-null"]),
    ("atlas", "PG304", &["add-primary-key"]),
    ("atlas", "PG305", &["constraint-missing-not-valid"]),
    ("atlas", "PG306", &["foreign-key-missing-not-valid"]),
    ("atlas", "PG307", &["table-rewrite"]),
    ("atlas", "PG308", &["create-trigger-lock"]),
    ("atlas", "PG309", &["adding-rewriting-column"]),
    ("atlas", "PG310", &["adding-rewriting-column"]),
    ("atlas", "PG311", &["table-rewrite"]),
    ("atlas", "DS101", &["ban-drop-database"]),
    ("atlas", "DS102", &["ban-drop-table"]),
    ("atlas", "DS103", &["ban-drop-column"]),
    ("atlas", "MF101", &["may-fail-on-existing-data"]),
    ("atlas", "MF102", &["may-fail-on-existing-data"]),
    ("atlas", "MF103", &["adding-required-field"]),
    (
        "atlas",
        "MF104",
        &["may-fail-on-existing-data", "set-not-null"],
    ),
    ("atlas", "BC101", &["renaming-table"]),
    ("atlas", "BC102", &["renaming-column"]),
    ("atlas", "CD101", &["drop-constraint"]),
    ("atlas", "CD102", &["drop-constraint"]),
    ("atlas", "CD103", &["drop-constraint"]),
    ("atlas", "TX101", &["cannot-run-in-transaction"]),
    ("atlas", "TX201", &["transaction-nesting"]),
    (
        "atlas",
        "destructive",
        &["ban-drop-database", "ban-drop-table", "ban-drop-column"],
    ),
    (
        "atlas",
        "data_depend",
        &["may-fail-on-existing-data", "adding-required-field"],
    ),
    (
        "atlas",
        "incompatible",
        &["renaming-table", "renaming-column"],
    ),
    ("atlas", "condrop", &["drop-constraint"]),
    (
        "atlas",
        "concurrent_index",
        &[
            "require-concurrent-index",
            "require-concurrent-index-drop",
            "concurrently-in-transaction",
        ],
    ),
];

/// What a foreign marker suppresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suppressed {
    /// Every rule (a marker without a rule list).
    All,
    /// These pgshift rule names.
    Rules(Vec<&'static str>),
}

impl Suppressed {
    pub fn covers(&self, rule: &str) -> bool {
        match self {
            Suppressed::All => true,
            Suppressed::Rules(r) => r.contains(&rule),
        }
    }
}

/// Maps another tool's marker to pgshift rules. Names pgshift shares with the tool (most of
/// squawk's) also match directly.
pub fn foreign(tool: &str, rules: &[String]) -> Suppressed {
    if rules.is_empty() {
        return Suppressed::All;
    }
    let mut out = Vec::new();
    for r in rules {
        let mut matched = false;
        for (t, name, ours) in FOREIGN_RULES {
            if *t == tool && name.eq_ignore_ascii_case(r) {
                out.extend_from_slice(ours);
                matched = true;
            }
        }
        if !matched {
            if let Some(rule) = crate::registry::find(r) {
                out.push(rule.name);
            }
        }
    }
    Suppressed::Rules(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_rule_exists() {
        for (tool, name, ours) in FOREIGN_RULES {
            for r in *ours {
                assert!(
                    crate::registry::find(r).is_some(),
                    "{tool} {name} maps to unknown rule {r}"
                );
            }
        }
    }

    #[test]
    fn markers_map_to_our_rules() {
        assert!(foreign("eugene", &["E6".into()]).covers("require-concurrent-index"));
        assert!(
            foreign("squawk", &["require-concurrent-index-creation".into()])
                .covers("require-concurrent-index")
        );
        assert!(!foreign("atlas", &["PG101".into()]).covers("ban-drop-table"));
        assert!(foreign("atlas", &[]).covers("ban-drop-table"));
    }
}
