use std::path::PathBuf;

use pgshift::config::{template, FILE_NAME};

use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory (default: the current directory).
    pub path: Option<PathBuf>,
}

pub fn run(args: Args, _ctx: &Context) -> Result<u8, Failure> {
    let root = args.path.unwrap_or_else(|| PathBuf::from("."));
    let config = root.join(FILE_NAME);
    // A Prisma, Drizzle or dbmate project already has its migrations folder: point at it
    // rather than creating an empty `migrations/` beside it.
    let found = pgshift_source::find_tool_folder(&root);
    let migrations = match &found {
        Some(found) => found.dir.clone(),
        None => {
            let migrations = root.join("migrations");
            std::fs::create_dir_all(&migrations).map_err(|e| {
                Failure::usage(format!(
                    "{}: cannot create the directory: {e}",
                    migrations.display()
                ))
            })?;
            migrations
        }
    };
    let dir = migrations
        .strip_prefix(&root)
        .unwrap_or(&migrations)
        .to_string_lossy()
        .replace('\\', "/");
    let written = !config.exists();
    if written {
        std::fs::write(&config, template(&dir))
            .map_err(|e| Failure::usage(format!("{}: cannot write: {e}", config.display())))?;
        outln!("created {}", config.display())?;
    } else {
        outln!("{} already exists; left as it is", config.display())?;
    }
    match &found {
        Some(found) if written => outln!(
            "found {} migrations in {} ({}): wrote `dir = \"{dir}\"` in {FILE_NAME}; pgshift reads them where they are",
            found.format.descriptor().title,
            migrations.display(),
            found.source
        )?,
        Some(found) => outln!(
            "found {} migrations in {} ({}); if {FILE_NAME} does not say so, set `dir = \"{dir}\"` in it",
            found.format.descriptor().title,
            migrations.display(),
            found.source
        )?,
        None => outln!(
            "migrations go in {}; create one with `pgshift new NAME`",
            migrations.display()
        )?,
    }
    Ok(exit::OK)
}
