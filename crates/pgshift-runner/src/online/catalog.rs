//! What the online planner needs to know about a table before it changes a column: the
//! column's type, default, NOT NULL and identity, the indexes and constraints that use it,
//! the views that read it, the sequence it owns. Read once, at plan time.

use pgshift_db::DbError;
use pgshift_lint::PgVersion;
use pgshift_sql::ident::QualifiedName;
use tokio_postgres::Client;

#[derive(Debug, Clone)]
pub struct TableFacts {
    pub oid: u32,
    /// Schema-qualified, as the catalog names it.
    pub name: QualifiedName,
    /// `r` table, `p` partitioned table, ...
    pub kind: String,
    pub columns: Vec<ColumnFacts>,
    /// A partitioned table's partitions, every level, parents before their children; empty
    /// for any other table.
    pub partitions: Vec<Partition>,
    /// A partitioned table's partition key columns (an expression in the key reads as `None`).
    pub partition_key: Vec<Option<String>>,
}

/// One partition of a partitioned table.
#[derive(Debug, Clone)]
pub struct Partition {
    pub oid: u32,
    pub name: QualifiedName,
    /// The partitioned table it is a partition of.
    pub parent: u32,
    /// A leaf holds rows; otherwise it is partitioned again.
    pub leaf: bool,
}

#[derive(Debug, Clone)]
pub struct ColumnFacts {
    pub name: String,
    pub attnum: i16,
    /// `format_type`'s text: valid SQL for the type.
    pub type_text: String,
    pub not_null: bool,
    /// The default's expression as SQL.
    pub default: Option<String>,
    pub identity: bool,
    pub generated: bool,
    /// The type has a default btree operator class, so `IS DISTINCT FROM` compares values.
    pub has_equality: bool,
    /// The name of its NOT NULL constraint (PostgreSQL 18 names them; none before).
    pub not_null_name: Option<String>,
    /// `COMMENT ON COLUMN`'s text.
    pub comment: Option<String>,
    /// `SET STATISTICS`'s target, when not the default.
    pub statistics: Option<i32>,
}

/// An index that uses the column.
#[derive(Debug, Clone)]
pub struct IndexFacts {
    pub name: String,
    pub unique: bool,
    pub primary: bool,
    pub method: String,
    /// The key columns, then the INCLUDE columns, by name; `None` for an expression.
    pub key: Vec<Option<String>>,
    pub include: Vec<Option<String>>,
    /// No expression, no predicate, default operator classes, orderings and collations: it
    /// can be built again on another column from its column names alone.
    pub plain: bool,
    /// The constraint the index backs (UNIQUE, PRIMARY KEY, EXCLUDE).
    pub constraint: Option<String>,
    pub definition: String,
    /// On a partitioned table: the index's partition on each partition, `(table oid, index
    /// name)`.
    pub partitions: Vec<(u32, String)>,
}

/// A constraint that uses the column.
#[derive(Debug, Clone)]
pub struct ConstraintFacts {
    pub name: String,
    /// `c` check, `f` foreign key, `u` unique, `p` primary key, `x` exclusion.
    pub kind: String,
    pub definition: String,
}

/// Everything that depends on one column.
#[derive(Debug, Clone, Default)]
pub struct ColumnUses {
    pub indexes: Vec<IndexFacts>,
    pub constraints: Vec<ConstraintFacts>,
    /// Foreign keys of other tables that reference the column.
    pub referenced_by: Vec<String>,
    /// Views (and rules) that read the column.
    pub views: Vec<String>,
    /// A sequence owned by the column (`serial`).
    pub owned_sequence: Option<String>,
    /// Other objects that depend on the column and that a copy does not carry (a policy, a
    /// trigger's `WHEN` or `UPDATE OF`, a `BEGIN ATOMIC` function, a publication's column
    /// list, extended statistics), as PostgreSQL describes them: dropping the old column at
    /// contract would fail on them (or take the statistics with it).
    pub others: Vec<String>,
}

impl TableFacts {
    pub fn column(&self, name: &str) -> Option<&ColumnFacts> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The table `name` resolves to, when it is a table. One query, typed (one round trip): the
/// planner asks it for every table a migration changes.
pub async fn table(client: &Client, name: &QualifiedName) -> Result<Option<TableFacts>, DbError> {
    // One row per column (or one row of NULLs for a table without columns).
    let rows = client
        .query_typed(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
                    a.attname::text, a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    pg_get_expr(d.adbin, d.adrelid), a.attidentity <> '', a.attgenerated <> '',
                    EXISTS (SELECT 1 FROM pg_opclass o JOIN pg_am m ON m.oid = o.opcmethod
                             WHERE m.amname = 'btree' AND o.opcdefault
                               AND o.opcintype = a.atttypid),
                    (SELECT k.conname::text FROM pg_constraint k
                      WHERE k.conrelid = c.oid AND k.contype = 'n' AND k.conkey = ARRAY[a.attnum]),
                    col_description(c.oid, a.attnum), nullif(a.attstattarget::int4, -1)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attribute a
                      ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')
              ORDER BY a.attnum",
            &[(&name.quoted(), tokio_postgres::types::Type::TEXT)],
        )
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut columns = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(column) = r.get::<_, Option<String>>(4) else {
            continue;
        };
        columns.push(ColumnFacts {
            name: column,
            attnum: r.get(5),
            type_text: r.get(6),
            not_null: r.get(7),
            default: r.get(8),
            identity: r.get(9),
            generated: r.get(10),
            has_equality: r.get(11),
            not_null_name: r.get(12),
            comment: r.get(13),
            statistics: r.get(14),
        });
    }
    let kind: String = first.get(3);
    let oid: u32 = first.get(0);
    let (partitions, partition_key) = if kind == "p" {
        partitioning(client, oid).await?
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Some(TableFacts {
        oid,
        name: QualifiedName::qualified(first.get::<_, String>(1), first.get::<_, String>(2)),
        kind,
        columns,
        partitions,
        partition_key,
    }))
}

/// A partitioned table's partitions (parents first) and its partition key.
async fn partitioning(
    client: &Client,
    oid: u32,
) -> Result<(Vec<Partition>, Vec<Option<String>>), DbError> {
    let partitions = client
        .query(
            "SELECT t.relid::oid, n.nspname::text, c.relname::text, t.parentrelid::oid, t.isleaf
               FROM pg_partition_tree($1::oid::regclass) t
               JOIN pg_class c ON c.oid = t.relid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE t.level > 0 AND c.relkind IN ('r', 'p')
              ORDER BY t.level, c.relname",
            &[&oid],
        )
        .await?
        .iter()
        .map(|r| Partition {
            oid: r.get(0),
            name: QualifiedName::qualified(r.get::<_, String>(1), r.get::<_, String>(2)),
            parent: r.get(3),
            leaf: r.get(4),
        })
        .collect();
    // The key's columns, and the columns its expressions read (PostgreSQL cannot drop
    // those either).
    let key = client
        .query_one(
            "SELECT ARRAY(SELECT (SELECT attname::text FROM pg_attribute
                                   WHERE attrelid = p.partrelid AND attnum = k.n AND k.n > 0)
                            FROM unnest(p.partattrs::int2[]) WITH ORDINALITY AS k(n, o) ORDER BY k.o)
                    || ARRAY(SELECT a.attname::text FROM pg_attribute a
                              WHERE a.attrelid = p.partrelid AND a.attnum > 0 AND NOT a.attisdropped
                                AND p.partexprs IS NOT NULL
                                AND pg_get_partkeydef(p.partrelid) ~ ('(^|[^a-zA-Z0-9_$])' || quote_ident(a.attname) || '($|[^a-zA-Z0-9_$])'))
               FROM pg_partitioned_table p WHERE p.partrelid = $1",
            &[&oid],
        )
        .await?
        .get(0);
    Ok((partitions, key))
}

/// What uses column `attnum` of table `oid`.
pub async fn column_uses(client: &Client, oid: u32, attnum: i16) -> Result<ColumnUses, DbError> {
    let attnum = i32::from(attnum);
    let indexes = client
        .query(
            "SELECT ic.relname::text, i.indisunique, i.indisprimary, am.amname::text,
                    ARRAY(SELECT CASE WHEN k.n = 0 THEN NULL ELSE
                                 (SELECT attname::text FROM pg_attribute
                                   WHERE attrelid = i.indrelid AND attnum = k.n) END
                            FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(n, o) ORDER BY k.o),
                    i.indnkeyatts,
                    i.indexprs IS NULL AND i.indpred IS NULL
                      AND NOT EXISTS (SELECT 1 FROM unnest(i.indoption::int2[]) o WHERE o <> 0)
                      AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) c
                                        JOIN pg_opclass oc ON oc.oid = c WHERE NOT oc.opcdefault)
                      AND NOT EXISTS (SELECT 1 FROM unnest(i.indcollation::oid[]) c
                                       WHERE c <> 0 AND c <> 100),
                    (SELECT conname::text FROM pg_constraint
                      WHERE conindid = i.indexrelid AND conrelid = i.indrelid
                        AND contype IN ('u', 'p', 'x')),
                    pg_get_indexdef(i.indexrelid),
                    ARRAY(SELECT format('%s %s', pi.indrelid::oid, pc.relname)
                            FROM pg_partition_tree(i.indexrelid) t
                            JOIN pg_index pi ON pi.indexrelid = t.relid
                            JOIN pg_class pc ON pc.oid = t.relid
                           WHERE t.level > 0 AND ic.relkind = 'I')
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_am am ON am.oid = ic.relam
              WHERE i.indrelid = $1
                AND (($2::int4)::int2 = ANY (i.indkey::int2[])
                     OR EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                                   AND d.refobjid = $1 AND d.refobjsubid = $2))
              ORDER BY 1",
            &[&oid, &attnum],
        )
        .await?
        .iter()
        .map(|r| {
            let all: Vec<Option<String>> = r.get(4);
            let keys = usize::try_from(r.get::<_, i16>(5)).unwrap_or(all.len());
            IndexFacts {
                name: r.get(0),
                unique: r.get(1),
                primary: r.get(2),
                method: r.get(3),
                key: all.iter().take(keys).cloned().collect(),
                include: all.iter().skip(keys).cloned().collect(),
                plain: r.get(6),
                constraint: r.get(7),
                definition: r.get(8),
                partitions: r
                    .get::<_, Vec<String>>(9)
                    .iter()
                    .filter_map(|p| {
                        let (oid, name) = p.split_once(' ')?;
                        Some((oid.parse().ok()?, name.to_owned()))
                    })
                    .collect(),
            }
        })
        .collect();
    let constraints = client
        .query(
            "SELECT conname::text, contype::text, pg_get_constraintdef(oid)
               FROM pg_constraint
              WHERE conrelid = $1 AND ($2::int4)::int2 = ANY (conkey) AND contype <> 'n'
              ORDER BY 1",
            &[&oid, &attnum],
        )
        .await?
        .iter()
        .map(|r| ConstraintFacts {
            name: r.get(0),
            kind: r.get(1),
            definition: r.get(2),
        })
        .collect();
    let referenced_by = client
        .query(
            "SELECT format('%s (%s)', conrelid::regclass, conname)
               FROM pg_constraint WHERE confrelid = $1 AND ($2::int4)::int2 = ANY (confkey) ORDER BY 1",
            &[&oid, &attnum],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let views = client
        .query(
            "SELECT DISTINCT r.ev_class::regclass::text
               FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
              WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1
                AND d.refobjsubid = $2 AND r.ev_class <> $1
              ORDER BY 1",
            &[&oid, &attnum],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let owned_sequence = client
        .query_opt(
            "SELECT s.oid::regclass::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
              WHERE d.classid = 'pg_class'::regclass AND d.refobjid = $1 AND d.refobjsubid = $2
                AND d.deptype = 'a' AND s.relkind = 'S'",
            &[&oid, &attnum],
        )
        .await?
        .map(|r| r.get(0));
    let others = client
        .query(
            r"SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid)
                FROM pg_depend d
               WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND d.refobjsubid = $2
                 AND d.classid IN ('pg_policy'::regclass, 'pg_trigger'::regclass, 'pg_proc'::regclass,
                                   'pg_publication_rel'::regclass, 'pg_statistic_ext'::regclass)
                 AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                                  WHERE d.classid = 'pg_trigger'::regclass AND t.oid = d.objid
                                    AND (t.tgisinternal OR t.tgname LIKE 'zz\_pgshift\_%'))
               ORDER BY 1",
            &[&oid, &attnum],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(ColumnUses {
        indexes,
        constraints,
        referenced_by,
        views,
        owned_sequence,
        others,
    })
}

/// What a partitioned table's partitions hold on their own over `column` — an index not
/// attached to one of the table's, a constraint not inherited from it, a view that reads the
/// partition — which a column swap made on the partitioned table would not carry over (the
/// old column's drop would take it).
pub async fn partition_local_uses(
    client: &Client,
    table: &TableFacts,
    column: &str,
) -> Result<Vec<String>, DbError> {
    let oids: Vec<u32> = table.partitions.iter().map(|p| p.oid).collect();
    if oids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(client
        .query(
            "SELECT format('index %s on partition %s', i.indexrelid::regclass, i.indrelid::regclass)
               FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = $2
              WHERE i.indrelid = ANY ($1) AND a.attnum = ANY (i.indkey::int2[])
                AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
             UNION ALL
             SELECT format('constraint %s on partition %s', c.conname, c.conrelid::regclass)
               FROM pg_constraint c
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attname = $2
              WHERE c.conrelid = ANY ($1) AND a.attnum = ANY (c.conkey)
                AND c.conparentid = 0 AND c.coninhcount = 0 AND c.contype <> 'n'
             UNION ALL
             SELECT DISTINCT format('view %s, which reads partition %s', r.ev_class::regclass, d.refobjid::regclass)
               FROM pg_depend d
               JOIN pg_rewrite r ON r.oid = d.objid
               JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = ANY ($1) AND a.attname = $2",
            &[&oids, &column],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Why a view named as the table cannot stand in for table `oid` during a window (a renamed
/// table, a column renamed in place), if it cannot: before PostgreSQL 15 a view reads its
/// table as the view's owner, so row-level security would not apply to the user who queries;
/// privileges granted on single columns are not carried to the view.
pub async fn view_cannot_stand_for(
    client: &Client,
    oid: u32,
    pg: PgVersion,
) -> Result<Option<String>, DbError> {
    let row = client
        .query_one(
            "SELECT c.relrowsecurity,
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                             AND NOT a.attisdropped AND a.attacl IS NOT NULL)
               FROM pg_class c WHERE c.oid = $1",
            &[&oid],
        )
        .await?;
    let (rls, column_grants): (bool, bool) = (row.get(0), row.get(1));
    Ok(if rls && pg.major < 15 {
        Some("row-level security is on, and before PostgreSQL 15 a view reads the table as its owner (no security_invoker), so the policies would not apply to the user who queries".to_string())
    } else if column_grants {
        Some("privileges are granted on single columns, which a view in the table's place would not carry".to_string())
    } else {
        None
    })
}

/// Functions whose source text names `column` and either the table or is a trigger function
/// of table `oid` (PL/pgSQL and SQL functions with a body in text, which PostgreSQL does not
/// follow when the column is renamed), by signature; pgshift's own left out. At most 3.
pub async fn functions_naming(
    client: &Client,
    oid: u32,
    table: &str,
    column: &str,
) -> Result<Vec<String>, DbError> {
    // `\m...\M`: the name as a whole word, its regular-expression characters escaped.
    let word = |name: &str| {
        let mut out = String::from(r"\m");
        for ch in name.chars() {
            if r".^$*+?()[]{}|\-".contains(ch) {
                out.push('\\');
            }
            out.push(ch);
        }
        out.push_str(r"\M");
        out
    };
    Ok(client
        .query(
            r"SELECT p.oid::regprocedure::text FROM pg_proc p
               WHERE p.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('plpgsql', 'sql'))
                 AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
                 AND p.proname NOT LIKE 'pgshift\_%'
                 AND p.prosrc ~* $2
                 AND (p.prosrc ~* $3 OR EXISTS (SELECT 1 FROM pg_trigger t
                                                 WHERE t.tgfoid = p.oid AND t.tgrelid = $1))
               ORDER BY 1 LIMIT 3",
            &[&oid, &word(column), &word(table)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The privileges granted on the table, as GRANT statements for another relation (the view
/// that keeps a renamed table's old name working).
pub async fn grants_for(
    client: &Client,
    oid: u32,
    onto: &QualifiedName,
) -> Result<Vec<String>, DbError> {
    Ok(client
        .query(
            "SELECT a.privilege_type,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
               FROM pg_class c, aclexplode(c.relacl) a
               LEFT JOIN pg_roles r ON r.oid = a.grantee
              WHERE c.oid = $1 AND a.grantee <> c.relowner",
            &[&oid],
        )
        .await?
        .iter()
        .map(|r| {
            format!(
                "GRANT {} ON {} TO {}",
                r.get::<_, String>(0),
                onto.quoted(),
                r.get::<_, String>(1)
            )
        })
        .collect())
}

/// A foreign key a changed column takes part in, on either side.
#[derive(Debug, Clone)]
pub struct ForeignKeyFacts {
    pub oid: u32,
    pub name: String,
    /// The referencing table and its columns.
    pub table_oid: u32,
    pub table: QualifiedName,
    pub columns: Vec<String>,
    /// The referenced table and its columns.
    pub ref_oid: u32,
    pub ref_table: QualifiedName,
    pub ref_columns: Vec<String>,
    /// `MATCH`, `ON UPDATE`, `ON DELETE` and `DEFERRABLE` as SQL, as they follow
    /// `REFERENCES t (...)`.
    pub clauses: String,
    /// What pgshift cannot write again on other columns, when the key has it.
    pub unsupported: Option<String>,
    pub definition: String,
}

/// The foreign keys in which column `attnum` of table `oid` references or is referenced (a
/// partitioned table's, not the clones PostgreSQL keeps on its partitions).
pub async fn foreign_keys(
    client: &Client,
    oid: u32,
    attnum: i16,
) -> Result<Vec<ForeignKeyFacts>, DbError> {
    let attnum = i32::from(attnum);
    let names = |rel: &str, keys: &str| {
        format!(
            "ARRAY(SELECT a.attname::text FROM unnest(c.{keys}) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = c.{rel} AND a.attnum = k.n ORDER BY k.o)"
        )
    };
    let rows = client
        .query(
            &format!(
                "SELECT c.oid, c.conname::text,
                        c.conrelid, tn.nspname::text, t.relname::text, {},
                        c.confrelid, rn.nspname::text, r.relname::text, {},
                        c.confupdtype::text, c.confdeltype::text, c.confmatchtype::text,
                        c.condeferrable, c.condeferred, pg_get_constraintdef(c.oid)
                   FROM pg_constraint c
                   JOIN pg_class t ON t.oid = c.conrelid
                   JOIN pg_namespace tn ON tn.oid = t.relnamespace
                   JOIN pg_class r ON r.oid = c.confrelid
                   JOIN pg_namespace rn ON rn.oid = r.relnamespace
                  WHERE c.contype = 'f' AND c.conparentid = 0
                    AND ((c.conrelid = $1 AND ($2::int4)::int2 = ANY (c.conkey))
                      OR (c.confrelid = $1 AND ($2::int4)::int2 = ANY (c.confkey)))
                  ORDER BY c.conname, c.oid",
                names("conrelid", "conkey"),
                names("confrelid", "confkey")
            ),
            &[&oid, &attnum],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let definition: String = r.get(15);
            let mut unsupported = None;
            let mut clauses = String::new();
            match r.get::<_, String>(12).as_str() {
                "f" => clauses.push_str(" MATCH FULL"),
                "p" => unsupported = Some("MATCH PARTIAL".to_string()),
                _ => {}
            }
            for (event, code) in [("UPDATE", r.get::<_, String>(10)), ("DELETE", r.get(11))] {
                let action = match code.as_str() {
                    "r" => "RESTRICT",
                    "c" => "CASCADE",
                    "n" => "SET NULL",
                    "d" => {
                        unsupported = Some(format!("ON {event} SET DEFAULT"));
                        continue;
                    }
                    _ => continue,
                };
                clauses.push_str(&format!(" ON {event} {action}"));
            }
            // `ON DELETE SET NULL (some columns)` (PostgreSQL 15).
            if definition.contains("SET NULL (") {
                unsupported = Some("ON DELETE SET NULL of some of its columns".to_string());
            }
            if r.get::<_, bool>(13) {
                clauses.push_str(" DEFERRABLE");
            }
            if r.get::<_, bool>(14) {
                clauses.push_str(" INITIALLY DEFERRED");
            }
            ForeignKeyFacts {
                oid: r.get(0),
                name: r.get(1),
                table_oid: r.get(2),
                table: QualifiedName::qualified(r.get::<_, String>(3), r.get::<_, String>(4)),
                columns: r.get(5),
                ref_oid: r.get(6),
                ref_table: QualifiedName::qualified(r.get::<_, String>(7), r.get::<_, String>(8)),
                ref_columns: r.get(9),
                clauses,
                unsupported,
                definition,
            }
        })
        .collect())
}

/// The sequence behind a column: a `serial`'s (owned, the column's default calls it) or an
/// identity's.
#[derive(Debug, Clone)]
pub struct SequenceFacts {
    /// Schema-qualified and quoted, as `regclass` prints it.
    pub name: String,
    /// The name alone, unquoted.
    pub relname: String,
    /// `format_type` of its data type (`integer`, `bigint`, ...).
    pub type_text: String,
    /// `a` GENERATED ALWAYS, `d` GENERATED BY DEFAULT, `None` for a serial.
    pub identity: Option<String>,
    pub increment: i64,
    pub start: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
}

pub async fn sequence(
    client: &Client,
    oid: u32,
    attnum: i16,
) -> Result<Option<SequenceFacts>, DbError> {
    let attnum = i32::from(attnum);
    Ok(client
        .query_opt(
            "SELECT s.oid::regclass::text, s.relname::text, format_type(q.seqtypid, NULL),
                    NULLIF(a.attidentity::text, ''), q.seqincrement, q.seqcache, q.seqcycle,
                    q.seqstart, q.seqmin, q.seqmax
               FROM pg_depend d
               JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
               JOIN pg_sequence q ON q.seqrelid = s.oid
               JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_class'::regclass AND d.refobjid = $1
                AND d.refobjsubid = $2 AND d.deptype IN ('a', 'i')",
            &[&oid, &attnum],
        )
        .await?
        .map(|r| SequenceFacts {
            name: r.get(0),
            relname: r.get(1),
            type_text: r.get(2),
            identity: r.get(3),
            increment: r.get(4),
            cache: r.get(5),
            cycle: r.get(6),
            start: r.get(7),
            min: r.get(8),
            max: r.get(9),
        }))
}

/// Whether any of `columns` (table OID, column name) is of one of `types`, or of an array of
/// one, now.
pub async fn columns_of_types(
    client: &Client,
    columns: &[(u32, String)],
    types: &[QualifiedName],
) -> Result<bool, DbError> {
    let (oids, names): (Vec<u32>, Vec<String>) = columns.iter().cloned().unzip();
    let types: Vec<String> = types.iter().map(QualifiedName::quoted).collect();
    Ok(client
        .query_one(
            "SELECT EXISTS (
                 SELECT 1 FROM unnest($1::oid[], $2::text[]) AS c(rel, col)
                   JOIN pg_attribute a ON a.attrelid = c.rel AND a.attname = c.col
                   JOIN pg_type t ON t.oid = ANY (SELECT to_regtype(n) FROM unnest($3::text[]) n)
                  WHERE a.atttypid IN (t.oid, t.typarray))",
            &[&oids, &names, &types],
        )
        .await?
        .get(0))
}

/// The type `type_text` names, as `format_type` prints it (`int8` and `BIGINT` are
/// `bigint`), or `None` when it names none.
pub async fn type_name(client: &Client, type_text: &str) -> Result<Option<String>, DbError> {
    Ok(client
        .query_one("SELECT format_type(to_regtype($1), NULL)", &[&type_text])
        .await?
        .get(0))
}
