//! Readers and writers that hash and count what passes through them.

use std::io::{self, Read, Write};

use hoist_format::{Digest, Sha256};

/// A reader that hashes and counts every byte read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest and count of everything read, and the inner reader.
    pub fn finish(self) -> (Digest, u64, R) {
        (self.hasher.finish(), self.count, self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader of a blob that checks, at its end, that it gave exactly the bytes of `digest` and
/// `size`: more bytes, fewer, or others are an [`io::ErrorKind::InvalidData`] error naming
/// `what`, so a consumer that reads to the end never passes on a corrupt blob unknowingly.
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: HashingReader<R>,
    digest: Digest,
    size: u64,
    what: String,
    checked: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, which should give the blob `digest` of `size` bytes.
    pub fn new(inner: R, digest: Digest, size: u64, what: impl Into<String>) -> Self {
        VerifyingReader {
            inner: HashingReader::new(inner),
            digest,
            size,
            what: what.into(),
            checked: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        if self.inner.count() > self.size {
            return bad(format!(
                "{}: longer than the declared {} bytes",
                self.what, self.size
            ));
        }
        if (n == 0 || self.inner.count() == self.size) && !buf.is_empty() && !self.checked {
            if self.inner.count() < self.size {
                return bad(format!(
                    "{}: ended after {} of {} bytes",
                    self.what,
                    self.inner.count(),
                    self.size
                ));
            }
            let found = self.inner.hasher.clone().finish();
            if found != self.digest {
                return bad(format!(
                    "{}: digest mismatch: expected {}, found {found}",
                    self.what, self.digest
                ));
            }
            self.checked = true;
        }
        Ok(n)
    }
}

/// A writer that hashes and counts every byte written through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest and count of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (self.hasher.finish(), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that copies every byte it reads into a writer (the raw side of a decompressing
/// pipeline: the decoder pulls through it while the raw bytes go to disk).
#[derive(Debug)]
pub struct TeeReader<R, W> {
    inner: R,
    sink: W,
}

impl<R: Read, W: Write> TeeReader<R, W> {
    /// Reads from `inner`, copying to `sink`.
    pub fn new(inner: R, sink: W) -> Self {
        TeeReader { inner, sink }
    }

    /// The parts.
    pub fn into_inner(self) -> (R, W) {
        (self.inner, self.sink)
    }
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A writer that discards everything (hash-only pipelines).
#[derive(Debug, Default)]
pub struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts bytes passing through a reader and reports them to a callback in coarse steps.
pub struct ProgressReader<'a, R> {
    inner: R,
    total: u64,
    reported: u64,
    cb: &'a dyn Fn(u64),
}

impl<R> std::fmt::Debug for ProgressReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressReader")
            .field("total", &self.total)
            .finish()
    }
}

/// Report progress at most every this many bytes: often enough for a smooth bar, rarely
/// enough to cost nothing.
const PROGRESS_STEP: u64 = 4 * 1024 * 1024;

impl<'a, R: Read> ProgressReader<'a, R> {
    /// Wraps `inner`; `cb` receives the running total.
    pub fn new(inner: R, cb: &'a dyn Fn(u64)) -> Self {
        ProgressReader {
            inner,
            total: 0,
            reported: 0,
            cb,
        }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if n == 0 || self.total - self.reported >= PROGRESS_STEP {
            self.reported = self.total;
            (self.cb)(self.total);
        }
        Ok(n)
    }
}

/// A reader that counts the bytes read through it (the bytes received on a pipe).
#[derive(Debug)]
pub struct CountingReader<R> {
    inner: R,
    count: u64,
    at_end: bool,
}

impl<R: Read> CountingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        CountingReader {
            inner,
            count: 0,
            at_end: false,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether a read found the end of the input.
    pub fn at_end(&self) -> bool {
        self.at_end
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if n == 0 && !buf.is_empty() {
            self.at_end = true;
        }
        Ok(n)
    }
}

/// A writer that counts the bytes written through it (the bytes sent on a pipe).
#[derive(Debug)]
pub struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> CountingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
