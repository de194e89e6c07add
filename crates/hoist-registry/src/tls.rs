//! TLS settings of a registry: the roots it is checked against and the client certificate, as
//! docker, podman and skopeo find them.
//!
//! The roots are the system's bundle (`SSL_CERT_FILE`, else the distribution's usual path;
//! Mozilla's roots built into hoist when there is none) plus every `*.crt` of the registry's
//! certificate directory. A `*.cert` with the `*.key` of the same name is the client
//! certificate. The directory is `--cert-dir` when given, else the first of
//! `/etc/docker/certs.d/HOST[:PORT]` and `/etc/containers/certs.d/HOST[:PORT]` that exists.

use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::error::{Error, Result};

/// Where distributions keep the system's CA bundle, in the order Go's crypto/x509 looks.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// Per-registry certificate directories docker and podman read, in this order.
const DEFAULT_CERT_DIRS: &[&str] = &["/etc/docker/certs.d", "/etc/containers/certs.d"];

/// What [`config`] found, for messages and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// The certificate directory used, if any.
    pub dir: Option<PathBuf>,
    /// The `*.crt` files added to the roots.
    pub roots: Vec<PathBuf>,
    /// The client certificate and key, if any.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// The TLS configuration for `host` (`host[:port]`): `cert_dir` (or the default directories)
/// and the system roots; verification off when `verify` is false.
pub fn config(host: &str, cert_dir: Option<&Path>, verify: bool) -> Result<(TlsConfig, CertFiles)> {
    let dir = match cert_dir {
        Some(d) => {
            if !d.is_dir() {
                return Err(Error::Certs {
                    path: d.to_path_buf(),
                    reason: "not a directory".into(),
                });
            }
            Some(d.to_path_buf())
        }
        None => DEFAULT_CERT_DIRS
            .iter()
            .map(|base| Path::new(base).join(host))
            .find(|d| d.is_dir()),
    };
    let files = match &dir {
        Some(d) => scan(d)?,
        None => CertFiles::default(),
    };
    let mut extra: Vec<Certificate<'static>> = Vec::new();
    for p in &files.roots {
        extra.extend(read_certs(p)?);
    }
    let client = match &files.client {
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key_pem = read(key)?;
            let key = PrivateKey::from_pem(&key_pem).map_err(|e| Error::Certs {
                path: key.clone(),
                reason: format!("no usable private key: {e}"),
            })?;
            Some(ClientCert::new_with_certs(&chain, key))
        }
        None => None,
    };
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file());
    let roots = match system {
        Some(bundle) => {
            let mut all = read_certs(&bundle)?;
            all.extend(extra);
            RootCerts::new_with_certs(&all)
        }
        None if extra.is_empty() => RootCerts::WebPki,
        None => RootCerts::new_with_certs(&extra),
    };
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .disable_verification(!verify)
        .build();
    Ok((tls, CertFiles { dir, ..files }))
}

/// The `*.crt` roots and the `*.cert`/`*.key` pair of a certificate directory (docker's rules:
/// a `.cert` needs its `.key` and the other way round).
fn scan(dir: &Path) -> Result<CertFiles> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Certs {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut names: Vec<PathBuf> = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Error::Certs {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        names.push(e.path());
    }
    names.sort();
    let ext = |p: &Path, want: &str| p.extension().is_some_and(|x| x == want);
    let roots: Vec<PathBuf> = names.iter().filter(|p| ext(p, "crt")).cloned().collect();
    let mut client = None;
    for cert in names.iter().filter(|p| ext(p, "cert")) {
        let key = cert.with_extension("key");
        if !names.contains(&key) {
            return Err(Error::Certs {
                path: cert.clone(),
                reason: format!("client certificate without its key {}", key.display()),
            });
        }
        if client.is_some() {
            return Err(Error::Certs {
                path: cert.clone(),
                reason: "more than one client certificate in the directory".into(),
            });
        }
        client = Some((cert.clone(), key));
    }
    if let Some(key) = names
        .iter()
        .filter(|p| ext(p, "key"))
        .find(|k| !names.contains(&k.with_extension("cert")))
    {
        return Err(Error::Certs {
            path: key.clone(),
            reason: format!(
                "client key without its certificate {}",
                key.with_extension("cert").display()
            ),
        });
    }
    Ok(CertFiles {
        dir: None,
        roots,
        client,
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Certs {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Every certificate of a PEM file; a file with none is an error.
fn read_certs(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem = read(path)?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Certs {
                    path: path.to_path_buf(),
                    reason: format!("not a PEM certificate file: {e}"),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Certs {
            path: path.to_path_buf(),
            reason: "no PEM certificate in the file".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_pairs_and_refuses_orphans() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.crt", "a.crt", "client.cert", "client.key", "notes.txt"] {
            std::fs::write(d.path().join(f), "x").unwrap();
        }
        let found = scan(d.path()).unwrap();
        assert_eq!(
            found.roots,
            vec![d.path().join("a.crt"), d.path().join("b.crt")]
        );
        assert_eq!(
            found.client,
            Some((d.path().join("client.cert"), d.path().join("client.key")))
        );
        std::fs::remove_file(d.path().join("client.key")).unwrap();
        let e = scan(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("client.cert") && e.contains("without its key"),
            "{e}"
        );
        std::fs::remove_file(d.path().join("client.cert")).unwrap();
        std::fs::write(d.path().join("other.key"), "x").unwrap();
        let e = scan(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("other.key") && e.contains("without its certificate"),
            "{e}"
        );
    }

    #[test]
    fn a_crt_without_certificates_is_named() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ca.crt"), "hello\n").unwrap();
        let e = config("h:1", Some(d.path()), true).unwrap_err().to_string();
        assert!(
            e.contains("ca.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = config("h:1", Some(&d.path().join("nope")), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("not a directory"), "{e}");
    }
}
