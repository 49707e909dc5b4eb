//! The `pgshift` command line: argument parsing and rendering only. Every decision is made
//! by the library crates; a command file turns flags into library calls and results into
//! text.
//!
//! Adding a command: a file in `commands/` with `Args` and `run`, one variant in [`Command`]
//! and one arm in [`dispatch`].

mod commands;
mod context;
mod interrupt;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use interrupt::cancel_on_signal;

pub use context::{Context, Failure};

/// Exit codes, documented in the README.
pub mod exit {
    /// Success; for `check`, no error-severity finding.
    pub const OK: u8 = 0;
    /// A verdict failed: `check` found errors, a migration failed, `verify` found a problem,
    /// `plan` exceeded `--max-lock`.
    pub const FAILED: u8 = 1;
    /// Unusable input: arguments, configuration, migration files, edited history.
    pub const USAGE: u8 = 2;
    /// The database could not be reached or refused the connection.
    pub const DATABASE: u8 = 3;
    /// Ctrl-C (SIGINT) stopped a command that uses a database; the running statement was
    /// cancelled.
    pub const INTERRUPTED: u8 = 130;
    /// SIGTERM (Kubernetes, `docker stop`, systemd, CI cancels) stopped such a command; the
    /// running statement was cancelled.
    pub const TERMINATED: u8 = 143;
    /// SIGHUP (terminal or SSH session closed) stopped such a command; the running statement
    /// was cancelled.
    pub const HANGUP: u8 = 129;
}

#[derive(Debug, Parser)]
#[command(
    name = "pgshift",
    version,
    long_version = long_version(),
    about = "Safe, zero-downtime PostgreSQL schema changes",
    long_about = "Safe, zero-downtime PostgreSQL schema changes.\n\nReads the migrations you already have (pgshift, sqlx, golang-migrate, Flyway, dbmate, goose, diesel, Prisma, Drizzle, Atlas, node-pg-migrate or plain SQL), tells you what each statement will lock, runs them safely, and proves the set on a throwaway PostgreSQL.",
    after_help = "Exit codes: 0 success, 1 a check/migration/verify failed, 2 unusable input or arguments, 3 database unreachable, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (the running statement cancelled)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: context::GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a project: pgshift.toml and a migrations directory.
    Init(commands::init::Args),
    /// Create a timestamped migration (up and down files).
    New(commands::new::Args),
    /// Analyse migrations for operations that block traffic or break running code (no database needed).
    Check(commands::check::Args),
    /// List every rule of `pgshift check`.
    Rules(commands::rules::Args),
    /// Print a rule's documentation: what it catches, why, and the safe alternative.
    Explain(commands::explain::Args),
    /// Show what `up` would do on the database: locks, table sizes, safe rewrites, lock-duration estimates, the pre-flight checklist.
    Plan(commands::plan::Args),
    /// Apply pending migrations.
    Up(commands::up::Args),
    /// Expand the next online (expand/contract) migration: apply the pending ones before it, then add the new schema beside the old, kept in step, and backfill it. Old and new code both work afterwards.
    Start(commands::online::StartArgs),
    /// Contract the expanded online migration, after the deploy: drop what old code needed, one short lock per table.
    Complete(commands::online::PhaseArgs),
    /// Undo the expand of an online migration (any time before `complete`), losing no row written meanwhile.
    Rollback(commands::online::PhaseArgs),
    /// Revert applied migrations (default: the newest one).
    Down(commands::down::Args),
    /// Show applied, pending, changed and missing migrations.
    Status(commands::status::Args),
    /// Revert the newest migration and apply it again.
    Redo(commands::redo::Args),
    /// Record migrations up to VERSION as applied without running them.
    Baseline(commands::baseline::Args),
    /// Record the current checksum of applied migrations whose files were edited.
    Restamp(commands::restamp::Args),
    /// Record what happened to a migration that stopped partway: a step pgshift could not settle by itself, or the whole migration finished by hand.
    Resolve(commands::resolve::Args),
    /// Run an UPDATE over a large table in short, throttled, resumable batches, and prove the end; `backfill status`, `--pause`, `--resume`.
    Backfill(Box<commands::backfill::Args>),
    /// Prove the migrations on a throwaway PostgreSQL: up, down, up, schema compared at every step, analyzer, lock trace.
    Verify(commands::verify::Args),
    /// Run migrations statement by statement and show the locks each really takes and the tables it rewrites.
    Trace(commands::trace::Args),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::completions::Args),
    /// Print the manual page (roff): `pgshift man | man -l -`, or `pgshift man COMMAND` for one command's page.
    Man(commands::man::Args),
}

/// `pgshift --version`: the release, the PostgreSQL majors it supports and the grammar it
/// parses with, read from where each is decided (`-V` prints the release alone).
fn long_version() -> String {
    let majors = pgshift::supported_pg_majors();
    let grammar =
        pgshift_sql::grammar_version().map_or_else(|| "unknown".to_string(), |v| v.to_string());
    format!(
        "{}\nPostgreSQL {} to {} supported\nparser: libpg_query, the PostgreSQL {grammar} grammar",
        env!("CARGO_PKG_VERSION"),
        majors.start(),
        majors.end(),
    )
}

/// Parses the arguments, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let Cli { global, command } = Cli::parse();
    // `completions` and `man` describe the command line itself: they read no configuration,
    // so a broken pgshift.toml cannot stop them.
    let described = match command {
        Command::Completions(args) => commands::completions::run(args),
        Command::Man(args) => commands::man::run(args),
        command => return run_command(&global, command),
    };
    match described {
        Ok(code) => ExitCode::from(code),
        Err(failure) => output::report_failure(&failure, output::Style::stderr()),
    }
}

/// Reads the configuration and runs a command that may use it.
fn run_command(global: &context::GlobalArgs, command: Command) -> ExitCode {
    let ctx = match Context::new(global) {
        Ok(ctx) => ctx,
        Err(failure) => return output::report_failure(&failure, output::Style::stderr()),
    };
    // One thread: every command is one session's sequential work (or a few sessions waiting
    // on the server), and a multi-threaded runtime only adds thread switching to it.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let result = runtime.block_on(async {
        let result = dispatch(command, &ctx).await;
        // The command's connections are dropped: let each say goodbye to the server.
        pgshift_db::sessions_closed(std::time::Duration::from_millis(500)).await;
        result
    });
    // Exit without waiting for a blocking task a signal cut short (a `pg_dump` backup): the
    // process exiting is what closes the sessions and so releases their locks at once.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => output::report_failure(&failure, ctx.err_style),
    }
}

async fn dispatch(command: Command, ctx: &Context) -> Result<u8, Failure> {
    /// What an interrupted `up`, `down`, `redo` or `trace --commit` leaves.
    const MIGRATIONS_STOPPED: &str = "; steps already completed stay applied and recorded. \
        `pgshift status` shows where it stopped; `pgshift up` resumes";
    /// What an interrupted `down` leaves.
    const REVERT_STOPPED: &str = "; steps already reverted stay reverted and recorded. \
        `pgshift status` shows where it stopped; `pgshift down` finishes the revert";
    /// What an interrupted `start`, `complete` or `rollback` leaves.
    const ONLINE_STOPPED: &str = "; steps already completed stay done and recorded. \
        `pgshift status` shows the phase; the same command continues";
    // The commands below run statements on a database: each runs under `cancel_on_signal`, so
    // a signal does not leave a statement running on the server. The others never connect
    // (and `check` blocks the thread, which would hold a signal back until it ends).
    match command {
        Command::Init(args) => commands::init::run(args, ctx),
        Command::New(args) => commands::new::run(args, ctx),
        Command::Check(args) => commands::check::run(args, ctx),
        Command::Rules(args) => commands::rules::run(args, ctx),
        Command::Explain(args) => commands::explain::run(args, ctx),
        Command::Plan(args) => cancel_on_signal("", commands::plan::run(args, ctx)).await,
        Command::Up(args) => {
            cancel_on_signal(MIGRATIONS_STOPPED, commands::up::run(args, ctx)).await
        }
        Command::Down(args) => {
            cancel_on_signal(REVERT_STOPPED, commands::down::run(args, ctx)).await
        }
        Command::Start(args) => {
            cancel_on_signal(ONLINE_STOPPED, commands::online::start(args, ctx)).await
        }
        Command::Complete(args) => {
            cancel_on_signal(ONLINE_STOPPED, commands::online::complete(args, ctx)).await
        }
        Command::Rollback(args) => {
            cancel_on_signal(ONLINE_STOPPED, commands::online::rollback(args, ctx)).await
        }
        Command::Status(args) => cancel_on_signal("", commands::status::run(args, ctx)).await,
        Command::Redo(args) => {
            cancel_on_signal(MIGRATIONS_STOPPED, commands::redo::run(args, ctx)).await
        }
        Command::Baseline(args) => cancel_on_signal("", commands::baseline::run(args, ctx)).await,
        Command::Restamp(args) => cancel_on_signal("", commands::restamp::run(args, ctx)).await,
        Command::Resolve(args) => cancel_on_signal("", commands::resolve::run(args, ctx)).await,
        Command::Backfill(args) => cancel_on_signal(
            "; batches already committed stay done and recorded. `pgshift backfill status` shows where it stopped; the same command resumes",
            commands::backfill::run(*args, ctx),
        )
        .await,
        Command::Verify(args) => cancel_on_signal("", commands::verify::run(args, ctx)).await,
        // Handled before the configuration is read (`main`); the same functions either way.
        Command::Completions(args) => commands::completions::run(args),
        Command::Man(args) => commands::man::run(args),
        Command::Trace(args) => {
            let after = if args.commit {
                MIGRATIONS_STOPPED
            } else {
                "; without --commit, nothing is committed on the database"
            };
            cancel_on_signal(after, commands::trace::run(args, ctx)).await
        }
    }
}
