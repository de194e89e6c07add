//! Containers: `run` / `diff` / `commit` checked against docker, `create` + `export` against
//! `docker create` + `docker export` and the corpus listings, hostile layers that try to write
//! outside the rootfs, and `gc` / `rmi` keeping the images of containers. Every test asserts
//! exact facts. Peers missing on a laptop: the test says so and returns; in CI (`CI=true`) a
//! missing peer (docker, runc, busybox-static, python3) fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{self, Docker, Env};

// ---------------------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------------------

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

use common::{BUSYBOX, tar_header};

/// `security.capability` = v2, cap_net_raw permitted (what `setcap cap_net_raw+p` writes).
const CAP_V2: &[u8] = &[
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

/// True when /bin/busybox (Debian busybox-static) is there; in CI it must be.
fn have_busybox() -> bool {
    if Path::new(BUSYBOX).exists() {
        return true;
    }
    assert!(
        !common::in_ci(),
        "{BUSYBOX} is required in CI: apt-get install -y busybox-static"
    );
    eprintln!("skipped: {BUSYBOX} not found (apt-get install -y busybox-static)");
    false
}

/// True when an OCI runtime (runc or crun) is on PATH, as `hoist run` needs; in CI it must be.
fn have_runtime() -> bool {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join("runc").is_file() || d.join("crun").is_file())
    });
    if !found {
        assert!(
            !common::in_ci(),
            "runc is required in CI: apt-get install -y runc"
        );
        eprintln!("skipped: no runc/crun on PATH");
    }
    found
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Tests that unpack owners, setuid bits, devices and xattrs need root (as CI runs them).
fn have_root() -> bool {
    if is_root() {
        return true;
    }
    assert!(!common::in_ci(), "the container tests run as root in CI");
    eprintln!("skipped: not root");
    false
}

/// One PAX record `"<len> <key>=<value>\n"` (the length counts itself).
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    assert_eq!(r.len(), len);
    r
}

/// A tiny busybox rootfs as a flat tar (what `import` takes). With `xattrs`, two more files
/// carry xattrs: `bin/capped` a `security.capability`, `data/user.txt` a `user.` one.
fn busybox_rootfs_tar(dest: &Path, xattrs: bool) {
    common::busybox_rootfs_tar(dest, |b| {
        if xattrs {
            for (path, key, value) in [
                ("bin/capped", "SCHILY.xattr.security.capability", CAP_V2),
                ("data/user.txt", "SCHILY.xattr.user.test", b"v".as_slice()),
            ] {
                let rec = pax_record(key, value);
                let mut h = tar_header(tar::EntryType::XHeader, 0o644, rec.len() as u64);
                b.append_data(&mut h, "PaxHeaders/x", &rec[..]).unwrap();
                let mut h = tar_header(tar::EntryType::Regular, 0o755, 4);
                b.append_data(&mut h, path, &b"cap\n"[..]).unwrap();
            }
        }
    });
}

/// `flatten_listing.py ARGS` (the corpus' listing tool).
fn flatten(args: &[&str]) -> String {
    common::run_ok(
        Command::new("python3")
            .arg(common::data("flatten_listing.py"))
            .args(args),
    )
}

/// docker's init-layer entries, left out of `docker export` comparisons.
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

fn flatten_tar_without_init(tar: &Path) -> String {
    let mut args = Vec::new();
    for e in DOCKER_INIT {
        args.extend(["--exclude", e]);
    }
    args.extend(["--tar", s(tar)]);
    flatten(&args)
}

fn container_dir(env: &Env, id: &str) -> PathBuf {
    env.root.join("hoist/containers").join(id)
}

/// The entries of `<store>/hoist/containers` (sorted): containers, and any leftovers.
fn containers_entries(env: &Env) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(env.root.join("hoist/containers")) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// `hoist create ...`, returning the container ID (and checking it is one).
fn create(env: &Env, args: &[&str]) -> String {
    let mut a = vec!["create"];
    a.extend_from_slice(args);
    let id = env.ok(&a).trim().to_string();
    assert_eq!(id.len(), 64, "container ID {id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id:?}");
    assert!(container_dir(env, &id).join("rootfs").is_dir());
    id
}

/// The entries of layer `index` of the (only) image of a docker-archive written by `hoist save`:
/// `(path, type, mode, content)`, sorted by path.
fn saved_layer_entries(archive: &Path, index: usize) -> Vec<(String, char, u32, String)> {
    use std::io::Read;
    let read = |name: &str| common::file_in_tar(archive, name);
    let manifest: Value = serde_json::from_slice(&read("manifest.json")).unwrap();
    let layer = read(manifest[0]["Layers"][index].as_str().unwrap());
    let layer = if layer.starts_with(&[0x1f, 0x8b]) {
        let mut v = Vec::new();
        flate2::read::GzDecoder::new(&layer[..])
            .read_to_end(&mut v)
            .unwrap();
        v
    } else {
        layer
    };
    let mut out = Vec::new();
    for e in tar::Archive::new(&layer[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let kind = match e.header().entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            other => panic!("unexpected {other:?}"),
        };
        let path = e.path().unwrap().to_string_lossy().to_string();
        let mode = e.header().mode().unwrap();
        let mut content = String::new();
        e.read_to_string(&mut content).unwrap();
        out.push((path, kind, mode, content));
    }
    out.sort();
    out
}

fn run_out(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// `hoist fsck` reports no problem.
fn assert_fsck_clean(env: &Env) {
    let out = env.cmd(&["fsck"]).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "hoist fsck failed: {text}");
    assert!(text.contains(" 0 problems"), "hoist fsck: {text}");
}

/// `hoist ps -a --format json`, one object per container.
fn ps_all(env: &Env) -> Vec<Value> {
    env.ok(&["ps", "-a", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Removes docker containers and images at the end of a test, even when it fails.
struct DockerCleanup<'a> {
    docker: &'a Docker,
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for DockerCleanup<'_> {
    fn drop(&mut self) {
        for c in &self.containers {
            self.docker.quiet(&["rm", "-f", c]);
        }
        for i in &self.images {
            self.docker.quiet(&["rmi", i]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. run / diff / commit -> docker
// ---------------------------------------------------------------------------------------------

/// Writes a new file, appends to one, deletes a file and a directory, prints.
const SCRIPT: &str = "echo new > /data/new.txt && echo more >> /data/keep.txt && rm /data/old.txt \
                      && rm -r /data/olddir && echo hello from c1 && ls /data";
const SCRIPT_OUT: &str = "hello from c1\nkeep.txt\nnew.txt\n";
/// `docker diff` of a container that ran `SCRIPT` (checked against docker below).
const SCRIPT_DIFF: &str =
    "C /data\nC /data/keep.txt\nA /data/new.txt\nD /data/old.txt\nD /data/olddir\n";

#[test]
fn run_diff_commit_save_docker_load_and_run() {
    if !have_busybox() || !have_runtime() || !have_root() {
        return;
    }
    let Some(docker) = common::docker() else {
        return;
    };
    let env = Env::new();
    let base = format!("{}:1", common::unique("hoist-ct-base"));
    let committed = format!("{}:v1", common::unique("hoist-ct-commit"));
    let dc = common::unique("hoist-ct-c1");
    let _cleanup = DockerCleanup {
        docker: &docker,
        containers: vec![dc.clone()],
        images: vec![committed.clone(), base.clone()],
    };

    let rootfs = env.path("rootfs.tar");
    busybox_rootfs_tar(&rootfs, false);
    let base_id = env
        .ok(&["import", "-c", r#"CMD ["/bin/sh"]"#, s(&rootfs), &base])
        .trim()
        .to_string();
    assert!(base_id.starts_with("sha256:"), "{base_id}");
    assert_eq!(
        env.inspect(&base)["Config"]["Cmd"],
        serde_json::json!(["/bin/sh"])
    );

    // run: stdout and the exit code pass through.
    let out = run_out(&mut env.cmd(&["run", "--name", "c1", &base, "sh", "-c", SCRIPT]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), SCRIPT_OUT);
    let out =
        run_out(&mut env.cmd(&["run", "--name", "c2", &base, "sh", "-c", "echo bye; exit 3"]));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bye\n");
    // The image's CMD when none is given; stdin is passed through too.
    let out = env.with_stdin(&["run", "--rm", &base], b"echo from stdin; exit 7\n");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin\n");
    // Own network namespace: loopback only.
    let out = run_out(&mut env.cmd(&["run", "--rm", &base, "ls", "/sys/class/net"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "lo\n");
    // --rm removes the container whatever the exit code.
    let out = run_out(&mut env.cmd(&["run", "--rm", "--name", "c3", &base, "sh", "-c", "exit 5"]));
    assert_eq!(out.status.code(), Some(5));

    // ps -a: c1 exited 0, c2 exited 3, the --rm ones are gone.
    let ps = ps_all(&env);
    let names: Vec<&str> = ps.iter().map(|r| r["Names"].as_str().unwrap()).collect();
    assert_eq!(
        {
            let mut n = names.clone();
            n.sort();
            n
        },
        vec!["c1", "c2"],
        "{ps:#?}"
    );
    let row = |name: &str| ps.iter().find(|r| r["Names"] == name).unwrap().clone();
    let c1 = row("c1");
    assert!(
        c1["Status"].as_str().unwrap().starts_with("Exited (0) "),
        "{c1}"
    );
    assert_eq!(c1["Image"], base.as_str());
    assert_eq!(c1["Command"], format!("\"sh -c {SCRIPT}\"").as_str());
    let c1_short = c1["ID"].as_str().unwrap().to_string();
    assert_eq!(c1_short.len(), 12);
    assert!(
        row("c2")["Status"]
            .as_str()
            .unwrap()
            .starts_with("Exited (3) "),
        "{ps:#?}"
    );
    // Without -a only running containers: none.
    assert_eq!(env.ok(&["ps", "--format", "json"]), "");

    // diff: exactly what the script changed (not the runtime's /dev /proc /sys mount points).
    assert_eq!(env.ok(&["diff", "c1"]), SCRIPT_DIFF);
    assert_eq!(env.ok(&["diff", &c1_short]), SCRIPT_DIFF);
    assert_eq!(env.ok(&["diff", "c2"]), "");

    // docker diff of the same script on the same image says the same.
    let saved_base = env.path("base.tar");
    env.ok(&["save", "-o", s(&saved_base), &base]);
    assert_eq!(
        docker.ok(&["load", "-i", s(&saved_base)]),
        format!("Loaded image: {base}\n")
    );
    let out = docker.ok(&[
        "run",
        "--name",
        &dc,
        "--network",
        "none",
        &base,
        "sh",
        "-c",
        SCRIPT,
    ]);
    assert_eq!(out, SCRIPT_OUT);
    // docker's vfs differ walks the two trees and does not sort its output the same way from
    // run to run; the set of lines is what must agree.
    let sorted = |t: &str| {
        let mut v: Vec<String> = t.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&docker.ok(&["diff", &dc])), sorted(SCRIPT_DIFF));

    // commit -> save -> docker load -> docker run sees the changes.
    let id = env
        .ok(&[
            "commit",
            "-c",
            r#"CMD ["cat", "/data/new.txt"]"#,
            "-m",
            "the c1 changes",
            "--author",
            "hoist test",
            "c1",
            &committed,
        ])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let inspect = env.inspect(&committed);
    assert_eq!(inspect["Id"], id.as_str());
    assert_eq!(inspect["Author"], "hoist test");
    assert_eq!(inspect["Comment"], "the c1 changes");
    assert_eq!(
        inspect["Config"]["Cmd"],
        serde_json::json!(["cat", "/data/new.txt"])
    );
    let layers = inspect["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert_eq!(
        layers[0],
        env.inspect(&base)["RootFS"]["Layers"][0],
        "the image's layer stays"
    );
    let saved = env.path("committed.tar");
    env.ok(&["save", "-o", s(&saved), &committed]);
    assert_eq!(
        docker.ok(&["load", "-i", s(&saved)]),
        format!("Loaded image: {committed}\n")
    );
    assert_eq!(
        docker
            .ok(&["image", "inspect", "-f", "{{.Id}}", &committed])
            .trim(),
        id
    );
    let drun = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none", committed.as_str()];
        a.extend_from_slice(args);
        docker.ok(&a)
    };
    // The committed layer holds exactly the changes, deletions as whiteouts (and not the
    // runtime's /dev /proc /sys mount points).
    let e = |p: &str, k: char, m: u32, c: &str| (p.to_string(), k, m, c.to_string());
    assert_eq!(
        saved_layer_entries(&saved, 1),
        vec![
            e("data/", 'd', 0o755, ""),
            e("data/.wh.old.txt", 'f', 0, ""),
            e("data/.wh.olddir", 'f', 0, ""),
            e("data/keep.txt", 'f', 0o644, "keep\nmore\n"),
            e("data/new.txt", 'f', 0o644, "new\n"),
        ]
    );
    assert_eq!(drun(&[]), "new\n");
    assert_eq!(drun(&["cat", "/data/keep.txt"]), "keep\nmore\n");
    assert_eq!(drun(&["ls", "-a", "/data"]), ".\n..\nkeep.txt\nnew.txt\n");
    let gone = run_out(&mut docker.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        &committed,
        "sh",
        "-c",
        "ls /data/olddir /data/old.txt",
    ]));
    assert_eq!(
        gone.status.code(),
        Some(1),
        "deleted files are gone in docker"
    );
    assert_eq!(String::from_utf8_lossy(&gone.stdout), "");

    // rm: c1 is gone, c2 stays; the committed image is not touched.
    assert_eq!(env.ok(&["rm", "c1"]), "c1\n");
    let names: Vec<String> = ps_all(&env)
        .iter()
        .map(|r| r["Names"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["c2".to_string()]);
    let err = env.fails(&["diff", "c1"]);
    assert!(err.contains("No such container: c1"), "{err}");
    let err = env.fails(&["rm", "c1"]);
    assert!(err.contains("No such container: c1"), "{err}");
    assert_eq!(env.inspect(&committed)["Id"], id.as_str());
    assert_fsck_clean(&env);
}

// ---------------------------------------------------------------------------------------------
// 2. create + export vs docker create + docker export; create vs the corpus listings
// ---------------------------------------------------------------------------------------------

const DOCKERFILE: &str = r#"FROM {BASE}
RUN rm /data/old.txt && rm -r /data/olddir && mkdir /data/new && echo built > /data/new/f && chmod 4755 /data/new/f && ln /data/new/f /data/new/g && ln -s new/f /data/sym
COPY hello.txt /data/hello.txt
ENV GREETING="hello hoist"
WORKDIR /data/wd
CMD ["sh"]
"#;

#[test]
fn create_export_matches_docker_create_export() {
    if !have_busybox() || !have_root() {
        return;
    }
    let Some(docker) = common::docker() else {
        return;
    };
    let env = Env::new();
    let base = format!("{}:1", common::unique("hoist-ct-xbase"));
    let built = format!("{}:1", common::unique("hoist-ct-built"));
    let mut cleanup = DockerCleanup {
        docker: &docker,
        containers: Vec::new(),
        images: vec![built.clone(), base.clone()],
    };

    // docker import of a busybox rootfs (with xattrs), then a legacy-builder Dockerfile on top.
    let rootfs = env.path("rootfs.tar");
    busybox_rootfs_tar(&rootfs, true);
    docker.ok(&["import", s(&rootfs), &base]);
    let ctx = env.path("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE.replace("{BASE}", &base)).unwrap();
    std::fs::write(ctx.join("hello.txt"), "copied\n").unwrap();
    common::run_ok(
        docker
            .cmd(&["build", "-q", "-t", &built, s(&ctx)])
            .env("DOCKER_BUILDKIT", "0"),
    );
    let saved = env.path("built.tar");
    docker.ok(&["save", "-o", s(&saved), &built]);
    assert_eq!(
        env.ok(&["load", "-i", s(&saved)]),
        format!("Loaded image: {built}\n")
    );

    // docker create + docker export
    let dcid = docker.ok(&["create", &built]).trim().to_string();
    cleanup.containers.push(dcid.clone());
    let dexp = env.path("docker-export.tar");
    docker.ok(&["export", "-o", s(&dexp), &dcid]);
    let want = flatten_tar_without_init(&dexp);

    // hoist create + hoist export (by ID and by name, to a file and to stdout)
    let id = create(&env, &["--name", "x1", &built]);
    let hexp = env.path("hoist-export.tar");
    env.ok(&["export", "-o", s(&hexp), &id]);
    let got = flatten_tar_without_init(&hexp);
    assert_eq!(got, want, "hoist export vs docker export");
    // Nothing excluded above is in hoist's export at all (no init layer).
    assert_eq!(flatten(&["--tar", s(&hexp)]), got);
    let out = run_out(&mut env.cmd(&["export", "x1"]));
    assert!(out.status.success());
    let hexp2 = env.path("hoist-export2.tar");
    std::fs::write(&hexp2, &out.stdout).unwrap();
    assert_eq!(flatten(&["--tar", s(&hexp2)]), got, "export to stdout");

    // Facts of the listing, so a wrong docker can't make both agree on nonsense.
    let rows: BTreeMap<String, String> = got
        .lines()
        .skip(1)
        .map(|l| {
            let (p, rest) = l.split_once('\t').unwrap();
            (p.to_string(), rest.to_string())
        })
        .collect();
    let has = |p: &str| rows.contains_key(p);
    assert!(!has("data/old.txt") && !has("data/olddir") && !has("data/olddir/a.txt"));
    assert!(has("data/keep.txt") && has("data/hello.txt") && has("data/wd"));
    assert!(
        rows["data/new/f"].starts_with("f\t4755\t0\t0\t6\t"),
        "{}",
        rows["data/new/f"]
    );
    assert!(
        rows["data/new/g"].contains("\tdata/new/f\t"),
        "hardlink group: {}",
        rows["data/new/g"]
    );
    assert!(rows["data/sym"].starts_with("l\t-\t0\t0\t-\t-\tnew/f\t"));
    // Only security.capability survives an export (docker's rule).
    assert!(
        rows["bin/capped"].ends_with(&format!("\tsecurity.capability={}", hex::encode(CAP_V2))),
        "{}",
        rows["bin/capped"]
    );
    assert!(
        rows["data/user.txt"].ends_with("\t-\t-"),
        "{}",
        rows["data/user.txt"]
    );

    // The unpacked rootfs itself is the same tree, and keeps every xattr of the layers.
    let rootfs_dir = container_dir(&env, &id).join("rootfs");
    let dir_listing = flatten(&[s(&rootfs_dir)]);
    let strip_xattrs = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.rsplit_once('\t').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(strip_xattrs(&dir_listing), strip_xattrs(&got));
    let user_row = dir_listing
        .lines()
        .find(|l| l.starts_with("data/user.txt\t"))
        .unwrap();
    assert!(
        user_row.ends_with(&format!("\tuser.test={}", hex::encode("v"))),
        "{user_row}"
    );

    // The runtime config: the image's env, workdir and cmd.
    let spec: Value = serde_json::from_slice(
        &std::fs::read(container_dir(&env, &id).join("config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["process"]["cwd"], "/data/wd");
    assert_eq!(spec["process"]["args"], serde_json::json!(["sh"]));
    let penv: Vec<&str> = spec["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(penv.contains(&"GREETING=hello hoist"), "{penv:?}");
    assert_eq!(
        spec["process"]["user"],
        serde_json::json!({"uid": 0, "gid": 0})
    );
}

/// `hoist create` of corpus images: the unpacked rootfs is exactly the corpus listing.
#[test]
fn create_corpus_images_match_listings() {
    if !have_root() {
        return;
    }
    for (file, tag, tsv) in [
        (
            "docker-v1.2_docker24_scalibr-permissions.tar",
            "permissions:latest",
            "docker-v1.2_docker24_scalibr-permissions.rootfs.tsv",
        ),
        (
            "docker-v1.2_docker24_scalibr-symlinks.tar",
            "symlinks:latest",
            "docker-v1.2_docker24_scalibr-symlinks.rootfs.tsv",
        ),
        (
            "ggcr-tarball_ggcr-whiteout_dir.tar",
            "localhost:5000/whiteout:latest",
            "ggcr-tarball_ggcr-whiteout_dir.rootfs.tsv",
        ),
        (
            "docker-v1.2_docker24_scalibr-overwrite-file.tar",
            "overwrite-file:latest",
            "docker-v1.2_docker24_scalibr-overwrite-file.rootfs.tsv",
        ),
        (
            "docker-v1.2_docker18_dive-test.tar",
            "dive-test:latest",
            "docker-v1.2_docker18_dive-test.rootfs.tsv",
        ),
    ] {
        let env = Env::new();
        assert_eq!(
            env.ok(&["load", "-i", s(&common::data(file))]),
            format!("Loaded image: {tag}\n"),
            "{file}"
        );
        // These images have no CMD: give one.
        let id = create(&env, &[tag, "/bin/true"]);
        let got = flatten(&[s(&container_dir(&env, &id).join("rootfs"))]);
        let want = std::fs::read_to_string(common::data(tsv)).unwrap();
        assert_eq!(got, want, "{file}: rootfs of hoist create");
        // Nothing changed yet.
        assert_eq!(
            env.ok(&["diff", &id]),
            "",
            "{file}: diff of a new container"
        );
        assert_fsck_clean(&env);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Hostile layers never escape the container's rootfs
// ---------------------------------------------------------------------------------------------

/// One entry of a hand-made layer.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str, u32),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

/// Appends a header with `name` written as is (the tar crate refuses `..` in names, which is
/// the point here); a GNU long-name entry first when it does not fit.
fn append_raw(b: &mut tar::Builder<Vec<u8>>, mut h: tar::Header, name: &str, data: &[u8]) {
    let bytes = name.as_bytes();
    if bytes.len() >= 100 {
        let mut l = tar_header(tar::EntryType::GNULongName, 0o644, bytes.len() as u64 + 1);
        l.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        l.set_cksum();
        let mut d = bytes.to_vec();
        d.push(0);
        b.append(&l, &d[..]).unwrap();
    }
    let n = bytes.len().min(99);
    h.as_old_mut().name[..n].copy_from_slice(&bytes[..n]);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn layer_tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::File(name, data) => {
                let h = tar_header(tar::EntryType::Regular, 0o644, data.len() as u64);
                append_raw(&mut b, h, name, data);
            }
            E::Dir(name, mode) => {
                let h = tar_header(tar::EntryType::Directory, *mode, 0);
                append_raw(&mut b, h, name, &[]);
            }
            E::Sym(name, target) | E::Hard(name, target) => {
                let kind = if matches!(e, E::Sym(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = tar_header(kind, 0o777, 0);
                // append_link writes a long link name (GNU 'K') itself; `..` is fine in targets.
                b.append_link(&mut h, name, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A docker-archive (manifest.json + config with the right diff_ids + `<hex>/layer.tar`).
fn hostile_archive(dest: &Path, tag: &str, layers: &[Vec<E<'_>>]) {
    let blobs: Vec<Vec<u8>> = layers.iter().map(|l| layer_tar(l)).collect();
    let hexes: Vec<String> = blobs.iter().map(|b| common::sha256(b)).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": docker_arch(),
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": hexes.iter().map(|h| format!("sha256:{h}")).collect::<Vec<_>>()},
        "history": hexes.iter().map(|_| serde_json::json!({"created_by": "hostile"})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let config_hex = common::sha256(&config);
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [tag],
        "Layers": hexes.iter().map(|h| format!("{h}/layer.tar")).collect::<Vec<_>>(),
    }]))
    .unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(dest).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar_header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&format!("{config_hex}.json"), &config);
    for (h, blob) in hexes.iter().zip(&blobs) {
        add(&format!("{h}/layer.tar"), blob);
    }
    add("manifest.json", &manifest);
    b.into_inner().unwrap().flush().unwrap();
}

/// The listing rows for a hostile case, built like `flatten_listing.py` prints them.
fn row_dir(p: &str, mode: u32) -> String {
    format!("{p}\td\t{mode:04o}\t0\t0\t-\t-\t-\t-\t-")
}
fn row_file(p: &str, content: &[u8]) -> String {
    format!(
        "{p}\tf\t0644\t0\t0\t{}\t{}\t-\t-\t-",
        content.len(),
        common::sha256(content)
    )
}
fn row_sym(p: &str, target: &str) -> String {
    format!("{p}\tl\t-\t0\t0\t-\t-\t{target}\t-\t-")
}
/// Rows of the directories a host path becomes inside the rootfs (`/tmp/x` -> `tmp`, `tmp/x`).
fn rows_dirs_of(abs: &Path) -> Vec<String> {
    let rel = abs.strip_prefix("/").unwrap();
    let mut out = Vec::new();
    let mut acc = PathBuf::new();
    for c in rel.components() {
        acc.push(c);
        out.push(row_dir(s(&acc), 0o755));
    }
    out
}

/// What a hostile image must lead to.
enum Outcome {
    /// `hoist create` fails (exit 1) naming the layer and the entry.
    Refused { layer: usize, entry: String },
    /// Or it succeeds with exactly this rootfs (rows without the header).
    Contained(Vec<String>),
    /// Either of the two.
    Either {
        layer: usize,
        entry: String,
        rows: Vec<String>,
    },
}

/// The state of a host directory outside the store: its mode and every entry with content.
fn host_state(dir: &Path) -> (u32, BTreeMap<String, String>, Vec<(String, u64)>) {
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    let snap = common::snapshot_tree(dir);
    let nlinks = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::symlink_metadata(e.path()).unwrap().nlink(),
            )
        })
        .collect();
    (mode, snap, nlinks)
}

/// Loads the hostile image, creates a container of it and checks the outcome, that nothing
/// outside the container's directory changed (sentinel, victim, the rest of the temp dir and
/// store), and that the store is consistent.
fn check_hostile(case: &str, layers: &[Vec<E<'_>>], sentinel: &Path, victim: &Path, want: Outcome) {
    let env = Env::new();
    let tag = format!("hostile/{case}:1");
    let archive = env.path("hostile.tar");
    hostile_archive(&archive, &tag, layers);
    // Load checks each layer against the rules every applier shares (names and hard-link
    // targets that escape, invalid whiteouts): such a layer is refused there already, naming
    // it, with the store unchanged.
    let before_load = env.snapshot();
    let out = run_out(&mut env.cmd(&["load", "-i", s(&archive)]));
    if out.status.code() == Some(1) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let Outcome::Refused { layer, entry } = &want else {
            panic!("{case}: load refused a layer that create accepts: {stderr}");
        };
        assert!(
            stderr.contains(&format!("layer {layer}")) && stderr.contains(&format!("{entry:?}")),
            "{case}: the load error names layer {layer} and {entry:?}: {stderr}"
        );
        let blobs: Vec<String> = env
            .snapshot()
            .into_keys()
            .filter(|k| k.starts_with("blobs/sha256/") && k.len() > "blobs/sha256/".len())
            .collect();
        assert!(
            before_load.is_empty() && blobs.is_empty(),
            "{case}: no blob is stored: {blobs:?}"
        );
        assert_eq!(env.ok(&["images", "-q"]), "", "{case}: no image");
        return;
    }
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Loaded image: {tag}\n"),
        "{case}: load (the layers are not unpacked by load)"
    );
    let before_tmp = common::snapshot_tree(env.dir.path());
    let before_sentinel = host_state(sentinel);
    let before_victim = host_state(victim);
    assert!(
        before_sentinel.1.is_empty(),
        "{case}: sentinel starts empty"
    );

    let out = run_out(&mut env.cmd(&["create", &tag]));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{case}: {stderr}");
    eprintln!(
        "{case}: hoist create exited {:?}: {}",
        out.status.code(),
        stderr.trim()
    );
    let created = match out.status.code() {
        Some(0) => Some(String::from_utf8(out.stdout).unwrap().trim().to_string()),
        Some(1) => None,
        other => panic!("{case}: hoist create exited {other:?}: {stderr}"),
    };

    match (&want, &created) {
        (Outcome::Refused { layer, entry }, None)
        | (Outcome::Either { layer, entry, .. }, None) => {
            assert!(
                stderr.contains(&format!("layer {layer}")) && stderr.contains(entry.as_str()),
                "{case}: the error names layer {layer} and {entry:?}: {stderr}"
            );
            assert_eq!(
                containers_entries(&env),
                Vec::<String>::new(),
                "{case}: no container and no half-made one is left"
            );
        }
        (Outcome::Contained(rows), Some(id)) | (Outcome::Either { rows, .. }, Some(id)) => {
            assert_eq!(containers_entries(&env), vec![id.clone()], "{case}");
            let got = flatten(&[s(&container_dir(&env, id).join("rootfs"))]);
            let mut want_rows = rows.clone();
            want_rows.sort();
            let got_rows: Vec<String> = got.lines().skip(1).map(str::to_string).collect();
            assert_eq!(got_rows, want_rows, "{case}: the rootfs");
        }
        (Outcome::Refused { .. }, Some(id)) => {
            panic!("{case}: hoist create should refuse the image but created {id}")
        }
        (Outcome::Contained(_), None) => {
            panic!("{case}: hoist create should contain the layer but failed: {stderr}")
        }
    }

    // Nothing outside the container directory was created, changed or removed.
    assert_eq!(
        host_state(sentinel),
        before_sentinel,
        "{case}: sentinel dir"
    );
    assert_eq!(host_state(victim), before_victim, "{case}: victim dir");
    let mut after_tmp = common::snapshot_tree(env.dir.path());
    if let Some(id) = &created {
        let prefix = format!("store/hoist/containers/{id}/");
        after_tmp.retain(|k, _| !k.starts_with(&prefix));
    }
    // The containers directory itself may be new.
    after_tmp.remove("store/hoist/containers/");
    let mut before_tmp = before_tmp;
    before_tmp.remove("store/hoist/containers/");
    assert_eq!(
        after_tmp, before_tmp,
        "{case}: the temp dir outside the container"
    );
    assert_fsck_clean(&env);

    if let Some(id) = created {
        // The container is usable and removable like any other.
        assert_eq!(env.ok(&["rm", &id]), format!("{id}\n"));
        assert_eq!(containers_entries(&env), Vec::<String>::new());
        assert_eq!(host_state(sentinel), before_sentinel, "{case}: after rm");
        assert_eq!(host_state(victim), before_victim, "{case}: after rm");
    }
}

/// How many `..` lead from a container's rootfs to `/` (so a naive unpacker would land exactly
/// on the host path): `<tmp>/hoist-test-X/store/hoist/containers/<id>/rootfs`.
fn ups_to_host_root(env_root: &Path) -> String {
    let rootfs = env_root.join("hoist/containers/x/rootfs");
    let depth = rootfs
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .count();
    "../".repeat(depth)
}

#[test]
fn hostile_layers_never_escape() {
    if !have_root() {
        return;
    }
    // Sentinel: an empty host directory that a hostile layer tries to write into. Victim: a
    // host directory with one file that a hostile layer tries to link, delete or overwrite.
    let sentinel_dir = tempfile::Builder::new()
        .prefix("hoist-sentinel-")
        .tempdir()
        .unwrap();
    let sentinel = sentinel_dir.path().to_path_buf();
    std::fs::set_permissions(&sentinel, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim_dir = tempfile::Builder::new()
        .prefix("hoist-victim-")
        .tempdir()
        .unwrap();
    let victim = victim_dir.path().to_path_buf();
    std::fs::write(victim.join("victim"), "original\n").unwrap();
    let sent = s(&sentinel);
    let vict = s(&victim);
    // The depth is the same for every Env: all live in the same temp dir.
    let ups = ups_to_host_root(&Env::new().root);
    let rel_sentinel = format!("{ups}{}", sent.trim_start_matches('/'));
    let rel_victim_file = format!("{ups}{}/victim", vict.trim_start_matches('/'));
    let dotdot_file = format!("{ups}{}/pwned", sent.trim_start_matches('/'));
    let pwned_in_rootfs = |link: &str| -> Vec<String> {
        let mut rows = vec![row_sym("evil", link)];
        rows.extend(rows_dirs_of(&sentinel));
        rows.push(row_file(&format!("{}/pwned", &sent[1..]), b"x"));
        rows
    };

    // An absolute symlink in layer 0, a write through it in layer 1.
    check_hostile(
        "abs-symlink",
        &[
            vec![E::Sym("evil", sent)],
            vec![E::File("evil/pwned", b"x")],
        ],
        &sentinel,
        &victim,
        Outcome::Either {
            layer: 1,
            entry: "evil/pwned".into(),
            rows: pwned_in_rootfs(sent),
        },
    );
    // The same in one layer.
    check_hostile(
        "abs-symlink-same-layer",
        &[vec![E::Sym("evil", sent), E::File("evil/pwned", b"x")]],
        &sentinel,
        &victim,
        Outcome::Either {
            layer: 0,
            entry: "evil/pwned".into(),
            rows: pwned_in_rootfs(sent),
        },
    );
    // A relative symlink with exactly enough `..` to reach the host's sentinel from the rootfs.
    check_hostile(
        "relative-symlink",
        &[
            vec![E::Sym("evil", &rel_sentinel)],
            vec![E::File("evil/pwned", b"x")],
        ],
        &sentinel,
        &victim,
        Outcome::Either {
            layer: 1,
            entry: "evil/pwned".into(),
            rows: pwned_in_rootfs(&rel_sentinel),
        },
    );
    // A directory entry over the symlink (a naive unpacker chmods the target to 0777).
    check_hostile(
        "dir-over-symlink",
        &[
            vec![E::Sym("evil", sent)],
            vec![E::Dir("evil/", 0o777), E::File("evil/pwned", b"x")],
        ],
        &sentinel,
        &victim,
        Outcome::Either {
            layer: 1,
            entry: "evil".into(),
            rows: vec![row_dir("evil", 0o777), row_file("evil/pwned", b"x")],
        },
    );
    // A symlink created through a symlink.
    check_hostile(
        "symlink-through-symlink",
        &[
            vec![E::Sym("evil", sent)],
            vec![E::Sym("evil/passwd", "/etc/passwd")],
        ],
        &sentinel,
        &victim,
        Outcome::Either {
            layer: 1,
            entry: "evil/passwd".into(),
            rows: {
                let mut rows = vec![row_sym("evil", sent)];
                rows.extend(rows_dirs_of(&sentinel));
                rows.push(row_sym(&format!("{}/passwd", &sent[1..]), "/etc/passwd"));
                rows
            },
        },
    );
    // Whiteouts through a symlink must not delete host files.
    check_hostile(
        "whiteout-through-symlink",
        &[
            vec![E::Sym("evil", vict)],
            vec![E::File("evil/.wh.victim", b"")],
        ],
        &sentinel,
        &victim,
        Outcome::Either {
            layer: 1,
            entry: "evil/.wh.victim".into(),
            rows: vec![row_sym("evil", vict)],
        },
    );
    check_hostile(
        "opaque-whiteout-through-symlink",
        &[
            vec![E::Sym("evil", vict)],
            vec![E::File("evil/.wh..wh..opq", b"")],
        ],
        &sentinel,
        &victim,
        Outcome::Either {
            layer: 1,
            entry: "evil/.wh..wh..opq".into(),
            rows: vec![row_sym("evil", vict)],
        },
    );
    // Hard links to outside the root: refused.
    check_hostile(
        "hardlink-dotdot",
        &[vec![E::Hard("hl", "../../outside")]],
        &sentinel,
        &victim,
        Outcome::Refused {
            layer: 0,
            entry: "hl".into(),
        },
    );
    check_hostile(
        "hardlink-to-host-file",
        &[
            vec![E::Hard("hl", &rel_victim_file)],
            vec![E::File("hl", b"overwritten")],
        ],
        &sentinel,
        &victim,
        Outcome::Refused {
            layer: 0,
            entry: "hl".into(),
        },
    );
    check_hostile(
        "hardlink-through-symlink",
        &[vec![E::Sym("evil", vict), E::Hard("hl", "evil/victim")]],
        &sentinel,
        &victim,
        Outcome::Refused {
            layer: 0,
            entry: "hl".into(),
        },
    );
    // `..` in entry names: refused.
    check_hostile(
        "dotdot-name",
        &[vec![E::File(&dotdot_file, b"x")]],
        &sentinel,
        &victim,
        Outcome::Refused {
            layer: 0,
            entry: dotdot_file.clone(),
        },
    );
    check_hostile(
        "dotdot-inside-name",
        &[vec![E::Dir("a/", 0o755), E::File("a/../../pwned", b"x")]],
        &sentinel,
        &victim,
        Outcome::Refused {
            layer: 0,
            entry: "a/../../pwned".into(),
        },
    );
    // A later layer is refused too (the error names it), and nothing of the earlier ones stays.
    check_hostile(
        "dotdot-in-second-layer",
        &[
            vec![E::File("ok.txt", b"fine")],
            vec![E::File("../pwned", b"x")],
        ],
        &sentinel,
        &victim,
        Outcome::Refused {
            layer: 1,
            entry: "../pwned".into(),
        },
    );
    // A harmless two-layer image through the same machinery is contained as expected.
    check_hostile(
        "benign",
        &[
            vec![
                E::Dir("d/", 0o755),
                E::File("d/a", b"a"),
                E::Sym("l", "d/a"),
            ],
            vec![E::File("d/.wh.a", b""), E::File("d/b", b"b")],
        ],
        &sentinel,
        &victim,
        Outcome::Contained(vec![
            row_dir("d", 0o755),
            row_file("d/b", b"b"),
            row_sym("l", "d/a"),
        ]),
    );
}

/// The corpus' symlink-attack image (absolute and relative symlinks pointing above the root):
/// the rootfs is its listing and nothing outside the container changed.
#[test]
fn corpus_symlink_attack_is_contained() {
    if !have_root() {
        return;
    }
    let file = "docker-v1.2_docker24_scalibr-symlink-attack.tar";
    let env = Env::new();
    assert_eq!(
        env.ok(&["load", "-i", s(&common::data(file))]),
        "Loaded image: symlink-attack:latest\n"
    );
    let before = common::snapshot_tree(env.dir.path());
    let secret_before = Path::new("/secret.txt").exists();
    let id = create(&env, &["symlink-attack:latest", "/bin/true"]);
    let rootfs = container_dir(&env, &id).join("rootfs");
    assert_eq!(
        flatten(&[s(&rootfs)]),
        std::fs::read_to_string(common::data(
            "docker-v1.2_docker24_scalibr-symlink-attack.rootfs.tsv"
        ))
        .unwrap()
    );
    // The links' targets were not created, neither on the host nor next to the rootfs.
    assert_eq!(Path::new("/secret.txt").exists(), secret_before);
    assert!(!container_dir(&env, &id).join("secret.txt").exists());
    assert!(!env.root.join("hoist/containers/secret.txt").exists());
    let mut after = common::snapshot_tree(env.dir.path());
    let prefix = format!("store/hoist/containers/{id}/");
    after.retain(|k, _| !k.starts_with(&prefix));
    after.remove("store/hoist/containers/");
    let mut before = before;
    before.remove("store/hoist/containers/");
    assert_eq!(after, before);
    assert_eq!(containers_entries(&env), vec![id.clone()]);
    // Its export has the links as they are.
    let exp = env.path("export.tar");
    env.ok(&["export", "-o", s(&exp), &id]);
    assert_eq!(
        flatten(&["--tar", s(&exp)]),
        std::fs::read_to_string(common::data(
            "docker-v1.2_docker24_scalibr-symlink-attack.rootfs.tsv"
        ))
        .unwrap()
    );
    assert_fsck_clean(&env);
}

// ---------------------------------------------------------------------------------------------
// 4. gc keeps the images of containers; rmi refuses to remove them without -f
// ---------------------------------------------------------------------------------------------

fn blob_count(env: &Env) -> usize {
    std::fs::read_dir(env.root.join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn gc_keeps_images_of_containers() {
    if !have_busybox() {
        return;
    }
    let env = Env::new();
    let rootfs = env.path("rootfs.tar");
    busybox_rootfs_tar(&rootfs, false);
    let img_id = env
        .ok(&["import", "-c", r#"CMD ["/bin/sh"]"#, s(&rootfs), "gcbase:1"])
        .trim()
        .to_string();
    let cid = create(&env, &["--name", "g1", "gcbase:1"]);
    // A change in the container, made from outside (no runtime needed).
    let rootfs_dir = container_dir(&env, &cid).join("rootfs");
    std::fs::write(rootfs_dir.join("data/added.txt"), "added\n").unwrap();
    std::fs::remove_file(rootfs_dir.join("data/old.txt")).unwrap();
    let diff = "C /data\nA /data/added.txt\nD /data/old.txt\n";
    assert_eq!(env.ok(&["diff", "g1"]), diff);

    // rmi without -f of the image's only name: refused, naming the container.
    let err = env.fails(&["rmi", "gcbase:1"]);
    assert!(
        err.contains(&cid[..12]) && err.contains("must force"),
        "the refusal names the container: {err}"
    );
    let err = env.fails(&["rmi", &img_id]);
    assert!(
        err.contains(&cid[..12]) && err.contains("must be forced"),
        "the refusal names the container: {err}"
    );
    assert_eq!(
        env.inspect("gcbase:1")["Id"],
        img_id.as_str(),
        "still there"
    );
    // With a second name, removing one name is fine (the image stays named).
    env.ok(&["tag", "gcbase:1", "gcbase:2"]);
    assert_eq!(env.ok(&["rmi", "gcbase:2"]), "Untagged: gcbase:2\n");

    // rmi -f: untagged, but kept (dangling) for the container, as docker does.
    assert_eq!(env.ok(&["rmi", "-f", "gcbase:1"]), "Untagged: gcbase:1\n");
    env.fails(&["inspect", "gcbase:1"]);
    assert_eq!(env.inspect(&img_id)["Id"], img_id.as_str());
    assert_eq!(env.inspect(&img_id)["RepoTags"], serde_json::json!([]));
    let blobs = blob_count(&env);
    let gc = env.ok(&["gc"]);
    assert!(gc.contains("removed 0 blobs"), "{gc}");
    assert_eq!(blob_count(&env), blobs, "gc removed nothing");
    assert_fsck_clean(&env);
    assert_eq!(env.inspect(&img_id)["Id"], img_id.as_str());

    // The container still works: diff, commit, export.
    assert_eq!(env.ok(&["diff", "g1"]), diff);
    let new_id = env.ok(&["commit", "g1", "gcnew:1"]).trim().to_string();
    let inspect = env.inspect("gcnew:1");
    assert_eq!(inspect["Id"], new_id.as_str());
    assert_eq!(inspect["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    let exp = env.path("g1.tar");
    env.ok(&["export", "-o", s(&exp), "g1"]);
    let listing = flatten(&["--tar", s(&exp)]);
    assert!(listing.contains("\ndata/added.txt\tf\t"), "{listing}");
    assert!(!listing.contains("\ndata/old.txt\t"), "{listing}");
    // The committed image has the change; a container of it has no diff of its own.
    let c2 = create(&env, &["gcnew:1"]);
    assert_eq!(env.ok(&["diff", &c2]), "");
    assert!(
        container_dir(&env, &c2)
            .join("rootfs/data/added.txt")
            .is_file()
    );
    assert!(
        !container_dir(&env, &c2)
            .join("rootfs/data/old.txt")
            .exists()
    );
    assert_fsck_clean(&env);

    // Once the container is gone, the dangling image can go, and gc frees its blobs (the
    // committed image keeps the shared base layer).
    assert_eq!(env.ok(&["rm", "g1"]), "g1\n");
    let out = env.ok(&["rmi", &img_id]);
    assert!(
        out.contains(&format!("Deleted: {img_id}")),
        "rmi of the dangling image: {out}"
    );
    let gc = env.ok(&["gc"]);
    assert!(gc.contains("removed 2 blobs"), "manifest + config: {gc}");
    assert_fsck_clean(&env);
    // The other container and its image are intact.
    assert_eq!(env.ok(&["diff", &c2]), "");
    assert_eq!(env.inspect("gcnew:1")["Id"], new_id.as_str());
}

/// A `.new-<id>` directory as a `create` killed midway leaves it: a rootfs with content.
fn half_made_container(env: &Env, name: &str) -> PathBuf {
    let dir = env.root.join("hoist/containers").join(name);
    std::fs::create_dir_all(dir.join("rootfs/etc/deep")).unwrap();
    std::fs::write(dir.join("rootfs/etc/deep/file"), "half\n").unwrap();
    dir
}

#[test]
fn interrupted_creates_are_cleaned_up_but_running_ones_are_not() {
    let env = Env::new();
    // An image to create from (no runtime or busybox needed: nothing runs).
    let mut b = tar::Builder::new(Vec::new());
    let mut h = common::tar_header(tar::EntryType::Regular, 0o755, 3);
    b.append_data(&mut h, "bin/app", &b"app"[..]).unwrap();
    let rootfs = env.path("rootfs.tar");
    std::fs::write(&rootfs, b.into_inner().unwrap()).unwrap();
    env.ok(&["import", "-c", r#"CMD ["/bin/app"]"#, s(&rootfs), "small:1"]);

    // A create that is running right now holds the flock on its directory (as hoist's own
    // create does); this test process stands in for it.
    let live = half_made_container(&env, ".new-live");
    let live_lock = std::fs::File::open(&live).unwrap();
    live_lock.lock().unwrap();
    half_made_container(&env, ".new-stale");

    let first = create(&env, &["small:1"]);
    assert_eq!(
        containers_entries(&env),
        [".new-live", first.as_str()],
        "create removed the stale .new-stale, and only it"
    );
    assert_eq!(
        std::fs::read_to_string(live.join("rootfs/etc/deep/file")).unwrap(),
        "half\n",
        "the running create's directory is untouched"
    );

    half_made_container(&env, ".new-again");
    env.ok(&["gc"]);
    assert_eq!(
        containers_entries(&env),
        [".new-live", first.as_str()],
        "gc removed the stale .new-again, and only it"
    );
    assert!(live.join("rootfs/etc/deep/file").is_file());

    // Once its creator is gone (the kernel drops the lock with the process), it is stale too.
    drop(live_lock);
    env.ok(&["gc"]);
    assert_eq!(containers_entries(&env), [first.as_str()]);
    assert_eq!(
        env.ok(&["diff", &first]),
        "",
        "the real container is intact"
    );
}
