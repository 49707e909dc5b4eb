//! What in a statement breaks code that is still running against the old schema, and why.
//!
//! A deploy runs the migration while the previous release of the application is still
//! serving: anything that release names, writes or assumes must keep working until it is gone.
//! This table is the one answer to "is this backward compatible?": the backward-compatibility
//! rules (PGS315, PGS401–PGS407, PGS207, PGS302) fire on what it reports, and `pgshift plan`'s
//! checklist lists it, so `check` and `plan` cannot disagree.
//!
//! Objects created earlier in the same migration are not reported: no running code knows them.
//! Adding constraints (CHECK, UNIQUE, FOREIGN KEY) is not reported either: it narrows what may
//! be written, which is the point of adding them, and the lock rules cover how they are added.

use std::fmt;

use pg_query::protobuf::{AlterTableType, ConstrType, Node, ObjectType};
use pg_query::NodeEnum;
use serde::Serialize;

use super::casts::{retype, using_casts, TypeChange, TypeSpec};
use super::effects::{alter_commands, column_constraints, command_constraint, constraint_type};
use crate::context::Context;
use pgshift_sql::ident::QualifiedName;

/// What kind of change breaks the running code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakingKind {
    DropDatabase,
    DropSchema,
    DropTable,
    /// A view or materialized view.
    DropView,
    DropSequence,
    /// A type or domain.
    DropType,
    /// A function or procedure.
    DropFunction,
    DropColumn,
    RenameSchema,
    /// A table, view, materialized view or foreign table.
    RenameTable,
    RenameSequence,
    RenameColumn,
    /// A type or domain.
    RenameType,
    /// A function or procedure.
    RenameFunction,
    RenameEnumValue,
    /// `ALTER ... SET SCHEMA`: the object's qualified name changes.
    MoveToSchema,
    RetypeColumn,
    /// `ADD COLUMN ... NOT NULL` with nothing to fill it.
    AddRequiredColumn,
    SetNotNull,
    DropNotNull,
    DropDefault,
    DropConstraint,
}

/// One change in a statement that breaks code running against the old schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakingChange {
    pub kind: BreakingKind,
    /// The object changed: the table (of a column or constraint), schema, type (of an enum
    /// value), view, sequence, function or database.
    pub object: QualifiedName,
    /// The part of the object, when the change is to a part: the column, the constraint, the
    /// enum value (its old name).
    pub part: Option<String>,
    /// The new name of a rename, or the new schema of a move.
    pub new_name: Option<String>,
    /// Why the running code breaks, in one line.
    pub why: &'static str,
}

impl BreakingChange {
    fn new(kind: BreakingKind, object: QualifiedName) -> BreakingChange {
        BreakingChange {
            kind,
            object,
            part: None,
            new_name: None,
            why: why(kind),
        }
    }
    fn part(mut self, part: &str) -> BreakingChange {
        self.part = Some(part.to_string());
        self
    }
    fn new_name(mut self, name: &str) -> BreakingChange {
        self.new_name = Some(name.to_string());
        self
    }

    /// What the statement does, in a few words ("renames schema `app` to `app2`").
    pub fn what(&self) -> String {
        use BreakingKind::*;
        let o = &self.object;
        let p = self.part.as_deref().unwrap_or_default();
        let n = self.new_name.as_deref().unwrap_or_default();
        match self.kind {
            DropDatabase => format!("drops database `{o}`"),
            DropSchema => format!("drops schema `{o}`"),
            DropTable => format!("drops table `{o}`"),
            DropView => format!("drops view `{o}`"),
            DropSequence => format!("drops sequence `{o}`"),
            DropType => format!("drops type `{o}`"),
            DropFunction => format!("drops function `{o}`"),
            DropColumn => format!("drops column `{p}` of `{o}`"),
            RenameSchema => format!("renames schema `{o}` to `{n}`"),
            RenameTable | RenameSequence | RenameType | RenameFunction => {
                format!("renames `{o}` to `{n}`")
            }
            RenameColumn => format!("renames column `{p}` of `{o}` to `{n}`"),
            RenameEnumValue => format!("renames value '{p}' of `{o}` to '{n}'"),
            MoveToSchema => format!("moves `{o}` to schema `{n}`"),
            RetypeColumn => format!("changes the type of `{p}` of `{o}`"),
            AddRequiredColumn => format!("adds NOT NULL column `{p}` to `{o}` without a default"),
            SetNotNull => format!("sets NOT NULL on `{p}` of `{o}`"),
            DropNotNull => format!("drops NOT NULL on `{p}` of `{o}`"),
            DropDefault => format!("drops the default of `{p}` of `{o}`"),
            DropConstraint => format!("drops constraint `{p}` of `{o}`"),
        }
    }
}

impl fmt::Display for BreakingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what(), self.why)
    }
}

/// Why each kind of change breaks the code that is running.
fn why(kind: BreakingKind) -> &'static str {
    use BreakingKind::*;
    match kind {
        DropDatabase => "every connection to it fails and everything in it is lost",
        DropSchema => "queries that name anything in it fail",
        DropTable => "running code that still reads or writes it fails, and its data is lost",
        DropView => "queries that still read it fail",
        DropSequence => "code that still takes values from it fails",
        DropType => "code that still casts to it or declares it fails",
        DropFunction => "code that still calls it fails",
        DropColumn => {
            "running code that still reads or writes it fails, and its data is lost"
        }
        RenameSchema => "every query and search_path that names the old name fails",
        RenameTable | RenameColumn | RenameSequence | RenameType | RenameFunction => {
            "running code that uses the old name fails"
        }
        RenameEnumValue => "running code that reads or writes the old value fails",
        MoveToSchema => "queries that name it in its old schema fail",
        RetypeColumn => "running code that reads or writes the old type may fail",
        AddRequiredColumn => "the running code's inserts do not write the column and fail",
        SetNotNull => "the running code's inserts that leave the column NULL fail",
        DropNotNull => {
            "running code that assumes the column is never NULL may break on the first NULL"
        }
        DropDefault => {
            "the running code's inserts that leave the column out get NULL, or fail if it is NOT NULL"
        }
        DropConstraint => {
            "running code may rely on its guarantee (ON CONFLICT needs a unique constraint, foreign keys' ON DELETE actions stop)"
        }
    }
}

/// Every change in the statement that breaks code running against the schema before it, in
/// the order written. `ctx` is the state before the statement (what this migration created).
pub fn breaking_changes(node: &NodeEnum, ctx: &Context) -> Vec<BreakingChange> {
    use BreakingKind::*;
    let mut out = Vec::new();
    match node {
        NodeEnum::DropdbStmt(d) => {
            out.push(BreakingChange::new(
                DropDatabase,
                QualifiedName::new(None, &d.dbname),
            ));
        }
        NodeEnum::DropStmt(d) => {
            let kind = match ObjectType::try_from(d.remove_type).unwrap_or(ObjectType::Undefined) {
                ObjectType::ObjectSchema => DropSchema,
                ObjectType::ObjectTable => DropTable,
                ObjectType::ObjectView | ObjectType::ObjectMatview => DropView,
                ObjectType::ObjectSequence => DropSequence,
                ObjectType::ObjectType | ObjectType::ObjectDomain => DropType,
                ObjectType::ObjectFunction | ObjectType::ObjectProcedure => DropFunction,
                _ => return out,
            };
            for name in d.objects.iter().filter_map(object_name) {
                let new = match kind {
                    DropTable | DropView => ctx.is_new_table(&name),
                    DropType => ctx.is_new_type(&name),
                    _ => false,
                };
                if !new {
                    out.push(BreakingChange::new(kind, name));
                }
            }
        }
        NodeEnum::RenameStmt(r) => {
            let relation = r.relation.as_ref().map(QualifiedName::from_range_var);
            let object = r.object.as_deref().and_then(object_name);
            let change = match ObjectType::try_from(r.rename_type).unwrap_or(ObjectType::Undefined)
            {
                ObjectType::ObjectSchema => Some(BreakingChange::new(
                    RenameSchema,
                    QualifiedName::new(None, &r.subname),
                )),
                ObjectType::ObjectColumn => relation
                    .filter(|t| !ctx.is_new_table(t))
                    .map(|t| BreakingChange::new(RenameColumn, t).part(&r.subname)),
                ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectForeignTable => relation
                    .filter(|t| !ctx.is_new_table(t))
                    .map(|t| BreakingChange::new(RenameTable, t)),
                ObjectType::ObjectSequence => {
                    relation.map(|t| BreakingChange::new(RenameSequence, t))
                }
                ObjectType::ObjectType | ObjectType::ObjectDomain => object
                    .filter(|t| !ctx.is_new_type(t))
                    .map(|t| BreakingChange::new(RenameType, t)),
                ObjectType::ObjectFunction | ObjectType::ObjectProcedure => {
                    object.map(|f| BreakingChange::new(RenameFunction, f))
                }
                // Index, constraint, trigger and other renames: application code does not
                // name these (index names appear only in hints and maintenance).
                _ => None,
            };
            out.extend(change.map(|c| c.new_name(&r.newname)));
        }
        // ADD VALUE has no old value; RENAME VALUE has.
        NodeEnum::AlterEnumStmt(e) if !e.old_val.is_empty() => {
            let name = QualifiedName::from_names(&e.type_name)
                .unwrap_or_else(|| QualifiedName::new(None, ""));
            if !ctx.is_new_type(&name) {
                out.push(
                    BreakingChange::new(RenameEnumValue, name)
                        .part(&e.old_val)
                        .new_name(&e.new_val),
                );
            }
        }
        NodeEnum::AlterObjectSchemaStmt(a) => {
            let name = match ObjectType::try_from(a.object_type).unwrap_or(ObjectType::Undefined) {
                ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectForeignTable
                | ObjectType::ObjectSequence => a
                    .relation
                    .as_ref()
                    .map(QualifiedName::from_range_var)
                    .filter(|t| !ctx.is_new_table(t)),
                ObjectType::ObjectType | ObjectType::ObjectDomain => a
                    .object
                    .as_deref()
                    .and_then(object_name)
                    .filter(|t| !ctx.is_new_type(t)),
                ObjectType::ObjectFunction | ObjectType::ObjectProcedure => {
                    a.object.as_deref().and_then(object_name)
                }
                _ => None,
            };
            if let Some(name) = name {
                out.push(BreakingChange::new(MoveToSchema, name).new_name(&a.newschema));
            }
        }
        NodeEnum::AlterTableStmt(a) => {
            let Some(rv) = &a.relation else { return out };
            let table = QualifiedName::from_range_var(rv);
            if ctx.is_new_table(&table) {
                return out;
            }
            for (kind, cmd) in alter_commands(a) {
                let change = match kind {
                    AlterTableType::AtDropColumn => Some((DropColumn, cmd.name.as_str())),
                    AlterTableType::AtAlterColumnType if !widens(&table, cmd, ctx) => {
                        Some((RetypeColumn, cmd.name.as_str()))
                    }
                    AlterTableType::AtSetNotNull => Some((SetNotNull, cmd.name.as_str())),
                    // PostgreSQL 18: `ADD CONSTRAINT n NOT NULL col` is a SET NOT NULL.
                    AlterTableType::AtAddConstraint => match command_constraint(cmd) {
                        Some(c) if constraint_type(c) == ConstrType::ConstrNotnull => {
                            c.keys.iter().find_map(|k| match &k.node {
                                Some(NodeEnum::String(s)) => Some((SetNotNull, s.sval.as_str())),
                                _ => None,
                            })
                        }
                        _ => None,
                    },
                    AlterTableType::AtDropNotNull => Some((DropNotNull, cmd.name.as_str())),
                    AlterTableType::AtDropConstraint if !re_added(a, &table, &cmd.name) => {
                        Some((DropConstraint, cmd.name.as_str()))
                    }
                    // SET DEFAULT and DROP DEFAULT share a subtype; DROP has no expression.
                    AlterTableType::AtColumnDefault if cmd.def.is_none() => {
                        Some((DropDefault, cmd.name.as_str()))
                    }
                    AlterTableType::AtAddColumn => {
                        match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                            Some(NodeEnum::ColumnDef(col)) if is_required_column(col) => {
                                Some((AddRequiredColumn, col.colname.as_str()))
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                };
                if let Some((kind, part)) = change {
                    out.push(BreakingChange::new(kind, table.clone()).part(part));
                }
            }
        }
        _ => {}
    }
    out
}

/// Whether the same ALTER TABLE adds back the constraint it drops, so no moment without it is
/// visible to anyone: a constraint of the same name, or a PRIMARY KEY when the dropped one is
/// the table's (PostgreSQL names it `<table>_pkey`). The usual way to move a primary key to a
/// new index (built CONCURRENTLY beforehand): `DROP CONSTRAINT t_pkey, ADD CONSTRAINT t_pkey
/// PRIMARY KEY USING INDEX t_new` (checked on 15: one ACCESS EXCLUSIVE on the table, the index
/// renamed, the key never missing).
fn re_added(
    stmt: &pg_query::protobuf::AlterTableStmt,
    table: &QualifiedName,
    dropped: &str,
) -> bool {
    let primary_key = format!("{}_pkey", table.name);
    alter_commands(stmt).any(|(kind, cmd)| {
        kind == AlterTableType::AtAddConstraint
            && command_constraint(cmd).is_some_and(|c| {
                c.conname == dropped
                    || (dropped == primary_key && constraint_type(c) == ConstrType::ConstrPrimary)
            })
    })
}

/// Whether a new column must be written by every insert: NOT NULL (or PRIMARY KEY) with
/// nothing that fills it (a default, identity, generated expression or serial type).
pub fn is_required_column(col: &pg_query::protobuf::ColumnDef) -> bool {
    let cons: Vec<ConstrType> = column_constraints(col).map(constraint_type).collect();
    let not_null = cons
        .iter()
        .any(|c| matches!(c, ConstrType::ConstrNotnull | ConstrType::ConstrPrimary));
    let filled = cons.iter().any(|c| {
        matches!(
            c,
            ConstrType::ConstrDefault | ConstrType::ConstrIdentity | ConstrType::ConstrGenerated
        )
    }) || !col.identity.is_empty()
        || !col.generated.is_empty()
        || col.type_name.as_ref().is_some_and(|t| {
            matches!(
                TypeSpec::from_type_name(t).name.as_str(),
                "serial" | "bigserial" | "smallserial"
            )
        });
    not_null && !filled
}

/// Whether an `ALTER COLUMN ... TYPE` only widens a type the running code already handles
/// (the binary-compatible changes: varchar(n) to a larger varchar or text, numeric
/// precision up, ...). An unknown old type, a USING expression or any other change counts as
/// a retype.
fn widens(table: &QualifiedName, cmd: &pg_query::protobuf::AlterTableCmd, ctx: &Context) -> bool {
    let Some(NodeEnum::ColumnDef(col)) = cmd.def.as_deref().and_then(|d| d.node.as_ref()) else {
        return false;
    };
    // A USING that only casts the column itself (`USING name::text`, Knex's habit) is judged
    // like the casts it spells; anything else computes new values.
    let casts = match col.raw_default.as_deref() {
        None => Vec::new(),
        Some(expr) => match using_casts(expr, &cmd.name) {
            Some(casts) => casts,
            None => return false,
        },
    };
    match (ctx.column_type(table, &cmd.name), &col.type_name) {
        // timestamp ↔ timestamptz changes what the code reads even where the files stay: not
        // judged in a UTC session here.
        (Some(old), Some(new)) => matches!(
            retype(
                old,
                &casts,
                &TypeSpec::from_type_name(new),
                false,
                ctx.version
            ),
            TypeChange::Same | TypeChange::BinaryCompatible(_)
        ),
        _ => false,
    }
}

/// The name of one object of a DROP, RENAME or SET SCHEMA: a name list (tables, views), a
/// bare string (schemas), a type name, or a function with its arguments.
fn object_name(node: &Node) -> Option<QualifiedName> {
    match node.node.as_ref()? {
        NodeEnum::List(l) => QualifiedName::from_names(&l.items),
        NodeEnum::String(s) => Some(QualifiedName::new(None, &s.sval)),
        NodeEnum::TypeName(t) => QualifiedName::from_names(&t.names),
        NodeEnum::ObjectWithArgs(f) => QualifiedName::from_names(&f.objname),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Direction;
    use crate::knowledge::effects::statement_effects;
    use crate::knowledge::version::PgVersion;

    /// The breaking changes of the last statement of `sql`, after the ones before it.
    fn breaks(sql: &str) -> Vec<BreakingChange> {
        let parsed = pgshift_sql::parse(sql);
        assert!(parsed.errors.is_empty(), "{sql}: {:?}", parsed.errors);
        let mut ctx = Context::new(PgVersion::new(15, 0), true);
        ctx.start_script(true, Direction::Up);
        let mut last = Vec::new();
        for s in &parsed.statements {
            last = breaking_changes(&s.node, &ctx);
            let effects = statement_effects(&s.node, &ctx);
            ctx.observe(&s.node, &effects, s.span.clone());
        }
        last
    }

    fn kinds(sql: &str) -> Vec<BreakingKind> {
        breaks(sql).into_iter().map(|b| b.kind).collect()
    }

    #[test]
    fn drops_are_breaking() {
        use BreakingKind::*;
        assert_eq!(kinds("DROP DATABASE app"), [DropDatabase]);
        assert_eq!(
            kinds("DROP SCHEMA app, old CASCADE"),
            [DropSchema, DropSchema]
        );
        assert_eq!(kinds("DROP TABLE a, b"), [DropTable, DropTable]);
        assert_eq!(kinds("DROP VIEW v"), [DropView]);
        assert_eq!(kinds("DROP MATERIALIZED VIEW m"), [DropView]);
        assert_eq!(kinds("DROP SEQUENCE s"), [DropSequence]);
        assert_eq!(kinds("DROP TYPE mood"), [DropType]);
        assert_eq!(kinds("DROP DOMAIN email"), [DropType]);
        assert_eq!(kinds("DROP FUNCTION f(int)"), [DropFunction]);
        assert_eq!(kinds("ALTER TABLE t DROP COLUMN a"), [DropColumn]);
        assert_eq!(
            kinds("ALTER TABLE t DROP CONSTRAINT t_a_key"),
            [DropConstraint]
        );
        assert_eq!(
            kinds("ALTER TABLE t ALTER COLUMN a DROP NOT NULL"),
            [DropNotNull]
        );
        assert_eq!(
            kinds("ALTER TABLE t ALTER COLUMN a DROP DEFAULT"),
            [DropDefault]
        );
    }

    #[test]
    fn renames_and_moves_are_breaking() {
        use BreakingKind::*;
        assert_eq!(kinds("ALTER SCHEMA app RENAME TO app2"), [RenameSchema]);
        assert_eq!(kinds("ALTER TABLE t RENAME TO u"), [RenameTable]);
        assert_eq!(kinds("ALTER VIEW v RENAME TO w"), [RenameTable]);
        assert_eq!(kinds("ALTER TABLE t RENAME COLUMN a TO b"), [RenameColumn]);
        assert_eq!(kinds("ALTER TYPE mood RENAME TO feeling"), [RenameType]);
        assert_eq!(kinds("ALTER FUNCTION f(int) RENAME TO g"), [RenameFunction]);
        assert_eq!(
            kinds("ALTER TYPE mood RENAME VALUE 'a' TO 'b'"),
            [RenameEnumValue]
        );
        assert_eq!(kinds("ALTER SEQUENCE s RENAME TO s2"), [RenameSequence]);
        assert_eq!(kinds("ALTER TABLE t SET SCHEMA archive"), [MoveToSchema]);
        assert_eq!(kinds("ALTER TYPE mood SET SCHEMA archive"), [MoveToSchema]);
        let b = &breaks("ALTER TYPE mood RENAME VALUE 'a' TO 'b'")[0];
        assert_eq!(b.object, QualifiedName::new(None, "mood"));
        assert_eq!(
            (b.part.as_deref(), b.new_name.as_deref()),
            (Some("a"), Some("b"))
        );
        assert_eq!(
            breaks("ALTER SCHEMA app RENAME TO app2")[0].to_string(),
            "renames schema `app` to `app2`: every query and search_path that names the old name fails"
        );
    }

    #[test]
    fn making_a_column_mandatory_or_retyping_it_is_breaking() {
        use BreakingKind::*;
        assert_eq!(
            kinds("ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
            [SetNotNull]
        );
        assert_eq!(
            kinds("ALTER TABLE t ADD COLUMN a int NOT NULL"),
            [AddRequiredColumn]
        );
        assert_eq!(
            kinds("ALTER TABLE t ADD COLUMN a int PRIMARY KEY"),
            [AddRequiredColumn]
        );
        assert_eq!(
            kinds("ALTER TABLE t ALTER COLUMN a TYPE bigint"),
            [RetypeColumn]
        );
        // The old type is unknown: even a likely widening counts.
        assert_eq!(
            kinds("ALTER TABLE t ALTER COLUMN a TYPE text"),
            [RetypeColumn]
        );
    }

    #[test]
    fn additive_changes_are_not_breaking() {
        for sql in [
            "CREATE TABLE t (id bigint PRIMARY KEY, a text NOT NULL)",
            "ALTER TABLE t ADD COLUMN a int",
            "ALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT 0",
            "ALTER TABLE t ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY",
            "ALTER TABLE t ADD COLUMN id bigserial",
            "ALTER TABLE t ALTER COLUMN a SET DEFAULT 0",
            "CREATE INDEX i ON t (a)",
            "DROP INDEX i",
            "ALTER INDEX i RENAME TO j",
            "ALTER TABLE t RENAME CONSTRAINT c TO d",
            "ALTER TYPE mood ADD VALUE 'meh'",
            "CREATE VIEW v AS SELECT 1",
            "INSERT INTO t VALUES (1)",
        ] {
            assert_eq!(breaks(sql), [], "{sql}");
        }
    }

    #[test]
    fn objects_created_in_the_same_migration_break_nothing() {
        for sql in [
            "CREATE TABLE t (a int); ALTER TABLE t DROP COLUMN a",
            "CREATE TABLE t (a int); ALTER TABLE t RENAME COLUMN a TO b",
            "CREATE TABLE t (a int); ALTER TABLE t RENAME TO u",
            "CREATE TABLE t (a int); ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            "CREATE TABLE t (a int); ALTER TABLE t ADD COLUMN b int NOT NULL",
            "CREATE TABLE t (a int); DROP TABLE t",
            "CREATE TYPE mood AS ENUM ('a'); ALTER TYPE mood RENAME VALUE 'a' TO 'b'",
            "CREATE TYPE mood AS ENUM ('a'); DROP TYPE mood",
        ] {
            assert_eq!(breaks(sql), [], "{sql}");
        }
        // Only the new one of two dropped tables is left out.
        let b = breaks("CREATE TABLE t (a int); DROP TABLE t, old");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].object, QualifiedName::new(None, "old"));
    }

    #[test]
    fn widening_a_known_type_is_not_breaking() {
        // The context learns column types from CREATE TABLE; only an earlier migration's
        // table is "existing", so feed the type directly.
        let parsed = pgshift_sql::parse("ALTER TABLE t ALTER COLUMN a TYPE varchar(20)");
        let mut ctx = Context::new(PgVersion::new(15, 0), true);
        let t = QualifiedName::new(None, "t");
        let narrow = pgshift_sql::parse("CREATE TABLE p (a varchar(10))");
        let Some(NodeEnum::CreateStmt(c)) = narrow.statements.first().map(|s| &s.node) else {
            panic!("no CREATE TABLE")
        };
        let Some(NodeEnum::ColumnDef(col)) = c.table_elts[0].node.as_ref() else {
            panic!("no column")
        };
        let ty = TypeSpec::from_type_name(col.type_name.as_ref().expect("a type"));
        ctx.assume_column_type(&t, "a", ty);
        ctx.start_script(true, Direction::Up);
        assert_eq!(breaking_changes(&parsed.statements[0].node, &ctx), []);
        let narrowing = pgshift_sql::parse("ALTER TABLE t ALTER COLUMN a TYPE int USING a::int");
        assert_eq!(
            breaking_changes(&narrowing.statements[0].node, &ctx)[0].kind,
            BreakingKind::RetypeColumn
        );
    }
}
