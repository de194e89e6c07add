//! `hoist analyze`.

use std::io::{IsTerminal, Write};

use anyhow::{Result, bail};
use hoist_core::ops::analyze::analyze;

use super::{Ctx, open};
use crate::ui::{human, table};

/// Show where an image's bytes go and what its layers waste: bytes of files that upper layers
/// overwrite or delete. Streamed over the layer blobs (nothing is extracted).
///
/// With --ci, exits 1 with a one-line reason when a limit is passed (for pipelines).
///
/// The image may be in an archive or layout, read in place without loading it (the store is
/// not opened): docker-archive:FILE[:NAME], oci-archive:FILE[:REF], oci:DIR[:REF].
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// How many wasted paths to list
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Fail (exit 1) when a limit below is passed
    #[arg(long)]
    pub ci: bool,
    /// With --ci: most wasted bytes allowed
    #[arg(long, value_name = "N", requires = "ci")]
    pub max_wasted_bytes: Option<u64>,
    /// With --ci: most wasted bytes allowed, as a fraction of all file bytes (0..1)
    #[arg(long, value_name = "R", requires = "ci")]
    pub max_wasted_ratio: Option<f64>,
    /// With --ci: lowest efficiency allowed (0..1)
    #[arg(long, value_name = "E", requires = "ci")]
    pub min_efficiency: Option<f64>,
    /// The platform to pick from an archive holding several (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Image (name or ID), or docker-archive:FILE[:NAME], oci-archive:FILE[:REF], oci:DIR[:REF]
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Summary and a table of layers
    Table,
    /// One JSON document
    Json,
}

/// Width of the per-layer bar on a terminal.
const BAR_WIDTH: usize = 20;

/// Runs `hoist analyze`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let img = open::image(ctx, &args.image, args.platform.as_deref())?;
    let a = analyze(&img, &args.image, args.top)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&a)?)?,
        Format::Table => {
            writeln!(out, "Image:       {} ({})", a.image, img.image.id().short())?;
            writeln!(
                out,
                "Total:       {} in regular files",
                human::size(a.total_bytes)
            )?;
            writeln!(out, "Final:       {}", human::size(a.final_bytes))?;
            writeln!(out, "Wasted:      {}", human::size(a.wasted_bytes))?;
            writeln!(out, "Efficiency:  {:.2}%", a.efficiency * 100.0)?;
            writeln!(out)?;
            let tty = std::io::stdout().is_terminal();
            let max = a
                .layers
                .iter()
                .map(|l| l.file_bytes)
                .max()
                .unwrap_or(0)
                .max(1);
            let mut t = vec![vec![
                "LAYER".to_string(),
                "SIZE".into(),
                "ADDED".into(),
                "MODIFIED".into(),
                "REMOVED".into(),
                "WASTED".into(),
                "CREATED BY".into(),
            ]];
            for (i, l) in a.layers.iter().enumerate() {
                let mut by = l.created_by.clone();
                if by.chars().count() > 60 {
                    by = format!("{}…", by.chars().take(59).collect::<String>());
                }
                let mut size = human::size(l.size);
                if tty {
                    let filled = (l.file_bytes as usize * BAR_WIDTH)
                        .div_ceil(max as usize)
                        .min(BAR_WIDTH);
                    size = format!(
                        "{size:>8} {}{}",
                        "█".repeat(filled),
                        " ".repeat(BAR_WIDTH - filled)
                    );
                }
                t.push(vec![
                    i.to_string(),
                    size,
                    l.added.to_string(),
                    l.modified.to_string(),
                    l.removed.to_string(),
                    human::size(l.wasted_bytes),
                    by,
                ]);
            }
            write!(out, "{}", table::render(&t))?;
            if !a.top_wasted.is_empty() {
                writeln!(out)?;
                let mut t = vec![vec!["WASTED".to_string(), "COUNT".into(), "PATH".into()]];
                for w in &a.top_wasted {
                    t.push(vec![
                        human::size(w.bytes),
                        w.count.to_string(),
                        w.path.clone(),
                    ]);
                }
                write!(out, "{}", table::render(&t))?;
            }
        }
    }
    drop(out);
    if args.ci {
        let ratio = if a.total_bytes == 0 {
            0.0
        } else {
            a.wasted_bytes as f64 / a.total_bytes as f64
        };
        if let Some(max) = args.max_wasted_bytes.filter(|m| a.wasted_bytes > *m) {
            bail!("wasted bytes {} exceed the limit {max}", a.wasted_bytes);
        }
        if let Some(max) = args.max_wasted_ratio.filter(|m| ratio > *m) {
            bail!("wasted ratio {ratio:.4} exceeds the limit {max}");
        }
        if let Some(min) = args.min_efficiency.filter(|m| a.efficiency < *m) {
            bail!("efficiency {:.4} is below the limit {min}", a.efficiency);
        }
    }
    Ok(())
}
