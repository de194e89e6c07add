//! The parts of an image config (OCI `config.md` plus Docker's extensions) that hoist reads.
//!
//! A config is always kept as the bytes received (its sha256 is the image ID); this type is only
//! a view for reading.

use serde::Deserialize;

use crate::digest::Digest;

/// A read-only view of an image config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    /// Creation time, RFC 3339.
    #[serde(default)]
    pub created: Option<String>,
    /// Author.
    #[serde(default)]
    pub author: Option<String>,
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default)]
    pub variant: Option<String>,
    /// Docker's comment (set by `import -m`, `commit -m`).
    #[serde(default)]
    pub comment: Option<String>,
    /// Docker version that built the image.
    #[serde(default)]
    pub docker_version: Option<String>,
    /// Docker's parent image ID.
    #[serde(default)]
    pub parent: Option<String>,
    /// The runtime config (`Cmd`, `Env`, …), kept as JSON.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// The layers.
    #[serde(default)]
    pub rootfs: RootFs,
    /// History, oldest first.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub history: Vec<History>,
}

/// `rootfs` of a config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The uncompressed layer digests, base first.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub diff_ids: Vec<Digest>,
}

/// One history entry.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct History {
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// Why a config cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid image config: {0}")]
pub struct ConfigError(#[from] serde_json::Error);

impl ImageConfig {
    /// Parses config bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The platform the config declares.
    pub fn platform(&self) -> crate::platform::Platform {
        crate::platform::Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone().unwrap_or_default(),
        }
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker25_hello_world() {
        let raw = br#"{"architecture":"arm64","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/hello"],"WorkingDir":"/","ArgsEscaped":true,"OnBuild":null},"created":"2023-05-02T16:49:27Z","history":[{"created":"2023-05-02T16:49:27Z","created_by":"COPY hello / # buildkit","comment":"buildkit.dockerfile.v0"},{"created":"2023-05-02T16:49:27Z","created_by":"CMD [\"/hello\"]","comment":"buildkit.dockerfile.v0","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43"]}}"#;
        let c = ImageConfig::parse(raw).unwrap();
        assert_eq!(c.platform().to_string(), "linux/arm64");
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert_eq!(c.history.len(), 2);
        assert!(c.history[1].empty_layer);
    }
}
