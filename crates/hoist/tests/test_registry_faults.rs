//! `hoist pull` when the registry misbehaves: it dies in the middle of a download, or a proxy
//! in front of it corrupts one byte of a layer. Either way the pull must fail naming what went
//! wrong and leave the store exactly as it was; the same pull works once the fault is gone.
//! Also: podman reads what hoist pushed as the same image. Nothing here talks to anything but
//! 127.0.0.1.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, Env, Podman};
use crate::test_registry::{DIVE, Registry, export_digest, ids, s};

/// Incompressible, deterministic bytes (xorshift64*): `size` of them from `seed`.
struct Noise {
    state: u64,
    left: u64,
}

impl Noise {
    fn new(seed: u64, size: u64) -> Noise {
        Noise {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            left: size,
        }
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize) / 8 * 8;
        let n = if n == 0 {
            buf.len().min(self.left as usize)
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let word = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A rootfs tar with `files` files of `size` bytes of [`Noise`] each.
fn noise_rootfs_tar(dest: &Path, files: u64, size: u64) {
    let mut b = tar::Builder::new(std::fs::File::create(dest).unwrap());
    let mut h = common::tar_header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, "data/", std::io::empty()).unwrap();
    for i in 0..files {
        let mut h = common::tar_header(tar::EntryType::Regular, 0o644, size);
        b.append_data(&mut h, format!("data/noise-{i}"), Noise::new(i + 1, size))
            .unwrap();
    }
    b.finish().unwrap();
}

/// `hoist push --compress none SRC DEST` (layers as the store keeps them: plain tars, so the
/// layer digests are the config's diff_ids); returns the manifest digest it reports.
fn push_uncompressed(env: &Env, src: &str, dest: &str) -> String {
    let args = ["push", "--compress", "none", src, dest];
    let out = env.ok(&args);
    let last = out.lines().last().unwrap_or_default();
    last.split_once(": digest: ")
        .and_then(|(_, r)| r.split(' ').next())
        .unwrap_or_else(|| panic!("no digest line in the push output:\n{out}"))
        .to_string()
}

/// The image manifest of `repo:reference` as the registry serves it (straight from the
/// registry, not through hoist).
fn registry_manifest(reg: &Registry, repo: &str, reference: &str) -> Value {
    let mut c = TcpStream::connect(("127.0.0.1", reg.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET /v2/{repo}/manifests/{reference} HTTP/1.0\r\nHost: 127.0.0.1\r\n\
         Accept: application/vnd.oci.image.manifest.v1+json, \
         application/vnd.docker.distribution.manifest.v2+json\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]);
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    serde_json::from_slice(&answer[split + 4..]).unwrap()
}

/// The one layer of a manifest: (digest, size).
fn only_layer(manifest: &Value) -> (String, u64) {
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    (
        layers[0]["digest"].as_str().unwrap().to_string(),
        layers[0]["size"].as_u64().unwrap(),
    )
}

/// Files in the store's staging dirs (`hoist/tmp/stage-*/*`) with their sizes.
fn staged_files(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root.join("hoist/tmp")) else {
        return out;
    };
    for d in rd.flatten() {
        if !d.file_name().to_string_lossy().starts_with("stage-") {
            continue;
        }
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            if let Ok(m) = f.metadata() {
                out.push((f.path(), m.len()));
            }
        }
    }
    out
}

/// `kill -SIGNAL pid` (a process this test started).
fn signal(pid: u32, sig: &str) {
    common::run_ok(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string()),
    );
}

#[test]
fn registry_stopped_mid_pull() {
    let Some(mut reg) = Registry::start() else {
        return;
    };
    // One layer of 64 MiB that does not compress: far more than the socket buffers hold, so a
    // registry killed while it is being sent cannot have sent it all.
    let src = Env::new();
    let rootfs = src.path("noise.tar");
    noise_rootfs_tar(&rootfs, 2, 32 << 20);
    src.ok(&["import", s(&rootfs), "noise:1"]);
    let id = src.inspect("noise:1")["Id"].as_str().unwrap().to_string();
    let dest = reg.name("noise:1");
    let digest = push_uncompressed(&src, "noise:1", &dest);
    let (layer, layer_size) = only_layer(&registry_manifest(&reg, "noise", "1"));
    assert!(layer_size > 64 << 20, "{layer_size}");

    // A store that has an image already: the failed pull must not touch it.
    let dst = Env::new();
    dst.ok(&["load", "-i", s(&common::data(DIVE))]);
    let dive_id = dst.inspect("dive-test:latest")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = dst.snapshot();

    let mut child = dst
        .cmd(&["pull", &dest])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The config is staged first (`1`), then the layer (`2`), created once the registry has
    // answered the layer's GET. Freeze the pull there, kill the registry, let the pull go on:
    // it finds the connection gone in the middle of the layer and nobody listening any more.
    let deadline = Instant::now() + Duration::from_secs(60);
    let layer_file = loop {
        let staged = staged_files(&dst.root);
        if staged.len() >= 2 {
            signal(child.id(), "STOP");
            // Frozen: the biggest staged file is the layer, as far as it got.
            break staged_files(&dst.root)
                .iter()
                .map(|(_, n)| *n)
                .max()
                .unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the pull ended ({status}) before the layer download started:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            Instant::now() < deadline,
            "the layer download never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    reg.stop();
    let stopped = Instant::now();
    signal(child.id(), "CONT");
    let out = child.wait_with_output().unwrap();
    let failed_after = stopped.elapsed();
    assert!(
        layer_file < layer_size,
        "the layer was complete ({layer_file} bytes) before the registry was stopped"
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let registry = format!("127.0.0.1:{}", reg.port);
    assert!(err.contains(&registry), "{registry} not in {err}");
    assert!(
        err.contains(&format!("blob {layer}")),
        "{layer} not in {err}"
    );
    // What happened first (the layer cut off midway) is said, not only the last retry's
    // refused connection.
    assert!(err.contains("(interrupted, then "), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    // Retries of a dead registry are bounded (0.25 + 0.5 + 1 s of backoff per request), far
    // below the 120 s read timeout.
    assert!(failed_after < Duration::from_secs(10), "{failed_after:?}");
    // No progress line claims the layer.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "1: Pulling from noise\n");

    // Nothing of the pull stayed: no blob, no staging leftover, no name.
    assert_eq!(dst.snapshot(), before);
    dst.ok(&["fsck"]);
    assert_eq!(ids(&dst), vec![dive_id.clone()]);

    // With the registry back, the same pull gives the pushed image.
    reg.restart();
    let out = dst.ok(&["pull", &dest]);
    assert!(
        out.contains(&format!("{}: Pull complete\n", &layer[7..19])),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "Digest: {digest}\nStatus: Downloaded newer image for {dest}\n{dest}\n"
        )),
        "{out}"
    );
    assert_eq!(dst.inspect(&dest)["Id"], id.as_str());
    let mut both = vec![dive_id, id];
    both.sort();
    assert_eq!(ids(&dst), both);
    assert_eq!(export_digest(&dst, &dest), export_digest(&src, "noise:1"));
    dst.ok(&["fsck"]);
    assert!(staged_files(&dst.root).is_empty());
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that flips one byte (xor 0xff) at offset
/// `flip_at` of every connection's upstream-to-client stream, or (`start_cutting`) drops the
/// first connection whose client-to-upstream stream passes an offset. Stopped (its threads
/// joined) when dropped.
struct CorruptingProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Bytes flipped so far.
    flipped: Arc<AtomicUsize>,
    /// Connections accepted so far.
    connections: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

/// How often blocked proxy threads look at the stop flag.
const PROXY_POLL: Duration = Duration::from_millis(50);

impl CorruptingProxy {
    fn start(upstream: u16, flip_at: u64) -> CorruptingProxy {
        Self::start_with(upstream, Some(flip_at), None)
    }

    /// A proxy that cuts, once, the first connection on which the client sends more than
    /// `cut_at` bytes (an upload in the middle of its body).
    fn start_cutting(upstream: u16, cut_at: u64) -> CorruptingProxy {
        Self::start_with(upstream, None, Some(cut_at))
    }

    fn start_with(upstream: u16, flip_at: Option<u64>, cut_at: Option<u64>) -> CorruptingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flipped = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let accept = {
            let (stop, flipped, connections) = (stop.clone(), flipped.clone(), connections.clone());
            std::thread::spawn(move || {
                let mut pumps = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let client = match listener.accept() {
                        Ok((c, _)) => c,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        Err(e) => panic!("proxy accept: {e}"),
                    };
                    connections.fetch_add(1, Ordering::Relaxed);
                    client.set_nonblocking(false).unwrap();
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let st = stop.clone();
                    let cut = cut_at.map(|at| (at, flipped.clone()));
                    pumps.push(std::thread::spawn(move || {
                        pump(
                            client,
                            server,
                            cut.as_ref().map(|(at, n)| Action::Cut(*at, n)),
                            &st,
                        );
                    }));
                    let st = stop.clone();
                    let fl = flipped.clone();
                    pumps.push(std::thread::spawn(move || {
                        pump(s2, c2, flip_at.map(|at| Action::Flip(at, &fl)), &st);
                    }));
                }
                for p in pumps {
                    p.join().unwrap();
                }
            })
        };
        CorruptingProxy {
            port,
            stop,
            flipped,
            connections,
            accept: Some(accept),
        }
    }
}

/// What a proxy does to a stream at an offset (the counter counts it, over all connections).
enum Action<'a> {
    /// Flip the byte there.
    Flip(u64, &'a AtomicUsize),
    /// Drop the connection there, if no connection was dropped yet.
    Cut(u64, &'a AtomicUsize),
}

/// Copies `from` to `to` until EOF, an error or the stop flag, doing `action` at its offset
/// of the stream; then half-closes `to` so the other side sees the end.
fn pump(mut from: TcpStream, mut to: TcpStream, action: Option<Action<'_>>, stop: &AtomicBool) {
    from.set_read_timeout(Some(PROXY_POLL)).unwrap();
    to.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        match &action {
            Some(Action::Flip(at, count)) if (pos..pos + n as u64).contains(at) => {
                buf[(at - pos) as usize] ^= 0xff;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Some(Action::Cut(at, count))
                if (pos..pos + n as u64).contains(at)
                    && count.compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed)
                        == Ok(0) =>
            {
                // Half the body went through; then the connection dies both ways.
                let _ = to.write_all(&buf[..(at - pos) as usize]);
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
            _ => {}
        }
        pos += n as u64;
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    // The peer may be gone already.
    let _ = to.shutdown(Shutdown::Write);
    if stop.load(Ordering::Relaxed) {
        let _ = from.shutdown(Shutdown::Both);
    }
}

impl Drop for CorruptingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.accept.take() {
            // A panic in a proxy thread is reported by the test's own assertions; do not panic
            // twice while unwinding.
            let _ = a.join();
        }
    }
}

/// Where the proxy flips a byte: past the few hundred bytes of the ping, manifest and config
/// answers that may share the connection, well inside a layer of more than 1 MiB.
const FLIP_AT: u64 = 100_000;

#[test]
fn corrupting_proxy_is_refused_and_nothing_stored() {
    let Some(reg) = Registry::start() else {
        return;
    };
    let src = Env::new();
    let rootfs = src.path("busybox.tar");
    common::busybox_rootfs_tar(&rootfs, |_| {});
    src.ok(&["import", s(&rootfs), "bb:1"]);
    let id = src.inspect("bb:1")["Id"].as_str().unwrap().to_string();
    push_uncompressed(&src, "bb:1", &reg.name("bb:1"));
    let (layer, layer_size) = only_layer(&registry_manifest(&reg, "bb", "1"));
    assert!(layer_size > 1 << 20, "{layer_size}");
    assert_eq!(src.inspect("bb:1")["RootFS"]["Layers"][0], layer.as_str());

    let proxy = CorruptingProxy::start(reg.port, FLIP_AT);
    let through = format!("127.0.0.1:{}/bb:1", proxy.port);
    let dst = Env::new();
    dst.ok(&["images"]);
    let before = dst.snapshot();
    assert!(before.contains_key("index.json"), "{before:?}");
    let err = dst.fails(&["pull", &through]);
    assert_eq!(proxy.flipped.load(Ordering::Relaxed), 1, "{err}");
    assert!(proxy.connections.load(Ordering::Relaxed) >= 1);
    assert!(err.contains("digest"), "{err}");
    assert!(
        err.contains(&format!(
            "127.0.0.1:{}/bb: blob {layer}: digest mismatch: expected {layer}, found sha256:",
            proxy.port
        )),
        "{err}"
    );
    // The pull took the store's ingest lock, the first ingest of this store: that creates the
    // empty `hoist/lock`. Nothing else may differ.
    let mut after = dst.snapshot();
    assert_eq!(after.remove("hoist/lock"), Some(common::sha256(b"")));
    assert_eq!(after, before);
    assert_eq!(dst.ok(&["images", "-q"]), "");
    dst.ok(&["fsck"]);
    drop(proxy);

    // Straight from the registry: the image as pushed.
    let direct = reg.name("bb:1");
    dst.ok(&["pull", &direct]);
    assert_eq!(dst.inspect(&direct)["Id"], id.as_str());
    assert_eq!(ids(&dst), vec![id]);
    assert_eq!(export_digest(&dst, &direct), export_digest(&src, "bb:1"));
    dst.ok(&["fsck"]);
}

#[test]
fn an_upload_cut_midway_starts_a_new_session_and_lands() {
    let Some(reg) = Registry::start() else {
        return;
    };
    let src = Env::new();
    let rootfs = src.path("busybox.tar");
    common::busybox_rootfs_tar(&rootfs, |_| {});
    src.ok(&["import", s(&rootfs), "bb:1"]);
    let id = src.inspect("bb:1")["Id"].as_str().unwrap().to_string();

    // A monolithic PUT of the uncompressed layer, and one of the gzip one (from the scratch
    // file it was compressed into): each cut once past its first 300 kB.
    for (compress, repo) in [("none", "plain"), ("gzip", "gz")] {
        let proxy = CorruptingProxy::start_cutting(reg.port, 300_000);
        let through = format!("127.0.0.1:{}/{repo}:1", proxy.port);
        let digest = src.ok(&["-q", "push", "--compress", compress, "bb:1", &through]);
        assert_eq!(
            proxy.flipped.load(Ordering::Relaxed),
            1,
            "{compress}: no cut"
        );
        drop(proxy);
        let dst = Env::new();
        let out = dst.ok(&["pull", &reg.name(&format!("{repo}:1"))]);
        assert!(out.contains(&format!("Digest: {}", digest.trim())), "{out}");
        assert_eq!(
            dst.inspect(&reg.name(&format!("{repo}:1")))["Id"],
            id.as_str()
        );
        assert_eq!(
            export_digest(&dst, &reg.name(&format!("{repo}:1"))),
            export_digest(&src, "bb:1")
        );
    }
}

#[test]
fn podman_pulls_what_hoist_pushed() {
    let Some(reg) = Registry::start() else {
        return;
    };
    let env = Env::new();
    let Some(podman) = Podman::new(&env, "pull") else {
        return;
    };
    env.ok(&["load", "-i", s(&common::data(DIVE))]);
    let hoisted = env.inspect("dive-test:latest");
    let id = hoisted["Id"].as_str().unwrap().to_string();
    let dest = reg.name("dive:podman");
    // Pushed as hoist pushes by default (gzip layers): podman must decompress them and find
    // the config's diff_ids.
    let out = env.ok(&["push", "dive-test:latest", &dest]);
    let digest = out
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("podman: digest: "))
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no digest line in the push output:\n{out}"))
        .to_string();

    let out = podman.ok(&["pull", "-q", "--tls-verify=false", &dest]);
    let hex = id.strip_prefix("sha256:").unwrap();
    assert_eq!(out, format!("{hex}\n"));
    let inspect = |format: &str| podman.ok(&["image", "inspect", "--format", format, &dest]);
    assert_eq!(inspect("{{.Id}}"), format!("{hex}\n"));
    assert_eq!(inspect("{{.Digest}}"), format!("{digest}\n"));
    let layers: Value = serde_json::from_str(&inspect("{{json .RootFS.Layers}}")).unwrap();
    assert_eq!(layers, hoisted["RootFS"]["Layers"]);
    assert_eq!(layers.as_array().unwrap().len(), 14);
    let tags = podman.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(tags, format!("{id} {dest}\n"));
}
