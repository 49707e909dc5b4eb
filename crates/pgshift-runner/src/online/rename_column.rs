//! `ALTER TABLE t RENAME COLUMN a TO b`, online: old code keeps reading and writing `a`, new
//! code `b`, both at once. Two mechanisms, picked per rename:
//!
//! - **copy**: a second column kept in step by a two-way trigger (see
//!   [`super::sync::two_way`]). It works for every way an application reaches the table —
//!   `COPY`, `TRUNCATE`, `INSERT ... ON CONFLICT`, `RETURNING`, prepared statements, later
//!   migrations' DDL — at the cost of a copy of the column (a batched backfill).
//!   - expand: column `b` of `a`'s type; `a`'s default moves into the trigger for the window
//!     (so an INSERT from either version looks like a write of one column); backfill `b = a`;
//!     `a`'s indexes built again on `b`, concurrently; NOT NULL proved by `CHECK NOT VALID` +
//!     `VALIDATE`.
//!   - contract, one transaction: the trigger and `a` go, `b` gets the default, NOT NULL, the
//!     indexes' names and the UNIQUE constraints.
//!   - rollback: `b` goes, `a` gets its default back; every row written through `b` meanwhile
//!     was copied to `a`.
//! - **view**: no copy, no trigger: the column is renamed in place (its indexes, constraints,
//!   keys, identity and the views that read it follow), the table takes a name of pgshift's,
//!   and a view with the table's name exposes every column and `b AS a` (automatically
//!   updatable: INSERT, UPDATE, DELETE, `ON CONFLICT`, `RETURNING` and the table's defaults
//!   work through it, as for a [renamed table](super::rename_table)). Through the view,
//!   `COPY ... FROM`, `TRUNCATE` and DDL on the table fail during the window. Not used when a
//!   function names the column in its body (PostgreSQL does not follow a rename there; a
//!   trigger's would fail every write from the expand on).
//!   - expand, one transaction: rename the column, rename the table, create the view.
//!   - contract, one transaction: the view goes, the table takes its name back.
//!   - rollback: the same, then the column takes its old name back.
//!
//! `-- pgshift:rename copy` or `-- pgshift:rename view` before the statement picks one;
//! without it pgshift copies when it can copy the column, and uses the view for what a copy
//! cannot carry (a key column, a column a foreign key references, an identity or generated
//! column, a column that a CHECK, an exclusion constraint, a view, an expression or partial
//! index, or a partition key uses).

use pgshift_sql::ident::{display_ident, quote_ident, QualifiedName};
use pgshift_sql::RenameMechanism;
use tokio_postgres::Client;

use super::catalog::{self, ColumnFacts, ColumnUses};
use super::change_type::{
    finish_not_null, in_partition_key, lock_table, partition_local, prove_not_null,
    rebuild_indexes, unsupported,
};
use super::rename_table::{undo_view_in_place, view_in_place};
use super::sync::{self, object_name};
use super::{refusal, OpInput, Operation, PhaseUnit};
use crate::error::RunError;

pub async fn plan(
    client: &Client,
    input: &OpInput<'_>,
    from: &str,
    to: &str,
) -> Result<Operation, RunError> {
    let (df, dt) = (display_ident(from), display_ident(to));
    let (m, st, table) = (input.migration, input.statement, input.table);
    let Some(col) = table.column(from) else {
        return Err(refusal(
            m,
            st.line,
            format!("table {} has no column {df}", table.name),
        ));
    };
    if table.column(to).is_some() {
        return Err(refusal(
            m,
            st.line,
            format!("table {} already has a column {dt}", table.name),
        ));
    }
    let uses = catalog::column_uses(client, table.oid, col.attnum).await?;
    let copy_blocked = why_not_copy(client, input, col, &uses).await?;
    let hidden = hidden_name(&table.name, from);
    // Whether a view could serve it is asked only when the view may be used: asked for, or
    // the copy cannot carry the column.
    let view_blocked = if st.rename == Some(RenameMechanism::View) || copy_blocked.is_some() {
        match catalog::view_cannot_stand_for(client, table.oid, input.pg).await? {
            Some(why) => Some(why),
            None => why_not_view(client, input, from, &hidden).await?,
        }
    } else {
        None
    };
    let t = &table.name;
    match (st.rename, copy_blocked, view_blocked) {
        (Some(RenameMechanism::View), _, None) | (None, Some(_), None) => {
            plan_view(client, input, from, to, &hidden).await
        }
        (Some(RenameMechanism::View), _, Some(why)) => Err(refusal(
            m,
            st.line,
            format!("to rename {t}.{df} through a view: {why}; `-- pgshift:rename copy` copies the column instead"),
        )),
        (_, Some(why_copy), Some(why_view)) => Err(refusal(
            m,
            st.line,
            format!("to rename {t}.{df}: a copy of the column cannot carry it ({why_copy}), and a view in the table's place cannot stand for it ({why_view})"),
        )),
        (Some(RenameMechanism::Copy), Some(why), None) => Err(refusal(
            m,
            st.line,
            format!("to rename {t}.{df} by a copy: {why}; without `-- pgshift:rename copy` pgshift renames it through a view"),
        )),
        (_, None, _) => {
            let mut op = plan_copy(input, col, &uses, from, to)?;
            // PostgreSQL does not follow a rename into a function body: the function keeps
            // working during the window, where the old column is still there.
            op.caveats = catalog::functions_naming(client, table.oid, &t.name, from)
                .await?
                .into_iter()
                .map(|f| format!(
                    "function {f} names {t}.{df} in its body: it works until `pgshift complete` drops {df} and fails from then on; change it to {dt} before you complete (PostgreSQL does not follow a rename into a function body)"
                ))
                .collect();
            Ok(op)
        }
    }
}

/// The table's name during a view-based rename of `column`: the view has its name.
fn hidden_name(table: &QualifiedName, column: &str) -> QualifiedName {
    QualifiedName::qualified(
        table.schema.clone().unwrap_or_default(),
        object_name("renaming", &table.name, column),
    )
}

/// Why renaming `column` in place would break something at once, if it would: a function
/// that names it (a trigger's would fail every write from the expand on, where a copy keeps
/// the old column until the contract), or pgshift's name for the table is taken.
async fn why_not_view(
    client: &Client,
    input: &OpInput<'_>,
    column: &str,
    hidden: &QualifiedName,
) -> Result<Option<String>, RunError> {
    let table = input.table;
    let functions = catalog::functions_naming(client, table.oid, &table.name.name, column).await?;
    if !functions.is_empty() {
        return Ok(Some(format!(
            "function {} names the column in its body, which a rename in place would break from the expand on; change the function in an earlier migration",
            functions.join(", ")
        )));
    }
    if catalog::table(client, hidden).await?.is_some() {
        return Ok(Some(format!(
            "pgshift's name for the table during the window, {hidden}, is taken"
        )));
    }
    Ok(None)
}

/// Why a copy of the column cannot carry it, if it cannot.
async fn why_not_copy(
    client: &Client,
    input: &OpInput<'_>,
    col: &ColumnFacts,
    uses: &ColumnUses,
) -> Result<Option<String>, RunError> {
    if let Some(why) =
        in_partition_key(input.table, &col.name).or_else(|| unsupported(col, uses, false))
    {
        return Ok(Some(why));
    }
    if let Some(c) = uses.constraints.iter().find(|c| c.kind == "c") {
        return Ok(Some(format!(
            "CHECK constraint {} ({}) names the column",
            c.name, c.definition
        )));
    }
    partition_local(client, input.table, &col.name, "rename").await
}

/// The view-based rename: see the module's documentation.
async fn plan_view(
    client: &Client,
    input: &OpInput<'_>,
    from: &str,
    to: &str,
    hidden: &QualifiedName,
) -> Result<Operation, RunError> {
    let (df, dt) = (display_ident(from), display_ident(to));
    let table = input.table;
    let t = &table.name;
    let (qa, qb) = (quote_ident(from), quote_ident(to));
    let mut expand = vec![
        format!("ALTER TABLE {} RENAME COLUMN {qa} TO {qb}", t.quoted()),
        format!(
            "ALTER TABLE {} RENAME TO {}",
            t.quoted(),
            quote_ident(&hidden.name)
        ),
    ];
    expand.extend(
        view_in_place(
            client,
            table.oid,
            t,
            hidden,
            &format!(", {qb} AS {qa}"),
            input.pg,
        )
        .await?,
    );
    Ok(Operation {
        summary: format!("rename {t}.{df} to {dt} through a view (no copy)"),
        table: t.to_string(),
        table_oid: table.oid,
        view_in_place: true,
        other_tables: Vec::new(),
        preflight: Vec::new(),
        not_undone: Vec::new(),
        caveats: Vec::new(),
        expand: vec![PhaseUnit::transaction(
            format!(
                "rename {t}.{df} to {dt} in place; a view named {} shows both names",
                t.name
            ),
            expand,
        )],
        contract: vec![PhaseUnit::transaction(
            format!("drop the view {t}; the table takes its name back (one lock on {t})"),
            vec![
                lock_table(t),
                format!("DROP VIEW {}", t.quoted()),
                format!(
                    "ALTER TABLE {} RENAME TO {}",
                    hidden.quoted(),
                    quote_ident(&t.name)
                ),
            ],
        )],
        rollback: vec![PhaseUnit::transaction(
            format!("drop the view {t}; the table and {dt} take their names back"),
            undo_view_in_place(
                t,
                hidden,
                &[format!(
                    "ALTER TABLE {} RENAME COLUMN {qb} TO {qa}",
                    t.quoted()
                )],
            ),
        )],
    })
}

/// The copy: see the module's documentation.
fn plan_copy(
    input: &OpInput<'_>,
    col: &ColumnFacts,
    uses: &ColumnUses,
    from: &str,
    to: &str,
) -> Result<Operation, RunError> {
    let (df, dt) = (display_ident(from), display_ident(to));
    let table = input.table;
    let t = &table.name;
    let (qa, qb) = (quote_ident(from), quote_ident(to));
    let ty = &col.type_text;
    let triggers = sync::two_way(t, from, to, col.default.as_deref(), col.has_equality);

    let mut setup = vec![format!("ALTER TABLE {} ADD COLUMN {qb} {ty}", t.quoted())];
    if col.default.is_some() {
        setup.push(format!(
            "ALTER TABLE {} ALTER COLUMN {qa} DROP DEFAULT",
            t.quoted()
        ));
    }
    setup.extend(triggers.create(t));
    let mut expand = vec![
        PhaseUnit::transaction(
            format!("add {t}.{dt}, kept in step with {df} both ways by a trigger"),
            setup,
        ),
        PhaseUnit::backfill(
            format!("backfill {t}.{dt} from {df}"),
            format!("UPDATE {} SET {qb} = {qa}", t.quoted()),
        ),
    ];
    let nn_check = object_name("nn", &t.name, to);
    if col.not_null {
        expand.extend(prove_not_null(t, to, &nn_check));
    }
    let (builds, index_swaps) = rebuild_indexes(
        t,
        &table.partitions,
        &uses.indexes,
        &[(from, to)],
        &[(from, to)],
    );
    expand.extend(builds);

    let mut contract = vec![lock_table(t)];
    contract.extend(triggers.drop(t));
    if let Some(seq) = &uses.owned_sequence {
        contract.push(format!("ALTER SEQUENCE {seq} OWNED BY {}.{qb}", t.quoted()));
    }
    contract.push(format!("ALTER TABLE {} DROP COLUMN {qa}", t.quoted()));
    if let Some(default) = &col.default {
        contract.push(format!(
            "ALTER TABLE {} ALTER COLUMN {qb} SET DEFAULT {default}",
            t.quoted()
        ));
    }
    if col.not_null {
        contract.extend(finish_not_null(t, to, &nn_check));
        // As `RENAME COLUMN` leaves it: the constraint keeps its name.
        contract.extend(super::change_type::keep_not_null_name(
            t,
            to,
            col.not_null_name.as_deref(),
        ));
    }
    contract.extend(super::change_type::keep_column_settings(t, to, col));
    contract.extend(index_swaps);

    let mut rollback = triggers.drop(t);
    rollback.push(format!(
        "ALTER TABLE {} DROP COLUMN IF EXISTS {qb}",
        t.quoted()
    ));
    if let Some(default) = &col.default {
        rollback.push(format!(
            "ALTER TABLE {} ALTER COLUMN {qa} SET DEFAULT {default}",
            t.quoted()
        ));
    }
    Ok(Operation {
        summary: format!("rename {t}.{df} to {dt}"),
        table: t.to_string(),
        table_oid: table.oid,
        view_in_place: false,
        other_tables: Vec::new(),
        preflight: Vec::new(),
        not_undone: Vec::new(),
        caveats: Vec::new(),
        expand,
        contract: vec![
            PhaseUnit::transaction(
                format!("drop {t}.{df}, {dt} takes its place (one lock on {t})"),
                contract,
            ),
            super::change_type::analyze(t, &[to]),
        ],
        rollback: vec![PhaseUnit::transaction(
            if col.default.is_some() {
                format!("drop {t}.{dt} and its trigger, give {df} its default back")
            } else {
                format!("drop {t}.{dt} and its trigger")
            },
            rollback,
        )],
    })
}
