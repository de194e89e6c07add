//! A registry as the source of a copy: one image resolved (an index narrowed to one platform)
//! and its blobs streamed on demand, each checked against its digest and size as it arrives.

use std::io::Read;

use hoist_core::archive::transport::BlobSource;
use hoist_core::store::Image;
use hoist_format::config::ImageConfig;
use hoist_format::media_type;
use hoist_format::oci::{Descriptor, Index, Manifest};
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

use crate::client::{Client, FetchedManifest};
use crate::error::{Error, Result};

/// Indexes nested deeper than this are refused (real ones have one level).
const MAX_INDEX_DEPTH: usize = 4;

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
        let tag_or_digest = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => hoist_format::reference::DEFAULT_TAG.to_string(),
        };
        let top = client.get_manifest(repo, &tag_or_digest)?;
        let what = |w: &str| format!("{}/{repo}: {w}", client.registry());
        let mut fetched: FetchedManifest = top.clone();
        let mut depth = 0;
        while media_type::is_index(&fetched.media_type) {
            depth += 1;
            if depth > MAX_INDEX_DEPTH {
                return Err(Error::InvalidManifest {
                    what: what(&format!("index {}", top.digest)),
                    reason: "indexes nested too deeply".into(),
                });
            }
            let w = what(&format!("index {}", fetched.digest));
            let index: Index = parse(&fetched.bytes, &w)?;
            let chosen = crate::pull::choose_platform(&index.manifests, platform, &w)?;
            let next = client.get_manifest(repo, &chosen.digest.to_string())?;
            if next.bytes.len() as u64 != chosen.size || next.digest != chosen.digest {
                return Err(Error::DigestMismatch {
                    what: what(&format!("manifest {}", chosen.digest)),
                    expected: chosen.digest.clone(),
                    found: next.digest,
                });
            }
            fetched = next;
        }
        let w = what(&format!("manifest {}", fetched.digest));
        let manifest: Manifest = parse(&fetched.bytes, &w)?;
        if manifest.schema_version != 2 {
            return Err(Error::InvalidManifest {
                what: w,
                reason: format!(
                    "schema version {} (only 2 is supported)",
                    manifest.schema_version
                ),
            });
        }
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
        let config = ImageConfig::parse(&config_bytes).map_err(|e| Error::InvalidManifest {
            what: what(&format!("config {}", manifest.config.digest)),
            reason: e.to_string(),
        })?;
        if let Some(p) = platform
            && !p.matches(&config.platform())
        {
            return Err(Error::NoPlatform {
                what: w,
                wanted: p.to_string(),
                available: vec![config.platform().to_string()],
            });
        }
        Ok(RegistrySource {
            client,
            repository: repo.to_string(),
            digest: top.digest,
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

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidManifest {
        what: what.to_string(),
        reason: e.to_string(),
    })
}
