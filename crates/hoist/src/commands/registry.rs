//! What every command that talks to a registry shares: TLS and credential flags, and the
//! client they give.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use hoist_registry::auth::Credentials;
use hoist_registry::authfile::{self, AuthFile};
use hoist_registry::{Client, ClientOptions};

/// TLS and credentials of a registry (skopeo's flag names).
#[derive(Clone, clap::Args)]
pub struct RegistryArgs {
    /// Check the registry's TLS certificate. false also allows plain HTTP to any registry
    /// (loopback registries may always use plain HTTP, as in docker)
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true,
    )]
    pub tls_verify: bool,
    /// The registry's certificates: *.crt roots (added to the system's), a client *.cert with
    /// its *.key [default: /etc/docker/certs.d/HOST[:PORT] or /etc/containers/certs.d/…]
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// The credentials file [default: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Credentials for this command only, instead of the credentials file
    #[arg(long, value_name = "USER[:PASSWORD]")]
    pub creds: Option<String>,
}

impl std::fmt::Debug for RegistryArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password given with --creds.
        f.debug_struct("RegistryArgs")
            .field("tls_verify", &self.tls_verify)
            .field("cert_dir", &self.cert_dir)
            .field("authfile", &self.authfile)
            .field("creds", &self.creds.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl RegistryArgs {
    /// The credentials file these flags name.
    pub fn auth_file(&self) -> AuthFile {
        AuthFile::at(self.authfile.clone().unwrap_or_else(authfile::default_path))
    }

    /// The credentials for `registry`: `--creds`, else the credentials file's.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(c) = &self.creds {
            let (user, pass) = c.split_once(':').unwrap_or((c.as_str(), ""));
            if user.is_empty() {
                bail!("--creds: the user name is empty");
            }
            return Ok(Some(Credentials {
                username: user.to_string(),
                password: pass.to_string(),
            }));
        }
        let file = self.auth_file();
        file.get(registry)
            .with_context(|| format!("reading the credentials for {registry}"))
    }

    /// A client of `registry` (a name's domain) with these flags.
    pub fn client(&self, registry: &str) -> Result<Client> {
        self.client_with(registry, self.credentials(registry)?)
    }

    /// A client of `registry` with these TLS flags and `credentials`.
    pub fn client_with(&self, registry: &str, credentials: Option<Credentials>) -> Result<Client> {
        Client::new(
            registry,
            ClientOptions {
                insecure: !self.tls_verify,
                cert_dir: self.cert_dir.clone(),
                credentials,
            },
        )
        .with_context(|| format!("setting up TLS for {registry}"))
    }
}

/// The registry of a command-line name (`docker.io` when it names none), checked.
pub fn registry_of(name: &str) -> Result<String> {
    let trimmed = name
        .strip_prefix("https://")
        .or_else(|| name.strip_prefix("http://"))
        .unwrap_or(name);
    let host = trimmed.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        bail!("invalid registry {name:?}");
    }
    Ok(match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    })
}
