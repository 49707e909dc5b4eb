//! PostgreSQL's table-level lock modes and their conflict table, as in the documentation's
//! "Explicit Locking" chapter (13.3.1, "Table-Level Locks", Table 13.2).
//!
//! This is the vocabulary of `LOCK TABLE ... IN <mode> MODE` and of `pg_locks.mode`, shared by
//! every crate: the analyzer predicts lock levels, the database layer reads them from
//! `pg_locks`, the runner compares the two. One table, here.

use serde::{Deserialize, Serialize};

/// A table-level lock mode. Ordered by strength: a later variant conflicts with at least
/// everything an earlier one conflicts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockLevel {
    /// `SELECT`.
    AccessShare,
    /// `SELECT ... FOR UPDATE/SHARE`.
    RowShare,
    /// `INSERT`, `UPDATE`, `DELETE`, `MERGE`.
    RowExclusive,
    /// `VACUUM`, `ANALYZE`, `CREATE INDEX CONCURRENTLY`, `VALIDATE CONSTRAINT`, ...
    ShareUpdateExclusive,
    /// `CREATE INDEX` (without CONCURRENTLY).
    Share,
    /// `CREATE TRIGGER`, `ADD FOREIGN KEY`.
    ShareRowExclusive,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    Exclusive,
    /// Most `ALTER TABLE` forms, `DROP`, `TRUNCATE`, `VACUUM FULL`, `CLUSTER`, ...
    AccessExclusive,
}

/// Every lock level, weakest first.
pub const ALL_LOCK_LEVELS: [LockLevel; 8] = [
    LockLevel::AccessShare,
    LockLevel::RowShare,
    LockLevel::RowExclusive,
    LockLevel::ShareUpdateExclusive,
    LockLevel::Share,
    LockLevel::ShareRowExclusive,
    LockLevel::Exclusive,
    LockLevel::AccessExclusive,
];

impl LockLevel {
    /// The mode as `pg_locks.mode` shows it, e.g. `AccessExclusiveLock`.
    pub fn pg_name(self) -> &'static str {
        match self {
            LockLevel::AccessShare => "AccessShareLock",
            LockLevel::RowShare => "RowShareLock",
            LockLevel::RowExclusive => "RowExclusiveLock",
            LockLevel::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockLevel::Share => "ShareLock",
            LockLevel::ShareRowExclusive => "ShareRowExclusiveLock",
            LockLevel::Exclusive => "ExclusiveLock",
            LockLevel::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// The mode as `LOCK TABLE ... IN <mode> MODE` and the documentation write it.
    pub fn sql_name(self) -> &'static str {
        match self {
            LockLevel::AccessShare => "ACCESS SHARE",
            LockLevel::RowShare => "ROW SHARE",
            LockLevel::RowExclusive => "ROW EXCLUSIVE",
            LockLevel::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockLevel::Share => "SHARE",
            LockLevel::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockLevel::Exclusive => "EXCLUSIVE",
            LockLevel::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// The kebab-case name used in JSON and configuration (`access-exclusive`).
    pub fn kebab_name(self) -> &'static str {
        match self {
            LockLevel::AccessShare => "access-share",
            LockLevel::RowShare => "row-share",
            LockLevel::RowExclusive => "row-exclusive",
            LockLevel::ShareUpdateExclusive => "share-update-exclusive",
            LockLevel::Share => "share",
            LockLevel::ShareRowExclusive => "share-row-exclusive",
            LockLevel::Exclusive => "exclusive",
            LockLevel::AccessExclusive => "access-exclusive",
        }
    }

    /// Reads `AccessExclusiveLock` (pg_locks), `ACCESS EXCLUSIVE` (SQL) or `access-exclusive`.
    pub fn from_name(name: &str) -> Option<LockLevel> {
        let key: String = name
            .trim()
            .trim_end_matches("Lock")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let key = key.strip_suffix("mode").unwrap_or(&key);
        ALL_LOCK_LEVELS.into_iter().find(|l| {
            let mine: String = l.kebab_name().chars().filter(|c| *c != '-').collect();
            mine == key
        })
    }

    /// The bit of this mode in [`CONFLICTS`].
    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Whether a transaction requesting `self` must wait for one holding `other` (the
    /// relation is symmetric).
    pub fn conflicts_with(self, other: LockLevel) -> bool {
        CONFLICTS[self as usize] & other.bit() != 0
    }

    /// Every level that conflicts with this one, weakest first: the `pg_locks.mode`s a
    /// session requesting `self` would wait behind.
    pub fn conflicting_levels(self) -> impl Iterator<Item = LockLevel> {
        ALL_LOCK_LEVELS
            .into_iter()
            .filter(move |other| self.conflicts_with(*other))
    }

    /// Whether plain `SELECT`s wait behind this lock. Only ACCESS EXCLUSIVE blocks them.
    pub fn blocks_reads(self) -> bool {
        self.conflicts_with(LockLevel::AccessShare)
    }

    /// Whether `INSERT`/`UPDATE`/`DELETE` wait behind this lock (SHARE and stronger).
    pub fn blocks_writes(self) -> bool {
        self.conflicts_with(LockLevel::RowExclusive)
    }

    /// "reads and writes", "writes" or "other schema changes": what application traffic this
    /// lock blocks, for messages.
    pub fn blocks_description(self) -> &'static str {
        if self.blocks_reads() {
            "blocks all reads and writes"
        } else if self.blocks_writes() {
            "blocks all writes (INSERT, UPDATE, DELETE); reads continue"
        } else {
            "blocks other schema changes, VACUUM and ANALYZE; reads and writes continue"
        }
    }
}

impl std::fmt::Display for LockLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sql_name())
    }
}

const fn bits(levels: &[LockLevel]) -> u8 {
    let mut out = 0u8;
    let mut i = 0;
    while i < levels.len() {
        out |= 1 << (levels[i] as u8);
        i += 1;
    }
    out
}

use LockLevel::{
    AccessExclusive as AE, AccessShare as AS, Exclusive as EX, RowExclusive as RE, RowShare as RS,
    Share as SH, ShareRowExclusive as SRE, ShareUpdateExclusive as SUE,
};

/// Table 13.2 "Conflicting Lock Modes": for each requested mode (by index), the set of held
/// modes it conflicts with.
const CONFLICTS: [u8; 8] = [
    /* ACCESS SHARE           */ bits(&[AE]),
    /* ROW SHARE              */ bits(&[EX, AE]),
    /* ROW EXCLUSIVE          */ bits(&[SH, SRE, EX, AE]),
    /* SHARE UPDATE EXCLUSIVE */ bits(&[SUE, SH, SRE, EX, AE]),
    /* SHARE                  */ bits(&[RE, SUE, SRE, EX, AE]),
    /* SHARE ROW EXCLUSIVE    */ bits(&[RE, SUE, SH, SRE, EX, AE]),
    /* EXCLUSIVE              */ bits(&[RS, RE, SUE, SH, SRE, EX, AE]),
    /* ACCESS EXCLUSIVE       */ bits(&[AS, RS, RE, SUE, SH, SRE, EX, AE]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_table_is_symmetric() {
        for a in ALL_LOCK_LEVELS {
            for b in ALL_LOCK_LEVELS {
                assert_eq!(a.conflicts_with(b), b.conflicts_with(a), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn documented_conflicts() {
        assert!(
            !LockLevel::Share.conflicts_with(LockLevel::Share),
            "two CREATE INDEX can run together"
        );
        assert!(LockLevel::ShareUpdateExclusive.conflicts_with(LockLevel::ShareUpdateExclusive));
        assert!(!LockLevel::RowExclusive.conflicts_with(LockLevel::RowExclusive));
        assert!(LockLevel::Exclusive.conflicts_with(LockLevel::RowShare));
        assert!(!LockLevel::Exclusive.conflicts_with(LockLevel::AccessShare));
    }

    #[test]
    fn what_traffic_each_lock_blocks() {
        let blocks_reads: Vec<_> = ALL_LOCK_LEVELS
            .into_iter()
            .filter(|l| l.blocks_reads())
            .collect();
        assert_eq!(blocks_reads, vec![LockLevel::AccessExclusive]);
        let blocks_writes: Vec<_> = ALL_LOCK_LEVELS
            .into_iter()
            .filter(|l| l.blocks_writes())
            .collect();
        assert_eq!(blocks_writes, vec![SH, SRE, EX, AE]);
    }

    #[test]
    fn names_round_trip() {
        for l in ALL_LOCK_LEVELS {
            assert_eq!(LockLevel::from_name(l.pg_name()), Some(l));
            assert_eq!(LockLevel::from_name(l.sql_name()), Some(l));
            assert_eq!(LockLevel::from_name(l.kebab_name()), Some(l));
        }
        assert_eq!(LockLevel::from_name("SHARE MODE"), Some(LockLevel::Share));
        assert_eq!(LockLevel::from_name("nope"), None);
        assert_eq!(
            serde_json::to_string(&LockLevel::AccessExclusive)
                .ok()
                .as_deref(),
            Some("\"access-exclusive\"")
        );
    }
}
