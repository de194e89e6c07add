//! PAX extended-header records (`"<len> <key>=<value>\n"`), parsed by declared length so binary
//! values (xattrs) survive, with Go's validity rules; and their encoding.

/// The key prefix of extended attributes (star and GNU tar, Go's `paxSchilyXattr`).
pub(crate) const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
/// GNU sparse 0.0 spreads its map over repeated `offset` / `numbytes` records.
const SPARSE_OFFSET: &[u8] = b"GNU.sparse.offset";
const SPARSE_NUMBYTES: &[u8] = b"GNU.sparse.numbytes";
/// Where Go gathers the 0.0 records (as the 0.1 format writes them).
pub(crate) const SPARSE_MAP: &[u8] = b"GNU.sparse.map";

/// Records in input order (a repeated key: the last one wins, as in Go's map).
pub(crate) type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Parses the data of an `x` header. Trailing NUL padding inside the declared size, which some
/// writers leave, is accepted.
pub(crate) fn parse(mut data: &[u8]) -> Result<Records, &'static str> {
    let mut out = Vec::new();
    let mut sparse_map: Vec<&[u8]> = Vec::new();
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a record without a length")?;
        let len = parse_i64(&data[..sp])
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("a record with a bad length")?;
        // Go: at least "5 a=\n", within the data, ending in a newline.
        if len < 5 || len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("a record with a bad length");
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a record without '='")?;
        let (key, value) = (&rec[..eq], &rec[eq + 1..]);
        if key.is_empty() || key.contains(&0) {
            return Err("a record with an empty key or a NUL in its key");
        }
        if matches!(key, b"path" | b"linkpath" | b"uname" | b"gname") && value.contains(&0) {
            return Err("a path, linkpath, uname or gname record contains a NUL byte");
        }
        if key == SPARSE_OFFSET || key == SPARSE_NUMBYTES {
            // Go: the 0.0 records alternate offset, numbytes, and hold no comma.
            let want = if sparse_map.len().is_multiple_of(2) {
                SPARSE_OFFSET
            } else {
                SPARSE_NUMBYTES
            };
            if key != want || value.contains(&b',') {
                return Err("GNU sparse 0.0 records out of order");
            }
            sparse_map.push(value);
        } else {
            out.push((key.to_vec(), value.to_vec()));
        }
        data = &data[len..];
    }
    if !sparse_map.is_empty() {
        out.push((SPARSE_MAP.to_vec(), sparse_map.join(&b","[..])));
    }
    Ok(out)
}

/// Appends one record `"<len> <key>=<value>\n"`, where `<len>` counts itself.
pub(crate) fn record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
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

/// Parses a decimal as Go's `strconv.ParseInt(v, 10, 64)` (an optional sign, digits).
pub(crate) fn parse_i64(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(recs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in recs {
            record(&mut out, k, v);
        }
        out
    }

    #[test]
    fn round_trip_binary_values() {
        let data = encode(&[(b"path", b"a\nb"), (b"SCHILY.xattr.user.x", b"\0\x01\n==")]);
        let recs = parse(&data).unwrap();
        assert_eq!(recs[0], (b"path".to_vec(), b"a\nb".to_vec()));
        assert_eq!(recs[1].1, b"\0\x01\n==");
        // The length counts its own digits: 9 + 1 digit would be 10, so 11.
        assert_eq!(encode(&[(b"a", b"12345")]), b"11 a=12345\n");
    }

    #[test]
    fn go_refusals() {
        assert!(parse(b"5 a=\n").is_ok());
        assert!(parse(b"4 a\n").is_err());
        assert!(parse(b"9 path=a\0\n").is_err()); // NUL in a path
        assert!(parse(b"7 =abc\n").is_err()); // empty key
        assert!(parse(b"99 a=b\n").is_err()); // length past the data
        assert!(parse(b"6 a=bc").is_err());
        assert!(parse(b"+7 a=b\n").is_ok()); // Go's ParseInt takes a sign
        assert!(parse(b"6 a=b\n\0\0\0").is_ok()); // NUL padding
    }

    #[test]
    fn sparse_00_records_gather_into_a_map() {
        let data = encode(&[
            (b"GNU.sparse.offset", b"0"),
            (b"GNU.sparse.numbytes", b"5"),
            (b"GNU.sparse.offset", b"10"),
            (b"GNU.sparse.numbytes", b"2"),
        ]);
        let recs = parse(&data).unwrap();
        assert_eq!(recs, vec![(SPARSE_MAP.to_vec(), b"0,5,10,2".to_vec())]);
        let bad = encode(&[(b"GNU.sparse.numbytes", b"5")]);
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn decimal_as_go() {
        assert_eq!(parse_i64(b"12"), Some(12));
        assert_eq!(parse_i64(b"-3"), Some(-3));
        assert_eq!(parse_i64(b"+3"), Some(3));
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"1 "), None);
        assert_eq!(parse_i64(b"99999999999999999999"), None);
    }
}
