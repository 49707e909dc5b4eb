//! What `DROP ... CASCADE` can drop besides the object named, per kind of object: a table's
//! CASCADE reaches views, foreign keys of other tables and (for a type or a schema) other
//! tables' columns and rows; a function's reaches only what calls it.
//!
//! Checked on PostgreSQL 15: `DROP FUNCTION f(int) CASCADE` on a function used by a stored
//! generated column, a column default, a CHECK constraint, an expression index and a view
//! dropped exactly those five ("drop cascades to column g of table cas", "default value for
//! column d", "constraint cas_c_check", "index cas_f", "view cas_v"); the trigger function of
//! the same table only dropped its trigger ("drop cascades to trigger cas_t on table cas").

use pg_query::protobuf::ObjectType;

/// How much of the schema's data a CASCADE can take with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// Nothing depends on the object but its own table's definition (a trigger, a policy).
    Nothing,
    /// Only objects that call it: triggers, defaults, CHECK constraints, expression indexes,
    /// views and stored generated columns (values computed from other columns): no stored
    /// input is lost, but behaviour and indexes are.
    Callers,
    /// Other tables' columns and rows, foreign keys, views: data and guarantees.
    Data,
}

/// One row: the kinds of objects, what CASCADE reaches from them, and in words.
pub struct CascadeReach {
    pub kinds: &'static [ObjectType],
    pub reach: Reach,
    pub what: &'static str,
}

const TABLE: &[CascadeReach] = &[
    CascadeReach {
        kinds: &[
            ObjectType::ObjectFunction,
            ObjectType::ObjectProcedure,
            ObjectType::ObjectRoutine,
            ObjectType::ObjectAggregate,
        ],
        reach: Reach::Callers,
        what: "whatever calls the function: triggers, column defaults, CHECK constraints, expression indexes, views and stored generated columns",
    },
    CascadeReach {
        kinds: &[
            ObjectType::ObjectTrigger,
            ObjectType::ObjectPolicy,
            ObjectType::ObjectRule,
            ObjectType::ObjectEventTrigger,
        ],
        reach: Reach::Nothing,
        what: "nothing more: no object can depend on a trigger, policy or rule",
    },
];

/// What CASCADE reaches from the object. Anything not listed (tables, views, types, domains,
/// schemas, sequences, indexes, extensions, columns and constraints) reaches data.
pub fn cascade_reach(kind: ObjectType) -> &'static CascadeReach {
    const DATA: CascadeReach = CascadeReach {
        kinds: &[],
        reach: Reach::Data,
        what: "every object that depends on it (views, foreign keys, defaults, ...)",
    };
    TABLE
        .iter()
        .find(|r| r.kinds.contains(&kind))
        .unwrap_or(&DATA)
}

/// From a function known to return `trigger` (created in this set), CASCADE reaches only the
/// triggers that execute it: a trigger function cannot be called from SQL.
pub const TRIGGER_FUNCTION: CascadeReach = CascadeReach {
    kinds: &[],
    reach: Reach::Nothing,
    what: "the triggers that execute it (a trigger function cannot be called anywhere else)",
};
