//! `analyze`: where an image's bytes go, layer by layer, and what upper layers waste.
//!
//! Definitions (exact): `total_bytes` is the sum of the sizes of all regular-file entries of
//! all layers (hard links count 0); a regular-file entry of layer k is *wasted* when a layer
//! above k replaces its path (any entry type) or deletes it (a whiteout of it or of a parent,
//! an opaque parent) — even when a hard link keeps its content alive under another name;
//! `final_bytes = total_bytes -
//! wasted_bytes`; `efficiency = final_bytes / total_bytes` (1.0 for an empty image).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Result;
use crate::flatten::{FlattenOptions, final_tree};
use crate::view::OpenedImage;

/// One layer in an [`Analysis`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LayerAnalysis {
    /// The layer's diff_id.
    pub diff_id: String,
    /// The history step that made it.
    pub created_by: String,
    /// Size of the (uncompressed) layer tar.
    pub size: u64,
    /// Paths it created.
    pub added: u64,
    /// Paths it replaced or changed.
    pub modified: u64,
    /// Lower-layer paths its whiteouts removed (descendants included).
    pub removed: u64,
    /// Bytes of its regular files whose content upper layers replace or delete.
    pub wasted_bytes: u64,
    /// Bytes of its regular files (not in the JSON: the keys are exact).
    #[serde(skip)]
    pub file_bytes: u64,
}

/// A path whose content is wasted, summed over layers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WastedPath {
    /// `/path`.
    pub path: String,
    /// Wasted bytes.
    pub bytes: u64,
    /// Wasted entries (one per layer that wrote the path before an upper layer replaced it).
    pub count: u64,
}

/// The result of [`analyze`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Analysis {
    /// The image as asked for.
    pub image: String,
    /// All regular-file bytes of all layers.
    pub total_bytes: u64,
    /// Bytes that reach the final filesystem.
    pub final_bytes: u64,
    /// Bytes that do not.
    pub wasted_bytes: u64,
    /// `final_bytes / total_bytes`.
    pub efficiency: f64,
    /// Per layer, base first.
    pub layers: Vec<LayerAnalysis>,
    /// The paths with the most wasted bytes.
    pub top_wasted: Vec<WastedPath>,
}

/// Analyzes `opened` from its layer indexes (contents are not read; a compressed layer of an
/// archive is decompressed once to count its size).
pub fn analyze(opened: &OpenedImage, name: &str, top: usize) -> Result<Analysis> {
    let tree = final_tree(opened, &FlattenOptions::default())?;
    let image = &opened.image;
    let created_by: Vec<String> = image
        .config
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| h.created_by.clone().unwrap_or_default())
        .collect();
    let mut layers = Vec::new();
    let mut by_path: BTreeMap<Vec<u8>, (u64, u64)> = BTreeMap::new();
    let mut total = 0u64;
    let mut wasted = 0u64;
    for (i, facts) in tree.layers.iter().enumerate() {
        let mut layer_waste = 0;
        for h in &facts.wasted {
            layer_waste = u64::saturating_add(layer_waste, h.size);
            let slot = by_path.entry(h.path.clone()).or_default();
            slot.0 += h.size;
            slot.1 += 1;
        }
        total = total.saturating_add(facts.file_bytes);
        wasted = wasted.saturating_add(layer_waste);
        let size = super::layer_size(opened, i)?;
        layers.push(LayerAnalysis {
            diff_id: image
                .config
                .rootfs
                .diff_ids
                .get(i)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            created_by: created_by.get(i).cloned().unwrap_or_default(),
            size,
            added: facts.added,
            modified: facts.modified,
            removed: facts.removed,
            wasted_bytes: layer_waste,
            file_bytes: facts.file_bytes,
        });
    }
    let mut top_wasted: Vec<WastedPath> = by_path
        .into_iter()
        .map(|(p, (bytes, count))| WastedPath {
            path: format!("/{}", String::from_utf8_lossy(&p)),
            bytes,
            count,
        })
        .collect();
    top_wasted.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    top_wasted.truncate(top);
    let final_bytes = total.saturating_sub(wasted);
    let efficiency = if total == 0 {
        1.0
    } else {
        final_bytes as f64 / total as f64
    };
    Ok(Analysis {
        image: name.to_string(),
        total_bytes: total,
        final_bytes,
        wasted_bytes: wasted,
        efficiency,
        layers,
        top_wasted,
    })
}
