//! The mechanical safe forms of dangerous statements, as data: the runner executes these steps
//! (issue 4), and the same steps are the `help` and `fix` of the matching rules, so the advice
//! and what is executed can never disagree.
//!
//! SQL is produced by editing the parse tree and deparsing it with PostgreSQL's own deparser,
//! or, for the multi-step recipes, from quoted identifiers ([`quote_ident`]).

use pg_query::protobuf::{self, AlterTableType, ConstrType, ObjectType, ReindexObjectType};
use pg_query::NodeEnum;
use pgshift_sql::Statement;
use serde::Serialize;

use crate::context::Context;
use crate::knowledge::effects::{alter_commands, command_constraint, constraint_type};
use crate::knowledge::version::Feature;
use pgshift_sql::ident::{clip, quote_ident, strings, QualifiedName, MAX_IDENTIFIER_BYTES};

mod partitioned;

/// One statement of a safe rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The SQL, without a trailing `;`.
    pub sql: String,
    /// Whether it may share the migration's transaction. `false`: it must run outside any
    /// transaction block (CONCURRENTLY) or in a transaction of its own (VALIDATE, so the long
    /// scan holds only SHARE UPDATE EXCLUSIVE and nothing stronger taken earlier).
    pub transaction: bool,
    /// Why this step exists, for plans and logs.
    pub purpose: &'static str,
}

/// A statement's safe replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SafeRewrite {
    pub steps: Vec<Step>,
    /// What the rows already in the table must satisfy for the constraint the statement
    /// adds: the runner looks for rows that do not before the migration changes anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_rows: Option<ExistingRows>,
    /// The runner first runs the statement as written, in a transaction of its own, when its
    /// tables' locks are granted at once (`NOWAIT`), and these steps only when they are not:
    /// `DROP INDEX` of an index the live catalog shows small ([`crate::SMALL_INDEX_PAGES`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub as_written_when_free: bool,
}

/// A constraint a statement adds to an existing table, as the rows there must satisfy it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExistingRows {
    /// `CHECK (expr)`: no row where `expr` is false.
    Check {
        table: QualifiedName,
        name: String,
        /// The expression, as PostgreSQL prints it.
        expr: String,
    },
    /// `UNIQUE (...)`, `PRIMARY KEY (...)`, `CREATE UNIQUE INDEX ... (...)`: no two rows with
    /// the same values (NULLs apart unless `nulls_distinct` is false); a primary key, no NULL.
    Unique {
        table: QualifiedName,
        name: String,
        columns: Vec<String>,
        primary: bool,
        nulls_distinct: bool,
    },
    /// `FOREIGN KEY (...) REFERENCES t (...)`: no row whose values (none NULL) are missing
    /// from the referenced table. `ref_columns` empty: the referenced table's primary key.
    ForeignKey {
        table: QualifiedName,
        name: String,
        columns: Vec<String>,
        references: QualifiedName,
        ref_columns: Vec<String>,
    },
}

impl SafeRewrite {
    /// The steps as copy-pasteable SQL, with a comment where a transaction must end.
    pub fn to_sql(&self) -> String {
        let mut out = String::new();
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            if !step.transaction {
                out.push_str("-- in its own migration, outside a transaction (e.g. `-- pgshift:no-transaction`):\n");
            } else if i > 0 && !self.steps[i - 1].transaction {
                out.push_str("-- then, in a new transaction:\n");
            }
            out.push_str(&step.sql);
            out.push(';');
        }
        out
    }

    /// The steps joined as one text, for a [`crate::Fix`].
    pub fn replacement(&self) -> String {
        self.to_sql()
    }
}

fn deparse(node: NodeEnum) -> Option<String> {
    // deparse works on any statement node pgshift passes here (index, drop, alter table,
    // reindex); an error yields no rewrite rather than a wrong one.
    node.deparse(pg_query::DeparseOptions::default()).ok()
}

fn step(sql: String, transaction: bool, purpose: &'static str) -> Step {
    Step {
        sql,
        transaction,
        purpose,
    }
}

/// The safe replacement of a statement, when there is a mechanical one. Statements on tables
/// created in the same migration need none and get `None`.
pub fn safe_rewrite(stmt: &Statement, file_text: &str, ctx: &Context) -> Option<SafeRewrite> {
    let _ = file_text;
    match &stmt.node {
        NodeEnum::IndexStmt(i) if !i.concurrent => {
            let rv = i.relation.as_ref()?;
            let table = QualifiedName::from_range_var(rv);
            // `ON ONLY` is the author's own per-partition recipe (it reads no row): as written.
            if ctx.is_unused_table(&table) || !rv.inh {
                return None;
            }
            let steps = match ctx.partitions(&table) {
                // A partitioned table without partitions holds no row: as written.
                Some([]) => return None,
                Some(parts) => partitioned::index(i, &table, parts, &|n| ctx.name_taken(n))?,
                None => {
                    let mut new = i.clone();
                    new.concurrent = true;
                    new.if_not_exists = !new.idxname.is_empty();
                    let sql = deparse(NodeEnum::IndexStmt(new))?;
                    vec![step(sql, false, "build the index without blocking writes")]
                }
            };
            Some(SafeRewrite {
                steps,
                existing_rows: unique_index_rows(i, &table),
                as_written_when_free: false,
            })
        }
        NodeEnum::DropStmt(d)
            if !d.concurrent
                && d.remove_type == ObjectType::ObjectIndex as i32
                && d.objects.len() == 1
                && d.behavior != protobuf::DropBehavior::DropCascade as i32 =>
        {
            let names: Vec<QualifiedName> = QualifiedName::dropped(d).collect();
            // A partitioned table's index cannot be dropped concurrently (as written, its drop
            // reads no row); an index of a table no code used yet needs no rewrite.
            if names
                .iter()
                .any(|n| ctx.is_partitioned_index(n) || ctx.is_index_of_unused_table(n))
            {
                return None;
            }
            // A small index of a table the catalog names drops in about a millisecond: as
            // written when the table's lock is free at once, concurrently otherwise.
            let small = names
                .iter()
                .any(|n| ctx.is_small_index(n) && ctx.table_of_index(n).is_some());
            let mut new = d.clone();
            new.concurrent = true;
            let sql = deparse(NodeEnum::DropStmt(new))?;
            Some(SafeRewrite {
                steps: vec![step(
                    sql,
                    false,
                    "drop the index without blocking reads and writes",
                )],
                existing_rows: None,
                as_written_when_free: small,
            })
        }
        NodeEnum::ReindexStmt(r) if ctx.version.has(Feature::ReindexConcurrently) => {
            let concurrent = r.params.iter().any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently")));
            if concurrent {
                return None;
            }
            let kind = match ReindexObjectType::try_from(r.kind).ok()? {
                ReindexObjectType::ReindexObjectIndex => "INDEX",
                ReindexObjectType::ReindexObjectTable => "TABLE",
                _ => return None,
            };
            let name = QualifiedName::from_range_var(r.relation.as_ref()?);
            // A table no code used yet (or an index of one, when its table is known): as
            // written.
            let unused = match kind {
                "TABLE" => ctx.is_unused_table(&name),
                _ => ctx.is_index_of_unused_table(&name),
            };
            if unused {
                return None;
            }
            Some(SafeRewrite {
                steps: vec![step(
                    format!("REINDEX {kind} CONCURRENTLY {}", name.quoted()),
                    false,
                    "rebuild without blocking writes",
                )],
                existing_rows: None,
                as_written_when_free: false,
            })
        }
        NodeEnum::AlterTableStmt(a) => {
            let table = QualifiedName::from_range_var(a.relation.as_ref()?);
            if ctx.is_new_table(&table) {
                return None;
            }
            let cmds: Vec<_> = alter_commands(a).collect();
            // A table no code used yet needs no rewrite, unless a foreign key of it references
            // a table in use: validating the key holds that table's SHARE ROW EXCLUSIVE lock
            // (writes wait) for a scan of this one's rows, which the run may have filled.
            if ctx.is_unused_table(&table) {
                let references_used = cmds.iter().any(|(kind, cmd)| {
                    *kind == AlterTableType::AtAddConstraint
                        && command_constraint(cmd).is_some_and(|c| {
                            constraint_type(c) == ConstrType::ConstrForeign
                                && !c.skip_validation
                                && c.pktable.as_ref().is_some_and(|pk| {
                                    !ctx.is_unused_table(&QualifiedName::from_range_var(pk))
                                })
                        })
                });
                if !references_used {
                    return None;
                }
            }
            // Only single-subcommand statements have a mechanical rewrite; a combined ALTER
            // needs a person to split it.
            let [(kind, cmd)] = cmds.as_slice() else {
                return None;
            };
            match kind {
                AlterTableType::AtAddConstraint => {
                    let c = command_constraint(cmd)?;
                    match constraint_type(c) {
                        // NOT NULL: PostgreSQL 18's named NOT NULL constraint, which can be
                        // added NOT VALID and validated under SHARE UPDATE EXCLUSIVE (18.4).
                        ConstrType::ConstrCheck
                        | ConstrType::ConstrForeign
                        | ConstrType::ConstrNotnull
                            if !c.skip_validation =>
                        {
                            let mut c2 = c.clone();
                            if c2.conname.is_empty() {
                                c2.conname = constraint_name(&table, c)?;
                            }
                            let name = c2.conname.clone();
                            c2.skip_validation = true;
                            c2.initially_valid = false;
                            let mut cmd2 = (*cmd).clone();
                            cmd2.def = Some(Box::new(protobuf::Node {
                                node: Some(NodeEnum::Constraint(Box::new(c2))),
                            }));
                            let mut a2 = a.clone();
                            a2.cmds = vec![protobuf::Node {
                                node: Some(NodeEnum::AlterTableCmd(Box::new(cmd2))),
                            }];
                            let foreign = constraint_type(c) == ConstrType::ConstrForeign;
                            let steps = match ctx.partitions(&table) {
                                // Before 18 a partitioned table takes no NOT VALID foreign key.
                                Some(parts) if foreign && ctx.version.major < 18 => {
                                    let mut named = c.clone();
                                    named.conname = name.clone();
                                    let mut cmd3 = (*cmd).clone();
                                    cmd3.def = Some(Box::new(protobuf::Node {
                                        node: Some(NodeEnum::Constraint(Box::new(named))),
                                    }));
                                    let mut a3 = a.clone();
                                    a3.cmds = vec![protobuf::Node {
                                        node: Some(NodeEnum::AlterTableCmd(Box::new(cmd3))),
                                    }];
                                    partitioned::foreign_key(&a2, &a3, &name, parts)?
                                }
                                _ => vec![
                                    step(deparse(NodeEnum::AlterTableStmt(a2))?, true, "add the constraint without checking existing rows (brief lock)"),
                                    step(
                                        format!("ALTER TABLE {} VALIDATE CONSTRAINT {}", table.quoted(), quote_ident(&name)),
                                        false,
                                        "check existing rows under SHARE UPDATE EXCLUSIVE: reads and writes continue",
                                    ),
                                ],
                            };
                            Some(SafeRewrite {
                                steps,
                                existing_rows: constraint_rows(&table, c, &name),
                                as_written_when_free: false,
                            })
                        }
                        ConstrType::ConstrUnique | ConstrType::ConstrPrimary
                            if c.indexname.is_empty() =>
                        {
                            let cols = strings_of_keys(&c.keys);
                            if cols.is_empty() {
                                return None;
                            }
                            let primary = constraint_type(c) == ConstrType::ConstrPrimary;
                            let name = if c.conname.is_empty() {
                                if primary {
                                    // PostgreSQL names a primary key `<table>_pkey`, whatever its columns.
                                    object_name(&table.name, None, "pkey")
                                } else {
                                    object_name(&table.name, Some(&name_addition(&cols)), "key")
                                }
                            } else {
                                c.conname.clone()
                            };
                            let quoted_cols: Vec<String> =
                                cols.iter().map(|c| quote_ident(c)).collect();
                            // What the index must carry for the constraint to be the one
                            // written: its INCLUDE columns and NULLS NOT DISTINCT.
                            let include = strings(&c.including);
                            let mut tail = String::new();
                            if !include.is_empty() {
                                let inc: Vec<String> =
                                    include.iter().map(|c| quote_ident(c)).collect();
                                tail.push_str(&format!(" INCLUDE ({})", inc.join(", ")));
                            }
                            if c.nulls_not_distinct {
                                tail.push_str(" NULLS NOT DISTINCT");
                            }
                            let index = QualifiedName {
                                schema: table.schema.clone(),
                                name: name.clone(),
                            };
                            let existing_rows = Some(ExistingRows::Unique {
                                table: table.clone(),
                                name: name.clone(),
                                columns: cols.clone(),
                                primary,
                                nulls_distinct: !c.nulls_not_distinct,
                            });
                            if let Some(parts) = ctx.partitions(&table) {
                                return Some(SafeRewrite {
                                    steps: partitioned::unique(
                                        &partitioned::Unique {
                                            table: &table,
                                            name: &name,
                                            columns: &cols,
                                            include: &include,
                                            primary,
                                            tail: &tail,
                                        },
                                        parts,
                                        &|n| ctx.name_taken(n),
                                    ),
                                    existing_rows,
                                    as_written_when_free: false,
                                });
                            }
                            Some(SafeRewrite {
                                steps: vec![
                                    step(
                                        format!(
                                            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({}){tail}",
                                            quote_ident(&name),
                                            table.quoted(),
                                            quoted_cols.join(", ")
                                        ),
                                        false,
                                        "build the unique index without blocking writes",
                                    ),
                                    step(
                                        format!(
                                            "ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}",
                                            table.quoted(),
                                            quote_ident(&name),
                                            if primary { "PRIMARY KEY" } else { "UNIQUE" },
                                            quote_ident(&index.name)
                                        ),
                                        true,
                                        if primary {
                                            "turn the index into the primary key (columns must already be NOT NULL, or this scans)"
                                        } else {
                                            "turn the index into the constraint (brief lock, no scan)"
                                        },
                                    ),
                                ],
                                existing_rows,
                                as_written_when_free: false,
                            })
                        }
                        _ => None,
                    }
                }
                AlterTableType::AtSetNotNull if ctx.version.has(Feature::CheckBackedSetNotNull) => {
                    let col = &cmd.name;
                    // Not `<table>_<column>_not_null`: PostgreSQL 18 gives its own NOT NULL
                    // constraints that name, so a column that already has one makes the ADD
                    // fail with "already exists", and otherwise SET NOT NULL, finding the name
                    // taken by the helper, names its constraint `..._not_null1` where the
                    // author's statement leaves `..._not_null`. A suffix PostgreSQL never
                    // generates, with the parts shortened as it shortens them, cannot collide.
                    let check = object_name(&table.name, Some(col), "not_null_pgshift");
                    let t = table.quoted();
                    let (c, q) = (quote_ident(col), quote_ident(&check));
                    Some(SafeRewrite {
                        steps: vec![
                            step(
                                format!("ALTER TABLE {t} ADD CONSTRAINT {q} CHECK ({c} IS NOT NULL) NOT VALID"),
                                true,
                                "new rows must not be NULL (brief lock, no scan)",
                            ),
                            step(
                                format!("ALTER TABLE {t} VALIDATE CONSTRAINT {q}"),
                                false,
                                "check existing rows under SHARE UPDATE EXCLUSIVE: reads and writes continue",
                            ),
                            step(format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL"), true, "uses the validated CHECK: no scan"),
                            step(format!("ALTER TABLE {t} DROP CONSTRAINT {q}"), true, "the CHECK is redundant now"),
                        ],
                        existing_rows: None,
                        as_written_when_free: false,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The rows a CHECK or FOREIGN KEY named `name` must find valid.
fn constraint_rows(
    table: &QualifiedName,
    c: &protobuf::Constraint,
    name: &str,
) -> Option<ExistingRows> {
    match constraint_type(c) {
        ConstrType::ConstrCheck => Some(ExistingRows::Check {
            table: table.clone(),
            name: name.to_string(),
            expr: expression_text(c.raw_expr.as_deref()?)?,
        }),
        ConstrType::ConstrForeign => Some(ExistingRows::ForeignKey {
            table: table.clone(),
            name: name.to_string(),
            columns: strings(&c.fk_attrs),
            references: QualifiedName::from_range_var(c.pktable.as_ref()?),
            ref_columns: strings(&c.pk_attrs),
        }),
        _ => None,
    }
}

/// A `CREATE UNIQUE INDEX` on plain columns, without a predicate, as the rows must satisfy it.
fn unique_index_rows(i: &protobuf::IndexStmt, table: &QualifiedName) -> Option<ExistingRows> {
    if !i.unique || i.where_clause.is_some() {
        return None;
    }
    let mut columns = Vec::new();
    for p in &i.index_params {
        let Some(NodeEnum::IndexElem(e)) = &p.node else {
            return None;
        };
        if e.name.is_empty() || e.expr.is_some() {
            return None;
        }
        columns.push(e.name.clone());
    }
    Some(ExistingRows::Unique {
        table: table.clone(),
        name: i.idxname.clone(),
        columns,
        primary: false,
        nulls_distinct: !i.nulls_not_distinct,
    })
}

/// An expression's text, as PostgreSQL's deparser prints it.
fn expression_text(expr: &protobuf::Node) -> Option<String> {
    let select = protobuf::SelectStmt {
        target_list: vec![protobuf::Node {
            node: Some(NodeEnum::ResTarget(Box::new(protobuf::ResTarget {
                val: Some(Box::new(expr.clone())),
                ..Default::default()
            }))),
        }],
        op: protobuf::SetOperation::SetopNone as i32,
        limit_option: protobuf::LimitOption::Default as i32,
        ..Default::default()
    };
    let sql = deparse(NodeEnum::SelectStmt(Box::new(select)))?;
    sql.strip_prefix("SELECT ").map(str::to_string)
}

fn strings_of_keys(keys: &[protobuf::Node]) -> Vec<String> {
    strings(keys)
}

/// PostgreSQL's default constraint name: `<table>_<cols>_fkey` / `<table>_<col>_check`.
fn constraint_name(table: &QualifiedName, c: &protobuf::Constraint) -> Option<String> {
    let name = match constraint_type(c) {
        ConstrType::ConstrForeign => object_name(
            &table.name,
            Some(&name_addition(&strings(&c.fk_attrs))),
            "fkey",
        ),
        ConstrType::ConstrCheck => {
            // PostgreSQL names a CHECK after its column when the expression references
            // exactly one distinct column (AddRelationNewConstraints), else `<table>_check`.
            let mut cols: Vec<String> = Vec::new();
            if let Some(NodeEnum::ColumnRef(r)) =
                c.raw_expr.as_deref().and_then(|e| e.node.as_ref())
            {
                cols.extend(strings(&r.fields).last().cloned());
            }
            for (node, ..) in c
                .raw_expr
                .as_deref()
                .and_then(|e| e.node.as_ref())
                .map(|n| n.nodes())
                .unwrap_or_default()
            {
                if let pg_query::NodeRef::ColumnRef(r) = node {
                    if let Some(col) = strings(&r.fields).last() {
                        if !cols.contains(col) {
                            cols.push(col.clone());
                        }
                    }
                }
            }
            match cols.as_slice() {
                [col] => object_name(&table.name, Some(col), "check"),
                _ => object_name(&table.name, None, "check"),
            }
        }
        _ => return None,
    };
    Some(name)
}

/// PostgreSQL's `makeObjectName`: `name1_name2_label`, where a name too long for 63 bytes is
/// made by shortening the longer of `name1` and `name2`, never the label. Cutting the joined
/// text at 63 bytes instead would name the constraint differently from the statement as
/// written (`..._archive_2024_custom` instead of `..._notifica_customer_identifier_fkey`), and a
/// later `DROP CONSTRAINT` of the default name would fail.
fn object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(name2.is_some());
    let available = MAX_IDENTIFIER_BYTES.saturating_sub(overhead);
    let (mut n1, mut n2) = (name1.len(), name2.map_or(0, str::len));
    while n1 + n2 > available {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let mut out = clip(name1, n1).to_string();
    if let Some(name2) = name2 {
        out.push('_');
        out.push_str(clip(name2, n2));
    }
    out.push('_');
    out.push_str(label);
    out
}

/// PostgreSQL's `ChooseForeignKeyConstraintNameAddition` / `ChooseIndexNameAddition`: column
/// names joined by `_`, stopping once the text reaches 64 bytes.
fn name_addition(columns: &[String]) -> String {
    let mut out = String::new();
    for col in columns {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(clip(col, MAX_IDENTIFIER_BYTES));
        if out.len() > MAX_IDENTIFIER_BYTES {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::version::PgVersion;

    fn rewrite(sql: &str) -> Option<SafeRewrite> {
        let ctx = Context::new(PgVersion::new(15, 0), true);
        let parsed = pgshift_sql::parse(sql);
        parsed
            .statements
            .first()
            .and_then(|s| safe_rewrite(s, sql, &ctx))
    }

    fn sqls(sql: &str) -> Vec<(String, bool)> {
        let r = rewrite(sql).map(|r| r.steps).unwrap_or_default();
        for s in &r {
            let p = pgshift_sql::parse(&s.sql);
            assert!(
                p.errors.is_empty() && p.statements.len() == 1,
                "{}: {:?}",
                s.sql,
                p.errors
            );
        }
        r.into_iter().map(|s| (s.sql, s.transaction)).collect()
    }

    /// The steps of the last statement of `script`, after a context has seen the others
    /// (with the migration split between them, as the tables then exist).
    fn steps_after(script: &str) -> Vec<(String, bool)> {
        let mut ctx = Context::new(PgVersion::new(15, 0), true);
        let parsed = pgshift_sql::parse(script);
        let (last, before) = parsed.statements.split_last().expect("statements");
        ctx.start_script(true, crate::context::Direction::Up);
        for s in before {
            let effects = crate::statement_effects(&s.node, &ctx);
            ctx.observe(&s.node, &effects, s.span.clone());
        }
        ctx.start_script(true, crate::context::Direction::Up);
        safe_rewrite(last, script, &ctx)
            .map(|r| r.steps)
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.sql, s.transaction))
            .collect()
    }

    #[test]
    fn on_a_partitioned_table_indexes_are_built_per_partition_and_attached() {
        let tree = "CREATE TABLE ev (id bigint, k int) PARTITION BY RANGE (k);
                    CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM (0) TO (10);
                    CREATE TABLE ev_2 PARTITION OF ev FOR VALUES FROM (10) TO (20) PARTITION BY RANGE (k);
                    CREATE TABLE ev_2a PARTITION OF ev_2 FOR VALUES FROM (10) TO (20);";
        assert_eq!(
            steps_after(&format!("{tree} CREATE INDEX ev_id_idx ON ev (id)")),
            vec![
                ("CREATE INDEX IF NOT EXISTS ev_id_idx ON ONLY ev USING btree (id)".into(), true),
                ("CREATE INDEX IF NOT EXISTS ev_2_id_idx ON ONLY ev_2 USING btree (id)".into(), true),
                ("CREATE INDEX CONCURRENTLY IF NOT EXISTS ev_1_id_idx ON ev_1 USING btree (id)".into(), false),
                ("CREATE INDEX CONCURRENTLY IF NOT EXISTS ev_2a_id_idx ON ev_2a USING btree (id)".into(), false),
                ("ALTER INDEX \"ev_2_id_idx\" ATTACH PARTITION \"ev_2a_id_idx\"".into(), true),
                ("ALTER INDEX \"ev_id_idx\" ATTACH PARTITION \"ev_2_id_idx\"".into(), true),
                ("ALTER INDEX \"ev_id_idx\" ATTACH PARTITION \"ev_1_id_idx\"".into(), true),
            ]
        );
        // A unique constraint from the leaves' constraints; a foreign key per leaf (before 18).
        let unique = steps_after(&format!("{tree} ALTER TABLE ev ADD UNIQUE (id, k)"));
        assert_eq!(
            unique.last().unwrap().0,
            "ALTER TABLE \"ev\" ADD CONSTRAINT \"ev_id_k_key\" UNIQUE (\"id\", \"k\")"
        );
        assert!(
            unique.iter().any(|(s, t)| !t
                && s.contains("CONCURRENTLY IF NOT EXISTS \"ev_2a_id_k_key\" ON \"ev_2a\"")),
            "{unique:#?}"
        );
        let fk = steps_after(&format!("{tree} CREATE TABLE r (id int PRIMARY KEY); ALTER TABLE ev ADD FOREIGN KEY (k) REFERENCES r (id)"));
        assert_eq!(fk.len(), 5, "{fk:#?}");
        assert!(
            fk[0]
                .0
                .starts_with("ALTER TABLE ev_1 ADD CONSTRAINT ev_k_fkey")
                && fk[0].0.ends_with("NOT VALID"),
            "{fk:#?}"
        );
        // A partition attached by ALTER TABLE is one too.
        let attached = steps_after(&format!(
            "{tree} CREATE TABLE ev_3 (id bigint, k int);
             ALTER TABLE ev ATTACH PARTITION ev_3 FOR VALUES FROM (20) TO (30);
             CREATE INDEX ev_id_idx ON ev (id)"
        ));
        assert!(
            attached.contains(&(
                "ALTER INDEX \"ev_id_idx\" ATTACH PARTITION \"ev_3_id_idx\"".into(),
                true
            )),
            "{attached:#?}"
        );
        // A partitioned table without partitions holds no row: left as written.
        assert!(steps_after(
            "CREATE TABLE e (id int) PARTITION BY RANGE (id); CREATE INDEX ON e (id)"
        )
        .is_empty());
    }

    #[test]
    fn create_index_becomes_concurrent() {
        assert_eq!(
            sqls("CREATE INDEX idx ON t USING btree (a) WHERE b > 0"),
            vec![(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx ON t USING btree (a) WHERE b > 0"
                    .into(),
                false
            )]
        );
        assert_eq!(
            sqls("CREATE UNIQUE INDEX ON s.t (a)"),
            vec![(
                "CREATE UNIQUE INDEX CONCURRENTLY ON s.t USING btree (a)".into(),
                false
            )]
        );
    }

    #[test]
    fn drop_and_reindex_become_concurrent() {
        assert_eq!(
            sqls("DROP INDEX IF EXISTS i"),
            vec![("DROP INDEX CONCURRENTLY IF EXISTS i".into(), false)]
        );
        assert_eq!(
            sqls("DROP INDEX a, b"),
            vec![],
            "CONCURRENTLY drops one index at a time"
        );
        assert_eq!(
            sqls("REINDEX INDEX i"),
            vec![("REINDEX INDEX CONCURRENTLY \"i\"".into(), false)]
        );
    }

    #[test]
    fn constraints_become_not_valid_then_validate() {
        assert_eq!(
            sqls("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id)"),
            vec![
                ("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID".into(), true),
                ("ALTER TABLE \"orders\" VALIDATE CONSTRAINT \"fk\"".into(), false)
            ]
        );
        let check = sqls("ALTER TABLE t ADD CHECK (a > 0)");
        assert_eq!(
            check[0].0,
            "ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a > 0) NOT VALID"
        );
        let check = sqls("ALTER TABLE t ADD CHECK (a > b)");
        assert_eq!(
            check[0].0,
            "ALTER TABLE t ADD CONSTRAINT t_check CHECK (a > b) NOT VALID"
        );
        let pk = sqls("ALTER TABLE t ADD PRIMARY KEY (a, b)");
        assert_eq!(
            pk[1].0,
            "ALTER TABLE \"t\" ADD CONSTRAINT \"t_pkey\" PRIMARY KEY USING INDEX \"t_pkey\""
        );
    }

    #[test]
    fn default_names_of_long_tables_are_postgresql_s() {
        // The names PostgreSQL 15 gave these constraints when added as written.
        let table = "customer_subscription_renewal_notifications_archive_2024";
        let fk = sqls(&format!(
            "ALTER TABLE {table} ADD FOREIGN KEY (customer_identifier) REFERENCES p (id)"
        ));
        assert_eq!(
            fk[1].0,
            format!("ALTER TABLE \"{table}\" VALIDATE CONSTRAINT \"customer_subscription_renewal_notifica_customer_identifier_fkey\"")
        );
        let check = sqls(&format!("ALTER TABLE {table} ADD CHECK (a > 0)"));
        assert!(
            check[1]
                .0
                .ends_with("\"customer_subscription_renewal_notifications_archive_202_a_check\""),
            "{}",
            check[1].0
        );
        let unique = sqls(&format!("ALTER TABLE {table} ADD UNIQUE (a)"));
        assert!(
            unique[1].0.ends_with(
                "USING INDEX \"customer_subscription_renewal_notifications_archive_2024_a_key\""
            ),
            "{}",
            unique[1].0
        );
        assert_eq!(object_name("t", Some("a"), "check"), "t_a_check");
        // Shortened on a character boundary: 57 bytes of `aéé...`, then `_pkey`.
        let wide = format!("a{}", "é".repeat(40));
        assert_eq!(object_name(&wide, None, "pkey").len(), 62);
    }

    #[test]
    fn set_not_null_uses_a_check() {
        let steps = sqls("ALTER TABLE t ALTER COLUMN \"Email\" SET NOT NULL");
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0].0, "ALTER TABLE \"t\" ADD CONSTRAINT \"t_Email_not_null_pgshift\" CHECK (\"Email\" IS NOT NULL) NOT VALID");
        // Long names keep the suffix, so the helper never takes PostgreSQL 18's name.
        let long = format!(
            "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
            "t".repeat(60),
            "c".repeat(60)
        );
        let helper = &sqls(&long)[0].0;
        assert!(helper.contains("_not_null_pgshift\" CHECK"), "{helper}");
        assert!(!steps[1].1, "VALIDATE in its own transaction");
    }

    #[test]
    fn unique_uses_a_concurrent_index() {
        let steps = sqls("ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE (a)");
        assert_eq!(
            steps[0].0,
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"t_a_key\" ON \"t\" (\"a\")"
        );
        assert_eq!(
            steps[1].0,
            "ALTER TABLE \"t\" ADD CONSTRAINT \"t_a_key\" UNIQUE USING INDEX \"t_a_key\""
        );
    }

    #[test]
    fn hostile_identifiers_stay_identifiers() {
        let steps = sqls("ALTER TABLE \"a\"\"b; drop table x\" ALTER COLUMN c SET NOT NULL");
        assert!(
            steps[0]
                .0
                .starts_with("ALTER TABLE \"a\"\"b; drop table x\" ADD CONSTRAINT"),
            "{}",
            steps[0].0
        );
    }

    #[test]
    fn new_tables_need_no_rewrite() {
        let mut ctx = Context::new(PgVersion::new(15, 0), true);
        let sql = "CREATE TABLE n (a int); CREATE INDEX i ON n (a)";
        let parsed = pgshift_sql::parse(sql);
        let first = &parsed.statements[0];
        ctx.observe(&first.node, &[], first.span.clone());
        assert_eq!(safe_rewrite(&parsed.statements[1], sql, &ctx), None);
    }
}
