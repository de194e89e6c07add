//! Platforms (`os/arch[/variant]`): parsing `--platform` and choosing from an index.

use std::fmt;

/// A platform as OCI indexes and image configs describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// `v7`, `v8`, ... or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

/// A `--platform` value that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7")]
pub struct PlatformError(pub String);

impl Platform {
    /// Parses `os/arch[/variant]` (also a bare `os`, which means the host architecture), with
    /// containerd's normalization of architecture aliases (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(s: &str) -> Result<Self, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(PlatformError(s.to_string()));
        }
        let os = parts[0].to_ascii_lowercase();
        let (architecture, variant) = match parts.len() {
            1 => (Self::host().architecture, Self::host().variant),
            2 => normalize_arch(parts[1], ""),
            _ => normalize_arch(parts[1], parts[2]),
        };
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// The platform this binary was built for, in GOARCH spelling.
    pub fn host() -> Self {
        let (architecture, variant) = normalize_arch(std::env::consts::ARCH, "");
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture,
            variant,
        }
    }

    /// Whether an image of platform `other` runs here when `self` is asked for. The variant
    /// only matters when both name one (arm64 images rarely do).
    pub fn matches(&self, other: &Platform) -> bool {
        let (oa, ov) = normalize_arch(&other.architecture, &other.variant);
        self.os == other.os.to_ascii_lowercase()
            && self.architecture == oa
            && (self.variant.is_empty() || ov.is_empty() || self.variant == ov)
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.to_ascii_lowercase();
    match arch.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant),
        "aarch64" | "arm64" => {
            let v = if variant == "8" || variant == "v8" {
                String::new()
            } else {
                variant
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "i386" | "x86" => ("386".into(), variant),
        _ => (arch, variant),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        for (input, want) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm/v7", "linux/arm/v7"),
            ("Linux/AMD64", "linux/amd64"),
        ] {
            assert_eq!(Platform::parse(input).unwrap().to_string(), want, "{input}");
        }
        for bad in ["", "linux/", "/amd64", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching() {
        let want = Platform::parse("linux/arm/v7").unwrap();
        assert!(want.matches(&Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: "v7".into()
        }));
        assert!(!want.matches(&Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: "v6".into()
        }));
        assert!(!want.matches(&Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: String::new()
        }));
    }
}
