//! `hoist images`.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::ui::{human, table};

/// List images, as `docker images` does.
#[derive(Debug, clap::Args)]
pub struct Args {
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
}

/// Runs `hoist images`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let mut rows: Vec<Row> = Vec::new();
    for (img, names) in store.images()? {
        let id = if args.no_trunc {
            img.id().to_string()
        } else {
            img.id().short().to_string()
        };
        let size = human::size(store.image_size(&img)?);
        let created = img.config.created.as_deref();
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
        };
        if names.is_empty() {
            rows.push(mk("<none>".into(), "<none>".into()));
        }
        for n in names {
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
            header.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
            t.push(header);
            for r in &rows {
                let mut line = vec![r.repository.clone(), r.tag.clone()];
                if args.digests {
                    line.push(r.digest.clone());
                }
                line.extend([r.id.clone(), r.created_since.clone(), r.size.clone()]);
                t.push(line);
            }
            write!(out, "{}", table::render(&t))?;
        }
    }
    Ok(())
}
