//! `pgshift check`: the static safety analyzer for PostgreSQL migrations.
//!
//! Knowledge of PostgreSQL (which statement takes which lock, what rewrites or scans a table,
//! what changed in which version) is data in [`knowledge`]; rules read it. Findings
//! ([`finding`]) are what every renderer formats.

pub mod ahead;
pub mod check;
pub mod context;
pub mod finding;
pub mod knowledge;
pub mod registry;
pub mod render;
pub mod rewrite;
pub mod rules;
pub mod suppress;

pub use check::{
    check_file_in_set, check_file_in_set_each, check_in, check_in_as, check_script,
    check_script_as, check_set, check_set_each, check_stream, check_stream_each, CheckError,
    CheckOptions, ONLINE_RULES,
};
pub use context::{Context, Direction, SMALL_INDEX_PAGES};
pub use finding::{CheckedFile, Counts, Finding, Fix, Report, Severity};
pub use knowledge::compat::{breaking_changes, BreakingChange, BreakingKind};
pub use knowledge::effects::{statement_effects, Effect};
pub use knowledge::lock::LockLevel;
pub use knowledge::version::PgVersion;
pub use pgshift_sql::LineCol;
pub use registry::{find as find_rule, RULES};
pub use rewrite::{safe_rewrite, ExistingRows, SafeRewrite, Step};
pub use rules::Rule;
