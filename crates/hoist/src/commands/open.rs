//! Opening the image a command names: an image of the store, or an archive or layout read in
//! place (`docker-archive:FILE[:NAME]`, `oci-archive:FILE[:REF]`, `oci:DIR[:REF]`). The store
//! is opened only for a store image, so looking into an archive writes nothing under the
//! store's root.

use anyhow::{Context, Result};
use hoist_core::view::{Location, OpenedImage};
use hoist_format::platform::Platform;

use super::Ctx;

/// Opens `spec` (with `--platform`, for an archive holding an index).
pub fn image(ctx: &Ctx, spec: &str, platform: Option<&str>) -> Result<OpenedImage> {
    let loc = Location::parse(spec)?;
    let platform = platform.map(Platform::parse).transpose()?;
    let store = if loc.is_store() {
        Some(ctx.store()?)
    } else {
        None
    };
    OpenedImage::open(&loc, store.as_ref(), platform.as_ref())
        .with_context(|| format!("reading {spec}"))
}

/// The number of layers of the tree `--layer N` asks for (layers 0..=N), or every layer.
pub fn layers_upto(img: &OpenedImage, layer: Option<usize>) -> Result<usize> {
    match layer {
        None => Ok(img.layers()),
        Some(n) if n < img.layers() => Ok(n + 1),
        Some(n) => anyhow::bail!(
            "{}: no layer {n} (the image has {} layers, 0 to {})",
            img.what,
            img.layers(),
            img.layers().saturating_sub(1)
        ),
    }
}
