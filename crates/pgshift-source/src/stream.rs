//! SQL read from standard input, which is often what another tool prints rather than a file
//! someone wrote: Alembic's offline mode (`alembic upgrade head --sql`) and Django's
//! `manage.py sqlmigrate APP NAME`. Both print several migrations in one stream and wrap them in
//! a transaction of their own, so read as one plain script the stream is wrong twice: every
//! table created earlier in the stream counts as created by the same migration (hiding the
//! danger of a later `CREATE INDEX` on it), and the tool's `BEGIN;` reads as the author nesting
//! a transaction inside the runner's.
//!
//! [`read_stream`] recognises these streams by what only these tools print and splits them into
//! [`StreamPart`]s: one per Alembic revision (`-- Running upgrade A -> B`) or per Django
//! `BEGIN;` ... `COMMIT;` block. Each part's script is a section of the stream (lines and
//! columns stay those of the stream) that leaves out the tool's own lines: its `BEGIN;` and
//! `COMMIT;`, and Alembic's version-table bookkeeping (`CREATE TABLE alembic_version`, the
//! `INSERT`/`UPDATE`/`DELETE` of `version_num`). Whether a part starts inside the tool's
//! transaction is recorded ([`StreamPart::in_tool_transaction`]), so `check` can tell the
//! tool's transaction from one the author opened.
//!
//! Recognition reads lines, as the formats' section markers are read: the tools print each of
//! these on a line of its own. A `BEGIN;` or `COMMIT;` line inside a dollar-quoted body would be
//! taken for the tool's; neither tool prints one there.

use std::path::Path;
use std::sync::Arc;

use crate::lines::{lines, Line};
use crate::{Migration, Script, Version};

/// The tool that printed a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamTool {
    /// `alembic upgrade|downgrade ... --sql`: `-- Running upgrade A -> B` before each revision.
    Alembic,
    /// `manage.py sqlmigrate`: each migration between `BEGIN;` and `COMMIT;`, each operation
    /// under a `--` / `-- Add field ...` / `--` banner.
    Django,
}

impl StreamTool {
    /// The tool's name, for messages.
    pub fn title(self) -> &'static str {
        match self {
            StreamTool::Alembic => "Alembic",
            StreamTool::Django => "Django",
        }
    }

    /// The lines of the stream that are the tool's own and not checked, for messages.
    pub fn own_lines(self) -> &'static str {
        match self {
            StreamTool::Alembic => {
                "each revision is a migration; Alembic's BEGIN/COMMIT and its alembic_version bookkeeping are not checked"
            }
            StreamTool::Django => {
                "each BEGIN/COMMIT block is a migration; Django's BEGIN/COMMIT are its transaction, not nesting"
            }
        }
    }
}

/// SQL text read from standard input, split into the migrations it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlStream {
    /// The tool that printed it, when recognised. `None`: one plain migration, read as
    /// [`crate::from_text`] reads it.
    pub tool: Option<StreamTool>,
    /// The migrations, in the order the stream runs them.
    pub parts: Vec<StreamPart>,
}

/// One migration of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPart {
    /// Its script is a section of the whole stream; the version is the revision the part
    /// reaches (Alembic), or the number of the block (Django, from 1).
    pub migration: Migration,
    /// The part starts inside a transaction the tool opened with a `BEGIN;` line of its own
    /// (left out of the script). A `COMMIT;` in the part ends it, as Alembic's
    /// `autocommit_block()` does on purpose.
    pub in_tool_transaction: bool,
}

/// Reads SQL text that has no file. `name` becomes every script's path (e.g. `<stdin>`).
pub fn read_stream(name: &str, text: &str) -> SqlStream {
    let lines: Vec<Line<'_>> = lines(text).collect();
    let (tool, starts) = if let Some(starts) = alembic_parts(&lines) {
        (StreamTool::Alembic, starts)
    } else if let Some(starts) = django_parts(&lines) {
        (StreamTool::Django, starts)
    } else {
        return SqlStream {
            tool: None,
            parts: vec![StreamPart {
                migration: crate::from_text(name, text),
                in_tool_transaction: false,
            }],
        };
    };
    let shared: Arc<str> = Arc::from(text);
    let path = Path::new(name);
    let mut parts = Vec::new();
    for (n, &first) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        let section = &lines[first..end];
        let is_tool_line = |line: &Line<'_>| {
            line.text.trim().is_empty()
                || transaction_line(line.text).is_some()
                || (tool == StreamTool::Alembic && alembic_bookkeeping(line.text))
        };
        let Some(content_start) = section.iter().position(|l| !is_tool_line(l)) else {
            continue;
        };
        let content_end = section
            .iter()
            .rposition(|l| !is_tool_line(l))
            .unwrap_or(content_start);
        let (range_start, range_end) = (section[content_start].start, section[content_end].next);
        // The tool's BEGIN/COMMIT lines before the part decide whether it starts inside the
        // tool's transaction.
        let in_tool_transaction = lines[..first + content_start]
            .iter()
            .rev()
            .find_map(|l| transaction_line(l.text))
            .unwrap_or(false);
        let (version, migration_name) = match tool {
            StreamTool::Alembic => {
                let header = section[0].text.trim();
                let target = header.rsplit("->").next().unwrap_or("").trim();
                (
                    Version::parse(target).unwrap_or_else(Version::zero),
                    header.trim_start_matches('-').trim().to_owned(),
                )
            }
            StreamTool::Django => (
                Version::parse(&(n + 1).to_string()).unwrap_or_else(Version::zero),
                format!("block {} of {name}", n + 1),
            ),
        };
        let mut up = Script::whole_file(path.to_path_buf(), shared.clone(), false);
        up.range = range_start..range_end;
        parts.push(StreamPart {
            migration: Migration {
                version,
                name: migration_name,
                up,
                down: None,
            },
            in_tool_transaction,
        });
    }
    SqlStream {
        tool: Some(tool),
        parts,
    }
}

/// `Some(true)` for the tool's `BEGIN;` line, `Some(false)` for its `COMMIT;`.
fn transaction_line(line: &str) -> Option<bool> {
    match line.trim() {
        t if t.eq_ignore_ascii_case("BEGIN;") => Some(true),
        t if t.eq_ignore_ascii_case("COMMIT;") => Some(false),
        _ => None,
    }
}

/// Alembic's header before each revision: `-- Running upgrade 0001 -> 0002` (`downgrade` for
/// `alembic downgrade --sql`; the first revision's has nothing before `->`).
fn alembic_header(line: &str) -> bool {
    let t = line.trim();
    (t.starts_with("-- Running upgrade ") || t.starts_with("-- Running downgrade "))
        && t.contains("->")
}

/// The index of each Alembic revision's header line, when the stream has any.
fn alembic_parts(lines: &[Line<'_>]) -> Option<Vec<usize>> {
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| alembic_header(l.text))
        .map(|(i, _)| i)
        .collect();
    if starts.is_empty() {
        return None;
    }
    // What comes before the first header is Alembic's own (BEGIN, the version table) unless it
    // holds something else, which is then checked as a part of its own.
    let prologue_is_alembics = {
        let mut in_version_table = false;
        lines[..starts[0]].iter().all(|l| {
            let t = l.text.trim();
            if in_version_table {
                in_version_table = !t.starts_with(");");
                return true;
            }
            if creates_version_table(t) {
                in_version_table = !t.ends_with(");");
                return true;
            }
            t.is_empty() || t.starts_with("--") || transaction_line(t).is_some()
        })
    };
    Some(if prologue_is_alembics {
        starts
    } else {
        std::iter::once(0).chain(starts).collect()
    })
}

/// `CREATE TABLE alembic_version (` (or a schema-qualified or renamed version table, which still
/// has Alembic's `version_num` column on the next line).
fn creates_version_table(t: &str) -> bool {
    let upper = t.to_ascii_uppercase();
    upper.starts_with("CREATE TABLE ") && t.to_ascii_lowercase().contains("alembic_version")
}

/// A statement Alembic prints to record the revision reached: `INSERT INTO alembic_version
/// (version_num) ...`, `UPDATE alembic_version SET version_num=...`, `DELETE FROM
/// alembic_version WHERE alembic_version.version_num = ...`, on one line each.
fn alembic_bookkeeping(line: &str) -> bool {
    let t = line.trim();
    let upper = t.to_ascii_uppercase();
    (upper.starts_with("INSERT INTO ")
        || upper.starts_with("UPDATE ")
        || upper.starts_with("DELETE FROM "))
        && t.contains("version_num")
        && t.ends_with(';')
}

/// The index of each `BEGIN;` line of a `sqlmigrate` stream: one starts it, and it holds
/// Django's operation banners (`--`, `-- Add field org to customer`, `--`).
fn django_parts(lines: &[Line<'_>]) -> Option<Vec<usize>> {
    let first = lines.iter().position(|l| !l.text.trim().is_empty())?;
    if transaction_line(lines[first].text) != Some(true) {
        return None;
    }
    let banner = lines.windows(3).any(|w| {
        w[0].text.trim() == "--" && w[2].text.trim() == "--" && w[1].text.starts_with("-- ")
    });
    if !banner {
        return None;
    }
    Some(
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| transaction_line(l.text) == Some(true))
            .map(|(i, _)| i)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alembic_revisions_are_parts_without_the_bookkeeping() {
        let text = "BEGIN;\n\nCREATE TABLE alembic_version (\n    version_num VARCHAR(32) NOT NULL, \n    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n);\n\n-- Running upgrade  -> a1\n\nCREATE TABLE t (id int);\n\nINSERT INTO alembic_version (version_num) VALUES ('a1') RETURNING alembic_version.version_num;\n\n-- Running upgrade a1 -> b2\n\nCREATE INDEX i ON t (id);\n\nUPDATE alembic_version SET version_num='b2' WHERE alembic_version.version_num = 'a1';\n\nCOMMIT;\n";
        let s = read_stream("<stdin>", text);
        assert_eq!(s.tool, Some(StreamTool::Alembic));
        let sql: Vec<&str> = s.parts.iter().map(|p| p.migration.up.sql()).collect();
        assert_eq!(
            sql,
            [
                "-- Running upgrade  -> a1\n\nCREATE TABLE t (id int);\n",
                "-- Running upgrade a1 -> b2\n\nCREATE INDEX i ON t (id);\n"
            ]
        );
        assert!(s.parts.iter().all(|p| p.in_tool_transaction));
        assert_eq!(s.parts[1].migration.version.as_str(), "b2");
        assert_eq!(s.parts[1].migration.up.first_line(), 14);
    }

    #[test]
    fn something_of_the_authors_before_the_first_revision_is_a_part_too() {
        let text = "SET search_path = app;\n-- Running upgrade  -> a1\nSELECT 1;\n";
        let s = read_stream("x.sql", text);
        assert_eq!(s.parts.len(), 2);
        assert_eq!(s.parts[0].migration.up.sql(), "SET search_path = app;\n");
        assert!(!s.parts[0].in_tool_transaction);
    }

    #[test]
    fn django_blocks_are_parts_inside_the_tools_transaction() {
        let text = "BEGIN;\n--\n-- Add field x to y\n--\nALTER TABLE \"y\" ADD COLUMN \"x\" int NULL;\nCOMMIT;\nBEGIN;\n--\n-- Rename field\n--\nALTER TABLE \"y\" RENAME COLUMN \"x\" TO \"z\";\nCOMMIT;\n";
        let s = read_stream("<stdin>", text);
        assert_eq!(s.tool, Some(StreamTool::Django));
        assert_eq!(s.parts.len(), 2);
        assert!(s.parts[0]
            .migration
            .up
            .sql()
            .starts_with("--\n-- Add field"));
        assert!(s.parts[0].migration.up.sql().ends_with("NULL;\n"));
        assert!(s.parts.iter().all(|p| p.in_tool_transaction));
    }

    #[test]
    fn other_text_is_one_plain_migration() {
        for text in [
            "BEGIN;\nCREATE INDEX i ON t (a);\nCOMMIT;\n",
            "-- Running the numbers\nSELECT 1;\n",
            "",
        ] {
            let s = read_stream("<stdin>", text);
            assert_eq!(s.tool, None, "{text}");
            assert_eq!(s.parts.len(), 1);
            assert_eq!(s.parts[0].migration.up.sql(), text);
        }
    }
}
