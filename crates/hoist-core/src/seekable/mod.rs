//! Random access into compressed layer blobs: checkpoints where decompression can restart.
//!
//! A layer blob is stored as received, usually gzip (almost every pulled layer) or zstd. To
//! read one file of a layer without decompressing everything before it, the store keeps, next
//! to the blob, [`Checkpoints`]: places in the compressed blob where decompression can start
//! again, each with its offset in the *uncompressed* stream. [`CheckpointingReader`]
//! decompresses a blob once (while it is stored) and records them on the way;
//! [`open_at`] then gives the uncompressed stream from any offset after decompressing at most
//! about [`SPACING`] bytes.
//!
//! What a checkpoint is depends on the compression:
//!
//! - **gzip**: the start of every member (pgzip-style and eStargz blobs have many) is a free
//!   checkpoint: nothing but two offsets. Inside a member, decompression can only restart at a
//!   deflate block boundary, given the 32 KiB of output before it (the window back-references
//!   reach into) and the position of the boundary to the bit: zlib's `zran.c` scheme. Such a
//!   checkpoint is recorded at the first block boundary at least [`SPACING`] bytes after the
//!   previous checkpoint; its window is stored zstd-compressed. `seekable/gzip.rs` explains how
//!   the bit position is found exactly with zlib-rs's safe API.
//! - **zstd**: a frame cannot be entered in the middle, so the checkpoints are frame starts
//!   (zstd:chunked and seekable-format layers have many frames; skippable frames are skipped).
//!   **A blob of one zstd frame has no checkpoint but its start**: reading at an offset
//!   decompresses everything before it.
//! - **bzip2, xz**: only the start (these are outer archive compressions, not layer ones).
//! - **uncompressed**: no checkpoint is needed; [`open_at`] seeks.
//!
//! Every checkpoint also stores the CRC-32 of the first [`CHECK_LEN`] uncompressed bytes after
//! it: [`open_at`] checks them before it gives a byte, so a checkpoint that does not belong to
//! the blob (a wrong window, a wrong offset, another blob) is an error, not wrong data. A
//! gzip member entered in the middle still has its trailer's CRC-32 checked at its end (the
//! checkpoint carries the CRC of the member's bytes before it): a wrong window that the first
//! bytes happen not to refer to is found there at the latest.
//!
//! The encoding ([`Checkpoints::to_bytes`], [`Checkpoints::parse`]) is compact and versioned:
//!
//! ```text
//! "HSKP" version=1 compression:u8 flags:u8 [compressed_len uncompressed_len]  (flags bit 0)
//! count, then per checkpoint:
//!   uncompressed_delta compressed_delta   (varints; deltas from the checkpoint before)
//!   tag:u8  (bits 0-2: bit offset, bit 3: has a window)   check:u32le
//!   [member_out member_crc:u32le window_len window]      (gzip window checkpoints only)
//! ```

mod checkpoints;
mod gzip;
mod reader;
mod zstd;

pub use checkpoints::{Checkpoint, Checkpoints};
pub use reader::CheckpointingReader;

use checkpoints::Window;
use reader::{OtherDecoder, Recorder};

use crate::compress::read_full;

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

pub use crate::compress::Compression;

/// Uncompressed bytes between two checkpoints that carry a window (inside a gzip member).
///
/// A window is 32 KiB that zstd shrinks to about 12 KB on layer data: checkpoints took
/// 0.13% to 0.14% of the uncompressed size of two 759 MB layers of `/usr` (gzip -6 and
/// skopeo's gzip; the `measure_blobs` test). The store's index may take 128 bytes per tar
/// entry in all, and the real-world image of issue 6 has one entry per 30 KB of layer data
/// (7.9 GB, 260k entries): at 8 MiB, windows take about 42 bytes per entry there, leaving
/// the rest to the entries. A read decompresses at most 8 MiB (plus a block) before its
/// offset: `open_at` and a 64 KiB read took 12 to 15 ms on average on those layers.
pub const SPACING: u64 = 8 << 20;

/// Uncompressed bytes between two free checkpoints (gzip member or zstd frame starts).
///
/// Free checkpoints cost about ten bytes, so they can be 32 times denser than windows; a
/// spacing at all keeps a blob of millions of tiny members from making millions of them.
pub const FREE_SPACING: u64 = SPACING / 32;

/// Uncompressed bytes after each checkpoint whose CRC-32 the checkpoint stores, and that
/// [`open_at`] checks before giving any byte: enough for a wrong window to show (deflate
/// data refers back into its window within the first bytes), little to decompress ahead.
pub const CHECK_LEN: usize = 4 * 1024;

/// deflate's window: the most a back-reference reaches.
const WINDOW: usize = 32 * 1024;

/// Largest stored (zstd-compressed) window accepted: zstd's bound for 32 KiB is 32,944 bytes.
const MAX_WINDOW_ENCODED: usize = WINDOW + WINDOW / 64;

/// zstd level of stored windows: zstd's default; windows are small, any level is quick.
const WINDOW_ZSTD_LEVEL: i32 = 3;

/// What is wrong with checkpoints, or with a blob read through them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeekError {
    /// The encoding is not one [`Checkpoints::parse`] reads.
    #[error("checkpoints, byte {at}: {reason}")]
    Format {
        /// Offset in the encoding.
        at: usize,
        /// What is wrong there.
        reason: String,
    },
    /// The encoding claims more checkpoints than its bytes can hold.
    #[error("checkpoints: {count} claimed, but the encoding has room for {room} at most")]
    Count {
        /// The claimed count.
        count: u64,
        /// How many fit.
        room: u64,
    },
    /// A checkpoint's offsets do not come after the previous checkpoint's.
    #[error(
        "checkpoint {index}: {what} offset {found} does not follow the previous one ({previous})"
    )]
    NotMonotonic {
        /// Which checkpoint (from 0).
        index: usize,
        /// `compressed` or `uncompressed`.
        what: &'static str,
        /// The previous checkpoint's offset.
        previous: u64,
        /// This checkpoint's offset.
        found: u64,
    },
    /// A checkpoint that cannot be right.
    #[error("checkpoint {index}: {reason}")]
    Checkpoint {
        /// Which checkpoint (from 0).
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The checkpoints were made for another compression than the blob's.
    #[error("checkpoints of a {} blob used to read a {} blob", name(.stored), name(.requested))]
    CompressionMismatch {
        /// The compression the checkpoints record.
        stored: Compression,
        /// The compression of the blob read.
        requested: Compression,
    },
    /// A stored window that cannot be used.
    #[error("checkpoint {index} (uncompressed offset {offset}): window unusable: {reason}")]
    Window {
        /// Which checkpoint.
        index: usize,
        /// Its uncompressed offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The data decompressed at a checkpoint is not the data recorded there.
    #[error(
        "checkpoint {index} (uncompressed offset {offset}): the data there has CRC-32 \
         {found:08x}, not the recorded {expected:08x}: the checkpoints are not this blob's"
    )]
    CheckMismatch {
        /// Which checkpoint.
        index: usize,
        /// Its uncompressed offset.
        offset: u64,
        /// The recorded CRC-32.
        expected: u32,
        /// The CRC-32 of what was decompressed.
        found: u32,
    },
    /// The compressed data is invalid.
    #[error("corrupt {} data at compressed offset {offset}: {reason}", name(.compression))]
    Corrupt {
        /// The blob's compression.
        compression: Compression,
        /// Where (bytes into the blob).
        offset: u64,
        /// What the decoder found.
        reason: String,
    },
    /// The blob ends inside a gzip member or zstd frame.
    #[error(
        "{} data truncated: it ends at compressed offset {offset} inside {what}",
        name(.compression)
    )]
    Truncated {
        /// The blob's compression.
        compression: Compression,
        /// Where the data ends.
        offset: u64,
        /// What it ends inside.
        what: String,
    },
}

impl SeekError {
    /// As an I/O error (for `Read` implementations), kept as its source.
    fn into_io(self) -> io::Error {
        let kind = match &self {
            SeekError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

/// How errors name a compression.
fn name(c: &Compression) -> &'static str {
    match c {
        Compression::None => "uncompressed",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
        Compression::Bzip2 => "bzip2",
        Compression::Xz => "xz",
    }
}

/// CRC-32 (gzip's), continued from `crc`.
fn crc32(crc: u32, data: &[u8]) -> u32 {
    zlib_rs::crc32::crc32(crc, data)
}

/// The uncompressed stream of a blob from an offset on: what [`open_at`] returns.
pub struct StreamAt<R: Read> {
    /// Bytes decompressed ahead to check the checkpoint, not yet given.
    head: Vec<u8>,
    head_pos: usize,
    dec: Decoder<R>,
    position: u64,
}

enum Decoder<R: Read> {
    Plain(R),
    Gzip(Box<gzip::Core<R>>),
    Zstd(Box<zstd::Core<R>>),
    Other(Box<OtherDecoder<R>>),
}

impl<R: Read> fmt::Debug for StreamAt<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamAt")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl<R: Read> StreamAt<R> {
    /// The offset in the uncompressed stream of the next byte it gives.
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(g) => g.read(buf),
            Decoder::Zstd(z) => z.read(buf),
            Decoder::Other(o) => o.read(buf),
        }
    }
}

impl<R: Read> Read for StreamAt<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.head_pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.head_pos);
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            if self.head_pos == self.head.len() {
                self.head = Vec::new();
                self.head_pos = 0;
            }
            n
        } else {
            self.dec.read(buf)?
        };
        self.position += n as u64;
        Ok(n)
    }
}

/// The uncompressed stream of `blob` (the whole compressed blob: a file, or a view of a byte
/// range that starts at the blob's first byte) from `offset` on, using the blob's
/// checkpoints `cps`. At most about [`SPACING`] bytes are decompressed before `offset` (for
/// zstd, from the frame holding it). An offset at or past the end gives an empty stream (after
/// decompressing from the last checkpoint to the end).
///
/// Errors: `cps` of another compression; checkpoints that do not match the blob (the check
/// after the checkpoint used fails: [`SeekError::CheckMismatch`]); corrupt or truncated data.
/// Errors from checkpoints and data carry a [`SeekError`] as their source.
pub fn open_at<R: Read + Seek>(
    mut blob: R,
    compression: Compression,
    cps: &Checkpoints,
    offset: u64,
) -> io::Result<StreamAt<R>> {
    if compression != cps.compression {
        return Err(SeekError::CompressionMismatch {
            stored: cps.compression,
            requested: compression,
        }
        .into_io());
    }
    if compression == Compression::None {
        let position = offset.min(blob.seek(SeekFrom::End(0))?);
        blob.seek(SeekFrom::Start(position))?;
        return Ok(StreamAt {
            head: Vec::new(),
            head_pos: 0,
            dec: Decoder::Plain(blob),
            position,
        });
    }
    // The last checkpoint at or before the offset; without one, the start (no check). The
    // recorded length is not trusted to cut the stream short: past the end, the data itself
    // ends.
    let index = cps
        .points
        .partition_point(|p| p.out <= offset)
        .checked_sub(1);
    let start = Checkpoint::start(0, 0);
    let cp = index.map_or(&start, |i| &cps.points[i]);
    let mut dec = match compression {
        Compression::Gzip => {
            let window = match &cp.window {
                Some(w) => Some(unpack_window(w, index.unwrap_or(0), cp.out)?),
                None => None,
            };
            Decoder::Gzip(Box::new(gzip::Core::resume(
                blob,
                cp,
                index.unwrap_or(0),
                window.as_deref(),
            )?))
        }
        Compression::Zstd => Decoder::Zstd(Box::new(zstd::Core::resume(blob, cp.input)?)),
        _ => {
            blob.seek(SeekFrom::Start(0))?;
            Decoder::Other(Box::new(OtherDecoder::new(compression, blob)))
        }
    };
    let mut head = vec![0u8; CHECK_LEN];
    let n = read_full(&mut dec, &mut head)?;
    head.truncate(n);
    if let Some(index) = index {
        let found = crc32(0, &head);
        if found != cp.check {
            return Err(SeekError::CheckMismatch {
                index,
                offset: cp.out,
                expected: cp.check,
                found,
            }
            .into_io());
        }
    }
    let mut skip = offset - cp.out;
    let mut head_pos = 0;
    if skip <= head.len() as u64 {
        head_pos = skip as usize;
        skip = 0;
    } else {
        skip -= head.len() as u64;
        head = Vec::new();
    }
    let mut position = offset - skip;
    if skip > 0 {
        let mut scratch = vec![0u8; crate::compress::IO_BUF_SIZE];
        while skip > 0 {
            let want = scratch
                .len()
                .min(usize::try_from(skip).unwrap_or(usize::MAX));
            let n = dec.read(&mut scratch[..want])?;
            if n == 0 {
                break;
            }
            skip -= n as u64;
            position += n as u64;
        }
    }
    Ok(StreamAt {
        head,
        head_pos,
        dec,
        position,
    })
}

/// The window of checkpoint `index`, decompressed and checked for its length.
fn unpack_window(w: &Window, index: usize, offset: u64) -> io::Result<Vec<u8>> {
    let bad = |reason: String| {
        SeekError::Window {
            index,
            offset,
            reason,
        }
        .into_io()
    };
    let window = ::zstd::bulk::decompress(&w.zstd, WINDOW).map_err(|e| bad(e.to_string()))?;
    let want = w.member_out.min(WINDOW as u64) as usize;
    if window.len() != want {
        return Err(bad(format!(
            "{} bytes, not the {want} before the checkpoint",
            window.len()
        )));
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A small xorshift: deterministic test data and offsets.
    pub(super) struct Rng(pub(super) u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        pub(super) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Layer-like bytes: text (deflate's usual work), incompressible runs (stored blocks) and
    /// runs of zeros (where two bit offsets can decode alike).
    fn layer_like(len: usize, seed: u64) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "usr/", "lib/", "share", "bin/", "python3", ".so.1", "/etc/", "import ", "return ",
            "static ", "0000755", "\n", " ", "\t", "self.", "data",
        ];
        let mut rng = Rng(seed | 1);
        let mut v = Vec::with_capacity(len + 100_000);
        while v.len() < len {
            match rng.below(10) {
                0 => {
                    for _ in 0..1000 + rng.below(60_000) {
                        v.push(rng.next() as u8);
                    }
                }
                1 => v.resize(v.len() + rng.below(20_000) as usize, 0),
                _ => {
                    let end = v.len() + rng.below(40_000) as usize;
                    while v.len() < end {
                        v.extend_from_slice(WORDS[rng.below(16) as usize].as_bytes());
                    }
                }
            }
        }
        v.truncate(len);
        v
    }

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Decompresses `blob` through a [`CheckpointingReader`], in reads of an odd size.
    fn index(c: Compression, blob: &[u8], spacing: u64) -> io::Result<(Vec<u8>, Checkpoints)> {
        let mut r = CheckpointingReader::with_spacing(c, blob, spacing)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 7919];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok((out, r.finish()));
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Up to `max` bytes of the stream from `offset`, through [`open_at`].
    fn read_at(
        blob: &[u8],
        c: Compression,
        cps: &Checkpoints,
        offset: u64,
        max: u64,
    ) -> io::Result<Vec<u8>> {
        let s = open_at(Cursor::new(blob), c, cps, offset)?;
        let mut got = Vec::new();
        s.take(max).read_to_end(&mut got)?;
        Ok(got)
    }

    /// Indexes `blob` (the compression of `data`), round-trips the checkpoints through their
    /// encoding, and reads at many offsets: the start, each checkpoint and its neighbours,
    /// random ones, the last byte, the end and beyond; from some, to the end (a member's
    /// trailer is checked after a restart inside it).
    fn check_everywhere(c: Compression, blob: &[u8], data: &[u8], spacing: u64) -> Checkpoints {
        let (out, cps) = index(c, blob, spacing).unwrap();
        assert!(out == data, "{c:?}: the decompressed stream differs");
        assert_eq!(cps.lengths, Some((blob.len() as u64, data.len() as u64)));
        let parsed = Checkpoints::parse(&cps.to_bytes()).unwrap();
        assert_eq!(parsed, cps);
        let len = data.len() as u64;
        let mut offsets = vec![0, 1, len.saturating_sub(1), len, len + 5];
        for p in cps.iter() {
            offsets.extend([p.out.saturating_sub(1), p.out, p.out + 1]);
        }
        let mut rng = Rng(len | 1);
        offsets.extend((0..40).map(|_| rng.below(len.max(1))));
        for off in offsets {
            let want = &data[off.min(len) as usize..];
            let want = &want[..want.len().min(100_000)];
            let got = read_at(blob, c, &parsed, off, 100_000).unwrap();
            assert!(
                got == want,
                "{c:?}: offset {off}: {} bytes differ",
                got.len()
            );
            let s = open_at(Cursor::new(blob), c, &parsed, off).unwrap();
            assert_eq!(s.position(), off.min(len), "{c:?}: offset {off}");
        }
        for p in cps.iter().skip(1).step_by(3) {
            let off = (p.out + 1).min(len);
            let got = read_at(blob, c, &parsed, off, u64::MAX).unwrap();
            assert!(got == data[off as usize..], "{c:?}: to the end from {off}");
        }
        cps
    }

    /// The staging path runs decoders on threads.
    #[test]
    fn readers_are_send() {
        fn send<T: Send>() {}
        send::<CheckpointingReader<std::fs::File>>();
        send::<StreamAt<std::fs::File>>();
    }

    #[test]
    fn gzip_single_member_at_levels_1_6_9() {
        let data = layer_like(3 << 20, 7);
        let spacing = 64 * 1024;
        let mut bits_seen = 0u8;
        for level in [1, 6, 9] {
            let blob = gzip(&data, level);
            let cps = check_everywhere(Compression::Gzip, &blob, &data, spacing);
            let windows = cps.iter().filter(|p| p.window.is_some()).count();
            assert_eq!(
                cps.len(),
                windows + 1,
                "level {level}: one member, one free checkpoint"
            );
            let outs: Vec<u64> = cps
                .iter()
                .map(|p| p.out)
                .chain([data.len() as u64])
                .collect();
            let widest = outs.windows(2).map(|w| w[1] - w[0]).max().unwrap();
            if level == 1 {
                // zlib-rs's level 1 ("quick", as zlib-ng's) writes blocks of megabytes: the
                // only boundaries there are.
                assert!(windows >= 1, "level 1: {outs:?}");
            } else {
                // At the first block boundary `spacing` after the last checkpoint.
                assert!(widest < 4 * spacing, "level {level}: {outs:?}");
            }
            for p in cps.iter() {
                bits_seen |= 1 << p.bits;
            }
        }
        assert_eq!(bits_seen, 0xff, "restarts at every bit offset were tested");
    }

    #[test]
    fn gzip_with_the_real_spacing() {
        let data = layer_like(17 << 20, 3);
        let blob = gzip(&data, 6);
        let cps = check_everywhere(Compression::Gzip, &blob, &data, SPACING);
        let outs: Vec<u64> = cps.iter().map(|p| p.out).collect();
        assert_eq!(outs.len(), 3, "{outs:?}");
        assert!(
            outs[1] >= SPACING && outs[1] < SPACING + (1 << 20),
            "{outs:?}"
        );
        assert!(outs[2] - outs[1] >= SPACING, "{outs:?}");
    }

    #[test]
    fn gzip_multi_member_and_pgzip() {
        let data = layer_like(2 << 20, 11);
        // eStargz-like: members of many sizes, an empty one among them.
        let mut blob = Vec::new();
        let mut starts = Vec::new();
        let mut at = 0;
        for (i, size) in [0usize, 10, 300_000, 5_000, 1_200_000, 0, 50_000, 700_000]
            .into_iter()
            .enumerate()
        {
            let size = size.min(data.len() - at);
            starts.push((blob.len() as u64, at as u64));
            blob.extend(gzip(&data[at..at + size], [1, 6, 9][i % 3]));
            at += size;
        }
        blob.extend(gzip(&data[at..], 6));
        let cps = check_everywhere(Compression::Gzip, &blob, &data, 64 * 1024);
        // Every member start that begins `spacing / 32` after the last checkpoint is one, free.
        let free: Vec<(u64, u64)> = cps
            .iter()
            .filter(|p| p.window.is_none())
            .map(|p| (p.input, p.out))
            .collect();
        // The last member is empty: a checkpoint at the end.
        let last = (blob.len() as u64 - 20, data.len() as u64);
        assert_eq!(
            free,
            [starts[0], starts[3], starts[4], starts[5], starts[7], last]
        );
        assert!(
            cps.len() > free.len() + 10,
            "windows inside the big members"
        );

        // hoist's own parallel gzip: one member of byte-aligned (sync-flushed) blocks.
        let mut pgz = Vec::new();
        crate::pgzip::ParallelGzip::new(&data[..], 6)
            .read_to_end(&mut pgz)
            .unwrap();
        let cps = check_everywhere(Compression::Gzip, &pgz, &data, 64 * 1024);
        let outs: Vec<u64> = cps
            .iter()
            .map(|p| p.out)
            .chain([data.len() as u64])
            .collect();
        assert!(
            outs.windows(2).all(|w| w[1] - w[0] < 4 * 64 * 1024),
            "{outs:?}"
        );
    }

    fn skippable(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x5a, 0x2a, 0x4d, 0x18];
        f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn zstd_frames_are_checkpoints() {
        let data = layer_like(2 << 20, 5);
        let mut blob = skippable(b"leading");
        let mut starts = Vec::new();
        let mut at = 0;
        for size in [100_000usize, 3, 500_000, 40_000, 700_000, 1] {
            starts.push((blob.len() as u64, at as u64));
            blob.extend(::zstd::encode_all(&data[at..at + size], 3).unwrap());
            at += size;
            if size == 40_000 {
                blob.extend(skippable(&[7u8; 1000]));
            }
        }
        starts.push((blob.len() as u64, at as u64));
        blob.extend(::zstd::encode_all(&data[at..], 19).unwrap());
        blob.extend(skippable(b""));
        let cps = check_everywhere(Compression::Zstd, &blob, &data, 64 * 1024);
        let points: Vec<(u64, u64)> = cps.iter().map(|p| (p.input, p.out)).collect();
        // The start (a skippable frame), then frames at least 2 KiB apart; the skippable frame
        // after the 40,000 bytes starts where its data frame would count.
        let skip_at = starts[4].0 - 1008;
        let end = (blob.len() as u64 - 8, data.len() as u64);
        assert_eq!(
            points,
            [
                (0, 0),
                starts[1],
                starts[3],
                (skip_at, starts[4].1),
                starts[5],
                end
            ]
        );

        // One frame: the start is the only checkpoint.
        let one = ::zstd::encode_all(&data[..], 3).unwrap();
        let cps = check_everywhere(Compression::Zstd, &one, &data, 64 * 1024);
        assert_eq!(cps.len(), 1);
    }

    #[test]
    fn plain_bzip2_xz() {
        let data = layer_like(300_000, 13);
        let cps = check_everywhere(Compression::None, &data, &data, 64 * 1024);
        assert!(cps.is_empty());
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&data).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        let xz = xz.finish().unwrap();
        for (c, blob) in [(Compression::Bzip2, bz), (Compression::Xz, xz)] {
            let cps = check_everywhere(c, &blob, &data, 64 * 1024);
            assert_eq!(cps.len(), 1, "{c:?}");
        }
    }

    /// Whatever [`crate::compress::decoder`] accepts, the checkpointing reader gives the same
    /// bytes for; whatever it refuses, the checkpointing reader refuses too.
    #[test]
    fn accepts_and_refuses_like_the_decoder() {
        let data = layer_like(200_000, 17);
        let gz = gzip(&data, 6);
        let zs = ::zstd::encode_all(&data[..], 3).unwrap();
        let mut cases: Vec<(&str, Compression, Vec<u8>)> = vec![
            ("empty gzip", Compression::Gzip, vec![]),
            ("gzip header only", Compression::Gzip, gz[..10].to_vec()),
            (
                "gzip trailing garbage",
                Compression::Gzip,
                [&gz[..], b"xyz"].concat(),
            ),
            (
                "gzip trailing zeros",
                Compression::Gzip,
                [&gz[..], &[0; 20]].concat(),
            ),
            ("gzip reserved flag", Compression::Gzip, {
                let mut g = gz.clone();
                g[3] |= 0x20;
                g
            }),
            ("empty zstd", Compression::Zstd, vec![]),
            (
                "zstd trailing garbage",
                Compression::Zstd,
                [&zs[..], b"xyz"].concat(),
            ),
            ("zstd skippable only", Compression::Zstd, skippable(b"x")),
        ];
        for cut in [
            11,
            100,
            gz.len() / 2,
            gz.len() - 9,
            gz.len() - 4,
            gz.len() - 1,
        ] {
            cases.push(("gzip truncated", Compression::Gzip, gz[..cut].to_vec()));
        }
        for cut in [3, 100, zs.len() / 2, zs.len() - 1] {
            cases.push(("zstd truncated", Compression::Zstd, zs[..cut].to_vec()));
        }
        for at in [gz.len() / 3, gz.len() - 8, gz.len() - 2] {
            let mut g = gz.clone();
            g[at] ^= 0x55;
            cases.push(("gzip corrupted", Compression::Gzip, g));
        }
        // Optional header fields, with a header CRC right and wrong.
        let mut header = vec![0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 255];
        header.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
        header.extend_from_slice(b"name\0comment\0");
        let hcrc = (crc32(0, &header) as u16).to_le_bytes();
        for (name, h) in [
            ("gzip FHCRC", hcrc),
            ("gzip bad FHCRC", [hcrc[0] ^ 1, hcrc[1]]),
        ] {
            cases.push((
                name,
                Compression::Gzip,
                [&header[..], &h, &gz[10..]].concat(),
            ));
        }
        for (name, c, blob) in cases {
            let want = crate::compress::decoder(c, &blob[..]).and_then(|mut d| {
                let mut v = Vec::new();
                d.read_to_end(&mut v).map(|_| v)
            });
            let got = index(c, &blob, 64 * 1024).map(|(v, _)| v);
            match (&want, &got) {
                (Ok(w), Ok(g)) => assert!(w == g, "{name}: different bytes"),
                (Err(_), Err(_)) => {}
                _ => panic!("{name}: the decoder gives {want:?}, the checkpointing reader {got:?}"),
            }
        }
    }

    /// The checkpoints and errors the tests below tamper with.
    pub(super) fn gzip_case() -> (Vec<u8>, Vec<u8>, Checkpoints) {
        let data = layer_like(1 << 20, 23);
        let blob = gzip(&data, 6);
        let (_, cps) = index(Compression::Gzip, &blob, 64 * 1024).unwrap();
        (data, blob, cps)
    }

    fn seek_error(e: &io::Error) -> &SeekError {
        e.get_ref()
            .and_then(|e| e.downcast_ref::<SeekError>())
            .unwrap_or_else(|| panic!("not a SeekError: {e:?}"))
    }

    /// A wrong window, bit offset, byte offset or check never gives wrong data: the check
    /// after the checkpoint (or the decoder) fails, naming the checkpoint.
    #[test]
    fn wrong_checkpoints_are_errors() {
        let (data, blob, cps) = gzip_case();
        let other = gzip(&layer_like(1 << 20, 99), 6);
        let n = cps.len();
        assert!(n > 5, "{n}");
        for i in 1..n {
            let p = &cps.points[i];
            let mut tampered = Vec::new();
            let mut t = cps.clone();
            t.points[i].check ^= 1;
            tampered.push(("check", t));
            for bits in 0..8 {
                if bits != p.bits {
                    let mut t = cps.clone();
                    t.points[i].bits = bits;
                    tampered.push(("bits", t));
                }
            }
            for delta in [-1i64, 1] {
                let mut t = cps.clone();
                t.points[i].input = p.input.wrapping_add_signed(delta);
                tampered.push(("input", t));
            }
            let mut t = cps.clone();
            let w = t.points[i].window.as_mut().unwrap();
            let j = if i > 1 { i - 1 } else { i + 1 };
            w.zstd = cps.points[j].window.as_ref().unwrap().zstd.clone();
            tampered.push(("window of another checkpoint", t));
            let mut t = cps.clone();
            t.points[i].window.as_mut().unwrap().zstd =
                ::zstd::encode_all(&[0u8; 100][..], 3).unwrap().into();
            tampered.push(("short window", t));
            for (what, t) in tampered {
                // The right data (a window no back-reference reaches, equivalent bits), or
                // an error at the latest at the member's end: never wrong data.
                match read_at(&blob, Compression::Gzip, &t, p.out + 10, u64::MAX) {
                    Ok(got) => assert!(
                        got == data[p.out as usize + 10..],
                        "checkpoint {i}, wrong {what}: wrong data, no error"
                    ),
                    Err(e) => {
                        let msg = seek_error(&e).to_string();
                        assert!(
                            msg.contains(&format!("checkpoint {i} "))
                                || msg.starts_with("corrupt gzip data"),
                            "checkpoint {i}, wrong {what}: {msg}"
                        );
                    }
                }
            }
            // Checkpoints of another blob.
            let e = read_at(&other, Compression::Gzip, &cps, p.out, 10).unwrap_err();
            seek_error(&e);
        }
        // Found by fuzzing: a recorded length does not cut the data short, and a free
        // checkpoint past the blob's end is an error, not an empty stream.
        let mut t = cps.clone();
        t.lengths = Some((10, 83));
        assert!(read_at(&blob, Compression::Gzip, &t, 100, u64::MAX).unwrap() == data[100..]);
        let mut t = cps.clone();
        let last = t.points.last().unwrap().clone();
        t.points.push(Checkpoint {
            out: last.out + 10,
            input: blob.len() as u64 + 100,
            bits: 0,
            check: crc32(0, &[]),
            window: None,
        });
        let e = read_at(&blob, Compression::Gzip, &t, last.out + 11, 10).unwrap_err();
        assert!(matches!(seek_error(&e), SeekError::Truncated { .. }), "{e}");
        let e = open_at(Cursor::new(&blob), Compression::Zstd, &cps, 0).unwrap_err();
        assert_eq!(
            seek_error(&e).to_string(),
            "checkpoints of a gzip blob used to read a zstd blob"
        );
    }

    /// Checkpoints taken before the end cover what was read, and do not know the length:
    /// reading past what they cover still works.
    #[test]
    fn checkpoints_of_a_partial_read() {
        let (data, blob, _) = gzip_case();
        let mut r =
            CheckpointingReader::with_spacing(Compression::Gzip, &blob[..], 64 * 1024).unwrap();
        let mut half = vec![0u8; data.len() / 2];
        r.read_exact(&mut half).unwrap();
        let cps = r.finish();
        assert_eq!(cps.uncompressed_len(), None);
        assert!(cps.len() >= 2, "{}", cps.len());
        assert!(cps.iter().all(|p| p.out < half.len() as u64));
        for off in [
            0,
            data.len() as u64 / 3,
            data.len() as u64 - 10,
            data.len() as u64 + 1,
        ] {
            let got = read_at(&blob, Compression::Gzip, &cps, off, u64::MAX).unwrap();
            assert!(
                got == data[(off as usize).min(data.len())..],
                "offset {off}"
            );
        }
    }
}

#[cfg(test)]
mod measure {
    use super::*;
    use std::time::Instant;

    fn drain(mut r: impl Read) -> u64 {
        let mut buf = vec![0u8; crate::compress::IO_BUF_SIZE];
        let mut n = 0;
        loop {
            match r.read(&mut buf).unwrap() {
                0 => return n,
                k => n += k as u64,
            }
        }
    }

    /// Figures for the report, on the blobs named in `HOIST_SEEK_MEASURE` (separated by `:`):
    /// decompression through [`crate::compress::decoder`] and through the checkpointing
    /// reader (3 runs each, MB/s of uncompressed data), the checkpoints and their encoded
    /// size, and `open_at` at 20 random offsets. Run with
    /// `HOIST_SEEK_MEASURE=a.gz:b.zst cargo test --release -p hoist-core --lib measure_ -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement on local files"]
    fn measure_blobs() {
        let paths = std::env::var("HOIST_SEEK_MEASURE").unwrap_or_default();
        for path in paths.split(':').filter(|p| !p.is_empty()) {
            let open = || std::fs::File::open(path).unwrap();
            let c = crate::compress::Peeked::new(open()).unwrap().compression();
            let size = open().metadata().unwrap().len();
            let (mut plain, mut indexed) = (Vec::new(), Vec::new());
            let (mut cps, mut stats) = (None, None);
            let mut out = 0;
            for _ in 0..3 {
                let t = Instant::now();
                out = drain(crate::compress::decoder(c, open()).unwrap());
                plain.push(out as f64 / t.elapsed().as_secs_f64() / 1e6);
                let t = Instant::now();
                let mut r = CheckpointingReader::new(c, open()).unwrap();
                assert_eq!(drain(&mut r), out);
                indexed.push(out as f64 / t.elapsed().as_secs_f64() / 1e6);
                stats = r.gzip_stats();
                cps = Some(r.finish());
            }
            let cps = cps.unwrap();
            let enc = cps.to_bytes().len();
            let windows = cps.iter().filter(|p| p.window_len() > 0).count();
            let mut rng = tests::Rng(out | 1);
            let t = Instant::now();
            for _ in 0..20 {
                let off = rng.below(out.max(1));
                let mut s = open_at(open(), c, &cps, off).unwrap();
                let mut b = vec![0u8; 65536];
                s.read_exact(&mut b[..(out - off).min(65536) as usize])
                    .unwrap();
            }
            let per_open = t.elapsed().as_secs_f64() / 20.0 * 1e3;
            let fmt = |v: &[f64]| {
                v.iter()
                    .map(|x| format!("{x:.0}"))
                    .collect::<Vec<_>>()
                    .join("/")
            };
            println!(
                "{path}: {c:?} {size} -> {out} bytes; decoder {} MB/s, checkpointing {} MB/s; \
                 {} checkpoints ({windows} windows), encoded {enc} bytes = {:.3}% of uncompressed; \
                 open_at + 64 KiB: {per_open:.1} ms; gzip boundaries {stats:?}",
                fmt(&plain),
                fmt(&indexed),
                cps.len(),
                enc as f64 * 100.0 / out as f64,
            );
        }
    }
}
