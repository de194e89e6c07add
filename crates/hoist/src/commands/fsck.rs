//! `hoist fsck`.

use std::io::Write;

use anyhow::Result;

use super::Ctx;

/// Verify every blob (content = digest) and every name (manifest, config and layers present,
/// layers decompress to the config's diff_ids). Exits 1 and lists the problems if any.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `hoist fsck`.
pub fn run(_args: Args, ctx: &Ctx) -> Result<()> {
    let report = ctx.store()?.fsck()?;
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
