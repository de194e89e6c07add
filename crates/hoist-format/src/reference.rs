//! Docker image references (`busybox`, `user/img:tag`, `localhost:5000/x@sha256:…`), parsed,
//! normalized and displayed exactly as docker's `distribution/reference` package does it
//! (`ParseNormalizedNamed`, `TagNameOnly`, `FamiliarString`).
//!
//! The grammar (from `reference.go`; the regular expressions of `regexp.go` are hand-written
//! here as small matchers):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain "/"] remote-name
//! domain           := host [":" port-number]
//! host             := domain-name | "[" ipv6-hex-and-colons "]"
//! domain-name      := domain-component ["." domain-component]*
//! domain-component := /[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]/
//! port-number      := /[0-9]+/
//! remote-name      := path-component ["/" path-component]*
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" /[0-9a-fA-F]{32,}/   (hoist accepts only sha256)
//! ```
//!
//! Normalization adds the Docker Hub domain `docker.io` when the first component does not look
//! like a host (it has no `.` or `:`, is not `localhost` and is all lowercase), maps the legacy
//! `index.docker.io` to `docker.io`, and puts single-component Hub names under `library/`.
//! The *familiar* form (what `docker images` shows) undoes that: `docker.io/library/busybox`
//! is shown as `busybox`.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The domain of Docker Hub, added to names without a registry host.
pub const DEFAULT_DOMAIN: &str = "docker.io";

/// The Docker Hub domain of the v1 "Docker Index", still accepted and rewritten to
/// [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";

/// `localhost` is always a domain, even though it has no `.` or `:`.
const LOCALHOST: &str = "localhost";

/// Namespace of the official images on Docker Hub: `ubuntu` is `docker.io/library/ubuntu`.
const OFFICIAL_REPO_PREFIX: &str = "library/";

/// The tag docker assumes when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

/// Maximum length in bytes of a repository path (the name without its domain), as docker's
/// `RepositoryNameTotalLengthMax`. For Hub images the `library/` prefix counts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Maximum length of a tag (`[\w][\w.-]{0,127}`).
const TAG_LENGTH_MAX: usize = 128;

/// Minimum number of hex digits docker's reference grammar accepts in a digest (128 bits),
/// before the algorithm-specific check.
const DIGEST_HEX_MIN: usize = 32;

/// Length of a full image ID (a sha256 in hex).
const FULL_ID_LEN: usize = 64;

/// A normalized docker image reference: `domain/path[:tag][@digest]`.
///
/// Built only by [`Reference::parse_normalized`] (or [`FromStr`]), so every value satisfies
/// docker's grammar. [`Display`](fmt::Display) gives the full form
/// (`docker.io/library/busybox:latest`), [`Reference::familiar`] the short one (`busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a docker image reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The string does not follow the reference grammar (docker's `ErrReferenceInvalidFormat`).
    #[error("invalid reference format: {input:?}")]
    InvalidFormat {
        /// The string given to the parser.
        input: String,
    },
    /// The repository name has uppercase letters (docker's `ErrNameContainsUppercase`).
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    Uppercase {
        /// The string given to the parser.
        input: String,
        /// The offending repository name, as docker reports it (`library/Foo` for `Foo`).
        name: String,
    },
    /// The string is 64 lowercase hex digits: that is an image ID, never a repository name.
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexId {
        /// The string given to the parser.
        input: String,
    },
    /// The repository path is longer than [`NAME_TOTAL_LENGTH_MAX`] (docker's `ErrNameTooLong`).
    #[error("repository name must not be more than {max} characters: {input:?}", max = NAME_TOTAL_LENGTH_MAX)]
    NameTooLong {
        /// The string given to the parser.
        input: String,
    },
    /// The `@digest` part is well-formed for docker's grammar but not a sha256 digest hoist
    /// accepts: another algorithm, or not exactly 64 lowercase hex digits.
    #[error("invalid digest in reference {input:?}: {reason}")]
    Digest {
        /// The string given to the parser.
        input: String,
        /// What is wrong with the digest.
        reason: DigestError,
    },
}

impl Reference {
    /// Parses a reference the way the docker CLI and daemon parse user input (docker's
    /// `ParseNormalizedNamed`): `busybox` becomes `docker.io/library/busybox`, `user/img`
    /// becomes `docker.io/user/img`, `index.docker.io/x` becomes `docker.io/library/x`, and
    /// `localhost:5000/x` or `example.com/a/b` keep their registry. No tag is added; see
    /// [`Reference::with_default_tag`].
    ///
    /// Docker quirks kept on purpose, for byte compatibility:
    /// - an uppercase first component is taken as a registry host (`Foo/bar`);
    /// - a first component with a `.` or `:` that is not a valid host but is a valid path
    ///   component (`foo_bar.com/x`) yields an empty [`Reference::domain`];
    /// - `docker.io/<64 hex>` parses, although its familiar form would not.
    pub fn parse_normalized(s: &str) -> Result<Self, ReferenceError> {
        if is_full_hex_id(s) {
            return Err(ReferenceError::HexId {
                input: s.to_string(),
            });
        }
        let (domain, remainder) = split_docker_domain(s);
        // Docker checks the case of everything up to the first ':' (the tag separator, or the
        // digest's algorithm separator when there is no tag) before the grammar, so that the
        // error names the repository.
        let remote = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(r, _)| r);
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase {
                input: s.to_string(),
                name: remote.to_string(),
            });
        }
        parse_full(&format!("{domain}/{remainder}"), s)
    }

    /// The registry host, with its port if any: `docker.io`, `localhost:5000`, `[::1]:5000`.
    /// Empty only in the docker quirk described at [`Reference::parse_normalized`].
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`, `user/img`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference has one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// True when the reference has neither a tag nor a digest (docker's `IsNameOnly`).
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The reference with the tag `latest` added when it has neither a tag nor a digest
    /// (docker's `TagNameOnly`); otherwise unchanged.
    #[must_use]
    pub fn with_default_tag(mut self) -> Self {
        if self.is_name_only() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The full repository name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The repository name as docker shows it (docker's `FamiliarName`): without the
    /// `docker.io/` domain, and without `library/` for single-component official images.
    /// `busybox`, `user/img`, `library/a/b`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference as docker shows it (docker's `FamiliarString`):
    /// `busybox:latest`, `user/img:tag`, `localhost:5000/x:y`, `busybox@sha256:…`.
    ///
    /// As in docker, this does not always parse back to the same reference: the familiar form
    /// of `docker.io/foo.bar/x` is `foo.bar/x`, which names the registry `foo.bar`. Store and
    /// compare the full [`Display`](fmt::Display) form; show this one.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// Appends `:tag` and `@digest` when present.
    fn push_suffix(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    /// The full normalized form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    /// Same as [`Reference::parse_normalized`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_normalized(s)
    }
}

/// True for a full image ID written without its algorithm: exactly 64 lowercase hex digits.
/// Docker refuses such a string as a repository name, so it always means an ID.
pub fn is_full_hex_id(s: &str) -> bool {
    s.len() == FULL_ID_LEN && s.bytes().all(is_lower_hex)
}

/// True if `s` could be an image ID or a prefix of one, as `docker rmi 3f5` or
/// `docker save sha256:3f5e…` accept: an optional `sha256:` followed by 1 to 64 lowercase hex
/// digits. Such a string may also be a valid repository name (`abc`, `dbcc1`), so callers
/// look it up as a name first and as an ID prefix second, like docker.
pub fn looks_like_id_prefix(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (1..=FULL_ID_LEN).contains(&hex.len()) && hex.bytes().all(is_lower_hex)
}

/// Docker's `splitDockerDomain`: picks the domain of a user-typed name and returns it with the
/// rest (path plus any tag or digest), adding `library/` for single-component Hub names. The
/// input is not validated here; [`parse_full`] does that on `domain/remainder`.
fn split_docker_domain(s: &str) -> (&str, String) {
    let Some((maybe_domain, maybe_remote)) = s.split_once('/') else {
        // A single element ("ubuntu", "ubuntu:latest") is always a Hub official image; this
        // also keeps "host:port"-looking names such as "foo:5000" from being taken as a host.
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{s}"));
    };
    let (domain, remote) = if maybe_domain == LOCALHOST {
        (maybe_domain, maybe_remote)
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, maybe_remote)
    } else if maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain {
        // Looks like a host or IP (has '.' or ':'), or has uppercase letters, which a
        // namespace may not have, so docker takes it as a host.
        (maybe_domain, maybe_remote)
    } else {
        (DEFAULT_DOMAIN, s)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"))
    } else {
        (domain, remote.to_string())
    }
}

/// The parts of a string that matches docker's anchored `ReferenceRegexp`.
struct Parts<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Docker's `Parse` applied to the normalized string `s`; errors name `input`, the string the
/// user gave.
fn parse_full(s: &str, input: &str) -> Result<Reference, ReferenceError> {
    let Some(parts) = match_reference(s) else {
        // Docker reports uppercase when lowercasing the whole string would make it match.
        let lower = s.to_lowercase();
        if lower != s && match_reference(&lower).is_some() {
            return Err(ReferenceError::Uppercase {
                input: input.to_string(),
                name: name_part(s).to_string(),
            });
        }
        return Err(ReferenceError::InvalidFormat {
            input: input.to_string(),
        });
    };
    if parts.path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong {
            input: input.to_string(),
        });
    }
    let digest = parts
        .digest
        .map(Digest::parse)
        .transpose()
        .map_err(|reason| ReferenceError::Digest {
            input: input.to_string(),
            reason,
        })?;
    Ok(Reference {
        domain: parts.domain.to_string(),
        path: parts.path.to_string(),
        tag: parts.tag.map(str::to_string),
        digest,
    })
}

/// `s` without its `@digest` and `:tag`, for error messages.
fn name_part(s: &str) -> &str {
    let s = s.split_once('@').map_or(s, |(name, _)| name);
    match (s.rfind(':'), s.rfind('/')) {
        (Some(colon), Some(slash)) if colon > slash => &s[..colon],
        (Some(colon), None) => &s[..colon],
        _ => s,
    }
}

/// Matches `^(name)(?::(tag))?(?:@(digest))?$` and splits the name into domain and path as
/// docker's `anchoredNameRegexp` does.
///
/// The split is unambiguous: no part but the digest may hold '@'; a tag has no ':' or '/', and
/// the name's only ':' characters sit in the domain, which a '/' always follows. So a ':' after
/// the last '/' starts the tag. The domain is optional and tried first, so a first component
/// that is a valid host is the domain whenever the rest is a valid path.
fn match_reference(s: &str) -> Option<Parts<'_>> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !is_digest_syntax(d)) {
        return None;
    }
    let (name, tag) = match (rest.rfind(':'), rest.rfind('/')) {
        (Some(colon), slash) if slash.is_none_or(|slash| colon > slash) => {
            (&rest[..colon], Some(&rest[colon + 1..]))
        }
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) {
        return None;
    }
    if let Some((domain, path)) = name.split_once('/')
        && is_domain_and_port(domain)
        && is_remote_name(path)
    {
        return Some(Parts {
            domain,
            path,
            tag,
            digest,
        });
    }
    is_remote_name(name).then_some(Parts {
        domain: "",
        path: name,
        tag,
        digest,
    })
}

fn is_lower_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'f')
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `path-component ("/" path-component)*`.
fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `[._] | __ | -+`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && is_lower_alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `host (":" [0-9]+)?` with host a domain name or a bracketed IPv6 address.
fn is_domain_and_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, port)) = inner.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (addr_ok, port)
    } else {
        match s.find(':') {
            Some(i) => (is_domain_name(&s[..i]), &s[i..]),
            None => (is_domain_name(s), ""),
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// `domain-component ("." domain-component)*`.
fn is_domain_name(s: &str) -> bool {
    s.split('.').all(|c| {
        let b = c.as_bytes();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
            }
            _ => false,
        }
    })
}

/// `[\w][\w.-]{0,127}` (`\w` is ASCII `[0-9A-Za-z_]`).
fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let is_word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    b.len() <= TAG_LENGTH_MAX
        && b.first().is_some_and(|&x| is_word(x))
        && b.iter().all(|&x| is_word(x) || x == b'.' || x == b'-')
}

/// Docker's digest grammar, before the algorithm is checked:
/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ":" [0-9a-fA-F]{32,}`.
fn is_digest_syntax(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|c| {
        let b = c.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphabetic) && b.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_ok && hex.len() >= DIGEST_HEX_MIN && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    const HEX: &str = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";

    /// Expands the placeholders of the tables: `<D>` is a sha256 digest, `<HEX>` a full ID.
    fn expand(s: &str) -> String {
        s.replace("<D>", D).replace("<HEX>", HEX)
    }

    fn parse(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// (input, full string, familiar string), from docker's normalize_test.go and
    /// reference_test.go tables, run through `ParseNormalizedNamed`.
    #[test]
    fn normalizes_like_docker() {
        #[rustfmt::skip]
        let table: &[(&str, &str, &str)] = &[
            ("busybox", "docker.io/library/busybox", "busybox"),
            ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:latest@<D>", "docker.io/library/busybox:latest@<D>", "busybox:latest@<D>"),
            ("library/busybox", "docker.io/library/busybox", "busybox"),
            ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
            ("docker.io/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("index.docker.io/busybox", "docker.io/library/busybox", "busybox"),
            ("index.docker.io/fooo/bar", "docker.io/fooo/bar", "fooo/bar"),
            ("index.docker.io/library/ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base", "ubuntu-12.04-base"),
            ("redis@<D>", "docker.io/library/redis@<D>", "redis@<D>"),
            ("dmcgowan/myapp@<D>", "docker.io/dmcgowan/myapp@<D>", "dmcgowan/myapp@<D>"),
            ("user/img:tag", "docker.io/user/img:tag", "user/img:tag"),
            ("nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", "nonlibrary/ubuntu"),
            ("other/library", "docker.io/other/library", "other/library"),
            ("library/foo/bar", "docker.io/library/foo/bar", "library/foo/bar"),
            ("docker.io/library/foo/bar", "docker.io/library/foo/bar", "library/foo/bar"),
            ("store/foo/bar", "docker.io/store/foo/bar", "store/foo/bar"),
            ("localhost/fooo", "localhost/fooo", "localhost/fooo"),
            ("localhost/fooo/bar", "localhost/fooo/bar", "localhost/fooo/bar"),
            ("localhost:5000/x:y", "localhost:5000/x:y", "localhost:5000/x:y"),
            ("LOCALDOMAIN/fooo", "LOCALDOMAIN/fooo", "LOCALDOMAIN/fooo"),
            ("Foo/bar", "Foo/bar", "Foo/bar"),
            ("FOO/bar", "FOO/bar", "FOO/bar"),
            ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase"),
            ("example.com/private/moonbase", "example.com/private/moonbase", "example.com/private/moonbase"),
            ("example.com:8000/privatebasee", "example.com:8000/privatebasee", "example.com:8000/privatebasee"),
            ("example.com/a/b", "example.com/a/b", "example.com/a/b"),
            ("gcr.io/library/busybox", "gcr.io/library/busybox", "gcr.io/library/busybox"),
            ("test_com", "docker.io/library/test_com", "test_com"),
            ("test.com:tag", "docker.io/library/test.com:tag", "test.com:tag"),
            ("test.com:5000", "docker.io/library/test.com:5000", "test.com:5000"),
            ("test.com/repo:tag", "test.com/repo:tag", "test.com/repo:tag"),
            ("test:5000/repo", "test:5000/repo", "test:5000/repo"),
            ("test:5000/repo@<D>", "test:5000/repo@<D>", "test:5000/repo@<D>"),
            ("test:5000/repo:tag@<D>", "test:5000/repo:tag@<D>", "test:5000/repo:tag@<D>"),
            ("test-com:8080/foo", "test-com:8080/foo", "test-com:8080/foo"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo"),
            ("xn--7o8h.com/myimage:xn--7o8h.com@<D>", "xn--7o8h.com/myimage:xn--7o8h.com@<D>", "xn--7o8h.com/myimage:xn--7o8h.com@<D>"),
            ("lowercase:Uppercase", "docker.io/library/lowercase:Uppercase", "lowercase:Uppercase"),
            ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
            ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com"),
            ("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080", "foo_bar.com:8080"),
            ("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080"),
            ("192.168.1.1", "docker.io/library/192.168.1.1", "192.168.1.1"),
            ("192.168.1.1:5000", "docker.io/library/192.168.1.1:5000", "192.168.1.1:5000"),
            ("192.168.1.1/repo", "192.168.1.1/repo", "192.168.1.1/repo"),
            ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050"),
            ("[2001:db8::1]/repo", "[2001:db8::1]/repo", "[2001:db8::1]/repo"),
            ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]/repo:tag"),
            ("[2001:db8::1]:5000/repo@<D>", "[2001:db8::1]:5000/repo@<D>", "[2001:db8::1]:5000/repo@<D>"),
            ("[2001:db8::1]:5000/repo:tag@<D>", "[2001:db8::1]:5000/repo:tag@<D>", "[2001:db8::1]:5000/repo:tag@<D>"),
            ("[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo"),
            ("[::1]:5000/repo", "[::1]:5000/repo", "[::1]:5000/repo"),
            ("[fc00::1]:5000/docker/docker", "[fc00::1]:5000/docker/docker", "[fc00::1]:5000/docker/docker"),
            ("docker-rules/docker", "docker.io/docker-rules/docker", "docker-rules/docker"),
            ("docker---rules/docker", "docker.io/docker---rules/docker", "docker---rules/docker"),
            ("dock__er/docker", "docker.io/dock__er/docker", "dock__er/docker"),
            ("d/docker", "docker.io/d/docker", "d/docker"),
            ("jess/t", "docker.io/jess/t", "jess/t"),
            ("dbcc1", "docker.io/library/dbcc1", "dbcc1"),
            ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev"),
            // 63 hex digits is a name, 64 are an ID; with a tag, 64 are a name again.
            ("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9"),
            ("<HEX>:tag", "docker.io/library/<HEX>:tag", "<HEX>:tag"),
            // Valid with a host, although its familiar form (the bare hex) would be refused.
            ("docker.io/<HEX>", "docker.io/library/<HEX>", "<HEX>"),
            // Docker quirk: familiar forms that would reparse as another registry.
            ("docker.io/foo.bar/baz", "docker.io/foo.bar/baz", "foo.bar/baz"),
            ("docker.io/localhost/x", "docker.io/localhost/x", "localhost/x"),
            // Docker quirk: a host-looking first component that is not a valid host but is a
            // valid path component leaves the domain empty.
            ("foo_bar.com/x", "foo_bar.com/x", "foo_bar.com/x"),
        ];
        let long_path = format!("{}a", "a/".repeat(127));
        let long_a = "a".repeat(NAME_TOTAL_LENGTH_MAX);
        let long = [
            (
                format!("{long_path}:tag-puts-this-over-max"),
                format!("docker.io/{long_path}:tag-puts-this-over-max"),
            ),
            (
                format!("example.com/{long_a}:tag"),
                format!("example.com/{long_a}:tag"),
            ),
        ];
        let cases = table
            .iter()
            .map(|(i, full, fam)| (expand(i), expand(full), expand(fam)))
            .chain(long.into_iter().map(|(i, full)| (i.clone(), full, i)));
        for (input, full, familiar) in cases {
            let r = parse(&input);
            assert_eq!(r.to_string(), full, "full form of {input:?}");
            assert_eq!(r.familiar(), familiar, "familiar form of {input:?}");
            assert_eq!(
                input.parse::<Reference>().as_ref(),
                Ok(&r),
                "FromStr of {input:?}"
            );
        }
    }

    /// (input, domain, path, familiar name): TestParseRepositoryInfo and
    /// TestNormalizedSplitHostname.
    #[test]
    fn domain_path_and_names() {
        #[rustfmt::skip]
        let table: &[(&str, &str, &str, &str)] = &[
            ("test.com/foo", "test.com", "foo", "test.com/foo"),
            ("test_com/foo", "docker.io", "test_com/foo", "test_com/foo"),
            ("docker/migrator", "docker.io", "docker/migrator", "docker/migrator"),
            ("test.com:8080/foo", "test.com:8080", "foo", "test.com:8080/foo"),
            ("test-com:8080/foo", "test-com:8080", "foo", "test-com:8080/foo"),
            ("foo", "docker.io", "library/foo", "foo"),
            ("xn--n3h.com/foo", "xn--n3h.com", "foo", "xn--n3h.com/foo"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", "xn--n3h.com:18080/foo"),
            ("docker.io/foo", "docker.io", "library/foo", "foo"),
            ("docker.io/library/foo", "docker.io", "library/foo", "foo"),
            ("docker.io/library/foo/bar", "docker.io", "library/foo/bar", "library/foo/bar"),
            ("localhost/fooo", "localhost", "fooo", "localhost/fooo"),
            ("LOCALDOMAIN/fooo/bar", "LOCALDOMAIN", "fooo/bar", "LOCALDOMAIN/fooo/bar"),
            ("index.docker.io/fooo/bar", "docker.io", "fooo/bar", "fooo/bar"),
            ("library/ubuntu", "docker.io", "library/ubuntu", "ubuntu"),
            ("127.0.0.1:8000/privatebase", "127.0.0.1:8000", "privatebase", "127.0.0.1:8000/privatebase"),
            ("example.com:8000/private/moonbase:v1", "example.com:8000", "private/moonbase", "example.com:8000/private/moonbase"),
            ("[::1]:5000/repo@<D>", "[::1]:5000", "repo", "[::1]:5000/repo"),
            ("FOO/bar", "FOO", "bar", "FOO/bar"),
            ("foo_bar.com/x", "", "foo_bar.com/x", "foo_bar.com/x"),
        ];
        for &(input, domain, path, familiar_name) in table {
            let r = parse(&expand(input));
            assert_eq!(r.domain(), domain, "domain of {input:?}");
            assert_eq!(r.path(), path, "path of {input:?}");
            assert_eq!(
                r.familiar_name(),
                familiar_name,
                "familiar name of {input:?}"
            );
            let name = if domain.is_empty() {
                path.to_string()
            } else {
                format!("{domain}/{path}")
            };
            assert_eq!(r.name(), name, "name of {input:?}");
        }
    }

    #[test]
    fn tag_and_digest_accessors() {
        let r = parse(&expand("busybox:latest@<D>"));
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.digest().map(ToString::to_string).as_deref(), Some(D));
        assert!(!r.is_name_only());
        let r = parse(&expand("busybox@<D>"));
        assert_eq!(
            (r.tag(), r.digest().map(Digest::hex)),
            (None, Some(&D[7..]))
        );
        let r = parse("busybox");
        assert_eq!((r.tag(), r.digest()), (None, None));
        assert!(r.is_name_only());
    }

    /// TestParseDockerRef, except that a tag next to a digest is kept: dropping it is
    /// `ParseDockerRef`'s job, not `TagNameOnly`'s.
    #[test]
    fn default_tag() {
        #[rustfmt::skip]
        let table: &[(&str, &str, &str)] = &[
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("busybox@<D>", "docker.io/library/busybox@<D>", "busybox@<D>"),
            ("busybox:v1@<D>", "docker.io/library/busybox:v1@<D>", "busybox:v1@<D>"),
            ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("docker.io/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
            ("library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
            ("gcr.io/library/busybox", "gcr.io/library/busybox:latest", "gcr.io/library/busybox:latest"),
            ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
            ("user/img", "docker.io/user/img:latest", "user/img:latest"),
        ];
        for &(input, full, familiar) in table {
            let r = parse(&expand(input)).with_default_tag();
            assert_eq!(r.to_string(), expand(full), "{input:?}");
            assert_eq!(r.familiar(), expand(familiar), "{input:?}");
        }
    }

    /// Invalid names from TestValidateReferenceName, TestValidateRemoteName and
    /// TestReferenceParse, with the exact message hoist gives.
    #[test]
    fn errors() {
        let f34 = "f".repeat(34);
        let f128 = "f".repeat(128);
        let f64 = "f".repeat(64);
        let upper = "F".repeat(64);
        let too_long = format!(
            "{}/docker",
            ["this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255"; 4].join("_")
        );
        let domain_too_long = format!("domain/{}:tag", "a".repeat(256));
        let malformed = "is malformed (expected sha256:<64 lowercase hex digits>)";
        let unsupported = "uses an unsupported algorithm (only sha256 is supported)";
        let computed = [
            (
                format!("repo@sha256:{f34}"),
                format!(
                    "invalid digest in reference \"repo@sha256:{f34}\": digest \"sha256:{f34}\" {malformed}"
                ),
            ),
            (
                format!("busybox@sha256:{upper}"),
                format!(
                    "invalid digest in reference \"busybox@sha256:{upper}\": digest \"sha256:{upper}\" {malformed}"
                ),
            ),
            (
                format!("validname@sha512:{f128}"),
                format!(
                    "invalid digest in reference \"validname@sha512:{f128}\": digest \"sha512:{f128}\" {unsupported}"
                ),
            ),
            (
                format!("validname@invaliddigest:{f64}"),
                format!(
                    "invalid digest in reference \"validname@invaliddigest:{f64}\": digest \"invaliddigest:{f64}\" {unsupported}"
                ),
            ),
            (
                too_long.clone(),
                format!("repository name must not be more than 255 characters: {too_long:?}"),
            ),
            (
                domain_too_long.clone(),
                format!(
                    "repository name must not be more than 255 characters: {domain_too_long:?}"
                ),
            ),
        ];
        #[rustfmt::skip]
        let table: &[(&str, &str)] = &[
            ("<HEX>", "invalid repository name (<HEX>), cannot specify 64-byte hexadecimal strings"),
            ("", r#"invalid reference format: """#),
            (":justtag", r#"invalid reference format: ":justtag""#),
            ("@<D>", r#"invalid reference format: "@<D>""#),
            ("busybox:", r#"invalid reference format: "busybox:""#),
            ("busybox@", r#"invalid reference format: "busybox@""#),
            ("busybox@sha256:abc", r#"invalid reference format: "busybox@sha256:abc""#),
            ("busybox@<D>@<D>", r#"invalid reference format: "busybox@<D>@<D>""#),
            ("busybox:-tag", r#"invalid reference format: "busybox:-tag""#),
            ("busybox:.tag", r#"invalid reference format: "busybox:.tag""#),
            ("busybox:a:b", r#"invalid reference format: "busybox:a:b""#),
            ("https://github.com/docker/docker", r#"invalid reference format: "https://github.com/docker/docker""#),
            ("-docker", r#"invalid reference format: "-docker""#),
            ("-docker/docker", r#"invalid reference format: "-docker/docker""#),
            ("-docker.io/docker/docker", r#"invalid reference format: "-docker.io/docker/docker""#),
            ("docker-/docker", r#"invalid reference format: "docker-/docker""#),
            ("-docker-/docker", r#"invalid reference format: "-docker-/docker""#),
            ("docker///docker", r#"invalid reference format: "docker///docker""#),
            ("docker.io/docker///docker", r#"invalid reference format: "docker.io/docker///docker""#),
            ("____/____", r#"invalid reference format: "____/____""#),
            ("_docker/_docker", r#"invalid reference format: "_docker/_docker""#),
            ("dock..er/docker", r#"invalid reference format: "dock..er/docker""#),
            ("dock_.er/docker", r#"invalid reference format: "dock_.er/docker""#),
            ("dock-.er/docker", r#"invalid reference format: "dock-.er/docker""#),
            ("dock___er/docker", r#"invalid reference format: "dock___er/docker""#),
            ("docker/", r#"invalid reference format: "docker/""#),
            ("aa/asdf$$^/aa", r#"invalid reference format: "aa/asdf$$^/aa""#),
            ("[fc00::1]", r#"invalid reference format: "[fc00::1]""#),
            ("[fc00::1]:5000", r#"invalid reference format: "[fc00::1]:5000""#),
            ("[2001:db8::1]:tag", r#"invalid reference format: "[2001:db8::1]:tag""#),
            ("[]:5000/repo", r#"invalid reference format: "[]:5000/repo""#),
            ("fc00::1:5000/debian", r#"invalid reference format: "fc00::1:5000/debian""#),
            ("[fe80::1%eth0]:5000/debian", r#"invalid reference format: "[fe80::1%eth0]:5000/debian""#),
            ("[fe80::1%@invalidzone]:5000/repo", r#"invalid reference format: "[fe80::1%@invalidzone]:5000/repo""#),
            ("[2001:db8:3:4::192.0.2.33]:5000/debian", r#"invalid reference format: "[2001:db8:3:4::192.0.2.33]:5000/debian""#),
            ("foo_bar:5000/x", r#"invalid reference format: "foo_bar:5000/x""#),
            ("example.com:/x", r#"invalid reference format: "example.com:/x""#),
            ("busy box", r#"invalid reference format: "busy box""#),
            ("docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"),
            ("docker.io/docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"),
            ("Uppercase:tag", "invalid reference format: repository name (library/Uppercase) must be lowercase"),
            ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
            ("test:5000/Uppercase/lowercase:tag", "invalid reference format: repository name (Uppercase/lowercase) must be lowercase"),
            // Caught by the whole-string lowercase fallback: an uppercase host that is invalid.
            ("Foo_Bar/x:tag", "invalid reference format: repository name (Foo_Bar/x) must be lowercase"),
            // Kelvin sign: its Unicode lowercase is ASCII 'k', as with Go's strings.ToLower.
            ("\u{212A}ube", "invalid reference format: repository name (library/\u{212A}ube) must be lowercase"),
        ];
        let cases = table
            .iter()
            .map(|(i, m)| (expand(i), expand(m)))
            .chain(computed);
        for (input, message) in cases {
            match Reference::parse_normalized(&input) {
                Ok(r) => panic!("{input:?} parsed as {r}"),
                Err(e) => assert_eq!(e.to_string(), message, "error for {input:?}"),
            }
        }
    }

    #[test]
    fn error_variants_carry_input() {
        assert_eq!(
            Reference::parse_normalized("Busybox"),
            Err(ReferenceError::Uppercase {
                input: "Busybox".to_string(),
                name: "library/Busybox".to_string()
            })
        );
        assert_eq!(
            Reference::parse_normalized("a b"),
            Err(ReferenceError::InvalidFormat {
                input: "a b".to_string()
            })
        );
        assert_eq!(
            Reference::parse_normalized(HEX),
            Err(ReferenceError::HexId {
                input: HEX.to_string()
            })
        );
        assert!(matches!(
            Reference::parse_normalized(&format!("x@sha512:{}", "0".repeat(128))),
            Err(ReferenceError::Digest {
                reason: DigestError::UnsupportedAlgorithm(_),
                ..
            })
        ));
    }

    #[test]
    fn length_limits() {
        // The limit is on the path (with `library/` for Hub images), not on the domain.
        let at_max = format!("a/{}", "b".repeat(NAME_TOTAL_LENGTH_MAX - 2));
        assert_eq!(parse(&at_max).path().len(), NAME_TOTAL_LENGTH_MAX);
        assert_eq!(
            parse(&format!("example.com/{at_max}")).path().len(),
            NAME_TOTAL_LENGTH_MAX
        );
        let over = format!("a/{}", "b".repeat(NAME_TOTAL_LENGTH_MAX - 1));
        assert_eq!(
            Reference::parse_normalized(&over),
            Err(ReferenceError::NameTooLong {
                input: over.clone()
            })
        );
        let official = "b".repeat(NAME_TOTAL_LENGTH_MAX - OFFICIAL_REPO_PREFIX.len());
        assert_eq!(parse(&official).path().len(), NAME_TOTAL_LENGTH_MAX);
        assert!(Reference::parse_normalized(&format!("{official}b")).is_err());
        // Tags: 1 to 128 characters.
        assert_eq!(
            parse(&format!("x:{}", "t".repeat(128))).tag().map(str::len),
            Some(128)
        );
        assert!(Reference::parse_normalized(&format!("x:{}", "t".repeat(129))).is_err());
        assert_eq!(parse("x:_").tag(), Some("_"));
        assert_eq!(parse("x:A.b-C_9").tag(), Some("A.b-C_9"));
    }

    #[test]
    fn hex_id_helpers() {
        let sha_hex = format!("sha256:{HEX}");
        assert!(is_full_hex_id(HEX));
        let upper = HEX.to_uppercase();
        let long = format!("{HEX}0");
        for not_full in ["", "abc", &HEX[..63], &long, &upper, &sha_hex] {
            assert!(!is_full_hex_id(not_full), "{not_full:?}");
        }
        for prefix in ["a", "3f5e", "dbcc1", HEX, &sha_hex, "sha256:3f"] {
            assert!(looks_like_id_prefix(prefix), "{prefix:?}");
        }
        for not_prefix in ["", "sha256:", "busybox", "ABC", "3f5g", &long, "sha512:ab"] {
            assert!(!looks_like_id_prefix(not_prefix), "{not_prefix:?}");
        }
    }

    /// What must hold for any input: no panic, and a parsed reference round-trips through its
    /// full form and (unless that is a bare hex ID) its familiar form.
    fn check_invariants(input: &str) {
        let Ok(r) = Reference::parse_normalized(input) else {
            return;
        };
        let full = r.to_string();
        assert_eq!(
            Reference::parse_normalized(&full).as_ref(),
            Ok(&r),
            "full form of {input:?}"
        );
        let familiar = r.familiar();
        // The familiar form of a Hub name whose first component looks like a host
        // (`docker.io/foo.bar/x`, `docker.io/localhost/x`) or is a bare ID names something else.
        let first = familiar.split('/').next().unwrap_or_default();
        let ambiguous = r.domain() == DEFAULT_DOMAIN
            && familiar.contains('/')
            && (first.contains('.') || first == LOCALHOST);
        if !ambiguous && !is_full_hex_id(&familiar) {
            assert_eq!(
                Reference::parse_normalized(&familiar).as_ref(),
                Ok(&r),
                "familiar form of {input:?}"
            );
        }
        assert!(!r.with_default_tag().is_name_only());
    }

    /// Fuzz-style robustness: every string of up to 4 pieces over an alphabet of the grammar's
    /// delimiters and edge characters, then pseudo-random token strings and arbitrary bytes.
    #[test]
    fn never_panics() {
        const ALPHABET: &[&str] = &[
            "a", "Z", "0", "f", ":", "/", "@", ".", "_", "-", "[", "]", "\u{212A}", "é", " ",
        ];
        fn exhaustive(buf: &mut String, depth: usize) {
            check_invariants(buf);
            if depth == 4 {
                return;
            }
            for piece in ALPHABET {
                let len = buf.len();
                buf.push_str(piece);
                exhaustive(buf, depth + 1);
                buf.truncate(len);
            }
        }
        exhaustive(&mut String::new(), 0);

        // Tokens that build long, nearly valid references.
        const TOKENS: &[&str] = &[
            "a",
            "b9",
            "Z",
            ":",
            "/",
            "@",
            ".",
            "_",
            "__",
            "-",
            "--",
            "[",
            "]",
            "::1",
            "sha256:",
            "localhost",
            "docker.io",
            "index.docker.io",
            "library/",
            "5000",
            "latest",
            "%",
            "ffffffffffffffffffffffffffffffff",
            "\u{212A}",
        ];
        // xorshift64: deterministic, so a failure reproduces.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..100_000 {
            let pieces = next() % 16;
            let s: String = (0..pieces)
                .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                .collect();
            check_invariants(&s);
            let bytes: Vec<u8> = (0..next() % 24).map(|_| next().to_le_bytes()[0]).collect();
            check_invariants(&String::from_utf8_lossy(&bytes));
        }
    }
}
