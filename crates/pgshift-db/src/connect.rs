//! Opening a connection: TLS per `sslmode`, a background task that drives the socket and
//! collects server notices, and the handles the runner needs (backend pid, cancel).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pgshift_sql::ident::quote_ident;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{AsyncMessage, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::tls::make_tls_connect;
use crate::url::DatabaseUrl;
use crate::DbError;

/// The `application_name` pgshift's sessions show in `pg_stat_activity` unless the URL sets
/// one, so a DBA can tell them apart from the application.
pub const DEFAULT_APPLICATION_NAME: &str = "pgshift";

/// At most this many notices are kept between two [`Connection::take_notices`] calls; older
/// ones are dropped so that a chatty `RAISE NOTICE` loop cannot exhaust memory.
const MAX_BUFFERED_NOTICES: usize = 10_000;

/// The cancel handle of every session this process has open, so that a termination signal can
/// stop what each one runs ([`cancel_every_session`]) — including sessions a library opens
/// and keeps to itself, such as `trace`'s. A session is listed from [`connect`] until its
/// [`Connection`] is dropped.
static OPEN_SESSIONS: Mutex<BTreeMap<u64, CancelToken>> = Mutex::new(BTreeMap::new());
static NEXT_SESSION: AtomicU64 = AtomicU64::new(0);

/// Sockets whose driver is still running: a session's socket stays open until its driver has
/// told the server goodbye (the protocol's Terminate), after its [`Connection`] is dropped.
static DRIVERS: AtomicU64 = AtomicU64::new(0);

/// Waits, at most `limit`, until every session this process opened has closed its socket
/// properly. A process that exits with sessions still open leaves "could not receive data from
/// client: Connection reset by peer" in the server's log for each one; call this after
/// dropping the connections, before the runtime stops.
pub async fn sessions_closed(limit: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while DRIVERS.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Asks the server of every session this process has open to cancel the statement it is
/// running (an idle session ignores the request), and returns how many sessions were asked.
/// Each cancelled statement fails with SQLSTATE 57014 and its transaction rolls back; the
/// sessions stay open until their [`Connection`]s are dropped or the process exits.
///
/// Every session is asked even when one request fails; the first failure is returned.
pub async fn cancel_every_session() -> Result<usize, DbError> {
    let tokens: Vec<CancelToken> = lock(&OPEN_SESSIONS).values().cloned().collect();
    let results = futures_util::future::join_all(tokens.iter().map(CancelToken::cancel)).await;
    results.into_iter().collect::<Result<Vec<()>, DbError>>()?;
    Ok(tokens.len())
}

/// A message the server sent that is not an error: `NOTICE`, `WARNING`, `INFO`, ...
/// (e.g. "relation \"x\" already exists, skipping").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `NOTICE`, `WARNING`, ...
    pub severity: String,
    /// SQLSTATE of the notice.
    pub code: String,
    /// The text.
    pub message: String,
    /// Optional secondary text.
    pub detail: Option<String>,
    /// Optional suggestion.
    pub hint: Option<String>,
}

impl Notice {
    fn from_server(notice: &tokio_postgres::error::DbError) -> Notice {
        Notice {
            severity: notice.severity().to_owned(),
            code: notice.code().code().to_owned(),
            message: notice.message().to_owned(),
            detail: notice.detail().map(str::to_owned),
            hint: notice.hint().map(str::to_owned),
        }
    }
}

/// An open session. Derefs to [`tokio_postgres::Client`] for queries.
///
/// Dropping it closes the session: the background task that drives the socket ends when the
/// client is gone.
pub struct Connection {
    client: tokio_postgres::Client,
    url: DatabaseUrl,
    tls: MakeRustlsConnect,
    backend_pid: i32,
    /// `server_version_num`, read as the session started (a server's version does not change
    /// while it runs).
    server_version_num: i32,
    notices: Arc<Mutex<VecDeque<Notice>>>,
    closed_reason: Arc<Mutex<Option<String>>>,
    /// Its key in [`OPEN_SESSIONS`].
    session: u64,
    /// Statements prepared on this session by [`Connection::query_prepared`], by their text.
    prepared: Mutex<HashMap<&'static str, Statement>>,
    /// When the server started this session's backend, once read ([`Connection::backend_start`]).
    backend_start: Mutex<Option<String>>,
}

/// Connects to `url`, with TLS as its `sslmode` says (see [`crate::tls`]) and
/// `application_name=pgshift` unless the URL sets one. With Prisma's `schema=NAME`
/// ([`DatabaseUrl::schema`]) the session's `search_path` is that one schema, as Prisma sets
/// it, so `_prisma_migrations` and the application's tables are found unqualified. Must be
/// called inside a tokio runtime.
///
/// Errors name the server (without password), the cause, and what to do.
pub async fn connect(url: &DatabaseUrl) -> Result<Connection, DbError> {
    let mut config = url.driver_config()?;
    if config.get_application_name().is_none() {
        config.application_name(DEFAULT_APPLICATION_NAME);
    }
    let tls = make_tls_connect(url)?;
    let (client, connection) = config
        .connect(tls.clone())
        .await
        .map_err(|err| DbError::from_connect(url.redacted(), &err))?;

    let notices = Arc::new(Mutex::new(VecDeque::new()));
    let closed_reason = Arc::new(Mutex::new(None));
    DRIVERS.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(drive(connection, notices.clone(), closed_reason.clone()));

    if let Some(schema) = url.schema() {
        // A `SET` rather than the `options=-c search_path=...` startup parameter: PgBouncer
        // refuses startup parameters it does not know ("unsupported startup parameter:
        // options") unless told to ignore them, and then drops them silently, which would
        // point pgshift at the wrong schema. A `SET` is an ordinary statement every pooler
        // forwards, and it lasts for the session (pgshift needs a session anyway: its runner
        // lock is a session advisory lock). Prisma itself sends the same `SET` behind
        // PgBouncer.
        client
            .batch_execute(&format!("SET search_path TO {}", quote_ident(schema)))
            .await
            .map_err(|err| DbError::from_connect(url.redacted(), &err))?;
    }

    // Both in one simple query: one round trip, nothing prepared.
    let rows = client
        .simple_query("SELECT pg_backend_pid(), current_setting('server_version_num')")
        .await
        .map_err(|err| DbError::from_connect(url.redacted(), &err))?;
    let number = |i: usize| -> Result<i32, DbError> {
        let text = rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(i),
                _ => None,
            })
            .unwrap_or_default();
        text.trim().parse().map_err(|_| DbError::UnexpectedValue {
            what: if i == 0 {
                "pg_backend_pid()"
            } else {
                "server_version_num"
            },
            value: text.to_owned(),
        })
    };
    let backend_pid = number(0)?;
    let server_version_num = number(1)?;
    let session = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    let connection = Connection {
        client,
        url: url.clone(),
        tls,
        backend_pid,
        server_version_num,
        notices,
        closed_reason,
        session,
        prepared: Mutex::new(HashMap::new()),
        backend_start: Mutex::new(None),
    };
    lock(&OPEN_SESSIONS).insert(session, connection.cancel_token());
    Ok(connection)
}

/// Polls the socket until it closes, keeping notices for the caller.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notices: Arc<Mutex<VecDeque<Notice>>>,
    closed_reason: Arc<Mutex<Option<String>>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notice(notice))) => {
                let mut buffer = lock(&notices);
                if buffer.len() >= MAX_BUFFERED_NOTICES {
                    buffer.pop_front();
                }
                buffer.push_back(Notice::from_server(&notice));
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => {
                *lock(&closed_reason) = Some(err.to_string());
                break;
            }
            None => break,
        }
    }
    DRIVERS.fetch_sub(1, Ordering::SeqCst);
}

/// Locks a mutex, recovering the data if another thread panicked while holding it (the
/// buffers here stay consistent after any single push or take).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Connection {
    /// The driver's client.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// Puts the session's `search_path` back as [`connect`] made it (the URL's `schema=`, or
    /// the server's default for this role and database), after a migration changed it: the
    /// next migration of the run then sees what it would see in a run of its own.
    pub async fn restore_search_path(&self) -> Result<(), DbError> {
        let sql = match self.url().schema() {
            Some(schema) => format!("SET search_path TO {}", quote_ident(schema)),
            None => "RESET search_path".to_owned(),
        };
        self.batch_execute(&sql).await?;
        Ok(())
    }

    /// When the server started this session's backend (`pg_stat_activity.backend_start`, as
    /// text): with [`Connection::backend_pid`] it names the session for good, a pid alone can
    /// be reused. Read from the server once per session.
    pub async fn backend_start(&self) -> Result<String, DbError> {
        if let Some(known) = lock(&self.backend_start).clone() {
            return Ok(known);
        }
        let row = self
            .client
            .query_one(
                "SELECT backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        let started: String = row.try_get(0)?;
        *lock(&self.backend_start) = Some(started.clone());
        Ok(started)
    }

    /// The URL this session was opened with.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The server process id of this session (`pg_backend_pid()`), to find it in `pg_locks`
    /// and `pg_stat_activity`.
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// The server's `server_version_num` (150004 for 15.4), read when the session started.
    pub fn server_version_num(&self) -> i32 {
        self.server_version_num
    }

    /// Removes and returns the notices received since the last call, oldest first.
    pub fn take_notices(&self) -> Vec<Notice> {
        lock(&self.notices).drain(..).collect()
    }

    /// A handle that cancels the statement this session is running, from any task.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            token: self.client.cancel_token(),
            tls: self.tls.clone(),
            server: self.url.redacted(),
        }
    }

    /// True once the session is gone (server closed it, network dropped).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Why the session closed, if it closed with an error.
    pub fn closed_reason(&self) -> Option<String> {
        lock(&self.closed_reason).clone()
    }

    /// Runs `sql`, prepared on this session the first time (with these parameter types) and
    /// reused after: for a query run around every migration whose planning costs more than
    /// its run (the catalog views). A statement the server no longer knows (a migration ran
    /// `DISCARD ALL` or `DEALLOCATE ALL`) is prepared again.
    pub async fn query_prepared(
        &self,
        sql: &'static str,
        types: &[Type],
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, DbError> {
        let cached = lock(&self.prepared).get(sql).cloned();
        let statement = match cached {
            Some(statement) => statement,
            None => self.prepare_into_cache(sql, types).await?,
        };
        match self.client.query(&statement, params).await {
            Err(e) if e.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME) => {
                let statement = self.prepare_into_cache(sql, types).await?;
                Ok(self.client.query(&statement, params).await?)
            }
            result => Ok(result?),
        }
    }

    /// The statement `sql`, when [`Connection::prepare_ahead`] prepared it on this session and
    /// nothing since made it forget ([`Connection::forget_prepared`]). Never prepares: a
    /// caller that sends a `COMMIT` right behind it needs it sent whole at once.
    pub fn prepared_ahead(&self, sql: &'static str) -> Option<Statement> {
        lock(&self.prepared).get(sql).cloned()
    }

    /// Prepares `statements` on this session now, all in one round trip, for
    /// [`Connection::prepared_ahead`] and [`Connection::query_prepared`].
    pub async fn prepare_ahead(
        &self,
        statements: &[(&'static str, &[Type])],
    ) -> Result<(), DbError> {
        let missing: Vec<_> = statements
            .iter()
            .filter(|(sql, _)| !lock(&self.prepared).contains_key(sql))
            .collect();
        let prepared = futures_util::future::try_join_all(
            missing
                .iter()
                .map(|(sql, types)| self.client.prepare_typed(sql, types)),
        )
        .await?;
        let mut cache = lock(&self.prepared);
        for ((sql, _), statement) in missing.into_iter().zip(prepared) {
            cache.insert(sql, statement);
        }
        Ok(())
    }

    /// Forgets every statement prepared on this session: for SQL that may deallocate them on
    /// the server (`DISCARD ALL`, `DEALLOCATE`). [`Connection::query_prepared`] prepares again
    /// when asked; [`Connection::prepared_ahead`] answers `None` until prepared ahead again.
    pub fn forget_prepared(&self) {
        lock(&self.prepared).clear();
    }

    async fn prepare_into_cache(
        &self,
        sql: &'static str,
        types: &[Type],
    ) -> Result<Statement, DbError> {
        let statement = self.client.prepare_typed(sql, types).await?;
        lock(&self.prepared).insert(sql, statement.clone());
        Ok(statement)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        lock(&OPEN_SESSIONS).remove(&self.session);
    }
}

impl Deref for Connection {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.client
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("backend_pid", &self.backend_pid)
            .finish_non_exhaustive()
    }
}

/// Cancels the running statement of one session (the equivalent of `pg_cancel_backend`, sent
/// over a new connection as the protocol requires). Cheap to clone and `Send`.
#[derive(Clone)]
pub struct CancelToken {
    token: tokio_postgres::CancelToken,
    tls: MakeRustlsConnect,
    server: String,
}

impl CancelToken {
    /// Asks the server to cancel whatever the session is running; the statement then fails
    /// with SQLSTATE 57014. Cancelling an idle session does nothing.
    pub async fn cancel(&self) -> Result<(), DbError> {
        self.token
            .cancel_query(self.tls.clone())
            .await
            .map_err(|err| DbError::from_connect(self.server.clone(), &err))
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}
