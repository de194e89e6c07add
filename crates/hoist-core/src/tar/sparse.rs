//! GNU sparse files in PAX form (formats 0.0, 0.1 and 1.0), read as Go's `archive/tar` reads
//! them: the entry is a regular file of the real size whose data fragments are stored and whose
//! holes read as zeros. (Old GNU `S` headers are refused by the reader, as docker refuses them.)

use super::pax::parse_i64;

/// One stored run of a sparse file: `len` bytes at `offset` of the real file. Runs are in
/// order and do not overlap; what lies between them is a hole (zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Offset in the real file.
    pub offset: u64,
    /// Length of the run.
    pub len: u64,
}

/// Which PAX sparse format an entry uses, from its records (Go's `readGNUSparsePAXHeaders`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// 0.0 or 0.1: the map is in the PAX records.
    Records,
    /// 1.0: the map is at the start of the entry's data.
    InData,
}

/// The sparse version the records name, `None` when the entry is not sparse (or names a
/// version Go does not know, which Go then reads as a plain file).
pub(crate) fn version(
    major: Option<&[u8]>,
    minor: Option<&[u8]>,
    has_map: bool,
) -> Option<Version> {
    match (major.unwrap_or_default(), minor.unwrap_or_default()) {
        (b"0", b"0" | b"1") => Some(Version::Records),
        (b"1", b"0") => Some(Version::InData),
        (b"", b"") if has_map => Some(Version::Records),
        _ => None,
    }
}

/// Parses a 0.0/0.1 map: `numblocks` entries, the map `offset,len,offset,len,…`.
pub(crate) fn parse_records(numblocks: &[u8], map: &[u8]) -> Result<Vec<Fragment>, &'static str> {
    let n = parse_i64(numblocks)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or("bad GNU.sparse.numblocks")?;
    let fields: Vec<&[u8]> = if map.is_empty() {
        Vec::new()
    } else {
        map.split(|&b| b == b',').collect()
    };
    if fields.len() as u64 != n.saturating_mul(2) {
        return Err("GNU.sparse.map does not hold numblocks entries");
    }
    fields.chunks(2).map(|p| fragment(p[0], p[1])).collect()
}

/// One map entry from its two decimal fields.
pub(crate) fn fragment(offset: &[u8], len: &[u8]) -> Result<Fragment, &'static str> {
    let num = |v: &[u8]| parse_i64(v).and_then(|n| u64::try_from(n).ok());
    match (num(offset), num(len)) {
        (Some(offset), Some(len)) => Ok(Fragment { offset, len }),
        _ => Err("a map entry is not a non-negative number"),
    }
}

/// Go's `validateSparseEntries`: every run inside the real size, in order, not overlapping.
pub(crate) fn validate(frags: &[Fragment], size: u64) -> Result<(), &'static str> {
    let mut end = 0u64;
    for f in frags {
        let f_end = f.offset.checked_add(f.len).ok_or("a run overflows")?;
        if f_end > size {
            return Err("a run lies past the file's size");
        }
        if f.offset < end {
            return Err("runs overlap or are out of order");
        }
        end = f_end;
    }
    Ok(())
}

/// Incremental parser of a 1.0 map (newline-separated decimals: the count, then offset and
/// length per run), fed 512-byte blocks.
#[derive(Debug, Default)]
pub(crate) struct InDataMap {
    /// Unparsed bytes (at most one partial token).
    partial: Vec<u8>,
    count: Option<u64>,
    numbers: Vec<u64>,
    done: bool,
}

impl InDataMap {
    /// Feeds one block; `Ok(Some(runs))` once the map is complete (the rest of the block is
    /// padding, as in GNU tar and Go).
    pub(crate) fn feed(&mut self, block: &[u8]) -> Result<Option<Vec<Fragment>>, &'static str> {
        debug_assert!(!self.done);
        let mut rest = block;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..nl]);
            rest = &rest[nl + 1..];
            let v = parse_i64(&self.partial)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or("a map entry is not a non-negative number")?;
            self.partial.clear();
            match self.count {
                None => self.count = Some(v),
                Some(_) => self.numbers.push(v),
            }
            if let Some(c) = self.count
                && self.numbers.len() as u64 == c.saturating_mul(2)
            {
                self.done = true;
                let runs = self
                    .numbers
                    .chunks(2)
                    .map(|p| Fragment {
                        offset: p[0],
                        len: p[1],
                    })
                    .collect();
                return Ok(Some(runs));
            }
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > 20 {
            // No decimal of 64 bits is this long.
            return Err("a map entry is too long");
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            version(Some(b"1"), Some(b"0"), false),
            Some(Version::InData)
        );
        assert_eq!(
            version(Some(b"0"), Some(b"1"), true),
            Some(Version::Records)
        );
        assert_eq!(version(None, None, true), Some(Version::Records));
        assert_eq!(version(None, None, false), None);
        assert_eq!(version(Some(b"2"), Some(b"0"), true), None);
    }

    #[test]
    fn records_map() {
        let f = parse_records(b"2", b"0,5,10,2").unwrap();
        assert_eq!(
            f,
            vec![
                Fragment { offset: 0, len: 5 },
                Fragment { offset: 10, len: 2 }
            ]
        );
        assert!(parse_records(b"3", b"0,5,10,2").is_err());
        assert!(parse_records(b"1", b"0,-5").is_err());
        assert_eq!(parse_records(b"0", b""), Ok(vec![]));
    }

    #[test]
    fn validation() {
        let f = |offset, len| Fragment { offset, len };
        assert!(validate(&[f(0, 5), f(10, 2)], 12).is_ok());
        assert!(validate(&[f(0, 5), f(10, 2)], 11).is_err());
        assert!(validate(&[f(0, 5), f(4, 2)], 12).is_err());
        assert!(validate(&[f(u64::MAX, 2)], u64::MAX).is_err());
    }

    #[test]
    fn in_data_map_across_blocks() {
        let mut m = InDataMap::default();
        assert_eq!(m.feed(b"2\n0\n").unwrap(), None);
        assert_eq!(m.feed(b"5\n1").unwrap(), None);
        let runs = m.feed(b"0\n2\n\0\0\0").unwrap().unwrap();
        assert_eq!(
            runs,
            vec![
                Fragment { offset: 0, len: 5 },
                Fragment { offset: 10, len: 2 }
            ]
        );
        let mut bad = InDataMap::default();
        assert!(bad.feed(b"x\n").is_err());
        let mut long = InDataMap::default();
        assert!(long.feed(&[b'1'; 64]).is_err());
    }
}
