//! A backfill of a partitioned table walks each leaf partition on its own: a leaf is an
//! ordinary table with its own key (or TID ranges when it has none), so a batch is one index
//! range in one leaf instead of a probe into every partition, and leaves can be walked
//! several at once ([`super::BackfillOptions::partitions_at_once`]).
//!
//! Each leaf is a backfill of its own in `pgshift.backfills`, named `<id>:<leaf oid>` (an oid
//! does not change when a table is rewritten or renamed), checkpointed, throttled and proved
//! like any other; the parent's row (`<id>`) says the whole is done once every leaf is, in
//! the statement that records it. A run killed at any moment resumes every leaf where it
//! stopped; a leaf finished before is not walked again.

use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use pgshift_db::catalog::{relation_kind, RelationKind};
use pgshift_db::{Connection, DatabaseUrl, DbError};
use pgshift_sql::ident::QualifiedName;
use tokio_postgres::Client;

use super::run::{Job, Outcome};
use super::state;
use super::{Backfill, BackfillError, BackfillSpec};
use crate::event::Observer;

/// The leaf partitions of `table`, largest first (the longest walks start first), when it is
/// a partitioned table; `None` when it is not one.
pub async fn leaves(
    client: &Client,
    table: &QualifiedName,
) -> Result<Option<Vec<(u32, QualifiedName)>>, DbError> {
    if relation_kind(client, &table.quoted()).await? != Some(RelationKind::PartitionedTable) {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text
               FROM pg_partition_tree(to_regclass($1)) t
               JOIN pg_class c ON c.oid = t.relid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE t.isleaf AND c.relkind = 'r'
              ORDER BY c.relpages DESC, c.oid",
            &[&table.quoted()],
        )
        .await?;
    Ok(Some(
        rows.iter()
            .map(|r| {
                (
                    r.get::<_, u32>(0),
                    QualifiedName::qualified(r.get::<_, String>(1), r.get::<_, String>(2)),
                )
            })
            .collect(),
    ))
}

/// The backfill of one leaf: the parent's statement on the leaf, named after the parent.
fn leaf_backfill(parent: &Backfill, oid: u32, leaf: &QualifiedName, restart: bool) -> Backfill {
    let mut options = parent.options.clone();
    options.restart = restart;
    // The rate is the whole's: shared by the leaves walked at once.
    let at_once = parent.options.partitions_at_once.max(1) as u64;
    options.max_rows_per_second = options.max_rows_per_second.map(|r| (r / at_once).max(1));
    // So is the share of time in batches while the application is busy (1 stays 1: full
    // speed whatever the application does).
    if let Some(busy) = options.when_busy.as_mut().filter(|b| b.duty < 1.0) {
        busy.duty /= at_once as f64;
    }
    // A leaf finished before stays finished unless the whole starts over: the parent's row
    // decides (below), so a run killed after some leaves finished does not walk them again.
    options.restart_if_done = false;
    // The parent's row and every leaf's are recorded done in one statement, at the end.
    options.caller_marks_done = true;
    Backfill {
        spec: BackfillSpec {
            id: format!("{}:{oid}", parent.spec.id),
            table: leaf.clone(),
            only: true,
            // Named as the statement names the partitioned table, so that `events.a` in an
            // expression reads the leaf's row.
            alias: parent
                .spec
                .alias
                .clone()
                .or_else(|| Some(parent.spec.table.name.clone())),
            ..parent.spec.clone()
        },
        options,
    }
}

/// Runs `backfill` over the leaves of its partitioned table, at most
/// `partitions_at_once` at a time, each on a session of its own.
pub async fn run(
    backfill: &Backfill,
    conn: &Connection,
    observer: &dyn Observer,
    leaves: Vec<(u32, QualifiedName)>,
) -> Result<Outcome, BackfillError> {
    let started = Instant::now();
    let client = conn.client();
    let spec = &backfill.spec;
    let Some(table) = super::walk::table(client, &spec.table).await? else {
        return Err(BackfillError::NoTable {
            table: spec.table.to_string(),
        });
    };
    for a in &spec.assignments {
        if !table.columns.iter().any(|c| c.name == a.column) {
            return Err(BackfillError::NoColumn {
                table: table.name.to_string(),
                column: a.column.clone(),
            });
        }
    }
    // Bad input fails before anything is written (not even `pgshift.backfills`): the first
    // leaf is read and its statements tried (the others have the same columns and
    // expressions).
    if let Some((oid, leaf)) = leaves.first() {
        let first = leaf_backfill(backfill, *oid, leaf, false);
        Job::prepare(&first, client, observer).await?;
    }
    state::ensure(client).await?;
    let (saved, restart) = super::run::recorded(backfill, client).await?;
    if let Some(saved) = &saved {
        if saved.status == "done" && !restart {
            return Ok(Outcome::done_before(
                spec,
                &table.name,
                saved,
                started,
                None,
            ));
        }
    }
    let children: Vec<Backfill> = leaves
        .iter()
        .map(|(oid, leaf)| leaf_backfill(backfill, *oid, leaf, restart))
        .collect();
    if !state::try_lock(client, &spec.id).await? {
        let (owner, pid) = state::holder(client, &spec.id).await?.unwrap_or((None, 0));
        return Err(BackfillError::Running {
            id: spec.id.clone(),
            owner,
            pid,
        });
    }
    let result = run_leaves(backfill, conn, observer, &table.name, &children, restart).await;
    let _ = state::unlock(client, &spec.id).await;
    if let Err(err) = &result {
        let _ = client
            .execute(
                "UPDATE pgshift.backfills SET status = 'failed', last_error = $2,
                        heartbeat = now() WHERE id = $1 AND status <> 'done'",
                &[&spec.id, &err.to_string()],
            )
            .await;
    }
    let mut outcome = result?;
    outcome.duration = started.elapsed();
    Ok(outcome)
}

async fn run_leaves(
    backfill: &Backfill,
    conn: &Connection,
    observer: &dyn Observer,
    table: &QualifiedName,
    children: &[Backfill],
    restart: bool,
) -> Result<Outcome, BackfillError> {
    let client = conn.client();
    let spec = &backfill.spec;
    let at_once = backfill.options.partitions_at_once.max(1);
    client
        .execute(
            "INSERT INTO pgshift.backfills AS b (id, table_name, statement, walk, status, owner,
                    owner_pid, heartbeat)
             VALUES ($1, $2, $3, $4, 'running', $5, pg_backend_pid(), now())
             ON CONFLICT (id) DO UPDATE SET table_name = $2, statement = $3, walk = $4,
                    status = 'running', owner = $5, owner_pid = pg_backend_pid(),
                    heartbeat = now(), last_error = NULL, finished_at = NULL,
                    rows_done = CASE WHEN $6 THEN 0 ELSE b.rows_done END,
                    started_at = CASE WHEN $6 THEN now() ELSE b.started_at END",
            &[
                &spec.id,
                &table.to_string(),
                &spec.statement(),
                &format!(
                    "{} partitions, {} at once",
                    children.len(),
                    at_once.min(children.len().max(1))
                ),
                &super::run::owner(),
                &restart,
            ],
        )
        .await
        .map_err(DbError::from)?;
    // At most `at_once` leaves in flight; the next starts as one finishes. The first error
    // ends the run (the other leaves' sessions close, their open batch rolled back).
    let url = conn.url();
    // The leaves' sessions resolve names as this one does (a migration may have set it).
    let search_path: String = client
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .map_err(DbError::from)?
        .get(0);
    let mut waiting = children.iter();
    let mut running = FuturesUnordered::new();
    let mut outcomes = Vec::with_capacity(children.len());
    loop {
        while running.len() < at_once {
            let Some(child) = waiting.next() else { break };
            running.push(run_leaf(child, url, &search_path, observer));
        }
        match running.next().await {
            Some(outcome) => outcomes.push(outcome?),
            None => break,
        }
    }
    let total: u64 = outcomes.iter().map(|o| o.rows_total).sum();
    client
        .execute(
            "UPDATE pgshift.backfills SET rows_done = $2, heartbeat = now(),
                    batches = (SELECT coalesce(sum(batches), 0) FROM pgshift.backfills
                                WHERE left(id, length($1) + 1) = $1 || ':')
              WHERE id = $1",
            &[&spec.id, &(total as i64)],
        )
        .await
        .map_err(DbError::from)?;
    if !backfill.options.caller_marks_done {
        state::mark_done(client, &spec.id).await?;
    }
    Ok(Outcome {
        id: spec.id.clone(),
        table: table.to_string(),
        rows_updated: outcomes.iter().map(|o| o.rows_updated).sum(),
        rows_total: total,
        batches: outcomes.iter().map(|o| o.batches).sum(),
        passes: outcomes.iter().map(|o| o.passes).max().unwrap_or(0),
        duration: std::time::Duration::ZERO,
        null_results: outcomes.iter().map(|o| o.null_results).sum(),
        beyond_bound: outcomes.iter().map(|o| o.beyond_bound).sum(),
        already_done: !outcomes.is_empty() && outcomes.iter().all(|o| o.already_done),
        runs_once: outcomes.iter().find_map(|o| o.runs_once.clone()),
    })
}

/// One leaf, on a session of its own with the given `search_path`.
async fn run_leaf(
    child: &Backfill,
    url: &DatabaseUrl,
    search_path: &str,
    observer: &dyn Observer,
) -> Result<Outcome, BackfillError> {
    let conn = pgshift_db::connect(url).await?;
    conn.client()
        .query_one(
            "SELECT set_config('search_path', $1, false)",
            &[&search_path],
        )
        .await
        .map_err(DbError::from)?;
    child.run(&conn, observer).await
}

/// `--dry-run` of a partitioned table's backfill: each leaf estimated as its own, summed; the
/// time as the leaves walked `partitions_at_once` at a time would take it.
pub async fn dry_run(
    backfill: &Backfill,
    conn: &Connection,
    leaves: Vec<(u32, QualifiedName)>,
) -> Result<super::Estimate, BackfillError> {
    let mut total = super::Estimate {
        id: backfill.spec.id.clone(),
        table: backfill.spec.table.to_string(),
        walk: format!(
            "{} partitions, {} at once",
            leaves.len(),
            backfill
                .options
                .partitions_at_once
                .max(1)
                .min(leaves.len().max(1))
        ),
        statement: backfill.spec.statement(),
        table_rows: 0,
        rows_needed: 0,
        batches: 0,
        wal_bytes: 0,
        time: std::time::Duration::ZERO,
        sample_rows: 0,
        sample_duration: std::time::Duration::ZERO,
        runs_once: None,
    };
    for (oid, leaf) in &leaves {
        let e = super::dry_run(&leaf_backfill(backfill, *oid, leaf, false), conn).await?;
        total.table_rows += e.table_rows;
        total.rows_needed += e.rows_needed;
        total.batches += e.batches;
        total.wal_bytes += e.wal_bytes;
        total.time += e.time;
        total.sample_rows += e.sample_rows;
        total.sample_duration += e.sample_duration;
        total.runs_once = total.runs_once.or(e.runs_once);
    }
    total.time /= backfill
        .options
        .partitions_at_once
        .clamp(1, leaves.len().max(1)) as u32;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backfill::{BackfillOptions, BusyOptions};

    fn parent(when_busy: Option<BusyOptions>, max_rate: Option<u64>) -> Backfill {
        Backfill {
            spec: BackfillSpec::from_flags("events", "b = a", None, None).expect("spec"),
            options: BackfillOptions {
                partitions_at_once: 2,
                when_busy,
                max_rows_per_second: max_rate,
                ..BackfillOptions::default()
            },
        }
    }

    #[test]
    fn the_leaves_walked_at_once_share_the_rate_and_the_busy_share() {
        let leaf = QualifiedName::qualified("public".to_owned(), "events_1".to_owned());
        let b = leaf_backfill(
            &parent(Some(BusyOptions::default()), Some(1000)),
            1,
            &leaf,
            false,
        );
        assert_eq!(b.options.max_rows_per_second, Some(500));
        assert_eq!(b.options.when_busy.map(|w| w.duty), Some(0.05));
        // 1 (full speed whatever the application does) stays 1.
        let full = BusyOptions {
            duty: 1.0,
            ..BusyOptions::default()
        };
        let b = leaf_backfill(&parent(Some(full), None), 1, &leaf, false);
        assert_eq!(b.options.when_busy.map(|w| w.duty), Some(1.0));
    }
}
