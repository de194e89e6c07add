//! `hoist login`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use hoist_registry::auth::Credentials;
use hoist_registry::authfile::StoredIn;

use super::Ctx;
use super::registry::{RegistryArgs, registry_of};

/// Log in to a registry.
///
/// The credentials are checked against the registry (as `docker login` does), then stored in
/// docker's config.json (or the credential helper it names), where docker, podman and skopeo
/// find them too.
#[derive(clap::Args)]
pub struct Args {
    /// The registry [default: docker.io]
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
    /// The user name [default: asked on the terminal]
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (visible to other users in the process list: prefer --password-stdin)
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Args")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("password_stdin", &self.password_stdin)
            .field("registry_args", &self.registry_args)
            .finish()
    }
}

/// Runs `hoist login`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let registry = registry_of(args.registry.as_deref().unwrap_or("docker.io"))?;
    if args.registry_args.creds.is_some() {
        bail!("--creds is for one command; give -u and --password-stdin to log in");
    }
    let username = match args.username {
        Some(u) => u,
        None if std::io::stdin().is_terminal() && !args.password_stdin => {
            eprint!("Username: ");
            std::io::stderr().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_string()
        }
        None => bail!("no user name: pass -u USER"),
    };
    if username.is_empty() {
        bail!("the user name is empty");
    }
    let password = if let Some(p) = args.password {
        p
    } else if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut text)
            .context("reading the password from standard input")?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ").context("reading the password")?
    } else {
        bail!("no password: pass --password-stdin (standard input is not a terminal)");
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let creds = Credentials { username, password };
    let client = args
        .registry_args
        .client_with(&registry, Some(creds.clone()))?;
    client
        .check_login()
        .with_context(|| format!("logging in to {registry}"))?;
    let file = args.registry_args.auth_file();
    let stored = file
        .store(&registry, &creds)
        .with_context(|| format!("storing the credentials for {registry}"))?;
    if let StoredIn::File(path) = &stored
        && !ctx.quiet
    {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.",
            path.display()
        );
    }
    if !ctx.quiet {
        writeln!(std::io::stdout(), "Login Succeeded")?;
    }
    Ok(())
}
