//! `hoist cp`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hoist_core::flatten::{FinalKind, FlattenOptions, is_below, write_flat};
use hoist_core::rootfs::{UnpackOptions, unpack_layer};
use hoist_core::view::lookup::{resolve, show};

use super::Ctx;
use super::open;
use super::output::write_to;

/// Copy files or directories out of an image without running or unpacking it, as `docker cp`
/// copies out of a container.
///
/// SRC is IMAGE:PATH with an absolute PATH; IMAGE is an image of the store or an archive read
/// in place (docker-archive:FILE[:NAME]:/PATH, oci-archive:FILE[:REF]:/PATH, oci:DIR:/PATH).
///
/// DEST `-` writes a tar stream of PATH (named by its last component, a directory with all it
/// holds). Otherwise: an existing directory DEST receives PATH under its own name; else PATH is
/// copied as DEST (a directory's contents into a new directory DEST). Only what the image
/// holds is written, inside DEST: symlinks are copied as links (resolved inside the image's
/// root with -L, never followed on the host). Modes, mtimes and xattrs are kept; owners only
/// with -a as root.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Follow PATH when it is a symlink (inside the image's root)
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Keep owners (uid/gid) and create device nodes (as root)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Read PATH as layer N left it (the tree of layers 0..=N)
    #[arg(long, value_name = "N")]
    pub layer: Option<usize>,
    /// The platform to pick from an archive holding several (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// IMAGE:PATH
    #[arg(value_name = "IMAGE:PATH")]
    pub src: std::ffi::OsString,
    /// A host path, or - for a tar stream on stdout
    #[arg(value_name = "DEST|-")]
    pub dest: PathBuf,
}

/// Splits `IMAGE:/PATH` at the last `:/` (an image name and a transport may hold colons;
/// the path may hold any bytes).
fn split_src(src: &[u8]) -> Result<(String, &[u8])> {
    let at = src.windows(2).rposition(|w| w == b":/");
    match at {
        Some(i) if i > 0 => {
            let image = std::str::from_utf8(&src[..i])
                .with_context(|| format!("{:?}: the image name is not UTF-8", show(&src[..i])))?;
            Ok((image.to_string(), &src[i + 1..]))
        }
        _ => bail!(
            "{:?}: expected IMAGE:PATH with an absolute PATH (busybox:latest:/etc/passwd)",
            String::from_utf8_lossy(src)
        ),
    }
}

/// Runs `hoist cp`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let (spec, path) = split_src(args.src.as_bytes())?;
    let img = open::image(ctx, &spec, args.platform.as_deref())?;
    let count = open::layers_upto(&img, args.layer)?;
    let mut tree = img
        .tree(count)
        .with_context(|| format!("reading {}", img.what))?;
    let found = resolve(&tree, path, args.follow_link).with_context(|| img.what.clone())?;
    let base = found.path.clone();
    let is_dir = found.entry.kind == FinalKind::Directory;
    // The name PATH is copied under: its own last component (the link's, when followed).
    let own_name: Vec<u8> = path
        .split(|&b| b == b'/')
        .rfind(|c| !c.is_empty())
        .filter(|n| *n != b"." && *n != b"..")
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| base.rsplit(|&b| b == b'/').next().unwrap_or(&[]).to_vec());

    let (parent, name): (PathBuf, Vec<u8>) = if args.dest.as_os_str() == "-" {
        (PathBuf::new(), own_name)
    } else {
        destination(&args.dest, &own_name, is_dir)?
    };
    // A name a layer applier reads as a whiteout would delete instead of write.
    if !name.is_empty()
        && !matches!(
            hoist_core::layer::action(&name, hoist_core::tar::EntryKind::Regular),
            Ok(hoist_core::layer::Action::Put { .. })
        )
    {
        bail!(
            "{}: a name starting with .wh. is not written (layers use it for deletions)",
            String::from_utf8_lossy(&name)
        );
    }
    tree.retain(|e| base.is_empty() || e.path == base || is_below(&e.path, &base));
    let rename = |p: &[u8]| -> Vec<u8> {
        // Every kept path (and hard-link target: `retain` re-elects them) is in the subtree.
        let Some(rest) = p.strip_prefix(base.as_slice()) else {
            return p.to_vec();
        };
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        match (name.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_vec(),
            (false, true) => name.clone(),
            (false, false) => [&name[..], b"/", rest].concat(),
        }
    };
    let mut opts = FlattenOptions::default();
    opts.rename = Some(&rename);
    // Every directory is in the stream: the copy never walks through what DEST held.
    opts.implied_dirs = true;
    if args.dest.as_os_str() == "-" {
        return write_to(None, "a tar stream", |mut w| {
            write_flat(&img, &tree, w.as_dyn(), &opts)?;
            Ok(())
        });
    }
    let (reader, writer) = std::io::pipe().context("making a pipe")?;
    let unpack = UnpackOptions {
        privileged: if args.archive { None } else { Some(false) },
        copy: true,
        ..UnpackOptions::default()
    };
    std::thread::scope(|s| -> Result<()> {
        let unpacking = s.spawn(|| unpack_layer(&parent, reader, &unpack));
        // The pipe's writing end is dropped when the tar is done: the unpacker then ends.
        let written = write_flat(&img, &tree, writer, &opts);
        let unpacked = unpacking.join().expect("the unpacker does not panic");
        // The unpacker's error first: a refused write stops the tar with a broken pipe.
        let stats = unpacked.with_context(|| format!("writing into {}", parent.display()))?;
        written.with_context(|| format!("{}: reading {}", img.what, show(&base)))?;
        let skipped = [
            (stats.skipped_devices, "device nodes not created"),
            (
                stats.skipped_owners,
                "owners not set (-a keeps them, as root)",
            ),
            (stats.skipped_xattrs, "xattrs the file system refused"),
        ];
        for (n, what) in skipped {
            if n > 0 && !ctx.quiet {
                eprintln!("hoist: warning: {n} {what}");
            }
        }
        Ok(())
    })
}

/// Where a copy of `name` goes for DEST `dest`: the directory to unpack into and the name
/// written there (empty: the contents of the root, into the directory itself).
fn destination(dest: &Path, name: &[u8], is_dir: bool) -> Result<(PathBuf, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => Ok((dest.to_path_buf(), name.to_vec())),
        Ok(_) if is_dir => bail!("{}: cannot copy a directory onto a file", dest.display()),
        Ok(_) => split_dest(dest),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dest.as_os_str().as_bytes().ends_with(b"/") {
                bail!("{}: no such directory", dest.display());
            }
            let (parent, own) = split_dest(dest)?;
            if !parent.as_os_str().is_empty() && !parent.is_dir() {
                bail!("{}: no such directory", parent.display());
            }
            Ok((parent, own))
        }
        Err(e) => Err(e).with_context(|| format!("{}", dest.display())),
    }
}

fn split_dest(dest: &Path) -> Result<(PathBuf, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let name = dest
        .file_name()
        .with_context(|| format!("{}: not a file name", dest.display()))?;
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((parent.to_path_buf(), name.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_split_at_the_last_absolute_path() {
        let split = |s: &str| {
            split_src(s.as_bytes()).map(|(i, p)| (i, String::from_utf8(p.to_vec()).unwrap()))
        };
        assert_eq!(
            split("busybox:1.36:/etc/passwd").unwrap(),
            ("busybox:1.36".into(), "/etc/passwd".into())
        );
        assert_eq!(
            split("docker-archive:/tmp/a.tar:app:2:/bin").unwrap(),
            ("docker-archive:/tmp/a.tar:app:2".into(), "/bin".into())
        );
        assert_eq!(split("img:/").unwrap(), ("img".into(), "/".into()));
        assert!(split("img").is_err());
        assert!(split("img:etc").is_err());
    }
}
