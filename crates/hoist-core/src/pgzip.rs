//! gzip on every core, with the same bytes whatever the number of cores: pigz's scheme.
//!
//! The input is cut into [`BLOCK_SIZE`] blocks, compressed by a few worker threads as raw
//! deflate streams that end on a byte boundary (a sync flush), and concatenated in order into
//! one gzip member. Each block starts with the last 32 KiB of the block before as its
//! dictionary, so matches across the cut are not lost. A block whose sample does not compress
//! is stored as it is: deflating incompressible data (compressed files, random bytes) costs
//! the most time for no gain, and stored blocks are also the fastest to decode.
//!
//! Every decision depends on the input alone (not on the number of cores or the timing), so a
//! layer gives the same gzip bytes and digest every time — with the same deflate
//! implementation: another zlib-rs version may choose other matches. That is what lets the
//! store remember a layer's compressed digest; a remembered digest the registry lacks only
//! means the layer is compressed and uploaded again.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, mpsc};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Input per block: pgzip's default; big enough that the sync-flush marker and the lost
/// window at each cut cost nothing, small enough that a few in flight stay a few MiB.
pub const BLOCK_SIZE: usize = 1024 * 1024;

/// deflate's window: the dictionary each block gets from the one before.
const WINDOW: usize = 32 * 1024;

/// Bytes of a block compressed quickly to tell whether the block compresses at all: enough
/// to see past a tar header into the file after it, little next to the block.
const SAMPLE: usize = 32 * 1024;

/// Largest stored deflate block (its length field is 16 bits).
const STORED_MAX: usize = 65_535;

/// A block whose sample shrinks by less than this (percent of its size) is stored.
const MIN_GAIN_PERCENT: usize = 3;

/// Compressor threads at most: past a few, uploads and the registry need the cores.
const MAX_WORKERS: usize = 4;

/// The gzip header: no name, no time, no level flag, OS unknown (as Go writes it for the
/// levels between fastest and best).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// One block for a worker.
struct Job {
    data: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    reply: mpsc::SyncSender<io::Result<Vec<u8>>>,
}

/// A reader of the gzip compression of `input`.
pub struct ParallelGzip<R> {
    input: R,
    level: u32,
    /// The next block, read ahead to know whether the one before is the last.
    ahead: Option<Vec<u8>>,
    input_done: bool,
    dictionary: Vec<u8>,
    crc: flate2::Crc,
    jobs: Option<mpsc::Sender<Job>>,
    in_flight: VecDeque<mpsc::Receiver<io::Result<Vec<u8>>>>,
    max_in_flight: usize,
    out: Vec<u8>,
    out_pos: usize,
    trailer_written: bool,
    /// A failure of the input: every later read fails too, never a valid gzip with a hole.
    failed: Option<(io::ErrorKind, String)>,
}

impl<R> std::fmt::Debug for ParallelGzip<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelGzip")
            .field("level", &self.level)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<R: Read> ParallelGzip<R> {
    /// Compresses `input` at `level` (1–9) with a few threads (one per core, at most four).
    pub fn new(input: R, level: u32) -> Self {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_WORKERS);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers {
            let rx = Arc::clone(&rx);
            // Workers end when the sender is dropped (the reader is dropped or done).
            std::thread::spawn(move || {
                loop {
                    let job = match rx.lock().expect("never poisoned").recv() {
                        Ok(j) => j,
                        Err(_) => return,
                    };
                    let out = compress_block(&job.data, &job.dictionary, job.last, level);
                    // The reader may be gone (an upload that failed): nobody to tell.
                    let _ = job.reply.send(out);
                }
            });
        }
        ParallelGzip {
            input,
            level,
            ahead: None,
            input_done: false,
            dictionary: Vec::new(),
            crc: flate2::Crc::new(),
            jobs: Some(tx),
            in_flight: VecDeque::new(),
            max_in_flight: workers * 2,
            out: HEADER.to_vec(),
            out_pos: 0,
            trailer_written: false,
            failed: None,
        }
    }

    /// Reads up to one block of input (less only at the end).
    fn read_block(&mut self) -> io::Result<Vec<u8>> {
        let mut block = vec![0u8; BLOCK_SIZE];
        let mut n = 0;
        while n < BLOCK_SIZE {
            match self.input.read(&mut block[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        block.truncate(n);
        Ok(block)
    }

    /// Hands blocks to the workers until enough are in flight or the input ends.
    fn feed(&mut self) -> io::Result<()> {
        while !self.input_done && self.in_flight.len() < self.max_in_flight {
            let block = match self.ahead.take() {
                Some(b) => b,
                None => self.read_block()?,
            };
            let next = if block.len() == BLOCK_SIZE {
                self.read_block()?
            } else {
                Vec::new()
            };
            let last = next.is_empty();
            self.crc.update(&block);
            let dictionary = std::mem::take(&mut self.dictionary);
            self.dictionary = block[block.len().saturating_sub(WINDOW)..].to_vec();
            let (reply, result) = mpsc::sync_channel(1);
            let job = Job {
                data: block,
                dictionary,
                last,
                reply,
            };
            self.jobs
                .as_ref()
                .expect("jobs are sent until the input ends")
                .send(job)
                .map_err(|_| io::Error::other("the gzip workers stopped"))?;
            self.in_flight.push_back(result);
            if last {
                self.input_done = true;
                self.jobs = None;
            } else {
                self.ahead = Some(next);
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for ParallelGzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.out_pos);
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if let Some((kind, msg)) = &self.failed {
                return Err(io::Error::new(*kind, msg.clone()));
            }
            if let Err(e) = self.feed() {
                self.failed = Some((e.kind(), e.to_string()));
                return Err(e);
            }
            if let Some(result) = self.in_flight.pop_front() {
                self.out = result
                    .recv()
                    .map_err(|_| io::Error::other("a gzip worker stopped"))??;
                self.out_pos = 0;
                continue;
            }
            if !self.trailer_written {
                self.trailer_written = true;
                let mut t = Vec::with_capacity(8);
                t.extend_from_slice(&self.crc.sum().to_le_bytes());
                t.extend_from_slice(&self.crc.amount().to_le_bytes());
                self.out = t;
                self.out_pos = 0;
                continue;
            }
            return Ok(0);
        }
    }
}

/// Whether a block is worth deflating: its first [`SAMPLE`] bytes, deflated at the fastest
/// level, shrink by at least [`MIN_GAIN_PERCENT`].
fn compresses(data: &[u8]) -> bool {
    let sample = &data[..data.len().min(SAMPLE)];
    if sample.is_empty() {
        return false;
    }
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(sample.len());
    // Output beyond the sample's size already answers the question.
    let _ = c.compress_vec(sample, &mut out, FlushCompress::Finish);
    let finished = c.total_in() as usize == sample.len();
    finished && out.len() * 100 <= sample.len() * (100 - MIN_GAIN_PERCENT)
}

/// One block as raw deflate: ends with a sync flush (byte-aligned, not final) or, for the
/// last block, with the final block bit.
fn compress_block(data: &[u8], dictionary: &[u8], last: bool, level: u32) -> io::Result<Vec<u8>> {
    if !compresses(data) {
        return Ok(stored(data, last));
    }
    let mut c = Compress::new(Compression::new(level), false);
    if !dictionary.is_empty() {
        c.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity() / 2 + 1024);
        }
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        let done = match (status, last) {
            (Status::StreamEnd, true) => true,
            // A sync flush is complete when all input is in and the output did not fill up.
            (_, false) => all_in && out.len() < out.capacity(),
            _ => false,
        };
        if done {
            return Ok(out);
        }
    }
}

/// `data` as stored deflate blocks (a copy with a 5-byte header per 64 KiB). Every block
/// before starts on a byte boundary (a sync flush or another stored block), as stored blocks
/// need.
fn stored(data: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + (data.len() / STORED_MAX + 1) * 5);
    let mut chunks = data.chunks(STORED_MAX).peekable();
    if chunks.peek().is_none() {
        // An empty block: the final one when nothing else is left, else nothing at all.
        if last {
            out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        return out;
    }
    while let Some(chunk) = chunks.next() {
        let is_final = last && chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(is_final));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ParallelGzip::new(data, 2).read_to_end(&mut out).unwrap();
        out
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Deterministic pseudo-random bytes (incompressible).
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_at_every_size_and_is_deterministic() {
        let text: Vec<u8> = (0..5 * BLOCK_SIZE / 2)
            .map(|i| b"hoist layers of text "[i % 21] ^ ((i / 4096) as u8 & 1))
            .collect();
        for data in [
            Vec::new(),
            b"x".to_vec(),
            text[..BLOCK_SIZE].to_vec(),
            text[..BLOCK_SIZE + 1].to_vec(),
            text.clone(),
            noise(3 * BLOCK_SIZE + 17, 7),
            [
                noise(BLOCK_SIZE, 3),
                text[..BLOCK_SIZE].to_vec(),
                noise(100, 4),
            ]
            .concat(),
        ] {
            let a = gz(&data);
            assert_eq!(&a[..10], &HEADER);
            assert_eq!(gunzip(&a), data, "{} bytes", data.len());
            assert_eq!(gz(&data), a, "not deterministic at {} bytes", data.len());
        }
        // Text shrinks; noise is stored: 5 bytes per 64 KiB block, plus header and trailer.
        assert!(gz(&text).len() < text.len() / 4);
        let n = noise(2 * BLOCK_SIZE, 9);
        let blocks = BLOCK_SIZE.div_ceil(STORED_MAX) * 2;
        assert_eq!(gz(&n).len(), n.len() + blocks * 5 + 18);
    }

    #[test]
    fn stored_blocks_are_valid_deflate() {
        for (data, last) in [
            (Vec::new(), true),
            (noise(10, 1), true),
            (noise(STORED_MAX, 2), true),
            (noise(STORED_MAX + 1, 3), false),
        ] {
            let mut raw = stored(&data, last);
            if !last {
                raw.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
            }
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&raw[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }

    #[test]
    fn input_errors_come_through() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let e = ParallelGzip::new(Broken, 2)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
    }
}
