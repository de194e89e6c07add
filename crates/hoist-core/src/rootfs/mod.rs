//! A container's root filesystem as a real directory: apply layer tars onto it
//! ([`unpack_layer`]), turn it back into a tar ([`pack_dir`]), list what changed compared with
//! the image it came from ([`changes`]) and write those changes as a layer ([`diff_layer`]).
//!
//! # Safety against hostile layers
//!
//! Nothing is ever created, changed or removed outside the root. Every path is resolved from an
//! fd of the root one component at a time (the private `fsops` module): directories are opened
//! with `O_NOFOLLOW | O_DIRECTORY`, symlinks met on the way are resolved by hand *inside* the root
//! (an absolute target restarts at the root, `..` stops at the root, as in a `chroot`), and the
//! last component is only handled with `*at` calls that never follow it (`openat` with
//! `O_NOFOLLOW | O_EXCL`, `mknodat`, `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`,
//! `fchownat`/`utimensat` with `AT_SYMLINK_NOFOLLOW`). Entry names and hard-link targets are
//! normalized lexically first (a leading `/` is root-relative); a `..` that climbs above the
//! root is refused with [`RootfsError::Escape`].
//!
//! # Layer semantics
//!
//! They follow moby's `UnpackLayer` and match [`crate::flatten::final_tree`] exactly, so that a
//! freshly unpacked image shows no [`changes`]:
//!
//! - `.wh.<name>` removes a lower-layer path and everything below it; `.wh..wh..opq` removes
//!   every lower-layer child of its directory, wherever it sits in the layer. Whiteouts never
//!   remove what the same layer wrote: a lower directory that still holds entries of the layer
//!   survives with implied attributes (mode 0755, owner 0:0, mtime 0, no xattrs);
//! - `.wh.`, `.wh..`, `.wh...` and whiteout names used as a directory are refused; other AUFS
//!   metadata (`.wh..wh.*`) is skipped, except regular files in a top-level `.wh..wh.plnk/`,
//!   which serve as hard-link targets during their layer and are removed at its end;
//! - an entry over an existing path: two directories merge (the new attributes and xattrs
//!   win); otherwise the old path is removed (recursively) and recreated;
//! - a hard link's target must exist inside the root (also from lower layers; an absolute
//!   target is root-relative). The link header's owner, mode, mtime and xattrs are applied to
//!   the shared inode (mode and mtime only when it is not a symlink);
//! - missing parent directories are created with mode 0755, owner 0:0 and mtime 0;
//! - owners are set before xattrs (`chown` clears `security.capability`) and modes after
//!   both (`chown` clears setuid/setgid); directory mtimes are set when the layer ends, and a
//!   directory whose children the layer changed gets its previous mtime back unless the layer
//!   has an entry for it.
//!
//! Without root privileges owners are left alone, device nodes are skipped, and xattrs the
//! kernel refuses (`EPERM`, `ENOTSUP`) are skipped; [`UnpackStats`] counts each.

mod changes;
mod fsops;
mod pack;
mod unpack;

use std::io;
use std::path::PathBuf;

pub use changes::{Change, ChangeKind, changes, diff_layer};
pub use pack::{PackOptions, PackStats, pack_dir};
pub use unpack::{UnpackOptions, UnpackStats, unpack_layer};

/// Errors of the rootfs operations. Layer errors name the layer (as given in
/// [`UnpackOptions::layer`]) and the entry's name as it appears in the tar.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootfsError {
    /// The root directory cannot be opened or created.
    #[error("opening the root directory {path}: {source}")]
    Root {
        /// The root given by the caller.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The layer stream is not a tar hoist accepts, or cannot be read.
    #[error("layer {layer}: {source}")]
    Tar {
        /// Layer index.
        layer: usize,
        /// What the tar reader found.
        #[source]
        source: crate::tar::TarError,
    },
    /// A path component is longer than 255 bytes.
    #[error(
        "layer {layer}: entry {path:?}: a component of {len} bytes is longer than 255 (file name too long)"
    )]
    NameTooLong {
        /// Layer index.
        layer: usize,
        /// The entry's name (shortened).
        path: String,
        /// The component's length.
        len: usize,
    },
    /// An entry's name or hard-link target climbs out of the root with `..`.
    #[error("layer {layer}: entry {path:?}: {what} {name:?} escapes the root")]
    Escape {
        /// Layer index.
        layer: usize,
        /// The entry's name.
        path: String,
        /// `"name"` or `"hard link target"`.
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// `.wh.`, `.wh..`, `.wh...`, or a whiteout name used as a directory.
    #[error("layer {layer}: entry {path:?}: invalid whiteout name")]
    InvalidWhiteout {
        /// Layer index.
        layer: usize,
        /// The entry's name.
        path: String,
    },
    /// An entry type that cannot be applied.
    #[error("layer {layer}: entry {path:?}: unsupported entry type {typeflag}")]
    Unsupported {
        /// Layer index.
        layer: usize,
        /// The entry's name.
        path: String,
        /// The type flag, escaped.
        typeflag: String,
    },
    /// A parent of the entry is not a directory (nor a symlink to one).
    #[error("layer {layer}: entry {path:?}: a parent is not a directory")]
    NotADirectory {
        /// Layer index.
        layer: usize,
        /// The entry's name.
        path: String,
    },
    /// Resolving the entry's parents met more than 40 symlinks.
    #[error("layer {layer}: entry {path:?}: too many levels of symbolic links")]
    SymlinkLoop {
        /// Layer index.
        layer: usize,
        /// The entry's name.
        path: String,
    },
    /// A hard link whose target is missing or unusable.
    #[error("layer {layer}: entry {path:?}: hard link target {target:?} {reason}")]
    HardlinkTarget {
        /// Layer index.
        layer: usize,
        /// The entry's name.
        path: String,
        /// The link target as written.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An owner id that does not fit the kernel's 32 bits.
    #[error("layer {layer}: entry {path:?}: owner id {id} is out of range")]
    IdRange {
        /// Layer index.
        layer: usize,
        /// The entry's name.
        path: String,
        /// The id.
        id: u64,
    },
    /// An entry's attributes no layer applier could set (xattrs).
    #[error("layer {layer}: entry {path:?}: {source}")]
    Rule {
        /// Layer index.
        layer: usize,
        /// The entry's name (shortened).
        path: String,
        /// The rule.
        source: crate::layer::RuleError,
    },
    /// A copy ([`UnpackOptions::copy`]) would replace a directory with a non-directory or the
    /// other way round (docker cp refuses it too).
    #[error("{path}: cannot overwrite {existing} with {new}")]
    Clash {
        /// The path, inside the destination.
        path: String,
        /// What is there: "a directory" or "a non-directory".
        existing: &'static str,
        /// What the copy holds there.
        new: &'static str,
    },
    /// A system call applying an entry failed.
    #[error("layer {layer}: entry {path:?}: {op}: {source}")]
    Apply {
        /// Layer index.
        layer: usize,
        /// The entry's name.
        path: String,
        /// The operation (`"mkdir"`, `"chown"`, `"write"`, …).
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Reading the root directory failed (pack, changes, diff).
    #[error("{path:?}: {op}: {source}")]
    Read {
        /// Path inside the root.
        path: String,
        /// The operation.
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A file changed size while it was being archived.
    #[error("{path:?}: file changed while being read")]
    FileChanged {
        /// Path inside the root.
        path: String,
    },
    /// A change names a path that is not a clean absolute path inside the root.
    #[error("change path {path:?} is not a clean absolute path")]
    BadChangePath {
        /// The path.
        path: String,
    },
    /// Writing the output tar failed.
    #[error("writing the tar: {0}")]
    Write(#[source] io::Error),
}

/// Whether this process may chown, mknod devices and set `trusted.*` xattrs.
fn privileged() -> bool {
    rustix::process::geteuid().is_root()
}

/// Path bytes for error messages (at most 200 of them).
fn display(p: &[u8]) -> String {
    crate::tar::show_name(p)
}

#[cfg(test)]
pub(crate) mod testutil;
