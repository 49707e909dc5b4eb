//! The parts of an `UPDATE` that a batched backfill needs: the table, each assigned column
//! with its expression *as written*, and the `WHERE` condition as written.
//!
//! The parse tree says what the statement is (which table, which columns, whether it joins or
//! returns rows); the scanner's tokens give the exact text of each expression, because a
//! backfill runs those expressions again, batch by batch, restricted to a key range, and
//! compares them with the column to know whether a row still needs the update. Expressions are
//! never re-printed from the tree: what runs is what the author wrote.

use pg_query::protobuf::Token;
use pg_query::NodeEnum;

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

/// `column = expression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The column's name as the server knows it (unquoted, case kept).
    pub column: String,
    /// The expression's text as written.
    pub expression: String,
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
    }

    let (expressions, filter) = texts(text, columns.len())?;
    Ok(UpdateParts {
        table: QualifiedName::from_range_var(relation),
        alias: relation.alias.as_ref().map(|a| a.aliasname.clone()),
        only: !relation.inh,
        assignments: columns
            .into_iter()
            .zip(expressions)
            .map(|(column, expression)| Assignment { column, expression })
            .collect(),
        filter,
    })
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
