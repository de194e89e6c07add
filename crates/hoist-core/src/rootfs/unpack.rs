//! Applying one layer tar onto a root directory. See the [module docs](super) for the
//! semantics and the confinement rules.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use crate::layer::{self, Action, PLNK, RuleError};
use crate::tar::{Entry, EntryKind, Reader, show_name};

use super::fsops::{
    Resolved, WalkError, XattrTarget, cstr, file_type, join, list_dir, lstat_at, open_dir_read,
    read_xattrs, remove_all, remove_xattr, set_xattr, to_i64, to_u64, walk,
};
use super::{RootfsError, display, privileged};

/// Chunk size when copying file contents.
const COPY_BUF: usize = 64 << 10;
/// Buffer around the layer stream: headers are read 512 bytes at a time.
const READ_BUF: usize = 128 << 10;

/// Options of [`unpack_layer`].
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Index of the layer (0 = base), used in error messages.
    pub layer: usize,
    /// Set owners, create device nodes and insist on xattrs the kernel refuses. `None`: when
    /// running as root (effective uid 0).
    pub privileged: Option<bool>,
    /// A copy out of an image (`hoist cp`), not a layer: whiteout names are refused; an
    /// existing directory is never replaced by a non-directory nor an existing non-directory
    /// by a directory (docker cp's rule: nothing of the destination is removed); directory
    /// modes are set after their contents, so a read-only directory fills without privileges.
    pub copy: bool,
}

/// What [`unpack_layer`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnpackStats {
    /// Entries read (PAX and GNU long-name headers folded in).
    pub entries: u64,
    /// Entries that created or replaced a path (directories merged included).
    pub applied: u64,
    /// Whiteout and opaque entries.
    pub whiteouts: u64,
    /// Paths removed by whiteouts and opaque markers (a removed directory counts once).
    pub removed: u64,
    /// Entries ignored: the root directory, AUFS metadata.
    pub skipped: u64,
    /// Device nodes not created because the process is not privileged.
    pub skipped_devices: u64,
    /// Entries whose owner was not set because the process is not privileged.
    pub skipped_owners: u64,
    /// Xattrs the kernel refused (`EPERM`, or `ENOTSUP` when not privileged).
    pub skipped_xattrs: u64,
    /// Bytes of file content written.
    pub content_bytes: u64,
}

/// Applies one layer tar (uncompressed) onto `root`, which is created if missing.
///
/// Call it once per layer, base first. Nothing outside `root` is ever touched; an entry
/// whose name or hard-link target climbs out of the root with `..` fails the layer with
/// [`RootfsError::Escape`]. A failed layer leaves `root` partially applied.
pub fn unpack_layer(
    root: &Path,
    layer: impl Read,
    opts: &UnpackOptions,
) -> Result<UnpackStats, RootfsError> {
    let root_err = |source| RootfsError::Root {
        path: root.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(root).map_err(root_err)?;
    let fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| root_err(e.into()))?;
    let mut u = Unpacker {
        root: fd,
        layer: opts.layer,
        privileged: opts.privileged.unwrap_or_else(privileged),
        copy: opts.copy,
        stats: UnpackStats::default(),
        written: BTreeSet::new(),
        dir_times: HashMap::new(),
        dir_modes: Vec::new(),
        cache: None,
        plnk: false,
        buf: vec![0; COPY_BUF],
    };
    let mut reader = Reader::new(io::BufReader::with_capacity(READ_BUF, layer));
    while let Some(entry) = reader.next_entry().map_err(|source| RootfsError::Tar {
        layer: opts.layer,
        source,
    })? {
        u.entry(&entry, &mut reader)?;
    }
    u.finish()?;
    Ok(u.stats)
}

/// Priority of a pending directory mtime: a header beats an implied directory, which beats
/// the mtime a directory had before this layer touched its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimeSource {
    Before,
    Implied,
    Header,
}

/// An entry's attributes from its header and PAX records.
#[derive(Debug, Default)]
struct Attrs {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: (i64, u32),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Unpacker {
    root: OwnedFd,
    layer: usize,
    privileged: bool,
    stats: UnpackStats,
    /// Canonical paths written by this layer's entries.
    written: BTreeSet<Vec<u8>>,
    /// Directory mtimes to set when the layer ends, by canonical path.
    dir_times: HashMap<Vec<u8>, (TimeSource, (i64, u32))>,
    /// See [`UnpackOptions::copy`].
    copy: bool,
    /// With `copy`: directory modes to set when everything is written, by canonical path.
    dir_modes: Vec<(Vec<u8>, u32)>,
    /// The last resolved parent: its lexical components and the directory. Dropped whenever
    /// anything is removed (a cached fd could then name a deleted directory).
    cache: Option<(Vec<Vec<u8>>, Rc<Resolved>)>,
    /// Whether this layer created `/.wh..wh.plnk` (removed when the layer ends).
    plnk: bool,
    buf: Vec<u8>,
}

fn timestamps((secs, nanos): (i64, u32)) -> Timestamps {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nanos.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// The implied-directory attributes: mode 0755, owner 0:0, mtime 0.
const IMPLIED_MODE: u32 = 0o755;

impl Unpacker {
    fn apply_err(&self, path: &str, op: &'static str, e: impl Into<io::Error>) -> RootfsError {
        RootfsError::Apply {
            layer: self.layer,
            path: path.to_owned(),
            op,
            source: e.into(),
        }
    }

    fn walk_err(&self, path: &str, e: WalkError) -> RootfsError {
        match e {
            WalkError::Missing | WalkError::NotDir => RootfsError::NotADirectory {
                layer: self.layer,
                path: path.to_owned(),
            },
            WalkError::Loop => RootfsError::SymlinkLoop {
                layer: self.layer,
                path: path.to_owned(),
            },
            WalkError::Io(e) => self.apply_err(path, "resolve parent", e),
        }
    }

    /// Resolves (creating implied directories) the parent directory `parents`.
    fn parent(&mut self, parents: &[&[u8]], path: &str) -> Result<Rc<Resolved>, RootfsError> {
        if let Some((key, dir)) = &self.cache
            && key.len() == parents.len()
            && key.iter().zip(parents).all(|(a, b)| a == b)
        {
            return Ok(Rc::clone(dir));
        }
        let privileged = self.privileged;
        let mut created = Vec::new();
        let dir = walk(self.root.as_fd(), parents, true, &mut |dir, name, canon| {
            if privileged {
                rustix::fs::chownat(
                    dir,
                    name,
                    Some(Uid::ROOT),
                    Some(Gid::ROOT),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
            // mkdir is subject to the umask and inherits a setgid bit.
            rustix::fs::chmodat(
                dir,
                name,
                Mode::from_raw_mode(IMPLIED_MODE),
                AtFlags::empty(),
            )?;
            created.push(canon.to_vec());
            Ok(())
        });
        for c in created {
            self.dir_times.insert(c, (TimeSource::Implied, (0, 0)));
        }
        let dir = Rc::new(dir.map_err(|e| self.walk_err(path, e))?);
        self.cache = Some((
            parents.iter().map(|c| c.to_vec()).collect(),
            Rc::clone(&dir),
        ));
        Ok(dir)
    }

    /// Records the mtime `dir` has before this layer changes its children.
    fn touch(&mut self, dir: &Resolved, path: &str) -> Result<(), RootfsError> {
        if !self.dir_times.contains_key(&dir.canon) {
            let st = rustix::fs::fstat(&dir.fd).map_err(|e| self.apply_err(path, "stat", e))?;
            let t = (to_i64(st.st_mtime), to_u64(st.st_mtime_nsec) as u32);
            self.dir_times
                .insert(dir.canon.clone(), (TimeSource::Before, t));
        }
        Ok(())
    }

    fn set_dir_time(&mut self, canon: Vec<u8>, src: TimeSource, t: (i64, u32)) {
        let e = self.dir_times.entry(canon).or_insert((src, t));
        if src >= e.0 {
            *e = (src, t);
        }
    }

    /// Removes `name` from `dir` (recursively).
    fn remove(&mut self, dir: BorrowedFd<'_>, name: &CStr, path: &str) -> Result<(), RootfsError> {
        self.cache = None;
        remove_all(dir, name).map_err(|e| self.apply_err(path, "remove existing", e))
    }

    /// The attributes to set (checked by `layer::check_meta` first).
    fn attrs(e: &Entry) -> Attrs {
        let m = &e.meta;
        Attrs {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            mtime: (m.mtime.seconds, m.mtime.nanos),
            xattrs: m.xattrs.clone(),
        }
    }

    fn rule_err(&self, path: &str, what: &'static str, name: &[u8], err: RuleError) -> RootfsError {
        let (layer, path) = (self.layer, path.to_owned());
        match err {
            RuleError::Escape => RootfsError::Escape {
                layer,
                path,
                what,
                name: show_name(name),
            },
            RuleError::InvalidWhiteout => RootfsError::InvalidWhiteout { layer, path },
            RuleError::ComponentTooLong(len) => RootfsError::NameTooLong { layer, path, len },
            RuleError::Unsupported(t) => RootfsError::Unsupported {
                layer,
                path,
                typeflag: (t as char).escape_default().to_string(),
            },
            RuleError::IdRange(id) => RootfsError::IdRange { layer, path, id },
            source => RootfsError::Rule {
                layer,
                path,
                source,
            },
        }
    }

    fn entry<R: Read>(&mut self, e: &Entry, r: &mut Reader<R>) -> Result<(), RootfsError> {
        self.stats.entries += 1;
        let path = show_name(&e.path);
        let layer = self.layer;
        let action = layer::action(&e.path, e.kind)
            .map_err(|err| self.rule_err(&path, "name", &e.path, err))?;
        layer::check_meta(&e.meta)
            .map_err(|err| self.rule_err(&path, "attributes", &e.path, err))?;
        let mut plnk = false;
        let (parents, base) = match action {
            Action::Skip => {
                self.stats.skipped += 1; // the root itself, AUFS metadata
                return Ok(());
            }
            Action::Opaque { .. } | Action::Whiteout { .. } | Action::PlnkSource { .. }
                if self.copy =>
            {
                return Err(RootfsError::InvalidWhiteout {
                    layer,
                    path: path.clone(),
                });
            }
            Action::Opaque { dir } => return self.opaque(&dir, &path),
            Action::Whiteout { dir, name } => return self.whiteout(&dir, name, &path),
            Action::PlnkSource { name } => {
                plnk = true;
                (vec![PLNK], name)
            }
            Action::Put { parents, base } => (parents, base),
        };
        let attrs = Self::attrs(e);
        let parent = self.parent(&parents, &path)?;
        self.touch(&parent, &path)?;
        let pfd = parent.fd.as_fd();
        let name = cstr(base).map_err(|err| self.apply_err(&path, "name", err))?;
        let existing = lstat_at(pfd, &name).map_err(|err| self.apply_err(&path, "lstat", err))?;
        let existing_dir = existing.is_some_and(|st| file_type(&st) == FileType::Directory);
        let new_dir = e.kind == EntryKind::Directory;
        if self.copy && existing.is_some() && existing_dir != new_dir {
            let what = |dir: bool| {
                if dir {
                    "a directory"
                } else {
                    "a non-directory"
                }
            };
            return Err(RootfsError::Clash {
                path: display(&join(&parent.canon, base)),
                existing: what(existing_dir),
                new: what(new_dir),
            });
        }
        match e.kind {
            EntryKind::Directory => {
                if !existing_dir {
                    if existing.is_some() {
                        self.remove(pfd, &name, &path)?;
                    }
                    rustix::fs::mkdirat(pfd, &name, Mode::from_raw_mode(0o700))
                        .map_err(|err| self.apply_err(&path, "mkdir", err))?;
                }
                let fd = open_dir_read(pfd, &name)
                    .map_err(|err| self.apply_err(&path, "open directory", err))?;
                self.chown_fd(&fd, &attrs, &path)?;
                self.set_xattrs(XattrTarget::Fd(fd.as_fd()), &attrs, &path)?;
                let canon = join(&parent.canon, base);
                // A copy fills the directory first (owner rwx), its mode comes at the end.
                let mode = if self.copy {
                    self.dir_modes.push((canon.clone(), attrs.mode));
                    attrs.mode | 0o700
                } else {
                    attrs.mode
                };
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                    .map_err(|err| self.apply_err(&path, "chmod", err))?;
                self.set_dir_time(canon, TimeSource::Header, attrs.mtime);
            }
            EntryKind::HardLink => {
                let canon = join(&parent.canon, base);
                self.hardlink(e, pfd, &name, &canon, existing, &attrs, &path)?;
            }
            EntryKind::Symlink => {
                if existing.is_some() {
                    self.remove(pfd, &name, &path)?;
                }
                let target = cstr(&e.link).map_err(|err| self.apply_err(&path, "symlink", err))?;
                rustix::fs::symlinkat(&target, pfd, &name)
                    .map_err(|err| self.apply_err(&path, "symlink", err))?;
                self.chown_at(pfd, &name, &attrs, &path)?;
                self.set_xattrs(XattrTarget::At(pfd, &name), &attrs, &path)?;
                rustix::fs::utimensat(
                    pfd,
                    &name,
                    &timestamps(attrs.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|err| self.apply_err(&path, "utimensat", err))?;
            }
            EntryKind::Regular => {
                if existing.is_some() {
                    self.remove(pfd, &name, &path)?;
                }
                let fd = rustix::fs::openat(
                    pfd,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|err| self.apply_err(&path, "create file", err))?;
                let mut file = File::from(fd);
                self.copy(e, r, &mut file, &path)?;
                self.chown_fd(&file, &attrs, &path)?;
                self.set_xattrs(XattrTarget::Fd(file.as_fd()), &attrs, &path)?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(attrs.mode))
                    .map_err(|err| self.apply_err(&path, "chmod", err))?;
                rustix::fs::futimens(&file, &timestamps(attrs.mtime))
                    .map_err(|err| self.apply_err(&path, "futimens", err))?;
                if plnk {
                    self.plnk = true;
                    self.stats.applied += 1;
                    return Ok(());
                }
            }
            EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo => {
                if existing.is_some() {
                    self.remove(pfd, &name, &path)?;
                }
                let (ft, dev) = match e.kind {
                    EntryKind::Fifo => (FileType::Fifo, 0),
                    _ if !self.privileged => {
                        self.stats.skipped_devices += 1;
                        return Ok(());
                    }
                    EntryKind::CharDevice => (
                        FileType::CharacterDevice,
                        rustix::fs::makedev(e.devmajor, e.devminor),
                    ),
                    _ => (
                        FileType::BlockDevice,
                        rustix::fs::makedev(e.devmajor, e.devminor),
                    ),
                };
                rustix::fs::mknodat(pfd, &name, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(|err| self.apply_err(&path, "mknod", err))?;
                self.chown_at(pfd, &name, &attrs, &path)?;
                self.set_xattrs(XattrTarget::At(pfd, &name), &attrs, &path)?;
                rustix::fs::chmodat(
                    pfd,
                    &name,
                    Mode::from_raw_mode(attrs.mode),
                    AtFlags::empty(),
                )
                .map_err(|err| self.apply_err(&path, "chmod", err))?;
                rustix::fs::utimensat(
                    pfd,
                    &name,
                    &timestamps(attrs.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|err| self.apply_err(&path, "utimensat", err))?;
            }
            EntryKind::Other(t) => {
                return Err(RootfsError::Unsupported {
                    layer,
                    path,
                    typeflag: (t as char).escape_default().to_string(),
                });
            }
        }
        self.stats.applied += 1;
        self.written.insert(join(&parent.canon, base));
        Ok(())
    }

    /// Writes the entry's content into `file`: a sparse file's runs at their offsets, its
    /// holes left as holes (never written as zeros), its size set at the end.
    fn copy<R: Read>(
        &mut self,
        e: &Entry,
        r: &mut Reader<R>,
        file: &mut File,
        path: &str,
    ) -> Result<(), RootfsError> {
        let runs = match &e.sparse {
            Some(runs) => runs.clone(),
            None => vec![crate::tar::Fragment {
                offset: 0,
                len: e.stored,
            }],
        };
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| {
            for run in &runs {
                if e.sparse.is_some() {
                    file.seek(io::SeekFrom::Start(run.offset))
                        .map_err(|err| self.apply_err(path, "seek", err))?;
                }
                let mut left = run.len;
                while left > 0 {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = r
                        .read_stored(&mut buf[..want])
                        .map_err(|source| RootfsError::Tar {
                            layer: self.layer,
                            source,
                        })?;
                    file.write_all(&buf[..n])
                        .map_err(|err| self.apply_err(path, "write", err))?;
                    left -= n as u64;
                    self.stats.content_bytes += n as u64;
                }
            }
            if e.sparse.is_some() {
                file.set_len(e.size)
                    .map_err(|err| self.apply_err(path, "truncate", err))?;
            }
            Ok(())
        })();
        self.buf = buf;
        result
    }

    #[allow(clippy::too_many_arguments)] // the entry, where it goes, and what is there now
    fn hardlink(
        &mut self,
        e: &Entry,
        pfd: BorrowedFd<'_>,
        name: &CStr,
        canon: &[u8],
        existing: Option<rustix::fs::Stat>,
        attrs: &Attrs,
        path: &str,
    ) -> Result<(), RootfsError> {
        let layer = self.layer;
        let link = &e.link;
        let target = show_name(link);
        let bad = |reason| RootfsError::HardlinkTarget {
            layer,
            path: path.to_owned(),
            target: target.clone(),
            reason,
        };
        let tcomps = layer::components(link)
            .map_err(|err| self.rule_err(path, "hard link target", link, err))?;
        let Some((&tbase, tparents)) = tcomps.split_last() else {
            return Err(bad("is the root directory"));
        };
        let tdir = match walk(self.root.as_fd(), tparents, false, &mut |_, _, _| Ok(())) {
            Ok(d) => d,
            Err(WalkError::Missing) => return Err(bad("does not exist")),
            Err(WalkError::NotDir) => return Err(bad("a parent is not a directory")),
            Err(err) => return Err(self.walk_err(path, err)),
        };
        let tname = cstr(tbase).map_err(|err| self.apply_err(path, "name", err))?;
        let tst = match lstat_at(tdir.fd.as_fd(), &tname) {
            Ok(Some(st)) => st,
            Ok(None) => return Err(bad("does not exist")),
            Err(err) => return Err(self.apply_err(path, "lstat link target", err)),
        };
        let tkind = file_type(&tst);
        if tkind == FileType::Directory {
            return Err(bad("is a directory"));
        }
        // docker removes the existing path before it links: a target at or below it is gone.
        let tcanon = join(&tdir.canon, tbase);
        if existing.is_some() && (tcanon == canon || crate::flatten::is_below(&tcanon, canon)) {
            return Err(bad("does not exist"));
        }
        let same = existing.is_some_and(|st| st.st_dev == tst.st_dev && st.st_ino == tst.st_ino);
        if !same {
            if existing.is_some() {
                self.remove(pfd, name, path)?;
            }
            rustix::fs::linkat(tdir.fd.as_fd(), &tname, pfd, name, AtFlags::empty())
                .map_err(|err| self.apply_err(path, "link", err))?;
        }
        // As moby: the link header's attributes apply to the shared inode.
        self.chown_at(pfd, name, attrs, path)?;
        self.set_xattrs(XattrTarget::At(pfd, name), attrs, path)?;
        if tkind != FileType::Symlink {
            rustix::fs::chmodat(pfd, name, Mode::from_raw_mode(attrs.mode), AtFlags::empty())
                .map_err(|err| self.apply_err(path, "chmod", err))?;
            rustix::fs::utimensat(
                pfd,
                name,
                &timestamps(attrs.mtime),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|err| self.apply_err(path, "utimensat", err))?;
        }
        Ok(())
    }

    fn chown_fd(&mut self, fd: impl AsFd, a: &Attrs, path: &str) -> Result<(), RootfsError> {
        if !self.privileged {
            self.stats.skipped_owners += 1;
            return Ok(());
        }
        rustix::fs::fchown(fd, Some(uid(a.uid)), Some(gid(a.gid)))
            .map_err(|err| self.apply_err(path, "chown", err))
    }

    fn chown_at(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        a: &Attrs,
        path: &str,
    ) -> Result<(), RootfsError> {
        if !self.privileged {
            self.stats.skipped_owners += 1;
            return Ok(());
        }
        rustix::fs::chownat(
            dir,
            name,
            Some(uid(a.uid)),
            Some(gid(a.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|err| self.apply_err(path, "chown", err))
    }

    fn set_xattrs(&mut self, t: XattrTarget<'_>, a: &Attrs, path: &str) -> Result<(), RootfsError> {
        for (n, v) in &a.xattrs {
            match set_xattr(t, n, v) {
                Ok(()) => {}
                // moby ignores EPERM always, and ENOTSUP in best-effort (rootless) mode.
                Err(Errno::PERM) => self.stats.skipped_xattrs += 1,
                Err(Errno::OPNOTSUPP) if !self.privileged => self.stats.skipped_xattrs += 1,
                Err(err) => return Err(self.apply_err(path, "setxattr", err)),
            }
        }
        Ok(())
    }

    fn whiteout(&mut self, parents: &[&[u8]], name: &[u8], path: &str) -> Result<(), RootfsError> {
        self.stats.whiteouts += 1;
        let dir = match walk(self.root.as_fd(), parents, false, &mut |_, _, _| Ok(())) {
            Ok(d) => d,
            // Nothing to hide.
            Err(WalkError::Missing | WalkError::NotDir) => return Ok(()),
            Err(err) => return Err(self.walk_err(path, err)),
        };
        let cname = cstr(name).map_err(|err| self.apply_err(path, "name", err))?;
        if lstat_at(dir.fd.as_fd(), &cname)
            .map_err(|err| self.apply_err(path, "lstat", err))?
            .is_none()
        {
            return Ok(());
        }
        self.touch(&dir, path)?;
        self.cache = None;
        let canon = join(&dir.canon, name);
        if !self.prune(dir.fd.as_fd(), &cname, &canon, path)? {
            self.remove(dir.fd.as_fd(), &cname, path)?;
            self.stats.removed += 1;
        }
        Ok(())
    }

    fn opaque(&mut self, parents: &[&[u8]], path: &str) -> Result<(), RootfsError> {
        self.stats.whiteouts += 1;
        let dir = match walk(self.root.as_fd(), parents, false, &mut |_, _, _| Ok(())) {
            Ok(d) => d,
            Err(WalkError::Missing | WalkError::NotDir) => return Ok(()),
            Err(err) => return Err(self.walk_err(path, err)),
        };
        self.touch(&dir, path)?;
        self.cache = None;
        let rd = open_dir_read(dir.fd.as_fd(), c".")
            .map_err(|err| self.apply_err(path, "open directory", err))?;
        let children = list_dir(rd.as_fd()).map_err(|err| self.apply_err(path, "readdir", err))?;
        for c in children {
            if self.plnk && dir.canon.is_empty() && c.to_bytes() == PLNK {
                // This layer's AUFS link sources, not content: they stay until the layer ends.
                continue;
            }
            let canon = join(&dir.canon, c.to_bytes());
            if !self.prune(rd.as_fd(), &c, &canon, path)? {
                self.remove(rd.as_fd(), &c, path)?;
                self.stats.removed += 1;
            }
        }
        Ok(())
    }

    /// Whether this layer wrote `canon` or something below it.
    fn written_under(&self, canon: &[u8]) -> bool {
        if self.written.contains(canon) {
            return true;
        }
        let prefix = [canon, b"/"].concat();
        self.written
            .range(prefix.clone()..)
            .next()
            .is_some_and(|p| p.starts_with(&prefix))
    }

    /// Removes the lower-layer content below `name` (in `dir`) for a whiteout of this layer;
    /// returns whether `name` itself survives (it or a descendant was written by this layer).
    fn prune(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        canon: &[u8],
        path: &str,
    ) -> Result<bool, RootfsError> {
        if !self.written_under(canon) {
            return Ok(false);
        }
        let own = self.written.contains(canon);
        let st = lstat_at(dir, name).map_err(|err| self.apply_err(path, "lstat", err))?;
        if !st.is_some_and(|st| file_type(&st) == FileType::Directory) {
            return Ok(own);
        }
        let sub =
            open_dir_read(dir, name).map_err(|err| self.apply_err(path, "open directory", err))?;
        let children = list_dir(sub.as_fd()).map_err(|err| self.apply_err(path, "readdir", err))?;
        let mut kept = false;
        for c in children {
            let cc = join(canon, c.to_bytes());
            if self.prune(sub.as_fd(), &c, &cc, path)? {
                kept = true;
            } else {
                self.remove(sub.as_fd(), &c, path)?;
                self.stats.removed += 1;
            }
        }
        if own {
            return Ok(true);
        }
        if kept {
            // The lower directory is hidden; what remains is implied by this layer's entries.
            if self.privileged {
                rustix::fs::fchown(&sub, Some(Uid::ROOT), Some(Gid::ROOT))
                    .map_err(|err| self.apply_err(path, "chown", err))?;
            }
            let xattrs = read_xattrs(XattrTarget::Fd(sub.as_fd()))
                .map_err(|err| self.apply_err(path, "listxattr", err))?;
            for (n, _) in xattrs {
                match remove_xattr(XattrTarget::Fd(sub.as_fd()), &n) {
                    Ok(()) => {}
                    Err(Errno::PERM | Errno::OPNOTSUPP) if !self.privileged => {}
                    Err(err) => return Err(self.apply_err(path, "removexattr", err)),
                }
            }
            rustix::fs::fchmod(&sub, Mode::from_raw_mode(IMPLIED_MODE))
                .map_err(|err| self.apply_err(path, "chmod", err))?;
            self.set_dir_time(canon.to_vec(), TimeSource::Implied, (0, 0));
        }
        Ok(kept)
    }

    /// Ends the layer: drops the AUFS link sources and sets directory mtimes.
    fn finish(&mut self) -> Result<(), RootfsError> {
        let layer_path = format!("layer {}", self.layer);
        if self.plnk {
            self.cache = None;
            remove_all(self.root.as_fd(), c".wh..wh.plnk")
                .map_err(|err| self.apply_err(&layer_path, "remove .wh..wh.plnk", err))?;
        }
        for (canon, mode) in std::mem::take(&mut self.dir_modes) {
            let path = display(&canon);
            let comps: Vec<&[u8]> = canon.split(|&b| b == b'/').collect();
            let (base, parents) = comps.split_last().expect("a written directory has a name");
            let dir = walk(self.root.as_fd(), parents, false, &mut |_, _, _| Ok(()))
                .map_err(|err| self.walk_err(&path, err))?;
            let name = cstr(base).map_err(|err| self.apply_err(&path, "name", err))?;
            // chmodat follows a symlink: only the directory the copy made is changed.
            match lstat_at(dir.fd.as_fd(), &name) {
                Ok(Some(st)) if file_type(&st) == FileType::Directory => {}
                Ok(_) => continue,
                Err(err) => return Err(self.apply_err(&path, "lstat", err)),
            }
            rustix::fs::chmodat(&dir.fd, &name, Mode::from_raw_mode(mode), AtFlags::empty())
                .map_err(|err| self.apply_err(&path, "chmod", err))?;
        }
        let mut times: Vec<_> = std::mem::take(&mut self.dir_times).into_iter().collect();
        times.sort();
        for (canon, (src, t)) in times {
            // A copy sets the times of the directories it wrote, and leaves the destination's
            // own as the kernel left them (they may not be the caller's to change).
            if self.copy && src != TimeSource::Header {
                continue;
            }
            let path = display(&canon);
            let ts = timestamps(t);
            if canon.is_empty() {
                rustix::fs::utimensat(&self.root, c".", &ts, AtFlags::empty())
                    .map_err(|err| self.apply_err(&path, "utimensat", err))?;
                continue;
            }
            let comps: Vec<&[u8]> = canon.split(|&b| b == b'/').collect();
            let (base, parents) = comps.split_last().expect("non-empty path");
            let Ok(dir) = walk(self.root.as_fd(), parents, false, &mut |_, _, _| Ok(())) else {
                continue; // removed later in the layer
            };
            let name = cstr(base).map_err(|err| self.apply_err(&path, "name", err))?;
            match lstat_at(dir.fd.as_fd(), &name) {
                Ok(Some(st)) if file_type(&st) == FileType::Directory => {}
                Ok(_) => continue,
                Err(err) => return Err(self.apply_err(&path, "lstat", err)),
            }
            rustix::fs::utimensat(&dir.fd, &name, &ts, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|err| self.apply_err(&path, "utimensat", err))?;
        }
        Ok(())
    }
}

fn uid(id: u64) -> Uid {
    Uid::from_raw(u32::try_from(id).unwrap_or(0))
}

fn gid(id: u64) -> Gid {
    Gid::from_raw(u32::try_from(id).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    use ::tar::EntryType;

    use super::super::testutil::{E, Layer, MTIME, Node, is_root, listing, tree};
    use super::*;

    fn apply(root: &Path, layers: &[Vec<u8>]) -> Result<Vec<UnpackStats>, RootfsError> {
        layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let opts = UnpackOptions {
                    layer: i,
                    ..UnpackOptions::default()
                };
                unpack_layer(root, l.as_slice(), &opts)
            })
            .collect()
    }

    fn node<'a>(t: &'a std::collections::BTreeMap<String, Node>, p: &str) -> &'a Node {
        t.get(p)
            .unwrap_or_else(|| panic!("{p} missing from {t:#?}"))
    }

    #[test]
    fn entry_types_modes_owners_and_times() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let mut l = Layer::new();
        l.dir("etc/", 0o755)
            .file("etc/passwd", 0o644, b"root:x:0:0\n")
            .file("./bin/su", 0o4755, b"su")
            .dir("tmp", 0o1777)
            .dir("srv/", 0o2750)
            .symlink("etc/mtab", "/proc/mounts")
            .symlink("etc/up", "../../../../outside")
            .hardlink("etc/passwd.bak", "etc/passwd");
        let mut owned = E::new("home/user/file", EntryType::Regular, 0o600);
        owned.uid = 1000;
        owned.gid = 2000;
        owned.data = b"mine".to_vec();
        l.add(owned);
        let mut fifo = E::new("run/pipe", EntryType::Fifo, 0o620);
        fifo.mtime = 1234;
        l.add(fifo);
        let mut null = E::new("dev/null", EntryType::Char, 0o666);
        null.dev = (1, 3);
        l.add(null);
        let stats = apply(&root, &[l.bytes()]).unwrap();
        let t = tree(&root);
        let root_only = is_root();
        let mut want = vec![
            "bin d 0755 0:0",
            "bin/su f 4755 0:0 su",
            "dev d 0755 0:0",
            "dev/null c 0666 0:0",
            "etc d 0755 0:0",
            "etc/mtab l 0777 0:0 /proc/mounts",
            "etc/passwd f 0644 0:0 root:x:0:0\n #1",
            "etc/passwd.bak f 0644 0:0 root:x:0:0\n #1",
            "etc/up l 0777 0:0 ../../../../outside",
            "home d 0755 0:0",
            "home/user d 0755 0:0",
            "home/user/file f 0600 1000:2000 mine",
            "run d 0755 0:0",
            "run/pipe p 0620 0:0",
            "srv d 2750 0:0",
            "tmp d 1777 0:0",
        ];
        if !root_only {
            eprintln!("note: not root; owners and devices are not checked");
            want.retain(|l| !l.starts_with("dev/null"));
            let got: Vec<String> = listing(&root)
                .into_iter()
                .map(|l| l.replacen(&format!(" {}:{}", t["bin"].uid, t["bin"].gid), " 0:0", 1))
                .collect();
            let want: Vec<String> = want.iter().map(|s| s.replace("1000:2000", "0:0")).collect();
            assert_eq!(got, want);
            assert_eq!(stats[0].skipped_devices, 1);
            return;
        }
        assert_eq!(listing(&root), want);
        assert_eq!(node(&t, "dev/null").rdev, rustix::fs::makedev(1, 3));
        // mtimes: from the headers; implied dirs get 0; directory mtimes survive their
        // children being written after them.
        assert_eq!(node(&t, "etc").mtime, MTIME as i64);
        assert_eq!(node(&t, "etc/passwd").mtime, MTIME as i64);
        assert_eq!(node(&t, "etc/mtab").mtime, MTIME as i64);
        assert_eq!(node(&t, "run/pipe").mtime, 1234);
        assert_eq!(node(&t, "home").mtime, 0);
        assert_eq!(node(&t, "home/user").mtime, 0);
        let s = &stats[0];
        assert_eq!((s.entries, s.applied, s.skipped), (11, 11, 0));
        assert_eq!(s.content_bytes, 11 + 2 + 4);
        assert_eq!((s.skipped_devices, s.skipped_owners), (0, 0));
    }

    #[test]
    fn pax_mtime_xattrs_and_long_names() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let mut f = E::new(&long, EntryType::Regular, 0o755);
        f.data = b"x".to_vec();
        f.pax = vec![
            ("mtime".into(), b"1700000000.25".to_vec()),
            ("SCHILY.xattr.user.note".into(), b"hello".to_vec()),
            // cap_net_bind_service=ep, VFS_CAP_REVISION_2.
            (
                "SCHILY.xattr.security.capability".into(),
                vec![1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
        ];
        let mut big = E::new("big-ids", EntryType::Regular, 0o644);
        big.pax = vec![("uid".into(), b"718322462".to_vec())];
        let mut l = Layer::new();
        l.add(f).add(big);
        let stats = apply(&root, &[l.bytes()]).unwrap();
        let p = root.join(&long);
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 250_000_000));
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        let cfd = rustix::fs::open(&p, OFlags::RDONLY, Mode::empty()).unwrap();
        let x = read_xattrs(XattrTarget::Fd(cfd.as_fd())).unwrap();
        let names: Vec<&[u8]> = x.iter().map(|(n, _)| n.as_slice()).collect();
        if is_root() {
            // The capability survives the chown (set after it), the mode too.
            assert_eq!(names, [&b"security.capability"[..], b"user.note"]);
            assert_eq!(m.mode() & 0o7777, 0o755);
            assert_eq!(
                std::fs::metadata(root.join("big-ids")).unwrap().uid(),
                718_322_462
            );
        } else {
            eprintln!("note: not root; security.capability and owners not checked");
            assert!(names.contains(&&b"user.note"[..]) || stats[0].skipped_xattrs > 0);
        }
    }

    #[test]
    fn whiteouts_and_opaque_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let mut l0 = Layer::new();
        l0.dir("a", 0o755)
            .file("a/old", 0o644, b"old")
            .dir("a/sub", 0o700)
            .file("a/sub/deep", 0o644, b"deep")
            .file("b", 0o644, b"b")
            .dir("c", 0o755)
            .file("c/x", 0o644, b"x")
            .file("c/y", 0o644, b"y")
            .dir("d", 0o750)
            .file("d/lower", 0o644, b"lower")
            .symlink("e", "/c");
        let mut l1 = Layer::new();
        // The opaque marker comes after this layer's own entries of `a`: they stay.
        l1.dir("a", 0o711)
            .file("a/new", 0o644, b"new")
            .whiteout("a/.wh..wh..opq")
            .whiteout(".wh.b")
            .whiteout("c/.wh.x")
            // A whiteout through a symlink removes nothing outside its target dir, and the
            // symlink itself can be whited out.
            .whiteout(".wh.e")
            // Whiteouts never hide the layer's own entries: d survives with implied attributes.
            .file("d/mine", 0o644, b"mine")
            .whiteout(".wh.d")
            .whiteout(".wh.missing")
            .whiteout("nodir/.wh.x")
            .add(E::new(".wh..wh.aufs-meta", EntryType::Regular, 0o600));
        let stats = apply(&root, &[l0.bytes(), l1.bytes()]).unwrap();
        assert_eq!(
            listing(&root),
            [
                "a d 0711 0:0",
                "a/new f 0644 0:0 new",
                "c d 0755 0:0",
                "c/y f 0644 0:0 y",
                "d d 0755 0:0",
                "d/mine f 0644 0:0 mine",
            ]
            .map(|s| s.replace("0:0", &owner(&root)))
        );
        let t = tree(&root);
        assert_eq!(node(&t, "d").mtime, 0, "implied after the whiteout");
        assert_eq!(
            node(&t, "c").mtime,
            MTIME as i64,
            "mtime restored after .wh.x"
        );
        let s = &stats[1];
        assert_eq!((s.whiteouts, s.removed, s.skipped), (7, 6, 1));
    }

    fn owner(root: &Path) -> String {
        let m = std::fs::metadata(root).unwrap();
        if is_root() {
            "0:0".into()
        } else {
            format!("{}:{}", m.uid(), m.gid())
        }
    }

    #[test]
    fn invalid_whiteout_names_are_refused() {
        for name in [".wh.", "x/.wh..", ".wh..."] {
            let tmp = tempfile::tempdir().unwrap();
            let mut l = Layer::new();
            l.whiteout(name);
            let err = apply(tmp.path(), &[l.bytes()]).unwrap_err();
            assert!(
                matches!(&err, RootfsError::InvalidWhiteout { layer: 0, path } if path == name),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn replacing_existing_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let mut l0 = Layer::new();
        l0.dir("merge", 0o700)
            .file("merge/keep", 0o644, b"keep")
            .dir("dir2file", 0o755)
            .file("dir2file/child", 0o644, b"c")
            .file("file2dir", 0o644, b"f")
            .symlink("link2dir", "/merge")
            .file("file2link", 0o644, b"f")
            .file("target", 0o644, b"target")
            .symlink("link2file", "/target");
        let mut l1 = Layer::new();
        l1.dir("merge", 0o755)
            .file("dir2file", 0o600, b"now a file")
            .dir("file2dir", 0o750)
            .dir("link2dir", 0o755)
            .symlink("file2link", "target")
            .file("link2file", 0o644, b"replaced, not written through")
            // Duplicates: the last one wins.
            .file("dup", 0o644, b"first")
            .file("dup", 0o644, b"second");
        apply(&root, &[l0.bytes(), l1.bytes()]).unwrap();
        assert_eq!(
            listing(&root),
            [
                "dir2file f 0600 0:0 now a file",
                "dup f 0644 0:0 second",
                "file2dir d 0750 0:0",
                "file2link l 0777 0:0 target",
                "link2dir d 0755 0:0",
                "link2file f 0644 0:0 replaced, not written through",
                "merge d 0755 0:0",
                "merge/keep f 0644 0:0 keep",
                "target f 0644 0:0 target",
            ]
            .map(|s| s.replace("0:0", &owner(&root)))
        );
    }

    #[test]
    fn hardlinks_to_lower_layers_absolute_targets_and_aufs_plnk() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let mut l0 = Layer::new();
        l0.file("usr/bin/perl", 0o755, b"perl")
            .symlink("sym", "usr/bin/perl");
        let mut l1 = Layer::new();
        let mut abs = E::new("usr/bin/perl5", EntryType::Link, 0o700);
        abs.link = b"/usr/bin/perl".to_vec();
        l1.add(abs)
            .hardlink("symlink-link", "sym")
            .file(".wh..wh.plnk/123", 0o644, b"aufs")
            .hardlink("from-plnk", "/.wh..wh.plnk/123");
        apply(&root, &[l0.bytes(), l1.bytes()]).unwrap();
        let t = tree(&root);
        assert_eq!(
            listing(&root),
            [
                "from-plnk f 0644 0:0 aufs",
                "sym l 0777 0:0 usr/bin/perl #1",
                "symlink-link l 0777 0:0 usr/bin/perl #1",
                "usr d 0755 0:0",
                "usr/bin d 0755 0:0",
                "usr/bin/perl f 0700 0:0 perl #2",
                "usr/bin/perl5 f 0700 0:0 perl #2",
            ]
            .map(|s| s.replace("0:0", &owner(&root)))
        );
        assert_eq!(
            node(&t, "usr/bin/perl").link_group,
            node(&t, "usr/bin/perl5").link_group
        );

        let mut bad = Layer::new();
        bad.hardlink("x", "does/not/exist");
        let err = apply(&root, &[bad.bytes()]).unwrap_err();
        assert!(
            matches!(
                &err,
                RootfsError::HardlinkTarget { layer: 0, path, reason: "does not exist", .. }
                    if path == "x"
            ),
            "{err}"
        );
        let mut dir = Layer::new();
        dir.hardlink("y", "usr");
        let err = apply(&root, &[dir.bytes()]).unwrap_err();
        assert!(
            matches!(
                &err,
                RootfsError::HardlinkTarget {
                    reason: "is a directory",
                    ..
                }
            ),
            "{err}"
        );
    }

    /// A root and a sibling directory that no layer may touch.
    struct Jail {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
        before: std::collections::BTreeMap<String, Node>,
    }

    impl Jail {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("root");
            let outside = tmp.path().join("outside");
            std::fs::create_dir_all(&root).unwrap();
            std::fs::create_dir_all(outside.join("sub")).unwrap();
            std::fs::write(outside.join("keep"), b"keep").unwrap();
            std::fs::write(outside.join("sub/file"), b"file").unwrap();
            let before = tree(&outside);
            Jail {
                _tmp: tmp,
                root,
                outside,
                before,
            }
        }

        fn abs(&self) -> String {
            self.outside.to_str().unwrap().to_owned()
        }

        fn check(&self) {
            assert_eq!(
                tree(&self.outside),
                self.before,
                "the outside directory changed"
            );
            assert_eq!(
                std::fs::metadata(self.outside.join("keep"))
                    .unwrap()
                    .nlink(),
                1
            );
        }
    }

    #[test]
    fn hostile_names_are_refused_or_confined() {
        for name in ["../escape", "a/../../escape", "./../escape"] {
            let j = Jail::new();
            let mut l = Layer::new();
            l.file(name, 0o644, b"pwned");
            let err = apply(&j.root, &[Vec::new(), l.bytes()]).unwrap_err();
            assert!(
                matches!(
                    &err,
                    RootfsError::Escape { layer: 1, path, what: "name", .. } if path == name
                ),
                "{name}: {err}"
            );
            assert!(err.to_string().starts_with("layer 1: entry "), "{err}");
            j.check();
        }
        // Absolute names are root-relative.
        let j = Jail::new();
        let mut l = Layer::new();
        l.file(&format!("{}/keep", j.abs()), 0o644, b"pwned");
        apply(&j.root, &[l.bytes()]).unwrap();
        j.check();
        let inside = j.root.join(j.abs().trim_start_matches('/')).join("keep");
        assert_eq!(std::fs::read(inside).unwrap(), b"pwned");
    }

    #[test]
    fn symlinks_never_lead_outside() {
        let j0 = Jail::new();
        let abs = j0.abs();
        let cases: Vec<(&str, String)> = vec![
            ("absolute", abs.clone()),
            ("relative", "../outside".into()),
            ("deep relative", format!("../../../../../..{abs}")),
        ];
        for (what, target) in cases {
            for split in [false, true] {
                let j = Jail::new();
                let target = target.replace(&abs, &j.abs());
                let mut l0 = Layer::new();
                l0.symlink("evil", &target);
                let mut l1 = Layer::new();
                l1.file("evil/pwned", 0o644, b"pwned")
                    .file("evil/keep", 0o644, b"pwned")
                    .dir("evil/sub", 0o777)
                    .whiteout("evil/sub/.wh.file")
                    .whiteout("evil/.wh..wh..opq");
                let layers = if split {
                    vec![l0.bytes(), l1.bytes()]
                } else {
                    let mut both = l0.clone_entries();
                    both.extend_from_slice(&l1.bytes());
                    vec![both]
                };
                apply(&j.root, &layers).unwrap_or_else(|e| panic!("{what}: {e}"));
                j.check();
                // Everything landed below the root, where the symlink leads inside it.
                let t = tree(&j.root);
                let inner = if target.ends_with(&j.abs()) {
                    j.abs().trim_start_matches('/').to_owned()
                } else {
                    "outside".to_owned()
                };
                assert_eq!(node(&t, &format!("{inner}/pwned")).data, b"pwned", "{what}");
                assert_eq!(node(&t, "evil").kind, 'l');
            }
        }
    }

    #[test]
    fn final_symlinks_are_replaced_not_followed() {
        let j = Jail::new();
        let abs = j.abs();
        let mut l0 = Layer::new();
        l0.symlink("file", &format!("{abs}/keep"))
            .symlink("dir", &abs)
            .symlink("rel", "../outside/keep")
            .symlink("node", &format!("{abs}/keep"));
        let mut l1 = Layer::new();
        l1.file("file", 0o666, b"new")
            .dir("dir", 0o777)
            .hardlink("rel", "file")
            .add(E::new("node", EntryType::Fifo, 0o666));
        apply(&j.root, &[l0.bytes(), l1.bytes()]).unwrap();
        j.check();
        let t = tree(&j.root);
        assert_eq!(
            (node(&t, "file").kind, &node(&t, "file").data[..]),
            ('f', &b"new"[..])
        );
        assert_eq!(node(&t, "dir").kind, 'd');
        assert_eq!(node(&t, "rel").link_group, node(&t, "file").link_group);
        assert_eq!(node(&t, "node").kind, 'p');
        // A symlink, then a file "through" it in the same layer.
        let j = Jail::new();
        let mut l = Layer::new();
        l.symlink("evil", &j.abs())
            .file("evil/keep", 0o644, b"pwned");
        apply(&j.root, &[l.bytes()]).unwrap();
        j.check();
    }

    #[test]
    fn hardlinks_never_reach_outside() {
        let j = Jail::new();
        let abs = j.abs();
        for (i, target) in [
            "../outside/keep",
            "../../outside-file",
            "a/../../outside/keep",
        ]
        .iter()
        .enumerate()
        {
            let mut l = Layer::new();
            l.hardlink("stolen", target);
            let err = apply(&j.root, &[l.bytes()]).unwrap_err();
            assert!(
                matches!(
                    &err,
                    RootfsError::Escape {
                        what: "hard link target",
                        ..
                    }
                ),
                "{i}: {err}"
            );
            j.check();
        }
        // Through a symlink: resolved inside the root, where there is nothing.
        let mut l = Layer::new();
        l.symlink("evil", &abs).hardlink("stolen", "evil/keep");
        let err = apply(&j.root, &[l.bytes()]).unwrap_err();
        assert!(matches!(&err, RootfsError::HardlinkTarget { .. }), "{err}");
        let mut l = Layer::new();
        l.hardlink("stolen", &format!("{abs}/keep"));
        let err = apply(&j.root, &[l.bytes()]).unwrap_err();
        assert!(matches!(&err, RootfsError::HardlinkTarget { .. }), "{err}");
        j.check();
    }

    #[test]
    fn symlink_loops_fail_cleanly() {
        let tmp = tempfile::tempdir().unwrap();
        let mut l = Layer::new();
        l.symlink("a", "b")
            .symlink("b", "a")
            .file("a/x", 0o644, b"x");
        let err = apply(tmp.path(), &[l.bytes()]).unwrap_err();
        assert!(
            matches!(&err, RootfsError::SymlinkLoop { layer: 0, path } if path == "a/x"),
            "{err}"
        );
    }
}
