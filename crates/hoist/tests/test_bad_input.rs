//! Bad input never panics, exits 1 with a message that names the problem, and leaves every
//! file of the store exactly as it was.

use crate::common::{self, Env};

/// A store with one image in it, and its snapshot.
fn env_with_image() -> (Env, std::collections::BTreeMap<String, String>) {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker24_scalibr-symlinks.tar")
            .to_str()
            .unwrap(),
    ]);
    let snap = env.snapshot();
    (env, snap)
}

fn assert_refused(
    env: &Env,
    snap: &std::collections::BTreeMap<String, String>,
    file: &std::path::Path,
    needle: &str,
) {
    let err = env.fails(&["load", "-i", file.to_str().unwrap()]);
    assert!(err.starts_with("hoist: error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert_eq!(
        &env.snapshot(),
        snap,
        "the store changed after refusing {}",
        file.display()
    );
}

#[test]
fn truncated_archive() {
    let (env, snap) = env_with_image();
    let bytes = std::fs::read(common::data("docker-v1.2_docker18_dive-test.tar")).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 3000, 700] {
        let f = env.path("cut.tar");
        std::fs::write(&f, &bytes[..cut]).unwrap();
        let err = env.fails(&["load", "-i", f.to_str().unwrap()]);
        assert!(
            err.contains("cut.tar")
                && (err.contains("truncated")
                    || err.contains("not in the archive")
                    || err.contains("not a readable tar")),
            "cut at {cut}: {err}"
        );
        assert_eq!(env.snapshot(), snap);
    }
}

#[test]
fn flipped_byte_inside_a_layer() {
    let (env, snap) = env_with_image();
    let path = common::data("docker-v1.2_docker18_dive-test.tar");
    let mut bytes = std::fs::read(&path).unwrap();
    // Find the biggest layer.tar and flip a byte in the middle of its data.
    let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
    let (mut pos, mut size, mut name) = (0u64, 0u64, String::new());
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_string_lossy().ends_with("layer.tar") && e.size() > size {
            pos = e.raw_file_position();
            size = e.size();
            name = e.path().unwrap().to_string_lossy().to_string();
        }
    }
    let at = (pos + size / 2) as usize;
    bytes[at] ^= 0x40;
    let f = env.path("flipped.tar");
    std::fs::write(&f, &bytes).unwrap();
    let err = env.fails(&["load", "-i", f.to_str().unwrap()]);
    assert!(
        err.contains("invalid diffID for layer") && err.contains(&name),
        "{err}"
    );
    assert_eq!(env.snapshot(), snap);
}

#[test]
fn flipped_byte_inside_an_oci_blob() {
    let (env, snap) = env_with_image();
    let path = common::data("oci-archive_buildkit-gzip_dive.tar");
    let mut bytes = std::fs::read(&path).unwrap();
    let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
    let mut target = None;
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        if e.size() > 4000 {
            target = Some((
                e.raw_file_position(),
                e.size(),
                e.path().unwrap().to_string_lossy().to_string(),
            ));
        }
    }
    let (pos, size, name) = target.unwrap();
    bytes[(pos + size / 2) as usize] ^= 1;
    let f = env.path("flipped-oci.tar");
    std::fs::write(&f, &bytes).unwrap();
    let err = env.fails(&["load", "-i", f.to_str().unwrap()]);
    assert!(
        err.contains("digest mismatch") && err.contains(&name),
        "{err}"
    );
    assert_eq!(env.snapshot(), snap);
}

#[test]
fn random_bytes_empty_file_and_missing_file() {
    let (env, snap) = env_with_image();
    // Deterministic pseudo-random bytes (xorshift).
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let random: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let f = env.path("random.bin");
    std::fs::write(&f, &random).unwrap();
    assert_refused(&env, &snap, &f, "not a readable tar stream");

    let f = env.path("empty.tar");
    std::fs::write(&f, b"").unwrap();
    assert_refused(&env, &snap, &f, "the input is empty");

    let missing = env.path("no-such-file.tar");
    let err = env.fails(&["load", "-i", missing.to_str().unwrap()]);
    assert!(
        err.contains("no-such-file.tar") && err.contains("No such file"),
        "{err}"
    );
    assert_eq!(env.snapshot(), snap);
}

#[test]
fn truncated_stdin() {
    let (env, snap) = env_with_image();
    let bytes = std::fs::read(common::data("docker-v1.2_gzip_trivy-alpine-310.tar.gz")).unwrap();
    let out = env.with_stdin(&["load"], &bytes[..bytes.len() * 2 / 3]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdin") && !err.contains("panicked"), "{err}");
    assert_eq!(env.snapshot(), snap);
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let out = env.cmd(&["load", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = env.cmd(&["save"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Refuses `file` with exactly `message` (after `hoist: error: loading <file>: `) and checks the
/// store did not change.
fn assert_refused_exactly(
    env: &Env,
    snap: &std::collections::BTreeMap<String, String>,
    file: &std::path::Path,
    message: &str,
) {
    let err = env.fails(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(
        err,
        format!("hoist: error: loading {}: {message}\n", file.display())
    );
    assert_eq!(&env.snapshot(), snap, "the store changed");
}

/// The corpus OCI archive without its entry `drop`.
fn oci_archive_without(env: &Env, drop: &str) -> std::path::PathBuf {
    let source = common::data("oci-archive_buildkit-gzip_dive.tar");
    let mut archive = tar::Archive::new(std::fs::File::open(&source).unwrap());
    let dest = env.path(&format!("no-{drop}.tar"));
    let mut b = tar::Builder::new(std::fs::File::create(&dest).unwrap());
    let mut dropped = 0;
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(drop) {
            dropped += 1;
            continue;
        }
        let mut h = e.header().clone();
        let path = e.path().unwrap().into_owned();
        b.append_data(&mut h, path, &mut e).unwrap();
    }
    b.into_inner().unwrap();
    assert_eq!(dropped, 1, "the source has {drop}");
    dest
}

#[test]
fn an_oci_archive_without_oci_layout_is_refused_naming_the_missing_file() {
    let (env, snap) = env_with_image();
    let no_layout = oci_archive_without(&env, "oci-layout");
    assert_refused_exactly(
        &env,
        &snap,
        &no_layout,
        "invalid archive: index.json is present but the oci-layout file is missing: an OCI \
         image layout needs both (`hoist copy oci-archive:FILE hoist:NAME` reads it without, as \
         skopeo does)",
    );
    let no_index = oci_archive_without(&env, "index.json");
    assert_refused_exactly(
        &env,
        &snap,
        &no_index,
        "invalid archive: the oci-layout file is present but index.json is missing: an OCI \
         image layout needs both",
    );
    // What the first message offers works.
    env.ok(&[
        "copy",
        &format!("oci-archive:{}", no_layout.display()),
        "hoist:nolayout:1",
    ]);
    env.inspect("nolayout:1");
}

#[test]
fn a_legacy_parent_loop_is_refused_as_a_loop() {
    let (env, snap) = env_with_image();
    // a -> b -> c -> a: every layer has a json and a parent, and the walk comes back to a.
    let mut layers = crate::test_load::legacy_chain(3);
    layers[0].1 = Some(layers[2].0.clone());
    let top = layers[2].0.clone();
    let looped = env.path("loop.tar");
    crate::test_load::legacy_archive(&looped, &layers, "loop", &top);
    assert_refused_exactly(
        &env,
        &snap,
        &looped,
        &format!("invalid archive: the parent chain of v1 layer {top} loops back to {top}"),
    );

    // A chain past hoist's bound says so, with the bound.
    let too_deep = env.path("too-deep.tar");
    let depth = hoist_format::legacy::MAX_V1_CHAIN_DEPTH + 1;
    let top = crate::test_load::v1_id(depth - 1);
    crate::test_load::legacy_archive(
        &too_deep,
        &crate::test_load::legacy_chain(depth),
        "deep",
        &top,
    );
    assert_refused_exactly(
        &env,
        &snap,
        &too_deep,
        &format!(
            "invalid archive: the parent chain of v1 layer {top} is more than 4096 layers deep \
             (hoist's limit; docker's layer store stops at 125)"
        ),
    );
}
