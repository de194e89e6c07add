//! The reference parser never panics, and what it accepts prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

use hoist_format::reference::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = Reference::parse_normalized(s) {
        let full = r.to_string();
        let again = Reference::parse_normalized(&full).expect("a normalized reference re-parses");
        assert_eq!(again.to_string(), full);
    }
    let _ = hoist_format::docker::parse_manifest(data);
});
