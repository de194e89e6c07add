//! `hoist save`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use hoist_core::archive::save::{SaveFormat, SaveOptions, resolve_for_save, save};
use hoist_format::media_type::Compression;

use super::Ctx;
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
        compression: Some(match args.compress {
            CompressArg::None => Compression::None,
            CompressArg::Gzip => Compression::Gzip,
            CompressArg::Zstd => Compression::Zstd,
        }),
        progress: Some(&cb),
    };
    match args.output.as_deref() {
        Some(p) if p.as_os_str() != "-" => {
            // Write next to the destination and rename at the end: a failed save never leaves
            // a truncated archive under the requested name.
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let tmp = dir.join(format!(".{name}.hoist-tmp-{}", std::process::id()));
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let result = save(&store, &items, &f, &opts).and_then(|()| {
                f.sync_all().map_err(|source| hoist_core::Error::Io {
                    path: tmp.clone(),
                    source,
                })
            });
            if let Err(e) = result {
                // Best effort: the temp file is ours and useless now.
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("saving to {}", p.display()));
            }
            std::fs::rename(&tmp, p)
                .with_context(|| format!("renaming {} to {}", tmp.display(), p.display()))?;
        }
        _ => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut lock = stdout.lock();
            save(&store, &items, &mut lock, &opts).context("saving to stdout")?;
            lock.flush()?;
        }
    }
    bar.finish();
    Ok(())
}
