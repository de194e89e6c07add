//! `hoist copy` between docker archives, OCI archives, OCI layouts, the store and a registry.
//! Each copy is checked by what another reader finds at the destination: the image ID, the
//! manifest digest (the same bytes as `hoist load` or `hoist push` give), the exported rootfs.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{self, Env};
use crate::test_registry::{
    DIVE, MULTIPLATFORM, OCI_GZIP, Registry, digest_of, s, skopeo, skopeo_inspect,
};

const KANIKO: &str = "ggcr-tarball_kaniko_dive-test.tar";
const MULTI: &str = "docker-v1.2_docker20_multi_dive-derived.tar";

/// The ID of image `index` of a corpus archive.
fn corpus_id(file: &str, index: usize) -> String {
    common::expected_item(file)["images"][index]["config_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The manifest digest `index.json` of a store gives `name`.
fn stored_manifest(env: &Env, name: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(env.root.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["io.containerd.image.name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {index}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The sha256 of `hoist export` of an image.
fn export_digest(env: &Env, image: &str) -> String {
    let out = env.path(&format!("export-{}.tar", common::unique("x")));
    env.ok(&["export", "-o", s(&out), image]);
    common::sha256_file(&out)
}

#[test]
fn copies_between_archives_layouts_and_the_store_without_touching_the_store() {
    let env = Env::new();
    let dive_id = corpus_id(DIVE, 0);
    let dive = common::data(DIVE);
    let layout = env.path("layout");
    let oci_tar = env.path("dive-oci.tar");
    let docker_tar = env.path("dive-docker.tar");

    // docker archive -> OCI layout -> OCI archive -> docker archive: no store involved.
    let digest = env.ok(&[
        "copy",
        &format!("docker-archive:{}", s(&dive)),
        &format!("oci:{}:dive", s(&layout)),
    ]);
    env.ok(&[
        "copy",
        &format!("oci:{}:dive", s(&layout)),
        &format!("oci-archive:{}", s(&oci_tar)),
    ]);
    env.ok(&[
        "copy",
        &format!("oci-archive:{}", s(&oci_tar)),
        &format!("docker-archive:{}:dive:copied", s(&docker_tar)),
    ]);
    assert!(
        !env.root.exists(),
        "the store was created by a copy that does not use it"
    );

    // The manifest is the one `hoist load` makes of the same archive.
    env.ok(&["load", "-i", s(&dive)]);
    assert_eq!(
        digest.trim(),
        stored_manifest(&env, "docker.io/library/dive-test:latest")
    );
    // skopeo reads the layout: the same config.
    if let Some(skopeo) = skopeo() {
        let config = common::run_ok(
            Command::new(&skopeo)
                .args(["inspect", "--config", "--raw"])
                .arg(format!("oci:{}:dive", s(&layout))),
        );
        assert_eq!(digest_of(config.as_bytes()), dive_id);
    }
    // An OCI archive's REF is its ref.name as given, where skopeo looks for it.
    if let Some(skopeo) = skopeo() {
        let named = env.path("named.tar");
        env.ok(&[
            "copy",
            &format!("oci:{}:dive", s(&layout)),
            &format!("oci-archive:{}:myref", s(&named)),
        ]);
        let config = common::run_ok(
            Command::new(&skopeo)
                .args(["inspect", "--config", "--raw"])
                .arg(format!("oci-archive:{}:myref", s(&named))),
        );
        assert_eq!(digest_of(config.as_bytes()), dive_id);
    }
    // The docker archive loads under the name given, as the same image with the same rootfs.
    let other = Env::new();
    let out = other.ok(&["load", "-i", s(&docker_tar)]);
    assert_eq!(out, "Loaded image: dive:copied\n");
    assert_eq!(other.inspect("dive:copied")["Id"], dive_id.as_str());
    assert_eq!(
        export_digest(&other, "dive:copied"),
        export_digest(&env, "dive-test:latest")
    );

    // Into the store under a new name, and out of it.
    let target = Env::new();
    target.ok(&[
        "copy",
        &format!("oci:{}:dive", s(&layout)),
        "hoist:copied:1",
    ]);
    assert_eq!(target.inspect("copied:1")["Id"], dive_id.as_str());
    assert_eq!(
        target.ok(&["fsck"]),
        "checked 16 blobs and 1 names: 0 problems\n"
    );
    let layout2 = env.path("layout2");
    target.ok(&["copy", "hoist:copied:1", &format!("oci:{}:x", s(&layout2))]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout2.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.trim());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "x"
    );

    // A docker archive with gzip layers (kaniko): layers checked against the diff_ids on the
    // way, and kept compressed.
    let kaniko_tar = env.path("kaniko-oci.tar");
    env.ok(&[
        "copy",
        &format!("docker-archive:{}", s(&common::data(KANIKO))),
        &format!("oci-archive:{}", s(&kaniko_tar)),
    ]);
    let third = Env::new();
    third.ok(&["load", "-i", s(&kaniko_tar)]);
    assert_eq!(
        third.inspect("dive-test:kaniko-latest")["Id"],
        corpus_id(KANIKO, 0).as_str()
    );

    // A multi-image archive: the image is named; without a name the error lists them.
    let err = env.fails(&[
        "copy",
        &format!("docker-archive:{}", s(&common::data(MULTI))),
        &format!("oci:{}", s(&env.path("multi"))),
    ]);
    assert!(err.contains("it has 2 images: name one"), "{err}");
    assert!(err.contains("corpus/dive-derived:alias"), "{err}");
    assert!(!env.path("multi").exists());
    env.ok(&[
        "copy",
        &format!(
            "docker-archive:{}:corpus/dive-derived:v1",
            s(&common::data(MULTI))
        ),
        &format!("oci:{}:v1", s(&env.path("multi"))),
    ]);
    if let Some(skopeo) = skopeo() {
        let config = common::run_ok(
            Command::new(&skopeo)
                .args(["inspect", "--config", "--raw"])
                .arg(format!("oci:{}:v1", s(&env.path("multi")))),
        );
        assert_eq!(digest_of(config.as_bytes()), corpus_id(MULTI, 0));
    }

    // A multi-platform layout: the platform asked for.
    let arm = env.path("arm.tar");
    env.ok(&[
        "copy",
        "--platform",
        "linux/arm64",
        &format!("oci:{}", s(&common::data(MULTIPLATFORM))),
        &format!("oci-archive:{}", s(&arm)),
    ]);
    let fourth = Env::new();
    fourth.ok(&["load", "-i", s(&arm)]);
    let arm_id = common::expected_item(MULTIPLATFORM)["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["platform"]["architecture"] == "arm64")
        .unwrap()["config_digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fourth.ok(&["images", "-q", "--no-trunc"]),
        format!("{arm_id}\n")
    );
}

#[test]
fn a_corrupt_source_is_refused_and_leaves_no_output() {
    let env = Env::new();
    // Flip a byte inside the biggest layer of the dive archive.
    let mut bytes = std::fs::read(common::data(DIVE)).unwrap();
    let item = common::expected_item(DIVE);
    let layer = &item["images"][0]["layers"][0];
    let path = layer["path"].as_str().unwrap();
    let at = find_entry(&bytes, path) + 700_000;
    bytes[at] ^= 0x55;
    let bad = env.path("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();

    let out_tar = env.path("out.tar");
    let err = env.fails(&[
        "copy",
        &format!("docker-archive:{}", s(&bad)),
        &format!("oci-archive:{}", s(&out_tar)),
    ]);
    assert!(err.contains(s(&bad)), "{err}");
    assert!(err.contains(path), "{err}");
    assert!(err.contains("invalid diffID"), "{err}");
    assert!(!out_tar.exists());
    assert_eq!(
        std::fs::read_dir(env.dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("tmp"))
            .count(),
        0,
        "a temporary file was left"
    );

    // Into the store: refused the same way, store unchanged.
    env.ok(&["load", "-i", s(&common::data(KANIKO))]);
    let before = env.snapshot();
    let err = env.fails(&[
        "copy",
        &format!("docker-archive:{}", s(&bad)),
        "hoist:bad:1",
    ]);
    assert!(err.contains("invalid diffID"), "{err}");
    assert_eq!(env.snapshot(), before);

    // A layout whose blob was changed after it was written: the digest check on the way
    // catches it.
    let layout = env.path("layout");
    env.ok(&[
        "copy",
        &format!("docker-archive:{}", s(&common::data(DIVE))),
        &format!("oci:{}:d", s(&layout)),
    ]);
    let blob = layout.join("blobs/sha256").join(
        layer["blob_sha256"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let mut b = std::fs::read(&blob).unwrap();
    b[1000] ^= 1;
    std::fs::write(&blob, &b).unwrap();
    let err = env.fails(&[
        "copy",
        &format!("oci:{}:d", s(&layout)),
        &format!("docker-archive:{}", s(&out_tar)),
    ]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(
        err.contains(layer["blob_sha256"].as_str().unwrap()),
        "{err}"
    );
    assert!(!out_tar.exists());

    for (bad_ref, msg) in [
        ("ftp:x", "unknown transport"),
        ("docker-archive:/nonexistent.tar", "/nonexistent.tar"),
        ("docker-archive:", "no path"),
    ] {
        let err = env.fails(&["copy", bad_ref, "oci:/tmp/never"]);
        assert!(err.contains(msg), "{bad_ref}: {err}");
    }
}

/// Offset of the data of tar entry `name` in an uncompressed tar.
fn find_entry(tar: &[u8], name: &str) -> usize {
    let mut a = tar::Archive::new(tar);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap() == Path::new(name) {
            return e.raw_file_position() as usize;
        }
    }
    panic!("{name} not in the archive");
}

#[test]
fn copies_to_and_from_a_registry() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let dive_id = corpus_id(DIVE, 0);
    let dest = reg.name("dive:1");

    // From an archive straight to the registry: the same manifest `hoist push` of the loaded
    // image gives (gzip compression is deterministic). That store has not compressed these
    // layers before; it compresses them to learn their digests, finds them all by HEAD and
    // uploads nothing.
    let digest = env.ok(&[
        "copy",
        &format!("docker-archive:{}", s(&common::data(DIVE))),
        &format!("docker://{dest}"),
    ]);
    assert!(!env.root.exists());
    assert_eq!(reg.blob_uploads("dive"), 15);
    let other = Env::new();
    other.ok(&["load", "-i", s(&common::data(DIVE))]);
    assert_eq!(
        other.ok(&["-q", "push", "dive-test:latest", &reg.name("dive:2")]),
        digest
    );
    assert_eq!(reg.blob_uploads("dive"), 15);
    // And the copy again, with no store at all (the compressed layers are spooled in the
    // system's temporary directory): no upload request either.
    let requests = reg.upload_requests("dive");
    assert_eq!(
        env.ok(&[
            "copy",
            &format!("docker-archive:{}", s(&common::data(DIVE))),
            &format!("docker://{}", reg.name("dive:3")),
        ]),
        digest
    );
    assert_eq!(reg.upload_requests("dive"), requests);
    assert!(!env.root.exists());

    // To another repository of the same registry: every blob mounted, none uploaded.
    let copy = reg.name("copy:1");
    let again = env.ok(&[
        "copy",
        &format!("docker://{dest}"),
        &format!("docker://{copy}"),
    ]);
    assert_eq!(again, digest);
    assert_eq!(reg.blob_uploads("copy"), 0);

    // From the registry to a layout, an archive and the store.
    let layout = env.path("layout");
    env.ok(&[
        "copy",
        &format!("docker://{copy}"),
        &format!("oci:{}:r", s(&layout)),
    ]);
    if let Some(skopeo) = skopeo() {
        let raw = common::run_ok(
            Command::new(&skopeo)
                .args(["inspect", "--raw"])
                .arg(format!("oci:{}:r", s(&layout))),
        );
        assert_eq!(format!("{}\n", digest_of(raw.as_bytes())), digest);
        assert_eq!(
            digest_of(&skopeo_inspect(&skopeo, &["--config", "--raw"], &copy)),
            dive_id
        );
    }
    let archive = env.path("from-registry.tar");
    env.ok(&[
        "copy",
        &format!("docker://{copy}"),
        &format!("docker-archive:{}", s(&archive)),
    ]);
    let third = Env::new();
    assert_eq!(
        third.ok(&["load", "-i", s(&archive)]),
        format!("Loaded image: {copy}\n")
    );
    assert_eq!(third.inspect(&copy)["Id"], dive_id.as_str());
    third.ok(&["copy", &format!("docker://{dest}"), "hoist:pulled:1"]);
    assert_eq!(third.inspect("pulled:1")["Id"], dive_id.as_str());
    assert_eq!(
        export_digest(&third, "pulled:1"),
        export_digest(&other, "dive-test:latest")
    );
    third.ok(&["fsck"]);

    // docker loads what came from the registry through a docker archive.
    if let Some(docker) = common::docker() {
        let out = docker.ok(&["load", "-i", s(&archive)]);
        assert!(out.contains(&format!("Loaded image: {copy}")), "{out}");
        let id = docker.ok(&["image", "inspect", "--format", "{{.Id}}", &copy]);
        docker.quiet(&["rmi", &copy]);
        assert_eq!(id.trim(), dive_id);
    }
}

#[test]
fn copy_all_moves_a_multi_platform_index_whole() {
    let Some(reg) = Registry::start() else { return };
    let Some(skopeo) = skopeo() else { return };
    let env = Env::new();
    let corpus = common::data(MULTIPLATFORM);
    let corpus_index: Value =
        serde_json::from_slice(&std::fs::read(corpus.join("index.json")).unwrap()).unwrap();
    let top = corpus_index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Layout -> OCI archive -> registry -> layout, all platforms, the index byte for byte.
    let archive = env.path("multi.tar");
    let out = env.ok(&[
        "copy",
        "--all",
        &format!("oci:{}", s(&corpus)),
        &format!("oci-archive:{}", s(&archive)),
    ]);
    assert_eq!(out, format!("{top}\n"));
    let dest = reg.name("multi:all");
    let out = env.ok(&[
        "copy",
        "--all",
        &format!("oci-archive:{}", s(&archive)),
        &format!("docker://{dest}"),
    ]);
    let raw = skopeo_inspect(&skopeo, &["--raw"], &dest);
    assert_eq!(out, format!("{}\n", digest_of(&raw)));
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    let layout = env.path("back");
    env.ok(&[
        "copy",
        "--all",
        &format!("docker://{dest}"),
        &format!("oci:{}:x", s(&layout)),
    ]);
    let written: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(written["manifests"][0]["digest"], digest_of(&raw).as_str());
    // Each platform pulls from the registry as the corpus says.
    for arch in ["amd64", "arm64"] {
        let id = common::expected_item(MULTIPLATFORM)["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["platform"]["architecture"] == arch)
            .unwrap()["config_digest"]
            .as_str()
            .unwrap()
            .to_string();
        let fresh = Env::new();
        fresh.ok(&["pull", "--platform", &format!("linux/{arch}"), &dest]);
        assert_eq!(fresh.inspect(&dest)["Id"], id.as_str());
    }

    // Into the store: the name points at the index; out again, the same index.
    let store = Env::new();
    store.ok(&[
        "copy",
        "--all",
        &format!("oci:{}", s(&corpus)),
        "hoist:multi:all",
    ]);
    assert_eq!(
        store.ok(&["fsck"]),
        "checked 7 blobs and 1 names: 0 problems\n"
    );
    let again = env.path("again");
    let out = store.ok(&[
        "copy",
        "--all",
        "hoist:multi:all",
        &format!("oci:{}", s(&again)),
    ]);
    assert_eq!(out, format!("{top}\n"));

    // A docker archive holds one platform: refused, nothing written.
    let docker_tar = env.path("multi-docker.tar");
    let err = env.fails(&[
        "copy",
        "--all",
        &format!("oci:{}", s(&corpus)),
        &format!("docker-archive:{}", s(&docker_tar)),
    ]);
    assert!(err.contains("a docker archive holds one platform"), "{err}");
    assert!(!docker_tar.exists());
}

#[test]
fn oci_refs_outside_the_image_spec_grammar_are_refused_and_nothing_is_written() {
    let env = Env::new();
    let src = format!("oci-archive:{}", s(&common::data(OCI_GZIP)));
    // An existing layout with an image under a good name: a refused copy must not touch it.
    let layout = env.path("a/b/layout");
    env.ok(&["copy", &src, &format!("oci:{}:good", s(&layout))]);
    let before = common::snapshot_tree(env.dir.path());
    let fresh = env.path("a/b/fresh");
    let archive = env.path("a/b/out.tar");
    let grammar =
        "is not letters and digits joined by single separators (one of - . _ : @ +, or --)";
    for (arg, reason) in [
        (
            format!("oci:{}:../../../evil", s(&layout)),
            format!("component \"..\" {grammar}"),
        ),
        (
            format!("oci:{}:../../../evil", s(&fresh)),
            format!("component \"..\" {grammar}"),
        ),
        (
            format!("oci-archive:{}:../evil", s(&archive)),
            format!("component \"..\" {grammar}"),
        ),
        (
            format!("oci:{}:/etc/passwd", s(&fresh)),
            "an empty component (a leading, trailing or doubled /)".to_string(),
        ),
        (
            format!("oci:{}:new tag", s(&fresh)),
            "' ' is not allowed (only letters, digits, / and the separators - . _ : @ +)"
                .to_string(),
        ),
    ] {
        let bad = arg.rsplit_once(':').unwrap().1;
        let err = env.fails(&["copy", &src, &arg]);
        assert_eq!(
            err,
            format!("hoist: error: {arg:?}: invalid OCI reference name {bad:?}: {reason}\n")
        );
        // As a source it is refused the same way (skopeo parses both sides alike).
        let err = env.fails(&["copy", &arg, &format!("oci:{}:x", s(&fresh))]);
        assert!(
            err.contains(&format!("invalid OCI reference name {bad:?}")),
            "{err}"
        );
        assert_eq!(
            common::snapshot_tree(env.dir.path()),
            before,
            "{arg}: something was written"
        );
    }
    assert!(!fresh.exists() && !archive.exists());

    // skopeo refuses the same name.
    if let Some(skopeo) = skopeo() {
        let out = Command::new(skopeo)
            .args(["copy", &src, &format!("oci:{}:../../../evil", s(&fresh))])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Invalid image ../../../evil"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
