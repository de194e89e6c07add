//! OCI image-layout JSON: descriptors, manifests and indexes.
//!
//! These types serve two purposes. Reading: foreign manifests and indexes are parsed with them
//! but always *kept* as the bytes received (their digests must not change). Writing: the JSON
//! hoist writes itself (its store's `index.json`, manifests synthesized for docker archives) is
//! serialized from them, with fields in the order of the Go structs of `image-spec` so that the
//! bytes match what docker 25 writes for the same image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media_type;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Where a foreign (non-distributable) blob can be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations (sorted, as Go marshals maps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform of the referenced manifest (in indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
    /// Fields hoist does not model (`artifactType`, `data`, `subject`, `os.features`, …),
    /// kept as found so that rewriting a document loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    /// A descriptor with no urls, annotations, platform or other fields.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            extra: BTreeMap::new(),
        }
    }

    /// The value of an annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// Whether this index entry is an attestation or another non-image (buildkit marks its
    /// provenance and SBOM manifests with `vnd.docker.reference.type` and the platform
    /// `unknown/unknown`): not a platform's image, never pulled, loaded or required.
    pub fn is_attestation(&self) -> bool {
        self.annotation(media_type::ANNOTATION_DOCKER_REFERENCE_TYPE)
            .is_some()
            || self
                .platform
                .as_ref()
                .is_some_and(|p| p.os == "unknown" || p.architecture == "unknown")
    }
}

/// The platform object of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Fields hoist does not model (`artifactType`, `data`, `subject`, `os.features`, …),
    /// kept as found so that rewriting a document loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl DescriptorPlatform {
    /// As a [`crate::platform::Platform`].
    pub fn to_platform(&self) -> crate::platform::Platform {
        crate::platform::Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone().unwrap_or_default(),
        }
    }
}

/// An image manifest (OCI or Docker schema 2; the two share this shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type (optional in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// Layers, base first. `null` is read as empty.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields hoist does not model (`artifactType`, `data`, `subject`, `os.features`, …),
    /// kept as found so that rewriting a document loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Referenced manifests; docker 25 writes `null` for untagged saves.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields hoist does not model (`artifactType`, `data`, `subject`, `os.features`, …),
    /// kept as found so that rewriting a document loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Index {
    /// An empty OCI index.
    pub fn new() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: None,
            extra: BTreeMap::new(),
        }
    }
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

/// The `oci-layout` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciLayout {
    /// `1.0.0` for every layout seen in the wild.
    pub image_layout_version: String,
}

/// Just the fields that tell a manifest from an index.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sniff {
    /// The declared media type, if any.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Present in indexes.
    #[serde(default)]
    pub manifests: Option<serde_json::Value>,
    /// Present in manifests.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

impl Sniff {
    /// Whether the JSON is an index (by media type, else by shape).
    pub fn is_index(&self) -> bool {
        match &self.media_type {
            Some(mt) if media_type::is_index(mt) => true,
            Some(mt) if media_type::is_manifest(mt) => false,
            _ => self.manifests.is_some() && self.config.is_none(),
        }
    }
}

/// Why a string cannot be an `org.opencontainers.image.ref.name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OCI reference name {name:?}: {reason}")]
pub struct RefNameError {
    /// The string as given.
    pub name: String,
    /// What breaks the grammar.
    pub reason: String,
}

/// The separators of the ref-name grammar that are one character long (`--` is the other).
const REF_NAME_SEPARATORS: &[u8] = b"-._:@+";

/// Checks `name` against the grammar image-spec gives `org.opencontainers.image.ref.name`
/// (annotations.md), as skopeo's `oci:` and `oci-archive:` transports do before they use one:
///
/// ```text
/// ref       ::= component ("/" component)*
/// component ::= alphanum (separator alphanum)*
/// alphanum  ::= [A-Za-z0-9]+
/// separator ::= [-._:@+] | "--"
/// ```
///
/// So `latest`, `v1.0` and `docker.io/library/busybox:1` pass, and `..`, `/etc`, `a//b`, `-x`
/// and names with spaces do not: a ref name never walks out of a directory.
pub fn check_ref_name(name: &str) -> Result<(), RefNameError> {
    let refuse = |reason: String| RefNameError {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(refuse("it is empty".into()));
    }
    if let Some(c) = name.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || *c == '/'
            || (c.is_ascii() && REF_NAME_SEPARATORS.contains(&(*c as u8))))
    }) {
        return Err(refuse(format!(
            "{c:?} is not allowed (only letters, digits, / and the separators - . _ : @ +)"
        )));
    }
    for component in name.split('/') {
        if !is_ref_component(component.as_bytes()) {
            return Err(refuse(if component.is_empty() {
                "an empty component (a leading, trailing or doubled /)".into()
            } else {
                format!(
                    "component {component:?} is not letters and digits joined by single \
                     separators (one of - . _ : @ +, or --)"
                )
            }));
        }
    }
    Ok(())
}

/// `component ::= alphanum (separator alphanum)*`, where a separator is `--` or one of
/// [`REF_NAME_SEPARATORS`].
fn is_ref_component(c: &[u8]) -> bool {
    let mut i = 0;
    loop {
        let start = i;
        while c.get(i).is_some_and(u8::is_ascii_alphanumeric) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == c.len() {
            return true;
        }
        // `--` first: a lone `-` followed by another `-` could not be followed by alphanum.
        if c[i..].starts_with(b"--") {
            i += 2;
        } else if REF_NAME_SEPARATORS.contains(&c[i]) {
            i += 1;
        } else {
            return false;
        }
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {

    #[test]
    fn ref_names_follow_the_image_spec_grammar() {
        for ok in [
            "latest",
            "v1.0",
            "1",
            "docker.io/library/busybox:1.36",
            "a--b",
            "a-b_c.d:e@f+g",
            "A/B/C",
            "sha256@abc",
        ] {
            assert_eq!(check_ref_name(ok), Ok(()), "{ok:?}");
        }
        for (bad, reason) in [
            ("", "it is empty"),
            (
                "../../../evil",
                "component \"..\" is not letters and digits joined by single separators (one \
                 of - . _ : @ +, or --)",
            ),
            (
                "/etc",
                "an empty component (a leading, trailing or doubled /)",
            ),
            (
                "a/",
                "an empty component (a leading, trailing or doubled /)",
            ),
            (
                "a//b",
                "an empty component (a leading, trailing or doubled /)",
            ),
            (
                "-a",
                "component \"-a\" is not letters and digits joined by single separators (one \
                 of - . _ : @ +, or --)",
            ),
            (
                "a.",
                "component \"a.\" is not letters and digits joined by single separators (one \
                 of - . _ : @ +, or --)",
            ),
            (
                "a---b",
                "component \"a---b\" is not letters and digits joined by single separators \
                 (one of - . _ : @ +, or --)",
            ),
            (
                "a.-b",
                "component \"a.-b\" is not letters and digits joined by single separators \
                 (one of - . _ : @ +, or --)",
            ),
            (
                "a b",
                "' ' is not allowed (only letters, digits, / and the separators - . _ : @ +)",
            ),
            (
                "caf\u{e9}",
                "'\u{e9}' is not allowed (only letters, digits, / and the separators - . _ : @ +)",
            ),
            (
                "a\\b",
                "'\\\\' is not allowed (only letters, digits, / and the separators - . _ : @ +)",
            ),
        ] {
            assert_eq!(
                check_ref_name(bad),
                Err(RefNameError {
                    name: bad.into(),
                    reason: reason.into()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fields_hoist_does_not_model_survive_a_rewrite() {
        let text = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x-t","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}}"#;
        let m: Manifest = serde_json::from_str(text).unwrap();
        assert_eq!(m.extra["artifactType"], "application/x-t");
        assert_eq!(m.config.extra["data"], "e30=");
        let back: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );

        let idx = r#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"architecture":"amd64","os":"windows","os.version":"10","os.features":["win32k"]}}]}"#;
        let i: Index = serde_json::from_str(idx).unwrap();
        assert_eq!(
            i.manifests[0].platform.as_ref().unwrap().extra["os.features"],
            serde_json::json!(["win32k"])
        );
        assert_eq!(
            serde_json::to_value(&i).unwrap(),
            serde_json::from_str::<serde_json::Value>(idx).unwrap()
        );
    }

    use super::*;

    #[test]
    fn docker25_manifest_bytes_round_trip() {
        // The manifest docker 25 synthesized for hello-world (corpus docker25-oci_ggcr-hello-world-v25).
        let raw = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44","size":581,"platform":{"architecture":"arm64","os":"linux"}},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43","size":10752}]}"#;
        let m: Manifest = serde_json::from_str(raw).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), raw);
    }

    #[test]
    fn attestations() {
        let image = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e7c26a4b4d156fd9947ee82295b7b78acf7aa54b93b8f3e4b9f608179ffb20e8","size":476,"platform":{"architecture":"amd64","os":"linux"}}"#;
        let unknown = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e7c26a4b4d156fd9947ee82295b7b78acf7aa54b93b8f3e4b9f608179ffb20e8","size":476,"platform":{"architecture":"unknown","os":"unknown"}}"#;
        let referenced = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e7c26a4b4d156fd9947ee82295b7b78acf7aa54b93b8f3e4b9f608179ffb20e8","size":476,"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}"#;
        for (raw, want) in [(image, false), (unknown, true), (referenced, true)] {
            let d: Descriptor = serde_json::from_str(raw).unwrap();
            assert_eq!(d.is_attestation(), want, "{raw}");
        }
    }

    #[test]
    fn null_manifests() {
        let i: Index = serde_json::from_str(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#,
        )
        .unwrap();
        assert!(i.manifests.is_empty());
    }
}
