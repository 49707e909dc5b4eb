//! `trace` against a real PostgreSQL: the lock modes PostgreSQL's documentation gives for
//! known statements ("Explicit Locking", 13.3.1, and the ALTER TABLE reference), rewrites,
//! the rolled-back mode, and — when `PGSHIFT_PG_BINS` lists other server binaries (see
//! `scripts/fetch-pg.sh`) — the version-dependent facts on each of those versions.

use std::path::Path;

use pgshift_db::testing::TestDb;
use pgshift_db::LockLevel;
use pgshift_runner::trace::{
    trace, trace_fresh_database, LockSource, StatementTrace, Target, TraceOptions, TraceReport,
};
use pgshift_source::{Format, MigrationSet};

/// Writes migrations `(name, sql)` as a pgshift directory (versions 1, 2, ... in order).
fn migrations(dir: &Path, files: &[(&str, &str)]) -> MigrationSet {
    for (i, (name, sql)) in files.iter().enumerate() {
        let path = dir.join(format!("2024010100{:04}_{name}.up.sql", i + 1));
        std::fs::write(path, sql).unwrap_or_else(|e| panic!("{e}"));
    }
    pgshift_source::load(dir, Some(Format::Pgshift)).unwrap_or_else(|e| panic!("{e}"))
}

const SETUP: &str = "
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int PRIMARY KEY, parent_id int, n int);
CREATE TABLE big (id int, flag boolean);
INSERT INTO big SELECT g, true FROM generate_series(1, 50000) g;
INSERT INTO parent VALUES (1);
INSERT INTO child VALUES (1, 1, 1);
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
";

/// (migration name, SQL, the table, the mode the documentation gives).
const KNOWN: &[(&str, &str, &str, LockLevel)] = &[
    ("create_index", "CREATE INDEX child_n_idx ON child (n);", "child", LockLevel::Share),
    ("add_column", "ALTER TABLE child ADD COLUMN note text;", "child", LockLevel::AccessExclusive),
    (
        "create_trigger",
        "CREATE TRIGGER child_noop BEFORE UPDATE ON child FOR EACH ROW EXECUTE FUNCTION noop();",
        "child",
        LockLevel::ShareRowExclusive,
    ),
    (
        "add_fk",
        "ALTER TABLE child ADD CONSTRAINT child_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID;",
        "child",
        LockLevel::ShareRowExclusive,
    ),
    (
        "validate_fk",
        "ALTER TABLE child VALIDATE CONSTRAINT child_parent_fk;",
        "child",
        LockLevel::ShareUpdateExclusive,
    ),
    ("change_type", "ALTER TABLE child ALTER COLUMN n TYPE bigint;", "child", LockLevel::AccessExclusive),
    ("lock_exclusive", "LOCK TABLE parent IN EXCLUSIVE MODE;", "parent", LockLevel::Exclusive),
    ("set_not_null", "ALTER TABLE big ALTER COLUMN id SET NOT NULL;", "big", LockLevel::AccessExclusive),
    ("analyze", "ANALYZE big;", "big", LockLevel::ShareUpdateExclusive),
    ("truncate", "TRUNCATE child;", "child", LockLevel::AccessExclusive),
    // REINDEX (Notes): "locks out writes but not reads of the index's parent table. It also
    // takes an ACCESS EXCLUSIVE lock on the specific index being processed".
    ("reindex_table", "REINDEX TABLE big;", "big", LockLevel::Share),
    ("reindex_index", "REINDEX INDEX child_n_idx;", "child_n_idx", LockLevel::AccessExclusive),
];

fn only_statement<'r>(report: &'r TraceReport, name: &str) -> &'r StatementTrace {
    let m = report
        .migrations
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no migration {name} in {report:#?}"));
    assert_eq!(m.statements.len(), 1, "{m:#?}");
    &m.statements[0]
}

fn took(s: &StatementTrace, table: &str, mode: LockLevel) -> bool {
    s.locks
        .iter()
        .any(|l| l.relation.name == table && l.mode == mode)
}

#[tokio::test]
async fn known_statements_take_the_documented_locks() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut files = vec![("setup", SETUP)];
    files.extend(KNOWN.iter().map(|(name, sql, _, _)| (*name, *sql)));
    let set = migrations(dir.path(), &files);
    let db = TestDb::new().await;
    let report = trace_fresh_database(&db.url(), "test database", &set, &TraceOptions::throwaway())
        .await
        .unwrap_or_else(|e| panic!("trace: {e}"));
    assert!(report.error().is_none(), "{report:#?}");

    for (name, sql, table, mode) in KNOWN {
        let s = only_statement(&report, name);
        assert_eq!(s.lock_source, LockSource::AfterStatement);
        assert!(
            took(s, table, *mode),
            "{sql}: expected {mode} on {table}, saw {:#?}",
            s.locks
        );
    }
    // A foreign key locks both tables.
    let fk = only_statement(&report, "add_fk");
    assert!(
        took(fk, "parent", LockLevel::ShareRowExclusive),
        "{:#?}",
        fk.locks
    );
    // REINDEX INDEX also blocks writes to the index's table.
    let reindex = only_statement(&report, "reindex_index");
    assert!(
        took(reindex, "child", LockLevel::Share),
        "{:#?}",
        reindex.locks
    );
    // int → bigint rewrites the table; adding a nullable column does not.
    let rewritten = &only_statement(&report, "change_type").rewritten;
    assert!(
        rewritten.iter().any(|r| r == "table child"),
        "{rewritten:?}"
    );
    assert!(only_statement(&report, "add_column").rewritten.is_empty());
    // SET NOT NULL without a CHECK reads the whole table to look for NULLs.
    assert_eq!(only_statement(&report, "set_not_null").scanned, vec!["big"]);
    // The setup's own tables were created in its migration: nothing is reported for them.
    let setup = &report.migrations[0];
    assert!(
        setup.statements.iter().all(|s| s.locks.is_empty()),
        "{setup:#?}"
    );
    assert!(
        setup.statements[0]
            .created
            .iter()
            .any(|c| c == "table parent"),
        "{setup:#?}"
    );
    // Where our knowledge and the server disagree, the knowledge is wrong: every
    // disagreement fails the test unless it is in the reviewed list.
    assert_only_reviewed_disagreements(&report.disagreements(), "PostgreSQL (machine)");
}

/// Disagreements between the analyzer's prediction and what the server did that were looked
/// into and accepted, each with why (a substring of the disagreement's text). Empty today:
/// anything the trace finds is a defect of the knowledge tables until reviewed here.
const REVIEWED_DISAGREEMENTS: &[(&str, &str)] = &[];

fn assert_only_reviewed_disagreements(found: &[String], on: &str) {
    let unreviewed: Vec<&String> = found
        .iter()
        .filter(|d| {
            !REVIEWED_DISAGREEMENTS
                .iter()
                .any(|(text, _why)| d.contains(text))
        })
        .collect();
    assert!(
        unreviewed.is_empty(),
        "{on}: the analyzer's prediction and the server disagree; fix the knowledge (pgshift-lint/src/knowledge) or, after review, add to REVIEWED_DISAGREEMENTS with why:\n{unreviewed:#?}"
    );
}

/// The statements where the analyzer and the server used to disagree (issue 13), and the
/// false positives whose "no rewrite" the server confirms: each is traced, and what the
/// server did is asserted besides the absence of any disagreement.
#[tokio::test]
async fn comments_foreign_keys_defaults_and_retypes_agree_with_the_server() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let set = migrations(
        dir.path(),
        &[
            (
                "setup",
                "CREATE TABLE parent (id int PRIMARY KEY);
                 CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id), n int);
                 CREATE TABLE tree (id int PRIMARY KEY, up int);
                 CREATE TABLE gone (id int, parent_id int CONSTRAINT gone_parent_fk REFERENCES parent (id));
                 CREATE TABLE ev (id int, at timestamp, at_tz timestamptz, name text, label varchar(20));
                 CREATE UNIQUE INDEX ev_id_idx ON ev (id);
                 CREATE UNIQUE INDEX child_id_new ON child (id);
                 ALTER TABLE ev ADD CONSTRAINT ev_id_check CHECK (id > 0);
                 INSERT INTO parent SELECT g FROM generate_series(1, 1000) g;
                 INSERT INTO child SELECT g, g, g FROM generate_series(1, 1000) g;
                 INSERT INTO tree SELECT g, g FROM generate_series(1, 1000) g;
                 INSERT INTO ev SELECT g, now(), now(), 'n' || g, 'l' || g FROM generate_series(1, 1000) g;
                 CREATE FUNCTION next_code() RETURNS text LANGUAGE sql AS $$ SELECT md5(random()::text) $$;
                 CREATE FUNCTION tenant_default() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1';
                 CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
                 CREATE TRIGGER ev_noop BEFORE UPDATE ON ev FOR EACH ROW EXECUTE FUNCTION noop();
                 CREATE VIEW child_ns AS SELECT n FROM child;
                 CREATE TABLE stats (id int, a int);
                 INSERT INTO stats SELECT g, g FROM generate_series(1, 100) g;",
            ),
            // DROP TRIGGER takes ACCESS EXCLUSIVE on its table (coder/coder's 000194).
            ("drop_trigger", "DROP TRIGGER ev_noop ON ev;"),
            // A foreign key's check takes ROW SHARE on the referenced table: not a finding.
            ("insert_checked_by_fk", "INSERT INTO child VALUES (5000, 1, 1);"),
            // A view dropped and made again, then commented: the new view is the migration's
            // own; a table renamed, then updated under its new name (coder/coder's 000139 and
            // 000101).
            ("remake_view", "DROP VIEW child_ns;\nCREATE VIEW child_ns AS SELECT n, id FROM child;\nCOMMENT ON VIEW child_ns IS 'numbers';"),
            ("rename_then_update", "ALTER TABLE stats RENAME TO agent_stats;\nUPDATE agent_stats SET a = 1;"),
            // COMMENT ON: SHARE UPDATE EXCLUSIVE on the relation (the column's table); ACCESS
            // SHARE on the table of a constraint.
            ("comment_table", "COMMENT ON TABLE child IS 'children';"),
            ("comment_column", "COMMENT ON COLUMN child.n IS 'a number';"),
            ("comment_index", "COMMENT ON INDEX ev_id_idx IS 'by id';"),
            ("comment_constraint", "COMMENT ON CONSTRAINT ev_id_check ON ev IS 'positive';"),
            // A self-referencing foreign key: one table, the strongest of its two roles.
            ("self_fk", "ALTER TABLE tree ADD CONSTRAINT tree_up_fk FOREIGN KEY (up) REFERENCES tree (id) NOT VALID;"),
            ("validate_self_fk", "ALTER TABLE tree VALIDATE CONSTRAINT tree_up_fk;"),
            // Dropping a foreign key, or the table that has one, takes ACCESS EXCLUSIVE on the
            // referenced table too (the key's triggers there are dropped).
            ("drop_fk", "ALTER TABLE child DROP CONSTRAINT child_parent_id_fkey;"),
            ("drop_table_with_fk", "DROP TABLE gone;"),
            // A default through a user function: VOLATILE unless declared otherwise.
            ("default_volatile_fn", "ALTER TABLE ev ADD COLUMN code text DEFAULT next_code();"),
            ("default_stable_fn", "ALTER TABLE ev ADD COLUMN tenant int DEFAULT tenant_default();"),
            // timestamp <-> timestamptz keeps the files in a UTC session, not elsewhere.
            ("retype_in_utc", "SET timezone = 'UTC'; ALTER TABLE ev ALTER COLUMN at TYPE timestamptz;"),
            ("retype_in_paris", "SET timezone = 'Europe/Paris'; ALTER TABLE ev ALTER COLUMN at_tz TYPE timestamp;"),
            // An identity cast written with USING (Knex) keeps the files.
            ("retype_using_itself", "ALTER TABLE ev ALTER COLUMN name TYPE text USING (name::text);"),
            ("retype_using_relabel", "ALTER TABLE ev ALTER COLUMN label TYPE text USING label::text;"),
            // A primary key moved to a new index in one statement.
            ("swap_pkey", "ALTER TABLE child DROP CONSTRAINT child_pkey, ADD CONSTRAINT child_pkey PRIMARY KEY USING INDEX child_id_new;"),
        ],
    );
    let db = TestDb::new().await;
    let report = trace_fresh_database(&db.url(), "test database", &set, &TraceOptions::throwaway())
        .await
        .unwrap_or_else(|e| panic!("trace: {e}"));
    assert!(report.error().is_none(), "{report:#?}");
    let statement = |name: &str| -> &StatementTrace {
        let m = report
            .migrations
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no migration {name} in {report:#?}"));
        m.statements
            .last()
            .unwrap_or_else(|| panic!("{name}: no statement"))
    };
    for (name, table, mode) in [
        ("comment_table", "child", LockLevel::ShareUpdateExclusive),
        ("comment_column", "child", LockLevel::ShareUpdateExclusive),
        (
            "comment_index",
            "ev_id_idx",
            LockLevel::ShareUpdateExclusive,
        ),
        ("comment_constraint", "ev", LockLevel::AccessShare),
        ("validate_self_fk", "tree", LockLevel::ShareUpdateExclusive),
        ("drop_fk", "parent", LockLevel::AccessExclusive),
        ("drop_table_with_fk", "parent", LockLevel::AccessExclusive),
        ("drop_trigger", "ev", LockLevel::AccessExclusive),
        ("rename_then_update", "stats", LockLevel::RowExclusive),
    ] {
        let s = statement(name);
        assert!(
            took(s, table, mode),
            "{name}: expected {mode} on {table}, saw {:#?}",
            s.locks
        );
    }
    for (name, rewritten) in [
        ("default_volatile_fn", true),
        ("default_stable_fn", false),
        ("retype_in_utc", false),
        ("retype_in_paris", true),
        ("retype_using_itself", false),
        ("retype_using_relabel", false),
        ("swap_pkey", false),
    ] {
        let s = statement(name);
        assert_eq!(
            s.rewritten
                .iter()
                .any(|r| r == "table ev" || r == "table child"),
            rewritten,
            "{name}: {:?}",
            s.rewritten
        );
    }
    assert_only_reviewed_disagreements(&report.disagreements(), "PostgreSQL (machine)");
}

#[tokio::test]
async fn concurrently_is_traced_outside_a_transaction() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let set = migrations(
        dir.path(),
        &[
            (
                "setup",
                "CREATE TABLE big (id int); INSERT INTO big SELECT generate_series(1, 200000);",
            ),
            (
                "cic",
                "-- pgshift:no-transaction\nCREATE INDEX CONCURRENTLY big_id_idx ON big (id);",
            ),
        ],
    );
    let db = TestDb::new().await;
    let report = trace_fresh_database(&db.url(), "test database", &set, &TraceOptions::throwaway())
        .await
        .unwrap_or_else(|e| panic!("trace: {e}"));
    let s = only_statement(&report, "cic");
    assert_eq!(s.lock_source, LockSource::Sampled);
    assert!(!s.in_transaction);
    assert!(s.created.iter().any(|c| c == "index big_id_idx"), "{s:#?}");
    // Sampling sees the build's lock on a table this size (it takes tens of milliseconds).
    assert!(took(s, "big", LockLevel::ShareUpdateExclusive), "{s:#?}");
    assert!(!took(s, "big", LockLevel::Share), "{s:#?}");
}

#[tokio::test]
async fn on_a_database_everything_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let set = migrations(
        dir.path(),
        &[
            ("create", "CREATE TABLE widgets (id int);"),
            ("alter", "ALTER TABLE widgets ADD COLUMN name text;"),
            ("alter_existing", "ALTER TABLE gadgets ADD COLUMN name text;"),
            ("cic", "-- pgshift:no-transaction\nCREATE INDEX CONCURRENTLY widgets_id_idx ON widgets (id);"),
        ],
    );
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch_execute("CREATE TABLE gadgets (id int)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let options = TraceOptions {
        target: Target::Database {
            url: db.url(),
            commit: false,
        },
        ..TraceOptions::throwaway()
    };
    let report = trace(&set, &options)
        .await
        .unwrap_or_else(|e| panic!("trace: {e}"));
    assert!(!report.committed);
    assert!(report.error().is_none(), "{report:#?}");
    // gadgets existed before the trace: its lock is reported.
    assert!(
        took(
            only_statement(&report, "alter_existing"),
            "gadgets",
            LockLevel::AccessExclusive
        ),
        "{report:#?}"
    );
    // widgets was created earlier in the same (single) transaction, which already holds
    // ACCESS EXCLUSIVE on it: nothing new is taken, and that agrees with the prediction.
    let alter = only_statement(&report, "alter");
    assert!(
        alter
            .predicted
            .iter()
            .any(|p| p.relation == "widgets" && p.mode == LockLevel::AccessExclusive),
        "{alter:#?}"
    );
    assert!(alter.disagreements.is_empty(), "{alter:#?}");
    let cic = report
        .migrations
        .iter()
        .find(|m| m.name == "cic")
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert!(cic.statements.is_empty());
    assert!(
        cic.notes
            .iter()
            .any(|n| n.contains("cannot run inside the rolled-back trace transaction")),
        "{cic:#?}"
    );
    let exists: Option<String> = conn
        .query_one("SELECT to_regclass('widgets')::text", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(exists, None, "the trace left a table behind");
    conn.batch_execute("SELECT name FROM gadgets")
        .await
        .expect_err("the column added by the trace was rolled back");
}

#[tokio::test]
async fn version_dependent_facts_hold_on_every_listed_server() {
    let targets = pgshift_db::testing::listed_servers();
    if targets.len() == 1 {
        eprintln!("PGSHIFT_PG_BINS is not set: checking the default server only");
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let set = migrations(
        dir.path(),
        &[
            ("setup", "CREATE TABLE t (id int, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 10000) g;"),
            // 11+: a non-volatile default is stored in the catalog, no rewrite.
            ("default_now", "ALTER TABLE t ADD COLUMN created_at timestamptz DEFAULT now();"),
            // A volatile default still rewrites.
            ("default_random", "ALTER TABLE t ADD COLUMN r float8 DEFAULT random();"),
            ("check_not_null", "ALTER TABLE t ADD CONSTRAINT t_v_not_null CHECK (v IS NOT NULL) NOT VALID;"),
            ("validate", "ALTER TABLE t VALIDATE CONSTRAINT t_v_not_null;"),
            // 12+: the validated CHECK proves there are no NULLs; no scan.
            ("set_not_null", "ALTER TABLE t ALTER COLUMN v SET NOT NULL;"),
            ("widen", "ALTER TABLE t ALTER COLUMN id TYPE bigint;"),
        ],
    );
    for pg_bin in targets {
        let options = TraceOptions {
            target: Target::Throwaway {
                pg_bin: pg_bin.clone(),
                server: None,
            },
            ..TraceOptions::throwaway()
        };
        let report = trace(&set, &options)
            .await
            .unwrap_or_else(|e| panic!("trace on {pg_bin:?}: {e}"));
        let on = format!("PostgreSQL {} ({pg_bin:?})", report.server_version);
        assert!(report.error().is_none(), "{on}: {report:#?}");
        assert!(
            only_statement(&report, "default_now").rewritten.is_empty(),
            "{on}"
        );
        assert_eq!(
            only_statement(&report, "default_random").rewritten,
            vec!["table t"],
            "{on}"
        );
        assert_eq!(
            only_statement(&report, "validate").scanned,
            vec!["t"],
            "{on}"
        );
        assert!(
            only_statement(&report, "set_not_null").scanned.is_empty(),
            "{on}: SET NOT NULL scanned despite the validated CHECK"
        );
        assert_eq!(
            only_statement(&report, "widen").rewritten,
            vec!["table t"],
            "{on}"
        );
        assert_only_reviewed_disagreements(&report.disagreements(), &on);
    }
}

/// Tracing runs each migration with the session's own `search_path`, whatever an earlier one
/// set (a pg_dump baseline empties it), in a rolled-back trace and a committed one alike.
#[tokio::test]
async fn a_search_path_one_migration_sets_does_not_reach_the_next() {
    for commit in [false, true] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let set = migrations(
            dir.path(),
            &[
                (
                    "dump",
                    "SELECT pg_catalog.set_config('search_path', '', false);\nCREATE TABLE public.t (x int);",
                ),
                ("uses_t", "INSERT INTO t VALUES (1);"),
            ],
        );
        let db = TestDb::new().await;
        let options = TraceOptions {
            target: Target::Database {
                url: db.url(),
                commit,
            },
            ..TraceOptions::throwaway()
        };
        let report = trace(&set, &options)
            .await
            .unwrap_or_else(|e| panic!("trace: {e}"));
        let errors: Vec<&String> = report
            .migrations
            .iter()
            .filter_map(|m| m.error.as_ref())
            .collect();
        assert!(errors.is_empty(), "commit {commit}: {errors:?}");
        assert_eq!(report.migrations.len(), 2);
    }
}

/// The locks a statement on a partitioned table takes on each partition, and their rewrites,
/// are the partitioned table's prediction: `verify` on a project with partitioned tables is
/// not noise (a partition's lock stronger than that prediction is still a disagreement).
#[tokio::test]
async fn a_partitioned_tables_partitions_are_covered_by_its_prediction() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let set = migrations(
        dir.path(),
        &[
            ("add_column", "ALTER TABLE events ADD COLUMN note text;"),
            ("retype", "ALTER TABLE events ALTER COLUMN n TYPE bigint;"),
        ],
    );
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch_execute(
        "CREATE TABLE events (id int, k int, n int) PARTITION BY RANGE (k);
         CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (10);
         CREATE TABLE events_2 PARTITION OF events FOR VALUES FROM (10) TO (20) PARTITION BY RANGE (k);
         CREATE TABLE events_2a PARTITION OF events_2 FOR VALUES FROM (10) TO (20);
         CREATE INDEX ON events (n);
         INSERT INTO events SELECT g, g % 20, g FROM generate_series(1, 1000) g;",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let options = TraceOptions {
        target: Target::Database {
            url: db.url(),
            commit: false,
        },
        ..TraceOptions::throwaway()
    };
    let report = trace(&set, &options)
        .await
        .unwrap_or_else(|e| panic!("trace: {e}"));
    assert!(
        took(
            only_statement(&report, "add_column"),
            "events_2a",
            LockLevel::AccessExclusive
        ),
        "{report:#?}"
    );
    for name in ["add_column", "retype"] {
        let s = only_statement(&report, name);
        assert!(s.disagreements.is_empty(), "{name}: {:#?}", s.disagreements);
    }
}
