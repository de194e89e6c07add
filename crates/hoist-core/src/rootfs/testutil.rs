//! Test helpers: layer tars built in memory (with any names, hostile ones included) and a
//! description of a directory tree for exact assertions.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

/// The mtime of entries built by [`Layer`] unless told otherwise.
pub(crate) const MTIME: u64 = 1_600_000_000;

/// One entry to append.
#[derive(Debug, Clone)]
pub(crate) struct E {
    pub(crate) name: Vec<u8>,
    pub(crate) kind: EntryType,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: u64,
    pub(crate) link: Vec<u8>,
    pub(crate) data: Vec<u8>,
    pub(crate) dev: (u32, u32),
    pub(crate) pax: Vec<(String, Vec<u8>)>,
}

impl E {
    pub(crate) fn new(name: &str, kind: EntryType, mode: u32) -> Self {
        E {
            name: name.as_bytes().to_vec(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: MTIME,
            link: Vec::new(),
            data: Vec::new(),
            dev: (0, 0),
            pax: Vec::new(),
        }
    }
}

fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A layer tar under construction. Names and link names are written raw (no validation),
/// PAX records as a preceding `x` header.
#[derive(Debug, Default)]
pub(crate) struct Layer {
    out: Vec<u8>,
}

impl Layer {
    pub(crate) fn new() -> Self {
        Layer::default()
    }

    pub(crate) fn add(&mut self, e: E) -> &mut Self {
        let mut b = tar::Builder::new(Vec::new());
        let mut pax = e.pax.clone();
        if e.name.len() > 100 {
            pax.push(("path".into(), e.name.clone()));
        }
        if e.link.len() > 100 {
            pax.push(("linkpath".into(), e.link.clone()));
        }
        if !pax.is_empty() {
            let mut data = Vec::new();
            for (k, v) in &pax {
                pax_record(&mut data, k, v);
            }
            let mut h = Header::new_ustar();
            h.as_old_mut().name[..11].copy_from_slice(b"PaxHeaders/");
            h.set_entry_type(EntryType::XHeader);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, data.as_slice()).unwrap();
        }
        let mut h = Header::new_ustar();
        let n = e.name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&e.name[..n]);
        let n = e.link.len().min(100);
        h.as_old_mut().linkname[..n].copy_from_slice(&e.link[..n]);
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        h.set_device_major(e.dev.0).unwrap();
        h.set_device_minor(e.dev.1).unwrap();
        h.set_cksum();
        b.append(&h, e.data.as_slice()).unwrap();
        let bytes = b.into_inner().unwrap();
        // `into_inner` adds the two zero blocks; keep only the entries.
        self.out.extend_from_slice(&bytes[..bytes.len() - 1024]);
        self
    }

    pub(crate) fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.add(E::new(name, EntryType::Directory, mode))
    }

    pub(crate) fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        let mut e = E::new(name, EntryType::Regular, mode);
        e.data = data.to_vec();
        self.add(e)
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut e = E::new(name, EntryType::Symlink, 0o777);
        e.link = target.as_bytes().to_vec();
        self.add(e)
    }

    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut e = E::new(name, EntryType::Link, 0o644);
        e.link = target.as_bytes().to_vec();
        self.add(e)
    }

    pub(crate) fn whiteout(&mut self, name: &str) -> &mut Self {
        self.add(E::new(name, EntryType::Regular, 0o600))
    }

    /// The entries without the end-of-archive blocks (to concatenate layers).
    pub(crate) fn clone_entries(&self) -> Vec<u8> {
        self.out.clone()
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut v = self.out.clone();
        v.extend_from_slice(&[0; 1024]);
        v
    }
}

/// One path of a tree, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// `d`, `f`, `l`, `c`, `b`, `p`, `s`.
    pub(crate) kind: char,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: i64,
    /// File content or symlink target.
    pub(crate) data: Vec<u8>,
    pub(crate) rdev: u64,
    /// Index of the inode among the tree's multiply-linked inodes (in path order), else 0.
    pub(crate) link_group: usize,
}

/// Every path below `root` (not followed through symlinks), with its attributes.
pub(crate) fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut groups: HashMap<(u64, u64), usize> = HashMap::new();
    walk(root, "", &mut out, &mut groups);
    out
}

fn walk(
    dir: &Path,
    rel: &str,
    out: &mut BTreeMap<String, Node>,
    groups: &mut HashMap<(u64, u64), usize>,
) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let path = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        let m = std::fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let (kind, data) = if ft.is_dir() {
            ('d', Vec::new())
        } else if ft.is_file() {
            ('f', std::fs::read(&p).unwrap())
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&p).unwrap();
            ('l', t.into_os_string().into_encoded_bytes())
        } else if ft.is_char_device() {
            ('c', Vec::new())
        } else if ft.is_block_device() {
            ('b', Vec::new())
        } else if ft.is_fifo() {
            ('p', Vec::new())
        } else {
            ('s', Vec::new())
        };
        let link_group = if !ft.is_dir() && m.nlink() > 1 {
            let next = groups.len() + 1;
            *groups.entry((m.dev(), m.ino())).or_insert(next)
        } else {
            0
        };
        out.insert(
            path.clone(),
            Node {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: m.mtime(),
                data,
                rdev: m.rdev(),
                link_group,
            },
        );
        if ft.is_dir() {
            walk(&p, &path, out, groups);
        }
    }
}

/// A compact listing: `"<path> <kind> <mode> <uid>:<gid> [<data>]"` per path.
pub(crate) fn listing(root: &Path) -> Vec<String> {
    tree(root)
        .into_iter()
        .map(|(p, n)| {
            let mut s = format!("{p} {} {:04o} {}:{}", n.kind, n.mode, n.uid, n.gid);
            if !n.data.is_empty() {
                s.push(' ');
                s.push_str(&String::from_utf8_lossy(&n.data));
            }
            if n.link_group != 0 {
                s.push_str(&format!(" #{}", n.link_group));
            }
            s
        })
        .collect()
}

/// Whether tests run as root (owners, devices, `trusted.*` xattrs need it).
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
