//! hoist's one integration-test binary: a module per command or concern.
#![allow(unreachable_pub)] // a test binary: `pub` only shares helpers between modules

mod common;

mod test_analyze;
mod test_bad_input;
mod test_containers;
mod test_copy;
mod test_crash;
mod test_delta;
mod test_export;
mod test_images;
mod test_import;
mod test_interop;
mod test_json_quirks;
mod test_load;
mod test_ls;
mod test_mount;
mod test_multi_image;
mod test_registry;
mod test_registry_auth;
mod test_registry_faults;
mod test_registry_platforms;
mod test_save;
mod test_split;
mod test_ssh;
mod test_tar_cases;
mod test_transports;
mod test_verify;

/// Every `tests/test_*.rs` file must be registered above, or it silently never runs.
#[test]
fn no_forgotten_test_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let runner = std::fs::read_to_string(dir.join("runner.rs")).unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        if let Some(m) = name
            .strip_prefix("test_")
            .and_then(|n| n.strip_suffix(".rs"))
        {
            assert!(
                runner.contains(&format!("mod test_{m};")),
                "tests/{name} is not in runner.rs"
            );
        }
    }
}
