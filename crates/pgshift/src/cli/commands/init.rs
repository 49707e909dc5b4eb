use std::path::PathBuf;

use pgshift::config::{FILE_NAME, TEMPLATE};

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
    let migrations = root.join("migrations");
    std::fs::create_dir_all(&migrations).map_err(|e| {
        Failure::usage(format!(
            "{}: cannot create the directory: {e}",
            migrations.display()
        ))
    })?;
    if config.exists() {
        outln!("{} already exists; left as it is", config.display())?;
    } else {
        std::fs::write(&config, TEMPLATE)
            .map_err(|e| Failure::usage(format!("{}: cannot write: {e}", config.display())))?;
        outln!("created {}", config.display())?;
    }
    outln!(
        "migrations go in {}; create one with `pgshift new NAME`",
        migrations.display()
    )?;
    Ok(exit::OK)
}
