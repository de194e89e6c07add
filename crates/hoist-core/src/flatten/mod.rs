//! Streaming flattener: merges an image's layer tars into one flat tar, the way
//! `docker export` shows a container's root filesystem, without extracting anything.
//!
//! # How it works
//!
//! 1. **Scan** ([`final_tree`]): every layer's headers are read bottom-up (contents are skipped)
//!    and applied to an in-memory metadata tree: path → node, hard links share an inode. The
//!    result is a [`FinalTree`]: every surviving entry with its final metadata and the layer
//!    entry that supplies its content, plus per-layer facts ([`LayerFacts`]).
//! 2. **Write** ([`write_flat`]): directories are written first (depth-first, children sorted by
//!    name), then every other inode in the order its content appears in the layers, each under
//!    its smallest surviving path, followed by its other paths as hard links to it. File
//!    contents are copied straight from a second, bottom-up read of the layers, so memory
//!    depends on the number of entries, never on their sizes.
//!
//! # Layer semantics
//!
//! These follow the OCI image-spec `layer.md` and moby's `UnpackLayer`:
//!
//! - names are normalized (`./`, leading `/`, `//`, `a/../b`); a name that climbs out of the
//!   root is refused;
//! - an entry over an existing path unlinks and recreates it, except a directory over a
//!   directory, which merges (the new entry's attributes win, xattrs are merged as `lsetxattr`
//!   would);
//! - `.wh.<name>` hides a lower-layer path (and everything below it); `.wh..wh..opq` hides
//!   every lower-layer child of its directory, wherever it sits in the layer. Whiteouts never
//!   hide entries of their own layer. A whiteout whose parent is missing or not a directory does
//!   nothing;
//! - `.wh.`, `.wh..` and `.wh...` are refused; other `.wh..wh.*` AUFS metadata is skipped, but
//!   regular files in a top-level `.wh..wh.plnk/` serve as targets of hard links into it;
//! - intermediate path components that are symlinks are followed inside the tree (absolute
//!   targets start at the root, `..` stops at the root), as applying a layer in a chroot does;
//!   the last component is never followed;
//! - a hard link shares the inode of its target (which must exist at that point); as in moby,
//!   the link header's owner, mode, mtime and xattrs are applied to that inode (mode and mtime
//!   only when the target is not a symlink). Its content stays that of the entry that created
//!   the inode, even when the target's path is later deleted or replaced;
//! - duplicate paths in one layer: the last one wins;
//! - parent directories no layer mentions are "implied": they appear in the tree (with
//!   [`FinalEntry::source`] `None`) but are not written, so extractors create them.
//!
//! # Output format
//!
//! POSIX ustar headers with PAX extended records (`x`) only where a value does not fit: long
//! names and link names, uid/gid ≥ 2^21, long uname/gname, sizes ≥ 8 GiB, negative, huge or
//! sub-second mtimes, and xattrs (`SCHILY.xattr.*`). Owner ids and names, modes (including
//! setuid, setgid, sticky) and mtimes are kept as the layers say. Directory names end in `/`,
//! no name has a `./` prefix. The archive ends with exactly two zero blocks. The same layers
//! always give the same bytes.

use std::fmt;
use std::io::{self, BufReader, BufWriter, Read, Write};

mod inodes;
mod merge;
mod tree;

use crate::tar::{EntryKind, Header, Reader, TarError, Writer};
pub use crate::tar::{Metadata, Mtime};
pub use inodes::{DirChild, InodeAttr, ROOT_INO};
use merge::Merge;
use tree::{InodeKind, Payload, ROOT, Tree};
/// Buffer around layer streams: headers are read 512 bytes at a time.
const READ_BUF: usize = 128 << 10;
/// Chunk size when copying file contents.
const COPY_BUF: usize = 64 << 10;
/// Buffer around the output stream.
const WRITE_BUF: usize = 128 << 10;

/// The decompressed layer tars of one image, base layer first.
///
/// [`flatten`] opens a layer up to twice (once to scan headers, once more if it holds
/// file contents that reach the output), so both openings must yield the same bytes.
pub trait LayerSource {
    /// Number of layers.
    fn layer_count(&self) -> usize;
    /// Opens layer `index` (0 = base) as an uncompressed tar stream.
    fn open_layer(&self, index: usize) -> io::Result<Box<dyn Read + '_>>;
    /// Layer `index` as an uncompressed tar file, when it is one: reading headers then seeks
    /// over file contents instead of reading them. `None` (the default): use
    /// [`LayerSource::open_layer`].
    fn open_layer_file(&self, index: usize) -> io::Result<Option<std::fs::File>> {
        let _ = index;
        Ok(None)
    }
    /// Layer `index`'s index (see [`crate::layerindex`]), when the source has one:
    /// [`final_tree`] then reads its entries from there and no layer bytes. `None` (the
    /// default): the layer's headers are read.
    fn layer_index(
        &self,
        index: usize,
    ) -> io::Result<Option<std::sync::Arc<crate::layerindex::LayerIndex>>> {
        let _ = index;
        Ok(None)
    }
}

/// A layer's bytes: a stream, or a file that can be seeked over.
enum LayerStream<'a> {
    Stream(Box<dyn Read + 'a>),
    File(std::fs::File),
}

impl Read for LayerStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            LayerStream::Stream(r) => r.read(buf),
            LayerStream::File(f) => f.read(buf),
        }
    }
}

impl io::Seek for LayerStream<'_> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        match self {
            LayerStream::File(f) => f.seek(pos),
            LayerStream::Stream(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }
}

/// Layers held in memory (handy for tests and small images).
impl<T: AsRef<[u8]>> LayerSource for [T] {
    fn layer_count(&self) -> usize {
        self.len()
    }
    fn open_layer(&self, index: usize) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self[index].as_ref()))
    }
}

/// Which pass a [`Progress`] report belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pass {
    /// Reading headers to compute the final tree.
    Scan,
    /// Writing the flat tar.
    Write,
}

/// Progress report: `pass` starts on `layer` (of `layers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The pass.
    pub pass: Pass,
    /// Layer about to be read, 0 = base.
    pub layer: usize,
    /// Number of layers.
    pub layers: usize,
}

/// A path's new name (see [`FlattenOptions::rename`]).
pub type Rename<'a> = dyn Fn(&[u8]) -> Vec<u8> + 'a;

/// Options of [`flatten`] and [`final_tree`].
#[derive(Default)]
#[non_exhaustive]
pub struct FlattenOptions<'a> {
    /// Called when a pass starts reading a layer.
    pub progress: Option<&'a dyn Fn(Progress)>,
    /// [`write_flat`] writes each path (and hard-link target) as this returns it: a subtree
    /// written under another name (`hoist cp IMAGE:/etc -` writes `etc/…`).
    pub rename: Option<&'a Rename<'a>>,
    /// [`write_flat`] also writes the directories no layer mentions (mode 0755, root-owned),
    /// so an extractor never walks through what its destination held there before.
    pub implied_dirs: bool,
}

impl<'a> FlattenOptions<'a> {
    /// Options with a progress callback.
    pub fn with_progress(progress: &'a dyn Fn(Progress)) -> Self {
        FlattenOptions {
            progress: Some(progress),
            rename: None,
            implied_dirs: false,
        }
    }

    fn report(&self, pass: Pass, layer: usize, layers: usize) {
        if let Some(p) = self.progress {
            p(Progress {
                pass,
                layer,
                layers,
            });
        }
    }
}

impl fmt::Debug for FlattenOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlattenOptions")
            .field("progress", &self.progress.is_some())
            .field("rename", &self.rename.is_some())
            .finish()
    }
}

/// What [`flatten`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlattenStats {
    /// Entries written (PAX headers not counted).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub content_bytes: u64,
    /// Total bytes of the output tar.
    pub tar_bytes: u64,
}

/// Why flattening failed. Paths are shown lossily as UTF-8.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlattenError {
    /// A layer could not be opened.
    #[error("layer {layer}: cannot open: {source}")]
    Open {
        /// Layer index (0 = base).
        layer: usize,
        /// The cause.
        source: io::Error,
    },
    /// A layer is not a tar hoist accepts, or cannot be read.
    #[error("layer {layer}: {source}")]
    Tar {
        /// Layer index (0 = base).
        layer: usize,
        /// What the tar reader found.
        source: TarError,
    },
    /// A path component is longer than 255 bytes.
    #[error(
        "layer {layer}: entry {index} {path:?}: a component of {len} bytes is longer than 255 (file name too long)"
    )]
    NameTooLong {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name (shortened).
        path: String,
        /// The component's length.
        len: usize,
    },
    /// An entry name or hard link target leaves the root (`../x`).
    #[error("layer {layer}: entry {index} {path:?}: {what} {name:?} escapes the root")]
    Escape {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name as written in the layer.
        path: String,
        /// `"name"` or `"hard link target"`.
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// A whiteout name that moby refuses (`.wh.`, `.wh..`, `.wh...`).
    #[error("layer {layer}: entry {index} {path:?}: invalid whiteout name")]
    InvalidWhiteout {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name.
        path: String,
    },
    /// An entry type no layer applier creates (volume labels, vendor types, …).
    #[error("layer {layer}: entry {index} {path:?}: unsupported entry type {typeflag:?}")]
    Unsupported {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name.
        path: String,
        /// The type flag, escaped.
        typeflag: String,
    },
    /// A hard link whose target does not exist (yet) or is a directory.
    #[error("layer {layer}: entry {index} {path:?}: hard link target {target:?} {reason}")]
    HardlinkTarget {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The link's name.
        path: String,
        /// The target as written.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A parent component of an entry is an existing non-directory, or a dangling symlink.
    #[error("layer {layer}: entry {index} {path:?}: a parent is not a directory")]
    NotADirectory {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name.
        path: String,
    },
    /// Too many symlinks while resolving a parent.
    #[error("layer {layer}: entry {index} {path:?}: too many levels of symbolic links")]
    SymlinkLoop {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name.
        path: String,
    },
    /// An entry's attributes no layer applier could set (owner ids, xattrs).
    #[error("layer {layer}: entry {index} {path:?}: {source}")]
    Rule {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name (shortened).
        path: String,
        /// The rule.
        source: crate::layer::RuleError,
    },
    /// An entry would create a path deeper than 4096 components (through symlinks).
    #[error(
        "layer {layer}: entry {index} {path:?}: resolves to a path deeper than 4096 components"
    )]
    TooDeep {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name (shortened).
        path: String,
    },
    /// More entries than the merged tree holds (2^30 paths, 2^32 entries a layer).
    #[error("layer {layer}: entry {index}: too many entries")]
    TooBig {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
    },
    /// More layers than the merged tree counts (65,534).
    #[error("{count} layers: at most 65534 are supported")]
    TooManyLayers {
        /// The number of layers.
        count: usize,
    },
    /// The second reading of a layer differs from the first one.
    #[error("layer {layer}: entry {index} differs between the two reads of the layer")]
    LayerChanged {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
    },
    /// Writing the output failed.
    #[error("writing the flat tar: {0}")]
    Write(#[source] io::Error),
}

/// Identifies one entry of one layer: `index` counts the layer's entries from 0, PAX and GNU
/// long-name headers folded into the entry they describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    /// Layer index, 0 = base.
    pub layer: usize,
    /// Entry index inside the layer.
    pub index: u64,
}

/// What a final entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalKind {
    /// A directory.
    Directory,
    /// A regular file of `size` bytes.
    Regular {
        /// Content size.
        size: u64,
    },
    /// Another name of the inode written earlier under `target` (a regular file, symlink,
    /// device or fifo).
    HardLink {
        /// The inode's primary (smallest) path.
        target: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// The link target, verbatim.
        target: Vec<u8>,
    },
    /// A character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// One path of the merged filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalEntry {
    /// Normalized path: no leading `/` or `./`, no trailing `/`.
    pub path: Vec<u8>,
    /// The entry type.
    pub kind: FinalKind,
    /// Final metadata.
    pub meta: Metadata,
    /// The layer entry that supplies the content (regular files, hard links: the entry that
    /// created the inode) or the attributes (directories: the last entry that wrote them);
    /// `None` for an implied directory, which no layer mentions and which is not written.
    pub source: Option<EntryId>,
    /// The layer of the last entry that wrote this path: for a hard link added by an upper
    /// layer, that layer, where [`FinalEntry::source`] names the inode's first layer. `None`
    /// for an implied directory.
    pub layer: Option<usize>,
}

/// A regular-file entry whose content does not reach the final tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenFile {
    /// Entry index inside its layer.
    pub index: u64,
    /// The entry's normalized path.
    pub path: Vec<u8>,
    /// Content size (wasted bytes).
    pub size: u64,
    /// The layer whose entries removed or replaced the file's last path (may be its own
    /// layer, for duplicates).
    pub by_layer: usize,
}

/// What one layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerFacts {
    /// Entries read (PAX and GNU long-name headers folded in).
    pub entries: u64,
    /// Entries that created a path that did not exist before.
    pub added: u64,
    /// Entries that replaced or merged into an existing path.
    pub modified: u64,
    /// Whiteout and opaque entries.
    pub whiteouts: u64,
    /// Paths (of lower layers) removed by this layer's whiteouts and opaque markers,
    /// descendants included.
    pub removed: u64,
    /// Entries ignored: the root directory, AUFS metadata.
    pub skipped: u64,
    /// Regular files of this layer whose content is not in the final tree.
    pub hidden: Vec<HiddenFile>,
    /// Sum of the content sizes of this layer's regular-file entries (hard links count 0).
    pub file_bytes: u64,
    /// Regular-file entries of this layer whose path a layer above writes or deletes
    /// (`hoist analyze`'s definition of waste), by entry index.
    pub wasted: Vec<HiddenFile>,
}

/// Nodes in output order, and the primary node of each multiply-linked inode (see
/// `merge::output_order`).
type Ordered = (Vec<u32>, Vec<(u32, u32)>);

/// The merged filesystem of an image, computed from headers only, in compact form (see
/// `tree.rs`): entries are rebuilt one at a time as they are read.
#[derive(Debug, Default)]
pub struct FinalTree {
    /// `None` for the empty tree.
    tree: Option<Tree>,
    /// Every non-root node in output order, and the (inode, node) of each multiply-linked
    /// inode's primary path (written as the file; its other paths are hard links to it),
    /// sorted: computed when first needed (analyze and load's check never need them).
    order: std::cell::OnceCell<Ordered>,
    /// Per-layer facts, base first.
    pub layers: Vec<LayerFacts>,
}

impl FinalTree {
    fn new(tree: Tree, layers: Vec<LayerFacts>) -> FinalTree {
        FinalTree {
            tree: Some(tree),
            order: std::cell::OnceCell::new(),
            layers,
        }
    }

    fn order(&self) -> &[u32] {
        &self.ordered().0
    }

    fn ordered(&self) -> &Ordered {
        self.order.get_or_init(|| match &self.tree {
            Some(t) => merge::output_order(t),
            None => Default::default(),
        })
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.order().len()
    }

    /// Whether the tree has no path.
    pub fn is_empty(&self) -> bool {
        self.order().is_empty()
    }

    /// Every path, in output order: directories first (depth-first, children sorted by name
    /// bytes), then every other inode in content order (by [`EntryId`]), each under its
    /// smallest path followed by its other paths as [`FinalKind::HardLink`]s.
    pub fn iter(&self) -> impl Iterator<Item = FinalEntry> + '_ {
        self.order()
            .iter()
            .filter_map(|&n| Some(self.entry(self.tree.as_ref()?, n, true)))
    }

    /// Keeps only the entries `keep` accepts. A hard-link group whose primary path is not kept
    /// gets its first kept path (in output order) as primary, which then carries the content:
    /// what is kept is a tree of its own (`cp` of a subtree).
    pub fn retain(&mut self, mut keep: impl FnMut(&FinalEntry) -> bool) {
        let Some(tree) = &self.tree else { return };
        // Entries are judged with the full tree's primaries.
        let kept: Vec<u32> = self
            .order()
            .iter()
            .copied()
            .filter(|&n| keep(&self.entry(tree, n, true)))
            .collect();
        let (_, mut primaries) = self.order.take().expect("computed above");
        let kept_set: std::collections::HashSet<u32> = kept.iter().copied().collect();
        let mut first_kept: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        for &n in &kept {
            if let Payload::Other(i) = tree.nodes[n as usize].payload()
                && tree.inodes[i as usize].links > 1
            {
                first_kept.entry(i).or_insert(n);
            }
        }
        for (inode, node) in primaries.iter_mut() {
            if !kept_set.contains(node)
                && let Some(&n) = first_kept.get(inode)
            {
                *node = n;
            }
        }
        self.order = std::cell::OnceCell::from((kept, primaries));
    }

    /// Every path in path order: depth-first, children sorted by name bytes (so a directory
    /// comes right before what it holds). Hard links are as in [`FinalTree::iter`].
    pub fn walk(&self) -> impl Iterator<Item = FinalEntry> + '_ {
        let mut stack: Vec<u32> = Vec::new();
        if let Some(tree) = &self.tree {
            let mut kids = tree.children_of(ROOT);
            tree::sort_by_name(tree, &mut kids);
            stack.extend(kids.iter().rev());
        }
        std::iter::from_fn(move || {
            let tree = self.tree.as_ref()?;
            let n = stack.pop()?;
            if tree.nodes[n as usize].is_dir() {
                let mut kids = tree.children_of(n);
                tree::sort_by_name(tree, &mut kids);
                stack.extend(kids.iter().rev());
            }
            Some(self.entry(tree, n, true))
        })
    }

    /// The entry at `path` (normalized: no leading `/`, no `.` or `..`), as
    /// [`FinalTree::iter`] gives it.
    pub fn get(&self, path: &[u8]) -> Option<FinalEntry> {
        let tree = self.tree.as_ref()?;
        let n = self.lookup(tree, path).filter(|&n| n != ROOT)?;
        Some(self.entry(tree, n, true))
    }

    /// The entry at `path` with a hard link resolved: the kind of what it links to.
    pub fn get_resolved(&self, path: &[u8]) -> Option<FinalEntry> {
        let tree = self.tree.as_ref()?;
        let n = self.lookup(tree, path).filter(|&n| n != ROOT)?;
        Some(self.entry(tree, n, false))
    }

    /// The node at `path`, the root for an empty path.
    fn lookup(&self, tree: &Tree, path: &[u8]) -> Option<u32> {
        let mut cur = ROOT;
        for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            if !tree.nodes[cur as usize].is_dir() {
                return None;
            }
            cur = tree.child(cur, c)?;
        }
        Some(cur)
    }

    /// The names in the directory `path`, sorted by bytes (`None` when it is not a directory).
    pub fn children(&self, path: &[u8]) -> Option<Vec<Vec<u8>>> {
        let tree = self.tree.as_ref()?;
        let dir = self.lookup(tree, path)?;
        if !tree.nodes[dir as usize].is_dir() {
            return None;
        }
        let mut kids = tree.children_of(dir);
        tree::sort_by_name(tree, &mut kids);
        Some(kids.iter().map(|&k| tree.name(k).to_vec()).collect())
    }

    /// Every path in output order, as a vector (for small trees and tests).
    pub fn to_vec(&self) -> Vec<FinalEntry> {
        self.iter().collect()
    }

    /// The entry of node `n`; with `links`, a path other than its inode's primary one is a
    /// [`FinalKind::HardLink`] to it.
    fn entry(&self, tree: &Tree, n: u32, links: bool) -> FinalEntry {
        let written_by = Some(tree.nodes[n as usize].layer)
            .filter(|&l| l != tree::NO_LAYER)
            .map(usize::from);
        let path = tree.path(n);
        let source = |o: tree::Origin| {
            (o.layer != tree::NO_LAYER).then_some(EntryId {
                layer: usize::from(o.layer),
                index: u64::from(o.index),
            })
        };
        match tree.nodes[n as usize].payload() {
            Payload::Dir(d) => FinalEntry {
                path,
                kind: FinalKind::Directory,
                meta: tree.dir_metadata(d),
                source: source(tree.dirs[d as usize].origin()),
                layer: written_by,
            },
            Payload::Other(i) => {
                let ino = &tree.inodes[i as usize];
                let major = (ino.data >> 32) as u32;
                let minor = ino.data as u32;
                let mut kind = match ino.kind {
                    InodeKind::Regular => FinalKind::Regular { size: ino.data },
                    InodeKind::Symlink => FinalKind::Symlink {
                        target: tree.strings.get(ino.data as u32).to_vec(),
                    },
                    InodeKind::Char => FinalKind::CharDevice { major, minor },
                    InodeKind::Block => FinalKind::BlockDevice { major, minor },
                    InodeKind::Fifo => FinalKind::Fifo,
                };
                if links
                    && ino.links > 1
                    && let Some(p) = self.primary(tree, i)
                    && p != n
                {
                    kind = FinalKind::HardLink {
                        target: tree.path(p),
                    };
                }
                FinalEntry {
                    path,
                    kind,
                    meta: tree.inode_metadata(i),
                    source: source(ino.origin()),
                    layer: written_by,
                }
            }
            Payload::Dead => unreachable!("only live nodes are in the order"),
        }
    }

    /// The node whose path is written as the file of a multiply-linked inode.
    fn primary(&self, _tree: &Tree, inode: u32) -> Option<u32> {
        let primaries = &self.ordered().1;
        let at = primaries.partition_point(|&(i, _)| i < inode);
        primaries
            .get(at)
            .filter(|&&(i, _)| i == inode)
            .map(|&(_, n)| n)
    }
}

impl PartialEq for FinalTree {
    fn eq(&self, other: &Self) -> bool {
        self.layers == other.layers && self.iter().eq(other.iter())
    }
}

/// Flattens `layers` into one tar written to `out`.
///
/// Reads the layers up to twice; see the [module docs](self) for the semantics and the format.
pub fn flatten(
    layers: &(impl LayerSource + ?Sized),
    out: impl Write,
    opts: &FlattenOptions<'_>,
) -> Result<FlattenStats, FlattenError> {
    let tree = final_tree(layers, opts)?;
    write_flat(layers, &tree, out, opts)
}

/// Computes the merged filesystem of `layers` from their headers (contents are skipped).
pub fn final_tree(
    layers: &(impl LayerSource + ?Sized),
    opts: &FlattenOptions<'_>,
) -> Result<FinalTree, FlattenError> {
    let count = layers.layer_count();
    if count >= usize::from(tree::NO_LAYER) {
        return Err(FlattenError::TooManyLayers { count });
    }
    let mut merge = Merge::new(count);
    let mut facts = Vec::with_capacity(count);
    for layer in 0..count {
        opts.report(Pass::Scan, layer, count);
        let err = |source| FlattenError::Open { layer, source };
        if let Some(index) = layers.layer_index(layer).map_err(err)? {
            merge.begin_layer(layer as u16);
            // One entry, refilled record after record: no allocation per entry.
            index.for_each(|e| merge.apply(e), |e| err(io::Error::other(e)))?;
            merge.end_layer();
            facts.push(std::mem::take(&mut merge.facts));
            continue;
        }
        let mut reader = open(layers, layer)?;
        merge.begin_layer(layer as u16);
        // Entries apply in tar order, as moby's UnpackLayer applies them; an opaque marker
        // hides only lower layers, so where it sits in its layer does not matter.
        while let Some(entry) = reader
            .next_entry()
            .map_err(|source| FlattenError::Tar { layer, source })?
        {
            merge.apply(&entry)?;
        }
        merge.end_layer();
        facts.push(std::mem::take(&mut merge.facts));
    }
    Ok(merge.finish(facts))
}

/// A layer being read.
type LayerReader<'a> = Reader<BufReader<LayerStream<'a>>>;

/// Opens layer `layer` for reading (as a file when the source has one).
fn open<'a>(
    layers: &'a (impl LayerSource + ?Sized),
    layer: usize,
) -> Result<LayerReader<'a>, FlattenError> {
    let err = |source| FlattenError::Open { layer, source };
    let stream = match layers.open_layer_file(layer).map_err(err)? {
        Some(f) => LayerStream::File(f),
        None => LayerStream::Stream(layers.open_layer(layer).map_err(err)?),
    };
    Ok(Reader::seekable(BufReader::with_capacity(READ_BUF, stream)))
}

/// Advances `reader` to entry `index` of `layer`, whose content size must be `size`.
fn seek_entry<R: Read>(
    reader: &mut Reader<R>,
    layer: usize,
    index: u64,
    size: u64,
) -> Result<(), FlattenError> {
    loop {
        let entry = reader
            .next_entry()
            .map_err(|source| FlattenError::Tar { layer, source })?;
        match entry {
            Some(e) if e.index == index && e.is_regular() && e.size == size => return Ok(()),
            Some(e) if e.index < index => {}
            _ => return Err(FlattenError::LayerChanged { layer, index }),
        }
    }
}

/// Writes the flat tar of `tree` (computed by [`final_tree`] from the same `layers`),
/// reading file contents from `layers`.
pub fn write_flat(
    layers: &(impl LayerSource + ?Sized),
    tree: &FinalTree,
    out: impl Write,
    opts: &FlattenOptions<'_>,
) -> Result<FlattenStats, FlattenError> {
    let mut w = FlatWriter {
        w: Writer::new(BufWriter::with_capacity(WRITE_BUF, out)),
        content_bytes: 0,
        buf: vec![0; COPY_BUF],
        rename: opts.rename,
    };
    let count = layers.layer_count();
    let mut entries = tree.iter().peekable();
    // Directories first (the implied ones are not written), then the other inodes, grouped by
    // the layer that holds their content: each such layer is read once, in order.
    while let Some(e) = entries.next_if(|e| e.kind == FinalKind::Directory) {
        if e.source.is_some() || opts.implied_dirs {
            w.header(&e)?;
        }
    }
    let mut reader: Option<(usize, LayerReader<'_>)> = None;
    for e in entries {
        let Some(source) = e.source else { continue };
        let FinalKind::Regular { size } = e.kind else {
            w.header(&e)?;
            continue;
        };
        if size == 0 {
            w.header(&e)?;
            continue;
        }
        let layer = source.layer;
        if reader.as_ref().is_none_or(|(l, _)| *l != layer) {
            opts.report(Pass::Write, layer, count);
            reader = Some((layer, open(layers, layer)?));
        }
        let (_, r) = reader.as_mut().expect("opened above");
        seek_entry(r, layer, source.index, size)?;
        w.header(&e)?;
        w.content(r, layer, size)?;
    }
    let entries = w.w.entries();
    let (_, tar_bytes) = w.w.finish().map_err(FlattenError::Write)?;
    Ok(FlattenStats {
        entries,
        content_bytes: w.content_bytes,
        tar_bytes,
    })
}

/// The sha256 of the content of the regular-file entries `wanted` (entry → content size),
/// reading each layer at most once and only as far as needed.
pub fn entry_digests(
    layers: &(impl LayerSource + ?Sized),
    wanted: &std::collections::BTreeMap<EntryId, u64>,
) -> Result<std::collections::HashMap<EntryId, hoist_format::Digest>, FlattenError> {
    let mut out = std::collections::HashMap::new();
    let mut buf = vec![0u8; COPY_BUF];
    let mut wanted = wanted.iter().peekable();
    while let Some(first) = wanted.peek().map(|(k, _)| **k) {
        let layer = first.layer;
        let mut reader = open(layers, layer)?;
        while let Some((src, size)) = wanted.next_if(|(k, _)| k.layer == layer) {
            seek_entry(&mut reader, layer, src.index, *size)?;
            let mut h = hoist_format::Sha256::new();
            loop {
                let n = reader
                    .read_content(&mut buf)
                    .map_err(|source| FlattenError::Tar { layer, source })?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            out.insert(*src, h.finish());
        }
    }
    Ok(out)
}

/// Orders paths component by component (`a` < `a/b` < `a-b`): the order of
/// [`FinalTree::walk`].
pub fn path_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// Whether `path` lies below the directory `dir` (both normalized, no leading `/`).
pub fn is_below(path: &[u8], dir: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// The flat tar being written, plus the content byte count.
struct FlatWriter<'a, W: Write> {
    w: Writer<BufWriter<W>>,
    content_bytes: u64,
    /// Reused for every file's content.
    buf: Vec<u8>,
    rename: Option<&'a Rename<'a>>,
}

impl<W: Write> FlatWriter<'_, W> {
    /// Writes the header (and PAX header, if needed) of `e`; regular content follows.
    fn header(&mut self, e: &FinalEntry) -> Result<(), FlattenError> {
        let (kind, size, link): (EntryKind, u64, &[u8]) = match &e.kind {
            FinalKind::Directory => (EntryKind::Directory, 0, b""),
            FinalKind::Regular { size } => (EntryKind::Regular, *size, b""),
            FinalKind::HardLink { target } => (EntryKind::HardLink, 0, target),
            FinalKind::Symlink { target } => (EntryKind::Symlink, 0, target),
            FinalKind::CharDevice { .. } => (EntryKind::CharDevice, 0, b""),
            FinalKind::BlockDevice { .. } => (EntryKind::BlockDevice, 0, b""),
            FinalKind::Fifo => (EntryKind::Fifo, 0, b""),
        };
        use std::borrow::Cow;
        let (path, link): (Cow<'_, [u8]>, Cow<'_, [u8]>) = match self.rename {
            Some(f) if kind == EntryKind::HardLink => (f(&e.path).into(), f(link).into()),
            Some(f) => (f(&e.path).into(), link.into()),
            None => (e.path.as_slice().into(), link.into()),
        };
        let mut h = Header::with_meta(&path, kind, &e.meta);
        h.size = size;
        h.link = &link;
        if let FinalKind::CharDevice { major, minor } | FinalKind::BlockDevice { major, minor } =
            e.kind
        {
            (h.devmajor, h.devminor) = (major, minor);
        }
        self.w.header(&h).map_err(FlattenError::Write)
    }

    /// Copies exactly `size` content bytes of the current entry of `reader`, then pads.
    fn content<R: Read>(
        &mut self,
        reader: &mut Reader<R>,
        layer: usize,
        size: u64,
    ) -> Result<(), FlattenError> {
        let mut left = size;
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = reader
                .read_content(&mut self.buf[..want])
                .map_err(|source| FlattenError::Tar { layer, source })?;
            if n == 0 {
                return Err(FlattenError::LayerChanged {
                    layer,
                    index: u64::MAX,
                });
            }
            self.w
                .write_data(&self.buf[..n])
                .map_err(FlattenError::Write)?;
            left -= n as u64;
        }
        self.content_bytes += size;
        self.w.pad(size).map_err(FlattenError::Write)
    }
}

#[cfg(test)]
mod tests;
