//! Unit tests of the merge and the flat writer, on layers built with the `tar` crate.

use super::*;
use tar::{EntryType, Header};

/// Builds one layer tar with the `tar` crate, writing names verbatim.
struct L(tar::Builder<Vec<u8>>);

fn header(name: &[u8], kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1000);
    h
}

impl L {
    fn new() -> Self {
        L(tar::Builder::new(Vec::new()))
    }
    fn raw(mut self, mut h: Header, data: &[u8]) -> Self {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }
    fn file(self, name: &str, data: &str) -> Self {
        self.file_mode(name, 0o644, data)
    }
    fn file_mode(self, name: &str, mode: u32, data: &str) -> Self {
        let h = header(name.as_bytes(), EntryType::Regular, mode, data.len() as u64);
        self.raw(h, data.as_bytes())
    }
    fn dir(self, name: &str) -> Self {
        self.dir_mode(name, 0o755)
    }
    fn dir_mode(self, name: &str, mode: u32) -> Self {
        let h = header(name.as_bytes(), EntryType::Directory, mode, 0);
        self.raw(h, b"")
    }
    fn link(self, kind: EntryType, mode: u32, name: &str, target: &str) -> Self {
        let mut h = header(name.as_bytes(), kind, mode, 0);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.raw(h, b"")
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.link(EntryType::Symlink, 0o777, name, target)
    }
    fn hardlink(self, name: &str, target: &str) -> Self {
        self.link(EntryType::Link, 0o644, name, target)
    }
    fn wh(self, name: &str) -> Self {
        self.file(name, "")
    }
    fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        self.0
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
            .unwrap();
        self
    }
    fn done(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn flat(layers: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    flatten(layers, &mut out, &FlattenOptions::default()).unwrap();
    out
}

fn err(layers: &[Vec<u8>]) -> FlattenError {
    flatten(layers, io::sink(), &FlattenOptions::default()).unwrap_err()
}

/// One line per output entry, in order, read back with our reader:
/// `<type> <path> <mode> <uid>:<gid> [<content> | -> <symlink> | => <hardlink>]`.
const BLOCK: usize = 512;

fn listing(tar: &[u8]) -> Vec<String> {
    assert_eq!(tar.len() % BLOCK, 0);
    assert!(tar.ends_with(&[0; 2 * BLOCK]), "ends with two zero blocks");
    let mut r = Reader::new(tar);
    let mut out = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        let path = String::from_utf8_lossy(&e.path).into_owned();
        let link = String::from_utf8_lossy(&e.link).into_owned();
        let m = &e.meta;
        let head = format!("{path} {:04o} {}:{}", m.mode, m.uid, m.gid);
        out.push(match e.kind.typeflag() {
            b'0' => {
                let mut data = Vec::new();
                r.content().read_to_end(&mut data).unwrap();
                format!("f {head} ={}", String::from_utf8_lossy(&data))
            }
            b'1' => format!("h {head} => {link}"),
            b'2' => format!("l {head} -> {link}"),
            b'3' => format!("c {head} {},{}", e.devmajor, e.devminor),
            b'4' => format!("b {head} {},{}", e.devmajor, e.devminor),
            b'5' => format!("d {head}"),
            b'6' => format!("p {head}"),
            t => panic!("unexpected type {t}"),
        });
    }
    // Nothing after the end marker but its second block.
    assert_eq!(r.position() as usize, tar.len() - BLOCK);
    out
}

fn check(layers: &[Vec<u8>], want: &[&str]) {
    let got = listing(&flat(layers));
    assert_eq!(got, want, "\n got: {got:#?}\nwant: {want:#?}");
}

#[test]
fn basic_types_modes_and_order() {
    let mut dev = header(b"dev/null", EntryType::Char, 0o666, 0);
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    let mut blk = header(b"dev/sda", EntryType::Block, 0o660, 0);
    blk.set_device_major(8).unwrap();
    blk.set_device_minor(0).unwrap();
    let l0 = L::new()
        .dir("bin/")
        .file_mode("bin/su", 0o4755, "su")
        .dir_mode("tmp/", 0o1777)
        .dir_mode("shared/", 0o2775)
        .symlink("bin/sh", "busybox")
        .raw(dev, b"")
        .raw(blk, b"")
        .raw(header(b"run/fifo", EntryType::Fifo, 0o600, 0), b"")
        .done();
    check(
        &[l0],
        &[
            "d bin/ 0755 0:0",
            "d shared/ 2775 0:0",
            "d tmp/ 1777 0:0",
            "f bin/su 4755 0:0 =su",
            "l bin/sh 0777 0:0 -> busybox",
            "c dev/null 0666 0:0 1,3",
            "b dev/sda 0660 0:0 8,0",
            "p run/fifo 0600 0:0",
        ],
    );
}

#[test]
fn owner_names_and_mtime_are_kept() {
    let mut h = header(b"f", EntryType::Regular, 0o640, 1);
    h.set_uid(1000);
    h.set_gid(50);
    h.set_username("alice").unwrap();
    h.set_groupname("staff").unwrap();
    h.set_mtime(1_700_000_000);
    let out = flat(&[L::new().raw(h, b"x").done()]);
    let tree = final_tree(&[out][..], &FlattenOptions::default()).unwrap();
    let m = &tree.to_vec()[0].meta;
    assert_eq!(
        (m.uid, m.gid, &m.uname[..], &m.gname[..]),
        (1000, 50, &b"alice"[..], &b"staff"[..])
    );
    assert_eq!(
        m.mtime,
        Mtime {
            seconds: 1_700_000_000,
            nanos: 0
        }
    );
}

#[test]
fn hardlink_to_lower_layer_file() {
    let l0 = L::new().dir("a/").file("a/f", "one").done();
    let l1 = L::new()
        .hardlink("b", "a/f")
        .hardlink("./a/g", "/a/f")
        .done();
    check(
        &[l0, l1],
        &[
            "d a/ 0755 0:0",
            "f a/f 0644 0:0 =one",
            "h a/g 0644 0:0 => a/f",
            "h b 0644 0:0 => a/f",
        ],
    );
}

#[test]
fn a_path_names_the_layer_that_wrote_it_a_hard_link_its_own() {
    let l0 = L::new().dir("a/").file("a/f", "one").done();
    let l1 = L::new().hardlink("b", "a/f").dir("a/").done();
    let tree = final_tree(&[l0, l1][..], &FlattenOptions::default()).unwrap();
    let b = tree.get(b"b").unwrap();
    assert_eq!((b.layer, b.source.map(|s| s.layer)), (Some(1), Some(0)));
    assert_eq!(tree.get(b"a/f").unwrap().layer, Some(0));
    assert_eq!(tree.get(b"a").unwrap().layer, Some(1));
}

#[test]
fn hardlink_keeps_content_when_original_is_deleted() {
    let l0 = L::new().file("z", "old").hardlink("a", "z").done();
    let l1 = L::new().wh(".wh.z").done();
    check(&[l0, l1], &["f a 0644 0:0 =old"]);
}

#[test]
fn hardlink_keeps_content_when_original_is_replaced() {
    let l0 = L::new().file("a", "old").hardlink("b", "a").done();
    let l1 = L::new().file("a", "new").done();
    check(&[l0, l1], &["f b 0644 0:0 =old", "f a 0644 0:0 =new"]);
    // Same within one layer: the link was made before the replacement.
    let l0 = L::new()
        .file("a", "old")
        .hardlink("b", "a")
        .file("a", "new")
        .done();
    check(&[l0], &["f b 0644 0:0 =old", "f a 0644 0:0 =new"]);
}

#[test]
fn hardlink_header_attributes_apply_to_the_inode() {
    let l0 = L::new().file("a", "x").done();
    let l1 = L::new().link(EntryType::Link, 0o777, "b", "a").done();
    check(&[l0, l1], &["f a 0777 0:0 =x", "h b 0777 0:0 => a"]);
}

#[test]
fn hardlink_errors() {
    let e = err(&[L::new().hardlink("b", "missing").done()]);
    assert!(
        matches!(
            e,
            FlattenError::HardlinkTarget {
                layer: 0,
                index: 0,
                reason: "does not exist",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&[L::new().dir("d/").hardlink("b", "d").done()]);
    assert!(
        matches!(
            e,
            FlattenError::HardlinkTarget {
                index: 1,
                reason: "is a directory",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&[L::new().file("a", "").hardlink("b", "../a").done()]);
    assert!(
        matches!(
            e,
            FlattenError::Escape {
                what: "hard link target",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn opaque_dir_applies_to_lower_layers_wherever_it_sits() {
    let l0 = L::new()
        .dir("d/")
        .file("d/old", "1")
        .dir("d/sub/")
        .file("d/sub/deep", "2")
        .done();
    for l1 in [
        L::new()
            .dir_mode("d/", 0o700)
            .wh("d/.wh..wh..opq")
            .file("d/new", "3")
            .done(),
        L::new()
            .dir_mode("d/", 0o700)
            .file("d/new", "3")
            .wh("d/.wh..wh..opq")
            .done(),
    ] {
        check(&[l0.clone(), l1], &["d d/ 0700 0:0", "f d/new 0644 0:0 =3"]);
    }
    // A same-layer subdirectory survives, its lower children do not.
    let l1 = L::new()
        .dir("d/sub/")
        .file("d/sub/x", "4")
        .wh("d/.wh..wh..opq")
        .done();
    check(
        &[l0, l1],
        &[
            "d d/ 0755 0:0",
            "d d/sub/ 0755 0:0",
            "f d/sub/x 0644 0:0 =4",
        ],
    );
}

#[test]
fn whiteouts() {
    let l0 = L::new()
        .dir("d/")
        .file("d/a", "1")
        .dir("d/e/")
        .file("d/e/b", "2")
        .file("keep", "k")
        .done();
    // Whole directory.
    check(
        &[l0.clone(), L::new().wh(".wh.d").done()],
        &["f keep 0644 0:0 =k"],
    );
    // One file; a whiteout of something missing (or below a file) does nothing.
    let l1 = L::new()
        .wh("d/.wh.a")
        .wh("nope/.wh.x")
        .wh("keep/.wh.y")
        .wh(".wh.ghost")
        .done();
    check(
        &[l0.clone(), l1],
        &[
            "d d/ 0755 0:0",
            "d d/e/ 0755 0:0",
            "f d/e/b 0644 0:0 =2",
            "f keep 0644 0:0 =k",
        ],
    );
    // Whiteouts never hide entries of their own layer, before or after them.
    let l1 = L::new()
        .file("d/n1", "n")
        .wh(".wh.d")
        .dir("d/")
        .file("d/n2", "m")
        .done();
    check(
        &[l0, l1],
        &[
            "d d/ 0755 0:0",
            "f keep 0644 0:0 =k",
            "f d/n1 0644 0:0 =n",
            "f d/n2 0644 0:0 =m",
        ],
    );
}

#[test]
fn type_changes() {
    let l0 = L::new()
        .dir("dir2file/")
        .file("dir2file/x", "x")
        .file("file2dir", "f")
        .symlink("link2dir", "/elsewhere")
        .dir_mode("merge/", 0o700)
        .file("merge/old", "o")
        .done();
    let l1 = L::new()
        .file("dir2file", "now a file")
        .dir("file2dir/")
        .file("file2dir/y", "y")
        .dir("link2dir/")
        .dir_mode("merge/", 0o750)
        .file("merge/new", "n")
        .done();
    check(
        &[l0, l1],
        &[
            "d file2dir/ 0755 0:0",
            "d link2dir/ 0755 0:0",
            "d merge/ 0750 0:0",
            "f merge/old 0644 0:0 =o",
            "f dir2file 0644 0:0 =now a file",
            "f file2dir/y 0644 0:0 =y",
            "f merge/new 0644 0:0 =n",
        ],
    );
}

#[test]
fn duplicate_paths_last_wins() {
    let l0 = L::new()
        .file("a", "first")
        .file_mode("a", 0o600, "second")
        .dir_mode("d/", 0o700)
        .dir("d/")
        .done();
    check(&[l0], &["d d/ 0755 0:0", "f a 0600 0:0 =second"]);
}

#[test]
fn names_are_normalized() {
    let l0 = L::new()
        .dir("./a/")
        .file("/a/b", "1")
        .file("a//c", "2")
        .file("./x/../d", "3")
        .dir("./")
        .done();
    check(
        &[l0],
        &[
            "d a/ 0755 0:0",
            "f a/b 0644 0:0 =1",
            "f a/c 0644 0:0 =2",
            "f d 0644 0:0 =3",
        ],
    );
}

#[test]
fn escapes_are_refused() {
    for name in ["../x", "/../x", "a/../../x"] {
        let l1 = L::new().file("ok", "").file(name, "evil").done();
        let e = err(&[L::new().done(), l1]);
        match &e {
            FlattenError::Escape {
                layer: 1,
                index: 1,
                path,
                what: "name",
                ..
            } => assert_eq!(path, name),
            _ => panic!("{name}: {e}"),
        }
        assert!(
            e.to_string().contains("layer 1") && e.to_string().contains(name),
            "{e}"
        );
    }
}

#[test]
fn whiteout_names() {
    for name in [".wh.", "d/.wh..", ".wh..."] {
        let e = err(&[L::new().wh(name).done()]);
        assert!(
            matches!(
                e,
                FlattenError::InvalidWhiteout {
                    layer: 0,
                    index: 0,
                    ..
                }
            ),
            "{name}: {e}"
        );
    }
    // Other AUFS metadata is skipped.
    let l0 = L::new()
        .dir(".wh..wh.plnk/")
        .wh(".wh..wh..tmp")
        .file("d/.wh..wh.aufs", "")
        .file("a", "1")
        .done();
    let tree = final_tree(&[l0.clone()][..], &FlattenOptions::default()).unwrap();
    assert_eq!(tree.layers[0].skipped, 3);
    check(&[l0], &["f a 0644 0:0 =1"]);
    // A whiteout-looking parent is an ordinary directory name, as in docker.
    check(
        &[L::new().file("d/.wh.x/y", "1").done()],
        &["f d/.wh.x/y 0644 0:0 =1"],
    );
}

#[test]
fn aufs_plnk_hardlinks() {
    let l0 = L::new()
        .file(".wh..wh.plnk/123.456", "shared")
        .hardlink("a", ".wh..wh.plnk/123.456")
        .hardlink("b", "/.wh..wh.plnk/123.456")
        .done();
    check(&[l0], &["f a 0644 0:0 =shared", "h b 0644 0:0 => a"]);
}

#[test]
fn parent_symlinks_are_followed_inside_the_root() {
    let l0 = L::new()
        .dir("usr/")
        .dir("usr/lib/")
        .symlink("lib", "usr/lib")
        .symlink("abs", "/usr")
        .done();
    let l1 = L::new()
        .file("lib/a", "1")
        .file("abs/lib/b", "2")
        .wh("lib/.wh.gone")
        .done();
    check(
        &[l0, l1],
        &[
            "d usr/ 0755 0:0",
            "d usr/lib/ 0755 0:0",
            "l lib 0777 0:0 -> usr/lib",
            "l abs 0777 0:0 -> /usr",
            "f usr/lib/a 0644 0:0 =1",
            "f usr/lib/b 0644 0:0 =2",
        ],
    );
    let e = err(&[L::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", "")
        .done()]);
    assert!(
        matches!(e, FlattenError::SymlinkLoop { index: 2, .. }),
        "{e}"
    );
    let e = err(&[L::new().file("f", "").file("f/x", "").done()]);
    assert!(
        matches!(e, FlattenError::NotADirectory { index: 1, .. }),
        "{e}"
    );
}

#[test]
fn long_names_big_ids_subsecond_mtime_and_xattrs() {
    let long_dir = "d".repeat(120);
    let long = format!("{long_dir}/{}", "n".repeat(120));
    let mut gnu = Header::new_gnu();
    gnu.set_entry_type(EntryType::Regular);
    gnu.set_size(4);
    gnu.set_mode(0o644);
    gnu.set_mtime(5);
    let mut b = tar::Builder::new(Vec::new());
    // GNU long name (`././@LongLink`) and long link name.
    b.append_data(&mut gnu, &long, &b"gnu!"[..]).unwrap();
    let mut sym = Header::new_gnu();
    sym.set_entry_type(EntryType::Symlink);
    sym.set_size(0);
    b.append_link(&mut sym, "sym", &long).unwrap();
    let l0 = b.into_inner().unwrap();
    let xattr: &[u8] = b"\x01\n\x00\xff";
    let l1 = L::new()
        .pax(&[
            ("path", format!("{long_dir}/pax").as_bytes()),
            ("uid", b"718322462"),
            ("gid", b"4000000"),
            ("mtime", b"1700000000.123456789"),
            ("SCHILY.xattr.security.capability", xattr),
            ("SCHILY.xattr.user.a", b"1"),
            ("atime", b"1.5"),
        ])
        .file("short-name-overridden", "pax")
        .done();
    let out = flat(&[l0, l1]);
    let tree = final_tree(&[out.clone()][..], &FlattenOptions::default()).unwrap();
    let by_path = |p: &str| tree.iter().find(|e| e.path == p.as_bytes()).unwrap();
    assert_eq!(by_path(&long).kind, FinalKind::Regular { size: 4 });
    assert_eq!(
        by_path("sym").kind,
        FinalKind::Symlink {
            target: long.clone().into_bytes()
        }
    );
    let pax = by_path(&format!("{long_dir}/pax"));
    assert_eq!((pax.meta.uid, pax.meta.gid), (718_322_462, 4_000_000));
    assert_eq!(
        pax.meta.mtime,
        Mtime {
            seconds: 1_700_000_000,
            nanos: 123_456_789
        }
    );
    assert_eq!(
        pax.meta.xattrs,
        vec![
            (b"security.capability".to_vec(), xattr.to_vec()),
            (b"user.a".to_vec(), b"1".to_vec())
        ]
    );
    // The PAX header holds exactly what does not fit, sorted; atime is dropped.
    let recs: &[u8] = b"41 SCHILY.xattr.security.capability=\x01\n\x00\xff\n25 SCHILY.xattr.user.a=1\n15 gid=4000000\n30 mtime=1700000000.123456789\n";
    assert!(
        out.windows(recs.len()).any(|w| w == recs),
        "{}",
        String::from_utf8_lossy(&out).replace('\0', "")
    );
    assert!(!out.windows(5).any(|w| w == b"atime"));
    // GNU tar's listing of the same output agrees on the long names.
    let names: Vec<String> = listing(&out)
        .into_iter()
        .map(|l| l.split(' ').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [long.clone(), "sym".into(), format!("{long_dir}/pax")]
    );
}

#[test]
fn empty_truncated_and_padded_layers() {
    let full = L::new().file("a", "1").done();
    let no_marker = full[..full.len() - 2 * BLOCK].to_vec();
    assert!(!no_marker.is_empty());
    let mut trailing = L::new().file("b", "2").done();
    trailing.extend_from_slice(b"eStargz TOC and other data after the end marker");
    check(
        &[Vec::new(), no_marker, Vec::new(), trailing],
        &["f a 0644 0:0 =1", "f b 0644 0:0 =2"],
    );
    assert_eq!(flat(&[Vec::<u8>::new()]), vec![0; 2 * BLOCK]);
    assert_eq!(flat(&[] as &[Vec<u8>]), vec![0; 2 * BLOCK]);
    // A stream cut inside an entry's data is an error naming the layer; inside its padding it
    // is the end of the archive, as in Go.
    let e = err(&[full[..BLOCK].to_vec()]);
    assert!(matches!(e, FlattenError::Tar { layer: 0, .. }), "{e}");
    check(&[full[..BLOCK + 1].to_vec()], &["f a 0644 0:0 =1"]);
    let mut corrupt = full.clone();
    corrupt[0] = b'b';
    let e = err(&[corrupt]);
    assert!(e.to_string().contains("checksum"), "{e}");
}

#[test]
fn deterministic() {
    let l0 = L::new()
        .dir("z/")
        .file("z/1", "1")
        .file("a", "a")
        .hardlink("b", "a")
        .done();
    let l1 = L::new().file("c", "c").hardlink("0", "a").done();
    let layers = [l0, l1];
    let one = flat(&layers);
    assert_eq!(one, flat(&layers));
    check(
        &layers,
        &[
            "d z/ 0755 0:0",
            "f z/1 0644 0:0 =1",
            "f 0 0644 0:0 =a",
            "h a 0644 0:0 => 0",
            "h b 0644 0:0 => 0",
            "f c 0644 0:0 =c",
        ],
    );
}

#[test]
fn layer_facts() {
    let l0 = L::new()
        .dir("d/")
        .file("d/a", "12345")
        .file("big", "xx")
        .file("dup", "1")
        .file("dup", "22")
        .done();
    let l1 = L::new()
        .wh(".wh.d")
        .file("big", "yyy")
        .file("new", "")
        .dir("e/")
        .done();
    let tree = final_tree(&[l0, l1][..], &FlattenOptions::default()).unwrap();
    let (f0, f1) = (&tree.layers[0], &tree.layers[1]);
    assert_eq!(
        (f0.entries, f0.added, f0.modified, f0.whiteouts, f0.removed),
        (5, 4, 1, 0, 0)
    );
    assert_eq!(
        (f1.entries, f1.added, f1.modified, f1.whiteouts, f1.removed),
        (4, 2, 1, 1, 2)
    );
    let hidden: Vec<(u64, &[u8], u64, usize)> = f0
        .hidden
        .iter()
        .map(|h| (h.index, &h.path[..], h.size, h.by_layer))
        .collect();
    assert_eq!(
        hidden,
        [(1, &b"d/a"[..], 5, 1), (2, b"big", 2, 1), (3, b"dup", 1, 0)]
    );
    assert!(f1.hidden.is_empty());
    let paths: Vec<Vec<u8>> = tree.iter().map(|e| e.path).collect();
    assert_eq!(paths, [&b"e"[..], b"dup", b"big", b"new"]);
    assert_eq!(
        tree.to_vec()[1].source,
        Some(EntryId { layer: 0, index: 4 })
    );
}

#[test]
fn implied_parents_are_in_the_tree_but_not_written() {
    let l0 = L::new().file("a/b/c", "1").done();
    let tree = final_tree(&[l0.clone()][..], &FlattenOptions::default()).unwrap();
    assert_eq!(tree.to_vec()[0].source, None);
    assert_eq!(tree.to_vec()[0].path, b"a");
    check(&[l0], &["f a/b/c 0644 0:0 =1"]);
}

#[test]
fn layer_changed_between_reads() {
    struct Flaky(std::cell::Cell<u32>);
    impl LayerSource for Flaky {
        fn layer_count(&self) -> usize {
            1
        }
        fn open_layer(&self, _: usize) -> io::Result<Box<dyn Read + '_>> {
            self.0.set(self.0.get() + 1);
            let data = if self.0.get() == 1 { "one" } else { "four" };
            Ok(Box::new(io::Cursor::new(L::new().file("a", data).done())))
        }
    }
    let e = flatten(&Flaky(0.into()), io::sink(), &FlattenOptions::default()).unwrap_err();
    assert!(
        matches!(e, FlattenError::LayerChanged { layer: 0, index: 0 }),
        "{e}"
    );
}

#[test]
fn progress_reports() {
    let seen = std::cell::RefCell::new(Vec::new());
    let cb = |p: Progress| seen.borrow_mut().push((p.pass, p.layer));
    let layers = [
        L::new().file("a", "1").done(),
        L::new().symlink("b", "a").done(),
    ];
    flatten(&layers[..], io::sink(), &FlattenOptions::with_progress(&cb)).unwrap();
    assert_eq!(
        *seen.borrow(),
        [(Pass::Scan, 0), (Pass::Scan, 1), (Pass::Write, 0)]
    );
}
