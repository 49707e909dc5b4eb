//! How the runner behaves; every field has a safe default and is settable from
//! `pgshift.toml` (`[run]`) and from flags.

use std::time::Duration;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunOptions {
    /// `lock_timeout` for every statement, set with `SET LOCAL` inside each transaction: the
    /// longest the application's queries can queue behind a DDL statement waiting for its lock.
    #[serde(with = "millis")]
    pub lock_timeout: Duration,
    /// `statement_timeout` for every statement except `CREATE INDEX CONCURRENTLY` and
    /// `VALIDATE`, which may legitimately run long (see `long_statement_timeout`).
    #[serde(with = "millis")]
    pub statement_timeout: Duration,
    /// `statement_timeout` for statements that build or scan without blocking writes.
    #[serde(with = "millis")]
    pub long_statement_timeout: Duration,
    /// Total time spent retrying a unit that hit `lock_timeout` (SQLSTATE 55P03) before giving up.
    #[serde(with = "millis")]
    pub lock_retry_budget: Duration,
    /// First backoff after a lock timeout; doubles each attempt, with jitter, up to `lock_retry_max_delay`.
    #[serde(with = "millis")]
    pub lock_retry_initial_delay: Duration,
    #[serde(with = "millis")]
    pub lock_retry_max_delay: Duration,
    /// How long to wait for another pgshift runner that holds the migration lock.
    #[serde(with = "millis")]
    pub runner_lock_wait: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            lock_timeout: Duration::from_millis(500),
            statement_timeout: Duration::from_secs(3600),
            long_statement_timeout: Duration::from_secs(0),
            lock_retry_budget: Duration::from_secs(300),
            lock_retry_initial_delay: Duration::from_millis(200),
            lock_retry_max_delay: Duration::from_secs(10),
            runner_lock_wait: Duration::from_secs(600),
        }
    }
}

mod millis {
    //! Durations in the config file are written as `"500ms"`, `"5s"`, `"2m"`, `"1h"` or a
    //! number of milliseconds; `0` means no limit (PostgreSQL's meaning of a zero timeout).
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(ms) => Ok(Duration::from_millis(ms)),
            Raw::Text(text) => super::parse_duration(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `500ms`, `5s`, `2m`, `1h`, or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 500ms, 5s, 2m or 1h"))?;
    let ms = match unit.trim() {
        "" | "ms" => value,
        "s" => value * 1000.0,
        "m" | "min" => value * 60_000.0,
        "h" => value * 3_600_000.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ms, s, m or h"
            ))
        }
    };
    if !ms.is_finite() || ms < 0.0 {
        return Err(format!("`{text}` is not a valid duration"));
    }
    Ok(Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn config_table_reads_durations() {
        let opts: RunOptions =
            toml::from_str("lock_timeout = \"2s\"\nlock_retry_budget = 60000").expect("parse");
        assert_eq!(opts.lock_timeout, Duration::from_secs(2));
        assert_eq!(opts.lock_retry_budget, Duration::from_secs(60));
        assert_eq!(
            opts.statement_timeout,
            RunOptions::default().statement_timeout
        );
    }
}
