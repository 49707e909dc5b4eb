//! `pgshift man [COMMAND]`: the manual page in roff, from the same clap definitions as
//! `--help`: `pgshift(1)`, or `pgshift-COMMAND(1)` for one command.

use clap::CommandFactory;

use super::completions::write_stdout;
use crate::cli::{exit, Cli, Failure};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Install: pgshift man > ~/.local/share/man/man1/pgshift.1 \
    (and `pgshift man check > ~/.local/share/man/man1/pgshift-check.1`, ...), then `man pgshift`.\n\
    Read it without installing: pgshift man | man -l -"
)]
pub struct Args {
    /// A command (`check`, `up`, ...): its own page, `pgshift-COMMAND(1)`, with every flag.
    pub command: Option<String>,
}

pub fn run(args: Args) -> Result<u8, Failure> {
    let root = Cli::command();
    let page = match &args.command {
        None => root,
        Some(name) => {
            let Some(sub) = root.find_subcommand(name) else {
                let names: Vec<&str> = root.get_subcommands().map(|c| c.get_name()).collect();
                return Err(Failure::usage(format!(
                    "no command named `{name}`; the commands are: {}",
                    names.join(", ")
                )));
            };
            // The page's name is what `man` is asked for: pgshift-check(1).
            let name = format!("pgshift-{}", sub.get_name());
            let version = root.get_version().unwrap_or_default().to_string();
            sub.clone().name(name).version(version)
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff)?;
    write_stdout(&roff)?;
    Ok(exit::OK)
}
