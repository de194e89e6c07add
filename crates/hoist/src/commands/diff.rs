//! `hoist diff`.

use std::io::Write;

use anyhow::{Result, bail};

use super::Ctx;

/// Show what changed, as `docker diff` (`A` added, `C` changed, `D` deleted): in a container's
/// filesystem against its image, or between the final filesystems of two images (a path is C
/// when its type, mode, owner, content, link target or xattrs differ).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container, or first image
    #[arg(value_name = "CONTAINER|IMAGE1")]
    pub first: String,
    /// Second image
    #[arg(value_name = "IMAGE2")]
    pub second: Option<String>,
}

/// Runs `hoist diff`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let changes = match &args.second {
        Some(second) => {
            let (a, _) = store.resolve(&args.first)?;
            let (b, _) = store.resolve(second)?;
            hoist_core::ops::diff::diff_images(&store, &a, &b)?
        }
        None => {
            let Some(c) = hoist_core::container::find(&store, &args.first)? else {
                bail!("No such container: {}", args.first);
            };
            c.changes(&store)?
        }
    };
    let mut out = std::io::stdout().lock();
    for ch in changes {
        writeln!(out, "{ch}")?;
    }
    Ok(())
}
