//! `hoist import`.

use std::fmt;
use std::io::{self, IsTerminal, Read, Write};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use hoist_core::ops::import::{ImportOptions, import};
use hoist_format::platform::Platform;

use super::Ctx;
use crate::ui::progress::Progress;

/// Make a one-layer image from a root filesystem: a tar file, `-` (stdin), an http(s) URL, or
/// a directory (packed deterministically). The tar may be plain or gzip/zstd/xz/bzip2
/// compressed. Without NAME the image is untagged and its ID is printed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply a Dockerfile instruction to the config: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK,
    /// LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)
    #[arg(short, long = "change", value_name = "INSTR")]
    pub changes: Vec<String>,
    /// History comment [default: "Imported from <source>"]
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
    /// Platform of the image [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// For a URL: the longest wait to connect, for the response, and for each read of the
    /// body (a server that stops sending fails instead of hanging). A number of seconds, or
    /// with a unit: 500ms, 30s, 2m
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(DEFAULT_URL_TIMEOUT))]
    pub timeout: Timeout,
    /// The root filesystem
    #[arg(value_name = "FILE|URL|-|DIR")]
    pub source: String,
    /// Name for the image
    #[arg(value_name = "NAME[:TAG]")]
    pub name: Option<String>,
}

/// Runs `hoist import`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let name = args.name.as_deref().map(super::image_name).transpose()?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let store = ctx.store()?;
    let bar = Progress::bytes(ctx.quiet, "Importing");
    let cb = |n: u64| bar.set(n);
    let is_url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let message = args
        .message
        .clone()
        .or_else(|| is_url.then(|| format!("Imported from {}", args.source)));
    let opts = ImportOptions {
        changes: args.changes.clone(),
        message,
        platform,
        name,
        created: super::now_rfc3339(),
        progress: Some(&cb),
    };
    let report = if args.source == "-" {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            bail!("refusing to import from stdin: it is a terminal");
        }
        import(&store, stdin.lock(), &opts).context("importing from stdin")?
    } else if is_url {
        let body = download(&args.source, args.timeout)?;
        import(&store, body, &opts).with_context(|| format!("importing {}", args.source))?
    } else {
        let path = std::path::Path::new(&args.source);
        if path.is_dir() {
            import_dir(&store, path, &opts)?
        } else {
            let f =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            bar.set_total(f.metadata().map(|m| m.len()).ok());
            import(&store, f, &opts).with_context(|| format!("importing {}", path.display()))?
        }
    };
    bar.finish();
    let mut out = std::io::stdout().lock();
    if let (Some(n), Some(old)) = (
        &report.name,
        report
            .moved_from
            .as_ref()
            .filter(|old| *old != &report.id && !ctx.quiet),
    ) {
        eprintln!(
            "The image {} already exists, renaming the old one with ID {old} to empty string",
            n.familiar()
        );
    }
    writeln!(out, "{}", report.id)?;
    Ok(())
}

/// How long a URL import waits, by default, to connect, for the response, and between two
/// reads of the body: a slow server or network gets half a minute per step, a dead one fails
/// instead of hanging forever. There is no limit on the whole download (a big rootfs on a slow
/// link may take long and still be progressing).
const DEFAULT_URL_TIMEOUT: Duration = Duration::from_secs(30);

/// `--timeout`: a positive duration, written as seconds (`30`) or with a unit (`500ms`, `30s`,
/// `2m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl FromStr for Timeout {
    type Err = String;

    fn from_str(s: &str) -> Result<Timeout, String> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = s.split_at(digits);
        let bad = || format!("{s:?} is not a duration: give seconds (30) or 500ms, 30s, 2m");
        let n: u64 = number.parse().map_err(|_| bad())?;
        let d = match unit {
            "" | "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        if d.is_zero() {
            return Err(format!("{s:?}: the timeout must be more than 0"));
        }
        Ok(Timeout(d))
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_millis() == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{}ms", self.0.as_millis())
        }
    }
}

/// Starts the download of `url`: the body as a stream whose reads fail with a message naming
/// the URL when the server goes silent for `timeout`.
fn download(url: &str, timeout: Timeout) -> Result<Box<dyn Read + Send>> {
    let t = Some(timeout.0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_resolve(t)
        .timeout_connect(t)
        .timeout_send_request(t)
        .timeout_recv_response(t)
        .timeout_per_read(t)
        .build()
        .into();
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Timeout(kind) => anyhow!(
            "downloading {url}: timed out: {} within {timeout}",
            match kind {
                ureq::Timeout::Resolve => "the host name did not resolve",
                ureq::Timeout::Connect => "the server did not accept the connection",
                ureq::Timeout::SendRequest => "the server did not take the request",
                ureq::Timeout::RecvResponse => "the server sent no response",
                _ => "the server sent nothing",
            }
        ),
        other => anyhow::Error::new(other).context(format!("downloading {url}")),
    })?;
    Ok(Box::new(SilenceReader {
        inner: resp.into_body().into_reader(),
        url: url.to_string(),
        timeout,
    }))
}

/// A download's body whose idle timeouts say what happened, and where.
struct SilenceReader<R> {
    inner: R,
    url: String,
    timeout: Timeout,
}

impl<R: Read> Read for SilenceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let ureq_timeout = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>())
                .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)));
            if ureq_timeout || e.kind() == io::ErrorKind::TimedOut {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out: {} sent no data for {}", self.url, self.timeout),
                )
            } else {
                e
            }
        })
    }
}

/// Packs a directory (deterministically) and imports the stream.
fn import_dir(
    store: &hoist_core::Store,
    dir: &std::path::Path,
    opts: &ImportOptions<'_>,
) -> Result<hoist_core::ops::import::ImportReport> {
    let (r, w) = std::io::pipe()?;
    std::thread::scope(|s| {
        let packer = s.spawn(move || {
            hoist_core::rootfs::pack_dir(dir, w, &hoist_core::rootfs::PackOptions::default())
        });
        let imported = import(store, r, opts);
        let packed = packer.join().expect("the packing thread does not panic");
        packed.with_context(|| format!("packing {}", dir.display()))?;
        imported.with_context(|| format!("importing {}", dir.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_and_print() {
        for (input, expected, shown) in [
            ("30", Duration::from_secs(30), "30s"),
            ("1s", Duration::from_secs(1), "1s"),
            ("500ms", Duration::from_millis(500), "500ms"),
            ("1500ms", Duration::from_millis(1500), "1500ms"),
            ("2m", Duration::from_secs(120), "120s"),
        ] {
            let t: Timeout = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(t, Timeout(expected), "{input}");
            assert_eq!(t.to_string(), shown, "{input}");
        }
        for input in [
            "",
            "0",
            "0s",
            "s",
            "-1",
            "1h",
            "1.5s",
            " 1",
            "1 s",
            "99999999999999999999m",
        ] {
            assert!(input.parse::<Timeout>().is_err(), "{input:?}");
        }
        assert_eq!(Timeout(DEFAULT_URL_TIMEOUT).to_string(), "30s");
    }
}
