//! Online (expand/contract) changes: a migration whose statements would break the code still
//! running against the old schema (a renamed column, a retyped column or key, an added NOT
//! NULL column filled from other columns, a dropped column, a renamed table, a renamed enum
//! label) runs in two phases,
//! so that old and new application code both work at every moment in between:
//!
//! - **expand** (`pgshift start`, or `up`): everything additive: the new column, a trigger
//!   that keeps old and new columns in step for every write, a batched backfill of the rows
//!   that exist, indexes built concurrently, constraints proved with `NOT VALID` +
//!   `VALIDATE`. The migration is then *expanded*: deploy the new code.
//! - **contract** (`pgshift complete`): once no old code is left, what it still needed goes,
//!   in one short transaction per table (one ACCESS EXCLUSIVE acquisition, under
//!   `lock_timeout`, retry and the lock-queue guard).
//! - **rollback** (`pgshift rollback`): undoes the expand at any time before `complete`,
//!   losing no row written meanwhile (the old column was kept in step all along).
//!
//! The planner reads the migration's statements as written ([`crate::prepare::online_statements`])
//! and the tables they change ([`catalog`]), and each operation — one file each:
//! [`change_type`], [`change_key`] (a key's type, with every column that references it),
//! [`rename_column`], [`add_column`] (also `SET NOT NULL` with a fill value),
//! [`drop_column`], [`rename_table`], [`rename_enum_value`] — returns its units per phase.
//! Every other statement runs as written (with pgshift's safe rewrites) in the phase its
//! markers or its nature put it in: a dropped table or view at contract, the rest at expand;
//! operations on one table share one backfill pass ([`SharedBackfills`]). A file that
//! cannot be split in its order, or an operation not supported yet, makes the migration run as
//! written ([`Planned::AsWritten`], with the reason).
//!
//! The triggers ([`sync`]) need nothing from the application: the direction of a write is
//! taken from which column the statement changed (NEW against OLD), updates that touch
//! neither column never enter PL/pgSQL (`UPDATE OF ... WHEN (...)`), and pgshift's own
//! backfill batches mark themselves with `SET LOCAL pgshift.backfill`.
//!
//! The whole plan is stored when the expand starts ([`state`]: `pgshift.online_changes`),
//! with the unit reached in each phase recorded in each unit's own transaction: a run killed
//! at any moment continues where it stopped, and `complete` and `rollback` run what was
//! planned even if the file changed since.

pub mod add_check;
pub mod add_column;
pub mod catalog;
pub mod change_key;
pub mod change_type;
pub mod drop_column;
pub mod rename_column;
pub mod rename_enum_value;
pub mod rename_table;
mod run;
pub mod state;
pub mod sync;

use pgshift_lint::PgVersion;
use pgshift_source::Migration;
use pgshift_sql::lines::contains_ignore_ascii_case;
use pgshift_sql::{Phase, SchemaChange};
use tokio_postgres::Client;

use crate::error::RunError;
use crate::prepare::{online_statements, Created, OnlineStatement};

pub use state::{OnlineChange, OnlinePhase};

/// How one unit of a phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitKind {
    /// Its statements in one transaction, under `lock_timeout`, retried, guarded.
    Transaction,
    /// One statement outside a transaction (`CREATE INDEX CONCURRENTLY`).
    Outside,
    /// One `UPDATE` run by the backfill engine: batched, throttled, resumable.
    Backfill,
    /// One statement as the author wrote it, run as `up` runs it (safe rewrites, `on_drop`).
    AsWritten,
}

/// One unit of a phase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhaseUnit {
    /// What it does, in a few words, shown while it runs.
    pub what: String,
    pub kind: UnitKind,
    pub sql: Vec<String>,
    /// The line of the file's statement it comes from: an error in the unit names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl PhaseUnit {
    pub fn transaction(what: impl Into<String>, sql: Vec<String>) -> PhaseUnit {
        PhaseUnit {
            what: what.into(),
            kind: UnitKind::Transaction,
            sql,
            line: None,
        }
    }
    pub fn outside(what: impl Into<String>, sql: String) -> PhaseUnit {
        PhaseUnit {
            what: what.into(),
            kind: UnitKind::Outside,
            sql: vec![sql],
            line: None,
        }
    }
    pub fn backfill(what: impl Into<String>, sql: String) -> PhaseUnit {
        PhaseUnit {
            what: what.into(),
            kind: UnitKind::Backfill,
            sql: vec![sql],
            line: None,
        }
    }
    pub fn as_written(what: impl Into<String>, sql: String) -> PhaseUnit {
        PhaseUnit {
            what: what.into(),
            kind: UnitKind::AsWritten,
            sql: vec![sql],
            line: None,
        }
    }
}

/// One online operation and its units per phase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    /// e.g. "change the type of public.accounts.balance from integer to bigint".
    pub summary: String,
    /// The table it changes (its name when the expand starts).
    pub table: String,
    pub table_oid: u32,
    /// Other tables it changes (a key's referencing tables), by name and oid: each in no other
    /// online change meanwhile.
    #[serde(default)]
    pub other_tables: Vec<(String, u32)>,
    /// Its units per phase; the plan's phases hold them in the order they run (they are not
    /// stored twice).
    #[serde(default, skip_serializing)]
    pub expand: Vec<PhaseUnit>,
    #[serde(default, skip_serializing)]
    pub contract: Vec<PhaseUnit>,
    #[serde(default, skip_serializing)]
    pub rollback: Vec<PhaseUnit>,
    /// Checks run on a sample of the rows before anything is written: each a query that
    /// returns how many sampled rows fail it, and what that means.
    #[serde(default, skip_serializing)]
    pub preflight: Vec<Preflight>,
    /// What a rollback leaves as the expand left it, in words.
    #[serde(default, skip_serializing)]
    pub not_undone: Vec<String>,
    /// What works during the window but breaks at `complete`, with what to do first (a
    /// function whose body names a column the contract renames away or drops).
    #[serde(default, skip_serializing)]
    pub caveats: Vec<String>,
    /// A view named as the table stands where it was during the window (a renamed table, a
    /// column renamed in place): no other change of the migration may name the table, whose
    /// name is the view's until the contract.
    #[serde(default, skip_serializing)]
    pub view_in_place: bool,
}

/// A check on the rows that exist, before the expand writes anything.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
pub struct Preflight {
    /// Returns one bigint: the rows that fail. An error from the server fails the check too.
    pub sql: String,
    /// What a failure means and what to do, for the message.
    pub failing: String,
    /// A lossy change, which `allow_lossy` lets through.
    pub lossy: bool,
}

/// Rows a preflight check reads: enough to find a bad expression, bounded on a large table.
pub const PREFLIGHT_ROWS: u32 = 100_000;

/// A migration planned as an online change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OnlinePlan {
    pub operations: Vec<Operation>,
    pub expand: Vec<PhaseUnit>,
    pub contract: Vec<PhaseUnit>,
    pub rollback: Vec<PhaseUnit>,
    /// Statements of the expand run as written that a rollback does not undo.
    pub not_undone: Vec<String>,
    /// The operations' caveats: what breaks at `complete` unless changed first.
    #[serde(default)]
    pub caveats: Vec<String>,
    /// Every existing table a statement of the migration names, by oid: a later online
    /// migration may expand while this one is expanded only if it names none of them.
    #[serde(default)]
    pub table_oids: Vec<u32>,
}

impl OnlinePlan {
    /// The tables the change holds until it is completed or rolled back.
    pub fn held_tables(&self) -> impl Iterator<Item = u32> + '_ {
        self.table_oids
            .iter()
            .copied()
            .chain(self.operations.iter().flat_map(|op| {
                std::iter::once(op.table_oid).chain(op.other_tables.iter().map(|(_, o)| *o))
            }))
    }
}

impl OnlinePlan {
    /// The units of one phase.
    pub fn units(&self, phase: OnlinePhase) -> &[PhaseUnit] {
        match phase {
            OnlinePhase::Expanding | OnlinePhase::Expanded => &self.expand,
            OnlinePhase::Contracting => &self.contract,
            OnlinePhase::RollingBack => &self.rollback,
        }
    }
}

/// Why a migration cannot run online; the message names the file and line and says what to
/// do instead.
pub(crate) fn refusal(m: &Migration, line: usize, message: impl std::fmt::Display) -> RunError {
    RunError::NotOnline {
        version: m.version.to_string(),
        path: m.up.path.clone(),
        line,
        reason: message.to_string(),
    }
}

/// The `ANALYZE t (columns)` units of operations on one table as one unit, where the first
/// of them stands (two operations on a table analyze it once).
fn merge_analyzes(units: &mut Vec<PhaseUnit>) {
    let parts = |u: &PhaseUnit| -> Option<(String, String)> {
        let [sql] = u.sql.as_slice() else { return None };
        let rest = sql.strip_prefix("ANALYZE ")?;
        let (table, cols) = rest.split_once(" (")?;
        Some((table.to_string(), cols.strip_suffix(')')?.to_string()))
    };
    let mut out: Vec<PhaseUnit> = Vec::with_capacity(units.len());
    for unit in units.drain(..) {
        let Some((table, cols)) = parts(&unit) else {
            out.push(unit);
            continue;
        };
        match out
            .iter_mut()
            .find(|u| parts(u).is_some_and(|(t, _)| t == table))
        {
            Some(first) => {
                let (_, before) = parts(first).unwrap_or_default();
                first.sql = vec![format!("ANALYZE {table} ({before}, {cols})")];
                first.what = format!(
                    "{}, {}",
                    first.what.trim_end_matches(')'),
                    unit.what.split_once('(').map_or("", |(_, c)| c)
                );
            }
            None => out.push(unit),
        }
    }
    *units = out;
}

/// `op` with the line of its statement on each of its units (an error in one names it).
fn at_line(mut op: Operation, line: usize) -> Operation {
    for unit in op
        .expand
        .iter_mut()
        .chain(&mut op.contract)
        .chain(&mut op.rollback)
    {
        unit.line = Some(line);
    }
    op
}

/// A partitioned table changes online from PostgreSQL 13, whose BEFORE row triggers on a
/// partitioned table reach every partition (the triggers keep the columns in step).
pub(crate) fn partitioned_needs_13(
    m: &Migration,
    line: usize,
    table: &catalog::TableFacts,
    pg: PgVersion,
) -> Result<(), RunError> {
    if table.kind == "p" && pg.major < 13 {
        return Err(refusal(
            m,
            line,
            format!("{} is a partitioned table: changing it online needs PostgreSQL 13 or later, whose BEFORE row triggers reach every partition", table.name),
        ));
    }
    Ok(())
}

/// How a migration runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// As an online change.
    Online(OnlinePlan),
    /// As written: nothing in it needs an online change (or the file says
    /// `-- pgshift:online off`, or `--exact`).
    Ordinary,
    /// As written, although something in it would break running code: it cannot be planned
    /// as an online change, for the reason given (file and line included).
    AsWritten(String),
    /// As written: it would break running code, but it changes only tables this run made,
    /// which no code used before it.
    OnNewTables,
}

/// What an operation's planner gets.
pub struct OpInput<'a> {
    pub migration: &'a Migration,
    pub statement: &'a OnlineStatement,
    pub table: &'a catalog::TableFacts,
    pub pg: PgVersion,
}

/// How `m` runs: as an online change; as an ordinary migration (nothing in it needs an online
/// change, or the file says `-- pgshift:online off`); or as written although it would need one,
/// with the reason.
///
/// `tables_before_run`: the tables there were when the run started, when a migration that changes
/// only tables made since runs as written ([`Planned::OnNewTables`]); looked at before the
/// operations are planned (a type change or an enum label rename excepted: they may reach
/// tables the statements do not name, and are judged on their plans).
pub async fn plan(
    client: &Client,
    m: &Migration,
    pg: PgVersion,
    tables_before_run: Option<&std::collections::HashSet<u32>>,
) -> Result<Planned, RunError> {
    match plan_online(client, m, pg, tables_before_run).await {
        Ok(planned) => Ok(planned),
        Err(RunError::NotOnline {
            path, line, reason, ..
        }) => Ok(Planned::AsWritten(format!(
            "{}:{line}: {reason}",
            path.display()
        ))),
        Err(e) => Err(e),
    }
}

/// Every existing table `statements` name, by oid, in one query (a view with the tables it
/// reads).
async fn table_oids(client: &Client, statements: &[OnlineStatement]) -> Result<Vec<u32>, RunError> {
    let mut names: Vec<String> = Vec::new();
    for t in statements.iter().flat_map(|st| &st.tables) {
        let quoted = t.quoted();
        if !names.contains(&quoted) {
            names.push(quoted);
        }
    }
    // A view counts with the tables it reads: during a renamed table's or column's window a
    // view has the table's name, and what names it changes the table behind it.
    let rows = client
        .query(
            "WITH r AS (SELECT DISTINCT to_regclass(n)::oid AS oid FROM unnest($1::text[]) n
                         WHERE to_regclass(n) IS NOT NULL)
             SELECT oid FROM r
             UNION
             SELECT d.refobjid FROM r
               JOIN pg_rewrite w ON w.ev_class = r.oid
               JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
                               AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.oid",
            &[&names],
        )
        .await
        .map_err(pgshift_db::DbError::from)?;
    let mut oids: Vec<u32> = rows.iter().map(|r| r.get(0)).collect();
    oids.sort_unstable();
    Ok(oids)
}

/// Whether `change` can be made an online operation at all, from the statements alone: a
/// nullable column added without a fill, or a type change that does not rewrite the table, runs
/// as written whatever the table holds, so the table's facts are not read for it (the planner
/// runs before every migration `up` applies).
fn may_be_online(
    change: &SchemaChange,
    st: &OnlineStatement,
    statements: &[OnlineStatement],
    i: usize,
) -> bool {
    match change {
        SchemaChange::AddColumn {
            column,
            other: false,
            ..
        } => {
            st.rewrites
                || add_column::find_fill(statements, i, change.table(), column)
                    .update
                    .is_some()
        }
        SchemaChange::AddColumn { other: true, .. } => false,
        SchemaChange::AlterType { .. } => st.rewrites,
        SchemaChange::SetNotNull { column, .. } => {
            add_column::find_fill_before(statements, i, change.table(), column).is_some()
        }
        SchemaChange::RenameColumn { .. }
        | SchemaChange::RenameTable { .. }
        | SchemaChange::DropColumn { .. }
        | SchemaChange::RenameEnumValue { .. } => true,
    }
}

async fn plan_online(
    client: &Client,
    m: &Migration,
    pg: PgVersion,
    tables_before_run: Option<&std::collections::HashSet<u32>>,
) -> Result<Planned, RunError> {
    let (mut statements, off) = online_statements(client, m.version.as_str(), &m.up, pg).await?;
    if off || statements.is_empty() {
        return Ok(Planned::Ordinary);
    }
    // The tables the statements name, by OID, when looked up already (the statements' tables
    // do not change below: only the author's BEGIN/COMMIT wrapper may go).
    let mut looked_up: Option<Vec<u32>> = None;
    if let Some(before) = tables_before_run {
        let changes = || {
            statements
                .iter()
                .enumerate()
                .flat_map(|(i, st)| st.changes.iter().flatten().map(move |c| (i, st, c)))
        };
        // A type change (a key's reaches tables the file does not name) and an enum label
        // rename (it reaches every table using the type) are judged on their plans.
        let retypes = changes().any(|(_, _, c)| {
            matches!(
                c,
                SchemaChange::AlterType { .. } | SchemaChange::RenameEnumValue { .. }
            )
        });
        // Nothing that may be planned online (an ADD COLUMN without a fill): no look-up.
        let any_online = changes().any(|(i, st, c)| may_be_online(c, st, &statements, i))
            || statements
                .iter()
                .any(|st| st.phase.is_some() || st.backfill_marked);
        if !retypes && any_online {
            let oids = table_oids(client, &statements).await?;
            if !oids.is_empty() && oids.iter().all(|oid| !before.contains(oid)) {
                return Ok(Planned::OnNewTables);
            }
            looked_up = Some(oids);
        }
    }
    // A file wrapped in its author's BEGIN ... COMMIT (Django's and Alembic's SQL output):
    // the phases have transactions of their own, so the wrapper goes. Any other transaction
    // control makes the file run as written.
    let wrapped = statements.len() >= 2
        && statements.first().is_some_and(|s| s.transaction_control)
        && statements.last().is_some_and(|s| s.transaction_control)
        && statements[1..statements.len() - 1]
            .iter()
            .all(|s| !s.transaction_control);
    if wrapped {
        statements.pop();
        statements.remove(0);
    }
    let own_transactions = statements
        .iter()
        .find(|s| s.transaction_control)
        .map(|s| s.line);
    let search_path = statements
        .iter()
        .find(|s| s.sets_search_path)
        .map(|s| s.line);
    let mut plan = OnlinePlan {
        operations: Vec::new(),
        expand: Vec::new(),
        contract: Vec::new(),
        rollback: Vec::new(),
        not_undone: Vec::new(),
        caveats: Vec::new(),
        table_oids: Vec::new(),
    };
    // Statements an operation took in (the UPDATE and SET NOT NULL of an added column).
    let mut consumed = vec![false; statements.len()];
    let mut raw_rollback: Vec<PhaseUnit> = Vec::new();
    let mut online = false;
    // The file is split by phase only where that keeps its order: a statement run at expand
    // must not come after one run at contract, nor change a table after a column of it was
    // renamed or retyped (the new name or type exists only after the contract).
    let mut first_contract: Option<(usize, String)> = None;
    let mut column_changes: Vec<(String, usize)> = Vec::new();
    // Columns whose type stays in use until the contract (table OID, name): a retyped
    // column's old self and a dropped column; and the types dropped at contract because such
    // a column is of one of them.
    let mut leaving: Vec<(u32, String)> = Vec::new();
    let mut types_dropped_at_contract: Vec<String> = Vec::new();
    // Columns an operation drops at contract (the table for people, the column, the line).
    let mut dropped_columns: Vec<(String, String, usize)> = Vec::new();
    let mut violations: Vec<RunError> = Vec::new();
    let order = |st: &OnlineStatement,
                 first_contract: &Option<(usize, String)>,
                 column_changes: &[(String, usize)]|
     -> Option<RunError> {
        if let Some((line, what)) = first_contract {
            return Some(refusal(
                m,
                st.line,
                format!("line {line} ({what}) runs at contract, after the deploy, but this statement after it would run at expand, before: the file cannot be split in its order. Put the drops last, or mark each statement's phase (`-- pgshift:expand` / `-- pgshift:contract`)"),
            ));
        }
        if let Some((table, line)) = column_changes.iter().find(|(t, _)| {
            st.tables
                .iter()
                .any(|s| t.ends_with(&format!(".{}", s.name)) || *t == s.name)
        }) {
            return Some(refusal(
                m,
                st.line,
                format!("this statement changes {table} after the column change at line {line}, whose new name or type exists only after the contract: write it in a later migration"),
            ));
        }
        None
    };
    // An operation's units that run where a later statement of it stands (the backfill of an
    // added column runs where its UPDATE is written: what the file creates between the two,
    // a function the UPDATE calls, exists by then).
    let mut deferred: std::collections::HashMap<usize, Vec<PhaseUnit>> =
        std::collections::HashMap::new();
    // Operations on one table share one backfill pass.
    let mut shared = SharedBackfills::default();
    // CHECK constraints (by statement) whose cleanup UPDATE (the statement given) runs as
    // their backfill.
    let mut cleanups: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for (i, st) in statements.iter().enumerate() {
        // A column added again under the name of one dropped earlier in the file: the drop
        // waits for the contract, so the name is still taken when the add would run.
        for change in st.changes.iter().flatten() {
            let SchemaChange::AddColumn { table, column, .. } = change else {
                continue;
            };
            if let Some((_, _, line)) = dropped_columns.iter().find(|(t, c, _)| {
                c == column && (t.ends_with(&format!(".{}", table.name)) || *t == table.name)
            }) {
                violations.push(refusal(
                    m,
                    st.line,
                    format!("this adds {column} again, which line {line} drops: the drop runs at contract, after the deploy, so the name is still taken at expand. Write the add in a later migration, or run this one as written (`-- pgshift:online off`)"),
                ));
            }
        }
        if consumed[i] {
            shared.flush(&mut plan.expand);
            plan.expand.extend(deferred.remove(&i).unwrap_or_default());
            continue;
        }
        // An UPDATE of an existing table followed by a CHECK on a column it writes: the
        // cleanup the constraint needs, run as its backfill and kept true meanwhile.
        if let Some(j) = add_check::cleaned_by(&statements, i) {
            if let Some(u) = &st.update {
                if catalog::table(client, &u.table).await?.is_some() {
                    consumed[i] = true;
                    cleanups.insert(j, i);
                    continue;
                }
            }
        }
        if let (Some(check), Some(&from)) = (&st.adds_check, cleanups.get(&i)) {
            if let (Some(table), Some(update)) = (
                catalog::table(client, &check.table).await?,
                statements[from].update.as_ref(),
            ) {
                partitioned_needs_13(m, st.line, &table, pg)?;
                let input = OpInput {
                    migration: m,
                    statement: st,
                    table: &table,
                    pg,
                };
                // After the backfill, rows that still break the constraint (the cleanup does
                // not cover them) are reported with examples before it is added.
                let look = crate::existing_rows::look(
                    client,
                    &pgshift_lint::ExistingRows::Check {
                        table: check.table.clone(),
                        name: check.name.clone(),
                        expr: check.expr.clone(),
                    },
                    &format!("the cleanup (line {}) leaves those rows breaking the constraint: `pgshift rollback`, make the cleanup cover them, then `pgshift start` again", statements[from].line),
                )
                .await?;
                let op = at_line(
                    add_check::plan(&input, check, &statements[from], update, look),
                    st.line,
                );
                violations.extend(order(st, &first_contract, &column_changes));
                shared.flush(&mut plan.expand);
                plan.expand.extend(op.expand.iter().cloned());
                plan.operations.push(op);
                online = true;
                continue;
            }
        }
        // An UPDATE that fills a column of an existing table that a later statement makes
        // NOT NULL belongs to that operation: it runs as its backfill, not as written.
        // (Not when either carries a phase marker: the author placed it.)
        if let (Some(u), false, false, None) =
            (&st.update, st.on_new_table, st.backfill_marked, st.phase)
        {
            let later_not_null = u.assignments.len() == 1
                && statements[i + 1..].iter().any(|later| {
                    later.phase.is_none()
                        && later.changes.iter().flatten().any(|c| {
                            matches!(c, SchemaChange::SetNotNull { table, column }
                            if table.name == u.table.name && *column == u.assignments[0].column)
                        })
                });
            if later_not_null && catalog::table(client, &u.table).await?.is_some() {
                consumed[i] = true;
                continue;
            }
        }
        if let Some(phase) = st.phase {
            online = true;
            let unit =
                PhaseUnit::as_written(format!("as written (line {})", st.line), st.text.clone());
            match phase {
                Phase::Expand => {
                    shared.flush(&mut plan.expand);
                    plan.expand.push(unit);
                }
                Phase::Contract => plan.contract.push(unit),
            }
            continue;
        }
        let mut handled = false;
        if let (Some(changes), false) = (&st.changes, st.on_new_table) {
            for change in changes {
                if !may_be_online(change, st, &statements, i) {
                    continue;
                }
                if let SchemaChange::RenameEnumValue {
                    type_name,
                    from,
                    to,
                } = change
                {
                    let op =
                        rename_enum_value::plan(client, m, st, (type_name, from, to), pg).await?;
                    if let Some(op) = op.map(|op| at_line(op, st.line)) {
                        violations.extend(order(st, &first_contract, &[]));
                        shared.flush(&mut plan.expand);
                        plan.expand.extend(op.expand.iter().cloned());
                        plan.operations.push(op);
                        online = true;
                        handled = true;
                    }
                    continue;
                }
                let Some(table) = catalog::table(client, change.table()).await? else {
                    continue;
                };
                partitioned_needs_13(m, st.line, &table, pg)?;
                let input = OpInput {
                    migration: m,
                    statement: st,
                    table: &table,
                    pg,
                };
                let mut defer_from: Option<(usize, usize)> = None;
                let op = match change {
                    SchemaChange::RenameColumn { from, to, .. } => {
                        Some(rename_column::plan(client, &input, from, to).await?)
                    }
                    SchemaChange::RenameTable { to, .. } => {
                        Some(rename_table::plan(client, &input, to).await?)
                    }
                    SchemaChange::AlterType {
                        column,
                        type_text,
                        using,
                        ..
                    } if st.rewrites => {
                        if !change_key::is_key(client, &table, column).await? {
                            Some(
                                change_type::plan(
                                    client,
                                    &input,
                                    column,
                                    type_text,
                                    using.as_deref(),
                                )
                                .await?,
                            )
                        } else if key_changed_elsewhere(client, &statements, i, &table, column)
                            .await?
                        {
                            // The change of the key it references, later in the file, takes
                            // this column in.
                            handled = true;
                            None
                        } else {
                            let key = change_key::plan(
                                client,
                                &input,
                                column,
                                type_text,
                                using.as_deref(),
                            )
                            .await?;
                            let target = catalog::type_name(client, type_text)
                                .await?
                                .unwrap_or_default();
                            for (j, other) in statements.iter().enumerate().skip(i + 1) {
                                if change_key::does_same_change(
                                    client,
                                    other,
                                    &key.columns,
                                    &target,
                                )
                                .await?
                                {
                                    consumed[j] = true;
                                }
                            }
                            Some(key.operation)
                        }
                    }
                    SchemaChange::AddColumn {
                        column,
                        type_text,
                        default,
                        not_null,
                        other: false,
                        ..
                    } => {
                        let fill = add_column::find_fill(&statements, i, &table.name, column);
                        let spec = add_column::Added {
                            column,
                            type_text,
                            default: default.as_deref(),
                            not_null: *not_null || fill.set_not_null.is_some(),
                        };
                        match add_column::plan_added(client, &input, &spec, &fill).await? {
                            Some(op) => {
                                for j in fill.consumed() {
                                    consumed[j] = true;
                                }
                                if let Some((j, _)) = &fill.update {
                                    let at = op
                                        .expand
                                        .iter()
                                        .position(|u| u.kind == UnitKind::Backfill)
                                        .unwrap_or(op.expand.len());
                                    defer_from = Some((*j, at));
                                }
                                Some(op)
                            }
                            None => None,
                        }
                    }
                    SchemaChange::SetNotNull { column, .. } => {
                        let fill =
                            add_column::find_fill_before(&statements, i, &table.name, column);
                        match fill {
                            Some((j, update)) => {
                                consumed[j] = true;
                                Some(
                                    add_column::plan_not_null(client, &input, column, update)
                                        .await?,
                                )
                            }
                            None => None,
                        }
                    }
                    SchemaChange::DropColumn { column, .. } => {
                        Some(drop_column::plan(client, &input, column).await?)
                    }
                    _ => None,
                };
                match (change, &op) {
                    (SchemaChange::AlterType { column, .. }, Some(_)) => {
                        leaving.push((table.oid, column.clone()));
                    }
                    (SchemaChange::DropColumn { column, .. }, Some(_)) => {
                        leaving.push((table.oid, column.clone()));
                        dropped_columns.push((table.name.to_string(), column.clone(), st.line));
                    }
                    _ => {}
                }
                if let Some(op) = op.map(|op| at_line(op, st.line)) {
                    if changes.len() > 1 {
                        return Err(refusal(
                            m,
                            st.line,
                            "this ALTER TABLE makes several changes, and at least one of them needs an online change: write each in its own ALTER TABLE statement",
                        ));
                    }
                    violations.extend(order(st, &first_contract, &[]));
                    if matches!(
                        change,
                        SchemaChange::RenameColumn { .. } | SchemaChange::AlterType { .. }
                    ) {
                        column_changes.push((op.table.clone(), st.line));
                        for (other, _) in &op.other_tables {
                            column_changes.push((other.clone(), st.line));
                        }
                    }
                    match defer_from {
                        Some((j, at)) => {
                            shared.flush(&mut plan.expand);
                            plan.expand.extend(op.expand[..at].iter().cloned());
                            deferred.insert(j, op.expand[at..].to_vec());
                        }
                        None => shared.add(&mut plan.expand, &op),
                    }
                    plan.operations.push(op);
                    online = true;
                    handled = true;
                }
            }
        }
        if handled {
            continue;
        }
        // A table whose statements leave no online operation: as written, at expand; a
        // marked UPDATE of an existing table runs as a backfill.
        if st.backfill_marked && st.update.is_some() {
            {
                violations.extend(order(st, &first_contract, &column_changes));
                shared.flush(&mut plan.expand);
                plan.expand.push(PhaseUnit::backfill(
                    format!("backfill (line {})", st.line),
                    st.text.clone(),
                ));
                continue;
            }
        }
        // A retyped or dropped column keeps its type until the contract (the old column, and
        // a trigger reading it, stay for the window): dropping that type runs at contract,
        // and so does the rename that then gives a new type its name (the enum swap: CREATE
        // TYPE new ...; ALTER ... TYPE new; DROP TYPE old; ALTER TYPE new RENAME TO old).
        let frees_old_type = !st.drops_types.is_empty()
            && !leaving.is_empty()
            && catalog::columns_of_types(client, &leaving, &st.drops_types).await?;
        if frees_old_type {
            types_dropped_at_contract.extend(st.drops_types.iter().map(|t| t.name.clone()));
        }
        let takes_freed_name = st
            .renames_type_to
            .as_ref()
            .is_some_and(|to| types_dropped_at_contract.contains(to));
        if (st.destructive && !st.on_new_table) || frees_old_type || takes_freed_name {
            if first_contract.is_none() {
                first_contract = Some((st.line, first_line(&st.text)));
            }
            plan.contract.push(PhaseUnit::as_written(
                format!("as written (line {})", st.line),
                st.text.clone(),
            ));
            continue;
        }
        violations.extend(order(st, &first_contract, &column_changes));
        shared.flush(&mut plan.expand);
        plan.expand.push(PhaseUnit::as_written(
            format!("as written (line {})", st.line),
            st.text.clone(),
        ));
        match &st.creates {
            Some(Created::Table(t)) => raw_rollback.push(PhaseUnit::transaction(
                format!("drop table {t} (created at line {})", st.line),
                vec![format!("DROP TABLE IF EXISTS {}", t.quoted())],
            )),
            Some(Created::Index(ix)) => raw_rollback.push(PhaseUnit::outside(
                format!("drop index {ix} (created at line {})", st.line),
                format!("DROP INDEX CONCURRENTLY IF EXISTS {}", ix.quoted()),
            )),
            Some(Created::Type(t)) => raw_rollback.push(PhaseUnit::transaction(
                format!("drop type {t} (created at line {})", st.line),
                vec![format!("DROP TYPE IF EXISTS {}", t.quoted())],
            )),
            None => plan.not_undone.push(format!(
                "line {}: {}",
                st.line,
                first_line(&pgshift_sql::redact_secrets(&st.text))
            )),
        }
    }
    shared.flush(&mut plan.expand);
    if !online {
        return Ok(Planned::Ordinary);
    }

    if let Some(line) = own_transactions {
        return Err(refusal(
            m,
            line,
            "the migration controls its own transactions (BEGIN/COMMIT inside it), which an online change's phases cannot keep",
        ));
    }
    if let Some(line) = search_path {
        return Err(refusal(
            m,
            line,
            "the migration sets search_path, so its table names may resolve elsewhere than pgshift's session resolves them: qualify the names with their schema (or remove the SET)",
        ));
    }
    if let Some(violation) = violations.into_iter().next() {
        return Err(violation);
    }
    if let Some((op, line)) = view_shares_its_table(&plan.operations, &statements) {
        return Err(refusal(
            m,
            line,
            format!(
                "{}: during the window a view takes the name {}, so no other change of this migration may name the table: write the others in a migration of their own",
                op.summary, op.table
            ),
        ));
    }
    coalesce_as_written(&mut plan.expand);
    // The contract: each table's swaps in one transaction (one ACCESS EXCLUSIVE acquisition
    // however many of its columns change), then what follows them (validations), then the
    // statements as written, in the file's order.
    let written_contract = std::mem::take(&mut plan.contract);
    let mut merged: Vec<(u32, PhaseUnit)> = Vec::new();
    let mut after = Vec::new();
    for op in &plan.operations {
        let mut units = op.contract.iter().cloned();
        let Some(first) = units.next() else { continue };
        let locks = |u: &PhaseUnit| {
            u.kind == UnitKind::Transaction
                && u.sql.first().is_some_and(|s| s.starts_with("LOCK TABLE"))
        };
        if !locks(&first) {
            after.push(first);
        } else if let Some((_, unit)) = merged.iter_mut().find(|(oid, _)| *oid == op.table_oid) {
            unit.what = format!("{}; {}", unit.what, first.what);
            unit.sql.extend(first.sql.into_iter().skip(1));
        } else {
            merged.push((op.table_oid, first));
        }
        after.extend(units);
    }
    plan.contract = merged.into_iter().map(|(_, u)| u).collect();
    plan.contract.extend(after);
    merge_analyzes(&mut plan.contract);
    plan.contract.extend(written_contract);
    coalesce_as_written(&mut plan.contract);
    // Undo in the reverse order of the expand.
    for op in plan.operations.iter().rev() {
        plan.rollback.extend(op.rollback.iter().cloned());
        plan.not_undone.extend(op.not_undone.iter().cloned());
    }
    plan.caveats = plan
        .operations
        .iter()
        .flat_map(|op| op.caveats.iter().cloned())
        .collect();
    raw_rollback.reverse();
    plan.rollback.extend(raw_rollback);
    // A rollback drops what may not exist (an expand stopped partway): no notice for each.
    for unit in &mut plan.rollback {
        if unit.kind == UnitKind::Transaction {
            unit.sql
                .insert(0, "SET LOCAL client_min_messages = warning".to_string());
        }
    }
    plan.table_oids = match looked_up {
        Some(oids) => oids,
        None => table_oids(client, &statements).await?,
    };
    Ok(Planned::Online(plan))
}

/// An operation that puts a view where its table was, and the line of another operation on
/// the same table, or of a statement that names it and runs while the view stands (after it
/// in the file, or at contract), if there is one.
fn view_shares_its_table<'a>(
    operations: &'a [Operation],
    statements: &[OnlineStatement],
) -> Option<(&'a Operation, usize)> {
    let names = |op: &Operation, oid: u32| {
        op.table_oid == oid || op.other_tables.iter().any(|(_, o)| *o == oid)
    };
    operations
        .iter()
        .filter(|op| op.view_in_place)
        .find_map(|op| {
            let line_of = |o: &Operation| {
                o.expand
                    .iter()
                    .chain(&o.contract)
                    .chain(&o.rollback)
                    .find_map(|u| u.line)
            };
            let own_line = line_of(op);
            let other_op = operations
                .iter()
                .filter(|o| !std::ptr::eq(*o, op) && names(o, op.table_oid))
                .find_map(line_of);
            // A statement before it that runs at expand runs before the view is made.
            // (`op.table` is the table's name for people, schema-qualified.)
            let other_statement = || {
                statements
                    .iter()
                    .filter(|st| {
                        own_line
                            .is_some_and(|own| st.line > own || (st.line < own && st.destructive))
                    })
                    .find(|st| {
                        st.tables.iter().any(|t| {
                            let shown = t.to_string();
                            shown == op.table
                                || (t.schema.is_none() && op.table.ends_with(&format!(".{shown}")))
                        })
                    })
                    .map(|st| st.line)
            };
            other_op.or_else(other_statement).map(|line| (op, line))
        })
}

/// Backfills that operations on one table share: each operation's units before its backfill
/// go out at once; its backfill joins the table's pending one (one `UPDATE` setting every
/// new column: one pass over the table), and the units after it wait behind that pass. The
/// pending passes go out before anything else that may read or change the tables (a
/// statement as written, an operation that cannot share, the end of the file).
#[derive(Default)]
struct SharedBackfills {
    /// Per table, in the order met: `UPDATE t SET ` (as the operations write it), the
    /// backfill so far, and the units that wait behind it.
    pending: Vec<(String, PhaseUnit, Vec<PhaseUnit>)>,
}

impl SharedBackfills {
    fn add(&mut self, expand: &mut Vec<PhaseUnit>, op: &Operation) {
        let Some((before, backfill, after, prefix)) = around_backfill(op) else {
            self.flush(expand);
            expand.extend(op.expand.iter().cloned());
            return;
        };
        expand.extend(before.iter().cloned());
        match self.pending.iter_mut().find(|(p, ..)| *p == prefix) {
            Some((_, pass, waiting)) => {
                let assignments = &backfill.sql[0][prefix.len()..];
                pass.sql[0] = format!("{}, {assignments}", pass.sql[0]);
                pass.what = format!("{}; {}", pass.what, backfill.what);
                waiting.extend(after.iter().cloned());
            }
            None => self
                .pending
                .push((prefix, backfill.clone(), after.to_vec())),
        }
    }

    fn flush(&mut self, expand: &mut Vec<PhaseUnit>) {
        for (_, pass, waiting) in self.pending.drain(..) {
            expand.push(pass);
            expand.extend(waiting);
        }
    }
}

/// An operation's expand around its one backfill, when that backfill is `UPDATE t SET ...`
/// without a condition (which another operation's on the same table can join), with its
/// `UPDATE t SET ` prefix.
fn around_backfill(op: &Operation) -> Option<(&[PhaseUnit], &PhaseUnit, &[PhaseUnit], String)> {
    let mut at = op
        .expand
        .iter()
        .enumerate()
        .filter(|(_, u)| u.kind == UnitKind::Backfill)
        .map(|(i, _)| i);
    let (Some(i), None) = (at.next(), at.next()) else {
        return None;
    };
    let sql = op.expand[i].sql.first()?;
    let set = sql.find(" SET ")?;
    if !sql.starts_with("UPDATE ") || contains_ignore_ascii_case(sql, "where") {
        return None;
    }
    Some((
        &op.expand[..i],
        &op.expand[i],
        &op.expand[i + 1..],
        sql[..set + " SET ".len()].to_string(),
    ))
}

/// Neighbouring statements as written run as one script, as an ordinary migration runs them:
/// in one transaction when they can, and each prepared knowing what the ones before it
/// created (`on_drop` leaves alone a table created just before).
fn coalesce_as_written(units: &mut Vec<PhaseUnit>) {
    let mut out: Vec<PhaseUnit> = Vec::with_capacity(units.len());
    for unit in units.drain(..) {
        match out.last_mut() {
            Some(last) if last.kind == UnitKind::AsWritten && unit.kind == UnitKind::AsWritten => {
                last.what = format!("{}; {}", last.what, unit.what);
                let joined = format!(
                    "{};\n{}",
                    last.sql.join(";\n").trim_end().trim_end_matches(';'),
                    unit.sql.join(";\n")
                );
                last.sql = vec![joined];
            }
            _ => out.push(unit),
        }
    }
    *units = out;
}

/// Whether the column `column` of `table`, a foreign key's column, references a key that a
/// later statement of the file changes to the same type: that change takes this one in.
async fn key_changed_elsewhere(
    client: &Client,
    statements: &[OnlineStatement],
    i: usize,
    table: &catalog::TableFacts,
    column: &str,
) -> Result<bool, RunError> {
    let Some(SchemaChange::AlterType {
        type_text,
        using: None,
        ..
    }) = statements[i].changes.as_ref().and_then(|c| c.first())
    else {
        return Ok(false);
    };
    let keys = change_key::referenced(client, table, column).await?;
    if keys.is_empty() {
        return Ok(false);
    }
    let Some(target) = catalog::type_name(client, type_text).await? else {
        return Ok(false);
    };
    for later in &statements[i + 1..] {
        if change_key::does_same_change(client, later, &keys, &target).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let cut = pgshift_sql::ident::clip(line, 80);
    if cut.len() < line.len() {
        format!("{cut}...")
    } else {
        line.to_string()
    }
}
