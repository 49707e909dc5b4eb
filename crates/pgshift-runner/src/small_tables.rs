//! A rewritten migration whose tables are small runs as written.
//!
//! The safe rewrites ([`crate::safe`]) exist because some statements work under a strong lock
//! for as long as their table is large: an index build blocks writes while it reads every row,
//! `SET NOT NULL` and a new constraint block reads and writes while they scan. On a table of a
//! few pages that work is short, and the rewrite's own cost is not: a `CONCURRENTLY` build's
//! two extra transactions and its wait for every older one, a `VALIDATE` in a transaction of
//! its own, the migration split out of its single transaction.
//!
//! So a migration the rewrites split is first tried as written, in one transaction, when:
//! - as written it is one transaction pgshift runs (no statement of its own needs to run
//!   outside one), with no backfill, `DO` block, `CALL` or top-level `SELECT` (user code,
//!   whose work no table size bounds), nor a `REINDEX INDEX` whose table is not known (it
//!   reads the whole table, and names the index alone);
//! - as its transaction begins, every relation its statements name (each table, index, view
//!   or sequence, in any clause) holds at most [`SMALL_TABLES_BYTES`] in all
//!   (`pg_table_size`: the rows, TOAST included, as the files are now, which is what an index
//!   build, a scan or a check reads; a relation that does not exist yet counts as empty), and
//!   none of them has partitions or inheritance children (its own size leaves theirs out);
//! - then the locks its statements take that block reads or writes are granted at once, taken
//!   `NOWAIT` (the lock-queue guard's first look: nobody is using those tables, and nobody
//!   waits behind the migration). The sizes are read first, holding no lock of the
//!   migration's yet; a transaction still writing to a table holds a lock the `NOWAIT` fails
//!   on.
//!
//! Otherwise nothing of that try stays (its transaction rolls back) and the rewritten form runs
//! as it always did. Not with `--exact` (nothing is rewritten), nor with the guard off, nor in
//! `verify` and `trace`, which prove the rewritten form production runs on large tables.

use pgshift_sql::ident::{quote_literal, QualifiedName};

use crate::units::Unit;

/// The most a migration's relations may hold in all for it to run as written: 1 MB, the bound
/// of a small index's drop ([`pgshift_lint::SMALL_INDEX_PAGES`] pages).
pub const SMALL_TABLES_BYTES: i64 = pgshift_lint::SMALL_INDEX_PAGES as i64 * 8192;

/// A rewritten migration as written, to run instead when its relations are small and free
/// (made by `crate::prepare`, which reads the statements).
#[derive(Debug, Clone)]
pub struct SmallForm {
    /// The migration as written: one transaction.
    pub unit: Unit,
    /// Every relation its statements name, whose sizes are read as its transaction begins.
    pub relations: Vec<QualifiedName>,
}

/// How the try as written ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmallTry {
    /// It ran and committed with its history record.
    Ran,
    /// Its relations hold more than [`SMALL_TABLES_BYTES`] (or one has children), or a lock
    /// was not granted at once: nothing of it ran.
    NotSmallOrBusy,
    /// A statement failed as written: nothing of it stayed.
    Failed,
}

impl SmallForm {
    /// The statement sent as its transaction begins, before the guard's `NOWAIT` locks: it
    /// fails (division by zero), and with it the transaction, when the relations hold more
    /// than [`SMALL_TABLES_BYTES`] or one has partitions or inheritance children.
    pub fn size_check(&self) -> String {
        let names: Vec<String> = self
            .relations
            .iter()
            .map(|r| format!("to_regclass({})", quote_literal(&r.quoted())))
            .collect();
        // A partitioned or inherited table's own size leaves out its children, which the
        // statements on it reach: one that has any is not taken for small.
        format!(
            "SELECT 1 / (coalesce(sum(pg_catalog.pg_table_size(r)), 0) <= {SMALL_TABLES_BYTES} \
               AND NOT coalesce(bool_or(EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent = r)), false))::int \
               AS pgshift_small_tables FROM unnest(ARRAY[{}]::regclass[]) r",
            names.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_check_sums_every_relation_and_counts_a_missing_one_as_empty() {
        let form = SmallForm {
            unit: Unit::new(true, false, Vec::new()),
            relations: vec![
                QualifiedName::parse("app.users").unwrap(),
                QualifiedName::parse("\"Odd\"").unwrap(),
            ],
        };
        let sql = form.size_check();
        assert!(
            sql.contains("to_regclass('\"app\".\"users\"'), to_regclass('\"Odd\"')"),
            "{sql}"
        );
        assert!(sql.contains("coalesce(sum("), "{sql}");
        assert!(sql.contains(&format!("<= {SMALL_TABLES_BYTES}")), "{sql}");
        assert!(sql.contains("pg_inherits"), "{sql}");
    }
}
