//! A reader that reports how many bytes went through it, for progress bars.

use std::io::{self, Read};

/// Bytes read between two reports: often enough for a smooth bar, rarely enough to cost
/// nothing next to a network read.
pub(crate) const REPORT_STEP: u64 = 1024 * 1024;

/// Calls `report` with the bytes read since the last call, every [`REPORT_STEP`] and at the
/// end (or when dropped early).
pub(crate) struct Metered<'a, R> {
    inner: R,
    pending: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

impl<'a, R> Metered<'a, R> {
    pub(crate) fn new(inner: R, report: &'a (dyn Fn(u64) + Sync)) -> Self {
        Metered {
            inner,
            pending: 0,
            report,
        }
    }

    fn flush(&mut self) {
        if self.pending > 0 {
            (self.report)(self.pending);
            self.pending = 0;
        }
    }
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if n == 0 || self.pending >= REPORT_STEP {
            self.flush();
        }
        Ok(n)
    }
}

impl<R> Drop for Metered<'_, R> {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_byte_once() {
        let total = std::sync::atomic::AtomicU64::new(0);
        let calls = std::sync::atomic::AtomicU64::new(0);
        let report = |n: u64| {
            total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let data = vec![7u8; 3 * REPORT_STEP as usize + 5];
        let mut r = Metered::new(&data[..], &report);
        io::copy(&mut r, &mut io::sink()).unwrap();
        drop(r);
        assert_eq!(total.into_inner(), data.len() as u64);
        assert!(calls.into_inner() <= 5);
    }
}
