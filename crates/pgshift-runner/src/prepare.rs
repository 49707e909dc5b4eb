//! The one place the runner reads a migration's SQL: a script becomes [`Prepared`], typed
//! steps grouped into units, each step carrying its facts ([`crate::units::StepFacts`]: what
//! it locks and on which tables, whether it must run outside a transaction, how to tell it
//! landed), and each statement as written carrying what it does ([`StatementFacts`]: effects,
//! safe rewrite, breaking changes, data it drops). `up`, `down`, `plan`, `trace`, the guard
//! and `on_drop` read these facts; none of them parses SQL or looks at a parse tree.
//!
//! The facts come from pgshift-lint's knowledge (`statement_effects`, `safe_rewrite`,
//! `breaking_changes`), walked with its [`Context`] so that "this table was created earlier
//! in this migration" and the live type of a retyped column are known: the prediction
//! `check` prints, the lock `plan` estimates, the lock the guard looks before and the lock
//! `trace` compares are one computation.
//!
//! A script is read as a [`StatementWalk`]: a large one is parsed a run of statements at a
//! time, in each pass that needs its trees, and no tree outlives its pass, so a 50 MB file of
//! `INSERT`s costs a few times its size, not the hundred times its trees would.

use std::collections::HashMap;
use std::ops::Range;

use pgshift_db::catalog::RelationKind;
use pgshift_db::DbError;
use pgshift_lint::{
    breaking_changes, statement_effects, BreakingChange, Context, Direction, Effect, PgVersion,
    SafeRewrite,
};
use pgshift_source::Script;
use pgshift_sql::ident::QualifiedName;
use pgshift_sql::protobuf::{AlterTableType, DropBehavior, ObjectType};
use pgshift_sql::{NodeEnum, StatementWalk};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::backup::{self, PlannedDump};
use crate::error::RunError;
use crate::options::{OnDrop, RunOptions};
use crate::small_tables::SmallForm;
use crate::units::{units_as_written, Execution};

/// What the steps are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `up`: safe rewrites unless `exact`, then `on_drop`.
    Apply,
    /// `plan`: as `Apply`, and the statements' facts are kept for the report.
    Plan,
    /// `down`: safe rewrites unless `exact`; `on_drop` concerns the up direction only.
    Revert,
    /// `trace`: the statements exactly as written, to compare with the prediction.
    Trace,
}

impl Purpose {
    /// `plan` and `trace` read each statement's facts after; `up` and `down` only run the
    /// steps, so theirs are dropped once the rewrites and `on_drop` have read them (a large
    /// file's facts would otherwise be held twice, once per statement and once per step).
    fn keeps_statements(self) -> bool {
        matches!(self, Purpose::Plan | Purpose::Trace)
    }
}

/// A script ready to run.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub exec: Execution,
    /// The `pg_dump` to take first (`on_drop = "pg_dump"`).
    pub dump: Option<PlannedDump>,
    /// The script as written, to run instead of `exec` when its relations are small and free
    /// ([`crate::small_tables`]); for `up`, `down` and `plan` only.
    pub small: Option<SmallForm>,
    /// Each statement as written, in order; for [`Purpose::Apply`] and [`Purpose::Revert`],
    /// whose callers only run the steps, none (their rewrites and drops are in the steps).
    pub statements: Vec<StatementFacts>,
}

/// One statement as written, and what it does.
#[derive(Debug, Clone)]
pub struct StatementFacts {
    /// Its bytes in the file.
    pub span: Range<usize>,
    /// What it locks, rewrites and scans, as written.
    pub effects: Vec<Effect>,
    /// What runs instead, when a mechanical safe form exists.
    pub rewrite: Option<SafeRewrite>,
    /// What in it breaks code running against the old schema.
    pub breaking: Vec<BreakingChange>,
    /// The data it drops, for `on_drop`.
    pub drops: Option<Box<Drops>>,
}

/// Data a statement drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drops {
    /// `DROP TABLE a, b, ...`.
    Tables {
        /// Every table named.
        all: Vec<QualifiedName>,
        /// Those not created earlier in this migration.
        existing: Vec<QualifiedName>,
        if_exists: bool,
        cascade: bool,
    },
    /// `ALTER TABLE t DROP COLUMN c` as the statement's only subcommand, on a table not
    /// created earlier in this migration.
    Column {
        table: QualifiedName,
        column: String,
    },
}

/// Turns a script into units of typed steps and statement facts. Reads the catalog (the
/// live type of each column an `ALTER ... TYPE` names; for `Apply`, what `on_drop` needs)
/// and changes nothing. `ctx` carries what earlier scripts of the run established; it leaves
/// having walked this script's steps as they will run.
pub async fn prepare(
    client: &pgshift_db::Connection,
    version: &str,
    script: &Script,
    options: &RunOptions,
    purpose: Purpose,
    ctx: &mut Context,
) -> Result<Prepared, RunError> {
    let walk = pgshift_sql::walk_range(&script.file_text, script.range.clone());
    let written = units_as_written(version, script, &walk)?;
    // On a fresh database every table is one the run made: no safe rewrite applies, the
    // guard looks at none of them, and what the catalog would say about them is not needed.
    if !ctx.all_made_in_run() {
        assume_live_column_types(client, &walk, ctx).await?;
        assume_live_relations(client, &walk, ctx).await?;
    }
    let runner_transaction = written.no_transaction_reason.is_none();
    let mut statements = analyse(
        &walk,
        &script.file_text,
        ctx.clone(),
        runner_transaction,
        purpose.keeps_statements(),
    );
    if matches!(purpose, Purpose::Apply | Purpose::Plan) && !options.exact {
        crate::existing_rows::add_looks(client, &mut statements).await?;
    }
    // Not where `on_drop` changes what a drop runs: the form as written would lose that.
    let small = (matches!(purpose, Purpose::Apply | Purpose::Plan | Purpose::Revert)
        && options.small_tables_as_written
        && !options.exact
        && !options.new_tables_as_in_use
        && (purpose == Purpose::Revert || options.on_drop == OnDrop::Drop))
        .then(|| small_form(&written, &walk, &statements, ctx))
        .flatten();
    let exec = with_rewrites(
        written,
        &statements,
        options.exact || purpose == Purpose::Trace,
    );
    let (exec, dump) = if matches!(purpose, Purpose::Apply | Purpose::Plan) {
        backup::protect(
            client,
            version,
            exec,
            &statements,
            options.on_drop,
            &options.pg_dump_dir,
        )
        .await?
    } else {
        (exec, None)
    };
    let statements = if purpose.keeps_statements() {
        statements
    } else {
        Vec::new()
    };
    // The form as written gets its steps' facts (the guard reads them) from the same walk,
    // from the context before the script.
    let small = small.map(|mut form| {
        let mut written = Execution {
            path: exec.path.clone(),
            file_text: exec.file_text.clone(),
            units: vec![form.unit],
            no_transaction_reason: None,
        };
        walk_steps(&mut written, &mut ctx.clone(), Some(&walk));
        form.unit = written.units.remove(0);
        form
    });
    let mut exec = exec;
    walk_steps(&mut exec, ctx, Some(&walk));
    Ok(Prepared {
        exec,
        dump,
        small,
        statements,
    })
}

/// Prepares a script without a database: safe rewrites (unless `exact`), no `on_drop`, no
/// live column types. For unit tests and callers that only look.
pub fn prepare_offline(
    version: &str,
    script: &Script,
    exact: bool,
    pg: PgVersion,
) -> Result<Prepared, RunError> {
    let walk = pgshift_sql::walk_range(&script.file_text, script.range.clone());
    let written = units_as_written(version, script, &walk)?;
    let runner_transaction = written.no_transaction_reason.is_none();
    let ctx = Context::new(pg, true);
    let statements = analyse(
        &walk,
        &script.file_text,
        ctx.clone(),
        runner_transaction,
        true,
    );
    let mut exec = with_rewrites(written, &statements, exact);
    let mut ctx = ctx;
    walk_steps(&mut exec, &mut ctx, Some(&walk));
    Ok(Prepared {
        exec,
        dump: None,
        small: None,
        statements,
    })
}

/// The as-written form of the script `written` when the rewrites changed it and it qualifies
/// (see [`crate::small_tables`]); `ctx` as before the script (it knows the tables of the
/// indexes the script drops).
fn small_form(
    written: &Execution,
    walk: &StatementWalk<'_>,
    statements: &[StatementFacts],
    ctx: &Context,
) -> Option<SmallForm> {
    let [unit] = written.units.as_slice() else {
        return None;
    };
    let plain = unit.transactional
        && !unit.in_author_transaction
        && unit.when_busy.is_none()
        && unit.backfill().is_none()
        && unit.steps.iter().all(|s| s.copy_data.is_none());
    // A rewrite that already runs the statement as written when its table is free (a small
    // index's drop) needs no other try.
    let rewritten = statements
        .iter()
        .any(|s| s.rewrite.as_ref().is_some_and(|r| !r.as_written_when_free));
    if !plain || !rewritten {
        return None;
    }
    let mut relations: Vec<QualifiedName> = Vec::new();
    // Set too where the work is not bounded by the sizes read.
    let mut user_code = false;
    walk.for_each(|_, statement| {
        match &statement.node {
            NodeEnum::DoStmt(_) | NodeEnum::CallStmt(_) | NodeEnum::SelectStmt(_) => {
                user_code = true;
            }
            // Reindexing reads the whole table, which only the index's name is given for: its
            // table counts, and a table nobody told the context about leaves the size unknown.
            NodeEnum::ReindexStmt(r)
                if r.kind
                    == pgshift_sql::protobuf::ReindexObjectType::ReindexObjectIndex as i32 =>
            {
                let table = r
                    .relation
                    .as_ref()
                    .map(QualifiedName::from_range_var)
                    .and_then(|index| ctx.table_of_index(&index).cloned());
                match table {
                    Some(table) => relations.push(table),
                    None => user_code = true,
                }
            }
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectIndex as i32 => {
                for index in QualifiedName::dropped(d) {
                    relations.extend(ctx.table_of_index(&index).cloned());
                    relations.push(index);
                }
            }
            _ => {}
        }
        for (node, ..) in statement.node.nodes() {
            if let pgshift_sql::NodeRef::RangeVar(rv) = node {
                relations.push(QualifiedName::from_range_var(rv));
            }
        }
    });
    if user_code {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    relations.retain(|r| seen.insert(r.quoted()));
    Some(SmallForm {
        unit: unit.clone(),
        relations,
    })
}

/// The units with each statement's safe rewrite in place, unless `exact`.
fn with_rewrites(written: Execution, statements: &[StatementFacts], exact: bool) -> Execution {
    if exact {
        return written;
    }
    let rewrites: HashMap<usize, SafeRewrite> = statements
        .iter()
        .filter_map(|s| s.rewrite.clone().map(|r| (s.span.start, r)))
        .collect();
    crate::safe::apply_rewrites(written, &rewrites)
}

/// Walks the statements as written with the linter's context: effects, safe rewrite,
/// breaking changes and dropped data, each as of its place in the script. Without `keep`,
/// only the statements with a rewrite or data they drop are kept, without their effects and
/// breaking changes (walked all the same: the context needs them): that is all `up` and
/// `down` read after.
fn analyse(
    walk: &StatementWalk<'_>,
    file_text: &str,
    mut ctx: Context,
    runner_transaction: bool,
    keep: bool,
) -> Vec<StatementFacts> {
    ctx.start_script(runner_transaction, Direction::Up);
    let mut out = Vec::with_capacity(if keep { walk.spans.len() } else { 0 });
    walk.for_each(|_, statement| {
        let rewrite = pgshift_lint::safe_rewrite(statement, file_text, &ctx);
        // The indexes its steps create take their names: a later statement's partitions'
        // indexes are named past them, as PostgreSQL would name them.
        if let Some(r) = &rewrite {
            ctx.assume_taken_names(r.steps.iter().flat_map(|s| index_names(&s.sql)));
        }
        let effects = statement_effects(&statement.node, &ctx);
        let breaking = breaking_changes(&statement.node, &ctx);
        let drops = drops(&statement.node, &ctx).map(Box::new);
        ctx.observe(&statement.node, &effects, statement.span.clone());
        if keep {
            out.push(StatementFacts {
                span: statement.span.clone(),
                effects,
                rewrite,
                breaking,
                drops,
            });
        } else if rewrite.is_some() || drops.is_some() {
            out.push(StatementFacts {
                span: statement.span.clone(),
                effects: Vec::new(),
                rewrite,
                breaking: Vec::new(),
                drops,
            });
        }
    });
    out
}

/// The names of the indexes a generated statement creates: `CREATE INDEX name`, and an index
/// made a constraint `USING INDEX` (it takes the constraint's name).
fn index_names(sql: &str) -> Vec<String> {
    // Only a `CREATE ... INDEX` or a constraint `USING INDEX` names one: no other step is
    // parsed again for it (a small index's drop has a `CONCURRENTLY` step it rarely runs).
    let creates = sql
        .trim_start()
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("create"));
    if !creates && !pgshift_sql::lines::contains_ignore_ascii_case(sql, "using index") {
        return Vec::new();
    }
    let parsed = pgshift_sql::parse(sql);
    let mut out = Vec::new();
    for st in &parsed.statements {
        match &st.node {
            NodeEnum::IndexStmt(i) if !i.idxname.is_empty() => out.push(i.idxname.clone()),
            NodeEnum::AlterTableStmt(a) => {
                for cmd in &a.cmds {
                    if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                        if let Some(NodeEnum::Constraint(c)) =
                            cmd.def.as_ref().and_then(|d| d.node.as_ref())
                        {
                            if !c.indexname.is_empty() && !c.conname.is_empty() {
                                out.push(c.conname.clone());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Fills each step's effects, walking the steps as they will run (rewrites included). A
/// generated step brings its own tree; a step as written gets its statement's from `walk`,
/// which yields the statements in file order, the order steps as written run in. Every tree is
/// dropped after.
fn walk_steps(exec: &mut Execution, ctx: &mut Context, walk: Option<&StatementWalk<'_>>) {
    ctx.start_script(exec.no_transaction_reason.is_none(), Direction::Up);
    let mut steps: Vec<&mut crate::units::Step> = exec
        .units
        .iter_mut()
        .flat_map(|u| u.steps.iter_mut())
        .collect();
    let mut next = 0;
    let fill = |step: &mut crate::units::Step, node: &NodeEnum, ctx: &mut Context| {
        let mut effects = statement_effects(node, ctx);
        ctx.observe(node, &effects, step.origin.clone());
        let targets = fails_unless_tables(node);
        for e in &mut effects {
            e.fails_unless_table = targets.contains(&e.table);
        }
        // A table created earlier in this migration is invisible to other sessions until
        // it commits: nothing waits on its locks, and nothing is there to rewrite. Not one
        // created `IF NOT EXISTS`, which may have been there, in use, all along.
        step.facts.effects = effects
            .into_iter()
            .filter(|e| !ctx.is_table_created_here(&e.table))
            .collect();
    };
    // The generated steps from `next` on, up to the next step as written.
    let generated = |steps: &mut [&mut crate::units::Step], next: &mut usize, ctx: &mut Context| {
        while let Some(step) = steps.get_mut(*next) {
            if step.node.is_none() && step.rewrite.is_none() {
                break;
            }
            if let Some(node) = step.node.take() {
                fill(step, &node, ctx);
            }
            *next += 1;
        }
    };
    if let Some(walk) = walk {
        walk.for_each(|_, statement| {
            generated(&mut steps, &mut next, ctx);
            // The statement's own step, unless a rewrite replaced it (then its steps were
            // generated, and ran above).
            if let Some(step) = steps.get_mut(next) {
                if step.node.is_none() && step.rewrite.is_none() && step.origin == statement.span {
                    fill(step, &statement.node, ctx);
                    next += 1;
                }
            }
        });
    }
    generated(&mut steps, &mut next, ctx);
    // A step as written the walk did not reach (none should be left): its own text, parsed.
    while let Some(step) = steps.get_mut(next) {
        let node = step.node.take().or_else(|| {
            pgshift_sql::parse(step.sql())
                .statements
                .into_iter()
                .next()
                .map(|s| std::sync::Arc::new(s.node))
        });
        if let Some(node) = node {
            fill(step, &node, ctx);
        }
        next += 1;
    }
}

/// The data a statement drops, as of its place in the script.
fn drops(node: &NodeEnum, ctx: &Context) -> Option<Drops> {
    match node {
        NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
            let all: Vec<QualifiedName> = QualifiedName::dropped(d).collect();
            let existing = all
                .iter()
                .filter(|n| !ctx.is_new_table(n))
                .cloned()
                .collect();
            Some(Drops::Tables {
                all,
                existing,
                if_exists: d.missing_ok,
                cascade: d.behavior == DropBehavior::DropCascade as i32,
            })
        }
        NodeEnum::AlterTableStmt(a) => {
            let [cmd] = a.cmds.as_slice() else {
                return None;
            };
            let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else {
                return None;
            };
            if cmd.subtype != AlterTableType::AtDropColumn as i32 {
                return None;
            }
            let table = QualifiedName::from_range_var(a.relation.as_ref()?);
            (!ctx.is_new_table(&table)).then(|| Drops::Column {
                table,
                column: cmd.name.clone(),
            })
        }
        _ => None,
    }
}

/// Reads from the catalog the current type of each column an `ALTER COLUMN ... TYPE` of the
/// script names, into `ctx`: the files may not say what an old column's type is, and
/// whether the change rewrites the table depends on it.
async fn assume_live_column_types(
    client: &Client,
    walk: &StatementWalk<'_>,
    ctx: &mut Context,
) -> Result<(), DbError> {
    let mut retyped: Vec<(QualifiedName, String)> = Vec::new();
    walk.for_each(|_, statement| {
        let NodeEnum::AlterTableStmt(a) = &statement.node else {
            return;
        };
        let Some(rv) = &a.relation else { return };
        let table = QualifiedName::from_range_var(rv);
        for cmd in &a.cmds {
            if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                if cmd.subtype == AlterTableType::AtAlterColumnType as i32 {
                    retyped.push((table.clone(), cmd.name.clone()));
                }
            }
        }
    });
    for (table, column) in retyped {
        let row = client
            .query_opt(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                  WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                &[&table.quoted(), &column],
            )
            .await?;
        let Some(type_text) = row.map(|r| r.get::<_, String>(0)) else {
            continue;
        };
        // format_type's text is a type as the grammar reads it; parse it (locally, never
        // run) to get the same normalised form the analyzer uses for the files.
        let probe = pgshift_sql::parse(&format!("CREATE TABLE probe (c {type_text})"));
        if let Some(NodeEnum::CreateStmt(c)) = probe.statements.first().map(|s| &s.node) {
            if let Some(NodeEnum::ColumnDef(col)) =
                c.table_elts.first().and_then(|e| e.node.as_ref())
            {
                if let Some(t) = &col.type_name {
                    ctx.assume_column_type(
                        &table,
                        &column,
                        pgshift_lint::knowledge::casts::TypeSpec::from_type_name(t),
                    );
                }
            }
        }
    }
    Ok(())
}

/// Reads from the catalog which tables an index or constraint of the script is added to are
/// partitioned, with their partitions, and, of the indexes it drops, which are a partitioned
/// table's, the table of each and whether it is small, into `ctx`: their safe forms differ
/// (PostgreSQL builds or drops no index of a partitioned table concurrently; a small index is
/// dropped as written when its table is free; see `pgshift_lint::rewrite`), and the guard
/// looks at a dropped index's table.
async fn assume_live_relations(
    client: &pgshift_db::Connection,
    walk: &StatementWalk<'_>,
    ctx: &mut Context,
) -> Result<(), DbError> {
    let mut tables: Vec<QualifiedName> = Vec::new();
    let mut indexes: Vec<QualifiedName> = Vec::new();
    walk.for_each(|_, statement| match &statement.node {
        NodeEnum::IndexStmt(i) if !i.concurrent => {
            tables.extend(i.relation.as_ref().map(QualifiedName::from_range_var));
        }
        NodeEnum::AlterTableStmt(a) => {
            let adds = a.cmds.iter().any(|c| {
                matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd))
                    if cmd.subtype == AlterTableType::AtAddConstraint as i32)
            });
            if adds {
                tables.extend(a.relation.as_ref().map(QualifiedName::from_range_var));
            }
        }
        NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectIndex as i32 => {
            indexes.extend(QualifiedName::dropped(d));
        }
        _ => {}
    });
    tables.retain(|t| !ctx.is_new_table(t));
    let mut seen = std::collections::HashSet::new();
    tables.retain(|t| seen.insert(t.clone()));
    indexes.retain(|i| seen.insert(i.clone()));
    if tables.is_empty() && indexes.is_empty() {
        return Ok(());
    }
    // Which of them are partitioned, and each index's table and whether it is small, in one
    // round trip (this runs before every migration). The size is the one PostgreSQL last
    // recorded (`relpages`, set by CREATE INDEX, VACUUM and ANALYZE): reading the file's
    // size would lock the index. The table comes as the server prints a `regclass`: qualified
    // only when the search path would not find it.
    let names: Vec<String> = tables
        .iter()
        .chain(&indexes)
        .map(QualifiedName::quoted)
        .collect();
    // Prepared once per session, one name each, sent together: a query of one name plans the
    // same whatever the name, so from its sixth use the server runs its cached plan instead of
    // planning it at every bind (an array of names is planned anew each time); a scalar
    // subquery plans in a fraction of a join's time.
    let facts: Vec<Option<Vec<Option<String>>>> =
        futures_util::future::try_join_all(names.iter().map(|name| async move {
            client
                .query_prepared(
                    "SELECT ARRAY[relkind::text, (relpages <= $2)::text,
                              (SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = c.oid)]
                       FROM pg_class c WHERE oid = to_regclass($1)",
                    &[Type::TEXT, Type::INT4],
                    &[name, &pgshift_lint::SMALL_INDEX_PAGES],
                )
                .await
        }))
        .await?
        .iter()
        .map(|rows| rows.first().map(|r| r.get(0)))
        .collect();
    let field = |f: &Option<Vec<Option<String>>>, i: usize| -> Option<String> {
        f.as_ref().and_then(|v| v.get(i).cloned().flatten())
    };
    let kinds: Vec<Option<RelationKind>> = facts
        .iter()
        .map(|f| field(f, 0).as_deref().and_then(RelationKind::from_relkind))
        .collect();
    let (table_kinds, index_kinds) = kinds.split_at(tables.len().min(kinds.len()));
    for index in indexes
        .iter()
        .zip(index_kinds)
        .filter(|(_, k)| **k == Some(RelationKind::PartitionedIndex))
        .map(|(i, _)| i)
    {
        ctx.assume_partitioned_index(index);
    }
    for (index, f) in indexes.iter().zip(facts.iter().skip(tables.len())) {
        if let Some(table) = field(f, 2).as_deref().and_then(QualifiedName::parse) {
            let small = field(f, 1).as_deref() == Some("true");
            ctx.assume_live_index(index, table, small);
        }
    }
    for table in tables
        .into_iter()
        .zip(table_kinds)
        .filter(|(_, k)| **k == Some(RelationKind::PartitionedTable))
        .map(|(t, _)| t)
    {
        let rows = client
            .query(
                "SELECT n.nspname::text, c.relname::text, t.isleaf, t.level = 1,
                        pn.nspname::text, pc.relname::text
                   FROM pg_class r
                   CROSS JOIN LATERAL pg_partition_tree(r.oid) t
                   JOIN pg_class c ON c.oid = t.relid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_class pc ON pc.oid = t.parentrelid
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                  WHERE r.oid = to_regclass($1) AND r.relkind = 'p' AND t.level > 0
                    AND c.relkind IN ('r', 'p')
                  ORDER BY t.level, c.relname",
                &[&table.quoted()],
            )
            .await?;
        let parts: Vec<pgshift_lint::context::PartitionOf> = rows
            .iter()
            .map(|r| pgshift_lint::context::PartitionOf {
                name: QualifiedName::qualified(r.get::<_, String>(0), r.get::<_, String>(1)),
                // The first level's parent as the script names it: the statement's own
                // objects (an index's name) are resolved the way the statement resolves them.
                parent: if r.get::<_, bool>(3) {
                    table.clone()
                } else {
                    QualifiedName::qualified(r.get::<_, String>(4), r.get::<_, String>(5))
                },
                leaf: r.get(2),
            })
            .collect();
        // The names already taken near them: a partition's index gets the name PostgreSQL
        // would give it, numbered past the ones in use.
        let mut quoted: Vec<String> = vec![table.quoted()];
        quoted.extend(parts.iter().map(|p| p.name.quoted()));
        let taken = client
            .query(
                "WITH t AS (SELECT c.relname, c.relnamespace FROM unnest($1::text[]) q(n)
                              JOIN pg_class c ON c.oid = to_regclass(q.n))
                 SELECT c.relname::text FROM pg_class c
                  WHERE c.relnamespace IN (SELECT relnamespace FROM t)
                    AND EXISTS (SELECT 1 FROM t WHERE left(c.relname, length(t.relname)) = t.relname)",
                &[&quoted],
            )
            .await?;
        ctx.assume_taken_names(taken.iter().map(|r| r.get::<_, String>(0)));
        ctx.assume_partitions(&table, parts);
    }
    Ok(())
}

/// The relations `node` fails on unless each is a table (or a partitioned or foreign table):
/// the target of `CREATE INDEX`, `DROP TABLE`, `TRUNCATE`, and of an `ALTER TABLE` whose every
/// subcommand adds or drops a column or constraint, validates one, or changes a column's type
/// or `NOT NULL` (on a view: "ALTER action ... cannot be performed on relation", checked on
/// 15). Empty for anything else: the guard then asks what the relation is before it locks it
/// ([`crate::guard::lock_nowait`]).
fn fails_unless_tables(node: &NodeEnum) -> Vec<QualifiedName> {
    match node {
        NodeEnum::IndexStmt(i) => i
            .relation
            .as_ref()
            .map(QualifiedName::from_range_var)
            .into_iter()
            .collect(),
        NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
            QualifiedName::dropped(d).collect()
        }
        NodeEnum::TruncateStmt(t) => t
            .relations
            .iter()
            .filter_map(|r| match &r.node {
                Some(NodeEnum::RangeVar(rv)) => Some(QualifiedName::from_range_var(rv)),
                _ => None,
            })
            .collect(),
        NodeEnum::AlterTableStmt(a) if a.objtype == ObjectType::ObjectTable as i32 => {
            let table_only = |c: &pgshift_sql::protobuf::Node| {
                matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd)) if [
                    AlterTableType::AtAddColumn,
                    AlterTableType::AtDropColumn,
                    AlterTableType::AtAlterColumnType,
                    AlterTableType::AtSetNotNull,
                    AlterTableType::AtDropNotNull,
                    AlterTableType::AtAddConstraint,
                    AlterTableType::AtDropConstraint,
                    AlterTableType::AtValidateConstraint,
                ]
                .iter()
                .any(|t| *t as i32 == cmd.subtype))
            };
            if !a.cmds.is_empty() && a.cmds.iter().all(table_only) {
                a.relation
                    .as_ref()
                    .map(QualifiedName::from_range_var)
                    .into_iter()
                    .collect()
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// One statement as written, as the online planner ([`crate::online`]) reads it.
#[derive(Debug, Clone)]
pub struct OnlineStatement {
    pub text: String,
    /// 1-based line in the file, for messages.
    pub line: usize,
    /// The schema changes it makes, when it is one of the shapes an online change is made
    /// of.
    pub changes: Option<Vec<pgshift_sql::SchemaChange>>,
    /// Its parts, when it is an `UPDATE` that can run as a backfill.
    pub update: Option<pgshift_sql::UpdateParts>,
    /// `-- pgshift:expand` / `-- pgshift:contract` written before it.
    pub phase: Option<pgshift_sql::Phase>,
    /// `-- pgshift:backfill` written before it.
    pub backfill_marked: bool,
    /// `-- pgshift:rename view|copy` written before it.
    pub rename: Option<pgshift_sql::RenameMechanism>,
    /// What it creates, so a rollback can drop it.
    pub creates: Option<Created>,
    /// It rewrites a table (a type change that is not binary-compatible, ...).
    pub rewrites: bool,
    /// It drops something old code may still read (a table, a view, a column), so it belongs
    /// to the contract.
    pub destructive: bool,
    /// The tables it locks (as written).
    pub tables: Vec<QualifiedName>,
    /// `BEGIN`, `COMMIT`, `ROLLBACK`, ... written by the author.
    pub transaction_control: bool,
    /// `SET search_path` (or `set_config('search_path', ...)`): names after it resolve
    /// elsewhere than the planner's session would resolve them.
    pub sets_search_path: bool,
    /// A table of that name is created earlier in this migration.
    pub on_new_table: bool,
    /// The CHECK constraint it adds to an existing table (`ADD CONSTRAINT ... CHECK`, not
    /// `NOT VALID`).
    pub adds_check: Option<AddedCheck>,
    /// The types (and domains) a `DROP TYPE` / `DROP DOMAIN` drops.
    pub drops_types: Vec<QualifiedName>,
    /// The new name an `ALTER TYPE ... RENAME TO` gives a type (or domain).
    pub renames_type_to: Option<String>,
}

/// A CHECK constraint a statement adds.
#[derive(Debug, Clone)]
pub struct AddedCheck {
    pub table: QualifiedName,
    /// As written, or the name PostgreSQL gives it.
    pub name: String,
    /// The expression, as PostgreSQL prints it.
    pub expr: String,
}

/// An object a statement as written creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Table(QualifiedName),
    /// An index, and whether it was built CONCURRENTLY.
    Index(QualifiedName),
    /// A type: an enum, a composite type, a range or a domain.
    Type(QualifiedName),
}

/// A migration's statements for the online planner, and whether the file opts out
/// (`-- pgshift:online off`). Reads the live column types, as `prepare` does, to tell which
/// type changes rewrite the table. None when no statement is one an online change is made of
/// (nor carries a phase marker): the planner would run the file as written anyway, and a
/// large file of `INSERT`s is not copied statement by statement for nothing.
pub async fn online_statements(
    client: &Client,
    version: &str,
    script: &Script,
    pg: PgVersion,
) -> Result<(Vec<OnlineStatement>, bool), RunError> {
    let walk = pgshift_sql::walk_range(&script.file_text, script.range.clone());
    // Syntax errors, meta-commands and misplaced markers are reported as `up` reports them.
    units_as_written(version, script, &walk)?;
    let text = &script.file_text;
    let off = walk.script.comments.iter().any(|c| {
        pgshift_sql::parse_directive(c.text(text)) == Some(pgshift_sql::Directive::OnlineOff)
    });
    let directives_of = |i: usize| -> Vec<pgshift_sql::Directive> {
        walk.comment_indices_for(text, i, script.range.start)
            .into_iter()
            .filter_map(|c| pgshift_sql::parse_directive(walk.script.comments[c].text(text)))
            .collect()
    };
    let mut candidates = false;
    walk.for_each(|i, statement| {
        candidates = candidates
            || directives_of(i)
                .iter()
                .any(|d| matches!(d, pgshift_sql::Directive::Phase(_)))
            || pgshift_sql::schema_changes(statement.text(text), &statement.node).is_some()
            || pgshift_sql::update_parts(statement.text(text), &statement.node).is_ok();
    });
    if off || !candidates {
        return Ok((Vec::new(), off));
    }
    let mut ctx = Context::new(pg, true);
    assume_live_column_types(client, &walk, &mut ctx).await?;
    ctx.start_script(true, Direction::Up);
    let lines = pgshift_sql::LineIndex::new(text);
    let mut out = Vec::with_capacity(walk.spans.len());
    walk.for_each(|i, statement| {
        let written = statement.text(text);
        let directives = directives_of(i);
        let effects = statement_effects(&statement.node, &ctx);
        let changes = pgshift_sql::schema_changes(written, &statement.node);
        let on_new_table = changes
            .as_ref()
            .and_then(|c| c.first())
            .is_some_and(|c| ctx.is_new_table(c.table()))
            || effects.iter().any(|e| ctx.is_new_table(&e.table));
        let creates = match &statement.node {
            NodeEnum::CreateStmt(c) => c
                .relation
                .as_ref()
                .map(|r| Created::Table(QualifiedName::from_range_var(r))),
            NodeEnum::IndexStmt(ix) if !ix.idxname.is_empty() => {
                let schema = ix.relation.as_ref().map(|r| r.schemaname.as_str());
                Some(Created::Index(QualifiedName::new(schema, &ix.idxname)))
            }
            NodeEnum::CreateEnumStmt(e) => {
                QualifiedName::from_names(&e.type_name).map(Created::Type)
            }
            NodeEnum::CreateDomainStmt(d) => {
                QualifiedName::from_names(&d.domainname).map(Created::Type)
            }
            NodeEnum::CompositeTypeStmt(c) => c
                .typevar
                .as_ref()
                .map(|r| Created::Type(QualifiedName::from_range_var(r))),
            NodeEnum::CreateRangeStmt(r) => {
                QualifiedName::from_names(&r.type_name).map(Created::Type)
            }
            _ => None,
        };
        out.push(OnlineStatement {
            text: written.to_string(),
            line: lines.line_col(text, statement.span.start).line,
            changes,
            update: pgshift_sql::update_parts(written, &statement.node).ok(),
            phase: directives.iter().find_map(|d| match d {
                pgshift_sql::Directive::Phase(p) => Some(*p),
                _ => None,
            }),
            backfill_marked: directives.contains(&pgshift_sql::Directive::Backfill),
            rename: directives.iter().find_map(|d| match d {
                pgshift_sql::Directive::Rename(r) => Some(*r),
                _ => None,
            }),
            creates,
            rewrites: effects.iter().any(|e| e.rewrite),
            destructive: destructive(&statement.node),
            tables: effects.iter().map(|e| e.table.clone()).collect(),
            transaction_control: pgshift_sql::transaction_control(&statement.node).is_some(),
            sets_search_path: match &statement.node {
                NodeEnum::VariableSetStmt(v) => v.name.eq_ignore_ascii_case("search_path"),
                _ => pgshift_sql::lines::contains_ignore_ascii_case(written, "search_path"),
            },
            on_new_table,
            adds_check: match pgshift_lint::safe_rewrite(statement, text, &ctx)
                .and_then(|r| r.existing_rows)
            {
                Some(pgshift_lint::ExistingRows::Check { table, name, expr }) => {
                    Some(AddedCheck { table, name, expr })
                }
                _ => None,
            },
            drops_types: dropped_types(&statement.node),
            renames_type_to: match &statement.node {
                NodeEnum::RenameStmt(r) if is_type(r.rename_type) => Some(r.newname.clone()),
                _ => None,
            },
        });
        ctx.observe(&statement.node, &effects, statement.span.clone());
    });
    Ok((out, off))
}

fn is_type(object_type: i32) -> bool {
    object_type == ObjectType::ObjectType as i32 || object_type == ObjectType::ObjectDomain as i32
}

/// The types a `DROP TYPE` or `DROP DOMAIN` names.
fn dropped_types(node: &NodeEnum) -> Vec<QualifiedName> {
    match node {
        NodeEnum::DropStmt(d) if is_type(d.remove_type) => d
            .objects
            .iter()
            .filter_map(|o| match o.node.as_ref()? {
                NodeEnum::TypeName(t) => QualifiedName::from_names(&t.names),
                NodeEnum::List(l) => QualifiedName::from_names(&l.items),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `DROP TABLE`, `DROP VIEW`, `DROP MATERIALIZED VIEW`, or an `ALTER TABLE` that drops a
/// column: what the application's old code may still read. (Dropping an index, a function, a
/// trigger or a constraint breaks no query of it.)
fn destructive(node: &NodeEnum) -> bool {
    match node {
        NodeEnum::DropStmt(d) => [
            ObjectType::ObjectTable,
            ObjectType::ObjectView,
            ObjectType::ObjectMatview,
        ]
        .iter()
        .any(|t| d.remove_type == *t as i32),
        NodeEnum::AlterTableStmt(a) => a.cmds.iter().any(|c| {
            matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd))
                if cmd.subtype == AlterTableType::AtDropColumn as i32)
        }),
        _ => false,
    }
}

/// Units pgshift generated (an online change's phases), each `(transactional, statements)`,
/// with their facts as `prepare` gives them for statements as written: the guard and the
/// progress line read them the same way.
pub fn generated_execution(
    path: &std::path::Path,
    what: &str,
    units: Vec<(bool, Vec<String>)>,
    pg: PgVersion,
) -> Execution {
    let units = units
        .into_iter()
        .map(|(transactional, sqls)| {
            crate::units::Unit::new(
                transactional,
                false,
                sqls.into_iter()
                    .map(|sql| {
                        crate::units::Step::generated(
                            sql,
                            0..0,
                            format!("{}{what}", crate::units::ONLINE_STEP),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let mut exec = Execution {
        path: path.to_path_buf(),
        file_text: std::sync::Arc::from(""),
        units,
        no_transaction_reason: Some("an online change runs unit by unit".into()),
    };
    walk_steps(&mut exec, &mut Context::new(pg, true), None);
    exec
}

/// One `UPDATE` run by the backfill engine, as a unit.
pub fn backfill_execution(
    path: &std::path::Path,
    what: &str,
    sql: &str,
    pg: PgVersion,
) -> Result<Execution, RunError> {
    let mut exec = generated_execution(path, what, vec![(false, vec![sql.to_string()])], pg);
    let step = &mut exec.units[0].steps[0];
    let parsed = pgshift_sql::parse(sql);
    let parts = parsed
        .statements
        .first()
        .ok_or_else(|| RunError::Usage(format!("the backfill `{sql}` is empty")))
        .and_then(|s| {
            pgshift_sql::update_parts(sql, &s.node).map_err(|reason| {
                RunError::Usage(format!("`{sql}` cannot run as a backfill: {reason}"))
            })
        })?;
    step.facts.backfill = Some(Box::new(parts));
    Ok(exec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each step's SQL and the tables and locks its effects name.
    fn steps_and_effects(p: &Prepared) -> Vec<(String, Vec<String>)> {
        p.exec
            .units
            .iter()
            .flat_map(|u| &u.steps)
            .map(|s| {
                let effects = s
                    .facts
                    .effects
                    .iter()
                    .map(|e| format!("{} {:?}", e.table.name, e.lock))
                    .collect();
                (s.sql().to_string(), effects)
            })
            .collect()
    }

    #[test]
    fn a_large_script_read_a_run_at_a_time_gets_the_facts_it_gets_read_whole() {
        // The same statements after 8 bytes and after 100 KB of comments-free filler: the
        // second is parsed in runs, each step as written getting its tree from a second walk.
        let tail = "CREATE TABLE fresh (id int);
INSERT INTO fresh VALUES (1);
CREATE INDEX accounts_owner ON accounts (owner);
ALTER TABLE accounts ADD CONSTRAINT positive CHECK (balance >= 0);
INSERT INTO accounts (owner) VALUES ('x');
DROP TABLE fresh;
";
        let filler: String = (0..3000)
            .map(|i| format!("INSERT INTO ledger (id, note) VALUES ({i}, 'entry number {i}');\n"))
            .collect();
        assert!(filler.len() > 2 * 64 * 1024);
        let small = format!("SELECT 1;\n{tail}");
        let large = format!("{filler}{tail}");
        let prepare = |sql: &str| {
            let script = pgshift_source::from_text("m.sql", sql).up;
            prepare_offline("1", &script, false, PgVersion::DEFAULT).expect("prepared")
        };
        let small = prepare(&small);
        let large = prepare(&large);
        let small_steps = steps_and_effects(&small);
        let large_steps = steps_and_effects(&large);
        assert_eq!(large_steps.len(), 3000 + small_steps.len() - 1);
        assert_eq!(
            &large_steps[large_steps.len() - (small_steps.len() - 1)..],
            &small_steps[1..],
            "the tail's steps and effects"
        );
        // What the facts say: the rewrite ran (CONCURRENTLY, NOT VALID + VALIDATE), the new
        // table's statements lock nothing anyone waits on, the filler locks the ledger.
        let sqls: Vec<&str> = large_steps.iter().map(|(s, _)| s.as_str()).collect();
        assert!(
            sqls.iter().any(|s| s.contains("CONCURRENTLY")),
            "{:?}",
            &sqls[3000..]
        );
        assert!(
            sqls.iter().any(|s| s.contains("NOT VALID")),
            "{:?}",
            &sqls[3000..]
        );
        let effects_of = |needle: &str| {
            large_steps
                .iter()
                .find(|(s, _)| s.contains(needle))
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| panic!("no step with {needle}"))
        };
        assert_eq!(effects_of("INSERT INTO fresh"), Vec::<String>::new());
        assert_eq!(
            effects_of("(0, 'entry number 0')"),
            vec!["ledger RowExclusive"]
        );
        assert_eq!(
            effects_of("INSERT INTO accounts"),
            vec!["accounts RowExclusive"]
        );
        assert_eq!(large.statements.len(), 3000 + 6);
        match large.statements.last().and_then(|s| s.drops.as_deref()) {
            Some(Drops::Tables { all, existing, .. }) => {
                assert_eq!(all.len(), 1);
                assert!(
                    existing.is_empty(),
                    "created in this migration: {existing:?}"
                );
            }
            other => panic!("the DROP's facts: {other:?}"),
        }
        // Without the walk (a step as written it never reached), a step's own text is read.
        let script = pgshift_source::from_text("m.sql", &format!("SELECT 1;\n{tail}")).up;
        let walk = pgshift_sql::walk_range(&script.file_text, script.range.clone());
        let mut exec = units_as_written("1", &script, &walk).expect("units");
        walk_steps(&mut exec, &mut Context::new(PgVersion::DEFAULT, true), None);
        let own = steps_and_effects(&Prepared {
            exec,
            dump: None,
            small: None,
            statements: Vec::new(),
        });
        assert!(own
            .iter()
            .any(|(s, e)| s.starts_with("INSERT INTO accounts")
                && e == &vec!["accounts RowExclusive".to_string()]));
        // No tree outlives the walk.
        assert!(large
            .exec
            .units
            .iter()
            .flat_map(|u| &u.steps)
            .all(|s| s.node.is_none()));
    }
}
