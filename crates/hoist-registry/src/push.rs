//! `push`: an image of the store to a registry. The blobs the registry lacks are uploaded
//! (a `HEAD` first for each; a cross-repository mount when the store knows another repository
//! of the same registry that has the blob), then the manifest.
//!
//! Layers stored uncompressed are compressed (gzip by default, deterministic) before anything
//! is sent, into a scratch file, to learn the compressed digest: a layer the registry has is
//! then not uploaded, even from a store that never pushed it (as crane does; without the
//! scratch file the layer would be compressed a second time to upload it). The digest is
//! remembered in the store, so that the next push of the same layer only asks the registry
//! whether it has it. The pushed manifest lists the compressed layers, so its digest is not
//! the store's. With [`PushOptions::compress`] `None`, or when every layer is stored
//! compressed already, the manifest goes exactly as stored.

use std::sync::Mutex;

use std::io::Read;

use hoist_core::archive::transport::{BlobSource, ImageSet};
use hoist_core::hashio::{HashingWriter, VerifyingReader};
use hoist_core::store::{Image, Store};
use hoist_format::Digest;
use hoist_format::media_type::{self, Compression};
use hoist_format::oci::{Descriptor, Manifest};
use hoist_format::reference::Reference;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::metered::{Metered, REPORT_STEP};

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
    /// The registry mounted this blob from another repository (the second field).
    BlobMounted(Digest, String),
    /// The bytes of all the image's blobs as the source has them (sent once, first).
    Total(u64),
    /// This many more of them were uploaded, or found in the registry.
    Bytes(u64),
}

/// Options of [`push`]; the default compresses uncompressed layers with gzip.
pub struct PushOptions<'a> {
    /// How to compress layers the store keeps uncompressed (`None`: push them as they are).
    /// Layers stored compressed are pushed as they are in any case.
    pub compress: Compression,
    /// A repository (`registry/path`) that has the image's blobs, to mount them from when the
    /// destination is in the same registry (a copy between two repositories of one registry).
    pub mount_from: Option<String>,
    /// Called as blobs are checked and uploaded (with the store's digest of each blob).
    pub progress: Option<&'a (dyn Fn(PushEvent) + Sync)>,
}

impl Default for PushOptions<'_> {
    fn default() -> Self {
        PushOptions {
            compress: Compression::Gzip,
            mount_from: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for PushOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field("compress", &self.compress)
            .finish_non_exhaustive()
    }
}

/// What [`push`] did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// The pushed manifest's digest (as the registry reported it).
    pub digest: Digest,
    /// The pushed manifest's size in bytes.
    pub size: u64,
    /// The pushed manifest's media type.
    pub media_type: String,
    /// Blobs uploaded (digests as pushed).
    pub uploaded: Vec<Digest>,
    /// Blobs the registry had already, or mounted from another repository.
    pub existing: Vec<Digest>,
    /// What went wrong without failing the push (the store could not remember something).
    pub warnings: Vec<String>,
}

/// What became of one blob.
#[derive(Debug, Clone)]
struct Pushed {
    /// The descriptor as the pushed manifest lists it.
    desc: Descriptor,
    uploaded: bool,
}

/// Pushes `image` (from `store`) to `dest` through `client` (a client of `dest`'s registry).
/// `dest` must have a tag, or the digest the pushed manifest will have.
pub fn push(
    store: &Store,
    client: &Client,
    image: &Image,
    dest: &Reference,
    opts: &PushOptions<'_>,
) -> Result<PushReport> {
    let set = ImageSet::from_store(store, image)?;
    push_set(store, Some(store), client, &set, dest, opts)
}

/// Where a reference puts a manifest.
fn target_of(dest: &Reference) -> Target {
    match (dest.tag(), dest.digest()) {
        (Some(t), _) => Target::Tag(t.to_string()),
        (None, Some(d)) => Target::Digest(d.clone()),
        (None, None) => Target::Tag(hoist_format::reference::DEFAULT_TAG.to_string()),
    }
}

/// Pushes one image's blobs and manifest (under `target`).
fn push_image(
    source: &dyn BlobSource,
    cache: Option<&Store>,
    client: &Client,
    image: &Image,
    dest: &Reference,
    target: Target,
    opts: &PushOptions<'_>,
) -> Result<PushReport> {
    let repo = dest.path();
    let noop = |_: PushEvent| {};
    let progress: &(dyn Fn(PushEvent) + Sync) = opts.progress.unwrap_or(&noop);
    let docker = image.manifest.media_type.as_deref() == Some(media_type::DOCKER_MANIFEST)
        || image.manifest_media_type == media_type::DOCKER_MANIFEST;
    // zstd layers exist only in OCI manifests: a docker manifest becomes an OCI one.
    let to_oci = docker && opts.compress == Compression::Zstd;
    let job = Job {
        source,
        cache,
        client,
        repo,
        compress: opts.compress,
        mount_from: opts.mount_from.as_deref(),
        oci: !docker || to_oci,
        progress,
        warnings: Mutex::new(Vec::new()),
    };

    // Every blob, once (distribution checks only that a manifest's blobs exist when it comes).
    let mut blobs: Vec<(&Descriptor, bool)> = Vec::new();
    for (d, is_layer) in image
        .manifest
        .layers
        .iter()
        .map(|l| (l, true))
        .chain([(&image.manifest.config, false)])
    {
        if !blobs.iter().any(|(b, _)| b.digest == d.digest) {
            blobs.push((d, is_layer));
        }
    }
    progress(PushEvent::Total(blobs.iter().map(|(d, _)| d.size).sum()));
    // The config first, on its own: one small request that fails fast (no credentials, a
    // registry that is down) before any layer is compressed to learn its digest.
    let mut pushed: Vec<(Digest, Pushed)> = Vec::new();
    if let Some(&(config, false)) = blobs.last() {
        blobs.pop();
        pushed.push((config.digest.clone(), job.blob(config, false)?));
    }
    let next = Mutex::new(0usize);
    let outcome: Mutex<Vec<(Digest, Result<Pushed>)>> = Mutex::new(Vec::new());
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
                    let Some((desc, is_layer)) = blobs.get(i) else {
                        return;
                    };
                    let r = job.blob(desc, *is_layer);
                    if r.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    outcome
                        .lock()
                        .expect("never poisoned")
                        .push((desc.digest.clone(), r));
                }
            });
        }
    });
    for (d, r) in outcome.into_inner().expect("never poisoned") {
        pushed.push((d, r?));
    }
    let as_pushed = |d: &Descriptor| -> Descriptor {
        let p = &pushed
            .iter()
            .find(|(k, _)| k == &d.digest)
            .expect("every blob was pushed")
            .1
            .desc;
        Descriptor {
            media_type: p.media_type.clone(),
            digest: p.digest.clone(),
            size: p.size,
            ..d.clone()
        }
    };
    let changed = to_oci
        || image
            .manifest
            .layers
            .iter()
            .any(|l| as_pushed(l).digest != l.digest);
    let (manifest_bytes, mt) = if changed {
        let mut m: Manifest = image.manifest.clone();
        m.layers = m.layers.iter().map(as_pushed).collect();
        if to_oci {
            m.media_type = Some(media_type::OCI_MANIFEST.to_string());
            m.config.media_type = media_type::OCI_CONFIG.to_string();
        }
        let bytes = serde_json::to_vec(&m).map_err(|e| Error::InvalidManifest {
            what: format!("manifest of {}", image.id()),
            reason: format!("cannot be written: {e}"),
        })?;
        let mt = m
            .media_type
            .clone()
            .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string());
        (bytes, mt)
    } else {
        // The manifest's own mediaType wins: distribution refuses a Content-Type that differs.
        let declared: Option<String> = image.manifest.media_type.clone().filter(|m| !m.is_empty());
        let mt = declared
            .or_else(|| {
                Some(image.manifest_media_type.clone()).filter(|m| media_type::is_manifest(m))
            })
            .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string());
        (image.manifest_bytes.clone(), mt)
    };
    let digest = Digest::of(&manifest_bytes);
    let target = target.resolve(&digest, dest)?;
    let digest = client.put_manifest(repo, &target, &mt, &manifest_bytes)?;
    let (mut uploaded, mut existing) = (Vec::new(), Vec::new());
    for (_, p) in pushed {
        if p.uploaded {
            uploaded.push(p.desc.digest);
        } else {
            existing.push(p.desc.digest);
        }
    }
    Ok(PushReport {
        digest,
        size: manifest_bytes.len() as u64,
        media_type: mt,
        uploaded,
        existing,
        warnings: job.warnings.into_inner().expect("never poisoned"),
    })
}

/// A tag, or the digest the pushed manifest must have, or whatever digest it has (an index's
/// child).
enum Target {
    Tag(String),
    Digest(Digest),
    OwnDigest,
}

impl Target {
    /// The tag or digest to `PUT` a manifest of `digest` under.
    fn resolve(self, digest: &Digest, dest: &Reference) -> Result<String> {
        match self {
            Target::Tag(t) => Ok(t),
            Target::OwnDigest => Ok(digest.to_string()),
            Target::Digest(d) if &d == digest => Ok(d.to_string()),
            Target::Digest(d) => Err(Error::Reference(format!(
                "cannot push to {dest}: what is pushed is {digest}, not {d}"
            ))),
        }
    }
}

/// Pushes an image set whose blobs come from `source` (`hoist copy`, or the store) to `dest`:
/// one image, or (`copy --all`, a name the store keeps as a multi-platform index) every image
/// by digest, then the index under `dest`'s tag — as found when no image
/// changed (no layer needed compressing, nothing left out), else rewritten with the pushed
/// images' descriptors in the same order.
///
/// `cache` is the store whose memory of compressed digests and blob locations is used and
/// updated (the store itself when it is the source; `None` remembers nothing).
pub fn push_set(
    source: &dyn BlobSource,
    cache: Option<&Store>,
    client: &Client,
    set: &ImageSet,
    dest: &Reference,
    opts: &PushOptions<'_>,
) -> Result<PushReport> {
    if set.index.is_none() {
        return push_image(
            source,
            cache,
            client,
            set.first(),
            dest,
            target_of(dest),
            opts,
        );
    }
    // One total for the whole set (each blob once), not one per platform.
    let noop = |_: PushEvent| {};
    let progress: &(dyn Fn(PushEvent) + Sync) = opts.progress.unwrap_or(&noop);
    let mut all: Vec<&Descriptor> = Vec::new();
    for image in &set.images {
        for d in image.manifest.layers.iter().chain([&image.manifest.config]) {
            if !all.iter().any(|a| a.digest == d.digest) {
                all.push(d);
            }
        }
    }
    progress(PushEvent::Total(all.iter().map(|d| d.size).sum()));
    let but_totals = |e: PushEvent| {
        if !matches!(e, PushEvent::Total(_)) {
            progress(e);
        }
    };
    let child_opts = PushOptions {
        compress: opts.compress,
        mount_from: opts.mount_from.clone(),
        progress: Some(&but_totals),
    };
    let (mut uploaded, mut existing, mut written) = (Vec::new(), Vec::new(), Vec::new());
    let mut warnings = Vec::new();
    for image in &set.images {
        let r = push_image(
            source,
            cache,
            client,
            image,
            dest,
            Target::OwnDigest,
            &child_opts,
        )?;
        uploaded.extend(r.uploaded);
        existing.extend(r.existing);
        warnings.extend(r.warnings);
        written.push((
            image.manifest_digest.clone(),
            Descriptor::new(&r.media_type, r.digest, r.size),
        ));
    }
    let (bytes, media_type) = set
        .index_as_written(&written)?
        .expect("a set with an index gives one");
    if let Some(index) = &set.index {
        let left_out = index.parsed.manifests.len() - written.len();
        if left_out > 0 {
            warnings.push(format!(
                "{left_out} entries of index {} are not copied (attestations, or images the \
                 store does not hold): the index pushed is rewritten without them",
                index.descriptor.digest
            ));
        }
    }
    let tag = target_of(dest).resolve(&Digest::of(&bytes), dest)?;
    let digest = client.put_manifest(dest.path(), &tag, &media_type, &bytes)?;
    Ok(PushReport {
        digest,
        size: bytes.len() as u64,
        media_type,
        uploaded,
        existing,
        warnings,
    })
}

/// What every blob of one push shares.
struct Job<'a> {
    source: &'a dyn BlobSource,
    cache: Option<&'a Store>,
    client: &'a Client,
    repo: &'a str,
    compress: Compression,
    mount_from: Option<&'a str>,
    /// Whether the pushed manifest is an OCI one (for the compressed layers' media types).
    oci: bool,
    progress: &'a (dyn Fn(PushEvent) + Sync),
    /// What went wrong without failing the push.
    warnings: Mutex<Vec<String>>,
}

impl Job<'_> {
    /// `registry/repository`, as the store remembers blob sources.
    fn here(&self) -> String {
        format!("{}/{}", self.client.registry(), self.repo)
    }

    /// Pushes one blob (a layer is compressed first when it is uncompressed and compression
    /// is asked for).
    fn blob(&self, desc: &Descriptor, is_layer: bool) -> Result<Pushed> {
        if is_layer && self.compress != Compression::None && self.is_plain_tar(desc)? {
            return self.compressed_layer(desc);
        }
        let media_type = if self.oci {
            oci_layer_type(&desc.media_type)
        } else {
            desc.media_type.clone()
        };
        let out = Descriptor {
            media_type,
            ..desc.clone()
        };
        if let Some(done) = self.reuse(desc, &out)? {
            return Ok(done);
        }
        (self.progress)(PushEvent::BlobUploading(desc.digest.clone()));
        let source = self.source;
        let bytes = |n: u64| (self.progress)(PushEvent::Bytes(n));
        let open = || -> std::io::Result<Box<dyn std::io::Read + Send + '_>> {
            let raw = source.open_blob(desc).map_err(std::io::Error::other)?;
            Ok(Box::new(Metered::new(raw, &bytes)))
        };
        self.client
            .upload_blob(self.repo, &desc.digest, desc.size, &open)?;
        self.remember_source(&desc.digest)?;
        (self.progress)(PushEvent::BlobPushed(desc.digest.clone()));
        Ok(Pushed {
            desc: out,
            uploaded: true,
        })
    }

    /// Whether a layer is a plain distributable tar (`…layer.v1.tar`, `…rootfs.diff.tar`) that
    /// is not secretly compressed: the only layers hoist compresses. Other media types
    /// (artifacts, foreign and non-distributable layers) go as they are.
    fn is_plain_tar(&self, desc: &Descriptor) -> Result<bool> {
        if desc.media_type != media_type::OCI_LAYER && desc.media_type != media_type::DOCKER_LAYER {
            return Ok(false);
        }
        let mut head = [0u8; COMPRESSION_MAGIC_MAX];
        let mut r = self.source.open_blob(desc)?;
        let mut n = 0;
        while n < head.len() {
            match r.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Store(hoist_core::Error::Read {
                        what: format!("layer {}", desc.digest),
                        source,
                    }));
                }
            }
        }
        Ok(Compression::sniff(&head[..n]) == Compression::None)
    }

    /// Remembers where `digest` now is. The store's memory is a cache: failing to write it
    /// (a read-only store) costs a later push some work, not this one; it is reported.
    fn remember_source(&self, digest: &Digest) -> Result<()> {
        if let Some(store) = self.cache
            && let Err(e) = store.remember_source(digest, &self.here())
        {
            self.warn(e);
        }
        Ok(())
    }

    fn warn(&self, e: hoist_core::Error) {
        self.warnings
            .lock()
            .expect("never poisoned")
            .push(format!("the store could not remember a pushed blob: {e}"));
    }

    /// The blob `out` describes, if the registry has it or mounts it from a repository the
    /// store knows; `shown` is the blob as the source has it, for progress.
    fn reuse(&self, shown: &Descriptor, out: &Descriptor) -> Result<Option<Pushed>> {
        let (stored_size, shown) = (shown.size, &shown.digest);
        if self.client.blob_size(self.repo, &out.digest)? == Some(out.size) {
            self.remember_source(&out.digest)?;
            (self.progress)(PushEvent::Bytes(stored_size));
            (self.progress)(PushEvent::BlobExists(shown.clone()));
            return Ok(Some(Pushed {
                desc: out.clone(),
                uploaded: false,
            }));
        }
        let prefix = format!("{}/", self.client.registry());
        let mut known = self
            .cache
            .map(|s| s.sources(&out.digest))
            .unwrap_or_default();
        known.extend(self.mount_from.map(str::to_string));
        for source in known {
            let Some(from) = source.strip_prefix(&prefix).filter(|f| *f != self.repo) else {
                continue;
            };
            if self.client.mount_blob(self.repo, &out.digest, from)? {
                self.remember_source(&out.digest)?;
                (self.progress)(PushEvent::Bytes(stored_size));
                (self.progress)(PushEvent::BlobMounted(shown.clone(), from.to_string()));
                return Ok(Some(Pushed {
                    desc: out.clone(),
                    uploaded: false,
                }));
            }
        }
        Ok(None)
    }

    /// An uncompressed layer, compressed with `self.compress`. Its compressed digest is known
    /// before anything is sent: remembered from an earlier push, or learned by compressing the
    /// layer (hoist's compression is deterministic, so the digest is the one any earlier push
    /// of this layer gave). The registry is asked for that blob (HEAD, then a mount from a
    /// repository the store knows); only a blob it lacks is uploaded, from the spool the
    /// compression wrote (or, without a spool, compressed again).
    fn compressed_layer(&self, desc: &Descriptor) -> Result<Pushed> {
        let algo = self.compress;
        let media_type = match (algo, self.oci) {
            (Compression::Zstd, _) => media_type::OCI_LAYER_ZSTD,
            (_, true) => media_type::OCI_LAYER_GZIP,
            (_, false) => media_type::DOCKER_LAYER_GZIP,
        };
        let diff_id = &desc.digest;
        let as_pushed = |digest: Digest, size: u64| Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            ..desc.clone()
        };
        let remembered = self.cache.and_then(|s| s.compressed(diff_id, algo));
        if let Some((digest, size)) = &remembered
            && let Some(done) = self.reuse(desc, &as_pushed(digest.clone(), *size))?
        {
            return Ok(done);
        }
        // Not remembered, or remembered and missing: compressed now, so that what is uploaded
        // is what this hoist compresses it to (a remembered digest may be another version's).
        let Spooled {
            digest, size, file, ..
        } = self.spool_compressed(desc)?;
        if remembered.as_ref() != Some(&(digest.clone(), size)) {
            if let Some(store) = self.cache
                && let Err(e) = store.remember_compressed(diff_id, algo, &digest, size)
            {
                self.warn(e);
            }
            if let Some(done) = self.reuse(desc, &as_pushed(digest.clone(), size))? {
                return Ok(done);
            }
        }
        (self.progress)(PushEvent::BlobUploading(diff_id.clone()));
        let source = self.source;
        let bytes = |n: u64| (self.progress)(PushEvent::Bytes(n));
        let open = || -> std::io::Result<Box<dyn std::io::Read + Send + '_>> {
            Ok(match &file {
                Some(f) => Box::new(SpoolReader {
                    file: f,
                    pos: 0,
                    size,
                    shown_size: desc.size,
                    shown: 0,
                    report: &bytes,
                }),
                // Compressed again: to the same bytes, checked before the registry sees the
                // last of them.
                None => {
                    let raw = source.open_blob(desc).map_err(std::io::Error::other)?;
                    Box::new(VerifyingReader::new(
                        hoist_core::compress::encoder(algo, Metered::new(raw, &bytes))?,
                        digest.clone(),
                        size,
                        format!("layer {diff_id} compressed again"),
                    ))
                }
            })
        };
        self.client.upload_blob(self.repo, &digest, size, &open)?;
        self.remember_source(&digest)?;
        (self.progress)(PushEvent::BlobPushed(diff_id.clone()));
        Ok(Pushed {
            desc: as_pushed(digest, size),
            uploaded: true,
        })
    }

    /// Compresses a layer with `self.compress`, hashing it and keeping the result in an
    /// anonymous scratch file (in the store's `hoist/tmp`, else the system's temporary
    /// directory) for the upload. Where no scratch file can be made or written (a read-only
    /// store, a full disk), only the digest and size are learned, with a warning.
    fn spool_compressed(&self, desc: &Descriptor) -> Result<Spooled> {
        let dir = self
            .cache
            .map_or_else(std::env::temp_dir, Store::scratch_dir);
        let scratch = hoist_core::store::anonymous_file_in(&dir).map_err(|e| e.to_string());
        let raw = self.source.open_blob(desc)?;
        let what = format!("a scratch file in {}", dir.display());
        let spooled = spool(raw, self.compress, scratch, &what).map_err(|source| {
            Error::Store(hoist_core::Error::Read {
                what: format!("layer {} ({:?}-compressed)", desc.digest, self.compress),
                source,
            })
        })?;
        if let Some(why) = &spooled.lost {
            self.warnings.lock().expect("never poisoned").push(format!(
                "layer {} could not be kept compressed for its upload ({why}): it is compressed \
                 again if the registry lacks it",
                desc.digest
            ));
        }
        Ok(spooled)
    }
}

/// Compresses `raw` with `algo` into `scratch` (`what`, for messages), hashing what comes
/// out. A scratch file that could not be made (`Err`: why) or written is given up, and why
/// is said: the digest and size are learned all the same.
fn spool(
    raw: impl Read + Send,
    algo: Compression,
    scratch: std::result::Result<std::fs::File, String>,
    what: &str,
) -> std::io::Result<Spooled> {
    let mut compressed = hoist_core::compress::encoder(algo, raw)?;
    let spool =
        scratch.map(|f| std::io::BufWriter::with_capacity(hoist_core::compress::IO_BUF_SIZE, f));
    let mut out = HashingWriter::new(SpoolWriter { spool, what });
    std::io::copy(&mut compressed, &mut out)?;
    let (digest, size, SpoolWriter { spool, .. }) = out.finish();
    let written = spool.map(|w| {
        w.into_inner()
            .map_err(|e| format!("writing {what}: {}", e.error()))
    });
    let (file, lost) = match written {
        Ok(Ok(f)) => (Some(f), None),
        Ok(Err(why)) | Err(why) => (None, Some(why)),
    };
    Ok(Spooled {
        digest,
        size,
        file,
        lost,
    })
}

/// A layer compressed by [`spool`].
#[derive(Debug)]
struct Spooled {
    digest: Digest,
    size: u64,
    /// The compressed bytes, when they could be kept.
    file: Option<std::fs::File>,
    /// Why they could not.
    lost: Option<String>,
}

/// Writes to a spool file (`what`, for messages) while it can; after a failed write it
/// holds why, and the bytes still count for the hash around it.
struct SpoolWriter<'a> {
    spool: std::result::Result<std::io::BufWriter<std::fs::File>, String>,
    what: &'a str,
}

impl std::io::Write for SpoolWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(w) = &mut self.spool
            && let Err(e) = w.write_all(buf)
        {
            self.spool = Err(format!("writing {}: {e}", self.what));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads a spool file from its start (its own offset, so that every upload attempt starts
/// again) and reports progress in the uncompressed bytes the push's total counts:
/// `shown_size` for the whole `size` bytes of the file.
struct SpoolReader<'a> {
    file: &'a std::fs::File,
    pos: u64,
    size: u64,
    shown_size: u64,
    /// Progress reported so far.
    shown: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

impl std::io::Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        let now = if n == 0 || self.pos >= self.size {
            self.shown_size
        } else {
            // In u128: the product of two u64 sizes may not fit in u64; the quotient does.
            let scaled = u128::from(self.pos) * u128::from(self.shown_size) / u128::from(self.size);
            u64::try_from(scaled).unwrap_or(self.shown_size)
        };
        if now >= self.shown + REPORT_STEP || (now == self.shown_size && now > self.shown) {
            (self.report)(now - self.shown);
            self.shown = now;
        }
        Ok(n)
    }
}

/// Bytes [`Compression::sniff`] needs to tell every compression apart.
const COMPRESSION_MAGIC_MAX: usize = 6;

/// The OCI media type of a docker layer media type (OCI ones are kept).
fn oci_layer_type(mt: &str) -> String {
    match mt {
        media_type::DOCKER_LAYER => media_type::OCI_LAYER,
        media_type::DOCKER_LAYER_GZIP => media_type::OCI_LAYER_GZIP,
        media_type::DOCKER_LAYER_ZSTD => media_type::OCI_LAYER_ZSTD,
        media_type::DOCKER_CONFIG => media_type::OCI_CONFIG,
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    /// Test input that compresses: tar-like text, a few MiB.
    fn layer() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("usr/share/doc/file-{i}.txt {}\n", i % 977).into_bytes())
            .collect()
    }

    fn compressed(algo: Compression, raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        hoist_core::compress::encoder(algo, raw)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn a_spool_holds_what_the_compressor_gives_and_its_digest() {
        let raw = layer();
        for algo in [Compression::Gzip, Compression::Zstd] {
            let expected = compressed(algo, &raw);
            let s = spool(&raw[..], algo, Ok(tempfile::tempfile().unwrap()), "f").unwrap();
            assert_eq!(s.digest, Digest::of(&expected), "{algo:?}");
            assert_eq!(s.size, expected.len() as u64);
            assert!(s.lost.is_none());
            let mut kept = Vec::new();
            let mut f = s.file.unwrap();
            f.rewind().unwrap();
            f.read_to_end(&mut kept).unwrap();
            assert!(kept == expected, "{algo:?}: the spool differs");
        }
    }

    #[test]
    fn without_a_spool_the_digest_is_learned_all_the_same() {
        let raw = layer();
        let expected = compressed(Compression::Gzip, &raw);
        // No scratch file could be made.
        let s = spool(&raw[..], Compression::Gzip, Err("no room".into()), "f").unwrap();
        assert_eq!(
            (s.digest, s.size, s.lost.as_deref()),
            (
                Digest::of(&expected),
                expected.len() as u64,
                Some("no room")
            )
        );
        assert!(s.file.is_none());
        // One that refuses writes (opened read-only): given up, with the system's reason.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"").unwrap();
        let s = spool(
            &raw[..],
            Compression::Gzip,
            Ok(std::fs::File::open(&p).unwrap()),
            "the file",
        )
        .unwrap();
        assert_eq!(s.digest, Digest::of(&expected));
        assert!(s.file.is_none());
        assert!(
            s.lost
                .as_deref()
                .unwrap()
                .starts_with("writing the file: Bad file descriptor"),
            "{:?}",
            s.lost
        );
    }

    #[test]
    fn a_spool_reader_starts_at_zero_and_reports_uncompressed_bytes() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        // The file's offset is at its end: every reader reads from 0 on its own.
        let shown = std::sync::Mutex::new(Vec::new());
        let report = |n: u64| shown.lock().unwrap().push(n);
        for _ in 0..2 {
            let mut r = SpoolReader {
                file: &f,
                pos: 0,
                size: data.len() as u64,
                shown_size: 10 * data.len() as u64,
                shown: 0,
                report: &report,
            };
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert!(back == data);
            let steps = std::mem::take(&mut *shown.lock().unwrap());
            assert_eq!(steps.iter().sum::<u64>(), 30_000_000);
            assert!(steps[..steps.len() - 1].iter().all(|&n| n >= REPORT_STEP));
        }
    }
}
