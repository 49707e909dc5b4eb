//! Rendering the runner's reports for people and pull requests: what is shared by every
//! renderer of `plan`, `trace` and `verify` (escaping for Markdown; terminal safety comes from
//! [`pgshift_sql::printable`]). Renderers read report data and write text; they decide nothing.

pub mod markdown;
