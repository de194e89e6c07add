//! `hoist pull --all-platforms`: a multi-platform index pushed by skopeo is stored whole (the
//! index byte-exact, every platform's manifest, config and layers) under one name, which the
//! other commands show as the host's platform; `fsck` verifies it all, `gc` keeps it all until
//! the name is removed. The default pull of the same index stores the host's image only.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::common::{self, Env};
use crate::test_registry::{MULTIPLATFORM, Registry, digest_of, s, skopeo, skopeo_inspect};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The corpus' two platforms, in index order.
const ARCHES: [&str; 2] = ["amd64", "arm64"];

/// The corpus image hoist shows for the index here: the host's platform when the index has
/// it, else the first in index order.
fn shown_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

/// The corpus' multi-platform layout pushed by skopeo (`copy --all`) as `multi:1`; returns the
/// name and the index as the registry serves it.
fn push_multiplatform(reg: &Registry, skopeo: &std::path::Path) -> (String, Vec<u8>) {
    let name = reg.name("multi:1");
    common::run_ok(
        Command::new(skopeo)
            .args(["copy", "--all", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", s(&common::data(MULTIPLATFORM))))
            .arg(format!("docker://{name}")),
    );
    let raw = skopeo_inspect(skopeo, &["--raw"], &name);
    (name, raw)
}

/// The corpus' facts about one platform's image.
fn expected_image(arch: &str) -> &'static Value {
    common::expected_item(MULTIPLATFORM)["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no {arch} image in the corpus"))
}

fn config_of(arch: &str) -> String {
    expected_image(arch)["config_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn layers_of(arch: &str) -> Vec<String> {
    expected_image(arch)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["blob_sha256"].as_str().unwrap().to_string())
        .collect()
}

/// The manifest digest the index lists for `arch`.
fn manifest_of(index: &[u8], arch: &str) -> String {
    let v: Value = serde_json::from_slice(index).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no {arch} in the index"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn hex(digest: &str) -> String {
    digest.strip_prefix("sha256:").unwrap().to_string()
}

/// The blobs of the store (hex digests).
fn blobs(env: &Env) -> BTreeSet<String> {
    std::fs::read_dir(env.root.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect()
}

/// The store's `index.json` entries.
fn index_entries(env: &Env) -> Vec<Value> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(env.root.join("index.json")).unwrap()).unwrap();
    v["manifests"].as_array().cloned().unwrap_or_default()
}

/// The store's `index.json` entry for a full name.
fn entry_for(env: &Env, full_name: &str) -> Value {
    let all = index_entries(env);
    let hits: Vec<&Value> = all
        .iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"] == full_name)
        .collect();
    assert_eq!(hits.len(), 1, "{full_name} in {all:?}");
    hits[0].clone()
}

/// `hoist images --no-trunc --format json`, one object per line.
fn image_rows(env: &Env) -> Vec<Value> {
    env.ok(&["images", "--no-trunc", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_default_pull_of_an_index_stores_only_the_hosts_image() {
    let Some(reg) = Registry::start() else { return };
    let Some(skopeo) = skopeo() else { return };
    let (name, index) = push_multiplatform(&reg, &skopeo);
    let arch = shown_arch();

    let env = Env::new();
    let out = env.ok(&["pull", &name]);
    assert!(
        out.ends_with(&format!(
            "Digest: {}\nStatus: Downloaded newer image for {name}\n{name}\n",
            digest_of(&index)
        )),
        "{out}"
    );
    assert_eq!(out.matches(": Pull complete").count(), 1, "{out}");
    // Only the host's manifest, config and layer; no index.
    let mut want: BTreeSet<String> = layers_of(arch).iter().map(|l| hex(l)).collect();
    want.insert(hex(&config_of(arch)));
    want.insert(hex(&manifest_of(&index, arch)));
    assert_eq!(blobs(&env), want);
    let e = entry_for(&env, &name);
    assert_eq!(e["mediaType"], OCI_MANIFEST);
    assert_eq!(e["digest"], manifest_of(&index, arch).as_str());
    assert_eq!(env.inspect(&name)["Id"], config_of(arch).as_str());
}

#[test]
fn pull_all_platforms_keeps_the_index_and_every_platforms_image() {
    let Some(reg) = Registry::start() else { return };
    let Some(skopeo) = skopeo() else { return };
    let (name, index) = push_multiplatform(&reg, &skopeo);
    let index_digest = digest_of(&index);
    let arch = shown_arch();
    let id = config_of(arch);

    let env = Env::new();
    let out = env.ok(&["pull", "--all-platforms", &name]);
    assert_eq!(
        out.lines().next().unwrap(),
        "1: Pulling from multi",
        "{out}"
    );
    // Each platform's one layer, downloaded once.
    assert_eq!(out.matches(": Pull complete").count(), 2, "{out}");
    for arch in ARCHES {
        for l in layers_of(arch) {
            let short = &hex(&l)[..12];
            assert!(out.contains(&format!("{short}: Pull complete\n")), "{out}");
        }
    }
    assert!(
        out.ends_with(&format!(
            "Digest: {index_digest}\nStatus: Downloaded newer image for {name}\n{name}\n"
        )),
        "{out}"
    );

    // The name points at the index; the index is stored byte-exact; every platform's blobs too.
    let e = entry_for(&env, &name);
    assert_eq!(e["mediaType"], OCI_INDEX);
    assert_eq!(e["digest"], index_digest.as_str());
    assert_eq!(e["size"], index.len());
    assert_eq!(index_entries(&env).len(), 1);
    let mut want = BTreeSet::from([hex(&index_digest)]);
    for arch in ARCHES {
        want.insert(hex(&manifest_of(&index, arch)));
        want.insert(hex(&config_of(arch)));
        want.extend(layers_of(arch).iter().map(|l| hex(l)));
    }
    assert_eq!(want.len(), 7);
    assert_eq!(blobs(&env), want);
    assert_eq!(
        std::fs::read(env.root.join("blobs/sha256").join(hex(&index_digest))).unwrap(),
        index
    );

    // One image to the user: the host's platform, under the name.
    let rows = image_rows(&env);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["Repository"], reg.name("multi").as_str());
    assert_eq!(rows[0]["Tag"], "1");
    assert_eq!(rows[0]["ID"], id.as_str());
    assert_eq!(env.ok(&["images", "-q", "--no-trunc"]), format!("{id}\n"));
    let inspected = env.inspect(&name);
    assert_eq!(inspected["Id"], id.as_str());
    assert_eq!(inspected["Architecture"], arch);
    assert_eq!(inspected["RepoTags"], serde_json::json!([name]));
    assert_eq!(env.inspect(&id[7..19])["Id"], id.as_str());

    // history, export and save show what a single-platform pull of the host's image shows.
    let single = Env::new();
    single.ok(&["pull", &name]);
    assert_eq!(
        env.ok(&["history", "--no-trunc", &name]),
        single.ok(&["history", "--no-trunc", &name])
    );
    assert_eq!(
        crate::test_registry::export_digest(&env, &name),
        crate::test_registry::export_digest(&single, &name)
    );
    let saved = env.path("saved.tar");
    env.ok(&["save", "-o", s(&saved), &name]);
    let loaded = Env::new();
    loaded.ok(&["load", "-i", s(&saved)]);
    assert_eq!(loaded.inspect(&name)["Id"], id.as_str());

    // fsck checks all 7 blobs and both platforms; gc removes nothing.
    assert_eq!(
        env.ok(&["fsck"]),
        "checked 7 blobs and 1 names: 0 problems\n"
    );
    assert_eq!(env.ok(&["gc"]), "removed 0 blobs, freed 0B\n");
    assert_eq!(blobs(&env), want);
    assert_eq!(
        env.ok(&["fsck"]),
        "checked 7 blobs and 1 names: 0 problems\n"
    );

    // A second name on the image points at the index too.
    env.ok(&["tag", &name, "multi:copy"]);
    let copy = entry_for(&env, "docker.io/library/multi:copy");
    assert_eq!(copy["mediaType"], OCI_INDEX);
    assert_eq!(copy["digest"], index_digest.as_str());
    assert_eq!(env.ok(&["rmi", "multi:copy"]), "Untagged: multi:copy\n");
    assert_eq!(entry_for(&env, &name)["digest"], index_digest.as_str());

    // Pulling again changes nothing.
    let before = env.snapshot();
    let out = env.ok(&["pull", "--all-platforms", &name]);
    assert!(
        out.ends_with(&format!(
            "Digest: {index_digest}\nStatus: Image is up to date for {name}\n{name}\n"
        )),
        "{out}"
    );
    assert_eq!(out.matches(": Already exists").count(), 2, "{out}");
    assert_eq!(env.snapshot(), before);

    // Removing the name deletes the image; gc then frees every platform's blobs.
    assert_eq!(
        env.ok(&["rmi", &name]),
        format!("Untagged: {name}\nDeleted: {id}\n")
    );
    assert_eq!(index_entries(&env).len(), 0);
    assert!(
        env.ok(&["gc"]).starts_with("removed 7 blobs, freed "),
        "{:?}",
        blobs(&env)
    );
    assert_eq!(blobs(&env), BTreeSet::new());
    assert_eq!(
        env.ok(&["fsck"]),
        "checked 0 blobs and 0 names: 0 problems\n"
    );
}

#[test]
fn pull_all_platforms_over_a_single_platform_pull_leaves_one_image() {
    let Some(reg) = Registry::start() else { return };
    let Some(skopeo) = skopeo() else { return };
    let (name, index) = push_multiplatform(&reg, &skopeo);
    let arch = shown_arch();
    let other = ARCHES.into_iter().find(|a| *a != arch).unwrap();
    let id = config_of(arch);

    let env = Env::new();
    env.ok(&["pull", &name]);
    let out = env.ok(&["pull", "--all-platforms", &name]);
    // The host's layer was there; the other platform's is new. Same ID: nothing renamed.
    assert_eq!(out.matches(": Already exists").count(), 1, "{out}");
    assert_eq!(out.matches(": Pull complete").count(), 1, "{out}");
    assert!(
        out.contains(&format!(
            "{}: Pull complete\n",
            &hex(&layers_of(other)[0])[..12]
        )),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "Digest: {}\nStatus: Downloaded newer image for {name}\n{name}\n",
            digest_of(&index)
        )),
        "{out}"
    );
    // The host's manifest is reached through the index: no untagged leftover.
    let entries = index_entries(&env);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["digest"], digest_of(&index).as_str());
    assert_eq!(env.ok(&["images", "-q", "--no-trunc"]), format!("{id}\n"));
    assert_eq!(
        env.ok(&["fsck"]),
        "checked 7 blobs and 1 names: 0 problems\n"
    );

    // --all-platforms and --platform contradict each other: a usage error.
    let out = env
        .cmd(&[
            "pull",
            "--all-platforms",
            "--platform",
            "linux/amd64",
            &name,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("'--all-platforms' cannot be used with '--platform <OS/ARCH[/VARIANT]>'"),
        "{err}"
    );
}

/// A copy of the corpus layout whose index also lists a buildkit-style attestation manifest
/// (platform `unknown/unknown`, `vnd.docker.reference.type`); returns the layout directory and
/// the attestation's three blobs (manifest, config, in-toto layer).
pub(crate) fn layout_with_attestation(env: &Env) -> (std::path::PathBuf, Vec<String>) {
    let src = common::data(MULTIPLATFORM);
    let dir = env.path("layout");
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).unwrap();
    for e in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), blob_dir.join(e.file_name())).unwrap();
    }
    std::fs::copy(src.join("oci-layout"), dir.join("oci-layout")).unwrap();
    let put = |bytes: &[u8]| {
        let d = digest_of(bytes);
        std::fs::write(blob_dir.join(hex(&d)), bytes).unwrap();
        d
    };
    let amd64 = manifest_of(
        &std::fs::read(blob_dir.join(hex(&corpus_index_digest()))).unwrap(),
        "amd64",
    );
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[],"predicate":{}}"#;
    let layer = put(statement);
    let config = put(b"{}");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.in-toto+json","digest":"{layer}","size":{},"annotations":{{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v0.2"}}}}]}}"#,
        statement.len()
    );
    let attestation = put(manifest.as_bytes());
    let corpus: Value =
        serde_json::from_slice(&std::fs::read(blob_dir.join(hex(&corpus_index_digest()))).unwrap())
            .unwrap();
    let mut children = corpus["manifests"].as_array().unwrap().clone();
    children.push(serde_json::json!({
        "mediaType": OCI_MANIFEST,
        "digest": attestation,
        "size": manifest.len(),
        "annotations": {
            "vnd.docker.reference.digest": amd64,
            "vnd.docker.reference.type": "attestation-manifest"
        },
        "platform": {"architecture": "unknown", "os": "unknown"}
    }));
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children
    }))
    .unwrap();
    let index_digest = put(&index);
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_INDEX,
            "digest": index_digest,
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    (dir, vec![attestation, config, layer])
}

/// The digest of the corpus layout's (nested) image index.
fn corpus_index_digest() -> String {
    common::expected_item(MULTIPLATFORM)["oci_index"]["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn attestations_are_neither_pulled_nor_required() {
    let Some(reg) = Registry::start() else { return };
    let Some(skopeo) = skopeo() else { return };
    let work = Env::new();
    let (layout, attestation_blobs) = layout_with_attestation(&work);
    let name = reg.name("attested:1");
    common::run_ok(
        Command::new(&skopeo)
            .args(["copy", "--all", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", s(&layout)))
            .arg(format!("docker://{name}")),
    );
    let index = skopeo_inspect(&skopeo, &["--raw"], &name);
    let listed: Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 3);
    let arch = shown_arch();

    let env = Env::new();
    let out = env.ok(&["pull", "--all-platforms", &name]);
    assert!(
        out.contains(&format!("Digest: {}\n", digest_of(&index))),
        "{out}"
    );
    assert_eq!(out.matches(": Pull complete").count(), 2, "{out}");
    let mut want = BTreeSet::from([hex(&digest_of(&index))]);
    for arch in ARCHES {
        want.insert(hex(&manifest_of(&index, arch)));
        want.insert(hex(&config_of(arch)));
        want.extend(layers_of(arch).iter().map(|l| hex(l)));
    }
    assert_eq!(blobs(&env), want);
    for b in &attestation_blobs {
        assert!(!want.contains(&hex(b)), "{b}");
    }
    assert_eq!(
        std::fs::read(env.root.join("blobs/sha256").join(hex(&digest_of(&index)))).unwrap(),
        index
    );
    assert_eq!(env.inspect(&name)["Id"], config_of(arch).as_str());
    assert_eq!(
        env.ok(&["fsck"]),
        "checked 7 blobs and 1 names: 0 problems\n"
    );
    assert_eq!(env.ok(&["gc"]), "removed 0 blobs, freed 0B\n");
    assert_eq!(blobs(&env), want);

    // The default pull skips the attestation too.
    let single = Env::new();
    single.ok(&["pull", &name]);
    assert_eq!(single.inspect(&name)["Id"], config_of(arch).as_str());
}

#[test]
fn an_index_pulled_whole_is_pushed_whole() {
    let Some(reg) = Registry::start() else { return };
    let Some(skopeo) = skopeo() else { return };
    let (name, index) = push_multiplatform(&reg, &skopeo);
    let env = Env::new();
    env.ok(&["pull", "--all-platforms", &name]);

    // As stored: the same index bytes under the new name, every platform pullable from it.
    let back = reg.name("back:1");
    let out = env.ok(&["-q", "push", "--compress", "none", &name, &back]);
    assert_eq!(out, format!("{}\n", digest_of(&index)));
    assert_eq!(skopeo_inspect(&skopeo, &["--raw"], &back), index);
    for arch in ARCHES {
        let fresh = Env::new();
        fresh.ok(&["pull", "--platform", &format!("linux/{arch}"), &back]);
        assert_eq!(fresh.inspect(&back)["Id"], config_of(arch).as_str());
    }

    // An index whose attestation the store never pulled: pushed without it, the platforms'
    // entries kept in order.
    let work = Env::new();
    let (layout, _) = layout_with_attestation(&work);
    let attested = reg.name("attested:1");
    common::run_ok(
        Command::new(&skopeo)
            .args(["copy", "--all", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", s(&layout)))
            .arg(format!("docker://{attested}")),
    );
    let original: Value =
        serde_json::from_slice(&skopeo_inspect(&skopeo, &["--raw"], &attested)).unwrap();
    let store = Env::new();
    store.ok(&["pull", "--all-platforms", &attested]);
    let trimmed = reg.name("trimmed:1");
    let out = store
        .cmd(&["-q", "push", "--compress", "none", &attested, &trimmed])
        .output()
        .unwrap();
    assert!(out.status.success());
    let digest = String::from_utf8(out.stdout).unwrap();
    // Said, not silent.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "hoist: warning: 1 entries of index {} are not copied",
            digest_of(&skopeo_inspect(&skopeo, &["--raw"], &attested))
        )),
        "{err}"
    );
    let raw = skopeo_inspect(&skopeo, &["--raw"], &trimmed);
    assert_eq!(format!("{}\n", digest_of(&raw)), digest);
    let pushed: Value = serde_json::from_slice(&raw).unwrap();
    let platforms: Vec<&Value> = original["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["platform"]["os"] != "unknown")
        .collect();
    assert_eq!(platforms.len(), 2);
    assert_eq!(
        pushed["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        platforms
    );
}
