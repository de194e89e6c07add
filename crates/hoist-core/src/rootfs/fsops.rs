//! Root-confined file system primitives: every path is resolved from a directory fd one
//! component at a time, directories are opened with `O_NOFOLLOW | O_DIRECTORY`, and symlinks
//! met on the way are resolved by hand inside the root (absolute targets restart at the root,
//! `..` stops at the root), the way a `chroot` would. Final components are only ever handled
//! with `*at` calls that do not follow them.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat, XattrFlags};
use rustix::io::Errno;

/// Symlinks followed while resolving one path, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINKS: u32 = 40;

/// Converts a stat field of whatever integer type this architecture uses.
pub(super) fn to_u64<T: TryInto<u64>>(v: T) -> u64 {
    v.try_into().unwrap_or(0)
}

/// Converts a signed stat field of whatever integer type this architecture uses.
pub(super) fn to_i64<T: TryInto<i64>>(v: T) -> i64 {
    v.try_into().unwrap_or(0)
}

/// The file type of a stat result.
pub(super) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Joins a canonical directory path and a name.
pub(super) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

/// A name as a C string (tar names cannot contain NUL; refuse them rather than truncate).
pub(super) fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

/// Extended attributes: (name, value) pairs sorted by name.
pub(super) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Called by [`walk`] for each directory it creates: its parent, its name, its canonical path.
pub(super) type OnCreate<'a> = dyn FnMut(BorrowedFd<'_>, &CStr, &[u8]) -> io::Result<()> + 'a;

/// Why a directory walk stopped.
#[derive(Debug)]
pub(super) enum WalkError {
    /// A component does not exist (and was not to be created).
    Missing,
    /// A component exists but is neither a directory nor a symlink to one.
    NotDir,
    /// More than [`MAX_SYMLINKS`] symlinks.
    Loop,
    /// A system call failed.
    Io(io::Error),
}

impl From<Errno> for WalkError {
    fn from(e: Errno) -> Self {
        WalkError::Io(e.into())
    }
}

/// A directory reached by [`walk`].
#[derive(Debug)]
pub(super) struct Resolved {
    /// `O_PATH` fd of the directory.
    pub(super) fd: OwnedFd,
    /// Its canonical path inside the root, without symlinks ("" for the root).
    pub(super) canon: Vec<u8>,
}

/// Opens a directory entry of `dir` as an `O_PATH` directory fd, refusing symlinks.
pub(super) fn open_dir_path(dir: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens a directory entry of `dir` for reading (listing, `fchmod`, xattrs), refusing symlinks.
pub(super) fn open_dir_read(dir: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Resolves the directory `comps` (already lexically normalized) inside `root`, following
/// symlinks inside the root. When `create` is set, missing directories are created with mode
/// 0755 and `on_create` gets each one's parent, name and canonical path.
pub(super) fn walk(
    root: BorrowedFd<'_>,
    comps: &[&[u8]],
    create: bool,
    on_create: &mut OnCreate<'_>,
) -> Result<Resolved, WalkError> {
    // One (fd, name) per level below the root; `..` pops, an absolute symlink clears.
    let mut stack: Vec<(OwnedFd, Vec<u8>)> = Vec::new();
    let mut queue: std::collections::VecDeque<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
    let mut links = 0;
    while let Some(c) = queue.pop_front() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        let cur = stack.last().map_or(root, |(fd, _)| fd.as_fd());
        let name = cstr(&c).map_err(WalkError::Io)?;
        let st = match rustix::fs::statat(cur, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(st),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(e.into()),
        };
        match st.map(|st| file_type(&st)) {
            None if create => {
                rustix::fs::mkdirat(cur, &name, Mode::from_raw_mode(0o755))?;
                let mut canon: Vec<u8> = Vec::new();
                for (_, n) in &stack {
                    canon = join(&canon, n);
                }
                on_create(cur, &name, &join(&canon, &c)).map_err(WalkError::Io)?;
            }
            None => return Err(WalkError::Missing),
            Some(FileType::Directory) => {}
            Some(FileType::Symlink) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(WalkError::Loop);
                }
                let target = rustix::fs::readlinkat(cur, &name, Vec::new())?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    stack.clear();
                }
                for t in target.split(|&b| b == b'/').rev() {
                    queue.push_front(t.to_vec());
                }
                continue;
            }
            Some(_) => return Err(WalkError::NotDir),
        }
        let fd = match open_dir_path(cur, &name) {
            Ok(fd) => fd,
            // Swapped for a symlink or a file between the stat and the open.
            Err(Errno::LOOP | Errno::NOTDIR) => return Err(WalkError::NotDir),
            Err(e) => return Err(e.into()),
        };
        stack.push((fd, c));
    }
    let mut canon: Vec<u8> = Vec::new();
    for (_, n) in &stack {
        canon = join(&canon, n);
    }
    let fd = match stack.pop() {
        Some((fd, _)) => fd,
        None => rustix::io::fcntl_dupfd_cloexec(root, 0)?,
    };
    Ok(Resolved { fd, canon })
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Names in a directory opened for reading, sorted by bytes, without `.` and `..`.
pub(super) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let n = entry.file_name();
        if n.to_bytes() == b"." || n.to_bytes() == b".." {
            continue;
        }
        names.push(n.to_owned());
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Removes `name` from `dir` and, for a directory, everything below it. Never follows symlinks.
pub(super) fn remove_all(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if file_type(&st) == FileType::Directory {
        let sub = open_dir_read(dir, name)?;
        for child in list_dir(sub.as_fd())? {
            remove_all(sub.as_fd(), &child)?;
        }
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(())
}

/// A path naming `name` inside the directory `dir` through `/proc/self/fd`, for the `l*xattr`
/// calls, which have no `*at` form: the directory is the one we hold (the magic link cannot be
/// redirected), and `name` is one component that `l*xattr` does not follow.
pub(super) fn proc_path(dir: BorrowedFd<'_>, name: &CStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(OsStr::from_bytes(name.to_bytes()));
    p
}

/// Calls a "query size, then fill" xattr function until the buffer is big enough.
fn sized(mut f: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => {
                let n = f(&mut [])?;
                buf.resize(n.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Where to read or write an entry's xattrs.
#[derive(Debug, Clone, Copy)]
pub(super) enum XattrTarget<'a> {
    /// An fd opened for reading or writing (regular files, directories).
    Fd(BorrowedFd<'a>),
    /// `name` inside `dir`, not followed (symlinks, devices, fifos).
    At(BorrowedFd<'a>, &'a CStr),
}

/// All xattrs of an entry, sorted by name. A file system without xattr support has none.
pub(super) fn read_xattrs(t: XattrTarget<'_>) -> io::Result<Xattrs> {
    let list = match t {
        XattrTarget::Fd(fd) => sized(|b| rustix::fs::flistxattr(fd, b)),
        XattrTarget::At(dir, name) => {
            let p = proc_path(dir, name);
            sized(|b| rustix::fs::llistxattr(&p, b))
        }
    };
    let list = match list {
        Ok(l) => l,
        Err(e) if e.raw_os_error() == Some(Errno::OPNOTSUPP.raw_os_error()) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for n in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        match get_xattr(t, n)? {
            Some(v) => out.push((n.to_vec(), v)),
            None => continue,
        }
    }
    out.sort();
    Ok(out)
}

/// One xattr of an entry; `None` when absent.
pub(super) fn get_xattr(t: XattrTarget<'_>, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let cname = cstr(name)?;
    let r = match t {
        XattrTarget::Fd(fd) => sized(|b| rustix::fs::fgetxattr(fd, &cname, b)),
        XattrTarget::At(dir, n) => {
            let p = proc_path(dir, n);
            sized(|b| rustix::fs::lgetxattr(&p, &cname, b))
        }
    };
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e)
            if e.raw_os_error() == Some(Errno::NODATA.raw_os_error())
                || e.raw_os_error() == Some(Errno::OPNOTSUPP.raw_os_error()) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Sets one xattr on an entry.
pub(super) fn set_xattr(t: XattrTarget<'_>, name: &[u8], value: &[u8]) -> rustix::io::Result<()> {
    let cname = CString::new(name).map_err(|_| Errno::INVAL)?;
    match t {
        XattrTarget::Fd(fd) => rustix::fs::fsetxattr(fd, &cname, value, XattrFlags::empty()),
        XattrTarget::At(dir, n) => {
            rustix::fs::lsetxattr(proc_path(dir, n), &cname, value, XattrFlags::empty())
        }
    }
}

/// Removes one xattr from an entry.
pub(super) fn remove_xattr(t: XattrTarget<'_>, name: &[u8]) -> rustix::io::Result<()> {
    let cname = CString::new(name).map_err(|_| Errno::INVAL)?;
    match t {
        XattrTarget::Fd(fd) => rustix::fs::fremovexattr(fd, &cname),
        XattrTarget::At(dir, n) => rustix::fs::lremovexattr(proc_path(dir, n), &cname),
    }
}
