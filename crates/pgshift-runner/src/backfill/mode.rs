//! Whether a backfill can tell, from a row, that the row still needs the update.
//!
//! `(col) IS DISTINCT FROM (expr)` tells it only when the SET, run again on a row it already
//! updated, gives the same value. `amount = amount * 100` gives another (×100 again), and so
//! does anything volatile or read from the clock (`gen_random_uuid()`, `random()`, `now()`,
//! which differs from one batch's transaction to the next). Compared that way, every row
//! would "still need" it after the walk, a second pass would multiply again, and a third.
//! Such a backfill runs [`Mode::Once`]: one walk, each row in it updated once, the cursor
//! committed with each batch so a resume never repeats one, and no proof by counting (there
//! is nothing to count).

use pgshift_db::DbError;
use pgshift_sql::ident::display_ident;
use pgshift_sql::update::reads_what_it_writes;
use tokio_postgres::Client;

use super::BackfillSpec;

/// Stable functions (the same value within a statement) whose value changes from one
/// transaction to the next, as each batch is: the clock and the transaction's own id.
/// Volatile ones need no list: the server says which those are.
const PER_TRANSACTION: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "age",
    "mxid_age",
    "txid_current",
    "txid_current_if_assigned",
    "txid_current_snapshot",
    "pg_current_xact_id",
    "pg_current_xact_id_if_assigned",
    "pg_current_snapshot",
];

/// How a backfill tells which rows to update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Rows whose columns differ from what the SET gives: batches skip the rest, the walk
    /// repeats while rows are left (up to `max_passes`), and the end is proved by counting.
    StillNeeded,
    /// One walk over the rows in scope (the user's WHERE), each updated once.
    Once {
        /// Why, in words: "its SET reads a column it writes (amount = amount * 100)".
        why: String,
    },
}

impl Mode {
    /// Why the backfill runs once; `None` when it updates what still needs it.
    pub fn once(&self) -> Option<&str> {
        match self {
            Mode::StillNeeded => None,
            Mode::Once { why } => Some(why),
        }
    }
}

/// What running once means, for people; `why` as [`Mode::Once`] holds it. One sentence, shown
/// by `pgshift backfill` (the summary, `--dry-run`, `status`) and in `pgshift up`'s log.
pub fn explain(why: &str) -> String {
    format!(
        "runs once over the rows in scope, each updated exactly once, because {why}: a row that still needs the update cannot be told from one already updated. Rows the application inserts or changes meanwhile get the update only where the walk has not passed yet (never beyond its end, fixed at the start), and the end is not proved by counting"
    )
}

/// Reads the SET expressions (and, for the functions they call, the server's catalog).
pub async fn decide(client: &Client, spec: &BackfillSpec) -> Result<Mode, DbError> {
    let once = |why: String| Ok(Mode::Once { why });
    if let Some(a) = reads_what_it_writes(&spec.assignments) {
        return once(format!(
            "its SET reads a column it writes ({} = {})",
            display_ident(&a.column),
            a.expression
        ));
    }
    for a in &spec.assignments {
        if let Some(clock) = a.reads.clock.first() {
            return once(format!(
                "its SET reads the clock ({clock}), which moves from one batch to the next"
            ));
        }
        for name in &a.reads.functions {
            let Some((function, schema)) = name.split_last() else {
                continue;
            };
            let schema = schema.last();
            let written = name.join(".");
            let in_catalog = schema.is_none_or(|s| s == "pg_catalog");
            if in_catalog && PER_TRANSACTION.contains(&function.as_str()) {
                return once(format!(
                    "its SET calls {written}(), which gives another value in each batch's transaction"
                ));
            }
            let row = client
                .query_one(
                    "SELECT count(*), coalesce(bool_or(p.provolatile = 'v'), false)
                       FROM pg_proc p
                      WHERE p.proname = $2
                        AND CASE WHEN $1::text IS NULL THEN pg_function_is_visible(p.oid)
                                 ELSE p.pronamespace = (SELECT n.oid FROM pg_namespace n
                                                         WHERE n.nspname = $1) END",
                    &[&schema, function],
                )
                .await?;
            let (found, volatile): (i64, bool) = (row.get(0), row.get(1));
            if found == 0 {
                return once(format!(
                    "its SET calls {written}(), which is not a function the server knows, so it may give another value on each call"
                ));
            }
            if volatile {
                return once(format!(
                    "its SET calls {written}(), which is volatile (another value on each call)"
                ));
            }
        }
    }
    Ok(Mode::StillNeeded)
}
