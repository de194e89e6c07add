//! `hoist export`.

use std::path::PathBuf;

use anyhow::Result;
use hoist_core::flatten::FlattenOptions;
use hoist_core::ops::export::export_image;
use hoist_core::view::Location;

use super::output::write_to;
use super::{Ctx, open};

/// Write the merged filesystem of an image (or of a container) as one flat tar.
///
/// For an image (docker cannot do this), the tar is streamed straight from the layer blobs:
/// nothing is extracted, it works without root, and owners, modes, devices, xattrs and
/// hardlinks are exactly what the layers say. No whiteouts; deterministic output.
///
/// The image may be in an archive or layout, read in place without loading it (the store is
/// not opened): docker-archive:FILE[:NAME], oci-archive:FILE[:REF], oci:DIR[:REF].
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to FILE instead of stdout ("-" is stdout)
    #[arg(short, long, value_name = "FILE|-")]
    pub output: Option<PathBuf>,
    /// The platform to pick from an archive holding several (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Container (name or ID), image (name or ID), or docker-archive:FILE[:NAME],
    /// oci-archive:FILE[:REF], oci:DIR[:REF]
    #[arg(value_name = "CONTAINER|IMAGE")]
    pub target: String,
}

/// Runs `hoist export`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    // A container is looked for first (in the store), as docker does; an archive is no
    // container, and reading one leaves the store unopened.
    if Location::parse(&args.target)?.is_store() {
        let store = ctx.store()?;
        if let Some(c) = hoist_core::container::find(&store, &args.target)? {
            return write_to(args.output.as_deref(), "an export", |mut w| {
                Ok(c.export(w.as_dyn())?)
            });
        }
    }
    let img = open::image(ctx, &args.target, args.platform.as_deref())?;
    write_to(args.output.as_deref(), "an export", |mut w| {
        export_image(&img, w.as_dyn(), &FlattenOptions::default())?;
        Ok(())
    })
}
