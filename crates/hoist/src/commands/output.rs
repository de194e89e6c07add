//! Writing a command's data output to `-o FILE` (atomically) or to stdout (never a terminal).

use std::fs::File;
use std::io::{IsTerminal, StdoutLock, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where the data goes. The concrete types are kept (not `dyn Write`) so that
/// `std::io::copy` can use its kernel fast paths (copy_file_range to a file, splice to a pipe).
#[derive(Debug)]
pub enum Dest<'a> {
    /// `-o FILE` (a temporary file next to it until the end).
    File(&'a mut File),
    /// Standard output.
    Stdout(&'a mut StdoutLock<'static>),
}

impl Dest<'_> {
    /// As a plain writer, for outputs that are written through a buffer anyway.
    pub fn as_dyn(&mut self) -> &mut dyn Write {
        match self {
            Dest::File(f) => *f,
            Dest::Stdout(s) => *s,
        }
    }
}

/// Runs `write` against the destination. `-o FILE` is written next to FILE and renamed into
/// place at the end, so a failure never leaves a truncated file under the requested name (like
/// `cp`, it is not fsynced); a device or fifo (`-o /dev/null`) is written in place; without
/// `-o` (or with `-`) stdout is used, refusing a terminal.
pub fn write_to(
    output: Option<&Path>,
    what: &str,
    write: impl FnOnce(Dest<'_>) -> Result<()>,
) -> Result<()> {
    match output {
        Some(p) if p.as_os_str() != "-" => {
            let meta = std::fs::metadata(p).ok();
            if meta.as_ref().is_some_and(|m| !m.is_file() && !m.is_dir()) {
                // A device, fifo or socket (`-o /dev/null`, `-o /dev/stdout`): written in place.
                // Renaming a file over it would replace the device node itself.
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .with_context(|| format!("opening {}", p.display()))?;
                return write(Dest::File(&mut f))
                    .with_context(|| format!("writing {}", p.display()));
            }
            // Through a symlink to a file, the file is replaced (as `cp` writes through it).
            let resolved = std::fs::canonicalize(p).ok().filter(|_| meta.is_some());
            let p = resolved.as_deref().unwrap_or(p);
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let tmp: PathBuf = dir.join(format!(".{name}.hoist-tmp-{}", std::process::id()));
            let mut f =
                File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            if let Err(e) = write(Dest::File(&mut f)) {
                // The temp file is ours and useless now; failing to remove it changes nothing.
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("writing {}", p.display()));
            }
            std::fs::rename(&tmp, p)
                .with_context(|| format!("renaming {} to {}", tmp.display(), p.display()))
        }
        _ => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!(
                    "cowardly refusing to write {what} to a terminal. Use the -o flag or redirect"
                );
            }
            let mut lock = stdout.lock();
            write(Dest::Stdout(&mut lock)).with_context(|| format!("writing {what} to stdout"))?;
            lock.flush()?;
            Ok(())
        }
    }
}
