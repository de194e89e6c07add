//! The checkpoints of a blob and their encoding.

use std::fmt;

use super::{Compression, MAX_WINDOW_ENCODED, SeekError};

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

/// Where decompression of a blob can restart: enough to read its uncompressed stream from any
/// offset after decompressing at most [`SPACING`](super::SPACING) bytes (plus one deflate
/// block; for zstd, see the [module docs](super)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoints {
    pub(super) compression: Compression,
    /// The blob's compressed and uncompressed lengths, when the whole blob was read.
    pub(super) lengths: Option<(u64, u64)>,
    pub(super) points: Vec<Checkpoint>,
}

/// One place where decompression can restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Offset in the uncompressed stream.
    pub(super) out: u64,
    /// Offset in the blob of the first whole byte after the restart point.
    pub(super) input: u64,
    /// 0..=7: the restart point is this many bits before `input` (the high bits of the byte
    /// before it; deflate packs bits from the low end).
    pub(super) bits: u8,
    /// CRC-32 of the uncompressed bytes `out..out + CHECK_LEN` (fewer at the end).
    pub(super) check: u32,
    /// For a restart inside a gzip member.
    pub(super) window: Option<Window>,
}

/// What a restart inside a gzip member needs besides its position.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Window {
    /// Uncompressed bytes of the member before the checkpoint (its trailer checks the total).
    pub(super) member_out: u64,
    /// CRC-32 of those bytes (its trailer checks the CRC of the whole member).
    pub(super) member_crc: u32,
    /// The last `min(member_out, 32 KiB)` of them, zstd-compressed.
    pub(super) zstd: Box<[u8]>,
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
    pub(super) fn start(input: u64, out: u64) -> Self {
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
    pub(super) fn new(compression: Compression) -> Self {
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

    /// The compact, versioned binary encoding (see the [module docs](super)).
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
    /// increase, and nothing is decompressed (windows are, when [`open_at`](super::open_at) uses them).
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
            return Err(format!("a window in a {} blob", super::name(&compression)));
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

    /// A varint as [`put_varint`] writes it: at most 64 bits, no needless high zero byte (so
    /// an encoding has one form, and parses back to the bytes it came from).
    fn varint(&mut self, what: &str) -> Result<u64, SeekError> {
        let start = self.at;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if (shift == 63 && bits > 1) || (shift > 0 && byte == 0) {
                break;
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.error(start, format!("{what} is not a minimal 64-bit varint")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::tests::gzip_case;

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
                "checkpoints, byte 7: the count is not a minimal 64-bit varint",
            ),
            (
                "non-minimal varint",
                [&encoding(None, 1, &[])[..7], &[0x80, 0]].concat(),
                "checkpoints, byte 7: the count is not a minimal 64-bit varint",
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
                "checkpoint 1: a window in a zstd blob",
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
