//! `hoist completions`.

use anyhow::Result;
use clap::CommandFactory;

/// Print a shell completion script (e.g. `hoist completions bash > /etc/bash_completion.d/hoist`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Runs `hoist completions`.
pub fn run(args: Args) -> Result<()> {
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "hoist", &mut std::io::stdout().lock());
    Ok(())
}
