//! The merge of layers: each entry applied to the [`Tree`] as moby's `UnpackLayer` applies it
//! to a directory (see the [module docs](super) for the rules), with the per-layer facts
//! (added, modified, removed, hidden and wasted files) counted on the way.
//!
//! Every step costs O(depth of the entry) plus what it removes; removals and whiteouts walk
//! subtrees with explicit stacks, so no input can exhaust the call stack.

use std::collections::HashMap;

use super::tree::{
    InodeKind, NO_LAYER, NONE, Origin, Payload, ROOT, Tree, merge_xattrs, sort_by_name,
};
use super::{FinalTree, FlattenError, HiddenFile, LayerFacts, Metadata};
use crate::layer::{self, Action, PLNK, RuleError};
use crate::tar::{Entry, EntryKind, show_name};

/// Symlinks followed while resolving one path, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINKS: u32 = 40;
/// Deepest node: a path of 4096 bytes has at most 2048 components; symlinks in parents can
/// lead deeper, up to this.
const MAX_DEPTH: u16 = 4096;

/// A regular-file entry still live at a path (for waste): layer, index, size.
type Live = (u16, u32, u64);

/// Where a hidden file's path comes from when its inode goes.
enum Via {
    /// The inode's creating node, else this node (the one being removed).
    Node(u32),
    /// This path (an AUFS link source, which no node names).
    Path(Vec<u8>),
}

/// The attributes of a directory no entry describes.
pub(super) fn implied_meta() -> Metadata {
    Metadata {
        mode: 0o755,
        ..Metadata::default()
    }
}

/// Where a walk ended.
enum Walk {
    Dir(u32),
    Missing,
    NotDir,
}

/// Why a walk failed.
enum WalkError {
    Loop,
    TooDeep,
}

pub(super) struct Merge {
    pub(super) tree: Tree,
    layer: u16,
    pub(super) facts: LayerFacts,
    /// `.wh..wh.plnk/<name>` hard-link sources of the current layer.
    plnk: HashMap<Vec<u8>, u32>,
    /// Regular files whose last link went away: (layer of the file, fact).
    hidden: Vec<(u16, HiddenFile)>,
    /// Regular-file entries wasted by a layer above them, by their layer.
    wasted: Vec<Vec<HiddenFile>>,
    /// Earlier entries of the same layer at a node's path that the node's entry replaced (rare:
    /// duplicate paths in one layer); wasted with it when a layer above replaces it.
    duplicates: HashMap<u32, Vec<Live>>,
}

impl Merge {
    pub(super) fn new(layers: usize) -> Merge {
        Merge {
            tree: Tree::new(&implied_meta()),
            layer: 0,
            facts: LayerFacts::default(),
            plnk: HashMap::new(),
            hidden: Vec::new(),
            wasted: vec![Vec::new(); layers],
            duplicates: HashMap::new(),
        }
    }

    pub(super) fn begin_layer(&mut self, layer: u16) {
        self.layer = layer;
        self.facts = LayerFacts::default();
        self.plnk.clear();
    }

    pub(super) fn end_layer(&mut self) {
        let plnk: Vec<(Vec<u8>, u32)> = self.plnk.drain().collect();
        for (name, inode) in plnk {
            // The plnk map held one reference.
            let path = [PLNK, b"/", &name].concat();
            self.unref_inode(inode, Via::Path(path));
        }
    }

    fn layer_usize(&self) -> usize {
        usize::from(self.layer)
    }

    fn too_big(&self, e: &Entry) -> FlattenError {
        FlattenError::TooBig {
            layer: self.layer_usize(),
            index: e.index,
        }
    }

    fn rule_err(&self, e: &Entry, what: &'static str, name: &[u8], err: RuleError) -> FlattenError {
        let (layer, index, path) = (self.layer_usize(), e.index, show_name(&e.path));
        match err {
            RuleError::Escape => FlattenError::Escape {
                layer,
                index,
                path,
                what,
                name: show_name(name),
            },
            RuleError::InvalidWhiteout => FlattenError::InvalidWhiteout { layer, index, path },
            RuleError::ComponentTooLong(len) => FlattenError::NameTooLong {
                layer,
                index,
                path,
                len,
            },
            RuleError::Unsupported(t) => FlattenError::Unsupported {
                layer,
                index,
                path,
                typeflag: (t as char).escape_default().to_string(),
            },
            source => FlattenError::Rule {
                layer,
                index,
                path,
                source,
            },
        }
    }

    fn walk_err(&self, e: &Entry, err: WalkError) -> FlattenError {
        let (layer, index, path) = (self.layer_usize(), e.index, show_name(&e.path));
        match err {
            WalkError::Loop => FlattenError::SymlinkLoop { layer, index, path },
            WalkError::TooDeep => FlattenError::TooDeep { layer, index, path },
        }
    }

    /// Walks `comps` from `start`, following symlinks inside the tree; creates missing
    /// directories as implied ones when `create`.
    fn walk(
        &mut self,
        start: u32,
        comps: &[&[u8]],
        create: bool,
        hops: &mut u32,
    ) -> Result<Walk, WalkError> {
        let mut cur = start;
        for &c in comps {
            match c {
                b"" | b"." => continue,
                b".." => {
                    cur = self.tree.nodes[cur as usize].parent;
                    continue;
                }
                _ => {}
            }
            let Some(child) = self.tree.child(cur, c) else {
                if !create {
                    return Ok(Walk::Missing);
                }
                if self.tree.nodes[cur as usize].depth >= MAX_DEPTH {
                    return Err(WalkError::TooDeep);
                }
                let dir = self.tree.new_dir(&implied_meta(), Origin::NONE);
                cur = self.tree.add(cur, c, NO_LAYER, Payload::Dir(dir));
                continue;
            };
            match self.tree.nodes[child as usize].payload() {
                Payload::Dir(_) => cur = child,
                Payload::Other(inode) => {
                    let ino = self.tree.inodes[inode as usize];
                    if ino.kind != InodeKind::Symlink {
                        return Ok(Walk::NotDir);
                    }
                    *hops += 1;
                    if *hops > MAX_SYMLINKS {
                        return Err(WalkError::Loop);
                    }
                    let target = self.tree.strings.get(ino.data as u32).to_vec();
                    let from = if target.starts_with(b"/") { ROOT } else { cur };
                    let tcomps: Vec<&[u8]> = target.split(|&b| b == b'/').collect();
                    match self.walk(from, &tcomps, create, hops)? {
                        Walk::Dir(d) => cur = d,
                        other => return Ok(other),
                    }
                }
                Payload::Dead => unreachable!("dead nodes are unlinked"),
            }
        }
        Ok(Walk::Dir(cur))
    }

    /// Drops one link of `inode`; when it was the last one of a regular file, its content is
    /// hidden, under the path of the entry that created it.
    fn unref_inode(&mut self, inode: u32, via: Via) {
        let by_layer = self.layer_usize();
        let ino = &mut self.tree.inodes[inode as usize];
        ino.links -= 1;
        if ino.links > 0 || ino.kind != InodeKind::Regular {
            return;
        }
        let ino = *ino;
        let path = match via {
            _ if ino.origin_node != NONE => self.tree.path(ino.origin_node),
            Via::Node(n) => self.tree.path(n),
            Via::Path(p) => p,
        };
        self.hidden.push((
            ino.origin_layer,
            HiddenFile {
                index: u64::from(ino.origin_index),
                path,
                size: ino.data,
                by_layer,
            },
        ));
    }

    /// Regular-file entries live at `node`'s path: its inode's creating entry when it named
    /// this node, and the same layer's earlier duplicates.
    fn live_at(&mut self, node: u32) -> Vec<Live> {
        let mut out = self.duplicates.remove(&node).unwrap_or_default();
        if let Payload::Other(i) = self.tree.nodes[node as usize].payload() {
            let ino = &mut self.tree.inodes[i as usize];
            if ino.kind == InodeKind::Regular && ino.origin_node == node && ino.live {
                out.push((ino.origin_layer, ino.origin_index, ino.data));
                // Counted once: the path no longer holds it.
                ino.live = false;
            }
        }
        out
    }

    /// Records the entries `live` at `node`'s path of layers below this one as wasted; returns
    /// those of this layer.
    fn waste(&mut self, node: u32, live: Vec<Live>) -> Vec<Live> {
        let mut own = Vec::new();
        for l in live {
            if l.0 < self.layer {
                let path = self.tree.path(node);
                let by_layer = self.layer_usize();
                self.wasted[usize::from(l.0)].push(HiddenFile {
                    index: u64::from(l.1),
                    path,
                    size: l.2,
                    by_layer,
                });
            } else {
                own.push(l);
            }
        }
        own
    }

    /// Unlinks `node` and everything below it; returns how many paths that removed. Entries
    /// of lower layers live there are wasted; the same layer's entries at `node` itself are
    /// returned (they stay live at the path, which is about to be written again).
    fn remove(&mut self, node: u32) -> (u64, Vec<Live>) {
        self.tree.unlink(node);
        let mut removed = 0;
        let mut own_at_node = Vec::new();
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            removed += 1;
            let live = self.live_at(n);
            let own = self.waste(n, live);
            if n == node {
                own_at_node = own;
            }
            match self.tree.nodes[n as usize].payload() {
                Payload::Dir(_) => stack.extend(self.tree.children_of(n)),
                Payload::Other(inode) => self.unref_inode(inode, Via::Node(n)),
                Payload::Dead => {}
            }
            self.tree.nodes[n as usize].set_payload(Payload::Dead);
        }
        (removed, own_at_node)
    }

    /// Hides lower-layer content at and below `node` for a whiteout of the current layer;
    /// returns whether `node` survives (it or a descendant was written by this layer).
    fn prune(&mut self, node: u32) -> bool {
        // Post-order without recursion: a node is settled after its children.
        let mut stack = vec![(node, false)];
        let mut kept_below: HashMap<u32, bool> = HashMap::new();
        while let Some((n, visited)) = stack.pop() {
            let own = self.tree.nodes[n as usize].layer == self.layer;
            if !visited {
                if own {
                    // The entry displaced lower paths before this whiteout hid them: counted as
                    // if the whiteout came first (lower paths removed, the entry added), so the
                    // counts do not depend on where a whiteout sits in its layer.
                    let replaced = std::mem::take(&mut self.tree.nodes[n as usize].replaced);
                    if replaced > 0 {
                        self.facts.modified -= 1;
                        self.facts.added += 1;
                        self.facts.removed += u64::from(replaced);
                    }
                }
                if self.tree.nodes[n as usize].is_dir() {
                    stack.push((n, true));
                    for c in self.tree.children_of(n) {
                        stack.push((c, false));
                    }
                    continue;
                }
            }
            let mut kept = own;
            if visited {
                let mut any = false;
                for c in self.tree.children_of(n) {
                    if kept_below.remove(&c).unwrap_or(false) {
                        any = true;
                    } else {
                        self.facts.removed += self.remove(c).0;
                    }
                }
                if !own && any {
                    // The lower directory is hidden; what remains is implied by this layer's
                    // entries.
                    if self.tree.nodes[n as usize].layer != NO_LAYER {
                        self.facts.removed += 1;
                    }
                    if let Payload::Dir(d) = self.tree.nodes[n as usize].payload() {
                        self.tree.set_dir_meta(d, &implied_meta(), Origin::NONE);
                    }
                    self.tree.nodes[n as usize].layer = NO_LAYER;
                    self.tree.nodes[n as usize].replaced = 0;
                }
                kept = own || any;
            }
            kept_below.insert(n, kept);
        }
        kept_below.remove(&node).unwrap_or(false)
    }

    pub(super) fn apply(&mut self, e: &Entry) -> Result<(), FlattenError> {
        if !self.tree.has_room() {
            return Err(self.too_big(e));
        }
        let index = u32::try_from(e.index).map_err(|_| self.too_big(e))?;
        self.facts.entries += 1;
        if e.is_regular() {
            self.facts.file_bytes = self.facts.file_bytes.saturating_add(e.size);
        }
        let action =
            layer::action(&e.path, e.kind).map_err(|err| self.rule_err(e, "name", &e.path, err))?;
        layer::check_meta(&e.meta).map_err(|err| self.rule_err(e, "attributes", &e.path, err))?;
        let mut hops = 0;
        let (parents, base) = match action {
            Action::Skip => {
                self.facts.skipped += 1; // the root itself, AUFS metadata
                return Ok(());
            }
            Action::PlnkSource { name } => {
                let id = self.new_inode(e, index, NONE);
                if let Some(old) = self.plnk.insert(name.to_vec(), id) {
                    let path = [PLNK, b"/", name].concat();
                    self.unref_inode(old, Via::Path(path));
                }
                self.facts.skipped += 1;
                return Ok(());
            }
            Action::Opaque { dir } => {
                self.facts.whiteouts += 1;
                let found = self
                    .walk(ROOT, &dir, false, &mut hops)
                    .map_err(|w| self.walk_err(e, w))?;
                if let Walk::Dir(dir) = found {
                    for c in self.tree.children_of(dir) {
                        if !self.prune(c) {
                            self.facts.removed += self.remove(c).0;
                        }
                    }
                }
                return Ok(());
            }
            Action::Whiteout { dir, name } => {
                self.facts.whiteouts += 1;
                let found = self
                    .walk(ROOT, &dir, false, &mut hops)
                    .map_err(|w| self.walk_err(e, w))?;
                if let Walk::Dir(dir) = found
                    && let Some(c) = self.tree.child(dir, name)
                    && !self.prune(c)
                {
                    self.facts.removed += self.remove(c).0;
                }
                return Ok(());
            }
            Action::Put { parents, base } => (parents, base),
        };
        let dir = match self
            .walk(ROOT, &parents, true, &mut hops)
            .map_err(|w| self.walk_err(e, w))?
        {
            Walk::Dir(d) => d,
            Walk::Missing | Walk::NotDir => {
                return Err(FlattenError::NotADirectory {
                    layer: self.layer_usize(),
                    index: e.index,
                    path: show_name(&e.path),
                });
            }
        };
        if self.tree.nodes[dir as usize].depth >= MAX_DEPTH {
            return Err(self.walk_err(e, WalkError::TooDeep));
        }
        let existing = self.tree.child(dir, base);
        let origin = Origin {
            layer: self.layer,
            index,
        };
        if e.is_dir() {
            if let Some(node) = existing
                && let Payload::Dir(d) = self.tree.nodes[node as usize].payload()
            {
                // Directory over directory: merge, the new attributes win.
                let mut xattrs = self.tree.dir_metadata(d).xattrs;
                merge_xattrs(&mut xattrs, &e.meta.xattrs);
                let meta = Metadata {
                    xattrs,
                    ..e.meta.clone()
                };
                self.tree.set_dir_meta(d, &meta, origin);
                let n = &mut self.tree.nodes[node as usize];
                if n.layer != self.layer {
                    // A directory of another layer (or an implied one) is merged into.
                    n.replaced = u32::from(n.layer != NO_LAYER);
                }
                n.layer = self.layer;
                self.facts.modified += 1;
                return Ok(());
            }
            let (replaced, own) = self.replace(existing);
            let d = self.tree.new_dir(&e.meta, origin);
            let node = self.tree.add(dir, base, self.layer, Payload::Dir(d));
            self.settle(node, replaced, own);
            return Ok(());
        }
        if e.kind == EntryKind::HardLink {
            let (target, tnode) = self.link_target(e)?;
            if let (Some(ex), Some(tn)) = (existing, tnode)
                && self.at_or_below(tn, ex)
            {
                // docker removes the existing path before it links: the target is gone.
                return Err(FlattenError::HardlinkTarget {
                    layer: self.layer_usize(),
                    index: e.index,
                    path: show_name(&e.path),
                    target: show_name(&e.link),
                    reason: "does not exist",
                });
            }
            let same = existing
                .filter(|&n| self.tree.nodes[n as usize].payload() == Payload::Other(target));
            if let Some(n) = same {
                // Linking a path to its own inode only applies the header's attributes; the
                // path is written, so what lower layers left there counts as wasted.
                let live = self.live_at(n);
                let own = self.waste(n, live);
                if !own.is_empty() {
                    self.duplicates.entry(n).or_default().extend(own);
                }
                self.tree.nodes[n as usize].layer = self.layer;
                self.facts.modified += 1;
            } else {
                self.tree.inodes[target as usize].links += 1;
                let (replaced, own) = self.replace(existing);
                let node = self.tree.add(dir, base, self.layer, Payload::Other(target));
                self.settle(node, replaced, own);
            }
            // As moby: the link header's owner and xattrs (and mode and mtime unless the
            // target is a symlink) apply to the shared inode.
            let ino = self.tree.inodes[target as usize];
            let mut meta = self.tree.inode_metadata(target);
            meta.uid = e.meta.uid;
            meta.gid = e.meta.gid;
            meta.uname.clone_from(&e.meta.uname);
            meta.gname.clone_from(&e.meta.gname);
            if ino.kind != InodeKind::Symlink {
                meta.mode = e.meta.mode;
                meta.mtime = e.meta.mtime;
            }
            merge_xattrs(&mut meta.xattrs, &e.meta.xattrs);
            self.tree.set_inode_meta(target, &meta);
            return Ok(());
        }
        let (replaced, own) = self.replace(existing);
        let inode = self.new_inode(e, index, NONE);
        let node = self.tree.add(dir, base, self.layer, Payload::Other(inode));
        self.tree.inodes[inode as usize].origin_node = node;
        self.settle(node, replaced, own);
        Ok(())
    }

    /// Records what a new node's entry displaced.
    fn settle(&mut self, node: u32, replaced: u32, own: Vec<Live>) {
        self.tree.nodes[node as usize].replaced = replaced;
        if !own.is_empty() {
            self.duplicates.insert(node, own);
        }
    }

    /// Unlinks an existing path about to be recreated; counts the entry as added or modified.
    /// Returns how many lower-layer paths it displaced (see `Node::replaced`) and this layer's
    /// entries live at the path.
    fn replace(&mut self, existing: Option<u32>) -> (u32, Vec<Live>) {
        let Some(n) = existing else {
            self.facts.added += 1;
            return (0, Vec::new());
        };
        self.facts.modified += 1;
        let node = self.tree.nodes[n as usize];
        let own = node.layer == self.layer;
        let (removed, live) = self.remove(n);
        let replaced = if own {
            node.replaced
        } else {
            u32::try_from(removed).unwrap_or(u32::MAX)
        };
        (replaced, live)
    }

    fn new_inode(&mut self, e: &Entry, index: u32, origin_node: u32) -> u32 {
        let (kind, data) = match e.kind {
            EntryKind::Regular => (InodeKind::Regular, e.size),
            EntryKind::Symlink => (
                InodeKind::Symlink,
                u64::from(self.tree.strings.intern(&e.link)),
            ),
            EntryKind::CharDevice => (
                InodeKind::Char,
                u64::from(e.devmajor) << 32 | u64::from(e.devminor),
            ),
            EntryKind::BlockDevice => (
                InodeKind::Block,
                u64::from(e.devmajor) << 32 | u64::from(e.devminor),
            ),
            EntryKind::Fifo => (InodeKind::Fifo, 0),
            EntryKind::Directory | EntryKind::HardLink | EntryKind::Other(_) => {
                unreachable!("directories, hard links and unsupported types make no inode")
            }
        };
        let attrs = self.tree.intern_attrs(&e.meta);
        self.tree.inodes.push(super::tree::Inode {
            data,
            mtime_secs: e.meta.mtime.seconds,
            mtime_nanos: e.meta.mtime.nanos,
            attrs,
            origin_index: index,
            links: 1,
            origin_node,
            origin_layer: self.layer,
            kind,
            live: true,
        });
        (self.tree.inodes.len() - 1) as u32
    }

    /// Whether `node` is `top` or lies below it.
    fn at_or_below(&self, node: u32, top: u32) -> bool {
        let mut n = node;
        loop {
            if n == top {
                return true;
            }
            if n == ROOT {
                return false;
            }
            n = self.tree.nodes[n as usize].parent;
        }
    }

    /// Resolves a hard link's target to an inode and the node naming it (none for an AUFS link
    /// source), without following its last component.
    fn link_target(&mut self, e: &Entry) -> Result<(u32, Option<u32>), FlattenError> {
        let layer = self.layer_usize();
        let err = |reason| FlattenError::HardlinkTarget {
            layer,
            index: e.index,
            path: show_name(&e.path),
            target: show_name(&e.link),
            reason,
        };
        let comps = layer::components(&e.link)
            .map_err(|r| self.rule_err(e, "hard link target", &e.link, r))?;
        let Some((&base, parents)) = comps.split_last() else {
            return Err(err("is the root directory"));
        };
        if parents.len() == 1 && parents[0] == PLNK {
            return self
                .plnk
                .get(base)
                .map(|&i| (i, None))
                .ok_or_else(|| err("is not in this layer's .wh..wh.plnk"));
        }
        let mut hops = 0;
        let dir = match self.walk(ROOT, parents, false, &mut hops) {
            Ok(Walk::Dir(d)) => d,
            Ok(_) => return Err(err("does not exist")),
            Err(_) => return Err(err("has too many levels of symbolic links")),
        };
        let node = self
            .tree
            .child(dir, base)
            .ok_or_else(|| err("does not exist"))?;
        match self.tree.nodes[node as usize].payload() {
            Payload::Other(inode) => Ok((inode, Some(node))),
            _ => Err(err("is a directory")),
        }
    }

    /// Turns the merge into a [`FinalTree`]: the output order is computed, the facts sorted.
    pub(super) fn finish(mut self, mut facts: Vec<LayerFacts>) -> FinalTree {
        for (layer, h) in std::mem::take(&mut self.hidden) {
            facts[usize::from(layer)].hidden.push(h);
        }
        for (f, wasted) in facts.iter_mut().zip(std::mem::take(&mut self.wasted)) {
            f.wasted = wasted;
            f.hidden.sort_by_key(|h| h.index);
            f.wasted.sort_by_key(|h| h.index);
        }
        FinalTree::new(self.tree, facts)
    }
}

/// The output order of a merged tree: directories depth-first (children in name order), then
/// every other node, by inode in content order and each inode's paths in byte order; and the
/// primary (first) node of each multiply-linked inode, sorted by inode.
pub(super) fn output_order(tree: &Tree) -> super::Ordered {
    // Directories depth-first, children in name order; every other node after them.
    let mut order = Vec::new();
    let mut others = Vec::new();
    let mut stack = vec![ROOT];
    while let Some(d) = stack.pop() {
        if d != ROOT {
            order.push(d);
        }
        let mut kids = tree.children_of(d);
        sort_by_name(tree, &mut kids);
        for &c in kids.iter().rev() {
            match tree.nodes[c as usize].payload() {
                Payload::Dir(_) => stack.push(c),
                Payload::Other(_) => others.push(c),
                Payload::Dead => {}
            }
        }
    }
    // Every inode in content order, its paths in byte order (the first is written as the
    // file, the others as hard links to it).
    let inode_of = |n: u32| match tree.nodes[n as usize].payload() {
        Payload::Other(i) => i,
        _ => unreachable!("only non-directories here"),
    };
    others.sort_by_key(|&n| {
        let i = inode_of(n);
        (tree.inodes[i as usize].origin(), i)
    });
    let mut i = 0;
    while i < others.len() {
        let inode = inode_of(others[i]);
        let end = i + others[i..]
            .iter()
            .take_while(|&&n| inode_of(n) == inode)
            .count();
        if end - i > 1 {
            others[i..end].sort_by_cached_key(|&n| tree.path(n));
        }
        i = end;
    }
    // The primary (first) node of each multiply-linked inode.
    let mut primaries = Vec::new();
    let mut last = NONE;
    for &n in &others {
        let i = inode_of(n);
        if i != last && tree.inodes[i as usize].links > 1 {
            primaries.push((i, n));
        }
        last = i;
    }
    primaries.sort_unstable();
    order.extend(others);
    (order, primaries)
}
