//! `hoist import`.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, Result, bail};
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
        let resp = ureq::get(&args.source)
            .call()
            .with_context(|| format!("downloading {}", args.source))?;
        let body: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader());
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
