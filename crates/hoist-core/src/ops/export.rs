//! `export` of an image: its merged filesystem as one flat tar, streamed from the layer blobs
//! (of the store, or of an archive or layout read in place: any [`LayerSource`]).

use std::io::{self, Read, Write};

use crate::error::Result;
use crate::flatten::{FlattenOptions, FlattenStats, LayerSource, flatten};
use crate::store::{Image, Store};

/// An image's layers, opened decompressed from the store.
#[derive(Debug)]
pub struct StoreLayers<'a> {
    store: &'a Store,
    image: &'a Image,
}

impl<'a> StoreLayers<'a> {
    /// The layers of `image`.
    pub fn new(store: &'a Store, image: &'a Image) -> Self {
        StoreLayers { store, image }
    }
}

impl LayerSource for StoreLayers<'_> {
    fn layer_count(&self) -> usize {
        self.image.manifest.layers.len()
    }

    fn open_layer(&self, index: usize) -> io::Result<Box<dyn Read + '_>> {
        let desc = &self.image.manifest.layers[index];
        let f = self
            .store
            .open_blob(&desc.digest)
            .map_err(io::Error::other)?;
        let (_, r) = crate::compress::auto_decompress(f)?;
        Ok(r)
    }

    fn open_layer_file(&self, index: usize) -> io::Result<Option<std::fs::File>> {
        let desc = &self.image.manifest.layers[index];
        let path = self.store.blob_path(&desc.digest);
        uncompressed_file(&path)
    }

    fn layer_index(
        &self,
        index: usize,
    ) -> io::Result<Option<std::sync::Arc<crate::layerindex::LayerIndex>>> {
        let desc = &self.image.manifest.layers[index];
        let idx = self
            .store
            .layer_index(&desc.digest)
            .map_err(io::Error::other)?;
        Ok(Some(idx))
    }
}

/// `path` opened, when its bytes are not compressed.
pub(crate) fn uncompressed_file(path: &std::path::Path) -> io::Result<Option<std::fs::File>> {
    use std::io::Seek;
    let mut f = std::fs::File::open(path)?;
    let peeked = crate::compress::Peeked::new(&mut f)?;
    if peeked.compression() != crate::compress::Compression::None {
        return Ok(None);
    }
    f.rewind()?;
    Ok(Some(f))
}

/// Writes the flat root filesystem of an image's `layers` to `out`: no whiteouts, owners,
/// modes, devices, xattrs and hardlinks exactly as the layers say, deterministic.
pub fn export_image(
    layers: &dyn LayerSource,
    out: impl Write,
    opts: &FlattenOptions<'_>,
) -> Result<FlattenStats> {
    Ok(flatten(layers, out, opts)?)
}
