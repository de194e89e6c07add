//! `hoist load` of every archive of the corpus: exact image IDs, layers and names from
//! `expected.json` (computed by other tools), and the refusal of the invalid one.

use crate::common::{self, Env, expected};

/// What an image of the corpus must load as: ID, diff_ids, names (familiar form).
struct Want {
    id: String,
    diff_ids: Vec<String>,
    names: Vec<String>,
}

fn familiar(name: &str) -> String {
    // RepoTags without a tag load as :latest, as docker does.
    let last = name.rsplit('/').next().unwrap();
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn wants(item: &serde_json::Value) -> Vec<Want> {
    item["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| {
            let id = im["config_digest"]
                .as_str()
                .or_else(|| im["docker20_image_id"].as_str())
                .unwrap()
                .to_string();
            let diff_ids = im["diff_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect();
            let mut names: Vec<String> = im["repo_tags"]
                .as_array()
                .map(|a| a.iter().map(|t| familiar(t.as_str().unwrap())).collect())
                .unwrap_or_default();
            // OCI layouts: a full name in ref.name (podman/skopeo style) is a name; a bare tag is not.
            if let Some(r) = im["ref_name"]
                .as_str()
                .filter(|r| r.contains('/') || r.contains(':'))
            {
                names.push(familiar(r.strip_prefix("docker.io/library/").unwrap_or(r)));
            }
            Want {
                id,
                diff_ids,
                names,
            }
        })
        .collect()
}

fn check_image(env: &Env, w: &Want, file: &str) {
    let v = env.inspect(&w.id);
    assert_eq!(v["Id"], w.id, "{file}");
    let layers: Vec<String> = v["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers, w.diff_ids, "{file}: RootFS.Layers");
    let mut tags: Vec<String> = v["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    let mut want = w.names.clone();
    tags.sort();
    want.sort();
    assert_eq!(tags, want, "{file}: RepoTags");
}

fn expected_lines(ws: &[Want]) -> String {
    let mut s = String::new();
    for w in ws {
        if w.names.is_empty() {
            s.push_str(&format!("Loaded image ID: {}\n", w.id));
        }
        for n in &w.names {
            s.push_str(&format!("Loaded image: {n}\n"));
        }
    }
    s
}

#[test]
fn every_corpus_archive_loads_with_the_expected_ids_layers_and_names() {
    let mut checked = 0;
    for item in expected()["items"].as_array().unwrap() {
        let file = item["file"].as_str().unwrap();
        let role = item["role"].as_str().unwrap();
        if role != "load" && role != "layout" {
            continue;
        }
        let env = Env::new();
        let mut ws = wants(item);
        if file.contains("multiplatform") {
            // img0 is linux/amd64 (the default on this host), img1 linux/arm64.
            let arm = ws.pop().unwrap();
            let out = env.ok(&[
                "load",
                "-i",
                common::data(file).to_str().unwrap(),
                "--platform",
                "linux/amd64",
            ]);
            assert_eq!(out, expected_lines(&ws), "{file}");
            check_image(&env, &ws[0], file);
            let env2 = Env::new();
            let out = env2.ok(&[
                "load",
                "-i",
                common::data(file).to_str().unwrap(),
                "--platform",
                "linux/arm64",
            ]);
            assert_eq!(out, expected_lines(std::slice::from_ref(&arm)), "{file}");
            check_image(&env2, &arm, file);
            checked += 2;
            continue;
        }
        let out = env.ok(&["load", "-i", common::data(file).to_str().unwrap()]);
        assert_eq!(out, expected_lines(&ws), "{file}");
        for w in &ws {
            check_image(&env, w, file);
            checked += 1;
        }
        let fsck = env.ok(&["fsck"]);
        assert!(fsck.contains(" 0 problems"), "{file}: {fsck}");
    }
    assert_eq!(checked, 30, "every image of the corpus was checked");
}

#[test]
fn stdin_and_compressed_input() {
    let env = Env::new();
    let bytes = std::fs::read(common::data("docker-v1.2_gzip_trivy-alpine-310.tar.gz")).unwrap();
    let out = env.with_stdin(&["load"], &bytes);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: alpine:3.10\n"
    );
    assert_eq!(
        env.inspect("alpine:3.10")["Id"],
        common::expected_item("docker-v1.2_gzip_trivy-alpine-310.tar.gz")["images"][0]["config_digest"]
    );
}

#[test]
fn tag_renames_on_load_and_an_existing_name_moves() {
    let env = Env::new();
    let dive = common::data("docker-v1.2_docker18_dive-test.tar");
    let out = env.ok(&[
        "load",
        "-i",
        dive.to_str().unwrap(),
        "-t",
        "mine/dive:one",
        "-t",
        "other",
    ]);
    assert_eq!(
        out,
        "Loaded image: mine/dive:one\nLoaded image: other:latest\n"
    );
    let dive_id =
        common::expected_item("docker-v1.2_docker18_dive-test.tar")["images"][0]["config_digest"]
            .as_str()
            .unwrap()
            .to_string();
    assert_eq!(env.inspect("mine/dive:one")["Id"], dive_id);
    // The archive's own name was not given.
    assert!(
        env.cmd(&["inspect", "dive-test:latest"])
            .output()
            .unwrap()
            .status
            .code()
            == Some(1)
    );

    // Loading another image under an existing name moves the name; the old image stays, untagged.
    let kaniko = common::data("ggcr-tarball_kaniko_dive-test.tar");
    let out = env.ok(&["load", "-i", kaniko.to_str().unwrap(), "-t", "other"]);
    assert_eq!(
        out,
        format!(
            "The image other:latest already exists, renaming the old one with ID {dive_id} to empty string\nLoaded image: other:latest\n"
        )
    );
    let kaniko_id =
        common::expected_item("ggcr-tarball_kaniko_dive-test.tar")["images"][0]["config_digest"]
            .as_str()
            .unwrap();
    assert_eq!(env.inspect("other")["Id"], kaniko_id);
    assert_eq!(
        env.inspect(&dive_id)["RepoTags"],
        serde_json::json!(["mine/dive:one"])
    );
}

#[test]
fn tag_count_must_match_a_multi_image_archive() {
    let env = Env::new();
    let f = common::data("docker-v1.2_multi_ggcr-test_bundle.tar");
    let err = env.fails(&["load", "-i", f.to_str().unwrap(), "-t", "a"]);
    assert!(err.contains("holds 2 images"), "{err}");
    let out = env.ok(&["load", "-i", f.to_str().unwrap(), "-t", "a", "-t", "b"]);
    assert_eq!(out, "Loaded image: a:latest\nLoaded image: b:latest\n");
    let item = common::expected_item("docker-v1.2_multi_ggcr-test_bundle.tar");
    assert_eq!(env.inspect("a")["Id"], item["images"][0]["config_digest"]);
    assert_eq!(env.inspect("b")["Id"], item["images"][1]["config_digest"]);
}

#[test]
fn the_null_manifest_archive_is_refused() {
    let env = Env::new();
    let err = env.fails(&[
        "load",
        "-i",
        common::data("invalid_ggcr-null_manifest.tar")
            .to_str()
            .unwrap(),
    ]);
    assert!(
        err.contains("invalid_ggcr-null_manifest.tar") && err.contains("manifest.json is null"),
        "{err}"
    );
}

#[test]
fn a_rootfs_tar_is_not_an_image_archive() {
    let env = Env::new();
    let err = env.fails(&[
        "load",
        "-i",
        common::data("import-input_regclient-layer-wh.tar")
            .to_str()
            .unwrap(),
    ]);
    assert!(
        err.contains("not an image archive") && err.contains("hoist import"),
        "{err}"
    );
}

#[test]
fn platform_filter_skips_other_platforms() {
    let env = Env::new();
    // hello-world from docker 25 is linux/arm64.
    let f = common::data("docker25-oci_ggcr-hello-world-v25.tar");
    let err = env.fails(&[
        "load",
        "-i",
        f.to_str().unwrap(),
        "--platform",
        "linux/amd64",
    ]);
    assert!(
        err.contains("no image in the archive matches platform linux/amd64"),
        "{err}"
    );
    let out = env.ok(&[
        "load",
        "-i",
        f.to_str().unwrap(),
        "--platform",
        "linux/arm64",
    ]);
    assert_eq!(
        out,
        "Loaded image ID: sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44\n"
    );
}

/// The v1 id of layer `i` of a generated legacy archive.
pub fn v1_id(i: usize) -> String {
    common::sha256(format!("layer {i}").as_bytes())
}

/// A docker ≤ 1.9 (legacy v1) archive: for each `(id, parent)` a `<id>/{VERSION,json,layer.tar}`
/// (every layer.tar an empty tar), and `repositories` tagging `top` as `name:latest`.
pub fn legacy_archive(
    dest: &std::path::Path,
    layers: &[(String, Option<String>)],
    name: &str,
    top: &str,
) {
    let mut b = tar::Builder::new(std::fs::File::create(dest).unwrap());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = common::tar_header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    let empty_tar = [0u8; 1024];
    for (i, (id, parent)) in layers.iter().enumerate() {
        let parent = parent
            .as_ref()
            .map(|p| format!(r#""parent":"{p}","#))
            .unwrap_or_default();
        let json = format!(
            r##"{{"id":"{id}",{parent}"created":"2015-06-01T00:00:00Z","container_config":{{"Cmd":["/bin/sh","-c","#(nop) layer {i}"]}},"docker_version":"1.9.1","architecture":"amd64","os":"linux"}}"##
        );
        add(&format!("{id}/VERSION"), b"1.0");
        add(&format!("{id}/json"), json.as_bytes());
        add(&format!("{id}/layer.tar"), &empty_tar);
    }
    add(
        "repositories",
        format!(r#"{{"{name}":{{"latest":"{top}"}}}}"#).as_bytes(),
    );
    b.into_inner().unwrap();
}

/// Layers 0 ← 1 ← … ← `depth - 1`, each the parent of the next.
pub fn legacy_chain(depth: usize) -> Vec<(String, Option<String>)> {
    (0..depth)
        .map(|i| (v1_id(i), i.checked_sub(1).map(v1_id)))
        .collect()
}

#[test]
fn a_deep_legacy_parent_chain_loads() {
    // Far deeper than docker allows (125), well within hoist's bound: the chain is walked once,
    // in a loop, whatever its depth.
    const DEPTH: usize = 1500;
    let env = Env::new();
    let archive = env.path("deep.tar");
    legacy_archive(&archive, &legacy_chain(DEPTH), "deep", &v1_id(DEPTH - 1));
    let started = std::time::Instant::now();
    assert_eq!(
        env.ok(&["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: deep:latest\n"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let v = env.inspect("deep:latest");
    let empty_tar_diff_id = format!("sha256:{}", common::sha256(&[0u8; 1024]));
    assert_eq!(
        v["RootFS"]["Layers"],
        serde_json::json!(vec![empty_tar_diff_id; DEPTH])
    );
}
