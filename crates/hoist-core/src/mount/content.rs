//! File contents for the mount, read from the layers on a thread of their own.
//!
//! A layer's decompressing reader is not `Send`, while the FUSE session needs a `Send + Sync`
//! file system: so one thread owns the [`OpenedImage`] and every open file's reader, and the
//! file system asks it over a channel. What it answers for a file:
//!
//! - a plain (not sparse) file of an uncompressed layer: the blob and the offset of the file's
//!   data in it, which the file system then reads itself with `pread` (no copy through this
//!   thread, no state: any offset costs the same);
//! - anything else (a compressed layer, a sparse file): a reader of the entry, kept for the
//!   open file and read forward; a read behind it reopens the entry (from the layer's start,
//!   or its nearest checkpoint), a read ahead of it skips forward.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::mpsc;

use crate::blobfile::BlobFile;
use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::flatten::EntryId;
use crate::view::OpenedImage;
use crate::view::content::EntryReader;

/// How an open file is read.
#[derive(Debug)]
pub(super) enum Opened {
    /// `pread` of `blob` from `data_offset`.
    Pread {
        /// The layer's (uncompressed) blob.
        blob: BlobFile,
        /// Where the file's data starts in it.
        data_offset: u64,
    },
    /// Through [`Contents::read`].
    Stream,
}

/// A request to the content thread.
enum Req {
    Open {
        fh: u64,
        id: EntryId,
        size: u64,
        reply: mpsc::SyncSender<Result<Opened>>,
    },
    Read {
        fh: u64,
        offset: u64,
        len: usize,
        buf: Vec<u8>,
        reply: mpsc::SyncSender<(Vec<u8>, Result<usize>)>,
    },
    Close {
        fh: u64,
    },
}

/// The content thread, as the file system sees it.
#[derive(Debug)]
pub(super) struct Contents {
    tx: mpsc::Sender<Req>,
}

/// The thread ended (it only does when the file system is dropped, or on a panic).
fn gone() -> Error {
    Error::Read {
        what: "the mount's content thread".into(),
        source: io::Error::other("it has stopped"),
    }
}

impl Contents {
    /// Starts the thread; it owns `image` and ends when the `Contents` is dropped.
    pub(super) fn start(image: OpenedImage) -> io::Result<Contents> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("hoist-mount-content".into())
            .spawn(move || {
                let mut w = Worker {
                    plain: (0..image.layers()).map(|_| None).collect(),
                    image,
                    streams: HashMap::new(),
                };
                for req in rx {
                    w.serve(req);
                }
            })?;
        Ok(Contents { tx })
    }

    /// Opens entry `id` (a regular file of `size` bytes) for file handle `fh`.
    pub(super) fn open(&self, fh: u64, id: EntryId, size: u64) -> Result<Opened> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .send(Req::Open {
                fh,
                id,
                size,
                reply,
            })
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }

    /// Reads up to `len` bytes at `offset` of the [`Opened::Stream`] file `fh` into `buf`
    /// (which is handed back, to be reused); returns the count (short only at the end).
    pub(super) fn read(
        &self,
        fh: u64,
        offset: u64,
        len: usize,
        buf: Vec<u8>,
    ) -> (Vec<u8>, Result<usize>) {
        let (reply, rx) = mpsc::sync_channel(1);
        let req = Req::Read {
            fh,
            offset,
            len,
            buf,
            reply,
        };
        if let Err(mpsc::SendError(req)) = self.tx.send(req) {
            let Req::Read { buf, .. } = req else {
                unreachable!("sent a read")
            };
            return (buf, Err(gone()));
        }
        rx.recv().unwrap_or_else(|_| (Vec::new(), Err(gone())))
    }

    /// Forgets file handle `fh`.
    pub(super) fn close(&self, fh: u64) {
        // Nothing to report: when the thread is gone, so is the reader.
        let _ = self.tx.send(Req::Close { fh });
    }
}

/// An open file read through a layer stream.
struct Stream {
    id: EntryId,
    size: u64,
    reader: EntryReader,
    /// Offset in the file of the reader's next byte.
    pos: u64,
}

/// The content thread's state.
struct Worker {
    image: OpenedImage,
    /// Per layer, once known: its blob when it is uncompressed.
    plain: Vec<Option<Option<BlobFile>>>,
    streams: HashMap<u64, Stream>,
}

impl Worker {
    fn serve(&mut self, req: Req) {
        // A requester that went away needs no answer.
        match req {
            Req::Open {
                fh,
                id,
                size,
                reply,
            } => {
                let _ = reply.send(self.open(fh, id, size));
            }
            Req::Read {
                fh,
                offset,
                len,
                mut buf,
                reply,
            } => {
                let r = self.read(fh, offset, len, &mut buf);
                let _ = reply.send((buf, r));
            }
            Req::Close { fh } => {
                self.streams.remove(&fh);
            }
        }
    }

    /// Layer `layer`'s blob if it is uncompressed (looked at once).
    fn plain_blob(&mut self, layer: usize) -> Result<Option<BlobFile>> {
        if let Some(known) = &self.plain[layer] {
            return Ok(known.clone());
        }
        let blob = self.image.blob(layer)?;
        let mut head = [0u8; 6];
        let n = blob.read_at(&mut head, 0).map_err(|source| Error::Read {
            what: format!("{}: layer {layer}", self.image.what),
            source,
        })?;
        let plain = (Compression::sniff(&head[..n]) == Compression::None).then_some(blob);
        self.plain[layer] = Some(plain.clone());
        Ok(plain)
    }

    fn open(&mut self, fh: u64, id: EntryId, size: u64) -> Result<Opened> {
        let reader = self.image.open_entry(id, size)?;
        if reader.entry.sparse.is_none()
            && let Some(blob) = self.plain_blob(id.layer)?
        {
            let data_offset = reader.entry.data_offset;
            // The index's claim, checked against the blob: the data must be inside it.
            if data_offset
                .checked_add(size)
                .is_none_or(|end| end > blob.len())
            {
                return Err(Error::InvalidArchive(format!(
                    "{}: layer {}: entry {} claims {size} bytes at offset {data_offset}, past \
                     the blob's end ({} bytes)",
                    self.image.what,
                    id.layer,
                    id.index,
                    blob.len()
                )));
            }
            return Ok(Opened::Pread { blob, data_offset });
        }
        self.streams.insert(
            fh,
            Stream {
                id,
                size,
                reader,
                pos: 0,
            },
        );
        Ok(Opened::Stream)
    }

    fn read(&mut self, fh: u64, offset: u64, len: usize, buf: &mut Vec<u8>) -> Result<usize> {
        let what = |s: &Stream| {
            format!(
                "{}: layer {} entry {}",
                self.image.what, s.id.layer, s.id.index
            )
        };
        let Some(s) = self.streams.get_mut(&fh) else {
            return Err(Error::InvalidArgument(format!("no open file {fh}")));
        };
        if offset >= s.size {
            return Ok(0);
        }
        if offset < s.pos {
            s.reader = self.image.open_entry(s.id, s.size)?;
            s.pos = 0;
        }
        let read_err = |s: &Stream, source| Error::Read {
            what: what(s),
            source,
        };
        if offset > s.pos {
            let skip = offset - s.pos;
            let skipped = io::copy(&mut (&mut s.reader).take(skip), &mut io::sink())
                .map_err(|e| read_err(s, e))?;
            s.pos += skipped;
            if skipped != skip {
                return Err(read_err(s, io::ErrorKind::UnexpectedEof.into()));
            }
        }
        let want = usize::try_from(s.size - offset).map_or(len, |left| left.min(len));
        buf.resize(want, 0);
        let mut n = 0;
        while n < want {
            match s.reader.read(&mut buf[n..want]) {
                Ok(0) => return Err(read_err(s, io::ErrorKind::UnexpectedEof.into())),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(s, e)),
            }
        }
        s.pos += n as u64;
        Ok(n)
    }
}
