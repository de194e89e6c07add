//! `--change` instructions (`docker import -c`, `docker commit -c`) and the image config
//! `docker import` writes, byte-compatible with docker 20.10's graphdriver daemon.
//!
//! How docker 20.10 handles `-c` (moby `builder/dockerfile/builder.go BuildFromConfig`):
//!
//! 1. the changes are joined with `\n` and parsed by BuildKit's Dockerfile parser, so parser
//!    directives (`# escape=`), comments and line continuations work, and one `-c` may hold
//!    several lines;
//! 2. every instruction must be one of CMD, ENTRYPOINT, HEALTHCHECK, ENV, EXPOSE, LABEL,
//!    ONBUILD, USER, VOLUME, WORKDIR (plus STOPSIGNAL from docker 23, see [`Compat`]),
//!    otherwise `<keyword> is not a valid change command` with the keyword lowercased;
//! 3. each instruction is checked (argument counts, `--flags`), then all are dispatched in
//!    order on a copy of the config, with `$VAR` substitution from the `Env` built so far
//!    (ENV, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL and EXPOSE; never CMD, ENTRYPOINT,
//!    HEALTHCHECK or ONBUILD).
//!
//! The results follow docker's dispatchers, including their quirks: a bare `CMD` becomes
//! `["/bin/sh","-c"]`, `CMD []` stays an empty (not null) array, ENTRYPOINT clears `Cmd`
//! unless a non-empty CMD came earlier in the same list, ONBUILD stores the trigger text as
//! written (docker does not uppercase it), a relative WORKDIR is joined to the previous one
//! and cleaned while an absolute one is kept verbatim, and EXPOSE accepts
//! `ip:host:container/proto` specs and ranges.
//!
//! Known gaps, all at the Unicode fringe: JSON-form arguments containing lone UTF-16
//! surrogate escapes fall back to shell form (Go substitutes U+FFFD), and `$name` scanning
//! uses Rust's `Alphabetic`/`Numeric` properties where Go uses categories L and Nd.

mod goutil;
mod lex;
mod parser;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::platform::Platform;
use goutil::write_json_str;

/// The comment (and history comment) `docker import` writes when `-m` is absent or empty:
/// `"Imported from " + src`, where src is `-` for a file or stdin.
pub const DEFAULT_IMPORT_COMMENT: &str = "Imported from -";

/// The shell prepended to shell-form CMD/ENTRYPOINT on Linux when the config has no `Shell`
/// (moby `builder/dockerfile/dispatchers_unix.go defaultShellForOS`).
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The only OS a Linux daemon accepts for import and commit (`system.IsOSSupported`).
const SUPPORTED_OS: &str = "linux";

/// The smallest HEALTHCHECK interval docker accepts (`container.MinimumDuration`, 1ms), in
/// nanoseconds.
const MINIMUM_DURATION_NS: i64 = 1_000_000;

/// `rootfs.type` of every image config.
const ROOTFS_TYPE: &str = "layers";

/// Which docker release's `--change` allow-list to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compat {
    /// docker 20.10 (what hoist's tests compare with): STOPSIGNAL is refused.
    #[default]
    Docker20_10,
    /// docker 23 and later, which also accept STOPSIGNAL (moby commit a768652fd6).
    Docker23,
}

/// Why a change list or config was refused. The `Display` text is docker's own message, so
/// the CLI can print `Error response from daemon: {err}`-style output unchanged.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeError {
    /// An instruction outside the allow-list (`RUN`, `ADD`, `SHELL`, `CMD=x`, …); holds the
    /// lowercased keyword as docker prints it.
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    /// A syntax, argument or substitution error, with docker's wording.
    #[error("{0}")]
    Invalid(String),
    /// The platform's OS is not `linux`; holds the OS.
    #[error("operating system is not supported")]
    UnsupportedOs(String),
    /// An existing container config that does not have docker's field types.
    #[error("invalid container config: {0}")]
    BadConfig(String),
}

/// Docker's `container.HealthConfig`. Durations are nanoseconds; zero means "inherit".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    pub test: Option<Vec<String>>,
    /// Time between checks.
    pub interval: i64,
    /// Time before a check counts as hung.
    pub timeout: i64,
    /// Grace period before failures count.
    pub start_period: i64,
    /// Consecutive failures before unhealthy.
    pub retries: i64,
}

/// Docker's `container.Config` (the `config` and `container_config` objects of an image
/// config). `Option` marks Go's nil-versus-empty distinction where the JSON shows it
/// (`"Cmd":null` versus `"Cmd":[]`); [`ContainerConfig::to_json`] writes the fields in Go's
/// order with Go's `omitempty` rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerConfig {
    /// `Hostname`.
    pub hostname: String,
    /// `Domainname`.
    pub domainname: String,
    /// `User`.
    pub user: String,
    /// `AttachStdin`.
    pub attach_stdin: bool,
    /// `AttachStdout`.
    pub attach_stdout: bool,
    /// `AttachStderr`.
    pub attach_stderr: bool,
    /// `ExposedPorts` (`80/tcp`, …; omitted when empty).
    pub exposed_ports: Option<BTreeSet<String>>,
    /// `Tty`.
    pub tty: bool,
    /// `OpenStdin`.
    pub open_stdin: bool,
    /// `StdinOnce`.
    pub stdin_once: bool,
    /// `Env` (`KEY=VALUE`).
    pub env: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Healthcheck` (omitted when `None`).
    pub healthcheck: Option<HealthConfig>,
    /// `ArgsEscaped` (omitted when false).
    pub args_escaped: bool,
    /// `Image`.
    pub image: String,
    /// `Volumes` (mount points).
    pub volumes: Option<BTreeSet<String>>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `NetworkDisabled` (omitted when false).
    pub network_disabled: bool,
    /// `MacAddress` (omitted when empty).
    pub mac_address: String,
    /// `OnBuild` triggers.
    pub on_build: Option<Vec<String>>,
    /// `Labels`.
    pub labels: Option<BTreeMap<String, String>>,
    /// `StopSignal` (omitted when empty).
    pub stop_signal: String,
    /// `StopTimeout` in seconds (omitted when `None`).
    pub stop_timeout: Option<i64>,
    /// `Shell` for shell-form commands (omitted when empty).
    pub shell: Option<Vec<String>>,
}

impl ContainerConfig {
    /// Reads a docker `config` object the way Go's `json.Unmarshal` fills `container.Config`:
    /// keys match case-insensitively, unknown keys are dropped, `null` leaves a field unset,
    /// and `Cmd`/`Entrypoint`/`Shell` also accept a single string.
    pub fn from_json(value: &Value) -> Result<Self, ChangeError> {
        let obj = match value {
            Value::Object(o) => o,
            Value::Null => return Ok(Self::default()),
            _ => return Err(bad("config is not a JSON object")),
        };
        Ok(ContainerConfig {
            hostname: get_string(obj, "Hostname")?,
            domainname: get_string(obj, "Domainname")?,
            user: get_string(obj, "User")?,
            attach_stdin: get_bool(obj, "AttachStdin")?,
            attach_stdout: get_bool(obj, "AttachStdout")?,
            attach_stderr: get_bool(obj, "AttachStderr")?,
            exposed_ports: get_set(obj, "ExposedPorts")?,
            tty: get_bool(obj, "Tty")?,
            open_stdin: get_bool(obj, "OpenStdin")?,
            stdin_once: get_bool(obj, "StdinOnce")?,
            env: get_list(obj, "Env", false)?,
            cmd: get_list(obj, "Cmd", true)?,
            healthcheck: match field(obj, "Healthcheck") {
                None | Some(Value::Null) => None,
                Some(Value::Object(h)) => Some(HealthConfig {
                    test: get_list(h, "Test", false)?,
                    interval: get_int(h, "Interval")?.unwrap_or(0),
                    timeout: get_int(h, "Timeout")?.unwrap_or(0),
                    start_period: get_int(h, "StartPeriod")?.unwrap_or(0),
                    retries: get_int(h, "Retries")?.unwrap_or(0),
                }),
                Some(_) => return Err(bad("Healthcheck is not an object")),
            },
            args_escaped: get_bool(obj, "ArgsEscaped")?,
            image: get_string(obj, "Image")?,
            volumes: get_set(obj, "Volumes")?,
            working_dir: get_string(obj, "WorkingDir")?,
            entrypoint: get_list(obj, "Entrypoint", true)?,
            network_disabled: get_bool(obj, "NetworkDisabled")?,
            mac_address: get_string(obj, "MacAddress")?,
            on_build: get_list(obj, "OnBuild", false)?,
            labels: match field(obj, "Labels") {
                None | Some(Value::Null) => None,
                Some(Value::Object(m)) => Some(
                    m.iter()
                        .map(|(k, v)| match v {
                            Value::String(s) => Ok((k.clone(), s.clone())),
                            Value::Null => Ok((k.clone(), String::new())),
                            _ => Err(bad(&format!("label {k:?} is not a string"))),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Some(_) => return Err(bad("Labels is not an object")),
            },
            stop_signal: get_string(obj, "StopSignal")?,
            stop_timeout: get_int(obj, "StopTimeout")?,
            shell: get_list(obj, "Shell", true)?,
        })
    }

    /// The JSON Go's `encoding/json` writes for this `container.Config`: fields in struct
    /// order, `null` for unset slices and maps, the `omitempty` fields left out when empty,
    /// map keys sorted, and Go's string escaping (`<`, `>`, `&` as `\u003c`…).
    pub fn to_json(&self) -> String {
        let mut o = String::new();
        o.push('{');
        kv_str(&mut o, "Hostname", &self.hostname);
        kv_str(&mut o, "Domainname", &self.domainname);
        kv_str(&mut o, "User", &self.user);
        kv_bool(&mut o, "AttachStdin", self.attach_stdin);
        kv_bool(&mut o, "AttachStdout", self.attach_stdout);
        kv_bool(&mut o, "AttachStderr", self.attach_stderr);
        if let Some(ports) = self.exposed_ports.as_ref().filter(|p| !p.is_empty()) {
            key(&mut o, "ExposedPorts");
            write_set(&mut o, Some(ports));
        }
        kv_bool(&mut o, "Tty", self.tty);
        kv_bool(&mut o, "OpenStdin", self.open_stdin);
        kv_bool(&mut o, "StdinOnce", self.stdin_once);
        key(&mut o, "Env");
        write_list(&mut o, self.env.as_deref());
        key(&mut o, "Cmd");
        write_list(&mut o, self.cmd.as_deref());
        if let Some(h) = &self.healthcheck {
            key(&mut o, "Healthcheck");
            o.push('{');
            if let Some(test) = h.test.as_deref().filter(|t| !t.is_empty()) {
                key(&mut o, "Test");
                write_list(&mut o, Some(test));
            }
            for (name, v) in [
                ("Interval", h.interval),
                ("Timeout", h.timeout),
                ("StartPeriod", h.start_period),
                ("Retries", h.retries),
            ] {
                if v != 0 {
                    key(&mut o, name);
                    o.push_str(&v.to_string());
                    o.push(',');
                }
            }
            close(&mut o, '}');
        }
        if self.args_escaped {
            kv_bool(&mut o, "ArgsEscaped", true);
        }
        kv_str(&mut o, "Image", &self.image);
        key(&mut o, "Volumes");
        write_set(&mut o, self.volumes.as_ref());
        kv_str(&mut o, "WorkingDir", &self.working_dir);
        key(&mut o, "Entrypoint");
        write_list(&mut o, self.entrypoint.as_deref());
        if self.network_disabled {
            kv_bool(&mut o, "NetworkDisabled", true);
        }
        if !self.mac_address.is_empty() {
            kv_str(&mut o, "MacAddress", &self.mac_address);
        }
        key(&mut o, "OnBuild");
        write_list(&mut o, self.on_build.as_deref());
        key(&mut o, "Labels");
        match &self.labels {
            None => o.push_str("null,"),
            Some(labels) => {
                o.push('{');
                for (k, v) in labels {
                    kv_str(&mut o, k, v);
                }
                close(&mut o, '}');
            }
        }
        if !self.stop_signal.is_empty() {
            kv_str(&mut o, "StopSignal", &self.stop_signal);
        }
        if let Some(t) = self.stop_timeout {
            key(&mut o, "StopTimeout");
            o.push_str(&t.to_string());
            o.push(',');
        }
        if let Some(shell) = self.shell.as_deref().filter(|s| !s.is_empty()) {
            key(&mut o, "Shell");
            write_list(&mut o, Some(shell));
        }
        close(&mut o, '}');
        o.pop();
        o
    }

    /// Applies `changes` as docker's `BuildFromConfig` does and returns the new config; `self`
    /// is untouched. `os` is the image's OS (only `linux` is accepted, as on a Linux daemon).
    /// An empty list returns an unchanged copy without parsing anything.
    pub fn apply_changes(
        &self,
        changes: &[String],
        os: &str,
        compat: Compat,
    ) -> Result<ContainerConfig, ChangeError> {
        if !os.eq_ignore_ascii_case(SUPPORTED_OS) {
            return Err(ChangeError::UnsupportedOs(os.to_string()));
        }
        if changes.is_empty() {
            return Ok(self.clone());
        }
        let (nodes, escape) = parser::parse(&changes.join("\n")).map_err(ChangeError::Invalid)?;
        for node in &nodes {
            if !is_allowed(&node.cmd, compat) {
                return Err(ChangeError::NotAllowed(node.cmd.clone()));
            }
        }
        let instructions = nodes
            .iter()
            .map(parse_instruction)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ChangeError::Invalid)?;
        let mut state = DispatchState {
            config: self.clone(),
            cmd_set: false,
            escape,
        };
        for instruction in instructions {
            state.dispatch(instruction).map_err(ChangeError::Invalid)?;
        }
        Ok(state.config)
    }

    /// Fills what `self` (the config produced by the changes) leaves empty from `image`
    /// (the container's own config), as moby's `daemon/commit.go merge` does. Among its
    /// effects: `Labels` is never null afterwards, and an empty ENTRYPOINT does not stick.
    pub fn merge_from(&mut self, image: &ContainerConfig) {
        if self.user.is_empty() {
            self.user = image.user.clone();
        }
        if self.exposed_ports.as_ref().is_none_or(|p| p.is_empty()) {
            self.exposed_ports = image.exposed_ports.clone();
        } else if let (Some(mine), Some(theirs)) = (&mut self.exposed_ports, &image.exposed_ports) {
            mine.extend(theirs.iter().cloned());
        }
        if self.env.as_ref().is_none_or(|e| e.is_empty()) {
            self.env = image.env.clone();
        } else if let Some(mine) = &mut self.env {
            let env_key = |e: &str| e.split('=').next().unwrap_or_default().to_string();
            for theirs in image.env.iter().flatten() {
                let k = env_key(theirs);
                if !mine.iter().any(|m| env_key(m) == k) {
                    mine.push(theirs.clone());
                }
            }
        }
        let labels = self.labels.get_or_insert_default();
        for (k, v) in image.labels.iter().flatten() {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if self.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
            if self.cmd.as_ref().is_none_or(|c| c.is_empty()) {
                self.cmd = image.cmd.clone();
            }
            if self.entrypoint.is_none() {
                self.entrypoint = image.entrypoint.clone();
            }
        }
        if let Some(theirs) = &image.healthcheck {
            match &mut self.healthcheck {
                None => self.healthcheck = Some(theirs.clone()),
                Some(mine) => {
                    if mine.test.as_ref().is_none_or(|t| t.is_empty()) {
                        mine.test = theirs.test.clone();
                    }
                    for (m, t) in [
                        (&mut mine.interval, theirs.interval),
                        (&mut mine.timeout, theirs.timeout),
                        (&mut mine.start_period, theirs.start_period),
                        (&mut mine.retries, theirs.retries),
                    ] {
                        if *m == 0 {
                            *m = t;
                        }
                    }
                }
            }
        }
        if self.working_dir.is_empty() {
            self.working_dir = image.working_dir.clone();
        }
        if self.volumes.as_ref().is_none_or(|v| v.is_empty()) {
            self.volumes = image.volumes.clone();
        } else if let (Some(mine), Some(theirs)) = (&mut self.volumes, &image.volumes) {
            mine.extend(theirs.iter().cloned());
        }
        if self.stop_signal.is_empty() {
            self.stop_signal = image.stop_signal.clone();
        }
    }
}

/// What `docker commit -c …` makes of a container's config: the changes applied
/// ([`ContainerConfig::apply_changes`], OS `linux`), then [`ContainerConfig::merge_from`] the
/// original. Returns the new `config` object's bytes in Go's field order.
pub fn commit_config(
    config: &Value,
    changes: &[String],
    compat: Compat,
) -> Result<Vec<u8>, ChangeError> {
    let base = ContainerConfig::from_json(config)?;
    let mut new = base.apply_changes(changes, SUPPORTED_OS, compat)?;
    new.merge_from(&base);
    Ok(new.to_json().into_bytes())
}

/// Inputs of [`import_config`].
#[derive(Debug, Clone, Copy)]
pub struct ImportConfigOptions<'a> {
    /// The `-c` values, in order.
    pub changes: &'a [String],
    /// `-m`; `None` or empty gives [`DEFAULT_IMPORT_COMMENT`]. A URL import should pass
    /// `Imported from <url>` itself.
    pub comment: Option<&'a str>,
    /// Written as `os`, `architecture` and `variant` (each omitted when empty). docker 20.10
    /// takes only the OS from `--platform` and always writes the daemon's architecture and
    /// no variant; a caller after byte-identity passes that.
    pub platform: &'a Platform,
    /// `created` and `history[0].created`: Go's RFC 3339 with nanoseconds and trailing zeros
    /// trimmed (`2024-01-02T03:04:05.123456789Z`); the caller owns the clock.
    pub created: &'a str,
    /// The diff ID of the single layer (sha256 of the uncompressed tar).
    pub diff_id: &'a Digest,
    /// `docker_version` (docker writes its own version, e.g. `20.10.24+dfsg1`); `None` or
    /// empty omits the key.
    pub docker_version: Option<&'a str>,
    /// Which allow-list applies to `changes`.
    pub compat: Compat,
}

/// The image config `docker import` writes (moby `daemon/images/image_import.go`):
/// `image.Image{V1Image{…}, RootFS, History}` with top-level keys sorted (as
/// `image.MarshalJSON` does), an all-zero `container_config`, and one history entry with
/// `created` and `comment` only. No trailing newline.
pub fn import_config(opts: &ImportConfigOptions<'_>) -> Result<Vec<u8>, ChangeError> {
    let config =
        ContainerConfig::default().apply_changes(opts.changes, &opts.platform.os, opts.compat)?;
    let comment = opts
        .comment
        .filter(|c| !c.is_empty())
        .unwrap_or(DEFAULT_IMPORT_COMMENT);
    let p = opts.platform;
    let mut o = String::from("{");
    if !p.architecture.is_empty() {
        kv_str(&mut o, "architecture", &p.architecture);
    }
    kv_str(&mut o, "comment", comment);
    key(&mut o, "config");
    o.push_str(&config.to_json());
    o.push(',');
    key(&mut o, "container_config");
    o.push_str(&ContainerConfig::default().to_json());
    o.push(',');
    kv_str(&mut o, "created", opts.created);
    if let Some(v) = opts.docker_version.filter(|v| !v.is_empty()) {
        kv_str(&mut o, "docker_version", v);
    }
    key(&mut o, "history");
    o.push_str("[{");
    kv_str(&mut o, "created", opts.created);
    kv_str(&mut o, "comment", comment);
    close(&mut o, '}');
    close(&mut o, ']');
    if !p.os.is_empty() {
        kv_str(&mut o, "os", &p.os);
    }
    key(&mut o, "rootfs");
    o.push('{');
    kv_str(&mut o, "type", ROOTFS_TYPE);
    key(&mut o, "diff_ids");
    o.push('[');
    write_json_str(&mut o, &opts.diff_id.to_string());
    o.push(']');
    close(&mut o, '}');
    if !p.variant.is_empty() {
        kv_str(&mut o, "variant", &p.variant);
    }
    close(&mut o, '}');
    o.pop();
    Ok(o.into_bytes())
}

// ---- JSON writing helpers: each value is followed by a comma that `close` removes. ----

fn key(o: &mut String, k: &str) {
    write_json_str(o, k);
    o.push(':');
}

fn kv_str(o: &mut String, k: &str, v: &str) {
    key(o, k);
    write_json_str(o, v);
    o.push(',');
}

fn kv_bool(o: &mut String, k: &str, v: bool) {
    key(o, k);
    o.push_str(if v { "true," } else { "false," });
}

/// Ends an object or array: drops the trailing comma, adds `end` and the comma that follows
/// every value.
fn close(o: &mut String, end: char) {
    if o.ends_with(',') {
        o.pop();
    }
    o.push(end);
    o.push(',');
}

fn write_list(o: &mut String, list: Option<&[String]>) {
    match list {
        None => o.push_str("null,"),
        Some(items) => {
            o.push('[');
            for item in items {
                write_json_str(o, item);
                o.push(',');
            }
            close(o, ']');
        }
    }
}

fn write_set(o: &mut String, set: Option<&BTreeSet<String>>) {
    match set {
        None => o.push_str("null,"),
        Some(items) => {
            o.push('{');
            for item in items {
                key(o, item);
                o.push_str("{},");
            }
            close(o, '}');
        }
    }
}

// ---- Reading a Go-shaped config out of a serde_json::Value. ----

fn bad(msg: &str) -> ChangeError {
    ChangeError::BadConfig(msg.to_string())
}

/// Go's field lookup: the exact key, else a case-insensitive match.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn get_string(obj: &Map<String, Value>, name: &str) -> Result<String, ChangeError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(&format!("{name} is not a string"))),
    }
}

fn get_bool(obj: &Map<String, Value>, name: &str) -> Result<bool, ChangeError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(&format!("{name} is not a boolean"))),
    }
}

fn get_int(obj: &Map<String, Value>, name: &str) -> Result<Option<i64>, ChangeError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(&format!("{name} is not an integer"))),
    }
}

/// A `[]string`; with `str_slice`, docker's `StrSlice`, which also takes a single string.
fn get_list(
    obj: &Map<String, Value>,
    name: &str,
    str_slice: bool,
) -> Result<Option<Vec<String>>, ChangeError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if str_slice => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                _ => Err(bad(&format!("{name} has a non-string element"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad(&format!("{name} is not a list of strings"))),
    }
}

/// A `map[string]struct{}` (`ExposedPorts`, `Volumes`): only the keys matter.
fn get_set(obj: &Map<String, Value>, name: &str) -> Result<Option<BTreeSet<String>>, ChangeError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.keys().cloned().collect())),
        Some(_) => Err(bad(&format!("{name} is not an object"))),
    }
}

// ---- Instructions: BuildKit's instructions/parse.go and moby's dispatchers. ----

/// Whether docker accepts `cmd` (lowercased keyword) in a change list.
fn is_allowed(cmd: &str, compat: Compat) -> bool {
    matches!(
        cmd,
        "cmd"
            | "entrypoint"
            | "healthcheck"
            | "env"
            | "expose"
            | "label"
            | "onbuild"
            | "user"
            | "volume"
            | "workdir"
    ) || (cmd == "stopsignal" && compat == Compat::Docker23)
}

/// A CMD or ENTRYPOINT argument list (`ShellDependantCmdLine`).
#[derive(Debug)]
struct CmdLine {
    line: Option<Vec<String>>,
    prepend_shell: bool,
}

/// A checked instruction, before variable expansion.
#[derive(Debug)]
enum Instruction {
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Onbuild(String),
    Workdir(String),
    Cmd(CmdLine),
    Entrypoint(CmdLine),
    Healthcheck(HealthConfig),
    Expose(Vec<String>),
    User(String),
    Volume(Vec<String>),
    StopSignal(String),
}

/// `BFlags.Parse` for string flags: returns the values of `known` flags that were given.
fn parse_flags(flags: &[String], known: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let mut used = BTreeMap::new();
    for arg in flags {
        let Some(arg) = arg.strip_prefix("--") else {
            return Err(format!("Arg should start with -- : {arg}"));
        };
        if arg.is_empty() {
            return Ok(used);
        }
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        if !known.contains(&name) {
            return Err(format!("Unknown flag: {name}"));
        }
        if used.contains_key(name) {
            return Err(format!("Duplicate flag specified: {name}"));
        }
        let Some(value) = value else {
            return Err(format!("Missing a value on flag: {name}"));
        };
        used.insert(name.to_string(), value.to_string());
    }
    Ok(used)
}

fn parse_kvps(args: &[String], name: &str) -> Result<Vec<(String, String)>, String> {
    if args.is_empty() {
        return Err(format!("{name} requires at least one argument"));
    }
    if !args.len().is_multiple_of(2) {
        return Err(format!("Bad input to {name}, too many arguments"));
    }
    args.chunks(2)
        .map(|kv| {
            if kv[0].is_empty() {
                Err(format!("{name} names can not be blank"))
            } else {
                Ok((kv[0].clone(), kv[1].clone()))
            }
        })
        .collect()
}

/// `handleJSONArgs`: exec form as is, shell form joined into one string.
fn handle_json_args(args: &[String], json: bool) -> Vec<String> {
    if args.is_empty() || json {
        args.to_vec()
    } else {
        vec![args.join(" ")]
    }
}

fn cmd_line(node: &parser::Node, empty_as_none: bool) -> CmdLine {
    let args = handle_json_args(&node.args, node.json);
    CmdLine {
        line: if empty_as_none && args.is_empty() {
            None
        } else {
            Some(args)
        },
        prepend_shell: !node.json,
    }
}

fn exactly_one(node: &parser::Node, name: &str) -> Result<String, String> {
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("{name} requires exactly one argument")),
    }
}

fn parse_instruction(node: &parser::Node) -> Result<Instruction, String> {
    let no_flags = || parse_flags(&node.flags, &[]).map(|_| ());
    Ok(match node.cmd.as_str() {
        "env" => {
            no_flags()?;
            Instruction::Env(parse_kvps(&node.args, "ENV")?)
        }
        "label" => {
            no_flags()?;
            Instruction::Label(parse_kvps(&node.args, "LABEL")?)
        }
        "onbuild" => {
            let Some(trigger) = node.args.first() else {
                return Err("ONBUILD requires at least one argument".into());
            };
            no_flags()?;
            let trigger = trigger.trim().to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"));
                }
                _ => {}
            }
            Instruction::Onbuild(strip_onbuild_keyword(&node.original))
        }
        "workdir" => {
            let path = exactly_one(node, "WORKDIR")?;
            no_flags()?;
            Instruction::Workdir(path)
        }
        "cmd" => {
            no_flags()?;
            Instruction::Cmd(cmd_line(node, false))
        }
        "entrypoint" => {
            no_flags()?;
            Instruction::Entrypoint(cmd_line(node, true))
        }
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        "expose" => {
            if node.args.is_empty() {
                return Err("EXPOSE requires at least one argument".into());
            }
            no_flags()?;
            let mut ports = node.args.clone();
            ports.sort();
            Instruction::Expose(ports)
        }
        "user" => {
            let user = exactly_one(node, "USER")?;
            no_flags()?;
            Instruction::User(user)
        }
        "volume" => {
            if node.args.is_empty() {
                return Err("VOLUME requires at least one argument".into());
            }
            no_flags()?;
            let mut volumes = Vec::new();
            for v in &node.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                volumes.push(v.to_string());
            }
            Instruction::Volume(volumes)
        }
        "stopsignal" => Instruction::StopSignal(exactly_one(node, "STOPSIGNAL")?),
        other => return Err(format!("unknown instruction: {}", other.to_uppercase())),
    })
}

/// `(?i)^\s*ONBUILD\s*` removed from the original line: the stored trigger keeps the user's
/// spelling and spacing.
fn strip_onbuild_keyword(original: &str) -> String {
    let s = original.trim_start_matches(goutil::is_re2_s);
    let keyword = "ONBUILD";
    match s.get(..keyword.len()) {
        Some(head) if head.eq_ignore_ascii_case(keyword) => s[keyword.len()..]
            .trim_start_matches(goutil::is_re2_s)
            .to_string(),
        _ => original.to_string(),
    }
}

fn parse_healthcheck(node: &parser::Node) -> Result<HealthConfig, String> {
    let Some(typ) = node.args.first() else {
        return Err("HEALTHCHECK requires at least one argument".into());
    };
    let mut typ = typ.to_uppercase();
    let args = &node.args[1..];
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(HealthConfig {
            test: Some(vec![typ]),
            ..HealthConfig::default()
        });
    }
    let flags = parse_flags(
        &node.flags,
        &["interval", "timeout", "start-period", "retries"],
    )?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            goutil::quote(&typ)
        ));
    }
    let cmd = handle_json_args(args, node.json);
    if cmd.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    if !node.json {
        typ = "CMD-SHELL".into();
    }
    let mut test = vec![typ];
    test.extend(cmd);
    let interval = |name: &str| -> Result<i64, String> {
        match flags.get(name).filter(|v| !v.is_empty()) {
            None => Ok(0),
            Some(v) => {
                let d = goutil::parse_duration(v)?;
                if d < MINIMUM_DURATION_NS {
                    return Err(format!(
                        "Interval {} cannot be less than 1ms",
                        goutil::quote(name)
                    ));
                }
                Ok(d)
            }
        }
    };
    let mut health = HealthConfig {
        test: Some(test),
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        retries: 0,
    };
    if let Some(v) = flags.get("retries").filter(|v| !v.is_empty()) {
        let retries = goutil::parse_int32(v)?;
        if retries < 1 {
            return Err(format!("--retries must be at least 1 (not {retries})"));
        }
        health.retries = retries;
    }
    Ok(health)
}

/// The dispatcher state of `BuildFromConfig`.
struct DispatchState {
    config: ContainerConfig,
    /// Whether a non-empty CMD was dispatched (then ENTRYPOINT keeps `Cmd`).
    cmd_set: bool,
    escape: char,
}

impl DispatchState {
    fn shell(&self) -> Vec<String> {
        match self.config.shell.as_deref() {
            Some(shell) if !shell.is_empty() => shell.to_vec(),
            _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `resolveCmdLine`: prepend the shell to a shell-form command.
    fn resolve(&self, cmd: CmdLine) -> Option<Vec<String>> {
        match cmd.line {
            Some(line) if cmd.prepend_shell => {
                let mut full = self.shell();
                full.extend(line);
                Some(full)
            }
            other => other,
        }
    }

    fn dispatch(&mut self, instruction: Instruction) -> Result<(), String> {
        let env = self.config.env.clone().unwrap_or_default();
        let escape = self.escape;
        let expand = |w: &str| lex::process_word(w, &env, escape);
        let expand_kvps = |kvps: Vec<(String, String)>| -> Result<Vec<_>, String> {
            kvps.into_iter()
                .map(|(k, v)| Ok((expand(&k)?, expand(&v)?)))
                .collect()
        };
        match instruction {
            Instruction::Env(kvps) => {
                let list = self.config.env.get_or_insert_default();
                for (k, v) in expand_kvps(kvps)? {
                    let new_var = format!("{k}={v}");
                    let existing = list
                        .iter_mut()
                        .find(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) == k);
                    match existing {
                        Some(slot) => *slot = new_var,
                        None => list.push(new_var),
                    }
                }
            }
            Instruction::Label(kvps) => {
                let kvps = expand_kvps(kvps)?;
                self.config.labels.get_or_insert_default().extend(kvps);
            }
            Instruction::Onbuild(expression) => {
                self.config
                    .on_build
                    .get_or_insert_default()
                    .push(expression);
            }
            Instruction::Workdir(path) => {
                let path = expand(&path)?;
                if path.is_empty() {
                    return Err("cannot normalize nothing".into());
                }
                self.config.working_dir = if path.starts_with('/') {
                    path
                } else {
                    goutil::clean_path(&format!("/{}/{}", self.config.working_dir, path))
                };
            }
            Instruction::Cmd(cmd) => {
                let non_empty = cmd.line.as_ref().is_some_and(|l| !l.is_empty());
                self.config.cmd = self.resolve(cmd);
                self.config.args_escaped = false;
                if non_empty {
                    self.cmd_set = true;
                }
            }
            Instruction::Entrypoint(cmd) => {
                self.config.entrypoint = self.resolve(cmd);
                self.config.args_escaped = false;
                if !self.cmd_set {
                    self.config.cmd = None;
                }
            }
            Instruction::Healthcheck(health) => self.config.healthcheck = Some(health),
            Instruction::Expose(raw) => {
                let mut ports = Vec::new();
                for p in &raw {
                    ports.extend(lex::process_words(p, &env, escape)?);
                }
                let mut exposed = BTreeSet::new();
                for p in &ports {
                    goutil::parse_port_spec(p, &mut exposed)?;
                }
                self.config
                    .exposed_ports
                    .get_or_insert_default()
                    .extend(exposed);
            }
            Instruction::User(user) => self.config.user = expand(&user)?,
            Instruction::Volume(volumes) => {
                let volumes = volumes
                    .iter()
                    .map(|v| expand(v))
                    .collect::<Result<Vec<_>, _>>()?;
                let set = self.config.volumes.get_or_insert_default();
                for v in volumes {
                    if v.is_empty() {
                        return Err("VOLUME specified can not be an empty string".into());
                    }
                    set.insert(v);
                }
            }
            Instruction::StopSignal(signal) => {
                let signal = expand(&signal)?;
                if !goutil::is_valid_signal(&signal) {
                    return Err(format!("Invalid signal: {signal}"));
                }
                self.config.stop_signal = signal;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
