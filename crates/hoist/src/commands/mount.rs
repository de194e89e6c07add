//! `hoist mount`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use hoist_core::mount::{self, ImageFs, MountOptions};

use super::{Ctx, open};

/// Mount an image's merged filesystem read-only (FUSE), without running or unpacking it.
///
/// IMAGE is an image of the store (name or ID) or an archive read in place:
/// docker-archive:FILE[:NAME], oci-archive:FILE[:REF], oci:DIR[:REF] (nothing is written to
/// the store then). Owners, modes, sizes, mtimes, xattrs, symlinks, device nodes and hard
/// links (one inode number) are the image's; whiteouts are applied. Files are read from the
/// layer blobs when they are read; writes fail with EROFS. Device nodes and setuid bits are
/// shown but do nothing (nodev, nosuid).
///
/// It runs in the foreground until Ctrl-C (or SIGTERM), `hoist umount DIR` or
/// `fusermount3 -u DIR`; with -d it goes to the background once the mount answers. A mount
/// whose process was killed is cleared by `hoist umount DIR`.
///
/// While an image of the store is mounted, `hoist gc` waits for the unmount (it would remove
/// blobs the mount reads); every other command runs as usual.
///
/// Needs /dev/fuse and fusermount3 (Debian/Ubuntu: apt-get install fuse3).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Mount the tree as of layer N (0-based: layers 0 to N; default: all)
    #[arg(long, value_name = "N")]
    pub layer: Option<usize>,
    /// Go to the background once the mount answers
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Platform of a multi-platform archive (os/arch[/variant]) [default: the host's]
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Let other users in (FUSE's allow_other; a user other than root needs
    /// user_allow_other in /etc/fuse.conf)
    #[arg(long)]
    pub allow_other: bool,
    /// The background process of -d (it reports on stdout when the mount answers)
    #[arg(long, hide = true)]
    pub detached_child: bool,
    /// Image (name or ID), or docker-archive:FILE[:NAME], oci-archive:FILE[:REF], oci:DIR[:REF]
    #[arg(value_name = "IMAGE|ARCHIVE")]
    pub image: String,
    /// An existing directory to mount on
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// What the background process prints once the mount answers.
const READY: &str = "ready";

/// Runs `hoist mount`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    // Before anything else: without FUSE nothing below can work.
    mount::check_fuse()?;
    // And the mount point, before the image is opened (which may take a while).
    mount::check_mount_point(&args.dir)?;
    if args.detach && !args.detached_child {
        return detach(&args, ctx);
    }
    if args.detached_child {
        // Its own session: the terminal's Ctrl-C and hangup are the foreground's business.
        rustix::process::setsid().context("detaching from the terminal")?;
    }
    let image = open::image(ctx, &args.image, args.platform.as_deref())?;
    let count = open::layers_upto(&image, args.layer)?;
    // Held while mounted: `gc` (which takes it exclusively) waits instead of removing blobs
    // the mount reads; loads and everything else share it or do not take it.
    let _gc_guard = image.store().map(|s| s.ingest_lock()).transpose()?;
    let on_error: mount::ErrorSink = Box::new(|e| {
        // In the background stderr is /dev/null; a reader gets EIO either way.
        let _ = writeln!(std::io::stderr(), "hoist: mount: {e}");
    });
    let fs = ImageFs::new(image, count, Some(on_error))?;
    let mut opts = MountOptions::new(&args.image);
    opts.allow_other = args.allow_other;
    // Installed before the mount: a signal from here on unmounts instead of killing the
    // process and leaving a dead mount.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("installing the signal handlers")?;
    let mut mounted = mount::mount(fs, &args.dir, &opts)?;
    let mut unmounter = mounted.unmounter();
    std::thread::Builder::new()
        .name("hoist-mount-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                match unmounter.unmount() {
                    Ok(()) => break,
                    // Another signal tries again.
                    Err(e) => {
                        let _ = writeln!(std::io::stderr(), "hoist: error: {e}");
                    }
                }
            }
        })
        .context("starting the signal thread")?;
    if args.detached_child {
        ready()?;
    } else if !ctx.quiet {
        let mut out = std::io::stdout().lock();
        writeln!(out, "mounted {} at {}", args.image, args.dir.display())?;
        out.flush()?;
    }
    mounted.run()?;
    Ok(())
}

/// Tells the parent of `-d` that the mount answers, then lets go of its pipes (stdout and
/// stderr become /dev/null), so that it can exit and its caller see the end of its output.
fn ready() -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}")?;
    out.flush()?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("/dev/null")?;
    rustix::stdio::dup2_stdout(&null).context("redirecting stdout to /dev/null")?;
    rustix::stdio::dup2_stderr(&null).context("redirecting stderr to /dev/null")?;
    Ok(())
}

/// `-d`: runs the mount in a background process (this binary again, with
/// `--detached-child`) and returns once it says the mount answers, or with its error.
fn detach(args: &Args, ctx: &Ctx) -> Result<()> {
    let exe = std::env::current_exe().context("finding hoist's own executable")?;
    let root = std::path::absolute(&ctx.root)
        .with_context(|| format!("resolving {}", ctx.root.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(root)
        .arg("mount")
        .arg("--detached-child");
    if let Some(n) = args.layer {
        cmd.arg("--layer").arg(n.to_string());
    }
    if let Some(p) = &args.platform {
        cmd.arg("--platform").arg(p);
    }
    if args.allow_other {
        cmd.arg("--allow-other");
    }
    cmd.arg("--").arg(&args.image).arg(&args.dir);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the background mount process")?;
    let mut line = String::new();
    let stdout = child
        .stdout
        .take()
        .context("the background process's stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("waiting for the background mount process")?;
    if line.trim_end() == READY {
        answers(&args.dir)?;
        if !ctx.quiet {
            println!("mounted {} at {}", args.image, args.dir.display());
        }
        return Ok(());
    }
    // It failed: its error is ours.
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)
            .context("reading the background mount process's error")?;
    }
    let status = child
        .wait()
        .context("waiting for the background mount process")?;
    let err = err.trim();
    let err = err.strip_prefix("hoist: error: ").unwrap_or(err);
    if err.is_empty() {
        bail!("the background mount process failed ({status})");
    }
    bail!("{err}");
}

/// Checks that the mount at `dir` is a hoist mount and answers.
fn answers(dir: &Path) -> Result<()> {
    if mount::find_mount(dir)?.is_none() {
        bail!(
            "{}: the background process said it mounted, but no hoist mount is there",
            dir.display()
        );
    }
    std::fs::metadata(dir)
        .with_context(|| format!("{}: the mount does not answer", dir.display()))?;
    Ok(())
}
