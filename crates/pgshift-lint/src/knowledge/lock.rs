//! Lock levels and their conflicts. The table lives in `pgshift-sql` (`pgshift_sql::lock`),
//! shared with the database layer that reads `pg_locks`; the analyzer uses it from here.

pub use pgshift_sql::lock::{LockLevel, ALL_LOCK_LEVELS};
