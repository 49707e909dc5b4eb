use std::io::{Read, Write};
use std::path::PathBuf;

use pgshift_lint::render::{render, OutputFormat};
use pgshift_lint::{check_file_in_set, check_set, check_stream, CheckOptions, PgVersion, Report};

use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Migration directories or files (any supported format). `-` reads standard input.
    /// Default: the migrations directory.
    pub paths: Vec<PathBuf>,
    /// Read SQL from standard input and report it under this file name.
    #[arg(long, value_name = "NAME")]
    pub stdin_filename: Option<String>,
    /// Only report migrations added or changed since this git ref (e.g. origin/main).
    #[arg(long, value_name = "GIT_REF")]
    pub changed_since: Option<String>,
    #[arg(long, help = pg_version_help())]
    pub pg_version: Option<String>,
    /// Output: human, json, sarif, github, gitlab.
    #[arg(long, default_value = "human")]
    pub format: String,
    /// Turn a rule off (name or code); repeatable.
    #[arg(long, value_name = "RULE")]
    pub disable: Vec<String>,
    /// Turn an opt-in rule on (name or code, or `all`); repeatable.
    #[arg(long, value_name = "RULE")]
    pub enable: Vec<String>,
    /// The migrations run exactly as written (`pgshift up --exact`, or another tool's runner):
    /// a statement pgshift would rewrite safely is reported at its own severity, not as a note.
    #[arg(long)]
    pub exact: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let format: OutputFormat = args
        .format
        .parse()
        .map_err(|e: pgshift_lint::render::UnknownOutputFormat| Failure::usage(e.to_string()))?;
    let mut options: CheckOptions = ctx.config.config.check.clone();
    if let Some(v) = &args.pg_version {
        options.pg_version = PgVersion::parse(v).ok_or_else(|| {
            Failure::usage(format!(
                "`--pg-version {v}` is not a PostgreSQL version; write e.g. 15 or 14.2"
            ))
        })?;
    }
    if args.exact || ctx.run_options().exact {
        options.runner_rewrites = Some(false);
    }
    options.disable.extend(args.disable.iter().cloned());
    options.enable.extend(args.enable.iter().cloned());
    options
        .validate()
        .map_err(|e| Failure::usage(e.to_string()))?;

    let mut report = Report::default();
    let wants_stdin =
        args.stdin_filename.is_some() || args.paths.iter().any(|p| p.as_os_str() == "-");
    if wants_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Failure::usage(format!("cannot read standard input as UTF-8 text: {e}"))
        })?;
        let name = args.stdin_filename.as_deref().unwrap_or("<stdin>");
        let stream = pgshift_source::read_stream(name, &text);
        if let Some(tool) = stream.tool {
            eprintln!(
                "{} {}: read as {}'s SQL, {} migration(s): {}",
                ctx.err_style.dim("note:"),
                pgshift_sql::printable_line(name),
                tool.title(),
                stream.parts.len(),
                tool.own_lines()
            );
        }
        merge(&mut report, check_stream(&stream, &options));
    }
    let mut paths: Vec<PathBuf> = args
        .paths
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .cloned()
        .collect();
    if paths.is_empty() && !wants_stdin {
        paths.push(ctx.migrations_dir());
    }
    for path in &paths {
        if path.is_dir() {
            let dir = match pgshift_source::migrations_below(path)? {
                Some(found) => {
                    eprintln!(
                        "{} {}; checking the {} migrations in {}",
                        ctx.err_style.dim("note:"),
                        found.source,
                        found.format,
                        found.dir.display()
                    );
                    found.dir
                }
                None => path.clone(),
            };
            let set = ctx.load_set_from(&dir)?;
            merge(&mut report, check_set(&set, &options));
        } else if path.is_file() {
            let set = pgshift_source::load_with_folder(path, ctx.format()?)?;
            merge(&mut report, check_file_in_set(&set, path, &options));
        } else {
            return Err(Failure::usage(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
    }

    if let Some(git_ref) = &args.changed_since {
        let changed = pgshift_source::changed_since(&paths, git_ref)
            .map_err(|e| Failure::usage(format!("--changed-since: {e}")))?;
        report.files.retain(|f| {
            std::fs::canonicalize(&f.path).is_ok_and(|p| changed.contains(&p))
                || f.path.to_string_lossy().starts_with('<')
        });
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let color = ctx.out_style.color && format == OutputFormat::Human;
    render(&report, format, &mut out, color)?;
    out.flush()?;
    Ok(if report.has_errors() {
        exit::FAILED
    } else {
        exit::OK
    })
}

fn merge(into: &mut Report, from: Report) {
    into.files.extend(from.files);
}

/// `--pg-version`'s help, naming the default `check` assumes.
fn pg_version_help() -> String {
    format!(
        "The PostgreSQL version the migrations will run on (e.g. 16, 15.2). Default: pgshift.toml, then {}.",
        PgVersion::DEFAULT
    )
}
