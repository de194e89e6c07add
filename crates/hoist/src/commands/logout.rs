//! `hoist logout`.

use std::io::Write;

use anyhow::{Context, Result};

use super::Ctx;
use super::registry::registry_of;

/// Log out from a registry: remove its credentials from docker's config.json (or its
/// credential helper).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The registry [default: docker.io]
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
    /// The credentials file [default: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<std::path::PathBuf>,
}

/// Runs `hoist logout`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let registry = registry_of(args.registry.as_deref().unwrap_or("docker.io"))?;
    let file = hoist_registry::authfile::AuthFile::at(
        args.authfile
            .unwrap_or_else(hoist_registry::authfile::default_path),
    );
    let removed = file
        .erase(&registry)
        .with_context(|| format!("removing the credentials for {registry}"))?;
    if !ctx.quiet {
        let mut out = std::io::stdout().lock();
        if removed {
            writeln!(out, "Removing login credentials for {registry}")?;
        } else {
            writeln!(out, "Not logged in to {registry}")?;
        }
    }
    Ok(())
}
