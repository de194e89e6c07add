//! `import`: a root filesystem tar becomes a new one-layer image, configured like `docker import`.
//!
//! The (decompressed) input is stored as the layer exactly as given, so its diff_id is the
//! sha256 of the decompressed input, as with docker. While it streams into the store every
//! entry is checked: an entry that would land outside the root (`..`, a hardlink out, a path
//! through a symlink of the same tar) is refused with its name, and nothing is stored.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use hoist_format::Digest;
use hoist_format::change::{Compat, ImportConfigOptions, import_config};
use hoist_format::config::ImageConfig;
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

use crate::compress::{Compression, Peeked};
use crate::error::{Error, Result};
use crate::hashio::{ProgressReader, TeeReader};
use crate::layer::Action;
use crate::store::Store;
use crate::tar::{EntryKind, show_name};

/// Options of [`import`].
#[derive(Default)]
pub struct ImportOptions<'a> {
    /// `--change` instructions (CMD, ENV, …).
    pub changes: Vec<String>,
    /// The history comment (`--message`); default docker's `Imported from -`.
    pub message: Option<String>,
    /// The image's platform; default the host's.
    pub platform: Option<Platform>,
    /// Name for the new image; untagged when `None`.
    pub name: Option<Reference>,
    /// Creation time, RFC 3339 (the caller's clock; tests fix it).
    pub created: String,
    /// Called with input bytes read so far.
    pub progress: Option<&'a dyn Fn(u64)>,
}

impl std::fmt::Debug for ImportOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("changes", &self.changes)
            .field("name", &self.name)
            .finish()
    }
}

/// What [`import`] made.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The new image's ID.
    pub id: Digest,
    /// The layer's diff_id.
    pub diff_id: Digest,
    /// The name it got.
    pub name: Option<Reference>,
    /// The ID of the image the name was taken from, if any.
    pub moved_from: Option<Digest>,
}

/// Imports a root filesystem tar (plain, gzip, zstd, xz or bzip2) as a new image.
pub fn import(store: &Store, input: impl Read, opts: &ImportOptions<'_>) -> Result<ImportReport> {
    // Validate the config options before reading anything.
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let probe = import_config(&ImportConfigOptions {
        changes: &opts.changes,
        comment: opts.message.as_deref(),
        platform: &platform,
        created: &opts.created,
        diff_id: &Digest::empty(),
        docker_version: None,
        compat: Compat::default(),
    });
    if let Err(e) = probe {
        return Err(Error::Conflict(e.to_string()));
    }

    let _ingest = store.ingest_lock()?;
    let staging = store.staging()?;
    let noop = |_: u64| {};
    let input = ProgressReader::new(input, opts.progress.unwrap_or(&noop));
    let peeked = Peeked::new(input).map_err(|source| Error::Read {
        what: "the input".into(),
        source,
    })?;
    if peeked.is_empty() {
        return Err(Error::InvalidArchive("the input is empty".into()));
    }
    let compression = peeked.compression();
    let decoded = crate::compress::decoder(compression, peeked).map_err(|source| Error::Read {
        what: "the input".into(),
        source,
    })?;

    // One pass: the tar reader walks the entries (checking each) while every byte it pulls is
    // staged as the layer.
    let (pipe_r, pipe_w) = io::pipe().map_err(|source| Error::Io {
        path: "pipe".into(),
        source,
    })?;
    let staged = std::thread::scope(|s| -> Result<_> {
        let stager = s.spawn(move || {
            staging
                .stage(pipe_r, "the imported layer")
                .map(|st| (st, staging))
        });
        let mut tee = TeeReader::new(
            decoded,
            io::BufWriter::with_capacity(crate::compress::IO_BUF_SIZE, pipe_w),
        );
        let checked = check_entries(&mut tee);
        // The rest (end-of-archive padding, anything after it) belongs to the layer too.
        let rest = checked.and_then(|()| {
            crate::compress::drain(&mut tee)
                .map(|_| ())
                .map_err(|source| Error::Read {
                    what: "the input".into(),
                    source,
                })
        });
        let (_, mut w) = tee.into_inner();
        let flushed = w.flush();
        drop(w);
        let stage_result = stager.join().expect("the staging thread does not panic");
        rest?;
        flushed.map_err(|source| Error::Read {
            what: "the input".into(),
            source,
        })?;
        stage_result
    })?;
    let (layer, staging) = staged;
    let diff_id = layer.digest.clone();
    // The layer as create and export will apply it: a hard link whose target is gone, a parent
    // that is not a directory, a symlink loop refuse the import.
    let layers = [(layer.clone(), diff_id.clone())];
    crate::flatten::final_tree(
        &crate::archive::load::StagedLayers(&layers),
        &crate::flatten::FlattenOptions::default(),
    )
    .map_err(|e| Error::InvalidArchive(format!("the input is not a valid layer: {e}")))?;

    let config_bytes = import_config(&ImportConfigOptions {
        changes: &opts.changes,
        comment: opts.message.as_deref(),
        platform: &platform,
        created: &opts.created,
        diff_id: &diff_id,
        docker_version: None,
        compat: Compat::default(),
    })
    .map_err(|e| Error::Conflict(e.to_string()))?;
    let config =
        ImageConfig::parse(&config_bytes).map_err(|e| Error::InvalidArchive(e.to_string()))?;
    let manifest_bytes = crate::archive::load::synthesize_manifest(
        &config_bytes,
        &config,
        &[(Compression::None, layer.digest.clone(), layer.size)],
    )?;
    let mut staging = staging;
    let new = staging.commit_image(
        &[&layer],
        &manifest_bytes,
        &config_bytes,
        opts.name.as_ref(),
    )?;
    let (id, moved_from) = (new.id, new.moved_from);
    Ok(ImportReport {
        id,
        diff_id,
        name: opts.name.clone(),
        moved_from,
    })
}

/// Walks the tar entries with the layer rules every reader applies, and refuses an entry that
/// would be written through a symlink of the same tar (it would land wherever that points).
fn check_entries(input: &mut impl Read) -> Result<()> {
    let mut symlinks: HashSet<Vec<u8>> = HashSet::new();
    crate::layer::check(input, |e, action| {
        let Action::Put { parents, base } = action else {
            return Ok(());
        };
        let mut path = parents.join(&b'/');
        let through = (0..=path.len())
            .take_while(|_| !symlinks.is_empty())
            .filter(|&i| i == path.len() || path[i] == b'/')
            .find(|&i| i > 0 && symlinks.contains(&path[..i]));
        if let Some(i) = through {
            return Err(format!(
                "would be written through the symlink {:?} of the same tar",
                show_name(&path[..i])
            ));
        }
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(base);
        if e.kind == EntryKind::Symlink {
            symlinks.insert(path);
        } else {
            symlinks.remove(&path);
        }
        Ok(())
    })
    .map_err(|e| Error::InvalidArchive(format!("the input is not a valid layer: {e}")))?;
    Ok(())
}
