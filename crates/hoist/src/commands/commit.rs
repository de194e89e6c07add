//! `hoist commit`.

use std::io::Write;

use anyhow::{Result, bail};
use hoist_core::container::CommitOptions;

use super::Ctx;

/// Make a new image from a container's changes: one new layer on top of its image (deleted
/// files and dirs as whiteouts), the config changed by `--change`, one history entry added.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply a Dockerfile instruction to the config (repeatable)
    #[arg(short, long = "change", value_name = "INSTR")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
    /// Author
    #[arg(short, long)]
    pub author: Option<String>,
    /// Container (name or ID)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Name of the new image
    #[arg(value_name = "NAME[:TAG]")]
    pub name: Option<String>,
}

/// Runs `hoist commit`; prints the new image ID.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let name = args.name.as_deref().map(super::image_name).transpose()?;
    let store = ctx.store()?;
    let Some(c) = hoist_core::container::find(&store, &args.container)? else {
        bail!("No such container: {}", args.container);
    };
    let (id, _) = c.commit(
        &store,
        &CommitOptions {
            changes: args.changes,
            message: args.message,
            author: args.author,
            name,
            created: super::now_rfc3339(),
        },
    )?;
    writeln!(std::io::stdout().lock(), "{id}")?;
    Ok(())
}
