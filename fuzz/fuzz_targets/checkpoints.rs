//! Checkpoints from untrusted bytes: parsing never panics, what parses encodes back to the same
//! bytes, and reading a gzip blob through them gives its data or an error, never wrong data.
#![no_main]

use std::io::{Cursor, Read};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

use hoist_core::compress::Compression;
use hoist_core::seekable::{Checkpoints, open_at};

/// A gzip blob of a few hundred KiB and its data.
fn blob() -> &'static (Vec<u8>, Vec<u8>) {
    static BLOB: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    BLOB.get_or_init(|| {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 / 13 % 251) as u8).collect();
        let mut gz = Vec::new();
        hoist_core::compress::encoder(Compression::Gzip, &data[..])
            .expect("gzip encoder")
            .read_to_end(&mut gz)
            .expect("gzip");
        (gz, data)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(cps) = Checkpoints::parse(data) else { return };
    assert_eq!(cps.to_bytes(), data, "what parses encodes back to itself");
    let (gz, plain) = blob();
    for offset in [0, 1, 70_000, 299_999, 300_000, u64::MAX] {
        let Ok(s) = open_at(Cursor::new(gz), cps.compression(), &cps, offset) else { continue };
        let mut got = Vec::new();
        if s.take(400_000).read_to_end(&mut got).is_ok() && cps.compression() == Compression::Gzip {
            let from = (offset as usize).min(plain.len());
            assert!(got == plain[from..], "offset {offset}: wrong data without an error");
        }
    }
});
