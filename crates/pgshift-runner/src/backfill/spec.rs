//! What to backfill: a table, its assignments and an optional condition, read once from the
//! text a person wrote — `pgshift backfill --table --set --where`, or an `UPDATE` in a
//! migration (whose parts `prepare` already read).

use pgshift_sql::ident::QualifiedName;
use pgshift_sql::{update_parts, Assignment, NotBatchable, UpdateParts};
use sha2::{Digest, Sha256};

use super::BackfillError;

/// A backfill's definition. Two runs with the same definition are the same backfill: the
/// second resumes where the first stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillSpec {
    /// Names the backfill in `pgshift.backfills`, in `status`, `--pause` and `--resume`.
    pub id: String,
    pub table: QualifiedName,
    pub only: bool,
    pub alias: Option<String>,
    pub assignments: Vec<Assignment>,
    pub filter: Option<String>,
}

impl BackfillSpec {
    /// From an `UPDATE` already read by the parser. `id` defaults to one derived from the
    /// statement, so running the same statement again resumes it.
    pub fn from_update(parts: UpdateParts, id: Option<String>) -> BackfillSpec {
        let mut spec = BackfillSpec {
            id: String::new(),
            table: parts.table,
            only: parts.only,
            alias: parts.alias,
            assignments: parts.assignments,
            filter: parts.filter,
        };
        spec.id = id.unwrap_or_else(|| spec.derived_id());
        spec
    }

    /// From `--table T --set "col = expr, ..." [--where COND]`. The three are put together
    /// as one `UPDATE` and read by PostgreSQL's parser, so a value that is not an expression
    /// (or that smuggles a second statement) is refused here, before anything runs.
    pub fn from_flags(
        table: &str,
        set: &str,
        filter: Option<&str>,
        id: Option<String>,
    ) -> Result<BackfillSpec, BackfillError> {
        let mut sql = format!("UPDATE {table} SET {set}");
        if let Some(filter) = filter {
            sql.push_str(" WHERE ");
            sql.push_str(filter);
        }
        let script = pgshift_sql::parse(&sql);
        if let Some(err) = script.errors.first() {
            return Err(BackfillError::Syntax {
                statement: sql.clone(),
                message: err.message.clone(),
            });
        }
        let [statement] = script.statements.as_slice() else {
            return Err(BackfillError::Syntax {
                statement: sql.clone(),
                message: "--table, --set and --where must make one UPDATE statement".into(),
            });
        };
        let parts = update_parts(statement.text(&sql), &statement.node)
            .map_err(|reason| BackfillError::NotBatchable { reason })?;
        if let Some(id) = &id {
            check_id(id)?;
        }
        Ok(BackfillSpec::from_update(parts, id))
    }

    /// `<table>-<8 hex digits of the statement's hash>`.
    fn derived_id(&self) -> String {
        let digest = Sha256::digest(self.statement().as_bytes());
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", self.table.name)
    }

    /// The `UPDATE` as written (assignments and condition as text), for status and for
    /// telling whether a resumed backfill is still the same one.
    pub fn statement(&self) -> String {
        let mut sql = format!(
            "UPDATE {}{}",
            if self.only { "ONLY " } else { "" },
            self.table.quoted()
        );
        if let Some(alias) = &self.alias {
            sql.push_str(" AS ");
            sql.push_str(&pgshift_sql::ident::quote_ident(alias));
        }
        sql.push_str(" SET ");
        let sets: Vec<String> = self
            .assignments
            .iter()
            .map(|a| {
                format!(
                    "{} = {}",
                    pgshift_sql::ident::quote_ident(&a.column),
                    a.expression
                )
            })
            .collect();
        sql.push_str(&sets.join(", "));
        if let Some(filter) = &self.filter {
            sql.push_str(" WHERE ");
            sql.push_str(filter);
        }
        sql
    }
}

/// A backfill name is shown in terminals and passed on command lines: printable, short.
fn check_id(id: &str) -> Result<(), BackfillError> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(BackfillError::BadName {
            name: id.to_owned(),
        })
    }
}

impl From<NotBatchable> for BackfillError {
    fn from(reason: NotBatchable) -> BackfillError {
        BackfillError::NotBatchable { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_one_update_and_the_same_flags_the_same_id() {
        let a = BackfillSpec::from_flags(
            "app.users",
            "full_name = first || ' ' || last",
            Some("full_name IS NULL"),
            None,
        )
        .unwrap();
        let b = BackfillSpec::from_flags(
            "app.users",
            "full_name = first || ' ' || last",
            Some("full_name IS NULL"),
            None,
        )
        .unwrap();
        assert_eq!(a.id, b.id);
        assert!(a.id.starts_with("users-"), "{}", a.id);
        assert_eq!(
            a.statement(),
            r#"UPDATE "app"."users" SET "full_name" = first || ' ' || last WHERE full_name IS NULL"#
        );
        let c = BackfillSpec::from_flags("app.users", "full_name = last", None, None).unwrap();
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn a_second_statement_or_broken_expression_is_refused() {
        assert!(matches!(
            BackfillSpec::from_flags("t", "a = 1; DROP TABLE t", None, None),
            Err(BackfillError::Syntax { .. })
        ));
        assert!(matches!(
            BackfillSpec::from_flags("t", "a = (1", None, None),
            Err(BackfillError::Syntax { .. })
        ));
        assert!(matches!(
            BackfillSpec::from_flags("t", "a = 1", Some("true RETURNING *"), None),
            Err(BackfillError::NotBatchable { .. })
        ));
        assert!(matches!(
            BackfillSpec::from_flags("t", "a = 1", None, Some("bad name\x1b[2J".into())),
            Err(BackfillError::BadName { .. })
        ));
    }
}
