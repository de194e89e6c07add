//! Compression detection and streaming (de)compression.
//!
//! Input compression is always detected from the first bytes, never from a file name, as moby's
//! `DecompressStream` does: gzip (one or more members, so eStargz works), zstd (including a
//! leading skippable frame), bzip2 and xz.

use std::io::{self, BufRead, BufReader, Read};

pub use hoist_format::media_type::Compression;

/// Bytes needed to tell every supported format apart (xz's magic is the longest).
const SNIFF_LEN: usize = 6;

/// Read buffer for decoders: large reads keep syscall and decoder overhead low on big layers.
pub const IO_BUF_SIZE: usize = 256 * 1024;

/// A reader whose first bytes have been peeked to detect compression; it still yields every byte.
#[derive(Debug)]
pub struct Peeked<R> {
    head: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R: Read> Peeked<R> {
    /// Reads up to the first bytes needed for sniffing (fewer at end of stream).
    pub fn new(mut inner: R) -> io::Result<Self> {
        let mut head = vec![0u8; SNIFF_LEN];
        let mut n = 0;
        while n < SNIFF_LEN {
            match inner.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        head.truncate(n);
        Ok(Peeked {
            head,
            pos: 0,
            inner,
        })
    }

    /// The detected compression.
    pub fn compression(&self) -> Compression {
        Compression::sniff(&self.head)
    }

    /// True when the stream is empty.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty()
    }
}

impl<R: Read> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = (self.head.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// Wraps `r` in the decoder for `c`.
pub fn decoder<'a, R: Read + 'a>(c: Compression, r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            IO_BUF_SIZE,
            r,
        ))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(
            BufReader::with_capacity(IO_BUF_SIZE, r),
        )?),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
    })
}

/// gzip level of layers hoist compresses. zlib's level 1 has no stored-block fallback (it
/// grows incompressible data by 5% and decodes it slowly) and compresses text a third worse;
/// level 2 costs a little more on text, and blocks that do not compress are stored anyway
/// (see [`crate::pgzip`]).
pub const LAYER_GZIP_LEVEL: u32 = 2;

/// zstd level of layers hoist compresses: zstd's default, the one containerd and buildkit use.
pub const LAYER_ZSTD_LEVEL: i32 = 3;

/// Wraps `r` in a compressing reader for `c` (gzip or zstd). The output depends only on the
/// input: gzip is compressed in fixed blocks on every core with a header without time, name
/// or host OS, and zstd runs single-threaded, so the same layer gives the same compressed
/// digest every time (with the same versions of the compressors).
pub fn encoder<'a, R: Read + Send + 'a>(
    c: Compression,
    r: R,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let input = BufReader::with_capacity(IO_BUF_SIZE, r);
    Ok(match c {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(crate::pgzip::ParallelGzip::new(input, LAYER_GZIP_LEVEL)),
        Compression::Zstd => Box::new(zstd::stream::read::Encoder::new(input, LAYER_ZSTD_LEVEL)?),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("layers are compressed with gzip or zstd, not {other:?}"),
            ));
        }
    })
}

/// Detects the compression of `r` and returns it with a reader of the decompressed bytes.
pub fn auto_decompress<'a, R: Read + 'a>(r: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let p = Peeked::new(r)?;
    let c = p.compression();
    Ok((c, decoder(c, p)?))
}

/// Fills `buf` from `r` (fewer bytes only at the end of the stream); the count read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// Drains a reader to its end, returning how many bytes it gave.
pub fn drain(r: &mut dyn Read) -> io::Result<u64> {
    let mut buf = vec![0u8; IO_BUF_SIZE];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod encoder_tests {
    use super::*;

    #[test]
    fn encoders_are_deterministic_and_round_trip() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
            .collect();
        for c in [Compression::Gzip, Compression::Zstd] {
            let mut a = Vec::new();
            encoder(c, &data[..]).unwrap().read_to_end(&mut a).unwrap();
            let mut b = Vec::new();
            encoder(c, &data[..]).unwrap().read_to_end(&mut b).unwrap();
            assert_eq!(a, b, "{c:?}");
            assert!(a.len() < data.len() / 2, "{c:?}");
            assert_eq!(Compression::sniff(&a), c);
            let (found, mut dec) = auto_decompress(&a[..]).unwrap();
            assert_eq!(found, c);
            let mut back = Vec::new();
            dec.read_to_end(&mut back).unwrap();
            assert_eq!(back, data);
        }
        let mut gz = Vec::new();
        encoder(Compression::Gzip, &b""[..])
            .unwrap()
            .read_to_end(&mut gz)
            .unwrap();
        // No mtime, no level flag, OS byte 255: the header is fixed.
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        assert!(encoder(Compression::Xz, &b""[..]).is_err());
    }
}

/// A `BufRead` adapter is sometimes needed by callers; re-exported for convenience.
pub fn buffered<R: Read>(r: R) -> impl BufRead {
    BufReader::with_capacity(IO_BUF_SIZE, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_multi_member_round_trip() {
        let mut all = Vec::new();
        for part in [&b"hello "[..], &b"world"[..]] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(part).unwrap();
            all.extend(e.finish().unwrap());
        }
        let (c, mut r) = auto_decompress(&all[..]).unwrap();
        assert_eq!(c, Compression::Gzip);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn plain_and_short_streams_pass_through() {
        for input in [&b""[..], &b"ab"[..], &b"plain tar bytes"[..]] {
            let (c, mut r) = auto_decompress(input).unwrap();
            assert_eq!(c, Compression::None);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, input);
        }
    }

    #[test]
    fn zstd_xz_bzip2() {
        let data = b"some layer bytes".repeat(100);
        let z = zstd::encode_all(&data[..], 3).unwrap();
        let mut x = liblzma::write::XzEncoder::new(Vec::new(), 6);
        x.write_all(&data).unwrap();
        let x = x.finish().unwrap();
        let mut b = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        b.write_all(&data).unwrap();
        let b = b.finish().unwrap();
        for (bytes, want) in [
            (z, Compression::Zstd),
            (x, Compression::Xz),
            (b, Compression::Bzip2),
        ] {
            let (c, mut r) = auto_decompress(&bytes[..]).unwrap();
            assert_eq!(c, want);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }
}
