//! The safe forms on a partitioned table, whose partitions the runner read from the live
//! catalog ([`Context::assume_partitions`]). PostgreSQL builds no index on a partitioned table
//! concurrently (and before 18 adds no foreign key to one `NOT VALID`), so the work is done
//! partition by partition, and the partitioned table's own object is made last, from the
//! partitions' — PostgreSQL attaches what each partition already has instead of building it:
//!
//! - `CREATE [UNIQUE] INDEX`: the index created `ON ONLY` the partitioned table (and each
//!   partitioned partition), which reads no row and stays invalid; each leaf's built
//!   `CONCURRENTLY`; each attached to its parent's, bottom up, which makes them valid.
//! - `ADD UNIQUE` / `ADD PRIMARY KEY`: each leaf's unique index built `CONCURRENTLY` and made
//!   its leaf's constraint (`USING INDEX`), then the constraint added on the partitioned
//!   table, which finds them and attaches them.
//! - `ADD FOREIGN KEY` (PostgreSQL before 18): each leaf's added `NOT VALID` and validated,
//!   then the partitioned table's, which attaches them and checks no row again.

use pg_query::protobuf::{self, IndexStmt, RangeVar};
use pg_query::NodeEnum;

use super::{deparse, name_addition, object_name, step, Step};
use crate::context::PartitionOf;
use pgshift_sql::ident::{quote_ident, QualifiedName};

/// `rv` naming `table` instead, with or without `ONLY`.
fn range_var(rv: &RangeVar, table: &QualifiedName, only: bool) -> RangeVar {
    RangeVar {
        schemaname: table.schema.clone().unwrap_or_default(),
        relname: table.name.clone(),
        inh: !only,
        ..rv.clone()
    }
}

/// The index's key and INCLUDE columns for its default name: a column's name, `expr` for an
/// expression.
fn key_names(i: &IndexStmt) -> Vec<String> {
    i.index_params
        .iter()
        .chain(&i.index_including_params)
        .map(|p| match &p.node {
            Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => e.name.clone(),
            _ => "expr".to_owned(),
        })
        .collect()
}

/// The index named `name` in the schema of `table` (an index lives in its table's schema).
fn index_in(table: &QualifiedName, name: &str) -> String {
    QualifiedName {
        schema: table.schema.clone(),
        name: name.to_owned(),
    }
    .quoted()
}

/// Names PostgreSQL would choose for the partitions' objects (`ChooseRelationName`): the
/// default name, or with a number after the label when a relation already has it (one the
/// live catalog holds, or one this statement names already).
struct Namer<'a> {
    taken: &'a dyn Fn(&str) -> bool,
    used: Vec<String>,
}

impl Namer<'_> {
    fn choose(&mut self, name1: &str, name2: Option<&str>, label: &str) -> String {
        let mut name = object_name(name1, name2, label);
        let mut pass = 0;
        while (self.taken)(&name) || self.used.contains(&name) {
            pass += 1;
            name = object_name(name1, name2, &format!("{label}{pass}"));
        }
        self.used.push(name.clone());
        name
    }
}

/// `CREATE [UNIQUE] INDEX` on the partitioned `table`, partition by partition.
pub(super) fn index(
    i: &IndexStmt,
    table: &QualifiedName,
    parts: &[PartitionOf],
    taken: &dyn Fn(&str) -> bool,
) -> Option<Vec<Step>> {
    let rv = i.relation.as_ref()?;
    let addition = name_addition(&key_names(i));
    let mut namer = Namer {
        taken,
        used: Vec::new(),
    };
    let mut names: Vec<(QualifiedName, String)> = Vec::new();
    let root = if i.idxname.is_empty() {
        namer.choose(&table.name, Some(&addition), "idx")
    } else {
        i.idxname.clone()
    };
    names.push((table.clone(), root));
    for p in parts {
        let name = namer.choose(&p.name.name, Some(&addition), "idx");
        names.push((p.name.clone(), name));
    }
    let name_of = |t: &QualifiedName| {
        names
            .iter()
            .find(|(n, _)| n == t)
            .map(|(_, name)| name.clone())
            .unwrap_or_default()
    };
    let statement = |t: &QualifiedName, only: bool, concurrent: bool| {
        let mut new = i.clone();
        new.relation = Some(range_var(rv, t, only));
        new.idxname = name_of(t);
        new.if_not_exists = true;
        new.concurrent = concurrent;
        deparse(NodeEnum::IndexStmt(Box::new(new)))
    };
    let mut steps = vec![step(
        statement(table, true, false)?,
        true,
        "create the partitioned table's index alone (ON ONLY: no rows read; valid once every partition's is attached)",
    )];
    for p in parts.iter().filter(|p| !p.leaf) {
        steps.push(step(
            statement(&p.name, true, false)?,
            true,
            "create the partitioned partition's index alone (ON ONLY: no rows read)",
        ));
    }
    for p in parts.iter().filter(|p| p.leaf) {
        steps.push(step(
            statement(&p.name, false, true)?,
            false,
            "build the partition's index without blocking writes",
        ));
    }
    // Bottom up: a partitioned partition's index is valid once its partitions' are attached.
    for p in parts.iter().rev() {
        steps.push(step(
            format!(
                "ALTER INDEX {} ATTACH PARTITION {}",
                index_in(&p.parent, &name_of(&p.parent)),
                index_in(&p.name, &name_of(&p.name))
            ),
            true,
            "attach the partition's index to its parent's (no rows read)",
        ));
    }
    Some(steps)
}

/// A UNIQUE or PRIMARY KEY constraint to add: `tail` is what follows the columns in its index
/// (`INCLUDE (...)`, `NULLS NOT DISTINCT`).
pub(super) struct Unique<'a> {
    pub table: &'a QualifiedName,
    pub name: &'a str,
    pub columns: &'a [String],
    pub include: &'a [String],
    pub primary: bool,
    pub tail: &'a str,
}

/// `ADD CONSTRAINT name UNIQUE|PRIMARY KEY (cols)` on the partitioned table.
pub(super) fn unique(
    u: &Unique<'_>,
    parts: &[PartitionOf],
    taken: &dyn Fn(&str) -> bool,
) -> Vec<Step> {
    let Unique {
        table,
        name,
        columns,
        include,
        primary,
        tail,
    } = *u;
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let cols = cols.join(", ");
    let kind = if primary { "PRIMARY KEY" } else { "UNIQUE" };
    let nulls = if tail.contains("NULLS NOT DISTINCT") {
        " NULLS NOT DISTINCT"
    } else {
        ""
    };
    let included = if include.is_empty() {
        String::new()
    } else {
        let inc: Vec<String> = include.iter().map(|c| quote_ident(c)).collect();
        format!(" INCLUDE ({})", inc.join(", "))
    };
    let mut namer = Namer {
        taken,
        used: Vec::new(),
    };
    // PostgreSQL names an index after its key and INCLUDE columns.
    let named_after: Vec<String> = columns.iter().chain(include).cloned().collect();
    let addition = name_addition(&named_after);
    let leaves: Vec<&PartitionOf> = parts.iter().filter(|p| p.leaf).collect();
    let names: Vec<String> = leaves
        .iter()
        .map(|p| {
            if primary {
                namer.choose(&p.name.name, None, "pkey")
            } else {
                namer.choose(&p.name.name, Some(&addition), "key")
            }
        })
        .collect();
    let leaf_name = |p: &PartitionOf| {
        leaves
            .iter()
            .position(|l| l.name == p.name)
            .map(|at| names[at].clone())
            .unwrap_or_default()
    };
    let mut steps = Vec::new();
    for p in &leaves {
        steps.push(step(
            format!(
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({cols}){tail}",
                quote_ident(&leaf_name(p)),
                p.name.quoted()
            ),
            false,
            "build the partition's unique index without blocking writes",
        ));
    }
    for p in &leaves {
        steps.push(step(
            format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {kind} USING INDEX {}",
                p.name.quoted(),
                quote_ident(&leaf_name(p)),
                quote_ident(&leaf_name(p))
            ),
            true,
            "turn the partition's index into its constraint (brief lock, no scan)",
        ));
    }
    steps.push(step(
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {kind}{nulls} ({cols}){included}",
            table.quoted(),
            quote_ident(name)
        ),
        true,
        "add the constraint on the partitioned table: it attaches the partitions' (no index built, no scan)",
    ));
    steps
}

/// `ADD CONSTRAINT name FOREIGN KEY ...` on the partitioned table: `not_valid` is the statement
/// with the constraint named and `NOT VALID`, `named` the statement with the constraint named.
pub(super) fn foreign_key(
    not_valid: &protobuf::AlterTableStmt,
    named: &protobuf::AlterTableStmt,
    name: &str,
    parts: &[PartitionOf],
) -> Option<Vec<Step>> {
    let rv = not_valid.relation.as_ref()?;
    let mut steps = Vec::new();
    for p in parts.iter().filter(|p| p.leaf) {
        let mut leaf = not_valid.clone();
        leaf.relation = Some(range_var(rv, &p.name, false));
        steps.push(step(
            deparse(NodeEnum::AlterTableStmt(leaf))?,
            true,
            "add the foreign key to the partition without checking its rows (brief lock)",
        ));
        steps.push(step(
            format!(
                "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                p.name.quoted(),
                quote_ident(name)
            ),
            false,
            "check the partition's rows under SHARE UPDATE EXCLUSIVE: reads and writes continue",
        ));
    }
    steps.push(step(
        deparse(NodeEnum::AlterTableStmt(named.clone()))?,
        true,
        "add the foreign key on the partitioned table: it attaches the partitions' validated ones (no scan)",
    ));
    Some(steps)
}
