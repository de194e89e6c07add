//! The error type of hoist-core: every variant carries the evidence (path, digests, index).

use std::io;
use std::path::PathBuf;

use hoist_format::Digest;

/// What went wrong in a store or archive operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An I/O error while reading the input stream.
    #[error("reading {what}: {source}")]
    Read {
        /// What was being read (`the archive`, `stdin`, a layer …).
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An I/O error while writing the output stream.
    #[error("writing {what}: {source}")]
    Write {
        /// What was being written.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Content whose digest is not the one it should have.
    #[error("{what}: digest mismatch: expected {expected}, found {found}")]
    DigestMismatch {
        /// Which content.
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        found: Digest,
    },
    /// Content whose size is not the one its descriptor says.
    #[error("{what}: size mismatch: expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// Which content.
        what: String,
        /// The declared size.
        expected: u64,
        /// The actual size.
        found: u64,
    },
    /// A layer whose uncompressed digest is not the config's diff_id.
    #[error("invalid diffID for layer {index} ({path}): expected {expected}, got {found}")]
    DiffIdMismatch {
        /// 0-based layer index.
        index: usize,
        /// Where the layer came from.
        path: String,
        /// The config's diff_id.
        expected: Digest,
        /// The digest of the decompressed layer.
        found: Digest,
    },
    /// A delta archive whose left-out layers are neither in the store nor in a given base.
    #[error("{0}")]
    MissingBase(String),
    /// An archive that is not of any format hoist reads, or is inconsistent.
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    /// A malformed JSON document.
    #[error("{what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// An OCI document (index, manifest, `oci-layout`) that Go's decoder would refuse too.
    #[error("{what}: {source}")]
    OciJson {
        /// Which document.
        what: String,
        /// What is wrong with it.
        #[source]
        source: hoist_format::oci::OciJsonError,
    },
    /// JSON that Go's decoder (docker's) would refuse.
    #[error("{what}: {source}")]
    GoJson {
        /// Which document.
        what: String,
        /// What is wrong with it.
        #[source]
        source: hoist_format::gojson::GoJsonError,
    },
    /// A malformed image reference.
    #[error(transparent)]
    Reference(#[from] hoist_format::reference::ReferenceError),
    /// A string that cannot be an `org.opencontainers.image.ref.name`.
    #[error(transparent)]
    RefName(#[from] hoist_format::oci::RefNameError),
    /// A malformed digest.
    #[error(transparent)]
    Digest(#[from] hoist_format::DigestError),
    /// No image matches.
    #[error("No such image: {0}")]
    ImageNotFound(String),
    /// A short ID that matches several images.
    #[error("ambiguous image ID prefix {prefix}: matches {}", candidates.join(", "))]
    AmbiguousId {
        /// The prefix given.
        prefix: String,
        /// The IDs it matches.
        candidates: Vec<String>,
    },
    /// An operation refused for a reason given in the text.
    #[error("{0}")]
    Conflict(String),
    /// The store is damaged in a way that stops the operation.
    #[error("store {root}: {reason}")]
    Store {
        /// The store root.
        root: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A flatten (export) error.
    #[error(transparent)]
    Flatten(#[from] crate::flatten::FlattenError),
    /// Talking to hoist on another host over ssh.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    /// A split set's part is missing, corrupt or unreadable.
    #[error(transparent)]
    Parts(#[from] crate::archive::parts::PartError),
    /// An argument that names nothing usable (a bad transport, a layer number out of range).
    #[error("{0}")]
    InvalidArgument(String),
    /// A path inside an image that does not resolve (no such file, a dangling symlink, …).
    #[error(transparent)]
    Lookup(#[from] crate::view::lookup::LookupError),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
