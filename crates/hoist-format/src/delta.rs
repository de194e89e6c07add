//! hoist's two documents for moving only what the other side lacks:
//!
//! - an **inventory** (`hoist inventory`): what a store (or an archive) holds, image by image,
//!   each layer with its blob digest, size, diff_id and chain ID, so a machine that can only send
//!   a file back can have a delta made for it;
//! - a **delta description** (`hoist-delta.json` at the root of a delta archive): which layer
//!   blobs the archive leaves out because its base has them, and which layers it carries as
//!   zstd patches against a base layer.
//!
//! Both are hoist's own documents, written with serde and read with limits: every count is
//! bounded before anything is kept, and digests are parsed (sha256 only).

use serde::{Deserialize, Serialize};

use crate::Digest;
use crate::digest::chain_ids;

/// The file name of the delta description at the root of a delta archive.
pub const DELTA_FILE: &str = "hoist-delta.json";

/// index.json annotation naming the delta description (its presence marks a delta archive).
pub const ANNOTATION_DELTA: &str = "dev.hoist.delta";

/// index.json annotation with the base names a delta was made against, joined by ", ".
pub const ANNOTATION_DELTA_BASE: &str = "dev.hoist.delta.base";

/// index.json annotation present when a delta holds patches, which only hoist can load.
pub const ANNOTATION_DELTA_PATCHES: &str = "dev.hoist.delta.patches";

/// The version of both documents this hoist writes and reads.
pub const VERSION: u32 = 1;

/// Images an inventory may list: a store of this many images is far beyond any real one, and
/// the bound keeps a hostile file from growing memory.
pub const MAX_INVENTORY_IMAGES: usize = 100_000;

/// Layers per image: moby's own limit is 127 (overlay's lowerdir list); 1,000 leaves room.
pub const MAX_LAYERS_PER_IMAGE: usize = 1_000;

/// Names per image in an inventory.
pub const MAX_NAMES_PER_IMAGE: usize = 1_000;

/// Entries of a delta description (left-out layers plus patches): about 400 bytes each, so
/// the description stays within [`MAX_DELTA_SIZE`].
pub const MAX_DELTA_ENTRIES: usize = 50_000;

/// The size `hoist-delta.json` may have: that of any JSON document inside an archive
/// (hoist-core's `MAX_JSON_SIZE`), since it is read like the others.
pub const MAX_DELTA_SIZE: u64 = 32 * 1024 * 1024;

/// Base names recorded for one left-out layer: enough to tell the user what to load; a layer
/// shared by thousands of base images does not make the document grow with them.
pub const MAX_FROM_NAMES: usize = 8;

/// The size, in bytes, either document may have: a 100,000-image inventory is about 60 MB.
pub const MAX_DOCUMENT_SIZE: u64 = 128 * 1024 * 1024;

/// Why an inventory or a delta description is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaFormatError {
    /// Not JSON of the expected shape.
    #[error("{what}: {source}")]
    Json {
        /// Which document.
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A version this hoist does not read.
    #[error("{what}: version {found} is not supported (this hoist reads version {VERSION})")]
    Version {
        /// Which document.
        what: &'static str,
        /// The version found.
        found: u32,
    },
    /// Past one of the limits above.
    #[error("{what}: {count} {items} is more than the {limit} hoist accepts")]
    TooMany {
        /// Which document.
        what: &'static str,
        /// What was counted.
        items: &'static str,
        /// How many there are.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Inconsistent content.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which document.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}

const INVENTORY: &str = "inventory";
const DELTA: &str = "hoist-delta.json";

/// What a store (or archive) holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Always [`VERSION`]; the member's name marks the document as an inventory.
    #[serde(rename = "hoistInventory")]
    pub version: u32,
    /// The images.
    pub images: Vec<InventoryImage>,
}

/// One image of an inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryImage {
    /// The image ID (config digest).
    pub id: Digest,
    /// The manifest digest, when the holder has a manifest (a docker archive has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Digest>,
    /// Its names (`docker.io/library/app:1.0`), possibly none.
    #[serde(default)]
    pub names: Vec<String>,
    /// Its layers, bottom first.
    pub layers: Vec<InventoryLayer>,
}

/// One layer of an inventory image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryLayer {
    /// The blob as held (compressed or not), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The blob's size, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The blob's media type, when known.
    #[serde(default, rename = "mediaType", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The uncompressed layer's digest.
    #[serde(rename = "diffID")]
    pub diff_id: Digest,
    /// The chain ID of this layer on the layers below it (what docker keys layers by).
    #[serde(rename = "chainID")]
    pub chain_id: Digest,
    /// The uncompressed layer's size, when known without reading it.
    #[serde(default, rename = "diffSize", skip_serializing_if = "Option::is_none")]
    pub diff_size: Option<u64>,
    /// The history step that made the layer (`created_by`), when the config pairs one with
    /// it: what `--delta` matches a new layer with an old one by.
    #[serde(default, rename = "createdBy", skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// What [`Inventory::push_image`] is told of one layer.
#[derive(Debug, Clone, Default)]
pub struct LayerFacts {
    /// The blob: digest, size and media type, when known.
    pub blob: Option<(Digest, u64, Option<String>)>,
    /// The uncompressed size, when known.
    pub diff_size: Option<u64>,
    /// The history step's `created_by`, when known.
    pub created_by: Option<String>,
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Inventory {
        Inventory {
            version: VERSION,
            images: Vec::new(),
        }
    }

    /// Reads an inventory, checking its version, its limits and that every chain ID is the
    /// one its diff_ids give (a chain ID is what a delta is cut by: a wrong one would leave
    /// out a layer the holder does not have).
    pub fn parse(bytes: &[u8]) -> Result<Inventory, DeltaFormatError> {
        check_size(INVENTORY, bytes)?;
        let inv: Inventory =
            serde_json::from_slice(bytes).map_err(|source| DeltaFormatError::Json {
                what: INVENTORY,
                source,
            })?;
        if inv.version != VERSION {
            return Err(DeltaFormatError::Version {
                what: INVENTORY,
                found: inv.version,
            });
        }
        limit(INVENTORY, "images", inv.images.len(), MAX_INVENTORY_IMAGES)?;
        for img in &inv.images {
            limit(INVENTORY, "layers", img.layers.len(), MAX_LAYERS_PER_IMAGE)?;
            limit(INVENTORY, "names", img.names.len(), MAX_NAMES_PER_IMAGE)?;
            let diff_ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
            for (i, (l, want)) in img.layers.iter().zip(chain_ids(&diff_ids)).enumerate() {
                if l.chain_id != want {
                    return Err(DeltaFormatError::Invalid {
                        what: INVENTORY,
                        reason: format!(
                            "image {} layer {i}: chainID {} is not the chain of its diffIDs ({want})",
                            img.id, l.chain_id
                        ),
                    });
                }
            }
        }
        Ok(inv)
    }

    /// The document's bytes (pretty-printed: it is small and read by people too).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(self).expect("an inventory always serializes");
        b.push(b'\n');
        b
    }

    /// Adds an image, computing its layers' chain IDs from the diff_ids; `facts` tells what
    /// else is known of each layer (missing entries: nothing).
    pub fn push_image(
        &mut self,
        id: Digest,
        manifest: Option<Digest>,
        names: Vec<String>,
        diff_ids: &[Digest],
        facts: &[LayerFacts],
    ) {
        let layers = diff_ids
            .iter()
            .zip(chain_ids(diff_ids))
            .enumerate()
            .map(|(i, (diff_id, chain_id))| {
                let f = facts.get(i).cloned().unwrap_or_default();
                InventoryLayer {
                    digest: f.blob.as_ref().map(|b| b.0.clone()),
                    size: f.blob.as_ref().map(|b| b.1),
                    media_type: f.blob.and_then(|b| b.2),
                    diff_id: diff_id.clone(),
                    chain_id,
                    diff_size: f.diff_size,
                    created_by: f.created_by,
                }
            })
            .collect();
        self.images.push(InventoryImage {
            id,
            manifest,
            names,
            layers,
        });
    }

    /// Adds every image of `other` not already listed (by image ID and manifest).
    pub fn merge(&mut self, other: Inventory) {
        for img in other.images {
            match self
                .images
                .iter_mut()
                .find(|i| i.id == img.id && i.manifest == img.manifest)
            {
                Some(i) => {
                    for n in img.names {
                        if !i.names.contains(&n) {
                            i.names.push(n);
                        }
                    }
                }
                None => self.images.push(img),
            }
        }
    }
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory::new()
    }
}

impl InventoryImage {
    /// How the image is named in messages: its first name, else its ID.
    pub fn label(&self) -> String {
        self.names
            .first()
            .cloned()
            .unwrap_or_else(|| self.id.to_string())
    }
}

/// The description of a delta archive (`hoist-delta.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaManifest {
    /// Always [`VERSION`]; the member's name marks the document.
    #[serde(rename = "hoistDelta")]
    pub version: u32,
    /// What the delta was made against, as the user named it (image names, files).
    pub base: Vec<String>,
    /// The base images holding what is left out or patched against: an `omitted` entry's
    /// `from` names them by their labels (see [`InventoryImage::label`]).
    #[serde(default, rename = "baseImages")]
    pub base_images: Vec<DeltaBase>,
    /// Layer blobs left out because the base has them.
    #[serde(default)]
    pub omitted: Vec<OmittedBlob>,
    /// Layers carried as zstd patches against a base layer.
    #[serde(default)]
    pub patches: Vec<PatchedBlob>,
}

/// A base image a delta relies on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaBase {
    /// How `from` names it: its first name, else its ID.
    pub label: String,
    /// Its image ID.
    pub id: Digest,
}

/// A layer blob a delta leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OmittedBlob {
    /// The blob the manifests name.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The uncompressed layer's digest.
    #[serde(rename = "diffID")]
    pub diff_id: Digest,
    /// Its chain ID in the image that has it.
    #[serde(rename = "chainID")]
    pub chain_id: Digest,
    /// The base images holding it (names, or IDs of unnamed ones), at most [`MAX_FROM_NAMES`].
    #[serde(default)]
    pub from: Vec<String>,
}

/// A layer a delta carries as a zstd patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchedBlob {
    /// The blob the manifests name.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The uncompressed layer's digest, checked after the patch is applied.
    #[serde(rename = "diffID")]
    pub diff_id: Digest,
    /// The uncompressed layer's size.
    #[serde(rename = "diffSize")]
    pub diff_size: u64,
    /// Where the patch is in the archive (`blobs/sha256/<hex>`).
    pub patch: String,
    /// The patch's digest.
    #[serde(rename = "patchDigest")]
    pub patch_digest: Digest,
    /// The patch's size.
    #[serde(rename = "patchSize")]
    pub patch_size: u64,
    /// The base layer the patch applies to (uncompressed).
    pub reference: PatchReference,
    /// The base images holding the reference, at most [`MAX_FROM_NAMES`].
    #[serde(default)]
    pub from: Vec<String>,
}

/// The base layer a patch was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchReference {
    /// Its blob as the base holds it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The uncompressed layer's digest: what the patch is applied to.
    #[serde(rename = "diffID")]
    pub diff_id: Digest,
    /// The uncompressed layer's size.
    #[serde(rename = "diffSize")]
    pub diff_size: u64,
}

impl DeltaManifest {
    /// An empty description against `base`.
    pub fn new(base: Vec<String>) -> DeltaManifest {
        DeltaManifest {
            version: VERSION,
            base,
            base_images: Vec::new(),
            omitted: Vec::new(),
            patches: Vec::new(),
        }
    }

    /// Whether the delta leaves nothing out.
    pub fn is_empty(&self) -> bool {
        self.omitted.is_empty() && self.patches.is_empty()
    }

    /// Reads `hoist-delta.json`, checking its version, limits and patch paths.
    pub fn parse(bytes: &[u8]) -> Result<DeltaManifest, DeltaFormatError> {
        check_size(DELTA, bytes)?;
        if bytes.len() as u64 > MAX_DELTA_SIZE {
            return Err(DeltaFormatError::Invalid {
                what: DELTA,
                reason: format!(
                    "{} bytes is more than the {MAX_DELTA_SIZE} hoist accepts",
                    bytes.len()
                ),
            });
        }
        let d: DeltaManifest =
            serde_json::from_slice(bytes).map_err(|source| DeltaFormatError::Json {
                what: DELTA,
                source,
            })?;
        if d.version != VERSION {
            return Err(DeltaFormatError::Version {
                what: DELTA,
                found: d.version,
            });
        }
        limit(
            DELTA,
            "entries",
            d.omitted.len() + d.patches.len() + d.base_images.len(),
            MAX_DELTA_ENTRIES,
        )?;
        for from in d
            .omitted
            .iter()
            .map(|o| &o.from)
            .chain(d.patches.iter().map(|p| &p.from))
        {
            limit(DELTA, "base names of one layer", from.len(), MAX_FROM_NAMES)?;
        }
        for p in &d.patches {
            if p.patch != patch_path(&p.patch_digest) {
                return Err(DeltaFormatError::Invalid {
                    what: DELTA,
                    reason: format!(
                        "the patch of {} is at {:?}, not at blobs/sha256/<its digest>",
                        p.digest, p.patch
                    ),
                });
            }
        }
        Ok(d)
    }

    /// The document's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(self).expect("a delta description serializes");
        b.push(b'\n');
        b
    }
}

/// Where a patch of digest `d` is kept in a delta archive.
pub fn patch_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn check_size(what: &'static str, bytes: &[u8]) -> Result<(), DeltaFormatError> {
    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
        return Err(DeltaFormatError::Invalid {
            what,
            reason: format!(
                "{} bytes is more than the {MAX_DOCUMENT_SIZE} hoist accepts",
                bytes.len()
            ),
        });
    }
    Ok(())
}

fn limit(
    what: &'static str,
    items: &'static str,
    count: usize,
    limit: usize,
) -> Result<(), DeltaFormatError> {
    if count > limit {
        return Err(DeltaFormatError::TooMany {
            what,
            items,
            count,
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn inventory_round_trips_and_computes_chain_ids() {
        let mut inv = Inventory::new();
        inv.push_image(
            d(9),
            Some(d(8)),
            vec!["docker.io/library/app:1.0".into()],
            &[d(1), d(2)],
            &[LayerFacts {
                blob: Some((
                    d(3),
                    10,
                    Some("application/vnd.oci.image.layer.v1.tar".into()),
                )),
                diff_size: Some(10),
                created_by: Some("COPY x /".into()),
            }],
        );
        let back = Inventory::parse(&inv.to_bytes()).unwrap();
        assert_eq!(back, inv);
        let chains = chain_ids(&[d(1), d(2)]);
        assert_eq!(back.images[0].layers[1].chain_id, chains[1]);
        assert_eq!(back.images[0].layers[0].chain_id, d(1));
        assert_eq!(back.images[0].layers[1].digest, None);
    }

    #[test]
    fn inventory_refuses_a_wrong_chain_id_and_other_versions() {
        let mut inv = Inventory::new();
        inv.push_image(d(9), None, vec![], &[d(1), d(2)], &[]);
        inv.images[0].layers[1].chain_id = d(2);
        let e = Inventory::parse(&inv.to_bytes()).unwrap_err().to_string();
        assert!(e.contains("layer 1: chainID"), "{e}");
        let e = Inventory::parse(br#"{"hoistInventory":2,"images":[]}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "inventory: version 2 is not supported (this hoist reads version 1)"
        );
        let e = Inventory::parse(br#"{"hoistDelta":1}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("inventory: missing field `hoistInventory`"),
            "{e}"
        );
    }

    #[test]
    fn delta_manifest_checks_patch_paths() {
        let mut m = DeltaManifest::new(vec!["app:1.0".into()]);
        m.patches.push(PatchedBlob {
            digest: d(1),
            size: 5,
            diff_id: d(1),
            diff_size: 5,
            patch: patch_path(&d(2)),
            patch_digest: d(2),
            patch_size: 3,
            reference: PatchReference {
                digest: None,
                diff_id: d(3),
                diff_size: 7,
            },
            from: vec!["app:1.0".into()],
        });
        assert_eq!(DeltaManifest::parse(&m.to_bytes()).unwrap(), m);
        m.patches[0].patch = "../../etc/passwd".into();
        let e = DeltaManifest::parse(&m.to_bytes()).unwrap_err().to_string();
        assert!(e.contains("not at blobs/sha256/<its digest>"), "{e}");
    }
}
