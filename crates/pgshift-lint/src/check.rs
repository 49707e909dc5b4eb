//! Running the rules over scripts and migration sets, with configuration and suppressions.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use pgshift_source::{Format, MigrationSet, Script, SqlStream, TransactionModel};
use pgshift_sql::{
    parse_directive, redact_secrets, walk_range, Directive, LineIndex, StatementWalk,
};
use serde::Deserialize;

use crate::context::{Context, Direction};
use crate::finding::{bounded_help, CheckedFile, Finding, Report, Severity};
use crate::knowledge::effects::statement_effects;
use crate::knowledge::version::PgVersion;
use crate::registry::{find, RULES};
use crate::rewrite::safe_rewrite;
use crate::rules::{Diagnostic, Rule, ScriptEnd, StatementCheck};
use crate::suppress::{foreign, Suppressed};
use pgshift_sql::ident::QualifiedName;

/// Configuration of `pgshift check`: the `[check]` table of `pgshift.toml`, overridden by
/// command-line flags.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CheckOptions {
    /// The PostgreSQL version the migrations will run on (`pg_version = "15"`).
    pub pg_version: PgVersion,
    /// Whether the runner sets `lock_timeout`/`statement_timeout` itself. `None`: decided by
    /// the format (pgshift's runner does, other tools' runners don't).
    pub runner_sets_timeouts: Option<bool>,
    /// Opt-in rules to turn on (names or codes; `"all"` turns on every rule).
    pub enable: Vec<String>,
    /// Rules to turn off (names or codes).
    pub disable: Vec<String>,
    /// Severity overrides: `severity = { prefer-robust-stmts = "warning" }`.
    pub severity: BTreeMap<String, Severity>,
    /// Paths not checked (globs: `*`, `**`, `?`).
    pub exclude: Vec<String>,
    /// Honour `squawk-ignore`, `eugene: ignore`, `atlas:nolint`, `safety-assured` markers.
    pub honour_foreign_markers: bool,
    /// Whether the runner applies pgshift's safe rewrites (`pgshift up` without `--exact`).
    /// Then a finding the rewrite makes safe is a note saying what will run. `None`: decided
    /// by the format (pgshift's runner does; other tools' runners don't).
    pub runner_rewrites: Option<bool>,
    /// A version whose migrations, and every older one, are history: `pgshift verify`'s
    /// analyzer gates only the newer ones.
    pub baseline: Option<String>,
    /// Threads that parse a set's files ahead of the checks (`None`: the machine's
    /// parallelism). The report is the same whatever the number. Not a configuration key.
    #[serde(skip)]
    pub threads: Option<usize>,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            pg_version: PgVersion::DEFAULT,
            runner_sets_timeouts: None,
            enable: Vec::new(),
            disable: Vec::new(),
            severity: BTreeMap::new(),
            exclude: Vec::new(),
            honour_foreign_markers: true,
            runner_rewrites: None,
            baseline: None,
            threads: None,
        }
    }
}

/// Configuration that names things pgshift does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(
        "unknown rule `{name}` in `{setting}`; `pgshift rules` lists every rule name and code"
    )]
    UnknownRule { setting: &'static str, name: String },
}

impl CheckOptions {
    /// Checks that every rule named in the configuration exists.
    pub fn validate(&self) -> Result<(), CheckError> {
        let lists = [("enable", &self.enable), ("disable", &self.disable)];
        for (setting, names) in lists {
            for n in names {
                if n != "all" && find(n).is_none() {
                    return Err(CheckError::UnknownRule {
                        setting,
                        name: n.clone(),
                    });
                }
            }
        }
        for n in self.severity.keys() {
            if find(n).is_none() {
                return Err(CheckError::UnknownRule {
                    setting: "severity",
                    name: n.clone(),
                });
            }
        }
        Ok(())
    }

    /// Whether a rule runs under this configuration.
    pub fn is_enabled(&self, rule: &Rule) -> bool {
        let named = |list: &[String]| {
            list.iter().any(|n| {
                n == "all" || n.eq_ignore_ascii_case(rule.name) || n.eq_ignore_ascii_case(rule.code)
            })
        };
        if named(&self.disable) {
            return false;
        }
        !rule.opt_in || named(&self.enable)
    }

    /// The rule's severity after overrides.
    pub fn severity_of(&self, rule: &Rule) -> Severity {
        self.configured_severity(rule).unwrap_or(rule.severity)
    }

    /// The severity `pgshift.toml` or the command line gives the rule, if any.
    fn configured_severity(&self, rule: &Rule) -> Option<Severity> {
        self.severity
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(rule.name) || k.eq_ignore_ascii_case(rule.code))
            .map(|(_, s)| *s)
    }

    /// Whether a path is excluded.
    pub fn is_excluded(&self, path: &Path) -> bool {
        let p = path.to_string_lossy().replace('\\', "/");
        let p = p.trim_start_matches("./");
        self.exclude
            .iter()
            .any(|g| glob_match(g.trim_start_matches("./"), p))
    }
}

/// Checks every migration of a set, up and down parts, in order, each with the transaction
/// behaviour of the set's format.
pub fn check_set(set: &MigrationSet, options: &CheckOptions) -> Report {
    let mut report = Report::default();
    check_set_each(set, options, &mut |file| report.add(file));
    report
}

/// [`check_set`], handing each checked file to `each` as soon as it is checked, in order,
/// instead of keeping them: a report written as it goes holds one file's findings at a time.
pub fn check_set_each(
    set: &MigrationSet,
    options: &CheckOptions,
    each: &mut dyn FnMut(CheckedFile),
) {
    let sets_timeouts = options
        .runner_sets_timeouts
        .unwrap_or(set.format == Format::Pgshift);
    let mut ctx = Context::new(options.pg_version, sets_timeouts);
    ctx.runner_rewrites = options
        .runner_rewrites
        .unwrap_or(set.format == Format::Pgshift);
    let wrapping = |no_transaction: bool| wrapping_of(set.format, no_transaction);
    let batched = batches_pending_migrations(set.format);
    // The scripts in the order they are checked: each migration's up, then its down.
    let mut scripts: Vec<(&Script, Direction)> = Vec::new();
    for m in set.migrations.iter().chain(&set.repeatable) {
        if !options.is_excluded(&m.up.path) {
            scripts.push((&m.up, Direction::Up));
        }
        if let Some(down) = m.down.as_ref().filter(|d| !options.is_excluded(&d.path)) {
            scripts.push((down, Direction::Down));
        }
    }
    // What the open transaction carries into the next up script when the tool runs all pending
    // migrations in one transaction: the enum values added in it, still unusable.
    let mut carried: Vec<(QualifiedName, String)> = Vec::new();
    // Parsing needs no context: other threads parse the scripts ahead (and free their parse
    // trees after), while each is checked here, in order, with what the scripts before it left
    // in the context.
    let threads = options
        .threads
        .unwrap_or_else(crate::ahead::default_threads);
    crate::ahead::in_order(
        &scripts,
        threads,
        |(script, _)| walk_script(script),
        |i, walk| {
            let (script, direction) = scripts[i];
            let findings = match direction {
                Direction::Up => {
                    let up_wrapping = wrapping(script.no_transaction);
                    let findings = check_walked(
                        &mut ctx,
                        script,
                        walk,
                        up_wrapping,
                        Direction::Up,
                        options,
                        std::mem::take(&mut carried),
                    );
                    if batched && up_wrapping != Wrapping::None {
                        carried = ctx.enum_values_added.clone();
                    }
                    findings
                }
                Direction::Down => check_walked(
                    &mut ctx,
                    script,
                    walk,
                    wrapping(script.no_transaction),
                    Direction::Down,
                    options,
                    Vec::new(),
                ),
            };
            each(checked_file(script, findings));
        },
    );
}

/// A script's findings, as the report holds them.
fn checked_file(script: &Script, findings: Vec<Finding>) -> CheckedFile {
    CheckedFile {
        path: script.path.clone(),
        text: script.file_text.clone(),
        findings,
    }
}

/// Checks SQL read from standard input ([`pgshift_source::read_stream`]). A plain stream is one
/// migration, checked as a plain folder's. A stream another tool printed (Alembic's `--sql`,
/// Django's `sqlmigrate`) is checked a migration at a time, in order, with what the tool's own
/// lines mean: a table created by an earlier revision exists in a later one, and a part that
/// starts inside the tool's `BEGIN;` runs in that transaction (the author did not nest one).
/// The tool runs the SQL, not pgshift: no safe rewrite, no timeouts set by the runner, unless
/// `options` says otherwise.
pub fn check_stream(stream: &SqlStream, options: &CheckOptions) -> Report {
    let mut report = Report::default();
    check_stream_each(stream, options, &mut |file| report.add(file));
    report
}

/// [`check_stream`], handing each checked part to `each` as soon as it is checked.
pub fn check_stream_each(
    stream: &SqlStream,
    options: &CheckOptions,
    each: &mut dyn FnMut(CheckedFile),
) {
    if stream.tool.is_none() {
        let set = MigrationSet {
            format: Format::Plain,
            dir: std::path::PathBuf::from("."),
            migrations: stream.parts.iter().map(|p| p.migration.clone()).collect(),
            repeatable: Vec::new(),
            skipped: Vec::new(),
        };
        return check_set_each(&set, options, each);
    }
    let mut ctx = Context::new(
        options.pg_version,
        options.runner_sets_timeouts.unwrap_or(false),
    );
    ctx.runner_rewrites = options.runner_rewrites.unwrap_or(false);
    for part in &stream.parts {
        let script = &part.migration.up;
        if options.is_excluded(&script.path) {
            continue;
        }
        let wrapping = if part.in_tool_transaction {
            Wrapping::OpenedByTool
        } else {
            Wrapping::None
        };
        let findings = check_wrapped(
            &mut ctx,
            script,
            wrapping,
            Direction::Up,
            options,
            Vec::new(),
        );
        each(checked_file(script, findings));
    }
}

/// Checks one file of a set as checking the whole set checks it: every migration is walked, so
/// what earlier migrations created informs the context, and only `file`'s findings are kept
/// (`pgshift check FILE` agrees with `pgshift check FOLDER` about the file).
pub fn check_file_in_set(set: &MigrationSet, file: &Path, options: &CheckOptions) -> Report {
    let mut report = Report::default();
    check_file_in_set_each(set, file, options, &mut |checked| report.add(checked));
    report
}

/// [`check_file_in_set`], handing each of `file`'s checked scripts to `each` as soon as it is
/// checked.
pub fn check_file_in_set_each(
    set: &MigrationSet,
    file: &Path,
    options: &CheckOptions,
    each: &mut dyn FnMut(CheckedFile),
) {
    check_set_each(set, options, &mut |checked| {
        if checked.path == file {
            each(checked);
        }
    });
}

/// Checks one script on its own. `wrapped_in_transaction`: the runner runs it inside a
/// transaction block.
pub fn check_script(
    script: &Script,
    wrapped_in_transaction: bool,
    options: &CheckOptions,
) -> Vec<Finding> {
    let mut ctx = Context::new(
        options.pg_version,
        options.runner_sets_timeouts.unwrap_or(false),
    );
    check_in(
        &mut ctx,
        script,
        wrapped_in_transaction,
        Direction::Up,
        options,
    )
}

/// Checks one script as the runner of `format` runs it (its transaction model, its marker
/// read into [`Script::no_transaction`]).
pub fn check_script_as(script: &Script, format: Format, options: &CheckOptions) -> Vec<Finding> {
    let mut ctx = Context::new(
        options.pg_version,
        options
            .runner_sets_timeouts
            .unwrap_or(format == Format::Pgshift),
    );
    ctx.runner_rewrites = options.runner_rewrites.unwrap_or(format == Format::Pgshift);
    check_in_as(&mut ctx, script, format, Direction::Up, options)
}

/// [`check_script_as`] with an existing context (knowledge from earlier migrations of a set).
pub fn check_in_as(
    ctx: &mut Context,
    script: &Script,
    format: Format,
    direction: Direction,
    options: &CheckOptions,
) -> Vec<Finding> {
    let wrapping = wrapping_of(format, script.no_transaction);
    check_wrapped(ctx, script, wrapping, direction, options, Vec::new())
}

/// How the runner of `format` runs a script, from the format's transaction model.
fn wrapping_of(format: Format, no_transaction: bool) -> Wrapping {
    if no_transaction || !format.wraps_in_transaction() {
        return Wrapping::None;
    }
    match format.descriptor().transaction {
        TransactionModel::PgshiftRunner => Wrapping::PgshiftRunner,
        TransactionModel::OneQueryString => Wrapping::ImplicitUnlessSingle,
        TransactionModel::Wrapped => Wrapping::Transaction,
    }
}

/// How the runner runs one script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapping {
    /// Inside `BEGIN` ... `COMMIT`.
    Transaction,
    /// Statement by statement, each in its own transaction.
    None,
    /// As one query string (golang-migrate, Prisma): PostgreSQL runs several statements as
    /// one implicit transaction, a single statement outside any transaction block.
    ImplicitUnlessSingle,
    /// pgshift's runner: one transaction, unless a top-level statement cannot run in one;
    /// then statement by statement (so CONCURRENTLY needs no marker).
    PgshiftRunner,
    /// Inside a transaction the tool printing the stream opened with a `BEGIN;` of its own,
    /// outside the script: the script's `COMMIT` ends it, a `BEGIN` after that opens another
    /// (Alembic's `autocommit_block()`).
    OpenedByTool,
}

/// Checks a script with an existing context (knowledge from earlier migrations of a set).
pub fn check_in(
    ctx: &mut Context,
    script: &Script,
    wrapped: bool,
    direction: Direction,
    options: &CheckOptions,
) -> Vec<Finding> {
    let wrapping = if wrapped {
        Wrapping::Transaction
    } else {
        Wrapping::None
    };
    check_wrapped(ctx, script, wrapping, direction, options, Vec::new())
}

/// A finding the runner's safe rewrite answers, as what will run: `pgshift up` executes the
/// rewrite, so the statement as written is not what reaches the server.
/// The findings about statements `pgshift up` plans as an online (expand/contract) change when
/// it can (`docs/online.md`).
pub const ONLINE_RULES: &[&str] = &[
    "renaming-column",
    "renaming-table",
    "changing-column-type",
    "ban-drop-column",
    "adding-field-with-volatile-default",
    "renaming-enum-value",
];

/// The findings about the statements of a fill (`UPDATE` + `SET NOT NULL`) or a cleanup
/// (`UPDATE` + CHECK) that `pgshift up` plans as one online change.
const PAIRED_RULES: &[&str] = &["unbatched-backfill", "may-fail-on-existing-data"];

/// What a statement is to the pairs `pgshift up` plans online.
#[derive(Debug, Clone, PartialEq)]
enum Pairing {
    /// An unmarked `UPDATE` of a table: the columns it assigns, and whether applying it again
    /// to a row it fixed gives the same row (its values read only the row, no column it
    /// writes): only such an UPDATE is a cleanup `pgshift up` keeps true with a trigger.
    Update {
        table: String,
        columns: Vec<String>,
        repeatable: bool,
    },
    /// `ALTER TABLE t ALTER c SET NOT NULL`.
    NotNull {
        table: String,
        column: String,
    },
    /// `ADD CONSTRAINT ... CHECK` (validated): the columns it reads.
    Check {
        table: String,
        reads: Vec<String>,
    },
    Other,
}

fn pairing(
    stmt: &pgshift_sql::Statement,
    text: &str,
    rewrite: Option<&crate::rewrite::SafeRewrite>,
    marked: bool,
) -> Pairing {
    use pg_query::protobuf::AlterTableType;
    use pg_query::NodeEnum;
    match &stmt.node {
        NodeEnum::UpdateStmt(_) if !marked => {
            return match pgshift_sql::update_parts(stmt.text(text), &stmt.node) {
                Ok(u) => {
                    let mut names = vec![u.table.name.as_str()];
                    names.extend(u.alias.as_deref());
                    let writes: Vec<String> = u
                        .assignments
                        .iter()
                        .map(|a| format!("NEW.{}", pgshift_sql::ident::quote_ident(&a.column)))
                        .collect();
                    let repeatable = u.assignments.iter().all(|a| {
                        pgshift_sql::change::row_expression(&a.expression, &names)
                            .is_some_and(|v| writes.iter().all(|w| !v.contains(w.as_str())))
                    });
                    Pairing::Update {
                        table: u.table.name.clone(),
                        columns: u.assignments.iter().map(|a| a.column.clone()).collect(),
                        repeatable,
                    }
                }
                Err(_) => Pairing::Other,
            };
        }
        NodeEnum::AlterTableStmt(a) => {
            if let ([cmd], Some(rv)) = (a.cmds.as_slice(), a.relation.as_ref()) {
                if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                    if cmd.subtype == AlterTableType::AtSetNotNull as i32 {
                        return Pairing::NotNull {
                            table: rv.relname.clone(),
                            column: cmd.name.clone(),
                        };
                    }
                }
            }
        }
        _ => return Pairing::Other,
    }
    if let Some(crate::rewrite::ExistingRows::Check { table, expr, .. }) =
        rewrite.and_then(|r| r.existing_rows.as_ref())
    {
        let row =
            pgshift_sql::change::row_expression(expr, &[table.name.as_str()]).unwrap_or_default();
        return Pairing::Check {
            table: table.name.clone(),
            reads: row
                .split("NEW.")
                .skip(1)
                .filter_map(|r| r.strip_prefix('"')?.split('"').next().map(str::to_owned))
                .collect(),
        };
    }
    Pairing::Other
}

/// The statements of each pair: an `UPDATE` assigning only `c` and a later `SET NOT NULL` of
/// `c`; an `UPDATE` and a CHECK reading a column it assigns that is the next statement to
/// name the table.
fn paired_statements(shapes: &[(Pairing, Vec<String>)]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, (shape, _)) in shapes.iter().enumerate() {
        let Pairing::Update {
            table,
            columns,
            repeatable,
        } = shape
        else {
            continue;
        };
        let fill = shapes.iter().enumerate().skip(i + 1).find(|(_, (s, _))| {
            matches!(s, Pairing::NotNull { table: t, column }
                if t == table && columns.len() == 1 && columns[0] == *column)
        });
        let next = shapes
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, (_, tables))| tables.contains(table));
        let cleanup = next.filter(|(_, (s, _))| {
            *repeatable
                && matches!(s, Pairing::Check { table: t, reads } if t == table && reads.iter().any(|r| columns.contains(r)))
        });
        for (j, _) in fill.into_iter().chain(cleanup) {
            out.extend([i, j]);
        }
    }
    out
}

/// Says how `pgshift up` runs it. The severity stays: whether the change can be planned online
/// depends on the live catalog (a view reading the column, a foreign key, ...), which `check`
/// does not see; `pgshift plan` shows the phases, or why it runs as written.
fn online_change(mut d: Diagnostic) -> Diagnostic {
    let how = "`pgshift up` runs this as an online change when it can: expand now (the new schema beside the old, kept in step by a trigger, backfilled), contract after the deploy (`pgshift complete`); `pgshift plan` shows the phases, or why it runs as written";
    d.help = Some(match d.help.take() {
        Some(h) => format!("{h}\n{how}"),
        None => how.to_string(),
    });
    d
}

fn runs_as(mut d: Diagnostic, rewrite: &crate::rewrite::SafeRewrite) -> Diagnostic {
    let steps: Vec<&str> = rewrite.steps.iter().map(|s| s.sql.as_str()).collect();
    d.message = format!(
        "runs as `{}` (`pgshift up`'s safe rewrite; `--exact` or another runner runs it as written: {})",
        steps.join("; "),
        d.message
    );
    d.help = Some(format!(
        "Nothing to change: `pgshift up` runs these steps instead, and announces them before they run:\n{}\n`pgshift up --exact`, or another tool's runner, runs the statement as written.",
        rewrite.to_sql()
    ));
    d.runs_as = true;
    d
}

/// Whether the tool's runner applies all pending migrations in one transaction by default:
/// drizzle-orm's migrator, and node-pg-migrate (`singleTransaction` defaults to true). A fact
/// about the format that belongs in its `FormatDescriptor` (`TransactionModel::Wrapped` covers
/// both one transaction per migration and one for all); kept here until the descriptor says it.
fn batches_pending_migrations(format: Format) -> bool {
    matches!(format, Format::Drizzle | Format::NodePgMigrate)
}

fn check_wrapped(
    ctx: &mut Context,
    script: &Script,
    wrapping: Wrapping,
    direction: Direction,
    options: &CheckOptions,
    // Enum values added earlier in the same transaction, by an earlier migration of a batch.
    carried: Vec<(QualifiedName, String)>,
) -> Vec<Finding> {
    let walk = walk_script(script);
    check_walked(ctx, script, &walk, wrapping, direction, options, carried)
}

/// A script's statements, parsed (the part of checking that needs no context).
fn walk_script(script: &Script) -> StatementWalk<'_> {
    let text: &str = &script.file_text;
    // Statements are walked one at a time: a large file's parse trees are never all alive.
    walk_range(text, clamp(text, script.range.clone()))
}

/// [`check_wrapped`] with the script already parsed.
fn check_walked(
    ctx: &mut Context,
    script: &Script,
    walk: &StatementWalk<'_>,
    wrapping: Wrapping,
    direction: Direction,
    options: &CheckOptions,
    carried: Vec<(QualifiedName, String)>,
) -> Vec<Finding> {
    let text: &str = &script.file_text;
    let range = clamp(text, script.range.clone());
    let parsed = &walk.script;
    let statement_count = walk.spans.len();
    let wrapped = match wrapping {
        Wrapping::Transaction => true,
        Wrapping::None | Wrapping::OpenedByTool => false,
        Wrapping::ImplicitUnlessSingle => statement_count > 1,
        // pgshift runs a script statement by statement when one statement cannot run in a
        // transaction block, or when an UPDATE is marked to run as a backfill.
        Wrapping::PgshiftRunner => {
            walk.forbidden_in_transaction.is_none()
                && !parsed
                    .comments
                    .iter()
                    .any(|c| parse_directive(c.text(text)) == Some(Directive::Backfill))
        }
    };
    ctx.start_script(wrapped, direction);
    if wrapping == Wrapping::OpenedByTool {
        ctx.explicit_depth = 1;
    }
    if wrapped {
        ctx.enum_values_added = carried;
    }
    // A query string of several statements is PostgreSQL's implicit transaction: BEGIN and
    // COMMIT in the file change it rather than nest in it.
    ctx.implicit_transaction = wrapped && wrapping == Wrapping::ImplicitUnlessSingle;
    let rules: Vec<&Rule> = RULES
        .iter()
        .copied()
        .filter(|r| options.is_enabled(r))
        .collect();
    let mut out: Vec<(&'static Rule, Diagnostic)> = Vec::new();

    // Directives, once for the whole script.
    let mut allows: Vec<Allow> = Vec::new();
    let mut file_suppressed: Vec<Suppressed> = Vec::new();
    let mut assured: Vec<Range<usize>> = Vec::new();
    let mut online_off = false;
    let mut assured_open: Option<usize> = None;
    let mut statement_of_comment = vec![None; parsed.comments.len()];
    for i in 0..statement_count {
        for pos in walk.comment_indices_for(text, i, range.start) {
            statement_of_comment[pos] = Some(i);
        }
    }
    let mut foreign_by_statement: Vec<Vec<Suppressed>> = vec![Vec::new(); statement_count];
    let mut backfill_marked = vec![false; statement_count];
    let mut backfill_comments: Vec<Vec<Range<usize>>> = vec![Vec::new(); statement_count];
    let mut rename_comments: Vec<Vec<Range<usize>>> = vec![Vec::new(); statement_count];
    for (ci, comment) in parsed.comments.iter().enumerate() {
        let Some(d) = parse_directive(comment.text(text)) else {
            continue;
        };
        match d {
            Directive::Invalid { message, .. } => push(
                &mut out,
                "invalid-directive",
                Diagnostic::new(comment.span.clone(), message),
            ),
            Directive::Allow {
                rules: names,
                reason,
            } => {
                let mut known = Vec::new();
                for n in &names {
                    match find(n) {
                        Some(r) => known.push(r.name),
                        None => push(
                            &mut out,
                            "invalid-directive",
                            Diagnostic::new(
                                comment.span.clone(),
                                format!("`pgshift:allow` names unknown rule `{n}`"),
                            )
                            .help("`pgshift rules` lists every rule name and code"),
                        ),
                    }
                }
                allows.push(Allow {
                    rules: known,
                    statement: statement_of_comment[ci],
                    span: comment.span.clone(),
                    used: false,
                    _reason: reason,
                });
            }
            Directive::ForeignIgnore { tool, rules: names } if options.honour_foreign_markers => {
                if let Some(i) = statement_of_comment[ci] {
                    foreign_by_statement[i].push(foreign(tool, &names));
                }
            }
            Directive::ForeignIgnoreFile { tool, rules: names }
                if options.honour_foreign_markers =>
            {
                file_suppressed.push(foreign(tool, &names))
            }
            // Checked against the statement when the walk reaches it.
            Directive::Backfill => match statement_of_comment[ci] {
                Some(i) => backfill_comments[i].push(comment.span.clone()),
                None => push(
                    &mut out,
                    "invalid-directive",
                    Diagnostic::new(
                        comment.span.clone(),
                        "`pgshift:backfill` must come right before the UPDATE it marks",
                    ),
                ),
            },
            Directive::Rename(_) => match statement_of_comment[ci] {
                Some(i) => rename_comments[i].push(comment.span.clone()),
                None => push(
                    &mut out,
                    "invalid-directive",
                    Diagnostic::new(
                        comment.span.clone(),
                        "`pgshift:rename view|copy` must come right before the RENAME COLUMN it marks",
                    ),
                ),
            },
            Directive::OnlineOff => online_off = true,
            Directive::SafetyAssuredStart if options.honour_foreign_markers => {
                assured_open = Some(comment.span.end)
            }
            Directive::SafetyAssuredEnd if options.honour_foreign_markers => {
                if let Some(start) = assured_open.take() {
                    assured.push(start..comment.span.start);
                }
            }
            _ => {}
        }
    }
    if let Some(start) = assured_open {
        assured.push(start..range.end);
    }
    let online = ctx.runner_rewrites && !online_off;

    // Statements, in order, each seen with the context before it.
    let mut open_begin: Option<Range<usize>> = None;
    // The statement each diagnostic of `out` is about; none for those of the directives.
    let mut per_statement: Vec<Option<usize>> = vec![None; out.len()];
    // What each statement is to the online planner's pairs (a fill or cleanup `UPDATE`, the
    // `SET NOT NULL` or CHECK it prepares), and the tables it names.
    let mut shapes: Vec<(Pairing, Vec<String>)> = Vec::new();
    walk.for_each(|i, stmt| {
        for span in &backfill_comments[i] {
            match pgshift_sql::update_parts(stmt.text(text), &stmt.node) {
                Ok(_) => backfill_marked[i] = true,
                Err(reason) => push(
                    &mut out,
                    "invalid-directive",
                    Diagnostic::new(
                        span.clone(),
                        format!("`pgshift:backfill` marks a statement that cannot run as a backfill: {reason}"),
                    ),
                ),
            }
        }
        if !pgshift_sql::renames_column(&stmt.node) {
            for span in &rename_comments[i] {
                push(
                    &mut out,
                    "invalid-directive",
                    Diagnostic::new(
                        span.clone(),
                        "`pgshift:rename view|copy` marks a statement that does not rename a column: put it right before the `ALTER TABLE ... RENAME COLUMN`",
                    ),
                );
            }
        }
        per_statement.resize(out.len(), None);
        let effects = statement_effects(&stmt.node, ctx);
        let rewrite = safe_rewrite(stmt, text, ctx);
        if online {
            shapes.resize(i, (Pairing::Other, Vec::new()));
            shapes.push((
                pairing(stmt, text, rewrite.as_ref(), backfill_marked[i]),
                effects.iter().map(|e| e.table.name.clone()).collect(),
            ));
        }
        let input = StatementCheck {
            statement: stmt,
            node: &stmt.node,
            file_text: text,
            ctx,
            effects: &effects,
            rewrite: rewrite.as_ref(),
            marked_backfill: backfill_marked[i],
        };
        for rule in &rules {
            let mut diags = Vec::new();
            (rule.check)(&input, &mut diags);
            for mut d in diags {
                if let (true, Some(r), Some(fix)) = (ctx.runner_rewrites, &rewrite, &d.fix) {
                    if fix.replacement == r.replacement() {
                        d = runs_as(d, r);
                    }
                }
                if online && !d.runs_as && ONLINE_RULES.contains(&rule.name) {
                    d = online_change(d);
                }
                out.push((rule, d));
                per_statement.push(Some(i));
            }
        }
        per_statement.resize(out.len(), None);
        match pgshift_sql::transaction_control(&stmt.node) {
            Some(pgshift_sql::TransactionControl::Begin) => open_begin = Some(stmt.span.clone()),
            Some(
                pgshift_sql::TransactionControl::Commit | pgshift_sql::TransactionControl::Rollback,
            ) => open_begin = None,
            _ => {}
        }
        ctx.observe(&stmt.node, &effects, stmt.span.clone());
    });
    // An UPDATE that `up` runs as the backfill of an online change (a fill before SET NOT
    // NULL, a cleanup before a CHECK), and that SET NOT NULL or CHECK: their findings say so.
    if online {
        let paired = paired_statements(&shapes);
        for (k, (rule, d)) in out.iter_mut().enumerate() {
            let in_pair = per_statement
                .get(k)
                .copied()
                .flatten()
                .is_some_and(|i| paired.contains(&i));
            if in_pair && PAIRED_RULES.contains(&rule.name) && !d.runs_as {
                *d = online_change(std::mem::replace(d, Diagnostic::new(0..0, String::new())));
            }
        }
    }
    let end = ScriptEnd {
        ctx,
        file_text: text,
        range: range.clone(),
        last_statement: walk.spans.last().cloned(),
        open_begin,
    };
    for rule in &rules {
        if let Some(finish) = rule.finish {
            let mut diags = Vec::new();
            finish(&end, &mut diags);
            out.extend(diags.into_iter().map(|d| (*rule, d)));
        }
    }
    for e in &parsed.errors {
        let end = e.statement.end.max(e.offset + 1).min(text.len());
        push(
            &mut out,
            "syntax-error",
            Diagnostic::new(e.offset.min(text.len())..end, e.message.clone())
                .help("PostgreSQL rejects this statement; the rest of the file was still checked"),
        );
    }
    per_statement.resize(out.len(), None);

    // Suppressions.
    let mut kept = Vec::new();
    for (k, (rule, d)) in out.into_iter().enumerate() {
        let stmt = per_statement.get(k).copied().flatten();
        if file_suppressed.iter().any(|s| s.covers(rule.name))
            || assured
                .iter()
                .any(|a| a.start <= d.span.start && d.span.start < a.end)
        {
            continue;
        }
        if let Some(i) = stmt {
            if foreign_by_statement[i].iter().any(|s| s.covers(rule.name)) {
                continue;
            }
            if let Some(a) = allows
                .iter_mut()
                .find(|a| a.statement == Some(i) && a.rules.contains(&rule.name))
            {
                a.used = true;
                continue;
            }
        }
        kept.push((rule, d));
    }
    for a in allows.iter().filter(|a| !a.used && !a.rules.is_empty()) {
        let what = match a.statement {
            Some(_) => "the statement it is attached to has no such finding",
            None => "it is not attached to any statement (put it on the line before the statement)",
        };
        push(
            &mut kept,
            "unused-allow",
            Diagnostic::new(
                a.span.clone(),
                format!(
                    "`pgshift:allow {}` suppresses nothing: {what}",
                    a.rules.join(",")
                ),
            )
            .help("remove the comment, or move it right above the statement it is about"),
        );
    }

    let index = LineIndex::new(text);
    let mut findings: Vec<Finding> = kept
        .into_iter()
        .filter(|(rule, _)| options.is_enabled(rule))
        .map(|(rule, d)| {
            let span = clamp(text, d.span);
            Finding {
                rule: rule.name,
                code: rule.code,
                severity: if d.runs_as {
                    Severity::Note
                } else {
                    options
                        .configured_severity(rule)
                        .or(d.severity)
                        .unwrap_or(rule.severity)
                },
                path: script.path.clone(),
                start: index.line_col(text, span.start),
                end: index.line_col(text, span.end),
                span,
                // A finding quotes SQL; a password in it must reach no report. A fix that holds
                // one is dropped rather than shown with the password replaced (applying that
                // would set the password to `***`).
                message: redact_secrets(&d.message).into_owned(),
                help: d
                    .help
                    .map(|h| bounded_help(redact_secrets(&h).into_owned())),
                lock: d.lock,
                tables: d.tables,
                fix: d
                    .fix
                    .filter(|f| matches!(redact_secrets(&f.replacement), Cow::Borrowed(_)))
                    .and_then(|f| f.bounded(text)),
            }
        })
        .collect();
    findings.sort_by(|a, b| (a.span.start, a.code).cmp(&(b.span.start, b.code)));
    findings
}

struct Allow {
    rules: Vec<&'static str>,
    statement: Option<usize>,
    span: Range<usize>,
    used: bool,
    _reason: String,
}

fn push(out: &mut Vec<(&'static Rule, Diagnostic)>, rule: &str, d: Diagnostic) {
    if let Some(r) = find(rule) {
        out.push((r, d));
    }
}

fn clamp(text: &str, r: Range<usize>) -> Range<usize> {
    let end = pgshift_sql::lines::floor_char_boundary(text, r.end.min(text.len()));
    let start = pgshift_sql::lines::floor_char_boundary(text, r.start.min(end));
    start..end
}

/// `*` matches within a path segment, `**` across segments, `?` one character.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) if rest.first() == Some(&b'*') => {
                let rest = &rest[1..];
                let rest = rest.strip_prefix(b"/").unwrap_or(rest);
                (0..=s.len()).any(|i| go(rest, &s[i..]))
            }
            Some((b'*', rest)) => {
                for i in 0..=s.len() {
                    if go(rest, &s[i..]) {
                        return true;
                    }
                    if s.get(i) == Some(&b'/') {
                        break;
                    }
                }
                false
            }
            Some((b'?', rest)) => s.first().is_some_and(|c| *c != b'/') && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
        || (!pattern.contains('/')
            && path
                .rsplit('/')
                .next()
                .is_some_and(|f| go(pattern.as_bytes(), f.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("migrations/old/**", "migrations/old/1_a.sql"));
        assert!(glob_match("**/*.down.sql", "db/m/1_a.down.sql"));
        assert!(
            glob_match("*_legacy.sql", "migrations/3_legacy.sql"),
            "a bare pattern matches file names"
        );
        assert!(!glob_match("migrations/*.sql", "migrations/sub/x.sql"));
        assert!(glob_match("m/?.sql", "m/1.sql"));
    }

    #[test]
    fn configuration_reads_the_check_table() {
        let o: CheckOptions = match serde_json::from_str(
            r#"{"pg_version": "13", "disable": ["prefer-robust-stmts"], "enable": ["PGS602"], "severity": {"require-lock-timeout": "error"}}"#,
        ) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(o.validate(), Ok(()));
        assert_eq!(o.pg_version.major, 13);
        let robust = find("prefer-robust-stmts").map(|r| o.is_enabled(r));
        assert_eq!(robust, Some(false));
        assert_eq!(
            find("require-schema-qualified").map(|r| o.is_enabled(r)),
            Some(true)
        );
        assert_eq!(
            find("require-lock-timeout").map(|r| o.severity_of(r)),
            Some(Severity::Error)
        );
        let bad = CheckOptions {
            disable: vec!["no-such-rule".into()],
            ..CheckOptions::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(CheckError::UnknownRule { .. })
        ));
    }

    /// A directive's own diagnostics (an allow naming unknown rules) come before every
    /// statement's findings: they must not shift which statement an allow applies to.
    #[test]
    fn an_allow_covers_its_own_statement_after_an_invalid_directive() {
        let m = pgshift_source::from_text(
            "1_idx.sql",
            "-- pgshift:allow no-such-1 no-such-2 no-such-3 no-such-4 no-such-5 no-such-6 typos\nCREATE INDEX a_idx ON t (a);\n\
             -- pgshift:allow require-concurrent-index reviewed, 40 rows\nCREATE INDEX b_idx ON t (b);\n",
        );
        let findings = check_script_as(&m.up, Format::Plain, &CheckOptions::default());
        let rules_at = |needle: &str| -> Vec<&str> {
            let at = m.up.file_text.find(needle).unwrap_or(usize::MAX);
            findings
                .iter()
                .filter(|f| f.span.start == at)
                .map(|f| f.rule)
                .collect()
        };
        assert!(
            rules_at("CREATE INDEX a_idx").contains(&"require-concurrent-index"),
            "{findings:#?}"
        );
        assert!(
            !rules_at("CREATE INDEX b_idx").contains(&"require-concurrent-index"),
            "{findings:#?}"
        );
        assert!(findings.iter().any(|f| f.rule == "invalid-directive"));
    }
}
