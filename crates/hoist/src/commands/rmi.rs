//! `hoist rmi`.

use std::io::Write;

use anyhow::Result;
use hoist_core::store::RemoveEvent;

use super::Ctx;

/// Remove image names; an image with no name left is removed (its blobs are freed by `hoist gc`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove an image by ID even when it has several names
    #[arg(short, long)]
    pub force: bool,
    /// Images (names or IDs)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// Runs `hoist rmi`. Every image is tried; the exit status is 1 if any failed.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for spec in &args.images {
        match store.remove(spec, args.force) {
            Ok(events) => {
                for e in events {
                    match e {
                        RemoveEvent::Untagged(n) => writeln!(out, "Untagged: {}", n.familiar())?,
                        RemoveEvent::Deleted(d) => writeln!(out, "Deleted: {d}")?,
                    }
                }
            }
            Err(e) => {
                eprintln!("hoist: error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} images could not be removed",
            args.images.len()
        );
    }
    Ok(())
}
