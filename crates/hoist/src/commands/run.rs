//! `hoist run`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::Ctx;

/// Create a container and run it in the foreground with the OCI runtime found on PATH (runc
/// or crun), passing stdio and the exit code through. The container has its own network
/// namespace with loopback only.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
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

fn runtime() -> Result<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    for name in ["runc", "crun"] {
        if let Some(p) = std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            return Ok(p);
        }
    }
    bail!("no OCI runtime found on PATH: install runc (apt-get install runc) or crun")
}

/// Runs `hoist run`; exits with the container's exit code.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let rt = runtime()?;
    let mut c = super::create::create_container(ctx, args.name, &args.image, args.cmd)?;
    let state_root = ctx.root.join("hoist/runtime");
    std::fs::create_dir_all(&state_root)
        .with_context(|| format!("creating {}", state_root.display()))?;
    c.set_status("running", None, None)?;
    let status = Command::new(&rt)
        .arg("--root")
        .arg(&state_root)
        .args(["run", "-b"])
        .arg(&c.dir)
        .arg(&c.state.id)
        .status()
        .with_context(|| format!("starting {}", rt.display()));
    let code = match &status {
        Ok(s) => s.code().unwrap_or(128 + 9),
        Err(_) => 127,
    };
    c.set_status("exited", Some(code), Some(super::now_rfc3339()))?;
    status?;
    if args.rm {
        c.remove()?;
    }
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
