//! What is known at a given statement of a migration: the server version, whether we are in a
//! transaction and what it already holds, which objects the migration created (new and empty,
//! so rules about locking or scanning them stay quiet), which constraints were added `NOT VALID`
//! and validated since, whether timeouts are set and whether the session's `TimeZone` is UTC.
//!
//! [`Context::observe`] is called after the rules have looked at a statement, so a rule always
//! sees the state *before* its statement.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use pg_query::protobuf::{
    AlterTableType, ConstrType, Constraint, NullTestType, ObjectType, VariableSetKind,
};
use pg_query::NodeEnum;
use pgshift_sql::{transaction_control, TransactionControl};

use crate::knowledge::casts::{is_zero_offset_zone, TypeSpec};
use crate::knowledge::effects::{
    alter_commands, column_constraints, command_constraint, constraint_type, Effect,
};
use crate::knowledge::lock::LockLevel;
use crate::knowledge::version::PgVersion;
use pgshift_sql::ident::{strings, QualifiedName};

/// The largest index, in 8 kB pages (1 MB), that `up` drops with a plain `DROP INDEX` when its
/// table's lock is free at once: dropping it (catalog rows, its few buffers, its file) holds
/// the table's ACCESS EXCLUSIVE lock for about a millisecond, less than a `DROP TABLE`, while
/// `DROP INDEX CONCURRENTLY` costs two more transactions and a wait for every older one.
pub const SMALL_INDEX_PAGES: i32 = 128;

/// Which part of a migration is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// A lock held by the current transaction, and the statement that took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    pub lock: LockLevel,
    pub table: QualifiedName,
    pub span: Range<usize>,
    /// Statements run since the lock was taken.
    pub statements_after: usize,
}

/// The analysis state while walking a migration set, statement by statement.
#[derive(Debug, Clone)]
pub struct Context {
    pub version: PgVersion,
    /// The runner sets `lock_timeout` and `statement_timeout` itself (pgshift's does).
    pub runner_sets_timeouts: bool,
    /// The runner executes pgshift's safe rewrites (`pgshift up` without `--exact`): a finding
    /// whose fix is the rewrite is a note saying what runs.
    pub runner_rewrites: bool,
    pub direction: Direction,
    /// The runner wraps the current script in a transaction.
    pub runner_transaction: bool,
    /// The runner's transaction is the implicit one PostgreSQL gives a query string of several
    /// statements (golang-migrate, Prisma): a `BEGIN` in it turns it into an explicit block
    /// without any warning, and a `COMMIT` ends it while the rest of the string starts another
    /// (checked on 15 with a multi-statement `psql -c`).
    pub implicit_transaction: bool,
    /// `BEGIN`s seen and not yet committed.
    pub explicit_depth: u32,
    /// Statement index in the current script.
    pub statement_index: usize,
    /// Statements run so far in the current transaction (0 right after BEGIN).
    pub statements_in_transaction: usize,
    /// The strongest lock the current transaction holds on a table that existed before.
    pub held: Option<HeldLock>,
    pub lock_timeout_set: bool,
    pub statement_timeout_set: bool,
    /// `SET timezone` / `SET TIME ZONE` chose a fixed zero offset (UTC) for the session.
    session_timezone_utc: bool,
    /// `SET LOCAL timezone`: whether it is UTC, until the transaction ends.
    local_timezone_utc: Option<bool>,
    /// Tables altered so far in the current transaction, with the span of the first ALTER.
    pub altered: Vec<(QualifiedName, Range<usize>)>,
    /// Data changed so far in the current transaction (an UPDATE/DELETE/INSERT ... SELECT).
    pub data_changed: bool,
    /// A DDL statement ran in the current transaction.
    pub ddl_in_transaction: bool,
    /// Enum values added (`ALTER TYPE ... ADD VALUE`) in the current transaction, as (type,
    /// value): PostgreSQL refuses to use them until the transaction commits.
    pub enum_values_added: Vec<(QualifiedName, String)>,

    // Per script: objects created by this migration, new and empty.
    created_tables: HashSet<QualifiedName>,
    /// Of those, the ones created with `IF NOT EXISTS`: they may have existed before.
    created_if_missing: HashSet<QualifiedName>,
    created_types: HashSet<QualifiedName>,
    /// Tables earlier migrations of the same run created (the runner knows which could not
    /// have been there before), by the names they have now: no code used them before the run,
    /// so nothing is there for a safe rewrite to protect (see [`Context::is_unused_table`]).
    made_in_run: HashSet<QualifiedName>,
    /// The database held no table of the user's when the run started: every table is one
    /// the run made.
    all_made_in_run: bool,

    // Across the whole set, in order: what earlier statements established.
    index_tables: HashMap<String, QualifiedName>,
    concurrent_unique_indexes: HashSet<String>,
    column_types: HashMap<(String, String), TypeSpec>,
    not_null_checks: HashMap<(String, String), String>,
    validated_not_null: HashSet<(String, String)>,
    foreign_keys: HashMap<(String, String), QualifiedName>,
    /// Functions created in this set: lowercase name → whether VOLATILE (the default).
    function_volatile: HashMap<String, bool>,
    /// Functions created in this set that return `trigger`, lowercase.
    trigger_functions: HashSet<String>,
    not_valid: HashSet<(String, String)>,
    validated_checks: HashSet<String>,
    /// Partitioned tables, from the live catalog or from the set's `CREATE TABLE ... PARTITION
    /// BY / PARTITION OF` and `ATTACH PARTITION`: table name → its partitions.
    partitions: HashMap<String, Vec<PartitionOf>>,
    /// Indexes of partitioned tables learnt from the live catalog, by name.
    partitioned_indexes: HashSet<String>,
    /// Indexes the live catalog shows small enough to drop in about a millisecond.
    small_indexes: HashSet<String>,
    /// Relation names the live catalog holds near partitioned tables (each starts with the
    /// name of the table or of a partition), and the names the set's statements gave: a name
    /// chosen for a partition's index must not be one of them.
    taken_names: HashSet<String>,
}

/// One partition of a partitioned table, as the live catalog has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOf {
    pub name: QualifiedName,
    /// The partitioned table it is a partition of.
    pub parent: QualifiedName,
    /// It holds rows (it is not partitioned again).
    pub leaf: bool,
}

impl Context {
    /// A context for a whole migration set. `runner_sets_timeouts` is true for pgshift's own
    /// runner, which sets `lock_timeout` and `statement_timeout` around every migration.
    pub fn new(version: PgVersion, runner_sets_timeouts: bool) -> Context {
        Context {
            version,
            runner_sets_timeouts,
            runner_rewrites: false,
            direction: Direction::Up,
            runner_transaction: false,
            implicit_transaction: false,
            explicit_depth: 0,
            statement_index: 0,
            statements_in_transaction: 0,
            held: None,
            lock_timeout_set: false,
            statement_timeout_set: false,
            session_timezone_utc: false,
            local_timezone_utc: None,
            altered: Vec::new(),
            data_changed: false,
            ddl_in_transaction: false,
            enum_values_added: Vec::new(),
            created_tables: HashSet::new(),
            created_if_missing: HashSet::new(),
            created_types: HashSet::new(),
            made_in_run: HashSet::new(),
            all_made_in_run: false,
            index_tables: HashMap::new(),
            concurrent_unique_indexes: HashSet::new(),
            column_types: HashMap::new(),
            not_null_checks: HashMap::new(),
            validated_not_null: HashSet::new(),
            foreign_keys: HashMap::new(),
            function_volatile: HashMap::new(),
            trigger_functions: HashSet::new(),
            not_valid: HashSet::new(),
            validated_checks: HashSet::new(),
            partitions: HashMap::new(),
            partitioned_indexes: HashSet::new(),
            small_indexes: HashSet::new(),
            taken_names: HashSet::new(),
        }
    }

    /// Starts a script (the up or down part of one migration): a new session, nothing held,
    /// nothing created yet. Knowledge from earlier migrations of the set is kept.
    pub fn start_script(&mut self, runner_transaction: bool, direction: Direction) {
        self.direction = direction;
        self.runner_transaction = runner_transaction;
        self.implicit_transaction = false;
        self.explicit_depth = 0;
        self.statement_index = 0;
        self.statements_in_transaction = 0;
        self.held = None;
        self.lock_timeout_set = false;
        self.statement_timeout_set = false;
        self.session_timezone_utc = false;
        self.local_timezone_utc = None;
        self.altered.clear();
        self.data_changed = false;
        self.ddl_in_transaction = false;
        self.enum_values_added.clear();
        self.created_tables.clear();
        self.created_if_missing.clear();
        self.created_types.clear();
    }

    /// Whether the next statement runs inside a transaction block.
    pub fn in_transaction(&self) -> bool {
        self.runner_transaction || self.explicit_depth > 0
    }

    /// Whether `lock_timeout` is in force (set in the script, or by the runner).
    pub fn has_lock_timeout(&self) -> bool {
        self.lock_timeout_set || self.runner_sets_timeouts
    }

    pub fn has_statement_timeout(&self) -> bool {
        self.statement_timeout_set || self.runner_sets_timeouts
    }

    /// Whether the session's `TimeZone` is known to be a fixed zero offset: set so earlier in
    /// the script (`SET timezone = 'UTC'`, `SET TIME ZONE 'UTC'`, or `SET LOCAL` in the current
    /// transaction). The server's default is not known, so without a SET this is false.
    pub fn timezone_is_utc(&self) -> bool {
        self.local_timezone_utc.unwrap_or(self.session_timezone_utc)
    }

    /// Whether a function created earlier in the set is VOLATILE (`None`: not created in the
    /// set). `name` is the function name as called, possibly schema-qualified.
    pub fn function_is_volatile(&self, name: &[String]) -> Option<bool> {
        let last = name.last()?.to_ascii_lowercase();
        self.function_volatile.get(&last).copied()
    }

    /// Whether a function created earlier in the set returns `trigger`.
    pub fn is_trigger_function(&self, name: &[String]) -> bool {
        name.last()
            .is_some_and(|n| self.trigger_functions.contains(&n.to_ascii_lowercase()))
    }

    /// The tables the foreign keys of `table` (added in this set and not dropped since)
    /// reference.
    pub fn referenced_by(&self, table: &QualifiedName) -> Vec<&QualifiedName> {
        let mut out: Vec<&QualifiedName> = self
            .foreign_keys
            .iter()
            .filter(|((t, _), _)| *t == table.name)
            .map(|(_, target)| target)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.same_object(b));
        out
    }

    /// The tables with a foreign key (added in this set and not dropped since) referencing
    /// `table`.
    pub fn referencing(&self, table: &QualifiedName) -> Vec<QualifiedName> {
        let mut out: Vec<QualifiedName> = self
            .foreign_keys
            .iter()
            .filter(|(_, target)| target.same_object(table))
            .map(|((t, _), _)| QualifiedName::new(None, t))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup();
        out
    }

    /// Whether the table was created earlier in this migration: new, empty and invisible to
    /// other sessions until commit, so locking or scanning it hurts no one.
    pub fn is_new_table(&self, table: &QualifiedName) -> bool {
        self.created_tables.iter().any(|t| t.same_object(table))
    }

    /// Whether the table was created earlier in this migration by a statement that cannot
    /// have found it there already (not `IF NOT EXISTS`): no other session can have used it.
    pub fn is_table_created_here(&self, table: &QualifiedName) -> bool {
        self.is_new_table(table) && !self.created_if_missing.iter().any(|t| t.same_object(table))
    }

    /// Tells the context that earlier migrations of this run created `tables`, none of which
    /// existed before the run.
    pub fn assume_made_in_run<'a>(&mut self, tables: impl IntoIterator<Item = &'a QualifiedName>) {
        self.made_in_run.extend(tables.into_iter().cloned());
    }

    /// Tells the context that the database held no table of the user's when the run started
    /// (a fresh database): whatever table a statement names, the run made it.
    pub fn assume_all_made_in_run(&mut self) {
        self.all_made_in_run = true;
    }

    /// Whether the database held no table of the user's when the run started.
    pub fn all_made_in_run(&self) -> bool {
        self.all_made_in_run
    }

    /// The tables earlier migrations of the run made, as named after this script's renames.
    pub fn tables_made_in_run(&self) -> impl Iterator<Item = &QualifiedName> {
        self.made_in_run.iter()
    }

    /// Whether no code can have used the table yet: created earlier in this migration, or by
    /// an earlier migration of the same run. A safe rewrite exists to keep the application's
    /// reads and writes of a table going; such a table has none, so its statements run as
    /// written. (Its rows may not be few: a migration of the run may have filled it. That is
    /// why this is not [`Context::is_new_table`], which also means "empty".) A table of the
    /// run is matched by exactly the name it was made under: `users` and `app.users` may be
    /// two tables, and a false match would skip a rewrite on a table in use.
    pub fn is_unused_table(&self, table: &QualifiedName) -> bool {
        self.all_made_in_run || self.is_new_table(table) || self.made_in_run.contains(table)
    }

    /// Whether `index` is an index of a table no code can have used yet (see
    /// [`Context::is_unused_table`]): known when the set created the index or the catalog
    /// named its table, or when every table is one the run made.
    pub fn is_index_of_unused_table(&self, index: &QualifiedName) -> bool {
        self.all_made_in_run
            || self
                .table_of_index(index)
                .is_some_and(|t| self.is_unused_table(t))
    }

    /// The tables this script created that cannot have existed before it (not
    /// `IF NOT EXISTS`): no session can have used them before the run that created them, so
    /// the runner's lock-queue guard leaves them alone for the rest of that run.
    pub fn tables_created(&self) -> impl Iterator<Item = &QualifiedName> {
        self.created_tables
            .iter()
            .filter(|t| !self.created_if_missing.contains(*t))
    }

    /// The tables this script created `IF NOT EXISTS`: whether each is new, only the catalog
    /// as it was before the run can tell.
    pub fn tables_created_if_missing(&self) -> impl Iterator<Item = &QualifiedName> {
        self.created_if_missing.iter()
    }

    pub fn is_new_type(&self, name: &QualifiedName) -> bool {
        self.created_types.iter().any(|t| t.same_object(name))
    }

    /// The table an index belongs to, when the index was created in this migration set.
    pub fn table_of_index(&self, index: &QualifiedName) -> Option<&QualifiedName> {
        self.index_tables.get(&index.name)
    }

    /// Whether an index created in this set is on a table created in this migration.
    pub fn is_new_index(&self, index: &QualifiedName) -> bool {
        self.table_of_index(index)
            .is_some_and(|t| self.is_new_table(t))
    }

    /// Whether `CREATE UNIQUE INDEX CONCURRENTLY <index>` ran earlier in the set.
    pub fn has_concurrent_unique_index(&self, index: &str) -> bool {
        self.concurrent_unique_indexes.contains(index)
    }

    /// The column's type, when the set created or changed it earlier.
    /// Records a column's current type learnt elsewhere (the live catalog, for `pgshift plan`),
    /// so type changes on it are judged exactly instead of guessed.
    pub fn assume_column_type(&mut self, table: &QualifiedName, column: &str, ty: TypeSpec) {
        self.column_types
            .insert((table.name.clone(), column.to_string()), ty);
    }

    pub fn column_type(&self, table: &QualifiedName, column: &str) -> Option<&TypeSpec> {
        self.column_types
            .get(&(table.name.clone(), column.to_string()))
    }

    /// Whether a validated `CHECK (column IS NOT NULL)` exists on the table.
    pub fn has_validated_not_null_check(&self, table: &QualifiedName, column: &str) -> bool {
        self.validated_not_null
            .contains(&(table.name.clone(), column.to_string()))
    }

    /// The table a foreign key (added in this set) references.
    pub fn foreign_key_target(
        &self,
        table: &QualifiedName,
        constraint: &str,
    ) -> Option<&QualifiedName> {
        self.foreign_keys
            .get(&(table.name.clone(), constraint.to_string()))
    }

    /// Whether the constraint was added `NOT VALID` earlier in the set (and not yet validated).
    pub fn is_not_valid(&self, table: &QualifiedName, constraint: &str) -> bool {
        self.not_valid
            .contains(&(table.name.clone(), constraint.to_string()))
    }

    /// Records that `table` is a partitioned table with these partitions (parents before
    /// their children), learnt from the live catalog: its safe rewrites build indexes per
    /// partition, since PostgreSQL builds none on a partitioned table concurrently.
    pub fn assume_partitions(&mut self, table: &QualifiedName, partitions: Vec<PartitionOf>) {
        self.partitions.insert(table.name.clone(), partitions);
    }

    /// The partitions of `table`, when it is known to be a partitioned table.
    pub fn partitions(&self, table: &QualifiedName) -> Option<&[PartitionOf]> {
        self.partitions.get(&table.name).map(Vec::as_slice)
    }

    /// What a `CREATE TABLE` says about partitioning: `PARTITION BY` makes a partitioned
    /// table (no partitions yet), `PARTITION OF p` a partition of `p` (and of the partitioned
    /// tables `p` is a partition of).
    fn learn_partitioning(&mut self, table: &QualifiedName, c: &pg_query::protobuf::CreateStmt) {
        let partitioned = c.partspec.is_some();
        if partitioned {
            self.partitions.entry(table.name.clone()).or_default();
        }
        if c.partbound.is_none() {
            return;
        }
        let Some(parent) = c.inh_relations.first().and_then(|n| match &n.node {
            Some(NodeEnum::RangeVar(rv)) => Some(QualifiedName::from_range_var(rv)),
            _ => None,
        }) else {
            return;
        };
        self.add_partition(&parent, table.clone(), !partitioned);
    }

    /// `part` is a partition of `parent` (by `PARTITION OF` or `ATTACH PARTITION`): a
    /// partition of every partitioned table `parent` is in, `parent` included.
    fn add_partition(&mut self, parent: &QualifiedName, part: QualifiedName, leaf: bool) {
        let part = PartitionOf {
            name: part,
            parent: parent.clone(),
            leaf,
        };
        for (root, parts) in self.partitions.iter_mut() {
            if *root == parent.name || parts.iter().any(|p| p.name.name == parent.name) {
                parts.push(part.clone());
            }
        }
    }

    /// Records relation names that exist (see `taken_names`).
    pub fn assume_taken_names(&mut self, names: impl IntoIterator<Item = String>) {
        self.taken_names.extend(names);
    }

    /// Whether a relation named `name` exists already (as far as this context knows).
    pub fn name_taken(&self, name: &str) -> bool {
        self.taken_names.contains(name) || self.index_tables.contains_key(name)
    }

    /// Records that `index` is a partitioned table's index (which PostgreSQL cannot drop
    /// concurrently), learnt from the live catalog.
    pub fn assume_partitioned_index(&mut self, index: &QualifiedName) {
        self.partitioned_indexes.insert(index.name.clone());
    }

    pub fn is_partitioned_index(&self, index: &QualifiedName) -> bool {
        self.partitioned_indexes.contains(&index.name)
    }

    /// Records, from the live catalog, the table an existing index belongs to and whether
    /// the index is small (see [`Context::is_small_index`]).
    pub fn assume_live_index(&mut self, index: &QualifiedName, table: QualifiedName, small: bool) {
        self.index_tables.insert(index.name.clone(), table);
        if small {
            self.small_indexes.insert(index.name.clone());
        } else {
            self.small_indexes.remove(&index.name);
        }
    }

    /// Whether the live catalog showed `index` small: at most [`SMALL_INDEX_PAGES`] pages, so
    /// that a plain `DROP INDEX` holds its table's lock for about a millisecond.
    pub fn is_small_index(&self, index: &QualifiedName) -> bool {
        self.small_indexes.contains(&index.name)
    }

    /// Whether the table has a validated CHECK added in this set (for ATTACH PARTITION, which
    /// skips its scan when a CHECK proves the partition bound).
    pub fn has_partition_check(&self, table: &QualifiedName) -> bool {
        self.validated_checks.contains(&table.name) || self.is_new_table(table)
    }

    /// Records what a statement did. Call after the rules have seen it.
    pub fn observe(&mut self, node: &NodeEnum, effects: &[Effect], span: Range<usize>) {
        self.statement_index += 1;
        if let Some(tc) = transaction_control(node) {
            match tc {
                TransactionControl::Begin => {
                    self.explicit_depth += 1;
                    self.statements_in_transaction = 0;
                }
                TransactionControl::Commit | TransactionControl::Rollback => {
                    // COMMIT inside the runner's transaction ends that transaction too; in a
                    // query string the statements after it run in a new implicit one.
                    self.explicit_depth = 0;
                    self.runner_transaction = self.implicit_transaction;
                    self.end_transaction();
                }
                TransactionControl::Other => {}
            }
            return;
        }
        let in_tx = self.in_transaction();
        // Learn first: a CREATE TABLE's lock on its own new table holds nothing that matters.
        self.learn(node, span.clone());
        if in_tx {
            self.statements_in_transaction += 1;
            if !matches!(node, NodeEnum::VariableSetStmt(_)) {
                if let Some(h) = &mut self.held {
                    h.statements_after += 1;
                }
            }
            for e in effects {
                if self.is_new_table(&e.table) || self.is_new_index(&e.table) {
                    continue;
                }
                if self.held.as_ref().is_none_or(|h| e.lock > h.lock) {
                    self.held = Some(HeldLock {
                        lock: e.lock,
                        table: e.table.clone(),
                        span: span.clone(),
                        statements_after: 0,
                    });
                }
            }
        }
        if !in_tx {
            // Autocommit: every statement is its own transaction.
            self.end_transaction();
        }
    }

    fn end_transaction(&mut self) {
        self.local_timezone_utc = None;
        self.held = None;
        self.statements_in_transaction = 0;
        self.altered.clear();
        self.data_changed = false;
        self.ddl_in_transaction = false;
        self.enum_values_added.clear();
    }

    fn learn(&mut self, node: &NodeEnum, span: Range<usize>) {
        match node {
            NodeEnum::VariableSetStmt(v) => {
                let name = v.name.to_ascii_lowercase();
                let kind = VariableSetKind::try_from(v.kind).unwrap_or(VariableSetKind::Undefined);
                if name == "timezone" {
                    // RESET / DEFAULT / LOCAL: the server's default, which is not known here.
                    let utc = kind == VariableSetKind::VarSetValue && setting_is_utc(v);
                    if v.is_local {
                        self.local_timezone_utc = Some(utc);
                    } else {
                        self.session_timezone_utc = utc;
                        self.local_timezone_utc = None;
                    }
                    return;
                }
                let on = match kind {
                    VariableSetKind::VarSetValue => !setting_is_zero(v),
                    VariableSetKind::VarReset | VariableSetKind::VarSetDefault => false,
                    VariableSetKind::VarResetAll => {
                        self.lock_timeout_set = false;
                        self.statement_timeout_set = false;
                        self.session_timezone_utc = false;
                        self.local_timezone_utc = None;
                        return;
                    }
                    _ => return,
                };
                match name.as_str() {
                    "lock_timeout" => self.lock_timeout_set = on,
                    "statement_timeout" => self.statement_timeout_set = on,
                    _ => {}
                }
            }
            NodeEnum::CreateStmt(c) => {
                self.ddl_in_transaction = true;
                let Some(rv) = &c.relation else { return };
                let table = QualifiedName::from_range_var(rv);
                for elt in &c.table_elts {
                    match &elt.node {
                        Some(NodeEnum::ColumnDef(col)) => {
                            if let Some(t) = &col.type_name {
                                self.column_types
                                    .insert((table.name.clone(), col.colname.clone()), TypeSpec::from_type_name(t));
                            }
                            for k in column_constraints(col) {
                                self.learn_constraint(&table, k, Some(&col.colname));
                            }
                        }
                        Some(NodeEnum::Constraint(k)) => self.learn_constraint(&table, k, None),
                        _ => {}
                    }
                }
                self.learn_partitioning(&table, c);
                if c.if_not_exists {
                    self.created_if_missing.insert(table.clone());
                }
                self.created_tables.insert(table);
            }
            NodeEnum::CreateTableAsStmt(c) => {
                if let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    let table = QualifiedName::from_range_var(rv);
                    if c.if_not_exists {
                        self.created_if_missing.insert(table.clone());
                    }
                    self.created_tables.insert(table);
                }
            }
            // A table made earlier in the run keeps being one under its new name; a table
            // from before the run renamed to a name the run made is one from before.
            NodeEnum::RenameStmt(r) if r.rename_type == ObjectType::ObjectTable as i32 => {
                self.ddl_in_transaction = true;
                if let Some(rv) = &r.relation {
                    let old = QualifiedName::from_range_var(rv);
                    let new = QualifiedName {
                        schema: old.schema.clone(),
                        name: r.newname.clone(),
                    };
                    if self.made_in_run.remove(&old) {
                        self.made_in_run.insert(new);
                    } else {
                        self.made_in_run.remove(&new);
                    }
                }
            }
            NodeEnum::CreateEnumStmt(e) => {
                if let Some(n) = QualifiedName::from_names(&e.type_name) {
                    self.created_types.insert(n);
                }
            }
            NodeEnum::AlterEnumStmt(e) if e.old_val.is_empty() && !e.new_val.is_empty() => {
                // Kept until the transaction ends (autocommit ends it right after this).
                if let Some(n) = QualifiedName::from_names(&e.type_name) {
                    self.enum_values_added.push((n, e.new_val.clone()));
                }
            }
            NodeEnum::CompositeTypeStmt(c) => {
                if let Some(rv) = &c.typevar {
                    self.created_types.insert(QualifiedName::from_range_var(rv));
                }
            }
            NodeEnum::IndexStmt(i) => {
                self.ddl_in_transaction = true;
                if let Some(rv) = &i.relation {
                    if !i.idxname.is_empty() {
                        self.index_tables.insert(i.idxname.clone(), QualifiedName::from_range_var(rv));
                        if i.unique && i.concurrent {
                            self.concurrent_unique_indexes.insert(i.idxname.clone());
                        }
                    }
                }
            }
            NodeEnum::AlterTableStmt(a) => {
                self.ddl_in_transaction = true;
                let Some(rv) = &a.relation else { return };
                let table = QualifiedName::from_range_var(rv);
                if !self.altered.iter().any(|(t, _)| t.same_object(&table)) {
                    self.altered.push((table.clone(), span));
                }
                for (kind, cmd) in alter_commands(a) {
                    match kind {
                        AlterTableType::AtAttachPartition => {
                            if let Some(NodeEnum::PartitionCmd(p)) =
                                cmd.def.as_deref().and_then(|d| d.node.as_ref())
                            {
                                if let Some(rv) = &p.name {
                                    let part = QualifiedName::from_range_var(rv);
                                    let partitioned = self.partitions.contains_key(&part.name);
                                    self.add_partition(&table, part, !partitioned);
                                }
                            }
                        }
                        AlterTableType::AtAddColumn => {
                            if let Some(NodeEnum::ColumnDef(col)) = cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                                if let Some(t) = &col.type_name {
                                    self.column_types
                                        .insert((table.name.clone(), col.colname.clone()), TypeSpec::from_type_name(t));
                                }
                                for k in column_constraints(col) {
                                    self.learn_constraint(&table, k, Some(&col.colname));
                                }
                            }
                        }
                        AlterTableType::AtAlterColumnType => {
                            if let Some(NodeEnum::ColumnDef(col)) = cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                                if let Some(t) = &col.type_name {
                                    self.column_types
                                        .insert((table.name.clone(), cmd.name.clone()), TypeSpec::from_type_name(t));
                                }
                            }
                        }
                        AlterTableType::AtDropColumn => {
                            self.column_types.remove(&(table.name.clone(), cmd.name.clone()));
                        }
                        AlterTableType::AtDropConstraint => {
                            self.foreign_keys.remove(&(table.name.clone(), cmd.name.clone()));
                        }
                        AlterTableType::AtAddConstraint => {
                            if let Some(k) = command_constraint(cmd) {
                                self.learn_constraint(&table, k, None);
                            }
                        }
                        AlterTableType::AtValidateConstraint => {
                            let key = (table.name.clone(), cmd.name.clone());
                            self.not_valid.remove(&key);
                            if let Some(col) = self.not_null_checks.get(&key) {
                                self.validated_not_null.insert((table.name.clone(), col.clone()));
                            }
                            self.validated_checks.insert(table.name.clone());
                        }
                        _ => {}
                    }
                }
            }
            NodeEnum::UpdateStmt(_) | NodeEnum::DeleteStmt(_) | NodeEnum::MergeStmt(_) => self.data_changed = true,
            NodeEnum::InsertStmt(i) if i.select_stmt.as_ref().is_some_and(|s| {
                matches!(&s.node, Some(NodeEnum::SelectStmt(sel)) if !sel.from_clause.is_empty())
            }) =>
            {
                self.data_changed = true
            }
            NodeEnum::DropStmt(d) => {
                self.ddl_in_transaction = true;
                if d.remove_type == ObjectType::ObjectTable as i32 {
                    // The dropped tables' foreign keys go with them, and so (CASCADE) do the
                    // foreign keys referencing them. A name the run made, once dropped, may be
                    // given to a table from before.
                    for name in d.objects.iter().filter_map(|o| match &o.node {
                        Some(NodeEnum::List(l)) => QualifiedName::from_names(&l.items),
                        _ => None,
                    }) {
                        self.made_in_run.remove(&name);
                        self.foreign_keys
                            .retain(|(t, _), target| *t != name.name && !target.same_object(&name));
                    }
                }
            }
            NodeEnum::CreateFunctionStmt(f) => {
                if let Some(name) = strings(&f.funcname).last() {
                    let name = name.to_ascii_lowercase();
                    let returns = f.return_type.as_ref().map(|t| strings(&t.names)).unwrap_or_default();
                    if returns.last().is_some_and(|r| r == "trigger" || r == "event_trigger") {
                        self.trigger_functions.insert(name.clone());
                    } else {
                        self.trigger_functions.remove(&name);
                    }
                    self.function_volatile.insert(name, declared_volatile(&f.options));
                }
            }
            NodeEnum::RenameStmt(_) | NodeEnum::CreateTrigStmt(_) | NodeEnum::AlterObjectSchemaStmt(_) => {
                self.ddl_in_transaction = true
            }
            _ => {}
        }
    }

    fn learn_constraint(&mut self, table: &QualifiedName, k: &Constraint, column: Option<&str>) {
        let key = (table.name.clone(), k.conname.clone());
        match constraint_type(k) {
            ConstrType::ConstrCheck => {
                if let Some(col) = k.raw_expr.as_deref().and_then(is_not_null_test) {
                    if k.skip_validation {
                        self.not_null_checks.insert(key.clone(), col);
                    } else {
                        self.validated_not_null.insert((table.name.clone(), col));
                    }
                }
                if k.skip_validation {
                    self.not_valid.insert(key);
                } else {
                    self.validated_checks.insert(table.name.clone());
                }
            }
            ConstrType::ConstrForeign => {
                // An unnamed foreign key gets PostgreSQL's name: `<table>_<columns>_fkey`.
                let key = if k.conname.is_empty() {
                    let columns = match column {
                        Some(c) => vec![c.to_string()],
                        None => strings(&k.fk_attrs),
                    };
                    let name = format!("{}_{}_fkey", table.name, columns.join("_"));
                    if columns.is_empty() || name.len() > pgshift_sql::ident::MAX_IDENTIFIER_BYTES {
                        return;
                    }
                    (table.name.clone(), name)
                } else {
                    key
                };
                if let Some(rv) = &k.pktable {
                    self.foreign_keys
                        .insert(key.clone(), QualifiedName::from_range_var(rv));
                }
                if k.skip_validation {
                    self.not_valid.insert(key);
                }
            }
            ConstrType::ConstrNotnull | ConstrType::ConstrPrimary => {
                // A table constraint (`ADD PRIMARY KEY (a, b)`, 18's `ADD CONSTRAINT n NOT
                // NULL col`) names its columns; NOT VALID proves nothing yet.
                let columns = match column {
                    Some(c) => vec![c.to_string()],
                    None => strings(&k.keys),
                };
                if !k.skip_validation {
                    for col in columns {
                        self.validated_not_null.insert((table.name.clone(), col));
                    }
                }
            }
            _ => {}
        }
    }
}

/// `SET x = 0` / `'0'` / `'0s'` turns a timeout off.
fn setting_is_zero(v: &pg_query::protobuf::VariableSetStmt) -> bool {
    v.args.iter().all(|a| match &a.node {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(pg_query::protobuf::a_const::Val::Ival(i)) => i.ival == 0,
            Some(pg_query::protobuf::a_const::Val::Sval(s)) => {
                let t = s.sval.trim();
                t.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim() == "0"
            }
            _ => false,
        },
        _ => false,
    })
}

/// Whether `SET timezone` / `SET TIME ZONE` sets a fixed zero offset: `'UTC'`, `utc`, `0`,
/// `INTERVAL '+00:00' HOUR TO MINUTE` (the list is `knowledge::casts`').
fn setting_is_utc(v: &pg_query::protobuf::VariableSetStmt) -> bool {
    let [arg] = v.args.as_slice() else {
        return false;
    };
    let arg = match &arg.node {
        Some(NodeEnum::TypeCast(c)) => c.arg.as_deref().and_then(|a| a.node.as_ref()),
        other => other.as_ref(),
    };
    let Some(NodeEnum::AConst(c)) = arg else {
        return false;
    };
    match &c.val {
        Some(pg_query::protobuf::a_const::Val::Sval(s)) => is_zero_offset_zone(&s.sval),
        Some(pg_query::protobuf::a_const::Val::Ival(i)) => i.ival == 0,
        Some(pg_query::protobuf::a_const::Val::Fval(f)) => is_zero_offset_zone(&f.fval),
        _ => false,
    }
}

/// A `CREATE FUNCTION`'s volatility: VOLATILE unless it says IMMUTABLE or STABLE.
fn declared_volatile(options: &[pg_query::protobuf::Node]) -> bool {
    !options.iter().any(|o| match &o.node {
        Some(NodeEnum::DefElem(d)) if d.defname == "volatility" => {
            matches!(d.arg.as_deref().and_then(|a| a.node.as_ref()), Some(NodeEnum::String(s)) if s.sval != "volatile")
        }
        _ => false,
    })
}

/// `col IS NOT NULL` → `col`.
pub fn is_not_null_test(expr: &pg_query::protobuf::Node) -> Option<String> {
    match &expr.node {
        Some(NodeEnum::NullTest(t)) if t.nulltesttype == NullTestType::IsNotNull as i32 => {
            match t.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::ColumnRef(c)) => strings(&c.fields).last().cloned(),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::effects::statement_effects;

    fn walk(ctx: &mut Context, sql: &str) {
        let parsed = pgshift_sql::parse(sql);
        for s in &parsed.statements {
            let e = statement_effects(&s.node, ctx);
            ctx.observe(&s.node, &e, s.span.clone());
        }
    }

    #[test]
    fn tracks_transactions_and_the_strongest_lock() {
        let mut ctx = Context::new(PgVersion::DEFAULT, false);
        ctx.start_script(false, Direction::Up);
        walk(&mut ctx, "BEGIN; CREATE INDEX i ON t (a);");
        assert!(ctx.in_transaction());
        assert_eq!(ctx.held.as_ref().map(|h| h.lock), Some(LockLevel::Share));
        walk(&mut ctx, "ALTER TABLE t ADD COLUMN b int;");
        assert_eq!(
            ctx.held.as_ref().map(|h| h.lock),
            Some(LockLevel::AccessExclusive)
        );
        walk(&mut ctx, "COMMIT;");
        assert!(!ctx.in_transaction());
        assert_eq!(ctx.held, None);
    }

    #[test]
    fn new_tables_hold_nothing_that_matters() {
        let mut ctx = Context::new(PgVersion::DEFAULT, false);
        ctx.start_script(true, Direction::Up);
        walk(
            &mut ctx,
            "CREATE TABLE n (id int); CREATE INDEX ni ON n (id); ALTER TABLE n ADD COLUMN x int;",
        );
        assert!(ctx.is_new_table(&QualifiedName::new(None, "n")));
        assert_eq!(ctx.held, None);
    }

    #[test]
    fn a_table_the_run_made_is_followed_through_renames_and_drops() {
        let mut ctx = Context::new(PgVersion::DEFAULT, false);
        let t = |n: &str| QualifiedName::new(None, n);
        ctx.assume_made_in_run(&[t("made"), t("gone")]);
        ctx.start_script(true, Direction::Up);
        walk(&mut ctx, "ALTER TABLE made RENAME TO renamed;");
        assert!(ctx.is_unused_table(&t("renamed")));
        assert!(!ctx.is_unused_table(&t("made")));
        // A table from before the run takes a name the run made: it is in use.
        walk(&mut ctx, "DROP TABLE gone; ALTER TABLE old RENAME TO gone;");
        assert!(!ctx.is_unused_table(&t("gone")));
        walk(&mut ctx, "ALTER TABLE old2 RENAME TO renamed;");
        assert!(!ctx.is_unused_table(&t("renamed")));
        assert!(!ctx.is_unused_table(&t("app_users")));
        assert!(!ctx.is_unused_table(&QualifiedName::new(Some("app"), "renamed")));
    }

    #[test]
    fn remembers_validated_not_null_checks_and_timeouts() {
        let mut ctx = Context::new(PgVersion::DEFAULT, false);
        ctx.start_script(true, Direction::Up);
        let t = QualifiedName::new(None, "t");
        walk(&mut ctx, "SET lock_timeout = '2s'; ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;");
        assert!(ctx.has_lock_timeout());
        assert!(!ctx.has_validated_not_null_check(&t, "a"));
        assert!(ctx.is_not_valid(&t, "c"));
        ctx.start_script(true, Direction::Up);
        assert!(!ctx.has_lock_timeout(), "a new script is a new session");
        walk(&mut ctx, "ALTER TABLE t VALIDATE CONSTRAINT c;");
        assert!(ctx.has_validated_not_null_check(&t, "a"));
        walk(&mut ctx, "SET lock_timeout = 0;");
        assert!(!ctx.has_lock_timeout());
    }
}
