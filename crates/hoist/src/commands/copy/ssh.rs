//! `hoist copy` to and from `ssh://[USER@]HOST[:PORT]/IMAGE`: hoist itself on the far side,
//! run over the system ssh (no daemon, no temporary registry), streaming a delta archive
//! through ssh's stdin or stdout.
//!
//! - To the far side: `ssh HOST hoist inventory -o -` tells what its store holds; the archive
//!   made against that inventory (`save --base`) streams into `ssh HOST hoist load -t NAME`.
//! - From the far side: this store's inventory goes to `ssh HOST hoist save --base - IMAGE` on
//!   its stdin, and what it writes is loaded here as one stream.
//!
//! A layer the receiving side holds on the same layers below (the same chain ID) is left out
//! and taken from its store. The receiving side loads as `hoist load` does: every blob
//! verified, the image landed atomically, so a failure anywhere leaves both stores as they were.

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, Result, bail};
use hoist_core::archive::delta::{add_patches, inventory_of_store, plan_delta};
use hoist_core::archive::save::{SaveItem, SaveOptions, save};
use hoist_core::archive::{self, LoadOptions};
use hoist_core::remote::{Exchange, Remote, SshLocation};
use hoist_format::Digest;
use hoist_format::delta::{Inventory, MAX_DOCUMENT_SIZE};
use hoist_format::digest::chain_ids;

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

/// The most an inventory may be, as `Inventory::parse` takes it.
fn document_limit() -> usize {
    usize::try_from(MAX_DOCUMENT_SIZE).unwrap_or(usize::MAX)
}

/// `hoist:SPEC` → `ssh://HOST/NAME`: a delta against the far store's inventory, streamed into
/// the far `hoist load`.
pub(super) fn push(args: &Args, ctx: &Ctx, spec: &str, to: &SshLocation) -> Result<()> {
    one_image(args)?;
    let name = image_name(&to.image)?;
    let remote = remote(args, to)?;
    let store = ctx.store()?;
    let (image, _) = store
        .resolve(spec)
        .with_context(|| format!("reading {}", args.src))?;
    let context = || format!("copying {} to {}", args.src, args.dest);
    let asked = remote
        .capture(&["inventory", "-o", "-"], b"", document_limit())
        .with_context(context)?;
    warn(&asked);
    let far = Inventory::parse(&asked.stdout)
        .with_context(|| format!("the inventory of {}", to.display_host()))
        .with_context(context)?;
    let items = [SaveItem {
        image: image.clone(),
        names: vec![name.clone()],
    }];
    let mut plan = plan_delta(&items, &far, vec![format!("ssh://{}", to.display_host())]);
    if args.delta {
        add_patches(&mut plan, &store, &items, &far).with_context(context)?;
    }
    let bar = Progress::bytes(ctx.quiet, "Sending");
    let cb = |n: u64| bar.set(n);
    let opts = SaveOptions {
        progress: Some(&cb),
        delta: Some(&plan),
        ..SaveOptions::default()
    };
    let tag = name.to_string();
    let ((), sent) = remote
        .send(&["load", "--quiet", "-t", &tag], |w| {
            save(&store, &items, w, &opts)
        })
        .with_context(context)?;
    bar.finish();
    warn(&sent);
    if !ctx.quiet {
        let layers = &image.manifest.layers;
        let (patched, _, _) = plan.patched_totals();
        let there = layers.iter().filter(|l| plan.omits(&l.digest)).count() - patched;
        report(
            &image.manifest_digest,
            ("sent", sent.sent),
            (layers.len() - there, layers.len(), there, "there"),
            ("received", asked.received + sent.received),
        )?;
    }
    Ok(())
}

/// `ssh://HOST/IMAGE` → `hoist:SPEC`: this store's inventory to the far `hoist save --base -`,
/// whose delta is loaded here as one stream.
pub(super) fn pull(args: &Args, ctx: &Ctx, from: &SshLocation, spec: &str) -> Result<()> {
    one_image(args)?;
    let name = image_name(spec)?;
    let remote = remote(args, from)?;
    let store = ctx.store()?;
    let mut here = inventory_of_store(&store, &store.images()?);
    // The far side needs the chains this store has, not what its images are called here.
    for image in &mut here.images {
        image.names.clear();
    }
    let inventory = here.to_bytes();
    // The far side leaves out a layer this store has on the same layers below.
    let chains: HashSet<&Digest> = here
        .images
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| &l.chain_id))
        .collect();
    let bar = Progress::bytes(ctx.quiet, "Receiving");
    let cb = |n: u64| bar.set(n);
    let opts = LoadOptions {
        tags: vec![name],
        platform: None,
        progress: Some(&cb),
        bases: Vec::new(),
    };
    let mut far_args = vec!["save", "--quiet", "--base", "-"];
    if args.delta {
        far_args.push("--delta");
    }
    far_args.extend(["--", &from.image]);
    let (loaded, got) = remote
        .receive(&far_args, &inventory, |r| archive::load(&store, r, &opts))
        .with_context(|| format!("copying {} to {}", args.src, args.dest))?;
    bar.finish();
    warn(&got);
    let [loaded] = loaded.images.as_slice() else {
        bail!(
            "copying {} to {}: the far side sent {} images, not one",
            args.src,
            args.dest,
            loaded.images.len()
        );
    };
    if !ctx.quiet {
        let image = store.image(&loaded.manifest)?;
        let all = chain_ids(&image.config.rootfs.diff_ids);
        let had = all.iter().filter(|c| chains.contains(c)).count();
        report(
            &loaded.manifest.digest,
            ("received", got.received),
            (all.len() - had, all.len(), had, "here"),
            ("sent", got.sent),
        )?;
    }
    Ok(())
}

/// The copy's output: the manifest digest (as every `hoist copy` prints), then what crossed
/// the wire, counted on ssh's pipes: `sent 1.21MB (1210345 bytes): 2 of 5 layers (3 already
/// there); received 1.5kB`.
fn report(
    digest: &Digest,
    (verb, bytes): (&str, u64),
    (moved, total, had, place): (usize, usize, usize, &str),
    (other_verb, other): (&str, u64),
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{digest}")?;
    writeln!(
        out,
        "{verb} {} ({bytes} bytes): {moved} of {total} layers ({had} already {place}); \
         {other_verb} {}",
        human::size(bytes),
        human::size(other),
    )?;
    Ok(())
}

/// The far side's warnings, each line already prefixed with its host.
fn warn(ex: &Exchange) {
    if !ex.stderr.is_empty() {
        eprintln!("{}", ex.stderr);
    }
}
