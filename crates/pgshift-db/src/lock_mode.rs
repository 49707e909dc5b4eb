//! PostgreSQL's table-level lock modes and which of them conflict, as the server defines them
//! (`LockConflicts` in `src/backend/storage/lmgr/lock.c`, documented in "Explicit Locking",
//! table 13.2). Kept as a data table so that it can be checked against the documentation at
//! a glance.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A table-level lock mode, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockMode {
    /// `SELECT`.
    AccessShare,
    /// `SELECT ... FOR UPDATE/SHARE`.
    RowShare,
    /// `INSERT`, `UPDATE`, `DELETE`.
    RowExclusive,
    /// `VACUUM`, `ANALYZE`, `CREATE INDEX CONCURRENTLY`, `VALIDATE CONSTRAINT`, ...
    ShareUpdateExclusive,
    /// `CREATE INDEX`.
    Share,
    /// `CREATE TRIGGER`, some `ALTER TABLE` forms.
    ShareRowExclusive,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    Exclusive,
    /// Most `ALTER TABLE`, `DROP`, `TRUNCATE`, `VACUUM FULL`, `LOCK TABLE`.
    AccessExclusive,
}

use LockMode::*;

/// Every mode, in the order of the conflict table.
pub const ALL_LOCK_MODES: [LockMode; 8] = [
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
];

/// For each mode (same order as [`ALL_LOCK_MODES`]), the modes it conflicts with.
const CONFLICTS: [&[LockMode]; 8] = [
    /* AccessShare          */ &[AccessExclusive],
    /* RowShare             */ &[Exclusive, AccessExclusive],
    /* RowExclusive         */ &[Share, ShareRowExclusive, Exclusive, AccessExclusive],
    /* ShareUpdateExclusive */
    &[
        ShareUpdateExclusive,
        Share,
        ShareRowExclusive,
        Exclusive,
        AccessExclusive,
    ],
    /* Share                */
    &[
        RowExclusive,
        ShareUpdateExclusive,
        ShareRowExclusive,
        Exclusive,
        AccessExclusive,
    ],
    /* ShareRowExclusive    */
    &[
        RowExclusive,
        ShareUpdateExclusive,
        Share,
        ShareRowExclusive,
        Exclusive,
        AccessExclusive,
    ],
    /* Exclusive            */
    &[
        RowShare,
        RowExclusive,
        ShareUpdateExclusive,
        Share,
        ShareRowExclusive,
        Exclusive,
        AccessExclusive,
    ],
    /* AccessExclusive      */ &ALL_LOCK_MODES,
];

impl LockMode {
    fn index(self) -> usize {
        self as usize
    }

    /// The modes that cannot be held by another session at the same time as this one.
    pub fn conflicting_modes(self) -> &'static [LockMode] {
        CONFLICTS[self.index()]
    }

    /// True if a session holding `self` blocks one that wants `other` (the relation is
    /// symmetric).
    pub fn conflicts_with(self, other: LockMode) -> bool {
        self.conflicting_modes().contains(&other)
    }

    /// The name in `pg_locks.mode`, e.g. `AccessExclusiveLock`.
    pub fn pg_locks_name(self) -> &'static str {
        match self {
            AccessShare => "AccessShareLock",
            RowShare => "RowShareLock",
            RowExclusive => "RowExclusiveLock",
            ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            Share => "ShareLock",
            ShareRowExclusive => "ShareRowExclusiveLock",
            Exclusive => "ExclusiveLock",
            AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// The SQL spelling, e.g. `ACCESS EXCLUSIVE` (as in `LOCK TABLE t IN ... MODE`).
    pub fn sql_name(self) -> &'static str {
        match self {
            AccessShare => "ACCESS SHARE",
            RowShare => "ROW SHARE",
            RowExclusive => "ROW EXCLUSIVE",
            ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Share => "SHARE",
            ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Exclusive => "EXCLUSIVE",
            AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// Parses a `pg_locks.mode` value; `None` for modes that are not table-level
    /// (e.g. `SIReadLock`).
    pub fn from_pg_locks_name(name: &str) -> Option<LockMode> {
        ALL_LOCK_MODES
            .into_iter()
            .find(|mode| mode.pg_locks_name() == name)
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_table_is_symmetric() {
        for a in ALL_LOCK_MODES {
            for b in ALL_LOCK_MODES {
                assert_eq!(a.conflicts_with(b), b.conflicts_with(a), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn documented_examples_hold() {
        assert!(AccessExclusive.conflicts_with(AccessShare));
        assert!(!RowExclusive.conflicts_with(AccessShare));
        assert!(!RowExclusive.conflicts_with(RowExclusive));
        assert!(Share.conflicts_with(RowExclusive));
        assert!(!Share.conflicts_with(Share));
        assert!(ShareUpdateExclusive.conflicts_with(ShareUpdateExclusive));
        assert!(!ShareUpdateExclusive.conflicts_with(RowExclusive));
        assert_eq!(AccessShare.conflicting_modes(), &[AccessExclusive]);
        assert_eq!(AccessExclusive.conflicting_modes().len(), 8);
    }

    #[test]
    fn names_round_trip() {
        for mode in ALL_LOCK_MODES {
            assert_eq!(
                LockMode::from_pg_locks_name(mode.pg_locks_name()),
                Some(mode)
            );
        }
        assert_eq!(LockMode::from_pg_locks_name("SIReadLock"), None);
    }
}
