//! Migration versions and how they sort.
//!
//! Every format writes its version into the file name, and each tool compares them a little
//! differently. One ordering covers them all:
//! - the text is split into segments at `.` and `_` (Flyway `1.2` and `1_2` are the same version);
//! - a segment made only of digits compares as a number of any size, so `1_10` sorts after `1_9`
//!   and leading zeros do not matter (`0001` is `1`);
//! - a version made only of digits and dashes is read with the dashes removed, which is how diesel
//!   compares `2017-09-26-200549` with `20170708133715`;
//! - trailing `0` segments do not count (Flyway treats `1.0` as `1`);
//! - except that a version made only of zeros keeps its width: diesel compares versions as
//!   text, and projects keep diesel's `00000000000000_diesel_initial_setup` next to a
//!   `000000000000000_...` of their own (Lemmy does), which diesel runs as two migrations,
//!   the shorter first;
//! - any other segment compares as text, after all numbers (plain files named `init.sql`);
//! - a diesel version ([`Version::diesel_ordered`]) compares with another version made of
//!   digits (and dashes) as diesel compares them: the digits with dashes removed, as text, so
//!   `2025-06-01-000000-0000` (`202506010000000000`) comes before `2026-01-01-000000`
//!   (`20260101000000`) although it is the larger number (`diesel_migrations` sorts
//!   `version_from_string`'s `String`s).
//!
//! Equality follows the ordering, so two files whose versions compare equal are a duplicate.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A migration version: the raw text from the file name plus a key that orders it.
#[derive(Clone, Debug)]
pub struct Version {
    raw: String,
    key: Vec<Segment>,
    /// For a version written with two or more zeros and nothing else, how many: it orders
    /// `00000000000000` before `000000000000000`. `0` for every other version.
    zero_width: usize,
    /// The digits of a version made only of digits and dashes, dashes removed.
    digits: Option<String>,
    /// Compared with another version of digits by [`Version::digits`] as text, as diesel does.
    text_order: bool,
}

/// One piece of a version. Numbers sort before text; numbers compare by value, kept as their
/// digits without leading zeros so that versions longer than any integer type still compare.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Segment {
    Number { len: usize, digits: String },
    Text(String),
}

impl Version {
    /// Reads a version as written in a file name. `None` when the text is blank (or only
    /// separators) or holds control characters (line breaks, tabs), which no format allows.
    pub fn parse(raw: &str) -> Option<Version> {
        if raw.trim().is_empty() || raw.chars().any(char::is_control) {
            return None;
        }
        let dashed_number =
            raw.contains('-') && raw.chars().all(|c| c.is_ascii_digit() || c == '-');
        let text: String = if dashed_number {
            raw.chars().filter(|c| *c != '-').collect()
        } else {
            raw.to_owned()
        };
        let mut key: Vec<Segment> = text
            .split(['.', '_'])
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.bytes().all(|b| b.is_ascii_digit()) {
                    let digits = s.trim_start_matches('0');
                    Segment::Number {
                        len: digits.len(),
                        digits: digits.to_owned(),
                    }
                } else {
                    Segment::Text(s.to_owned())
                }
            })
            .collect();
        while key.len() > 1 && matches!(key.last(), Some(Segment::Number { len: 0, .. })) {
            key.pop();
        }
        if key.is_empty() {
            return None;
        }
        // Width 1 stays 0 so that `0`, `0.0` and `0_0` remain one version, as before.
        let zero_width = if text.len() > 1 && text.bytes().all(|b| b == b'0') {
            text.len()
        } else {
            0
        };
        let digits = (raw.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            && raw.bytes().any(|b| b.is_ascii_digit()))
        .then(|| text.clone());
        Some(Version {
            raw: raw.to_owned(),
            key,
            zero_width,
            digits,
            text_order: false,
        })
    }

    /// This version ordered as diesel orders it: against any version made of digits (and
    /// dashes), by those digits as text, not as a number. Other versions are unchanged.
    pub(crate) fn diesel_ordered(mut self) -> Version {
        self.text_order = self.digits.is_some();
        self
    }

    /// Both versions' digits, when either compares as diesel does and both are digits.
    fn as_text_pair<'a>(&'a self, other: &'a Version) -> Option<(&'a str, &'a str)> {
        if !(self.text_order || other.text_order) {
            return None;
        }
        Some((self.digits.as_deref()?, other.digits.as_deref()?))
    }

    /// Version `0`, for a migration whose name carries no version (SQL read from stdin).
    pub(crate) fn zero() -> Version {
        Version {
            raw: "0".to_owned(),
            key: vec![Segment::Number {
                len: 0,
                digits: String::new(),
            }],
            zero_width: 0,
            digits: Some("0".to_owned()),
            text_order: false,
        }
    }

    /// The version exactly as written in the file name.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The version as one integer, when it is a single number that fits (sqlx, goose and
    /// golang-migrate store versions as `bigint`).
    pub fn as_i64(&self) -> Option<i64> {
        match self.key.as_slice() {
            [Segment::Number { digits, .. }] if digits.is_empty() => Some(0),
            [Segment::Number { digits, .. }] => digits.parse().ok(),
            _ => None,
        }
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        match self.as_text_pair(other) {
            Some((a, b)) => a == b,
            None => self.key == other.key && self.zero_width == other.zero_width,
        }
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
        self.zero_width.hash(state);
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        if let Some((a, b)) = self.as_text_pair(other) {
            return a.cmp(b);
        }
        self.key
            .cmp(&other.key)
            .then(self.zero_width.cmp(&other.zero_width))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for Version {
    type Err = InvalidVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s).ok_or_else(|| InvalidVersion(s.to_owned()))
    }
}

/// A text that cannot be a version (blank, or with control characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a migration version; use the version from the file name, e.g. 20240101120000"
)]
pub struct InvalidVersion(pub String);

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Version::parse(&raw).ok_or_else(|| serde::de::Error::custom(InvalidVersion(raw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(raw: &str) -> Version {
        Version::parse(raw).unwrap_or_else(|| panic!("{raw} should parse"))
    }

    #[test]
    fn numeric_segments_compare_as_numbers() {
        assert!(v("1_9") < v("1_10"));
        assert!(v("1_10") < v("2"));
        assert!(v("1.9") < v("1.10"));
        assert!(v("9") < v("10"));
        assert!(v("20240101000000") > v("99"));
    }

    #[test]
    fn dot_and_underscore_are_the_same_separator() {
        assert_eq!(v("1.1"), v("1_1"));
        assert_eq!(v("1.2.3"), v("1_2.3"));
    }

    #[test]
    fn leading_zeros_and_trailing_zero_segments_do_not_count() {
        assert_eq!(v("0001"), v("1"));
        assert_eq!(v("1.0"), v("1"));
        assert!(v("0") < v("1"));
        assert!(v("000") < v("1"));
        assert_eq!(v("1.01"), v("1.1"));
    }

    #[test]
    fn all_zero_versions_keep_their_width_as_diesel_compares_them() {
        // diesel's own initial setup and a project's 15-zero migration are two migrations,
        // run in diesel's (text) order: the shorter first, both before any real version.
        let fourteen = v("00000000000000");
        let fifteen = v("000000000000000");
        assert_ne!(fourteen, fifteen);
        assert!(fourteen < fifteen);
        assert!(fifteen < v("1"));
        assert!(fifteen < v("2019-02-26-002946"));
        assert_eq!(fourteen, v("00000000000000"));
        assert_eq!(v("0"), Version::zero());
        assert_eq!(v("0"), v("0.0"));
        assert_eq!(fifteen.as_i64(), Some(0));
        // Only all-zero versions: other leading zeros still do not count.
        assert_eq!(v("0001"), v("1"));
        assert_eq!(v("1.00"), v("1"));
    }

    #[test]
    fn diesel_dashes_are_removed() {
        assert_eq!(v("2017-09-26-200549"), v("20170926200549"));
        assert!(v("2017-09-26-200549") > v("20170708133715"));
        assert!(v("2017-09-26-200549") < v("20171001000000"));
    }

    #[test]
    fn numbers_sort_before_text_and_text_compares_as_text() {
        assert!(v("99999") < v("init"));
        assert!(v("alpha") < v("beta"));
        assert!(v("1_a") < v("1_b"));
    }

    #[test]
    fn huge_numbers_compare_without_overflow() {
        let big = "123456789012345678901234567890";
        assert!(v(big) > v("99999999999999999999"));
        assert_eq!(v(big).as_i64(), None);
    }

    #[test]
    fn display_is_the_raw_text() {
        assert_eq!(v("V_001").to_string(), "V_001");
        assert_eq!(v("2017-09-26-200549").as_str(), "2017-09-26-200549");
    }

    #[test]
    fn unusable_text_is_refused() {
        assert!(Version::parse("").is_none());
        assert!(Version::parse("._").is_none());
        assert!(Version::parse("  ").is_none());
        assert!(Version::parse("1\t2").is_none());
        assert!(Version::parse("1\n").is_none());
    }

    #[test]
    fn as_i64_reads_single_numbers() {
        assert_eq!(v("0042").as_i64(), Some(42));
        assert_eq!(v("0").as_i64(), Some(0));
        assert_eq!(v("1.1").as_i64(), None);
    }

    #[test]
    fn serde_round_trips_the_raw_text() -> Result<(), serde_json::Error> {
        let json = serde_json::to_string(&v("1_10"))?;
        assert_eq!(json, "\"1_10\"");
        let back: Version = serde_json::from_str(&json)?;
        assert_eq!(back.as_str(), "1_10");
        assert!(serde_json::from_str::<Version>("\"\"").is_err());
        Ok(())
    }
}
