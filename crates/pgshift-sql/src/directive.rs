//! Directives written in SQL comments: pgshift's own (`-- pgshift:no-transaction`,
//! `-- pgshift:backfill`, `-- pgshift:allow RULE reason`) and the suppression markers of other tools that pgshift
//! honours when it reads their folders (`squawk-ignore`, `eugene: ignore`, `atlas:nolint`,
//! `-- safety-assured:start` / `-- safety-assured:end`).

/// A directive found in one comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `-- pgshift:no-transaction`: run this migration outside a transaction.
    NoTransaction,
    /// `-- pgshift:backfill` before an `UPDATE`: run it as a batched, resumable backfill.
    Backfill,
    /// `-- pgshift:online off`: run this migration as written, never as an online change.
    OnlineOff,
    /// `-- pgshift:expand` / `-- pgshift:contract` before a statement of an online migration:
    /// the phase it runs in, whatever pgshift would choose.
    Phase(Phase),
    /// `-- pgshift:rename view` / `-- pgshift:rename copy` before an `ALTER TABLE ... RENAME
    /// COLUMN` that runs online: how old and new names are both served during the window.
    Rename(RenameMechanism),
    /// `-- pgshift:allow RULE[,RULE...] reason`: a person reviewed the next statement.
    Allow {
        rules: Vec<String>,
        reason: String,
    },
    /// A `pgshift:` directive that is malformed; the message says how to write it.
    Invalid {
        message: String,
        /// It was meant as a directive that changes how pgshift runs the migration (an
        /// unknown word, `online` or `rename` with what they do not take), not as a review
        /// marker: `up` refuses the file rather than run it other than its author meant.
        runner: bool,
    },
    /// `squawk-ignore`, `eugene: ignore`, `atlas:nolint` for the next statement; `rules`
    /// empty means all rules.
    ForeignIgnore {
        tool: &'static str,
        rules: Vec<String>,
    },
    /// `squawk-ignore-file`: the whole file.
    ForeignIgnoreFile {
        tool: &'static str,
        rules: Vec<String>,
    },
    /// strong_migrations-style `-- safety-assured:start` / `:end` block.
    SafetyAssuredStart,
    SafetyAssuredEnd,
}

/// The two phases of an online (expand/contract) change a statement can be put in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the new code is deployed: additive, compatible with the old code.
    Expand,
    /// After no old code is left: what the old code still needed goes.
    Contract,
}

/// How an online column rename serves the old and the new name at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMechanism {
    /// A second column kept in step by triggers, backfilled in batches.
    Copy,
    /// The column renamed in place, the table under a name of pgshift's and a view with the
    /// table's name exposing both names: no copy.
    View,
}

/// Reads the directive in one comment (markers included), if there is one.
pub fn parse_directive(comment: &str) -> Option<Directive> {
    let body = comment_body(comment);
    // `-- PGSHIFT:Online off` means what `-- pgshift:online off` means: a marker that is
    // ignored for its case would run the migration other than its author meant.
    if body
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("pgshift:"))
    {
        return Some(parse_pgshift(body[8..].trim()));
    }
    if let Some(rest) = body.strip_prefix("squawk-ignore-file") {
        return Some(Directive::ForeignIgnoreFile {
            tool: "squawk",
            rules: rule_list(rest),
        });
    }
    if let Some(rest) = body.strip_prefix("squawk-ignore") {
        return Some(Directive::ForeignIgnore {
            tool: "squawk",
            rules: rule_list(rest),
        });
    }
    if let Some(rest) = body.strip_prefix("eugene:") {
        let rest = rest.trim_start();
        if let Some(rules) = rest.strip_prefix("ignore") {
            return Some(Directive::ForeignIgnore {
                tool: "eugene",
                rules: rule_list(rules),
            });
        }
    }
    if let Some(rest) = body.strip_prefix("atlas:nolint") {
        return Some(Directive::ForeignIgnore {
            tool: "atlas",
            rules: rule_list(rest),
        });
    }
    match body {
        "safety-assured:start" => Some(Directive::SafetyAssuredStart),
        "safety-assured:end" => Some(Directive::SafetyAssuredEnd),
        _ => None,
    }
}

fn parse_pgshift(rest: &str) -> Directive {
    let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match word.to_ascii_lowercase().as_str() {
        "no-transaction" => Directive::NoTransaction,
        "backfill" => Directive::Backfill,
        "expand" => Directive::Phase(Phase::Expand),
        "contract" => Directive::Phase(Phase::Contract),
        "online" => match args.trim().to_ascii_lowercase().as_str() {
            "off" => Directive::OnlineOff,
            _ => Directive::Invalid {
                message: format!(
                    "`pgshift:online {}` is not a directive; `-- pgshift:online off` runs the migration as written",
                    args.trim()
                ),
                runner: true,
            },
        },
        "rename" => match args.trim().to_ascii_lowercase().as_str() {
            "view" => Directive::Rename(RenameMechanism::View),
            "copy" => Directive::Rename(RenameMechanism::Copy),
            _ => Directive::Invalid {
                message: format!(
                    "`pgshift:rename {}` is not a directive; write `-- pgshift:rename view` or `-- pgshift:rename copy` before the RENAME COLUMN",
                    args.trim()
                ),
                runner: true,
            },
        },
        "allow" => {
            let args = args.trim();
            let (rules, reason) = split_rules(args);
            if rules.is_empty() {
                Directive::Invalid {
                    message: "`pgshift:allow` needs a rule name and a reason: `-- pgshift:allow RULE why this is safe`"
                        .to_string(),
                    runner: false,
                }
            } else if reason.is_empty() {
                Directive::Invalid {
                    message: format!(
                        "`pgshift:allow {}` needs a reason after the rule name: `-- pgshift:allow {} why this is safe`",
                        rules.join(","),
                        rules.join(",")
                    ),
                    runner: false,
                }
            } else {
                Directive::Allow { rules, reason: reason.to_string() }
            }
        }
        _ => Directive::Invalid {
            message: format!(
                "unknown directive `pgshift:{word}`; pgshift knows `pgshift:no-transaction`, `pgshift:backfill`, `pgshift:online off`, `pgshift:expand`, `pgshift:contract`, `pgshift:rename view|copy` and `pgshift:allow RULE reason`"
            ),
            runner: true,
        },
    }
}

/// `a,b reason words` or `a, b reason` → (["a","b"], "reason words").
fn split_rules(args: &str) -> (Vec<String>, &str) {
    let mut rules = Vec::new();
    let mut rest = args;
    loop {
        rest = rest.trim_start();
        let end = rest
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let word = &rest[..end];
        if word.is_empty() {
            break;
        }
        rules.push(word.to_string());
        let after = rest[end..].trim_start();
        if let Some(next) = after.strip_prefix(',') {
            rest = next;
        } else {
            rest = after;
            break;
        }
    }
    (rules, rest.trim())
}

fn rule_list(rest: &str) -> Vec<String> {
    rest.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn comment_body(comment: &str) -> &str {
    let c = comment.trim();
    let c = if let Some(inner) = c.strip_prefix("/*") {
        inner.strip_suffix("*/").unwrap_or(inner)
    } else {
        c.trim_start_matches('-')
    };
    c.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgshift_directives() {
        assert_eq!(
            parse_directive("-- pgshift:no-transaction"),
            Some(Directive::NoTransaction)
        );
        assert_eq!(
            parse_directive(
                "-- pgshift:allow require-concurrent-index, ban-drop-column table is empty"
            ),
            Some(Directive::Allow {
                rules: vec!["require-concurrent-index".into(), "ban-drop-column".into()],
                reason: "table is empty".into()
            })
        );
        assert!(matches!(
            parse_directive("-- pgshift:allow some-rule"),
            Some(Directive::Invalid { .. })
        ));
        assert!(matches!(
            parse_directive("/* pgshift:nope */"),
            Some(Directive::Invalid { .. })
        ));
        assert_eq!(
            parse_directive("-- pgshift:rename view"),
            Some(Directive::Rename(RenameMechanism::View))
        );
        assert_eq!(
            parse_directive("-- pgshift:rename  copy "),
            Some(Directive::Rename(RenameMechanism::Copy))
        );
        assert!(matches!(
            parse_directive("-- pgshift:rename views"),
            Some(Directive::Invalid { .. })
        ));
        assert_eq!(parse_directive("-- just a comment"), None);
        // Any case: a marker ignored for its case would run the file other than meant.
        assert_eq!(
            parse_directive("-- PGSHIFT:Online OFF"),
            Some(Directive::OnlineOff)
        );
        assert_eq!(
            parse_directive("/* PgShift: rename View */"),
            Some(Directive::Rename(RenameMechanism::View))
        );
        assert_eq!(
            parse_directive("-- Pgshift:No-Transaction"),
            Some(Directive::NoTransaction)
        );
        assert!(matches!(
            parse_directive("-- PGSHIFT:onlin off"),
            Some(Directive::Invalid { runner: true, .. })
        ));
        assert_eq!(
            parse_directive("-- pgshift:allow some-rule Because The Table Is Empty"),
            Some(Directive::Allow {
                rules: vec!["some-rule".into()],
                reason: "Because The Table Is Empty".into()
            })
        );
    }

    #[test]
    fn other_tools_markers() {
        assert_eq!(
            parse_directive("-- squawk-ignore ban-drop-column, renaming-column"),
            Some(Directive::ForeignIgnore {
                tool: "squawk",
                rules: vec!["ban-drop-column".into(), "renaming-column".into()]
            })
        );
        assert_eq!(
            parse_directive("-- eugene: ignore E2, E3"),
            Some(Directive::ForeignIgnore {
                tool: "eugene",
                rules: vec!["E2".into(), "E3".into()]
            })
        );
        assert_eq!(
            parse_directive("-- eugene: ignore"),
            Some(Directive::ForeignIgnore {
                tool: "eugene",
                rules: vec![]
            })
        );
        assert_eq!(
            parse_directive("-- atlas:nolint destructive"),
            Some(Directive::ForeignIgnore {
                tool: "atlas",
                rules: vec!["destructive".into()]
            })
        );
        assert_eq!(
            parse_directive("-- safety-assured:start"),
            Some(Directive::SafetyAssuredStart)
        );
        assert_eq!(
            parse_directive("-- squawk-ignore-file"),
            Some(Directive::ForeignIgnoreFile {
                tool: "squawk",
                rules: vec![]
            })
        );
    }
}
