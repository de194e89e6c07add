//! What one layer entry means: the naming rules shared by every path that applies layers (the
//! in-memory merge of [`crate::flatten`], the on-disk unpack of [`crate::rootfs`], load's
//! validation), so they accept and refuse the same entries.
//!
//! They follow moby's `UnpackLayer`:
//!
//! - names are normalized lexically (`./`, a leading `/`, `//`, `a/../b`); a `..` that climbs
//!   above the root is refused;
//! - a name whose *first* component starts with `.wh..wh.` is AUFS metadata and skipped, except
//!   regular files directly in `.wh..wh.plnk/`, which are hard-link sources for their layer
//!   (and `.wh..wh..opq` at the top, which makes the root opaque);
//! - only the *last* component is looked at for whiteouts: `.wh..wh..opq` makes its directory
//!   opaque, `.wh.<name>` removes `<name>`, other `.wh..wh.*` names are skipped, and `.wh.`,
//!   `.wh..`, `.wh...` are refused. A whiteout-looking parent (`a/.wh.b/c`) is an ordinary
//!   directory name, as in docker;
//! - a component longer than 255 bytes (`NAME_MAX`) is refused: no file system can create it;
//!   so are owner ids of 2^32 - 1 and more and xattrs no file system takes ([`check_meta`]).

use std::io::{BufReader, Read};

use hoist_format::whiteout::{META_PREFIX, WHITEOUT_PREFIX, Whiteout, classify};

use crate::tar::{Entry, EntryKind, Reader, TarError, show_name};

/// Buffer around a checked layer stream: headers are read 512 bytes at a time.
const READ_BUF: usize = 128 << 10;

/// Longest path component: Linux's `NAME_MAX`.
pub const NAME_MAX: usize = 255;
/// The top-level directory of AUFS hard-link sources.
pub const PLNK: &[u8] = b".wh..wh.plnk";

/// What applying an entry does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// The root directory itself, or AUFS metadata: nothing.
    Skip,
    /// A regular file `.wh..wh.plnk/<name>`: a hard-link source while its layer is applied.
    PlnkSource {
        /// Its name inside `.wh..wh.plnk`.
        name: &'a [u8],
    },
    /// `.wh..wh..opq`: the lower-layer children of `dir` are hidden.
    Opaque {
        /// The directory's components.
        dir: Vec<&'a [u8]>,
    },
    /// `.wh.<name>`: the lower-layer `dir/name` (and what is below it) is removed.
    Whiteout {
        /// The directory's components.
        dir: Vec<&'a [u8]>,
        /// The removed name.
        name: &'a [u8],
    },
    /// Creates, replaces or (directory over directory) merges `parents/base`.
    Put {
        /// The parent's components.
        parents: Vec<&'a [u8]>,
        /// The last component.
        base: &'a [u8],
    },
}

/// Why an entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A `..` climbs above the root.
    #[error("escapes the root")]
    Escape,
    /// `.wh.`, `.wh..` or `.wh...`.
    #[error("invalid whiteout name")]
    InvalidWhiteout,
    /// A component over [`NAME_MAX`] bytes.
    #[error("a component of {0} bytes is longer than 255 (file name too long)")]
    ComponentTooLong(usize),
    /// A type no layer applier creates.
    #[error("unsupported entry type {}", (*.0 as char).escape_default())]
    Unsupported(u8),
    /// An owner id that does not fit the kernel's 32 bits.
    #[error("owner id {0} is out of range")]
    IdRange(u64),
    /// An xattr no file system takes.
    #[error(
        "xattr {name:?} ({len}-byte value) cannot be set: names are 1 to 255 bytes, values at most 64 KiB"
    )]
    Xattr {
        /// Its name (shortened).
        name: String,
        /// The value's length.
        len: usize,
    },
}

/// Normalizes an entry name or hard-link target into components; `Ok(empty)` is the root.
pub fn components(raw: &[u8]) -> Result<Vec<&[u8]>, RuleError> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop().ok_or(RuleError::Escape)?;
            }
            c if c.len() > NAME_MAX => return Err(RuleError::ComponentTooLong(c.len())),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// What a base name means for whiteouts: [`classify`] over bytes, so `.wh.` before a name that
/// is not UTF-8 removes that name, as it does in docker.
fn classify_bytes(name: &[u8]) -> Base<'_> {
    match std::str::from_utf8(name) {
        Ok(s) => match classify(s) {
            Whiteout::None => Base::None,
            Whiteout::Remove(n) => Base::Remove(n.as_bytes()),
            Whiteout::Opaque => Base::Opaque,
            Whiteout::Meta => Base::Meta,
            Whiteout::Invalid => Base::Invalid,
        },
        Err(_) if name.starts_with(META_PREFIX.as_bytes()) => Base::Meta,
        Err(_) => match name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            // Not UTF-8, so never empty, `.` or `..`.
            Some(n) => Base::Remove(n),
            None => Base::None,
        },
    }
}

/// [`Whiteout`] over bytes.
enum Base<'a> {
    None,
    Remove(&'a [u8]),
    Opaque,
    Meta,
    Invalid,
}

/// Longest xattr name: Linux's `XATTR_NAME_MAX`.
const XATTR_NAME_MAX: usize = 255;
/// Largest xattr value: Linux's `XATTR_SIZE_MAX`.
const XATTR_SIZE_MAX: usize = 64 << 10;

/// Checks what no layer applier could set: an owner id the kernel cannot hold (32 bits, and
/// `u32::MAX` means "unchanged"), an xattr name that is empty or over 255 bytes, a value over
/// 64 KiB (docker fails on them when it applies the layer).
pub fn check_meta(meta: &crate::tar::Metadata) -> Result<(), RuleError> {
    for id in [meta.uid, meta.gid] {
        if id >= u64::from(u32::MAX) {
            return Err(RuleError::IdRange(id));
        }
    }
    for (name, value) in &meta.xattrs {
        if name.is_empty() || name.len() > XATTR_NAME_MAX || value.len() > XATTR_SIZE_MAX {
            return Err(RuleError::Xattr {
                name: show_name(name),
                len: value.len(),
            });
        }
    }
    Ok(())
}

/// What the entry `path` of kind `kind` does.
pub fn action(path: &[u8], kind: EntryKind) -> Result<Action<'_>, RuleError> {
    let mut comps = components(path)?;
    let Some(&first) = comps.first() else {
        return Ok(Action::Skip);
    };
    if comps.len() > 1 && first.starts_with(META_PREFIX.as_bytes()) {
        if comps.len() == 2 && first == PLNK && kind == EntryKind::Regular {
            return Ok(Action::PlnkSource { name: comps[1] });
        }
        return Ok(Action::Skip);
    }
    let base = comps.pop().expect("not the root");
    match classify_bytes(base) {
        Base::Invalid => Err(RuleError::InvalidWhiteout),
        Base::Opaque => Ok(Action::Opaque { dir: comps }),
        Base::Remove(name) => Ok(Action::Whiteout { dir: comps, name }),
        Base::Meta => Ok(Action::Skip),
        Base::None => {
            if let EntryKind::Other(t) = kind {
                return Err(RuleError::Unsupported(t));
            }
            Ok(Action::Put {
                parents: comps,
                base,
            })
        }
    }
}

/// Why [`check`] refused a layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The stream is not a tar hoist accepts.
    #[error(transparent)]
    Tar(#[from] TarError),
    /// An entry breaks a layer rule.
    #[error("entry {index} {path:?}: {what}: {source}")]
    Rule {
        /// Index of the entry.
        index: u64,
        /// Its name (shortened).
        path: String,
        /// `"name"` or `"hard link target"`.
        what: &'static str,
        /// The rule.
        source: RuleError,
    },
    /// A check of the caller's refused the entry.
    #[error("entry {index} {path:?}: {reason}")]
    Other {
        /// Index of the entry.
        index: u64,
        /// Its name (shortened).
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// What [`check`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckStats {
    /// Entries (extension headers folded in).
    pub entries: u64,
}

/// Reads the layer tar `r` to its end-of-archive marker, checking every entry against the
/// tar reader's rules and the rules above (what every path that applies layers refuses
/// whatever lies below: names that escape or are too long, invalid whiteouts, unsupported
/// types, hard-link targets outside the root). `extra` sees each entry with its action and may
/// refuse it. Data is read (not seeked over), so a tee under `r` sees every byte up to the
/// marker; what follows the marker is left unread in `r`'s buffer or stream.
pub fn check(
    r: impl Read,
    extra: impl FnMut(&Entry, &Action<'_>) -> Result<(), String>,
) -> Result<CheckStats, CheckError> {
    check_entries(
        &mut Reader::new(BufReader::with_capacity(READ_BUF, r)),
        extra,
    )
}

/// [`check`] over a reader already set up.
pub(crate) fn check_entries<R: Read>(
    reader: &mut Reader<R>,
    mut extra: impl FnMut(&Entry, &Action<'_>) -> Result<(), String>,
) -> Result<CheckStats, CheckError> {
    let mut stats = CheckStats::default();
    while let Some(e) = reader.next_entry()? {
        stats.entries += 1;
        let rule = |what, source| CheckError::Rule {
            index: e.index,
            path: show_name(&e.path),
            what,
            source,
        };
        let action = self::action(&e.path, e.kind).map_err(|r| rule("name", r))?;
        check_meta(&e.meta).map_err(|r| rule("attributes", r))?;
        if e.kind == EntryKind::HardLink {
            components(&e.link).map_err(|r| rule("hard link target", r))?;
        }
        extra(&e, &action).map_err(|reason| CheckError::Other {
            index: e.index,
            path: show_name(&e.path),
            reason,
        })?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions() {
        let r = EntryKind::Regular;
        assert_eq!(action(b"./", r), Ok(Action::Skip));
        assert_eq!(
            action(b"/a//b/./c", r),
            Ok(Action::Put {
                parents: vec![b"a", b"b"],
                base: b"c"
            })
        );
        assert_eq!(action(b"a/../../x", r), Err(RuleError::Escape));
        assert_eq!(
            action(b".wh..wh.plnk/123", r),
            Ok(Action::PlnkSource { name: b"123" })
        );
        assert_eq!(
            action(b".wh..wh.plnk/123", EntryKind::Symlink),
            Ok(Action::Skip)
        );
        assert_eq!(action(b".wh..wh.aufs", r), Ok(Action::Skip));
        assert_eq!(action(b"a/.wh..wh.tmp", r), Ok(Action::Skip));
        assert_eq!(
            action(b".wh..wh..opq", r),
            Ok(Action::Opaque { dir: vec![] })
        );
        assert_eq!(
            action(b"a/.wh.b", r),
            Ok(Action::Whiteout {
                dir: vec![b"a"],
                name: b"b"
            })
        );
        // docker keeps a whiteout-looking directory as an ordinary name.
        assert_eq!(
            action(b"a/.wh.b/c", r),
            Ok(Action::Put {
                parents: vec![b"a", b".wh.b"],
                base: b"c"
            })
        );
        assert_eq!(action(b"a/.wh..", r), Err(RuleError::InvalidWhiteout));
        // A whiteout of a name that is not UTF-8 removes it, as in docker.
        assert_eq!(
            action(b"a/.wh.caf\xe9", r),
            Ok(Action::Whiteout {
                dir: vec![b"a"],
                name: b"caf\xe9"
            })
        );
        assert_eq!(
            action(b"v", EntryKind::Other(b'V')),
            Err(RuleError::Unsupported(b'V'))
        );
        let long = [b'x'; 256];
        assert_eq!(action(&long, r), Err(RuleError::ComponentTooLong(256)));
        assert!(action(&[b'x'; 255], r).is_ok());
    }
}
