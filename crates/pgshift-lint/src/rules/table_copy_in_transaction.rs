//! `table-copy-in-transaction` (PGS607): CREATE TABLE ... AS / INSERT ... SELECT copies an existing table inside the migration's transaction.
//!
//! Documentation: `docs/rules/table-copy-in-transaction.md` (printed by `pgshift explain table-copy-in-transaction`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::protobuf::ObjectType;
use pg_query::{NodeEnum, NodeRef};
use pgshift_sql::ident::QualifiedName;

pub const RULE: Rule = Rule {
    code: "PGS607",
    name: "table-copy-in-transaction",
    severity: Severity::Warning,
    opt_in: false,
    summary: "CREATE TABLE ... AS / INSERT ... SELECT copies an existing table inside the migration's transaction",
    doc: include_str!("../../docs/rules/table-copy-in-transaction.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if !s.ctx.in_transaction() {
        return;
    }
    let (query, verb) = match s.node {
        NodeEnum::CreateTableAsStmt(c) => {
            if c.into.as_ref().is_some_and(|i| i.skip_data) {
                return; // WITH NO DATA copies nothing
            }
            let verb = if c.objtype == ObjectType::ObjectMatview as i32 {
                "CREATE MATERIALIZED VIEW"
            } else {
                "CREATE TABLE ... AS"
            };
            (c.query.as_deref(), verb)
        }
        NodeEnum::InsertStmt(i) => (i.select_stmt.as_deref(), "INSERT ... SELECT"),
        NodeEnum::SelectStmt(sel) if sel.into_clause.is_some() => (None, "SELECT ... INTO"),
        _ => return,
    };
    let sources = match (query.and_then(|q| q.node.as_ref()), s.node) {
        (Some(q), _) => source_tables(q, s.node),
        (None, NodeEnum::SelectStmt(_)) => source_tables(s.node, s.node),
        _ => return,
    };
    let sources: Vec<QualifiedName> = sources.into_iter().filter(|t| s.existing(t)).collect();
    if sources.is_empty() {
        return;
    }
    let names: Vec<String> = sources.iter().map(|t| format!("`{t}`")).collect();
    let held = match &s.ctx.held {
        Some(h) => format!(
            "; the transaction already holds {} on `{}`, kept until the copy ends",
            h.lock.sql_name(),
            h.table
        ),
        None => String::new(),
    };
    // No lock on the finding: reading the source takes ACCESS SHARE, which is not what hurts.
    out.push(
        s.diagnostic(format!(
            "{verb} copies every matching row of {} inside the migration's transaction: the transaction stays open for the whole copy, and rows written to the source after it starts are not copied{held}",
            names.join(", ")
        ))
        .tables(&sources)
        .help("Create the table empty in the migration, then fill it outside the migration's transaction in batches that commit one by one (keyed on the primary key), with a trigger or a second pass for rows written meanwhile"),
    );
}

/// The tables a query reads (FROM, JOIN, subqueries), without the names of the statement's
/// CTEs (`WITH s AS (...) INSERT ... SELECT ... FROM s`: the WITH belongs to the INSERT).
fn source_tables(query: &NodeEnum, statement: &NodeEnum) -> Vec<QualifiedName> {
    let nodes = query.nodes();
    let all = statement.nodes();
    let ctes: Vec<&str> = all
        .iter()
        .filter_map(|(n, ..)| match n {
            NodeRef::CommonTableExpr(c) => Some(c.ctename.as_str()),
            _ => None,
        })
        .collect();
    let mut out: Vec<QualifiedName> = Vec::new();
    for (n, ..) in &nodes {
        if let NodeRef::RangeVar(rv) = n {
            let t = QualifiedName::from_range_var(rv);
            let is_cte = t.schema.is_none() && ctes.contains(&t.name.as_str());
            if !is_cte && !out.iter().any(|o| o.same_object(&t)) {
                out.push(t);
            }
        }
    }
    out
}
