//! `hoist inspect`.

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{Ctx, open};
use crate::ui::json;

/// Show images as a JSON array shaped like `docker inspect`.
///
/// An image may be in an archive or layout, read in place without loading it (the store is
/// opened only for an image of the store): docker-archive:FILE[:NAME],
/// oci-archive:FILE[:REF], oci:DIR[:REF]. Its RepoTags are its names in the archive.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The platform to pick from an archive holding several (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Images (names or IDs), or docker-archive:FILE[:NAME], oci-archive:FILE[:REF],
    /// oci:DIR[:REF]
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect<'a> {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: String,
    container: String,
    container_config: Option<&'a RawValue>,
    docker_version: String,
    author: String,
    config: Option<&'a RawValue>,
    architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    variant: String,
    os: String,
    size: u64,
    virtual_size: u64,
    #[serde(rename = "RootFS")]
    root_fs: RootFs,
    metadata: Metadata,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RootFs {
    #[serde(rename = "Type")]
    kind: String,
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    last_tag_time: String,
}

/// The raw fields of a config that are shown verbatim (key order kept).
#[derive(serde::Deserialize)]
struct RawParts<'a> {
    #[serde(borrow, default)]
    config: Option<&'a RawValue>,
    #[serde(borrow, default)]
    container_config: Option<&'a RawValue>,
    #[serde(default)]
    container: Option<String>,
}

/// Runs `hoist inspect`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let mut found = Vec::new();
    for spec in &args.images {
        found.push(open::image(ctx, spec, args.platform.as_deref())?);
    }
    let mut docs = Vec::new();
    for opened in &found {
        let img = &opened.image;
        // Sorted, as docker's reference store lists an image's tags (an archive keeps them in
        // its own order).
        let mut names = opened.names.clone();
        names.sort();
        let raw: RawParts<'_> = serde_json::from_slice(&img.config_bytes)
            .with_context(|| format!("config of {}", img.id()))?;
        let size = hoist_core::ops::image_size(opened)?;
        let c = &img.config;
        let doc = Inspect {
            id: img.id().to_string(),
            repo_tags: names,
            repo_digests: Vec::new(),
            parent: c.parent.clone().unwrap_or_default(),
            comment: c.comment.clone().unwrap_or_default(),
            created: c.created.clone().unwrap_or_default(),
            container: raw.container.unwrap_or_default(),
            container_config: raw.container_config,
            docker_version: c.docker_version.clone().unwrap_or_default(),
            author: c.author.clone().unwrap_or_default(),
            config: raw.config,
            architecture: c.architecture.clone(),
            variant: c.variant.clone().unwrap_or_default(),
            os: c.os.clone(),
            size,
            virtual_size: size,
            root_fs: RootFs {
                kind: "layers".into(),
                layers: c.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
            },
            metadata: Metadata {
                last_tag_time: "0001-01-01T00:00:00Z".into(),
            },
        };
        docs.push(serde_json::to_string(&doc)?);
    }
    let text = format!("[{}]", docs.join(","));
    writeln!(std::io::stdout().lock(), "{}", json::indent(&text, "    "))?;
    Ok(())
}
