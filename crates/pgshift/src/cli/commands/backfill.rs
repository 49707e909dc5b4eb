use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pgshift_db::DatabaseUrl;
use pgshift_runner::backfill::{
    self, mode, state, Backfill, BackfillError, BackfillOptions, BackfillSpec, BusyOptions, Phase,
    Progress,
};
use pgshift_runner::{parse_duration, Event};

use crate::cli::output::{log_event, outln, Style};
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  pgshift backfill --table users --set \"full_name = first_name || ' ' || last_name\" --where \"full_name IS NULL\"\n  pgshift backfill status\n  pgshift backfill --pause users-1a2b3c4d\n  pgshift backfill --resume users-1a2b3c4d\n\nThe same command resumes a backfill that stopped (killed, Ctrl-C, a failed batch) where its last batch committed."
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// The table to update (schema-qualified or found on the search_path).
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
    /// The assignments, as in UPDATE ... SET: "col = expr[, col2 = expr2]".
    #[arg(long, value_name = "ASSIGNMENTS")]
    pub set: Option<String>,
    /// Only rows matching this condition, as in UPDATE ... WHERE.
    #[arg(long = "where", value_name = "CONDITION")]
    pub filter: Option<String>,
    /// Name the backfill (default: the table and a hash of the statement).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Start over, even if a run of the same backfill stopped partway or finished.
    #[arg(long)]
    pub restart: bool,
    /// Validate, and estimate rows, batches, WAL and time (one sample batch, rolled back).
    #[arg(long)]
    pub dry_run: bool,
    /// Pause a running backfill (from any machine); NAME can be left out when one is unfinished.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", conflicts_with_all = ["table", "set", "resume"])]
    pub pause: Option<String>,
    /// Let a paused backfill go on.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", conflicts_with_all = ["table", "set"])]
    pub resume: Option<String>,
    /// How long one batch should take; its rows stay locked that long. Default 200ms.
    #[arg(long, value_name = "DURATION")]
    pub batch_time: Option<String>,
    /// Rows in the first batch (then sized to --batch-time). Default 1000.
    #[arg(long, value_name = "ROWS")]
    pub batch_size: Option<u64>,
    /// Most rows in one batch. Default 100000.
    #[arg(long, value_name = "ROWS")]
    pub max_batch: Option<u64>,
    /// How long a batch waits for a row the application holds before it is retried smaller. Default 100ms.
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<String>,
    /// statement_timeout of each batch statement. Default 30s.
    #[arg(long, value_name = "DURATION")]
    pub statement_timeout: Option<String>,
    /// Share of time spent in batches (0.1 to 1); the rest is rest between batches. Default 1.
    #[arg(long, value_name = "FRACTION")]
    pub duty: Option<f64>,
    /// While other sessions are at work (running a query, or in a transaction): the share of time spent in batches, which then aim at 10ms (0.01 to 1, or `off`: full speed). Default 0.1.
    #[arg(long, value_name = "FRACTION")]
    pub when_busy: Option<String>,
    /// At most this many rows per second.
    #[arg(long, value_name = "ROWS")]
    pub max_rate: Option<u64>,
    /// A partitioned table: how many leaf partitions are walked at once, each on its own session (the rate and the throttle are shared). Default 2.
    #[arg(long, value_name = "N")]
    pub partitions_at_once: Option<usize>,
    /// Pause while a replica's replay lag is above this (or `off`). Default 2s.
    #[arg(long, value_name = "DURATION")]
    pub max_replica_lag: Option<String>,
    /// Read replay lag from this replica too.
    #[arg(long, value_name = "URL")]
    pub replica_url: Option<String>,
    /// Pause while a logical replication slot holds back more WAL than this (or `off`). Default 1GB.
    #[arg(long, value_name = "SIZE")]
    pub max_slot_wal: Option<String>,
    /// Slow down while WAL is written faster than this per second (e.g. 50MB). Default off.
    #[arg(long, value_name = "SIZE")]
    pub max_wal_rate: Option<String>,
    /// A query returning one boolean; while it returns true the backfill pauses.
    #[arg(long, value_name = "SQL")]
    pub throttle_query: Option<String>,
    /// Output: human or json.
    #[arg(long, default_value = "human")]
    pub format: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Show every backfill recorded in the database: progress, rate, status, throttle reason.
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this backfill.
    pub name: Option<String>,
    /// Output: human or json.
    #[arg(long, default_value = "human")]
    pub format: String,
}

pub async fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let json = check_format(&args.format)?;
    if let Some(Action::Status(status)) = &args.action {
        return show_status(status, ctx).await;
    }
    if let Some(name) = &args.pause {
        return switch(ctx, name, true).await;
    }
    if let Some(name) = &args.resume {
        return switch(ctx, name, false).await;
    }
    let (Some(table), Some(set)) = (&args.table, &args.set) else {
        return Err(Failure::usage(
            "pgshift backfill needs --table and --set (and optionally --where); `pgshift backfill status` lists backfills",
        ));
    };
    let spec = BackfillSpec::from_flags(table, set, args.filter.as_deref(), args.name.clone())
        .map_err(failure)?;
    let backfill = Backfill {
        spec,
        options: options(&args)?,
    };
    let url = ctx.database_url()?;
    let conn = pgshift_db::connect(&url).await?;
    if args.dry_run {
        let e = backfill::dry_run(&backfill, &conn).await.map_err(failure)?;
        if json {
            outln!("{}", to_json(&e)?)?;
        } else {
            outln!("{} {}", ctx.out_style.bold("backfill"), e.id)?;
            outln!("  statement: {}", e.statement)?;
            outln!(
                "  table:     {} (about {} rows), walked by {}",
                e.table,
                e.table_rows,
                e.walk
            )?;
            match &e.runs_once {
                None => {
                    outln!(
                        "  mode:      updates the rows that still need it (each column compared with its expression), walking again while some are left, up to {} times; the end is proved by counting",
                        backfill.options.max_passes
                    )?;
                    outln!(
                        "  rows:      about {} need the update (planner estimate)",
                        e.rows_needed
                    )?;
                }
                Some(why) => {
                    outln!("  mode:      {}", mode::explain(why))?;
                    outln!(
                        "  rows:      about {} in scope, each updated once (planner estimate)",
                        e.rows_needed
                    )?;
                }
            }
            outln!(
                "  estimate:  {} batches, {} of WAL, {} (from a sample of {} rows that took {} ms, rolled back)",
                e.batches,
                bytes(e.wal_bytes),
                human_duration(e.time),
                e.sample_rows,
                e.sample_duration.as_millis()
            )?;
            outln!("  nothing was changed (--dry-run)")?;
        }
        return Ok(exit::OK);
    }
    let view = ProgressView::new(ctx.err_style, json);
    let observer = |event: &Event| view.show(event);
    let result = backfill.run(&conn, &observer).await;
    view.finish();
    let outcome = result.map_err(failure)?;
    if json {
        outln!("{}", to_json(&outcome)?)?;
        return Ok(exit::OK);
    }
    let style = ctx.out_style;
    if outcome.already_done {
        outln!(
            "{} backfill {} had already finished ({} rows); --restart runs it again",
            style.green("done:"),
            outcome.id,
            outcome.rows_total
        )?;
        return Ok(exit::OK);
    }
    if let Some(why) = &outcome.runs_once {
        outln!(
            "{} backfill {}: {} rows updated in {} ({} batches, one pass)\n  it {}",
            style.green("done:"),
            outcome.id,
            outcome.rows_updated,
            human_duration(outcome.duration),
            outcome.batches,
            mode::explain(why)
        )?;
        if outcome.beyond_bound > 0 {
            outln!(
                "{} {} rows inserted after the backfill started are in its scope but past its end (fixed at the start), and were not updated. Update them with a --where that selects only them; --restart would update every row again",
                style.yellow("note:"),
                outcome.beyond_bound
            )?;
        }
        return Ok(exit::OK);
    }
    outln!(
        "{} backfill {}: {} rows updated in {} ({} batches, {} pass{}); proved: no row of {} still needs it",
        style.green("done:"),
        outcome.id,
        outcome.rows_updated,
        human_duration(outcome.duration),
        outcome.batches,
        outcome.passes,
        if outcome.passes == 1 { "" } else { "es" },
        outcome.table
    )?;
    if outcome.null_results > 0 {
        outln!(
            "{} {} rows in scope got NULL from the SET expressions (a NULL input?); they hold NULL now",
            style.yellow("note:"),
            outcome.null_results
        )?;
    }
    if outcome.beyond_bound > 0 {
        outln!(
            "{} {} rows inserted after the backfill started also match: they were outside it (its end was fixed at the start). Make the application write them, then run the backfill again with --restart to take them",
            style.yellow("note:"),
            outcome.beyond_bound
        )?;
    }
    Ok(exit::OK)
}

fn check_format(format: &str) -> Result<bool, Failure> {
    match format {
        "human" => Ok(false),
        "json" => Ok(true),
        other => Err(Failure::usage(format!(
            "unknown format `{other}` for `backfill`; use human or json"
        ))),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(|e| Failure::usage(e.to_string()))
}

/// Exit codes: 3 the database, 1 a backfill that ran and failed (or is already running),
/// 2 input that was refused before anything changed.
fn failure(e: BackfillError) -> Failure {
    let code = match e {
        BackfillError::Db(db) => return Failure::from(db),
        BackfillError::Batch { .. }
        | BackfillError::Unproved { .. }
        | BackfillError::Rewritten { .. }
        | BackfillError::Running { .. } => exit::FAILED,
        _ => exit::USAGE,
    };
    Failure {
        message: e.to_string(),
        code,
    }
}

fn options(args: &Args) -> Result<BackfillOptions, Failure> {
    let mut o = BackfillOptions {
        restart: args.restart,
        ..BackfillOptions::default()
    };
    let duration = |flag: &str, v: &str| {
        parse_duration(v).map_err(|e| Failure::usage(format!("--{flag}: {e}")))
    };
    if let Some(v) = &args.batch_time {
        o.target_batch = duration("batch-time", v)?;
    }
    if let Some(v) = args.batch_size {
        o.initial_batch = v.max(1);
    }
    if let Some(v) = args.max_batch {
        o.max_batch = v.max(1);
        o.min_batch = o.min_batch.min(o.max_batch);
        o.initial_batch = o.initial_batch.min(o.max_batch);
    }
    if let Some(v) = &args.lock_timeout {
        o.lock_timeout = duration("lock-timeout", v)?;
    }
    if let Some(v) = &args.statement_timeout {
        o.statement_timeout = duration("statement-timeout", v)?;
    }
    if let Some(d) = args.duty {
        if !(0.1..=1.0).contains(&d) {
            return Err(Failure::usage("--duty: give a fraction from 0.1 to 1"));
        }
        o.duty = d;
    }
    if let Some(v) = &args.when_busy {
        o.when_busy = match v.as_str() {
            "off" => None,
            v => match v.parse::<f64>() {
                Ok(d) if (0.01..=1.0).contains(&d) => Some(BusyOptions {
                    duty: d,
                    ..BusyOptions::default()
                }),
                _ => {
                    return Err(Failure::usage(
                        "--when-busy: give a fraction from 0.01 to 1, or `off`",
                    ))
                }
            },
        };
    }
    o.max_rows_per_second = args.max_rate.filter(|r| *r > 0);
    if let Some(n) = args.partitions_at_once {
        if !(1..=16).contains(&n) {
            return Err(Failure::usage(
                "--partitions-at-once: give a number from 1 to 16",
            ));
        }
        o.partitions_at_once = n;
    }
    let t = &mut o.throttle;
    if let Some(v) = &args.max_replica_lag {
        t.max_replica_lag = if v == "off" {
            None
        } else {
            Some(duration("max-replica-lag", v)?)
        };
    }
    if let Some(v) = &args.max_slot_wal {
        t.max_slot_wal_bytes = size("max-slot-wal", v)?;
    }
    if let Some(v) = &args.max_wal_rate {
        t.max_wal_rate = size("max-wal-rate", v)?;
    }
    if let Some(url) = &args.replica_url {
        t.replica_url = Some(DatabaseUrl::parse(url)?);
    }
    t.throttle_query = args.throttle_query.clone();
    Ok(o)
}

/// `off`, or a size: `512MB`, `1GB`, `4096` (bytes).
fn size(flag: &str, v: &str) -> Result<Option<u64>, Failure> {
    if v == "off" {
        return Ok(None);
    }
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| {
        Failure::usage(format!(
            "--{flag}: `{v}` is not a size; write e.g. 512MB, 1GB or off"
        ))
    })?;
    let factor = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "K" => 1 << 10,
        "MB" | "M" => 1 << 20,
        "GB" | "G" => 1 << 30,
        _ => {
            return Err(Failure::usage(format!(
                "--{flag}: `{v}` is not a size; write e.g. 512MB, 1GB or off"
            )))
        }
    };
    Ok(Some(n * factor))
}

async fn show_status(args: &StatusArgs, ctx: &Context) -> Result<u8, Failure> {
    let json = check_format(&args.format)?;
    let conn = pgshift_db::connect(&ctx.database_url()?).await?;
    let mut all = state::list(&conn).await?;
    if let Some(name) = &args.name {
        all.retain(|b| &b.id == name);
        if all.is_empty() {
            return Err(failure(BackfillError::Unknown { id: name.clone() }));
        }
    }
    if json {
        outln!("{}", to_json(&all)?)?;
        return Ok(exit::OK);
    }
    let style = ctx.out_style;
    if all.is_empty() {
        outln!("no backfills recorded in this database")?;
        return Ok(exit::OK);
    }
    for b in &all {
        let status = match (b.status.as_str(), b.active) {
            ("done", _) => style.green("done"),
            ("failed", _) => style.red("failed"),
            (s, true) => style.yellow(s),
            (_, false) => style.yellow("stopped (no runner; the same command resumes it)"),
        };
        outln!("{} {}  {}", style.bold(&b.id), status, style.dim(&b.table))?;
        let pct = b
            .progress
            .map(|p| format!("{:.1}%", p * 100.0))
            .unwrap_or_else(|| "?".into());
        let rate = b
            .rows_per_second
            .map(|r| format!(", {r:.0} rows/s"))
            .unwrap_or_default();
        outln!(
            "  {} rows done, {pct} of pass {}{rate}, batch {} ({})",
            b.rows_done,
            b.pass,
            b.batch_size,
            b.walk
        )?;
        outln!("  {}", b.statement)?;
        if let Some(why) = &b.runs_once {
            outln!("  {}", mode::explain(why))?;
        }
        if let Some(reason) = &b.throttle_reason {
            outln!("  waiting: {reason}")?;
        }
        if let Some(err) = &b.last_error {
            outln!("  last error: {}", err.lines().next().unwrap_or(""))?;
        }
        outln!(
            "  started {}{}{}",
            b.started_at,
            b.heartbeat
                .as_deref()
                .map(|h| format!(", last heard {h}"))
                .unwrap_or_default(),
            b.owner
                .as_deref()
                .map(|o| format!(", by {o}"))
                .unwrap_or_default()
        )?;
    }
    Ok(exit::OK)
}

async fn switch(ctx: &Context, name: &str, pause: bool) -> Result<u8, Failure> {
    let conn = pgshift_db::connect(&ctx.database_url()?).await?;
    let id = if name.is_empty() {
        let unfinished: Vec<String> = state::list(&conn)
            .await?
            .into_iter()
            .filter(|b| b.status != "done")
            .map(|b| b.id)
            .collect();
        match unfinished.as_slice() {
            [one] => one.clone(),
            [] => return Err(Failure::usage("no unfinished backfill to pause or resume")),
            many => {
                return Err(Failure::usage(format!(
                    "{} unfinished backfills: name one ({})",
                    many.len(),
                    many.join(", ")
                )))
            }
        }
    } else {
        name.to_owned()
    };
    if !state::request_pause(&conn, &id, pause).await? {
        return Err(failure(BackfillError::Unknown { id }));
    }
    outln!(
        "{}",
        if pause {
            format!("backfill {id}: pause requested; the runner stops after its current batch (`pgshift backfill --resume {id}` lets it go on)")
        } else {
            format!("backfill {id}: resumed; a waiting runner goes on within a second (if none runs, run the same backfill command again)")
        }
    )?;
    Ok(exit::OK)
}

/// The progress display: a bar redrawn in place on a terminal, a plain line every five
/// seconds otherwise (logs, CI). Nothing with `--format json` except warnings.
struct ProgressView {
    style: Style,
    tty: bool,
    quiet: bool,
    last_line: Mutex<Option<Instant>>,
}

impl ProgressView {
    fn new(style: Style, quiet: bool) -> ProgressView {
        ProgressView {
            style,
            tty: std::io::stderr().is_terminal(),
            quiet,
            last_line: Mutex::new(None),
        }
    }

    fn show(&self, event: &Event) {
        match event {
            Event::BackfillProgress(p) => {
                if self.quiet {
                    return;
                }
                let line = progress_line(p);
                if self.tty {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                } else {
                    let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
                    let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
                    if due || p.phase == Phase::Done {
                        eprintln!("{line}");
                        *last = Some(Instant::now());
                    }
                }
            }
            Event::BackfillStarted {
                id,
                table,
                walk,
                estimate,
                resumed_at,
                runs_once,
            } => {
                if self.quiet {
                    return;
                }
                self.finish();
                let resumed = resumed_at
                    .map(|r| format!(", resuming after {r} rows done"))
                    .unwrap_or_default();
                let estimate = estimate
                    .map(|e| format!(", about {e} rows to update"))
                    .unwrap_or_default();
                eprintln!(
                    "{} backfill {id} of {table} by {walk}{estimate}{resumed}",
                    self.style.bold("starting")
                );
                if let Some(why) = runs_once {
                    eprintln!("  it {}", mode::explain(why));
                }
            }
            other => {
                self.finish();
                log_event(self.style, other);
            }
        }
    }

    /// Ends a bar drawn in place, so the next line starts clean.
    fn finish(&self) {
        if self.tty && !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

fn progress_line(p: &Progress) -> String {
    const WIDTH: usize = 24;
    let fraction = p.fraction.unwrap_or(0.0).clamp(0.0, 1.0);
    let filled = (fraction * WIDTH as f64).round() as usize;
    let bar = format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled));
    let phase = match p.phase {
        Phase::Walking { pass: 1 } => String::new(),
        Phase::Walking { pass } => format!(" pass {pass}"),
        Phase::Proving => " proving".into(),
        Phase::Done => " done".into(),
    };
    let total = p.estimate.map(|e| format!("/~{e}")).unwrap_or_default();
    let eta = p
        .eta
        .map(|e| format!(" · ETA {}", human_duration(e)))
        .unwrap_or_default();
    let throttle = p
        .throttle
        .as_deref()
        .map(|t| format!(" · {t}"))
        .unwrap_or_default();
    format!(
        "{bar} {:>5.1}%{phase} {}{total} rows · {:.0} rows/s{eta} · batch {}{throttle}",
        fraction * 100.0,
        p.rows_done,
        p.rows_per_second,
        p.batch_size
    )
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{} ms", d.as_millis())
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GB", b as f64 / (1u64 << 30) as f64)
    } else if b >= 1 << 20 {
        format!("{:.0} MB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.0} kB", b as f64 / 1024.0)
    }
}
