//! An added column with a value for the rows that exist, online — the Rails/Django triple
//! `ADD COLUMN c T` + `UPDATE t SET c = expr` + `ALTER c SET NOT NULL`, an
//! `ADD COLUMN c T NOT NULL DEFAULT <volatile>` (which would rewrite the table), and the
//! same for an existing column: `UPDATE t SET c = x WHERE c IS NULL` + `SET NOT NULL`.
//!
//! - expand: the column, nullable and without default; a trigger that fills it for rows old
//!   code writes without it (`expr` computed from the row being written); the rows that
//!   exist backfilled in batches by the `UPDATE` as written; NOT NULL proved by
//!   `CHECK NOT VALID` + `VALIDATE`. A volatile default is set on the column instead of a
//!   trigger (new rows get it) and only NULL rows are backfilled.
//! - contract, one transaction: the trigger goes; `SET NOT NULL` (no scan: the proof is
//!   there); the default as written.
//! - rollback: the trigger and the column (or, for an existing column, the proof) go.
//!
//! During the window a NULL written to the column is replaced by the fill value.

use pgshift_sql::ident::{quote_ident, QualifiedName};
use pgshift_sql::{SchemaChange, UpdateParts};
use tokio_postgres::Client;

use super::change_type::{finish_not_null, lock_table, prove_not_null};
use super::sync::{self, object_name, Triggers};
use super::{refusal, OpInput, Operation, PhaseUnit};
use crate::error::RunError;
use crate::prepare::OnlineStatement;

/// The column as the `ADD COLUMN` writes it.
pub struct Added<'a> {
    pub column: &'a str,
    pub type_text: &'a str,
    pub default: Option<&'a str>,
    pub not_null: bool,
}

/// The statements after an `ADD COLUMN` that belong to it.
#[derive(Debug, Default)]
pub struct Fill {
    /// `UPDATE t SET c = expr [WHERE ...]`, assigning only the column.
    pub update: Option<(usize, UpdateParts)>,
    /// `ALTER TABLE t ALTER c SET NOT NULL`.
    pub set_not_null: Option<usize>,
}

impl Fill {
    pub fn consumed(&self) -> Vec<usize> {
        self.update
            .iter()
            .map(|(j, _)| *j)
            .chain(self.set_not_null)
            .collect()
    }
}

fn same_table(a: &QualifiedName, b: &QualifiedName) -> bool {
    a.name == b.name && (a.schema.is_none() || b.schema.is_none() || a.schema == b.schema)
}

/// An `UPDATE` that assigns only `column` of `table`. One marked `-- pgshift:backfill` is the
/// author's choice of how it runs (a backfill within an ordinary migration) and is left alone.
fn fills(st: &OnlineStatement, table: &QualifiedName, column: &str) -> Option<UpdateParts> {
    if st.backfill_marked || st.phase.is_some() {
        return None;
    }
    let u = st.update.as_ref()?;
    (same_table(&u.table, table) && u.assignments.len() == 1 && u.assignments[0].column == column)
        .then(|| u.clone())
}

/// The fill and the `SET NOT NULL` written after statement `i` for `column`.
pub fn find_fill(
    statements: &[OnlineStatement],
    i: usize,
    table: &QualifiedName,
    column: &str,
) -> Fill {
    let mut fill = Fill::default();
    for (j, st) in statements.iter().enumerate().skip(i + 1) {
        if fill.update.is_none() {
            if let Some(u) = fills(st, table, column) {
                fill.update = Some((j, u));
                continue;
            }
        }
        let sets_not_null = st.phase.is_none()
            && st.changes.as_ref().is_some_and(|cs| {
                cs.len() == 1
                    && matches!(&cs[0], SchemaChange::SetNotNull { table: t, column: c }
                    if same_table(t, table) && c == column)
            });
        if sets_not_null && fill.set_not_null.is_none() {
            fill.set_not_null = Some(j);
        }
    }
    fill
}

/// The `UPDATE` before statement `i` (a `SET NOT NULL`) that fills `column`.
pub fn find_fill_before(
    statements: &[OnlineStatement],
    i: usize,
    table: &QualifiedName,
    column: &str,
) -> Option<(usize, UpdateParts)> {
    statements[..i]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(j, st)| fills(st, table, column).map(|u| (j, u)))
}

/// The trigger that fills `column` from the row, for rows written without it.
fn fill_trigger(t: &QualifiedName, column: &str, update: &UpdateParts) -> Triggers {
    let expr = &update.assignments[0].expression;
    let mut names = vec![t.name.as_str()];
    if let Some(alias) = &update.alias {
        names.push(alias);
    }
    match pgshift_sql::change::row_expression(expr, &names) {
        Some(row) => sync::fill(t, column, &row),
        None => {
            // It reads more than the row (a subquery): evaluate it over the row as a relation
            // named as the statement names the table.
            let mut trigger = sync::fill(t, column, "NULL");
            let alias = update.alias.as_deref().unwrap_or(&t.name);
            trigger.body = format!(
                "  SELECT {expr} INTO NEW.{} FROM (SELECT NEW.*) AS {};",
                quote_ident(column),
                quote_ident(alias)
            );
            trigger.body = format!("#variable_conflict use_column\n{}", trigger.body);
            trigger
        }
    }
}

/// An added column, when it needs an online change: `None` when it is instant as written (no
/// fill, a constant default or none).
pub async fn plan_added(
    _client: &Client,
    input: &OpInput<'_>,
    added: &Added<'_>,
    fill: &Fill,
) -> Result<Option<Operation>, RunError> {
    let (m, st, table) = (input.migration, input.statement, input.table);
    if fill.update.is_none() && !st.rewrites {
        return Ok(None);
    }
    if table.column(added.column).is_some() {
        return Err(refusal(
            m,
            st.line,
            format!("table {} already has a column {}", table.name, added.column),
        ));
    }
    let t = &table.name;
    let c = quote_ident(added.column);
    let mut setup = vec![format!(
        "ALTER TABLE {} ADD COLUMN {c} {}",
        t.quoted(),
        added.type_text
    )];
    let mut contract = vec![lock_table(t)];
    let mut rollback = Vec::new();
    // A constant default (no table rewrite) is added with the column, as written: the rows
    // that exist and the rows written meanwhile get it, as they would have; the UPDATE as
    // written then runs as the backfill (rows it should not change keep the default).
    let constant_default = added.default.filter(|_| !input.statement.rewrites);
    let backfill = match (&fill.update, constant_default) {
        (Some((_, update)), Some(default)) => {
            setup[0].push_str(&format!(" DEFAULT {default}"));
            update_sql(update, false)
        }
        (Some((_, update)), None) => {
            let trigger = fill_trigger(t, added.column, update);
            setup.extend(trigger.create(t));
            contract.extend(trigger.drop(t));
            rollback.extend(trigger.drop(t));
            update_sql(update, true)
        }
        (None, _) => {
            // A volatile default: new rows get it from the column; the rows that exist are
            // filled where NULL.
            let default = added.default.unwrap_or("NULL");
            setup.push(format!(
                "ALTER TABLE {} ALTER COLUMN {c} SET DEFAULT {default}",
                t.quoted()
            ));
            format!(
                "UPDATE {} SET {c} = {default} WHERE {c} IS NULL",
                t.quoted()
            )
        }
    };
    let mut expand = vec![
        PhaseUnit::transaction(format!("add {t}.{}", added.column), setup),
        PhaseUnit::backfill(format!("backfill {t}.{}", added.column), backfill),
    ];
    let check = object_name("nn", &t.name, added.column);
    if added.not_null {
        expand.extend(prove_not_null(t, added.column, &check));
        contract.extend(finish_not_null(t, added.column, &check));
    }
    if let (Some(default), Some(_), None) = (added.default, &fill.update, constant_default) {
        contract.push(format!(
            "ALTER TABLE {} ALTER COLUMN {c} SET DEFAULT {default}",
            t.quoted()
        ));
    }
    rollback.push(format!(
        "ALTER TABLE {} DROP COLUMN IF EXISTS {c}",
        t.quoted()
    ));
    Ok(Some(Operation {
        summary: format!(
            "add {t}.{} {}{}, filled for the rows that exist",
            added.column,
            added.type_text,
            if added.not_null { " NOT NULL" } else { "" }
        ),
        table: t.to_string(),
        table_oid: table.oid,
        view_in_place: false,
        other_tables: Vec::new(),
        preflight: fill_preflight(fill),
        not_undone: Vec::new(),
        caveats: Vec::new(),
        expand,
        contract: vec![
            PhaseUnit::transaction(
                format!("finish {t}.{} (one lock on {t})", added.column),
                contract,
            ),
            super::change_type::analyze(t, &[added.column]),
        ],
        rollback: vec![PhaseUnit::transaction(
            format!("drop {t}.{}", added.column),
            rollback,
        )],
    }))
}

/// Computes the fill for a sample of the rows it will fill, before anything is written.
fn fill_preflight(fill: &Fill) -> Vec<super::Preflight> {
    let Some((_, update)) = &fill.update else {
        return Vec::new();
    };
    let mut from = update.table.quoted();
    if let Some(alias) = &update.alias {
        from.push_str(&format!(" AS {}", quote_ident(alias)));
    }
    let filter = update
        .filter
        .as_ref()
        .map(|f| format!(" WHERE {f}"))
        .unwrap_or_default();
    vec![super::Preflight {
        sql: format!(
            "SELECT count(v) FROM (SELECT ({}) AS v FROM {from}{filter} LIMIT {}) s",
            update.assignments[0].expression,
            super::PREFLIGHT_ROWS
        ),
        failing: format!(
            "the value `{}` cannot be computed for every row",
            update.assignments[0].expression
        ),
        lossy: false,
    }]
}

/// The fill's UPDATE: as the author wrote it (table, alias, assignment, condition), or, with
/// `missing_only`, restricted to rows without a value: one the application wrote meanwhile (or
/// that the fill trigger computed from a row changed since) is not computed again.
fn update_sql(update: &UpdateParts, missing_only: bool) -> String {
    let mut sql = format!(
        "UPDATE {}{}",
        if update.only { "ONLY " } else { "" },
        update.table.quoted()
    );
    if let Some(alias) = &update.alias {
        sql.push_str(&format!(" AS {}", quote_ident(alias)));
    }
    let a = &update.assignments[0];
    let c = quote_ident(&a.column);
    sql.push_str(&format!(" SET {c} = {}", a.expression));
    match (&update.filter, missing_only) {
        (Some(filter), true) => sql.push_str(&format!(" WHERE {c} IS NULL AND ({filter})")),
        (None, true) => sql.push_str(&format!(" WHERE {c} IS NULL")),
        (Some(filter), false) => sql.push_str(&format!(" WHERE {filter}")),
        (None, false) => {}
    }
    sql
}

/// `UPDATE t SET c = x [WHERE c IS NULL]` + `SET NOT NULL` of an existing column.
pub async fn plan_not_null(
    _client: &Client,
    input: &OpInput<'_>,
    column: &str,
    update: UpdateParts,
) -> Result<Operation, RunError> {
    let (m, st, table) = (input.migration, input.statement, input.table);
    if table.column(column).is_none() {
        return Err(refusal(
            m,
            st.line,
            format!("table {} has no column {column}", table.name),
        ));
    }
    let t = &table.name;
    let trigger = fill_trigger(t, column, &update);
    let backfill = update_sql(&update, true);
    let fill = Fill {
        update: Some((0, update)),
        set_not_null: None,
    };
    let check = object_name("nn", &t.name, column);
    let mut expand = vec![
        PhaseUnit::transaction(
            format!("fill NULLs of {t}.{column} on write"),
            trigger.create(t),
        ),
        PhaseUnit::backfill(format!("backfill {t}.{column}"), backfill),
    ];
    expand.extend(prove_not_null(t, column, &check));
    let mut contract = vec![lock_table(t)];
    contract.extend(trigger.drop(t));
    contract.extend(finish_not_null(t, column, &check));
    let mut rollback = trigger.drop(t);
    rollback.push(format!(
        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
        t.quoted(),
        quote_ident(&check)
    ));
    Ok(Operation {
        summary: format!("fill the NULLs of {t}.{column}, then SET NOT NULL"),
        table: t.to_string(),
        table_oid: table.oid,
        view_in_place: false,
        other_tables: Vec::new(),
        preflight: fill_preflight(&fill),
        not_undone: Vec::new(),
        caveats: Vec::new(),
        expand,
        contract: vec![PhaseUnit::transaction(
            format!("SET NOT NULL on {t}.{column} (one lock on {t})"),
            contract,
        )],
        rollback: vec![PhaseUnit::transaction(
            format!("drop the fill trigger of {t}.{column}"),
            rollback,
        )],
    })
}
