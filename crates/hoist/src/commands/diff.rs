//! `hoist diff`.

use std::io::Write;

use anyhow::{Result, bail};

use hoist_core::view::Location;

use super::{Ctx, open};

/// Show what changed, as `docker diff` (`A` added, `C` changed, `D` deleted): in a container's
/// filesystem against its image, or between the final filesystems of two images (a path is C
/// when its type, mode, owner, content, link target or xattrs differ).
///
/// Either image may be in an archive or layout, read in place without loading it (the store
/// is opened only for an image of the store): docker-archive:FILE[:NAME],
/// oci-archive:FILE[:REF], oci:DIR[:REF].
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container, or first image
    #[arg(value_name = "CONTAINER|IMAGE1")]
    pub first: String,
    /// Second image
    #[arg(value_name = "IMAGE2")]
    pub second: Option<String>,
    /// The platform to pick from an archive holding several (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
}

/// Runs `hoist diff`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let changes = match &args.second {
        Some(second) => {
            let a = open::image(ctx, &args.first, args.platform.as_deref())?;
            let b = open::image(ctx, second, args.platform.as_deref())?;
            hoist_core::ops::diff::diff_images(&a, &b)?
        }
        None => {
            if !Location::parse(&args.first)?.is_store() {
                bail!(
                    "{}: an archive is no container: give a second image",
                    args.first
                );
            }
            let store = ctx.store()?;
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
