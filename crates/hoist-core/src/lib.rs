//! hoist-core: the image store, archive readers and writers, and the operations on them.
//!
//! Everything here is synchronous and streaming: archives and layers are never held whole in
//! memory nor extracted to a temporary directory to be read back. Functions take
//! `impl Read`/`impl Write` and option structs, report progress through callbacks, never print,
//! and return [`Error`], whose variants carry the evidence (paths, expected and found digests).
//!
//! - [`store`]: the on-disk store (an OCI image layout plus hoist's own state), atomic updates,
//!   `fsck` and `gc`;
//! - [`archive`]: `load` of every archive format and `save` in three shapes;
//! - [`flatten`]: the merged filesystem of an image's layers, streamed (export, analyze, squash);
//! - [`patch`]: binary layer deltas (zstd patches against a base layer) and the choice of
//!   the base layer to patch against;
//! - [`compress`], [`hashio`]: compression sniffing and hashing plumbing;
//! - [`mount`]: a read-only FUSE mount of an image's merged tree (`hoist mount`/`umount`);
//! - [`remote`]: hoist on another host over the system `ssh` (`copy … ssh://HOST/IMAGE`).
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod archive;
pub mod blobfile;
pub mod compress;
pub mod container;
pub mod error;
pub mod flatten;
pub mod hashio;
pub mod layer;
pub mod layerindex;
pub mod mount;
pub mod ops;
pub mod patch;
pub mod pgzip;
pub mod remote;
pub mod rootfs;
pub mod seekable;
pub mod store;
pub mod tar;
pub mod view;

pub use error::{Error, Result};
pub use store::Store;

/// Manifests that must survive `gc` although no name reaches them (images of containers).
pub(crate) fn extra_roots(store: &Store) -> Result<Vec<hoist_format::Digest>> {
    container::manifests_in_use(store)
}

/// IDs of containers whose image is `image_id` (they keep it from being deleted).
pub(crate) fn containers_using(
    store: &Store,
    image_id: &hoist_format::Digest,
) -> Result<Vec<String>> {
    Ok(container::list(store)?
        .into_iter()
        .filter(|c| &c.state.image == image_id)
        .map(|c| c.state.id[..12].to_string())
        .collect())
}
