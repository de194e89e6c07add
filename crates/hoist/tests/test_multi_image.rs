//! Multi-image archives: `hoist save --format oci A B C` writes one OCI layout whose index
//! names each image, with the blobs they share written once, and hoist, skopeo
//! (`oci-archive:FILE:NAME`) and containerd (`ctr import`) read every image back under its
//! name. podman 4.3's `load` refuses an OCI archive of several images (its oci-archive
//! transport wants one: "more than one image in oci, choose an image", containers/image's
//! limit), so podman users get `--format docker`, which `podman load` reads with every name,
//! or `podman pull oci-archive:FILE:NAME` for one image.
//!
//! The three images share 14 layers: dive-test (14 layers), the corpus' dive-derived (the same
//! 14 and 3 more) and a commit of a container of dive-test (the same 14 and 1 more).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{self, Ctr, Env, Podman};

const MULTI: &str = "docker-v1.2_docker20_multi_dive-derived.tar";
const BASE: &str = "example.com/multi/base:1";
const DERIVED: &str = "example.com/multi/derived:1";
const COMMITTED: &str = "example.com/multi/committed:1";
const NAMES: [&str; 3] = [BASE, DERIVED, COMMITTED];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A store with the three images, and what each is: name -> (ID, diff_ids).
struct Three {
    env: Env,
    images: BTreeMap<&'static str, (String, Vec<String>)>,
}

impl Three {
    fn new() -> Three {
        let env = Env::new();
        env.ok(&["load", "-i", s(&common::data(MULTI))]);
        env.ok(&["tag", "dive-test:latest", BASE]);
        env.ok(&["tag", "corpus/dive-derived:v1", DERIVED]);
        env.ok(&["rmi", "dive-test:latest", "corpus/dive-derived:v1"]);
        env.ok(&["rmi", "corpus/dive-derived:alias"]);
        let id = env.ok(&["create", "--name", "c", BASE]);
        let rootfs = env
            .root
            .join("hoist/containers")
            .join(id.trim())
            .join("rootfs");
        std::fs::write(rootfs.join("committed.txt"), "committed\n").unwrap();
        env.ok(&["commit", "c", COMMITTED]);
        env.ok(&["rm", "c"]);
        let images: BTreeMap<_, _> = NAMES
            .iter()
            .map(|&n| {
                let i = env.inspect(n);
                let layers = i["RootFS"]["Layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string())
                    .collect::<Vec<_>>();
                (n, (i["Id"].as_str().unwrap().to_string(), layers))
            })
            .collect();
        let base = &images[BASE].1;
        assert_eq!(base.len(), 14);
        assert_eq!(images[DERIVED].1.len(), 17);
        assert_eq!(images[COMMITTED].1.len(), 15);
        for n in [DERIVED, COMMITTED] {
            assert_eq!(&images[n].1[..14], &base[..], "{n} is on the base");
        }
        Three { env, images }
    }

    fn id(&self, name: &str) -> &str {
        &self.images[name].0
    }

    /// `hoist save [--format F] -o FILE A B C`.
    fn save(&self, format: &str) -> std::path::PathBuf {
        let out = self.env.path(&format!("three-{format}.tar"));
        let mut args = vec!["save", "--format", format, "-o", s(&out)];
        args.extend(NAMES);
        self.env.ok(&args);
        out
    }
}

/// An OCI archive's index: name (`org.opencontainers.image.ref.name`, which must equal
/// `io.containerd.image.name`) -> manifest digest.
fn index_names(archive: &Path) -> BTreeMap<String, String> {
    let index: Value = serde_json::from_slice(&common::file_in_tar(archive, "index.json")).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let a = &m["annotations"];
            assert_eq!(
                a["org.opencontainers.image.ref.name"],
                a["io.containerd.image.name"]
            );
            (
                a["io.containerd.image.name"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn loaded(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| format!("Loaded image: {n}")).collect();
    v.sort();
    v
}

#[test]
fn an_oci_archive_of_three_images_holds_shared_blobs_once_and_loads_every_name() {
    let three = Three::new();
    let archive = three.save("oci");
    let paths = common::tar_paths(&archive);
    let unique: BTreeSet<&String> = paths.iter().collect();
    assert_eq!(
        unique.len(),
        paths.len(),
        "an entry written twice: {paths:?}"
    );
    assert_eq!(
        paths
            .iter()
            .filter(|p| !p.starts_with("blobs/sha256/"))
            .collect::<Vec<_>>(),
        ["blobs/", "index.json", "oci-layout"]
    );

    // Every blob once: the 18 distinct layers (stored uncompressed: blob = diff_id) of the 46
    // the manifests list, 3 configs and 3 manifests.
    let manifests = index_names(&archive);
    assert_eq!(
        manifests.keys().map(String::as_str).collect::<Vec<_>>(),
        [BASE, COMMITTED, DERIVED]
    );
    let layers: BTreeSet<&String> = three.images.values().flat_map(|(_, l)| l).collect();
    assert_eq!(layers.len(), 18);
    let mut expected: BTreeSet<String> = layers.iter().map(|l| l.to_string()).collect();
    expected.extend(three.images.values().map(|(id, _)| id.clone()));
    expected.extend(manifests.values().cloned());
    let blobs: BTreeSet<String> = paths
        .iter()
        .filter_map(|p| p.strip_prefix("blobs/sha256/"))
        .filter(|h| !h.is_empty())
        .map(|h| format!("sha256:{h}"))
        .collect();
    assert_eq!(blobs.len(), 24);
    assert_eq!(blobs, expected);
    for (name, digest) in &manifests {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let m: Value = serde_json::from_slice(&common::file_in_tar(
            &archive,
            &format!("blobs/sha256/{hex}"),
        ))
        .unwrap();
        assert_eq!(m["config"]["digest"], three.id(name), "{name}");
    }

    // hoist load into a new store: the three names, the same IDs, a store fsck passes.
    let other = Env::new();
    let out = other.ok(&["load", "-i", s(&archive)]);
    assert_eq!(sorted_lines(&out), loaded(&NAMES));
    for n in NAMES {
        let i = other.inspect(n);
        assert_eq!(i["Id"], three.id(n), "{n}");
        assert_eq!(i["RepoTags"], serde_json::json!([n]), "{n}");
    }
    other.ok(&["fsck"]);
    // And the same from the docker format of the three.
    let other = Env::new();
    let out = other.ok(&["load", "-i", s(&three.save("docker"))]);
    assert_eq!(sorted_lines(&out), loaded(&NAMES));
    for n in NAMES {
        assert_eq!(other.inspect(n)["Id"], three.id(n), "{n}");
    }
}

#[test]
fn skopeo_reads_each_image_of_a_multi_image_oci_archive_by_name() {
    let Some(skopeo) = common::peer("skopeo") else {
        return;
    };
    let three = Three::new();
    let archive = three.save("oci");
    let manifests = index_names(&archive);
    let run = |args: &[&str]| common::run_ok(Command::new(&skopeo).args(args));
    for n in NAMES {
        let r = format!("oci-archive:{}:{n}", s(&archive));
        // The config as skopeo reads it is the image's (its digest is the ID).
        let config = Command::new(&skopeo)
            .args(["inspect", "--raw", "--config", &r])
            .output()
            .unwrap();
        assert!(config.status.success(), "{r}");
        assert_eq!(
            format!("sha256:{}", common::sha256(&config.stdout)),
            three.id(n),
            "{r}"
        );
        let v: Value = serde_json::from_str(&run(&["inspect", &r])).unwrap();
        assert_eq!(v["Digest"], manifests[n].as_str(), "{r}");
        assert_eq!(v["Layers"], serde_json::json!(three.images[n].1), "{r}");
        // skopeo copy of that one image to a layout: the same config, the layers gzipped
        // (containers/image compresses uncompressed layers for an oci: destination, so the
        // manifest is skopeo's own).
        let dir = three
            .env
            .path(&format!("copy-{}", common::unique("skopeo")));
        run(&[
            "copy",
            "-q",
            &r,
            &format!("oci:{}:example.com/copied:1", s(&dir)),
        ]);
        let read = |p: &str| std::fs::read(dir.join(p)).unwrap();
        let index: Value = serde_json::from_slice(&read("index.json")).unwrap();
        let digest = index["manifests"][0]["digest"].as_str().unwrap();
        let m: Value = serde_json::from_slice(&read(&format!(
            "blobs/sha256/{}",
            digest.strip_prefix("sha256:").unwrap()
        )))
        .unwrap();
        assert_eq!(m["config"]["digest"], three.id(n), "{r}");
        let types: BTreeSet<&str> = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            BTreeSet::from(["application/vnd.oci.image.layer.v1.tar+gzip"])
        );
        let other = Env::new();
        assert_eq!(
            other.ok(&["load", "-i", s(&dir)]),
            "Loaded image: example.com/copied:1\n"
        );
        let i = other.inspect("example.com/copied:1");
        assert_eq!(i["Id"], three.id(n), "{r}");
        assert_eq!(
            i["RootFS"]["Layers"],
            serde_json::json!(three.images[n].1),
            "{r}"
        );
    }
    // Without a name skopeo (containers/image) will not pick one.
    let out = Command::new(&skopeo)
        .args(["inspect", &format!("oci-archive:{}", s(&archive))])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("more than one image in oci, choose an image"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn containerd_imports_every_image_of_a_multi_image_oci_archive() {
    let Some(ctr) = Ctr::new() else {
        return;
    };
    let three = Three::new();
    let archive = three.save("oci");
    let manifests = index_names(&archive);
    // Import unpacks too: containerd checks every layer against the config's diff_ids.
    let out = ctr.ok(&["images", "import", s(&archive)]);
    let expected: Vec<String> = manifests
        .iter()
        .map(|(n, m)| format!("unpacking {n} ({m})...done"))
        .collect();
    assert_eq!(sorted_lines(&out), expected);
    assert_eq!(ctr.images(), manifests);
    for (n, m) in &manifests {
        let manifest: Value = serde_json::from_str(&ctr.ok(&["content", "get", m])).unwrap();
        assert_eq!(manifest["config"]["digest"], three.id(n), "{n}");
    }
}

#[test]
fn podman_loads_every_name_of_a_multi_image_docker_archive_not_of_an_oci_one() {
    let three = Three::new();
    let Some(podman) = Podman::new(&three.env, "multi") else {
        return;
    };
    // --format docker: podman's docker-archive transport reads manifest.json, every image
    // under its name.
    let out = podman.ok(&["load", "-q", "-i", s(&three.save("docker"))]);
    assert_eq!(sorted_lines(&out), loaded(&NAMES));
    let images = podman.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}}",
    ]);
    let mut expected: Vec<String> = NAMES
        .iter()
        .map(|n| format!("{} {n}", three.id(n)))
        .collect();
    expected.sort();
    assert_eq!(sorted_lines(&images), expected);

    // --format oci: podman 4.3 tries each of its transports and none takes it; its
    // oci-archive one refuses an index of several images (exit 125).
    let oci = three.save("oci");
    let other = Podman::new(&three.env, "oci").unwrap();
    let out = other.cmd(&["load", "-q", "-i", s(&oci)]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("payload does not match any of the supported image formats")
            && err.contains(
                " * oci-archive: loading index: more than one image in oci, choose an image\n"
            )
            && err.contains(
                " * docker-archive: loading tar component manifest.json: file does not exist\n"
            ),
        "{err}"
    );
    assert_eq!(other.ok(&["images", "-q"]), "");
    // One image of it by name: podman pull oci-archive:FILE:NAME (hoist's manifest digest).
    let manifests = index_names(&oci);
    let id = other.ok(&["pull", "-q", &format!("oci-archive:{}:{DERIVED}", s(&oci))]);
    assert_eq!(format!("sha256:{}", id.trim()), three.id(DERIVED));
    assert_eq!(
        other.ok(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}} {{.Digest}}"
        ]),
        format!("{} {DERIVED} {}\n", three.id(DERIVED), manifests[DERIVED])
    );
}

#[test]
fn save_and_load_help_send_podman_users_to_the_docker_format() {
    let env = Env::new();
    // Long help (--help) is each command's own text, wrapped to the terminal: compared with
    // its lines joined. -h keeps the one-line summary.
    let help = |cmd: &str| {
        env.ok(&[cmd, "--help"])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let save = help("save");
    assert!(
        save.contains(
            "podman 4.3's load refuses an OCI archive of several images (\"more than one image \
             in oci\"): for podman save them with --format docker, which it loads with every name."
        ),
        "{save}"
    );
    let load = help("load");
    assert!(
        load.contains(
            "(podman 4.3 loads only one image from an OCI archive: for podman, `hoist save \
             --format docker`)."
        ),
        "{load}"
    );
    assert!(
        env.ok(&["save", "-h"])
            .starts_with("Save images to one archive (docker 25+ shape by default)\n")
    );
}
