//! Ctrl-C (SIGINT), SIGTERM and SIGHUP while a command has statements running on a database.
//!
//! Without this, a signal ends pgshift at once but not the statement it sent: the server runs
//! it to its end, keeping its table locks (an `ALTER TABLE` rewrite holds ACCESS EXCLUSIVE for
//! as long as it runs) and pgshift's runner lock, so the next `pgshift up` waits behind a run
//! nobody is watching. SIGTERM is what Kubernetes, `docker stop`, systemd and CI cancels send,
//! SIGHUP what a closed terminal or SSH session sends; they are treated like Ctrl-C. On any of
//! them, pgshift asks the server to cancel the statement each of its sessions is running
//! (including sessions the library keeps to itself, such as `trace`'s), then drops the work:
//! each transaction rolls back, and the sessions close when the process exits right after,
//! which releases every lock, the runner's session advisory lock included. The history stays
//! true: a unit records its progress in the transaction that does its work, and a resumed
//! no-transaction migration drops the INVALID index a cancelled `CREATE INDEX CONCURRENTLY`
//! leaves. The exit code is 128 + the signal number, as a shell reports a process the signal
//! killed.

use std::future::Future;

use tokio::signal::unix::{signal, Signal, SignalKind};

use super::{exit, Failure};

/// Runs `work` until it ends or SIGINT, SIGTERM or SIGHUP arrives; then cancels the running
/// statements and fails with the signal's exit code. `after` completes the message: what
/// stays done and how to go on (empty for commands that only read).
pub async fn cancel_on_signal<T>(
    after: &str,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    // Installed before `work` is first polled, so no statement is sent unguarded.
    let mut signals = Signals::install();
    let mut work = Box::pin(work);
    let stop = tokio::select! {
        result = &mut work => return result,
        stop = signals.next() => stop,
    };
    // `work` still owns its sessions: cancel their statements before dropping it, which
    // closes them (and would forget their cancel handles).
    let cancelled = pgshift_db::cancel_every_session().await;
    drop(work);
    let signal = stop.name();
    let message = match cancelled {
        Ok(0) => format!(
            "interrupted by {signal} while no database session was open: nothing was running"
        ),
        Ok(_) => format!(
            "interrupted by {signal}: the running statement was cancelled and its transaction \
            rolled back{after}"
        ),
        Err(e) => format!(
            "interrupted by {signal}, but the server did not accept the cancel request ({e}): \
            the statement may still be running and holding its locks until it ends \
            (`pg_stat_activity`, application_name `pgshift`)"
        ),
    };
    Err(Failure {
        message,
        code: stop.exit_code(),
    })
}

/// The signals that stop a command.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Interrupt,
    Terminate,
    HangUp,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT (Ctrl-C)",
            Stop::Terminate => "SIGTERM",
            Stop::HangUp => "SIGHUP",
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => exit::INTERRUPTED,
            Stop::Terminate => exit::TERMINATED,
            Stop::HangUp => exit::HANGUP,
        }
    }
}

struct Signals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
    hang_up: Option<Signal>,
}

impl Signals {
    /// A signal whose handler cannot be installed keeps its default action, as without this
    /// guard.
    fn install() -> Signals {
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
            hang_up: signal(SignalKind::hangup()).ok(),
        }
    }

    async fn next(&mut self) -> Stop {
        tokio::select! {
            () = arrival(&mut self.interrupt) => Stop::Interrupt,
            () = arrival(&mut self.terminate) => Stop::Terminate,
            () = arrival(&mut self.hang_up) => Stop::HangUp,
        }
    }
}

/// Resolves when `signal` arrives; never, when it has no handler.
async fn arrival(signal: &mut Option<Signal>) {
    if let Some(s) = signal {
        if s.recv().await.is_some() {
            return;
        }
    }
    std::future::pending().await
}
