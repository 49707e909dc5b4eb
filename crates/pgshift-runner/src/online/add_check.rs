//! A CHECK constraint added after the rows that break it are fixed, online: `UPDATE t SET c =
//! expr WHERE cond` then `ALTER TABLE t ADD CONSTRAINT k CHECK (...)` on a column the UPDATE
//! writes. As written, the UPDATE locks every row it fixes until it commits, and from the
//! moment the constraint is there every running instance that still writes a value it refuses
//! fails; a row old code writes between the two makes the constraint fail halfway.
//!
//! - expand: a trigger that applies the cleanup to every row written meanwhile (a row the
//!   `WHERE` matches gets the `SET`), so old code's writes keep satisfying the constraint;
//!   the rows that exist fixed by the `UPDATE` as a batched backfill; rows the cleanup left
//!   breaking the constraint reported with examples (the expand stops there, nothing of the
//!   constraint added); then the constraint `NOT VALID` and `VALIDATE` (which blocks no
//!   writes).
//! - contract, one transaction: the trigger goes (new code writes valid rows itself).
//! - rollback: the trigger and the constraint go; the rows the cleanup fixed keep their new
//!   values.
//!
//! Only a cleanup that gives the same row when applied again (its values read no column it
//! writes, nor anything but the row): the trigger also sees the backfill's writes and every
//! later write of a fixed row. Any other runs as written.

use pgshift_sql::ident::{quote_ident, QualifiedName};
use pgshift_sql::UpdateParts;

use super::change_type::lock_table;
use super::sync::{self, Triggers};
use super::{OpInput, Operation, PhaseUnit};
use crate::prepare::{AddedCheck, OnlineStatement};

fn same_table(a: &QualifiedName, b: &QualifiedName) -> bool {
    a.name == b.name && (a.schema.is_none() || b.schema.is_none() || a.schema == b.schema)
}

/// The statement after `i` that adds a CHECK the UPDATE of statement `i` is the cleanup for:
/// the next statement that names the table, when it is an `ADD CONSTRAINT ... CHECK` (not
/// `NOT VALID`) reading a column the UPDATE writes, and neither carries a phase marker.
pub fn cleaned_by(statements: &[OnlineStatement], i: usize) -> Option<usize> {
    let st = &statements[i];
    let update = st.update.as_ref()?;
    if st.backfill_marked || st.phase.is_some() || st.on_new_table {
        return None;
    }
    let (j, next) = statements
        .iter()
        .enumerate()
        .skip(i + 1)
        .find(|(_, s)| s.tables.iter().any(|t| same_table(t, &update.table)))?;
    let check = next.adds_check.as_ref()?;
    if next.phase.is_some() || !same_table(&check.table, &update.table) {
        return None;
    }
    let reads = pgshift_sql::change::row_expression(&check.expr, &[check.table.name.as_str()])?;
    let writes: Vec<String> = update
        .assignments
        .iter()
        .map(|a| format!("NEW.{}", quote_ident(&a.column)))
        .collect();
    // Applied again to a row it already fixed (the trigger sees the backfill's own writes,
    // and every later write of the row), a cleanup must give the same row: not when a value
    // it sets reads a column it writes (`SET amount = amount * 100`), or reads more than the
    // row. Such an UPDATE runs as written, as an ordinary migration.
    let mut names = vec![update.table.name.as_str()];
    names.extend(update.alias.as_deref());
    for a in &update.assignments {
        let value = pgshift_sql::change::row_expression(&a.expression, &names)?;
        if writes.iter().any(|w| value.contains(w.as_str())) {
            return None;
        }
    }
    writes
        .iter()
        .any(|w| reads.contains(w.as_str()))
        .then_some(j)
}

/// The trigger that applies `update` to every row written: when the row matches its `WHERE`
/// (all rows without one), its assignments, computed from the row being written.
fn cleanup_trigger(t: &QualifiedName, check: &str, update: &UpdateParts) -> Triggers {
    let alias = update.alias.as_deref().unwrap_or(&t.name);
    let mut names = vec![t.name.as_str()];
    names.extend(update.alias.as_deref());
    let columns: Vec<String> = update
        .assignments
        .iter()
        .map(|a| format!("NEW.{}", quote_ident(&a.column)))
        .collect();
    let values: Vec<&str> = update
        .assignments
        .iter()
        .map(|a| a.expression.as_str())
        .collect();
    // Every value computed from the row as it is written, before any is assigned (as the
    // UPDATE computes them), over the row as a relation named as the statement names it.
    let assign = format!(
        "SELECT {} INTO {} FROM (SELECT NEW.*) AS {};",
        values.join(", "),
        columns.join(", "),
        quote_ident(alias)
    );
    // The condition in the trigger's WHEN where it reads only the row (other writes never
    // enter PL/pgSQL), else in the body.
    let when = update
        .filter
        .as_deref()
        .map(|f| pgshift_sql::change::row_expression(f, &names).ok_or(f));
    let body = match &when {
        Some(Err(filter)) => format!(
            "  IF EXISTS (SELECT 1 FROM (SELECT NEW.*) AS {} WHERE {filter}) THEN\n    {assign}\n  END IF;",
            quote_ident(alias)
        ),
        _ => format!("  {assign}"),
    };
    let when = when.and_then(Result::ok);
    Triggers {
        function: sync::function_name("clean", t, check),
        body: format!("#variable_conflict use_column\n{body}"),
        triggers: vec![
            (
                sync::trigger_name("clean_ins", &t.name, check),
                "BEFORE INSERT".to_string(),
                when.clone(),
            ),
            (
                sync::trigger_name("clean_upd", &t.name, check),
                "BEFORE UPDATE".to_string(),
                when,
            ),
        ],
    }
}

/// The operation for the CHECK `check` of statement `input.statement`, cleaned up by the
/// `UPDATE` statement `cleanup` (its parts `update`).
pub fn plan(
    input: &OpInput<'_>,
    check: &AddedCheck,
    cleanup: &OnlineStatement,
    update: &UpdateParts,
    look: Option<String>,
) -> Operation {
    let table = input.table;
    let t = &table.name;
    let trigger = cleanup_trigger(t, &check.name, update);
    let name = quote_ident(&check.name);
    let mut expand = vec![
        PhaseUnit::transaction(
            format!("apply the cleanup to every row written to {t} (trigger)"),
            trigger.create(t),
        ),
        PhaseUnit::backfill(
            format!("backfill: the cleanup of {t} (line {})", cleanup.line),
            cleanup.text.clone(),
        ),
    ];
    if let Some(look) = look {
        expand.push(PhaseUnit::transaction(
            format!(
                "look for rows of {t} the cleanup left breaking {}",
                check.name
            ),
            vec![look],
        ));
    }
    expand.extend([
        PhaseUnit::transaction(
            format!("add {} NOT VALID", check.name),
            vec![format!(
                "ALTER TABLE {} ADD CONSTRAINT {name} CHECK ({}) NOT VALID",
                t.quoted(),
                check.expr
            )],
        ),
        PhaseUnit::transaction(
            format!("validate {}", check.name),
            vec![format!(
                "ALTER TABLE {} VALIDATE CONSTRAINT {name}",
                t.quoted()
            )],
        ),
    ]);
    let mut contract = vec![lock_table(t)];
    contract.extend(trigger.drop(t));
    let mut rollback = trigger.drop(t);
    rollback.push(format!(
        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {name}",
        t.quoted()
    ));
    Operation {
        summary: format!(
            "add CHECK {} on {t} after its cleanup, kept true for every write meanwhile",
            check.name
        ),
        table: t.to_string(),
        table_oid: table.oid,
        view_in_place: false,
        other_tables: Vec::new(),
        preflight: Vec::new(),
        not_undone: vec![format!(
            "the rows of {t} the cleanup changed keep their new values"
        )],
        caveats: Vec::new(),
        expand,
        contract: vec![PhaseUnit::transaction(
            format!("drop the cleanup trigger of {t} (one lock on {t})"),
            contract,
        )],
        rollback: vec![PhaseUnit::transaction(
            format!("drop the cleanup trigger of {t} and {}", check.name),
            rollback,
        )],
    }
}
