//! Which top-level statements cannot run inside a transaction block, decided from the parse
//! tree (never from the text: `REFRESH ... CONCURRENTLY` inside a function body is not a
//! top-level statement), and which statements are transaction control.

use pg_query::protobuf::{AlterTableType, ObjectType, TransactionStmtKind};
use pg_query::NodeEnum;

/// Why PostgreSQL refuses to run this statement inside a transaction block (SQLSTATE 25001),
/// or `None` when it can run in one.
pub fn forbidden_in_transaction(node: &NodeEnum) -> Option<&'static str> {
    match node {
        NodeEnum::IndexStmt(s) if s.concurrent => Some("CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(s)
            if s.concurrent && s.remove_type == ObjectType::ObjectIndex as i32 =>
        {
            Some("DROP INDEX CONCURRENTLY")
        }
        NodeEnum::ReindexStmt(s) if has_option(&s.params, "concurrently") => {
            Some("REINDEX CONCURRENTLY")
        }
        NodeEnum::ReindexStmt(s)
            if s.kind == pg_query::protobuf::ReindexObjectType::ReindexObjectSystem as i32
                || s.kind
                    == pg_query::protobuf::ReindexObjectType::ReindexObjectDatabase as i32 =>
        {
            Some("REINDEX SYSTEM/DATABASE")
        }
        NodeEnum::VacuumStmt(s) if s.is_vacuumcmd => Some("VACUUM"),
        NodeEnum::CreatedbStmt(_) => Some("CREATE DATABASE"),
        NodeEnum::DropdbStmt(_) => Some("DROP DATABASE"),
        NodeEnum::AlterSystemStmt(_) => Some("ALTER SYSTEM"),
        NodeEnum::CreateTableSpaceStmt(_) => Some("CREATE TABLESPACE"),
        NodeEnum::DropTableSpaceStmt(_) => Some("DROP TABLESPACE"),
        NodeEnum::ClusterStmt(s) if s.relation.is_none() => Some("CLUSTER without a table"),
        NodeEnum::CreateSubscriptionStmt(_) => Some("CREATE SUBSCRIPTION"),
        NodeEnum::DropSubscriptionStmt(_) => Some("DROP SUBSCRIPTION"),
        NodeEnum::AlterTableStmt(s) => s.cmds.iter().find_map(|cmd| match &cmd.node {
            Some(NodeEnum::AlterTableCmd(c))
                if c.subtype == AlterTableType::AtDetachPartition as i32 =>
            {
                match c.def.as_ref().and_then(|d| d.node.as_ref()) {
                    Some(NodeEnum::PartitionCmd(p)) if p.concurrent => {
                        Some("DETACH PARTITION CONCURRENTLY")
                    }
                    _ => None,
                }
            }
            _ => None,
        }),
        _ => None,
    }
}

/// What kind of transaction control a statement is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionControl {
    Begin,
    Commit,
    Rollback,
    /// SAVEPOINT, RELEASE, ROLLBACK TO, PREPARE TRANSACTION, ...: allowed, left alone.
    Other,
}

pub fn transaction_control(node: &NodeEnum) -> Option<TransactionControl> {
    let NodeEnum::TransactionStmt(s) = node else {
        return None;
    };
    let kind = TransactionStmtKind::try_from(s.kind).ok()?;
    Some(match kind {
        TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart => {
            TransactionControl::Begin
        }
        TransactionStmtKind::TransStmtCommit => TransactionControl::Commit,
        TransactionStmtKind::TransStmtRollback => TransactionControl::Rollback,
        _ => TransactionControl::Other,
    })
}

fn has_option(params: &[pg_query::protobuf::Node], name: &str) -> bool {
    params.iter().any(
        |p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case(name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn reason(sql: &str) -> Option<&'static str> {
        let parsed = parse(sql);
        assert!(parsed.errors.is_empty(), "{sql}: {:?}", parsed.errors);
        forbidden_in_transaction(&parsed.statements[0].node)
    }

    #[test]
    fn concurrent_and_maintenance_statements_cannot_run_in_a_transaction() {
        assert_eq!(
            reason("CREATE INDEX CONCURRENTLY i ON t (a)"),
            Some("CREATE INDEX CONCURRENTLY")
        );
        assert_eq!(
            reason("DROP INDEX CONCURRENTLY IF EXISTS i"),
            Some("DROP INDEX CONCURRENTLY")
        );
        assert_eq!(
            reason("REINDEX INDEX CONCURRENTLY i"),
            Some("REINDEX CONCURRENTLY")
        );
        assert_eq!(reason("VACUUM ANALYZE t"), Some("VACUUM"));
        assert_eq!(
            reason("ALTER TABLE p DETACH PARTITION c CONCURRENTLY"),
            Some("DETACH PARTITION CONCURRENTLY")
        );
        assert_eq!(reason("CREATE DATABASE x"), Some("CREATE DATABASE"));
    }

    #[test]
    fn ordinary_statements_can() {
        assert_eq!(reason("CREATE INDEX i ON t (a)"), None);
        assert_eq!(reason("DROP INDEX i"), None);
        assert_eq!(reason("ANALYZE t"), None);
        assert_eq!(reason("REFRESH MATERIALIZED VIEW CONCURRENTLY mv"), None);
        assert_eq!(reason("ALTER TABLE p DETACH PARTITION c"), None);
        assert_eq!(
            reason("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ VACUUM $$"),
            None,
            "a body is not a top-level statement"
        );
    }

    #[test]
    fn transaction_control_is_recognised() {
        let p = parse("BEGIN; COMMIT; ROLLBACK; SAVEPOINT a; START TRANSACTION; END");
        let kinds: Vec<_> = p
            .statements
            .iter()
            .map(|s| transaction_control(&s.node))
            .collect();
        assert_eq!(
            kinds,
            vec![
                Some(TransactionControl::Begin),
                Some(TransactionControl::Commit),
                Some(TransactionControl::Rollback),
                Some(TransactionControl::Other),
                Some(TransactionControl::Begin),
                Some(TransactionControl::Commit)
            ]
        );
    }
}
