//! `pgshift.online_changes`: the online change in progress, its plan as it was made when the
//! expand started, its phase and how far the phase got (recorded in each unit's own
//! transaction); `pgshift.online_tables`: one active online change per table.

use pgshift_db::DbError;
use tokio_postgres::Client;

use super::OnlinePlan;
use crate::error::RunError;

/// Where an online change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnlinePhase {
    /// `start` is running (or stopped partway: `start` again continues).
    Expanding,
    /// Expanded: old and new code both work. Next: deploy, then `complete` (or `rollback`).
    Expanded,
    /// `complete` is running (or stopped partway: `complete` again continues).
    Contracting,
    /// `rollback` is running (or stopped partway: `rollback` again continues).
    RollingBack,
}

impl OnlinePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            OnlinePhase::Expanding => "expanding",
            OnlinePhase::Expanded => "expanded",
            OnlinePhase::Contracting => "contracting",
            OnlinePhase::RollingBack => "rolling-back",
        }
    }

    fn parse(s: &str) -> OnlinePhase {
        match s {
            "expanded" => OnlinePhase::Expanded,
            "contracting" => OnlinePhase::Contracting,
            "rolling-back" => OnlinePhase::RollingBack,
            _ => OnlinePhase::Expanding,
        }
    }
}

/// One row of `pgshift.online_changes`.
#[derive(Debug, Clone)]
pub struct OnlineChange {
    pub version: String,
    pub name: String,
    pub checksum: String,
    pub phase: OnlinePhase,
    pub plan: OnlinePlan,
    /// Units of the current phase done.
    pub done: usize,
    /// Sub-units done of the next unit (a statement as written can run in several).
    pub sub: usize,
    pub started_at: String,
}

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS pgshift.online_changes (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    phase       text NOT NULL CHECK (phase IN ('expanding', 'expanded', 'contracting', 'rolling-back')),
    plan        jsonb NOT NULL,
    done        integer NOT NULL DEFAULT 0,
    sub         integer NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    started_by  text NOT NULL DEFAULT current_user
);
CREATE TABLE IF NOT EXISTS pgshift.online_tables (
    table_oid   oid PRIMARY KEY,
    table_name  text NOT NULL,
    version     text NOT NULL REFERENCES pgshift.online_changes ON DELETE CASCADE
);
COMMENT ON TABLE pgshift.online_changes IS 'Online (expand/contract) changes in progress. Do not edit by hand; use pgshift complete/rollback.';
";

pub async fn ensure(client: &Client) -> Result<(), DbError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('pgshift.online_tables') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        client.batch_execute(CREATE).await?;
    }
    Ok(())
}

/// The online changes in progress (at most one per table; usually one).
pub async fn read(client: &Client) -> Result<Vec<OnlineChange>, RunError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('pgshift.online_changes') IS NOT NULL",
            &[],
        )
        .await
        .map_err(DbError::from)?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT version, name, checksum, phase, plan::text, done, sub, started_at::text
               FROM pgshift.online_changes ORDER BY version",
            &[],
        )
        .await
        .map_err(DbError::from)?;
    let mut out = Vec::new();
    for r in rows {
        let plan: String = r.get(4);
        let plan: OnlinePlan = serde_json::from_str(&plan).map_err(|e| {
            RunError::Usage(format!(
                "the plan of online change {} in pgshift.online_changes cannot be read ({e}); it was written by another pgshift version",
                r.get::<_, String>(0)
            ))
        })?;
        out.push(OnlineChange {
            version: r.get(0),
            name: r.get(1),
            checksum: r.get(2),
            phase: OnlinePhase::parse(r.get(3)),
            plan,
            done: usize::try_from(r.get::<_, i32>(5)).unwrap_or(0),
            sub: usize::try_from(r.get::<_, i32>(6)).unwrap_or(0),
            started_at: r.get(7),
        });
    }
    Ok(out)
}

/// Records the start of an online change and claims its tables, in one transaction. A table
/// already in another online change refuses it, with nothing written.
pub async fn begin(
    client: &Client,
    version: &str,
    name: &str,
    checksum: &str,
    plan: &OnlinePlan,
) -> Result<(), RunError> {
    let json = serde_json::to_string(plan).map_err(|e| RunError::Usage(e.to_string()))?;
    client.batch_execute("BEGIN").await.map_err(DbError::from)?;
    let outcome = async {
        client
            .execute(
                "INSERT INTO pgshift.online_changes (version, name, checksum, phase, plan)
                 VALUES ($1, $2, $3, 'expanding', $4::text::jsonb)",
                &[&version, &name, &checksum, &json],
            )
            .await?;
        let mut tables: Vec<(&String, u32)> = Vec::new();
        for op in &plan.operations {
            tables.push((&op.table, op.table_oid));
            tables.extend(op.other_tables.iter().map(|(name, oid)| (name, *oid)));
        }
        for (table, oid) in tables {
            let other: Option<String> = client
                .query_opt(
                    "SELECT version FROM pgshift.online_tables WHERE table_oid = $1",
                    &[&oid],
                )
                .await?
                .map(|r| r.get(0));
            if let Some(other) = other.filter(|o| o != version) {
                return Ok(Some((table.clone(), other)));
            }
            client
                .execute(
                    "INSERT INTO pgshift.online_tables (table_oid, table_name, version)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&oid, table, &version],
                )
                .await?;
        }
        Ok::<_, tokio_postgres::Error>(None)
    }
    .await;
    match outcome {
        Ok(None) => {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(DbError::from)?;
            Ok(())
        }
        Ok(Some((table, other))) => {
            client
                .batch_execute("ROLLBACK")
                .await
                .map_err(DbError::from)?;
            Err(RunError::Usage(format!(
                "table {table} is already in online change {other}, which is not complete: `pgshift complete {other}` (or `pgshift rollback {other}`) first. Nothing was changed."
            )))
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(DbError::from(e).into())
        }
    }
}

/// Progress inside a phase; run in the unit's own transaction when it has one.
pub async fn set_progress(
    client: &Client,
    version: &str,
    done: usize,
    sub: usize,
) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE pgshift.online_changes SET done = $2, sub = $3, updated_at = now() WHERE version = $1",
            &[
                &version,
                &i32::try_from(done).unwrap_or(i32::MAX),
                &i32::try_from(sub).unwrap_or(i32::MAX),
            ],
        )
        .await?;
    Ok(())
}

/// A new phase, from its start.
pub async fn set_phase(client: &Client, version: &str, phase: OnlinePhase) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE pgshift.online_changes SET phase = $2, done = 0, sub = 0, updated_at = now() WHERE version = $1",
            &[&version, &phase.as_str()],
        )
        .await?;
    Ok(())
}

/// The change is over (completed or rolled back): its row and its tables go, with the
/// checkpoints of its backfills.
pub async fn end(client: &Client, version: &str) -> Result<(), DbError> {
    client
        .execute(
            "DELETE FROM pgshift.online_changes WHERE version = $1",
            &[&version],
        )
        .await?;
    let backfills: bool = client
        .query_one("SELECT to_regclass('pgshift.backfills') IS NOT NULL", &[])
        .await?
        .get(0);
    if backfills {
        client
            .execute(
                "DELETE FROM pgshift.backfills WHERE id LIKE $1 || '-online-%'",
                &[&version],
            )
            .await?;
    }
    Ok(())
}

/// The backfills of the expand that are not recorded as finished: `(id, status)`.
pub async fn unfinished_backfills(
    client: &Client,
    version: &str,
    ids: &[String],
) -> Result<Vec<(String, String)>, DbError> {
    let _ = version;
    let exists: bool = client
        .query_one("SELECT to_regclass('pgshift.backfills') IS NOT NULL", &[])
        .await?
        .get(0);
    let mut out = Vec::new();
    for id in ids {
        let status: Option<String> = if exists {
            client
                .query_opt("SELECT status FROM pgshift.backfills WHERE id = $1", &[id])
                .await?
                .map(|r| r.get(0))
        } else {
            None
        };
        if status.as_deref() != Some("done") {
            out.push((id.clone(), status.unwrap_or_else(|| "not started".into())));
        }
    }
    Ok(out)
}
