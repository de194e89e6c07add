//! A registry as the source of a copy: one image resolved (an index narrowed to one platform)
//! and its blobs streamed on demand, each checked against its digest and size as it arrives.

use std::io::Read;

use hoist_core::archive::transport::{BlobSource, ImageSet, IndexCopy};
use hoist_core::store::Image;
use hoist_format::media_type;
use hoist_format::oci::Descriptor;
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

use crate::client::{Client, FetchedManifest};
use crate::error::{Error, Result};
use crate::pull::{
    Source, fetch_all_platforms, parse_config, parse_manifest, resolve_platform, tag_or_digest,
};

/// One image of a registry repository, or a multi-platform index with its images.
#[derive(Debug)]
pub struct RegistrySource<'a> {
    client: &'a Client,
    repository: String,
    /// The digest the reference resolved to (the index, for a multi-platform image).
    pub digest: hoist_format::Digest,
    /// The image (manifest and config as the registry sent them), or with `all` the index
    /// and its platforms' images.
    pub set: ImageSet,
}

impl<'a> RegistrySource<'a> {
    /// Resolves `reference` (a tag or digest; `latest` by default) to one image: from an
    /// index, the entry for `platform` (default: the host's); with `all`, the whole index.
    pub fn open(
        client: &'a Client,
        reference: &Reference,
        platform: Option<&Platform>,
        all: bool,
    ) -> Result<RegistrySource<'a>> {
        let repo = reference.path();
        let src = Source { client, repo };
        let top = client.get_manifest(repo, &tag_or_digest(reference))?;
        let top_digest = top.digest.clone();
        let set = if all && media_type::is_index(&top.media_type) {
            let (mut indexes, mut manifests) = (Vec::new(), Vec::new());
            fetch_all_platforms(&src, top, &top_digest, 1, &mut indexes, &mut manifests)?;
            if indexes.len() > 1 {
                return Err(Error::InvalidManifest {
                    what: src.what(&format!("index {top_digest}")),
                    reason: "nested indexes are not copied whole".into(),
                });
            }
            let index = indexes.remove(0);
            let parsed =
                serde_json::from_slice(&index.bytes).map_err(|e| Error::InvalidManifest {
                    what: src.what(&format!("index {top_digest}")),
                    reason: e.to_string(),
                })?;
            let mut images = Vec::new();
            for m in manifests {
                images.push(fetch_image(&src, m, None)?);
            }
            ImageSet {
                index: Some(IndexCopy {
                    descriptor: Descriptor::new(
                        &index.media_type,
                        index.digest.clone(),
                        index.bytes.len() as u64,
                    ),
                    bytes: index.bytes,
                    parsed,
                }),
                images,
            }
        } else {
            let fetched = resolve_platform(&src, top, platform)?;
            ImageSet::single(fetch_image(&src, fetched, platform)?)
        };
        Ok(RegistrySource {
            client,
            repository: repo.to_string(),
            digest: top_digest,
            set,
        })
    }
}

/// An image manifest as fetched, with its config downloaded and checked.
fn fetch_image(
    src: &Source<'_>,
    fetched: FetchedManifest,
    platform: Option<&Platform>,
) -> Result<Image> {
    let (fetched, manifest) = parse_manifest(src, fetched)?;
    if manifest.config.size > hoist_core::store::MAX_JSON_SIZE {
        return Err(Error::InvalidManifest {
            what: src.what(&format!("manifest {}", fetched.digest)),
            reason: format!("the config is {} bytes: too big", manifest.config.size),
        });
    }
    let mut config_bytes = Vec::new();
    src.client
        .get_blob(src.repo, &manifest.config.digest, manifest.config.size)?
        .read_to_end(&mut config_bytes)
        .map_err(|source| Error::Read {
            registry: src.client.registry().to_string(),
            what: format!(
                "config {} in repository {}",
                manifest.config.digest, src.repo
            ),
            source,
        })?;
    let found = hoist_format::Digest::of(&config_bytes);
    if found != manifest.config.digest {
        return Err(Error::DigestMismatch {
            what: src.what(&format!("config {}", manifest.config.digest)),
            expected: manifest.config.digest.clone(),
            found,
        });
    }
    let config = parse_config(src, &fetched.digest, &manifest, &config_bytes, platform)?;
    Ok(Image {
        index: None,
        manifest_digest: fetched.digest.clone(),
        manifest_media_type: fetched.media_type.clone(),
        manifest_bytes: fetched.bytes,
        manifest,
        config_bytes,
        config,
    })
}

impl BlobSource for RegistrySource<'_> {
    fn open_blob(&self, desc: &Descriptor) -> hoist_core::Result<Box<dyn Read + Send + '_>> {
        let what = format!(
            "{}/{}: blob {}",
            self.client.registry(),
            self.repository,
            desc.digest
        );
        let reader = self
            .client
            .get_blob(&self.repository, &desc.digest, desc.size)
            .map_err(|e| hoist_core::Error::Read {
                what: what.clone(),
                source: std::io::Error::other(e),
            })?;
        Ok(Box::new(hoist_core::hashio::VerifyingReader::new(
            reader,
            desc.digest.clone(),
            desc.size,
            what,
        )))
    }
}
