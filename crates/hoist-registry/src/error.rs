//! The error type of hoist-registry: every variant names the registry, the repository and what
//! was asked, so that a message alone says what was refused and by whom.

use hoist_format::Digest;

/// What went wrong talking to a registry, or pulling into / pushing from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry answered 401: no credentials, or credentials it does not accept.
    #[error(
        "{registry}: unauthorized: {what} in repository {repository} requires authentication{}",
        detail_suffix(detail)
    )]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The repository path.
        repository: String,
        /// What was asked (`manifest 1`, `blob sha256:…`, `upload`).
        what: String,
        /// The registry's own explanation, if it gave one.
        detail: String,
    },
    /// The registry answered 403: authenticated, but not allowed.
    #[error(
        "{registry}: denied: {what} in repository {repository}{}",
        detail_suffix(detail)
    )]
    Denied {
        /// The registry host.
        registry: String,
        /// The repository path.
        repository: String,
        /// What was asked.
        what: String,
        /// The registry's own explanation, if it gave one.
        detail: String,
    },
    /// The registry answered 404: no such manifest, tag, blob or repository.
    #[error(
        "{registry}: not found: {what} in repository {repository}{}",
        detail_suffix(detail)
    )]
    NotFound {
        /// The registry host.
        registry: String,
        /// The repository path.
        repository: String,
        /// What was asked.
        what: String,
        /// The registry's own explanation, if it gave one.
        detail: String,
    },
    /// Any other unexpected HTTP status (after retries, for 5xx).
    #[error(
        "{registry}: {what} in repository {repository}: unexpected HTTP status {status}{}",
        detail_suffix(detail)
    )]
    Status {
        /// The registry host.
        registry: String,
        /// The repository path.
        repository: String,
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's own explanation, if it gave one.
        detail: String,
    },
    /// The connection failed (after retries).
    #[error("{registry}: {what}")]
    Transport {
        /// The registry host (or the token server).
        registry: String,
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// Reading a response body failed (after retries).
    #[error("{registry}: reading {what}")]
    Read {
        /// The registry host.
        registry: String,
        /// What was being read.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading the blob being uploaded failed (the store, an archive or the source registry
    /// of a copy): not the destination's fault, and not retried.
    #[error("{what}: reading what is sent")]
    Source {
        /// What was being sent.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A certificate file or directory that cannot be used.
    #[error("{}: {reason}", path.display())]
    Certs {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A credentials file (docker's `config.json`) that cannot be read or written, or a
    /// credential helper that failed.
    #[error("{}: {reason}", path.display())]
    AuthFile {
        /// The file (or the helper program).
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The authentication challenge or the token server's answer could not be used.
    #[error("{registry}: authentication: {reason}")]
    Auth {
        /// The registry host.
        registry: String,
        /// What is wrong.
        reason: String,
    },
    /// Content whose digest is not the one it should have.
    #[error("{what}: digest mismatch: expected {expected}, found {found}")]
    DigestMismatch {
        /// Which content, with the registry and repository.
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        found: Digest,
    },
    /// Content whose size is not the one its descriptor says.
    #[error("{what}: size mismatch: expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// Which content, with the registry and repository.
        what: String,
        /// The declared size.
        expected: u64,
        /// The actual size (at least; reading stops one byte past the declared size).
        found: u64,
    },
    /// A manifest or index the registry sent that hoist cannot use.
    #[error("{what}: {reason}")]
    InvalidManifest {
        /// Which manifest, with the registry and repository.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// An index without an image for the wanted platform.
    #[error("{what} has no image for platform {wanted} (available: {})", available.join(", "))]
    NoPlatform {
        /// Which index, with the registry and repository.
        what: String,
        /// The platform asked for.
        wanted: String,
        /// The platforms the index has.
        available: Vec<String>,
    },
    /// A reference that cannot be used for this operation.
    #[error("{0}")]
    Reference(String),
    /// A store error (reading an image to push, staging or committing a pull).
    #[error(transparent)]
    Store(#[from] hoist_core::Error),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
