//! The HTTP client of one registry: the `/v2/` ping, authentication, retries, and the
//! distribution API calls on manifests and blobs.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use hoist_format::Digest;
use hoist_format::media_type;
use ureq::http::{Response, StatusCode};

use crate::auth::{Access, Challenge, Credentials, TokenResponse};
use crate::error::{Error, Result};

/// Attempts of one request when the connection drops or the registry answers 5xx: docker
/// retries a few times too; more only delays the error when a registry is really down.
pub const MAX_ATTEMPTS: u32 = 4;

/// Wait before the first retry; doubled for each further one (0.25 s, 0.5 s, 1 s).
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);

/// Time to open a connection: long enough for a slow network, short enough that a wrong
/// address fails in a reasonable time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest silence while a response (headers or body bytes) is awaited before the connection
/// is taken as dead and the request retried.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// How much of an error response body is read for its message: distribution's JSON errors
/// are a few hundred bytes.
const ERROR_BODY_MAX: u64 = 64 * 1024;

/// Largest token-server answer read: tokens are JWTs of a few KiB; some servers add a refresh
/// token and metadata.
const TOKEN_BODY_MAX: u64 = 1024 * 1024;

/// The OAuth2 client id sent with an identity token (docker sends its own name likewise).
const IDENTITY_TOKEN_CLIENT_ID: &str = "hoist";

/// What Go's `net/http` answers a plain-HTTP request on a TLS port with (distribution is Go).
const GO_PLAIN_HTTP_TO_TLS: &str = "Client sent an HTTP request to an HTTPS server";

/// The registry host docker uses for `docker.io` names.
const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// Every manifest media type hoist reads, for the `Accept` header.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `--tls-verify=false`: do not check the registry's certificate, and allow plain HTTP
    /// (after HTTPS fails) to a registry that is not on a loopback address, like docker's
    /// `insecure-registries`.
    pub insecure: bool,
    /// The registry's certificate directory (`*.crt` roots, `*.cert`/`*.key` client
    /// certificate); `None` looks in docker's and podman's `certs.d/HOST[:PORT]`.
    pub cert_dir: Option<PathBuf>,
    /// Credentials for Basic auth or for the token server; `None` is anonymous.
    pub credentials: Option<Credentials>,
}

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The bytes received (never re-serialized: the digest is of these).
    pub bytes: Vec<u8>,
    /// The media type: the document's `mediaType`, else the `Content-Type`.
    pub media_type: String,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

/// Opens a blob's bytes again for each attempt of an upload.
pub type Opener<'a> = dyn Fn() -> io::Result<Box<dyn Read + Send + 'a>> + 'a;

/// A body to send, reopened for every attempt.
#[derive(Clone, Copy)]
enum SendBody<'a, 'b> {
    None,
    Bytes(&'a [u8]),
    Open(&'a Opener<'b>),
}

impl std::fmt::Debug for SendBody<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendBody::None => f.write_str("None"),
            SendBody::Bytes(b) => write!(f, "Bytes({})", b.len()),
            SendBody::Open(_) => f.write_str("Open"),
        }
    }
}

/// One request to the registry, as [`Client::send`] takes it.
#[derive(Debug, Clone, Copy)]
struct Req<'a, 'b> {
    method: Method,
    url: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: SendBody<'a, 'b>,
    /// For the token scope and for messages.
    repository: &'a str,
    access: Access,
    /// Another repository the token must allow pulling from (a cross-repository mount).
    also_pull: Option<&'a str>,
    /// What is asked, for messages.
    what: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

/// A client of one registry. Cheap to share between threads (`&Client` is `Sync`).
pub struct Client {
    /// The registry as names spell it (`docker.io`, `127.0.0.1:5000`): used in messages.
    registry: String,
    /// The host[:port] to connect to.
    host: String,
    agent: ureq::Agent,
    opts: ClientOptions,
    /// `http://host` or `https://host`, once the ping found which one answers.
    base: Mutex<Option<String>>,
    /// The challenge of the ping's 401, if any.
    challenge: Mutex<Option<Challenge>>,
    /// Whether the ping was answered 401 (with or without a challenge hoist can use).
    ping_unauthorized: std::sync::atomic::AtomicBool,
    /// `Authorization` header values by scope.
    auth: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the cached Authorization headers (passwords, tokens).
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("host", &self.host)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `registry` (a reference's domain: `docker.io`, `localhost:5000`, …).
    /// Nothing is sent until the first call; certificate files are read now.
    pub fn new(registry: &str, opts: ClientOptions) -> Result<Client> {
        let host = if registry == hoist_format::reference::DEFAULT_DOMAIN {
            DOCKER_HUB_HOST.to_string()
        } else {
            registry.to_string()
        };
        let (tls, _) = crate::tls::config(&host, opts.cert_dir.as_deref(), !opts.insecure)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(READ_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            registry: registry.to_string(),
            host,
            agent,
            opts,
            base: Mutex::new(None),
            challenge: Mutex::new(None),
            ping_unauthorized: std::sync::atomic::AtomicBool::new(false),
            auth: Mutex::new(HashMap::new()),
        })
    }

    /// The registry as names spell it.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Whether plain HTTP may be used: loopback hosts always, others only when insecure.
    pub fn plain_http_allowed(&self) -> bool {
        self.opts.insecure || is_loopback(&self.host)
    }

    /// `GET /v2/`: finds the scheme that answers (HTTPS first; then plain HTTP when allowed,
    /// as docker does for insecure registries) and remembers the auth challenge.
    pub fn ping(&self) -> Result<()> {
        self.base().map(|_| ())
    }

    fn base(&self) -> Result<String> {
        let mut base = self.base.lock().expect("never poisoned");
        if let Some(b) = base.as_ref() {
            return Ok(b.clone());
        }
        let https = format!("https://{}", self.host);
        let first = if self.plain_http_allowed() {
            // One attempt only: a plain-HTTP registry fails the TLS handshake at once.
            match self.agent.get(format!("{https}/v2/")).call() {
                Ok(resp) => Ok((https, resp)),
                // A TLS server whose certificate is not trusted: plain HTTP would only hide it.
                Err(e) if is_certificate_error(&e) => Err(self.untrusted(&https, e)),
                Err(tls_err) => {
                    let http = format!("http://{}", self.host);
                    match self.with_retries(|| self.agent.get(format!("{http}/v2/")).call()) {
                        // Go's TLS servers answer plain HTTP with a 400 saying so: the
                        // registry does speak TLS, and the handshake failed for another reason
                        // (a client certificate it requires, most often).
                        Ok(resp) if resp.status() == StatusCode::BAD_REQUEST => {
                            let detail = error_detail(resp);
                            if detail.contains(GO_PLAIN_HTTP_TO_TLS) {
                                Err(Error::Transport {
                                    registry: self.registry.clone(),
                                    what: format!(
                                        "the TLS handshake with {https} failed (if the \
                                         registry asks for a client certificate, put NAME.cert \
                                         and NAME.key in --cert-dir)"
                                    ),
                                    source: Box::new(tls_err),
                                })
                            } else {
                                Err(Error::Status {
                                    registry: self.registry.clone(),
                                    repository: String::new(),
                                    what: format!("pinging {http}/v2/"),
                                    status: StatusCode::BAD_REQUEST.as_u16(),
                                    detail,
                                })
                            }
                        }
                        Ok(resp) => Ok((http, resp)),
                        Err(e) => Err(Error::Transport {
                            registry: self.registry.clone(),
                            what: format!("pinging {http}/v2/ (HTTPS failed too: {tls_err})"),
                            source: Box::new(e),
                        }),
                    }
                }
            }
        } else {
            self.with_retries(|| self.agent.get(format!("{https}/v2/")).call())
                .map(|r| (https.clone(), r))
                .map_err(|e| {
                    if is_certificate_error(&e) {
                        return self.untrusted(&https, e);
                    }
                    Error::Transport {
                        registry: self.registry.clone(),
                        what: format!(
                            "pinging {https}/v2/ (plain HTTP is tried only for loopback \
                             registries or with --tls-verify=false)"
                        ),
                        source: Box::new(e),
                    }
                })
        };
        let (found, resp) = first?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.ping_unauthorized
                .store(true, std::sync::atomic::Ordering::Relaxed);
            *self.challenge.lock().expect("never poisoned") = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(Challenge::parse);
        }
        drain(resp);
        *base = Some(found.clone());
        Ok(found)
    }

    /// The error for a registry whose certificate does not verify.
    fn untrusted(&self, https: &str, e: ureq::Error) -> Error {
        Error::Transport {
            registry: self.registry.clone(),
            what: format!(
                "the TLS certificate of {https} is not trusted (add its CA with --cert-dir DIR \
                 or in /etc/docker/certs.d/{}/ca.crt, or pass --tls-verify=false)",
                self.host
            ),
            source: Box::new(e),
        }
    }

    /// Checks that the credentials are accepted (what `docker login` does): `GET /v2/` with
    /// them, or a token from the token server for no particular repository.
    pub fn check_login(&self) -> Result<()> {
        let base = self.base()?;
        let challenge = self.challenge.lock().expect("never poisoned").clone();
        let refused = |status: u16, detail: String| Error::Auth {
            registry: self.registry.clone(),
            reason: format!(
                "login refused (HTTP {status}): wrong username or password{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ),
        };
        let header = match &challenge {
            None if self
                .ping_unauthorized
                .load(std::sync::atomic::Ordering::Relaxed) =>
            {
                return Err(Error::Auth {
                    registry: self.registry.clone(),
                    reason: "the registry asks for authentication in a way hoist does not speak \
                             (no Basic or Bearer challenge)"
                        .into(),
                });
            }
            // No authentication asked: any credentials do.
            None => return Ok(()),
            Some(Challenge::Basic) => match &self.opts.credentials {
                Some(c) => c.basic_header(),
                None => return Err(refused(401, "no credentials given".into())),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                format!(
                    "Bearer {}",
                    self.token(realm, service.as_deref(), "", None)?
                )
            }
        };
        let url = format!("{base}/v2/");
        let resp = self
            .with_retries(|| {
                self.agent
                    .get(&url)
                    .header("Authorization", header.as_str())
                    .call()
            })
            .map_err(|e| Error::Transport {
                registry: self.registry.clone(),
                what: format!("logging in at {url}"),
                source: Box::new(e),
            })?;
        let status = resp.status();
        if status.is_success() {
            drain(resp);
            return Ok(());
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(refused(status.as_u16(), error_detail(resp)));
        }
        Err(self.status_error(resp, "", "login"))
    }

    /// Runs `call` up to [`MAX_ATTEMPTS`] times while it fails in a way worth retrying.
    fn with_retries(
        &self,
        call: impl FnMut() -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        self.with_attempts(MAX_ATTEMPTS, call)
    }

    /// Runs `call` up to `attempts` times while it fails in a way worth retrying.
    fn with_attempts(
        &self,
        attempts: u32,
        mut call: impl FnMut() -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let mut attempt = 1;
        loop {
            match call() {
                Err(e) if attempt < attempts && retryable(&e) => {}
                Ok(r) if attempt < attempts && r.status().is_server_error() => drain(r),
                other => return other,
            }
            std::thread::sleep(backoff(attempt));
            attempt += 1;
        }
    }

    /// The `Authorization` header for `scope`, getting a token first if the registry asked
    /// for bearer tokens.
    fn authorization(&self, scope: &str, challenge: Option<&Challenge>) -> Result<Option<String>> {
        if challenge.is_none()
            && let Some(h) = self.auth.lock().expect("never poisoned").get(scope)
        {
            return Ok(Some(h.clone()));
        }
        let known = self.challenge.lock().expect("never poisoned").clone();
        let Some(challenge) = challenge.cloned().or(known) else {
            return Ok(None);
        };
        let header = match &challenge {
            Challenge::Basic => match &self.opts.credentials {
                Some(c) => c.basic_header(),
                None => return Ok(None),
            },
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                let token = self.token(realm, service.as_deref(), scope, asked.as_deref())?;
                format!("Bearer {token}")
            }
        };
        self.auth
            .lock()
            .expect("never poisoned")
            .insert(scope.to_string(), header.clone());
        Ok(Some(header))
    }

    /// Asks the token server for a token (with the credentials as Basic auth, if any).
    fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        asked: Option<&str>,
    ) -> Result<String> {
        let scopes: Vec<&str> = scope
            .split(' ')
            .filter(|x| !x.is_empty())
            .chain(asked.filter(|a| !scope.split(' ').any(|x| x == *a)))
            .collect();
        let resp = self
            .with_retries(|| {
                // An identity token (docker's `identitytoken`) is an OAuth2 refresh token:
                // exchanged at the realm by a form POST, as docker does, never sent as Basic.
                if let Some(refresh) = self
                    .opts
                    .credentials
                    .as_ref()
                    .and_then(|c| c.identity_token())
                {
                    let mut form: Vec<(&str, &str)> = vec![
                        ("grant_type", "refresh_token"),
                        ("client_id", IDENTITY_TOKEN_CLIENT_ID),
                        ("refresh_token", refresh),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s));
                    }
                    let joined = scopes.join(" ");
                    if !joined.is_empty() {
                        form.push(("scope", &joined));
                    }
                    return self.agent.post(realm).send_form(form);
                }
                let mut req = self.agent.get(realm);
                if let Some(s) = service {
                    req = req.query("service", s);
                }
                // Several scopes (a push that mounts from another repository) are several
                // `scope` parameters; none for a login.
                for one in &scopes {
                    req = req.query("scope", *one);
                }
                if let Some(c) = &self.opts.credentials {
                    req = req.header("Authorization", c.basic_header());
                }
                req.call()
            })
            .map_err(|e| Error::Transport {
                registry: self.registry.clone(),
                what: format!("getting a token from {realm}"),
                source: Box::new(e),
            })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = error_detail(resp);
            return Err(Error::Auth {
                registry: self.registry.clone(),
                reason: format!(
                    "the token server {realm} refused {} for {} (HTTP {}){}",
                    if self.opts.credentials.is_some() {
                        "the credentials"
                    } else {
                        "anonymous access"
                    },
                    if scope.is_empty() { "login" } else { scope },
                    status.as_u16(),
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {detail}")
                    }
                ),
            });
        }
        if !status.is_success() {
            return Err(Error::Auth {
                registry: self.registry.clone(),
                reason: format!("the token server {realm} answered HTTP {}", status.as_u16()),
            });
        }
        let bad = |e: String| Error::Auth {
            registry: self.registry.clone(),
            reason: format!("the token server {realm} sent no valid JSON: {e}"),
        };
        let bytes = resp
            .into_body()
            .into_with_config()
            .limit(TOKEN_BODY_MAX)
            .read_to_vec()
            .map_err(|e| bad(e.to_string()))?;
        let token: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        token.into_token().ok_or_else(|| Error::Auth {
            registry: self.registry.clone(),
            reason: format!("the token server {realm} sent no token"),
        })
    }

    /// Sends a request to the registry with authentication and retries; returns the
    /// response whatever its status (after retries for 5xx).
    fn send(&self, req: Req<'_, '_>) -> Result<Response<ureq::Body>> {
        let Req {
            method,
            url,
            headers,
            body,
            repository,
            access,
            also_pull,
            what,
        } = req;
        let mut scope = access.scope(repository);
        if let Some(from) = also_pull {
            scope = format!("{scope} {}", Access::Pull.scope(from));
        }
        // Credentials go only to the registry itself: an upload Location may name another
        // host, or plain HTTP behind a misconfigured proxy.
        let own = url.starts_with(&format!("{}/", self.base()?));
        let mut auth = if own {
            self.authorization(&scope, None)?
        } else {
            None
        };
        let mut reauthenticated = false;
        // A streamed body is sent once: an upload session that took part of it cannot take it
        // again (the caller starts a new one). Errors of the body's own source are kept apart
        // from the connection's.
        let attempts = if matches!(body, SendBody::Open(_)) {
            1
        } else {
            MAX_ATTEMPTS
        };
        let source_error: Mutex<Option<io::Error>> = Mutex::new(None);
        loop {
            let resp = self
                .with_attempts(attempts, || {
                    let auth = auth.as_deref();
                    match method {
                        Method::Get | Method::Head | Method::Delete => {
                            let mut req = match method {
                                Method::Get => self.agent.get(url),
                                Method::Head => self.agent.head(url),
                                _ => self.agent.delete(url),
                            };
                            for (k, v) in headers {
                                req = req.header(*k, *v);
                            }
                            if let Some(a) = auth {
                                req = req.header("Authorization", a);
                            }
                            req.call()
                        }
                        Method::Post | Method::Put => {
                            let mut req = if method == Method::Post {
                                self.agent.post(url)
                            } else {
                                self.agent.put(url)
                            };
                            for (k, v) in headers {
                                req = req.header(*k, *v);
                            }
                            if let Some(a) = auth {
                                req = req.header("Authorization", a);
                            }
                            match body {
                                SendBody::None => req.send_empty(),
                                SendBody::Bytes(b) => req.send(b),
                                SendBody::Open(open) => {
                                    let mut r = Watched {
                                        inner: open().map_err(|e| watch(&source_error, e))?,
                                        slot: &source_error,
                                    };
                                    req.send(ureq::SendBody::from_reader(&mut r))
                                }
                            }
                        }
                    }
                })
                .map_err(|e| {
                    if let Some(source) = source_error.lock().expect("never poisoned").take() {
                        return Error::Source {
                            what: format!("{what} in repository {repository}"),
                            source,
                        };
                    }
                    Error::Transport {
                        registry: self.registry.clone(),
                        what: format!("{what} in repository {repository}"),
                        source: Box::new(e),
                    }
                })?;
            if resp.status() == StatusCode::UNAUTHORIZED && own && !reauthenticated {
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse);
                if let Some(c) = challenge {
                    let next = self.authorization(&scope, Some(&c))?;
                    if next.is_some() && next != auth {
                        drain(resp);
                        auth = next;
                        reauthenticated = true;
                        continue;
                    }
                }
            }
            return Ok(resp);
        }
    }

    /// The error for an unexpected response.
    fn status_error(&self, resp: Response<ureq::Body>, repository: &str, what: &str) -> Error {
        let status = resp.status();
        let detail = error_detail(resp);
        let (registry, repository, what) = (
            self.registry.clone(),
            repository.to_string(),
            what.to_string(),
        );
        match status {
            StatusCode::UNAUTHORIZED => Error::Unauthorized {
                registry,
                repository,
                what,
                detail,
            },
            StatusCode::FORBIDDEN => Error::Denied {
                registry,
                repository,
                what,
                detail,
            },
            StatusCode::NOT_FOUND => Error::NotFound {
                registry,
                repository,
                what,
                detail,
            },
            s => Error::Status {
                registry,
                repository,
                what,
                status: s.as_u16(),
                detail,
            },
        }
    }

    fn url(&self, tail: &str) -> Result<String> {
        Ok(format!("{}/v2/{tail}", self.base()?))
    }

    /// `GET /v2/<repository>/manifests/<reference>` (a tag or a digest). The bytes are
    /// checked against the digest when `reference` is one, and against the registry's
    /// `Docker-Content-Digest` header when it sends one.
    pub fn get_manifest(&self, repository: &str, reference: &str) -> Result<FetchedManifest> {
        let what = if Digest::parse(reference).is_ok() {
            format!("manifest {reference}")
        } else {
            format!("manifest for tag {reference}")
        };
        let url = self.url(&format!("{repository}/manifests/{reference}"))?;
        let resp = self.send(Req {
            method: Method::Get,
            url: &url,
            headers: &[("Accept", MANIFEST_ACCEPT)],
            body: SendBody::None,
            repository,
            access: Access::Pull,
            also_pull: None,
            what: &what,
        })?;
        if resp.status() != StatusCode::OK {
            return Err(self.status_error(resp, repository, &what));
        }
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .take(hoist_core::store::MAX_JSON_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                registry: self.registry.clone(),
                what: format!("{what} in repository {repository}"),
                source,
            })?;
        let full_what = format!("{}/{repository}: {what}", self.registry);
        if bytes.len() as u64 > hoist_core::store::MAX_JSON_SIZE {
            return Err(Error::InvalidManifest {
                what: full_what,
                reason: format!("larger than {} bytes", hoist_core::store::MAX_JSON_SIZE),
            });
        }
        let digest = Digest::of(&bytes);
        let expected = Digest::parse(reference).ok().or(header_digest);
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                what: full_what,
                expected,
                found: digest,
            });
        }
        let sniff: hoist_format::oci::Sniff =
            serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest {
                what: full_what.clone(),
                reason: format!("not JSON: {e}"),
            })?;
        let media_type = sniff
            .media_type
            .clone()
            .filter(|m| !m.is_empty())
            .or(content_type.filter(|c| media_type::is_index(c) || media_type::is_manifest(c)))
            .unwrap_or_else(|| {
                if sniff.is_index() {
                    media_type::OCI_INDEX.to_string()
                } else {
                    media_type::OCI_MANIFEST.to_string()
                }
            });
        if !media_type::is_index(&media_type) && !media_type::is_manifest(&media_type) {
            return Err(Error::InvalidManifest {
                what: full_what,
                reason: format!(
                    "media type {media_type:?} is not an image manifest or index \
                     (Docker schema 1 and artifacts are not supported)"
                ),
            });
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD` or `GET /v2/<repository>/blobs/<digest>`: what was asked (for messages) and the
    /// answer, whatever its status.
    fn blob_request(
        &self,
        method: Method,
        repository: &str,
        digest: &Digest,
    ) -> Result<(String, Response<ureq::Body>)> {
        let what = format!("blob {digest}");
        let url = self.url(&format!("{repository}/blobs/{digest}"))?;
        let resp = self.send(Req {
            method,
            url: &url,
            headers: &[],
            body: SendBody::None,
            repository,
            access: Access::Pull,
            also_pull: None,
            what: &what,
        })?;
        Ok((what, resp))
    }

    /// `HEAD /v2/<repository>/blobs/<digest>`: the blob's size if the registry has it.
    pub fn blob_size(&self, repository: &str, digest: &Digest) -> Result<Option<u64>> {
        let (what, resp) = self.blob_request(Method::Head, repository, digest)?;
        match resp.status() {
            StatusCode::OK => Ok(Some(
                resp.headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error(resp, repository, &what)),
        }
    }

    /// `GET /v2/<repository>/blobs/<digest>` (redirects followed, without the credentials):
    /// a reader of exactly `size` bytes. More bytes, or fewer before the end, are an
    /// [`io::ErrorKind::InvalidData`] or [`io::ErrorKind::UnexpectedEof`] error from the
    /// reader; the caller checks the digest of what it read.
    pub fn get_blob(&self, repository: &str, digest: &Digest, size: u64) -> Result<BlobReader> {
        let (what, resp) = self.blob_request(Method::Get, repository, digest)?;
        if resp.status() != StatusCode::OK {
            return Err(self.status_error(resp, repository, &what));
        }
        Ok(BlobReader {
            inner: Box::new(resp.into_body().into_reader()),
            expected: size,
            read: 0,
            what: format!("{}/{repository}: {what}", self.registry),
        })
    }

    /// `POST /v2/<repository>/blobs/uploads/<query>`; the URL posted to and the answer.
    fn post_upload(
        &self,
        repository: &str,
        query: &str,
        also_pull: Option<&str>,
        what: &str,
    ) -> Result<(String, Response<ureq::Body>)> {
        let url = self.url(&format!("{repository}/blobs/uploads/{query}"))?;
        let resp = self.send(Req {
            method: Method::Post,
            url: &url,
            headers: &[],
            body: SendBody::None,
            repository,
            access: Access::PullPush,
            also_pull,
            what,
        })?;
        Ok((url, resp))
    }

    /// `POST /v2/<repository>/blobs/uploads/`: the URL to send the blob to.
    fn start_upload(&self, repository: &str, what: &str) -> Result<String> {
        let (url, resp) = self.post_upload(repository, "", None, what)?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(resp, repository, what));
        }
        let location = self.location(&resp, &url, repository, what)?;
        drain(resp);
        Ok(location)
    }

    /// The absolute URL of a response's `Location` (which may be relative to `url`).
    fn location(
        &self,
        resp: &Response<ureq::Body>,
        url: &str,
        repository: &str,
        what: &str,
    ) -> Result<String> {
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Error::Status {
                registry: self.registry.clone(),
                repository: repository.to_string(),
                what: what.to_string(),
                status: resp.status().as_u16(),
                detail: "the upload response has no Location header".into(),
            })?;
        Ok(
            if location.starts_with("http://") || location.starts_with("https://") {
                location
            } else if location.starts_with('/') {
                format!("{}{location}", self.base()?)
            } else {
                let dir = url.rsplit_once('/').map_or(url, |(d, _)| d);
                format!("{dir}/{location}")
            },
        )
    }

    /// Closes an upload: `PUT <location>?digest=…` with `body` (the whole blob, or nothing
    /// after a PATCH). The registry checks the digest.
    fn finish_upload(
        &self,
        repository: &str,
        location: &str,
        digest: &Digest,
        body: SendBody<'_, '_>,
        size: Option<u64>,
        what: &str,
    ) -> Result<()> {
        let mut put_url = location.to_string();
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str(&format!("digest=sha256%3A{}", digest.hex()));
        // A known size goes as Content-Length (some registries refuse chunked PUT bodies).
        let length = size.map(|n| n.to_string());
        let mut headers = vec![("Content-Type", "application/octet-stream")];
        if let Some(l) = &length {
            headers.push(("Content-Length", l.as_str()));
        }
        let resp = self.send(Req {
            method: Method::Put,
            url: &put_url,
            headers: &headers,
            body,
            repository,
            access: Access::PullPush,
            also_pull: None,
            what,
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.status_error(resp, repository, what));
        }
        drain(resp);
        Ok(())
    }

    /// Uploads a blob of known digest and size: `POST /v2/<repository>/blobs/uploads/`, then
    /// one monolithic `PUT <location>?digest=…` with what `open` gives (opened again when the
    /// connection drops). The registry checks the digest.
    pub fn upload_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        open: &Opener<'_>,
    ) -> Result<()> {
        let what = format!("upload of blob {digest}");
        let mut attempt = 1;
        loop {
            let location = self.start_upload(repository, &what)?;
            match self.finish_upload(
                repository,
                &location,
                digest,
                SendBody::Open(open),
                Some(size),
                &what,
            ) {
                Ok(()) => return Ok(()),
                Err(e) if attempt < MAX_ATTEMPTS && worth_new_session(&e) => {
                    // The blob may have landed before the answer was lost.
                    if self.blob_size(repository, digest)? == Some(size) {
                        return Ok(());
                    }
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Asks the registry to mount `digest` from repository `from` into `repository`
    /// (`POST …/blobs/uploads/?mount=…&from=…`); false when it would not (it then offers an
    /// upload, which is cancelled).
    pub fn mount_blob(&self, repository: &str, digest: &Digest, from: &str) -> Result<bool> {
        let what = format!("mount of blob {digest} from {from}");
        let query = format!("?mount=sha256%3A{}&from={from}", digest.hex());
        let (url, resp) = self.post_upload(repository, &query, Some(from), &what)?;
        match resp.status() {
            StatusCode::CREATED => {
                drain(resp);
                Ok(true)
            }
            StatusCode::ACCEPTED => {
                let location = self.location(&resp, &url, repository, &what)?;
                drain(resp);
                // The upload session would expire by itself; a failed cancel changes nothing.
                if let Ok(r) = self.send(Req {
                    method: Method::Delete,
                    url: &location,
                    headers: &[],
                    body: SendBody::None,
                    repository,
                    access: Access::PullPush,
                    also_pull: None,
                    what: &what,
                }) {
                    drain(r);
                }
                Ok(false)
            }
            // Refused (no pull access to `from` any more, the blob gone from it, a registry
            // without mounts): upload instead, as docker does.
            _ => {
                drain(resp);
                Ok(false)
            }
        }
    }

    /// `PUT /v2/<repository>/manifests/<reference>` with the bytes as they are; returns the
    /// digest the registry reports (checked against the bytes' own).
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let what = format!("manifest {reference}");
        let url = self.url(&format!("{repository}/manifests/{reference}"))?;
        let resp = self.send(Req {
            method: Method::Put,
            url: &url,
            headers: &[("Content-Type", media_type)],
            body: SendBody::Bytes(bytes),
            repository,
            access: Access::PullPush,
            also_pull: None,
            what: &what,
        })?;
        if resp.status() != StatusCode::CREATED && resp.status() != StatusCode::OK {
            return Err(self.status_error(resp, repository, &what));
        }
        let digest = Digest::of(bytes);
        let reported = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        drain(resp);
        if let Some(r) = reported
            && r != digest
        {
            return Err(Error::DigestMismatch {
                what: format!(
                    "{}/{repository}: {what} (as the registry stored it)",
                    self.registry
                ),
                expected: digest,
                found: r,
            });
        }
        Ok(digest)
    }
}

/// A blob's body, bounded to its declared size.
pub struct BlobReader {
    inner: Box<dyn Read + Send>,
    expected: u64,
    read: u64,
    what: String,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("what", &self.what)
            .field("expected", &self.expected)
            .field("read", &self.read)
            .finish()
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Read at most one byte past the declared size: enough to tell that it is too long.
        let room = (self.expected.saturating_add(1) - self.read).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.read += n as u64;
        if self.read > self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: longer than the declared {} bytes",
                    self.what, self.expected
                ),
            ));
        }
        if n == 0 && self.read < self.expected {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: the connection ended after {} of {} bytes",
                    self.what, self.read, self.expected
                ),
            ));
        }
        Ok(n)
    }
}

/// A body's reader whose errors are kept, so that a failure to read the source is not taken
/// for (and retried as) a failure of the connection.
struct Watched<'s, R> {
    inner: R,
    slot: &'s Mutex<Option<io::Error>>,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| watch(self.slot, e))
    }
}

/// Keeps `e` (its kind and message) in `slot` and gives it back.
fn watch(slot: &Mutex<Option<io::Error>>, e: io::Error) -> io::Error {
    let copy = io::Error::new(e.kind(), e.to_string());
    slot.lock().expect("never poisoned").get_or_insert(copy);
    e
}

/// Whether an upload that failed this way may succeed in a new session: a dropped
/// connection or a 5xx, not an error of the source or a refusal.
fn worth_new_session(e: &Error) -> bool {
    match e {
        Error::Transport { source, .. } => retryable(source),
        Error::Status { status, .. } => (500..600).contains(status),
        _ => false,
    }
}

/// Whether a transport error is a certificate the roots do not vouch for (as opposed to a
/// server that does not speak TLS).
fn is_certificate_error(e: &ureq::Error) -> bool {
    fn rustls_cert(e: &rustls::Error) -> bool {
        matches!(
            e,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        )
    }
    match e {
        ureq::Error::Rustls(r) => rustls_cert(r),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(rustls_cert),
        _ => false,
    }
}

/// Whether a transport error may go away when the request is sent again.
fn retryable(e: &ureq::Error) -> bool {
    match e {
        // A TLS failure (a certificate, a server that does not speak TLS) is the same the
        // next time.
        ureq::Error::Io(io) => !io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_)
        | ureq::Error::BodyStalled => true,
        _ => false,
    }
}

/// The wait before retry number `attempt` (1-based).
fn backoff(attempt: u32) -> Duration {
    INITIAL_BACKOFF * 2u32.pow(attempt.saturating_sub(1))
}

/// Reads what is left of a response so the connection can be reused.
fn drain(resp: Response<ureq::Body>) {
    // A failure only means the connection is not reused.
    let _ = io::copy(
        &mut resp.into_body().into_reader().take(ERROR_BODY_MAX),
        &mut io::sink(),
    );
}

/// The registry's explanation of an error: distribution's `{"errors":[{code,message,detail}]}`
/// as `CODE: message`, else the start of the body as text.
fn error_detail(resp: Response<ureq::Body>) -> String {
    let mut bytes = Vec::new();
    // A body that cannot be read leaves the detail empty; the status says enough.
    let _ = resp
        .into_body()
        .into_reader()
        .take(ERROR_BODY_MAX)
        .read_to_end(&mut bytes);
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(&bytes) {
        return e
            .errors
            .iter()
            .map(|i| format!("{}: {}", i.code, i.message))
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(&bytes);
    text.trim().chars().take(200).collect()
}

/// Whether a `host[:port]` names a loopback address: `localhost`, 127.0.0.0/8, `::1`.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .filter(|(h, p)| !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.1.2.3:80",
            "[::1]:5000",
            "[::1]",
            "::1",
            "LOCALHOST:1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "docker.io",
            "registry-1.docker.io",
            "10.0.0.1:5000",
            "128.0.0.1",
            "[::2]:5000",
            "localhost.example.com",
            "127.0.0.1.example.com:5000",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn backoff_doubles() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_millis(1000));
    }

    #[test]
    fn blob_reader_bounds() {
        let mk = |data: &'static [u8], expected| BlobReader {
            inner: Box::new(data),
            expected,
            read: 0,
            what: "b".into(),
        };
        let mut out = Vec::new();
        mk(b"abc", 3).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        let e = mk(b"abcd", 3).read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let e = mk(b"ab", 3).read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn docker_hub_host() {
        let c = Client::new("docker.io", ClientOptions::default()).unwrap();
        assert_eq!(c.host, DOCKER_HUB_HOST);
        assert!(!c.plain_http_allowed());
        let c = Client::new("127.0.0.1:5000", ClientOptions::default()).unwrap();
        assert!(c.plain_http_allowed());
        let c = Client::new(
            "reg.example:5000",
            ClientOptions {
                insecure: true,
                ..ClientOptions::default()
            },
        )
        .unwrap();
        assert!(c.plain_http_allowed());
    }
}
