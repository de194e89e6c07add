//! `hoist cat`.

use std::io::Write;

use anyhow::{Context, Result, bail};
use hoist_core::flatten::FinalKind;
use hoist_core::view::lookup::{resolve, show};

use super::Ctx;
use super::open;

/// Print files of an image without running or unpacking it. Only the files' own bytes are
/// read (from where each starts in its layer, through the layer index).
///
/// IMAGE is an image of the store, or an archive read in place: docker-archive:FILE[:NAME],
/// oci-archive:FILE[:REF], oci:DIR[:REF]. Symlinks are followed inside the image's root,
/// never the host's.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read the paths as layer N left them (the tree of layers 0..=N)
    #[arg(long, value_name = "N")]
    pub layer: Option<usize>,
    /// The platform to pick from an archive holding several (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Image (name or ID), or docker-archive:FILE[:NAME], oci-archive:FILE[:REF], oci:DIR[:REF]
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Files in the image
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<std::ffi::OsString>,
}

/// Runs `hoist cat`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let img = open::image(ctx, &args.image, args.platform.as_deref())?;
    let count = open::layers_upto(&img, args.layer)?;
    let tree = img
        .tree(count)
        .with_context(|| format!("reading {}", img.what))?;
    // Every path is checked before anything is printed.
    let mut files = Vec::new();
    for p in &args.paths {
        use std::os::unix::ffi::OsStrExt;
        let found = resolve(&tree, p.as_bytes(), true).with_context(|| img.what.clone())?;
        let p = p.to_string_lossy();
        let shown = show(&found.path);
        match (found.entry.kind, found.entry.source) {
            (FinalKind::Regular { size }, Some(source)) => files.push((source, size)),
            (FinalKind::Directory, _) => bail!("{}: {p}: is a directory ({shown})", img.what),
            _ => bail!("{}: {p}: not a regular file ({shown})", img.what),
        }
    }
    let mut out = std::io::stdout().lock();
    for ((source, size), p) in files.into_iter().zip(&args.paths) {
        let p = p.to_string_lossy();
        let mut r = img
            .open_entry(source, size)
            .with_context(|| format!("{}: {p}", img.what))?;
        let n = std::io::copy(&mut r, &mut out)
            .with_context(|| format!("{}: reading {p}", img.what))?;
        if n != size {
            bail!("{}: {p}: a file of {size} bytes gave {n}", img.what);
        }
    }
    out.flush()?;
    Ok(())
}
