//! Progress bars on stderr, shown only when stderr is a terminal and `--quiet` is not given.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-count progress bar that does nothing when hidden.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for a byte stream, labelled `what`.
    pub fn bytes(quiet: bool, what: &str) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{msg} {spinner} {bytes} ({binary_bytes_per_sec})")
                .expect("a valid template"),
        );
        bar.set_message(what.to_string());
        Progress { bar: Some(bar) }
    }

    /// Sets the expected total, turning the spinner into a bar.
    pub fn set_total(&self, total: Option<u64>) {
        if let (Some(b), Some(t)) = (&self.bar, total) {
            b.set_length(t);
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} ({binary_bytes_per_sec}, {eta})",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
        }
    }

    /// Sets the current position.
    pub fn set(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_position(n);
        }
    }

    /// Adds `n` to the position.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Writes a line to stdout without tearing the bar (best effort: a closed stdout shows in
    /// the command's last line).
    pub fn line(&self, text: &str) {
        use std::io::Write;
        let print = || {
            let _ = writeln!(std::io::stdout(), "{text}");
        };
        match &self.bar {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
