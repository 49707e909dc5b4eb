//! `ALTER TABLE t RENAME TO u`, online: at expand the table takes its new name and a view
//! named `t` over it (`SELECT *`, automatically updatable: INSERT, UPDATE, DELETE,
//! `ON CONFLICT` and `RETURNING` work through it, and the table's defaults apply) keeps old
//! code working, with the table's privileges. At contract the view goes. Rollback drops the
//! view and gives the table its old name back. Through the view, `COPY ... FROM`,
//! `TRUNCATE` and `LOCK` do not work: old code that uses them fails during the window.
//!
//! The view in the table's place ([`view_in_place`]) is also how a column is renamed without
//! a copy ([`super::rename_column`]).

use pgshift_lint::PgVersion;
use pgshift_sql::ident::{quote_ident, quote_literal, QualifiedName};
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
    if let Some(why) = catalog::view_cannot_stand_for(client, table.oid, input.pg).await? {
        return Err(refusal(
            m,
            st.line,
            format!("to rename {t} online, a view would keep its old name working, but {why}"),
        ));
    }
    let mut expand = vec![format!(
        "ALTER TABLE {} RENAME TO {}",
        t.quoted(),
        quote_ident(to)
    )];
    expand.extend(view_in_place(client, table.oid, t, &new, "", input.pg).await?);
    Ok(Operation {
        summary: format!(
            "rename table {t} to {to}; a view keeps the old name working until contract"
        ),
        table: t.to_string(),
        table_oid: table.oid,
        view_in_place: true,
        other_tables: Vec::new(),
        preflight: Vec::new(),
        not_undone: Vec::new(),
        caveats: Vec::new(),
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
            undo_view_in_place(t, &new, &[]),
        )],
    })
}

/// The view named `name` over the table now named `table` (oid `oid`): `SELECT *` and
/// `extra` columns (`, b AS a`), the invoker's privileges and row-level security on
/// PostgreSQL 15+, the table's grants.
pub(super) async fn view_in_place(
    client: &Client,
    oid: u32,
    name: &QualifiedName,
    table: &QualifiedName,
    extra: &str,
    pg: PgVersion,
) -> Result<Vec<String>, RunError> {
    let security = if pg.major >= 15 {
        " WITH (security_invoker = true)"
    } else {
        ""
    };
    let mut sql = vec![format!(
        "CREATE VIEW {}{security} AS SELECT *{extra} FROM {}",
        name.quoted(),
        table.quoted()
    )];
    sql.extend(catalog::grants_for(client, oid, name).await?);
    Ok(sql)
}

/// Undoes [`view_in_place`] when the expand made it, whatever the expand reached: the view
/// `name` goes, `table` takes its name back, then `after` (statements on the table under its
/// name again). Before the expand made the view, `name` is still the table and nothing is
/// done. The view is locked first, as every query through it locks it before the table.
pub(super) fn undo_view_in_place(
    name: &QualifiedName,
    table: &QualifiedName,
    after: &[String],
) -> Vec<String> {
    let mut body = vec![
        format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", name.quoted()),
        format!("DROP VIEW {}", name.quoted()),
        format!(
            "ALTER TABLE {} RENAME TO {}",
            table.quoted(),
            quote_ident(&name.name)
        ),
    ];
    body.extend(after.iter().cloned());
    vec![format!(
        "DO $pgshift$ BEGIN\n  IF (SELECT relkind FROM pg_class WHERE oid = to_regclass({})) = 'v' THEN\n    {};\n  END IF;\nEND $pgshift$",
        quote_literal(&name.quoted()),
        body.join(";\n    ")
    )]
}
