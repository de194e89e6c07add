//! Docker archive metadata: `manifest.json` entries and the `repositories` file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of `manifest.json` (moby `tarexport.manifestItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// Path of the config inside the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// Familiar or fully qualified `name:tag` strings; `null` for untagged images.
    #[serde(rename = "RepoTags")]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer files inside the archive, base first.
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
    /// The parent image ID, when the parent was saved too.
    #[serde(rename = "Parent", default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Descriptors of foreign layers, keyed by diff_id.
    #[serde(
        rename = "LayerSources",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub layer_sources: Option<BTreeMap<String, serde_json::Value>>,
}

/// Why `manifest.json` cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// `null` instead of an array (moby refuses it the same way).
    #[error("manifest.json is null (an archive with no images must have [])")]
    Null,
    /// Not JSON of the expected shape.
    #[error("manifest.json is not a valid docker archive manifest: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parses `manifest.json`.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ManifestItem>, ManifestError> {
    let items: Option<Vec<ManifestItem>> = serde_json::from_slice(bytes)?;
    items.ok_or(ManifestError::Null)
}

/// The `repositories` file: familiar name -> tag -> id (a v1 id, or since docker 25 the top
/// layer's diff_id hex).
pub type Repositories = BTreeMap<String, BTreeMap<String, String>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_is_refused() {
        assert!(matches!(parse_manifest(b"null"), Err(ManifestError::Null)));
        assert!(parse_manifest(b"[]").unwrap().is_empty());
        assert!(matches!(parse_manifest(b"{}"), Err(ManifestError::Json(_))));
    }

    #[test]
    fn item_fields() {
        let items = parse_manifest(
            br#"[{"Config":"sha256:abc","RepoTags":null,"Layers":["a.tar.gz"],"LayerSources":{"sha256:x":{"size":1}}}]"#,
        )
        .unwrap();
        assert_eq!(items[0].config, "sha256:abc");
        assert_eq!(items[0].repo_tags, None);
        assert_eq!(items[0].layers, vec!["a.tar.gz".to_string()]);
        assert!(items[0].layer_sources.is_some());
    }
}
