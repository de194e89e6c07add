//! A blob's bytes as a seekable reader, wherever they are: a whole file (a store blob, a blob of
//! an OCI layout directory), a byte range of an archive file (a layer inside a `docker save`
//! tar, read in place), or memory. Reads are positioned (`pread`), so any number of readers
//! can share one open file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Where a [`BlobFile`]'s bytes are.
#[derive(Debug, Clone)]
enum Bytes {
    /// `len` bytes of `file` from `start`.
    File {
        file: Arc<File>,
        start: u64,
        len: u64,
    },
    /// In memory.
    Mem(Arc<[u8]>),
}

/// A blob's bytes with a read position; cloning gives another reader of the same bytes.
#[derive(Debug, Clone)]
pub struct BlobFile {
    bytes: Bytes,
    pos: u64,
}

impl BlobFile {
    /// All of `file` (its length now).
    pub fn whole(file: File) -> io::Result<BlobFile> {
        let len = file.metadata()?.len();
        Ok(Self::range(Arc::new(file), 0, len))
    }

    /// `len` bytes of `file` from `start`.
    pub fn range(file: Arc<File>, start: u64, len: u64) -> BlobFile {
        BlobFile {
            bytes: Bytes::File { file, start, len },
            pos: 0,
        }
    }

    /// Bytes in memory.
    pub fn memory(bytes: impl Into<Arc<[u8]>>) -> BlobFile {
        BlobFile {
            bytes: Bytes::Mem(bytes.into()),
            pos: 0,
        }
    }

    /// The blob's size.
    pub fn len(&self) -> u64 {
        match &self.bytes {
            Bytes::File { len, .. } => *len,
            Bytes::Mem(b) => b.len() as u64,
        }
    }

    /// Whether the blob is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads at `pos` without moving the position (fewer bytes only at the end).
    pub fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let left = self.len().saturating_sub(pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        match &self.bytes {
            Bytes::File { file, start, .. } => {
                let n = file.read_at(&mut buf[..want], start + pos)?;
                if n == 0 {
                    // The file is shorter than the range it was said to hold.
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
                }
                Ok(n)
            }
            Bytes::Mem(b) => {
                let at = pos as usize;
                buf[..want].copy_from_slice(&b[at..at + want]);
                Ok(want)
            }
        }
    }
}

impl Read for BlobFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlobFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let next = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = next.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before the blob's start")
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_reads_only_its_bytes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        let f = Arc::new(File::open(&p).unwrap());
        let mut r = BlobFile::range(f, 3, 4);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "3456");
        r.seek(SeekFrom::Start(2)).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(r.read(&mut b).unwrap(), 2);
        assert_eq!(&b[..2], b"56");
        assert!(r.seek(SeekFrom::Current(-10)).is_err());
        let mut m = BlobFile::memory(&b"abc"[..]);
        m.seek(SeekFrom::End(-1)).unwrap();
        s.clear();
        m.read_to_string(&mut s).unwrap();
        assert_eq!(s, "c");
    }
}
