//! `hoist ls`, `cat`, `cp`: every corpus image's listing and contents against its expected
//! rootfs listing, one layer's own entries against the layer tar read by another tar reader,
//! and the same through archives read in place with no store.

use std::io::Read;
use std::path::Path;

use crate::common::{self, Env};
use crate::test_export::{CorpusImage, corpus_images, load};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `hoist ls -R --format json` output, one object per line.
fn ls_json(env: &Env, image: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["ls", "-R", "--format", "json"];
    args.extend_from_slice(extra);
    args.push(image);
    env.ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The corpus listing (`flatten_listing.py`'s TSV) of `ls` JSON objects, with each regular
/// file's sha256 from `hoist cat` of all of them at once (split by their sizes).
fn tsv_of(env: &Env, image: &str, extra: &[&str], objs: &[serde_json::Value]) -> String {
    let files: Vec<(&str, u64)> = objs
        .iter()
        .filter(|o| o["type"] == "file")
        .map(|o| (o["path"].as_str().unwrap(), o["size"].as_u64().unwrap()))
        .collect();
    let mut digests = std::collections::HashMap::new();
    for chunk in files.chunks(500) {
        let mut args = vec!["cat"];
        args.extend_from_slice(extra);
        args.push(image);
        args.extend(chunk.iter().map(|(p, _)| *p));
        let out = env.cmd(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let total: u64 = chunk.iter().map(|(_, n)| n).sum();
        assert_eq!(
            out.stdout.len() as u64,
            total,
            "cat of {} files",
            chunk.len()
        );
        let mut at = 0usize;
        for (p, n) in chunk {
            let n = *n as usize;
            digests.insert(*p, common::sha256(&out.stdout[at..at + n]));
            at += n;
        }
    }
    let mut lines =
        vec!["#path\ttype\tmode\tuid\tgid\tsize\tsha256\tlink\thardlink\txattrs".to_string()];
    for o in objs {
        let path = o["path"].as_str().unwrap();
        let kind = o["type"].as_str().unwrap();
        let t = match kind {
            "file" => "f",
            "dir" => "d",
            "symlink" => "l",
            "char" => "c",
            "block" => "b",
            "fifo" => "p",
            other => panic!("{path}: type {other} in a final tree"),
        };
        let mode = if t == "l" {
            "-".to_string()
        } else {
            format!("{:04o}", o["mode"].as_u64().unwrap())
        };
        let size = match t {
            "f" => o["size"].to_string(),
            "c" | "b" => format!("{},{}", o["major"], o["minor"]),
            _ => "-".into(),
        };
        let sha = if t == "f" {
            digests[path].clone()
        } else {
            "-".into()
        };
        let link = o["link"].as_str().unwrap_or("-");
        let hardlink = o["hardlink"]
            .as_str()
            .map_or("-".to_string(), |h| h.trim_start_matches('/').to_string());
        let mut xattrs: Vec<String> = o["xattrs"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "security.selinux")
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
            .collect();
        xattrs.sort();
        let xattrs = if xattrs.is_empty() {
            "-".to_string()
        } else {
            xattrs.join(",")
        };
        lines.push(format!(
            "{}\t{t}\t{mode}\t{}\t{}\t{size}\t{sha}\t{link}\t{hardlink}\t{xattrs}",
            path.trim_start_matches('/'),
            o["uid"],
            o["gid"],
        ));
    }
    // The corpus sorts by path bytes.
    let (head, rows) = lines.split_at_mut(1);
    rows.sort_by(|a, b| {
        let key = |l: &str| l.split('\t').next().unwrap().as_bytes().to_vec();
        key(a).cmp(&key(b))
    });
    let mut text = head[0].clone();
    text.push('\n');
    for r in rows.iter() {
        text.push_str(r);
        text.push('\n');
    }
    text
}

fn platform_args(im: &CorpusImage) -> Vec<&str> {
    match &im.platform {
        Some(p) => vec!["--platform", p.as_str()],
        None => Vec::new(),
    }
}

#[test]
fn ls_and_cat_of_every_corpus_image_equal_its_rootfs_listing() {
    let images = corpus_images();
    assert_eq!(images.len(), 30);
    for im in &images {
        let env = Env::new();
        load(&env, im);
        let objs = ls_json(&env, &im.id, &[]);
        let got = tsv_of(&env, &im.id, &[], &objs);
        let want = std::fs::read_to_string(common::data(&im.tsv)).unwrap();
        assert_eq!(got, want, "{} ({}): ls + cat != {}", im.file, im.id, im.tsv);
        // Every path's layer is one of the image's.
        let layers = env.inspect(&im.id)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len() as u64;
        for o in &objs {
            if let Some(l) = o["layer"].as_u64() {
                assert!(l < layers, "{}: {o}", im.file);
            }
        }
    }
}

/// The entries of a layer tar as another reader (the `tar` crate) sees them: normalized path
/// and what `hoist ls --layer` calls its type.
fn layer_entries(blob: &[u8]) -> Vec<(String, String)> {
    let raw: Box<dyn Read> = if blob.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(blob))
    } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(blob).unwrap())
    } else {
        Box::new(blob)
    };
    let mut a = tar::Archive::new(raw);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let path = String::from_utf8_lossy(&e.path_bytes()).to_string();
        let parts: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let Some((last, dir)) = parts.split_last() else {
            continue;
        };
        let dir = dir.join("/");
        let join = |name: &str| {
            if dir.is_empty() {
                name.to_string()
            } else if name.is_empty() {
                dir.clone()
            } else {
                format!("{dir}/{name}")
            }
        };
        if parts[0].starts_with(".wh..wh.") && *last != ".wh..wh..opq" {
            continue;
        }
        let (p, kind) = if *last == ".wh..wh..opq" {
            (join(""), "opaque")
        } else if let Some(x) = last.strip_prefix(".wh.") {
            (join(x), "whiteout")
        } else {
            let kind = match e.header().entry_type() {
                tar::EntryType::Directory => "dir",
                tar::EntryType::Symlink => "symlink",
                tar::EntryType::Link => "hardlink",
                tar::EntryType::Char => "char",
                tar::EntryType::Block => "block",
                tar::EntryType::Fifo => "fifo",
                _ => "file",
            };
            (join(last), kind)
        };
        let h = e.header();
        let detail = match kind {
            "whiteout" | "opaque" => String::new(),
            _ => {
                let link = match kind {
                    "symlink" => String::from_utf8_lossy(&e.link_name_bytes().unwrap()).to_string(),
                    "hardlink" => {
                        let l = String::from_utf8_lossy(&e.link_name_bytes().unwrap()).to_string();
                        let l: Vec<&str> = l
                            .split('/')
                            .filter(|c| !c.is_empty() && *c != ".")
                            .collect();
                        format!("/{}", l.join("/"))
                    }
                    _ => String::new(),
                };
                let size = if kind == "file" { h.size().unwrap() } else { 0 };
                format!(
                    "{:o} {}:{} {size} {link}",
                    h.mode().unwrap() & 0o7777,
                    h.uid().unwrap(),
                    h.gid().unwrap()
                )
            }
        };
        out.push((format!("/{p}"), format!("{kind} {detail}")));
    }
    out
}

/// The layer blobs of image `id` in the store (an OCI layout) at `root`.
fn store_layers(root: &Path, id: &str) -> Vec<Vec<u8>> {
    let blob = |d: &str| std::fs::read(root.join("blobs/sha256").join(&d[7..])).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    let mut todo: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect();
    while let Some(d) = todo.pop() {
        let doc: serde_json::Value = serde_json::from_slice(&blob(&d)).unwrap();
        if let Some(ms) = doc["manifests"].as_array() {
            todo.extend(ms.iter().map(|m| m["digest"].as_str().unwrap().to_string()));
            continue;
        }
        if doc["config"]["digest"] == id {
            return doc["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| blob(l["digest"].as_str().unwrap()))
                .collect();
        }
    }
    panic!("no manifest for {id}");
}

#[test]
fn ls_layer_lists_exactly_that_layers_entries_with_whiteouts_as_deletions() {
    let mut whiteouts = 0;
    for im in corpus_images() {
        let env = Env::new();
        load(&env, &im);
        for (n, blob) in store_layers(&env.root, &im.id).iter().enumerate() {
            let want = layer_entries(blob);
            let got: Vec<(String, String)> = env
                .ok(&["ls", "--format", "json", "--layer", &n.to_string(), &im.id])
                .lines()
                .map(|l| {
                    let o: serde_json::Value = serde_json::from_str(l).unwrap();
                    assert_eq!(o["layer"], n as u64);
                    let kind = o["type"].as_str().unwrap();
                    let detail = match kind {
                        "whiteout" | "opaque" => String::new(),
                        _ => format!(
                            "{:o} {}:{} {} {}",
                            o["mode"].as_u64().unwrap(),
                            o["uid"],
                            o["gid"],
                            o["size"].as_u64().unwrap_or(0),
                            o["link"].as_str().unwrap_or("")
                        ),
                    };
                    (
                        o["path"].as_str().unwrap().to_string(),
                        format!("{kind} {detail}"),
                    )
                })
                .collect();
            whiteouts += got.iter().filter(|(_, t)| t == "whiteout ").count();
            assert_eq!(got, want, "{} layer {n}", im.file);
        }
    }
    assert!(whiteouts > 0, "the corpus has whiteouts");
}

#[test]
fn ls_long_cat_and_cp_of_one_image() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker18_dive-test.tar")),
    ]);
    let img = "dive-test:latest";
    assert_eq!(
        env.ok(&["ls", "-l", "--layers", img, "/root"]),
        " 12  drwxr-xr-x 0/0          0 2018-12-28 20:44 /root/.data\n  \
         8  -rw-r--r-- 0/0       6405 2018-12-28 16:50 /root/.saved.txt\n \
         13  -rwxr-xr-x 0/0       6405 2018-12-28 16:50 /root/saved.txt\n"
    );
    assert_eq!(
        env.ok(&["ls", "-d", img, "/root", "/etc/passwd"]),
        "/root\n/etc/passwd\n"
    );
    // As of layer 3, /root held what later layers removed or moved.
    assert_eq!(
        env.ok(&["ls", "--as-of", "3", img, "/root"]),
        "/root/example\n"
    );
    let passwd = env.ok(&["cat", img, "/etc/passwd"]);
    assert!(
        passwd.starts_with("root:x:0:0:root:/root:/bin/sh\n"),
        "{passwd}"
    );
    // Errors name the image and the path, and exit non-zero.
    let e = env.fails(&["cat", img, "/etc"]);
    assert!(e.contains("dive-test:latest: /etc: is a directory"), "{e}");
    let e = env.fails(&["cat", img, "/nope/x"]);
    assert!(e.contains("/nope/x: no such file or directory"), "{e}");
    let e = env.fails(&["ls", "--layer", "99", img]);
    assert!(
        e.contains("no layer 99 (the image has 14 layers, 0 to 13)"),
        "{e}"
    );
    // cp: a directory into a new directory, a file to a tar stream.
    let dest = env.path("root-copy");
    env.ok(&["cp", &format!("{img}:/root"), s(&dest)]);
    let mut names: Vec<String> = walk(&dest);
    names.sort();
    assert_eq!(
        names,
        [
            ".data",
            ".data/saved.again2.txt",
            ".data/tag.sh",
            ".data/test.sh",
            ".saved.txt",
            "saved.txt"
        ]
    );
    assert_eq!(
        std::fs::read(dest.join("saved.txt")).unwrap(),
        env.ok(&["cat", img, "/root/saved.txt"]).into_bytes()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dest.join("saved.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    // Into an existing directory: under its own name.
    let into = env.path("into");
    std::fs::create_dir(&into).unwrap();
    env.ok(&["cp", &format!("{img}:/etc/passwd"), s(&into)]);
    assert_eq!(
        std::fs::read_to_string(into.join("passwd")).unwrap(),
        passwd
    );
    // A hard link whose group's first path is not copied carries the content itself; a
    // copied group shares one inode.
    let out = env
        .cmd(&["cp", &format!("{img}:/bin/acpid"), "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let acpid = env.path("acpid.tar");
    std::fs::write(&acpid, &out.stdout).unwrap();
    assert_eq!(common::tar_paths(&acpid), ["acpid"]);
    assert_eq!(common::file_in_tar(&acpid, "acpid").len(), 1_075_464);
    let bin = env.path("bin");
    env.ok(&["cp", &format!("{img}:/bin"), s(&bin)]);
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (
        std::fs::metadata(bin.join("acpid")).unwrap(),
        std::fs::metadata(bin.join("ls")).unwrap(),
    );
    assert_eq!((a.ino(), a.len()), (b.ino(), 1_075_464));
    let tar = env.path("passwd.tar");
    let out = env
        .cmd(&["cp", &format!("{img}:/etc/passwd"), "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(&tar, &out.stdout).unwrap();
    assert_eq!(common::tar_paths(&tar), ["passwd"]);
    assert_eq!(common::file_in_tar(&tar, "passwd"), passwd.as_bytes());
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().to_string());
            if e.file_type().unwrap().is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

/// How a corpus image is named in place: its transport, and a NAME when the archive has
/// several images.
fn in_place(im: &CorpusImage, multi: bool) -> Option<String> {
    let path = common::data(&im.file);
    let p = path.to_str().unwrap();
    if path.is_dir() {
        return Some(format!("oci:{p}"));
    }
    if im.file.starts_with("oci-archive") {
        return Some(format!("oci-archive:{p}"));
    }
    match (multi, im.names.first()) {
        (false, _) => Some(format!("docker-archive:{p}")),
        (true, Some(n)) => Some(format!("docker-archive:{p}:{n}")),
        (true, None) => None,
    }
}

#[test]
fn ls_and_cat_read_archives_in_place_without_a_store() {
    let images = corpus_images();
    let mut done = 0;
    for im in &images {
        let multi = images.iter().filter(|o| o.file == im.file).count() > 1;
        let Some(loc) = in_place(im, multi) else {
            continue;
        };
        let env = Env::new();
        let mut extra = platform_args(im);
        let objs = ls_json(&env, &loc, &extra);
        let got = tsv_of(&env, &loc, &extra, &objs);
        let want = std::fs::read_to_string(common::data(&im.tsv)).unwrap();
        assert_eq!(got, want, "{loc}: ls + cat != {}", im.tsv);
        // One layer's own entries too.
        extra.extend(["--layer", "0"]);
        let first = ls_json(&env, &loc, &extra);
        assert!(first.iter().all(|o| o["layer"] == 0), "{loc}");
        assert!(!env.root.exists(), "{loc}: the store was written");
        done += 1;
    }
    assert_eq!(done, 30, "every image of the corpus");
}

#[test]
fn a_multi_image_archive_without_a_name_lists_its_images() {
    let env = Env::new();
    let p = common::data("docker-v1.2_multi_ggcr-test_bundle.tar");
    let e = env.fails(&["ls", &format!("docker-archive:{}", s(&p))]);
    assert!(
        e.contains("it has 2 images: name one (test_image_1:latest, test_image_2:latest)"),
        "{e}"
    );
    assert!(!env.root.exists());
}

#[test]
fn layer_indexes_are_made_at_load_rebuilt_when_lost_and_removed_by_gc() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker18_dive-test.tar")),
    ]);
    let index_dir = env.root.join("hoist/index");
    let id = env.inspect("dive-test:latest")["Id"].clone();
    let layers = store_layers(&env.root, id.as_str().unwrap());
    let mut names: Vec<String> = std::fs::read_dir(&index_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let mut want: Vec<String> = layers.iter().map(|b| common::sha256(b)).collect();
    want.sort();
    want.dedup();
    assert_eq!(names, want, "one index per layer blob, made by load");
    let listing = env.ok(&["ls", "-R", "-l", "dive-test:latest"]);
    // A lost index is built again on first use; a damaged one too.
    std::fs::remove_file(index_dir.join(&names[0])).unwrap();
    std::fs::write(index_dir.join(&names[1]), b"hoist-layer-index\n1\ngarbage").unwrap();
    assert_eq!(env.ok(&["ls", "-R", "-l", "dive-test:latest"]), listing);
    assert!(index_dir.join(&names[0]).is_file());
    // fsck --repair rebuilds what is missing.
    std::fs::remove_file(index_dir.join(&names[2])).unwrap();
    let out = env.ok(&["fsck", "--repair"]);
    assert!(out.starts_with("rebuilt 1 layer indexes\n"), "{out}");
    // gc removes an image's indexes with its blobs.
    env.ok(&["rmi", "dive-test:latest"]);
    env.ok(&["gc"]);
    assert_eq!(std::fs::read_dir(&index_dir).unwrap().count(), 0);
}

#[test]
fn symlinks_resolve_inside_the_image_and_errors_say_why() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker24_scalibr-symlinks.tar")),
    ]);
    let img = "symlinks:latest";
    let sample = env.ok(&["cat", img, "/dir1/sample.txt"]);
    // Chains of absolute and relative links, `..` inside a target.
    for link in [
        "/dir2/dir3/absolute-chain-symlink.txt",
        "/dir2/dir3/absolute-symlink-inside-root.txt",
        "/dir2/dir3/relative-subfolder-symlink.txt",
        "/dir1/relative-dot-symlink.txt",
    ] {
        assert_eq!(env.ok(&["cat", img, link]), sample, "{link}");
    }
    // `..` stops at the image's root: the host's /secret.txt is never read.
    let e = env.fails(&["cat", img, "/dir1/attack-symlink.txt"]);
    assert!(
        e.contains(
            "symlinks:latest: /dir1/attack-symlink.txt: a dangling symlink (to ../../secret.txt)"
        ),
        "{e}"
    );
    let e = env.fails(&["cat", img, "/dir1/sample.txt/x"]);
    assert!(e.contains("/dir1/sample.txt/x: not a directory"), "{e}");
    let e = env.fails(&["cp", "-L", &format!("{img}:/dir1/attack-symlink.txt"), "-"]);
    assert!(e.contains("a dangling symlink"), "{e}");
    // Without -L, cp copies the link itself.
    let out = env
        .cmd(&["cp", &format!("{img}:/dir1/attack-symlink.txt"), "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut a = tar::Archive::new(&out.stdout[..]);
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
    assert_eq!(
        e.link_name_bytes().unwrap().as_ref(),
        b"../../secret.txt".as_slice()
    );
}

#[test]
fn ls_reads_the_index_not_the_layers() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker18_dive-test.tar")),
    ]);
    let img = "dive-test:latest";
    let listing = env.ok(&["ls", "-R", "-l", "--layers", img]);
    let layer = env.ok(&["ls", "--layer", "3", "--format", "json", img]);
    // Every layer blob cut to nothing: the listings come from the indexes alone.
    let id = env.inspect(img)["Id"].clone();
    for blob in store_layers(&env.root, id.as_str().unwrap()) {
        let p = env.root.join("blobs/sha256").join(common::sha256(&blob));
        std::fs::write(&p, b"").unwrap();
    }
    assert_eq!(env.ok(&["ls", "-R", "-l", "--layers", img]), listing);
    assert_eq!(
        env.ok(&["ls", "--layer", "3", "--format", "json", img]),
        layer
    );
    // Reading a file needs its blob, and says what is wrong with it.
    let e = env.fails(&["cat", img, "/etc/passwd"]);
    assert!(e.contains("dive-test:latest: /etc/passwd"), "{e}");
    assert!(e.contains("does not match its digest"), "{e}");
}

#[test]
fn cp_never_removes_what_the_destination_holds() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker18_dive-test.tar")),
    ]);
    let img = "dive-test:latest";
    let d = env.path("d");
    std::fs::create_dir_all(d.join("group/sub")).unwrap();
    std::fs::write(d.join("group/sub/important"), b"mine").unwrap();
    std::fs::write(d.join("passwd"), b"x").unwrap();
    std::fs::write(d.join("etc"), b"a file").unwrap();
    // A whiteout-looking name would delete; it is refused.
    let e = env.fails(&["cp", &format!("{img}:/etc/group"), s(&d.join(".wh.passwd"))]);
    assert!(
        e.contains(".wh.passwd: a name starting with .wh. is not written"),
        "{e}"
    );
    let e = env.fails(&[
        "cp",
        &format!("{img}:/etc/group"),
        s(&d.join(".wh..wh..opq")),
    ]);
    assert!(e.contains("is not written"), "{e}");
    // A directory is not replaced by a file, nor a file by a directory (docker cp's rule).
    let e = env.fails(&["cp", &format!("{img}:/etc/group"), s(&d)]);
    assert!(
        e.contains("group: cannot overwrite a directory with a non-directory"),
        "{e}"
    );
    let e = env.fails(&["cp", &format!("{img}:/etc"), s(&d)]);
    assert!(
        e.contains("etc: cannot overwrite a non-directory with a directory"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(d.join("group/sub/important")).unwrap(),
        b"mine"
    );
    assert_eq!(std::fs::read(d.join("passwd")).unwrap(), b"x");
    assert_eq!(std::fs::read(d.join("etc")).unwrap(), b"a file");
    // A file over a file is replaced, as cp does.
    env.ok(&["cp", &format!("{img}:/etc/passwd"), s(&d)]);
    assert_eq!(
        std::fs::read(d.join("passwd")).unwrap(),
        env.ok(&["cat", img, "/etc/passwd"]).into_bytes()
    );
}

#[test]
fn cp_fills_read_only_directories_without_privileges() {
    // As an unprivileged user, from an archive read in place: alpine's /var/empty is 0555.
    let Some(setpriv) = common::peer("setpriv") else {
        assert!(!common::in_ci(), "setpriv (util-linux) is required in CI");
        eprintln!("skipped: no setpriv");
        return;
    };
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: not root (cannot switch to nobody)");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("hoist-cp-")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let dest = dir.path().join("var");
    let src = format!(
        "docker-archive:{}:/var",
        s(&common::data("docker-v1.2_gzip_trivy-alpine-310.tar.gz"))
    );
    let out = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(common::hoist_bin())
        .args(["--root", s(&dir.path().join("store")), "cp", &src, s(&dest)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(dest.join("empty"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o555);
    assert!(dest.join("lib/apk/db/installed").is_file() || dest.join("cache").is_dir());
    assert!(!dir.path().join("store").exists());
}

#[test]
fn cat_reads_big_compressed_layers_from_their_restart_points() {
    // Three 12 MiB files in one gzip layer: past the first 8 MiB, a read starts at a
    // checkpoint the index recorded when the layer was loaded.
    let env = Env::new();
    let rootfs = env.path("rootfs");
    let mut files = Vec::new();
    for (i, name) in ["a.txt", "b.txt", "c.txt"].iter().enumerate() {
        let mut body = Vec::with_capacity(12 << 20);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ i as u64;
        while body.len() < 12 << 20 {
            // Text gzip compresses into many deflate blocks, with a little noise in it.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body.extend_from_slice(
                format!("line {} of {name}: {:x}\n", body.len(), x % 4096).as_bytes(),
            );
        }
        std::fs::create_dir_all(rootfs.join("data")).unwrap();
        std::fs::write(rootfs.join("data").join(name), &body).unwrap();
        files.push((format!("/data/{name}"), common::sha256(&body)));
    }
    env.ok(&["import", s(&rootfs), "big:1"]);
    let layout = gzip_layout(&env, "big:1");
    let other = Env::new();
    other.ok(&["load", "-i", s(&layout)]);
    let id = other.inspect("big:1")["Id"].clone();
    let layers = store_layers(&other.root, id.as_str().unwrap());
    assert_eq!(&layers[0][..2], &[0x1f, 0x8b], "a gzip layer in the store");
    let index = std::fs::read(
        other
            .root
            .join("hoist/index")
            .join(common::sha256(&layers[0])),
    )
    .unwrap();
    assert!(
        index.windows(4).any(|w| w == b"HSKP"),
        "the index holds checkpoints"
    );
    for (path, sha) in &files {
        let out = other.cmd(&["cat", "big:1", path]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(&common::sha256(&out.stdout), sha, "{path}");
    }
    // The same from the layout read in place (its index is built in memory).
    let loc = format!("oci:{}", s(&layout));
    for (path, sha) in &files {
        let out = env.cmd(&["cat", &loc, path]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(&common::sha256(&out.stdout), sha, "{path}");
    }
}

/// An OCI layout of store image `image` with its layers gzip-compressed (hoist keeps the
/// layers it imports uncompressed; pulled ones come gzipped).
fn gzip_layout(env: &Env, image: &str) -> std::path::PathBuf {
    use std::io::Write;
    let dir = env.path("gz-layout");
    env.ok(&[
        "copy",
        &format!("hoist:{image}"),
        &format!("oci:{}:{image}", s(&dir)),
    ]);
    let blobs = dir.join("blobs/sha256");
    let read = |d: &str| std::fs::read(blobs.join(&d[7..])).unwrap();
    let write = |b: &[u8]| -> String {
        let d = common::sha256(b);
        std::fs::write(blobs.join(&d), b).unwrap();
        format!("sha256:{d}")
    };
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mdesc = &mut index["manifests"][0];
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&read(mdesc["digest"].as_str().unwrap())).unwrap();
    for l in manifest["layers"].as_array_mut().unwrap() {
        let raw = read(l["digest"].as_str().unwrap());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(&raw).unwrap();
        let gz = gz.finish().unwrap();
        l["digest"] = write(&gz).into();
        l["size"] = gz.len().into();
        l["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip".into();
    }
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    mdesc["digest"] = write(&mbytes).into();
    mdesc["size"] = mbytes.len().into();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    dir
}
