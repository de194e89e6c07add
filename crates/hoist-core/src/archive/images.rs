//! The images an archive holds, read from its documents alone (no layer is read or hashed):
//! what a base archive offers to `save --base` and `load --base`; and, with their sizes, what
//! `hoist images -i` lists ([`held_images`]).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use hoist_format::Digest;
use hoist_format::config::ImageConfig;
use hoist_format::delta::{Inventory, LayerFacts};
use hoist_format::docker;
use hoist_format::media_type::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use hoist_format::oci::{Descriptor, Index, Manifest, Sniff};
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

use super::collect::Collected;
use crate::error::{Error, Result};

/// Descriptors followed from `index.json` in all, nested indexes included: real layouts have a
/// few per image; the bound ends a hostile layout's fan-out.
const MAX_DESCRIPTORS: usize = 100_000;

/// Index levels followed below `index.json` (real layouts have one or two).
const MAX_INDEX_DEPTH: usize = 4;

/// A layer of an archive image.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveLayer {
    /// Its file in the archive (links resolved).
    pub(crate) path: String,
    /// Its blob digest, when the archive names it (OCI manifests, `blobs/sha256/` paths).
    pub(crate) digest: Option<Digest>,
    /// Its size in the archive (0 when absent).
    pub(crate) size: u64,
    /// Whether the archive has its bytes (a delta archive leaves some out).
    pub(crate) present: bool,
    /// Its media type, when a manifest gives it.
    pub(crate) media_type: Option<String>,
    /// The config's diff_id for it.
    pub(crate) diff_id: Digest,
}

/// An image of an archive.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveImage {
    /// The config digest.
    pub(crate) id: Digest,
    /// The manifest digest, when the archive has a manifest for it.
    pub(crate) manifest: Option<Digest>,
    /// Its names in the archive.
    pub(crate) names: Vec<String>,
    /// Its layers, bottom first.
    pub(crate) layers: Vec<ArchiveLayer>,
    /// The history step of each layer ([`ImageConfig::layers_created_by`]).
    pub(crate) created_by: Vec<Option<String>>,
    /// The config's platform.
    pub(crate) platform: Platform,
    /// The config's `created`.
    pub(crate) created: Option<String>,
}

/// Lists the images of an archive (docker `manifest.json` and OCI `index.json`, nested indexes
/// and every platform included). `what` names the archive in errors.
pub(crate) fn list(c: &Collected, what: &str) -> Result<Vec<ArchiveImage>> {
    let bad = |reason: String| Error::InvalidArchive(format!("{what}: {reason}"));
    let mut out: Vec<ArchiveImage> = Vec::new();
    if c.exists("index.json") {
        let index =
            Index::parse(&c.bytes("index.json")?).map_err(|e| bad(format!("index.json: {e}")))?;
        // Attestations (buildkit's provenance, `unknown/unknown`) describe images; they are
        // none.
        let mut stack: Vec<(Descriptor, Vec<String>, usize)> = index
            .manifests
            .iter()
            .filter(|d| !d.is_attestation())
            .map(|d| (d.clone(), names_of(d), 0))
            .collect();
        let mut seen = 0usize;
        // Each index or manifest is read once however many descriptors name it: fan-out of a
        // big index by a hostile one costs a lookup, not a hash.
        let mut expanded: HashSet<(Digest, Vec<String>)> = HashSet::new();
        while let Some((desc, names, depth)) = stack.pop() {
            seen += 1;
            if seen > MAX_DESCRIPTORS {
                return Err(bad(format!(
                    "index.json leads to more than {MAX_DESCRIPTORS} manifests"
                )));
            }
            if !expanded.insert((desc.digest.clone(), names.clone())) {
                continue;
            }
            let path = blob_path(&desc.digest);
            if !c.exists(&path) {
                // A platform left out of a partial copy: not something the archive holds.
                continue;
            }
            let bytes = c.bytes(&path)?;
            if Digest::of(&bytes) != desc.digest {
                return Err(bad(format!("{path} is not the blob its name says")));
            }
            let sniff = Sniff::parse(&bytes).map_err(|e| bad(format!("{path}: {e}")))?;
            if sniff.is_index() {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(bad(format!("indexes nested too deeply at {path}")));
                }
                let idx = Index::parse(&bytes).map_err(|e| bad(format!("{path}: {e}")))?;
                stack.extend(
                    idx.manifests
                        .iter()
                        .filter(|d| !d.is_attestation())
                        .map(|d| (d.clone(), names.clone(), depth + 1)),
                );
                continue;
            }
            let m = Manifest::parse(&bytes).map_err(|e| bad(format!("{path}: {e}")))?;
            let cfg_path = blob_path(&m.config.digest);
            if !c.exists(&cfg_path) {
                continue;
            }
            let config = parse_config(c, &cfg_path, what)?;
            let diff_ids = &config.rootfs.diff_ids;
            if diff_ids.len() != m.layers.len() {
                return Err(bad(format!(
                    "manifest {}: {} layers but its config lists {} diff_ids",
                    desc.digest,
                    m.layers.len(),
                    diff_ids.len()
                )));
            }
            let layers = m
                .layers
                .iter()
                .zip(diff_ids)
                .map(|(l, diff_id)| ArchiveLayer {
                    path: blob_path(&l.digest),
                    digest: Some(l.digest.clone()),
                    size: l.size,
                    present: c.exists(&blob_path(&l.digest)),
                    media_type: Some(l.media_type.clone()),
                    diff_id: diff_id.clone(),
                })
                .collect();
            add(
                &mut out,
                ArchiveImage {
                    id: m.config.digest.clone(),
                    manifest: Some(desc.digest.clone()),
                    names,
                    layers,
                    created_by: config.layers_created_by(),
                    platform: config.platform(),
                    created: config.created.clone(),
                },
            );
        }
    }
    if c.exists("manifest.json") {
        let items = docker::parse_manifest(&c.bytes("manifest.json")?)
            .map_err(|e| bad(format!("manifest.json: {e}")))?;
        for (i, item) in items.iter().enumerate() {
            let config_bytes = c.bytes(&item.config)?;
            let config = ImageConfig::parse(&config_bytes)
                .map_err(|e| bad(format!("{}: {e}", item.config)))?;
            let diff_ids = &config.rootfs.diff_ids;
            if diff_ids.len() != item.layers.len() {
                return Err(bad(format!(
                    "manifest.json entry {i}: {} layers but its config lists {} diff_ids",
                    item.layers.len(),
                    diff_ids.len()
                )));
            }
            let mut layers = Vec::new();
            for (p, diff_id) in item.layers.iter().zip(diff_ids) {
                // A delta archive names layers it leaves out: listed, marked absent.
                let (path, present) = match c.resolve(p) {
                    Ok((path, _)) => (path, true),
                    Err(_) => (super::collect::normalize(p)?.unwrap_or_default(), false),
                };
                let digest = path
                    .strip_prefix("blobs/sha256/")
                    .and_then(|h| Digest::from_hex(h).ok());
                layers.push(ArchiveLayer {
                    size: if present { c.size(&path)? } else { 0 },
                    path,
                    digest,
                    present,
                    media_type: None,
                    diff_id: diff_id.clone(),
                });
            }
            add(
                &mut out,
                ArchiveImage {
                    id: Digest::of(&config_bytes),
                    manifest: None,
                    names: item.repo_tags.clone().unwrap_or_default(),
                    layers,
                    created_by: config.layers_created_by(),
                    platform: config.platform(),
                    created: config.created.clone(),
                },
            );
        }
    }
    if out.is_empty() && c.exists("repositories") {
        return Err(bad(
            "a docker 1.x (v1) archive names no layers by digest: `hoist load` it and use the \
             image as the base"
                .into(),
        ));
    }
    if out.is_empty() {
        return Err(bad("the archive holds no image".into()));
    }
    for img in &mut out {
        img.names.sort();
        img.names.dedup();
    }
    Ok(out)
}

/// An image an archive or OCI layout holds, as `hoist images -i` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldImage {
    /// The image ID (config digest).
    pub id: Digest,
    /// Its names in the archive (normalized, with the default tag); none when untagged.
    pub names: Vec<Reference>,
    /// The config's platform.
    pub platform: Platform,
    /// The config's `created`.
    pub created: Option<String>,
    /// Its layers' uncompressed size, as `hoist images` shows it once loaded.
    pub size: u64,
}

/// The images an archive file (any format `load` reads, compressed or not) or an OCI layout
/// directory holds, every platform of an index included, without loading them. Names and IDs
/// come from the documents; a size needs a compressed layer decompressed (and counted), and a
/// docker 1.x (v1) archive's layers are hashed to synthesize its config (its ID), as `load`
/// does. A compressed archive file is decompressed once into an unnamed temporary file (in
/// `$TMPDIR`), since its layers are read after its documents.
pub fn held_images(path: &Path) -> Result<Vec<HeldImage>> {
    let what = path.display().to_string();
    let c = super::delta::collect(path, |mut dec| {
        let mut tmp = crate::store::anonymous_file_in(&std::env::temp_dir())?;
        std::io::copy(&mut dec, &mut tmp).map_err(|source| Error::Read {
            what: format!("{what} (decompressing)"),
            source,
        })?;
        Collected::index_tar_file(&tmp)
    })?;
    if c.exists(hoist_format::delta::DELTA_FILE) {
        return Err(Error::InvalidArchive(format!(
            "{what} is a delta archive (hoist save --base): it lacks layers its base has, so \
             their sizes are unknown here; `hoist load` it"
        )));
    }
    let names_of = |id: &Digest, names: &[String]| -> Result<Vec<Reference>> {
        let mut out = names
            .iter()
            .map(|n| {
                Reference::parse_normalized(n)
                    .map(Reference::with_default_tag)
                    .map_err(|e| {
                        Error::InvalidArchive(format!(
                            "{what}: image {id}: invalid image name {n:?}: {e}"
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|r| r.to_string());
        out.dedup_by_key(|r| r.to_string());
        Ok(out)
    };
    let mut sizes = LayerSizes {
        c: &c,
        what: &what,
        known: HashMap::new(),
    };
    let mut out = Vec::new();
    if !c.exists("index.json") && !c.exists("manifest.json") && c.exists("repositories") {
        for (top, names) in super::load::legacy_tops(&c)? {
            let mut size = 0u64;
            let img = super::load::legacy_image(&c, top, names, |_, path| {
                let (diff_id, n) = sizes.hash(path)?;
                size = size.saturating_add(n);
                Ok(((), diff_id))
            })?;
            let id = Digest::of(&img.config_bytes);
            out.push(HeldImage {
                names: names_of(&id, &img.names)?,
                id,
                platform: img.config.platform(),
                created: img.config.created.clone(),
                size,
            });
        }
        return Ok(out);
    }
    for img in list(&c, &what)? {
        let mut size = 0u64;
        for l in &img.layers {
            size = size.saturating_add(sizes.size(&l.path)?);
        }
        out.push(HeldImage {
            names: names_of(&img.id, &img.names)?,
            id: img.id,
            platform: img.platform,
            created: img.created,
            size,
        });
    }
    Ok(out)
}

/// Uncompressed layer sizes of an archive, each layer read at most once.
struct LayerSizes<'a> {
    c: &'a Collected,
    what: &'a str,
    known: HashMap<String, u64>,
}

impl LayerSizes<'_> {
    fn unreadable(&self, path: &str) -> impl Fn(std::io::Error) -> Error {
        let what = format!("{}: {path}", self.what);
        move |source| Error::Read {
            what: what.clone(),
            source,
        }
    }

    /// The uncompressed size of the layer file at `path`: its own size when it is not
    /// compressed, else its decompressed bytes counted.
    fn size(&mut self, path: &str) -> Result<u64> {
        if let Some(n) = self.known.get(path) {
            return Ok(*n);
        }
        let mut head =
            crate::compress::Peeked::new(self.c.open(path)?).map_err(self.unreadable(path))?;
        let n = match head.compression() {
            crate::compress::Compression::None => self.c.size(path)?,
            compression => {
                let mut dec = crate::compress::decoder(compression, &mut head)
                    .map_err(self.unreadable(path))?;
                crate::compress::drain(&mut dec).map_err(self.unreadable(path))?
            }
        };
        self.known.insert(path.to_string(), n);
        Ok(n)
    }

    /// The diff_id and uncompressed size of the layer file at `path` (a v1 archive's).
    fn hash(&mut self, path: &str) -> Result<(Digest, u64)> {
        let (_, dec) =
            crate::compress::auto_decompress(self.c.open(path)?).map_err(self.unreadable(path))?;
        let mut h = crate::hashio::HashingReader::new(dec);
        crate::compress::drain(&mut h as &mut dyn Read).map_err(self.unreadable(path))?;
        let (diff_id, n, _) = h.finish();
        self.known.insert(path.to_string(), n);
        Ok((diff_id, n))
    }
}

/// The inventory of an archive's images.
pub(crate) fn inventory(images: &[ArchiveImage]) -> Inventory {
    let mut inv = Inventory::new();
    for img in images {
        let diff_ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
        let facts: Vec<LayerFacts> = img
            .layers
            .iter()
            .zip(&img.created_by)
            .map(|(l, created_by)| LayerFacts {
                // An absent layer's size is known only from a manifest (which gives its type).
                blob: l
                    .digest
                    .clone()
                    .filter(|_| l.present || l.media_type.is_some())
                    .map(|d| (d, l.size, l.media_type.clone())),
                // An uncompressed layer is its own diff: its size is known without reading it.
                diff_size: (l.present && l.digest.as_ref() == Some(&l.diff_id)).then_some(l.size),
                created_by: created_by.clone(),
            })
            .collect();
        inv.push_image(
            img.id.clone(),
            img.manifest.clone(),
            img.names.clone(),
            &diff_ids,
            &facts,
        );
    }
    inv
}

/// Where each diff_id's layer is in the archive (the first image listing it), for the layers
/// whose bytes the archive has.
pub(crate) fn layers_by_diff_id(images: &[ArchiveImage]) -> HashMap<Digest, ArchiveLayer> {
    let mut out = HashMap::new();
    for l in images.iter().flat_map(|i| &i.layers).filter(|l| l.present) {
        out.entry(l.diff_id.clone()).or_insert_with(|| l.clone());
    }
    out
}

/// The archive paths of every layer the archive's images name, present or not.
pub(crate) fn layer_paths(images: &[ArchiveImage]) -> HashSet<String> {
    images
        .iter()
        .flat_map(|i| &i.layers)
        .map(|l| l.path.clone())
        .collect()
}

fn add(out: &mut Vec<ArchiveImage>, img: ArchiveImage) {
    match out.iter_mut().find(|o| o.id == img.id) {
        Some(o) => {
            o.names.extend(img.names);
            if o.manifest.is_none() {
                o.manifest = img.manifest;
                o.layers = img.layers;
                o.created_by = img.created_by;
            }
        }
        None => out.push(img),
    }
}

fn names_of(d: &Descriptor) -> Vec<String> {
    if let Some(n) = d.annotation(ANNOTATION_CONTAINERD_NAME) {
        return vec![n.to_string()];
    }
    match d.annotation(ANNOTATION_REF_NAME) {
        // Docker and containerd put only the tag here; podman and skopeo the full name.
        Some(n) if n.contains('/') || n.contains(':') => vec![n.to_string()],
        _ => Vec::new(),
    }
}

fn parse_config(c: &Collected, path: &str, what: &str) -> Result<ImageConfig> {
    let bytes = c.bytes(path)?;
    ImageConfig::parse(&bytes).map_err(|e| Error::InvalidArchive(format!("{what}: {path}: {e}")))
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}
