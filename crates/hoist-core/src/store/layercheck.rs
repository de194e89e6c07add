//! Layer validation riding on staging: the chunks a staged blob is hashed in are handed on to a
//! thread that reads them as a layer tar ([`crate::layer::check`]: the tar reader's rules and
//! the per-entry layer rules). Data is skipped inside the chunks without being copied, so the
//! check costs little more than reading the headers, and no extra pass over the blob.
//!
//! Every staged blob is checked (staging does not know which blobs are layers); the result is
//! looked at only for the blobs an image uses as layers.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::layerindex::{IndexBuilder, LayerIndex};
use crate::tar::Reader;

/// Chunks in flight between the hashing thread and the checker: the checker only reads
/// headers, so it keeps up with few; each chunk in flight is 256 KiB of memory.
const CHECK_DEPTH: usize = 4;

/// The outcome of checking a staged blob as a layer tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerCheck {
    /// Not checked (the blob did not decompress, or was not staged as a stream).
    Unchecked,
    /// A layer tar hoist accepts, of this many entries.
    Valid {
        /// Entries read.
        entries: u64,
    },
    /// Not a layer hoist accepts: why.
    Invalid(String),
}

/// A running check, fed chunk by chunk.
#[derive(Debug)]
pub(crate) struct Checker {
    tx: Option<SyncSender<Vec<u8>>>,
    handle: Option<JoinHandle<(LayerCheck, Option<LayerIndex>)>>,
}

impl Checker {
    /// Starts a checker; consumed chunks go back through `recycle` when given.
    pub(crate) fn spawn(recycle: Option<Sender<Vec<u8>>>) -> Checker {
        let (tx, rx) = sync_channel::<Vec<u8>>(CHECK_DEPTH);
        let handle = std::thread::spawn(move || {
            let chunks = Chunks {
                rx,
                cur: Vec::new(),
                pos: 0,
                recycle,
            };
            let mut reader = Reader::with_skip(chunks, skip);
            // The layer's index is made from the headers the check reads anyway.
            let mut index = IndexBuilder::new();
            let result = crate::layer::check_entries(&mut reader, |e, _| {
                index.push(e);
                Ok(())
            });
            let tar_size = reader.position();
            // Whatever follows the end of the archive (or an error) is drained so the sender
            // never blocks.
            let mut chunks = reader.into_inner();
            while chunks.next_chunk() {}
            match result {
                Ok(stats) => (
                    LayerCheck::Valid {
                        entries: stats.entries,
                    },
                    // The blob's digest is not known yet: the staging fills it in.
                    Some(index.finish(hoist_format::Digest::of(b""), tar_size)),
                ),
                Err(e) => (LayerCheck::Invalid(e.to_string()), None),
            }
        });
        Checker {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Hands a chunk over.
    pub(crate) fn send(&self, chunk: Vec<u8>) {
        if let Some(tx) = &self.tx {
            // The checker drains until the channel closes; a send fails only if it panicked,
            // which `finish` reports.
            let _ = tx.send(chunk);
        }
    }

    /// Ends the stream and returns the outcome, with the layer's index when it is valid (its
    /// `blob` is a placeholder until the blob's digest is known).
    pub(crate) fn finish(mut self) -> (LayerCheck, Option<LayerIndex>) {
        drop(self.tx.take());
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(done)) => done,
            _ => (LayerCheck::Invalid("the layer checker failed".into()), None),
        }
    }
}

/// The chunks as one stream.
struct Chunks {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    recycle: Option<Sender<Vec<u8>>>,
}

impl Chunks {
    /// Moves to the next chunk; `false` at the end of the stream.
    fn next_chunk(&mut self) -> bool {
        let Ok(next) = self.rx.recv() else {
            return false;
        };
        let done = std::mem::replace(&mut self.cur, next);
        self.pos = 0;
        if let Some(r) = &self.recycle {
            // The writer may be gone already; then the buffer is dropped.
            let _ = r.send(done);
        }
        true
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if !self.next_chunk() {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Skips `n` bytes without copying them.
fn skip(c: &mut Chunks, n: u64) -> io::Result<u64> {
    let mut left = n;
    while left > 0 {
        if c.pos == c.cur.len() && !c.next_chunk() {
            break;
        }
        let step = (c.cur.len() - c.pos).min(usize::try_from(left).unwrap_or(usize::MAX));
        c.pos += step;
        left -= step as u64;
    }
    Ok(n - left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], chunk: usize) -> LayerCheck {
        let c = Checker::spawn(None);
        for part in bytes.chunks(chunk) {
            c.send(part.to_vec());
        }
        let (check, index) = c.finish();
        assert_eq!(index.is_some(), matches!(check, LayerCheck::Valid { .. }));
        check
    }

    #[test]
    fn checks_across_chunk_boundaries() {
        let mut w = crate::tar::Writer::new(Vec::new());
        let mut h = crate::tar::Header::new(b"a/file", crate::tar::EntryKind::Regular);
        h.size = 3000;
        w.header(&h).unwrap();
        w.write_data(&[7; 3000]).unwrap();
        w.pad(3000).unwrap();
        w.header(&crate::tar::Header::new(
            b"b",
            crate::tar::EntryKind::Directory,
        ))
        .unwrap();
        let (mut tar, _) = w.finish().unwrap();
        tar.extend_from_slice(b"trailing bytes after the end marker");
        for chunk in [1, 100, 512, 1000, 1 << 20] {
            assert_eq!(
                check(&tar, chunk),
                LayerCheck::Valid { entries: 2 },
                "{chunk}"
            );
        }
        // Cut inside the data.
        assert!(
            matches!(check(&tar[..1500], 100), LayerCheck::Invalid(m) if m.contains("ends inside"))
        );
        // Random bytes are no tar.
        let random: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(matches!(check(&random, 512), LayerCheck::Invalid(m) if m.contains("checksum")));
        // An escape is refused as every layer applier refuses it.
        let mut w = crate::tar::Writer::new(Vec::new());
        w.header(&crate::tar::Header::new(
            b"../x",
            crate::tar::EntryKind::Regular,
        ))
        .unwrap();
        let (bad, _) = w.finish().unwrap();
        assert!(matches!(check(&bad, 512), LayerCheck::Invalid(m) if m.contains("escapes")));
    }
}
