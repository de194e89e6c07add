//! `hoist export`.

use std::path::PathBuf;

use anyhow::Result;
use hoist_core::flatten::FlattenOptions;
use hoist_core::ops::export::export_image;

use super::Ctx;
use super::output::write_to;

/// Write the merged filesystem of an image (or of a container) as one flat tar.
///
/// For an image (docker cannot do this), the tar is streamed straight from the layer blobs:
/// nothing is extracted, it works without root, and owners, modes, devices, xattrs and
/// hardlinks are exactly what the layers say. No whiteouts; deterministic output.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to FILE instead of stdout ("-" is stdout)
    #[arg(short, long, value_name = "FILE|-")]
    pub output: Option<PathBuf>,
    /// Container (name or ID) or image (name or ID)
    #[arg(value_name = "CONTAINER|IMAGE")]
    pub target: String,
}

/// Runs `hoist export`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    if let Some(c) = hoist_core::container::find(&store, &args.target)? {
        return write_to(args.output.as_deref(), "an export", |mut w| {
            Ok(c.export(w.as_dyn())?)
        });
    }
    let (img, _) = store.resolve(&args.target)?;
    write_to(args.output.as_deref(), "an export", |mut w| {
        export_image(&store, &img, w.as_dyn(), &FlattenOptions::default())?;
        Ok(())
    })
}
