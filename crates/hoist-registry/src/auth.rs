//! Authentication: the `WWW-Authenticate` challenge a registry sends with a 401, credentials,
//! and the scopes of the bearer tokens asked for.
//!
//! The flow (distribution's `docs/spec/auth/token.md`, what docker does): a request without
//! credentials gets 401 with a challenge. `Basic realm=…` means: send the user and password
//! with every request. `Bearer realm=…,service=…,scope=…` means: ask the token server at
//! `realm` for a token for `service` and `scope` (with the credentials as Basic auth, if any,
//! or anonymously), then send `Authorization: Bearer <token>`.

use std::fmt;

use base64::Engine;

/// A user name and password (or identity token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a password, not even in debug output.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// The user name docker's config and credential helpers give with an identity token.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// The identity token (an OAuth2 refresh token) these credentials are, if they are one.
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == IDENTITY_TOKEN_USER).then_some(self.password.as_str())
    }

    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// What a repository is accessed for: the `actions` of a token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reading manifests and blobs.
    Pull,
    /// Reading and writing (push needs `pull` too: it checks what exists).
    PullPush,
}

impl Access {
    /// The scope string for a repository: `repository:library/busybox:pull`.
    pub fn scope(self, repository: &str) -> String {
        let actions = match self {
            Access::Pull => "pull",
            Access::PullPush => "pull,push",
        };
        format!("repository:{repository}:{actions}")
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`: send the credentials with every request.
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`: get a token from `realm`.
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The `service` parameter to pass on, if given.
        service: Option<String>,
        /// The `scope` the registry asked for, if given.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value; `None` for schemes hoist does not speak
    /// or a Bearer challenge without a realm.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((header, ""));
        let params = parse_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: get("realm").filter(|r| !r.is_empty())?,
                service: get("service"),
                scope: get("scope"),
            })
        } else {
            None
        }
    }
}

/// Parses `key=value, key="quoted \"value\""` pairs (RFC 7235 auth-params).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_whitespace() || *c == ',')
        {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            return out;
        }
        let key = key.trim().to_string();
        if chars.next_if_eq(&'=').is_none() {
            // A bare token (a token68 or garbage): skip it.
            if chars.peek().is_none() {
                return out;
            }
            continue;
        }
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(e) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        if !key.is_empty() {
            out.push((key, value));
        }
    }
}

/// The JSON a token server answers with (`token` per distribution, `access_token` per OAuth2;
/// either may be used, docker takes `token` first).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub(crate) token: Option<String>,
    #[serde(default)]
    pub(crate) access_token: Option<String>,
}

impl TokenResponse {
    pub(crate) fn into_token(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
    }

    #[test]
    fn bearer_with_spaces_escapes_and_tokens() {
        let c = Challenge::parse(
            r#"bearer  realm = "http://a/t?x=\"y\"" , service=reg ,error="invalid_token""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: r#"http://a/t?x="y""#.into(),
                service: Some("reg".into()),
                scope: None,
            })
        );
    }

    #[test]
    fn basic_and_unknown() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate abc=="), None);
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
        assert_eq!(Challenge::parse(""), None);
    }

    #[test]
    fn scopes_and_basic_header() {
        assert_eq!(
            Access::Pull.scope("library/busybox"),
            "repository:library/busybox:pull"
        );
        assert_eq!(Access::PullPush.scope("a/b"), "repository:a/b:pull,push");
        let c = Credentials {
            username: "aladdin".into(),
            password: "opensesame".into(),
        };
        assert_eq!(c.basic_header(), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
        assert!(!format!("{c:?}").contains("opensesame"));
    }

    #[test]
    fn token_response_prefers_token() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"a","access_token":"b","expires_in":60}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("a"));
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("b"));
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.into_token(), None);
    }
}
