//! `hoist push`.

use std::io::Write;

use anyhow::{Context, Result, bail};
use hoist_registry::push::{PushEvent, PushOptions, push};

use super::Ctx;
use crate::ui::progress::Progress;

/// Push an image of the store to a registry.
///
/// The blobs the registry lacks are uploaded (each is checked with HEAD first, and mounted from
/// another repository of the same registry when hoist knows one that has it), then the
/// manifest. Layers the store keeps uncompressed are compressed first (gzip by default,
/// always to the same bytes, into a scratch file in the store) to learn their digest, so a
/// layer the registry has is never uploaded, even by a store that never pushed it; the
/// digest is remembered, so a second push only asks. With --compress none, or when every layer is stored compressed, the manifest goes
/// exactly as stored and the pushed digest is the store's. A name pulled with --all-platforms
/// pushes every platform the store holds, then the index. Plain HTTP is used only for
/// registries on a loopback address (or with --tls-verify=false).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image in the store: NAME[:TAG] or ID
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Where to push: REGISTRY/REPOSITORY[:TAG] [default: IMAGE's own name]
    #[arg(value_name = "DEST")]
    pub dest: Option<String>,
    /// Compress layers the store keeps uncompressed (none: push them as stored)
    #[arg(long, value_enum, default_value = "gzip")]
    pub compress: super::save::CompressArg,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

/// Runs `hoist push`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let (image, _names) = store
        .resolve(&args.image)
        .with_context(|| format!("pushing {}", args.image))?;
    let dest_text = args.dest.as_deref().unwrap_or(&args.image);
    let dest = hoist_format::reference::Reference::parse_normalized(dest_text)
        .with_context(|| format!("invalid destination {dest_text:?}"))?;
    if dest.domain().is_empty() {
        bail!("invalid destination {dest_text:?}: no registry host");
    }
    let dest = dest.with_default_tag();
    let client = args.registry.client(dest.domain())?;
    if !ctx.quiet {
        writeln!(
            std::io::stdout(),
            "The push refers to repository [{}]",
            dest.familiar_name()
        )?;
    }
    let bar = Progress::bytes(ctx.quiet, "Uploading");
    let quiet = ctx.quiet;
    let events = |e: PushEvent| {
        if quiet {
            return;
        }
        match e {
            PushEvent::BlobExists(d) => bar.line(&format!("{}: Layer already exists", d.short())),
            PushEvent::BlobUploading(_) => {}
            PushEvent::BlobPushed(d) => bar.line(&format!("{}: Pushed", d.short())),
            PushEvent::BlobMounted(d, from) => {
                bar.line(&format!("{}: Mounted from {from}", d.short()));
            }
            PushEvent::Total(n) => bar.set_total(Some(n)),
            PushEvent::Bytes(n) => bar.inc(n),
        }
    };
    let opts = PushOptions {
        compress: args.compress.into(),
        mount_from: None,
        progress: Some(&events),
    };
    let report = push(&store, &client, &image, &dest, &opts);
    bar.finish();
    let report =
        report.with_context(|| format!("pushing {} to {}", args.image, dest.familiar()))?;
    for w in &report.warnings {
        eprintln!("hoist: warning: {w}");
    }
    let mut out = std::io::stdout().lock();
    if ctx.quiet {
        writeln!(out, "{}", report.digest)?;
    } else {
        let target = dest
            .tag()
            .map_or_else(|| report.digest.to_string(), str::to_string);
        writeln!(
            out,
            "{target}: digest: {} size: {}",
            report.digest, report.size
        )?;
    }
    Ok(())
}
