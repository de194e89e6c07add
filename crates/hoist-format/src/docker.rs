//! Docker archive metadata: `manifest.json` entries and the `repositories` file.
//!
//! `manifest.json` is read the way docker 20.10's loader reads it (`json.NewDecoder(f).Decode`
//! into `[]manifestItem`), with the rules of [`crate::gojson`]: only the first JSON value is
//! read, keys match field names exactly or else case-insensitively, the last of duplicate keys
//! wins, `null` makes a list nil (`"Layers": null` is an image without layers) and unknown
//! members are skipped unread.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::gojson::{self, FieldError, GoJsonError, field_prefix};
use crate::oci::DescriptorPlatform;

/// JSON names of moby's `tarexport.manifestItem` fields, in Go's order.
const MANIFEST_ITEM_FIELDS: [&str; 5] = ["Config", "RepoTags", "Layers", "Parent", "LayerSources"];

/// JSON names of docker/distribution's `Descriptor` fields (the values of `LayerSources`).
const LAYER_SOURCE_FIELDS: [&str; 6] = [
    "mediaType",
    "size",
    "digest",
    "urls",
    "annotations",
    "platform",
];

/// One entry of `manifest.json` (moby `tarexport.manifestItem`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ManifestItem {
    /// Path of the config inside the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// Familiar or fully qualified `name:tag` strings; `null` for untagged images.
    #[serde(rename = "RepoTags")]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer files inside the archive, base first (`null` is read as none).
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
    /// The parent image ID, when the parent was saved too.
    #[serde(rename = "Parent", skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Descriptors of foreign layers, keyed by diff_id.
    #[serde(rename = "LayerSources", skip_serializing_if = "Option::is_none")]
    pub layer_sources: Option<BTreeMap<String, LayerSource>>,
}

/// A foreign layer's descriptor in `LayerSources` (docker/distribution's `Descriptor`: no field
/// is required, the digest is not checked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerSource {
    /// Media type of the layer.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Size of the layer.
    #[serde(skip_serializing_if = "is_zero")]
    pub size: i64,
    /// Digest of the layer, as written.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Where the layer can be fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl LayerSource {
    fn decode(src: &[u8], d: &mut LayerSource) -> Result<(), FieldError> {
        gojson::decode_struct(src, &LAYER_SOURCE_FIELDS, |i, v| {
            let result: Result<(), FieldError> = match i {
                0 => gojson::decode_string(v, &mut d.media_type).map_err(Into::into),
                1 => gojson::decode_i64(v, &mut d.size).map_err(Into::into),
                2 => gojson::decode_string(v, &mut d.digest).map_err(Into::into),
                3 => gojson::decode_string_slice(v, &mut d.urls).map_err(Into::into),
                4 => gojson::decode_map(v, &mut d.annotations, gojson::decode_string)
                    .map_err(Into::into),
                _ => gojson::decode_pointer(v, &mut d.platform, DescriptorPlatform::decode),
            };
            result.map_err(|e| e.within(LAYER_SOURCE_FIELDS[i]))
        })
    }
}

impl ManifestItem {
    fn decode(src: &[u8], item: &mut ManifestItem) -> Result<(), FieldError> {
        let mut layers = Some(std::mem::take(&mut item.layers));
        gojson::decode_struct(src, &MANIFEST_ITEM_FIELDS, |i, v| {
            let result: Result<(), FieldError> = match i {
                0 => gojson::decode_string(v, &mut item.config).map_err(Into::into),
                1 => gojson::decode_string_slice(v, &mut item.repo_tags).map_err(Into::into),
                2 => gojson::decode_string_slice(v, &mut layers).map_err(Into::into),
                3 => gojson::decode_optional_string(v, &mut item.parent).map_err(Into::into),
                _ => decode_layer_sources(v, &mut item.layer_sources),
            };
            result.map_err(|e| e.within(MANIFEST_ITEM_FIELDS[i]))
        })?;
        item.layers = layers.unwrap_or_default();
        Ok(())
    }
}

/// `map[layer.DiffID]distribution.Descriptor`: each value decoded into a fresh descriptor.
fn decode_layer_sources(
    src: &[u8],
    into: &mut Option<BTreeMap<String, LayerSource>>,
) -> Result<(), FieldError> {
    let Some(entries) = gojson::object_entries(src)? else {
        *into = None;
        return Ok(());
    };
    let map = into.get_or_insert_with(BTreeMap::new);
    for (key, value) in entries {
        let mut source = LayerSource::default();
        LayerSource::decode(value, &mut source)?;
        map.insert(key, source);
    }
    Ok(())
}

/// Why `manifest.json` cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// `null` instead of an array (moby refuses it the same way).
    #[error("manifest.json is null (an archive with no images must have [])")]
    Null,
    /// Not JSON, or a field of a JSON type docker's Go struct refuses.
    #[error(
        "manifest.json is not a valid docker archive manifest: {}{source}",
        field_prefix(field)
    )]
    Json {
        /// Dotted path of the offending field (`""` for the document itself).
        field: String,
        /// What Go's decoder would have said.
        source: GoJsonError,
    },
}

impl From<FieldError> for ManifestError {
    fn from(e: FieldError) -> Self {
        ManifestError::Json {
            field: e.path,
            source: e.source,
        }
    }
}

/// Parses `manifest.json` the way docker does (see the module docs): bytes after the first
/// JSON value are ignored.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ManifestItem>, ManifestError> {
    let value = gojson::first_value(bytes).map_err(FieldError::from)?;
    let mut items: Option<Vec<ManifestItem>> = None;
    gojson::decode_slice(value, &mut items, ManifestItem::decode)?;
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
        assert!(matches!(
            parse_manifest(b"{}"),
            Err(ManifestError::Json { .. })
        ));
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

    #[test]
    fn read_as_docker_reads_it() {
        // Each was checked against docker 20.10.24's `docker load`.
        let items =
            parse_manifest(br#"[{"Config":"a.json","RepoTags":["x:1"],"Layers":null}]"#).unwrap();
        assert_eq!(items[0].layers, Vec::<String>::new());
        // Case-insensitive keys, the last duplicate wins, bytes after the first value ignored.
        let items = parse_manifest(
            b" [{\"config\":\"wrong.json\",\"repotags\":[\"x:1\"],\"LAYERS\":[\"l.tar\"],\"Config\":\"c.json\"}] garbage{",
        )
        .unwrap();
        assert_eq!(items[0].config, "c.json");
        assert_eq!(items[0].repo_tags, Some(vec!["x:1".to_string()]));
        assert_eq!(items[0].layers, vec!["l.tar".to_string()]);
        // Unknown members are skipped unread.
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let doc = format!(r#"[{{"Config":"c.json","X":1e999999,"Y":{deep},"Layers":[]}}]"#);
        assert_eq!(parse_manifest(doc.as_bytes()).unwrap()[0].config, "c.json");
        // A field of the wrong type is refused (docker: "cannot unmarshal string into Go
        // struct field Descriptor.LayerSources.size of type int64").
        assert_eq!(
            parse_manifest(
                br#"[{"Config":"c.json","Layers":[],"LayerSources":{"sha256:x":{"size":"a"}}}]"#
            ),
            Err(ManifestError::Json {
                field: "LayerSources.size".into(),
                source: GoJsonError::Type {
                    expected: "int64",
                    found: gojson::Kind::String
                }
            })
        );
        assert!(matches!(
            parse_manifest(br#"[{"Layers":"l.tar"}]"#),
            Err(ManifestError::Json { field, .. }) if field == "Layers"
        ));
    }

    #[test]
    fn layer_sources_decode_as_go_descriptors() {
        let items = parse_manifest(
            br#"[{"Config":"c","Layers":[],"LayerSources":{"sha256:a":{"mediaType":"m","size":3,"digest":"sha256:b","urls":["u"],"platform":{"os":"windows","architecture":"amd64"},"extra":1e999}}}]"#,
        )
        .unwrap();
        let sources = items[0].layer_sources.as_ref().unwrap();
        let s = &sources["sha256:a"];
        assert_eq!(
            (s.media_type.as_str(), s.size, s.digest.as_str()),
            ("m", 3, "sha256:b")
        );
        assert_eq!(s.urls, Some(vec!["u".to_string()]));
        assert_eq!(s.platform.as_ref().unwrap().os, "windows");
    }
}
