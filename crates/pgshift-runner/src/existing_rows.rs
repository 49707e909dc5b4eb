//! Rows already in a table that break the constraint a migration adds to it (`CHECK`,
//! `FOREIGN KEY`, `UNIQUE`, `PRIMARY KEY`, `CREATE UNIQUE INDEX`), found before the
//! constraint is: the safe rewrite adds it `NOT VALID` (or builds its index concurrently) in
//! one step and checks the rows in a later one, so without this look a bad row would stop the
//! migration halfway, with the constraint half there. The look is a step of its own, just
//! before the constraint's first, in a transaction of its own: it runs after the statements
//! before it (so it sees what a cleanup `UPDATE` or `DELETE` earlier in the file did) and holds
//! no lock but the read's (in the constraint's transaction, the lock-queue guard would have
//! taken the constraint's lock first, and the scan would run under it). When it finds rows it
//! fails with up to five of them as examples, and nothing of the constraint is there.

use pgshift_db::DbError;
use pgshift_lint::{ExistingRows, Step};
use pgshift_sql::ident::{display_ident, quote_ident, quote_literal, QualifiedName};
use tokio_postgres::Client;

use crate::prepare::StatementFacts;

/// Examples shown; one more is read to tell "5" from "more than 5".
const EXAMPLES: usize = 5;

/// Puts the look before the first step of each statement's rewrite that adds a constraint to
/// an existing table. A foreign key written without its referenced columns reads the
/// referenced table's primary key from the catalog (one query).
pub(crate) async fn add_looks(
    client: &Client,
    statements: &mut [StatementFacts],
) -> Result<(), DbError> {
    for st in statements.iter_mut() {
        let Some(rewrite) = st.rewrite.as_mut() else {
            continue;
        };
        let Some(rows) = rewrite.existing_rows.clone() else {
            continue;
        };
        let Some(sql) = look(client, &rows, FIX_HINT).await? else {
            continue;
        };
        // A transaction of its own (`transaction: false`: not the migration's): a plain read,
        // holding no lock a later statement would take (in the statement's own transaction,
        // the lock-queue guard would take that lock first, and the scan would run under it).
        rewrite.steps.insert(
            0,
            Step {
                sql,
                transaction: false,
                purpose: "look for rows already in the table that break the constraint (a read, in a transaction of its own; it fails, keeping nothing of the constraint, if there are)",
            },
        );
    }
    Ok(())
}

/// What to do when the look finds rows, in a migration that runs as written.
pub(crate) const FIX_HINT: &str = "fix those rows (an UPDATE or DELETE before this statement, in this migration or an earlier one), then run the command again: it continues with this look";

/// The `DO` block that fails, with examples and `hint`, when rows break `rows`; `None` when
/// the look cannot be written (a foreign key to a table without a primary key).
pub(crate) async fn look(
    client: &Client,
    rows: &ExistingRows,
    hint: &str,
) -> Result<Option<String>, DbError> {
    let limit = EXAMPLES + 1;
    let (table, constraint, query) = match rows {
        ExistingRows::Check { table, name, expr } => (
            table,
            format!("CHECK constraint {} ({expr})", display_ident(name)),
            format!(
                "SELECT left(to_json({}.*)::text, 200) FROM {} WHERE ({expr}) IS FALSE LIMIT {limit}",
                quote_ident(&table.name),
                table.quoted()
            ),
        ),
        ExistingRows::Unique {
            table,
            name,
            columns,
            primary,
            nulls_distinct,
        } => {
            let cols = list(columns, "");
            let label = quote_literal(&format!("({})", columns.join(", ")));
            let duplicates = format!(
                "SELECT format('%s = %s in %s rows', {label}, row({cols})::text, count(*)) FROM {}{} GROUP BY {cols} HAVING count(*) > 1 LIMIT {limit}",
                table.quoted(),
                if *nulls_distinct && !*primary {
                    format!(" WHERE {}", all_not_null(columns, ""))
                } else {
                    String::new()
                }
            );
            let query = if *primary {
                format!(
                    "(SELECT format('%s = %s: a primary key cannot be NULL', {label}, row({cols})::text) FROM {} WHERE NOT ({}) LIMIT {limit}) UNION ALL ({duplicates}) LIMIT {limit}",
                    table.quoted(),
                    all_not_null(columns, "")
                )
            } else {
                duplicates
            };
            let kind = if *primary { "PRIMARY KEY" } else { "UNIQUE" };
            let named = if name.is_empty() {
                String::new()
            } else {
                format!("{} ", display_ident(name))
            };
            (table, format!("{kind} {named}({})", columns.join(", ")), query)
        }
        ExistingRows::ForeignKey {
            table,
            name,
            columns,
            references,
            ref_columns,
        } => {
            let ref_columns = if ref_columns.is_empty() {
                match primary_key(client, references).await? {
                    Some(cols) => cols,
                    None => return Ok(None),
                }
            } else {
                ref_columns.clone()
            };
            if ref_columns.len() != columns.len() {
                return Ok(None);
            }
            let label = quote_literal(&format!("({})", columns.join(", ")));
            let matches = columns
                .iter()
                .zip(&ref_columns)
                .map(|(c, r)| format!("p.{} = c.{}", quote_ident(r), quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" AND ");
            (
                table,
                format!(
                    "FOREIGN KEY {} ({}) REFERENCES {references} ({})",
                    display_ident(name),
                    columns.join(", "),
                    ref_columns.join(", ")
                ),
                format!(
                    "SELECT format('%s = %s not in {}', {label}, row({})::text) FROM {} AS c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} AS p WHERE {matches}) LIMIT {limit}",
                    references.to_string().replace('\'', "''").replace('%', "%%"),
                    list(columns, "c."),
                    table.quoted(),
                    all_not_null(columns, "c."),
                    references.quoted()
                ),
            )
        }
    };
    let message = format!("rows already in {table} break {constraint}");
    // Each example is a row, or for UNIQUE a value held by several rows.
    // A dollar-quote tag the body does not hold (a CHECK's text could).
    let mut tag = String::from("$pgshift_rows$");
    while query.contains(&tag) {
        tag.insert(tag.len() - 1, '_');
    }
    Ok(Some(format!(
        "DO {tag} DECLARE pgshift_found text[]; BEGIN \
         SELECT array_agg(x) INTO pgshift_found FROM ({query}) q(x); \
         IF pgshift_found IS NOT NULL THEN RAISE EXCEPTION USING ERRCODE = '23514', \
         MESSAGE = format('%s (%s found)', {}, CASE WHEN cardinality(pgshift_found) > {EXAMPLES} THEN 'more than {EXAMPLES}' ELSE cardinality(pgshift_found)::text END), \
         DETAIL = 'for example: ' || array_to_string(pgshift_found[1:{EXAMPLES}], '; '), \
         HINT = {}; END IF; END {tag}",
        quote_literal(&message),
        quote_literal(hint)
    )))
}

fn list(columns: &[String], prefix: &str) -> String {
    columns
        .iter()
        .map(|c| format!("{prefix}{}", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn all_not_null(columns: &[String], prefix: &str) -> String {
    columns
        .iter()
        .map(|c| format!("{prefix}{} IS NOT NULL", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The primary key's columns of `table`, in key order.
async fn primary_key(
    client: &Client,
    table: &QualifiedName,
) -> Result<Option<Vec<String>>, DbError> {
    let row = client
        .query_opt(
            "SELECT ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                           ORDER BY k.o)
               FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'p'",
            &[&table.quoted()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}
