//! Staging of new blobs: written and hashed in `hoist/tmp/<pid>-<n>/`, made visible by rename.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use hoist_format::Digest;

use super::layercheck::{Checker, LayerCheck};
use super::{Store, sync_dir};
use crate::compress::{Compression, IO_BUF_SIZE, Peeked};
use crate::error::{Error, IoContext, Result};
use crate::hashio::{HashingReader, HashingWriter, TeeReader};
use crate::layerindex::LayerIndex;

/// A layer check's outcome and, for a valid layer, its index.
type Checked = (LayerCheck, Option<LayerIndex>);

/// A blob written to the staging area, with what was learned while writing it.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The staged file.
    pub path: PathBuf,
    /// sha256 of the bytes.
    pub digest: Digest,
    /// Byte count.
    pub size: u64,
    /// Compression detected from the first bytes.
    pub compression: Compression,
    /// sha256 of the decompressed stream (= `digest` when uncompressed); `None` when the stream
    /// looked compressed but did not decode (then `decode_error` says why).
    pub diff_id: Option<Digest>,
    /// Size of the decompressed stream.
    pub uncompressed_size: u64,
    /// Why decoding failed, for the error message if this blob turns out to be a layer.
    pub decode_error: Option<String>,
    /// The (decompressed) bytes read as a layer tar, checked in the same pass as the hash;
    /// looked at only if this blob turns out to be a layer.
    pub layer_check: LayerCheck,
    /// The layer's index, made in the same pass as the check (valid layers only); written
    /// next to the blob when it is committed.
    pub index: Option<std::sync::Arc<LayerIndex>>,
}

/// A staging directory; everything in it is removed when it is dropped.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    store: Store,
    counter: std::sync::atomic::AtomicU64,
    /// fsyncs started in the background as soon as a big blob was written, so that flushing
    /// one blob overlaps with reading the next; [`Staging::commit`] waits for them.
    syncing: std::sync::Mutex<Vec<(PathBuf, std::thread::JoinHandle<io::Result<()>>)>>,
}

/// Blobs at least this big get their fsync started in the background right after staging:
/// for small ones a thread costs more than it saves.
const BACKGROUND_SYNC_MIN: u64 = 8 * 1024 * 1024;

/// Chunk size of the pipelined copy: big enough to amortize the hand-off between threads, small
/// enough to stay in cache between the write and the hash (1 MiB chunks measured 2× slower on
/// the 700 MiB benchmark: the kernel's copy into the page cache no longer hit the cache).
const PIPE_CHUNK: usize = 256 * 1024;

/// How often a big blob's writeback is started while it is written.
const EARLY_SYNC_STEP: u64 = 32 * 1024 * 1024;

/// Chunks in flight between the reading thread and the hashing thread.
const PIPE_DEPTH: usize = 16;

impl Staging {
    pub(super) fn new(store: &Store) -> Result<Staging> {
        let base = store.hoist_dir().join("tmp");
        let (probe, _) = super::tempfile_in(&base)?;
        fs::remove_file(&probe).at(&probe)?;
        let dir = probe.with_file_name(
            probe
                .file_name()
                .map(|n| n.to_string_lossy().replace(".tmp-", "stage-"))
                .unwrap_or_default(),
        );
        fs::create_dir(&dir).at(&dir)?;
        Ok(Staging {
            dir,
            store: store.clone(),
            counter: std::sync::atomic::AtomicU64::new(0),
            syncing: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn next_path(&self) -> PathBuf {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        self.dir.join(n.to_string())
    }

    /// Writes a stream to the staging area, hashing it and, when it looks compressed, hashing
    /// the decompressed stream too (the diff_id of a layer), in the same single pass.
    /// `what` names the stream in errors.
    pub fn stage(&self, r: impl Read, what: &str) -> Result<Staged> {
        let path = self.next_path();
        let file = File::create(&path).at(&path)?;
        let mut out = HashingWriter::new(io::BufWriter::with_capacity(IO_BUF_SIZE, file));
        let read_err = |source| Error::Read {
            what: what.to_string(),
            source,
        };
        let mut peeked = Peeked::new(r).map_err(read_err)?;
        let compression = peeked.compression();
        if compression == Compression::None {
            drop(out);
            let file = File::options()
                .write(true)
                .truncate(true)
                .open(&path)
                .at(&path)?;
            let (digest, size, file, (layer_check, index)) =
                copy_hashing(&mut peeked, file).map_err(|e| split_io(e, what, &path))?;
            self.sync_later(&path, file, size);
            return Ok(Staged {
                path,
                index: named(index, &digest),
                digest: digest.clone(),
                size,
                compression,
                diff_id: Some(digest),
                uncompressed_size: size,
                decode_error: None,
                layer_check,
            });
        }
        let (diff_id, uncompressed_size, decode_error, (layer_check, index)) = {
            let mut tee = TeeReader::new(peeked, Tagged(&mut out));
            let decoded = {
                // The decoder records where decompression can restart: a layer's index keeps
                // them, so one file is read from near its offset (crate::seekable).
                let mut dec = HashingReader::new(
                    crate::seekable::CheckpointingReader::new(compression, &mut tee)
                        .map_err(read_err)?,
                );
                match drain_checking(&mut dec) {
                    Ok((check, index)) => {
                        let (d, n, cps) = dec.finish();
                        let index = index.map(|mut i| {
                            i.checkpoints = cps.finish().to_bytes();
                            i
                        });
                        Ok((d, n, (check, index)))
                    }
                    Err(e) => Err(e),
                }
            };
            // Whatever the decoder did not consume (data after the compressed stream) is part
            // of the blob too.
            let (mut rest, _) = tee.into_inner();
            copy(&mut rest, &mut out).map_err(|e| split_io(e, what, &path))?;
            match decoded {
                Ok((d, n, check)) => (Some(d), n, None, check),
                Err(e) if is_write_side(&e) => return Err(Error::Io { path, source: e }),
                Err(e) => (None, 0, Some(e.to_string()), (LayerCheck::Unchecked, None)),
            }
        };
        let (digest, size, w) = out.finish();
        let file = w.into_inner().map_err(|e| e.into_error()).at(&path)?;
        self.sync_later(&path, file, size);
        let (diff_id, uncompressed_size) = match compression {
            Compression::None => (Some(digest.clone()), size),
            _ => (diff_id, uncompressed_size),
        };
        Ok(Staged {
            path,
            index: named(index, &digest),
            digest,
            size,
            compression,
            diff_id,
            uncompressed_size,
            decode_error,
            layer_check,
        })
    }

    /// Starts the fsync of a big staged blob in the background.
    fn sync_later(&self, path: &std::path::Path, file: File, size: u64) {
        if size >= BACKGROUND_SYNC_MIN {
            let handle = std::thread::spawn(move || file.sync_all());
            self.syncing
                .lock()
                .expect("the sync list is never poisoned")
                .push((path.to_path_buf(), handle));
        }
    }

    /// Stages bytes already in memory (configs, synthesized manifests).
    pub fn stage_bytes(&self, bytes: &[u8]) -> Result<Staged> {
        self.stage(bytes, "in-memory document")
    }

    /// Makes staged blobs visible in the store: fsync each, rename into `blobs/sha256/`, fsync
    /// the directory. Blobs the store already has are left as they are.
    pub fn commit<'a>(&mut self, blobs: impl IntoIterator<Item = &'a Staged>) -> Result<()> {
        let mut synced = std::collections::HashSet::new();
        let pending = std::mem::take(
            &mut *self
                .syncing
                .lock()
                .expect("the sync list is never poisoned"),
        );
        for (path, handle) in pending {
            handle
                .join()
                .expect("an fsync thread does not panic")
                .at(&path)?;
            synced.insert(path);
        }
        let mut renamed = false;
        for s in blobs {
            let dest = self.store.blob_path(&s.digest);
            if dest.exists() || !s.path.exists() {
                // A layer already there may lack its index (an older store): keep this one.
                if let Some(index) = &s.index
                    && dest.exists()
                    && self.store.stored_layer_index(&s.digest).is_none()
                {
                    // Only a cache: failing to write it fails nothing (it is built on use).
                    let _ = self.store.save_layer_index(index);
                }
                continue;
            }
            if !synced.contains(&s.path) {
                File::open(&s.path).and_then(|f| f.sync_all()).at(&s.path)?;
            }
            fs::rename(&s.path, &dest).at(&dest)?;
            renamed = true;
            if let Some(index) = &s.index {
                // Only a cache: failing to write it fails nothing (it is built on first use).
                let _ = self.store.save_layer_index(index);
            }
        }
        if renamed {
            sync_dir(&self.store.root.join("blobs/sha256"))?;
        }
        Ok(())
    }
}

/// What [`Staging::commit_image`] made.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// The image ID (config digest).
    pub id: Digest,
    /// Its manifest.
    pub manifest: hoist_format::oci::Descriptor,
    /// The image the name was taken from, if the name existed.
    pub moved_from: Option<Digest>,
}

impl Staging {
    /// Makes a new image visible: stages its manifest and config, commits them with the
    /// already staged `blobs` (its new layers), and names it (or keeps it untagged).
    pub fn commit_image(
        &mut self,
        blobs: &[&Staged],
        manifest_bytes: &[u8],
        config_bytes: &[u8],
        name: Option<&hoist_format::reference::Reference>,
    ) -> Result<NewImage> {
        self.commit_image_as(
            blobs,
            manifest_bytes,
            hoist_format::media_type::OCI_MANIFEST,
            config_bytes,
            name,
        )
    }

    /// [`Staging::commit_image`] for a manifest of any media type (a docker schema 2 one).
    pub fn commit_image_as(
        &mut self,
        blobs: &[&Staged],
        manifest_bytes: &[u8],
        manifest_media_type: &str,
        config_bytes: &[u8],
        name: Option<&hoist_format::reference::Reference>,
    ) -> Result<NewImage> {
        let m = self.stage_bytes(manifest_bytes)?;
        let c = self.stage_bytes(config_bytes)?;
        self.commit(blobs.iter().copied().chain([&m, &c]))?;
        let manifest =
            hoist_format::oci::Descriptor::new(manifest_media_type, m.digest.clone(), m.size);
        let store = self.store.clone();
        let moved_from = store.update_index(|entries| {
            let ids = store.ids_of(entries)?;
            Ok(match name {
                Some(n) => Store::tag_entries(entries, n, &manifest, &ids),
                None => {
                    Store::keep_untagged(entries, &manifest);
                    None
                }
            })
        })?;
        Ok(NewImage {
            id: c.digest,
            manifest,
            moved_from,
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: a leftover staging dir is harmless and `gc` removes it.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Copies `r` into `file` while another thread hashes the same bytes: on big blobs the sha256
/// and the I/O each take a core instead of adding up.
fn copy_hashing(r: &mut dyn Read, file: File) -> io::Result<(Digest, u64, File, Checked)> {
    let mut w = BlobWriter::new(file, true)?;
    let mut buf = vec![0u8; IO_BUF_SIZE];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
    }
    w.finish_checked()
}

/// Reads a decoded stream to its end (the caller hashes it on the way), handing its bytes to
/// a layer check.
fn drain_checking(r: &mut impl Read) -> io::Result<Checked> {
    let (recycle, free) = std::sync::mpsc::channel::<Vec<u8>>();
    let checker = Checker::spawn(Some(recycle));
    loop {
        let mut chunk = free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(PIPE_CHUNK));
        chunk.resize(PIPE_CHUNK, 0);
        let n = match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                checker.finish();
                return Err(e);
            }
        };
        chunk.truncate(n);
        checker.send(chunk);
    }
    Ok(checker.finish())
}

/// A writer into a staged blob that hashes on another thread and starts writeback early.
///
/// Bytes are gathered in chunks; each full chunk is written to the file and handed to a hashing
/// thread, and every `EARLY_SYNC_STEP` bytes a syncer thread flushes what is on disk so far,
/// so the final fsync has little left to do. Write errors are tagged as `WriteSide`.
pub struct BlobWriter {
    file: File,
    chunk: Vec<u8>,
    total: u64,
    to_hash: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    /// Hashes the chunks, then hands them to a layer check (when asked for).
    hasher: Option<std::thread::JoinHandle<(Digest, Checked)>>,
    kick: Option<std::sync::mpsc::Sender<()>>,
    syncer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("total", &self.total)
            .finish()
    }
}

impl BlobWriter {
    fn new(file: File, check_layer: bool) -> io::Result<Self> {
        use std::sync::mpsc;
        let (to_hash, chunks) = mpsc::sync_channel::<Vec<u8>>(PIPE_DEPTH);
        let (recycle, free) = mpsc::channel::<Vec<u8>>();
        let checker = check_layer.then(|| Checker::spawn(Some(recycle.clone())));
        let hasher = std::thread::spawn(move || {
            let mut h = hoist_format::Sha256::new();
            for chunk in chunks {
                h.update(&chunk);
                match &checker {
                    Some(c) => c.send(chunk),
                    // The writer may be gone already; then the buffer is simply dropped.
                    None => drop(recycle.send(chunk)),
                }
            }
            (
                h.finish(),
                checker.map_or((LayerCheck::Unchecked, None), Checker::finish),
            )
        });
        let (kick, kicks) = mpsc::channel::<()>();
        let sync_fd = file.try_clone()?;
        let syncer = std::thread::spawn(move || {
            while kicks.recv().is_ok() {
                while kicks.try_recv().is_ok() {}
                // A failure here shows again in the final fsync, which is checked.
                let _ = sync_fd.sync_data();
            }
        });
        Ok(BlobWriter {
            file,
            chunk: Vec::with_capacity(PIPE_CHUNK),
            total: 0,
            to_hash: Some(to_hash),
            free,
            hasher: Some(hasher),
            kick: Some(kick),
            syncer: Some(syncer),
        })
    }

    /// Writes the gathered chunk and hands it to the hasher.
    fn ship(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.chunk)
            .map_err(|e| io::Error::new(e.kind(), WriteSide(e)))?;
        let n = self.chunk.len() as u64;
        self.total += n;
        if self.total % EARLY_SYNC_STEP < n
            && let Some(k) = &self.kick
        {
            // The syncer only stops when this sender is dropped.
            let _ = k.send(());
        }
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(PIPE_CHUNK));
        let full = std::mem::replace(&mut self.chunk, next);
        self.chunk.clear();
        let sent = self.to_hash.as_ref().map(|t| t.send(full));
        if !matches!(sent, Some(Ok(()))) {
            return Err(io::Error::other("the hashing thread stopped"));
        }
        Ok(())
    }

    /// Writes what is left; returns the digest, the size and the file.
    pub fn finish(self) -> io::Result<(Digest, u64, File)> {
        let (digest, size, file, _) = self.finish_checked()?;
        Ok((digest, size, file))
    }

    /// [`BlobWriter::finish`], plus the outcome of the layer check.
    fn finish_checked(mut self) -> io::Result<(Digest, u64, File, Checked)> {
        self.ship()?;
        drop(self.to_hash.take());
        drop(self.kick.take());
        let (digest, check) = self
            .hasher
            .take()
            .expect("joined once")
            .join()
            .expect("the hashing thread does not panic");
        self.syncer
            .take()
            .expect("joined once")
            .join()
            .expect("the sync thread does not panic");
        let file = self.file.try_clone()?;
        Ok((digest, self.total, file, check))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = PIPE_CHUNK - self.chunk.len();
        let n = room.min(data.len());
        self.chunk.extend_from_slice(&data[..n]);
        if self.chunk.len() == PIPE_CHUNK {
            self.ship()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Staging {
    /// A writer into a new staged blob (for blobs hoist produces itself, e.g. a squashed layer).
    pub fn writer(&self) -> Result<(PathBuf, BlobWriter)> {
        let path = self.next_path();
        let file = File::create(&path).at(&path)?;
        let w = BlobWriter::new(file, false).at(&path)?;
        Ok((path, w))
    }

    /// A writer into a new staged layer that checks it against the layer rules as it hashes
    /// (for layers rebuilt from untrusted input, e.g. a delta's patch).
    pub fn layer_writer(&self) -> Result<(PathBuf, BlobWriter)> {
        let path = self.next_path();
        let file = File::create(&path).at(&path)?;
        let w = BlobWriter::new(file, true).at(&path)?;
        Ok((path, w))
    }

    /// Finishes a blob written with [`Staging::writer`] or [`Staging::layer_writer`]; it is
    /// stored uncompressed as written.
    pub fn finish_writer(&self, path: PathBuf, w: BlobWriter) -> Result<Staged> {
        let (digest, size, file, (layer_check, index)) = w.finish_checked().at(&path)?;
        self.sync_later(&path, file, size);
        Ok(Staged {
            path,
            index: named(index, &digest),
            digest: digest.clone(),
            size,
            compression: Compression::None,
            diff_id: Some(digest),
            uncompressed_size: size,
            decode_error: None,
            layer_check,
        })
    }
}

/// A staged layer's index, named after its blob.
fn named(index: Option<LayerIndex>, blob: &Digest) -> Option<std::sync::Arc<LayerIndex>> {
    index.map(|mut i| {
        i.blob = blob.clone();
        std::sync::Arc::new(i)
    })
}

/// Marker for errors from the writing side of a copy, so they are not mistaken for bad input.
#[derive(Debug)]
struct WriteSide(io::Error);

impl std::fmt::Display for WriteSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WriteSide {}

fn is_write_side(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<WriteSide>())
}

fn split_io(e: io::Error, what: &str, path: &std::path::Path) -> Error {
    if is_write_side(&e) {
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    } else {
        Error::Read {
            what: what.to_string(),
            source: e,
        }
    }
}

/// A writer that tags its errors as [`WriteSide`].
struct Tagged<W>(W);

impl<W: Write> Write for Tagged<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .write(buf)
            .map_err(|e| io::Error::new(e.kind(), WriteSide(e)))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0
            .flush()
            .map_err(|e| io::Error::new(e.kind(), WriteSide(e)))
    }
}

/// Copies with a large buffer, tagging write errors so callers can tell them from read errors.
fn copy(r: &mut dyn Read, w: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; IO_BUF_SIZE];
    let mut total = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])
            .map_err(|e| io::Error::new(e.kind(), WriteSide(e)))?;
        total += n as u64;
    }
}
