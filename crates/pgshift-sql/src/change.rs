//! The schema changes an online (expand/contract) migration is planned from, read from one
//! statement: renames, a column's type change, an added column, `SET NOT NULL`, a dropped
//! column. The parse tree says which change it is and names the table and columns; the
//! scanner's tokens give the exact text of a type and of an expression, because the online
//! plan runs them again in other statements (a new column of that type, a trigger and a
//! backfill computing that expression). Nothing is re-printed from the tree.

use std::ops::Range;

use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType, Token};
use pg_query::NodeEnum;

use crate::ident::QualifiedName;

/// One change to an existing table, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    /// `ALTER TABLE t RENAME [COLUMN] from TO to`.
    RenameColumn {
        table: QualifiedName,
        from: String,
        to: String,
    },
    /// `ALTER TABLE t RENAME TO to`.
    RenameTable { table: QualifiedName, to: String },
    /// `ALTER TABLE t ALTER [COLUMN] c [SET DATA] TYPE type [USING expr]`.
    AlterType {
        table: QualifiedName,
        column: String,
        /// The type as written.
        type_text: String,
        /// The `USING` expression as written.
        using: Option<String>,
    },
    /// `ALTER TABLE t ADD [COLUMN] c type [NULL | NOT NULL | DEFAULT expr ...]`.
    AddColumn {
        table: QualifiedName,
        column: String,
        type_text: String,
        /// The `DEFAULT` expression as written.
        default: Option<String>,
        not_null: bool,
        /// Anything else on the column (CHECK, UNIQUE, PRIMARY KEY, REFERENCES, GENERATED,
        /// IDENTITY, COLLATE): the column is then added as written.
        other: bool,
    },
    /// `ALTER TABLE t ALTER [COLUMN] c SET NOT NULL`.
    SetNotNull {
        table: QualifiedName,
        column: String,
    },
    /// `ALTER TABLE t DROP [COLUMN] [IF EXISTS] c [CASCADE]`.
    DropColumn {
        table: QualifiedName,
        column: String,
        cascade: bool,
    },
    /// `ALTER TYPE e RENAME VALUE 'from' TO 'to'`: a change to every column of type `e`.
    RenameEnumValue {
        type_name: QualifiedName,
        from: String,
        to: String,
    },
}

impl SchemaChange {
    /// The table the change is made to; for an enum's value, the type.
    pub fn table(&self) -> &QualifiedName {
        match self {
            SchemaChange::RenameColumn { table, .. }
            | SchemaChange::RenameTable { table, .. }
            | SchemaChange::AlterType { table, .. }
            | SchemaChange::AddColumn { table, .. }
            | SchemaChange::SetNotNull { table, .. }
            | SchemaChange::DropColumn { table, .. } => table,
            SchemaChange::RenameEnumValue { type_name, .. } => type_name,
        }
    }
}

/// `ALTER TABLE ... RENAME COLUMN`: the statement a `-- pgshift:rename view|copy` marker
/// may mark.
pub fn renames_column(node: &NodeEnum) -> bool {
    matches!(node, NodeEnum::RenameStmt(r)
        if r.rename_type == ObjectType::ObjectColumn as i32
            && r.relation_type == ObjectType::ObjectTable as i32)
}

/// The changes one statement makes, when every part of it is one of [`SchemaChange`]'s
/// shapes: `ALTER TABLE t ALTER a TYPE bigint, ALTER b TYPE bigint` gives two. `None` for
/// any other statement, and for an `ALTER TABLE` with any other subcommand (it then runs as
/// written). `text` is the statement's full text, `node` its parse tree.
pub fn schema_changes(text: &str, node: &NodeEnum) -> Option<Vec<SchemaChange>> {
    match node {
        NodeEnum::AlterEnumStmt(e) if !e.old_val.is_empty() => {
            Some(vec![SchemaChange::RenameEnumValue {
                type_name: QualifiedName::from_names(&e.type_name)?,
                from: e.old_val.clone(),
                to: e.new_val.clone(),
            }])
        }
        NodeEnum::RenameStmt(r) => {
            let table = QualifiedName::from_range_var(r.relation.as_ref()?);
            let is_table = r.relation_type == ObjectType::ObjectTable as i32;
            if r.rename_type == ObjectType::ObjectColumn as i32 && is_table {
                Some(vec![SchemaChange::RenameColumn {
                    table,
                    from: r.subname.clone(),
                    to: r.newname.clone(),
                }])
            } else if r.rename_type == ObjectType::ObjectTable as i32 {
                Some(vec![SchemaChange::RenameTable {
                    table,
                    to: r.newname.clone(),
                }])
            } else {
                None
            }
        }
        NodeEnum::AlterTableStmt(_) => {
            // The tree's locations count from the start of the text the parser was given,
            // which may be a whole file or a run of it: parse the statement's own text again
            // so that they count from its start.
            let own = crate::parse(text);
            let [statement] = own.statements.as_slice() else {
                return None;
            };
            let NodeEnum::AlterTableStmt(a) = &statement.node else {
                return None;
            };
            if a.objtype != ObjectType::ObjectTable as i32 {
                return None;
            }
            let table = QualifiedName::from_range_var(a.relation.as_ref()?);
            let tokens = Tokens::scan(text)?;
            let pieces = tokens.subcommands();
            if pieces.len() != a.cmds.len() {
                return None;
            }
            let mut changes = Vec::new();
            for (cmd, piece) in a.cmds.iter().zip(pieces) {
                let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else {
                    return None;
                };
                let subtype = cmd.subtype;
                let change = if subtype == AlterTableType::AtAlterColumnType as i32 {
                    let NodeEnum::ColumnDef(def) = cmd.def.as_ref()?.node.as_ref()? else {
                        return None;
                    };
                    if def.coll_clause.is_some() {
                        return None;
                    }
                    let type_start = usize::try_from(def.type_name.as_ref()?.location).ok()?;
                    let using = tokens.first(Token::Using, type_start..piece.end);
                    let type_end = using.as_ref().map_or(piece.end, |u| u.start);
                    SchemaChange::AlterType {
                        table: table.clone(),
                        column: cmd.name.clone(),
                        type_text: clean(text.get(type_start..type_end)?),
                        using: match using {
                            Some(u) => Some(clean(text.get(u.end..piece.end)?)),
                            None => None,
                        },
                    }
                } else if subtype == AlterTableType::AtAddColumn as i32 {
                    let NodeEnum::ColumnDef(def) = cmd.def.as_ref()?.node.as_ref()? else {
                        return None;
                    };
                    let type_start = usize::try_from(def.type_name.as_ref()?.location).ok()?;
                    let mut not_null = def.is_not_null;
                    let mut other = def.coll_clause.is_some()
                        || !def.identity.is_empty()
                        || !def.generated.is_empty();
                    let mut default = None;
                    // Where each constraint starts; the type ends at the first, each
                    // constraint at the next.
                    let mut starts: Vec<(usize, i32)> = Vec::new();
                    for c in &def.constraints {
                        let Some(NodeEnum::Constraint(c)) = &c.node else {
                            return None;
                        };
                        let at = usize::try_from(c.location).ok()?;
                        starts.push((at, c.contype));
                    }
                    starts.sort_unstable();
                    let type_end = starts.first().map_or(piece.end, |s| s.0);
                    for (i, (at, contype)) in starts.iter().enumerate() {
                        let end = starts.get(i + 1).map_or(piece.end, |s| s.0);
                        match *contype {
                            t if t == ConstrType::ConstrNotnull as i32 => not_null = true,
                            t if t == ConstrType::ConstrNull as i32 => {}
                            t if t == ConstrType::ConstrDefault as i32 => {
                                let kw = tokens.first(Token::Default, *at..end)?;
                                default = Some(clean(text.get(kw.end..end)?));
                            }
                            _ => other = true,
                        }
                    }
                    SchemaChange::AddColumn {
                        table: table.clone(),
                        column: def.colname.clone(),
                        type_text: clean(text.get(type_start..type_end)?),
                        default,
                        not_null,
                        other,
                    }
                } else if subtype == AlterTableType::AtSetNotNull as i32 {
                    SchemaChange::SetNotNull {
                        table: table.clone(),
                        column: cmd.name.clone(),
                    }
                } else if subtype == AlterTableType::AtDropColumn as i32 {
                    SchemaChange::DropColumn {
                        table: table.clone(),
                        column: cmd.name.clone(),
                        cascade: cmd.behavior
                            == pg_query::protobuf::DropBehavior::DropCascade as i32,
                    }
                } else {
                    return None;
                };
                changes.push(change);
            }
            Some(changes)
        }
        _ => None,
    }
}

/// `expr` (an expression over one table's row, as written) with every column reference
/// replaced by `NEW."column"`, for a row trigger that computes it from the row being written.
/// A reference may be bare or qualified by one of `qualifiers` (the table's name, its alias).
/// `None` when the expression reads anything else: a subquery, another table's column, a
/// whole-row reference.
pub fn row_expression(expr: &str, qualifiers: &[&str]) -> Option<String> {
    const PREFIX: &str = "SELECT ";
    let sql = format!("{PREFIX}{expr}");
    let parsed = crate::parse(&sql);
    if !parsed.errors.is_empty() || parsed.statements.len() != 1 {
        return None;
    }
    let tokens = Tokens::scan(&sql)?;
    let mut replacements: Vec<(Range<usize>, String)> = Vec::new();
    for (node, _, _, _) in parsed.statements[0].node.nodes() {
        match node {
            pg_query::NodeRef::SubLink(_) => return None,
            pg_query::NodeRef::ColumnRef(c) => {
                let names: Vec<&str> = c
                    .fields
                    .iter()
                    .map(|f| match &f.node {
                        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                let column = match names.as_slice() {
                    [column] => *column,
                    [table, column] if qualifiers.contains(table) => *column,
                    _ => return None,
                };
                let start = usize::try_from(c.location).ok()?;
                // The reference's tokens: a name, then `.name` as many times as written.
                let at = tokens.0.iter().position(|t| t.start == start)?;
                let mut end = tokens.0[at].end;
                let mut i = at + 1;
                while i + 1 < tokens.0.len() && tokens.0[i].kind == Token::Ascii46 {
                    end = tokens.0[i + 1].end;
                    i += 2;
                }
                replacements.push((
                    start..end,
                    format!("NEW.{}", crate::ident::quote_ident(column)),
                ));
            }
            _ => {}
        }
    }
    replacements.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = sql;
    for (range, text) in replacements {
        out.replace_range(range, &text);
    }
    Some(out[PREFIX.len()..].to_string())
}

/// A statement's text without a trailing `;` and surrounding space.
fn clean(text: &str) -> String {
    text.trim().trim_end_matches(';').trim_end().to_string()
}

struct Tok {
    kind: Token,
    start: usize,
    end: usize,
    depth: i32,
}

struct Tokens(Vec<Tok>);

impl Tokens {
    fn scan(text: &str) -> Option<Tokens> {
        let scanned = pg_query::scan_tokens(text).ok()?;
        let mut depth = 0;
        let mut out = Vec::with_capacity(scanned.len());
        for t in scanned {
            let kind = Token::try_from(t.token).unwrap_or(Token::Nul);
            if matches!(kind, Token::SqlComment | Token::CComment) {
                continue;
            }
            if matches!(kind, Token::Ascii41 | Token::Ascii93) {
                depth -= 1;
            }
            out.push(Tok {
                kind,
                start: usize::try_from(t.start).ok()?,
                end: usize::try_from(t.end).ok()?,
                depth,
            });
            if matches!(kind, Token::Ascii40 | Token::Ascii91) {
                depth += 1;
            }
        }
        Some(Tokens(out))
    }

    /// The byte ranges of an `ALTER TABLE`'s subcommands: after the table name, split at the
    /// top-level commas, ending before a `;`.
    fn subcommands(&self) -> Vec<Range<usize>> {
        // ALTER TABLE [IF EXISTS] [ONLY] name [*] <subcommands>: the name is the first
        // identifier-ish run after TABLE; the subcommands start at the next keyword that
        // begins one (ALTER, ADD, DROP, RENAME, SET, ...), i.e. the first token after the
        // name that is not `.`/`*`/a name part.
        let toks = &self.0;
        let Some(table_kw) = toks.iter().position(|t| t.kind == Token::Table) else {
            return Vec::new();
        };
        let mut i = table_kw + 1;
        while i < toks.len() && matches!(toks[i].kind, Token::IfP | Token::Exists | Token::Only) {
            i += 1;
        }
        // The name: parts separated by dots.
        i += 1;
        while i + 1 < toks.len() && toks[i].kind == Token::Ascii46 {
            i += 2;
        }
        if i < toks.len() && toks[i].kind == Token::Ascii42 {
            i += 1;
        }
        let Some(first) = toks.get(i) else {
            return Vec::new();
        };
        let end_of_statement = toks
            .iter()
            .skip(i)
            .find(|t| t.depth == 0 && t.kind == Token::Ascii59)
            .map_or_else(|| toks.last().map_or(0, |t| t.end), |t| t.start);
        let mut pieces = Vec::new();
        let mut start = first.start;
        for t in toks.iter().skip(i) {
            if t.start >= end_of_statement {
                break;
            }
            if t.depth == 0 && t.kind == Token::Ascii44 {
                pieces.push(start..t.start);
                start = t.end;
            }
        }
        pieces.push(start..end_of_statement);
        pieces
    }

    /// The first top-level token of `kind` inside `within`.
    fn first(&self, kind: Token, within: Range<usize>) -> Option<Range<usize>> {
        let base = self
            .0
            .iter()
            .find(|t| t.start >= within.start)
            .map_or(0, |t| t.depth);
        self.0
            .iter()
            .find(|t| {
                t.kind == kind && t.start >= within.start && t.end <= within.end && t.depth == base
            })
            .map(|t| t.start..t.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(sql: &str) -> Option<Vec<SchemaChange>> {
        let script = crate::parse(sql);
        assert!(script.errors.is_empty(), "{:?}", script.errors);
        let stmt = &script.statements[0];
        schema_changes(stmt.text(sql), &stmt.node)
    }

    fn t(name: &str) -> QualifiedName {
        QualifiedName::unqualified(name)
    }

    #[test]
    fn type_changes_keep_the_type_and_using_as_written() {
        assert_eq!(
            changes("ALTER TABLE app.accounts ALTER COLUMN balance TYPE numeric(12, 2) USING (balance / 100.0)::numeric(12,2), ALTER id SET DATA TYPE bigint;").unwrap(),
            vec![
                SchemaChange::AlterType {
                    table: QualifiedName::qualified("app", "accounts"),
                    column: "balance".into(),
                    type_text: "numeric(12, 2)".into(),
                    using: Some("(balance / 100.0)::numeric(12,2)".into()),
                },
                SchemaChange::AlterType {
                    table: QualifiedName::qualified("app", "accounts"),
                    column: "id".into(),
                    type_text: "bigint".into(),
                    using: None,
                },
            ]
        );
        assert_eq!(
            changes(
                "ALTER TABLE t ALTER c TYPE timestamp with time zone USING c AT TIME ZONE 'UTC'"
            )
            .unwrap()[0],
            SchemaChange::AlterType {
                table: t("t"),
                column: "c".into(),
                type_text: "timestamp with time zone".into(),
                using: Some("c AT TIME ZONE 'UTC'".into()),
            }
        );
    }

    #[test]
    fn added_columns_say_what_is_on_them() {
        assert_eq!(
            changes("ALTER TABLE ONLY \"Users\" ADD COLUMN slug varchar(80) DEFAULT lower('A,b') NOT NULL")
                .unwrap()[0],
            SchemaChange::AddColumn {
                table: t("Users"),
                column: "slug".into(),
                type_text: "varchar(80)".into(),
                default: Some("lower('A,b')".into()),
                not_null: true,
                other: false,
            }
        );
        assert_eq!(
            changes("ALTER TABLE t ADD c int[]").unwrap()[0],
            SchemaChange::AddColumn {
                table: t("t"),
                column: "c".into(),
                type_text: "int[]".into(),
                default: None,
                not_null: false,
                other: false,
            }
        );
        let Some(changes) = changes("ALTER TABLE t ADD c int REFERENCES o (id)") else {
            panic!()
        };
        assert!(matches!(
            changes[0],
            SchemaChange::AddColumn { other: true, .. }
        ));
    }

    #[test]
    fn renames_drops_and_not_null() {
        assert_eq!(
            changes("ALTER TABLE users RENAME COLUMN full_name TO display_name").unwrap(),
            vec![SchemaChange::RenameColumn {
                table: t("users"),
                from: "full_name".into(),
                to: "display_name".into()
            }]
        );
        assert_eq!(
            changes("ALTER TABLE users RENAME TO members").unwrap(),
            vec![SchemaChange::RenameTable {
                table: t("users"),
                to: "members".into()
            }]
        );
        assert_eq!(
            changes(
                "ALTER TABLE users DROP COLUMN IF EXISTS legacy CASCADE, ALTER email SET NOT NULL"
            )
            .unwrap(),
            vec![
                SchemaChange::DropColumn {
                    table: t("users"),
                    column: "legacy".into(),
                    cascade: true
                },
                SchemaChange::SetNotNull {
                    table: t("users"),
                    column: "email".into()
                }
            ]
        );
    }

    #[test]
    fn row_expressions_read_the_new_row() {
        assert_eq!(
            row_expression("lower(users.name) || '-' || id::text || 'name'", &["users"]).as_deref(),
            Some("lower(NEW.\"name\") || '-' || NEW.\"id\"::text || 'name'")
        );
        assert_eq!(
            row_expression("(\"Price\" / 100.0)::numeric(12, 2)", &["t"]).as_deref(),
            Some("(NEW.\"Price\" / 100.0)::numeric(12, 2)")
        );
        assert_eq!(
            row_expression("gen_random_uuid()", &["t"]).as_deref(),
            Some("gen_random_uuid()")
        );
        assert_eq!(row_expression("(SELECT max(a) FROM o)", &["t"]), None);
        assert_eq!(row_expression("o.a + 1", &["t"]), None);
    }

    #[test]
    fn anything_else_is_not_a_change_to_plan() {
        assert_eq!(
            changes("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)"),
            None
        );
        assert_eq!(
            changes("ALTER TABLE t ALTER c TYPE text COLLATE \"C\""),
            None
        );
        assert_eq!(changes("ALTER INDEX i RENAME TO j"), None);
        assert_eq!(
            changes("ALTER TABLE t ALTER c TYPE bigint, ADD CONSTRAINT k UNIQUE (c)"),
            None
        );
        assert_eq!(changes("CREATE TABLE t (id int)"), None);
    }
}
