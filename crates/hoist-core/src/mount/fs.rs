//! [`ImageFs`]: the FUSE operations over an image's merged tree.
//!
//! Inode numbers are the tree's ([`FinalTree::ino_attr`]): one per directory and one per
//! file shared by all its hard links. Attributes are computed from the compact tree when the
//! kernel asks (it caches them: the tree never changes, so they are valid as long as it keeps
//! them). Every operation that would change something answers `EROFS`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::content::{Contents, Opened};
use crate::blobfile::BlobFile;
use crate::error::{Error, Result};
use crate::flatten::{DirChild, FinalKind, FinalTree, InodeAttr, Mtime};
use crate::tar::EntryKind;
use crate::view::OpenedImage;

/// How long the kernel may keep names and attributes: the tree never changes while mounted,
/// so any time is right; a day keeps `find` and `ls -R` from asking twice.
const TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The block size `stat` reports (and `statfs`'s unit): the page size, as most file systems.
const BLOCK_SIZE: u32 = 4096;
/// Longest name a component can have (Linux's `NAME_MAX`; the tree refuses longer ones).
const NAME_MAX: u32 = 255;
/// The owner id shown for one that does not fit 32 bits (the kernel's `overflowuid`). The
/// merged tree refuses such ids, so this is never seen in practice.
const OVERFLOW_ID: u32 = 65534;
/// Largest read the kernel sends (`FUSE_MAX_PAGES` × 4 KiB at most); the read buffer grows
/// to what is asked, so this only bounds it.
const MAX_READ: usize = 1 << 20;

/// Where the file system reports errors it answers `EIO` for (they happen while serving,
/// with no caller to return them to): the binary prints them.
pub type ErrorSink = Box<dyn Fn(&Error) + Send + Sync>;

/// An open file.
#[derive(Debug)]
enum Handle {
    /// Reads at `data_offset` of an uncompressed blob.
    Pread {
        blob: BlobFile,
        data_offset: u64,
        size: u64,
    },
    /// Reads through the content thread.
    Stream { size: u64 },
    /// An empty file.
    Empty,
}

/// A read-only file system of an image's merged tree (layers `0..count`).
pub struct ImageFs {
    /// The tree (behind a lock: its output order is computed lazily, so it is not `Sync`).
    tree: Mutex<FinalTree>,
    contents: Contents,
    files: Mutex<HashMap<u64, Handle>>,
    dirs: Mutex<HashMap<u64, Arc<[DirChild]>>>,
    next_fh: AtomicU64,
    /// Reused for reads through the content thread.
    buf: Mutex<Vec<u8>>,
    /// For `statfs`: inodes, and bytes of regular files.
    inodes: u64,
    bytes: u64,
    on_error: Option<ErrorSink>,
}

impl std::fmt::Debug for ImageFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFs")
            .field("inodes", &self.inodes)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl ImageFs {
    /// The file system of `image`'s layers `0..count` (every layer: [`OpenedImage::layers`]).
    /// Computes the merged tree from the layer indexes (building an index that is missing);
    /// `on_error` hears of read errors while it is served.
    pub fn new(image: OpenedImage, count: usize, on_error: Option<ErrorSink>) -> Result<ImageFs> {
        if count > image.layers() {
            return Err(Error::InvalidArgument(format!(
                "{}: {count} layers asked for, the image has {}",
                image.what,
                image.layers()
            )));
        }
        let tree = image.tree(count)?;
        let inodes = tree.ino_count();
        let bytes = tree.file_bytes();
        let contents = Contents::start(image).map_err(|source| Error::Read {
            what: "starting the mount's content thread".into(),
            source,
        })?;
        Ok(ImageFs {
            tree: Mutex::new(tree),
            contents,
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            buf: Mutex::new(Vec::new()),
            inodes,
            bytes,
            on_error,
        })
    }

    fn tree(&self) -> MutexGuard<'_, FinalTree> {
        // A panic while holding it left nothing half-changed: the tree is never changed.
        self.tree.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn attr(&self, ino: INodeNo) -> Option<InodeAttr> {
        self.tree().ino_attr(ino.0)
    }

    fn report(&self, e: &Error) -> Errno {
        if let Some(sink) = &self.on_error {
            sink(e);
        }
        Errno::EIO
    }

    fn new_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }
}

/// Locks a table (a panic while holding it left it consistent: every change is one call).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `stat` of inode `ino`.
fn file_attr(ino: u64, a: &InodeAttr) -> FileAttr {
    let (kind, size, rdev) = match &a.kind {
        FinalKind::Directory | FinalKind::HardLink { .. } => (FileType::Directory, 0, 0),
        FinalKind::Regular { size } => (FileType::RegularFile, *size, 0),
        FinalKind::Symlink { target } => (FileType::Symlink, target.len() as u64, 0),
        FinalKind::CharDevice { major, minor } => {
            (FileType::CharDevice, 0, encode_dev(*major, *minor))
        }
        FinalKind::BlockDevice { major, minor } => {
            (FileType::BlockDevice, 0, encode_dev(*major, *minor))
        }
        FinalKind::Fifo => (FileType::NamedPipe, 0, 0),
    };
    let mtime = system_time(a.meta.mtime);
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime: mtime,
        crtime: mtime,
        kind,
        perm: (a.meta.mode & 0o7777) as u16,
        nlink: a.nlink,
        uid: u32::try_from(a.meta.uid).unwrap_or(OVERFLOW_ID),
        gid: u32::try_from(a.meta.gid).unwrap_or(OVERFLOW_ID),
        rdev,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// A device number as FUSE carries it: the kernel's 32-bit `new_encode_dev` (major: 12 bits,
/// minor: 20 bits, which is all a Linux device number has; larger ones are cut, as `mknod`
/// would cut them).
fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// A tar mtime as a `SystemTime` (before the epoch too; out-of-range ones are clamped).
fn system_time(m: Mtime) -> SystemTime {
    let base = if m.seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(m.seconds.unsigned_abs()))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(m.seconds.unsigned_abs()))
    };
    base.and_then(|t| t.checked_add(Duration::from_nanos(u64::from(m.nanos))))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The FUSE type of a tar type.
fn file_type(k: EntryKind) -> FileType {
    match k {
        EntryKind::Directory => FileType::Directory,
        EntryKind::Symlink => FileType::Symlink,
        EntryKind::CharDevice => FileType::CharDevice,
        EntryKind::BlockDevice => FileType::BlockDevice,
        EntryKind::Fifo => FileType::NamedPipe,
        _ => FileType::RegularFile,
    }
}

impl Filesystem for ImageFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Both only help (readlink answers cached, directory lookups in parallel); a kernel
        // without them works the same, so one it refuses is no error.
        for cap in [
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_PARALLEL_DIROPS,
        ] {
            let _ = config.add_capabilities(cap);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let tree = self.tree();
        let Some(ino) = tree.ino_lookup(parent.0, name.as_bytes()) else {
            return reply.error(Errno::ENOENT);
        };
        match tree.ino_attr(ino) {
            Some(a) => reply.entry(&TTL, &file_attr(ino, &a), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino) {
            Some(a) => reply.attr(&TTL, &file_attr(ino.0, &a)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.attr(ino).map(|a| a.kind) {
            Some(FinalKind::Symlink { target }) => reply.data(&target),
            Some(_) => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let Some(a) = self.attr(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let FinalKind::Regular { size } = a.kind else {
            // Only regular files are opened through the file system (the kernel opens devices
            // and fifos itself; directories go through opendir).
            return reply.error(Errno::EISDIR);
        };
        let fh = self.new_fh();
        let handle = match a.source {
            _ if size == 0 => Handle::Empty,
            None => {
                let e = Error::InvalidArgument(format!(
                    "inode {}: a file of {size} bytes that no layer entry holds",
                    ino.0
                ));
                return reply.error(self.report(&e));
            }
            Some(id) => match self.contents.open(fh, id, size) {
                Ok(Opened::Pread { blob, data_offset }) => Handle::Pread {
                    blob,
                    data_offset,
                    size,
                },
                Ok(Opened::Stream) => Handle::Stream { size },
                Err(e) => return reply.error(self.report(&e)),
            },
        };
        lock(&self.files).insert(fh, handle);
        // The content never changes: pages cached by an earlier open stay valid.
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let len = (size as usize).min(MAX_READ);
        let (stream_size, pread) = match lock(&self.files).get(&fh.0) {
            Some(Handle::Empty) => return reply.data(&[]),
            Some(Handle::Pread {
                blob,
                data_offset,
                size,
            }) => (*size, Some((blob.clone(), *data_offset))),
            Some(Handle::Stream { size }) => (*size, None),
            None => return reply.error(Errno::EBADF),
        };
        if offset >= stream_size {
            return reply.data(&[]);
        }
        let mut buf = std::mem::take(&mut *lock(&self.buf));
        let result = match pread {
            Some((blob, data_offset)) => {
                let want = usize::try_from(stream_size - offset).map_or(len, |l| l.min(len));
                buf.resize(want, 0);
                read_full(&blob, data_offset + offset, &mut buf[..want]).map_err(|source| {
                    Error::Read {
                        what: format!("a file's data at offset {data_offset} of a layer blob"),
                        source,
                    }
                })
            }
            None => {
                let (b, r) = self.contents.read(fh.0, offset, len, buf);
                buf = b;
                r
            }
        };
        match result {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(self.report(&e)),
        }
        *lock(&self.buf) = buf;
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if let Some(Handle::Stream { .. }) = lock(&self.files).remove(&fh.0) {
            self.contents.close(fh.0);
        }
        reply.ok();
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let Some(children) = self.tree().ino_children(ino.0) else {
            return reply.error(Errno::ENOTDIR);
        };
        let fh = self.new_fh();
        lock(&self.dirs).insert(fh, children.into());
        // The listing never changes: the kernel may cache it, across opens too.
        reply.opened(
            FileHandle(fh),
            FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(children) = lock(&self.dirs).get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let Some(parent) = self.tree().ino_parent(ino.0) else {
            return reply.error(Errno::ENOTDIR);
        };
        // Entry i (`.`, `..`, then the children by name) has offset i + 1: the offset of the
        // next one to read.
        let dots = [(ino.0, &b"."[..]), (parent, &b".."[..])];
        let all = dots
            .iter()
            .map(|&(i, n)| (i, n, FileType::Directory))
            .chain(
                children
                    .iter()
                    .map(|c| (c.ino, &c.name[..], file_type(c.kind))),
            );
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (ino, name, kind)) in all.enumerate().skip(skip) {
            if reply.add(INodeNo(ino), i as u64 + 1, kind, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.dirs).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let blocks = self.bytes.div_ceil(u64::from(BLOCK_SIZE));
        reply.statfs(
            blocks,
            0,
            0,
            self.inodes,
            0,
            BLOCK_SIZE,
            NAME_MAX,
            BLOCK_SIZE,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let Some(a) = self.attr(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let Some((_, value)) = a.meta.xattrs.iter().find(|(n, _)| n == name.as_bytes()) else {
            return reply.error(Errno::NO_XATTR);
        };
        xattr_reply(value, size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let Some(a) = self.attr(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let mut names = Vec::new();
        for (n, _) in &a.meta.xattrs {
            names.extend_from_slice(n);
            names.push(0);
        }
        xattr_reply(&names, size, reply);
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        // With `default_permissions` the kernel checks modes itself; only writes are refused.
        if self.attr(ino).is_none() {
            reply.error(Errno::ENOENT);
        } else if mask.contains(AccessFlags::W_OK) {
            reply.error(Errno::EROFS);
        } else {
            reply.ok();
        }
    }

    // Everything below would change the tree: a read-only file system refuses it. (The
    // kernel already refuses most of it on a read-only mount; these answer the rest.)

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }
}

/// Answers a getxattr/listxattr: the size when asked for it (`size` 0), `ERANGE` when the
/// caller's buffer is too small, else the bytes.
fn xattr_reply(value: &[u8], size: u32, reply: ReplyXattr) {
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    if size == 0 {
        reply.size(len);
    } else if len > size {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(value);
    }
}

/// Fills `buf` from `blob` at `pos`: the file's data is inside the blob (checked at open), so
/// a short read is an error.
fn read_full(blob: &BlobFile, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match blob.read_at(&mut buf[n..], pos + n as u64) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_encode_as_the_kernel_decodes() {
        // new_decode_dev: major = (dev & 0xfff00) >> 8, minor = (dev & 0xff) | ((dev >> 12) & 0xfff00).
        for (major, minor) in [(1, 3), (4, 64), (136, 0), (259, 1_048_575), (4095, 256)] {
            let dev = encode_dev(major, minor);
            assert_eq!((dev & 0xfff00) >> 8, major, "{major}:{minor}");
            assert_eq!(
                (dev & 0xff) | ((dev >> 12) & 0xfff00),
                minor,
                "{major}:{minor}"
            );
        }
    }

    #[test]
    fn mtimes_keep_nanoseconds_and_may_precede_the_epoch() {
        let at = |seconds, nanos| system_time(Mtime { seconds, nanos });
        assert_eq!(
            at(1_700_000_000, 123_456_789)
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap(),
            Duration::new(1_700_000_000, 123_456_789)
        );
        // -1.5 s: seconds are floored, nanoseconds count forward.
        assert_eq!(
            SystemTime::UNIX_EPOCH
                .duration_since(at(-2, 500_000_000))
                .unwrap(),
            Duration::from_millis(1500)
        );
    }
}
