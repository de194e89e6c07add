//! The client against a scripted HTTP server on 127.0.0.1: the bearer-token flow (scope,
//! service, credentials), Basic auth, typed 401/403/404 errors, retries on 5xx, and blob
//! bodies that are too long or too short. Only loopback is used.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use hoist_format::Digest;
use hoist_registry::auth::Credentials;
use hoist_registry::{Client, ClientOptions, Error};

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    authorization: Option<String>,
    body: String,
}

/// An answer: status, extra headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A server that answers every request with `handler` (one request per connection).
struct Fake {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn start(handler: impl Fn(&Seen, u16) -> Answer + Send + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
                    // Not HTTP (e.g. a TLS handshake): hang up.
                    continue;
                };
                let mut authorization = None;
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap_or((&h, ""));
                    match k.trim().to_ascii_lowercase().as_str() {
                        "authorization" => authorization = Some(v.trim().to_string()),
                        "content-length" => length = v.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let req = Seen {
                    method: method.to_string(),
                    target: target.to_string(),
                    authorization,
                    body: String::from_utf8_lossy(&body).to_string(),
                };
                log.lock().unwrap().push(req.clone());
                let (status, headers, body) = handler(&req, port);
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = conn.write_all(head.as_bytes());
                if method != "HEAD" {
                    let _ = conn.write_all(&body);
                }
            }
        });
        Fake { port, seen }
    }

    fn registry(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

fn ok(body: &[u8]) -> Answer {
    (200, vec![], body.to_vec())
}

fn bearer_challenge(port: u16) -> Vec<(String, String)> {
    vec![(
        "WWW-Authenticate".into(),
        format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake""#),
    )]
}

#[test]
fn an_identity_token_is_exchanged_as_an_oauth_refresh_token() {
    let fake = Fake::start(
        |req, port| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v2/") => (401, bearer_challenge(port), b"{}".to_vec()),
            ("POST", "/token")
                if req.body.contains("grant_type=refresh_token")
                    && req.body.contains("refresh_token=R3FRESH")
                    && req.authorization.is_none() =>
            {
                ok(br#"{"access_token":"ACC3SS"}"#)
            }
            ("GET", "/v2/a/b/manifests/1")
                if req.authorization.as_deref() == Some("Bearer ACC3SS") =>
            {
                ok(MANIFEST)
            }
            _ => (401, bearer_challenge(port), b"{}".to_vec()),
        },
    );
    let client = Client::new(
        &fake.registry(),
        ClientOptions {
            credentials: Some(Credentials {
                username: hoist_registry::auth::IDENTITY_TOKEN_USER.into(),
                password: "R3FRESH".into(),
            }),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    assert_eq!(client.get_manifest("a/b", "1").unwrap().bytes, MANIFEST);
    let token = fake
        .seen()
        .into_iter()
        .find(|s| s.method == "POST")
        .unwrap();
    assert!(token.body.contains("service=fake"), "{token:?}");
    assert!(
        token.body.contains("scope=repository%3Aa%2Fb%3Apull"),
        "{token:?}"
    );
    // The refresh token is never sent to the registry itself.
    assert!(
        fake.seen()
            .iter()
            .filter(|s| s.target.starts_with("/v2/"))
            .all(
                |s| !s.authorization.as_deref().unwrap_or("").contains("R3FRESH")
                    && !s
                        .authorization
                        .as_deref()
                        .unwrap_or("")
                        .starts_with("Basic")
            )
    );
}

#[test]
fn bearer_token_flow_with_credentials() {
    let fake = Fake::start(|req, port| match req.target.as_str() {
        "/v2/" => (401, bearer_challenge(port), b"{}".to_vec()),
        t if t.starts_with("/token?") => {
            // "alice:secret"
            if req.authorization.as_deref() == Some("Basic YWxpY2U6c2VjcmV0") {
                ok(br#"{"token":"T0K"}"#)
            } else {
                (401, vec![], b"{}".to_vec())
            }
        }
        "/v2/a/b/manifests/1" if req.authorization.as_deref() == Some("Bearer T0K") => ok(MANIFEST),
        _ => (401, bearer_challenge(port), b"{}".to_vec()),
    });
    let client = Client::new(
        &fake.registry(),
        ClientOptions {
            credentials: Some(Credentials {
                username: "alice".into(),
                password: "secret".into(),
            }),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let m = client.get_manifest("a/b", "1").unwrap();
    assert_eq!(m.bytes, MANIFEST);
    assert_eq!(m.digest, Digest::of(MANIFEST));
    assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");
    let seen = fake.seen();
    let token = seen
        .iter()
        .find(|s| s.target.starts_with("/token?"))
        .unwrap();
    assert!(token.target.contains("service=fake"), "{token:?}");
    assert!(
        token.target.contains("scope=repository%3Aa%2Fb%3Apull")
            || token.target.contains("scope=repository:a/b:pull"),
        "{token:?}"
    );
    // A second call reuses the token: no new token request.
    client.get_manifest("a/b", "1").unwrap();
    let tokens = fake
        .seen()
        .iter()
        .filter(|s| s.target.starts_with("/token?"))
        .count();
    assert_eq!(tokens, 1);
}

#[test]
fn anonymous_refusal_and_wrong_password_are_clear_errors() {
    let fake = Fake::start(|req, port| match req.target.as_str() {
        t if t.starts_with("/token?") => match req.authorization.as_deref() {
            None => ok(br#"{"token":"anon"}"#),
            Some(_) => (
                401,
                vec![],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad password"}]}"#.to_vec(),
            ),
        },
        _ => (
            401,
            bearer_challenge(port),
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        ),
    });
    let anon = Client::new(&fake.registry(), ClientOptions::default()).unwrap();
    let err = anon.get_manifest("team/app", "v2").unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let msg = err.to_string();
    for part in [
        fake.registry().as_str(),
        "repository team/app",
        "manifest for tag v2",
        "UNAUTHORIZED: authentication required",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }

    let wrong = Client::new(
        &fake.registry(),
        ClientOptions {
            credentials: Some(Credentials {
                username: "bob".into(),
                password: "wrong".into(),
            }),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let err = wrong.get_manifest("team/app", "v2").unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("refused the credentials"), "{msg}");
    assert!(msg.contains("bad password"), "{msg}");
}

#[test]
fn basic_auth_denied_and_not_found() {
    let fake = Fake::start(|req, _| {
        let basic = vec![(
            "WWW-Authenticate".to_string(),
            r#"Basic realm="fake""#.to_string(),
        )];
        match (req.target.as_str(), req.authorization.as_deref()) {
            (_, None) => (401, basic, vec![]),
            ("/v2/", Some(_)) => ok(b"{}"),
            ("/v2/x/manifests/1", Some(_)) => ok(MANIFEST),
            ("/v2/x/manifests/secret", Some(_)) => (
                403,
                vec![],
                br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#.to_vec(),
            ),
            _ => (
                404,
                vec![],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                    .to_vec(),
            ),
        }
    });
    let client = Client::new(
        &fake.registry(),
        ClientOptions {
            credentials: Some(Credentials {
                username: "u".into(),
                password: "p".into(),
            }),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    assert_eq!(client.get_manifest("x", "1").unwrap().bytes, MANIFEST);
    assert!(
        fake.seen()
            .iter()
            .any(|s| s.authorization.as_deref() == Some("Basic dTpw"))
    );
    let err = client.get_manifest("x", "secret").unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err:?}");
    assert!(err.to_string().contains("DENIED"), "{err}");
    let err = client.get_manifest("x", "gone").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("not found: manifest for tag gone in repository x"),
        "{msg}"
    );
}

#[test]
fn server_errors_are_retried_then_reported() {
    let count = Arc::new(Mutex::new(0u32));
    let c = count.clone();
    let fake = Fake::start(move |req, _| match req.target.as_str() {
        "/v2/" => ok(b"{}"),
        "/v2/r/manifests/flaky" => {
            let mut n = c.lock().unwrap();
            *n += 1;
            if *n < 3 {
                (503, vec![], b"busy".to_vec())
            } else {
                ok(MANIFEST)
            }
        }
        _ => (500, vec![], b"broken".to_vec()),
    });
    let client = Client::new(&fake.registry(), ClientOptions::default()).unwrap();
    assert_eq!(client.get_manifest("r", "flaky").unwrap().bytes, MANIFEST);
    assert_eq!(*count.lock().unwrap(), 3);
    let err = client.get_manifest("r", "down").unwrap_err();
    assert!(matches!(err, Error::Status { status: 500, .. }), "{err:?}");
    let attempts = fake
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.target == "/v2/r/manifests/down")
        .count();
    assert_eq!(attempts as u32, hoist_registry::client::MAX_ATTEMPTS);
}

#[test]
fn manifest_digest_and_blob_sizes_are_checked() {
    let fake = Fake::start(|req, _| match req.target.as_str() {
        "/v2/" => ok(b"{}"),
        "/v2/r/manifests/lying" => (
            200,
            vec![(
                "Docker-Content-Digest".into(),
                format!("sha256:{}", "1".repeat(64)),
            )],
            MANIFEST.to_vec(),
        ),
        t if t.starts_with("/v2/r/blobs/") => ok(b"0123456789"),
        _ => (404, vec![], vec![]),
    });
    let client = Client::new(&fake.registry(), ClientOptions::default()).unwrap();
    let err = client.get_manifest("r", "lying").unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    let wrong_digest = format!("sha256:{}", "2".repeat(64));
    let err = client.get_manifest("r", &wrong_digest).unwrap_err();
    assert!(
        matches!(err, Error::NotFound { .. }),
        "{err:?} (404 from the fake)"
    );

    let d = Digest::of(b"0123456789");
    let mut exact = Vec::new();
    client
        .get_blob("r", &d, 10)
        .unwrap()
        .read_to_end(&mut exact)
        .unwrap();
    assert_eq!(exact, b"0123456789");
    let e = client
        .get_blob("r", &d, 5)
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    let e = client
        .get_blob("r", &d, 20)
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    assert_eq!(client.blob_size("r", &d).unwrap(), Some(10));
}
