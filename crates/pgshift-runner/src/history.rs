//! The history table, `pgshift.migrations`: what was applied, when, by whom, how long it
//! took, with which checksum, the down SQL (so a revert works when the file is gone), and how
//! far a migration that runs in several units got.

use pgshift_db::{Connection, DbError};
use pgshift_sql::ident::quote_ident;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use crate::error::{HistoryPermission, RunError};
use crate::inflight::InFlight;

/// The schema pgshift owns in every database it migrates.
pub const SCHEMA: &str = "pgshift";

/// The state of one history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowState {
    /// Ran to the end.
    Applied,
    /// Started, stopped after `progress` of `units` units (a crash, or a failure outside a
    /// transaction). The next `up` resumes it.
    Partial,
    /// Its down was started and stopped after `progress` units. The next `down` finishes it.
    Reverting,
    /// Marked applied by `pgshift baseline` without running.
    Baseline,
    /// Marked applied because another tool's history table said so.
    Adopted,
}

impl RowState {
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Applied => "applied",
            RowState::Partial => "partial",
            RowState::Reverting => "reverting",
            RowState::Baseline => "baseline",
            RowState::Adopted => "adopted",
        }
    }

    fn parse(s: &str) -> RowState {
        match s {
            "partial" => RowState::Partial,
            "reverting" => RowState::Reverting,
            "baseline" => RowState::Baseline,
            "adopted" => RowState::Adopted,
            _ => RowState::Applied,
        }
    }

    /// Whether the migration's effects are (entirely) in the database.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            RowState::Applied | RowState::Baseline | RowState::Adopted
        )
    }
}

/// One row of `pgshift.migrations`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryRow {
    pub version: String,
    pub name: String,
    pub checksum: String,
    pub state: RowState,
    pub progress: i32,
    pub units: i32,
    pub applied_at: String,
    pub applied_by: String,
    pub duration_ms: Option<i64>,
    #[serde(skip)]
    pub down_sql: Option<String>,
    pub path: Option<String>,
    /// A statement sent outside any transaction whose end was not recorded (the run died
    /// while it ran): the next run settles it first.
    #[serde(skip)]
    pub inflight: Option<InFlight>,
    /// The fingerprint of each unit as it ran, so a resumed migration is checked against the
    /// units already done rather than the whole file (empty in rows written before pgshift
    /// recorded them).
    #[serde(skip)]
    pub unit_digests: Vec<String>,
}

/// The schema, created only when missing: `CREATE SCHEMA IF NOT EXISTS` still needs the
/// `CREATE` privilege on the database when the schema exists (the server checks it first), and
/// a role that an owner gave only `USAGE, CREATE ON SCHEMA pgshift` must get past it.
const CREATE_SCHEMA: &str = "CREATE SCHEMA IF NOT EXISTS pgshift;";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS pgshift.migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    state       text NOT NULL DEFAULT 'applied'
                CHECK (state IN ('applied', 'partial', 'reverting', 'baseline', 'adopted')),
    progress    integer NOT NULL DEFAULT 0,
    units       integer NOT NULL DEFAULT 1,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  text NOT NULL,
    duration_ms bigint,
    down_sql    text,
    path        text,
    format      text,
    inflight    jsonb,
    unit_digests text[]
);
COMMENT ON TABLE pgshift.migrations IS 'Migrations applied by pgshift. Do not edit by hand; use pgshift baseline/restamp.';
";

/// The rows of other tools' history tables pgshift has already taken into account: a version
/// the other tool records that is not here is new (that tool applied it since), while one
/// that is here but missing from `pgshift.migrations` was reverted by pgshift.
const CREATE_FOREIGN: &str = "
CREATE TABLE IF NOT EXISTS pgshift.foreign_history (
    tool     text NOT NULL,
    version  text NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tool, version)
);
COMMENT ON TABLE pgshift.foreign_history IS 'Versions another migration tool recorded, as pgshift last read them. Do not edit by hand.';
";

/// Creates `pgshift.foreign_history` when missing; true when it was missing.
pub async fn ensure_foreign(client: &Client) -> Result<bool, RunError> {
    let row = client
        .query_one(
            "SELECT to_regclass('pgshift.foreign_history') IS NOT NULL,
                    current_database()::text, current_user::text,
                    (SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace
                      WHERE nspname = 'pgshift')",
            &[],
        )
        .await
        .map_err(DbError::from)?;
    let exists: bool = row.get(0);
    if !exists {
        let asking = Asking {
            database: row.get(1),
            role: row.get(2),
        };
        let owner = row
            .get::<_, Option<String>>(3)
            .unwrap_or_else(|| "its owner".to_owned());
        run_creating(
            client,
            CREATE_FOREIGN,
            &asking,
            Creating::Table {
                table: "pgshift.foreign_history",
                schema_owner: owner,
            },
        )
        .await?;
    }
    Ok(!exists)
}

/// The versions of `tool` already taken into account.
pub async fn foreign_seen(client: &Client, tool: &str) -> Result<Vec<String>, DbError> {
    Ok(client
        .query(
            "SELECT version FROM pgshift.foreign_history WHERE tool = $1",
            &[&tool],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Notes that `tool`'s history records `version`.
pub async fn mark_foreign_seen(client: &Client, tool: &str, version: &str) -> Result<(), DbError> {
    client
        .execute(
            "INSERT INTO pgshift.foreign_history (tool, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&tool, &version],
        )
        .await?;
    Ok(())
}

/// Forgets that `tool`'s history recorded `version` (pgshift removed the row itself).
pub async fn forget_foreign_seen(
    client: &Client,
    tool: &str,
    version: &str,
) -> Result<(), DbError> {
    client
        .execute(
            "DELETE FROM pgshift.foreign_history WHERE tool = $1 AND version = $2",
            &[&tool, &version],
        )
        .await?;
    Ok(())
}

/// The columns added since the first release, for histories created by an older pgshift.
const UPGRADE: &str = "
ALTER TABLE pgshift.migrations ADD COLUMN IF NOT EXISTS inflight jsonb,
                               ADD COLUMN IF NOT EXISTS unit_digests text[];
";

/// Creates the schema and table if missing, and adds the columns a history made by an older
/// pgshift lacks. Call only while holding the runner lock: two concurrent `CREATE TABLE IF
/// NOT EXISTS` can still collide in the catalog.
///
/// A role without the privilege gets [`RunError::HistoryPermission`]: what pgshift was
/// creating and the `GRANT` that fixes it, instead of the server's bare "permission denied
/// for database".
pub async fn ensure(client: &Client) -> Result<(), RunError> {
    // Everything the message may need is read first: once a CREATE fails, the transaction
    // it runs in is aborted and answers no more questions. The catalog rather than
    // `to_regclass`, which raises an error of its own on a schema the role may not use.
    let row = client
        .query_one(
            "SELECT current_database()::text, current_user::text,
                    (SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace
                      WHERE nspname = 'pgshift'),
                    (SELECT pg_get_userbyid(datdba)::text FROM pg_database
                      WHERE datname = current_database()),
                    (SELECT pg_get_userbyid(c.relowner)::text FROM pg_class c
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = 'pgshift' AND c.relname = 'migrations'),
                    (SELECT count(*) FROM pg_attribute a
                       JOIN pg_class c ON c.oid = a.attrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = 'pgshift' AND c.relname = 'migrations'
                        AND a.attname IN ('inflight', 'unit_digests') AND NOT a.attisdropped)",
            &[],
        )
        .await
        .map_err(DbError::from)?;
    let asking = Asking {
        database: row.get(0),
        role: row.get(1),
    };
    let schema_owner: Option<String> = row.get(2);
    let database_owner = row
        .get::<_, Option<String>>(3)
        .unwrap_or_else(|| "the owner".to_owned());
    let table_owner: Option<String> = row.get(4);
    let columns: i64 = row.get(5);
    match (schema_owner, table_owner) {
        (None, _) => {
            // One multi-statement query: the server runs it as one transaction when no
            // transaction is open, so a failure leaves no schema without its table.
            let sql = format!("{CREATE_SCHEMA}{CREATE}");
            let creating = Creating::Schema { database_owner };
            run_creating(client, &sql, &asking, creating).await
        }
        (Some(schema_owner), None) => {
            let creating = Creating::Table {
                table: "pgshift.migrations",
                schema_owner,
            };
            run_creating(client, CREATE, &asking, creating).await
        }
        (Some(_), Some(table_owner)) if columns < 2 => {
            run_creating(client, UPGRADE, &asking, Creating::Columns { table_owner }).await
        }
        (Some(_), Some(_)) => Ok(()),
    }
}

/// The database and role a privilege is missing in and for.
struct Asking {
    database: String,
    role: String,
}

/// What [`ensure`] or [`ensure_foreign`] was creating, and so which privilege it needed.
enum Creating {
    /// `CREATE SCHEMA pgshift`: needs `CREATE` on the database.
    Schema { database_owner: String },
    /// A table in the existing schema: needs `USAGE, CREATE` on it.
    Table {
        table: &'static str,
        schema_owner: String,
    },
    /// Columns added to `pgshift.migrations`: only its owner may.
    Columns { table_owner: String },
}

/// Runs `sql`, turning "permission denied" (SQLSTATE 42501, `insufficient_privilege`) into
/// an error that says what pgshift was creating and which `GRANT` fixes it.
async fn run_creating(
    client: &Client,
    sql: &str,
    asking: &Asking,
    creating: Creating,
) -> Result<(), RunError> {
    let err = match client.batch_execute(sql).await {
        Ok(()) => return Ok(()),
        Err(err) => DbError::from(err),
    };
    let Some(server) = err
        .as_query_error()
        .filter(|e| e.code == "42501")
        .map(|e| e.message.clone())
    else {
        return Err(err.into());
    };
    let database = quote_ident(&asking.database);
    let role = quote_ident(&asking.role);
    let (what, fix) = match creating {
        Creating::Schema { database_owner } => (
            "its schema with `CREATE SCHEMA pgshift` (where it keeps its history table)".to_owned(),
            format!(
                "as {database_owner} (the database's owner) or a superuser, run \
                 `GRANT CREATE ON DATABASE {database} TO {role};`, or create the schema \
                 yourself and let the role use it: \
                 `CREATE SCHEMA pgshift; GRANT USAGE, CREATE ON SCHEMA pgshift TO {role};`"
            ),
        ),
        Creating::Table {
            table,
            schema_owner,
        } => (
            format!("its history table `{table}` in the existing schema pgshift"),
            format!(
                "as {schema_owner} (the schema's owner) or a superuser, run \
                 `GRANT USAGE, CREATE ON SCHEMA pgshift TO {role};`"
            ),
        ),
        Creating::Columns { table_owner } => (
            "the columns this version of pgshift needs in its history table `pgshift.migrations`"
                .to_owned(),
            format!(
                "run pgshift once as {table_owner} (the table's owner), or have a superuser \
                 give the table to this role: `ALTER TABLE pgshift.migrations OWNER TO {role};`"
            ),
        ),
    };
    Err(RunError::HistoryPermission(Box::new(HistoryPermission {
        creating: what,
        database: asking.database.clone(),
        role: asking.role.clone(),
        server,
        fix,
    })))
}

/// How the history table stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Missing,
    /// Written by an older pgshift: [`ensure`] adds the columns this one writes.
    Older,
    /// Has every column this pgshift writes: [`ensure`] would do nothing.
    Current,
}

/// How the history table stands, in one cheap query (a command's first: [`ensure`] reads the
/// owners, which it needs only to create or upgrade, and costs a planned join of catalogs).
pub async fn shape(client: &Client) -> Result<Shape, DbError> {
    let row = client
        .query_one(
            "SELECT to_regclass('pgshift.migrations') IS NOT NULL,
                    (SELECT count(*) FROM pg_attribute
                      WHERE attrelid = to_regclass('pgshift.migrations')
                        AND attname IN ('inflight', 'unit_digests') AND NOT attisdropped)",
            &[],
        )
        .await?;
    Ok(match (row.get::<_, bool>(0), row.get::<_, i64>(1)) {
        (false, _) => Shape::Missing,
        (true, 2) => Shape::Current,
        (true, _) => Shape::Older,
    })
}

pub async fn exists(client: &Client) -> Result<bool, DbError> {
    let row = client
        .query_one("SELECT to_regclass('pgshift.migrations') IS NOT NULL", &[])
        .await?;
    Ok(row.get(0))
}

/// All rows; empty when the table does not exist yet.
pub async fn read(client: &Client) -> Result<Vec<HistoryRow>, DbError> {
    // Columns an older pgshift did not write read as absent through `to_jsonb` of the row,
    // which works whether or not they exist (`status` needs no upgrade and writes nothing),
    // but costs a conversion of every row: read directly when they are there.
    let sql = match shape(client).await? {
        Shape::Missing => return Ok(Vec::new()),
        Shape::Current => {
            "SELECT version, name, checksum, state, progress, units,
                to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                applied_by, duration_ms, down_sql, path,
                inflight::text, to_jsonb(unit_digests)::text
           FROM pgshift.migrations m"
        }
        Shape::Older => {
            "SELECT version, name, checksum, state, progress, units,
                to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                applied_by, duration_ms, down_sql, path,
                j ->> 'inflight', (j -> 'unit_digests')::text
           FROM pgshift.migrations m, LATERAL (SELECT to_jsonb(m) AS j) row_as_json"
        }
    };
    let rows = client.query(sql, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| HistoryRow {
            version: r.get(0),
            name: r.get(1),
            checksum: r.get(2),
            state: RowState::parse(r.get::<_, &str>(3)),
            progress: r.get(4),
            units: r.get(5),
            applied_at: r.get(6),
            applied_by: r.get(7),
            duration_ms: r.get(8),
            down_sql: r.get(9),
            path: r.get(10),
            inflight: r
                .get::<_, Option<String>>(11)
                .and_then(|t| serde_json::from_str(&t).ok()),
            unit_digests: r
                .get::<_, Option<String>>(12)
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
        })
        .collect())
}

/// Who is applying, after the database role (`current_user || $12` in [`upsert`]): ` (os-user@host)`
/// where known, read once.
fn applied_by_suffix() -> &'static str {
    static SUFFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SUFFIX.get_or_init(|| {
        let os_user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_default();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        match (os_user.is_empty(), host.is_empty()) {
            (false, false) => format!(" ({os_user}@{host})"),
            (false, true) => format!(" ({os_user})"),
            _ => String::new(),
        }
    })
}

/// The fields written when a migration starts or finishes.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub version: String,
    pub name: String,
    pub checksum: String,
    pub state: RowState,
    pub progress: i32,
    pub units: i32,
    pub duration_ms: Option<i64>,
    pub down_sql: Option<String>,
    pub path: String,
    pub format: String,
    pub unit_digests: Vec<String>,
}

const UPSERT: &str = "INSERT INTO pgshift.migrations
             (version, name, checksum, state, progress, units, applied_by, duration_ms, down_sql, path, format, unit_digests, inflight)
         VALUES ($1, $2, $3, $4, $5, $6, current_user || $12, $7, $8, $9, $10, $11, NULL)
         ON CONFLICT (version) DO UPDATE SET
             name = EXCLUDED.name, checksum = EXCLUDED.checksum, state = EXCLUDED.state,
             progress = EXCLUDED.progress, units = EXCLUDED.units, applied_at = now(),
             applied_by = EXCLUDED.applied_by, duration_ms = EXCLUDED.duration_ms,
             down_sql = EXCLUDED.down_sql, path = EXCLUDED.path, format = EXCLUDED.format,
             unit_digests = EXCLUDED.unit_digests, inflight = NULL";
const UPSERT_TYPES: &[Type] = &[
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::INT4,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT_ARRAY,
    Type::TEXT,
];
const FINISH: &str = "UPDATE pgshift.migrations SET state = 'applied', progress = units, duration_ms = $2, inflight = NULL WHERE version = $1";
const FINISH_TYPES: &[Type] = &[Type::TEXT, Type::INT8];
const DELETE: &str = "DELETE FROM pgshift.migrations WHERE version = $1";
const DELETE_TYPES: &[Type] = &[Type::TEXT];

/// Prepares on `conn` the statements that record a migration applied or reverted, in one
/// round trip: [`upsert`], [`finish`] and [`delete`] then send only their values.
pub async fn prepare_records(conn: &Connection) -> Result<(), DbError> {
    conn.prepare_ahead(&[
        (UPSERT, UPSERT_TYPES),
        (FINISH, FINISH_TYPES),
        (DELETE, DELETE_TYPES),
    ])
    .await
}

/// Runs `sql` with `params`: the statement prepared ahead when the session has it, else
/// typed in one message. Either way it is sent whole on first poll (nothing is prepared
/// first), so the executor can send the unit's COMMIT right behind it.
async fn execute_recorded(
    conn: &Connection,
    sql: &'static str,
    types: &[Type],
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, DbError> {
    match conn.prepared_ahead(sql) {
        Some(statement) => conn.execute(&statement, params).await.map_err(|e| {
            // Deallocated behind pgshift's back (by SQL it did not see coming): unprepared
            // from now on. This write failed; the run stops and says so.
            if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_SQL_STATEMENT_NAME) {
                conn.forget_prepared();
            }
            DbError::from(e)
        }),
        None => {
            let typed: Vec<(&(dyn ToSql + Sync), Type)> = params
                .iter()
                .zip(types)
                .map(|(p, t)| (*p, t.clone()))
                .collect();
            Ok(conn.execute_typed(sql, &typed).await?)
        }
    }
}

/// Inserts or replaces the row of a version. Values are passed as parameters.
///
/// This and [`set_progress`], [`finish`] and [`delete`] send one message each (nothing
/// prepared first): the executor sends the unit's COMMIT right behind them.
pub async fn upsert(conn: &Connection, row: &NewRow) -> Result<(), DbError> {
    execute_recorded(
        conn,
        UPSERT,
        UPSERT_TYPES,
        &[
            &row.version,
            &row.name,
            &row.checksum,
            &row.state.as_str(),
            &row.progress,
            &row.units,
            &row.duration_ms,
            &row.down_sql,
            &row.path,
            &row.format,
            &row.unit_digests,
            &applied_by_suffix(),
        ],
    )
    .await?;
    Ok(())
}

const SET_PROGRESS: &str =
    "UPDATE pgshift.migrations SET state = $2, progress = $3, inflight = NULL WHERE version = $1";
const SET_PROGRESS_TYPES: &[Type] = &[Type::TEXT, Type::TEXT, Type::INT4];
const SET_PROGRESS_AND_UNITS: &str = "UPDATE pgshift.migrations
    SET state = $2, progress = $3, units = $4, unit_digests = $5, inflight = NULL
  WHERE version = $1";
const SET_PROGRESS_AND_UNITS_TYPES: &[Type] = &[
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::INT4,
    Type::TEXT_ARRAY,
];

/// Records how far a multi-unit migration (or its revert) got; nothing is in flight. With
/// `digests`, also the units' total and fingerprints (a revert records them with its first
/// progress).
pub async fn set_progress(
    client: &Client,
    version: &str,
    state: RowState,
    progress: i32,
    digests: Option<&[String]>,
) -> Result<(), DbError> {
    let state = state.as_str();
    match digests {
        None => {
            client
                .execute_typed(
                    SET_PROGRESS,
                    &[
                        (&version, SET_PROGRESS_TYPES[0].clone()),
                        (&state, SET_PROGRESS_TYPES[1].clone()),
                        (&progress, SET_PROGRESS_TYPES[2].clone()),
                    ],
                )
                .await?
        }
        Some(digests) => {
            let units = i32::try_from(digests.len()).unwrap_or(i32::MAX);
            let types = SET_PROGRESS_AND_UNITS_TYPES;
            client
                .execute_typed(
                    SET_PROGRESS_AND_UNITS,
                    &[
                        (&version, types[0].clone()),
                        (&state, types[1].clone()),
                        (&progress, types[2].clone()),
                        (&units, types[3].clone()),
                        (&digests, types[4].clone()),
                    ],
                )
                .await?
        }
    };
    Ok(())
}

/// Starts a multi-unit run of a recorded migration: its state, the units done, their
/// total and fingerprints, and the checksum of the file as it is now.
pub async fn start_units(
    client: &Client,
    version: &str,
    state: RowState,
    progress: i32,
    digests: &[String],
    checksum: Option<&str>,
) -> Result<(), DbError> {
    let units = i32::try_from(digests.len()).unwrap_or(i32::MAX);
    client
        .execute(
            "UPDATE pgshift.migrations
                SET state = $2, progress = $3, units = $4, unit_digests = $5,
                    checksum = coalesce($6, checksum), inflight = NULL
              WHERE version = $1",
            &[
                &version,
                &state.as_str(),
                &progress,
                &units,
                &digests,
                &checksum,
            ],
        )
        .await?;
    Ok(())
}

/// Forgets the statement in flight (it was settled, or the user decided); the state stays.
pub async fn clear_inflight(client: &Client, version: &str) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE pgshift.migrations SET inflight = NULL WHERE version = $1",
            &[&version],
        )
        .await?;
    Ok(())
}

/// A revert that failed before completing any step: the migration is applied, as it was.
pub async fn restore_applied(client: &Client, version: &str) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE pgshift.migrations SET state = 'applied', progress = units, inflight = NULL WHERE version = $1",
            &[&version],
        )
        .await?;
    Ok(())
}

/// The statement [`upsert`] sends, its values written into the text: for a unit the executor
/// sends whole as simple queries (`Executor::try_sent_whole`), where nothing is bound. With
/// `timed_by_server`, the duration is the server's, from the start of the transaction the
/// record is written in (a unit sent ahead starts when the one before it ends, which the
/// client does not see).
pub fn upsert_sql(row: &NewRow, timed_by_server: bool) -> String {
    inline(
        UPSERT,
        &[
            literal(&row.version),
            literal(&row.name),
            literal(&row.checksum),
            literal(row.state.as_str()),
            row.progress.to_string(),
            row.units.to_string(),
            if timed_by_server {
                "(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint".to_string()
            } else {
                row.duration_ms
                    .map_or_else(|| "NULL".to_string(), |d| d.to_string())
            },
            row.down_sql
                .as_deref()
                .map_or_else(|| "NULL".to_string(), literal),
            literal(&row.path),
            literal(&row.format),
            text_array(&row.unit_digests),
            literal(applied_by_suffix()),
        ],
    )
}

/// The statement [`set_progress`] sends, its values written into the text (see
/// [`upsert_sql`]).
pub fn set_progress_sql(
    version: &str,
    state: RowState,
    progress: i32,
    digests: Option<&[String]>,
) -> String {
    let mut values = vec![
        literal(version),
        literal(state.as_str()),
        progress.to_string(),
    ];
    match digests {
        None => inline(SET_PROGRESS, &values),
        Some(digests) => {
            values.push(i32::try_from(digests.len()).unwrap_or(i32::MAX).to_string());
            values.push(text_array(digests));
            inline(SET_PROGRESS_AND_UNITS, &values)
        }
    }
}

/// The statement [`finish`] sends, its values written into the text (see [`upsert_sql`]).
pub fn finish_sql(version: &str, duration_ms: i64) -> String {
    inline(FINISH, &[literal(version), duration_ms.to_string()])
}

/// The statement [`delete`] sends, its values written into the text (see [`upsert_sql`]).
pub fn delete_sql(version: &str) -> String {
    inline(DELETE, &[literal(version)])
}

/// A string constant that means `value` whatever `standard_conforming_strings` says (a
/// backslash makes it an `E''` string).
fn literal(value: &str) -> String {
    pgshift_sql::ident::quote_literal(value)
}

fn text_array(values: &[String]) -> String {
    if values.is_empty() {
        return "'{}'::text[]".to_string();
    }
    let items: Vec<String> = values.iter().map(|v| literal(v)).collect();
    format!("ARRAY[{}]::text[]", items.join(", "))
}

/// `sql` with each `$n` replaced by `values[n - 1]`. Only for this module's own statements,
/// whose text holds no `$` but their parameters.
fn inline(sql: &str, values: &[String]) -> String {
    let mut out = String::with_capacity(sql.len() + values.iter().map(String::len).sum::<usize>());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let n: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
        match n.checked_sub(1).and_then(|i| values.get(i)) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[at..at + 1 + digits]),
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

/// Marks a migration finished.
pub async fn finish(conn: &Connection, version: &str, duration_ms: i64) -> Result<(), DbError> {
    execute_recorded(conn, FINISH, FINISH_TYPES, &[&version, &duration_ms]).await?;
    Ok(())
}

pub async fn delete(conn: &Connection, version: &str) -> Result<(), DbError> {
    execute_recorded(conn, DELETE, DELETE_TYPES, &[&version]).await?;
    Ok(())
}

pub async fn set_checksum(
    client: &Client,
    version: &str,
    checksum: &str,
    down_sql: Option<&str>,
) -> Result<u64, DbError> {
    Ok(client
        .execute(
            "UPDATE pgshift.migrations SET checksum = $2, down_sql = coalesce($3, down_sql) WHERE version = $1",
            &[&version, &checksum, &down_sql],
        )
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlined_records_are_the_bound_statements_with_their_values_as_constants() {
        let row = NewRow {
            version: "20240101000000".into(),
            name: "it's".into(),
            checksum: "abc".into(),
            state: RowState::Applied,
            progress: 1,
            units: 1,
            duration_ms: Some(12),
            down_sql: Some("DROP TABLE t; -- \\ gone".into()),
            path: "m/1.up.sql".into(),
            format: "pgshift".into(),
            unit_digests: vec!["d1".into(), "d'2".into()],
        };
        let sql = upsert_sql(&row, false);
        assert!(sql.contains(
            "VALUES ('20240101000000', 'it''s', 'abc', 'applied', 1, 1, current_user || "
        ));
        // `$12` is the twelfth value, not the first followed by a 2.
        assert!(!sql.contains("'20240101000000'2"), "{sql}");
        assert!(sql.contains(", 12, E'DROP TABLE t; -- \\\\ gone', 'm/1.up.sql', 'pgshift', ARRAY['d1', 'd''2']::text[], NULL)"), "{sql}");
        assert!(!sql.contains('$'), "{sql}");
        let none = upsert_sql(
            &NewRow {
                duration_ms: None,
                down_sql: None,
                unit_digests: Vec::new(),
                ..row.clone()
            },
            false,
        );
        assert!(
            none.contains(", NULL, NULL, 'm/1.up.sql', 'pgshift', '{}'::text[], NULL)"),
            "{none}"
        );
        let timed = upsert_sql(&row, true);
        assert!(
            timed.contains(
                ", (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, E'DROP"
            ),
            "{timed}"
        );
        assert_eq!(
            delete_sql("1'2"),
            "DELETE FROM pgshift.migrations WHERE version = '1''2'"
        );
        assert!(finish_sql("7", 3000)
            .ends_with("duration_ms = 3000, inflight = NULL WHERE version = '7'"));
    }
}
