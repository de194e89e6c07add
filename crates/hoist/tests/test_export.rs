//! `hoist export`: the flat tar of an image's merged filesystem. Every image of the corpus must
//! export to exactly the flattened listing computed by other tools (skopeo + umoci, cross-checked
//! with docker 20.10's own export), byte-for-byte deterministically, and like `docker export`.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;

use crate::common::{self, Env, expected};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `flatten_listing.py [ARGS] --tar FILE`: the corpus' canonical listing of a flat tar.
pub(crate) fn tar_listing(tar: &Path, args: &[&str]) -> String {
    let mut c = Command::new("python3");
    c.arg(common::data("flatten_listing.py"))
        .args(args)
        .arg("--tar")
        .arg(tar);
    common::run_ok(&mut c)
}

/// Every path (raw entry name) of a tar, in order.
fn tar_names(tar: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(std::fs::File::open(tar).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            String::from_utf8_lossy(&e.unwrap().path_bytes())
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

/// One image of the corpus: where it comes from, how to load it, its ID and its listing.
pub(crate) struct CorpusImage {
    pub(crate) file: String,
    pub(crate) platform: Option<String>,
    pub(crate) id: String,
    pub(crate) names: Vec<String>,
    pub(crate) tsv: String,
}

/// Every image of the corpus (also mounted by `test_mount`).
pub(crate) fn corpus_images() -> Vec<CorpusImage> {
    let mut out = Vec::new();
    for item in expected()["items"].as_array().unwrap() {
        let role = item["role"].as_str().unwrap();
        if role != "load" && role != "layout" {
            continue;
        }
        let file = item["file"].as_str().unwrap();
        let multiplatform = file.contains("multiplatform");
        for im in item["images"].as_array().unwrap() {
            let id = im["config_digest"]
                .as_str()
                .or_else(|| im["docker20_image_id"].as_str())
                .unwrap()
                .to_string();
            let platform = multiplatform.then(|| {
                format!(
                    "{}/{}",
                    im["platform"]["os"].as_str().unwrap(),
                    im["platform"]["architecture"].as_str().unwrap()
                )
            });
            out.push(CorpusImage {
                file: file.to_string(),
                platform,
                id,
                names: im["repo_tags"]
                    .as_array()
                    .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
                tsv: im["rootfs_tsv"].as_str().unwrap().to_string(),
            });
        }
    }
    out
}

pub(crate) fn load(env: &Env, im: &CorpusImage) {
    let mut args = vec!["load", "-i"];
    let path = common::data(&im.file);
    args.push(s(&path));
    if let Some(p) = &im.platform {
        args.extend(["--platform", p.as_str()]);
    }
    env.ok(&args);
}

#[test]
fn every_corpus_image_exports_to_its_expected_rootfs_listing() {
    let images = corpus_images();
    assert_eq!(images.len(), 30, "every image of the corpus");
    let mut platforms_seen = Vec::new();
    for (n, im) in images.iter().enumerate() {
        let env = Env::new();
        load(&env, im);
        if let Some(p) = &im.platform {
            platforms_seen.push(p.clone());
        }
        let out = env.path(&format!("export-{n}.tar"));
        env.ok(&["export", "-o", s(&out), &im.id]);
        let got = tar_listing(&out, &[]);
        let want = std::fs::read_to_string(common::data(&im.tsv)).unwrap();
        assert_eq!(
            got, want,
            "{} ({}): hoist export listing != {}",
            im.file, im.id, im.tsv
        );
        // A flat export: no whiteout or opaque markers, no leading `/`, no `..`.
        for name in tar_names(&out) {
            let base = name.rsplit('/').next().unwrap();
            assert!(!base.starts_with(".wh."), "{}: {name} in export", im.file);
            assert!(!name.starts_with('/'), "{}: {name}", im.file);
            assert!(!name.split('/').any(|c| c == ".."), "{}: {name}", im.file);
        }
        // Deterministic: a second export (by the image's first name, if it has one) is the same
        // bytes.
        let again = env.path(&format!("export-{n}-again.tar"));
        let by = im.names.first().unwrap_or(&im.id);
        env.ok(&["export", "-o", s(&again), by]);
        assert_eq!(
            common::sha256_file(&out),
            common::sha256_file(&again),
            "{}: export is not deterministic",
            im.file
        );
    }
    assert_eq!(platforms_seen, ["linux/amd64", "linux/arm64"]);
}

#[test]
fn export_by_name_short_id_stdout_and_file_are_the_same_bytes() {
    let env = Env::new();
    let file = "docker-v1.2_docker20_multi_dive-derived.tar";
    env.ok(&["load", "-i", s(&common::data(file))]);
    let item = common::expected_item(file);
    let id = item["images"][0]["config_digest"].as_str().unwrap();
    let out = env.path("by-id.tar");
    env.ok(&["export", "-o", s(&out), id]);
    let bytes = std::fs::read(&out).unwrap();
    assert!(!bytes.is_empty());

    // By every name of that image and by a short ID: same bytes.
    let short = &id["sha256:".len().."sha256:".len() + 12];
    for name in ["corpus/dive-derived:v1", "corpus/dive-derived:alias", short] {
        let o = env.path("by-name.tar");
        env.ok(&["export", "-o", s(&o), name]);
        assert_eq!(std::fs::read(&o).unwrap(), bytes, "export {name}");
    }
    // To stdout: by default and with `-o -`.
    let stdout = env
        .cmd(&["export", "corpus/dive-derived:v1"])
        .output()
        .unwrap();
    assert!(stdout.status.success());
    assert_eq!(stdout.stdout, bytes, "export to stdout (default)");
    let dash = env
        .cmd(&["export", "-o", "-", "corpus/dive-derived:v1"])
        .output()
        .unwrap();
    assert!(dash.status.success());
    assert_eq!(dash.stdout, bytes, "export -o -");

    // To a fifo (as to `/dev/null`): written in place; the fifo stays a fifo. (Renaming a temp
    // file over it used to replace the node itself: `-o /dev/null` as root broke /dev/null.)
    let fifo = env.path("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        // Blocks until a writer opens the fifo: never, if hoist replaced it.
        std::thread::spawn(move || tx.send(std::fs::read(fifo).unwrap()));
    }
    env.ok(&["export", "-o", s(&fifo), "corpus/dive-derived:v1"]);
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("hoist wrote into the fifo");
    assert_eq!(got, bytes, "export -o FIFO");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the fifo is still a fifo"
    );
    // Through a symlink to a file: the file gets the bytes, the symlink stays.
    let target = env.path("target.tar");
    std::fs::write(&target, b"old").unwrap();
    let link = env.path("link.tar");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    env.ok(&["export", "-o", s(&link), "corpus/dive-derived:v1"]);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        bytes,
        "export through a symlink"
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // The other image of the archive exports differently (its own layers, not the first one's).
    let other = env.path("other.tar");
    env.ok(&["export", "-o", s(&other), "dive-test:latest"]);
    assert_ne!(std::fs::read(&other).unwrap(), bytes);
    assert_eq!(
        tar_listing(&other, &[]),
        std::fs::read_to_string(common::data(
            "docker-v1.2_docker20_multi_dive-derived.img1.rootfs.tsv"
        ))
        .unwrap()
    );
}

#[test]
fn export_of_an_unknown_image_fails_and_writes_nothing() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker1.13_almostempty.tar")),
    ]);
    let before = env.snapshot();
    let out = env.path("nothing.tar");
    let err = env.fails(&["export", "-o", s(&out), "no-such-image:1"]);
    assert!(err.contains("no-such-image"), "{err}");
    assert!(!out.exists(), "a failed export left {}", out.display());
    assert_eq!(env.snapshot(), before);
}

fn is_root() -> bool {
    common::run_ok(Command::new("id").arg("-u")).trim() == "0"
}

#[test]
fn export_works_for_a_non_root_user_of_a_readable_store() {
    let Some(setpriv) = common::peer("setpriv") else {
        return;
    };
    if !is_root() {
        eprintln!("skipped: needs root to switch to uid 65534");
        return;
    }
    let env = Env::new();
    let file = "docker-v1.2_docker24_scalibr-permissions.tar";
    env.ok(&["load", "-i", s(&common::data(file))]);
    let as_root = env.path("root.tar");
    env.ok(&["export", "-o", s(&as_root), "permissions:latest"]);
    // Make the store readable (not writable) by everyone, the temp dir traversable.
    common::run_ok(
        Command::new("chmod")
            .args(["-R", "a+rX,go-w"])
            .arg(env.dir.path()),
    );
    let before = env.snapshot();
    let out = Command::new(setpriv)
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::hoist_bin(),
            "--root",
        ])
        .arg(&env.root)
        .args(["export", "permissions:latest"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "export as uid 65534 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        common::sha256(&out.stdout),
        common::sha256_file(&as_root),
        "export as uid 65534 differs from export as root"
    );
    assert_eq!(
        env.snapshot(),
        before,
        "a read-only export changed the store"
    );
    let got = tar_listing(&as_root, &[]);
    let want = std::fs::read_to_string(common::data(
        common::expected_item(file)["images"][0]["rootfs_tsv"]
            .as_str()
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(got, want);
}

/// Paths `docker export` adds for the container's init layer.
const DOCKER_INIT: &[&str] = &[
    ".dockerenv",
    "dev",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/mtab",
    "proc",
    "sys",
];

fn excludes() -> Vec<&'static str> {
    DOCKER_INIT.iter().flat_map(|p| ["--exclude", *p]).collect()
}

/// Removes docker containers and names at the end of a test, even when it fails.
struct DockerCleanup<'a> {
    docker: &'a common::Docker,
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for DockerCleanup<'_> {
    fn drop(&mut self) {
        for c in &self.containers {
            self.docker.quiet(&["rm", "-f", c]);
        }
        for n in &self.images {
            self.docker.quiet(&["rmi", n]);
        }
    }
}

#[test]
fn export_matches_docker_export_of_the_same_image() {
    let Some(docker) = common::docker() else {
        return;
    };
    let files = [
        "docker-v1.2_docker18_dive-test.tar",
        "docker-v1.2_docker24_scalibr-permissions.tar",
        "ggcr-tarball_ggcr-whiteout_dir.tar",
        "docker-v1.2_ggcr-whiteout_image.tar",
        "docker-v1.2_docker24_scalibr-symlinks.tar",
    ];
    for file in files {
        let env = Env::new();
        let item = common::expected_item(file);
        let im = &item["images"][0];
        let id = im["config_digest"].as_str().unwrap();
        let container = common::unique("hoist-export-xcheck");
        let mut cleanup = DockerCleanup {
            docker: &docker,
            containers: vec![container.clone()],
            images: Vec::new(),
        };
        // docker load names the image as the archive says; remove those names afterwards.
        let out = docker.ok(&["load", "-i", s(&common::data(file))]);
        for line in out.lines() {
            if let Some(n) = line.strip_prefix("Loaded image: ") {
                cleanup.images.push(n.to_string());
            }
        }
        docker.ok(&["create", "--name", &container, id, "/nonexistent"]);
        let theirs = env.path("docker-export.tar");
        docker.ok(&["export", "-o", s(&theirs), &container]);

        env.ok(&["load", "-i", s(&common::data(file))]);
        let ours = env.path("hoist-export.tar");
        env.ok(&["export", "-o", s(&ours), id]);

        // docker export keeps only security.capability xattrs: compare without xattrs, then the
        // capability xattrs alone.
        let mut args = excludes();
        args.push("--no-xattrs");
        let got = tar_listing(&ours, &args);
        let mut want = tar_listing(&theirs, &args);
        // docker's init layer also creates `etc/` when the image has none (for etc/hosts...).
        if !got.lines().any(|l| l.starts_with("etc\t")) {
            want = want
                .lines()
                .filter(|l| !l.starts_with("etc\td\t0755\t0\t0\t"))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        assert_eq!(got, want, "{file}: hoist export vs docker export");
        assert!(got.lines().count() > 1, "{file}: empty listing");
        let caps = |listing: &str| -> Vec<String> {
            listing
                .lines()
                .filter(|l| l.contains("security.capability="))
                .map(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    let cap = f[9]
                        .split(',')
                        .find(|x| x.starts_with("security.capability="))
                        .unwrap();
                    format!("{} {cap}", f[0])
                })
                .collect()
        };
        assert_eq!(
            caps(&tar_listing(&ours, &excludes())),
            caps(&tar_listing(&theirs, &excludes())),
            "{file}: security.capability xattrs"
        );
        // And docker's export (after its init entries) is the corpus listing too.
        let corpus =
            std::fs::read_to_string(common::data(im["rootfs_tsv"].as_str().unwrap())).unwrap();
        let corpus_no_x: Vec<String> = corpus
            .lines()
            .filter(|l| {
                let p = l.split('\t').next().unwrap();
                !DOCKER_INIT
                    .iter()
                    .any(|e| p == *e || p.starts_with(&format!("{e}/")))
            })
            .map(|l| {
                let mut f: Vec<&str> = l.split('\t').collect();
                if !l.starts_with('#') {
                    f[9] = "-";
                }
                f.join("\t")
            })
            .collect();
        assert_eq!(
            got.lines().collect::<Vec<_>>(),
            corpus_no_x,
            "{file}: vs corpus listing"
        );
        drop(cleanup);
    }
}
