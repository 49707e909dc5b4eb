//! [`SchemaWatch`]: the schema snapshot of one database kept up to date by reading again only
//! what the DDL run since touched, so that a snapshot costs what changed rather than what
//! exists.
//!
//! Two event triggers (`ddl_command_end`, `sql_drop`) log the address of every object a DDL
//! command creates, alters, comments or drops into an unlogged table of [`WATCH_SCHEMA`], in
//! the command's own transaction: a rolled-back command leaves no entry, a committed one is
//! there for the next snapshot, whatever session ran it. A snapshot takes the entries, adds
//! the objects that depend on them (a view shows the names of the columns it reads, a
//! foreign key the name of the table it references, a default the name of its sequence), maps
//! each to its owner (see [`super::Owner`]: an index to its table, a composite type's relation
//! to the type) and reads those owners again; every other owner's objects are kept. A schema
//! or an extension touched means a full read.
//!
//! What event triggers do not see, a full read covers:
//! - the first snapshot, and every one when the triggers could not be installed (they need a
//!   superuser): then each snapshot is a full read, as [`Snapshot::take`] does;
//! - SQL that changes the catalog without a DDL command PostgreSQL reports (`REINDEX`, writes
//!   to `pg_catalog` tables): the caller asks with [`SchemaWatch::invalidate`], and
//!   [`unseen_by_event_triggers`] tells which SQL that is;
//! - a command that failed halfway outside a transaction (a `CREATE INDEX CONCURRENTLY` that
//!   leaves an invalid index behind): the caller invalidates after a failure.
//!
//! A transaction that is rolled back after snapshots were taken inside it (verify checks each
//! down that way) is bracketed with [`SchemaWatch::mark`] and [`SchemaWatch::rolled_back`]:
//! the owners read inside are read again after.
//!
//! Debug builds compare every snapshot read this way with a full read and fail on any
//! difference, so the whole test suite checks the bookkeeping.

use std::collections::{HashMap, HashSet};

use super::{read, Owner, ReadObject, SchemaObject, Snapshot};
use crate::{Connection, DbError};

/// The schema of the log table and its trigger function; never part of a snapshot.
pub const WATCH_SCHEMA: &str = "pgshift_watch";

const INSTALL: &str = "
DROP EVENT TRIGGER IF EXISTS pgshift_watch_ddl;
DROP EVENT TRIGGER IF EXISTS pgshift_watch_drop;
DROP SCHEMA IF EXISTS pgshift_watch CASCADE;
CREATE SCHEMA pgshift_watch;
CREATE UNLOGGED TABLE pgshift_watch.ddl (classid oid NOT NULL, objid oid NOT NULL);
CREATE FUNCTION pgshift_watch.log() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF TG_EVENT = 'sql_drop' THEN
        INSERT INTO pgshift_watch.ddl
        SELECT classid, objid FROM pg_event_trigger_dropped_objects() WHERE classid <> 0;
    ELSE
        INSERT INTO pgshift_watch.ddl
        SELECT classid, objid FROM pg_event_trigger_ddl_commands() WHERE classid <> 0;
    END IF;
END $$;
CREATE EVENT TRIGGER pgshift_watch_ddl ON ddl_command_end EXECUTE FUNCTION pgshift_watch.log();
CREATE EVENT TRIGGER pgshift_watch_drop ON sql_drop EXECUTE FUNCTION pgshift_watch.log();
-- Also under session_replication_role = replica, which a migration may set.
ALTER EVENT TRIGGER pgshift_watch_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER pgshift_watch_drop ENABLE ALWAYS;
";

const UNINSTALL: &str = "
DROP EVENT TRIGGER IF EXISTS pgshift_watch_ddl;
DROP EVENT TRIGGER IF EXISTS pgshift_watch_drop;
DROP SCHEMA IF EXISTS pgshift_watch CASCADE;
";

/// Takes the log's entries, with the objects that depend on them, each with its owner: `kind`
/// `r` (relation), `t` (type), `p` (function), `*` (a schema or an extension: read it all),
/// `-` (nothing a snapshot shows), or NULL when the object is gone or of another catalog.
/// A PL/pgSQL function, whose plan is kept from call to call, with `jit` off: the log table
/// has no statistics, and the planner's guess of its size makes the query look expensive
/// enough to compile (60 ms, for a query of 1 ms).
const TAKE_LOG: &str = "SELECT classid, objid, kind, owner FROM pgshift_watch.take()";

const TAKE_LOG_FUNCTION: &str = "
CREATE FUNCTION pgshift_watch.take()
    RETURNS TABLE (classid oid, objid oid, kind text, owner oid)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET jit = off AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH logged AS (DELETE FROM pgshift_watch.ddl RETURNING classid, objid),
touched AS (
    SELECT classid, objid FROM logged
    UNION
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
     WHERE (d.refclassid, d.refobjid) IN (SELECT classid, objid FROM logged)
)
SELECT t.classid, t.objid,
       CASE t.classid
           WHEN 1259 THEN (SELECT CASE WHEN c.relkind = 't' THEN '-' WHEN c.relkind = 'c' THEN 't' ELSE 'r' END
                             FROM pg_catalog.pg_class c WHERE c.oid = t.objid)
           WHEN 2606 THEN (SELECT CASE WHEN k.conrelid <> 0 THEN 'r' ELSE 't' END
                             FROM pg_catalog.pg_constraint k WHERE k.oid = t.objid)
           WHEN 2604 THEN (SELECT 'r' FROM pg_catalog.pg_attrdef d WHERE d.oid = t.objid)
           WHEN 2620 THEN (SELECT 'r' FROM pg_catalog.pg_trigger g WHERE g.oid = t.objid)
           WHEN 2618 THEN (SELECT 'r' FROM pg_catalog.pg_rewrite w WHERE w.oid = t.objid)
           -- A table's row type and an array type are no object of a snapshot.
           WHEN 1247 THEN (SELECT CASE WHEN y.typcategory = 'A'
                                        OR (y.typrelid <> 0 AND (SELECT c.relkind FROM pg_catalog.pg_class c
                                                                 WHERE c.oid = y.typrelid) <> 'c')
                                       THEN '-' ELSE 't' END
                             FROM pg_catalog.pg_type y WHERE y.oid = t.objid)
           WHEN 1255 THEN (SELECT 'p' FROM pg_catalog.pg_proc p WHERE p.oid = t.objid)
           WHEN 2615 THEN '*'
           WHEN 3079 THEN '*'
       END AS kind,
       CASE t.classid
           WHEN 1259 THEN (SELECT CASE WHEN c.relkind IN ('i', 'I')
                                       THEN (SELECT i.indrelid FROM pg_catalog.pg_index i WHERE i.indexrelid = c.oid)
                                       WHEN c.relkind = 'c' THEN c.reltype
                                       ELSE c.oid END
                             FROM pg_catalog.pg_class c WHERE c.oid = t.objid)
           WHEN 2606 THEN (SELECT CASE WHEN k.conrelid <> 0 THEN k.conrelid ELSE k.contypid END
                             FROM pg_catalog.pg_constraint k WHERE k.oid = t.objid)
           WHEN 2604 THEN (SELECT d.adrelid FROM pg_catalog.pg_attrdef d WHERE d.oid = t.objid)
           WHEN 2620 THEN (SELECT g.tgrelid FROM pg_catalog.pg_trigger g WHERE g.oid = t.objid)
           WHEN 2618 THEN (SELECT w.ev_class FROM pg_catalog.pg_rewrite w WHERE w.oid = t.objid)
           WHEN 1247 THEN t.objid
           WHEN 1255 THEN t.objid
       END AS owner
  FROM touched t;
END $$;
";

const CLEAR_LOG: &str = "DELETE FROM pgshift_watch.ddl";

/// What the last snapshot read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchCost {
    /// The whole schema was read.
    pub full: bool,
    /// Owners read again (relations, types, functions), when not in full.
    pub owners: usize,
}

/// One database's schema snapshot, kept up to date. See the [module docs](self).
pub struct SchemaWatch {
    /// The event triggers are installed; without them every snapshot is a full read.
    watching: bool,
    /// The schema as last read; `None` until the first read, and after an invalidation.
    state: Option<State>,
    /// Owners to read again at the next snapshot, besides what the log says.
    pending: HashSet<Owner>,
    /// Since [`SchemaWatch::mark`]: the owners read again, and whether a full read happened.
    marked: Option<(HashSet<Owner>, bool)>,
    last: WatchCost,
}

struct State {
    /// Schemas and extensions, which have no owner: a change to one is a full read.
    global: Vec<SchemaObject>,
    owned: HashMap<Owner, Entry>,
    /// The owner of every object with an address of its own, to place a dropped one.
    members: HashMap<(u32, u32), Owner>,
}

#[derive(Default)]
struct Entry {
    objects: Vec<SchemaObject>,
    addresses: Vec<(u32, u32)>,
}

impl SchemaWatch {
    /// Installs the event triggers in the database `conn` is connected to (as a superuser);
    /// without the privilege, a watch that reads every snapshot in full.
    pub async fn install(conn: &Connection) -> Result<SchemaWatch, DbError> {
        let watching = match conn
            .batch_execute(&format!("BEGIN;\n{INSTALL}\n{TAKE_LOG_FUNCTION}\nCOMMIT;"))
            .await
        {
            Ok(()) => true,
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
            {
                conn.batch_execute("ROLLBACK").await?;
                false
            }
            Err(e) => {
                let _ = conn.batch_execute("ROLLBACK").await;
                return Err(e.into());
            }
        };
        Ok(SchemaWatch {
            watching,
            state: None,
            pending: HashSet::new(),
            marked: None,
            last: WatchCost::default(),
        })
    }

    /// Removes the event triggers and their schema.
    pub async fn uninstall(&self, conn: &Connection) -> Result<(), DbError> {
        if self.watching {
            conn.batch_execute(UNINSTALL).await?;
        }
        Ok(())
    }

    /// Whether snapshots are read incrementally (the event triggers are installed).
    pub fn is_watching(&self) -> bool {
        self.watching
    }

    /// What the last snapshot read.
    pub fn last_cost(&self) -> WatchCost {
        self.last
    }

    /// The next snapshot reads everything.
    pub fn invalidate(&mut self) {
        self.state = None;
    }

    /// Starts counting what snapshots read, for [`SchemaWatch::rolled_back`].
    pub fn mark(&mut self) {
        self.marked = Some((HashSet::new(), false));
    }

    /// The transaction opened after [`SchemaWatch::mark`] was rolled back: what was read
    /// inside it is read again.
    pub fn rolled_back(&mut self) {
        if let Some((owners, full)) = self.marked.take() {
            if full {
                self.state = None;
            }
            self.pending.extend(owners);
        }
    }

    /// The schema now.
    pub async fn take(&mut self, conn: &Connection) -> Result<Snapshot, DbError> {
        let taken = self.take_or_fail(conn).await;
        if taken.is_err() {
            // The log may have been taken without the owners it named being read again.
            self.state = None;
        }
        taken
    }

    async fn take_or_fail(&mut self, conn: &Connection) -> Result<Snapshot, DbError> {
        let owners = match (&self.state, self.watching) {
            (Some(state), true) => self.touched(conn, state).await?,
            _ => None,
        };
        let snapshot = match owners {
            None => self.read_all(conn).await?,
            Some(owners) => self.read_again(conn, owners).await?,
        };
        if let Some((_, full)) = &mut self.marked {
            *full |= self.last.full;
        }
        #[cfg(debug_assertions)]
        if !self.last.full {
            let full = Snapshot::take(conn).await?;
            if full != snapshot {
                return Err(DbError::UnexpectedValue {
                    what: "an incremental schema snapshot, against a full read",
                    value: format!(
                        "{:?}",
                        Snapshot::diff(&full, &snapshot)
                            .iter()
                            .map(|d| d.describe("full read", "incremental"))
                            .collect::<Vec<_>>()
                    ),
                });
            }
        }
        Ok(snapshot)
    }

    /// The owners the log says were touched, or `None` for a full read.
    async fn touched(
        &self,
        conn: &Connection,
        state: &State,
    ) -> Result<Option<HashSet<Owner>>, DbError> {
        let mut owners = self.pending.clone();
        for row in conn.query_prepared(TAKE_LOG, &[], &[]).await? {
            let classid: u32 = row.try_get(0)?;
            let objid: u32 = row.try_get(1)?;
            let kind: Option<String> = row.try_get(2)?;
            let owner: Option<u32> = row.try_get(3)?;
            let found = match (kind.as_deref(), owner) {
                (Some("*"), _) => return Ok(None),
                (Some("-"), _) => None,
                (Some("r"), Some(oid)) => Some(Owner::Relation(oid)),
                (Some("t"), Some(oid)) => Some(Owner::Type(oid)),
                (Some("p"), Some(oid)) => Some(Owner::Function(oid)),
                // Gone (dropped, or created and dropped since the last snapshot), or of a
                // catalog no snapshot shows: its owner as last read, if it had one.
                _ => state.members.get(&(classid, objid)).copied(),
            };
            owners.extend(found);
        }
        Ok(Some(owners))
    }

    async fn read_all(&mut self, conn: &Connection) -> Result<Snapshot, DbError> {
        if self.watching {
            conn.query_prepared(CLEAR_LOG, &[], &[]).await?;
        }
        let rows = read(conn, None).await?;
        let mut state = State {
            global: Vec::new(),
            owned: HashMap::new(),
            members: HashMap::new(),
        };
        state.place(rows);
        self.pending.clear();
        self.last = WatchCost {
            full: true,
            owners: state.owned.len(),
        };
        let snapshot = state.snapshot();
        self.state = Some(state);
        Ok(snapshot)
    }

    async fn read_again(
        &mut self,
        conn: &Connection,
        owners: HashSet<Owner>,
    ) -> Result<Snapshot, DbError> {
        let Some(state) = &mut self.state else {
            return self.read_all(conn).await;
        };
        let list: Vec<Owner> = owners.iter().copied().collect();
        let rows = if list.is_empty() {
            Vec::new()
        } else {
            read(conn, Some(&list)).await?
        };
        for owner in &owners {
            if let Some(entry) = state.owned.remove(owner) {
                for address in entry.addresses {
                    state.members.remove(&address);
                }
            }
        }
        state.place(rows);
        self.pending.clear();
        if let Some((read, _)) = &mut self.marked {
            read.extend(owners.iter().copied());
        }
        self.last = WatchCost {
            full: false,
            owners: owners.len(),
        };
        Ok(state.snapshot())
    }
}

impl State {
    fn place(&mut self, rows: Vec<ReadObject>) {
        for row in rows {
            let Some(owner) = row.owner else {
                self.global.push(row.object);
                continue;
            };
            let entry = self.owned.entry(owner).or_default();
            if let Some(address) = row.address {
                entry.addresses.push(address);
                self.members.insert(address, owner);
            }
            // Every owner's own row (its table, view, sequence, type or function) carries
            // the owner's address, so a dropped owner is placed too.
            entry.objects.push(row.object);
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::from_objects(
            self.global
                .iter()
                .chain(self.owned.values().flat_map(|e| &e.objects))
                .cloned()
                .collect(),
        )
    }
}

/// SQL whose effect on the schema the event triggers may not report: `REINDEX` (it gives an
/// index a new OID, and PostgreSQL before 17 fires no event trigger for it) and anything that
/// names a system catalog (a direct write to `pg_attribute`, `pg_class`, ...). After running
/// such SQL, [`SchemaWatch::invalidate`].
pub fn unseen_by_event_triggers(sql: &str) -> bool {
    const CATALOGS: [&str; 15] = [
        "pg_class",
        "pg_attribute",
        "pg_attrdef",
        "pg_type",
        "pg_constraint",
        "pg_index",
        "pg_depend",
        "pg_description",
        "pg_proc",
        "pg_trigger",
        "pg_enum",
        "pg_namespace",
        "pg_rewrite",
        "pg_sequence",
        "pg_inherits",
    ];
    let lower = sql.to_ascii_lowercase();
    lower.contains("reindex") || CATALOGS.iter().any(|c| lower.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reindex_and_catalog_writes_are_unseen() {
        assert!(unseen_by_event_triggers(
            "REINDEX INDEX CONCURRENTLY users_email_idx;"
        ));
        assert!(unseen_by_event_triggers(
            "UPDATE pg_attribute SET atttypmod = 104 WHERE attrelid = 'users'::regclass;"
        ));
        assert!(!unseen_by_event_triggers(
            "ALTER TABLE users ADD COLUMN email text;\nCREATE INDEX users_email_idx ON users (email);"
        ));
    }
}
