//! Makes or applies one zstd layer patch with `hoist_core::patch`, for `bench/patch`:
//!
//! ```text
//! patch make  REFERENCE TARGET PATCH [LEVEL]   # prints the PatchStats as JSON
//! patch apply REFERENCE PATCH  OUT             # prints the rebuilt layer's sha256 and size
//! ```
//!
//! Files only (no stdin), so that `/usr/bin/time -v` measures exactly one operation.
#![allow(clippy::print_stdout)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use hoist_core::compress::IO_BUF_SIZE;
use hoist_core::patch::{self, PatchOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    match args {
        [op, reference, target, out, rest @ ..] if op == "make" && rest.len() <= 1 => {
            let target_file = File::open(target)?;
            let opts = PatchOptions {
                level: match rest.first() {
                    Some(l) => l.parse()?,
                    None => patch::PATCH_ZSTD_LEVEL,
                },
                target_size: Some(target_file.metadata()?.len()),
                max_size: None,
            };
            let mut w = BufWriter::with_capacity(IO_BUF_SIZE, File::create(out)?);
            let stats = patch::make_patch(Path::new(reference), target_file, &mut w, &opts)?;
            w.flush()?;
            println!(
                r#"{{"targetDigest":"{}","targetSize":{},"patchDigest":"{}","patchSize":{},"windowLog":{}}}"#,
                stats.target_digest,
                stats.target_size,
                stats.patch_digest,
                stats.patch_size,
                stats.window_log
            );
            Ok(())
        }
        [op, reference, patch_path, out] if op == "apply" => {
            let mut w = BufWriter::with_capacity(IO_BUF_SIZE, File::create(out)?);
            let (digest, size) =
                patch::apply_patch(Path::new(reference), File::open(patch_path)?, &mut w)?;
            w.flush()?;
            println!(r#"{{"digest":"{digest}","size":{size}}}"#);
            Ok(())
        }
        _ => Err("usage: patch make REF TARGET PATCH [LEVEL] | patch apply REF PATCH OUT".into()),
    }
}
