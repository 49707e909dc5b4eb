//! PostgreSQL versions and the facts that changed between them, in one table.

use pg_query::NodeEnum;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A server version: `15`, `14.2`, or `server_version_num` style `150004`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PgVersion {
    pub major: u32,
    /// `None` when only the major version was given (then every minor-release bug of that
    /// major is assumed fixed: people give `--pg-version 14` meaning "a current 14").
    pub minor: Option<u32>,
}

impl PgVersion {
    /// The version `check` assumes when none is configured: the oldest major release the
    /// PostgreSQL project still supported when this table was written. Documented in
    /// `pgshift check --help`.
    pub const DEFAULT: PgVersion = PgVersion {
        major: 14,
        minor: None,
    };

    pub const fn new(major: u32, minor: u32) -> PgVersion {
        PgVersion {
            major,
            minor: Some(minor),
        }
    }

    /// Reads `15`, `14.2`, `150004` (`server_version_num`) or `PostgreSQL 16.1 on x86_64...`.
    /// Pre-10 versions (`9.6`) read as major 9: every fact in [`FACTS`] starts at 10 or later,
    /// so the minor part does not matter for them.
    pub fn parse(text: &str) -> Option<PgVersion> {
        let t = text.trim();
        let t = t.strip_prefix("PostgreSQL").map_or(t, str::trim_start);
        let t = t.split_whitespace().next()?;
        let t = t.trim_end_matches(|c: char| !c.is_ascii_digit());
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            let n: u32 = t.parse().ok()?;
            return Some(if n >= 10_000 {
                // server_version_num: 150004 = 15.4, 90603 = 9.6.3 (pre-10: major.minor.patch).
                if n >= 100_000 {
                    PgVersion::new(n / 10_000, n % 10_000)
                } else {
                    // 9.x versions are modelled as major 9; every fact in FACTS starts at 10+.
                    PgVersion::new(n / 10_000, (n / 100) % 100)
                }
            } else {
                PgVersion {
                    major: n,
                    minor: None,
                }
            });
        }
        // Stop at the first non-version character ("16beta1", "15.4 (Debian ...)").
        let numeric: String = t
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = numeric.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor = match parts.next() {
            Some(m) if !m.is_empty() => Some(m.parse().ok()?),
            _ => None,
        };
        Some(PgVersion { major, minor })
    }

    /// Whether this version has `feature`.
    pub fn has(self, feature: Feature) -> bool {
        let fact = fact(feature);
        match fact.until {
            // A bug: present from `since` up to and including `until` (same major).
            Some(until) => {
                self.major == fact.since.major
                    && self
                        .minor
                        .is_some_and(|m| m >= fact.since.minor.unwrap_or(0) && m <= until)
            }
            None => self.at_least(fact.since),
        }
    }

    fn at_least(self, other: PgVersion) -> bool {
        (self.major, self.minor.unwrap_or(u32::MAX)) >= (other.major, other.minor.unwrap_or(0))
    }
}

impl Default for PgVersion {
    fn default() -> PgVersion {
        PgVersion::DEFAULT
    }
}

impl std::fmt::Display for PgVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.minor {
            Some(m) => write!(f, "{}.{}", self.major, m),
            None => write!(f, "{}", self.major),
        }
    }
}

impl std::str::FromStr for PgVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<PgVersion, String> {
        PgVersion::parse(s).ok_or_else(|| {
            format!("`{s}` is not a PostgreSQL version; write the major version (`15`), or major.minor (`14.2`)")
        })
    }
}

impl Serialize for PgVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PgVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PgVersion, D::Error> {
        // `pg_version = 15` and `pg_version = "15.2"` are both natural in TOML.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Float(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Number(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
            Raw::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A behaviour that depends on the server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// `ADD COLUMN ... DEFAULT <non-volatile>` stores the default in the catalog: no rewrite.
    InstantConstantDefault,
    /// `SET NOT NULL` skips the table scan when a validated `CHECK (c IS NOT NULL)` exists.
    CheckBackedSetNotNull,
    /// `ALTER COLUMN ... TYPE` between timestamp and timestamptz keeps the table's files when
    /// the session `TimeZone` is UTC.
    TimestampTzRelabelInUtc,
    /// `REINDEX ... CONCURRENTLY`.
    ReindexConcurrently,
    /// `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`.
    DetachPartitionConcurrently,
    /// `ALTER TYPE ... ADD VALUE` may run inside a transaction block (the new value cannot be
    /// used until the transaction commits).
    AddEnumValueInTransaction,
    /// `CREATE INDEX CONCURRENTLY` / `REINDEX CONCURRENTLY` can silently corrupt indexes
    /// (fixed in 14.4).
    ConcurrentIndexCorruptionBug,
    /// `ALTER TABLE ... ATTACH PARTITION` takes SHARE UPDATE EXCLUSIVE on the parent instead
    /// of ACCESS EXCLUSIVE.
    AttachPartitionShareUpdateExclusive,
    /// Generated columns (`GENERATED ALWAYS AS (...) STORED`).
    GeneratedColumns,
    /// Identity columns (`GENERATED ... AS IDENTITY`).
    IdentityColumns,
    /// `NULLS NOT DISTINCT` in unique constraints and indexes.
    NullsNotDistinct,
    /// `ALTER TABLE ... SET ACCESS METHOD`.
    SetAccessMethod,
    /// A subquery (or `VALUES`) in `FROM` without an alias.
    SubqueryWithoutAlias,
    /// NOT NULL as a table constraint: `ALTER TABLE t ADD CONSTRAINT name NOT NULL col`,
    /// `CONSTRAINT name NOT NULL col` in CREATE TABLE (named, catalogued NOT NULL constraints).
    NotNullTableConstraint,
}

/// One row of the version table.
#[derive(Debug, Clone, Copy)]
pub struct VersionFact {
    pub feature: Feature,
    /// First version that has it.
    pub since: PgVersion,
    /// For bugs: the last minor release (of `since.major`) that has it.
    pub until: Option<u32>,
    /// What changed, for messages and documentation.
    pub what: &'static str,
    /// For syntax that older servers reject: what to write instead on a server without it
    /// (read by `unsupported-on-version`). `None` for behaviours, which every version accepts.
    pub before: Option<&'static str>,
}

/// Every version-dependent fact pgshift uses. Rules ask [`PgVersion::has`]; nothing else
/// compares version numbers.
pub const FACTS: &[VersionFact] = &[
    VersionFact {
        feature: Feature::InstantConstantDefault,
        since: PgVersion { major: 11, minor: None },
        until: None,
        what: "ADD COLUMN with a non-volatile DEFAULT no longer rewrites the table",
        before: None,
    },
    VersionFact {
        feature: Feature::CheckBackedSetNotNull,
        since: PgVersion { major: 12, minor: None },
        until: None,
        what: "SET NOT NULL skips the full-table scan when a validated CHECK (col IS NOT NULL) proves it",
        before: None,
    },
    VersionFact {
        feature: Feature::TimestampTzRelabelInUtc,
        since: PgVersion { major: 12, minor: None },
        until: None,
        what: "timestamp to timestamptz (and back) does not rewrite the table when the session TimeZone is UTC",
        before: None,
    },
    VersionFact {
        feature: Feature::ReindexConcurrently,
        since: PgVersion { major: 12, minor: None },
        until: None,
        what: "REINDEX ... CONCURRENTLY",
        before: Some("build a new index with CREATE INDEX CONCURRENTLY, drop the old one with DROP INDEX CONCURRENTLY, then rename the new one"),
    },
    VersionFact {
        feature: Feature::DetachPartitionConcurrently,
        since: PgVersion { major: 14, minor: None },
        until: None,
        what: "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY",
        before: Some("DETACH PARTITION without CONCURRENTLY (ACCESS EXCLUSIVE on the parent and the partition, brief)"),
    },
    VersionFact {
        feature: Feature::AddEnumValueInTransaction,
        since: PgVersion { major: 12, minor: None },
        until: None,
        what: "ALTER TYPE ... ADD VALUE inside a transaction block",
        before: None,
    },
    VersionFact {
        feature: Feature::ConcurrentIndexCorruptionBug,
        since: PgVersion { major: 14, minor: Some(0) },
        until: Some(3),
        what: "CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY can miss rows (silent index corruption); fixed in 14.4",
        before: None,
    },
    VersionFact {
        feature: Feature::AttachPartitionShareUpdateExclusive,
        since: PgVersion { major: 12, minor: None },
        until: None,
        what: "ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent table",
        before: None,
    },
    VersionFact {
        feature: Feature::GeneratedColumns,
        since: PgVersion { major: 12, minor: None },
        until: None,
        what: "generated columns",
        before: Some("a plain column filled by a trigger"),
    },
    VersionFact {
        feature: Feature::IdentityColumns,
        since: PgVersion { major: 10, minor: None },
        until: None,
        what: "identity columns",
        before: Some("a serial column"),
    },
    VersionFact {
        feature: Feature::NullsNotDistinct,
        since: PgVersion { major: 15, minor: None },
        until: None,
        what: "UNIQUE NULLS NOT DISTINCT",
        before: Some("a unique index on COALESCE(column, <sentinel>)"),
    },
    VersionFact {
        feature: Feature::SetAccessMethod,
        since: PgVersion { major: 15, minor: None },
        until: None,
        what: "ALTER TABLE ... SET ACCESS METHOD",
        before: Some("create a new table with USING <method> and copy the rows"),
    },
    VersionFact {
        feature: Feature::SubqueryWithoutAlias,
        since: PgVersion { major: 16, minor: None },
        until: None,
        what: "a subquery or VALUES in FROM without an alias",
        before: Some("give the subquery an alias: FROM (SELECT ...) AS sub"),
    },
    VersionFact {
        feature: Feature::NotNullTableConstraint,
        since: PgVersion { major: 18, minor: None },
        until: None,
        what: "NOT NULL as a named table constraint (ADD CONSTRAINT name NOT NULL column)",
        before: Some("ALTER TABLE ... ALTER COLUMN column SET NOT NULL (or, without the scan, the CHECK (column IS NOT NULL) NOT VALID recipe of set-not-null)"),
    },
];

/// The row of [`FACTS`] for a feature.
pub fn fact(feature: Feature) -> &'static VersionFact {
    FACTS
        .iter()
        .find(|f| f.feature == feature)
        // Every Feature variant has a row: `every_feature_has_a_fact` checks it.
        .unwrap_or(&FACTS[0])
}

/// The syntax of [`FACTS`] a statement uses: on a server older than the fact's `since` it
/// fails (`unsupported-on-version` reports it). Behaviours that every version accepts are not
/// listed.
pub fn required_features(node: &NodeEnum) -> Vec<Feature> {
    use pg_query::protobuf::{AlterTableType, ConstrType};
    let mut out = Vec::new();
    let mut need = |f: Feature| {
        if !out.contains(&f) {
            out.push(f);
        }
    };
    let def_named = |n: &pg_query::protobuf::Node, name: &str| matches!(&n.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case(name));
    let is_table_not_null = |n: &pg_query::protobuf::Node| matches!(&n.node, Some(NodeEnum::Constraint(c)) if c.contype == ConstrType::ConstrNotnull as i32);
    match node {
        NodeEnum::ReindexStmt(r) if r.params.iter().any(|p| def_named(p, "concurrently")) => {
            need(Feature::ReindexConcurrently)
        }
        NodeEnum::AlterTableStmt(a) => {
            for cmd in &a.cmds {
                let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else {
                    continue;
                };
                let def = cmd.def.as_deref();
                match AlterTableType::try_from(cmd.subtype).unwrap_or(AlterTableType::Undefined) {
                    AlterTableType::AtDetachPartition if matches!(def.and_then(|d| d.node.as_ref()), Some(NodeEnum::PartitionCmd(p)) if p.concurrent) => {
                        need(Feature::DetachPartitionConcurrently)
                    }
                    AlterTableType::AtAddConstraint if def.is_some_and(is_table_not_null) => {
                        need(Feature::NotNullTableConstraint)
                    }
                    AlterTableType::AtSetAccessMethod => need(Feature::SetAccessMethod),
                    _ => {}
                }
            }
        }
        NodeEnum::CreateStmt(c) if c.table_elts.iter().any(is_table_not_null) => {
            need(Feature::NotNullTableConstraint)
        }
        _ => {}
    }
    for (n, ..) in node.nodes() {
        match n {
            pg_query::NodeRef::RangeSubselect(r) if r.alias.is_none() => {
                need(Feature::SubqueryWithoutAlias)
            }
            pg_query::NodeRef::IndexStmt(i) if i.nulls_not_distinct => {
                need(Feature::NullsNotDistinct)
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        assert_eq!(
            PgVersion::parse("15"),
            Some(PgVersion {
                major: 15,
                minor: None
            })
        );
        assert_eq!(PgVersion::parse("14.2"), Some(PgVersion::new(14, 2)));
        assert_eq!(PgVersion::parse("150004"), Some(PgVersion::new(15, 4)));
        assert_eq!(PgVersion::parse("90603").map(|v| v.major), Some(9));
        assert_eq!(
            PgVersion::parse("PostgreSQL 16.1 on x86_64-pc-linux-gnu"),
            Some(PgVersion::new(16, 1))
        );
        assert_eq!(PgVersion::parse("17beta1").map(|v| v.major), Some(17));
        assert_eq!(PgVersion::parse("fifteen"), None);
        assert_eq!(PgVersion::parse(""), None);
    }

    #[test]
    fn version_dependent_facts() {
        let v = |s: &str| PgVersion::parse(s).unwrap_or_default();
        assert!(!v("10").has(Feature::InstantConstantDefault));
        assert!(v("11").has(Feature::InstantConstantDefault));
        assert!(!v("11.9").has(Feature::CheckBackedSetNotNull));
        assert!(v("12").has(Feature::CheckBackedSetNotNull));
        assert!(!v("13").has(Feature::DetachPartitionConcurrently));
        assert!(v("14").has(Feature::DetachPartitionConcurrently));
        assert!(v("14.0").has(Feature::ConcurrentIndexCorruptionBug));
        assert!(v("14.3").has(Feature::ConcurrentIndexCorruptionBug));
        assert!(!v("14.4").has(Feature::ConcurrentIndexCorruptionBug));
        assert!(
            !v("14").has(Feature::ConcurrentIndexCorruptionBug),
            "a bare major means a current minor"
        );
        assert!(!v("15.1").has(Feature::ConcurrentIndexCorruptionBug));
    }

    #[test]
    fn statements_name_the_syntax_they_need() {
        let needs = |sql: &str| {
            let parsed = pgshift_sql::parse(sql);
            assert!(parsed.errors.is_empty(), "{sql}: {:?}", parsed.errors);
            parsed
                .statements
                .first()
                .map(|s| required_features(&s.node))
                .unwrap_or_default()
        };
        assert_eq!(
            needs("REINDEX INDEX CONCURRENTLY i"),
            [Feature::ReindexConcurrently]
        );
        assert_eq!(needs("REINDEX INDEX i"), []);
        assert_eq!(
            needs("ALTER TABLE p DETACH PARTITION c CONCURRENTLY"),
            [Feature::DetachPartitionConcurrently]
        );
        assert_eq!(needs("ALTER TABLE p DETACH PARTITION c"), []);
        assert_eq!(
            needs("INSERT INTO t SELECT * FROM (SELECT 1) WHERE true"),
            [Feature::SubqueryWithoutAlias]
        );
        assert_eq!(needs("SELECT * FROM (SELECT 1) AS s"), []);
        assert_eq!(
            needs("ALTER TABLE t ADD CONSTRAINT t_a_nn NOT NULL a"),
            [Feature::NotNullTableConstraint]
        );
        assert_eq!(
            needs("CREATE TABLE t (a int, CONSTRAINT t_a_nn NOT NULL a)"),
            [Feature::NotNullTableConstraint]
        );
        assert_eq!(needs("CREATE TABLE t (a int NOT NULL)"), []);
        assert_eq!(needs("ALTER TABLE t ALTER COLUMN a SET NOT NULL"), []);
    }

    #[test]
    fn every_feature_has_a_fact() {
        use Feature::*;
        for f in [
            InstantConstantDefault,
            CheckBackedSetNotNull,
            TimestampTzRelabelInUtc,
            ReindexConcurrently,
            DetachPartitionConcurrently,
            AddEnumValueInTransaction,
            ConcurrentIndexCorruptionBug,
            AttachPartitionShareUpdateExclusive,
            GeneratedColumns,
            IdentityColumns,
            NullsNotDistinct,
            SetAccessMethod,
            SubqueryWithoutAlias,
            NotNullTableConstraint,
        ] {
            assert!(FACTS.iter().any(|x| x.feature == f), "{f:?}");
        }
    }

    #[test]
    fn deserialises_numbers_and_strings() {
        #[derive(Deserialize)]
        struct C {
            v: PgVersion,
        }
        let c: Result<C, _> = serde_json::from_str(r#"{"v": 13}"#);
        assert_eq!(c.ok().map(|c| c.v.major), Some(13));
        let c: Result<C, _> = serde_json::from_str(r#"{"v": "14.2"}"#);
        assert_eq!(c.ok().map(|c| c.v), Some(PgVersion::new(14, 2)));
    }
}
