//! Property tests: no file name, file content or text makes this crate panic, and what it hands
//! out is always usable (ranges inside the file, on character boundaries; sorted, unique versions).

use std::fs;

use pgshift_source::{from_text, load, Format, MigrationSet, Script, Version};
use proptest::prelude::*;

/// File names built from the pieces the formats look for, so that many of them match a pattern.
fn file_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("V".to_owned()),
        Just("U".to_owned()),
        Just("R".to_owned()),
        Just("__".to_owned()),
        Just("_".to_owned()),
        Just(".".to_owned()),
        Just("-".to_owned()),
        Just("up".to_owned()),
        Just("down".to_owned()),
        Just(".sql".to_owned()),
        Just(".up.sql".to_owned()),
        Just(".down.sql".to_owned()),
        Just(".conf".to_owned()),
        "[0-9]{1,3}",
        "[a-zé]{1,4}",
    ];
    prop::collection::vec(piece, 1..6)
        .prop_map(|parts| parts.concat())
        .prop_filter("a usable file name", |n| {
            !n.is_empty() && n != "." && n != ".." && !n.contains('/') && n.len() < 100
        })
}

/// Contents mixing SQL with every marker the formats read.
fn content() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("-- migrate:up".to_owned()),
        Just("-- migrate:down transaction:false".to_owned()),
        Just("-- +goose Up".to_owned()),
        Just("-- +goose Down".to_owned()),
        Just("-- +goose NO TRANSACTION".to_owned()),
        Just("-- +goose StatementBegin".to_owned()),
        Just("-- Up Migration".to_owned()),
        Just("-- Down Migration".to_owned()),
        Just("-- no-transaction".to_owned()),
        Just("-- pgshift:no-transaction".to_owned()),
        Just("-- atlas:txmode none".to_owned()),
        Just("-- atlas:sum ignore".to_owned()),
        Just("executeInTransaction=false".to_owned()),
        Just("select 1;".to_owned()),
        Just("$$ é ü $$;".to_owned()),
        "\\PC{0,20}",
    ];
    let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\r"), Just("")];
    prop::collection::vec((line, ending), 0..8)
        .prop_map(|lines| lines.into_iter().map(|(l, e)| format!("{l}{e}")).collect())
}

fn check_script(script: &Script) {
    assert!(script.range.start <= script.range.end && script.range.end <= script.file_text.len());
    assert!(
        script.file_text.is_char_boundary(script.range.start)
            && script.file_text.is_char_boundary(script.range.end)
    );
    assert_eq!(script.sql().len(), script.range.len());
    assert_eq!(script.checksum().len(), 64);
}

fn check_set(set: &MigrationSet) {
    for pair in set.migrations.windows(2) {
        assert!(pair[0].version < pair[1].version, "sorted and unique");
    }
    for m in set.migrations.iter().chain(&set.repeatable) {
        check_script(&m.up);
        if let Some(down) = &m.down {
            check_script(down);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_directories_never_panic(files in prop::collection::vec((file_name(), content()), 0..6), in_subdir in any::<bool>()) {
        let tmp = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (name, text) in &files {
            let path = if in_subdir { tmp.path().join("m").join(name) } else { tmp.path().join(name) };
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            // A name may already exist as a directory from an earlier entry; that is fine to skip.
            let _ = fs::write(&path, text);
        }
        if let Ok(set) = load(tmp.path(), None) {
            check_set(&set);
        }
        for format in Format::all() {
            if let Ok(set) = load(tmp.path(), Some(*format)) {
                check_set(&set);
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(name in "\\PC{0,12}", text in content()) {
        let migration = from_text(&name, &text);
        check_script(&migration.up);
        if let Some(down) = &migration.down {
            check_script(down);
        }
    }

    #[test]
    fn arbitrary_bytes_as_text_never_panic(text in "\\PC{0,200}") {
        let migration = from_text("<stdin>", &text);
        check_script(&migration.up);
    }

    #[test]
    fn version_order_is_consistent(a in "[0-9._a-c-]{1,8}", b in "[0-9._a-c-]{1,8}", c in "[0-9._a-c-]{1,8}") {
        let (Some(a), Some(b), Some(c)) = (Version::parse(&a), Version::parse(&b), Version::parse(&c)) else {
            return Ok(());
        };
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a == b, a.cmp(&b).is_eq());
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }
}
