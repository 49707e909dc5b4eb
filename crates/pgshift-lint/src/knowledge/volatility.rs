//! Whether a column default is volatile: from PostgreSQL 11, `ADD COLUMN ... DEFAULT expr`
//! stores a non-volatile default in the catalog (evaluated once, no rewrite), while a volatile
//! one (`random()`, `gen_random_uuid()`, `clock_timestamp()`, `nextval()`) must be evaluated for
//! every existing row: a full rewrite under ACCESS EXCLUSIVE.

use pg_query::protobuf::Node;
use pg_query::NodeEnum;

use crate::context::Context;
use pgshift_sql::ident::strings;

/// How a default expression behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Volatility {
    /// Constants, casts of constants, immutable and stable functions (`now()` is STABLE: one
    /// value for the whole ALTER, stored once).
    NonVolatile,
    /// Evaluated per row: rewrites the table.
    Volatile(String),
    /// Calls a function pgshift does not know (a user function): volatile unless declared
    /// otherwise.
    Unknown(String),
}

/// Built-in functions that are VOLATILE (`pg_proc.provolatile = 'v'`) and commonly used as defaults.
const VOLATILE_FUNCTIONS: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "currval",
    "lastval",
    "txid_current",
    "pg_current_xact_id",
    "gen_salt",
    "gen_random_bytes",
    "setseed",
];

/// Built-in functions that are IMMUTABLE or STABLE and commonly used in defaults.
const NON_VOLATILE_FUNCTIONS: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_timestamp",
    "current_date",
    "localtimestamp",
    "timezone",
    "to_timestamp",
    "to_date",
    "to_char",
    "date_trunc",
    "make_date",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "lower",
    "upper",
    "trim",
    "btrim",
    "concat",
    "concat_ws",
    "length",
    "substring",
    "replace",
    "abs",
    "round",
    "floor",
    "ceil",
    "greatest",
    "least",
    "array_fill",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "to_jsonb",
    "to_json",
    "current_setting",
    "current_user",
    "session_user",
    "current_schema",
    "inet_client_addr",
    "md5",
    "encode",
    "decode",
    "int4range",
    "int8range",
    "tstzrange",
    "daterange",
];

/// Classifies a default expression (the `raw_default` / DEFAULT constraint expression).
pub fn volatility(expr: &Node) -> Volatility {
    let mut found = Volatility::NonVolatile;
    walk(expr, &|_| None, &mut found);
    found
}

/// [`volatility`], knowing the functions the migration set created earlier (and whether each
/// was declared VOLATILE, IMMUTABLE or STABLE): a call to one of them is judged exactly.
pub fn volatility_in(expr: &Node, ctx: &Context) -> Volatility {
    let mut found = Volatility::NonVolatile;
    walk(expr, &|name| ctx.function_is_volatile(name), &mut found);
    found
}

/// Whether a user function (by its name as called) is VOLATILE, when known.
type Known<'a> = &'a dyn Fn(&[String]) -> Option<bool>;

fn walk(node: &Node, known: Known<'_>, found: &mut Volatility) {
    let walk = |n: &Node, found: &mut Volatility| walk(n, known, found);
    if matches!(found, Volatility::Volatile(_)) {
        return;
    }
    let Some(n) = &node.node else { return };
    match n {
        NodeEnum::AConst(_) | NodeEnum::SqlvalueFunction(_) | NodeEnum::ParamRef(_) => {}
        NodeEnum::TypeCast(c) => {
            if let Some(arg) = &c.arg {
                walk(arg, found);
            }
        }
        NodeEnum::FuncCall(f) => {
            let names = strings(&f.funcname);
            let name = names
                .last()
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_default();
            let builtin_schema =
                names.len() == 1 || names.first().is_some_and(|s| s == "pg_catalog");
            let user = known(&names);
            if user == Some(true) {
                *found = Volatility::Volatile(format!("{}()", names.join(".")));
                return;
            }
            if user.is_none() && VOLATILE_FUNCTIONS.contains(&name.as_str()) {
                *found = Volatility::Volatile(format!("{name}()"));
                return;
            }
            if user.is_none()
                && !(builtin_schema && NON_VOLATILE_FUNCTIONS.contains(&name.as_str()))
                && *found == Volatility::NonVolatile
            {
                *found = Volatility::Unknown(format!("{}()", names.join(".")));
            }
            for a in &f.args {
                walk(a, found);
            }
        }
        NodeEnum::AExpr(e) => {
            for side in [&e.lexpr, &e.rexpr].into_iter().flatten() {
                walk(side, found);
            }
        }
        NodeEnum::BoolExpr(b) => b.args.iter().for_each(|a| walk(a, found)),
        NodeEnum::CoalesceExpr(c) => c.args.iter().for_each(|a| walk(a, found)),
        NodeEnum::MinMaxExpr(c) => c.args.iter().for_each(|a| walk(a, found)),
        NodeEnum::AArrayExpr(a) => a.elements.iter().for_each(|e| walk(e, found)),
        NodeEnum::RowExpr(r) => r.args.iter().for_each(|e| walk(e, found)),
        NodeEnum::List(l) => l.items.iter().for_each(|e| walk(e, found)),
        NodeEnum::NullTest(t) => {
            if let Some(a) = &t.arg {
                walk(a, found);
            }
        }
        NodeEnum::CaseExpr(c) => {
            for a in c.args.iter().chain(c.defresult.as_deref()) {
                walk(a, found);
            }
        }
        NodeEnum::CaseWhen(w) => {
            for a in [&w.expr, &w.result].into_iter().flatten() {
                walk(a, found);
            }
        }
        NodeEnum::CollateClause(c) => {
            if let Some(a) = &c.arg {
                walk(a, found);
            }
        }
        // A sub-select or anything else: cannot be judged statically.
        _ => {
            if *found == Volatility::NonVolatile {
                *found = Volatility::Unknown("an expression pgshift cannot evaluate".to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_of(expr: &str) -> Volatility {
        let sql = format!("ALTER TABLE t ADD COLUMN c text DEFAULT {expr}");
        let parsed = pgshift_sql::parse(&sql);
        let found = parsed.statements.first().and_then(|s| match &s.node {
            NodeEnum::AlterTableStmt(a) => a.cmds.first().and_then(|c| match &c.node {
                Some(NodeEnum::AlterTableCmd(c)) => c.def.as_ref().and_then(|d| match &d.node {
                    Some(NodeEnum::ColumnDef(col)) => {
                        col.constraints.iter().find_map(|k| match &k.node {
                            Some(NodeEnum::Constraint(k)) => k.raw_expr.as_deref().map(volatility),
                            _ => None,
                        })
                    }
                    _ => None,
                }),
                _ => None,
            }),
            _ => None,
        });
        found.unwrap_or(Volatility::Unknown("parse".into()))
    }

    #[test]
    fn constants_and_stable_functions_are_not_volatile() {
        for e in [
            "0",
            "'x'",
            "'{}'::jsonb",
            "now()",
            "CURRENT_TIMESTAMP",
            "-1",
            "ARRAY[1,2]",
            "lower('A')",
            "true",
        ] {
            assert_eq!(default_of(e), Volatility::NonVolatile, "{e}");
        }
    }

    #[test]
    fn volatile_functions_are() {
        for e in [
            "random()",
            "gen_random_uuid()",
            "clock_timestamp()",
            "nextval('s')",
            "(random() * 10)::int",
        ] {
            assert!(matches!(default_of(e), Volatility::Volatile(_)), "{e}");
        }
        assert!(matches!(default_of("my_func()"), Volatility::Unknown(_)));
    }
}
