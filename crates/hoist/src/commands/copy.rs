//! `hoist copy`.

mod ssh;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hoist_core::archive::save::{SaveFormat, SaveOptions, save_set_from};
use hoist_core::archive::transport::{
    ArchiveSource, BlobSource, ImageSet, ingest_set, write_layout_set,
};
use hoist_core::remote::SshLocation;
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;
use hoist_registry::push::{PushOptions, push_set};
use hoist_registry::source::RegistrySource;

use super::Ctx;
use super::output::{Dest, write_to};
use super::registry::RegistryArgs;

/// Copy an image between registries, archives, OCI layouts and the store.
///
/// SRC and DEST use skopeo's transport names:
///   docker://NAME[:TAG|@DIGEST]    a registry
///   docker-archive:PATH[:NAME]     a docker archive (docker save's; written in docker 25's shape)
///   oci-archive:PATH[:REF]         an OCI layout in a tar file
///   oci:DIR[:REF]                  an OCI layout directory (created, or added to)
///   hoist:NAME                     the store
///   ssh://[USER@]HOST[:PORT]/NAME  the store of hoist on another host, over ssh
///                                  (to or from hoist:NAME only)
///
/// Blobs stream from one side to the other, each checked against its digest on the way; the
/// store is used only when it is one of the sides. Archives are read in place (uncompressed
/// ones only). From a multi-platform image, the host's platform (or --platform) is copied;
/// with --all, the index and every platform's image (to a registry, an OCI layout or archive,
/// or the store).
///
/// Over ssh, hoist runs on the far side (--remote-hoist; the ssh command is $HOIST_SSH,
/// default `ssh`, run with -o BatchMode=yes) and the image streams through ssh as an archive
/// that the receiving side loads: every blob verified, the image landed atomically on the far
/// side too. The bytes that crossed the wire are reported.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Where the image is
    #[arg(value_name = "SRC")]
    pub src: String,
    /// Where it goes
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Take this platform from a multi-platform image [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", conflicts_with = "all")]
    pub platform: Option<String>,
    /// Copy a multi-platform image whole: the index and every platform's image
    #[arg(long)]
    pub all: bool,
    /// To a registry: compress uncompressed layers (none: copy them as they are)
    #[arg(long, value_enum, default_value = "gzip")]
    pub compress: super::save::CompressArg,
    /// The credentials file for both sides [default: $REGISTRY_AUTH_FILE,
    /// $DOCKER_CONFIG/config.json or ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Credentials for the source registry only
    #[arg(long, value_name = "USER[:PASSWORD]")]
    pub src_creds: Option<String>,
    /// Credentials for the destination registry only
    #[arg(long, value_name = "USER[:PASSWORD]")]
    pub dest_creds: Option<String>,
    /// Check the source registry's TLS certificate (false also allows plain HTTP)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub src_tls_verify: bool,
    /// Check the destination registry's TLS certificate (false also allows plain HTTP)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub dest_tls_verify: bool,
    /// The source registry's certificates (*.crt roots, a *.cert/*.key client pair)
    #[arg(long, value_name = "DIR")]
    pub src_cert_dir: Option<PathBuf>,
    /// The destination registry's certificates
    #[arg(long, value_name = "DIR")]
    pub dest_cert_dir: Option<PathBuf>,
    /// ssh://: the far hoist's command line, run by the far shell as given
    /// (e.g. "/opt/bin/hoist --root /srv/images")
    #[arg(long, value_name = "CMD", default_value = "hoist")]
    pub remote_hoist: String,
    /// ssh://: send each layer the other side lacks as a zstd patch against the most similar
    /// layer it has, when that is smaller (`hoist save --delta`)
    #[arg(long)]
    pub delta: bool,
}

impl Args {
    /// The registry flags of one side (skopeo's `--src-*` / `--dest-*`): credentials and TLS
    /// settings never cross from one registry to the other.
    fn side(&self, src: bool) -> RegistryArgs {
        let (creds, tls_verify, cert_dir) = if src {
            (&self.src_creds, self.src_tls_verify, &self.src_cert_dir)
        } else {
            (&self.dest_creds, self.dest_tls_verify, &self.dest_cert_dir)
        };
        RegistryArgs {
            tls_verify,
            cert_dir: cert_dir.clone(),
            authfile: self.authfile.clone(),
            creds: creds.clone(),
        }
    }
}

/// A side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Transport {
    Registry(Reference),
    DockerArchive(PathBuf, Option<String>),
    OciArchive(PathBuf, Option<String>),
    OciDir(PathBuf, Option<String>),
    Store(String),
    Ssh(SshLocation),
}

impl Transport {
    fn parse(s: &str) -> Result<Transport> {
        let Some((kind, rest)) = s.split_once(':') else {
            bail!(
                "{s:?}: no transport (docker://, docker-archive:, oci-archive:, oci:, hoist:, \
                 ssh://)"
            );
        };
        let path_ref = |rest: &str| -> Result<(PathBuf, Option<String>)> {
            let (path, r) = match rest.split_once(':') {
                Some((p, r)) => (p, Some(r.to_string()).filter(|r| !r.is_empty())),
                None => (rest, None),
            };
            if path.is_empty() {
                bail!("{s:?}: no path");
            }
            Ok((PathBuf::from(path), r))
        };
        // An OCI layout's REF becomes an `org.opencontainers.image.ref.name`: skopeo refuses
        // what the image-spec grammar does not allow (`../../../evil`), and so does hoist.
        let oci_path_ref = |rest: &str| -> Result<(PathBuf, Option<String>)> {
            let (p, r) = path_ref(rest)?;
            if let Some(r) = &r {
                hoist_format::oci::check_ref_name(r).map_err(|e| anyhow::anyhow!("{s:?}: {e}"))?;
            }
            Ok((p, r))
        };
        Ok(match kind {
            "docker" => {
                let Some(name) = rest.strip_prefix("//") else {
                    bail!("{s:?}: a registry image is docker://NAME");
                };
                let r = Reference::parse_normalized(name)
                    .with_context(|| format!("invalid image name {name:?}"))?;
                if r.domain().is_empty() {
                    bail!("{s:?}: no registry host");
                }
                Transport::Registry(r.with_default_tag())
            }
            "docker-archive" => {
                let (p, r) = path_ref(rest)?;
                Transport::DockerArchive(p, r)
            }
            "oci-archive" => {
                let (p, r) = oci_path_ref(rest)?;
                Transport::OciArchive(p, r)
            }
            "oci" => {
                let (p, r) = oci_path_ref(rest)?;
                Transport::OciDir(p, r)
            }
            "hoist" => {
                if rest.is_empty() {
                    bail!("{s:?}: no image name");
                }
                Transport::Store(rest.to_string())
            }
            "ssh" => Transport::Ssh(SshLocation::parse(s)?),
            other => bail!(
                "{s:?}: unknown transport {other:?} (docker://, docker-archive:, oci-archive:, \
                 oci:, hoist:, ssh://)"
            ),
        })
    }
}

/// Runs `hoist copy`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let src = Transport::parse(&args.src)?;
    let dest = Transport::parse(&args.dest)?;
    match (&src, &dest) {
        (Transport::Store(spec), Transport::Ssh(to)) => return ssh::push(&args, ctx, spec, to),
        (Transport::Ssh(from), Transport::Store(spec)) => {
            return ssh::pull(&args, ctx, from, spec);
        }
        (Transport::Ssh(_), _) | (_, Transport::Ssh(_)) => bail!(
            "an ssh:// copy goes to or from the store: hoist:IMAGE ssh://HOST/NAME, or \
             ssh://HOST/IMAGE hoist:NAME"
        ),
        _ => {}
    }
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let store = match (&src, &dest) {
        (Transport::Store(_), _) | (_, Transport::Store(_)) => Some(ctx.store()?),
        _ => None,
    };

    // The source: the image in memory, its blobs on demand.
    let src_client = match &src {
        Transport::Registry(r) => Some(args.side(true).client(r.domain())?),
        _ => None,
    };
    let archive;
    let registry_source;
    let (source, set, names): (&dyn BlobSource, ImageSet, Vec<Reference>) = match &src {
        Transport::Store(spec) => {
            let store = store.as_ref().expect("opened for a store side");
            let (image, names) = store
                .resolve(spec)
                .with_context(|| format!("reading {}", args.src))?;
            let set = if args.all {
                ImageSet::from_store(store, &image)
                    .with_context(|| format!("reading {}", args.src))?
            } else if let Some(p) = &platform {
                // The store shows an index as the host's platform: pick the one asked for.
                let whole = ImageSet::from_store(store, &image)
                    .with_context(|| format!("reading {}", args.src))?;
                let found: Vec<String> = whole
                    .images
                    .iter()
                    .map(|i| i.config.platform().to_string())
                    .collect();
                match whole
                    .images
                    .into_iter()
                    .find(|i| p.matches(&i.config.platform()))
                {
                    Some(i) => ImageSet::single(i),
                    None => bail!(
                        "{}: no image for platform {p} (the store has: {})",
                        args.src,
                        found.join(", ")
                    ),
                }
            } else {
                ImageSet::single(image)
            };
            (store, set, names)
        }
        Transport::Registry(r) => {
            let client = src_client.as_ref().expect("made for a registry source");
            registry_source = RegistrySource::open(client, r, platform.as_ref(), args.all)
                .with_context(|| format!("reading {}", args.src))?;
            let names = if r.tag().is_some() && r.digest().is_none() {
                vec![r.clone()]
            } else {
                Vec::new()
            };
            (&registry_source, registry_source.set.clone(), names)
        }
        Transport::DockerArchive(p, r) | Transport::OciArchive(p, r) => {
            archive = ArchiveSource::open_archive(p, r.as_deref(), platform.as_ref(), args.all)
                .with_context(|| format!("reading {}", args.src))?;
            (&archive, archive.set.clone(), archive.names.clone())
        }
        Transport::OciDir(d, r) => {
            archive = ArchiveSource::open_layout(d, r.as_deref(), platform.as_ref(), args.all)
                .with_context(|| format!("reading {}", args.src))?;
            (&archive, archive.set.clone(), archive.names.clone())
        }
        Transport::Ssh(_) => unreachable!("ssh copies are done above"),
    };
    let digest = match &dest {
        Transport::Store(spec) => {
            let store = store.as_ref().expect("opened for a store side");
            let name = super::image_name(spec)?;
            ingest_set(store, source, &set, Some(&name))
                .with_context(|| format!("copying {} to {}", args.src, args.dest))?
                .manifest
                .digest
        }
        Transport::Registry(r) => {
            let client = args.side(false).client(r.domain())?;
            let mount_from = match &src {
                Transport::Registry(s) if s.domain() == r.domain() && s.path() != r.path() => {
                    Some(format!("{}/{}", s.domain(), s.path()))
                }
                _ => None,
            };
            let opts = PushOptions {
                compress: args.compress.into(),
                mount_from,
                progress: None,
            };
            let cache = match &src {
                Transport::Store(_) => store.as_ref(),
                _ => None,
            };
            let report = push_set(source, cache, &client, &set, r, &opts)
                .with_context(|| format!("copying {} to {}", args.src, args.dest))?;
            for w in &report.warnings {
                eprintln!("hoist: warning: {w}");
            }
            report.digest
        }
        Transport::DockerArchive(p, r) | Transport::OciArchive(p, r) => {
            let docker = matches!(dest, Transport::DockerArchive(..));
            if docker && set.index.is_some() {
                bail!(
                    "{}: a docker archive holds one platform of an image; copy --all to \
                     oci-archive: or oci:, or pick one with --platform",
                    args.dest
                );
            }
            // A docker archive's REF is an image name (RepoTags); an OCI archive's is any
            // ref.name, kept as given (skopeo's reading).
            let names = match r {
                Some(r) if docker => vec![super::image_name(r)?],
                _ => names,
            };
            let opts = SaveOptions {
                format: if docker {
                    SaveFormat::Docker
                } else {
                    SaveFormat::Oci
                },
                compression: None,
                progress: None,
                oci_ref_name: r.as_deref().filter(|_| !docker),
                delta: None,
            };
            write_archive(p, &args.dest, |dest| match dest {
                Dest::File(f) => Ok(save_set_from(source, &set, &names, f, &opts)?),
                Dest::Stdout(s) => Ok(save_set_from(source, &set, &names, s, &opts)?),
            })?;
            set.top_digest()?
        }
        Transport::OciDir(d, r) => {
            write_layout_set(d, source, &set, r.as_deref())
                .with_context(|| format!("copying {} to {}", args.src, args.dest))?;
            set.top_digest()?
        }
        Transport::Ssh(_) => unreachable!("ssh copies are done above"),
    };
    if !ctx.quiet {
        writeln!(std::io::stdout(), "{digest}")?;
    }
    Ok(())
}

/// Writes an archive to `path` through a temp file renamed at the end.
fn write_archive(
    path: &Path,
    what: &str,
    write: impl FnOnce(Dest<'_>) -> Result<()>,
) -> Result<()> {
    if path.as_os_str() == "-" {
        bail!("{what}: archives are written to a file, not stdout");
    }
    write_to(Some(path), what, write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert_eq!(
            Transport::parse("docker://localhost:5000/a/b:1").unwrap(),
            Transport::Registry(Reference::parse_normalized("localhost:5000/a/b:1").unwrap())
        );
        assert_eq!(
            Transport::parse("docker://busybox").unwrap(),
            Transport::Registry(
                Reference::parse_normalized("docker.io/library/busybox:latest").unwrap()
            )
        );
        assert_eq!(
            Transport::parse("docker-archive:/tmp/x.tar:busybox:1").unwrap(),
            Transport::DockerArchive("/tmp/x.tar".into(), Some("busybox:1".into()))
        );
        assert_eq!(
            Transport::parse("oci-archive:x.tar").unwrap(),
            Transport::OciArchive("x.tar".into(), None)
        );
        assert_eq!(
            Transport::parse("oci:dir:latest").unwrap(),
            Transport::OciDir("dir".into(), Some("latest".into()))
        );
        assert_eq!(
            Transport::parse("oci:dir:docker.io/library/busybox:1.36").unwrap(),
            Transport::OciDir("dir".into(), Some("docker.io/library/busybox:1.36".into()))
        );
        assert_eq!(
            Transport::parse("hoist:busybox:1").unwrap(),
            Transport::Store("busybox:1".into())
        );
        assert_eq!(
            Transport::parse("ssh://me@[::1]:2222/app:1").unwrap(),
            Transport::Ssh(SshLocation {
                user: Some("me".into()),
                host: "::1".into(),
                port: Some(2222),
                image: "app:1".into(),
            })
        );
        for bad in [
            "busybox",
            "docker:busybox",
            "ftp:x",
            "oci:",
            "hoist:",
            "docker://",
            "oci:dir:../../../evil",
            "oci-archive:x.tar:../evil",
            "oci:dir:/etc/passwd",
            "oci:dir:a b",
            "ssh://host",
            "ssh://-oProxyCommand=x/app",
            "ssh:host/app",
        ] {
            assert!(Transport::parse(bad).is_err(), "{bad}");
        }
    }
}
