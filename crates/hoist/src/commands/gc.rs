//! `hoist gc`.

use std::io::Write;

use anyhow::Result;

use super::Ctx;
use crate::ui::human;

/// Remove blobs that no image uses and staging left by interrupted writes.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `hoist gc`.
pub fn run(_args: Args, ctx: &Ctx) -> Result<()> {
    let r = ctx.store()?.gc()?;
    if !ctx.quiet {
        writeln!(
            std::io::stdout().lock(),
            "removed {} blobs, freed {}",
            r.blobs_removed,
            human::size(r.bytes_freed)
        )?;
    }
    Ok(())
}
