//! `hoist push`.

use std::io::Write;

use anyhow::{Context, Result, bail};
use hoist_registry::push::{PushEvent, PushOptions, push};
use hoist_registry::{Client, ClientOptions};

use super::Ctx;

/// Push an image of the store to a registry.
///
/// The blobs the registry lacks are uploaded (each is checked with HEAD first, so a second push
/// uploads nothing), then the manifest exactly as stored: the pushed digest is the store's.
/// Layers go as stored (uncompressed layers stay uncompressed). Plain HTTP is used only for
/// registries on a loopback address (or with --insecure).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image in the store: NAME[:TAG] or ID
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Where to push: REGISTRY/REPOSITORY[:TAG] [default: IMAGE's own name]
    #[arg(value_name = "DEST")]
    pub dest: Option<String>,
    /// Allow plain HTTP (after HTTPS fails) to a registry that is not on a loopback address
    #[arg(long)]
    pub insecure: bool,
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
    let client = Client::new(
        dest.domain(),
        ClientOptions {
            insecure: args.insecure,
            credentials: None,
        },
    );
    if !ctx.quiet {
        writeln!(
            std::io::stdout(),
            "The push refers to repository [{}]",
            dest.familiar_name()
        )?;
    }
    let quiet = ctx.quiet;
    let events = move |e: PushEvent| {
        if quiet {
            return;
        }
        let line = match e {
            PushEvent::BlobExists(d) => format!("{}: Layer already exists", d.short()),
            PushEvent::BlobUploading(_) => return,
            PushEvent::BlobPushed(d) => format!("{}: Pushed", d.short()),
        };
        // Progress lines are best effort: a closed stdout shows in the final line.
        let _ = writeln!(std::io::stdout(), "{line}");
    };
    let opts = PushOptions {
        progress: Some(&events),
    };
    let report = push(&store, &client, &image, &dest, &opts)
        .with_context(|| format!("pushing {} to {}", args.image, dest.familiar()))?;
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
