//! The merged tree seen as a file system sees it (for `mount`): inode numbers, children by
//! name, attributes by inode.
//!
//! Numbers are derived from the compact tree, nothing is stored for them: the root is
//! [`ROOT_INO`]; a directory's number is its node's id + 1 (a directory has exactly one path);
//! any other inode (file, symlink, device, fifo) is numbered after every node, by its inode id,
//! so all the hard links of an inode share one number and its link count is the number of its
//! paths in the tree.

use super::tree::{InodeKind, Payload, ROOT, Tree};
use super::{EntryId, FinalKind, FinalTree, Metadata, tree};
use crate::tar::EntryKind;

/// The root directory's inode number (FUSE's `FUSE_ROOT_ID`).
pub const ROOT_INO: u64 = 1;

/// What an inode is and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InodeAttr {
    /// The kind; never [`FinalKind::HardLink`] (hard links are one inode).
    pub kind: FinalKind,
    /// Owner, mode, mtime, xattrs.
    pub meta: Metadata,
    /// Number of links: the paths of a file; for a directory 2 plus its subdirectories.
    pub nlink: u32,
    /// The layer entry that holds a regular file's content (see [`super::FinalEntry::source`]).
    pub source: Option<EntryId>,
}

/// One name of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirChild {
    /// The name (one component).
    pub name: Vec<u8>,
    /// Its inode number.
    pub ino: u64,
    /// Its type (never [`EntryKind::HardLink`]).
    pub kind: EntryKind,
}

/// Which item of the tree an inode number names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// A directory node.
    Dir(u32),
    /// A non-directory inode.
    Inode(u32),
}

impl FinalTree {
    /// The item behind `ino`, if it is live.
    fn item(&self, tree: &Tree, ino: u64) -> Option<Item> {
        let n = ino.checked_sub(ROOT_INO)?;
        let nodes = tree.nodes.len() as u64;
        if n < nodes {
            let node = u32::try_from(n).ok()?;
            return matches!(tree.nodes[node as usize].payload(), Payload::Dir(_))
                .then_some(Item::Dir(node));
        }
        let inode = u32::try_from(n - nodes).ok()?;
        let i = tree.inodes.get(inode as usize)?;
        (i.links > 0).then_some(Item::Inode(inode))
    }

    /// The inode number of node `n` (a live node).
    fn ino_of(tree: &Tree, n: u32) -> u64 {
        match tree.nodes[n as usize].payload() {
            Payload::Other(i) => ROOT_INO + tree.nodes.len() as u64 + u64::from(i),
            _ => ROOT_INO + u64::from(n),
        }
    }

    /// The inode number of `name` in the directory `dir`.
    pub fn ino_lookup(&self, dir: u64, name: &[u8]) -> Option<u64> {
        let tree = self.tree.as_ref()?;
        let Item::Dir(d) = self.item(tree, dir)? else {
            return None;
        };
        tree.child(d, name).map(|c| Self::ino_of(tree, c))
    }

    /// The parent directory of the directory `dir` (the root's is itself).
    pub fn ino_parent(&self, dir: u64) -> Option<u64> {
        let Some(tree) = self.tree.as_ref() else {
            return (dir == ROOT_INO).then_some(ROOT_INO);
        };
        let Item::Dir(d) = self.item(tree, dir)? else {
            return None;
        };
        Some(ROOT_INO + u64::from(tree.nodes[d as usize].parent))
    }

    /// The names in the directory `dir`, sorted by bytes (`None` when `dir` is no directory).
    pub fn ino_children(&self, dir: u64) -> Option<Vec<DirChild>> {
        let Some(tree) = self.tree.as_ref() else {
            return (dir == ROOT_INO).then(Vec::new);
        };
        let Item::Dir(d) = self.item(tree, dir)? else {
            return None;
        };
        let mut kids = tree.children_of(d);
        tree::sort_by_name(tree, &mut kids);
        Some(
            kids.into_iter()
                .map(|c| DirChild {
                    name: tree.name(c).to_vec(),
                    ino: Self::ino_of(tree, c),
                    kind: match tree.nodes[c as usize].payload() {
                        Payload::Other(i) => entry_kind(tree.inodes[i as usize].kind),
                        _ => EntryKind::Directory,
                    },
                })
                .collect(),
        )
    }

    /// The attributes of inode `ino` (`None` when no live inode has that number).
    pub fn ino_attr(&self, ino: u64) -> Option<InodeAttr> {
        let Some(tree) = self.tree.as_ref() else {
            return (ino == ROOT_INO).then(|| InodeAttr {
                kind: FinalKind::Directory,
                meta: super::merge::implied_meta(),
                nlink: 2,
                source: None,
            });
        };
        let source = |o: tree::Origin| {
            (o.layer != tree::NO_LAYER).then_some(EntryId {
                layer: usize::from(o.layer),
                index: u64::from(o.index),
            })
        };
        Some(match self.item(tree, ino)? {
            Item::Dir(n) => {
                let Payload::Dir(d) = tree.nodes[n as usize].payload() else {
                    unreachable!("item() checked it is a directory");
                };
                let subdirs = tree
                    .children_of(n)
                    .iter()
                    .filter(|&&c| tree.nodes[c as usize].is_dir())
                    .count();
                InodeAttr {
                    kind: FinalKind::Directory,
                    meta: tree.dir_metadata(d),
                    nlink: u32::try_from(subdirs).map_or(u32::MAX, |s| s.saturating_add(2)),
                    source: source(tree.dirs[d as usize].origin()),
                }
            }
            Item::Inode(i) => {
                let ino = &tree.inodes[i as usize];
                let (major, minor) = ((ino.data >> 32) as u32, ino.data as u32);
                InodeAttr {
                    kind: match ino.kind {
                        InodeKind::Regular => FinalKind::Regular { size: ino.data },
                        InodeKind::Symlink => FinalKind::Symlink {
                            target: tree.strings.get(ino.data as u32).to_vec(),
                        },
                        InodeKind::Char => FinalKind::CharDevice { major, minor },
                        InodeKind::Block => FinalKind::BlockDevice { major, minor },
                        InodeKind::Fifo => FinalKind::Fifo,
                    },
                    meta: tree.inode_metadata(i),
                    nlink: ino.links,
                    source: source(ino.origin()),
                }
            }
        })
    }

    /// The inode number of `path` (normalized, no leading `/`; empty for the root).
    pub fn ino_of_path(&self, path: &[u8]) -> Option<u64> {
        let Some(tree) = self.tree.as_ref() else {
            return path.is_empty().then_some(ROOT_INO);
        };
        let n = self.lookup(tree, path)?;
        Some(if n == ROOT {
            ROOT_INO
        } else {
            Self::ino_of(tree, n)
        })
    }

    /// Number of live inodes (directories, and files counted once however many links they
    /// have), the root included.
    pub fn ino_count(&self) -> u64 {
        let Some(tree) = self.tree.as_ref() else {
            return 1;
        };
        let dirs = tree.nodes.iter().filter(|n| n.is_dir()).count();
        let others = tree.inodes.iter().filter(|i| i.links > 0).count();
        (dirs + others) as u64
    }

    /// Bytes of regular files, each inode once however many links it has.
    pub fn file_bytes(&self) -> u64 {
        let Some(tree) = self.tree.as_ref() else {
            return 0;
        };
        tree.inodes
            .iter()
            .filter(|i| i.links > 0 && i.kind == InodeKind::Regular)
            .map(|i| i.data)
            .sum()
    }
}

/// The tar type of an inode kind.
fn entry_kind(k: InodeKind) -> EntryKind {
    match k {
        InodeKind::Regular => EntryKind::Regular,
        InodeKind::Symlink => EntryKind::Symlink,
        InodeKind::Char => EntryKind::CharDevice,
        InodeKind::Block => EntryKind::BlockDevice,
        InodeKind::Fifo => EntryKind::Fifo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::{FlattenOptions, final_tree};
    use crate::tar::{Header, Writer};

    fn layer(entries: &[(&str, EntryKind, &str)]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        for (name, kind, link) in entries {
            let data: &[u8] = if *kind == EntryKind::Regular {
                name.as_bytes()
            } else {
                b""
            };
            let mut h = Header::new(name.as_bytes(), *kind);
            h.link = link.as_bytes();
            h.size = data.len() as u64;
            w.header(&h).unwrap();
            w.write_data(data).unwrap();
            w.pad(data.len() as u64).unwrap();
        }
        w.finish().unwrap().0
    }

    #[test]
    fn hard_links_share_a_number_and_count_their_paths() {
        use EntryKind::*;
        let base = layer(&[
            ("etc/", Directory, ""),
            ("etc/a", Regular, ""),
            ("etc/b", HardLink, "etc/a"),
            ("etc/c", HardLink, "etc/a"),
            ("bin/", Directory, ""),
            ("bin/sh", Symlink, "/bin/busybox"),
            ("etc/sub/", Directory, ""),
        ]);
        let top = layer(&[("etc/.wh.c", Regular, "")]);
        let t = final_tree(&[base, top][..], &FlattenOptions::default()).unwrap();
        let etc = t.ino_lookup(ROOT_INO, b"etc").unwrap();
        assert_eq!(t.ino_of_path(b"etc"), Some(etc));
        let a = t.ino_lookup(etc, b"a").unwrap();
        let b = t.ino_lookup(etc, b"b").unwrap();
        assert_eq!(a, b, "hard links are one inode");
        assert_eq!(t.ino_lookup(etc, b"c"), None, "whited out");
        let attr = t.ino_attr(a).unwrap();
        assert_eq!(attr.kind, FinalKind::Regular { size: 5 });
        assert_eq!(attr.nlink, 2, "etc/c was removed");
        assert_eq!(attr.source, Some(EntryId { layer: 0, index: 1 }));
        let dir = t.ino_attr(etc).unwrap();
        assert_eq!((dir.kind, dir.nlink), (FinalKind::Directory, 3));
        assert_eq!(t.ino_parent(etc), Some(ROOT_INO));
        assert_eq!(t.ino_parent(ROOT_INO), Some(ROOT_INO));
        assert_eq!(t.ino_parent(a), None, "a file is no directory");
        let names: Vec<(String, EntryKind)> = t
            .ino_children(etc)
            .unwrap()
            .into_iter()
            .map(|c| (String::from_utf8(c.name).unwrap(), c.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("a".to_string(), Regular),
                ("b".to_string(), Regular),
                ("sub".to_string(), Directory)
            ]
        );
        let bin = t.ino_lookup(ROOT_INO, b"bin").unwrap();
        let sh = t.ino_attr(t.ino_lookup(bin, b"sh").unwrap()).unwrap();
        assert_eq!(
            sh.kind,
            FinalKind::Symlink {
                target: b"/bin/busybox".to_vec()
            }
        );
        assert_eq!(t.ino_children(a), None);
        assert_eq!(t.ino_attr(0), None);
        assert_eq!(t.ino_attr(u64::MAX), None);
        // root, etc, etc/sub, bin; a (= b); sh.
        assert_eq!(t.ino_count(), 6);
        // The content of etc/a ("etc/a") once, not once per link.
        assert_eq!(t.file_bytes(), 5);
    }

    #[test]
    fn the_empty_tree_has_a_root() {
        let t = FinalTree::default();
        assert_eq!(t.ino_attr(ROOT_INO).unwrap().kind, FinalKind::Directory);
        assert_eq!(t.ino_children(ROOT_INO), Some(Vec::new()));
        assert_eq!(t.ino_lookup(ROOT_INO, b"x"), None);
        assert_eq!(t.ino_count(), 1);
    }
}
