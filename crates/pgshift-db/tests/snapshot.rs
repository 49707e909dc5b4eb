//! Schema snapshots and lock-tracing primitives against a real server.

use pgshift_db::snapshot::{Change, ObjectKind, SchemaWatch, Snapshot, WatchCost};
use pgshift_db::testing::TestDb;
use pgshift_db::trace::{relation_locks, relations, RelationChanges};
use pgshift_db::{Connection, LockLevel, RelationKind};

const SCHEMA: &str = r#"
CREATE EXTENSION citext;
CREATE SCHEMA billing;
COMMENT ON SCHEMA billing IS 'money';
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email citext NOT NULL,
    mood mood DEFAULT 'ok',
    visits positive,
    created_at timestamptz NOT NULL DEFAULT now(),
    email_lower text GENERATED ALWAYS AS (lower(email::text)) STORED
);
COMMENT ON COLUMN users.email IS 'login';
CREATE UNIQUE INDEX users_email_idx ON users (email);
CREATE TABLE billing.invoices (
    id serial PRIMARY KEY,
    user_id bigint NOT NULL,
    total numeric(12, 2) CHECK (total >= 0)
);
ALTER TABLE billing.invoices ADD CONSTRAINT invoices_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
CREATE VIEW happy_users AS SELECT id, email FROM users WHERE mood = 'happy';
CREATE MATERIALIZED VIEW invoice_totals AS SELECT user_id, sum(total) AS total FROM billing.invoices GROUP BY user_id;
CREATE SEQUENCE billing.ticket_seq START 100 INCREMENT 5;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created_at := now(); RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
CREATE SCHEMA pgshift;
CREATE TABLE pgshift.migrations (version text);
"#;

async fn db_with(sql: &str) -> (TestDb, Connection) {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (db, conn)
}

async fn snapshot(conn: &Connection) -> Snapshot {
    Snapshot::take(conn)
        .await
        .unwrap_or_else(|e| panic!("snapshot: {e}"))
}

fn attr<'s>(s: &'s Snapshot, kind: ObjectKind, name: &str, attribute: &str) -> Option<&'s str> {
    s.get(kind, name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:#?}", s.objects))
        .attributes
        .get(attribute)
        .map(String::as_str)
}

#[tokio::test]
async fn a_snapshot_describes_every_kind_of_object() {
    let (_db, conn) = db_with(SCHEMA).await;
    let s = snapshot(&conn).await;

    assert!(s.get(ObjectKind::Schema, "billing").is_some());
    assert_eq!(
        attr(&s, ObjectKind::Schema, "billing", "comment"),
        Some("money")
    );
    assert!(s.get(ObjectKind::Extension, "citext").is_some());
    assert_eq!(
        attr(&s, ObjectKind::Type, "mood", "labels"),
        Some("'sad', 'ok', 'happy'")
    );
    assert_eq!(
        attr(&s, ObjectKind::Type, "positive", "base type"),
        Some("integer")
    );
    assert_eq!(
        attr(&s, ObjectKind::Type, "pair", "attributes"),
        Some("a integer, b text")
    );

    assert_eq!(
        attr(&s, ObjectKind::Column, "users.email", "type"),
        Some("citext")
    );
    assert_eq!(
        attr(&s, ObjectKind::Column, "users.email", "nullability"),
        Some("NOT NULL")
    );
    assert_eq!(
        attr(&s, ObjectKind::Column, "users.email", "comment"),
        Some("login")
    );
    assert_eq!(
        attr(&s, ObjectKind::Column, "users.id", "identity"),
        Some("ALWAYS")
    );
    assert_eq!(
        attr(&s, ObjectKind::Column, "users.created_at", "default"),
        Some("now()")
    );
    assert_eq!(
        attr(&s, ObjectKind::Column, "users.email_lower", "generated"),
        Some("lower((email)::text)")
    );
    assert_eq!(
        attr(&s, ObjectKind::Column, "users.mood", "position"),
        Some("3")
    );
    assert_eq!(
        attr(&s, ObjectKind::Column, "billing.invoices.total", "type"),
        Some("numeric(12,2)")
    );

    assert_eq!(
        attr(
            &s,
            ObjectKind::Constraint,
            "billing.invoices.invoices_user_fk",
            "validity"
        ),
        Some("NOT VALID")
    );
    assert_eq!(
        attr(
            &s,
            ObjectKind::Constraint,
            "billing.invoices.invoices_user_fk",
            "definition"
        ),
        Some("FOREIGN KEY (user_id) REFERENCES users(id)")
    );
    assert_eq!(
        attr(&s, ObjectKind::Index, "users_email_idx", "definition"),
        Some("CREATE UNIQUE INDEX users_email_idx ON public.users USING btree (email)")
    );
    assert_eq!(
        attr(&s, ObjectKind::Index, "users_email_idx", "validity"),
        Some("valid")
    );
    assert!(attr(&s, ObjectKind::View, "happy_users", "definition")
        .is_some_and(|d| d.contains("'happy'")));
    assert!(s
        .get(ObjectKind::MaterializedView, "invoice_totals")
        .is_some());
    assert_eq!(
        attr(&s, ObjectKind::Sequence, "billing.ticket_seq", "start"),
        Some("100")
    );
    assert_eq!(
        attr(
            &s,
            ObjectKind::Sequence,
            "billing.invoices_id_seq",
            "owned by"
        ),
        Some("billing.invoices.id")
    );
    assert!(attr(&s, ObjectKind::Function, "touch()", "definition")
        .is_some_and(|d| d.contains("NEW.created_at")));
    assert!(
        attr(&s, ObjectKind::Trigger, "users.users_touch", "definition")
            .is_some_and(|d| d.contains("BEFORE UPDATE"))
    );

    // Excluded: pgshift's own schema, system schemas, and the extension's members.
    assert!(
        s.objects.iter().all(|o| !o.name.starts_with("pgshift")),
        "pgshift's schema leaked"
    );
    assert!(s.get(ObjectKind::Function, "citextin(cstring)").is_none());
    assert!(s.objects.iter().all(|o| !o.name.starts_with("pg_")));
}

#[tokio::test]
async fn the_same_schema_built_twice_gives_equal_snapshots() {
    let (_a, first) = db_with(SCHEMA).await;
    // The second database gets extra OIDs consumed first, and a column added and dropped: none
    // of that may show.
    let (_b, second) = db_with(&format!(
        "CREATE TABLE filler (x int); DROP TABLE filler; {SCHEMA}
         ALTER TABLE users ADD COLUMN tmp int; ALTER TABLE users DROP COLUMN tmp;"
    ))
    .await;
    let a = snapshot(&first).await;
    let b = snapshot(&second).await;
    let diff = Snapshot::diff(&a, &b);
    assert!(diff.is_empty(), "{diff:#?}");
    assert_eq!(
        a,
        snapshot(&first).await,
        "two snapshots of one database differ"
    );
    let json = serde_json::to_string(&a).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        json,
        serde_json::to_string(&b).unwrap_or_else(|e| panic!("{e}"))
    );
}

/// A watched snapshot after each change equals a full read, and reads again only the owners
/// the change touched (and those that show its names): renames seen through views, foreign
/// keys and defaults, drops of indexes and sequences, comments, types, functions, a change
/// made by another session, and a rolled-back transaction.
#[tokio::test]
async fn a_watched_snapshot_reads_again_only_what_ddl_touched_and_equals_a_full_read() {
    let (_db, conn) = db_with(SCHEMA).await;
    let other = _db.connect().await;
    let mut watch = SchemaWatch::install(&conn)
        .await
        .unwrap_or_else(|e| panic!("install: {e}"));
    assert!(
        watch.is_watching(),
        "the test database's user installs event triggers"
    );
    let first = watch.take(&conn).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(watch.last_cost().full);
    assert_eq!(first, snapshot(&conn).await);
    // No pgshift object shows: the watch's schema is excluded like pgshift's own.
    assert!(
        first.objects.iter().all(|o| !o.name.contains("pgshift")),
        "{first:#?}"
    );

    // (SQL, at most this many owners read again)
    let steps: &[(&str, usize)] = &[
        // Nothing changed: nothing read.
        ("SELECT 1", 0),
        ("CREATE TABLE audit (id bigint PRIMARY KEY, at timestamptz)", 1),
        ("CREATE INDEX audit_at_idx ON audit (at)", 1),
        ("COMMENT ON INDEX audit_at_idx IS 'by time'", 1),
        ("DROP INDEX audit_at_idx", 1),
        // The view shows the column's name; the index, the check and the sequence too.
        ("ALTER TABLE users RENAME COLUMN email TO login", 4),
        // The foreign key of billing.invoices shows the table's name.
        ("ALTER TABLE users RENAME TO members", 4),
        ("ALTER SEQUENCE billing.invoices_id_seq RENAME TO invoice_numbers", 2),
        ("ALTER TABLE billing.invoices ALTER COLUMN id DROP DEFAULT; DROP SEQUENCE billing.invoice_numbers", 3),
        // The type, the table using it, the view comparing with one of its values.
        ("ALTER TYPE mood ADD VALUE 'great'", 3),
        ("ALTER TYPE mood RENAME TO feeling", 3),
        ("CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$", 2),
        ("ALTER FUNCTION touch() RENAME TO touch_row", 2),
        ("ALTER TABLE billing.invoices DROP CONSTRAINT invoices_user_fk", 2),
        ("CREATE TRIGGER audit_touch BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION touch_row()", 2),
        ("DROP TRIGGER audit_touch ON audit", 1),
        ("ALTER TABLE audit ADD COLUMN note text DEFAULT 'none' NOT NULL", 1),
        ("ALTER TABLE audit DROP COLUMN note", 1),
        ("REFRESH MATERIALIZED VIEW invoice_totals", 1),
        ("DROP TABLE audit", 1),
        ("ALTER DOMAIN positive ADD CONSTRAINT small CHECK (VALUE < 1000)", 2),
        ("ALTER TYPE pair ADD ATTRIBUTE c date", 1),
        // A schema changes every name in it: a full read.
        ("ALTER SCHEMA billing RENAME TO accounts", usize::MAX),
    ];
    for (sql, most) in steps {
        conn.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let watched = watch
            .take(&conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let full = snapshot(&conn).await;
        assert_eq!(
            watched,
            full,
            "{sql}: {:#?}",
            Snapshot::diff(&full, &watched)
        );
        let cost = watch.last_cost();
        if *most == usize::MAX {
            assert!(cost.full, "{sql}: {cost:?}");
        } else {
            assert!(!cost.full && cost.owners <= *most, "{sql}: {cost:?}");
        }
    }

    // DDL committed by another session is seen.
    other
        .batch_execute("CREATE TABLE elsewhere (id int)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let watched = watch.take(&conn).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(watched.get(ObjectKind::Table, "elsewhere").is_some());
    assert_eq!(
        watch.last_cost(),
        WatchCost {
            full: false,
            owners: 1
        }
    );

    // Snapshots inside a transaction that is rolled back: what they read is read again.
    watch.mark();
    conn.batch_execute("BEGIN; DROP TABLE elsewhere; ALTER TABLE members ADD COLUMN tmp int")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let inside = watch.take(&conn).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(inside.get(ObjectKind::Table, "elsewhere").is_none());
    conn.batch_execute("ROLLBACK")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    watch.rolled_back();
    let after = watch.take(&conn).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after, watched);
    assert!(!watch.last_cost().full);

    // Removed again, nothing of the watch is left.
    watch
        .uninstall(&conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pgshift_db::testing::watch_leftovers(&conn).await, 0);
}

/// Without the privilege to create event triggers, the watch reads every snapshot in full,
/// and installing it changes nothing.
#[tokio::test]
async fn without_a_superuser_the_watch_reads_everything_every_time() {
    let (db, conn) = db_with(SCHEMA).await;
    let role = format!("pgshift_nosuper_{}", std::process::id());
    conn.batch_execute(&format!(
        "CREATE ROLE {role}; GRANT CREATE ON SCHEMA public TO {role}; SET ROLE {role}"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut watch = SchemaWatch::install(&conn)
        .await
        .unwrap_or_else(|e| panic!("install: {e}"));
    assert!(!watch.is_watching());
    watch.take(&conn).await.unwrap_or_else(|e| panic!("{e}"));
    conn.batch_execute("CREATE TABLE mine (id int)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = watch.take(&conn).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(s.get(ObjectKind::Table, "mine").is_some());
    assert!(watch.last_cost().full);
    conn.batch_execute(&format!(
        "RESET ROLE; DROP TABLE mine; REVOKE CREATE ON SCHEMA public FROM {role}; DROP ROLE {role}"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let schemas: i64 = conn
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshift_watch'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(schemas, 0);
    drop(db);
}

#[tokio::test]
async fn diffs_name_what_changed() {
    let (_db, conn) = db_with(SCHEMA).await;
    let before = snapshot(&conn).await;
    conn.batch_execute(
        "ALTER TABLE users ALTER COLUMN created_at TYPE timestamp;
         ALTER TABLE billing.invoices VALIDATE CONSTRAINT invoices_user_fk;
         DROP INDEX users_email_idx;
         ALTER TABLE users ADD CONSTRAINT users_email_idx UNIQUE (email);
         CREATE TABLE audit (id int, note text);
         ALTER TYPE mood ADD VALUE 'ecstatic';",
    )
    .await
    .unwrap_or_else(|e| panic!("{}", pgshift_db::DbError::from(e)));
    let after = snapshot(&conn).await;
    let described: Vec<String> = Snapshot::diff(&before, &after)
        .iter()
        .map(|d| d.describe("before", "after"))
        .collect();
    let expect = [
        "table audit: only after",
        "column users.created_at: type timestamp with time zone → timestamp without time zone",
        "constraint billing.invoices.invoices_user_fk: validity NOT VALID → valid",
        "constraint users.users_email_idx: only after",
        "type mood: labels 'sad', 'ok', 'happy' → 'sad', 'ok', 'happy', 'ecstatic'",
    ];
    for line in expect {
        assert!(
            described.iter().any(|d| d == line),
            "missing `{line}` in {described:#?}"
        );
    }
    // The index is the same (the constraint made one of the same name and definition), so
    // only the constraint shows.
    assert!(
        !described.iter().any(|d| d.starts_with("index ")),
        "{described:#?}"
    );
    // The new table's columns are not listed one by one.
    assert!(
        !described.iter().any(|d| d.starts_with("column audit.")),
        "{described:#?}"
    );
    let diff = Snapshot::diff(&before, &after);
    assert!(diff
        .iter()
        .any(|d| d.kind == ObjectKind::Table && d.change == Change::OnlyInSecond));
}

#[tokio::test]
async fn relation_locks_show_what_an_open_transaction_holds() {
    let (db, worker) = db_with("CREATE TABLE t (id int); CREATE INDEX t_id ON t (id);").await;
    let observer = db.connect().await;
    worker
        .batch_execute("BEGIN; CREATE INDEX t_id2 ON t (id); CREATE TABLE fresh (x int);")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let locks = relation_locks(&observer, worker.backend_pid())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let on_t: Vec<LockLevel> = locks
        .iter()
        .filter(|l| l.relation.as_ref().is_some_and(|r| r.name == "t"))
        .map(|l| l.mode)
        .collect();
    assert!(on_t.contains(&LockLevel::Share), "{locks:#?}");
    assert!(locks.iter().all(|l| l.granted));
    // The new table and index are invisible to the observer: their locks carry no name.
    assert!(
        locks
            .iter()
            .any(|l| l.relation.is_none() && l.mode == LockLevel::AccessExclusive),
        "{locks:#?}"
    );
    assert!(locks
        .iter()
        .filter_map(|l| l.kind)
        .all(|k| matches!(k, RelationKind::Table | RelationKind::Index)));
    worker
        .batch_execute("ROLLBACK")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let after = relation_locks(&observer, worker.backend_pid())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(after.is_empty(), "{after:#?}");
}

#[tokio::test]
async fn relations_tell_created_dropped_altered_and_rewritten() {
    let (_db, conn) = db_with(
        "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int); CREATE INDEX a_id ON a (id);",
    )
    .await;
    let before = relations(&conn).await.unwrap_or_else(|e| panic!("{e}"));
    conn.batch_execute(
        "BEGIN;
         ALTER TABLE a ALTER COLUMN id TYPE bigint;
         ALTER TABLE b ADD COLUMN note text;
         DROP TABLE c;
         CREATE TABLE d (id int);",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // Read inside the open transaction: the session sees its own changes.
    let after = relations(&conn).await.unwrap_or_else(|e| panic!("{e}"));
    let changes = RelationChanges::between(&before, &after);
    let names = |v: &[pgshift_db::trace::ChangedRelation]| {
        v.iter().map(|r| r.name.name.clone()).collect::<Vec<_>>()
    };
    assert!(
        names(&changes.rewritten).contains(&"a".to_string()),
        "{changes:#?}"
    );
    assert!(
        names(&changes.altered).contains(&"b".to_string()),
        "{changes:#?}"
    );
    assert!(
        !names(&changes.rewritten).contains(&"b".to_string()),
        "{changes:#?}"
    );
    assert!(
        names(&changes.dropped).contains(&"c".to_string()),
        "{changes:#?}"
    );
    assert!(
        names(&changes.created).contains(&"d".to_string()),
        "{changes:#?}"
    );
    conn.batch_execute("ROLLBACK")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
