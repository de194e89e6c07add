//! Any bytes given to `load` either load or give an error: no panic, and a failed load leaves
//! the store's index exactly as it was.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static STORE: OnceLock<(tempfile::TempDir, hoist_core::Store)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (_dir, store) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = hoist_core::Store::open(dir.path().join("store")).expect("store");
        (dir, store)
    });
    let before = std::fs::read(store.root().join("index.json")).expect("index");
    let opts = hoist_core::archive::LoadOptions::default();
    if hoist_core::archive::load(store, data, &opts).is_err() {
        let after = std::fs::read(store.root().join("index.json")).expect("index");
        assert_eq!(before, after, "a failed load changed index.json");
    }
});
