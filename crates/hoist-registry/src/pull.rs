//! `pull`: an image from a registry into the store, with the atomicity of `load`.
//!
//! The manifest is resolved (an index narrowed to one platform), the config and the layers the
//! store lacks are streamed into the store's staging area a few at a time, each checked against
//! its digest and size as it arrives and every layer against the config's diff_ids. Only then
//! are the blobs renamed into the store and the name set in `index.json`: a failed pull leaves
//! the store as it was.

use std::collections::HashMap;
use std::sync::Mutex;

use hoist_core::store::{Staged, Staging, Store};
use hoist_format::Digest;
use hoist_format::config::ImageConfig;
use hoist_format::media_type::{self, ANNOTATION_DOCKER_REFERENCE_TYPE, Compression};
use hoist_format::oci::{Descriptor, Index, Manifest};
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

use crate::client::{Client, MAX_ATTEMPTS};
use crate::error::{Error, Result};

/// Blobs downloaded at the same time: docker's default `max-concurrent-downloads`.
pub const PARALLEL_DOWNLOADS: usize = 3;

/// Indexes nested deeper than this are refused (real ones have one level).
const MAX_INDEX_DEPTH: usize = 4;

/// What a pull reports while it runs.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// The store already has this layer.
    LayerExists(Digest),
    /// This layer is being downloaded.
    LayerDownloading(Digest),
    /// This layer was downloaded and verified.
    LayerDone(Digest),
}

/// Options of [`pull`].
#[derive(Default)]
pub struct PullOptions<'a> {
    /// Platform to take from an index (default: the host's).
    pub platform: Option<Platform>,
    /// Called as layers are found, downloaded and verified.
    pub progress: Option<&'a (dyn Fn(PullEvent) + Sync)>,
}

impl std::fmt::Debug for PullOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("platform", &self.platform)
            .finish()
    }
}

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The digest of what the reference resolved to (the index, for a multi-platform image):
    /// docker's `Digest:` line.
    pub digest: Digest,
    /// The image ID (config digest).
    pub id: Digest,
    /// The image manifest the store now holds.
    pub manifest: Descriptor,
    /// The name set (`None` when pulled by digest only: the image is kept untagged).
    pub name: Option<Reference>,
    /// False when the name already pointed at this manifest (docker's "Image is up to date").
    pub changed: bool,
    /// The image the name was taken from, if it named another one.
    pub moved_from: Option<Digest>,
    /// Layers downloaded (the others were in the store already).
    pub downloaded: Vec<Digest>,
}

/// Pulls `reference` from its registry (through `client`) into `store`.
pub fn pull(
    store: &Store,
    client: &Client,
    reference: &Reference,
    opts: &PullOptions<'_>,
) -> Result<PullReport> {
    let repo = reference.path();
    let tag_or_digest = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => hoist_format::reference::DEFAULT_TAG.to_string(),
    };
    let top = client.get_manifest(repo, &tag_or_digest)?;
    let where_ = |what: &str| format!("{}/{repo}: {what}", client.registry());
    let mut fetched = top.clone();
    let mut depth = 0;
    while media_type::is_index(&fetched.media_type) {
        depth += 1;
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::InvalidManifest {
                what: where_(&format!("index {}", top.digest)),
                reason: "indexes nested too deeply".into(),
            });
        }
        let what = where_(&format!("index {}", fetched.digest));
        let index: Index = parse(&fetched.bytes, &what)?;
        let chosen = choose_platform(&index.manifests, opts.platform.as_ref(), &what)?;
        let next = client.get_manifest(repo, &chosen.digest.to_string())?;
        if next.bytes.len() as u64 != chosen.size {
            return Err(Error::SizeMismatch {
                what: where_(&format!("manifest {}", chosen.digest)),
                expected: chosen.size,
                found: next.bytes.len() as u64,
            });
        }
        fetched = next;
    }
    let what_manifest = where_(&format!("manifest {}", fetched.digest));
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

    let _ingest = store.ingest_lock()?;
    let mut staging = store.staging()?;

    // The config: from the store if it has it, else downloaded and checked.
    let config_bytes = if store.has_blob(&manifest.config.digest) {
        store.read_json_blob(&manifest.config.digest)?
    } else {
        if manifest.config.size > hoist_core::store::MAX_JSON_SIZE {
            return Err(Error::InvalidManifest {
                what: what_manifest,
                reason: format!("the config is {} bytes: too big", manifest.config.size),
            });
        }
        let s = download(client, &staging, repo, &manifest.config)?;
        std::fs::read(&s.path).map_err(|source| {
            Error::Store(hoist_core::Error::Io {
                path: s.path.clone(),
                source,
            })
        })?
    };
    let config_what = where_(&format!("config {}", manifest.config.digest));
    let config = ImageConfig::parse(&config_bytes).map_err(|e| Error::InvalidManifest {
        what: config_what.clone(),
        reason: e.to_string(),
    })?;
    if let Some(want) = &opts.platform
        && !want.matches(&config.platform())
    {
        return Err(Error::NoPlatform {
            what: what_manifest,
            wanted: want.to_string(),
            available: vec![config.platform().to_string()],
        });
    }
    let diff_ids = &config.rootfs.diff_ids;
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

    let noop = |_: PullEvent| {};
    let progress: &(dyn Fn(PullEvent) + Sync) = opts.progress.unwrap_or(&noop);

    // Layers the store lacks, each once.
    let mut wanted: Vec<&Descriptor> = Vec::new();
    for l in &manifest.layers {
        if store.has_blob(&l.digest) {
            progress(PullEvent::LayerExists(l.digest.clone()));
        } else if !wanted.iter().any(|w| w.digest == l.digest) {
            wanted.push(l);
        }
    }
    let staged = download_all(client, &staging, repo, &wanted, progress)?;

    // Every layer against its diff_id, before anything becomes visible.
    let mut new_layers: Vec<(Staged, Digest)> = Vec::new();
    for (i, (l, expected)) in manifest.layers.iter().zip(diff_ids).enumerate() {
        let found = match staged.get(&l.digest) {
            Some(s) => s.diff_id.clone().ok_or_else(|| Error::InvalidManifest {
                what: where_(&format!("layer {i} ({})", l.digest)),
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
                what: where_(&format!("layer {i} ({})", l.digest)),
                reason: format!("invalid diffID: the config says {expected}, the layer is {found}"),
            });
        }
        if let Some(s) = staged.get(&l.digest)
            && !new_layers.iter().any(|(n, _)| n.digest == s.digest)
        {
            new_layers.push((s.clone(), found));
        }
    }

    // Make it visible: blobs first, then the name.
    let m = staging.stage_bytes(&fetched.bytes)?;
    let c = staging.stage_bytes(&config_bytes)?;
    let mut blobs: Vec<Staged> = new_layers.iter().map(|(s, _)| s.clone()).collect();
    blobs.push(m);
    blobs.push(c);
    staging.commit(&blobs)?;
    for (s, diff_id) in &new_layers {
        if s.compression != Compression::None {
            store.remember_layer(&s.digest, diff_id, s.uncompressed_size)?;
        }
    }
    let desc = Descriptor::new(
        &fetched.media_type,
        fetched.digest.clone(),
        fetched.bytes.len() as u64,
    );
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
            Some(n) => Store::tag_entries(entries, n, &desc, &ids)
                .filter(|old| old != &manifest.config.digest),
            None => {
                Store::keep_untagged(entries, &desc);
                None
            }
        };
        Ok((!before, moved))
    })?;
    Ok(PullReport {
        digest: top.digest,
        id: manifest.config.digest.clone(),
        manifest: desc,
        name,
        changed,
        moved_from,
        downloaded: wanted.iter().map(|d| d.digest.clone()).collect(),
    })
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

/// Attestations and other non-images in an index (buildkit's `unknown/unknown`).
fn is_attestation(d: &Descriptor) -> bool {
    d.annotation(ANNOTATION_DOCKER_REFERENCE_TYPE).is_some()
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" || p.architecture == "unknown")
}

/// The index entry for the wanted platform (default: the host's).
fn choose_platform<'d>(
    descs: &'d [Descriptor],
    want: Option<&Platform>,
    what: &str,
) -> Result<&'d Descriptor> {
    let want = want.cloned().unwrap_or_else(Platform::host);
    let candidates: Vec<&Descriptor> = descs.iter().filter(|d| !is_attestation(d)).collect();
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
fn download(client: &Client, staging: &Staging, repo: &str, desc: &Descriptor) -> Result<Staged> {
    let what = format!("{}/{repo}: blob {}", client.registry(), desc.digest);
    let mut attempt = 1;
    loop {
        let reader = client.get_blob(repo, &desc.digest, desc.size)?;
        match staging.stage(reader, &what) {
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
                    let r = download(client, staging, repo, desc);
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
