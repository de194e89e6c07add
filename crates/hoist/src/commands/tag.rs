//! `hoist tag`.

use anyhow::{Context, Result};
use hoist_format::reference::Reference;

use super::Ctx;

/// Give the image SOURCE the name TARGET (moved from any image that had it).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image name or ID
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// New name
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// Runs `hoist tag`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let target = Reference::parse_normalized(&args.target)
        .with_context(|| format!("invalid target name {:?}", args.target))?;
    if target.digest().is_some() {
        anyhow::bail!(
            "refusing to create a tag with a digest reference: {}",
            args.target
        );
    }
    ctx.store()?.tag(&args.source, &target)?;
    Ok(())
}
