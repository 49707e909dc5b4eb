//! `ALTER TABLE t DROP COLUMN c`, online: old code still reads and writes `c` until it is
//! gone, so the column is dropped at contract (as written, with `on_drop` honoured). At
//! expand, a `NOT NULL` column without a default stops being NOT NULL, so that new code,
//! which no longer writes it, can insert rows. Rollback puts NOT NULL back (proved with
//! `CHECK NOT VALID` + `VALIDATE` first, so it fails with nothing changed if new code left
//! NULLs).

use pgshift_sql::ident::quote_ident;
use tokio_postgres::Client;

use super::catalog;
use super::{refusal, OpInput, Operation, PhaseUnit};
use crate::error::RunError;

pub async fn plan(
    client: &Client,
    input: &OpInput<'_>,
    column: &str,
) -> Result<Operation, RunError> {
    let (m, st, table) = (input.migration, input.statement, input.table);
    let Some(col) = table.column(column) else {
        // `DROP COLUMN IF EXISTS` of a column that is not there: nothing to plan.
        return Ok(Operation {
            summary: format!("drop {}.{column} (not there)", table.name),
            table: table.name.to_string(),
            table_oid: table.oid,
            view_in_place: false,
            other_tables: Vec::new(),
            preflight: Vec::new(),
            not_undone: Vec::new(),
            caveats: Vec::new(),
            expand: Vec::new(),
            contract: vec![PhaseUnit::as_written(
                format!("as written (line {})", st.line),
                st.text.clone(),
            )],
            rollback: Vec::new(),
        });
    };
    if let Some(why) = super::change_type::in_partition_key(table, column) {
        return Err(refusal(
            m,
            st.line,
            format!("to drop {}.{column}: {why}", table.name),
        ));
    }
    if col.identity && col.not_null {
        return Err(refusal(
            m,
            st.line,
            format!(
                "{}.{column} is an identity column; new code could not insert without it",
                table.name
            ),
        ));
    }
    if col.not_null
        && catalog::column_uses(client, table.oid, col.attnum)
            .await?
            .indexes
            .iter()
            .any(|i| i.primary)
    {
        return Err(refusal(
            m,
            st.line,
            format!(
                "{}.{column} is in the primary key, which keeps it NOT NULL until it is dropped; new code could not insert without it",
                table.name
            ),
        ));
    }
    let t = &table.name;
    let c = quote_ident(column);
    let mut expand = Vec::new();
    let rollback = Vec::new();
    let mut not_undone = Vec::new();
    if col.not_null && col.default.is_none() {
        expand.push(PhaseUnit::transaction(
            format!("{t}.{column} may be NULL, so new code can insert without it"),
            vec![format!(
                "ALTER TABLE {} ALTER COLUMN {c} DROP NOT NULL",
                t.quoted()
            )],
        ));
        // The new code may have inserted rows without it: a rollback cannot make it NOT
        // NULL again without deciding their value, so it says so instead of failing.
        not_undone.push(format!(
            "{t}.{column} stays nullable (the expand dropped NOT NULL so that new code could insert without it): fill the NULLs the new code left, then `ALTER TABLE {} ALTER COLUMN {c} SET NOT NULL`",
            t.quoted()
        ));
    }
    let caveats = catalog::functions_naming(client, table.oid, &t.name, column)
        .await?
        .into_iter()
        .map(|f| {
            format!(
                "function {f} names {t}.{column} in its body: it works until `pgshift complete` drops the column and fails from then on; change it before you complete"
            )
        })
        .collect();
    Ok(Operation {
        summary: format!("drop {t}.{column} at contract"),
        table: t.to_string(),
        table_oid: table.oid,
        view_in_place: false,
        other_tables: Vec::new(),
        preflight: Vec::new(),
        not_undone,
        caveats,
        expand,
        contract: vec![PhaseUnit::as_written(
            format!("drop {t}.{column} (line {})", st.line),
            st.text.clone(),
        )],
        rollback,
    })
}
