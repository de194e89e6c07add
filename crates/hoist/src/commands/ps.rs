//! `hoist ps`.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::ui::{human, table};

/// List containers (running ones; `-a` for all).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers
    #[arg(short, long)]
    pub all: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns
    Table,
    /// One JSON object per line
    Json,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    #[serde(rename = "ID")]
    id: String,
    image: String,
    command: String,
    created_at: String,
    status: String,
    names: String,
}

/// Runs `hoist ps`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let mut rows = Vec::new();
    for c in hoist_core::container::list(&store)? {
        let s = &c.state;
        if !args.all && s.status != "running" {
            continue;
        }
        let status = match (s.status.as_str(), s.exit_code) {
            ("exited", Some(code)) => {
                format!("Exited ({code}) {}", human::ago(s.finished.as_deref()))
            }
            ("running", _) => "Up".to_string(),
            _ => "Created".to_string(),
        };
        rows.push(Row {
            id: s.id[..12].to_string(),
            image: s.image_name.clone(),
            command: format!("\"{}\"", s.args.join(" ")),
            created_at: human::ago(Some(&s.created)),
            status,
            names: s.name.clone(),
        });
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
                "CONTAINER ID".to_string(),
                "IMAGE".into(),
                "COMMAND".into(),
                "CREATED".into(),
                "STATUS".into(),
                "NAMES".into(),
            ]];
            for r in rows {
                t.push(vec![
                    r.id,
                    r.image,
                    r.command,
                    r.created_at,
                    r.status,
                    r.names,
                ]);
            }
            write!(out, "{}", table::render(&t))?;
        }
    }
    Ok(())
}
