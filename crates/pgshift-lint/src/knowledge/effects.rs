//! What each statement locks, rewrites and scans: the table behind `pgshift plan` and the
//! expectation `pgshift trace` compares observed locks against.
//!
//! Sources: the PostgreSQL documentation, "Explicit Locking" (13.3.1) and the ALTER TABLE
//! reference ("the lock level required for each subform"). For an ALTER TABLE with several
//! subcommands the strongest lock wins, and it is held until the transaction ends.

use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ConstrType, Constraint, DropBehavior, ObjectType, RangeVar,
};
use pg_query::NodeEnum;
use serde::Serialize;

use super::casts::{likely_safe_target, retype, using_casts, TypeChange, TypeSpec};
use super::lock::LockLevel;
use super::version::Feature;
use super::volatility::{volatility_in, Volatility};
use std::borrow::Cow;

use crate::context::Context;
use pgshift_sql::ident::QualifiedName;

/// One relation a statement locks, and what it does to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effect {
    /// The table (or index, view, sequence) locked.
    pub table: QualifiedName,
    pub lock: LockLevel,
    /// The table (or index) is rewritten: new files, every row copied, indexes rebuilt.
    pub rewrite: bool,
    /// The whole table is read (to build an index, check a constraint, ...).
    pub scan: bool,
    /// Why, in a few words ("SET NOT NULL scans to check for NULLs"). Mostly a fixed text,
    /// borrowed: a file of 100,000 `INSERT`s holds one effect per statement.
    pub note: Cow<'static, str>,
    /// An index whose table the statement locks as strongly (`DROP INDEX`): whoever uses the
    /// index holds a lock on the table, so taking the table's lock is enough to know nobody
    /// is in the way.
    #[serde(skip)]
    pub through_table: bool,
    /// The relation is a view (`DROP VIEW`): a `LOCK` of it would lock every table it reads,
    /// so the guard looks at it otherwise.
    #[serde(skip)]
    pub view: bool,
    /// The statement fails unless the relation is a table (set by the runner, which reads
    /// the statement: `CREATE INDEX`, `DROP TABLE`, `TRUNCATE`, an `ALTER TABLE` adding or
    /// dropping a column or constraint): the guard's first look may lock it without asking
    /// first what it is, since a `LOCK` that took a view's tables ends with the failing unit.
    #[serde(skip)]
    pub fails_unless_table: bool,
}

impl Effect {
    fn new(table: QualifiedName, lock: LockLevel, note: impl Into<Cow<'static, str>>) -> Effect {
        Effect {
            table,
            lock,
            rewrite: false,
            scan: false,
            note: note.into(),
            through_table: false,
            view: false,
            fails_unless_table: false,
        }
    }
    fn scan(mut self) -> Effect {
        self.scan = true;
        self
    }
    fn rewrite(mut self) -> Effect {
        self.rewrite = true;
        self
    }
}

/// What one ALTER TABLE subcommand does to its table (and other tables, for foreign keys and
/// partitions).
#[derive(Debug, Clone)]
pub struct CommandEffect {
    pub kind: AlterTableType,
    pub lock: LockLevel,
    pub rewrite: bool,
    pub scan: bool,
    pub note: String,
    /// Locks on other relations (the referenced table of a foreign key, a partition).
    pub others: Vec<Effect>,
}

/// The subcommands of an ALTER TABLE, with their kind.
pub fn alter_commands(
    stmt: &pg_query::protobuf::AlterTableStmt,
) -> impl Iterator<Item = (AlterTableType, &AlterTableCmd)> {
    stmt.cmds.iter().filter_map(|c| match &c.node {
        Some(NodeEnum::AlterTableCmd(cmd)) => Some((
            AlterTableType::try_from(cmd.subtype).unwrap_or(AlterTableType::Undefined),
            cmd.as_ref(),
        )),
        _ => None,
    })
}

/// The constraint a subcommand or column definition adds, if any.
pub fn command_constraint(cmd: &AlterTableCmd) -> Option<&Constraint> {
    match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
        Some(NodeEnum::Constraint(c)) => Some(c),
        _ => None,
    }
}

pub fn constraint_type(c: &Constraint) -> ConstrType {
    ConstrType::try_from(c.contype).unwrap_or(ConstrType::Undefined)
}

/// Every lock the statement takes, one entry per relation, strongest first per relation.
pub fn statement_effects(node: &NodeEnum, ctx: &Context) -> Vec<Effect> {
    one_per_relation(effects_by_clause(node, ctx))
}

/// Several clauses of one statement may lock the same relation (a self-referencing foreign
/// key locks its table as the referencing and the referenced one): the strongest lock is what
/// the statement holds, so each relation is listed once, where it first appears.
fn one_per_relation(effects: Vec<Effect>) -> Vec<Effect> {
    let mut out: Vec<Effect> = Vec::with_capacity(effects.len());
    for e in effects {
        match out.iter_mut().find(|o| o.table.same_object(&e.table)) {
            Some(o) => {
                o.lock = o.lock.max(e.lock);
                o.rewrite |= e.rewrite;
                o.scan |= e.scan;
                if !e.note.is_empty() && !o.note.contains(e.note.as_ref()) {
                    let note = o.note.to_mut();
                    note.push_str("; ");
                    note.push_str(&e.note);
                }
            }
            None => out.push(e),
        }
    }
    out
}

fn effects_by_clause(node: &NodeEnum, ctx: &Context) -> Vec<Effect> {
    use LockLevel::*;
    let mut out = Vec::new();
    match node {
        NodeEnum::CreateStmt(c) => {
            if let Some(rv) = &c.relation {
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    AccessExclusive,
                    "new table",
                ));
            }
            for rv in c.inh_relations.iter().filter_map(range_var) {
                let note = if c.partbound.is_some() {
                    "CREATE TABLE ... PARTITION OF locks the parent"
                } else {
                    "INHERITS locks the parent"
                };
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    AccessExclusive,
                    note,
                ));
            }
            for fk in create_stmt_foreign_keys(c) {
                if let Some(rv) = &fk.pktable {
                    out.push(Effect::new(
                        QualifiedName::from_range_var(rv),
                        ShareRowExclusive,
                        "referenced by a new foreign key",
                    ));
                }
            }
        }
        NodeEnum::IndexStmt(i) => {
            if let Some(rv) = &i.relation {
                let t = QualifiedName::from_range_var(rv);
                out.push(if i.concurrent {
                    Effect::new(
                        t,
                        ShareUpdateExclusive,
                        "CREATE INDEX CONCURRENTLY builds the index while writes continue",
                    )
                    .scan()
                } else if !rv.inh {
                    // `ON ONLY` a partitioned table: the index of that table alone, invalid
                    // until its partitions' are attached; no row is read.
                    Effect::new(t, Share, "CREATE INDEX ON ONLY reads no rows")
                } else {
                    Effect::new(t, Share, "CREATE INDEX blocks writes for the whole build").scan()
                });
            }
        }
        // ---- DROP TRIGGER / RULE / POLICY (checked with pg_locks on 15): ACCESS EXCLUSIVE on
        // the table, like CREATE RULE and unlike CREATE TRIGGER.
        NodeEnum::DropStmt(d)
            if [
                ObjectType::ObjectTrigger,
                ObjectType::ObjectRule,
                ObjectType::ObjectPolicy,
            ]
            .iter()
            .any(|k| d.remove_type == *k as i32) =>
        {
            for obj in &d.objects {
                if let Some(NodeEnum::List(l)) = &obj.node {
                    let table = &l.items[..l.items.len().saturating_sub(1)];
                    if let Some(table) = QualifiedName::from_names(table) {
                        out.push(Effect::new(
                            table,
                            AccessExclusive,
                            "dropping a trigger, rule or policy locks its table",
                        ));
                    }
                }
            }
        }
        // ---- end of DROP TRIGGER / RULE / POLICY
        NodeEnum::DropStmt(d) => {
            let kind = ObjectType::try_from(d.remove_type).unwrap_or(ObjectType::Undefined);
            let lock = match kind {
                ObjectType::ObjectIndex if d.concurrent => ShareUpdateExclusive,
                ObjectType::ObjectTable
                | ObjectType::ObjectIndex
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectSequence
                | ObjectType::ObjectForeignTable => AccessExclusive,
                _ => return out,
            };
            for obj in &d.objects {
                if let Some(NodeEnum::List(l)) = &obj.node {
                    if let Some(name) = QualifiedName::from_names(&l.items) {
                        let mut through_table = false;
                        let note = match kind {
                            ObjectType::ObjectIndex => {
                                if let Some(table) = ctx.table_of_index(&name) {
                                    out.push(Effect::new(
                                        table.clone(),
                                        lock,
                                        "the table of the dropped index",
                                    ));
                                    through_table = true;
                                }
                                "DROP INDEX also locks the index's table"
                            }
                            _ => "dropped",
                        };
                        let mut effect = Effect::new(name, lock, note);
                        effect.through_table = through_table;
                        effect.view = kind == ObjectType::ObjectView;
                        out.push(effect);
                    }
                }
            }
            // ---- Foreign keys that go with a dropped table (checked with pg_locks on 15:
            // `DROP TABLE child` takes ACCESS EXCLUSIVE on the table child references, `DROP
            // TABLE parent CASCADE` on every table referencing parent).
            if kind == ObjectType::ObjectTable {
                let dropped: Vec<QualifiedName> = out.iter().map(|e| e.table.clone()).collect();
                for t in &dropped {
                    for referenced in ctx.referenced_by(t) {
                        out.push(Effect::new(
                            referenced.clone(),
                            AccessExclusive,
                            "referenced by a foreign key of the dropped table",
                        ));
                    }
                    if d.behavior == DropBehavior::DropCascade as i32 {
                        for referencing in ctx.referencing(t) {
                            out.push(Effect::new(
                                referencing,
                                AccessExclusive,
                                "its foreign key to the dropped table is dropped by CASCADE",
                            ));
                        }
                    }
                }
            }
            // ---- end of foreign keys of a dropped table
            if d.behavior == DropBehavior::DropCascade as i32 {
                if let Some(first) = out.first_mut() {
                    first
                        .note
                        .to_mut()
                        .push_str("; CASCADE also drops and locks dependent objects");
                }
            }
        }
        NodeEnum::AlterTableStmt(a) => {
            let Some(rv) = &a.relation else { return out };
            let table = QualifiedName::from_range_var(rv);
            let objtype = ObjectType::try_from(a.objtype).unwrap_or(ObjectType::ObjectTable);
            let mut main: Option<Effect> = None;
            for (_, cmd) in alter_commands(a) {
                let mut e = command_effect(&table, cmd, ctx);
                if objtype == ObjectType::ObjectIndex && e.kind != AlterTableType::AtSetTableSpace {
                    // ALTER INDEX ... SET (...), ALTER COLUMN ... SET STATISTICS and ATTACH
                    // PARTITION take SHARE UPDATE EXCLUSIVE; SET TABLESPACE copies the index
                    // under ACCESS EXCLUSIVE, as on a table. Attaching an index reads no row
                    // (the partition's index is already built).
                    e.lock = e.lock.min(ShareUpdateExclusive);
                    if e.kind == AlterTableType::AtAttachPartition {
                        e.others.clear();
                        e.scan = false;
                    }
                }
                let merged = main.get_or_insert_with(|| Effect::new(table.clone(), e.lock, ""));
                merged.lock = merged.lock.max(e.lock);
                merged.rewrite |= e.rewrite;
                merged.scan |= e.scan;
                if !e.note.is_empty() {
                    let note = merged.note.to_mut();
                    if !note.is_empty() {
                        note.push_str("; ");
                    }
                    note.push_str(&e.note);
                }
                out.extend(e.others);
            }
            if let Some(m) = main {
                out.insert(0, m);
            }
        }
        NodeEnum::RenameStmt(r) => {
            if let Some(rv) = &r.relation {
                let kind = ObjectType::try_from(r.rename_type).unwrap_or(ObjectType::Undefined);
                let lock = if kind == ObjectType::ObjectIndex {
                    ShareUpdateExclusive
                } else {
                    AccessExclusive
                };
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    lock,
                    "rename",
                ));
            }
        }
        NodeEnum::AlterObjectSchemaStmt(s) => {
            if let Some(rv) = &s.relation {
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    AccessExclusive,
                    "SET SCHEMA",
                ));
            }
        }
        NodeEnum::CreateTrigStmt(t) => {
            if let Some(rv) = &t.relation {
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    ShareRowExclusive,
                    "CREATE TRIGGER blocks writes",
                ));
            }
        }
        NodeEnum::RuleStmt(r) => {
            if let Some(rv) = &r.relation {
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    AccessExclusive,
                    "CREATE RULE",
                ));
            }
        }
        NodeEnum::CreatePolicyStmt(p) => {
            if let Some(rv) = &p.table {
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    AccessExclusive,
                    "CREATE POLICY",
                ));
            }
        }
        NodeEnum::TruncateStmt(t) => {
            for rv in t.relations.iter().filter_map(range_var) {
                out.push(
                    Effect::new(
                        QualifiedName::from_range_var(rv),
                        AccessExclusive,
                        "TRUNCATE",
                    )
                    .rewrite(),
                );
            }
        }
        NodeEnum::VacuumStmt(v) => {
            let full = v
                .options
                .iter()
                .any(|o| def_name(o).is_some_and(|n| n.eq_ignore_ascii_case("full")));
            for rel in &v.rels {
                if let Some(NodeEnum::VacuumRelation(vr)) = &rel.node {
                    if let Some(rv) = &vr.relation {
                        let t = QualifiedName::from_range_var(rv);
                        out.push(if full {
                            Effect::new(t, AccessExclusive, "VACUUM FULL rewrites the table")
                                .rewrite()
                        } else if v.is_vacuumcmd {
                            Effect::new(t, ShareUpdateExclusive, "VACUUM").scan()
                        } else {
                            Effect::new(t, ShareUpdateExclusive, "ANALYZE samples the table")
                        });
                    }
                }
            }
        }
        NodeEnum::ClusterStmt(c) => {
            if let Some(rv) = &c.relation {
                out.push(
                    Effect::new(
                        QualifiedName::from_range_var(rv),
                        AccessExclusive,
                        "CLUSTER rewrites the table",
                    )
                    .rewrite(),
                );
            }
        }
        NodeEnum::ReindexStmt(r) => {
            let concurrent = r
                .params
                .iter()
                .any(|p| def_name(p).is_some_and(|n| n.eq_ignore_ascii_case("concurrently")));
            if let Some(rv) = &r.relation {
                let name = QualifiedName::from_range_var(rv);
                let is_index =
                    r.kind == pg_query::protobuf::ReindexObjectType::ReindexObjectIndex as i32;
                if concurrent {
                    // On an index, its table is locked too (checked with pg_locks on 15).
                    if is_index {
                        if let Some(table) = ctx.table_of_index(&name) {
                            out.push(Effect::new(
                                table.clone(),
                                ShareUpdateExclusive,
                                "REINDEX CONCURRENTLY locks the index's table against schema changes; writes continue",
                            ));
                        }
                    }
                    out.push(
                        Effect::new(
                            name,
                            ShareUpdateExclusive,
                            "REINDEX CONCURRENTLY builds new indexes while writes continue",
                        )
                        .scan(),
                    );
                } else if is_index {
                    if let Some(table) = ctx.table_of_index(&name) {
                        out.push(
                            Effect::new(table.clone(), Share, "REINDEX blocks writes to the table")
                                .scan(),
                        );
                    }
                    out.push(
                        Effect::new(
                            name,
                            AccessExclusive,
                            "REINDEX locks the index: queries that would use it wait",
                        )
                        .rewrite(),
                    );
                } else {
                    out.push(
                        Effect::new(
                            name,
                            Share,
                            "REINDEX TABLE blocks writes and locks every index",
                        )
                        .scan(),
                    );
                }
            }
        }
        NodeEnum::RefreshMatViewStmt(r) => {
            if let Some(rv) = &r.relation {
                let t = QualifiedName::from_range_var(rv);
                out.push(if r.concurrent {
                    Effect::new(
                        t,
                        Exclusive,
                        "REFRESH ... CONCURRENTLY blocks writes, reads continue",
                    )
                    .scan()
                } else {
                    Effect::new(
                        t,
                        AccessExclusive,
                        "REFRESH MATERIALIZED VIEW blocks reads for the whole refresh",
                    )
                    .rewrite()
                });
            }
        }
        NodeEnum::LockStmt(l) => {
            let lock = lock_mode(l.mode);
            for rv in l.relations.iter().filter_map(range_var) {
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    lock,
                    "LOCK TABLE",
                ));
            }
        }
        NodeEnum::InsertStmt(i) => {
            if let Some(rv) = &i.relation {
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    RowExclusive,
                    "INSERT",
                ));
            }
        }
        NodeEnum::UpdateStmt(u) => {
            if let Some(rv) = &u.relation {
                let e = Effect::new(
                    QualifiedName::from_range_var(rv),
                    RowExclusive,
                    "UPDATE locks every row it changes",
                );
                out.push(if u.where_clause.is_none() {
                    e.scan()
                } else {
                    e
                });
            }
        }
        NodeEnum::DeleteStmt(d) => {
            if let Some(rv) = &d.relation {
                let e = Effect::new(
                    QualifiedName::from_range_var(rv),
                    RowExclusive,
                    "DELETE locks every row it removes",
                );
                out.push(if d.where_clause.is_none() {
                    e.scan()
                } else {
                    e
                });
            }
        }
        NodeEnum::MergeStmt(m) => {
            if let Some(rv) = &m.relation {
                out.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    RowExclusive,
                    "MERGE",
                ));
            }
        }
        NodeEnum::CopyStmt(c) => {
            if let Some(rv) = &c.relation {
                let lock = if c.is_from { RowExclusive } else { AccessShare };
                out.push(Effect::new(QualifiedName::from_range_var(rv), lock, "COPY"));
            }
        }
        // ---- COMMENT ON (checked with pg_locks on 15): SHARE UPDATE EXCLUSIVE on a table,
        // view, materialized view, index, sequence or foreign table, and on the table of a
        // commented column; ACCESS SHARE on the table of a constraint, trigger, rule or policy;
        // nothing on a function, type or schema.
        NodeEnum::CommentStmt(c) => {
            let kind = ObjectType::try_from(c.objtype).unwrap_or(ObjectType::Undefined);
            let names = match c.object.as_deref().and_then(|o| o.node.as_ref()) {
                Some(NodeEnum::List(l)) => l.items.as_slice(),
                _ => return out,
            };
            let (relation, lock, note) = match kind {
                ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectIndex
                | ObjectType::ObjectSequence
                | ObjectType::ObjectForeignTable => (
                    QualifiedName::from_names(names),
                    ShareUpdateExclusive,
                    "COMMENT ON",
                ),
                ObjectType::ObjectColumn => (
                    QualifiedName::from_names(&names[..names.len().saturating_sub(1)]),
                    ShareUpdateExclusive,
                    "COMMENT ON COLUMN locks its table",
                ),
                ObjectType::ObjectTabconstraint
                | ObjectType::ObjectTrigger
                | ObjectType::ObjectRule
                | ObjectType::ObjectPolicy => (
                    QualifiedName::from_names(&names[..names.len().saturating_sub(1)]),
                    AccessShare,
                    "COMMENT ON a constraint, trigger, rule or policy reads its table's definition",
                ),
                _ => return out,
            };
            if let Some(relation) = relation {
                out.push(Effect::new(relation, lock, note));
            }
        }
        // ---- end of COMMENT ON
        NodeEnum::CreateStatsStmt(s) => {
            for rel in &s.relations {
                if let Some(NodeEnum::RangeVar(rv)) = &rel.node {
                    out.push(Effect::new(
                        QualifiedName::from_range_var(rv),
                        ShareUpdateExclusive,
                        "CREATE STATISTICS",
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

/// The lock, rewrite and scan of one ALTER TABLE subcommand on `table`.
pub fn command_effect(table: &QualifiedName, cmd: &AlterTableCmd, ctx: &Context) -> CommandEffect {
    use AlterTableType as T;
    use LockLevel::*;
    let kind = AlterTableType::try_from(cmd.subtype).unwrap_or(T::Undefined);
    let mut e = CommandEffect {
        kind,
        lock: AccessExclusive,
        rewrite: false,
        scan: false,
        note: String::new(),
        others: Vec::new(),
    };
    match kind {
        T::AtAddColumn | T::AtAddColumnToView => {
            if let Some(NodeEnum::ColumnDef(col)) = cmd.def.as_deref().and_then(|d| d.node.as_ref())
            {
                let (rewrite, why) = add_column_rewrite(col, ctx);
                e.rewrite = rewrite;
                e.note = why;
                for c in column_constraints(col) {
                    match constraint_type(c) {
                        ConstrType::ConstrForeign => {
                            // analyzer-misses: validated only when existing rows get a value.
                            let scans = inline_foreign_key_scans(table, col, ctx);
                            if scans {
                                e.scan = true;
                                e.note.push_str("; the inline REFERENCES checks every row's default against the referenced table");
                            }
                            if let Some(rv) = &c.pktable {
                                let other = Effect::new(
                                    QualifiedName::from_range_var(rv),
                                    ShareRowExclusive,
                                    "referenced by the new column's foreign key",
                                );
                                e.others.push(if scans { other.scan() } else { other });
                            }
                        }
                        ConstrType::ConstrCheck
                        | ConstrType::ConstrPrimary
                        | ConstrType::ConstrUnique => e.scan = true,
                        _ => {}
                    }
                }
            }
        }
        T::AtColumnDefault | T::AtCookedColumnDefault => {
            e.note = "SET/DROP DEFAULT: catalog only".into()
        }
        T::AtDropNotNull => e.note = "DROP NOT NULL: catalog only".into(),
        T::AtSetNotNull => {
            if ctx.version.has(Feature::CheckBackedSetNotNull)
                && ctx.has_validated_not_null_check(table, &cmd.name)
            {
                e.note = format!(
                    "SET NOT NULL uses the validated CHECK ({} IS NOT NULL): no scan",
                    cmd.name
                );
            } else {
                e.scan = true;
                e.note = "SET NOT NULL scans the whole table for NULLs".into();
            }
        }
        T::AtSetExpression => {
            e.rewrite = true;
            e.note = "SET EXPRESSION recomputes every row".into();
        }
        T::AtDropExpression => e.note = "DROP EXPRESSION".into(),
        T::AtSetStatistics | T::AtSetOptions | T::AtResetOptions => e.lock = ShareUpdateExclusive,
        T::AtSetStorage | T::AtSetCompression => {
            e.note = "catalog only, applies to new rows".into()
        }
        T::AtDropColumn => e.note = "DROP COLUMN: catalog only, space reclaimed later".into(),
        T::AtAddConstraint | T::AtAddIndex | T::AtAddIndexConstraint => {
            if let Some(c) = command_constraint(cmd) {
                constraint_effect(table, c, ctx, &mut e);
            }
        }
        T::AtAlterConstraint => e.note = "ALTER CONSTRAINT".into(),
        T::AtValidateConstraint => {
            e.lock = ShareUpdateExclusive;
            e.scan = true;
            e.note = "VALIDATE CONSTRAINT scans while reads and writes continue".into();
            if let Some(referenced) = ctx.foreign_key_target(table, &cmd.name) {
                e.others.push(
                    Effect::new(
                        referenced.clone(),
                        RowShare,
                        "referenced by the validated foreign key",
                    )
                    .scan(),
                );
            }
        }
        T::AtDropConstraint => {
            e.note = "DROP CONSTRAINT".into();
            // ---- Dropping a foreign key takes ACCESS EXCLUSIVE on the referenced table too
            // (checked with pg_locks on 15): its triggers there are dropped.
            if let Some(referenced) = ctx.foreign_key_target(table, &cmd.name) {
                e.others.push(Effect::new(
                    referenced.clone(),
                    AccessExclusive,
                    "referenced by the dropped foreign key",
                ));
            }
            // ---- end of DROP CONSTRAINT
        }
        T::AtAlterColumnType => {
            // ---- ALTER COLUMN ... TYPE: the type change decided by `knowledge::casts`, with
            // the session's TimeZone and the casts of a USING that only relabels the column.
            let col = match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::ColumnDef(col)) => Some(col.as_ref()),
                _ => None,
            };
            let new = col
                .and_then(|c| c.type_name.as_ref())
                .map(TypeSpec::from_type_name);
            // `Some([])` without USING; `None` when USING computes something else.
            let casts = match col.and_then(|c| c.raw_default.as_deref()) {
                None => Some(Vec::new()),
                Some(expr) => using_casts(expr, &cmd.name),
            };
            let utc = ctx.timezone_is_utc();
            match (ctx.column_type(table, &cmd.name), new, casts) {
                (Some(old), Some(new), Some(casts)) => {
                    match retype(old, &casts, &new, utc, ctx.version) {
                        TypeChange::Same => e.note = "same type: no rewrite".into(),
                        TypeChange::BinaryCompatible(why) => e.note = format!("{why}: no rewrite"),
                        TypeChange::SafeOnlyInUtc => {
                            e.rewrite = true;
                            e.note = format!(
                                "{} to {} rewrites unless the session TimeZone is UTC (SET timezone = 'UTC' earlier in the migration)",
                                old.sql(),
                                new.sql()
                            );
                        }
                        TypeChange::Rewrite => {
                            e.rewrite = true;
                            e.note = format!(
                                "{} to {} rewrites the table and rebuilds its indexes",
                                old.sql(),
                                new.sql()
                            );
                        }
                    }
                }
                (None, Some(new), Some(casts))
                    if likely_safe_target(&new) && casts.iter().all(|c| *c == new) =>
                {
                    e.note = format!("to {}: no rewrite only if the old type is binary-compatible (varchar, text)", new.sql());
                }
                (_, new, _) => {
                    e.rewrite = true;
                    e.note = match new {
                        Some(n) => format!(
                            "ALTER TYPE to {} rewrites the table and rebuilds its indexes",
                            n.sql()
                        ),
                        None => "ALTER TYPE rewrites the table".into(),
                    };
                }
            }
            // ---- end of ALTER COLUMN ... TYPE
        }
        T::AtChangeOwner => {}
        T::AtClusterOn | T::AtDropCluster => e.lock = ShareUpdateExclusive,
        T::AtSetLogged | T::AtSetUnLogged => {
            e.rewrite = true;
            e.note = "SET LOGGED/UNLOGGED rewrites the table".into();
        }
        T::AtSetAccessMethod => {
            e.rewrite = true;
            e.note = "SET ACCESS METHOD rewrites the table".into();
        }
        T::AtSetTableSpace => {
            e.rewrite = true;
            e.note = "SET TABLESPACE copies every file of the table".into();
        }
        T::AtSetRelOptions | T::AtResetRelOptions | T::AtReplaceRelOptions => {
            e.lock = ShareUpdateExclusive
        }
        T::AtEnableTrig
        | T::AtEnableAlwaysTrig
        | T::AtEnableReplicaTrig
        | T::AtDisableTrig
        | T::AtEnableTrigAll
        | T::AtDisableTrigAll
        | T::AtEnableTrigUser
        | T::AtDisableTrigUser => e.lock = ShareRowExclusive,
        T::AtAttachPartition => {
            if ctx
                .version
                .has(Feature::AttachPartitionShareUpdateExclusive)
            {
                e.lock = ShareUpdateExclusive;
            }
            if let Some(NodeEnum::PartitionCmd(p)) =
                cmd.def.as_deref().and_then(|d| d.node.as_ref())
            {
                if let Some(rv) = &p.name {
                    let part = QualifiedName::from_range_var(rv);
                    let proven = ctx.has_partition_check(&part);
                    let effect = Effect::new(
                        part,
                        AccessExclusive,
                        if proven {
                            "the partition's validated CHECK proves the bound: no scan"
                        } else {
                            "ATTACH PARTITION scans the partition to check the bound"
                        },
                    );
                    e.others.push(if proven { effect } else { effect.scan() });
                }
            }
        }
        T::AtDetachPartition => {
            if let Some(NodeEnum::PartitionCmd(p)) =
                cmd.def.as_deref().and_then(|d| d.node.as_ref())
            {
                let lock = if p.concurrent {
                    ShareUpdateExclusive
                } else {
                    AccessExclusive
                };
                e.lock = lock;
                if let Some(rv) = &p.name {
                    e.others.push(Effect::new(
                        QualifiedName::from_range_var(rv),
                        lock,
                        "detached partition",
                    ));
                }
            }
        }
        T::AtDetachPartitionFinalize => e.lock = ShareUpdateExclusive,
        T::AtAddInherit | T::AtDropInherit => {
            // The child takes ACCESS EXCLUSIVE; the parent SHARE UPDATE EXCLUSIVE (checked
            // with pg_locks on 15).
            e.note = "INHERIT changes the child's parent".into();
            if let Some(NodeEnum::RangeVar(rv)) = cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                e.others.push(Effect::new(
                    QualifiedName::from_range_var(rv),
                    ShareUpdateExclusive,
                    "the parent of INHERIT / NO INHERIT",
                ));
            }
        }
        _ => {}
    }
    e
}

fn constraint_effect(table: &QualifiedName, c: &Constraint, ctx: &Context, e: &mut CommandEffect) {
    use LockLevel::*;
    match constraint_type(c) {
        ConstrType::ConstrCheck => {
            e.scan = !c.skip_validation;
            e.note = if c.skip_validation {
                "CHECK NOT VALID: no scan".into()
            } else {
                "ADD CHECK scans the whole table".into()
            };
        }
        ConstrType::ConstrForeign => {
            e.lock = ShareRowExclusive;
            e.scan = !c.skip_validation;
            e.note = if c.skip_validation {
                "FOREIGN KEY NOT VALID: no scan".into()
            } else {
                "ADD FOREIGN KEY scans the table, blocking writes on both tables".into()
            };
            if let Some(rv) = &c.pktable {
                let other = Effect::new(
                    QualifiedName::from_range_var(rv),
                    ShareRowExclusive,
                    "referenced by the new foreign key",
                );
                // Validation joins the referencing rows to the referenced table; a table
                // created in this migration has no rows, so nothing is read.
                let reads_rows = !c.skip_validation && !ctx.is_new_table(table);
                e.others.push(if reads_rows { other.scan() } else { other });
            }
        }
        ConstrType::ConstrPrimary | ConstrType::ConstrUnique => {
            if c.indexname.is_empty() {
                e.scan = true;
                e.note = "ADD UNIQUE/PRIMARY KEY builds an index under ACCESS EXCLUSIVE".into();
            } else {
                e.note = "USING INDEX: the existing index becomes the constraint, no build".into();
                if constraint_type(c) == ConstrType::ConstrPrimary {
                    e.note
                        .push_str(" (PRIMARY KEY still scans for NULLs in nullable columns)");
                }
            }
            let _ = table;
        }
        ConstrType::ConstrExclusion => {
            e.scan = true;
            e.note = "ADD EXCLUDE builds an index and checks every row".into();
        }
        ConstrType::ConstrNotnull => {
            // analyzer-misses: PostgreSQL 18's `ADD CONSTRAINT n NOT NULL col` is SET NOT NULL
            // (pg_locks and pg_stat_xact_user_tables on 18.4): ACCESS EXCLUSIVE, a full scan
            // unless NOT VALID or a validated CHECK (col IS NOT NULL) proves it.
            let column = pgshift_sql::ident::strings(&c.keys).into_iter().next();
            let proven = ctx.version.has(Feature::CheckBackedSetNotNull)
                && column
                    .as_deref()
                    .is_some_and(|col| ctx.has_validated_not_null_check(table, col));
            e.scan = !c.skip_validation && !proven;
            e.note = if c.skip_validation {
                "NOT NULL NOT VALID: no scan".into()
            } else if proven {
                "NOT NULL uses the validated CHECK (col IS NOT NULL): no scan".into()
            } else {
                "NOT NULL constraint scans the whole table".into()
            };
        }
        _ => {}
    }
    let _ = ctx;
}

/// Whether `ADD COLUMN` rewrites the table, and why.
pub fn add_column_rewrite(col: &pg_query::protobuf::ColumnDef, ctx: &Context) -> (bool, String) {
    if !col.identity.is_empty() || !col.generated.is_empty() {
        return (
            true,
            "an identity or generated column is computed for every row: rewrite".into(),
        );
    }
    if let Some(t) = &col.type_name {
        let spec = TypeSpec::from_type_name(t);
        if matches!(spec.name.as_str(), "serial" | "bigserial" | "smallserial") {
            return (
                true,
                "a serial column's nextval() default is volatile: rewrite".into(),
            );
        }
    }
    for c in column_constraints(col) {
        match constraint_type(c) {
            ConstrType::ConstrIdentity => {
                return (
                    true,
                    "an identity column is filled for every row: rewrite".into(),
                )
            }
            ConstrType::ConstrGenerated => {
                return (
                    true,
                    "a stored generated column is computed for every row: rewrite".into(),
                )
            }
            ConstrType::ConstrDefault => {
                let Some(expr) = c.raw_expr.as_deref() else {
                    continue;
                };
                if !ctx.version.has(Feature::InstantConstantDefault) {
                    return (
                        true,
                        format!(
                            "before PostgreSQL 11 any DEFAULT rewrites the table (target: {})",
                            ctx.version
                        ),
                    );
                }
                match volatility_in(expr, ctx) {
                    Volatility::NonVolatile => {
                        return (
                            false,
                            "non-volatile DEFAULT: stored in the catalog, no rewrite".into(),
                        )
                    }
                    Volatility::Volatile(f) => {
                        return (
                            true,
                            format!("volatile DEFAULT {f} is evaluated for every row: rewrite"),
                        )
                    }
                    // A function this set did not create: CREATE FUNCTION makes it VOLATILE
                    // unless it says otherwise, so the table is rewritten unless it was
                    // declared STABLE or IMMUTABLE (what adding-field-with-volatile-default
                    // reports, and what trace expects).
                    Volatility::Unknown(f) => {
                        return (
                            true,
                            format!("DEFAULT calls {f}: a function is VOLATILE unless declared STABLE or IMMUTABLE, and a volatile default rewrites the table"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    (false, "ADD COLUMN: catalog only".into())
}

// analyzer-misses: ADD COLUMN ... REFERENCES (Django's and Rails' `DEFAULT 1 NOT NULL
// REFERENCES c(id)`). Checked on 15.20 with pg_stat_xact_user_tables: with a default, both
// tables are read once (every existing row gets the default, which must exist in the
// referenced table); without one, the new column is NULL everywhere and nothing is read.
/// Whether an inline `REFERENCES` on a new column validates existing rows: the table existed
/// before the migration and the column gets a non-NULL default.
fn inline_foreign_key_scans(
    table: &QualifiedName,
    col: &pg_query::protobuf::ColumnDef,
    ctx: &Context,
) -> bool {
    let null =
        |n: &pg_query::protobuf::Node| matches!(&n.node, Some(NodeEnum::AConst(a)) if a.isnull);
    !ctx.is_new_table(table)
        && column_constraints(col).any(|c| {
            constraint_type(c) == ConstrType::ConstrDefault
                && c.raw_expr.as_deref().is_some_and(|x| !null(x))
        })
}

/// The constraints written on a column definition.
pub fn column_constraints(
    col: &pg_query::protobuf::ColumnDef,
) -> impl Iterator<Item = &Constraint> {
    col.constraints.iter().filter_map(|n| match &n.node {
        Some(NodeEnum::Constraint(c)) => Some(c.as_ref()),
        _ => None,
    })
}

fn create_stmt_foreign_keys(c: &pg_query::protobuf::CreateStmt) -> Vec<&Constraint> {
    let mut out = Vec::new();
    for elt in &c.table_elts {
        match &elt.node {
            Some(NodeEnum::Constraint(k)) if constraint_type(k) == ConstrType::ConstrForeign => {
                out.push(k.as_ref())
            }
            Some(NodeEnum::ColumnDef(col)) => out.extend(
                column_constraints(col).filter(|k| constraint_type(k) == ConstrType::ConstrForeign),
            ),
            _ => {}
        }
    }
    out
}

fn range_var(n: &pg_query::protobuf::Node) -> Option<&RangeVar> {
    match &n.node {
        Some(NodeEnum::RangeVar(rv)) => Some(rv),
        _ => None,
    }
}

fn def_name(n: &pg_query::protobuf::Node) -> Option<&str> {
    match &n.node {
        Some(NodeEnum::DefElem(d)) => Some(d.defname.as_str()),
        _ => None,
    }
}

/// `LOCK TABLE` modes are numbered as in `lockdefs.h` (1 = ACCESS SHARE ... 8 = ACCESS EXCLUSIVE).
fn lock_mode(mode: i32) -> LockLevel {
    use super::lock::ALL_LOCK_LEVELS;
    usize::try_from(mode - 1)
        .ok()
        .and_then(|i| ALL_LOCK_LEVELS.get(i).copied())
        .unwrap_or(LockLevel::AccessExclusive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::version::PgVersion;

    fn effects_in(ctx: &Context, sql: &str) -> Vec<Effect> {
        let parsed = pgshift_sql::parse(sql);
        assert!(parsed.errors.is_empty(), "{sql}: {:?}", parsed.errors);
        parsed
            .statements
            .iter()
            .flat_map(|s| statement_effects(&s.node, ctx))
            .collect()
    }

    fn effects(sql: &str) -> Vec<Effect> {
        effects_in(&Context::new(PgVersion::new(15, 0), true), sql)
    }

    fn one(sql: &str) -> (LockLevel, bool, bool) {
        let e = effects(sql);
        let first = e.first().map(|e| (e.lock, e.rewrite, e.scan));
        first.unwrap_or((LockLevel::AccessShare, false, false))
    }

    use LockLevel::*;

    #[test]
    fn indexes() {
        assert_eq!(one("CREATE INDEX i ON t (a)"), (Share, false, true));
        assert_eq!(
            one("CREATE INDEX CONCURRENTLY i ON t (a)"),
            (ShareUpdateExclusive, false, true)
        );
        assert_eq!(one("DROP INDEX i"), (AccessExclusive, false, false));
        assert_eq!(
            one("DROP INDEX CONCURRENTLY i"),
            (ShareUpdateExclusive, false, false)
        );
        assert_eq!(one("REINDEX TABLE t"), (Share, false, true));
        assert_eq!(
            one("REINDEX INDEX CONCURRENTLY i"),
            (ShareUpdateExclusive, false, true)
        );
    }

    #[test]
    fn columns() {
        assert_eq!(
            one("ALTER TABLE t ADD COLUMN a int"),
            (AccessExclusive, false, false)
        );
        assert_eq!(
            one("ALTER TABLE t ADD COLUMN a int DEFAULT 0"),
            (AccessExclusive, false, false)
        );
        assert_eq!(
            one("ALTER TABLE t ADD COLUMN a uuid DEFAULT gen_random_uuid()"),
            (AccessExclusive, true, false)
        );
        assert_eq!(
            one("ALTER TABLE t ADD COLUMN a bigserial"),
            (AccessExclusive, true, false)
        );
        assert_eq!(
            one("ALTER TABLE t ADD COLUMN a int GENERATED ALWAYS AS IDENTITY"),
            (AccessExclusive, true, false)
        );
        assert_eq!(
            one("ALTER TABLE t ADD COLUMN a int GENERATED ALWAYS AS (b * 2) STORED"),
            (AccessExclusive, true, false)
        );
        let old = Context::new(PgVersion::new(10, 0), true);
        assert!(
            effects_in(&old, "ALTER TABLE t ADD COLUMN a int DEFAULT 0")[0].rewrite,
            "any default rewrites before 11"
        );
        assert_eq!(
            one("ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
            (AccessExclusive, false, true)
        );
        assert_eq!(
            one("ALTER TABLE t ALTER COLUMN a TYPE bigint"),
            (AccessExclusive, true, false)
        );
        assert_eq!(
            one("ALTER TABLE t ALTER COLUMN a SET STATISTICS 100"),
            (ShareUpdateExclusive, false, false)
        );
        assert_eq!(
            one("ALTER TABLE t SET TABLESPACE x"),
            (AccessExclusive, true, false)
        );
        assert_eq!(
            one("ALTER TABLE t SET UNLOGGED"),
            (AccessExclusive, true, false)
        );
        assert_eq!(
            one("ALTER TABLE t SET (fillfactor = 70)"),
            (ShareUpdateExclusive, false, false)
        );
    }

    #[test]
    fn inherit_locks_the_parent_too() {
        let e = effects("ALTER TABLE child INHERIT parent");
        let locks: Vec<(String, LockLevel)> =
            e.iter().map(|e| (e.table.name.clone(), e.lock)).collect();
        assert!(
            locks.contains(&("child".into(), AccessExclusive)),
            "{locks:?}"
        );
        assert!(
            locks.contains(&("parent".into(), ShareUpdateExclusive)),
            "{locks:?}"
        );
        let e = effects("ALTER TABLE child NO INHERIT parent");
        assert!(e
            .iter()
            .any(|e| e.table.name == "parent" && e.lock == ShareUpdateExclusive));
    }

    #[test]
    fn reindex_concurrently_of_a_known_index_locks_its_table() {
        // The context learns from the earlier statements which table `i` belongs to.
        let mut ctx = Context::new(PgVersion::new(15, 0), true);
        let parsed = pgshift_sql::parse(
            "CREATE TABLE t (a int); CREATE INDEX i ON t (a); REINDEX INDEX CONCURRENTLY i",
        );
        let mut e = Vec::new();
        for s in &parsed.statements {
            e = statement_effects(&s.node, &ctx);
            ctx.observe(&s.node, &e, s.span.clone());
        }
        let locks: Vec<(String, LockLevel)> =
            e.iter().map(|e| (e.table.name.clone(), e.lock)).collect();
        assert!(
            locks.contains(&("t".into(), ShareUpdateExclusive)),
            "{locks:?}"
        );
        assert!(
            locks.contains(&("i".into(), ShareUpdateExclusive)),
            "{locks:?}"
        );
    }

    #[test]
    fn alter_index() {
        // Checked with pg_locks on PostgreSQL 15.
        assert_eq!(
            one("ALTER INDEX i SET (fillfactor = 70)"),
            (ShareUpdateExclusive, false, false)
        );
        assert_eq!(
            one("ALTER INDEX i SET TABLESPACE x"),
            (AccessExclusive, true, false)
        );
    }

    #[test]
    fn constraints() {
        assert_eq!(
            one("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)"),
            (AccessExclusive, false, true)
        );
        assert_eq!(
            one("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID"),
            (AccessExclusive, false, false)
        );
        let fk = effects("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id)");
        assert_eq!(fk.len(), 2, "both tables: {fk:?}");
        assert!(fk.iter().all(|e| e.lock == ShareRowExclusive && e.scan));
        let fk =
            effects("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id) NOT VALID");
        assert!(fk.iter().all(|e| e.lock == ShareRowExclusive && !e.scan));
        // A foreign key from a table created in this migration reads no rows of either table
        // (Prisma writes CREATE TABLE, then ADD FOREIGN KEY).
        let mut ctx = Context::new(PgVersion::new(15, 0), true);
        ctx.start_script(true, crate::context::Direction::Up);
        let create = pgshift_sql::parse("CREATE TABLE t (id bigint, u bigint)");
        for st in &create.statements {
            ctx.observe(&st.node, &[], st.span.clone());
        }
        let fk = effects_in(
            &ctx,
            "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id)",
        );
        assert_eq!(fk.len(), 2, "both tables: {fk:?}");
        assert!(fk.iter().all(|e| e.lock == ShareRowExclusive), "{fk:?}");
        assert!(!fk[1].scan, "the referenced table is not read: {fk:?}");
        assert_eq!(
            one("ALTER TABLE t VALIDATE CONSTRAINT c"),
            (ShareUpdateExclusive, false, true)
        );
        assert_eq!(
            one("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a)"),
            (AccessExclusive, false, true)
        );
        assert_eq!(
            one("ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX i"),
            (AccessExclusive, false, false)
        );
        assert_eq!(
            one("ALTER TABLE t ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&)"),
            (AccessExclusive, false, true)
        );
    }

    #[test]
    fn inline_references_scan_only_with_a_default() {
        // pg_stat_xact_user_tables on 15.20: with a default both tables are read, without none.
        let e =
            effects("ALTER TABLE t ADD COLUMN c_id bigint DEFAULT 1 NOT NULL REFERENCES c (id)");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].scan && e[0].lock == AccessExclusive, "{e:?}");
        assert!(e[1].scan && e[1].lock == ShareRowExclusive, "{e:?}");
        let e = effects("ALTER TABLE t ADD COLUMN c_id bigint REFERENCES c (id)");
        assert!(e.iter().all(|e| !e.scan), "{e:?}");
        let e = effects("ALTER TABLE t ADD COLUMN c_id bigint DEFAULT NULL REFERENCES c (id)");
        assert!(e.iter().all(|e| !e.scan), "{e:?}");
    }

    #[test]
    fn not_null_table_constraint_is_set_not_null() {
        // PostgreSQL 18.4: ACCESS EXCLUSIVE and a scan; none with NOT VALID.
        assert_eq!(
            one("ALTER TABLE t ADD CONSTRAINT t_a_nn NOT NULL a"),
            (AccessExclusive, false, true)
        );
        assert_eq!(
            one("ALTER TABLE t ADD CONSTRAINT t_a_nn NOT NULL a NOT VALID"),
            (AccessExclusive, false, false)
        );
    }

    #[test]
    fn comments_and_dropped_foreign_keys() {
        // Checked with pg_locks on 15.
        assert_eq!(
            one("COMMENT ON TABLE t IS 'x'"),
            (ShareUpdateExclusive, false, false)
        );
        let e = effects("COMMENT ON COLUMN s.t.c IS 'x'");
        assert_eq!(
            (e[0].table.to_string(), e[0].lock),
            ("s.t".into(), ShareUpdateExclusive)
        );
        assert_eq!(
            one("COMMENT ON CONSTRAINT c ON t IS 'x'"),
            (AccessShare, false, false)
        );
        assert!(effects("COMMENT ON FUNCTION f() IS 'x'").is_empty());
        let mut ctx = Context::new(PgVersion::new(15, 0), true);
        ctx.start_script(true, crate::context::Direction::Up);
        for st in &pgshift_sql::parse(
            "CREATE TABLE c (id int, p int REFERENCES p (id)); CREATE TABLE d (p int CONSTRAINT d_fk REFERENCES p (id)); CREATE TABLE tree (id int, up int)",
        )
        .statements
        {
            ctx.observe(&st.node, &[], st.span.clone());
        }
        let locks = |ctx: &Context, sql: &str| -> Vec<(String, LockLevel)> {
            effects_in(ctx, sql)
                .iter()
                .map(|e| (e.table.name.clone(), e.lock))
                .collect()
        };
        // An unnamed foreign key has PostgreSQL's name.
        assert_eq!(
            locks(&ctx, "ALTER TABLE c DROP CONSTRAINT c_p_fkey"),
            vec![("c".into(), AccessExclusive), ("p".into(), AccessExclusive)]
        );
        assert_eq!(
            locks(&ctx, "DROP TABLE d"),
            vec![("d".into(), AccessExclusive), ("p".into(), AccessExclusive)]
        );
        assert_eq!(
            locks(&ctx, "DROP TABLE p CASCADE"),
            vec![
                ("p".into(), AccessExclusive),
                ("c".into(), AccessExclusive),
                ("d".into(), AccessExclusive)
            ]
        );
        // A self-referencing key: one entry, the strongest lock.
        assert_eq!(
            locks(
                &ctx,
                "ALTER TABLE tree ADD CONSTRAINT f FOREIGN KEY (up) REFERENCES tree (id)"
            ),
            vec![("tree".into(), ShareRowExclusive)]
        );
        // Once dropped, a key locks nothing more.
        for st in &pgshift_sql::parse("ALTER TABLE c DROP CONSTRAINT c_p_fkey").statements {
            ctx.observe(&st.node, &[], st.span.clone());
        }
        assert_eq!(
            locks(&ctx, "DROP TABLE c"),
            vec![("c".into(), AccessExclusive)]
        );
    }

    #[test]
    fn strongest_subcommand_wins() {
        assert_eq!(
            one("ALTER TABLE t SET (fillfactor = 70), ALTER COLUMN a SET NOT NULL"),
            (AccessExclusive, false, true)
        );
    }

    #[test]
    fn other_statements() {
        assert_eq!(
            one("CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()"),
            (ShareRowExclusive, false, false)
        );
        assert_eq!(
            one("REFRESH MATERIALIZED VIEW mv"),
            (AccessExclusive, true, false)
        );
        assert_eq!(
            one("REFRESH MATERIALIZED VIEW CONCURRENTLY mv"),
            (Exclusive, false, true)
        );
        assert_eq!(one("VACUUM FULL t"), (AccessExclusive, true, false));
        assert_eq!(one("CLUSTER t USING i"), (AccessExclusive, true, false));
        assert_eq!(one("TRUNCATE t"), (AccessExclusive, true, false));
        assert_eq!(one("DROP TABLE t"), (AccessExclusive, false, false));
        assert_eq!(one("UPDATE t SET a = 1"), (RowExclusive, false, true));
        assert_eq!(one("LOCK TABLE t IN SHARE MODE"), (Share, false, false));
        let attach = effects("ALTER TABLE p ATTACH PARTITION c FOR VALUES FROM (1) TO (2)");
        assert_eq!(
            (attach[0].lock, attach[1].lock, attach[1].scan),
            (ShareUpdateExclusive, AccessExclusive, true)
        );
        let detach = effects("ALTER TABLE p DETACH PARTITION c");
        assert!(detach.iter().all(|e| e.lock == AccessExclusive));
        let detach = effects("ALTER TABLE p DETACH PARTITION c CONCURRENTLY");
        assert!(detach.iter().all(|e| e.lock == ShareUpdateExclusive));
    }
}
