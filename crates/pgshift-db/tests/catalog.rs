//! Catalog introspection against a real server: who would block a lock, table sizes, long
//! transactions, and the shared test databases themselves.

use std::time::Duration;

use pgshift_db::testing::TestDb;
use pgshift_db::{
    conflicting_sessions, connect, long_transactions, server_version_num, table_sizes, LockLevel,
    RelationKind, RowsSource,
};
use pgshift_sql::ident::QualifiedName;

async fn table_oid(conn: &pgshift_db::Connection, name: &QualifiedName) -> u32 {
    conn.query_one("SELECT to_regclass($1)::oid", &[&name.quoted()])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0)
}

#[tokio::test]
async fn conflicting_sessions_sees_a_holder_only_for_conflicting_modes() {
    let db = TestDb::new().await;
    let me = db.connect().await;
    me.batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let oid = table_oid(&me, &QualifiedName::unqualified("t")).await;

    let holder = connect(
        &db.url()
            .with_param("application_name", "report-job")
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let blockers = conflicting_sessions(&me, &[oid], LockLevel::AccessExclusive)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(blockers.len(), 1, "{blockers:?}");
    let blocker = &blockers[0];
    assert_eq!(blocker.pid, holder.backend_pid());
    assert_eq!(blocker.application_name, "report-job");
    assert_eq!(blocker.state, "idle in transaction");
    assert!(blocker.xact_age.is_some());
    assert!(blocker.query.contains("LOCK TABLE t"), "{}", blocker.query);
    let lock = blocker.lock.as_ref().unwrap_or_else(|| panic!("no lock"));
    assert_eq!(
        (lock.table_oid, lock.mode, lock.granted),
        (oid, LockLevel::AccessShare, true)
    );

    let none = conflicting_sessions(&me, &[oid], LockLevel::RowExclusive)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_empty(), "{none:?}");

    // A session queued for ACCESS EXCLUSIVE conflicts even with a plain SELECT's lock.
    let waiter = db.connect().await;
    let waiter_pid = waiter.backend_pid();
    let cancel = waiter.cancel_token();
    let queued = tokio::spawn(async move {
        waiter
            .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            .await
    });
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = conflicting_sessions(&me, &[oid], LockLevel::AccessShare)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].pid, waiter_pid);
    let lock = seen[0].lock.as_ref().unwrap_or_else(|| panic!("no lock"));
    assert_eq!(
        (lock.mode, lock.granted),
        (LockLevel::AccessExclusive, false)
    );
    cancel.cancel().await.unwrap_or_else(|e| panic!("{e}"));
    let result = queued.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        result.is_err(),
        "the queued LOCK should have been cancelled"
    );

    // Other tables are not reported.
    me.batch_execute("CREATE TABLE other (id int)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let other = table_oid(&me, &QualifiedName::unqualified("other")).await;
    let none = conflicting_sessions(&me, &[other], LockLevel::AccessExclusive)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn long_transactions_lists_old_open_transactions_only() {
    let db = TestDb::new().await;
    let me = db.connect().await;
    let old = db.connect().await;
    old.batch_execute("BEGIN; SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _idle = db.connect().await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let sessions = long_transactions(&me, Duration::from_millis(200))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pids: Vec<i32> = sessions.iter().map(|s| s.pid).collect();
    assert_eq!(pids, vec![old.backend_pid()], "{sessions:?}");
    assert!(sessions[0]
        .xact_age
        .is_some_and(|age| age >= Duration::from_millis(300)));
    assert!(sessions[0].lock.is_none());

    let none = long_transactions(&me, Duration::from_secs(3600))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn table_sizes_use_statistics_and_fall_back_to_a_bounded_count() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch_execute(
        "CREATE SCHEMA app;
         CREATE TABLE app.big (id int PRIMARY KEY, payload text);
         INSERT INTO app.big SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g;
         ANALYZE app.big;
         CREATE TABLE fresh (id int);
         INSERT INTO fresh SELECT generate_series(1, 5);
         CREATE TABLE \"a\"\"b; drop table x\" (id int);
         CREATE TABLE parted (id int) PARTITION BY RANGE (id);
         CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
         CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200);
         INSERT INTO parted SELECT generate_series(0, 149);
         ANALYZE parted;
         CREATE VIEW v AS SELECT 1 AS one;",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let names = [
        QualifiedName::qualified("app", "big"),
        QualifiedName::unqualified("fresh"),
        QualifiedName::unqualified("missing"),
        QualifiedName::unqualified("a\"b; drop table x"),
        QualifiedName::unqualified("parted"),
        QualifiedName::unqualified("v"),
    ];
    let sizes = table_sizes(&conn, &names)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let found: Vec<String> = sizes.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(
        found,
        vec![
            "app.big",
            "public.fresh",
            // Display is for people: a part that is not a plain lower-case name is quoted, so
            // the dot and the quote inside it cannot be misread.
            "public.\"a\"\"b; drop table x\"",
            "public.parted",
            "public.v"
        ]
    );

    let big = &sizes[0];
    assert_eq!(big.rows_estimate, 10_000);
    assert_eq!(big.rows_source, RowsSource::Statistics);
    assert_eq!(big.kind, RelationKind::Table);
    // 10k rows of ~130 bytes plus the primary key index: well over a megabyte.
    assert!(big.total_bytes > 1_000_000, "{}", big.total_bytes);
    assert_eq!(big.oid, table_oid(&conn, &big.name).await);

    let fresh = &sizes[1];
    assert_eq!(
        (fresh.rows_estimate, fresh.rows_source),
        (5, RowsSource::Counted)
    );

    let odd = &sizes[2];
    assert_eq!(
        (odd.rows_estimate, odd.rows_source),
        (0, RowsSource::Counted)
    );

    let parted = &sizes[3];
    assert_eq!(parted.kind, RelationKind::PartitionedTable);
    assert_eq!(
        (parted.rows_estimate, parted.rows_source),
        (150, RowsSource::Statistics)
    );
    assert!(parted.total_bytes > 0);

    let view = &sizes[4];
    assert_eq!(view.kind, RelationKind::View);
    assert_eq!(
        (view.rows_estimate, view.rows_source),
        (-1, RowsSource::Unknown)
    );

    // The odd name was quoted, not executed: "x" was never a table to drop, and "fresh"
    // still exists.
    let still_there = table_sizes(&conn, &[QualifiedName::unqualified("fresh")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(still_there.len(), 1);
}

#[tokio::test]
async fn server_version_is_read_from_the_server() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let version = server_version_num(&conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text: String = conn
        .query_one("SELECT current_setting('server_version_num')", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(version.to_string(), text);
    assert!(version >= 120_000, "{version}");
}

#[tokio::test]
async fn test_databases_are_isolated_and_dropped() {
    let first = TestDb::new().await;
    let second = TestDb::new().await;
    assert_ne!(first.name(), second.name());
    assert!(first
        .name()
        .starts_with(&format!("pgshift_test_{}_", std::process::id())));

    let a = first.connect().await;
    a.batch_execute("CREATE TABLE only_in_first (id int)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let b = second.connect().await;
    let seen: Option<u32> = b
        .query_one("SELECT to_regclass('only_in_first')::oid", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(seen, None);

    let admin = connect(&first.admin_url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name = first.name().to_owned();
    // Dropping works even with a session still connected to it (WITH (FORCE)).
    drop(first);
    let remaining: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(remaining, 0);
    assert!(
        a.batch_execute("SELECT 1").await.is_err(),
        "the forced-out session still works"
    );
}
