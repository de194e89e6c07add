//! One table of tar edge cases run through every path that reads a layer: `load` (which checks
//! each layer), `import`, `create` (unpack to disk), `export` (merged tar), `analyze` and
//! `squash`. Each
//! case gives the same tree on every path, or the same refusal on every path; and every run
//! stays within a memory and time bound measured on the child process (`/usr/bin/time`).
//!
//! Layers a path refuses cannot be loaded, so to see what `create`, `export` and `analyze` do
//! with them the image is written into the store directly (with correct digests), as a store
//! filled by an older hoist or by another tool would hold it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{self, Env};

/// Every command of the table must stay under this peak RSS (hoist's own is ~10 MiB; a
/// regression to reading a header whole or to quadratic path handling shows as hundreds).
const MAX_RSS_KIB: u64 = 100 * 1024;
/// And under this wall time (the cases run in well under a second; this only catches runaway
/// work such as writing a terabyte of zeros, with room for a loaded CI machine).
const MAX_SECONDS: f64 = 30.0;
/// A command still running after this is killed (and the case fails).
const KILL_AFTER: &str = "120";
/// The command every image gets (create needs one).
const CMD: &str = r#"CMD ["/bin/sh"]"#;
/// Fixed mtime of every header.
const MTIME: u64 = 1_700_000_000;

// ---------------------------------------------------------------------------------------------
// A raw tar builder: every header byte under the test's control.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Magic {
    Ustar,
    Gnu,
    V7,
}

/// Octal when it fits, GNU base-256 otherwise.
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    if s.len() > digits {
        field.fill(0);
        let n = field.len();
        field[n - 8..].copy_from_slice(&v.to_be_bytes());
        field[0] |= 0x80;
        return;
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

fn header(name: &[u8], typeflag: u8, size: u64, magic: Magic) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    octal(
        &mut h[100..108],
        if typeflag == b'5' { 0o755 } else { 0o644 },
    );
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], MTIME);
    h[156] = typeflag;
    match magic {
        Magic::Ustar => {
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
        }
        Magic::Gnu => h[257..265].copy_from_slice(b"ustar  \0"),
        Magic::V7 => {}
    }
    checksum(&mut h);
    h
}

fn checksum(h: &mut [u8; 512]) {
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

fn pad(v: &mut Vec<u8>) {
    v.resize(v.len().div_ceil(512) * 512, 0);
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = body + len.to_string().len();
    }
    [
        len.to_string().as_bytes(),
        b" ",
        key.as_bytes(),
        b"=",
        value,
        b"\n",
    ]
    .concat()
}

#[derive(Default)]
struct RawTar(Vec<u8>);

impl RawTar {
    fn entry(mut self, name: &[u8], typeflag: u8, data: &[u8], magic: Magic) -> Self {
        self.0
            .extend_from_slice(&header(name, typeflag, data.len() as u64, magic));
        self.0.extend_from_slice(data);
        pad(&mut self.0);
        self
    }
    fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name.as_bytes(), b'0', data, Magic::Ustar)
    }
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        self.entry(b"PaxHeaders.0/x", b'x', &data, Magic::Ustar)
    }
    fn long_name(self, name: &[u8]) -> Self {
        let data = [name, b"\0"].concat();
        self.entry(b"././@LongLink", b'L', &data, Magic::Gnu)
    }
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn done(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0
    }
}

/// The 1 MiB file the sparse cases describe: two runs of data, holes around them.
const SPARSE_SIZE: u64 = 1 << 20;
const SPARSE_RUNS: [(u64, u8); 2] = [(4096, b'A'), (700_000, b'B')];
const RUN_LEN: u64 = 1000;

pub(crate) fn sparse_content() -> Vec<u8> {
    let mut v = vec![0u8; SPARSE_SIZE as usize];
    for (off, b) in SPARSE_RUNS {
        v[off as usize..(off + RUN_LEN) as usize].fill(b);
    }
    v
}

fn sparse_runs_data() -> Vec<u8> {
    SPARSE_RUNS
        .iter()
        .flat_map(|(_, b)| vec![*b; RUN_LEN as usize])
        .collect()
}

fn sparse_map_csv() -> String {
    SPARSE_RUNS
        .iter()
        .map(|(off, _)| format!("{off},{RUN_LEN}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// GNU tar's `--sparse --sparse-version=1.0`: the map leads the data, in whole blocks.
pub(crate) fn sparse_10() -> Vec<u8> {
    let mut map = format!("{}\n", SPARSE_RUNS.len());
    for (off, _) in SPARSE_RUNS {
        map.push_str(&format!("{off}\n{RUN_LEN}\n"));
    }
    let mut data = map.into_bytes();
    pad(&mut data);
    data.extend_from_slice(&sparse_runs_data());
    let size = SPARSE_SIZE.to_string();
    RawTar::default()
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"data/sparse"),
            ("GNU.sparse.realsize", size.as_bytes()),
        ])
        .entry(b"data/GNUSparseFile.0/sparse", b'0', &data, Magic::Ustar)
        .done()
}

/// Format 0.1: the map in one record.
fn sparse_01() -> Vec<u8> {
    let size = SPARSE_SIZE.to_string();
    let map = sparse_map_csv();
    RawTar::default()
        .pax(&[
            ("GNU.sparse.size", size.as_bytes()),
            ("GNU.sparse.numblocks", b"2"),
            ("GNU.sparse.name", b"data/sparse"),
            ("GNU.sparse.map", map.as_bytes()),
        ])
        .entry(
            b"data/GNUSparseFile.0/sparse",
            b'0',
            &sparse_runs_data(),
            Magic::Ustar,
        )
        .done()
}

/// Format 0.0: one offset and one numbytes record per run.
fn sparse_00() -> Vec<u8> {
    let size = SPARSE_SIZE.to_string();
    let (o0, o1) = (SPARSE_RUNS[0].0.to_string(), SPARSE_RUNS[1].0.to_string());
    let len = RUN_LEN.to_string();
    RawTar::default()
        .pax(&[
            ("GNU.sparse.size", size.as_bytes()),
            ("GNU.sparse.numblocks", b"2"),
            ("GNU.sparse.offset", o0.as_bytes()),
            ("GNU.sparse.numbytes", len.as_bytes()),
            ("GNU.sparse.offset", o1.as_bytes()),
            ("GNU.sparse.numbytes", len.as_bytes()),
        ])
        .entry(b"data/sparse", b'0', &sparse_runs_data(), Magic::Ustar)
        .done()
}

/// An old GNU sparse entry claiming 1 TiB, with 512 bytes of data at its end.
fn old_gnu_sparse_tib() -> Vec<u8> {
    let tib: u64 = 1 << 40;
    let mut h = header(b"huge", b'S', 512, Magic::Gnu);
    octal(&mut h[386..398], tib - 512); // first sparse entry: offset
    octal(&mut h[398..410], 512); // and length
    octal(&mut h[483..495], tib); // real size
    checksum(&mut h);
    RawTar::default().raw(&h).raw(&[b'z'; 512]).done()
}

/// A name of exactly `len` bytes whose components stay under 255 bytes.
fn name_of(len: usize) -> String {
    let mut s = String::new();
    while len - s.len() > 200 {
        s.push_str(&"d".repeat(199));
        s.push('/');
    }
    s.push_str(&"f".repeat(len - s.len()));
    s
}

// ---------------------------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------------------------

enum Want {
    /// Every path gives this tree (listing lines as [`LISTER`] prints them, implied
    /// directories included).
    Tree(Vec<String>),
    /// Every path refuses the layer with an error containing this.
    Refused(&'static str),
}

struct Case {
    name: &'static str,
    layer: Vec<u8>,
    want: Want,
}

fn sha(b: &[u8]) -> String {
    common::sha256(b)
}

fn cases() -> Vec<Case> {
    let hello_sha = sha(b"hello");
    let long = format!("dir/{}", "n".repeat(150));
    let sparse_tree = vec![
        "d 0755 - - data".to_string(),
        format!(
            "f 0644 {SPARSE_SIZE} {} data/sparse",
            sha(&sparse_content())
        ),
    ];
    let name4096 = name_of(4096);
    let mut tree4096: Vec<String> = Vec::new();
    let mut prefix = String::new();
    for c in name4096.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(c);
        if prefix.len() < name4096.len() {
            tree4096.push(format!("d 0755 - - {prefix}"));
        }
    }
    tree4096.push(format!("f 0644 5 {hello_sha} {name4096}"));
    let random: Vec<u8> = {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    vec![
        Case {
            // docker reads the GNU long name whatever the header's format.
            name: "v7 header with a GNU long name",
            layer: RawTar::default()
                .long_name(long.as_bytes())
                .entry(b"short", b'0', b"hello", Magic::V7)
                .done(),
            want: Want::Tree(vec![
                "d 0755 - - dir".into(),
                format!("f 0644 5 {hello_sha} {long}"),
            ]),
        },
        Case {
            name: "PAX sparse 1.0",
            layer: sparse_10(),
            want: Want::Tree(sparse_tree.clone()),
        },
        Case {
            name: "PAX sparse 0.1",
            layer: sparse_01(),
            want: Want::Tree(sparse_tree.clone()),
        },
        Case {
            name: "PAX sparse 0.0",
            layer: sparse_00(),
            want: Want::Tree(sparse_tree),
        },
        Case {
            name: "old GNU sparse of 1 TiB",
            layer: old_gnu_sparse_tib(),
            want: Want::Refused("old GNU sparse file"),
        },
        Case {
            name: "PAX path with a NUL",
            layer: RawTar::default()
                .pax(&[("path", b"evil\0name")])
                .file("x", b"hello")
                .done(),
            want: Want::Refused("contains a NUL byte"),
        },
        Case {
            name: "100 KB symlink target",
            layer: RawTar::default()
                .pax(&[("linkpath", "t".repeat(100_000).as_bytes())])
                .entry(b"link", b'2', b"", Magic::Ustar)
                .done(),
            want: Want::Refused("link target of 100000 bytes is longer than 4095"),
        },
        Case {
            name: "PAX header of exactly 1 MiB",
            layer: {
                // A record of 1 MiB in all: "<7 digits> hoist.pad=<value>\n".
                let value = vec![b'p'; (1 << 20) - 19];
                let rec = pax_record("hoist.pad", &value);
                assert_eq!(rec.len(), 1 << 20);
                RawTar::default()
                    .entry(b"PaxHeaders.0/f", b'x', &rec, Magic::Ustar)
                    .file("f", b"hello")
                    .done()
            },
            want: Want::Tree(vec![format!("f 0644 5 {hello_sha} f")]),
        },
        Case {
            name: "PAX header of 1 MiB + 1",
            layer: {
                let value = vec![b'p'; (1 << 20) - 18];
                RawTar::default()
                    .entry(
                        b"PaxHeaders.0/f",
                        b'x',
                        &pax_record("hoist.pad", &value),
                        Magic::Ustar,
                    )
                    .file("f", b"hello")
                    .done()
            },
            want: Want::Refused("header field too long"),
        },
        Case {
            name: "GNU long name of 1 MiB + 1",
            layer: RawTar::default()
                .entry(
                    b"././@LongLink",
                    b'L',
                    &vec![b'a'; (1 << 20) + 1],
                    Magic::Gnu,
                )
                .file("f", b"hello")
                .done(),
            want: Want::Refused("header field too long"),
        },
        Case {
            name: "name of 4096 bytes",
            layer: RawTar::default()
                .pax(&[("path", name4096.as_bytes())])
                .file("f", b"hello")
                .done(),
            want: Want::Tree(tree4096),
        },
        Case {
            name: "name of 4097 bytes",
            layer: RawTar::default()
                .pax(&[("path", name_of(4097).as_bytes())])
                .file("f", b"hello")
                .done(),
            want: Want::Refused("name of 4097 bytes is longer than 4096"),
        },
        Case {
            name: "100,000 path components",
            layer: RawTar::default()
                .pax(&[("path", "a/".repeat(100_000).as_bytes())])
                .file("f", b"hello")
                .done(),
            want: Want::Refused("name of 200000 bytes is longer than 4096"),
        },
        Case {
            name: "component of 256 bytes",
            layer: RawTar::default()
                .pax(&[("path", format!("d/{}", "c".repeat(256)).as_bytes())])
                .file("f", b"hello")
                .done(),
            want: Want::Refused("a component of 256 bytes is longer than 255"),
        },
        Case {
            name: "not a tar",
            layer: random,
            want: Want::Refused("checksum mismatch"),
        },
        Case {
            // A whiteout of a name that is not UTF-8 is a whiteout, as in docker.
            name: "whiteout of a non-UTF-8 name",
            layer: RawTar::default()
                .entry(b".wh.caf\xe9", b'0', b"", Magic::Ustar)
                .file("f", b"hello")
                .done(),
            want: Want::Tree(vec![format!("f 0644 5 {hello_sha} f")]),
        },
        Case {
            name: "xattr value over 64 KiB",
            layer: RawTar::default()
                .pax(&[("SCHILY.xattr.user.big", &vec![b'v'; (64 << 10) + 1])])
                .file("f", b"hello")
                .done(),
            want: Want::Refused("cannot be set: names are 1 to 255 bytes, values at most 64 KiB"),
        },
        Case {
            name: "owner id 2^32 - 1",
            layer: RawTar::default()
                .pax(&[("uid", b"4294967295")])
                .file("f", b"hello")
                .done(),
            want: Want::Refused("owner id 4294967295 is out of range"),
        },
        Case {
            // docker removes the path before linking: a link to itself has no target left.
            name: "hard link to itself",
            layer: RawTar::default()
                .file("a", b"hello")
                .pax(&[("linkpath", b"a")])
                .entry(b"a", b'1', b"", Magic::Ustar)
                .done(),
            want: Want::Refused("hard link target \"a\" does not exist"),
        },
        Case {
            name: "sparse file over 64 GiB",
            layer: RawTar::default()
                .pax(&[
                    ("GNU.sparse.major", b"0"),
                    ("GNU.sparse.minor", b"1"),
                    ("GNU.sparse.size", b"68719476737"),
                    ("GNU.sparse.numblocks", b"0"),
                ])
                .entry(b"holes", b'0', b"", Magic::Ustar)
                .done(),
            want: Want::Refused(
                "sparse file of 68719476737 bytes is over the 68719476736-byte limit",
            ),
        },
        Case {
            // docker keeps a whiteout-looking directory as an ordinary name.
            name: "whiteout-looking directory",
            layer: RawTar::default().file("a/.wh.b/c", b"hello").done(),
            want: Want::Tree(vec![
                "d 0755 - - a".into(),
                "d 0755 - - a/.wh.b".into(),
                format!("f 0644 5 {hello_sha} a/.wh.b/c"),
            ]),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Running a case.
// ---------------------------------------------------------------------------------------------

/// Lists a directory (fd-relative, so paths longer than `PATH_MAX` work) or a tar, one line
/// per entry: `<type> <mode> <size|-> <sha256|-> <path>[ -> <target>]`, implied directories of
/// a tar added as `d 0755`; `ALLOC <bytes>` on stderr for each regular file of a directory.
const LISTER: &str = r#"
import hashlib, os, stat, sys, tarfile
mode, path = sys.argv[1], sys.argv[2]
out = {}
def name(b): return b.decode('utf-8', 'backslashreplace')
if mode == 'dir':
    root = os.fsencode(path)
    for dirpath, dirs, files, dfd in os.fwalk(root):
        rel = os.path.relpath(dirpath, root)
        for n in dirs + files:
            p = n if rel == b'.' else rel + b'/' + n
            st = os.stat(n, dir_fd=dfd, follow_symlinks=False)
            m = '%04o' % stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                out[p] = 'd %s - -' % m
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(n, os.O_RDONLY, dir_fd=dfd)
                h = hashlib.sha256()
                while True:
                    b = os.read(fd, 1 << 20)
                    if not b: break
                    h.update(b)
                os.close(fd)
                out[p] = 'f %s %d %s' % (m, st.st_size, h.hexdigest())
                sys.stderr.write('ALLOC %d\n' % (st.st_blocks * 512))
            elif stat.S_ISLNK(st.st_mode):
                out[p] = 'l %s - -' % m
                out[p] += '\0' + name(os.readlink(n, dir_fd=dfd))
            else:
                out[p] = 'o %s - -' % m
else:
    with tarfile.open(path) as t:
        for e in t:
            p = os.fsencode(e.name).rstrip(b'/')
            m = '%04o' % e.mode
            if e.isdir():
                out[p] = 'd %s - -' % m
            elif e.isfile():
                out[p] = 'f %s %d %s' % (m, e.size, hashlib.sha256(t.extractfile(e).read()).hexdigest())
            elif e.issym():
                out[p] = 'l %s - -' % m + '\0' + e.linkname
            else:
                out[p] = 'o %s - -' % m
    for p in list(out):
        parts = p.split(b'/')
        for i in range(1, len(parts)):
            out.setdefault(b'/'.join(parts[:i]), 'd 0755 - -')
for p in sorted(out):
    line, _, target = out[p].partition('\0')
    print(line + ' ' + name(p) + (' -> ' + target if target else ''))
"#;

fn lister(mode: &str, path: &Path) -> (Vec<String>, Vec<u64>) {
    let out = Command::new("python3")
        .args(["-c", LISTER, mode])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "lister: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let alloc = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("ALLOC ")?.parse().ok())
        .collect();
    (lines, alloc)
}

/// The outcome of one command under `/usr/bin/time`: exit code, stdout, stderr.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs hoist under `/usr/bin/time` and `timeout`, asserting the memory and time bounds.
fn run(env: &Env, case: &str, args: &[&str]) -> Run {
    let time = Path::new("/usr/bin/time");
    let stats = env.path("time.out");
    let mut cmd = if time.exists() {
        let mut c = Command::new("timeout");
        c.arg(KILL_AFTER)
            .arg(time)
            .arg("-f")
            .arg("%M %e")
            .arg("-o")
            .arg(&stats);
        c
    } else {
        assert!(!common::in_ci(), "/usr/bin/time is required in CI");
        let mut c = Command::new("timeout");
        c.arg(KILL_AFTER);
        c
    };
    cmd.arg(common::hoist_bin())
        .arg("--root")
        .arg(&env.root)
        .args(args)
        .stdin(std::process::Stdio::null());
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_ne!(
        out.status.code(),
        Some(124),
        "{case}: hoist {args:?} was killed after {KILL_AFTER} s"
    );
    assert!(
        !stderr.contains("panicked"),
        "{case}: hoist {args:?} panicked: {stderr}"
    );
    if time.exists() {
        let s = std::fs::read_to_string(&stats).unwrap();
        let last = s.lines().last().unwrap_or_default();
        let mut it = last.split(' ');
        let (rss, secs): (u64, f64) = (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
        );
        assert!(
            rss <= MAX_RSS_KIB,
            "{case}: hoist {args:?} peaked at {rss} KiB"
        );
        assert!(secs <= MAX_SECONDS, "{case}: hoist {args:?} took {secs} s");
    }
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr,
    }
}

fn expect_refusal(case: &str, what: &str, r: &Run, fragment: &str) {
    assert_eq!(
        r.code,
        Some(1),
        "{case}: {what} should refuse: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains(fragment),
        "{case}: {what}: the error says {fragment:?}: {}",
        r.stderr
    );
    // Names are quoted at most ~200 bytes: a hostile name never floods the message.
    assert!(
        r.stderr.len() < 2000,
        "{case}: {what}: message of {} bytes",
        r.stderr.len()
    );
}

/// A docker archive of one image with the single layer `layer`.
fn docker_archive(path: &Path, tag: &str, layer: &[u8]) {
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha(layer))]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cfg_name = format!("{}.json", sha(&config));
    let manifest = json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["l/layer.tar"]}]);
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        ("l/layer.tar", layer),
        (cfg_name.as_str(), &config[..]),
        ("manifest.json", &serde_json::to_vec(&manifest).unwrap()[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, bytes).unwrap();
    }
    std::fs::write(path, b.into_inner().unwrap()).unwrap();
}

/// Writes an image whose one layer is `layer` into the store directly, bypassing the checks
/// of load and import: a valid image is imported, then given a new config and manifest
/// naming `layer` (all digests correct).
fn inject(env: &Env, tag: &str, layer: &[u8]) {
    let base = env.path("base.tar");
    std::fs::write(&base, RawTar::default().file("base", b"x").done()).unwrap();
    env.ok(&["import", "-c", CMD, base.to_str().unwrap(), tag]);
    let blob = |d: &str| {
        env.root
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let put = |bytes: &[u8]| {
        let d = sha(bytes);
        std::fs::write(blob(&d), bytes).unwrap();
        d
    };
    let index_path = env.root.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let desc = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| {
            d["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|n| n.ends_with(tag))
        })
        .unwrap();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(desc["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let mut config: Value = serde_json::from_slice(
        &std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let layer_digest = put(layer);
    config["rootfs"]["diff_ids"] = json!([format!("sha256:{layer_digest}")]);
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put(&config);
    manifest["config"]["digest"] = json!(format!("sha256:{config_digest}"));
    manifest["config"]["size"] = json!(config.len());
    manifest["layers"] = json!([{
        "mediaType": "application/vnd.oci.image.layer.v1.tar",
        "digest": format!("sha256:{layer_digest}"),
        "size": layer.len(),
    }]);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    desc["digest"] = json!(format!("sha256:{}", put(&manifest)));
    desc["size"] = json!(manifest.len());
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

fn check(case: &Case) {
    let env = Env::new();
    let name = case.name;
    let layer = env.path("layer.tar");
    std::fs::write(&layer, &case.layer).unwrap();
    let archive = env.path("image.tar");
    docker_archive(&archive, "case:load", &case.layer);
    let l = layer.to_str().unwrap();

    let before = env.snapshot();
    let loaded = run(&env, name, &["load", "-i", archive.to_str().unwrap()]);
    let imported = run(&env, name, &["import", "-c", CMD, l, "case:import"]);
    match &case.want {
        Want::Refused(fragment) => {
            expect_refusal(name, "load", &loaded, fragment);
            assert!(
                loaded.stderr.contains("layer 0"),
                "{name}: load names the layer: {}",
                loaded.stderr
            );
            expect_refusal(name, "import", &imported, fragment);
            let after: BTreeSet<String> = env
                .snapshot()
                .into_keys()
                .filter(|k| k.starts_with("blobs/sha256/") && k.len() > 13)
                .collect();
            assert!(
                before.is_empty() && after.is_empty(),
                "{name}: nothing stored: {after:?}"
            );
            inject(&env, "case:load", &case.layer);
        }
        Want::Tree(_) => {
            assert_eq!(loaded.code, Some(0), "{name}: load: {}", loaded.stderr);
            assert_eq!(
                imported.code,
                Some(0),
                "{name}: import: {}",
                imported.stderr
            );
        }
    }
    let images: &[&str] = match case.want {
        Want::Tree(_) => &["case:load", "case:import"],
        Want::Refused(_) => &["case:load"],
    };
    for image in images {
        let created = run(&env, name, &["create", image]);
        let out = env.path("export.tar");
        let exported = run(&env, name, &["export", "-o", out.to_str().unwrap(), image]);
        let analyzed = run(&env, name, &["analyze", "--format", "json", image]);
        let squashed = run(&env, name, &["squash", "-q", "-t", "case:squashed", image]);
        match &case.want {
            Want::Refused(fragment) => {
                for (what, r) in [
                    ("create", &created),
                    ("export", &exported),
                    ("analyze", &analyzed),
                    ("squash", &squashed),
                ] {
                    expect_refusal(name, what, r, fragment);
                    assert!(
                        r.stderr.contains("layer 0"),
                        "{name}: {what} names the layer: {}",
                        r.stderr
                    );
                }
            }
            Want::Tree(want) => {
                for (what, r) in [
                    ("create", &created),
                    ("export", &exported),
                    ("analyze", &analyzed),
                    ("squash", &squashed),
                ] {
                    assert_eq!(r.code, Some(0), "{name}: {what} of {image}: {}", r.stderr);
                }
                // The squashed image (its one layer is the flat export) gives the same tree.
                let sq = env.path("squashed.tar");
                env.ok(&["export", "-o", sq.to_str().unwrap(), "case:squashed"]);
                assert_eq!(&lister("tar", &sq).0, want, "{name}: squash of {image}");
                let id = created.stdout.trim();
                let rootfs = env.root.join("hoist/containers").join(id).join("rootfs");
                let (from_create, alloc) = lister("dir", &rootfs);
                let (from_export, _) = lister("tar", &out);
                assert_eq!(&from_create, want, "{name}: create of {image}");
                assert_eq!(&from_export, want, "{name}: export of {image}");
                if name.starts_with("PAX sparse") {
                    // Written with holes: only the runs' blocks are allocated.
                    assert!(
                        alloc.iter().all(|&a| a <= 64 * 1024),
                        "{name}: the sparse file takes {alloc:?} bytes on disk"
                    );
                }
                let a: Value = serde_json::from_str(&analyzed.stdout).unwrap();
                let files: u64 = want
                    .iter()
                    .filter(|l| l.starts_with("f "))
                    .map(|l| l.split(' ').nth(2).unwrap().parse::<u64>().unwrap())
                    .sum();
                assert_eq!(a["final_bytes"], json!(files), "{name}: analyze of {image}");
                env.ok(&["rm", id]);
            }
        }
    }
}

#[test]
fn every_reader_path_gives_the_same_tree_or_the_same_refusal() {
    for case in cases() {
        check(&case);
    }
}

#[test]
fn load_refuses_huge_extension_headers_of_the_archive_itself_before_reading_them() {
    // The archive's own tar (not a layer) claims a 1 GiB PAX header, then a 1 GiB GNU long
    // name: refused from the header's size alone, with flat memory.
    for (typeflag, magic) in [(b'x', Magic::Ustar), (b'L', Magic::Gnu)] {
        let env = Env::new();
        let mut archive = header(b"././@LongLink", typeflag, 1 << 30, magic).to_vec();
        archive.extend_from_slice(&[b'a'; 4096]);
        let path = env.path("huge.tar");
        std::fs::write(&path, &archive).unwrap();
        let r = run(
            &env,
            "huge outer header",
            &["load", "-i", path.to_str().unwrap()],
        );
        expect_refusal(
            "huge outer header",
            "load",
            &r,
            "of 1073741824 bytes is over the 1048576-byte limit (header field too long)",
        );
        assert!(
            r.stderr.contains("huge.tar"),
            "names the file: {}",
            r.stderr
        );
    }
}
