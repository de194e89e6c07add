//! `hoist mount` / `hoist umount`: a walk of the mount (lstat, readlink, getxattr, read) must
//! equal the image's export (paths, types, modes, owners, sizes, devices, link targets, xattrs,
//! mtimes with nanoseconds, contents) and the corpus listing; hard links share an inode; every
//! write fails with EROFS; archives mount without a store; `--layer N` shows the tree as of
//! layer N; a `kill -9`'d mount is cleared by `hoist umount`.
//!
//! Mounting needs `/dev/fuse`, `fusermount3` and root (to read files of any mode): in CI all
//! three must be there; elsewhere a test says what is missing and returns.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::common::{self, Env, in_ci};
use crate::test_export::{corpus_images, load};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Whether mounts can be made here (in CI they must: a missing piece fails the test).
fn can_mount() -> bool {
    if !Path::new("/dev/fuse").exists() {
        assert!(!in_ci(), "/dev/fuse is required in CI");
        eprintln!("skipped: no /dev/fuse");
        return false;
    }
    if common::peer("fusermount3").is_none() {
        return false;
    }
    if !rustix::process::geteuid().is_root() {
        assert!(!in_ci(), "CI runs as root");
        eprintln!("skipped: mount tests read files of every mode: they need root");
        return false;
    }
    true
}

/// Whether a hoist mount is at `dir` (per `/proc/self/mountinfo`).
fn is_hoist_mount(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let want = dir.to_str().unwrap().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-").unwrap();
            f[4] == want && f[sep + 1] == "fuse.hoist"
        })
}

/// A mount made by a test, unmounted when dropped (also when the test fails).
struct Mounted {
    dir: PathBuf,
    /// The foreground `hoist mount` process, when it is one.
    child: Option<Child>,
}

impl Mounted {
    /// `hoist mount ARGS IMAGE DIR` in the foreground, once it says the mount answers.
    fn foreground(env: &Env, image: &str, dir: &Path, args: &[&str]) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let mut cmd = env.cmd(&["mount"]);
        cmd.args(args).arg(image).arg(dir);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("hoist mount {image} failed: {err}");
        }
        assert_eq!(line, format!("mounted {image} at {}\n", dir.display()));
        Mounted {
            dir: dir.to_path_buf(),
            child: Some(child),
        }
    }

    /// `hoist mount -d ARGS IMAGE DIR`.
    fn detached(env: &Env, image: &str, dir: &Path, args: &[&str]) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let mut all = vec!["mount", "-d"];
        all.extend_from_slice(args);
        all.extend([image, s(dir)]);
        let out = env.ok(&all);
        assert_eq!(out, format!("mounted {image} at {}\n", dir.display()));
        assert!(
            is_hoist_mount(dir),
            "{} is mounted when -d returns",
            dir.display()
        );
        Mounted {
            dir: dir.to_path_buf(),
            child: None,
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_hoist_mount(&self.dir) {
            let ok = Command::new(common::hoist_bin())
                .arg("umount")
                .arg(&self.dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("cleanup: hoist umount {} failed", self.dir.display());
                let _ = Command::new("fusermount3")
                    .arg("-uz")
                    .arg(&self.dir)
                    .status();
            }
        }
        if let Some(mut c) = self.child.take() {
            // It exits once unmounted; a kill is for one that did not.
            if !matches!(c.try_wait(), Ok(Some(_))) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// What a path is, as the walk of a mount or an export shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    /// f d l c b p
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    /// Regular: size; devices: "major,minor".
    size: String,
    /// Regular: sha256 of the content; symlink: the target.
    data: String,
    xattrs: Vec<(String, Vec<u8>)>,
    mtime: (i64, u32),
}

fn major(rdev: u64) -> u64 {
    ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)
}

fn minor(rdev: u64) -> u64 {
    (rdev & 0xff) | ((rdev >> 12) & !0xff)
}

/// Every path under `root` (relative, as bytes) with its row and inode number.
fn walk_mount(root: &Path) -> BTreeMap<Vec<u8>, (Row, u64)> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let t = m.file_type();
            let (kind, size, data) = if t.is_dir() {
                stack.push(p.clone());
                ('d', String::new(), String::new())
            } else if t.is_file() {
                let bytes = std::fs::read(&p).unwrap();
                assert_eq!(bytes.len() as u64, m.size(), "{}", p.display());
                ('f', m.size().to_string(), common::sha256(&bytes))
            } else if t.is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                assert_eq!(m.size(), target.as_os_str().len() as u64, "{}", p.display());
                ('l', String::new(), target.to_string_lossy().into_owned())
            } else if t.is_char_device() || t.is_block_device() {
                let k = if t.is_char_device() { 'c' } else { 'b' };
                (
                    k,
                    format!("{},{}", major(m.rdev()), minor(m.rdev())),
                    String::new(),
                )
            } else if t.is_fifo() {
                ('p', String::new(), String::new())
            } else {
                panic!("{}: unexpected type", p.display())
            };
            let mut names = vec![0u8; 1 << 16];
            let n = rustix::fs::llistxattr(&p, &mut names[..]).unwrap();
            let mut xattrs = Vec::new();
            for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
                let mut v = vec![0u8; 1 << 16];
                let k = rustix::fs::lgetxattr(&p, name, &mut v[..]).unwrap();
                xattrs.push((String::from_utf8_lossy(name).into_owned(), v[..k].to_vec()));
            }
            xattrs.sort();
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let row = Row {
                kind,
                mode: m.mode() & 0o7777,
                uid: u64::from(m.uid()),
                gid: u64::from(m.gid()),
                size,
                data,
                xattrs,
                mtime: (m.mtime(), m.mtime_nsec() as u32),
            };
            out.insert(rel, (row, m.ino()));
        }
    }
    out
}

/// A PAX `mtime` ("secs[.frac]", possibly negative) as floored seconds and nanoseconds.
fn pax_time(v: &str) -> (i64, u32) {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let nanos: u32 = format!("{frac:0<9}")[..9].parse().unwrap();
    let secs: i64 = int.parse().unwrap();
    if int.starts_with('-') && nanos > 0 {
        (secs - 1, 1_000_000_000 - nanos)
    } else {
        (secs, nanos)
    }
}

/// Paths (relative, as bytes) to what is there.
type Rows = BTreeMap<Vec<u8>, Row>;
/// Hard links: path -> target path.
type Links = BTreeMap<Vec<u8>, Vec<u8>>;

/// Every entry of a flat tar (an export): rows, and hard links.
fn tar_rows(tar: &Path) -> (Rows, Links) {
    let mut rows = BTreeMap::new();
    let mut links = BTreeMap::new();
    let mut a = tar::Archive::new(std::fs::File::open(tar).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e
            .path_bytes()
            .strip_suffix(b"/")
            .map_or_else(|| e.path_bytes().to_vec(), <[u8]>::to_vec);
        let h = e.header().clone();
        let mut mtime = (h.mtime().unwrap() as i64, 0);
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for x in pax {
                let x = x.unwrap();
                let key = x.key().unwrap();
                if key == "mtime" {
                    mtime = pax_time(x.value().unwrap());
                } else if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), x.value_bytes().to_vec()));
                }
            }
        }
        xattrs.sort();
        let t = h.entry_type();
        let link = e.link_name_bytes().map(|l| l.to_vec()).unwrap_or_default();
        let (kind, size, data) = match t {
            tar::EntryType::Link => {
                links.insert(path.clone(), link);
                continue;
            }
            tar::EntryType::Directory => ('d', String::new(), String::new()),
            tar::EntryType::Symlink => (
                'l',
                String::new(),
                String::from_utf8_lossy(&link).into_owned(),
            ),
            tar::EntryType::Char | tar::EntryType::Block => {
                let k = if t == tar::EntryType::Char { 'c' } else { 'b' };
                let dev = format!(
                    "{},{}",
                    h.device_major().unwrap().unwrap(),
                    h.device_minor().unwrap().unwrap()
                );
                (k, dev, String::new())
            }
            tar::EntryType::Fifo => ('p', String::new(), String::new()),
            _ => {
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).unwrap();
                ('f', bytes.len().to_string(), common::sha256(&bytes))
            }
        };
        let row = Row {
            kind,
            mode: h.mode().unwrap() & 0o7777,
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            size,
            data,
            xattrs,
            mtime,
        };
        rows.insert(path, row);
    }
    (rows, links)
}

/// Asserts that the walk of the mount at `dir` is the export `tar`: the same rows for every
/// path (a hard link is its target's inode: same row, same `st_ino`), and nothing else but
/// the directories no layer names (0755 root:root).
fn assert_mount_is_export(what: &str, dir: &Path, tar: &Path) {
    let walked = walk_mount(dir);
    let (rows, links) = tar_rows(tar);
    for (p, want) in &rows {
        let (got, _) = walked.get(p).unwrap_or_else(|| {
            panic!("{what}: {} is not in the mount", String::from_utf8_lossy(p))
        });
        assert_eq!(got, want, "{what}: {}", String::from_utf8_lossy(p));
    }
    for (p, target) in &links {
        let (got, ino) = &walked[p];
        let (want, target_ino) = &walked[target];
        assert_eq!(
            got,
            want,
            "{what}: hard link {}",
            String::from_utf8_lossy(p)
        );
        assert_eq!(
            ino,
            target_ino,
            "{what}: {} shares its target's inode",
            String::from_utf8_lossy(p)
        );
        assert!(
            std::fs::symlink_metadata(dir.join(std::ffi::OsStr::from_bytes(p)))
                .unwrap()
                .nlink()
                >= 2
        );
    }
    for (p, (row, _)) in &walked {
        if !rows.contains_key(p) && !links.contains_key(p) {
            assert_eq!(
                (row.kind, row.mode, row.uid, row.gid),
                ('d', 0o755, 0, 0),
                "{what}: {} is in the mount only",
                String::from_utf8_lossy(p)
            );
        }
    }
}

/// `flatten_listing.py DIR`: the corpus' listing of a directory tree.
fn dir_listing(dir: &Path) -> String {
    let mut c = Command::new("python3");
    c.arg(common::data("flatten_listing.py")).arg(dir);
    common::run_ok(&mut c)
}

#[test]
fn every_corpus_image_mounts_as_it_exports() {
    if !can_mount() {
        return;
    }
    let images = corpus_images();
    assert_eq!(images.len(), 30, "every image of the corpus");
    for (n, im) in images.iter().enumerate() {
        let env = Env::new();
        load(&env, im);
        let tar = env.path("export.tar");
        env.ok(&["export", "-o", s(&tar), &im.id]);
        let dir = env.path("mnt");
        // Both ways of running it: in the foreground and in the background.
        let m = if n % 2 == 0 {
            Mounted::foreground(&env, &im.id, &dir, &[])
        } else {
            Mounted::detached(&env, &im.id, &dir, &[])
        };
        let what = format!("{} ({})", im.file, im.id);
        assert_mount_is_export(&what, &dir, &tar);
        let want = std::fs::read_to_string(common::data(&im.tsv)).unwrap();
        assert_eq!(
            dir_listing(&dir),
            want,
            "{what}: listing of the mount != {}",
            im.tsv
        );
        drop(m);
        assert!(!is_hoist_mount(&dir), "{what}: still mounted");
    }
}

#[test]
fn a_mount_refuses_every_write_with_erofs() {
    if !can_mount() {
        return;
    }
    let env = Env::new();
    let file = "docker-v1.2_docker18_dive-test.tar";
    env.ok(&["load", "-i", s(&common::data(file))]);
    let dir = env.path("mnt");
    let _m = Mounted::detached(&env, "dive-test:latest", &dir, &[]);
    let erofs = |what: &str, r: std::io::Result<()>| {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(30), "{what}: {e} (want EROFS)");
    };
    let f = dir.join("somefile.txt");
    let before = std::fs::read(&f).unwrap();
    erofs("create", std::fs::write(dir.join("new"), b"x"));
    erofs("mkdir", std::fs::create_dir(dir.join("newdir")));
    erofs(
        "open for writing",
        std::fs::OpenOptions::new().write(true).open(&f).map(drop),
    );
    erofs(
        "append",
        std::fs::OpenOptions::new().append(true).open(&f).map(drop),
    );
    erofs("remove", std::fs::remove_file(&f));
    erofs("rmdir", std::fs::remove_dir(dir.join("tmp")));
    erofs("rename", std::fs::rename(&f, dir.join("moved")));
    erofs("symlink", std::os::unix::fs::symlink("x", dir.join("link")));
    erofs("hard link", std::fs::hard_link(&f, dir.join("hard")));
    erofs(
        "chmod",
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o777)),
    );
    erofs(
        "setxattr",
        rustix::fs::lsetxattr(&f, "user.x", b"1", rustix::fs::XattrFlags::empty())
            .map_err(std::io::Error::from),
    );
    assert_eq!(std::fs::read(&f).unwrap(), before, "the file is unchanged");
}

/// A docker archive of one image whose layers are `layers` (gzip-compressed when the flag
/// says so), tagged `tag`.
fn docker_archive(path: &Path, tag: &str, layers: &[(Vec<u8>, bool)]) {
    let mut diff_ids = Vec::new();
    let mut files = Vec::new();
    for (i, (layer, gzip)) in layers.iter().enumerate() {
        diff_ids.push(format!("sha256:{}", common::sha256(layer)));
        let bytes = if *gzip {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(layer).unwrap();
            z.finish().unwrap()
        } else {
            layer.clone()
        };
        files.push((format!("l{i}/layer.tar"), bytes));
    }
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cfg_name = format!("{}.json", common::sha256(&config));
    let names: Vec<&String> = files.iter().map(|(n, _)| n).collect();
    let manifest = json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": names}]);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    files.push((cfg_name, config));
    files.push(("manifest.json".into(), manifest));
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in &files {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    std::fs::write(path, b.into_inner().unwrap()).unwrap();
}

/// One entry of a test layer: name, type, mode, content or link target, PAX records.
type TestEntry<'a> = (
    &'a str,
    tar::EntryType,
    u32,
    &'a [u8],
    &'a [(&'a str, &'a [u8])],
);

/// A layer tar of `entries` (owner 1:2, mtime 1000 unless a PAX record says otherwise).
fn layer(entries: &[TestEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, mode, data, pax) in entries {
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().copied()).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_uid(1);
        h.set_gid(2);
        h.set_mtime(1_000);
        match kind {
            tar::EntryType::Regular => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, *data).unwrap();
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                h.set_size(0);
                b.append_link(&mut h, name, std::ffi::OsStr::from_bytes(data))
                    .unwrap();
            }
            _ => {
                if *kind == tar::EntryType::Char {
                    h.set_device_major(1).unwrap();
                    h.set_device_minor(3).unwrap();
                }
                h.set_size(0);
                b.append_data(&mut h, name, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Bytes that do not repeat (a reader at the wrong offset reads other bytes).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const BIG: usize = 3 << 20;

/// Four layers: plain, gzip, plain (an opaque directory), plain (a sparse file).
fn layered_archive(env: &Env) -> PathBuf {
    use tar::EntryType::*;
    let big_plain = pattern(BIG, 7);
    let big_gz = pattern(BIG, 11);
    let l0 = layer(&[
        ("a/", Directory, 0o755, b"", &[("mtime", b"1000.25")]),
        (
            "a/f1",
            Regular,
            0o644,
            b"one",
            &[("SCHILY.xattr.user.x", b"1")],
        ),
        ("a/f2", Regular, 0o600, b"two", &[]),
        (
            "a/big",
            Regular,
            0o644,
            &big_plain,
            &[("mtime", b"1234.000000007")],
        ),
        ("hl", Link, 0o644, b"a/f1", &[]),
        ("dev/", Directory, 0o755, b"", &[]),
        ("dev/null", Char, 0o666, b"", &[]),
        ("p", Fifo, 0o644, b"", &[]),
        ("s", Symlink, 0o777, b"a/f1", &[]),
        ("su", Regular, 0o4755, b"#!", &[]),
        ("t/", Directory, 0o1777, b"", &[]),
    ]);
    let l1 = layer(&[
        ("a/.wh.f2", Regular, 0o644, b"", &[]),
        ("a/f1", Regular, 0o644, b"uno", &[]),
        ("b/", Directory, 0o700, b"", &[]),
        ("b/big", Regular, 0o644, &big_gz, &[]),
    ]);
    let l2 = layer(&[
        ("a/", Directory, 0o750, b"", &[]),
        ("a/.wh..wh..opq", Regular, 0o644, b"", &[]),
        ("a/g", Regular, 0o644, b"g", &[]),
    ]);
    let l3 = crate::test_tar_cases::sparse_10();
    let archive = env.path("layered.tar");
    docker_archive(
        &archive,
        "layered:1",
        &[(l0, false), (l1, true), (l2, false), (l3, false)],
    );
    archive
}

/// A short view of a walk: path -> kind, mode, and content (sha256 prefix) or target.
fn summary(walked: &BTreeMap<Vec<u8>, (Row, u64)>) -> Vec<String> {
    walked
        .iter()
        .map(|(p, (r, _))| {
            let data = if r.kind == 'f' {
                &r.data[..8]
            } else {
                r.data.as_str()
            };
            format!(
                "{} {} {:04o} {}{}{}",
                String::from_utf8_lossy(p),
                r.kind,
                r.mode,
                r.size,
                if data.is_empty() { "" } else { " " },
                data
            )
        })
        .collect()
}

#[test]
fn layer_n_mounts_the_tree_as_of_that_layer() {
    if !can_mount() {
        return;
    }
    let env = Env::new();
    let archive = layered_archive(&env);
    env.ok(&["load", "-i", s(&archive)]);
    let sha8 = |b: &[u8]| common::sha256(b)[..8].to_string();
    let (one, uno, g) = (sha8(b"one"), sha8(b"uno"), sha8(b"g"));
    let (two, su) = (sha8(b"two"), sha8(b"#!"));
    let big_plain = sha8(&pattern(BIG, 7));
    let big_gz = sha8(&pattern(BIG, 11));
    let sparse = sha8(&crate::test_tar_cases::sparse_content());
    let base = vec![
        "a d 0755 ".to_string(),
        format!("a/big f 0644 {BIG} {big_plain}"),
        format!("a/f1 f 0644 3 {one}"),
        format!("a/f2 f 0600 3 {two}"),
        "dev d 0755 ".into(),
        "dev/null c 0666 1,3".into(),
        format!("hl f 0644 3 {one}"),
        "p p 0644 ".into(),
        "s l 0777  a/f1".into(),
        format!("su f 4755 2 {su}"),
        "t d 1777 ".into(),
    ];
    let mut after1 = base.clone();
    after1.retain(|l| !l.starts_with("a/f"));
    after1.insert(2, format!("a/f1 f 0644 3 {uno}"));
    after1.insert(3, "b d 0700 ".into());
    after1.insert(4, format!("b/big f 0644 {BIG} {big_gz}"));
    let mut after2 = after1.clone();
    after2.retain(|l| !l.starts_with("a/") && !l.starts_with("a "));
    after2.insert(0, "a d 0750 ".into());
    after2.insert(1, format!("a/g f 0644 1 {g}"));
    let mut after3 = after2.clone();
    after3.insert(4, "data d 0755 ".into());
    after3.insert(5, format!("data/sparse f 0644 {} {sparse}", 1 << 20));
    let wants = [base, after1, after2, after3];
    for (n, want) in wants.iter().enumerate() {
        let dir = env.path(&format!("mnt{n}"));
        let layer = n.to_string();
        let _m = Mounted::detached(&env, "layered:1", &dir, &["--layer", &layer]);
        let walked = walk_mount(&dir);
        assert_eq!(&summary(&walked), want, "--layer {n}");
        if n == 0 {
            // Hard links: one inode, two links; the tar's sub-second mtimes and xattrs.
            let (f1, ino) = &walked[&b"a/f1"[..]];
            assert_eq!(*ino, walked[&b"hl"[..]].1);
            assert_eq!(std::fs::metadata(dir.join("hl")).unwrap().nlink(), 2);
            assert_eq!(f1.xattrs, [("user.x".to_string(), b"1".to_vec())]);
            assert_eq!(walked[&b"a"[..]].0.mtime, (1000, 250_000_000));
            assert_eq!(walked[&b"a/big"[..]].0.mtime, (1234, 7));
        }
        if n == 1 {
            // The replaced a/f1 is a new inode: hl keeps the old content, alone.
            assert_ne!(walked[&b"a/f1"[..]].1, walked[&b"hl"[..]].1);
            assert_eq!(std::fs::metadata(dir.join("hl")).unwrap().nlink(), 1);
        }
    }
    // Without --layer: every layer, the same as --layer 3.
    let dir = env.path("mnt-all");
    let _m = Mounted::foreground(&env, "layered:1", &dir, &[]);
    assert_eq!(summary(&walk_mount(&dir)), wants[3]);
    let err = env.fails(&["mount", "--layer", "4", "layered:1", s(&env.path("mnt0"))]);
    assert!(
        err.contains("no layer 4 (the image has 4 layers, 0 to 3)"),
        "{err}"
    );
}

/// The walk of a mount as `hoist ls --format json` lines (without `mtime` and `layer`,
/// compared with the export elsewhere), sorted by path.
fn walk_as_ls_json(walked: &BTreeMap<Vec<u8>, (Row, u64)>) -> Vec<serde_json::Value> {
    let mut paths_of: BTreeMap<u64, Vec<&[u8]>> = BTreeMap::new();
    for (p, (r, ino)) in walked {
        if r.kind != 'd' {
            paths_of.entry(*ino).or_default().push(p);
        }
    }
    let mut out: Vec<serde_json::Value> = walked
        .iter()
        .map(|(p, (r, ino))| {
            let path = format!("/{}", String::from_utf8(p.clone()).unwrap());
            let kind = match r.kind {
                'f' => "file",
                'd' => "dir",
                'l' => "symlink",
                'c' => "char",
                'b' => "block",
                _ => "fifo",
            };
            let mut o =
                json!({"path": path, "type": kind, "mode": r.mode, "uid": r.uid, "gid": r.gid});
            match r.kind {
                'f' => o["size"] = json!(r.size.parse::<u64>().unwrap()),
                'l' => o["link"] = json!(r.data),
                'c' | 'b' => {
                    let (ma, mi) = r.size.split_once(',').unwrap();
                    o["major"] = json!(ma.parse::<u64>().unwrap());
                    o["minor"] = json!(mi.parse::<u64>().unwrap());
                }
                _ => {}
            }
            if let Some(group) = paths_of.get(ino).filter(|g| g.len() > 1) {
                let first = group.iter().min().unwrap();
                o["hardlink"] = json!(format!("/{}", String::from_utf8(first.to_vec()).unwrap()));
            }
            let xattrs: serde_json::Map<String, serde_json::Value> = r
                .xattrs
                .iter()
                .map(|(k, v)| (k.clone(), json!(hex::encode(v))))
                .collect();
            o["xattrs"] = xattrs.into();
            o
        })
        .collect();
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    out
}

#[test]
fn layer_n_of_corpus_images_mounts_as_ls_lists_it() {
    if !can_mount() {
        return;
    }
    // Uncompressed and gzip layers, whiteouts, opaque directories, hard links; every image
    // each archive loads, every layer.
    for file in [
        "docker-v1.2_docker18_dive-test.tar",
        "ggcr-tarball_kaniko_dive-test.tar",
        "ggcr-tarball_ggcr-whiteout_dir.tar",
        "docker-v1.2_ggcr-test_link.tar",
    ] {
        let env = Env::new();
        let out = env.ok(&["load", "-i", s(&common::data(file))]);
        for loaded in out.lines() {
            let name = loaded.rsplit(": ").next().unwrap().to_string();
            let layers = env.inspect(&name)["RootFS"]["Layers"]
                .as_array()
                .unwrap()
                .len();
            for n in 0..layers {
                let dir = env.path(&format!("mnt{n}"));
                let layer = n.to_string();
                let m = Mounted::detached(&env, &name, &dir, &["--layer", &layer]);
                let got = walk_as_ls_json(&walk_mount(&dir));
                drop(m);
                let listing = env.ok(&["ls", "-R", "--as-of", &layer, "--format", "json", &name]);
                let mut want: Vec<serde_json::Value> = listing
                    .lines()
                    .map(|l| {
                        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                        let o = v.as_object_mut().unwrap();
                        o.remove("mtime");
                        o.remove("layer");
                        v
                    })
                    .collect();
                want.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
                assert_eq!(
                    got, want,
                    "{file} {name} --layer {n}: the mount != hoist ls --as-of {n}"
                );
            }
        }
    }
}

#[test]
fn reads_at_any_offset_match_the_content() {
    if !can_mount() {
        return;
    }
    let env = Env::new();
    let archive = layered_archive(&env);
    env.ok(&["load", "-i", s(&archive)]);
    // a/big is in a plain layer (read in place), b/big in a gzip one (read through a
    // decompressing reader: backwards means reopening), data/sparse is sparse. (Layer 2
    // hides a/big: it is read as of layer 1.)
    let files = [
        ("a/big", "1", pattern(BIG, 7)),
        ("b/big", "1", pattern(BIG, 11)),
        ("data/sparse", "3", crate::test_tar_cases::sparse_content()),
    ];
    for (name, layer, want) in &files {
        let dir = env.path(&format!("mnt-{layer}"));
        let _m = Mounted::detached(&env, "layered:1", &dir, &["--layer", layer]);
        let f = std::fs::File::open(dir.join(name)).unwrap();
        let len = want.len() as u64;
        // Forward, backward, across the middle, at the end, past the end.
        for (off, n) in [
            (len / 2, 100_000),
            (0, 4096),
            (len - 10, 100),
            (1, 300_000),
            (len / 3 + 7, 1 << 20),
            (4000, 2000),
            (len, 10),
        ] {
            let mut buf = vec![0u8; n];
            let got = f.read_at(&mut buf, off).unwrap();
            let end = (off + n as u64).min(len) as usize;
            assert_eq!(
                &buf[..got],
                &want[off as usize..end],
                "{name} at {off} (+{n})"
            );
            assert_eq!(got, end - off as usize, "{name} at {off}: a short read");
        }
    }
}

#[test]
fn archives_and_layouts_mount_without_a_store() {
    if !can_mount() {
        return;
    }
    let cases = [
        // Uncompressed layers, read in place from the archive.
        (
            "docker-archive:",
            "docker-v1.2_docker18_dive-test.tar",
            "",
            "docker-v1.2_docker18_dive-test.rootfs.tsv",
        ),
        // A gzip archive (decompressed once to a temporary file).
        (
            "docker-archive:",
            "docker-v1.2_gzip_trivy-alpine-310.tar.gz",
            "",
            "docker-v1.2_gzip_trivy-alpine-310.rootfs.tsv",
        ),
        // zstd layers.
        (
            "oci-archive:",
            "oci-archive_buildkit-zstd_dive.tar",
            "",
            "oci-archive_buildkit-zstd_dive.rootfs.tsv",
        ),
        // An OCI layout directory with gzip layers.
        (
            "oci:",
            "oci-layout-dir_trivy-test_image_tag.oci",
            "",
            "oci-layout-dir_trivy-test_image_tag.oci.rootfs.tsv",
        ),
        // A multi-platform layout: the platform asked for.
        (
            "oci:",
            "oci-layout-dir_docker-containerd-store_stereoscope-multiplatform",
            "linux/arm64",
            "oci-layout-dir_docker-containerd-store_stereoscope-multiplatform.img1.rootfs.tsv",
        ),
    ];
    for (transport, file, platform, tsv) in cases {
        let env = Env::new();
        let image = format!("{transport}{}", common::data(file).display());
        let dir = env.path("mnt");
        let args: Vec<&str> = if platform.is_empty() {
            vec![]
        } else {
            vec!["--platform", platform]
        };
        let m = Mounted::detached(&env, &image, &dir, &args);
        let want = std::fs::read_to_string(common::data(tsv)).unwrap();
        assert_eq!(
            dir_listing(&dir),
            want,
            "{image}: listing of the mount != {tsv}"
        );
        drop(m);
        assert!(!env.root.exists(), "{image}: mounting created the store");
    }
}

/// The pid of the background process serving the mount at `dir`.
fn daemon_of(dir: &Path) -> i32 {
    for e in std::fs::read_dir("/proc").unwrap() {
        let e = e.unwrap();
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.contains(&&b"--detached-child"[..]) && args.contains(&dir.as_os_str().as_bytes()) {
            return pid;
        }
    }
    panic!("no background process serves {}", dir.display());
}

#[test]
fn umount_clears_the_mount_of_a_killed_process() {
    if !can_mount() {
        return;
    }
    let env = Env::new();
    let file = "docker-v1.2_docker18_dive-test.tar";
    env.ok(&["load", "-i", s(&common::data(file))]);
    let dir = env.path("mnt");
    let _m = Mounted::detached(&env, "dive-test:latest", &dir, &[]);
    let pid = daemon_of(&dir);
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    // Dead once it is gone or a zombie (it is not our child: whoever adopted it reaps it).
    let stat = PathBuf::from(format!("/proc/{}/stat", pid.as_raw_nonzero()));
    while std::fs::read_to_string(&stat)
        .is_ok_and(|s| !s.rsplit(") ").next().unwrap().starts_with('Z'))
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // ENOTCONN ("Transport endpoint is not connected"), or ECONNABORTED right after the
    // kill, while the kernel still aborts the connection's requests.
    let dead = std::fs::read_dir(&dir).map(drop).unwrap_err();
    assert!(
        matches!(dead.raw_os_error(), Some(107 | 103)),
        "{dead} (want ENOTCONN)"
    );
    assert!(is_hoist_mount(&dir), "a dead mount stays until cleared");
    let out = env.cmd(&["umount", s(&dir)]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_hoist_mount(&dir));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "a normal, empty dir again"
    );
    let parent = std::fs::metadata(env.dir.path()).unwrap();
    assert_eq!(std::fs::metadata(&dir).unwrap().dev(), parent.dev());
    // Twice: now it is no mount.
    let err = env.fails(&["umount", s(&dir)]);
    assert_eq!(
        err,
        format!("hoist: error: {}: not a hoist mount\n", dir.display())
    );
    // Another file system's mount is not ours to unmount.
    let err = env.fails(&["umount", "/proc"]);
    assert_eq!(
        err,
        "hoist: error: /proc: not a hoist mount (it is a proc mount)\n"
    );
}

#[test]
fn sigterm_and_umount_end_a_foreground_mount_with_status_0() {
    if !can_mount() {
        return;
    }
    let env = Env::new();
    let file = "docker-v1.2_docker18_dive-test.tar";
    env.ok(&["load", "-i", s(&common::data(file))]);
    for how in ["SIGTERM", "SIGINT", "umount"] {
        let dir = env.path(&format!("mnt-{how}"));
        let mut m = Mounted::foreground(&env, "dive-test:latest", &dir, &[]);
        let child = m.child.as_mut().unwrap();
        let pid = rustix::process::Pid::from_child(child);
        match how {
            "SIGTERM" => rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap(),
            "SIGINT" => rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap(),
            _ => {
                env.ok(&["umount", s(&dir)]);
            }
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{how}");
        assert!(!is_hoist_mount(&dir), "{how}: unmounted");
    }
}

#[test]
fn other_commands_run_while_an_image_is_mounted() {
    if !can_mount() {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker18_dive-test.tar")),
    ]);
    let dir = env.path("mnt");
    let _m = Mounted::detached(&env, "dive-test:latest", &dir, &[]);
    // Loads (which share the store's lock with the mount) and reads do not wait for it.
    let out = env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker1.13_almostempty.tar")),
    ]);
    assert!(out.starts_with("Loaded image"), "{out}");
    env.ok(&["rmi", "dive-test:latest"]);
    let images = env.ok(&["images", "-q"]);
    assert_eq!(images.lines().count(), 1, "{images}");
    // The mount still reads the removed image (gc waits for the unmount).
    let content = std::fs::read(dir.join("somefile.txt")).unwrap();
    assert_eq!(content.len(), 6405);
}

#[test]
fn mount_without_fusermount3_says_what_to_install() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker1.13_almostempty.tar")),
    ]);
    let before = env.snapshot();
    let dir = env.path("mnt");
    std::fs::create_dir(&dir).unwrap();
    let out = env
        .cmd(&["mount", "busybox:latest", s(&dir)])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    if Path::new("/dev/fuse").exists() {
        assert_eq!(
            err,
            "hoist: error: fusermount3 not found on PATH; install FUSE 3 (Debian/Ubuntu: \
             apt-get install fuse3; in a container also pass the device: --device /dev/fuse)\n"
        );
    } else {
        assert!(
            err.contains("/dev/fuse") && err.contains("apt-get install fuse3"),
            "{err}"
        );
    }
    assert_eq!(env.snapshot(), before, "the store is unchanged");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn bad_mount_points_and_images_are_refused_before_mounting() {
    if !can_mount() {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker18_dive-test.tar")),
    ]);
    let missing = env.path("missing");
    let err = env.fails(&["mount", "dive-test:latest", s(&missing)]);
    assert_eq!(
        err,
        format!(
            "hoist: error: {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    let file = env.path("file");
    std::fs::write(&file, b"").unwrap();
    let err = env.fails(&["mount", "-d", "dive-test:latest", s(&file)]);
    assert_eq!(
        err,
        format!("hoist: error: {}: not a directory\n", file.display())
    );
    let dir = env.path("mnt");
    std::fs::create_dir(&dir).unwrap();
    let err = env.fails(&["mount", "-d", "no-such:1", s(&dir)]);
    assert_eq!(
        err,
        "hoist: error: reading no-such:1: No such image: no-such:1\n"
    );
    // Mounting over a hoist mount is refused.
    let _m = Mounted::detached(&env, "dive-test:latest", &dir, &[]);
    let err = env.fails(&["mount", "dive-test:latest", s(&dir)]);
    assert_eq!(
        err,
        format!(
            "hoist: error: {}: already a fuse.hoist mount (`hoist umount` it first)\n",
            dir.display()
        )
    );
}
