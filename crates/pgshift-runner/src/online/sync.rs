//! The triggers that keep two columns in step while old and new code run at once, and the
//! names of everything an online change creates.
//!
//! They need nothing from the application — no `search_path`, no session setting: the
//! direction of a write is read from the row (which column the statement changed, NEW
//! against OLD). An UPDATE that changes neither column never enters PL/pgSQL
//! (`BEFORE UPDATE OF a, b ... WHEN (...)` is checked by the server in C). Their names start
//! with `zz_` so they fire after the application's own BEFORE triggers, which may still
//! change the columns. pgshift's backfill batches set `pgshift.backfill` with `SET LOCAL`.

use pgshift_sql::ident::{
    clip, quote_ident, truncate_identifier, QualifiedName, MAX_IDENTIFIER_BYTES,
};
use sha2::{Digest, Sha256};

/// A name for something pgshift creates: `pgshift_<what>_<table>_<column>`, clipped to the
/// 63-byte limit with a hash of the whole so that two long names stay apart.
pub fn object_name(what: &str, table: &str, column: &str) -> String {
    let full = format!("pgshift_{what}_{table}_{column}");
    if full.len() <= MAX_IDENTIFIER_BYTES {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    // `_` and 8 hex digits after the cut.
    format!("{}_{hex}", clip(&full, MAX_IDENTIFIER_BYTES - 9))
}

/// The trigger names sort after the application's: the server fires BEFORE triggers in name
/// order.
pub fn trigger_name(what: &str, table: &str, column: &str) -> String {
    let name = format!("zz_{}", object_name(what, table, column));
    truncate_identifier(&name).to_string()
}

/// `a IS DISTINCT FROM b`, compared as text for types without an equality of their own
/// (json, point, xml), which every type can be cast to.
pub fn distinct(a: &str, b: &str, has_equality: bool) -> String {
    if has_equality {
        format!("{a} IS DISTINCT FROM {b}")
    } else {
        format!("{a}::text IS DISTINCT FROM {b}::text")
    }
}

/// The trigger function for `what` on `table.column`, in the table's schema. Functions share
/// the schema's namespace, where `pgshift_<what>_<table>_<column>` of two tables can be one
/// name (`account`.`owner_id`, `account_owner`.`id`): a hash of the table and the column keeps
/// them apart.
pub fn function_name(what: &str, table: &QualifiedName, column: &str) -> QualifiedName {
    let digest = Sha256::digest(format!("{}\0{column}", table.name).as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let full = format!("pgshift_{what}_{}_{column}", table.name);
    let name = format!("{}_{hex}", clip(&full, MAX_IDENTIFIER_BYTES - 9));
    QualifiedName::qualified(table.schema.clone().unwrap_or_default(), name)
}

/// The statements that create a trigger function with `body` (PL/pgSQL statements) and the
/// triggers that call it.
pub struct Triggers {
    pub function: QualifiedName,
    pub body: String,
    /// `(name, timing and event, condition)`: e.g. `BEFORE UPDATE OF a`, `NEW.a IS NULL`.
    pub triggers: Vec<(String, String, Option<String>)>,
}

impl Triggers {
    pub fn create(&self, table: &QualifiedName) -> Vec<String> {
        // A compiler option (`#variable_conflict`) comes before BEGIN.
        let (options, body) = match self.body.strip_prefix('#') {
            Some(rest) => {
                let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
                (format!("#{line}\n"), body)
            }
            None => (String::new(), self.body.as_str()),
        };
        let mut sql = vec![format!(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $pgshift$\n{options}BEGIN\n{body}\n  RETURN NEW;\nEND\n$pgshift$",
            self.function.quoted(),
        )];
        for (name, event, when) in &self.triggers {
            let when = when
                .as_ref()
                .map(|w| format!(" WHEN ({w})"))
                .unwrap_or_default();
            sql.push(format!(
                "CREATE TRIGGER {} {event} ON {} FOR EACH ROW{when} EXECUTE FUNCTION {}()",
                quote_ident(name),
                table.quoted(),
                self.function.quoted()
            ));
        }
        sql
    }

    pub fn drop(&self, table: &QualifiedName) -> Vec<String> {
        let mut sql: Vec<String> = self
            .triggers
            .iter()
            .map(|(name, _, _)| {
                format!(
                    "DROP TRIGGER IF EXISTS {} ON {}",
                    quote_ident(name),
                    table.quoted()
                )
            })
            .collect();
        sql.push(format!(
            "DROP FUNCTION IF EXISTS {}()",
            self.function.quoted()
        ));
        sql
    }
}

/// One way, for a type change: every write of `old` (both old and new code write it until
/// the names swap at contract) sets `new := up(row)`.
pub fn one_way(
    table: &QualifiedName,
    old: &str,
    new: &str,
    up_row: &str,
    has_equality: bool,
) -> Triggers {
    let (o, n) = (quote_ident(old), quote_ident(new));
    Triggers {
        function: function_name("sync", table, old),
        body: format!("  NEW.{n} := {up_row};"),
        triggers: vec![
            (
                trigger_name("sync_ins", &table.name, old),
                "BEFORE INSERT".to_string(),
                None,
            ),
            (
                trigger_name("sync_upd", &table.name, old),
                format!("BEFORE UPDATE OF {o}"),
                Some(distinct(
                    &format!("NEW.{o}"),
                    &format!("OLD.{o}"),
                    has_equality,
                )),
            ),
        ],
    }
}

/// Both ways, for a renamed column: old code writes `old`, new code writes `new`; whichever
/// the statement changed is copied to the other. A write that sets both to different values
/// is an error (SQLSTATE 23514), never a silent loss. `default` is the old column's default,
/// moved into the trigger for the window: with it on the column, an INSERT from new code
/// would look as if it had written both.
pub fn two_way(
    table: &QualifiedName,
    old: &str,
    new: &str,
    default: Option<&str>,
    has_equality: bool,
) -> Triggers {
    let (o, n) = (quote_ident(old), quote_ident(new));
    let d = |a: &str, b: &str| distinct(a, b, has_equality);
    let conflict = format!(
        "RAISE EXCEPTION 'pgshift: columns % and % of table % were written with different values in one statement', {}, {}, TG_TABLE_NAME USING ERRCODE = '23514'",
        pgshift_sql::ident::quote_literal(old),
        pgshift_sql::ident::quote_literal(new)
    );
    let default_fill = default
        .map(|expr| {
            format!(
                "\n    IF NEW.{o} IS NULL AND NEW.{n} IS NULL THEN\n      NEW.{o} := {expr};\n      NEW.{n} := NEW.{o};\n    END IF;"
            )
        })
        .unwrap_or_default();
    let body = format!(
        "  IF current_setting('pgshift.backfill', true) = 'on' THEN\n    RETURN NEW;\n  END IF;\n  IF TG_OP = 'INSERT' THEN{default_fill}\n    IF NEW.{n} IS NULL THEN\n      NEW.{n} := NEW.{o};\n    ELSIF NEW.{o} IS NULL THEN\n      NEW.{o} := NEW.{n};\n    ELSIF {} THEN\n      {conflict};\n    END IF;\n  ELSIF {} AND NOT ({}) THEN\n    NEW.{n} := NEW.{o};\n  ELSIF {} AND NOT ({}) THEN\n    NEW.{o} := NEW.{n};\n  ELSIF {} THEN\n    {conflict};\n  END IF;",
        d(&format!("NEW.{n}"), &format!("NEW.{o}")),
        d(&format!("NEW.{o}"), &format!("OLD.{o}")),
        d(&format!("NEW.{n}"), &format!("OLD.{n}")),
        d(&format!("NEW.{n}"), &format!("OLD.{n}")),
        d(&format!("NEW.{o}"), &format!("OLD.{o}")),
        d(&format!("NEW.{n}"), &format!("NEW.{o}")),
    );
    Triggers {
        function: function_name("sync", table, old),
        body,
        triggers: vec![
            (
                trigger_name("sync_ins", &table.name, old),
                "BEFORE INSERT".to_string(),
                None,
            ),
            (
                trigger_name("sync_upd", &table.name, old),
                format!("BEFORE UPDATE OF {o}, {n}"),
                Some(format!(
                    "{} OR {}",
                    d(&format!("NEW.{o}"), &format!("OLD.{o}")),
                    d(&format!("NEW.{n}"), &format!("OLD.{n}"))
                )),
            ),
        ],
    }
}

/// A fill, for an added column computed from the row: a row written without the column
/// (old code does not know it) gets `fill(row)`.
pub fn fill(table: &QualifiedName, column: &str, fill_row: &str) -> Triggers {
    let c = quote_ident(column);
    Triggers {
        function: function_name("fill", table, column),
        body: format!("  NEW.{c} := {fill_row};"),
        triggers: vec![
            (
                trigger_name("fill_ins", &table.name, column),
                "BEFORE INSERT".to_string(),
                Some(format!("NEW.{c} IS NULL")),
            ),
            (
                trigger_name("fill_upd", &table.name, column),
                "BEFORE UPDATE".to_string(),
                Some(format!("NEW.{c} IS NULL")),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_limit_and_stay_apart() {
        let long = "a".repeat(60);
        let a = object_name("sync", &long, "x");
        let b = object_name("sync", &long, "y");
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
        assert_eq!(
            object_name("sync", "users", "name"),
            "pgshift_sync_users_name"
        );
        assert!(trigger_name("sync_ins", &long, "x").len() <= 63);
        assert!(trigger_name("sync_ins", "users", "name").as_str() > "users_audit");
    }

    #[test]
    fn trigger_functions_of_two_tables_never_share_a_name() {
        let a = function_name(
            "sync",
            &QualifiedName::qualified("public", "account"),
            "owner_id",
        );
        let b = function_name(
            "sync",
            &QualifiedName::qualified("public", "account_owner"),
            "id",
        );
        assert_ne!(a, b);
        assert!(
            a.name.starts_with("pgshift_sync_account_owner_id_"),
            "{a:?}"
        );
        let long = function_name("sync", &QualifiedName::qualified("s", "t".repeat(70)), "c");
        assert!(long.name.len() <= MAX_IDENTIFIER_BYTES);
    }

    #[test]
    fn types_without_equality_compare_as_text() {
        assert_eq!(distinct("a", "b", true), "a IS DISTINCT FROM b");
        assert_eq!(
            distinct("a", "b", false),
            "a::text IS DISTINCT FROM b::text"
        );
    }
}
