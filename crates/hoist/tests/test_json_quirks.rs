//! Archives whose JSON only Go's lenient `encoding/json` reads: duplicate keys, `null` for
//! strings and lists, huge numbers and deep nesting in members docker does not model,
//! `"Layers": null`, bytes after `manifest.json`'s value. Each archive is generated here.
//!
//! - docker archives: hoist must load each to the image ID that is the sha256 of the config bytes
//!   as written, and (in CI, where a dockerd runs) docker 20.10 must load the same archive to the
//!   same ID; what docker refuses (nesting beyond 10,000 levels, fields of the wrong type), hoist
//!   refuses too;
//! - OCI archives (containerd reads them with the same Go rules): loaded, kept byte for byte, read
//!   back from the store, and copied;
//! - `copy` reads archives on a path of its own: it must be as lenient.

use std::path::Path;

use crate::common::{self, DockerNames, Env};

/// Go's `maxNestingDepth` (encoding/json/scanner.go).
const GO_MAX_NESTING: usize = 10_000;

/// A small layer tar (one file) and its diff_id.
fn layer() -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    let content = b"lenient\n";
    let mut h = common::tar_header(tar::EntryType::Regular, 0o644, content.len() as u64);
    b.append_data(&mut h, "hello.txt", &content[..]).unwrap();
    let bytes = b.into_inner().unwrap();
    let diff_id = format!("sha256:{}", common::sha256(&bytes));
    (bytes, diff_id)
}

/// `depth` nested arrays around `1`.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// A config: `members`, then a rootfs listing `diff_ids`.
fn config(members: &str, diff_ids: &[&str]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{{members},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    )
    .into_bytes()
}

/// Writes a docker archive (docker 1.10–24 shape): `<hex>.json`, `layer.tar` if given, and
/// `manifest_json` with `{config}` standing for the config's file name and `{name}` for the
/// image's name.
fn write_archive(
    path: &Path,
    config: &[u8],
    layer: Option<&[u8]>,
    manifest_json: &str,
    name: &str,
) {
    let config_name = format!("{}.json", common::sha256(config));
    let manifest = manifest_json
        .replace("{config}", &config_name)
        .replace("{name}", name);
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut files: Vec<(&str, &[u8])> = vec![(&config_name, config)];
    if let Some(layer) = layer {
        files.push(("layer.tar", layer));
    }
    files.push(("manifest.json", manifest.as_bytes()));
    for (file, bytes) in files {
        let mut h = common::tar_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        b.append_data(&mut h, file, bytes).unwrap();
    }
    b.finish().unwrap();
}

/// The usual `manifest.json` of one image with one layer.
const MANIFEST_ONE_LAYER: &str =
    r#"[{"Config":"{config}","RepoTags":["{name}"],"Layers":["layer.tar"]}]"#;

/// One archive to load: what it shows, its config and its `manifest.json`.
struct Case {
    what: &'static str,
    config: Vec<u8>,
    with_layer: bool,
    manifest_json: &'static str,
    /// The `Os` and `Architecture` the image must have.
    platform: (&'static str, &'static str),
}

fn cases() -> Vec<Case> {
    let (_, diff_id) = layer();
    let one = [diff_id.as_str()];
    let case = |what, members: String| Case {
        what,
        config: config(&members, &one),
        with_layer: true,
        manifest_json: MANIFEST_ONE_LAYER,
        platform: ("linux", "amd64"),
    };
    vec![
        case(
            "a duplicate key: the last wins",
            r#""architecture":"amd64","os":"windows","os":"linux""#.into(),
        ),
        Case {
            platform: ("linux", ""),
            ..case(
                "null for strings, lists and the runtime config",
                r#""architecture":null,"os":"linux","variant":null,"config":null,"history":null"#
                    .into(),
            )
        },
        case(
            "an unknown key with a number no float holds",
            r#""architecture":"amd64","os":"linux","x":1e999999,"config":{"Cmd":["/x"],"y":-1e999999}"#
                .into(),
        ),
        case(
            "an unknown key nested 200 deep",
            format!(
                r#""architecture":"amd64","os":"linux","x":{},"config":{{"y":{}}}"#,
                nested(200),
                nested(200)
            ),
        ),
        case(
            "an unknown key nested to Go's limit",
            // The config object is the first level.
            format!(
                r#""architecture":"amd64","os":"linux","x":{}"#,
                nested(GO_MAX_NESTING - 1)
            ),
        ),
        Case {
            what: "\"Layers\": null for an image without layers",
            config: config(r#""architecture":"amd64","os":"linux""#, &[]),
            with_layer: false,
            manifest_json: r#"[{"Config":"{config}","RepoTags":["{name}"],"Layers":null}]"#,
            platform: ("linux", "amd64"),
        },
        Case {
            manifest_json: "[{\"Config\":\"wrong.json\",\"repotags\":[\"{name}\"],\"layers\":[\"layer.tar\"],\"Config\":\"{config}\"}]\ntrailing bytes {",
            ..case(
                "manifest.json: case-insensitive and duplicate keys, bytes after the value",
                r#""architecture":"amd64","os":"linux""#.into(),
            )
        },
    ]
}

/// What the store holds for an image. (Not read with `hoist inspect`: it shows the config's
/// runtime config as written, which a test's serde_json cannot parse when it holds `1e999999`
/// or nests beyond serde_json's 128 levels.)
struct Stored {
    /// The image ID `hoist images` shows.
    id: String,
    /// The digest of its manifest.
    manifest_digest: String,
    /// The manifest's bytes.
    manifest: Vec<u8>,
}

impl Stored {
    fn of(env: &Env, name: &str) -> Stored {
        let (repo, tag) = name.rsplit_once(':').unwrap();
        let images = env.ok(&["images", "--format", "json", "--no-trunc"]);
        let id = images
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["Repository"] == repo && v["Tag"] == tag)
            .unwrap_or_else(|| panic!("{name} not in {images}"))["ID"]
            .as_str()
            .unwrap()
            .to_string();
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.root.join("index.json")).unwrap()).unwrap();
        let full = format!("docker.io/library/{name}");
        let desc = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["io.containerd.image.name"] == full.as_str())
            .unwrap_or_else(|| panic!("{full} not in the store's index.json"));
        let digest = desc["digest"].as_str().unwrap();
        let blob = env
            .root
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]);
        Stored {
            id,
            manifest_digest: digest.to_string(),
            manifest: std::fs::read(blob).unwrap(),
        }
    }

    /// OS, architecture and layer count of a manifest hoist made from a docker archive's
    /// config (docker 25's shape: the platform is on the config descriptor).
    fn synthesized(&self) -> ((String, String), usize) {
        let manifest: serde_json::Value = serde_json::from_slice(&self.manifest).unwrap();
        assert_eq!(
            manifest["config"]["digest"].as_str(),
            Some(self.id.as_str())
        );
        let platform = &manifest["config"]["platform"];
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        (
            (text(&platform["os"]), text(&platform["architecture"])),
            manifest["layers"].as_array().unwrap().len(),
        )
    }
}

#[test]
fn archives_docker_reads_leniently_load_to_the_config_digest() {
    let docker = common::docker();
    let (layer_tar, _) = layer();
    let env = Env::new();
    let cases = cases();
    let names: Vec<String> = (0..cases.len())
        .map(|i| format!("{}:{i}", common::unique("hoist-json-quirk")))
        .collect();
    let _cleanup = docker.as_ref().map(|docker| DockerNames {
        docker,
        names: names.clone(),
    });
    for (i, (case, name)) in cases.iter().zip(&names).enumerate() {
        let archive = env.path(&format!("quirk-{i}.tar"));
        write_archive(
            &archive,
            &case.config,
            case.with_layer.then_some(&layer_tar[..]),
            case.manifest_json,
            name,
        );
        let id = format!("sha256:{}", common::sha256(&case.config));

        let out = env.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(out, format!("Loaded image: {name}\n"), "{}", case.what);
        let stored = Stored::of(&env, name);
        assert_eq!(stored.id, id, "{}", case.what);
        let ((os, arch), layers) = stored.synthesized();
        assert_eq!((os.as_str(), arch.as_str()), case.platform, "{}", case.what);
        assert_eq!(layers, usize::from(case.with_layer), "{}", case.what);

        if let Some(docker) = &docker {
            let out = docker.ok(&["load", "-i", archive.to_str().unwrap()]);
            assert!(
                out.contains(&format!("Loaded image: {name}")),
                "{}: {out}",
                case.what
            );
            let docker_id = docker.ok(&["image", "inspect", "--format", "{{.Id}}", name]);
            assert_eq!(docker_id.trim(), id, "{}: docker's ID", case.what);
            let os = docker.ok(&["image", "inspect", "--format", "{{.Os}}", name]);
            assert_eq!(os.trim(), case.platform.0, "{}: docker's Os", case.what);
        }
    }
    let fsck = env.ok(&["fsck"]);
    assert!(fsck.contains(" 0 problems"), "{fsck}");
}

#[test]
fn what_docker_refuses_hoist_refuses() {
    let docker = common::docker();
    let (layer_tar, diff_id) = layer();
    let env = Env::new();
    let name = format!("{}:refused", common::unique("hoist-json-refused"));
    let _cleanup = docker.as_ref().map(|docker| DockerNames {
        docker,
        names: vec![name.clone()],
    });
    for (what, members, message) in [
        (
            "nesting one level beyond Go's limit",
            format!(
                r#""architecture":"amd64","os":"linux","x":{}"#,
                nested(GO_MAX_NESTING)
            ),
            "nesting deeper than 10000",
        ),
        (
            "a string where docker's struct has a list",
            r#""architecture":"amd64","os":"linux","config":{"Env":"A=1"}"#.to_string(),
            "field \"config.Env\"",
        ),
        (
            "a created that is not RFC 3339",
            r#""architecture":"amd64","os":"linux","created":"yesterday""#.to_string(),
            "field \"created\"",
        ),
    ] {
        let archive = env.path("refused.tar");
        let config = config(&members, &[&diff_id]);
        write_archive(
            &archive,
            &config,
            Some(&layer_tar),
            MANIFEST_ONE_LAYER,
            &name,
        );
        let err = env.fails(&["load", "-i", archive.to_str().unwrap()]);
        assert!(err.contains(message), "{what}: {err}");
        if let Some(docker) = &docker {
            let out = docker
                .cmd(&["load", "-i", archive.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                !out.status.success(),
                "{what}: docker loaded it: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    let images = env.ok(&["images", "-q"]);
    assert_eq!(images, "", "nothing was loaded");
}

/// Writes an OCI archive: `oci-layout`, `index.json` and `blobs/sha256/<hex>` of `blobs`.
fn write_oci_archive(path: &Path, index_json: &str, blobs: &[&[u8]]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut files: Vec<(String, &[u8])> = vec![
        ("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json".into(), index_json.as_bytes()),
    ];
    for blob in blobs {
        files.push((format!("blobs/sha256/{}", common::sha256(blob)), blob));
    }
    for (file, bytes) in files {
        let mut h = common::tar_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        b.append_data(&mut h, file, bytes).unwrap();
    }
    b.finish().unwrap();
}

/// A descriptor's JSON.
fn descriptor(media_type: &str, blob: &[u8], extra: &str) -> String {
    format!(
        r#"{{"mediaType":"{media_type}","digest":"sha256:{}","size":{}{extra}}}"#,
        common::sha256(blob),
        blob.len()
    )
}

/// OCI indexes and manifests are read with Go's rules too (containerd decodes them into
/// image-spec's Go types): hoist loads such an archive, keeps the manifest's bytes (so its
/// digest), reads it back from the store, and copies it from the archive.
#[test]
fn oci_documents_are_read_with_gos_rules() {
    let (layer_tar, diff_id) = layer();
    let env = Env::new();
    let config = config(
        r#""architecture":"amd64","os":"windows","os":"linux","x":1e999999"#,
        &[&diff_id],
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}],"annotations":null,"deep":{},"huge":-1e999999}}"#,
        descriptor("application/vnd.oci.image.config.v1+json", &config, ""),
        descriptor(
            "application/vnd.oci.image.layer.v1.tar",
            &layer_tar,
            r#","Annotations":{"a":"b"},"unknown":1e999999"#
        ),
        nested(300),
    );
    let name = "docker.io/library/oci-quirk:1";
    // The first "manifests" names a blob the archive lacks: only the last one may be used.
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{}],"x":{},"Manifests":[{}]}}"#,
        descriptor(
            "application/vnd.oci.image.manifest.v1+json",
            b"not in the archive",
            ""
        ),
        nested(300),
        descriptor(
            "application/vnd.oci.image.manifest.v1+json",
            manifest.as_bytes(),
            &format!(r#","annotations":{{"io.containerd.image.name":"{name}"}}"#)
        ),
    );
    let archive = env.path("quirk-oci.tar");
    write_oci_archive(
        &archive,
        &index,
        &[&config, manifest.as_bytes(), &layer_tar],
    );

    let out = env.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: oci-quirk:1\n");
    let stored = Stored::of(&env, "oci-quirk:1");
    assert_eq!(stored.id, format!("sha256:{}", common::sha256(&config)));
    assert_eq!(
        stored.manifest,
        manifest.as_bytes(),
        "the manifest is kept as received"
    );
    let manifest_digest = stored.manifest_digest;
    // Read back from the store: the config's last "os".
    let v = env.inspect("oci-quirk:1");
    assert_eq!(
        (v["Os"].as_str(), v["Id"].as_str()),
        (Some("linux"), Some(stored.id.as_str()))
    );
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!([diff_id]));
    let fsck = env.ok(&["fsck"]);
    assert!(fsck.contains(" 0 problems"), "{fsck}");

    // `copy` reads archives on its own path: the same documents, the same manifest.
    let layout = env.path("layout");
    let copied = env.ok(&[
        "copy",
        &format!("oci-archive:{}", archive.to_str().unwrap()),
        &format!("oci:{}:x", layout.to_str().unwrap()),
    ]);
    assert_eq!(copied.trim(), manifest_digest);
}

/// `copy` reads a docker archive's `manifest.json` and config with the same rules as `load`.
#[test]
fn copy_reads_a_lenient_docker_archive() {
    let (layer_tar, diff_id) = layer();
    let env = Env::new();
    let config = config(
        &format!(
            r#""os":"linux","architecture":null,"architecture":"amd64","x":{}"#,
            nested(300)
        ),
        &[&diff_id],
    );
    let archive = env.path("quirk.tar");
    write_archive(
        &archive,
        &config,
        Some(&layer_tar),
        "[{\"config\":\"{config}\",\"RepoTags\":[\"{name}\"],\"Layers\":[\"layer.tar\"],\"Parent\":null}] trailing",
        "quirk:1",
    );
    let layout = env.path("layout");
    env.ok(&[
        "copy",
        &format!("docker-archive:{}", archive.to_str().unwrap()),
        &format!("oci:{}:x", layout.to_str().unwrap()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&digest["sha256:".len()..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["config"]["digest"],
        format!("sha256:{}", common::sha256(&config))
    );
    assert_eq!(manifest["config"]["platform"]["architecture"], "amd64");
}

/// The config of `name` as stored.
fn stored_config(env: &Env, name: &str) -> Vec<u8> {
    let stored = Stored::of(env, name);
    let manifest: serde_json::Value = serde_json::from_slice(&stored.manifest).unwrap();
    let digest = manifest["config"]["digest"].as_str().unwrap();
    std::fs::read(
        env.root
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]),
    )
    .unwrap()
}

#[test]
fn squash_and_commit_keep_the_members_hoist_does_not_model() {
    // Members serde_json cannot hold (a number out of f64's range, nesting beyond 128) survive
    // squash and commit as they were; rootfs and history are rewritten.
    let (layer_tar, diff_id) = layer();
    let env = Env::new();
    let deep = nested(200);
    let members = format!(
        r#""architecture":"amd64","os":"linux","x":1e999999,"deep":{deep},"config":{{"Cmd":["/hello.txt"]}}"#
    );
    let archive = env.path("quirky.tar");
    write_archive(
        &archive,
        &config(&members, &[&diff_id]),
        Some(&layer_tar),
        MANIFEST_ONE_LAYER,
        "quirky:1",
    );
    env.ok(&["load", "-i", archive.to_str().unwrap()]);
    env.ok(&["squash", "-q", "-t", "quirky:squashed", "quirky:1"]);
    let cid = env.ok(&["create", "quirky:1"]).trim().to_string();
    env.ok(&["commit", &cid, "quirky:committed"]);
    for name in ["quirky:squashed", "quirky:committed"] {
        let cfg = String::from_utf8(stored_config(&env, name)).unwrap();
        assert!(cfg.contains(r#""x":1e999999"#), "{name}: {cfg}");
        assert!(cfg.contains(&format!(r#""deep":{deep}"#)), "{name}: {cfg}");
        let rootfs_at = cfg.find(r#""rootfs":"#).unwrap();
        let diff_ids = cfg[rootfs_at..].matches("sha256:").count();
        let want = if name.ends_with("squashed") { 1 } else { 2 };
        assert_eq!(diff_ids, want, "{name}: {cfg}");
        assert!(cfg.contains(r#""history":["#), "{name}: {cfg}");
    }
}
