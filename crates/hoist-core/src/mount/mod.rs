//! A read-only FUSE mount of an image's merged tree, served from its layer blobs (`hoist
//! mount`), and the unmount of such a mount, dead or alive (`hoist umount`).
//!
//! - [`ImageFs`]: the file system. Metadata comes from the merged tree ([`FinalTree`], computed
//!   from the layer indexes); a file's content is read from its layer: straight from the blob
//!   (`pread` at the entry's data offset) for a plain file of an uncompressed layer, else
//!   through a reader of the decompressed layer kept per open file (see `content.rs`).
//! - [`mount`]: mounts it (as root with `mount(2)`, else through `fusermount3`), read-only,
//!   `nosuid`, `nodev`, `default_permissions` (the kernel checks modes and owners as it would
//!   on a real file system), named `hoist:<image>` of type `fuse.hoist`.
//! - [`unmount`]: `fusermount3 -u`, falling back to a lazy unmount; it also clears a mount
//!   whose process died (`Transport endpoint is not connected`).
//!
//! Requirements ([`check_fuse`]): `/dev/fuse` and `fusermount3` (Debian: `fuse3`).
//!
//! [`FinalTree`]: crate::flatten::FinalTree

mod content;
mod fs;
mod mountinfo;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use fs::{ErrorSink, ImageFs};
pub use mountinfo::MountInfo;

/// The file system type a hoist mount has in `/proc/self/mountinfo` (`fuse.` + subtype).
pub const FS_TYPE: &str = "fuse.hoist";
/// The FUSE device.
pub const DEV_FUSE: &str = "/dev/fuse";
/// The mount helper of FUSE 3 (setuid root: it lets a user mount and unmount).
pub const FUSERMOUNT: &str = "fusermount3";
/// What to install when FUSE is missing.
const INSTALL_HINT: &str = "install FUSE 3 (Debian/Ubuntu: apt-get install fuse3; in a \
                            container also pass the device: --device /dev/fuse)";

/// Why a mount or an unmount failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// No usable `/dev/fuse`.
    #[error("{DEV_FUSE}: {why}: FUSE is not available here; {INSTALL_HINT}")]
    NoDevFuse {
        /// What is wrong with it.
        why: String,
    },
    /// No `fusermount3` on `PATH`.
    #[error("{FUSERMOUNT} not found on PATH; {INSTALL_HINT}")]
    NoFusermount,
    /// The mount point is not a directory.
    #[error("{}: {why}", dir.display())]
    BadMountPoint {
        /// The mount point.
        dir: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Something is mounted there already.
    #[error("{}: already a {fstype} mount ({hint})", dir.display())]
    AlreadyMounted {
        /// The mount point.
        dir: PathBuf,
        /// Its file system type.
        fstype: String,
        /// What to do.
        hint: &'static str,
    },
    /// The mount itself failed.
    #[error("mounting at {}: {source}", dir.display())]
    Mount {
        /// The mount point.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file system stopped with an error.
    #[error("serving the mount at {}: {source}", dir.display())]
    Serve {
        /// The mount point.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `umount` of a directory that is no hoist mount.
    #[error("{}: not a hoist mount{}", dir.display(), match found {
        Some(t) => format!(" (it is a {t} mount)"),
        None => String::new(),
    })]
    NotMounted {
        /// The directory.
        dir: PathBuf,
        /// The type of what is mounted there instead, if anything.
        found: Option<String>,
    },
    /// Every way to unmount failed.
    #[error("{}: cannot unmount: {detail}", dir.display())]
    Unmount {
        /// The mount point.
        dir: PathBuf,
        /// What each attempt said.
        detail: String,
    },
    /// Reading `/proc/self/mountinfo` (or resolving a path) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// How to mount.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MountOptions {
    /// What the mount is called (`hoist:<image>` in `mount`'s output).
    pub source: String,
    /// Let other users than the one mounting in (FUSE's `allow_other`; a user other than root
    /// needs `user_allow_other` in `/etc/fuse.conf`).
    pub allow_other: bool,
}

impl MountOptions {
    /// Options for an image named `what`.
    pub fn new(what: &str) -> MountOptions {
        MountOptions {
            source: format!("hoist:{what}"),
            allow_other: false,
        }
    }
}

/// Checks that FUSE can be used: `/dev/fuse` is a character device and `fusermount3` is on
/// `PATH` (needed to mount as a user and to unmount). Returns `fusermount3`'s path.
pub fn check_fuse() -> Result<PathBuf, MountError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(DEV_FUSE) {
        Ok(m) if m.file_type().is_char_device() => {}
        Ok(_) => {
            return Err(MountError::NoDevFuse {
                why: "not a character device".into(),
            });
        }
        Err(e) => return Err(MountError::NoDevFuse { why: e.to_string() }),
    }
    // Opening it is what mounting does first (fusermount3 too): a device only root may open
    // (mode 0600 where no udev rule made it 0666) fails here with a clear message.
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(DEV_FUSE)
    {
        let why = if e.kind() == std::io::ErrorKind::PermissionDenied {
            format!(
                "{e} (a user mounts through a /dev/fuse of mode 0666, as fuse3's udev rule sets it)"
            )
        } else {
            e.to_string()
        };
        return Err(MountError::NoDevFuse { why });
    }
    find_in_path(FUSERMOUNT).ok_or(MountError::NoFusermount)
}

/// The first executable `name` in `$PATH`.
fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A mounted image, not yet served: [`Mounted::run`] serves it until it is unmounted.
#[derive(Debug)]
pub struct Mounted {
    session: fuser::Session<ImageFs>,
    dir: PathBuf,
}

/// Unmounts a [`Mounted`] from another thread (a signal handler's).
#[derive(Debug)]
pub struct Unmounter {
    inner: fuser::SessionUnmounter,
    dir: PathBuf,
}

impl Unmounter {
    /// Unmounts: at once when nothing uses the mount, else lazily (it goes away when its last
    /// user does, and [`Mounted::run`] returns then).
    pub fn unmount(&mut self) -> Result<(), MountError> {
        match self.inner.unmount() {
            Ok(()) => Ok(()),
            Err(e) => {
                let first = format!("umount: {e}");
                lazy_unmount(&self.dir, &[first])
            }
        }
    }
}

impl Mounted {
    /// Where it is mounted.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Something to unmount it with while [`Mounted::run`] serves it.
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter {
            inner: self.session.unmount_callable(),
            dir: self.dir.clone(),
        }
    }

    /// Serves the mount until it is unmounted (by [`Unmounter::unmount`], `hoist umount`,
    /// `fusermount3 -u` or `umount`).
    pub fn run(self) -> Result<(), MountError> {
        let dir = self.dir;
        self.session
            .run()
            .map_err(|source| MountError::Serve { dir, source })
    }
}

/// Checks that `dir` can be mounted on: an existing directory where no hoist mount is (nor a
/// dead mount of any kind). Returns it absolute.
pub fn check_mount_point(dir: &Path) -> Result<PathBuf, MountError> {
    let abs = absolute(dir)?;
    if let Some(m) = mountinfo::find(&abs)? {
        // A mount over a hoist mount would hide it; a dead one cannot even be entered.
        if m.fstype == FS_TYPE || stat_fails_not_connected(&abs) {
            let hint = if m.fstype == FS_TYPE {
                "`hoist umount` it first"
            } else {
                "unmount it first"
            };
            return Err(MountError::AlreadyMounted {
                dir: dir.to_path_buf(),
                fstype: m.fstype,
                hint,
            });
        }
    }
    match std::fs::metadata(&abs) {
        Ok(m) if m.is_dir() => Ok(abs),
        Ok(_) => Err(MountError::BadMountPoint {
            dir: dir.to_path_buf(),
            why: "not a directory".into(),
        }),
        Err(e) => Err(MountError::BadMountPoint {
            dir: dir.to_path_buf(),
            why: e.to_string(),
        }),
    }
}

/// Mounts `fs` at `dir` (an existing directory, see [`check_mount_point`]), read-only. The mount answers when this
/// returns (the kernel's handshake is done); it is served by [`Mounted::run`].
pub fn mount(fs: ImageFs, dir: &Path, opts: &MountOptions) -> Result<Mounted, MountError> {
    let abs = check_mount_point(dir)?;
    use fuser::MountOption as O;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        O::RO,
        // Device nodes and setuid bits of an image show in `stat` but do nothing: an image
        // is not trusted to open devices or raise privileges on this host.
        O::NoDev,
        O::NoSuid,
        O::DefaultPermissions,
        O::FSName(mount_source(&opts.source)),
        // As an option rather than `Subtype`: mounted with mount(2) (as root) the kernel takes
        // it and lists the type as `fuse.hoist`; fusermount3 takes it the same.
        O::CUSTOM(format!("subtype={}", &FS_TYPE["fuse.".len()..])),
    ];
    config.acl = if opts.allow_other {
        fuser::SessionACL::All
    } else {
        fuser::SessionACL::Owner
    };
    // One thread: metadata answers are memory lookups, and sequential reads of one file are
    // served in order (a compressed layer's reader only moves forward).
    config.n_threads = Some(1);
    let session = fuser::Session::new(fs, &abs, &config).map_err(|source| MountError::Mount {
        dir: dir.to_path_buf(),
        source,
    })?;
    if let Some(m) = mountinfo::find(&abs)? {
        raise_readahead(&m.dev);
    }
    Ok(Mounted { session, dir: abs })
}

/// Readahead of a FUSE mount, in KiB: the largest read request (FUSE's 256 pages).
const READ_AHEAD_KB: &str = "1024";

/// Raises the readahead of the mount with device `dev` to [`READ_AHEAD_KB`]. The kernel
/// starts a FUSE mount at 128 KiB and lets the file system only lower it; only root may
/// raise it, through sysfs. With 1 MiB, a sequential read takes a quarter of the round trips
/// (1 MiB requests instead of 256 KiB ones). Best effort: without it reads work the same.
fn raise_readahead(dev: &str) {
    let knob = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    // Fails for a user other than root (or a read-only /sys): the default stays.
    let _ = std::fs::write(knob, READ_AHEAD_KB);
}

/// A mount source as mount options can carry it: options are comma-separated, and
/// `/proc/self/mountinfo` separates fields with spaces (it escapes them, but tools that read
/// `/etc/mtab` do not all unescape).
fn mount_source(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == ',' || c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Whether `stat` of `p` fails with "Transport endpoint is not connected" (a dead FUSE mount).
fn stat_fails_not_connected(p: &Path) -> bool {
    std::fs::metadata(p)
        .is_err_and(|e| e.raw_os_error() == Some(rustix::io::Errno::NOTCONN.raw_os_error()))
}

/// `p` made absolute without touching `p` itself (a dead mount point cannot be `stat`ed):
/// its parent is canonicalized and its last component appended.
fn absolute(p: &Path) -> Result<PathBuf, MountError> {
    let io_err = |source| MountError::Io {
        what: p.display().to_string(),
        source,
    };
    let p = std::path::absolute(p).map_err(io_err)?;
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        // The root itself.
        return Ok(p);
    };
    let parent = parent.canonicalize().map_err(io_err)?;
    Ok(parent.join(name))
}

/// How [`unmount`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unmounted {
    /// Unmounted at once.
    Now,
    /// Detached: it goes away when its last user does (it was busy).
    Lazily,
}

/// Unmounts the hoist mount at `dir`, alive or dead (its process killed): `fusermount3 -u`,
/// else `fusermount3 -uz` (lazy), else, as root, `umount -l`. A directory that is no hoist
/// mount is refused ([`MountError::NotMounted`]).
pub fn unmount(dir: &Path) -> Result<Unmounted, MountError> {
    let abs = absolute(dir)?;
    let m = mountinfo::find(&abs)?;
    match m {
        Some(m) if m.fstype == FS_TYPE => {}
        other => {
            return Err(MountError::NotMounted {
                dir: dir.to_path_buf(),
                found: other.map(|m| m.fstype),
            });
        }
    }
    let fusermount = find_in_path(FUSERMOUNT).ok_or(MountError::NoFusermount)?;
    let first = match run(Command::new(&fusermount).arg("-u").arg("--").arg(&abs)) {
        Ok(()) => return gone(&abs, Unmounted::Now, Vec::new()),
        Err(e) => format!("{FUSERMOUNT} -u: {e}"),
    };
    lazy_unmount(&abs, &[first]).map(|()| Unmounted::Lazily)
}

/// The lazy ways: `fusermount3 -uz`, then as root `umount -l`.
fn lazy_unmount(abs: &Path, tried: &[String]) -> Result<(), MountError> {
    let mut tried = tried.to_vec();
    if let Some(fusermount) = find_in_path(FUSERMOUNT) {
        match run(Command::new(&fusermount).arg("-uz").arg("--").arg(abs)) {
            Ok(()) => return gone(abs, Unmounted::Lazily, tried).map(|_| ()),
            Err(e) => tried.push(format!("{FUSERMOUNT} -uz: {e}")),
        }
    }
    if rustix::process::geteuid().is_root() {
        match run(Command::new("umount").arg("-l").arg("--").arg(abs)) {
            Ok(()) => return gone(abs, Unmounted::Lazily, tried).map(|_| ()),
            Err(e) => tried.push(format!("umount -l: {e}")),
        }
    }
    Err(MountError::Unmount {
        dir: abs.to_path_buf(),
        detail: tried.join("; "),
    })
}

/// Checks that no hoist mount is left at `abs` after an unmount command succeeded.
fn gone(abs: &Path, how: Unmounted, tried: Vec<String>) -> Result<Unmounted, MountError> {
    match mountinfo::find(abs)? {
        Some(m) if m.fstype == FS_TYPE => {
            let mut detail = tried;
            detail.push("the mount is still there after the unmount".into());
            Err(MountError::Unmount {
                dir: abs.to_path_buf(),
                detail: detail.join("; "),
            })
        }
        _ => Ok(how),
    }
}

/// Runs a helper; its stderr (or exit status) is the error.
fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(if err.is_empty() {
        out.status.to_string()
    } else {
        err
    })
}

/// The hoist mount at `dir`, if there is one (read from `/proc/self/mountinfo`).
pub fn find_mount(dir: &Path) -> Result<Option<MountInfo>, MountError> {
    let abs = absolute(dir)?;
    Ok(mountinfo::find(&abs)?.filter(|m| m.fstype == FS_TYPE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_sources_carry_no_separators() {
        for (input, want) in [
            ("hoist:busybox:latest", "hoist:busybox:latest"),
            ("hoist:a,b c\td\n", "hoist:a_b_c_d_"),
            (
                "hoist:docker-archive:/x/y.tar",
                "hoist:docker-archive:/x/y.tar",
            ),
        ] {
            assert_eq!(mount_source(input), want, "{input:?}");
        }
    }

    #[test]
    fn a_missing_helper_is_not_found() {
        assert_eq!(find_in_path("hoist-no-such-helper-anywhere"), None);
        assert!(find_in_path("sh").is_some());
    }
}
