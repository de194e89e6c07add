//! `hoist verify`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use hoist_core::archive::verify::{VerifyOptions, VerifyReport, verify_path, verify_stream};

use super::Ctx;
use crate::ui::progress::Progress;

/// Check image archives without loading them and without a store.
///
/// FILE is an archive of any format `hoist load` reads (docker, docker 25+/containerd, OCI,
/// legacy; compressed as a whole or not), an OCI layout directory, a split set (`FILE.000`, or
/// `FILE` when only the parts exist; see `hoist save --split`), or "-" for stdin. In one pass,
/// every blob is checked against its digest and the size its manifest gives, every layer
/// against its config's diff_id (gzip, zstd, xz and bzip2 layers are decompressed),
/// manifest.json, index.json and repositories against what the archive holds, and every
/// part of a split set against FILE.sha256. The layers a delta archive (`hoist save --base`)
/// leaves out are listed as not checked; its patches are checked.
///
/// Prints a summary ("OK: 3 images, 12 blobs, 9 layers") and exits 0, or lists every problem,
/// each naming the file, part or blob, and exits 1.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archives, directories or split sets ("-" is stdin)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Runs `hoist verify`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let several = args.files.len() > 1;
    let mut failed = Vec::new();
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        let name = file.display().to_string();
        let bar = Progress::bytes(ctx.quiet, "Verifying");
        let cb = |n: u64| bar.set(n);
        let opts = VerifyOptions {
            progress: Some(&cb),
        };
        let report = if file.as_os_str() == "-" {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("requested verify of stdin, but stdin is a terminal: give FILE or a pipe");
            }
            verify_stream(stdin.lock(), &opts)
        } else {
            if let Ok(m) = std::fs::metadata(file)
                && m.is_file()
            {
                bar.set_total(Some(m.len()));
            }
            verify_path(file, &opts).with_context(|| format!("verifying {name}"))?
        };
        bar.finish();
        let prefix = if several {
            format!("{name}: ")
        } else {
            String::new()
        };
        if !ctx.quiet {
            for n in &report.notes {
                writeln!(out, "{prefix}{n}")?;
            }
        }
        for p in &report.problems {
            writeln!(out, "{prefix}{p}")?;
        }
        if report.is_ok() {
            writeln!(out, "{prefix}OK: {}", summary(&report))?;
        } else {
            failed.push(format!(
                "{name} ({})",
                plural(report.problems.len(), "problem")
            ));
        }
    }
    out.flush()?;
    if !failed.is_empty() {
        bail!("verification failed: {}", failed.join(", "));
    }
    Ok(())
}

/// "3 images, 12 blobs, 9 layers, 2 parts" (parts only for a split set).
fn summary(r: &VerifyReport) -> String {
    let mut s = format!(
        "{}, {}, {}",
        plural(r.images, "image"),
        plural(r.blobs, "blob"),
        plural(r.layers, "layer")
    );
    if r.parts > 0 {
        s.push_str(&format!(", {}", plural(r.parts, "part")));
    }
    s
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
