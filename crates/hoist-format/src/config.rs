//! The parts of an image config (OCI `config.md` plus Docker's extensions) that hoist reads.
//!
//! A config is always kept as the bytes received (its sha256 is the image ID); this type is only
//! a view for reading.
//!
//! The bytes are read the way docker 20.10 reads them (`image.NewFromJSON`: `json.Unmarshal`
//! into Go's `image.Image`), with the rules of [`crate::gojson`]: keys match field names
//! exactly or else case-insensitively, the last of duplicate keys wins, `null` leaves a string
//! unchanged and makes a list or map nil, members hoist does not model are skipped unread
//! (whatever they hold, nested up to Go's limit of [`MAX_NESTING_DEPTH`] levels), and the
//! fields docker's struct does model must have the JSON type it gives them, or docker (and
//! hoist) refuses the config. So hoist accepts exactly the configs docker loads.
//!
//! [`MAX_NESTING_DEPTH`]: crate::gojson::MAX_NESTING_DEPTH

use crate::digest::{Digest, DigestError};
use crate::gojson::{self, FieldError, GoJsonError, GoTime, field_prefix};
use crate::legacy::ContainerConfig;

/// JSON names of the fields of docker 20.10's `image.Image` (with its embedded `V1Image`, whose
/// own `parent` the outer one shadows), in Go's field order. Every one is decoded (and so
/// type-checked) like docker does, even those hoist does not keep.
const IMAGE_FIELDS: [&str; 17] = [
    "id",
    "comment",
    "created",
    "container",
    "container_config",
    "docker_version",
    "author",
    "config",
    "architecture",
    "variant",
    "os",
    "Size",
    "parent",
    "rootfs",
    "history",
    "os.version",
    "os.features",
];

/// JSON names of `image.RootFS`'s fields.
const ROOTFS_FIELDS: [&str; 2] = ["type", "diff_ids"];

/// JSON names of `image.History`'s fields, in Go's order.
const HISTORY_FIELDS: [&str; 5] = ["created", "author", "created_by", "comment", "empty_layer"];

/// A read-only view of an image config.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// Creation time, RFC 3339, as written (docker refuses a config whose `created` is not
    /// RFC 3339).
    pub created: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// CPU variant.
    pub variant: Option<String>,
    /// Docker's comment (set by `import -m`, `commit -m`).
    pub comment: Option<String>,
    /// Docker version that built the image.
    pub docker_version: Option<String>,
    /// Docker's parent image ID.
    pub parent: Option<String>,
    /// The runtime config (`Cmd`, `Env`, …) as docker sees it: the fields of docker 20.10's
    /// `container.Config` as `json.Marshal` writes them (a string `Cmd` becomes a list, unknown
    /// fields are gone). `None` when the config has none or `null`.
    pub config: Option<serde_json::Value>,
    /// The layers.
    pub rootfs: RootFs,
    /// History, oldest first.
    pub history: Vec<History>,
}

/// `rootfs` of a config.
#[derive(Debug, Clone, Default)]
pub struct RootFs {
    /// Always `layers`.
    pub kind: String,
    /// The uncompressed layer digests, base first.
    pub diff_ids: Vec<Digest>,
}

/// One history entry.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct History {
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// Why a config cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON, or a field with a JSON type docker's Go struct refuses (docker 20.10 fails the
    /// load with the same input).
    #[error("invalid image config: {}{source}", field_prefix(field))]
    Json {
        /// Dotted path of the offending field (`""` for the document itself).
        field: String,
        /// What Go's decoder would have said.
        source: GoJsonError,
    },
    /// A `rootfs.diff_ids` entry is not a digest.
    #[error("invalid image config: rootfs.diff_ids[{index}] = {value:?}: {source}")]
    DiffId {
        /// Position in `diff_ids`.
        index: usize,
        /// The value as found.
        value: String,
        /// Why it is not a digest.
        source: DigestError,
    },
}

impl From<FieldError> for ConfigError {
    fn from(e: FieldError) -> Self {
        ConfigError::Json {
            field: e.path,
            source: e.source,
        }
    }
}

/// Decodes a Go `time.Time` field: the string must parse as Go parses it (see
/// [`GoTime::parse_json_token`]); hoist keeps the string as written. `null` keeps the field.
fn decode_time_string(src: &[u8], into: &mut Option<String>) -> Result<(), GoJsonError> {
    let mut time = GoTime::ZERO;
    gojson::decode_time(src, &mut time)?;
    if gojson::kind_of(src) == gojson::Kind::String {
        *into = Some(gojson::unquote(src)?);
    }
    Ok(())
}

impl History {
    /// Decodes an `image.History` into `h` (Go decodes into the existing element).
    fn decode(src: &[u8], h: &mut History) -> Result<(), FieldError> {
        gojson::decode_struct(src, &HISTORY_FIELDS, |i, v| {
            match i {
                0 => decode_time_string(v, &mut h.created),
                1 => gojson::decode_optional_string(v, &mut h.author),
                2 => gojson::decode_optional_string(v, &mut h.created_by),
                3 => gojson::decode_optional_string(v, &mut h.comment),
                _ => gojson::decode_bool(v, &mut h.empty_layer),
            }
            .map_err(|e| FieldError::from(e).within(HISTORY_FIELDS[i]))
        })
    }
}

/// `image.RootFS` as Go holds it while decoding.
#[derive(Debug, Default)]
struct GoRootFs {
    kind: String,
    diff_ids: Option<Vec<String>>,
}

impl GoRootFs {
    fn decode(src: &[u8], r: &mut GoRootFs) -> Result<(), FieldError> {
        gojson::decode_struct(src, &ROOTFS_FIELDS, |i, v| {
            match i {
                0 => gojson::decode_string(v, &mut r.kind),
                _ => gojson::decode_string_slice(v, &mut r.diff_ids),
            }
            .map_err(|e| FieldError::from(e).within(ROOTFS_FIELDS[i]))
        })
    }
}

impl ImageConfig {
    /// Parses config bytes the way docker 20.10 does (see the module docs). A config without
    /// `rootfs` is read as having no layers (docker would refuse it).
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let mut c = ImageConfig::default();
        let mut runtime: Option<ContainerConfig> = None;
        let mut rootfs: Option<GoRootFs> = None;
        let mut history: Option<Vec<History>> = None;
        // Decoded only to refuse what docker refuses; hoist does not keep them.
        let mut container_config = ContainerConfig::default();
        let (mut id, mut container, mut os_version) = (String::new(), String::new(), String::new());
        let mut size = 0i64;
        let mut os_features: Option<Vec<String>> = None;
        gojson::decode_struct(bytes, &IMAGE_FIELDS, |i, v| {
            let result: Result<(), FieldError> = match i {
                0 => gojson::decode_string(v, &mut id).map_err(Into::into),
                1 => gojson::decode_optional_string(v, &mut c.comment).map_err(Into::into),
                2 => decode_time_string(v, &mut c.created).map_err(Into::into),
                3 => gojson::decode_string(v, &mut container).map_err(Into::into),
                4 => ContainerConfig::decode(v, &mut container_config),
                5 => gojson::decode_optional_string(v, &mut c.docker_version).map_err(Into::into),
                6 => gojson::decode_optional_string(v, &mut c.author).map_err(Into::into),
                7 => gojson::decode_pointer(v, &mut runtime, ContainerConfig::decode),
                8 => gojson::decode_string(v, &mut c.architecture).map_err(Into::into),
                9 => gojson::decode_optional_string(v, &mut c.variant).map_err(Into::into),
                10 => gojson::decode_string(v, &mut c.os).map_err(Into::into),
                11 => gojson::decode_i64(v, &mut size).map_err(Into::into),
                12 => gojson::decode_optional_string(v, &mut c.parent).map_err(Into::into),
                13 => gojson::decode_pointer(v, &mut rootfs, GoRootFs::decode),
                14 => gojson::decode_slice(v, &mut history, History::decode),
                15 => gojson::decode_string(v, &mut os_version).map_err(Into::into),
                _ => gojson::decode_string_slice(v, &mut os_features).map_err(Into::into),
            };
            result.map_err(|e| e.within(IMAGE_FIELDS[i]))
        })
        .map_err(ConfigError::from)?;
        c.config = runtime.map(|r| {
            let mut out = Vec::new();
            r.marshal(&mut out);
            serde_json::from_slice(&out).expect("Go's marshalling of a container.Config is JSON")
        });
        c.history = history.unwrap_or_default();
        let rootfs = rootfs.unwrap_or_default();
        c.rootfs.kind = rootfs.kind;
        c.rootfs.diff_ids = rootfs
            .diff_ids
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                Digest::parse(&value).map_err(|source| ConfigError::DiffId {
                    index,
                    value,
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(c)
    }

    /// The `created_by` of the history step of each layer: the steps that are not
    /// `empty_layer`, in order, paired with the diff_ids. All `None` when the counts differ
    /// (a config whose history does not describe its layers).
    pub fn layers_created_by(&self) -> Vec<Option<String>> {
        let steps: Vec<&History> = self.history.iter().filter(|h| !h.empty_layer).collect();
        if steps.len() != self.rootfs.diff_ids.len() {
            return vec![None; self.rootfs.diff_ids.len()];
        }
        steps.iter().map(|h| h.created_by.clone()).collect()
    }

    /// The platform the config declares.
    pub fn platform(&self) -> crate::platform::Platform {
        crate::platform::Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker25_hello_world() {
        let raw = br#"{"architecture":"arm64","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/hello"],"WorkingDir":"/","ArgsEscaped":true,"OnBuild":null},"created":"2023-05-02T16:49:27Z","history":[{"created":"2023-05-02T16:49:27Z","created_by":"COPY hello / # buildkit","comment":"buildkit.dockerfile.v0"},{"created":"2023-05-02T16:49:27Z","created_by":"CMD [\"/hello\"]","comment":"buildkit.dockerfile.v0","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43"]}}"#;
        let c = ImageConfig::parse(raw).unwrap();
        assert_eq!(c.platform().to_string(), "linux/arm64");
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert_eq!(c.history.len(), 2);
        assert!(c.history[1].empty_layer);
    }

    const DIFF_ID: &str = "sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43";

    /// A config with `members` before a one-layer rootfs.
    fn config_with(members: &str) -> Vec<u8> {
        format!(r#"{{{members},"rootfs":{{"type":"layers","diff_ids":["{DIFF_ID}"]}}}}"#)
            .into_bytes()
    }

    /// `depth` nested arrays around `1`.
    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn the_last_of_duplicate_keys_wins_and_keys_match_case_insensitively() {
        for (members, os, arch) in [
            (
                r#""os":"windows","architecture":"amd64","os":"linux""#,
                "linux",
                "amd64",
            ),
            (
                r#""OS":"windows","os":"linux","Architecture":"arm64""#,
                "linux",
                "arm64",
            ),
            (
                r#""os":"linux","OS":"windows","architecture":"s390x""#,
                "windows",
                "s390x",
            ),
        ] {
            let c = ImageConfig::parse(&config_with(members)).unwrap();
            assert_eq!(
                (c.os.as_str(), c.architecture.as_str()),
                (os, arch),
                "{members}"
            );
            assert_eq!(c.rootfs.diff_ids.len(), 1, "{members}");
        }
        // A repeated object merges into the first, as Go decodes into the same pointer.
        let c = ImageConfig::parse(&config_with(
            r#""config":{"Cmd":["a"]},"config":{"Env":["X=1"]},"rootfs":{"diff_ids":null},"ROOTFS":{"type":"layers"}"#,
        ))
        .unwrap();
        let runtime = c.config.unwrap();
        assert_eq!(runtime["Cmd"], serde_json::json!(["a"]));
        assert_eq!(runtime["Env"], serde_json::json!(["X=1"]));
        // config_with's own rootfs comes last and sets diff_ids again.
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert_eq!(c.rootfs.kind, "layers");
    }

    #[test]
    fn null_leaves_strings_unchanged_and_makes_lists_and_maps_nil() {
        let c = ImageConfig::parse(&config_with(
            r#""architecture":null,"os":"linux","os":null,"variant":null,"author":"me","author":null,"created":null,"history":null,"config":null,"container_config":null"#,
        ))
        .unwrap();
        assert_eq!(c.architecture, "");
        assert_eq!(c.os, "linux");
        assert_eq!(c.variant, None);
        assert_eq!(c.author.as_deref(), Some("me"));
        assert_eq!(c.created, None);
        assert!(c.history.is_empty());
        assert!(c.config.is_none());
        let c = ImageConfig::parse(br#"{"rootfs":{"type":"layers","diff_ids":null}}"#).unwrap();
        assert!(c.rootfs.diff_ids.is_empty());
        let c =
            ImageConfig::parse(br#"{"rootfs":null,"config":{"Cmd":["x"]},"config":null}"#).unwrap();
        assert!(c.rootfs.diff_ids.is_empty());
        assert!(c.config.is_none());
    }

    #[test]
    fn unknown_members_are_skipped_whatever_they_hold() {
        for members in [
            r#""architecture":"amd64","x":1e999999"#.to_string(),
            r#""architecture":"amd64","x":-1e999999,"y":123456789012345678901234567890"#
                .to_string(),
            format!(r#""architecture":"amd64","x":{}"#, nested(200)),
            // Inside the runtime config too: docker's container.Config skips them as well.
            format!(
                r#""architecture":"amd64","config":{{"x":1e999999,"y":{}}}"#,
                nested(200)
            ),
            format!(
                r#""architecture":"amd64","container_config":{{"x":{}}}"#,
                nested(200)
            ),
            // Go's limit: the config object plus 9,999 arrays is 10,000 levels.
            format!(
                r#""architecture":"amd64","x":{}"#,
                nested(gojson::MAX_NESTING_DEPTH - 1)
            ),
        ] {
            let c = ImageConfig::parse(&config_with(&members))
                .unwrap_or_else(|e| panic!("{e} for {}", &members[..members.len().min(80)]));
            assert_eq!(c.architecture, "amd64");
            assert_eq!(c.rootfs.diff_ids.len(), 1);
        }
    }

    #[test]
    fn nesting_beyond_gos_limit_is_refused_without_recursion() {
        let deep = config_with(&format!(r#""x":{}"#, nested(gojson::MAX_NESTING_DEPTH)));
        let limit = config_with(&format!(r#""x":{}"#, nested(gojson::MAX_NESTING_DEPTH - 1)));
        // A small stack: any recursion per nesting level would overflow it.
        const SMALL_STACK: usize = 128 * 1024;
        let (deep_result, limit_result) = std::thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || (ImageConfig::parse(&deep), ImageConfig::parse(&limit)))
            .unwrap()
            .join()
            .unwrap();
        assert!(
            matches!(
                deep_result,
                Err(ConfigError::Json {
                    source: GoJsonError::TooDeep { .. },
                    ..
                })
            ),
            "{deep_result:?}"
        );
        assert!(limit_result.is_ok(), "{limit_result:?}");
    }

    #[test]
    fn what_docker_refuses_is_refused() {
        // Each was checked against docker 20.10.24's `docker load`.
        for (members, field) in [
            (r#""architecture":5"#, "architecture"),
            (r#""created":"garbage""#, "created"),
            (r#""history":[{"created":"x"}]"#, "history.created"),
            (r#""config":{"Cmd":5}"#, "config.Cmd"),
            (r#""container_config":{"Env":"x"}"#, "container_config.Env"),
            (r#""Size":1.5"#, "Size"),
            (r#""os.features":"x""#, "os.features"),
        ] {
            match ImageConfig::parse(&config_with(members)) {
                Err(ConfigError::Json { field: f, .. }) => assert_eq!(f, field, "{members}"),
                other => panic!("{members}: {other:?}"),
            }
        }
        let mut trailing = config_with(r#""os":"linux""#);
        trailing.extend_from_slice(b" x");
        assert!(matches!(
            ImageConfig::parse(&trailing),
            Err(ConfigError::Json {
                source: GoJsonError::Syntax { .. },
                ..
            })
        ));
        assert!(matches!(
            ImageConfig::parse(br#"{"rootfs":{"diff_ids":["nope"]}}"#),
            Err(ConfigError::DiffId { index: 0, .. })
        ));
    }

    #[test]
    fn the_runtime_config_is_what_docker_decodes() {
        let c = ImageConfig::parse(&config_with(
            r#""config":{"cmd":"echo hi","ENTRYPOINT":["/bin/sh","-c"],"WorkingDir":"/w","Unknown":1e999}"#,
        ))
        .unwrap();
        let runtime = c.config.unwrap();
        assert_eq!(runtime["Cmd"], serde_json::json!(["echo hi"]));
        assert_eq!(runtime["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
        assert_eq!(runtime["WorkingDir"], "/w");
        assert!(runtime.get("Unknown").is_none());
    }

    #[test]
    fn history_entries_merge_like_go_slices() {
        let c = ImageConfig::parse(&config_with(
            r#""history":[{"created_by":"a","comment":"c"},{"created_by":"b"}],"history":[{"created_by":"x","empty_layer":true}]"#,
        ))
        .unwrap();
        assert_eq!(
            c.history,
            vec![History {
                created_by: Some("x".into()),
                comment: Some("c".into()),
                empty_layer: true,
                ..History::default()
            }]
        );
    }
}
