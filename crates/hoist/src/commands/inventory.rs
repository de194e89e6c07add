//! `hoist inventory`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hoist_core::Store;
use hoist_core::archive::delta::{inventory_of_archive, inventory_of_store};
use hoist_core::archive::save::resolve_for_save;
use hoist_format::delta::{Inventory, MAX_DOCUMENT_SIZE};

use super::Ctx;
use super::output::{Dest, write_to};

/// Write what the store holds as a small JSON file, so another machine can make a delta for it.
///
/// The inventory lists images with their names and, per layer, the blob digest, size, diff_id
/// and chain ID. No layer content is in it. On a machine that can only send a file back:
///
///   target$ hoist inventory -o have.json
///   sender$ hoist save --base have.json -o update.tar app:2.0
///   target$ hoist load -i update.tar
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Write to FILE instead of stdout ("-" is stdout)
    #[arg(short, long, value_name = "FILE|-")]
    pub output: Option<PathBuf>,
    /// Only these images (names, IDs; a repository without a tag means all its tags)
    /// [default: every image of the store]
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// Runs `hoist inventory`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let inv = of_store(&store, &args.images)?;
    let bytes = inv.to_bytes();
    write_to(args.output.as_deref(), "an inventory", |dest| {
        use std::io::Write;
        match dest {
            Dest::File(f) => f.write_all(&bytes)?,
            Dest::Stdout(s) => s.write_all(&bytes)?,
        }
        Ok(())
    })
}

/// The inventory of `images` of the store (all of them when empty).
pub(crate) fn of_store(store: &Store, images: &[String]) -> Result<Inventory> {
    let list = if images.is_empty() {
        store.images()?
    } else {
        resolve_for_save(store, images)?
            .into_iter()
            .map(|i| (i.image, i.names))
            .collect()
    };
    Ok(inventory_of_store(store, &list))
}

/// What a `--base` names, as an inventory: `-` (an inventory on stdin), `oci:DIR`, an inventory
/// file, an archive file (any format `load` reads but docker 1.x; compressed or not), an OCI
/// layout directory, or an image of the store.
pub(crate) fn base(store: &Store, spec: &str) -> Result<Inventory> {
    if spec == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_DOCUMENT_SIZE + 1)
            .read_to_end(&mut bytes)
            .context("reading an inventory from stdin")?;
        return Inventory::parse(&bytes).context("the inventory on stdin");
    }
    if let Some(dir) = spec.strip_prefix("oci:") {
        return archive(Path::new(dir));
    }
    let path = Path::new(spec);
    if path.is_dir() {
        return archive(path);
    }
    if path.is_file() {
        let mut head = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(64).read_to_end(&mut head))
            .with_context(|| format!("reading {spec}"))?;
        if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            let len = std::fs::metadata(path)?.len();
            if len > MAX_DOCUMENT_SIZE {
                bail!("{spec}: {len} bytes is too big for an inventory");
            }
            let bytes = std::fs::read(path).with_context(|| format!("reading {spec}"))?;
            return Inventory::parse(&bytes).with_context(|| format!("reading {spec}"));
        }
        return archive(path);
    }
    of_store(store, &[spec.to_string()])
        .with_context(|| format!("--base {spec}: not a file, a directory or an image of the store"))
}

fn archive(path: &Path) -> Result<Inventory> {
    inventory_of_archive(path).with_context(|| format!("reading the base {}", path.display()))
}
