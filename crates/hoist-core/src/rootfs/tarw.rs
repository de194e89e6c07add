//! A small tar writer in the shape Go's `archive/tar` gives `docker export`: ustar headers
//! (`ustar\0` `00`), PAX extended headers (`<dir>/PaxHeaders.0/<base>`) only for values that
//! do not fit (long names and link names, ids ≥ 2^21, sizes ≥ 8 GiB, negative or huge mtimes,
//! xattrs), and a trailer of exactly two zero blocks.

use std::io::{self, Write};

/// Tar block size.
const BLOCK: usize = 512;
/// Largest value of an 8-byte octal field (7 digits + NUL).
const MAX_OCTAL_7: u64 = 0o7_777_777;
/// Largest value of a 12-byte octal field (11 digits + NUL).
const MAX_OCTAL_11: u64 = 0o77_777_777_777;

/// One entry to write.
#[derive(Debug, Clone, Default)]
pub(super) struct Hdr<'a> {
    /// Path without `./`, leading `/` or trailing `/` (added for directories).
    pub(super) name: &'a [u8],
    /// Type flag: `b'0'`, `b'1'`, `b'2'`, `b'3'`, `b'4'`, `b'5'` or `b'6'`.
    pub(super) typeflag: u8,
    /// Content size (regular files only).
    pub(super) size: u64,
    /// Link target (hard and symbolic links).
    pub(super) link: &'a [u8],
    /// Permission bits with setuid, setgid and sticky.
    pub(super) mode: u32,
    /// Owner id.
    pub(super) uid: u64,
    /// Group id.
    pub(super) gid: u64,
    /// Modification time in whole seconds.
    pub(super) mtime: i64,
    /// Device major number.
    pub(super) major: u32,
    /// Device minor number.
    pub(super) minor: u32,
    /// Extended attributes, written as `SCHILY.xattr.<name>` records.
    pub(super) xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// The output stream plus a byte count.
#[derive(Debug)]
pub(super) struct TarOut<W: Write> {
    out: W,
    /// Bytes written so far.
    pub(super) bytes: u64,
}

fn put_str(field: &mut [u8], v: &[u8]) {
    let n = v.len().min(field.len());
    field[..n].copy_from_slice(&v[..n]);
}

/// Octal, zero-padded to `field.len() - 1` digits, NUL-terminated (as Go's archive/tar).
fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// Octal when it fits, GNU base-256 otherwise (device numbers have no PAX record).
fn put_numeric(field: &mut [u8], v: u64) {
    if v <= MAX_OCTAL_7 {
        put_octal(field, v);
    } else {
        field.fill(0);
        let n = field.len();
        field[n - 8..].copy_from_slice(&v.to_be_bytes());
        field[0] |= 0x80;
    }
}

/// Appends one PAX record `"<len> <key>=<value>\n"`, where `<len>` counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Splits a long name into a ustar prefix (≤ 155 bytes) and name (≤ 100 bytes) at a `/`;
/// `None` when it does not fit or is not ASCII (Go then writes a PAX `path`).
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if !path.is_ascii() {
        return None;
    }
    if path.len() <= 100 {
        return Some((&[], path));
    }
    (1..path.len().min(156))
        .rev()
        .filter(|&i| path[i] == b'/')
        .map(|i| (&path[..i], &path[i + 1..]))
        .find(|(_, n)| !n.is_empty() && n.len() <= 100)
}

fn checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put_octal(&mut h[148..155], u64::from(sum));
    h[155] = b' ';
}

/// Zero bytes that pad `len` to a whole block.
pub(super) fn padding(len: u64) -> usize {
    ((BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64) as usize
}

impl<W: Write> TarOut<W> {
    /// Wraps `out`.
    pub(super) fn new(out: W) -> Self {
        TarOut { out, bytes: 0 }
    }

    /// Writes raw bytes.
    pub(super) fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.bytes += b.len() as u64;
        self.out.write_all(b)
    }

    /// Writes the header of `e` (preceded by a PAX header when needed); for regular files
    /// exactly `e.size` content bytes and [`padding`] must follow.
    pub(super) fn header(&mut self, e: &Hdr<'_>) -> io::Result<()> {
        let mut name = e.name.to_vec();
        if e.typeflag == b'5' {
            name.push(b'/');
        }
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut h = [0u8; BLOCK];
        match split_ustar(&name) {
            Some((prefix, n)) => {
                put_str(&mut h[0..100], n);
                put_str(&mut h[345..500], prefix);
            }
            None => {
                put_str(&mut h[0..100], &name);
                pax.push((b"path".to_vec(), name.clone()));
            }
        }
        put_str(&mut h[157..257], e.link);
        if e.link.len() > 100 || !e.link.is_ascii() {
            pax.push((b"linkpath".to_vec(), e.link.to_vec()));
        }
        put_octal(&mut h[100..108], u64::from(e.mode & 0o7777));
        for (range, v, key) in [(108..116, e.uid, &b"uid"[..]), (116..124, e.gid, b"gid")] {
            if v <= MAX_OCTAL_7 {
                put_octal(&mut h[range], v);
            } else {
                put_octal(&mut h[range], 0);
                pax.push((key.to_vec(), v.to_string().into_bytes()));
            }
        }
        if e.size <= MAX_OCTAL_11 {
            put_octal(&mut h[124..136], e.size);
        } else {
            put_octal(&mut h[124..136], 0);
            pax.push((b"size".to_vec(), e.size.to_string().into_bytes()));
        }
        match u64::try_from(e.mtime) {
            Ok(s) if s <= MAX_OCTAL_11 => put_octal(&mut h[136..148], s),
            _ => {
                put_octal(&mut h[136..148], 0);
                pax.push((b"mtime".to_vec(), e.mtime.to_string().into_bytes()));
            }
        }
        h[156] = e.typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        put_numeric(&mut h[329..337], u64::from(e.major));
        put_numeric(&mut h[337..345], u64::from(e.minor));
        for (n, v) in e.xattrs {
            pax.push(([&b"SCHILY.xattr."[..], n].concat(), v.clone()));
        }
        if pax
            .iter()
            .any(|(k, v)| (k == b"path" || k == b"linkpath") && std::str::from_utf8(v).is_err())
        {
            // PAX values are UTF-8 unless the header says otherwise.
            pax.push((b"hdrcharset".to_vec(), b"BINARY".to_vec()));
        }
        if !pax.is_empty() {
            pax.sort();
            let mut data = Vec::new();
            for (k, v) in &pax {
                pax_record(&mut data, k, v);
            }
            let (dir, base) = match e.name.iter().rposition(|&b| b == b'/') {
                Some(i) => (&e.name[..=i], &e.name[i + 1..]),
                None => (&b""[..], e.name),
            };
            let mut x = [0u8; BLOCK];
            put_str(&mut x[0..100], &[dir, b"PaxHeaders.0/", base].concat());
            for range in [100..108, 108..116, 116..124] {
                put_octal(&mut x[range], 0);
            }
            put_octal(&mut x[124..136], data.len() as u64);
            put_octal(&mut x[136..148], 0);
            x[156] = b'x';
            x[257..263].copy_from_slice(b"ustar\0");
            x[263..265].copy_from_slice(b"00");
            put_octal(&mut x[329..337], 0);
            put_octal(&mut x[337..345], 0);
            checksum(&mut x);
            self.write(&x)?;
            data.resize(data.len() + padding(data.len() as u64), 0);
            self.write(&data)?;
        }
        checksum(&mut h);
        self.write(&h)
    }

    /// Writes the padding after `len` content bytes.
    pub(super) fn pad(&mut self, len: u64) -> io::Result<()> {
        let zeros = [0u8; BLOCK];
        self.write(&zeros[..padding(len)])
    }

    /// Writes the two zero blocks that end the archive and flushes.
    pub(super) fn finish(mut self) -> io::Result<u64> {
        self.write(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.bytes)
    }
}
