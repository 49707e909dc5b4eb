//! Lock-tracing primitives: what relation locks a session holds right now, and what happened
//! to the relations of a database between two moments (created, dropped, altered, rewritten).
//!
//! `pgshift trace` runs a migration statement by statement on one session and, after each
//! statement (while its transaction is still open, so nothing has been released), asks a
//! *second* session for the first one's rows in `pg_locks` ([`relation_locks`]). Before and
//! after each statement it reads [`relations`] on the migration's own session, because only
//! that session sees its uncommitted catalog changes; [`RelationChanges::between`] then tells
//! what the statement created, dropped, altered and rewrote. A rewrite is a new
//! `relfilenode` for the same OID (PostgreSQL wrote the table or index into new files);
//! "altered" means one of the catalog rows describing the relation (`pg_class`, its
//! `pg_attribute`, `pg_constraint`, `pg_trigger`, `pg_index` rows) is a new row version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;

use crate::catalog::RelationKind;
use crate::snapshot::PGSHIFT_SCHEMA;
use crate::{Connection, DbError};
use pgshift_sql::ident::QualifiedName;
use pgshift_sql::LockLevel;

/// One table-level lock a session holds (or waits for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLock {
    /// The relation's OID.
    pub oid: u32,
    /// The relation, when the observing session can see it. A relation created in the
    /// traced session's open transaction is invisible to others, so it is `None` here.
    pub relation: Option<QualifiedName>,
    /// The relation's kind, when visible.
    pub kind: Option<RelationKind>,
    pub mode: LockLevel,
    /// False while the lock is waited for.
    pub granted: bool,
}

/// The relation locks (`locktype = 'relation'`) that session `pid` holds or waits for in the
/// current database, outside the system schemas. Run it from another session than `pid`'s.
pub async fn relation_locks(conn: &Connection, pid: i32) -> Result<Vec<HeldLock>, DbError> {
    let rows = conn
        .query_prepared(
            "SELECT l.relation, n.nspname, c.relname, c.relkind::text, l.mode, l.granted
               FROM pg_locks l
               LEFT JOIN pg_class c ON c.oid = l.relation
               LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE l.pid = $1 AND l.locktype = 'relation'
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND (n.nspname IS NULL OR (n.nspname NOT IN ('pg_catalog', 'information_schema', $2)
                     AND n.nspname NOT LIKE 'pg\\_toast%'))
              ORDER BY l.relation, l.mode",
            &[Type::INT4, Type::TEXT],
            &[&pid, &PGSHIFT_SCHEMA],
        )
        .await?;
    let mut locks = Vec::with_capacity(rows.len());
    for row in rows {
        let mode_name: String = row.try_get(4)?;
        // Only the eight table-level modes can appear for locktype 'relation'; anything
        // else would be a server we do not understand, and is skipped rather than fatal.
        let Some(mode) = LockLevel::from_name(&mode_name) else {
            continue;
        };
        let schema: Option<String> = row.try_get(1)?;
        let name: Option<String> = row.try_get(2)?;
        let kind: Option<String> = row.try_get(3)?;
        locks.push(HeldLock {
            oid: row.try_get(0)?,
            relation: schema
                .zip(name)
                .map(|(s, n)| QualifiedName::qualified(s, n)),
            kind: kind.as_deref().and_then(RelationKind::from_relkind),
            mode,
            granted: row.try_get(5)?,
        });
    }
    Ok(locks)
}

/// What one relation looks like at a moment, for [`RelationChanges::between`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationState {
    pub name: QualifiedName,
    pub kind: RelationKind,
    /// `pg_class.relfilenode`: changes when the relation is rewritten into new files.
    pub filenode: u32,
    /// The row versions (`xmin`) of the catalog rows that describe the relation; changes when
    /// any of them is updated, added or removed.
    pub signature: String,
    /// A partition's partitioned table (or a partition index's partitioned index).
    #[serde(default)]
    pub parent: Option<u32>,
}

/// Every relation in the user schemas of the database, by OID, as the session `client` sees
/// it (its own uncommitted changes included).
pub async fn relations(conn: &Connection) -> Result<BTreeMap<u32, RelationState>, DbError> {
    // Prepared once per session: the trace reads this before and after every statement.
    let rows = conn
        .query_prepared(
            "SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relfilenode,
                    c.xmin::text
                    || '/' || coalesce((SELECT string_agg(a.xmin::text, ',' ORDER BY a.attnum)
                                          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0), '')
                    || '/' || coalesce((SELECT string_agg(k.xmin::text, ',' ORDER BY k.oid)
                                          FROM pg_constraint k WHERE k.conrelid = c.oid), '')
                    || '/' || coalesce((SELECT string_agg(t.xmin::text, ',' ORDER BY t.oid)
                                          FROM pg_trigger t WHERE t.tgrelid = c.oid), '')
                    || '/' || coalesce((SELECT string_agg(i.xmin::text, ',' ORDER BY i.indexrelid)
                                          FROM pg_index i WHERE i.indrelid = c.oid), '')
                    || '/' || coalesce((SELECT i.xmin::text FROM pg_index i WHERE i.indexrelid = c.oid), ''),
                    (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = c.oid AND c.relispartition LIMIT 1)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', $1)
                AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'",
            &[Type::TEXT],
            &[&PGSHIFT_SCHEMA],
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let kind: String = row.try_get(3)?;
        let Some(kind) = RelationKind::from_relkind(&kind) else {
            continue;
        };
        out.insert(
            row.try_get::<_, u32>(0)?,
            RelationState {
                name: QualifiedName::qualified(
                    row.try_get::<_, String>(1)?,
                    row.try_get::<_, String>(2)?,
                ),
                kind,
                filenode: row.try_get(4)?,
                signature: row.try_get(5)?,
                parent: row.try_get(6)?,
            },
        );
    }
    Ok(out)
}

/// How many sequential scans the session's current transaction has started on each user
/// table so far (`pg_stat_xact_user_tables.seq_scan`, by OID). Read before and after a
/// statement inside its transaction, the difference tells whether the statement read the
/// whole table (e.g. `SET NOT NULL` checking for NULLs).
pub async fn sequential_scans(conn: &Connection) -> Result<BTreeMap<u32, i64>, DbError> {
    let rows = conn
        .query_prepared(
            "SELECT relid, seq_scan FROM pg_stat_xact_user_tables WHERE seq_scan > 0",
            &[],
            &[],
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        out.insert(row.try_get::<_, u32>(0)?, row.try_get::<_, i64>(1)?);
    }
    Ok(out)
}

/// A relation named in a [`RelationChanges`] list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedRelation {
    pub oid: u32,
    pub name: QualifiedName,
    pub kind: RelationKind,
}

/// What happened to the relations of a database between two [`relations`] readings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationChanges {
    pub created: Vec<ChangedRelation>,
    pub dropped: Vec<ChangedRelation>,
    /// Same OID, different catalog rows (not counting those also rewritten).
    pub altered: Vec<ChangedRelation>,
    /// Same OID, new files: the table or index was rewritten. Relations without storage
    /// (views, partitioned tables) are never listed.
    pub rewritten: Vec<ChangedRelation>,
}

impl RelationChanges {
    /// Compares two readings. Pure; the lists are in OID order.
    pub fn between(
        before: &BTreeMap<u32, RelationState>,
        after: &BTreeMap<u32, RelationState>,
    ) -> RelationChanges {
        let named = |oid: u32, state: &RelationState| ChangedRelation {
            oid,
            name: state.name.clone(),
            kind: state.kind,
        };
        let mut changes = RelationChanges::default();
        for (oid, old) in before {
            match after.get(oid) {
                None => changes.dropped.push(named(*oid, old)),
                Some(new) => {
                    if old.filenode != new.filenode && old.filenode != 0 && new.filenode != 0 {
                        changes.rewritten.push(named(*oid, new));
                    } else if old.signature != new.signature || old.name != new.name {
                        changes.altered.push(named(*oid, new));
                    }
                }
            }
        }
        for (oid, new) in after {
            if !before.contains_key(oid) {
                changes.created.push(named(*oid, new));
            }
        }
        // By name, not by OID: OIDs come from a counter the whole cluster shares, so their
        // order depends on whatever else was created on the server before (another database,
        // another pgshift version), and the report would too.
        for list in [
            &mut changes.created,
            &mut changes.dropped,
            &mut changes.altered,
            &mut changes.rewritten,
        ] {
            list.sort_by(|a, b| a.name.cmp(&b.name).then(a.oid.cmp(&b.oid)));
        }
        changes
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.dropped.is_empty()
            && self.altered.is_empty()
            && self.rewritten.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str, filenode: u32, signature: &str) -> RelationState {
        RelationState {
            name: QualifiedName::qualified("public", name),
            kind: RelationKind::Table,
            filenode,
            signature: signature.to_string(),
            parent: None,
        }
    }

    #[test]
    fn changes_are_sorted_into_created_dropped_altered_rewritten() {
        let before: BTreeMap<u32, RelationState> = [
            (1, state("kept", 10, "a")),
            (2, state("gone", 20, "a")),
            (3, state("altered", 30, "a")),
            (4, state("rewritten", 40, "a")),
        ]
        .into();
        let after: BTreeMap<u32, RelationState> = [
            (1, state("kept", 10, "a")),
            (3, state("altered", 30, "b")),
            (4, state("rewritten", 41, "b")),
            (5, state("new", 50, "a")),
        ]
        .into();
        let c = RelationChanges::between(&before, &after);
        let names =
            |v: &[ChangedRelation]| v.iter().map(|r| r.name.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&c.created), vec!["new"]);
        assert_eq!(names(&c.dropped), vec!["gone"]);
        assert_eq!(names(&c.altered), vec!["altered"]);
        assert_eq!(names(&c.rewritten), vec!["rewritten"]);
        assert!(!c.is_empty());
        assert!(RelationChanges::between(&before, &before).is_empty());
    }

    #[test]
    fn changes_are_listed_by_name_whatever_their_oids() {
        let after: BTreeMap<u32, RelationState> = [
            (7, state("b_idx", 1, "a")),
            (9, state("a_idx", 2, "a")),
            (8, state("c_idx", 3, "a")),
        ]
        .into();
        let c = RelationChanges::between(&BTreeMap::new(), &after);
        let names: Vec<_> = c.created.iter().map(|r| r.name.name.as_str()).collect();
        assert_eq!(names, vec!["a_idx", "b_idx", "c_idx"]);
    }

    #[test]
    fn relations_without_storage_are_never_rewritten() {
        let before: BTreeMap<u32, RelationState> = [(1, state("v", 0, "a"))].into();
        let after: BTreeMap<u32, RelationState> = [(1, state("v", 0, "b"))].into();
        let c = RelationChanges::between(&before, &after);
        assert!(c.rewritten.is_empty());
        assert_eq!(c.altered.len(), 1);
    }

    #[test]
    fn every_relkind_letter_is_known() {
        for code in ["r", "p", "v", "m", "i", "I", "S", "f", "t", "c"] {
            assert!(RelationKind::from_relkind(code).is_some(), "{code}");
        }
        assert_eq!(RelationKind::from_relkind("x"), None);
    }
}
