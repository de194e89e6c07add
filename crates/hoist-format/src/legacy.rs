//! Docker legacy v1 archives: reading their `repositories` and parent chains, the image config
//! docker 20.10 synthesizes when it loads one, and the v1 ids and `json` files `docker save`
//! (1.10 – 24) writes next to each layer.
//!
//! A legacy archive (docker ≤ 1.9) has no `manifest.json` and no image config:
//!
//! ```text
//! repositories        {"busybox":{"latest":"<top v1 id>"}}
//! <v1 id>/VERSION     "1.0"
//! <v1 id>/json        the v1 image JSON of this layer: id, parent, created, container_config, …
//! <v1 id>/layer.tar   the layer (possibly compressed, possibly 0 bytes)
//! ```
//!
//! **Loading** (moby `image/tarexport/load.go` `legacyLoadImage`, removed in 2025): the layers are
//! the `parent` chain from the tagged id down to the root. For every level docker appends
//! `v1.HistoryFromConfig(json)` to the parent's history and stores `v1.MakeConfigFromV1Config`:
//! the level's `json` — first round-tripped through Go's `image.V1Image` struct when its
//! `docker_version` is below 1.8.3 — as a `map[string]*json.RawMessage` without
//! `id, parent, Size, parent_id, layer_id, throwaway`, plus `rootfs` and `history`, marshalled
//! with sorted keys. The image ID is the sha256 of those bytes; [`config_from_v1_chain`]
//! reproduces them byte for byte, so hoist and docker 20.10 agree on the ID.
//!
//! **Saving** (moby `image/tarexport/save.go` `saveImage`, `image/v1/imagev1.go` `CreateID`):
//! every layer gets a directory named by a v1 id derived from the config, its chain ID and its
//! parent's v1 id; [`v1_layer_entries`] computes these ids and the `json` bytes docker writes.
//!
//! Go's JSON rules that make this byte-exact (HTML escaping, sorted map keys, case-insensitive
//! field matching, `time.Time` formatting) live in [`crate::gojson`]. The Go struct shapes are
//! those of docker 20.10 (`image.V1Image`, `container.Config` without `StartInterval`), which
//! docker 24 shares.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use crate::digest::{Digest, DigestError};
use crate::gojson::{self, FieldError, GoJsonError, GoTime, decode_pointer};

/// Content of every `<v1 id>/VERSION` file (the v1 JSON schema version).
pub const VERSION_FILE_CONTENT: &[u8] = b"1.0";

/// moby `noFallbackMinVersion`: a v1 `json` written by a docker older than this is round-tripped
/// through `image.V1Image` before it becomes a config, which drops fields that docker no longer
/// knows and normalizes the rest.
const NO_FALLBACK_MIN_DOCKER_VERSION: &str = "1.8.3";

/// Keys `MakeConfigFromV1Config` deletes: per-layer identity and sizes that must not leak into a
/// content-addressed config (`parent_id`/`layer_id` are docker 1.10 migration leftovers).
const KEYS_DROPPED_FROM_CONFIG: [&str; 6] =
    ["id", "parent", "Size", "parent_id", "layer_id", "throwaway"];

/// `image.TypeLayers`, the only rootfs type docker writes on Linux.
const ROOTFS_TYPE_LAYERS: &str = "layers";

/// JSON names of `image.V1Image`'s fields, in declaration (and marshal) order.
const V1_IMAGE_FIELDS: [&str; 13] = [
    "id",
    "parent",
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
];

/// Index of `parent` in [`V1_IMAGE_FIELDS`]: in an `image.Image` the outer `Parent` field shadows
/// it, so a config's `parent` never reaches the embedded `V1Image`.
const V1_PARENT_FIELD: usize = 1;

/// JSON names of `container.Config`'s fields (docker 20.10 – 24), in declaration order.
const CONTAINER_CONFIG_FIELDS: [&str; 25] = [
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

/// Most layers one v1 parent chain may have. Real ones are far shorter: docker's layer store
/// refuses chains deeper than 125 (moby `layer/layer_store.go` `maxLayerDepth`, "max depth
/// exceeded"). The chain is implicit in the archive (each tag walks it again and gets a config
/// with one history entry per layer), so without a bound a small archive whose every layer is
/// tagged would cost time and memory quadratic in its size; this bound keeps that linear with a
/// factor far above any image docker could have written.
pub const MAX_V1_CHAIN_DEPTH: usize = 4096;

/// JSON names of `container.HealthConfig`'s fields (docker 20.10 – 24), in declaration order.
const HEALTH_CONFIG_FIELDS: [&str; 5] = ["Test", "Interval", "Timeout", "StartPeriod", "Retries"];

/// What is wrong with a legacy archive's metadata.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// A layer's v1 `json` is not JSON, or a field has a type docker's Go structs refuse (docker
    /// 20.10 fails the load with the same input).
    #[error("v1 json of layer {layer}: field {field:?}: {source}")]
    V1Json {
        /// The layer: its v1 id when known, else `#<index in the chain, root = 0>`.
        layer: String,
        /// Dotted path of the offending field (`""` for the document itself).
        field: String,
        /// What Go's decoder would have said.
        source: GoJsonError,
    },
    /// The chain given to [`config_from_v1_chain`] is empty.
    #[error("a legacy image needs at least one layer")]
    EmptyChain,
    /// One diff_id per layer is needed.
    #[error("{layers} v1 layers but {diff_ids} diff_ids")]
    DiffIdCount {
        /// Number of layer `json` files.
        layers: usize,
        /// Number of diff_ids.
        diff_ids: usize,
    },
    /// A v1 id (from `repositories` or a `parent` field) cannot name a directory of the archive.
    #[error("invalid v1 id {id:?}: {reason}")]
    InvalidId {
        /// The id as found.
        id: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A v1 id is referenced but the archive has no `<id>/json`.
    #[error("v1 layer {id} is missing{}", .child.as_ref().map(|c| format!(" (parent of {c})")).unwrap_or_default())]
    MissingLayer {
        /// The id that was looked up.
        id: String,
        /// The layer whose `parent` named it, if any (else it came from `repositories`).
        child: Option<String>,
    },
    /// Following `parent` links came back to a layer already in the chain.
    #[error("the parent chain of v1 layer {top} loops back to {id}")]
    Cycle {
        /// Where the walk started.
        top: String,
        /// The layer reached twice.
        id: String,
    },
    /// Following `parent` links went past [`MAX_V1_CHAIN_DEPTH`] layers without a loop.
    #[error(
        "the parent chain of v1 layer {top} is more than {max} layers deep (hoist's limit; \
         docker's layer store stops at 125)"
    )]
    TooDeep {
        /// Where the walk started.
        top: String,
        /// The limit it passed.
        max: usize,
    },
    /// The `repositories` file is not a `{"name":{"tag":"id"}}` object.
    #[error("invalid repositories file: {source}")]
    Repositories {
        /// The decoding error.
        source: GoJsonError,
    },
    /// An image config cannot be read the way docker reads it (for [`v1_layer_entries`]).
    #[error("image config: field {field:?}: {source}")]
    Config {
        /// Dotted path of the offending field.
        field: String,
        /// The decoding error.
        source: GoJsonError,
    },
    /// The config has no `rootfs` (docker: "invalid image JSON, no RootFS key").
    #[error("image config has no rootfs")]
    NoRootfs,
    /// The config has no layers; docker refuses to save such an image ("empty export - not
    /// implemented").
    #[error("image config has no layers (docker cannot save an image without layers)")]
    NoLayers,
    /// A `rootfs.diff_ids` entry is not a sha256 digest.
    #[error("rootfs.diff_ids[{index}] = {value:?}: {source}")]
    InvalidDiffId {
        /// Position in `diff_ids`.
        index: usize,
        /// The value as found.
        value: String,
        /// Why it is not a digest.
        source: DigestError,
    },
}

// ---------------------------------------------------------------------------------------------
// Go types (docker 20.10): decoding with encoding/json's rules, marshalling in field order
// ---------------------------------------------------------------------------------------------

/// `container.HealthConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HealthConfig {
    test: Option<Vec<String>>,
    interval: i64,
    timeout: i64,
    start_period: i64,
    retries: i64,
}

/// `container.Config`. `Option` marks Go's nil-able slices, maps and pointers (nil = `None`,
/// marshalled `null` unless `omitempty`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ContainerConfig {
    hostname: String,
    domainname: String,
    user: String,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    exposed_ports: Option<BTreeMap<String, ()>>,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    healthcheck: Option<HealthConfig>,
    args_escaped: bool,
    image: String,
    volumes: Option<BTreeMap<String, ()>>,
    working_dir: String,
    entrypoint: Option<Vec<String>>,
    network_disabled: bool,
    mac_address: String,
    on_build: Option<Vec<String>>,
    labels: Option<BTreeMap<String, String>>,
    stop_signal: String,
    stop_timeout: Option<i64>,
    shell: Option<Vec<String>>,
}

/// `image.V1Image`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct V1Image {
    id: String,
    parent: String,
    comment: String,
    created: GoTime,
    container: String,
    container_config: ContainerConfig,
    docker_version: String,
    author: String,
    config: Option<ContainerConfig>,
    architecture: String,
    variant: String,
    os: String,
    size: i64,
}

/// Decodes docker's `strslice.StrSlice`: a JSON array of strings, or a single string (one
/// element), or `null` (nil). It replaces the old value entirely.
fn decode_strslice(src: &[u8], into: &mut Option<Vec<String>>) -> Result<(), GoJsonError> {
    let mut list = Some(Vec::new());
    if let Err(as_list) = gojson::decode_string_slice(src, &mut list) {
        let mut single = String::new();
        // Go returns the error of the second attempt; both say the value has the wrong kind.
        gojson::decode_string(src, &mut single).map_err(|_| as_list)?;
        list = Some(vec![single]);
    }
    *into = list;
    Ok(())
}

/// Decodes a Go `*int`.
fn decode_int_pointer(src: &[u8], into: &mut Option<i64>) -> Result<(), GoJsonError> {
    gojson::validate(src)?;
    if gojson::kind_of(src) == gojson::Kind::Null {
        *into = None;
        return Ok(());
    }
    gojson::decode_i64(src, into.get_or_insert(0))
}

impl HealthConfig {
    fn decode(src: &[u8], h: &mut HealthConfig) -> Result<(), FieldError> {
        gojson::decode_struct(src, &HEALTH_CONFIG_FIELDS, |i, v| {
            match i {
                0 => gojson::decode_string_slice(v, &mut h.test),
                1 => gojson::decode_i64(v, &mut h.interval),
                2 => gojson::decode_i64(v, &mut h.timeout),
                3 => gojson::decode_i64(v, &mut h.start_period),
                _ => gojson::decode_i64(v, &mut h.retries),
            }
            .map_err(|e| FieldError::from(e).within(HEALTH_CONFIG_FIELDS[i]))
        })
    }

    fn marshal(&self, out: &mut Vec<u8>) {
        let mut o = ObjectWriter::new(out);
        if let Some(test) = self.test.as_ref().filter(|t| !t.is_empty()) {
            write_string_list(o.key("Test"), Some(test));
        }
        for (name, value) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("Retries", self.retries),
        ] {
            if value != 0 {
                o.key(name).extend_from_slice(value.to_string().as_bytes());
            }
        }
        o.end();
    }
}

impl ContainerConfig {
    /// Decodes a `container.Config` with Go's rules into `c` (fields already set stay unless
    /// the JSON sets them: Go decodes into the existing value).
    pub(crate) fn decode(src: &[u8], c: &mut ContainerConfig) -> Result<(), FieldError> {
        gojson::decode_struct(src, &CONTAINER_CONFIG_FIELDS, |i, v| {
            let result: Result<(), FieldError> = match i {
                0 => gojson::decode_string(v, &mut c.hostname).map_err(Into::into),
                1 => gojson::decode_string(v, &mut c.domainname).map_err(Into::into),
                2 => gojson::decode_string(v, &mut c.user).map_err(Into::into),
                3 => gojson::decode_bool(v, &mut c.attach_stdin).map_err(Into::into),
                4 => gojson::decode_bool(v, &mut c.attach_stdout).map_err(Into::into),
                5 => gojson::decode_bool(v, &mut c.attach_stderr).map_err(Into::into),
                6 => gojson::decode_map(v, &mut c.exposed_ports, gojson::decode_empty_struct)
                    .map_err(Into::into),
                7 => gojson::decode_bool(v, &mut c.tty).map_err(Into::into),
                8 => gojson::decode_bool(v, &mut c.open_stdin).map_err(Into::into),
                9 => gojson::decode_bool(v, &mut c.stdin_once).map_err(Into::into),
                10 => gojson::decode_string_slice(v, &mut c.env).map_err(Into::into),
                11 => decode_strslice(v, &mut c.cmd).map_err(Into::into),
                12 => decode_pointer(v, &mut c.healthcheck, HealthConfig::decode),
                13 => gojson::decode_bool(v, &mut c.args_escaped).map_err(Into::into),
                14 => gojson::decode_string(v, &mut c.image).map_err(Into::into),
                15 => gojson::decode_map(v, &mut c.volumes, gojson::decode_empty_struct)
                    .map_err(Into::into),
                16 => gojson::decode_string(v, &mut c.working_dir).map_err(Into::into),
                17 => decode_strslice(v, &mut c.entrypoint).map_err(Into::into),
                18 => gojson::decode_bool(v, &mut c.network_disabled).map_err(Into::into),
                19 => gojson::decode_string(v, &mut c.mac_address).map_err(Into::into),
                20 => gojson::decode_string_slice(v, &mut c.on_build).map_err(Into::into),
                21 => {
                    gojson::decode_map(v, &mut c.labels, gojson::decode_string).map_err(Into::into)
                }
                22 => gojson::decode_string(v, &mut c.stop_signal).map_err(Into::into),
                23 => decode_int_pointer(v, &mut c.stop_timeout).map_err(Into::into),
                _ => decode_strslice(v, &mut c.shell).map_err(Into::into),
            };
            result.map_err(|e| e.within(CONTAINER_CONFIG_FIELDS[i]))
        })
    }

    /// `json.Marshal(container.Config)`.
    pub(crate) fn marshal(&self, out: &mut Vec<u8>) {
        let mut o = ObjectWriter::new(out);
        gojson::write_string(o.key("Hostname"), &self.hostname);
        gojson::write_string(o.key("Domainname"), &self.domainname);
        gojson::write_string(o.key("User"), &self.user);
        write_bool(o.key("AttachStdin"), self.attach_stdin);
        write_bool(o.key("AttachStdout"), self.attach_stdout);
        write_bool(o.key("AttachStderr"), self.attach_stderr);
        if let Some(ports) = self.exposed_ports.as_ref().filter(|p| !p.is_empty()) {
            write_set(o.key("ExposedPorts"), Some(ports));
        }
        write_bool(o.key("Tty"), self.tty);
        write_bool(o.key("OpenStdin"), self.open_stdin);
        write_bool(o.key("StdinOnce"), self.stdin_once);
        write_string_list(o.key("Env"), self.env.as_ref());
        write_string_list(o.key("Cmd"), self.cmd.as_ref());
        if let Some(health) = &self.healthcheck {
            health.marshal(o.key("Healthcheck"));
        }
        if self.args_escaped {
            write_bool(o.key("ArgsEscaped"), true);
        }
        gojson::write_string(o.key("Image"), &self.image);
        write_set(o.key("Volumes"), self.volumes.as_ref());
        gojson::write_string(o.key("WorkingDir"), &self.working_dir);
        write_string_list(o.key("Entrypoint"), self.entrypoint.as_ref());
        if self.network_disabled {
            write_bool(o.key("NetworkDisabled"), true);
        }
        if !self.mac_address.is_empty() {
            gojson::write_string(o.key("MacAddress"), &self.mac_address);
        }
        write_string_list(o.key("OnBuild"), self.on_build.as_ref());
        write_string_map(o.key("Labels"), self.labels.as_ref());
        if !self.stop_signal.is_empty() {
            gojson::write_string(o.key("StopSignal"), &self.stop_signal);
        }
        if let Some(timeout) = self.stop_timeout {
            o.key("StopTimeout")
                .extend_from_slice(timeout.to_string().as_bytes());
        }
        if let Some(shell) = self.shell.as_ref().filter(|s| !s.is_empty()) {
            write_string_list(o.key("Shell"), Some(shell));
        }
        o.end();
    }
}

/// How a JSON document is decoded into a `V1Image`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V1Source {
    /// A layer's v1 `json`: decoded into `image.V1Image` itself.
    LayerJson,
    /// An image config: decoded into `image.Image`, whose own `parent` shadows the embedded one.
    ImageConfig,
}

/// `image.RootFS`, as far as saving needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RootFs {
    kind: String,
    diff_ids: Option<Vec<String>>,
}

impl V1Image {
    /// Decodes `src` into `img` (and, for an image config, its `rootfs` into `rootfs`).
    fn decode(
        src: &[u8],
        source: V1Source,
        img: &mut V1Image,
        mut rootfs: Option<&mut Option<RootFs>>,
    ) -> Result<(), FieldError> {
        let mut fields: Vec<&str> = V1_IMAGE_FIELDS.to_vec();
        if source == V1Source::ImageConfig {
            fields.push("rootfs");
        }
        gojson::decode_struct(src, &fields, |i, v| {
            let result: Result<(), FieldError> = match i {
                0 => gojson::decode_string(v, &mut img.id).map_err(Into::into),
                V1_PARENT_FIELD if source == V1Source::ImageConfig => Ok(()),
                V1_PARENT_FIELD => gojson::decode_string(v, &mut img.parent).map_err(Into::into),
                2 => gojson::decode_string(v, &mut img.comment).map_err(Into::into),
                3 => gojson::decode_time(v, &mut img.created).map_err(Into::into),
                4 => gojson::decode_string(v, &mut img.container).map_err(Into::into),
                5 => ContainerConfig::decode(v, &mut img.container_config),
                6 => gojson::decode_string(v, &mut img.docker_version).map_err(Into::into),
                7 => gojson::decode_string(v, &mut img.author).map_err(Into::into),
                8 => decode_pointer(v, &mut img.config, ContainerConfig::decode),
                9 => gojson::decode_string(v, &mut img.architecture).map_err(Into::into),
                10 => gojson::decode_string(v, &mut img.variant).map_err(Into::into),
                11 => gojson::decode_string(v, &mut img.os).map_err(Into::into),
                12 => gojson::decode_i64(v, &mut img.size).map_err(Into::into),
                _ => match rootfs.as_deref_mut() {
                    Some(rootfs) => decode_pointer(v, rootfs, RootFs::decode),
                    None => Ok(()),
                },
            };
            result.map_err(|e| e.within(fields[i]))
        })
    }

    /// `json.Marshal(image.V1Image)`: fields in declaration order, `omitempty` honoured.
    fn marshal(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let mut o = ObjectWriter::new(&mut out);
        for (name, value) in [
            ("id", &self.id),
            ("parent", &self.parent),
            ("comment", &self.comment),
        ] {
            if !value.is_empty() {
                gojson::write_string(o.key(name), value);
            }
        }
        o.key("created")
            .extend_from_slice(self.created.to_json().as_bytes());
        if !self.container.is_empty() {
            gojson::write_string(o.key("container"), &self.container);
        }
        self.container_config.marshal(o.key("container_config"));
        for (name, value) in [
            ("docker_version", &self.docker_version),
            ("author", &self.author),
        ] {
            if !value.is_empty() {
                gojson::write_string(o.key(name), value);
            }
        }
        if let Some(config) = &self.config {
            config.marshal(o.key("config"));
        }
        for (name, value) in [
            ("architecture", &self.architecture),
            ("variant", &self.variant),
            ("os", &self.os),
        ] {
            if !value.is_empty() {
                gojson::write_string(o.key(name), value);
            }
        }
        if self.size != 0 {
            o.key("Size")
                .extend_from_slice(self.size.to_string().as_bytes());
        }
        o.end();
        out
    }
}

impl RootFs {
    fn decode(src: &[u8], r: &mut RootFs) -> Result<(), FieldError> {
        const FIELDS: [&str; 2] = ["type", "diff_ids"];
        gojson::decode_struct(src, &FIELDS, |i, v| {
            match i {
                0 => gojson::decode_string(v, &mut r.kind),
                _ => gojson::decode_string_slice(v, &mut r.diff_ids),
            }
            .map_err(|e| FieldError::from(e).within(FIELDS[i]))
        })
    }
}

/// Writes `{"k":v,...}` members in the order given, as Go's struct encoder does.
struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, first: true }
    }

    /// Writes the separator and `"name":`, and returns the buffer for the value.
    fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        gojson::write_string(self.out, name);
        self.out.push(b':');
        self.out
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// A Go `[]string`: `null` when nil.
fn write_string_list(out: &mut Vec<u8>, list: Option<&Vec<String>>) {
    let Some(list) = list else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'[');
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        gojson::write_string(out, s);
    }
    out.push(b']');
}

/// A Go `map[string]struct{}`: keys sorted, values `{}`; `null` when nil.
fn write_set(out: &mut Vec<u8>, set: Option<&BTreeMap<String, ()>>) {
    let Some(set) = set else {
        out.extend_from_slice(b"null");
        return;
    };
    let mut o = ObjectWriter::new(out);
    for key in set.keys() {
        o.key(key).extend_from_slice(b"{}");
    }
    o.end();
}

/// A Go `map[string]string`: keys sorted; `null` when nil.
fn write_string_map(out: &mut Vec<u8>, map: Option<&BTreeMap<String, String>>) {
    let Some(map) = map else {
        out.extend_from_slice(b"null");
        return;
    };
    let mut o = ObjectWriter::new(out);
    for (key, value) in map {
        gojson::write_string(o.key(key), value);
    }
    o.end();
}

/// `image.History` as `v1.HistoryFromConfig` fills it (never an empty layer).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HistoryEntry {
    created: GoTime,
    author: String,
    created_by: String,
    comment: String,
}

impl HistoryEntry {
    fn from_v1(img: &V1Image) -> Self {
        HistoryEntry {
            created: img.created,
            author: img.author.clone(),
            created_by: img
                .container_config
                .cmd
                .as_deref()
                .unwrap_or_default()
                .join(" "),
            comment: img.comment.clone(),
        }
    }

    fn marshal(&self, out: &mut Vec<u8>) {
        let mut o = ObjectWriter::new(out);
        o.key("created")
            .extend_from_slice(self.created.to_json().as_bytes());
        for (name, value) in [
            ("author", &self.author),
            ("created_by", &self.created_by),
            ("comment", &self.comment),
        ] {
            if !value.is_empty() {
                gojson::write_string(o.key(name), value);
            }
        }
        o.end();
    }
}

// ---------------------------------------------------------------------------------------------
// Reading legacy archives
// ---------------------------------------------------------------------------------------------

/// One tag of a `repositories` file: `name:tag` points at the v1 id of the image's top layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RepositoryTag {
    /// Repository name as written (`busybox`, `myreg:5000/x`); normalizing it is the caller's job.
    pub name: String,
    /// Tag as written.
    pub tag: String,
    /// v1 id of the top layer.
    pub id: String,
}

/// Parses a `repositories` file (`{"name":{"tag":"<v1 id>"}}`) the way docker's legacy loader
/// decodes it into `map[string]map[string]string`: only the first JSON value is read (trailing
/// bytes are ignored, as by `json.Decoder`), the last of duplicate keys wins, a `null` repository
/// has no tags. The result is sorted by name, then tag. Ids are not checked here.
pub fn parse_repositories(bytes: &[u8]) -> Result<Vec<RepositoryTag>, LegacyError> {
    let err = |source| LegacyError::Repositories { source };
    let value = gojson::first_value(bytes).map_err(err)?;
    let mut repos: Option<BTreeMap<String, Option<BTreeMap<String, String>>>> = None;
    gojson::decode_map(value, &mut repos, |v, tags| {
        gojson::decode_map(v, tags, gojson::decode_string)
    })
    .map_err(err)?;
    let mut out = Vec::new();
    for (name, tags) in repos.unwrap_or_default() {
        for (tag, id) in tags.unwrap_or_default() {
            out.push(RepositoryTag {
                name: name.clone(),
                tag,
                id,
            });
        }
    }
    Ok(out)
}

/// Checks that a v1 id can name a directory at the archive root. Docker only required the path
/// `<id>/json` to stay inside the extracted archive; hoist asks for a single plain component.
pub fn check_v1_id(id: &str) -> Result<(), LegacyError> {
    let reason = if id.is_empty() {
        "empty"
    } else if id == "." || id == ".." {
        "not a directory name"
    } else if id.contains(['/', '\\', '\0']) {
        "contains a path separator or NUL"
    } else {
        return Ok(());
    };
    Err(LegacyError::InvalidId {
        id: id.to_string(),
        reason,
    })
}

/// The `OS` and `Parent` of a v1 `json`, decoded as docker's loader does (into
/// `struct { OS, Parent string }`, so the keys match case-insensitively).
fn os_and_parent(json: &[u8]) -> Result<(String, String), LegacyError> {
    const FIELDS: [&str; 2] = ["OS", "Parent"];
    let (mut os, mut parent) = (String::new(), String::new());
    gojson::decode_struct(json, &FIELDS, |i, v| {
        gojson::decode_string(v, if i == 0 { &mut os } else { &mut parent })
            .map_err(|e| FieldError::from(e).within(FIELDS[i]))
    })
    .map_err(|e| LegacyError::V1Json {
        layer: id_hint(json).unwrap_or_else(|| "(unknown)".to_string()),
        field: e.path,
        source: e.source,
    })?;
    Ok((os, parent))
}

/// The parent v1 id named by a layer's `json`, `None` for a root layer (no or empty `parent`).
pub fn parent_of(json: &[u8]) -> Result<Option<String>, LegacyError> {
    let (_, parent) = os_and_parent(json)?;
    Ok(Some(parent).filter(|p| !p.is_empty()))
}

/// The operating system named by a layer's `json`, `None` if absent or empty (docker then
/// assumed its own). Docker 20.10 on Linux refused to load a `windows` one.
pub fn os_of(json: &[u8]) -> Result<Option<String>, LegacyError> {
    let (os, _) = os_and_parent(json)?;
    Ok(Some(os).filter(|o| !o.is_empty()))
}

/// The v1 ids from the root layer up to `top`, following `parent` links. `json_of(id)` returns
/// the bytes of `<id>/json`, or `None` if the archive has no such layer. Every id is checked with
/// [`check_v1_id`]; a loop is an error (docker itself would recurse forever), and so is a chain
/// longer than [`MAX_V1_CHAIN_DEPTH`]. The walk is a loop with a set of the ids seen, so its
/// time and memory grow with the chain's length only.
pub fn chain_from_top<B: AsRef<[u8]>>(
    top: &str,
    mut json_of: impl FnMut(&str) -> Option<B>,
) -> Result<Vec<String>, LegacyError> {
    let mut chain = Vec::new();
    let mut seen = HashSet::new();
    let mut current = top.to_string();
    let mut child: Option<String> = None;
    loop {
        check_v1_id(&current)?;
        if !seen.insert(current.clone()) {
            return Err(LegacyError::Cycle {
                top: top.to_string(),
                id: current,
            });
        }
        if chain.len() == MAX_V1_CHAIN_DEPTH {
            return Err(LegacyError::TooDeep {
                top: top.to_string(),
                max: MAX_V1_CHAIN_DEPTH,
            });
        }
        let json = json_of(&current).ok_or_else(|| LegacyError::MissingLayer {
            id: current.clone(),
            child: child.clone(),
        })?;
        let parent = parent_of(json.as_ref()).map_err(|e| match e {
            LegacyError::V1Json { field, source, .. } => LegacyError::V1Json {
                layer: current.clone(),
                field,
                source,
            },
            other => other,
        })?;
        chain.push(current.clone());
        match parent {
            Some(parent) => {
                child = Some(std::mem::replace(&mut current, parent));
            }
            None => break,
        }
    }
    chain.reverse();
    Ok(chain)
}

/// The `id` a v1 `json` claims, for error messages.
fn id_hint(json: &[u8]) -> Option<String> {
    let entries = gojson::object_entries(json).ok()??;
    let (_, value) = entries.into_iter().rev().find(|(k, _)| k == "id")?;
    gojson::unquote(value).ok().filter(|id| !id.is_empty())
}

/// docker's `versions.LessThan`: dot-separated parts compared as integers, where a part that is
/// not an integer counts as 0 (so `""` and `"dev"` are older than everything).
fn docker_version_less(version: &str, other: &str) -> bool {
    /// Go's `strconv.Atoi` as `versions.compare` uses it: errors become 0, overflow saturates.
    fn atoi(part: &str) -> i64 {
        match part.parse::<i64>() {
            Ok(n) => n,
            Err(e) => match e.kind() {
                std::num::IntErrorKind::PosOverflow => i64::MAX,
                std::num::IntErrorKind::NegOverflow => i64::MIN,
                _ => 0,
            },
        }
    }
    let a: Vec<&str> = version.split('.').collect();
    let b: Vec<&str> = other.split('.').collect();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).map_or(0, |p| atoi(p));
        let y = b.get(i).map_or(0, |p| atoi(p));
        if x != y {
            return x < y;
        }
    }
    false
}

/// `json.Marshal(image.RootFS{Type: "layers", DiffIDs: diff_ids})`.
fn rootfs_json(diff_ids: &[Digest]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut o = ObjectWriter::new(&mut out);
    gojson::write_string(o.key("type"), ROOTFS_TYPE_LAYERS);
    if !diff_ids.is_empty() {
        let list: Vec<String> = diff_ids.iter().map(ToString::to_string).collect();
        write_string_list(o.key("diff_ids"), Some(&list));
    }
    o.end();
    out
}

/// The image config docker 20.10 stores when it loads a legacy v1 image, byte for byte; its
/// sha256 is docker's image ID.
///
/// `layers_json` are the `<id>/json` files of the chain, root first (see [`chain_from_top`]);
/// `diff_ids` the sha256 of each decompressed `layer.tar` in the same order (a 0-byte file is a
/// layer too, with diff_id `sha256:e3b0c442…`). Passing a prefix of a chain gives the config docker
/// creates for that intermediate (untagged) level.
///
/// Every `json` is decoded as Go decodes `image.V1Image` (a type docker refuses is an error here
/// too); the history entry of each level is `{created, author, created_by = join(container_config.
/// Cmd, " "), comment}`. The top `json` becomes the config: round-tripped through `V1Image` if its
/// `docker_version` is older than 1.8.3 (or missing), else kept as written (only compacted and
/// HTML-escaped), minus `id, parent, Size, parent_id, layer_id, throwaway`, plus `rootfs` and
/// `history`, with keys sorted.
pub fn config_from_v1_chain(
    layers_json: &[&[u8]],
    diff_ids: &[Digest],
) -> Result<Vec<u8>, LegacyError> {
    if layers_json.is_empty() {
        return Err(LegacyError::EmptyChain);
    }
    if layers_json.len() != diff_ids.len() {
        return Err(LegacyError::DiffIdCount {
            layers: layers_json.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut history = Vec::with_capacity(layers_json.len());
    let mut top = V1Image::default();
    for (index, json) in layers_json.iter().enumerate() {
        let mut img = V1Image::default();
        V1Image::decode(json, V1Source::LayerJson, &mut img, None).map_err(|e| {
            LegacyError::V1Json {
                layer: id_hint(json).unwrap_or_else(|| format!("#{index}")),
                field: e.path,
                source: e.source,
            }
        })?;
        history.push(HistoryEntry::from_v1(&img));
        top = img;
    }
    let top_json = layers_json[layers_json.len() - 1];

    let source: Cow<'_, [u8]> =
        if docker_version_less(&top.docker_version, NO_FALLBACK_MIN_DOCKER_VERSION) {
            Cow::Owned(top.marshal())
        } else {
            Cow::Borrowed(top_json)
        };
    let as_v1_error = |source| LegacyError::V1Json {
        layer: id_hint(top_json).unwrap_or_else(|| format!("#{}", layers_json.len() - 1)),
        field: String::new(),
        source,
    };
    let mut config = gojson::unmarshal_raw_map(&source).map_err(as_v1_error)?;
    for key in KEYS_DROPPED_FROM_CONFIG {
        config.remove(key);
    }
    config.insert("rootfs".to_string(), rootfs_json(diff_ids));
    let mut history_json = vec![b'['];
    for (i, entry) in history.iter().enumerate() {
        if i > 0 {
            history_json.push(b',');
        }
        entry.marshal(&mut history_json);
    }
    history_json.push(b']');
    config.insert("history".to_string(), history_json);
    gojson::marshal_raw_map(&config).map_err(as_v1_error)
}

// ---------------------------------------------------------------------------------------------
// Writing the docker-legacy layout
// ---------------------------------------------------------------------------------------------

/// One `<v1 id>/` directory of a docker 1.10 – 24 `docker save`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Layer {
    /// The v1 id (64 hex digits): the directory name, and `repositories`' target for the top layer.
    pub id: String,
    /// The v1 id of the layer below, `None` for the first layer.
    pub parent: Option<String>,
    /// The layer's diff_id (`rootfs.diff_ids[i]`).
    pub diff_id: Digest,
    /// The chain ID of the layers up to and including this one.
    pub chain_id: Digest,
    /// The exact bytes of `<v1 id>/json`.
    pub json: Vec<u8>,
}

/// Chain IDs (OCI image-spec `identity.ChainID`) of every prefix of `diff_ids`:
/// `chain[0] = diff_ids[0]`, `chain[i] = sha256("<chain[i-1]> <diff_ids[i]>")`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

/// The v1 ids and `json` files docker 20.10 (and every docker from 1.10 to 24) writes for an image
/// with config bytes `config`, one per `rootfs.diff_ids` entry, bottom layer first.
///
/// As moby's `saveImage`/`v1.CreateID`: layer *i* gets a `V1Image` that is the config's own for
/// the top layer and `{created: 1970-01-01T00:00:00Z}` below it; its id is the sha256 of that
/// `V1Image` (without `id`) marshalled as a map with `layer_id` = chain ID and `parent` =
/// `sha256:<parent v1 id>` added; the `json` file is the same `V1Image` with `id`, `parent` (bare
/// hex) and the config's `os` set, in struct order. The epoch timestamp assumes the daemon ran
/// in UTC, as docker does by default (`time.Unix(0, 0)` is local time).
///
/// Equal layers in one image get distinct v1 ids (their chain IDs differ); two images sharing
/// their lower layers share those v1 ids, and `docker save` writes such a directory once.
pub fn v1_layer_entries(config: &[u8]) -> Result<Vec<V1Layer>, LegacyError> {
    let mut top = V1Image::default();
    let mut rootfs: Option<RootFs> = None;
    V1Image::decode(config, V1Source::ImageConfig, &mut top, Some(&mut rootfs)).map_err(|e| {
        LegacyError::Config {
            field: e.path,
            source: e.source,
        }
    })?;
    let rootfs = rootfs.ok_or(LegacyError::NoRootfs)?;
    let raw_diff_ids = rootfs.diff_ids.unwrap_or_default();
    if raw_diff_ids.is_empty() {
        return Err(LegacyError::NoLayers);
    }
    let diff_ids = raw_diff_ids
        .iter()
        .enumerate()
        .map(|(index, value)| {
            Digest::parse(value).map_err(|source| LegacyError::InvalidDiffId {
                index,
                value: value.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let chain = chain_ids(&diff_ids);

    let mut layers: Vec<V1Layer> = Vec::with_capacity(diff_ids.len());
    for (i, (diff_id, chain_id)) in diff_ids.iter().zip(&chain).enumerate() {
        let parent = layers.last().map(|l| l.id.clone());
        let mut img = if i + 1 == diff_ids.len() {
            top.clone()
        } else {
            V1Image {
                created: GoTime::UNIX_EPOCH,
                ..V1Image::default()
            }
        };
        img.id.clear();
        let hashed_as_config = |source| LegacyError::Config {
            field: String::new(),
            source,
        };
        let mut fields = gojson::unmarshal_raw_map(&img.marshal()).map_err(hashed_as_config)?;
        fields.insert(
            "layer_id".to_string(),
            gojson::quote(&chain_id.to_string()).into_bytes(),
        );
        if let Some(parent) = &parent {
            fields.insert(
                "parent".to_string(),
                gojson::quote(&format!("sha256:{parent}")).into_bytes(),
            );
        }
        let id = Digest::of(&gojson::marshal_raw_map(&fields).map_err(hashed_as_config)?)
            .hex()
            .to_string();
        img.id = id.clone();
        img.parent = parent.clone().unwrap_or_default();
        img.os = top.os.clone();
        layers.push(V1Layer {
            id,
            parent,
            diff_id: diff_id.clone(),
            chain_id: chain_id.clone(),
            json: img.marshal(),
        });
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Test data extracted from the corpus archives (crates/hoist/tests/data) and from
    /// `docker save` of them with docker 20.10.24.
    macro_rules! testdata {
        ($name:literal) => {
            include_bytes!(concat!("testdata/legacy/", $name)).as_slice()
        };
    }

    /// v1 jsons root first, diff_ids, docker's image ID, docker's config bytes if saved.
    type ChainCase<'a> = (&'a [&'a [u8]], Vec<Digest>, &'a str, Option<&'a [u8]>);
    /// v1 jsons root first (0-byte layers), docker's image ID, docker's config bytes if saved.
    type ProbeCase<'a> = (&'a [&'a [u8]], &'a str, Option<&'a [u8]>);
    /// Config, v1 ids bottom first, `(layer index, json bytes)` docker wrote.
    type SaveCase<'a> = (&'a [u8], &'a [&'a str], &'a [(usize, &'a [u8])]);

    fn digest(s: &str) -> Digest {
        Digest::parse(s).unwrap()
    }

    fn digests(list: &[&str]) -> Vec<Digest> {
        list.iter().map(|s| digest(s)).collect()
    }

    const EMPTYLAYER_JSON: [&[u8]; 3] = [
        testdata!("emptylayer-0-17d1436e.json"),
        testdata!("emptylayer-1-9c7cb910.json"),
        testdata!("emptylayer-2-25445a0f.json"),
    ];
    const EMPTYLAYER_IDS: [&str; 3] = [
        "17d1436ef796af2fc2210cc37c4672e5aa1b62cb08ac4b95dd15372321105a66",
        "9c7cb910d84346a3fbf3cc2be046f44bf0af7f11eb8db2ef1f45e93c1202faac",
        "25445a0fc5025c3917a0cd6e307d92322540e0da691614312ddea22511b71513",
    ];
    const EMPTYLAYER_DIFF_IDS: [&str; 3] = [
        "sha256:f624397841595b2369935cbd47fde10171ff91347afa9a5c793275d3765e8e0d",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:3b90aed61465a1f294fdd312108c1e7f476b3e1b7246c8eebc0f537dec42f2de",
    ];
    const NOMANIFEST_DIFF_ID: &str =
        "sha256:fbec6100edacb7a6374f75545cfdfac2d83f74d0f5ed813645e4c3944c68c761";

    #[test]
    fn synthesized_configs_match_docker_20_10_image_ids() {
        // (v1 jsons root first, diff_ids, docker 20.10 image ID, config bytes from `docker save`)
        let cases: [ChainCase<'_>; 4] = [
            (
                &EMPTYLAYER_JSON,
                digests(&EMPTYLAYER_DIFF_IDS),
                "sha256:a9e31d6f186fbbe2468c9961316dba93971266d344ba960f68911df6e29b564c",
                Some(testdata!("emptylayer-docker20-config.json")),
            ),
            (
                &[testdata!("nomanifest-0-c47412cb.json")],
                digests(&[NOMANIFEST_DIFF_ID]),
                "sha256:a2673db3c3d86a802c915e140274aed9d62464681af1371c881d7f5821b05645",
                Some(testdata!("nomanifest-docker20-config.json")),
            ),
            // The untagged intermediate images docker 20.10 created for the same load
            // (`docker images -a`).
            (
                &EMPTYLAYER_JSON[..2],
                digests(&EMPTYLAYER_DIFF_IDS[..2]),
                "sha256:c815505e38713d48fe3a497a874d725ba8fd8df1e5c1e7273adc7dff6baa3af6",
                None,
            ),
            (
                &EMPTYLAYER_JSON[..1],
                digests(&EMPTYLAYER_DIFF_IDS[..1]),
                "sha256:e93bb34ecc6eb92603a2ef4ce8f2bb5c41673f69f92b4e4ed661386a2d31696d",
                None,
            ),
        ];
        for (jsons, diff_ids, image_id, docker_bytes) in cases {
            let config = config_from_v1_chain(jsons, &diff_ids).unwrap();
            if let Some(expected) = docker_bytes {
                assert_eq!(
                    String::from_utf8_lossy(&config),
                    String::from_utf8_lossy(expected),
                    "config for {image_id}"
                );
            }
            assert_eq!(Digest::of(&config).to_string(), image_id);
        }
    }

    /// Legacy archives crafted by `testdata/legacy/probe-gen.py` (0-byte layers) to pin Go's
    /// quirks, loaded into and saved from docker 20.10.24:
    /// a: `docker_version` 1.9.0 keeps the json as written (compacted, HTML-escaped, U+2028
    ///    escaped, duplicate key last wins, `Size`/`throwaway`/`parent_id`/`layer_id` dropped);
    /// b: 1.8.2 round-trips through V1Image: every container.Config field, case-insensitive keys,
    ///    `Cmd` as a string, `null` in lists and maps, a lenient time (1-digit hour, `,`, 10
    ///    fraction digits, `+00:00`);
    /// c: a non-fallback root without `created` (zero time) under a fallback top.
    #[test]
    fn synthesized_configs_match_docker_20_10_on_crafted_archives() {
        let empty = Digest::empty();
        let cases: [ProbeCase<'_>; 4] = [
            (
                &[testdata!("probe-a-0.json")],
                "sha256:3dcbc3b7643fa302a3126b51824bd531a0f2e2dc15ffb03047e54c3d78ed05a7",
                Some(testdata!("probe-a-docker20-config.json")),
            ),
            (
                &[testdata!("probe-b-0.json")],
                "sha256:7a4f8d3baae0c2622f803a4316eb602f6b85b551efd1cb87083f76ffba11df5c",
                Some(testdata!("probe-b-docker20-config.json")),
            ),
            (
                &[testdata!("probe-c-0.json"), testdata!("probe-c-1.json")],
                "sha256:55b4f0015ce8d8484cb88f6c277a1826fe9c8ae612adcb6d068f9400065fdbdd",
                Some(testdata!("probe-c-docker20-config.json")),
            ),
            (
                &[testdata!("probe-c-0.json")],
                "sha256:aad12c01d640d7ad9cc0947e8447ebcf78f7f53215b9a1fa96f596689c7e55f9",
                None,
            ),
        ];
        for (jsons, image_id, docker_bytes) in cases {
            let diff_ids = vec![empty.clone(); jsons.len()];
            let config = config_from_v1_chain(jsons, &diff_ids).unwrap();
            if let Some(expected) = docker_bytes {
                assert_eq!(
                    String::from_utf8_lossy(&config),
                    String::from_utf8_lossy(expected),
                    "config for {image_id}"
                );
            }
            assert_eq!(Digest::of(&config).to_string(), image_id);
        }
    }

    #[test]
    fn repositories_and_chains_of_the_corpus() {
        let tags = parse_repositories(testdata!("emptylayer-repositories")).unwrap();
        assert_eq!(
            tags,
            vec![RepositoryTag {
                name: "matthughes/library-centos".into(),
                tag: "6-2015.03.20".into(),
                id: EMPTYLAYER_IDS[2].into(),
            }]
        );
        let lookup = |id: &str| {
            EMPTYLAYER_IDS
                .iter()
                .position(|x| *x == id)
                .map(|i| EMPTYLAYER_JSON[i])
        };
        assert_eq!(
            chain_from_top(&tags[0].id, lookup).unwrap(),
            EMPTYLAYER_IDS.to_vec()
        );
        assert_eq!(parent_of(EMPTYLAYER_JSON[0]).unwrap(), None);
        assert_eq!(
            parent_of(EMPTYLAYER_JSON[2]).unwrap().as_deref(),
            Some(EMPTYLAYER_IDS[1])
        );
        assert_eq!(os_of(EMPTYLAYER_JSON[0]).unwrap(), None);
        assert_eq!(os_of(EMPTYLAYER_JSON[1]).unwrap().as_deref(), Some("linux"));

        let tags = parse_repositories(testdata!("nomanifest-repositories")).unwrap();
        assert_eq!(
            tags,
            vec![RepositoryTag {
                name: "bazel/v1/tarball".into(),
                tag: "test_image".into(),
                id: "c47412cb682fcf4ae43f536a788069f78552f928a55eeb09ba1455e0f9a2306e".into(),
            }]
        );
    }

    #[test]
    fn repositories_parse_like_gos_decoder() {
        for (input, expected) in [
            (&b"{}"[..], vec![]),
            (b"null", vec![]),
            (
                b"{\"a\":null,\"b\":{\"t2\":\"y\",\"t1\":\"x\"}} trailing",
                vec![("b", "t1", "x"), ("b", "t2", "y")],
            ),
            (
                b"{\"a\":{\"t\":\"1\"},\"a\":{\"u\":\"2\"}}",
                vec![("a", "u", "2")],
            ),
            (b"{\"a\":{\"t\":null}}", vec![("a", "t", "")]),
        ] {
            let expected: Vec<RepositoryTag> = expected
                .into_iter()
                .map(|(n, t, i)| RepositoryTag {
                    name: n.into(),
                    tag: t.into(),
                    id: i.into(),
                })
                .collect();
            assert_eq!(
                parse_repositories(input).unwrap(),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        for input in [&b""[..], b"[]", b"{\"a\":[]}", b"{\"a\":{\"t\":1}}", b"{"] {
            assert!(
                matches!(
                    parse_repositories(input),
                    Err(LegacyError::Repositories { .. })
                ),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chain_errors_carry_the_evidence() {
        let jsons: [(&str, &[u8]); 5] = [
            ("a", br#"{"id":"a","parent":"b"}"#),
            ("b", br#"{"id":"b","Parent":"a"}"#),
            ("c", br#"{"id":"c","parent":"gone"}"#),
            ("d", br#"{"id":"d","parent":"../x"}"#),
            ("e", br#"{"id":"e","parent":7}"#),
        ];
        let lookup = |id: &str| jsons.iter().find(|(k, _)| *k == id).map(|(_, j)| *j);
        for (top, expected) in [
            (
                "a",
                LegacyError::Cycle {
                    top: "a".into(),
                    id: "a".into(),
                },
            ),
            (
                "c",
                LegacyError::MissingLayer {
                    id: "gone".into(),
                    child: Some("c".into()),
                },
            ),
            (
                "zz",
                LegacyError::MissingLayer {
                    id: "zz".into(),
                    child: None,
                },
            ),
            (
                "d",
                LegacyError::InvalidId {
                    id: "../x".into(),
                    reason: "contains a path separator or NUL",
                },
            ),
            (
                "..",
                LegacyError::InvalidId {
                    id: "..".into(),
                    reason: "not a directory name",
                },
            ),
            (
                "",
                LegacyError::InvalidId {
                    id: "".into(),
                    reason: "empty",
                },
            ),
            (
                "e",
                LegacyError::V1Json {
                    layer: "e".into(),
                    field: "Parent".into(),
                    source: GoJsonError::Type {
                        expected: "string",
                        found: gojson::Kind::Number,
                    },
                },
            ),
        ] {
            assert_eq!(chain_from_top(top, lookup), Err(expected), "top {top:?}");
        }
    }

    /// `n` v1 jsons `l0 <- l1 <- … <- l(n-1)`, with `l0`'s parent set to `root_parent`.
    fn linear_chain(n: usize, root_parent: &str) -> HashMap<String, Vec<u8>> {
        (0..n)
            .map(|i| {
                let parent = match i {
                    0 => root_parent.to_string(),
                    _ => format!("l{}", i - 1),
                };
                (
                    format!("l{i}"),
                    format!(r#"{{"id":"l{i}","parent":"{parent}"}}"#).into_bytes(),
                )
            })
            .collect()
    }

    #[test]
    fn deep_chains_are_walked_up_to_the_bound_and_loops_still_said() {
        let jsons = linear_chain(MAX_V1_CHAIN_DEPTH + 1, "");
        let lookup = |id: &str| jsons.get(id).map(Vec::as_slice);
        let top = format!("l{}", MAX_V1_CHAIN_DEPTH - 1);
        let chain = chain_from_top(&top, lookup).unwrap();
        assert_eq!(chain.len(), MAX_V1_CHAIN_DEPTH);
        assert_eq!((chain[0].as_str(), chain.last().unwrap()), ("l0", &top));
        let too_deep = format!("l{MAX_V1_CHAIN_DEPTH}");
        assert_eq!(
            chain_from_top(&too_deep, lookup),
            Err(LegacyError::TooDeep {
                top: too_deep.clone(),
                max: MAX_V1_CHAIN_DEPTH
            })
        );
        assert_eq!(
            chain_from_top(&too_deep, lookup).unwrap_err().to_string(),
            format!(
                "the parent chain of v1 layer {too_deep} is more than 4096 layers deep (hoist's \
                 limit; docker's layer store stops at 125)"
            )
        );

        // A loop at the bottom of a long chain is a loop, not "too deep".
        let looped = linear_chain(1500, "l1499");
        let lookup = |id: &str| looped.get(id).cloned();
        assert_eq!(
            chain_from_top("l1499", lookup),
            Err(LegacyError::Cycle {
                top: "l1499".into(),
                id: "l1499".into()
            })
        );
        let looped = linear_chain(1500, "l2");
        let lookup = |id: &str| looped.get(id).cloned();
        assert_eq!(
            chain_from_top("l1499", lookup),
            Err(LegacyError::Cycle {
                top: "l1499".into(),
                id: "l2".into()
            })
        );
    }

    #[test]
    fn config_errors_carry_the_evidence() {
        let d = digests(&[NOMANIFEST_DIFF_ID]);
        assert_eq!(config_from_v1_chain(&[], &[]), Err(LegacyError::EmptyChain));
        assert_eq!(
            config_from_v1_chain(&[b"{}", b"{}"], &d),
            Err(LegacyError::DiffIdCount {
                layers: 2,
                diff_ids: 1
            })
        );
        for (json, layer, field) in [
            (
                &br#"{"id":"x1","created":"yesterday"}"#[..],
                "x1",
                "created",
            ),
            (
                br#"{"id":"x2","container_config":{"Cmd":[1]}}"#,
                "x2",
                "container_config.Cmd",
            ),
            (
                br#"{"config":{"Healthcheck":{"Retries":1.5}}}"#,
                "#0",
                "config.Healthcheck.Retries",
            ),
            (
                br#"{"config":{"ExposedPorts":{"80/tcp":"yes"}}}"#,
                "#0",
                "config.ExposedPorts",
            ),
            (br#"{"Size":"big"}"#, "#0", "Size"),
            (br#"[]"#, "#0", ""),
            (br#"{"id":"x3""#, "#0", ""),
        ] {
            match config_from_v1_chain(&[json], &d) {
                Err(LegacyError::V1Json {
                    layer: l, field: f, ..
                }) => {
                    assert_eq!(
                        (l.as_str(), f.as_str()),
                        (layer, field),
                        "{:?}",
                        String::from_utf8_lossy(json)
                    )
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(json)),
            }
        }
    }

    #[test]
    fn docker_version_comparison_is_dockers() {
        for (version, less) in [
            ("", true),
            ("0.4.0", true),
            ("1.4.1", true),
            ("1.8.2", true),
            ("1.8.3", false),
            ("1.8.3-rc1", true),
            ("1.9.0-dev", false),
            ("1.10", false),
            ("20.10.24+dfsg1", false),
            ("dev", true),
            ("1.8.3.0", false),
            ("1.8", true),
            ("99999999999999999999.0", false),
        ] {
            assert_eq!(
                docker_version_less(version, NO_FALLBACK_MIN_DOCKER_VERSION),
                less,
                "{version:?}"
            );
        }
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let diff = digests(&EMPTYLAYER_DIFF_IDS);
        let chain = chain_ids(&diff);
        assert_eq!(chain[0], diff[0]);
        assert_eq!(
            chain[1],
            Digest::of(format!("{} {}", diff[0], diff[1]).as_bytes())
        );
        assert_eq!(
            chain[2],
            Digest::of(format!("{} {}", chain[1], diff[2]).as_bytes())
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn v1_layers_match_docker_save() {
        // (config, v1 ids bottom first as in docker's manifest.json, json files docker wrote by
        // position). docker 20.10.24 `docker save` of images loaded from the corpus, and the
        // corpus' own docker 20.10 / 24 saves.
        let cases: [SaveCase<'_>; 8] = [
            (
                testdata!("symlinks-config.json"),
                &[
                    "cca992d2c8059d9be9d56388cf20ab361b2fbed94584cf87248972a02bfc252e",
                    "468d48acde57c560616721c17f51b27a4687f877e21a30c30f7082c0e2a874cd",
                ],
                &[
                    (0, testdata!("symlinks-save-cca992d2.json")),
                    (1, testdata!("symlinks-save-468d48ac.json")),
                ],
            ),
            (
                testdata!("emptylayer-docker20-config.json"),
                &[
                    "7140b784a1432366a6b01322ded5554094de1908c500ac489f0f97ae5e6ddbd4",
                    "23a55e109457613578cf93681d4fde1cf43cf67d033977b7747dd982ce9bdfec",
                    "8f2d0ff685a66c6784a19f2faf1500ae639ee6d61acabc9352db169b89654cda",
                ],
                &[
                    (0, testdata!("emptylayer-docker20-save-7140b784.json")),
                    (1, testdata!("emptylayer-docker20-save-23a55e10.json")),
                    (2, testdata!("emptylayer-docker20-save-8f2d0ff6.json")),
                ],
            ),
            (
                testdata!("nomanifest-docker20-config.json"),
                &["97c7a1fd7eac993ae0fd18bcd64e93f9d0bd2a0e86924c8dcc45cce46195ba1d"],
                &[(0, testdata!("nomanifest-docker20-save-97c7a1fd.json"))],
            ),
            (
                testdata!("divederived-config.json"),
                &DIVE_DERIVED_IDS,
                &[
                    (0, testdata!("divederived-save-9bce8b3c.json")),
                    (16, testdata!("divederived-save-06a1e6e2.json")),
                ],
            ),
            (
                testdata!("probe-a-docker20-config.json"),
                &["807d5ae705dd169298a07318f69ad35c7983f7da7d3eee26802d31c0ebc2b524"],
                &[(0, testdata!("probe-a-docker20-save-807d5ae7.json"))],
            ),
            (
                testdata!("probe-b-docker20-config.json"),
                &["79580882637632d9d57c1bed6dc6d3f05f8df044744122400eea0ef3810de7d5"],
                &[(0, testdata!("probe-b-docker20-save-79580882.json"))],
            ),
            (
                testdata!("probe-c-docker20-config.json"),
                &[
                    "f93f9b764d536da36bf2c76ad42d35f7d3ee037e29e638b9e111db0036e30ef1",
                    "496f6a9dfdb33ec50ee03c53218a301a2be3301c94d5c4703c42b8ecd1a11014",
                ],
                &[
                    (0, testdata!("probe-c-docker20-save-f93f9b76.json")),
                    (1, testdata!("probe-c-docker20-save-496f6a9d.json")),
                ],
            ),
            (
                testdata!("divetest-config.json"),
                &DIVE_TEST_IDS,
                &[(13, testdata!("divetest-save-399852cf.json"))],
            ),
        ];
        for (config, ids, files) in cases {
            let layers = v1_layer_entries(config).unwrap();
            let got: Vec<&str> = layers.iter().map(|l| l.id.as_str()).collect();
            assert_eq!(got, ids.to_vec());
            for (i, layer) in layers.iter().enumerate() {
                assert_eq!(layer.parent.as_deref(), i.checked_sub(1).map(|p| ids[p]));
            }
            for (i, expected) in files {
                assert_eq!(
                    String::from_utf8_lossy(&layers[*i].json),
                    String::from_utf8_lossy(expected),
                    "json of layer {i} ({})",
                    ids[*i]
                );
            }
        }
    }

    /// `manifest.json` Layers of docker-v1.2_docker20_multi_dive-derived.tar (docker 20.10.24).
    const DIVE_DERIVED_IDS: [&str; 17] = [
        "9bce8b3c4f45edcf9698df00d8686b98a7d7652d5e70e22d513ddf5459091681",
        "bffbb43043c0cfe7bd1cf89bd6a76105d0f671b47200e95f400194445ab41542",
        "f60ec0042333a4a5b2c6a7c711f60835c59ba4e3bc5d3b4b3c09da1302ff7175",
        "7e34b7c13b060dc9303df5dbefaa9e4fd38e9772430d6697374db6b72e9021c5",
        "01cf0b4c918033622a565357550e1edc4dfe532240b14915aba788b93ec156b4",
        "357dbb9595d1bfaa3d350ad327b1ab350dc35b85d7751d500b262d7fb628b958",
        "4ce9168343a976011ae5fa2266dc49266b62afc41fd49d890d06633929fa020f",
        "914f9cce6399c762112b28fe1214493daf874717db33f55df443ce6692d1a2f5",
        "01a549085d8b84023254fa673608720b1d5db08b59e59db7754f6fb83cb91e43",
        "9b8b165f2f89d5600849591253849e6db005ee96604ee92df479358ef4ce6aba",
        "f148bbb8152365688590abf53971a40364f7bd365eb98d2de683f2e11b3f8d27",
        "990ff99e2bf6df2e409973aecb06a789e0c299488095d491522ee34cdc7a85a3",
        "bb3a9e160172a238ab5629e43c1f064488ea782bde44ce1cd8f5651b3e73cf10",
        "aa9dba098a47bbc55516493633d2c82abbf0ee04ffdcd75e2208f475236fc29b",
        "4de1522f119aa4c7ed5d2ecae4cea84018d060a9ceeca50a9ed749ee91ab627f",
        "c493b3ed582268c679aaf41f123c5145b08a7a2257704bca4e8e5556dbdce84c",
        "06a1e6e2e48fd1da120eda985e619b343f38a11a2cacd868d23a2eea522fb070",
    ];

    /// The same archive's dive-test:latest: its lower 13 layers are shared with dive-derived.
    const DIVE_TEST_IDS: [&str; 14] = [
        DIVE_DERIVED_IDS[0],
        DIVE_DERIVED_IDS[1],
        DIVE_DERIVED_IDS[2],
        DIVE_DERIVED_IDS[3],
        DIVE_DERIVED_IDS[4],
        DIVE_DERIVED_IDS[5],
        DIVE_DERIVED_IDS[6],
        DIVE_DERIVED_IDS[7],
        DIVE_DERIVED_IDS[8],
        DIVE_DERIVED_IDS[9],
        DIVE_DERIVED_IDS[10],
        DIVE_DERIVED_IDS[11],
        DIVE_DERIVED_IDS[12],
        "399852cf523e7431d5abb1a925272b305a2ad9638c592d4b5512dd6a7c1b4757",
    ];

    #[test]
    fn v1_layer_errors() {
        for (config, expected) in [
            (&br#"{"architecture":"amd64"}"#[..], LegacyError::NoRootfs),
            (br#"{"rootfs":null}"#, LegacyError::NoRootfs),
            (br#"{"rootfs":{"type":"layers"}}"#, LegacyError::NoLayers),
            (
                br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#,
                LegacyError::NoLayers,
            ),
        ] {
            assert_eq!(
                v1_layer_entries(config),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(config)
            );
        }
        assert!(matches!(
            v1_layer_entries(br#"{"rootfs":{"diff_ids":["sha256:abc"]}}"#),
            Err(LegacyError::InvalidDiffId { index: 0, .. })
        ));
        assert!(matches!(
            v1_layer_entries(br#"{"created":1,"rootfs":{"diff_ids":[]}}"#),
            Err(LegacyError::Config { field, .. }) if field == "created"
        ));
    }
}
