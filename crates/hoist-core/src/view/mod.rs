//! Looking inside an image without running it or loading it: the image of the store or of an
//! archive (`docker-archive:FILE[:NAME]`, `oci-archive:FILE[:REF]`, `oci:DIR[:REF]`, read in
//! place), its merged tree as of any layer computed from the layer indexes (no layer byte is
//! read to list it), and the content of one file read from where its entry starts.
//!
//! - [`Location`]: what the command line names, parsed once for every command;
//! - [`OpenedImage`]: the image, its layer blobs and their indexes; a
//!   [`LayerSource`], so export, analyze and diff work on it;
//! - [`lookup`]: paths resolved inside the image's root (symlinks never leave it);
//! - [`content`]: one entry's content.

pub mod content;
pub mod lookup;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hoist_format::platform::Platform;

use crate::archive::transport::ArchiveSource;
use crate::blobfile::BlobFile;
use crate::compress::Compression;
use crate::error::{Error, IoContext, Result};
use crate::flatten::{FinalTree, FlattenOptions, LayerSource};
use crate::layerindex::LayerIndex;
use crate::store::{Image, Store};

/// An image named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An image of the store (name, ID or digest).
    Store(String),
    /// `docker-archive:FILE[:NAME]`.
    DockerArchive(PathBuf, Option<String>),
    /// `oci-archive:FILE[:REF]`.
    OciArchive(PathBuf, Option<String>),
    /// `oci:DIR[:REF]`.
    OciDir(PathBuf, Option<String>),
}

impl Location {
    /// Parses `docker-archive:`, `oci-archive:` and `oci:` names (skopeo's transports); any
    /// other text names an image of the store (`hoist:NAME` too).
    pub fn parse(s: &str) -> Result<Location> {
        let bad = |why: &str| Error::InvalidArgument(format!("{s:?}: {why}"));
        let Some((kind, rest)) = s.split_once(':') else {
            return Ok(Location::Store(s.to_string()));
        };
        let path_ref = || -> Result<(PathBuf, Option<String>)> {
            let (path, r) = match rest.split_once(':') {
                Some((p, r)) => (p, Some(r.to_string()).filter(|r| !r.is_empty())),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(bad("no path"));
            }
            Ok((PathBuf::from(path), r))
        };
        // An OCI layout's REF is an `org.opencontainers.image.ref.name`: what the image-spec
        // grammar does not allow is refused, as skopeo refuses it.
        let oci_path_ref = || -> Result<(PathBuf, Option<String>)> {
            let (p, r) = path_ref()?;
            if let Some(r) = &r {
                hoist_format::oci::check_ref_name(r).map_err(|e| bad(&e.to_string()))?;
            }
            Ok((p, r))
        };
        Ok(match kind {
            "docker-archive" => {
                let (p, r) = path_ref()?;
                Location::DockerArchive(p, r)
            }
            "oci-archive" => {
                let (p, r) = oci_path_ref()?;
                Location::OciArchive(p, r)
            }
            "oci" => {
                let (p, r) = oci_path_ref()?;
                Location::OciDir(p, r)
            }
            "hoist" if !rest.is_empty() => Location::Store(rest.to_string()),
            _ => Location::Store(s.to_string()),
        })
    }

    /// Whether it is an image of the store.
    pub fn is_store(&self) -> bool {
        matches!(self, Location::Store(_))
    }
}

/// Where an [`OpenedImage`]'s blobs are.
#[derive(Debug)]
enum Blobs {
    Store(Store),
    Archive(Box<ArchiveSource>),
}

/// An image opened to be looked at: its manifest and config, its layer blobs, and their
/// indexes (the store's, or built in memory on first use for an archive: nothing is written).
#[derive(Debug)]
pub struct OpenedImage {
    /// The image.
    pub image: Image,
    /// Its names (in the store, or in the archive).
    pub names: Vec<String>,
    /// What the user named, for messages.
    pub what: String,
    blobs: Blobs,
    indexes: Vec<OnceLock<Arc<LayerIndex>>>,
}

impl OpenedImage {
    /// Opens an image of the store.
    pub fn from_store(store: &Store, spec: &str) -> Result<OpenedImage> {
        let (image, names) = store.resolve(spec)?;
        Ok(Self::new(
            image,
            names.iter().map(|n| n.familiar()).collect(),
            spec.to_string(),
            Blobs::Store(store.clone()),
        ))
    }

    /// Opens what `loc` names; `store` is opened by the caller only for a store image (an
    /// archive is read without one). A compressed archive file is decompressed once into an
    /// unnamed temporary file (in `$TMPDIR`), since its layers are read in place.
    pub fn open(
        loc: &Location,
        store: Option<&Store>,
        platform: Option<&Platform>,
    ) -> Result<OpenedImage> {
        let (src, what) = match loc {
            Location::Store(spec) => {
                let store = store.ok_or_else(|| {
                    Error::InvalidArgument(format!("{spec}: no store to look in"))
                })?;
                return Self::from_store(store, spec);
            }
            Location::DockerArchive(p, r) | Location::OciArchive(p, r) => {
                let what = p.display().to_string();
                let file = archive_file(p)?;
                let docker = matches!(loc, Location::DockerArchive(..));
                // Legacy branch: `_to_read` also reads a docker 1.x (v1) archive (`repositories`
                // only), synthesizing its config as `load` does.
                let src = ArchiveSource::open_archive_file_to_read(
                    &file,
                    &what,
                    r.as_deref(),
                    platform,
                    docker,
                )?;
                (src, what)
            }
            Location::OciDir(p, r) => {
                let src = ArchiveSource::open_layout(p, r.as_deref(), platform, false)?;
                (src, p.display().to_string())
            }
        };
        let image = src.set.first().clone();
        let names = src.names.iter().map(|n| n.familiar()).collect();
        Ok(Self::new(image, names, what, Blobs::Archive(Box::new(src))))
    }

    fn new(image: Image, names: Vec<String>, what: String, blobs: Blobs) -> OpenedImage {
        let indexes = image
            .manifest
            .layers
            .iter()
            .map(|_| OnceLock::new())
            .collect();
        OpenedImage {
            image,
            names,
            what,
            blobs,
            indexes,
        }
    }

    /// The store it is in, if it is a store image.
    pub fn store(&self) -> Option<&Store> {
        match &self.blobs {
            Blobs::Store(s) => Some(s),
            Blobs::Archive(_) => None,
        }
    }

    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.image.manifest.layers.len()
    }

    /// Layer `layer`'s blob, as stored.
    pub fn blob(&self, layer: usize) -> Result<BlobFile> {
        let desc = self.layer_desc(layer)?;
        match &self.blobs {
            Blobs::Store(s) => {
                let path = s.blob_path(&desc.digest);
                BlobFile::whole(s.open_blob(&desc.digest)?).at(&path)
            }
            Blobs::Archive(a) => a.blob_file(&desc.digest),
        }
    }

    fn layer_desc(&self, layer: usize) -> Result<&hoist_format::oci::Descriptor> {
        self.image.manifest.layers.get(layer).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{}: no layer {layer} (the image has {} layers, 0 to {})",
                self.what,
                self.layers(),
                self.layers().saturating_sub(1)
            ))
        })
    }

    /// Layer `layer`'s index: the store's (built and kept on first use), or for an archive
    /// built in memory once.
    pub fn layer_index(&self, layer: usize) -> Result<Arc<LayerIndex>> {
        let desc = self.layer_desc(layer)?;
        if let Some(i) = self.indexes[layer].get() {
            return Ok(i.clone());
        }
        let index = match &self.blobs {
            Blobs::Store(s) => s.layer_index(&desc.digest)?,
            Blobs::Archive(_) => {
                let blob = self.blob(layer)?;
                let index = crate::store::index_blob(blob, &desc.digest).map_err(|e| match e {
                    crate::store::IndexBlobError::Io(source) => Error::Read {
                        what: format!("{}: layer {layer}", self.what),
                        source,
                    },
                    crate::store::IndexBlobError::Index(e) => Error::InvalidArchive(format!(
                        "{}: layer {layer} ({}): {e}",
                        self.what, desc.digest
                    )),
                })?;
                Arc::new(index)
            }
        };
        Ok(self.indexes[layer].get_or_init(|| index).clone())
    }

    /// The merged tree of layers `0..count` (every layer: [`OpenedImage::layers`]), from the
    /// layer indexes.
    pub fn tree(&self, count: usize) -> Result<FinalTree> {
        let prefix = Prefix { image: self, count };
        Ok(crate::flatten::final_tree(
            &prefix,
            &FlattenOptions::default(),
        )?)
    }

    /// The stream of layer `layer`'s uncompressed tar from `offset` on.
    pub fn layer_stream_at(&self, layer: usize, offset: u64) -> Result<Box<dyn Read>> {
        use std::io::Seek;
        let what = || format!("{}: layer {layer}", self.what);
        let read_err = |source| Error::Read {
            what: what(),
            source,
        };
        let mut blob = self.blob(layer)?;
        let mut head = [0u8; 6];
        let n = blob.read_at(&mut head, 0).map_err(read_err)?;
        let compression = Compression::sniff(&head[..n]);
        if compression == Compression::None {
            blob.seek(io::SeekFrom::Start(offset)).map_err(read_err)?;
            return Ok(Box::new(blob));
        }
        // From the nearest restart point before `offset` when the index recorded them.
        let index = self.layer_index(layer)?;
        if !index.checkpoints.is_empty()
            && let Ok(cps) = crate::seekable::Checkpoints::parse(&index.checkpoints)
        {
            let at = crate::seekable::open_at(blob, compression, &cps, offset).map_err(read_err)?;
            return Ok(Box::new(at));
        }
        let mut dec = crate::compress::decoder(compression, blob).map_err(read_err)?;
        let skipped = io::copy(&mut (&mut dec).take(offset), &mut io::sink()).map_err(read_err)?;
        if skipped != offset {
            return Err(read_err(io::Error::from(io::ErrorKind::UnexpectedEof)));
        }
        Ok(dec)
    }
}

/// The decompressed archive file at `p`: the file itself when it is an uncompressed regular
/// file, else an unnamed temporary copy of its decompressed bytes (a compressed archive, or a
/// pipe such as `/dev/stdin`, whose bytes cannot be read in place).
fn archive_file(p: &Path) -> Result<File> {
    let file = File::open(p).at(p)?;
    if file.metadata().at(p)?.is_file() {
        let mut head = [0u8; 6];
        let n = {
            use std::os::unix::fs::FileExt;
            file.read_at(&mut head, 0).at(p)?
        };
        if Compression::sniff(&head[..n]) == Compression::None {
            return Ok(file);
        }
    }
    let peeked = crate::compress::Peeked::new(file).at(p)?;
    let outer = peeked.compression();
    let mut tmp = crate::store::anonymous_file_in(&std::env::temp_dir())?;
    let mut dec = crate::compress::decoder(outer, peeked).at(p)?;
    let read_err = |source| Error::Read {
        what: format!("{} ({outer:?}-compressed)", p.display()),
        source,
    };
    io::copy(&mut dec, &mut tmp).map_err(read_err)?;
    io::Seek::rewind(&mut tmp).map_err(read_err)?;
    Ok(tmp)
}

/// The first `count` layers of an image.
struct Prefix<'a> {
    image: &'a OpenedImage,
    count: usize,
}

impl LayerSource for Prefix<'_> {
    fn layer_count(&self) -> usize {
        self.count
    }
    fn open_layer(&self, index: usize) -> io::Result<Box<dyn Read + '_>> {
        self.image.open_layer(index)
    }
    fn layer_index(&self, index: usize) -> io::Result<Option<Arc<LayerIndex>>> {
        LayerSource::layer_index(self.image, index)
    }
}

impl LayerSource for OpenedImage {
    fn layer_count(&self) -> usize {
        self.layers()
    }

    fn open_layer(&self, index: usize) -> io::Result<Box<dyn Read + '_>> {
        let r = self.layer_stream_at(index, 0).map_err(io::Error::other)?;
        Ok(r)
    }

    fn open_layer_file(&self, index: usize) -> io::Result<Option<File>> {
        match &self.blobs {
            Blobs::Store(s) => {
                let desc = &self.image.manifest.layers[index];
                crate::ops::export::uncompressed_file(&s.blob_path(&desc.digest))
            }
            Blobs::Archive(_) => Ok(None),
        }
    }

    fn layer_index(&self, index: usize) -> io::Result<Option<Arc<LayerIndex>>> {
        OpenedImage::layer_index(self, index)
            .map(Some)
            .map_err(io::Error::other)
    }
}
