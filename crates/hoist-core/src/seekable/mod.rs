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
//!   previous checkpoint; its window is stored zstd-compressed. See [`gzip`] for how the bit
//!   position is found exactly with zlib-rs's safe API.
//! - **zstd**: a frame cannot be entered in the middle, so the checkpoints are frame starts
//!   (zstd:chunked and seekable-format layers have many frames; skippable frames are skipped).
//!   **A blob of one zstd frame has no checkpoint but its start**: reading at an offset
//!   decompresses everything before it.
//! - **bzip2, xz**: only the start (these are outer archive compressions, not layer ones).
//! - **uncompressed**: no checkpoint is needed; [`open_at`] seeks.
//!
//! Every checkpoint also stores the CRC-32 of the first [`CHECK_LEN`] uncompressed bytes after
//! it: [`open_at`] checks them before it gives a byte, so a checkpoint that does not belong to
//! the blob (a wrong window, a wrong offset, another blob) is an error, never wrong data. A
//! gzip member entered in the middle still has its trailer's CRC-32 checked at its end: the
//! checkpoint carries the CRC of the member's bytes before it.
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

mod gzip;
mod zstd;

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

pub use crate::compress::Compression;

/// Uncompressed bytes between two checkpoints that carry a window (inside a gzip member).
///
/// A window is 32 KiB that zstd shrinks to about 10 KiB on layer data (measured; see the
/// module tests' `measure_` test). The store's index may take 128 bytes per tar entry in
/// all, and the real-world image of issue 6 has one entry per 30 KiB of layer data on
/// average; at 8 MiB the windows cost about 0.15% of the uncompressed size (about 45 bytes
/// per entry there), leaving the rest to the entries. A read then decompresses at most
/// 8 MiB before its offset: about 20 ms at zlib-rs's 400 MiB/s.
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

/// First bytes of an encoding, then the version.
const MAGIC: &[u8; 4] = b"HSKP";

/// The version of the encoding [`Checkpoints::to_bytes`] writes and [`Checkpoints::parse`] reads.
const VERSION: u8 = 1;

/// Fewest bytes one checkpoint takes in the encoding (two one-byte varints, tag, check):
/// bounds the count a hostile encoding can claim.
const MIN_ENCODED_POINT: usize = 7;

/// Tag bits of a checkpoint in the encoding.
const TAG_BITS: u8 = 0b0111;
const TAG_WINDOW: u8 = 0b1000;

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
    #[error("checkpoints of a {stored:?} blob used to read a {requested:?} blob")]
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
    #[error("corrupt {compression:?} data at compressed offset {offset}: {reason}")]
    Corrupt {
        /// The blob's compression.
        compression: Compression,
        /// Where (bytes into the blob).
        offset: u64,
        /// What the decoder found.
        reason: String,
    },
    /// The blob ends inside a gzip member or zstd frame.
    #[error("{compression:?} data truncated: it ends at compressed offset {offset} inside {what}")]
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

/// Where decompression of a blob can restart: enough to read its uncompressed stream from any
/// offset after decompressing at most [`SPACING`] bytes (plus one deflate block; for zstd, see
/// the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoints {
    compression: Compression,
    /// The blob's compressed and uncompressed lengths, when the whole blob was read.
    lengths: Option<(u64, u64)>,
    points: Vec<Checkpoint>,
}

/// One place where decompression can restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Offset in the uncompressed stream.
    out: u64,
    /// Offset in the blob of the first whole byte after the restart point.
    input: u64,
    /// 0..=7: the restart point is this many bits before `input` (the high bits of the byte
    /// before it; deflate packs bits from the low end).
    bits: u8,
    /// CRC-32 of the uncompressed bytes `out..out + CHECK_LEN` (fewer at the end).
    check: u32,
    /// For a restart inside a gzip member.
    window: Option<Window>,
}

/// What a restart inside a gzip member needs besides its position.
#[derive(Clone, PartialEq, Eq)]
struct Window {
    /// Uncompressed bytes of the member before the checkpoint (its trailer checks the total).
    member_out: u64,
    /// CRC-32 of those bytes (its trailer checks the CRC of the whole member).
    member_crc: u32,
    /// The last `min(member_out, 32 KiB)` of them, zstd-compressed.
    zstd: Box<[u8]>,
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Window")
            .field("member_out", &self.member_out)
            .field("member_crc", &format_args!("{:08x}", self.member_crc))
            .field("zstd_len", &self.zstd.len())
            .finish()
    }
}

impl Checkpoint {
    /// A free checkpoint: the start of a gzip member or zstd frame (or of the stream).
    fn start(input: u64, out: u64) -> Self {
        Checkpoint {
            out,
            input,
            bits: 0,
            check: 0,
            window: None,
        }
    }

    /// Its offset in the uncompressed stream.
    pub fn uncompressed_offset(&self) -> u64 {
        self.out
    }

    /// Its offset in the blob, in bits: decompression restarts at this bit (deflate blocks
    /// need not start on a byte).
    pub fn compressed_bit_offset(&self) -> u64 {
        self.input * 8 - u64::from(self.bits)
    }

    /// Bytes its stored window takes (0 for a free checkpoint).
    pub fn window_len(&self) -> usize {
        self.window.as_ref().map_or(0, |w| w.zstd.len())
    }
}

impl Checkpoints {
    /// The checkpoints of a blob that has none yet (nothing read).
    fn new(compression: Compression) -> Self {
        Checkpoints {
            compression,
            lengths: None,
            points: Vec::new(),
        }
    }

    /// The compression of the blob they belong to.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// How many checkpoints there are.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when there is none (an uncompressed blob, or nothing was read).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The checkpoints, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Checkpoint> {
        self.points.iter()
    }

    /// The length of the blob's uncompressed stream, when it was read to its end.
    pub fn uncompressed_len(&self) -> Option<u64> {
        self.lengths.map(|(_, u)| u)
    }

    /// The length of the compressed blob, when it was read to its end.
    pub fn compressed_len(&self) -> Option<u64> {
        self.lengths.map(|(c, _)| c)
    }

    /// The compact, versioned binary encoding (see the [module docs](self)).
    pub fn to_bytes(&self) -> Vec<u8> {
        let windows: usize = self.points.iter().map(Checkpoint::window_len).sum();
        let mut b = Vec::with_capacity(32 + self.points.len() * 16 + windows);
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.push(compression_code(self.compression));
        match self.lengths {
            Some((c, u)) => {
                b.push(1);
                put_varint(&mut b, c);
                put_varint(&mut b, u);
            }
            None => b.push(0),
        }
        put_varint(&mut b, self.points.len() as u64);
        let (mut out, mut input) = (0, 0);
        for p in &self.points {
            put_varint(&mut b, p.out - out);
            put_varint(&mut b, p.input - input);
            (out, input) = (p.out, p.input);
            let tag = p.bits | if p.window.is_some() { TAG_WINDOW } else { 0 };
            b.push(tag);
            b.extend_from_slice(&p.check.to_le_bytes());
            if let Some(w) = &p.window {
                put_varint(&mut b, w.member_out);
                b.extend_from_slice(&w.member_crc.to_le_bytes());
                put_varint(&mut b, w.zstd.len() as u64);
                b.extend_from_slice(&w.zstd);
            }
        }
        b
    }

    /// Reads checkpoints encoded by [`to_bytes`](Self::to_bytes). The bytes are untrusted:
    /// every count and length is checked against what the bytes can hold, offsets must
    /// increase, and nothing is decompressed (windows are, when [`open_at`] uses them).
    pub fn parse(b: &[u8]) -> Result<Checkpoints, SeekError> {
        let mut r = Bytes { b, at: 0 };
        if r.take(MAGIC.len(), "the magic")? != MAGIC {
            return Err(r.error(0, "not hoist checkpoints (no HSKP magic)"));
        }
        let version = r.u8("the version")?;
        if version != VERSION {
            return Err(r.error(
                MAGIC.len(),
                format!("version {version}, this hoist reads version {VERSION}"),
            ));
        }
        let code = r.u8("the compression")?;
        let compression = compression_of_code(code)
            .ok_or_else(|| r.error(r.at - 1, format!("unknown compression code {code}")))?;
        let flags = r.u8("the flags")?;
        if flags & !1 != 0 {
            return Err(r.error(r.at - 1, format!("unknown flags {flags:#04x}")));
        }
        let lengths = if flags & 1 != 0 {
            Some((
                r.varint("the compressed length")?,
                r.varint("the uncompressed length")?,
            ))
        } else {
            None
        };
        let count = r.varint("the count")?;
        let room = (r.remaining() / MIN_ENCODED_POINT) as u64;
        if count > room {
            return Err(SeekError::Count { count, room });
        }
        let max_points = match compression {
            Compression::None => 0,
            Compression::Bzip2 | Compression::Xz => 1,
            Compression::Gzip | Compression::Zstd => usize::MAX,
        };
        if count as usize > max_points {
            return Err(SeekError::Count {
                count,
                room: max_points as u64,
            });
        }
        let mut points: Vec<Checkpoint> = Vec::with_capacity(count as usize);
        for index in 0..count as usize {
            let bad = |reason: String| SeekError::Checkpoint { index, reason };
            let d_out = r.varint("an uncompressed offset")?;
            let d_in = r.varint("a compressed offset")?;
            let (out, input) = match points.last() {
                None => (d_out, d_in),
                Some(prev) => {
                    for (what, previous, delta) in [
                        ("uncompressed", prev.out, d_out),
                        ("compressed", prev.input, d_in),
                    ] {
                        if delta == 0 {
                            return Err(SeekError::NotMonotonic {
                                index,
                                what,
                                previous,
                                found: previous,
                            });
                        }
                    }
                    let sum = |a: u64, d: u64, what: &str| {
                        a.checked_add(d)
                            .ok_or_else(|| bad(format!("{what} offset overflows")))
                    };
                    (
                        sum(prev.out, d_out, "uncompressed")?,
                        sum(prev.input, d_in, "compressed")?,
                    )
                }
            };
            let tag = r.u8("a tag")?;
            if tag & !(TAG_BITS | TAG_WINDOW) != 0 {
                return Err(bad(format!("unknown tag bits {tag:#04x}")));
            }
            let bits = tag & TAG_BITS;
            let check = r.u32("a check")?;
            let window = if tag & TAG_WINDOW != 0 {
                let member_out = r.varint("a member length")?;
                let member_crc = r.u32("a member CRC")?;
                let len = r.varint("a window length")?;
                if len > MAX_WINDOW_ENCODED as u64 {
                    return Err(bad(format!(
                        "a window of {len} bytes (at most {MAX_WINDOW_ENCODED})"
                    )));
                }
                let zstd = r.take(len as usize, "a window")?.into();
                Some(Window {
                    member_out,
                    member_crc,
                    zstd,
                })
            } else {
                None
            };
            let p = Checkpoint {
                out,
                input,
                bits,
                check,
                window,
            };
            check_point(&p, index, compression, lengths).map_err(bad)?;
            points.push(p);
        }
        if r.remaining() != 0 {
            return Err(r.error(
                r.at,
                format!("{} bytes after the last checkpoint", r.remaining()),
            ));
        }
        Ok(Checkpoints {
            compression,
            lengths,
            points,
        })
    }
}

/// What must hold of checkpoint `index`, besides following the one before.
fn check_point(
    p: &Checkpoint,
    index: usize,
    compression: Compression,
    lengths: Option<(u64, u64)>,
) -> Result<(), String> {
    if index == 0 && (p.out, p.input, p.bits, p.window.is_some()) != (0, 0, 0, false) {
        return Err("the first checkpoint is not the start of the blob".into());
    }
    if let Some(w) = &p.window {
        if compression != Compression::Gzip {
            return Err(format!("a window in a {compression:?} blob"));
        }
        if w.member_out > p.out {
            return Err(format!(
                "its member has {} bytes before it, more than the {} of the stream",
                w.member_out, p.out
            ));
        }
    } else if p.bits != 0 {
        return Err("a restart inside a byte without a window".into());
    }
    if p.input == 0 && p.bits != 0 {
        return Err("a restart before the first byte".into());
    }
    if let Some((c, u)) = lengths
        && (p.input > c || p.out > u)
    {
        return Err(format!(
            "offsets {} (compressed) and {} (uncompressed) beyond the blob's {c} and {u}",
            p.input, p.out
        ));
    }
    Ok(())
}

fn compression_code(c: Compression) -> u8 {
    match c {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Zstd => 2,
        Compression::Bzip2 => 3,
        Compression::Xz => 4,
    }
}

fn compression_of_code(code: u8) -> Option<Compression> {
    Some(match code {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Zstd,
        3 => Compression::Bzip2,
        4 => Compression::Xz,
        _ => return None,
    })
}

/// LEB128, as protobuf: 7 bits a byte, low bits first.
fn put_varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push(v as u8 | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

/// A cursor over an encoding, whose errors say where.
struct Bytes<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn error(&self, at: usize, reason: impl Into<String>) -> SeekError {
        SeekError::Format {
            at,
            reason: reason.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.b.len() - self.at
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], SeekError> {
        if n > self.remaining() {
            return Err(self.error(self.at, format!("truncated in {what}")));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, SeekError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, SeekError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn varint(&mut self, what: &str) -> Result<u64, SeekError> {
        let start = self.at;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.error(start, format!("{what} is not a valid 64-bit varint")))
    }
}

/// The checkpoints being recorded, with the check of the newest one still being summed.
#[derive(Debug)]
struct Recorder {
    cps: Checkpoints,
    /// The CRC-32 so far of the newest checkpoint's check, and the bytes it still needs.
    checking: Option<(u32, usize)>,
    /// [`SPACING`] (smaller in tests, to have many checkpoints in little data).
    spacing: u64,
}

impl Recorder {
    fn new(compression: Compression, spacing: u64) -> Self {
        Recorder {
            cps: Checkpoints::new(compression),
            checking: None,
            spacing,
        }
    }

    /// The uncompressed offset of the newest checkpoint.
    fn last_out(&self) -> Option<u64> {
        self.cps.points.last().map(|p| p.out)
    }

    /// Whether a free checkpoint at `out` is due ([`FREE_SPACING`] after the last one).
    fn free_due(&self, out: u64) -> bool {
        let free_spacing = self.spacing / (SPACING / FREE_SPACING);
        self.last_out()
            .is_none_or(|last| out - last >= free_spacing)
    }

    /// How many bytes after `out` a checkpoint with a window is due ([`SPACING`] after the
    /// last checkpoint): 0 when it is; `u64::MAX` before the first checkpoint.
    fn window_due_in(&self, out: u64) -> u64 {
        self.last_out()
            .map_or(u64::MAX, |last| (last + self.spacing).saturating_sub(out))
    }

    /// Records a checkpoint whose check is summed from the output that follows.
    fn push(&mut self, p: Checkpoint) {
        self.end_check();
        self.cps.points.push(p);
        self.checking = Some((0, CHECK_LEN));
    }

    /// Records a checkpoint whose check is already known.
    fn push_checked(&mut self, p: Checkpoint) {
        self.end_check();
        self.cps.points.push(p);
    }

    /// Uncompressed output, in order.
    fn output(&mut self, data: &[u8]) {
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
    fn finish(mut self, lengths: Option<(u64, u64)>) -> Checkpoints {
        if lengths.is_some() {
            self.end_check();
        } else if self.checking.take().is_some() {
            self.cps.points.pop();
        }
        self.cps.lengths = lengths;
        self.cps
    }
}

/// CRC-32 (gzip's), continued from `crc`.
fn crc32(crc: u32, data: &[u8]) -> u32 {
    zlib_rs::crc32::crc32(crc, data)
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

enum OtherDecoder<R: Read> {
    Bzip2(bzip2::read::MultiBzDecoder<R>),
    Xz(liblzma::read::XzDecoder<R>),
}

impl<R: Read> OtherDecoder<R> {
    /// The decoder [`crate::compress::decoder`] uses for `c`.
    fn new(c: Compression, r: R) -> Self {
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
    fn with_spacing(compression: Compression, inner: R, spacing: u64) -> io::Result<Self> {
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

/// The uncompressed stream of a blob from an offset on: what [`open_at`] returns.
pub struct StreamAt<R: Read> {
    /// Bytes decompressed ahead to check the checkpoint, not yet given.
    head: Vec<u8>,
    head_pos: usize,
    dec: Decoder<R>,
    position: u64,
}

enum Decoder<R: Read> {
    Empty,
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
            Decoder::Empty => Ok(0),
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
/// zstd, from the frame holding it). An offset at or past the end gives an empty stream.
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
    let end = cps.uncompressed_len().filter(|&len| offset >= len);
    if compression == Compression::None || end.is_some() {
        let dec = if end.is_some() {
            Decoder::Empty
        } else {
            blob.seek(SeekFrom::Start(offset))?;
            Decoder::Plain(blob)
        };
        return Ok(StreamAt {
            head: Vec::new(),
            head_pos: 0,
            dec,
            position: end.unwrap_or(offset),
        });
    }
    // The last checkpoint at or before the offset; without one, the start (no check).
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

/// Reads until `buf` is full or the stream ends; returns the count.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
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
    fn gzip_case() -> (Vec<u8>, Vec<u8>, Checkpoints) {
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
                                || msg.starts_with("corrupt Gzip data"),
                            "checkpoint {i}, wrong {what}: {msg}"
                        );
                    }
                }
            }
            // Checkpoints of another blob.
            let e = read_at(&other, Compression::Gzip, &cps, p.out, 10).unwrap_err();
            seek_error(&e);
        }
        let e = open_at(Cursor::new(&blob), Compression::Zstd, &cps, 0).unwrap_err();
        assert_eq!(
            seek_error(&e).to_string(),
            "checkpoints of a Gzip blob used to read a Zstd blob"
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

    fn encoding(lengths: Option<(u64, u64)>, c: u8, points: &[&[u8]]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend([VERSION, c, u8::from(lengths.is_some())]);
        if let Some((x, y)) = lengths {
            put_varint(&mut b, x);
            put_varint(&mut b, y);
        }
        put_varint(&mut b, points.len() as u64);
        for p in points {
            b.extend_from_slice(p);
        }
        b
    }

    /// A free checkpoint's encoding: deltas, tag, check.
    fn free(d_out: u8, d_in: u8, tag: u8) -> Vec<u8> {
        vec![d_out, d_in, tag, 1, 2, 3, 4]
    }

    #[test]
    fn parse_refuses_hostile_bytes() {
        let start = free(0, 0, 0);
        let window = |len: u8| {
            [
                &[9u8, 9, 3 | TAG_WINDOW, 0, 0, 0, 0, 5, 0, 0, 0, 0, len][..],
                &vec![0; len as usize],
            ]
            .concat()
        };
        let mut huge_count = encoding(None, 1, &[]);
        huge_count.pop();
        put_varint(&mut huge_count, u64::MAX >> 1);
        huge_count.extend([0; 64]);
        let mut long_cp = vec![9, 9, TAG_WINDOW, 0, 0, 0, 0, 5, 0, 0, 0, 0];
        put_varint(&mut long_cp, 40_000);
        long_cp.extend(vec![0; 40_000]);
        let long_window = encoding(None, 1, &[&start, &long_cp]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "empty",
                vec![],
                "checkpoints, byte 0: truncated in the magic",
            ),
            (
                "magic",
                b"HSKQ\x01\x01\x00\x00".to_vec(),
                "checkpoints, byte 0: not hoist checkpoints (no HSKP magic)",
            ),
            (
                "version",
                b"HSKP\x02\x01\x00\x00".to_vec(),
                "checkpoints, byte 4: version 2, this hoist reads version 1",
            ),
            (
                "compression",
                encoding(None, 9, &[]),
                "checkpoints, byte 5: unknown compression code 9",
            ),
            (
                "flags",
                b"HSKP\x01\x01\x02\x00".to_vec(),
                "checkpoints, byte 6: unknown flags 0x02",
            ),
            (
                "count",
                huge_count,
                "checkpoints: 9223372036854775807 claimed, but the encoding has room for 9 at most",
            ),
            (
                "plain with checkpoints",
                encoding(None, 0, &[&start]),
                "checkpoints: 1 claimed, but the encoding has room for 0 at most",
            ),
            (
                "xz with two",
                encoding(None, 4, &[&start, &free(1, 1, 0)]),
                "checkpoints: 2 claimed, but the encoding has room for 1 at most",
            ),
            (
                "varint",
                [&encoding(None, 1, &[])[..7], &[0xff; 11]].concat(),
                "checkpoints, byte 7: the count is not a valid 64-bit varint",
            ),
            (
                "first not at the start",
                encoding(None, 1, &[&free(5, 0, 0)]),
                "checkpoint 0: the first checkpoint is not the start of the blob",
            ),
            (
                "same uncompressed offset",
                encoding(None, 1, &[&start, &free(0, 4, 0)]),
                "checkpoint 1: uncompressed offset 0 does not follow the previous one (0)",
            ),
            (
                "same compressed offset",
                encoding(None, 2, &[&start, &free(4, 0, 0)]),
                "checkpoint 1: compressed offset 0 does not follow the previous one (0)",
            ),
            (
                "bits without a window",
                encoding(None, 1, &[&start, &free(1, 1, 3)]),
                "checkpoint 1: a restart inside a byte without a window",
            ),
            (
                "tag",
                encoding(None, 1, &[&start, &free(1, 1, 0x10)]),
                "checkpoint 1: unknown tag bits 0x10",
            ),
            (
                "window in zstd",
                encoding(None, 2, &[&start, &window(3)]),
                "checkpoint 1: a window in a Zstd blob",
            ),
            (
                "member longer than the stream",
                encoding(
                    None,
                    1,
                    &[
                        &start,
                        &[&[9u8, 9, TAG_WINDOW, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0][..]].concat(),
                    ],
                ),
                "checkpoint 1: its member has 10 bytes before it, more than the 9 of the stream",
            ),
            (
                "window too long",
                long_window,
                "checkpoint 1: a window of 40000 bytes (at most 33280)",
            ),
            (
                "window truncated",
                encoding(None, 1, &[&start, &window(3)[..14]]),
                "checkpoints, byte 28: truncated in a window",
            ),
            (
                "beyond the lengths",
                encoding(Some((8, 100)), 1, &[&start, &free(1, 9, 0)]),
                "checkpoint 1: offsets 9 (compressed) and 1 (uncompressed) beyond the blob's 8 and 100",
            ),
            (
                "trailing",
                [&encoding(None, 1, &[&start])[..], &[0]].concat(),
                "checkpoints, byte 15: 1 bytes after the last checkpoint",
            ),
            (
                "overflow",
                encoding(
                    None,
                    1,
                    &[
                        &start,
                        &free(1, 1, 0),
                        &[&[0xff; 9][..], &[1], &free(1, 1, 0)[1..]].concat(),
                    ],
                ),
                "checkpoint 2: uncompressed offset overflows",
            ),
        ];
        for (name, bytes, want) in cases {
            match Checkpoints::parse(&bytes) {
                Ok(c) => panic!("{name}: parsed {c:?}"),
                Err(e) => assert_eq!(e.to_string(), want, "{name}"),
            }
        }
        // Every truncation of a real encoding is refused.
        let (_, _, cps) = gzip_case();
        let bytes = cps.to_bytes();
        assert!(Checkpoints::parse(&bytes).is_ok());
        for cut in (0..300).chain((300..bytes.len()).step_by(101)) {
            assert!(Checkpoints::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
