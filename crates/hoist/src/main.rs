//! `hoist`: a daemonless toolkit for container images and their archives.
//!
//! The binary is thin: it parses the command line, builds option structs for hoist-core, wires
//! progress bars, and renders output. Exit codes: 0 success, 1 failure, 2 usage error; a closed
//! stdout pipe (`hoist images | head -1`) is not an error.

// A binary: `pub` only structures the modules.
#![allow(unreachable_pub)]
// Doc comments of the `Args` structs are the `--help` text, written for the terminal: `NAME[:TAG]`
// there is usage syntax, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

mod cli;
mod commands;
mod ui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    raise_open_file_limit();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("hoist: error: {}", message(&err));
            ExitCode::from(1)
        }
    }
}

/// Raises the soft limit of open files to the hard one, as Go programs (docker) do at start:
/// unpacking holds a directory fd per level of a deep path, and 1024 is less than a path of
/// 4096 bytes can have.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        // Best effort: without it, only very deep paths fail (with EMFILE, reported).
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// The error and its causes joined by ": " (anyhow's `{:#}`), without a cause that the error
/// before it already ends with: hoist-core's I/O variants (`reading the input: <cause>`) show
/// their cause in their own message and also return it as their `source()`.
fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for e in err.chain() {
        let text = e.to_string();
        if out.ends_with(&format!(": {text}")) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// A reader that went away (`| head`) ends the output early; that is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(e.downcast_ref::<hoist_core::Error>(), Some(hoist_core::Error::Write { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_shown_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out: x sent no data");
        let err = anyhow::Error::new(hoist_core::Error::Read {
            what: "the input".into(),
            source: io,
        })
        .context("importing x");
        assert_eq!(
            message(&err),
            "importing x: reading the input: timed out: x sent no data"
        );
        // Causes that are not repeated all stay, in order.
        let err = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(message(&err), "outer: middle: inner");
    }
}
