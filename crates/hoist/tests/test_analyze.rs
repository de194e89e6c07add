//! `hoist analyze`, `hoist squash` and `hoist diff IMAGE1 IMAGE2`.
//!
//! Expected values are never taken from hoist: they are derived by hand from synthetic layers
//! built here, or computed independently (a bottom-up simulation over the layer tars read with
//! the `tar` crate, the corpus' `.rootfs.tsv` listings, `flatten_listing.py`, docker).
//!
//! The definitions (from the issue): `total_bytes` is the sum of the sizes of all regular-file
//! entries of all layers; a regular-file entry of layer k is *wasted* when a layer above k
//! replaces its path (any entry type) or deletes it (a whiteout of the path or of a parent, an
//! opaque marker on a parent directory); hard-link entries count 0 bytes; `final_bytes =
//! total - wasted`; `efficiency = final / total`. Per layer: `added` = entries that created a
//! path that did not exist, `modified` = entries that replaced or merged into an existing path,
//! `removed` = lower-layer paths removed by the layer's whiteouts and opaque markers
//! (descendants included). Whiteouts only apply to lower layers (OCI image spec), so a layer's
//! counts do not depend on where its whiteouts sit among its other entries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{self, Env};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Building layers and docker archives.

/// Default mtime of synthetic entries.
const MTIME: u64 = 1_700_000_000;

/// A layer tar under construction.
struct Layer {
    b: tar::Builder<Vec<u8>>,
    /// PAX records for the next entry.
    pax: Vec<(String, Vec<u8>)>,
}

/// Deterministic content of `size` bytes, different per `seed`.
fn content(seed: &str, size: usize) -> Vec<u8> {
    let h = common::sha256(seed.as_bytes());
    h.as_bytes().iter().cycle().take(size).copied().collect()
}

/// One PAX record: `LEN key=value\n`, LEN counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    loop {
        let n = len.to_string().len() + rest;
        if n == len {
            break;
        }
        len = n;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    assert_eq!(r.len(), len);
    r
}

struct Entry<'a> {
    ty: tar::EntryType,
    path: &'a str,
    data: &'a [u8],
    mode: u32,
    link: Option<&'a str>,
    owner: (u64, u64),
    mtime: u64,
}

impl<'a> Entry<'a> {
    fn new(ty: tar::EntryType, path: &'a str) -> Self {
        Entry {
            ty,
            path,
            data: b"",
            mode: if ty == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            },
            link: None,
            owner: (0, 0),
            mtime: MTIME,
        }
    }
}

impl Layer {
    fn new() -> Layer {
        Layer {
            b: tar::Builder::new(Vec::new()),
            pax: Vec::new(),
        }
    }

    fn put(&mut self, e: Entry<'_>) -> &mut Self {
        if !self.pax.is_empty() {
            let body: Vec<u8> = self
                .pax
                .drain(..)
                .flat_map(|(k, v)| pax_record(&k, &v))
                .collect();
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(MTIME);
            self.b
                .append_data(&mut h, "PaxHeaders.0/x", &body[..])
                .unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.ty);
        h.set_size(e.data.len() as u64);
        h.set_mode(e.mode);
        h.set_uid(e.owner.0);
        h.set_gid(e.owner.1);
        h.set_mtime(e.mtime);
        if let Some(l) = e.link {
            h.set_link_name(l).unwrap();
        }
        self.b.append_data(&mut h, e.path, e.data).unwrap();
        self
    }

    fn dir(&mut self, p: &str) -> &mut Self {
        self.put(Entry::new(tar::EntryType::Directory, p))
    }

    fn dir_mode(&mut self, p: &str, mode: u32) -> &mut Self {
        self.put(Entry {
            mode,
            ..Entry::new(tar::EntryType::Directory, p)
        })
    }

    /// A regular file of `size` bytes (content derived from the path and size).
    fn file(&mut self, p: &str, size: usize) -> &mut Self {
        let data = content(&format!("{p}:{size}"), size);
        self.bytes(p, &data)
    }

    fn bytes(&mut self, p: &str, data: &[u8]) -> &mut Self {
        self.put(Entry {
            data,
            ..Entry::new(tar::EntryType::Regular, p)
        })
    }

    fn symlink(&mut self, p: &str, target: &str) -> &mut Self {
        self.put(Entry {
            mode: 0o777,
            link: Some(target),
            ..Entry::new(tar::EntryType::Symlink, p)
        })
    }

    fn hardlink(&mut self, p: &str, target: &str) -> &mut Self {
        self.put(Entry {
            link: Some(target),
            ..Entry::new(tar::EntryType::Link, p)
        })
    }

    /// A whiteout (`dir/.wh.name`) or opaque marker (`dir/.wh..wh..opq`): an empty file.
    fn whiteout(&mut self, p: &str) -> &mut Self {
        self.bytes(p, b"")
    }

    /// An xattr for the next entry (a PAX `SCHILY.xattr.` record).
    fn xattr(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.pax
            .push((format!("SCHILY.xattr.{name}"), value.to_vec()));
        self
    }

    fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// The runtime config of every synthetic image.
fn synthetic_runtime_config() -> Value {
    json!({
        "Cmd": ["/bin/run", "--flag"],
        "Entrypoint": ["/init"],
        "Env": ["PATH=/usr/bin:/bin", "A=1"],
        "WorkingDir": "/a",
        "Labels": {"org.example.test": "analyze", "z": "last"}
    })
}

/// Writes a docker archive (manifest.json + config + `lN/layer.tar`) with one image named
/// `tag`; `history` is (created_by, empty_layer). Returns the config digest (the image ID).
fn write_image(path: &Path, tag: &str, layers: &[Vec<u8>], history: &[(&str, bool)]) -> String {
    assert_eq!(
        history.iter().filter(|h| !h.1).count(),
        layers.len(),
        "one non-empty history entry per layer"
    );
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", common::sha256(l)))
        .collect();
    let history: Vec<Value> = history
        .iter()
        .enumerate()
        .map(|(i, (by, empty))| {
            let mut h = json!({
                "created": format!("2024-01-01T00:00:{i:02}Z"),
                "created_by": by,
            });
            if *empty {
                h["empty_layer"] = json!(true);
            }
            h
        })
        .collect();
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:01:00Z",
        "config": synthetic_runtime_config(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history
    });
    let config = serde_json::to_vec(&config).unwrap();
    let digest = common::sha256(&config);
    let cfg_name = format!("{digest}.json");
    let mut out = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(MTIME);
        out.append_data(&mut h, name, bytes).unwrap();
    };
    let mut layer_names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("l{i}/layer.tar");
        add(&n, l);
        layer_names.push(n);
    }
    add(&cfg_name, &config);
    let manifest = json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": layer_names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    std::fs::write(path, out.into_inner().unwrap()).unwrap();
    format!("sha256:{digest}")
}

fn load(env: &Env, archive: &Path) {
    env.ok(&["load", "-i", s(archive)]);
}

fn load_corpus(env: &Env, file: &str) {
    load(env, &common::data(file));
}

/// `hoist analyze --format json --top 100 IMAGE`, parsed.
fn analyze(env: &Env, image: &str) -> Value {
    serde_json::from_str(&env.ok(&["analyze", "--format", "json", "--top", "100", image])).unwrap()
}

/// The sorted key set of a JSON object.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// Asserts the exact key sets of an analysis document.
fn assert_analysis_keys(a: &Value) {
    assert_eq!(
        keys(a),
        [
            "efficiency",
            "final_bytes",
            "image",
            "layers",
            "top_wasted",
            "total_bytes",
            "wasted_bytes"
        ]
    );
    for l in a["layers"].as_array().unwrap() {
        assert_eq!(
            keys(l),
            [
                "added",
                "created_by",
                "diff_id",
                "modified",
                "removed",
                "size",
                "wasted_bytes"
            ]
        );
    }
    for w in a["top_wasted"].as_array().unwrap() {
        assert_eq!(keys(w), ["bytes", "count", "path"]);
        assert!(w["path"].as_str().unwrap().starts_with('/'), "{w}");
    }
}

/// `flatten_listing.py --tar FILE`.
fn tar_listing(tar: &Path) -> String {
    let mut c = Command::new("python3");
    c.arg(common::data("flatten_listing.py"))
        .arg("--tar")
        .arg(tar);
    common::run_ok(&mut c)
}

/// `hoist export` of an image, listed.
fn export_listing(env: &Env, image: &str) -> String {
    let out = env.path(&format!("export-{}.tar", common::sha256(image.as_bytes())));
    env.ok(&["export", "-o", s(&out), image]);
    tar_listing(&out)
}

/// The config of an image as `hoist save` writes it.
fn saved_config(env: &Env, image: &str) -> Value {
    let out = env.path(&format!("save-{}.tar", common::sha256(image.as_bytes())));
    env.ok(&["save", "-o", s(&out), image]);
    let files = archive_files(&std::fs::read(&out).unwrap());
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap()
}

/// Every regular file of a tar: name -> content.
fn archive_files(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(tar_bytes);
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        out.insert(name, v);
    }
    out
}

/// The regular-file bytes of a final filesystem, from its listing (a hard-link group once).
fn listing_file_bytes(listing: &str) -> u64 {
    let mut groups = BTreeSet::new();
    let mut total = 0;
    for l in listing.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split('\t').collect();
        if f[1] != "f" {
            continue;
        }
        if f[8] != "-" && !groups.insert(f[8].to_string()) {
            continue;
        }
        total += f[5].parse::<u64>().unwrap();
    }
    total
}

// ---------------------------------------------------------------------------------------------
// 1. A synthetic image with every kind of overwrite and deletion.

/// The synthetic image: three layers and an empty-layer step. Sizes are distinct so that every
/// sum below can only come from the intended files.
fn synthetic_layers() -> Vec<Vec<u8>> {
    // Layer 0, "base": 19 entries, all added. Regular-file bytes:
    // 1000+200+300+400+500+600+700+800+900+1100+1200 = 7700 (the hard links count 0).
    let mut l0 = Layer::new();
    l0.dir("a/")
        .file("a/keep.txt", 1000) // never touched: final
        .file("a/over.txt", 200) // replaced by a file in layer 1: wasted
        .file("a/todir", 300) // replaced by a directory in layer 1: wasted
        .file("a/tolink", 400) // replaced by a symlink in layer 2: wasted
        .file("a/gone.txt", 500) // `a/.wh.gone.txt` in layer 1: wasted
        .dir("d/")
        .file("d/x.bin", 600) // `.wh.d` (parent) in layer 2: wasted
        .dir("d/sub/")
        .file("d/sub/y.bin", 700) // `.wh.d` (grandparent) in layer 2: wasted
        .dir("o1/")
        .file("o1/old.txt", 800) // o1 opaque in layer 2 (marker first), re-created: wasted
        .file("o1/lost.txt", 900) // o1 opaque in layer 2: wasted
        .dir("o2/")
        .file("o2/p.txt", 1100) // o2 opaque in layer 2 (marker last): wasted
        .dir("h/")
        .file("h/orig", 1200) // final (h/link1 and h/orig stay)
        .hardlink("h/link1", "h/orig") // 0 bytes
        .hardlink("h/link2", "h/orig"); // 0 bytes; replaced by a file in layer 1: 0 wasted
    // Layer 1, "overwrite": added 2 (a/todir/inner.txt, tmp.bin), modified 4 (a, a/over.txt,
    // a/todir, h/link2), removed 1 (a/gone.txt). Bytes: 210+50+70+1300 = 1630.
    let mut l1 = Layer::new();
    l1.dir("a/")
        .file("a/over.txt", 210) // replaced again in layer 2: wasted
        .dir("a/todir/")
        .file("a/todir/inner.txt", 50)
        .whiteout("a/.wh.gone.txt")
        .file("h/link2", 70) // a hard link replaced by a file
        .file("tmp.bin", 1300); // `.wh.tmp.bin` in layer 2: wasted
    // Layer 2, "cleanup": added 5 (o1/old.txt, o2/new.txt, n, n/file, n/hl), modified 5 (a,
    // a/tolink, a/over.txt, o1, o2), removed 8 (d, d/x.bin, d/sub, d/sub/y.bin; tmp.bin;
    // o1/old.txt, o1/lost.txt; o2/p.txt). Bytes: 220+810+30+40 = 1100. Nothing above it.
    let mut l2 = Layer::new();
    l2.dir("a/")
        .symlink("a/tolink", "keep.txt")
        .file("a/over.txt", 220)
        .whiteout(".wh.d")
        .whiteout(".wh.tmp.bin")
        .dir("o1/")
        .whiteout("o1/.wh..wh..opq") // before its siblings
        .file("o1/old.txt", 810)
        .dir("o2/")
        .file("o2/new.txt", 30)
        .whiteout("o2/.wh..wh..opq") // after its siblings
        .dir("n/")
        .file("n/file", 40)
        .hardlink("n/hl", "n/file");
    vec![l0.finish(), l1.finish(), l2.finish()]
}

const SYNTHETIC_HISTORY: [(&str, bool); 4] = [
    ("base", false),
    ("ENV A=1", true),
    ("overwrite", false),
    ("cleanup", false),
];

#[test]
fn analyze_synthetic_image_gives_the_hand_computed_values() {
    let env = Env::new();
    let layers = synthetic_layers();
    let archive = env.path("synthetic.tar");
    write_image(&archive, "synthetic:1", &layers, &SYNTHETIC_HISTORY);
    load(&env, &archive);
    let got = analyze(&env, "synthetic:1");
    assert_analysis_keys(&got);

    // total = 7700 + 1630 + 1100 = 10430.
    // wasted, layer 0: 200 (a/over.txt) + 300 (a/todir) + 400 (a/tolink) + 500 (a/gone.txt)
    //   + 600 (d/x.bin) + 700 (d/sub/y.bin) + 800 (o1/old.txt) + 900 (o1/lost.txt)
    //   + 1100 (o2/p.txt) = 5500; layer 1: 210 (a/over.txt) + 1300 (tmp.bin) = 1510;
    //   layer 2: 0. wasted = 7010, final = 3420 (= keep 1000 + orig 1200 + inner 50 + link2 70
    //   + over 220 + o1/old 810 + o2/new 30 + n/file 40).
    let diff_id = |i: usize| format!("sha256:{}", common::sha256(&layers[i]));
    let layer = |i: usize, by: &str, added: u64, modified: u64, removed: u64, wasted: u64| {
        json!({
            "diff_id": diff_id(i), "created_by": by, "size": layers[i].len(),
            "added": added, "modified": modified, "removed": removed, "wasted_bytes": wasted
        })
    };
    let w =
        |path: &str, bytes: u64, count: u64| json!({"path": path, "bytes": bytes, "count": count});
    let want = json!({
        "image": "synthetic:1",
        "total_bytes": 10430,
        "final_bytes": 3420,
        "wasted_bytes": 7010,
        "efficiency": 3420f64 / 10430f64,
        "layers": [
            layer(0, "base", 19, 0, 0, 5500),
            layer(1, "overwrite", 2, 4, 1, 1510),
            layer(2, "cleanup", 5, 5, 8, 0),
        ],
        // Most wasted bytes first (ties by path); a/over.txt was wasted twice (200 + 210).
        "top_wasted": [
            w("/tmp.bin", 1300, 1),
            w("/o2/p.txt", 1100, 1),
            w("/o1/lost.txt", 900, 1),
            w("/o1/old.txt", 800, 1),
            w("/d/sub/y.bin", 700, 1),
            w("/d/x.bin", 600, 1),
            w("/a/gone.txt", 500, 1),
            w("/a/over.txt", 410, 2),
            w("/a/tolink", 400, 1),
            w("/a/todir", 300, 1),
        ]
    });
    assert_eq!(got, want);

    // --top truncates the list; the image is reported as asked for (here by ID).
    let id = env.inspect("synthetic:1")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let top3: Value =
        serde_json::from_str(&env.ok(&["analyze", "--format", "json", "--top", "3", &id])).unwrap();
    assert_eq!(top3["image"], json!(id));
    assert_eq!(
        top3["top_wasted"],
        json!(want["top_wasted"].as_array().unwrap()[..3])
    );
    assert_eq!(top3["layers"], want["layers"]);
    // The default is 10.
    let default: Value =
        serde_json::from_str(&env.ok(&["analyze", "--format", "json", "synthetic:1"])).unwrap();
    assert_eq!(default, want);

    // final_bytes is what the exported filesystem holds (a hard-link group once).
    let listing = export_listing(&env, "synthetic:1");
    assert_eq!(listing_file_bytes(&listing), 3420);

    // The table form shows the same facts.
    let table = env.ok(&["analyze", "synthetic:1"]);
    assert!(table.contains("Efficiency:  32.79%"), "{table}");
    assert!(table.contains("/a/over.txt"), "{table}");
}

#[test]
fn analyze_of_an_empty_image_has_efficiency_one() {
    let env = Env::new();
    // One layer with only directories and a symlink: no regular-file bytes at all.
    let mut l = Layer::new();
    l.dir("etc/").symlink("etc/link", "nowhere");
    let layers = vec![l.finish()];
    let archive = env.path("empty.tar");
    write_image(&archive, "empty:1", &layers, &[("dirs", false)]);
    load(&env, &archive);
    let got = analyze(&env, "empty:1");
    assert_analysis_keys(&got);
    assert_eq!(
        got,
        json!({
            "image": "empty:1", "total_bytes": 0, "final_bytes": 0, "wasted_bytes": 0,
            "efficiency": 1.0,
            "layers": [{
                "diff_id": format!("sha256:{}", common::sha256(&layers[0])),
                "created_by": "dirs", "size": layers[0].len(),
                "added": 2, "modified": 0, "removed": 0, "wasted_bytes": 0
            }],
            "top_wasted": []
        })
    );
    env.ok(&[
        "analyze",
        "--ci",
        "--max-wasted-bytes",
        "0",
        "--max-wasted-ratio",
        "0",
        "--min-efficiency",
        "1",
        "empty:1",
    ]);
}

/// The two orders of an opaque directory in a layer: marker before or after the entries that
/// re-create paths below it.
fn opaque_order_image(env: &Env, marker_first: bool) -> (String, Vec<Vec<u8>>) {
    let mut l0 = Layer::new();
    l0.dir("r/")
        .file("r/f", 100)
        .file("r/g", 200)
        .dir("r/s/")
        .file("r/s/t", 300);
    let mut l1 = Layer::new();
    l1.dir("r/");
    if marker_first {
        l1.whiteout("r/.wh..wh..opq");
    }
    l1.file("r/f", 10).dir("r/s/").file("r/s/u", 20);
    if !marker_first {
        l1.whiteout("r/.wh..wh..opq");
    }
    let layers = vec![l0.finish(), l1.finish()];
    let name = if marker_first {
        "opq:first"
    } else {
        "opq:last"
    };
    let archive = env.path(&format!("opq-{marker_first}.tar"));
    write_image(
        &archive,
        name,
        &layers,
        &[("base", false), ("opaque", false)],
    );
    load(env, &archive);
    (name.to_string(), layers)
}

#[test]
fn analyze_counts_do_not_depend_on_where_the_opaque_marker_sits() {
    let env = Env::new();
    for marker_first in [true, false] {
        let (name, layers) = opaque_order_image(&env, marker_first);
        let got = analyze(&env, &name);
        // The opaque marker of r hides every lower path below r: r/f, r/g, r/s, r/s/t
        // (removed 4, wasting 100 + 200 + 300). The layer's r/f, r/s and r/s/u then create
        // paths that no longer exist below (added 3); its `r/` merges into r (modified 1).
        // Whiteouts apply to the lower layers only, so the entry order inside the layer must
        // not matter. (hoist at the time of writing counts the marker-last layer as added 1,
        // modified 3, removed 2: its opaque marker spares the lower paths that the same layer
        // wrote earlier, counting those entries as modifications.)
        let want_layers = json!([
            {"diff_id": format!("sha256:{}", common::sha256(&layers[0])), "created_by": "base",
             "size": layers[0].len(), "added": 5, "modified": 0, "removed": 0, "wasted_bytes": 600},
            {"diff_id": format!("sha256:{}", common::sha256(&layers[1])), "created_by": "opaque",
             "size": layers[1].len(), "added": 3, "modified": 1, "removed": 4, "wasted_bytes": 0},
        ]);
        assert_eq!(got["total_bytes"], json!(630), "{name}");
        assert_eq!(got["wasted_bytes"], json!(600), "{name}");
        assert_eq!(got["final_bytes"], json!(30), "{name}");
        assert_eq!(
            got["layers"], want_layers,
            "{name} (marker first: {marker_first})"
        );
    }
    // Both orders give the same filesystem.
    assert_eq!(env.ok(&["diff", "opq:first", "opq:last"]), "");
    assert_eq!(
        export_listing(&env, "opq:first"),
        export_listing(&env, "opq:last")
    );
}

#[test]
fn analyze_a_deleted_hardlink_source_is_wasted_by_definition() {
    // Layer 0: h/orig (100 bytes) and h/alias, a hard link to it (0 bytes). Layer 1 deletes
    // h/orig with a whiteout. By the definition, the regular-file entry h/orig of layer 0 is
    // wasted (a layer above deletes its path), whatever other names its content has: the
    // analysis is about entries and paths, and the hard link counts 0 bytes. (hoist at the
    // time of writing counts waste per inode instead: the content survives as h/alias, so it
    // reports 0 wasted bytes, final_bytes 100 and no top_wasted entry.)
    let env = Env::new();
    let mut l0 = Layer::new();
    l0.dir("h/")
        .file("h/orig", 100)
        .hardlink("h/alias", "h/orig");
    let mut l1 = Layer::new();
    l1.whiteout("h/.wh.orig");
    let layers = vec![l0.finish(), l1.finish()];
    let archive = env.path("hl.tar");
    write_image(&archive, "hl:1", &layers, &[("base", false), ("rm", false)]);
    load(&env, &archive);
    let got = analyze(&env, "hl:1");
    let summary = json!([
        got["total_bytes"].clone(),
        got["wasted_bytes"].clone(),
        got["final_bytes"].clone(),
        got["layers"][0]["wasted_bytes"].clone(),
        got["layers"][1]["removed"].clone(),
        got["top_wasted"].clone(),
    ]);
    assert_eq!(
        summary,
        json!([100, 100, 0, 100, 1, [{"path": "/h/orig", "bytes": 100, "count": 1}]])
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The dive test image against an independent simulation.

const DIVE: &str = "docker-v1.2_docker18_dive-test.tar";
const DIVE_TSV: &str = "docker-v1.2_docker18_dive-test.rootfs.tsv";
const KANIKO_DIVE: &str = "ggcr-tarball_kaniko_dive-test.tar";
const KANIKO_DIVE_TSV: &str = "ggcr-tarball_kaniko_dive-test.rootfs.tsv";

/// One layer entry, as the simulation needs it.
struct SimEntry {
    path: String,
    typeflag: u8,
    size: u64,
}

/// What the simulation says about one layer.
#[derive(Debug, Default, PartialEq)]
struct SimLayer {
    added: u64,
    modified: u64,
    removed: u64,
    wasted: u64,
    file_bytes: u64,
}

/// A path of the simulated filesystem.
struct SimNode {
    layer: usize,
    /// Size of a regular-file entry; `None` for anything else (hard links included).
    file: Option<u64>,
    dir: bool,
}

fn normalize(raw: &[u8]) -> String {
    let p = String::from_utf8(raw.to_vec()).unwrap();
    let p = p.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/').to_string()
}

fn read_layer(bytes: &[u8]) -> Vec<SimEntry> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            SimEntry {
                path: normalize(&e.path_bytes()),
                typeflag: h.entry_type().as_byte(),
                size: h.size().unwrap(),
            }
        })
        .filter(|e| !e.path.is_empty() && e.path != ".")
        .collect()
}

/// A bottom-up simulation of the definitions: a map path -> (layer, regular-file size). A
/// layer's whiteouts and opaque markers are applied first (they only concern lower layers),
/// then its other entries in order.
fn simulate(layers: &[Vec<SimEntry>]) -> (Vec<SimLayer>, BTreeMap<String, (u64, u64)>) {
    let mut fs: BTreeMap<String, SimNode> = BTreeMap::new();
    let mut out: Vec<SimLayer> = layers.iter().map(|_| SimLayer::default()).collect();
    let mut top: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    // Removes `path` (when `with_self`) and everything below it; returns the paths removed.
    fn remove_tree(
        fs: &mut BTreeMap<String, SimNode>,
        path: &str,
        with_self: bool,
    ) -> Vec<(String, SimNode)> {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let doomed: Vec<String> = fs
            .keys()
            .filter(|k| (with_self && *k == path) || k.starts_with(&prefix))
            .cloned()
            .collect();
        doomed
            .into_iter()
            .map(|k| {
                let n = fs.remove(&k).unwrap();
                (k, n)
            })
            .collect()
    }
    let mut waste = |out: &mut Vec<SimLayer>, cur: usize, path: &str, n: &SimNode| {
        if let Some(size) = n.file
            && n.layer < cur
        {
            out[n.layer].wasted += size;
            let slot = top.entry(format!("/{path}")).or_default();
            slot.0 += size;
            slot.1 += 1;
        }
    };
    for (cur, entries) in layers.iter().enumerate() {
        let split = |p: &str| -> (String, String) {
            match p.rsplit_once('/') {
                Some((d, b)) => (d.to_string(), b.to_string()),
                None => (String::new(), p.to_string()),
            }
        };
        for e in entries {
            let (dir, base) = split(&e.path);
            let gone = if base == ".wh..wh..opq" {
                remove_tree(&mut fs, &dir, false)
            } else if let Some(name) = base.strip_prefix(".wh.") {
                let target = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                remove_tree(&mut fs, &target, true)
            } else {
                continue;
            };
            out[cur].removed += gone.len() as u64;
            for (p, n) in &gone {
                waste(&mut out, cur, p, n);
            }
        }
        for e in entries {
            let (_, base) = split(&e.path);
            if base.starts_with(".wh.") {
                continue;
            }
            let regular = matches!(e.typeflag, b'0' | b'\0' | b'7');
            if regular {
                out[cur].file_bytes += e.size;
            }
            let dir = e.typeflag == b'5';
            match fs.get(&e.path) {
                None => out[cur].added += 1,
                Some(old) => {
                    out[cur].modified += 1;
                    if !(old.dir && dir) {
                        // Replaced: the old entry (and, for a directory, what is below it).
                        let with_self = !old.dir || !dir;
                        for (p, n) in remove_tree(&mut fs, &e.path, with_self) {
                            waste(&mut out, cur, &p, &n);
                        }
                    }
                }
            }
            fs.insert(
                e.path.clone(),
                SimNode {
                    layer: cur,
                    file: regular.then_some(e.size),
                    dir,
                },
            );
        }
    }
    (out, top)
}

#[test]
fn analyze_dive_test_matches_an_independent_simulation() {
    let env = Env::new();
    load_corpus(&env, DIVE);
    let files = archive_files(&std::fs::read(common::data(DIVE)).unwrap());
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config: Value =
        serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    let blobs: Vec<&Vec<u8>> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &files[l.as_str().unwrap()])
        .collect();
    assert_eq!(blobs.len(), 14);
    let entries: Vec<Vec<SimEntry>> = blobs.iter().map(|b| read_layer(b)).collect();
    let (sim, top) = simulate(&entries);
    let created_by: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] != json!(true))
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();

    let got = analyze(&env, "dive-test");
    assert_analysis_keys(&got);
    let total: u64 = sim.iter().map(|l| l.file_bytes).sum();
    let wasted: u64 = sim.iter().map(|l| l.wasted).sum();
    // Sanity of the simulation itself: 5 copies of the 6405-byte file are wasted
    // (somefile1.txt twice, somefile2.txt, somefile3.txt, the first root/saved.txt).
    assert_eq!(wasted, 5 * 6405);
    assert_eq!(got["total_bytes"], json!(total));
    assert_eq!(got["wasted_bytes"], json!(wasted));
    assert_eq!(got["final_bytes"], json!(total - wasted));
    assert_eq!(
        got["efficiency"],
        json!((total - wasted) as f64 / total as f64)
    );
    // The final filesystem (the corpus listing) holds exactly final_bytes.
    let tsv = std::fs::read_to_string(common::data(DIVE_TSV)).unwrap();
    assert_eq!(listing_file_bytes(&tsv), total - wasted);

    let want_layers: Vec<Value> = sim
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "diff_id": config["rootfs"]["diff_ids"][i],
                "created_by": created_by[i],
                "size": blobs[i].len(),
                "added": l.added,
                "modified": l.modified,
                "removed": l.removed,
                "wasted_bytes": l.wasted,
            })
        })
        .collect();
    let got_layers = got["layers"].as_array().unwrap();
    assert_eq!(got_layers.len(), want_layers.len());
    for (i, (g, w)) in got_layers.iter().zip(&want_layers).enumerate() {
        assert_eq!(g, w, "layer {i}");
    }
    // Spot checks of the simulation against the Dockerfile: layer 7 (`mv somefile3.txt
    // saved.txt`) removes 1 path; layer 9 (`rm -rf /root/example/`) removes 5.
    assert_eq!((sim[7].removed, sim[9].removed), (1, 5));

    let mut want_top: Vec<(String, u64, u64)> =
        top.into_iter().map(|(p, (b, c))| (p, b, c)).collect();
    want_top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let want_top: Vec<Value> = want_top
        .into_iter()
        .map(|(p, b, c)| json!({"path": p, "bytes": b, "count": c}))
        .collect();
    assert_eq!(got["top_wasted"], json!(want_top));
    assert_eq!(
        got["top_wasted"][0],
        json!({"path": "/root/example/somefile1.txt", "bytes": 12810, "count": 2})
    );
}

// ---------------------------------------------------------------------------------------------
// 3. --ci limits.

#[test]
fn analyze_ci_limits_fail_on_waste_and_pass_once_squashed() {
    let env = Env::new();
    load_corpus(&env, DIVE);
    let squashed = env.ok(&["squash", "-t", "dive-test:squashed", "dive-test"]);
    assert!(squashed.trim().starts_with("sha256:"), "{squashed}");
    // dive-test: 1220598 file bytes, 32025 wasted (5 x 6405): ratio 0.026237...,
    // efficiency 0.973762...
    let cases: [(&[&str], &str); 3] = [
        (
            &["--max-wasted-bytes", "1000"],
            "hoist: error: wasted bytes 32025 exceed the limit 1000\n",
        ),
        (
            &["--max-wasted-ratio", "0.01"],
            "hoist: error: wasted ratio 0.0262 exceeds the limit 0.01\n",
        ),
        (
            &["--min-efficiency", "0.99"],
            "hoist: error: efficiency 0.9738 is below the limit 0.99\n",
        ),
    ];
    for (limit, message) in cases {
        let mut args = vec!["analyze", "--ci"];
        args.extend_from_slice(limit);
        args.push("dive-test");
        assert_eq!(env.fails(&args), message, "{args:?}");
        // The squashed image wastes nothing.
        args.pop();
        args.push("dive-test:squashed");
        env.ok(&args);
    }
    // Limits are inclusive: exactly at the limit passes.
    env.ok(&[
        "analyze",
        "--ci",
        "--max-wasted-bytes",
        "32025",
        "dive-test",
    ]);
    // Without --ci nothing fails, and --ci without limits passes.
    env.ok(&["analyze", "dive-test"]);
    env.ok(&["analyze", "--ci", "dive-test"]);
    // The squashed image: no waste at all, every file byte is final.
    let a = analyze(&env, "dive-test:squashed");
    assert_eq!(
        (
            a["wasted_bytes"].clone(),
            a["efficiency"].clone(),
            a["top_wasted"].clone()
        ),
        (json!(0), json!(1.0), json!([]))
    );
    assert_eq!(a["total_bytes"], analyze(&env, "dive-test")["final_bytes"]);
    env.ok(&[
        "analyze",
        "--ci",
        "--max-wasted-bytes",
        "0",
        "--max-wasted-ratio",
        "0",
        "--min-efficiency",
        "1",
        "dive-test:squashed",
    ]);
}

// ---------------------------------------------------------------------------------------------
// 4. squash.

/// Checks the history of a squashed image: the squashed steps are `empty_layer`, one entry is
/// added, and there is one non-empty entry per layer.
fn assert_squashed_history(orig: &Value, sq: &Value, keep: usize) {
    let oh = orig["history"].as_array().unwrap();
    let sh = sq["history"].as_array().unwrap();
    assert_eq!(sh.len(), oh.len() + 1, "one history entry added");
    let mut seen = 0;
    for (o, s) in oh.iter().zip(sh) {
        assert_eq!(o["created_by"], s["created_by"]);
        assert_eq!(o["created"], s["created"]);
        let was_empty = o["empty_layer"] == json!(true);
        let is_empty = s["empty_layer"] == json!(true);
        if was_empty {
            assert!(is_empty, "{s}");
        } else {
            assert_eq!(is_empty, seen >= keep, "history {s}");
            seen += 1;
        }
    }
    let last = sh.last().unwrap();
    assert_ne!(last["empty_layer"], json!(true), "{last}");
    assert!(
        !last["created_by"].as_str().unwrap_or("").is_empty(),
        "{last}"
    );
    let non_empty = sh
        .iter()
        .filter(|h| h["empty_layer"] != json!(true))
        .count();
    assert_eq!(
        non_empty,
        sq["rootfs"]["diff_ids"].as_array().unwrap().len()
    );
    assert_eq!(non_empty, keep + 1);
}

#[test]
fn squash_dive_test_keeps_the_filesystem_and_config() {
    let env = Env::new();
    load_corpus(&env, DIVE);
    let corpus_tsv = std::fs::read_to_string(common::data(DIVE_TSV)).unwrap();
    let orig = env.inspect("dive-test");
    let orig_listing = export_listing(&env, "dive-test");
    assert_eq!(orig_listing, corpus_tsv);

    let id = env.ok(&["squash", "-t", "dive-test:sq", "dive-test"]);
    let id = id.trim();
    let sq = env.inspect("dive-test:sq");
    assert_eq!(sq["Id"], json!(id));
    assert_eq!(sq["Config"], orig["Config"]);
    assert_eq!(sq["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(
        sq["Size"].as_u64().unwrap() < orig["Size"].as_u64().unwrap(),
        "{} !< {}",
        sq["Size"],
        orig["Size"]
    );
    for k in ["Architecture", "Os", "Created"] {
        assert_eq!(sq[k], orig[k], "{k}");
    }
    assert_eq!(export_listing(&env, "dive-test:sq"), corpus_tsv);
    assert_eq!(env.ok(&["diff", "dive-test", "dive-test:sq"]), "");
    assert_eq!(env.ok(&["diff", "dive-test:sq", "dive-test"]), "");

    let orig_cfg = saved_config(&env, "dive-test");
    let sq_cfg = saved_config(&env, "dive-test:sq");
    assert_squashed_history(&orig_cfg, &sq_cfg, 0);
    assert_eq!(sq_cfg["config"], orig_cfg["config"]);

    // Deterministic: squashing again (with or without a name) gives the same image.
    assert_eq!(env.ok(&["squash", "dive-test"]).trim(), id);
    assert_eq!(
        env.ok(&["squash", "-t", "dive-test:sq2", "dive-test"])
            .trim(),
        id
    );
    assert_eq!(env.inspect("dive-test:sq2")["Id"], json!(id));

    // --last 3: the 11 lower layers stay as they are.
    let id3 = env.ok(&["squash", "--last", "3", "-t", "dive-test:sq3", "dive-test"]);
    let sq3 = env.inspect("dive-test:sq3");
    assert_eq!(sq3["Id"], json!(id3.trim()));
    assert_ne!(id3.trim(), id);
    let orig_layers = orig["RootFS"]["Layers"].as_array().unwrap();
    let sq3_layers = sq3["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(sq3_layers.len(), 12);
    assert_eq!(sq3_layers[..11], orig_layers[..11]);
    assert_ne!(sq3_layers[11], orig_layers[11]);
    assert_eq!(sq3["Config"], orig["Config"]);
    assert_eq!(export_listing(&env, "dive-test:sq3"), corpus_tsv);
    assert_eq!(env.ok(&["diff", "dive-test", "dive-test:sq3"]), "");
    assert_squashed_history(&orig_cfg, &saved_config(&env, "dive-test:sq3"), 11);
    assert_eq!(
        env.ok(&["squash", "--last", "3", "dive-test"]).trim(),
        id3.trim()
    );
    // The lower layers' waste is still there; the top three layers wasted nothing.
    let a3 = analyze(&env, "dive-test:sq3");
    assert_eq!(a3["wasted_bytes"], json!(5 * 6405));
    // --last N with N >= the layer count squashes everything.
    assert_eq!(env.ok(&["squash", "--last", "99", "dive-test"]).trim(), id);
}

#[test]
fn squash_synthetic_image_keeps_whiteouts_opaque_dirs_and_hardlinks() {
    let env = Env::new();
    let layers = synthetic_layers();
    let archive = env.path("synthetic.tar");
    write_image(&archive, "synthetic:1", &layers, &SYNTHETIC_HISTORY);
    load(&env, &archive);
    let listing = export_listing(&env, "synthetic:1");
    let orig = env.inspect("synthetic:1");
    assert_eq!(orig["Config"]["Cmd"], json!(["/bin/run", "--flag"]));

    let id = env.ok(&["squash", "-t", "synthetic:sq", "synthetic:1"]);
    let sq = env.inspect("synthetic:sq");
    assert_eq!(sq["Id"], json!(id.trim()));
    assert_eq!(sq["Config"], orig["Config"]);
    assert_eq!(export_listing(&env, "synthetic:sq"), listing);
    assert_eq!(env.ok(&["diff", "synthetic:1", "synthetic:sq"]), "");
    let cfg = saved_config(&env, "synthetic:sq");
    assert_eq!(cfg["config"], synthetic_runtime_config());
    assert_squashed_history(&saved_config(&env, "synthetic:1"), &cfg, 0);
    // One layer holding the final filesystem: its file bytes are the original's final bytes.
    let a = analyze(&env, "synthetic:sq");
    assert_eq!(
        (
            a["total_bytes"].clone(),
            a["wasted_bytes"].clone(),
            a["layers"].as_array().unwrap().len()
        ),
        (json!(3420), json!(0), 1)
    );

    // --last 2 on top of the base layer: the new layer must delete what layers 1 and 2
    // deleted from the base (a/gone.txt, d, o1/lost.txt, o2/p.txt) and replace what they
    // replaced. The base layer's waste (5500) stays; the new layer's files are the final files
    // layers 1 and 2 wrote: 50 + 70 + 220 + 810 + 30 + 40 = 1220.
    env.ok(&[
        "squash",
        "--last",
        "2",
        "-t",
        "synthetic:sq2",
        "synthetic:1",
    ]);
    let sq2 = env.inspect("synthetic:sq2");
    assert_eq!(sq2["RootFS"]["Layers"][0], orig["RootFS"]["Layers"][0]);
    assert_eq!(sq2["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(export_listing(&env, "synthetic:sq2"), listing);
    assert_eq!(env.ok(&["diff", "synthetic:1", "synthetic:sq2"]), "");
    let a2 = analyze(&env, "synthetic:sq2");
    assert_eq!(
        (
            a2["total_bytes"].clone(),
            a2["wasted_bytes"].clone(),
            a2["final_bytes"].clone(),
            a2["layers"][0]["wasted_bytes"].clone(),
            a2["layers"][1]["wasted_bytes"].clone(),
        ),
        (json!(8920), json!(5500), json!(3420), json!(5500), json!(0))
    );
}

/// Removes docker images at the end of a test, even when it fails.
struct DockerCleanup<'a> {
    docker: &'a common::Docker,
    images: Vec<String>,
}

impl Drop for DockerCleanup<'_> {
    fn drop(&mut self) {
        for n in &self.images {
            self.docker.quiet(&["rmi", n]);
        }
    }
}

#[test]
fn squashed_image_runs_in_docker_like_the_original() {
    let Some(docker) = common::docker() else {
        return;
    };
    let env = Env::new();
    load_corpus(&env, DIVE);
    let orig_name = format!("{}:orig", common::unique("hoist-analyze-dive"));
    let sq_name = format!("{}:squashed", common::unique("hoist-analyze-dive"));
    let _cleanup = DockerCleanup {
        docker: &docker,
        images: vec![orig_name.clone(), sq_name.clone()],
    };
    env.ok(&["tag", "dive-test", &orig_name]);
    let id = env.ok(&["squash", "-t", &sq_name, "dive-test"]);
    let archive = env.path("both.tar");
    env.ok(&["save", "-o", s(&archive), &orig_name, &sq_name]);
    let loaded = docker.ok(&["load", "-i", s(&archive)]);
    assert!(loaded.contains(&sq_name), "{loaded}");
    assert_eq!(
        docker
            .ok(&["image", "inspect", "-f", "{{.Id}}", &sq_name])
            .trim(),
        id.trim()
    );
    assert_eq!(
        docker
            .ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", &sq_name])
            .trim(),
        "1"
    );
    let script = "cat /root/saved.txt | head -c 100; echo; ls -la /root /root/.data /tmp; \
                  ls /root/example 2>&1; echo $PATH";
    let run = |image: &str| {
        docker.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "sh",
            "-c",
            script,
        ])
    };
    // The container's own root (`..` of /root and /tmp) has the time the container was
    // made: two runs a minute apart differ there and nowhere else the image decides.
    let without_root_time = |out: String| -> String {
        out.lines()
            .map(|l| {
                if l.ends_with(" ..") && l.starts_with("drwxr-xr-x") && l.contains(" root ") {
                    "drwxr-xr-x (the container's root) ..".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let a = run(&orig_name);
    let b = run(&sq_name);
    assert!(a.contains("saved.txt"), "{a}");
    assert!(a.contains("No such file or directory"), "{a}");
    assert_eq!(
        without_root_time(a),
        without_root_time(b),
        "docker run of the original vs the squashed image"
    );
    assert_eq!(
        docker.ok(&["run", "--rm", "--network", "none", &sq_name, "ls", "/root"]),
        "saved.txt\n"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. diff IMAGE1 IMAGE2.

/// A listing as path -> the compared fields (type, mode, uid, gid, size, sha256, link,
/// xattrs: everything but the hard-link group).
fn parse_listing(tsv: &str) -> BTreeMap<String, Vec<String>> {
    tsv.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 10, "{l}");
            let mut v: Vec<String> = f[1..8].iter().map(|x| x.to_string()).collect();
            v.push(f[9].to_string());
            (f[0].to_string(), v)
        })
        .collect()
}

/// `A`/`C`/`D` lines from listing `a` to listing `b`, sorted by path; a deleted directory once.
fn diff_listings(a: &str, b: &str) -> String {
    let (a, b) = (parse_listing(a), parse_listing(b));
    let mut lines: Vec<(String, char)> = Vec::new();
    for (p, fa) in &a {
        match b.get(p) {
            None => {
                // Below a deleted path (which must be a directory): not reported.
                let mut parent = p.as_str();
                let mut below_deleted = false;
                while let Some((d, _)) = parent.rsplit_once('/') {
                    if a.contains_key(d) && !b.contains_key(d) {
                        below_deleted = true;
                    }
                    parent = d;
                }
                if !below_deleted {
                    lines.push((p.clone(), 'D'));
                }
            }
            Some(fb) if fa != fb => lines.push((p.clone(), 'C')),
            Some(_) => {}
        }
    }
    for p in b.keys() {
        if !a.contains_key(p) {
            lines.push((p.clone(), 'A'));
        }
    }
    lines.sort();
    lines
        .into_iter()
        .map(|(p, k)| format!("{k} /{p}\n"))
        .collect()
}

#[test]
fn diff_dive_test_and_kaniko_dive_test_as_their_corpus_listings_say() {
    let env = Env::new();
    load_corpus(&env, DIVE);
    load_corpus(&env, KANIKO_DIVE);
    let kaniko = common::expected_item(KANIKO_DIVE)["images"][0]["config_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let a = std::fs::read_to_string(common::data(DIVE_TSV)).unwrap();
    let b = std::fs::read_to_string(common::data(KANIKO_DIVE_TSV)).unwrap();
    let want = diff_listings(&a, &b);
    // Sanity of the independent computation: kaniko's busybox is a different build (every
    // /bin entry changed, a few added), and /root/.data/test.sh became test-coverage.sh.
    assert!(want.contains("C /bin/busybox\n"), "{want}");
    assert!(want.contains("A /bin/bc\n"), "{want}");
    assert!(want.contains("D /root/.data/test.sh\n"), "{want}");
    assert!(want.contains("A /root/.data/test-coverage.sh\n"), "{want}");
    assert!(want.contains("C /root/.data/tag.sh\n"), "{want}"); // mode 0775 -> 0755
    assert!(!want.contains("/etc/passwd"), "{want}");
    assert_eq!(env.ok(&["diff", "dive-test:latest", &kaniko]), want);
    assert_eq!(
        env.ok(&["diff", &kaniko, "dive-test:latest"]),
        diff_listings(&b, &a)
    );
    assert_eq!(env.ok(&["diff", "dive-test", "dive-test"]), "");
}

/// Two images for `diff`: X (one layer) and Y (X's layer plus a layer that changes one
/// attribute per path).
fn diff_pair(env: &Env) {
    let mut l0 = Layer::new();
    l0.dir("etc/")
        .bytes("etc/conf", b"hello\n")
        .bytes("etc/mode", b"m")
        .bytes("etc/owner", b"o")
        .bytes("etc/content", b"aaaa")
        .bytes("etc/mtime", b"t")
        .symlink("etc/link", "conf")
        .bytes("etc/xattr", b"x")
        .bytes("etc/type", b"f")
        .hardlink("etc/hl", "etc/conf")
        .dir("etc/dir/")
        .dir("gone/")
        .bytes("gone/a", b"a")
        .dir("gone/sub/")
        .bytes("gone/sub/b", b"b");
    let l0 = l0.finish();
    let mut l1 = Layer::new();
    l1.put(Entry {
        data: b"m",
        mode: 0o600,
        ..Entry::new(tar::EntryType::Regular, "etc/mode")
    })
    .put(Entry {
        data: b"o",
        owner: (1000, 1000),
        ..Entry::new(tar::EntryType::Regular, "etc/owner")
    })
    .bytes("etc/content", b"bbbb")
    .put(Entry {
        data: b"t",
        mtime: MTIME + 3600,
        ..Entry::new(tar::EntryType::Regular, "etc/mtime")
    })
    .symlink("etc/link", "mode")
    .xattr("user.k", b"v")
    .bytes("etc/xattr", b"x")
    .dir("etc/type/")
    .bytes("etc/type/child", b"c")
    .whiteout(".wh.gone")
    // The same content, mode and owner as a plain file instead of a hard link: unchanged.
    .bytes("etc/hl", b"hello\n")
    .dir_mode("etc/dir/", 0o700)
    .dir("new/")
    .bytes("new/file", b"n");
    let l1 = l1.finish();
    let x = env.path("x.tar");
    write_image(&x, "pair:x", std::slice::from_ref(&l0), &[("x", false)]);
    let y = env.path("y.tar");
    write_image(&y, "pair:y", &[l0, l1], &[("x", false), ("y", false)]);
    load(env, &x);
    load(env, &y);
}

#[test]
fn diff_reports_each_kind_of_change_once() {
    let env = Env::new();
    diff_pair(&env);
    // By hand: mode, owner, content, link target, xattrs, type (file -> dir) and a directory's
    // mode are changes; an mtime alone and hard link -> equal plain file are not; the deleted
    // directory is reported once; an added directory and what is in it are all reported.
    let want = "C /etc/content\n\
                C /etc/dir\n\
                C /etc/link\n\
                C /etc/mode\n\
                C /etc/owner\n\
                C /etc/type\n\
                A /etc/type/child\n\
                C /etc/xattr\n\
                D /gone\n\
                A /new\n\
                A /new/file\n";
    assert_eq!(env.ok(&["diff", "pair:x", "pair:y"]), want);
    let back = "C /etc/content\n\
                C /etc/dir\n\
                C /etc/link\n\
                C /etc/mode\n\
                C /etc/owner\n\
                C /etc/type\n\
                D /etc/type/child\n\
                C /etc/xattr\n\
                A /gone\n\
                A /gone/a\n\
                A /gone/sub\n\
                A /gone/sub/b\n\
                D /new\n";
    assert_eq!(env.ok(&["diff", "pair:y", "pair:x"]), back);
    // The independent computation from the exported listings agrees.
    let lx = export_listing(&env, "pair:x");
    let ly = export_listing(&env, "pair:y");
    assert_eq!(diff_listings(&lx, &ly), want);
    assert_eq!(diff_listings(&ly, &lx), back);
    assert_eq!(env.ok(&["diff", "pair:y", "pair:y"]), "");
    // The synthetic image against its squashed form: nothing.
    let layers = synthetic_layers();
    let archive = env.path("synthetic.tar");
    write_image(&archive, "synthetic:1", &layers, &SYNTHETIC_HISTORY);
    load(&env, &archive);
    env.ok(&["squash", "-t", "synthetic:sq", "synthetic:1"]);
    assert_eq!(env.ok(&["diff", "synthetic:1", "synthetic:sq"]), "");
    // An unknown image fails.
    let err = env.fails(&["diff", "pair:x", "pair:nope"]);
    assert!(err.starts_with("hoist: error: "), "{err}");
}
