//! Database URLs: parsing, redaction, and conversion to a driver configuration.
//!
//! pgshift parses connection strings itself instead of handing them to tokio-postgres,
//! because the driver only knows `sslmode=disable|prefer|require`, while users write
//! `verify-ca`/`verify-full` and `sslrootcert=...` as they would for libpq. Both URL
//! (`postgres://user:pw@host:5432/db?sslmode=verify-full`) and libpq key/value
//! (`host=db user=alice dbname=app`) forms are accepted, with libpq's environment defaults
//! (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`).
//!
//! URLs written for other tools work unchanged: Prisma's `schema=NAME` (the schema its tables
//! and `_prisma_migrations` live in; the connection's `search_path`, see
//! [`DatabaseUrl::schema`]), and node-postgres's TLS parameters with the meaning
//! node-postgres documents for them (`pg-connection-string`, `pg`):
//!
//! | parameter | node-postgres | pgshift |
//! |---|---|---|
//! | `ssl=true`, `ssl=1` | `ssl: true`: Node's TLS defaults verify the chain and the host name | `verify-full` |
//! | `ssl=false`, `ssl=0` | no TLS | `disable` |
//! | `sslmode=no-verify`, `ssl=no-verify`, `PGSSLMODE=no-verify` | `ssl: { rejectUnauthorized: false }`: TLS, certificate never checked | `require` without a root certificate |
//!
//! As in node-postgres, `sslmode` wins over `ssl` when both are given.
//!
//! A [`DatabaseUrl`] never shows its password: `Display`, `Debug` and [`DatabaseUrl::redacted`]
//! all leave it out, so it can be logged and put into error messages freely.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::DbError;

/// How the connection uses TLS, with libpq's meaning of each mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS if the server offers it, without verifying the certificate; fall back to a
    /// plain connection otherwise. libpq's default.
    #[default]
    Prefer,
    /// Always use TLS, without verifying the certificate (unless `sslrootcert` is given, in
    /// which case libpq — and pgshift — verify the chain as in `verify-ca`).
    Require,
    /// Always use TLS and verify that a trusted CA signed the certificate; the host name is
    /// not checked.
    VerifyCa,
    /// Always use TLS, verify the chain and that the certificate names the host.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling (`verify-full`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            // libpq's `allow` tries plain first, then TLS; plain-or-TLS without verification
            // is what `prefer` gives us too, so treat it the same.
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// What a TLS parameter of the URL asks for: a libpq mode, or node-postgres's `no-verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsChoice {
    Mode(SslMode),
    /// node-postgres's `sslmode=no-verify` / `ssl=no-verify` (also in `PGSSLMODE`): TLS
    /// with `{ rejectUnauthorized: false }`, so the certificate is never checked — not even
    /// against an `sslrootcert` (node-postgres still turns verification off then). pgshift's
    /// `require` without a root certificate is exactly that.
    NoVerify,
}

const SSLMODE_VALUES: &str =
    "disable, allow, prefer, require, verify-ca, verify-full (or node-postgres's no-verify)";
const NODE_SSL_VALUES: &str = "node-postgres's true, 1, false, 0, no-verify";

impl TlsChoice {
    /// An `sslmode` value: libpq's six, and node-postgres's `no-verify`.
    fn parse_sslmode(value: &str) -> Option<TlsChoice> {
        match value {
            "no-verify" => Some(TlsChoice::NoVerify),
            _ => SslMode::parse(value).map(TlsChoice::Mode),
        }
    }

    /// node-postgres's `ssl` parameter. `ssl=true` hands `ssl: true` to Node's TLS socket,
    /// whose defaults (`rejectUnauthorized: true` and the host-name check) verify the chain
    /// against the trusted roots and the host name: `verify-full`, not libpq's `require`.
    fn parse_node_ssl(value: &str) -> Option<TlsChoice> {
        Some(match value {
            "true" | "1" => TlsChoice::Mode(SslMode::VerifyFull),
            "false" | "0" => TlsChoice::Mode(SslMode::Disable),
            "no-verify" => TlsChoice::NoVerify,
            _ => return None,
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One server address: a host name, IP address or unix-socket directory, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name, IP address, or an absolute path to a unix-socket directory.
    pub host: String,
    /// TCP port (also selects the socket file `.s.PGSQL.<port>` in a socket directory).
    pub port: u16,
}

impl HostPort {
    /// True when `host` is a unix-socket directory rather than a network host.
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }
}

/// Connection parameters that pgshift hands through to the driver unchanged.
const PASS_THROUGH_PARAMS: &[&str] = &[
    "application_name",
    "connect_timeout",
    "options",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "tcp_user_timeout",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
    "hostaddr",
    "sslnegotiation",
];

/// libpq parameters that are understood but not supported; rejecting them loudly is better
/// than connecting without the client certificate the user asked for.
const UNSUPPORTED_PARAMS: &[&str] = &[
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "passfile",
    "service",
    "gssencmode",
    "krbsrvname",
];

/// A parsed PostgreSQL connection string. See the [module docs](self).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    user: String,
    password: Option<String>,
    hosts: Vec<HostPort>,
    database: String,
    ssl_mode: SslMode,
    ssl_root_cert: Option<PathBuf>,
    /// Prisma's `schema=NAME`: the one schema on the connection's `search_path`.
    schema: Option<String>,
    /// Other parameters, in the order they were given.
    params: Vec<(String, String)>,
}

impl DatabaseUrl {
    /// Parses a `postgres://` / `postgresql://` URL or a libpq `key=value` string, filling
    /// what is missing from the `PG*` environment variables and libpq's defaults
    /// (`localhost`, port 5432, the OS user, a database named like the user).
    pub fn parse(input: &str) -> Result<DatabaseUrl, DbError> {
        DatabaseUrl::parse_with_env(input, &|name| std::env::var(name).ok())
    }

    /// Like [`DatabaseUrl::parse`], with the environment given explicitly (for tests and for
    /// callers that must not read the process environment).
    pub fn parse_with_env(
        input: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DatabaseUrl, DbError> {
        let input = input.trim();
        let pairs = if let Some(rest) = input
            .strip_prefix("postgres://")
            .or_else(|| input.strip_prefix("postgresql://"))
        {
            if userinfo_end(rest).is_none() && password_like_userinfo_end(rest).is_some() {
                // Any other message would quote a piece of the password.
                return Err(invalid(
                    input,
                    "the password seems to hold an unencoded `/` or `?`: percent-encode `/` \
                     as %2F and `?` as %3F (and `@` as %40, `:` as %3A, `#` as %23)"
                        .into(),
                ));
            }
            parse_url_parts(rest).map_err(|reason| invalid(input, reason))?
        } else if input.contains('=') {
            parse_key_values(input).map_err(|reason| invalid(input, reason))?
        } else {
            return Err(invalid(
                input,
                "it is neither a postgres:// URL nor key=value pairs".into(),
            ));
        };
        DatabaseUrl::from_pairs(pairs, env).map_err(|reason| invalid(input, reason))
    }

    fn from_pairs(
        pairs: Vec<(String, String)>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DatabaseUrl, String> {
        let mut user = None;
        let mut password = None;
        let mut hosts: Option<String> = None;
        let mut ports: Option<String> = None;
        let mut database = None;
        let mut ssl_mode = None;
        let mut node_ssl = None;
        let mut ssl_root_cert = None;
        let mut schema = None;
        let mut params: Vec<(String, String)> = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "user" => user = Some(value),
                "password" => password = Some(value),
                "host" => hosts = Some(value),
                "port" => ports = Some(value),
                "dbname" => database = Some(value),
                "sslmode" => {
                    ssl_mode = Some(TlsChoice::parse_sslmode(&value).ok_or_else(|| {
                        format!("sslmode `{value}` is not one of {SSLMODE_VALUES}")
                    })?)
                }
                "ssl" => {
                    node_ssl =
                        Some(TlsChoice::parse_node_ssl(&value).ok_or_else(|| {
                            format!("ssl `{value}` is not one of {NODE_SSL_VALUES}")
                        })?)
                }
                "sslrootcert" => ssl_root_cert = Some(PathBuf::from(value)),
                "schema" => schema = Some(value),
                k if PASS_THROUGH_PARAMS.contains(&k) => {
                    params.retain(|(existing, _)| existing != k);
                    params.push((key, value));
                }
                k if UNSUPPORTED_PARAMS.contains(&k) => {
                    return Err(format!("the parameter `{k}` is not supported by pgshift"))
                }
                k => return Err(format!("unknown parameter `{k}`")),
            }
        }

        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let user = non_empty(user)
            .or_else(|| non_empty(env("PGUSER")))
            .or_else(|| non_empty(env("USER")))
            .unwrap_or_else(|| "postgres".to_owned());
        let password = password.or_else(|| env("PGPASSWORD"));
        let database = non_empty(database)
            .or_else(|| non_empty(env("PGDATABASE")))
            .unwrap_or_else(|| user.clone());
        // node-postgres applies `sslmode` after `ssl`, so `sslmode` wins.
        let tls = match ssl_mode.or(node_ssl) {
            Some(choice) => choice,
            None => match non_empty(env("PGSSLMODE")) {
                Some(value) => TlsChoice::parse_sslmode(&value)
                    .ok_or_else(|| format!("PGSSLMODE `{value}` is not a valid sslmode"))?,
                None => TlsChoice::Mode(SslMode::default()),
            },
        };
        let (ssl_mode, ssl_root_cert) = match tls {
            TlsChoice::Mode(mode) => (
                mode,
                ssl_root_cert
                    .or_else(|| non_empty(env("PGSSLROOTCERT")).map(PathBuf::from))
                    .filter(|p| !p.as_os_str().is_empty()),
            ),
            // A root certificate would make `require` verify the chain; `no-verify` never does.
            TlsChoice::NoVerify => (SslMode::Require, None),
        };
        // An empty value means "not set", as for libpq's parameters.
        let schema = non_empty(schema);

        let hosts_text = non_empty(hosts)
            .or_else(|| non_empty(env("PGHOST")))
            .unwrap_or_else(|| "localhost".to_owned());
        let ports_text = non_empty(ports).or_else(|| non_empty(env("PGPORT")));
        let hosts = combine_hosts_and_ports(&hosts_text, ports_text.as_deref())?;

        Ok(DatabaseUrl {
            user,
            password,
            hosts,
            database,
            ssl_mode,
            ssl_root_cert,
            schema,
            params,
        })
    }

    /// The URL without its password, e.g. `postgres://alice@db:5432/app?sslmode=require`.
    /// It is itself a valid libpq URL (for `psql`, `pg_dump`), except for Prisma's `schema=`,
    /// which it keeps so that messages say which schema was used (libpq has no such
    /// parameter). node-postgres's TLS parameters come out as the equivalent `sslmode`.
    pub fn redacted(&self) -> String {
        let mut out = String::from("postgres://");
        out.push_str(&percent_encode(&self.user));
        out.push('@');
        let unix_sockets = self.hosts.iter().any(HostPort::is_unix_socket);
        if !unix_sockets {
            for (i, hp) in self.hosts.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if hp.host.contains(':') {
                    out.push('[');
                    out.push_str(&hp.host);
                    out.push(']');
                } else {
                    out.push_str(&percent_encode(&hp.host));
                }
                out.push(':');
                out.push_str(&hp.port.to_string());
            }
        }
        out.push('/');
        out.push_str(&percent_encode(&self.database));
        let mut query: Vec<(&str, String)> = Vec::new();
        if unix_sockets {
            // A socket directory cannot go into the authority part; libpq takes it as `host=`.
            let hosts: Vec<&str> = self.hosts.iter().map(|h| h.host.as_str()).collect();
            let ports: Vec<String> = self.hosts.iter().map(|h| h.port.to_string()).collect();
            query.push(("host", hosts.join(",")));
            query.push(("port", ports.join(",")));
        }
        if self.ssl_mode != SslMode::Prefer {
            query.push(("sslmode", self.ssl_mode.as_str().to_owned()));
        }
        if let Some(root) = &self.ssl_root_cert {
            query.push(("sslrootcert", root.display().to_string()));
        }
        if let Some(schema) = &self.schema {
            query.push(("schema", schema.clone()));
        }
        for (k, v) in &self.params {
            query.push((k, v.clone()));
        }
        for (i, (k, v)) in query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(k);
            out.push('=');
            out.push_str(&percent_encode_query_value(v));
        }
        out
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password, if any. Only for handing to another program's environment
    /// (`PGPASSWORD` for `pg_dump`); never print it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The servers to try, in order.
    pub fn hosts(&self) -> &[HostPort] {
        &self.hosts
    }

    /// The TLS mode as written (see [`SslMode`]).
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The CA certificate file from `sslrootcert`, if given.
    pub fn ssl_root_cert(&self) -> Option<&Path> {
        self.ssl_root_cert.as_deref()
    }

    /// Prisma's `schema=NAME`, if given: the schema the application's tables (and Prisma's
    /// `_prisma_migrations`) live in. [`connect`](crate::connect()) makes it the session's
    /// whole `search_path`, as Prisma does, so unqualified names resolve there.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// A pass-through parameter such as `application_name`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The same server and credentials, another database (for the admin database
    /// `postgres`, or a scratch database).
    pub fn with_database(&self, name: &str) -> DatabaseUrl {
        DatabaseUrl {
            database: name.to_owned(),
            ..self.clone()
        }
    }

    /// The same URL with another user.
    pub fn with_user(&self, user: &str) -> DatabaseUrl {
        DatabaseUrl {
            user: user.to_owned(),
            ..self.clone()
        }
    }

    /// The same URL with another password (or none).
    pub fn with_password(&self, password: Option<&str>) -> DatabaseUrl {
        DatabaseUrl {
            password: password.map(str::to_owned),
            ..self.clone()
        }
    }

    /// The same URL with another TLS mode.
    pub fn with_ssl_mode(&self, mode: SslMode) -> DatabaseUrl {
        DatabaseUrl {
            ssl_mode: mode,
            ..self.clone()
        }
    }

    /// The same URL with another `sslrootcert`.
    pub fn with_ssl_root_cert(&self, path: Option<&Path>) -> DatabaseUrl {
        DatabaseUrl {
            ssl_root_cert: path.map(Path::to_path_buf),
            ..self.clone()
        }
    }

    /// The same URL with another host list.
    pub fn with_hosts(&self, hosts: Vec<HostPort>) -> DatabaseUrl {
        DatabaseUrl {
            hosts,
            ..self.clone()
        }
    }

    /// The same URL with a pass-through parameter set (replacing an earlier value).
    /// Returns an error for parameters pgshift does not pass through.
    pub fn with_param(&self, key: &str, value: &str) -> Result<DatabaseUrl, DbError> {
        if !PASS_THROUGH_PARAMS.contains(&key) {
            return Err(invalid(
                &self.redacted(),
                format!("`{key}` cannot be set as a parameter"),
            ));
        }
        let mut url = self.clone();
        url.params.retain(|(k, _)| k != key);
        url.params.push((key.to_owned(), value.to_owned()));
        Ok(url)
    }

    /// The driver configuration, without TLS (see `tls.rs` for that). The driver's
    /// `ssl_mode` is `Require` for every verifying mode; verification is done by the
    /// rustls configuration.
    pub(crate) fn driver_config(&self) -> Result<tokio_postgres::Config, DbError> {
        // Pass-through parameters go through the driver's own parser so that their values
        // are validated exactly as the driver understands them.
        let mut text = String::new();
        for (key, value) in &self.params {
            text.push_str(key);
            text.push_str("='");
            for ch in value.chars() {
                if ch == '\'' || ch == '\\' {
                    text.push('\\');
                }
                text.push(ch);
            }
            text.push_str("' ");
        }
        let mut config = tokio_postgres::Config::from_str(&text).map_err(|err| {
            // The driver's messages name the option, never its value.
            invalid(&self.redacted(), err.to_string())
        })?;
        config.user(&self.user);
        if let Some(password) = &self.password {
            config.password(password);
        }
        config.dbname(&self.database);
        for hp in &self.hosts {
            if hp.is_unix_socket() {
                config.host_path(&hp.host);
            } else {
                config.host(&hp.host);
            }
            config.port(hp.port);
        }
        config.ssl_mode(match self.ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        Ok(config)
    }
}

impl FromStr for DatabaseUrl {
    type Err = DbError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatabaseUrl::parse(s)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// An `InvalidUrl` error whose shown input has any password removed. Called with raw input,
/// so the password must be cut out textually.
fn invalid(input: &str, reason: String) -> DbError {
    DbError::InvalidUrl {
        input: redact_raw(input),
        reason,
    }
}

/// Removes passwords from a connection string that may not even parse: the `user:PASS@` part
/// of a URL, and `password=...` in a query string or key/value list.
fn redact_raw(input: &str) -> String {
    let mut text = input.to_owned();
    if !text.contains("://") {
        // A URL with a mistyped scheme (`postgres:/u:p@h/db`, `postgres//u:p@h/db`): before
        // the last `@`, everything from the first `:` that does not start a `:/` (the
        // scheme's) goes — a password may hold `/`, `?` or `@` unencoded, so cutting more
        // than the password (the user, a scheme) is the safe side.
        if let Some(at) = text.rfind('@') {
            let head = &text[..at];
            let colon = head
                .char_indices()
                .find(|(i, c)| *c == ':' && !head[i + 1..].starts_with('/'))
                .map(|(i, _)| i);
            if let Some(colon) = colon {
                text.replace_range(colon..at, "");
            }
        }
    }
    if let Some(scheme_end) = text.find("://") {
        let authority_start = scheme_end + 3;
        let rest = &text[authority_start..];
        let at = userinfo_end(rest)
            .map(UserinfoEnd::at)
            .or_else(|| password_like_userinfo_end(rest));
        if let Some(at) = at {
            let userinfo = &rest[..at];
            if let Some(colon) = userinfo.find(':') {
                let user = userinfo[..colon].to_owned();
                text.replace_range(authority_start..authority_start + at, &user);
            }
        }
    }
    // `password=...` up to the next separator (or the closing quote of a quoted value). In
    // any letter case: `Password=` is an unknown parameter, and its error shows the input.
    // (ASCII lowercasing keeps every byte offset.)
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(pos) = rest.to_ascii_lowercase().find("password") {
        let after = &rest[pos + "password".len()..];
        let trimmed = after.trim_start();
        if let Some(value) = trimmed.strip_prefix('=') {
            out.push_str(&rest[..pos]);
            out.push_str("password=***");
            let value = value.trim_start();
            let consumed = if let Some(quoted) = value.strip_prefix('\'') {
                let mut end = quoted.len();
                let mut escaped = false;
                for (i, ch) in quoted.char_indices() {
                    if escaped {
                        escaped = false;
                    } else if ch == '\\' {
                        escaped = true;
                    } else if ch == '\'' {
                        end = i + 1;
                        break;
                    }
                }
                1 + end
            } else {
                value
                    .find(|c: char| c == '&' || c.is_whitespace())
                    .unwrap_or(value.len())
            };
            rest = &value[consumed.min(value.len())..];
        } else {
            out.push_str(&rest[..pos + "password".len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Where the `user:password` part of a URL (after `://`) ends: at the `@` that separates it
/// from the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserinfoEnd {
    /// An `@` before the first `/`, as libpq reads it: the password may hold `?`, `#` or `@`
    /// unencoded (the last `@` before the first `/` ends it).
    At(usize),
    /// No `@` before the first `/`, but `user:...` followed by an `@` before the query: a
    /// password holding an unencoded `/`. libpq refuses such a URL too; the position is known
    /// so that the error message can hide the password.
    AfterSlash(usize),
}

impl UserinfoEnd {
    fn at(self) -> usize {
        match self {
            UserinfoEnd::At(at) | UserinfoEnd::AfterSlash(at) => at,
        }
    }
}

fn userinfo_end(rest: &str) -> Option<UserinfoEnd> {
    let first_slash = rest.find('/').unwrap_or(rest.len());
    if let Some(at) = rest[..first_slash].rfind('@') {
        return Some(UserinfoEnd::At(at));
    }
    let before_query = rest.find('?').unwrap_or(rest.len());
    if first_slash < before_query && rest[..first_slash].contains(':') {
        return rest[..before_query].rfind('@').map(UserinfoEnd::AfterSlash);
    }
    None
}

/// For an error message only: where a password that holds an unencoded `?` *and* `/`
/// (`app:pa?ss/S3cr3t@host`) ends. Neither libpq nor [`userinfo_end`] reads such a URL as
/// having a password, but a person wrote one: `user:` followed by text that is not a port, and
/// an `@` further on. Hiding too much in a message that already says the URL is invalid costs
/// nothing; showing a password does.
fn password_like_userinfo_end(rest: &str) -> Option<usize> {
    let colon = rest.find(':')?;
    let user = &rest[..colon];
    if user.contains(['/', '?', '@', '#', ',', '[']) {
        return None;
    }
    let after = &rest[colon + 1..];
    let port_len = after.find(['/', '?', ',']).unwrap_or(after.len());
    let looks_like_port = port_len > 0 && after[..port_len].bytes().all(|b| b.is_ascii_digit());
    if looks_like_port {
        return None;
    }
    rest.rfind('@').filter(|&at| at > colon)
}

/// Splits `user:pw@host1:p1,host2/db?k=v` into key/value pairs, percent-decoding each part.
fn parse_url_parts(rest: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let rest = match userinfo_end(rest) {
        Some(UserinfoEnd::At(at)) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    pairs.push(("user".to_owned(), percent_decode(user, "user name")?));
                    pairs.push(("password".to_owned(), percent_decode(password, "password")?));
                }
                None => pairs.push(("user".to_owned(), percent_decode(userinfo, "user name")?)),
            }
            &rest[at + 1..]
        }
        Some(UserinfoEnd::AfterSlash(_)) => {
            return Err(
                "the text before `@` holds a `/`: percent-encode `/` as %2F (and `@` as \
                 %40, `:` as %3A) in the user name, password or database name"
                    .to_owned(),
            )
        }
        None => rest,
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (host_part, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (before_query, None),
    };
    if !host_part.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for entry in host_part.split(',') {
            let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
                let (addr, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("unclosed `[` in host `{entry}`"))?;
                let port = match after.strip_prefix(':') {
                    Some(p) => p,
                    None if after.is_empty() => "",
                    None => return Err(format!("unexpected text after `]` in host `{entry}`")),
                };
                (addr.to_owned(), port)
            } else {
                match entry.rsplit_once(':') {
                    Some((h, p)) => (percent_decode(h, "host")?, p),
                    None => (percent_decode(entry, "host")?, ""),
                }
            };
            hosts.push(host);
            ports.push(port.to_owned());
        }
        pairs.push(("host".to_owned(), hosts.join(",")));
        if ports.iter().any(|p| !p.is_empty()) {
            pairs.push(("port".to_owned(), ports.join(",")));
        }
    }
    if let Some(path) = path {
        if !path.is_empty() {
            pairs.push(("dbname".to_owned(), percent_decode(path, "database name")?));
        }
    }
    if let Some(query) = query {
        for item in query.split('&').filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("query parameter `{}` has no `=value`", redact_raw(item)))?;
            pairs.push((
                percent_decode(key, "parameter name")?,
                percent_decode(value, "parameter value")?,
            ));
        }
    }
    Ok(pairs)
}

/// Parses libpq's `key=value key='quoted value'` format.
fn parse_key_values(input: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("`{key}` is missing `=value`"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(escaped) => value.push(escaped),
                        None => break,
                    },
                    '\'' => {
                        closed = true;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(format!("the quoted value of `{key}` has no closing quote"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Pairs a comma-separated host list with a port list (one port for all, or one per host).
fn combine_hosts_and_ports(hosts: &str, ports: Option<&str>) -> Result<Vec<HostPort>, String> {
    let hosts: Vec<&str> = hosts.split(',').collect();
    let ports: Vec<&str> = ports.map(|p| p.split(',').collect()).unwrap_or_default();
    if ports.len() > 1 && ports.len() != hosts.len() {
        return Err(format!(
            "{} hosts but {} ports; give one port, or one per host",
            hosts.len(),
            ports.len()
        ));
    }
    hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port_text = match ports.len() {
                0 => "",
                1 => ports[0],
                _ => ports[i],
            };
            let port = if port_text.is_empty() {
                5432
            } else {
                port_text
                    .parse::<u16>()
                    .map_err(|_| format!("port `{port_text}` is not a number from 1 to 65535"))?
            };
            let host = if host.is_empty() { "localhost" } else { host };
            Ok(HostPort {
                host: host.to_owned(),
                port,
            })
        })
        .collect()
}

fn percent_decode(text: &str, what: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in the {what}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the {what} is not valid UTF-8 after decoding"))
}

fn percent_encode(text: &str) -> String {
    percent_encode_except(text, b"-._~")
}

/// Query values may keep `/`, `:` and `,` readable (paths, host lists): they have no meaning
/// there.
fn percent_encode_query_value(text: &str) -> String {
    percent_encode_except(text, b"-._~/:,")
}

fn percent_encode_except(text: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || safe.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> DatabaseUrl {
        match DatabaseUrl::parse_with_env(input, &|_| None) {
            Ok(url) => url,
            Err(err) => panic!("{input}: {err}"),
        }
    }

    fn parse_err(input: &str) -> String {
        match DatabaseUrl::parse_with_env(input, &|_| None) {
            Ok(url) => panic!("{input} parsed as {url}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn full_url_parses_every_part() {
        let url = parse("postgresql://alice:s3cret@db.example.com:6543/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=web");
        assert_eq!(url.user(), "alice");
        assert_eq!(url.password(), Some("s3cret"));
        assert_eq!(
            url.hosts(),
            &[HostPort {
                host: "db.example.com".into(),
                port: 6543
            }]
        );
        assert_eq!(url.database(), "app");
        assert_eq!(url.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(url.ssl_root_cert(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(url.param("application_name"), Some("web"));
    }

    #[test]
    fn display_and_debug_never_show_the_password() {
        let url = parse("postgres://alice:hunter2@db:5432/app");
        assert_eq!(url.to_string(), "postgres://alice@db:5432/app");
        assert_eq!(url.redacted(), "postgres://alice@db:5432/app");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&url)).contains("hunter2"));
    }

    #[test]
    fn password_in_query_or_key_values_is_hidden_too() {
        let url = parse("postgres://alice@db/app?password=hunter2");
        assert_eq!(url.password(), Some("hunter2"));
        assert!(!url.to_string().contains("hunter2"));
        let kv = parse("host=db user=alice password='hun ter\\'2' dbname=app");
        assert_eq!(kv.password(), Some("hun ter'2"));
        assert_eq!(kv.to_string(), "postgres://alice@db:5432/app");
    }

    #[test]
    fn invalid_urls_do_not_echo_the_password() {
        let err = parse_err("postgres://alice:hunter2@db:notaport/app");
        assert!(err.contains("notaport"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_err("postgres://alice:hunter2@db/app?sslmode=bogus");
        assert!(err.contains("sslmode `bogus`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_err("host=db password=hunter2 bogus=1");
        assert!(err.contains("unknown parameter `bogus`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_err("host=db password='hunter 2' sslmode=nope");
        assert!(!err.contains("hunter"), "{err}");
        let err = parse_err("postgres://alice@db/app?password=hunter2&x");
        assert!(!err.contains("hunter2"), "{err}");
        // A misspelt key is an error that shows the input: its value stays hidden.
        let err = parse_err("host=db Password=hunter2");
        assert!(err.contains("unknown parameter `Password`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_err("postgres://alice@db/app?PASSWORD=hunter2");
        assert!(!err.contains("hunter2"), "{err}");
        // Generated passwords hold `/`, `?`, `#` and `@`; written unencoded, no part of them
        // may appear in a message.
        let err = parse_err("postgres://alice:hun/ter2@db:5432/app");
        assert!(!err.contains("hun"), "{err}");
        assert!(!err.contains("ter2"), "{err}");
        assert!(err.contains("%2F"), "{err}");
        // Both `?` and `/` unencoded: libpq reads no password at all, but it is one.
        for url in [
            "postgres://app:pa?ss/S3cr3t@host/app",
            "postgresql://app:pa?ss/S3cr3t@host:5432/app?sslmode=require",
            "postgres://app:p/a?ss/S3cr3t@host/app",
        ] {
            let err = parse_err(url);
            assert!(!err.contains("S3cr3t") && !err.contains("pa?ss"), "{err}");
            assert!(
                err.contains("percent-encode `/` as %2F and `?` as %3F"),
                "{err}"
            );
        }
        let err = parse_err("postgres://alice:hun?ter2@db:99999/app");
        assert!(err.contains("99999"), "{err}");
        assert!(!err.contains("hun") && !err.contains("ter2"), "{err}");
    }

    #[test]
    fn passwords_with_unencoded_question_marks_hashes_and_ats_are_read_as_libpq_reads_them() {
        for password in ["hun?ter2", "hun#ter2", "hun@ter2", "a?b=c&d"] {
            let url = parse(&format!(
                "postgres://alice:{password}@db:5433/app?sslmode=disable"
            ));
            assert_eq!(url.password(), Some(password));
            assert_eq!(url.user(), "alice");
            assert_eq!(url.database(), "app");
            assert_eq!(
                url.redacted(),
                "postgres://alice@db:5433/app?sslmode=disable"
            );
        }
        // An `@` in a query value is not a password separator.
        let url = parse("postgres://db/app?application_name=me@laptop");
        assert_eq!(url.param("application_name"), Some("me@laptop"));
        assert_eq!(url.password(), None);
    }

    #[test]
    fn percent_escapes_are_decoded_and_re_encoded() {
        let url = parse("postgres://al%40ice:p%40ss%2Fw@db/my%20db");
        assert_eq!(url.user(), "al@ice");
        assert_eq!(url.password(), Some("p@ss/w"));
        assert_eq!(url.database(), "my db");
        assert_eq!(url.redacted(), "postgres://al%40ice@db:5432/my%20db");
        let round_trip = parse(&url.redacted());
        assert_eq!(round_trip.user(), "al@ice");
        assert_eq!(round_trip.database(), "my db");
    }

    #[test]
    fn defaults_follow_libpq() {
        let url = parse("postgres://");
        assert_eq!(url.hosts()[0].host, "localhost");
        assert_eq!(url.hosts()[0].port, 5432);
        assert_eq!(url.ssl_mode(), SslMode::Prefer);
        let env = |name: &str| match name {
            "PGUSER" => Some("bob".to_owned()),
            "PGPASSWORD" => Some("pw".to_owned()),
            "PGHOST" => Some("pg.internal".to_owned()),
            "PGPORT" => Some("5433".to_owned()),
            "PGSSLMODE" => Some("require".to_owned()),
            _ => None,
        };
        let url =
            DatabaseUrl::parse_with_env("postgres:///app", &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.user(), "bob");
        assert_eq!(url.password(), Some("pw"));
        assert_eq!(url.database(), "app");
        assert_eq!(url.hosts()[0].host, "pg.internal");
        assert_eq!(url.hosts()[0].port, 5433);
        assert_eq!(url.ssl_mode(), SslMode::Require);
        // The database defaults to the user name.
        let url = DatabaseUrl::parse_with_env("host=x", &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.database(), "bob");
    }

    #[test]
    fn multiple_hosts_ipv6_and_unix_sockets() {
        let url = parse("postgres://u@h1:5433,[::1]:5434,h3/db");
        let hosts: Vec<(&str, u16)> = url
            .hosts()
            .iter()
            .map(|h| (h.host.as_str(), h.port))
            .collect();
        assert_eq!(hosts, vec![("h1", 5433), ("::1", 5434), ("h3", 5432)]);
        assert_eq!(url.redacted(), "postgres://u@h1:5433,[::1]:5434,h3:5432/db");

        let socket = parse("postgres://u@%2Fvar%2Frun%2Fpostgresql/db");
        assert!(socket.hosts()[0].is_unix_socket());
        assert_eq!(
            socket.redacted(),
            "postgres://u@/db?host=/var/run/postgresql&port=5432"
        );
        let again = parse(&socket.redacted());
        assert_eq!(again.hosts(), socket.hosts());
        let kv = parse("host=/tmp,/var/run port=1,2 user=u");
        assert_eq!(kv.hosts()[1].host, "/var/run");
        assert_eq!(kv.hosts()[1].port, 2);
    }

    #[test]
    fn ssl_modes_are_all_understood() {
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Prefer),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(
                parse(&format!("postgres://h/d?sslmode={text}")).ssl_mode(),
                mode
            );
        }
        let url = parse("postgres://u@h/d?sslmode=verify-ca&sslrootcert=ca.pem");
        assert_eq!(
            url.redacted(),
            "postgres://u@h:5432/d?sslmode=verify-ca&sslrootcert=ca.pem"
        );
    }

    #[test]
    fn prismas_schema_parameter_is_recorded_and_shown() {
        // What `prisma init` writes.
        let url = parse("postgresql://johndoe:randompassword@localhost:5432/mydb?schema=public");
        assert_eq!(url.schema(), Some("public"));
        assert_eq!(url.database(), "mydb");
        assert_eq!(
            url.redacted(),
            "postgres://johndoe@localhost:5432/mydb?schema=public"
        );
        let again = parse(&url.redacted());
        assert_eq!(again.schema(), Some("public"));
        // Names are taken as written (Prisma quotes them), in key/value form too.
        let url = parse("postgres://h/d?schema=My%20App&sslmode=disable");
        assert_eq!(url.schema(), Some("My App"));
        assert_eq!(
            parse("host=h dbname=d schema=tenant_1").schema(),
            Some("tenant_1")
        );
        assert_eq!(parse("postgres://h/d").schema(), None);
        assert_eq!(parse("postgres://h/d?schema=").schema(), None);
        // Other databases and users keep it.
        assert_eq!(
            parse("postgres://h/d?schema=other")
                .with_database("postgres")
                .schema(),
            Some("other")
        );
    }

    #[test]
    fn node_postgres_tls_parameters_have_their_documented_meaning() {
        // `ssl=true` is Node's TLS with its defaults: chain and host name verified.
        for value in ["true", "1"] {
            let url = parse(&format!("postgres://u:pw@h/d?ssl={value}"));
            assert_eq!(url.ssl_mode(), SslMode::VerifyFull, "ssl={value}");
            assert_eq!(url.redacted(), "postgres://u@h:5432/d?sslmode=verify-full");
        }
        for value in ["false", "0"] {
            let url = parse(&format!("postgres://h/d?ssl={value}"));
            assert_eq!(url.ssl_mode(), SslMode::Disable, "ssl={value}");
        }
        // `no-verify`: TLS, certificate never checked, even against a root certificate.
        for input in [
            "postgres://h/d?sslmode=no-verify",
            "postgres://h/d?ssl=no-verify",
            "postgres://h/d?sslmode=no-verify&sslrootcert=/etc/ca.pem",
            "host=h sslmode=no-verify",
        ] {
            let url = parse(input);
            assert_eq!(url.ssl_mode(), SslMode::Require, "{input}");
            assert_eq!(url.ssl_root_cert(), None, "{input}");
        }
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("no-verify".to_owned()),
            "PGSSLROOTCERT" => Some("/etc/ca.pem".to_owned()),
            _ => None,
        };
        let url =
            DatabaseUrl::parse_with_env("postgres://h/d", &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.ssl_mode(), SslMode::Require);
        assert_eq!(url.ssl_root_cert(), None);
        // As in node-postgres, `sslmode` wins over `ssl`.
        assert_eq!(
            parse("postgres://h/d?ssl=true&sslmode=disable").ssl_mode(),
            SslMode::Disable
        );
        assert_eq!(
            parse("postgres://h/d?sslmode=require&ssl=false").ssl_mode(),
            SslMode::Require
        );
        // `ssl=true` with a root certificate verifies against it, as Node does with `ca`.
        let url = parse("postgres://h/d?ssl=true&sslrootcert=/etc/ca.pem");
        assert_eq!(url.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(url.ssl_root_cert(), Some(Path::new("/etc/ca.pem")));
    }

    #[test]
    fn bad_node_and_prisma_values_are_rejected_without_the_password() {
        let err = parse_err("postgres://alice:hunter2@db/app?ssl=yes&schema=public");
        assert!(err.contains("ssl `yes`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_err("postgres://alice:hunter2@db/app?schema=public&sslmode=noverify");
        assert!(err.contains("sslmode `noverify`"), "{err}");
        assert!(err.contains("no-verify"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_err("host=db password=hunter2 schema=public Ssl=true");
        assert!(err.contains("unknown parameter `Ssl`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn unsupported_and_malformed_inputs_are_rejected() {
        assert!(parse_err("postgres://h/d?sslcert=c.pem").contains("not supported"));
        assert!(parse_err("mysql://h/d").contains("neither"));
        assert!(parse_err("host='unterminated").contains("closing quote"));
        assert!(parse_err("postgres://h1,h2/d?port=1,2,3").contains("2 hosts but 3 ports"));
        assert!(parse_err("postgres://[::1/d").contains("unclosed"));
        assert!(parse_err("postgres://h/d%zz").contains("percent-escape"));
    }

    #[test]
    fn with_database_keeps_everything_else() {
        let url = parse("postgres://alice:pw@db:5433/app?sslmode=require&connect_timeout=5");
        let admin = url.with_database("postgres");
        assert_eq!(admin.database(), "postgres");
        assert_eq!(admin.password(), Some("pw"));
        assert_eq!(admin.ssl_mode(), SslMode::Require);
        assert_eq!(admin.param("connect_timeout"), Some("5"));
        assert_eq!(url.database(), "app");
    }

    #[test]
    fn driver_config_carries_pass_through_params() {
        let url = parse("postgres://alice:pw@db:5433/app?application_name=it's&connect_timeout=7&sslmode=verify-full");
        let config = url.driver_config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.get_application_name(), Some("it's"));
        assert_eq!(
            config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(7))
        );
        assert_eq!(config.get_user(), Some("alice"));
        assert_eq!(config.get_password(), Some(&b"pw"[..]));
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let bad = parse("postgres://alice:pw@db/app?connect_timeout=soon");
        let err = match bad.driver_config() {
            Ok(_) => panic!("bad connect_timeout accepted"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("connect_timeout"), "{err}");
        assert!(!err.contains("pw@"), "{err}");
    }

    #[test]
    fn raw_redaction_handles_unparseable_input() {
        assert_eq!(
            redact_raw("postgres://a:b@c/d?password=e&x=1"),
            "postgres://a@c/d?password=***&x=1"
        );
        assert_eq!(
            redact_raw("host=x password = 'p w' user=u"),
            "host=x password=*** user=u"
        );
        assert_eq!(redact_raw("passwordless=1"), "passwordless=1");
        // A mistyped scheme: the password is still cut out.
        for (typo, shown) in [
            (
                "postgres:/app:Hunter2Pw@db.internal/app",
                "postgres:/app@db.internal/app",
            ),
            (
                "postgres//app:Hunter2Pw@db.internal/app",
                "postgres//app@db.internal/app",
            ),
            ("app:Hunter2Pw@db.internal/app", "app@db.internal/app"),
            (
                "postgres:/app:Hunter2/Pw@db.internal/app",
                "postgres:/app@db.internal/app",
            ),
            (
                "postgres:/app:Hunter2?Pw@db.internal/app",
                "postgres:/app@db.internal/app",
            ),
        ] {
            assert_eq!(redact_raw(typo), shown);
            let err = DatabaseUrl::parse(typo)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(!err.contains("Hunter2"), "{err}");
        }
    }
}
