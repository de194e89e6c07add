//! The command line: global options and the subcommands (one module each in `commands/`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands;

/// Daemonless container images: save, load, export, import, and the store behind them.
///
/// hoist reads and writes the archives of docker, podman, skopeo, containerd and umoci
/// byte-compatibly, with no daemon. Images live in a store that is itself an OCI image
/// layout (default: $XDG_DATA_HOME/hoist, else ~/.local/share/hoist; override with --root
/// or $HOIST_ROOT).
#[derive(Debug, Parser)]
#[command(
    name = "hoist",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The store directory [default: $HOIST_ROOT, else $XDG_DATA_HOME/hoist, else ~/.local/share/hoist]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print only what is data (IDs, archives), no progress or informational lines
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// The command to run
    #[command(subcommand)]
    pub command: Command,
}

/// hoist's commands. Each one's summary (`hoist --help`, `-h`) is its `about` here; its long
/// help (`--help`) is the doc comment of its `Args` (a doc comment here would replace it).
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(
        about = "Load images from an archive (docker, docker 25+/containerd, OCI, legacy v1; compressed or not)"
    )]
    Load(commands::load::Args),
    #[command(about = "Save images to one archive (docker 25+ shape by default)")]
    Save(commands::save::Args),
    #[command(about = "Write an image's (or container's) merged filesystem as one flat tar")]
    Export(commands::export::Args),
    #[command(
        about = "Write what the store holds (images, layers, digests) as JSON, for `save --base`"
    )]
    Inventory(commands::inventory::Args),
    #[command(about = "Make a one-layer image from a root filesystem tar, URL or directory")]
    Import(commands::import::Args),
    #[command(about = "List images")]
    Images(commands::images::Args),
    #[command(about = "Create a container: unpack an image into a runtime bundle")]
    Create(commands::create::Args),
    #[command(about = "Create a container and run it with runc or crun")]
    Run(commands::run::Args),
    #[command(about = "List containers")]
    Ps(commands::ps::Args),
    #[command(about = "Remove containers")]
    Rm(commands::rm::Args),
    #[command(about = "Show what changed in a container, or between two images (A/C/D)")]
    Diff(commands::diff::Args),
    #[command(about = "Make a new image from a container's changes")]
    Commit(commands::commit::Args),
    #[command(about = "Show what an image's layers add, change, remove and waste")]
    Analyze(commands::analyze::Args),
    #[command(about = "Merge all (or the top N) layers into one, keeping the config")]
    Squash(commands::squash::Args),
    #[command(about = "Pull an image from a registry")]
    Pull(commands::pull::Args),
    #[command(about = "Push an image to a registry")]
    Push(commands::push::Args),
    #[command(about = "Copy an image between registries, archives, OCI layouts and the store")]
    Copy(commands::copy::Args),
    #[command(about = "Log in to a registry")]
    Login(commands::login::Args),
    #[command(about = "Log out from a registry")]
    Logout(commands::logout::Args),
    #[command(about = "Give an image another name")]
    Tag(commands::tag::Args),
    #[command(about = "Remove image names (the blobs are freed by `hoist gc`)")]
    Rmi(commands::rmi::Args),
    #[command(about = "Show images as JSON, shaped like `docker inspect`")]
    Inspect(commands::inspect::Args),
    #[command(about = "Show the history of an image")]
    History(commands::history::Args),
    #[command(about = "Verify every blob and reference of the store")]
    Fsck(commands::fsck::Args),
    #[command(about = "Remove blobs that no image uses any more")]
    Gc(commands::gc::Args),
    #[command(
        about = "Check archives and split sets without loading them (digests, diff_ids, parts' sums)"
    )]
    Verify(commands::verify::Args),
    #[command(about = "List an image's files (or an archive's, without loading it)")]
    Ls(commands::ls::Args),
    #[command(about = "Print files of an image (or of an archive, without loading it)")]
    Cat(commands::cat::Args),
    #[command(about = "Copy files out of an image (or an archive) to a directory or a tar stream")]
    Cp(commands::cp::Args),
    #[command(about = "Mount an image's (or archive's) merged filesystem read-only (FUSE)")]
    Mount(commands::mount::Args),
    #[command(about = "Unmount a `hoist mount` (also one whose process was killed)")]
    Umount(commands::umount::Args),
    #[command(about = "Print a shell completion script")]
    Completions(commands::completions::Args),
}
