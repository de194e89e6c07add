//! Delta archives: `save --base` leaves out the layers a base has; `load` takes them back from
//! the store or from base archives.
//!
//! A layer is left out when the base has it **on the same layers below** (the same chain ID),
//! which is how docker keys layers: `docker load` looks each layer up by chain ID before it
//! opens the layer's file, so a docker-shaped delta loads on a daemon that has the base. The
//! archive still describes every image completely; `hoist-delta.json` says what is absent and
//! which base images hold it, and `index.json` is annotated so other tools can tell.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use hoist_format::Digest;
use hoist_format::delta::{
    DELTA_FILE, DeltaBase, DeltaManifest, Inventory, LayerFacts, MAX_FROM_NAMES, OmittedBlob,
    PatchReference, PatchedBlob, patch_path,
};
use hoist_format::digest::chain_ids;
use hoist_format::oci::Descriptor;
use hoist_format::reference::Reference;

use super::collect::Collected;
use super::images::{self, ArchiveLayer};
use super::save::SaveItem;
use crate::compress::Compression;
use crate::error::{Error, IoContext, Result};
use crate::patch::{self, LayerSummary, PatchError, Pick};
use crate::store::{LayerCheck, LockGuard, Staged, Staging, Store};

/// What `save` leaves out of an archive, and the description it writes.
#[derive(Debug)]
pub struct DeltaPlan {
    /// `hoist-delta.json`.
    pub manifest: DeltaManifest,
    /// Layer blobs not written: left out, or sent as patches.
    omitted: HashSet<Digest>,
    /// The patches to write (`blobs/sha256/<patch digest>`), made by [`add_patches`].
    patch_files: Vec<Staged>,
    /// Where the patches are, until the archive is written; the staging area dropped before
    /// the lock that keeps `gc` from removing it.
    _staging: Option<Staging>,
    _ingest: Option<LockGuard>,
}

impl DeltaPlan {
    /// Whether `save` leaves the blob out (the base has it, or it is sent as a patch).
    pub fn omits(&self, d: &Digest) -> bool {
        self.omitted.contains(d)
    }

    /// The patch files to write, each as `blobs/sha256/<its digest>`.
    pub fn patch_files(&self) -> &[Staged] {
        &self.patch_files
    }

    /// Layers sent as patches, the bytes of the patches (each written once) and of the
    /// layers they replace.
    pub fn patched_totals(&self) -> (usize, u64, u64) {
        (
            self.manifest.patches.len(),
            self.patch_files.iter().map(|p| p.size).sum(),
            self.manifest.patches.iter().map(|p| p.size).sum(),
        )
    }

    /// Layers left out, and their bytes.
    pub fn omitted_totals(&self) -> (usize, u64) {
        (
            self.manifest.omitted.len(),
            self.manifest.omitted.iter().map(|o| o.size).sum(),
        )
    }
}

/// How an inventory name is shown: docker's short form when it parses as a reference.
fn label_name(n: &str) -> String {
    Reference::parse_normalized(n)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| n.to_string())
}

/// Works out which layer blobs of `items` the base already has. `base_names` are what the user
/// named as bases, recorded in the archive. A blob is left out only when every use of it in
/// the archive is on a chain the base has (a blob used on a chain the base lacks is needed by
/// docker there).
pub fn plan_delta(items: &[SaveItem], base: &Inventory, base_names: Vec<String>) -> DeltaPlan {
    // chain ID → labels of the base images holding it.
    let mut chains: HashMap<&Digest, Vec<usize>> = HashMap::new();
    let labels: Vec<String> = base
        .images
        .iter()
        .map(|i| {
            i.names
                .first()
                .map_or_else(|| i.id.to_string(), |n| label_name(n))
        })
        .collect();
    for (bi, img) in base.images.iter().enumerate() {
        for l in &img.layers {
            let holders = chains.entry(&l.chain_id).or_default();
            if holders.len() < MAX_FROM_NAMES && !holders.contains(&bi) {
                holders.push(bi);
            }
        }
    }
    let mut needed: HashSet<Digest> = HashSet::new();
    let mut covered: BTreeMap<Digest, OmittedBlob> = BTreeMap::new();
    let mut used_bases: Vec<usize> = Vec::new();
    for item in items {
        let diff_ids = &item.image.config.rootfs.diff_ids;
        for ((l, diff_id), chain) in item
            .image
            .manifest
            .layers
            .iter()
            .zip(diff_ids)
            .zip(chain_ids(diff_ids))
        {
            match chains.get(&chain) {
                Some(holders) => {
                    for &h in holders {
                        if !used_bases.contains(&h) {
                            used_bases.push(h);
                        }
                    }
                    covered
                        .entry(l.digest.clone())
                        .or_insert_with(|| OmittedBlob {
                            digest: l.digest.clone(),
                            size: l.size,
                            media_type: l.media_type.clone(),
                            diff_id: diff_id.clone(),
                            chain_id: chain.clone(),
                            from: holders.iter().map(|&h| labels[h].clone()).collect(),
                        });
                }
                None => {
                    needed.insert(l.digest.clone());
                }
            }
        }
    }
    covered.retain(|d, _| !needed.contains(d));
    let mut manifest = DeltaManifest::new(base_names);
    used_bases.sort_unstable();
    manifest.base_images = used_bases
        .into_iter()
        .map(|h| DeltaBase {
            label: labels[h].clone(),
            id: base.images[h].id.clone(),
        })
        .collect();
    let omitted = covered.keys().cloned().collect();
    manifest.omitted = covered.into_values().collect();
    DeltaPlan {
        manifest,
        omitted,
        patch_files: Vec::new(),
        _staging: None,
        _ingest: None,
    }
}

/// `save --delta`: each layer of `items` the plan still writes whole is made a zstd patch
/// against the most similar base layer ([`patch::choose_reference`]) when this store holds
/// that base layer and the patch is smaller than the layer blob. Patches are made in the
/// store's staging area and kept there until the plan is dropped.
pub fn add_patches(
    plan: &mut DeltaPlan,
    store: &Store,
    items: &[SaveItem],
    base: &Inventory,
) -> Result<()> {
    // gc removes staging areas it finds: it waits for this shared lock.
    let ingest = store.ingest_lock()?;
    let held = store_layers_by_diff_id(store)?;
    // A base layer this store does not hold cannot be a reference: marked too big to be one.
    let bases: Vec<Vec<LayerSummary<'_>>> = base
        .images
        .iter()
        .map(|img| {
            img.layers
                .iter()
                .map(|l| {
                    let mut s = LayerSummary::from(l);
                    if !held.contains_key(&l.diff_id) {
                        s.size = Some(u64::MAX);
                    }
                    s
                })
                .collect()
        })
        .collect();
    let staging = store.staging()?;
    let mut reference: Option<(Digest, patch::Reference)> = None;
    let mut done: HashSet<Digest> = HashSet::new();
    for item in items {
        let img = &item.image;
        let created_by = img.config.layers_created_by();
        // Sizes of the layers still sent whole only: a left-out one is not patched.
        let mut sizes = Vec::new();
        for l in &img.manifest.layers {
            sizes.push(if plan.omits(&l.digest) {
                None
            } else {
                Some(store.layer_size(l)?)
            });
        }
        let targets: Vec<LayerSummary<'_>> = img
            .config
            .rootfs
            .diff_ids
            .iter()
            .zip(&sizes)
            .zip(&created_by)
            .map(|((diff_id, size), cb)| LayerSummary {
                diff_id,
                size: *size,
                created_by: cb.as_deref(),
            })
            .collect();
        let picks = patch::choose_reference(&targets, &bases);
        for (i, pick) in picks.into_iter().enumerate() {
            let l = &img.manifest.layers[i];
            if plan.omits(&l.digest) || !done.insert(l.digest.clone()) {
                continue;
            }
            // Another blob of a layer already patched (gzip and plain, say): the same patch.
            let diff_id = &img.config.rootfs.diff_ids[i];
            if let Some(first) = plan
                .manifest
                .patches
                .iter()
                .find(|p| &p.diff_id == diff_id)
                .cloned()
            {
                plan.manifest.patches.push(PatchedBlob {
                    digest: l.digest.clone(),
                    size: l.size,
                    ..first
                });
                plan.omitted.insert(l.digest.clone());
                continue;
            }
            let (bi, bl) = match pick {
                Pick::Patch { image, layer, .. } | Pick::InBase { image, layer } => (image, layer),
                Pick::Whole => continue,
            };
            let base_layer = &base.images[bi].layers[bl];
            let Some(ref_desc) = held.get(&base_layer.diff_id) else {
                continue;
            };
            if reference.as_ref().map(|r| &r.0) != Some(&base_layer.diff_id) {
                // One reference in memory at a time: drop the last before reading the next.
                reference = None;
                let ref_size = store.layer_size(ref_desc)?;
                if ref_size > patch::MAX_REFERENCE_SIZE {
                    continue;
                }
                let r = patch::Reference::read(
                    store.open_layer(ref_desc)?,
                    ref_size,
                    format!("layer {} of the store", base_layer.diff_id),
                )
                .map_err(|e| Error::InvalidArchive(e.to_string()))?;
                reference = Some((base_layer.diff_id.clone(), r));
            }
            let Some((_, r)) = &reference else { continue };
            let (path, mut w) = staging.writer()?;
            let made = r.make_patch(
                store.open_layer(l)?,
                &mut w,
                &patch::PatchOptions {
                    target_size: sizes[i],
                    max_size: Some(l.size),
                    ..Default::default()
                },
            );
            let stats = match made {
                Ok(stats) => stats,
                Err(PatchError::NotSmaller { .. } | PatchError::ReferenceTooBig { .. }) => {
                    continue;
                }
                Err(e) => {
                    return Err(Error::InvalidArchive(format!(
                        "making a patch of layer {}: {e}",
                        img.config.rootfs.diff_ids[i]
                    )));
                }
            };
            let staged = staging.finish_writer(path, w)?;
            if stats.target_digest != img.config.rootfs.diff_ids[i] {
                return Err(Error::Store {
                    root: store.root().to_path_buf(),
                    reason: format!(
                        "layer {} decompresses to {}, not its diff_id {}: run hoist fsck",
                        l.digest, stats.target_digest, img.config.rootfs.diff_ids[i]
                    ),
                });
            }
            let label = base.images[bi]
                .names
                .first()
                .map_or_else(|| base.images[bi].id.to_string(), |n| label_name(n));
            if !plan.manifest.base_images.iter().any(|b| b.label == label) {
                plan.manifest.base_images.push(DeltaBase {
                    label: label.clone(),
                    id: base.images[bi].id.clone(),
                });
            }
            plan.manifest.patches.push(PatchedBlob {
                digest: l.digest.clone(),
                size: l.size,
                diff_id: stats.target_digest.clone(),
                diff_size: stats.target_size,
                patch: patch_path(&staged.digest),
                patch_digest: staged.digest.clone(),
                patch_size: staged.size,
                reference: PatchReference {
                    digest: base_layer.digest.clone(),
                    diff_id: base_layer.diff_id.clone(),
                    diff_size: r.len(),
                },
                from: vec![label],
            });
            plan.omitted.insert(l.digest.clone());
            plan.patch_files.push(staged);
        }
    }
    plan._staging = Some(staging);
    plan._ingest = Some(ingest);
    Ok(())
}

/// An archive or OCI layout directory given to `load --base`: blobs a delta left out are taken
/// from it, each checked as it is staged.
#[derive(Debug)]
pub struct BaseArchive {
    what: String,
    collected: Collected,
    by_diff_id: HashMap<Digest, ArchiveLayer>,
}

impl BaseArchive {
    /// Opens an archive file (read in place when uncompressed, else decompressed into the
    /// staging area as `load` does) or an OCI layout directory.
    pub fn open(path: &Path, staging: &Staging) -> Result<BaseArchive> {
        let what = path.display().to_string();
        // A compressed base is decompressed into staging, as load does: its layers may be
        // needed.
        let collected = collect(path, |dec| Collected::from_tar(dec, staging))?;
        let listed = images::list(&collected, &what)?;
        Ok(BaseArchive {
            by_diff_id: images::layers_by_diff_id(&listed),
            what,
            collected,
        })
    }
}

/// The inventory of an archive file (compressed or not) or an OCI layout directory, read from
/// its documents alone.
pub fn inventory_of_archive(path: &Path) -> Result<Inventory> {
    // Only the documents are needed: a compressed archive is read through, keeping them.
    let collected = collect(path, Collected::index_tar_stream)?;
    Ok(images::inventory(&images::list(
        &collected,
        &path.display().to_string(),
    )?))
}

/// An archive file or an OCI layout directory, indexed: a plain archive file in place
/// (headers by seeking, documents read), a compressed one (or a pipe) by `stream` over its
/// decompressed bytes.
pub(crate) fn collect(
    path: &Path,
    stream: impl FnOnce(Box<dyn std::io::Read>) -> Result<Collected>,
) -> Result<Collected> {
    if path.is_dir() {
        return Collected::from_dir(path);
    }
    let file = File::open(path).at(path)?;
    match sniff(&file, path)? {
        Compression::None if file.metadata().at(path)?.is_file() => {
            Collected::index_tar_file(&file)
        }
        c => {
            let dec =
                crate::compress::decoder(c, std::io::BufReader::new(file)).map_err(|source| {
                    Error::Read {
                        what: path.display().to_string(),
                        source,
                    }
                })?;
            stream(dec)
        }
    }
}

/// How a file is compressed, from its first bytes (read without moving its offset).
fn sniff(file: &File, path: &Path) -> Result<Compression> {
    let mut head = [0u8; 6];
    let n = {
        use std::os::unix::fs::FileExt;
        file.read_at(&mut head, 0).at(path)?
    };
    Ok(Compression::sniff(&head[..n]))
}

/// The inventory of images of the store.
pub fn inventory_of_store(
    store: &Store,
    images: &[(crate::store::Image, Vec<Reference>)],
) -> Inventory {
    let mut inv = Inventory::new();
    for (img, names) in images {
        let facts: Vec<LayerFacts> = img
            .manifest
            .layers
            .iter()
            .zip(&img.config.rootfs.diff_ids)
            .zip(img.config.layers_created_by())
            .map(|((l, diff_id), created_by)| LayerFacts {
                blob: Some((l.digest.clone(), l.size, Some(l.media_type.clone()))),
                // Known without reading: an uncompressed blob is its own diff; a compressed
                // one's size was remembered when it came in.
                diff_size: if &l.digest == diff_id {
                    Some(l.size)
                } else {
                    store.layer_info(&l.digest).map(|(_, size)| size)
                },
                created_by,
            })
            .collect();
        inv.push_image(
            img.id().clone(),
            Some(img.manifest_digest.clone()),
            names.iter().map(|n| n.to_string()).collect(),
            &img.config.rootfs.diff_ids,
            &facts,
        );
    }
    inv
}

/// The blobs a delta archive left out, found again; `substituted` are the archive paths whose
/// blob is the same layer under another digest (an uncompressed copy of a gzip blob, say), so
/// the image's manifest is rebuilt for the blobs it lands with.
#[derive(Debug, Default)]
pub(crate) struct Supplied {
    pub(crate) substituted: HashSet<String>,
}

/// A layer of the store: its blob, and the diff_id it was checked to have.
fn store_layer(store: &Store, desc: &Descriptor) -> Result<Staged> {
    let path = store.blob_path(&desc.digest);
    let compression = sniff(&store.open_blob(&desc.digest)?, &path)?;
    let size = std::fs::metadata(&path).at(&path)?.len();
    let (diff_id, uncompressed_size) = if compression == Compression::None {
        (desc.digest.clone(), size)
    } else {
        store.layer_uncompressed_unremembered(desc)?
    };
    Ok(Staged {
        path,
        digest: desc.digest.clone(),
        size,
        compression,
        diff_id: Some(diff_id),
        uncompressed_size,
        decode_error: None,
        // The store's layers were checked as they came in.
        layer_check: LayerCheck::Unchecked,
        index: None,
    })
}

/// The layers of the store's images: by diff_id, and by blob digest (only blobs some image
/// uses as a layer stand in for a left-out layer, never a config or a manifest).
struct StoreLayers {
    by_diff_id: HashMap<Digest, Descriptor>,
    by_digest: HashMap<Digest, Descriptor>,
}

impl StoreLayers {
    fn read(store: &Store) -> Result<StoreLayers> {
        let mut out = StoreLayers {
            by_diff_id: HashMap::new(),
            by_digest: HashMap::new(),
        };
        for (img, _) in store.images()? {
            for (l, d) in img.manifest.layers.iter().zip(&img.config.rootfs.diff_ids) {
                if store.has_blob(&l.digest) {
                    out.by_diff_id.entry(d.clone()).or_insert_with(|| l.clone());
                    out.by_digest
                        .entry(l.digest.clone())
                        .or_insert_with(|| l.clone());
                }
            }
        }
        Ok(out)
    }

    /// The store's blob of a layer: the same blob, else another blob of the same layer.
    fn find(&self, store: &Store, digest: &Digest, diff_id: &Digest) -> Result<Option<Staged>> {
        match self
            .by_digest
            .get(digest)
            .or_else(|| self.by_diff_id.get(diff_id))
        {
            Some(desc) => store_layer(store, desc).map(Some),
            None => Ok(None),
        }
    }
}

/// The store's layers by diff_id (every image's).
fn store_layers_by_diff_id(store: &Store) -> Result<HashMap<Digest, Descriptor>> {
    Ok(StoreLayers::read(store)?.by_diff_id)
}

/// The `--base` archives of a load, opened on first need (a delta whose layers the store has
/// reads none of them).
struct Bases<'a> {
    paths: &'a [PathBuf],
    opened: Option<Vec<BaseArchive>>,
}

impl Bases<'_> {
    fn get(&mut self, staging: &Staging) -> Result<&[BaseArchive]> {
        if self.opened.is_none() {
            let mut v = Vec::new();
            for b in self.paths {
                v.push(
                    BaseArchive::open(b, staging)
                        .map_err(|e| Error::InvalidArchive(format!("base {}: {e}", b.display())))?,
                );
            }
            self.opened = Some(v);
        }
        Ok(self.opened.as_deref().unwrap_or_default())
    }
}

/// Finds every layer a delta archive's images name and the archive lacks: in the store first,
/// then in `bases`, rebuilding patched layers from their reference; puts each into `c` at the
/// path the archive's documents name. Only what the images need is looked for, each layer
/// once. Fails before anything is written when some are found nowhere, naming the base images
/// that hold them.
pub(crate) fn supply(
    c: &mut Collected,
    store: &Store,
    staging: &Staging,
    bases: &[PathBuf],
) -> Result<Supplied> {
    let mut supplied = Supplied::default();
    if !c.exists(DELTA_FILE) {
        if let Some(b) = bases.first() {
            return Err(Error::Conflict(format!(
                "--base {} is for delta archives (hoist save --base), and this archive is not \
                 one: it has no {DELTA_FILE}",
                b.display()
            )));
        }
        return Ok(supplied);
    }
    let listed = images::list(c, "the archive")?;
    let needed: HashSet<String> = images::layer_paths(&listed)
        .into_iter()
        .filter(|p| !c.exists(p))
        .collect();
    if needed.is_empty() {
        return Ok(supplied);
    }
    let delta = DeltaManifest::parse(&c.bytes(DELTA_FILE)?)
        .map_err(|e| Error::InvalidArchive(e.to_string()))?;
    let in_store = StoreLayers::read(store)?;
    let mut bases = Bases {
        paths: bases,
        opened: None,
    };
    let mut done: HashSet<String> = HashSet::new();
    let mut missing: Vec<&OmittedBlob> = Vec::new();
    for o in &delta.omitted {
        let path = blob_path(&o.digest);
        if !needed.contains(&path) || !done.insert(path.clone()) {
            continue;
        }
        let found = match in_store.find(store, &o.digest, &o.diff_id)? {
            Some(s) => Some(s),
            None => from_bases(bases.get(staging)?, o, staging)?,
        };
        let Some(s) = found else {
            missing.push(o);
            continue;
        };
        if s.diff_id.as_ref() != Some(&o.diff_id) {
            return Err(Error::InvalidArchive(format!(
                "{DELTA_FILE} gives {} the diff_id {}, but the layer found for it ({}) has {}",
                o.digest,
                o.diff_id,
                s.digest,
                s.diff_id
                    .as_ref()
                    .map_or_else(|| "none readable".to_string(), |d| d.to_string())
            )));
        }
        if s.digest != o.digest {
            supplied.substituted.insert(path.clone());
        }
        c.supply(path, s);
    }
    let mut missing_refs: Vec<&PatchedBlob> = Vec::new();
    // Layers rebuilt so far by diff_id, and the reference in memory (one at a time).
    let mut rebuilt: HashMap<Digest, Staged> = HashMap::new();
    let mut reference: Option<(Digest, patch::Reference)> = None;
    for p in &delta.patches {
        let path = blob_path(&p.digest);
        if !needed.contains(&path) || !done.insert(path.clone()) {
            continue;
        }
        let s = if let Some(s) = in_store.find(store, &p.digest, &p.diff_id)? {
            s
        } else if let Some(s) = rebuilt.get(&p.diff_id) {
            s.clone()
        } else {
            let b = bases.get(staging)?;
            match rebuild(c, store, &in_store, b, staging, p, &mut reference)? {
                Some(s) => {
                    rebuilt.insert(p.diff_id.clone(), s.clone());
                    s
                }
                None => {
                    missing_refs.push(p);
                    continue;
                }
            }
        };
        if s.diff_id.as_ref() != Some(&p.diff_id) {
            return Err(Error::InvalidArchive(format!(
                "{DELTA_FILE} gives {} the diff_id {}, but the layer found for it ({}) has another",
                p.digest, p.diff_id, s.digest
            )));
        }
        if s.digest != p.digest {
            supplied.substituted.insert(path.clone());
        }
        c.supply(path, s);
    }
    if !missing.is_empty() || !missing_refs.is_empty() {
        return Err(Error::MissingBase(missing_message(
            &delta,
            &missing,
            &missing_refs,
        )));
    }
    Ok(supplied)
}

/// Rebuilds a layer a delta sends as a patch, from its reference layer in the store or in a
/// base archive; `None` when the reference is in neither. The patch is checked against its
/// digest and the layer against its diff_id and size, and against the layer rules. The
/// reference read stays in `cache` for the next patch against it.
fn rebuild(
    c: &Collected,
    store: &Store,
    in_store: &StoreLayers,
    bases: &[BaseArchive],
    staging: &Staging,
    p: &PatchedBlob,
    cache: &mut Option<(Digest, patch::Reference)>,
) -> Result<Option<Staged>> {
    let want = &p.reference.diff_id;
    let what = format!("the patch of layer {} ({})", p.diff_id, p.patch);
    let bad = |reason: String| Error::InvalidArchive(format!("{what}: {reason}"));
    if cache.as_ref().map(|r| &r.0) != Some(want) {
        // The last reference goes before the next is read: one in memory at a time.
        *cache = None;
        let reference = if let Some(desc) = in_store.by_diff_id.get(want) {
            let size = store.layer_size(desc)?;
            if size != p.reference.diff_size {
                return Err(bad(format!(
                    "its reference {want} has {size} bytes here, not the {} the delta says",
                    p.reference.diff_size
                )));
            }
            patch::Reference::read(store.open_layer(desc)?, size, format!("layer {want}"))
        } else if let Some((b, l)) = bases
            .iter()
            .find_map(|b| b.by_diff_id.get(want).map(|l| (b, l)))
        {
            let raw = b.collected.open(&l.path)?;
            let (_, dec) = crate::compress::auto_decompress(raw).map_err(|source| Error::Read {
                what: format!("base {}: {}", b.what, l.path),
                source,
            })?;
            // The declared size bounds what is read; a reference of another size is refused,
            // and the rebuilt layer's diff_id proves the reference right.
            patch::Reference::read(
                dec,
                p.reference.diff_size,
                format!("base {}: {}", b.what, l.path),
            )
        } else {
            return Ok(None);
        };
        *cache = Some((want.clone(), reference.map_err(|e| bad(e.to_string()))?));
    }
    let Some((_, reference)) = cache.as_ref() else {
        return Ok(None);
    };
    if !c.exists(&p.patch) {
        return Err(bad("the patch is not in the archive".into()));
    }
    let mut patch_in = crate::hashio::HashingReader::new(c.open(&p.patch)?);
    let (path, mut w) = staging.layer_writer()?;
    // The staged blob hashes what it is given: the rebuilt layer is hashed once.
    reference
        .apply_patch_unhashed(&mut patch_in, &mut w, Some(p.diff_size))
        .map_err(|e| bad(e.to_string()))?;
    let (patch_digest, patch_size, _) = patch_in.finish();
    if patch_digest != p.patch_digest || patch_size != p.patch_size {
        return Err(Error::DigestMismatch {
            what: p.patch.clone(),
            expected: p.patch_digest.clone(),
            found: patch_digest,
        });
    }
    let s = staging.finish_writer(path, w)?;
    if s.diff_id.as_ref() != Some(&p.diff_id) {
        return Err(bad(format!(
            "it rebuilds a layer of diff_id {}, not {}",
            s.digest, p.diff_id
        )));
    }
    if let LayerCheck::Invalid(why) = &s.layer_check {
        return Err(bad(format!(
            "the rebuilt layer is not a valid layer tar: {why}"
        )));
    }
    Ok(Some(s))
}

fn from_bases(bases: &[BaseArchive], o: &OmittedBlob, staging: &Staging) -> Result<Option<Staged>> {
    for b in bases {
        let path = blob_path(&o.digest);
        let at = if b.collected.exists(&path) {
            Some(path)
        } else {
            b.by_diff_id.get(&o.diff_id).map(|l| l.path.clone())
        };
        if let Some(p) = at {
            let base_err = |e: Error| Error::InvalidArchive(format!("base {}: {p}: {e}", b.what));
            let s = b.collected.blob(&p, staging).map_err(base_err)?;
            // Layers of docker archives may be bzip2 or xz, which OCI has no type for.
            let s = super::load::storable(s, staging, &b.collected, &p).map_err(base_err)?;
            if s.diff_id.as_ref() != Some(&o.diff_id) {
                return Err(Error::InvalidArchive(format!(
                    "base {}: {p} is not layer {} (it decompresses to {})",
                    b.what,
                    o.diff_id,
                    s.diff_id
                        .as_ref()
                        .map_or_else(|| "nothing readable".to_string(), |d| d.to_string())
                )));
            }
            if let LayerCheck::Invalid(why) = &s.layer_check {
                return Err(Error::InvalidArchive(format!(
                    "base {}: {p} is not a valid layer tar: {why}",
                    b.what
                )));
            }
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// "needs layers of app:1.0 (sha256:…, 3 layers, 212 MB): load or pull it first", one line
/// per base image, the layers counted under the first base that holds them.
fn missing_message(
    delta: &DeltaManifest,
    missing: &[&OmittedBlob],
    missing_refs: &[&PatchedBlob],
) -> String {
    let mut groups: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let entries = missing.iter().map(|o| (&o.from, o.size)).chain(
        missing_refs
            .iter()
            .map(|p| (&p.from, p.reference.diff_size)),
    );
    for (from, size) in entries {
        let label = from
            .first()
            .cloned()
            .unwrap_or_else(|| "the base".to_string());
        let g = groups.entry(label).or_default();
        g.0 += 1;
        g.1 += size;
    }
    let lines: Vec<String> = groups
        .into_iter()
        .map(|(label, (n, bytes))| {
            let id = delta
                .base_images
                .iter()
                .find(|b| b.label == label)
                .map(|b| format!("{}, ", b.id))
                .unwrap_or_default();
            format!(
                "needs layers of {label} ({id}{n} layer{}, {}): load or pull it first, or give \
                 it with --base",
                if n == 1 { "" } else { "s" },
                hoist_format::units::human_size(bytes)
            )
        })
        .collect();
    let mut list: Vec<String> = missing
        .iter()
        .map(|o| format!("  {} (diff_id {})", o.digest, o.diff_id))
        .collect();
    list.extend(missing_refs.iter().map(|p| {
        format!(
            "  {} (diff_id {}): the reference of the patch of {}",
            p.reference.digest.as_ref().unwrap_or(&p.reference.diff_id),
            p.reference.diff_id,
            p.diff_id
        )
    }));
    let n = missing.len() + missing_refs.len();
    format!(
        "the archive is a delta and {n} of the layers it needs {} not in the store:\n{}\n{}",
        if n == 1 { "is" } else { "are" },
        lines.join("\n"),
        list.join("\n")
    )
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}
