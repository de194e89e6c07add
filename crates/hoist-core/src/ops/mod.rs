//! Operations on images: `export` and `import` (root filesystems), `analyze`, `squash` and
//! `diff` (what the layers do). `export`, `analyze` and `diff` read an [`OpenedImage`]: an
//! image of the store, or of an archive or layout read in place (nothing is written).

pub mod analyze;
pub mod diff;
pub mod export;
pub mod import;
pub mod squash;

use hoist_format::gojson::{self, RawMap};
use hoist_format::oci::{Descriptor, Manifest};
use hoist_format::{Digest, media_type};

use crate::error::{Error, Result};
use crate::view::OpenedImage;

/// The size of layer `layer` of `image` uncompressed, as `images`, `inspect`, `history` and
/// `analyze` show it: an uncompressed layer's blob size; else, for the store, the size it
/// remembered when the layer came in (counted and remembered now if it did not); for an
/// archive, its decompressed bytes counted (the whole stream, as a diff_id covers it).
pub fn layer_size(image: &OpenedImage, layer: usize) -> Result<u64> {
    let desc = image
        .image
        .manifest
        .layers
        .get(layer)
        .ok_or_else(|| Error::InvalidArgument(format!("{}: no layer {layer}", image.what)))?;
    if media_type::Compression::of_layer_media_type(&desc.media_type)
        == Some(media_type::Compression::None)
    {
        return Ok(desc.size);
    }
    if let Some(store) = image.store() {
        return Ok(store.layer_uncompressed(desc)?.1);
    }
    let mut r = image.layer_stream_at(layer, 0)?;
    crate::compress::drain(&mut r).map_err(|source| Error::Read {
        what: format!("{}: layer {layer} ({})", image.what, desc.digest),
        source,
    })
}

/// The size of all of `image`'s layers uncompressed ([`layer_size`] summed).
pub fn image_size(image: &OpenedImage) -> Result<u64> {
    (0..image.layers()).try_fold(0u64, |total, i| {
        Ok(total.saturating_add(layer_size(image, i)?))
    })
}

/// An image config being edited (squash, commit): its members are kept as raw JSON, so what
/// hoist does not touch (unknown keys, huge numbers, deep nesting) stays as it was; the
/// members it changes are decoded one at a time. Written as Go's `json.Marshal` of a
/// `map[string]*json.RawMessage` (keys sorted, values compacted).
pub(crate) struct ConfigEdit {
    members: RawMap,
    what: String,
}

impl ConfigEdit {
    /// Reads the config `bytes` (`what` names it in errors).
    pub(crate) fn parse(bytes: &[u8], what: String) -> Result<ConfigEdit> {
        let members = gojson::unmarshal_raw_map(bytes).map_err(|source| Error::GoJson {
            what: what.clone(),
            source,
        })?;
        Ok(ConfigEdit { members, what })
    }

    /// The member `key` decoded, `None` when absent or `null`.
    pub(crate) fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(raw) = self.members.get(key) else {
            return Ok(None);
        };
        serde_json::from_slice::<Option<T>>(raw).map_err(|source| Error::Json {
            what: format!("{}, member {key:?}", self.what),
            source,
        })
    }

    /// Sets the member `key` to `value`.
    pub(crate) fn set(&mut self, key: &str, value: &impl serde::Serialize) {
        let raw = serde_json::to_vec(value).expect("hoist's own values serialize");
        self.members.insert(key.to_owned(), raw);
    }

    /// Sets the member `key` to JSON bytes as they are.
    pub(crate) fn set_raw(&mut self, key: &str, raw: Vec<u8>) {
        self.members.insert(key.to_owned(), raw);
    }

    /// Removes the member `key`.
    pub(crate) fn remove(&mut self, key: &str) {
        self.members.remove(key);
    }

    /// The edited config's bytes.
    pub(crate) fn finish(self) -> Result<Vec<u8>> {
        gojson::marshal_raw_map(&self.members).map_err(|source| Error::GoJson {
            what: self.what,
            source,
        })
    }
}

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
