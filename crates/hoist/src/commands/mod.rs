//! One module per subcommand; each has `Args` (its `--help`) and `run`.

pub mod completions;
pub mod container;
pub mod export;
pub mod fsck;
pub mod gc;
pub mod history;
pub mod images;
pub mod import;
pub mod inspect;
pub mod load;
mod output;
pub mod rmi;
pub mod save;
pub mod tag;

use std::path::PathBuf;

use anyhow::{Context, Result};
use hoist_core::Store;

use crate::cli::{Cli, Command};

/// What every command gets: the store location and the global flags.
#[derive(Debug)]
pub struct Ctx {
    /// The store root.
    pub root: PathBuf,
    /// `--quiet`.
    pub quiet: bool,
}

impl Ctx {
    /// Opens (creating on first use) the store.
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.root)
            .with_context(|| format!("opening the store at {}", self.root.display()))
    }
}

/// Dispatches to the subcommand.
pub fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        root: cli.root.clone().unwrap_or_else(Store::default_root),
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Load(a) => load::run(a, &ctx),
        Command::Save(a) => save::run(a, &ctx),
        Command::Export(a) => export::run(a, &ctx),
        Command::Import(a) => import::run(a, &ctx),
        Command::Images(a) => images::run(a, &ctx),
        Command::Tag(a) => tag::run(a, &ctx),
        Command::Rmi(a) => rmi::run(a, &ctx),
        Command::Inspect(a) => inspect::run(a, &ctx),
        Command::History(a) => history::run(a, &ctx),
        Command::Fsck(a) => fsck::run(a, &ctx),
        Command::Gc(a) => gc::run(a, &ctx),
        Command::Completions(a) => completions::run(a),
    }
}
