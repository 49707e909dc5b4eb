//! Feedback while a step runs: a 20-second statement must not show only "applying ...". A
//! [`Progress`] hook watches every step `up` and `down` send and, from the first second on,
//! tells the observer about every second how long it has run, what it waits for (a lock and
//! who holds it, I/O) and, for an index build, how far PostgreSQL says it is. It asks on a
//! connection of its own, opened when a step first runs that long; the CLI draws the events as
//! a live line on a terminal and as a plain line every few seconds elsewhere.

use std::time::Duration;

use futures_util::future::BoxFuture;
use pgshift_db::{Activity, Connection, DatabaseUrl};

use crate::event::{Event, Observer};
use crate::executor::StepHook;
use crate::units::Step;

/// How often a running step is reported.
const EVERY: Duration = Duration::from_secs(1);

/// Watches the steps of one migration on the session `pid`.
pub(crate) struct Progress<'a> {
    observer: &'a dyn Observer,
    version: String,
    url: DatabaseUrl,
    pid: i32,
    monitor: tokio::sync::Mutex<Option<Connection>>,
}

impl<'a> Progress<'a> {
    pub(crate) fn new(conn: &Connection, version: &str, observer: &'a dyn Observer) -> Self {
        Progress {
            observer,
            version: version.to_string(),
            url: conn.url().clone(),
            pid: conn.backend_pid(),
            monitor: tokio::sync::Mutex::new(None),
        }
    }

    /// The session's activity, on the monitoring connection (opened on first use). A failure
    /// to look is not worth stopping a migration for: the line then shows the time only.
    async fn activity(&self) -> Option<Activity> {
        let mut monitor = self.monitor.lock().await;
        if monitor.is_none() {
            *monitor = pgshift_db::connect(&self.url).await.ok();
        }
        let conn = monitor.as_ref()?;
        pgshift_db::session_activity(conn, self.pid)
            .await
            .ok()
            .flatten()
    }
}

impl StepHook for Progress<'_> {
    fn passive(&self) -> bool {
        true
    }

    fn while_sending<'b>(&'b self, step: &'b Step) -> BoxFuture<'b, ()> {
        // Dropped by the executor when the step ends: a step shorter than a second costs a
        // timer, no query.
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let mut next = started + EVERY;
            loop {
                tokio::time::sleep_until(next).await;
                next += EVERY;
                let sql = one_line(&pgshift_sql::redact_secrets(step.sql()), 60);
                let activity = self.activity().await.unwrap_or_default();
                self.observer.event(&Event::StepRunning {
                    version: self.version.clone(),
                    sql,
                    elapsed: started.elapsed(),
                    waiting_for: waiting_for(&activity),
                    progress: activity.index_build.as_ref().map(index_progress),
                });
            }
        })
    }
}

fn waiting_for(a: &Activity) -> Option<String> {
    match a.wait_event_type.as_deref()? {
        "Lock" => Some(match a.blocked_by.as_slice() {
            [] => "a lock".to_string(),
            [pid] => format!("a lock held by pid {pid}"),
            pids => format!(
                "a lock held by pids {}",
                pids.iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        // Client: waiting for pgshift itself (COPY data); Activity: an idle background wait;
        // Timeout: a sleep the statement asked for (pg_sleep, vacuum delay).
        "Client" | "Activity" | "Timeout" => None,
        kind => Some(match a.wait_event.as_deref() {
            Some(event) => format!("{kind} ({event})"),
            None => kind.to_string(),
        }),
    }
}

fn index_progress((phase, done, total): &(String, i64, i64)) -> String {
    if *total > 0 {
        let percent = done.saturating_mul(100) / total;
        format!("{phase}, {percent}% ({done} of {total})")
    } else {
        phase.clone()
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = pgshift_sql::printable_line(&flat).into_owned();
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_index_builds_read_well() {
        let lock = Activity {
            wait_event_type: Some("Lock".into()),
            wait_event: Some("relation".into()),
            blocked_by: vec![4242],
            index_build: None,
        };
        assert_eq!(
            waiting_for(&lock).as_deref(),
            Some("a lock held by pid 4242")
        );
        assert_eq!(waiting_for(&Activity::default()), None);
        assert_eq!(
            index_progress(&("building index: scanning table".into(), 41, 100)),
            "building index: scanning table, 41% (41 of 100)"
        );
    }
}
