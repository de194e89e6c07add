//! Split volumes: one archive written as `OUT.000`, `OUT.001`, … (each at most a given size)
//! plus `OUT.sha256`, one `sha256sum` line per part, so `sha256sum -c OUT.sha256` checks a copy
//! and `cat OUT.0* > OUT` gives the archive back.
//!
//! [`PartWriter`] is a `Write` that rolls over to the next part when one is full; the parts
//! are written under temporary names and renamed at [`PartWriter::finish`], which also removes
//! the parts of an earlier, bigger set under the same name, so a reader never mixes two sets.
//! [`PartSet::find`] finds a set from `OUT`, `OUT.000` or `OUT.sha256`, and its
//! [`PartReader`] reads the parts in order as one stream, checking each part's sum as it ends.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use hoist_format::{Digest, Sha256};

/// Digits of a part number: `OUT.000`, as split(1)'s `-d -a 3`; more when the set has over a
/// thousand parts.
const MIN_DIGITS: usize = 3;

/// The suffix of the sums file (`OUT.sha256`).
pub const SUMS_SUFFIX: &str = "sha256";

/// Smallest part: one tar block. Smaller parts only make more files.
pub const MIN_PART_SIZE: u64 = 512;

/// Most parts in a set: 100,000 parts of 4 GiB are 400 TiB, far past any archive, and the
/// sums file of that many stays a few MiB to read.
pub const MAX_PARTS: usize = 100_000;

/// Longest line of a sums file: a sha256 in hex, two separators and a file name (255 bytes
/// on every Linux file system).
const MAX_SUMS_LINE: usize = 64 + 2 + 255;

/// Errors of split sets, each naming the part or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PartError {
    /// A part the set needs is not there.
    #[error("part {} is missing", .part.display())]
    Missing {
        /// The part's path.
        part: PathBuf,
    },
    /// A part whose bytes are not those its sums file lists.
    #[error("{}: sha256 mismatch (expected {}, found {})", .part.display(), .expected.hex(), .found.hex())]
    Mismatch {
        /// The part's path.
        part: PathBuf,
        /// The sum in the sums file.
        expected: Digest,
        /// The sum of the part's bytes.
        found: Digest,
    },
    /// An I/O error on a part or the sums file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A sums file that is not one `<sha256 hex>  <part name>` line per part of the set.
    #[error("{}: {reason}", .path.display())]
    BadSums {
        /// The sums file.
        path: PathBuf,
        /// What is wrong, with the line number.
        reason: String,
    },
    /// A part size below [`MIN_PART_SIZE`].
    #[error("parts must be at least {MIN_PART_SIZE} bytes, not {size}")]
    TooSmall {
        /// The size asked for.
        size: u64,
    },
    /// A set that would have more parts than [`MAX_PARTS`].
    #[error("{}: more than {MAX_PARTS} parts; choose a bigger part size", .out.display())]
    TooManyParts {
        /// The set's base path.
        out: PathBuf,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> PartError + '_ {
    move |source| PartError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `BASE.NNN`: the path of part `index` of the set `base` with `digits` digits.
fn part_path(base: &Path, index: usize, digits: usize) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(format!(".{index:0digits$}"));
    PathBuf::from(s)
}

/// `BASE.sha256`.
pub fn sums_path(base: &Path) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(".");
    s.push(SUMS_SUFFIX);
    PathBuf::from(s)
}

/// Digits needed for the part numbers of a set of `count` parts.
fn digits_for(count: usize) -> usize {
    count.saturating_sub(1).to_string().len().max(MIN_DIGITS)
}

/// The part number of a file name `<base name>.<digits>` (at least [`MIN_DIGITS`] digits),
/// and how many digits it has.
fn part_number(name: &str, base_name: &str) -> Option<(usize, usize)> {
    let digits = name.strip_prefix(base_name)?.strip_prefix('.')?;
    if digits.len() < MIN_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, digits.len()))
}

/// The directory (empty for the current one, so paths keep the user's spelling) and the
/// file name of a set's base path.
fn split_base(base: &Path) -> (PathBuf, String) {
    let dir = base.parent().unwrap_or(Path::new("")).to_path_buf();
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    (dir, name)
}

/// One part written by [`PartWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenPart {
    /// Its final path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The sha256 of its bytes.
    pub digest: Digest,
}

/// The part being written.
struct Current {
    file: File,
    tmp: PathBuf,
    hasher: Sha256,
    size: u64,
}

/// A `Write` that splits what it is given into parts of at most `part_size` bytes: `OUT.000`,
/// `OUT.001`, … written under temporary names next to `OUT` until [`PartWriter::finish`]
/// renames them and writes `OUT.sha256`. Dropped unfinished, it removes its temporary files.
///
/// Each `write` goes straight to the part's file: wrap it in a `BufWriter` when the caller
/// writes small pieces.
pub struct PartWriter {
    base: PathBuf,
    part_size: u64,
    current: Option<Current>,
    /// Finished parts: temporary path, size, sum.
    done: Vec<(PathBuf, u64, Digest)>,
    finished: bool,
}

impl fmt::Debug for PartWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartWriter")
            .field("base", &self.base)
            .field("part_size", &self.part_size)
            .field("parts", &self.done.len())
            .finish()
    }
}

impl PartWriter {
    /// A writer of the set `base` (`OUT`) in parts of `part_size` bytes (at least
    /// [`MIN_PART_SIZE`]). Nothing is created before the first byte.
    pub fn new(base: &Path, part_size: u64) -> Result<PartWriter, PartError> {
        if part_size < MIN_PART_SIZE {
            return Err(PartError::TooSmall { size: part_size });
        }
        Ok(PartWriter {
            base: base.to_path_buf(),
            part_size,
            current: None,
            done: Vec::new(),
            finished: false,
        })
    }

    fn tmp_path(&self, index: usize) -> PathBuf {
        let (dir, name) = split_base(&self.base);
        dir.join(format!(".{name}.{index}.hoist-tmp-{}", std::process::id()))
    }

    /// Closes the current part, if any.
    fn close_current(&mut self) -> io::Result<()> {
        if let Some(c) = self.current.take() {
            let Current {
                mut file,
                tmp,
                hasher,
                size,
            } = c;
            file.flush()?;
            self.done.push((tmp, size, hasher.finish()));
        }
        Ok(())
    }

    /// The current part, opening the next one when there is none.
    fn current(&mut self) -> io::Result<&mut Current> {
        if self.current.is_none() {
            let index = self.done.len();
            if index >= MAX_PARTS {
                return Err(io::Error::other(
                    PartError::TooManyParts {
                        out: self.base.clone(),
                    }
                    .to_string(),
                ));
            }
            let tmp = self.tmp_path(index);
            let file = File::create(&tmp).map_err(|e| {
                io::Error::new(e.kind(), format!("creating {}: {e}", tmp.display()))
            })?;
            self.current = Some(Current {
                file,
                tmp,
                hasher: Sha256::new(),
                size: 0,
            });
        }
        Ok(self.current.as_mut().expect("just set"))
    }

    /// Renames the parts into place (`OUT.000`, … with more digits past a thousand parts),
    /// writes `OUT.sha256`, and removes the parts of an earlier set beyond the new count.
    /// Returns the parts, in order.
    pub fn finish(mut self) -> Result<Vec<WrittenPart>, PartError> {
        self.close_current().map_err(io_at(&self.base))?;
        if self.done.is_empty() {
            // An empty archive is still a set of one (empty) part.
            let base = self.base.clone();
            self.current().map(|_| ()).map_err(io_at(&base))?;
            self.close_current().map_err(io_at(&base))?;
        }
        let digits = digits_for(self.done.len());
        let (dir, base_name) = split_base(&self.base);
        // The sums of the set this one replaces name parts that may be stale (unreadable or
        // too big to be a sums file: only the listing below finds them).
        let old_sums = read_sums(&sums_path(&self.base)).ok();

        let mut parts = Vec::with_capacity(self.done.len());
        let mut sums = String::new();
        for (i, (tmp, size, digest)) in self.done.iter().enumerate() {
            let path = part_path(&self.base, i, digits);
            std::fs::rename(tmp, &path).map_err(io_at(&path))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            sums.push_str(&format!("{}  {name}\n", digest.hex()));
            parts.push(WrittenPart {
                path,
                size: *size,
                digest: digest.clone(),
            });
        }
        self.finished = true;
        let sums_file = sums_path(&self.base);
        let tmp = self.tmp_path(usize::MAX);
        std::fs::write(&tmp, sums.as_bytes()).map_err(io_at(&tmp))?;
        std::fs::rename(&tmp, &sums_file).map_err(io_at(&sums_file))?;

        // Stale parts: those the old sums file listed, and any `OUT.NNN` of three digits or of
        // this set's width numbered past the new count (a set written without sums file).
        let keep: std::collections::HashSet<&Path> =
            parts.iter().map(|p| p.path.as_path()).collect();
        let mut stale: Vec<PathBuf> = Vec::new();
        if let Some(old) = old_sums {
            for line in old.lines() {
                if let Some((_, name)) = parse_sums_line(line)
                    && part_number(name, &base_name).is_some()
                {
                    stale.push(dir.join(name));
                }
            }
        }
        let entries = std::fs::read_dir(listable(&dir)).map_err(io_at(&dir))?;
        for e in entries {
            let e = e.map_err(io_at(&dir))?;
            let name = e.file_name().to_string_lossy().to_string();
            if let Some((n, width)) = part_number(&name, &base_name)
                && n >= parts.len()
                && (width == MIN_DIGITS || width == digits)
            {
                stale.push(dir.join(&name));
            }
        }
        for p in stale {
            if keep.contains(p.as_path()) {
                continue;
            }
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(PartError::Io { path: p, source: e }),
            }
        }
        Ok(parts)
    }
}

/// A directory to list: the current one for an empty path.
fn listable(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.size >= self.part_size)
        {
            self.close_current()?;
        }
        let part_size = self.part_size;
        let c = self.current()?;
        let room = (part_size - c.size).min(buf.len() as u64) as usize;
        let n = c.file.write(&buf[..room])?;
        c.hasher.update(&buf[..n]);
        c.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some(c) => c.file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let current = self.current.take().map(|c| c.tmp);
        for tmp in self.done.iter().map(|(t, _, _)| t.clone()).chain(current) {
            // Our own temporary files, useless now; failing to remove one changes nothing.
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// `<hex>  <name>` (or `<hex> *<name>`, sha256sum's binary mode): the sum and the name.
fn parse_sums_line(line: &str) -> Option<(&str, &str)> {
    let (hex, rest) = line.split_at_checked(64)?;
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))?;
    Some((hex, name))
}

/// The text of a sums file, refused past the size of the sums of [`MAX_PARTS`] parts.
fn read_sums(path: &Path) -> Result<String, PartError> {
    let limit = (MAX_PARTS * (MAX_SUMS_LINE + 1)) as u64;
    let mut text = String::new();
    File::open(path)
        .map_err(io_at(path))?
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(io_at(path))?;
    if text.len() as u64 > limit {
        return Err(PartError::BadSums {
            path: path.to_path_buf(),
            reason: format!("larger than the sums of {MAX_PARTS} parts"),
        });
    }
    Ok(text)
}

/// One part of a set found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its path.
    pub path: PathBuf,
    /// Its sum from the sums file, when there is one.
    pub expected: Option<Digest>,
}

/// A split set found on disk: its parts in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSet {
    /// The set's base path (`OUT`).
    pub base: PathBuf,
    /// The parts, `OUT.000` first.
    pub parts: Vec<Part>,
    /// The sums file the parts were listed in, if any.
    pub sums: Option<PathBuf>,
}

impl PartSet {
    /// The set that `path` names: `OUT.000` (or `OUT.0000`, …: part 0), `OUT.sha256`, or `OUT`
    /// when no file `OUT` exists but `OUT.000` or `OUT.sha256` does. `None` when `path` names
    /// no set (an ordinary file, or nothing).
    ///
    /// The parts are those `OUT.sha256` lists when it exists, else `OUT.000`, `OUT.001`, …
    /// found in the directory; a gap before the last one is a missing part.
    pub fn find(path: &Path) -> Result<Option<PartSet>, PartError> {
        let (dir, name) = split_base(path);
        let base = if let Some((stem, digits)) = name.rsplit_once('.')
            && digits.len() >= MIN_DIGITS
            && digits.bytes().all(|b| b == b'0')
            && path.is_file()
        {
            dir.join(stem)
        } else if let Some(stem) = name.strip_suffix(&format!(".{SUMS_SUFFIX}"))
            && path.is_file()
        {
            dir.join(stem)
        } else if !path.exists()
            && (sums_path(path).is_file()
                || (MIN_DIGITS..=digits_for(MAX_PARTS)).any(|w| part_path(path, 0, w).is_file()))
        {
            path.to_path_buf()
        } else {
            return Ok(None);
        };
        let sums = sums_path(&base);
        if sums.is_file() {
            return Self::from_sums(&base, &sums).map(Some);
        }
        Self::from_listing(&base).map(Some)
    }

    /// The parts listed in the sums file: every line a part `<base name>.NNN`, numbered from 0
    /// without a gap.
    fn from_sums(base: &Path, sums: &Path) -> Result<PartSet, PartError> {
        let (dir, base_name) = split_base(base);
        let text = read_sums(sums)?;
        let bad = |reason: String| PartError::BadSums {
            path: sums.to_path_buf(),
            reason,
        };
        let mut listed: Vec<(usize, String, Digest)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let Some((hex, name)) = parse_sums_line(line) else {
                return Err(bad(format!(
                    "line {}: not a sha256sum line (\"<sha256>  <file>\")",
                    i + 1
                )));
            };
            let digest = Digest::from_hex(&hex.to_ascii_lowercase())
                .map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
            let Some((n, _)) = part_number(name, &base_name) else {
                return Err(bad(format!(
                    "line {}: {name:?} is not a part of {base_name} ({base_name}.000, …)",
                    i + 1
                )));
            };
            listed.push((n, name.to_string(), digest));
        }
        if listed.is_empty() {
            return Err(bad("lists no part".into()));
        }
        listed.sort_by_key(|(n, _, _)| *n);
        let mut parts = Vec::with_capacity(listed.len());
        for (want, (n, name, digest)) in listed.into_iter().enumerate() {
            if n != want {
                let what = if n < want { "twice" } else { "not at all" };
                return Err(bad(format!(
                    "part {} is listed {what}",
                    part_path(base, want, name.len() - base_name.len() - 1).display()
                )));
            }
            parts.push(Part {
                path: dir.join(&name),
                expected: Some(digest),
            });
        }
        Ok(PartSet {
            base: base.to_path_buf(),
            parts,
            sums: Some(sums.to_path_buf()),
        })
    }

    /// The parts found in the directory: `<base>.NNN` numbered from 0; a gap before the
    /// highest number is a missing part.
    fn from_listing(base: &Path) -> Result<PartSet, PartError> {
        let (dir, base_name) = split_base(base);
        let mut found: Vec<(usize, usize)> = Vec::new();
        for e in std::fs::read_dir(listable(&dir)).map_err(io_at(&dir))? {
            let e = e.map_err(io_at(&dir))?;
            if let Some(nw) = part_number(&e.file_name().to_string_lossy(), &base_name) {
                found.push(nw);
            }
        }
        // The width of part 0 is the set's.
        let Some(&(_, digits)) = found
            .iter()
            .filter(|(n, _)| *n == 0)
            .min_by_key(|(_, w)| *w)
        else {
            return Err(PartError::Missing {
                part: part_path(base, 0, MIN_DIGITS),
            });
        };
        let mut numbers: Vec<usize> = found
            .iter()
            .filter(|(_, w)| *w == digits)
            .map(|(n, _)| *n)
            .collect();
        numbers.sort_unstable();
        if numbers.len() > MAX_PARTS {
            return Err(PartError::TooManyParts {
                out: base.to_path_buf(),
            });
        }
        let last = numbers.last().copied().unwrap_or(0);
        let parts = (0..=last)
            .map(|i| Part {
                path: part_path(base, i, digits),
                expected: None,
            })
            .collect();
        Ok(PartSet {
            base: base.to_path_buf(),
            parts,
            sums: None,
        })
    }

    /// The first part that does not exist, as an error.
    pub fn check_present(&self) -> Result<(), PartError> {
        for p in &self.parts {
            if !p.path.is_file() {
                return Err(PartError::Missing {
                    part: p.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// The total size of the parts present.
    pub fn total_size(&self) -> u64 {
        self.parts
            .iter()
            .filter_map(|p| std::fs::metadata(&p.path).ok())
            .map(|m| m.len())
            .sum()
    }

    /// A reader of the parts in order, as one stream, that fails at the end of a part whose sum
    /// is not the listed one (and at a missing part).
    pub fn reader(&self) -> PartReader {
        PartReader::new(self.parts.clone(), true)
    }

    /// A reader that records every part's sum and goes on past a mismatch (verify reports
    /// every problem); it still stops at a missing part.
    pub fn lenient_reader(&self) -> PartReader {
        PartReader::new(self.parts.clone(), false)
    }
}

/// What [`PartReader`] found for one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSum {
    /// The part.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// The sum of its bytes.
    pub found: Digest,
    /// The listed sum, if any.
    pub expected: Option<Digest>,
}

impl PartSum {
    /// Whether the part is as listed (or nothing is listed).
    pub fn matches(&self) -> bool {
        self.expected.as_ref().is_none_or(|e| e == &self.found)
    }
}

/// Reads the parts of a set in order as one stream, hashing each: see [`PartSet::reader`].
pub struct PartReader {
    parts: Vec<Part>,
    next: usize,
    current: Option<(File, Sha256, u64)>,
    strict: bool,
    sums: Vec<PartSum>,
    failure: Option<PartError>,
}

impl fmt::Debug for PartReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartReader")
            .field("parts", &self.parts.len())
            .field("next", &self.next)
            .finish()
    }
}

impl PartReader {
    fn new(parts: Vec<Part>, strict: bool) -> PartReader {
        PartReader {
            parts,
            next: 0,
            current: None,
            strict,
            sums: Vec::new(),
            failure: None,
        }
    }

    /// The first failure (a missing part, a mismatch in strict mode, an I/O error), which
    /// explains any error of a reader reading through this one.
    pub fn failure(&self) -> Option<&PartError> {
        self.failure.as_ref()
    }

    /// The sums of the parts read to their end so far.
    pub fn sums(&self) -> &[PartSum] {
        &self.sums
    }

    /// Takes the first failure out (the reader then fails no more: call it once the stream
    /// is given up).
    pub fn take_failure(&mut self) -> Option<PartError> {
        self.failure.take()
    }

    /// Reads what is left (the stream's reader may stop before the end: a tar ends at its
    /// zero blocks) so that every part's sum is checked; returns every part's sum, or the
    /// first failure.
    pub fn finish(&mut self) -> Result<Vec<PartSum>, PartError> {
        if self.failure.is_none() {
            // A failure is recorded in `self.failure` before the error is returned.
            let _ = crate::compress::drain(self);
        }
        match self.failure.take() {
            Some(e) => Err(e),
            None => Ok(std::mem::take(&mut self.sums)),
        }
    }

    fn fail(&mut self, e: PartError) -> io::Error {
        let err = io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        self.failure.get_or_insert(e);
        err
    }

    /// Closes the current part: its sum is recorded and, in strict mode, checked.
    fn end_part(&mut self) -> io::Result<()> {
        let Some((_, hasher, size)) = self.current.take() else {
            return Ok(());
        };
        let part = &self.parts[self.next];
        let sum = PartSum {
            path: part.path.clone(),
            size,
            found: hasher.finish(),
            expected: part.expected.clone(),
        };
        self.next += 1;
        let bad = !sum.matches();
        self.sums.push(sum.clone());
        if bad && self.strict {
            return Err(self.fail(PartError::Mismatch {
                part: sum.path,
                expected: sum.expected.expect("a mismatch has an expected sum"),
                found: sum.found,
            }));
        }
        Ok(())
    }
}

impl Read for PartReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failure {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.current.is_none() {
                let Some(part) = self.parts.get(self.next) else {
                    return Ok(0);
                };
                let path = part.path.clone();
                match File::open(&path) {
                    Ok(f) => self.current = Some((f, Sha256::new(), 0)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(self.fail(PartError::Missing { part: path }));
                    }
                    Err(source) => return Err(self.fail(PartError::Io { path, source })),
                }
            }
            let (file, hasher, size) = self.current.as_mut().expect("just opened");
            let n = match file.read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let path = self.parts[self.next].path.clone();
                    return Err(self.fail(PartError::Io { path, source }));
                }
            };
            if n == 0 {
                self.end_part()?;
                continue;
            }
            hasher.update(&buf[..n]);
            *size += n as u64;
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_set(base: &Path, data: &[u8], part: u64) -> Vec<WrittenPart> {
        let mut w = PartWriter::new(base, part).unwrap();
        // Uneven pieces, so part boundaries fall inside writes.
        for chunk in data.chunks(700) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn parts_round_trip_with_sums() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("out.tar");
        let bytes = data(5000);
        let parts = write_set(&base, &bytes, 2048);
        let sizes: Vec<u64> = parts.iter().map(|p| p.size).collect();
        assert_eq!(sizes, [2048, 2048, 904]);
        assert_eq!(parts[2].path, dir.path().join("out.tar.002"));
        let sums = std::fs::read_to_string(dir.path().join("out.tar.sha256")).unwrap();
        let want: String = parts
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}  out.tar.{i:03}\n", p.digest.hex()))
            .collect();
        assert_eq!(sums, want);
        // No temporary file is left.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "out.tar.000",
                "out.tar.001",
                "out.tar.002",
                "out.tar.sha256"
            ]
        );

        for start in ["out.tar", "out.tar.000", "out.tar.sha256"] {
            let set = PartSet::find(&dir.path().join(start)).unwrap().unwrap();
            assert_eq!(set.base, base);
            assert_eq!(set.parts.len(), 3);
            let mut r = set.reader();
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, bytes);
            let sums = r.finish().unwrap();
            assert!(sums.iter().all(PartSum::matches));
        }
        // An ordinary file is no set.
        std::fs::write(dir.path().join("plain"), b"x").unwrap();
        assert_eq!(PartSet::find(&dir.path().join("plain")).unwrap(), None);
        assert_eq!(PartSet::find(&dir.path().join("nothing")).unwrap(), None);
    }

    #[test]
    fn exact_multiple_makes_no_empty_part_and_stale_parts_go() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("img");
        assert_eq!(write_set(&base, &data(6000), 1000).len(), 6);
        let parts = write_set(&base, &data(4000), 1000);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.size == 1000));
        assert!(!dir.path().join("img.004").exists());
        assert!(!dir.path().join("img.005").exists());
        // Without the sums file, the listing finds the same parts.
        std::fs::remove_file(dir.path().join("img.sha256")).unwrap();
        let set = PartSet::find(&base).unwrap().unwrap();
        assert_eq!(set.parts.len(), 4);
        assert_eq!(set.parts[0].expected, None);
    }

    #[test]
    fn a_thousand_and_one_parts_have_four_digits() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("big");
        let parts = write_set(&base, &data(512 * 1001), 512);
        assert_eq!(parts.len(), 1001);
        assert_eq!(parts[0].path, dir.path().join("big.0000"));
        assert_eq!(parts[1000].path, dir.path().join("big.1000"));
        let set = PartSet::find(&dir.path().join("big.0000"))
            .unwrap()
            .unwrap();
        assert_eq!(set.parts.len(), 1001);
        // A set of a thousand still has three digits.
        let parts = write_set(&base, &data(512 * 1000), 512);
        assert_eq!(parts[999].path, dir.path().join("big.999"));
        assert!(!dir.path().join("big.0000").exists());
        assert!(!dir.path().join("big.1000").exists());
    }

    #[test]
    fn missing_and_corrupt_parts_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("s");
        let bytes = data(3000);
        write_set(&base, &bytes, 1000);
        let p1 = dir.path().join("s.001");
        let mut b = std::fs::read(&p1).unwrap();
        b[10] ^= 1;
        std::fs::write(&p1, &b).unwrap();
        let set = PartSet::find(&base).unwrap().unwrap();
        let mut r = set.reader();
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: sha256 mismatch (expected ", p1.display()))
        );
        assert!(matches!(r.failure(), Some(PartError::Mismatch { .. })));
        // The lenient reader goes on and records every sum.
        let mut r = set.lenient_reader();
        r.read_to_end(&mut Vec::new()).unwrap();
        let bad: Vec<bool> = r.sums().iter().map(PartSum::matches).collect();
        assert_eq!(bad, [true, false, true]);

        std::fs::remove_file(dir.path().join("s.002")).unwrap();
        let err = set.check_present().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("part {} is missing", dir.path().join("s.002").display())
        );
        // Without sums, a gap before the last part is a missing part too.
        std::fs::remove_file(dir.path().join("s.sha256")).unwrap();
        std::fs::copy(dir.path().join("s.000"), dir.path().join("s.003")).unwrap();
        let set = PartSet::find(&base).unwrap().unwrap();
        assert_eq!(set.parts.len(), 4);
        assert!(
            matches!(set.check_present(), Err(PartError::Missing { part }) if part.ends_with("s.002"))
        );
    }

    #[test]
    fn bad_sums_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b");
        write_set(&base, &data(100), 512);
        let sums = dir.path().join("b.sha256");
        let line = std::fs::read_to_string(&sums).unwrap();
        for (text, want) in [
            ("garbage\n".to_string(), "line 1: not a sha256sum line"),
            (line.replace("b.000", "other.000"), "is not a part of b"),
            (line.replace("b.000", "b.001"), "part"),
            (String::new(), "lists no part"),
        ] {
            std::fs::write(&sums, &text).unwrap();
            let err = PartSet::find(&base).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn tiny_parts_are_refused() {
        assert!(PartWriter::new(Path::new("x"), 100).is_err());
    }
}
