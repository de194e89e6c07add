//! Crash safety and concurrency: `kill -9` during a load, concurrent loads, rmi + gc.

use std::io::Write;
use std::time::Duration;

use crate::common::{self, Env};

/// Writes a docker archive of about `mib` MiB (3 layers of incompressible data) named `name`.
fn big_archive(path: &std::path::Path, mib: usize, name: &str, seed: u64) {
    let mut x = seed | 1;
    let mut layers = Vec::new();
    for i in 0..3 {
        let mut layer = tar::Builder::new(Vec::new());
        let mut data = vec![0u8; mib * 1024 * 1024 / 3];
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        layer
            .append_data(&mut h, format!("file{i}"), &data[..])
            .unwrap();
        layers.push(layer.into_inner().unwrap());
    }
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", common::sha256(l)))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/file0"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "a"}, {"created_by": "b"}, {"created_by": "c"}]
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cfg_name = format!("{}.json", common::sha256(&config));
    let mut out = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append_data(&mut h, name, bytes).unwrap();
    };
    let mut layer_names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("l{i}/layer.tar");
        add(&n, l);
        layer_names.push(n);
    }
    add(&cfg_name, &config);
    let manifest =
        serde_json::json!([{"Config": cfg_name, "RepoTags": [name], "Layers": layer_names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    out.into_inner().unwrap().flush().unwrap();
}

fn images(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = env
        .ok(&["images", "--format", "json"])
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}:{}",
                r["Repository"].as_str().unwrap(),
                r["Tag"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn kill_during_load_leaves_a_clean_store() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker24_scalibr-symlinks.tar")
            .to_str()
            .unwrap(),
    ]);
    let before_id = env.inspect("symlinks")["Id"].clone();
    let big = env.path("big.tar");
    big_archive(&big, 300, "big:1", 7);
    for delay_ms in [30u64, 150, 400, 900, 1600] {
        let mut child = env
            .cmd(&["load", "-i", big.to_str().unwrap()])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SIGKILL: no chance to clean up.
        child.kill().unwrap();
        child.wait().unwrap();
        let fsck = env.ok(&["fsck"]);
        assert!(
            fsck.contains(" 0 problems"),
            "after kill at {delay_ms} ms: {fsck}"
        );
        let imgs = images(&env);
        // Either the load had not committed (nothing new is visible) or it had (the image is whole).
        assert!(
            imgs == ["symlinks:latest"] || imgs == ["big:1", "symlinks:latest"],
            "after kill at {delay_ms} ms: {imgs:?}"
        );
        if imgs.contains(&"big:1".to_string()) {
            // A visible image is complete: it saves and its layers verify.
            env.ok(&[
                "save",
                "-o",
                env.path("check.tar").to_str().unwrap(),
                "big:1",
            ]);
            env.ok(&["rmi", "big:1"]);
        }
        assert_eq!(env.inspect("symlinks")["Id"], before_id);
    }
    // Leftovers of the killed loads are removed by gc; the earlier image is untouched.
    env.ok(&["gc"]);
    assert_eq!(
        std::fs::read_dir(env.root.join("hoist/tmp"))
            .unwrap()
            .count(),
        0
    );
    assert!(env.ok(&["fsck"]).contains(" 0 problems"));
    let out = env.path("s.tar");
    env.ok(&["save", "-o", out.to_str().unwrap(), "symlinks"]);
}

#[test]
fn concurrent_loads_all_land() {
    let env = Env::new();
    let mut paths = Vec::new();
    for i in 0..3 {
        let p = env.path(&format!("c{i}.tar"));
        big_archive(&p, 30, &format!("conc/img:{i}"), 100 + i as u64);
        paths.push(p);
    }
    let children: Vec<_> = paths
        .iter()
        .map(|p| {
            env.cmd(&["load", "-i", p.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "load {i} failed");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("Loaded image: conc/img:{i}\n")
        );
    }
    assert_eq!(images(&env), ["conc/img:0", "conc/img:1", "conc/img:2"]);
    assert!(env.ok(&["fsck"]).contains(" 0 problems"));
}

#[test]
fn gc_during_loads_never_removes_a_used_blob() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker20_multi_dive-derived.tar")
            .to_str()
            .unwrap(),
    ]);
    let p = env.path("g.tar");
    big_archive(&p, 60, "gc/img:1", 5);
    let load = env
        .cmd(&["load", "-i", p.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    env.ok(&["rmi", "corpus/dive-derived:v1", "corpus/dive-derived:alias"]);
    for _ in 0..5 {
        env.ok(&["gc"]);
    }
    assert!(load.wait_with_output().unwrap().status.success());
    env.ok(&["gc"]);
    assert!(env.ok(&["fsck"]).contains(" 0 problems"));
    assert_eq!(images(&env), ["dive-test:latest", "gc/img:1"]);
}
