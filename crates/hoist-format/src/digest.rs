//! Content digests (`sha256:<64 hex>`), the identity of every blob, layer and image.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// Length of a sha256 digest in lowercase hex.
const SHA256_HEX_LEN: usize = 64;

/// A `sha256:<hex>` content digest. Other algorithms are refused with a clear error: every
/// archive and registry hoist interoperates with uses sha256, and a blob store keyed by one
/// algorithm cannot silently accept another (moby#48241).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

/// Why a string is not a digest hoist accepts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestError {
    /// The string has no `algorithm:` prefix.
    #[error("digest {0:?} has no algorithm prefix (expected sha256:<64 hex digits>)")]
    NoAlgorithm(String),
    /// The algorithm is not sha256.
    #[error("digest {0:?} uses an unsupported algorithm (only sha256 is supported)")]
    UnsupportedAlgorithm(String),
    /// The hex part is malformed.
    #[error("digest {0:?} is malformed (expected sha256:<64 lowercase hex digits>)")]
    Malformed(String),
}

impl Digest {
    /// Parses `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::NoAlgorithm(s.to_string()));
        };
        if alg != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm(s.to_string()));
        }
        Self::from_hex(hex).map_err(|_| DigestError::Malformed(s.to_string()))
    }

    /// Builds a digest from the bare 64-digit lowercase hex of a sha256.
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        if hex.len() != SHA256_HEX_LEN
            || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(DigestError::Malformed(hex.to_string()));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(bytes);
        h.finish()
    }

    /// The 64 hex digits, without `sha256:`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as docker shows short image IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// The digest of the empty byte string (a zero-byte layer file).
    pub fn empty() -> Self {
        Self::of(b"")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental sha256 hasher that yields a [`Digest`].
#[derive(Clone, Default)]
pub struct Sha256 {
    inner: sha2::Sha256,
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256")
    }
}

impl Sha256 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.inner.finalize()),
        }
    }
}

/// The ChainID of a stack of layers (image-spec `identity/chainid.go`): the first diff_id, then
/// `sha256(prev + " " + next)` over the `sha256:<hex>` strings.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let s = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d = Digest::parse(s).unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(d, Digest::empty());
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn rejects() {
        for bad in [
            "e3b0",
            "sha512:abcd",
            "sha256:XYZ",
            "sha256:",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chain_id_matches_image_spec() {
        // Two-layer chain from the image-spec example: chain(L0|L1) = sha256("<L0> <L1>").
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
