//! The statements a backfill runs, put together once from its definition and its walk, and
//! prepared by the server before the first batch (which is what reports a bad expression,
//! column or condition before anything runs).

use pgshift_db::DbError;
use pgshift_sql::ident::quote_ident;
use tokio_postgres::{Client, Statement};

use super::walk::{Table, Walk};
use super::{Backfill, BackfillError, Mode};

/// The statements of one backfill, prepared once; keys and pages travel as text parameters
/// cast to their type, and `plan_cache_mode = force_custom_plan` keeps every execution
/// planned for its own values (a generic plan for `id > $1` may scan the table).
pub(super) struct Statements {
    /// Batch bound: the key `n` rows on; with and without a lower bound.
    pub(super) locate: [Statement; 2],
    /// The update of one range; with and without a lower bound (pages: always with).
    pub(super) update: [Statement; 2],
    /// Counting what still needs the update in one range (and what gets NULL).
    pub(super) count: [Statement; 2],
    /// Counting what needs the update past the upper bound.
    pub(super) beyond: Statement,
    /// Counting what still needs the update in a range of pages (and, for a key walk, keys
    /// up to the upper bound).
    pub(super) count_pages: Statement,
    /// The checkpoint, in the batch's transaction; prepared once `pgshift.backfills`
    /// exists (a dry run never creates it).
    pub(super) checkpoint: Option<Statement>,
}

impl Statements {
    pub(super) async fn prepare(
        backfill: &Backfill,
        client: &Client,
        table: &Table,
        walk: &Walk,
        mode: &Mode,
    ) -> Result<Statements, BackfillError> {
        let spec = &backfill.spec;
        let from = from_clause(spec);
        let w = walk.width();
        let needed = needed_predicate(backfill, table, mode);
        let filter = spec
            .filter
            .as_deref()
            .map_or(String::new(), |f| format!(" AND ({f})"));
        let sets: Vec<String> = spec
            .assignments
            .iter()
            .map(|a| format!("{} = {}", quote_ident(&a.column), a.expression))
            .collect();
        let nulls: Vec<String> = spec
            .assignments
            .iter()
            .map(|a| format!("({}) IS NULL", a.expression))
            .collect();
        // Range conditions: [without lower bound, with lower bound]; pages always have both.
        let ranges: [String; 2] = match walk {
            Walk::Key { .. } => [
                walk.compare("<=", 1),
                format!("{} AND {}", walk.compare(">", 1), walk.compare("<=", 1 + w)),
            ],
            Walk::Pages => {
                let r = format!("{} AND {}", walk.compare(">=", 1), walk.compare("<", 2));
                [r.clone(), r]
            }
        };
        let mut update_sql = [String::new(), String::new()];
        let mut count_sql = [String::new(), String::new()];
        let mut locate_sql = [String::new(), String::new()];
        for i in 0..2 {
            update_sql[i] = format!(
                "UPDATE {from} SET {} WHERE {}{filter} AND ({needed})",
                sets.join(", "),
                ranges[i]
            );
            count_sql[i] = format!(
                "SELECT count(*) FILTER (WHERE {needed}), count(*) FILTER (WHERE {}) FROM {from} WHERE {}{filter}",
                nulls.join(" OR "),
                ranges[i]
            );
            let params_before_offset = if i == 0 { w } else { 2 * w };
            locate_sql[i] = format!(
                "SELECT {} FROM {from} WHERE {} ORDER BY {} OFFSET ${} LIMIT 1",
                walk.select_list(),
                ranges[i],
                walk.column_list(),
                params_before_offset + 1
            );
        }
        let prep = |sql: String| async move {
            client
                .prepare(&sql)
                .await
                .map_err(|e| (DbError::from(e), sql))
        };
        let invalid = |(err, _sql): (DbError, String)| match err {
            DbError::Query(server) => BackfillError::Invalid {
                table: table.name.to_string(),
                statement: spec.statement(),
                server,
            },
            other => other.into(),
        };
        let [u0, u1] = update_sql.clone();
        let [c0, c1] = count_sql;
        let [l0, l1] = locate_sql;
        let update = [
            prep(u0).await.map_err(invalid)?,
            prep(u1).await.map_err(invalid)?,
        ];
        let count = [
            prep(c0).await.map_err(invalid)?,
            prep(c1).await.map_err(invalid)?,
        ];
        let locate = match walk {
            Walk::Key { .. } => [
                prep(l0).await.map_err(invalid)?,
                prep(l1).await.map_err(invalid)?,
            ],
            // Not used by a ctid walk; any valid statement fills the slot.
            Walk::Pages => {
                let s = prep("SELECT 1".into()).await.map_err(invalid)?;
                [s.clone(), s]
            }
        };
        let beyond_sql = format!(
            "SELECT count(*) FROM {from} WHERE {}{filter} AND ({needed})",
            match walk {
                Walk::Key { .. } => walk.compare(">", 1),
                Walk::Pages => walk.compare(">=", 1),
            }
        );
        let beyond = prep(beyond_sql).await.map_err(invalid)?;
        let pages = Walk::Pages;
        let count_pages_sql = format!(
            "SELECT count(*) FILTER (WHERE {needed}), count(*) FILTER (WHERE {}) FROM {from} WHERE {} AND {}{}{filter}",
            nulls.join(" OR "),
            pages.compare(">=", 1),
            pages.compare("<", 2),
            match walk {
                Walk::Key { .. } => format!(" AND {}", walk.compare("<=", 3)),
                Walk::Pages => String::new(),
            },
        );
        let count_pages = prep(count_pages_sql).await.map_err(invalid)?;
        Ok(Statements {
            locate,
            update,
            count,
            beyond,
            count_pages,
            checkpoint: None,
        })
    }
}

/// `ONLY t AS a` as the statement names the table.
pub(super) fn from_clause(spec: &super::BackfillSpec) -> String {
    let mut s = format!(
        "{}{}",
        if spec.only { "ONLY " } else { "" },
        spec.table.quoted()
    );
    if let Some(alias) = &spec.alias {
        s.push_str(" AS ");
        s.push_str(&quote_ident(alias));
    }
    s
}

/// True for a row whose columns differ from what the SET expressions give: the row still
/// needs the update. Each expression is cast to its column's type, as the assignment will
/// (an `int` column compared with a `numeric` expression would otherwise always differ);
/// types without an `=` operator of their own (json, point, xml; enums, arrays and domains,
/// whose `=` is generic) compare as text, which every type has.
///
/// `true` for a backfill that runs once: there the comparison says nothing (every row
/// differs from `amount * 100`, done or not), and the walk's cursor is what keeps a row from
/// being updated twice.
pub(super) fn needed_predicate(backfill: &Backfill, table: &Table, mode: &Mode) -> String {
    if let Mode::Once { .. } = mode {
        return "true".to_owned();
    }
    let parts: Vec<String> = backfill
        .spec
        .assignments
        .iter()
        .map(|a| {
            let column = table.columns.iter().find(|c| c.name == a.column);
            let ty = column.map_or("text", |c| c.type_name.as_str());
            let col = quote_ident(&a.column);
            if !column.is_some_and(|c| c.has_equality) {
                format!(
                    "{col}::text IS DISTINCT FROM (({})::{ty})::text",
                    a.expression
                )
            } else {
                format!("{col} IS DISTINCT FROM ({})::{ty}", a.expression)
            }
        })
        .collect();
    parts.join(" OR ")
}

/// The checkpoint, in each batch's transaction: the cursor and counters, and back the pause
/// switch, the sessions waiting on this transaction's row locks, the table's file node, and
/// how many other client sessions are at work: running a query, or in a transaction that ran
/// one within the last second (those with this session's `application_name`, pgshift's own,
/// left out). `pg_stat_activity` is read once for both
/// counts.
pub(super) const CHECKPOINT: &str = "UPDATE pgshift.backfills SET cursor = $2, rows_done = $3,
                batches = batches + 1, batch_size = $4, progress = $5, rows_per_second = $6,
                throttle_reason = $7, heartbeat = now(), status = 'running'
           FROM (SELECT count(*) FILTER (WHERE CASE WHEN wait_event_type = 'Lock'
                                          THEN pg_backend_pid() = ANY (pg_blocking_pids(pid))
                                          ELSE false END) AS blocked,
                        count(*) FILTER (WHERE (state = 'active'
                                                OR (state LIKE 'idle in transaction%'
                                                    AND state_change > now() - interval '1 second'))
                                           AND backend_type = 'client backend'
                                           AND pid <> pg_backend_pid()
                                           AND application_name <> (SELECT application_name
                                                 FROM pg_stat_get_activity(pg_backend_pid())))
                          AS others
                   FROM pg_stat_activity) sessions
          WHERE id = $1
          RETURNING pause_requested, sessions.blocked,
                pg_relation_filenode($8::oid::regclass), sessions.others";
