//! `pgshift completions SHELL`: the shell's completion script, from the same clap
//! definitions as `--help`.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{exit, Cli, Failure};

#[derive(Debug, clap::Args)]
#[command(after_help = "Install (one of):\n  \
    pgshift completions bash > ~/.local/share/bash-completion/completions/pgshift\n  \
    pgshift completions zsh > \"${fpath[1]}/_pgshift\"\n  \
    pgshift completions fish > ~/.config/fish/completions/pgshift.fish")]
pub struct Args {
    /// The shell to write the completion script for.
    pub shell: Shell,
}

pub fn run(args: Args) -> Result<u8, Failure> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "pgshift", &mut script);
    write_stdout(&script)?;
    Ok(exit::OK)
}

/// Writes generated text to stdout; a closed pipe is reported like any other command's.
pub(super) fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
