//! `save`: write images from the store as one archive.
//!
//! Three shapes ([`SaveFormat`]): `docker` (docker 25's: OCI layout + `manifest.json` +
//! `repositories`, readable by every docker since 1.10, podman, skopeo, containerd, umoci),
//! `oci` (a pure OCI layout) and `docker-legacy` (docker 1.10–24's per-layer directories).
//! Layers and JSON documents are written exactly as stored. Output is deterministic: entries
//! sorted, fixed modes, owner 0, mtime 0, USTAR headers, two zero blocks at the end.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use hoist_format::delta::{
    ANNOTATION_DELTA, ANNOTATION_DELTA_BASE, ANNOTATION_DELTA_PATCHES, DELTA_FILE, MAX_DELTA_SIZE,
};
use hoist_format::docker::{ManifestItem, Repositories};
use hoist_format::media_type::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Compression};
use hoist_format::oci::{Descriptor, Index};
use hoist_format::reference::Reference;
use hoist_format::{Digest, legacy, media_type};

use super::delta::DeltaPlan;
use super::transport::BlobSource;
use crate::error::{Error, Result};
use crate::store::{Image, Store};
use crate::tar::{EntryKind, Header, Writer};

/// Archive shapes `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFormat {
    /// docker 25+: OCI layout plus `manifest.json` and `repositories`.
    #[default]
    Docker,
    /// A pure OCI image layout.
    Oci,
    /// docker 1.10–24: `<v1id>/{VERSION,json,layer.tar}`, `<id>.json`, `manifest.json`, `repositories`.
    DockerLegacy,
}

/// Options of [`save`].
#[derive(Default)]
pub struct SaveOptions<'a> {
    /// The archive shape.
    pub format: SaveFormat,
    /// Compression of the whole archive (none, gzip or zstd).
    pub compression: Option<Compression>,
    /// Called with the number of bytes written so far.
    pub progress: Option<&'a dyn Fn(u64)>,
    /// OCI shape only: the `org.opencontainers.image.ref.name` of what is written, exactly as
    /// given (skopeo's `oci-archive:PATH:REF`: not an image name, but it must match image-spec's
    /// ref grammar, [`hoist_format::oci::check_ref_name`]), instead of the items' names.
    pub oci_ref_name: Option<&'a str>,
    /// A delta against a base ([`super::delta::plan_delta`]): the layer blobs it leaves out,
    /// and the `hoist-delta.json` written to say so (docker and OCI shapes only).
    pub delta: Option<&'a DeltaPlan>,
}

impl std::fmt::Debug for SaveOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaveOptions")
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("delta", &self.delta.map(|d| d.omitted_totals()))
            .finish()
    }
}

/// An image to save and the names to record for it.
#[derive(Debug, Clone)]
pub struct SaveItem {
    /// The image.
    pub image: Image,
    /// Its names in the archive.
    pub names: Vec<Reference>,
}

/// Resolves the images named on a `save` command line. A `name:tag` saves that name; a
/// repository without a tag saves every tag of it (as docker 20.10 does); an ID saves the image
/// with all its names (docker drops them: moby#50834). The same image named twice is saved once.
pub fn resolve_for_save(store: &Store, specs: &[String]) -> Result<Vec<SaveItem>> {
    let all = store.images()?;
    let mut items: Vec<SaveItem> = Vec::new();
    for spec in specs {
        let mut found: Vec<(Image, Vec<Reference>)> = Vec::new();
        if let Ok(r) = Reference::parse_normalized(spec) {
            if r.tag().is_none() && r.digest().is_none() {
                let repo = r.name();
                for (img, names) in &all {
                    let tagged: Vec<Reference> =
                        names.iter().filter(|n| n.name() == repo).cloned().collect();
                    if !tagged.is_empty() {
                        found.push((img.clone(), tagged));
                    }
                }
            } else {
                let key = r.with_default_tag().to_string();
                for (img, names) in &all {
                    if let Some(n) = names.iter().find(|n| n.to_string() == key) {
                        found.push((img.clone(), vec![n.clone()]));
                    }
                }
            }
        }
        if found.is_empty() {
            found.push(store.resolve(spec)?);
        }
        for (img, names) in found {
            match items
                .iter_mut()
                .find(|i| i.image.manifest_digest == img.manifest_digest)
            {
                Some(i) => i.names.extend(names),
                None => items.push(SaveItem { image: img, names }),
            }
        }
    }
    for i in &mut items {
        i.names.sort_by_key(|n| n.to_string());
        i.names.dedup_by_key(|n| n.to_string());
    }
    // Deterministic order whatever the order of the arguments.
    items.sort_by_key(|i| {
        (
            i.names.first().map(|n| n.to_string()),
            i.image.id().clone(),
            i.image.manifest_digest.clone(),
        )
    });
    Ok(items)
}

/// Where the blobs of the images being written come from.
#[derive(Clone, Copy)]
enum Blobs<'a> {
    /// The store (read as files, so the copy can be done by the kernel).
    Store(&'a Store),
    /// Any other source (`hoist copy`).
    Source(&'a dyn BlobSource),
}

/// Writes `items` as one archive to `out`.
pub fn save<W: Write>(
    store: &Store,
    items: &[SaveItem],
    out: W,
    opts: &SaveOptions<'_>,
) -> Result<()> {
    save_with(Blobs::Store(store), items, None, out, opts)
}

/// Writes `items`, whose blobs come from `source`, as one archive to `out` (docker or OCI
/// shape; docker-legacy needs the store, which knows the uncompressed sizes of layers).
pub fn save_from<W: Write>(
    source: &dyn BlobSource,
    items: &[SaveItem],
    out: W,
    opts: &SaveOptions<'_>,
) -> Result<()> {
    if opts.format == SaveFormat::DockerLegacy {
        return Err(Error::Conflict(
            "the docker-legacy format is written from the store only".into(),
        ));
    }
    save_with(Blobs::Source(source), items, None, out, opts)
}

/// Writes a multi-platform image as an OCI archive: the blobs of every image of `set` (from
/// `source`), the index, and `index.json` pointing at the index under `names`.
pub fn save_set_from<W: Write>(
    source: &dyn BlobSource,
    set: &super::transport::ImageSet,
    names: &[Reference],
    out: W,
    opts: &SaveOptions<'_>,
) -> Result<()> {
    let items: Vec<SaveItem> = set
        .images
        .iter()
        .map(|image| SaveItem {
            image: image.clone(),
            names: Vec::new(),
        })
        .collect();
    let Some((bytes, mt)) = set.index_as_written(&set.as_found())? else {
        let single = [SaveItem {
            image: set.first().clone(),
            names: names.to_vec(),
        }];
        return save_from(source, &single, out, opts);
    };
    if opts.format != SaveFormat::Oci {
        return Err(Error::Conflict(
            "a multi-platform index is written as an OCI archive only".into(),
        ));
    }
    let desc = Descriptor::new(&mt, Digest::of(&bytes), bytes.len() as u64);
    let index = TopIndex {
        descriptor: &desc,
        bytes: &bytes,
        names,
    };
    save_with(Blobs::Source(source), &items, Some(&index), out, opts)
}

/// The index an archive's `index.json` points at instead of its images (a multi-platform one).
#[derive(Debug, Clone, Copy)]
struct TopIndex<'a> {
    descriptor: &'a Descriptor,
    bytes: &'a [u8],
    names: &'a [Reference],
}

fn save_with<W: Write>(
    store: Blobs<'_>,
    items: &[SaveItem],
    index: Option<&TopIndex<'_>>,
    out: W,
    opts: &SaveOptions<'_>,
) -> Result<()> {
    if let Some(r) = opts.oci_ref_name {
        hoist_format::oci::check_ref_name(r)?;
    }
    let noop = |_: u64| {};
    let progress: &dyn Fn(u64) = opts.progress.unwrap_or(&noop);
    match opts.compression.unwrap_or(Compression::None) {
        Compression::None => {
            let mut w = TarOut::new(out, progress);
            write_format(store, items, index, &mut w, opts)?;
            w.finish()?;
        }
        Compression::Gzip => {
            let enc = flate2::GzBuilder::new()
                .mtime(0)
                .write(out, flate2::Compression::default());
            let mut w = TarOut::new(enc, progress);
            write_format(store, items, index, &mut w, opts)?;
            let enc = w.finish()?;
            enc.finish().map_err(write_err)?;
        }
        Compression::Zstd => {
            let enc = zstd::stream::write::Encoder::new(out, zstd::DEFAULT_COMPRESSION_LEVEL)
                .map_err(write_err)?;
            let mut w = TarOut::new(enc, progress);
            write_format(store, items, index, &mut w, opts)?;
            let enc = w.finish()?;
            enc.finish().map_err(write_err)?;
        }
        other => {
            return Err(Error::Conflict(format!(
                "save cannot compress with {other:?}: use gzip or zstd"
            )));
        }
    }
    Ok(())
}

fn write_err(source: io::Error) -> Error {
    Error::Write {
        what: "the archive".into(),
        source,
    }
}

fn write_format<W: Write>(
    store: Blobs<'_>,
    items: &[SaveItem],
    index: Option<&TopIndex<'_>>,
    w: &mut TarOut<'_, W>,
    opts: &SaveOptions<'_>,
) -> Result<()> {
    let format = opts.format;
    if items.is_empty() {
        return Err(Error::Conflict("no images to save".into()));
    }
    match format {
        SaveFormat::Docker | SaveFormat::Oci => {
            let ref_name = opts.oci_ref_name.filter(|_| format == SaveFormat::Oci);
            write_layout(
                store,
                items,
                index,
                ref_name,
                opts.delta,
                w,
                format == SaveFormat::Docker,
            )
        }
        SaveFormat::DockerLegacy if opts.delta.is_some() => Err(Error::Conflict(
            "a delta is written in the docker or oci format, not docker-legacy".into(),
        )),
        SaveFormat::DockerLegacy => match store {
            Blobs::Store(store) => write_legacy(store, items, w),
            Blobs::Source(_) => Err(Error::Conflict(
                "the docker-legacy format is written from the store only".into(),
            )),
        },
    }
}

fn write_layout<W: Write>(
    store: Blobs<'_>,
    items: &[SaveItem],
    top: Option<&TopIndex<'_>>,
    ref_name_as_given: Option<&str>,
    delta: Option<&DeltaPlan>,
    w: &mut TarOut<'_, W>,
    docker: bool,
) -> Result<()> {
    if let Some(d) = delta {
        // First, so a reader of the stream knows before the blobs what is absent.
        let bytes = d.manifest.to_bytes();
        if bytes.len() as u64 > MAX_DELTA_SIZE {
            return Err(Error::Conflict(format!(
                "the delta would leave out or patch {} layers, more than {DELTA_FILE} can \
                 describe ({MAX_DELTA_SIZE} bytes): save fewer images at once",
                d.manifest.omitted.len() + d.manifest.patches.len()
            )));
        }
        w.bytes(DELTA_FILE, 0o644, &bytes)?;
    }
    // Every blob once, sorted by digest.
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    for i in items {
        blobs.insert(
            i.image.manifest_digest.clone(),
            i.image.manifest_bytes.len() as u64,
        );
        blobs.insert(i.image.id().clone(), i.image.config_bytes.len() as u64);
        for l in &i.image.manifest.layers {
            blobs.insert(l.digest.clone(), l.size);
        }
    }
    if let Some(t) = top {
        blobs.insert(t.descriptor.digest.clone(), t.descriptor.size);
    }
    w.dir("blobs/")?;
    w.dir("blobs/sha256/")?;
    let mut in_memory: BTreeMap<&Digest, &[u8]> = items
        .iter()
        .flat_map(|i| {
            [
                (&i.image.manifest_digest, i.image.manifest_bytes.as_slice()),
                (i.image.id(), i.image.config_bytes.as_slice()),
            ]
        })
        .collect();
    if let Some(t) = top {
        in_memory.insert(&t.descriptor.digest, t.bytes);
    }
    for (d, size) in &blobs {
        if delta.is_some_and(|p| p.omits(d)) {
            continue;
        }
        let path = format!("blobs/sha256/{}", d.hex());
        match (store, in_memory.get(d)) {
            (Blobs::Store(store), _) => {
                let f = store.open_blob(d)?;
                w.file_from(
                    &path,
                    0o444,
                    *size,
                    f,
                    &store.blob_path(d).display().to_string(),
                )?;
            }
            (Blobs::Source(_), Some(bytes)) => w.bytes(&path, 0o444, bytes)?,
            (Blobs::Source(source), None) => {
                let r = source.open_blob(&Descriptor::new("", d.clone(), *size))?;
                w.file_from(&path, 0o444, *size, r, &format!("blob {d}"))?;
            }
        }
    }

    for p in delta.map(DeltaPlan::patch_files).unwrap_or_default() {
        let f = std::fs::File::open(&p.path).map_err(|source| Error::Io {
            path: p.path.clone(),
            source,
        })?;
        w.file_from(
            &format!("blobs/sha256/{}", p.digest.hex()),
            0o444,
            p.size,
            f,
            &format!("the patch {}", p.digest),
        )?;
    }

    let mut index = Index::new();
    let mut manifest_json: Vec<ManifestItem> = Vec::new();
    let mut repositories: Repositories = BTreeMap::new();
    // One entry per name (or one without a name), as docker 25 writes them.
    let entries = |index: &mut Index, desc: &Descriptor, names: &[Reference]| {
        if let Some(r) = ref_name_as_given {
            let mut d = desc.clone();
            d.annotations = Some(BTreeMap::from([(
                ANNOTATION_REF_NAME.to_string(),
                r.to_string(),
            )]));
            index.manifests.push(d);
            return;
        }
        for n in names {
            let mut d = desc.clone();
            let ref_name = if docker {
                n.tag().unwrap_or("latest").to_string()
            } else {
                n.to_string()
            };
            d.annotations = Some(BTreeMap::from([
                (ANNOTATION_CONTAINERD_NAME.to_string(), n.to_string()),
                (ANNOTATION_REF_NAME.to_string(), ref_name),
            ]));
            index.manifests.push(d);
        }
        if names.is_empty() {
            index.manifests.push(desc.clone());
        }
    };
    if let Some(t) = top {
        entries(&mut index, t.descriptor, t.names);
    }
    for i in items {
        if top.is_none() {
            let desc = Descriptor::new(
                &i.image.manifest_media_type,
                i.image.manifest_digest.clone(),
                i.image.manifest_bytes.len() as u64,
            );
            entries(&mut index, &desc, &i.names);
        }
        if docker {
            manifest_json.push(ManifestItem {
                config: format!("blobs/sha256/{}", i.image.id().hex()),
                repo_tags: if i.names.is_empty() {
                    None
                } else {
                    Some(i.names.iter().map(|n| n.familiar()).collect())
                },
                layers: i
                    .image
                    .manifest
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
                parent: None,
                layer_sources: None,
            });
            if let Some(top) = i.image.config.rootfs.diff_ids.last() {
                for n in &i.names {
                    repositories.entry(n.familiar_name()).or_default().insert(
                        n.tag().unwrap_or("latest").to_string(),
                        top.hex().to_string(),
                    );
                }
            }
        }
    }
    if let Some(d) = delta {
        let mut a = BTreeMap::from([
            (ANNOTATION_DELTA.to_string(), DELTA_FILE.to_string()),
            (
                ANNOTATION_DELTA_BASE.to_string(),
                d.manifest.base.join(", "),
            ),
        ]);
        if !d.manifest.patches.is_empty() {
            a.insert(
                ANNOTATION_DELTA_PATCHES.to_string(),
                format!(
                    "hoist-only: {} layers are zstd patches against base layers; load with hoist",
                    d.manifest.patches.len()
                ),
            );
        }
        index.annotations = Some(a);
    }
    w.bytes(
        "index.json",
        0o644,
        &serde_json::to_vec(&index).expect("index serializes"),
    )?;
    if docker {
        w.bytes(
            "manifest.json",
            0o644,
            &serde_json::to_vec(&manifest_json).expect("manifest.json serializes"),
        )?;
    }
    w.bytes(
        "oci-layout",
        0o444,
        media_type::OCI_LAYOUT_CONTENT.as_bytes(),
    )?;
    if docker && !repositories.is_empty() {
        w.bytes(
            "repositories",
            0o644,
            &serde_json::to_vec(&repositories).expect("repositories serializes"),
        )?;
    }
    Ok(())
}

fn write_legacy<W: Write>(store: &Store, items: &[SaveItem], w: &mut TarOut<'_, W>) -> Result<()> {
    // Entries are collected first so they can be written sorted by path.
    enum Body {
        Bytes(Vec<u8>),
        Layer(Box<Descriptor>),
        Link(String),
        Dir,
    }
    let mut entries: BTreeMap<String, Body> = BTreeMap::new();
    let mut manifest_json = Vec::new();
    let mut repositories: Repositories = BTreeMap::new();
    let mut layer_paths: BTreeMap<Digest, String> = BTreeMap::new();
    for i in items {
        let cfg_name = format!("{}.json", i.image.id().hex());
        entries.insert(cfg_name.clone(), Body::Bytes(i.image.config_bytes.clone()));
        let v1 = legacy::v1_layer_entries(&i.image.config_bytes)
            .map_err(|e| Error::InvalidArchive(format!("image {}: {e}", i.image.id())))?;
        if v1.len() != i.image.manifest.layers.len() {
            return Err(Error::InvalidArchive(format!(
                "image {}: {} layers but {} diff_ids",
                i.image.id(),
                i.image.manifest.layers.len(),
                v1.len()
            )));
        }
        let mut layers = Vec::new();
        for ((l, v), diff_id) in i
            .image
            .manifest
            .layers
            .iter()
            .zip(&v1)
            .zip(&i.image.config.rootfs.diff_ids)
        {
            let dir = format!("{}/", v.id);
            let path = format!("{}/layer.tar", v.id);
            entries.insert(dir, Body::Dir);
            entries.insert(format!("{}/VERSION", v.id), Body::Bytes(b"1.0".to_vec()));
            entries.insert(format!("{}/json", v.id), Body::Bytes(v.json.clone()));
            match layer_paths.get(diff_id) {
                Some(first) if first != &path => {
                    entries.insert(path.clone(), Body::Link(format!("../{first}")));
                }
                _ => {
                    layer_paths.insert(diff_id.clone(), path.clone());
                    entries.insert(path.clone(), Body::Layer(Box::new(l.clone())));
                }
            }
            layers.push(path);
        }
        manifest_json.push(ManifestItem {
            config: cfg_name,
            repo_tags: if i.names.is_empty() {
                None
            } else {
                Some(i.names.iter().map(|n| n.familiar()).collect())
            },
            layers,
            parent: None,
            layer_sources: None,
        });
        if let Some(top) = v1.last() {
            for n in &i.names {
                repositories
                    .entry(n.familiar_name())
                    .or_default()
                    .insert(n.tag().unwrap_or("latest").to_string(), top.id.clone());
            }
        }
    }
    entries.insert(
        "manifest.json".into(),
        Body::Bytes(serde_json::to_vec(&manifest_json).expect("manifest.json serializes")),
    );
    if !repositories.is_empty() {
        entries.insert(
            "repositories".into(),
            Body::Bytes(serde_json::to_vec(&repositories).expect("repositories serializes")),
        );
    }
    for (path, body) in entries {
        match body {
            Body::Dir => w.dir(&path)?,
            Body::Bytes(b) => w.bytes(&path, 0o644, &b)?,
            Body::Link(t) => w.symlink(&path, &t)?,
            Body::Layer(desc) => {
                let what = store.blob_path(&desc.digest).display().to_string();
                if Compression::of_layer_media_type(&desc.media_type) == Some(Compression::None) {
                    w.file_from(
                        &path,
                        0o644,
                        desc.size,
                        store.open_blob(&desc.digest)?,
                        &what,
                    )?;
                } else {
                    // Old engines want plain layer.tar files: decompress on the way out.
                    let (_, size) = store.layer_uncompressed(&desc)?;
                    w.file_from(&path, 0o644, size, store.open_layer(&desc)?, &what)?;
                }
            }
        }
    }
    Ok(())
}

/// The archive being written: hoist's tar writer plus progress reports. Entries are
/// deterministic (owner 0:0, mtime 0).
struct TarOut<'a, W: Write> {
    w: Writer<W>,
    progress: &'a dyn Fn(u64),
}

impl<'a, W: Write> TarOut<'a, W> {
    fn new(out: W, progress: &'a dyn Fn(u64)) -> Self {
        TarOut {
            w: Writer::new(out),
            progress,
        }
    }

    fn header(
        &mut self,
        path: &str,
        kind: EntryKind,
        mode: u32,
        size: u64,
        link: Option<&str>,
    ) -> Result<()> {
        let mut h = Header::new(path.as_bytes(), kind);
        h.mode = mode;
        h.size = size;
        h.link = link.unwrap_or_default().as_bytes();
        self.w.header(&h).map_err(write_err)
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        self.header(
            path.trim_end_matches('/'),
            EntryKind::Directory,
            0o755,
            0,
            None,
        )
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.header(path, EntryKind::Symlink, 0o777, 0, Some(target))
    }

    fn bytes(&mut self, path: &str, mode: u32, b: &[u8]) -> Result<()> {
        self.header(path, EntryKind::Regular, mode, b.len() as u64, None)?;
        self.w.write_data(b).map_err(write_err)?;
        self.w.pad(b.len() as u64).map_err(write_err)?;
        (self.progress)(self.w.bytes());
        Ok(())
    }

    fn file_from(
        &mut self,
        path: &str,
        mode: u32,
        size: u64,
        src: impl Read,
        what: &str,
    ) -> Result<()> {
        self.header(path, EntryKind::Regular, mode, size, None)?;
        // io::copy uses copy_file_range/sendfile/splice when both ends are files or pipes.
        let n = self.w.copy_data(src, size).map_err(|e| Error::Write {
            what: format!("the archive (copying {what})"),
            source: e,
        })?;
        if n != size {
            return Err(Error::Store {
                root: what.into(),
                reason: format!(
                    "{what} has {n} bytes, expected {size}: the store is damaged (run hoist fsck)"
                ),
            });
        }
        (self.progress)(self.w.bytes());
        Ok(())
    }

    fn finish(self) -> Result<W> {
        let (out, _) = self.w.finish().map_err(write_err)?;
        Ok(out)
    }
}
