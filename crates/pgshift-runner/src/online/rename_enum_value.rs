//! `ALTER TYPE e RENAME VALUE 'old' TO 'new'`, online. As written it is instant, and from that
//! moment every running instance that writes `'old'` fails ("invalid input value for enum").
//!
//! - expand: the label `'new'` is added next to `'old'` (`ADD VALUE ... AFTER`, so it sorts
//!   where `'old'` does); on every table with a column of the type, a trigger turns a write of
//!   `'old'` into `'new'` (`BEFORE INSERT OR UPDATE OF c ... WHEN (NEW.c = 'old')`, so other
//!   writes never enter PL/pgSQL); the rows holding `'old'` are rewritten in batches.
//!   Old code keeps writing `'old'` and reads `'new'` back; new code writes `'new'`.
//! - contract, one transaction (each table locked once): the triggers go, a column default of
//!   `'old'` becomes `'new'`, and `'old'` — which no row holds any more, and which PostgreSQL
//!   cannot drop — is renamed out of the way (`'old (renamed to new)'`): writing `'old'` then
//!   fails as it would after the statement as written.
//! - rollback: the triggers go and the rows are rewritten back to `'old'`; the label `'new'`
//!   stays (PostgreSQL cannot drop a label).
//!
//! A partitioned table's column is handled on the partitioned table: its trigger reaches every
//! partition (PostgreSQL 13+), its rows are rewritten partition by partition.
//!
//! Refused (with the reason), since a rename of the label would change what they mean and a
//! copy cannot: arrays, domains and composite types of the enum, partitioned tables before
//! PostgreSQL 13, materialized views and foreign tables with such a column, and constraints,
//! indexes, views and triggers whose definition names `'old'`.

use pgshift_sql::ident::{clip, display_ident, quote_ident, quote_literal, QualifiedName};
use tokio_postgres::Client;

use super::sync::{function_name, trigger_name, Triggers};
use super::{refusal, Operation, PhaseUnit};
use crate::error::RunError;
use crate::prepare::OnlineStatement;
use pgshift_source::Migration;

/// A column of the enum type.
struct EnumColumn {
    table_oid: u32,
    table: QualifiedName,
    column: String,
    /// The default's expression, when the column has one.
    default: Option<String>,
}

/// The plan, or `None` when the statement can run as written: the type is not an enum of
/// the database (created in this migration, say), the label is not there, or no table has a
/// column of the type.
pub async fn plan(
    client: &Client,
    m: &Migration,
    st: &OnlineStatement,
    change: (&QualifiedName, &str, &str),
    pg: pgshift_lint::PgVersion,
) -> Result<Option<Operation>, RunError> {
    let (type_name, from, to) = change;
    let refuse = |why: String| refusal(m, st.line, why);
    let Some(row) = client
        .query_opt(
            "SELECT t.oid, n.nspname::text, t.typname::text, t.typarray,
                    EXISTS (SELECT 1 FROM pg_enum WHERE enumtypid = t.oid AND enumlabel = $2),
                    EXISTS (SELECT 1 FROM pg_enum e WHERE e.enumtypid = t.oid AND e.enumlabel = $3),
                    -- Where an earlier expand of this rename (rolled back since: a label
                    -- cannot be dropped) put it: right after the old one.
                    (SELECT lead(enumlabel) OVER (ORDER BY enumsortorder) = $3
                       FROM pg_enum WHERE enumtypid = t.oid
                      ORDER BY enumlabel = $2 DESC LIMIT 1) IS TRUE
               FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE t.oid = to_regtype($1) AND t.typtype = 'e'",
            &[&type_name.quoted(), &from, &to],
        )
        .await
        .map_err(pgshift_db::DbError::from)?
    else {
        return Ok(None);
    };
    let (type_oid, type_array): (u32, u32) = (row.get(0), row.get(3));
    let qualified = QualifiedName::qualified(row.get::<_, String>(1), row.get::<_, String>(2));
    if !row.get::<_, bool>(4) {
        return Ok(None);
    }
    let (to_exists, where_expand_puts_it) = (row.get::<_, bool>(5), row.get::<_, bool>(6));
    let merge = || {
        refuse(format!(
            "type {qualified} already has a label {}: renaming {} to it would merge two values",
            quote_literal(to),
            quote_literal(from)
        ))
    };
    if to_exists && !where_expand_puts_it {
        return Err(merge());
    }
    if !pg.has(pgshift_lint::knowledge::version::Feature::AddEnumValueInTransaction) {
        return Err(refuse(
            "renaming an enum label online needs PostgreSQL 12 or later (ALTER TYPE ... ADD VALUE in a transaction)".to_string(),
        ));
    }
    // What else holds or names the type.
    let others = client
        .query(
            "SELECT format('%s %s', CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'm' THEN 'materialized view'
                                     WHEN 'f' THEN 'foreign table' WHEN 'c' THEN 'composite type' ELSE 'relation' END,
                           c.oid::regclass)
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              WHERE a.atttypid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                AND (c.relkind IN ('m', 'f', 'c') OR (c.relkind = 'p' AND $3 < 13))
             UNION ALL
             SELECT format('column %s.%I (an array of the type)', a.attrelid::regclass, a.attname)
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              WHERE a.atttypid = $2 AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
             UNION ALL
             SELECT format('domain %s', t.oid::regtype) FROM pg_type t WHERE t.typbasetype = $1",
            &[&type_oid, &type_array, &(pg.major as i32)],
        )
        .await
        .map_err(pgshift_db::DbError::from)?;
    if let Some(r) = others.first() {
        return Err(refuse(format!(
            "{} uses type {qualified}; renaming a label online is supported for columns of tables only (of partitioned tables from PostgreSQL 13, whose BEFORE row triggers reach every partition)",
            r.get::<_, String>(0)
        )));
    }
    let label = quote_literal(from);
    let naming = client
        .query(
            "SELECT def FROM (
               SELECT format('constraint %s on %s: %s', conname, conrelid::regclass, pg_get_constraintdef(oid)) AS def
                 FROM pg_constraint WHERE oid IN (SELECT objid FROM pg_depend WHERE refobjid = $1 AND classid = 'pg_constraint'::regclass)
               UNION ALL
               SELECT format('index %s: %s', objid::regclass, pg_get_indexdef(objid))
                 FROM pg_depend WHERE refobjid = $1 AND classid = 'pg_class'::regclass
                  AND objid IN (SELECT indexrelid FROM pg_index)
               UNION ALL
               SELECT format('view or rule %s on %s: %s', r.rulename, r.ev_class::regclass, pg_get_ruledef(r.oid))
                 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                WHERE d.refobjid = $1 AND d.classid = 'pg_rewrite'::regclass
               UNION ALL
               SELECT format('policy %s on %s: %s', polname, polrelid::regclass,
                             concat_ws(' ', pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)))
                 FROM pg_policy WHERE oid IN (SELECT objid FROM pg_depend WHERE refobjid = $1 AND classid = 'pg_policy'::regclass)
               UNION ALL
               SELECT format('trigger %s on %s: %s', tgname, tgrelid::regclass, pg_get_triggerdef(oid))
                 FROM pg_trigger WHERE oid IN (SELECT objid FROM pg_depend WHERE refobjid = $1 AND classid = 'pg_trigger'::regclass)
             ) d WHERE strpos(def, $2) > 0",
            &[&type_oid, &label],
        )
        .await
        .map_err(pgshift_db::DbError::from)?;
    // A foreign key over a column of the type: the rewrite of one side would break it.
    let keys = client
        .query(
            "SELECT format('foreign key %s on %s', conname, conrelid::regclass) FROM pg_constraint c
              WHERE contype = 'f' AND EXISTS (SELECT 1 FROM pg_attribute a
                     WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) AND a.atttypid = $1)",
            &[&type_oid],
        )
        .await
        .map_err(pgshift_db::DbError::from)?;
    if let Some(r) = keys.first() {
        return Err(refuse(format!(
            "{} is over a column of type {qualified}; renaming a label online is not supported for key columns",
            r.get::<_, String>(0)
        )));
    }
    if let Some(r) = naming.first() {
        return Err(refuse(format!(
            "{} names {label}; after the rename it would name the retired label. Change it in a migration of its own",
            r.get::<_, String>(0)
        )));
    }
    let columns: Vec<EnumColumn> = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, a.attname::text, pg_get_expr(d.adbin, d.adrelid)
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE a.atttypid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              ORDER BY n.nspname, c.relname, a.attnum",
            &[&type_oid],
        )
        .await
        .map_err(pgshift_db::DbError::from)?
        .iter()
        .map(|r| EnumColumn {
            table_oid: r.get(0),
            table: QualifiedName::qualified(r.get::<_, String>(1), r.get::<_, String>(2)),
            column: r.get(3),
            default: r.get(4),
        })
        .collect();
    if columns.is_empty() {
        return Ok(None);
    }
    // The new label left by a rolled-back expand holds no row; one that rows hold is a value
    // of its own.
    if to_exists {
        for c in &columns {
            let held: bool = client
                .query_one(
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM {} WHERE {}::text = $1)",
                        c.table.quoted(),
                        quote_ident(&c.column)
                    ),
                    &[&to],
                )
                .await
                .map_err(pgshift_db::DbError::from)?
                .get(0);
            if held {
                return Err(merge());
            }
        }
    }
    let old_value = format!("{label}::{}", qualified.quoted());
    let new_value = format!("{}::{}", quote_literal(to), qualified.quoted());
    // The default as pg_get_expr prints a constant of the label.
    let old_default = format!("{label}::{}", display_type(&qualified));
    for c in &columns {
        if let Some(d) = &c.default {
            if d.contains(&label) && *d != old_default {
                return Err(refuse(format!(
                    "the default of {}.{} ({d}) names {label} in an expression; change it in a migration of its own",
                    c.table, c.column
                )));
            }
        }
    }

    let mut expand = vec![PhaseUnit::transaction(
        format!(
            "add label {} to {qualified}, after {label}",
            quote_literal(to)
        ),
        vec![format!(
            "ALTER TYPE {} ADD VALUE IF NOT EXISTS {} AFTER {label}",
            qualified.quoted(),
            quote_literal(to)
        )],
    )];
    let mut trigger_drops = Vec::new();
    let mut tables: Vec<(u32, QualifiedName)> = Vec::new();
    for c in &columns {
        if !tables.iter().any(|(oid, _)| *oid == c.table_oid) {
            tables.push((c.table_oid, c.table.clone()));
        }
    }
    for (oid, t) in &tables {
        let mut sql = Vec::new();
        for c in columns.iter().filter(|c| c.table_oid == *oid) {
            let triggers = label_triggers(t, &c.column, &old_value, &new_value);
            sql.extend(triggers.create(t));
            trigger_drops.push((t.clone(), triggers));
        }
        expand.push(PhaseUnit::transaction(
            format!("on {t}, turn writes of {label} into {}", quote_literal(to)),
            sql,
        ));
    }
    let mut rollback = Vec::new();
    for c in &columns {
        let col = quote_ident(&c.column);
        expand.push(PhaseUnit::backfill(
            format!(
                "rewrite {}.{} from {label} to {}",
                c.table,
                c.column,
                quote_literal(to)
            ),
            format!(
                "UPDATE {} SET {col} = {new_value} WHERE {col} = {old_value}",
                c.table.quoted()
            ),
        ));
        rollback.push(PhaseUnit::backfill(
            format!("rewrite {}.{} back to {label}", c.table, c.column),
            format!(
                "UPDATE {} SET {col} = {old_value} WHERE {col} = {new_value}",
                c.table.quoted()
            ),
        ));
    }
    let mut drops = Vec::new();
    for (t, triggers) in &trigger_drops {
        drops.extend(triggers.drop(t));
    }
    rollback.insert(
        0,
        PhaseUnit::transaction(
            format!(
                "drop the triggers that turn {label} into {}",
                quote_literal(to)
            ),
            drops.clone(),
        ),
    );

    let locked: Vec<String> = tables.iter().map(|(_, t)| t.quoted()).collect();
    let mut contract = vec![format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        locked.join(", ")
    )];
    contract.extend(drops);
    for c in columns
        .iter()
        .filter(|c| c.default.as_deref() == Some(old_default.as_str()))
    {
        contract.push(format!(
            "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {new_value}",
            c.table.quoted(),
            quote_ident(&c.column)
        ));
    }
    contract.push(format!(
        "ALTER TYPE {} RENAME VALUE {label} TO {}",
        qualified.quoted(),
        quote_literal(&retired(from, to))
    ));
    let first = &tables[0];
    Ok(Some(Operation {
        summary: format!(
            "rename label {label} of {qualified} to {} ({} column{})",
            quote_literal(to),
            columns.len(),
            if columns.len() == 1 { "" } else { "s" }
        ),
        table: first.1.to_string(),
        table_oid: first.0,
        view_in_place: false,
        other_tables: tables[1..]
            .iter()
            .map(|(oid, t)| (t.to_string(), *oid))
            .collect(),
        preflight: Vec::new(),
        not_undone: vec![format!(
            "the label {} of {qualified} (PostgreSQL cannot drop a label)",
            quote_literal(to)
        )],
        caveats: Vec::new(),
        expand,
        contract: vec![PhaseUnit::transaction(
            format!(
                "drop the triggers and retire {label} (one lock on each of {})",
                tables
                    .iter()
                    .map(|(_, t)| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            contract,
        )],
        rollback,
    }))
}

/// The triggers on `table` that turn a write of `old_value` into `new_value` in `column`.
fn label_triggers(
    table: &QualifiedName,
    column: &str,
    old_value: &str,
    new_value: &str,
) -> Triggers {
    let c = quote_ident(column);
    Triggers {
        function: function_name("enum", table, column),
        body: format!("  NEW.{c} := {new_value};"),
        triggers: vec![
            (
                trigger_name("enum_ins", &table.name, column),
                "BEFORE INSERT".to_string(),
                Some(format!("NEW.{c} = {old_value}")),
            ),
            (
                trigger_name("enum_upd", &table.name, column),
                format!("BEFORE UPDATE OF {c}"),
                Some(format!("NEW.{c} = {old_value}")),
            ),
        ],
    }
}

/// The name the old label takes at contract: no row holds it, PostgreSQL cannot drop it.
fn retired(from: &str, to: &str) -> String {
    let name = format!("{from} (renamed to {to})");
    clip(&name, pgshift_sql::ident::MAX_IDENTIFIER_BYTES).to_string()
}

/// The type as `format_type` prints it in an expression: without its schema when the schema
/// is `public` or `pg_catalog` (on the default search_path), else qualified.
fn display_type(t: &QualifiedName) -> String {
    match t.schema.as_deref() {
        Some("public") | Some("pg_catalog") | None => display_ident(&t.name),
        Some(s) => format!("{}.{}", display_ident(s), display_ident(&t.name)),
    }
}
