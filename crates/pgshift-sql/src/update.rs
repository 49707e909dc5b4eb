//! The parts of an `UPDATE` that a batched backfill needs: the table, each assigned column
//! with its expression *as written*, and the `WHERE` condition as written.
//!
//! The parse tree says what the statement is (which table, which columns, whether it joins or
//! returns rows); the scanner's tokens give the exact text of each expression, because a
//! backfill runs those expressions again, batch by batch, restricted to a key range, and
//! compares them with the column to know whether a row still needs the update. Expressions are
//! never re-printed from the tree: what runs is what the author wrote.
//!
//! The tree also says what each expression reads ([`Reads`]): the table's columns, the
//! functions it calls, the clock. That comparison is only meaningful when running the
//! expression again on a row it already updated gives the same value; `amount = amount * 100`
//! does not, and neither does `token = gen_random_uuid()`.

use pg_query::protobuf::{Node, SqlValueFunctionOp, Token};
use pg_query::NodeEnum;
use serde_json::Value;

use crate::ident::QualifiedName;

/// An `UPDATE` that can run as a batched backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateParts {
    pub table: QualifiedName,
    /// `UPDATE t AS a`: the expressions may name the table by its alias.
    pub alias: Option<String>,
    /// `UPDATE ONLY t`: inheritance children are left alone.
    pub only: bool,
    /// In the order written.
    pub assignments: Vec<Assignment>,
    /// The `WHERE` condition's text, without the keyword.
    pub filter: Option<String>,
}

impl UpdateParts {
    /// The first assignment whose expression reads a column that the statement writes (its
    /// own, as in `amount = amount * 100`, or another's, as in `a = b, b = a`): run again on a
    /// row it already updated, it gives another value.
    pub fn reads_what_it_writes(&self) -> Option<&Assignment> {
        reads_what_it_writes(&self.assignments)
    }
}

/// [`UpdateParts::reads_what_it_writes`], for assignments held elsewhere.
pub fn reads_what_it_writes(assignments: &[Assignment]) -> Option<&Assignment> {
    assignments.iter().find(|a| {
        assignments
            .iter()
            .any(|written| a.reads.column(&written.column))
    })
}

/// `column = expression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The column's name as the server knows it (unquoted, case kept).
    pub column: String,
    /// The expression's text as written.
    pub expression: String,
    /// What the expression reads.
    pub reads: Reads,
}

/// What one SET expression reads, as its parse tree (every node of it, subqueries included)
/// says. Where the tree cannot tell, it says "reads": a false "reads" costs a backfill its
/// re-check of rows, a false "does not read" would update rows twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// Columns of the updated table it names: unqualified, or qualified with the table's name
    /// or alias. Inside a subquery an unqualified name may be the subquery's own column; it
    /// is counted too (qualify it, `o.c`, to say it is not).
    pub columns: Vec<String>,
    /// It reads every column: the row as a value (`t`, `t.*`, `*`), or a subquery over the
    /// updated table itself.
    pub whole_row: bool,
    /// The functions it calls, each name as written: `["now"]`, `["pg_catalog", "random"]`.
    pub functions: Vec<Vec<String>>,
    /// The clock, as written: `CURRENT_TIMESTAMP`, `LOCALTIME`, `'now'` (the special date
    /// and time inputs `now`, `today`, `tomorrow`, `yesterday`).
    pub clock: Vec<String>,
}

impl Reads {
    /// Whether it reads `column` of the updated table.
    pub fn column(&self, column: &str) -> bool {
        self.whole_row || self.columns.iter().any(|c| c == column)
    }
}

/// Why an `UPDATE` cannot run as a backfill; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotBatchable {
    #[error("it is not a single UPDATE statement")]
    NotAnUpdate,
    #[error("it has a WITH clause: fold the common table expression into the SET expressions or the WHERE condition")]
    With,
    #[error("it has a FROM clause (a join): write the joined value as a subquery in the SET expression, e.g. SET c = (SELECT o.c FROM other o WHERE o.id = t.other_id)")]
    From,
    #[error("it has a RETURNING clause: a backfill runs in many transactions and returns nothing")]
    Returning,
    #[error("it uses WHERE CURRENT OF, which names one cursor row")]
    CurrentOf,
    #[error("it assigns several columns from one row expression, (a, b) = (...): assign each column on its own")]
    MultiColumn,
    #[error(
        "it assigns to part of column {column} (a subscript or field): assign the whole column"
    )]
    Subfield { column: String },
    #[error("it assigns DEFAULT to {column}: write the default's expression")]
    Default { column: String },
    #[error("it assigns column {column} twice")]
    Twice { column: String },
    #[error("its text could not be scanned: {0}")]
    Scan(String),
}

/// Reads the backfill parts of `text`, the full text of one statement whose parse tree is
/// `node` (as [`crate::parse`] returns it).
pub fn update_parts(text: &str, node: &NodeEnum) -> Result<UpdateParts, NotBatchable> {
    let NodeEnum::UpdateStmt(update) = node else {
        return Err(NotBatchable::NotAnUpdate);
    };
    if update.with_clause.is_some() {
        return Err(NotBatchable::With);
    }
    if !update.from_clause.is_empty() {
        return Err(NotBatchable::From);
    }
    if update
        .returning_clause
        .as_ref()
        .is_some_and(|r| !r.exprs.is_empty())
    {
        return Err(NotBatchable::Returning);
    }
    if let Some(NodeEnum::CurrentOfExpr(_)) =
        update.where_clause.as_ref().and_then(|n| n.node.as_ref())
    {
        return Err(NotBatchable::CurrentOf);
    }
    let Some(relation) = update.relation.as_ref() else {
        return Err(NotBatchable::NotAnUpdate);
    };
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for target in &update.target_list {
        let Some(NodeEnum::ResTarget(res)) = target.node.as_ref() else {
            return Err(NotBatchable::NotAnUpdate);
        };
        match res.val.as_ref().and_then(|v| v.node.as_ref()) {
            Some(NodeEnum::MultiAssignRef(_)) => return Err(NotBatchable::MultiColumn),
            Some(NodeEnum::SetToDefault(_)) => {
                return Err(NotBatchable::Default {
                    column: res.name.clone(),
                })
            }
            _ => {}
        }
        if !res.indirection.is_empty() {
            return Err(NotBatchable::Subfield {
                column: res.name.clone(),
            });
        }
        if columns.contains(&res.name) {
            return Err(NotBatchable::Twice {
                column: res.name.clone(),
            });
        }
        columns.push(res.name.clone());
        values.push(res.val.as_deref());
    }

    let (expressions, filter) = texts(text, columns.len())?;
    let table = QualifiedName::from_range_var(relation);
    let alias = relation.alias.as_ref().map(|a| a.aliasname.clone());
    let assignments = columns
        .into_iter()
        .zip(expressions)
        .zip(values)
        .map(|((column, expression), value)| Assignment {
            column,
            expression,
            reads: value.map_or_else(Reads::default, |v| reads(v, &table, alias.as_deref())),
        })
        .collect();
    Ok(UpdateParts {
        table,
        alias,
        only: !relation.inh,
        assignments,
        filter,
    })
}

/// What `expression` reads. The tree is walked as data (its serde form), so every kind of
/// node is visited — `CASE x WHEN`, `ARRAY[...]`, `f(a => x)`, `x IN (SELECT ...)`, window
/// and aggregate clauses — not only the kinds a hand-written walker lists.
fn reads(expression: &Node, table: &QualifiedName, alias: Option<&str>) -> Reads {
    let mut out = Reads::default();
    match serde_json::to_value(expression) {
        Ok(tree) => visit(&tree, table, alias, &mut out),
        // Not expected (the tree is plain data); if it happens, assume the worst.
        Err(_) => out.whole_row = true,
    }
    out
}

fn visit(value: &Value, table: &QualifiedName, alias: Option<&str>, out: &mut Reads) {
    match value {
        Value::Array(items) => {
            for item in items {
                visit(item, table, alias, out);
            }
        }
        Value::Object(fields) => {
            for (key, inner) in fields {
                // Node kinds are the keys of the `node` one-of (field names are snake case).
                match key.as_str() {
                    "ColumnRef" => column_ref(&names(&inner["fields"]), table, alias, out),
                    "FuncCall" => {
                        let name: Vec<String> =
                            names(&inner["funcname"]).into_iter().flatten().collect();
                        if !out.functions.contains(&name) {
                            out.functions.push(name);
                        }
                    }
                    "SqlvalueFunction" => {
                        if let Some(clock) = inner["op"]
                            .as_i64()
                            .and_then(|op| i32::try_from(op).ok())
                            .and_then(|op| SqlValueFunctionOp::try_from(op).ok())
                            .and_then(clock_keyword)
                        {
                            push_once(&mut out.clock, clock.to_owned());
                        }
                    }
                    "AConst" => {
                        if let Some(text) = inner["val"]["Sval"]["sval"].as_str() {
                            let word = text.trim().to_ascii_lowercase();
                            if matches!(word.as_str(), "now" | "today" | "tomorrow" | "yesterday") {
                                push_once(&mut out.clock, format!("'{word}'"));
                            }
                        }
                    }
                    "RangeVar" => {
                        let schema = inner["schemaname"].as_str().unwrap_or_default();
                        let name = inner["relname"].as_str().unwrap_or_default();
                        if QualifiedName::new(Some(schema), name).same_object(table) {
                            out.whole_row = true;
                        }
                    }
                    _ => {}
                }
                visit(inner, table, alias, out);
            }
        }
        _ => {}
    }
}

/// The parts of a dotted name as the tree holds them: `Some(name)`, `None` for `*`.
fn names(list: &Value) -> Vec<Option<String>> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| item["node"]["String"]["sval"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `c`, `t.c`, `s.t.c`, `t.*`, `*`, or `t` alone (the whole row, unless a column is so named;
/// both are counted).
fn column_ref(
    parts: &[Option<String>],
    table: &QualifiedName,
    alias: Option<&str>,
    out: &mut Reads,
) {
    let names_table = |qualifier: &[Option<String>]| -> bool {
        let q: Option<Vec<&str>> = qualifier.iter().map(Option::as_deref).collect();
        match q.as_deref() {
            Some([t]) => Some(*t) == alias || *t == table.name,
            Some([.., s, t]) => QualifiedName::qualified(*s, *t).same_object(table),
            _ => false,
        }
    };
    match parts {
        [None] => out.whole_row = true,
        [Some(c)] => {
            if Some(c.as_str()) == alias || *c == table.name {
                out.whole_row = true;
            }
            push_once(&mut out.columns, c.clone());
        }
        [qualifier @ .., last] if names_table(qualifier) => match last {
            None => out.whole_row = true,
            Some(c) => push_once(&mut out.columns, c.clone()),
        },
        _ => {}
    }
}

/// The SQL keyword of a value function that reads the clock.
fn clock_keyword(op: SqlValueFunctionOp) -> Option<&'static str> {
    use SqlValueFunctionOp as Op;
    Some(match op {
        Op::SvfopCurrentDate => "CURRENT_DATE",
        Op::SvfopCurrentTime | Op::SvfopCurrentTimeN => "CURRENT_TIME",
        Op::SvfopCurrentTimestamp | Op::SvfopCurrentTimestampN => "CURRENT_TIMESTAMP",
        Op::SvfopLocaltime | Op::SvfopLocaltimeN => "LOCALTIME",
        Op::SvfopLocaltimestamp | Op::SvfopLocaltimestampN => "LOCALTIMESTAMP",
        _ => return None,
    })
}

fn push_once(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The text of each assigned expression and of the WHERE condition, from the top-level
/// tokens: `SET`, the commas between assignments, the first `=` of each, `WHERE`.
fn texts(text: &str, count: usize) -> Result<(Vec<String>, Option<String>), NotBatchable> {
    let tokens = pg_query::scan_tokens(text).map_err(|e| NotBatchable::Scan(e.to_string()))?;
    let mut depth = 0i32;
    let mut set_end = None;
    let mut commas = Vec::new();
    let mut equals = Vec::new();
    let mut where_at = None;
    for token in &tokens {
        let kind = Token::try_from(token.token).unwrap_or(Token::Nul);
        match kind {
            Token::Ascii40 | Token::Ascii91 => depth += 1,
            Token::Ascii41 | Token::Ascii93 => depth -= 1,
            Token::SqlComment | Token::CComment => continue,
            _ => {}
        }
        if depth != 0 {
            continue;
        }
        match kind {
            Token::Set if set_end.is_none() => set_end = Some(token.end as usize),
            Token::Ascii44 if set_end.is_some() && where_at.is_none() => commas.push(token),
            Token::Ascii61 if set_end.is_some() && where_at.is_none() => equals.push(token),
            Token::Where if set_end.is_some() => where_at = Some(token),
            _ => {}
        }
    }
    let set_end = set_end.ok_or(NotBatchable::NotAnUpdate)?;
    let list_end = where_at.map_or(text.len(), |w| w.start as usize);
    let mut bounds = vec![set_end];
    bounds.extend(commas.iter().map(|c| c.end as usize));
    bounds.push(list_end);
    if bounds.len() != count + 1 {
        return Err(NotBatchable::Scan(format!(
            "found {} assignments where the parser found {count}",
            bounds.len() - 1
        )));
    }
    let mut expressions = Vec::with_capacity(count);
    for pair in bounds.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        // Each piece ends with the comma that ends it (except the last).
        let end = commas
            .iter()
            .find(|c| c.end as usize == end)
            .map_or(end, |c| c.start as usize);
        let eq = equals
            .iter()
            .find(|e| (e.start as usize) >= start && (e.end as usize) <= end)
            .ok_or_else(|| NotBatchable::Scan("an assignment without `=`".into()))?;
        expressions.push(text[eq.end as usize..end].trim().to_string());
    }
    let filter = where_at.map(|w| text[w.end as usize..].trim().to_string());
    Ok((expressions, filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(sql: &str) -> Result<UpdateParts, NotBatchable> {
        let script = crate::parse(sql);
        assert!(script.errors.is_empty(), "{:?}", script.errors);
        let stmt = &script.statements[0];
        update_parts(stmt.text(sql), &stmt.node)
    }

    #[test]
    fn reads_columns_expressions_and_filter_as_written() {
        let p = parts(
            "UPDATE app.users SET full_name = first || ' ' || coalesce(last, ''), n = f(a, (b = c)), \"Tag\" = ARRAY[1, 2] WHERE full_name IS NULL AND id = ANY('{1,2}')",
        )
        .unwrap();
        assert_eq!(p.table, QualifiedName::qualified("app", "users"));
        let got: Vec<(&str, &str)> = p
            .assignments
            .iter()
            .map(|a| (a.column.as_str(), a.expression.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("full_name", "first || ' ' || coalesce(last, '')"),
                ("n", "f(a, (b = c))"),
                ("Tag", "ARRAY[1, 2]"),
            ]
        );
        assert_eq!(
            p.filter.as_deref(),
            Some("full_name IS NULL AND id = ANY('{1,2}')")
        );
        assert!(!p.only);
        assert_eq!(p.alias, None);
    }

    #[test]
    fn a_comparison_inside_the_expression_is_not_the_assignment() {
        let p = parts("UPDATE t SET flag = a = b").unwrap();
        assert_eq!(p.assignments[0].expression, "a = b");
        assert_eq!(p.filter, None);
    }

    #[test]
    fn alias_and_only_are_kept() {
        let p = parts("UPDATE ONLY t AS x SET a = x.b").unwrap();
        assert!(p.only);
        assert_eq!(p.alias.as_deref(), Some("x"));
    }

    /// The assigned column (first assignment) each reads, the functions and the clock.
    fn first_reads(sql: &str) -> Reads {
        parts(sql).unwrap().assignments[0].reads.clone()
    }

    #[test]
    fn an_expression_reading_the_column_it_writes_is_seen() {
        let p = parts("UPDATE prices SET amount = amount * 100").unwrap();
        assert_eq!(
            p.reads_what_it_writes().map(|a| a.column.as_str()),
            Some("amount")
        );
        // Qualified with the table's name or its alias, or with the schema too.
        for sql in [
            "UPDATE prices SET amount = prices.amount * 100",
            "UPDATE public.prices SET amount = public.prices.amount * 100",
            "UPDATE prices AS p SET amount = p.amount * 100",
            "UPDATE prices SET amount = coalesce(amount, 0) + 1",
        ] {
            assert!(
                parts(sql).unwrap().reads_what_it_writes().is_some(),
                "{sql}"
            );
        }
    }

    #[test]
    fn reading_other_columns_or_other_tables_is_not_reading_what_it_writes() {
        for sql in [
            "UPDATE users SET full_name = first || ' ' || last WHERE full_name IS NULL",
            "UPDATE t SET c = (SELECT o.c FROM other o WHERE o.id = t.other_id)",
            "UPDATE t SET c = other.c",
            "UPDATE t SET c = 'amount', d = 1",
        ] {
            assert_eq!(parts(sql).unwrap().reads_what_it_writes(), None, "{sql}");
        }
        let r = first_reads("UPDATE users SET full_name = first || ' ' || last");
        assert_eq!(r.columns, ["first", "last"]);
        assert!(!r.whole_row);
    }

    #[test]
    fn another_assignments_column_counts() {
        let p = parts("UPDATE t SET a = b, b = a").unwrap();
        assert_eq!(
            p.reads_what_it_writes().map(|a| a.column.as_str()),
            Some("a")
        );
        let p = parts("UPDATE t SET a = 1, b = a + 1").unwrap();
        assert_eq!(
            p.reads_what_it_writes().map(|a| a.column.as_str()),
            Some("b")
        );
    }

    #[test]
    fn every_kind_of_node_is_walked() {
        // Node kinds that pg_query's own walker skips: the CASE operand, array constructors,
        // named arguments, subscripts, field selection, the test of IN (SELECT ...), an
        // aggregate's ORDER BY and FILTER, COLLATE, row constructors.
        for expression in [
            "CASE amount WHEN 1 THEN 2 ELSE 3 END",
            "ARRAY[amount, 1]",
            "f(x => amount)",
            "(amount)[1]",
            "(amount).part",
            "amount IN (SELECT 1)",
            "(SELECT string_agg(o.x, ',' ORDER BY amount) FROM o)",
            "(SELECT count(*) FILTER (WHERE o.x > amount) FROM o)",
            "amount COLLATE \"C\"",
            "ROW(amount, 1)::pair",
            "greatest(amount, 0)",
            "NULLIF(amount, 0)",
            "amount IS DISTINCT FROM 0",
            "EXTRACT(year FROM amount)",
        ] {
            let sql = format!("UPDATE prices SET amount = {expression}");
            let p = parts(&sql).unwrap();
            assert!(p.reads_what_it_writes().is_some(), "{sql}");
        }
    }

    #[test]
    fn the_whole_row_and_the_table_itself_in_a_subquery_read_every_column() {
        for sql in [
            "UPDATE t SET h = md5(t::text)",
            "UPDATE t SET h = md5(row_to_json(t.*)::text)",
            "UPDATE t AS x SET h = md5(x::text)",
            "UPDATE t SET n = (SELECT count(*) FROM t AS u WHERE u.g = t.g)",
            "UPDATE app.t SET n = (SELECT max(u.v) FROM app.t u)",
        ] {
            assert!(first_reads(sql).whole_row, "{sql}");
            assert!(
                parts(sql).unwrap().reads_what_it_writes().is_some(),
                "{sql}"
            );
        }
        assert!(!first_reads("UPDATE app.t SET n = (SELECT max(u.v) FROM other.t u)").whole_row);
    }

    #[test]
    fn an_unqualified_name_inside_a_subquery_is_counted_as_the_tables() {
        // `c` may be other's column or t's: the tree cannot tell, so it reads.
        let p =
            parts("UPDATE t SET c = (SELECT c FROM other WHERE other.id = t.other_id)").unwrap();
        assert!(p.reads_what_it_writes().is_some());
    }

    #[test]
    fn functions_are_recorded_as_written() {
        let r = first_reads(
            "UPDATE t SET token = coalesce(pg_catalog.md5(random()::text), gen_random_uuid()::text, ext.f(a))",
        );
        let names: Vec<String> = r.functions.iter().map(|f| f.join(".")).collect();
        assert_eq!(
            names,
            ["pg_catalog.md5", "random", "gen_random_uuid", "ext.f"]
        );
        // In a subquery and in a window or FILTER clause too.
        let r =
            first_reads("UPDATE t SET a = (SELECT max(x) FILTER (WHERE y > nextval('s')) FROM o)");
        let names: Vec<String> = r.functions.iter().map(|f| f.join(".")).collect();
        assert_eq!(names, ["max", "nextval"]);
        assert!(first_reads("UPDATE t SET a = b + 1").functions.is_empty());
    }

    #[test]
    fn the_clock_is_recorded() {
        let r = first_reads(
            "UPDATE t SET at = coalesce(CURRENT_TIMESTAMP, LOCALTIMESTAMP(3), CURRENT_DATE, 'now'::timestamptz, ' Today'::date)",
        );
        assert_eq!(
            r.clock,
            [
                "CURRENT_TIMESTAMP",
                "LOCALTIMESTAMP",
                "CURRENT_DATE",
                "'now'",
                "'today'"
            ]
        );
        // A function reading the clock is a function call; its name says so to the runner.
        assert_eq!(
            first_reads("UPDATE t SET at = now()").functions,
            [vec!["now".to_owned()]]
        );
        // CURRENT_USER and friends are the same in every batch.
        assert!(
            first_reads("UPDATE t SET who = CURRENT_USER, s = CURRENT_SCHEMA")
                .clock
                .is_empty()
        );
        assert!(first_reads("UPDATE t SET at = 'epoch'::timestamptz")
            .clock
            .is_empty());
    }

    #[test]
    fn shapes_that_cannot_be_batched_say_why() {
        assert_eq!(
            parts("UPDATE t SET a = o.a FROM o WHERE o.id = t.id"),
            Err(NotBatchable::From)
        );
        assert_eq!(
            parts("UPDATE t SET a = 1 RETURNING id"),
            Err(NotBatchable::Returning)
        );
        assert_eq!(
            parts("UPDATE t SET (a, b) = (1, 2)"),
            Err(NotBatchable::MultiColumn)
        );
        assert!(matches!(
            parts("UPDATE t SET a[1] = 2"),
            Err(NotBatchable::Subfield { .. })
        ));
        assert!(matches!(
            parts("UPDATE t SET a = DEFAULT"),
            Err(NotBatchable::Default { .. })
        ));
        assert_eq!(
            parts("WITH x AS (SELECT 1) UPDATE t SET a = 1"),
            Err(NotBatchable::With)
        );
        assert_eq!(parts("DELETE FROM t"), Err(NotBatchable::NotAnUpdate));
    }
}
