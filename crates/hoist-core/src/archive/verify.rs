//! `verify`: check an image archive, an OCI layout directory or a split set without a store
//! and without loading anything.
//!
//! One streaming pass reads the archive (any format `load` reads, compressed as a whole or
//! not): every regular file is hashed as it passes — its sha256 and, when its first bytes say
//! it is compressed (gzip, zstd, xz, bzip2), the sha256 of its decompressed stream — small JSON
//! documents are kept in memory (bounded as `load` bounds them) and links are recorded. After
//! the pass every reference is checked:
//!
//! - every `blobs/sha256/<hex>` file has that digest;
//! - what `index.json` names (indexes, manifests, configs, layers) is in the archive with the
//!   size its descriptor says, and every image layer decompresses to its config's diff_id;
//! - what `manifest.json` names (configs, layers) is there, layers against the config's diff_ids;
//! - legacy `repositories` chains (`<id>/json`, `<id>/layer.tar`) are complete and every layer
//!   decompresses; with `manifest.json`, what `repositories` names is in the archive;
//! - a split set's parts have the sums `OUT.sha256` lists;
//! - in a delta archive (`hoist-delta.json`), the layers it leaves out are reported as not
//!   checked, and its patches are checked against their `patchDigest` and `patchSize`.
//!
//! Every problem found is reported (the pass goes on after a bad blob or part), each naming
//! the file, part or blob and what is wrong. Memory holds the JSON documents (at most
//! 64 MiB, as `load` keeps) and a few facts per file of the archive (at most [`MAX_ENTRIES`] files):
//! it does not grow with the size of the layers.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use hoist_format::Digest;
use hoist_format::config::ImageConfig;
use hoist_format::delta::{DELTA_FILE, DeltaManifest, MAX_DOCUMENT_SIZE, OmittedBlob, PatchedBlob};
use hoist_format::docker;
use hoist_format::legacy;
use hoist_format::media_type::{self, Compression};
use hoist_format::oci::{Descriptor, Index, Manifest, OciLayout, Sniff};

use super::collect::{
    Link, MEMORY_BUDGET, Node, READ_BUF, SMALL_FILE_MAX, bad_tar, link_node, normalize,
    resolve_links,
};
use super::parts::PartSet;
use crate::compress::{Peeked, decoder, drain};
use crate::error::{IoContext, Result};
use crate::hashio::{HashingReader, ProgressReader};
use crate::tar::{EntryKind, Reader};

/// Most files an archive may have: an image archive has one per blob (three per layer in the
/// docker 1.10–24 shape), so a hundred thousand is far beyond any real one and keeps the facts
/// kept per file to a few tens of MiB.
pub const MAX_ENTRIES: usize = 100_000;

/// Deepest nesting of indexes followed from `index.json` (as `load` follows them).
const MAX_INDEX_DEPTH: usize = 8;

/// Bytes looked at to tell a text (JSON) file from a binary one: one tar block.
const JSON_SNIFF_LEN: usize = 512;

/// Options of [`verify_path`] and [`verify_stream`].
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// Called with the number of input bytes read so far.
    pub progress: Option<&'a dyn Fn(u64)>,
}

impl std::fmt::Debug for VerifyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions").finish_non_exhaustive()
    }
}

/// What [`verify_path`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Images checked (distinct configs).
    pub images: usize,
    /// Files checked against a digest (blobs, configs, layers).
    pub blobs: usize,
    /// Layers checked against their diff_id.
    pub layers: usize,
    /// Parts of a split set (0 for one file).
    pub parts: usize,
    /// How the whole archive was compressed (`None` for a directory).
    pub compression: Option<Compression>,
    /// Every problem, each naming the file, part or blob and what is wrong.
    pub problems: Vec<String>,
    /// What was not checked and why (a delta's left-out layers, absent platforms).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies `path`: an archive file, a split set (`OUT`, `OUT.000` or `OUT.sha256`; see
/// [`PartSet::find`]) or an OCI layout directory. An error is returned only when `path` cannot
/// be read at all; everything wrong inside is in the report.
pub fn verify_path(path: &Path, opts: &VerifyOptions<'_>) -> Result<VerifyReport> {
    if path.is_dir() {
        return verify_dir(path);
    }
    if let Some(set) = PartSet::find(path)? {
        return Ok(verify_parts(&set, opts));
    }
    let file = File::open(path).at(path)?;
    Ok(verify_stream(file, opts))
}

/// Verifies an archive read from a stream (plain or compressed).
pub fn verify_stream(input: impl Read, opts: &VerifyOptions<'_>) -> VerifyReport {
    let mut pass = Pass::default();
    let compression = pass.read_archive(input, opts);
    let mut report = Checker::new(pass).check();
    report.compression = compression;
    report
}

/// Verifies a split set: the parts are read in order as one archive, each part's sum checked
/// against the sums file, and every part read to its end. A missing part is reported and the
/// archive itself is then not read (what follows the gap is not an archive), but the sums of
/// the parts present still are.
pub fn verify_parts(set: &PartSet, opts: &VerifyOptions<'_>) -> VerifyReport {
    let missing: Vec<String> = set
        .parts
        .iter()
        .filter(|p| !p.path.is_file())
        .map(|p| format!("part {} is missing", p.path.display()))
        .collect();
    let mut reader = set.lenient_reader();
    let mut report = if missing.is_empty() {
        let mut pass = Pass::default();
        let compression = pass.read_archive(&mut reader, opts);
        let mut report = Checker::new(pass).check();
        report.compression = compression;
        report
    } else {
        let mut report = VerifyReport {
            problems: missing,
            ..VerifyReport::default()
        };
        report
            .notes
            .push("the archive was not read: parts are missing".into());
        for p in set.parts.iter().filter(|p| p.path.is_file()) {
            let single = PartSet {
                base: set.base.clone(),
                parts: vec![p.clone()],
                sums: set.sums.clone(),
            };
            let mut r = single.lenient_reader();
            if let Ok(sums) = r.finish() {
                report.problems.extend(
                    sums.iter()
                        .filter(|s| !s.matches())
                        .map(|s| mismatch(&s.path, s.expected.as_ref(), &s.found)),
                );
            }
        }
        return with_parts(report, set);
    };
    // Read what the archive did not (the tar ends before the last part does).
    match reader.finish() {
        Ok(sums) => {
            let bad: Vec<String> = sums
                .iter()
                .filter(|s| !s.matches())
                .map(|s| mismatch(&s.path, s.expected.as_ref(), &s.found))
                .collect();
            // The parts come first: a bad part explains the bad blobs read through it.
            report.problems.splice(0..0, bad);
        }
        Err(e) => report.problems.insert(0, e.to_string()),
    }
    with_parts(report, set)
}

fn with_parts(mut report: VerifyReport, set: &PartSet) -> VerifyReport {
    report.parts = set.parts.len();
    if set.sums.is_none() {
        report.notes.push(format!(
            "{}: no sums file; the parts' sums were not checked",
            super::parts::sums_path(&set.base).display()
        ));
    }
    report
}

fn mismatch(part: &Path, expected: Option<&Digest>, found: &Digest) -> String {
    super::parts::PartError::Mismatch {
        part: part.to_path_buf(),
        expected: expected.cloned().unwrap_or_else(Digest::empty),
        found: found.clone(),
    }
    .to_string()
}

/// Verifies an OCI layout directory (or an extracted docker archive).
fn verify_dir(dir: &Path) -> Result<VerifyReport> {
    let mut pass = Pass::default();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .at(&d)?
            .collect::<io::Result<_>>()
            .at(&d)?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().to_string();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let ft = e.file_type().at(e.path())?;
            if pass.items.len() >= MAX_ENTRIES {
                pass.too_many();
                break;
            }
            if ft.is_dir() {
                stack.push((e.path(), rel));
            } else if ft.is_symlink() {
                let t = std::fs::read_link(e.path()).at(e.path())?;
                pass.items.insert(
                    rel,
                    Item::Link(Node::Symlink(t.to_string_lossy().to_string())),
                );
            } else if ft.is_file() {
                let len = e.metadata().at(e.path())?.len();
                let f = File::open(e.path()).at(e.path())?;
                match pass.hash(&rel, f, len) {
                    Ok(facts) => {
                        pass.items.insert(rel, Item::File(facts));
                    }
                    Err(err) => pass.problems.push(format!("{}: {err}", e.path().display())),
                }
            }
        }
    }
    Ok(Checker::new(pass).check())
}

/// What the pass learned of one regular file.
#[derive(Debug)]
struct Facts {
    size: u64,
    digest: Digest,
    compression: Compression,
    /// sha256 of the decompressed stream (= `digest` when not compressed); `None` when it
    /// looked compressed but did not decode (`decode_error` says why).
    diff_id: Option<Digest>,
    decode_error: Option<String>,
    /// The bytes of a small document that may be JSON.
    json: Option<Vec<u8>>,
    /// A small text file not kept: past the memory budget.
    over_budget: bool,
}

/// A path of the archive.
#[derive(Debug)]
enum Item {
    File(Facts),
    /// A symbolic or hard link ([`Node::Symlink`], [`Node::Hardlink`]).
    Link(Node),
}

/// The single pass over the archive.
#[derive(Debug, Default)]
struct Pass {
    items: HashMap<String, Item>,
    in_memory: u64,
    problems: Vec<String>,
    /// Whether the archive was read to its end (else missing files are no news).
    incomplete: bool,
}

/// A reader that remembers whether it failed, to tell a broken input from a layer that does
/// not decompress.
struct Flagging<'a, R> {
    inner: R,
    failed: &'a Cell<bool>,
}

impl<R: Read> Read for Flagging<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed.set(true))
    }
}

impl Pass {
    fn too_many(&mut self) {
        self.problems.push(format!(
            "more than {MAX_ENTRIES} files: not an image archive; the rest was not read"
        ));
        self.incomplete = true;
    }

    /// Reads the archive stream, returning its outer compression.
    fn read_archive(&mut self, input: impl Read, opts: &VerifyOptions<'_>) -> Option<Compression> {
        let noop = |_: u64| {};
        let progress: &dyn Fn(u64) = opts.progress.unwrap_or(&noop);
        let peeked = match Peeked::new(ProgressReader::new(input, progress)) {
            Ok(p) => p,
            Err(e) => {
                self.problems.push(format!("reading the archive: {e}"));
                self.incomplete = true;
                return None;
            }
        };
        if peeked.is_empty() {
            self.problems.push("the input is empty".into());
            self.incomplete = true;
            return None;
        }
        let outer = peeked.compression();
        let tar = match decoder(outer, peeked) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(format!("reading the archive: {e}"));
                self.incomplete = true;
                return Some(outer);
            }
        };
        let mut reader = Reader::new(BufReader::with_capacity(READ_BUF, tar));
        loop {
            let entry = match reader.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => {
                    self.problems.push(bad_tar(e).to_string());
                    self.incomplete = true;
                    break;
                }
            };
            let raw_path = String::from_utf8_lossy(&entry.path).to_string();
            let path = match normalize(&raw_path) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    self.problems.push(e.to_string());
                    continue;
                }
            };
            if self.items.len() >= MAX_ENTRIES {
                self.too_many();
                break;
            }
            let item = match entry.kind {
                EntryKind::Regular => match self.hash(&path, reader.content(), entry.size) {
                    Ok(facts) => Item::File(facts),
                    Err(e) => {
                        self.problems.push(format!(
                            "archive entry {} is truncated or unreadable: {e}",
                            crate::tar::show_name(path.as_bytes())
                        ));
                        self.incomplete = true;
                        break;
                    }
                },
                EntryKind::Symlink | EntryKind::HardLink => match link_node(&entry, &path) {
                    Ok(n) => Item::Link(n),
                    Err(e) => {
                        self.problems.push(e.to_string());
                        continue;
                    }
                },
                _ => continue,
            };
            self.items.insert(path, item);
        }
        Some(outer)
    }

    /// Hashes the file `path` of `size` bytes: raw and, when compressed, decompressed. A small
    /// file that looks like JSON is kept in memory while the budget lasts; `hoist-delta.json`
    /// is kept up to its own limit.
    fn hash(&mut self, path: &str, r: impl Read, size: u64) -> io::Result<Facts> {
        let delta_file = path == DELTA_FILE;
        let keep_max = if delta_file {
            MAX_DOCUMENT_SIZE
        } else {
            SMALL_FILE_MAX
        };
        if size <= keep_max {
            let mut buf = Vec::with_capacity(size as usize);
            r.take(size).read_to_end(&mut buf)?;
            if (buf.len() as u64) < size {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            let mut facts = digests(&buf[..])?;
            // JSON is text: a NUL in the first block means a tar (or another binary).
            let text = facts.compression == Compression::None
                && !buf[..buf.len().min(JSON_SNIFF_LEN)].contains(&0);
            if text {
                if delta_file || self.in_memory + size <= MEMORY_BUDGET {
                    self.in_memory += size;
                    facts.json = Some(buf);
                } else {
                    facts.over_budget = true;
                }
            }
            return Ok(facts);
        }
        let facts = digests(r)?;
        if facts.size != size {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        Ok(facts)
    }
}

/// The sha256 of a stream and, when its first bytes say it is compressed, of its decompressed
/// stream, in one pass. An error is the input's; a stream that does not decompress is a fact.
fn digests(r: impl Read) -> io::Result<Facts> {
    let failed = Cell::new(false);
    let mut raw = HashingReader::new(Flagging {
        inner: r,
        failed: &failed,
    });
    let mut peeked = Peeked::new(&mut raw)?;
    let compression = peeked.compression();
    let mut decoded = None;
    let mut decode_error = None;
    if compression != Compression::None {
        let result = decoder(compression, &mut peeked).and_then(|d| {
            let mut h = HashingReader::new(d);
            drain(&mut h)?;
            Ok(h.finish().0)
        });
        match result {
            Ok(d) => decoded = Some(d),
            Err(e) if failed.get() => return Err(e),
            Err(e) => decode_error = Some(e.to_string()),
        }
    }
    // What the decoder did not read (data after the compressed stream) is part of the file.
    drain(&mut peeked)?;
    drop(peeked);
    let (digest, size, _) = raw.finish();
    let diff_id = match compression {
        Compression::None => Some(digest.clone()),
        _ => decoded,
    };
    Ok(Facts {
        size,
        digest,
        compression,
        diff_id,
        decode_error,
        json: None,
        over_budget: false,
    })
}

/// What a delta says of a layer that is not in the archive.
enum Absent<'a> {
    Omitted(&'a OmittedBlob),
    Patched(&'a PatchedBlob),
}

/// The checks after the pass.
struct Checker {
    pass: Pass,
    problems: Vec<String>,
    notes: Vec<String>,
    images: BTreeSet<Digest>,
    blobs: BTreeSet<String>,
    layers: BTreeSet<String>,
    /// Files already reported as corrupt: what else is wrong with them follows from it.
    bad: HashSet<String>,
    /// Manifests and indexes already checked.
    visited: HashSet<Digest>,
    /// Layers already reported as left out by the delta.
    noted: HashSet<Digest>,
    /// Layers already reported as missing (several manifests name the same).
    missing: HashSet<String>,
    /// The hex of every checked image's top diff_id (what docker 25's `repositories` names).
    tops: HashSet<String>,
    delta: Option<DeltaManifest>,
}

impl Checker {
    fn new(pass: Pass) -> Checker {
        Checker {
            pass,
            problems: Vec::new(),
            notes: Vec::new(),
            images: BTreeSet::new(),
            blobs: BTreeSet::new(),
            layers: BTreeSet::new(),
            bad: HashSet::new(),
            visited: HashSet::new(),
            noted: HashSet::new(),
            missing: HashSet::new(),
            tops: HashSet::new(),
            delta: None,
        }
    }

    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    /// The file `path` names (after links).
    fn file(&self, path: &str) -> Result<(String, &Facts)> {
        let (p, item) = resolve_links(&self.pass.items, path, |i| match i {
            Item::Link(Node::Symlink(t)) => Link::Symlink(t),
            Item::Link(Node::Hardlink(t)) => Link::Hardlink(t),
            _ => Link::File,
        })?;
        match item {
            Item::File(f) => Ok((p, f)),
            Item::Link(_) => unreachable!("resolve_links returns files only"),
        }
    }

    fn exists(&self, path: &str) -> bool {
        self.file(path).is_ok()
    }

    /// The bytes of a JSON document of the archive.
    fn json(&self, path: &str) -> std::result::Result<(String, &[u8]), String> {
        let (p, f) = self.file(path).map_err(|e| e.to_string())?;
        match &f.json {
            Some(b) => Ok((p, b)),
            None if f.over_budget => Err(format!(
                "{p}: not checked: past the {} MiB of documents verify keeps in memory",
                MEMORY_BUDGET >> 20
            )),
            None if f.size > SMALL_FILE_MAX => {
                Err(format!("{p} is too large to be a JSON document"))
            }
            None => Err(format!("{p} is not a JSON document (it is binary)")),
        }
    }

    fn check(mut self) -> VerifyReport {
        self.check_blob_names();
        self.read_delta();
        let has = |c: &Checker, p: &str| c.exists(p);
        let has_manifest = has(&self, "manifest.json");
        let has_index = has(&self, "index.json");
        let has_layout = has(&self, "oci-layout");
        let has_repositories = has(&self, "repositories");
        if has_index && has_layout {
            self.check_oci();
        }
        if has_manifest {
            self.check_docker_manifest();
            if has_repositories {
                self.check_repositories();
            }
        } else if !(has_index && has_layout) {
            if has_repositories {
                self.check_legacy();
            } else if self.pass.incomplete {
                // The pass said what went wrong.
            } else if has_index != has_layout {
                self.problem(
                    if has_index {
                        "index.json is present but the oci-layout file is missing"
                    } else {
                        "the oci-layout file is present but index.json is missing"
                    }
                    .into(),
                );
            } else {
                self.problem(
                    "no manifest.json, index.json or repositories found: not an image archive"
                        .into(),
                );
            }
        }
        let mut problems = std::mem::take(&mut self.pass.problems);
        if self.pass.incomplete {
            problems.push(
                "the archive could not be read to its end: what it names after that point was not checked"
                    .into(),
            );
        }
        problems.extend(self.problems);
        VerifyReport {
            images: self.images.len(),
            blobs: self.blobs.len(),
            layers: self.layers.len(),
            parts: 0,
            compression: None,
            problems,
            notes: self.notes,
        }
    }

    /// Every `blobs/sha256/<hex>` file has that digest.
    fn check_blob_names(&mut self) {
        let mut names: Vec<(&String, &Facts)> = self
            .pass
            .items
            .iter()
            .filter_map(|(p, i)| match i {
                Item::File(f) if p.starts_with("blobs/sha256/") => Some((p, f)),
                _ => None,
            })
            .collect();
        names.sort_by_key(|(p, _)| *p);
        let mut problems = Vec::new();
        let mut bad = Vec::new();
        let mut blobs = Vec::new();
        for (p, f) in names {
            let Ok(want) = Digest::from_hex(&p["blobs/sha256/".len()..]) else {
                continue;
            };
            blobs.push(p.clone());
            if f.digest != want {
                problems.push(format!(
                    "{p}: digest mismatch: the content's sha256 is {}",
                    f.digest
                ));
                bad.push(p.clone());
            }
        }
        self.problems.extend(problems);
        self.bad.extend(bad);
        self.blobs.extend(blobs);
    }

    fn read_delta(&mut self) {
        if !self.exists(DELTA_FILE) {
            return;
        }
        match self.json(DELTA_FILE) {
            Ok((_, b)) => match DeltaManifest::parse(b) {
                Ok(d) => self.delta = Some(d),
                Err(e) => self.problem(format!("{DELTA_FILE}: {e}")),
            },
            Err(e) => self.problem(e),
        }
        let Some(delta) = self.delta.take() else {
            return;
        };
        for p in &delta.patches {
            let what = format!("{DELTA_FILE}: patch of {}", p.digest);
            match self.file(&p.patch) {
                Err(_) => self.problem(format!("{what}: {} is not in the archive", p.patch)),
                Ok((path, f)) => {
                    let (size, digest) = (f.size, f.digest.clone());
                    self.blobs.insert(path.clone());
                    if self.bad.contains(&path) {
                        continue;
                    }
                    if digest != p.patch_digest {
                        self.problems.push(format!(
                            "{path}: digest mismatch: {what} says {}, the content's sha256 is {digest}",
                            p.patch_digest
                        ));
                        self.bad.insert(path);
                    } else if size != p.patch_size {
                        self.problems.push(format!(
                            "{path}: size mismatch: {what} says {} bytes, found {size}",
                            p.patch_size
                        ));
                    }
                }
            }
        }
        self.delta = Some(delta);
    }

    /// What the delta says of a layer that is not in the archive.
    fn absent<'d>(
        delta: Option<&'d DeltaManifest>,
        digest: Option<&Digest>,
        diff_id: Option<&Digest>,
    ) -> Option<Absent<'d>> {
        let delta = delta?;
        // By the blob's digest; by the layer's diff_id when the archive names no digest.
        let hit = |d: &Digest, id: &Digest| {
            digest == Some(d) || (digest.is_none() && diff_id == Some(id))
        };
        if let Some(o) = delta.omitted.iter().find(|o| hit(&o.digest, &o.diff_id)) {
            return Some(Absent::Omitted(o));
        }
        delta
            .patches
            .iter()
            .find(|p| hit(&p.digest, &p.diff_id))
            .map(Absent::Patched)
    }

    /// A layer the archive does not hold: left out by the delta (a note), or a problem.
    fn absent_layer(
        &mut self,
        what: &str,
        path: &str,
        digest: Option<&Digest>,
        expected_diff_id: Option<&Digest>,
        foreign: bool,
    ) {
        let base = self
            .delta
            .as_ref()
            .map(|d| d.base.join(", "))
            .unwrap_or_default();
        // What the delta says of the layer: its blob, bases, diff_id, and how it is carried.
        let described = match Self::absent(self.delta.as_ref(), digest, expected_diff_id) {
            Some(Absent::Omitted(o)) => Some((
                o.digest.clone(),
                o.from.join(", "),
                o.diff_id.clone(),
                "left out".to_string(),
                "not checked",
            )),
            Some(Absent::Patched(p)) => Some((
                p.digest.clone(),
                p.from.join(", "),
                p.diff_id.clone(),
                format!(
                    "a patch against {}",
                    p.reference.digest.as_ref().unwrap_or(&p.reference.diff_id)
                ),
                "the patch is checked, the layer is rebuilt by load",
            )),
            None => None,
        };
        match described {
            Some((d, from, id, carried, checked)) => {
                self.note_absent(
                    &d,
                    format!(
                        "{path}: {carried} (delta against {}): {checked}",
                        if from.is_empty() { base } else { from }
                    ),
                );
                self.check_delta_diff_id(what, path, Some(&id), expected_diff_id);
            }
            None if foreign => self.notes.push(format!(
                "{path}: a foreign layer ({what}), not in the archive: not checked"
            )),
            None => {
                if self.missing.insert(path.to_string()) {
                    self.problem(format!("{what}: {path} is not in the archive"));
                }
            }
        }
    }

    fn note_absent(&mut self, digest: &Digest, note: String) {
        if self.noted.insert(digest.clone()) {
            self.notes.push(note);
        }
    }

    fn check_delta_diff_id(
        &mut self,
        what: &str,
        path: &str,
        listed: Option<&Digest>,
        expected: Option<&Digest>,
    ) {
        if let (Some(l), Some(e)) = (listed, expected)
            && l != e
        {
            self.problem(format!(
                "{what}: {path}: {DELTA_FILE} gives diff_id {l}, the config {e}"
            ));
        }
    }

    /// Checks one layer file: size and digest against its descriptor (if any), diff_id
    /// against the config's.
    fn check_layer(
        &mut self,
        what: &str,
        index: usize,
        path: &str,
        desc: Option<&Descriptor>,
        expected: Option<&Digest>,
        foreign: bool,
    ) {
        let (p, size, digest, diff_id, compression, decode_error) = match self.file(path) {
            Err(_) => {
                self.absent_layer(
                    &format!("{what}: layer {index}"),
                    path,
                    desc.map(|d| &d.digest)
                        .or(digest_of_blob_path(path).as_ref()),
                    expected,
                    foreign,
                );
                return;
            }
            Ok((p, f)) => (
                p,
                f.size,
                f.digest.clone(),
                f.diff_id.clone(),
                f.compression,
                f.decode_error.clone(),
            ),
        };
        self.blobs.insert(p.clone());
        self.layers.insert(p.clone());
        if self.bad.contains(&p) {
            return;
        }
        if let Some(d) = desc {
            if digest != d.digest {
                self.problem(format!(
                    "{p}: digest mismatch: {what} says {}, the content's sha256 is {digest}",
                    d.digest
                ));
                self.bad.insert(p);
                return;
            }
            if size != d.size {
                self.problem(format!(
                    "{p}: size mismatch: {what} says {} bytes, found {size}",
                    d.size
                ));
            }
        }
        match (diff_id, expected) {
            (None, _) => self.problem(format!(
                "{what}: layer {index} ({p}) is {compression:?}-compressed but does not decompress: {}",
                decode_error.unwrap_or_default()
            )),
            (Some(found), Some(want)) if &found != want => self.problem(format!(
                "{what}: layer {index} ({p}): diff_id mismatch: the config says {want}, the layer's content is {found}"
            )),
            _ => {}
        }
    }

    /// `manifest.json`: every item's config and layers, layers against the config's diff_ids.
    fn check_docker_manifest(&mut self) {
        let items = match self.json("manifest.json") {
            Ok((_, b)) => docker::parse_manifest(b).map_err(|e| format!("manifest.json: {e}")),
            Err(e) => Err(e),
        };
        let items = match items {
            Ok(i) => i,
            Err(e) => return self.problem(e),
        };
        for (i, item) in items.iter().enumerate() {
            let what = format!("manifest.json entry {i}");
            let Some(config) = self.config(&what, &item.config, None) else {
                continue;
            };
            let want = &config.rootfs.diff_ids;
            if want.len() != item.layers.len() {
                self.problem(format!(
                    "{what}: {} layers, but its config {} lists {} diff_ids",
                    item.layers.len(),
                    item.config,
                    want.len()
                ));
            }
            for (j, l) in item.layers.iter().enumerate() {
                let expected = want.get(j);
                let foreign = expected.is_some_and(|d| {
                    item.layer_sources
                        .as_ref()
                        .is_some_and(|s| s.get(&d.to_string()).is_some_and(|s| s.urls.is_some()))
                });
                self.check_layer(&what, j, l, None, expected, foreign);
            }
        }
    }

    /// Checks and parses an image config: present, its descriptor's size and digest (if any),
    /// a valid config. Records the image.
    fn config(&mut self, what: &str, path: &str, desc: Option<&Descriptor>) -> Option<ImageConfig> {
        let (p, size, digest) = match self.file(path) {
            Ok((p, f)) => (p, f.size, f.digest.clone()),
            Err(_) => {
                self.problem(format!("{what}: config {path} is not in the archive"));
                return None;
            }
        };
        self.blobs.insert(p.clone());
        if self.bad.contains(&p) {
            return None;
        }
        if let Some(d) = desc {
            if digest != d.digest {
                self.problem(format!(
                    "{p}: digest mismatch: {what} says {}, the content's sha256 is {digest}",
                    d.digest
                ));
                self.bad.insert(p);
                return None;
            }
            if size != d.size {
                self.problem(format!(
                    "{p}: size mismatch: {what} says {} bytes, found {size}",
                    d.size
                ));
            }
        }
        let parsed = self
            .json(path)
            .and_then(|(p, b)| ImageConfig::parse(b).map_err(|e| format!("{p}: {e}")));
        match parsed {
            Ok(c) => {
                self.images.insert(digest);
                if let Some(top) = c.rootfs.diff_ids.last() {
                    self.tops.insert(top.hex().to_string());
                }
                Some(c)
            }
            Err(e) => {
                self.problem(format!("{what}: {e}"));
                None
            }
        }
    }

    /// `oci-layout` and `index.json`, and everything `index.json` names.
    fn check_oci(&mut self) {
        match self.json("oci-layout") {
            Ok((_, b)) => match OciLayout::parse(b) {
                Ok(l) if l.image_layout_version == "1.0.0" => {}
                Ok(l) => self.problem(format!(
                    "oci-layout: unsupported OCI layout version {:?}",
                    l.image_layout_version
                )),
                Err(e) => self.problem(format!("oci-layout: {e}")),
            },
            Err(e) => self.problem(e),
        }
        let index = match self.json("index.json") {
            Ok((_, b)) => Index::parse(b).map_err(|e| format!("index.json: {e}")),
            Err(e) => Err(e),
        };
        let index = match index {
            Ok(i) => i,
            Err(e) => return self.problem(e),
        };
        for (k, d) in index.manifests.iter().enumerate() {
            self.check_descriptor(d, &format!("index.json manifests[{k}]"), 0, true);
        }
    }

    /// Checks what a descriptor of an index names (recursively). `required`: absent is a
    /// problem (else a note: an index's other platforms are often left out of an archive).
    /// Returns whether it is in the archive.
    fn check_descriptor(
        &mut self,
        d: &Descriptor,
        what: &str,
        depth: usize,
        required: bool,
    ) -> bool {
        let path = format!("blobs/sha256/{}", d.digest.hex());
        let (p, size) = match self.file(&path) {
            Ok((p, f)) => (p, f.size),
            Err(_) => {
                let platform = d
                    .platform
                    .as_ref()
                    .map(|p| format!(" ({})", p.to_platform()))
                    .unwrap_or_default();
                if required {
                    self.problem(format!("{what}: {path}{platform} is not in the archive"));
                } else {
                    self.notes.push(format!(
                        "{path}{platform}, named by {what}, is not in the archive: not checked"
                    ));
                }
                return false;
            }
        };
        if !self.visited.insert(d.digest.clone()) {
            return true;
        }
        self.blobs.insert(p.clone());
        if size != d.size {
            self.problem(format!(
                "{p}: size mismatch: {what} says {} bytes, found {size}",
                d.size
            ));
        }
        if self.bad.contains(&p) {
            return true;
        }
        let bytes = match self.json(&p) {
            Ok((_, b)) => b.to_vec(),
            Err(e) => {
                self.problem(format!("{what}: {e}"));
                return true;
            }
        };
        let is_index = match Sniff::parse(&bytes) {
            Ok(s) => s.is_index(),
            Err(e) => {
                self.problem(format!("{p}: {e}"));
                return true;
            }
        };
        if is_index {
            if depth >= MAX_INDEX_DEPTH {
                self.problem(format!("{p}: indexes nested deeper than {MAX_INDEX_DEPTH}"));
                return true;
            }
            let idx = match Index::parse(&bytes) {
                Ok(i) => i,
                Err(e) => {
                    self.problem(format!("{p}: {e}"));
                    return true;
                }
            };
            let mut present = 0;
            for (k, child) in idx.manifests.iter().enumerate() {
                let w = format!("index {} manifests[{k}]", d.digest);
                if self.check_descriptor(child, &w, depth + 1, false) {
                    present += 1;
                }
            }
            if present == 0 && !idx.manifests.is_empty() {
                self.problem(format!(
                    "{p}: none of the {} manifests of index {} is in the archive",
                    idx.manifests.len(),
                    d.digest
                ));
            }
            return true;
        }
        let m = match Manifest::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                self.problem(format!("{p}: {e}"));
                return true;
            }
        };
        self.check_manifest(&m, &format!("manifest {}", d.digest), d.is_attestation());
        true
    }

    /// An image manifest's config and layers. Manifests of other things (attestations,
    /// artifacts: a config that is no image config, or layers that are no layer tars) have
    /// their blobs checked, not diff_ids.
    fn check_manifest(&mut self, m: &Manifest, what: &str, attestation: bool) {
        let is_layer = |l: &Descriptor| {
            l.media_type.is_empty() || Compression::of_layer_media_type(&l.media_type).is_some()
        };
        let image = !attestation
            && matches!(
                m.config.media_type.as_str(),
                media_type::OCI_CONFIG | media_type::DOCKER_CONFIG
            )
            && m.layers.iter().all(is_layer);
        if !image {
            let config_path = format!("blobs/sha256/{}", m.config.digest.hex());
            self.check_plain_blob(&m.config, &config_path, &format!("{what} config"));
            for (j, l) in m.layers.iter().enumerate() {
                let lp = format!("blobs/sha256/{}", l.digest.hex());
                self.check_plain_blob(l, &lp, &format!("{what} layer {j}"));
            }
            return;
        }
        let config_path = format!("blobs/sha256/{}", m.config.digest.hex());
        let config = self.config(what, &config_path, Some(&m.config));
        let want = config.as_ref().map(|c| c.rootfs.diff_ids.clone());
        if let Some(want) = &want
            && want.len() != m.layers.len()
        {
            self.problem(format!(
                "{what}: {} layers, but its config {} lists {} diff_ids",
                m.layers.len(),
                m.config.digest,
                want.len()
            ));
        }
        for (j, l) in m.layers.iter().enumerate() {
            let lp = format!("blobs/sha256/{}", l.digest.hex());
            let expected = want.as_ref().and_then(|w| w.get(j));
            self.check_layer(what, j, &lp, Some(l), expected, l.urls.is_some());
        }
    }

    /// A blob that is neither an image config nor a layer: present, digest and size.
    fn check_plain_blob(&mut self, d: &Descriptor, path: &str, what: &str) {
        let (p, size, digest) = match self.file(path) {
            Ok((p, f)) => (p, f.size, f.digest.clone()),
            Err(_) => {
                if d.urls.is_some() {
                    self.notes.push(format!(
                        "{path}: a foreign blob ({what}), not in the archive: not checked"
                    ));
                } else {
                    self.problem(format!("{what}: {path} is not in the archive"));
                }
                return;
            }
        };
        self.blobs.insert(p.clone());
        if self.bad.contains(&p) {
            return;
        }
        if digest != d.digest {
            self.problem(format!(
                "{p}: digest mismatch: {what} says {}, the content's sha256 is {digest}",
                d.digest
            ));
            self.bad.insert(p);
        } else if size != d.size {
            self.problem(format!(
                "{p}: size mismatch: {what} says {} bytes, found {size}",
                d.size
            ));
        }
    }

    /// With `manifest.json`: every id `repositories` names is a layer directory (docker
    /// 1.10–24) or an image's top diff_id (docker 25).
    fn check_repositories(&mut self) {
        let repos = match self.json("repositories") {
            Ok((_, b)) => legacy::parse_repositories(b).map_err(|e| format!("repositories: {e}")),
            Err(e) => Err(e),
        };
        let repos = match repos {
            Ok(r) => r,
            Err(e) => return self.problem(e),
        };
        for legacy::RepositoryTag { name, tag, id } in repos {
            let found = self.tops.contains(&id)
                || legacy::check_v1_id(&id).is_ok()
                    && (self.exists(&format!("{id}/json"))
                        || self.exists(&format!("{id}/layer.tar")));
            if !found {
                self.problem(format!(
                    "repositories: {name}:{tag} names {id}, which is in the archive neither as a layer directory nor as an image's top layer"
                ));
            }
        }
    }

    /// docker ≤ 1.9 archives: `repositories` and `<id>/{json,layer.tar}` chains.
    fn check_legacy(&mut self) {
        let repos = match self.json("repositories") {
            Ok((_, b)) => legacy::parse_repositories(b).map_err(|e| format!("repositories: {e}")),
            Err(e) => Err(e),
        };
        let repos = match repos {
            Ok(r) => r,
            Err(e) => return self.problem(e),
        };
        let mut tops: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in repos {
            tops.entry(r.id)
                .or_default()
                .push(format!("{}:{}", r.name, r.tag));
        }
        for (top, names) in tops {
            let what = format!("image {top} ({})", names.join(", "));
            let chain = legacy::chain_from_top(&top, |id| {
                self.json(&format!("{id}/json"))
                    .ok()
                    .map(|(_, b)| b.to_vec())
            });
            let chain = match chain {
                Ok(c) => c,
                Err(e) => {
                    self.problem(format!("{what}: {e}"));
                    continue;
                }
            };
            let mut jsons = Vec::new();
            let mut diff_ids = Vec::new();
            for (j, id) in chain.iter().enumerate() {
                jsons.push(
                    self.json(&format!("{id}/json"))
                        .map(|(_, b)| b.to_vec())
                        .unwrap_or_default(),
                );
                let lp = format!("{id}/layer.tar");
                let Ok((p, f)) = self.file(&lp) else {
                    self.problem(format!("{what}: layer {j}: {lp} is not in the archive"));
                    continue;
                };
                let (diff_id, c, err) = (f.diff_id.clone(), f.compression, f.decode_error.clone());
                self.blobs.insert(p.clone());
                self.layers.insert(p.clone());
                match diff_id {
                    Some(d) => diff_ids.push(d),
                    None => self.problem(format!(
                        "{what}: layer {j} ({p}) is {c:?}-compressed but does not decompress: {}",
                        err.unwrap_or_default()
                    )),
                }
            }
            if diff_ids.len() != chain.len() {
                continue;
            }
            let refs: Vec<&[u8]> = jsons.iter().map(Vec::as_slice).collect();
            match legacy::config_from_v1_chain(&refs, &diff_ids) {
                Ok(config) => {
                    self.images.insert(Digest::of(&config));
                }
                Err(e) => self.problem(format!("{what}: {e}")),
            }
        }
    }
}

/// The digest a `blobs/sha256/<hex>` path names.
fn digest_of_blob_path(path: &str) -> Option<Digest> {
    Digest::from_hex(path.strip_prefix("blobs/sha256/")?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn digests_of_plain_compressed_and_broken_streams() {
        let plain = b"layer bytes ".repeat(1000);
        let f = digests(&plain[..]).unwrap();
        assert_eq!(f.compression, Compression::None);
        assert_eq!(f.digest, Digest::of(&plain));
        assert_eq!(f.diff_id, Some(Digest::of(&plain)));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let f = digests(&gz[..]).unwrap();
        assert_eq!(f.compression, Compression::Gzip);
        assert_eq!((f.digest, f.size), (Digest::of(&gz), gz.len() as u64));
        assert_eq!(f.diff_id, Some(Digest::of(&plain)));

        // Looks like gzip, does not decode: a fact about the file, not an error of the input.
        let broken = [&gz[..20], &[0u8; 100][..]].concat();
        let f = digests(&broken[..]).unwrap();
        assert_eq!(f.digest, Digest::of(&broken));
        assert_eq!(f.size, broken.len() as u64);
        assert_eq!(f.diff_id, None);
        assert!(f.decode_error.is_some());
    }

    #[test]
    fn an_error_of_the_input_is_an_error() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let gz_head = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        let err = digests(io::Read::chain(&gz_head[..], Failing))
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "disk on fire");
    }
}
