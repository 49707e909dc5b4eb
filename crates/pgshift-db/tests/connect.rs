//! Connections against a real server: notices, cancel, backend pid, application_name, error
//! positions, and connection errors that never reveal the password.

use std::time::Duration;

use pgshift_db::testing::TestDb;
use pgshift_db::{
    connect, ClusterOptions, ConnectFailure, DatabaseUrl, DbError, ErrorPosition, HostPort,
    TempCluster,
};

fn connect_error(result: Result<pgshift_db::Connection, DbError>) -> DbError {
    match result {
        Ok(conn) => panic!("connected unexpectedly: {conn:?}"),
        Err(err) => err,
    }
}

fn assert_no_secret(err: &DbError, secret: &str) {
    let shown = err.to_string();
    let debugged = format!("{err:?}");
    assert!(!shown.contains(secret), "password in message: {shown}");
    assert!(!debugged.contains(secret), "password in Debug: {debugged}");
}

#[tokio::test]
async fn notices_are_collected_until_taken() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch_execute("DO $$ BEGIN RAISE NOTICE 'hello %', 1; RAISE WARNING 'careful'; END $$")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let notices = conn.take_notices();
    let texts: Vec<(&str, &str)> = notices
        .iter()
        .map(|n| (n.severity.as_str(), n.message.as_str()))
        .collect();
    assert_eq!(texts, vec![("NOTICE", "hello 1"), ("WARNING", "careful")]);
    assert!(conn.take_notices().is_empty());

    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS t (id int); CREATE TABLE IF NOT EXISTS t (id int)",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let notices = conn.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].code, "42P07");
}

#[tokio::test]
async fn backend_pid_and_application_name() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let row = conn
        .query_one(
            "SELECT pg_backend_pid(), current_setting('application_name')",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(row.get::<_, i32>(0), conn.backend_pid());
    assert_eq!(row.get::<_, String>(1), "pgshift");

    let named = db
        .url()
        .with_param("application_name", "deploy-bot")
        .unwrap_or_else(|e| panic!("{e}"));
    let conn = connect(&named).await.unwrap_or_else(|e| panic!("{e}"));
    let row = conn
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(row.get::<_, String>(0), "deploy-bot");
}

#[tokio::test]
async fn cancel_stops_a_running_statement() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let cancel = conn.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel().await
    });
    let started = std::time::Instant::now();
    let result = conn.batch_execute("SELECT pg_sleep(30)").await;
    let err = match result {
        Ok(()) => panic!("pg_sleep(30) was not cancelled"),
        Err(err) => DbError::from(err),
    };
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.sqlstate(), Some("57014"), "{err}");
    assert!(err.as_query_error().is_some_and(|q| q.is_query_canceled()));
    canceller
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    // The session is still usable.
    conn.batch_execute("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn query_errors_keep_sqlstate_and_position() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let err = match conn.batch_execute("SELECT 1 FROM no_such_table").await {
        Ok(()) => panic!("query on a missing table succeeded"),
        Err(err) => DbError::from(err),
    };
    let query = err
        .as_query_error()
        .unwrap_or_else(|| panic!("not a query error: {err}"));
    assert_eq!(query.code, "42P01");
    assert_eq!(query.position, Some(ErrorPosition::Original(15)));
    assert!(err.to_string().contains("no_such_table"), "{err}");

    let err = match conn
        .batch_execute("CREATE TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1), (1)")
        .await
    {
        Ok(()) => panic!("duplicate insert succeeded"),
        Err(err) => DbError::from(err),
    };
    let query = err
        .as_query_error()
        .unwrap_or_else(|| panic!("not a query error: {err}"));
    assert_eq!(query.code, "23505");
    assert_eq!(query.constraint.as_deref(), Some("u_pkey"));
    assert!(query
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("(id)=(1)")));
}

#[tokio::test]
async fn missing_database_is_reported_as_such() {
    let db = TestDb::new().await;
    let err = connect_error(connect(&db.url().with_database("pgshift_no_such_db")).await);
    match &err {
        DbError::Connect { failure, .. } => assert_eq!(*failure, ConnectFailure::DatabaseMissing),
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("createdb"), "{err}");
}

#[tokio::test]
async fn wrong_password_fails_without_revealing_any_password() {
    let cluster = tokio::task::spawn_blocking(|| {
        TempCluster::start(ClusterOptions::default().password("right-s3cret"))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|e| panic!("{e}"));

    // The right password works, so the failure below is about the password.
    let conn = connect(&cluster.url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conn.batch_execute("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!cluster.url().to_string().contains("right-s3cret"));

    let wrong = cluster.url().with_password(Some("wr0ng-hunter2"));
    let err = connect_error(connect(&wrong).await);
    match &err {
        DbError::Connect { failure, .. } => assert_eq!(*failure, ConnectFailure::AuthFailed),
        other => panic!("unexpected error: {other}"),
    }
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    assert_no_secret(&err, "wr0ng-hunter2");
    assert_no_secret(&err, "right-s3cret");

    let none = cluster.url().with_password(None);
    let err = connect_error(connect(&none).await);
    match &err {
        DbError::Connect { failure, .. } => assert_eq!(*failure, ConnectFailure::AuthFailed),
        other => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn unreachable_server_errors_hide_the_password() {
    // Port 1 on loopback: nothing listens there.
    let url =
        DatabaseUrl::parse("postgres://alice:hunter2-secret@127.0.0.1:1/app?connect_timeout=5")
            .unwrap_or_else(|e| panic!("{e}"));
    let err = connect_error(connect(&url).await);
    match &err {
        DbError::Connect {
            failure, server, ..
        } => {
            assert_eq!(*failure, ConnectFailure::Refused, "{err}");
            assert_eq!(server, "postgres://alice@127.0.0.1:1/app?connect_timeout=5");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_no_secret(&err, "hunter2-secret");

    // A unix socket directory without a server.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let socket_url = url.with_hosts(vec![HostPort {
        host: dir.path().display().to_string(),
        port: 5432,
    }]);
    let err = connect_error(connect(&socket_url).await);
    assert!(
        matches!(
            &err,
            DbError::Connect {
                failure: ConnectFailure::Refused,
                ..
            }
        ),
        "{err}"
    );
    assert_no_secret(&err, "hunter2-secret");
}

#[tokio::test]
async fn unknown_host_is_named_as_such() {
    let url = DatabaseUrl::parse(
        "postgres://alice:hunter2-secret@no-such-host.invalid/app?connect_timeout=5",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = match tokio::time::timeout(Duration::from_secs(30), connect(&url)).await {
        Ok(result) => connect_error(result),
        Err(_) => panic!("resolving an .invalid host did not finish in 30 s"),
    };
    assert!(
        matches!(
            &err,
            DbError::Connect {
                failure: ConnectFailure::UnknownHost,
                ..
            }
        ),
        "{err}"
    );
    assert_no_secret(&err, "hunter2-secret");
}

#[tokio::test]
async fn prismas_schema_parameter_sets_the_search_path() {
    let db = TestDb::new().await;
    let setup = db.connect().await;
    setup
        .batch_execute(
            "CREATE SCHEMA other;
             CREATE TABLE other._prisma_migrations (migration_name text);
             INSERT INTO other._prisma_migrations VALUES ('20240101000000_init');
             CREATE TABLE public._prisma_migrations (migration_name text);",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The URL as Prisma writes it, parsed from text: `?schema=` after whatever the test
    // server's URL already carries. The password is not in the redacted text; put it back.
    let base = db.url();
    let text = base.redacted();
    let separator = if text.contains('?') { '&' } else { '?' };
    let url = DatabaseUrl::parse(&format!("{text}{separator}schema=other"))
        .unwrap_or_else(|e| panic!("{e}"))
        .with_password(base.password());
    assert_eq!(url.schema(), Some("other"));

    let conn = connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let row = conn
        .query_one(
            "SELECT current_schema()::text, (SELECT min(migration_name) FROM _prisma_migrations)",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("other"));
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("20240101000000_init"),
        "the unqualified name must resolve in schema `other`, not `public`"
    );
    // New tables go there too, as with Prisma.
    conn.batch_execute("CREATE TABLE made_here (id int)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let schema: String = setup
        .query_one(
            "SELECT relnamespace::regnamespace::text FROM pg_class WHERE relname = 'made_here'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(schema, "other");

    // Without `schema=` the server's default search_path applies.
    let plain = db.connect().await;
    let n: i64 = plain
        .query_one("SELECT count(*) FROM _prisma_migrations", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(n, 0);
}
