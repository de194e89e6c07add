//! The record encoding of a layer index: one record per tar entry, each relative to the one
//! before (names share their prefix, owners repeat), so a record costs a few bytes past its
//! name's new part. Pure functions over byte slices; every count and length read is bounded.

use crate::tar::{Entry, EntryKind, Fragment, MAX_EXTENSION_SIZE, MAX_LINK_LEN, MAX_NAME_LEN};
use crate::tar::{Metadata, Mtime};

/// Longest owner or group name kept: a PAX record may carry any length, but a longer one is
/// no name a system has (Linux allows 32 bytes); the bound only stops a hostile index.
const MAX_OWNER_NAME: usize = 4096;

/// Most sparse runs of one entry: the tar reader bounds a sparse map to 1 MiB
/// ([`crate::tar::MAX_SPARSE_MAP`]), which holds fewer runs than this.
const MAX_SPARSE_RUNS: u64 = 1 << 17;

/// Flag bits of a record.
mod flag {
    pub(super) const SAME_UNAME: u64 = 1;
    pub(super) const SAME_GNAME: u64 = 1 << 1;
    pub(super) const SAME_IDS: u64 = 1 << 2;
    pub(super) const LINK: u64 = 1 << 3;
    pub(super) const XATTRS: u64 = 1 << 4;
    pub(super) const SPARSE: u64 = 1 << 5;
    pub(super) const DEVICE: u64 = 1 << 6;
    pub(super) const NANOS: u64 = 1 << 7;
    pub(super) const ALL: u64 = (1 << 8) - 1;
}

/// Why records do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {record}: {what}")]
pub struct RecordError {
    /// Index of the record.
    pub record: u64,
    /// What is wrong.
    pub what: &'static str,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends records for entries, remembering the entry before.
#[derive(Debug, Default)]
pub(super) struct Encoder {
    prev: Option<Entry>,
}

impl Encoder {
    /// Appends the record of `e` to `out`.
    pub(super) fn push(&mut self, out: &mut Vec<u8>, e: &Entry) {
        let prev = self.prev.as_ref();
        let mut flags = 0;
        let same = |f: fn(&Entry) -> &[u8]| prev.is_some_and(|p| f(p) == f(e));
        if same(|x| &x.meta.uname) {
            flags |= flag::SAME_UNAME;
        }
        if same(|x| &x.meta.gname) {
            flags |= flag::SAME_GNAME;
        }
        if prev.is_some_and(|p| p.meta.uid == e.meta.uid && p.meta.gid == e.meta.gid) {
            flags |= flag::SAME_IDS;
        }
        if !e.link.is_empty() {
            flags |= flag::LINK;
        }
        if !e.meta.xattrs.is_empty() {
            flags |= flag::XATTRS;
        }
        if e.sparse.is_some() {
            flags |= flag::SPARSE;
        }
        if e.devmajor != 0 || e.devminor != 0 {
            flags |= flag::DEVICE;
        }
        if e.meta.mtime.nanos != 0 {
            flags |= flag::NANOS;
        }
        put_varint(out, flags);
        out.push(e.kind.typeflag());
        let prev_offset = prev.map_or(0, |p| p.header_offset);
        put_varint(out, e.header_offset - prev_offset);
        put_varint(out, e.data_offset - e.header_offset);
        let prev_path: &[u8] = prev.map_or(&[], |p| &p.path);
        let shared = prev_path
            .iter()
            .zip(&e.path)
            .take_while(|(a, b)| a == b)
            .count();
        put_varint(out, shared as u64);
        put_bytes(out, &e.path[shared..]);
        put_varint(out, u64::from(e.meta.mode));
        if flags & flag::SAME_IDS == 0 {
            put_varint(out, e.meta.uid);
            put_varint(out, e.meta.gid);
        }
        if flags & flag::SAME_UNAME == 0 {
            put_bytes(out, &e.meta.uname);
        }
        if flags & flag::SAME_GNAME == 0 {
            put_bytes(out, &e.meta.gname);
        }
        put_varint(out, zigzag(e.meta.mtime.seconds));
        if flags & flag::NANOS != 0 {
            put_varint(out, u64::from(e.meta.mtime.nanos));
        }
        put_varint(out, e.size);
        if flags & flag::LINK != 0 {
            put_bytes(out, &e.link);
        }
        if flags & flag::DEVICE != 0 {
            put_varint(out, u64::from(e.devmajor));
            put_varint(out, u64::from(e.devminor));
        }
        if flags & flag::XATTRS != 0 {
            put_varint(out, e.meta.xattrs.len() as u64);
            for (k, v) in &e.meta.xattrs {
                put_bytes(out, k);
                put_bytes(out, v);
            }
        }
        if let Some(runs) = &e.sparse {
            put_varint(out, e.stored);
            put_varint(out, runs.len() as u64);
            for r in runs {
                put_varint(out, r.offset);
                put_varint(out, r.len);
            }
        }
        // Only what the next record refers to is kept.
        let keep = Entry {
            index: e.index,
            path: e.path.clone(),
            link: Vec::new(),
            kind: e.kind,
            meta: Metadata {
                xattrs: Vec::new(),
                ..e.meta.clone()
            },
            devmajor: 0,
            devminor: 0,
            size: 0,
            stored: 0,
            header_offset: e.header_offset,
            data_offset: 0,
            sparse: None,
        };
        self.prev = Some(keep);
    }
}

/// Reads records back into entries.
#[derive(Debug)]
pub(super) struct Decoder {
    buf: std::sync::Arc<[u8]>,
    pos: usize,
    record: u64,
    path: Vec<u8>,
    uname: Vec<u8>,
    gname: Vec<u8>,
    ids: (u64, u64),
    offset: u64,
}

impl Decoder {
    pub(super) fn new(buf: std::sync::Arc<[u8]>) -> Self {
        Decoder {
            buf,
            pos: 0,
            record: 0,
            path: Vec::new(),
            uname: Vec::new(),
            gname: Vec::new(),
            ids: (0, 0),
            offset: 0,
        }
    }

    /// Whether every record has been read.
    pub(super) fn is_done(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn err(&self, what: &'static str) -> RecordError {
        RecordError {
            record: self.record,
            what,
        }
    }

    fn varint(&mut self) -> Result<u64, RecordError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("cut short"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("a number runs past 64 bits"))
    }

    /// The range of a length-prefixed byte string in `buf`.
    fn bytes(
        &mut self,
        limit: usize,
        what: &'static str,
    ) -> Result<std::ops::Range<usize>, RecordError> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= limit)
            .ok_or_else(|| self.err(what))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("cut short"))?;
        let start = self.pos;
        self.pos = end;
        Ok(start..end)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RecordError> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| self.err(what))
    }

    /// The next entry (`index` is its record number).
    pub(super) fn next_entry(&mut self) -> Result<Entry, RecordError> {
        let mut e = empty_entry();
        self.next_into(&mut e)?;
        Ok(e)
    }

    /// The next entry, written over `e` (its buffers are reused: no allocation for names).
    pub(super) fn next_into(&mut self, e: &mut Entry) -> Result<(), RecordError> {
        let flags = self.varint()?;
        if flags & !flag::ALL != 0 {
            return Err(self.err("unknown flags"));
        }
        let Some(&typeflag) = self.buf.get(self.pos) else {
            return Err(self.err("cut short"));
        };
        self.pos += 1;
        let kind = EntryKind::from_typeflag(typeflag);
        let step = self.varint()?;
        if self.record > 0 && step == 0 {
            return Err(self.err("header offsets do not increase"));
        }
        let header_offset = self
            .offset
            .checked_add(step)
            .ok_or_else(|| self.err("header offset overflows"))?;
        let data_offset = self
            .varint()
            .ok()
            .and_then(|d| header_offset.checked_add(d))
            .ok_or_else(|| self.err("data offset overflows"))?;
        let shared = self.varint()?;
        if shared > self.path.len() as u64 {
            return Err(self.err("a name shares more than the name before has"));
        }
        self.path.truncate(shared as usize);
        let rest = self.bytes(MAX_NAME_LEN, "a name is too long")?;
        if self.path.len() + rest.len() > MAX_NAME_LEN {
            return Err(self.err("a name is too long"));
        }
        self.path.extend_from_slice(&self.buf[rest]);
        let mode = self.u32("a mode is out of range")?;
        if mode > 0o7777 {
            return Err(self.err("a mode is out of range"));
        }
        if flags & flag::SAME_IDS == 0 {
            self.ids = (self.varint()?, self.varint()?);
        }
        if flags & flag::SAME_UNAME == 0 {
            let b = self.bytes(MAX_OWNER_NAME, "an owner name is too long")?;
            self.uname = self.buf[b].to_vec();
        }
        if flags & flag::SAME_GNAME == 0 {
            let b = self.bytes(MAX_OWNER_NAME, "a group name is too long")?;
            self.gname = self.buf[b].to_vec();
        }
        let seconds = unzigzag(self.varint()?);
        let nanos = if flags & flag::NANOS != 0 {
            self.u32("nanoseconds out of range")?
        } else {
            0
        };
        if nanos >= 1_000_000_000 {
            return Err(self.err("nanoseconds out of range"));
        }
        let size = self.varint()?;
        let link = if flags & flag::LINK != 0 {
            let b = self.bytes(MAX_LINK_LEN, "a link target is too long")?;
            self.buf[b].to_vec()
        } else {
            Vec::new()
        };
        let (devmajor, devminor) = if flags & flag::DEVICE != 0 {
            (
                self.u32("a device number is out of range")?,
                self.u32("a device number is out of range")?,
            )
        } else {
            (0, 0)
        };
        let mut xattrs = Vec::new();
        if flags & flag::XATTRS != 0 {
            let n = self.varint()?;
            let mut total = 0usize;
            for _ in 0..n {
                let k = self.bytes(MAX_EXTENSION_SIZE as usize, "xattrs are too big")?;
                let v = self.bytes(MAX_EXTENSION_SIZE as usize, "xattrs are too big")?;
                total += k.len() + v.len();
                if total > MAX_EXTENSION_SIZE as usize {
                    return Err(self.err("xattrs are too big"));
                }
                xattrs.push((self.buf[k].to_vec(), self.buf[v].to_vec()));
            }
        }
        let (stored, sparse) = if flags & flag::SPARSE != 0 {
            let stored = self.varint()?;
            let n = self.varint()?;
            if n > MAX_SPARSE_RUNS {
                return Err(self.err("too many sparse runs"));
            }
            let mut runs = Vec::new();
            for _ in 0..n {
                runs.push(Fragment {
                    offset: self.varint()?,
                    len: self.varint()?,
                });
            }
            (stored, Some(runs))
        } else {
            (if kind.is_header_only() { 0 } else { size }, None)
        };
        e.index = self.record;
        e.path.clear();
        e.path.extend_from_slice(&self.path);
        e.link = link;
        e.kind = kind;
        e.meta.mode = mode;
        (e.meta.uid, e.meta.gid) = self.ids;
        e.meta.uname.clear();
        e.meta.uname.extend_from_slice(&self.uname);
        e.meta.gname.clear();
        e.meta.gname.extend_from_slice(&self.gname);
        e.meta.mtime = Mtime { seconds, nanos };
        e.meta.xattrs = xattrs;
        e.devmajor = devmajor;
        e.devminor = devminor;
        e.size = size;
        e.stored = stored;
        e.header_offset = header_offset;
        e.data_offset = data_offset;
        e.sparse = sparse;
        self.offset = header_offset;
        self.record += 1;
        Ok(())
    }
}

/// An entry to decode into.
pub(super) fn empty_entry() -> Entry {
    Entry {
        index: 0,
        path: Vec::new(),
        link: Vec::new(),
        kind: EntryKind::Regular,
        meta: Metadata::default(),
        devmajor: 0,
        devminor: 0,
        size: 0,
        stored: 0,
        header_offset: 0,
        data_offset: 0,
        sparse: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64, path: &str, kind: EntryKind) -> Entry {
        Entry {
            index: i,
            path: path.as_bytes().to_vec(),
            link: Vec::new(),
            kind,
            meta: Metadata {
                mode: 0o644,
                uid: 1000,
                gid: 1000,
                uname: b"user".to_vec(),
                gname: b"group".to_vec(),
                mtime: Mtime {
                    seconds: 1_700_000_000,
                    nanos: 0,
                },
                xattrs: Vec::new(),
            },
            devmajor: 0,
            devminor: 0,
            size: 0,
            stored: 0,
            header_offset: i * 1024,
            data_offset: i * 1024 + 512,
            sparse: None,
        }
    }

    #[test]
    fn records_round_trip() {
        let mut es = vec![
            entry(0, "usr/", EntryKind::Directory),
            entry(1, "usr/bin/tool", EntryKind::Regular),
            entry(2, "usr/bin/link", EntryKind::Symlink),
            entry(3, "dev/null", EntryKind::CharDevice),
            entry(4, "sparse", EntryKind::Regular),
        ];
        es[1].size = 123;
        es[1].stored = 123;
        es[1].meta.xattrs = vec![(b"security.capability".to_vec(), vec![1, 0, 0, 2])];
        es[1].meta.mtime = Mtime {
            seconds: -5,
            nanos: 7,
        };
        es[2].link = b"tool".to_vec();
        es[2].meta.uid = 0;
        es[2].meta.uname = b"root".to_vec();
        es[3].devmajor = 1;
        es[3].devminor = 3;
        es[4].size = 1 << 30;
        es[4].stored = 1024;
        es[4].sparse = Some(vec![
            Fragment {
                offset: 0,
                len: 512,
            },
            Fragment {
                offset: 1 << 29,
                len: 512,
            },
        ]);
        let mut buf = Vec::new();
        let mut enc = Encoder::default();
        for e in &es {
            enc.push(&mut buf, e);
        }
        let mut dec = Decoder::new(buf.clone().into());
        for e in &es {
            assert_eq!(&dec.next_entry().unwrap(), e);
        }
        assert!(dec.is_done());
        // Every cut is an error, never a panic.
        for cut in 0..buf.len() {
            let mut dec = Decoder::new(buf[..cut].into());
            let ok = (0..es.len())
                .take_while(|_| dec.next_entry().is_ok())
                .count();
            assert!(ok < es.len(), "cut {cut}");
        }
    }

    #[test]
    fn hostile_records_are_refused() {
        let err = |b: &[u8]| Decoder::new(b.into()).next_entry().unwrap_err().what;
        assert_eq!(err(&[0xff; 12]), "a number runs past 64 bits");
        assert_eq!(err(&[0x80, 0x02]), "unknown flags");
        // A shared prefix longer than the previous name.
        assert_eq!(
            err(&[0, b'0', 0, 0, 5]),
            "a name shares more than the name before has"
        );
        // A name length of 2^40.
        assert_eq!(
            err(&[0, b'0', 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]),
            "a name is too long"
        );
    }
}
