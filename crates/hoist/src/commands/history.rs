//! `hoist history`.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, open};
use crate::ui::{human, table};

/// Show the history of an image, newest first, as `docker history` does.
///
/// The image may be in an archive or layout, read in place without loading it (the store is
/// not opened): docker-archive:FILE[:NAME], oci-archive:FILE[:REF], oci:DIR[:REF].
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
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
    /// Aligned columns
    Table,
    /// One JSON object per line, with docker's keys
    Json,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    comment: String,
    created_at: String,
    created_by: String,
    created_since: String,
    #[serde(rename = "ID")]
    id: String,
    size: String,
}

/// Width of CREATED BY before docker truncates it.
const CREATED_BY_WIDTH: usize = 45;

/// Runs `hoist history`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let opened = open::image(ctx, &args.image, args.platform.as_deref())?;
    let img = &opened.image;
    let mut layers = 0..opened.layers();
    let mut rows = Vec::new();
    for h in &img.config.history {
        let size = if h.empty_layer {
            0
        } else {
            match layers.next() {
                Some(i) => hoist_core::ops::layer_size(&opened, i)?,
                None => 0,
            }
        };
        let by = h.created_by.clone().unwrap_or_default();
        let by = if args.no_trunc || by.chars().count() <= CREATED_BY_WIDTH {
            by
        } else {
            format!(
                "{}…",
                by.chars().take(CREATED_BY_WIDTH - 1).collect::<String>()
            )
        };
        rows.push(Row {
            comment: h.comment.clone().unwrap_or_default(),
            created_at: h.created.clone().unwrap_or_default(),
            created_by: by,
            created_since: human::ago(h.created.as_deref()),
            id: "<missing>".into(),
            size: human::size(size),
        });
    }
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first.id = if args.no_trunc {
            img.id().to_string()
        } else {
            img.id().short().to_string()
        };
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            for r in &rows {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            }
        }
        Format::Table => {
            let mut t = vec![vec![
                "IMAGE".to_string(),
                "CREATED".into(),
                "CREATED BY".into(),
                "SIZE".into(),
                "COMMENT".into(),
            ]];
            for r in rows {
                t.push(vec![r.id, r.created_since, r.created_by, r.size, r.comment]);
            }
            write!(out, "{}", table::render(&t))?;
        }
    }
    Ok(())
}
