//! A registry as the source of a copy: one image resolved (an index narrowed to one platform)
//! and its blobs streamed on demand, each checked against its digest and size as it arrives.

use std::io::Read;

use hoist_core::archive::transport::BlobSource;
use hoist_core::store::Image;
use hoist_format::oci::Descriptor;
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::pull::{Source, parse_config, parse_manifest, resolve_platform, tag_or_digest};

/// One image of a registry repository.
#[derive(Debug)]
pub struct RegistrySource<'a> {
    client: &'a Client,
    repository: String,
    /// The digest the reference resolved to (the index, for a multi-platform image).
    pub digest: hoist_format::Digest,
    /// The image: manifest and config as the registry sent them.
    pub image: Image,
}

impl<'a> RegistrySource<'a> {
    /// Resolves `reference` (a tag or digest; `latest` by default) to one image: from an
    /// index, the entry for `platform` (default: the host's).
    pub fn open(
        client: &'a Client,
        reference: &Reference,
        platform: Option<&Platform>,
    ) -> Result<RegistrySource<'a>> {
        let repo = reference.path();
        let src = Source { client, repo };
        let top = client.get_manifest(repo, &tag_or_digest(reference))?;
        let top_digest = top.digest.clone();
        let (fetched, manifest) = parse_manifest(&src, resolve_platform(&src, top, platform)?)?;
        let w = src.what(&format!("manifest {}", fetched.digest));
        let what = |x: &str| src.what(x);
        if manifest.config.size > hoist_core::store::MAX_JSON_SIZE {
            return Err(Error::InvalidManifest {
                what: w,
                reason: format!("the config is {} bytes: too big", manifest.config.size),
            });
        }
        let mut config_bytes = Vec::new();
        client
            .get_blob(repo, &manifest.config.digest, manifest.config.size)?
            .read_to_end(&mut config_bytes)
            .map_err(|source| Error::Read {
                registry: client.registry().to_string(),
                what: format!("config {} in repository {repo}", manifest.config.digest),
                source,
            })?;
        let found = hoist_format::Digest::of(&config_bytes);
        if found != manifest.config.digest {
            return Err(Error::DigestMismatch {
                what: what(&format!("config {}", manifest.config.digest)),
                expected: manifest.config.digest.clone(),
                found,
            });
        }
        let config = parse_config(&src, &fetched.digest, &manifest, &config_bytes, platform)?;
        Ok(RegistrySource {
            client,
            repository: repo.to_string(),
            digest: top_digest,
            image: Image {
                index: None,
                manifest_digest: fetched.digest.clone(),
                manifest_media_type: fetched.media_type.clone(),
                manifest_bytes: fetched.bytes,
                manifest,
                config_bytes,
                config,
            },
        })
    }
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
