//! Catalog introspection: what pgshift needs to know about the live database before it
//! takes a lock — the server version, how big the tables are, and who else holds (or waits
//! for) a lock that would make our statement queue.
//!
//! Every function takes a plain `&tokio_postgres::Client`, so it works on a [`Connection`]
//! (which derefs to one) and inside a transaction alike. Queries pass values as parameters;
//! the one place that must put a name into SQL quotes it through
//! [`quote_ident`](pgshift_sql::ident::quote_ident).
//!
//! The queries need PostgreSQL 12 or later (`pg_partition_tree`); pgshift supports from
//! [`OLDEST_SUPPORTED_MAJOR`].
//!
//! [`Connection`]: crate::Connection

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::{Connection, DbError};
use pgshift_sql::ident::QualifiedName;
use pgshift_sql::LockLevel;

/// The oldest PostgreSQL major release pgshift supports: the oldest the test suite runs on
/// (CI fetches 14 and 18 beside the machine's server) and the release `check` assumes when
/// none is configured. The catalog queries here would work from 12 (`pg_partition_tree`), but
/// nothing proves the rest there. `pgshift --version` shows it.
pub const OLDEST_SUPPORTED_MAJOR: u32 = 14;

/// The server's version as a number, e.g. `150018` for 15.18 (`server_version_num`).
pub async fn server_version_num(client: &Client) -> Result<i32, DbError> {
    let row = client.query_one("SHOW server_version_num", &[]).await?;
    let text: String = row.try_get(0)?;
    text.trim().parse().map_err(|_| DbError::UnexpectedValue {
        what: "server_version_num",
        value: text,
    })
}

/// What kind of relation a name refers to (`pg_class.relkind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// `r`: an ordinary table.
    Table,
    /// `p`: a partitioned table (its size and rows are the sums over its leaf partitions).
    PartitionedTable,
    /// `v`
    View,
    /// `m`
    MaterializedView,
    /// `i`
    Index,
    /// `I`
    PartitionedIndex,
    /// `S`
    Sequence,
    /// `f`
    ForeignTable,
    /// `t`
    ToastTable,
    /// `c`
    CompositeType,
}

/// The kind of the relation `name` (quoted, as SQL names it) resolves to; `None` when there
/// is none.
pub async fn relation_kind(client: &Client, name: &str) -> Result<Option<RelationKind>, DbError> {
    let row = client
        .query_opt(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)",
            &[&name],
        )
        .await?;
    Ok(row.and_then(|r| RelationKind::from_relkind(r.get(0))))
}

impl RelationKind {
    /// `pg_class.relkind` → the kind.
    pub fn from_relkind(code: &str) -> Option<RelationKind> {
        Some(match code {
            "r" => RelationKind::Table,
            "p" => RelationKind::PartitionedTable,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            "i" => RelationKind::Index,
            "I" => RelationKind::PartitionedIndex,
            "S" => RelationKind::Sequence,
            "f" => RelationKind::ForeignTable,
            "t" => RelationKind::ToastTable,
            "c" => RelationKind::CompositeType,
            _ => return None,
        })
    }

    /// Whether rows can be counted by reading the relation locally.
    fn holds_local_rows(self) -> bool {
        matches!(
            self,
            RelationKind::Table | RelationKind::PartitionedTable | RelationKind::MaterializedView
        )
    }
}

/// Where [`TableSize::rows_estimate`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowsSource {
    /// The planner statistics (`pg_class.reltuples`, kept by VACUUM/ANALYZE).
    Statistics,
    /// The table was never analysed, so its rows were counted (it has fewer than
    /// [`BOUNDED_COUNT_LIMIT`] rows: the count is exact).
    Counted,
    /// Never analysed, and the bounded count stopped at [`BOUNDED_COUNT_LIMIT`]: the table
    /// has at least that many rows.
    AtLeast,
    /// Never analysed and not countable (a view, a foreign table, or the count could not
    /// get its lock in time); `rows_estimate` is -1.
    Unknown,
}

/// A never-analysed table is counted, but reading stops after this many rows so that a big
/// table freshly loaded without ANALYZE does not turn `plan` into a full scan.
pub const BOUNDED_COUNT_LIMIT: i64 = 100_000;

/// The live size of one relation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSize {
    /// The resolved, schema-qualified name.
    pub name: QualifiedName,
    /// `pg_class.oid`.
    pub oid: u32,
    /// Estimated rows (see `rows_source`); -1 when unknown.
    pub rows_estimate: i64,
    /// Where `rows_estimate` comes from.
    pub rows_source: RowsSource,
    /// Table + indexes + TOAST, in bytes (`pg_total_relation_size`; for a partitioned table,
    /// the sum over its leaf partitions).
    pub total_bytes: i64,
    /// What kind of relation it is.
    pub kind: RelationKind,
}

/// Looks up the size and row estimate of each named relation. Names that do not exist are
/// left out of the result (compare the returned names to find them).
///
/// When a table was never analysed (`reltuples = -1`), its rows are counted, reading at most
/// [`BOUNDED_COUNT_LIMIT`] rows. That count takes an ACCESS SHARE lock on the table (held
/// until the caller's transaction ends, if it is in one) and waits behind an ACCESS
/// EXCLUSIVE lock: callers that must not wait should set `lock_timeout` on the session first;
/// a count that runs into `lock_timeout` or `statement_timeout` gives [`RowsSource::Unknown`].
pub async fn table_sizes(
    client: &Client,
    names: &[QualifiedName],
) -> Result<Vec<TableSize>, DbError> {
    const SQL: &str = "
        SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
               CASE WHEN c.relkind = 'p' THEN
                        (SELECT CASE WHEN count(*) > 0 AND bool_and(pc.reltuples >= 0)
                                     THEN sum(pc.reltuples)::float8 ELSE -1 END
                           FROM pg_partition_tree(c.oid) t JOIN pg_class pc ON pc.oid = t.relid
                          WHERE t.isleaf)
                    ELSE c.reltuples::float8 END,
               CASE WHEN c.relkind = 'p' THEN
                        (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)::int8
                           FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
                    ELSE pg_total_relation_size(c.oid) END
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = to_regclass($1)";
    let statement = client.prepare(SQL).await?;
    let mut sizes = Vec::with_capacity(names.len());
    for name in names {
        let Some(row) = client.query_opt(&statement, &[&name.quoted()]).await? else {
            continue;
        };
        let oid: u32 = row.try_get(0)?;
        let resolved =
            QualifiedName::qualified(row.try_get::<_, String>(1)?, row.try_get::<_, String>(2)?);
        let relkind: String = row.try_get(3)?;
        let kind =
            RelationKind::from_relkind(&relkind).ok_or_else(|| DbError::UnexpectedValue {
                what: "pg_class.relkind",
                value: relkind.clone(),
            })?;
        let reltuples: f64 = row.try_get(4)?;
        let total_bytes: i64 = row.try_get(5)?;
        let (rows_estimate, rows_source) = if reltuples >= 0.0 {
            (reltuples.round() as i64, RowsSource::Statistics)
        } else if kind.holds_local_rows() {
            bounded_count(client, &resolved).await?
        } else {
            (-1, RowsSource::Unknown)
        };
        sizes.push(TableSize {
            name: resolved,
            oid,
            rows_estimate,
            rows_source,
            total_bytes,
            kind,
        });
    }
    Ok(sizes)
}

async fn bounded_count(
    client: &Client,
    table: &QualifiedName,
) -> Result<(i64, RowsSource), DbError> {
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {BOUNDED_COUNT_LIMIT}) AS bounded",
        table.quoted()
    );
    match client.query_one(&sql, &[]).await {
        Ok(row) => {
            let rows: i64 = row.try_get(0)?;
            let source = if rows >= BOUNDED_COUNT_LIMIT {
                RowsSource::AtLeast
            } else {
                RowsSource::Counted
            };
            Ok((rows, source))
        }
        Err(err) => {
            let err = DbError::from(err);
            match err.as_query_error() {
                Some(q) if q.is_lock_timeout() || q.is_query_canceled() => {
                    Ok((-1, RowsSource::Unknown))
                }
                _ => Err(err),
            }
        }
    }
}

/// A lock one session holds or waits for on one of the tables asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLock {
    /// The table (`pg_locks.relation`).
    pub table_oid: u32,
    /// The mode held or wanted.
    pub mode: LockLevel,
    /// `true` if held, `false` if the session is queued for it.
    pub granted: bool,
}

/// Another session, as `pg_stat_activity` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Server process id (for `pg_cancel_backend` / `pg_terminate_backend`).
    pub pid: i32,
    /// `application_name` — usually says which service it is.
    pub application_name: String,
    /// The database user.
    pub user: String,
    /// `active`, `idle in transaction`, ...
    pub state: String,
    /// How long its current transaction has been open; `None` outside a transaction.
    pub xact_age: Option<Duration>,
    /// Its current (or last) statement, cut to [`QUERY_TEXT_LIMIT`] characters.
    pub query: String,
    /// The lock that makes it relevant, for [`conflicting_sessions`]; `None` for
    /// [`long_transactions`].
    pub lock: Option<SessionLock>,
}

/// Query texts in [`Session`] are cut to this many characters.
pub const QUERY_TEXT_LIMIT: i32 = 300;

/// Sessions other than the caller's that hold, or are queued for, a lock on any of
/// `table_oids` that conflicts with `wanted` — the sessions our statement would wait behind.
/// Longest-open transactions come first. A session appears once per conflicting lock.
///
/// Locks of prepared transactions (which have no session) are not reported. Callers that
/// monitor from a second connection should also filter out their migrating session's pid.
pub async fn conflicting_sessions(
    client: &Client,
    table_oids: &[u32],
    wanted: LockLevel,
) -> Result<Vec<Session>, DbError> {
    let oids: Vec<String> = table_oids.iter().map(|oid| oid.to_string()).collect();
    let wanted: Vec<(&str, LockLevel)> = oids.iter().map(|n| (n.as_str(), wanted)).collect();
    let (tables, modes) = conflict_pairs(&wanted);
    // Typed parameters: one round trip, nothing prepared first.
    let rows = client
        .query_typed(
            SESSIONS_LOCKING_OIDS,
            &[
                (&tables, Type::TEXT_ARRAY),
                (&modes, Type::TEXT_ARRAY),
                (&QUERY_TEXT_LIMIT, Type::INT4),
            ],
        )
        .await?;
    rows.iter().map(locking_session_from_row).collect()
}

/// Like [`conflicting_sessions`], for several tables at once, each with the lock it needs,
/// named as SQL (`"public"."t"`, resolved by `to_regclass` on the server; a table that does
/// not exist is in nobody's way). The lock-queue guard asks this before every unit that
/// takes a strong lock: one round trip, on a statement the session prepares once.
pub async fn sessions_in_the_way(
    conn: &Connection,
    wanted: &[(&str, LockLevel)],
) -> Result<Vec<Session>, DbError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let (tables, modes) = conflict_pairs(wanted);
    let rows = conn
        .query_prepared(
            SESSIONS_LOCKING_NAMES,
            &[Type::TEXT_ARRAY, Type::TEXT_ARRAY, Type::INT4],
            &[&tables, &modes, &QUERY_TEXT_LIMIT],
        )
        .await?;
    rows.iter().map(locking_session_from_row).collect()
}

/// One `(table, mode)` pair per lock mode that conflicts with what each table needs.
fn conflict_pairs<'a>(wanted: &[(&'a str, LockLevel)]) -> (Vec<&'a str>, Vec<&'static str>) {
    let mut tables = Vec::new();
    let mut modes = Vec::new();
    for (table, level) in wanted {
        for mode in level.conflicting_levels() {
            tables.push(*table);
            modes.push(mode.pg_name());
        }
    }
    (tables, modes)
}

/// The sessions holding or queued for a lock in `$2` (modes) on a table in `$1`, paired
/// with the modes; `$3`: how much of their query text.
macro_rules! sessions_locking {
    ($relation:literal) => {
        concat!(
            "SELECT * FROM (
                SELECT DISTINCT ON (l.pid, l.relation, l.mode, l.granted)
                       a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
                       coalesce(a.state, ''),
                       extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
                       left(coalesce(a.query, ''), $3),
                       l.relation, l.mode, l.granted, a.xact_start
                  FROM unnest($1::text[], $2::text[]) AS w(rel, mode)
                  JOIN pg_locks l ON l.relation = ",
            $relation,
            " AND l.mode = w.mode
                  JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'relation'
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND l.pid <> pg_backend_pid()) s
             ORDER BY s.xact_start NULLS LAST, s.pid"
        )
    };
}
const SESSIONS_LOCKING_OIDS: &str = sessions_locking!("w.rel::oid");
const SESSIONS_LOCKING_NAMES: &str = sessions_locking!("to_regclass(w.rel)::oid");

fn locking_session_from_row(row: &tokio_postgres::Row) -> Result<Session, DbError> {
    let mode_name: String = row.try_get(7)?;
    let mode = LockLevel::from_name(&mode_name).ok_or_else(|| DbError::UnexpectedValue {
        what: "pg_locks.mode",
        value: mode_name.clone(),
    })?;
    Ok(Session {
        lock: Some(SessionLock {
            table_oid: row.try_get(6)?,
            mode,
            granted: row.try_get(8)?,
        }),
        ..session_from_row(row)?
    })
}

/// Client sessions in the current database whose transaction has been open for longer than
/// `older_than`, oldest first. They hold back vacuum and, if they touched a table, make DDL
/// on it queue.
pub async fn long_transactions(
    client: &Client,
    older_than: Duration,
) -> Result<Vec<Session>, DbError> {
    const SQL: &str = "
        SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
               coalesce(a.state, ''),
               extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
               left(coalesce(a.query, ''), $2)
          FROM pg_stat_activity a
         WHERE a.datname = current_database()
           AND a.backend_type = 'client backend'
           AND a.pid <> pg_backend_pid()
           AND a.xact_start < clock_timestamp() - make_interval(secs => $1)
         ORDER BY a.xact_start, a.pid";
    let rows = client
        .query(SQL, &[&older_than.as_secs_f64(), &QUERY_TEXT_LIMIT])
        .await?;
    rows.iter().map(session_from_row).collect()
}

/// Reads the six leading session columns shared by the queries above.
fn session_from_row(row: &tokio_postgres::Row) -> Result<Session, DbError> {
    let age: Option<f64> = row.try_get(4)?;
    Ok(Session {
        pid: row.try_get(0)?,
        application_name: row.try_get(1)?,
        user: row.try_get(2)?,
        state: row.try_get(3)?,
        xact_age: age
            .filter(|secs| secs.is_finite())
            .map(|secs| Duration::from_secs_f64(secs.max(0.0))),
        query: row.try_get(5)?,
        lock: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relkind_codes_map_to_kinds() {
        assert_eq!(RelationKind::from_relkind("r"), Some(RelationKind::Table));
        assert_eq!(
            RelationKind::from_relkind("p"),
            Some(RelationKind::PartitionedTable)
        );
        assert_eq!(
            RelationKind::from_relkind("I"),
            Some(RelationKind::PartitionedIndex)
        );
        assert_eq!(RelationKind::from_relkind("x"), None);
        assert!(RelationKind::MaterializedView.holds_local_rows());
        assert!(!RelationKind::ForeignTable.holds_local_rows());
    }
}

/// What a running session is doing, for a progress line: what it waits for and, for an index
/// build, how far it is (PostgreSQL's `pg_stat_progress_create_index`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// `Lock`, `IO`, `IPC`, ... (`pg_stat_activity.wait_event_type`); `None` when it runs.
    pub wait_event_type: Option<String>,
    /// E.g. `relation`, `transactionid`.
    pub wait_event: Option<String>,
    /// The sessions it waits for (`pg_blocking_pids`).
    pub blocked_by: Vec<i32>,
    /// `(phase, done, total)` of an index build: blocks while scanning the table, tuples while
    /// loading and validating.
    pub index_build: Option<(String, i64, i64)>,
}

/// The activity of session `pid`, `None` when it is gone.
pub async fn session_activity(client: &Client, pid: i32) -> Result<Option<Activity>, DbError> {
    let row = client
        .query_opt(
            "SELECT a.wait_event_type, a.wait_event, pg_blocking_pids(a.pid),
                    p.phase, CASE WHEN p.blocks_total > 0 THEN p.blocks_done ELSE p.tuples_done END,
                    CASE WHEN p.blocks_total > 0 THEN p.blocks_total ELSE p.tuples_total END
               FROM pg_stat_activity a
               LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid
              WHERE a.pid = $1",
            &[&pid],
        )
        .await?;
    Ok(row.map(|r| Activity {
        wait_event_type: r.get(0),
        wait_event: r.get(1),
        blocked_by: r.get(2),
        index_build: match (r.get::<_, Option<String>>(3), r.get(4), r.get(5)) {
            (Some(phase), Some(done), Some(total)) => Some((phase, done, total)),
            _ => None,
        },
    }))
}
