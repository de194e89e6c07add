//! The streaming tar reader: one entry at a time, extension headers folded in, every size
//! checked before anything is allocated.

use std::io::{self, BufReader, Read, Seek};

use super::error::{TarError, TarErrorKind, show_name};
use super::header::{self, BLOCK, Format, cstr, field, padding, parse_numeric};
use super::pax::{self, XATTR_PREFIX};
use super::sparse::{self, Fragment, InDataMap, Version};
use super::{
    Entry, EntryKind, MAX_EXTENSION_SIZE, MAX_LINK_LEN, MAX_NAME_LEN, MAX_SPARSE_MAP,
    MAX_SPARSE_SIZE, Metadata, Mtime,
};

/// How the reader skips data it does not need.
type SkipFn<R> = fn(&mut R, u64) -> io::Result<u64>;

/// Reads `n` bytes and drops them; returns how many there were.
fn skip_by_reading<R: Read>(r: &mut R, n: u64) -> io::Result<u64> {
    io::copy(&mut r.take(n), &mut io::sink())
}

/// Skips `n` bytes of a buffered stream: what is in the buffer by reading it; beyond, by
/// seeking over `n - 1` bytes and reading the last one, so a stream cut short is noticed (a seek
/// past the end of a file succeeds), as Go's reader does. A stream that cannot seek
/// (`ErrorKind::Unsupported`) is read.
fn skip_by_seeking<R: Read + Seek>(r: &mut BufReader<R>, n: u64) -> io::Result<u64> {
    if n < 2 || n <= r.buffer().len() as u64 {
        return skip_by_reading(r, n);
    }
    let jump = i64::try_from(n - 1).map_err(|_| io::Error::other("skip too large"))?;
    match r.seek_relative(jump) {
        Ok(()) => Ok(n - 1 + skip_by_reading(r, 1)?),
        Err(e) if e.kind() == io::ErrorKind::Unsupported => skip_by_reading(r, n),
        Err(e) => Err(e),
    }
}

/// The sparse expansion state of the current entry.
#[derive(Debug)]
struct Expand {
    runs: Vec<Fragment>,
    /// The run being read or the next one.
    run: usize,
    /// Logical position.
    pos: u64,
    size: u64,
}

/// A streaming reader of tar archives with Go's `archive/tar` rules and hoist's limits; see the
/// [module docs](super).
///
/// Give it a buffered stream: headers are read 512 bytes at a time.
#[derive(Debug)]
pub struct Reader<R> {
    r: R,
    skip: SkipFn<R>,
    /// Bytes consumed from `r`.
    pos: u64,
    /// Index of the next entry.
    next_index: u64,
    /// Stored data bytes of the current entry not read yet.
    remaining: u64,
    /// Padding after them.
    pad: u64,
    expand: Option<Expand>,
    /// The current entry's index, for errors while reading its data, and its name (a buffer
    /// reused from entry to entry: shown only if an error needs it).
    current: Option<u64>,
    current_name: Vec<u8>,
    done: bool,
}

/// Extension headers met before an entry's own header.
#[derive(Default)]
struct Pending {
    pax: Option<pax::Records>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

impl<R: Read> Reader<R> {
    /// A reader that skips unread data by reading it.
    pub fn new(r: R) -> Self {
        Reader {
            r,
            skip: skip_by_reading::<R>,
            pos: 0,
            next_index: 0,
            remaining: 0,
            pad: 0,
            expand: None,
            current: None,
            current_name: Vec::new(),
            done: false,
        }
    }

    /// A reader that skips unread data with `skip` (which returns how many bytes there were).
    pub(crate) fn with_skip(r: R, skip: SkipFn<R>) -> Self {
        Reader {
            skip,
            ..Reader::new(r)
        }
    }

    /// The stream position: bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The underlying stream (positioned wherever reading stopped).
    pub fn into_inner(self) -> R {
        self.r
    }

    /// A mutable reference to the underlying stream.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.r
    }

    fn err(&self, kind: TarErrorKind) -> TarError {
        let (index, name) = match self.current {
            Some(i) => (i, Some(show_name(&self.current_name))),
            None => (self.next_index, None),
        };
        TarError {
            index,
            name,
            offset: self.pos,
            kind,
        }
    }

    fn named_err(&self, name: &[u8], kind: TarErrorKind) -> TarError {
        TarError {
            index: self.next_index,
            name: Some(show_name(name)),
            offset: self.pos,
            kind,
        }
    }

    fn io_err(&self, e: io::Error, inside: &'static str) -> TarError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.err(TarErrorKind::Truncated(inside))
        } else {
            self.err(TarErrorKind::Io(e))
        }
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` when the stream ends before the first.
    fn fill(&mut self, buf: &mut [u8], inside: &'static str) -> Result<bool, TarError> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    self.pos += got as u64;
                    return Err(self.err(TarErrorKind::Truncated(inside)));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err(e, inside)),
            }
        }
        self.pos += got as u64;
        Ok(true)
    }

    fn skip_bytes(&mut self, n: u64, inside: &'static str) -> Result<(), TarError> {
        if n == 0 {
            return Ok(());
        }
        let skipped = (self.skip)(&mut self.r, n).map_err(|e| self.io_err(e, inside))?;
        self.pos += skipped;
        if skipped != n {
            return Err(self.err(TarErrorKind::Truncated(inside)));
        }
        Ok(())
    }

    /// Reads the data of an extension header (after checking its size) and its padding.
    fn read_extension(&mut self, size: u64, what: &'static str) -> Result<Vec<u8>, TarError> {
        if size > MAX_EXTENSION_SIZE {
            return Err(self.err(TarErrorKind::TooLong {
                what,
                size,
                limit: MAX_EXTENSION_SIZE,
            }));
        }
        let mut data = vec![0; size as usize];
        if !self.fill(&mut data, "an extension header")? && size > 0 {
            return Err(self.err(TarErrorKind::Truncated("an extension header")));
        }
        self.skip_bytes(padding(size), "an extension header")?;
        Ok(data)
    }

    /// Skips what is left of the current entry.
    fn finish_entry(&mut self) -> Result<(), TarError> {
        let (data, pad) = (self.remaining, self.pad);
        self.remaining = 0;
        self.pad = 0;
        self.expand = None;
        self.skip_bytes(data, "an entry's data")?;
        match self.skip_bytes(pad, "an entry's padding") {
            // Go: the stream may end inside the last entry's padding.
            Err(TarError {
                kind: TarErrorKind::Truncated(_),
                ..
            }) => self.done = true,
            other => other?,
        }
        self.current = None;
        Ok(())
    }

    /// The next entry, `None` at the end of the archive (a zero block or the end of the
    /// stream; whatever follows a zero block is not part of the archive). The rest of the
    /// previous entry's data is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        if self.done {
            return Ok(None);
        }
        self.finish_entry()?;
        if self.done {
            return Ok(None);
        }
        let header_offset = self.pos;
        let mut pending = Pending::default();
        let mut h = [0u8; BLOCK];
        loop {
            if !self.fill(&mut h, "a header")? {
                // Extension headers that describe no entry are dropped, as Go does.
                self.done = true;
                return Ok(None);
            }
            if h.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            let Some(format) = header::format(&h) else {
                return Err(self.err(TarErrorKind::Checksum));
            };
            let typeflag = h[field::TYPEFLAG];
            let size = parse_numeric(&h[field::SIZE])
                .and_then(|s| match u64::try_from(s) {
                    Ok(s) => Some(s),
                    // Go ignores the size of header-only types, negative or not.
                    Err(_) if matches!(typeflag, b'1'..=b'6') => Some(0),
                    Err(_) => None,
                })
                .ok_or_else(|| self.err(TarErrorKind::Field("size")))?;
            match typeflag {
                b'x' | b'g' => {
                    let data = self.read_extension(size, "PAX header")?;
                    let recs = pax::parse(&data).map_err(|r| self.err(TarErrorKind::Pax(r)))?;
                    if typeflag == b'x' {
                        // A second one replaces the first, as in Go.
                        pending.pax = Some(recs);
                    } else {
                        // Global headers are entries of their own in Go, which docker ignores;
                        // they end whatever extension headers came before.
                        pending = Pending::default();
                    }
                }
                b'L' | b'K' => {
                    let data = self.read_extension(size, "GNU long name")?;
                    let v = cstr(&data).to_vec();
                    if typeflag == b'L' {
                        pending.long_name = Some(v);
                    } else {
                        pending.long_link = Some(v);
                    }
                }
                _ => {
                    let mut e = self.entry(&h, format, typeflag, size, pending)?;
                    e.header_offset = header_offset;
                    return Ok(Some(e));
                }
            }
        }
    }

    /// Builds the entry of header `h` with its extension headers applied (Go's `Next`).
    fn entry(
        &mut self,
        h: &[u8; BLOCK],
        format: Format,
        typeflag: u8,
        size: u64,
        pending: Pending,
    ) -> Result<Entry, TarError> {
        let num = |range: std::ops::Range<usize>, what| {
            parse_numeric(&h[range]).ok_or_else(|| self.err(TarErrorKind::Field(what)))
        };
        let unsigned =
            |v: i64, what| u64::try_from(v).map_err(|_| self.err(TarErrorKind::Field(what)));
        let mut path = cstr(&h[field::NAME]).to_vec();
        let mut link = cstr(&h[field::LINKNAME]).to_vec();
        let mut meta = Metadata {
            mode: (num(field::MODE, "mode")? & 0o7777) as u32,
            uid: unsigned(num(field::UID, "uid")?, "uid")?,
            gid: unsigned(num(field::GID, "gid")?, "gid")?,
            mtime: Mtime {
                seconds: num(field::MTIME, "mtime")?,
                nanos: 0,
            },
            ..Metadata::default()
        };
        let (mut devmajor, mut devminor) = (0, 0);
        if format != Format::V7 {
            meta.uname = cstr(&h[field::UNAME]).to_vec();
            meta.gname = cstr(&h[field::GNAME]).to_vec();
            let dev = |range, what| {
                num(range, what)
                    .and_then(|v| u32::try_from(v).map_err(|_| self.err(TarErrorKind::Field(what))))
            };
            if matches!(typeflag, b'3' | b'4') {
                devmajor = dev(field::DEVMAJOR, "devmajor")?;
                devminor = dev(field::DEVMINOR, "devminor")?;
            }
            let prefix = match format {
                Format::Ustar => cstr(&h[field::PREFIX]),
                Format::Star => cstr(&h[field::STAR_PREFIX]),
                // GNU keeps atime and ctime there; Go reads old Go-written GNU headers whose
                // times do not parse as holding a prefix.
                Format::Gnu => {
                    let times_ok = [345..357, 357..369]
                        .into_iter()
                        .all(|r| h[r.start] == 0 || parse_numeric(&h[r]).is_some());
                    let p = cstr(&h[field::PREFIX]);
                    if !times_ok && p.is_ascii() { p } else { &[] }
                }
                Format::V7 => &[],
            };
            if !prefix.is_empty() {
                path = [prefix, b"/", &path].concat();
            }
        }
        let mut data_size = size;
        let mut records = pending.pax.unwrap_or_default();
        let mut sparse_keys: [Option<Vec<u8>>; 7] = Default::default();
        const SPARSE_KEYS: [&[u8]; 7] = [
            b"GNU.sparse.major",
            b"GNU.sparse.minor",
            b"GNU.sparse.name",
            b"GNU.sparse.size",
            b"GNU.sparse.realsize",
            b"GNU.sparse.numblocks",
            pax::SPARSE_MAP,
        ];
        for (k, v) in records.drain(..) {
            if let Some(i) = SPARSE_KEYS.iter().position(|s| *s == k) {
                sparse_keys[i] = Some(v);
                continue;
            }
            if v.is_empty() {
                continue; // Go: an empty value keeps the header's
            }
            let bad = |what| self.err(TarErrorKind::Field(what));
            let int = |what| {
                pax::parse_i64(&v)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| bad(what))
            };
            match &k[..] {
                b"path" => path = v,
                b"linkpath" => link = v,
                b"uname" => meta.uname = v,
                b"gname" => meta.gname = v,
                b"uid" => meta.uid = int("PAX uid")?,
                b"gid" => meta.gid = int("PAX gid")?,
                b"size" => data_size = int("PAX size")?,
                b"mtime" => meta.mtime = parse_pax_time(&v).ok_or_else(|| bad("PAX mtime"))?,
                b"atime" | b"ctime" => {
                    parse_pax_time(&v).ok_or_else(|| bad("PAX atime or ctime"))?;
                }
                _ => {
                    if let Some(name) = k.strip_prefix(XATTR_PREFIX) {
                        meta.xattrs.push((name.to_vec(), v));
                    }
                }
            }
        }
        // The last record of a name wins (Go keeps them in a map): a stable sort by name, then
        // the last of each run.
        meta.xattrs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(meta.xattrs.len());
        for x in meta.xattrs.drain(..) {
            match xattrs.last_mut() {
                Some(last) if last.0 == x.0 => *last = x,
                _ => xattrs.push(x),
            }
        }
        meta.xattrs = xattrs;
        // Go applies the GNU long names after the PAX records.
        if let Some(n) = pending.long_name.filter(|n| !n.is_empty()) {
            path = n;
        }
        if let Some(l) = pending.long_link.filter(|l| !l.is_empty()) {
            link = l;
        }
        let [major, minor, sname, ssize, srealsize, numblocks, map] = sparse_keys;
        let sparse_version = sparse::version(
            major.as_deref(),
            minor.as_deref(),
            map.as_deref().is_some_and(|m| !m.is_empty()),
        );
        if let Some(n) = sname.filter(|n| !n.is_empty() && sparse_version.is_some()) {
            path = n;
        }
        if path.len() > MAX_NAME_LEN {
            return Err(self.named_err(
                &path,
                TarErrorKind::NameTooLong {
                    what: "name",
                    len: path.len(),
                    limit: MAX_NAME_LEN,
                },
            ));
        }
        if link.len() > MAX_LINK_LEN {
            return Err(self.named_err(
                &path,
                TarErrorKind::NameTooLong {
                    what: "link target",
                    len: link.len(),
                    limit: MAX_LINK_LEN,
                },
            ));
        }
        let kind = match typeflag {
            b'7' => EntryKind::Regular,
            0 if path.ends_with(b"/") => EntryKind::Directory,
            0 => EntryKind::Regular,
            b'S' => return Err(self.named_err(&path, TarErrorKind::OldGnuSparse)),
            t => EntryKind::from_typeflag(t),
        };
        if kind.is_header_only() {
            data_size = 0;
        }
        let index = self.next_index;
        self.next_index += 1;
        self.current = Some(index);
        self.current_name.clear();
        self.current_name.extend_from_slice(&path);
        self.remaining = data_size;
        self.pad = padding(data_size);
        let mut logical = data_size;
        let mut runs = None;
        if let Some(version) = sparse_version {
            if kind.is_header_only() {
                return Err(self.err(TarErrorKind::Sparse("a sparse map on a header-only entry")));
            }
            let real = ssize.filter(|s| !s.is_empty()).or(srealsize);
            if let Some(s) = real.filter(|s| !s.is_empty()) {
                logical = pax::parse_i64(&s)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| self.err(TarErrorKind::Field("GNU.sparse.size")))?;
            }
            let frags = match version {
                Version::Records => sparse::parse_records(
                    numblocks.as_deref().unwrap_or_default(),
                    map.as_deref().unwrap_or_default(),
                )
                .map_err(|r| self.err(TarErrorKind::Sparse(r)))?,
                Version::InData => self.read_in_data_map()?,
            };
            if logical > MAX_SPARSE_SIZE {
                return Err(self.err(TarErrorKind::SparseTooBig {
                    size: logical,
                    limit: MAX_SPARSE_SIZE,
                }));
            }
            sparse::validate(&frags, logical).map_err(|r| self.err(TarErrorKind::Sparse(r)))?;
            let stored: u64 = frags.iter().map(|f| f.len).sum();
            if stored != self.remaining {
                return Err(self.err(TarErrorKind::Sparse(
                    "the map's runs do not add up to the entry's data",
                )));
            }
            self.expand = Some(Expand {
                runs: frags.clone(),
                run: 0,
                pos: 0,
                size: logical,
            });
            runs = Some(frags);
        }
        Ok(Entry {
            index,
            path,
            link,
            kind,
            meta,
            devmajor,
            devminor,
            size: if kind == EntryKind::Regular || matches!(kind, EntryKind::Other(_)) {
                logical
            } else {
                0
            },
            stored: self.remaining,
            header_offset: 0,
            data_offset: self.pos,
            sparse: runs,
        })
    }

    /// Reads a 1.0 sparse map from the start of the data (whole blocks, bounded).
    fn read_in_data_map(&mut self) -> Result<Vec<Fragment>, TarError> {
        let mut map = InDataMap::default();
        let mut read = 0u64;
        let mut block = [0u8; BLOCK];
        loop {
            if self.remaining < BLOCK as u64 {
                return Err(self.err(TarErrorKind::Sparse("the map runs past the entry's data")));
            }
            if read >= MAX_SPARSE_MAP {
                return Err(self.err(TarErrorKind::TooLong {
                    what: "sparse map",
                    size: read,
                    limit: MAX_SPARSE_MAP,
                }));
            }
            if !self.fill(&mut block, "a sparse map")? {
                return Err(self.err(TarErrorKind::Truncated("a sparse map")));
            }
            self.remaining -= BLOCK as u64;
            read += BLOCK as u64;
            if let Some(runs) = map
                .feed(&block)
                .map_err(|r| self.err(TarErrorKind::Sparse(r)))?
            {
                return Ok(runs);
            }
        }
    }

    /// Reads stored data bytes of the current entry (for a sparse file: its runs, one after
    /// the other); 0 at its end.
    pub fn read_stored(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        loop {
            match self.r.read(&mut buf[..want]) {
                Ok(0) => return Err(self.err(TarErrorKind::Truncated("an entry's data"))),
                Ok(n) => {
                    self.pos += n as u64;
                    self.remaining -= n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err(e, "an entry's data")),
            }
        }
    }

    /// Reads the content of the current entry: a sparse file's holes read as zeros.
    pub fn read_content(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        let Some(x) = &mut self.expand else {
            return self.read_stored(buf);
        };
        if x.pos >= x.size || buf.is_empty() {
            return Ok(0);
        }
        while x.run < x.runs.len() && x.runs[x.run].offset + x.runs[x.run].len <= x.pos {
            x.run += 1;
        }
        let (start, end) = match x.runs.get(x.run) {
            Some(f) => (f.offset, f.offset + f.len),
            None => (x.size, x.size),
        };
        let cap = |n: u64| buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        if x.pos < start {
            let n = cap(start - x.pos);
            buf[..n].fill(0);
            x.pos += n as u64;
            return Ok(n);
        }
        let n = cap(end - x.pos);
        let n = self.read_stored(&mut buf[..n])?;
        if let Some(x) = &mut self.expand {
            x.pos += n as u64;
        }
        Ok(n)
    }

    /// The current entry's content as an [`io::Read`] (errors become [`io::Error`]s carrying
    /// the [`TarError`]).
    pub fn content(&mut self) -> Content<'_, R> {
        Content(self)
    }
}

impl<R: Read + Seek> Reader<BufReader<R>> {
    /// A reader that seeks over data it does not need (a file; a stream that cannot seek is
    /// read instead).
    pub fn seekable(r: BufReader<R>) -> Self {
        Reader::with_skip(r, skip_by_seeking::<R>)
    }
}

/// See [`Reader::content`].
#[derive(Debug)]
pub struct Content<'a, R>(&'a mut Reader<R>);

impl<R: Read> Read for Content<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_content(buf).map_err(io::Error::from)
    }
}

/// Parses a PAX time (`[-]secs[.frac]`) as Go's `parsePAXTime`: seconds floored, nanoseconds
/// from the first nine fraction digits.
pub(crate) fn parse_pax_time(v: &[u8]) -> Option<Mtime> {
    let (whole, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &[][..]),
    };
    let secs = pax::parse_i64(whole)?;
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut nanos: u32 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    if !whole.starts_with(b"-") || nanos == 0 {
        return Some(Mtime {
            seconds: secs,
            nanos,
        });
    }
    Some(Mtime {
        seconds: secs.checked_sub(1)?,
        nanos: 1_000_000_000 - nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header of `typeflag` whose size field is -1 (base-256).
    fn negative_size(typeflag: u8) -> Vec<u8> {
        let mut h = [0u8; BLOCK];
        h[..1].copy_from_slice(b"d");
        header::put_octal(&mut h[field::MODE], 0o755);
        h[field::SIZE].fill(0xff);
        h[field::TYPEFLAG] = typeflag;
        h[field::MAGIC].copy_from_slice(b"ustar\0");
        h[field::VERSION].copy_from_slice(b"00");
        header::set_checksum(&mut h);
        [&h[..], &[0u8; 2 * BLOCK]].concat()
    }

    #[test]
    fn negative_sizes_count_only_where_data_follows() {
        let dir = negative_size(b'5');
        let e = Reader::new(&dir[..]).next_entry().unwrap().unwrap();
        assert_eq!((e.kind, e.size), (EntryKind::Directory, 0));
        let file = negative_size(b'0');
        let err = Reader::new(&file[..]).next_entry().unwrap_err();
        assert!(matches!(err.kind, TarErrorKind::Field("size")), "{err}");
    }

    #[test]
    fn pax_times() {
        let t = |s: &[u8]| parse_pax_time(s).map(|m| (m.seconds, m.nanos));
        assert_eq!(t(b"5"), Some((5, 0)));
        assert_eq!(t(b"5.25"), Some((5, 250_000_000)));
        assert_eq!(t(b"5."), Some((5, 0)));
        assert_eq!(t(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t(b"-0.5"), Some((-1, 500_000_000)));
        assert_eq!(t(b"1.1234567899"), Some((1, 123_456_789)));
        assert_eq!(t(b".5"), None);
        assert_eq!(t(b"1.5x"), None);
    }
}
