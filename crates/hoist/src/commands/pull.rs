//! `hoist pull`.

use std::io::Write;

use anyhow::{Context, Result, bail};
use hoist_format::platform::Platform;
use hoist_registry::pull::{PullEvent, PullOptions, pull};

use super::Ctx;
use crate::ui::progress::Progress;

/// Pull an image from a registry into the store.
///
/// The manifest is resolved (from a multi-platform index, the host's platform or --platform;
/// with --all-platforms the index is kept with every platform's image), the config and the
/// layers the store lacks are downloaded a few at a time and verified (digest, size, diff_id)
/// as they arrive; only then does the image appear in the store under NAME. A failed pull
/// leaves the store as it was. Plain HTTP is used only for registries on a loopback address
/// (or with --tls-verify=false).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: NAME[:TAG] or NAME@DIGEST (docker.io/library/ is implied as in docker)
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
    /// Take this platform from a multi-platform image [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Keep the index and every platform's image (NAME then shows as the host's platform)
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

/// Runs `hoist pull`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let reference = hoist_format::reference::Reference::parse_normalized(&args.name)
        .with_context(|| format!("invalid image name {:?}", args.name))?;
    if reference.domain().is_empty() {
        bail!("invalid image name {:?}: no registry host", args.name);
    }
    let reference = reference.with_default_tag();
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let store = ctx.store()?;
    let client = args.registry.client(reference.domain())?;
    let mut out = std::io::stdout().lock();
    if !ctx.quiet {
        let shown = reference
            .tag()
            .map_or_else(
                || reference.digest().map(|d| d.to_string()),
                |t| Some(t.to_string()),
            )
            .unwrap_or_default();
        writeln!(out, "{shown}: Pulling from {}", reference.path())?;
        out.flush()?;
    }
    let bar = Progress::bytes(ctx.quiet, "Downloading");
    let quiet = ctx.quiet;
    let events = |e: PullEvent| {
        if quiet {
            return;
        }
        match e {
            PullEvent::LayerExists(d) => bar.line(&format!("{}: Already exists", d.short())),
            PullEvent::LayerDownloading(_) => {}
            PullEvent::LayerDone(d) => bar.line(&format!("{}: Pull complete", d.short())),
            PullEvent::Total(n) => bar.set_total(Some(n)),
            PullEvent::Bytes(n) => bar.inc(n),
        }
    };
    drop(out);
    let opts = PullOptions {
        platform,
        all_platforms: args.all_platforms,
        progress: Some(&events),
    };
    let report = pull(&store, &client, &reference, &opts);
    bar.finish();
    let report = report.with_context(|| format!("pulling {}", reference.familiar()))?;
    for w in &report.warnings {
        eprintln!("hoist: warning: {w}");
    }
    let mut out = std::io::stdout().lock();
    let shown = reference.familiar();
    if ctx.quiet {
        writeln!(out, "{shown}")?;
        return Ok(());
    }
    writeln!(out, "Digest: {}", report.digest)?;
    if let (Some(n), Some(old)) = (&report.name, &report.moved_from) {
        writeln!(
            out,
            "The image {} already exists, renaming the old one with ID {old} to empty string",
            n.familiar()
        )?;
    }
    if report.changed {
        writeln!(out, "Status: Downloaded newer image for {shown}")?;
    } else {
        writeln!(out, "Status: Image is up to date for {shown}")?;
    }
    writeln!(out, "{shown}")?;
    Ok(())
}
