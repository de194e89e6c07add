//! `hoist umount`.

use std::path::PathBuf;

use anyhow::Result;
use hoist_core::mount::{self, Unmounted};

use super::Ctx;

/// Unmount a `hoist mount`, also one whose process was killed ("Transport endpoint is not
/// connected").
///
/// Tries `fusermount3 -u`; when the mount is busy or dead, detaches it lazily
/// (`fusermount3 -uz`, or as root `umount -l`): it then goes away when its last user does.
/// A directory that is no hoist mount is an error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mount point
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Runs `hoist umount`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    if mount::unmount(&args.dir)? == Unmounted::Lazily && !ctx.quiet {
        eprintln!(
            "{}: detached (it was busy or dead); it goes away when its last user does",
            args.dir.display()
        );
    }
    Ok(())
}
