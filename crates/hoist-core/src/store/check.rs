//! `fsck` (verify every blob and reference) and `gc` (remove what no name reaches).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Read;

use hoist_format::Digest;
use hoist_format::config::ImageConfig;
use hoist_format::oci::{Index, Manifest, Sniff};

use super::Store;
use crate::error::{Error, IoContext, Result};
use crate::hashio::HashingReader;

/// One thing `fsck` found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckProblem {
    /// What is affected (a blob path, a name).
    pub subject: String,
    /// What is wrong.
    pub problem: String,
}

/// What `fsck` checked and found.
#[derive(Debug, Default)]
pub struct FsckReport {
    /// Blobs whose content was hashed.
    pub blobs_checked: usize,
    /// Names and untagged images checked.
    pub entries_checked: usize,
    /// Problems; empty when the store is sound.
    pub problems: Vec<FsckProblem>,
    /// Staging directories left by interrupted writers (harmless; `gc` removes them).
    pub stale_staging: usize,
}

/// What `gc` removed.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Blobs removed.
    pub blobs_removed: usize,
    /// Bytes freed by them.
    pub bytes_freed: u64,
    /// Staging directories removed.
    pub staging_removed: usize,
    /// Half-made containers (`containers/.new-<id>` of a `create` that was killed) removed.
    pub partial_containers_removed: usize,
}

pub(super) fn fsck(store: &Store) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let mut problems = Vec::new();

    // 1. Every blob's content matches its name.
    let blob_dir = store.root.join("blobs/sha256");
    let mut good: BTreeSet<Digest> = BTreeSet::new();
    for entry in fs::read_dir(&blob_dir).at(&blob_dir)? {
        let entry = entry.at(&blob_dir)?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        let Ok(want) = Digest::from_hex(&name) else {
            problems.push(FsckProblem {
                subject: path.display().to_string(),
                problem: "file name is not a sha256 digest".into(),
            });
            continue;
        };
        let f = fs::File::open(&path).at(&path)?;
        let mut h = HashingReader::new(f);
        crate::compress::drain(&mut h).at(&path)?;
        let (found, _, _) = h.finish();
        report.blobs_checked += 1;
        if found == want {
            good.insert(want);
        } else {
            problems.push(FsckProblem {
                subject: path.display().to_string(),
                problem: format!("content has digest {found}"),
            });
        }
    }

    // 2. Every entry of index.json reaches a complete image whose layers match the diff_ids.
    let mut diff_ids_seen: HashMap<Digest, Digest> = HashMap::new();
    for e in store.entries()? {
        report.entries_checked += 1;
        let label = match &e.name {
            Some(n) => n.to_string(),
            None => format!("untagged {}", e.descriptor.digest),
        };
        for (subject, problem) in check_target(
            store,
            &good,
            &e.descriptor.digest,
            e.descriptor.size,
            &mut diff_ids_seen,
        ) {
            problems.push(FsckProblem {
                subject: format!("{label}: {subject}"),
                problem,
            });
        }
    }

    let tmp = store.hoist_dir().join("tmp");
    for entry in fs::read_dir(&tmp).at(&tmp)? {
        if entry
            .at(&tmp)?
            .file_name()
            .to_string_lossy()
            .starts_with("stage-")
        {
            report.stale_staging += 1;
        }
    }
    report.problems = problems;
    Ok(report)
}

/// Checks a manifest or index and everything below it; returns (subject, problem) pairs.
fn check_target(
    store: &Store,
    good: &BTreeSet<Digest>,
    digest: &Digest,
    size: u64,
    seen: &mut HashMap<Digest, Digest>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(bytes) = read_good(store, good, digest, &mut out, "manifest") else {
        return out;
    };
    if bytes.len() as u64 != size {
        out.push((
            format!("manifest {digest}"),
            format!("size is {} bytes, index.json says {size}", bytes.len()),
        ));
    }
    let sniff = match Sniff::parse(&bytes) {
        Ok(s) => s,
        Err(e) => {
            out.push((format!("manifest {digest}"), format!("not JSON: {e}")));
            return out;
        }
    };
    if sniff.is_index() {
        match Index::parse(&bytes) {
            Ok(idx) => {
                // Attestations are never pulled: an index in the store may lack them.
                for m in idx.manifests.iter().filter(|m| !m.is_attestation()) {
                    out.extend(check_target(store, good, &m.digest, m.size, seen));
                }
            }
            Err(e) => out.push((format!("index {digest}"), format!("invalid: {e}"))),
        }
        return out;
    }
    let m = match Manifest::parse(&bytes) {
        Ok(m) => m,
        Err(e) => {
            out.push((format!("manifest {digest}"), format!("invalid: {e}")));
            return out;
        }
    };
    let Some(cfg) = read_good(store, good, &m.config.digest, &mut out, "config") else {
        return out;
    };
    let config = match ImageConfig::parse(&cfg) {
        Ok(c) => c,
        Err(e) => {
            out.push((format!("config {}", m.config.digest), e.to_string()));
            return out;
        }
    };
    if config.rootfs.diff_ids.len() != m.layers.len() {
        out.push((
            format!("manifest {digest}"),
            format!(
                "{} layers but the config lists {} diff_ids",
                m.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        ));
        return out;
    }
    for (i, (l, want)) in m.layers.iter().zip(&config.rootfs.diff_ids).enumerate() {
        if !good.contains(&l.digest) {
            out.push((
                format!("layer {i} {}", l.digest),
                "blob missing or corrupt".into(),
            ));
            continue;
        }
        let found = match seen.get(&l.digest) {
            Some(d) => d.clone(),
            None => match layer_diff_id(store, &l.digest) {
                Ok(d) => {
                    seen.insert(l.digest.clone(), d.clone());
                    d
                }
                Err(e) => {
                    out.push((
                        format!("layer {i} {}", l.digest),
                        format!("cannot be decompressed: {e}"),
                    ));
                    continue;
                }
            },
        };
        if &found != want {
            out.push((
                format!("layer {i} {}", l.digest),
                format!("decompresses to {found}, the config says {want}"),
            ));
        }
    }
    out
}

fn layer_diff_id(store: &Store, d: &Digest) -> std::io::Result<Digest> {
    let f = fs::File::open(store.blob_path(d))?;
    let (_, dec) = crate::compress::auto_decompress(f)?;
    let mut h = HashingReader::new(dec);
    crate::compress::drain(&mut h)?;
    Ok(h.finish().0)
}

fn read_good(
    store: &Store,
    good: &BTreeSet<Digest>,
    d: &Digest,
    out: &mut Vec<(String, String)>,
    what: &str,
) -> Option<Vec<u8>> {
    if !good.contains(d) {
        out.push((format!("{what} {d}"), "blob missing or corrupt".into()));
        return None;
    }
    let mut bytes = Vec::new();
    match fs::File::open(store.blob_path(d))
        .and_then(|f| f.take(super::MAX_JSON_SIZE).read_to_end(&mut bytes))
    {
        Ok(_) => Some(bytes),
        Err(e) => {
            out.push((format!("{what} {d}"), e.to_string()));
            None
        }
    }
}

/// Every blob reachable from `index.json` (and from containers' images).
pub(crate) fn reachable(store: &Store) -> Result<BTreeSet<Digest>> {
    let mut keep = BTreeSet::new();
    let mut todo: Vec<Digest> = store
        .entries()?
        .into_iter()
        .map(|e| e.descriptor.digest)
        .collect();
    todo.extend(crate::extra_roots(store)?);
    while let Some(d) = todo.pop() {
        if !keep.insert(d.clone()) {
            continue;
        }
        // A manifest that cannot be read means its children are unknown: refuse to collect
        // rather than risk deleting blobs an image needs (fsck says what is wrong).
        let bytes = store.read_json_blob(&d)?;
        let json = |source| Error::OciJson {
            what: format!("manifest {d}"),
            source,
        };
        let sniff = Sniff::parse(&bytes).map_err(json)?;
        if sniff.is_index() {
            let idx = Index::parse(&bytes).map_err(json)?;
            // Every platform's image is kept. Attestations are never pulled, so an index in
            // the store may name them without the store having them: kept only if present.
            todo.extend(
                idx.manifests
                    .into_iter()
                    .filter(|m| !m.is_attestation() || store.has_blob(&m.digest))
                    .map(|m| m.digest),
            );
        } else {
            let m = Manifest::parse(&bytes).map_err(json)?;
            keep.insert(m.config.digest);
            keep.extend(m.layers.into_iter().map(|l| l.digest));
        }
    }
    Ok(keep)
}

pub(super) fn gc(store: &Store) -> Result<GcReport> {
    let _lock = store.exclusive_lock()?;
    // Also hold the index lock: index and cache updates stage small files in hoist/tmp.
    let _index = store.index_lock()?;
    let keep = reachable(store)?;
    let mut report = GcReport::default();
    let blob_dir = store.root.join("blobs/sha256");
    for entry in fs::read_dir(&blob_dir).at(&blob_dir)? {
        let entry = entry.at(&blob_dir)?;
        let name = entry.file_name().to_string_lossy().to_string();
        if Digest::from_hex(&name).is_ok_and(|d| keep.contains(&d)) {
            continue;
        }
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        fs::remove_file(entry.path()).at(entry.path())?;
        for cache in [
            store.hoist_dir().join("layers").join(&name),
            store.hoist_dir().join("index").join(&name),
        ] {
            if cache.exists() {
                fs::remove_file(&cache).at(&cache)?;
            }
        }
        report.blobs_removed += 1;
        report.bytes_freed += size;
    }
    // Indexes of blobs removed earlier (or by hand).
    for p in store.orphan_layer_indexes()? {
        fs::remove_file(&p).at(&p)?;
    }
    // No writer holds the shared lock now, so every staging directory is stale.
    let tmp = store.hoist_dir().join("tmp");
    for entry in fs::read_dir(&tmp).at(&tmp)? {
        let entry = entry.at(&tmp)?;
        let p = entry.path();
        if p.is_dir() {
            fs::remove_dir_all(&p).at(&p)?;
            report.staging_removed += 1;
        } else {
            fs::remove_file(&p).at(&p)?;
        }
    }
    report.partial_containers_removed = crate::container::remove_stale_partials(store)?;
    Ok(report)
}
