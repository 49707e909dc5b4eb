//! The help that tells users how to run a statement outside a transaction names every format's
//! marker as the format's descriptor states it (and the loader honours it: see
//! `pgshift-source/tests/descriptors.rs`), and the rule documentation does not fall behind.

use pgshift_lint::rules::NO_TRANSACTION_HELP;
use pgshift_source::Format;

#[test]
fn the_help_and_the_rule_docs_name_every_formats_marker() {
    let help = NO_TRANSACTION_HELP.to_string();
    let docs = include_str!("../docs/rules/concurrently-in-transaction.md");
    let docs = docs.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut named = 0;
    for format in Format::all() {
        let descriptor = format.descriptor();
        let Some(marker) = &descriptor.no_transaction else {
            continue;
        };
        named += 1;
        let entry = format!("{} ({})", marker.help, descriptor.title);
        assert!(
            help.contains(&entry),
            "{format}: `{entry}` missing from: {help}"
        );
        assert!(
            docs.contains(marker.text),
            "{format}: docs/rules/concurrently-in-transaction.md does not mention `{}`",
            marker.text
        );
    }
    assert_eq!(help.matches(" (").count(), named, "{help}");
}
