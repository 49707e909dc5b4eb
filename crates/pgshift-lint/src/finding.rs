//! What `pgshift check` reports: [`Finding`]s, grouped per file into a [`Report`].
//!
//! These types are the contract between the rules (which produce findings) and the renderers
//! in `render/` (human, JSON, SARIF, GitHub, GitLab), so their fields are documented and stable.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use pgshift_sql::lines::floor_char_boundary;
use pgshift_sql::LineCol;
use serde::{Deserialize, Serialize};

use crate::knowledge::lock::LockLevel;

/// How bad a finding is. Ordered from least to most severe, so `max()` is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hygiene: worth knowing, never blocks.
    Hint,
    /// What will run instead of the statement: `pgshift up` makes it safe by a mechanical
    /// rewrite ("runs as CREATE INDEX CONCURRENTLY ..."). Never blocks.
    Note,
    /// Depends on the table's size or on context the checker cannot see.
    Warning,
    /// Will block production traffic, break running code, or fail at deploy time.
    Error,
}

impl Severity {
    /// The lowercase name used in configuration and output.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Hint => "hint",
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Severity, String> {
        match s.to_ascii_lowercase().as_str() {
            "hint" => Ok(Severity::Hint),
            "note" => Ok(Severity::Note),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            other => Err(format!(
                "unknown severity `{other}`; use `error`, `warning`, `note` or `hint`"
            )),
        }
    }
}

/// A mechanical fix: replace the bytes `span` of the file with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// Byte range in the file: the statement, with its `;` when the replacement ends with one.
    pub span: Range<usize>,
    /// The text to put there. May hold several statements, separated by `;` and newlines.
    pub replacement: String,
}

/// The longest `help` a finding carries, in bytes. A help quotes the safe form of its
/// statement, so a statement of megabytes (a generated `CHECK` or index predicate) would make
/// every report megabytes long: past this, the quote is cut and says how much is left out.
pub const MAX_HELP_BYTES: usize = 4096;

/// The longest fix replacement a finding carries, in bytes, after narrowing it to the part
/// that differs from the file. Longer, the finding has no fix (its help still says what to do):
/// the output of `check` stays proportional to the findings, not to the statements' text.
pub const MAX_FIX_BYTES: usize = 16384;

/// `help` cut to [`MAX_HELP_BYTES`] at a character boundary, saying how much was left out.
pub fn bounded_help(help: String) -> String {
    if help.len() <= MAX_HELP_BYTES {
        return help;
    }
    let cut = floor_char_boundary(&help, MAX_HELP_BYTES);
    format!(
        "{}\n… ({} more bytes left out: the statement is too long to quote; its safe form is \
         the one above, written out in full)",
        &help[..cut],
        help.len() - cut
    )
}

impl Fix {
    /// The fix as reports carry it, for the file `text`: as is when short; otherwise narrowed
    /// to the bytes that differ (the same edit, smaller), and `None` when even that is longer
    /// than [`MAX_FIX_BYTES`].
    pub fn bounded(self, text: &str) -> Option<Fix> {
        if self.replacement.len() <= MAX_FIX_BYTES {
            return Some(self);
        }
        let original = text.get(self.span.clone())?;
        // Compared a character at a time, so both cuts fall on character boundaries.
        let common = |a: &mut dyn Iterator<Item = char>, b: &mut dyn Iterator<Item = char>| {
            a.zip(b)
                .take_while(|(x, y)| x == y)
                .map(|(x, _)| x.len_utf8())
                .sum::<usize>()
        };
        let prefix = common(&mut original.chars(), &mut self.replacement.chars());
        let suffix = common(
            &mut original[prefix..].chars().rev(),
            &mut self.replacement[prefix..].chars().rev(),
        );
        let replacement = &self.replacement[prefix..self.replacement.len() - suffix];
        if replacement.len() > MAX_FIX_BYTES {
            return None;
        }
        Some(Fix {
            span: self.span.start + prefix..self.span.end - suffix,
            replacement: replacement.to_string(),
        })
    }
}

/// One problem found in one statement (or in a comment directive, or in the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's kebab-case name, e.g. `require-concurrent-index`.
    pub rule: &'static str,
    /// The rule's stable code, e.g. `PGS101`.
    pub code: &'static str,
    pub severity: Severity,
    /// The file the finding is in.
    pub path: PathBuf,
    /// Byte range in the file.
    pub span: Range<usize>,
    /// 1-based line and column of `span.start`.
    pub start: LineCol,
    /// 1-based line and column of `span.end`.
    pub end: LineCol,
    /// What is wrong, in one sentence, naming the table and the lock where they apply.
    pub message: String,
    /// Why it hurts and the safe replacement, copy-pasteable.
    pub help: Option<String>,
    /// The strongest lock the statement takes, when the rule is about a lock.
    pub lock: Option<LockLevel>,
    /// The tables involved, schema-qualified when the SQL qualifies them.
    pub tables: Vec<String>,
    /// A mechanical replacement for the statement, when there is one.
    pub fix: Option<Fix>,
}

/// One checked file and its findings, in the order of their position in the file.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    pub path: PathBuf,
    /// The whole file, for renderers that show the source line.
    pub text: Arc<str>,
    pub findings: Vec<Finding>,
}

/// Counts of findings by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub error: usize,
    pub warning: usize,
    pub hint: usize,
    /// Statements `pgshift up` runs in a safe form (see [`Severity::Note`]).
    pub note: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.error + self.warning + self.hint + self.note
    }

    /// Counts `findings` in.
    pub fn add<'a>(&mut self, findings: impl IntoIterator<Item = &'a Finding>) {
        for f in findings {
            match f.severity {
                Severity::Error => self.error += 1,
                Severity::Warning => self.warning += 1,
                Severity::Hint => self.hint += 1,
                Severity::Note => self.note += 1,
            }
        }
    }
}

/// Everything one `pgshift check` run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<CheckedFile>,
}

impl Report {
    /// Every finding of every file, in file order.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.files.iter().flat_map(|f| f.findings.iter())
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        counts.add(self.findings());
        counts
    }

    /// Whether any finding has error severity: `pgshift check` then exits with 1.
    pub fn has_errors(&self) -> bool {
        self.findings().any(|f| f.severity == Severity::Error)
    }

    /// Adds a file's findings, merging with an earlier entry for the same file (a dbmate or
    /// goose file holds both the up and the down script).
    pub fn add(&mut self, file: CheckedFile) {
        // The two scripts of one file are added one after the other, so only the last entry
        // can be the same file: looking further back made `check` quadratic in the number of
        // files (100,000 files took 22 s).
        match self.files.last_mut() {
            Some(existing) if existing.is_same_file(&file) => existing.absorb(file),
            _ => self.files.push(file),
        }
    }
}

impl CheckedFile {
    /// Whether `other` is this file's other script (a dbmate or goose file holds both the up
    /// and the down script). Paths compare as the loader wrote them (bytes).
    pub fn is_same_file(&self, other: &CheckedFile) -> bool {
        self.path.as_os_str() == other.path.as_os_str()
    }

    /// Takes in the findings of the same file's other script, keeping them in order of
    /// position.
    pub fn absorb(&mut self, other: CheckedFile) {
        self.findings.extend(other.findings);
        self.findings
            .sort_by_key(|f| (f.span.start, f.span.end, f.code));
    }
}

/// Checked files handed over one at a time, made whole: a file's two scripts, which come one
/// after the other, leave as one entry, as [`Report::add`] keeps them.
#[derive(Debug, Default)]
pub(crate) struct FileMerge {
    last: Option<CheckedFile>,
}

impl FileMerge {
    /// Takes `file`; returns the file before it once it is complete.
    pub(crate) fn push(&mut self, file: CheckedFile) -> Option<CheckedFile> {
        match &mut self.last {
            Some(last) if last.is_same_file(&file) => {
                last.absorb(file);
                None
            }
            _ => self.last.replace(file),
        }
    }

    /// The last file, complete.
    pub(crate) fn finish(self) -> Option<CheckedFile> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_from_hint_to_error_and_parse() {
        assert!(Severity::Error > Severity::Warning && Severity::Warning > Severity::Hint);
        assert_eq!("Warning".parse::<Severity>(), Ok(Severity::Warning));
        assert!("fatal".parse::<Severity>().is_err());
        assert_eq!(
            serde_json::to_string(&Severity::Hint).ok().as_deref(),
            Some("\"hint\"")
        );
    }

    fn apply(text: &str, fix: &Fix) -> String {
        format!(
            "{}{}{}",
            &text[..fix.span.start],
            fix.replacement,
            &text[fix.span.end..]
        )
    }

    #[test]
    fn a_short_fix_is_kept_as_written() {
        let text = "CREATE INDEX i ON t (c);";
        let fix = Fix {
            span: 0..23,
            replacement: "CREATE INDEX CONCURRENTLY i ON t (c)".into(),
        };
        assert_eq!(fix.clone().bounded(text), Some(fix));
    }

    #[test]
    fn a_long_fix_is_narrowed_to_the_same_edit() {
        let predicate = "c = 'é value' OR ".repeat(4000);
        let text = format!("-- x\nCREATE INDEX i ON t (c) WHERE {predicate}true;\n");
        let start = text.find("CREATE").unwrap();
        let end = text.find(';').unwrap();
        let fix = Fix {
            span: start..end,
            replacement: format!("CREATE INDEX CONCURRENTLY i ON t (c) WHERE {predicate}true"),
        };
        let full = apply(&text, &fix);
        let narrowed = fix.bounded(&text).expect("the differing part is short");
        assert!(narrowed.replacement.len() < 100, "{narrowed:?}");
        assert_eq!(apply(&text, &narrowed), full);
    }

    #[test]
    fn a_fix_whose_differing_part_is_too_long_is_dropped() {
        let text = format!("UPDATE t SET a = '{}';", "x".repeat(MAX_FIX_BYTES + 10));
        let fix = Fix {
            span: 0..text.len() - 1,
            replacement: format!("UPDATE t SET a = '{}'", "y".repeat(MAX_FIX_BYTES + 10)),
        };
        assert_eq!(fix.bounded(&text), None);
    }

    #[test]
    fn a_long_help_is_cut_and_says_so() {
        assert_eq!(bounded_help("short".into()), "short");
        let long = format!("Add it NOT VALID:\n{}", "é".repeat(MAX_HELP_BYTES));
        let cut = bounded_help(long.clone());
        assert!(cut.len() < MAX_HELP_BYTES + 200, "{}", cut.len());
        assert!(long.starts_with(cut.split("\n…").next().unwrap()));
        assert!(cut.contains("more bytes left out"), "{cut}");
    }
}
