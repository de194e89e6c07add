//! `diff IMAGE1 IMAGE2`: what differs between two images' final filesystems (each of the
//! store, or of an archive or layout read in place).
//!
//! Both merged trees are walked side by side in path order, so nothing is held per path
//! beyond the trees themselves; file contents are hashed only for files of equal size at the
//! same path whose content does not come from the same layer entry.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use hoist_format::Digest;

use crate::error::Result;
use crate::flatten::{
    EntryId, FinalEntry, FinalKind, FinalTree, FlattenOptions, entry_digests, final_tree, is_below,
    path_order,
};
use crate::rootfs::{Change, ChangeKind};
use crate::view::OpenedImage;

/// A path both images hold as a regular file of the same size, to compare by content.
struct SameSize {
    path: Vec<u8>,
    a: EntryId,
    b: EntryId,
}

/// `A`/`C`/`D` lines from `a` to `b`, sorted by path: a path is changed when its type, mode,
/// owner, content, link target or xattrs differ (mtimes are not compared: equal files rebuilt
/// later are the same file). A deleted directory is reported once.
pub fn diff_images(a: &OpenedImage, b: &OpenedImage) -> Result<Vec<Change>> {
    let ta = final_tree(a, &FlattenOptions::default())?;
    let tb = final_tree(b, &FlattenOptions::default())?;
    let (ids_a, ids_b) = (
        &a.image.config.rootfs.diff_ids,
        &b.image.config.rootfs.diff_ids,
    );
    // The same entry of the same layer blob is the same content.
    let same_source = |x: EntryId, y: EntryId| {
        x.index == y.index
            && ids_a
                .get(x.layer)
                .is_some_and(|d| ids_b.get(y.layer) == Some(d))
    };
    let mut out = Vec::new();
    let mut to_hash = Vec::new();
    let mut deleted_dir: Option<Vec<u8>> = None;
    let (mut ia, mut ib) = (ta.walk().peekable(), tb.walk().peekable());
    loop {
        let ord = match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => path_order(&x.path, &y.path),
        };
        match ord {
            Ordering::Less => {
                let ea = ia.next().expect("peeked");
                if deleted_dir
                    .as_deref()
                    .is_some_and(|d| is_below(&ea.path, d))
                {
                    continue;
                }
                if ea.kind == FinalKind::Directory {
                    deleted_dir = Some(ea.path.clone());
                }
                out.push(Change::new(ChangeKind::Deleted, &ea.path));
            }
            Ordering::Greater => {
                let eb = ib.next().expect("peeked");
                out.push(Change::new(ChangeKind::Added, &eb.path));
            }
            Ordering::Equal => {
                let (ea, eb) = (ia.next().expect("peeked"), ib.next().expect("peeked"));
                match compare(&ta, &tb, &ea, &eb) {
                    Same::No => out.push(Change::new(ChangeKind::Changed, &eb.path)),
                    Same::Yes => {}
                    Same::IfContent(x, y) if same_source(x, y) => {}
                    Same::IfContent(x, y) => to_hash.push(SameSize {
                        path: eb.path,
                        a: x,
                        b: y,
                    }),
                }
            }
        }
    }
    let digests = |layers: &OpenedImage, tree: &FinalTree, pick: fn(&SameSize) -> EntryId| {
        let wanted: BTreeMap<EntryId, u64> = to_hash
            .iter()
            .map(|s| (pick(s), size_of(tree, &s.path)))
            .collect();
        entry_digests(layers, &wanted)
    };
    let da: HashMap<EntryId, Digest> = digests(a, &ta, |s| s.a)?;
    let db: HashMap<EntryId, Digest> = digests(b, &tb, |s| s.b)?;
    for s in &to_hash {
        if da.get(&s.a) != db.get(&s.b) {
            out.push(Change::new(ChangeKind::Changed, &s.path));
        }
    }
    out.sort_by(|x, y| x.raw.cmp(&y.raw));
    Ok(out)
}

/// Whether two entries at the same path are the same.
enum Same {
    Yes,
    No,
    /// The same if these entries' contents are.
    IfContent(EntryId, EntryId),
}

/// The content size of the regular file (or hard link to one) at `path`.
fn size_of(tree: &FinalTree, path: &[u8]) -> u64 {
    match tree.get_resolved(path).map(|e| e.kind) {
        Some(FinalKind::Regular { size }) => size,
        _ => 0,
    }
}

fn compare(ta: &FinalTree, tb: &FinalTree, ea: &FinalEntry, eb: &FinalEntry) -> Same {
    let regular =
        |k: &FinalKind| matches!(k, FinalKind::HardLink { .. } | FinalKind::Regular { .. });
    // Which path of a hardlink group is primary is an accident of naming.
    let kind_differs = match (regular(&ea.kind), regular(&eb.kind)) {
        (true, true) => false,
        _ => ea.kind != eb.kind,
    };
    let meta_differs = ea.meta.mode != eb.meta.mode
        || ea.meta.uid != eb.meta.uid
        || ea.meta.gid != eb.meta.gid
        || ea.meta.xattrs != eb.meta.xattrs;
    if kind_differs || meta_differs {
        return Same::No;
    }
    if !regular(&ea.kind) {
        return Same::Yes;
    }
    let (sa, sb) = (size_of(ta, &ea.path), size_of(tb, &eb.path));
    match (ea.source, eb.source) {
        _ if sa != sb => Same::No,
        _ if sa == 0 => Same::Yes,
        (Some(x), Some(y)) => Same::IfContent(x, y),
        _ => Same::No,
    }
}
