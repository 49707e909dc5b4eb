//! What pgshift knows about PostgreSQL, as data: lock levels and their conflicts, what each
//! statement locks, rewrites and scans, what in it breaks code running against the old
//! schema, which facts changed in which version, which type changes are binary-compatible and
//! which default expressions are volatile, and what `DROP ... CASCADE` can reach.
//!
//! Rules read these tables; they do not restate them.

pub mod cascade;
pub mod casts;
pub mod compat;
pub mod effects;
pub mod lock;
pub mod version;
pub mod volatility;
