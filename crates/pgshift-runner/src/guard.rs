//! The lock-queue guard: look before taking a strong lock.
//!
//! PostgreSQL grants locks in queue order. A DDL statement that waits for its ACCESS
//! EXCLUSIVE lock behind one long transaction makes every query that arrives after it wait
//! too, even plain `SELECT`s: the table is down until the long transaction ends. `lock_timeout`
//! bounds that to the timeout, and the runner retries; the guard avoids even that. Before a
//! unit that needs a lock blocking reads or writes (the effects [`crate::prepare`] found for
//! its steps, from the linter's knowledge), it first tries to take those locks `NOWAIT` with
//! the unit's `BEGIN` ([`lock_nowait`]): granted at once, nobody is in the way. Otherwise it
//! asks the catalog who holds (or waits for) a conflicting lock on the unit's tables, and while
//! someone does whose transaction is not brand new, it waits *outside* the lock queue,
//! reporting who is in the way. Then the unit runs with the normal `lock_timeout` and retry.
//! Tables created by an earlier migration of the same command are not looked at: no session
//! used them before it. The wait is bounded
//! (`guard_max_wait`); optionally (`guard_cancel_after`, off by default) the sessions in the
//! way are cancelled after a grace period.
//!
//! Sessions running a query in a transaction younger than `guard_ignore_younger_than` are
//! not waited for: they end well within `lock_timeout`, and on a busy table some are always
//! in flight. A session *idle* in its transaction is always waited for: it waits for its
//! client, for as long as the client likes.
//!
//! An autovacuum is not waited for either, unless it prevents transaction ID wraparound: it
//! gives way to any lock request (PostgreSQL cancels it once a request has waited
//! `deadlock_timeout`), and it may run for hours on a large table. When it is all that is in
//! the way, the guard cancels it (as a superuser, or a member of
//! `pg_signal_autovacuum_worker` on PostgreSQL 18+) and the unit runs; without that right the
//! unit runs anyway, and the server cancels the autovacuum for it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pgshift_db::{Connection, DbError, Session};
use pgshift_lint::LockLevel;
use pgshift_sql::ident::{quote_literal, QualifiedName};
use pgshift_sql::lines::contains_ignore_ascii_case;

use crate::event::{Event, Observer};
use crate::options::RunOptions;
use crate::units::{Makes, Unit};

/// How often the guard looks again while it waits.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How often a still-waiting guard repeats who it waits for.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// A table a unit locks with a lock that blocks application reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedTable {
    /// The name as SQL (quoted), for `to_regclass`.
    pub quoted: String,
    /// The name for people.
    pub display: String,
    pub lock: LockLevel,
    /// Looked at in `pg_locks`, never locked by the guard (see [`lock_nowait`]): a view, or a
    /// table an earlier statement of the unit creates `IF NOT EXISTS`, which may not be there
    /// for a `LOCK` when the unit begins, or may be, in use.
    pub pg_locks_only: bool,
    /// The first look asks whether it is a table before locking it: some statement of the
    /// unit that locks it could also succeed on a view (see [`lock_nowait`]).
    pub kind_checked: bool,
}

/// The tables a run made, which the guard does not look at: no session used them before it.
#[derive(Debug, Clone, Copy)]
pub enum MadeInRun<'a> {
    /// These, by exactly the name each was made under (a schema-less name may resolve to
    /// another schema's table than a qualified one: anything less certain is guarded).
    Named(&'a [QualifiedName]),
    /// Every table: the database held no table or view of the user's when the run started.
    All,
}

impl MadeInRun<'_> {
    fn contains(&self, table: &QualifiedName) -> bool {
        match self {
            MadeInRun::Named(names) => names.contains(table),
            MadeInRun::All => true,
        }
    }
}

/// The tables of `unit` that it locks strongly enough to block ordinary reads or writes, with
/// the strongest lock per table. Tables the run made are left out: the unit's `lock_timeout`
/// bounds any wait on them. So is a name an earlier statement of the unit brought into being
/// ([`Makes::Table`]): a table created in the unit, which nobody else sees before it commits,
/// or one renamed to it, which the rename locked under its old name (looked at as such).
/// Neither name is there when the unit begins, for a look to lock. A table created `IF NOT
/// EXISTS` ([`Makes::TableIfMissing`]) may have been there all along, in use: it is looked at
/// in `pg_locks`, where a name that is not there holds no lock.
pub fn guarded_tables(unit: &Unit, made: MadeInRun<'_>) -> Vec<GuardedTable> {
    let mut strongest: BTreeMap<String, GuardedTable> = BTreeMap::new();
    let mut introduced = Introduced::default();
    for step in &unit.steps {
        // The `CREATE TABLE IF NOT EXISTS` itself too: it may find the table there.
        if let Some(Makes::TableIfMissing(t)) = step.facts.makes.as_deref() {
            introduced.if_missing.push(t);
        }
        guard_step(step, made, &introduced, &mut strongest);
        if let Some(Makes::Table(t)) = step.facts.makes.as_deref() {
            introduced.tables.push(t);
        }
    }
    strongest.into_values().collect()
}

/// The table names earlier statements of a unit made (see [`guarded_tables`]).
#[derive(Default)]
struct Introduced<'a> {
    /// Created, or renamed to: not looked at.
    tables: Vec<&'a QualifiedName>,
    /// Created `IF NOT EXISTS`: looked at in `pg_locks`.
    if_missing: Vec<&'a QualifiedName>,
}

/// Adds the tables `step` locks to `strongest` (see [`guarded_tables`]).
fn guard_step(
    step: &crate::units::Step,
    made: MadeInRun<'_>,
    introduced: &Introduced<'_>,
    strongest: &mut BTreeMap<String, GuardedTable>,
) {
    for effect in step.facts.effects.iter() {
        if !effect.lock.blocks_writes()
            || effect.through_table
            || made.contains(&effect.table)
            || introduced.tables.contains(&&effect.table)
        {
            continue;
        }
        let entry = strongest
            .entry(effect.table.quoted())
            .or_insert_with(|| GuardedTable {
                quoted: effect.table.quoted(),
                display: effect.table.to_string(),
                lock: effect.lock,
                pg_locks_only: effect.view || introduced.if_missing.contains(&&effect.table),
                kind_checked: false,
            });
        entry.lock = entry.lock.max(effect.lock);
        entry.kind_checked |= !effect.fails_unless_table;
    }
}

/// The guard's first look, for a unit run in a transaction of its own: each of `tables` locked
/// with `LOCK TABLE ONLY ... IN <mode> MODE NOWAIT`, sent with the unit's `BEGIN`. A lock that
/// is granted at once means nobody was in the way (and the unit holds it from then on, as its
/// statements would); `NOWAIT` never joins the lock queue, so a lock that is not granted makes
/// the statement fail at once, without making anyone wait, and the guard then looks at who is
/// in the way as usual. Only ordinary and partitioned tables are locked this way. A `LOCK` on a
/// view would lock every table the view reads, in the same mode: a view (`DROP VIEW`) is
/// instead looked at in `pg_locks` in the same round trip, and any lock another session holds
/// or waits for on it fails the look (the statement then waits at most the lock timeout for
/// one taken in between, as after the guard's own look). A table's name that is not an
/// ordinary or partitioned table, or not there, fails the look too, and the guard looks as
/// usual (a view's name that is not a view is the statement's own error). What each table is,
/// is asked only when a statement of the unit that locks it could succeed on a view
/// ([`GuardedTable::kind_checked`]); otherwise a view's `LOCK`, granted only when its tables
/// are free, ends a moment later with the unit, which fails on it. `None` when
/// there is nothing to lock or the guard is off, or when it also waits for long transactions
/// (which hold no lock on the tables: only its query sees them), or when the unit changes
/// `search_path` (its names would resolve elsewhere before it does).
pub fn lock_nowait(
    unit: &Unit,
    tables: &[GuardedTable],
    options: &RunOptions,
) -> Option<FirstLook> {
    let moves_names = || {
        unit.steps
            .iter()
            .any(|s| contains_ignore_ascii_case(s.sql(), "search_path"))
    };
    if tables.is_empty()
        || options.guard_max_wait.is_zero()
        || !options.guard_long_transaction.is_zero()
        || moves_names()
    {
        return None;
    }
    // First, that every name is an ordinary or partitioned table, and every view a view nobody
    // else holds or waits for a lock on: when one is not (or is not there), the division
    // fails and the statements after it do not run. Plain SQL, evaluated when it runs (a
    // PL/pgSQL block would be compiled every time, and load PL/pgSQL first).
    let names = |pick: &dyn Fn(&GuardedTable) -> bool| -> Vec<String> {
        tables
            .iter()
            .filter(|t| pick(t))
            .map(|t| format!("to_regclass({})", quote_literal(&t.quoted)))
            .collect()
    };
    // A table whose every statement in the unit fails unless it is a table is not asked about:
    // were it a view, the `LOCK` (taken only if free) would hold the view's tables until that
    // statement fails and the unit rolls back, a moment later; anything else fails the `LOCK`.
    let plain = names(&|t| !t.pg_locks_only && t.kind_checked);
    let views = names(&|t| t.pg_locks_only);
    let mut checks: Vec<String> = Vec::new();
    // `pg_relation_is_publishable` is true of a permanent ordinary or partitioned table of the
    // user's, from the relation cache: a fifth of the server time of a look at `pg_class`, which
    // the planner costs on every unit. An unlogged or temporary table is not publishable but
    // has a file, which a view, a foreign table or a partitioned table has not (a sequence, an
    // index or a materialized view has one too: its `LOCK TABLE` then fails). NULL for a name
    // that is not there, whose `LOCK` then fails.
    checks.extend(plain.iter().map(|n| {
        format!(
            "(pg_catalog.pg_relation_is_publishable({n}) OR pg_catalog.pg_relation_filenode({n}) IS NOT NULL)"
        )
    }));
    if !views.is_empty() {
        // The lock table read directly (`pg_locks` is a view over it, planned at every unit:
        // a fifth of the time). Not narrowed to this database: a lock on another database's
        // relation of the same OID only sends the unit to the usual look, which reads this
        // database's alone. That the name is a view is the statement's own business (`DROP
        // VIEW` of anything else fails). A table the unit creates `IF NOT EXISTS` is looked at
        // the same way: a name that is not there holds no lock.
        checks.push(format!(
            "NOT EXISTS (SELECT FROM pg_catalog.pg_lock_status() l WHERE l.locktype = 'relation' \
               AND l.relation IN ({}) AND l.pid <> pg_catalog.pg_backend_pid())",
            views.join(", ")
        ));
    }
    let mut statements: Vec<String> = Vec::new();
    if !checks.is_empty() {
        statements.push(format!(
            "SELECT 1 / ({})::int AS pgshift_guard_all_tables",
            checks.join(" AND ")
        ));
    }
    statements.extend(tables.iter().filter(|t| !t.pg_locks_only).map(|t| {
        format!(
            "LOCK TABLE ONLY {} IN {} MODE NOWAIT",
            t.quoted,
            t.lock.sql_name()
        )
    }));
    Some(FirstLook {
        sql: statements.join("; "),
        statements: statements.len(),
    })
}

/// The guard's first look ([`lock_nowait`]): statements sent as a unit's transaction begins,
/// and how many they are (a unit sent whole tells by the count of statements that completed
/// whether the look or one of its own statements failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstLook {
    pub sql: String,
    pub statements: usize,
}

impl FirstLook {
    /// `select` (one statement) first, then this look.
    pub fn after(&self, select: String) -> FirstLook {
        FirstLook {
            sql: format!("{select}; {}", self.sql),
            statements: self.statements + 1,
        }
    }
}

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardOutcome {
    /// Nobody was in the way (after waiting this long).
    Clear { waited: Duration },
    /// Still blocked after `guard_max_wait`: the unit runs anyway, under `lock_timeout`.
    GaveUp { waited: Duration },
}

/// Waits until no session that matters holds or waits for a lock conflicting with what
/// `tables` need, or until `deadline`. Each look is one query for all of `tables`, on
/// `client`, the migrating session itself (which the query leaves out).
pub async fn wait_for_clear_path(
    client: &Connection,
    version: &str,
    tables: &[GuardedTable],
    options: &RunOptions,
    deadline: Instant,
    observer: &dyn Observer,
) -> Result<GuardOutcome, DbError> {
    let started = Instant::now();
    if tables.is_empty() || options.guard_max_wait.is_zero() {
        return Ok(GuardOutcome::Clear {
            waited: Duration::ZERO,
        });
    }
    let names: Vec<String> = tables.iter().map(|t| t.display.clone()).collect();
    let mut last_report: Option<(Instant, Vec<i32>)> = None;
    let mut cancelled = false;
    loop {
        let (in_the_way, autovacuums) = sessions_in_the_way(client, tables, options).await?;
        let waited = started.elapsed();
        if in_the_way.is_empty() {
            for s in &autovacuums {
                cancel_autovacuum(client, version, s, observer).await?;
            }
            if !waited.is_zero() && last_report.is_some() {
                observer.event(&Event::GuardClear {
                    version: version.to_string(),
                    waited,
                });
            }
            return Ok(GuardOutcome::Clear { waited });
        }
        if Instant::now() >= deadline {
            observer.event(&Event::GuardGaveUp {
                version: version.to_string(),
                waited,
            });
            return Ok(GuardOutcome::GaveUp { waited });
        }
        let pids: Vec<i32> = in_the_way.iter().map(|s| s.pid).collect();
        let report = match &last_report {
            None => true,
            Some((at, before)) => *before != pids || at.elapsed() >= REPORT_EVERY,
        };
        if report {
            observer.event(&Event::GuardWaiting {
                version: version.to_string(),
                tables: names.clone(),
                sessions: in_the_way.clone(),
                waited,
            });
            last_report = Some((Instant::now(), pids));
        }
        if !cancelled
            && !options.guard_cancel_after.is_zero()
            && waited >= options.guard_cancel_after
        {
            cancel(client, version, &in_the_way, observer).await?;
            cancelled = true;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The sessions to wait for, and the autovacuums in the way that give way to a lock request
/// (not waited for).
async fn sessions_in_the_way(
    client: &Connection,
    tables: &[GuardedTable],
    options: &RunOptions,
) -> Result<(Vec<Session>, Vec<Session>), DbError> {
    let wanted: Vec<(&str, LockLevel)> =
        tables.iter().map(|t| (t.quoted.as_str(), t.lock)).collect();
    let mut found: BTreeMap<i32, Session> = BTreeMap::new();
    let mut autovacuums: BTreeMap<i32, Session> = BTreeMap::new();
    for s in pgshift_db::sessions_in_the_way(client, &wanted).await? {
        if gives_way(&s) {
            autovacuums.entry(s.pid).or_insert(s);
            continue;
        }
        // A session idle in its transaction is waiting for its client, for as long as
        // the client likes: always wait for it. A young one running a query will
        // finish soon; the lock_timeout and retry cover the rest.
        let idle = s.state.starts_with("idle in transaction");
        let young = s
            .xact_age
            .is_none_or(|age| age < options.guard_ignore_younger_than);
        if idle || !young {
            found.entry(s.pid).or_insert(s);
        }
    }
    if !options.guard_long_transaction.is_zero() {
        for s in pgshift_db::long_transactions(client, options.guard_long_transaction).await? {
            found.entry(s.pid).or_insert(s);
        }
    }
    for pid in found.keys() {
        autovacuums.remove(pid);
    }
    let mut sessions: Vec<Session> = found.into_values().collect();
    sessions.sort_by_key(|s| std::cmp::Reverse(s.xact_age));
    Ok((sessions, autovacuums.into_values().collect()))
}

/// An autovacuum worker that is not preventing wraparound, by its query text
/// (`autovacuum: VACUUM public.t`; `... (to prevent wraparound)` otherwise). A text the role
/// may not see (`<insufficient privilege>`) is not taken for one: that session is waited for.
fn gives_way(s: &Session) -> bool {
    s.query.starts_with("autovacuum: ") && !s.query.trim_end().ends_with("(to prevent wraparound)")
}

/// Cancels an autovacuum in the way, if this role may (the query returns no row otherwise,
/// and never fails: the session may be inside the unit's transaction).
async fn cancel_autovacuum(
    client: &tokio_postgres::Client,
    version: &str,
    s: &Session,
    observer: &dyn Observer,
) -> Result<(), DbError> {
    let row = client
        .query_opt(
            "SELECT pg_cancel_backend($1)
              WHERE (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                 OR EXISTS (SELECT 1 FROM pg_roles r
                             WHERE r.rolname = 'pg_signal_autovacuum_worker'
                               AND pg_has_role(current_user, r.oid, 'MEMBER'))",
            &[&s.pid],
        )
        .await?;
    observer.event(&Event::GuardCancelled {
        version: version.to_string(),
        session: s.clone(),
        terminated: false,
        signalled: row.is_some_and(|r| r.get(0)),
    });
    Ok(())
}

/// Ends the sessions in the way: a running query is cancelled; a session idle in its
/// transaction is terminated, because a cancel request does nothing to a session that is not
/// running a query.
async fn cancel(
    client: &tokio_postgres::Client,
    version: &str,
    sessions: &[Session],
    observer: &dyn Observer,
) -> Result<(), DbError> {
    for s in sessions {
        let idle = s.state.starts_with("idle in transaction");
        let sql = if idle {
            "SELECT pg_terminate_backend($1)"
        } else {
            "SELECT pg_cancel_backend($1)"
        };
        let row = client.query_one(sql, &[&s.pid]).await?;
        let done: bool = row.try_get(0)?;
        observer.event(&Event::GuardCancelled {
            version: version.to_string(),
            session: s.clone(),
            terminated: idle,
            signalled: done,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgshift_lint::PgVersion;

    fn unit(sql: &str) -> Unit {
        let script = pgshift_source::from_text("m.sql", sql).up;
        let prepared = crate::prepare::prepare_offline("1", &script, true, PgVersion::new(15, 0))
            .expect("prepare");
        prepared.exec.units.into_iter().next().expect("one unit")
    }

    #[test]
    fn only_locks_that_block_traffic_are_guarded() {
        let got = guarded_tables(
            &unit("ALTER TABLE t ADD COLUMN a int; UPDATE v SET a = 1; CREATE INDEX j ON w (a);"),
            MadeInRun::Named(&[]),
        );
        let names: Vec<(&str, LockLevel)> =
            got.iter().map(|g| (g.display.as_str(), g.lock)).collect();
        assert_eq!(
            names,
            vec![("t", LockLevel::AccessExclusive), ("w", LockLevel::Share)]
        );
        assert_eq!(got[0].quoted, "\"t\"");
        let concurrent = guarded_tables(
            &unit("CREATE INDEX CONCURRENTLY i ON u (a);"),
            MadeInRun::Named(&[]),
        );
        assert!(concurrent.is_empty(), "{concurrent:?}");
    }

    #[test]
    fn only_an_autovacuum_against_wraparound_is_waited_for() {
        let session = |query: &str| Session {
            pid: 1,
            application_name: String::new(),
            user: String::new(),
            state: "active".into(),
            xact_age: Some(Duration::from_secs(60)),
            query: query.into(),
            lock: None,
        };
        assert!(gives_way(&session(
            "autovacuum: VACUUM ANALYZE public.items"
        )));
        assert!(!gives_way(&session(
            "autovacuum: VACUUM public.items (to prevent wraparound)"
        )));
        assert!(!gives_way(&session("<insufficient privilege>")));
        assert!(!gives_way(&session("VACUUM items")));
    }

    #[test]
    fn a_view_is_looked_at_in_pg_locks_never_locked() {
        let u = unit("DROP VIEW v; ALTER TABLE t ADD COLUMN a int;");
        let guarded = guarded_tables(&u, MadeInRun::Named(&[]));
        let views: Vec<(&str, bool)> = guarded
            .iter()
            .map(|g| (g.display.as_str(), g.pg_locks_only))
            .collect();
        assert_eq!(views, vec![("t", false), ("v", true)]);
        let look = lock_nowait(&u, &guarded, &RunOptions::default()).expect("a first look");
        // The check, and one LOCK: the view is not locked.
        assert_eq!(look.statements, 2);
        let sql = look.sql;
        assert!(
            sql.contains("LOCK TABLE ONLY \"t\" IN ACCESS EXCLUSIVE MODE NOWAIT"),
            "{sql}"
        );
        assert!(!sql.contains("LOCK TABLE ONLY \"v\""), "{sql}");
        assert!(sql.contains("pg_lock_status()"), "{sql}");
    }

    #[test]
    fn a_table_only_a_view_would_fail_on_is_locked_without_asking_what_it_is() {
        let look = |sql: &str| {
            let u = unit(sql);
            let guarded = guarded_tables(&u, MadeInRun::Named(&[]));
            lock_nowait(&u, &guarded, &RunOptions::default()).expect("a first look")
        };
        // Adding a column fails on a view: the look is the `LOCK` alone.
        let only_lock = look("ALTER TABLE t ADD COLUMN a int; CREATE INDEX i ON t (a);");
        assert_eq!(only_lock.statements, 1, "{}", only_lock.sql);
        assert!(
            only_lock.sql.starts_with("LOCK TABLE ONLY \"t\""),
            "{}",
            only_lock.sql
        );
        // Renaming a column, or a default, succeeds on a view: it is asked about first.
        for sql in [
            "ALTER TABLE t ADD COLUMN a int; ALTER TABLE t RENAME COLUMN b TO c;",
            "ALTER TABLE t ADD COLUMN a int, ALTER COLUMN b SET DEFAULT 1;",
        ] {
            let checked = look(sql);
            assert_eq!(checked.statements, 2, "{sql}: {}", checked.sql);
            assert!(
                checked
                    .sql
                    .contains("pg_relation_is_publishable(to_regclass('\"t\"'))"),
                "{}",
                checked.sql
            );
        }
        // Only the tables that need it are asked about.
        let mixed = look("ALTER TABLE t RENAME COLUMN b TO c; DROP TABLE u; TRUNCATE w;");
        assert_eq!(mixed.statements, 4, "{}", mixed.sql);
        assert!(mixed.sql.contains("to_regclass('\"t\"')"), "{}", mixed.sql);
        assert!(!mixed.sql.contains("to_regclass('\"u\"')"), "{}", mixed.sql);
        assert!(!mixed.sql.contains("to_regclass('\"w\"')"), "{}", mixed.sql);
    }

    #[test]
    fn the_strongest_lock_per_table_wins() {
        let got = guarded_tables(
            &unit("CREATE INDEX i ON t (a); ALTER TABLE t DROP COLUMN b;"),
            MadeInRun::Named(&[]),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].lock, LockLevel::AccessExclusive);
    }

    #[test]
    fn a_table_created_earlier_in_the_migration_is_not_guarded() {
        let got = guarded_tables(
            &unit("CREATE TABLE n (a int); CREATE INDEX ON n (a);"),
            MadeInRun::Named(&[]),
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn a_table_renamed_in_the_unit_is_looked_at_under_the_name_it_has_when_the_unit_begins() {
        let names = |sql: &str| -> Vec<(String, LockLevel)> {
            guarded_tables(&unit(sql), MadeInRun::Named(&[]))
                .into_iter()
                .map(|g| (g.display, g.lock))
                .collect()
        };
        // The new name is not there when the unit begins (a look locking it would fail); the
        // rename locks the table under its old name, which is looked at.
        assert_eq!(
            names("ALTER TABLE s RENAME TO a; ALTER TABLE a ADD COLUMN p int;"),
            vec![("s".to_string(), LockLevel::AccessExclusive)]
        );
        // Only after the rename: the name before it is another table.
        assert_eq!(
            names("ALTER TABLE a ADD COLUMN p int; ALTER TABLE a RENAME TO b; ALTER TABLE s RENAME TO a; ALTER TABLE a ADD COLUMN q int;")
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>(),
            vec!["a", "s"]
        );
        // `IF EXISTS` may rename nothing: the name after it is looked at.
        assert_eq!(
            names("ALTER TABLE IF EXISTS s RENAME TO a; ALTER TABLE a ADD COLUMN p int;").len(),
            2
        );
    }

    #[test]
    fn a_table_created_if_not_exists_in_the_unit_is_looked_at_in_pg_locks() {
        // It may have been there all along, in use; or not be there yet for a `LOCK`.
        let u = unit("CREATE TABLE IF NOT EXISTS n (a int); ALTER TABLE n ADD COLUMN b int; ALTER TABLE t ADD COLUMN c int;");
        let guarded = guarded_tables(&u, MadeInRun::Named(&[]));
        let got: Vec<(&str, LockLevel, bool)> = guarded
            .iter()
            .map(|g| (g.display.as_str(), g.lock, g.pg_locks_only))
            .collect();
        assert_eq!(
            got,
            vec![
                ("n", LockLevel::AccessExclusive, true),
                ("t", LockLevel::AccessExclusive, false)
            ]
        );
        let sql = lock_nowait(&u, &guarded, &RunOptions::default())
            .expect("a first look")
            .sql;
        assert!(!sql.contains("LOCK TABLE ONLY \"n\""), "{sql}");
        assert!(
            sql.contains("l.relation IN (to_regclass('\"n\"'))"),
            "{sql}"
        );
        assert!(sql.contains("LOCK TABLE ONLY \"t\""), "{sql}");
    }

    #[test]
    fn a_table_created_earlier_in_the_run_is_not_guarded() {
        let altered =
            unit("ALTER TABLE n ADD COLUMN b int; ALTER TABLE public.o ADD COLUMN b int;");
        let new = [QualifiedName::new(None, "n")];
        let got = guarded_tables(&altered, MadeInRun::Named(&new));
        let names: Vec<&str> = got.iter().map(|g| g.display.as_str()).collect();
        assert_eq!(names, vec!["public.o"]);
        // The same name in another schema is another table; a name created without a schema
        // is not taken for a qualified one.
        let other = [
            QualifiedName::new(Some("audit"), "o"),
            QualifiedName::new(None, "o"),
        ];
        assert_eq!(guarded_tables(&altered, MadeInRun::Named(&other)).len(), 2);
        // On a database that held no table of the user's when the run started, none is
        // looked at.
        assert!(guarded_tables(&altered, MadeInRun::All).is_empty());
    }
}
