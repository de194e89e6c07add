//! The one error type of the tar reader: which entry, where in the stream, what is wrong.

use std::fmt;
use std::io;

/// Bytes of a name quoted in a message: enough to recognise it, bounded so a hostile 1 MiB
/// name cannot make a 1 MiB message.
const SHOWN_NAME_BYTES: usize = 200;

/// A name as messages show it: lossy UTF-8, cut after 200 bytes with the
/// full length said.
pub fn show_name(name: &[u8]) -> String {
    if name.len() <= SHOWN_NAME_BYTES {
        return String::from_utf8_lossy(name).into_owned();
    }
    format!(
        "{}… ({} bytes)",
        String::from_utf8_lossy(&name[..SHOWN_NAME_BYTES]),
        name.len()
    )
}

/// Why a stream is not a tar hoist accepts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarErrorKind {
    /// Reading the stream failed.
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The stream ends early.
    #[error("the stream ends inside {0}")]
    Truncated(&'static str),
    /// A block whose checksum matches neither sum: not a tar header.
    #[error("invalid tar header (checksum mismatch)")]
    Checksum,
    /// A numeric header field that does not parse (or is negative where it cannot be).
    #[error("invalid tar header: bad {0} field")]
    Field(&'static str),
    /// A PAX or GNU long-name header or a sparse map over its limit (Go: "archive/tar: header
    /// field too long").
    #[error("{what} of {size} bytes is over the {limit}-byte limit (header field too long)")]
    TooLong {
        /// `"PAX header"`, `"GNU long name"`, `"sparse map"`.
        what: &'static str,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A malformed PAX record.
    #[error("invalid PAX header: {0}")]
    Pax(&'static str),
    /// A sparse file whose real size is over [`super::MAX_SPARSE_SIZE`].
    #[error("sparse file of {size} bytes is over the {limit}-byte limit")]
    SparseTooBig {
        /// Its claimed real size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A name or link target longer than `PATH_MAX`.
    #[error("{what} of {len} bytes is longer than {limit} bytes (file name too long)")]
    NameTooLong {
        /// `"name"` or `"link target"`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// An old GNU sparse entry (type `S`), which docker refuses.
    #[error("old GNU sparse file (type 'S'): unsupported, as in docker")]
    OldGnuSparse,
    /// A PAX sparse file whose map is invalid or does not match its data.
    #[error("invalid sparse file: {0}")]
    Sparse(&'static str),
}

/// A tar stream error: the entry (its index, counting extension headers into the entry they
/// describe, and its name when known), the byte offset in the stream, and the cause.
#[derive(Debug)]
pub struct TarError {
    /// Index of the entry being read.
    pub index: u64,
    /// The entry's name (shortened by [`show_name`]), when it was read.
    pub name: Option<String>,
    /// Offset in the (uncompressed) stream where the problem was seen.
    pub offset: u64,
    /// What is wrong.
    pub kind: TarErrorKind,
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}", self.index)?;
        if let Some(n) = &self.name {
            write!(f, " {n:?}")?;
        }
        write!(f, " (byte {}): {}", self.offset, self.kind)
    }
}

impl std::error::Error for TarError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            TarErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl TarError {
    /// Whether the stream could not be read (as opposed to holding a bad tar).
    pub fn is_io(&self) -> bool {
        matches!(self.kind, TarErrorKind::Io(_))
    }
}

impl From<TarError> for io::Error {
    fn from(e: TarError) -> io::Error {
        match e.kind {
            TarErrorKind::Io(inner) => inner,
            _ => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut() {
        assert_eq!(show_name(b"etc/passwd"), "etc/passwd");
        let long = vec![b'a'; 1 << 20];
        let s = show_name(&long);
        assert!(s.len() < 220, "{}", s.len());
        assert!(s.ends_with("… (1048576 bytes)"));
    }
}
