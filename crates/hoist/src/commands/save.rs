//! `hoist save`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use hoist_core::archive::delta::{add_patches, plan_delta};
use hoist_core::archive::parts::{MIN_PART_SIZE, PartWriter};
use hoist_core::archive::save::{SaveFormat, SaveOptions, resolve_for_save, save};
use hoist_core::compress::IO_BUF_SIZE;
use hoist_format::delta::Inventory;
use hoist_format::media_type::Compression;

use super::Ctx;
use super::output::{Dest, write_to};
use crate::ui::progress::Progress;

/// Save one or more images to an archive (stdout by default).
///
/// Each layer shared by several images is written once and every tag is kept. The same images
/// always give byte-identical archives. IMAGE is a name (a repository without a tag saves
/// all its tags), a full image ID, or a unique ID prefix (all the image's names are kept).
///
/// Several images in --format oci: one index names them all; `hoist load` and containerd's
/// `ctr import` restore every name, skopeo reads one as oci-archive:FILE:NAME. podman 4.3's
/// load refuses an OCI archive of several images ("more than one image in oci"): for podman
/// save them with --format docker, which it loads with every name.
///
/// With --base, the archive is a delta: it still describes every image completely but leaves
/// out each layer the base has on the same layers below (the same chain ID, as docker keys
/// layers), and says so in hoist-delta.json. `hoist load` takes those layers from its store
/// (or from `load --base`); `docker load` of a docker-format delta works on a daemon that has
/// the base image and fails with docker's own "no such file" message on one that does not.
/// With --delta, the other layers may be sent as zstd patches against base layers: such a
/// delta is hoist-only (index.json says so).
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
    /// Leave out the layers BASE has (repeatable): an image of the store, an archive file, an
    /// OCI layout (oci:DIR or a directory), or an inventory file from `hoist inventory`
    /// ("-": an inventory on stdin)
    #[arg(long = "base", value_name = "BASE")]
    pub bases: Vec<String>,
    /// With --base: write each other layer as a zstd patch against the most similar base layer
    /// this store holds (same history step, else same size range), when that is smaller.
    /// Such a delta is hoist-only: `hoist load` rebuilds the layers; docker cannot
    #[arg(long, requires = "bases")]
    pub delta: bool,
    /// Write the archive in parts of at most SIZE bytes: FILE.000, FILE.001, … plus
    /// FILE.sha256 (`sha256sum -c FILE.sha256` checks them; `hoist load -i FILE` and
    /// `cat FILE.0* | hoist load` read them). SIZE is bytes, or a number with K, M or G
    /// (powers of 1024, as in split(1)). FAT32 takes files up to 4 GiB - 1 byte: 4095M fits,
    /// 4G does not. Needs -o FILE
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "output")]
    pub split: Option<u64>,
    /// The images
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// Parses a `--split` size: bytes, or a number with K, M, G or T (also KiB, MiB, GiB, TiB),
/// powers of 1024 as split(1) reads them.
fn parse_size(s: &str) -> Result<u64, String> {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let shift = match unit {
        "" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        _ => {
            return Err(format!(
                "invalid size {s:?}: use bytes or a number with K, M, G or T (powers of 1024)"
            ));
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: it must start with a number"))?;
    let bytes = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))?;
    if bytes < MIN_PART_SIZE {
        return Err(format!(
            "invalid size {s:?}: parts are at least {MIN_PART_SIZE} bytes"
        ));
    }
    Ok(bytes)
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
    let delta = if args.bases.is_empty() {
        None
    } else {
        if args.bases.iter().filter(|b| *b == "-").count() > 1 {
            bail!("--base - can be given once: stdin holds one inventory");
        }
        let mut base = Inventory::new();
        for b in &args.bases {
            base.merge(super::inventory::base(&store, b)?);
        }
        let mut plan = plan_delta(&items, &base, args.bases.clone());
        if args.delta {
            add_patches(&mut plan, &store, &items, &base)?;
        }
        Some(plan)
    };
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
        delta: delta.as_ref(),
    };
    if let Some(part_size) = args.split {
        let out = args
            .output
            .as_deref()
            .filter(|o| o.as_os_str() != "-")
            .context("--split writes files: give -o FILE (not stdout)")?;
        if out.is_dir() {
            bail!("--split: {} is a directory; give -o FILE", out.display());
        }
        let mut parts = PartWriter::new(out, part_size)?;
        {
            let mut w = BufWriter::with_capacity(IO_BUF_SIZE, &mut parts);
            save(&store, &items, &mut w, &opts)
                .with_context(|| format!("writing {}", out.display()))?;
            w.flush()
                .with_context(|| format!("writing {}", out.display()))?;
        }
        parts.finish()?;
    } else {
        write_to(args.output.as_deref(), "an archive", |dest| {
            match dest {
                Dest::File(f) => save(&store, &items, f, &opts)?,
                Dest::Stdout(s) => save(&store, &items, s, &opts)?,
            }
            Ok(())
        })?;
    }
    bar.finish();
    if let Some(d) = &delta
        && !ctx.quiet
    {
        let (n, bytes) = d.omitted_totals();
        eprintln!(
            "Left out {n} layer{} ({}) that the base has",
            if n == 1 { "" } else { "s" },
            crate::ui::human::size(bytes)
        );
        let (n, patches, replaced) = d.patched_totals();
        if args.delta {
            eprintln!(
                "Wrote {n} layer{} ({}) as patches of {}",
                if n == 1 { "" } else { "s" },
                crate::ui::human::size(replaced),
                crate::ui::human::size(patches)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn split_sizes_are_powers_of_1024() {
        assert_eq!(parse_size("4095M"), Ok(4095 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("700M"), Ok(700 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1000000"), Ok(1_000_000));
        for bad in ["", "G", "4GB", "4 G", "-1", "100", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
