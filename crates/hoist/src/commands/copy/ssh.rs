//! `hoist copy` to and from `ssh://[USER@]HOST[:PORT]/IMAGE`: hoist itself on the far side,
//! run over the system ssh (no daemon, no temporary registry), streaming an archive through
//! ssh's stdin or stdout. The receiving side loads it as `hoist load` does: every blob verified,
//! the image landed atomically, so a failure anywhere leaves both stores as they were.

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, Result, bail};
use hoist_core::archive::save::{SaveItem, SaveOptions, save};
use hoist_core::archive::{self, LoadOptions};
use hoist_core::remote::{Exchange, Remote, SshLocation};
use hoist_format::Digest;

use super::Args;
use crate::commands::{Ctx, image_name};
use crate::ui::human;
use crate::ui::progress::Progress;

/// The environment variable with the ssh command line (split on whitespace), as rsync's `-e`.
const SSH_ENV: &str = "HOIST_SSH";

/// The far hoist for `location`: `$HOIST_SSH` (default `ssh`) and `--remote-hoist`.
fn remote(args: &Args, location: &SshLocation) -> Result<Remote> {
    let ssh: Vec<String> = match std::env::var(SSH_ENV) {
        Ok(v) => v.split_whitespace().map(str::to_string).collect(),
        Err(std::env::VarError::NotPresent) => vec!["ssh".to_string()],
        Err(e) => bail!("${SSH_ENV}: {e}"),
    };
    if ssh.is_empty() {
        bail!("${SSH_ENV} is set but empty: give the ssh command, or unset it for `ssh`");
    }
    if args.remote_hoist.trim().is_empty() {
        bail!("--remote-hoist is empty: give the far hoist's command");
    }
    Ok(Remote {
        ssh,
        location: location.clone(),
        hoist: args.remote_hoist.clone(),
    })
}

/// Refuses the flags that choose among several images: an ssh copy moves one image.
fn one_image(args: &Args) -> Result<()> {
    if args.all || args.platform.is_some() {
        bail!("an ssh:// copy moves the image the name gives: --all and --platform do not apply");
    }
    Ok(())
}

/// `hoist:SPEC` → `ssh://HOST/NAME`: an archive of the image streamed into the far `hoist load`.
pub(super) fn push(args: &Args, ctx: &Ctx, spec: &str, to: &SshLocation) -> Result<()> {
    one_image(args)?;
    let name = image_name(&to.image)?;
    let remote = remote(args, to)?;
    let store = ctx.store()?;
    let (image, _) = store
        .resolve(spec)
        .with_context(|| format!("reading {}", args.src))?;
    let layers: Vec<Digest> = image
        .manifest
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    // The far store's layers: none are assumed yet, every blob is sent.
    let there: HashSet<Digest> = HashSet::new();
    let items = [SaveItem {
        image: image.clone(),
        names: vec![name.clone()],
    }];
    let bar = Progress::bytes(ctx.quiet, "Sending");
    let cb = |n: u64| bar.set(n);
    let opts = SaveOptions {
        progress: Some(&cb),
        ..SaveOptions::default()
    };
    let tag = name.to_string();
    let ((), sent) = remote
        .send(&["load", "-t", &tag], |w| save(&store, &items, w, &opts))
        .with_context(|| format!("copying {} to {}", args.src, args.dest))?;
    bar.finish();
    warn(&sent);
    if !ctx.quiet {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", image.manifest_digest)?;
        let moved = layers.iter().filter(|l| !there.contains(l)).count();
        writeln!(
            out,
            "sent {}: {moved} of {} layers ({} already there); received {}",
            human::size(sent.sent),
            layers.len(),
            layers.len() - moved,
            human::size(sent.received),
        )?;
    }
    Ok(())
}

/// `ssh://HOST/IMAGE` → `hoist:SPEC`: the far `hoist save` streamed into this store's load.
pub(super) fn pull(args: &Args, ctx: &Ctx, from: &SshLocation, spec: &str) -> Result<()> {
    one_image(args)?;
    let name = image_name(spec)?;
    let remote = remote(args, from)?;
    let store = ctx.store()?;
    // The layers this store holds before the copy, to tell what came over.
    let here: HashSet<Digest> = store
        .images()?
        .iter()
        .flat_map(|(i, _)| i.manifest.layers.iter().map(|l| l.digest.clone()))
        .collect();
    let bar = Progress::bytes(ctx.quiet, "Receiving");
    let cb = |n: u64| bar.set(n);
    let opts = LoadOptions {
        tags: vec![name],
        platform: None,
        progress: Some(&cb),
    };
    let (report, got) = remote
        .receive(&["save", "--", &from.image], b"", |r| {
            archive::load(&store, r, &opts)
        })
        .with_context(|| format!("copying {} to {}", args.src, args.dest))?;
    bar.finish();
    warn(&got);
    let [loaded] = report.images.as_slice() else {
        bail!(
            "copying {} to {}: the far side sent {} images, not one",
            args.src,
            args.dest,
            report.images.len()
        );
    };
    let image = store.image(&loaded.manifest)?;
    if !ctx.quiet {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", loaded.manifest.digest)?;
        let layers = &image.manifest.layers;
        let moved = layers.iter().filter(|l| !here.contains(&l.digest)).count();
        writeln!(
            out,
            "received {}: {moved} of {} layers ({} already here); sent {}",
            human::size(got.received),
            layers.len(),
            layers.len() - moved,
            human::size(got.sent),
        )?;
    }
    Ok(())
}

/// The far side's warnings, each line already prefixed with its host.
fn warn(ex: &Exchange) {
    if !ex.stderr.is_empty() {
        eprintln!("{}", ex.stderr);
    }
}
