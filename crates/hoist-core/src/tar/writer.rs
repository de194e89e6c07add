//! The tar writer, in the shape Go's `archive/tar` gives `docker export`: ustar headers
//! (`ustar\0` `00`), a PAX extended header (`<dir>/PaxHeaders.0/<base>`) only for values that do
//! not fit, and a trailer of exactly two zero blocks.

use std::io::{self, Read, Write};

use super::header::{
    BLOCK, MAX_OCTAL_7, MAX_OCTAL_11, field, padding, put_numeric, put_octal, put_str, set_checksum,
};
use super::pax::{self, XATTR_PREFIX};
use super::{EntryKind, Metadata, Mtime};

/// One entry to write.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// Path without `./`, leading `/` or trailing `/` (added for directories).
    pub name: &'a [u8],
    /// The type.
    pub kind: EntryKind,
    /// Content size (regular files only).
    pub size: u64,
    /// Link target (hard and symbolic links).
    pub link: &'a [u8],
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Owner name.
    pub uname: &'a [u8],
    /// Group name.
    pub gname: &'a [u8],
    /// Modification time; sub-second parts go to a PAX record.
    pub mtime: Mtime,
    /// Device major number.
    pub devmajor: u32,
    /// Device minor number.
    pub devminor: u32,
    /// Extended attributes, written as `SCHILY.xattr.<name>` records.
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

impl<'a> Header<'a> {
    /// A header of `kind` at `name`: mode 0, owner 0:0, mtime 0, no data.
    pub fn new(name: &'a [u8], kind: EntryKind) -> Self {
        Header {
            name,
            kind,
            size: 0,
            link: b"",
            mode: 0,
            uid: 0,
            gid: 0,
            uname: b"",
            gname: b"",
            mtime: Mtime::default(),
            devmajor: 0,
            devminor: 0,
            xattrs: &[],
        }
    }

    /// A header carrying `meta`'s attributes.
    pub fn with_meta(name: &'a [u8], kind: EntryKind, meta: &'a Metadata) -> Self {
        Header {
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            uname: &meta.uname,
            gname: &meta.gname,
            mtime: meta.mtime,
            xattrs: &meta.xattrs,
            ..Header::new(name, kind)
        }
    }
}

/// Writes tar entries to a stream, counting what it wrote.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    bytes: u64,
    entries: u64,
}

/// Go's `toASCII`: what a header field can hold of a value that goes to a PAX record.
fn to_ascii(v: &[u8]) -> Vec<u8> {
    v.iter().copied().filter(u8::is_ascii).collect()
}

/// Go's `splitUSTARPath`: a long ASCII name as prefix (≤ 155 bytes) and name (≤ 100 bytes),
/// split at a `/`; `None` when it cannot be.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return name.is_ascii().then_some((&[][..], name));
    }
    if !name.is_ascii() {
        return None;
    }
    let mut len = name.len();
    if len > 156 {
        len = 156;
    } else if name[len - 1] == b'/' {
        len -= 1;
    }
    let i = name[..len].iter().rposition(|&b| b == b'/')?;
    let (prefix, rest) = (&name[..i], &name[i + 1..]);
    (i > 0 && !rest.is_empty() && rest.len() <= 100 && prefix.len() <= 155)
        .then_some((prefix, rest))
}

/// A PAX time value: seconds, and the fraction without trailing zeros.
fn format_pax_time(t: Mtime) -> String {
    let total = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    let sign = if total < 0 { "-" } else { "" };
    let abs = total.unsigned_abs();
    let (secs, nanos) = (abs / 1_000_000_000, abs % 1_000_000_000);
    if nanos == 0 {
        return format!("{sign}{secs}");
    }
    let frac = format!("{nanos:09}");
    format!("{sign}{secs}.{}", frac.trim_end_matches('0'))
}

/// Go's name for the PAX header of `name`: `path.Join(dir, "PaxHeaders.0", file)`, in ASCII,
/// at most 100 bytes, no trailing `/`.
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let (dir, file) = match name.iter().rposition(|&b| b == b'/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => (&b""[..], name),
    };
    let mut out = dir.to_vec();
    out.extend_from_slice(b"PaxHeaders.0");
    if !file.is_empty() {
        out.push(b'/');
        out.extend_from_slice(file);
    }
    let mut out = to_ascii(&out);
    out.truncate(100);
    while out.last() == Some(&b'/') {
        out.pop();
    }
    out
}

impl<W: Write> Writer<W> {
    /// Writes to `out` (give it a buffered stream).
    pub fn new(out: W) -> Self {
        Writer {
            out,
            bytes: 0,
            entries: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Entries written so far (PAX headers not counted).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes raw bytes (an entry's content).
    pub fn write_data(&mut self, b: &[u8]) -> io::Result<()> {
        self.bytes += b.len() as u64;
        self.out.write_all(b)
    }

    /// Copies exactly `size` bytes of `src` as an entry's content, then its padding. Goes
    /// through `io::copy`, so file-to-file copies use `copy_file_range`. Returns the bytes
    /// `src` had, which are fewer than `size` when it ends early (the caller's error).
    pub fn copy_data(&mut self, src: impl Read, size: u64) -> io::Result<u64> {
        let n = io::copy(&mut src.take(size), &mut self.out)?;
        self.bytes += n;
        if n == size {
            self.pad(size)?;
        }
        Ok(n)
    }

    /// Writes the padding after `len` content bytes.
    pub fn pad(&mut self, len: u64) -> io::Result<()> {
        self.write_data(&[0u8; BLOCK][..padding(len) as usize])
    }

    /// Writes the header of `e` (preceded by a PAX header when needed); for regular files
    /// exactly `e.size` content bytes and [`Writer::pad`] must follow.
    pub fn header(&mut self, e: &Header<'_>) -> io::Result<()> {
        let mut name = e.name.to_vec();
        if e.kind == EntryKind::Directory {
            name.push(b'/');
        }
        let mut recs: pax::Records = Vec::new();
        let mut h = [0u8; BLOCK];
        match split_ustar(&name) {
            Some((prefix, n)) => {
                put_str(&mut h[field::NAME], n);
                put_str(&mut h[field::PREFIX], prefix);
            }
            None => {
                put_str(&mut h[field::NAME], &to_ascii(&name));
                recs.push((b"path".to_vec(), name.clone()));
            }
        }
        if e.link.len() > 100 || !e.link.is_ascii() {
            recs.push((b"linkpath".to_vec(), e.link.to_vec()));
            put_str(&mut h[field::LINKNAME], &to_ascii(e.link));
        } else {
            put_str(&mut h[field::LINKNAME], e.link);
        }
        put_octal(&mut h[field::MODE], u64::from(e.mode & 0o7777));
        for (range, v, key) in [
            (field::UID, e.uid, &b"uid"[..]),
            (field::GID, e.gid, b"gid"),
        ] {
            if v <= MAX_OCTAL_7 {
                put_octal(&mut h[range], v);
            } else {
                put_octal(&mut h[range], 0);
                recs.push((key.to_vec(), v.to_string().into_bytes()));
            }
        }
        let size = if e.kind == EntryKind::Regular {
            e.size
        } else {
            0
        };
        if size <= MAX_OCTAL_11 {
            put_octal(&mut h[field::SIZE], size);
        } else {
            put_octal(&mut h[field::SIZE], 0);
            recs.push((b"size".to_vec(), size.to_string().into_bytes()));
        }
        let secs_fit = u64::try_from(e.mtime.seconds).is_ok_and(|s| s <= MAX_OCTAL_11);
        put_octal(
            &mut h[field::MTIME],
            if secs_fit { e.mtime.seconds as u64 } else { 0 },
        );
        if !secs_fit || e.mtime.nanos != 0 {
            recs.push((b"mtime".to_vec(), format_pax_time(e.mtime).into_bytes()));
        }
        h[field::TYPEFLAG] = e.kind.typeflag();
        h[field::MAGIC].copy_from_slice(b"ustar\0");
        h[field::VERSION].copy_from_slice(b"00");
        for (range, v, key) in [
            (field::UNAME, e.uname, &b"uname"[..]),
            (field::GNAME, e.gname, b"gname"),
        ] {
            if v.len() > 32 || !v.is_ascii() {
                recs.push((key.to_vec(), v.to_vec()));
                put_str(&mut h[range], &to_ascii(v));
            } else {
                put_str(&mut h[range], v);
            }
        }
        put_numeric(&mut h[field::DEVMAJOR], u64::from(e.devmajor));
        put_numeric(&mut h[field::DEVMINOR], u64::from(e.devminor));
        for (n, v) in e.xattrs {
            recs.push(([XATTR_PREFIX, n].concat(), v.clone()));
        }
        if recs
            .iter()
            .any(|(k, v)| (k == b"path" || k == b"linkpath") && std::str::from_utf8(v).is_err())
        {
            // PAX values are UTF-8 unless the header says otherwise (GNU tar does the same).
            recs.push((b"hdrcharset".to_vec(), b"BINARY".to_vec()));
        }
        if !recs.is_empty() {
            recs.sort();
            let mut data = Vec::new();
            for (k, v) in &recs {
                pax::record(&mut data, k, v);
            }
            let mut x = [0u8; BLOCK];
            put_str(&mut x[field::NAME], &pax_header_name(&name));
            for range in [field::MODE, field::UID, field::GID, field::MTIME] {
                put_octal(&mut x[range], 0);
            }
            put_octal(&mut x[field::SIZE], data.len() as u64);
            x[field::TYPEFLAG] = b'x';
            x[field::MAGIC].copy_from_slice(b"ustar\0");
            x[field::VERSION].copy_from_slice(b"00");
            set_checksum(&mut x);
            self.write_data(&x)?;
            let pad = padding(data.len() as u64) as usize;
            data.resize(data.len() + pad, 0);
            self.write_data(&data)?;
        }
        set_checksum(&mut h);
        self.write_data(&h)?;
        self.entries += 1;
        Ok(())
    }

    /// The stream, without an end-of-archive marker (for a writer that continues the same
    /// tar).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes the two zero blocks that end the archive, flushes, and returns the stream and
    /// the archive's size.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.write_data(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok((self.out, self.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Entry, Reader};
    use super::*;

    fn read_all(bytes: &[u8]) -> Vec<(Entry, Vec<u8>)> {
        let mut r = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let mut data = Vec::new();
            r.content().read_to_end(&mut data).unwrap();
            out.push((e, data));
        }
        out
    }

    #[test]
    fn round_trip_through_the_reader() {
        let long = [&b"d/"[..], &[b'x'; 150], b"/", &[b'y'; 120]].concat();
        let meta = Metadata {
            mode: 0o4755,
            uid: 1 << 22,
            gid: 7,
            uname: b"a-very-long-user-name-that-does-not-fit".to_vec(),
            gname: "gr\u{e9}".as_bytes().to_vec(),
            mtime: Mtime {
                seconds: -5,
                nanos: 250_000_000,
            },
            xattrs: vec![(b"user.bin".to_vec(), b"\0\n\xff".to_vec())],
        };
        let mut w = Writer::new(Vec::new());
        let mut h = Header::with_meta(&long, EntryKind::Regular, &meta);
        h.size = 3;
        w.header(&h).unwrap();
        w.write_data(b"abc").unwrap();
        w.pad(3).unwrap();
        let mut d = Header::new(b"dir", EntryKind::Directory);
        d.mode = 0o755;
        w.header(&d).unwrap();
        let mut l = Header::new(b"link", EntryKind::Symlink);
        l.link = b"\xfftarget";
        w.header(&l).unwrap();
        let mut c = Header::new(b"dev", EntryKind::CharDevice);
        c.devmajor = 1 << 22;
        c.devminor = 3;
        w.header(&c).unwrap();
        assert_eq!(w.entries(), 4);
        let (bytes, len) = w.finish().unwrap();
        assert_eq!(len as usize, bytes.len());
        assert_eq!(bytes.len() % BLOCK, 0);
        let got = read_all(&bytes);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].0.path, long);
        assert_eq!(got[0].0.meta, meta);
        assert_eq!(got[0].1, b"abc");
        assert_eq!(got[1].0.path, b"dir/");
        assert_eq!(got[1].0.kind, EntryKind::Directory);
        assert_eq!(got[2].0.link, b"\xfftarget");
        assert_eq!((got[3].0.devmajor, got[3].0.devminor), (1 << 22, 3));
    }

    #[test]
    fn go_names_for_pax_headers() {
        assert_eq!(pax_header_name(b"a/b"), b"a/PaxHeaders.0/b");
        assert_eq!(pax_header_name(b"a/b/"), b"a/b/PaxHeaders.0");
        assert_eq!(pax_header_name(b"f"), b"PaxHeaders.0/f");
        assert_eq!(
            pax_header_name("\u{e9}t\u{e9}".as_bytes()),
            b"PaxHeaders.0/t"
        );
    }

    #[test]
    fn ustar_split_as_go() {
        let name = [&[b'p'; 150][..], b"/", &[b'n'; 100]].concat();
        assert_eq!(split_ustar(&name), Some((&name[..150], &name[151..])));
        let too_long = [&[b'p'; 160][..], b"/", &[b'n'; 10]].concat();
        assert_eq!(split_ustar(&too_long), None);
        assert_eq!(split_ustar(&[b'n'; 101]), None);
        assert_eq!(split_ustar("\u{e9}".as_bytes()), None);
    }
}
