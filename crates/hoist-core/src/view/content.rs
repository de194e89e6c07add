//! One file's content, read from where its entry starts in its layer: an uncompressed blob is
//! read in place from the entry's offset; a compressed one is decompressed from its start
//! (or, once checkpoints exist, from the nearest one).

use std::io::{self, BufReader, Read};

use super::OpenedImage;
use crate::error::{Error, Result};
use crate::flatten::EntryId;
use crate::tar::{Entry, Reader};

/// Buffer around a layer stream read for one entry: its header is read 512 bytes at a time.
const READ_BUF: usize = 64 << 10;

/// The content of one regular-file entry of a layer.
pub struct EntryReader {
    reader: Reader<BufReader<Box<dyn Read>>>,
    /// The entry, with offsets counted from the start of its layer's uncompressed tar.
    pub entry: Entry,
}

impl std::fmt::Debug for EntryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryReader")
            .field("entry", &self.entry)
            .finish()
    }
}

impl Read for EntryReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read_content(buf).map_err(io::Error::from)
    }
}

impl OpenedImage {
    /// Opens the content of entry `id` (a regular file of `size` bytes, as the tree says).
    pub fn open_entry(&self, id: EntryId, size: u64) -> Result<EntryReader> {
        let index = self.layer_index(id.layer)?;
        let changed = || {
            Error::InvalidArchive(format!(
                "{}: layer {} ({}): entry {} is not where the layer's index says: the blob does \
                 not match its digest (`hoist fsck` checks it, `hoist verify` an archive)",
                self.what, id.layer, index.blob, id.index
            ))
        };
        let offset = index.header_offset(id.index).ok_or_else(changed)?;
        let stream = self.layer_stream_at(id.layer, offset)?;
        let mut reader = Reader::new(BufReader::with_capacity(READ_BUF, stream));
        let mut entry = reader
            .next_entry()
            .map_err(|e| Error::InvalidArchive(format!("{}: layer {}: {e}", self.what, id.layer)))?
            .ok_or_else(changed)?;
        if !entry.is_regular() || entry.size != size {
            return Err(changed());
        }
        entry.index = id.index;
        entry.header_offset += offset;
        entry.data_offset += offset;
        Ok(EntryReader { reader, entry })
    }
}
