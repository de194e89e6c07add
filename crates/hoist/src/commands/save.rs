//! `hoist save`.

use std::path::PathBuf;

use anyhow::Result;
use hoist_core::archive::save::{SaveFormat, SaveOptions, resolve_for_save, save};
use hoist_format::media_type::Compression;

use super::Ctx;
use super::output::{Dest, write_to};
use crate::ui::progress::Progress;

/// Save one or more images to an archive (stdout by default).
///
/// Each layer shared by several images is written once and every tag is kept. The same images
/// always give byte-identical archives. IMAGE is a name (a repository without a tag saves
/// all its tags), a full image ID, or a unique ID prefix (all the image's names are kept).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to FILE instead of stdout ("-" is stdout)
    #[arg(short, long, value_name = "FILE|-")]
    pub output: Option<PathBuf>,
    /// Archive shape: docker (docker 25+: OCI layout + manifest.json, read by every docker
    /// since 1.10, podman, skopeo, containerd), oci (pure OCI layout), docker-legacy (docker 1.10-24)
    #[arg(long, value_enum, default_value = "docker")]
    pub format: FormatArg,
    /// Compress the whole archive
    #[arg(long, value_enum, default_value = "none")]
    pub compress: CompressArg,
    /// The images
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// docker 25+ shape
    Docker,
    /// pure OCI image layout
    Oci,
    /// docker 1.10-24 shape
    DockerLegacy,
}

/// `--compress` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompressArg {
    /// plain tar
    None,
    /// gzip
    Gzip,
    /// zstd
    Zstd,
}

impl From<CompressArg> for Compression {
    fn from(c: CompressArg) -> Compression {
        match c {
            CompressArg::None => Compression::None,
            CompressArg::Gzip => Compression::Gzip,
            CompressArg::Zstd => Compression::Zstd,
        }
    }
}

/// Runs `hoist save`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let items = resolve_for_save(&store, &args.images)?;
    let bar = Progress::bytes(ctx.quiet, "Saving");
    let cb = |n: u64| bar.set(n);
    let opts = SaveOptions {
        format: match args.format {
            FormatArg::Docker => SaveFormat::Docker,
            FormatArg::Oci => SaveFormat::Oci,
            FormatArg::DockerLegacy => SaveFormat::DockerLegacy,
        },
        compression: Some(args.compress.into()),
        progress: Some(&cb),
        oci_ref_name: None,
    };
    write_to(args.output.as_deref(), "an archive", |dest| {
        match dest {
            Dest::File(f) => save(&store, &items, f, &opts)?,
            Dest::Stdout(s) => save(&store, &items, s, &opts)?,
        }
        Ok(())
    })?;
    bar.finish();
    Ok(())
}
