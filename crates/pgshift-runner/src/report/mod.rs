//! Rendering the runner's reports for people, tools and pull requests: `plan`, `trace` and
//! `verify` (one module each) and what every renderer shares — Markdown escaping, counted
//! nouns; terminal safety comes from [`pgshift_sql::printable`]. Renderers read report data
//! and write text; they decide nothing and query nothing.

pub mod markdown;
pub mod plan;
pub mod trace;
pub mod verify;

/// `1 step`, `2 steps`: a count and its noun, agreeing. `noun` is the singular; the plural
/// adds `s` (`entry` → `entries`).
pub fn count(n: usize, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(super::count(1, "migration"), "1 migration");
        assert_eq!(super::count(0, "migration"), "0 migrations");
        assert_eq!(super::count(1, "entry"), "1 entry");
        assert_eq!(super::count(3, "entry"), "3 entries");
    }
}
