//! Interop with the real peers: what hoist writes, docker, podman, skopeo, umoci and containerd
//! read back as the same images (same IDs, names, digests, files), and what they write, hoist
//! reads. Every test asserts exact facts. Peers missing on a laptop: the test says so and
//! returns; in CI (`CI=true`) a missing peer fails.
//!
//! Tests run in parallel threads against one shared dockerd/containerd: every test has its own
//! temporary store and peer roots, and uses `common::unique` names in the shared daemons.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use serde_json::Value;

use crate::common::{self, Ctr, Docker, Env, Podman};

const MULTI: &str = "docker-v1.2_docker20_multi_dive-derived.tar";
const DERIVED_V1: &str = "corpus/dive-derived:v1";
const DERIVED_ALIAS: &str = "corpus/dive-derived:alias";
const DIVE: &str = "dive-test:latest";
/// The config digests (image IDs) of the two images of `MULTI`, from expected.json.
fn multi_ids() -> (String, String) {
    let item = common::expected_item(MULTI);
    let id = |tag: &str| {
        item["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| {
                i["repo_tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == tag))
            })
            .unwrap_or_else(|| panic!("{tag} not in expected.json"))["config_digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    (id(DERIVED_V1), id(DIVE))
}

// ---------------------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------------------

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A store with the corpus' multi-image archive loaded (2 images, 3 names, shared layers).
fn multi_env() -> Env {
    let env = Env::new();
    let out = env.ok(&["load", "-i", s(&common::data(MULTI))]);
    assert_eq!(
        sorted_lines(&out),
        sorted(&[
            &format!("Loaded image: {DERIVED_ALIAS}"),
            &format!("Loaded image: {DERIVED_V1}"),
            &format!("Loaded image: {DIVE}"),
        ])
    );
    env
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// `from | to`: real OS pipe between two processes. Returns `from`'s status and `to`'s output.
fn pipe(mut from: Command, mut to: Command) -> (ExitStatus, Output) {
    from.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut a = from.spawn().unwrap();
    let out = to.stdin(a.stdout.take().unwrap()).output().unwrap();
    let st = a.wait().unwrap();
    (st, out)
}

fn run_out(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One image as an OCI layout (archive) describes it.
#[derive(Debug, Clone, PartialEq)]
struct OciImage {
    /// `io.containerd.image.name`
    containerd_name: Option<String>,
    /// `org.opencontainers.image.ref.name`
    ref_name: Option<String>,
    manifest_digest: String,
    config_digest: String,
    layers: Vec<String>,
}

/// The images of an OCI layout, read by `read(path in layout)`.
fn oci_images(read: impl Fn(&str) -> Vec<u8>) -> Vec<OciImage> {
    let index: Value = serde_json::from_slice(&read("index.json")).unwrap();
    let mut out = Vec::new();
    for d in index["manifests"].as_array().unwrap() {
        let digest = d["digest"].as_str().unwrap().to_string();
        let bytes = read(&format!(
            "blobs/sha256/{}",
            digest.strip_prefix("sha256:").unwrap()
        ));
        assert_eq!(
            format!("sha256:{}", common::sha256(&bytes)),
            digest,
            "manifest blob"
        );
        let m: Value = serde_json::from_slice(&bytes).unwrap();
        let ann = |k: &str| d["annotations"][k].as_str().map(str::to_string);
        out.push(OciImage {
            containerd_name: ann("io.containerd.image.name"),
            ref_name: ann("org.opencontainers.image.ref.name"),
            manifest_digest: digest,
            config_digest: m["config"]["digest"].as_str().unwrap().to_string(),
            layers: m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_string())
                .collect(),
        });
    }
    out
}

fn oci_images_in_tar(archive: &Path) -> Vec<OciImage> {
    oci_images(|p| common::file_in_tar(archive, p))
}

fn oci_images_in_dir(dir: &Path) -> Vec<OciImage> {
    oci_images(|p| std::fs::read(dir.join(p)).unwrap())
}

/// The image of a layout whose `io.containerd.image.name` is `name`.
fn by_name<'a>(images: &'a [OciImage], name: &str) -> &'a OciImage {
    images
        .iter()
        .find(|i| i.containerd_name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{name} not in {images:#?}"))
}

fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

use common::DockerNames;

fn docker_id(docker: &Docker, name: &str) -> String {
    docker
        .ok(&["image", "inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. docker: build a real image, docker save -> hoist load -> hoist save -> docker load
// ---------------------------------------------------------------------------------------------

use common::BUSYBOX;

const DOCKERFILE: &str = r#"FROM {BASE}
RUN rm /data/old.txt && rm -r /data/olddir && mkdir /data/new && echo built > /data/new/f
COPY hello.txt /data/hello.txt
ENV GREETING="hello hoist"
WORKDIR /data
CMD ["sh", "-c", "echo $GREETING; pwd; ls -a /data; cat /data/hello.txt /data/new/f"]
"#;

/// What the built image prints when run: the RUN deletions, the COPY, ENV and WORKDIR show.
const RUN_OUTPUT: &str = "hello hoist\n/data\n.\n..\nhello.txt\nkeep.txt\nnew\ncopied\nbuilt\n";

fn docker_run(docker: &Docker, image: &str) -> String {
    docker.ok(&["run", "--rm", "--network", "none", image])
}

#[test]
fn docker_build_save_hoist_load_save_docker_load_round_trip() {
    let Some(docker) = common::docker() else {
        return;
    };
    if !Path::new(BUSYBOX).exists() {
        assert!(
            !common::in_ci(),
            "{BUSYBOX} is required in CI: apt-get install -y busybox-static"
        );
        eprintln!("skipped: {BUSYBOX} not found (apt-get install -y busybox-static)");
        return;
    }
    let env = Env::new();
    let base = format!("{}:1", common::unique("hoist-interop-base"));
    let repo = common::unique("hoist-interop-rt");
    let (t1, t2, t3) = (
        format!("{repo}:v1"),
        format!("{repo}:alias"),
        format!("{repo}:piped"),
    );
    let _cleanup = DockerNames {
        docker: &docker,
        names: vec![t1.clone(), t2.clone(), t3.clone(), base.clone()],
    };

    // Build: docker import of a busybox rootfs, then a Dockerfile on top (legacy builder).
    let rootfs = env.path("rootfs.tar");
    common::busybox_rootfs_tar(&rootfs, |_| {});
    docker.ok(&["import", s(&rootfs), &base]);
    let ctx = env.path("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE.replace("{BASE}", &base)).unwrap();
    std::fs::write(ctx.join("hello.txt"), "copied\n").unwrap();
    common::run_ok(
        docker
            .cmd(&["build", "-q", "-t", &t1, "-t", &t2, s(&ctx)])
            .env("DOCKER_BUILDKIT", "0"),
    );
    let id = docker_id(&docker, &t1);
    assert_eq!(docker_id(&docker, &t2), id);
    let diff_ids: Value = serde_json::from_str(&docker.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        &t1,
    ]))
    .unwrap();
    // import layer + RUN layer + COPY layer
    assert_eq!(diff_ids.as_array().unwrap().len(), 3, "{diff_ids}");
    assert_eq!(docker_run(&docker, &t1), RUN_OUTPUT);

    // docker save -> hoist load
    let saved = env.path("docker-saved.tar");
    docker.ok(&["save", "-o", s(&saved), &t1, &t2]);
    let out = env.ok(&["load", "-i", s(&saved)]);
    assert_eq!(
        sorted_lines(&out),
        sorted(&[
            &format!("Loaded image: {t1}"),
            &format!("Loaded image: {t2}")
        ])
    );
    let inspect = env.inspect(&t1);
    assert_eq!(inspect["Id"], id.as_str());
    assert_eq!(
        json_strings(&inspect["RepoTags"])
            .into_iter()
            .collect::<BTreeSet<_>>(),
        { BTreeSet::from([t1.clone(), t2.clone()]) }
    );
    assert_eq!(inspect["RootFS"]["Layers"], diff_ids);
    assert_eq!(inspect["Config"]["WorkingDir"], "/data");
    assert!(
        json_strings(&inspect["Config"]["Env"]).contains(&"GREETING=hello hoist".to_string()),
        "{}",
        inspect["Config"]["Env"]
    );
    assert_eq!(env.inspect(&t2)["Id"], id.as_str());

    // hoist save -> docker rmi (everything, so the load must really recreate the layers) -> docker load
    let hoisted = env.path("hoist-saved.tar");
    env.ok(&["save", "-o", s(&hoisted), &t1, &t2]);
    docker.ok(&["rmi", &t1, &t2, &base]);
    let gone = run_out(&mut docker.cmd(&["image", "inspect", &id]));
    assert!(
        !gone.status.success(),
        "{id} should be gone from docker after rmi"
    );
    let out = docker.ok(&["load", "-i", s(&hoisted)]);
    assert_eq!(
        sorted_lines(&out),
        sorted(&[
            &format!("Loaded image: {t1}"),
            &format!("Loaded image: {t2}")
        ])
    );
    assert_eq!(docker_id(&docker, &t1), id);
    assert_eq!(docker_id(&docker, &t2), id);
    let tags: Value =
        serde_json::from_str(&docker.ok(&["image", "inspect", "-f", "{{json .RepoTags}}", &id]))
            .unwrap();
    assert_eq!(
        json_strings(&tags).into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([t1.clone(), t2.clone()])
    );
    assert_eq!(docker_run(&docker, &t2), RUN_OUTPUT);

    // Pipes: docker save | hoist load (stdin), and hoist save (stdout) | docker load.
    let env2 = Env::new();
    let (st, out) = pipe(docker.cmd(&["save", &t1]), env2.cmd(&["load"]));
    assert!(st.success());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("Loaded image: {t1}\n")
    );
    assert_eq!(env2.inspect(&t1)["Id"], id.as_str());
    env2.ok(&["tag", &t1, &t3]);
    let (st, out) = pipe(env2.cmd(&["save", "-o", "-", &t3]), docker.cmd(&["load"]));
    assert!(st.success(), "hoist save -o - failed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("Loaded image: {t3}\n")
    );
    assert_eq!(docker_id(&docker, &t3), id);
    assert_eq!(docker_run(&docker, &t3), RUN_OUTPUT);
}

// ---------------------------------------------------------------------------------------------
// 6. docker load of a hoist archive with two images sharing layers, three names
// ---------------------------------------------------------------------------------------------

#[test]
fn docker_loads_hoist_multi_image_archive_with_shared_layers() {
    let Some(docker) = common::docker() else {
        return;
    };
    let env = multi_env();
    let (derived_id, dive_id) = multi_ids();
    // Unique names: the corpus names may be loaded by other tests into the shared daemon.
    let u = common::unique("hoist-interop-multi");
    let names = [
        (format!("{u}/derived:v1"), DERIVED_V1, &derived_id),
        (format!("{u}/derived:alias"), DERIVED_ALIAS, &derived_id),
        (format!("{u}/dive:latest"), DIVE, &dive_id),
    ];
    let _cleanup = DockerNames {
        docker: &docker,
        names: names.iter().map(|n| n.0.clone()).collect(),
    };
    for (new, old, _) in &names {
        env.ok(&["tag", old, new]);
    }
    let mut loaded: Vec<String> = names
        .iter()
        .map(|n| format!("Loaded image: {}", n.0))
        .collect();
    loaded.sort();

    for format in ["docker", "docker-legacy"] {
        let archive = env.path(&format!("multi-{format}.tar"));
        let mut args = vec!["save", "--format", format, "-o", s(&archive)];
        args.extend(names.iter().map(|n| n.0.as_str()));
        env.ok(&args);
        if format == "docker" {
            // The 14 shared layers are written once: 17 distinct layers + 2 configs + 2 manifests.
            let blobs = common::tar_paths(&archive)
                .into_iter()
                .filter(|p| p.starts_with("blobs/sha256/") && p.len() > "blobs/sha256/".len())
                .count();
            assert_eq!(blobs, 17 + 2 + 2);
        }
        let out = docker.ok(&["load", "-i", s(&archive)]);
        assert_eq!(
            sorted_lines(&out),
            loaded,
            "docker load of hoist --format {format}"
        );
        for (name, _, id) in &names {
            assert_eq!(
                &docker_id(&docker, name),
                *id,
                "{name} after --format {format}"
            );
        }
        // Next round: the names must come back from the next archive.
        for (name, _, _) in &names {
            docker.ok(&["rmi", name]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. podman load
// ---------------------------------------------------------------------------------------------

#[test]
fn podman_loads_hoist_docker_and_oci_archives() {
    let env = multi_env();
    let Some(podman_d) = Podman::new(&env, "d") else {
        return;
    };
    let Some(podman_o) = Podman::new(&env, "o") else {
        return;
    };
    let (derived_id, dive_id) = multi_ids();

    // --format docker, 2 images / 3 names. podman reads it through its docker-archive transport
    // (manifest.json RepoTags), not the OCI index (where docker 25 puts only the tag in
    // org.opencontainers.image.ref.name), and qualifies short names with `localhost/`: exactly
    // what it does with docker's own `docker save` archive of the same images.
    let d = env.path("d.tar");
    env.ok(&["save", "-o", s(&d), DERIVED_V1, DERIVED_ALIAS, DIVE]);
    let out = podman_d.ok(&["load", "-q", "-i", s(&d)]);
    assert_eq!(
        sorted_lines(&out),
        sorted(&[
            "Loaded image: localhost/corpus/dive-derived:alias",
            "Loaded image: localhost/corpus/dive-derived:v1",
            "Loaded image: localhost/dive-test:latest",
        ])
    );
    let images = podman_d.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(
        sorted_lines(&images),
        sorted(&[
            &format!("{derived_id} localhost/corpus/dive-derived:alias"),
            &format!("{derived_id} localhost/corpus/dive-derived:v1"),
            &format!("{dive_id} localhost/dive-test:latest"),
        ])
    );

    // --format oci, one image (podman 4.3 refuses an oci-archive with several images: "more
    // than one image in oci, choose an image"). The full name in ref.name is kept as is, and
    // podman's digest is hoist's manifest digest.
    let o = env.path("o.tar");
    env.ok(&["save", "--format", "oci", "-o", s(&o), DIVE]);
    let oci = oci_images_in_tar(&o);
    assert_eq!(oci.len(), 1);
    let out = podman_o.ok(&["load", "-q", "-i", s(&o)]);
    assert_eq!(out, "Loaded image: docker.io/library/dive-test:latest\n");
    let images = podman_o.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}} {{.Digest}}",
    ]);
    assert_eq!(
        images,
        format!(
            "{dive_id} docker.io/library/dive-test:latest {}\n",
            oci[0].manifest_digest
        )
    );
}

// ---------------------------------------------------------------------------------------------
// 3. skopeo
// ---------------------------------------------------------------------------------------------

fn skopeo_json(bin: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&common::run_ok(Command::new(bin).args(args))).unwrap()
}

/// sha256 of `skopeo inspect --raw --config REF`: the config's digest, i.e. the image ID.
fn skopeo_config_digest(bin: &Path, reference: &str) -> String {
    let out = run_out(Command::new(bin).args(["inspect", "--raw", "--config", reference]));
    assert!(
        out.status.success(),
        "{reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("sha256:{}", common::sha256(&out.stdout))
}

#[test]
fn skopeo_reads_hoist_archives_and_store() {
    let Some(bin) = common::peer("skopeo") else {
        return;
    };
    let env = multi_env();
    let (derived_id, dive_id) = multi_ids();
    let expected_layers: Vec<String> = common::expected_item(MULTI)["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["config_digest"] == dive_id.as_str())
        .map(|i| json_strings(&i["diff_ids"]))
        .unwrap();

    let d = env.path("d.tar");
    env.ok(&["save", "-o", s(&d), DIVE]);
    let o = env.path("o.tar");
    env.ok(&["save", "--format", "oci", "-o", s(&o), DIVE]);
    let m = env.path("m.tar");
    env.ok(&["save", "-o", s(&m), DERIVED_V1, DERIVED_ALIAS, DIVE]);

    let d_oci = oci_images_in_tar(&d);
    assert_eq!(d_oci.len(), 1);
    let d_img = &d_oci[0];
    // Docker 25 shape: the tag alone in ref.name, the full name for containerd.
    assert_eq!(d_img.ref_name.as_deref(), Some("latest"));
    assert_eq!(
        d_img.containerd_name.as_deref(),
        Some("docker.io/library/dive-test:latest")
    );
    assert_eq!(d_img.config_digest, dive_id);
    assert_eq!(d_img.layers, expected_layers);
    let o_oci = oci_images_in_tar(&o);
    assert_eq!(o_oci.len(), 1);
    assert_eq!(o_oci[0].config_digest, dive_id);
    assert_eq!(o_oci[0].layers, expected_layers);

    // docker-archive: skopeo synthesizes its own schema2 manifest from manifest.json, so its
    // Digest is not hoist's; the layers and the config are.
    let da = format!("docker-archive:{}", s(&d));
    let v = skopeo_json(&bin, &["inspect", &da]);
    assert_eq!(json_strings(&v["Layers"]), expected_layers);
    let raw = skopeo_json(&bin, &["inspect", "--raw", &da]);
    assert_eq!(raw["config"]["digest"], dive_id.as_str());
    assert_eq!(skopeo_config_digest(&bin, &da), dive_id);
    let cfg = skopeo_json(&bin, &["inspect", "--config", &da]);
    assert_eq!(json_strings(&cfg["rootfs"]["diff_ids"]), expected_layers);

    // The docker format's OCI view: the manifest hoist wrote, found by the (tag-only) ref name too.
    for r in [
        format!("oci-archive:{}", s(&d)),
        format!("oci-archive:{}:latest", s(&d)),
    ] {
        let v = skopeo_json(&bin, &["inspect", &r]);
        assert_eq!(v["Digest"], d_img.manifest_digest.as_str(), "{r}");
        assert_eq!(json_strings(&v["Layers"]), expected_layers, "{r}");
        assert_eq!(skopeo_config_digest(&bin, &r), dive_id, "{r}");
    }

    // --format oci
    for r in [
        format!("oci-archive:{}", s(&o)),
        format!("oci-archive:{}:docker.io/library/dive-test:latest", s(&o)),
    ] {
        let v = skopeo_json(&bin, &["inspect", &r]);
        assert_eq!(v["Digest"], o_oci[0].manifest_digest.as_str(), "{r}");
        assert_eq!(json_strings(&v["Layers"]), expected_layers, "{r}");
        assert_eq!(skopeo_config_digest(&bin, &r), dive_id, "{r}");
    }

    // A multi-image docker archive: each name finds its image.
    for (name, id) in [
        (DERIVED_V1, &derived_id),
        (DERIVED_ALIAS, &derived_id),
        (DIVE, &dive_id),
    ] {
        let r = format!("docker-archive:{}:{name}", s(&m));
        assert_eq!(&skopeo_config_digest(&bin, &r), id, "{r}");
    }

    // The store itself is an OCI layout with full names.
    let store = oci_images_in_dir(&env.root);
    let in_store = by_name(&store, "docker.io/library/dive-test:latest");
    assert_eq!(
        in_store.ref_name.as_deref(),
        Some("docker.io/library/dive-test:latest")
    );
    let r = format!("oci:{}:docker.io/library/dive-test:latest", s(&env.root));
    let v = skopeo_json(&bin, &["inspect", &r]);
    assert_eq!(v["Digest"], in_store.manifest_digest.as_str());
    assert_eq!(json_strings(&v["Layers"]), expected_layers);
    assert_eq!(skopeo_config_digest(&bin, &r), dive_id);
    let r = format!("oci:{}:docker.io/corpus/dive-derived:alias", s(&env.root));
    assert_eq!(skopeo_config_digest(&bin, &r), derived_id);

    // skopeo copy oci-archive -> oci dir -> hoist load: same image ID, skopeo's name.
    let copy_name = format!("{}:copied", common::unique("hoist-interop-skopeo"));
    let dir = env.path("skopeo-oci");
    common::run_ok(Command::new(&bin).args([
        "copy",
        "-q",
        &format!("oci-archive:{}", s(&o)),
        &format!("oci:{}:docker.io/library/{copy_name}", s(&dir)),
    ]));
    let env2 = Env::new();
    let out = env2.ok(&["load", "-i", s(&dir)]);
    assert_eq!(out, format!("Loaded image: {copy_name}\n"));
    assert_eq!(env2.inspect(&copy_name)["Id"], dive_id.as_str());

    // skopeo copy docker-archive -> oci dir -> hoist load. Converting a schema2 image to OCI,
    // skopeo rewrites the config (drops container_config, docker_version, …), so the image ID
    // is skopeo's new config digest, not docker's; the layers stay.
    let dir = env.path("skopeo-oci-from-docker");
    common::run_ok(Command::new(&bin).args([
        "copy",
        "-q",
        &da,
        &format!("oci:{}:example.com/hoist/from-docker:v1", s(&dir)),
    ]));
    let copied = oci_images_in_dir(&dir);
    assert_eq!(copied.len(), 1);
    let out = env2.ok(&["load", "-i", s(&dir)]);
    assert_eq!(out, "Loaded image: example.com/hoist/from-docker:v1\n");
    let i = env2.inspect("example.com/hoist/from-docker:v1");
    assert_eq!(i["Id"], copied[0].config_digest.as_str());
    assert_eq!(json_strings(&i["RootFS"]["Layers"]), expected_layers);
}

// ---------------------------------------------------------------------------------------------
// 4. umoci
// ---------------------------------------------------------------------------------------------

/// A path as the corpus TSVs write it: control chars, `\` and undecodable bytes as `\xNN`.
fn tsv_escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if (c as u32) < 0x20 || c == '\x7f' || c == '\\' {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A rootfs listed like the corpus TSVs (columns path..hardlink; xattrs not compared).
fn rootfs_listing(root: &Path, owners: bool) -> Vec<String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut entries: Vec<(Vec<u8>, PathBuf)> = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            entries.push((rel, p));
        }
    }
    entries.sort();
    // Hard-link groups: the smallest path of each inode with more than one link in the tree.
    let mut first: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
    let mut count: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    for (rel, p) in &entries {
        let md = std::fs::symlink_metadata(p).unwrap();
        if !md.is_dir() {
            first
                .entry((md.dev(), md.ino()))
                .or_insert_with(|| rel.clone());
            *count.entry((md.dev(), md.ino())).or_default() += 1;
        }
    }
    entries
        .iter()
        .map(|(rel, p)| {
            let md = std::fs::symlink_metadata(p).unwrap();
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                "d"
            } else if ft.is_symlink() {
                "l"
            } else if ft.is_file() {
                "f"
            } else if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else if ft.is_fifo() {
                "p"
            } else {
                "s"
            };
            let mode = if kind == "l" {
                "-".to_string()
            } else {
                format!("{:04o}", md.mode() & 0o7777)
            };
            let (uid, gid) = if owners {
                (md.uid().to_string(), md.gid().to_string())
            } else {
                ("-".to_string(), "-".to_string())
            };
            let rdev = md.rdev();
            let (major, minor) = (
                ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
                (rdev & 0xff) | ((rdev >> 12) & !0xff),
            );
            let (size, sha) = match kind {
                "f" => (md.len().to_string(), common::sha256_file(p)),
                "c" | "b" => (format!("{major},{minor}"), "-".to_string()),
                _ => ("-".to_string(), "-".to_string()),
            };
            let link = if kind == "l" {
                tsv_escape(std::fs::read_link(p).unwrap().as_os_str().as_bytes())
            } else {
                "-".to_string()
            };
            let key = (md.dev(), md.ino());
            let hardlink = if kind != "d" && count[&key] > 1 {
                tsv_escape(&first[&key])
            } else {
                "-".to_string()
            };
            [
                tsv_escape(rel),
                kind.into(),
                mode,
                uid,
                gid,
                size,
                sha,
                link,
                hardlink,
            ]
            .join("\t")
        })
        .collect()
}

/// The corpus TSV, without the header and the xattrs column (and owners unless `owners`).
fn expected_listing(tsv: &str, owners: bool) -> Vec<String> {
    let text = std::fs::read_to_string(common::data(tsv)).unwrap();
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut cols: Vec<&str> = l.split('\t').take(9).collect();
            if !owners {
                cols[3] = "-";
                cols[4] = "-";
            }
            cols.join("\t")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn umoci_reads_hoist_oci_archive_and_store() {
    let Some(bin) = common::peer("umoci") else {
        return;
    };
    let env = multi_env();
    let o = env.path("o.tar");
    env.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        s(&o),
        DERIVED_V1,
        DERIVED_ALIAS,
        DIVE,
    ]);
    let layout = env.path("layout");
    std::fs::create_dir(&layout).unwrap();
    tar::Archive::new(std::fs::File::open(&o).unwrap())
        .unpack(&layout)
        .unwrap();
    let names = sorted(&[
        "docker.io/corpus/dive-derived:alias",
        "docker.io/corpus/dive-derived:v1",
        "docker.io/library/dive-test:latest",
    ]);
    let ls = common::run_ok(Command::new(&bin).args(["ls", "--layout", s(&layout)]));
    assert_eq!(sorted_lines(&ls), names);
    let ls = common::run_ok(Command::new(&bin).args(["ls", "--layout", s(&env.root)]));
    assert_eq!(sorted_lines(&ls), names);

    // Unpack both images and compare the rootfs with the corpus' listing (computed with umoci
    // from skopeo's copy of docker's archive): whiteouts, hardlinks, modes, contents.
    let root = is_root();
    if !root {
        eprintln!("note: not root: umoci unpack --rootless, owners not compared");
    }
    let stem = MULTI.trim_end_matches(".tar");
    for (i, name) in [
        "docker.io/corpus/dive-derived:v1",
        "docker.io/library/dive-test:latest",
    ]
    .iter()
    .enumerate()
    {
        let bundle = env.path(&format!("bundle{i}"));
        let mut c = Command::new(&bin);
        c.arg("unpack");
        if !root {
            c.arg("--rootless");
        }
        c.args(["--image", &format!("{}:{name}", s(&layout)), s(&bundle)]);
        common::run_ok(&mut c);
        assert_eq!(
            rootfs_listing(&bundle.join("rootfs"), root),
            expected_listing(&format!("{stem}.img{i}.rootfs.tsv"), root),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. containerd (the one dockerd runs)
// ---------------------------------------------------------------------------------------------

#[test]
fn containerd_imports_hoist_archives() {
    let Some(ctr) = Ctr::new() else {
        return;
    };
    let env = multi_env();
    let (derived_id, dive_id) = multi_ids();

    // --format docker: containerd reads only index.json (io.containerd.image.name).
    let d = env.path("d.tar");
    env.ok(&["save", "-o", s(&d), DERIVED_V1, DERIVED_ALIAS, DIVE]);
    let written = oci_images_in_tar(&d);
    let expect: BTreeMap<String, String> = [
        ("docker.io/corpus/dive-derived:alias", &derived_id),
        ("docker.io/corpus/dive-derived:v1", &derived_id),
        ("docker.io/library/dive-test:latest", &dive_id),
    ]
    .into_iter()
    .map(|(n, id)| {
        let img = by_name(&written, n);
        assert_eq!(&img.config_digest, id, "{n}");
        (n.to_string(), img.manifest_digest.clone())
    })
    .collect();
    assert_eq!(written.len(), 3);

    for (format, archive) in [("docker", d.clone()), ("oci", env.path("o.tar"))] {
        if format == "oci" {
            env.ok(&[
                "save",
                "--format",
                "oci",
                "-o",
                s(&archive),
                DERIVED_V1,
                DERIVED_ALIAS,
                DIVE,
            ]);
        }
        // Import unpacks too: containerd checks every layer against the config's diff_ids.
        let out = ctr.ok(&["images", "import", s(&archive)]);
        let mut lines: Vec<String> = expect
            .iter()
            .map(|(n, m)| format!("unpacking {n} ({m})...done"))
            .collect();
        lines.sort();
        assert_eq!(sorted_lines(&out), lines, "ctr import of --format {format}");
        assert_eq!(
            ctr.images(),
            expect,
            "ctr images ls after --format {format}"
        );
        for (n, m) in &expect {
            let manifest: Value = serde_json::from_str(&ctr.ok(&["content", "get", m])).unwrap();
            let want = if n.contains("dive-derived") {
                &derived_id
            } else {
                &dive_id
            };
            assert_eq!(manifest["config"]["digest"], want.as_str(), "{n}");
        }
        ctr.remove_all();
    }
}
