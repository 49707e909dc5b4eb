//! The rules: one file per rule, each a [`Rule`] constant whose documentation lives in
//! `docs/rules/<name>.md` (included at compile time, so `pgshift explain` prints exactly that
//! file). Every rule is listed once in [`crate::registry::RULES`].
//!
//! Adding a rule touches its file here, its line in the registry, its documentation and its
//! fixture in `tests/fixtures/` — nothing else.
//!
//! A rule never decides what a statement locks: the checker computes the statement's effects
//! once ([`crate::knowledge::effects`], the prediction `plan`, the guard and `trace` also read)
//! and every rule reads them from [`StatementCheck`] ([`StatementCheck::lock_on`],
//! [`StatementCheck::lock_diagnostic`]), so a finding's lock cannot disagree with them.
//! `tests/rules.rs` enforces both halves: every fixture finding's lock is its statement's
//! effect, and no rule file names a `LockLevel::` except to compare against it.

use std::ops::Range;

use pg_query::NodeEnum;
use pgshift_sql::Statement;

use crate::context::Context;
use crate::finding::{Fix, Severity};
use crate::knowledge::effects::Effect;
use crate::knowledge::lock::LockLevel;
use crate::rewrite::SafeRewrite;
use pgshift_sql::ident::QualifiedName;

pub mod add_primary_key;
pub mod add_unique_constraint;
pub mod adding_field_with_volatile_default;
pub mod adding_required_field;
pub mod adding_rewriting_column;
pub mod attach_partition_without_check;
pub mod ban_char_field;
pub mod ban_drop_column;
pub mod ban_drop_database;
pub mod ban_drop_not_null;
pub mod ban_drop_table;
pub mod ban_truncate;
pub mod ban_truncate_cascade;
pub mod ban_uncommitted_transaction;
pub mod cannot_run_in_transaction;
pub mod changing_column_type;
pub mod cic_corruption_bug;
pub mod concurrently_in_transaction;
pub mod constraint_missing_not_valid;
pub mod create_trigger_lock;
pub mod creating_enum;
pub mod domain_check_constraint;
pub mod drop_cascade;
pub mod drop_constraint;
pub mod duplicate_column;
pub mod enum_value_used_before_commit;
pub mod exclusion_constraint;
pub mod foreign_key_missing_not_valid;
pub mod identifier_too_long;
pub mod index_too_many_columns;
pub mod invalid_directive;
pub mod may_fail_on_existing_data;
pub mod multiple_alter_table;
pub mod opaque_statement;
pub mod prefer_bigint;
pub mod prefer_identity;
pub mod prefer_jsonb;
pub mod prefer_repack;
pub mod prefer_robust_stmts;
pub mod prefer_text_field;
pub mod prefer_timestamptz;
pub mod refresh_matview_without_concurrently;
pub mod renaming_column;
pub mod renaming_enum_value;
pub mod renaming_schema;
pub mod renaming_table;
pub mod require_concurrent_detach_partition;
pub mod require_concurrent_index;
pub mod require_concurrent_index_drop;
pub mod require_concurrent_reindex;
pub mod require_enum_value_ordering;
pub mod require_lock_timeout;
pub mod require_schema_qualified;
pub mod require_statement_timeout;
pub mod set_not_null;
pub mod set_tablespace;
pub mod statements_after_access_exclusive;
pub mod syntax_error;
pub mod table_copy_in_transaction;
pub mod table_rewrite;
pub mod transaction_nesting;
pub mod type_change_unknown_source;
pub mod unbatched_backfill;
pub mod unsupported_on_version;
pub mod unused_allow;

/// A rule: identity, default severity, documentation, and the check.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Stable code: `PGS` + 3 digits. 1xx indexes, 2xx constraints, 3xx columns and types,
    /// 4xx backward compatibility, 5xx locks and transactions, 6xx hygiene, 9xx meta.
    pub code: &'static str,
    /// Stable kebab-case name, used in `pgshift:allow` and configuration.
    pub name: &'static str,
    pub severity: Severity,
    /// Off unless enabled in configuration (`enable = ["name"]`).
    pub opt_in: bool,
    /// One line for `pgshift rules`.
    pub summary: &'static str,
    /// The full documentation (Markdown): `docs/rules/<name>.md`.
    pub doc: &'static str,
    /// Looks at one statement (with the context before it) and reports problems.
    pub check: fn(&StatementCheck<'_>, &mut Vec<Diagnostic>),
    /// Looks at the end of a script (for rules about what never happened).
    pub finish: Option<fn(&ScriptEnd<'_>, &mut Vec<Diagnostic>)>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.code, self.name, self.severity)
    }
}

/// What a rule sees for one statement.
pub struct StatementCheck<'a> {
    pub statement: &'a Statement,
    pub node: &'a NodeEnum,
    pub file_text: &'a str,
    /// The state before this statement.
    pub ctx: &'a Context,
    /// What this statement locks, rewrites and scans.
    pub effects: &'a [Effect],
    /// The mechanical safe replacement, when there is one.
    pub rewrite: Option<&'a SafeRewrite>,
    /// An `UPDATE` marked `-- pgshift:backfill`: `pgshift up` runs it in batches.
    pub marked_backfill: bool,
}

impl StatementCheck<'_> {
    pub fn span(&self) -> Range<usize> {
        self.statement.span.clone()
    }

    /// The statement's SQL text.
    pub fn sql(&self) -> &str {
        self.statement.text(self.file_text)
    }

    /// A diagnostic on the whole statement.
    pub fn diagnostic(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.span(), message)
    }

    /// Whether the table existed before this migration (not created earlier in it).
    pub fn existing(&self, table: &QualifiedName) -> bool {
        !self.ctx.is_new_table(table)
    }

    /// Whether this statement itself creates the table: its lock on a table no other session
    /// can see yet blocks no one. (The context learns of the table only after the statement.)
    pub fn creates(&self, table: &QualifiedName) -> bool {
        match self.node {
            NodeEnum::CreateStmt(c) => c
                .relation
                .as_ref()
                .is_some_and(|rv| QualifiedName::from_range_var(rv).same_object(table)),
            _ => false,
        }
    }

    /// The main effect of the statement (the first table it locks).
    pub fn main_effect(&self) -> Option<&Effect> {
        self.effects.first()
    }

    /// The strongest lock this statement takes on `table`, as its effects give it; `None` when
    /// the effects do not lock it (then a rule about that lock has nothing true to report).
    pub fn lock_on(&self, table: &QualifiedName) -> Option<LockLevel> {
        self.effects
            .iter()
            .filter(|e| e.table.same_object(table))
            .map(|e| e.lock)
            .max()
    }

    /// A diagnostic about what this statement locks: it names `tables` and carries the
    /// strongest lock the statement's effects give on them. The only way a rule gives a finding
    /// a lock.
    pub fn lock_diagnostic<'t>(
        &self,
        message: impl Into<String>,
        tables: impl IntoIterator<Item = &'t QualifiedName>,
    ) -> Diagnostic {
        let mut d = self.diagnostic(message);
        for t in tables {
            d.lock = d.lock.max(self.lock_on(t));
            d = d.table(t);
        }
        d
    }

    /// The safe replacement as help text, and as a fix.
    pub fn with_rewrite(&self, d: Diagnostic, intro: &str) -> Diagnostic {
        match self.rewrite {
            Some(r) => {
                let sql = r.to_sql();
                let replacement = r.replacement();
                // The replacement ends its statements with `;`: it takes the place of the
                // statement's own, or applying it would leave `;;`.
                let mut span = self.span();
                if replacement.ends_with(';')
                    && self.file_text.as_bytes().get(span.end) == Some(&b';')
                {
                    span.end += 1;
                }
                d.help(format!("{intro}\n{sql}"))
                    .fix(Fix { span, replacement })
            }
            None => d,
        }
    }
}

/// What a rule sees at the end of a script.
pub struct ScriptEnd<'a> {
    pub ctx: &'a Context,
    pub file_text: &'a str,
    /// The script's byte range in the file.
    pub range: Range<usize>,
    /// The span of the last statement, if any.
    pub last_statement: Option<Range<usize>>,
    /// The span of the last `BEGIN`, if one is still open.
    pub open_begin: Option<Range<usize>>,
}

/// A rule's report, before it becomes a [`crate::Finding`] (the checker adds the rule's
/// identity, the severity after configuration, the path and line/column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
    pub lock: Option<LockLevel>,
    pub tables: Vec<String>,
    pub fix: Option<Fix>,
    /// Lower than the rule's default severity when this case is less serious (what `DROP
    /// FUNCTION ... CASCADE` can reach is not what `DROP TABLE ... CASCADE` can). A severity
    /// configured for the rule still wins.
    pub severity: Option<Severity>,
    /// The runner executes the statement's safe rewrite instead (see [`Severity::Note`]): the
    /// finding is a note saying what runs, whatever severity is configured for the rule.
    pub runs_as: bool,
}

impl Diagnostic {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
            help: None,
            lock: None,
            tables: Vec::new(),
            fix: None,
            severity: None,
            runs_as: false,
        }
    }
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    pub fn table(mut self, table: &QualifiedName) -> Diagnostic {
        let t = table.to_string();
        if !self.tables.contains(&t) {
            self.tables.push(t);
        }
        self
    }
    pub fn tables<'t>(mut self, tables: impl IntoIterator<Item = &'t QualifiedName>) -> Diagnostic {
        for t in tables {
            self = self.table(t);
        }
        self
    }
    pub fn severity(mut self, severity: Severity) -> Diagnostic {
        self.severity = Some(severity);
        self
    }
    pub fn fix(mut self, fix: Fix) -> Diagnostic {
        self.fix = Some(fix);
        self
    }
}

/// A check that reports nothing, for rules the checker emits itself (syntax errors,
/// directives) or that only look at the end of a script.
pub fn no_statement_check(_: &StatementCheck<'_>, _: &mut Vec<Diagnostic>) {}

/// The table and statement of an `ALTER TABLE`.
pub fn alter_table<'a>(
    s: &'a StatementCheck<'_>,
) -> Option<(QualifiedName, &'a pg_query::protobuf::AlterTableStmt)> {
    match s.node {
        NodeEnum::AlterTableStmt(a) => a
            .relation
            .as_ref()
            .map(|rv| (QualifiedName::from_range_var(rv), a)),
        _ => None,
    }
}

/// The tables a `TRUNCATE` names, and whether it says CASCADE.
pub fn truncated_tables(s: &StatementCheck<'_>) -> Option<(Vec<QualifiedName>, bool)> {
    let NodeEnum::TruncateStmt(t) = s.node else {
        return None;
    };
    let tables = t
        .relations
        .iter()
        .filter_map(|r| match &r.node {
            Some(NodeEnum::RangeVar(rv)) => Some(QualifiedName::from_range_var(rv)),
            _ => None,
        })
        .collect();
    let cascade = t.behavior == pg_query::protobuf::DropBehavior::DropCascade as i32;
    Some((tables, cascade))
}

/// "takes ACCESS EXCLUSIVE on `t`, which blocks all reads and writes".
pub fn lock_sentence(lock: LockLevel, table: &QualifiedName) -> String {
    format!(
        "takes {} on `{}`, which {}",
        lock.sql_name(),
        table,
        lock.blocks_description()
    )
}

/// Column definitions a statement adds: CREATE TABLE columns and ALTER TABLE ADD COLUMN, with
/// their table and whether the table existed before this migration.
pub fn new_columns<'a>(
    s: &'a StatementCheck<'_>,
) -> Vec<(QualifiedName, &'a pg_query::protobuf::ColumnDef, bool)> {
    let mut out = Vec::new();
    match s.node {
        NodeEnum::CreateStmt(c) => {
            if let Some(rv) = &c.relation {
                let t = QualifiedName::from_range_var(rv);
                for e in &c.table_elts {
                    if let Some(NodeEnum::ColumnDef(col)) = &e.node {
                        out.push((t.clone(), col.as_ref(), false));
                    }
                }
            }
        }
        NodeEnum::AlterTableStmt(_) => {
            if let Some((t, a)) = alter_table(s) {
                let existing = s.existing(&t);
                for (kind, cmd) in crate::knowledge::effects::alter_commands(a) {
                    if kind == pg_query::protobuf::AlterTableType::AtAddColumn {
                        if let Some(NodeEnum::ColumnDef(col)) =
                            cmd.def.as_deref().and_then(|d| d.node.as_ref())
                        {
                            out.push((t.clone(), col.as_ref(), existing));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// The declared type of every column a statement defines or retypes (CREATE TABLE columns,
/// ADD COLUMN, ALTER COLUMN ... TYPE), with the column's name: what the type-hygiene rules
/// look at.
pub fn column_types(s: &StatementCheck<'_>) -> Vec<(String, crate::knowledge::casts::TypeSpec)> {
    use crate::knowledge::casts::TypeSpec;
    let mut types: Vec<(String, TypeSpec)> = new_columns(s)
        .into_iter()
        .filter_map(|(_, col, _)| {
            col.type_name
                .as_ref()
                .map(|t| (col.colname.clone(), TypeSpec::from_type_name(t)))
        })
        .collect();
    if let Some((_, a)) = alter_table(s) {
        for (kind, cmd) in crate::knowledge::effects::alter_commands(a) {
            if kind == pg_query::protobuf::AlterTableType::AtAlterColumnType {
                if let Some(NodeEnum::ColumnDef(col)) =
                    cmd.def.as_deref().and_then(|d| d.node.as_ref())
                {
                    if let Some(t) = &col.type_name {
                        types.push((cmd.name.clone(), TypeSpec::from_type_name(t)));
                    }
                }
            }
        }
    }
    types
}

/// What differs between the rules about constraints that build a unique index in place
/// (`ADD UNIQUE`, `ADD PRIMARY KEY`).
pub struct IndexBackedConstraint {
    pub kind: pg_query::protobuf::ConstrType,
    /// "ADD UNIQUE builds its index"; the lock sentence follows.
    pub what: &'static str,
    /// Introduces the executable safe rewrite, when there is one.
    pub rewrite_intro: &'static str,
    /// The manual recipe, with `{table}` for the quoted table name.
    pub recipe: &'static str,
}

/// Reports `ADD CONSTRAINT` (without `USING INDEX`) or `ADD COLUMN ... <constraint>` of
/// `spec.kind` on an existing table: the index builds under ACCESS EXCLUSIVE.
pub fn index_backed_constraint(
    s: &StatementCheck<'_>,
    out: &mut Vec<Diagnostic>,
    spec: &IndexBackedConstraint,
) {
    use crate::knowledge::effects::{
        alter_commands, column_constraints, command_constraint, constraint_type,
    };
    use pg_query::protobuf::AlterTableType;
    let Some((table, a)) = alter_table(s) else {
        return;
    };
    if !s.existing(&table) {
        return;
    }
    for (kind, cmd) in alter_commands(a) {
        let found = match kind {
            AlterTableType::AtAddConstraint => command_constraint(cmd)
                .is_some_and(|c| constraint_type(c) == spec.kind && c.indexname.is_empty()),
            AlterTableType::AtAddColumn => match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::ColumnDef(col)) => {
                    column_constraints(col).any(|c| constraint_type(c) == spec.kind)
                }
                _ => false,
            },
            _ => false,
        };
        if !found {
            continue;
        }
        let Some(lock) = s.lock_on(&table) else {
            continue;
        };
        let d = s.lock_diagnostic(
            format!("{} while it {}", spec.what, lock_sentence(lock, &table)),
            [&table],
        );
        out.push(if s.rewrite.is_some() {
            s.with_rewrite(d, spec.rewrite_intro)
        } else {
            d.help(spec.recipe.replace("{table}", &table.quoted()))
        });
    }
}

/// How to run a statement outside a transaction, in every format pgshift reads.
pub const NO_TRANSACTION_HELP: NoTransactionHelp = NoTransactionHelp;

/// The text of [`NO_TRANSACTION_HELP`]: each format's marker and how to write it come from the
/// format's descriptor ([`pgshift_source::NoTransactionMarker::help`]), in registry order.
pub struct NoTransactionHelp;

impl std::fmt::Display for NoTransactionHelp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Put it in a migration of its own that runs outside a transaction: ")?;
        let markers = pgshift_source::Format::all().iter().filter_map(|format| {
            let descriptor = format.descriptor();
            Some((descriptor.no_transaction.as_ref()?.help, descriptor.title))
        });
        for (i, (help, title)) in markers.enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{help} ({title})")?;
        }
        f.write_str(".")
    }
}
