//! The one table of every rule: `pgshift rules` lists it, `pgshift explain` reads it,
//! configuration names rules by the names and codes here.

use crate::rules::{self, Rule};

/// Every rule, ordered by code.
pub const RULES: &[&Rule] = &[
    &rules::require_concurrent_index::RULE,
    &rules::require_concurrent_index_drop::RULE,
    &rules::concurrently_in_transaction::RULE,
    &rules::require_concurrent_reindex::RULE,
    &rules::require_concurrent_detach_partition::RULE,
    &rules::cic_corruption_bug::RULE,
    &rules::index_too_many_columns::RULE,
    &rules::constraint_missing_not_valid::RULE,
    &rules::foreign_key_missing_not_valid::RULE,
    &rules::set_not_null::RULE,
    &rules::add_unique_constraint::RULE,
    &rules::add_primary_key::RULE,
    &rules::exclusion_constraint::RULE,
    &rules::drop_constraint::RULE,
    &rules::domain_check_constraint::RULE,
    &rules::may_fail_on_existing_data::RULE,
    &rules::adding_field_with_volatile_default::RULE,
    &rules::adding_required_field::RULE,
    &rules::changing_column_type::RULE,
    &rules::prefer_text_field::RULE,
    &rules::adding_rewriting_column::RULE,
    &rules::table_rewrite::RULE,
    &rules::set_tablespace::RULE,
    &rules::prefer_jsonb::RULE,
    &rules::prefer_bigint::RULE,
    &rules::prefer_identity::RULE,
    &rules::prefer_timestamptz::RULE,
    &rules::ban_char_field::RULE,
    &rules::creating_enum::RULE,
    &rules::require_enum_value_ordering::RULE,
    &rules::renaming_enum_value::RULE,
    &rules::type_change_unknown_source::RULE,
    &rules::renaming_column::RULE,
    &rules::renaming_table::RULE,
    &rules::renaming_schema::RULE,
    &rules::ban_drop_column::RULE,
    &rules::ban_drop_table::RULE,
    &rules::ban_drop_database::RULE,
    &rules::ban_drop_not_null::RULE,
    &rules::ban_truncate_cascade::RULE,
    &rules::drop_cascade::RULE,
    &rules::ban_truncate::RULE,
    &rules::require_lock_timeout::RULE,
    &rules::require_statement_timeout::RULE,
    &rules::statements_after_access_exclusive::RULE,
    &rules::multiple_alter_table::RULE,
    &rules::transaction_nesting::RULE,
    &rules::ban_uncommitted_transaction::RULE,
    &rules::cannot_run_in_transaction::RULE,
    &rules::prefer_repack::RULE,
    &rules::create_trigger_lock::RULE,
    &rules::refresh_matview_without_concurrently::RULE,
    &rules::attach_partition_without_check::RULE,
    &rules::enum_value_used_before_commit::RULE,
    &rules::prefer_robust_stmts::RULE,
    &rules::require_schema_qualified::RULE,
    &rules::identifier_too_long::RULE,
    &rules::duplicate_column::RULE,
    &rules::opaque_statement::RULE,
    &rules::unbatched_backfill::RULE,
    &rules::table_copy_in_transaction::RULE,
    &rules::syntax_error::RULE,
    &rules::unused_allow::RULE,
    &rules::invalid_directive::RULE,
    &rules::unsupported_on_version::RULE,
];

/// The rule with this name or code (case-insensitive).
pub fn find(name_or_code: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| {
        r.name.eq_ignore_ascii_case(name_or_code) || r.code.eq_ignore_ascii_case(name_or_code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_sorted_and_documented() {
        for pair in RULES.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{:?} before {:?}",
                pair[0],
                pair[1]
            );
        }
        for r in RULES {
            assert_eq!(
                RULES.iter().filter(|o| o.name == r.name).count(),
                1,
                "{}",
                r.name
            );
            assert!(r.code.len() == 6 && r.code.starts_with("PGS"), "{}", r.code);
            assert!(
                r.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                r.name
            );
            for section in [
                "## What it does",
                "## Why is this bad?",
                "## Example",
                "## Use instead",
            ] {
                assert!(r.doc.contains(section), "{} lacks {section}", r.name);
            }
            assert!(
                r.doc.starts_with(&format!("# {} ({})", r.name, r.code)),
                "{} doc title",
                r.name
            );
        }
    }
}
