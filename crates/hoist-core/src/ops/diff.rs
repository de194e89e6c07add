//! `diff IMAGE1 IMAGE2`: what differs between two images' final filesystems.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::flatten::{
    FinalEntry, FinalKind, FlattenOptions, content_digests, final_tree, is_below,
};
use crate::ops::export::StoreLayers;
use crate::rootfs::{Change, ChangeKind};
use crate::store::{Image, Store};

/// An image's final entries by path, and the content digests of its files.
type TreeAndDigests = (
    BTreeMap<Vec<u8>, FinalEntry>,
    std::collections::HashMap<Vec<u8>, hoist_format::Digest>,
);

/// The final tree and content digests of one image.
fn tree_of(store: &Store, image: &Image) -> Result<TreeAndDigests> {
    let layers = StoreLayers::new(store, image);
    let tree = final_tree(&layers, &FlattenOptions::default())?;
    let digests = content_digests(&layers, &tree)?;
    Ok((
        tree.entries
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect(),
        digests,
    ))
}

/// `A`/`C`/`D` lines from `a` to `b`, sorted by path: a path is changed when its type, mode,
/// owner, content, link target or xattrs differ (mtimes are not compared: equal files rebuilt
/// later are the same file). A deleted directory is reported once.
pub fn diff_images(store: &Store, a: &Image, b: &Image) -> Result<Vec<Change>> {
    let (ta, da) = tree_of(store, a)?;
    let (tb, db) = tree_of(store, b)?;
    let mut out = Vec::new();
    let mut deleted_dir: Option<Vec<u8>> = None;
    for (p, ea) in &ta {
        if tb.contains_key(p) {
            continue;
        }
        if deleted_dir.as_deref().is_some_and(|d| is_below(p, d)) {
            continue;
        }
        if ea.kind == FinalKind::Directory {
            deleted_dir = Some(p.clone());
        }
        out.push(Change::new(ChangeKind::Deleted, p));
    }
    for (p, eb) in &tb {
        match ta.get(p) {
            None => out.push(Change::new(ChangeKind::Added, p)),
            Some(ea) => {
                let kind_differs = match (&ea.kind, &eb.kind) {
                    // Which path of a hardlink group is primary is an accident of naming.
                    (
                        FinalKind::HardLink { .. } | FinalKind::Regular { .. },
                        FinalKind::HardLink { .. } | FinalKind::Regular { .. },
                    ) => false,
                    (x, y) => x != y,
                };
                let meta_differs = ea.meta.mode != eb.meta.mode
                    || ea.meta.uid != eb.meta.uid
                    || ea.meta.gid != eb.meta.gid
                    || ea.meta.xattrs != eb.meta.xattrs;
                if kind_differs || meta_differs || da.get(p) != db.get(p) {
                    out.push(Change::new(ChangeKind::Changed, p));
                }
            }
        }
    }
    out.sort_by(|x, y| x.raw.cmp(&y.raw));
    Ok(out)
}
