//! `--format github`: GitHub Actions workflow commands, one per finding, which the runner turns
//! into annotations on the pull request's diff.
//!
//! ```text
//! ::error file=migrations/2_idx.sql,line=3,col=1,endLine=3,endColumn=46,title=PGS101 require-concurrent-index::CREATE INDEX on "users" blocks writes...
//! ```
//!
//! `error` → `::error`, `warning` → `::warning`, `hint` → `::notice`. Escaping follows the
//! Actions toolkit: in the message `%`, CR and LF are percent-encoded; in properties `:` and `,`
//! are too, since they delimit the properties.

use std::io::{self, Write};

use crate::finding::{Finding, Report, Severity};

use super::report_path;

/// Writes one workflow command per finding.
pub fn render_github(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for finding in report.files.iter().flat_map(|f| &f.findings) {
        writeln!(out, "{}", command(finding))?;
    }
    Ok(())
}

fn command(finding: &Finding) -> String {
    let name = match finding.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Hint | Severity::Note => "notice",
    };
    let start = finding.start;
    let end = if finding.end < start {
        start
    } else {
        finding.end
    };
    let title = format!("{} {}", finding.code, finding.rule);
    let mut message = finding.message.clone();
    if let Some(help) = finding.help.as_deref().filter(|h| !h.trim().is_empty()) {
        message.push_str("\n\n");
        message.push_str(help.trim_end());
    }
    format!(
        "::{name} file={},line={},col={},endLine={},endColumn={},title={}::{}",
        escape_property(&report_path(&finding.path)),
        start.line,
        start.column,
        end.line,
        end.column,
        escape_property(&title),
        escape_data(&message),
    )
}

/// The message part: `%`, CR and LF, so that a message can never end the command early; and
/// every other control character (an escape sequence in a file name would drive the log
/// viewer) shown as `\x1b`.
fn escape_data(text: &str) -> String {
    let encoded = text
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    pgshift_sql::printable_line(&encoded).into_owned()
}

/// A property value: as [`escape_data`], plus `:` and `,`, which delimit properties.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_escape_delimiters_and_data_escapes_line_breaks() {
        assert_eq!(escape_property("a,b:c%d\ne"), "a%2Cb%3Ac%25d%0Ae");
        assert_eq!(
            escape_data("50% done:\r\nok, yes"),
            "50%25 done:%0D%0Aok, yes"
        );
        assert_eq!(escape_property("a\x1b]8;;x\x07b"), "a\\x1b]8;;x\\x07b");
    }
}
