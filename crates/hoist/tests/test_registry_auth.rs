//! Registries that ask for credentials (htpasswd) or speak TLS with a private CA: `hoist
//! login`/`logout`, the credentials file shared with docker and skopeo, `--cert-dir` and
//! `--tls-verify`. Each test starts its own Debian `docker-registry` on 127.0.0.1.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use crate::common::{self, Env};
use crate::test_registry::{DIVE, Registry, s, skopeo};

const USER: &str = "hoist";
const PASSWORD: &str = "s3cret pass";

/// A registry with htpasswd auth (one user, [`USER`]/[`PASSWORD`]).
fn htpasswd_registry(dir: &Path) -> Option<Registry> {
    // bcrypt cost 4: the lowest, the test needs no strength and the registry checks every
    // request.
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let file = dir.join("htpasswd");
    std::fs::write(&file, format!("{USER}:{hash}\n")).unwrap();
    Registry::start_with(
        "",
        &format!(
            "auth:\n  htpasswd:\n    realm: hoist-test\n    path: {}\n",
            file.display()
        ),
    )
}

/// `hoist ARGS` with `--authfile FILE` right after the command name (after global flags).
fn with_authfile<'a>(args: &[&'a str], file: &'a str) -> Vec<&'a str> {
    let at = args.iter().position(|a| !a.starts_with('-')).unwrap() + 1;
    let mut v = args[..at].to_vec();
    v.extend(["--authfile", file]);
    v.extend_from_slice(&args[at..]);
    v
}

#[test]
fn htpasswd_registry_needs_login_and_shares_docker_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reg) = htpasswd_registry(dir.path()) else {
        return;
    };
    let env = Env::new();
    env.ok(&["load", "-i", s(&common::data(DIVE))]);
    let id = env.inspect("dive-test:latest")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let registry = format!("127.0.0.1:{}", reg.port);
    let dest = reg.name("dive:1");
    let auth = env.path("auth/config.json");
    let auth_s = s(&auth);

    // No credentials: a 401 that names the registry, the repository and the request.
    let before = env.snapshot();
    let err = env.fails(&with_authfile(&["push", "dive-test:latest", &dest], auth_s));
    for part in [
        registry.as_str(),
        "unauthorized",
        "repository dive",
        "requires authentication",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    assert_eq!(reg.blob_uploads("dive"), 0);

    // A wrong password is refused by login and nothing is written.
    let out = env.with_stdin(
        &with_authfile(
            &["login", "-u", USER, "--password-stdin", &registry],
            auth_s,
        ),
        b"wrong\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&registry), "{err}");
    assert!(err.contains("wrong username or password"), "{err}");
    assert!(!auth.exists());

    // The right one is stored as docker stores it.
    let out = env.with_stdin(
        &with_authfile(
            &["login", "-u", USER, "--password-stdin", &registry],
            auth_s,
        ),
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
    let file: Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert_eq!(
        file["auths"][&registry]["auth"],
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    assert_eq!(env.snapshot(), before, "login changed the store");

    // Push and pull work with it.
    let pushed = env.ok(&with_authfile(
        &["-q", "push", "dive-test:latest", &dest],
        auth_s,
    ));
    assert_eq!(reg.blob_uploads("dive"), 15);
    let other = Env::new();
    other.ok(&with_authfile(&["pull", &dest], auth_s));
    assert_eq!(other.inspect(&dest)["Id"], id.as_str());

    // skopeo reads the same file (docker's format).
    if let Some(skopeo) = skopeo() {
        let raw = common::run_ok(
            Command::new(&skopeo)
                .args([
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    "--authfile",
                    auth_s,
                ])
                .arg(format!("docker://{dest}")),
        );
        assert_eq!(
            format!("sha256:{}\n", common::sha256(raw.as_bytes())),
            pushed
        );
    }

    // --creds overrides the file for one command.
    let err = other.fails(&[
        "pull",
        "--authfile",
        s(&env.path("none.json")),
        "--creds",
        "hoist:nope",
        &dest,
    ]);
    assert!(err.contains("unauthorized"), "{err}");

    // Logout removes the entry; the next pull is refused again.
    let out = env.ok(&with_authfile(&["logout", &registry], auth_s));
    assert_eq!(out, format!("Removing login credentials for {registry}\n"));
    let file: Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert_eq!(file["auths"], serde_json::json!({}));
    let out = env.ok(&with_authfile(&["logout", &registry], auth_s));
    assert_eq!(out, format!("Not logged in to {registry}\n"));
    let third = Env::new();
    let err = third.fails(&with_authfile(&["pull", &dest], auth_s));
    assert!(err.contains("unauthorized"), "{err}");

    // Without --authfile, $DOCKER_CONFIG/config.json is docker's file and hoist's.
    let docker_config = env.path("docker-config");
    let mut login = env.cmd(&["login", "-u", USER, "--password-stdin", &registry]);
    login
        .env("DOCKER_CONFIG", &docker_config)
        .env_remove("REGISTRY_AUTH_FILE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(PASSWORD.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: Value =
        serde_json::from_slice(&std::fs::read(docker_config.join("config.json")).unwrap()).unwrap();
    assert!(file["auths"][&registry]["auth"].is_string(), "{file}");
    let mut pull = third.cmd(&["pull", &dest]);
    pull.env("DOCKER_CONFIG", &docker_config)
        .env_remove("REGISTRY_AUTH_FILE");
    let out = pull.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(third.inspect(&dest)["Id"], id.as_str());
}

fn openssl(dir: &Path, args: &[&str]) {
    common::run_ok(Command::new("openssl").args(args).current_dir(dir));
}

/// A key `NAME.key` and a certificate `NAME.<cert_ext>` for `subject`, signed by the CA of
/// `dir` (`ca.crt`, `ca.key`) with the extensions `ext` (openssl's extfile lines).
fn signed(dir: &Path, name: &str, cert_ext: &str, subject: &str, ext: &str) {
    let (key, csr, cnf) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.cnf"),
    );
    let cert = format!("{name}.{cert_ext}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr,
        ],
    );
    std::fs::write(dir.join(&cnf), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &cnf,
            "-out",
            &cert,
        ],
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with openssl.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=hoist test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    signed(
        dir,
        "server",
        "crt",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    );
}

#[test]
fn tls_registry_with_a_private_ca_needs_cert_dir() {
    if common::peer("openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let Some(reg) = Registry::start_with(
        &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            dir.path().join("server.crt").display(),
            dir.path().join("server.key").display()
        ),
        "",
    ) else {
        return;
    };
    let certs = dir.path().join("certs.d");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(dir.path().join("ca.crt"), certs.join("ca.crt")).unwrap();

    let env = Env::new();
    env.ok(&["load", "-i", s(&common::data(DIVE))]);
    let id = env.inspect("dive-test:latest")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let dest = reg.name("dive:tls");

    // Refused without the CA: the certificate is named, and no plain HTTP is tried instead.
    let err = env.fails(&["push", "dive-test:latest", &dest]);
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("--cert-dir"), "{err}");
    assert!(
        err.contains(&format!("https://127.0.0.1:{}", reg.port)),
        "{err}"
    );
    assert_eq!(reg.blob_uploads("dive"), 0);

    // With it, push and pull work.
    env.ok(&["push", "--cert-dir", s(&certs), "dive-test:latest", &dest]);
    assert_eq!(reg.blob_uploads("dive"), 15);
    let other = Env::new();
    let err = other.fails(&["pull", &dest]);
    assert!(err.contains("certificate"), "{err}");
    other.ok(&["pull", "--cert-dir", s(&certs), &dest]);
    assert_eq!(other.inspect(&dest)["Id"], id.as_str());

    // --tls-verify=false skips the check.
    let third = Env::new();
    third.ok(&["pull", "--tls-verify=false", &dest]);
    assert_eq!(third.inspect(&dest)["Id"], id.as_str());

    // A certificate directory with a broken file is named.
    std::fs::write(certs.join("zz.crt"), "not a certificate\n").unwrap();
    let err = third.fails(&["pull", "--cert-dir", s(&certs), &dest]);
    assert!(err.contains("zz.crt"), "{err}");
    assert!(err.contains("no PEM certificate"), "{err}");
}

#[test]
fn credentials_go_to_the_helper_config_json_names() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reg) = htpasswd_registry(dir.path()) else {
        return;
    };
    // A credential helper speaking docker's protocol, keeping one secret in a file.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let db = dir.path().join("helper-db.json");
    let helper = bin.join("docker-credential-hoisttest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n\
             case \"$1\" in\n\
             store) cat > '{db}' ;;\n\
             get) read server; if [ -f '{db}' ]; then cat '{db}'; \
                  else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
             erase) read server; rm -f '{db}' ;;\n\
             esac\n",
            db = db.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let auth = dir.path().join("config.json");
    std::fs::write(&auth, r#"{"credsStore":"hoisttest"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let registry = format!("127.0.0.1:{}", reg.port);
    let env = Env::new();
    let run = |args: &[&str], stdin: &[u8]| {
        use std::io::Write;
        let mut c = env.cmd(args);
        c.env("PATH", &path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };

    let out = run(
        &[
            "login",
            "--authfile",
            s(&auth),
            "-u",
            USER,
            "--password-stdin",
            &registry,
        ],
        PASSWORD.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The secret is in the helper, not in the file, and no warning about the file is shown.
    let stored: Value = serde_json::from_slice(&std::fs::read(&db).unwrap()).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"ServerURL": registry, "Username": USER, "Secret": PASSWORD})
    );
    assert_eq!(
        std::fs::read_to_string(&auth).unwrap(),
        r#"{"credsStore":"hoisttest"}"#
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("unencrypted"));

    env.ok(&["load", "-i", s(&common::data(DIVE))]);
    let dest = reg.name("helper:1");
    let out = run(
        &["push", "--authfile", s(&auth), "dive-test:latest", &dest],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(reg.blob_uploads("helper"), 15);

    let out = run(&["logout", "--authfile", s(&auth), &registry], b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Removing login credentials for {registry}\n")
    );
    assert!(!db.exists());
    let out = run(&["pull", "--authfile", s(&auth), &dest], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
}

#[test]
fn a_registry_asking_for_a_client_certificate_gets_the_one_in_cert_dir() {
    if common::peer("openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    signed(
        dir.path(),
        "client",
        "cert",
        "/CN=hoist client",
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
    );
    let Some(reg) = Registry::start_with(
        &format!(
            "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
            dir.path().join("server.crt").display(),
            dir.path().join("server.key").display(),
            dir.path().join("ca.crt").display()
        ),
        "",
    ) else {
        return;
    };
    let only_ca = dir.path().join("only-ca");
    let with_client = dir.path().join("with-client");
    for d in [&only_ca, &with_client] {
        std::fs::create_dir(d).unwrap();
        std::fs::copy(dir.path().join("ca.crt"), d.join("ca.crt")).unwrap();
    }
    for f in ["client.cert", "client.key"] {
        std::fs::copy(dir.path().join(f), with_client.join(f)).unwrap();
    }
    let env = Env::new();
    env.ok(&["load", "-i", s(&common::data(DIVE))]);
    let dest = reg.name("mtls:1");

    let err = env.fails(&["push", "--cert-dir", s(&only_ca), "dive-test:latest", &dest]);
    assert!(
        err.contains(&format!(
            "the TLS handshake with https://127.0.0.1:{}",
            reg.port
        )),
        "{err}"
    );
    assert!(err.contains("client certificate"), "{err}");
    assert_eq!(reg.blob_uploads("mtls"), 0);

    env.ok(&[
        "push",
        "--cert-dir",
        s(&with_client),
        "dive-test:latest",
        &dest,
    ]);
    assert_eq!(reg.blob_uploads("mtls"), 15);
    let other = Env::new();
    other.ok(&["pull", "--cert-dir", s(&with_client), &dest]);
    assert_eq!(
        other.inspect(&dest)["Id"],
        env.inspect("dive-test:latest")["Id"]
    );
}

/// An address of this machine that is not loopback, if it has one.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the local address of the route.
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    for probe in ["192.0.2.1:9", "10.255.255.1:9", "8.8.8.8:53"] {
        if s.connect(probe).is_ok()
            && let Ok(a) = s.local_addr()
            && !a.ip().is_loopback()
            && !a.ip().is_unspecified()
        {
            return Some(a.ip());
        }
    }
    None
}

#[test]
fn plain_http_is_used_only_for_loopback_or_without_tls_verification() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no non-loopback address");
        return;
    };
    let Some(reg) = Registry::start_on(ip, "", "") else {
        return;
    };
    let env = Env::new();
    env.ok(&["load", "-i", s(&common::data(DIVE))]);
    let dest = reg.name("plain:1");

    let err = env.fails(&["push", "dive-test:latest", &dest]);
    assert!(
        err.contains(&format!("https://{ip}:{}/v2/", reg.port)),
        "{err}"
    );
    assert!(
        err.contains("plain HTTP is tried only for loopback registries or with --tls-verify=false"),
        "{err}"
    );
    assert_eq!(reg.blob_uploads("plain"), 0);

    env.ok(&["push", "--tls-verify=false", "dive-test:latest", &dest]);
    assert_eq!(reg.blob_uploads("plain"), 15);
    let other = Env::new();
    other.fails(&["pull", &dest]);
    other.ok(&["pull", "--tls-verify=false", &dest]);
    assert_eq!(
        other.inspect(&dest)["Id"],
        env.inspect("dive-test:latest")["Id"]
    );
}
