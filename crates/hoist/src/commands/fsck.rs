//! `hoist fsck`.

use std::io::Write;

use anyhow::Result;

use super::Ctx;

/// Verify every blob (content = digest) and every name (manifest, config and layers present,
/// layers decompress to the config's diff_ids). Exits 1 and lists the problems if any.
///
/// With --repair, first rebuild every layer index (hoist/index/, what ls, cat, cp, mount and
/// analyze read instead of the layers) that is missing or unreadable.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rebuild missing or unreadable layer indexes first
    #[arg(long)]
    pub repair: bool,
}

/// Runs `hoist fsck`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    if args.repair {
        let built = store.repair_layer_indexes()?;
        if !ctx.quiet {
            println!("rebuilt {built} layer indexes");
        }
    }
    let report = store.fsck()?;
    let mut out = std::io::stdout().lock();
    for p in &report.problems {
        writeln!(out, "{}: {}", p.subject, p.problem)?;
    }
    if !ctx.quiet {
        writeln!(
            out,
            "checked {} blobs and {} names: {} problems{}",
            report.blobs_checked,
            report.entries_checked,
            report.problems.len(),
            if report.stale_staging > 0 {
                format!(
                    " ({} staging directories of interrupted writes; `hoist gc` removes them)",
                    report.stale_staging
                )
            } else {
                String::new()
            }
        )?;
    }
    if !report.problems.is_empty() {
        anyhow::bail!(
            "the store at {} has {} problems",
            ctx.root.display(),
            report.problems.len()
        );
    }
    Ok(())
}
