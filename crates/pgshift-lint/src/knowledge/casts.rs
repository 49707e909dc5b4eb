//! Which column type changes PostgreSQL makes without rewriting the table (binary-compatible
//! or typmod-widening changes), in one table.
//!
//! Anything not listed rewrites the table and rebuilds its indexes under ACCESS EXCLUSIVE.

use pg_query::protobuf::{Node, TypeName};
use pg_query::NodeEnum;

use super::version::{Feature, PgVersion};
use pgshift_sql::ident::strings;

/// A column type as written: canonical base name (`varchar`, `numeric`, `int4`, `text`, ...),
/// its integer modifiers (`varchar(20)` → `[20]`) and whether it is an array.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeSpec {
    pub name: String,
    pub mods: Vec<i64>,
    pub array: bool,
}

impl TypeSpec {
    /// From a parse tree type name. `character varying` is `varchar`, `int` is `int4`, the
    /// `pg_catalog.` prefix the grammar adds is dropped.
    pub fn from_type_name(t: &TypeName) -> TypeSpec {
        let names = strings(&t.names);
        let name = names.last().map(|n| canonical(n)).unwrap_or_default();
        let mods = t
            .typmods
            .iter()
            .filter_map(|m| match &m.node {
                Some(NodeEnum::AConst(c)) => match &c.val {
                    Some(pg_query::protobuf::a_const::Val::Ival(i)) => Some(i64::from(i.ival)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        TypeSpec {
            name,
            mods,
            array: !t.array_bounds.is_empty(),
        }
    }

    pub fn named(name: &str, mods: &[i64]) -> TypeSpec {
        TypeSpec {
            name: canonical(name),
            mods: mods.to_vec(),
            array: false,
        }
    }

    /// The type as SQL (`varchar(20)`, `numeric(10,2)`, `int4[]`).
    pub fn sql(&self) -> String {
        // `bpchar` is the internal name of char(n); people write char.
        let mut s = if self.name == "bpchar" {
            "char".to_string()
        } else {
            self.name.clone()
        };
        if !self.mods.is_empty() {
            let mods: Vec<String> = self.mods.iter().map(i64::to_string).collect();
            s.push_str(&format!("({})", mods.join(",")));
        }
        if self.array {
            s.push_str("[]");
        }
        s
    }
}

fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "character varying" => "varchar",
        "int" | "integer" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "decimal" => "numeric",
        "bit varying" => "varbit",
        "character" | "char" => "bpchar",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        "boolean" => "bool",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "serial" | "serial4" => "serial",
        "bigserial" | "serial8" => "bigserial",
        "smallserial" | "serial2" => "smallserial",
        _ => return lower,
    }
    .to_string()
}

/// What an `ALTER COLUMN ... TYPE` does to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeChange {
    /// The same type: nothing happens beyond the catalog update.
    Same,
    /// No rewrite; the reason is the row of [`SAFE_TYPE_CHANGES`] that matched.
    BinaryCompatible(&'static str),
    /// No rewrite only when the session `TimeZone` is UTC (PostgreSQL 12+); otherwise a rewrite.
    SafeOnlyInUtc,
    /// Rewrites the table and rebuilds every index on it.
    Rewrite,
}

/// How the modifiers of the old and new type must relate for a change to be safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mods {
    /// Any modifiers on either side.
    Any,
    /// The new type has no limit (`varchar`, `numeric`, `varbit`).
    NewUnbounded,
    /// The first modifier (length, precision) grows or stays; later ones (scale) stay equal.
    Widening,
}

/// One binary-compatible change: `from` → `to` with modifier condition.
struct SafeChange {
    from: &'static str,
    to: &'static str,
    mods: Mods,
    why: &'static str,
}

/// The type changes PostgreSQL performs without a table rewrite (catalog-only), per the
/// ALTER TABLE documentation and the `*_support` planner functions of each type.
const SAFE_TYPE_CHANGES: &[SafeChange] = &[
    SafeChange {
        from: "varchar",
        to: "text",
        mods: Mods::Any,
        why: "varchar to text is binary-compatible",
    },
    SafeChange {
        from: "text",
        to: "varchar",
        mods: Mods::NewUnbounded,
        why: "text to unbounded varchar is binary-compatible",
    },
    SafeChange {
        from: "varchar",
        to: "varchar",
        mods: Mods::NewUnbounded,
        why: "removing a varchar length limit does not rewrite",
    },
    SafeChange {
        from: "varchar",
        to: "varchar",
        mods: Mods::Widening,
        why: "increasing a varchar length limit does not rewrite",
    },
    SafeChange {
        from: "numeric",
        to: "numeric",
        mods: Mods::NewUnbounded,
        why: "removing a numeric precision limit does not rewrite",
    },
    SafeChange {
        from: "numeric",
        to: "numeric",
        mods: Mods::Widening,
        why: "increasing numeric precision at the same scale does not rewrite",
    },
    SafeChange {
        from: "varbit",
        to: "varbit",
        mods: Mods::NewUnbounded,
        why: "removing a bit varying limit does not rewrite",
    },
    SafeChange {
        from: "varbit",
        to: "varbit",
        mods: Mods::Widening,
        why: "increasing a bit varying limit does not rewrite",
    },
    SafeChange {
        from: "cidr",
        to: "inet",
        mods: Mods::Any,
        why: "cidr to inet is binary-compatible",
    },
    SafeChange {
        from: "timestamp",
        to: "timestamp",
        mods: Mods::Widening,
        why: "increasing timestamp precision does not rewrite",
    },
    SafeChange {
        from: "timestamptz",
        to: "timestamptz",
        mods: Mods::Widening,
        why: "increasing timestamptz precision does not rewrite",
    },
    SafeChange {
        from: "time",
        to: "time",
        mods: Mods::Widening,
        why: "increasing time precision does not rewrite",
    },
    SafeChange {
        from: "interval",
        to: "interval",
        mods: Mods::Widening,
        why: "increasing interval precision does not rewrite",
    },
    // Removing the precision (`timestamp(3)` → `timestamp`) is a widening too: the planner's
    // `TemporalSimplify` relabels when the new typmod is unlimited (checked: no new relfilenode).
    SafeChange {
        from: "timestamp",
        to: "timestamp",
        mods: Mods::NewUnbounded,
        why: "removing a timestamp precision limit does not rewrite",
    },
    SafeChange {
        from: "timestamptz",
        to: "timestamptz",
        mods: Mods::NewUnbounded,
        why: "removing a timestamptz precision limit does not rewrite",
    },
    SafeChange {
        from: "time",
        to: "time",
        mods: Mods::NewUnbounded,
        why: "removing a time precision limit does not rewrite",
    },
    SafeChange {
        from: "interval",
        to: "interval",
        mods: Mods::NewUnbounded,
        why: "removing an interval precision limit does not rewrite",
    },
];

/// What changing a column from `old` to `new` costs.
pub fn type_change(old: &TypeSpec, new: &TypeSpec) -> TypeChange {
    if old == new {
        return TypeChange::Same;
    }
    if old.array != new.array {
        return TypeChange::Rewrite;
    }
    let pair = (old.name.as_str(), new.name.as_str());
    if matches!(
        pair,
        ("timestamp", "timestamptz") | ("timestamptz", "timestamp")
    ) {
        return TypeChange::SafeOnlyInUtc;
    }
    for c in SAFE_TYPE_CHANGES {
        if (c.from, c.to) != pair {
            continue;
        }
        let ok = match c.mods {
            Mods::Any => true,
            Mods::NewUnbounded => new.mods.is_empty(),
            Mods::Widening => widening(&old.mods, &new.mods),
        };
        if ok {
            return TypeChange::BinaryCompatible(c.why);
        }
    }
    TypeChange::Rewrite
}

/// The time zones with a fixed offset of zero, lowercase: in a session whose `TimeZone` is one
/// of them, PostgreSQL 12+ changes timestamp ↔ timestamptz without rewriting the table
/// (`TimestampTimestampTzRequiresRewrite` asks `pg_get_timezone_offset` for a fixed offset of
/// 0). Zones that are at +00:00 only part of the year or of their history (`Europe/London`,
/// `Africa/Abidjan`) do not count. Checked on 15: no new relfilenode after `SET timezone` to
/// each of these, a new one with `Europe/London` and `Africa/Abidjan`.
const ZERO_OFFSET_ZONES: &[&str] = &[
    "utc",
    "etc/utc",
    "uct",
    "etc/uct",
    "universal",
    "etc/universal",
    "zulu",
    "etc/zulu",
    "gmt",
    "etc/gmt",
    "gmt0",
    "etc/gmt0",
    "gmt+0",
    "etc/gmt+0",
    "gmt-0",
    "etc/gmt-0",
    "greenwich",
    "etc/greenwich",
    // POSIX-style specifications with a zero offset.
    "utc0",
];

/// Whether a `TimeZone` setting as written (`'UTC'`, `utc`, `'Etc/UTC'`, `'+00:00'`, `0`) is
/// a fixed zero offset.
pub fn is_zero_offset_zone(setting: &str) -> bool {
    let s = setting.trim().to_ascii_lowercase();
    if ZERO_OFFSET_ZONES.contains(&s.as_str()) {
        return true;
    }
    // A numeric offset (`SET TIME ZONE 0`, `'+00:00'`, `INTERVAL '00:00'`): zero in every part.
    let digits = s.trim_start_matches(['+', '-']);
    !digits.is_empty()
        && digits
            .split([':', '.'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b == b'0'))
}

/// What changing a column from `old` to `new` costs on `version`, in a session whose
/// `TimeZone` is (`utc_session`) or may not be a fixed zero offset: [`type_change`] with
/// timestamp ↔ timestamptz decided.
pub fn type_change_in(
    old: &TypeSpec,
    new: &TypeSpec,
    utc_session: bool,
    version: PgVersion,
) -> TypeChange {
    match type_change(old, new) {
        TypeChange::SafeOnlyInUtc if !version.has(Feature::TimestampTzRelabelInUtc) => {
            TypeChange::Rewrite
        }
        TypeChange::SafeOnlyInUtc if utc_session => TypeChange::BinaryCompatible(
            "timestamp and timestamptz hold the same value in a UTC session",
        ),
        other => other,
    }
}

/// The casts a `USING` expression applies to the altered column itself, innermost first:
/// `USING name` is `[]`, `USING (name::varchar)::text` is `[varchar, text]`. `None` when the
/// expression is anything else (a function, an operator, another column): PostgreSQL then
/// computes every row anew.
pub fn using_casts(expr: &Node, column: &str) -> Option<Vec<TypeSpec>> {
    let mut casts = Vec::new();
    let mut node = expr;
    loop {
        match node.node.as_ref()? {
            NodeEnum::TypeCast(c) => {
                casts.push(TypeSpec::from_type_name(c.type_name.as_ref()?));
                node = c.arg.as_deref()?;
            }
            NodeEnum::ColumnRef(r) => {
                let fields = strings(&r.fields);
                // `name` or `table.name`: the column being altered (the only table in scope).
                if fields.len() > 2 || fields.last().map(String::as_str) != Some(column) {
                    return None;
                }
                casts.reverse();
                return Some(casts);
            }
            _ => return None,
        }
    }
}

/// What `ALTER COLUMN ... TYPE new [USING column::a::b]` costs from `old`: each cast in turn,
/// then the conversion to the column's new type. PostgreSQL strips binary-compatible
/// relabelings from the USING expression and rewrites only when something is left but the
/// column itself (`ATColumnChangeRequiresRewrite`): checked on 15, `TYPE text USING
/// (name::text)` on a text column keeps its relfilenode, `USING name::varchar(10)` does not.
pub fn retype(
    old: &TypeSpec,
    casts: &[TypeSpec],
    new: &TypeSpec,
    utc_session: bool,
    version: PgVersion,
) -> TypeChange {
    let mut worst = TypeChange::Same;
    let mut from = old;
    for to in casts.iter().chain([new]) {
        let step = type_change_in(from, to, utc_session, version);
        if cost(step) > cost(worst) {
            worst = step;
        }
        from = to;
    }
    worst
}

fn cost(change: TypeChange) -> u8 {
    match change {
        TypeChange::Same => 0,
        TypeChange::BinaryCompatible(_) => 1,
        TypeChange::SafeOnlyInUtc => 2,
        TypeChange::Rewrite => 3,
    }
}

/// `(n)` → `(m ≥ n)`; `(p, s)` → `(q ≥ p, s)`; an unbounded old type never widens into a
/// bounded one.
fn widening(old: &[i64], new: &[i64]) -> bool {
    match (old.split_first(), new.split_first()) {
        (Some((o, orest)), Some((n, nrest))) => n >= o && orest == nrest,
        // No modifier on either side: the default precision is the maximum already.
        (None, None) => true,
        _ => false,
    }
}

/// Whether a new type is one that binary-compatible changes commonly lead to (unbounded text
/// types); used when the old type is unknown to say "probably fine" instead of "rewrites".
pub fn likely_safe_target(new: &TypeSpec) -> bool {
    !new.array
        && (new.name == "text"
            || (matches!(new.name.as_str(), "varchar" | "numeric") && new.mods.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, mods: &[i64]) -> TypeSpec {
        TypeSpec::named(name, mods)
    }

    #[test]
    fn binary_compatible_changes_are_recognised() {
        assert!(matches!(
            type_change(&t("varchar", &[10]), &t("text", &[])),
            TypeChange::BinaryCompatible(_)
        ));
        assert!(matches!(
            type_change(&t("varchar", &[10]), &t("varchar", &[20])),
            TypeChange::BinaryCompatible(_)
        ));
        assert!(matches!(
            type_change(&t("varchar", &[10]), &t("varchar", &[])),
            TypeChange::BinaryCompatible(_)
        ));
        assert!(matches!(
            type_change(&t("numeric", &[10, 2]), &t("numeric", &[12, 2])),
            TypeChange::BinaryCompatible(_)
        ));
        assert!(matches!(
            type_change(&t("numeric", &[10, 2]), &t("numeric", &[])),
            TypeChange::BinaryCompatible(_)
        ));
        assert!(matches!(
            type_change(&t("cidr", &[]), &t("inet", &[])),
            TypeChange::BinaryCompatible(_)
        ));
        assert!(matches!(
            type_change(&t("text", &[]), &t("varchar", &[])),
            TypeChange::BinaryCompatible(_)
        ));
        for name in ["timestamp", "timestamptz", "time", "interval"] {
            assert!(
                matches!(
                    type_change(&t(name, &[3]), &t(name, &[])),
                    TypeChange::BinaryCompatible(_)
                ),
                "{name}(3) to {name}"
            );
        }
    }

    #[test]
    fn rewriting_changes_are_not() {
        assert_eq!(
            type_change(&t("varchar", &[20]), &t("varchar", &[10])),
            TypeChange::Rewrite
        );
        assert_eq!(
            type_change(&t("numeric", &[10, 2]), &t("numeric", &[12, 3])),
            TypeChange::Rewrite
        );
        assert_eq!(
            type_change(&t("int4", &[]), &t("int8", &[])),
            TypeChange::Rewrite
        );
        assert_eq!(
            type_change(&t("text", &[]), &t("varchar", &[10])),
            TypeChange::Rewrite
        );
        assert_eq!(
            type_change(&t("varchar", &[10]), &t("char", &[10])),
            TypeChange::Rewrite
        );
        assert_eq!(
            type_change(&t("varchar", &[]), &t("varchar", &[10])),
            TypeChange::Rewrite
        );
        assert_eq!(
            type_change(&t("timestamp", &[]), &t("timestamptz", &[])),
            TypeChange::SafeOnlyInUtc
        );
    }

    #[test]
    fn utc_sessions_and_identity_casts_do_not_rewrite() {
        for z in [
            "UTC", "utc", "Etc/UTC", "GMT", "Zulu", "+00:00", "0", "UTC0",
        ] {
            assert!(is_zero_offset_zone(z), "{z}");
        }
        for z in ["Europe/London", "Africa/Abidjan", "+01:00", "", "local"] {
            assert!(!is_zero_offset_zone(z), "{z}");
        }
        let (ts, tstz) = (t("timestamp", &[]), t("timestamptz", &[]));
        let v15 = PgVersion::new(15, 0);
        assert!(matches!(
            type_change_in(&ts, &tstz, true, v15),
            TypeChange::BinaryCompatible(_)
        ));
        assert_eq!(
            type_change_in(&ts, &tstz, false, v15),
            TypeChange::SafeOnlyInUtc
        );
        assert_eq!(
            type_change_in(&ts, &tstz, true, PgVersion::new(11, 0)),
            TypeChange::Rewrite
        );
        // `TYPE text USING (name::text)` on text; `USING v::varchar(10)` on varchar(20).
        let text = t("text", &[]);
        assert_eq!(
            retype(&text, std::slice::from_ref(&text), &text, false, v15),
            TypeChange::Same
        );
        assert_eq!(
            retype(
                &t("varchar", &[20]),
                &[t("varchar", &[10])],
                &text,
                false,
                v15
            ),
            TypeChange::Rewrite
        );
    }

    #[test]
    fn using_casts_of_the_column_itself() {
        let casts = |sql: &str| {
            let p = pgshift_sql::parse(sql);
            let Some(NodeEnum::AlterTableStmt(a)) = p.statements.first().map(|s| &s.node) else {
                panic!("parse {sql}")
            };
            let Some(NodeEnum::AlterTableCmd(cmd)) = a.cmds.first().and_then(|c| c.node.as_ref())
            else {
                panic!("cmd")
            };
            let Some(NodeEnum::ColumnDef(col)) = cmd.def.as_deref().and_then(|d| d.node.as_ref())
            else {
                panic!("def")
            };
            col.raw_default
                .as_deref()
                .and_then(|e| using_casts(e, &cmd.name))
                .map(|c| c.iter().map(TypeSpec::sql).collect::<Vec<_>>())
        };
        assert_eq!(
            casts("ALTER TABLE t ALTER COLUMN name TYPE text USING (name::text)"),
            Some(vec!["text".to_string()])
        );
        assert_eq!(
            casts("ALTER TABLE t ALTER COLUMN name TYPE text USING t.name"),
            Some(vec![])
        );
        assert_eq!(
            casts("ALTER TABLE t ALTER COLUMN n TYPE text USING (n::varchar)::text"),
            Some(vec!["varchar".to_string(), "text".to_string()])
        );
        assert_eq!(
            casts("ALTER TABLE t ALTER COLUMN name TYPE text USING lower(name)"),
            None
        );
        assert_eq!(
            casts("ALTER TABLE t ALTER COLUMN name TYPE text USING other::text"),
            None
        );
    }

    #[test]
    fn spelled_types_are_canonical() {
        let p = pgshift_sql::parse(
            "CREATE TABLE x (a character varying(5), b integer, c decimal(4,1))",
        );
        let Some(NodeEnum::CreateStmt(c)) = p.statements.first().map(|s| &s.node) else {
            panic!("parse")
        };
        let types: Vec<String> = c
            .table_elts
            .iter()
            .filter_map(|e| match &e.node {
                Some(NodeEnum::ColumnDef(d)) => d
                    .type_name
                    .as_ref()
                    .map(|t| TypeSpec::from_type_name(t).sql()),
                _ => None,
            })
            .collect();
        assert_eq!(types, vec!["varchar(5)", "int4", "numeric(4,1)"]);
    }
}
