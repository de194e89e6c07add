//! `hoist save`: the three shapes, determinism, and round trips through a fresh store.

use crate::common::{self, Env};

fn load(env: &Env, file: &str) {
    env.ok(&["load", "-i", common::data(file).to_str().unwrap()]);
}

/// Names, modes and types of the entries of a tar.
fn listing(path: &std::path::Path) -> Vec<String> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            format!(
                "{:?} {:o} {} {} {}",
                h.entry_type(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                h.uid().unwrap(),
                e.path().unwrap().display()
            )
        })
        .collect()
}

#[test]
fn docker_format_is_docker25_shaped_and_deterministic() {
    let env = Env::new();
    load(&env, "docker-v1.2_docker20_multi_dive-derived.tar");
    let a = env.path("a.tar");
    let b = env.path("b.tar");
    env.ok(&[
        "save",
        "-o",
        a.to_str().unwrap(),
        "dive-test:latest",
        "corpus/dive-derived",
    ]);
    env.ok(&[
        "save",
        "-o",
        b.to_str().unwrap(),
        "corpus/dive-derived",
        "dive-test",
    ]);
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "argument order changes nothing"
    );

    let entries = listing(&a);
    assert_eq!(entries[0], "Directory 755 0 0 blobs/");
    assert_eq!(entries[1], "Directory 755 0 0 blobs/sha256/");
    let tail: Vec<&str> = entries.iter().rev().take(4).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "Regular 644 0 0 repositories",
            "Regular 444 0 0 oci-layout",
            "Regular 644 0 0 manifest.json",
            "Regular 644 0 0 index.json"
        ]
    );
    // 17 + 14 layers with 14 shared, 2 configs, 2 manifests: each blob once.
    let blobs = entries
        .iter()
        .filter(|e| e.contains("blobs/sha256/") && e.starts_with("Regular"))
        .count();
    assert_eq!(blobs, 17 + 2 + 2);

    let index: serde_json::Value =
        serde_json::from_slice(&common::file_in_tar(&a, "index.json")).unwrap();
    let names: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["io.containerd.image.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (
                "docker.io/corpus/dive-derived:alias".to_string(),
                "alias".to_string()
            ),
            ("docker.io/corpus/dive-derived:v1".into(), "v1".into()),
            ("docker.io/library/dive-test:latest".into(), "latest".into())
        ]
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&common::file_in_tar(&a, "manifest.json")).unwrap();
    let item = common::expected_item("docker-v1.2_docker20_multi_dive-derived.tar");
    assert_eq!(
        manifest[0]["Config"],
        format!(
            "blobs/sha256/{}",
            item["images"][0]["config_digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        )
    );
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["corpus/dive-derived:alias", "corpus/dive-derived:v1"])
    );
    assert_eq!(
        manifest[1]["RepoTags"],
        serde_json::json!(["dive-test:latest"])
    );
    assert_eq!(
        common::file_in_tar(&a, "oci-layout"),
        br#"{"imageLayoutVersion": "1.0.0"}"#
    );
    let repos: serde_json::Value =
        serde_json::from_slice(&common::file_in_tar(&a, "repositories")).unwrap();
    let top = item["images"][1]["diff_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    assert_eq!(repos["dive-test"]["latest"], top);
}

#[test]
fn docker25_graphdriver_archive_round_trips_byte_identical_manifest() {
    // docker 25's own synthesized manifest for hello-world is in the archive as an orphan blob;
    // hoist must synthesize the very same bytes (same manifest digest).
    let env = Env::new();
    load(&env, "docker25-oci_ggcr-hello-world-v25.tar");
    let out = env.path("hw.tar");
    env.ok(&["save", "-o", out.to_str().unwrap(), "ee301c921b8a"]);
    let index: serde_json::Value =
        serde_json::from_slice(&common::file_in_tar(&out, "index.json")).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        "sha256:411caf340c828657e915a83ed561a79d2b8150dabad4dc079d881cbfe6f86afe"
    );
    assert_eq!(
        index["manifests"][0].get("annotations"),
        None,
        "untagged images carry no names"
    );
}

#[test]
fn every_format_and_compression_loads_back_with_the_same_ids() {
    let env = Env::new();
    for f in [
        "docker-v1.2_docker20_multi_dive-derived.tar",
        "oci-archive_buildkit-zstd_dive.tar",
        "legacy-v1_moby-emptyLayer.tar",
    ] {
        load(&env, f);
    }
    env.ok(&["tag", "3eaccc100f86", "zstd/dive:1"]);
    let images = [
        "corpus/dive-derived:v1",
        "dive-test:latest",
        "zstd/dive:1",
        "matthughes/library-centos:6-2015.03.20",
    ];
    let ids: Vec<serde_json::Value> = images
        .iter()
        .map(|i| env.inspect(i)["Id"].clone())
        .collect();
    for format in ["docker", "oci", "docker-legacy"] {
        for compress in ["none", "gzip", "zstd"] {
            let out = env.path(&format!("{format}-{compress}.tar"));
            let mut args = vec![
                "save",
                "-o",
                out.to_str().unwrap(),
                "--format",
                format,
                "--compress",
                compress,
            ];
            args.extend(images);
            env.ok(&args);
            let fresh = Env::new();
            fresh.ok(&["load", "-i", out.to_str().unwrap()]);
            for (img, id) in images.iter().zip(&ids) {
                let v = fresh.inspect(img);
                assert_eq!(&v["Id"], id, "{format}/{compress}: {img}");
                assert_eq!(
                    v["RootFS"],
                    env.inspect(img)["RootFS"],
                    "{format}/{compress}: {img}"
                );
            }
            assert!(fresh.ok(&["fsck"]).contains(" 0 problems"));
        }
    }
}

#[test]
fn legacy_format_has_plain_layers_and_v1_dirs() {
    let env = Env::new();
    load(&env, "oci-archive_buildkit-gzip_dive.tar");
    env.ok(&["tag", "3eaccc100f86", "gz:1"]);
    let out = env.path("legacy.tar");
    env.ok(&[
        "save",
        "--format",
        "docker-legacy",
        "-o",
        out.to_str().unwrap(),
        "gz:1",
    ]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&common::file_in_tar(&out, "manifest.json")).unwrap();
    let layer = manifest[0]["Layers"][0].as_str().unwrap().to_string();
    assert!(layer.ends_with("/layer.tar"));
    let bytes = common::file_in_tar(&out, &layer);
    // The stored layer is gzip; the legacy archive carries it decompressed, so its sha256 is the diff_id.
    let diff_id = env.inspect("gz:1")["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(format!("sha256:{}", common::sha256(&bytes)), diff_id);
    assert_eq!(
        common::file_in_tar(&out, &layer.replace("layer.tar", "VERSION")),
        b"1.0"
    );
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["gz:1"]));
}

#[test]
fn save_to_stdout_equals_save_to_file_and_refuses_unknown_images() {
    let env = Env::new();
    load(&env, "docker-v1.2_docker24_scalibr-symlinks.tar");
    let f = env.path("s.tar");
    env.ok(&["save", "-o", f.to_str().unwrap(), "symlinks"]);
    let out = env.cmd(&["save", "symlinks"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, std::fs::read(&f).unwrap());
    let err = env.fails(&["save", "-o", env.path("x.tar").to_str().unwrap(), "nope:1"]);
    assert!(err.contains("No such image: nope:1"), "{err}");
    assert!(
        !env.path("x.tar").exists(),
        "no partial archive is left behind"
    );
}
