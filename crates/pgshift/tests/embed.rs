//! Migrations compiled into a binary run like a directory on disk.

use pgshift::embed::{manifest, Embedded};
use pgshift_db::testing::TestDb;

static SHOP: Embedded = Embedded {
    dir: "migrations",
    files: &[
        ("20240101000000_users.sql", b"-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY);\n-- migrate:down\nDROP TABLE users;\n"),
        ("20240102000000_orders.sql", b"-- migrate:up\nCREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);\n-- migrate:down\nDROP TABLE orders;\n"),
    ],
};

#[tokio::test]
async fn embedded_migrations_apply_once_and_name_their_build_time_paths() {
    let set = SHOP.load(None).expect("load");
    assert_eq!(
        set.format,
        pgshift_source::Format::Dbmate,
        "the format is detected from the embedded files"
    );
    assert_eq!(
        set.migrations[0].up.path,
        std::path::Path::new("migrations/20240101000000_users.sql")
    );
    assert!(set.migrations[0].down.is_some());

    let db = TestDb::new().await;
    let url = db.url().to_string();
    let applied = pgshift::embed::migrate(&url, &SHOP).await.expect("migrate");
    assert_eq!(applied.len(), 2);
    let again = pgshift::embed::migrate(&url, &SHOP)
        .await
        .expect("migrate again");
    assert!(again.is_empty(), "a second start-up applies nothing");
}

#[test]
fn the_manifest_embeds_every_file_including_nested_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("meta")).expect("mkdir");
    std::fs::write(dir.path().join("0000_init.sql"), "CREATE TABLE a (id int);").expect("write");
    std::fs::write(dir.path().join("meta/_journal.json"), "{}").expect("write");
    std::fs::write(dir.path().join(".gitkeep"), "").expect("write");
    let code = manifest(dir.path()).expect("manifest");
    assert!(
        code.contains("(\"0000_init.sql\", include_bytes!("),
        "{code}"
    );
    assert!(
        code.contains("(\"meta/_journal.json\", include_bytes!("),
        "{code}"
    );
    assert!(
        !code.contains(".gitkeep"),
        "hidden files are not embedded: {code}"
    );
}
