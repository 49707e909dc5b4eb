//! `ALTER TABLE t RENAME COLUMN a TO b`, online: old code keeps reading and writing `a`, new
//! code `b`, both at once.
//!
//! The mechanism is a second column kept in step by a two-way trigger (see
//! [`super::sync::two_way`]): it works for every way an application reaches the table —
//! `COPY`, `TRUNCATE`, `INSERT ... ON CONFLICT`, `RETURNING`, prepared statements — at the
//! cost of a copy of the column (a batched backfill). A view that exposes both names would
//! cost no copy but breaks `COPY ... FROM` and `TRUNCATE` through it and puts a view where
//! the table was; pgshift does not build it.
//!
//! - expand: column `b` of `a`'s type; `a`'s default moves into the trigger for the window
//!   (so an INSERT from either version looks like a write of one column); backfill `b = a`;
//!   `a`'s indexes built again on `b`, concurrently; NOT NULL proved by `CHECK NOT VALID` +
//!   `VALIDATE`.
//! - contract, one transaction: the trigger and `a` go, `b` gets the default, NOT NULL, the
//!   indexes' names and the UNIQUE constraints.
//! - rollback: `b` goes, `a` gets its default back; every row written through `b` meanwhile
//!   was copied to `a`.

use pgshift_sql::ident::quote_ident;
use tokio_postgres::Client;

use super::catalog;
use super::change_type::{
    finish_not_null, lock_table, prove_not_null, rebuild_indexes, refuse_unsupported,
};
use super::sync::{self, object_name};
use super::{refusal, OpInput, Operation, PhaseUnit};
use crate::error::RunError;

pub async fn plan(
    client: &Client,
    input: &OpInput<'_>,
    from: &str,
    to: &str,
) -> Result<Operation, RunError> {
    let (m, st, table) = (input.migration, input.statement, input.table);
    let Some(col) = table.column(from) else {
        return Err(refusal(
            m,
            st.line,
            format!("table {} has no column {from}", table.name),
        ));
    };
    if table.column(to).is_some() {
        return Err(refusal(
            m,
            st.line,
            format!("table {} already has a column {to}", table.name),
        ));
    }
    let uses = catalog::column_uses(client, table.oid, col.attnum).await?;
    refuse_unsupported(input, col, &uses, "rename")?;
    super::change_type::refuse_partition_local(client, input, col, "rename").await?;
    if let Some(c) = uses.constraints.iter().find(|c| c.kind == "c") {
        return Err(refusal(
            m,
            st.line,
            format!(
                "CHECK constraint {} ({}) names the column; renaming it online is not supported yet",
                c.name, c.definition
            ),
        ));
    }
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
            format!("add {t}.{to}, kept in step with {from} both ways by a trigger"),
            setup,
        ),
        PhaseUnit::backfill(
            format!("backfill {t}.{to} from {from}"),
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
        summary: format!("rename {t}.{from} to {to}"),
        table: t.to_string(),
        table_oid: table.oid,
        other_tables: Vec::new(),
        preflight: Vec::new(),
        not_undone: Vec::new(),
        expand,
        contract: vec![
            PhaseUnit::transaction(
                format!("drop {t}.{from}, {to} takes its place (one lock on {t})"),
                contract,
            ),
            super::change_type::analyze(t, &[to]),
        ],
        rollback: vec![PhaseUnit::transaction(
            if col.default.is_some() {
                format!("drop {t}.{to} and its trigger, give {from} its default back")
            } else {
                format!("drop {t}.{to} and its trigger")
            },
            rollback,
        )],
    })
}
