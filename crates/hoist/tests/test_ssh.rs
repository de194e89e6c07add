//! `hoist copy` over ssh, against the throw-away sshd of `.ci/sshd` on 127.0.0.1: the far hoist
//! is this hoist with `--root` on another temp store. What crosses the wire is read from the
//! command's report (bytes counted on ssh's pipes) and checked against the layer sizes.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::{self, Env, Ssh};
use crate::test_registry::s;

/// dive-test:latest, 14 uncompressed layers (docker 18).
const DIVE: &str = "docker-v1.2_docker18_dive-test.tar";
/// corpus/dive-derived:v1 (dive-test's 14 layers and 3 more) and dive-test:latest (docker 20).
const DERIVED: &str = "docker-v1.2_docker20_multi_dive-derived.tar";
/// A one-layer image, to give a store something.
const SMALL: &str = "docker-v1.2_docker1.13_almostempty.tar";

/// What a copy's second line reports (`sent 830kB (830464 bytes): 14 of 14 layers (0 already
/// there); received 5.9kB`).
#[derive(Debug, PartialEq)]
struct Wire {
    /// Bytes of the archive (sent by a push, received by a pull).
    archive: u64,
    /// Layers that crossed, of how many, and how many the receiver had.
    moved: usize,
    total: usize,
    there: usize,
    /// Bytes the other way (the far side's inventory and report, or this store's inventory), as
    /// shown (3 significant digits).
    back: u64,
}

/// `830kB` → 830000.
fn bytes(size: &str) -> u64 {
    let split = size.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (n, unit) = size.split_at(split);
    let mult = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => panic!("unit of {size:?}"),
    };
    (n.parse::<f64>().unwrap() * mult).round() as u64
}

impl Wire {
    fn parse(line: &str, push: bool) -> Wire {
        let (first, other, where_) = if push {
            ("sent ", "; received ", "already there")
        } else {
            ("received ", "; sent ", "already here")
        };
        let rest = line
            .strip_prefix(first)
            .unwrap_or_else(|| panic!("{line:?}"));
        let (shown, rest) = rest.split_once(" bytes): ").unwrap();
        let (human, archive) = shown.split_once(" (").unwrap();
        let archive: u64 = archive.parse().unwrap();
        // The human size agrees (3 significant digits).
        assert!(bytes(human).abs_diff(archive) * 200 <= archive, "{line:?}");
        let (layers, back) = rest.split_once(other).unwrap();
        let (counts, there) = layers.split_once(" layers (").unwrap();
        let (moved, total) = counts.split_once(" of ").unwrap();
        let there = there
            .strip_suffix(&format!(" {where_})"))
            .unwrap_or_else(|| panic!("{line:?}"));
        Wire {
            archive,
            moved: moved.parse().unwrap(),
            total: total.parse().unwrap(),
            there: there.parse().unwrap(),
            back: bytes(back),
        }
    }
}

/// `hoist copy SRC DEST --remote-hoist <hoist on far's store>`, run in `here`.
fn copy(ssh: &Ssh, here: &Env, far: &Env, src: &str, dest: &str) -> Output {
    ssh.cmd(
        here,
        &["copy", src, dest, "--remote-hoist", &ssh.remote_hoist(far)],
    )
    .output()
    .unwrap()
}

/// A copy that must succeed: its digest line and its wire report.
fn copy_ok(ssh: &Ssh, here: &Env, far: &Env, src: &str, dest: &str) -> (String, Wire) {
    let out = copy(ssh, here, far, src, dest);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "copy {src} {dest}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no warnings");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    (
        lines[0].to_string(),
        Wire::parse(lines[1], src.starts_with("hoist:")),
    )
}

/// A copy that must fail with exit code 1: its stderr.
fn copy_fails(ssh: &Ssh, here: &Env, far: &Env, src: &str, dest: &str) -> String {
    let out = copy(ssh, here, far, src, dest);
    assert_eq!(
        out.status.code(),
        Some(1),
        "copy {src} {dest} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The manifest a store's index.json gives `name`, parsed, with its digest.
fn manifest(env: &Env, name: &str) -> (String, Value) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(env.root.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["io.containerd.image.name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {index}"))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = std::fs::read(blob(env, &digest)).unwrap();
    (digest, serde_json::from_slice(&bytes).unwrap())
}

/// The file of a blob in a store.
fn blob(env: &Env, digest: &str) -> std::path::PathBuf {
    env.root
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// The sizes of a manifest's layers.
fn layer_sizes(m: &Value) -> Vec<u64> {
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .collect()
}

/// Room for the documents of an archive (tar headers, index.json, manifest.json, manifest,
/// config) besides its layers: dive's config is 5 kB, a tar header 512 bytes.
const DOCUMENTS: u64 = 32 * 1024;

/// Each layer is one tar entry: its header, then its bytes.
const TAR_HEADER: u64 = 512;

fn load(env: &Env, file: &str) {
    env.ok(&["load", "-i", s(&common::data(file))]);
}

fn corpus_id(file: &str, index: usize) -> String {
    common::expected_item(file)["images"][index]["config_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn copies_both_ways_sending_only_what_the_other_side_lacks() {
    let Some(ssh) = common::ssh() else { return };
    let a = Env::new();
    let b = Env::new();
    load(&a, DIVE);
    let (digest, m) = manifest(&a, "docker.io/library/dive-test:latest");
    let sizes = layer_sizes(&m);
    let all: u64 = sizes.iter().sum();

    // A -> B, with a user name in the location: every layer goes.
    let to_b = format!("ssh://{}@{}/app:1", ssh.user, ssh.addr);
    let (got, wire) = copy_ok(&ssh, &a, &b, "hoist:dive-test:latest", &to_b);
    assert_eq!(got, digest);
    assert_eq!((wire.moved, wire.total, wire.there), (14, 14, 0));
    assert!(
        wire.archive >= all + 14 * TAR_HEADER && wire.archive <= all + DOCUMENTS,
        "{wire:?}, layers {all}"
    );
    // B has the same image, manifest and name.
    assert_eq!(b.inspect("app:1")["Id"], corpus_id(DIVE, 0).as_str());
    assert_eq!(b.inspect("app:1")["RepoTags"], serde_json::json!(["app:1"]));
    assert_eq!(manifest(&b, "docker.io/library/app:1").0, digest);
    b.ok(&["fsck"]);

    // Again: no layer crosses, only the documents; B's store is as it was.
    let before = b.snapshot();
    let (got, wire) = copy_ok(&ssh, &a, &b, "hoist:dive-test:latest", &ssh.url("app:1"));
    assert_eq!(got, digest);
    assert_eq!((wire.moved, wire.total, wire.there), (0, 14, 14));
    // The documents alone: config, manifest, index.json, manifest.json, hoist-delta.json.
    assert!(
        wire.archive < DOCUMENTS && wire.archive * 40 < all,
        "{wire:?}, layers {all}"
    );
    assert_eq!(b.snapshot(), before);
    // The same over IPv6 loopback, under another name.
    if let Some(v6) = &ssh.v6 {
        let (got, wire) = copy_ok(
            &ssh,
            &a,
            &b,
            "hoist:dive-test:latest",
            &format!("ssh://{v6}/app:6"),
        );
        assert_eq!(got, digest);
        assert_eq!((wire.moved, wire.total, wire.there), (0, 14, 14));
        assert_eq!(b.inspect("app:6")["Id"], corpus_id(DIVE, 0).as_str());
    }

    // B -> A: an image on the same base; only its 3 new layers come over.
    load(&b, DERIVED);
    let (derived, dm) = manifest(&b, "docker.io/corpus/dive-derived:v1");
    let new: u64 = layer_sizes(&dm)[14..].iter().sum();
    let (got, wire) = copy_ok(
        &ssh,
        &a,
        &b,
        &ssh.url("corpus/dive-derived:v1"),
        "hoist:derived:1",
    );
    assert_eq!(got, derived);
    assert_eq!((wire.moved, wire.total, wire.there), (3, 17, 14));
    assert!(
        wire.archive >= new + 3 * TAR_HEADER && wire.archive <= new + DOCUMENTS,
        "{wire:?}, new layers {new}"
    );
    // What A sent back is its inventory: a small document.
    assert!(wire.back > 0 && wire.back < DOCUMENTS, "{wire:?}");
    assert_eq!(a.inspect("derived:1")["Id"], corpus_id(DERIVED, 0).as_str());
    assert_eq!(manifest(&a, "docker.io/library/derived:1").0, derived);
    a.ok(&["fsck"]);
    // And back again: nothing new.
    let (_, wire) = copy_ok(
        &ssh,
        &a,
        &b,
        &ssh.url("corpus/dive-derived:v1"),
        "hoist:derived:1",
    );
    assert_eq!((wire.moved, wire.total, wire.there), (0, 17, 17));
    assert!(wire.archive < DOCUMENTS, "{wire:?}");
}

#[test]
fn failures_show_the_far_side_and_change_neither_store() {
    let Some(ssh) = common::ssh() else { return };
    let a = Env::new();
    let b = Env::new();
    load(&a, DIVE);
    load(&b, SMALL);
    let (sa, sb) = (a.snapshot(), b.snapshot());
    let unchanged = |what: &str| {
        assert_eq!(a.snapshot(), sa, "{what}: A changed");
        assert_eq!(b.snapshot(), sb, "{what}: B changed");
    };
    let host = ssh.addr.rsplit_once(':').unwrap().0;

    // An image the far side does not have: its own message, prefixed with the host.
    let url = ssh.url("nope:1");
    let err = copy_fails(&ssh, &a, &b, &url, "hoist:x");
    assert!(
        err.starts_with(&format!("hoist: error: copying {url} to hoist:x: ")),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            " on {} failed (exit status: 1): {host}: hoist: error: No such image: nope:1\n",
            ssh.addr
        )),
        "{err}"
    );
    unchanged("missing far image");

    // No hoist at the far end, both ways.
    for (src, dest) in [
        ("hoist:dive-test:latest".to_string(), ssh.url("x:1")),
        (ssh.url("emptyimage:latest"), "hoist:x".to_string()),
    ] {
        let out = ssh
            .cmd(
                &a,
                &["copy", &src, &dest, "--remote-hoist", "/nonexistent/hoist"],
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with(&format!(
                "hoist: error: copying {src} to {dest}: /nonexistent/hoist not found on {}: \
                 give --remote-hoist: {host}: ",
                ssh.addr
            )) && err.contains("/nonexistent/hoist"),
            "{err}"
        );
        unchanged("no far hoist");
    }

    // No sshd there: ssh's own message.
    let closed = "ssh://127.0.0.1:1/x:1";
    let err = copy_fails(&ssh, &a, &b, "hoist:dive-test:latest", closed);
    assert_eq!(
        err,
        format!(
            "hoist: error: copying hoist:dive-test:latest to {closed}: ssh to 127.0.0.1:1 failed \
             (exit status: 255): 127.0.0.1: ssh: connect to host 127.0.0.1 port 1: Connection \
             refused\n"
        )
    );
    unchanged("no sshd");

    // A layer of A's store damaged on disk: B's load finds it out and lands nothing.
    let (_, m) = manifest(&a, "docker.io/library/dive-test:latest");
    let top = m["layers"][13]["digest"].as_str().unwrap().to_string();
    flip_last_byte(&blob(&a, &top));
    let sa = a.snapshot();
    let err = copy_fails(&ssh, &a, &b, "hoist:dive-test:latest", &ssh.url("app:1"));
    assert!(
        err.contains(&format!(
            " on {} failed (exit status: 1): {host}: ",
            ssh.addr
        )) && err.contains(&top),
        "{err}"
    );
    assert_eq!(a.snapshot(), sa);
    assert_eq!(b.snapshot(), sb, "B changed");

    // The same damage on the far side: this side's load refuses it.
    let c = Env::new();
    load(&c, SMALL);
    let sc = c.snapshot();
    let err = copy_fails(&ssh, &c, &a, &ssh.url("dive-test:latest"), "hoist:d:1");
    assert!(
        err.starts_with(&format!(
            "hoist: error: copying {} to hoist:d:1: ",
            ssh.url("dive-test:latest")
        )) && err.contains(&top),
        "{err}"
    );
    assert_eq!(c.snapshot(), sc, "C changed");
    assert_eq!(a.snapshot(), sa, "A changed");
}

/// Changes a file's last byte, keeping its size.
fn flip_last_byte(p: &Path) {
    let mut bytes = std::fs::read(p).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn locations_and_sides_are_checked_before_connecting() {
    let env = Env::new();
    for (dest, msg) in [
        (
            "ssh://-oProxyCommand=touch/x",
            "\"ssh://-oProxyCommand=touch/x\": not a host name or address",
        ),
        (
            "ssh://host",
            "\"ssh://host\": no image: ssh://[USER@]HOST[:PORT]/IMAGE",
        ),
        ("ssh://host/-t", "\"ssh://host/-t\": not an image name"),
        (
            "ssh://host:99999/x",
            "\"ssh://host:99999/x\": port \"99999\" is not a number from 1 to 65535",
        ),
    ] {
        let err = env
            .cmd(&["copy", "hoist:x", dest])
            .env("HOIST_SSH", "/nonexistent/ssh")
            .output()
            .unwrap();
        assert_eq!(err.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&err.stderr),
            format!("hoist: error: {msg}\n")
        );
    }
    // Only the store is copied to or from over ssh.
    let err = env.fails(&["copy", "oci:dir", "ssh://host/x"]);
    assert_eq!(
        err,
        "hoist: error: an ssh:// copy goes to or from the store: hoist:IMAGE ssh://HOST/NAME, \
         or ssh://HOST/IMAGE hoist:NAME\n"
    );
    assert!(!env.root.exists(), "the store was created");
}

/// `--delta`: a layer the far side lacks goes as a zstd patch against the similar layer it
/// has, both ways; the image lands with the same ID and the same files.
#[test]
fn delta_copies_send_a_patch_instead_of_the_layer() {
    let Some(ssh) = common::ssh() else { return };
    let here = Env::new();
    let far = Env::new();
    crate::test_delta::two_versions(&here);
    let (_, first) = copy_ok(&ssh, &here, &far, "hoist:app:1", &ssh.url("app:1"));
    assert_eq!((first.moved, first.total, first.there), (1, 1, 0));
    let layer_size: u64 = {
        let inv: Value =
            serde_json::from_str(&here.ok(&["inventory", "-o", "-", "app:2"])).unwrap();
        inv["images"][0]["layers"][0]["size"].as_u64().unwrap()
    };
    let delta = |from: &Env, src: &str, dest: &str| {
        let out = ssh
            .cmd(
                from,
                &[
                    "copy",
                    "--delta",
                    src,
                    dest,
                    "--remote-hoist",
                    &ssh.remote_hoist(&far),
                ],
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Wire::parse(stdout.lines().nth(1).unwrap(), src.starts_with("hoist:"))
    };
    // Push: the one layer crosses as a patch of about the changed 32 KiB file.
    let pushed = delta(&here, "hoist:app:2", &ssh.url("app:2"));
    assert_eq!((pushed.moved, pushed.total, pushed.there), (1, 1, 0));
    assert!(pushed.archive < 48 << 10, "{pushed:?}");
    assert!(layer_size > 1 << 20, "{layer_size}");
    assert_eq!(far.inspect("app:2")["Id"], here.inspect("app:2")["Id"]);
    let (a, b) = (here.path("a.tar"), far.path("b.tar"));
    here.ok(&["export", "-o", s(&a), "app:2"]);
    far.ok(&["export", "-o", s(&b), "app:2"]);
    assert_eq!(common::sha256_file(&a), common::sha256_file(&b));

    // Pull: a third store with app:1 only gets app:2 from the far side as a patch too.
    let third = Env::new();
    let v1 = here.path("v1.tar");
    here.ok(&["save", "-o", s(&v1), "app:1"]);
    third.ok(&["load", "-i", s(&v1)]);
    let pulled = delta(&third, &ssh.url("app:2"), "hoist:app:2");
    assert!(pulled.archive < 48 << 10, "{pulled:?}");
    assert_eq!(third.inspect("app:2")["Id"], here.inspect("app:2")["Id"]);
}
