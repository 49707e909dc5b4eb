//! Errors of the database layer.
//!
//! Two rules shape this module:
//! - a message never contains a password: every place that names a server uses
//!   [`DatabaseUrl::redacted`](crate::DatabaseUrl::redacted), and driver errors are reduced to
//!   their cause before they are stored;
//! - a server error keeps everything the server said (SQLSTATE, detail, hint, and the error
//!   `position`, which the runner maps back to a file, line and column).

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong in `pgshift-db`.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection string could not be parsed. `input` is already redacted.
    #[error("invalid database URL `{input}`: {reason}. Expected postgres://user:password@host:port/database?sslmode=... or key=value pairs (host=... dbname=...)")]
    InvalidUrl {
        /// The URL with any password removed.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The server could not be reached, or refused us.
    #[error("could not connect to {server}: {failure}: {reason}. {}", failure.advice())]
    Connect {
        /// The redacted URL of the server.
        server: String,
        /// Why, in one word the caller can match on.
        failure: ConnectFailure,
        /// The underlying cause, password-free.
        reason: String,
    },

    /// The TLS settings in the URL could not be turned into a TLS configuration.
    #[error("TLS settings for {server}: {reason}")]
    TlsSetup {
        /// The redacted URL of the server.
        server: String,
        /// What is wrong, e.g. an unreadable `sslrootcert`.
        reason: String,
    },

    /// The server rejected a statement. Boxed: it is by far the largest variant and errors
    /// travel through every `Result` of the crate.
    #[error(transparent)]
    Query(Box<QueryError>),

    /// The connection broke while it was in use.
    #[error("lost the connection to the database server: {reason}. The server may have restarted or a network link dropped; run the command again")]
    ConnectionLost {
        /// What the driver reported.
        reason: String,
    },

    /// A client-side driver failure that is neither a server error nor a lost connection
    /// (for example a value that does not convert to the expected Rust type).
    #[error("database driver error: {reason}")]
    Driver {
        /// What the driver reported.
        reason: String,
    },

    /// The server answered something pgshift cannot interpret.
    #[error("unexpected answer from the server for {what}: {value}")]
    UnexpectedValue {
        /// What was asked.
        what: &'static str,
        /// What came back.
        value: String,
    },

    /// No PostgreSQL server binaries were found for a throwaway cluster.
    #[error("PostgreSQL server binaries (initdb, pg_ctl) not found; looked in: {searched}. Install the PostgreSQL server package, or point PGSHIFT_PG_BIN at the directory that holds initdb (see `pg_config --bindir`)")]
    BinariesNotFound {
        /// The places that were searched, in order.
        searched: String,
    },

    /// A PostgreSQL program of the throwaway cluster failed.
    #[error("{} failed ({status}) while {action}.{}", binary.display(), LogTail(log_tail))]
    ClusterCommand {
        /// The program that failed.
        binary: PathBuf,
        /// What it was doing.
        action: &'static str,
        /// Its exit status.
        status: String,
        /// The last lines of its output or of the server log.
        log_tail: String,
    },

    /// A file-system or process operation of the throwaway cluster failed.
    #[error("throwaway cluster: could not {action}: {source}")]
    ClusterIo {
        /// What was being done.
        action: String,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
}

/// Renders a log tail after an error message, or nothing when it is empty.
struct LogTail<'a>(&'a str);

impl fmt::Display for LogTail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.trim().is_empty() {
            Ok(())
        } else {
            write!(f, " Last lines of its log:\n{}", self.0.trim_end())
        }
    }
}

/// Why a connection attempt failed, coarse enough to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Nothing listens at that address (or the unix socket does not exist).
    Refused,
    /// The host name does not resolve.
    UnknownHost,
    /// No answer within the connect timeout.
    Timeout,
    /// Wrong user or password, or `pg_hba.conf` rejects us.
    AuthFailed,
    /// The server is up but the database does not exist.
    DatabaseMissing,
    /// The TLS handshake failed (certificate not trusted, wrong host name, server without TLS).
    Tls,
    /// The server is starting up, shutting down or out of connection slots.
    Unavailable,
    /// Anything else.
    Other,
}

impl ConnectFailure {
    /// What the user should do about it.
    pub fn advice(self) -> &'static str {
        match self {
            ConnectFailure::Refused => "Check that PostgreSQL is running and listens on that host and port",
            ConnectFailure::UnknownHost => "Check the host name in the URL",
            ConnectFailure::Timeout => "Check the host, the port and any firewall in between; raise connect_timeout if the network is slow",
            ConnectFailure::AuthFailed => "Check the user and password in the URL (or PGPASSWORD) and the server's pg_hba.conf",
            ConnectFailure::DatabaseMissing => "Create the database (createdb NAME) or fix the database name in the URL",
            ConnectFailure::Tls => "Check sslmode and sslrootcert in the URL: verify-full needs a CA that signed the server certificate and a host name listed in it; sslmode=disable or prefer if the server has no TLS",
            ConnectFailure::Unavailable => "Wait for the server to finish starting, or free connection slots, then retry",
            ConnectFailure::Other => "Check the URL and the server log",
        }
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectFailure::Refused => "connection refused",
            ConnectFailure::UnknownHost => "unknown host",
            ConnectFailure::Timeout => "connection timed out",
            ConnectFailure::AuthFailed => "authentication failed",
            ConnectFailure::DatabaseMissing => "database does not exist",
            ConnectFailure::Tls => "TLS failed",
            ConnectFailure::Unavailable => "server unavailable",
            ConnectFailure::Other => "connection failed",
        })
    }
}

/// Where in the statement text the server located an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorPosition {
    /// A 1-based *character* (not byte) offset into the statement that was sent.
    Original(u32),
    /// A 1-based character offset into a query the server generated internally
    /// (e.g. inside a PL/pgSQL function), with that query's text.
    Internal {
        /// Offset into `query`.
        position: u32,
        /// The internal query.
        query: String,
    },
}

/// An error the server raised while running a statement, with every field the runner needs
/// to point at the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// `ERROR`, `FATAL`, ...
    pub severity: String,
    /// The five-character SQLSTATE, e.g. `55P03` for a lock timeout.
    pub code: String,
    /// The primary message.
    pub message: String,
    /// Optional secondary message.
    pub detail: Option<String>,
    /// Optional suggestion from the server.
    pub hint: Option<String>,
    /// Where in the statement the error is.
    pub position: Option<ErrorPosition>,
    /// Call stack context (PL/pgSQL functions, triggers).
    pub context: Option<String>,
    /// Schema of the object involved, when the server says.
    pub schema: Option<String>,
    /// Table involved, when the server says.
    pub table: Option<String>,
    /// Column involved, when the server says.
    pub column: Option<String>,
    /// Constraint involved, when the server says.
    pub constraint: Option<String>,
}

impl QueryError {
    /// Copies the fields of a server error.
    pub fn from_server(err: &tokio_postgres::error::DbError) -> QueryError {
        let own = |s: Option<&str>| s.map(str::to_owned);
        QueryError {
            severity: err.severity().to_owned(),
            code: err.code().code().to_owned(),
            message: err.message().to_owned(),
            detail: own(err.detail()),
            hint: own(err.hint()),
            position: err.position().map(|p| match p {
                tokio_postgres::error::ErrorPosition::Original(pos) => {
                    ErrorPosition::Original(*pos)
                }
                tokio_postgres::error::ErrorPosition::Internal { position, query } => {
                    ErrorPosition::Internal {
                        position: *position,
                        query: query.clone(),
                    }
                }
            }),
            context: own(err.where_()),
            schema: own(err.schema()),
            table: own(err.table()),
            column: own(err.column()),
            constraint: own(err.constraint()),
        }
    }

    /// True for `lock_timeout` expiring (SQLSTATE 55P03, `lock_not_available`).
    pub fn is_lock_timeout(&self) -> bool {
        self.code == "55P03"
    }

    /// True for a deadlock the server broke by rolling this transaction back (SQLSTATE 40P01).
    pub fn is_deadlock(&self) -> bool {
        self.code == "40P01"
    }

    /// True for `statement_timeout` expiring or a cancel request (SQLSTATE 57014).
    pub fn is_query_canceled(&self) -> bool {
        self.code == "57014"
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, "\nDETAIL: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nHINT: {hint}")?;
        }
        if let Some(context) = &self.context {
            write!(f, "\nCONTEXT: {context}")?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}

impl From<tokio_postgres::Error> for DbError {
    /// Classifies an error from an established connection. Connection attempts go through
    /// `DbError::from_connect` instead, which adds the server and the cause.
    fn from(err: tokio_postgres::Error) -> DbError {
        if let Some(server) = err.as_db_error() {
            DbError::Query(Box::new(QueryError::from_server(server)))
        } else if err.is_closed() {
            DbError::ConnectionLost {
                reason: error_chain(&err),
            }
        } else {
            DbError::Driver {
                reason: error_chain(&err),
            }
        }
    }
}

impl From<QueryError> for DbError {
    fn from(err: QueryError) -> DbError {
        DbError::Query(Box::new(err))
    }
}

impl DbError {
    /// Turns a failed connection attempt into a [`DbError::Connect`] naming the (redacted)
    /// server and the cause.
    pub(crate) fn from_connect(server: String, err: &tokio_postgres::Error) -> DbError {
        let (failure, reason) = classify_connect_error(err);
        DbError::Connect {
            server,
            failure,
            reason,
        }
    }

    /// The server error behind this error, if it is one.
    pub fn as_query_error(&self) -> Option<&QueryError> {
        match self {
            DbError::Query(q) => Some(q),
            _ => None,
        }
    }

    /// The SQLSTATE, if the server raised this error.
    pub fn sqlstate(&self) -> Option<&str> {
        self.as_query_error().map(|q| q.code.as_str())
    }
}

/// The error and all its sources, joined with ": " (tokio-postgres puts the interesting part,
/// like "Connection refused" or the rustls reason, in the source chain).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn classify_connect_error(err: &tokio_postgres::Error) -> (ConnectFailure, String) {
    if let Some(server) = err.as_db_error() {
        let failure = match server.code().code() {
            "28P01" | "28000" => ConnectFailure::AuthFailed,
            "3D000" => ConnectFailure::DatabaseMissing,
            "57P03" | "53300" | "57P01" => ConnectFailure::Unavailable,
            _ => ConnectFailure::Other,
        };
        return (failure, server.message().to_owned());
    }
    let reason = error_chain(err);
    let mut failure = ConnectFailure::Other;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            failure = match io.kind() {
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => {
                    ConnectFailure::Refused
                }
                std::io::ErrorKind::TimedOut => ConnectFailure::Timeout,
                _ => failure,
            };
        }
        // rustls's error reaches us inside an io::Error, whose `source()` skips it.
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            failure = ConnectFailure::Tls;
            return (failure, crate::tls::describe_tls_error(tls));
        }
        source = cause.source();
    }
    if failure == ConnectFailure::Other {
        if reason.contains("TLS") {
            failure = ConnectFailure::Tls;
        } else if reason.contains("password missing") {
            failure = ConnectFailure::AuthFailed;
        } else if reason.contains("failed to lookup address") {
            failure = ConnectFailure::UnknownHost;
        } else if reason.contains("timed out") {
            failure = ConnectFailure::Timeout;
        }
    }
    (failure, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_error_message_names_server_cause_and_advice() {
        let err = DbError::Connect {
            server: "postgres://alice@db:5432/app".into(),
            failure: ConnectFailure::Refused,
            reason: "Connection refused (os error 111)".into(),
        };
        let text = err.to_string();
        assert!(text.contains("postgres://alice@db:5432/app"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(text.contains("Check that PostgreSQL is running"), "{text}");
    }

    #[test]
    fn query_error_display_includes_detail_and_hint() {
        let err = QueryError {
            severity: "ERROR".into(),
            code: "23505".into(),
            message: "duplicate key".into(),
            detail: Some("Key (id)=(1) already exists.".into()),
            hint: Some("use another id".into()),
            position: None,
            context: None,
            schema: None,
            table: None,
            column: None,
            constraint: None,
        };
        assert_eq!(
            err.to_string(),
            "ERROR 23505: duplicate key\nDETAIL: Key (id)=(1) already exists.\nHINT: use another id"
        );
    }

    #[test]
    fn cluster_command_error_shows_log_tail_only_when_present() {
        let with_log = DbError::ClusterCommand {
            binary: PathBuf::from("/usr/bin/initdb"),
            action: "creating the data directory",
            status: "exit status: 1".into(),
            log_tail: "initdb: error: boom\n".into(),
        };
        assert!(with_log.to_string().ends_with("log:\ninitdb: error: boom"));
        let without = DbError::ClusterCommand {
            binary: PathBuf::from("/usr/bin/initdb"),
            action: "creating the data directory",
            status: "exit status: 1".into(),
            log_tail: String::new(),
        };
        assert!(without
            .to_string()
            .ends_with("creating the data directory."));
    }
}
