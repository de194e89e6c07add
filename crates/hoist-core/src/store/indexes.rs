//! The layer indexes the store keeps next to its layer blobs:
//!
//! ```text
//! hoist/index/<blob hex>     the blob's layer index (see crate::layerindex)
//! ```
//!
//! Written when a layer comes in (made in the same pass as its check), built on first use when
//! absent or unreadable, removed by `gc` with the blob, rebuilt by `fsck --repair`. Outside
//! `blobs/`, so the store stays an OCI layout that skopeo and umoci read as before.

use std::fs;
use std::io::BufReader;
use std::sync::Arc;

use hoist_format::Digest;

use super::Store;
use crate::compress::{Compression, Peeked};
use crate::error::{Error, IoContext, Result};
use crate::layerindex::LayerIndex;
use crate::tar::Reader;

/// Buffer around a layer read to index it: headers are read 512 bytes at a time.
const READ_BUF: usize = 128 << 10;

impl Store {
    fn index_dir(&self) -> std::path::PathBuf {
        self.hoist_dir().join("index")
    }

    /// Where the index of `blob` lives.
    pub fn layer_index_path(&self, blob: &Digest) -> std::path::PathBuf {
        self.index_dir().join(blob.hex())
    }

    /// Records a layer's index (a cache file: replaced through a temporary file in its own
    /// directory, not fsynced; a lost one is built again).
    pub fn save_layer_index(&self, index: &LayerIndex) -> Result<()> {
        let dir = self.index_dir();
        fs::create_dir_all(&dir).at(&dir)?;
        let bytes = index.to_bytes().map_err(|e| Error::Read {
            what: format!("the index of {}", index.blob),
            source: std::io::Error::other(e),
        })?;
        super::remember::replace(&self.layer_index_path(&index.blob), &bytes)
    }

    /// The stored index of `blob`, if there is a readable one.
    pub fn stored_layer_index(&self, blob: &Digest) -> Option<LayerIndex> {
        let bytes = fs::read(self.layer_index_path(blob)).ok()?;
        LayerIndex::parse(&bytes, blob).ok()
    }

    /// The index of the layer blob `blob`: the stored one, else built from the blob (reading
    /// its headers) and stored. A store the caller cannot write to still gets its answer.
    pub fn layer_index(&self, blob: &Digest) -> Result<Arc<LayerIndex>> {
        if let Some(i) = self.stored_layer_index(blob) {
            return Ok(Arc::new(i));
        }
        let index = self.build_layer_index(blob)?;
        // Only a cache: a read-only store (another user's) still answers from what was built.
        let _ = self.save_layer_index(&index);
        Ok(Arc::new(index))
    }

    /// Builds the index of a layer blob by reading it (nothing is stored).
    pub fn build_layer_index(&self, blob: &Digest) -> Result<LayerIndex> {
        let path = self.blob_path(blob);
        let f = self.open_blob(blob)?;
        index_blob(f, blob).map_err(|e| match e {
            IndexBlobError::Io(source) => Error::Io { path, source },
            IndexBlobError::Index(e) => {
                Error::InvalidArchive(format!("layer {blob} ({}): {e}", path.display()))
            }
        })
    }

    /// Builds the indexes of every layer of every image that lacks a readable one; returns
    /// how many were built (`fsck --repair`). A layer that cannot be indexed (a missing or
    /// damaged blob) is skipped: `fsck` reports it.
    pub fn repair_layer_indexes(&self) -> Result<usize> {
        let mut built = 0;
        let mut seen = std::collections::HashSet::new();
        for (image, _) in self.images()? {
            for l in &image.manifest.layers {
                if !seen.insert(l.digest.clone()) || self.stored_layer_index(&l.digest).is_some() {
                    continue;
                }
                let Ok(index) = self.build_layer_index(&l.digest) else {
                    continue;
                };
                self.save_layer_index(&index)?;
                built += 1;
            }
        }
        Ok(built)
    }

    /// Index files whose blob is gone (`gc` removes them).
    pub(super) fn orphan_layer_indexes(&self) -> Result<Vec<std::path::PathBuf>> {
        let dir = self.index_dir();
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(out);
        };
        for entry in entries {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().to_string();
            let alive = Digest::from_hex(&name).is_ok_and(|d| self.has_blob(&d));
            if !alive {
                out.push(entry.path());
            }
        }
        Ok(out)
    }
}

/// Why a blob could not be indexed.
#[derive(Debug)]
pub enum IndexBlobError {
    /// Reading it failed.
    Io(std::io::Error),
    /// It is no layer tar.
    Index(crate::layerindex::IndexError),
}

/// Indexes the layer blob `f` (compressed or not; an uncompressed one is seeked over).
pub fn index_blob<F: std::io::Read + std::io::Seek>(
    mut f: F,
    blob: &Digest,
) -> std::result::Result<LayerIndex, IndexBlobError> {
    let peeked = Peeked::new(&mut f).map_err(IndexBlobError::Io)?;
    let compression = peeked.compression();
    drop(peeked);
    f.rewind().map_err(IndexBlobError::Io)?;
    let result = if compression == Compression::None {
        LayerIndex::build(
            Reader::seekable(BufReader::with_capacity(READ_BUF, f)),
            blob.clone(),
        )
    } else {
        // Restart points are recorded on the way (crate::seekable).
        let dec = crate::seekable::CheckpointingReader::new(compression, f)
            .map_err(IndexBlobError::Io)?;
        let mut reader = Reader::new(BufReader::with_capacity(READ_BUF, dec));
        let built = LayerIndex::build_from(&mut reader, blob.clone());
        built.map(|mut index| {
            // The decoder must reach the stream's end for its lengths to be known.
            let mut dec = reader.into_inner();
            if crate::compress::drain(&mut dec).is_ok() {
                index.checkpoints = dec.into_inner().finish().to_bytes();
            }
            index
        })
    };
    result.map_err(IndexBlobError::Index)
}
