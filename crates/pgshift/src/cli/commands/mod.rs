//! One file per command.

pub mod backfill;
pub mod baseline;
pub mod check;
pub mod completions;
pub mod down;
pub mod explain;
pub mod init;
pub mod man;
pub mod new;
pub mod online;
pub mod plan;
pub mod redo;
pub mod resolve;
pub mod restamp;
pub mod rules;
pub mod status;
pub mod trace;
pub mod up;
pub mod verify;
