//! What the store remembers about blobs for registries, so that pushes repeat no work:
//!
//! ```text
//! hoist/compressed/<gzip|zstd>/<diff_id hex>   "<digest> <size>": the layer as hoist compressed it
//! hoist/sources/<digest hex>                  "<registry>/<repository>" lines: where the blob
//!                                             was pulled from or pushed to (for mounts)
//! ```
//!
//! Both are caches: a missing or unreadable entry only means the work is done again. Their
//! files are replaced through temporary files in their own directories, not in `hoist/tmp`,
//! which `gc` empties.

use std::fs;

use hoist_format::Digest;
use hoist_format::media_type::Compression;

use super::Store;
use crate::error::{IoContext, Result};

/// Repositories remembered per blob: enough to find a mount source, bounded so the file stays
/// small however often a blob is pushed around.
const MAX_SOURCES: usize = 16;

fn algo_dir(c: Compression) -> &'static str {
    match c {
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
        Compression::Bzip2 => "bzip2",
        Compression::Xz => "xz",
        Compression::None => "none",
    }
}

/// Replaces `dest` with `bytes` by a temporary file in its directory (no fsync: a cache entry
/// lost in a crash is only work to do again).
pub(super) fn replace(dest: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = dest.parent().expect("cache files are in a directory");
    let (tmp, mut f) = super::tempfile_in(dir)?;
    let done = f.write_all(bytes).and_then(|()| fs::rename(&tmp, dest));
    if let Err(e) = done {
        // The temporary file is useless now; failing to remove it changes nothing.
        let _ = fs::remove_file(&tmp);
        return Err(e).at(dest);
    }
    Ok(())
}

impl Store {
    /// Records that the uncompressed layer `diff_id`, compressed by hoist with `algo`, is the
    /// blob `digest` of `size` bytes.
    pub fn remember_compressed(
        &self,
        diff_id: &Digest,
        algo: Compression,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        let dir = self.hoist_dir().join("compressed").join(algo_dir(algo));
        fs::create_dir_all(&dir).at(&dir)?;
        replace(
            &dir.join(diff_id.hex()),
            format!("{digest} {size}\n").as_bytes(),
        )
    }

    /// The blob an earlier [`Store::remember_compressed`] recorded, if any.
    pub fn compressed(&self, diff_id: &Digest, algo: Compression) -> Option<(Digest, u64)> {
        let p = self
            .hoist_dir()
            .join("compressed")
            .join(algo_dir(algo))
            .join(diff_id.hex());
        let text = fs::read_to_string(p).ok()?;
        let (d, s) = text.trim().split_once(' ')?;
        Some((Digest::parse(d).ok()?, s.parse().ok()?))
    }

    /// Records that `digest` exists in `repository` (`registry/path`).
    pub fn remember_source(&self, digest: &Digest, repository: &str) -> Result<()> {
        let mut known = self.sources(digest);
        if known.iter().any(|k| k == repository) {
            return Ok(());
        }
        known.insert(0, repository.to_string());
        known.truncate(MAX_SOURCES);
        let dir = self.hoist_dir().join("sources");
        fs::create_dir_all(&dir).at(&dir)?;
        let mut text = known.join("\n");
        text.push('\n');
        replace(&dir.join(digest.hex()), text.as_bytes())
    }

    /// Repositories (`registry/path`) known to hold `digest`, most recent first.
    pub fn sources(&self, digest: &Digest) -> Vec<String> {
        fs::read_to_string(self.hoist_dir().join("sources").join(digest.hex()))
            .map(|t| {
                t.lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_compressed_blobs_and_sources() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let diff = Digest::of(b"layer");
        let gz = Digest::of(b"gz");
        assert_eq!(store.compressed(&diff, Compression::Gzip), None);
        store
            .remember_compressed(&diff, Compression::Gzip, &gz, 42)
            .unwrap();
        assert_eq!(
            store.compressed(&diff, Compression::Gzip),
            Some((gz.clone(), 42))
        );
        assert_eq!(store.compressed(&diff, Compression::Zstd), None);

        assert!(store.sources(&gz).is_empty());
        store.remember_source(&gz, "r:5000/a").unwrap();
        store.remember_source(&gz, "r:5000/b").unwrap();
        store.remember_source(&gz, "r:5000/a").unwrap();
        assert_eq!(store.sources(&gz), vec!["r:5000/b", "r:5000/a"]);
        for i in 0..40 {
            store.remember_source(&gz, &format!("r/{i}")).unwrap();
        }
        assert_eq!(store.sources(&gz).len(), MAX_SOURCES);
        assert_eq!(store.sources(&gz)[0], "r/39");
    }

    #[test]
    fn scratch_files_are_nameless() {
        use std::io::{Read, Seek, Write};
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let before: Vec<_> = fs::read_dir(store.scratch_dir()).unwrap().collect();
        let mut f = super::super::anonymous_file_in(&store.scratch_dir()).unwrap();
        f.write_all(b"compressed layer").unwrap();
        f.rewind().unwrap();
        let mut back = String::new();
        f.read_to_string(&mut back).unwrap();
        assert_eq!(back, "compressed layer");
        let after: Vec<_> = fs::read_dir(store.scratch_dir()).unwrap().collect();
        assert_eq!((before.len(), after.len()), (0, 0));
        // A directory that is not there is named in the error.
        let missing = d.path().join("gone");
        let e = super::super::anonymous_file_in(&missing).unwrap_err();
        assert!(e.to_string().contains("gone"), "{e}");
    }
}
