//! `hoist ls`.

use std::collections::HashSet;
use std::io::{BufWriter, Write};

use anyhow::{Context, Result};
use hoist_core::flatten::{FinalEntry, FinalKind, FinalTree, Metadata, is_below};
use hoist_core::layer::{Action, action};
use hoist_core::tar::{Entry, EntryKind};
use hoist_core::view::OpenedImage;
use hoist_core::view::lookup::{resolve, root_entry, show};

use super::Ctx;
use super::open;
use crate::ui::human::civil_from_days;

/// List the files of an image without running or unpacking it: its final filesystem (or as of
/// one layer), read from the layer indexes (no file content is read).
///
/// IMAGE is an image of the store, or an archive read in place without loading it:
/// docker-archive:FILE[:NAME], oci-archive:FILE[:REF], oci:DIR[:REF].
///
/// Paths are printed whole (`/etc/passwd`). A directory PATH lists what it holds (-R: all of
/// it, depth first); -d lists the directory itself. Symlinks are not followed.
///
/// --format json prints one JSON object per line for every path below each PATH (the whole
/// tree by default): path, type (file, dir, symlink, char, block, fifo; with --layer also
/// hardlink, whiteout, opaque), mode, uid, gid, size, mtime (RFC 3339), link (a symlink's or a
/// layer's hard link's target), hardlink (the smallest path of a group of hard links, on each
/// of them), major and minor (devices), layer (the layer that last wrote the path) and xattrs
/// (name to hex value). Bytes that are not UTF-8, control characters and `\` are written
/// `\xNN`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Long form, as `tar tv` and `ls -ln`: mode, uid/gid, size, mtime, path, link target
    #[arg(short = 'l', long = "long")]
    pub long: bool,
    /// List directories recursively
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// List a directory itself, not what it holds
    #[arg(short = 'd', long)]
    pub directory: bool,
    /// Only the entries layer N itself holds (0 = base), whiteouts shown as deletions
    #[arg(long, value_name = "N", conflicts_with = "as_of")]
    pub layer: Option<usize>,
    /// The tree as of layer N (layers 0..=N)
    #[arg(long = "as-of", value_name = "N")]
    pub as_of: Option<usize>,
    /// Add a column naming the layer that last wrote each path
    #[arg(long)]
    pub layers: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The platform to pick from an archive holding several (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Image (name or ID), or docker-archive:FILE[:NAME], oci-archive:FILE[:REF], oci:DIR[:REF]
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Paths in the image [default: /]
    #[arg(value_name = "PATH")]
    pub paths: Vec<std::ffi::OsString>,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One path per line
    Text,
    /// One JSON object per line
    Json,
}

/// One listed path.
struct Row<'a> {
    path: &'a [u8],
    kind: &'static str,
    meta: &'a Metadata,
    size: Option<u64>,
    device: Option<(u32, u32)>,
    link: Option<&'a [u8]>,
    hardlink: Option<&'a [u8]>,
    layer: Option<usize>,
}

/// Runs `hoist ls`.
pub fn run(args: Args, ctx: &Ctx) -> Result<()> {
    let img = open::image(ctx, &args.image, args.platform.as_deref())?;
    use std::os::unix::ffi::OsStrExt;
    let paths: Vec<Vec<u8>> = if args.paths.is_empty() {
        vec![b"/".to_vec()]
    } else {
        args.paths.iter().map(|p| p.as_bytes().to_vec()).collect()
    };
    let out = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(64 << 10, out);
    match args.layer {
        Some(n) => list_layer(&img, n, &paths, &args, &mut out)?,
        None => {
            let count = open::layers_upto(&img, args.as_of)?;
            let tree = img
                .tree(count)
                .with_context(|| format!("reading {}", img.what))?;
            list_tree(&img, &tree, &paths, &args, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn list_tree(
    img: &OpenedImage,
    tree: &FinalTree,
    paths: &[Vec<u8>],
    args: &Args,
    out: &mut impl Write,
) -> Result<()> {
    let json = args.format == Format::Json;
    // The primary path of every hard-link group, so each member can name it.
    let primaries: HashSet<Vec<u8>> = tree
        .iter()
        .filter_map(|e| match e.kind {
            FinalKind::HardLink { target } => Some(target),
            _ => None,
        })
        .collect();
    for p in paths {
        let found = resolve(tree, p, false).with_context(|| img.what.clone())?;
        let base = found.path;
        let whole = json || args.recursive;
        if found.entry.kind != FinalKind::Directory || args.directory {
            let e = if base.is_empty() {
                root_entry()
            } else {
                tree.get(&base).unwrap_or(found.entry)
            };
            print_final(tree, &e, &primaries, args, out)?;
            continue;
        }
        if whole {
            for e in tree
                .walk()
                .filter(|e| base.is_empty() || is_below(&e.path, &base))
            {
                print_final(tree, &e, &primaries, args, out)?;
            }
        } else {
            for name in tree.children(&base).unwrap_or_default() {
                let path = if base.is_empty() {
                    name
                } else {
                    [&base[..], b"/", &name].concat()
                };
                if let Some(e) = tree.get(&path) {
                    print_final(tree, &e, &primaries, args, out)?;
                }
            }
        }
    }
    Ok(())
}

fn print_final(
    tree: &FinalTree,
    e: &FinalEntry,
    primaries: &HashSet<Vec<u8>>,
    args: &Args,
    out: &mut impl Write,
) -> Result<()> {
    // A hard link is listed as what it links to, naming its group's primary path.
    let (kind, hardlink) = match &e.kind {
        FinalKind::HardLink { target } => (
            tree.get_resolved(&e.path)
                .map(|r| r.kind)
                .unwrap_or(FinalKind::Fifo),
            Some(target.as_slice()),
        ),
        k => (
            k.clone(),
            primaries.contains(&e.path).then_some(e.path.as_slice()),
        ),
    };
    let (name, size, device, link) = match &kind {
        FinalKind::Directory => ("dir", None, None, None),
        FinalKind::Regular { size } => ("file", Some(*size), None, None),
        FinalKind::Symlink { target } => ("symlink", None, None, Some(target.as_slice())),
        FinalKind::CharDevice { major, minor } => ("char", None, Some((*major, *minor)), None),
        FinalKind::BlockDevice { major, minor } => ("block", None, Some((*major, *minor)), None),
        FinalKind::Fifo => ("fifo", None, None, None),
        FinalKind::HardLink { .. } => ("hardlink", None, None, None),
    };
    let row = Row {
        path: &e.path,
        kind: name,
        meta: &e.meta,
        size,
        device,
        link,
        hardlink,
        layer: e.layer,
    };
    print_row(&row, args, out)
}

/// Lists what layer `n` itself holds.
fn list_layer(
    img: &OpenedImage,
    n: usize,
    paths: &[Vec<u8>],
    args: &Args,
    out: &mut impl Write,
) -> Result<()> {
    let index = img
        .layer_index(n)
        .with_context(|| format!("reading {}", img.what))?;
    // A layer's entries are names, not a tree: `..` is resolved by name, links are not.
    let wanted: Vec<Vec<u8>> = paths.iter().map(|p| lexical(p)).collect();
    // The root is there even in a layer with no entry.
    let mut matched: Vec<bool> = wanted.iter().map(Vec::is_empty).collect();
    for e in index.entries() {
        let e = e.with_context(|| format!("{}: the index of layer {n}", img.what))?;
        let Some((path, kind, link)) =
            layer_row(&e).with_context(|| format!("{}: layer {n}", img.what))?
        else {
            continue;
        };
        let mut hit = false;
        for (w, m) in wanted.iter().zip(matched.iter_mut()) {
            if w.is_empty() || path == *w || is_below(&path, w) {
                *m = true;
                hit = true;
            }
        }
        if !hit {
            continue;
        }
        let size = (kind == "file").then_some(e.size);
        let device = matches!(kind, "char" | "block").then_some((e.devmajor, e.devminor));
        let row = Row {
            path: &path,
            kind,
            meta: &e.meta,
            size,
            device,
            link: link.as_deref(),
            hardlink: None,
            layer: Some(n),
        };
        print_row(&row, args, out)?;
    }
    if let Some(i) = matched.iter().position(|m| !m) {
        anyhow::bail!(
            "{}: layer {n} holds nothing at {} (nor below it)",
            img.what,
            show(&wanted[i])
        );
    }
    Ok(())
}

/// `path` normalized by name: no empty or `.` components, `..` removes the one before (and
/// stops at the root).
fn lexical(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join(&b'/')
}

/// What a layer entry shows as: its normalized path, its type and its link target; `None` for
/// entries no applier acts on (the root, AUFS metadata).
#[allow(clippy::type_complexity)]
fn layer_row(e: &Entry) -> Result<Option<(Vec<u8>, &'static str, Option<Vec<u8>>)>> {
    let a =
        action(&e.path, e.kind).with_context(|| format!("entry {}: {}", e.index, show(&e.path)))?;
    let join = |dir: &[&[u8]], name: &[u8]| {
        let mut p = dir.join(&b'/');
        if !p.is_empty() && !name.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        p
    };
    Ok(match a {
        Action::Skip | Action::PlnkSource { .. } => None,
        Action::Opaque { dir } => Some((join(&dir, b""), "opaque", None)),
        Action::Whiteout { dir, name } => Some((join(&dir, name), "whiteout", None)),
        Action::Put { parents, base } => {
            let path = join(&parents, base);
            let (kind, link) = match e.kind {
                EntryKind::Directory => ("dir", None),
                EntryKind::Symlink => ("symlink", Some(e.link.clone())),
                EntryKind::HardLink => {
                    let target = hoist_core::layer::components(&e.link)
                        .map(|c| c.join(&b'/'))
                        .unwrap_or_else(|_| e.link.clone());
                    ("hardlink", Some(target))
                }
                EntryKind::CharDevice => ("char", None),
                EntryKind::BlockDevice => ("block", None),
                EntryKind::Fifo => ("fifo", None),
                EntryKind::Regular | EntryKind::Other(_) => ("file", None),
            };
            Some((path, kind, link))
        }
    })
}

fn print_row(r: &Row<'_>, args: &Args, out: &mut impl Write) -> Result<()> {
    if args.format == Format::Json {
        let mut o = serde_json::Map::new();
        o.insert("path".into(), escape_path(r.path).into());
        o.insert("type".into(), r.kind.into());
        o.insert("mode".into(), r.meta.mode.into());
        o.insert("uid".into(), r.meta.uid.into());
        o.insert("gid".into(), r.meta.gid.into());
        if let Some(s) = r.size {
            o.insert("size".into(), s.into());
        }
        if let Some((major, minor)) = r.device {
            o.insert("major".into(), major.into());
            o.insert("minor".into(), minor.into());
        }
        o.insert("mtime".into(), rfc3339(&r.meta.mtime).into());
        match (r.kind, r.link) {
            // A layer's hard link names a path of the image, shown as paths are.
            ("hardlink", Some(l)) => {
                o.insert("link".into(), escape_path(l).into());
            }
            (_, Some(l)) => {
                o.insert("link".into(), escape(l).into());
            }
            _ => {}
        }
        if let Some(h) = r.hardlink {
            o.insert("hardlink".into(), escape_path(h).into());
        }
        o.insert(
            "layer".into(),
            r.layer.map_or(serde_json::Value::Null, Into::into),
        );
        let xattrs: serde_json::Map<String, serde_json::Value> = r
            .meta
            .xattrs
            .iter()
            .map(|(k, v)| (escape(k), hex::encode(v).into()))
            .collect();
        o.insert("xattrs".into(), xattrs.into());
        serde_json::to_writer(&mut *out, &o)?;
        writeln!(out)?;
        return Ok(());
    }
    let mut line = String::new();
    if args.layers {
        match r.layer {
            Some(l) => line.push_str(&format!("{l:>3}  ")),
            None => line.push_str("  -  "),
        }
    }
    let path = show(r.path);
    if args.long {
        let size = match (r.size, r.device) {
            (_, Some((major, minor))) => format!("{major},{minor}"),
            (Some(s), _) => s.to_string(),
            _ => "0".into(),
        };
        line.push_str(&format!(
            "{} {}/{} {size:>10} {} {path}",
            mode_string(r.kind, r.meta.mode),
            r.meta.uid,
            r.meta.gid,
            short_time(r.meta.mtime.seconds),
        ));
    } else {
        line.push_str(&path);
    }
    match (r.kind, r.link) {
        ("symlink", Some(l)) if args.long => {
            line.push_str(" -> ");
            line.push_str(&String::from_utf8_lossy(l));
        }
        ("hardlink", Some(l)) if args.long => {
            line.push_str(" link to ");
            line.push_str(&show(l));
        }
        ("whiteout", _) => line.push_str(" (deleted)"),
        ("opaque", _) => line.push_str(" (opaque: what lower layers put here is deleted)"),
        _ => {}
    }
    writeln!(out, "{line}")?;
    Ok(())
}

/// `drwxr-xr-x`, with setuid, setgid and sticky bits as `ls` shows them.
fn mode_string(kind: &str, mode: u32) -> String {
    let t = match kind {
        "dir" | "opaque" => 'd',
        "symlink" => 'l',
        "char" => 'c',
        "block" => 'b',
        "fifo" => 'p',
        "hardlink" => 'h',
        "whiteout" => 'D',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    for (i, special, set_char) in [(6u32, 0o4000u32, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> i) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (mode & special != 0, x) {
            (true, true) => set_char,
            (true, false) => set_char.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// `2006-01-02 15:04` (UTC).
fn short_time(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem / 60 % 60
    )
}

/// RFC 3339 in UTC, with the nanoseconds when there are some.
fn rfc3339(t: &hoist_core::tar::Mtime) -> String {
    let (y, m, d) = civil_from_days(t.seconds.div_euclid(86400));
    let rem = t.seconds.rem_euclid(86400);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if t.nanos != 0 {
        s.push('.');
        s.push_str(format!("{:09}", t.nanos).trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// `/path`, escaped.
fn escape_path(p: &[u8]) -> String {
    format!("/{}", escape(p))
}

/// Bytes as text: UTF-8 kept, except ASCII control characters and `\`; those and bytes that
/// are not UTF-8 as `\xNN` (the corpus listings' rule).
pub(crate) fn escape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c < ' ' || c == '\x7f' || c == '\\' {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_names_print_like_ls() {
        assert_eq!(mode_string("dir", 0o755), "drwxr-xr-x");
        assert_eq!(mode_string("file", 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string("file", 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string("dir", 0o1777), "drwxrwxrwt");
        assert_eq!(escape(b"a\\b\n\xffc\xc3\xa9"), "a\\x5cb\\x0a\\xffcé");
        assert_eq!(short_time(0), "1970-01-01 00:00");
        let t = hoist_core::tar::Mtime {
            seconds: -1,
            nanos: 500_000_000,
        };
        assert_eq!(rfc3339(&t), "1969-12-31T23:59:59.5Z");
    }
}
