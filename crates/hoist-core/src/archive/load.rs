//! `load`: read an image archive of any supported format into the store.
//!
//! Formats, detected by content (never by file name): docker legacy v1 (`repositories` and
//! `<id>/{json,layer.tar}`), docker `manifest.json` archives (docker 1.10–24, skopeo, kaniko,
//! go-containerregistry), docker 25+ / containerd archives (OCI layout plus `manifest.json`),
//! OCI archives and OCI layout directories (nested indexes, platform selection). The input may
//! be compressed as a whole (gzip, zstd, xz, bzip2).
//!
//! The input is read once (`collect`). Every blob is checked against its digest and
//! every layer against the config's diff_ids *before* anything becomes visible in the store;
//! then blobs are renamed into place and `index.json` is replaced, so a failure at any point
//! leaves the store as it was.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::Path;

use hoist_format::config::ImageConfig;
use hoist_format::docker;
use hoist_format::media_type::{
    self, ANNOTATION_CONTAINERD_NAME, ANNOTATION_DOCKER_REFERENCE_TYPE, ANNOTATION_REF_NAME,
    Compression,
};
use hoist_format::oci::{Descriptor, DescriptorPlatform, Index, Manifest, OciJsonError, Sniff};
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;
use hoist_format::{Digest, legacy};

use super::collect::{Collected, Node};
use super::delta::{self, Supplied};
use super::parts::PartSet;
use crate::compress::Peeked;
use crate::error::{Error, Result};
use crate::flatten::{FlattenOptions, LayerSource, final_tree};
use crate::hashio::ProgressReader;
use crate::store::{LayerCheck, Staged, Staging, Store};

/// Options of [`load`].
#[derive(Default)]
pub struct LoadOptions<'a> {
    /// Names to give the loaded image(s) instead of those in the archive (`-t`). With one image
    /// in the archive, every name goes to it; with several, give one name per image (archive order).
    pub tags: Vec<Reference>,
    /// Platform to choose from multi-platform indexes (default: the host's). When given
    /// explicitly, images of other platforms are skipped, as `docker load --platform` does.
    pub platform: Option<Platform>,
    /// Called with the number of input bytes read so far.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Archives or OCI layout directories to take the layers a delta archive left out from,
    /// when the store does not have them.
    pub bases: Vec<std::path::PathBuf>,
}

impl std::fmt::Debug for LoadOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("tags", &self.tags)
            .field("platform", &self.platform)
            .field("bases", &self.bases)
            .finish()
    }
}

/// One image that was loaded.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// The image ID (config digest).
    pub id: Digest,
    /// The manifest the store now holds for it.
    pub manifest: Descriptor,
    /// Names it got.
    pub names: Vec<Reference>,
    /// Names that were moved to it from another image: (name, the other image's ID).
    pub moved: Vec<(Reference, Digest)>,
}

/// What [`load`] did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The images, in archive order.
    pub images: Vec<LoadedImage>,
    /// How the whole input was compressed.
    pub outer_compression: Option<Compression>,
}

/// An image ready to be committed: every blob staged and verified.
#[derive(Debug)]
struct Planned {
    manifest_bytes: Vec<u8>,
    manifest_media_type: String,
    config_digest: Digest,
    config_bytes: Vec<u8>,
    layers: Vec<(Staged, Digest)>,
    names: Vec<Reference>,
    /// Where in the archive it came from, for messages.
    source: String,
}

/// The staged layers of an image being loaded or imported.
pub(crate) struct StagedLayers<'a>(pub(crate) &'a [(Staged, Digest)]);

impl LayerSource for StagedLayers<'_> {
    fn layer_count(&self) -> usize {
        self.0.len()
    }

    fn open_layer(&self, index: usize) -> io::Result<Box<dyn Read + '_>> {
        let s = &self.0[index].0;
        let f = std::fs::File::open(&s.path)?;
        crate::compress::decoder(s.compression, io::BufReader::new(f))
    }

    fn open_layer_file(&self, index: usize) -> io::Result<Option<std::fs::File>> {
        let s = &self.0[index].0;
        if s.compression != Compression::None {
            return Ok(None);
        }
        std::fs::File::open(&s.path).map(Some)
    }
}

/// Merges an image's layers as `create` and `export` will (headers only, seeking over file
/// contents), so that what `load` accepts they accept too: a hard link whose target does not
/// exist, a parent that is not a directory, a symlink loop refuse the load, naming the layer
/// and the entry.
fn check_tree(p: &Planned) -> Result<()> {
    final_tree(&StagedLayers(&p.layers), &FlattenOptions::default())
        .map(|_| ())
        .map_err(|e| Error::InvalidArchive(format!("{}: {e}", p.source)))
}

/// Loads every image of an archive stream (plain or compressed tar).
pub fn load(store: &Store, input: impl Read, opts: &LoadOptions<'_>) -> Result<LoadReport> {
    load_stream(store, input, opts, |_, read| read)
}

/// Loads every image of a split set ([`PartSet`]): the parts are read in order as one
/// stream, each part's sum is checked as it ends, and the last parts are read to their end
/// even when the archive ends before, so nothing is committed unless every part is as its
/// sums file lists it. A missing part is named before anything is read.
pub fn load_parts(store: &Store, set: &PartSet, opts: &LoadOptions<'_>) -> Result<LoadReport> {
    set.check_present()?;
    load_stream(store, set.reader(), opts, |parts, read| {
        // A bad part explains whatever the archive read through it made of its bytes.
        if let Some(e) = parts.take_failure() {
            return Err(e.into());
        }
        let collected = read?;
        parts.finish()?;
        Ok(collected)
    })
}

/// [`load`] with a check of the input between reading and committing: `check` gets the input
/// and what was read of it (or why reading failed) and decides.
fn load_stream<R: Read>(
    store: &Store,
    mut input: R,
    opts: &LoadOptions<'_>,
    check: impl FnOnce(&mut R, Result<Collected>) -> Result<Collected>,
) -> Result<LoadReport> {
    let _ingest = store.ingest_lock()?;
    let mut staging = store.staging()?;
    let noop = |_: u64| {};
    let progress: &dyn Fn(u64) = opts.progress.unwrap_or(&noop);
    let read = (|| {
        let input = ProgressReader::new(&mut input, progress);
        let peeked = Peeked::new(input).map_err(|source| Error::Read {
            what: "the archive".into(),
            source,
        })?;
        if peeked.is_empty() {
            return Err(Error::InvalidArchive("the input is empty".into()));
        }
        let outer = peeked.compression();
        let tar = crate::compress::decoder(outer, peeked).map_err(|source| Error::Read {
            what: "the archive".into(),
            source,
        })?;
        let mut collected = Collected::from_tar(tar, &staging)?;
        collected.outer = Some(outer);
        Ok(collected)
    })();
    let collected = check(&mut input, read)?;
    let outer = collected.outer;
    let mut report = commit(store, &mut staging, collected, opts)?;
    report.outer_compression = outer;
    Ok(report)
}

/// Loads every image of an archive file. An uncompressed file is read by several threads at
/// once (headers by seeking, each layer staged with `pread`); a compressed one as a stream.
pub fn load_file(
    store: &Store,
    file: &std::fs::File,
    opts: &LoadOptions<'_>,
) -> Result<LoadReport> {
    let mut head = [0u8; 6];
    let n = {
        use std::os::unix::fs::FileExt;
        file.read_at(&mut head, 0).map_err(|source| Error::Read {
            what: "the archive".into(),
            source,
        })?
    };
    if n == 0
        || Compression::sniff(&head[..n]) != Compression::None
        || !file.metadata().is_ok_and(|m| m.is_file())
    {
        return load(store, file, opts);
    }
    let _ingest = store.ingest_lock()?;
    let mut staging = store.staging()?;
    let noop = |_: u64| {};
    let progress: &(dyn Fn(u64) + Sync) = opts.progress.unwrap_or(&noop);
    let collected = Collected::from_tar_file(file, &staging, progress)?;
    let mut report = commit(store, &mut staging, collected, opts)?;
    report.outer_compression = Some(Compression::None);
    Ok(report)
}

/// Loads every image of an OCI layout directory (or an extracted docker archive).
pub fn load_dir(store: &Store, dir: &Path, opts: &LoadOptions<'_>) -> Result<LoadReport> {
    let _ingest = store.ingest_lock()?;
    let mut staging = store.staging()?;
    let collected = Collected::from_dir(dir)?;
    commit(store, &mut staging, collected, opts)
}

fn commit(
    store: &Store,
    staging: &mut Staging,
    mut collected: Collected,
    opts: &LoadOptions<'_>,
) -> Result<LoadReport> {
    let supplied = delta::supply(&mut collected, store, staging, &opts.bases)?;
    let c = &collected;
    let mut planned = plan(c, staging, &supplied, opts)?;
    if planned.is_empty() {
        return Err(match &opts.platform {
            Some(p) => {
                Error::InvalidArchive(format!("no image in the archive matches platform {p}"))
            }
            None => Error::InvalidArchive("the archive contains no images".into()),
        });
    }
    apply_tags(&mut planned, &opts.tags)?;
    for p in &planned {
        check_tree(p)?;
    }

    // Stage the small documents, then make everything visible.
    let mut to_commit: Vec<Staged> = Vec::new();
    let mut descs = Vec::new();
    for p in &planned {
        let m = staging.stage_bytes(&p.manifest_bytes)?;
        let cfg = staging.stage_bytes(&p.config_bytes)?;
        debug_assert_eq!(cfg.digest, p.config_digest);
        descs.push(Descriptor::new(
            &p.manifest_media_type,
            m.digest.clone(),
            m.size,
        ));
        to_commit.push(m);
        to_commit.push(cfg);
        to_commit.extend(p.layers.iter().map(|(s, _)| s.clone()));
    }
    staging.commit(&to_commit)?;
    for p in &planned {
        for (s, diff_id) in &p.layers {
            if s.compression != Compression::None {
                store.remember_layer(&s.digest, diff_id, s.uncompressed_size)?;
            }
        }
    }

    let report = store.update_index(|entries| {
        let ids = store.ids_of(entries)?;
        let mut images = Vec::new();
        for (p, desc) in planned.iter().zip(&descs) {
            let mut moved = Vec::new();
            for n in &p.names {
                if let Some(old) =
                    Store::tag_entries(entries, n, desc, &ids).filter(|old| old != &p.config_digest)
                {
                    moved.push((n.clone(), old));
                }
            }
            if p.names.is_empty() {
                Store::keep_untagged(entries, desc);
            }
            images.push(LoadedImage {
                id: p.config_digest.clone(),
                manifest: desc.clone(),
                names: p.names.clone(),
                moved,
            });
        }
        Ok(images)
    })?;
    Ok(LoadReport {
        images: report,
        outer_compression: c.outer,
    })
}

fn apply_tags(planned: &mut [Planned], tags: &[Reference]) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    if planned.len() == 1 {
        planned[0].names = tags.to_vec();
    } else if planned.len() == tags.len() {
        for (p, t) in planned.iter_mut().zip(tags) {
            p.names = vec![t.clone()];
        }
    } else {
        let list: Vec<&str> = planned.iter().map(|p| p.source.as_str()).collect();
        return Err(Error::Conflict(format!(
            "the archive holds {} images ({}); give one --tag per image, in that order, or none",
            planned.len(),
            list.join(", ")
        )));
    }
    Ok(())
}

/// Works out the images of the archive and stages/verifies their blobs.
fn plan(
    c: &Collected,
    staging: &Staging,
    supplied: &Supplied,
    opts: &LoadOptions<'_>,
) -> Result<Vec<Planned>> {
    let has = |p: &str| c.exists(p);
    let docker_items = if has("manifest.json") {
        Some(
            docker::parse_manifest(&c.bytes("manifest.json")?)
                .map_err(|e| Error::InvalidArchive(e.to_string()))?,
        )
    } else {
        None
    };
    let mut out: Vec<Planned> = Vec::new();

    if has("oci-layout") && has("index.json") {
        let layout = oci_json(
            hoist_format::oci::OciLayout::parse,
            &c.bytes("oci-layout")?,
            "oci-layout",
        )?;
        if layout.image_layout_version != "1.0.0" {
            return Err(Error::InvalidArchive(format!(
                "unsupported OCI layout version {:?} in oci-layout",
                layout.image_layout_version
            )));
        }
        let index = oci_json(Index::parse, &c.bytes("index.json")?, "index.json")?;
        // RepoTags of manifest.json (docker 25) name images by config digest.
        let mut repo_tags: HashMap<Digest, Vec<String>> = HashMap::new();
        for item in docker_items.iter().flatten() {
            if let Ok(d) = c.digest_of(&item.config, staging) {
                repo_tags
                    .entry(d)
                    .or_default()
                    .extend(item.repo_tags.clone().unwrap_or_default());
            }
        }
        for (names, desc) in group_top_level(&index.manifests, opts)? {
            let mut p = plan_oci(c, staging, supplied, &desc, opts)?;
            let Some(mut p) = p.take() else { continue };
            p.names = names_for(&names, repo_tags.get(&p.config_digest))?;
            if !out
                .iter()
                .any(|o| o.config_digest == p.config_digest && o.manifest_bytes == p.manifest_bytes)
            {
                out.push(p);
            } else if let Some(o) = out.iter_mut().find(|o| {
                o.config_digest == p.config_digest && o.manifest_bytes == p.manifest_bytes
            }) {
                o.names.extend(p.names);
            }
        }
    }

    if let Some(items) = &docker_items {
        for (i, item) in items.iter().enumerate() {
            let cfg_digest = c.digest_of(&item.config, staging)?;
            // Already loaded through index.json (docker 25 / containerd archives).
            if out.iter().any(|p| p.config_digest == cfg_digest) {
                continue;
            }
            if let Some(p) = plan_docker_item(c, staging, i, item, opts)? {
                out.push(p);
            }
        }
    } else if !(has("oci-layout") && has("index.json")) {
        if has("repositories") {
            out.extend(plan_legacy(c, staging, opts)?);
        } else if let Some(half) = half_oci_layout(has("index.json"), has("oci-layout")) {
            return Err(Error::InvalidArchive(half.into()));
        } else {
            let hint = if c
                .nodes
                .keys()
                .any(|k| !k.contains('/') || k.starts_with("etc/") || k.starts_with("bin/"))
                && !c.nodes.is_empty()
            {
                " (is it a root filesystem tar? use `hoist import` for those)"
            } else {
                ""
            };
            return Err(Error::InvalidArchive(format!(
                "no manifest.json, index.json or repositories found: not an image archive{hint}"
            )));
        }
    }
    for p in &mut out {
        dedup_names(&mut p.names);
    }
    Ok(out)
}

/// What is wrong with an archive that has one of an OCI layout's two top-level files and no
/// docker `manifest.json` or `repositories`. image-spec requires both files; docker's loaders
/// refuse such an archive too (20.10 wants `manifest.json` or `repositories`, containerd's
/// importer reads `index.json` only when `oci-layout` says it is a layout). skopeo's
/// `oci-archive:` does not require `oci-layout`, and neither does `hoist copy`.
fn half_oci_layout(has_index: bool, has_layout: bool) -> Option<&'static str> {
    match (has_index, has_layout) {
        (true, false) => Some(
            "index.json is present but the oci-layout file is missing: an OCI image layout \
             needs both (`hoist copy oci-archive:FILE hoist:NAME` reads it without, as skopeo \
             does)",
        ),
        (false, true) => Some(
            "the oci-layout file is present but index.json is missing: an OCI image layout \
             needs both",
        ),
        _ => None,
    }
}

fn dedup_names(names: &mut Vec<Reference>) {
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.to_string()));
}

/// Parses an OCI document of the archive with its Go-rules parser; `what` names it in errors.
fn oci_json<T>(parse: fn(&[u8]) -> Result<T, OciJsonError>, bytes: &[u8], what: &str) -> Result<T> {
    parse(bytes).map_err(|source| Error::OciJson {
        what: format!("invalid {what}"),
        source,
    })
}

/// Top-level descriptors of `index.json`, each with the names its annotations give. Several
/// descriptors with the same name and different platforms (a flat multi-platform layout) are
/// narrowed to the wanted platform, like an index.
fn group_top_level(
    descs: &[Descriptor],
    opts: &LoadOptions<'_>,
) -> Result<Vec<(Vec<String>, Descriptor)>> {
    let mut groups: BTreeMap<Option<String>, Vec<&Descriptor>> = BTreeMap::new();
    let mut order: Vec<Option<String>> = Vec::new();
    for d in descs {
        let key = d
            .annotation(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| d.annotation(ANNOTATION_REF_NAME))
            .map(str::to_string);
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(d);
    }
    let mut out = Vec::new();
    for key in order {
        let ds = &groups[&key];
        let platformed = ds.iter().filter(|d| d.platform.is_some()).count();
        let chosen: Vec<&Descriptor> = if platformed > 1 {
            vec![choose_platform(ds, opts.platform.as_ref(), "index.json")?]
        } else {
            ds.clone()
        };
        for d in chosen {
            let mut names = Vec::new();
            if let Some(n) = d.annotation(ANNOTATION_CONTAINERD_NAME) {
                names.push(n.to_string());
            } else if let Some(n) = d.annotation(ANNOTATION_REF_NAME) {
                // Docker and containerd put only the tag here; podman and skopeo the full name.
                // A bare tag names nothing on its own.
                if n.contains('/') || n.contains(':') {
                    names.push(n.to_string());
                }
            }
            out.push((names, d.clone()));
        }
    }
    Ok(out)
}

fn names_for(annotated: &[String], repo_tags: Option<&Vec<String>>) -> Result<Vec<Reference>> {
    let mut out = Vec::new();
    for n in annotated.iter().chain(repo_tags.into_iter().flatten()) {
        out.push(parse_name(n)?);
    }
    Ok(out)
}

fn parse_name(n: &str) -> Result<Reference> {
    let r = Reference::parse_normalized(n)?;
    if r.digest().is_some() && r.tag().is_none() {
        return Err(Error::InvalidArchive(format!(
            "image name {n:?} is a digest reference; only name:tag can be loaded"
        )));
    }
    Ok(r.with_default_tag())
}

pub(crate) fn is_attestation(d: &Descriptor) -> bool {
    d.annotation(ANNOTATION_DOCKER_REFERENCE_TYPE).is_some()
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" || p.architecture == "unknown")
}

pub(crate) fn choose_platform<'d>(
    ds: &[&'d Descriptor],
    platform: Option<&Platform>,
    what: &str,
) -> Result<&'d Descriptor> {
    let want = platform.cloned().unwrap_or_else(Platform::host);
    let candidates: Vec<&&Descriptor> = ds.iter().filter(|d| !is_attestation(d)).collect();
    if let Some(d) = candidates.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| want.matches(&p.to_platform()))
    }) {
        return Ok(d);
    }
    // An entry without platform is taken when it is the only real choice.
    if candidates.len() == 1 && candidates[0].platform.is_none() {
        return Ok(candidates[0]);
    }
    let avail: Vec<String> = candidates
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_platform().to_string()))
        .collect();
    Err(Error::InvalidArchive(format!(
        "{what} has no image for platform {want} (available: {})",
        avail.join(", ")
    )))
}

/// Resolves an index.json descriptor to one image manifest and plans it.
fn plan_oci(
    c: &Collected,
    staging: &Staging,
    supplied: &Supplied,
    desc: &Descriptor,
    opts: &LoadOptions<'_>,
) -> Result<Option<Planned>> {
    let mut desc = desc.clone();
    for _depth in 0..8 {
        let path = format!("blobs/sha256/{}", desc.digest.hex());
        let bytes = c.bytes(&path)?;
        verify_bytes(&bytes, &desc, &path)?;
        let sniff = oci_json(Sniff::parse, &bytes, &path)?;
        if sniff.is_index() {
            let idx = oci_json(Index::parse, &bytes, &path)?;
            let refs: Vec<&Descriptor> = idx.manifests.iter().collect();
            desc = choose_platform(
                &refs,
                opts.platform.as_ref(),
                &format!("index {}", desc.digest),
            )?
            .clone();
            continue;
        }
        let manifest = oci_json(Manifest::parse, &bytes, &path)?;
        let media_type = manifest
            .media_type
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                if desc.media_type.is_empty() {
                    media_type::OCI_MANIFEST.to_string()
                } else {
                    desc.media_type.clone()
                }
            });
        let cfg_path = format!("blobs/sha256/{}", manifest.config.digest.hex());
        let config_bytes = c.bytes(&cfg_path)?;
        verify_bytes(&config_bytes, &manifest.config, &cfg_path)?;
        let config = ImageConfig::parse(&config_bytes)
            .map_err(|e| Error::InvalidArchive(format!("{cfg_path}: {e}")))?;
        if skipped_platform(opts, &config) {
            return Ok(None);
        }
        let mut sources = Vec::new();
        // A layer a delta left out may come back as another blob of the same layer: the
        // manifest is then rebuilt for the blobs the image lands with.
        let mut rebuilt = false;
        for l in &manifest.layers {
            let lp = format!("blobs/sha256/{}", l.digest.hex());
            if !c.exists(&lp) {
                return Err(Error::InvalidArchive(format!(
                    "layer {} is listed in manifest {} but not in the archive{}",
                    l.digest,
                    desc.digest,
                    if l.urls.is_some() {
                        " (a foreign layer; hoist does not fetch layer URLs)"
                    } else {
                        ""
                    }
                )));
            }
            let s = c.blob(&lp, staging)?;
            if supplied.substituted.contains(&lp) {
                rebuilt = true;
                sources.push((lp, s));
                continue;
            }
            if s.digest != l.digest {
                return Err(Error::DigestMismatch {
                    what: lp.clone(),
                    expected: l.digest.clone(),
                    found: s.digest,
                });
            }
            if s.size != l.size {
                return Err(Error::SizeMismatch {
                    what: lp.clone(),
                    expected: l.size,
                    found: s.size,
                });
            }
            sources.push((lp, s));
        }
        let layers = check_layers(&config, sources, &cfg_path)?;
        let (bytes, media_type) = if rebuilt {
            (
                synthesize_manifest(&config_bytes, &config, &described(&layers))?,
                media_type::OCI_MANIFEST.to_string(),
            )
        } else {
            (bytes, media_type)
        };
        return Ok(Some(Planned {
            manifest_bytes: bytes,
            manifest_media_type: media_type,
            config_digest: manifest.config.digest.clone(),
            config_bytes,
            layers,
            names: Vec::new(),
            source: format!("manifest {}", desc.digest),
        }));
    }
    Err(Error::InvalidArchive(format!(
        "indexes nested too deeply below {}",
        desc.digest
    )))
}

/// With an explicit `--platform`, images of other platforms are skipped (docker load does so).
fn skipped_platform(opts: &LoadOptions<'_>, config: &ImageConfig) -> bool {
    opts.platform
        .as_ref()
        .is_some_and(|want| !want.matches(&config.platform()))
}

fn verify_bytes(bytes: &[u8], desc: &Descriptor, path: &str) -> Result<()> {
    let found = Digest::of(bytes);
    if found != desc.digest {
        return Err(Error::DigestMismatch {
            what: path.to_string(),
            expected: desc.digest.clone(),
            found,
        });
    }
    if bytes.len() as u64 != desc.size {
        return Err(Error::SizeMismatch {
            what: path.to_string(),
            expected: desc.size,
            found: bytes.len() as u64,
        });
    }
    Ok(())
}

/// Checks each layer's decompressed digest against the config's diff_ids.
fn check_layers(
    config: &ImageConfig,
    layers: Vec<(String, Staged)>,
    what: &str,
) -> Result<Vec<(Staged, Digest)>> {
    let want = &config.rootfs.diff_ids;
    if want.len() != layers.len() {
        return Err(Error::InvalidArchive(format!(
            "{what}: the image has {} layers but its config lists {} diff_ids",
            layers.len(),
            want.len()
        )));
    }
    let mut out = Vec::new();
    for (i, ((path, s), expected)) in layers.into_iter().zip(want).enumerate() {
        let Some(found) = s.diff_id.clone() else {
            return Err(Error::InvalidArchive(format!(
                "layer {i} ({path}) is {:?}-compressed but does not decompress: {}",
                s.compression,
                s.decode_error.clone().unwrap_or_default()
            )));
        };
        if &found != expected {
            return Err(Error::DiffIdMismatch {
                index: i,
                path,
                expected: expected.clone(),
                found,
            });
        }
        if let LayerCheck::Invalid(why) = &s.layer_check {
            return Err(Error::InvalidArchive(format!(
                "layer {i} ({path}, {found}) is not a valid layer tar: {why}"
            )));
        }
        out.push((s, found));
    }
    Ok(out)
}

/// Builds the OCI manifest docker 25 writes for an image of a docker archive, so that the
/// same image gets the same manifest digest from hoist and from docker.
pub(crate) fn synthesize_manifest(
    config_bytes: &[u8],
    config: &ImageConfig,
    layers: &[(Compression, Digest, u64)],
) -> Result<Vec<u8>> {
    let mut cfg = Descriptor::new(
        media_type::OCI_CONFIG,
        Digest::of(config_bytes),
        config_bytes.len() as u64,
    );
    if !config.architecture.is_empty() || !config.os.is_empty() {
        cfg.platform = Some(DescriptorPlatform {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            os_version: None,
            variant: config.variant.clone().filter(|v| !v.is_empty()),
            extra: Default::default(),
        });
    }
    let mut descs = Vec::new();
    for (compression, digest, size) in layers {
        let mt = compression.oci_layer_media_type().ok_or_else(|| {
            Error::InvalidArchive(format!(
                "a layer is {compression:?}-compressed, which OCI has no media type for"
            ))
        })?;
        descs.push(Descriptor::new(mt, digest.clone(), *size));
    }
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config: cfg,
        layers: descs,
        annotations: None,
        extra: Default::default(),
    };
    Ok(serde_json::to_vec(&m).expect("a manifest always serializes"))
}

/// What [`synthesize_manifest`] needs of staged layers.
fn described(layers: &[(Staged, Digest)]) -> Vec<(Compression, Digest, u64)> {
    layers
        .iter()
        .map(|(s, _)| (s.compression, s.digest.clone(), s.size))
        .collect()
}

/// Layers compressed with bzip2 or xz (possible inside docker archives, since docker
/// decompresses anything) have no OCI media type: store them decompressed.
pub(crate) fn storable(s: Staged, staging: &Staging, c: &Collected, path: &str) -> Result<Staged> {
    if matches!(s.compression, Compression::Bzip2 | Compression::Xz) {
        let raw: Box<dyn Read> = match c.resolve(path)?.1 {
            Node::Mem(b) => Box::new(std::io::Cursor::new(b.clone())),
            _ => Box::new(std::fs::File::open(&s.path).map_err(|source| Error::Io {
                path: s.path.clone(),
                source,
            })?),
        };
        let dec = crate::compress::decoder(s.compression, raw).map_err(|source| Error::Read {
            what: path.to_string(),
            source,
        })?;
        return staging.stage(dec, path);
    }
    Ok(s)
}

fn plan_docker_item(
    c: &Collected,
    staging: &Staging,
    i: usize,
    item: &docker::ManifestItem,
    opts: &LoadOptions<'_>,
) -> Result<Option<Planned>> {
    let config_bytes = c.bytes(&item.config)?;
    let config = ImageConfig::parse(&config_bytes)
        .map_err(|e| Error::InvalidArchive(format!("{}: {e}", item.config)))?;
    if skipped_platform(opts, &config) {
        return Ok(None);
    }
    let mut sources = Vec::new();
    for l in &item.layers {
        let s = c.blob(l, staging)?;
        let s = storable(s, staging, c, l)?;
        sources.push((l.clone(), s));
    }
    let layers = check_layers(
        &config,
        sources,
        &format!("manifest.json entry {i} ({})", item.config),
    )?;
    let manifest_bytes = synthesize_manifest(&config_bytes, &config, &described(&layers))?;
    let names = item
        .repo_tags
        .iter()
        .flatten()
        .map(|n| parse_name(n))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Planned {
        manifest_bytes,
        manifest_media_type: media_type::OCI_MANIFEST.into(),
        config_digest: Digest::of(&config_bytes),
        config_bytes,
        layers,
        names,
        source: format!("manifest.json entry {i}"),
    }))
}

/// The v1 ids of the image tagged `top`, root first: its `parent` chain, walked once with a
/// set of the ids seen (a loop is said to be one; a chain past
/// [`legacy::MAX_V1_CHAIN_DEPTH`] is refused with that number).
fn legacy_chain(c: &Collected, top: &str) -> Result<Vec<String>> {
    let mut unreadable = None;
    let chain = legacy::chain_from_top(top, |id| {
        let path = format!("{id}/json");
        if !c.exists(&path) {
            return None;
        }
        match c.bytes(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                unreadable.get_or_insert(e);
                None
            }
        }
    });
    // A `json` that exists but cannot be read is that error, not a missing layer.
    if let Some(e) = unreadable {
        return Err(e);
    }
    chain.map_err(|e| match e {
        legacy::LegacyError::MissingLayer { id, child: None } => Error::InvalidArchive(format!(
            "repositories names {id}, which has no {id}/json in the archive (invalid target ID)"
        )),
        other => Error::InvalidArchive(other.to_string()),
    })
}

/// An image of a docker 1.x (v1) archive, read as docker's legacy loader reads it.
pub(crate) struct LegacyImage<L> {
    /// The v1 id `repositories` names.
    pub(crate) top: String,
    /// Every `name:tag` of `repositories` that points at it, as written.
    pub(crate) names: Vec<String>,
    /// Its layers, root first: the archive path and what the layer reader made of it.
    pub(crate) layers: Vec<(String, L)>,
    /// The config synthesized from the `json` chain and the layers' diff_ids.
    pub(crate) config_bytes: Vec<u8>,
    /// Parsed.
    pub(crate) config: ImageConfig,
}

/// The images of a docker 1.x (v1) archive (`repositories` and `<id>/{json,layer.tar}`), as
/// docker's legacy loader reads `repositories` (Go's rules: first value, last duplicate wins):
/// one per distinct top v1 id, with every `name:tag` that points at it.
pub(crate) fn legacy_tops(c: &Collected) -> Result<Vec<(String, Vec<String>)>> {
    let repos = legacy::parse_repositories(&c.bytes("repositories")?)
        .map_err(|e| Error::InvalidArchive(e.to_string()))?;
    let mut tops: Vec<(String, Vec<String>)> = Vec::new();
    for legacy::RepositoryTag { name, tag, id } in repos {
        let full = format!("{name}:{tag}");
        match tops.iter_mut().find(|(t, _)| *t == id) {
            Some((_, names)) => names.push(full),
            None => tops.push((id, vec![full])),
        }
    }
    Ok(tops)
}

/// The image of a v1 archive whose top v1 id is `top` ([`legacy_tops`]): its `parent` chain,
/// each layer read once by `read_layer(index, path)` (which returns what it made of the
/// layer and its diff_id: a v1 archive names no layer by digest, so the diff_ids are learned
/// by hashing the layers), and the config synthesized from the chain's `json` documents.
/// `load` stages the layers; looking inside an archive only hashes them.
pub(crate) fn legacy_image<L>(
    c: &Collected,
    top: String,
    names: Vec<String>,
    mut read_layer: impl FnMut(usize, &str) -> Result<(L, Digest)>,
) -> Result<LegacyImage<L>> {
    let chain = legacy_chain(c, &top)?;
    let mut jsons = Vec::new();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, id) in chain.iter().enumerate() {
        jsons.push(c.bytes(&format!("{id}/json"))?);
        let lp = format!("{id}/layer.tar");
        let (layer, diff_id) = read_layer(i, &lp)?;
        layers.push((lp, layer));
        diff_ids.push(diff_id);
    }
    let json_refs: Vec<&[u8]> = jsons.iter().map(Vec::as_slice).collect();
    let config_bytes = legacy::config_from_v1_chain(&json_refs, &diff_ids)
        .map_err(|e| Error::InvalidArchive(format!("image {top}: {e}")))?;
    let config = ImageConfig::parse(&config_bytes)
        .map_err(|e| Error::InvalidArchive(format!("image {top}: {e}")))?;
    Ok(LegacyImage {
        top,
        names,
        layers,
        config_bytes,
        config,
    })
}

fn plan_legacy(c: &Collected, staging: &Staging, opts: &LoadOptions<'_>) -> Result<Vec<Planned>> {
    let mut out = Vec::new();
    for (top, names) in legacy_tops(c)? {
        let LegacyImage {
            top,
            names,
            layers,
            config_bytes,
            config,
        } = legacy_image(c, top, names, |i, lp| {
            let s = c.blob(lp, staging)?;
            let s = storable(s, staging, c, lp)?;
            let diff_id = s.diff_id.clone().ok_or_else(|| {
                Error::InvalidArchive(format!(
                    "layer {i} ({lp}) does not decompress: {}",
                    s.decode_error.clone().unwrap_or_default()
                ))
            })?;
            Ok((s, diff_id))
        })?;
        if skipped_platform(opts, &config) {
            continue;
        }
        let layers = check_layers(&config, layers, &format!("image {top}"))?;
        let manifest_bytes = synthesize_manifest(&config_bytes, &config, &described(&layers))?;
        let names = names
            .iter()
            .map(|n| parse_name(n))
            .collect::<Result<Vec<_>>>()?;
        out.push(Planned {
            manifest_bytes,
            manifest_media_type: media_type::OCI_MANIFEST.into(),
            config_digest: Digest::of(&config_bytes),
            config_bytes,
            layers,
            names,
            source: format!("image {top}"),
        });
    }
    Ok(out)
}
