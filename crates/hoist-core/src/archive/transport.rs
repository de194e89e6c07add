//! Images read straight from archives and layouts, and written straight into layouts, for
//! `hoist copy`: nothing goes through the store unless the store is one side of the copy.
//!
//! A source is an [`Image`] (manifest and config in memory, as received) plus a
//! [`BlobSource`] that opens its blobs as streams. Archive files are indexed once (tar headers
//! only) and their blobs read in place with `pread`; a docker archive without `index.json` is
//! read once more to learn its layers' digests, since `manifest.json` names files, not digests.
//! Every blob from an archive or layout is checked against its digest as it streams.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hoist_format::Digest;
use hoist_format::config::ImageConfig;
use hoist_format::docker::{self, ManifestItem};
use hoist_format::media_type::{self, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use hoist_format::oci::{Descriptor, Index, Manifest, OciLayout};
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

use super::collect::Collected;
use crate::compress::{Compression, Peeked};
use crate::error::{Error, IoContext, Result};
use crate::hashio::{HashingReader, VerifyingReader};
use crate::store::{Image, Store};

/// Index levels followed from `index.json` to an image manifest (real layouts have one or two).
const MAX_INDEX_DEPTH: usize = 4;

/// Where the blobs of an image come from.
pub trait BlobSource: Sync {
    /// Opens the blob `desc` names. Readers of untrusted sources fail (with
    /// [`io::ErrorKind::InvalidData`]) at their end when the bytes are not the blob's.
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>>;
}

impl BlobSource for Store {
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        // The store's blobs were checked when they came in (and by fsck).
        Ok(Box::new(Store::open_blob(self, &desc.digest)?))
    }
}

/// A multi-platform index as found at the source.
#[derive(Debug, Clone)]
pub struct IndexCopy {
    /// Its descriptor at the source (media type, digest, size).
    pub descriptor: Descriptor,
    /// Its bytes as found.
    pub bytes: Vec<u8>,
    /// Parsed.
    pub parsed: Index,
}

/// What a copy moves: one image, or a multi-platform index with the images of its platforms
/// (`--all`).
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The index, when the images are its platforms.
    pub index: Option<IndexCopy>,
    /// The images, in index order (attestations and other non-images left out).
    pub images: Vec<Image>,
}

impl ImageSet {
    /// One image.
    pub fn single(image: Image) -> ImageSet {
        ImageSet {
            index: None,
            images: vec![image],
        }
    }

    /// Every image's manifest as found, as [`ImageSet::index_as_written`] takes them when the
    /// images are written unchanged (layouts, archives, the store).
    pub fn as_found(&self) -> Vec<(Digest, Descriptor)> {
        self.images
            .iter()
            .map(|i| {
                (
                    i.manifest_digest.clone(),
                    Descriptor::new(
                        &i.manifest_media_type,
                        i.manifest_digest.clone(),
                        i.manifest_bytes.len() as u64,
                    ),
                )
            })
            .collect()
    }

    /// The digest of what a layout, archive or the store gets at the top: the index (as
    /// [`ImageSet::index_as_written`] gives it for images written unchanged) or the image's
    /// manifest.
    pub fn top_digest(&self) -> Result<Digest> {
        Ok(match self.index_as_written(&self.as_found())? {
            Some((bytes, _)) => Digest::of(&bytes),
            None => self.first().manifest_digest.clone(),
        })
    }

    /// The image a single-image destination takes: the first (the host's platform when the
    /// source chose one).
    pub fn first(&self) -> &Image {
        &self.images[0]
    }

    /// The index to write once every image was written as `written` (each image's manifest
    /// digest as found, with its descriptor as written): the bytes as found when nothing
    /// changed; else the index rewritten with the written descriptors, in the same order,
    /// without the entries not copied. `None` for a single image.
    pub fn index_as_written(
        &self,
        written: &[(Digest, Descriptor)],
    ) -> Result<Option<(Vec<u8>, String)>> {
        let Some(index) = &self.index else {
            return Ok(None);
        };
        let mut changed = false;
        let mut entries = Vec::new();
        for d in &index.parsed.manifests {
            match written.iter().find(|(found, _)| found == &d.digest) {
                Some((_, w)) => {
                    if w.digest != d.digest || w.media_type != d.media_type {
                        changed = true;
                    }
                    entries.push(Descriptor {
                        media_type: w.media_type.clone(),
                        digest: w.digest.clone(),
                        size: w.size,
                        ..d.clone()
                    });
                }
                None => changed = true,
            }
        }
        if !changed {
            let mt = index
                .parsed
                .media_type
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| index.descriptor.media_type.clone());
            return Ok(Some((index.bytes.clone(), mt)));
        }
        let mut new = index.parsed.clone();
        new.manifests = entries;
        // A docker manifest list cannot list OCI manifests.
        if new.media_type.as_deref() == Some(media_type::DOCKER_MANIFEST_LIST)
            && new
                .manifests
                .iter()
                .any(|m| m.media_type == media_type::OCI_MANIFEST)
        {
            new.media_type = Some(media_type::OCI_INDEX.to_string());
        }
        let mt = new
            .media_type
            .clone()
            .unwrap_or_else(|| media_type::OCI_INDEX.to_string());
        let bytes = serde_json::to_vec(&new).map_err(|e| {
            Error::InvalidArchive(format!(
                "index {}: cannot be written: {e}",
                index.descriptor.digest
            ))
        })?;
        Ok(Some((bytes, mt)))
    }

    /// The image of the store and, for a name pulled with `--all-platforms`, every platform
    /// the store holds with the index.
    pub fn from_store(store: &Store, image: &Image) -> Result<ImageSet> {
        let Some(desc) = &image.index else {
            return Ok(ImageSet::single(image.clone()));
        };
        let bytes = store.read_json_blob(&desc.digest)?;
        let parsed = Index::parse(&bytes).map_err(|source| Error::OciJson {
            what: format!("index {}", desc.digest),
            source,
        })?;
        let mut images = Vec::new();
        for d in &parsed.manifests {
            if media_type::is_index(&d.media_type) {
                return Err(Error::InvalidArchive(format!(
                    "index {}: nested indexes are not copied whole",
                    desc.digest
                )));
            }
            if store.has_blob(&d.digest) && !d.is_attestation() {
                images.push(store.image(&Descriptor::new(
                    &d.media_type,
                    d.digest.clone(),
                    d.size,
                ))?);
            }
        }
        if images.is_empty() {
            return Err(Error::InvalidArchive(format!(
                "index {}: the store holds none of its images",
                desc.digest
            )));
        }
        Ok(ImageSet {
            index: Some(IndexCopy {
                descriptor: desc.clone(),
                bytes,
                parsed,
            }),
            images,
        })
    }
}

/// One image of an archive file (`docker-archive:`, `oci-archive:`) or an OCI layout
/// directory (`oci:`), ready to be copied.
#[derive(Debug)]
pub struct ArchiveSource {
    collected: Collected,
    /// The archive path of each blob.
    blobs: HashMap<Digest, String>,
    /// The image (manifest and config as found, or as synthesized for a docker archive), or
    /// with `all` an index and its platforms.
    pub set: ImageSet,
    /// Its names in the archive.
    pub names: Vec<Reference>,
    /// The archive or directory, for messages.
    what: String,
}

impl ArchiveSource {
    /// An image of an uncompressed archive file: docker (any `manifest.json` archive, or
    /// docker 25+ with `index.json`) or OCI. `reference` picks one image when it has several
    /// (a name of `RepoTags`, or an `org.opencontainers.image.ref.name`); `platform` picks from
    /// an index (default: the host's).
    pub fn open_archive(
        path: &Path,
        reference: Option<&str>,
        platform: Option<&Platform>,
        all: bool,
    ) -> Result<ArchiveSource> {
        let file = File::open(path).at(path)?;
        let mut head = [0u8; 6];
        let n = {
            use std::os::unix::fs::FileExt;
            file.read_at(&mut head, 0).at(path)?
        };
        let outer = Compression::sniff(&head[..n]);
        if outer != Compression::None {
            return Err(Error::InvalidArchive(format!(
                "{}: the archive is {outer:?}-compressed; copying reads archives in place, so \
                 decompress it first (or `hoist load` it)",
                path.display()
            )));
        }
        let collected = Collected::index_tar_file(&file)?;
        let what = path.display().to_string();
        Self::from_collected(collected, &what, reference, platform, all, false, false)
    }

    /// An image of an open, uncompressed archive file to look inside, not to copy (`what`
    /// names it in messages; with `docker`, a `manifest.json` is read before an `index.json`,
    /// as a `docker-archive:` name asks): a docker
    /// 1.x (v1) archive is read too, its config synthesized as `load` synthesizes it (its
    /// layers are read once to learn their diff_ids). That config is no file of the archive,
    /// so such a source cannot serve it as a blob.
    pub fn open_archive_file_to_read(
        file: &File,
        what: &str,
        reference: Option<&str>,
        platform: Option<&Platform>,
        docker: bool,
    ) -> Result<ArchiveSource> {
        let collected = Collected::index_tar_file(file)?;
        Self::from_collected(collected, what, reference, platform, false, docker, true)
    }

    /// An image of an OCI layout directory (with `all`, a whole multi-platform index).
    pub fn open_layout(
        dir: &Path,
        reference: Option<&str>,
        platform: Option<&Platform>,
        all: bool,
    ) -> Result<ArchiveSource> {
        if !dir.join("index.json").is_file() {
            return Err(Error::InvalidArchive(format!(
                "{}: not an OCI layout (no index.json)",
                dir.display()
            )));
        }
        let collected = Collected::from_dir(dir)?;
        Self::from_collected(
            collected,
            &dir.display().to_string(),
            reference,
            platform,
            all,
            false,
            false,
        )
    }

    /// With `docker`, a `manifest.json` is read before an `index.json`. With `to_read` (a look
    /// inside, [`Self::open_archive_file_to_read`]), a docker 1.x (v1) archive is read, and a
    /// `manifest.json` layer's digest is taken from what the archive says (the config's
    /// diff_id for an uncompressed layer, a `blobs/sha256/` name) instead of hashing it: a
    /// look reads only what it shows (`hoist verify` checks every digest).
    fn from_collected(
        collected: Collected,
        what: &str,
        reference: Option<&str>,
        platform: Option<&Platform>,
        all: bool,
        docker: bool,
        to_read: bool,
    ) -> Result<ArchiveSource> {
        if collected.exists(hoist_format::delta::DELTA_FILE) {
            return Err(Error::InvalidArchive(format!(
                "{what} is a delta archive (hoist save --base): it lacks layers its base has, so it \
                 is read by `hoist load`, which takes them from the store"
            )));
        }
        let mut reader = Reader {
            collected: &collected,
            what,
            blobs: HashMap::new(),
            trust_names: to_read,
        };
        let has_index = collected.exists("index.json");
        // An index.json that lists nothing (docker 25 saving an untagged image writes
        // `"manifests": null`) leaves manifest.json as the way in, as for `load`, whatever
        // the transport's name.
        let index_lists_nothing = has_index
            && Index::parse(&collected.bytes("index.json")?).is_ok_and(|i| i.manifests.is_empty());
        let docker_first = (docker || index_lists_nothing) && collected.exists("manifest.json");
        let (set, names) = if has_index && !docker_first {
            reader.read_oci(reference, platform, all)?
        } else if collected.exists("manifest.json") {
            let (image, names) = reader.read_docker(reference, platform)?;
            (ImageSet::single(image), names)
        } else if collected.exists("repositories") && to_read {
            let (image, names) = reader.read_legacy(reference, platform)?;
            (ImageSet::single(image), names)
        } else if collected.exists("repositories") {
            return Err(Error::InvalidArchive(format!(
                "{what}: a docker 1.x (v1) archive has no manifests to copy; `hoist load` it \
                 and copy from the store"
            )));
        } else {
            return Err(Error::InvalidArchive(format!(
                "{what}: neither an OCI layout (index.json) nor a docker archive (manifest.json)"
            )));
        };
        let blobs = reader.blobs;
        Ok(ArchiveSource {
            collected,
            blobs,
            set,
            names,
            what: what.to_string(),
        })
    }

    fn bad(&self, reason: impl std::fmt::Display) -> Error {
        Error::InvalidArchive(format!("{}: {reason}", self.what))
    }

    /// A blob of the image as a seekable reader (read in place; not verified: `copy` and
    /// `hoist verify` hash what they read, a look inside reads only parts).
    pub fn blob_file(&self, digest: &Digest) -> Result<crate::blobfile::BlobFile> {
        let path = self
            .blobs
            .get(digest)
            .ok_or_else(|| self.bad(format!("no blob {digest}")))?;
        self.collected.open_blob_file(path)
    }

    /// The archive or directory, as messages name it.
    pub fn what(&self) -> &str {
        &self.what
    }
}

/// Reads the image out of an indexed archive, noting where its blobs are.
struct Reader<'a> {
    collected: &'a Collected,
    what: &'a str,
    blobs: HashMap<Digest, String>,
    /// A look inside: a docker layer's digest is what the archive says, not hashed.
    trust_names: bool,
}

impl Reader<'_> {
    fn bad(&self, reason: impl std::fmt::Display) -> Error {
        Error::InvalidArchive(format!("{}: {reason}", self.what))
    }

    /// The full name (`docker.io/library/NAME:TAG`) a docker archive's image is asked by.
    fn wanted_name(&self, reference: Option<&str>) -> Result<Option<String>> {
        reference
            .map(|r| {
                Reference::parse_normalized(r)
                    .map(|p| p.with_default_tag().to_string())
                    .map_err(|e| self.bad(format!("invalid image name {r:?}: {e}")))
            })
            .transpose()
    }

    /// A small blob of an OCI layout, checked against its descriptor.
    fn oci_json(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let path = blob_path(&desc.digest);
        let bytes = self.collected.bytes(&path)?;
        let found = Digest::of(&bytes);
        if found != desc.digest || bytes.len() as u64 != desc.size {
            return Err(self.bad(format!(
                "{path}: expected {} ({} bytes), found {found} ({} bytes)",
                desc.digest,
                desc.size,
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    fn read_oci(
        &mut self,
        reference: Option<&str>,
        platform: Option<&Platform>,
        all: bool,
    ) -> Result<(ImageSet, Vec<Reference>)> {
        let layout = self.collected.bytes("oci-layout").ok();
        if let Some(l) = layout {
            let l = OciLayout::parse(&l).map_err(|e| self.bad(format!("oci-layout: {e}")))?;
            if !l.image_layout_version.starts_with("1.") {
                return Err(self.bad(format!(
                    "oci-layout: unsupported version {}",
                    l.image_layout_version
                )));
            }
        }
        let index = Index::parse(&self.collected.bytes("index.json")?)
            .map_err(|e| self.bad(format!("index.json: {e}")))?;
        let wanted = reference.map(|r| (r, Reference::parse_normalized(r).ok()));
        let names_of = |d: &Descriptor| -> Vec<String> {
            [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME]
                .iter()
                .filter_map(|a| d.annotation(a).map(str::to_string))
                .collect()
        };
        let candidates: Vec<&Descriptor> = match &wanted {
            Some((text, parsed)) => index
                .manifests
                .iter()
                .filter(|d| {
                    d.annotation(ANNOTATION_REF_NAME) == Some(*text)
                        || parsed.as_ref().is_some_and(|p| {
                            let full = p.clone().with_default_tag().to_string();
                            names_of(d).iter().any(|n| {
                                Reference::parse_normalized(n)
                                    .is_ok_and(|r| r.with_default_tag().to_string() == full)
                            })
                        })
                })
                .collect(),
            None => index.manifests.iter().collect(),
        };
        let top = match candidates.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(self.bad(match &wanted {
                    Some((r, _)) => format!("no image named {r:?} in index.json"),
                    None => "index.json lists no image".to_string(),
                }));
            }
            many => {
                // Several entries may name one image (docker 25 writes one per tag).
                let first = &many[0].digest;
                if many.iter().all(|d| &d.digest == first) {
                    many[0].clone()
                } else {
                    // Every image is listed: by its names, or an untagged one by its digest.
                    let mut digests: Vec<&Digest> = many.iter().map(|d| &d.digest).collect();
                    digests.sort();
                    digests.dedup();
                    let mut names: Vec<String> = Vec::new();
                    for digest in &digests {
                        let of: Vec<String> = many
                            .iter()
                            .filter(|d| &d.digest == *digest)
                            .flat_map(|d| names_of(d))
                            .collect();
                        if of.is_empty() {
                            names.push(format!("untagged manifest {digest}"));
                        }
                        names.extend(of);
                    }
                    names.sort();
                    names.dedup();
                    return Err(self.bad(format!(
                        "it has {} images: name one ({})",
                        digests.len(),
                        names.join(", ")
                    )));
                }
            }
        };
        let set = if all && media_type::is_index(&top.media_type) {
            let bytes = self.oci_json(&top)?;
            let parsed =
                Index::parse(&bytes).map_err(|e| self.bad(format!("index {}: {e}", top.digest)))?;
            let mut images = Vec::new();
            for d in parsed.manifests.iter().filter(|d| !d.is_attestation()) {
                if media_type::is_index(&d.media_type) {
                    return Err(self.bad(format!(
                        "index {}: nested indexes are not copied whole",
                        top.digest
                    )));
                }
                images.push(self.image_at(d, None)?);
            }
            if images.is_empty() {
                return Err(self.bad(format!("index {} lists no image", top.digest)));
            }
            let mut descriptor = top.clone();
            descriptor.annotations = None;
            ImageSet {
                index: Some(IndexCopy {
                    descriptor,
                    bytes,
                    parsed,
                }),
                images,
            }
        } else {
            let mut desc = top.clone();
            let mut depth = 0;
            while media_type::is_index(&desc.media_type) {
                depth += 1;
                if depth > MAX_INDEX_DEPTH {
                    return Err(self.bad("indexes nested too deeply"));
                }
                let nested = Index::parse(&self.oci_json(&desc)?)
                    .map_err(|e| self.bad(format!("index {}: {e}", desc.digest)))?;
                let refs: Vec<&Descriptor> = nested.manifests.iter().collect();
                desc = super::load::choose_platform(
                    &refs,
                    platform,
                    &format!("{}: index {}", self.what, desc.digest),
                )?
                .clone();
            }
            ImageSet::single(self.image_at(&desc, platform)?)
        };
        let mut names: Vec<Reference> = Vec::new();
        for d in index.manifests.iter().filter(|d| d.digest == top.digest) {
            // A bare ref.name ("latest", as skopeo and buildah write) names no image: load's
            // rule.
            if let Some(n) = d
                .annotation(ANNOTATION_CONTAINERD_NAME)
                .or_else(|| {
                    d.annotation(ANNOTATION_REF_NAME)
                        .filter(|r| r.contains('/') || r.contains(':'))
                })
                .and_then(|n| Reference::parse_normalized(n).ok())
            {
                names.push(n.with_default_tag());
            }
        }
        names.sort_by_key(|n| n.to_string());
        names.dedup_by_key(|n| n.to_string());
        Ok((set, names))
    }

    /// The image manifest `desc` names, its config, and where its blobs are.
    fn image_at(&mut self, desc: &Descriptor, platform: Option<&Platform>) -> Result<Image> {
        let manifest_bytes = self.oci_json(desc)?;
        let manifest = Manifest::parse(&manifest_bytes)
            .map_err(|e| self.bad(format!("manifest {}: {e}", desc.digest)))?;
        let config_bytes = self.oci_json(&manifest.config)?;
        let config = ImageConfig::parse(&config_bytes)
            .map_err(|e| self.bad(format!("config {}: {e}", manifest.config.digest)))?;
        if let Some(p) = platform
            && !p.matches(&config.platform())
        {
            return Err(self.bad(format!("the image is {}, not {p}", config.platform())));
        }
        for l in &manifest.layers {
            let path = blob_path(&l.digest);
            let size = self.collected.size(&path)?;
            if size != l.size {
                return Err(self.bad(format!(
                    "{path}: {size} bytes, the manifest says {}",
                    l.size
                )));
            }
            self.blobs.insert(l.digest.clone(), path);
        }
        self.blobs.insert(
            manifest.config.digest.clone(),
            blob_path(&manifest.config.digest),
        );
        Ok(Image {
            index: None,
            manifest_digest: desc.digest.clone(),
            manifest_media_type: manifest
                .media_type
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| desc.media_type.clone()),
            manifest_bytes,
            manifest,
            config_bytes,
            config,
        })
    }

    fn read_docker(
        &mut self,
        reference: Option<&str>,
        platform: Option<&Platform>,
    ) -> Result<(Image, Vec<Reference>)> {
        let items = docker::parse_manifest(&self.collected.bytes("manifest.json")?)
            .map_err(|e| self.bad(e))?;
        let wanted = self.wanted_name(reference)?;
        let tags_of = |i: &ManifestItem| -> Vec<Reference> {
            i.repo_tags
                .iter()
                .flatten()
                .filter_map(|t| Reference::parse_normalized(t).ok())
                .map(Reference::with_default_tag)
                .collect()
        };
        let chosen: Vec<&ManifestItem> = items
            .iter()
            .filter(|i| {
                wanted
                    .as_ref()
                    .is_none_or(|w| tags_of(i).iter().any(|t| &t.to_string() == w))
            })
            .collect();
        let item = match chosen.as_slice() {
            [one] => *one,
            [] => {
                return Err(self.bad(match reference {
                    Some(r) => format!("no image tagged {r:?} in manifest.json"),
                    None => "manifest.json lists no image".into(),
                }));
            }
            many => {
                // Every image is listed: by its tags, or an untagged one by its ID.
                let mut names: Vec<String> = Vec::new();
                for i in many {
                    let tags = tags_of(i);
                    if tags.is_empty() {
                        let id = Digest::of(&self.collected.bytes(&i.config)?);
                        names.push(format!("untagged image {id}"));
                    }
                    names.extend(tags.iter().map(Reference::familiar));
                }
                names.sort();
                return Err(self.bad(format!(
                    "it has {} images: name one ({})",
                    many.len(),
                    names.join(", ")
                )));
            }
        };
        let config_bytes = self.collected.bytes(&item.config)?;
        let config = ImageConfig::parse(&config_bytes)
            .map_err(|e| self.bad(format!("{}: {e}", item.config)))?;
        if let Some(p) = platform
            && !p.matches(&config.platform())
        {
            return Err(self.bad(format!("the image is {}, not {p}", config.platform())));
        }
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != item.layers.len() {
            return Err(self.bad(format!(
                "{} layers but its config lists {} diff_ids",
                item.layers.len(),
                diff_ids.len()
            )));
        }
        // manifest.json names files: their digests are learned by reading them once.
        let mut layers = Vec::new();
        for (i, (path, diff_id)) in item.layers.iter().zip(diff_ids).enumerate() {
            let claimed = if self.trust_names {
                self.claimed_layer(path, diff_id)?
            } else {
                None
            };
            let (compression, digest, size, found) = match claimed {
                Some(c) => c,
                None => self.describe_layer(path)?,
            };
            if &found != diff_id {
                return Err(self.bad(format!(
                    "layer {i} ({path}): invalid diffID: the config says {diff_id}, the layer is \
                     {found}"
                )));
            }
            self.blobs.insert(digest.clone(), path.clone());
            layers.push((compression, digest, size));
        }
        let manifest_bytes = super::load::synthesize_manifest(&config_bytes, &config, &layers)?;
        let manifest = Manifest::parse(&manifest_bytes).expect("a synthesized manifest parses");
        self.blobs
            .insert(manifest.config.digest.clone(), item.config.clone());
        let names = tags_of(item);
        let image = Image {
            index: None,
            manifest_digest: Digest::of(&manifest_bytes),
            manifest_media_type: media_type::OCI_MANIFEST.to_string(),
            manifest_bytes,
            manifest,
            config_bytes,
            config,
        };
        Ok((image, names))
    }

    /// The image of a docker 1.x (v1) archive `reference` names (the only one when `None`),
    /// with a config and manifest synthesized as `load` makes them.
    fn read_legacy(
        &mut self,
        reference: Option<&str>,
        platform: Option<&Platform>,
    ) -> Result<(Image, Vec<Reference>)> {
        let wanted = self.wanted_name(reference)?;
        let tags_of = |names: &[String]| -> Vec<Reference> {
            names
                .iter()
                .filter_map(|t| Reference::parse_normalized(t).ok())
                .map(Reference::with_default_tag)
                .collect()
        };
        let mut chosen: Vec<(String, Vec<String>)> = super::load::legacy_tops(self.collected)?
            .into_iter()
            .filter(|(_, names)| {
                wanted
                    .as_ref()
                    .is_none_or(|w| tags_of(names).iter().any(|t| &t.to_string() == w))
            })
            .collect();
        if chosen.len() > 1 {
            let mut names: Vec<String> = chosen
                .iter()
                .flat_map(|(_, n)| tags_of(n))
                .map(|t| t.familiar())
                .collect();
            names.sort();
            return Err(self.bad(format!(
                "it has {} images: name one ({})",
                chosen.len(),
                names.join(", ")
            )));
        }
        let Some((top, names)) = chosen.pop() else {
            return Err(self.bad(match reference {
                Some(r) => format!("no image tagged {r:?} in repositories"),
                None => "repositories lists no image".into(),
            }));
        };
        let img = super::load::legacy_image(self.collected, top, names, |_, path| {
            let (compression, digest, size, diff_id) = self.describe_layer(path)?;
            Ok(((compression, digest, size), diff_id))
        })?;
        if let Some(p) = platform
            && !p.matches(&img.config.platform())
        {
            return Err(self.bad(format!("the image is {}, not {p}", img.config.platform())));
        }
        let mut layers = Vec::new();
        for (path, (compression, digest, size)) in img.layers {
            self.blobs.insert(digest.clone(), path);
            layers.push((compression, digest, size));
        }
        let manifest_bytes =
            super::load::synthesize_manifest(&img.config_bytes, &img.config, &layers)?;
        let manifest = Manifest::parse(&manifest_bytes).expect("a synthesized manifest parses");
        let names = tags_of(&img.names);
        let image = Image {
            index: None,
            manifest_digest: Digest::of(&manifest_bytes),
            manifest_media_type: media_type::OCI_MANIFEST.to_string(),
            manifest_bytes,
            manifest,
            config_bytes: img.config_bytes,
            config: img.config,
        };
        Ok((image, names))
    }

    /// Reads a layer file once: its compression, digest, size and diff_id.
    /// What a `manifest.json` layer is by the archive's own word, without reading it: an
    /// uncompressed layer is its diff_id; a compressed one named `blobs/sha256/<hex>` is that
    /// digest. `None` when only hashing tells (a compressed `layer.tar`).
    fn claimed_layer(
        &self,
        path: &str,
        diff_id: &Digest,
    ) -> Result<Option<(Compression, Digest, u64, Digest)>> {
        let (resolved, _) = self.collected.resolve(path)?;
        let size = self.collected.size(&resolved)?;
        let mut head = [0u8; 6];
        let n = crate::compress::read_full(&mut self.collected.open(&resolved)?, &mut head)
            .map_err(|e| self.bad(format!("{path}: {e}")))?;
        let compression = Compression::sniff(&head[..n]);
        if compression == Compression::None {
            return Ok(Some((compression, diff_id.clone(), size, diff_id.clone())));
        }
        let named = resolved
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_hex(h).ok());
        Ok(named.map(|d| (compression, d, size, diff_id.clone())))
    }

    fn describe_layer(&self, path: &str) -> Result<(Compression, Digest, u64, Digest)> {
        let unreadable = |e: io::Error| self.bad(format!("{path}: {e}"));
        let mut raw = HashingReader::new(self.collected.open(path)?);
        let (compression, diff_id) = {
            let peeked = Peeked::new(&mut raw).map_err(unreadable)?;
            let compression = peeked.compression();
            if matches!(compression, Compression::Bzip2 | Compression::Xz) {
                return Err(self.bad(format!(
                    "{path} is {compression:?}-compressed, which registries and OCI do not \
                     carry; `hoist load` the archive and copy from the store"
                )));
            }
            let mut decoded = HashingReader::new(
                crate::compress::decoder(compression, peeked).map_err(unreadable)?,
            );
            crate::compress::drain(&mut decoded).map_err(unreadable)?;
            (compression, decoded.finish().0)
        };
        // A decoder may stop before padding after the compressed stream: hash that too.
        crate::compress::drain(&mut raw).map_err(unreadable)?;
        let (digest, size, _) = raw.finish();
        Ok((compression, digest, size, diff_id))
    }
}

impl BlobSource for ArchiveSource {
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let path = self
            .blobs
            .get(&desc.digest)
            .ok_or_else(|| self.bad(format!("no blob {}", desc.digest)))?;
        let what = format!("{}: {path}", self.what);
        Ok(Box::new(VerifyingReader::new(
            self.collected.open(path)?,
            desc.digest.clone(),
            desc.size,
            what,
        )))
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Writes an image set into an OCI layout directory (created if needed, shared with what is
/// there): each blob it lacks is written to a temporary name, checked and renamed; then (for
/// an index) the index blob; then `index.json` gets the index (or the image) under
/// `ref_name`, replacing an entry of that name, atomically. A `ref_name` outside image-spec's
/// ref grammar is refused before anything is written.
pub fn write_layout_set(
    dir: &Path,
    source: &dyn BlobSource,
    set: &ImageSet,
    ref_name: Option<&str>,
) -> Result<()> {
    if let Some(r) = ref_name {
        hoist_format::oci::check_ref_name(r)?;
    }
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).at(&blobs)?;
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        write_file(&layout, media_type::OCI_LAYOUT_CONTENT.as_bytes())?;
    }
    for image in &set.images {
        write_image_blobs(&blobs, source, image)?;
    }
    let mut written = set.as_found();
    let top = match set.index_as_written(&written)? {
        Some((bytes, mt)) => {
            let digest = Digest::of(&bytes);
            let path = blobs.join(digest.hex());
            if !path.exists() {
                write_file(&path, &bytes)?;
            }
            Descriptor::new(&mt, digest, bytes.len() as u64)
        }
        None => written.remove(0).1,
    };
    add_to_index(dir, top, ref_name)
}

/// An image's layers, config and manifest into `blobs` (those it lacks).
fn write_image_blobs(blobs: &Path, source: &dyn BlobSource, image: &Image) -> Result<()> {
    let mut all: Vec<&Descriptor> = image.manifest.layers.iter().collect();
    all.push(&image.manifest.config);
    for d in all {
        let dest = blobs.join(d.digest.hex());
        if dest.exists() {
            continue;
        }
        let tmp = blobs.join(format!(".{}.{}.tmp", d.digest.hex(), std::process::id()));
        let copy = || -> Result<()> {
            let mut r = source.open_blob(d)?;
            let mut w = HashingWriterFile::create(&tmp)?;
            io::copy(&mut r, &mut w.inner).map_err(|source| Error::Read {
                what: format!("blob {}", d.digest),
                source,
            })?;
            w.finish(&d.digest, d.size)?;
            fs::rename(&tmp, &dest).at(&dest)
        };
        if let Err(e) = copy() {
            // The temp file is garbage now; failing to remove it changes nothing.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    }
    let manifest_path = blobs.join(image.manifest_digest.hex());
    if !manifest_path.exists() {
        write_file(&manifest_path, &image.manifest_bytes)?;
    }
    Ok(())
}

/// Adds `desc` to a layout's `index.json` under `ref_name` (replacing what had that name), or
/// untagged; the file is replaced atomically.
fn add_to_index(dir: &Path, mut desc: Descriptor, ref_name: Option<&str>) -> Result<()> {
    let index_path = dir.join("index.json");
    let mut index: Index = match fs::read(&index_path) {
        Ok(b) => Index::parse(&b)
            .map_err(|e| Error::InvalidArchive(format!("{}: {e}", index_path.display())))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Index::new(),
        Err(e) => {
            return Err(Error::Io {
                path: index_path,
                source: e,
            });
        }
    };
    match ref_name {
        Some(r) => {
            index
                .manifests
                .retain(|d| d.annotation(ANNOTATION_REF_NAME) != Some(r));
            desc.annotations = Some(std::collections::BTreeMap::from([(
                ANNOTATION_REF_NAME.to_string(),
                r.to_string(),
            )]));
            index.manifests.push(desc);
        }
        None => {
            if !index
                .manifests
                .iter()
                .any(|d| d.digest == desc.digest && d.annotations.is_none())
            {
                index.manifests.push(desc);
            }
        }
    }
    let bytes = serde_json::to_vec(&index).expect("an index serializes");
    write_file(&index_path, &bytes)
}

/// A temp file being written with its sha256 computed on the way.
struct HashingWriterFile {
    inner: crate::hashio::HashingWriter<File>,
    path: PathBuf,
}

impl HashingWriterFile {
    fn create(path: &Path) -> Result<Self> {
        Ok(HashingWriterFile {
            inner: crate::hashio::HashingWriter::new(File::create(path).at(path)?),
            path: path.to_path_buf(),
        })
    }

    /// Checks what was written and syncs it.
    fn finish(self, digest: &Digest, size: u64) -> Result<()> {
        let (found, n, f) = self.inner.finish();
        if &found != digest || n != size {
            return Err(Error::InvalidArchive(format!(
                "blob {digest}: expected {size} bytes, got {n} bytes with digest {found}"
            )));
        }
        f.sync_all().at(&self.path)
    }
}

/// Writes a whole file by temp file and rename.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (tmp, mut f) = crate::store::tempfile_in(dir)?;
    let r = io::Write::write_all(&mut f, bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = r {
        // The temp file is garbage now; failing to remove it changes nothing.
        let _ = fs::remove_file(&tmp);
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        });
    }
    Ok(())
}

/// Copies an image set into the store under `name` (or untagged): every blob the store lacks
/// is staged and checked (layers against the config's diff_ids too), then all are committed
/// and the name set at once, as `load` does. With an index, every platform's image and the
/// index are committed together and the name points at the index (as `pull
/// --all-platforms` does).
pub fn ingest_set(
    store: &Store,
    source: &dyn BlobSource,
    set: &ImageSet,
    name: Option<&Reference>,
) -> Result<crate::store::NewImage> {
    let _ingest = store.ingest_lock()?;
    let mut staging = store.staging()?;
    let mut staged = stage_layers(store, &staging, source, set)?;
    if set.index.is_none() {
        let image = set.first();
        let refs: Vec<&crate::store::Staged> = staged.iter().collect();
        return staging.commit_image_as(
            &refs,
            &image.manifest_bytes,
            &image.manifest_media_type,
            &image.config_bytes,
            name,
        );
    }
    for image in &set.images {
        staged.push(staging.stage_bytes(&image.manifest_bytes)?);
        staged.push(staging.stage_bytes(&image.config_bytes)?);
    }
    let written = set.as_found();
    let (bytes, mt) = set
        .index_as_written(&written)?
        .expect("a set with an index gives one");
    let index = staging.stage_bytes(&bytes)?;
    let desc = Descriptor::new(&mt, index.digest.clone(), index.size);
    staged.push(index);
    staging.commit(&staged)?;
    let covered: Vec<Digest> = written.into_iter().map(|(d, _)| d).collect();
    let moved_from = store.update_index(|entries| {
        let ids = store.ids_of(entries)?;
        let moved = match name {
            Some(n) => Store::tag_entries(entries, n, &desc, &ids),
            None => {
                Store::keep_untagged(entries, &desc);
                None
            }
        };
        Store::drop_covered_untagged(entries, &covered);
        Ok(moved)
    })?;
    Ok(crate::store::NewImage {
        id: store.image(&desc)?.id().clone(),
        manifest: desc,
        moved_from,
    })
}

/// Layers staged at the same time: as many as `pull` downloads at once (docker's default).
const PARALLEL_STAGING: usize = 3;

/// Stages the layers of the set's images that the store lacks, each once and a few at a
/// time, each checked against its digest and its diff_id.
fn stage_layers(
    store: &Store,
    staging: &crate::store::Staging,
    source: &dyn BlobSource,
    set: &ImageSet,
) -> Result<Vec<crate::store::Staged>> {
    let mut wanted: Vec<(&Descriptor, &Digest, String)> = Vec::new();
    for image in &set.images {
        let diff_ids = &image.config.rootfs.diff_ids;
        if diff_ids.len() != image.manifest.layers.len() {
            return Err(Error::InvalidArchive(format!(
                "manifest {}: {} layers but the config lists {} diff_ids",
                image.manifest_digest,
                image.manifest.layers.len(),
                diff_ids.len()
            )));
        }
        for (i, (l, diff_id)) in image.manifest.layers.iter().zip(diff_ids).enumerate() {
            if store.has_blob(&l.digest) || wanted.iter().any(|(w, _, _)| w.digest == l.digest) {
                continue;
            }
            let what = format!(
                "layer {i} ({}) of manifest {}",
                l.digest, image.manifest_digest
            );
            wanted.push((l, diff_id, what));
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results: std::sync::Mutex<Vec<Result<crate::store::Staged>>> =
        std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_STAGING.min(wanted.len()) {
            scope.spawn(|| {
                while !failed.load(std::sync::atomic::Ordering::Relaxed) {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((l, diff_id, what)) = wanted.get(i) else {
                        return;
                    };
                    let r = stage_layer(store, staging, source, l, diff_id, what);
                    if r.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    results.lock().expect("never poisoned").push(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("never poisoned")
        .into_iter()
        .collect()
}

/// Stages one layer, checked against its digest, size and diff_id.
fn stage_layer(
    store: &Store,
    staging: &crate::store::Staging,
    source: &dyn BlobSource,
    l: &Descriptor,
    diff_id: &Digest,
    what: &str,
) -> Result<crate::store::Staged> {
    let s = staging.stage(source.open_blob(l)?, what)?;
    if s.digest != l.digest || s.size != l.size {
        return Err(Error::InvalidArchive(format!(
            "{what}: expected {} bytes with digest {}, got {} bytes with digest {}",
            l.size, l.digest, s.size, s.digest
        )));
    }
    if s.diff_id.as_ref() != Some(diff_id) {
        return Err(Error::InvalidArchive(format!(
            "{what}: invalid diffID: the config says {diff_id}, the layer is {}",
            s.diff_id
                .as_ref()
                .map_or_else(|| "not decodable".to_string(), ToString::to_string)
        )));
    }
    if s.compression != Compression::None {
        store.remember_layer(&s.digest, diff_id, s.uncompressed_size)?;
    }
    Ok(s)
}
