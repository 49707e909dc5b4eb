//! How a backfill walks its table: by a key (the primary key, else a unique index on NOT NULL
//! columns) in keyset ranges, or by physical position (TID ranges, PostgreSQL 14+) when the
//! table has no such key.
//!
//! Keyset ranges cost the same at 1 % and at 99 % done (an index range, never a rescan from
//! the start), and the upper bound is fixed when the walk starts, so rows inserted afterwards
//! cannot keep it going. A TID range scan reads the heap in order without any index; its
//! positions are meaningless once the table is rewritten (`VACUUM FULL`, `CLUSTER`,
//! pg_repack), which each batch checks through the relation's file node.

use pgshift_sql::ident::{quote_ident, QualifiedName};
use tokio_postgres::Client;

use super::BackfillError;
use pgshift_db::DbError;

/// The table, as the catalog knows it.
#[derive(Debug, Clone)]
pub struct Table {
    pub oid: u32,
    pub name: QualifiedName,
    /// `r` a table, `p` a partitioned table.
    pub relkind: char,
    pub reltuples: f64,
    pub relpages: i64,
    /// Inheritance children or partitions: physical positions are per child.
    pub has_children: bool,
    pub filenode: u32,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// As `format_type` writes it, usable in a cast.
    pub type_name: String,
    /// The type has an `=` operator of its own (json, point and xml have none).
    pub has_equality: bool,
}

/// The order a backfill walks in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walk {
    Key {
        /// The index that orders the walk.
        index: String,
        columns: Vec<String>,
        types: Vec<String>,
    },
    /// Page ranges: `ctid >= '(p,0)' AND ctid < '(q,0)'`.
    Pages,
}

impl Walk {
    /// For status: `key (id)`, `key (a, b)` or `ctid`.
    pub fn describe(&self) -> String {
        match self {
            Walk::Key { columns, .. } => format!("key ({})", columns.join(", ")),
            Walk::Pages => "ctid".to_owned(),
        }
    }

    pub fn key_columns(&self) -> Vec<String> {
        match self {
            Walk::Key { columns, .. } => columns.clone(),
            Walk::Pages => vec!["ctid".to_owned()],
        }
    }

    /// The walk's single integer key, for exact progress from key arithmetic.
    pub fn integer_key(&self) -> bool {
        matches!(self, Walk::Key { types, .. } if types.len() == 1
            && matches!(types[0].as_str(), "integer" | "bigint" | "smallint"))
    }

    /// `k1, k2` quoted.
    pub fn column_list(&self) -> String {
        match self {
            Walk::Key { columns, .. } => columns
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", "),
            Walk::Pages => "ctid".to_owned(),
        }
    }

    /// `k1::text, k2::text`: keys travel as text, so any key type works. Each output column
    /// gets a name of its own: an `ORDER BY k1` would otherwise sort by the text output
    /// column called `k1` (output names win in ORDER BY), not by the key.
    pub fn select_list(&self) -> String {
        match self {
            Walk::Key { columns, .. } => columns
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{}::text AS pgshift_key_{i}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", "),
            Walk::Pages => "ctid".to_owned(),
        }
    }

    /// The condition `key <op> (parameters $first, $first+1, ...)`, with each parameter given
    /// as text and cast to the key column's type. A row comparison for a composite key, which
    /// a btree index answers as one range.
    pub fn compare(&self, op: &str, first: usize) -> String {
        match self {
            Walk::Key { columns, types, .. } => {
                let values: Vec<String> = types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("${}::text::{t}", first + i))
                    .collect();
                if columns.len() == 1 {
                    format!("{} {op} {}", quote_ident(&columns[0]), values[0])
                } else {
                    format!("({}) {op} ({})", self.column_list(), values.join(", "))
                }
            }
            Walk::Pages => format!("ctid {op} ${first}::text::tid"),
        }
    }

    /// How many parameters one bound takes.
    pub fn width(&self) -> usize {
        match self {
            Walk::Key { columns, .. } => columns.len(),
            Walk::Pages => 1,
        }
    }
}

/// Reads the table's identity, size and columns; `None` when there is no such table.
pub async fn table(client: &Client, name: &QualifiedName) -> Result<Option<Table>, DbError> {
    let row = client
        .query_opt(
            "SELECT c.oid, c.relkind::text, c.reltuples::float8, c.relpages::int8,
                    pg_relation_filenode(c.oid), n.nspname::text, c.relname::text,
                    c.relhassubclass
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')",
            &[&name.quoted()],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let oid: u32 = row.get(0);
    let columns = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
                    EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprname = '='
                             AND o.oprleft = a.atttypid AND o.oprright = a.atttypid)
               FROM pg_attribute a
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await?
        .iter()
        .map(|r| Column {
            name: r.get(0),
            type_name: r.get(1),
            has_equality: r.get(2),
        })
        .collect();
    let relkind: String = row.get(1);
    Ok(Some(Table {
        oid,
        name: QualifiedName::qualified(row.get::<_, String>(5), row.get::<_, String>(6)),
        relkind: relkind.chars().next().unwrap_or('r'),
        reltuples: row.get(2),
        relpages: row.get(3),
        has_children: row.get(7),
        filenode: row.get::<_, Option<u32>>(4).unwrap_or(0),
        columns,
    }))
}

/// Picks the walk: the primary key; else the unique index on NOT NULL columns with the
/// fewest columns (plain btree, ascending, no expression, no predicate, the columns'
/// collations); else pages, on PostgreSQL 14+.
pub async fn choose(
    client: &Client,
    table: &Table,
    server_version: i32,
) -> Result<Walk, BackfillError> {
    let rows = client
        .query(
            "SELECT ic.relname::text, i.indisprimary,
                    array_agg(a.attname::text ORDER BY k.ord),
                    array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord),
                    bool_and(a.attnotnull)
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
               CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indoption::int2[], i.indcollation::oid[])
                    WITH ORDINALITY AS k(attnum, opt, coll, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indisready
                AND k.ord <= i.indnkeyatts AND i.indpred IS NULL AND i.indexprs IS NULL
              GROUP BY ic.relname, i.indisprimary, i.indnkeyatts
             HAVING bool_and(k.opt = 0 AND k.coll = a.attcollation)
                AND count(*) = i.indnkeyatts
              ORDER BY i.indisprimary DESC, count(*), ic.relname",
            &[&table.oid],
        )
        .await
        .map_err(DbError::from)?;
    for row in rows {
        let primary: bool = row.get(1);
        let not_null: bool = row.get(4);
        if primary || not_null {
            return Ok(Walk::Key {
                index: row.get(0),
                columns: row.get(2),
                types: row.get(3),
            });
        }
    }
    without_key(&table.name, table.relkind, server_version)
}

/// The walk of a table with no usable key: pages, where PostgreSQL can scan TID ranges.
fn without_key(
    name: &QualifiedName,
    relkind: char,
    server_version: i32,
) -> Result<Walk, BackfillError> {
    if relkind == 'p' {
        return Err(BackfillError::NoKey {
            table: name.to_string(),
            why: "it is a partitioned table, which holds no rows of its own: backfill it without ONLY, and each partition is walked".into(),
        });
    }
    if server_version < 140000 {
        return Err(BackfillError::NoKey {
            table: name.to_string(),
            why: "walking a table by physical position (TID ranges) needs PostgreSQL 14 or later: add a primary key or a unique index on NOT NULL columns".into(),
        });
    }
    Ok(Walk::Pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_key_pages_on_14_and_later_and_a_clear_refusal_otherwise() {
        let t = QualifiedName::qualified("public", "events");
        assert_eq!(without_key(&t, 'r', 140000).unwrap(), Walk::Pages);
        let old = without_key(&t, 'r', 130012).unwrap_err().to_string();
        assert!(old.contains("needs PostgreSQL 14"), "{old}");
        assert!(old.contains("add a primary key"), "{old}");
        assert!(old.contains("nothing was changed"), "{old}");
        let partitioned = without_key(&t, 'p', 170000).unwrap_err().to_string();
        assert!(partitioned.contains("partitioned"), "{partitioned}");
    }
}
