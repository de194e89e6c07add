//! [`CheckpointingReader`]: decompression that records checkpoints on the way.

use std::fmt;
use std::io::{self, Read};

use super::checkpoints::{Checkpoint, Checkpoints};
use super::{CHECK_LEN, Compression, FREE_SPACING, SPACING, crc32, gzip, zstd};

/// The checkpoints being recorded, with the check of the newest one still being summed.
#[derive(Debug)]
pub(super) struct Recorder {
    cps: Checkpoints,
    /// The CRC-32 so far of the newest checkpoint's check, and the bytes it still needs.
    checking: Option<(u32, usize)>,
    /// [`SPACING`] (smaller in tests, to have many checkpoints in little data).
    spacing: u64,
}

impl Recorder {
    pub(super) fn new(compression: Compression, spacing: u64) -> Self {
        Recorder {
            cps: Checkpoints::new(compression),
            checking: None,
            spacing,
        }
    }

    /// The uncompressed offset of the newest checkpoint.
    pub(super) fn last_out(&self) -> Option<u64> {
        self.cps.points.last().map(|p| p.out)
    }

    /// Whether a free checkpoint at `out` is due ([`FREE_SPACING`] after the last one, and
    /// never before the last one's check is complete).
    pub(super) fn free_due(&self, out: u64) -> bool {
        let free_spacing = (self.spacing / (SPACING / FREE_SPACING)).max(CHECK_LEN as u64);
        self.last_out()
            .is_none_or(|last| out - last >= free_spacing)
    }

    /// How many bytes after `out` a checkpoint with a window is due ([`SPACING`] after the
    /// last checkpoint): 0 when it is; `u64::MAX` before the first checkpoint.
    pub(super) fn window_due_in(&self, out: u64) -> u64 {
        self.last_out()
            .map_or(u64::MAX, |last| (last + self.spacing).saturating_sub(out))
    }

    /// Records a checkpoint whose check is summed from the output that follows.
    pub(super) fn push(&mut self, p: Checkpoint) {
        debug_assert!(
            self.checking.is_none(),
            "checkpoints are CHECK_LEN apart at least"
        );
        self.cps.points.push(p);
        self.checking = Some((0, CHECK_LEN));
    }

    /// Records a checkpoint whose check is already known.
    pub(super) fn push_checked(&mut self, p: Checkpoint) {
        debug_assert!(
            self.checking.is_none(),
            "checkpoints are CHECK_LEN apart at least"
        );
        self.cps.points.push(p);
    }

    /// Uncompressed output, in order.
    pub(super) fn output(&mut self, data: &[u8]) {
        if let Some((crc, left)) = &mut self.checking {
            let n = data.len().min(*left);
            *crc = crc32(*crc, &data[..n]);
            *left -= n;
            if *left == 0 {
                self.end_check();
            }
        }
    }

    fn end_check(&mut self) {
        if let Some((crc, _)) = self.checking.take() {
            self.cps
                .points
                .last_mut()
                .expect("a check is of a checkpoint")
                .check = crc;
        }
    }

    /// The checkpoints; `lengths` when the whole blob was read. Before the end, a checkpoint
    /// whose check is not complete yet is left out (its check would not match at open).
    pub(super) fn finish(mut self, lengths: Option<(u64, u64)>) -> Checkpoints {
        if lengths.is_some() {
            self.end_check();
        } else if self.checking.take().is_some() {
            self.cps.points.pop();
        }
        self.cps.lengths = lengths;
        self.cps
    }
}

/// Decompresses `inner` (gzip: one or more members; zstd: one or more frames, skippable frames
/// too) like [`crate::compress::decoder`], recording [`Checkpoints`] as it goes.
pub struct CheckpointingReader<R: Read> {
    inner: Indexer<R>,
}

enum Indexer<R: Read> {
    Plain { r: R, n: u64, done: bool },
    Gzip(Box<gzip::Indexer<R>>),
    Zstd(Box<zstd::Indexer<R>>),
    Other(Box<OtherIndexer<R>>),
}

/// bzip2 and xz: decoded by [`crate::compress`]'s decoders, with the start as the only checkpoint.
struct OtherIndexer<R: Read> {
    dec: OtherDecoder<Counting<R>>,
    rec: Recorder,
    out: u64,
    done: bool,
}

pub(super) enum OtherDecoder<R: Read> {
    Bzip2(bzip2::read::MultiBzDecoder<R>),
    Xz(liblzma::read::XzDecoder<R>),
}

impl<R: Read> OtherDecoder<R> {
    /// The decoder [`crate::compress::decoder`] uses for `c`.
    pub(super) fn new(c: Compression, r: R) -> Self {
        match c {
            Compression::Bzip2 => OtherDecoder::Bzip2(bzip2::read::MultiBzDecoder::new(r)),
            _ => OtherDecoder::Xz(liblzma::read::XzDecoder::new_multi_decoder(r)),
        }
    }

    fn get_ref(&self) -> &R {
        match self {
            OtherDecoder::Bzip2(d) => d.get_ref(),
            OtherDecoder::Xz(d) => d.get_ref(),
        }
    }
}

impl<R: Read> Read for OtherDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            OtherDecoder::Bzip2(d) => d.read(buf),
            OtherDecoder::Xz(d) => d.read(buf),
        }
    }
}

/// A reader that counts the bytes read through it.
struct Counting<R> {
    r: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

impl<R: Read> fmt::Debug for CheckpointingReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.inner {
            Indexer::Plain { .. } => "plain",
            Indexer::Gzip(_) => "gzip",
            Indexer::Zstd(_) => "zstd",
            Indexer::Other(_) => "bzip2/xz",
        };
        f.debug_struct("CheckpointingReader")
            .field("compression", &kind)
            .finish_non_exhaustive()
    }
}

impl<R: Read> CheckpointingReader<R> {
    /// Decompresses `inner`, compressed with `compression` (as sniffed by
    /// [`crate::compress::Peeked`]); offsets are counted from its first byte.
    pub fn new(compression: Compression, inner: R) -> io::Result<Self> {
        Self::with_spacing(compression, inner, SPACING)
    }

    /// [`new`](Self::new) with another [`SPACING`] (tests: many checkpoints in little data).
    pub(super) fn with_spacing(
        compression: Compression,
        inner: R,
        spacing: u64,
    ) -> io::Result<Self> {
        let inner = match compression {
            Compression::None => Indexer::Plain {
                r: inner,
                n: 0,
                done: false,
            },
            Compression::Gzip => Indexer::Gzip(Box::new(gzip::Indexer::new(
                inner,
                Recorder::new(compression, spacing),
            )?)),
            Compression::Zstd => Indexer::Zstd(Box::new(zstd::Indexer::new(
                inner,
                Recorder::new(compression, spacing),
            ))),
            Compression::Bzip2 | Compression::Xz => {
                let mut rec = Recorder::new(compression, spacing);
                rec.push(Checkpoint::start(0, 0));
                Indexer::Other(Box::new(OtherIndexer {
                    dec: OtherDecoder::new(compression, Counting { r: inner, n: 0 }),
                    rec,
                    out: 0,
                    done: false,
                }))
            }
        };
        Ok(CheckpointingReader { inner })
    }

    /// Boundaries tried and left unused by the gzip indexer (the measurements).
    #[cfg(test)]
    pub(super) fn gzip_stats(&self) -> Option<gzip::Stats> {
        match &self.inner {
            Indexer::Gzip(g) => Some(g.stats),
            _ => None,
        }
    }

    /// The checkpoints recorded. Call it after a read returned 0 (the end): before that, they
    /// cover only what was read and do not know the blob's lengths.
    pub fn finish(self) -> Checkpoints {
        match self.inner {
            Indexer::Plain { n, done, .. } => {
                let mut cps = Checkpoints::new(Compression::None);
                cps.lengths = done.then_some((n, n));
                cps
            }
            Indexer::Gzip(g) => g.finish(),
            Indexer::Zstd(z) => z.finish(),
            Indexer::Other(o) => {
                let lengths = o.done.then(|| (o.dec.get_ref().n, o.out));
                o.rec.finish(lengths)
            }
        }
    }
}

impl<R: Read> Read for CheckpointingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.inner {
            Indexer::Plain { r, n, done } => {
                let k = r.read(buf)?;
                *n += k as u64;
                *done |= k == 0;
                Ok(k)
            }
            Indexer::Gzip(g) => g.read(buf),
            Indexer::Zstd(z) => z.read(buf),
            Indexer::Other(o) => {
                let k = o.dec.read(buf)?;
                o.rec.output(&buf[..k]);
                o.out += k as u64;
                o.done |= k == 0;
                Ok(k)
            }
        }
    }
}
