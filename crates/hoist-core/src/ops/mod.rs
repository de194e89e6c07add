//! Operations on images: `export` and `import` (root filesystems), `analyze`, `squash` and
//! `diff` (what the layers do).

pub mod analyze;
pub mod diff;
pub mod export;
pub mod import;
pub mod squash;

use hoist_format::oci::{Descriptor, Manifest};
use hoist_format::{Digest, media_type};

/// The manifest of an image derived from `base`: its first `keep` layers, then `new_layer`,
/// with the new config (the config descriptor keeps the base's platform).
pub(crate) fn derived_manifest(
    base: &Manifest,
    keep: usize,
    new_layer: Descriptor,
    config_bytes: &[u8],
) -> Vec<u8> {
    let mut layers = base.layers[..keep].to_vec();
    layers.push(new_layer);
    let mut config = base.config.clone();
    config.media_type = media_type::OCI_CONFIG.into();
    config.digest = Digest::of(config_bytes);
    config.size = config_bytes.len() as u64;
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config,
        layers,
        annotations: None,
        extra: Default::default(),
    };
    serde_json::to_vec(&m).expect("a manifest serializes")
}
