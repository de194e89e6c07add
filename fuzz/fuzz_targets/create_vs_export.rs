//! The two appliers of layers agree: any bytes as one or two layers are either refused by both
//! `create` (unpacked onto a directory, read back with `pack_dir`) and `export` (merged in
//! memory, written as a flat tar), or give both the same tree: the same paths, types, modes,
//! sizes, contents and link targets. (Failures of system calls on the fuzzing machine's file
//! system are not divergences.)
#![no_main]

use std::collections::BTreeMap;
use std::io::Read;

use libfuzzer_sys::fuzz_target;

use hoist_core::flatten::{FlattenOptions, flatten};
use hoist_core::rootfs::{PackOptions, UnpackOptions, pack_dir, unpack_layer};
use hoist_core::tar::{EntryKind, Reader};

/// One path of a tree: type, mode, content (files) or target (symlinks).
type Listing = BTreeMap<Vec<u8>, (u8, u32, Vec<u8>)>;

/// Lists a tar as the final tree it describes: hard links resolved to what they link to,
/// missing parent directories added with mode 0755 (what an extractor creates).
fn listing(tar: &[u8]) -> Listing {
    let mut out = Listing::new();
    let mut r = Reader::new(tar);
    while let Some(e) = r.next_entry().expect("hoist's own tars read back") {
        let path = e.path.strip_suffix(b"/").unwrap_or(&e.path).to_vec();
        let v = match e.kind {
            EntryKind::Regular => {
                let mut data = Vec::new();
                r.content().read_to_end(&mut data).expect("content");
                (b'f', e.meta.mode, data)
            }
            EntryKind::HardLink => out.get(&e.link).cloned().expect("links come after targets"),
            EntryKind::Symlink => (b'l', 0, e.link.clone()),
            EntryKind::Directory => (b'd', e.meta.mode, Vec::new()),
            k => (k.typeflag(), e.meta.mode, Vec::new()),
        };
        out.insert(path, v);
    }
    let paths: Vec<Vec<u8>> = out.keys().cloned().collect();
    for p in paths {
        let mut prefix = p.as_slice();
        while let Some(i) = prefix.iter().rposition(|&b| b == b'/') {
            prefix = &prefix[..i];
            out.entry(prefix.to_vec())
                .or_insert((b'd', 0o755, Vec::new()));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let split = data
        .first()
        .map(|b| *b as usize % (data.len().max(1)))
        .unwrap_or(0);
    let layers: [&[u8]; 2] = [&data[..split], &data[split..]];

    let mut flat = Vec::new();
    let exported = flatten(&layers[..], &mut flat, &FlattenOptions::default());

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("rootfs");
    let created = layers.iter().enumerate().try_for_each(|(layer, l)| {
        let opts = UnpackOptions {
            layer,
            ..UnpackOptions::default()
        };
        unpack_layer(&root, *l, &opts).map(|_| ())
    });

    match (exported, created) {
        // A system call the file system refuses (an xattr namespace it lacks, …) says nothing
        // about the layer rules.
        (Ok(_), Err(hoist_core::rootfs::RootfsError::Apply { .. })) => {}
        (Ok(_), Ok(())) => {
            let mut packed = Vec::new();
            pack_dir(&root, &mut packed, &PackOptions::default()).expect("pack the rootfs");
            assert_eq!(listing(&flat), listing(&packed), "create and export disagree");
        }
        (Err(_), Err(_)) => {}
        (e, c) => panic!("one path refused what the other took: export {e:?}, create {c:?}"),
    }
});
