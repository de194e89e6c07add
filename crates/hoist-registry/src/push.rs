//! `push`: an image of the store to a registry. The blobs the registry lacks are uploaded
//! (a `HEAD` first for each), then the manifest exactly as stored, so the pushed digest is the
//! store's manifest digest.

use std::sync::Mutex;

use hoist_core::store::{Image, Store};
use hoist_format::Digest;
use hoist_format::media_type;
use hoist_format::oci::Descriptor;
use hoist_format::reference::Reference;

use crate::client::Client;
use crate::error::{Error, Result};

/// Blobs uploaded at the same time: docker's default `max-concurrent-uploads` is 5; fewer
/// keep a slow link from splitting its bandwidth too thin.
pub const PARALLEL_UPLOADS: usize = 3;

/// What a push reports while it runs.
#[derive(Debug, Clone)]
pub enum PushEvent {
    /// The registry has this blob already.
    BlobExists(Digest),
    /// This blob is being uploaded.
    BlobUploading(Digest),
    /// This blob was uploaded.
    BlobPushed(Digest),
}

/// Options of [`push`].
#[derive(Default)]
pub struct PushOptions<'a> {
    /// Called as blobs are checked and uploaded.
    pub progress: Option<&'a (dyn Fn(PushEvent) + Sync)>,
}

impl std::fmt::Debug for PushOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions").finish_non_exhaustive()
    }
}

/// What [`push`] did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// The manifest's digest (as stored, and as the registry reported it).
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Blobs uploaded.
    pub uploaded: Vec<Digest>,
    /// Blobs the registry had already.
    pub existing: Vec<Digest>,
}

/// Pushes `image` (from `store`) to `dest` through `client` (a client of `dest`'s registry).
/// `dest` must have a tag, or the image's own manifest digest.
pub fn push(
    store: &Store,
    client: &Client,
    image: &Image,
    dest: &Reference,
    opts: &PushOptions<'_>,
) -> Result<PushReport> {
    let repo = dest.path();
    let target = match (dest.tag(), dest.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) if d == &image.manifest_digest => d.to_string(),
        (None, Some(d)) => {
            return Err(Error::Reference(format!(
                "cannot push to {dest}: the image's manifest is {}, not {d}",
                image.manifest_digest
            )));
        }
        (None, None) => hoist_format::reference::DEFAULT_TAG.to_string(),
    };
    let noop = |_: PushEvent| {};
    let progress: &(dyn Fn(PushEvent) + Sync) = opts.progress.unwrap_or(&noop);

    // Layers first, then the config (distribution checks that a manifest's blobs exist).
    let mut blobs: Vec<&Descriptor> = Vec::new();
    for d in image.manifest.layers.iter().chain([&image.manifest.config]) {
        if !blobs.iter().any(|b| b.digest == d.digest) {
            blobs.push(d);
        }
    }
    let next = Mutex::new(0usize);
    let outcome: Mutex<Vec<Result<(Digest, bool)>>> = Mutex::new(Vec::new());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_UPLOADS.min(blobs.len()) {
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
                    let Some(desc) = blobs.get(i) else { return };
                    let r = push_blob(store, client, repo, desc, progress);
                    if r.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    outcome.lock().expect("never poisoned").push(r);
                }
            });
        }
    });
    let mut uploaded = Vec::new();
    let mut existing = Vec::new();
    for r in outcome.into_inner().expect("never poisoned") {
        let (d, up) = r?;
        if up {
            uploaded.push(d);
        } else {
            existing.push(d);
        }
    }

    // The manifest's own mediaType wins: distribution refuses a Content-Type that differs.
    let declared: Option<String> = image.manifest.media_type.clone().filter(|m| !m.is_empty());
    let mt = declared
        .or_else(|| Some(image.manifest_media_type.clone()).filter(|m| media_type::is_manifest(m)))
        .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string());
    let digest = client.put_manifest(repo, &target, &mt, &image.manifest_bytes)?;
    Ok(PushReport {
        digest,
        size: image.manifest_bytes.len() as u64,
        uploaded,
        existing,
    })
}

/// Uploads one blob unless the registry has it; `true` when it was uploaded.
fn push_blob(
    store: &Store,
    client: &Client,
    repo: &str,
    desc: &Descriptor,
    progress: &(dyn Fn(PushEvent) + Sync),
) -> Result<(Digest, bool)> {
    if client.blob_size(repo, &desc.digest)? == Some(desc.size) {
        progress(PushEvent::BlobExists(desc.digest.clone()));
        return Ok((desc.digest.clone(), false));
    }
    let path = store.blob_path(&desc.digest);
    let on_disk = std::fs::metadata(&path)
        .map_err(|source| hoist_core::Error::Io {
            path: path.clone(),
            source,
        })?
        .len();
    if on_disk != desc.size {
        return Err(Error::SizeMismatch {
            what: format!("store blob {}", path.display()),
            expected: desc.size,
            found: on_disk,
        });
    }
    progress(PushEvent::BlobUploading(desc.digest.clone()));
    client.upload_blob(repo, &desc.digest, &path)?;
    progress(PushEvent::BlobPushed(desc.digest.clone()));
    Ok((desc.digest.clone(), true))
}
