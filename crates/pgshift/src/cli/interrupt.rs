//! Ctrl-C while migrations run on a database.
//!
//! Without this, SIGINT ends pgshift at once but not the statement it sent: the server runs it
//! to its end, keeping its table locks (an `ALTER TABLE` rewrite holds ACCESS EXCLUSIVE for as
//! long as it runs) and pgshift's runner lock, so the next `pgshift up` waits behind a run
//! nobody is watching. On Ctrl-C, pgshift asks the server to cancel the running statement
//! first; its transaction rolls back and the session ends with the process, which releases
//! every lock. The history stays true: a unit records its progress in the transaction that
//! does its work, and a resumed no-transaction migration drops the INVALID index a cancelled
//! `CREATE INDEX CONCURRENTLY` leaves.

use std::future::Future;

use pgshift_db::CancelToken;

use super::{exit, Failure};

/// Runs `work` (which uses the session `cancel` belongs to) until it ends or Ctrl-C arrives.
pub async fn cancel_on_ctrl_c<T>(
    cancel: CancelToken,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler could be installed: let the work finish, as without this guard.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = work => result,
        () = ctrl_c => {
            let message = match cancel.cancel().await {
                Ok(()) => "interrupted: the running statement was cancelled and its transaction \
                    rolled back; steps already completed stay applied and recorded. \
                    `pgshift status` shows where it stopped; `pgshift up` resumes"
                    .to_owned(),
                Err(e) => format!(
                    "interrupted, but the server did not accept the cancel request ({e}): the \
                    statement may still be running and holding its locks until it ends \
                    (`pg_stat_activity`, application_name `pgshift`)"
                ),
            };
            Err(Failure {
                message,
                code: exit::INTERRUPTED,
            })
        }
    }
}
