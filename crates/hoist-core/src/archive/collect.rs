//! The single pass over an archive: every file is either kept in memory (small JSON documents)
//! or streamed into the store's staging area with its digests computed on the way; symlinks
//! and hardlinks are recorded. Nothing is extracted to be read back.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hoist_format::Digest;

use crate::compress::Compression;
use crate::error::{Error, IoContext, Result};
use crate::store::{Staged, Staging};
use crate::tar::{Entry, EntryKind, Reader, TarError};

/// Buffer around the archive stream: headers are read 512 bytes at a time.
pub(crate) const READ_BUF: usize = 128 << 10;

/// Files up to this size are kept in memory: every config, manifest, index, `repositories`,
/// `VERSION` and v1 `json` is far smaller, and keeping them avoids a round trip through disk.
pub(crate) const SMALL_FILE_MAX: u64 = 1024 * 1024;

/// At most this much is kept in memory in all, so an archive of many small files cannot grow
/// memory without bound; past it, small files are staged like big ones.
pub(crate) const MEMORY_BUDGET: u64 = 64 * 1024 * 1024;

/// Symlink hops followed when resolving a path inside an archive (old docker and
/// containers/image dedupe layers with one hop; more than a few means a loop).
const MAX_LINK_HOPS: usize = 8;

/// A file of the archive.
#[derive(Debug)]
pub(crate) enum Node {
    /// Small file kept in memory.
    Mem(Vec<u8>),
    /// Big file streamed into staging.
    Staged(Staged),
    /// File in an input directory, staged only if needed.
    External(PathBuf),
    /// A byte range of the indexed archive file ([`Collected::index_tar_file`]).
    InFile {
        /// Offset of the first byte.
        pos: u64,
        /// Length.
        size: u64,
    },
    /// A symbolic link, with its target as written.
    Symlink(String),
    /// A hard link to another path of the archive.
    Hardlink(String),
}

/// Everything one pass learned about an archive.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) nodes: HashMap<String, Node>,
    /// How the whole input was compressed.
    pub(crate) outer: Option<Compression>,
    /// The archive file [`Node::InFile`] ranges are in.
    file: Option<File>,

    /// Files already turned into staged blobs, by resolved path.
    staged: std::sync::Mutex<HashMap<String, Staged>>,
}

/// Normalizes a path inside an archive: no leading `./` or `/`, no `//`, no trailing `/`;
/// `None` for the root itself; an error for `..` components.
pub(crate) fn normalize(raw: &str) -> Result<Option<String>> {
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::InvalidArchive(format!(
                    "entry {:?} escapes the archive with '..'",
                    crate::tar::show_name(raw.as_bytes())
                )));
            }
            c => parts.push(c),
        }
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    })
}

fn parent_dir(p: &str) -> &str {
    p.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn join(dir: &str, target: &str) -> String {
    if dir.is_empty() {
        target.to_string()
    } else {
        format!("{dir}/{target}")
    }
}

impl Collected {
    /// Reads a tar stream (already decompressed) in one pass.
    pub(crate) fn from_tar(input: impl Read, staging: &Staging) -> Result<Collected> {
        let mut out = Collected::default();
        let mut in_memory = 0u64;
        let mut reader = Reader::new(io::BufReader::with_capacity(READ_BUF, input));
        while let Some(entry) = reader.next_entry().map_err(bad_tar)? {
            let raw_path = String::from_utf8_lossy(&entry.path).to_string();
            let Some(path) = normalize(&raw_path)? else {
                continue;
            };
            let node = match entry.kind {
                EntryKind::Regular => {
                    let size = entry.size;
                    if size <= SMALL_FILE_MAX && in_memory + size <= MEMORY_BUDGET {
                        let mut buf = Vec::with_capacity(size as usize);
                        reader
                            .content()
                            .read_to_end(&mut buf)
                            .map_err(|e| truncated(&path, e))?;
                        in_memory += buf.len() as u64;
                        Node::Mem(buf)
                    } else {
                        let staged = staging
                            .stage(reader.content(), &format!("archive entry {path}"))
                            .map_err(|e| match e {
                                Error::Read { source, .. } => truncated(&path, source),
                                other => other,
                            })?;
                        if staged.size != size {
                            return Err(truncated(
                                &path,
                                io::Error::from(io::ErrorKind::UnexpectedEof),
                            ));
                        }
                        Node::Staged(staged)
                    }
                }
                EntryKind::Symlink | EntryKind::HardLink => link_node(&entry, &path)?,
                _ => continue,
            };
            out.nodes.insert(path, node);
        }
        Ok(out)
    }

    /// Reads an uncompressed archive file: headers are scanned by seeking, small files read,
    /// and the big files (the layers) staged by a few threads at once, each hashing while it
    /// copies, so a multi-layer archive loads at the speed of the disk, not of one sha256.
    pub(crate) fn from_tar_file(
        file: &File,
        staging: &Staging,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Collected> {
        let mut out = Collected::index_tar_file(file)?;
        let mut jobs: Vec<(String, u64, u64)> = out
            .nodes
            .iter()
            .filter_map(|(p, n)| match n {
                Node::InFile { pos, size } => Some((p.clone(), *pos, *size)),
                _ => None,
            })
            .collect();
        // Popped from the end: the last layers of the file first, as before.
        jobs.sort_by_key(|(_, pos, _)| *pos);
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        let queue = std::sync::Mutex::new(jobs);
        let done = std::sync::atomic::AtomicU64::new(0);
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, MAX_STAGING_THREADS);
        let staged: Vec<Result<(String, Staged)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let Some((path, pos, size)) =
                                queue.lock().expect("never poisoned").pop()
                            else {
                                break;
                            };
                            if pos.saturating_add(size) > file_len {
                                mine.push(Err(truncated(
                                    &path,
                                    io::Error::from(io::ErrorKind::UnexpectedEof),
                                )));
                                break;
                            }
                            let r = RangeReader {
                                file,
                                pos,
                                end: pos + size,
                            };
                            let res = staging
                                .stage(r, &format!("archive entry {path}"))
                                .map(|st| (path, st));
                            let failed = res.is_err();
                            mine.push(res);
                            progress(
                                done.fetch_add(size, std::sync::atomic::Ordering::Relaxed) + size,
                            );
                            if failed {
                                break;
                            }
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a staging thread does not panic"))
                .collect()
        });
        for r in staged {
            let (path, st) = r?;
            out.nodes.insert(path, Node::Staged(st));
        }
        Ok(out)
    }

    /// Indexes an uncompressed archive file without copying anything: small files are read,
    /// big ones recorded as byte ranges to be read later with `pread`.
    pub(crate) fn index_tar_file(file: &File) -> Result<Collected> {
        let mut out = Collected {
            file: Some(file.try_clone().map_err(|source| Error::Read {
                what: "the archive".into(),
                source,
            })?),
            ..Collected::default()
        };
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        // From the first byte whatever the file's offset (a file just written, such as a
        // decompressed copy, is at its end): recorded positions are absolute.
        let mut file = file;
        io::Seek::rewind(&mut file).map_err(|source| Error::Read {
            what: "the archive".into(),
            source,
        })?;
        let reader = Reader::seekable(io::BufReader::with_capacity(READ_BUF, file));
        out.index_entries(reader, file_len, false)?;
        Ok(out)
    }

    /// Indexes an archive stream (already decompressed) without keeping the big files: small
    /// files are read, big ones only recorded (their bytes cannot be opened later). For
    /// learning what images an archive holds, not for loading it.
    pub(crate) fn index_tar_stream(input: impl Read) -> Result<Collected> {
        let mut out = Collected::default();
        let reader = Reader::new(io::BufReader::with_capacity(READ_BUF, input));
        out.index_entries(reader, u64::MAX, true)?;
        Ok(out)
    }

    /// With `json_only`, a small file is kept only when it looks like JSON (a layer of a few
    /// bytes must not use up the memory budget that the documents after it need).
    fn index_entries<R: Read>(
        &mut self,
        mut reader: Reader<R>,
        file_len: u64,
        json_only: bool,
    ) -> Result<()> {
        let mut in_memory = 0u64;
        while let Some(entry) = reader.next_entry().map_err(bad_tar)? {
            let raw_path = String::from_utf8_lossy(&entry.path).to_string();
            let Some(path) = normalize(&raw_path)? else {
                continue;
            };
            let node = match entry.kind {
                EntryKind::Regular => {
                    let size = entry.size;
                    if size <= SMALL_FILE_MAX && in_memory + size <= MEMORY_BUDGET {
                        let mut buf = Vec::with_capacity(size as usize);
                        reader
                            .content()
                            .read_to_end(&mut buf)
                            .map_err(|e| truncated(&path, e))?;
                        let json = buf
                            .iter()
                            .find(|b| !b.is_ascii_whitespace())
                            .is_some_and(|b| matches!(b, b'{' | b'['));
                        if json_only && !json {
                            Node::InFile {
                                pos: entry.data_offset,
                                size,
                            }
                        } else {
                            in_memory += size;
                            Node::Mem(buf)
                        }
                    } else if entry.sparse.is_some() {
                        return Err(Error::InvalidArchive(format!(
                            "archive entry {path} is a sparse file"
                        )));
                    } else {
                        let pos = entry.data_offset;
                        if pos.saturating_add(size) > file_len {
                            return Err(truncated(
                                &path,
                                io::Error::from(io::ErrorKind::UnexpectedEof),
                            ));
                        }
                        Node::InFile { pos, size }
                    }
                }
                EntryKind::Symlink | EntryKind::HardLink => link_node(&entry, &path)?,
                _ => continue,
            };
            self.nodes.insert(path, node);
        }
        Ok(())
    }

    /// Opens a file of the archive (after links) for reading.
    pub(crate) fn open(&self, path: &str) -> Result<Box<dyn Read + Send + '_>> {
        let (p, node) = self.resolve(path)?;
        Ok(match node {
            Node::Mem(b) => Box::new(io::Cursor::new(b.as_slice())),
            Node::Staged(s) => Box::new(File::open(&s.path).at(&s.path)?),
            Node::External(f) => Box::new(File::open(f).at(f)?),
            Node::InFile { pos, size } => Box::new(RangeReader {
                file: self.file.as_ref().ok_or_else(|| {
                    Error::InvalidArchive(format!("{p}: no archive file to read from"))
                })?,
                pos: *pos,
                end: pos + size,
            }),
            _ => unreachable!("resolve returns files only"),
        })
    }

    /// A file of the archive (after links) as a seekable reader: a byte range of the archive
    /// file is read in place.
    pub(crate) fn open_blob_file(&self, path: &str) -> Result<crate::blobfile::BlobFile> {
        use crate::blobfile::BlobFile;
        let (p, node) = self.resolve(path)?;
        let whole = |f: &Path| -> Result<BlobFile> { BlobFile::whole(File::open(f).at(f)?).at(f) };
        Ok(match node {
            Node::Mem(b) => BlobFile::memory(b.as_slice()),
            Node::Staged(s) => whole(&s.path)?,
            Node::External(f) => whole(f)?,
            Node::InFile { pos, size } => {
                let file = self.file.as_ref().ok_or_else(|| {
                    Error::InvalidArchive(format!("{p}: no archive file to read from"))
                })?;
                let file = file.try_clone().map_err(|source| Error::Read {
                    what: "the archive".into(),
                    source,
                })?;
                BlobFile::range(std::sync::Arc::new(file), *pos, *size)
            }
            _ => unreachable!("resolve returns files only"),
        })
    }

    /// The size of a file of the archive (after links).
    pub(crate) fn size(&self, path: &str) -> Result<u64> {
        let (_, node) = self.resolve(path)?;
        Ok(match node {
            Node::Mem(b) => b.len() as u64,
            Node::Staged(s) => s.size,
            Node::External(f) => std::fs::metadata(f).at(f)?.len(),
            Node::InFile { size, .. } => *size,
            _ => unreachable!("resolve returns files only"),
        })
    }

    /// Indexes a directory (an OCI layout on disk): small files are read, big ones are staged
    /// later only if an image needs them.
    pub(crate) fn from_dir(dir: &Path) -> Result<Collected> {
        let mut out = Collected::default();
        let mut in_memory = 0u64;
        let mut stack = vec![(dir.to_path_buf(), String::new())];
        while let Some((d, prefix)) = stack.pop() {
            for entry in std::fs::read_dir(&d).at(&d)? {
                let entry = entry.at(&d)?;
                let name = entry.file_name().to_string_lossy().to_string();
                let rel = join(&prefix, &name);
                let ft = entry.file_type().at(entry.path())?;
                if ft.is_dir() {
                    stack.push((entry.path(), rel));
                } else if ft.is_symlink() {
                    let t = std::fs::read_link(entry.path()).at(entry.path())?;
                    out.nodes
                        .insert(rel, Node::Symlink(t.to_string_lossy().to_string()));
                } else if ft.is_file() {
                    let len = entry.metadata().at(entry.path())?.len();
                    let node = if len <= SMALL_FILE_MAX && in_memory + len <= MEMORY_BUDGET {
                        in_memory += len;
                        Node::Mem(std::fs::read(entry.path()).at(entry.path())?)
                    } else {
                        Node::External(entry.path())
                    };
                    out.nodes.insert(rel, node);
                }
            }
        }
        Ok(out)
    }

    /// Follows links to the file a path names, returning its final path.
    pub(crate) fn resolve(&self, path: &str) -> Result<(String, &Node)> {
        resolve_links(&self.nodes, path, |n| match n {
            Node::Symlink(t) => Link::Symlink(t),
            Node::Hardlink(t) => Link::Hardlink(t),
            _ => Link::File,
        })
    }

    /// Puts a blob found elsewhere (the store, a base archive) at `path`, as if the archive had
    /// it: what a delta archive left out.
    pub(crate) fn supply(&mut self, path: String, blob: Staged) {
        self.nodes.insert(path, Node::Staged(blob));
    }

    /// Whether a path exists (after links).
    pub(crate) fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok()
    }

    /// The bytes of a small document (JSON): from memory, or read from its staged file.
    pub(crate) fn bytes(&self, path: &str) -> Result<Vec<u8>> {
        let (p, node) = self.resolve(path)?;
        if let Node::Mem(b) = node {
            return Ok(b.clone());
        }
        let mut out = Vec::new();
        self.open(&p)?
            .take(crate::store::MAX_JSON_SIZE + 1)
            .read_to_end(&mut out)
            .map_err(|e| truncated(&p, e))?;
        if out.len() as u64 > crate::store::MAX_JSON_SIZE {
            return Err(Error::InvalidArchive(format!(
                "{p} is too large to be a JSON document"
            )));
        }
        Ok(out)
    }

    /// The digest of a file's bytes.
    pub(crate) fn digest_of(&self, path: &str, staging: &Staging) -> Result<Digest> {
        Ok(self.blob(path, staging)?.digest)
    }

    /// The file as a staged blob (staging it now if it is in memory or in an input directory).
    pub(crate) fn blob(&self, path: &str, staging: &Staging) -> Result<Staged> {
        let (p, node) = self.resolve(path)?;
        if let Some(s) = self.staged.lock().expect("never poisoned").get(&p) {
            return Ok(s.clone());
        }
        let staged = match node {
            Node::Staged(s) => s.clone(),
            Node::Mem(b) => staging.stage_bytes(b)?,
            Node::External(_) | Node::InFile { .. } => staging.stage(self.open(&p)?, &p)?,
            _ => unreachable!("resolve returns files only"),
        };
        self.staged
            .lock()
            .expect("never poisoned")
            .insert(p, staged.clone());
        Ok(staged)
    }
}

/// What a path of an archive is, for [`resolve_links`].
pub(crate) enum Link<'a> {
    /// A file (or anything that is not a link).
    File,
    /// A symbolic link with its target as written.
    Symlink(&'a str),
    /// A hard link with its normalized target.
    Hardlink(&'a str),
}

/// Follows links from `path` to the file it names among `nodes` (paths of an archive,
/// normalized), returning the file's path and node. Symlinks are resolved relative to their
/// directory first, then to the archive root; at most [`MAX_LINK_HOPS`] hops.
pub(crate) fn resolve_links<'n, N>(
    nodes: &'n HashMap<String, N>,
    path: &str,
    link: impl Fn(&N) -> Link<'_>,
) -> Result<(String, &'n N)> {
    let mut cur = normalize(path)?.unwrap_or_default();
    for _ in 0..=MAX_LINK_HOPS {
        let node = nodes.get(&cur).ok_or_else(|| {
            Error::InvalidArchive(format!("{cur} is referenced but not in the archive"))
        })?;
        match link(node) {
            Link::Symlink(t) => {
                let from_dir = lexical(&join(parent_dir(&cur), t));
                let from_root = normalize(t).ok().flatten();
                // Relative to the link's directory first; containerd also tried the archive
                // root, which some writers meant (containerd#12890).
                cur = match (from_dir, from_root) {
                    (Some(a), _) if !t.starts_with('/') && nodes.contains_key(&a) => a,
                    (_, Some(b)) if nodes.contains_key(&b) => b,
                    _ => {
                        return Err(Error::InvalidArchive(format!(
                            "symlink {cur} -> {t} points to nothing in the archive"
                        )));
                    }
                };
            }
            Link::Hardlink(t) => cur = t.to_string(),
            Link::File => return Ok((cur, node)),
        }
    }
    Err(Error::InvalidArchive(format!(
        "too many levels of links resolving {path}"
    )))
}

/// Staging threads for an archive file: two big layers at once already keep the disk busy.
const MAX_STAGING_THREADS: usize = 4;

pub(crate) fn link_node(entry: &Entry, path: &str) -> Result<Node> {
    if entry.link.is_empty() {
        return Err(Error::InvalidArchive(format!("link {path} has no target")));
    }
    let target = String::from_utf8_lossy(&entry.link).to_string();
    Ok(if entry.kind == EntryKind::Symlink {
        Node::Symlink(target)
    } else {
        Node::Hardlink(normalize(&target)?.unwrap_or_default())
    })
}

/// An archive the tar reader refuses (or cannot read: a decompressor's error is one).
pub(crate) fn bad_tar(e: TarError) -> Error {
    Error::InvalidArchive(format!("not a readable tar stream: {e}"))
}

/// A byte range of a file, read with `pread` so several threads can share the file.
struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Resolves `.` and `..` lexically inside the archive; `None` when the path climbs above it.
fn lexical(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn truncated(path: &str, e: io::Error) -> Error {
    Error::InvalidArchive(format!(
        "archive entry {} is truncated or unreadable: {e}",
        crate::tar::show_name(path.as_bytes())
    ))
}
