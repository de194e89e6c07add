//! OCI image-layout JSON: descriptors, manifests and indexes.
//!
//! These types serve two purposes. Reading: foreign manifests and indexes are parsed with them
//! but always *kept* as the bytes received (their digests must not change). Writing: the JSON
//! hoist writes itself (its store's `index.json`, manifests synthesized for docker archives) is
//! serialized from them, with fields in the order of the Go structs of `image-spec` so that the
//! bytes match what docker 25 writes for the same image.
//!
//! Reading follows Go's `encoding/json` (see [`crate::gojson`]), as containerd and docker do
//! with image-spec's Go types: keys match field names exactly or else case-insensitively, the
//! last of duplicate keys wins, `null` leaves a string unchanged and makes a list, map or pointer
//! nil, nesting is limited to Go's 10,000 levels, and members hoist does not model are kept as
//! raw JSON ([`RawJson`]) whatever they hold. The `Deserialize` impls run the same parsers; they
//! need `serde_json` as the deserializer (they take the value as a [`RawValue`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::digest::{Digest, DigestError};
use crate::gojson::{self, FieldError, GoJsonError, field_prefix};
use crate::media_type;

/// JSON names of image-spec's `Descriptor` fields that hoist models, in Go's order. Others
/// (`data`, `artifactType`, …) are kept in `extra`.
const DESCRIPTOR_FIELDS: [&str; 6] = [
    "mediaType",
    "digest",
    "size",
    "urls",
    "annotations",
    "platform",
];

/// JSON names of image-spec's `Platform` fields, in Go's order (`os.features` is type-checked
/// like Go does, then kept in `extra`).
const PLATFORM_FIELDS: [&str; 5] = ["architecture", "os", "os.version", "os.features", "variant"];

/// Index of `os.features` in [`PLATFORM_FIELDS`].
const PLATFORM_OS_FEATURES: usize = 3;

/// JSON names of image-spec's `Manifest` fields that hoist models (`schemaVersion` comes from the
/// embedded `specs.Versioned`).
const MANIFEST_FIELDS: [&str; 5] = [
    "schemaVersion",
    "mediaType",
    "config",
    "layers",
    "annotations",
];

/// JSON names of image-spec's `Index` fields that hoist models.
const INDEX_FIELDS: [&str; 4] = ["schemaVersion", "mediaType", "manifests", "annotations"];

/// The members [`Sniff`] looks at.
const SNIFF_FIELDS: [&str; 3] = ["mediaType", "manifests", "config"];

/// JSON name of image-spec's `ImageLayout` field.
const LAYOUT_FIELDS: [&str; 1] = ["imageLayoutVersion"];

/// Why an OCI JSON document cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OciJsonError {
    /// Not JSON, or a field with a JSON type the Go struct refuses.
    #[error("{}{source}", field_prefix(field))]
    Json {
        /// Dotted path of the offending field (`""` for the document itself).
        field: String,
        /// What Go's decoder would have said.
        source: GoJsonError,
    },
    /// A descriptor's digest is missing or empty.
    #[error("field {field:?} is missing")]
    Missing {
        /// Dotted path of the field (`layers[2].digest`).
        field: String,
    },
    /// A descriptor's digest is not a digest.
    #[error("field {field:?}: {source}")]
    Digest {
        /// Dotted path of the field.
        field: String,
        /// Why it is not a digest.
        source: DigestError,
    },
    /// A number hoist cannot hold (a negative size, a schema version beyond `u32`).
    #[error("field {field:?}: {value} is out of range")]
    OutOfRange {
        /// Dotted path of the field.
        field: String,
        /// The number.
        value: i64,
    },
}

impl From<FieldError> for OciJsonError {
    fn from(e: FieldError) -> Self {
        OciJsonError::Json {
            field: e.path,
            source: e.source,
        }
    }
}

/// `name` below `prefix` in a dotted path.
fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A JSON value hoist keeps without modelling it: compacted as Go's `json.Marshal` writes a
/// `json.RawMessage`, and written back as it is. Unlike a `serde_json::Value` it holds any
/// number (`1e999999`) and any nesting depth, and costs no recursion to drop.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The value in `src` (valid JSON, as Go accepts it). Invalid UTF-8 inside strings (which
    /// Go lets through) is replaced by U+FFFD.
    pub fn from_json(src: &[u8]) -> Result<RawJson, GoJsonError> {
        let compact = gojson::compact(src)?;
        let text = match String::from_utf8(compact) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        // Both parsers implement the JSON grammar and serde_json skips a raw value without a
        // depth limit or number conversion, so this only fails if they disagree on the grammar.
        RawValue::from_string(text)
            .map(RawJson)
            .map_err(|_| GoJsonError::Syntax {
                offset: 0,
                found: src.first().copied(),
                expected: "JSON that serde_json reads too",
            })
    }

    /// The compacted JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawJson {}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawJson({})", self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Implements `Deserialize` by taking the value's raw JSON from serde_json (no recursion, no
/// number conversion) and running the type's Go-rules `parse` on it.
macro_rules! deserialize_with_parse {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = Box::<RawValue>::deserialize(d)?;
                <$t>::parse(raw.get().as_bytes()).map_err(serde::de::Error::custom)
            }
        }
    )*};
}

deserialize_with_parse!(
    Descriptor,
    DescriptorPlatform,
    Manifest,
    Index,
    OciLayout,
    Sniff
);

/// Keeps a member no field takes in `extra` (the last of duplicates wins).
fn keep_unknown(
    extra: &mut BTreeMap<String, RawJson>,
) -> impl FnMut(String, &[u8]) -> Result<(), FieldError> + '_ {
    move |key, value| {
        extra.insert(key, RawJson::from_json(value)?);
        Ok(())
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Where a foreign (non-distributable) blob can be fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations (sorted, as Go marshals maps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform of the referenced manifest (in indexes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
    /// Fields hoist does not model (`artifactType`, `data`, `subject`, `os.features`, …),
    /// kept as found so that rewriting a document loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, RawJson>,
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

    /// Parses a descriptor with Go's rules (see the module docs). The digest must be present
    /// and valid and the size not negative.
    pub fn parse(bytes: &[u8]) -> Result<Self, OciJsonError> {
        let mut d = GoDescriptor::default();
        GoDescriptor::decode(bytes, &mut d)?;
        d.into_descriptor("")
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

/// A descriptor as Go holds it while decoding (digest and size not checked yet), so that a
/// repeated key or list decodes into it as in Go.
#[derive(Debug, Default)]
struct GoDescriptor {
    media_type: String,
    digest: String,
    size: i64,
    urls: Option<Vec<String>>,
    annotations: Option<BTreeMap<String, String>>,
    platform: Option<DescriptorPlatform>,
    extra: BTreeMap<String, RawJson>,
}

impl GoDescriptor {
    fn decode(src: &[u8], d: &mut GoDescriptor) -> Result<(), FieldError> {
        let GoDescriptor {
            media_type,
            digest,
            size,
            urls,
            annotations,
            platform,
            extra,
        } = d;
        gojson::decode_struct_keeping_unknown(
            src,
            &DESCRIPTOR_FIELDS,
            |i, v| {
                let result: Result<(), FieldError> = match i {
                    0 => gojson::decode_string(v, media_type).map_err(Into::into),
                    1 => gojson::decode_string(v, digest).map_err(Into::into),
                    2 => gojson::decode_i64(v, size).map_err(Into::into),
                    3 => gojson::decode_string_slice(v, urls).map_err(Into::into),
                    4 => gojson::decode_map(v, annotations, gojson::decode_string)
                        .map_err(Into::into),
                    _ => gojson::decode_pointer(v, platform, DescriptorPlatform::decode),
                };
                result.map_err(|e| e.within(DESCRIPTOR_FIELDS[i]))
            },
            keep_unknown(extra),
        )
    }

    /// The descriptor, its digest and size checked; `path` names it in errors.
    fn into_descriptor(self, path: &str) -> Result<Descriptor, OciJsonError> {
        let digest_field = || join(path, "digest");
        if self.digest.is_empty() {
            return Err(OciJsonError::Missing {
                field: digest_field(),
            });
        }
        let digest = Digest::parse(&self.digest).map_err(|source| OciJsonError::Digest {
            field: digest_field(),
            source,
        })?;
        let size = u64::try_from(self.size).map_err(|_| OciJsonError::OutOfRange {
            field: join(path, "size"),
            value: self.size,
        })?;
        Ok(Descriptor {
            media_type: self.media_type,
            digest,
            size,
            urls: self.urls,
            annotations: self.annotations,
            platform: self.platform,
            extra: self.extra,
        })
    }
}

/// A list of descriptors as decoded, checked; `field` names the list in errors.
fn descriptors(
    list: Option<Vec<GoDescriptor>>,
    field: &str,
) -> Result<Vec<Descriptor>, OciJsonError> {
    list.unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, d)| d.into_descriptor(&format!("{field}[{i}]")))
        .collect()
}

/// A schema version as decoded (a Go `int`), checked to fit.
fn schema_version(value: i64) -> Result<u32, OciJsonError> {
    u32::try_from(value).map_err(|_| OciJsonError::OutOfRange {
        field: "schemaVersion".to_string(),
        value,
    })
}

/// The platform object of a descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DescriptorPlatform {
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// OS version (Windows).
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// CPU variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Fields hoist does not model (`artifactType`, `data`, `subject`, `os.features`, …),
    /// kept as found so that rewriting a document loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, RawJson>,
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

    /// Parses a platform object with Go's rules (see the module docs).
    pub fn parse(bytes: &[u8]) -> Result<Self, OciJsonError> {
        let mut p = DescriptorPlatform::default();
        DescriptorPlatform::decode(bytes, &mut p)?;
        Ok(p)
    }

    /// Decodes into `p` (Go decodes into the existing value).
    pub(crate) fn decode(src: &[u8], p: &mut DescriptorPlatform) -> Result<(), FieldError> {
        let DescriptorPlatform {
            architecture,
            os,
            os_version,
            variant,
            extra,
        } = p;
        let mut features: Option<RawJson> = None;
        gojson::decode_struct_keeping_unknown(
            src,
            &PLATFORM_FIELDS,
            |i, v| {
                let result = match i {
                    0 => gojson::decode_string(v, architecture),
                    1 => gojson::decode_string(v, os),
                    2 => gojson::decode_optional_string(v, os_version),
                    PLATFORM_OS_FEATURES => {
                        // Go's `[]string`: checked, then kept as written (`null`: nil).
                        gojson::decode_string_slice(v, &mut None).and_then(|()| {
                            features = match gojson::kind_of(v) {
                                gojson::Kind::Null => None,
                                _ => Some(RawJson::from_json(v)?),
                            };
                            Ok(())
                        })
                    }
                    _ => gojson::decode_optional_string(v, variant),
                };
                result.map_err(|e| FieldError::from(e).within(PLATFORM_FIELDS[i]))
            },
            keep_unknown(extra),
        )?;
        if let Some(features) = features {
            extra.insert(PLATFORM_FIELDS[PLATFORM_OS_FEATURES].to_string(), features);
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker schema 2; the two share this shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2 (0 when absent: Go's zero value).
    pub schema_version: u32,
    /// The manifest's own media type (optional in OCI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// Layers, base first. `null` is read as empty.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields hoist does not model (`artifactType`, `data`, `subject`, `os.features`, …),
    /// kept as found so that rewriting a document loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, RawJson>,
}

impl Manifest {
    /// Parses a manifest with Go's rules (see the module docs). The config descriptor must have
    /// a digest.
    pub fn parse(bytes: &[u8]) -> Result<Self, OciJsonError> {
        let mut version = 0i64;
        let mut media_type = None;
        let mut config = GoDescriptor::default();
        let mut layers: Option<Vec<GoDescriptor>> = None;
        let mut annotations = None;
        let mut extra = BTreeMap::new();
        gojson::decode_struct_keeping_unknown(
            bytes,
            &MANIFEST_FIELDS,
            |i, v| {
                let result: Result<(), FieldError> = match i {
                    0 => gojson::decode_i64(v, &mut version).map_err(Into::into),
                    1 => gojson::decode_optional_string(v, &mut media_type).map_err(Into::into),
                    2 => GoDescriptor::decode(v, &mut config),
                    3 => gojson::decode_slice(v, &mut layers, GoDescriptor::decode),
                    _ => gojson::decode_map(v, &mut annotations, gojson::decode_string)
                        .map_err(Into::into),
                };
                result.map_err(|e| e.within(MANIFEST_FIELDS[i]))
            },
            keep_unknown(&mut extra),
        )?;
        Ok(Manifest {
            schema_version: schema_version(version)?,
            media_type,
            config: config.into_descriptor("config")?,
            layers: descriptors(layers, "layers")?,
            annotations,
            extra,
        })
    }
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2 (0 when absent: Go's zero value).
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Referenced manifests; docker 25 writes `null` for untagged saves.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields hoist does not model (`artifactType`, `data`, `subject`, `os.features`, …),
    /// kept as found so that rewriting a document loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, RawJson>,
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

    /// Parses an index with Go's rules (see the module docs).
    pub fn parse(bytes: &[u8]) -> Result<Self, OciJsonError> {
        let mut version = 0i64;
        let mut media_type = None;
        let mut manifests: Option<Vec<GoDescriptor>> = None;
        let mut annotations = None;
        let mut extra = BTreeMap::new();
        gojson::decode_struct_keeping_unknown(
            bytes,
            &INDEX_FIELDS,
            |i, v| {
                let result: Result<(), FieldError> = match i {
                    0 => gojson::decode_i64(v, &mut version).map_err(Into::into),
                    1 => gojson::decode_optional_string(v, &mut media_type).map_err(Into::into),
                    2 => gojson::decode_slice(v, &mut manifests, GoDescriptor::decode),
                    _ => gojson::decode_map(v, &mut annotations, gojson::decode_string)
                        .map_err(Into::into),
                };
                result.map_err(|e| e.within(INDEX_FIELDS[i]))
            },
            keep_unknown(&mut extra),
        )?;
        Ok(Index {
            schema_version: schema_version(version)?,
            media_type,
            manifests: descriptors(manifests, "manifests")?,
            annotations,
            extra,
        })
    }
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

/// The `oci-layout` file.
#[derive(Debug, Clone)]
pub struct OciLayout {
    /// `1.0.0` for every layout seen in the wild (`""` when absent).
    pub image_layout_version: String,
}

impl OciLayout {
    /// Parses `oci-layout` with Go's rules (see the module docs).
    pub fn parse(bytes: &[u8]) -> Result<Self, OciJsonError> {
        let mut image_layout_version = String::new();
        gojson::decode_struct(bytes, &LAYOUT_FIELDS, |i, v| {
            gojson::decode_string(v, &mut image_layout_version)
                .map_err(|e| FieldError::from(e).within(LAYOUT_FIELDS[i]))
        })?;
        Ok(OciLayout {
            image_layout_version,
        })
    }
}

/// Just the fields that tell a manifest from an index.
#[derive(Debug, Clone)]
pub struct Sniff {
    /// The declared media type, if any.
    pub media_type: Option<String>,
    /// Present (and not `null`) in indexes.
    pub manifests: Option<RawJson>,
    /// Present (and not `null`) in manifests.
    pub config: Option<RawJson>,
}

impl Sniff {
    /// Reads the members that tell a manifest from an index, with Go's rules (see the module
    /// docs); the others are skipped unread.
    pub fn parse(bytes: &[u8]) -> Result<Self, OciJsonError> {
        let mut media_type = None;
        let (mut manifests, mut config) = (None, None);
        gojson::decode_struct(bytes, &SNIFF_FIELDS, |i, v| {
            let result = match i {
                0 => gojson::decode_optional_string(v, &mut media_type),
                _ => {
                    let present = match gojson::kind_of(v) {
                        gojson::Kind::Null => None,
                        _ => Some(RawJson::from_json(v)),
                    };
                    let slot = if i == 1 { &mut manifests } else { &mut config };
                    present.transpose().map(|p| *slot = p)
                }
            };
            result.map_err(|e| FieldError::from(e).within(SNIFF_FIELDS[i]))
        })?;
        Ok(Sniff {
            media_type,
            manifests,
            config,
        })
    }

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
        assert_eq!(m.extra["artifactType"].get(), r#""application/x-t""#);
        assert_eq!(m.config.extra["data"].get(), r#""e30=""#);
        let back: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );

        let idx = r#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"architecture":"amd64","os":"windows","os.version":"10","os.features":["win32k"]}}]}"#;
        let i: Index = serde_json::from_str(idx).unwrap();
        assert_eq!(
            i.manifests[0].platform.as_ref().unwrap().extra["os.features"].get(),
            r#"["win32k"]"#
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

    const DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn manifests_are_read_with_gos_rules() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let text = format!(
            r#"{{"schemaVersion":2,"MediaType":"x","mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"digest":"{DIGEST}","size":2,"mediaType":null}},"layers":null,"huge":1e999999,"deep":{deep},"huge":-1E+999999,"annotations":null}}"#
        );
        for m in [
            Manifest::parse(text.as_bytes()).unwrap(),
            // serde_json goes through the same parser.
            serde_json::from_str::<Manifest>(&text).unwrap(),
        ] {
            assert_eq!(m.media_type.as_deref(), Some(media_type::OCI_MANIFEST));
            assert_eq!(m.config.digest.to_string(), DIGEST);
            assert_eq!(m.config.media_type, "");
            assert!(m.layers.is_empty());
            assert_eq!(m.annotations, None);
            // Kept, and written back, as raw JSON: the last duplicate, any depth.
            assert_eq!(m.extra["huge"].get(), "-1E+999999");
            assert_eq!(m.extra["deep"].get(), deep);
            let written = serde_json::to_string(&m).unwrap();
            assert!(written.contains(r#""huge":-1E+999999"#), "{written}");
            assert!(written.contains(&deep), "{written}");
        }
    }

    #[test]
    fn a_repeated_list_decodes_into_the_existing_elements() {
        let text = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{DIGEST}","size":2}},"layers":[{{"mediaType":"m","digest":"{DIGEST}","size":1}},{{"digest":"{DIGEST}","size":1}}],"layers":[{{"size":5}}]}}"#
        );
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.layers.len(), 1);
        assert_eq!(
            (m.layers[0].media_type.as_str(), m.layers[0].size),
            ("m", 5)
        );
    }

    #[test]
    fn indexes_and_sniffing_read_huge_and_deep_members() {
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m","digest":"{DIGEST}","size":2,"platform":{{"architecture":"amd64","OS":"linux","os":null,"x":{deep}}},"n":1e400}}],"Manifests":[{{"digest":"{DIGEST}","size":3}}]}}"#
        );
        let i = Index::parse(text.as_bytes()).unwrap();
        assert_eq!(i.manifests.len(), 1);
        let d = &i.manifests[0];
        // The element merged into the first list's: its media type, platform and extras stay.
        assert_eq!((d.media_type.as_str(), d.size), ("m", 3));
        let p = d.platform.as_ref().unwrap();
        assert_eq!((p.os.as_str(), p.architecture.as_str()), ("linux", "amd64"));
        assert_eq!(p.extra["x"].get(), deep);
        assert_eq!(d.extra["n"].get(), "1e400");
        let sniff = Sniff::parse(text.as_bytes()).unwrap();
        assert!(sniff.is_index());
        // `null` in between makes the list nil: the next one starts from fresh elements.
        let reset = text.replace(r#","Manifests":"#, r#","manifests":null,"Manifests":"#);
        let d = &Index::parse(reset.as_bytes()).unwrap().manifests[0];
        assert_eq!(
            (d.media_type.as_str(), d.size, d.platform.is_none()),
            ("", 3, true)
        );
        let too_deep = format!(
            r#"{{"x":{}{}}}"#,
            "[".repeat(gojson::MAX_NESTING_DEPTH),
            "]".repeat(gojson::MAX_NESTING_DEPTH)
        );
        assert!(matches!(
            Sniff::parse(too_deep.as_bytes()),
            Err(OciJsonError::Json {
                source: GoJsonError::TooDeep { .. },
                ..
            })
        ));
    }

    #[test]
    fn descriptors_need_a_digest_and_a_size_that_fits() {
        for (text, want) in [
            (
                r#"{"size":1}"#.to_string(),
                OciJsonError::Missing {
                    field: "digest".into(),
                },
            ),
            (
                format!(r#"{{"digest":"{DIGEST}","size":-1}}"#),
                OciJsonError::OutOfRange {
                    field: "size".into(),
                    value: -1,
                },
            ),
            (
                format!(r#"{{"digest":"{DIGEST}","size":"1"}}"#),
                OciJsonError::Json {
                    field: "size".into(),
                    source: GoJsonError::Type {
                        expected: "int64",
                        found: gojson::Kind::String,
                    },
                },
            ),
        ] {
            assert_eq!(Descriptor::parse(text.as_bytes()), Err(want), "{text}");
        }
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{DIGEST}","size":2}},"layers":[{{"size":1}}]}}"#
        );
        assert_eq!(
            Manifest::parse(m.as_bytes()),
            Err(OciJsonError::Missing {
                field: "layers[0].digest".into()
            })
        );
        assert_eq!(
            OciLayout::parse(br#"{"imageLayoutVersion":"0.9","ImageLayoutVersion":"1.0.0"}"#)
                .unwrap()
                .image_layout_version,
            "1.0.0"
        );
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
