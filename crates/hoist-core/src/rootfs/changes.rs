//! `docker diff` and `docker commit` for a root directory: what changed compared with the
//! image it was unpacked from, and those changes as a layer tar.

use std::ffi::CStr;
use std::fmt;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, Stat};

use super::fsops::{
    XattrTarget, cstr, file_type, join, list_dir, lstat_at, open_dir_read, read_xattrs, to_i64,
    to_u64,
};
use super::pack::{PackStats, Packer};
use super::{RootfsError, display, privileged};
use crate::flatten::{FinalEntry, FinalKind, FinalTree};

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// The path is new (`A` in `docker diff`).
    Added,
    /// The path exists in the image but differs (`C`).
    Changed,
    /// The path of the image is gone (`D`).
    Deleted,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "A",
            ChangeKind::Changed => "C",
            ChangeKind::Deleted => "D",
        })
    }
}

/// One line of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// Absolute path inside the root (`/etc/hosts`); invalid UTF-8 replaced by U+FFFD.
    pub path: String,
    /// The exact path bytes, without the leading `/` (what [`diff_layer`] uses).
    pub raw: Vec<u8>,
}

impl Change {
    /// A change of `raw`, a path inside the root without a leading `/`.
    pub fn new(kind: ChangeKind, raw: &[u8]) -> Self {
        Change {
            kind,
            path: format!("/{}", String::from_utf8_lossy(raw)),
            raw: raw.to_vec(),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.path)
    }
}

/// The image's tree, looked up path by path (hard links resolved to their inode's kind and
/// metadata), so comparing a rootfs holds no second copy of the image's paths.
struct Image<'a> {
    tree: &'a FinalTree,
}

impl Image<'_> {
    fn get(&self, path: &[u8]) -> Option<FinalEntry> {
        self.tree.get_resolved(path)
    }

    fn children(&self, dir: &[u8]) -> Option<Vec<Vec<u8>>> {
        self.tree.children(dir)
    }
}

/// Whether an xattr takes part in the comparison: the kernel and overlayfs manage some, and an
/// unprivileged unpack could not set `trusted.*` and `security.*`.
fn compared_xattr(name: &[u8], privileged: bool) -> bool {
    if name == b"security.selinux" || name.windows(9).any(|w| w == b".overlay.") {
        return false;
    }
    privileged || !(name.starts_with(b"trusted.") || name.starts_with(b"security."))
}

struct Differ<'a> {
    image: Image<'a>,
    privileged: bool,
    out: Vec<Change>,
}

fn read_err(path: &[u8], op: &'static str, e: impl Into<std::io::Error>) -> RootfsError {
    RootfsError::Read {
        path: display(path),
        op,
        source: e.into(),
    }
}

/// Lists what changed in `root` compared with `image`, the merged tree of the layers `root`
/// was unpacked from, like `docker diff`.
///
/// - a path missing from the image is `Added`, and so is everything below a new directory;
/// - a path is `Changed` when its type, mode (not for symlinks), owner (when running as root),
///   device numbers or xattrs differ or, except for directories, its size, mtime (seconds) or
///   symlink target; a directory with any change below it is `Changed` too (as docker does, to
///   carry its attributes into the commit);
/// - a path of the image that is gone is `Deleted`; its children are not listed, nor those of
///   an image directory replaced by something else.
///
/// Compared xattrs leave out `security.selinux` and overlayfs' own, and when not running as
/// root also `trusted.*` and `security.*`. The result is sorted by path bytes.
pub fn changes(root: &Path, image: &FinalTree) -> Result<Vec<Change>, RootfsError> {
    let rootfd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::Root {
        path: root.to_path_buf(),
        source: e.into(),
    })?;
    let mut d = Differ {
        image: Image { tree: image },
        privileged: privileged(),
        out: Vec::new(),
    };
    d.dir(rootfd.as_fd(), b"", true)?;
    let mut out = d.out;
    out.sort_by(|a, b| a.raw.cmp(&b.raw));
    Ok(out)
}

impl Differ<'_> {
    /// Compares the directory `dir` (at `rel`) with the image's (`in_image`: whether the image
    /// has a directory there).
    fn dir(&mut self, dir: BorrowedFd<'_>, rel: &[u8], in_image: bool) -> Result<(), RootfsError> {
        let names = list_dir(dir).map_err(|e| read_err(rel, "readdir", e))?;
        for name in &names {
            let path = join(rel, name.to_bytes());
            let Some(st) = lstat_at(dir, name).map_err(|e| read_err(&path, "lstat", e))? else {
                continue;
            };
            let is_dir = file_type(&st) == FileType::Directory;
            let node = if in_image {
                self.image.get(&path)
            } else {
                None
            };
            let Some(node) = node else {
                self.out.push(Change::new(ChangeKind::Added, &path));
                if is_dir {
                    let sub = open_dir_read(dir, name).map_err(|e| read_err(&path, "open", e))?;
                    self.dir(sub.as_fd(), &path, false)?;
                }
                continue;
            };
            let changed = self.differs(dir, name, &path, &st, &node)?;
            if changed {
                self.out.push(Change::new(ChangeKind::Changed, &path));
            }
            if is_dir {
                let before = self.out.len();
                let sub = open_dir_read(dir, name).map_err(|e| read_err(&path, "open", e))?;
                let image_dir = matches!(node.kind, FinalKind::Directory);
                self.dir(sub.as_fd(), &path, image_dir)?;
                if !changed && self.out.len() > before {
                    self.out.push(Change::new(ChangeKind::Changed, &path));
                }
            }
        }
        if in_image && let Some(children) = self.image.children(rel) {
            for c in children {
                if names.binary_search_by(|n| n.to_bytes().cmp(&c)).is_err() {
                    self.out
                        .push(Change::new(ChangeKind::Deleted, &join(rel, &c)));
                }
            }
        }
        Ok(())
    }

    fn differs(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        path: &[u8],
        st: &Stat,
        node: &FinalEntry,
    ) -> Result<bool, RootfsError> {
        let ft = file_type(st);
        let m = &node.meta;
        let same_type = matches!(
            (&node.kind, ft),
            (FinalKind::Directory, FileType::Directory)
                | (FinalKind::Regular { .. }, FileType::RegularFile)
                | (FinalKind::Symlink { .. }, FileType::Symlink)
                | (FinalKind::CharDevice { .. }, FileType::CharacterDevice)
                | (FinalKind::BlockDevice { .. }, FileType::BlockDevice)
                | (FinalKind::Fifo, FileType::Fifo)
        );
        if !same_type {
            return Ok(true);
        }
        if ft != FileType::Symlink && (st.st_mode & 0o7777) != (m.mode & 0o7777) {
            return Ok(true);
        }
        if self.privileged && (u64::from(st.st_uid) != m.uid || u64::from(st.st_gid) != m.gid) {
            return Ok(true);
        }
        match &node.kind {
            FinalKind::CharDevice { major, minor } | FinalKind::BlockDevice { major, minor } => {
                let rdev = st.st_rdev;
                if rustix::fs::major(rdev) != *major || rustix::fs::minor(rdev) != *minor {
                    return Ok(true);
                }
            }
            FinalKind::Regular { size } if to_u64(st.st_size) != *size => return Ok(true),
            FinalKind::Symlink { target } => {
                let now = rustix::fs::readlinkat(dir, name, Vec::new())
                    .map_err(|e| read_err(path, "readlink", e))?;
                if now.as_bytes() != target.as_slice() {
                    return Ok(true);
                }
            }
            _ => {}
        }
        if ft != FileType::Directory && to_i64(st.st_mtime) != m.mtime.seconds {
            return Ok(true);
        }
        let target = match ft {
            FileType::Directory | FileType::RegularFile => None,
            _ => Some(XattrTarget::At(dir, name)),
        };
        let fd;
        let target = match target {
            Some(t) => t,
            None => {
                fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| read_err(path, "open", e))?;
                XattrTarget::Fd(fd.as_fd())
            }
        };
        let mut disk = read_xattrs(target).map_err(|e| read_err(path, "listxattr", e))?;
        disk.retain(|(n, _)| compared_xattr(n, self.privileged));
        let want: Vec<&(Vec<u8>, Vec<u8>)> = m
            .xattrs
            .iter()
            .filter(|(n, _)| compared_xattr(n, self.privileged))
            .collect();
        Ok(disk.len() != want.len() || disk.iter().zip(want).any(|(a, b)| a != b))
    }
}

/// Writes `changes` (from [`changes`] on the same `root`) as a layer tar, like docker's
/// `ExportChanges`: in path order, added and changed paths as they are in `root` (a changed
/// directory as a directory entry alone; contents, owners, modes, whole-second mtimes,
/// `security.capability`, hard links among the written paths), deleted paths as whiteouts
/// `.wh.<name>`: empty regular files with mode 0, owner 0:0 and mtime 0, so that the same
/// changes always give the same bytes (docker stamps them with the current time).
///
/// Paths are opened below `root` without following any symlink.
pub fn diff_layer(
    root: &Path,
    changes: &[Change],
    out: impl Write,
) -> Result<PackStats, RootfsError> {
    let rootfd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::Root {
        path: root.to_path_buf(),
        source: e.into(),
    })?;
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by(|a, b| a.raw.cmp(&b.raw));
    let mut p = Packer::new(out, false);
    for c in sorted {
        let bad = || RootfsError::BadChangePath {
            path: c.path.clone(),
        };
        let comps: Vec<&[u8]> = c.raw.split(|&b| b == b'/').collect();
        if comps.iter().any(|c| matches!(*c, b"" | b"." | b"..")) {
            return Err(bad());
        }
        if c.kind == ChangeKind::Deleted {
            p.whiteout(&c.raw)?;
            continue;
        }
        let (base, parents) = comps.split_last().ok_or_else(bad)?;
        // Every parent must be a real directory: open each without following symlinks.
        let mut dir =
            rustix::io::fcntl_dupfd_cloexec(&rootfd, 0).map_err(|e| read_err(&c.raw, "dup", e))?;
        for comp in parents {
            let name = cstr(comp).map_err(|_| bad())?;
            dir = open_dir_read(dir.as_fd(), &name).map_err(|e| read_err(&c.raw, "open", e))?;
        }
        let name = cstr(base).map_err(|_| bad())?;
        let st = lstat_at(dir.as_fd(), &name)
            .map_err(|e| read_err(&c.raw, "lstat", e))?
            .ok_or_else(|| read_err(&c.raw, "lstat", std::io::ErrorKind::NotFound))?;
        p.entry(dir.as_fd(), &name, &c.raw, &st)?;
    }
    p.finish()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::super::testutil::{E, Layer, tree};
    use super::super::{UnpackOptions, unpack_layer};
    use super::*;
    use crate::flatten::{FlattenOptions, final_tree};

    fn image() -> Vec<Vec<u8>> {
        let mut l0 = Layer::new();
        l0.dir("etc", 0o755)
            .file("etc/passwd", 0o644, b"root:x:0:0\n")
            .file("etc/group", 0o644, b"root:x:0:\n")
            .symlink("etc/mtab", "/proc/mounts")
            .dir("var/lib/db", 0o700)
            .file("var/lib/db/data", 0o600, b"data")
            .file("bin/tool", 0o755, b"tool")
            .hardlink("bin/tool2", "bin/tool")
            .dir("old", 0o755)
            .file("old/a", 0o644, b"a")
            .file("old/b", 0o644, b"b")
            .file("swap", 0o644, b"file, later a dir")
            .add(E::new("run/fifo", tar::EntryType::Fifo, 0o600));
        let mut l1 = Layer::new();
        l1.file("etc/passwd", 0o644, b"root:x:0:0\nuser:x:1000:1000\n")
            .whiteout("etc/.wh.group")
            .dir("opt", 0o755)
            .file("opt/app", 0o755, b"app");
        vec![l0.bytes(), l1.bytes()]
    }

    fn unpack_all(root: &Path, layers: &[Vec<u8>]) {
        for (i, l) in layers.iter().enumerate() {
            let opts = UnpackOptions {
                layer: i,
                ..UnpackOptions::default()
            };
            unpack_layer(root, l.as_slice(), &opts).unwrap();
        }
    }

    fn lines(c: &[Change]) -> Vec<String> {
        c.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn fresh_unpack_has_no_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = image();
        unpack_all(tmp.path(), &layers);
        let ft = final_tree(&layers[..], &FlattenOptions::default()).unwrap();
        assert_eq!(
            lines(&changes(tmp.path(), &ft).unwrap()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn changes_and_their_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let layers = image();
        unpack_all(&root, &layers);
        let ft = final_tree(&layers[..], &FlattenOptions::default()).unwrap();

        // Modify: content, mode, a new file in a new dir, deletions of a file and a whole
        // directory, a file replaced by a directory, a symlink retargeted, a hard link.
        fs::write(root.join("etc/passwd"), b"changed\n").unwrap();
        fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir_all(root.join("new/dir")).unwrap();
        fs::write(root.join("new/dir/file"), b"new").unwrap();
        fs::hard_link(root.join("new/dir/file"), root.join("new/link")).unwrap();
        fs::remove_file(root.join("var/lib/db/data")).unwrap();
        fs::remove_dir_all(root.join("old")).unwrap();
        fs::remove_file(root.join("swap")).unwrap();
        fs::create_dir(root.join("swap")).unwrap();
        fs::write(root.join("swap/inside"), b"in").unwrap();
        fs::remove_file(root.join("etc/mtab")).unwrap();
        std::os::unix::fs::symlink("/proc/self/mounts", root.join("etc/mtab")).unwrap();
        fs::remove_file(root.join("run/fifo")).unwrap();

        let got = changes(&root, &ft).unwrap();
        assert_eq!(
            lines(&got),
            [
                "C /bin",
                "C /bin/tool",
                "C /bin/tool2",
                "C /etc",
                "C /etc/mtab",
                "C /etc/passwd",
                "A /new",
                "A /new/dir",
                "A /new/dir/file",
                "A /new/link",
                "D /old",
                "C /run",
                "D /run/fifo",
                "C /swap",
                "A /swap/inside",
                "C /var",
                "C /var/lib",
                "C /var/lib/db",
                "D /var/lib/db/data",
            ]
        );
        assert_eq!(got[0].raw, b"bin");

        // The diff on top of the image's layers gives the modified tree.
        let mut diff = Vec::new();
        let stats = diff_layer(&root, &got, &mut diff).unwrap();
        assert_eq!(stats.entries, got.len() as u64);
        let mut again = Vec::new();
        diff_layer(&root, &got, &mut again).unwrap();
        assert_eq!(diff, again, "deterministic");
        let mut names = Vec::new();
        for e in tar::Archive::new(diff.as_slice()).entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            names.push(format!(
                "{} {}",
                String::from_utf8_lossy(&e.path_bytes()),
                h.entry_type().as_byte() as char
            ));
            if e.path_bytes().starts_with(b".wh.")
                || e.path_bytes().windows(5).any(|w| w == b"/.wh.")
            {
                assert_eq!(
                    (h.mode().unwrap(), h.mtime().unwrap(), h.size().unwrap()),
                    (0, 0, 0)
                );
            }
        }
        assert_eq!(
            names,
            [
                "bin/ 5",
                "bin/tool 0",
                "bin/tool2 1",
                "etc/ 5",
                "etc/mtab 2",
                "etc/passwd 0",
                "new/ 5",
                "new/dir/ 5",
                "new/dir/file 0",
                "new/link 1",
                ".wh.old 0",
                "run/ 5",
                "run/.wh.fifo 0",
                "swap/ 5",
                "swap/inside 0",
                "var/ 5",
                "var/lib/ 5",
                "var/lib/db/ 5",
                "var/lib/db/.wh.data 0",
            ]
        );
        let copy = tmp.path().join("copy");
        let mut all = layers.clone();
        all.push(diff);
        unpack_all(&copy, &all);
        assert_eq!(tree(&copy), tree(&root));

        // And the image plus the diff has no changes against the modified root.
        let ft2 = final_tree(&all[..], &FlattenOptions::default()).unwrap();
        assert_eq!(lines(&changes(&root, &ft2).unwrap()), Vec::<String>::new());
    }

    #[test]
    fn bad_change_paths_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for raw in [&b"../x"[..], b"a//b", b"", b"./a"] {
            let c = Change::new(ChangeKind::Added, raw);
            let err = diff_layer(tmp.path(), &[c], Vec::new()).unwrap_err();
            assert!(matches!(err, RootfsError::BadChangePath { .. }), "{err}");
        }
    }
}
