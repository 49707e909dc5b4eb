//! `pgshift check`: the static safety analyzer for PostgreSQL migrations.
//!
//! Knowledge of PostgreSQL (which statement takes which lock, what rewrites or scans a table,
//! what changed in which version) is data in [`knowledge`]; rules read it. Findings
//! ([`finding`]) are what every renderer formats.

pub mod context;
pub mod finding;
pub mod ident;
pub mod knowledge;
pub mod render;

pub use finding::{CheckedFile, Counts, Finding, Fix, Report, Severity};
pub use knowledge::lock::LockLevel;
pub use pgshift_sql::LineCol;
