//! The 512-byte header block: field layout, number parsing and encoding, checksum and format
//! detection, as Go's `archive/tar` (`format.go`, `strconv.go`) defines them. Pure functions.

/// Tar block size.
pub(crate) const BLOCK: usize = 512;
/// Largest value an 8-byte octal field (7 digits + NUL) holds.
pub(crate) const MAX_OCTAL_7: u64 = 0o7_777_777;
/// Largest value a 12-byte octal field (11 digits + NUL) holds.
pub(crate) const MAX_OCTAL_11: u64 = 0o77_777_777_777;

/// Field ranges of the v7/ustar header.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const NAME: Range<usize> = 0..100;
    pub(crate) const MODE: Range<usize> = 100..108;
    pub(crate) const UID: Range<usize> = 108..116;
    pub(crate) const GID: Range<usize> = 116..124;
    pub(crate) const SIZE: Range<usize> = 124..136;
    pub(crate) const MTIME: Range<usize> = 136..148;
    pub(crate) const CHKSUM: Range<usize> = 148..156;
    pub(crate) const TYPEFLAG: usize = 156;
    pub(crate) const LINKNAME: Range<usize> = 157..257;
    pub(crate) const MAGIC: Range<usize> = 257..263;
    pub(crate) const VERSION: Range<usize> = 263..265;
    pub(crate) const UNAME: Range<usize> = 265..297;
    pub(crate) const GNAME: Range<usize> = 297..329;
    pub(crate) const DEVMAJOR: Range<usize> = 329..337;
    pub(crate) const DEVMINOR: Range<usize> = 337..345;
    pub(crate) const PREFIX: Range<usize> = 345..500;
    /// star's prefix is shorter: its last 24 bytes hold atime and ctime.
    pub(crate) const STAR_PREFIX: Range<usize> = 345..476;
    pub(crate) const STAR_TRAILER: Range<usize> = 508..512;
}

/// The header formats Go tells apart by magic (`getFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// No magic: only the v7 fields (name, mode, ids, size, mtime, type, link name).
    V7,
    /// `ustar\0` `00`: POSIX ustar, also the shape of PAX archives.
    Ustar,
    /// `ustar\0` with the `tar\0` trailer of Jörg Schilling's star.
    Star,
    /// `ustar ` ` \0`: GNU tar; the prefix area holds atime, ctime and sparse data.
    Gnu,
}

/// A NUL-terminated string field (the whole field when it has no NUL).
pub(crate) fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Go's `parseNumeric`: GNU base-256 (two's complement, big-endian) when the top bit is set,
/// octal otherwise. `None` when malformed or out of `i64`'s range.
pub(crate) fn parse_numeric(field: &[u8]) -> Option<i64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let inv: u8 = if field[0] & 0x40 != 0 { 0xff } else { 0 };
        let mut x: u64 = 0;
        for (i, &c) in field.iter().enumerate() {
            let mut c = c ^ inv;
            if i == 0 {
                c &= 0x7f;
            }
            if x >> 56 > 0 {
                return None;
            }
            x = x << 8 | u64::from(c);
        }
        if x >> 63 > 0 {
            return None;
        }
        let v = i64::try_from(x).ok()?;
        return Some(if inv == 0xff { !v } else { v });
    }
    parse_octal(field).and_then(|v| i64::try_from(v).ok())
}

/// Go's `parseOctal`: leading and trailing spaces and NULs are trimmed, an empty field is 0,
/// the rest (up to a NUL) must be octal digits.
pub(crate) fn parse_octal(field: &[u8]) -> Option<u64> {
    let pad = |b: &u8| *b == b' ' || *b == 0;
    let start = field.iter().position(|b| !pad(b)).unwrap_or(field.len());
    let end = field.iter().rposition(|b| !pad(b)).map_or(start, |i| i + 1);
    let digits = cstr(&field[start..end]);
    if digits.is_empty() {
        return Some(0);
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Go's `getFormat`: `None` when the checksum matches neither the unsigned nor the signed sum
/// (old writers summed signed bytes), else the format the magic says.
pub(crate) fn format(h: &[u8; BLOCK]) -> Option<Format> {
    let stored = parse_octal(&h[field::CHKSUM])?;
    if stored != unsigned_sum(h) && i64::try_from(stored).ok() != Some(sums(h).1) {
        return None;
    }
    let magic = &h[field::MAGIC];
    let version = &h[field::VERSION];
    Some(
        if magic == b"ustar\0" && &h[field::STAR_TRAILER] == b"tar\0" {
            Format::Star
        } else if magic == b"ustar\0" {
            Format::Ustar
        } else if magic == b"ustar " && version == b" \0" {
            Format::Gnu
        } else {
            Format::V7
        },
    )
}

/// The unsigned byte sum of a header, its checksum field counted as spaces (the common case,
/// in a form the compiler vectorizes: every header of every layer goes through it).
fn unsigned_sum(h: &[u8; BLOCK]) -> u64 {
    let all: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let field: u64 = h[field::CHKSUM].iter().map(|&b| u64::from(b)).sum();
    all - field + 8 * u64::from(b' ')
}

/// The unsigned and signed byte sums of a header, its checksum field counted as spaces.
fn sums(h: &[u8; BLOCK]) -> (u64, i64) {
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in h.iter().enumerate() {
        let b = if field::CHKSUM.contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    (unsigned, signed)
}

/// Copies `v` into `field`, cut to its length (the caller decides whether a PAX record keeps
/// the whole value).
pub(crate) fn put_str(field: &mut [u8], v: &[u8]) {
    let n = v.len().min(field.len());
    field[..n].copy_from_slice(&v[..n]);
}

/// Octal, zero-padded to `field.len() - 1` digits, NUL-terminated (Go's `formatOctal`). The
/// caller checks that `v` fits.
pub(crate) fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// Octal when it fits, GNU base-256 otherwise (device numbers have no PAX record).
pub(crate) fn put_numeric(field: &mut [u8], v: u64) {
    if v <= MAX_OCTAL_7 {
        put_octal(field, v);
    } else {
        field.fill(0);
        let n = field.len();
        field[n - 8..].copy_from_slice(&v.to_be_bytes());
        field[0] |= 0x80;
    }
}

/// Sets the checksum field: six octal digits, NUL, space (Go's `setFormat`).
pub(crate) fn set_checksum(h: &mut [u8; BLOCK]) {
    let (sum, _) = sums(h);
    put_octal(&mut h[148..155], sum);
    h[155] = b' ';
}

/// Zero bytes that pad `len` to a whole block.
pub(crate) fn padding(len: u64) -> u64 {
    (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_as_go() {
        assert_eq!(parse_octal(b"0000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"  644 \0\0"), Some(0o644));
        assert_eq!(parse_octal(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(parse_octal(b"        "), Some(0));
        // Go trims both ends, then parses up to a NUL: an inner space is an error.
        assert_eq!(parse_octal(b"6 44\0\0\0\0"), None);
        assert_eq!(parse_octal(b"0009\0"), None);
        assert_eq!(parse_octal(b"77777777777777777777777"), None);
    }

    #[test]
    fn base256_as_go() {
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[11] = 5;
        assert_eq!(parse_numeric(&f), Some(5));
        let neg = [0xff; 12];
        assert_eq!(parse_numeric(&neg), Some(-1));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[3] = 1; // 2^64 and more overflow
        assert_eq!(parse_numeric(&big), None);
    }

    #[test]
    fn put_numeric_round_trips() {
        for v in [0, 7, MAX_OCTAL_7, MAX_OCTAL_7 + 1, u64::from(u32::MAX)] {
            let mut f = [0u8; 8];
            put_numeric(&mut f, v);
            assert_eq!(parse_numeric(&f), Some(v as i64), "{v}");
        }
    }

    #[test]
    fn checksum_and_format() {
        let mut h = [0u8; BLOCK];
        h[0] = b'a';
        h[field::MAGIC].copy_from_slice(b"ustar\0");
        set_checksum(&mut h);
        assert_eq!(format(&h), Some(Format::Ustar));
        h[field::MAGIC].copy_from_slice(b"ustar ");
        h[field::VERSION].copy_from_slice(b" \0");
        set_checksum(&mut h);
        assert_eq!(format(&h), Some(Format::Gnu));
        h[field::MAGIC].fill(0);
        h[field::VERSION].fill(0);
        set_checksum(&mut h);
        assert_eq!(format(&h), Some(Format::V7));
        h[1] = b'b';
        assert_eq!(format(&h), None);
    }
}
