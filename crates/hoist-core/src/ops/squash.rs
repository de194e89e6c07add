//! `squash`: merge all layers (or the top N) into one, keeping the config.
//!
//! The new layer is the changeset between the kept lower layers and the whole image: every
//! final entry that the squashed layers wrote, plus whiteouts for the lower paths they deleted.
//! With all layers squashed it is exactly the image's flat export. Runtime config, labels and
//! everything else stay as they are; `rootfs.diff_ids` and `history` are rewritten
//! consistently (the squashed steps stay as `empty_layer` entries, one entry is added for the
//! new layer, dated like the image so that squashing is deterministic).

use std::io::{self, Write};

use hoist_format::config::History;
use hoist_format::oci::Descriptor;
use hoist_format::reference::Reference;
use hoist_format::{Digest, media_type};

use crate::error::{Error, Result};
use crate::flatten::{FinalTree, FlattenOptions, LayerSource, final_tree, is_below, write_flat};
use crate::ops::export::StoreLayers;
use crate::store::{Image, Store};
use crate::tar::{EntryKind, Header, Writer};

/// Options of [`squash`].
#[derive(Debug, Default)]
pub struct SquashOptions {
    /// Squash only the top N layers (all when `None` or when N ≥ the layer count).
    pub last: Option<usize>,
    /// Name for the new image.
    pub name: Option<Reference>,
}

/// What [`squash`] made.
#[derive(Debug, Clone)]
pub struct SquashReport {
    /// The new image ID.
    pub id: Digest,
    /// Layers merged.
    pub squashed: usize,
    /// The new layer's size.
    pub layer_size: u64,
}

/// The first `n` layers of an image.
struct Prefix<'a, L: LayerSource + ?Sized>(&'a L, usize);

impl<L: LayerSource + ?Sized> LayerSource for Prefix<'_, L> {
    fn layer_count(&self) -> usize {
        self.1
    }
    fn open_layer(&self, index: usize) -> io::Result<Box<dyn io::Read + '_>> {
        self.0.open_layer(index)
    }
}

/// Writes the changeset layer from the lower tree to the full tree.
fn write_changeset(
    layers: &StoreLayers<'_>,
    mut full: FinalTree,
    lower: &FinalTree,
    out: impl Write,
) -> Result<()> {
    // Whiteouts for lower paths that are gone, once per deleted subtree (the walk gives a
    // directory before what it holds), written in byte order.
    let mut gone: Vec<Vec<u8>> = Vec::new();
    for e in lower.walk() {
        if gone.last().is_some_and(|l| is_below(&e.path, l)) {
            continue;
        }
        if full.get(&e.path).is_none() {
            gone.push(e.path);
        }
    }
    gone.sort();
    // The whiteouts go first, then the flat part continues the same tar (its writer adds the
    // end-of-archive marker).
    let mut w = Writer::new(out);
    let mut last: Option<&[u8]> = None;
    for p in gone.iter().map(Vec::as_slice) {
        if last.is_some_and(|l| is_below(p, l)) {
            continue;
        }
        last = Some(p);
        let (dir, base) = match p.iter().rposition(|&b| b == b'/') {
            Some(i) => (&p[..=i], &p[i + 1..]),
            None => (&b""[..], p),
        };
        let name = [dir, b".wh.", base].concat();
        let mut h = Header::new(&name, EntryKind::Regular);
        h.mode = 0o600;
        w.header(&h).map_err(|e| Error::Write {
            what: "the squashed layer".into(),
            source: e,
        })?;
    }
    let out = w.into_inner();
    // Every final entry the squashed layers wrote or changed.
    full.retain(|e| match lower.get(&e.path) {
        None => true,
        Some(l) => l.kind != e.kind || l.meta != e.meta || l.source != e.source,
    });
    write_flat(layers, &full, out, &FlattenOptions::default())?;
    Ok(())
}

/// Squashes `image` into a new image.
pub fn squash(store: &Store, image: &Image, opts: &SquashOptions) -> Result<SquashReport> {
    let count = image.manifest.layers.len();
    let n = opts.last.unwrap_or(count).min(count);
    if n == 0 {
        return Err(Error::Conflict(
            "nothing to squash: the image has no layers".into(),
        ));
    }
    let keep = count - n;
    let layers = StoreLayers::new(store, image);
    let full = final_tree(&layers, &FlattenOptions::default())?;
    let lower = if keep == 0 {
        FinalTree::default()
    } else {
        final_tree(&Prefix(&layers, keep), &FlattenOptions::default())?
    };

    let _ingest = store.ingest_lock()?;
    let mut staging = store.staging()?;
    // A layer writer: the squashed layer gets its index (crate::layerindex) as it is hashed.
    let (path, mut w) = staging.layer_writer()?;
    write_changeset(&layers, full, &lower, &mut w)?;
    let layer = staging.finish_writer(path, w)?;
    let diff_id = layer.digest.clone();

    let mut cfg =
        super::ConfigEdit::parse(&image.config_bytes, format!("config of {}", image.id()))?;
    let mut ids: Vec<String> = image.config.rootfs.diff_ids[..keep]
        .iter()
        .map(|d| d.to_string())
        .collect();
    ids.push(diff_id.to_string());
    cfg.set(
        "rootfs",
        &serde_json::json!({"type": "layers", "diff_ids": ids}),
    );
    let mut history = Vec::new();
    let mut seen_layers = 0;
    for h in &image.config.history {
        let mut h = h.clone();
        if !h.empty_layer {
            if seen_layers >= keep {
                h.empty_layer = true;
            }
            seen_layers += 1;
        }
        history.push(h);
    }
    history.push(History {
        created: image.config.created.clone(),
        created_by: Some(format!("hoist squash: {n} layers")),
        author: None,
        comment: None,
        empty_layer: false,
    });
    cfg.set("history", &history);
    let config_bytes = cfg.finish()?;

    let layer_desc = Descriptor::new(media_type::OCI_LAYER, diff_id, layer.size);
    let manifest_bytes = super::derived_manifest(&image.manifest, keep, layer_desc, &config_bytes);
    let new = staging.commit_image(
        &[&layer],
        &manifest_bytes,
        &config_bytes,
        opts.name.as_ref(),
    )?;
    Ok(SquashReport {
        id: new.id,
        squashed: n,
        layer_size: layer.size,
    })
}
