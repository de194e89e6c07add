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

mod merge;
mod tree;

use crate::tar::{EntryKind, Header, Reader, TarError, Writer};
pub use crate::tar::{Metadata, Mtime};
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

/// Options of [`flatten`] and [`final_tree`].
#[derive(Default)]
#[non_exhaustive]
pub struct FlattenOptions<'a> {
    /// Called when a pass starts reading a layer.
    pub progress: Option<&'a dyn Fn(Progress)>,
}

impl<'a> FlattenOptions<'a> {
    /// Options with a progress callback.
    pub fn with_progress(progress: &'a dyn Fn(Progress)) -> Self {
        FlattenOptions {
            progress: Some(progress),
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
    /// A whiteout name that moby refuses (`.wh.`, `.wh..`, `.wh...`) or a path below one.
    #[error("layer {layer}: entry {index} {path:?}: invalid whiteout name")]
    InvalidWhiteout {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name.
        path: String,
    },
    /// An entry type hoist cannot flatten (sparse files, volume labels, …).
    #[error("layer {layer}: entry {index} {path:?}: unsupported entry type {typeflag:?}")]
    Unsupported {
        /// Layer index.
        layer: usize,
        /// Index of the entry.
        index: u64,
        /// The entry's name.
        path: String,
        /// The type flag (or a description such as `GNU.sparse`).
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
    /// Entries ignored: the root directory, AUFS metadata, PAX global headers.
    pub skipped: u64,
    /// Regular files of this layer whose content is not in the final tree.
    pub hidden: Vec<HiddenFile>,
    /// Sum of the content sizes of this layer's regular-file entries (hard links count 0).
    pub file_bytes: u64,
    /// Regular-file entries of this layer whose path a layer above writes or deletes
    /// (`hoist analyze`'s definition of waste), by entry index.
    pub wasted: Vec<HiddenFile>,
}

/// The merged filesystem of an image, computed from headers only, in compact form (see
/// `tree.rs`): entries are rebuilt one at a time as they are read.
#[derive(Debug, Default)]
pub struct FinalTree {
    /// `None` for the empty tree.
    tree: Option<Tree>,
    /// Every non-root node in output order.
    order: Vec<u32>,
    /// (inode, node) of each multiply-linked inode's primary path (written as the file; its
    /// other paths are hard links to it), sorted.
    primaries: Vec<(u32, u32)>,
    /// Per-layer facts, base first.
    pub layers: Vec<LayerFacts>,
}

impl FinalTree {
    /// Number of paths.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the tree has no path.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Every path, in output order: directories first (depth-first, children sorted by name
    /// bytes), then every other inode in content order (by [`EntryId`]), each under its
    /// smallest path followed by its other paths as [`FinalKind::HardLink`]s.
    pub fn iter(&self) -> impl Iterator<Item = FinalEntry> + '_ {
        self.order
            .iter()
            .filter_map(|&n| Some(self.entry(self.tree.as_ref()?, n, true)))
    }

    /// Keeps only the entries `keep` accepts (hard links stay links to their primary path,
    /// kept or not).
    pub fn retain(&mut self, mut keep: impl FnMut(&FinalEntry) -> bool) {
        let Some(tree) = &self.tree else { return };
        let order = std::mem::take(&mut self.order);
        self.order = order
            .into_iter()
            .filter(|&n| keep(&self.entry(tree, n, true)))
            .collect();
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
        self.lookup(tree, path).map(|n| self.entry(tree, n, true))
    }

    /// The entry at `path` with a hard link resolved: the kind of what it links to.
    pub fn get_resolved(&self, path: &[u8]) -> Option<FinalEntry> {
        let tree = self.tree.as_ref()?;
        self.lookup(tree, path).map(|n| self.entry(tree, n, false))
    }

    fn lookup(&self, tree: &Tree, path: &[u8]) -> Option<u32> {
        let mut cur = ROOT;
        for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            if !tree.nodes[cur as usize].is_dir() {
                return None;
            }
            cur = tree.child(cur, c)?;
        }
        (cur != ROOT).then_some(cur)
    }

    /// The names in the directory `path`, sorted by bytes (`None` when it is not a directory).
    pub fn children(&self, path: &[u8]) -> Option<Vec<Vec<u8>>> {
        let tree = self.tree.as_ref()?;
        let mut cur = ROOT;
        for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            cur = tree.child(cur, c)?;
        }
        if !tree.nodes[cur as usize].is_dir() {
            return None;
        }
        let mut kids = tree.children_of(cur);
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
                }
            }
            Payload::Dead => unreachable!("only live nodes are in the order"),
        }
    }

    /// The node whose path is written as the file of a multiply-linked inode.
    fn primary(&self, _tree: &Tree, inode: u32) -> Option<u32> {
        let at = self.primaries.partition_point(|&(i, _)| i < inode);
        self.primaries
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
type LayerReader<'a> = Reader<BufReader<Box<dyn Read + 'a>>>;

/// Opens layer `layer` for reading.
fn open<'a>(
    layers: &'a (impl LayerSource + ?Sized),
    layer: usize,
) -> Result<LayerReader<'a>, FlattenError> {
    let stream = layers
        .open_layer(layer)
        .map_err(|source| FlattenError::Open { layer, source })?;
    Ok(Reader::new(BufReader::with_capacity(READ_BUF, stream)))
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
    };
    let count = layers.layer_count();
    let mut entries = tree.iter().peekable();
    // Directories first (the implied ones are not written), then the other inodes, grouped by
    // the layer that holds their content: each such layer is read once, in order.
    while let Some(e) = entries.next_if(|e| e.kind == FinalKind::Directory) {
        if e.source.is_some() {
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
struct FlatWriter<W: Write> {
    w: Writer<BufWriter<W>>,
    content_bytes: u64,
    /// Reused for every file's content.
    buf: Vec<u8>,
}

impl<W: Write> FlatWriter<W> {
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
        let mut h = Header::with_meta(&e.path, kind, &e.meta);
        h.size = size;
        h.link = link;
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
mod tests {
    use super::*;
    use tar::{EntryType, Header};

    /// Builds one layer tar with the `tar` crate, writing names verbatim.
    struct L(tar::Builder<Vec<u8>>);

    fn header(name: &[u8], kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1000);
        h
    }

    impl L {
        fn new() -> Self {
            L(tar::Builder::new(Vec::new()))
        }
        fn raw(mut self, mut h: Header, data: &[u8]) -> Self {
            h.set_cksum();
            self.0.append(&h, data).unwrap();
            self
        }
        fn file(self, name: &str, data: &str) -> Self {
            self.file_mode(name, 0o644, data)
        }
        fn file_mode(self, name: &str, mode: u32, data: &str) -> Self {
            let h = header(name.as_bytes(), EntryType::Regular, mode, data.len() as u64);
            self.raw(h, data.as_bytes())
        }
        fn dir(self, name: &str) -> Self {
            self.dir_mode(name, 0o755)
        }
        fn dir_mode(self, name: &str, mode: u32) -> Self {
            let h = header(name.as_bytes(), EntryType::Directory, mode, 0);
            self.raw(h, b"")
        }
        fn link(self, kind: EntryType, mode: u32, name: &str, target: &str) -> Self {
            let mut h = header(name.as_bytes(), kind, mode, 0);
            h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            self.raw(h, b"")
        }
        fn symlink(self, name: &str, target: &str) -> Self {
            self.link(EntryType::Symlink, 0o777, name, target)
        }
        fn hardlink(self, name: &str, target: &str) -> Self {
            self.link(EntryType::Link, 0o644, name, target)
        }
        fn wh(self, name: &str) -> Self {
            self.file(name, "")
        }
        fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
            self.0
                .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
                .unwrap();
            self
        }
        fn done(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    fn flat(layers: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        flatten(layers, &mut out, &FlattenOptions::default()).unwrap();
        out
    }

    fn err(layers: &[Vec<u8>]) -> FlattenError {
        flatten(layers, io::sink(), &FlattenOptions::default()).unwrap_err()
    }

    /// One line per output entry, in order, read back with our reader:
    /// `<type> <path> <mode> <uid>:<gid> [<content> | -> <symlink> | => <hardlink>]`.
    const BLOCK: usize = 512;

    fn listing(tar: &[u8]) -> Vec<String> {
        assert_eq!(tar.len() % BLOCK, 0);
        assert!(tar.ends_with(&[0; 2 * BLOCK]), "ends with two zero blocks");
        let mut r = Reader::new(tar);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let path = String::from_utf8_lossy(&e.path).into_owned();
            let link = String::from_utf8_lossy(&e.link).into_owned();
            let m = &e.meta;
            let head = format!("{path} {:04o} {}:{}", m.mode, m.uid, m.gid);
            out.push(match e.kind.typeflag() {
                b'0' => {
                    let mut data = Vec::new();
                    r.content().read_to_end(&mut data).unwrap();
                    format!("f {head} ={}", String::from_utf8_lossy(&data))
                }
                b'1' => format!("h {head} => {link}"),
                b'2' => format!("l {head} -> {link}"),
                b'3' => format!("c {head} {},{}", e.devmajor, e.devminor),
                b'4' => format!("b {head} {},{}", e.devmajor, e.devminor),
                b'5' => format!("d {head}"),
                b'6' => format!("p {head}"),
                t => panic!("unexpected type {t}"),
            });
        }
        // Nothing after the end marker but its second block.
        assert_eq!(r.position() as usize, tar.len() - BLOCK);
        out
    }

    fn check(layers: &[Vec<u8>], want: &[&str]) {
        let got = listing(&flat(layers));
        assert_eq!(got, want, "\n got: {got:#?}\nwant: {want:#?}");
    }

    #[test]
    fn basic_types_modes_and_order() {
        let mut dev = header(b"dev/null", EntryType::Char, 0o666, 0);
        dev.set_device_major(1).unwrap();
        dev.set_device_minor(3).unwrap();
        let mut blk = header(b"dev/sda", EntryType::Block, 0o660, 0);
        blk.set_device_major(8).unwrap();
        blk.set_device_minor(0).unwrap();
        let l0 = L::new()
            .dir("bin/")
            .file_mode("bin/su", 0o4755, "su")
            .dir_mode("tmp/", 0o1777)
            .dir_mode("shared/", 0o2775)
            .symlink("bin/sh", "busybox")
            .raw(dev, b"")
            .raw(blk, b"")
            .raw(header(b"run/fifo", EntryType::Fifo, 0o600, 0), b"")
            .done();
        check(
            &[l0],
            &[
                "d bin/ 0755 0:0",
                "d shared/ 2775 0:0",
                "d tmp/ 1777 0:0",
                "f bin/su 4755 0:0 =su",
                "l bin/sh 0777 0:0 -> busybox",
                "c dev/null 0666 0:0 1,3",
                "b dev/sda 0660 0:0 8,0",
                "p run/fifo 0600 0:0",
            ],
        );
    }

    #[test]
    fn owner_names_and_mtime_are_kept() {
        let mut h = header(b"f", EntryType::Regular, 0o640, 1);
        h.set_uid(1000);
        h.set_gid(50);
        h.set_username("alice").unwrap();
        h.set_groupname("staff").unwrap();
        h.set_mtime(1_700_000_000);
        let out = flat(&[L::new().raw(h, b"x").done()]);
        let tree = final_tree(&[out][..], &FlattenOptions::default()).unwrap();
        let m = &tree.to_vec()[0].meta;
        assert_eq!(
            (m.uid, m.gid, &m.uname[..], &m.gname[..]),
            (1000, 50, &b"alice"[..], &b"staff"[..])
        );
        assert_eq!(
            m.mtime,
            Mtime {
                seconds: 1_700_000_000,
                nanos: 0
            }
        );
    }

    #[test]
    fn hardlink_to_lower_layer_file() {
        let l0 = L::new().dir("a/").file("a/f", "one").done();
        let l1 = L::new()
            .hardlink("b", "a/f")
            .hardlink("./a/g", "/a/f")
            .done();
        check(
            &[l0, l1],
            &[
                "d a/ 0755 0:0",
                "f a/f 0644 0:0 =one",
                "h a/g 0644 0:0 => a/f",
                "h b 0644 0:0 => a/f",
            ],
        );
    }

    #[test]
    fn hardlink_keeps_content_when_original_is_deleted() {
        let l0 = L::new().file("z", "old").hardlink("a", "z").done();
        let l1 = L::new().wh(".wh.z").done();
        check(&[l0, l1], &["f a 0644 0:0 =old"]);
    }

    #[test]
    fn hardlink_keeps_content_when_original_is_replaced() {
        let l0 = L::new().file("a", "old").hardlink("b", "a").done();
        let l1 = L::new().file("a", "new").done();
        check(&[l0, l1], &["f b 0644 0:0 =old", "f a 0644 0:0 =new"]);
        // Same within one layer: the link was made before the replacement.
        let l0 = L::new()
            .file("a", "old")
            .hardlink("b", "a")
            .file("a", "new")
            .done();
        check(&[l0], &["f b 0644 0:0 =old", "f a 0644 0:0 =new"]);
    }

    #[test]
    fn hardlink_header_attributes_apply_to_the_inode() {
        let l0 = L::new().file("a", "x").done();
        let l1 = L::new().link(EntryType::Link, 0o777, "b", "a").done();
        check(&[l0, l1], &["f a 0777 0:0 =x", "h b 0777 0:0 => a"]);
    }

    #[test]
    fn hardlink_errors() {
        let e = err(&[L::new().hardlink("b", "missing").done()]);
        assert!(
            matches!(
                e,
                FlattenError::HardlinkTarget {
                    layer: 0,
                    index: 0,
                    reason: "does not exist",
                    ..
                }
            ),
            "{e}"
        );
        let e = err(&[L::new().dir("d/").hardlink("b", "d").done()]);
        assert!(
            matches!(
                e,
                FlattenError::HardlinkTarget {
                    index: 1,
                    reason: "is a directory",
                    ..
                }
            ),
            "{e}"
        );
        let e = err(&[L::new().file("a", "").hardlink("b", "../a").done()]);
        assert!(
            matches!(
                e,
                FlattenError::Escape {
                    what: "hard link target",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn opaque_dir_applies_to_lower_layers_wherever_it_sits() {
        let l0 = L::new()
            .dir("d/")
            .file("d/old", "1")
            .dir("d/sub/")
            .file("d/sub/deep", "2")
            .done();
        for l1 in [
            L::new()
                .dir_mode("d/", 0o700)
                .wh("d/.wh..wh..opq")
                .file("d/new", "3")
                .done(),
            L::new()
                .dir_mode("d/", 0o700)
                .file("d/new", "3")
                .wh("d/.wh..wh..opq")
                .done(),
        ] {
            check(&[l0.clone(), l1], &["d d/ 0700 0:0", "f d/new 0644 0:0 =3"]);
        }
        // A same-layer subdirectory survives, its lower children do not.
        let l1 = L::new()
            .dir("d/sub/")
            .file("d/sub/x", "4")
            .wh("d/.wh..wh..opq")
            .done();
        check(
            &[l0, l1],
            &[
                "d d/ 0755 0:0",
                "d d/sub/ 0755 0:0",
                "f d/sub/x 0644 0:0 =4",
            ],
        );
    }

    #[test]
    fn whiteouts() {
        let l0 = L::new()
            .dir("d/")
            .file("d/a", "1")
            .dir("d/e/")
            .file("d/e/b", "2")
            .file("keep", "k")
            .done();
        // Whole directory.
        check(
            &[l0.clone(), L::new().wh(".wh.d").done()],
            &["f keep 0644 0:0 =k"],
        );
        // One file; a whiteout of something missing (or below a file) does nothing.
        let l1 = L::new()
            .wh("d/.wh.a")
            .wh("nope/.wh.x")
            .wh("keep/.wh.y")
            .wh(".wh.ghost")
            .done();
        check(
            &[l0.clone(), l1],
            &[
                "d d/ 0755 0:0",
                "d d/e/ 0755 0:0",
                "f d/e/b 0644 0:0 =2",
                "f keep 0644 0:0 =k",
            ],
        );
        // Whiteouts never hide entries of their own layer, before or after them.
        let l1 = L::new()
            .file("d/n1", "n")
            .wh(".wh.d")
            .dir("d/")
            .file("d/n2", "m")
            .done();
        check(
            &[l0, l1],
            &[
                "d d/ 0755 0:0",
                "f keep 0644 0:0 =k",
                "f d/n1 0644 0:0 =n",
                "f d/n2 0644 0:0 =m",
            ],
        );
    }

    #[test]
    fn type_changes() {
        let l0 = L::new()
            .dir("dir2file/")
            .file("dir2file/x", "x")
            .file("file2dir", "f")
            .symlink("link2dir", "/elsewhere")
            .dir_mode("merge/", 0o700)
            .file("merge/old", "o")
            .done();
        let l1 = L::new()
            .file("dir2file", "now a file")
            .dir("file2dir/")
            .file("file2dir/y", "y")
            .dir("link2dir/")
            .dir_mode("merge/", 0o750)
            .file("merge/new", "n")
            .done();
        check(
            &[l0, l1],
            &[
                "d file2dir/ 0755 0:0",
                "d link2dir/ 0755 0:0",
                "d merge/ 0750 0:0",
                "f merge/old 0644 0:0 =o",
                "f dir2file 0644 0:0 =now a file",
                "f file2dir/y 0644 0:0 =y",
                "f merge/new 0644 0:0 =n",
            ],
        );
    }

    #[test]
    fn duplicate_paths_last_wins() {
        let l0 = L::new()
            .file("a", "first")
            .file_mode("a", 0o600, "second")
            .dir_mode("d/", 0o700)
            .dir("d/")
            .done();
        check(&[l0], &["d d/ 0755 0:0", "f a 0600 0:0 =second"]);
    }

    #[test]
    fn names_are_normalized() {
        let l0 = L::new()
            .dir("./a/")
            .file("/a/b", "1")
            .file("a//c", "2")
            .file("./x/../d", "3")
            .dir("./")
            .done();
        check(
            &[l0],
            &[
                "d a/ 0755 0:0",
                "f a/b 0644 0:0 =1",
                "f a/c 0644 0:0 =2",
                "f d 0644 0:0 =3",
            ],
        );
    }

    #[test]
    fn escapes_are_refused() {
        for name in ["../x", "/../x", "a/../../x"] {
            let l1 = L::new().file("ok", "").file(name, "evil").done();
            let e = err(&[L::new().done(), l1]);
            match &e {
                FlattenError::Escape {
                    layer: 1,
                    index: 1,
                    path,
                    what: "name",
                    ..
                } => assert_eq!(path, name),
                _ => panic!("{name}: {e}"),
            }
            assert!(
                e.to_string().contains("layer 1") && e.to_string().contains(name),
                "{e}"
            );
        }
    }

    #[test]
    fn whiteout_names() {
        for name in [".wh.", "d/.wh..", ".wh..."] {
            let e = err(&[L::new().wh(name).done()]);
            assert!(
                matches!(
                    e,
                    FlattenError::InvalidWhiteout {
                        layer: 0,
                        index: 0,
                        ..
                    }
                ),
                "{name}: {e}"
            );
        }
        // Other AUFS metadata is skipped.
        let l0 = L::new()
            .dir(".wh..wh.plnk/")
            .wh(".wh..wh..tmp")
            .file("d/.wh..wh.aufs", "")
            .file("a", "1")
            .done();
        let tree = final_tree(&[l0.clone()][..], &FlattenOptions::default()).unwrap();
        assert_eq!(tree.layers[0].skipped, 3);
        check(&[l0], &["f a 0644 0:0 =1"]);
        // A whiteout-looking parent is an ordinary directory name, as in docker.
        check(
            &[L::new().file("d/.wh.x/y", "1").done()],
            &["f d/.wh.x/y 0644 0:0 =1"],
        );
    }

    #[test]
    fn aufs_plnk_hardlinks() {
        let l0 = L::new()
            .file(".wh..wh.plnk/123.456", "shared")
            .hardlink("a", ".wh..wh.plnk/123.456")
            .hardlink("b", "/.wh..wh.plnk/123.456")
            .done();
        check(&[l0], &["f a 0644 0:0 =shared", "h b 0644 0:0 => a"]);
    }

    #[test]
    fn parent_symlinks_are_followed_inside_the_root() {
        let l0 = L::new()
            .dir("usr/")
            .dir("usr/lib/")
            .symlink("lib", "usr/lib")
            .symlink("abs", "/usr")
            .done();
        let l1 = L::new()
            .file("lib/a", "1")
            .file("abs/lib/b", "2")
            .wh("lib/.wh.gone")
            .done();
        check(
            &[l0, l1],
            &[
                "d usr/ 0755 0:0",
                "d usr/lib/ 0755 0:0",
                "l lib 0777 0:0 -> usr/lib",
                "l abs 0777 0:0 -> /usr",
                "f usr/lib/a 0644 0:0 =1",
                "f usr/lib/b 0644 0:0 =2",
            ],
        );
        let e = err(&[L::new()
            .symlink("a", "b")
            .symlink("b", "a")
            .file("a/x", "")
            .done()]);
        assert!(
            matches!(e, FlattenError::SymlinkLoop { index: 2, .. }),
            "{e}"
        );
        let e = err(&[L::new().file("f", "").file("f/x", "").done()]);
        assert!(
            matches!(e, FlattenError::NotADirectory { index: 1, .. }),
            "{e}"
        );
    }

    #[test]
    fn long_names_big_ids_subsecond_mtime_and_xattrs() {
        let long_dir = "d".repeat(120);
        let long = format!("{long_dir}/{}", "n".repeat(120));
        let mut gnu = Header::new_gnu();
        gnu.set_entry_type(EntryType::Regular);
        gnu.set_size(4);
        gnu.set_mode(0o644);
        gnu.set_mtime(5);
        let mut b = tar::Builder::new(Vec::new());
        // GNU long name (`././@LongLink`) and long link name.
        b.append_data(&mut gnu, &long, &b"gnu!"[..]).unwrap();
        let mut sym = Header::new_gnu();
        sym.set_entry_type(EntryType::Symlink);
        sym.set_size(0);
        b.append_link(&mut sym, "sym", &long).unwrap();
        let l0 = b.into_inner().unwrap();
        let xattr: &[u8] = b"\x01\n\x00\xff";
        let l1 = L::new()
            .pax(&[
                ("path", format!("{long_dir}/pax").as_bytes()),
                ("uid", b"718322462"),
                ("gid", b"4000000"),
                ("mtime", b"1700000000.123456789"),
                ("SCHILY.xattr.security.capability", xattr),
                ("SCHILY.xattr.user.a", b"1"),
                ("atime", b"1.5"),
            ])
            .file("short-name-overridden", "pax")
            .done();
        let out = flat(&[l0, l1]);
        let tree = final_tree(&[out.clone()][..], &FlattenOptions::default()).unwrap();
        let by_path = |p: &str| tree.iter().find(|e| e.path == p.as_bytes()).unwrap();
        assert_eq!(by_path(&long).kind, FinalKind::Regular { size: 4 });
        assert_eq!(
            by_path("sym").kind,
            FinalKind::Symlink {
                target: long.clone().into_bytes()
            }
        );
        let pax = by_path(&format!("{long_dir}/pax"));
        assert_eq!((pax.meta.uid, pax.meta.gid), (718_322_462, 4_000_000));
        assert_eq!(
            pax.meta.mtime,
            Mtime {
                seconds: 1_700_000_000,
                nanos: 123_456_789
            }
        );
        assert_eq!(
            pax.meta.xattrs,
            vec![
                (b"security.capability".to_vec(), xattr.to_vec()),
                (b"user.a".to_vec(), b"1".to_vec())
            ]
        );
        // The PAX header holds exactly what does not fit, sorted; atime is dropped.
        let recs: &[u8] = b"41 SCHILY.xattr.security.capability=\x01\n\x00\xff\n25 SCHILY.xattr.user.a=1\n15 gid=4000000\n30 mtime=1700000000.123456789\n";
        assert!(
            out.windows(recs.len()).any(|w| w == recs),
            "{}",
            String::from_utf8_lossy(&out).replace('\0', "")
        );
        assert!(!out.windows(5).any(|w| w == b"atime"));
        // GNU tar's listing of the same output agrees on the long names.
        let names: Vec<String> = listing(&out)
            .into_iter()
            .map(|l| l.split(' ').nth(1).unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [long.clone(), "sym".into(), format!("{long_dir}/pax")]
        );
    }

    #[test]
    fn empty_truncated_and_padded_layers() {
        let full = L::new().file("a", "1").done();
        let no_marker = full[..full.len() - 2 * BLOCK].to_vec();
        assert!(!no_marker.is_empty());
        let mut trailing = L::new().file("b", "2").done();
        trailing.extend_from_slice(b"eStargz TOC and other data after the end marker");
        check(
            &[Vec::new(), no_marker, Vec::new(), trailing],
            &["f a 0644 0:0 =1", "f b 0644 0:0 =2"],
        );
        assert_eq!(flat(&[Vec::<u8>::new()]), vec![0; 2 * BLOCK]);
        assert_eq!(flat(&[] as &[Vec<u8>]), vec![0; 2 * BLOCK]);
        // A stream cut inside an entry is an error naming the layer.
        let e = err(&[full[..BLOCK + 1].to_vec()]);
        assert!(matches!(e, FlattenError::Tar { layer: 0, .. }), "{e}");
        let mut corrupt = full.clone();
        corrupt[0] = b'b';
        let e = err(&[corrupt]);
        assert!(e.to_string().contains("checksum"), "{e}");
    }

    #[test]
    fn deterministic() {
        let l0 = L::new()
            .dir("z/")
            .file("z/1", "1")
            .file("a", "a")
            .hardlink("b", "a")
            .done();
        let l1 = L::new().file("c", "c").hardlink("0", "a").done();
        let layers = [l0, l1];
        let one = flat(&layers);
        assert_eq!(one, flat(&layers));
        check(
            &layers,
            &[
                "d z/ 0755 0:0",
                "f z/1 0644 0:0 =1",
                "f 0 0644 0:0 =a",
                "h a 0644 0:0 => 0",
                "h b 0644 0:0 => 0",
                "f c 0644 0:0 =c",
            ],
        );
    }

    #[test]
    fn layer_facts() {
        let l0 = L::new()
            .dir("d/")
            .file("d/a", "12345")
            .file("big", "xx")
            .file("dup", "1")
            .file("dup", "22")
            .done();
        let l1 = L::new()
            .wh(".wh.d")
            .file("big", "yyy")
            .file("new", "")
            .dir("e/")
            .done();
        let tree = final_tree(&[l0, l1][..], &FlattenOptions::default()).unwrap();
        let (f0, f1) = (&tree.layers[0], &tree.layers[1]);
        assert_eq!(
            (f0.entries, f0.added, f0.modified, f0.whiteouts, f0.removed),
            (5, 4, 1, 0, 0)
        );
        assert_eq!(
            (f1.entries, f1.added, f1.modified, f1.whiteouts, f1.removed),
            (4, 2, 1, 1, 2)
        );
        let hidden: Vec<(u64, &[u8], u64, usize)> = f0
            .hidden
            .iter()
            .map(|h| (h.index, &h.path[..], h.size, h.by_layer))
            .collect();
        assert_eq!(
            hidden,
            [(1, &b"d/a"[..], 5, 1), (2, b"big", 2, 1), (3, b"dup", 1, 0)]
        );
        assert!(f1.hidden.is_empty());
        let paths: Vec<Vec<u8>> = tree.iter().map(|e| e.path).collect();
        assert_eq!(paths, [&b"e"[..], b"dup", b"big", b"new"]);
        assert_eq!(
            tree.to_vec()[1].source,
            Some(EntryId { layer: 0, index: 4 })
        );
    }

    #[test]
    fn implied_parents_are_in_the_tree_but_not_written() {
        let l0 = L::new().file("a/b/c", "1").done();
        let tree = final_tree(&[l0.clone()][..], &FlattenOptions::default()).unwrap();
        assert_eq!(tree.to_vec()[0].source, None);
        assert_eq!(tree.to_vec()[0].path, b"a");
        check(&[l0], &["f a/b/c 0644 0:0 =1"]);
    }

    #[test]
    fn layer_changed_between_reads() {
        struct Flaky(std::cell::Cell<u32>);
        impl LayerSource for Flaky {
            fn layer_count(&self) -> usize {
                1
            }
            fn open_layer(&self, _: usize) -> io::Result<Box<dyn Read + '_>> {
                self.0.set(self.0.get() + 1);
                let data = if self.0.get() == 1 { "one" } else { "four" };
                Ok(Box::new(io::Cursor::new(L::new().file("a", data).done())))
            }
        }
        let e = flatten(&Flaky(0.into()), io::sink(), &FlattenOptions::default()).unwrap_err();
        assert!(
            matches!(e, FlattenError::LayerChanged { layer: 0, index: 0 }),
            "{e}"
        );
    }

    #[test]
    fn progress_reports() {
        let seen = std::cell::RefCell::new(Vec::new());
        let cb = |p: Progress| seen.borrow_mut().push((p.pass, p.layer));
        let layers = [
            L::new().file("a", "1").done(),
            L::new().symlink("b", "a").done(),
        ];
        flatten(&layers[..], io::sink(), &FlattenOptions::with_progress(&cb)).unwrap();
        assert_eq!(
            *seen.borrow(),
            [(Pass::Scan, 0), (Pass::Scan, 1), (Pass::Write, 0)]
        );
    }
}
