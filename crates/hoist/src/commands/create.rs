//! `hoist create`.

use std::io::Write;

use anyhow::Result;
use hoist_core::container::{Container, CreateOptions, create};

use super::Ctx;

/// Create a container: the image's layers are unpacked (safely: nothing lands outside the
/// container's rootfs) into an OCI runtime bundle that `runc run -b DIR` can start. Prints the
/// container ID.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container name
    #[arg(long)]
    pub name: Option<String>,
    /// Image (name or ID)
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Command to run instead of the image's CMD
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub cmd: Vec<String>,
}

/// Creates the container (shared with `run`).
pub fn create_container(
    ctx: &Ctx,
    name: Option<String>,
    image: &str,
    cmd: Vec<String>,
) -> Result<Container> {
    let store = ctx.store()?;
    let (img, _) = store.resolve(image)?;
    Ok(create(
        &store,
        &img,
        &CreateOptions {
            name,
            cmd,
            image_name: image.to_string(),
            created: super::now_rfc3339(),
        },
    )?)
}

/// Runs `hoist create`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let c = create_container(ctx, args.name, &args.image, args.cmd)?;
    writeln!(std::io::stdout().lock(), "{}", c.state.id)?;
    Ok(())
}
