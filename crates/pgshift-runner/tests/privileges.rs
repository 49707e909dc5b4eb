//! A role that may not create what pgshift keeps its history in is told what pgshift was
//! creating and the `GRANT` that fixes it, and the fix it is told works. The test cluster runs
//! as a superuser; each test makes its own login role (roles are cluster-wide, so the name
//! carries the test database's unique name) and drops it at the end, even on failure.

use pgshift_db::testing::TestDb;
use pgshift_db::{connect, Connection, DatabaseUrl};
use pgshift_runner::{Migrator, RunOptions, Silent};
use pgshift_source::{load, Format};
use pgshift_sql::ident::quote_ident;

async fn count(admin: &Connection, sql: &str) -> i64 {
    admin
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

async fn admin_run(admin: &Connection, sql: &str) {
    admin
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// What a user does: `pgshift up` as the role, then what the message says, as a superuser.
async fn scenario(role_url: DatabaseUrl, admin_url: DatabaseUrl, database: String, role: String) {
    let admin = connect(&admin_url).await.expect("admin");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("20240101000000_widgets.up.sql"),
        "CREATE TABLE widgets (id int);\n",
    )
    .expect("write");
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    let mut m = Migrator::connect(&role_url, set, RunOptions::default())
        .await
        .expect("the role can connect");
    let (db_q, role_q) = (quote_ident(&database), quote_ident(&role));

    // Nothing exists: pgshift needs CREATE on the database for its schema.
    let err = match m.up(None, &Silent).await {
        Ok(ran) => panic!("up succeeded without the privilege: {ran:?}"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("CREATE SCHEMA pgshift"), "{err}");
    assert!(
        err.contains(&format!("GRANT CREATE ON DATABASE {db_q} TO {role_q};")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "GRANT USAGE, CREATE ON SCHEMA pgshift TO {role_q};"
        )),
        "{err}"
    );
    assert!(err.contains("permission denied for database"), "{err}");
    assert!(err.contains(&format!("role {role})")), "{err}");
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshift'"
        )
        .await,
        0,
        "no schema may be left behind"
    );
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM pg_class WHERE relname = 'widgets'"
        )
        .await,
        0,
        "no migration may run"
    );

    // An owner made the schema but granted only USAGE: the history table cannot be created.
    admin_run(
        &admin,
        &format!("CREATE SCHEMA pgshift; GRANT USAGE ON SCHEMA pgshift TO {role_q};"),
    )
    .await;
    let err = match m.up(None, &Silent).await {
        Ok(ran) => panic!("up succeeded without CREATE on the schema: {ran:?}"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("history table `pgshift.migrations`"), "{err}");
    assert!(
        err.contains(&format!(
            "GRANT USAGE, CREATE ON SCHEMA pgshift TO {role_q};"
        )),
        "{err}"
    );
    assert!(!err.contains("GRANT CREATE ON DATABASE"), "{err}");
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'pgshift'::regnamespace"
        )
        .await,
        0
    );

    // The GRANT the message gives is enough (plus what the migration itself needs).
    admin_run(
        &admin,
        &format!(
            "GRANT USAGE, CREATE ON SCHEMA pgshift TO {role_q}; GRANT CREATE ON SCHEMA public TO {role_q};"
        ),
    )
    .await;
    let ran = m.up(None, &Silent).await.expect("up after the GRANT");
    assert_eq!(ran.len(), 1);
    assert_eq!(
        count(&admin, "SELECT count(*) FROM pgshift.migrations").await,
        1
    );
}

#[tokio::test]
async fn a_role_that_may_not_create_the_history_is_told_which_grant_fixes_it() {
    let db = TestDb::new().await;
    let role = format!("{}_migrator", db.name());
    let role_q = quote_ident(&role);
    let admin = db.connect().await;
    // A fresh role has no CREATE on the database; say so anyway, and take away the CREATE
    // on `public` that servers before 15 give everyone, so the test means the same on each.
    admin_run(
        &admin,
        &format!(
            "CREATE ROLE {role_q} LOGIN PASSWORD 'not-a-secret';
             REVOKE CREATE ON DATABASE {db_q} FROM PUBLIC;
             REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
            db_q = quote_ident(db.name())
        ),
    )
    .await;
    let role_url = db
        .url()
        .with_user(&role)
        .with_password(Some("not-a-secret"));

    // Run on its own task so that the role is dropped even when an assertion fails.
    let outcome = tokio::spawn(scenario(
        role_url,
        db.url(),
        db.name().to_owned(),
        role.clone(),
    ))
    .await;

    admin_run(
        &admin,
        &format!("DROP OWNED BY {role_q}; DROP ROLE {role_q};"),
    )
    .await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}
