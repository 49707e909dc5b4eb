//! A key column's type changed online: `ALTER TABLE t ALTER id TYPE bigint` where `id` is
//! (part of) the primary key, a column foreign keys reference, or a foreign key's column.
//! The change takes in every column that must change with it — each column of another table
//! (or of the same one) whose foreign key references a changed column and is not of the new
//! type yet, and so on down — and every foreign key any of them takes part in.
//!
//! - expand: for each such column, a new column of the new type kept in step by a one-way
//!   trigger and backfilled in batches, NOT NULL proved by `CHECK ... NOT VALID` +
//!   `VALIDATE`, its indexes built again concurrently (the primary key's as a unique index);
//!   then each foreign key is created again on the new columns, `NOT VALID`, and validated
//!   (which blocks no writes). Old code keeps inserting — taking new values from the
//!   sequence or identity — updating and deleting throughout; the new foreign keys act as the
//!   old ones do (`ON DELETE CASCADE`, ...).
//! - contract, one transaction for all the tables, each locked once (ACCESS EXCLUSIVE, one
//!   `LOCK TABLE` statement): the triggers and the old foreign keys go; a `serial`'s
//!   sequence is owned by the new column and widened (`AS bigint`), an identity is created
//!   on the new column and continues where the old one stood; the old columns go, the new
//!   ones take their names, defaults, NOT NULL, their indexes' names, the primary key
//!   (`ADD PRIMARY KEY USING INDEX`) and UNIQUE constraints; the new foreign keys take the
//!   old ones' names. Nothing is scanned or validated while the locks are held.
//! - rollback: the new foreign keys, the triggers and the new columns (with their indexes)
//!   go; nothing old was touched.
//!
//! A partitioned table's key changes the same way, its indexes built leaf by leaf and its
//! primary key made at contract from the leaves' ([`super::change_type::rebuild_partitioned`]).
//!
//! A foreign key on a partitioned table (which takes none `NOT VALID` before PostgreSQL 18) is
//! created again on each leaf, `NOT VALID` then validated, and at contract on the partitioned
//! table, which attaches the leaves' (no scan). A foreign key to a partitioned table's key is
//! made again only at contract, `NOT VALID`, and validated right after it (the primary key it
//! needs exists only then; until then the old foreign key keeps the rows valid); from a
//! partitioned table, on each leaf, then on the partitioned table once they are validated.
//!
//! Refused, with the reason: a `USING` expression (the referencing columns would need it
//! too), foreign keys with `ON ... SET DEFAULT` or `MATCH PARTIAL`, a partition key column,
//! and what a column copy cannot carry ([`super::change_type::unsupported`]).

use std::collections::BTreeMap;

use pgshift_sql::ident::{quote_ident, quote_literal, QualifiedName};
use tokio_postgres::Client;

use super::catalog::{self, ColumnFacts, ColumnUses, ForeignKeyFacts, SequenceFacts, TableFacts};
use super::change_type::{
    checks_again, finish_not_null, preflight, prove_not_null, rebuild_indexes, unsupported,
};
use super::sync::{self, object_name};
use super::{refusal, OpInput, Operation, PhaseUnit};
use crate::error::RunError;

/// Columns a key change may take in before it is refused as too large to plan.
const MAX_COLUMNS: usize = 32;

/// One column that changes type.
struct Changed {
    table: TableFacts,
    col: ColumnFacts,
    uses: ColumnUses,
    sequence: Option<SequenceFacts>,
    /// The new column's temporary name.
    new: String,
}

/// Whether column `column` of `table` takes part in a key: the primary key, a foreign key
/// on either side. Such a type change is planned here rather than by
/// [`super::change_type`].
pub async fn is_key(client: &Client, table: &TableFacts, column: &str) -> Result<bool, RunError> {
    let Some(col) = table.column(column) else {
        return Ok(false);
    };
    let uses = catalog::column_uses(client, table.oid, col.attnum).await?;
    Ok(uses.indexes.iter().any(|i| i.primary)
        || !uses.referenced_by.is_empty()
        || uses.constraints.iter().any(|c| c.kind == "f"))
}

/// The referenced key a foreign key column follows, as `(table oid, column)`, when column
/// `column` of `table` is one.
pub async fn referenced(
    client: &Client,
    table: &TableFacts,
    column: &str,
) -> Result<Vec<(u32, String)>, RunError> {
    let Some(col) = table.column(column) else {
        return Ok(Vec::new());
    };
    Ok(catalog::foreign_keys(client, table.oid, col.attnum)
        .await?
        .into_iter()
        .filter(|fk| fk.table_oid == table.oid)
        .filter_map(|fk| {
            let at = fk.columns.iter().position(|c| c == column)?;
            Some((fk.ref_oid, fk.ref_columns.get(at)?.clone()))
        })
        .collect())
}

/// The plan, and the columns it changes (`(table oid, column)`), so that the migration's own
/// statements changing those columns to the same type are taken in rather than run twice.
pub struct KeyChange {
    pub operation: Operation,
    pub columns: Vec<(u32, String)>,
}

pub async fn plan(
    client: &Client,
    input: &OpInput<'_>,
    column: &str,
    type_text: &str,
    using: Option<&str>,
) -> Result<KeyChange, RunError> {
    let (m, st) = (input.migration, input.statement);
    let refuse = |why: String| refusal(m, st.line, why);
    let Some(target) = catalog::type_name(client, type_text).await? else {
        return Err(refuse(format!("type {type_text} does not exist")));
    };
    let Some(first) = input.table.column(column).cloned() else {
        return Err(refuse(format!(
            "table {} has no column {column}",
            input.table.name
        )));
    };

    // The columns that change, and every foreign key they take part in.
    let mut changed: Vec<Changed> = Vec::new();
    let mut keys: Vec<ForeignKeyFacts> = Vec::new();
    let mut queue: Vec<(TableFacts, ColumnFacts)> = vec![(input.table.clone(), first)];
    while !queue.is_empty() {
        let (table, col) = queue.remove(0);
        if changed
            .iter()
            .any(|c| c.table.oid == table.oid && c.col.name == col.name)
        {
            continue;
        }
        if changed.len() == MAX_COLUMNS {
            return Err(refuse(format!(
                "more than {MAX_COLUMNS} columns would change with {}.{column}; change the key in smaller steps",
                input.table.name
            )));
        }
        super::partitioned_needs_13(m, st.line, &table, input.pg)?;
        if table.kind == "p" {
            if let Some(why) = super::change_type::in_partition_key(&table, &col.name) {
                return Err(refuse(format!(
                    "to change the type of {}.{}: {why}",
                    table.name, col.name
                )));
            }
        }
        let uses = catalog::column_uses(client, table.oid, col.attnum).await?;
        if let Some(why) =
            super::change_type::partition_local(client, &table, &col.name, "change the type of")
                .await?
        {
            return Err(refuse(why));
        }
        if let Some(why) = unsupported(&col, &uses, true) {
            return Err(refuse(format!(
                "to change the type of {}.{}: {why}",
                table.name, col.name
            )));
        }
        for fk in catalog::foreign_keys(client, table.oid, col.attnum).await? {
            if keys.iter().any(|k| k.oid == fk.oid) {
                continue;
            }
            if let Some(what) = &fk.unsupported {
                return Err(refuse(format!(
                    "foreign key {} on {} ({}) has {what}, which pgshift cannot carry over online yet",
                    fk.name, fk.table, fk.definition
                )));
            }
            // A column that references this one follows it to the new type.
            if fk.ref_oid == table.oid {
                if let Some(at) = fk.ref_columns.iter().position(|c| *c == col.name) {
                    let referencing = &fk.columns[at];
                    let Some(child) = catalog::table(client, &fk.table).await? else {
                        continue;
                    };
                    if let Some(ccol) = child.column(referencing).cloned() {
                        if ccol.type_text != target {
                            queue.push((child, ccol));
                        }
                    }
                }
            }
            keys.push(fk);
        }
        let sequence = catalog::sequence(client, table.oid, col.attnum).await?;
        let new = object_name("new", &table.name.name, &col.name);
        if table.column(&new).is_some() {
            return Err(refuse(format!(
                "{} already has a column {new}: an earlier online change of it was not cleaned up",
                table.name
            )));
        }
        changed.push(Changed {
            table,
            col,
            uses,
            sequence,
            new,
        });
    }
    if using.is_some() && (changed.len() > 1 || !keys.is_empty()) {
        return Err(refuse(
            "a USING expression on a key that foreign keys use: the referencing columns would need the same conversion. Change the type without USING (the values are cast), or drop the foreign keys first".to_string(),
        ));
    }
    // What each new column holds: the old value cast, or the key's USING expression (only
    // where no other column follows the key).
    let up = |c: &Changed| match using {
        Some(u) => format!("({u})"),
        // Converted on assignment, as the statement as written does (see change_type).
        None => quote_ident(&c.col.name),
    };
    let main_name = input.table.name.name.clone();
    let Some(up_row) = pgshift_sql::change::row_expression(&up(&changed[0]), &[main_name.as_str()])
    else {
        return Err(refuse(
            "the USING expression reads something other than the row (a subquery or another table): a trigger cannot compute it for each write".to_string(),
        ));
    };
    // Tables in the order met, each with its changed columns.
    let mut tables: Vec<u32> = Vec::new();
    for c in &changed {
        if !tables.contains(&c.table.oid) {
            tables.push(c.table.oid);
        }
    }
    let of = |oid: u32| changed.iter().filter(move |c| c.table.oid == oid);
    let new_name = |oid: u32, column: &str| -> Option<&str> {
        changed
            .iter()
            .find(|c| c.table.oid == oid && c.col.name == column)
            .map(|c| c.new.as_str())
    };

    let mut expand = Vec::new();
    let mut rollback = vec!["SET LOCAL client_min_messages = warning".to_string()];
    // The new columns and their triggers, one short transaction per table.
    let mut trigger_drops = Vec::new();
    for &oid in &tables {
        let t = &of(oid).next().expect("a changed column").table.name;
        let mut sql = Vec::new();
        for c in of(oid) {
            sql.push(format!(
                "ALTER TABLE {} ADD COLUMN {} {type_text}",
                t.quoted(),
                quote_ident(&c.new)
            ));
            let row = if std::ptr::eq(c, &changed[0]) {
                up_row.clone()
            } else {
                format!("NEW.{}", quote_ident(&c.col.name))
            };
            let triggers = sync::one_way(t, &c.col.name, &c.new, &row, c.col.has_equality);
            sql.extend(triggers.create(t));
            trigger_drops.extend(triggers.drop(t));
        }
        let names: Vec<String> = of(oid).map(|c| c.new.clone()).collect();
        expand.push(PhaseUnit::transaction(
            format!(
                "add {} {target} to {t}, kept in step by a trigger",
                names.join(", ")
            ),
            sql,
        ));
    }
    for c in &changed {
        let t = &c.table.name;
        expand.push(PhaseUnit::backfill(
            format!("backfill {t}.{} from {}", c.new, c.col.name),
            format!(
                "UPDATE {} SET {} = {}",
                t.quoted(),
                quote_ident(&c.new),
                up(c)
            ),
        ));
    }
    let nn_check = |c: &Changed| object_name("nn", &c.table.name.name, &c.col.name);
    for c in changed.iter().filter(|c| c.col.not_null) {
        expand.extend(prove_not_null(&c.table.name, &c.new, &nn_check(c)));
    }
    // Indexes, once each per table with every changed column of it replaced.
    let mut index_swaps: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for &oid in &tables {
        let t = of(oid).next().expect("a changed column").table.name.clone();
        let mut indexes: Vec<catalog::IndexFacts> = Vec::new();
        for c in of(oid) {
            for ix in &c.uses.indexes {
                if !indexes.iter().any(|i| i.name == ix.name) {
                    indexes.push(ix.clone());
                }
            }
        }
        let renamed: Vec<(&str, &str)> = of(oid)
            .map(|c| (c.col.name.as_str(), c.new.as_str()))
            .collect();
        let tree = &of(oid).next().expect("a changed column").table.partitions;
        let (builds, swaps) = rebuild_indexes(&t, tree, &indexes, &renamed, &[]);
        expand.extend(builds);
        index_swaps.insert(oid, swaps);
    }
    // The foreign keys again, on the new columns: NOT VALID (a short lock), then validated.
    // On a partitioned table (which takes no NOT VALID foreign key before PostgreSQL 18) each
    // leaf's, and the partitioned table's at contract, which attaches them (no scan).
    let mut fk_renames = Vec::new();
    let mut fk_drops = Vec::new();
    let mut fk_validations = Vec::new();
    for fk in &keys {
        let tmp = object_name("fk", &fk.table.name, &fk.name);
        // A key of a partitioned table gets its primary key only at contract (PostgreSQL
        // cannot make one from an index of a partitioned table), so a foreign key to it
        // cannot be made on the new columns before: the old one, enforced until then, keeps
        // the new columns (in step with the old) valid, and the contract adds it again
        // `NOT VALID` on them, validated right after (no write blocked).
        let to_partitioned = changed
            .iter()
            .any(|c| c.table.oid == fk.ref_oid && c.table.kind == "p");
        if to_partitioned {
            let cols = quoted_list;
            fk_drops.push(format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                fk.table.quoted(),
                quote_ident(&fk.name)
            ));
            let add = |on: &QualifiedName, not_valid: bool| {
                format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){}{}",
                    on.quoted(),
                    quote_ident(&fk.name),
                    cols(&fk.columns),
                    fk.ref_table.quoted(),
                    cols(&fk.ref_columns),
                    fk.clauses,
                    if not_valid { " NOT VALID" } else { "" }
                )
            };
            let validate = |on: &QualifiedName| {
                PhaseUnit::transaction(
                    format!("validate foreign key {} on {on}", fk.name),
                    vec![format!(
                        "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                        on.quoted(),
                        quote_ident(&fk.name)
                    )],
                )
            };
            // From a partitioned table too (which takes none NOT VALID before 18): each
            // leaf's, validated after the contract, then the partitioned table's, which
            // attaches them.
            let leaves = partition_leaves(client, &fk.table).await?;
            if leaves.is_empty() {
                fk_renames.push(add(&fk.table, true));
                fk_validations.push(validate(&fk.table));
            } else {
                for leaf in &leaves {
                    fk_renames.push(add(leaf, true));
                    fk_validations.push(validate(leaf));
                }
                fk_validations.push(PhaseUnit::transaction(
                    format!(
                        "add foreign key {} on {} (it attaches its partitions')",
                        fk.name, fk.table
                    ),
                    vec![add(&fk.table, false)],
                ));
            }
            continue;
        }
        let map = |oid: u32, cols: &[String]| -> String {
            cols.iter()
                .map(|c| quote_ident(new_name(oid, c).unwrap_or(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let leaves = partition_leaves(client, &fk.table).await?;
        let holders = if leaves.is_empty() {
            vec![fk.table.clone()]
        } else {
            leaves.clone()
        };
        for holder in &holders {
            expand.push(PhaseUnit::transaction(
                format!(
                    "add foreign key {tmp} on {holder} NOT VALID (as {})",
                    fk.name
                ),
                vec![format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){} NOT VALID",
                    holder.quoted(),
                    quote_ident(&tmp),
                    map(fk.table_oid, &fk.columns),
                    fk.ref_table.quoted(),
                    map(fk.ref_oid, &fk.ref_columns),
                    fk.clauses
                )],
            ));
            expand.push(PhaseUnit::transaction(
                format!("validate foreign key {tmp} on {holder}"),
                vec![format!(
                    "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                    holder.quoted(),
                    quote_ident(&tmp)
                )],
            ));
            rollback.push(format!(
                "ALTER TABLE IF EXISTS {} DROP CONSTRAINT IF EXISTS {}",
                holder.quoted(),
                quote_ident(&tmp)
            ));
        }
        fk_drops.push(format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            fk.table.quoted(),
            quote_ident(&fk.name)
        ));
        if !leaves.is_empty() {
            // The columns have their old names again by then.
            let cols = quoted_list;
            fk_renames.push(format!(
                "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){}",
                fk.table.quoted(),
                quote_ident(&fk.name),
                cols(&fk.columns),
                fk.ref_table.quoted(),
                cols(&fk.ref_columns),
                fk.clauses
            ));
        }
        for holder in &holders {
            fk_renames.push(format!(
                "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                holder.quoted(),
                quote_ident(&tmp),
                quote_ident(&fk.name)
            ));
        }
    }

    // The contract: every table locked once, in one statement; then nothing but catalog
    // changes.
    let mut locked: Vec<QualifiedName> = Vec::new();
    for t in changed
        .iter()
        .map(|c| &c.table.name)
        .chain(keys.iter().map(|k| &k.table))
    {
        if !locked.contains(t) {
            locked.push(t.clone());
        }
    }
    let mut contract = vec![format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        locked
            .iter()
            .map(QualifiedName::quoted)
            .collect::<Vec<_>>()
            .join(", ")
    )];
    contract.extend(trigger_drops.iter().cloned());
    contract.extend(fk_drops);
    let mut after = Vec::new();
    for &oid in &tables {
        for c in of(oid) {
            contract.extend(swap_column(c, &target, &nn_check(c)));
        }
        contract.extend(index_swaps.remove(&oid).unwrap_or_default());
        // A CHECK over two changed columns of the table is added again once.
        let mut checks = ColumnUses::default();
        for c in of(oid) {
            for k in &c.uses.constraints {
                if !checks.constraints.iter().any(|x| x.name == k.name) {
                    checks.constraints.push(k.clone());
                }
            }
        }
        let t = &of(oid).next().expect("a changed column").table.name;
        checks_again(t, &checks, &mut contract, &mut after);
    }
    contract.extend(fk_renames);
    after.extend(fk_validations);

    rollback.extend(trigger_drops);
    for c in changed.iter().rev() {
        rollback.push(format!(
            "ALTER TABLE IF EXISTS {} DROP COLUMN IF EXISTS {}",
            c.table.name.quoted(),
            quote_ident(&c.new)
        ));
    }

    let main = &changed[0];
    let others: Vec<String> = changed[1..]
        .iter()
        .map(|c| format!("{}.{}", c.table.name, c.col.name))
        .collect();
    let summary = if others.is_empty() {
        format!(
            "change the type of key {}.{} from {} to {target}",
            main.table.name, main.col.name, main.col.type_text
        )
    } else {
        format!(
            "change the type of key {}.{} from {} to {target}, with {} ({} foreign key{})",
            main.table.name,
            main.col.name,
            main.col.type_text,
            others.join(", "),
            keys.len(),
            if keys.len() == 1 { "" } else { "s" }
        )
    };
    let mut contract_units = vec![PhaseUnit::transaction(
        format!(
            "swap the {target} columns in (one lock on each of {})",
            locked
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        contract,
    )];
    contract_units.extend(after);
    for &oid in &tables {
        let t = &of(oid).next().expect("a changed column").table.name;
        let cols: Vec<&str> = of(oid).map(|c| c.col.name.as_str()).collect();
        contract_units.push(super::change_type::analyze(t, &cols));
    }
    let other_tables = tables[1..]
        .iter()
        .map(|&oid| {
            let t = &of(oid).next().expect("a changed column").table;
            (t.name.to_string(), oid)
        })
        .collect();
    let columns = changed
        .iter()
        .map(|c| (c.table.oid, c.col.name.clone()))
        .collect();
    Ok(KeyChange {
        operation: Operation {
            summary,
            table: main.table.name.to_string(),
            table_oid: main.table.oid,
            view_in_place: false,
            other_tables,
            preflight: preflight(
                &main.table.name,
                &main.col,
                &up(main),
                type_text,
                using.is_none(),
            ),
            not_undone: Vec::new(),
            caveats: Vec::new(),
            expand,
            contract: contract_units,
            rollback: vec![PhaseUnit::transaction(
                format!("drop the new {target} columns, their foreign keys and triggers"),
                rollback,
            )],
        },
        columns,
    })
}

/// `"a", "b"`: the columns as a statement lists them.
fn quoted_list(cols: &[String]) -> String {
    cols.iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The leaf partitions of `table` when it is a partitioned table (none otherwise).
async fn partition_leaves(
    client: &Client,
    table: &QualifiedName,
) -> Result<Vec<QualifiedName>, RunError> {
    Ok(match catalog::table(client, table).await? {
        Some(t) if t.kind == "p" => t
            .partitions
            .into_iter()
            .filter(|p| p.leaf)
            .map(|p| p.name)
            .collect(),
        _ => Vec::new(),
    })
}

/// The contract statements that put the new column in the old one's place: its sequence
/// (owned and widened, or an identity continued), the old column dropped, the name, default
/// and NOT NULL (proved by the validated check: no scan).
fn swap_column(c: &Changed, target: &str, nn_check: &str) -> Vec<String> {
    let t = c.table.name.quoted();
    let (old, new) = (quote_ident(&c.col.name), quote_ident(&c.new));
    let mut sql = Vec::new();
    let mut after_drop = Vec::new();
    if c.col.not_null {
        // Before an identity is added (it needs NOT NULL), and before the old column goes.
        sql.push(format!("ALTER TABLE {t} ALTER COLUMN {new} SET NOT NULL"));
    }
    match &c.sequence {
        Some(seq) if seq.identity.is_some() => {
            // A new identity that continues where the old one stands (no insert can take a
            // value meanwhile: the table is locked), under a temporary name until the old
            // sequence goes with its column.
            let schema = c.table.name.schema.clone().unwrap_or_default();
            let tmp = QualifiedName::qualified(
                schema.clone(),
                object_name("seq", &c.table.name.name, &c.col.name),
            );
            // The old range, unless it was the old type's own (the new type's is wider).
            let type_bound = [i64::from(i16::MAX), i64::from(i32::MAX)];
            let mut range = String::new();
            if !(seq.min == 1
                || type_bound
                    .iter()
                    .any(|b| seq.min == -b || seq.min == -b - 1))
            {
                range.push_str(&format!(" MINVALUE {}", seq.min));
            }
            if !(type_bound.contains(&seq.max) || seq.max == -1) {
                range.push_str(&format!(" MAXVALUE {}", seq.max));
            }
            sql.push(format!(
                "ALTER TABLE {t} ALTER COLUMN {new} ADD GENERATED {} AS IDENTITY (SEQUENCE NAME {} INCREMENT BY {} START WITH {}{range} CACHE {}{})",
                if seq.identity.as_deref() == Some("a") { "ALWAYS" } else { "BY DEFAULT" },
                tmp.quoted(),
                seq.increment,
                seq.start,
                seq.cache,
                if seq.cycle { " CYCLE" } else { "" }
            ));
            sql.push(format!(
                "SELECT setval({}, last_value, is_called) FROM {}",
                quote_literal(&tmp.quoted()),
                seq.name
            ));
            after_drop.push(format!(
                "ALTER SEQUENCE {} RENAME TO {}",
                tmp.quoted(),
                quote_ident(&seq.relname)
            ));
        }
        Some(seq) => {
            // A serial: the sequence follows the new column (or it would go with the old
            // one), and takes the new type's range.
            sql.push(format!("ALTER SEQUENCE {} OWNED BY {t}.{new}", seq.name));
            if let Some(widen) = widen_sequence(seq, target) {
                sql.push(widen);
            }
        }
        None => {}
    }
    sql.push(format!("ALTER TABLE {t} DROP COLUMN {old}"));
    sql.push(format!("ALTER TABLE {t} RENAME COLUMN {new} TO {old}"));
    sql.extend(super::change_type::keep_column_settings(
        &c.table.name,
        &c.col.name,
        &c.col,
    ));
    if c.col.not_null {
        sql.extend(super::change_type::keep_not_null_name(
            &c.table.name,
            &c.col.name,
            c.col.not_null_name.as_deref(),
        ));
    }
    sql.extend(after_drop);
    if let (Some(default), false) = (
        &c.col.default,
        c.sequence.as_ref().is_some_and(|s| s.identity.is_some()),
    ) {
        sql.push(format!(
            "ALTER TABLE {t} ALTER COLUMN {old} SET DEFAULT {default}"
        ));
    }
    if c.col.not_null {
        // SET NOT NULL is done; the proof goes.
        sql.extend(
            finish_not_null(&c.table.name, &c.col.name, nn_check)
                .into_iter()
                .skip(1),
        );
    }
    sql
}

/// `ALTER SEQUENCE s AS T` when a serial's sequence is narrower than its column's new type
/// (an `integer` sequence stops at 2^31 - 1 whatever the column holds).
pub fn widen_sequence(seq: &SequenceFacts, target: &str) -> Option<String> {
    let rank = |t: &str| match t {
        "smallint" => Some(1),
        "integer" => Some(2),
        "bigint" => Some(3),
        _ => None,
    };
    match (rank(&seq.type_text), rank(target)) {
        (Some(a), Some(b)) if b > a => Some(format!("ALTER SEQUENCE {} AS {target}", seq.name)),
        _ => None,
    }
}

/// Whether `statement` changes one of `columns` (`(table oid, column)`) to the type
/// `target` (as `format_type` prints it), without `USING`: the key change that takes those
/// columns in does what it says.
pub async fn does_same_change(
    client: &Client,
    statement: &crate::prepare::OnlineStatement,
    columns: &[(u32, String)],
    target: &str,
) -> Result<bool, RunError> {
    if !statement.rewrites || statement.phase.is_some() {
        return Ok(false);
    }
    let Some(changes) = &statement.changes else {
        return Ok(false);
    };
    if changes.len() != 1 {
        return Ok(false);
    }
    let pgshift_sql::SchemaChange::AlterType {
        table,
        column,
        type_text,
        using: None,
    } = &changes[0]
    else {
        return Ok(false);
    };
    let Some(facts) = catalog::table(client, table).await? else {
        return Ok(false);
    };
    Ok(columns.contains(&(facts.oid, column.clone()))
        && catalog::type_name(client, type_text).await?.as_deref() == Some(target))
}
