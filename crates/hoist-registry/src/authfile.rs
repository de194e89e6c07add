//! Credentials in docker's `config.json`: what `docker login` writes and `docker pull`,
//! podman and skopeo read.
//!
//! ```json
//! {"auths": {"registry.example:5000": {"auth": "<base64 of user:password>"},
//!            "https://index.docker.io/v1/": {"auth": "…"}},
//!  "credsStore": "pass", "credHelpers": {"gcr.io": "gcr"}}
//! ```
//!
//! Docker Hub's key is `https://index.docker.io/v1/`; other registries are keyed by
//! `host[:port]` (older files may have `https://host/v1/`, which matches too). A registry with
//! a `credHelpers` entry, or any registry when `credsStore` is set, is served by the program
//! `docker-credential-<name>` (`get`, `store`, `erase` on stdin/stdout, docker's protocol).
//! Every other key of the file is kept when hoist writes it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::value::RawValue;

use crate::auth::Credentials;
use crate::error::{Error, Result};

/// The key docker uses for Docker Hub in `auths` and with credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Names under which Docker Hub appears in image names and old config files.
const DOCKER_HUB_ALIASES: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// What credential helpers print when they have nothing for a server.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";

/// The file hoist reads and writes credentials in: `$REGISTRY_AUTH_FILE`, else
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (docker's own file, so that a
/// `docker login` is seen by hoist and the other way round).
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    home.join(".docker").join("config.json")
}

/// The key of a registry in `auths` and for credential helpers.
pub fn server_key(registry: &str) -> String {
    let host = hostname(registry);
    if DOCKER_HUB_ALIASES.contains(&host) {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

/// Whether a key of the file is the whole registry `key` ([`server_key`]): `host`,
/// `https://host/v1/` (old docker files). Keys scoped to a namespace (`quay.io/org`, as
/// podman writes them) are other entries: never read, replaced or removed for the registry.
fn same_registry(file_key: &str, key: &str) -> bool {
    let rest = file_key
        .strip_prefix("https://")
        .or_else(|| file_key.strip_prefix("http://"))
        .unwrap_or(file_key);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let scoped = !matches!(path.trim_end_matches('/'), "" | "v1" | "v2");
    !scoped && server_key(file_key) == key
}

/// docker's `ConvertToHostname`: the host of `https://host/v1/` or `host`.
fn hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// The parts of `config.json` hoist looks at; everything else is carried through as it is.
#[derive(Debug, Default, serde::Deserialize)]
struct Parsed {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// Where [`AuthFile::store`] put the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredIn {
    /// In the file itself (base64, not encrypted: docker warns about it too).
    File(PathBuf),
    /// In a credential helper (`docker-credential-NAME`).
    Helper(String),
}

/// A docker `config.json` (it need not exist until credentials are stored).
#[derive(Debug, Clone)]
pub struct AuthFile {
    path: PathBuf,
}

impl AuthFile {
    /// The file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> AuthFile {
        AuthFile { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::AuthFile {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The raw top level of the file (empty when it does not exist).
    fn read_raw(&self) -> Result<BTreeMap<String, Box<RawValue>>> {
        match std::fs::read(&self.path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(BTreeMap::new()),
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|e| self.bad(format!("not valid JSON: {e}")))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.bad(e.to_string())),
        }
    }

    fn parsed(&self) -> Result<Parsed> {
        let raw = self.read_raw()?;
        let json = serde_json::to_string(&raw).map_err(|e| self.bad(e.to_string()))?;
        serde_json::from_str(&json).map_err(|e| self.bad(format!("unexpected content: {e}")))
    }

    /// The helper that serves `registry`, if any.
    fn helper_for(parsed: &Parsed, key: &str) -> Option<String> {
        parsed
            .cred_helpers
            .iter()
            .find(|(k, _)| hostname(k) == hostname(key) || same_registry(k, key))
            .map(|(_, v)| v.clone())
            .or_else(|| parsed.creds_store.clone())
            .filter(|h| !h.is_empty())
    }

    /// The credentials for `registry` (a name's domain: `docker.io`, `host:5000`), if any.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        let parsed = self.parsed()?;
        let key = server_key(registry);
        if let Some(helper) = Self::helper_for(&parsed, &key) {
            return helper_get(&helper, &key);
        }
        let Some(entry) = parsed
            .auths
            .iter()
            .find(|(k, _)| same_registry(k, &key))
            .map(|(_, e)| e)
        else {
            return Ok(None);
        };
        if let Some(token) = entry.identity_token.as_ref().filter(|t| !t.is_empty()) {
            // Carried as the user `<token>` (as credential helpers give it); the client
            // exchanges it at the token server, as docker does.
            return Ok(Some(Credentials {
                username: crate::auth::IDENTITY_TOKEN_USER.into(),
                password: token.clone(),
            }));
        }
        if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| self.bad(format!("auths.{key}.auth is not base64: {e}")))?;
            let text = String::from_utf8(decoded)
                .map_err(|_| self.bad(format!("auths.{key}.auth is not UTF-8")))?;
            let (user, pass) = text
                .split_once(':')
                .ok_or_else(|| self.bad(format!("auths.{key}.auth is not user:password")))?;
            return Ok(Some(Credentials {
                username: user.to_string(),
                password: pass.to_string(),
            }));
        }
        match (&entry.username, &entry.password) {
            (Some(u), Some(p)) => Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }

    /// Stores credentials for `registry`: in its credential helper if the file names one,
    /// else in `auths`. The file is replaced atomically, readable only by its owner.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<StoredIn> {
        let parsed = self.parsed()?;
        let key = server_key(registry);
        if let Some(helper) = Self::helper_for(&parsed, &key) {
            let input = serde_json::json!({
                "ServerURL": key,
                "Username": creds.username,
                "Secret": creds.password,
            });
            run_helper(&helper, "store", input.to_string().as_bytes())?;
            return Ok(StoredIn::Helper(helper));
        }
        let raw_auth = format!("{}:{}", creds.username, creds.password);
        let entry = serde_json::json!({
            "auth": base64::engine::general_purpose::STANDARD.encode(raw_auth),
        });
        self.edit_auths(|auths| {
            auths.retain(|k, _| !same_registry(k, &key));
            auths.insert(key.clone(), entry);
        })?;
        Ok(StoredIn::File(self.path.clone()))
    }

    /// Removes the credentials of `registry`; false when there were none.
    pub fn erase(&self, registry: &str) -> Result<bool> {
        let parsed = self.parsed()?;
        let key = server_key(registry);
        if let Some(helper) = Self::helper_for(&parsed, &key) {
            if helper_get(&helper, &key)?.is_none() {
                return Ok(false);
            }
            run_helper(&helper, "erase", key.as_bytes())?;
            return Ok(true);
        }
        if !parsed.auths.keys().any(|k| same_registry(k, &key)) {
            return Ok(false);
        }
        self.edit_auths(|auths| auths.retain(|k, _| !same_registry(k, &key)))?;
        Ok(true)
    }

    /// Rewrites the file with `auths` changed by `f`, keeping every other key as it was.
    fn edit_auths(&self, f: impl FnOnce(&mut BTreeMap<String, serde_json::Value>)) -> Result<()> {
        let mut top = self.read_raw()?;
        let mut auths: BTreeMap<String, serde_json::Value> = match top.get("auths") {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| self.bad(format!("auths is not an object: {e}")))?,
            None => BTreeMap::new(),
        };
        f(&mut auths);
        let auths_json = serde_json::to_string(&auths).map_err(|e| self.bad(e.to_string()))?;
        top.insert(
            "auths".into(),
            RawValue::from_string(auths_json).map_err(|e| self.bad(e.to_string()))?,
        );
        // docker writes the file indented with tabs.
        let mut bytes = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, formatter);
        serde::Serialize::serialize(&top, &mut ser).map_err(|e| self.bad(e.to_string()))?;
        bytes.push(b'\n');
        self.write(&bytes)
    }

    fn write(&self, bytes: &[u8]) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        // A symlinked config.json (dotfiles managers) is written where it points, as docker
        // does, not replaced by a file.
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| self.bad(format!("creating {}: {e}", dir.display())))?;
        let name = target
            .file_name()
            .map_or_else(|| "config.json".into(), |n| n.to_string_lossy().to_string());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)
        };
        write().map_err(|e| {
            // The temp file is useless now; a failure to remove it changes nothing.
            let _ = std::fs::remove_file(&tmp);
            self.bad(format!("writing: {e}"))
        })
    }
}

fn helper_program(helper: &str) -> String {
    format!("docker-credential-{helper}")
}

/// Runs `docker-credential-HELPER ACTION` with `input`; its stdout.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>> {
    let program = helper_program(helper);
    let bad = |reason: String| Error::AuthFile {
        path: PathBuf::from(&program),
        reason,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| bad(format!("cannot run the credential helper: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| bad(format!("writing to the credential helper: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| bad(format!("waiting for the credential helper: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim();
        return Err(bad(format!("{action} failed ({}): {msg}", out.status)));
    }
    Ok(out.stdout)
}

/// `docker-credential-HELPER get`; `None` when it has nothing for `key`.
fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>> {
    let out = match run_helper(helper, "get", key.as_bytes()) {
        Ok(o) => o,
        Err(Error::AuthFile { reason, .. }) if reason.contains(HELPER_NOT_FOUND) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let a: Answer = serde_json::from_slice(&out).map_err(|e| Error::AuthFile {
        path: PathBuf::from(helper_program(helper)),
        reason: format!("get answered no valid JSON: {e}"),
    })?;
    if a.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: a.username,
        password: a.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn keys() {
        assert_eq!(server_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_key("https://index.docker.io/v1/"), DOCKER_HUB_KEY);
        assert_eq!(server_key("registry-1.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_key("localhost:5000"), "localhost:5000");
        assert_eq!(
            server_key("https://reg.example:5000/v1/"),
            "reg.example:5000"
        );
    }

    #[test]
    fn store_get_erase_keep_the_rest_of_the_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub").join("config.json");
        let f = AuthFile::at(&path);
        assert_eq!(f.get("localhost:5000").unwrap(), None);
        assert!(!f.erase("localhost:5000").unwrap());

        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"https://old.example/v1/":{"auth":"b2xkOnB3"}},"psFormat":"table {{.ID}}","proxies":{"default":{"httpProxy":"x"}}}"#,
        )
        .unwrap();
        assert_eq!(f.get("old.example").unwrap(), Some(creds("old", "pw")));
        assert_eq!(
            f.store("localhost:5000", &creds("alice", "s3:cret"))
                .unwrap(),
            StoredIn::File(path.clone())
        );
        assert_eq!(
            f.get("localhost:5000").unwrap(),
            Some(creds("alice", "s3:cret"))
        );
        f.store("docker.io", &creds("bob", "x")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table {{.ID}}");
        assert_eq!(v["proxies"]["default"]["httpProxy"], "x");
        assert_eq!(
            v["auths"][DOCKER_HUB_KEY]["auth"],
            base64::engine::general_purpose::STANDARD.encode("bob:x")
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        assert!(f.erase("old.example").unwrap());
        assert_eq!(f.get("old.example").unwrap(), None);
        assert_eq!(f.get("index.docker.io").unwrap(), Some(creds("bob", "x")));
    }

    #[test]
    fn keys_scoped_to_a_namespace_are_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("auth.json");
        std::fs::write(
            &path,
            r#"{"auths":{"quay.io/org1":{"auth":"b3JnOnB3"},"quay.io":{"auth":"YWxsOnB3"}}}"#,
        )
        .unwrap();
        let f = AuthFile::at(&path);
        assert_eq!(f.get("quay.io").unwrap(), Some(creds("all", "pw")));
        assert!(f.erase("quay.io").unwrap());
        assert_eq!(f.get("quay.io").unwrap(), None);
        f.store("quay.io", &creds("new", "x")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["auths"]["quay.io/org1"]["auth"], "b3JnOnB3");
        assert_eq!(f.get("quay.io").unwrap(), Some(creds("new", "x")));
    }

    #[test]
    fn a_symlinked_file_is_written_where_it_points() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("dotfiles").join("docker.json");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, r#"{"psFormat":"x"}"#).unwrap();
        let link = d.path().join("config.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        AuthFile::at(&link).store("r:1", &creds("u", "p")).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "x");
        assert_eq!(
            AuthFile::at(&link).get("r:1").unwrap(),
            Some(creds("u", "p"))
        );
    }

    #[test]
    fn broken_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = AuthFile::at(&path).get("x").unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("not valid JSON"),
            "{e}"
        );
        std::fs::write(&path, r#"{"auths":{"x":{"auth":"%%%"}}}"#).unwrap();
        let e = AuthFile::at(&path).get("x").unwrap_err().to_string();
        assert!(e.contains("auths.x.auth is not base64"), "{e}");
    }

    #[test]
    fn a_missing_helper_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("config.json");
        std::fs::write(&path, r#"{"credsStore":"hoist-no-such-helper"}"#).unwrap();
        let e = AuthFile::at(&path).get("x").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-hoist-no-such-helper")
                && e.contains("cannot run the credential helper"),
            "{e}"
        );
    }
}
