//! Compact storage of the merged tree, sized for images of millions of entries: names, link
//! targets, owner names and xattrs are interned once; a node is 32 bytes (parent, name,
//! sibling links, payload); children are found through one hash table keyed by (parent, name)
//! that stores only node ids; attributes shared by many files (mode, owner, xattrs) are
//! interned; an inode is 40 bytes. No path is stored: paths are rebuilt from parent links when
//! they are needed.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use super::{Metadata, Mtime};

/// "No node" in links.
pub(super) const NONE: u32 = u32::MAX;
/// `Node::layer` of a path no entry wrote (implied directory, root).
pub(super) const NO_LAYER: u16 = u16::MAX;
/// Most nodes, directories or inodes: ids keep two bits for the payload's tag.
pub(super) const MAX_ITEMS: usize = 1 << 30;
/// The root node.
pub(super) const ROOT: u32 = 0;

/// The payload tag: bits 30 and 31 of [`Node::payload`].
const TAG_SHIFT: u32 = 30;
const TAG_DIR: u32 = 1;
const TAG_OTHER: u32 = 2;
const ID_MASK: u32 = (1 << TAG_SHIFT) - 1;

/// The hasher of every table: hashbrown's default (foldhash, seeded at random per process, so
/// hostile names cannot aim at a bucket; several times faster than SipHash on short names).
type State = hashbrown::DefaultHashBuilder;

/// Byte strings stored once: names, link targets, owner names, xattr names and values.
#[derive(Debug, Default)]
pub(super) struct Interner {
    bytes: Vec<u8>,
    /// End offset of each string in `bytes`.
    ends: Vec<u64>,
    table: HashTable<u32>,
    state: State,
}

/// String `id` of an interner's storage.
fn span<'a>(bytes: &'a [u8], ends: &[u64], id: u32) -> &'a [u8] {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] } as usize;
    &bytes[start..ends[i] as usize]
}

impl Interner {
    pub(super) fn get(&self, id: u32) -> &[u8] {
        span(&self.bytes, &self.ends, id)
    }

    /// The id of `s` if it was interned.
    pub(super) fn find(&self, s: &[u8]) -> Option<u32> {
        let h = self.state.hash_one(s);
        self.table.find(h, |&id| self.get(id) == s).copied()
    }

    pub(super) fn intern(&mut self, s: &[u8]) -> u32 {
        let h = self.state.hash_one(s);
        if let Some(&id) = self
            .table
            .find(h, |&id| span(&self.bytes, &self.ends, id) == s)
        {
            return id;
        }
        let id = self.ends.len() as u32;
        self.bytes.extend_from_slice(s);
        self.ends.push(self.bytes.len() as u64);
        let Interner {
            bytes,
            ends,
            table,
            state,
        } = self;
        table.insert_unique(h, id, |&id| state.hash_one(span(bytes, ends, id)));
        id
    }
}

/// One path of the tree.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    pub(super) parent: u32,
    pub(super) name: u32,
    pub(super) first_child: u32,
    pub(super) next: u32,
    pub(super) prev: u32,
    /// Tag (dir, other, dead) and the index into `dirs` or `inodes`.
    payload: u32,
    /// Lower-layer paths the entry of `layer` displaced (replaced, or merged into for a
    /// directory): a whiteout later in the same layer recounts them as removed.
    pub(super) replaced: u32,
    /// Layer of the last entry that wrote this path, [`NO_LAYER`] if none.
    pub(super) layer: u16,
    /// Components from the root.
    pub(super) depth: u16,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payload {
    /// Unlinked.
    Dead,
    /// A directory: index into `dirs`.
    Dir(u32),
    /// Anything else: index into `inodes`.
    Other(u32),
}

impl Node {
    pub(super) fn payload(&self) -> Payload {
        match self.payload >> TAG_SHIFT {
            TAG_DIR => Payload::Dir(self.payload & ID_MASK),
            TAG_OTHER => Payload::Other(self.payload & ID_MASK),
            _ => Payload::Dead,
        }
    }

    pub(super) fn set_payload(&mut self, p: Payload) {
        self.payload = match p {
            Payload::Dead => 0,
            Payload::Dir(i) => TAG_DIR << TAG_SHIFT | i,
            Payload::Other(i) => TAG_OTHER << TAG_SHIFT | i,
        };
    }

    pub(super) fn is_dir(&self) -> bool {
        matches!(self.payload(), Payload::Dir(_))
    }
}

/// Which entry of which layer: (layer, index); `layer == NO_LAYER` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Origin {
    pub(super) layer: u16,
    pub(super) index: u32,
}

impl Origin {
    pub(super) const NONE: Origin = Origin {
        layer: NO_LAYER,
        index: 0,
    };
}

/// Attributes of a directory (24 bytes).
#[derive(Debug, Clone, Copy)]
pub(super) struct DirMeta {
    pub(super) mtime_secs: i64,
    pub(super) mtime_nanos: u32,
    pub(super) attrs: u32,
    /// The last entry that wrote the directory's attributes: index and layer.
    origin_index: u32,
    origin_layer: u16,
}

impl DirMeta {
    pub(super) fn origin(&self) -> Origin {
        Origin {
            layer: self.origin_layer,
            index: self.origin_index,
        }
    }
}

/// What an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InodeKind {
    /// `data` is the size.
    Regular,
    /// `data` is the interned target.
    Symlink,
    /// `data` is major << 32 | minor.
    Char,
    /// `data` is major << 32 | minor.
    Block,
    Fifo,
}

/// A file, symlink, device or fifo, shared by its hard links (40 bytes).
#[derive(Debug, Clone, Copy)]
pub(super) struct Inode {
    pub(super) data: u64,
    pub(super) mtime_secs: i64,
    pub(super) mtime_nanos: u32,
    pub(super) attrs: u32,
    /// The entry that created the inode (and holds a regular file's content): index, layer.
    pub(super) origin_index: u32,
    pub(super) links: u32,
    /// The node the creating entry named ([`NONE`] for an AUFS link source).
    pub(super) origin_node: u32,
    pub(super) origin_layer: u16,
    pub(super) kind: InodeKind,
    /// Whether the creating entry still counts as live at `origin_node`'s path (for waste).
    pub(super) live: bool,
}

impl Inode {
    pub(super) fn origin(&self) -> Origin {
        Origin {
            layer: self.origin_layer,
            index: self.origin_index,
        }
    }
}

/// Attributes many entries share, interned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Attrs {
    pub(super) mode: u32,
    pub(super) uid: u64,
    pub(super) gid: u64,
    pub(super) uname: u32,
    pub(super) gname: u32,
    /// Interned (name, value) pairs, sorted by name bytes.
    pub(super) xattrs: Box<[(u32, u32)]>,
}

/// The merged tree's storage.
#[derive(Debug)]
pub(super) struct Tree {
    pub(super) strings: Interner,
    pub(super) nodes: Vec<Node>,
    /// Live non-root nodes, keyed by (parent, name).
    children: HashTable<u32>,
    pub(super) dirs: Vec<DirMeta>,
    pub(super) inodes: Vec<Inode>,
    attrs: Vec<Attrs>,
    attr_table: HashTable<u32>,
    state: State,
}

fn key_hash(state: &State, parent: u32, name: u32) -> u64 {
    state.hash_one((parent, name))
}

impl Tree {
    /// A tree holding the root directory (`root_meta`).
    pub(super) fn new(root_meta: &Metadata) -> Tree {
        let mut t = Tree {
            strings: Interner::default(),
            nodes: Vec::new(),
            children: HashTable::new(),
            dirs: Vec::new(),
            inodes: Vec::new(),
            attrs: Vec::new(),
            attr_table: HashTable::new(),
            state: State::default(),
        };
        let name = t.strings.intern(b"");
        let dir = t.new_dir(root_meta, Origin::NONE);
        t.nodes.push(Node {
            parent: ROOT,
            name,
            first_child: NONE,
            next: NONE,
            prev: NONE,
            payload: 0,
            replaced: 0,
            layer: NO_LAYER,
            depth: 0,
        });
        t.nodes[0].set_payload(Payload::Dir(dir));
        t
    }

    /// Whether another node, directory or inode fits.
    pub(super) fn has_room(&self) -> bool {
        self.nodes.len() < MAX_ITEMS && self.dirs.len() < MAX_ITEMS && self.inodes.len() < MAX_ITEMS
    }

    /// The live child `name` of `dir`.
    pub(super) fn child(&self, dir: u32, name: &[u8]) -> Option<u32> {
        let name = self.strings.find(name)?;
        self.child_id(dir, name)
    }

    pub(super) fn child_id(&self, dir: u32, name: u32) -> Option<u32> {
        let h = key_hash(&self.state, dir, name);
        self.children
            .find(h, |&n| {
                let n = &self.nodes[n as usize];
                n.parent == dir && n.name == name
            })
            .copied()
    }

    /// Adds a live child `name` to `parent` (which has none of that name).
    pub(super) fn add(&mut self, parent: u32, name: &[u8], layer: u16, payload: Payload) -> u32 {
        let name = self.strings.intern(name);
        let id = self.nodes.len() as u32;
        let p = &self.nodes[parent as usize];
        let (first, depth) = (p.first_child, p.depth.saturating_add(1));
        let mut node = Node {
            parent,
            name,
            first_child: NONE,
            next: first,
            prev: NONE,
            payload: 0,
            replaced: 0,
            layer,
            depth,
        };
        node.set_payload(payload);
        self.nodes.push(node);
        if first != NONE {
            self.nodes[first as usize].prev = id;
        }
        self.nodes[parent as usize].first_child = id;
        let h = key_hash(&self.state, parent, name);
        let (nodes, state) = (&self.nodes, &self.state);
        self.children.insert_unique(h, id, |&n| {
            let n = &nodes[n as usize];
            key_hash(state, n.parent, n.name)
        });
        id
    }

    /// Takes `node` out of its parent (its own children stay linked to it). Its parent and
    /// name are kept, so its path can still be rebuilt.
    pub(super) fn unlink(&mut self, node: u32) {
        let n = self.nodes[node as usize];
        let h = key_hash(&self.state, n.parent, n.name);
        if let Ok(e) = self.children.find_entry(h, |&x| x == node) {
            e.remove();
        }
        if n.prev != NONE {
            self.nodes[n.prev as usize].next = n.next;
        } else {
            self.nodes[n.parent as usize].first_child = n.next;
        }
        if n.next != NONE {
            self.nodes[n.next as usize].prev = n.prev;
        }
        let m = &mut self.nodes[node as usize];
        m.next = NONE;
        m.prev = NONE;
    }

    /// The children of `dir`, unordered.
    pub(super) fn children_of(&self, dir: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut c = self.nodes[dir as usize].first_child;
        while c != NONE {
            out.push(c);
            c = self.nodes[c as usize].next;
        }
        out
    }

    pub(super) fn name(&self, node: u32) -> &[u8] {
        self.strings.get(self.nodes[node as usize].name)
    }

    /// The path of `node` (no leading `/`), into `out`.
    pub(super) fn path_into(&self, node: u32, out: &mut Vec<u8>) {
        out.clear();
        let mut chain = Vec::with_capacity(usize::from(self.nodes[node as usize].depth));
        let mut n = node;
        while n != ROOT {
            chain.push(n);
            n = self.nodes[n as usize].parent;
        }
        for (i, &c) in chain.iter().rev().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            out.extend_from_slice(self.name(c));
        }
    }

    pub(super) fn path(&self, node: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.path_into(node, &mut out);
        out
    }

    pub(super) fn intern_attrs(&mut self, m: &Metadata) -> u32 {
        let a = Attrs {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            uname: self.strings.intern(&m.uname),
            gname: self.strings.intern(&m.gname),
            xattrs: m
                .xattrs
                .iter()
                .map(|(n, v)| (self.strings.intern(n), self.strings.intern(v)))
                .collect(),
        };
        let h = self.state.hash_one(&a);
        if let Some(&id) = self.attr_table.find(h, |&id| self.attrs[id as usize] == a) {
            return id;
        }
        let id = self.attrs.len() as u32;
        self.attrs.push(a);
        let (attrs, state) = (&self.attrs, &self.state);
        self.attr_table
            .insert_unique(h, id, |&id| state.hash_one(&attrs[id as usize]));
        id
    }

    /// The metadata of attributes `attrs` and `mtime`.
    pub(super) fn metadata(&self, attrs: u32, secs: i64, nanos: u32) -> Metadata {
        let a = &self.attrs[attrs as usize];
        Metadata {
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
            uname: self.strings.get(a.uname).to_vec(),
            gname: self.strings.get(a.gname).to_vec(),
            mtime: Mtime {
                seconds: secs,
                nanos,
            },
            xattrs: a
                .xattrs
                .iter()
                .map(|&(n, v)| (self.strings.get(n).to_vec(), self.strings.get(v).to_vec()))
                .collect(),
        }
    }

    pub(super) fn new_dir(&mut self, m: &Metadata, origin: Origin) -> u32 {
        let attrs = self.intern_attrs(m);
        self.dirs.push(DirMeta {
            mtime_secs: m.mtime.seconds,
            mtime_nanos: m.mtime.nanos,
            attrs,
            origin_index: origin.index,
            origin_layer: origin.layer,
        });
        (self.dirs.len() - 1) as u32
    }

    pub(super) fn set_dir_meta(&mut self, dir: u32, m: &Metadata, origin: Origin) {
        let attrs = self.intern_attrs(m);
        self.dirs[dir as usize] = DirMeta {
            mtime_secs: m.mtime.seconds,
            mtime_nanos: m.mtime.nanos,
            attrs,
            origin_index: origin.index,
            origin_layer: origin.layer,
        };
    }

    pub(super) fn dir_metadata(&self, dir: u32) -> Metadata {
        let d = &self.dirs[dir as usize];
        self.metadata(d.attrs, d.mtime_secs, d.mtime_nanos)
    }

    pub(super) fn inode_metadata(&self, inode: u32) -> Metadata {
        let i = &self.inodes[inode as usize];
        self.metadata(i.attrs, i.mtime_secs, i.mtime_nanos)
    }

    pub(super) fn set_inode_meta(&mut self, inode: u32, m: &Metadata) {
        let attrs = self.intern_attrs(m);
        let i = &mut self.inodes[inode as usize];
        i.attrs = attrs;
        i.mtime_secs = m.mtime.seconds;
        i.mtime_nanos = m.mtime.nanos;
    }
}

/// Sorts node ids by their names' bytes.
pub(super) fn sort_by_name(tree: &Tree, ids: &mut [u32]) {
    ids.sort_by(|&a, &b| tree.name(a).cmp(tree.name(b)));
}

/// Merges xattrs as `lsetxattr` over existing ones would: the new values win. Both lists are
/// sorted by name with names unique (the reader makes them so), and so is the result.
pub(super) fn merge_xattrs(into: &mut Vec<(Vec<u8>, Vec<u8>)>, new: &[(Vec<u8>, Vec<u8>)]) {
    let old = std::mem::take(into);
    let mut old = old.into_iter().peekable();
    for (n, v) in new {
        while let Some(o) = old.next_if(|(m, _)| m < n) {
            into.push(o);
        }
        old.next_if(|(m, _)| m == n);
        into.push((n.clone(), v.clone()));
    }
    into.extend(old);
}

/// Hash of anything with the tree's hasher (for the tests of the tables).
#[cfg(test)]
fn hash_of(state: &State, v: impl Hash) -> u64 {
    state.hash_one(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_dedupes_and_finds() {
        let mut i = Interner::default();
        let a = i.intern(b"usr");
        let b = i.intern(b"bin");
        assert_eq!(i.intern(b"usr"), a);
        assert_ne!(a, b);
        assert_eq!(i.get(b), b"bin");
        assert_eq!(i.find(b"bin"), Some(b));
        assert_eq!(i.find(b"lib"), None);
        let e = i.intern(b"");
        assert_eq!(i.get(e), b"");
        assert_eq!(hash_of(&i.state, 1), hash_of(&i.state, 1));
    }

    #[test]
    fn add_unlink_and_paths() {
        let mut t = Tree::new(&Metadata::default());
        let usr = t.add(ROOT, b"usr", 0, Payload::Dir(0));
        let bin = t.add(usr, b"bin", 0, Payload::Dir(0));
        let sh = t.add(bin, b"sh", 0, Payload::Other(0));
        assert_eq!(t.path(sh), b"usr/bin/sh");
        assert_eq!(t.child(usr, b"bin"), Some(bin));
        assert_eq!(t.nodes[sh as usize].depth, 3);
        let lib = t.add(usr, b"lib", 0, Payload::Dir(0));
        let mut kids = t.children_of(usr);
        sort_by_name(&t, &mut kids);
        assert_eq!(kids, vec![bin, lib]);
        t.unlink(bin);
        assert_eq!(t.child(usr, b"bin"), None);
        assert_eq!(t.children_of(usr), vec![lib]);
        // A dead node's path can still be rebuilt.
        assert_eq!(t.path(sh), b"usr/bin/sh");
        let again = t.add(usr, b"bin", 1, Payload::Other(1));
        assert_eq!(t.child(usr, b"bin"), Some(again));
    }

    #[test]
    fn xattrs_merge_sorted() {
        let x = |n: &str, v: &str| (n.as_bytes().to_vec(), v.as_bytes().to_vec());
        let mut into = vec![x("a", "1"), x("c", "1"), x("e", "1")];
        merge_xattrs(&mut into, &[x("b", "2"), x("c", "2"), x("f", "2")]);
        assert_eq!(
            into,
            [
                x("a", "1"),
                x("b", "2"),
                x("c", "2"),
                x("e", "1"),
                x("f", "2")
            ]
        );
    }

    #[test]
    fn records_stay_small() {
        // The per-entry budget (issue 9: at most 200 bytes an entry) rests on these.
        assert_eq!(std::mem::size_of::<Node>(), 32);
        assert_eq!(std::mem::size_of::<Inode>(), 40);
        assert_eq!(std::mem::size_of::<DirMeta>(), 24);
    }

    #[test]
    fn attrs_are_interned() {
        let mut t = Tree::new(&Metadata::default());
        let m = Metadata {
            mode: 0o644,
            uname: b"root".to_vec(),
            xattrs: vec![(b"user.a".to_vec(), b"1".to_vec())],
            ..Metadata::default()
        };
        let a = t.intern_attrs(&m);
        assert_eq!(t.intern_attrs(&m.clone()), a);
        let other = Metadata {
            mode: 0o755,
            ..m.clone()
        };
        assert_ne!(t.intern_attrs(&other), a);
        assert_eq!(t.metadata(a, 0, 0), m);
    }
}
