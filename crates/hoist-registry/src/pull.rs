//! `pull`: an image from a registry into the store, with the atomicity of `load`.
//!
//! The manifest is resolved (an index narrowed to one platform, or with `all_platforms` kept
//! whole: every platform's image), the configs and the layers the store lacks are streamed
//! into the store's staging area a few at a time, each checked against its digest and size as
//! it arrives and every layer against its config's diff_ids. Only then are the blobs renamed
//! into the store and the name set in `index.json`: a failed pull leaves the store as it was.

use std::collections::HashMap;
use std::sync::Mutex;

use hoist_core::store::{LayerCheck, Staged, Staging, Store};
use hoist_format::Digest;
use hoist_format::config::ImageConfig;
use hoist_format::media_type::{self, Compression};
use hoist_format::oci::{Descriptor, Index, Manifest};
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

use crate::client::{Client, FetchedManifest, MAX_ATTEMPTS};
use crate::error::{Error, Result};

/// Blobs downloaded at the same time: docker's default `max-concurrent-downloads`.
pub const PARALLEL_DOWNLOADS: usize = 3;

/// Indexes nested deeper than this are refused (real ones have one level); the store's limit.
const MAX_INDEX_DEPTH: usize = hoist_core::store::MAX_INDEX_DEPTH;

/// What a pull reports while it runs.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// The store already has this layer.
    LayerExists(Digest),
    /// This layer is being downloaded.
    LayerDownloading(Digest),
    /// This layer was downloaded and verified.
    LayerDone(Digest),
    /// The bytes of all the layers to download (sent once, before the downloads).
    Total(u64),
    /// This many more bytes arrived.
    Bytes(u64),
}

/// Options of [`pull`].
#[derive(Default)]
pub struct PullOptions<'a> {
    /// Platform to take from an index (default: the host's). Ignored with `all_platforms`.
    pub platform: Option<Platform>,
    /// Keep a multi-platform index whole: every platform's image (attestations excepted) is
    /// stored, the index and any nested index byte-exact, and the name points at the index.
    /// The store shows it as the host's image (see `hoist_core::store::Store::image`).
    pub all_platforms: bool,
    /// Called as layers are found, downloaded and verified.
    pub progress: Option<&'a (dyn Fn(PullEvent) + Sync)>,
}

impl std::fmt::Debug for PullOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("platform", &self.platform)
            .field("all_platforms", &self.all_platforms)
            .finish()
    }
}

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The digest of what the reference resolved to (the index, for a multi-platform image):
    /// docker's `Digest:` line.
    pub digest: Digest,
    /// The image ID (config digest); with `all_platforms`, of the image the store shows for
    /// the index (the host's platform if the index has it).
    pub id: Digest,
    /// What the name now points at: the image manifest, or with `all_platforms` the index.
    pub manifest: Descriptor,
    /// The name set (`None` when pulled by digest only: the image is kept untagged).
    pub name: Option<Reference>,
    /// False when the name already pointed at this manifest (docker's "Image is up to date").
    pub changed: bool,
    /// The image the name was taken from, if it named another one.
    pub moved_from: Option<Digest>,
    /// Layers downloaded (the others were in the store already).
    pub downloaded: Vec<Digest>,
    /// What went wrong without failing the pull (the store could not remember something).
    pub warnings: Vec<String>,
}

/// One image being pulled: its manifest and config, checked against each other.
struct Prepared {
    fetched: FetchedManifest,
    manifest: Manifest,
    config_bytes: Vec<u8>,
    diff_ids: Vec<Digest>,
}

/// Where errors happen: the registry and repository, for messages.
pub(crate) struct Source<'c> {
    pub(crate) client: &'c Client,
    pub(crate) repo: &'c str,
}

impl Source<'_> {
    pub(crate) fn what(&self, what: &str) -> String {
        format!("{}/{}: {what}", self.client.registry(), self.repo)
    }

    /// Fetches the manifest or index `desc` names (its digest is checked by the client), and
    /// checks its size.
    fn fetch_child(&self, desc: &Descriptor) -> Result<FetchedManifest> {
        let next = self
            .client
            .get_manifest(self.repo, &desc.digest.to_string())?;
        if next.bytes.len() as u64 != desc.size {
            return Err(Error::SizeMismatch {
                what: self.what(&format!("manifest {}", desc.digest)),
                expected: desc.size,
                found: next.bytes.len() as u64,
            });
        }
        Ok(next)
    }
}

/// Pulls `reference` from its registry (through `client`) into `store`.
pub fn pull(
    store: &Store,
    client: &Client,
    reference: &Reference,
    opts: &PullOptions<'_>,
) -> Result<PullReport> {
    let repo = reference.path();
    let src = Source { client, repo };
    let top = client.get_manifest(repo, &tag_or_digest(reference))?;
    let want_platform = opts.platform.as_ref().filter(|_| !opts.all_platforms);
    // The indexes to store (only with all_platforms) and the image manifests to pull.
    let (indexes, manifests) = if opts.all_platforms && media_type::is_index(&top.media_type) {
        let mut indexes = Vec::new();
        let mut manifests = Vec::new();
        fetch_all_platforms(
            &src,
            top.clone(),
            &top.digest,
            1,
            &mut indexes,
            &mut manifests,
        )?;
        if manifests.is_empty() {
            return Err(Error::InvalidManifest {
                what: src.what(&format!("index {}", top.digest)),
                reason: "lists no image (only attestations or nothing)".into(),
            });
        }
        (indexes, manifests)
    } else {
        (
            Vec::new(),
            vec![resolve_platform(&src, top.clone(), want_platform)?],
        )
    };

    // Every manifest is checked before the store is touched.
    let manifests = manifests
        .into_iter()
        .map(|fetched| parse_manifest(&src, fetched))
        .collect::<Result<Vec<_>>>()?;

    let _ingest = store.ingest_lock()?;
    let mut staging = store.staging()?;
    let mut images = Vec::new();
    for (fetched, manifest) in manifests {
        images.push(prepare(
            store,
            &src,
            &staging,
            fetched,
            manifest,
            want_platform,
        )?);
    }

    let noop = |_: PullEvent| {};
    let progress: &(dyn Fn(PullEvent) + Sync) = opts.progress.unwrap_or(&noop);

    // Layers the store lacks, each once (platforms often share some).
    let mut wanted: Vec<&Descriptor> = Vec::new();
    for img in &images {
        for l in &img.manifest.layers {
            if store.has_blob(&l.digest) {
                progress(PullEvent::LayerExists(l.digest.clone()));
            } else if !wanted.iter().any(|w| w.digest == l.digest) {
                wanted.push(l);
            }
        }
    }
    progress(PullEvent::Total(wanted.iter().map(|d| d.size).sum()));
    let staged = download_all(client, &staging, repo, &wanted, progress)?;

    // Every layer against its diff_id, before anything becomes visible.
    let mut new_layers: Vec<(Staged, Digest)> = Vec::new();
    for img in &images {
        for (s, diff_id) in check_layers(store, &src, &staged, img)? {
            if !new_layers.iter().any(|(n, _)| n.digest == s.digest) {
                new_layers.push((s, diff_id));
            }
        }
    }

    // Make it visible: blobs first (every image's, then the indexes, innermost first), then
    // the name.
    let mut blobs: Vec<Staged> = new_layers.iter().map(|(s, _)| s.clone()).collect();
    for img in &images {
        blobs.push(staging.stage_bytes(&img.fetched.bytes)?);
        blobs.push(staging.stage_bytes(&img.config_bytes)?);
    }
    for idx in indexes.iter().rev() {
        blobs.push(staging.stage_bytes(&idx.bytes)?);
    }
    staging.commit(&blobs)?;
    for (s, diff_id) in &new_layers {
        if s.compression != Compression::None {
            store.remember_layer(&s.digest, diff_id, s.uncompressed_size)?;
        }
    }
    // Where these blobs are, so that a push to another repository of this registry mounts
    // them. A cache: failing to write it costs a later push an upload, not this pull.
    let here = format!("{}/{repo}", client.registry());
    let mut warnings = Vec::new();
    for img in &images {
        for d in img.manifest.layers.iter().chain([&img.manifest.config]) {
            if let Err(e) = store.remember_source(&d.digest, &here) {
                warnings.push(format!(
                    "the store could not remember where blob {} came from: {e}",
                    d.digest
                ));
            }
        }
    }
    let target = indexes.first().unwrap_or(&images[0].fetched);
    let desc = Descriptor::new(
        &target.media_type,
        target.digest.clone(),
        target.bytes.len() as u64,
    );
    let id = if indexes.is_empty() {
        images[0].manifest.config.digest.clone()
    } else {
        // The image the store shows for the index: its choice, not a second one made here.
        store.image(&desc)?.id().clone()
    };
    // What the index reaches: untagged entries for them are not images of their own any more.
    let covered: Vec<Digest> = images
        .iter()
        .map(|i| &i.fetched)
        .chain(indexes.iter().skip(1))
        .map(|f| f.digest.clone())
        .collect();
    let name = reference
        .tag()
        .map(|_| reference.clone())
        .filter(|_| reference.digest().is_none());
    let (changed, moved_from) = store.update_index(|entries| {
        let before = entries.iter().any(|e| {
            e.descriptor.digest == desc.digest
                && e.name.as_ref().map(|n| n.to_string()) == name.as_ref().map(|n| n.to_string())
        });
        let ids = store.ids_of(entries)?;
        let moved = match &name {
            Some(n) => Store::tag_entries(entries, n, &desc, &ids).filter(|old| old != &id),
            None => {
                Store::keep_untagged(entries, &desc);
                None
            }
        };
        if !indexes.is_empty() {
            Store::drop_covered_untagged(entries, &covered);
        }
        Ok((!before, moved))
    })?;
    Ok(PullReport {
        digest: top.digest,
        id,
        manifest: desc,
        name,
        changed,
        moved_from,
        downloaded: wanted.iter().map(|d| d.digest.clone()).collect(),
        warnings,
    })
}

/// What to ask the registry for: the digest, else the tag, else `latest`.
pub(crate) fn tag_or_digest(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => hoist_format::reference::DEFAULT_TAG.to_string(),
    }
}

/// Narrows `top` (through nested indexes) to the image manifest for one platform (default:
/// the host's).
pub(crate) fn resolve_platform(
    src: &Source<'_>,
    top: FetchedManifest,
    platform: Option<&Platform>,
) -> Result<FetchedManifest> {
    let top_digest = top.digest.clone();
    let mut fetched = top;
    let mut depth = 0;
    while media_type::is_index(&fetched.media_type) {
        depth += 1;
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::InvalidManifest {
                what: src.what(&format!("index {top_digest}")),
                reason: "indexes nested too deeply".into(),
            });
        }
        let what = src.what(&format!("index {}", fetched.digest));
        let index: Index = parse(&fetched.bytes, &what)?;
        let chosen = choose_platform(&index.manifests, platform, &what)?;
        fetched = src.fetch_child(chosen)?;
    }
    Ok(fetched)
}

/// Fetches every image manifest below `index` (at nesting level `depth`), in index order,
/// nested indexes followed and attestations skipped; `indexes` gets the indexes themselves
/// (outermost first), `manifests` the image manifests, each once.
pub(crate) fn fetch_all_platforms(
    src: &Source<'_>,
    index: FetchedManifest,
    top: &Digest,
    depth: usize,
    indexes: &mut Vec<FetchedManifest>,
    manifests: &mut Vec<FetchedManifest>,
) -> Result<()> {
    if depth > MAX_INDEX_DEPTH {
        return Err(Error::InvalidManifest {
            what: src.what(&format!("index {top}")),
            reason: "indexes nested too deeply".into(),
        });
    }
    let parsed: Index = parse(&index.bytes, &src.what(&format!("index {}", index.digest)))?;
    indexes.push(index);
    for d in parsed.manifests.iter().filter(|d| !d.is_attestation()) {
        let seen = |f: &FetchedManifest| f.digest == d.digest;
        if indexes.iter().any(seen) || manifests.iter().any(seen) {
            continue;
        }
        let child = src.fetch_child(d)?;
        if media_type::is_index(&child.media_type) {
            fetch_all_platforms(src, child, top, depth + 1, indexes, manifests)?;
        } else {
            manifests.push(child);
        }
    }
    Ok(())
}

/// Parses an image manifest (schema 2 only).
pub(crate) fn parse_manifest(
    src: &Source<'_>,
    fetched: FetchedManifest,
) -> Result<(FetchedManifest, Manifest)> {
    let what_manifest = src.what(&format!("manifest {}", fetched.digest));
    let manifest: Manifest = parse(&fetched.bytes, &what_manifest)?;
    if manifest.schema_version != 2 {
        return Err(Error::InvalidManifest {
            what: what_manifest,
            reason: format!(
                "schema version {} (only 2 is supported)",
                manifest.schema_version
            ),
        });
    }
    Ok((fetched, manifest))
}

/// Gets an image's config (from the store if it has it, else downloaded into `staging` and
/// checked), and checks it against the manifest and against `platform`.
fn prepare(
    store: &Store,
    src: &Source<'_>,
    staging: &Staging,
    fetched: FetchedManifest,
    manifest: Manifest,
    platform: Option<&Platform>,
) -> Result<Prepared> {
    let what_manifest = src.what(&format!("manifest {}", fetched.digest));
    let config_bytes = if store.has_blob(&manifest.config.digest) {
        store.read_json_blob(&manifest.config.digest)?
    } else {
        if manifest.config.size > hoist_core::store::MAX_JSON_SIZE {
            return Err(Error::InvalidManifest {
                what: what_manifest,
                reason: format!("the config is {} bytes: too big", manifest.config.size),
            });
        }
        let s = download(src.client, staging, src.repo, &manifest.config, &|_| {})?;
        std::fs::read(&s.path).map_err(|source| {
            Error::Store(hoist_core::Error::Io {
                path: s.path.clone(),
                source,
            })
        })?
    };
    let config = parse_config(src, &fetched.digest, &manifest, &config_bytes, platform)?;
    let diff_ids = config.rootfs.diff_ids.clone();
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::InvalidManifest {
            what: what_manifest,
            reason: format!(
                "{} layers but the config lists {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    Ok(Prepared {
        fetched,
        manifest,
        config_bytes,
        diff_ids,
    })
}

/// Parses an image's config and checks it is for `platform` (when one is asked for).
pub(crate) fn parse_config(
    src: &Source<'_>,
    manifest_digest: &Digest,
    manifest: &Manifest,
    config_bytes: &[u8],
    platform: Option<&Platform>,
) -> Result<ImageConfig> {
    let config = ImageConfig::parse(config_bytes).map_err(|e| Error::InvalidManifest {
        what: src.what(&format!("config {}", manifest.config.digest)),
        reason: e.to_string(),
    })?;
    if let Some(want) = platform
        && !want.matches(&config.platform())
    {
        return Err(Error::NoPlatform {
            what: src.what(&format!("manifest {manifest_digest}")),
            wanted: want.to_string(),
            available: vec![config.platform().to_string()],
        });
    }
    Ok(config)
}

/// Checks every layer of `img` against its diff_id: downloaded ones (in `staged`) by what was
/// computed as they arrived, the store's by its cache or by reading them. Returns the image's
/// downloaded layers with their diff_ids.
fn check_layers(
    store: &Store,
    src: &Source<'_>,
    staged: &HashMap<Digest, Staged>,
    img: &Prepared,
) -> Result<Vec<(Staged, Digest)>> {
    let mut out: Vec<(Staged, Digest)> = Vec::new();
    for (i, (l, expected)) in img.manifest.layers.iter().zip(&img.diff_ids).enumerate() {
        let found = match staged.get(&l.digest) {
            Some(s) => s.diff_id.clone().ok_or_else(|| Error::InvalidManifest {
                what: src.what(&format!("layer {i} ({})", l.digest)),
                reason: format!(
                    "{:?}-compressed but does not decompress: {}",
                    s.compression,
                    s.decode_error.clone().unwrap_or_default()
                ),
            })?,
            None => stored_diff_id(store, l)?,
        };
        if &found != expected {
            return Err(Error::InvalidManifest {
                what: src.what(&format!("layer {i} ({})", l.digest)),
                reason: format!("invalid diffID: the config says {expected}, the layer is {found}"),
            });
        }
        if let Some(s) = staged.get(&l.digest)
            && let LayerCheck::Invalid(why) = &s.layer_check
        {
            return Err(Error::InvalidManifest {
                what: src.what(&format!("layer {i} ({})", l.digest)),
                reason: format!("not a valid layer tar: {why}"),
            });
        }
        if let Some(s) = staged.get(&l.digest)
            && !out.iter().any(|(n, _)| n.digest == s.digest)
        {
            out.push((s.clone(), found));
        }
    }
    Ok(out)
}

/// The diff_id of a layer the store has: its own digest when it is uncompressed (the store
/// checked that digest when the blob came in), else the cached or computed one.
fn stored_diff_id(store: &Store, layer: &Descriptor) -> Result<Digest> {
    let path = store.blob_path(&layer.digest);
    let mut head = [0u8; COMPRESSION_MAGIC_MAX];
    let n = {
        use std::os::unix::fs::FileExt;
        let f = store.open_blob(&layer.digest)?;
        f.read_at(&mut head, 0)
            .map_err(|source| hoist_core::Error::Io { path, source })?
    };
    if Compression::sniff(&head[..n]) == Compression::None {
        return Ok(layer.digest.clone());
    }
    Ok(store.layer_uncompressed(layer)?.0)
}

/// Bytes [`Compression::sniff`] needs to tell every compression apart.
const COMPRESSION_MAGIC_MAX: usize = 6;

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidManifest {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// The index entry for the wanted platform (default: the host's).
pub(crate) fn choose_platform<'d>(
    descs: &'d [Descriptor],
    want: Option<&Platform>,
    what: &str,
) -> Result<&'d Descriptor> {
    let want = want.cloned().unwrap_or_else(Platform::host);
    let candidates: Vec<&Descriptor> = descs.iter().filter(|d| !d.is_attestation()).collect();
    if let Some(d) = candidates.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| want.matches(&p.to_platform()))
    }) {
        return Ok(d);
    }
    if candidates.len() == 1 && candidates[0].platform.is_none() {
        return Ok(candidates[0]);
    }
    Err(Error::NoPlatform {
        what: what.to_string(),
        wanted: want.to_string(),
        available: candidates
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| p.to_platform().to_string()))
            .collect(),
    })
}

/// Downloads one blob into staging, checking size and digest; retried when the connection
/// drops midway.
fn download(
    client: &Client,
    staging: &Staging,
    repo: &str,
    desc: &Descriptor,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<Staged> {
    let bytes = |n: u64| progress(PullEvent::Bytes(n));
    let what = format!("{}/{repo}: blob {}", client.registry(), desc.digest);
    let mut attempt = 1;
    // The first interruption is what the user needs to hear about, not only the last retry.
    let mut interrupted: Option<std::io::Error> = None;
    loop {
        let reader = match client.get_blob(repo, &desc.digest, desc.size) {
            Ok(r) => r,
            Err(e) => {
                return Err(match interrupted {
                    Some(first) => Error::Read {
                        registry: client.registry().to_string(),
                        what: format!(
                            "blob {} in repository {repo} (interrupted, then {} more \
                             attempt(s) failed, the last with: {})",
                            desc.digest,
                            attempt - 1,
                            error_chain(&e)
                        ),
                        source: first,
                    },
                    None => e,
                });
            }
        };
        match staging.stage(crate::metered::Metered::new(reader, &bytes), &what) {
            Ok(s) => {
                if s.size != desc.size {
                    return Err(Error::SizeMismatch {
                        what,
                        expected: desc.size,
                        found: s.size,
                    });
                }
                if s.digest != desc.digest {
                    return Err(Error::DigestMismatch {
                        what,
                        expected: desc.digest.clone(),
                        found: s.digest,
                    });
                }
                return Ok(s);
            }
            // Too many bytes is the registry's fault, not the connection's: no retry.
            Err(hoist_core::Error::Read { source, .. })
                if attempt < MAX_ATTEMPTS && source.kind() != std::io::ErrorKind::InvalidData =>
            {
                interrupted.get_or_insert(source);
                std::thread::sleep(std::time::Duration::from_millis(250) * attempt);
                attempt += 1;
            }
            Err(hoist_core::Error::Read { source, .. }) => {
                return Err(Error::Read {
                    registry: client.registry().to_string(),
                    what: format!("blob {} in repository {repo}", desc.digest),
                    source,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Downloads blobs, [`PARALLEL_DOWNLOADS`] at a time; the first error stops the others from
/// starting new downloads.
fn download_all(
    client: &Client,
    staging: &Staging,
    repo: &str,
    wanted: &[&Descriptor],
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<HashMap<Digest, Staged>> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Result<Staged>>> = Mutex::new(Vec::new());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_DOWNLOADS.min(wanted.len()) {
            s.spawn(|| {
                loop {
                    if failed.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let i = {
                        let mut n = next.lock().expect("never poisoned");
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(desc) = wanted.get(i) else { return };
                    progress(PullEvent::LayerDownloading(desc.digest.clone()));
                    let r = download(client, staging, repo, desc, progress);
                    if r.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    } else {
                        progress(PullEvent::LayerDone(desc.digest.clone()));
                    }
                    results.lock().expect("never poisoned").push(r);
                }
            });
        }
    });
    let mut out = HashMap::new();
    for r in results.into_inner().expect("never poisoned") {
        let s = r?;
        out.insert(s.digest.clone(), s);
    }
    Ok(out)
}
