//! `ALTER TABLE t RENAME TO u`, online: at expand the table takes its new name and a view
//! named `t` over it (`SELECT *`, automatically updatable: INSERT, UPDATE, DELETE,
//! `ON CONFLICT` and `RETURNING` work through it, and the table's defaults apply) keeps old
//! code working, with the table's privileges. At contract the view goes. Rollback drops the
//! view and gives the table its old name back. Through the view, `COPY ... FROM`,
//! `TRUNCATE` and `LOCK` do not work: old code that uses them fails during the window.

use pgshift_sql::ident::{quote_ident, QualifiedName};
use tokio_postgres::Client;

use super::{catalog, refusal, OpInput, Operation, PhaseUnit};
use crate::error::RunError;

pub async fn plan(client: &Client, input: &OpInput<'_>, to: &str) -> Result<Operation, RunError> {
    let (m, st, table) = (input.migration, input.statement, input.table);
    let t = &table.name;
    let schema = t.schema.clone().unwrap_or_default();
    let new = QualifiedName::qualified(schema, to);
    if catalog::table(client, &new).await?.is_some() {
        return Err(refusal(m, st.line, format!("a table {new} already exists")));
    }
    let security = if input.pg.major >= 15 {
        " WITH (security_invoker = true)"
    } else {
        ""
    };
    let mut expand = vec![
        format!("ALTER TABLE {} RENAME TO {}", t.quoted(), quote_ident(to)),
        format!(
            "CREATE VIEW {}{security} AS SELECT * FROM {}",
            t.quoted(),
            new.quoted()
        ),
    ];
    expand.extend(catalog::grants_for(client, table.oid, t).await?);
    Ok(Operation {
        summary: format!(
            "rename table {t} to {to}; a view keeps the old name working until contract"
        ),
        table: t.to_string(),
        table_oid: table.oid,
        other_tables: Vec::new(),
        preflight: Vec::new(),
        not_undone: Vec::new(),
        expand: vec![PhaseUnit::transaction(
            format!("rename {t} to {to}, a view named {} over it", t.name),
            expand,
        )],
        contract: vec![PhaseUnit::transaction(
            format!("drop the view {t}"),
            vec![format!("DROP VIEW IF EXISTS {}", t.quoted())],
        )],
        rollback: vec![PhaseUnit::transaction(
            format!("drop the view {t}, rename {to} back"),
            vec![
                format!("DROP VIEW IF EXISTS {}", t.quoted()),
                format!(
                    "ALTER TABLE IF EXISTS {} RENAME TO {}",
                    new.quoted(),
                    quote_ident(&t.name)
                ),
            ],
        )],
    })
}
