//! `hoist images`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Ctx;
use crate::ui::{human, table};

/// List images, as `docker images` does.
///
/// With -i, list the images an archive file (any format `load` reads, compressed or not) or
/// an OCI layout directory holds, without loading them: every platform of an index, one row
/// per name, with a PLATFORM column instead of CREATED. The store is not opened.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// List the images of this archive or OCI layout instead of the store's
    #[arg(short, long, value_name = "FILE|DIR")]
    pub input: Option<PathBuf>,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate IDs
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns
    Table,
    /// One JSON object per line, with docker's keys
    Json,
}

/// One row, with docker's `--format json` keys.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    containers: &'static str,
    created_at: String,
    created_since: String,
    digest: String,
    #[serde(rename = "ID")]
    id: String,
    repository: String,
    shared_size: &'static str,
    size: String,
    tag: String,
    unique_size: &'static str,
    virtual_size: String,
    /// os/arch[/variant], for an archive's images (`-i`).
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
}

/// What a row is made from: an image of the store or of an archive.
struct Listed {
    id: hoist_format::Digest,
    names: Vec<hoist_format::reference::Reference>,
    created: Option<String>,
    size: u64,
    platform: Option<String>,
}

/// The store's images.
fn of_store(ctx: &Ctx) -> Result<Vec<Listed>> {
    let store = ctx.store()?;
    let mut out = Vec::new();
    for (img, names) in store.images()? {
        out.push(Listed {
            id: img.id().clone(),
            size: store.image_size(&img)?,
            created: img.config.created.clone(),
            names,
            platform: None,
        });
    }
    Ok(out)
}

/// The images an archive or layout holds.
fn of_input(input: &std::path::Path) -> Result<Vec<Listed>> {
    let held = hoist_core::archive::held_images(input)
        .with_context(|| format!("listing the images of {}", input.display()))?;
    Ok(held
        .into_iter()
        .map(|h| Listed {
            id: h.id,
            names: h.names,
            created: h.created,
            size: h.size,
            platform: Some(h.platform.to_string()),
        })
        .collect())
}

/// Runs `hoist images`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let listed = match &args.input {
        Some(input) => of_input(input)?,
        None => of_store(ctx)?,
    };
    let mut rows: Vec<Row> = Vec::new();
    for img in listed {
        let id = if args.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        };
        let size = human::size(img.size);
        let created = img.created.as_deref();
        let mk = |repository: String, tag: String| Row {
            containers: "N/A",
            created_at: human::created_at(created),
            created_since: human::ago(created),
            digest: "<none>".into(),
            id: id.clone(),
            repository,
            shared_size: "N/A",
            size: size.clone(),
            tag,
            unique_size: "N/A",
            virtual_size: size.clone(),
            platform: img.platform.clone(),
        };
        if img.names.is_empty() {
            rows.push(mk("<none>".into(), "<none>".into()));
        }
        for n in img.names {
            rows.push(mk(
                n.familiar_name(),
                n.tag().unwrap_or("<none>").to_string(),
            ));
        }
    }
    // docker sorts by creation time, newest first.
    rows.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(a.repository.cmp(&b.repository))
            .then(a.tag.cmp(&b.tag))
            .then(a.platform.cmp(&b.platform))
            .then(a.id.cmp(&b.id))
    });
    let mut out = std::io::stdout().lock();
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(r.id.clone()) {
                writeln!(out, "{}", r.id)?;
            }
        }
        return Ok(());
    }
    match args.format {
        Format::Json => {
            for r in &rows {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            }
        }
        Format::Table => {
            let mut t = vec![];
            let mut header = vec!["REPOSITORY".to_string(), "TAG".into()];
            if args.digests {
                header.push("DIGEST".into());
            }
            // An archive's images are told apart by platform; when they were made matters less.
            let fourth = if args.input.is_some() {
                "PLATFORM"
            } else {
                "CREATED"
            };
            header.extend(["IMAGE ID".into(), fourth.into(), "SIZE".into()]);
            t.push(header);
            for r in &rows {
                let mut line = vec![r.repository.clone(), r.tag.clone()];
                if args.digests {
                    line.push(r.digest.clone());
                }
                let fourth = r
                    .platform
                    .clone()
                    .unwrap_or_else(|| r.created_since.clone());
                line.extend([r.id.clone(), fourth, r.size.clone()]);
                t.push(line);
            }
            write!(out, "{}", table::render(&t))?;
        }
    }
    Ok(())
}
