//! The per-layer index (eStargz's TOC, SOCI's zTOC, for any layer): every entry's header
//! metadata and where it starts in the layer's uncompressed tar stream, so that listing a
//! layer reads no layer bytes and reading one file reads only that file's bytes (from the
//! nearest restart point of a compressed blob: [`LayerIndex::checkpoints`]).
//!
//! # On disk
//!
//! ```text
//! "hoist-layer-index\n" "1\n"       magic and version
//! 64 bytes                          the blob's sha256, in hex (an index is checked against its blob)
//! varints                           entries, tar size, record bytes, checkpoint bytes
//! checkpoint bytes                  opaque restart points of a compressed blob (may be empty)
//! one zstd frame                    the records (see `codec.rs`)
//! ```
//!
//! A record is a tar [`Entry`] as the reader gave it (extension headers applied), with the
//! offset of its first header block, relative to the record before: on real layers a record
//! is 10–40 bytes before compression and a few after. The index is derived data: a missing or
//! unreadable one is built again from its blob.

mod codec;

use std::io::{self, Read};

use hoist_format::Digest;

use crate::tar::{Entry, Reader, TarError};
pub use codec::RecordError;

/// The file's first bytes.
const MAGIC: &[u8] = b"hoist-layer-index\n1\n";

/// zstd level of the records: level 3 packs the records of a 260k-entry layer in a few tens
/// of milliseconds and within a few percent of level 19.
const ZSTD_LEVEL: i32 = 3;

/// Largest record stream accepted from a file: 1 GiB is about 20 million entries, far more
/// than any layer; the bound stops a hostile length before anything is allocated.
const MAX_RECORD_BYTES: u64 = 1 << 30;

/// Largest checkpoint block accepted from a file (restart windows of a multi-GiB blob take a
/// few MiB).
const MAX_CHECKPOINT_BYTES: u64 = 256 << 20;

/// Smallest record: flags, type, two offsets, the shared length, the name length, mode, mtime
/// and size take a byte each at least; a claimed entry count above `bytes / MIN_RECORD` is a
/// lie.
const MIN_RECORD: u64 = 9;

/// Why an index cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Not an index file of this version.
    #[error("not a hoist layer index (version 1)")]
    Magic,
    /// It describes another blob.
    #[error("the index describes blob {found}, not {expected}")]
    OtherBlob {
        /// The blob asked for.
        expected: Digest,
        /// The blob the index names.
        found: Digest,
    },
    /// A field is out of its bounds or the file is cut short.
    #[error("{0}")]
    Bad(String),
    /// A record does not decode.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Reading the layer to index it failed.
    #[error("reading the layer: {0}")]
    Tar(#[from] TarError),
    /// Reading or decompressing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The index of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerIndex {
    /// The blob it describes.
    pub blob: Digest,
    /// Size of the uncompressed tar stream (to its end-of-archive marker or its end).
    pub tar_size: u64,
    /// Restart points of a compressed blob (opaque here: the decompressor encodes them);
    /// empty for an uncompressed blob or when none were recorded.
    pub checkpoints: Vec<u8>,
    count: u64,
    records: std::sync::Arc<[u8]>,
    /// Each entry's first header offset, by entry index.
    offsets: Vec<u64>,
}

/// Builds an index entry by entry, as a layer is read.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    encoder: codec::Encoder,
    records: Vec<u8>,
    offsets: Vec<u64>,
}

impl IndexBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next entry of the layer (in tar order).
    pub fn push(&mut self, e: &Entry) {
        self.encoder.push(&mut self.records, e);
        self.offsets.push(e.header_offset);
    }

    /// The index of blob `blob`, whose uncompressed tar is `tar_size` bytes.
    pub fn finish(self, blob: Digest, tar_size: u64) -> LayerIndex {
        LayerIndex {
            blob,
            tar_size,
            checkpoints: Vec::new(),
            count: self.offsets.len() as u64,
            records: self.records.into(),
            offsets: self.offsets,
        }
    }
}

impl LayerIndex {
    /// Indexes the uncompressed layer tar `tar` of blob `blob` (headers are read, contents
    /// skipped by reading, or by seeking when `tar` is a file given to [`Reader::seekable`]).
    pub fn build<R: Read>(mut reader: Reader<R>, blob: Digest) -> Result<LayerIndex, IndexError> {
        Self::build_from(&mut reader, blob)
    }

    /// [`LayerIndex::build`] leaving the reader to the caller (positioned at the archive's
    /// end).
    pub fn build_from<R: Read>(
        reader: &mut Reader<R>,
        blob: Digest,
    ) -> Result<LayerIndex, IndexError> {
        let mut b = IndexBuilder::new();
        while let Some(e) = reader.next_entry()? {
            b.push(&e);
        }
        let size = reader.position();
        Ok(b.finish(blob, size))
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the layer has no entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Where entry `index` starts in the uncompressed stream: a [`Reader`] started there
    /// reads it first.
    pub fn header_offset(&self, index: u64) -> Option<u64> {
        self.offsets.get(usize::try_from(index).ok()?).copied()
    }

    /// Every entry, in tar order, as the tar reader gave it (the iterator owns what it reads:
    /// it may outlive `self`).
    pub fn entries(&self) -> impl Iterator<Item = Result<Entry, IndexError>> + 'static {
        let mut dec = codec::Decoder::new(self.records.clone());
        let mut left = self.count;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            Some(dec.next_entry().map_err(IndexError::from))
        })
    }

    /// Calls `f` with every entry in tar order, refilling one [`Entry`] (no allocation per
    /// entry); stops at `f`'s first error. `err` turns a record that does not decode into
    /// `f`'s error type.
    pub fn for_each<E>(
        &self,
        mut f: impl FnMut(&Entry) -> Result<(), E>,
        err: impl Fn(IndexError) -> E,
    ) -> Result<(), E> {
        let mut dec = codec::Decoder::new(self.records.clone());
        let mut e = codec::empty_entry();
        for _ in 0..self.count {
            dec.next_into(&mut e).map_err(|r| err(r.into()))?;
            f(&e)?;
        }
        Ok(())
    }

    /// The file bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, IndexError> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(self.blob.hex().as_bytes());
        for v in [
            self.count,
            self.tar_size,
            self.records.len() as u64,
            self.checkpoints.len() as u64,
        ] {
            put_varint(&mut out, v);
        }
        out.extend_from_slice(&self.checkpoints);
        let z = zstd::bulk::compress(&self.records, ZSTD_LEVEL)?;
        out.extend_from_slice(&z);
        Ok(out)
    }

    /// Reads an index file, which must describe `blob`; every record is checked once here.
    pub fn parse(bytes: &[u8], blob: &Digest) -> Result<LayerIndex, IndexError> {
        let rest = bytes.strip_prefix(MAGIC).ok_or(IndexError::Magic)?;
        let (raw, mut rest) = rest
            .split_at_checked(64)
            .ok_or_else(|| IndexError::Bad("cut short".into()))?;
        let found = Digest::from_hex(&String::from_utf8_lossy(raw))
            .map_err(|e| IndexError::Bad(format!("blob digest: {e}")))?;
        if &found != blob {
            return Err(IndexError::OtherBlob {
                expected: blob.clone(),
                found,
            });
        }
        let mut next = || take_varint(&mut rest);
        let (count, tar_size, record_bytes, checkpoint_bytes) =
            (next()?, next()?, next()?, next()?);
        if record_bytes > MAX_RECORD_BYTES || checkpoint_bytes > MAX_CHECKPOINT_BYTES {
            return Err(IndexError::Bad(format!(
                "claims {record_bytes} record bytes and {checkpoint_bytes} checkpoint bytes"
            )));
        }
        if count > record_bytes / MIN_RECORD {
            return Err(IndexError::Bad(format!(
                "claims {count} entries in {record_bytes} bytes"
            )));
        }
        let (checkpoints, z) = rest
            .split_at_checked(checkpoint_bytes as usize)
            .ok_or_else(|| IndexError::Bad("cut short".into()))?;
        // Grown as the records decompress: the header's claim is not allocated up front.
        let mut records = Vec::new();
        zstd::stream::read::Decoder::new(z)?
            .take(record_bytes + 1)
            .read_to_end(&mut records)?;
        if count > records.len() as u64 / MIN_RECORD {
            return Err(IndexError::Bad(format!(
                "claims {count} entries in {} bytes",
                records.len()
            )));
        }
        if records.len() as u64 != record_bytes {
            return Err(IndexError::Bad(format!(
                "{} record bytes where the header says {record_bytes}",
                records.len()
            )));
        }
        let mut index = LayerIndex {
            blob: blob.clone(),
            tar_size,
            checkpoints: checkpoints.to_vec(),
            count,
            records: records.into(),
            // Bounded by the records actually there (`count` was checked against them).
            offsets: Vec::with_capacity(count as usize),
        };
        let mut dec = codec::Decoder::new(index.records.clone());
        let mut e = codec::empty_entry();
        for _ in 0..count {
            dec.next_into(&mut e)?;
            if e.data_offset > tar_size {
                return Err(IndexError::Bad(format!(
                    "entry {} starts past the end of the layer",
                    e.index
                )));
            }
            index.offsets.push(e.header_offset);
        }
        if !dec.is_done() {
            return Err(IndexError::Bad("bytes after the last record".into()));
        }
        Ok(index)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(b: &mut &[u8]) -> Result<u64, IndexError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&first, rest) = b
            .split_first()
            .ok_or_else(|| IndexError::Bad("cut short".into()))?;
        *b = rest;
        v |= u64::from(first & 0x7f) << shift;
        if first & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(IndexError::Bad("a number runs past 64 bits".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::{EntryKind, Header, Writer};

    fn layer() -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        w.header(&Header::new(b"etc/", EntryKind::Directory))
            .unwrap();
        for (name, len) in [
            ("etc/a", 10usize),
            ("etc/b", 700),
            ("etc/very/long/name/c", 0),
        ] {
            let long = name.repeat(if name.ends_with('c') { 10 } else { 1 });
            let mut h = Header::new(long.as_bytes(), EntryKind::Regular);
            h.size = len as u64;
            w.header(&h).unwrap();
            w.write_data(&vec![b'x'; len]).unwrap();
            w.pad(len as u64).unwrap();
        }
        w.finish().unwrap().0
    }

    fn digest() -> Digest {
        Digest::of(b"blob")
    }

    #[test]
    fn an_index_lists_every_entry_and_where_it_starts() {
        let tar = layer();
        let idx = LayerIndex::build(Reader::new(&tar[..]), digest()).unwrap();
        let direct: Vec<Entry> = {
            let mut r = Reader::new(&tar[..]);
            std::iter::from_fn(|| r.next_entry().unwrap()).collect()
        };
        let listed: Vec<Entry> = idx.entries().map(Result::unwrap).collect();
        assert_eq!(listed, direct);
        // A reader started at an entry's offset reads that entry first.
        for e in &direct {
            let at = idx.header_offset(e.index).unwrap() as usize;
            let mut r = Reader::new(&tar[at..]);
            let got = r.next_entry().unwrap().unwrap();
            assert_eq!(got.path, e.path);
        }
        let bytes = idx.to_bytes().unwrap();
        assert_eq!(LayerIndex::parse(&bytes, &digest()).unwrap(), idx);
        assert!(matches!(
            LayerIndex::parse(&bytes, &Digest::of(b"other")),
            Err(IndexError::OtherBlob { .. })
        ));
        for cut in 0..bytes.len() {
            assert!(
                LayerIndex::parse(&bytes[..cut], &digest()).is_err(),
                "{cut}"
            );
        }
    }

    #[test]
    fn lying_headers_are_refused_before_allocating() {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(digest().hex().as_bytes());
        for v in [u64::MAX / 2, 0, MAX_RECORD_BYTES + 1, 0] {
            put_varint(&mut b, v);
        }
        let e = LayerIndex::parse(&b, &digest()).unwrap_err().to_string();
        assert!(e.contains("record bytes"), "{e}");
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(digest().hex().as_bytes());
        for v in [1_000_000, 0, 100, 0] {
            put_varint(&mut b, v);
        }
        let e = LayerIndex::parse(&b, &digest()).unwrap_err().to_string();
        assert!(e.contains("entries in 100 bytes"), "{e}");
    }
}
