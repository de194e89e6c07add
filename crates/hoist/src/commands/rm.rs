//! `hoist rm`.

use std::io::Write;

use anyhow::{Result, bail};

use super::Ctx;

/// Remove containers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Containers (names or IDs)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Runs `hoist rm`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for spec in &args.containers {
        match hoist_core::container::find(&store, spec)? {
            Some(c) => {
                c.remove()?;
                writeln!(out, "{spec}")?;
            }
            None => {
                eprintln!("hoist: error: No such container: {spec}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} containers could not be removed",
            args.containers.len()
        );
    }
    Ok(())
}
