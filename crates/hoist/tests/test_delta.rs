//! Delta archives (`save --base`), `load` of them, and `hoist inventory`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::common::{self, DockerNames, Env};

const MULTI: &str = "docker-v1.2_docker20_multi_dive-derived.tar";
const DERIVED: &str = "corpus/dive-derived:v1";
const BASE: &str = "dive-test:latest";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tar_files(path: &Path) -> BTreeSet<String> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.header().entry_type() == tar::EntryType::Regular)
        .map(|e| e.path().unwrap().to_string_lossy().to_string())
        .collect()
}

/// The layer blob digests of an image, from its manifest in the store.
fn layer_blobs(env: &Env, image: &str) -> Vec<String> {
    let inv: Value = serde_json::from_str(&env.ok(&["inventory", "-o", "-", image])).unwrap();
    inv["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn multi_env() -> Env {
    let env = Env::new();
    env.ok(&["load", "-i", s(&common::data(MULTI))]);
    env
}

#[test]
fn delta_leaves_out_the_base_layers_and_loads_back_exactly() {
    let sender = multi_env();
    let full = sender.path("full.tar");
    let delta = sender.path("delta.tar");
    sender.ok(&["save", "-o", s(&full), DERIVED]);
    let out = sender
        .cmd(&["save", "--base", BASE, "-o", s(&delta), DERIVED])
        .output()
        .unwrap();
    assert!(out.status.success());
    let base_layers = layer_blobs(&sender, BASE);
    assert_eq!(base_layers.len(), 14);
    let base_bytes: u64 = {
        let inv: Value = serde_json::from_str(&sender.ok(&["inventory", "-o", "-", BASE])).unwrap();
        inv["images"][0]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["size"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "Left out 14 layers ({}) that the base has\n",
            hoist_format::units::human_size(base_bytes)
        )
    );

    // Exactly the base's layer blobs are absent; hoist-delta.json is added.
    let mut want: BTreeSet<String> = tar_files(&full);
    for d in &base_layers {
        assert!(want.remove(&format!("blobs/sha256/{}", &d[7..])), "{d}");
    }
    want.insert("hoist-delta.json".into());
    assert_eq!(tar_files(&delta), want);
    let desc: Value =
        serde_json::from_slice(&common::file_in_tar(&delta, "hoist-delta.json")).unwrap();
    let omitted: BTreeSet<&str> = desc["omitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        omitted,
        base_layers
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(desc["base"], serde_json::json!([BASE]));
    assert_eq!(desc["baseImages"][0]["label"], BASE);
    assert_eq!(
        desc["baseImages"][0]["id"],
        sender.inspect(BASE)["Id"].as_str().unwrap()
    );
    let index: Value = serde_json::from_slice(&common::file_in_tar(&delta, "index.json")).unwrap();
    assert_eq!(
        index["annotations"],
        serde_json::json!({"dev.hoist.delta": "hoist-delta.json", "dev.hoist.delta.base": BASE})
    );
    // manifest.json still names every layer (docker looks them up by chain ID first).
    let mj: Value = serde_json::from_slice(&common::file_in_tar(&delta, "manifest.json")).unwrap();
    assert_eq!(mj[0]["Layers"].as_array().unwrap().len(), 17);

    // A target that has the base loads the delta into the very image the full archive gives.
    let target = Env::new();
    target.ok(&["load", "-i", s(&common::data(MULTI))]);
    target.ok(&["rmi", DERIVED, "corpus/dive-derived:alias"]);
    target.ok(&["gc"]);
    assert_eq!(
        target.ok(&["load", "-i", s(&delta)]),
        format!("Loaded image: {DERIVED}\n")
    );
    let reference = Env::new();
    reference.ok(&["load", "-i", s(&full)]);
    assert_eq!(target.inspect(DERIVED), reference.inspect(DERIVED));
    let again = target.path("again.tar");
    target.ok(&["save", "-o", s(&again), DERIVED]);
    assert_eq!(common::sha256_file(&again), common::sha256_file(&full));
    assert!(target.ok(&["fsck"]).ends_with(": 0 problems\n"));
}

#[test]
fn delta_without_its_base_is_refused_naming_it_and_the_store_is_unchanged() {
    let sender = multi_env();
    let delta = sender.path("delta.tar");
    sender.ok(&["save", "--base", BASE, "-o", s(&delta), DERIVED]);
    let base_id = sender.inspect(BASE)["Id"].as_str().unwrap().to_string();

    let target = Env::new();
    target.ok(&[
        "load",
        "-i",
        s(&common::data("docker25-oci_ggcr-hello-world-v25.tar")),
    ]);
    let before = target.snapshot();
    let err = target.fails(&["load", "-i", s(&delta)]);
    let first_lines: Vec<&str> = err.lines().take(3).collect();
    assert_eq!(
        first_lines[..2],
        [
            format!(
                "hoist: error: loading {}: the archive is a delta and 14 of the layers it needs are not in the store:",
                delta.display()
            )
            .as_str(),
            format!(
                "needs layers of {BASE} ({base_id}, 14 layers, 1.47MB): load or pull it first, or give it with --base"
            )
            .as_str(),
        ],
        "{err}"
    );
    assert_eq!(err.lines().count(), 16, "{err}");
    assert_eq!(target.snapshot(), before);

    // --base ARCHIVE supplies what the store lacks; only what the delta needs lands.
    let base_tar = sender.path("base.tar");
    sender.ok(&["save", "-o", s(&base_tar), BASE]);
    assert_eq!(
        target.ok(&["load", "--base", s(&base_tar), "-i", s(&delta)]),
        format!("Loaded image: {DERIVED}\n")
    );
    assert_eq!(target.inspect(DERIVED)["Id"], sender.inspect(DERIVED)["Id"]);
    let err = target.fails(&["inspect", BASE]);
    assert!(err.contains("dive-test"), "{err}");

    // The same from an OCI layout directory given as oci:DIR.
    let target2 = Env::new();
    let layout = sender.path("layout");
    sender.ok(&[
        "copy",
        &format!("hoist:{BASE}"),
        &format!("oci:{}", layout.display()),
    ]);
    target2.ok(&[
        "load",
        "--base",
        &format!("oci:{}", layout.display()),
        "-i",
        s(&delta),
    ]);
    assert_eq!(
        target2.inspect(DERIVED)["Id"],
        sender.inspect(DERIVED)["Id"]
    );
}

#[test]
fn inventory_round_trip_makes_the_same_delta_as_the_image() {
    let sender = multi_env();
    let target = Env::new();
    target.ok(&["load", "-i", s(&common::data(MULTI))]);
    target.ok(&["rmi", DERIVED, "corpus/dive-derived:alias"]);
    let have = target.path("have.json");
    target.ok(&["inventory", "-o", s(&have)]);
    let inv: Value = serde_json::from_slice(&std::fs::read(&have).unwrap()).unwrap();
    assert_eq!(inv["hoistInventory"], 1);
    assert_eq!(inv["images"].as_array().unwrap().len(), 1);
    assert_eq!(
        inv["images"][0]["names"],
        serde_json::json!(["docker.io/library/dive-test:latest"])
    );
    assert_eq!(inv["images"][0]["id"], target.inspect(BASE)["Id"]);
    let layers = inv["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 14);
    // chain IDs: the first is its diff_id, each next is sha256 of "<chain> <diff_id>".
    let mut chain = layers[0]["diffID"].as_str().unwrap().to_string();
    for l in layers {
        if l != &layers[0] {
            chain = format!(
                "sha256:{}",
                common::sha256(format!("{chain} {}", l["diffID"].as_str().unwrap()).as_bytes())
            );
        }
        assert_eq!(l["chainID"].as_str().unwrap(), chain);
    }

    let by_image = sender.path("by-image.tar");
    let by_inventory = sender.path("by-inventory.tar");
    sender.ok(&["save", "--base", BASE, "-o", s(&by_image), DERIVED]);
    sender.ok(&["save", "--base", s(&have), "-o", s(&by_inventory), DERIVED]);
    let mut a = tar_files(&by_image);
    a.remove("hoist-delta.json");
    a.remove("index.json");
    let mut b = tar_files(&by_inventory);
    b.remove("hoist-delta.json");
    b.remove("index.json");
    assert_eq!(a, b);
    for f in &a {
        assert_eq!(
            common::file_in_tar(&by_image, f),
            common::file_in_tar(&by_inventory, f),
            "{f}"
        );
    }
    // The inventory on stdin (as ssh copy sends it) gives the same archive again.
    let out = sender.with_stdin(
        &["save", "--base", "-", DERIVED],
        &std::fs::read(&have).unwrap(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let piped = sender.path("piped.tar");
    std::fs::write(&piped, &out.stdout).unwrap();
    let mut c = tar_files(&piped);
    c.remove("hoist-delta.json");
    c.remove("index.json");
    assert_eq!(a, c);

    target.ok(&["load", "-i", s(&by_inventory)]);
    assert_eq!(target.inspect(DERIVED)["Id"], sender.inspect(DERIVED)["Id"]);

    // An archive as the base: its inventory is read from its documents alone.
    let base_tar = target.path("base.tar");
    target.ok(&["save", "-o", s(&base_tar), BASE]);
    let from_archive = sender.path("from-archive.tar");
    sender.ok(&[
        "save",
        "--base",
        s(&base_tar),
        "-o",
        s(&from_archive),
        DERIVED,
    ]);
    let mut d = tar_files(&from_archive);
    d.remove("hoist-delta.json");
    d.remove("index.json");
    assert_eq!(a, d);
}

#[test]
fn a_delta_layer_found_as_another_blob_of_the_same_layer_lands_with_a_rebuilt_manifest() {
    // The same image (one config) with its layer gzip-compressed on the sender and
    // uncompressed on the target: the delta leaves it out, the target uses its own blob.
    let sender = Env::new();
    sender.ok(&[
        "load",
        "-i",
        s(&common::data("oci-archive_buildkit-gzip_dive.tar")),
    ]);
    let target = Env::new();
    target.ok(&[
        "load",
        "-i",
        s(&common::data("oci-archive_buildkit-uncompressed_dive.tar")),
    ]);
    let id = target
        .ok(&["images", "-q", "--no-trunc"])
        .trim()
        .to_string();
    assert_eq!(sender.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    let have = target.path("have.json");
    target.ok(&["inventory", "-o", s(&have)]);
    let delta = sender.path("delta.tar");
    sender.ok(&["save", "--base", s(&have), "-o", s(&delta), &id]);
    let desc: Value =
        serde_json::from_slice(&common::file_in_tar(&delta, "hoist-delta.json")).unwrap();
    assert_eq!(desc["omitted"].as_array().unwrap().len(), 1);
    assert_eq!(
        desc["omitted"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        target.ok(&["load", "-i", s(&delta)]),
        format!("Loaded image ID: {id}\n")
    );
    assert!(target.ok(&["fsck"]).ends_with(": 0 problems\n"));
    // Exported, the image is the same file tree.
    let a = target.path("a.tar");
    let b = sender.path("b.tar");
    target.ok(&["export", "-o", s(&a), &id]);
    sender.ok(&["export", "-o", s(&b), &id]);
    assert_eq!(common::sha256_file(&a), common::sha256_file(&b));
}

#[test]
fn oci_format_deltas_of_several_images_load_every_name() {
    let sender = multi_env();
    let hello = "hello-world:v25".to_string();
    sender.ok(&[
        "load",
        "-t",
        &hello,
        "-i",
        s(&common::data("docker25-oci_ggcr-hello-world-v25.tar")),
    ]);
    let delta = sender.path("delta.tar");
    sender.ok(&[
        "save",
        "--format",
        "oci",
        "--base",
        BASE,
        "-o",
        s(&delta),
        DERIVED,
        &hello,
    ]);
    let target = Env::new();
    target.ok(&["load", "-i", s(&common::data(MULTI))]);
    target.ok(&["rmi", DERIVED, "corpus/dive-derived:alias"]);
    let out = target.ok(&["load", "-i", s(&delta)]);
    assert_eq!(
        out.lines().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            format!("Loaded image: {DERIVED}").as_str(),
            format!("Loaded image: {hello}").as_str()
        ])
    );
    for n in [DERIVED, hello.as_str()] {
        assert_eq!(target.inspect(n)["Id"], sender.inspect(n)["Id"], "{n}");
    }
}

#[test]
fn bad_bases_and_lying_deltas_are_refused_clearly() {
    let env = multi_env();
    let out = env.path("x.tar");
    let err = env.fails(&["save", "--base", "no-such-image", "-o", s(&out), DERIVED]);
    assert!(
        err.starts_with(
            "hoist: error: --base no-such-image: not a file, a directory or an image of the store"
        ),
        "{err}"
    );
    let bad = env.path("bad.json");
    std::fs::write(&bad, br#"{"hoistInventory": 7, "images": []}"#).unwrap();
    let err = env.fails(&["save", "--base", s(&bad), "-o", s(&out), DERIVED]);
    assert!(
        err.contains("inventory: version 7 is not supported (this hoist reads version 1)"),
        "{err}"
    );
    let err = env.fails(&[
        "save",
        "--format",
        "docker-legacy",
        "--base",
        BASE,
        "-o",
        s(&out),
        DERIVED,
    ]);
    assert!(
        err.contains("a delta is written in the docker or oci format, not docker-legacy"),
        "{err}"
    );

    // Other readers than load say what a delta is instead of naming a missing blob.
    let delta = env.path("delta.tar");
    env.ok(&["save", "--base", BASE, "-o", s(&delta), DERIVED]);
    let err = env.fails(&[
        "copy",
        &format!("docker-archive:{}", delta.display()),
        &format!("oci:{}", env.path("layout").display()),
    ]);
    assert!(
        err.ends_with(&format!(
            "{} is a delta archive (hoist save --base): it lacks layers its base has, so it is \
             read by `hoist load`, which takes them from the store\n",
            delta.display()
        )),
        "{err}"
    );

    // A delta whose description gives a left-out layer the diff_id of another one: the
    // blob found in the store is checked, not trusted.
    let mut desc: Value =
        serde_json::from_slice(&common::file_in_tar(&delta, "hoist-delta.json")).unwrap();
    let other = desc["omitted"][1]["diffID"].clone();
    desc["omitted"][0]["diffID"] = other;
    let forged = env.path("forged.tar");
    rewrite_member(
        &delta,
        &forged,
        "hoist-delta.json",
        &serde_json::to_vec(&desc).unwrap(),
    );
    let target = Env::new();
    target.ok(&["load", "-i", s(&common::data(MULTI))]);
    target.ok(&["rmi", DERIVED, "corpus/dive-derived:alias"]);
    target.ok(&["gc"]);
    let before = target.snapshot();
    let err = target.fails(&["load", "-i", s(&forged)]);
    assert!(
        err.contains("hoist-delta.json gives sha256:")
            && err.contains(", but the layer found for it ("),
        "{err}"
    );
    assert_eq!(target.snapshot(), before);
}

/// Copies a tar, replacing one member's content.
fn rewrite_member(from: &Path, to: &Path, name: &str, content: &[u8]) {
    use std::io::Read;
    let mut a = tar::Archive::new(std::fs::File::open(from).unwrap());
    let mut b = tar::Builder::new(std::fs::File::create(to).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut h = e.header().clone();
        let path = e.path().unwrap().to_path_buf();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if path.to_string_lossy() == name {
            data = content.to_vec();
        }
        h.set_size(data.len() as u64);
        b.append_data(&mut h, &path, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

// ---------------------------------------------------------------------------------------------
// docker: a docker-shaped delta loads on a daemon that has the base, and only there
// ---------------------------------------------------------------------------------------------

#[test]
fn docker_loads_a_delta_when_it_has_the_base_and_refuses_it_otherwise() {
    let Some(docker) = common::docker() else {
        return;
    };
    if common::peer(common::BUSYBOX).is_none() {
        return;
    }
    let env = Env::new();
    let repo = common::unique("hoist-delta");
    let (app1, app2) = (format!("{repo}:1"), format!("{repo}:2"));
    let _cleanup = DockerNames {
        docker: &docker,
        names: vec![app2.clone(), app1.clone()],
    };
    // A base layer no other image of the shared daemon has: a file naming this test run.
    let rootfs = env.path("rootfs.tar");
    common::busybox_rootfs_tar(&rootfs, |b| {
        let text = format!("{repo}\n");
        let mut h = common::tar_header(tar::EntryType::Regular, 0o644, text.len() as u64);
        b.append_data(&mut h, "etc/unique", text.as_bytes())
            .unwrap();
    });
    docker.ok(&["import", s(&rootfs), &app1]);
    let ctx = env.path("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {app1}\nCOPY v2.txt /data/v2.txt\nCMD [\"cat\", \"/data/v2.txt\"]\n"),
    )
    .unwrap();
    std::fs::write(ctx.join("v2.txt"), "version 2\n").unwrap();
    common::run_ok(
        docker
            .cmd(&["build", "-q", "-t", &app2, s(&ctx)])
            .env("DOCKER_BUILDKIT", "0"),
    );
    let id2 = docker
        .ok(&["image", "inspect", "-f", "{{.Id}}", &app2])
        .trim()
        .to_string();

    // docker save -> hoist load -> hoist save --base app:1 app:2
    let saved = env.path("saved.tar");
    docker.ok(&["save", "-o", s(&saved), &app1, &app2]);
    env.ok(&["load", "-i", s(&saved)]);
    let delta = env.path("delta.tar");
    env.ok(&["save", "--base", &app1, "-o", s(&delta), &app2]);
    let desc: Value =
        serde_json::from_slice(&common::file_in_tar(&delta, "hoist-delta.json")).unwrap();
    assert_eq!(desc["omitted"].as_array().unwrap().len(), 1);

    // On a daemon that has app:1: the delta gives app:2's ID, and it runs.
    docker.ok(&["rmi", &app2]);
    assert_eq!(
        docker.ok(&["load", "-i", s(&delta)]),
        format!("Loaded image: {app2}\n")
    );
    assert_eq!(
        docker
            .ok(&["image", "inspect", "-f", "{{.Id}}", &app2])
            .trim(),
        id2
    );
    assert_eq!(
        docker.ok(&["run", "--rm", "--network", "none", &app2]),
        "version 2\n"
    );

    // Without app:1's layer, docker refuses it with its own message.
    docker.ok(&["rmi", &app2, &app1]);
    let out = docker.cmd(&["load", "-i", s(&delta)]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let missing = &desc["omitted"][0]["digest"].as_str().unwrap()[7..];
    assert!(
        err.contains(&format!(
            "blobs/sha256/{missing}: no such file or directory"
        )),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// --delta: layers as zstd patches against base layers
// ---------------------------------------------------------------------------------------------

/// Deterministic incompressible bytes.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A rootfs of 64 files of 32 KiB; `version` changes file 10 only.
fn rootfs(path: &Path, version: u64) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for i in 0..64u64 {
        let data = if i == 10 {
            noise(1000 + version, 32 << 10)
        } else {
            noise(i, 32 << 10)
        };
        let mut h = common::tar_header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, format!("data/f{i:02}.bin"), &data[..])
            .unwrap();
    }
    b.finish().unwrap();
}

/// app:1 and app:2, one layer each, the same but for one 32 KiB file.
pub(crate) fn two_versions(env: &Env) {
    for v in [1, 2] {
        let tar = env.path(&format!("rootfs{v}.tar"));
        rootfs(&tar, v);
        env.ok(&["import", s(&tar), &format!("app:{v}")]);
    }
}

#[test]
fn delta_patches_rebuild_the_exact_layer_from_the_base_layer() {
    let sender = Env::new();
    two_versions(&sender);
    let full = sender.path("full.tar");
    sender.ok(&["save", "-o", s(&full), "app:2"]);
    let delta = sender.path("delta.tar");
    let out = sender
        .cmd(&[
            "save",
            "--base",
            "app:1",
            "--delta",
            "-o",
            s(&delta),
            "app:2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let desc: Value =
        serde_json::from_slice(&common::file_in_tar(&delta, "hoist-delta.json")).unwrap();
    let patches = desc["patches"].as_array().unwrap();
    assert_eq!(patches.len(), 1);
    let p = &patches[0];
    let v1: Value = sender.inspect("app:1");
    let v2: Value = sender.inspect("app:2");
    assert_eq!(p["diffID"], v2["RootFS"]["Layers"][0]);
    assert_eq!(p["reference"]["diffID"], v1["RootFS"]["Layers"][0]);
    assert_eq!(p["from"], serde_json::json!(["app:1"]));
    let patch_size = p["patchSize"].as_u64().unwrap();
    let layer_size = p["size"].as_u64().unwrap();
    // About the changed file, not the 2 MiB layer.
    assert!(
        patch_size > 32 << 10 && patch_size < 40 << 10,
        "{patch_size}"
    );
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "Left out 0 layers (0B) that the base has\nWrote 1 layer ({}) as patches of {}\n",
            hoist_format::units::human_size(layer_size),
            hoist_format::units::human_size(patch_size)
        )
    );
    // The layer blob is absent, the patch is there under its digest.
    let mut want = tar_files(&full);
    let layer = p["digest"].as_str().unwrap();
    assert!(want.remove(&format!("blobs/sha256/{}", &layer[7..])));
    want.insert(p["patch"].as_str().unwrap().to_string());
    want.insert("hoist-delta.json".into());
    assert_eq!(tar_files(&delta), want);
    let patch_bytes = common::file_in_tar(&delta, p["patch"].as_str().unwrap());
    assert_eq!(patch_bytes.len() as u64, patch_size);
    assert_eq!(
        format!("sha256:{}", common::sha256(&patch_bytes)),
        p["patchDigest"].as_str().unwrap()
    );
    let index: Value = serde_json::from_slice(&common::file_in_tar(&delta, "index.json")).unwrap();
    assert_eq!(
        index["annotations"]["dev.hoist.delta.patches"],
        "hoist-only: 1 layers are zstd patches against base layers; load with hoist"
    );

    // A store with app:1 rebuilds app:2: the same image, its layer landing uncompressed
    // (import's layer was gzip; the patch rebuilds the tar, whose sha256 is the diff_id).
    let target = Env::new();
    let v1_tar = sender.path("v1.tar");
    sender.ok(&["save", "-o", s(&v1_tar), "app:1"]);
    target.ok(&["load", "-i", s(&v1_tar)]);
    let before = target.snapshot();

    // A flipped byte in the patch is caught, and nothing lands.
    let mut bad = patch_bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    let forged = target.path("forged.tar");
    rewrite_member(&delta, &forged, p["patch"].as_str().unwrap(), &bad);
    let err = target.fails(&["load", "-i", s(&forged)]);
    assert!(err.contains("the patch of layer"), "{err}");
    assert_eq!(target.snapshot(), before);

    assert_eq!(
        target.ok(&["load", "-i", s(&delta)]),
        "Loaded image: app:2\n"
    );
    assert_eq!(target.inspect("app:2")["Id"], v2["Id"]);
    let (a, b) = (target.path("a.tar"), sender.path("b.tar"));
    target.ok(&["export", "-o", s(&a), "app:2"]);
    sender.ok(&["export", "-o", s(&b), "app:2"]);
    assert_eq!(common::sha256_file(&a), common::sha256_file(&b));
    assert!(target.ok(&["fsck"]).ends_with(": 0 problems\n"));

    // Without app:1 the reference is missing: named, and nothing lands.
    let empty = Env::new();
    empty.ok(&[
        "load",
        "-i",
        s(&common::data("docker25-oci_ggcr-hello-world-v25.tar")),
    ]);
    let before = empty.snapshot();
    let err = empty.fails(&["load", "-i", s(&delta)]);
    let id1 = v1["Id"].as_str().unwrap();
    assert!(
        err.contains(&format!(
            "needs layers of app:1 ({id1}, 1 layer, {}): load or pull it first, or give it with --base",
            hoist_format::units::human_size(p["reference"]["diffSize"].as_u64().unwrap())
        )),
        "{err}"
    );
    assert_eq!(empty.snapshot(), before);
    // ... and given as --base, it works.
    assert_eq!(
        empty.ok(&["load", "--base", s(&v1_tar), "-i", s(&delta)]),
        "Loaded image: app:2\n"
    );
    assert_eq!(empty.inspect("app:2")["Id"], v2["Id"]);

    let err = sender.cmd(&["save", "--delta", "app:2"]).output().unwrap();
    assert_eq!(err.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("--base <BASE>"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
}

/// Load looks only for the layers its images name and lack: entries no manifest names are
/// ignored however many, a --base is opened only when the store lacks something (and named
/// when it cannot be read), and a delta archive can itself be a base.
#[test]
fn only_what_the_images_need_is_looked_for() {
    let sender = multi_env();
    let delta = sender.path("delta.tar");
    sender.ok(&["save", "--base", BASE, "-o", s(&delta), DERIVED]);
    let mut desc: Value =
        serde_json::from_slice(&common::file_in_tar(&delta, "hoist-delta.json")).unwrap();
    let template_o = desc["omitted"][0].clone();
    let omitted = desc["omitted"].as_array_mut().unwrap();
    for i in 0..2000u32 {
        let mut o = template_o.clone();
        o["digest"] = format!("sha256:{}", common::sha256(&i.to_le_bytes())).into();
        omitted.push(o);
    }
    let patch_digest = format!("sha256:{}", common::sha256(b"no such patch"));
    desc["patches"] = (0..2000u32)
        .map(|i| {
            serde_json::json!({
                "digest": format!("sha256:{}", common::sha256(&(i + 9999).to_le_bytes())),
                "size": 1, "diffID": template_o["diffID"], "diffSize": 1 << 30,
                "patch": format!("blobs/sha256/{}", &patch_digest[7..]),
                "patchDigest": patch_digest, "patchSize": 1,
                "reference": {"diffID": template_o["diffID"], "diffSize": 9216},
            })
        })
        .collect();
    let padded = sender.path("padded.tar");
    rewrite_member(
        &delta,
        &padded,
        "hoist-delta.json",
        &serde_json::to_vec(&desc).unwrap(),
    );
    let target = Env::new();
    target.ok(&["load", "-i", s(&common::data(MULTI))]);
    target.ok(&["rmi", DERIVED, "corpus/dive-derived:alias"]);
    assert_eq!(
        target.ok(&["load", "--base", "/nonexistent/base.tar", "-i", s(&padded)]),
        format!("Loaded image: {DERIVED}\n")
    );
    assert_eq!(target.inspect(DERIVED)["Id"], sender.inspect(DERIVED)["Id"]);

    // --base with an archive that is no delta is a mistake, said so.
    let err = target.fails(&[
        "load",
        "--base",
        "/nonexistent/base.tar",
        "-i",
        s(&common::data(MULTI)),
    ]);
    assert!(
        err.ends_with(
            "--base /nonexistent/base.tar is for delta archives (hoist save --base), and this \
             archive is not one: it has no hoist-delta.json\n"
        ),
        "{err}"
    );

    // A store without the base opens the --base, and names it when it cannot.
    let empty = Env::new();
    let err = empty.fails(&["load", "--base", "/nonexistent/base.tar", "-i", s(&delta)]);
    assert!(err.contains("base /nonexistent/base.tar: "), "{err}");

    // The delta as a base: its images are described whole, so everything is left out.
    let again = sender.path("again.tar");
    let out = sender
        .cmd(&["save", "--base", s(&delta), "-o", s(&again), DERIVED])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d2: Value =
        serde_json::from_slice(&common::file_in_tar(&again, "hoist-delta.json")).unwrap();
    assert_eq!(d2["omitted"].as_array().unwrap().len(), 17);
}
