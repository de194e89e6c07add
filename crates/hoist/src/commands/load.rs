//! `hoist load`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use hoist_core::archive::parts::PartSet;
use hoist_core::archive::{self, LoadOptions};
use hoist_format::platform::Platform;

use super::Ctx;
use crate::ui::progress::Progress;

/// Load images from an archive file, an OCI layout directory, or stdin.
///
/// The format is detected from the content: docker legacy v1, docker `manifest.json` archives
/// (docker 1.10-24, skopeo, kaniko, crane), docker 25+ / containerd archives, OCI archives and
/// OCI layout directories. The whole input may be gzip, zstd, xz or bzip2 compressed. Every
/// blob and layer is verified; on any error the store is left exactly as it was. An archive
/// of several images loads every one with every name (podman 4.3 loads only one image from
/// an OCI archive: for podman, `hoist save --format docker`).
///
/// A delta archive (`hoist save --base`) loads when the layers it left out are in the store
/// or in a --base archive; otherwise nothing is loaded and the message names the base images
/// to load or pull first. A layer found as another blob of the same layer (the store's
/// uncompressed copy of a gzip blob, or a layer rebuilt from a `--delta` patch) lands as that
/// blob: the image ID is the same, and its manifest is rebuilt for the blobs it has.
///
/// A split set (`hoist save --split`) is read from `-i FILE.000` or `-i FILE` (when FILE does
/// not exist): its parts are read in order, each checked against FILE.sha256 when present.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read from FILE, a split set (FILE.000 or FILE) or a directory instead of stdin ("-" is
    /// stdin)
    #[arg(short, long, value_name = "FILE|DIR|-")]
    pub input: Option<PathBuf>,
    /// Name the loaded image NAME[:TAG] instead of the names in the archive (repeatable;
    /// with several images in the archive, give one per image, in archive order)
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Choose this platform from multi-platform archives and skip images of other platforms
    /// [default: the host's, for multi-platform indexes only]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// For a delta archive (`save --base`): take the layers it left out from this archive or
    /// OCI layout directory (oci:DIR) when the store does not have them (repeatable)
    #[arg(long = "base", value_name = "ARCHIVE|oci:DIR")]
    pub bases: Vec<String>,
}

/// Runs `hoist load`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let tags = args
        .tags
        .iter()
        .map(|t| super::image_name(t))
        .collect::<Result<Vec<_>>>()?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let store = ctx.store()?;
    let bar = Progress::bytes(ctx.quiet, "Loading");
    let cb = |n: u64| bar.set(n);
    let opts = LoadOptions {
        tags,
        platform,
        progress: Some(&cb),
        bases: args
            .bases
            .iter()
            .map(|b| PathBuf::from(b.strip_prefix("oci:").unwrap_or(b)))
            .collect(),
    };
    let report = match args.input.as_deref() {
        Some(p) if p.as_os_str() != "-" => if p.is_dir() {
            archive::load_dir(&store, p, &opts)
        } else if let Some(set) =
            PartSet::find(p).with_context(|| format!("loading {}", p.display()))?
        {
            bar.set_total(Some(set.total_size()));
            archive::load_parts(&store, &set, &opts)
        } else {
            let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            bar.set_total(f.metadata().map(|m| m.len()).ok());
            archive::load_file(&store, &f, &opts)
        }
        .with_context(|| format!("loading {}", p.display()))?,
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("requested load from stdin, but stdin is a terminal: use -i FILE or a pipe");
            }
            archive::load(&store, stdin.lock(), &opts).context("loading from stdin")?
        }
    };
    bar.finish();
    let mut out = std::io::stdout().lock();
    for img in &report.images {
        for (name, old) in &img.moved {
            writeln!(
                out,
                "The image {} already exists, renaming the old one with ID {} to empty string",
                name.familiar(),
                old
            )?;
        }
        if img.names.is_empty() {
            writeln!(out, "Loaded image ID: {}", img.id)?;
        }
        for n in &img.names {
            writeln!(out, "Loaded image: {}", n.familiar())?;
        }
    }
    Ok(())
}
