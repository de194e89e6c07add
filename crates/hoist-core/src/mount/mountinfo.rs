//! `/proc/self/mountinfo`: which file system is mounted where (see proc(5)). A dead FUSE
//! mount stays listed there until it is unmounted, so this is how `umount` finds one.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::MountError;

/// Where the kernel lists this process's mounts.
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The device (`MAJOR:MINOR`), which names the mount's `/sys/class/bdi` entry.
    pub dev: String,
    /// The mount point.
    pub point: PathBuf,
    /// The file system type (`fuse.hoist` for a hoist mount).
    pub fstype: String,
    /// The mount source (`hoist:<image>` for a hoist mount).
    pub source: String,
}

/// The topmost mount at `point` (absolute, symlinks resolved), if any.
pub(super) fn find(point: &Path) -> Result<Option<MountInfo>, MountError> {
    let text = std::fs::read(MOUNTINFO).map_err(|source| MountError::Io {
        what: MOUNTINFO.into(),
        source,
    })?;
    // Later lines are mounted later: the last one at a point is the one on top.
    Ok(parse(&text).into_iter().rfind(|m| m.point == point))
}

/// Parses mountinfo lines: `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL…] - TYPE SOURCE
/// SUPEROPTIONS`; lines that do not have that shape are skipped.
fn parse(text: &[u8]) -> Vec<MountInfo> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 3 {
            continue;
        }
        out.push(MountInfo {
            dev: String::from_utf8_lossy(fields[2]).into_owned(),
            point: PathBuf::from(OsString::from_vec(unescape(fields[4]))),
            fstype: String::from_utf8_lossy(&unescape(fields[sep + 1])).into_owned(),
            source: String::from_utf8_lossy(&unescape(fields[sep + 2])).into_owned(),
        });
    }
    out
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
fn unescape(f: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(f.len());
    let mut i = 0;
    while i < f.len() {
        if f[i] == b'\\'
            && i + 3 < f.len()
            && f[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = f[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(b) = u8::try_from(v) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(f[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_escapes_and_optional_fields() {
        let text = b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
            90 22 0:50 / /tmp/a\\040b rw,nosuid,nodev,relatime shared:9 master:2 - fuse.hoist hoist:busybox:latest ro,user_id=0\n\
            garbage line\n\
            91 22 0:51 / /tmp/a\\040b rw - fuse.sshfs host:/ rw\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1],
            MountInfo {
                dev: "0:50".into(),
                point: PathBuf::from("/tmp/a b"),
                fstype: "fuse.hoist".into(),
                source: "hoist:busybox:latest".into(),
            }
        );
        // The last mount at a point is the one on top.
        let top = parse(text)
            .into_iter()
            .rfind(|m| m.point == Path::new("/tmp/a b"));
        assert_eq!(top.unwrap().fstype, "fuse.sshfs");
    }

    #[test]
    fn escapes_decode() {
        for (input, want) in [
            (&b"a\\040b"[..], &b"a b"[..]),
            (b"\\134x", b"\\x"),
            (b"\\011\\012", b"\t\n"),
            (b"no\\escape", b"no\\escape"),
            (b"end\\04", b"end\\04"),
        ] {
            assert_eq!(unescape(input), want, "{input:?}");
        }
    }
}
