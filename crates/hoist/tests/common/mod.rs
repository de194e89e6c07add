//! Shared test plumbing: a temporary store, running the hoist binary, the corpus fixtures, and
//! the real peers (docker, podman, skopeo, umoci, ctr). Peers may be missing on a laptop (the
//! test then says so and returns), but with `CI=true` a missing peer fails the test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The hoist binary under test.
pub fn hoist_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hoist")
}

/// A fixture in `tests/data/`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The corpus' `expected.json`.
pub fn expected() -> &'static serde_json::Value {
    static E: OnceLock<serde_json::Value> = OnceLock::new();
    E.get_or_init(|| {
        serde_json::from_slice(&std::fs::read(data("expected.json")).unwrap()).unwrap()
    })
}

/// The `expected.json` item for a corpus file.
pub fn expected_item(file: &str) -> &'static serde_json::Value {
    expected()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["file"] == file)
        .unwrap_or_else(|| panic!("{file} not in expected.json"))
}

/// True in CI, where every peer must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A temporary directory with a store in it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("hoist-test-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("store");
        Env { dir, root }
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `hoist --root <store> ARGS`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(hoist_bin());
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs hoist and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "hoist {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs hoist and asserts it fails with exit code 1; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "hoist {args:?} should fail with 1: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "hoist {args:?} panicked: {err}");
        err
    }

    /// Runs hoist with `input` on stdin.
    pub fn with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            // The child may exit early on bad input; a broken pipe here is expected then.
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// `hoist inspect` of one image, parsed.
    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", image])).unwrap();
        v[0].clone()
    }

    /// Every file of the store with the sha256 of its content (for "unchanged" checks).
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        snapshot_tree(&self.root)
    }
}

/// Every file under `root` (relative path -> sha256 of content; symlinks -> target).
pub fn snapshot_tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                stack.push(p);
            } else if ft.is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else {
                out.insert(rel, sha256_file(&p));
            }
        }
    }
    out
}

/// sha256 hex of a file.
pub fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut f = std::fs::File::open(p).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// sha256 hex of bytes.
pub fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// A peer program on PATH (or at an absolute path), or `None` with a note. In CI a missing peer
/// panics: the interop tests must run there.
pub fn peer(name: &str) -> Option<PathBuf> {
    let found = if name.starts_with('/') {
        Some(PathBuf::from(name)).filter(|p| p.exists())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    if found.is_none() {
        assert!(!in_ci(), "{name} is required in CI but was not found");
        eprintln!("skipped: {name} not found");
    }
    found
}

/// The docker CLI talking to a running dockerd (`DOCKER_HOST`), or `None` outside CI.
pub fn docker() -> Option<Docker> {
    static D: OnceLock<Option<PathBuf>> = OnceLock::new();
    let bin = D
        .get_or_init(|| {
            // The Debian client matches dockerd 20.10; a newer client elsewhere on PATH would
            // have to negotiate the API down.
            let bin = std::env::var_os("HOIST_TEST_DOCKER")
                .map(PathBuf::from)
                .or_else(|| peer("/usr/bin/docker"))
                .or_else(|| peer("docker"))?;
            let ok = Command::new(&bin)
                .args(["version", "--format", "{{.Server.Version}}"])
                .output()
                .ok()
                .filter(|o| o.status.success());
            if ok.is_none() {
                assert!(
                    !in_ci(),
                    "dockerd is required in CI but `docker version` failed (is DOCKER_HOST set?)"
                );
                eprintln!("skipped: no running dockerd");
                return None;
            }
            Some(bin)
        })
        .clone()?;
    Some(Docker { bin })
}

/// A docker CLI.
pub struct Docker {
    pub bin: PathBuf,
}

impl Docker {
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args);
        c
    }

    /// Runs docker, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs docker, ignoring failure (cleanup).
    pub fn quiet(&self, args: &[&str]) {
        // Cleanup of something that may not exist: failure is fine.
        let _ = self.cmd(args).output();
    }
}

/// podman with a storage of its own (vfs, in a test's temporary directory): every image is
/// removed when dropped, even after a failed test.
pub struct Podman {
    pub bin: PathBuf,
    pub root: PathBuf,
    pub runroot: PathBuf,
}

impl Podman {
    /// podman storing in `env`'s `podman-<tag>/`, or `None` (outside CI) without podman.
    pub fn new(env: &Env, tag: &str) -> Option<Podman> {
        Some(Podman {
            bin: peer("podman")?,
            root: env.path(&format!("podman-{tag}/root")),
            runroot: env.path(&format!("podman-{tag}/run")),
        })
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(["--storage-driver", "vfs", "--root"])
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args);
        c
    }

    /// Runs podman, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.cmd(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Cleanup: failure only leaves files the temporary directory removes anyway.
        let _ = self.cmd(&["rmi", "--all", "--force"]).output();
    }
}

/// containerd's socket: `CONTAINERD_ADDRESS`, else next to the dockerd of `DOCKER_HOST`.
pub fn containerd_address() -> Option<String> {
    if let Some(a) = std::env::var("CONTAINERD_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty())
    {
        return Some(a);
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    // dockerd --exec-root E puts its containerd at E/containerd/containerd.sock; the CI script
    // keeps the exec root next to the docker socket.
    if let Some(dir) = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .and_then(|sock| sock.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("exec/containerd/containerd.sock"));
    }
    candidates.push("/run/docker/containerd/containerd.sock".into());
    candidates.push("/var/run/docker/containerd/containerd.sock".into());
    candidates.push("/run/containerd/containerd.sock".into());
    if let Some(c) = candidates.iter().find(|c| c.exists()) {
        return Some(c.to_string_lossy().to_string());
    }
    assert!(
        !in_ci(),
        "containerd is required in CI: set CONTAINERD_ADDRESS (tried {candidates:?})"
    );
    eprintln!("skipped: no containerd socket (set CONTAINERD_ADDRESS; tried {candidates:?})");
    None
}

/// `ctr` on containerd's socket, in a namespace of its own (removed, with its images, when
/// dropped).
pub struct Ctr {
    pub bin: PathBuf,
    pub address: String,
    pub namespace: String,
}

impl Ctr {
    /// `ctr` in a new namespace, or `None` (outside CI) without ctr or a containerd socket.
    pub fn new() -> Option<Ctr> {
        let bin = peer("ctr")?;
        let address = containerd_address()?;
        Some(Ctr {
            bin,
            address,
            namespace: unique("hoist-test"),
        })
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(["--address", &self.address, "--namespace", &self.namespace])
            .args(args);
        c
    }

    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.cmd(args))
    }

    /// `ctr images ls`: name -> manifest digest.
    pub fn images(&self) -> BTreeMap<String, String> {
        let out = self.ok(&["images", "ls"]);
        out.lines()
            .skip(1)
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols[0].to_string(), cols[2].to_string())
            })
            .collect()
    }

    pub fn remove_all(&self) {
        let names: Vec<String> = self.images().into_keys().collect();
        if !names.is_empty() {
            let mut args = vec!["images", "rm", "--sync"];
            args.extend(names.iter().map(String::as_str));
            let _ = self.cmd(&args).output();
        }
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        // Cleanup: the namespace may hold nothing any more, or be gone.
        if let Ok(out) = self.cmd(&["images", "ls", "-q"]).output() {
            let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            if !names.is_empty() {
                let mut args = vec!["images", "rm", "--sync"];
                args.extend(names.iter().map(String::as_str));
                let _ = self.cmd(&args).output();
            }
        }
        // containerd's garbage collection of the content may lag behind `images rm`: retry.
        for _ in 0..20 {
            let rm = Command::new(&self.bin)
                .args([
                    "--address",
                    &self.address,
                    "namespaces",
                    "rm",
                    &self.namespace,
                ])
                .output();
            if rm.is_ok_and(|o| o.status.success()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
}

/// Runs a peer command, asserting success; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A unique suffix for names in shared peers (docker's store is shared by concurrent tests).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Debian's busybox-static, the one binary of the test images that run.
pub const BUSYBOX: &str = "/bin/busybox";

/// busybox applets linked into the test rootfs.
pub const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "rm", "mkdir", "pwd", "true", "ln", "chmod",
];

/// A tar header owned by root with a fixed mtime (so test tars are deterministic).
pub fn tar_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// A tiny busybox rootfs as a flat tar (what `import` and `docker import` take); `extra` may
/// append more entries before the tar is finished.
pub fn busybox_rootfs_tar(dest: &Path, extra: impl FnOnce(&mut tar::Builder<std::fs::File>)) {
    let mut b = tar::Builder::new(std::fs::File::create(dest).unwrap());
    for (dir, mode) in [
        ("bin/", 0o755),
        ("etc/", 0o755),
        ("root/", 0o700),
        ("tmp/", 0o1777),
        ("data/", 0o755),
        ("data/olddir/", 0o755),
    ] {
        let mut h = tar_header(tar::EntryType::Directory, mode, 0);
        b.append_data(&mut h, dir, std::io::empty()).unwrap();
    }
    let busybox = std::fs::read(BUSYBOX).unwrap();
    let mut h = tar_header(tar::EntryType::Regular, 0o755, busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", &busybox[..]).unwrap();
    for a in APPLETS {
        let mut h = tar_header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .unwrap();
    }
    for (path, content) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("data/keep.txt", "keep\n"),
        ("data/old.txt", "old\n"),
        ("data/olddir/a.txt", "a\n"),
        ("data/olddir/b.txt", "b\n"),
    ] {
        let mut h = tar_header(tar::EntryType::Regular, 0o644, content.len() as u64);
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    extra(&mut b);
    b.finish().unwrap();
}

/// Removes docker image names at the end of a test, even when it fails.
pub struct DockerNames<'a> {
    pub docker: &'a Docker,
    pub names: Vec<String>,
}

impl Drop for DockerNames<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            self.docker.quiet(&["rmi", n]);
        }
    }
}

/// The throw-away sshd that `.ci/sshd` starts (`HOIST_TEST_SSH=127.0.0.1:PORT`,
/// `HOIST_TEST_SSH_KEY`, `HOIST_TEST_SSH_KNOWN_HOSTS`), checked once by logging in; `None` with
/// a note when it is not there. In CI it must be.
pub fn ssh() -> Option<Ssh> {
    static S: OnceLock<Option<Ssh>> = OnceLock::new();
    S.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(addr), Some(key), Some(known)) = (
            var("HOIST_TEST_SSH"),
            var("HOIST_TEST_SSH_KEY"),
            var("HOIST_TEST_SSH_KNOWN_HOSTS"),
        ) else {
            assert!(
                !in_ci(),
                "the ssh tests need the sshd of .ci/sshd in CI ($HOIST_TEST_SSH is not set)"
            );
            eprintln!("skipped: no test sshd (eval \"$(.ci/sshd DIR)\" starts one)");
            return None;
        };
        // Strict host checking against the throw-away host key; no user ssh config.
        let command = format!(
            "ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known} \
             -o StrictHostKeyChecking=yes -o LogLevel=ERROR"
        );
        let (host, port) = addr.rsplit_once(':').expect("HOIST_TEST_SSH is HOST:PORT");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{command} -o BatchMode=yes -p {port} {host} true"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot log in to the test sshd at {addr}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let user = run_ok(Command::new("id").arg("-un")).trim().to_string();
        Some(Ssh {
            addr,
            v6: var("HOIST_TEST_SSH6"),
            command,
            user,
        })
    })
    .clone()
}

/// How tests reach the test sshd.
#[derive(Clone, Debug)]
pub struct Ssh {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `[::1]:PORT`, the same sshd, when the host has IPv6 loopback.
    pub v6: Option<String>,
    /// The ssh command line for `$HOIST_SSH`.
    pub command: String,
    /// The user the key logs in as (the current one).
    pub user: String,
}

impl Ssh {
    /// `ssh://ADDR/IMAGE`.
    pub fn url(&self, image: &str) -> String {
        format!("ssh://{}/{image}", self.addr)
    }

    /// `hoist --root <env's store> copy ARGS` with `$HOIST_SSH` set for the test sshd.
    pub fn cmd(&self, env: &Env, args: &[&str]) -> Command {
        let mut c = env.cmd(args);
        c.env("HOIST_SSH", &self.command);
        c
    }

    /// The `--remote-hoist` value that runs this hoist on `far`'s store.
    pub fn remote_hoist(&self, far: &Env) -> String {
        format!("{} --root {}", hoist_bin(), far.root.display())
    }
}

/// One file of an (uncompressed) tar archive, by its path (a leading `./` ignored).
pub fn file_in_tar(archive: &Path, name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut a = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().to_string();
        if p.trim_start_matches("./") == name {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("{name} not in {}", archive.display());
}

/// The paths of a tar archive's entries, in order.
pub fn tar_paths(archive: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(std::fs::File::open(archive).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
        .collect()
}
