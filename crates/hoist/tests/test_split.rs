//! `hoist save --split` and loading split sets: parts, sums, stale parts, missing and corrupt
//! parts (the store unchanged).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, Env};

const IMAGE: &str = "dive-test:latest";
const PART: u64 = 512 * 1024;

/// A store with the dive-test image (1.4 MiB of layers: three parts of 512K).
fn env_with_image() -> Env {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker18_dive-test.tar")
            .to_str()
            .unwrap(),
    ]);
    env
}

/// The files of a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// Saves IMAGE split into parts of `size` in a directory of its own; returns the set's base.
fn save_split(env: &Env, dir: &str, size: &str, extra: &[&str]) -> PathBuf {
    let d = env.path(dir);
    std::fs::create_dir_all(&d).unwrap();
    let base = d.join("out.tar");
    let mut args = vec!["save", "--split", size, "-o", base.to_str().unwrap()];
    args.extend(extra);
    args.push(IMAGE);
    env.ok(&args);
    base
}

fn part(base: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n:03}", base.display()))
}

/// The image IDs a fresh store has after `load ARGS` (or after the shell command `sh`).
fn ids_after(load: impl FnOnce(&Env)) -> String {
    let env = Env::new();
    load(&env);
    env.ok(&["images", "-q", "--no-trunc"])
}

#[test]
fn parts_concatenate_to_the_archive_and_load_three_ways() {
    let env = env_with_image();
    let whole = env.path("whole.tar");
    env.ok(&["save", "-o", whole.to_str().unwrap(), IMAGE]);
    let whole_bytes = std::fs::read(&whole).unwrap();
    let base = save_split(&env, "set", "512K", &[]);
    let dir = base.parent().unwrap();

    assert_eq!(
        names(dir),
        [
            "out.tar.000",
            "out.tar.001",
            "out.tar.002",
            "out.tar.sha256"
        ]
    );
    let sizes: Vec<u64> = (0..3)
        .map(|i| std::fs::metadata(part(&base, i)).unwrap().len())
        .collect();
    let len = whole_bytes.len() as u64;
    assert!(len > 2 * PART && len <= 3 * PART, "{len}");
    assert_eq!(sizes, [PART, PART, len - 2 * PART]);

    let mut cat = Vec::new();
    for i in 0..3 {
        cat.extend(std::fs::read(part(&base, i)).unwrap());
    }
    assert_eq!(common::sha256(&cat), common::sha256(&whole_bytes));

    let sums = std::fs::read_to_string(dir.join("out.tar.sha256")).unwrap();
    let want: String = (0..3)
        .map(|i| format!("{}  out.tar.{i:03}\n", common::sha256_file(&part(&base, i))))
        .collect();
    assert_eq!(sums, want);
    let check = Command::new("sha256sum")
        .args(["-c", "out.tar.sha256"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(check.status.success());
    assert_eq!(
        String::from_utf8(check.stdout).unwrap(),
        "out.tar.000: OK\nout.tar.001: OK\nout.tar.002: OK\n"
    );

    let want_ids = ids_after(|e| {
        e.ok(&["load", "-i", whole.to_str().unwrap()]);
    });
    assert_eq!(want_ids.lines().count(), 1);
    let from_part0 = ids_after(|e| {
        let out = e.ok(&["load", "-i", part(&base, 0).to_str().unwrap()]);
        assert_eq!(out, "Loaded image: dive-test:latest\n");
    });
    let from_base = ids_after(|e| {
        e.ok(&["load", "-i", base.to_str().unwrap()]);
    });
    // `cat OUT.* | hoist load`: the shell's glob takes OUT.sha256 too, after the parts; the
    // archive ends before it.
    let from_cat = ids_after(|e| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(r#"cat out.tar.* | "$0" --root "$1" load"#)
            .arg(common::hoist_bin())
            .arg(&e.root)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    assert_eq!(from_part0, want_ids);
    assert_eq!(from_base, want_ids);
    assert_eq!(from_cat, want_ids);
}

#[test]
fn compressed_archives_are_split_after_compressing() {
    let env = env_with_image();
    for c in ["gzip", "zstd"] {
        let whole = env.path(&format!("whole.{c}"));
        env.ok(&[
            "save",
            "--compress",
            c,
            "-o",
            whole.to_str().unwrap(),
            IMAGE,
        ]);
        let whole_bytes = std::fs::read(&whole).unwrap();
        let base = save_split(&env, c, "100K", &["--compress", c]);
        let n = whole_bytes.len().div_ceil(100 * 1024);
        assert!(n >= 3, "{c}: {n} parts");
        let mut cat = Vec::new();
        for i in 0..n {
            cat.extend(std::fs::read(part(&base, i)).unwrap());
        }
        assert!(!part(&base, n).exists());
        assert_eq!(cat, whole_bytes, "{c}");
        let ids = ids_after(|e| {
            e.ok(&["load", "-i", base.to_str().unwrap()]);
        });
        assert_eq!(
            ids,
            ids_after(|e| {
                e.ok(&["load", "-i", whole.to_str().unwrap()]);
            })
        );
    }
}

#[test]
fn a_smaller_set_replaces_a_bigger_one_whole() {
    let env = env_with_image();
    let base = save_split(&env, "set", "256K", &[]);
    let dir = base.parent().unwrap().to_path_buf();
    assert_eq!(names(&dir).len(), 6 + 1);
    save_split(&env, "set", "512K", &[]);
    assert_eq!(
        names(&dir),
        [
            "out.tar.000",
            "out.tar.001",
            "out.tar.002",
            "out.tar.sha256"
        ]
    );
    // Without the sums file too, the parts found are the new ones only.
    std::fs::remove_file(dir.join("out.tar.sha256")).unwrap();
    env.ok(&["load", "-i", base.to_str().unwrap()]);
}

#[test]
fn split_needs_an_output_file() {
    let env = env_with_image();
    let out = env.cmd(&["save", "--split", "1M", IMAGE]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = env.fails(&["save", "--split", "1M", "-o", "-", IMAGE]);
    assert_eq!(
        err,
        "hoist: error: --split writes files: give -o FILE (not stdout)\n"
    );
    let out = env
        .cmd(&["save", "--split", "4GB", "-o", "x", IMAGE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid size \"4GB\": use bytes or a number with K, M, G or T"),
    );
    let help = env.ok(&["save", "--help"]);
    assert!(help.contains("4095M fits"), "{help}");
}

/// A store with another image in it (so it exists and has content) and its snapshot.
fn other_store() -> (Env, std::collections::BTreeMap<String, String>) {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker25-oci_ggcr-hello-world-v25.tar")
            .to_str()
            .unwrap(),
    ]);
    let snap = env.snapshot();
    (env, snap)
}

#[test]
fn a_missing_part_is_named_and_the_store_unchanged() {
    let src = env_with_image();
    let base = save_split(&src, "set", "512K", &[]);
    std::fs::remove_file(part(&base, 2)).unwrap();
    let (env, snap) = other_store();
    for input in [part(&base, 0), base.clone()] {
        let err = env.fails(&["load", "-i", input.to_str().unwrap()]);
        assert_eq!(
            err,
            format!(
                "hoist: error: loading {}: part {} is missing\n",
                input.display(),
                part(&base, 2).display()
            )
        );
        assert_eq!(env.snapshot(), snap);
    }
    // Without the sums file, a gap before the last part found is a missing part too.
    std::fs::rename(part(&base, 1), part(&base, 2)).unwrap();
    std::fs::remove_file(format!("{}.sha256", base.display())).unwrap();
    let err = env.fails(&["load", "-i", base.to_str().unwrap()]);
    assert_eq!(
        err,
        format!(
            "hoist: error: loading {}: part {} is missing\n",
            base.display(),
            part(&base, 1).display()
        )
    );
    assert_eq!(env.snapshot(), snap);
}

#[test]
fn a_corrupt_part_is_named_and_the_store_unchanged() {
    let src = env_with_image();
    let base = save_split(&src, "set", "512K", &[]);
    let (env, snap) = other_store();
    // A byte inside a layer (part 1), and the last byte of the set: the end-of-archive zeros,
    // which the archive reader never needs, so only the part's sum can tell.
    for (n, offset) in [(1usize, Some(4096usize)), (2, None)] {
        let p = part(&base, n);
        let good = std::fs::read(&p).unwrap();
        let mut bad = good.clone();
        let at = offset.unwrap_or(bad.len() - 1);
        bad[at] ^= 1;
        std::fs::write(&p, &bad).unwrap();
        let err = env.fails(&["load", "-i", base.to_str().unwrap()]);
        assert_eq!(
            err,
            format!(
                "hoist: error: loading {}: {}: sha256 mismatch (expected {}, found {})\n",
                base.display(),
                p.display(),
                common::sha256(&good),
                common::sha256(&bad)
            )
        );
        assert_eq!(env.snapshot(), snap, "part {n}");
        std::fs::write(&p, &good).unwrap();
    }
    env.ok(&["load", "-i", base.to_str().unwrap()]);
}
