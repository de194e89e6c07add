//! Paths resolved inside an image's merged tree, as the kernel resolves them inside a chroot:
//! `.` and `..` by component (`..` stops at the root), symlinks followed inside the tree
//! (absolute targets start at the image's root, never the host's), at most
//! [`MAX_SYMLINK_HOPS`] of them.

use std::collections::VecDeque;

use crate::flatten::{FinalEntry, FinalKind, FinalTree, Metadata};

/// Symlinks followed in one lookup: Linux's `MAXSYMLINKS` (`ELOOP` past it).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Why a path does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// Nothing at the path.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// A component before the last is not a directory.
    #[error("{0}: not a directory")]
    NotADirectory(String),
    /// The path is a symlink whose target does not exist.
    #[error("{path}: a dangling symlink (to {target})")]
    Dangling {
        /// The path as given.
        path: String,
        /// The link's target.
        target: String,
    },
    /// Symlinks loop (or chain past [`MAX_SYMLINK_HOPS`]).
    #[error("{0}: too many levels of symbolic links")]
    Loop(String),
}

/// A resolved path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where it led: normalized, no leading `/` (empty for the root).
    pub path: Vec<u8>,
    /// The entry there (for a hard link, the kind of the inode it shares: a file's content is
    /// that file's); the root is a directory with no source.
    pub entry: FinalEntry,
}

/// `/path` for messages.
pub fn show(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

/// Resolves `path` (absolute or not: both start at the image's root) in `tree`. The last
/// component is followed when it is a symlink only with `follow_last` (`cat`, `cp` of a
/// link's target), as `stat` does and `lstat` does not; a trailing `/` (or `/.`) follows it
/// and requires a directory, as POSIX path resolution does.
pub fn resolve(tree: &FinalTree, path: &[u8], follow_last: bool) -> Result<Resolved, LookupError> {
    let asked = show(path.strip_prefix(b"/").unwrap_or(path));
    let dir_wanted = path.ends_with(b"/") || path.ends_with(b"/.") || path == b".";
    let follow_last = follow_last || dir_wanted;
    let mut todo: VecDeque<Vec<u8>> = components(path).collect();
    let mut cur: Vec<Vec<u8>> = Vec::new();
    let mut hops = 0;
    // The link that brought the walk to where it is, for a dangling link's message.
    let mut via: Option<Vec<u8>> = None;
    while let Some(c) = todo.pop_front() {
        if c == b".." {
            cur.pop();
            continue;
        }
        cur.push(c);
        let here = cur.join(&b'/');
        let last = todo.is_empty();
        let Some(entry) = tree.get_resolved(&here) else {
            return Err(match via.take() {
                Some(target) if last => LookupError::Dangling {
                    path: asked,
                    target: String::from_utf8_lossy(&target).into_owned(),
                },
                _ => LookupError::NotFound(asked),
            });
        };
        match &entry.kind {
            FinalKind::Symlink { target } if !last || follow_last => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(LookupError::Loop(asked));
                }
                // An empty target names nothing (ENOENT), not the link's directory.
                if target.is_empty() {
                    return Err(LookupError::NotFound(asked));
                }
                cur.pop();
                if target.starts_with(b"/") {
                    cur.clear();
                }
                for (i, t) in components(target).enumerate() {
                    todo.insert(i, t);
                }
                // A missing path past this link is the link's fault only when the link was
                // what the path named.
                via = last.then(|| target.clone());
                if todo.is_empty() {
                    // A link to the root (`/`, `.`): where the walk stands now.
                    break;
                }
            }
            FinalKind::Directory => via = None,
            _ if !last => return Err(LookupError::NotADirectory(asked)),
            _ => via = None,
        }
    }
    let path = cur.join(&b'/');
    if path.is_empty() {
        return Ok(Resolved {
            path,
            entry: root_entry(),
        });
    }
    let entry = tree
        .get_resolved(&path)
        .ok_or_else(|| LookupError::NotFound(asked.clone()))?;
    if dir_wanted && entry.kind != FinalKind::Directory {
        return Err(LookupError::NotADirectory(asked));
    }
    Ok(Resolved { path, entry })
}

/// The components of a path: `.` and empty ones dropped, `..` kept (resolution pops them).
fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
}

/// The root directory: no layer entry describes it (layers' own `./` entries are skipped as
/// every layer applier skips them), so it has the attributes an extractor gives it.
pub fn root_entry() -> FinalEntry {
    FinalEntry {
        path: Vec::new(),
        kind: FinalKind::Directory,
        meta: Metadata {
            mode: 0o755,
            ..Metadata::default()
        },
        source: None,
        layer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::{FlattenOptions, final_tree};
    use crate::tar::{EntryKind, Header, Writer};

    fn tree() -> FinalTree {
        let mut w = Writer::new(Vec::new());
        let put =
            |w: &mut Writer<Vec<u8>>, name: &str, kind: EntryKind, link: &str, data: &[u8]| {
                let mut h = Header::new(name.as_bytes(), kind);
                h.link = link.as_bytes();
                h.size = data.len() as u64;
                w.header(&h).unwrap();
                w.write_data(data).unwrap();
                w.pad(data.len() as u64).unwrap();
            };
        put(&mut w, "etc/", EntryKind::Directory, "", b"");
        put(&mut w, "etc/passwd", EntryKind::Regular, "", b"root");
        put(&mut w, "etc/abs", EntryKind::Symlink, "/etc/passwd", b"");
        put(
            &mut w,
            "etc/rel",
            EntryKind::Symlink,
            "../etc/./passwd",
            b"",
        );
        put(&mut w, "etc/up", EntryKind::Symlink, "../../../../etc", b"");
        put(&mut w, "etc/gone", EntryKind::Symlink, "/nowhere", b"");
        put(&mut w, "etc/loop", EntryKind::Symlink, "loop", b"");
        put(&mut w, "etc/root", EntryKind::Symlink, "/", b"");
        put(&mut w, "etc/hard", EntryKind::HardLink, "etc/passwd", b"");
        put(&mut w, "etc/empty", EntryKind::Symlink, "", b"");
        put(&mut w, "etc/dirlink", EntryKind::Symlink, ".", b"");
        let (layer, _) = w.finish().unwrap();
        final_tree(&[layer][..], &FlattenOptions::default()).unwrap()
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tree();
        let at = |p: &str, follow: bool| {
            resolve(&t, p.as_bytes(), follow).map(|r| String::from_utf8(r.path).unwrap())
        };
        assert_eq!(at("/etc/abs", true).unwrap(), "etc/passwd");
        assert_eq!(at("etc/abs", false).unwrap(), "etc/abs");
        assert_eq!(at("/etc/rel", true).unwrap(), "etc/passwd");
        // `..` stops at the image's root, never the host's.
        assert_eq!(at("/etc/up/passwd", true).unwrap(), "etc/passwd");
        assert_eq!(at("/../../etc/passwd", true).unwrap(), "etc/passwd");
        assert_eq!(at("/etc/root/etc/abs", true).unwrap(), "etc/passwd");
        assert_eq!(at("/etc/root", true).unwrap(), "");
        assert_eq!(at("/", true).unwrap(), "");
        assert_eq!(
            at("/etc/gone", true).unwrap_err(),
            LookupError::Dangling {
                path: "/etc/gone".into(),
                target: "/nowhere".into()
            }
        );
        assert_eq!(at("/etc/gone", false).unwrap(), "etc/gone");
        assert_eq!(
            at("/etc/loop", true).unwrap_err(),
            LookupError::Loop("/etc/loop".into())
        );
        assert_eq!(
            at("/etc/passwd/x", true).unwrap_err(),
            LookupError::NotADirectory("/etc/passwd/x".into())
        );
        assert_eq!(
            at("/etc/nope", true).unwrap_err(),
            LookupError::NotFound("/etc/nope".into())
        );
        // A missing path past a link to the root is missing, not a dangling link.
        assert_eq!(
            at("/etc/root/nope", true).unwrap_err(),
            LookupError::NotFound("/etc/root/nope".into())
        );
        assert_eq!(
            at("/etc/empty", true).unwrap_err(),
            LookupError::NotFound("/etc/empty".into())
        );
        // A trailing `/` follows the last link and wants a directory.
        assert_eq!(at("/etc/dirlink/", false).unwrap(), "etc");
        assert_eq!(at("/etc/dirlink", false).unwrap(), "etc/dirlink");
        assert_eq!(
            at("/etc/passwd/", true).unwrap_err(),
            LookupError::NotADirectory("/etc/passwd/".into())
        );
        // A hard link resolves to a file of the inode's kind.
        let hard = resolve(&t, b"/etc/hard", true).unwrap();
        assert_eq!(hard.entry.kind, FinalKind::Regular { size: 4 });
    }
}
