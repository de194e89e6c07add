//! A directory as a tar stream, the way `docker export` writes a container's filesystem.

use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, Stat};

use super::fsops::{
    XattrTarget, Xattrs, file_type, get_xattr, join, list_dir, lstat_at, open_dir_read,
    read_xattrs, to_i64, to_u64,
};
use super::{RootfsError, display};
use crate::tar::{EntryKind, Header, Mtime, Writer};

/// Buffer around the output stream.
const WRITE_BUF: usize = 128 << 10;
/// Chunk size when copying file contents.
const COPY_BUF: usize = 64 << 10;
/// The only xattr `docker export` keeps.
const CAPABILITY: &[u8] = b"security.capability";

/// Options of [`pack_dir`].
#[derive(Default)]
pub struct PackOptions<'a> {
    /// Paths to leave out, relative to the root without a leading `/` (`etc/hosts`); leaving
    /// out a directory leaves out everything below it.
    pub exclude: Option<&'a dyn Fn(&Path) -> bool>,
    /// Keep every xattr. By default only `security.capability` is kept, rewritten from
    /// revision 3 to revision 2 as `docker export` does.
    pub all_xattrs: bool,
}

impl fmt::Debug for PackOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackOptions")
            .field("exclude", &self.exclude.map(|_| "<fn>"))
            .field("all_xattrs", &self.all_xattrs)
            .finish()
    }
}

/// What [`pack_dir`] or [`super::diff_layer`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackStats {
    /// Entries written (PAX headers not counted).
    pub entries: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
    /// Bytes of the whole tar.
    pub tar_bytes: u64,
    /// Sockets left out (tar has no type for them).
    pub skipped_sockets: u64,
}

/// Writes the tree below `root` (not `root` itself) to `out` as a tar, like `docker export`.
///
/// - order: depth first, the children of each directory sorted by name bytes (as Go's
///   `filepath.Walk`), so parents come before their children and the same tree always gives
///   the same bytes;
/// - names without `./`, directories with a trailing `/`; owners and modes (with setuid,
///   setgid, sticky) as on disk, empty user and group names, mtimes truncated to whole seconds;
/// - the second and later paths of a multiply-linked inode (same device and inode) are hard
///   links to the first; symlinks are stored, never followed; devices and fifos are kept,
///   sockets left out;
/// - ustar headers, PAX records only where needed, two zero blocks at the end.
pub fn pack_dir(
    root: &Path,
    out: impl Write,
    opts: &PackOptions<'_>,
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
    let mut p = Packer::new(out, opts.all_xattrs);
    p.dir(rootfd.as_fd(), b"", opts)?;
    p.finish()
}

/// Writes entries read from a directory tree; shared with the diff writer.
pub(super) struct Packer<W: Write> {
    out: Writer<BufWriter<W>>,
    /// First path of each multiply-linked inode, by (device, inode).
    links: HashMap<(u64, u64), Vec<u8>>,
    all_xattrs: bool,
    stats: PackStats,
    buf: Vec<u8>,
}

fn read_err(path: &[u8], op: &'static str, e: impl Into<std::io::Error>) -> RootfsError {
    RootfsError::Read {
        path: display(path),
        op,
        source: e.into(),
    }
}

impl<W: Write> Packer<W> {
    pub(super) fn new(out: W, all_xattrs: bool) -> Self {
        Packer {
            out: Writer::new(BufWriter::with_capacity(WRITE_BUF, out)),
            links: HashMap::new(),
            all_xattrs,
            stats: PackStats::default(),
            buf: vec![0; COPY_BUF],
        }
    }

    fn dir(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &[u8],
        opts: &PackOptions<'_>,
    ) -> Result<(), RootfsError> {
        let names = list_dir(dir).map_err(|e| read_err(rel, "readdir", e))?;
        for name in names {
            let child = join(rel, name.to_bytes());
            if opts
                .exclude
                .is_some_and(|f| f(Path::new(OsStr::from_bytes(&child))))
            {
                continue;
            }
            let Some(st) = lstat_at(dir, &name).map_err(|e| read_err(&child, "lstat", e))? else {
                continue; // removed meanwhile
            };
            self.entry(dir, &name, &child, &st)?;
            if file_type(&st) == FileType::Directory {
                let sub = open_dir_read(dir, &name).map_err(|e| read_err(&child, "open", e))?;
                self.dir(sub.as_fd(), &child, opts)?;
            }
        }
        Ok(())
    }

    /// The xattrs to write for an entry.
    fn xattrs(&self, t: XattrTarget<'_>, path: &[u8]) -> Result<Xattrs, RootfsError> {
        if self.all_xattrs {
            return read_xattrs(t).map_err(|e| read_err(path, "listxattr", e));
        }
        let Some(mut cap) = get_xattr(t, CAPABILITY).map_err(|e| read_err(path, "getxattr", e))?
        else {
            return Ok(Vec::new());
        };
        // As go-archive: VFS_CAP_REVISION_3 (with a namespace root uid) becomes revision 2,
        // the root uid making no sense outside the user namespace the archive was built in.
        if cap.len() > 20 && cap[3] == 3 {
            cap[3] = 2;
            cap.truncate(20);
        }
        Ok(vec![(CAPABILITY.to_vec(), cap)])
    }

    /// Writes the entry `name` of `dir`, whose path inside the root is `path`.
    pub(super) fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        path: &[u8],
        st: &Stat,
    ) -> Result<(), RootfsError> {
        let ft = file_type(st);
        let mut hdr = Header {
            mode: st.st_mode & 0o7777,
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            mtime: Mtime {
                seconds: to_i64(st.st_mtime),
                nanos: 0,
            },
            ..Header::new(path, EntryKind::Regular)
        };
        let link;
        let xattrs;
        let mut file = None;
        match ft {
            FileType::Socket => {
                self.stats.skipped_sockets += 1;
                return Ok(());
            }
            FileType::Directory => {
                hdr.kind = EntryKind::Directory;
                let fd = open_dir_read(dir, name).map_err(|e| read_err(path, "open", e))?;
                xattrs = self.xattrs(XattrTarget::Fd(fd.as_fd()), path)?;
            }
            FileType::RegularFile => {
                hdr.kind = EntryKind::Regular;
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| read_err(path, "open", e))?;
                let now = rustix::fs::fstat(&fd).map_err(|e| read_err(path, "fstat", e))?;
                if file_type(&now) != FileType::RegularFile || now.st_ino != st.st_ino {
                    return Err(RootfsError::FileChanged {
                        path: display(path),
                    });
                }
                hdr.size = to_u64(now.st_size);
                xattrs = self.xattrs(XattrTarget::Fd(fd.as_fd()), path)?;
                file = Some(File::from(fd));
            }
            FileType::Symlink => {
                hdr.kind = EntryKind::Symlink;
                link = rustix::fs::readlinkat(dir, name, Vec::new())
                    .map_err(|e| read_err(path, "readlink", e))?;
                hdr.link = link.as_bytes();
                xattrs = self.xattrs(XattrTarget::At(dir, name), path)?;
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                hdr.kind = match ft {
                    FileType::CharacterDevice => EntryKind::CharDevice,
                    FileType::BlockDevice => EntryKind::BlockDevice,
                    _ => EntryKind::Fifo,
                };
                if ft != FileType::Fifo {
                    let rdev = st.st_rdev;
                    hdr.devmajor = rustix::fs::major(rdev);
                    hdr.devminor = rustix::fs::minor(rdev);
                }
                xattrs = self.xattrs(XattrTarget::At(dir, name), path)?;
            }
            FileType::Unknown => {
                return Err(read_err(path, "lstat", std::io::ErrorKind::Unsupported));
            }
        }
        hdr.xattrs = &xattrs;
        let first;
        if ft != FileType::Directory && to_u64(st.st_nlink) > 1 {
            let key = (to_u64(st.st_dev), to_u64(st.st_ino));
            match self.links.get(&key) {
                Some(p) => {
                    first = p.clone();
                    hdr.kind = EntryKind::HardLink;
                    hdr.link = &first;
                    hdr.size = 0;
                    file = None;
                }
                None => {
                    self.links.insert(key, path.to_vec());
                }
            }
        }
        self.out.header(&hdr).map_err(RootfsError::Write)?;
        self.stats.entries += 1;
        if let Some(mut f) = file {
            self.copy(&mut f, hdr.size, path)?;
        }
        Ok(())
    }

    /// Copies exactly `size` bytes of `f`, then pads.
    fn copy(&mut self, f: &mut File, size: u64, path: &[u8]) -> Result<(), RootfsError> {
        let mut left = size;
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match f.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(RootfsError::FileChanged {
                        path: display(path),
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(path, "read", e)),
            };
            self.out
                .write_data(&self.buf[..n])
                .map_err(RootfsError::Write)?;
            left -= n as u64;
        }
        self.stats.content_bytes += size;
        self.out.pad(size).map_err(RootfsError::Write)
    }

    /// Writes a whiteout `<dir>/.wh.<base>` for a deleted path: an empty regular file, mode 0,
    /// owner 0:0 and mtime 0 (docker uses the current time, so its diffs are not reproducible).
    pub(super) fn whiteout(&mut self, path: &[u8]) -> Result<(), RootfsError> {
        let name = match path.iter().rposition(|&b| b == b'/') {
            Some(i) => [&path[..=i], b".wh.", &path[i + 1..]].concat(),
            None => [&b".wh."[..], path].concat(),
        };
        let hdr = Header::new(&name, EntryKind::Regular);
        self.out.header(&hdr).map_err(RootfsError::Write)?;
        self.stats.entries += 1;
        Ok(())
    }

    pub(super) fn finish(self) -> Result<PackStats, RootfsError> {
        let mut stats = self.stats;
        (_, stats.tar_bytes) = self.out.finish().map_err(RootfsError::Write)?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::super::testutil::{E, Layer, MTIME, is_root, tree};
    use super::super::{UnpackOptions, unpack_layer};
    use super::*;

    /// `"<path> <type> <mode> <uid>:<gid> <mtime> <size> [-> <link>] [xattrs]"` per entry.
    fn entries(tar_bytes: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut s = format!(
                "{} {} {:04o} {}:{} {} {}",
                String::from_utf8_lossy(&e.path_bytes()),
                h.entry_type().as_byte() as char,
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                h.size().unwrap(),
            );
            if let Some(l) = e.link_name_bytes() {
                s.push_str(&format!(" -> {}", String::from_utf8_lossy(&l)));
            }
            assert!(h.username_bytes().unwrap_or_default().is_empty());
            if let Some(p) = e.pax_extensions().unwrap() {
                for x in p {
                    let x = x.unwrap();
                    s.push_str(&format!(" {}", x.key().unwrap()));
                }
            }
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            assert_eq!(data.len() as u64, h.size().unwrap());
            out.push(s);
        }
        out
    }

    fn sample(root: &Path) {
        let mut l = Layer::new();
        l.dir("etc", 0o755)
            .file("etc/hosts", 0o644, b"127.0.0.1 localhost\n")
            .hardlink("etc/hosts.link", "etc/hosts")
            .hardlink("a-first-link", "etc/hosts")
            .symlink("etc/mtab", "/proc/mounts")
            .symlink("out", "../../outside")
            .file("bin/su", 0o4755, b"su")
            .dir("tmp", 0o1777)
            .add(E::new("run/fifo", tar::EntryType::Fifo, 0o600));
        let mut sub = E::new("subsecond", tar::EntryType::Regular, 0o600);
        sub.pax = vec![("mtime".into(), b"1600000000.75".to_vec())];
        l.add(sub);
        let long = format!("{}/{}", "x".repeat(110), "y".repeat(110));
        l.file(&long, 0o644, b"long");
        unpack_layer(root, l.bytes().as_slice(), &UnpackOptions::default()).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(root.join("run/sock")).unwrap();
        // Binding the socket changed its directory's mtime; put the implied one back.
        File::open(root.join("run"))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH)
            .unwrap();
    }

    #[test]
    fn exact_listing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        sample(&root);
        let mut out = Vec::new();
        let stats = pack_dir(&root, &mut out, &PackOptions::default()).unwrap();
        let (u, g) = if is_root() {
            (0, 0)
        } else {
            eprintln!("note: not root; owners are the current user's");
            (
                rustix::process::getuid().as_raw(),
                rustix::process::getgid().as_raw(),
            )
        };
        let long_dir = "x".repeat(110);
        let long = format!("{long_dir}/{}", "y".repeat(110));
        let want = [
            format!("a-first-link 0 0644 {u}:{g} {MTIME} 20"),
            format!("bin/ 5 0755 {u}:{g} 0 0"),
            format!("bin/su 0 4755 {u}:{g} {MTIME} 2"),
            format!("etc/ 5 0755 {u}:{g} {MTIME} 0"),
            format!("etc/hosts 1 0644 {u}:{g} {MTIME} 0 -> a-first-link"),
            format!("etc/hosts.link 1 0644 {u}:{g} {MTIME} 0 -> a-first-link"),
            format!("etc/mtab 2 0777 {u}:{g} {MTIME} 0 -> /proc/mounts"),
            format!("out 2 0777 {u}:{g} {MTIME} 0 -> ../../outside"),
            format!("run/ 5 0755 {u}:{g} 0 0"),
            format!("run/fifo 6 0600 {u}:{g} {MTIME} 0"),
            format!("subsecond 0 0600 {u}:{g} {MTIME} 0"),
            format!("tmp/ 5 1777 {u}:{g} {MTIME} 0"),
            format!("{long_dir}/ 5 0755 {u}:{g} 0 0 path"),
            format!("{long} 0 0644 {u}:{g} {MTIME} 4 path"),
        ];
        assert_eq!(entries(&out), want);
        assert_eq!(stats.entries, 14);
        assert_eq!(stats.skipped_sockets, 1);
        assert_eq!(stats.content_bytes, 20 + 2 + 4);
        assert_eq!(stats.tar_bytes, out.len() as u64);
        assert!(out.ends_with(&[0; 1024]));
        assert_eq!(out.len() % 512, 0);

        // The same tree always gives the same bytes.
        let mut again = Vec::new();
        pack_dir(&root, &mut again, &PackOptions::default()).unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn exclusions_and_xattrs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        sample(&root);
        let f = root.join("bin/su");
        let fd = rustix::fs::open(&f, OFlags::RDONLY, Mode::empty()).unwrap();
        let cap3 = [
            0u8, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0,
        ];
        let mut names = vec!["SCHILY.xattr.user.note"];
        rustix::fs::fsetxattr(&fd, "user.note", b"n", rustix::fs::XattrFlags::empty()).unwrap();
        if is_root() {
            rustix::fs::fsetxattr(
                &fd,
                "security.capability",
                &cap3,
                rustix::fs::XattrFlags::empty(),
            )
            .unwrap();
            names.insert(0, "SCHILY.xattr.security.capability");
        }
        let exclude = |p: &Path| p == Path::new("etc") || p.starts_with("run");
        let opts = PackOptions {
            exclude: Some(&exclude),
            all_xattrs: true,
        };
        let mut out = Vec::new();
        pack_dir(&root, &mut out, &opts).unwrap();
        let got = entries(&out);
        let paths: Vec<&str> = got.iter().map(|s| s.split(' ').next().unwrap()).collect();
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with("etc") || p.starts_with("run")),
            "{paths:?}"
        );
        let su = got.iter().find(|s| s.starts_with("bin/su ")).unwrap();
        assert!(su.ends_with(&names.join(" ")), "{su}");

        // By default only security.capability, rewritten to revision 2 (20 bytes).
        let mut out = Vec::new();
        pack_dir(&root, &mut out, &PackOptions::default()).unwrap();
        let mut a = tar::Archive::new(out.as_slice());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if &*e.path_bytes() != b"bin/su" {
                continue;
            }
            let x: Vec<(String, Vec<u8>)> = e
                .pax_extensions()
                .unwrap()
                .map(|p| {
                    p.map(|x| {
                        let x = x.unwrap();
                        (x.key().unwrap().to_owned(), x.value_bytes().to_vec())
                    })
                    .collect()
                })
                .unwrap_or_default();
            if is_root() {
                let mut want = cap3[..20].to_vec();
                want[3] = 2;
                assert_eq!(x, [("SCHILY.xattr.security.capability".to_owned(), want)]);
            } else {
                assert!(x.is_empty());
            }
        }
    }

    #[test]
    fn round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        sample(&root);
        std::fs::remove_file(root.join("run/sock")).unwrap();
        // Sub-second mtimes are truncated by pack: compare with that in mind.
        let mut out = Vec::new();
        pack_dir(&root, &mut out, &PackOptions::default()).unwrap();
        let copy = tmp.path().join("copy");
        unpack_layer(&copy, out.as_slice(), &UnpackOptions::default()).unwrap();
        let mut want = tree(&root);
        want.get_mut("subsecond").unwrap().mtime = MTIME as i64;
        assert_eq!(tree(&copy), want);
    }

    #[test]
    fn symlinked_root_children_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        let mut out = Vec::new();
        pack_dir(&root, &mut out, &PackOptions::default()).unwrap();
        let got = entries(&out);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("evil 2 "), "{got:?}");
    }
}
