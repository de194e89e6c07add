//! `hoist squash`.

use std::io::Write;

use anyhow::Result;
use hoist_core::ops::squash::{SquashOptions, squash};

use super::Ctx;

/// Merge all layers (or the top N) into one, keeping the config (Cmd, Env, Entrypoint,
/// Labels, …): the wasted bytes of overwritten and deleted files go away, the final
/// filesystem stays the same. Prints the new image ID.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name for the squashed image
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// Squash only the top N layers
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Image (name or ID)
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

/// Runs `hoist squash`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let name = args.tag.as_deref().map(super::image_name).transpose()?;
    let store = ctx.store()?;
    let (img, _) = store.resolve(&args.image)?;
    let r = squash(
        &store,
        &img,
        &SquashOptions {
            last: args.last,
            name,
        },
    )?;
    writeln!(std::io::stdout().lock(), "{}", r.id)?;
    Ok(())
}
