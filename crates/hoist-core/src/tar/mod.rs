//! hoist's one tar codec: [`Reader`] for every stream hoist reads (load's outer archive, layer
//! validation, create, import, export, analyze, squash, diff) and [`Writer`] for every tar it
//! writes (export, squash, commit, save), so a layer gives the same answer on every path.
//!
//! # Why hoist's own
//!
//! The reader must read exactly what docker's reader (Go's `archive/tar`) reads, refuse what it
//! refuses, and bound everything a header claims. The `tar` crate reads PAX and GNU long-name
//! headers whole without a limit, splits PAX records at newlines (breaking binary xattrs),
//! ignores PAX sparse files and expands old GNU sparse ones; `tar-core` 0.1 is a young sans-IO
//! parser whose limits and sparse handling are not Go's. The format is small (a 512-byte
//! header, PAX records, a sparse map), so owning it costs a few hundred lines and makes every
//! rule below one decision in one place.
//!
//! # Reading rules (Go's, plus hoist's limits)
//!
//! - Headers: v7 (no magic: no owner names, devices or prefix), ustar/PAX (`ustar\0`, with the
//!   155-byte prefix), star, GNU (`ustar  `); numbers in octal or GNU base-256; the checksum as
//!   unsigned or signed sum. Anything else is not a tar header.
//! - Extension headers: PAX `x` records (by declared length, binary-safe; an empty value keeps
//!   the header's; a repeated key or header: the last wins), PAX `g` global headers (their
//!   records are not applied; unlike moby, which treats a `g` entry's name as a path, hoist
//!   skips the entry), GNU `L`/`K` long names (applied after the PAX records, as Go; an empty
//!   one keeps the header's name). Extension headers that describe no entry at the end of the
//!   stream are dropped, and the stream may end inside the last entry's padding, as in Go.
//!   Each is at most [`MAX_EXTENSION_SIZE`] (1 MiB, Go's limit); more is refused before
//!   anything is allocated.
//! - Names over [`MAX_NAME_LEN`] (4096, `PATH_MAX`) and link targets over [`MAX_LINK_LEN`]
//!   (4095) are refused; a NUL inside
//!   a PAX `path`, `linkpath`, `uname` or `gname` is refused (Go). Messages quote at most 200
//!   bytes of a name ([`show_name`]).
//! - Sparse files in PAX form (GNU 0.0, 0.1, 1.0) are regular files of their real size whose
//!   holes read as zeros ([`Reader::read_content`]); their runs are in [`Entry::sparse`] so
//!   an extractor can leave holes. The map is validated as Go does and must account for the
//!   stored data exactly; a 1.0 map is at most [`MAX_SPARSE_MAP`], the real size at most
//!   [`MAX_SPARSE_SIZE`]. Old GNU sparse entries
//!   (type `S`) are refused, as docker refuses them.
//! - Link, symlink, device, fifo and directory entries carry no data whatever their size field
//!   says (Go's `isHeaderOnlyType`).
//! - The archive ends at the first zero block or at the end of the stream; what follows a zero
//!   block is not read (Go would refuse a zero block followed by a header: hoist is lenient
//!   there, as it is with NUL padding inside PAX data).
//!
//! # Writing
//!
//! [`Writer`] writes Go's shape (`docker export`): ustar headers, PAX records only for values
//! that do not fit, a trailer of two zero blocks. The same entries always give the same bytes.

mod error;
mod header;
mod pax;
mod reader;
mod sparse;
mod writer;

pub use error::{TarError, TarErrorKind, show_name};
pub use reader::{Content, Reader};
pub use sparse::Fragment;
pub use writer::{Header, Writer};

/// Largest PAX or GNU long-name header read: Go's `maxSpecialFileSize`. Real ones are a few
/// hundred bytes (xattrs with ACLs a few KiB); docker refuses larger ones.
pub const MAX_EXTENSION_SIZE: u64 = 1 << 20;
/// Longest name: Linux's `PATH_MAX`. docker applies a layer with whole paths, so it fails on
/// longer ones ("file name too long"); hoist refuses them on every path.
pub const MAX_NAME_LEN: usize = 4096;
/// Longest link target: `PATH_MAX` counts the terminating NUL, so `symlink(2)` takes at most
/// 4095 bytes.
pub const MAX_LINK_LEN: usize = 4095;
/// Largest real size of a sparse file. Its holes are not in the layer, but `export` writes
/// them as zeros (as `docker export` does) and docker writes them to disk when it applies the
/// layer: a few bytes of layer must not claim exabytes. 64 GiB is far beyond any file an image
/// carries.
pub const MAX_SPARSE_SIZE: u64 = 64 << 30;
/// Largest 1.0 sparse map, as Go bounds it since CVE-2022-2879.
pub const MAX_SPARSE_MAP: u64 = 1 << 20;

/// A modification time: `seconds` since the epoch (floored) plus `nanos` (0..1e9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mtime {
    /// Whole seconds, rounded towards negative infinity.
    pub seconds: i64,
    /// Nanoseconds past `seconds`.
    pub nanos: u32,
}

/// An entry's attributes, extension headers applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Permission bits including setuid, setgid and sticky (`& 0o7777`).
    pub mode: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Owner name (may be empty).
    pub uname: Vec<u8>,
    /// Group name (may be empty).
    pub gname: Vec<u8>,
    /// Modification time.
    pub mtime: Mtime,
    /// Extended attributes (`SCHILY.xattr.<name>`), sorted by name, names unique.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file (`0`, `7`, or a NUL type flag on a name without a trailing `/`).
    Regular,
    /// A directory (`5`, or a NUL type flag on a name with a trailing `/`).
    Directory,
    /// A symbolic link (`2`).
    Symlink,
    /// A hard link to an earlier entry (`1`).
    HardLink,
    /// A character device (`3`).
    CharDevice,
    /// A block device (`4`).
    BlockDevice,
    /// A named pipe (`6`).
    Fifo,
    /// Any other type flag (its data is skipped like a regular file's).
    Other(u8),
}

impl EntryKind {
    /// The type flag hoist writes for it.
    pub fn typeflag(self) -> u8 {
        match self {
            EntryKind::Regular => b'0',
            EntryKind::HardLink => b'1',
            EntryKind::Symlink => b'2',
            EntryKind::CharDevice => b'3',
            EntryKind::BlockDevice => b'4',
            EntryKind::Directory => b'5',
            EntryKind::Fifo => b'6',
            EntryKind::Other(t) => t,
        }
    }

    /// The kind of type flag `t` ([`EntryKind::typeflag`]'s inverse; the reader's special
    /// cases, `7` and a NUL flag, are its own).
    pub fn from_typeflag(t: u8) -> EntryKind {
        match t {
            b'0' => EntryKind::Regular,
            b'1' => EntryKind::HardLink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::CharDevice,
            b'4' => EntryKind::BlockDevice,
            b'5' => EntryKind::Directory,
            b'6' => EntryKind::Fifo,
            t => EntryKind::Other(t),
        }
    }

    /// Types that carry no data whatever their size field says (Go's `isHeaderOnlyType`).
    pub fn is_header_only(self) -> bool {
        !matches!(self, EntryKind::Regular | EntryKind::Other(_))
    }
}

/// One entry of a tar stream, extension headers applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Index in the stream, from 0; extension headers count with the entry they describe.
    pub index: u64,
    /// The name as written (not normalized).
    pub path: Vec<u8>,
    /// The link target (hard and symbolic links), as written.
    pub link: Vec<u8>,
    /// The type.
    pub kind: EntryKind,
    /// Attributes.
    pub meta: Metadata,
    /// Device major number (character and block devices).
    pub devmajor: u32,
    /// Device minor number.
    pub devminor: u32,
    /// Content size: a regular file's real size (holes included), 0 for header-only types.
    pub size: u64,
    /// Bytes of data stored in the stream (less than `size` for a sparse file).
    pub stored: u64,
    /// Offset of the entry's first header block in the stream (its PAX or GNU long-name
    /// header when it has one): a reader started there reads this entry first.
    pub header_offset: u64,
    /// Offset of the first stored data byte in the stream.
    pub data_offset: u64,
    /// A sparse file's stored runs; `None` for other entries.
    pub sparse: Option<Vec<Fragment>>,
}

impl Entry {
    /// Whether this is a regular file.
    pub fn is_regular(&self) -> bool {
        self.kind == EntryKind::Regular
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Directory
    }
}
