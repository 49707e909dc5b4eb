//! SQL text to statements, for every other part of pgshift.
//!
//! The PostgreSQL grammar itself (libpg_query, through `pg_query`) parses each script, so
//! what pgshift believes a statement is, is what the server will believe. This crate adds what
//! the parser alone does not give: file-relative byte spans for every statement (a script can
//! be a section of a file, as in dbmate or goose files), positioned syntax errors with
//! recovery, comments and the directives written in them, the data blocks of
//! `COPY ... FROM stdin`, and line/column mapping for messages.
//!
//! It also holds the two vocabularies every other crate shares: identity ([`ident`]: qualified
//! names, identifier and literal quoting, the 63-byte limit on names — the one implementation
//! of each) and PostgreSQL's table lock modes and their conflict table ([`lock`]: the
//! vocabulary of `LOCK TABLE` that the analyzer, the database layer and the runner share).
//!
//! Architecture invariant: this crate knows SQL text and nothing else — no migration formats,
//! no databases, no knowledge of which statement takes which lock.

pub mod change;
pub mod directive;
pub mod grammar;
pub mod ident;
pub mod lexer;
pub mod lines;
pub mod lock;
pub mod parse;
pub mod printable;
pub mod secret;
pub mod transaction;
pub mod update;

pub use change::{renames_column, schema_changes, SchemaChange};
pub use directive::{parse_directive, Directive, Phase, RenameMechanism};
pub use grammar::{grammar_version, GrammarVersion};
pub use lines::{LineCol, LineIndex};
pub use lock::LockLevel;
pub use parse::{
    parse, parse_range, walk_range, Comment, ParsedScript, Statement, StatementWalk, SyntaxError,
};
pub use pg_query::{protobuf, DeparseOptions, NodeEnum, NodeRef};
pub use printable::{printable, printable_line};
pub use secret::redact_secrets;
pub use transaction::{forbidden_in_transaction, transaction_control, TransactionControl};
pub use update::{update_parts, Assignment, NotBatchable, Reads, UpdateParts};
