//! `hoist push` and `hoist pull` against a real registry: Debian's `docker-registry`
//! (distribution 2.8), started by each test on 127.0.0.1 with a free port and its own storage,
//! and checked with skopeo (and docker, when a dockerd is reachable). Every test asserts exact
//! facts: digests, image IDs, exported bytes, blob uploads counted in the registry's log.
//! Nothing here talks to anything but 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, Env};

/// Where Debian installs distribution's registry.
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How long a fresh registry may take to answer `/v2/`.
const REGISTRY_START_TIMEOUT: Duration = Duration::from_secs(20);

pub const DIVE: &str = "docker-v1.2_docker18_dive-test.tar";
pub const OCI_GZIP: &str = "oci-archive_buildkit-gzip_dive.tar";
pub const MULTIPLATFORM: &str = "oci-layout-dir_docker-containerd-store_stereoscope-multiplatform";

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A running registry, killed when dropped.
pub struct Registry {
    pub child: Child,
    /// The address it listens on (127.0.0.1 unless started with [`Registry::start_on`]).
    pub host: std::net::IpAddr,
    pub port: u16,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// Starts docker-registry on a free port of 127.0.0.1, or `None` (outside CI) when it is
    /// not installed.
    pub fn start() -> Option<Registry> {
        Self::start_with("", "")
    }

    /// Like [`Registry::start`], with more YAML: `http` lines (indented by two spaces, e.g. a
    /// `tls:` section) and top-level sections (e.g. `auth:`).
    pub fn start_with(http_extra: &str, extra: &str) -> Option<Registry> {
        Self::start_on([127, 0, 0, 1].into(), http_extra, extra)
    }

    /// Like [`Registry::start_with`], listening on `host`.
    pub fn start_on(host: std::net::IpAddr, http_extra: &str, extra: &str) -> Option<Registry> {
        let bin = common::peer(REGISTRY_BIN)?;
        let dir = tempfile::Builder::new()
            .prefix("hoist-registry-")
            .tempdir()
            .unwrap();
        // Another process may take the port between here and the registry's bind; then the
        // registry exits and the wait below says so.
        let port = TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: info\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {host}:{port}\n  secret: hoist-test\n{http_extra}{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let child = Self::spawn(bin.as_path(), &config, &log);
        let mut reg = Registry {
            child,
            host,
            port,
            log,
            dir,
        };
        reg.wait_ready();
        Some(reg)
    }

    /// Starts `bin serve config`, appending its output to `log`.
    fn spawn(bin: &Path, config: &Path, log: &Path) -> Child {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(bin)
            .arg("serve")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap()
    }

    /// Kills the registry (its storage stays).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the registry again on the same port with the same storage and configuration.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(
            Path::new(REGISTRY_BIN),
            &self.dir.path().join("config.yml"),
            &self.log,
        );
        self.wait_ready();
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + REGISTRY_START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited ({status}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(mut c) = TcpStream::connect((self.host, self.port)) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut answer = String::new();
                // Any HTTP answer means it serves: 200, or 401 with auth, or 400 from a TLS
                // port spoken to in plain HTTP.
                if c.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    .is_ok()
                    && c.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.0 ")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer /v2/ within {REGISTRY_START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `HOST:PORT/<rest>`.
    pub fn name(&self, rest: &str) -> String {
        format!("{}:{}/{rest}", self.host, self.port)
    }

    /// Blob upload completions (`PUT /v2/<repo>/blobs/uploads/…`) in the access log so far.
    pub fn blob_uploads(&self, repo: &str) -> usize {
        self.requests(&format!("\"PUT /v2/{repo}/blobs/uploads/"))
    }

    /// Every request of an upload (`POST`: start or mount, `PATCH`: data, `PUT`: end) on
    /// `/v2/<repo>/blobs/uploads/` in the access log so far.
    pub fn upload_requests(&self, repo: &str) -> usize {
        ["POST", "PATCH", "PUT"]
            .iter()
            .map(|m| self.requests(&format!("\"{m} /v2/{repo}/blobs/uploads/")))
            .sum()
    }

    /// Lines of the access log that contain `needle`.
    fn requests(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // It may have died already; either way it must not outlive the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn skopeo() -> Option<PathBuf> {
    common::peer("skopeo")
}

/// `skopeo inspect --tls-verify=false [ARGS] docker://REF`, raw bytes.
pub fn skopeo_inspect(bin: &Path, args: &[&str], reference: &str) -> Vec<u8> {
    let out = common::run_ok(
        Command::new(bin)
            .args(["inspect", "--tls-verify=false"])
            .args(args)
            .arg(format!("docker://{reference}")),
    );
    out.into_bytes()
}

pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", common::sha256(bytes))
}

/// `hoist export` of an image to a file; the sha256 of the tar.
pub fn export_digest(env: &Env, image: &str) -> String {
    let out = env.path(&format!("export-{}.tar", common::unique("x")));
    env.ok(&["export", "-o", s(&out), image]);
    common::sha256_file(&out)
}

/// The store's image IDs (`hoist images -q --no-trunc`), sorted.
pub fn ids(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = env
        .ok(&["images", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn push_is_read_by_skopeo_and_pulls_back_to_the_same_image() {
    let Some(reg) = Registry::start() else { return };
    let Some(skopeo) = skopeo() else { return };
    let src = Env::new();
    src.ok(&["load", "-i", s(&common::data(DIVE))]);
    let original = src.inspect("dive-test:latest");
    let id = original["Id"].as_str().unwrap().to_string();
    let dest = reg.name("dive:1");

    let out = src.ok(&["push", "dive-test:latest", &dest]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{}]", reg.name("dive"))
    );
    let last = lines.last().unwrap();
    let digest = last
        .strip_prefix("1: digest: ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected last line {last:?}"))
        .to_string();
    // Config and 14 layers, none in the registry before.
    assert_eq!(out.matches(": Pushed").count(), 15, "{out}");
    assert_eq!(reg.blob_uploads("dive"), 15);

    // What skopeo reads back: the manifest as stored (same digest), the same config.
    let raw = skopeo_inspect(&skopeo, &["--raw"], &dest);
    assert_eq!(digest_of(&raw), digest);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["config"]["digest"], id.as_str());
    let config = skopeo_inspect(&skopeo, &["--config", "--raw"], &dest);
    assert_eq!(digest_of(&config), id);
    let info: Value = serde_json::from_slice(&skopeo_inspect(&skopeo, &[], &dest)).unwrap();
    assert_eq!(info["Digest"], digest.as_str());
    let layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(layers.len(), 14);
    assert_eq!(
        info["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect::<Vec<_>>(),
        layers
    );
    // The store's layers are uncompressed; they were pushed gzip-compressed, in the media types
    // of the store's manifest (OCI, as docker 25 gives a docker archive).
    let diff_ids: Vec<&str> = original["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    for (l, diff_id) in manifest["layers"].as_array().unwrap().iter().zip(&diff_ids) {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_ne!(l["digest"], *diff_id);
    }
    // The compression is deterministic: another store, with nothing remembered, compresses
    // the 14 layers to the same digests, finds every blob by HEAD, uploads none and gives
    // the same manifest digest (a_store_that_never_pushed_… has the details).
    let other_store = Env::new();
    other_store.ok(&["load", "-i", s(&common::data(DIVE))]);
    let again_elsewhere = other_store.ok(&["-q", "push", "dive-test:latest", &dest]);
    assert_eq!(again_elsewhere, format!("{digest}\n"));
    assert_eq!(reg.blob_uploads("dive"), 15);

    // --compress none pushes the manifest as stored: the store's digest, layers = diff_ids.
    let index: Value =
        serde_json::from_slice(&std::fs::read(src.root.join("index.json")).unwrap()).unwrap();
    let stored_manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["io.containerd.image.name"] == "docker.io/library/dive-test:latest"
        })
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = reg.name("dive:plain");
    let out = src.ok(&["push", "--compress", "none", "dive-test:latest", &plain]);
    // The 14 uncompressed layers are new blobs to the registry.
    assert_eq!(out.matches(": Pushed").count(), 14, "{out}");
    let raw_plain = skopeo_inspect(&skopeo, &["--raw"], &plain);
    let plain_manifest: Value = serde_json::from_slice(&raw_plain).unwrap();
    let plain_layers: Vec<&str> = plain_manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(plain_layers, diff_ids);
    assert_eq!(digest_of(&raw_plain), stored_manifest);
    assert!(out.ends_with(&format!(
        "plain: digest: {stored_manifest} size: {}\n",
        raw_plain.len()
    )));

    // The same image to another repository of the registry: every blob is mounted from the
    // repository hoist pushed it to, none uploaded.
    let mounted = src.ok(&["push", "dive-test:latest", &reg.name("copy:1")]);
    assert_eq!(
        mounted.matches(": Mounted from dive").count(),
        15,
        "{mounted}"
    );
    assert_eq!(reg.blob_uploads("copy"), 0);
    assert!(mounted.ends_with(&format!("1: digest: {digest} size: {}\n", raw.len())));

    // A second push from the first store uploads no blob and gives the same digest.
    let uploads = reg.blob_uploads("dive");
    let again = src.ok(&["push", "dive-test:latest", &dest]);
    assert_eq!(reg.blob_uploads("dive"), uploads, "{again}");
    assert_eq!(
        again.matches(": Layer already exists").count(),
        15,
        "{again}"
    );
    assert!(again.ends_with(&format!("1: digest: {digest} size: {}\n", raw.len())));
    assert_eq!(
        src.ok(&["-q", "push", "dive-test:latest", &dest]),
        format!("{digest}\n")
    );

    // Pull into a fresh store: same ID, same manifest digest, same exported filesystem.
    let dst = Env::new();
    let out = dst.ok(&["pull", &dest]);
    assert_eq!(out.lines().next().unwrap(), "1: Pulling from dive", "{out}");
    assert_eq!(out.matches(": Pull complete").count(), 14, "{out}");
    assert!(
        out.ends_with(&format!(
            "Digest: {digest}\nStatus: Downloaded newer image for {dest}\n{dest}\n"
        )),
        "{out}"
    );
    let pulled = dst.inspect(&dest);
    assert_eq!(pulled["Id"], id.as_str());
    assert_eq!(pulled["RepoTags"], serde_json::json!([dest]));
    assert_eq!(pulled["RootFS"], original["RootFS"]);
    assert_eq!(
        export_digest(&dst, &dest),
        export_digest(&src, "dive-test:latest")
    );
    dst.ok(&["fsck"]);

    // Pulling again changes nothing and says so.
    let before = dst.snapshot();
    let out = dst.ok(&["pull", &dest]);
    assert!(
        out.ends_with(&format!(
            "Digest: {digest}\nStatus: Image is up to date for {dest}\n{dest}\n"
        )),
        "{out}"
    );
    assert_eq!(out.matches(": Already exists").count(), 14, "{out}");
    assert_eq!(dst.snapshot(), before);
    assert_eq!(dst.ok(&["-q", "pull", &dest]), format!("{dest}\n"));

    // By digest: the same image, kept untagged (docker shows such images as <none>).
    let by_digest = reg.name(&format!("dive@{digest}"));
    let other = Env::new();
    let out = other.ok(&["pull", &by_digest]);
    assert!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    assert_eq!(ids(&other), vec![id.clone()]);

    // docker reads what hoist pushed as the same image.
    if let Some(docker) = common::docker() {
        docker.ok(&["pull", &dest]);
        let docker_id = docker.ok(&["image", "inspect", "--format", "{{.Id}}", &dest]);
        // And runs it: the file's bytes are the corpus listing's.
        let out = docker.ok(&["run", "--rm", &dest, "cat", "/somefile.txt"]);
        docker.quiet(&["rmi", &dest]);
        assert_eq!(docker_id.trim(), id);
        assert_eq!(
            common::sha256(out.as_bytes()),
            "9422b46ac51529b16b223b83c51f2c1040e6278c918e00194201552d2d4a0551"
        );
    }
}

/// The files of a store's memory of compressed layers (`hoist/compressed/<algo>/<diff_id>`).
fn remembered(env: &Env, algo: &str) -> std::collections::BTreeMap<String, String> {
    let dir = env.root.join("hoist/compressed").join(algo);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_store_that_never_pushed_an_image_uploads_no_layer_the_registry_has() {
    let Some(reg) = Registry::start() else { return };
    let first = Env::new();
    first.ok(&["load", "-i", s(&common::data(DIVE))]);
    let dest = reg.name("dive:1");
    let digest = first.ok(&["-q", "push", "dive-test:latest", &dest]);
    let digest = digest.trim();
    // 14 layers and the config, each one POST and one PUT of a known digest.
    assert_eq!(reg.blob_uploads("dive"), 15);
    assert_eq!(reg.upload_requests("dive"), 30);

    // A store that never pushed it (the image loaded from the same archive): each layer is
    // compressed to learn its digest, found by HEAD, and not one upload request is made.
    let fresh = Env::new();
    fresh.ok(&["load", "-i", s(&common::data(DIVE))]);
    let out = fresh.ok(&["push", "dive-test:latest", &dest]);
    assert_eq!(reg.upload_requests("dive"), 30, "{out}");
    assert_eq!(out.matches(": Layer already exists").count(), 15, "{out}");
    assert!(
        out.ends_with(&format!("1: digest: {digest} size: 2467\n")),
        "{out}"
    );
    // It remembers what the first store remembers, and leaves no scratch file behind.
    assert_eq!(remembered(&fresh, "gzip").len(), 14);
    assert_eq!(remembered(&fresh, "gzip"), remembered(&first, "gzip"));
    assert_eq!(
        std::fs::read_dir(fresh.root.join("hoist/tmp"))
            .unwrap()
            .count(),
        0
    );

    // A memory that is wrong (as another compressor would leave it): the remembered digest
    // is not in the registry, so the layer is compressed again, and the true digest found
    // (mounted into a new repository from the one this store saw it in) and remembered.
    let wrong = format!("sha256:{} 1234\n", "0".repeat(64));
    for diff_id in remembered(&fresh, "gzip").keys() {
        std::fs::write(
            fresh.root.join("hoist/compressed/gzip").join(diff_id),
            &wrong,
        )
        .unwrap();
    }
    let out = fresh.ok(&["push", "dive-test:latest", &reg.name("other:1")]);
    assert_eq!(out.matches(": Mounted from dive").count(), 15, "{out}");
    assert_eq!(reg.blob_uploads("other"), 0);
    assert!(
        out.ends_with(&format!("1: digest: {digest} size: 2467\n")),
        "{out}"
    );
    assert_eq!(remembered(&fresh, "gzip"), remembered(&first, "gzip"));

    // Where no scratch file can be made (`copy` from an archive spools in $TMPDIR, here a
    // directory that is not there), each layer is compressed once to learn its digest and
    // again for its upload, with a warning: the same blobs, the same manifest.
    let no_tmp = fresh.path("no-such-dir");
    let out = fresh
        .cmd(&[
            "copy",
            &format!("docker-archive:{}", s(&common::data(DIVE))),
            &format!("docker://{}", reg.name("again:1")),
        ])
        .env("TMPDIR", &no_tmp)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{digest}\n"));
    assert_eq!(reg.blob_uploads("again"), 15);
    let warning = format!(
        "could not be kept compressed for its upload ({}: No such file or directory (os \
         error 2)): it is compressed again if the registry lacks it\n",
        no_tmp.display()
    );
    assert_eq!(stderr.matches(&warning).count(), 14, "{stderr}");
    assert_eq!(stderr.lines().count(), 14, "{stderr}");

    // zstd too: its compression is deterministic as well. The first zstd push uploads the
    // 14 zstd layers (the config is there), a store that never pushed them uploads nothing.
    let zstd = reg.name("dive:zstd");
    let zstd_digest = first.ok(&[
        "-q",
        "push",
        "--compress",
        "zstd",
        "dive-test:latest",
        &zstd,
    ]);
    assert_eq!(reg.blob_uploads("dive"), 15 + 14);
    let requests = reg.upload_requests("dive");
    let third = Env::new();
    third.ok(&["load", "-i", s(&common::data(DIVE))]);
    assert_eq!(
        third.ok(&[
            "-q",
            "push",
            "--compress",
            "zstd",
            "dive-test:latest",
            &zstd
        ]),
        zstd_digest
    );
    assert_eq!(reg.upload_requests("dive"), requests);
    assert_eq!(remembered(&third, "zstd"), remembered(&first, "zstd"));
}

#[test]
fn pull_of_images_skopeo_pushed_gives_the_ids_skopeo_reports() {
    let Some(reg) = Registry::start() else { return };
    let Some(skopeo) = skopeo() else { return };
    let copy = |src: String, dest: &str, all: bool| {
        let mut c = Command::new(&skopeo);
        c.args(["copy", "--dest-tls-verify=false"]);
        if all {
            c.arg("--all");
        }
        c.arg(src).arg(format!("docker://{dest}"));
        common::run_ok(&mut c);
    };
    let env = Env::new();

    // An OCI archive with gzip layers (arm64: pulled with --platform, the manifest has no index).
    let gz = reg.name("gzip:1");
    copy(
        format!("oci-archive:{}", s(&common::data(OCI_GZIP))),
        &gz,
        false,
    );
    let id = digest_of(&skopeo_inspect(&skopeo, &["--config", "--raw"], &gz));
    let manifest_digest = digest_of(&skopeo_inspect(&skopeo, &["--raw"], &gz));
    let out = env.ok(&["pull", &gz]);
    assert!(
        out.contains(&format!("Digest: {manifest_digest}\n")),
        "{out}"
    );
    assert_eq!(env.inspect(&gz)["Id"], id.as_str());
    // The layers stay compressed as the registry has them; the rootfs is the corpus'.
    let tsv =
        std::fs::read_to_string(common::data(&OCI_GZIP.replace(".tar", ".rootfs.tsv"))).unwrap();
    assert!(!tsv.is_empty());
    let exported = env.path("gz.tar");
    env.ok(&["export", "-o", s(&exported), &gz]);
    let mut c = Command::new("python3");
    c.arg(common::data("flatten_listing.py"))
        .arg("--tar")
        .arg(&exported);
    assert_eq!(common::run_ok(&mut c), tsv);

    // A docker archive (uncompressed layers; skopeo pushes them as docker schema 2).
    let dk = reg.name("dive:sk");
    copy(
        format!("docker-archive:{}", s(&common::data(DIVE))),
        &dk,
        false,
    );
    let id = digest_of(&skopeo_inspect(&skopeo, &["--config", "--raw"], &dk));
    env.ok(&["pull", &dk]);
    assert_eq!(env.inspect(&dk)["Id"], id.as_str());

    // A multi-platform index: the host's platform by default, another with --platform.
    let mp = reg.name("multi:1");
    copy(
        format!("oci:{}:latest", s(&common::data(MULTIPLATFORM))),
        &mp,
        true,
    );
    let index_digest = digest_of(&skopeo_inspect(&skopeo, &["--raw"], &mp));
    let item = common::expected_item(MULTIPLATFORM);
    let config_for = |arch: &str| {
        item["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["platform"]["architecture"] == arch)
            .unwrap()["config_digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let arm = Env::new();
    let out = arm.ok(&["pull", "--platform", "linux/arm64", &mp]);
    assert!(out.contains(&format!("Digest: {index_digest}\n")), "{out}");
    assert_eq!(arm.inspect(&mp)["Id"], config_for("arm64").as_str());
    let amd = Env::new();
    amd.ok(&["pull", "--platform", "linux/amd64", &mp]);
    assert_eq!(amd.inspect(&mp)["Id"], config_for("amd64").as_str());
    if std::env::consts::ARCH == "x86_64" {
        let host = Env::new();
        host.ok(&["pull", &mp]);
        assert_eq!(host.inspect(&mp)["Id"], config_for("amd64").as_str());
    }
    let err = amd.fails(&["pull", "--platform", "linux/s390x", &mp]);
    assert!(err.contains("no image for platform linux/s390x"), "{err}");
    assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
}

#[test]
fn a_failed_pull_names_what_is_missing_and_leaves_the_store_unchanged() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    env.ok(&["load", "-i", s(&common::data(DIVE))]);
    env.ok(&["push", "dive-test:latest", &reg.name("dive:1")]);
    let before = env.snapshot();

    let err = env.fails(&["pull", &reg.name("dive:nosuchtag")]);
    let registry = format!("127.0.0.1:{}", reg.port);
    for part in [
        registry.as_str(),
        "repository dive",
        "tag nosuchtag",
        "not found",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    assert_eq!(env.snapshot(), before);

    let err = env.fails(&["pull", &reg.name("nosuchrepo:1")]);
    assert!(err.contains("repository nosuchrepo"), "{err}");
    assert!(err.contains("not found"), "{err}");
    assert_eq!(env.snapshot(), before);

    let missing = format!("sha256:{}", "0".repeat(64));
    let err = env.fails(&["pull", &reg.name(&format!("dive@{missing}"))]);
    assert!(err.contains(&format!("manifest {missing}")), "{err}");
    assert_eq!(env.snapshot(), before);

    // Nothing listens on this port any more: a clear transport error, store unchanged.
    let port = reg.port;
    drop(reg);
    let err = env.fails(&["pull", &format!("127.0.0.1:{port}/dive:1")]);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(env.snapshot(), before);

    // Pushing an image the store does not have names it.
    let err = env.fails(&["push", "nosuch:image", &format!("127.0.0.1:{port}/x:1")]);
    assert!(err.contains("No such image: nosuch:image"), "{err}");
}
