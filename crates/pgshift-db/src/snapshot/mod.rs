//! A normalised, deterministic description of a database's schema, read from the catalog, and
//! the readable difference between two of them.
//!
//! `pgshift verify` snapshots the schema before and after every migration and compares: the
//! down of a migration must bring back exactly the schema its up started from. So a snapshot
//! holds what a person would call the schema — schemas, tables, columns (type, default,
//! nullability, identity, generated expression, position among the live columns),
//! constraints (definition, validity), indexes (definition, validity), views and
//! materialized views, functions, triggers, sequences, enums and other types, extensions and
//! comments — and nothing that changes when the same schema is built twice: no OIDs, no
//! `attnum` (a dropped column leaves a hole), no statistics, no sequence positions.
//!
//! Excluded: the system schemas (`pg_catalog`, `information_schema`, `pg_toast*`,
//! `pg_temp*`), pgshift's own schema ([`PGSHIFT_SCHEMA`]) and that of [`SchemaWatch`]
//! (`pgshift_watch`), and objects that belong to an extension (the extension itself is listed,
//! with its version).
//!
//! Every object is a [`SchemaObject`]: a kind, a name (schema-qualified unless it is in
//! `public`; columns, constraints and triggers as `table.name`) and text attributes. Each kind
//! is one catalog query in [`queries`]. Its first two columns say where the object lives in
//! the catalog: the OID of its *owner* (the relation of a table, column, constraint, index,
//! view, sequence or trigger; the type; the function; the schema; the extension) and its own
//! OID where it has one (an index, a constraint, a trigger, a column's default). Then come the
//! name, the table the object belongs to, and an attribute per further column, named by its
//! alias — adding an attribute is adding a column to a query.
//!
//! [`Snapshot::take`] reads everything. [`SchemaWatch`] keeps a snapshot of one database up to
//! date by reading again only the owners the DDL run since touched.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

use pgshift_sql::ident::quote_literal;

use crate::{Connection, DbError};

mod watch;
pub use watch::{unseen_by_event_triggers, SchemaWatch, WatchCost};

/// The schema pgshift keeps its history and state in; never part of a snapshot.
pub const PGSHIFT_SCHEMA: &str = "pgshift";

/// What sort of object a [`SchemaObject`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Schema,
    Extension,
    /// Enums, domains, composite, range and base types.
    Type,
    /// Tables, partitioned tables and foreign tables.
    Table,
    Column,
    Constraint,
    Index,
    View,
    MaterializedView,
    Sequence,
    /// Functions, procedures and aggregates.
    Function,
    Trigger,
}

impl ObjectKind {
    /// The kind in words, as diffs print it.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Schema => "schema",
            ObjectKind::Extension => "extension",
            ObjectKind::Type => "type",
            ObjectKind::Table => "table",
            ObjectKind::Column => "column",
            ObjectKind::Constraint => "constraint",
            ObjectKind::Index => "index",
            ObjectKind::View => "view",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Sequence => "sequence",
            ObjectKind::Function => "function",
            ObjectKind::Trigger => "trigger",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object of the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaObject {
    pub kind: ObjectKind,
    /// `users`, `billing.invoices`, `orders.note` (a column), `orders.orders_pkey` (a
    /// constraint), `f(integer, text)` (a function).
    pub name: String,
    /// The table a column, constraint, index or trigger belongs to. Not compared: it lets a
    /// diff report a missing table once instead of once per column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Attribute name → value; attributes that do not apply (no default, no comment) are
    /// absent rather than empty.
    pub attributes: BTreeMap<String, String>,
}

/// A database schema at one moment. Objects are sorted by kind, then name, so two snapshots
/// of the same schema are equal and serialise identically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub objects: Vec<SchemaObject>,
}

/// How an object differs between two snapshots (called *first* and *second*; the caller
/// names them, e.g. "before up" and "after down").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum Change {
    /// The object exists only in the first snapshot.
    OnlyInFirst,
    /// The object exists only in the second snapshot.
    OnlyInSecond,
    /// An attribute has different values (`None`: the attribute is absent on that side).
    Attribute {
        attribute: String,
        first: Option<String>,
        second: Option<String>,
    },
}

/// One difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Difference {
    pub kind: ObjectKind,
    pub name: String,
    #[serde(flatten)]
    pub change: Change,
}

/// Values longer than this (function bodies, view definitions) are summarised in diffs by
/// their first differing line.
const INLINE_VALUE_LIMIT: usize = 80;

impl Difference {
    /// For an enum whose labels on the second side are those of the first plus others (the
    /// first's in the same order among them): the labels added, as written in the snapshot
    /// (quoted). PostgreSQL cannot drop an enum label, so a down leaves those an up added.
    pub fn enum_labels_added(&self) -> Option<Vec<String>> {
        let Change::Attribute {
            attribute,
            first: Some(first),
            second: Some(second),
        } = &self.change
        else {
            return None;
        };
        if self.kind != ObjectKind::Type || attribute != "labels" {
            return None;
        }
        let (first, second) = (quoted_labels(first)?, quoted_labels(second)?);
        let mut kept = first.iter().peekable();
        let mut added = Vec::new();
        for label in &second {
            if kept.peek() == Some(&label) {
                kept.next();
            } else {
                added.push(label.clone());
            }
        }
        (kept.peek().is_none() && !added.is_empty()).then_some(added)
    }

    /// The difference in words, with the two snapshots named by the caller:
    /// `index users_email_idx: only after down`,
    /// `column orders.note: type text → character varying(10)`.
    pub fn describe(&self, first: &str, second: &str) -> String {
        let what = format!("{} {}", self.kind, self.name);
        match &self.change {
            Change::OnlyInFirst => format!("{what}: only {first}"),
            Change::OnlyInSecond => format!("{what}: only {second}"),
            Change::Attribute {
                attribute,
                first: a,
                second: b,
            } => {
                let long = |v: &Option<String>| {
                    v.as_ref()
                        .is_some_and(|s| s.len() > INLINE_VALUE_LIMIT || s.contains('\n'))
                };
                if long(a) || long(b) {
                    let a = a.as_deref().unwrap_or("");
                    let b = b.as_deref().unwrap_or("");
                    let diff = line_diff(a, b);
                    let count = |tag: char| diff.iter().filter(|l| l.starts_with(tag)).count();
                    let changed = |tag: char| {
                        diff.iter()
                            .find_map(|l| l.strip_prefix(tag).map(|l| l.trim().to_string()))
                    };
                    match (changed('-'), changed('+')) {
                        (Some(x), Some(y)) if count('-') == 1 && count('+') == 1 => format!(
                            "{what}: {attribute} differs; {first}: `{}`, {second}: `{}`",
                            clip(&x),
                            clip(&y)
                        ),
                        (x, y) => {
                            let mut parts = Vec::new();
                            if let Some(x) = x {
                                parts.push(format!(
                                    "{} line(s) only {first}, the first `{}`",
                                    count('-'),
                                    clip(&x)
                                ));
                            }
                            if let Some(y) = y {
                                parts.push(format!(
                                    "{} line(s) only {second}, the first `{}`",
                                    count('+'),
                                    clip(&y)
                                ));
                            }
                            format!("{what}: {attribute} differs: {}", parts.join("; "))
                        }
                    }
                } else {
                    format!("{what}: {attribute} {} → {}", shown(a), shown(b))
                }
            }
        }
    }

    /// For a long value (a function body, a view), the changed lines with a little context
    /// (see [`line_diff`]); empty otherwise.
    pub fn details(&self) -> Vec<String> {
        match &self.change {
            Change::Attribute { first, second, .. }
                if [first, second].iter().any(|v| {
                    v.as_ref()
                        .is_some_and(|s| s.len() > INLINE_VALUE_LIMIT || s.contains('\n'))
                }) =>
            {
                line_diff(
                    first.as_deref().unwrap_or(""),
                    second.as_deref().unwrap_or(""),
                )
            }
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe("in the first snapshot", "in the second snapshot"))
    }
}

fn shown(value: &Option<String>) -> String {
    match value {
        Some(v) => v.clone(),
        None => "(none)".to_string(),
    }
}

fn clip(line: &str) -> String {
    let line = line.trim();
    if line.chars().count() > INLINE_VALUE_LIMIT {
        let cut: String = line.chars().take(INLINE_VALUE_LIMIT).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

impl Snapshot {
    /// Reads the schema of the database `conn` is connected to; inside a transaction it sees
    /// that transaction's uncommitted changes.
    ///
    /// One catalog query per kind ([`queries`]), prepared on the session the first time and
    /// reused after (planning them costs more than running them on a schema of a few hundred
    /// objects), all sent at once and answered in one round trip.
    pub async fn take(conn: &Connection) -> Result<Snapshot, DbError> {
        let rows = read(conn, None).await?;
        Ok(Snapshot::from_objects(
            rows.into_iter().map(|r| r.object).collect(),
        ))
    }

    /// A snapshot of these objects, sorted (for tests and for snapshots read back from JSON).
    pub fn from_objects(mut objects: Vec<SchemaObject>) -> Snapshot {
        objects.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        Snapshot { objects }
    }

    /// Finds an object.
    pub fn get(&self, kind: ObjectKind, name: &str) -> Option<&SchemaObject> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
    }

    /// What differs from `first` to `second`, sorted by kind and name, compared as
    /// [`DiffOptions::default`] says: column order ignored, bodies normalised, generated names
    /// matched by what they name.
    pub fn diff(first: &Snapshot, second: &Snapshot) -> Vec<Difference> {
        Snapshot::diff_with(first, second, DiffOptions::default())
    }

    /// What differs from `first` to `second`, sorted by kind and name. A table present on one
    /// side only is one difference: its columns, constraints, indexes and triggers are not
    /// listed separately.
    ///
    /// - A column's position among the live columns is compared only with
    ///   [`DiffOptions::strict_order`]: a down that re-adds a dropped column puts it last, and
    ///   nothing but `SELECT *` and `COPY` without a column list can tell.
    /// - Function and view definitions are compared with whitespace normalised (a function
    ///   re-created with other indentation is the same function); when they differ,
    ///   [`Difference::line_diff`] shows the lines.
    /// - A constraint or index whose name PostgreSQL generated (`<table>_<columns>_key`,
    ///   `_pkey`, `_idx`, `_check`, `_fkey`, `_excl`, `_not_null`, with or without a number)
    ///   and which has no counterpart of the same name is matched with one of the same table
    ///   and the same definition: the name records what the table and columns were called and
    ///   which names were taken when it was made, not what it is.
    pub fn diff_with(first: &Snapshot, second: &Snapshot, options: DiffOptions) -> Vec<Difference> {
        let index = |s: &'_ Snapshot| -> BTreeMap<(ObjectKind, String), SchemaObject> {
            s.objects
                .iter()
                .map(|o| ((o.kind, o.name.clone()), o.clone()))
                .collect()
        };
        let a = index(first);
        let b = index(second);
        let tables_only = |this: &BTreeMap<(ObjectKind, String), SchemaObject>,
                           other: &BTreeMap<(ObjectKind, String), SchemaObject>|
         -> BTreeSet<String> {
            this.keys()
                .filter(|(k, n)| *k == ObjectKind::Table && !other.contains_key(&(*k, n.clone())))
                .map(|(_, n)| n.clone())
                .collect()
        };
        let only_first_tables = tables_only(&a, &b);
        let only_second_tables = tables_only(&b, &a);
        let part_of = |o: &SchemaObject, tables: &BTreeSet<String>| {
            o.kind != ObjectKind::Table && o.table.as_ref().is_some_and(|t| tables.contains(t))
        };

        // Objects with a generated name and no namesake on the other side, paired by what
        // they are.
        let unmatched_generated = |this: &BTreeMap<(ObjectKind, String), SchemaObject>,
                                   other: &BTreeMap<(ObjectKind, String), SchemaObject>|
         -> Vec<SchemaObject> {
            this.iter()
                .filter(|(key, o)| !other.contains_key(key) && has_generated_name(o))
                .map(|(_, o)| o.clone())
                .collect()
        };
        let mut second_generated = unmatched_generated(&b, &a);
        let mut paired: Vec<(SchemaObject, SchemaObject)> = Vec::new();
        let mut paired_first: BTreeSet<(ObjectKind, String)> = BTreeSet::new();
        for object in unmatched_generated(&a, &b) {
            let identity = generated_identity(&object);
            if let Some(pos) = second_generated
                .iter()
                .position(|o| generated_identity(o) == identity)
            {
                let other = second_generated.remove(pos);
                paired_first.insert((object.kind, object.name.clone()));
                paired.push((object, other));
            }
        }
        let paired_second: BTreeSet<(ObjectKind, String)> = paired
            .iter()
            .map(|(_, o)| (o.kind, o.name.clone()))
            .collect();

        let mut out = Vec::new();
        let compare = |object: &SchemaObject, other: &SchemaObject, out: &mut Vec<Difference>| {
            let names: BTreeSet<&String> = object
                .attributes
                .keys()
                .chain(other.attributes.keys())
                .collect();
            for attribute in names {
                if object.kind == ObjectKind::Column
                    && attribute == "position"
                    && !options.strict_order
                {
                    continue;
                }
                let x = object.attributes.get(attribute);
                let y = other.attributes.get(attribute);
                let same = match (x, y) {
                    (Some(x), Some(y)) if is_body(object.kind, attribute) => {
                        normalise_body(&without_clock(x)) == normalise_body(&without_clock(y))
                    }
                    (Some(x), Some(y))
                        if object.kind == ObjectKind::Column && attribute == "default" =>
                    {
                        without_clock(x) == without_clock(y)
                    }
                    (Some(x), Some(y))
                        if object.kind == ObjectKind::Index && attribute == "definition" =>
                    {
                        index_definition_without_name(x) == index_definition_without_name(y)
                    }
                    _ => x == y,
                };
                if !same {
                    out.push(Difference {
                        kind: object.kind,
                        name: object.name.clone(),
                        change: Change::Attribute {
                            attribute: attribute.clone(),
                            first: x.cloned(),
                            second: y.cloned(),
                        },
                    });
                }
            }
        };
        for (key, object) in &a {
            match b.get(key) {
                None if part_of(object, &only_first_tables) => {}
                None if paired_first.contains(key) => {}
                None => out.push(Difference {
                    kind: object.kind,
                    name: object.name.clone(),
                    change: Change::OnlyInFirst,
                }),
                Some(other) => compare(object, other, &mut out),
            }
        }
        for (object, other) in &paired {
            compare(object, other, &mut out);
        }
        for (key, object) in &b {
            if !a.contains_key(key)
                && !part_of(object, &only_second_tables)
                && !paired_second.contains(key)
            {
                out.push(Difference {
                    kind: object.kind,
                    name: object.name.clone(),
                    change: Change::OnlyInSecond,
                });
            }
        }
        out.sort();
        out
    }
}

/// The labels of an enum as the snapshot lists them (`quote_literal` of each, joined by
/// `, `), each still quoted; `None` when the text is not such a list.
fn quoted_labels(list: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let start = rest.strip_prefix('E').unwrap_or(rest);
        let body = start.strip_prefix('\'')?;
        // The closing quote: one not doubled (and, after E, not escaped by a backslash).
        let escaped = start.len() != rest.len();
        let bytes = body.as_bytes();
        let mut i = 0;
        let end = loop {
            match bytes.get(i)? {
                b'\\' if escaped => i += 2,
                b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                b'\'' => break i,
                _ => i += 1,
            }
        };
        let taken = rest.len() - body.len() + end + 1;
        out.push(rest[..taken].to_string());
        rest = &rest[taken..];
        if !rest.is_empty() {
            rest = rest.strip_prefix(", ")?;
        }
    }
    Some(out)
}

/// How [`Snapshot::diff_with`] compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffOptions {
    /// Compare the position of each column among its table's live columns too.
    pub strict_order: bool,
}

/// The suffixes PostgreSQL gives the names it makes up (`ChooseConstraintName`,
/// `ChooseIndexName`): `<table>_<columns>_<suffix>`, then a number when the name is taken.
const GENERATED_SUFFIXES: [&str; 7] = ["pkey", "key", "idx", "check", "fkey", "excl", "not_null"];

/// Whether a constraint's or index's name looks generated by PostgreSQL.
fn has_generated_name(object: &SchemaObject) -> bool {
    if !matches!(object.kind, ObjectKind::Constraint | ObjectKind::Index) {
        return false;
    }
    let own = match (&object.table, object.kind) {
        (Some(table), ObjectKind::Constraint) => object
            .name
            .strip_prefix(table.as_str())
            .and_then(|n| n.strip_prefix('.'))
            .unwrap_or(&object.name),
        _ => object.name.rsplit('.').next().unwrap_or(&object.name),
    };
    let own = own.trim_end_matches(|c: char| c.is_ascii_digit());
    GENERATED_SUFFIXES
        .iter()
        .any(|suffix| own.len() > suffix.len() + 1 && own.ends_with(&format!("_{suffix}")))
}

/// What a generated-name object is, without its name: kind, table, definition.
fn generated_identity(object: &SchemaObject) -> (ObjectKind, Option<String>, String) {
    let definition = object
        .attributes
        .get("definition")
        .map(|d| match object.kind {
            ObjectKind::Index => index_definition_without_name(d),
            _ => d.clone(),
        })
        .unwrap_or_default();
    (object.kind, object.table.clone(), definition)
}

/// `CREATE UNIQUE INDEX users_email_key ON public.users ...` without the index's name.
fn index_definition_without_name(definition: &str) -> String {
    match (definition.find("INDEX "), definition.find(" ON ")) {
        (Some(start), Some(on)) if start + 6 <= on => {
            format!("{}{}", &definition[..start + 5], &definition[on..])
        }
        _ => definition.to_string(),
    }
}

/// Attributes holding text a person wrote (function bodies) or PostgreSQL pretty-printed
/// (views), compared with whitespace normalised.
fn is_body(kind: ObjectKind, attribute: &str) -> bool {
    attribute == "definition"
        && matches!(
            kind,
            ObjectKind::Function | ObjectKind::View | ObjectKind::MaterializedView
        )
}

/// `'now'` (and `'today'`, `'yesterday'`, ...) cast to a timestamp type is folded into a
/// constant when a view or a default is created: `('now'::timestamp - '1 day'::interval)` is
/// stored as `('2024-05-01 10:02:31.48'::timestamp without time zone - ...)`, so the same
/// statement run twice a second apart gives two definitions. A timestamp literal within a day
/// of the clock is such a fold, and is compared as `'<now>'`.
fn without_clock(text: &str) -> std::borrow::Cow<'_, str> {
    let today = days_since_epoch_now();
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    // `'YYYY-MM-DD` then digits, spaces, `:`, `.`, `+`, `-` up to the closing quote.
    while i + 11 <= bytes.len() {
        if bytes[i] == b'\''
            && bytes[i + 1..i + 5].iter().all(u8::is_ascii_digit)
            && bytes[i + 5] == b'-'
            && bytes[i + 6..i + 8].iter().all(u8::is_ascii_digit)
            && bytes[i + 8] == b'-'
            && bytes[i + 9..i + 11].iter().all(u8::is_ascii_digit)
        {
            let end = bytes[i + 1..]
                .iter()
                .position(|b| *b == b'\'')
                .map(|p| i + 1 + p);
            let parsed = (
                text[i + 1..i + 5].parse::<i64>(),
                text[i + 6..i + 8].parse::<u32>(),
                text[i + 9..i + 11].parse::<u32>(),
            );
            if let (Some(end), (Ok(y), Ok(m), Ok(d))) = (end, parsed) {
                let literal = &text[i + 1..end];
                let timestamp_like = literal.len() > 10
                    && literal[10..].bytes().all(|b| {
                        b.is_ascii_digit() || matches!(b, b' ' | b':' | b'.' | b'+' | b'-')
                    });
                if timestamp_like && (days_from_civil(y, m, d) - today).abs() <= 1 {
                    out.push_str(&text[copied..i]);
                    out.push_str("'<now>'");
                    copied = end + 1;
                    i = end + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

fn days_since_epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs() / 86_400).unwrap_or(0))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A body with every run of whitespace, line breaks included, made one space.
pub fn normalise_body(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A line diff of two texts (each line trimmed, blank lines dropped), as `- old` / `+ new`
/// lines with up to two lines of context around each change; `  …` marks skipped lines.
pub fn line_diff(first: &str, second: &str) -> Vec<String> {
    let a: Vec<&str> = first
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let b: Vec<&str> = second
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // Longest common subsequence, by dynamic programming from the end.
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if normalise_body(a[i]) == normalise_body(b[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // (tag, line): ' ' same, '-' only first, '+' only second.
    let mut script: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && normalise_body(a[i]) == normalise_body(b[j]) {
            script.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            script.push(('-', a[i]));
            i += 1;
        } else {
            script.push(('+', b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 2;
    let near_change = |k: usize| {
        let lo = k.saturating_sub(CONTEXT);
        let hi = (k + CONTEXT + 1).min(script.len());
        script[lo..hi].iter().any(|(t, _)| *t != ' ')
    };
    let mut out = Vec::new();
    let mut skipped = false;
    for (k, (tag, line)) in script.iter().enumerate() {
        if *tag != ' ' || near_change(k) {
            if skipped {
                out.push("  …".to_string());
                skipped = false;
            }
            out.push(format!("{tag} {line}"));
        } else {
            skipped = true;
        }
    }
    if skipped && !out.is_empty() {
        out.push("  …".to_string());
    }
    out
}

/// Whose objects a kind's query returns, for reading part of a schema again: every object
/// has one owner, and reading an owner again reads all of its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
    /// A relation (`pg_class`): a table, view, materialized view or sequence, with its
    /// columns, constraints, indexes and triggers.
    Relation(u32),
    /// A type (`pg_type`) of the `Type` kind.
    Type(u32),
    /// A function or procedure (`pg_proc`).
    Function(u32),
}

/// The owner a kind's objects belong to; `None` for schemas and extensions, which
/// [`SchemaWatch`] reads again only in a full read (any change to one is reported as such).
fn owner_of(kind: ObjectKind, oid: u32) -> Option<Owner> {
    match kind {
        ObjectKind::Schema | ObjectKind::Extension => None,
        ObjectKind::Type => Some(Owner::Type(oid)),
        ObjectKind::Function => Some(Owner::Function(oid)),
        _ => Some(Owner::Relation(oid)),
    }
}

/// The catalog (`pg_class` and so on, by their fixed OIDs) a kind's own `oid` column is from.
fn member_catalog(kind: ObjectKind) -> u32 {
    match kind {
        ObjectKind::Schema => catalog::NAMESPACE,
        ObjectKind::Extension => catalog::EXTENSION,
        ObjectKind::Type => catalog::TYPE,
        ObjectKind::Function => catalog::PROC,
        ObjectKind::Column => catalog::ATTRDEF,
        ObjectKind::Constraint => catalog::CONSTRAINT,
        ObjectKind::Trigger => catalog::TRIGGER,
        ObjectKind::Table
        | ObjectKind::Index
        | ObjectKind::View
        | ObjectKind::MaterializedView
        | ObjectKind::Sequence => catalog::CLASS,
    }
}

/// The fixed OIDs of the system catalogs an object's address (`classid`, `objid`) names.
pub(crate) mod catalog {
    pub const CLASS: u32 = 1259;
    pub const TYPE: u32 = 1247;
    pub const PROC: u32 = 1255;
    pub const ATTRDEF: u32 = 2604;
    pub const CONSTRAINT: u32 = 2606;
    pub const TRIGGER: u32 = 2620;
    pub const NAMESPACE: u32 = 2615;
    pub const EXTENSION: u32 = 3079;
}

/// One object as read, with where it lives in the catalog.
pub(crate) struct ReadObject {
    pub owner: Option<Owner>,
    /// `(catalog, oid)` of the object itself, where it has an OID of its own.
    pub address: Option<(u32, u32)>,
    pub object: SchemaObject,
}

/// A kind's query, in full and limited to some owners (`$1`, an `oid[]`).
struct KindQuery {
    kind: ObjectKind,
    full: String,
    by_owner: String,
}

/// [`queries`] with the excluded schemas written in, built once for the process: the text
/// [`Connection::query_prepared`] prepares each session's statements by.
fn prepared_queries() -> &'static [KindQuery] {
    static QUERIES: OnceLock<Vec<KindQuery>> = OnceLock::new();
    QUERIES.get_or_init(|| {
        let excluded = format!(
            "ARRAY[{}]::text[]",
            [
                "pg_catalog",
                "information_schema",
                PGSHIFT_SCHEMA,
                watch::WATCH_SCHEMA
            ]
            .iter()
            .map(|s| quote_literal(s))
            .collect::<Vec<_>>()
            .join(", ")
        );
        queries()
            .into_iter()
            .map(|(kind, sql)| {
                let full = sql.replace("$1::text[]", &excluded);
                // Every query ends in its WHERE clause, and selects its owner first.
                let owner = owner_column(kind);
                let by_owner = format!("{full}\n                    AND {owner} = ANY($1::oid[])");
                KindQuery {
                    kind,
                    full,
                    by_owner,
                }
            })
            .collect()
    })
}

/// The expression of a kind's `owner` column.
fn owner_column(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Schema => "n.oid",
        ObjectKind::Extension => "x.oid",
        ObjectKind::Type => "t.oid",
        ObjectKind::Function => "p.oid",
        _ => "c.oid",
    }
}

/// Reads every kind (`owners: None`), or the objects of these owners: one prepared statement
/// per kind, all sent at once.
pub(crate) async fn read(
    conn: &Connection,
    owners: Option<&[Owner]>,
) -> Result<Vec<ReadObject>, DbError> {
    let (mut relations, mut types, mut functions) = (Vec::new(), Vec::new(), Vec::new());
    for owner in owners.unwrap_or_default() {
        match *owner {
            Owner::Relation(oid) => relations.push(oid),
            Owner::Type(oid) => types.push(oid),
            Owner::Function(oid) => functions.push(oid),
        }
    }
    let wanted: Vec<(&KindQuery, Option<&Vec<u32>>)> = prepared_queries()
        .iter()
        .filter_map(|q| {
            let Some(_) = owners else {
                return Some((q, None));
            };
            match q.kind {
                ObjectKind::Schema | ObjectKind::Extension => None,
                ObjectKind::Type => (!types.is_empty()).then_some((q, Some(&types))),
                ObjectKind::Function => (!functions.is_empty()).then_some((q, Some(&functions))),
                _ => (!relations.is_empty()).then_some((q, Some(&relations))),
            }
        })
        .collect();
    let answers = futures_util::future::try_join_all(wanted.iter().map(|&(q, oids)| async move {
        match oids {
            None => conn.query_prepared(&q.full, &[], &[]).await,
            Some(oids) => {
                conn.query_prepared(
                    &q.by_owner,
                    &[tokio_postgres::types::Type::OID_ARRAY],
                    &[oids],
                )
                .await
            }
        }
    }))
    .await?;
    let mut objects = Vec::new();
    for ((q, _), rows) in wanted.iter().zip(answers) {
        for row in rows {
            objects.push(object_from_row(q.kind, &row)?);
        }
    }
    Ok(objects)
}

/// One row of a kind's query: owner, own OID, name, table, then an attribute per column.
fn object_from_row(kind: ObjectKind, row: &Row) -> Result<ReadObject, DbError> {
    let unexpected = |i: usize, e: tokio_postgres::Error| DbError::UnexpectedValue {
        what: "a schema snapshot column",
        value: format!("{kind} column {i}: {e}"),
    };
    let text = |i: usize| -> Result<Option<String>, DbError> {
        row.try_get::<_, Option<String>>(i)
            .map_err(|e| unexpected(i, e))
    };
    let owner: u32 = row.try_get(0).map_err(|e| unexpected(0, e))?;
    let own: Option<u32> = row.try_get(1).map_err(|e| unexpected(1, e))?;
    let mut attributes = BTreeMap::new();
    for (i, column) in row.columns().iter().enumerate().skip(4) {
        if let Some(value) = text(i)? {
            attributes.insert(column.name().to_string(), value);
        }
    }
    Ok(ReadObject {
        owner: owner_of(kind, owner),
        address: own.map(|oid| (member_catalog(kind), oid)),
        object: SchemaObject {
            kind,
            name: text(2)?.unwrap_or_default(),
            table: text(3)?,
            attributes,
        },
    })
}

/// A name as snapshots show it: `name` in `public`, `schema.name` elsewhere.
fn display_name(schema: &str, name: &str) -> String {
    format!("CASE WHEN {schema} = 'public' THEN '' ELSE {schema} || '.' END || {name}")
}

/// Keeps user schemas only (`$1` is the list of excluded schema names).
fn user_schema(schema: &str) -> String {
    format!(
        r"({schema} <> ALL ($1::text[]) AND {schema} NOT LIKE 'pg\_toast%' AND {schema} NOT LIKE 'pg\_temp\_%')"
    )
}

/// Drops objects that belong to an extension.
fn not_from_extension(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass AND e.objid = {oid} AND e.deptype = 'e')"
    )
}

/// The catalog query of every kind. See the [module docs](self) for their shape.
pub fn queries() -> Vec<(ObjectKind, String)> {
    let rel = display_name("n.nspname", "c.relname");
    let user = user_schema("n.nspname");
    let rel_not_ext = not_from_extension("pg_class", "c.oid");
    vec![
        (
            ObjectKind::Schema,
            format!(
                "SELECT n.oid AS owner, n.oid AS oid, n.nspname AS name, NULL::text AS tbl,
                        obj_description(n.oid, 'pg_namespace') AS comment
                   FROM pg_namespace n
                  WHERE {user} AND {}",
                not_from_extension("pg_namespace", "n.oid")
            ),
        ),
        (
            ObjectKind::Extension,
            "SELECT x.oid AS owner, x.oid AS oid, x.extname AS name, NULL::text AS tbl, n.nspname AS schema,
                    x.extversion AS version
               FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace"
                .to_string(),
        ),
        (
            ObjectKind::Type,
            format!(
                "SELECT t.oid AS owner, t.oid AS oid, {name} AS name, NULL::text AS tbl,
                        CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain'
                             WHEN 'c' THEN 'composite' WHEN 'r' THEN 'range' ELSE 'base' END AS kind,
                        CASE WHEN t.typtype = 'e' THEN
                             (SELECT string_agg(quote_literal(l.enumlabel), ', ' ORDER BY l.enumsortorder)
                                FROM pg_enum l WHERE l.enumtypid = t.oid) END AS labels,
                        CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS \"base type\",
                        CASE WHEN t.typtype = 'd' AND t.typnotnull THEN 'NOT NULL' END AS nullability,
                        t.typdefault AS default,
                        CASE WHEN t.typtype = 'd' THEN
                             (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), '; ' ORDER BY k.conname)
                                FROM pg_constraint k WHERE k.contypid = t.oid) END AS constraints,
                        CASE WHEN t.typtype = 'c' THEN
                             (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END AS attributes,
                        CASE WHEN t.typtype = 'r' THEN
                             (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid) END AS subtype,
                        obj_description(t.oid, 'pg_type') AS comment
                   FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                  WHERE {user} AND {}
                    AND t.typcategory <> 'A'
                    AND (t.typtype IN ('e', 'd', 'r', 'b')
                         OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))",
                not_from_extension("pg_type", "t.oid"),
                name = display_name("n.nspname", "t.typname"),
            ),
        ),
        (
            ObjectKind::Table,
            format!(
                "SELECT c.oid AS owner, c.oid AS oid, {rel} AS name, NULL::text AS tbl,
                        CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind,
                        CASE WHEN c.relpersistence = 'u' THEN 'unlogged' END AS persistence,
                        CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS \"partition key\",
                        CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS \"partition bound\",
                        (SELECT string_agg({parent}, ', ' ORDER BY i.inhseqno)
                           FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                           JOIN pg_namespace pn ON pn.oid = p.relnamespace
                          WHERE i.inhrelid = c.oid) AS parents,
                        CASE WHEN c.relrowsecurity THEN 'enabled' END AS \"row level security\",
                        array_to_string(c.reloptions, ', ') AS options,
                        obj_description(c.oid, 'pg_class') AS comment
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p', 'f') AND {user} AND {rel_not_ext}",
                parent = display_name("pn.nspname", "p.relname"),
            ),
        ),
        (
            ObjectKind::Column,
            format!(
                "SELECT c.oid AS owner, d.oid AS oid, {rel} || '.' || a.attname AS name, {rel} AS tbl,
                        format_type(a.atttypid, a.atttypmod) AS type,
                        (row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum))::text AS position,
                        CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END AS nullability,
                        CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS default,
                        CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END AS identity,
                        CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END AS generated,
                        CASE WHEN a.attcollation <> 0
                              AND a.attcollation <> (SELECT ty.typcollation FROM pg_type ty WHERE ty.oid = a.atttypid)
                             THEN (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation) END AS collation,
                        col_description(c.oid, a.attnum) AS comment
                   FROM pg_attribute a
                   JOIN pg_class c ON c.oid = a.attrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                  WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
                    AND {user} AND {rel_not_ext}"
            ),
        ),
        (
            ObjectKind::Constraint,
            format!(
                "SELECT c.oid AS owner, k.oid AS oid, {rel} || '.' || k.conname AS name, {rel} AS tbl,
                        regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '') AS definition,
                        CASE WHEN k.convalidated THEN 'valid' ELSE 'NOT VALID' END AS validity,
                        obj_description(k.oid, 'pg_constraint') AS comment
                   FROM pg_constraint k
                   JOIN pg_class c ON c.oid = k.conrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE {user} AND {rel_not_ext}"
            ),
        ),
        (
            ObjectKind::Index,
            format!(
                "SELECT c.oid AS owner, i.indexrelid AS oid, {index} AS name, {rel} AS tbl,
                        pg_get_indexdef(i.indexrelid) AS definition,
                        CASE WHEN i.indisvalid THEN 'valid' ELSE 'INVALID' END AS validity,
                        obj_description(i.indexrelid, 'pg_class') AS comment
                   FROM pg_index i
                   JOIN pg_class ic ON ic.oid = i.indexrelid
                   JOIN pg_class c ON c.oid = i.indrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_namespace ns ON ns.oid = ic.relnamespace
                  WHERE {user} AND {rel_not_ext}",
                index = display_name("ns.nspname", "ic.relname"),
            ),
        ),
        (
            ObjectKind::View,
            format!(
                "SELECT c.oid AS owner, c.oid AS oid, {rel} AS name, NULL::text AS tbl,
                        pg_get_viewdef(c.oid, true) AS definition,
                        array_to_string(c.reloptions, ', ') AS options,
                        obj_description(c.oid, 'pg_class') AS comment
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind = 'v' AND {user} AND {rel_not_ext}"
            ),
        ),
        (
            ObjectKind::MaterializedView,
            format!(
                "SELECT c.oid AS owner, c.oid AS oid, {rel} AS name, NULL::text AS tbl,
                        pg_get_viewdef(c.oid, true) AS definition,
                        CASE WHEN c.relispopulated THEN 'populated' ELSE 'not populated' END AS state,
                        obj_description(c.oid, 'pg_class') AS comment
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind = 'm' AND {user} AND {rel_not_ext}"
            ),
        ),
        (
            ObjectKind::Sequence,
            format!(
                "SELECT c.oid AS owner, c.oid AS oid, {rel} AS name, NULL::text AS tbl,
                        format_type(s.seqtypid, NULL) AS type,
                        s.seqstart::text AS start, s.seqincrement::text AS increment,
                        s.seqmin::text AS minimum, s.seqmax::text AS maximum,
                        s.seqcache::text AS cache,
                        CASE WHEN s.seqcycle THEN 'CYCLE' END AS cycle,
                        (SELECT {owner} || '.' || a.attname
                           FROM pg_depend d
                           JOIN pg_class t ON t.oid = d.refobjid
                           JOIN pg_namespace tn ON tn.oid = t.relnamespace
                           JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                          ORDER BY 1 LIMIT 1) AS \"owned by\"
                   FROM pg_sequence s
                   JOIN pg_class c ON c.oid = s.seqrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE {user} AND {rel_not_ext}",
                owner = display_name("tn.nspname", "t.relname"),
            ),
        ),
        (
            ObjectKind::Function,
            format!(
                "SELECT p.oid AS owner, p.oid AS oid, {name} || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
                        NULL::text AS tbl,
                        CASE p.prokind WHEN 'a' THEN 'aggregate' WHEN 'p' THEN 'procedure'
                             WHEN 'w' THEN 'window function' ELSE 'function' END AS kind,
                        CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END AS definition,
                        obj_description(p.oid, 'pg_proc') AS comment
                   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE {user} AND {}",
                not_from_extension("pg_proc", "p.oid"),
                name = display_name("n.nspname", "p.proname"),
            ),
        ),
        (
            ObjectKind::Trigger,
            format!(
                "SELECT c.oid AS owner, t.oid AS oid, {rel} || '.' || t.tgname AS name, {rel} AS tbl,
                        pg_get_triggerdef(t.oid) AS definition,
                        CASE t.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
                             WHEN 'A' THEN 'always' END AS enabled,
                        obj_description(t.oid, 'pg_trigger') AS comment
                   FROM pg_trigger t
                   JOIN pg_class c ON c.oid = t.tgrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE NOT t.tgisinternal AND {user} AND {rel_not_ext}"
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(
        kind: ObjectKind,
        name: &str,
        table: Option<&str>,
        attrs: &[(&str, &str)],
    ) -> SchemaObject {
        SchemaObject {
            kind,
            name: name.to_string(),
            table: table.map(str::to_string),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn labels_an_up_added_are_told_from_other_label_changes() {
        let labels = |first: &str, second: &str| Difference {
            kind: ObjectKind::Type,
            name: "status".into(),
            change: Change::Attribute {
                attribute: "labels".into(),
                first: Some(first.into()),
                second: Some(second.into()),
            },
        };
        assert_eq!(
            labels("'a', 'b'", "'a', 'x', 'b', 'y'").enum_labels_added(),
            Some(vec!["'x'".to_string(), "'y'".to_string()])
        );
        // A label with a comma, a quote and a backslash in it.
        assert_eq!(
            labels("'a, b', 'it''s'", "'a, b', 'it''s', E'c\\\\d'").enum_labels_added(),
            Some(vec!["E'c\\\\d'".to_string()])
        );
        // A label gone, renamed or moved is a real difference.
        assert_eq!(labels("'a', 'b'", "'a'").enum_labels_added(), None);
        assert_eq!(labels("'a', 'b'", "'a', 'c'").enum_labels_added(), None);
        assert_eq!(
            labels("'a', 'b'", "'b', 'a', 'c'").enum_labels_added(),
            None
        );
        assert_eq!(labels("'a'", "'a'").enum_labels_added(), None);
        assert_eq!(labels("'a'", "'a', broken").enum_labels_added(), None);
    }

    #[test]
    fn equal_snapshots_have_no_differences() {
        let s = Snapshot::from_objects(vec![object(
            ObjectKind::Table,
            "t",
            None,
            &[("kind", "table")],
        )]);
        assert!(Snapshot::diff(&s, &s.clone()).is_empty());
    }

    #[test]
    fn objects_on_one_side_and_changed_attributes_are_reported() {
        let a = Snapshot::from_objects(vec![
            object(
                ObjectKind::Column,
                "orders.note",
                Some("orders"),
                &[("type", "text")],
            ),
            object(ObjectKind::Table, "orders", None, &[]),
        ]);
        let b = Snapshot::from_objects(vec![
            object(ObjectKind::Table, "orders", None, &[]),
            object(
                ObjectKind::Column,
                "orders.note",
                Some("orders"),
                &[("type", "character varying(10)")],
            ),
            object(ObjectKind::Index, "users_email_idx", Some("users"), &[]),
        ]);
        let described: Vec<String> = Snapshot::diff(&a, &b)
            .iter()
            .map(|d| d.describe("before up", "after up"))
            .collect();
        assert_eq!(
            described,
            vec![
                "column orders.note: type text → character varying(10)",
                "index users_email_idx: only after up",
            ]
        );
    }

    #[test]
    fn a_missing_table_is_one_difference_not_one_per_column() {
        let a = Snapshot::from_objects(vec![
            object(ObjectKind::Table, "users", None, &[]),
            object(
                ObjectKind::Column,
                "users.id",
                Some("users"),
                &[("type", "integer")],
            ),
            object(
                ObjectKind::Constraint,
                "users.users_pkey",
                Some("users"),
                &[],
            ),
            object(ObjectKind::Sequence, "users_id_seq", None, &[]),
        ]);
        let b = Snapshot::default();
        let diff = Snapshot::diff(&a, &b);
        let kinds: Vec<ObjectKind> = diff.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, vec![ObjectKind::Table, ObjectKind::Sequence]);
        assert!(diff.iter().all(|d| d.change == Change::OnlyInFirst));
        // And the other way round.
        let back = Snapshot::diff(&b, &a);
        assert_eq!(back.len(), 2);
        assert!(back.iter().all(|d| d.change == Change::OnlyInSecond));
    }

    #[test]
    fn long_values_show_the_first_differing_line() {
        let d = Difference {
            kind: ObjectKind::Function,
            name: "f()".into(),
            change: Change::Attribute {
                attribute: "definition".into(),
                first: Some("CREATE FUNCTION f()\n RETURNS int\nAS $$ SELECT 1 $$".into()),
                second: Some("CREATE FUNCTION f()\n RETURNS int\nAS $$ SELECT 2 $$".into()),
            },
        };
        assert_eq!(
            d.describe("before", "after"),
            "function f(): definition differs; before: `AS $$ SELECT 1 $$`, after: `AS $$ SELECT 2 $$`"
        );
    }

    #[test]
    fn whitespace_in_bodies_and_now_folded_into_views_are_not_differences() {
        let view = |def: &str| {
            Snapshot::from_objects(vec![object(
                ObjectKind::View,
                "v",
                None,
                &[("definition", def)],
            )])
        };
        let now = |secs: u64| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + secs;
            let days = i64::try_from(t / 86_400).unwrap_or(0);
            // Find the civil date whose day number is `days` (close to the clock, so search).
            let mut found = String::new();
            'y: for y in 2020..2100 {
                for m in 1..=12 {
                    for d in 1..=31 {
                        if days_from_civil(y, m, d) == days {
                            found = format!("{y:04}-{m:02}-{d:02} 10:02:{:02}.48", secs % 60);
                            break 'y;
                        }
                    }
                }
            }
            found
        };
        let a = view(&format!(" SELECT t.a\n   FROM t\n  WHERE t.at < ('{}'::timestamp without time zone - '1 day'::interval);", now(0)));
        let b = view(&format!("SELECT t.a FROM t WHERE t.at < ('{}'::timestamp without time zone - '1 day'::interval);", now(1)));
        assert!(
            Snapshot::diff(&a, &b).is_empty(),
            "{:?}",
            Snapshot::diff(&a, &b)
        );
        // A literal far from the clock is the author's, and compared.
        let c = view(
            "SELECT t.a FROM t WHERE t.at < '2001-01-01 00:00:00'::timestamp without time zone;",
        );
        let d = view(
            "SELECT t.a FROM t WHERE t.at < '2001-01-02 00:00:00'::timestamp without time zone;",
        );
        assert_eq!(Snapshot::diff(&c, &d).len(), 1);
    }

    #[test]
    fn generated_names_are_matched_by_definition_and_column_order_is_ignored() {
        let a = Snapshot::from_objects(vec![
            object(ObjectKind::Table, "orders", None, &[]),
            object(
                ObjectKind::Column,
                "orders.note",
                Some("orders"),
                &[("position", "2")],
            ),
            object(
                ObjectKind::Index,
                "orders_note_idx",
                Some("orders"),
                &[(
                    "definition",
                    "CREATE INDEX orders_note_idx ON public.orders USING btree (note)",
                )],
            ),
            object(
                ObjectKind::Constraint,
                "orders.orders_note_check",
                Some("orders"),
                &[("definition", "CHECK ((note <> ''::text))")],
            ),
        ]);
        let b = Snapshot::from_objects(vec![
            object(ObjectKind::Table, "orders", None, &[]),
            object(
                ObjectKind::Column,
                "orders.note",
                Some("orders"),
                &[("position", "3")],
            ),
            object(
                ObjectKind::Index,
                "orders_note_idx1",
                Some("orders"),
                &[(
                    "definition",
                    "CREATE INDEX orders_note_idx1 ON public.orders USING btree (note)",
                )],
            ),
            object(
                ObjectKind::Constraint,
                "orders.orders_note_check1",
                Some("orders"),
                &[("definition", "CHECK ((note <> ''::text))")],
            ),
        ]);
        assert!(
            Snapshot::diff(&a, &b).is_empty(),
            "{:?}",
            Snapshot::diff(&a, &b)
        );
        let strict = Snapshot::diff_with(&a, &b, DiffOptions { strict_order: true });
        assert_eq!(strict.len(), 1, "{strict:?}");
        // A name the author chose is compared by name.
        let named = |n: &str| {
            Snapshot::from_objects(vec![object(
                ObjectKind::Index,
                n,
                Some("orders"),
                &[(
                    "definition",
                    &format!("CREATE INDEX {n} ON public.orders USING btree (note)"),
                )],
            )])
        };
        assert_eq!(
            Snapshot::diff(&named("by_note"), &named("note_lookup")).len(),
            2
        );
    }

    #[test]
    fn line_diff_shows_changed_lines_with_context() {
        let a = "BEGIN\n  x := 1;\n  y := 2;\n  z := 3;\n  w := 4;\n  v := 5;\nEND";
        let b = "BEGIN\n    x := 1;\n  y := 2;\n  z := 30;\n  w := 4;\n  v := 5;\nEND";
        assert_eq!(
            line_diff(a, b),
            vec![
                "  …",
                "  x := 1;",
                "  y := 2;",
                "- z := 3;",
                "+ z := 30;",
                "  w := 4;",
                "  v := 5;",
                "  …"
            ]
        );
    }

    #[test]
    fn absent_attributes_read_as_none() {
        let d = Difference {
            kind: ObjectKind::Column,
            name: "t.c".into(),
            change: Change::Attribute {
                attribute: "default".into(),
                first: None,
                second: Some("now()".into()),
            },
        };
        assert_eq!(d.to_string(), "column t.c: default (none) → now()");
    }

    #[test]
    fn snapshots_serialise_and_read_back() {
        let s = Snapshot::from_objects(vec![object(
            ObjectKind::Type,
            "mood",
            None,
            &[("labels", "'a', 'b'")],
        )]);
        let json = serde_json::to_string(&s).unwrap_or_default();
        let back: Snapshot = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, s);
    }
}
