//! gzip: members read with zlib-rs's raw inflate, checkpoints at member starts and, inside a
//! member, at deflate block boundaries with a window (zlib's `zran.c` scheme).
//!
//! ## Finding a boundary's bit position
//!
//! zlib-rs's safe API ([`zlib_rs::Inflate`]) stops at block boundaries
//! ([`InflateFlush::Block`]) and says how many input bytes it consumed, but not how many bits
//! of the last byte belong to the next block (C zlib reports them in `data_type`). Those bits
//! number 0 to 7: the decoder pulls input one byte at a time only while a code needs more bits
//! (zlib-rs `BitReader::need_bits`), and its fast loop gives back whole unused bytes when it
//! ends (`return_unused_bytes`), exactly as C zlib, whose `zran.c` relies on it.
//!
//! So at index time each of the 8 candidates is tried: a fresh raw inflater with the window as
//! its dictionary, fed the input from the candidate bit on, must reproduce the next
//! [`CHECK_LEN`] bytes the real decoder produced. The true candidate always does: decoding is
//! a function of the bit position and the history, and it gets the same bits (with the same
//! byte alignment, see below) and the same history. When exactly one candidate reproduces them
//! it is therefore the true one; this is exact, not a guess.
//!
//! Several candidates reproduce them before a stored block (incompressible data): a stored
//! block's header is 3 bits, then padding to the next byte, where its length is; candidates
//! that all read a stored header (from the real header bits or from the zero padding) with the
//! length at the same byte decode alike from there. They may differ only in the header's
//! "last block" bit; the member going on past the block's length proves it was not the last,
//! and then any candidate reading it so is right ([`Resolution::IfNotFinal`]). Any other
//! ambiguity (none was seen in the tests nor on real layers) leaves the boundary unused and
//! the next one is tried; when the member ends first, the member start that follows is a
//! checkpoint anyway.
//!
//! ## Restarting inside a byte
//!
//! zlib-rs's stable API has no `inflatePrime`, and a reader that shifts the input by some bits
//! is not enough: a stored block starts on a *byte* boundary of the original stream, which a
//! shifted stream moves. Instead the decoder is fed a synthetic prefix of empty deflate blocks
//! (no output) whose length in bits leaves exactly the checkpoint's bits of its last byte, and
//! that last byte carries those bits from the blob; the blob follows from the next byte on, so
//! byte boundaries stay where they are. Empty fixed-code blocks are 10 bits and the empty
//! dynamic block [`empty_dynamic_block`] writes is 91; with both, every length modulo 8 is
//! reachable.

use std::io::{self, Read, Seek, SeekFrom};

use zlib_rs::{Inflate, InflateFlush, Status};

use super::{
    CHECK_LEN, Checkpoint, Checkpoints, Compression, Recorder, SeekError, WINDOW,
    WINDOW_ZSTD_LEVEL, Window, crc32,
};
use crate::compress::IO_BUF_SIZE;

/// deflate's window, as a power of two (zlib's `windowBits`).
const WINDOW_BITS: u8 = 15;

/// Compressed input kept for the candidate checkpoint being verified, at most: far more than
/// [`CHECK_LEN`] bytes of output can need, unless the data is mostly empty blocks.
const MAX_PENDING_INPUT: usize = 1 << 20;

/// gzip header flags (RFC 1952).
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

/// Where the reader is in the gzip stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a member's header, or at the end.
    Between,
    Header,
    Body,
    Trailer,
    Done,
}

/// What one step of [`Core::step`] did.
#[derive(Debug)]
pub(super) enum Event {
    /// A member's header starts at this compressed offset.
    MemberStart(u64),
    /// `produced` bytes were written to the output; the input consumed is `consumed` of
    /// [`Core::buffer`]. With `boundary`, the decoder stopped at a deflate block boundary.
    Data {
        produced: usize,
        consumed: std::ops::Range<usize>,
        boundary: bool,
    },
    /// A member ended and its trailer matched.
    MemberEnd,
    /// The stream ended after a whole member.
    End,
}

/// A gzip stream decoder (one or more members) over raw inflate, with the gzip framing and
/// its checks done here so that it can also start inside a member.
pub(super) struct Core<R> {
    input: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    /// Compressed offset of `buf[pos]` (wrapping: a resumed decoder's synthetic prefix
    /// starts a few bytes before its checkpoint).
    offset: u64,
    /// The last input byte consumed.
    last_byte: u8,
    inflate: Inflate,
    state: State,
    /// Whether a member was seen (an empty stream is not gzip).
    started: bool,
    member_start: u64,
    /// CRC-32 and length of the member's output so far.
    crc: u32,
    member_out: u64,
    trailer: [u8; 8],
    trailer_len: usize,
}

impl<R: Read> Core<R> {
    fn new(input: R, offset: u64) -> Self {
        Core {
            input,
            buf: vec![0u8; IO_BUF_SIZE].into_boxed_slice(),
            pos: 0,
            len: 0,
            eof: false,
            offset,
            last_byte: 0,
            inflate: Inflate::new(false, WINDOW_BITS),
            state: State::Between,
            started: false,
            member_start: offset,
            crc: 0,
            member_out: 0,
            trailer: [0; 8],
            trailer_len: 0,
        }
    }

    /// The input buffer ([`Event::Data`]'s `consumed` indexes it).
    pub(super) fn buffer(&self) -> &[u8] {
        &self.buf
    }

    fn corrupt(&self, reason: impl Into<String>) -> io::Error {
        SeekError::Corrupt {
            compression: Compression::Gzip,
            offset: self.offset,
            reason: reason.into(),
        }
        .into_io()
    }

    fn truncated(&self, what: &str) -> io::Error {
        SeekError::Truncated {
            compression: Compression::Gzip,
            offset: self.offset,
            what: format!(
                "{what} of the member starting at offset {}",
                self.member_start
            ),
        }
        .into_io()
    }

    /// Makes input available; false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.len {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        loop {
            match self.input.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn header_byte(&mut self, crc: &mut u32) -> io::Result<u8> {
        if !self.fill()? {
            return Err(self.truncated("the header"));
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        self.offset = self.offset.wrapping_add(1);
        *crc = crc32(*crc, &[b]);
        Ok(b)
    }

    /// Reads a member header (RFC 1952), checking what flate2's `GzDecoder` checks.
    fn header(&mut self) -> io::Result<()> {
        let mut crc = 0;
        let mut fixed = [0u8; 10];
        for b in &mut fixed {
            *b = self.header_byte(&mut crc)?;
        }
        if fixed[..3] != [0x1f, 0x8b, 8] {
            return Err(SeekError::Corrupt {
                compression: Compression::Gzip,
                offset: self.member_start,
                reason: format!(
                    "not a gzip member header (bytes {:02x} {:02x} {:02x})",
                    fixed[0], fixed[1], fixed[2]
                ),
            }
            .into_io());
        }
        let flags = fixed[3];
        if flags & FRESERVED != 0 {
            return Err(self.corrupt(format!("gzip header with reserved flags {flags:#04x}")));
        }
        if flags & FEXTRA != 0 {
            let xlen =
                u16::from_le_bytes([self.header_byte(&mut crc)?, self.header_byte(&mut crc)?]);
            for _ in 0..xlen {
                self.header_byte(&mut crc)?;
            }
        }
        for flag in [FNAME, FCOMMENT] {
            if flags & flag != 0 {
                while self.header_byte(&mut crc)? != 0 {}
            }
        }
        if flags & FHCRC != 0 {
            let want = crc as u16;
            let found =
                u16::from_le_bytes([self.header_byte(&mut crc)?, self.header_byte(&mut crc)?]);
            if found != want {
                return Err(self.corrupt(format!(
                    "gzip header CRC {found:04x}, the header's is {want:04x}"
                )));
            }
        }
        Ok(())
    }

    /// Decodes some of the stream into `out` (not empty). With `hunt`, the decoder stops at
    /// deflate block boundaries and says so (the boundary is after the output given).
    pub(super) fn step(&mut self, out: &mut [u8], hunt: bool) -> io::Result<Event> {
        loop {
            match self.state {
                State::Done => return Ok(Event::End),
                State::Between => {
                    if !self.fill()? {
                        if !self.started {
                            return Err(self.truncated("the header"));
                        }
                        self.state = State::Done;
                        return Ok(Event::End);
                    }
                    self.started = true;
                    self.member_start = self.offset;
                    self.state = State::Header;
                    return Ok(Event::MemberStart(self.offset));
                }
                State::Header => {
                    self.header()?;
                    self.inflate.reset(false);
                    self.crc = 0;
                    self.member_out = 0;
                    self.state = State::Body;
                }
                State::Body => {
                    // Without input, inflate may still have output to give (a long match).
                    let more = self.fill()?;
                    let flush = if hunt {
                        InflateFlush::Block
                    } else {
                        InflateFlush::NoFlush
                    };
                    let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
                    let res = self
                        .inflate
                        .decompress(&self.buf[self.pos..self.len], out, flush);
                    let consumed = (self.inflate.total_in() - in0) as usize;
                    let produced = (self.inflate.total_out() - out0) as usize;
                    let from = self.pos;
                    self.pos += consumed;
                    self.offset = self.offset.wrapping_add(consumed as u64);
                    if consumed > 0 {
                        self.last_byte = self.buf[self.pos - 1];
                    }
                    self.crc = crc32(self.crc, &out[..produced]);
                    self.member_out += produced as u64;
                    let data = |boundary| Event::Data {
                        produced,
                        consumed: from..from + consumed,
                        boundary,
                    };
                    match res {
                        Ok(Status::StreamEnd) => {
                            self.state = State::Trailer;
                            self.trailer_len = 0;
                            return Ok(data(false));
                        }
                        Ok(Status::Ok | Status::BufError) => {
                            // With input left and room left, only a block boundary stops
                            // inflate (zlib-rs `Mode::Type` with `InflateFlush::Block`).
                            let boundary = hunt && self.pos < self.len && produced < out.len();
                            if produced > 0 || consumed > 0 || boundary {
                                return Ok(data(boundary));
                            }
                            if !more {
                                return Err(self.truncated("the deflate data"));
                            }
                            if self.pos < self.len {
                                return Err(self.corrupt("inflate made no progress"));
                            }
                        }
                        Err(e) => {
                            let msg = self.inflate.error_message().unwrap_or(e.as_str());
                            return Err(self.corrupt(msg.to_string()));
                        }
                    }
                }
                State::Trailer => {
                    while self.trailer_len < 8 {
                        if !self.fill()? {
                            return Err(self.truncated("the trailer"));
                        }
                        let n = (8 - self.trailer_len).min(self.len - self.pos);
                        self.trailer[self.trailer_len..self.trailer_len + n]
                            .copy_from_slice(&self.buf[self.pos..self.pos + n]);
                        self.trailer_len += n;
                        self.pos += n;
                        self.offset = self.offset.wrapping_add(n as u64);
                    }
                    let t = self.trailer;
                    let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                    let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                    if crc != self.crc || size != self.member_out as u32 {
                        return Err(self.corrupt(format!(
                            "the member starting at offset {} has CRC-32 {:08x} and length {} \
                             (mod 2^32), its trailer says {crc:08x} and {size}",
                            self.member_start, self.crc, self.member_out as u32
                        )));
                    }
                    self.state = State::Between;
                    return Ok(Event::MemberEnd);
                }
            }
        }
    }

    /// A decoder of `blob` from checkpoint `cp`; `window` is its window, decompressed.
    pub(super) fn resume(
        mut blob: R,
        cp: &Checkpoint,
        index: usize,
        window: Option<&[u8]>,
    ) -> io::Result<Self>
    where
        R: Seek,
    {
        let (Some(w), Some(window)) = (&cp.window, window) else {
            // A member starts there (maybe an empty one at the end): nothing is an error.
            blob.seek(SeekFrom::Start(cp.input))?;
            return Ok(Core::new(blob, cp.input));
        };
        let mut last = [0u8];
        if cp.bits > 0 {
            blob.seek(SeekFrom::Start(cp.input - 1))?;
            blob.read_exact(&mut last)?;
        } else {
            blob.seek(SeekFrom::Start(cp.input))?;
        }
        let prefix = prefix(cp.bits, last[0]);
        let mut core = Core::new(blob, cp.input.wrapping_sub(prefix.len() as u64));
        core.buf[..prefix.len()].copy_from_slice(&prefix);
        core.len = prefix.len();
        core.inflate.reset(false);
        core.inflate.set_dictionary(window).map_err(|e| {
            SeekError::Window {
                index,
                offset: cp.out,
                reason: e.as_str().to_string(),
            }
            .into_io()
        })?;
        core.started = true;
        core.member_start = cp.input;
        core.crc = w.member_crc;
        core.member_out = w.member_out;
        core.state = State::Body;
        Ok(core)
    }
}

impl<R: Read> Read for Core<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.step(buf, false)? {
                Event::Data { produced: 0, .. } | Event::MemberStart(_) | Event::MemberEnd => {}
                Event::Data { produced, .. } => return Ok(produced),
                Event::End => return Ok(0),
            }
        }
    }
}

/// Appends bits to a byte vector, deflate's way: low bits first.
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            out: Vec::new(),
            acc: 0,
            n: 0,
        }
    }

    /// `count` bits of `value`, low bit first (header fields, extra bits).
    fn put(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.acc |= ((value >> i) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                (self.acc, self.n) = (0, 0);
            }
        }
    }

    /// A Huffman code of `len` bits: its first bit is its most significant.
    fn put_code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.put((code >> i) & 1, 1);
        }
    }

    fn bit_len(&self) -> usize {
        self.out.len() * 8 + self.n as usize
    }
}

/// An empty block with fixed codes (not final): 10 bits, no output.
fn empty_fixed_block(w: &mut BitWriter) {
    w.put(0, 1); // BFINAL
    w.put(1, 2); // BTYPE 01: fixed codes
    w.put_code(0, 7); // end of block (symbol 256: seven zero bits)
}

/// An empty block with dynamic codes (not final): 91 bits, no output. Its literal/length code
/// has two symbols of one bit (literal 0 and end of block: a complete code, as inflate
/// requires), its distance code one of one bit (allowed incomplete), its code-length code two
/// of one bit (lengths 1, and 18: a run of zeros).
fn empty_dynamic_block(w: &mut BitWriter) {
    w.put(0, 1); // BFINAL
    w.put(2, 2); // BTYPE 10: dynamic codes
    w.put(0, 5); // HLIT: 257 literal/length codes
    w.put(0, 5); // HDIST: 1 distance code
    w.put(14, 4); // HCLEN: 18 code-length code lengths, enough to reach symbol 1
    // The code-length alphabet in its transmission order: only 18 and 1 have length 1.
    for sym in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        w.put(u32::from(sym == 18 || sym == 1), 3);
    }
    // Canonical codes: symbol 1 is `0`, symbol 18 is `1`.
    w.put_code(0, 1); // literal 0: length 1
    w.put_code(1, 1); // 138 zeros (literals 1-138): 18 with 11 + 127
    w.put(127, 7);
    w.put_code(1, 1); // 117 zeros (literals 139-255): 18 with 11 + 106
    w.put(106, 7);
    w.put_code(0, 1); // end of block (256): length 1
    w.put_code(0, 1); // distance 0: length 1
    // Literal 0 is `0`, end of block `1`.
    w.put_code(1, 1);
}

/// The synthetic start of a resumed stream: empty blocks, then a byte whose `bits` high bits
/// are those of `last` (the blob's byte before the checkpoint). Empty for `bits` 0.
fn prefix(bits: u8, last: u8) -> Vec<u8> {
    let mut w = BitWriter::new();
    let want = (8 - u32::from(bits)) % 8; // bits of the last byte the prefix fills
    // 3 * dynamic + 2 * fixed ≡ want (mod 8): a dynamic block when it is odd.
    let dynamic = want % 2 == 1;
    if dynamic {
        empty_dynamic_block(&mut w);
    }
    let rest = (want + 8 - if dynamic { 3 } else { 0 }) % 8;
    for _ in 0..rest / 2 {
        empty_fixed_block(&mut w);
    }
    debug_assert_eq!(w.bit_len() % 8, want as usize);
    if bits > 0 {
        let mask = 0xffu32 << (8 - u32::from(bits));
        w.acc |= u32::from(last) & mask;
        w.out.push(w.acc as u8);
    }
    w.out
}

/// The last 32 KiB of a member's output.
struct History {
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
}

impl History {
    fn new() -> Self {
        History {
            buf: vec![0u8; WINDOW].into_boxed_slice(),
            pos: 0,
            filled: 0,
        }
    }

    fn clear(&mut self) {
        (self.pos, self.filled) = (0, 0);
    }

    fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(WINDOW)..];
        let first = data.len().min(WINDOW - self.pos);
        self.buf[self.pos..self.pos + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        self.pos = (self.pos + data.len()) % WINDOW;
        self.filled = (self.filled + data.len()).min(WINDOW);
    }

    fn snapshot(&self) -> Vec<u8> {
        if self.filled < WINDOW {
            self.buf[..self.filled].to_vec()
        } else {
            [&self.buf[self.pos..], &self.buf[..self.pos]].concat()
        }
    }
}

/// A block boundary being verified as a checkpoint.
struct Pending {
    out: u64,
    input: u64,
    last_byte: u8,
    member_out: u64,
    member_crc: u32,
    window: Vec<u8>,
    /// The compressed bytes from `input` on, as the decoder consumed them.
    compressed: Vec<u8>,
    /// The first [`CHECK_LEN`] uncompressed bytes after the boundary.
    produced: Vec<u8>,
    /// Uncompressed bytes of the member after the boundary so far.
    after: u64,
    /// When `after` reaches this, [`Indexer::resolve`] decides.
    resolve_at: u64,
    /// The bit offset, once known to be right if the member goes on to `resolve_at`.
    chosen: Option<u8>,
}

/// Counts of the boundaries tried (for the measurements in the tests).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Stats {
    /// Boundaries verified.
    pub(super) tried: u32,
    /// Of which more than one bit offset (or none) reproduced the output.
    pub(super) ambiguous: u32,
}

/// The gzip side of [`super::CheckpointingReader`].
pub(super) struct Indexer<R> {
    core: Core<R>,
    history: History,
    pending: Option<Pending>,
    trial: Option<Inflate>,
    packer: ::zstd::bulk::Compressor<'static>,
    rec: Recorder,
    out: u64,
    done: bool,
    pub(super) stats: Stats,
}

impl<R: Read> Indexer<R> {
    pub(super) fn new(input: R, rec: Recorder) -> io::Result<Self> {
        Ok(Indexer {
            core: Core::new(input, 0),
            history: History::new(),
            pending: None,
            trial: None,
            packer: ::zstd::bulk::Compressor::new(WINDOW_ZSTD_LEVEL)?,
            rec,
            out: 0,
            done: false,
            stats: Stats::default(),
        })
    }

    pub(super) fn finish(self) -> Checkpoints {
        let lengths = self.done.then_some((self.core.offset, self.out));
        self.rec.finish(lengths)
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut written = 0;
        loop {
            // Stop decoding where a checkpoint is due, to look for a block boundary from there.
            let due_in = self.rec.window_due_in(self.out);
            let hunt = self.pending.is_none() && due_in == 0;
            let room = buf.len() - written;
            let room = if self.pending.is_none() && !hunt {
                room.min(usize::try_from(due_in).unwrap_or(usize::MAX))
            } else {
                room
            };
            match self.core.step(&mut buf[written..written + room], hunt)? {
                Event::MemberStart(offset) => {
                    self.history.clear();
                    self.pending = None;
                    if self.rec.free_due(self.out) {
                        self.rec.push(Checkpoint::start(offset, self.out));
                    }
                }
                Event::MemberEnd => self.pending = None,
                Event::End => {
                    self.done = true;
                    return Ok(written);
                }
                Event::Data {
                    produced,
                    consumed,
                    boundary,
                } => {
                    let data = &buf[written..written + produced];
                    self.history.push(data);
                    self.rec.output(data);
                    self.out += produced as u64;
                    written += produced;
                    if let Some(p) = &mut self.pending {
                        if p.chosen.is_none() {
                            p.compressed
                                .extend_from_slice(&self.core.buffer()[consumed]);
                        }
                        let n = data.len().min(CHECK_LEN - p.produced.len());
                        p.produced.extend_from_slice(&data[..n]);
                        p.after += produced as u64;
                        if p.after >= p.resolve_at {
                            self.resolve()?;
                        } else if p.compressed.len() > MAX_PENDING_INPUT {
                            self.pending = None;
                        }
                    }
                    if boundary && hunt {
                        self.pending = Some(Pending {
                            out: self.out,
                            input: self.core.offset,
                            last_byte: self.core.last_byte,
                            member_out: self.core.member_out,
                            member_crc: self.core.crc,
                            window: self.history.snapshot(),
                            compressed: Vec::new(),
                            produced: Vec::with_capacity(CHECK_LEN),
                            after: 0,
                            resolve_at: CHECK_LEN as u64,
                            chosen: None,
                        });
                    }
                    if written == buf.len() || (written > 0 && !boundary) {
                        return Ok(written);
                    }
                }
            }
        }
    }

    /// Finds the bit offset of the pending boundary ([`resolve_bits`]) and records the
    /// checkpoint when it is certain; when it depends on whether the member goes on after a
    /// stored block, waits for that.
    fn resolve(&mut self) -> io::Result<()> {
        let Some(mut p) = self.pending.take() else {
            return Ok(());
        };
        let bits = match p.chosen {
            Some(bits) => bits,
            None => {
                let trial = self
                    .trial
                    .get_or_insert_with(|| Inflate::new(false, WINDOW_BITS));
                let fits = matching_bits(trial, &p.window, p.last_byte, &p.compressed, &p.produced);
                self.stats.tried += 1;
                match resolve_bits(fits, p.last_byte, &p.compressed) {
                    Resolution::Bits(bits) => bits,
                    Resolution::IfNotFinal { bits, stored_len } => {
                        p.chosen = Some(bits);
                        p.resolve_at = u64::from(stored_len) + 1;
                        p.compressed = Vec::new();
                        if p.after < p.resolve_at {
                            self.pending = Some(p);
                            return Ok(());
                        }
                        bits
                    }
                    Resolution::Unknown => {
                        self.stats.ambiguous += 1;
                        return Ok(());
                    }
                }
            }
        };
        let zstd = self.packer.compress(&p.window)?.into_boxed_slice();
        self.rec.push_checked(Checkpoint {
            out: p.out,
            input: p.input,
            bits,
            check: crc32(0, &p.produced),
            window: Some(Window {
                member_out: p.member_out,
                member_crc: p.member_crc,
                zstd,
            }),
        });
        Ok(())
    }
}

/// What the bit offsets that reproduce the output after a boundary ([`matching_bits`]) say.
#[derive(Debug, PartialEq, Eq)]
enum Resolution {
    /// Only this one does: it is the boundary's.
    Bits(u8),
    /// Several do, and each reads the header of a stored block whose length field is at the
    /// same byte: from that byte on they decode alike (a stored block's data starts on a byte
    /// boundary, whatever bits pad its header), except that some may read the block as the
    /// member's last. If the member goes on after the block's `stored_len` bytes, the block
    /// is not the last, and `bits` (the smallest offset that reads it so) is right.
    IfNotFinal { bits: u8, stored_len: u16 },
    /// Several do otherwise (or none, which cannot be): the boundary is not used.
    Unknown,
}

/// Decides between the bit offsets in `fits` (bit `b` for offset `b`) from the deflate
/// header bits they read: the high `b` bits of `last`, then `input`, low bits first.
fn resolve_bits(fits: u8, last: u8, input: &[u8]) -> Resolution {
    if fits.count_ones() == 1 {
        return Resolution::Bits(fits.trailing_zeros() as u8);
    }
    let mut length_at = None;
    let mut not_final = None;
    for bits in (0..8u8).filter(|b| fits & (1 << b) != 0) {
        let Some(&next) = input.first() else {
            return Resolution::Unknown;
        };
        let stream = (u32::from(last) >> (8 - u32::from(bits))) | (u32::from(next) << bits);
        // BFINAL is bit 0, BTYPE bits 1-2 (00: stored); the length field is at the byte
        // after the header's (3 bits from the offset on: in `last` when `bits` >= 3).
        let at = if bits >= 3 { 0 } else { 1 };
        if stream & 0b110 != 0 || length_at.is_some_and(|a| a != at) {
            return Resolution::Unknown;
        }
        length_at = Some(at);
        if stream & 1 == 0 {
            not_final.get_or_insert(bits);
        }
    }
    match (length_at, not_final) {
        (Some(at), Some(bits)) if input.len() >= at + 2 => Resolution::IfNotFinal {
            bits,
            stored_len: u16::from_le_bytes([input[at], input[at + 1]]),
        },
        _ => Resolution::Unknown,
    }
}

/// The bit offsets (bit `b` of the result for offset `b`, 0..=7) from which raw inflate with
/// `window` as history, fed the high `b` bits of `last` and then `input`, reproduces `expect`.
fn matching_bits(trial: &mut Inflate, window: &[u8], last: u8, input: &[u8], expect: &[u8]) -> u8 {
    let mut fits = 0u8;
    let mut got = vec![0u8; expect.len()];
    for bits in 0..8u8 {
        trial.reset(false);
        if trial.set_dictionary(window).is_err() {
            continue;
        }
        let prefix = prefix(bits, last);
        let mut n = 0;
        'feed: for chunk in [&prefix[..], input] {
            let mut src = chunk;
            while !src.is_empty() && n < got.len() {
                let (i0, o0) = (trial.total_in(), trial.total_out());
                let res = trial.decompress(src, &mut got[n..], InflateFlush::NoFlush);
                let consumed = (trial.total_in() - i0) as usize;
                let produced = (trial.total_out() - o0) as usize;
                n += produced;
                src = &src[consumed..];
                match res {
                    Ok(Status::Ok | Status::BufError) if consumed + produced > 0 => {}
                    _ => break 'feed,
                }
            }
        }
        if n == expect.len() && got == expect {
            fits |= 1 << bits;
        }
    }
    fits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prefix decodes to nothing and leaves the decoder where the checkpoint's bits
    /// begin: a final block written right after them decodes as itself.
    #[test]
    fn prefixes_are_empty_and_end_at_the_right_bit() {
        for bits in 0..8u8 {
            let mut w = BitWriter::new();
            let want = (8 - u32::from(bits)) % 8;
            let dynamic = want % 2 == 1;
            if dynamic {
                empty_dynamic_block(&mut w);
            }
            for _ in 0..((want + 8 - if dynamic { 3 } else { 0 }) % 8) / 2 {
                empty_fixed_block(&mut w);
            }
            assert_eq!(w.bit_len() % 8, want as usize, "bits {bits}");
            let p = prefix(bits, 0);
            assert_eq!(p.len(), w.bit_len().div_ceil(8), "bits {bits}");
            // A final fixed block with the literals "ok", then the end of block.
            w.put(1, 1);
            w.put(1, 2);
            for c in *b"ok" {
                w.put_code(0x30 + u32::from(c), 8); // literals 0-143: 8-bit codes from 0x30
            }
            w.put_code(0, 7);
            w.put(0, 7); // padding
            let mut out = [0u8; 16];
            let mut inf = Inflate::new(false, WINDOW_BITS);
            let status = inf.decompress(&w.out, &mut out, InflateFlush::Finish);
            assert_eq!(status, Ok(Status::StreamEnd), "bits {bits}");
            assert_eq!(&out[..inf.total_out() as usize], b"ok", "bits {bits}");
        }
        // The dynamic block is 91 bits: 3 mod 8, the odd step.
        let mut w = BitWriter::new();
        empty_dynamic_block(&mut w);
        assert_eq!(w.bit_len(), 91);
    }

    /// Cases met on real data: before a stored block, candidates that read its header from
    /// the padding decode alike, one of them maybe reading it as the last block.
    #[test]
    fn several_fitting_offsets() {
        let stored = [0xff, 0x3f, 0x00, 0xc0]; // length 0x3fff, its complement
        for (fits, last, input, want) in [
            (0b0000_0100, 0, &stored[..], Resolution::Bits(2)),
            // Offsets 3 and 4 read the header in `last`: 3 reads 000, 4 reads 1 (last) 00.
            (
                0b0001_1000,
                0b0001_1111,
                &stored[..],
                Resolution::IfNotFinal {
                    bits: 3,
                    stored_len: 0x3fff,
                },
            ),
            // Offset 0 reads 000 in the next byte; offset 1 reads 1 (last) from `last`, then
            // 00: both have the length at the byte after.
            (
                0b0000_0011,
                0b1100_1100,
                &[0x00, 0x02, 0x40, 0xfd, 0xbf][..],
                Resolution::IfNotFinal {
                    bits: 0,
                    stored_len: 0x4002,
                },
            ),
            // Offsets 2 and 3 would read the length at different bytes.
            (0b0000_1100, 0, &stored[..], Resolution::Unknown),
            // Offset 4 reads 0 01: not a stored block.
            (0b0001_1000, 0b0100_0000, &stored[..], Resolution::Unknown),
            // Both read the block as the last: nothing to wait for.
            (0b0100_1000, 0b0010_0100, &stored[..], Resolution::Unknown),
            (0, 0, &stored[..], Resolution::Unknown),
        ] {
            assert_eq!(
                resolve_bits(fits, last, input),
                want,
                "fits {fits:08b} last {last:08b}"
            );
        }
    }

    #[test]
    fn history_keeps_the_last_window() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for chunk in [1, 1000, 32 * 1024, 40_000, 100_000] {
            let mut h = History::new();
            for (i, c) in data.chunks(chunk).enumerate() {
                h.push(c);
                let end = ((i + 1) * chunk).min(data.len());
                assert_eq!(
                    h.snapshot(),
                    &data[end.saturating_sub(WINDOW)..end],
                    "chunk {chunk}"
                );
            }
        }
    }
}
