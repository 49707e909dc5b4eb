//! How a migration's SQL becomes units of execution.
//!
//! A *unit* is what commits on its own: one transaction holding several statements, or one
//! statement that cannot run in a transaction block. Progress is recorded per unit, in the
//! unit's own transaction where it has one, so after a crash the next run resumes at the
//! first unit that did not commit. A migration that is one transactional unit records its
//! history row in that same transaction: it is applied entirely or not at all.
//!
//! A migration that runs outside a single transaction (marked no-transaction, or holding a
//! statement such as `CREATE INDEX CONCURRENTLY`) still runs each statement that *may* run
//! in a transaction block inside a short transaction of its own, together with its progress
//! record: a single statement commits the same way either way, and the effect and the record
//! then land together even when pgshift dies mid-statement (PostgreSQL finishes a statement
//! whose client is gone). Only the statements that cannot (see
//! [`pgshift_sql::forbidden_in_transaction`]) and the author's own transaction control run
//! bare; the first are recorded as *in flight* before they are sent ([`crate::inflight`]).
//!
//! Every statement is parsed once, here: [`StepFacts`] carries what the executor needs to
//! know about it, so nothing downstream parses the SQL again to decide how to run it.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use pgshift_source::Script;
use pgshift_sql::{
    forbidden_in_transaction, transaction_control, NodeEnum, StatementWalk, TransactionControl,
};

use crate::error::RunError;
use crate::inflight::Landing;

/// What the executor needs to know about one statement, decided from its parse tree once
/// (the effects by [`crate::prepare`], which walks the script with the linter's context).
#[derive(Debug, Clone, Default)]
pub struct StepFacts {
    /// Why the statement cannot run inside a transaction block, when it cannot.
    pub outside_transaction: Option<&'static str>,
    /// The author's own `BEGIN`, `COMMIT`, `ROLLBACK`, ...
    pub transaction_control: Option<TransactionControl>,
    /// It blocks no application traffic but may wait for other transactions and run long
    /// (`CREATE INDEX CONCURRENTLY`, `REINDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`,
    /// `VALIDATE CONSTRAINT`): it gets the long-running timeouts.
    pub runs_long_without_blocking: bool,
    /// For a statement run outside any transaction: how to tell, after pgshift died while it
    /// ran, whether it landed.
    pub landing: Option<Box<Landing>>,
    /// A relation it makes that the executor needs by name ([`Makes`]).
    pub makes: Option<Box<Makes>>,
    /// It builds an index (its scan runs at index-build speed, for `plan`).
    pub index_build: bool,
    /// What it locks, rewrites and scans, as of its place in the steps as they run.
    pub effects: Box<[pgshift_lint::Effect]>,
    /// An `UPDATE` the author marked `-- pgshift:backfill`: it runs as a batched, resumable
    /// backfill ([`crate::backfill`]), these are its parts.
    pub backfill: Option<Box<pgshift_sql::UpdateParts>>,
    /// How the statement runs inside a transaction block that `verify` rolls back, with the
    /// same end state for the schema.
    pub in_rolled_back_transaction: InTransaction,
}

/// A relation a statement makes that the executor needs by name (one box for both: few
/// statements make either, and a step stays small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Makes {
    /// `CREATE INDEX CONCURRENTLY name`: the index a failed attempt leaves INVALID, to drop
    /// before a retry (schema, empty for the search path; name).
    ConcurrentIndex(String, String),
    /// The table name it brings into being for the statements after it in its unit: `CREATE
    /// TABLE x` and `CREATE TABLE x AS`, or `ALTER TABLE y RENAME TO x` (not `IF EXISTS`,
    /// which may rename nothing): a table nobody else sees before the commit, or `y` under a
    /// new name, locked by the rename itself.
    Table(pgshift_sql::ident::QualifiedName),
    /// `CREATE TABLE x ... IF NOT EXISTS` (or `AS`): `x` may be new, or there and in use.
    TableIfMissing(pgshift_sql::ident::QualifiedName),
}

impl StepFacts {
    /// The index a `CREATE INDEX CONCURRENTLY` builds (see [`Makes::ConcurrentIndex`]).
    pub fn builds_index(&self) -> Option<(&str, &str)> {
        match self.makes.as_deref() {
            Some(Makes::ConcurrentIndex(schema, name)) => Some((schema, name)),
            _ => None,
        }
    }
}

/// How a statement runs inside a transaction block with the same end state for the schema:
/// `verify` checks each down in a transaction it rolls back, so a failing down leaves nothing
/// behind to clean up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum InTransaction {
    /// As written.
    #[default]
    AsWritten,
    /// This SQL instead: `CREATE INDEX`/`DROP INDEX`/`DETACH PARTITION` without
    /// `CONCURRENTLY` build or drop the same object.
    Instead(Box<str>),
    /// Skipped: it changes nothing a schema snapshot compares (`VACUUM`, `REINDEX`, the
    /// author's own `BEGIN`/`COMMIT`).
    Skip,
    /// Cannot (`CREATE DATABASE`, `ALTER SYSTEM`, ...): the migration is checked with real
    /// commits instead.
    Impossible,
}

impl InTransaction {
    fn of(node: &NodeEnum) -> InTransaction {
        use pgshift_sql::protobuf::AlterTableType;
        if transaction_control(node).is_some() {
            return InTransaction::Skip;
        }
        if forbidden_in_transaction(node).is_none() {
            return InTransaction::AsWritten;
        }
        let deparsed = |n: NodeEnum| match n.deparse(pgshift_sql::DeparseOptions::default()) {
            Ok(sql) => InTransaction::Instead(sql.into()),
            Err(_) => InTransaction::Impossible,
        };
        match node {
            NodeEnum::IndexStmt(i) => {
                let mut i = i.clone();
                i.concurrent = false;
                deparsed(NodeEnum::IndexStmt(i))
            }
            NodeEnum::DropStmt(d) => {
                let mut d = d.clone();
                d.concurrent = false;
                deparsed(NodeEnum::DropStmt(d))
            }
            NodeEnum::ReindexStmt(_) | NodeEnum::VacuumStmt(_) | NodeEnum::ClusterStmt(_) => {
                InTransaction::Skip
            }
            NodeEnum::AlterTableStmt(a) => {
                let mut a = a.clone();
                for cmd in &mut a.cmds {
                    if let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_mut() {
                        if c.subtype == AlterTableType::AtDetachPartition as i32 {
                            if let Some(NodeEnum::PartitionCmd(p)) =
                                c.def.as_mut().and_then(|d| d.node.as_mut())
                            {
                                p.concurrent = false;
                            }
                        }
                    }
                }
                deparsed(NodeEnum::AlterTableStmt(a))
            }
            _ => InTransaction::Impossible,
        }
    }
}

impl StepFacts {
    /// The facts of a parsed statement.
    pub fn of(node: &NodeEnum) -> StepFacts {
        let makes = match node {
            NodeEnum::IndexStmt(idx) if idx.concurrent && !idx.idxname.is_empty() => {
                Some(Makes::ConcurrentIndex(
                    idx.relation
                        .as_ref()
                        .map(|r| r.schemaname.clone())
                        .unwrap_or_default(),
                    idx.idxname.clone(),
                ))
            }
            _ => introduces_table(node),
        };
        let outside_transaction = forbidden_in_transaction(node);
        StepFacts {
            outside_transaction,
            transaction_control: transaction_control(node),
            runs_long_without_blocking: runs_long_without_blocking(node),
            landing: outside_transaction.map(|_| Box::new(Landing::of(node))),
            makes: makes.map(Box::new),
            index_build: matches!(node, NodeEnum::IndexStmt(_)),
            effects: Box::default(),
            backfill: None,
            in_rolled_back_transaction: InTransaction::of(node),
        }
    }
}

/// The table name `node` brings into being (see [`Makes::Table`] and
/// [`Makes::TableIfMissing`]).
fn introduces_table(node: &NodeEnum) -> Option<Makes> {
    use pgshift_sql::ident::QualifiedName;
    use pgshift_sql::protobuf::ObjectType;
    let created = |table: QualifiedName, if_not_exists: bool| {
        if if_not_exists {
            Makes::TableIfMissing(table)
        } else {
            Makes::Table(table)
        }
    };
    match node {
        NodeEnum::CreateStmt(c) => c
            .relation
            .as_ref()
            .map(|rv| created(QualifiedName::from_range_var(rv), c.if_not_exists)),
        NodeEnum::CreateTableAsStmt(c) if c.objtype == ObjectType::ObjectTable as i32 => c
            .into
            .as_ref()
            .and_then(|i| i.rel.as_ref())
            .map(|rv| created(QualifiedName::from_range_var(rv), c.if_not_exists)),
        NodeEnum::RenameStmt(r)
            if r.rename_type == ObjectType::ObjectTable as i32 && !r.missing_ok =>
        {
            r.relation.as_ref().map(|rv| {
                let old = QualifiedName::from_range_var(rv);
                Makes::Table(QualifiedName {
                    schema: old.schema,
                    name: r.newname.clone(),
                })
            })
        }
        _ => None,
    }
}

/// Whether a statement blocks no application traffic but may legitimately wait for other
/// transactions and run for long: `CREATE INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY`,
/// `DROP INDEX CONCURRENTLY`, `ALTER TABLE ... VALIDATE CONSTRAINT`.
fn runs_long_without_blocking(node: &NodeEnum) -> bool {
    use pgshift_sql::protobuf::{AlterTableType, ObjectType};
    match node {
        NodeEnum::IndexStmt(i) => i.concurrent,
        NodeEnum::DropStmt(d) => d.concurrent && d.remove_type == ObjectType::ObjectIndex as i32,
        NodeEnum::ReindexStmt(r) => r.params.iter().any(|p| {
            matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently"))
        }),
        NodeEnum::AlterTableStmt(a) => {
            !a.cmds.is_empty()
                && a.cmds.iter().all(|c| {
                    matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd))
                        if cmd.subtype == AlterTableType::AtValidateConstraint as i32)
                })
        }
        _ => false,
    }
}

/// One statement to send.
#[derive(Debug, Clone)]
pub struct Step {
    /// The SQL sent to the server: see [`Step::sql`].
    text: StepText,
    /// Data for `COPY ... FROM stdin`, without the `\.` terminator.
    pub copy_data: Option<Box<str>>,
    /// The byte span in the file of the statement this step comes from.
    pub origin: Range<usize>,
    /// Set when the step is not the statement as written but part of a safe rewrite of it:
    /// what the step is for, shown before it runs and in errors.
    pub rewrite: Option<Box<str>>,
    /// What the statement is, for the executor.
    pub facts: StepFacts,
    /// The parse tree of a generated step, for [`crate::prepare`]'s walk only (dropped after
    /// it). A step as written has none: the walk reads its statement again from the file, so
    /// that no more than a run of a large file's trees is alive at once.
    pub(crate) node: Option<Arc<NodeEnum>>,
}

/// The purpose of every step of an online change's phases starts with this: the executor
/// shows no "safe rewrite" line for them (the phase shows what each unit does) and words its
/// errors for a phase.
pub const ONLINE_STEP: &str = "online change: ";

/// Where a step's SQL is: a statement as written is its span of the file, which every step of
/// the file shares (a copy per statement would cost the file's size again); a generated step
/// has its own.
#[derive(Debug, Clone)]
enum StepText {
    InFile(Arc<str>, Range<usize>),
    Own(String),
}

impl Step {
    /// A statement as written in `file`.
    fn written(statement: &pgshift_sql::Statement, file: &Arc<str>) -> Step {
        let text: &str = file;
        Step {
            text: StepText::InFile(Arc::clone(file), statement.span.clone()),
            copy_data: statement
                .copy_data
                .clone()
                .map(|r| strip_copy_terminator(&text[r]).into()),
            origin: statement.span.clone(),
            rewrite: None,
            facts: StepFacts::of(&statement.node),
            node: None,
        }
    }

    /// A step generated by pgshift (a safe rewrite, an `on_drop` protection): its SQL is
    /// parsed here, once.
    pub fn generated(sql: String, origin: Range<usize>, purpose: String) -> Step {
        let node = pgshift_sql::parse(&sql)
            .statements
            .into_iter()
            .next()
            .map(|s| s.node);
        Step {
            facts: node.as_ref().map(StepFacts::of).unwrap_or_default(),
            node: node.map(Arc::new),
            text: StepText::Own(sql),
            copy_data: None,
            origin,
            rewrite: Some(purpose.into()),
        }
    }

    /// The SQL sent to the server.
    pub fn sql(&self) -> &str {
        match &self.text {
            StepText::InFile(file, span) => file.get(span.clone()).unwrap_or_default(),
            StepText::Own(sql) => sql,
        }
    }

    /// Sends the step on `client`: a simple query, or `COPY ... FROM stdin` with its data.
    pub async fn send(&self, client: &tokio_postgres::Client) -> Result<(), pgshift_db::DbError> {
        match &self.copy_data {
            None => client
                .batch_execute(self.sql())
                .await
                .map_err(pgshift_db::DbError::from),
            Some(data) => {
                use futures_util::SinkExt;
                let sink = client.copy_in::<_, bytes::Bytes>(self.sql()).await?;
                futures_util::pin_mut!(sink);
                sink.send(bytes::Bytes::copy_from_slice(data.as_bytes()))
                    .await?;
                sink.finish().await?;
                Ok(())
            }
        }
    }

    /// A step of an online change's phase.
    pub fn is_online(&self) -> bool {
        self.rewrite
            .as_deref()
            .is_some_and(|r| r.starts_with(ONLINE_STEP))
    }

    /// True when `sql` is exactly the statement's text, so server error positions map into
    /// the file.
    pub fn is_verbatim(&self) -> bool {
        self.rewrite.is_none()
    }
}

/// The statement that opens a unit's transaction: `SET LOCAL` keeps the timeouts inside it,
/// so they hold through transaction-mode poolers and end with it.
pub fn begin_with_timeouts(
    lock_timeout: std::time::Duration,
    statement_timeout: std::time::Duration,
) -> String {
    format!(
        "BEGIN; SET LOCAL lock_timeout = '{}ms'; SET LOCAL statement_timeout = '{}ms'",
        lock_timeout.as_millis(),
        statement_timeout.as_millis()
    )
}

/// Statements that commit together.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Run inside `BEGIN ... COMMIT` with `SET LOCAL` timeouts, the progress record
    /// included; otherwise the single step runs on its own with session timeouts.
    pub transactional: bool,
    /// The unit is the author's own transaction control, or runs inside a transaction the
    /// author opened: its progress record joins that transaction.
    pub in_author_transaction: bool,
    pub steps: Vec<Step>,
    /// What runs instead when the unit cannot take its locks at once (`NOWAIT`): this step
    /// alone, outside any transaction. A small index's `DROP INDEX` runs as written when its
    /// table is free, `DROP INDEX CONCURRENTLY` otherwise.
    pub when_busy: Option<Box<Step>>,
}

impl Unit {
    /// A unit of these steps with no other form.
    pub fn new(transactional: bool, in_author_transaction: bool, steps: Vec<Step>) -> Unit {
        Unit {
            transactional,
            in_author_transaction,
            steps,
            when_busy: None,
        }
    }

    /// The unit to run instead when this one cannot take its locks at once: the `when_busy`
    /// step alone, outside any transaction.
    pub fn when_busy(&self) -> Option<Unit> {
        let other = self.when_busy.as_deref()?;
        Some(Unit::new(false, false, vec![other.clone()]))
    }

    /// A fingerprint of what the unit sends, to tell whether the steps already done are
    /// still the ones in the file when a stopped migration resumes.
    pub fn digest(&self) -> String {
        // Either form drops the same object: a resumed run may prepare the other one.
        let (transactional, steps) = match &self.when_busy {
            Some(other) => (false, std::slice::from_ref(&**other)),
            None => (self.transactional, self.steps.as_slice()),
        };
        let mut text = String::new();
        text.push_str(if transactional { "tx\n" } else { "alone\n" });
        for step in steps {
            text.push_str(step.sql());
            text.push_str("\n;\n");
            if let Some(data) = &step.copy_data {
                text.push_str(data);
                text.push_str("\n\\.\n");
            }
        }
        pgshift_source::checksum_of(&text)
    }

    /// A statement that runs bare, outside any transaction, and is recorded as in flight
    /// before it is sent.
    pub fn runs_in_flight(&self) -> bool {
        !self.transactional && !self.in_author_transaction && self.backfill().is_none()
    }

    /// The backfill this unit is, when it is one: it commits batch by batch with its own
    /// checkpoint, so it needs no in-flight record (running it again resumes it).
    pub fn backfill(&self) -> Option<&pgshift_sql::UpdateParts> {
        match self.steps.as_slice() {
            [step] => step.facts.backfill.as_deref(),
            _ => None,
        }
    }
}

/// A script broken into units, with what is needed to report errors against the file.
#[derive(Debug, Clone)]
pub struct Execution {
    pub path: PathBuf,
    pub file_text: Arc<str>,
    pub units: Vec<Unit>,
    /// Why the script runs outside a transaction, when it does.
    pub no_transaction_reason: Option<String>,
}

impl Execution {
    pub fn step_count(&self) -> usize {
        self.units.iter().map(|u| u.steps.len()).sum()
    }

    /// The fingerprint of each unit, in order.
    pub fn digests(&self) -> Vec<String> {
        self.units.iter().map(Unit::digest).collect()
    }
}

/// Breaks a parsed script into units as written (no safe rewrites):
/// - one transaction for the whole script by default;
/// - statement by statement outside a single transaction when the format's or pgshift's
///   no-transaction marker says so, or when a top-level statement cannot run inside a
///   transaction block (decided from the parse tree); each statement that may run in a
///   transaction block then gets a short one of its own, with its progress record;
/// - a script wrapped in its own `BEGIN; ... COMMIT;` runs in pgshift's transaction instead
///   (same effect, and the history row commits with it); any other explicit transaction
///   control runs as written, statement by statement.
pub fn units_as_written(
    version: &str,
    script: &Script,
    walk: &StatementWalk<'_>,
) -> Result<Execution, RunError> {
    let parsed = &walk.script;
    if let Some(err) = parsed.errors.first() {
        let idx = pgshift_sql::LineIndex::new(&script.file_text);
        let at = idx.line_col(&script.file_text, err.offset);
        return Err(RunError::Syntax {
            version: version.to_string(),
            path: script.path.clone(),
            line: at.line,
            column: at.column,
            message: err.message.clone(),
        });
    }
    let text = &script.file_text;
    // psql meta-commands are not SQL. pg_dump's `\restrict`/`\unrestrict` only guard psql
    // itself and are safe to skip; anything else (`\connect`, `\i`, `\set`) changes what the
    // script means, and pgshift cannot do it.
    if let Some(meta) = parsed.meta_commands.iter().find(|r| {
        let cmd = text[(*r).clone()].split_whitespace().next().unwrap_or("");
        !matches!(cmd, "\\restrict" | "\\unrestrict")
    }) {
        let at = pgshift_sql::LineIndex::new(text).line_col(text, meta.start);
        return Err(RunError::Syntax {
            version: version.to_string(),
            path: script.path.clone(),
            line: at.line,
            column: at.column,
            message: format!(
                "`{}` is a psql meta-command, not SQL; pgshift sends SQL to the server and cannot run it. Remove it, or run this file with psql",
                &text[meta.clone()]
            ),
        });
    }
    let mut steps: Vec<Step> = Vec::with_capacity(walk.spans.len());
    // The first marker that marks a statement it cannot apply to, or that was meant to change
    // how the migration runs and says nothing pgshift knows, and why.
    let mut misplaced: Option<(usize, String)> =
        parsed
            .comments
            .iter()
            .find_map(|c| match pgshift_sql::parse_directive(c.text(text)) {
                Some(pgshift_sql::Directive::Invalid {
                    message,
                    runner: true,
                }) => Some((c.span.start, message)),
                _ => None,
            });
    walk.for_each(|i, statement| {
        let mut step = Step::written(statement, text);
        let directives: Vec<pgshift_sql::Directive> = walk
            .comment_indices_for(text, i, script.range.start)
            .into_iter()
            .filter_map(|c| pgshift_sql::parse_directive(parsed.comments[c].text(text)))
            .collect();
        if misplaced.is_none()
            && directives
                .iter()
                .any(|d| matches!(d, pgshift_sql::Directive::Rename(_)))
            && !pgshift_sql::renames_column(&statement.node)
        {
            misplaced = Some((statement.span.start, "`-- pgshift:rename view|copy` marks a statement that does not rename a column: put it right before the `ALTER TABLE ... RENAME COLUMN`".to_string()));
        }
        if misplaced.is_none() && directives.contains(&pgshift_sql::Directive::Backfill) {
            match pgshift_sql::update_parts(statement.text(text), &statement.node) {
                Ok(parts) => step.facts.backfill = Some(Box::new(parts)),
                Err(reason) => {
                    misplaced = Some((
                        statement.span.start,
                        format!("`-- pgshift:backfill` marks a statement that cannot run as a backfill: {reason}"),
                    ))
                }
            }
        }
        steps.push(step);
    });
    if let Some((offset, message)) = misplaced {
        let at = pgshift_sql::LineIndex::new(text).line_col(text, offset);
        return Err(RunError::Syntax {
            version: version.to_string(),
            path: script.path.clone(),
            line: at.line,
            column: at.column,
            message,
        });
    }

    let control = |s: &Step| s.facts.transaction_control;
    let wrapped_by_author = steps.len() >= 2
        && steps.first().and_then(control) == Some(TransactionControl::Begin)
        && steps.last().and_then(control) == Some(TransactionControl::Commit)
        && steps[1..steps.len() - 1]
            .iter()
            .all(|s| control(s).is_none());
    if wrapped_by_author {
        steps.pop();
        steps.remove(0);
    }
    let has_own_control = !wrapped_by_author
        && steps.iter().any(|s| {
            matches!(
                control(s),
                Some(
                    TransactionControl::Begin
                        | TransactionControl::Commit
                        | TransactionControl::Rollback
                )
            )
        });

    if has_own_control {
        if let Some(step) = steps.iter().find(|s| s.facts.backfill.is_some()) {
            let at = pgshift_sql::LineIndex::new(text).line_col(text, step.origin.start);
            return Err(RunError::Syntax {
                version: version.to_string(),
                path: script.path.clone(),
                line: at.line,
                column: at.column,
                message: "`-- pgshift:backfill` in a migration that controls its own transactions (BEGIN/COMMIT): a backfill commits batch by batch and cannot run inside them. Remove the BEGIN/COMMIT, or the directive".into(),
            });
        }
    }
    let forbidden = steps.iter().find_map(|s| s.facts.outside_transaction);
    let backfills = steps.iter().any(|s| s.facts.backfill.is_some());
    let no_transaction_reason = if script.no_transaction {
        Some("the migration is marked no-transaction".to_string())
    } else if let Some(what) = forbidden {
        Some(format!("{what} cannot run inside a transaction block"))
    } else if backfills {
        Some("an UPDATE marked `-- pgshift:backfill` commits batch by batch".to_string())
    } else if has_own_control {
        Some("the migration controls its own transactions (BEGIN/COMMIT)".to_string())
    } else {
        None
    };

    let units = if no_transaction_reason.is_some() {
        let mut author_open = false;
        steps
            .into_iter()
            .map(|step| {
                let in_author_transaction = author_open || step.facts.transaction_control.is_some();
                match step.facts.transaction_control {
                    Some(TransactionControl::Begin) => author_open = true,
                    Some(TransactionControl::Commit | TransactionControl::Rollback) => {
                        author_open = false
                    }
                    _ => {}
                }
                Unit::new(
                    !in_author_transaction
                        && step.facts.outside_transaction.is_none()
                        && step.facts.backfill.is_none(),
                    in_author_transaction,
                    vec![step],
                )
            })
            .collect()
    } else {
        vec![Unit::new(true, false, steps)]
    };
    Ok(Execution {
        path: script.path.clone(),
        file_text: script.file_text.clone(),
        units,
        no_transaction_reason,
    })
}

/// The unit whose `BEGIN` the author left open when unit `index` runs, if any: a script that
/// controls its own transactions runs statement by statement, and a failure between its
/// `BEGIN` and `COMMIT` rolls back everything since that `BEGIN` (the progress recorded
/// meanwhile included), so the run must resume there, not at the failing statement.
pub fn open_transaction_start(exec: &Execution, index: usize) -> Option<usize> {
    let mut open = None;
    for (i, unit) in exec.units.iter().enumerate().take(index) {
        if !unit.in_author_transaction {
            continue;
        }
        for step in &unit.steps {
            match step.facts.transaction_control {
                Some(TransactionControl::Begin) => open = open.or(Some(i)),
                Some(TransactionControl::Commit | TransactionControl::Rollback) => open = None,
                _ => {}
            }
        }
    }
    open
}

fn strip_copy_terminator(data: &str) -> String {
    let trimmed = data.trim_end_matches(['\n', '\r']);
    match trimmed.strip_suffix("\\.") {
        Some(rest) if rest.is_empty() || rest.ends_with('\n') => rest.to_string(),
        _ => data.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(sql: &str, no_tx: bool) -> Execution {
        let mut script = pgshift_source::from_text("m.sql", sql).up;
        script.no_transaction = no_tx;
        let parsed = pgshift_sql::walk_range(&script.file_text, script.range.clone());
        units_as_written("1", &script, &parsed).expect("units")
    }

    #[test]
    fn a_unit_with_a_form_for_a_busy_table_has_that_form_s_digest() {
        // A resumed run may prepare the other form (the index gone, or grown): the units done
        // must still match.
        let mut plain = Step::generated("DROP INDEX i".into(), 0..12, String::new());
        plain.rewrite = None;
        let concurrent = Step::generated(
            "DROP INDEX CONCURRENTLY i".into(),
            0..12,
            "drop the index without blocking reads and writes".into(),
        );
        let unit = Unit {
            when_busy: Some(Box::new(concurrent.clone())),
            ..Unit::new(true, false, vec![plain])
        };
        let other = unit.when_busy().expect("the other form");
        assert!(!other.transactional);
        assert_eq!(other.steps[0].sql(), "DROP INDEX CONCURRENTLY i");
        let alone = Unit::new(false, false, vec![concurrent]);
        assert_eq!(unit.digest(), alone.digest());
        assert_ne!(
            Unit::new(
                true,
                false,
                vec![Step::generated("DROP INDEX i".into(), 0..12, String::new())]
            )
            .digest(),
            alone.digest()
        );
    }

    #[test]
    fn statements_have_a_form_for_verify_s_rolled_back_transaction() {
        let form = |sql: &str| {
            let e = exec(sql, false);
            e.units[0].steps[0].facts.in_rolled_back_transaction.clone()
        };
        assert_eq!(
            form("ALTER TABLE t ADD COLUMN a int"),
            InTransaction::AsWritten
        );
        assert_eq!(
            form("CREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a)"),
            InTransaction::Instead("CREATE UNIQUE INDEX t_a ON t USING btree (a)".into())
        );
        assert_eq!(
            form("DROP INDEX CONCURRENTLY IF EXISTS t_a"),
            InTransaction::Instead("DROP INDEX IF EXISTS t_a".into())
        );
        assert_eq!(form("VACUUM t"), InTransaction::Skip);
        assert_eq!(form("REINDEX INDEX CONCURRENTLY t_a"), InTransaction::Skip);
        assert_eq!(form("CREATE DATABASE other"), InTransaction::Impossible);
        assert_eq!(
            form("ALTER SYSTEM SET work_mem = '1MB'"),
            InTransaction::Impossible
        );
    }

    #[test]
    fn a_plain_script_is_one_transaction() {
        let e = exec("CREATE TABLE a (id int); CREATE INDEX ON a (id);", false);
        assert_eq!(e.units.len(), 1);
        assert!(e.units[0].transactional);
        assert_eq!(e.units[0].steps.len(), 2);
    }

    #[test]
    fn concurrently_runs_statement_by_statement() {
        let e = exec(
            "CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY i ON a (id);",
            false,
        );
        assert_eq!(e.units.len(), 2);
        // The CREATE TABLE commits with its progress record; the index build runs bare and
        // is recorded as in flight.
        assert!(e.units[0].transactional && !e.units[0].runs_in_flight());
        assert!(!e.units[1].transactional && e.units[1].runs_in_flight());
        assert!(e
            .no_transaction_reason
            .unwrap_or_default()
            .contains("CREATE INDEX CONCURRENTLY"));
    }

    #[test]
    fn an_author_wrapped_script_uses_our_transaction() {
        let e = exec("BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n", false);
        assert_eq!(e.units.len(), 1);
        assert!(e.units[0].transactional);
        assert_eq!(e.units[0].steps.len(), 1);
        assert_eq!(e.units[0].steps[0].sql(), "CREATE TABLE a (id int)");
    }

    #[test]
    fn other_transaction_control_runs_as_written() {
        let e = exec(
            "BEGIN; CREATE TABLE a (id int); COMMIT; BEGIN; CREATE TABLE b (id int); COMMIT;",
            false,
        );
        assert_eq!(e.units.len(), 6);
        assert!(e
            .units
            .iter()
            .all(|u| !u.transactional && u.in_author_transaction));
    }

    #[test]
    fn a_no_transaction_script_commits_each_statement_with_its_record() {
        let e = exec(
            "INSERT INTO t (a) SELECT g FROM generate_series(1, 10) g;
VACUUM t;
BEGIN;
UPDATE t SET a = 1;
COMMIT;
UPDATE t SET a = 2;
",
            true,
        );
        let shape: Vec<(bool, bool)> = e
            .units
            .iter()
            .map(|u| (u.transactional, u.in_author_transaction))
            .collect();
        assert_eq!(
            shape,
            vec![
                (true, false),  // INSERT: its own transaction, with its progress record
                (false, false), // VACUUM: bare, recorded in flight
                (false, true),  // the author's BEGIN
                (false, true),  // inside the author's transaction
                (false, true),  // the author's COMMIT
                (true, false),  // after it: its own transaction again
            ]
        );
        assert!(e.units[1].steps[0].facts.landing.is_some());
    }

    #[test]
    fn a_unit_digest_changes_with_its_sql_only() {
        let a = exec(
            "SELECT 1;
VACUUM t;
",
            true,
        );
        let b = exec(
            "SELECT 1;

-- comment
VACUUM   t;
",
            true,
        );
        assert_eq!(a.digests()[0], b.digests()[0]);
        assert_ne!(a.digests()[1], b.digests()[1]);
    }

    #[test]
    fn the_authors_open_transaction_is_found() {
        let e = exec(
            "BEGIN; CREATE TABLE a (id int); COMMIT; BEGIN; CREATE TABLE b (id int); COMMIT;",
            false,
        );
        let open: Vec<Option<usize>> = (0..e.units.len())
            .map(|i| open_transaction_start(&e, i))
            .collect();
        assert_eq!(open, vec![None, Some(0), Some(0), None, Some(3), Some(3)]);
        let plain = exec(
            "CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY i ON a (id);",
            false,
        );
        assert_eq!(open_transaction_start(&plain, 1), None);
    }

    /// `up` holds one step per statement of a migration until it is applied: at this size a
    /// file of short statements (about 60 bytes each) stays within ten times its size. What
    /// most steps lack (COPY data, a rewrite's purpose, a landing check) is boxed.
    #[test]
    fn a_step_stays_small() {
        assert!(
            std::mem::size_of::<Step>() <= 176,
            "{} bytes",
            std::mem::size_of::<Step>()
        );
    }

    #[test]
    fn copy_data_travels_with_its_statement() {
        let e = exec(
            "CREATE TABLE t (a int);\nCOPY t (a) FROM stdin;\n1\n2\n\\.\n",
            false,
        );
        let copy = &e.units[0].steps[1];
        assert_eq!(copy.copy_data.as_deref(), Some("1\n2\n"));
    }

    #[test]
    fn pg_dump_restrict_lines_are_skipped_and_other_meta_commands_refused() {
        let e = exec(
            "\\restrict k\nCREATE TABLE a (id int);\n\\unrestrict k\n",
            false,
        );
        assert_eq!(e.step_count(), 1);
        let script = pgshift_source::from_text("m.sql", "SELECT 1;\n\\connect other\n").up;
        let parsed = pgshift_sql::walk_range(&script.file_text, script.range.clone());
        match units_as_written("1", &script, &parsed) {
            Err(RunError::Syntax { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("\\connect other"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let script = pgshift_source::from_text("m.sql", "SELECT 1;\nSELEC 2;").up;
        let parsed = pgshift_sql::walk_range(&script.file_text, script.range.clone());
        match units_as_written("7", &script, &parsed) {
            Err(RunError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 1)),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
}
