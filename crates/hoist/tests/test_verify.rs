//! `hoist verify`: archives of every format, split sets and deltas checked without a store;
//! a flipped byte, a wrong diff_id, a missing blob and a corrupt part named.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::common::{self, Env};

/// Runs `hoist verify ARGS` and asserts exit 0; returns stdout. No store is created.
fn verify_ok(env: &Env, args: &[&str]) -> String {
    let mut a = vec!["verify"];
    a.extend(args);
    let out = env.ok(&a);
    assert!(!env.root.exists(), "verify created a store");
    out
}

/// Runs `hoist verify FILE`, asserting exit 1; returns (stdout, stderr).
fn verify_fails(env: &Env, file: &Path) -> (String, String) {
    let out = env
        .cmd(&["verify", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn real_archives_of_every_format_verify() {
    let env = Env::new();
    for (file, want) in [
        // docker 1.10-24 (`<v1 id>/layer.tar`, `<config>.json`)
        (
            "docker-v1.2_docker18_dive-test.tar",
            "OK: 1 image, 15 blobs, 14 layers\n",
        ),
        (
            "docker-v1.2_docker20_multi_dive-derived.tar",
            "OK: 2 images, 19 blobs, 17 layers\n",
        ),
        // docker 25 (OCI layout + manifest.json, index.json without manifests)
        (
            "docker25-oci_ggcr-hello-world-v25.tar",
            "OK: 1 image, 4 blobs, 1 layer\n",
        ),
        // OCI archives: plain, gzip, zstd and eStargz layers
        (
            "oci-archive_buildkit-uncompressed_dive.tar",
            "OK: 1 image, 3 blobs, 1 layer\n",
        ),
        (
            "oci-archive_buildkit-gzip_dive.tar",
            "OK: 1 image, 3 blobs, 1 layer\n",
        ),
        (
            "oci-archive_buildkit-zstd_dive.tar",
            "OK: 1 image, 3 blobs, 1 layer\n",
        ),
        (
            "oci-archive_buildkit-estargz_dive.tar",
            "OK: 1 image, 3 blobs, 1 layer\n",
        ),
        // legacy v1 (repositories + `<id>/json` chains)
        (
            "legacy-v1_moby-emptyLayer.tar",
            "OK: 1 image, 3 blobs, 3 layers\n",
        ),
        // compressed as a whole
        (
            "docker-v1.2_gzip_trivy-alpine-310.tar.gz",
            "OK: 1 image, 2 blobs, 1 layer\n",
        ),
        (
            "docker-v1.2_xz_multi_skopeo-docker-two-images.tar.xz",
            "OK: 2 images, 3 blobs, 1 layer\n",
        ),
        // an OCI layout directory with a nested multi-platform index
        (
            "oci-layout-dir_docker-containerd-store_stereoscope-multiplatform",
            "OK: 2 images, 7 blobs, 2 layers\n",
        ),
    ] {
        assert_eq!(
            verify_ok(&env, &[common::data(file).to_str().unwrap()]),
            want,
            "{file}"
        );
    }
    // Several files at once: each line says which.
    let a = common::data("oci-archive_buildkit-gzip_dive.tar");
    let b = common::data("docker-v1.2_ggcr-test_link.tar");
    assert_eq!(
        verify_ok(&env, &[a.to_str().unwrap(), b.to_str().unwrap()]),
        format!(
            "{}: OK: 1 image, 3 blobs, 1 layer\n{}: OK: 2 images, 4 blobs, 2 layers\n",
            a.display(),
            b.display()
        )
    );
}

#[test]
fn a_rootfs_tar_is_no_image_archive() {
    let env = Env::new();
    let f = common::data("import-input_regclient-layer-wh.tar");
    let (out, err) = verify_fails(&env, &f);
    assert_eq!(
        out,
        "no manifest.json, index.json or repositories found: not an image archive\n"
    );
    assert_eq!(
        err,
        format!(
            "hoist: error: verification failed: {} (1 problem)\n",
            f.display()
        )
    );
}

/// A store with dive-test and the archives hoist saves of it in each shape.
fn saved(env: &Env) -> Vec<(&'static str, PathBuf)> {
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker18_dive-test.tar")
            .to_str()
            .unwrap(),
    ]);
    let mut out = Vec::new();
    for (name, args) in [
        ("docker", &[][..]),
        ("oci", &["--format", "oci"][..]),
        ("legacy", &["--format", "docker-legacy"][..]),
        ("zstd", &["--compress", "zstd"][..]),
    ] {
        let p = env.path(&format!("{name}.tar"));
        let mut a = vec!["save", "-o", p.to_str().unwrap()];
        a.extend(args);
        a.push("dive-test");
        env.ok(&a);
        out.push((name, p));
    }
    out
}

#[test]
fn hoist_saves_and_split_sets_verify() {
    let env = Env::new();
    let archives = saved(&env);
    let check = Env::new();
    for (name, p) in &archives {
        let want = match *name {
            // blobs: 14 layers, the config, the manifest
            "docker" | "oci" | "zstd" => "OK: 1 image, 16 blobs, 14 layers\n",
            // blobs: 14 layers and the config (no manifest in that shape)
            _ => "OK: 1 image, 15 blobs, 14 layers\n",
        };
        assert_eq!(verify_ok(&check, &[p.to_str().unwrap()]), want, "{name}");
    }
    let base = env.path("split.tar");
    env.ok(&[
        "save",
        "--split",
        "512K",
        "-o",
        base.to_str().unwrap(),
        "dive-test",
    ]);
    for arg in [
        base.clone(),
        PathBuf::from(format!("{}.000", base.display())),
    ] {
        assert_eq!(
            verify_ok(&check, &[arg.to_str().unwrap()]),
            "OK: 1 image, 16 blobs, 14 layers, 3 parts\n"
        );
    }
    // stdin works too
    let out = check.with_stdin(&["verify", "-"], &std::fs::read(&archives[0].1).unwrap());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "OK: 1 image, 16 blobs, 14 layers\n"
    );
}

/// The members of a tar: (header, data).
fn members(path: &Path) -> Vec<(tar::Header, Vec<u8>)> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (h, v)
        })
        .collect()
}

fn name(h: &tar::Header) -> String {
    h.path().unwrap().to_string_lossy().to_string()
}

/// Writes `members` as a tar (sizes and checksums set from the data).
fn write_tar(path: &Path, members: &[(tar::Header, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (h, data) in members {
        let mut h = h.clone();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

/// The biggest file of a tar (a layer), its index among the members.
fn biggest(m: &[(tar::Header, Vec<u8>)]) -> usize {
    (0..m.len()).max_by_key(|&i| m[i].1.len()).unwrap()
}

#[test]
fn a_flipped_byte_in_a_layer_names_the_blob() {
    let env = Env::new();
    let archives = saved(&env);
    let check = Env::new();
    let docker = &archives[0].1;
    let mut m = members(docker);
    let i = biggest(&m);
    let blob = name(&m[i].0);
    m[i].1[1000] ^= 1;
    let found = common::sha256(&m[i].1);
    let bad = env.path("flipped.tar");
    write_tar(&bad, &m);
    let (out, err) = verify_fails(&check, &bad);
    assert_eq!(
        out,
        format!("{blob}: digest mismatch: the content's sha256 is sha256:{found}\n")
    );
    assert_eq!(
        err,
        format!(
            "hoist: error: verification failed: {} (1 problem)\n",
            bad.display()
        )
    );

    // A gzip layer of an OCI archive: its compressed bytes no longer have their digest.
    let oci = common::data("oci-archive_buildkit-gzip_dive.tar");
    let mut m = members(&oci);
    let i = biggest(&m);
    let blob = name(&m[i].0);
    let at = m[i].1.len() / 2;
    m[i].1[at] ^= 0x40;
    let found = common::sha256(&m[i].1);
    let bad = env.path("flipped-gzip.tar");
    write_tar(&bad, &m);
    let (out, _) = verify_fails(&check, &bad);
    assert_eq!(
        out,
        format!("{blob}: digest mismatch: the content's sha256 is sha256:{found}\n")
    );
}

#[test]
fn a_wrong_diff_id_is_named_with_its_layer() {
    let env = Env::new();
    let archives = saved(&env);
    let check = Env::new();
    // docker 1.10-24's shape: the config's file name need not be its digest, so an edited
    // config is still the image's config, and its first diff_id is now wrong.
    let legacy = &archives[2].1;
    let manifest: serde_json::Value = serde_json::from_slice(
        &members(legacy)
            .into_iter()
            .find(|(h, _)| name(h) == "manifest.json")
            .unwrap()
            .1,
    )
    .unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap().to_string();
    let layer0 = manifest[0]["Layers"][0].as_str().unwrap().to_string();
    let mut m = members(legacy);
    let c = m.iter().position(|(h, _)| name(h) == config_name).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&m[c].1).unwrap();
    let real = config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = format!("sha256:{}", "0".repeat(64));
    config["rootfs"]["diff_ids"][0] = wrong.clone().into();
    m[c].1 = serde_json::to_vec(&config).unwrap();
    let bad = env.path("diffid.tar");
    write_tar(&bad, &m);
    let (out, _) = verify_fails(&check, &bad);
    assert_eq!(
        out,
        format!(
            "manifest.json entry 0: layer 0 ({layer0}): diff_id mismatch: the config says {wrong}, the layer's content is {real}\n"
        )
    );
}

#[test]
fn a_missing_blob_is_named() {
    let env = Env::new();
    let archives = saved(&env);
    let check = Env::new();
    for (shape, archive) in [&archives[0], &archives[1]] {
        let mut m = members(archive);
        let i = biggest(&m);
        let blob = name(&m[i].0);
        m.remove(i);
        let bad = env.path(&format!("missing-{shape}.tar"));
        write_tar(&bad, &m);
        let index: serde_json::Value =
            serde_json::from_slice(&m.iter().find(|(h, _)| name(h) == "index.json").unwrap().1)
                .unwrap();
        let manifest = index["manifests"][0]["digest"].as_str().unwrap();
        let (out, _) = verify_fails(&check, &bad);
        // One problem, though index.json and manifest.json both name the layer.
        assert_eq!(
            out,
            format!("manifest {manifest}: layer 0: {blob} is not in the archive\n"),
            "{shape}"
        );
    }
}

#[test]
fn a_corrupt_or_missing_part_is_named() {
    let env = Env::new();
    saved(&env);
    let check = Env::new();
    let base = env.path("split.tar");
    env.ok(&[
        "save",
        "--split",
        "512K",
        "-o",
        base.to_str().unwrap(),
        "dive-test",
    ]);
    let part = |n: usize| PathBuf::from(format!("{}.{n:03}", base.display()));
    let p1 = part(1);
    let good = std::fs::read(&p1).unwrap();
    let mut bad = good.clone();
    bad[100_000] ^= 1;
    std::fs::write(&p1, &bad).unwrap();
    let (out, err) = verify_fails(&check, &base);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        format!(
            "{}: sha256 mismatch (expected {}, found {})",
            p1.display(),
            common::sha256(&good),
            common::sha256(&bad)
        )
    );
    // The byte was in a layer: the blob read through the part is named too.
    assert!(
        lines[1].starts_with("blobs/sha256/") && lines[1].contains(": digest mismatch: "),
        "{out}"
    );
    assert_eq!(
        err,
        format!(
            "hoist: error: verification failed: {} (2 problems)\n",
            base.display()
        )
    );
    std::fs::write(&p1, &good).unwrap();
    std::fs::remove_file(part(2)).unwrap();
    let (out, _) = verify_fails(&check, &base);
    assert_eq!(
        out,
        format!(
            "the archive was not read: parts are missing\npart {} is missing\n",
            part(2).display()
        )
    );
}

#[test]
fn a_delta_lists_what_it_leaves_out_and_checks_its_patches() {
    let env = Env::new();
    let archives = saved(&env);
    let check = Env::new();
    let mut m = members(&archives[0].1);
    // The two biggest layers: one left out, one replaced by a "patch" (blobs: 12 layers, the
    // config, the manifest and the patch).
    let i = biggest(&m);
    let omitted = m.remove(i);
    let j = biggest(&m);
    let patched = m.remove(j);
    let hex = |h: &tar::Header| name(h).trim_start_matches("blobs/sha256/").to_string();
    let patch_bytes = b"not really a zstd patch, but verify checks its digest and size".to_vec();
    let patch_hex = common::sha256(&patch_bytes);
    let mut patch_header = patched.0.clone();
    patch_header
        .set_path(format!("blobs/sha256/{patch_hex}"))
        .unwrap();
    m.insert(2, (patch_header, patch_bytes.clone()));
    let delta = |patch_size: usize| {
        serde_json::json!({
            "hoistDelta": 1,
            "base": ["app:1.0"],
            "omitted": [{
                "digest": format!("sha256:{}", hex(&omitted.0)),
                "size": omitted.1.len(),
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "diffID": format!("sha256:{}", hex(&omitted.0)),
                "chainID": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "from": ["app:1.0"],
            }],
            "patches": [{
                "digest": format!("sha256:{}", hex(&patched.0)),
                "size": patched.1.len(),
                "diffID": format!("sha256:{}", hex(&patched.0)),
                "diffSize": patched.1.len(),
                "patch": format!("blobs/sha256/{patch_hex}"),
                "patchDigest": format!("sha256:{patch_hex}"),
                "patchSize": patch_size,
                "reference": {
                    "digest": format!("sha256:{}", hex(&omitted.0)),
                    "diffID": format!("sha256:{}", hex(&omitted.0)),
                    "diffSize": omitted.1.len(),
                },
                "from": ["app:1.0"],
            }],
        })
    };
    let mut h = tar::Header::new_ustar();
    h.set_path("hoist-delta.json").unwrap();
    h.set_mode(0o644);
    let mut with_delta = m.clone();
    with_delta.push((
        h.clone(),
        serde_json::to_vec(&delta(patch_bytes.len())).unwrap(),
    ));
    let d = env.path("delta.tar");
    write_tar(&d, &with_delta);
    assert_eq!(
        verify_ok(&check, &[d.to_str().unwrap()]),
        format!(
            "blobs/sha256/{}: left out (delta against app:1.0): not checked\n\
             blobs/sha256/{}: a patch against sha256:{} (delta against app:1.0): the patch is checked, the layer is rebuilt by load\n\
             OK: 1 image, 15 blobs, 12 layers\n",
            hex(&omitted.0),
            hex(&patched.0),
            hex(&omitted.0)
        )
    );
    // A patch whose size is not the listed one.
    let mut wrong = m.clone();
    wrong.push((h, serde_json::to_vec(&delta(5)).unwrap()));
    let d = env.path("delta-bad.tar");
    write_tar(&d, &wrong);
    let (out, _) = verify_fails(&check, &d);
    assert!(out.ends_with(&format!(
        "blobs/sha256/{patch_hex}: size mismatch: hoist-delta.json: patch of sha256:{} says 5 bytes, found {}\n",
        hex(&patched.0),
        patch_bytes.len()
    )), "{out}");
    // Without hoist-delta.json the same archive is missing two layers.
    let d = env.path("no-delta.tar");
    write_tar(&d, &m);
    let (out, _) = verify_fails(&check, &d);
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn a_delta_saved_against_a_base_verifies() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker20_multi_dive-derived.tar")
            .to_str()
            .unwrap(),
    ]);
    let base_layers = env.inspect("dive-test")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect::<Vec<_>>();
    assert_eq!(base_layers.len(), 14);
    let mut want: Vec<String> = base_layers
        .iter()
        .map(|hex| {
            format!("blobs/sha256/{hex}: left out (delta against dive-test:latest): not checked")
        })
        .collect();
    want.sort();
    let check = Env::new();
    for format in ["docker", "oci"] {
        let d = env.path(&format!("delta-{format}.tar"));
        env.ok(&[
            "save",
            "--format",
            format,
            "--base",
            "dive-test",
            "-o",
            d.to_str().unwrap(),
            "corpus/dive-derived",
        ]);
        let out = verify_ok(&check, &[d.to_str().unwrap()]);
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        // The derived image: its 3 own layers (of 17), its config and manifest are checked.
        assert_eq!(
            lines.pop().as_deref(),
            Some("OK: 1 image, 5 blobs, 3 layers"),
            "{format}"
        );
        lines.sort();
        assert_eq!(lines, want, "{format}");
    }
}
