//! `hoist history`.

use std::io::Write;

use anyhow::Result;
use hoist_format::media_type::Compression;
use serde::Serialize;

use super::Ctx;
use crate::ui::{human, table};

/// Show the history of an image, newest first, as `docker history` does.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Image (name or ID)
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
    let store = ctx.store()?;
    let (img, _) = store.resolve(&args.image)?;
    let mut layers = img.manifest.layers.iter();
    let mut rows = Vec::new();
    for h in &img.config.history {
        let size = if h.empty_layer {
            0
        } else {
            match layers.next() {
                Some(l)
                    if Compression::of_layer_media_type(&l.media_type)
                        == Some(Compression::None) =>
                {
                    l.size
                }
                Some(l) => store.layer_uncompressed(l)?.1,
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
