//! Pure building blocks for container image archives.
//!
//! Everything here works on bytes and strings and never touches the file system or the network,
//! so it can be fuzzed and unit-tested in isolation:
//!
//! - [`digest`]: `sha256:<hex>` digests and an incremental hasher;
//! - [`reference`](mod@reference): docker image references (`busybox` = `docker.io/library/busybox:latest`);
//! - [`media_type`]: OCI and Docker media type strings and what they say about compression;
//! - [`oci`]: descriptors, manifests, indexes, platforms (serde types that keep unknown fields);
//! - [`docker`]: `manifest.json` entries and `repositories` of docker archives;
//! - [`config`]: the parts of an image config hoist reads (rootfs, history, platform, config);
//! - [`delta`]: hoist's inventory and delta-archive description (`hoist-delta.json`);
//! - [`gojson`]: Go's `encoding/json` rules, which every reader of foreign JSON above follows
//!   (docker and containerd are Go programs: duplicate keys, `null`, case-insensitive keys, any
//!   number or nesting up to 10,000 levels in members they skip);
//! - [`legacy`]: docker v1 archives: the config docker 20.10 synthesizes on load, and v1 ids on save;
//! - [`change`]: `--change` instructions (CMD, ENV, …) applied to an image config;
//! - [`whiteout`]: the whiteout naming rules of layer tars;
//! - [`platform`]: `os/arch[/variant]` parsing and matching;
//! - [`units`]: docker's human sizes (`1.47MB`).
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]
#![deny(missing_docs)]

pub mod change;
pub mod config;
pub mod delta;
pub mod digest;
pub mod docker;
pub mod gojson;
pub mod legacy;
pub mod media_type;
pub mod oci;
pub mod platform;
pub mod reference;
pub mod units;
pub mod whiteout;

pub use digest::{Digest, DigestError, Sha256};
