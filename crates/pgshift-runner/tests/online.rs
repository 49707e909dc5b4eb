//! Online (expand/contract) changes against a real PostgreSQL, from plain SQL migrations: an
//! "old application" and a "new application", each using only its own names, write and read
//! the table while `up` expands, then while `complete` contracts (or `rollback` undoes the
//! expand); neither sees an error, and at the end every row is what its last writer wrote.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgshift_db::testing::TestDb;
use pgshift_db::Connection;
use pgshift_runner::online::Planned;
use pgshift_runner::{EntryState, Migrator, RunOptions, Silent};
use pgshift_source::{load, Format, Version};

async fn exec(c: &Connection, sql: &str) {
    c.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn one(c: &Connection, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

async fn text(c: &Connection, sql: &str) -> String {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).expect("write");
    }
    dir
}

fn fast() -> RunOptions {
    RunOptions {
        backfill_batch_time: Duration::from_millis(10),
        lock_timeout: Duration::from_millis(200),
        ..RunOptions::default()
    }
}

async fn migrator(db: &TestDb, dir: &tempfile::TempDir, options: RunOptions) -> Migrator {
    let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
    Migrator::connect(&db.url(), set, options)
        .await
        .expect("connect")
}

async fn state_of(m: &Migrator, version: &str) -> EntryState {
    m.status()
        .await
        .expect("status")
        .entries
        .iter()
        .find(|e| e.version == version)
        .expect("entry")
        .state
}

/// What an application wrote last to each row it owns: id → value as text.
type Model = Arc<Mutex<HashMap<i64, String>>>;

/// An application loop: runs `step(i)` (one statement, SQL text) until `stop`, on its own
/// connection, and counts its errors. Each statement returns `(id, value)` rows to record.
fn app(
    url: pgshift_db::DatabaseUrl,
    stop: Arc<AtomicBool>,
    model: Model,
    errors: Arc<Mutex<Vec<String>>>,
    step: impl Fn(u64) -> String + Send + 'static,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let c = pgshift_db::connect(&url).await.expect("app connect");
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let sql = step(i);
            match c.simple_query(&sql).await {
                Ok(messages) => {
                    for m in messages {
                        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                            let id: i64 = r.get(0).unwrap().parse().unwrap();
                            let v = r.get(1).map(str::to_string).unwrap_or_default();
                            model.lock().unwrap().insert(id, v);
                        }
                    }
                }
                Err(e) => errors.lock().unwrap().push(format!(
                    "{sql}: {}",
                    e.as_db_error().map_or(e.to_string(), |d| format!(
                        "{} {}",
                        d.code().code(),
                        d.message()
                    ))
                )),
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        i
    })
}

async fn settle(stop: &Arc<AtomicBool>, apps: Vec<tokio::task::JoinHandle<u64>>) -> u64 {
    stop.store(true, Ordering::Relaxed);
    let mut n = 0;
    for a in apps {
        n += a.await.expect("app");
    }
    n
}

fn no_errors(errors: &Arc<Mutex<Vec<String>>>) {
    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "application errors: {errors:#?}");
}

/// Every row the model knows has the value its last writer wrote, read through `column`.
async fn rows_match(c: &Connection, model: &Model, table: &str, column: &str) {
    let model = model.lock().unwrap().clone();
    assert!(!model.is_empty());
    let rows = c
        .query(
            &format!("SELECT id, coalesce({column}::text, '') FROM {table}"),
            &[],
        )
        .await
        .expect("read");
    let now: HashMap<i64, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for (id, v) in &model {
        assert_eq!(now.get(id), Some(v), "row {id} of {table}.{column}");
    }
}

/// Runs `up` and stops it after each of `moments` (milliseconds; the runner's task dropped, as
/// a kill would), waiting each time until the server has ended what the task had sent.
async fn stop_up_at(db: &TestDb, c: &Connection, dir: &tempfile::TempDir, moments: &[u64]) {
    for &wait_ms in moments {
        let url = db.url();
        let set = load(dir.path(), Some(Format::Pgshift)).unwrap();
        let task = tokio::spawn(async move {
            let mut m = Migrator::connect(&url, set, fast()).await.expect("connect");
            m.up(None, &Silent).await
        });
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        task.abort();
        let _ = task.await;
        let start = Instant::now();
        while one(c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'pgshift' AND state <> 'idle'").await > 0 {
            assert!(start.elapsed() < Duration::from_secs(30));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// No trigger, function, column or constraint of pgshift's is left on the table.
async fn nothing_left(c: &Connection, table: &str) {
    let leftovers = text(
        c,
        &format!(
            "SELECT concat_ws(',',
                (SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = '{table}'::regclass AND tgname LIKE '%pgshift%'),
                (SELECT string_agg(proname, ',') FROM pg_proc WHERE proname LIKE 'pgshift%'),
                (SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname LIKE 'pgshift%' AND NOT attisdropped),
                (SELECT string_agg(conname, ',') FROM pg_constraint WHERE conrelid = '{table}'::regclass AND conname LIKE 'pgshift%'),
                (SELECT string_agg(relname, ',') FROM pg_class WHERE relname LIKE 'pgshift_ix%'))"
        ),
    )
    .await;
    assert_eq!(leftovers, "", "left behind on {table}");
}

#[tokio::test]
async fn a_type_change_runs_online_while_the_application_writes_and_reads() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE accounts (id bigserial PRIMARY KEY, balance int NOT NULL DEFAULT 0, note text,
                                CONSTRAINT balance_positive CHECK (balance >= 0));
         CREATE INDEX accounts_balance_idx ON accounts (balance);
         CREATE UNIQUE INDEX accounts_note_balance ON accounts (note, balance);
         INSERT INTO accounts (balance, note) SELECT g, 'n' || g FROM generate_series(1, 20000) g;
         COMMENT ON COLUMN accounts.balance IS 'in cents';
         ALTER TABLE accounts ALTER COLUMN balance SET STATISTICS 300;
         ANALYZE accounts;",
    )
    .await;
    let dir = folder(&[
        (
            "20260101000000_balance_bigint.up.sql",
            "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;\n",
        ),
        (
            "20260101000000_balance_bigint.down.sql",
            "ALTER TABLE accounts ALTER COLUMN balance TYPE int;\n",
        ),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let model: Model = Arc::default();
    let errors = Arc::new(Mutex::new(Vec::new()));
    // Writers own disjoint rows (id % 2), so the last write of each row is known: they
    // update existing rows and insert new ones, with and without the column.
    let apps: Vec<_> = (0..2u64)
        .map(|k| {
            app(db.url(), stop.clone(), model.clone(), errors.clone(), move |i| {
                let id = (i * 37 + k * 11) % 20000 / 2 * 2 + k + 1;
                match i % 3 {
                    0 => format!("INSERT INTO accounts (balance, note) VALUES ({}, 'new') RETURNING id, balance", i + k),
                    1 => format!("INSERT INTO accounts (note) VALUES ('default {k} {i}') RETURNING id, balance"),
                    _ => format!("UPDATE accounts SET balance = balance + 1 WHERE id = {id} RETURNING id, balance"),
                }
            })
        })
        .chain(std::iter::once(app(
            db.url(),
            stop.clone(),
            Arc::default(),
            errors.clone(),
            |i| format!("SELECT id, balance FROM accounts WHERE balance = {}", i % 20000),
        )))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    assert_eq!(
        text(&c, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'balance'").await,
        "integer",
        "the old code's column is untouched until complete"
    );
    // `up` again changes nothing: the migrations after it wait for complete.
    m.up(None, &Silent).await.expect("up again");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    // `down` refuses while it is in progress: what it would revert lies under it.
    let err = m
        .down(pgshift_runner::DownTarget::Steps(1), &Silent)
        .await
        .expect_err("down while expanded");
    assert!(
        err.to_string().contains("online change in progress"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    m.complete(None, &Silent).await.expect("complete");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ops = settle(&stop, apps).await;
    assert!(ops > 50, "the application ran ({ops} statements)");
    no_errors(&errors);

    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Applied);
    assert_eq!(
        text(&c, "SELECT format_type(atttypid, atttypmod) || ' ' || attnotnull FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'balance'").await,
        "bigint true"
    );
    assert_eq!(
        text(&c, "SELECT col_description('accounts'::regclass, attnum) || ' ' || attstattarget FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'balance'").await,
        "in cents 300"
    );
    assert_eq!(
        text(&c, "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'accounts'::regclass AND adnum = (SELECT attnum FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'balance')").await,
        "0"
    );
    // The indexes and the CHECK constraint are there, with their names, on the new column.
    assert_eq!(
        text(&c, "SELECT string_agg(indexrelid::regclass::text || ':' || pg_get_indexdef(indexrelid), ' | ' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 'accounts'::regclass AND indexrelid::regclass::text <> 'accounts_pkey'").await,
        "accounts_balance_idx:CREATE INDEX accounts_balance_idx ON public.accounts USING btree (balance) | accounts_note_balance:CREATE UNIQUE INDEX accounts_note_balance ON public.accounts USING btree (note, balance)"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_constraint WHERE conname = 'balance_positive' AND convalidated").await,
        1
    );
    rows_match(&c, &model, "accounts", "balance").await;
    assert_eq!(
        one(&c, "SELECT count(*) FROM accounts WHERE id <= 20000").await,
        20000
    );
    nothing_left(&c, "accounts").await;
    // The migration's own down still works afterwards.
    m.down(pgshift_runner::DownTarget::Steps(1), &Silent)
        .await
        .expect("down");
}

#[tokio::test]
async fn a_rename_serves_old_and_new_names_at_once_then_completes() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE users (id bigserial PRIMARY KEY, full_name text NOT NULL DEFAULT 'anonymous', email text);
         CREATE INDEX users_full_name_idx ON users (full_name);
         COMMENT ON COLUMN users.full_name IS 'shown to other users';
         ALTER TABLE users ALTER COLUMN full_name SET STATISTICS 500;
         INSERT INTO users (full_name, email) SELECT 'user ' || g, g || '@x' FROM generate_series(1, 5000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_rename.up.sql",
        "ALTER TABLE users RENAME COLUMN full_name TO display_name;\n",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let old_model: Model = Arc::default();
    // The old application only knows full_name; it owns the odd rows.
    let old_app = app(
        db.url(),
        stop.clone(),
        old_model.clone(),
        errors.clone(),
        |i| match i % 3 {
            0 => {
                format!("INSERT INTO users (full_name) VALUES ('old {i}') RETURNING id, full_name")
            }
            1 => "INSERT INTO users (email) VALUES ('old@x') RETURNING id, full_name".into(),
            _ => format!(
                "UPDATE users SET full_name = 'old edit {i}' WHERE id = {} RETURNING id, full_name",
                (i * 7) % 5000 / 2 * 2 + 1
            ),
        },
    );
    m_up_expanded(&db, &dir).await;

    // Now the new application runs too, with display_name only; it owns the even rows.
    let new_stop = Arc::new(AtomicBool::new(false));
    let new_model: Model = Arc::default();
    let new_app = app(
        db.url(),
        new_stop.clone(),
        new_model.clone(),
        errors.clone(),
        |i| {
            match i % 3 {
            0 => format!("INSERT INTO users (display_name, email) VALUES ('new {i}', 'n@x') RETURNING id, display_name"),
            1 => format!("SELECT id, display_name FROM users WHERE id = {}", (i * 13) % 5000 / 2 * 2 + 2),
            _ => format!("UPDATE users SET display_name = 'new edit {i}' WHERE id = {} RETURNING id, display_name", (i * 13) % 5000 / 2 * 2 + 2),
        }
        },
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Both names show the same row as each writer left it.
    {
        let old = old_model.lock().unwrap().clone();
        let rows = c
            .query("SELECT id, full_name, display_name FROM users", &[])
            .await
            .unwrap();
        for r in &rows {
            let (a, b): (String, String) = (r.get(1), r.get(2));
            assert_eq!(
                a,
                b,
                "row {} reads the same through both names",
                r.get::<_, i64>(0)
            );
        }
        assert!(!old.is_empty());
    }
    // The old code is gone (deployed); complete while the new code runs.
    let old_ops = settle(&stop, vec![old_app]).await;
    assert!(old_ops > 20);
    let mut m = migrator(&db, &dir, fast()).await;
    m.complete(None, &Silent).await.expect("complete");
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle(&new_stop, vec![new_app]).await;
    no_errors(&errors);

    rows_match(&c, &old_model, "users", "display_name").await;
    rows_match(&c, &new_model, "users", "display_name").await;
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'full_name' AND NOT attisdropped").await,
        0
    );
    assert_eq!(
        text(&c, "SELECT attnotnull::text || ' ' || pg_get_expr(adbin, adrelid) FROM pg_attribute JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum WHERE attrelid = 'users'::regclass AND attname = 'display_name'").await,
        "true 'anonymous'::text"
    );
    assert_eq!(
        text(
            &c,
            "SELECT pg_get_indexdef('users_full_name_idx'::regclass)"
        )
        .await,
        "CREATE INDEX users_full_name_idx ON public.users USING btree (display_name)"
    );
    assert_eq!(
        text(&c, "SELECT col_description('users'::regclass, attnum) || ' ' || attstattarget FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'display_name'").await,
        "shown to other users 500",
        "the comment and the statistics target follow the copy"
    );
    nothing_left(&c, "users").await;
}

async fn m_up_expanded(db: &TestDb, dir: &tempfile::TempDir) {
    let mut m = migrator(db, dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    let status = m.status().await.unwrap();
    assert_eq!(status.entries[0].state, EntryState::Expanded);
}

/// Both ways of a rename, rolled back while old code reads and inserts (the table's default
/// through the view too): every row new code wrote is there under the old name.
#[tokio::test]
async fn a_rollback_keeps_every_row_written_through_the_new_name() {
    for marker in ["", "-- pgshift:rename view\n"] {
        let db = TestDb::new().await;
        let c = db.connect().await;
        exec(
            &c,
            "CREATE TABLE users (id bigserial PRIMARY KEY, full_name text NOT NULL DEFAULT 'anonymous');
             INSERT INTO users (full_name) SELECT 'user ' || g FROM generate_series(1, 3000) g;",
        )
        .await;
        let dir = folder(&[(
            "20260101000000_rename.up.sql",
            &format!("{marker}ALTER TABLE users RENAME COLUMN full_name TO display_name;\n"),
        )]);
        let mut m = migrator(&db, &dir, fast()).await;
        let Planned::Online(plan) = planned(&mut m).await else {
            panic!("online")
        };
        assert_eq!(
            plan.operations[0]
                .summary
                .ends_with("through a view (no copy)"),
            !marker.is_empty(),
            "the marker picks the view over the copy: {}",
            plan.operations[0].summary
        );
        m_up_expanded(&db, &dir).await;
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let new_model: Model = Arc::default();
        let new_app = app(
            db.url(),
            stop.clone(),
            new_model.clone(),
            errors.clone(),
            |i| {
                if i % 2 == 0 {
                    format!("INSERT INTO users (display_name) VALUES ('new {i}') RETURNING id, display_name")
                } else {
                    format!("UPDATE users SET display_name = 'new edit {i}' WHERE id = {} RETURNING id, display_name", i % 3000 + 1)
                }
            },
        );
        let old_stop = Arc::new(AtomicBool::new(false));
        let old_app = app(
            db.url(),
            old_stop.clone(),
            Arc::default(),
            errors.clone(),
            |i| {
                if i % 2 == 0 {
                    format!(
                        "SELECT id, full_name FROM users WHERE id = {}",
                        i % 3000 + 1
                    )
                } else {
                    "INSERT INTO users DEFAULT VALUES RETURNING id, full_name".to_string()
                }
            },
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The new version is rolled back (its deploy failed): it stops, then the expand is
        // undone while the old code keeps running.
        settle(&stop, vec![new_app]).await;
        let mut m = migrator(&db, &dir, fast()).await;
        m.rollback(None, &Silent).await.expect("rollback");
        tokio::time::sleep(Duration::from_millis(100)).await;
        settle(&old_stop, vec![old_app]).await;
        no_errors(&errors);
        rows_match(&c, &new_model, "users", "full_name").await;
        assert!(
            one(
                &c,
                "SELECT count(*) FROM users WHERE full_name = 'anonymous'"
            )
            .await
                > 0,
            "old inserts got the default"
        );
        assert_eq!(state_of(&m, "20260101000000").await, EntryState::Pending);
        assert_eq!(
            text(&c, "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'users'::regclass AND adnum = 2").await,
            "'anonymous'::text",
            "the default is back on the old column"
        );
        assert_eq!(
            text(
                &c,
                "SELECT relkind::text FROM pg_class WHERE oid = 'users'::regclass"
            )
            .await,
            "r"
        );
        assert_eq!(
            one(
                &c,
                "SELECT count(*) FROM pg_class WHERE relname LIKE 'pgshift%'"
            )
            .await,
            0
        );
        nothing_left(&c, "users").await;
        // A rollback after complete (or with nothing in progress) is refused.
        let err = m
            .rollback(None, &Silent)
            .await
            .expect_err("nothing to roll back");
        assert!(
            err.to_string().contains("no online change is in progress"),
            "{err}"
        );
        // And the migration can be started again.
        m.up(None, &Silent).await.expect("up again");
        assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    }
}

#[tokio::test]
async fn an_added_not_null_column_filled_from_the_row_serves_old_inserts() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE orders (id bigserial PRIMARY KEY, quantity int NOT NULL, price_cents int NOT NULL);
         INSERT INTO orders (quantity, price_cents) SELECT g % 7 + 1, g FROM generate_series(1, 8000) g;",
    )
    .await;
    // The Rails/Django triple, as written.
    let dir = folder(&[(
        "20260101000000_total.up.sql",
        "ALTER TABLE orders ADD COLUMN total_cents bigint;
UPDATE orders SET total_cents = quantity * price_cents;
ALTER TABLE orders ALTER COLUMN total_cents SET NOT NULL;
",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let old_stop = Arc::new(AtomicBool::new(false));
    let old_app = app(
        db.url(),
        old_stop.clone(),
        Arc::default(),
        errors.clone(),
        |i| {
            if i % 2 == 0 {
                format!("INSERT INTO orders (quantity, price_cents) VALUES ({}, 100) RETURNING id, quantity", i % 5 + 1)
            } else {
                format!("UPDATE orders SET quantity = quantity + 1 WHERE id = {} RETURNING id, quantity", i % 8000 + 1)
            }
        },
    );
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    let new_model: Model = Arc::default();
    let new_app = app(
        db.url(),
        stop.clone(),
        new_model.clone(),
        errors.clone(),
        |i| {
            format!("INSERT INTO orders (quantity, price_cents, total_cents) VALUES (1, 1, {}) RETURNING id, total_cents", 1000 + i)
        },
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The old code is gone (deployed); the new code runs on through complete.
    settle(&old_stop, vec![old_app]).await;
    m.complete(None, &Silent).await.expect("complete");
    tokio::time::sleep(Duration::from_millis(100)).await;
    settle(&stop, vec![new_app]).await;
    no_errors(&errors);
    assert_eq!(
        one(&c, "SELECT count(*) FROM orders WHERE total_cents IS NULL").await,
        0
    );
    // Rows the old code wrote (or that existed) hold the fill; rows the new code wrote keep
    // what it wrote. (An old-code UPDATE of quantity after the fill does not recompute it: the
    // UPDATE in the migration ran once, as it would have as written.)
    assert_eq!(
        one(&c, "SELECT count(*) FROM orders WHERE id <= 8000 AND total_cents <> (id % 7 + 1) * id AND quantity = id % 7 + 1").await,
        0
    );
    rows_match(&c, &new_model, "orders", "total_cents").await;
    assert_eq!(
        text(&c, "SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'total_cents'").await,
        "true"
    );
    nothing_left(&c, "orders").await;
}

#[tokio::test]
async fn a_dropped_column_stays_for_old_code_until_complete_and_new_code_can_insert() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, legacy text NOT NULL);
         INSERT INTO items (name, legacy) SELECT 'i' || g, 'l' FROM generate_series(1, 100) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_drop_legacy.up.sql",
        "CREATE TABLE tags (id bigserial PRIMARY KEY, name text);\nALTER TABLE items DROP COLUMN legacy;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    // Old code still reads and writes the column; new code inserts without it.
    exec(&c, "SELECT legacy FROM items LIMIT 1; INSERT INTO items (name, legacy) VALUES ('old', 'x'); INSERT INTO items (name) VALUES ('new'); INSERT INTO tags (name) VALUES ('t');").await;
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'legacy' AND NOT attisdropped").await,
        0
    );
    assert_eq!(one(&c, "SELECT count(*) FROM items").await, 102);
}

#[tokio::test]
async fn a_renamed_table_keeps_its_old_name_as_a_view_until_complete() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, tier text NOT NULL DEFAULT 'basic');
         INSERT INTO customers (name) VALUES ('a'), ('b');",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_rename_table.up.sql",
        "ALTER TABLE customers RENAME TO clients;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    // Old code (customers) and new code (clients) both insert, update and read.
    exec(&c, "INSERT INTO customers (name) VALUES ('old'); UPDATE customers SET name = 'old2' WHERE name = 'old';
              INSERT INTO clients (name) VALUES ('new') ON CONFLICT DO NOTHING;").await;
    assert_eq!(
        one(&c, "SELECT count(*) FROM customers WHERE tier = 'basic'").await,
        4
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM clients WHERE name IN ('old2', 'new')"
        )
        .await,
        2
    );
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_class WHERE relname = 'customers'"
        )
        .await,
        0
    );
    assert_eq!(one(&c, "SELECT count(*) FROM clients").await, 4);
}

#[tokio::test]
async fn exact_runs_the_file_as_written_and_an_ordinary_file_is_not_online() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1);",
    )
    .await;
    let dir = folder(&[
        (
            "20260101000000_add.up.sql",
            "ALTER TABLE t ADD COLUMN w int;\nCREATE INDEX t_v ON t (v);\n",
        ),
        (
            "20260102000000_retype.up.sql",
            "ALTER TABLE t ALTER COLUMN v TYPE bigint;\n",
        ),
    ]);
    let mut options = fast();
    options.exact = true;
    let mut m = migrator(&db, &dir, options).await;
    let applied = m.up(None, &Silent).await.expect("up --exact");
    assert_eq!(applied.len(), 2);
    // `[run] online = false` too: a rename as written, applied by the same up.
    exec(&c, "CREATE TABLE r (id int PRIMARY KEY, a int)").await;
    let dir2 = folder(&[(
        "20260103000000_rename.up.sql",
        "ALTER TABLE r RENAME COLUMN a TO b;\n",
    )]);
    let mut options = fast();
    options.online = false;
    let mut m2 = migrator(&db, &dir2, options).await;
    assert_eq!(m2.up(None, &Silent).await.expect("up").len(), 1);
    assert_eq!(
        text(&c, "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'r'::regclass AND attnum > 0 AND NOT attisdropped").await,
        "id,b"
    );
    assert_eq!(state_of(&m, "20260102000000").await, EntryState::Applied);
    assert_eq!(
        text(&c, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'v'").await,
        "bigint"
    );
}

#[tokio::test]
async fn up_with_complete_contracts_at_once_and_later_migrations_run() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(&c, "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 500) g;").await;
    let dir = folder(&[
        (
            "20260101000000_retype.up.sql",
            "ALTER TABLE t ALTER COLUMN v TYPE bigint;\n",
        ),
        (
            "20260102000000_after.up.sql",
            "CREATE TABLE later (id int);\n",
        ),
    ]);
    // Without --complete, up stops after the expand: the later migration waits.
    let mut m = migrator(&db, &dir, fast()).await;
    let applied = m.up(None, &Silent).await.expect("up");
    assert!(applied.is_empty(), "{applied:?}");
    assert_eq!(state_of(&m, "20260102000000").await, EntryState::Pending);
    let mut options = fast();
    options.online_complete = true;
    let mut m = migrator(&db, &dir, options).await;
    let applied = m.up(None, &Silent).await.expect("up --complete");
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert_eq!(one(&c, "SELECT count(*) FROM later").await, 0);
    assert_eq!(one(&c, "SELECT sum(v)::bigint FROM t").await, 125250);
    // The history row of an online change: applied, with the time from expand to contract.
    assert_eq!(
        one(&c, "SELECT count(*) FROM pgshift.migrations WHERE version = '20260101000000' AND state = 'applied' AND duration_ms IS NOT NULL").await,
        1
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_nothing_changed() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id int PRIMARY KEY, code text, amount numeric(10, 2));
         INSERT INTO t VALUES (1, '10', 1.50), (2, 'x', 2.00);",
    )
    .await;
    let schema_before = text(&c, "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped").await;
    // An expression that fails on some rows.
    let dir = folder(&[(
        "20260101000000_code_int.up.sql",
        "ALTER TABLE t ALTER COLUMN code TYPE int USING code::int;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let err = m.up(None, &Silent).await.expect_err("fails on row 2");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot be computed for every row") && msg.contains("Nothing was changed"),
        "{msg}"
    );
    assert!(msg.contains("20260101000000_code_int.up.sql"), "{msg}");
    // A lossy type change.
    let dir = folder(&[(
        "20260101000000_amount_int.up.sql",
        "ALTER TABLE t ALTER COLUMN amount TYPE int;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let err = m.up(None, &Silent).await.expect_err("lossy");
    assert!(
        err.to_string().contains("lossy") && err.to_string().contains("--allow-lossy"),
        "{err}"
    );
    let schema_after = text(&c, "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped").await;
    assert_eq!(schema_before, schema_after);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass"
        )
        .await,
        0
    );
    // complete with nothing in progress does nothing.
    assert!(m
        .complete(None, &Silent)
        .await
        .expect("nothing to complete")
        .is_empty());
    // complete before the expand has finished: a backfill that fails past the sampled rows
    // stops the expand; complete refuses, rollback undoes it.
    exec(&c, "CREATE TABLE big (id int PRIMARY KEY, s text); INSERT INTO big SELECT g, g::text FROM generate_series(1, 100100) g; UPDATE big SET s = 'bad' WHERE id = 100100;").await;
    let dir = folder(&[(
        "20260101000000_s_int.up.sql",
        "ALTER TABLE big ALTER COLUMN s TYPE int USING s::int;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent)
        .await
        .expect_err("the backfill meets the bad row");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanding);
    let err = m
        .complete(None, &Silent)
        .await
        .expect_err("still expanding");
    assert!(err.to_string().contains("still expanding"), "{err}");
    m.rollback(None, &Silent).await.expect("rollback");
    nothing_left(&c, "big").await;
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Pending);
}

#[tokio::test]
async fn a_killed_start_and_complete_continue_where_they_stopped() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);
         CREATE INDEX t_v_idx ON t (v);
         INSERT INTO t SELECT g, g FROM generate_series(1, 30000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_v_bigint.up.sql",
        "ALTER TABLE t ALTER COLUMN v TYPE bigint;\n",
    )]);
    // Stop the expand at several moments (the runner's task dropped, as a kill would).
    stop_up_at(&db, &c, &dir, &[30, 120, 400]).await;
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up continues");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    m.complete(Some(&Version::parse("20260101000000").unwrap()), &Silent)
        .await
        .expect("complete");
    assert_eq!(one(&c, "SELECT count(*) FROM t WHERE v <> id").await, 0);
    assert_eq!(
        text(&c, "SELECT pg_get_indexdef('t_v_idx'::regclass)").await,
        "CREATE INDEX t_v_idx ON public.t USING btree (v)"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_index WHERE NOT indisvalid").await,
        0
    );
    nothing_left(&c, "t").await;
}

#[tokio::test]
async fn the_triggers_refuse_a_conflicting_write_and_skip_updates_of_other_columns() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE users (id int PRIMARY KEY, full_name text, email text);
         INSERT INTO users SELECT g, 'u' || g, g || '@x' FROM generate_series(1, 100) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_rename.up.sql",
        "ALTER TABLE users RENAME COLUMN full_name TO display_name;\n",
    )]);
    m_up_expanded(&db, &dir).await;
    // Both names written with different values in one statement: an error, nothing lost.
    let err = c
        .batch_execute("UPDATE users SET full_name = 'a', display_name = 'b' WHERE id = 1")
        .await
        .expect_err("conflicting write");
    assert_eq!(err.code().map(|c| c.code()), Some("23514"), "{err}");
    let err = c
        .batch_execute("INSERT INTO users (id, full_name, display_name) VALUES (500, 'a', 'b')")
        .await
        .expect_err("conflicting insert");
    assert_eq!(err.code().map(|c| c.code()), Some("23514"), "{err}");
    // The same value through both names is fine.
    exec(
        &c,
        "UPDATE users SET full_name = 'same', display_name = 'same' WHERE id = 2",
    )
    .await;
    // An UPDATE of another column never calls the trigger function.
    exec(&c, "SET track_functions = 'all'").await;
    let calls = "SELECT coalesce((SELECT calls FROM pg_stat_user_functions WHERE funcname LIKE 'pgshift_sync%'), 0) + 0 * extract(epoch FROM clock_timestamp())::bigint";
    exec(
        &c,
        "UPDATE users SET full_name = full_name || '!' WHERE id = 3",
    )
    .await;
    // A session's function counts reach the view when it has been idle about a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    exec(&c, "SELECT pg_stat_clear_snapshot()").await;
    let before = one(&c, calls).await;
    assert!(before >= 1, "a write of the column calls it ({before})");
    exec(&c, "UPDATE users SET email = 'changed' WHERE id <= 50").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    exec(&c, "SELECT pg_stat_clear_snapshot()").await;
    assert_eq!(
        one(&c, calls).await,
        before,
        "other columns' updates skip it"
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM display_name"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn phase_markers_place_raw_sql_and_online_off_runs_the_file_as_written() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1);",
    )
    .await;
    let dir = folder(&[
        (
            "20260101000000_phases.up.sql",
            "-- pgshift:expand
ALTER TABLE t ADD COLUMN n int;
-- pgshift:contract
ALTER TABLE t ADD CONSTRAINT n_positive CHECK (n > 0);
",
        ),
        (
            "20260102000000_as_written.up.sql",
            "-- pgshift:online off
ALTER TABLE t RENAME COLUMN v TO w;
",
        ),
    ]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'n'"
        )
        .await,
        1
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'n_positive'"
        )
        .await,
        0
    );
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'n_positive'"
        )
        .await,
        1
    );
    // The next file opts out: a plain rename, no second column, applied by the same up.
    let applied = m.up(None, &Silent).await.expect("up");
    assert_eq!(applied.len(), 1);
    assert_eq!(
        text(&c, "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped").await,
        "id,w,n"
    );
}

#[tokio::test]
async fn a_file_that_cannot_be_split_runs_as_written_and_says_why() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id int PRIMARY KEY, a text);
         CREATE VIEW v AS SELECT a FROM t;
         INSERT INTO t VALUES (1, 'x');",
    )
    .await;
    // The author drops and re-creates the view around the rename, in one transaction.
    let dir = folder(&[(
        "20260101000000_rename_under_view.up.sql",
        "DROP VIEW v;
ALTER TABLE t RENAME COLUMN a TO b;
CREATE VIEW v AS SELECT b FROM t;
",
    )]);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer = move |e: &pgshift_runner::Event| seen.lock().unwrap().push(format!("{e:?}"));
    let mut m = migrator(&db, &dir, fast()).await;
    let applied = m.up(None, &observer).await.expect("up");
    assert_eq!(applied.len(), 1);
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Applied);
    assert_eq!(text(&c, "SELECT b FROM v").await, "x");
    let events = events.lock().unwrap().join("\n");
    assert!(
        events.contains("cannot run as an online change") && events.contains("runs as written"),
        "{events}"
    );

    // `pgshift start` runs nothing as written: it refuses, with nothing changed. (Without
    // the marker the column would be renamed in place, a view standing for the table.)
    exec(&c, "CREATE VIEW w AS SELECT b FROM t").await;
    let dir = folder(&[(
        "20260102000000_rename_under_view.up.sql",
        "-- pgshift:rename copy\nALTER TABLE t RENAME COLUMN b TO c;\n",
    )]);
    let mut options = fast();
    options.online_required = true;
    let mut m = migrator(&db, &dir, options).await;
    let err = m.up(None, &Silent).await.expect_err("start refuses");
    assert!(
        err.to_string()
            .contains("reads it; the old column could not be dropped")
            && err.to_string().contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(text(&c, "SELECT b FROM t").await, "x");
}

#[tokio::test]
async fn a_migration_that_sets_search_path_runs_as_written_on_the_table_it_names() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE SCHEMA s2;
         CREATE TABLE s2.items (id int PRIMARY KEY, label text);
         CREATE TABLE public.items (id int PRIMARY KEY, label text);",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_s2.up.sql",
        "SET search_path TO s2;\nALTER TABLE items RENAME COLUMN label TO title;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Applied);
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_attribute WHERE attrelid = 's2.items'::regclass AND attname = 'title'").await,
        1
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'label'").await,
        1,
        "the other schema's table is untouched"
    );
}

#[tokio::test]
async fn fills_before_set_not_null_and_constant_defaults_keep_the_written_semantics() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE o (id int PRIMARY KEY, status text, legacy text NOT NULL);
         INSERT INTO o SELECT g, CASE WHEN g % 2 = 0 THEN 'paid' END, 'l' FROM generate_series(1, 2000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_fill.up.sql",
        "UPDATE o SET status = 'new' WHERE status IS NULL;
ALTER TABLE o ALTER COLUMN status SET NOT NULL;
ALTER TABLE o ADD COLUMN kind text DEFAULT 'b';
UPDATE o SET kind = 'a';
ALTER TABLE o ALTER COLUMN kind SET NOT NULL;
ALTER TABLE o DROP COLUMN legacy;
",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    // The UPDATE before SET NOT NULL ran as a batched backfill, not as one statement.
    assert!(
        one(&c, "SELECT coalesce(sum(rows_done), 0)::bigint FROM pgshift.backfills WHERE id LIKE '20260101000000-online-%' AND statement LIKE '%status%'").await >= 1000
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM o WHERE status IS NULL").await,
        0
    );
    // A row written now (by old code, which knows neither kind nor the drop) gets the
    // column's default, as it would have after the migration as written.
    exec(
        &c,
        "INSERT INTO o (id, status, legacy) VALUES (5000, 'new', 'x')",
    )
    .await;
    assert_eq!(text(&c, "SELECT kind FROM o WHERE id = 5000").await, "b");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM o WHERE id <= 2000 AND kind <> 'a'"
        )
        .await,
        0
    );
    // New code inserts without legacy; a rollback then cannot make it NOT NULL again and
    // says so instead of failing.
    exec(
        &c,
        "INSERT INTO o (id, status, kind) VALUES (5001, 'new', 'c')",
    )
    .await;
    let done = m.rollback(None, &Silent).await.expect("rollback");
    assert_eq!(done.len(), 1);
    let done = &done[0];
    assert!(
        done.not_undone
            .iter()
            .any(|n| n.contains("legacy stays nullable")),
        "{:?}",
        done.not_undone
    );
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Pending);
}

#[tokio::test]
async fn a_complete_that_changed_nothing_can_still_be_rolled_back() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id int PRIMARY KEY, a text); INSERT INTO t VALUES (1, 'x');",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_rename.up.sql",
        "ALTER TABLE t RENAME COLUMN a TO b;\n",
    )]);
    m_up_expanded(&db, &dir).await;
    // As a complete that gave up on its lock leaves it: contracting, no step done.
    exec(
        &c,
        "UPDATE pgshift.online_changes SET phase = 'contracting'",
    )
    .await;
    let mut m = migrator(&db, &dir, fast()).await;
    m.rollback(None, &Silent).await.expect("rollback");
    nothing_left(&c, "t").await;
    // One step done: too late.
    m.up(None, &Silent).await.expect("expand again");
    exec(
        &c,
        "UPDATE pgshift.online_changes SET phase = 'contracting', done = 1",
    )
    .await;
    let err = m.rollback(None, &Silent).await.expect_err("too late");
    assert!(err.to_string().contains("can no longer be undone"), "{err}");
}

/// Django's `sqlmigrate` output for a RenameField + AlterField (int → bigint), as it prints it:
/// wrapped in BEGIN ... COMMIT, quoted names, an explicit USING.
#[tokio::test]
async fn djangos_sql_output_runs_online() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE shop_customer (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, full_name varchar(100) NOT NULL, balance integer NOT NULL);
         INSERT INTO shop_customer (full_name, balance) SELECT 'c' || g, g FROM generate_series(1, 3000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_rename_and_retype.up.sql",
        "BEGIN;
--
-- Rename field full_name on customer to display_name
--
ALTER TABLE \"shop_customer\" RENAME COLUMN \"full_name\" TO \"display_name\";
--
-- Alter field balance on customer
--
ALTER TABLE \"shop_customer\" ALTER COLUMN \"balance\" TYPE bigint USING \"balance\"::bigint;
COMMIT;
",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        text(&c, "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname) FROM pg_attribute WHERE attrelid = 'shop_customer'::regclass AND attnum > 0 AND NOT attisdropped").await,
        "balance bigint, display_name character varying(100), id bigint"
    );
    assert_eq!(
        one(&c, "SELECT sum(balance)::bigint FROM shop_customer").await,
        4501500
    );
    nothing_left(&c, "shop_customer").await;
}

/// A statement the author placed with a phase marker stays where the author put it: an UPDATE
/// before a marked SET NOT NULL runs as written, not swallowed as a fill.
#[tokio::test]
async fn a_marked_set_not_null_leaves_its_update_as_written() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t VALUES (1, NULL), (2, 'x');",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_marked.up.sql",
        "UPDATE t SET s = 'filled' WHERE s IS NULL;
-- pgshift:contract
ALTER TABLE t ALTER COLUMN s SET NOT NULL;
",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(text(&c, "SELECT s FROM t WHERE id = 1").await, "filled");
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        text(&c, "SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 's'").await,
        "true"
    );
}

/// A key's type, with what follows it: `table.column type`.
async fn type_of(c: &Connection, table: &str, column: &str) -> String {
    text(
        c,
        &format!("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname = '{column}' AND NOT attisdropped"),
    )
    .await
}

/// Every constraint of `table` as `name: definition [NOT VALIDATED]`, in name order.
async fn constraints_of(c: &Connection, table: &str) -> String {
    text(
        c,
        &format!("SELECT coalesce(string_agg(conname || ': ' || pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' [NOT VALIDATED]' END, ' | ' ORDER BY conname), '') FROM pg_constraint WHERE conrelid = '{table}'::regclass AND contype <> 'n'"),
    )
    .await
}

const KEY_SCHEMA: &str = "
    CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
    CREATE TABLE orders (id bigserial PRIMARY KEY,
                         customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE,
                         amount int NOT NULL);
    CREATE INDEX orders_customer_id_idx ON orders (customer_id);
    CREATE TABLE notes (id bigserial PRIMARY KEY, customer_id int REFERENCES customers (id), body text);
    CREATE TABLE tags (customer_id int REFERENCES customers ON DELETE CASCADE, tag text,
                       PRIMARY KEY (customer_id, tag));
    INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 4000) g;
    INSERT INTO orders (customer_id, amount) SELECT 1 + g % 4000, g FROM generate_series(1, 12000) g;
    INSERT INTO notes (customer_id, body) SELECT CASE WHEN g % 5 = 0 THEN NULL ELSE g END, 'n' FROM generate_series(1, 4000) g;
    INSERT INTO tags SELECT g, t FROM generate_series(1, 4000) g, unnest(ARRAY['a', 'b']) t;
    ANALYZE;";

#[tokio::test]
async fn an_integer_key_and_every_column_referencing_it_become_bigint_while_old_code_writes() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(&c, KEY_SCHEMA).await;
    exec(&c, "COMMENT ON COLUMN orders.customer_id IS 'who ordered'").await;
    let before: Vec<String> = {
        let mut v = Vec::new();
        for t in ["customers", "orders", "notes", "tags"] {
            v.push(constraints_of(&c, t).await);
        }
        v
    };
    let dir = folder(&[(
        "20260101000000_customer_id_bigint.up.sql",
        "ALTER TABLE customers ALTER COLUMN id TYPE bigint;\n",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let orders: Model = Arc::default();
    // Old code throughout: new customers (the sequence's next values) with an order each,
    // orders updated (customers above 1000), customers deleted (ids up to 1000 that end in
    // 0: their orders go by ON DELETE CASCADE), tags and notes added.
    let apps = vec![
        app(
            db.url(),
            stop.clone(),
            orders.clone(),
            errors.clone(),
            |i| {
                format!(
                    "WITH c AS (INSERT INTO customers (name) VALUES ('new {i}') RETURNING id)
                     INSERT INTO orders (customer_id, amount) SELECT id, {i} FROM c
                     RETURNING id, customer_id || ':' || amount"
                )
            },
        ),
        app(
            db.url(),
            stop.clone(),
            orders.clone(),
            errors.clone(),
            |i| {
                format!(
                "UPDATE orders SET amount = amount + 1 WHERE id = {} AND customer_id > 1000 RETURNING id, customer_id || ':' || amount",
                (i * 31) % 12000 + 1
            )
            },
        ),
        app(
            db.url(),
            stop.clone(),
            Arc::default(),
            errors.clone(),
            |i| {
                match i % 3 {
            0 => format!("DELETE FROM customers WHERE id = {} RETURNING id, name", (i * 10) % 1000 + 10),
            1 => format!("INSERT INTO tags (customer_id, tag) VALUES ({}, 't{i}') ON CONFLICT DO NOTHING RETURNING customer_id, tag", i % 3000 + 1001),
            _ => format!("INSERT INTO notes (customer_id, body) VALUES ({}, 'x') RETURNING id, body", 2000 + i % 2000),
        }
            },
        ),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = m
        .online_plan(&m.set().migrations[0].clone())
        .await
        .expect("plan")
    else {
        panic!("planned online")
    };
    assert_eq!(plan.operations.len(), 1);
    assert_eq!(
        plan.operations[0].summary,
        "change the type of key public.customers.id from integer to bigint, with public.notes.customer_id, public.orders.customer_id, public.tags.customer_id (3 foreign keys)"
    );
    // One contract transaction; after it only ANALYZE of the tables (no lock that blocks).
    assert!(
        plan.contract[0].sql[0].starts_with("LOCK TABLE")
            && plan.contract[1..]
                .iter()
                .all(|u| u.sql.iter().all(|s| s.starts_with("ANALYZE"))),
        "one contract transaction: {:#?}",
        plan.contract
    );
    assert!(
        plan.contract[0].sql[0].starts_with(r#"LOCK TABLE "public"."customers", "#)
            && plan.contract[0]
                .sql
                .iter()
                .filter(|s| s.starts_with("LOCK"))
                .count()
                == 1,
        "{:#?}",
        plan.contract[0].sql
    );
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    assert_eq!(
        type_of(&c, "customers", "id").await,
        "integer",
        "untouched until complete"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        text(&c, "SELECT col_description('orders'::regclass, attnum) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'customer_id'").await,
        "who ordered",
        "a referencing column's comment follows its copy"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ops = settle(&stop, apps).await;
    assert!(ops > 50, "the application ran ({ops} statements)");
    no_errors(&errors);

    for (t, col) in [
        ("customers", "id"),
        ("orders", "customer_id"),
        ("notes", "customer_id"),
        ("tags", "customer_id"),
    ] {
        assert_eq!(type_of(&c, t, col).await, "bigint", "{t}.{col}");
    }
    // The same constraints, by name and definition, validated.
    for (t, was) in ["customers", "orders", "notes", "tags"].iter().zip(&before) {
        assert_eq!(&constraints_of(&c, t).await, was, "{t}");
    }
    assert_eq!(
        text(&c, "SELECT pg_get_indexdef('orders_customer_id_idx'::regclass) || ' | ' || pg_get_indexdef('tags_pkey'::regclass) || ' | ' || pg_get_indexdef('customers_pkey'::regclass)").await,
        "CREATE INDEX orders_customer_id_idx ON public.orders USING btree (customer_id) | CREATE UNIQUE INDEX tags_pkey ON public.tags USING btree (customer_id, tag) | CREATE UNIQUE INDEX customers_pkey ON public.customers USING btree (id)"
    );
    rows_match(&c, &orders, "orders", "customer_id || ':' || amount").await;
    assert_eq!(one(&c, "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL").await, 0);
    assert_eq!(one(&c, "SELECT count(*) FROM orders WHERE customer_id <= 1000 AND customer_id % 10 = 0 AND customer_id NOT IN (SELECT id FROM customers)").await, 0);
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_index WHERE NOT indisvalid").await,
        0
    );
    // The sequence continues past 2^31 now, and the keys hold such values.
    assert_eq!(
        text(&c, "SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = 'customers_id_seq'::regclass").await,
        "bigint"
    );
    exec(&c, "SELECT setval('customers_id_seq', 3000000000)").await;
    assert_eq!(
        one(&c, "WITH n AS (INSERT INTO customers (name) VALUES ('big') RETURNING id) INSERT INTO orders (customer_id, amount) SELECT id, 1 FROM n RETURNING customer_id").await,
        3_000_000_001
    );
    // The foreign keys act as before: a delete cascades, a missing customer is refused.
    exec(&c, "DELETE FROM customers WHERE id = 3000000001").await;
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM orders WHERE customer_id = 3000000001"
        )
        .await,
        0
    );
    assert!(c
        .batch_execute("INSERT INTO notes (customer_id) VALUES (3999999999)")
        .await
        .is_err());
    for t in ["customers", "orders", "notes", "tags"] {
        nothing_left(&c, t).await;
    }
}

#[tokio::test]
async fn an_identity_key_referenced_by_its_own_table_rolls_back_then_completes() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE nodes (id int GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY 2 MINVALUE 4) PRIMARY KEY,
                             parent_id int REFERENCES nodes ON DELETE SET NULL, name text,
                             CONSTRAINT not_own_parent CHECK (parent_id <> id));
         INSERT INTO nodes (name) SELECT 'n' || g FROM generate_series(1, 3000) g;
         UPDATE nodes SET parent_id = id - 2 WHERE id > 10;",
    )
    .await;
    let before = constraints_of(&c, "nodes").await;
    // The referencing column's own change comes first in the file: the key's change takes it in.
    let dir = folder(&[(
        "20260101000000_nodes_bigint.up.sql",
        "ALTER TABLE nodes ALTER COLUMN parent_id TYPE bigint;\nALTER TABLE nodes ALTER COLUMN id TYPE bigint;\n",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let model: Model = Arc::default();
    let writer = |stop: &Arc<AtomicBool>, model: &Model| {
        app(
            db.url(),
            stop.clone(),
            model.clone(),
            errors.clone(),
            |i| {
                match i % 2 {
            0 => format!("INSERT INTO nodes (parent_id, name) VALUES ({}, 'w{i}') RETURNING id, parent_id", 10 + 2 * (i % 3000)),
            _ => format!("UPDATE nodes SET parent_id = NULL WHERE id = {} RETURNING id, parent_id", 12 + 2 * (i % 2999)),
        }
            },
        )
    };
    let apps = vec![writer(&stop, &model)];
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = m
        .online_plan(&m.set().migrations[0].clone())
        .await
        .expect("plan")
    else {
        panic!("planned online")
    };
    assert_eq!(plan.operations.len(), 1, "{plan:#?}");
    m.up(None, &Silent).await.expect("up expands");
    tokio::time::sleep(Duration::from_millis(200)).await;
    m.rollback(None, &Silent).await.expect("rollback");
    settle(&stop, apps).await;
    nothing_left(&c, "nodes").await;
    assert_eq!(constraints_of(&c, "nodes").await, before);
    assert_eq!(type_of(&c, "nodes", "id").await, "integer");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Pending);

    let stop = Arc::new(AtomicBool::new(false));
    let apps = vec![writer(&stop, &model)];
    m.up(None, &Silent).await.expect("up again");
    m.complete(None, &Silent).await.expect("complete");
    tokio::time::sleep(Duration::from_millis(100)).await;
    settle(&stop, apps).await;
    no_errors(&errors);
    rows_match(&c, &model, "nodes", "parent_id").await;
    assert_eq!(type_of(&c, "nodes", "id").await, "bigint");
    assert_eq!(type_of(&c, "nodes", "parent_id").await, "bigint");
    assert_eq!(constraints_of(&c, "nodes").await, before);
    // Still an identity, GENERATED ALWAYS, continuing where the old one stood, by 2.
    let max = one(&c, "SELECT max(id) FROM nodes").await;
    assert_eq!(
        text(&c, "SELECT attidentity::text || ' ' || pg_get_serial_sequence('nodes', 'id') FROM pg_attribute WHERE attrelid = 'nodes'::regclass AND attname = 'id'").await,
        "a public.nodes_id_seq"
    );
    assert_eq!(
        one(&c, "INSERT INTO nodes (name) VALUES ('after') RETURNING id").await,
        max + 2
    );
    nothing_left(&c, "nodes").await;
}

#[tokio::test]
async fn a_killed_key_change_continues_to_the_same_result() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(&c, KEY_SCHEMA).await;
    let before = constraints_of(&c, "orders").await;
    let dir = folder(&[(
        "20260101000000_customer_id_bigint.up.sql",
        "ALTER TABLE customers ALTER COLUMN id TYPE bigint;\n",
    )]);
    stop_up_at(&db, &c, &dir, &[40, 150, 500]).await;
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up continues");
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(type_of(&c, "orders", "customer_id").await, "bigint");
    assert_eq!(constraints_of(&c, "orders").await, before);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM orders WHERE customer_id <> 1 + id % 4000"
        )
        .await,
        0
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_index WHERE NOT indisvalid").await,
        0
    );
    for t in ["customers", "orders", "notes", "tags"] {
        nothing_left(&c, t).await;
    }
}

#[tokio::test]
async fn a_key_change_that_cannot_hold_the_values_or_needs_using_is_refused() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(&c, KEY_SCHEMA).await;
    exec(&c, "INSERT INTO customers (id, name) VALUES (40000, 'big')").await;
    let before = constraints_of(&c, "orders").await;
    // A narrowing the values do not fit: refused before anything is written.
    let dir = folder(&[(
        "20260101000000_customer_id_smallint.up.sql",
        "ALTER TABLE customers ALTER COLUMN id TYPE smallint;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let err = m.up(None, &Silent).await.expect_err("40000 is no smallint");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot be computed for every row") && msg.contains("Nothing was changed"),
        "{msg}"
    );
    assert_eq!(type_of(&c, "orders", "customer_id").await, "integer");
    assert_eq!(constraints_of(&c, "orders").await, before);
    for t in ["customers", "orders", "notes", "tags"] {
        nothing_left(&c, t).await;
    }
    // USING on a key that foreign keys follow: the referencing columns would need it too.
    let dir = folder(&[(
        "20260101000000_customer_id_using.up.sql",
        "ALTER TABLE customers ALTER COLUMN id TYPE bigint USING id * 10;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let planned = m
        .online_plan(&m.set().migrations[0].clone())
        .await
        .expect("plan");
    let Planned::AsWritten(why) = planned else {
        panic!("not online: {planned:?}")
    };
    assert!(
        why.contains("20260101000000_customer_id_using.up.sql:1")
            && why.contains("USING expression on a key"),
        "{why}"
    );
}

#[tokio::test]
async fn an_enum_label_rename_serves_old_and_new_writers_then_retires_the_old_label() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TYPE mood AS ENUM ('happy', 'sad', 'calm');
         CREATE TABLE people (id bigserial PRIMARY KEY, mood mood NOT NULL DEFAULT 'sad', note text);
         CREATE TABLE diary (id bigserial PRIMARY KEY, mood mood);
         INSERT INTO people (mood) SELECT (ARRAY['happy', 'sad', 'calm']::mood[])[1 + g % 3] FROM generate_series(1, 6000) g;
         INSERT INTO diary (mood) SELECT CASE WHEN g % 2 = 0 THEN 'sad'::mood END FROM generate_series(1, 2000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_unhappy.up.sql",
        "ALTER TYPE mood RENAME VALUE 'sad' TO 'unhappy';\n",
    )]);
    let labels = "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'mood'::regtype";
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let model: Model = Arc::default();
    // Old code knows 'sad' only (and the column's default); it owns the odd rows.
    let old_app = app(
        db.url(),
        stop.clone(),
        model.clone(),
        errors.clone(),
        |i| match i % 3 {
            0 => "INSERT INTO people (note) VALUES ('old') RETURNING id, mood".into(),
            1 => format!(
                "UPDATE people SET mood = 'sad' WHERE id = {} RETURNING id, mood",
                (i * 7) % 6000 / 2 * 2 + 1
            ),
            _ => "INSERT INTO diary (mood) VALUES ('sad') RETURNING id + 1000000, mood".into(),
        },
    );
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    assert_eq!(text(&c, labels).await, "happy,sad,unhappy,calm");
    // New code writes 'unhappy'; it owns the even rows.
    let new_stop = Arc::new(AtomicBool::new(false));
    let new_app = app(
        db.url(),
        new_stop.clone(),
        model.clone(),
        errors.clone(),
        |i| {
            format!(
                "UPDATE people SET mood = 'unhappy' WHERE id = {} RETURNING id, mood",
                (i * 13) % 6000 / 2 * 2 + 2
            )
        },
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        one(&c, "SELECT count(*) FROM people WHERE mood = 'sad'").await,
        0,
        "writes of 'sad' are turned into 'unhappy'"
    );
    settle(&stop, vec![old_app]).await;
    m.complete(None, &Silent).await.expect("complete");
    tokio::time::sleep(Duration::from_millis(100)).await;
    settle(&new_stop, vec![new_app]).await;
    no_errors(&errors);

    assert_eq!(
        text(&c, labels).await,
        "happy,sad (renamed to unhappy),unhappy,calm"
    );
    // Every row written 'sad' by the old code reads 'unhappy'.
    let expected: Model = Arc::new(Mutex::new(
        model
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| **id < 1_000_000)
            .map(|(id, v)| (*id, v.replace("sad", "unhappy")))
            .collect(),
    ));
    rows_match(&c, &expected, "people", "mood").await;
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM diary WHERE mood::text LIKE 'sad%'"
        )
        .await,
        0
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM diary WHERE mood = 'unhappy'").await,
        1000 + one(&c, "SELECT count(*) FROM diary WHERE id > 2000").await
    );
    assert_eq!(
        text(
            &c,
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef JOIN pg_attribute ON attrelid = adrelid AND attnum = adnum WHERE adrelid = 'people'::regclass AND attname = 'mood'"
        )
        .await,
        "'unhappy'::mood"
    );
    // As after the statement as written: 'sad' is no longer a value.
    assert!(c
        .batch_execute("INSERT INTO people (mood) VALUES ('sad')")
        .await
        .is_err());
    nothing_left(&c, "people").await;
    nothing_left(&c, "diary").await;
}

#[tokio::test]
async fn an_enum_label_rename_rolls_back_to_the_old_label_and_refuses_what_names_it() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE TABLE people (id bigserial PRIMARY KEY, mood mood);
         INSERT INTO people (mood) SELECT CASE WHEN g % 2 = 0 THEN 'sad'::mood ELSE 'happy' END FROM generate_series(1, 3000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_unhappy.up.sql",
        "ALTER TYPE mood RENAME VALUE 'sad' TO 'unhappy';\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    exec(&c, "INSERT INTO people (mood) VALUES ('unhappy')").await;
    assert_eq!(
        one(&c, "SELECT count(*) FROM people WHERE mood = 'unhappy'").await,
        1501
    );
    m.rollback(None, &Silent).await.expect("rollback");
    assert_eq!(
        one(&c, "SELECT count(*) FROM people WHERE mood = 'sad'").await,
        1501
    );
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Pending);
    nothing_left(&c, "people").await;
    // A CHECK naming the label would mean something else after the rename: as written, with
    // the reason.
    exec(
        &c,
        "ALTER TABLE people ADD CONSTRAINT not_sad CHECK (mood <> 'sad' OR id > 0)",
    )
    .await;
    let planned = m
        .online_plan(&m.set().migrations[0].clone())
        .await
        .expect("plan");
    let Planned::AsWritten(why) = planned else {
        panic!("not online: {planned:?}")
    };
    assert!(
        why.contains("constraint not_sad on people") && why.contains("names 'sad'"),
        "{why}"
    );
    // Renaming a label to another that rows hold would merge two values: refused.
    exec(&c, "ALTER TABLE people DROP CONSTRAINT not_sad").await;
    let dir = folder(&[(
        "20260101000000_merge.up.sql",
        "ALTER TYPE mood RENAME VALUE 'happy' TO 'sad';\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let planned = m
        .online_plan(&m.set().migrations[0].clone())
        .await
        .expect("plan");
    let Planned::AsWritten(why) = planned else {
        panic!("not online: {planned:?}")
    };
    assert!(why.contains("would merge two values"), "{why}");
}

#[tokio::test]
async fn two_changes_to_one_table_share_one_backfill_pass_and_one_contract_transaction() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL, b int, c text);
         INSERT INTO t SELECT g, g, g * 2, 'c' || g FROM generate_series(1, 20000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_widen.up.sql",
        "ALTER TABLE t ALTER COLUMN a TYPE bigint;\nALTER TABLE t ALTER COLUMN b TYPE bigint;\nALTER TABLE t RENAME COLUMN c TO label;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = m
        .online_plan(&m.set().migrations[0].clone())
        .await
        .expect("plan")
    else {
        panic!("planned online")
    };
    let backfills: Vec<&str> = plan
        .expand
        .iter()
        .filter(|u| u.kind == pgshift_runner::online::UnitKind::Backfill)
        .map(|u| u.sql[0].as_str())
        .collect();
    assert_eq!(
        backfills,
        [
            r#"UPDATE "public"."t" SET "pgshift_new_t_a" = "a", "pgshift_new_t_b" = "b", "label" = "c""#
        ],
        "one pass: {:#?}",
        plan.expand
    );
    // The NOT NULL proof of the new `a` comes after the shared pass.
    let pass = plan
        .expand
        .iter()
        .position(|u| u.kind == pgshift_runner::online::UnitKind::Backfill)
        .unwrap();
    let proof = plan
        .expand
        .iter()
        .position(|u| u.what.starts_with("validate pgshift_nn_t_a"))
        .unwrap();
    assert!(proof > pass, "{:#?}", plan.expand);
    assert_eq!(
        plan.contract
            .iter()
            .filter(|u| u.sql.first().is_some_and(|s| s.starts_with("LOCK TABLE")))
            .count(),
        1
    );
    m.up(None, &Silent).await.expect("up expands");
    exec(
        &c,
        "INSERT INTO t (id, a, b, c) VALUES (20001, 5, 6, 'new')",
    )
    .await;
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM t WHERE a <> id OR b <> id * 2 OR label <> 'c' || id"
        )
        .await,
        1
    );
    assert_eq!(
        text(
            &c,
            "SELECT a || ',' || b || ',' || label FROM t WHERE id = 20001"
        )
        .await,
        "5,6,new"
    );
    assert_eq!(type_of(&c, "t", "a").await, "bigint");
    assert_eq!(type_of(&c, "t", "b").await, "bigint");
    // The columns that took the old ones' place have statistics: the planner does not guess.
    assert_eq!(
        one(&c, "SELECT count(DISTINCT attname) FROM pg_stats WHERE schemaname = 'public' AND tablename = 't' AND attname IN ('a', 'b', 'label')").await,
        3
    );
    nothing_left(&c, "t").await;
}

/// A partitioned table two levels deep, with a plain index, a UNIQUE constraint and a CHECK on
/// the column that changes.
const PARTITIONED_SCHEMA: &str = "
    CREATE TABLE orders (id bigserial, region int NOT NULL, amount int NOT NULL DEFAULT 0, note text,
                         PRIMARY KEY (id, region),
                         CONSTRAINT amount_positive CHECK (amount >= 0),
                         CONSTRAINT orders_note_amount UNIQUE (note, amount, region) INCLUDE (id))
        PARTITION BY LIST (region);
    CREATE TABLE orders_1 PARTITION OF orders FOR VALUES IN (1);
    CREATE TABLE orders_2 PARTITION OF orders FOR VALUES IN (2, 3) PARTITION BY LIST (region);
    CREATE TABLE orders_2a PARTITION OF orders_2 FOR VALUES IN (2);
    CREATE TABLE orders_2b PARTITION OF orders_2 FOR VALUES IN (3);
    CREATE INDEX orders_amount_idx ON orders (amount);
    INSERT INTO orders (region, amount, note) SELECT 1 + g % 3, g, 'n' || g FROM generate_series(1, 20000) g;
    ANALYZE orders;";

/// Every index of the partitioned table and its partitions, with its definition.
async fn partition_indexes(c: &Connection) -> String {
    text(
        c,
        "SELECT string_agg(i.indexrelid::regclass::text || ':' || pg_get_indexdef(i.indexrelid)
                           || ':' || i.indisvalid, E'\n' ORDER BY i.indexrelid::regclass::text)
           FROM pg_index i
          WHERE i.indrelid IN (SELECT relid FROM pg_partition_tree('orders'))",
    )
    .await
}

#[tokio::test]
async fn a_partitioned_tables_column_changes_type_online_through_kills_while_the_application_writes(
) {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(&c, PARTITIONED_SCHEMA).await;
    let indexes_before = partition_indexes(&c).await;
    let dir = folder(&[(
        "20260101000000_amount_bigint.up.sql",
        "ALTER TABLE orders ALTER COLUMN amount TYPE bigint;\n",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let model: Model = Arc::default();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let apps: Vec<_> = (0..2u64)
        .map(|k| {
            app(db.url(), stop.clone(), model.clone(), errors.clone(), move |i| {
                let id = (i * 37 + k * 11) % 20000 / 2 * 2 + k + 1;
                match i % 3 {
                    0 => format!("INSERT INTO orders (region, amount, note) VALUES ({}, {}, 'new {k} {i}') RETURNING id, amount", 1 + i % 3, i + k),
                    1 => format!("INSERT INTO orders (region, note) VALUES ({}, 'default {k} {i}') RETURNING id, amount", 1 + i % 3),
                    _ => format!("UPDATE orders SET amount = amount + 1 WHERE id = {id} RETURNING id, amount"),
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = m
        .online_plan(&m.set().migrations[0].clone())
        .await
        .expect("plan")
    else {
        panic!("planned online")
    };
    // Each leaf's indexes built concurrently on their own; none on a partitioned table.
    let builds: Vec<&str> = plan
        .expand
        .iter()
        .filter(|u| u.kind == pgshift_runner::online::UnitKind::Outside)
        .map(|u| u.sql[0].as_str())
        .collect();
    assert_eq!(builds.len(), 6, "{builds:#?}");
    for leaf in ["orders_1", "orders_2a", "orders_2b"] {
        assert_eq!(
            builds
                .iter()
                .filter(|b| b.contains(&format!("\"{leaf}\"")))
                .count(),
            2,
            "{builds:#?}"
        );
    }
    // Killed at several moments (the expand's steps, the backfill of each leaf).
    stop_up_at(&db, &c, &dir, &[60, 250, 700]).await;
    m.up(None, &Silent).await.expect("up continues");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    assert_eq!(type_of(&c, "orders", "amount").await, "integer");
    tokio::time::sleep(Duration::from_millis(200)).await;
    m.complete(None, &Silent).await.expect("complete");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ops = settle(&stop, apps).await;
    assert!(ops > 50, "the application ran ({ops} statements)");
    no_errors(&errors);

    for t in ["orders", "orders_1", "orders_2", "orders_2a", "orders_2b"] {
        assert_eq!(type_of(&c, t, "amount").await, "bigint", "{t}");
        nothing_left(&c, t).await;
    }
    assert_eq!(
        text(&c, "SELECT attnotnull::text || ' ' || pg_get_expr(adbin, adrelid) FROM pg_attribute JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum WHERE attrelid = 'orders'::regclass AND attname = 'amount'").await,
        "true 0"
    );
    // The same indexes, with the same names, on every level, all valid; the constraints too.
    assert_eq!(partition_indexes(&c).await, indexes_before);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'amount_positive' AND convalidated"
        )
        .await,
        5
    );
    assert_eq!(
        text(&c, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'orders_note_amount' AND conrelid = 'orders'::regclass").await,
        "UNIQUE (note, amount, region) INCLUDE (id)"
    );
    rows_match(&c, &model, "orders", "amount").await;
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM orders WHERE id <= 20000 AND amount >= id"
        )
        .await,
        20000
    );
}

#[tokio::test]
async fn a_partitioned_table_gets_a_filled_not_null_column_and_a_rename_and_can_roll_back() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(&c, PARTITIONED_SCHEMA).await;
    let dir = folder(&[(
        "20260101000000_total_and_label.up.sql",
        "ALTER TABLE orders ADD COLUMN total bigint;\nUPDATE orders SET total = amount * 100;\nALTER TABLE orders ALTER COLUMN total SET NOT NULL;\nALTER TABLE orders RENAME COLUMN note TO label;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    // Old code writes the old names, new code the new ones.
    exec(
        &c,
        "INSERT INTO orders (region, amount, note) VALUES (2, 7, 'old')",
    )
    .await;
    exec(
        &c,
        "INSERT INTO orders (region, amount, total, label) VALUES (3, 8, 800, 'new')",
    )
    .await;
    assert_eq!(
        text(&c, "SELECT string_agg(concat_ws(',', amount, total, note, label), ' ' ORDER BY id) FROM orders WHERE id > 20000").await,
        "7,700,old,old 8,800,new,new"
    );
    // Rolled back: the expand undone on every partition, the rows written meanwhile kept.
    m.rollback(None, &Silent).await.expect("rollback");
    for t in ["orders", "orders_1", "orders_2a"] {
        nothing_left(&c, t).await;
        assert_eq!(
            one(&c, &format!("SELECT count(*) FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname IN ('total', 'label') AND NOT attisdropped")).await,
            0
        );
    }
    assert_eq!(
        text(
            &c,
            "SELECT string_agg(note, ' ' ORDER BY id) FROM orders WHERE id > 20000"
        )
        .await,
        "old new"
    );
    // Then done for real.
    m.up(None, &Silent).await.expect("up again");
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        one(&c, "SELECT count(*) FROM orders WHERE total IS DISTINCT FROM amount * 100 OR label IS NULL").await,
        0
    );
    assert_eq!(
        text(&c, "SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 'orders_2b'::regclass AND attname = 'total'").await,
        "true"
    );
    assert_eq!(
        text(&c, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'orders_note_amount' AND conrelid = 'orders'::regclass").await,
        "UNIQUE (label, amount, region) INCLUDE (id)"
    );
    nothing_left(&c, "orders").await;
}

#[tokio::test]
async fn an_enum_label_rename_reaches_every_partition_of_a_partitioned_table() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE TABLE readings (id bigserial, region int NOT NULL, mood mood NOT NULL DEFAULT 'sad',
                                PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE readings_1 PARTITION OF readings FOR VALUES IN (1);
         CREATE TABLE readings_2 PARTITION OF readings FOR VALUES IN (2);
         INSERT INTO readings (region, mood) SELECT 1 + g % 2, (ARRAY['happy', 'sad']::mood[])[1 + g % 2] FROM generate_series(1, 4000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_unhappy.up.sql",
        "ALTER TYPE mood RENAME VALUE 'sad' TO 'unhappy';\n",
    )]);
    // Killed at several moments (the label added, the partitions' rows rewritten), then run
    // again to the same result.
    stop_up_at(&db, &c, &dir, &[40, 150, 400]).await;
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    // Old code still writes 'sad', into either partition, and reads 'unhappy' back.
    exec(&c, "INSERT INTO readings (region) VALUES (1), (2); INSERT INTO readings (region, mood) VALUES (2, 'sad')").await;
    assert_eq!(
        one(&c, "SELECT count(*) FROM readings WHERE mood::text = 'sad'").await,
        0
    );
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        one(&c, "SELECT count(*) FROM readings WHERE mood = 'unhappy'").await,
        2003
    );
    for t in ["readings", "readings_1", "readings_2"] {
        assert_eq!(
            text(&c, &format!("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef JOIN pg_attribute ON attrelid = adrelid AND attnum = adnum WHERE adrelid = '{t}'::regclass AND attname = 'mood'")).await,
            "'unhappy'::mood",
            "{t}"
        );
        nothing_left(&c, t).await;
    }
    assert!(c
        .batch_execute("INSERT INTO readings (region, mood) VALUES (1, 'sad')")
        .await
        .is_err());
}

#[tokio::test]
async fn online_migrations_on_different_tables_expand_together_and_complete_together() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t1 (id int PRIMARY KEY, a int NOT NULL, b text);
         CREATE TABLE t2 (id int PRIMARY KEY, x text);
         INSERT INTO t1 SELECT g, g, 'b' || g FROM generate_series(1, 3000) g;
         INSERT INTO t2 SELECT g, 'x' || g FROM generate_series(1, 3000) g;",
    )
    .await;
    let dir = folder(&[
        (
            "20260101000001_a_bigint.up.sql",
            "ALTER TABLE t1 ALTER COLUMN a TYPE bigint;\n",
        ),
        (
            "20260101000002_x_to_y.up.sql",
            "ALTER TABLE t2 RENAME COLUMN x TO y;\n",
        ),
        // Same table as the first: waits for it to be completed.
        (
            "20260101000003_b_to_c.up.sql",
            "ALTER TABLE t1 RENAME COLUMN b TO c;\n",
        ),
        ("20260101000004_plain.up.sql", "CREATE TABLE t3 (id int);\n"),
    ]);
    let mut m = migrator(&db, &dir, fast()).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer = move |e: &pgshift_runner::Event| seen.lock().unwrap().push(format!("{e:?}"));
    m.up(None, &observer).await.expect("up");
    assert_eq!(state_of(&m, "20260101000001").await, EntryState::Expanded);
    assert_eq!(state_of(&m, "20260101000002").await, EntryState::Expanded);
    assert_eq!(state_of(&m, "20260101000003").await, EntryState::Pending);
    assert_eq!(state_of(&m, "20260101000004").await, EntryState::Pending);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("20260101000003 b_to_c waits")
                && e.contains("20260101000001")
                && e.contains("changes a table an online change in progress holds")),
        "{:#?}",
        events.lock().unwrap()
    );
    // Old code and new code of both changes work at once.
    exec(&c, "UPDATE t1 SET a = a + 1 WHERE id = 1; UPDATE t2 SET x = 'old' WHERE id = 1; UPDATE t2 SET y = 'new' WHERE id = 2").await;
    // The first cannot be rolled back from under the second.
    let err = m
        .rollback(Some(&Version::parse("20260101000001").unwrap()), &Silent)
        .await
        .expect_err("the second was expanded on top");
    assert!(err.to_string().contains("roll it back first"), "{err}");
    assert_eq!(state_of(&m, "20260101000001").await, EntryState::Expanded);
    // `complete` completes both, oldest first.
    let done = m.complete(None, &Silent).await.expect("complete");
    let versions: Vec<&str> = done.iter().map(|d| d.version.as_str()).collect();
    assert_eq!(versions, ["20260101000001", "20260101000002"]);
    assert_eq!(type_of(&c, "t1", "a").await, "bigint");
    assert_eq!(
        text(
            &c,
            "SELECT string_agg(y, ',' ORDER BY id) FROM t2 WHERE id <= 2"
        )
        .await,
        "old,new"
    );
    assert_eq!(one(&c, "SELECT a FROM t1 WHERE id = 1").await, 2);
    // Then the third expands, and the ordinary one after it waits for its contract.
    m.up(None, &Silent).await.expect("up again");
    assert_eq!(state_of(&m, "20260101000003").await, EntryState::Expanded);
    assert_eq!(state_of(&m, "20260101000004").await, EntryState::Pending);
    // `rollback` without a version undoes every change in progress.
    let undone = m.rollback(None, &Silent).await.expect("rollback");
    assert_eq!(undone.len(), 1);
    assert_eq!(state_of(&m, "20260101000003").await, EntryState::Pending);
    nothing_left(&c, "t1").await;
    nothing_left(&c, "t2").await;
}

#[tokio::test]
async fn a_partitioned_tables_serial_key_becomes_bigint_through_kills_while_old_code_inserts() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE events (id serial, region int NOT NULL, payload text,
                              PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE events_1 PARTITION OF events FOR VALUES IN (1);
         CREATE TABLE events_2 PARTITION OF events FOR VALUES IN (2, 3) PARTITION BY LIST (region);
         CREATE TABLE events_2a PARTITION OF events_2 FOR VALUES IN (2);
         CREATE TABLE events_2b PARTITION OF events_2 FOR VALUES IN (3);
         INSERT INTO events (region, payload) SELECT 1 + g % 3, 'p' || g FROM generate_series(1, 15000) g;
         ANALYZE events;",
    )
    .await;
    let constraints = "SELECT string_agg(conrelid::regclass::text || ':' || conname || ':' || pg_get_constraintdef(oid), ' | ' ORDER BY conrelid::regclass::text, conname) FROM pg_constraint WHERE conrelid IN (SELECT relid FROM pg_partition_tree('events'))";
    let before = text(&c, constraints).await;
    let dir = folder(&[(
        "20260101000000_events_id_bigint.up.sql",
        "ALTER TABLE events ALTER COLUMN id TYPE bigint;\n",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let model: Model = Arc::default();
    let errors = Arc::new(Mutex::new(Vec::new()));
    // Old code inserts (taking sequence values) and updates its rows by key.
    let apps: Vec<_> = (0..2u64)
        .map(|k| {
            app(db.url(), stop.clone(), model.clone(), errors.clone(), move |i| {
                let id = (i * 41 + k * 7) % 15000 / 2 * 2 + k + 1;
                match i % 2 {
                    0 => format!("INSERT INTO events (region, payload) VALUES ({}, 'new {k} {i}') RETURNING id, payload", 1 + i % 3),
                    _ => format!("UPDATE events SET payload = payload || '+' WHERE id = {id} RETURNING id, payload"),
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_up_at(&db, &c, &dir, &[80, 300, 800]).await;
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up continues");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    tokio::time::sleep(Duration::from_millis(200)).await;
    m.complete(None, &Silent).await.expect("complete");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ops = settle(&stop, apps).await;
    assert!(ops > 50, "the application ran ({ops} statements)");
    no_errors(&errors);

    for t in ["events", "events_1", "events_2", "events_2a", "events_2b"] {
        assert_eq!(type_of(&c, t, "id").await, "bigint", "{t}");
        nothing_left(&c, t).await;
    }
    // The primary key on every level, with its names; the sequence widened and still used.
    assert_eq!(text(&c, constraints).await, before);
    assert_eq!(
        text(&c, "SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = pg_get_serial_sequence('events', 'id')::regclass").await,
        "bigint"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_index WHERE NOT indisvalid").await,
        0
    );
    rows_match(&c, &model, "events", "payload").await;
    exec(&c, "INSERT INTO events (region) VALUES (2)").await;
    assert_eq!(
        one(&c, "SELECT count(*) - count(DISTINCT id) FROM events").await,
        0
    );
}

#[tokio::test]
async fn a_check_after_its_cleanup_is_added_online_while_old_code_keeps_writing_bad_values() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE accounts (id bigserial PRIMARY KEY, balance int NOT NULL, note text);
         INSERT INTO accounts (balance, note) SELECT g % 100 - 10, 'n' || g FROM generate_series(1, 8000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_balance_nonneg.up.sql",
        "UPDATE accounts SET balance = 0 WHERE balance < 0;\nALTER TABLE accounts ADD CONSTRAINT balance_nonneg CHECK (balance >= 0);\n",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let model: Model = Arc::default();
    let errors = Arc::new(Mutex::new(Vec::new()));
    // Old code still writes negative balances, on its own rows and in new ones.
    let old_app = app(
        db.url(),
        stop.clone(),
        model.clone(),
        errors.clone(),
        |i| match i % 2 {
            0 => format!(
                "UPDATE accounts SET balance = -{} WHERE id = {} RETURNING id, balance",
                i % 7,
                1 + (i * 13) % 8000
            ),
            _ => format!(
                "INSERT INTO accounts (balance) VALUES (-{}) RETURNING id, balance",
                i % 5
            ),
        },
    );
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = m
        .online_plan(&m.set().migrations[0].clone())
        .await
        .expect("plan")
    else {
        panic!("planned online")
    };
    assert!(
        plan.expand
            .iter()
            .any(|u| u.kind == pgshift_runner::online::UnitKind::Backfill
                && u.sql[0].starts_with("UPDATE accounts SET balance = 0")),
        "{:#?}",
        plan.expand
    );
    // Killed at several moments while old code writes, then run again.
    stop_up_at(&db, &c, &dir, &[40, 150]).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    tokio::time::sleep(Duration::from_millis(300)).await;
    settle(&stop, vec![old_app]).await;
    no_errors(&errors);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'balance_nonneg' AND convalidated"
        )
        .await,
        1
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM accounts WHERE balance < 0").await,
        0
    );
    // What old code wrote before the expand was cleaned by the backfill; what it wrote
    // after, by the trigger as it was written (RETURNING saw 0).
    let expected: Model = Arc::new(Mutex::new(
        model
            .lock()
            .unwrap()
            .iter()
            .map(|(id, v)| {
                (
                    *id,
                    if v.starts_with('-') {
                        "0".to_string()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect(),
    ));
    rows_match(&c, &expected, "accounts", "balance").await;
    m.complete(None, &Silent).await.expect("complete");
    nothing_left(&c, "accounts").await;
    // As after the statements as written: a negative balance is refused now.
    assert!(c
        .batch_execute("INSERT INTO accounts (balance) VALUES (-1)")
        .await
        .is_err());
    assert_eq!(
        one(&c, "SELECT count(*) FROM accounts WHERE balance < 0").await,
        0
    );
}

#[tokio::test]
async fn a_cleanup_that_leaves_rows_breaking_the_check_stops_before_it_with_examples() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
         INSERT INTO accounts SELECT g, g - 50 FROM generate_series(1, 1000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_balance_nonneg.up.sql",
        "UPDATE accounts SET balance = 0 WHERE balance < -10;\nALTER TABLE accounts ADD CONSTRAINT balance_nonneg CHECK (balance >= 0);\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let err = m.up(None, &Silent).await.expect_err("rows -10..-1 stay");
    let msg = err.to_string();
    assert!(
        msg.contains("break CHECK constraint balance_nonneg")
            && msg.contains("\"balance\":-")
            && msg.contains("the cleanup (line 1) leaves those rows")
            && msg.contains("20260101000000_balance_nonneg.up.sql:2:"),
        "{msg}"
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'balance_nonneg'"
        )
        .await,
        0
    );
    m.rollback(None, &Silent).await.expect("rollback");
    nothing_left(&c, "accounts").await;
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Pending);
}

#[tokio::test]
async fn a_key_referenced_from_a_partitioned_table_becomes_bigint_with_its_foreign_key() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE events (id bigserial, region int NOT NULL,
                              customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE,
                              PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE events_1 PARTITION OF events FOR VALUES IN (1);
         CREATE TABLE events_2 PARTITION OF events FOR VALUES IN (2);
         CREATE INDEX events_customer_idx ON events (customer_id);
         INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 3000) g;
         INSERT INTO events (region, customer_id) SELECT 1 + g % 2, 1 + g % 3000 FROM generate_series(1, 12000) g;
         ANALYZE;",
    )
    .await;
    let constraints = "SELECT string_agg(conrelid::regclass::text || ':' || conname || ':' || pg_get_constraintdef(oid), ' | ' ORDER BY conrelid::regclass::text, conname) FROM pg_constraint WHERE conrelid IN (SELECT relid FROM pg_partition_tree('events') UNION SELECT 'customers'::regclass)";
    let before = text(&c, constraints).await;
    let dir = folder(&[(
        "20260101000000_customer_id_bigint.up.sql",
        "ALTER TABLE customers ALTER COLUMN id TYPE bigint;\n",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    // Old code inserts customers (new sequence values) and events for them.
    let old_app = app(
        db.url(),
        stop.clone(),
        Arc::default(),
        errors.clone(),
        |i| {
            format!(
            "WITH c AS (INSERT INTO customers (name) VALUES ('new {i}') RETURNING id)
             INSERT INTO events (region, customer_id) SELECT {}, id FROM c RETURNING id, customer_id",
            1 + i % 2
        )
        },
    );
    stop_up_at(&db, &c, &dir, &[60, 250]).await;
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up continues");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    tokio::time::sleep(Duration::from_millis(200)).await;
    m.complete(None, &Silent).await.expect("complete");
    settle(&stop, vec![old_app]).await;
    no_errors(&errors);
    for t in ["events", "events_1", "events_2"] {
        assert_eq!(type_of(&c, t, "customer_id").await, "bigint", "{t}");
        nothing_left(&c, t).await;
    }
    assert_eq!(type_of(&c, "customers", "id").await, "bigint");
    nothing_left(&c, "customers").await;
    // The same constraints, names and definitions, on every partition.
    assert_eq!(text(&c, constraints).await, before);
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"
        )
        .await,
        0
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM events e LEFT JOIN customers c ON c.id = e.customer_id WHERE c.id IS NULL").await,
        0
    );
    // ON DELETE CASCADE reaches every partition.
    exec(&c, "DELETE FROM customers WHERE id <= 10").await;
    assert_eq!(
        one(&c, "SELECT count(*) FROM events WHERE customer_id <= 10").await,
        0
    );
}

#[tokio::test]
async fn a_partitioned_tables_key_referenced_by_another_table_becomes_bigint() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE events (id serial, region int NOT NULL, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE events_1 PARTITION OF events FOR VALUES IN (1);
         CREATE TABLE events_2 PARTITION OF events FOR VALUES IN (2);
         CREATE TABLE notes (id bigserial PRIMARY KEY, event_id int NOT NULL, region int NOT NULL, body text,
                             FOREIGN KEY (event_id, region) REFERENCES events ON DELETE CASCADE);
         INSERT INTO events (region) SELECT 1 + g % 2 FROM generate_series(1, 6000) g;
         INSERT INTO notes (event_id, region, body) SELECT id, region, 'n' FROM events;
         ANALYZE;",
    )
    .await;
    let constraints = "SELECT string_agg(conrelid::regclass::text || ':' || conname || ':' || pg_get_constraintdef(oid) || ':' || convalidated, ' | ' ORDER BY conrelid::regclass::text, conname) FROM pg_constraint WHERE conrelid IN (SELECT relid FROM pg_partition_tree('events') UNION SELECT 'notes'::regclass) AND conparentid = 0";
    let before = text(&c, constraints).await;
    let dir = folder(&[(
        "20260101000000_event_id_bigint.up.sql",
        "ALTER TABLE events ALTER COLUMN id TYPE bigint;\n",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let old_app = app(
        db.url(),
        stop.clone(),
        Arc::default(),
        errors.clone(),
        |i| {
            format!(
            "WITH e AS (INSERT INTO events (region) VALUES ({}) RETURNING id, region)
             INSERT INTO notes (event_id, region, body) SELECT id, region, 'new' FROM e RETURNING id, body",
            1 + i % 2
        )
        },
    );
    stop_up_at(&db, &c, &dir, &[60, 250]).await;
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up continues");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    tokio::time::sleep(Duration::from_millis(200)).await;
    m.complete(None, &Silent).await.expect("complete");
    settle(&stop, vec![old_app]).await;
    no_errors(&errors);
    for (t, col) in [("events", "id"), ("events_1", "id"), ("notes", "event_id")] {
        assert_eq!(type_of(&c, t, col).await, "bigint", "{t}.{col}");
        nothing_left(&c, t).await;
    }
    // The primary key on every level and the foreign key to it, validated, as before.
    assert_eq!(text(&c, constraints).await, before);
    exec(&c, "DELETE FROM events WHERE id <= 10").await;
    assert_eq!(
        one(&c, "SELECT count(*) FROM notes WHERE event_id <= 10").await,
        0
    );
}

#[tokio::test]
async fn a_value_the_new_type_cannot_hold_is_refused_during_the_window_never_cut_short() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE codes (id serial PRIMARY KEY, code text NOT NULL);
         INSERT INTO codes (code) SELECT 'c' || g FROM generate_series(1, 2000) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_code_varchar.up.sql",
        "ALTER TABLE codes ALTER COLUMN code TYPE varchar(8);\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    // Old code writing a value too long for varchar(8) gets the error the statement as
    // written would give it, not a value cut to 8 characters.
    let err = c
        .batch_execute("INSERT INTO codes (code) VALUES ('much too long a code')")
        .await
        .expect_err("too long");
    assert_eq!(
        err.as_db_error().map(|d| d.code().code()),
        Some("22001"),
        "{err}"
    );
    exec(&c, "UPDATE codes SET code = 'short' WHERE id = 1").await;
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(type_of(&c, "codes", "code").await, "character varying(8)");
    assert_eq!(
        text(
            &c,
            "SELECT string_agg(code, ',' ORDER BY id) FROM codes WHERE id <= 3"
        )
        .await,
        "short,c2,c3"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM codes WHERE code = 'much too'").await,
        0
    );
}

#[tokio::test]
async fn a_partitioned_tables_identity_key_becomes_bigint_and_its_identity_goes_on() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE logs (id int GENERATED BY DEFAULT AS IDENTITY (START WITH 100 INCREMENT BY 2),
                            region int NOT NULL, line text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE logs_1 PARTITION OF logs FOR VALUES IN (1);
         CREATE TABLE logs_2 PARTITION OF logs FOR VALUES IN (2);
         INSERT INTO logs (region, line) SELECT 1 + g % 2, 'l' || g FROM generate_series(1, 4000) g;",
    )
    .await;
    let seq = "SELECT pg_get_serial_sequence('logs', 'id')";
    let seq_before = text(&c, seq).await;
    let dir = folder(&[(
        "20260101000000_logs_id_bigint.up.sql",
        "ALTER TABLE logs ALTER COLUMN id TYPE bigint;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    // Old code inserts, taking identity values, during the window.
    exec(
        &c,
        "INSERT INTO logs (region, line) VALUES (1, 'during'), (2, 'during')",
    )
    .await;
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(type_of(&c, "logs", "id").await, "bigint");
    assert_eq!(text(&c, seq).await, seq_before);
    exec(&c, "INSERT INTO logs (region, line) VALUES (2, 'after')").await;
    // The identity went on where it stood: no value taken twice, the step kept.
    assert_eq!(
        one(&c, "SELECT count(*) - count(DISTINCT id) FROM logs").await,
        0
    );
    assert_eq!(
        one(
            &c,
            "SELECT id - lag(id) OVER (ORDER BY id) FROM logs ORDER BY id DESC LIMIT 1"
        )
        .await,
        2
    );
    assert_eq!(
        text(&c, "SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'logs'::regclass AND attname = 'id'").await,
        "d"
    );
    nothing_left(&c, "logs").await;
}

#[tokio::test]
async fn a_key_between_two_partitioned_tables_becomes_bigint_with_both_foreign_keys() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE events (id serial, region int NOT NULL, parent_id int,
                              PRIMARY KEY (id, region),
                              FOREIGN KEY (parent_id, region) REFERENCES events) PARTITION BY LIST (region);
         CREATE TABLE events_1 PARTITION OF events FOR VALUES IN (1);
         CREATE TABLE events_2 PARTITION OF events FOR VALUES IN (2);
         CREATE TABLE items (id bigserial, region int NOT NULL, event_id int NOT NULL,
                             PRIMARY KEY (id, region),
                             FOREIGN KEY (event_id, region) REFERENCES events ON DELETE CASCADE) PARTITION BY LIST (region);
         CREATE TABLE items_1 PARTITION OF items FOR VALUES IN (1);
         CREATE TABLE items_2 PARTITION OF items FOR VALUES IN (2);
         INSERT INTO events (region) SELECT 1 + g % 2 FROM generate_series(1, 4000) g;
         UPDATE events SET parent_id = id - 2 WHERE id > 2;
         INSERT INTO items (region, event_id) SELECT region, id FROM events;
         ANALYZE;",
    )
    .await;
    // (Without the clones PostgreSQL keeps for each referenced partition, whose numbered names
    // are its own business: PostgreSQL 18 numbers them on.)
    let constraints = "SELECT string_agg(conrelid::regclass::text || ':' || conname || ':' || pg_get_constraintdef(oid) || ':' || convalidated, ' | ' ORDER BY conrelid::regclass::text, conname) FROM pg_constraint WHERE conrelid IN (SELECT relid FROM pg_partition_tree('events') UNION SELECT relid FROM pg_partition_tree('items')) AND NOT coalesce((SELECT relispartition FROM pg_class WHERE oid = confrelid), false)";
    let before = text(&c, constraints).await;
    let dir = folder(&[(
        "20260101000000_event_id_bigint.up.sql",
        "ALTER TABLE events ALTER COLUMN id TYPE bigint;\n",
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let old_app = app(
        db.url(),
        stop.clone(),
        Arc::default(),
        errors.clone(),
        |i| {
            format!(
            "WITH e AS (INSERT INTO events (region, parent_id) VALUES ({0}, {1}) RETURNING id, region)
             INSERT INTO items (region, event_id) SELECT region, id FROM e RETURNING id, event_id",
            1 + i % 2,
            // An event of the same region (event g is in region 1 + g % 2).
            2 + i % 2 + 2 * (i % 100),
        )
        },
    );
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    tokio::time::sleep(Duration::from_millis(200)).await;
    m.complete(None, &Silent).await.expect("complete");
    settle(&stop, vec![old_app]).await;
    no_errors(&errors);
    for (t, col) in [
        ("events_1", "id"),
        ("events_2", "parent_id"),
        ("items_1", "event_id"),
    ] {
        assert_eq!(type_of(&c, t, col).await, "bigint", "{t}.{col}");
    }
    for t in ["events", "items"] {
        nothing_left(&c, t).await;
    }
    // Every constraint on every level as before, validated, with its name.
    assert_eq!(text(&c, constraints).await, before);
    exec(&c, "DELETE FROM items WHERE event_id <= 10; DELETE FROM events WHERE id <= 10 AND id NOT IN (SELECT parent_id FROM events WHERE parent_id IS NOT NULL)").await;
}

#[tokio::test]
async fn a_cleanup_that_reads_what_it_writes_is_not_applied_twice_it_runs_as_written() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE prices (id int PRIMARY KEY, amount numeric NOT NULL);
         INSERT INTO prices SELECT g, g / 10.0 FROM generate_series(1, 500) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_cents.up.sql",
        "UPDATE prices SET amount = amount * 100 WHERE amount < 10;\nALTER TABLE prices ADD CONSTRAINT amount_min CHECK (amount >= 10);\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    assert!(
        matches!(
            m.online_plan(&m.set().migrations[0].clone())
                .await
                .expect("plan"),
            Planned::Ordinary
        ),
        "applied again, the cleanup would multiply again: not online"
    );
    m.up(None, &Silent).await.expect("up");
    // Each row multiplied once: 0.1 became 10, never 1000.
    assert_eq!(
        text(
            &c,
            "SELECT min(amount)::int || ' ' || max(amount)::int FROM prices WHERE id <= 99"
        )
        .await,
        "10 990"
    );
}

#[tokio::test]
async fn a_partitions_own_index_on_the_column_makes_the_change_run_as_written_saying_why() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(&c, PARTITIONED_SCHEMA).await;
    exec(
        &c,
        "CREATE INDEX orders_1_amount_note ON orders_1 (amount, note)",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_amount_bigint.up.sql",
        "ALTER TABLE orders ALTER COLUMN amount TYPE bigint;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::AsWritten(why) = m
        .online_plan(&m.set().migrations[0].clone())
        .await
        .expect("plan")
    else {
        panic!("not online")
    };
    assert!(
        why.contains("index orders_1_amount_note on partition orders_1 is the partition's own"),
        "{why}"
    );
}

/// The plan of the set's only migration.
async fn planned(m: &mut Migrator) -> Planned {
    let first = m.set().migrations[0].clone();
    m.online_plan(&first).await.expect("plan")
}

#[tokio::test]
async fn a_column_a_copy_cannot_carry_is_renamed_through_a_view_while_both_versions_write() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    // A CHECK names the column, a view reads it, an expression index uses it: a copy of the
    // column could carry none of them; renamed in place, all follow.
    exec(
        &c,
        "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL DEFAULT 'none@x' CHECK (email LIKE '%@%'), visits int NOT NULL DEFAULT 0);
         CREATE INDEX users_email_lower ON users (lower(email));
         CREATE VIEW user_emails AS SELECT id, email FROM users;
         CREATE ROLE pgshift_view_reader;
         GRANT SELECT, INSERT, UPDATE ON users TO pgshift_view_reader;
         INSERT INTO users (email) SELECT 'u' || g || '@x' FROM generate_series(1, 3000) g;",
    )
    .await;
    let oid = one(&c, "SELECT 'users'::regclass::oid::bigint").await;
    let dir = folder(&[(
        "20260101000000_rename.up.sql",
        "ALTER TABLE users RENAME COLUMN email TO email_address;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = planned(&mut m).await else {
        panic!("online")
    };
    assert_eq!(
        plan.operations[0].summary,
        "rename public.users.email to email_address through a view (no copy)"
    );
    assert!(!plan
        .expand
        .iter()
        .any(|u| u.kind == pgshift_runner::online::UnitKind::Backfill));

    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let old_model: Model = Arc::default();
    // The old application knows `email` only; it owns the odd rows and inserts new ones,
    // through ON CONFLICT too.
    let old_app = app(
        db.url(),
        stop.clone(),
        old_model.clone(),
        errors.clone(),
        |i| {
            match i % 4 {
            0 => format!("INSERT INTO users (email) VALUES ('old{i}@x') RETURNING id, email"),
            1 => "INSERT INTO users (visits) VALUES (1) RETURNING id, email".into(),
            2 => format!(
                "INSERT INTO users (id, email) VALUES ({id}, 'old{i}@x') ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email RETURNING id, email",
                id = (i * 7) % 3000 / 2 * 2 + 1
            ),
            _ => format!(
                "UPDATE users SET email = 'old edit {i}@x' WHERE id = {} RETURNING id, email",
                (i * 11) % 3000 / 2 * 2 + 1
            ),
        }
        },
    );
    m_up_expanded(&db, &dir).await;
    // The table kept its oid, under pgshift's name; a view has its name.
    assert_eq!(
        text(&c, "SELECT relkind::text || ' ' || (SELECT relname::text FROM pg_class WHERE oid = 'users'::regclass) FROM pg_class WHERE oid = 'users'::regclass").await,
        "v users"
    );
    assert_eq!(
        one(&c, &format!("SELECT count(*) FROM pg_class WHERE oid = {oid} AND relname LIKE 'pgshift_renaming_users_email%'")).await,
        1
    );
    assert_eq!(
        text(&c, "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants WHERE table_name = 'users' AND grantee = 'pgshift_view_reader'").await,
        "INSERT,SELECT,UPDATE",
        "the view has the table's grants"
    );

    let new_stop = Arc::new(AtomicBool::new(false));
    let new_model: Model = Arc::default();
    let new_app = app(
        db.url(),
        new_stop.clone(),
        new_model.clone(),
        errors.clone(),
        |i| {
            match i % 3 {
            0 => format!("INSERT INTO users (email_address) VALUES ('new{i}@x') RETURNING id, email_address"),
            1 => format!("SELECT id, email_address FROM users WHERE id = {}", (i * 13) % 3000 / 2 * 2 + 2),
            _ => format!(
                "UPDATE users SET email_address = 'new edit {i}@x' WHERE id = {} RETURNING id, email_address",
                (i * 13) % 3000 / 2 * 2 + 2
            ),
        }
        },
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A bad value is refused by the CHECK whichever name it is written through.
    let bad = c
        .batch_execute("UPDATE users SET email = 'no at sign' WHERE id = 1")
        .await
        .expect_err("CHECK holds through the old name");
    assert_eq!(
        bad.code(),
        Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
    );
    assert!(
        bad.as_db_error()
            .is_some_and(|d| d.message().contains("pgshift_renaming_users_email")),
        "{bad:?}"
    );
    // What needs the table itself fails through the view, changing nothing.
    assert!(c.batch_execute("TRUNCATE users").await.is_err());
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM users WHERE email IS DISTINCT FROM email_address"
        )
        .await,
        0
    );
    let old_ops = settle(&stop, vec![old_app]).await;
    assert!(old_ops > 20);
    let mut m = migrator(&db, &dir, fast()).await;
    m.complete(None, &Silent).await.expect("complete");
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle(&new_stop, vec![new_app]).await;
    no_errors(&errors);

    rows_match(&c, &old_model, "users", "email_address").await;
    rows_match(&c, &new_model, "users", "email_address").await;
    // The same table, under its name, with the column renamed and everything on it kept.
    assert_eq!(one(&c, "SELECT 'users'::regclass::oid::bigint").await, oid);
    assert_eq!(
        text(&c, "SELECT pg_get_indexdef('users_email_lower'::regclass)").await,
        "CREATE INDEX users_email_lower ON public.users USING btree (lower(email_address))"
    );
    assert_eq!(
        text(&c, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'c'").await,
        "CHECK ((email_address ~~ '%@%'::text))"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM user_emails").await,
        one(&c, "SELECT count(*) FROM users").await
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'pgshift%'"
        )
        .await,
        0
    );
    nothing_left(&c, "users").await;
}

#[tokio::test]
async fn a_view_rename_is_refused_where_the_view_cannot_stand_in_and_markers_are_checked() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id int PRIMARY KEY, a text CHECK (a <> ''), b text);
         CREATE ROLE pgshift_column_reader;
         INSERT INTO t VALUES (1, 'x', 'y');",
    )
    .await;
    let why = |p: Planned| match p {
        Planned::AsWritten(why) => why,
        other => panic!("not refused: {other:?}"),
    };
    // The copy, asked for, cannot carry a column a CHECK names.
    let dir = folder(&[(
        "20260101000000_r.up.sql",
        "-- pgshift:rename copy\nALTER TABLE t RENAME COLUMN a TO c;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let reason = why(planned(&mut m).await);
    assert!(
        reason.contains(
            "20260101000000_r.up.sql:2: to rename public.t.a by a copy: CHECK constraint"
        ) && reason.contains("without `-- pgshift:rename copy` pgshift renames it through a view"),
        "{reason}"
    );
    // A view cannot carry privileges granted on single columns: neither way works.
    exec(&c, "GRANT SELECT (a) ON t TO pgshift_column_reader").await;
    let dir = folder(&[(
        "20260101000000_r.up.sql",
        "ALTER TABLE t RENAME COLUMN a TO c;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let reason = why(planned(&mut m).await);
    assert!(
        reason.contains("a copy of the column cannot carry it (CHECK constraint")
            && reason.contains("privileges are granted on single columns"),
        "{reason}"
    );
    // Nor may another statement of the migration name the table the view stands for.
    exec(&c, "REVOKE SELECT (a) ON t FROM pgshift_column_reader").await;
    for other in [
        "ALTER TABLE t RENAME COLUMN b TO d;",
        "ALTER TABLE t DROP COLUMN b;",
    ] {
        let dir = folder(&[(
            "20260101000000_r.up.sql",
            &format!("ALTER TABLE t RENAME COLUMN a TO c;\n{other}\n"),
        )]);
        let mut m = migrator(&db, &dir, fast()).await;
        let reason = why(planned(&mut m).await);
        assert!(
            reason.contains("_r.up.sql:2: rename public.t.a to c through a view (no copy): during the window a view takes the name public.t"),
            "{other}: {reason}"
        );
    }
    // A function that names the column would break from the expand on: a trigger's would
    // fail every write. The view is not used (and here the copy cannot carry the column).
    exec(
        &c,
        "CREATE FUNCTION t_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.a = 'z' THEN RAISE NOTICE 'z'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER t_audit BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION t_audit();
         CREATE FUNCTION count_b() RETURNS bigint LANGUAGE sql AS $$ SELECT count(b) FROM t $$;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_r.up.sql",
        "ALTER TABLE t RENAME COLUMN a TO c;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let reason = why(planned(&mut m).await);
    assert!(
        reason.contains("function t_audit() names the column in its body"),
        "{reason}"
    );
    let dir = folder(&[(
        "20260101000000_r.up.sql",
        "-- pgshift:rename view\nALTER TABLE t RENAME COLUMN b TO d;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let reason = why(planned(&mut m).await);
    assert!(
        reason.contains("through a view: function count_b() names the column"),
        "{reason}"
    );
    // Without the marker the copy serves it, and the function keeps working meanwhile.
    let dir = folder(&[(
        "20260101000000_r.up.sql",
        "ALTER TABLE t RENAME COLUMN b TO d;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = planned(&mut m).await else {
        panic!("online")
    };
    // ... until `complete` drops b, which the plan says before anything runs.
    assert_eq!(
        plan.caveats,
        ["function count_b() names public.t.b in its body: it works until `pgshift complete` drops b and fails from then on; change it to d before you complete (PostgreSQL does not follow a rename into a function body)"]
    );
    // The same for a column dropped at contract.
    let dir = folder(&[("20260101000000_r.up.sql", "ALTER TABLE t DROP COLUMN b;\n")]);
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = planned(&mut m).await else {
        panic!("online")
    };
    assert_eq!(
        plan.caveats,
        ["function count_b() names public.t.b in its body: it works until `pgshift complete` drops the column and fails from then on; change it before you complete"]
    );
    exec(
        &c,
        "DROP TRIGGER t_audit ON t; DROP FUNCTION t_audit(); DROP FUNCTION count_b();",
    )
    .await;
    // Names are shown as SQL would need them.
    exec(
        &c,
        "CREATE TABLE \"Mixed\" (id int PRIMARY KEY, \"UserName\" text)",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_r.up.sql",
        "ALTER TABLE \"Mixed\" RENAME COLUMN \"UserName\" TO \"DisplayName\";\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = planned(&mut m).await else {
        panic!("online")
    };
    assert_eq!(
        plan.operations[0].summary,
        "rename public.\"Mixed\".\"UserName\" to \"DisplayName\""
    );
    // A marker on a statement that renames no column: `up` says where, and changes nothing.
    let dir = folder(&[(
        "20260101000000_r.up.sql",
        "CREATE TABLE u (x int);\n-- pgshift:rename view\nALTER TABLE t ADD COLUMN e int;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let err = m.up(None, &Silent).await.expect_err("misplaced marker");
    assert!(
        err.to_string().contains("20260101000000_r.up.sql")
            && err.to_string().contains(":3")
            && err
                .to_string()
                .contains("marks a statement that does not rename a column"),
        "{err}"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_class WHERE relname = 'u'").await,
        0
    );
    // A misspelled marker is not ignored: the author asked for something pgshift would not do.
    for marker in ["-- pgshift:rename veiw", "-- pgshift:renmae view"] {
        let dir = folder(&[(
            "20260101000000_r.up.sql",
            &format!("CREATE TABLE u (x int);\n{marker}\nALTER TABLE t RENAME COLUMN a TO c;\n"),
        )]);
        let mut m = migrator(&db, &dir, fast()).await;
        let err = m.up(None, &Silent).await.expect_err("misspelled marker");
        assert!(
            err.to_string().contains("20260101000000_r.up.sql")
                && err.to_string().contains(":2")
                && (err.to_string().contains("is not a directive")
                    || err.to_string().contains("unknown directive")),
            "{err}"
        );
        assert_eq!(
            one(&c, "SELECT count(*) FROM pg_class WHERE relname = 'u'").await,
            0
        );
    }
}

#[tokio::test]
async fn a_rollback_before_the_view_was_made_leaves_the_table_as_it_is() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE customers (id int PRIMARY KEY);
         CREATE TABLE audit (n int CHECK (n > 0));
         INSERT INTO customers VALUES (1);",
    )
    .await;
    // The expand stops at its first unit, before the table is renamed.
    let dir = folder(&[(
        "20260101000000_rename_table.up.sql",
        "INSERT INTO audit VALUES (0);\nALTER TABLE customers RENAME TO clients;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect_err("the INSERT fails");
    m.rollback(None, &Silent).await.expect("rollback");
    assert_eq!(
        text(
            &c,
            "SELECT relkind::text FROM pg_class WHERE oid = 'customers'::regclass"
        )
        .await,
        "r"
    );
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Pending);
}

#[tokio::test]
async fn a_later_migration_naming_a_table_behind_a_view_waits_for_the_complete() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE users (id bigserial PRIMARY KEY, full_name text);
         CREATE TABLE other (id int PRIMARY KEY, a text);
         INSERT INTO users (full_name) VALUES ('x');",
    )
    .await;
    // The second migration is online (a rename of another table's column) and builds an index
    // on the first one's table, whose name is a view's until the first completes.
    let dir = folder(&[
        (
            "20260101000000_rename.up.sql",
            "-- pgshift:rename view\nALTER TABLE users RENAME COLUMN full_name TO display_name;\n",
        ),
        (
            "20260102000000_index.up.sql",
            "ALTER TABLE other RENAME COLUMN a TO b;\nCREATE INDEX users_display_name ON users (display_name);\n",
        ),
    ]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands the first");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    assert_eq!(state_of(&m, "20260102000000").await, EntryState::Pending);
    m.complete(None, &Silent).await.expect("complete");
    m.up(None, &Silent).await.expect("up expands the second");
    assert_eq!(state_of(&m, "20260102000000").await, EntryState::Expanded);
    assert_eq!(
        text(&c, "SELECT pg_get_indexdef('users_display_name'::regclass)").await,
        "CREATE INDEX users_display_name ON public.users USING btree (display_name)"
    );
}

/// A column renamed through a view on every listed server (`PGSHIFT_PG_BINS`, besides the
/// machine's): both names serve reads and writes, NOT NULL and the table's grants hold, the
/// contract leaves the table as the statement would. Before PostgreSQL 15 (no
/// `security_invoker`) a table with row-level security is refused, never served by a view
/// that would bypass its policies.
#[tokio::test]
async fn a_column_renamed_through_a_view_on_every_listed_server() {
    for pg_bin in pgshift_db::testing::listed_servers() {
        let (cluster, major, on) = pgshift_db::testing::start_cluster(pg_bin).await;
        let url = cluster.url();
        let c = pgshift_db::connect(&url).await.expect("connect");
        exec(
            &c,
            "CREATE TABLE users (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL CHECK (email <> ''));
             CREATE TABLE notes (id int PRIMARY KEY, body text);
             INSERT INTO users (email) VALUES ('a@x'), ('b@x');",
        )
        .await;
        let dir = folder(&[(
            "20260101000000_rename.up.sql",
            "ALTER TABLE users RENAME COLUMN email TO email_address;\n",
        )]);
        let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
        let mut m = Migrator::connect(&url, set, fast())
            .await
            .expect("migrator");
        m.up(None, &Silent)
            .await
            .unwrap_or_else(|e| panic!("{on}: {e}"));
        exec(
            &c,
            "INSERT INTO users (email) VALUES ('old@x');
             INSERT INTO users (email_address) VALUES ('new@x');
             UPDATE users SET email = 'a2@x' WHERE id = 1;",
        )
        .await;
        assert_eq!(
            text(
                &c,
                "SELECT string_agg(email || '=' || email_address, ',' ORDER BY id) FROM users"
            )
            .await,
            "a2@x=a2@x,b@x=b@x,old@x=old@x,new@x=new@x",
            "{on}"
        );
        assert!(
            c.batch_execute("INSERT INTO users (email) VALUES (NULL)")
                .await
                .is_err(),
            "{on}: NOT NULL holds through the view"
        );
        m.complete(None, &Silent)
            .await
            .unwrap_or_else(|e| panic!("{on}: {e}"));
        assert_eq!(
            text(&c, "SELECT relkind::text || ' ' || string_agg(attname, ',' ORDER BY attnum) FROM pg_class JOIN pg_attribute ON attrelid = oid WHERE oid = 'users'::regclass AND attnum > 0 GROUP BY relkind").await,
            "r id,email_address",
            "{on}"
        );

        // Row-level security: served through a view only where the view applies it to the
        // user who queries.
        exec(&c, "ALTER TABLE notes ENABLE ROW LEVEL SECURITY").await;
        let dir = folder(&[(
            "20260102000000_rename.up.sql",
            "-- pgshift:rename view\nALTER TABLE notes RENAME COLUMN body TO text;\n",
        )]);
        let set = load(dir.path(), Some(Format::Pgshift)).expect("load");
        let mut m = Migrator::connect(&url, set, fast())
            .await
            .expect("migrator");
        let first = m.set().migrations[0].clone();
        let planned = m.online_plan(&first).await.expect("plan");
        match (major >= 15, planned) {
            (true, Planned::Online(_)) => {}
            (false, Planned::AsWritten(why)) => assert!(
                why.contains("row-level security is on, and before PostgreSQL 15"),
                "{on}: {why}"
            ),
            (_, other) => panic!("{on}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_key_column_a_foreign_key_references_is_renamed_through_a_view() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE authors (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text);
         CREATE TABLE posts (id int PRIMARY KEY, author_id int NOT NULL REFERENCES authors (id));
         INSERT INTO authors (name) VALUES ('a'), ('b');
         INSERT INTO posts VALUES (1, 1), (2, 2);",
    )
    .await;
    let dir = folder(&[
        (
            "20260101000000_rename_key.up.sql",
            "ALTER TABLE authors RENAME COLUMN id TO author_id;\n",
        ),
        (
            "20260102000000_rename_fk.up.sql",
            "ALTER TABLE posts RENAME COLUMN author_id TO writer_id;\n",
        ),
    ]);
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::Online(plan) = planned(&mut m).await else {
        panic!("online")
    };
    assert!(
        plan.operations[0]
            .summary
            .ends_with("through a view (no copy)"),
        "{}",
        plan.operations[0].summary
    );
    // Each expands (they change different tables); old and new names of both work at once.
    m.up(None, &Silent).await.expect("up");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    assert_eq!(state_of(&m, "20260102000000").await, EntryState::Expanded);
    exec(
        &c,
        "INSERT INTO authors (name) VALUES ('c');
         INSERT INTO posts (id, author_id) SELECT 3, id FROM authors WHERE name = 'c';
         INSERT INTO posts (id, writer_id) SELECT 4, author_id FROM authors WHERE name = 'a';
         UPDATE posts SET author_id = 2 WHERE id = 1;",
    )
    .await;
    let err = c
        .batch_execute("INSERT INTO posts (id, writer_id) VALUES (5, 99)")
        .await
        .expect_err("the foreign key holds through the views");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
    );
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        text(&c, "SELECT string_agg(p.id || ':' || a.name, ',' ORDER BY p.id) FROM posts p JOIN authors a ON a.author_id = p.writer_id").await,
        "1:b,2:b,3:c,4:a"
    );
    assert_eq!(
        text(&c, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'posts'::regclass AND contype = 'f'").await,
        "FOREIGN KEY (writer_id) REFERENCES authors(author_id)"
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND (relname LIKE 'pgshift%' OR relkind = 'v')"
        )
        .await,
        0
    );
}

/// Objects a copy cannot carry, which only PostgreSQL's dependencies show (a policy, a
/// trigger's `WHEN`, extended statistics): a type change runs as written saying why (its
/// contract could not drop the old column), a rename is made through the view, and they follow.
#[tokio::test]
async fn what_only_dependencies_show_keeps_a_copy_from_being_planned() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TABLE docs (id int PRIMARY KEY, level int NOT NULL, body text);
         ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
         CREATE POLICY low ON docs USING (level < 10);
         INSERT INTO docs VALUES (1, 1, 'a'), (2, 20, 'b');",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_level_bigint.up.sql",
        "ALTER TABLE docs ALTER COLUMN level TYPE bigint;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    let Planned::AsWritten(why) = planned(&mut m).await else {
        panic!("a copy of level cannot drop the column at contract")
    };
    assert!(
        why.contains("policy low on table docs depends on it"),
        "{why}"
    );
    for (setup, what) in [
        (
            "DROP POLICY low ON docs; CREATE FUNCTION docs_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
             CREATE TRIGGER docs_high BEFORE UPDATE ON docs FOR EACH ROW WHEN (NEW.level > 100) EXECUTE FUNCTION docs_noop();",
            "trigger docs_high on table docs depends on it",
        ),
        (
            "DROP TRIGGER docs_high ON docs; CREATE STATISTICS docs_st ON level, body FROM docs;",
            "statistics object docs_st depends on it",
        ),
    ] {
        exec(&c, setup).await;
        let mut m = migrator(&db, &dir, fast()).await;
        let Planned::AsWritten(why) = planned(&mut m).await else {
            panic!("{what}")
        };
        assert!(why.contains(what), "{why}");
    }
    // A rename is made in place, behind the view: the policy and the statistics follow.
    exec(&c, "CREATE POLICY low ON docs USING (level < 10)").await;
    let dir = folder(&[(
        "20260101000000_level_tier.up.sql",
        "ALTER TABLE docs RENAME COLUMN level TO tier;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up");
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        text(
            &c,
            "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polname = 'low'"
        )
        .await,
        "(tier < 10)"
    );
    assert_eq!(
        text(&c, "SELECT pg_get_statisticsobjdef_columns(oid) FROM pg_statistic_ext WHERE stxname = 'docs_st'").await,
        "tier, body"
    );
}

async fn types_named(c: &Connection, name: &str) -> i64 {
    one(
        c,
        &format!("SELECT count(*) FROM pg_type WHERE typname = '{name}'"),
    )
    .await
}

/// The enum swap (found in coder/coder's migrations): a new enum, the column retyped to it,
/// the old type dropped and the new one given its name. The old column keeps the old type
/// through the window, so the drop and the rename wait for the contract.
#[tokio::test]
async fn an_enum_swap_drops_and_renames_its_types_at_contract() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TYPE job_type AS ENUM ('import', 'build');
         CREATE TABLE jobs (id bigserial PRIMARY KEY, type job_type NOT NULL);
         INSERT INTO jobs (type) SELECT 'build' FROM generate_series(1, 50);",
    )
    .await;
    let swap = "CREATE TYPE new_job_type AS ENUM ('import', 'build', 'dry_run');

ALTER TABLE jobs
	ALTER COLUMN \"type\" TYPE new_job_type USING (\"type\"::text::new_job_type);

DROP TYPE job_type;
ALTER TYPE new_job_type RENAME TO job_type;
";
    let dir = folder(&[("20260101000000_job_type_dry_run.up.sql", swap)]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    // Old code keeps writing the old type's labels through the window.
    exec(&c, "INSERT INTO jobs (type) VALUES ('import')").await;
    assert_eq!(type_of(&c, "jobs", "type").await, "job_type");
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(type_of(&c, "jobs", "type").await, "job_type");
    assert_eq!(
        text(&c, "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'job_type'::regtype").await,
        "import,build,dry_run"
    );
    assert_eq!(types_named(&c, "new_job_type").await, 0);
    assert_eq!(
        one(&c, "SELECT count(*) FROM jobs WHERE type = 'build'").await,
        50
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM jobs WHERE type = 'import'").await,
        1
    );
    exec(&c, "INSERT INTO jobs (type) VALUES ('dry_run')").await;

    // Rolled back instead, the expand's new type goes with its column, so `start` can run
    // the file again.
    let dir = folder(&[(
        "20260102000000_job_type_more.up.sql",
        "CREATE TYPE job_type_v3 AS ENUM ('import', 'build', 'dry_run', 'cleanup');
ALTER TABLE jobs ALTER COLUMN type TYPE job_type_v3 USING (type::text::job_type_v3);
DROP TYPE job_type;
ALTER TYPE job_type_v3 RENAME TO job_type;
",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    m.rollback(None, &Silent).await.expect("rollback");
    assert_eq!(types_named(&c, "job_type_v3").await, 0);
    m.up(None, &Silent).await.expect("up expands again");
    m.complete(None, &Silent).await.expect("complete");
    exec(&c, "INSERT INTO jobs (type) VALUES ('cleanup')").await;
    nothing_left(&c, "jobs").await;
}

/// A dropped column's type is dropped at contract too; a primary key column dropped, or a
/// column added again under a dropped one's name, cannot be split: run as written.
#[tokio::test]
async fn what_a_dropped_column_still_holds_waits_for_the_contract() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    exec(
        &c,
        "CREATE TYPE log_source AS ENUM ('startup', 'shutdown');
         CREATE TABLE logs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), source log_source NOT NULL DEFAULT 'startup', line text);
         INSERT INTO logs (line) SELECT 'l' || g FROM generate_series(1, 20) g;",
    )
    .await;
    let dir = folder(&[(
        "20260101000000_drop_source.up.sql",
        "ALTER TABLE logs DROP COLUMN source;\nDROP TYPE log_source;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260101000000").await, EntryState::Expanded);
    exec(
        &c,
        "INSERT INTO logs (source, line) VALUES ('shutdown', 'old code')",
    )
    .await;
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(types_named(&c, "log_source").await, 0);

    // The primary key column dropped and a new key added under its name (coder/coder's
    // 000071): no online plan can keep the name for both; `up` runs it as written.
    let dir = folder(&[(
        "20260102000000_serial_id.up.sql",
        "ALTER TABLE logs DROP COLUMN id;\n\nALTER TABLE logs ADD COLUMN id BIGSERIAL PRIMARY KEY;\n",
    )]);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer = move |e: &pgshift_runner::Event| seen.lock().unwrap().push(format!("{e:?}"));
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &observer).await.expect("up runs it as written");
    assert_eq!(state_of(&m, "20260102000000").await, EntryState::Applied);
    assert_eq!(type_of(&c, "logs", "id").await, "bigint");
    let events = events.lock().unwrap().join("\n");
    assert!(events.contains("is in the primary key"), "{events}");

    // Not a key: the column added again under the dropped name.
    let dir = folder(&[(
        "20260103000000_line_again.up.sql",
        "ALTER TABLE logs DROP COLUMN line;\nALTER TABLE logs ADD COLUMN line varchar(200);\n",
    )]);
    let mut options = fast();
    options.online_required = true;
    let mut m = migrator(&db, &dir, options).await;
    let err = m.up(None, &Silent).await.expect_err("start refuses");
    assert!(
        err.to_string()
            .contains("adds line again, which line 1 drops")
            && err.to_string().contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(type_of(&c, "logs", "line").await, "text");
}

/// On tables this run made (a fresh database: CI, a developer's first `up`) no code ran
/// before the run, so a breaking change runs as written, as an ordinary migration: `up` goes
/// through the whole folder at a plain runner's speed. A table that was there before the run
/// still gets its online change. On a database that held no table at all, `up` says so once
/// instead of once per migration.
#[tokio::test]
async fn breaking_changes_to_tables_this_run_made_run_as_written() {
    let db = TestDb::new().await;
    let c = db.connect().await;
    // A table of the application's that the migrations do not touch: the database is not a
    // fresh one, so each migration is judged by its own tables.
    exec(&c, "CREATE TABLE other (id int)").await;
    let dir = folder(&[
        (
            "20260101000000_items.up.sql",
            "CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY, a text NOT NULL, legacy int);\nINSERT INTO items VALUES (1, 'x', 1);\n",
        ),
        ("20260102000000_rename.up.sql", "ALTER TABLE items RENAME COLUMN a TO b;\n"),
        ("20260103000000_move.up.sql", "ALTER TABLE items RENAME TO goods;\n"),
        ("20260104000000_drop.up.sql", "ALTER TABLE goods DROP COLUMN legacy;\n"),
    ]);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer = move |e: &pgshift_runner::Event| seen.lock().unwrap().push(format!("{e:?}"));
    let mut m = migrator(&db, &dir, fast()).await;
    let applied = m.up(None, &observer).await.expect("up");
    assert_eq!(applied.len(), 4);
    for v in ["20260102000000", "20260103000000", "20260104000000"] {
        assert_eq!(state_of(&m, v).await, EntryState::Applied);
    }
    assert_eq!(text(&c, "SELECT b FROM goods").await, "x");
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_class WHERE relname = 'items'").await,
        0,
        "no view stands for the old name"
    );
    nothing_left(&c, "goods").await;
    let events = events.lock().unwrap().join("\n");
    assert_eq!(
        events
            .matches("runs as written, not as an online change")
            .count(),
        3,
        "{events}"
    );

    // The same folder on a fresh database: the same end, and one line says why.
    let fresh = TestDb::new().await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer = move |e: &pgshift_runner::Event| seen.lock().unwrap().push(format!("{e:?}"));
    migrator(&fresh, &dir, fast())
        .await
        .up(None, &observer)
        .await
        .expect("up on a fresh database");
    let events = events.lock().unwrap().join("\n");
    assert_eq!(
        events.matches("the database holds no table yet").count(),
        1,
        "{events}"
    );
    assert!(!events.contains("not as an online change"), "{events}");
    assert_eq!(
        text(&fresh.connect().await, "SELECT b FROM goods").await,
        "x"
    );

    // The next run finds the table there: its change is online again.
    let dir = folder(&[(
        "20260105000000_rename_again.up.sql",
        "ALTER TABLE goods RENAME COLUMN b TO c;\n",
    )]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260105000000").await, EntryState::Expanded);
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(text(&c, "SELECT c FROM goods").await, "x");

    // A label rename names no table, but reaches every table using the type: one that was
    // there before the run keeps the change online, though the file's other table is new.
    exec(
        &c,
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
         ALTER TABLE goods ADD COLUMN mood mood NOT NULL DEFAULT 'sad';",
    )
    .await;
    let dir = folder(&[
        (
            "20260106000000_notes.up.sql",
            "CREATE TABLE notes (id int PRIMARY KEY, a text);
",
        ),
        (
            "20260107000000_blue.up.sql",
            "ALTER TABLE notes RENAME COLUMN a TO b;
ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';
",
        ),
    ]);
    let mut m = migrator(&db, &dir, fast()).await;
    m.up(None, &Silent).await.expect("up expands");
    assert_eq!(state_of(&m, "20260107000000").await, EntryState::Expanded);
    // Old code still writes the old label meanwhile.
    exec(&c, "INSERT INTO goods (id, c, mood) VALUES (2, 'y', 'sad')").await;
    m.complete(None, &Silent).await.expect("complete");
    assert_eq!(
        one(&c, "SELECT count(*) FROM goods WHERE mood = 'blue'").await,
        2
    );
}
