//! The image store: an OCI image layout that skopeo and umoci can read, plus hoist's own state.
//!
//! ```text
//! $HOIST_ROOT/
//!   oci-layout            {"imageLayoutVersion": "1.0.0"}
//!   index.json            one descriptor per name -> manifest (name in both annotations),
//!                         or -> index for a multi-platform image kept whole (`pull
//!                         --all-platforms`); untagged images have a descriptor without
//!                         annotations
//!   blobs/sha256/<hex>    configs, manifests, layers: exactly the bytes received
//!   hoist/
//!     lock                flock: shared while a writer stages blobs, exclusive for gc
//!     index.lock          flock: exclusive around every read-modify-write of index.json
//!     tmp/<pid>-<n>/      staging: blobs are written and verified here, fsynced, then renamed
//!     layers/<hex>        cache: a compressed layer's diff_id and uncompressed size
//!     compressed/, sources/  caches for pushes (see `remember.rs`)
//! ```
//!
//! Writes are atomic: a blob becomes visible only by `rename` after its digest was checked and
//! its bytes fsynced; `index.json` is replaced by `rename` under `index.lock`. A crash leaves at
//! most unreferenced blobs (removed by `gc`) and staging directories (removed by `gc`), never a
//! half-written image. Readers take no lock: every file they read is complete when it appears.
//!
//! A name that points at an index is one image to the user: [`Store::images`] and
//! [`Store::resolve`] present it as the image for the host's platform when the index has it,
//! else as the first image (in index order) the store holds, and [`Image::index`] says which
//! index it was chosen from. `gc` keeps, and `fsck` verifies, every platform's manifest, config
//! and layers of such an index; attestation entries (never pulled) are not required.

mod check;
mod indexes;
mod layercheck;
mod names;
mod remember;
mod staging;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use hoist_format::Digest;
use hoist_format::config::ImageConfig;
use hoist_format::media_type::{self, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use hoist_format::oci::{Descriptor, Index, Manifest, Sniff};
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

pub use check::{FsckProblem, FsckReport, GcReport};
pub use indexes::{IndexBlobError, index_blob};
pub use layercheck::LayerCheck;
pub use names::RemoveEvent;
pub use staging::{BlobWriter, NewImage, Staged, Staging};

use crate::error::{Error, IoContext, Result};

/// Largest JSON document (manifest, index, config) hoist reads into memory. Real configs are a
/// few KiB; the biggest seen in the wild are a few MiB (long histories). A larger "config" is
/// an attack or a mistake.
pub const MAX_JSON_SIZE: u64 = 32 * 1024 * 1024;

/// Indexes nested deeper than this are refused: real ones have at most one index inside another
/// (docker's containerd store, skopeo layouts); the limit also ends a cycle of indexes.
pub const MAX_INDEX_DEPTH: usize = 4;

/// An opened store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A name in the store and the manifest (or multi-platform index) it points to.
#[derive(Debug, Clone)]
pub struct StoreEntry {
    /// The normalized name (`docker.io/library/busybox:latest`), or `None` for untagged images.
    pub name: Option<Reference>,
    /// The manifest or index descriptor as stored in `index.json`.
    pub descriptor: Descriptor,
}

/// An image as the store holds it: its manifest and config, both as bytes and parsed.
///
/// When the store's entry is a multi-platform index, this is the platform image the index
/// stands for (see [`Store::image`]) and `index` is the index.
#[derive(Debug, Clone)]
pub struct Image {
    /// The index the store's entry points at, when the image was chosen from one (without
    /// annotations); `None` when the entry points at the manifest itself.
    pub index: Option<Descriptor>,
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// The manifest's media type.
    pub manifest_media_type: String,
    /// The manifest bytes.
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The config bytes (sha256 = image ID).
    pub config_bytes: Vec<u8>,
    /// The parsed config.
    pub config: ImageConfig,
}

impl Image {
    /// The image ID: the config's digest, as docker computes it.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    /// Sum of the layer blob sizes (what the layers occupy in the store).
    pub fn layers_size(&self) -> u64 {
        self.manifest.layers.iter().map(|l| l.size).sum()
    }

    /// What a name for this image points at: the index it was chosen from, else its manifest.
    pub fn entry_descriptor(&self) -> Descriptor {
        self.index.clone().unwrap_or_else(|| {
            Descriptor::new(
                &self.manifest_media_type,
                self.manifest_digest.clone(),
                self.manifest_bytes.len() as u64,
            )
        })
    }
}

/// A lock held until dropped.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Unlocking is implicit when the file closes; an explicit unlock error changes nothing.
        let _ = self.file.unlock();
    }
}

impl Store {
    /// The default root: `$HOIST_ROOT`, else `$XDG_DATA_HOME/hoist`, else `~/.local/share/hoist`.
    pub fn default_root() -> PathBuf {
        if let Some(r) = std::env::var_os("HOIST_ROOT").filter(|v| !v.is_empty()) {
            return PathBuf::from(r);
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("hoist");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        home.join(".local/share/hoist")
    }

    /// Opens the store at `root`, creating it on first use.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<()> {
        for d in [self.root.join("blobs/sha256"), self.hoist_dir().join("tmp")] {
            fs::create_dir_all(&d).at(&d)?;
        }
        let layout = self.root.join("oci-layout");
        if !layout.exists() {
            self.write_atomic(&layout, media_type::OCI_LAYOUT_CONTENT.as_bytes())?;
        }
        let index = self.index_path();
        if !index.exists() {
            let _lock = self.index_lock()?;
            if !index.exists() {
                self.write_atomic(&index, &index_bytes(&Index::new()))?;
            }
        }
        Ok(())
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn hoist_dir(&self) -> PathBuf {
        self.root.join("hoist")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Where a blob lives (whether or not it exists).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Whether the store has a blob.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        File::open(&p).at(p)
    }

    /// Reads a small blob (a JSON document) whole, checking its digest.
    pub fn read_json_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let f = File::open(&p).at(&p)?;
        let mut bytes = Vec::new();
        f.take(MAX_JSON_SIZE + 1).read_to_end(&mut bytes).at(&p)?;
        if bytes.len() as u64 > MAX_JSON_SIZE {
            return Err(Error::Store {
                root: self.root.clone(),
                reason: format!(
                    "blob {d} is larger than {MAX_JSON_SIZE} bytes; not a JSON document"
                ),
            });
        }
        let found = Digest::of(&bytes);
        if &found != d {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", p.display()),
                expected: d.clone(),
                found,
            });
        }
        Ok(bytes)
    }

    /// Shared lock for writers that stage blobs (so `gc` cannot remove them midway).
    pub fn ingest_lock(&self) -> Result<LockGuard> {
        self.lock_file("lock", false)
    }

    /// Exclusive lock for `gc`: no writer is staging while it runs.
    pub fn exclusive_lock(&self) -> Result<LockGuard> {
        self.lock_file("lock", true)
    }

    fn index_lock(&self) -> Result<LockGuard> {
        self.lock_file("index.lock", true)
    }

    fn lock_file(&self, name: &str, exclusive: bool) -> Result<LockGuard> {
        let p = self.hoist_dir().join(name);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .at(&p)?;
        if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        }
        .at(&p)?;
        Ok(LockGuard { file })
    }

    /// Where to make scratch files ([`anonymous_file_in`]): `hoist/tmp`, on the store's file
    /// system, which has room for a layer's worth where `/tmp` may be memory.
    pub fn scratch_dir(&self) -> PathBuf {
        self.hoist_dir().join("tmp")
    }

    /// Starts a staging area for new blobs.
    pub fn staging(&self) -> Result<Staging> {
        Staging::new(self)
    }

    /// Writes a small file atomically: temp file in `hoist/tmp`, fsync, rename, fsync dir.
    pub(crate) fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let tmpdir = self.hoist_dir().join("tmp");
        let mut tmp = tempfile_in(&tmpdir)?;
        tmp.1.write_all(bytes).at(&tmp.0)?;
        tmp.1.sync_all().at(&tmp.0)?;
        fs::rename(&tmp.0, dest).at(dest)?;
        sync_dir(dest.parent().unwrap_or(&self.root))
    }

    /// Reads `index.json`.
    pub fn read_index(&self) -> Result<Index> {
        let p = self.index_path();
        let bytes = fs::read(&p).at(&p)?;
        Index::parse(&bytes).map_err(|source| Error::OciJson {
            what: p.display().to_string(),
            source,
        })
    }

    /// Every name (and untagged image) in the store.
    pub fn entries(&self) -> Result<Vec<StoreEntry>> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .map(entry_of)
            .collect())
    }

    /// Changes `index.json` under the index lock: `f` edits the list of entries; the new index
    /// replaces the old one atomically.
    pub fn update_index<T>(&self, f: impl FnOnce(&mut Vec<StoreEntry>) -> Result<T>) -> Result<T> {
        let _lock = self.index_lock()?;
        let mut index = self.read_index()?;
        let mut entries: Vec<StoreEntry> = index.manifests.drain(..).map(entry_of).collect();
        let out = f(&mut entries)?;
        index.manifests = entries.into_iter().map(descriptor_of).collect();
        self.write_atomic(&self.index_path(), &index_bytes(&index))?;
        Ok(out)
    }

    /// Loads the image an entry of `index.json` stands for: the manifest `desc` names or, when
    /// `desc` names a multi-platform index, the image for the host's platform if the index has
    /// it, else the first image in index order that the store holds (nested indexes followed,
    /// attestations skipped). The blob's content decides, not the descriptor's media type.
    pub fn image(&self, desc: &Descriptor) -> Result<Image> {
        let (manifest, manifest_bytes, index) = self.presented(desc)?;
        let mut image = self.manifest_image(&manifest, manifest_bytes)?;
        image.index = index;
        Ok(image)
    }

    /// The manifest an entry stands for, its bytes, and the index it was chosen from if any.
    fn presented(&self, desc: &Descriptor) -> Result<(Descriptor, Vec<u8>, Option<Descriptor>)> {
        let bytes = self.read_json_blob(&desc.digest)?;
        let Some(sniff) = index_sniff(&bytes) else {
            return Ok((desc.clone(), bytes, None));
        };
        let mut index = strip(desc);
        if !media_type::is_index(&index.media_type) {
            index.media_type = sniff
                .media_type
                .filter(|m| media_type::is_index(m))
                .unwrap_or_else(|| media_type::OCI_INDEX.to_string());
        }
        let chosen = self.platform_image(&desc.digest, &bytes)?;
        let chosen_bytes = self.read_json_blob(&chosen.digest)?;
        Ok((chosen, chosen_bytes, Some(index)))
    }

    /// The image an index stands for (see [`Store::image`]).
    fn platform_image(&self, digest: &Digest, bytes: &[u8]) -> Result<Descriptor> {
        let mut held = Vec::new();
        self.held_images(digest, bytes, 1, &mut held)?;
        let host = Platform::host();
        held.iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| host.matches(&p.to_platform()))
            })
            .or(held.first())
            .cloned()
            .ok_or_else(|| Error::Store {
                root: self.root.clone(),
                reason: format!("index {digest} lists no image the store holds"),
            })
    }

    /// The image manifests of an index that the store holds, in index order, nested indexes
    /// followed (`depth` is the nesting level of `bytes`), attestations skipped.
    fn held_images(
        &self,
        digest: &Digest,
        bytes: &[u8],
        depth: usize,
        out: &mut Vec<Descriptor>,
    ) -> Result<()> {
        let index = Index::parse(bytes).map_err(|source| Error::OciJson {
            what: format!("index {digest}"),
            source,
        })?;
        for d in index.manifests {
            if d.is_attestation() || !self.has_blob(&d.digest) {
                continue;
            }
            let nested = if media_type::is_index(&d.media_type) {
                Some(self.read_json_blob(&d.digest)?)
            } else if media_type::is_manifest(&d.media_type) {
                None
            } else {
                Some(self.read_json_blob(&d.digest)?).filter(|b| index_sniff(b).is_some())
            };
            match nested {
                Some(_) if depth >= MAX_INDEX_DEPTH => {
                    return Err(Error::Store {
                        root: self.root.clone(),
                        reason: format!(
                            "index {} is nested more than {MAX_INDEX_DEPTH} levels deep",
                            d.digest
                        ),
                    });
                }
                Some(b) => self.held_images(&d.digest, &b, depth + 1, out)?,
                None => {
                    if !out.iter().any(|o| o.digest == d.digest) {
                        out.push(d);
                    }
                }
            }
        }
        Ok(())
    }

    /// Loads an image from its manifest.
    fn manifest_image(&self, manifest: &Descriptor, manifest_bytes: Vec<u8>) -> Result<Image> {
        let what = format!("manifest {}", manifest.digest);
        let parsed = Manifest::parse(&manifest_bytes).map_err(|source| Error::OciJson {
            what: what.clone(),
            source,
        })?;
        let config_bytes = self.read_json_blob(&parsed.config.digest)?;
        let config = ImageConfig::parse(&config_bytes)
            .map_err(|e| Error::InvalidArchive(format!("config {}: {e}", parsed.config.digest)))?;
        Ok(Image {
            index: None,
            manifest_digest: manifest.digest.clone(),
            manifest_media_type: manifest.media_type.clone(),
            manifest_bytes,
            manifest: parsed,
            config_bytes,
            config,
        })
    }

    /// All images, each once, with their names (sorted), in a stable order (by the digest
    /// their entries point at). A name on a multi-platform index is one image (see
    /// [`Store::image`]).
    pub fn images(&self) -> Result<Vec<(Image, Vec<Reference>)>> {
        let mut by_manifest: BTreeMap<Digest, (Descriptor, Vec<Reference>)> = BTreeMap::new();
        for e in self.entries()? {
            let slot = by_manifest
                .entry(e.descriptor.digest.clone())
                .or_insert_with(|| (e.descriptor.clone(), Vec::new()));
            if let Some(n) = e.name {
                slot.1.push(n);
            }
        }
        let mut out = Vec::new();
        for (_, (desc, mut names)) in by_manifest {
            names.sort_by_key(|n| n.to_string());
            names.dedup_by_key(|n| n.to_string());
            out.push((self.image(&desc)?, names));
        }
        Ok(out)
    }

    /// Finds an image by name (docker's normalization), by full ID, or by a unique ID prefix.
    /// Names win over ID prefixes, as in docker.
    pub fn resolve(&self, spec: &str) -> Result<(Image, Vec<Reference>)> {
        let images = self.images()?;
        if let Ok(r) = Reference::parse_normalized(spec) {
            let r = r.with_default_tag();
            let key = r.to_string();
            if let Some(found) = images
                .iter()
                .find(|(_, names)| names.iter().any(|n| n.to_string() == key))
            {
                return Ok(found.clone());
            }
        }
        let prefix = spec.strip_prefix("sha256:").unwrap_or(spec);
        if !prefix.is_empty() && prefix.len() <= 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let prefix = prefix.to_ascii_lowercase();
            let mut hits: Vec<&(Image, Vec<Reference>)> = images
                .iter()
                .filter(|(img, _)| img.id().hex().starts_with(&prefix))
                .collect();
            // One image ID may be reachable through several manifests (e.g. loaded once from a
            // gzip OCI archive and once from a docker archive); they are the same image to the user.
            hits.dedup_by_key(|(img, _)| img.id().clone());
            let mut ids: Vec<String> = hits.iter().map(|(i, _)| i.id().to_string()).collect();
            ids.sort();
            ids.dedup();
            match ids.len() {
                0 => {}
                1 => {
                    let id = hits[0].0.id().clone();
                    let mut names: Vec<Reference> = images
                        .iter()
                        .filter(|(i, _)| i.id() == &id)
                        .flat_map(|(_, n)| n.iter().cloned())
                        .collect();
                    names.sort_by_key(|n| n.to_string());
                    return Ok((hits[0].0.clone(), names));
                }
                _ => {
                    return Err(Error::AmbiguousId {
                        prefix: spec.to_string(),
                        candidates: ids,
                    });
                }
            }
        }
        Err(Error::ImageNotFound(spec.to_string()))
    }

    /// Records a compressed layer's diff_id and uncompressed size.
    pub fn remember_layer(&self, blob: &Digest, diff_id: &Digest, size: u64) -> Result<()> {
        let dir = self.hoist_dir().join("layers");
        fs::create_dir_all(&dir).at(&dir)?;
        let p = dir.join(blob.hex());
        if p.exists() {
            return Ok(());
        }
        self.write_atomic(&p, format!("{diff_id} {size}\n").as_bytes())
    }

    /// A compressed layer's diff_id and uncompressed size, if recorded.
    pub fn layer_info(&self, blob: &Digest) -> Option<(Digest, u64)> {
        let text = fs::read_to_string(self.hoist_dir().join("layers").join(blob.hex())).ok()?;
        let (d, s) = text.trim().split_once(' ')?;
        Some((Digest::parse(d).ok()?, s.parse().ok()?))
    }

    /// The uncompressed size and diff_id of a layer blob: from the cache, or by reading it once.
    pub fn layer_uncompressed(&self, desc: &Descriptor) -> Result<(Digest, u64)> {
        if let Some(info) = self.layer_info(&desc.digest) {
            return Ok(info);
        }
        let (d, n) = self.layer_uncompressed_unremembered(desc)?;
        self.remember_layer(&desc.digest, &d, n)?;
        Ok((d, n))
    }

    /// [`Store::layer_uncompressed`] without recording what it learns, for readers that must
    /// leave the store exactly as it was when they fail (`load`).
    pub fn layer_uncompressed_unremembered(&self, desc: &Descriptor) -> Result<(Digest, u64)> {
        if let Some(info) = self.layer_info(&desc.digest) {
            return Ok(info);
        }
        let f = self.open_blob(&desc.digest)?;
        let (_, dec) = crate::compress::auto_decompress(f).at(self.blob_path(&desc.digest))?;
        let mut h = crate::hashio::HashingReader::new(dec);
        crate::compress::drain(&mut h).at(self.blob_path(&desc.digest))?;
        let (d, n, _) = h.finish();
        Ok((d, n))
    }

    /// The uncompressed size of a layer blob, reading as little as it can: an uncompressed
    /// blob's own size, else the size remembered when it came in, else the decompressed bytes
    /// counted (not hashed). Records nothing.
    pub fn layer_size(&self, desc: &Descriptor) -> Result<u64> {
        let path = self.blob_path(&desc.digest);
        let f = self.open_blob(&desc.digest)?;
        let mut head = [0u8; 6];
        let n = {
            use std::os::unix::fs::FileExt;
            f.read_at(&mut head, 0).at(&path)?
        };
        if crate::compress::Compression::sniff(&head[..n]) == crate::compress::Compression::None {
            return Ok(f.metadata().at(&path)?.len());
        }
        if let Some((_, size)) = self.layer_info(&desc.digest) {
            return Ok(size);
        }
        let (_, mut dec) = crate::compress::auto_decompress(f).at(&path)?;
        crate::compress::drain(&mut dec).at(&path)
    }

    /// Opens a layer blob decompressed.
    pub fn open_layer(&self, desc: &Descriptor) -> Result<Box<dyn Read>> {
        let f = self.open_blob(&desc.digest)?;
        let (_, r) = crate::compress::auto_decompress(f).at(self.blob_path(&desc.digest))?;
        Ok(r)
    }

    /// Verifies every blob and reference.
    pub fn fsck(&self) -> Result<FsckReport> {
        check::fsck(self)
    }

    /// Removes blobs no name reaches, stale staging directories, and containers whose
    /// creation was interrupted.
    pub fn gc(&self) -> Result<GcReport> {
        check::gc(self)
    }

    /// Puts `name` on the image whose manifest (or index) is `desc`, moving it from any other image (which
    /// stays in the store untagged if nothing else names it, as docker does). Returns the ID of
    /// the image the name was taken from, if any.
    pub fn tag_entries(
        entries: &mut Vec<StoreEntry>,
        name: &Reference,
        desc: &Descriptor,
        old_ids: &HashMap<Digest, Digest>,
    ) -> Option<Digest> {
        let key = name.to_string();
        let mut moved_from = None;
        if let Some(pos) = entries
            .iter()
            .position(|e| e.name.as_ref().map(|n| n.to_string()) == Some(key.clone()))
        {
            let old = entries.remove(pos);
            if old.descriptor.digest == desc.digest {
                entries.insert(pos, old);
                return None;
            }
            moved_from = old_ids.get(&old.descriptor.digest).cloned();
            if !entries
                .iter()
                .any(|e| e.descriptor.digest == old.descriptor.digest)
            {
                entries.push(StoreEntry {
                    name: None,
                    descriptor: strip(&old.descriptor),
                });
            }
        }
        entries.retain(|e| !(e.name.is_none() && e.descriptor.digest == desc.digest));
        entries.push(StoreEntry {
            name: Some(name.clone()),
            descriptor: strip(desc),
        });
        moved_from
    }

    /// Makes sure an untagged image stays in the store.
    pub fn keep_untagged(entries: &mut Vec<StoreEntry>, desc: &Descriptor) {
        if !entries.iter().any(|e| e.descriptor.digest == desc.digest) {
            entries.push(StoreEntry {
                name: None,
                descriptor: strip(desc),
            });
        }
    }

    /// Removes the untagged entries whose digest is in `covered`: the manifests and nested
    /// indexes of an index that is now named, which stand for no image of their own any more.
    pub fn drop_covered_untagged(entries: &mut Vec<StoreEntry>, covered: &[Digest]) {
        entries.retain(|e| e.name.is_some() || !covered.contains(&e.descriptor.digest));
    }

    /// Image IDs (config digests) of the images that `entries` reference, by the digest the
    /// entry points at (for an index: the ID of the image it stands for, see [`Store::image`]).
    pub fn ids_of(&self, entries: &[StoreEntry]) -> Result<HashMap<Digest, Digest>> {
        let mut out = HashMap::new();
        for e in entries {
            if out.contains_key(&e.descriptor.digest) {
                continue;
            }
            let (manifest, b, _) = self.presented(&e.descriptor)?;
            let m = Manifest::parse(&b).map_err(|source| Error::OciJson {
                what: format!("manifest {}", manifest.digest),
                source,
            })?;
            out.insert(e.descriptor.digest.clone(), m.config.digest);
        }
        Ok(out)
    }
}

/// The document's shape when it is an index (by media type, else by its fields); `None` for a
/// manifest or anything that is not JSON (parsing it as a manifest then says what is wrong).
fn index_sniff(bytes: &[u8]) -> Option<Sniff> {
    Sniff::parse(bytes).ok().filter(Sniff::is_index)
}

fn strip(d: &Descriptor) -> Descriptor {
    Descriptor::new(&d.media_type, d.digest.clone(), d.size)
}

fn entry_of(d: Descriptor) -> StoreEntry {
    let name = d
        .annotation(ANNOTATION_CONTAINERD_NAME)
        .or_else(|| d.annotation(ANNOTATION_REF_NAME))
        .and_then(|n| Reference::parse_normalized(n).ok());
    StoreEntry {
        name,
        descriptor: d,
    }
}

fn descriptor_of(e: StoreEntry) -> Descriptor {
    let mut d = e.descriptor;
    d.annotations = e.name.map(|n| {
        let full = n.to_string();
        BTreeMap::from([
            (ANNOTATION_CONTAINERD_NAME.to_string(), full.clone()),
            (ANNOTATION_REF_NAME.to_string(), full),
        ])
    });
    d
}

/// Serializes the store index with entries sorted (named first by name, then untagged by
/// digest), so the same store content always gives the same `index.json`.
fn index_bytes(index: &Index) -> Vec<u8> {
    let mut index = index.clone();
    index.manifests.sort_by(|a, b| {
        let ka = (
            a.annotation(ANNOTATION_REF_NAME).is_none(),
            a.annotation(ANNOTATION_REF_NAME).map(str::to_string),
            a.digest.clone(),
        );
        let kb = (
            b.annotation(ANNOTATION_REF_NAME).is_none(),
            b.annotation(ANNOTATION_REF_NAME).map(str::to_string),
            b.digest.clone(),
        );
        ka.cmp(&kb)
    });
    serde_json::to_vec(&index).expect("an index always serializes")
}

/// An anonymous read-write file in `dir`: no name reaches it and it is gone when closed, also
/// after a crash (`O_TMPFILE`; where the file system lacks it, a named file removed at once).
pub fn anonymous_file_in(dir: &Path) -> Result<File> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;
    match rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::RUSR | Mode::WUSR,
    ) {
        Ok(fd) => return Ok(File::from(fd)),
        // What a file system or kernel without O_TMPFILE answers.
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {}
        Err(e) => return Err(io::Error::from(e)).at(dir),
    }
    let (path, file) = tempfile_in(dir)?;
    fs::remove_file(&path).at(&path)?;
    Ok(file)
}

/// Creates a uniquely named file in `dir`, open for reading and writing.
pub(crate) fn tempfile_in(dir: &Path) -> Result<(PathBuf, File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = dir.join(format!(".tmp-{}-{n}-{nanos}", std::process::id()));
        match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::Io { path: p, source: e }),
        }
    }
}

/// fsyncs a directory so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
