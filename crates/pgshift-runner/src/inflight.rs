//! Statements that run outside any transaction, and what became of one when pgshift died
//! while it ran.
//!
//! PostgreSQL finishes a statement whose client is gone (unless
//! `client_connection_check_interval` notices first), so after `kill -9` a bare
//! `CREATE INDEX CONCURRENTLY` may have built its index, stopped halfway (an INVALID index),
//! or never started, and no progress record says which. Before sending such a statement the
//! runner records it as *in flight* in the history (with what the catalog held then); the
//! next run, once the old session is gone, looks at the server to tell which it was
//! ([`settle`]): landed (recorded as done), not landed (what it left half-done is cleaned up
//! and it runs again), or unknowable, in which case the run stops and says how to record the
//! answer (`pgshift resolve`). A statement is never repeated silently.

use std::time::Duration;

use pgshift_db::{Connection, DbError};
use pgshift_sql::ident::{quote_ident, QualifiedName};
use pgshift_sql::NodeEnum;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::event::{Event, Observer};
use crate::history::RowState;

/// How to tell whether a statement sent outside any transaction landed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Landing {
    /// `CREATE INDEX CONCURRENTLY name`: landed when the index exists and is valid (and did
    /// not exist before); an INVALID one is a build that stopped, dropped before the retry.
    CreateIndex {
        schema: String,
        name: String,
        if_not_exists: bool,
    },
    /// `CREATE INDEX CONCURRENTLY ON t (...)`: the server picks the name, so the table's
    /// indexes are noted before it runs; landed when exactly one new, valid index appeared.
    CreateUnnamedIndex { table: String },
    /// `DROP INDEX CONCURRENTLY name`: landed when an index that existed is gone. One still
    /// there (perhaps INVALID, halfway through the drop) is dropped by the retry.
    DropIndex { schema: String, name: String },
    /// `REINDEX ... CONCURRENTLY`: running it again rebuilds the same indexes, after dropping
    /// the INVALID `_ccnew`/`_ccold` copies a stopped run leaves on the table.
    Reindex {
        table: Option<String>,
        index: Option<String>,
    },
    /// `ALTER TABLE p DETACH PARTITION c CONCURRENTLY`: landed when c is no longer a
    /// partition of p; a detach stopped halfway is completed with `FINALIZE`.
    DetachPartition { parent: String, child: String },
    /// `CREATE DATABASE name`: landed when it exists and did not before.
    CreateDatabase { name: String },
    /// `DROP DATABASE name`: landed when it existed and is gone.
    DropDatabase { name: String },
    /// Running it again does the same: `VACUUM`, `CLUSTER`, `REINDEX DATABASE/SYSTEM`,
    /// `ALTER SYSTEM`.
    Repeatable,
    /// pgshift cannot tell (`CREATE/DROP SUBSCRIPTION`, tablespaces, ...): the run stops and
    /// the user records the answer with `pgshift resolve`.
    Unknown,
}

impl Landing {
    /// A failed statement of this kind leaves INVALID indexes behind, which [`settle`] drops.
    pub fn leaves_invalid_indexes(&self) -> bool {
        matches!(
            self,
            Landing::CreateIndex { .. }
                | Landing::CreateUnnamedIndex { .. }
                | Landing::Reindex { .. }
        )
    }

    /// How to tell about a statement that cannot run in a transaction block.
    pub fn of(node: &NodeEnum) -> Landing {
        use pgshift_sql::protobuf::ReindexObjectType;
        match node {
            NodeEnum::IndexStmt(idx) => {
                let table = idx
                    .relation
                    .as_ref()
                    .map(QualifiedName::from_range_var)
                    .map(|q| q.quoted())
                    .unwrap_or_default();
                if idx.idxname.is_empty() {
                    Landing::CreateUnnamedIndex { table }
                } else {
                    Landing::CreateIndex {
                        schema: idx
                            .relation
                            .as_ref()
                            .map(|r| r.schemaname.clone())
                            .unwrap_or_default(),
                        name: idx.idxname.clone(),
                        if_not_exists: idx.if_not_exists,
                    }
                }
            }
            NodeEnum::DropStmt(d) if d.objects.len() == 1 => {
                let names = match d.objects.first().and_then(|o| o.node.as_ref()) {
                    Some(NodeEnum::List(l)) => QualifiedName::from_names(&l.items),
                    _ => None,
                };
                match names {
                    Some(q) => Landing::DropIndex {
                        schema: q.schema.unwrap_or_default(),
                        name: q.name,
                    },
                    None => Landing::Unknown,
                }
            }
            NodeEnum::ReindexStmt(r) => {
                let concurrent = r.params.iter().any(|p| {
                    matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently"))
                });
                let relation = r
                    .relation
                    .as_ref()
                    .map(|rv| QualifiedName::from_range_var(rv).quoted());
                if !concurrent {
                    Landing::Repeatable
                } else if r.kind == ReindexObjectType::ReindexObjectIndex as i32 {
                    Landing::Reindex {
                        table: None,
                        index: relation,
                    }
                } else if r.kind == ReindexObjectType::ReindexObjectTable as i32 {
                    Landing::Reindex {
                        table: relation,
                        index: None,
                    }
                } else {
                    // REINDEX SCHEMA/DATABASE CONCURRENTLY: the leftovers could be on any
                    // table; running it again is right, the leftovers stay for the user.
                    Landing::Repeatable
                }
            }
            NodeEnum::AlterTableStmt(a) => {
                let parent = a
                    .relation
                    .as_ref()
                    .map(|rv| QualifiedName::from_range_var(rv).quoted());
                let child = a.cmds.iter().find_map(|c| match &c.node {
                    Some(NodeEnum::AlterTableCmd(cmd)) => {
                        match cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
                            Some(NodeEnum::PartitionCmd(p)) => p
                                .name
                                .as_ref()
                                .map(|rv| QualifiedName::from_range_var(rv).quoted()),
                            _ => None,
                        }
                    }
                    _ => None,
                });
                match (parent, child) {
                    (Some(parent), Some(child)) => Landing::DetachPartition { parent, child },
                    _ => Landing::Unknown,
                }
            }
            NodeEnum::CreatedbStmt(c) => Landing::CreateDatabase {
                name: c.dbname.clone(),
            },
            NodeEnum::DropdbStmt(d) => Landing::DropDatabase {
                name: d.dbname.clone(),
            },
            NodeEnum::VacuumStmt(_) | NodeEnum::ClusterStmt(_) | NodeEnum::AlterSystemStmt(_) => {
                Landing::Repeatable
            }
            _ => Landing::Unknown,
        }
    }
}

/// The history's record of a statement sent outside any transaction whose end was not
/// recorded yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InFlight {
    /// The unit (0-based) the statement is.
    pub unit: i32,
    /// The session that sent it, to wait for it should it still run.
    pub pid: i32,
    pub backend_start: String,
    /// The statement, for messages.
    pub sql: String,
    pub landing: Landing,
    /// Whether the object the statement creates or drops existed when it was sent.
    pub existed_before: bool,
    /// For an unnamed index build: the table's indexes when it was sent.
    pub indexes_before: Vec<String>,
}

/// What became of a statement in flight when the last run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It completed: record it as done.
    Landed(String),
    /// It did not (what it left half-done was removed): run it again.
    NotLanded(String),
    /// pgshift cannot tell; the reason.
    Unknown(String),
}

/// What the record of a statement in flight says, before the server adds who sent it and
/// what the catalog held.
#[derive(serde::Serialize)]
struct Sent<'a> {
    unit: i32,
    sql: &'a str,
    landing: &'a Landing,
}

/// Where a migration run stands when a statement is recorded in flight.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The history row's state while the run is partway (partial or reverting).
    pub state: RowState,
    /// Units done before this one.
    pub done: i32,
    /// The fingerprints of the units, when the row does not hold them yet (a revert's first
    /// record).
    pub digests: Option<&'a [String]>,
}

/// The statement [`record`] runs, around two SQL expressions: whether the landing object
/// existed before and the table's indexes before. One statement per kind of landing: each has
/// the same plan for every value, so the server keeps one generic plan per session instead of
/// planning a statement with every branch's subqueries at each bind. Every statement takes the
/// same eleven parameters (typed when prepared); each reads the ones its landing needs.
macro_rules! record_in_flight {
    ($existed_before:literal, $indexes_before:literal) => {
        concat!(
            "UPDATE pgshift.migrations
                SET state = $2, progress = $3,
                    units = coalesce($4, units), unit_digests = coalesce($5, unit_digests),
                    inflight = $6::text::jsonb || jsonb_build_object(
                        'pid', pg_backend_pid(),
                        'backend_start', $11::text,
                        'existed_before', ",
            $existed_before,
            ",
                        'indexes_before', ",
            $indexes_before,
            ")
              WHERE version = $1
          RETURNING inflight::text"
        )
    };
}

/// A named index (`$7` schema or '' for the search path, `$8` name).
const RECORD_INDEX: &str = record_in_flight!(
    "EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('i', 'I') AND c.relname = $8
                AND ($7 = '' AND n.oid = ANY (current_schemas(false)::regnamespace[]) OR n.nspname = $7))",
    "'[]'::jsonb"
);
/// A database (`$9`).
const RECORD_DATABASE: &str = record_in_flight!(
    "EXISTS (SELECT 1 FROM pg_database WHERE datname = $9)",
    "'[]'::jsonb"
);
/// An unnamed index on table `$10`: the table's indexes now.
const RECORD_TABLE_INDEXES: &str = record_in_flight!(
    "false",
    "coalesce((SELECT jsonb_agg(c.relname::text ORDER BY c.relname)
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = to_regclass($10)), '[]'::jsonb)"
);
/// Any other statement: nothing to read from the catalog.
const RECORD_PLAIN: &str = record_in_flight!("false", "'[]'::jsonb");

/// Records `sql` (unit `unit` of migration `version`) as in flight, before it is sent, in
/// one round trip: the history row's state and progress, the statement and how to tell it
/// landed, the session sending it, and what the catalog holds now (whether the object it
/// creates or drops exists; an unnamed index build's table's indexes). Returns the record.
pub async fn record(
    conn: &Connection,
    version: &str,
    progress: Progress<'_>,
    unit: usize,
    sql: &str,
    landing: &Landing,
) -> Result<InFlight, DbError> {
    let sent = serde_json::to_string(&Sent {
        unit: i32::try_from(unit).unwrap_or(i32::MAX),
        sql,
        landing,
    })
    .map_err(|e| DbError::Driver {
        reason: format!("could not record the statement in flight: {e}"),
    })?;
    let (statement, index_schema, index_name, database, table) = match landing {
        Landing::CreateIndex { schema, name, .. } | Landing::DropIndex { schema, name } => {
            (RECORD_INDEX, schema.as_str(), name.as_str(), "", "")
        }
        Landing::CreateDatabase { name } | Landing::DropDatabase { name } => {
            (RECORD_DATABASE, "", "", name.as_str(), "")
        }
        Landing::CreateUnnamedIndex { table } => (RECORD_TABLE_INDEXES, "", "", "", table.as_str()),
        _ => (RECORD_PLAIN, "", "", "", ""),
    };
    let units = progress
        .digests
        .map(|d| i32::try_from(d.len()).unwrap_or(i32::MAX));
    let digests: Option<Vec<String>> = progress.digests.map(<[String]>::to_vec);
    // Who sends the statement: read from the server once per session.
    let backend_start = conn.backend_start().await?;
    // Prepared once per session: its planning costs more than its run, and it comes
    // before every statement run outside a transaction.
    let row = conn
        .query_prepared(
            statement,
            &[
                Type::TEXT,
                Type::TEXT,
                Type::INT4,
                Type::INT4,
                Type::TEXT_ARRAY,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
            ],
            &[
                &version,
                &progress.state.as_str(),
                &progress.done,
                &units,
                &digests,
                &sent,
                &index_schema,
                &index_name,
                &database,
                &table,
                &backend_start,
            ],
        )
        .await?
        .into_iter()
        .next();
    let text: String = row
        .ok_or_else(|| DbError::Driver {
            reason: format!(
                "migration {version} has no history row to record the statement in flight in"
            ),
        })?
        .get(0);
    serde_json::from_str(&text).map_err(|e| DbError::Driver {
        reason: format!("the in-flight record reads back wrong: {e}"),
    })
}

/// Waits for the session that sent the statement to end (it may still be running it), then
/// tells from the catalog whether the statement landed, cleaning up what a stopped one left.
pub async fn settle(
    client: &Client,
    version: &str,
    inflight: &InFlight,
    observer: &dyn Observer,
) -> Result<Verdict, DbError> {
    wait_for_session(client, version, inflight, observer).await?;
    let verdict = match &inflight.landing {
        Landing::CreateIndex {
            schema,
            name,
            if_not_exists,
        } => match index_validity(client, schema, name).await? {
            Some(true) if !inflight.existed_before || *if_not_exists => {
                Verdict::Landed(format!("index {name} exists and is valid"))
            }
            Some(true) => Verdict::NotLanded(format!(
                "index {name} existed before the statement ran; it runs again (and reports what the server says)"
            )),
            Some(false) => {
                drop_index(client, schema, name).await?;
                Verdict::NotLanded(format!(
                    "index {name} was left INVALID by the stopped build and was dropped"
                ))
            }
            None => Verdict::NotLanded(format!("index {name} does not exist")),
        },
        Landing::CreateUnnamedIndex { table } => {
            let now = table_indexes(client, table).await?;
            let new: Vec<&(String, bool)> = now
                .iter()
                .filter(|(n, _)| !inflight.indexes_before.contains(n))
                .collect();
            let valid: Vec<&String> = new.iter().filter(|(_, v)| *v).map(|(n, _)| n).collect();
            match valid.as_slice() {
                [] => {
                    for (name, _) in &new {
                        drop_index_in_table_schema(client, table, name).await?;
                    }
                    if new.is_empty() {
                        Verdict::NotLanded(format!("no new index on {table}"))
                    } else {
                        Verdict::NotLanded(format!(
                            "the stopped build left INVALID index {} on {table}, dropped",
                            names(&new)
                        ))
                    }
                }
                [one] => Verdict::Landed(format!("index {one} on {table} was built")),
                _ => Verdict::Unknown(format!(
                    "several new valid indexes appeared on {table} since the statement was sent ({}), so pgshift cannot tell which one it built",
                    names(&new)
                )),
            }
        }
        Landing::DropIndex { schema, name } => {
            match (
                inflight.existed_before,
                index_validity(client, schema, name).await?,
            ) {
                (true, None) => Verdict::Landed(format!("index {name} is gone")),
                (_, Some(_)) => Verdict::NotLanded(format!("index {name} is still there")),
                (false, None) => Verdict::NotLanded(format!(
                    "index {name} did not exist when the statement was sent"
                )),
            }
        }
        Landing::Reindex { table, index } => {
            let table = match (table, index) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(i)) => table_of_index(client, i).await?,
                (None, None) => None,
            };
            let mut dropped = Vec::new();
            if let Some(table) = &table {
                for (name, valid) in table_indexes(client, table).await? {
                    if !valid && (name.contains("_ccnew") || name.contains("_ccold")) {
                        drop_index_in_table_schema(client, table, &name).await?;
                        dropped.push(name);
                    }
                }
            }
            Verdict::NotLanded(if dropped.is_empty() {
                "rebuilding indexes again does the same".to_string()
            } else {
                format!(
                    "dropped the INVALID copies the stopped rebuild left ({}); it runs again",
                    dropped.join(", ")
                )
            })
        }
        Landing::DetachPartition { parent, child } => {
            let row = client
                .query_opt(
                    "SELECT inhdetachpending FROM pg_inherits
                      WHERE inhrelid = to_regclass($1) AND inhparent = to_regclass($2)",
                    &[child, parent],
                )
                .await?;
            match row.map(|r| r.get::<_, bool>(0)) {
                None => Verdict::Landed(format!("{child} is no longer a partition of {parent}")),
                Some(true) => {
                    client
                        .batch_execute(&format!(
                            "ALTER TABLE {parent} DETACH PARTITION {child} FINALIZE"
                        ))
                        .await?;
                    Verdict::Landed(format!(
                        "the detach of {child} had stopped halfway; finished it with FINALIZE"
                    ))
                }
                Some(false) => Verdict::NotLanded(format!("{child} is still attached")),
            }
        }
        Landing::CreateDatabase { name } => {
            if database_exists(client, name).await? && !inflight.existed_before {
                Verdict::Landed(format!("database {name} exists"))
            } else {
                Verdict::NotLanded(format!("database {name} was not created"))
            }
        }
        Landing::DropDatabase { name } => {
            if inflight.existed_before && !database_exists(client, name).await? {
                Verdict::Landed(format!("database {name} is gone"))
            } else {
                Verdict::NotLanded(format!("database {name} was not dropped"))
            }
        }
        Landing::Repeatable => {
            Verdict::NotLanded("running it again does the same, so it runs again".to_string())
        }
        Landing::Unknown => Verdict::Unknown(
            "its effect cannot be looked up in the catalog".to_string(),
        ),
    };
    Ok(verdict)
}

/// Waits while the session that sent the statement is still busy. pgshift's runner lock is
/// a session lock, so normally that session is gone by the time the next runner holds it;
/// this covers a session the server has not noticed is orphaned yet.
async fn wait_for_session(
    client: &Client,
    version: &str,
    inflight: &InFlight,
    observer: &dyn Observer,
) -> Result<(), DbError> {
    let mut told = false;
    loop {
        let running = client
            .query_opt(
                "SELECT 1 FROM pg_stat_activity
                  WHERE pid = $1 AND backend_start::text = $2 AND pid <> pg_backend_pid()
                    AND state <> 'idle'",
                &[&inflight.pid, &inflight.backend_start],
            )
            .await?
            .is_some();
        if !running {
            return Ok(());
        }
        if !told {
            observer.event(&Event::Info(format!(
                "  migration {version}: the session of the last run (pid {}) is still running `{}` on the server; waiting for it to end",
                inflight.pid,
                clip(&inflight.sql)
            )));
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `Some(valid)` when the index exists (in `schema`, or first on the search path when
/// `schema` is empty).
async fn index_validity(
    client: &Client,
    schema: &str,
    name: &str,
) -> Result<Option<bool>, DbError> {
    let row = client
        .query_opt(
            "SELECT i.indisvalid AND i.indisready FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relname = $1
                AND ($2 = '' AND n.oid = ANY (current_schemas(false)::regnamespace[]) OR n.nspname = $2)
              ORDER BY array_position(current_schemas(false)::regnamespace[], n.oid)
              LIMIT 1",
            &[&name, &schema],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn drop_index(client: &Client, schema: &str, name: &str) -> Result<(), DbError> {
    let target = if schema.is_empty() {
        quote_ident(name)
    } else {
        format!("{}.{}", quote_ident(schema), quote_ident(name))
    };
    client
        .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {target}"))
        .await?;
    Ok(())
}

/// The indexes of a table (given as quoted SQL), with whether each is valid.
async fn table_indexes(client: &Client, table: &str) -> Result<Vec<(String, bool)>, DbError> {
    let rows = client
        .query(
            "SELECT c.relname::text, i.indisvalid AND i.indisready FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = to_regclass($1)
              ORDER BY c.relname",
            &[&table],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn drop_index_in_table_schema(
    client: &Client,
    table: &str,
    index: &str,
) -> Result<(), DbError> {
    let schema: Option<String> = client
        .query_opt(
            "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
            &[&table],
        )
        .await?
        .map(|r| r.get(0));
    drop_index(client, schema.as_deref().unwrap_or(""), index).await
}

async fn table_of_index(client: &Client, index: &str) -> Result<Option<String>, DbError> {
    Ok(client
        .query_opt(
            "SELECT i.indrelid::regclass::text FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
            &[&index],
        )
        .await?
        .map(|r| r.get(0)))
}

async fn database_exists(client: &Client, name: &str) -> Result<bool, DbError> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some())
}

fn names(indexes: &[&(String, bool)]) -> String {
    indexes
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement on one line, clipped for messages.
pub fn clip(sql: &str) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(100) {
        Some((at, _)) => format!("{}...", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn landing(sql: &str) -> Landing {
        let parsed = pgshift_sql::parse(sql);
        Landing::of(&parsed.statements[0].node)
    }

    #[test]
    fn each_bare_statement_says_how_to_tell_it_landed() {
        assert_eq!(
            landing("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t (a)"),
            Landing::CreateIndex {
                schema: "s".into(),
                name: "i".into(),
                if_not_exists: true
            }
        );
        assert_eq!(
            landing("CREATE INDEX CONCURRENTLY ON t (a)"),
            Landing::CreateUnnamedIndex {
                table: "\"t\"".into()
            }
        );
        assert_eq!(
            landing("DROP INDEX CONCURRENTLY s.i"),
            Landing::DropIndex {
                schema: "s".into(),
                name: "i".into()
            }
        );
        assert_eq!(
            landing("ALTER TABLE p DETACH PARTITION c CONCURRENTLY"),
            Landing::DetachPartition {
                parent: "\"p\"".into(),
                child: "\"c\"".into()
            }
        );
        assert_eq!(
            landing("REINDEX INDEX CONCURRENTLY i"),
            Landing::Reindex {
                table: None,
                index: Some("\"i\"".into())
            }
        );
        assert_eq!(landing("VACUUM t"), Landing::Repeatable);
        assert_eq!(
            landing("CREATE DATABASE x"),
            Landing::CreateDatabase { name: "x".into() }
        );
        assert_eq!(
            landing("CREATE TABLESPACE x LOCATION '/x'"),
            Landing::Unknown
        );
    }

    #[test]
    fn the_record_survives_the_history_column() {
        let f = InFlight {
            unit: 3,
            pid: 42,
            backend_start: "2026-01-01 00:00:00+00".into(),
            sql: "CREATE INDEX CONCURRENTLY ON t (a)".into(),
            landing: Landing::CreateUnnamedIndex { table: "t".into() },
            existed_before: false,
            indexes_before: vec!["t_pkey".into()],
        };
        let text = serde_json::to_string(&f).expect("json");
        assert_eq!(serde_json::from_str::<InFlight>(&text).expect("back"), f);
    }
}
