//! Output formats for `pgshift check`: one file per format, each a function from a
//! [`Report`] to a writer.
//!
//! | format | function | for |
//! |---|---|---|
//! | `human` | [`render_human`] | a person at a terminal: rustc-style diagnostics |
//! | `json` | [`render_json`] | scripts; the stable schema in `docs/output-formats.md` |
//! | `sarif` | [`render_sarif`] | code scanning (GitHub, Azure DevOps, IDEs): SARIF 2.1.0 |
//! | `github` | [`render_github`] | GitHub Actions workflow annotations |
//! | `gitlab` | [`render_gitlab`] | GitLab's code-quality report artifact |
//!
//! Architecture invariant: renderers only present what the checker found. They never decide
//! what is a finding, never change a severity and never read files; everything they show comes
//! from the [`Report`] (its findings and each file's text) and the rule registry.
//!
//! Adding a format: a new file here with a `render_<name>` function, a variant of
//! [`OutputFormat`], a snapshot under `tests/render/` and a section in `docs/output-formats.md`.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Component, Path};
use std::str::FromStr;

use crate::finding::{CheckedFile, Counts, Report};

mod github;
mod gitlab;
mod human;
mod json;
mod sarif;

pub use github::render_github;
pub use gitlab::{gitlab_severity, render_gitlab};
pub use human::render_human;
pub use json::{
    render_json, render_rules_json, JsonFinding, JsonFix, JsonOutput, JsonRule, JsonSummary,
    JSON_SCHEMA_VERSION,
};
pub use sarif::{render_sarif, SARIF_SCHEMA, SARIF_VERSION};

/// The `--format` of `pgshift check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Human,
    Json,
    Sarif,
    Github,
    Gitlab,
}

impl OutputFormat {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [OutputFormat; 5] = [
        OutputFormat::Human,
        OutputFormat::Json,
        OutputFormat::Sarif,
        OutputFormat::Github,
        OutputFormat::Gitlab,
    ];

    /// The name used on the command line and in `pgshift.toml`.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Human => "human",
            OutputFormat::Json => "json",
            OutputFormat::Sarif => "sarif",
            OutputFormat::Github => "github",
            OutputFormat::Gitlab => "gitlab",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An output format name that pgshift does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format `{0}`: use one of human, json, sarif, github, gitlab")]
pub struct UnknownOutputFormat(pub String);

impl FromStr for OutputFormat {
    type Err = UnknownOutputFormat;

    fn from_str(s: &str) -> Result<OutputFormat, UnknownOutputFormat> {
        OutputFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownOutputFormat(s.to_string()))
    }
}

/// Renders `report` in `format`. `color` only affects [`OutputFormat::Human`]; the CLI passes
/// `true` only when stdout is a terminal and `NO_COLOR` is unset.
pub fn render(
    report: &Report,
    format: OutputFormat,
    out: &mut dyn Write,
    color: bool,
) -> io::Result<()> {
    // Standard output is line-buffered: unbuffered, a report of thousands of findings costs a
    // write system call per line.
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    match format {
        OutputFormat::Human => render_human(report, &mut out, color),
        OutputFormat::Json => render_json(report, &mut out),
        OutputFormat::Sarif => render_sarif(report, &mut out),
        OutputFormat::Github => render_github(report, &mut out),
        OutputFormat::Gitlab => render_gitlab(report, &mut out),
    }?;
    out.flush()
}

/// What [`render_streaming`] reads: called once, it hands each checked file, in order, to the
/// function it is given (the two scripts of one file one after the other, as
/// [`crate::check_set_each`] gives them).
pub type FileSource<'a> = dyn FnMut(&mut dyn FnMut(CheckedFile)) + 'a;

/// Whether `format` can be written while the files are checked ([`render_streaming`]).
pub fn streams(format: OutputFormat) -> bool {
    matches!(format, OutputFormat::Human | OutputFormat::Json)
}

/// Writes in `format` the report of the files `files` hands over, as they come, keeping none
/// of them: the same output as [`render`] of the whole report, without the whole report in
/// memory. Returns the counts of findings. Only for the formats [`streams`] accepts; any other
/// is written from the files collected first.
pub fn render_streaming(
    format: OutputFormat,
    out: &mut dyn Write,
    color: bool,
    files: &mut FileSource<'_>,
) -> io::Result<Counts> {
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    let counts = match format {
        OutputFormat::Json => json::render_json_streaming(&mut out, files)?.0,
        OutputFormat::Human => {
            let mut failed: Option<io::Error> = None;
            let (counts, written) = whole_files(files, &mut |file| {
                if failed.is_none() {
                    if let Err(e) = human::write_file(&mut out, color, file) {
                        failed = Some(e);
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
            human::write_summary(&mut out, color, counts, written)?;
            counts
        }
        other => {
            let mut report = Report::default();
            files(&mut |file| report.add(file));
            render(&report, other, &mut out, color)?;
            report.counts()
        }
    };
    out.flush()?;
    Ok(counts)
}

/// Drives `files`, handing `each` every file whole (a file's two scripts merged, as
/// [`Report::add`] keeps them). Returns the counts of findings and the number of files.
pub(crate) fn whole_files(
    files: &mut FileSource<'_>,
    each: &mut dyn FnMut(&CheckedFile),
) -> (Counts, usize) {
    let mut merge = crate::finding::FileMerge::default();
    let (mut counts, mut written) = (Counts::default(), 0);
    let mut done = |file: CheckedFile| {
        counts.add(&file.findings);
        written += 1;
        each(&file);
    };
    files(&mut |file| {
        if let Some(whole) = merge.push(file) {
            done(whole);
        }
    });
    if let Some(whole) = merge.finish() {
        done(whole);
    }
    (counts, written)
}

/// A path as CI systems want it: forward slashes, no leading `./`. Relative paths stay relative
/// (GitHub, GitLab and code scanning resolve them against the repository root, which is where
/// CI runs `pgshift check`).
pub(crate) fn report_path(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut absolute = false;
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::RootDir => absolute = true,
            Component::Prefix(prefix) => {
                parts.push(prefix.as_os_str().to_string_lossy().into_owned())
            }
            Component::ParentDir => parts.push("..".to_string()),
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The text a finding points at, or `""` when the span does not fit the text (a finding built
/// by hand, or by a buggy rule, must not make a renderer panic).
pub(crate) fn span_text<'a>(text: &'a str, span: &Range<usize>) -> &'a str {
    text.get(span.clone()).unwrap_or("")
}

/// A fingerprint for every finding of a report, in order (file by file, finding by finding),
/// that survives moving code around: a SHA-256 of the path, the rule code and the finding's
/// text with whitespace collapsed — never the line number — so GitLab and code scanning see a
/// finding in a migration that gained a header comment as the same finding. The occurrence
/// number (how many earlier findings had the same three) keeps two identical statements in one
/// file apart.
pub(crate) fn fingerprints(report: &Report) -> Vec<Vec<String>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    report
        .files
        .iter()
        .map(|file| {
            file.findings
                .iter()
                .map(|finding| {
                    let statement: Vec<&str> = span_text(&file.text, &finding.span)
                        .split_whitespace()
                        .collect();
                    // NUL separators: no path, code or SQL text can move a field boundary.
                    let key = format!(
                        "{}\0{}\0{}",
                        report_path(&finding.path),
                        finding.code,
                        statement.join(" ")
                    );
                    let count = seen.entry(key.clone()).or_insert(0);
                    let occurrence = *count;
                    *count += 1;
                    pgshift_source::checksum_of(&format!("{key}\0{occurrence}"))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for format in OutputFormat::ALL {
            assert_eq!(format.name().parse::<OutputFormat>(), Ok(format));
        }
        assert_eq!("SARIF".parse::<OutputFormat>(), Ok(OutputFormat::Sarif));
        let err = "xml".parse::<OutputFormat>().unwrap_err();
        assert!(err
            .to_string()
            .contains("human, json, sarif, github, gitlab"));
    }

    #[test]
    fn report_paths_use_forward_slashes_without_dot_prefix() {
        assert_eq!(
            report_path(Path::new("./migrations/1.sql")),
            "migrations/1.sql"
        );
        assert_eq!(
            report_path(Path::new("migrations/./a,b:c.sql")),
            "migrations/a,b:c.sql"
        );
        assert_eq!(report_path(Path::new("/abs/x.sql")), "/abs/x.sql");
        assert_eq!(report_path(Path::new("../up/x.sql")), "../up/x.sql");
    }

    #[test]
    fn span_text_never_panics() {
        assert_eq!(span_text("héllo", &(0..2)), "");
        assert_eq!(span_text("abc", &(1..99)), "");
        assert_eq!(span_text("abc", &(1..2)), "b");
    }
}
