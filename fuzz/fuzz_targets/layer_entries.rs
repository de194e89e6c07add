//! The layer tar reader and flattener: any bytes as one or two layers give a flat tar or an
//! error, never a panic; a flat tar that was written reads back as a valid layer itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

use hoist_core::flatten::{FlattenOptions, flatten};

fuzz_target!(|data: &[u8]| {
    let opts = FlattenOptions::default();
    let split = data.first().map(|b| *b as usize % (data.len().max(1))).unwrap_or(0);
    let layers: [&[u8]; 2] = [&data[..split], &data[split..]];
    let mut out = Vec::new();
    if flatten(&layers[..], &mut out, &opts).is_ok() {
        let again: [&[u8]; 1] = [&out];
        let mut out2 = Vec::new();
        flatten(&again[..], &mut out2, &opts).expect("hoist's own flat tar must read back");
    }
});
