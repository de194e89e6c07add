//! `hoist diff`.

use std::io::Write;

use anyhow::{Result, bail};

use super::Ctx;

/// Show what changed in a container's filesystem against its image, as `docker diff`:
/// `A` added, `C` changed, `D` deleted.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container (name or ID)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Runs `hoist diff`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let Some(c) = hoist_core::container::find(&store, &args.container)? else {
        bail!("No such container: {}", args.container);
    };
    let mut out = std::io::stdout().lock();
    for ch in c.changes(&store)? {
        writeln!(out, "{ch}")?;
    }
    Ok(())
}
