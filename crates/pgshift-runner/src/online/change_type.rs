//! `ALTER TABLE t ALTER c TYPE T2 [USING expr]` that rewrites the table, online.
//!
//! - expand: a new column `c` of type T2 under a temporary name, kept in step by a one-way
//!   trigger (every write of `c` sets the new column to `expr`, or `c::T2`); the rows that
//!   exist are backfilled in batches; the indexes on `c` are built again on the new column,
//!   concurrently, after the backfill; NOT NULL is proved by a `CHECK ... NOT VALID` then
//!   `VALIDATE`.
//! - contract, in one transaction: the old column goes, the new one takes its name, its
//!   default, NOT NULL, its indexes' names and its UNIQUE constraints; CHECK constraints on
//!   it are added again `NOT VALID`, then validated after the transaction.
//! - rollback: the new column, its indexes and the trigger go; the old column was never
//!   touched.
//!
//! Refused (with the reason): identity and generated columns, a primary key or a column a
//! foreign key references (the next issue's key change), foreign keys from the column,
//! views that read it, indexes with expressions, predicates or non-default options.

use pgshift_sql::ident::{quote_ident, quote_literal, QualifiedName};
use tokio_postgres::Client;

use super::catalog::{self, ColumnFacts, ColumnUses, Partition, TableFacts};
use super::sync::{self, object_name};
use super::{refusal, OpInput, Operation, PhaseUnit};
use crate::error::RunError;

pub async fn plan(
    client: &Client,
    input: &OpInput<'_>,
    column: &str,
    type_text: &str,
    using: Option<&str>,
) -> Result<Operation, RunError> {
    let (m, st, table) = (input.migration, input.statement, input.table);
    let Some(col) = table.column(column) else {
        return Err(refusal(
            m,
            st.line,
            format!("table {} has no column {column}", table.name),
        ));
    };
    let uses = catalog::column_uses(client, table.oid, col.attnum).await?;
    refuse_unsupported(input, col, &uses, "change the type of")?;
    refuse_partition_local(client, input, col, "change the type of").await?;
    let t = &table.name;
    let new = object_name("new", &t.name, column);
    // Without USING, the old value as it is (the new column's type converts it on
    // assignment, as the statement as written does: a value too long for `varchar(n)` is an
    // error, never cut short as an explicit cast would cut it).
    let up = using.map_or_else(|| quote_ident(column), |u| format!("({u})"));
    let Some(up_row) = pgshift_sql::change::row_expression(&up, &[t.name.as_str()]) else {
        return Err(refusal(
            m,
            st.line,
            "the USING expression reads something other than the row (a subquery or another table): a trigger cannot compute it for each write",
        ));
    };
    let triggers = sync::one_way(t, column, &new, &up_row, col.has_equality);
    let (qc, qn) = (quote_ident(column), quote_ident(&new));

    let mut setup = vec![format!(
        "ALTER TABLE {} ADD COLUMN {qn} {type_text}",
        t.quoted()
    )];
    setup.extend(triggers.create(t));
    let mut expand = vec![
        PhaseUnit::transaction(
            format!("add {t}.{new} {type_text}, kept in step with {column} by a trigger"),
            setup,
        ),
        PhaseUnit::backfill(
            format!("backfill {t}.{new} from {column}"),
            format!("UPDATE {} SET {qn} = {up}", t.quoted()),
        ),
    ];
    let mut contract = Vec::new();
    let mut after_contract = Vec::new();
    let nn_check = object_name("nn", &t.name, column);
    if col.not_null {
        expand.extend(prove_not_null(t, &new, &nn_check));
    }
    // Indexes on the new column, built after the backfill (cheaper than maintaining them
    // through it), with temporary names; they take the old names at contract.
    let (builds, index_swaps) = rebuild_indexes(
        t,
        &table.partitions,
        &uses.indexes,
        &[(column, new.as_str())],
        &[],
    );
    expand.extend(builds);

    contract.push(format!("ALTER TABLE {} DROP COLUMN {qc}", t.quoted()));
    if let Some(seq) = &uses.owned_sequence {
        // A serial's sequence takes the new type's range (an `integer` sequence stops at
        // 2^31 - 1 whatever the column holds).
        let facts = catalog::sequence(client, table.oid, col.attnum).await?;
        let target = catalog::type_name(client, type_text).await?;
        if let (Some(facts), Some(target)) = (facts, target) {
            contract.extend(super::change_key::widen_sequence(&facts, &target));
        }
        // Before the old column goes, or its sequence goes with it.
        contract.insert(
            0,
            format!("ALTER SEQUENCE {seq} OWNED BY {}.{qn}", t.quoted()),
        );
    }
    contract.splice(0..0, triggers.drop(t));
    contract.insert(0, lock_table(t));
    contract.push(format!(
        "ALTER TABLE {} RENAME COLUMN {qn} TO {qc}",
        t.quoted()
    ));
    if let Some(default) = &col.default {
        contract.push(format!(
            "ALTER TABLE {} ALTER COLUMN {qc} SET DEFAULT {default}",
            t.quoted()
        ));
    }
    if col.not_null {
        contract.extend(finish_not_null(t, column, &nn_check));
        contract.extend(keep_not_null_name(t, column, col.not_null_name.as_deref()));
    }
    contract.extend(keep_column_settings(t, column, col));
    contract.extend(index_swaps);
    checks_again(t, &uses, &mut contract, &mut after_contract);
    let mut contract_units = vec![PhaseUnit::transaction(
        format!("swap {t}.{column} for the new {type_text} column (one lock on {t})"),
        contract,
    )];
    contract_units.extend(after_contract);
    contract_units.push(analyze(t, &[column]));

    let mut rollback = triggers.drop(t);
    rollback.push(format!(
        "ALTER TABLE {} DROP COLUMN IF EXISTS {qn}",
        t.quoted()
    ));
    let preflight = preflight(t, col, &up, type_text, using.is_none());
    Ok(Operation {
        summary: format!(
            "change the type of {t}.{column} from {} to {type_text}",
            col.type_text
        ),
        table: t.to_string(),
        table_oid: table.oid,
        view_in_place: false,
        other_tables: Vec::new(),
        preflight,
        not_undone: Vec::new(),
        caveats: Vec::new(),
        expand,
        contract: contract_units,
        rollback: vec![PhaseUnit::transaction(
            format!("drop {t}.{new} and its trigger"),
            rollback,
        )],
    })
}

/// The checks on a sample of the rows before a type change writes anything: the new value
/// can be computed for every row, and (for a plain cast) converting back gives the old value.
pub fn preflight(
    t: &QualifiedName,
    col: &ColumnFacts,
    up: &str,
    type_text: &str,
    plain_cast: bool,
) -> Vec<super::Preflight> {
    let qc = quote_ident(&col.name);
    let sample = format!(
        "SELECT {qc} AS old, ({up})::{type_text} AS new FROM {} LIMIT {}",
        t.quoted(),
        super::PREFLIGHT_ROWS
    );
    let mut checks = vec![super::Preflight {
        sql: format!("SELECT count(new) FROM ({sample}) s"),
        failing: format!("the new value `{up}` cannot be computed for every row"),
        lossy: false,
    }];
    // A plain cast should give the old values back; a USING expression is a deliberate
    // transformation and is not expected to.
    if plain_cast {
        checks.push(super::Preflight {
            sql: format!(
                "SELECT count(*) FROM ({sample}) s WHERE {}",
                sync::distinct(
                    &format!("(new)::{}", col.type_text),
                    "old",
                    col.has_equality
                )
            ),
            failing: format!(
                "the change is lossy: converted to {type_text} and back to {}, some values are not what they were (old code reading them back would see other values)",
                col.type_text
            ),
            lossy: true,
        });
    }
    checks
}

/// The CHECK constraints on a column that the contract drops with it, added again on the
/// column that takes its place: `NOT VALID` in the contract transaction (no scan under its
/// lock), validated in a transaction of its own after it.
pub fn checks_again(
    t: &QualifiedName,
    uses: &ColumnUses,
    contract: &mut Vec<String>,
    after: &mut Vec<PhaseUnit>,
) {
    for check in uses.constraints.iter().filter(|c| c.kind == "c") {
        contract.push(format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID",
            t.quoted(),
            quote_ident(&check.name),
            check.definition.trim_end_matches(" NOT VALID")
        ));
        after.push(PhaseUnit::transaction(
            format!("validate {} on {t}", check.name),
            vec![format!(
                "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                t.quoted(),
                quote_ident(&check.name)
            )],
        ));
    }
}

/// `ANALYZE t (columns)` after the contract: the columns that took the old ones' place have
/// no statistics of their own yet (the planner would guess), and `ANALYZE` reads a sample
/// without blocking reads or writes.
pub fn analyze(t: &QualifiedName, columns: &[&str]) -> PhaseUnit {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    PhaseUnit::transaction(
        format!("analyze {t} ({})", columns.join(", ")),
        vec![format!("ANALYZE {} ({})", t.quoted(), cols.join(", "))],
    )
}

/// The first statement of a contract transaction: the one ACCESS EXCLUSIVE acquisition on
/// the table (under `lock_timeout`, retried, behind the lock-queue guard); every statement
/// after it finds the lock held.
pub fn lock_table(t: &QualifiedName) -> String {
    format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", t.quoted())
}

/// `CHECK (col IS NOT NULL) NOT VALID`, then `VALIDATE` (which blocks no writes): at contract
/// `SET NOT NULL` finds the proof and does not scan.
pub fn prove_not_null(t: &QualifiedName, column: &str, check: &str) -> Vec<PhaseUnit> {
    vec![
        PhaseUnit::transaction(
            format!("add {check} NOT VALID"),
            vec![format!(
                "ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID",
                t.quoted(),
                quote_ident(check),
                quote_ident(column)
            )],
        ),
        PhaseUnit::transaction(
            format!("validate {check}"),
            vec![format!(
                "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                t.quoted(),
                quote_ident(check)
            )],
        ),
    ]
}

/// At contract, with the proof of [`prove_not_null`] validated: `SET NOT NULL` finds it and does
/// not scan; then the proof goes.
pub fn finish_not_null(t: &QualifiedName, column: &str, check: &str) -> Vec<String> {
    vec![
        format!(
            "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
            t.quoted(),
            quote_ident(column)
        ),
        format!(
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
            t.quoted(),
            quote_ident(check)
        ),
    ]
}

/// What a column copy must set again on the column that takes `col`'s place under `column`:
/// its comment and its statistics target (dropping the old column takes them).
pub fn keep_column_settings(t: &QualifiedName, column: &str, col: &ColumnFacts) -> Vec<String> {
    let c = quote_ident(column);
    let mut sql = Vec::new();
    if let Some(comment) = &col.comment {
        sql.push(format!(
            "COMMENT ON COLUMN {}.{c} IS {}",
            t.quoted(),
            quote_literal(comment)
        ));
    }
    if let Some(target) = col.statistics {
        sql.push(format!(
            "ALTER TABLE {} ALTER COLUMN {c} SET STATISTICS {target}",
            t.quoted()
        ));
    }
    sql
}

/// On PostgreSQL 18, where NOT NULL is a named constraint: the statement that gives the NOT
/// NULL constraint of `column` (made on the column that took the old one's place, so named
/// after it) the name `old` had, as the statement as written leaves it. `None` before 18.
pub fn keep_not_null_name(t: &QualifiedName, column: &str, old: Option<&str>) -> Option<String> {
    let old = old?;
    let table = quote_literal(&t.quoted());
    Some(format!(
        "DO $pgshift$ DECLARE n name; BEGIN          SELECT conname INTO n FROM pg_constraint WHERE conrelid = {table}::regclass AND contype = 'n'          AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = {table}::regclass AND attname = {})];          IF n IS NOT NULL AND n <> {old_lit} THEN          EXECUTE format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', {table}, n, {old_lit});          END IF; END $pgshift$",
        quote_literal(column),
        old_lit = quote_literal(old),
    ))
}

/// The indexes on `old`, built again on `new` (each `(old, new)` pair of `renamed`): the
/// expand's units (concurrent builds under temporary names, after the backfill), and the
/// contract's statements that give them the old names and constraints (UNIQUE, PRIMARY
/// KEY) once the old columns and their indexes are gone. On a partitioned table (`tree`, its
/// partitions) see [`rebuild_partitioned`]; `finals` names the columns as they are called
/// after the contract, where that is not their name now.
pub fn rebuild_indexes(
    t: &QualifiedName,
    tree: &[Partition],
    indexes: &[catalog::IndexFacts],
    renamed: &[(&str, &str)],
    finals: &[(&str, &str)],
) -> (Vec<PhaseUnit>, Vec<String>) {
    if !tree.is_empty() {
        return rebuild_partitioned(t, tree, indexes, renamed, finals);
    }
    let schema = t.schema.clone().unwrap_or_default();
    let mut expand = Vec::new();
    let mut contract = Vec::new();
    let news: Vec<&str> = renamed.iter().map(|(_, n)| *n).collect();
    for ix in indexes {
        let tmp = object_name("ix", &ix.name, "");
        expand.push(PhaseUnit::outside(
            format!(
                "build index {tmp} on {t} ({}, as {})",
                news.join(", "),
                ix.name
            ),
            index_on(t, ix, renamed, &tmp),
        ));
        contract.push(format!(
            "ALTER INDEX {} RENAME TO {}",
            QualifiedName::qualified(schema.clone(), tmp.as_str()).quoted(),
            quote_ident(&ix.name)
        ));
        if let Some(name) = &ix.constraint {
            contract.push(format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}",
                t.quoted(),
                quote_ident(name),
                if ix.primary { "PRIMARY KEY" } else { "UNIQUE" },
                quote_ident(&ix.name)
            ));
        }
    }
    (expand, contract)
}

/// The indexes of a partitioned table built again: PostgreSQL builds no index on a
/// partitioned table concurrently, so each leaf partition's is built concurrently on its
/// own, under a temporary name.
///
/// - A plain index: at expand, the partitioned table's (and each partitioned partition's)
///   index is created `ON ONLY` (no rows read, left invalid), then every leaf's is attached,
///   bottom up, which makes it valid. At contract the indexes take the old names.
/// - An index behind a UNIQUE or PRIMARY KEY constraint: the leaves' indexes are built and
///   left alone until the contract, which makes each one its leaf's constraint (`USING
///   INDEX`, no scan), then adds the constraint on the partitioned table: PostgreSQL finds
///   each partition's constraint and attaches it instead of building anything.
pub fn rebuild_partitioned(
    t: &QualifiedName,
    tree: &[Partition],
    indexes: &[catalog::IndexFacts],
    renamed: &[(&str, &str)],
    finals: &[(&str, &str)],
) -> (Vec<PhaseUnit>, Vec<String>) {
    let mut expand = Vec::new();
    let mut contract = Vec::new();
    let at = |schema: &Option<String>, name: &str| {
        QualifiedName::qualified(schema.clone().unwrap_or_default(), name).quoted()
    };
    let leaves: Vec<&Partition> = tree.iter().filter(|p| p.leaf).collect();
    for ix in indexes {
        let tmp = object_name("ix", &ix.name, "");
        // The temporary name of the index's partition on partition `oid`.
        let part_tmp = |oid: u32| object_name("ix", &ix.name, &oid.to_string());
        // The name the index's partition on `oid` had, which the new one takes.
        let old_name = |oid: u32| {
            ix.partitions
                .iter()
                .find(|(o, _)| *o == oid)
                .map(|(_, n)| n.clone())
        };
        let mut uppers = Vec::new();
        if ix.constraint.is_none() {
            uppers.push(index_on_only(t, ix, renamed, &tmp));
            for p in tree.iter().filter(|p| !p.leaf) {
                uppers.push(index_on_only(&p.name, ix, renamed, &part_tmp(p.oid)));
            }
            expand.push(PhaseUnit::transaction(
                format!(
                    "create index {tmp} on {t} and its partitioned partitions (ON ONLY, as {})",
                    ix.name
                ),
                uppers,
            ));
        }
        for leaf in &leaves {
            let name = part_tmp(leaf.oid);
            expand.push(PhaseUnit::outside(
                format!(
                    "build index {name} on partition {} (as {})",
                    leaf.name, ix.name
                ),
                index_on(&leaf.name, ix, renamed, &name),
            ));
        }
        match &ix.constraint {
            None => {
                // Bottom up: a partitioned partition's index is valid once its own are in.
                let mut attach = Vec::new();
                let root = tree.first().map_or(0, |p| p.parent);
                for p in tree.iter().rev() {
                    let parent = if p.parent == root {
                        at(&t.schema, &tmp)
                    } else {
                        let Some(up) = tree.iter().find(|q| q.oid == p.parent) else {
                            continue;
                        };
                        at(&up.name.schema, &part_tmp(up.oid))
                    };
                    attach.push(format!(
                        "ALTER INDEX {parent} ATTACH PARTITION {}",
                        at(&p.name.schema, &part_tmp(p.oid))
                    ));
                }
                expand.push(PhaseUnit::transaction(
                    format!("attach the partitions' indexes to {tmp} on {t}"),
                    attach,
                ));
                contract.push(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    at(&t.schema, &tmp),
                    quote_ident(&ix.name)
                ));
                for p in tree {
                    if let Some(old) = old_name(p.oid) {
                        contract.push(format!(
                            "ALTER INDEX {} RENAME TO {}",
                            at(&p.name.schema, &part_tmp(p.oid)),
                            quote_ident(&old)
                        ));
                    }
                }
            }
            Some(name) => {
                let kind = if ix.primary { "PRIMARY KEY" } else { "UNIQUE" };
                for leaf in &leaves {
                    let constraint = old_name(leaf.oid).unwrap_or_else(|| part_tmp(leaf.oid));
                    contract.push(format!(
                        "ALTER TABLE {} ADD CONSTRAINT {} {kind} USING INDEX {}",
                        leaf.name.quoted(),
                        quote_ident(&constraint),
                        quote_ident(&part_tmp(leaf.oid))
                    ));
                }
                // The columns as they are called after the contract; the INCLUDE columns
                // too, or the leaves' indexes would not match and PostgreSQL would build new
                // ones under the contract's lock.
                let cols = |list: &[Option<String>]| {
                    list.iter()
                        .map(|c| {
                            let c = c.as_deref().unwrap_or_default();
                            quote_ident(finals.iter().find(|(o, _)| *o == c).map_or(c, |(_, f)| *f))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let include = if ix.include.is_empty() {
                    String::new()
                } else {
                    format!(" INCLUDE ({})", cols(&ix.include))
                };
                contract.push(format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} {kind} ({}){include}",
                    t.quoted(),
                    quote_ident(name),
                    cols(&ix.key)
                ));
            }
        }
    }
    (expand, contract)
}

/// `CREATE INDEX IF NOT EXISTS tmp ON ONLY t ...`: the index of a partitioned table alone,
/// invalid until every partition's is attached.
fn index_on_only(
    t: &QualifiedName,
    ix: &catalog::IndexFacts,
    renamed: &[(&str, &str)],
    tmp: &str,
) -> String {
    index_on(t, ix, renamed, tmp)
        .replacen(" CONCURRENTLY", "", 1)
        .replacen(
            &format!(" ON {}", t.quoted()),
            &format!(" ON ONLY {}", t.quoted()),
            1,
        )
}

/// `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS tmp ON t USING m (...)` with each
/// `old` column of `renamed` replaced by its `new`.
pub fn index_on(
    t: &QualifiedName,
    ix: &catalog::IndexFacts,
    renamed: &[(&str, &str)],
    tmp: &str,
) -> String {
    let cols = |list: &[Option<String>]| {
        list.iter()
            .map(|c| {
                let c = c.as_deref().unwrap_or_default();
                let c = renamed
                    .iter()
                    .find(|(old, _)| *old == c)
                    .map_or(c, |(_, new)| *new);
                quote_ident(c)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut sql = format!(
        "CREATE {}INDEX CONCURRENTLY IF NOT EXISTS {} ON {} USING {} ({})",
        if ix.unique { "UNIQUE " } else { "" },
        quote_ident(tmp),
        t.quoted(),
        ix.method,
        cols(&ix.key)
    );
    if !ix.include.is_empty() {
        sql.push_str(&format!(" INCLUDE ({})", cols(&ix.include)));
    }
    sql
}

/// What a column copy cannot carry yet, refused with the reason.
pub fn refuse_unsupported(
    input: &OpInput<'_>,
    col: &ColumnFacts,
    uses: &ColumnUses,
    doing: &str,
) -> Result<(), RunError> {
    let (m, st, table): (_, _, &TableFacts) = (input.migration, input.statement, input.table);
    if let Some(why) = in_partition_key(table, &col.name) {
        return Err(refusal(
            m,
            st.line,
            format!("to {doing} {}.{}: {why}", table.name, col.name),
        ));
    }
    match unsupported(col, uses, false) {
        Some(why) => Err(refusal(
            m,
            st.line,
            format!("to {doing} {}.{}: {why}", table.name, col.name),
        )),
        None => Ok(()),
    }
}

/// Refuses a column swap on a partitioned table when a partition holds something of its own
/// over the column (see [`catalog::partition_local_uses`]).
pub async fn refuse_partition_local(
    client: &Client,
    input: &OpInput<'_>,
    col: &ColumnFacts,
    doing: &str,
) -> Result<(), RunError> {
    match partition_local(client, input.table, &col.name, doing).await? {
        Some(why) => Err(refusal(input.migration, input.statement.line, why)),
        None => Ok(()),
    }
}

/// Why `column` of `table` cannot be swapped: a partition's own object over it, if any.
pub async fn partition_local(
    client: &Client,
    table: &TableFacts,
    column: &str,
    doing: &str,
) -> Result<Option<String>, RunError> {
    let local = catalog::partition_local_uses(client, table, column).await?;
    Ok(local.first().map(|what| {
        format!(
            "to {doing} {}.{column}: {what} is the partition's own (not the partitioned table's), and the swap would drop it. Make it the partitioned table's, or drop it first and create it again afterwards",
            table.name
        )
    }))
}

/// Why a column of the partition key cannot be swapped for another, when it is one.
pub fn in_partition_key(table: &TableFacts, column: &str) -> Option<String> {
    table
        .partition_key
        .iter()
        .flatten()
        .any(|k| k == column)
        .then(|| {
            format!(
                "it is in the partition key of {}, which PostgreSQL cannot drop, so it cannot be swapped for a new column online. Change it in a new partitioned table, or with `-- pgshift:online off` under a maintenance window",
                table.name
            )
        })
}

/// Why column `col` cannot be copied online, if it cannot. With `keys`, its
/// part in a primary key and in foreign keys is carried over ([`super::change_key`]), as is
/// an identity.
pub fn unsupported(col: &ColumnFacts, uses: &ColumnUses, keys: bool) -> Option<String> {
    if col.generated || (col.identity && !keys) {
        return Some(
            "it is an identity or generated column, which pgshift cannot copy online yet".into(),
        );
    }
    if !keys {
        if let Some(ix) = uses.indexes.iter().find(|i| i.primary) {
            return Some(format!(
                "it is part of the primary key ({}); key changes online are not supported yet",
                ix.name
            ));
        }
        if let Some(fk) = uses.referenced_by.first() {
            return Some(format!(
                "a foreign key references it ({fk}); key changes online are not supported yet"
            ));
        }
    }
    if let Some(c) = uses
        .constraints
        .iter()
        .find(|c| (c.kind == "f" && !keys) || c.kind == "x")
    {
        return Some(format!(
            "constraint {} ({}) uses it and cannot be carried over online yet",
            c.name, c.definition
        ));
    }
    if let Some(other) = uses.others.first() {
        return Some(format!(
            "{other} depends on it, and the old column could not be dropped at contract (or would take it along)"
        ));
    }
    if let Some(v) = uses.views.first() {
        return Some(format!(
            "view {v} reads it; the old column could not be dropped at contract. Drop the view first and create it again afterwards"
        ));
    }
    if let Some(ix) = uses.indexes.iter().find(|i| !i.plain) {
        return Some(format!(
            "index {} ({}) has an expression, a predicate or non-default options, which pgshift cannot build again on the new column yet",
            ix.name, ix.definition
        ));
    }
    if let Some(ix) = uses
        .indexes
        .iter()
        .find(|i| i.constraint.is_some() && !i.unique)
    {
        return Some(format!(
            "index {} backs a constraint pgshift cannot carry over",
            ix.name
        ));
    }
    None
}
