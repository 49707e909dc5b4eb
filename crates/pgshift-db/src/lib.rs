//! The database layer of pgshift: everything that talks to a PostgreSQL server, and nothing
//! that knows about migrations.
//!
//! - [`url`]: connection strings (`postgres://` URLs and libpq key/value), `sslmode`, and
//!   password redaction — a [`DatabaseUrl`] never prints its password.
//! - [`connect`](mod@connect): opening a [`Connection`] over TLS (rustls) as `sslmode` says,
//!   with server notices collected and a cancel handle; [`cancel_every_session`] cancels what
//!   every open session of the process runs (on a termination signal).
//! - [`tls`]: the rustls configuration behind each `sslmode`.
//! - [`cluster`]: a throwaway cluster ([`TempCluster`]) from the server binaries on the
//!   machine, for `verify`, `trace` and tests.
//! - [`testing`]: a fresh database per test ([`testing::TestDb`]), used by every crate's
//!   integration tests.
//! - [`catalog`]: server version, table sizes, sessions holding conflicting locks, long
//!   transactions.
//! - lock levels: `pgshift_sql::LockLevel` (re-exported here), shared with the analyzer.
//! - names and quoting: [`pgshift_sql::ident`] (`QualifiedName`, `quote_ident`,
//!   `quote_literal`), the one implementation the whole workspace uses.
//!
//! Architecture invariant: the only pgshift crate this one depends on is `pgshift-sql` (for
//! its shared vocabularies: lock levels and identity), so the runner, the linter's live checks
//! and the CLI can all build on it; it knows nothing about migrations or rules.

pub mod catalog;
pub mod cluster;
pub mod connect;
mod error;
pub mod snapshot;
pub mod testing;
pub mod tls;
pub mod trace;
pub mod url;

pub use catalog::{
    conflicting_sessions, long_transactions, server_version_num, session_activity,
    sessions_in_the_way, table_sizes, Activity, RelationKind, RowsSource, Session, SessionLock,
    TableSize, OLDEST_SUPPORTED_MAJOR,
};
pub use cluster::{ClusterOptions, TempCluster};
pub use connect::{
    cancel_every_session, connect, sessions_closed, CancelToken, Connection, Notice,
};
pub use error::{ConnectFailure, DbError, ErrorPosition, QueryError};
pub use pgshift_sql::LockLevel;
pub use url::{DatabaseUrl, HostPort, SslMode};

/// Re-exported so that users of [`Connection`] can name the driver's types (`Row`,
/// `Transaction`, `types::ToSql`) without depending on the same version themselves.
pub use tokio_postgres;
