use std::io::{Read, Write};
use std::path::PathBuf;

use pgshift_lint::render::{render_streaming, OutputFormat};
use pgshift_lint::{
    check_file_in_set_each, check_set_each, check_stream_each, CheckOptions, CheckedFile, PgVersion,
};

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

    // Everything is read first: a path that is not there, or a folder that does not load,
    // fails before anything is written.
    let mut sources: Vec<Source> = Vec::new();
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
        sources.push(Source::Stream(stream));
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
            sources.push(Source::Set(ctx.load_set_from(&dir)?));
        } else if path.is_file() {
            let set = pgshift_source::load_with_folder(path, ctx.format()?)?;
            sources.push(Source::File(set, path.clone()));
        } else {
            return Err(Failure::usage(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
    }
    let changed = match &args.changed_since {
        Some(git_ref) => Some(
            pgshift_source::changed_since(&paths, git_ref)
                .map_err(|e| Failure::usage(format!("--changed-since: {e}")))?,
        ),
        None => None,
    };

    // Each file is written as soon as it is checked (human and JSON output): the report is
    // never held whole.
    let mut files = |each: &mut dyn FnMut(CheckedFile)| {
        let mut keep = |file: CheckedFile| {
            let kept = changed.as_ref().is_none_or(|changed| {
                std::fs::canonicalize(&file.path).is_ok_and(|p| changed.contains(&p))
                    || file.path.to_string_lossy().starts_with('<')
            });
            if kept {
                each(file);
            }
        };
        for source in &sources {
            match source {
                Source::Stream(stream) => check_stream_each(stream, &options, &mut keep),
                Source::Set(set) => check_set_each(set, &options, &mut keep),
                Source::File(set, path) => check_file_in_set_each(set, path, &options, &mut keep),
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let color = ctx.out_style.color && format == OutputFormat::Human;
    let counts = render_streaming(format, &mut out, color, &mut files)?;
    out.flush()?;
    Ok(if counts.error > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

/// What one `check` reads: standard input, a folder, or one file of its folder.
enum Source {
    Stream(pgshift_source::SqlStream),
    Set(pgshift_source::MigrationSet),
    File(pgshift_source::MigrationSet, PathBuf),
}

/// `--pg-version`'s help, naming the default `check` assumes.
fn pg_version_help() -> String {
    format!(
        "The PostgreSQL version the migrations will run on (e.g. 16, 15.2). Default: pgshift.toml, then {}.",
        PgVersion::DEFAULT
    )
}
