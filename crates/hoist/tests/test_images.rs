//! `images`, `tag`, `rmi`, `inspect`, `history`, `gc`, `fsck`: names, IDs and docker's formats.

use crate::common::{self, Env};

#[test]
fn images_table_and_json() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker20_multi_dive-derived.tar")
            .to_str()
            .unwrap(),
    ]);
    let out = env.ok(&["images"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("REPOSITORY            TAG       IMAGE ID       CREATED"),
        "{out}"
    );
    let cols = |l: &str| {
        l.split_whitespace()
            .take(3)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let mut rows: Vec<Vec<String>> = lines[1..].iter().map(|l| cols(l)).collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ["corpus/dive-derived", "alias", "f52617ca55b5"],
            ["corpus/dive-derived", "v1", "f52617ca55b5"],
            ["dive-test", "latest", "75ae28b8ebf8"]
        ]
    );
    let q = env.ok(&["images", "-q", "--no-trunc"]);
    let mut ids: Vec<&str> = q.lines().collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "sha256:75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a",
            "sha256:f52617ca55b536c347c0e8e1c4fcc6b014098fbb85788158c75d8fee660b067c"
        ]
    );
    let json = env.ok(&["images", "--format", "json"]);
    let first: serde_json::Value =
        serde_json::from_str(json.lines().find(|l| l.contains("dive-test")).unwrap()).unwrap();
    assert_eq!(first["Repository"], "dive-test");
    assert_eq!(first["Tag"], "latest");
    assert_eq!(first["ID"], "75ae28b8ebf8");
    assert_eq!(first["CreatedAt"], "2018-12-28 20:44:23 +0000 UTC");
}

#[test]
fn tag_rmi_gc_keep_shared_blobs() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker20_multi_dive-derived.tar")
            .to_str()
            .unwrap(),
    ]);
    env.ok(&["tag", "dive-test", "x/y:z"]);
    assert_eq!(
        env.inspect("x/y:z")["Id"],
        "sha256:75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a"
    );
    // By ID with several names: refused unless forced, as docker does.
    let err = env.fails(&["rmi", "f52617ca55b5"]);
    assert!(err.contains("must be forced"), "{err}");
    assert_eq!(
        env.ok(&["rmi", "corpus/dive-derived:v1"]),
        "Untagged: corpus/dive-derived:v1\n"
    );
    assert_eq!(
        env.ok(&["rmi", "corpus/dive-derived:alias"]),
        "Untagged: corpus/dive-derived:alias\nDeleted: sha256:f52617ca55b536c347c0e8e1c4fcc6b014098fbb85788158c75d8fee660b067c\n"
    );
    let before = std::fs::read_dir(env.root.join("blobs/sha256"))
        .unwrap()
        .count();
    let gc = env.ok(&["gc"]);
    // The derived image had 3 layers of its own, a config and a manifest.
    assert!(gc.starts_with("removed 5 blobs"), "{gc}");
    assert_eq!(
        std::fs::read_dir(env.root.join("blobs/sha256"))
            .unwrap()
            .count(),
        before - 5
    );
    assert!(env.ok(&["fsck"]).contains(" 0 problems"));
    // The shared layers are still there: the remaining image saves and reloads.
    let out = env.path("d.tar");
    env.ok(&["save", "-o", out.to_str().unwrap(), "x/y:z"]);
    let fresh = Env::new();
    assert_eq!(
        fresh.ok(&["load", "-i", out.to_str().unwrap()]),
        "Loaded image: x/y:z\n"
    );
    assert_eq!(
        env.ok(&["rmi", "-f", "75ae28b8ebf8"])
            .lines()
            .last()
            .unwrap(),
        "Deleted: sha256:75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a"
    );
}

#[test]
fn find_by_id_prefix_and_ambiguity() {
    let env = Env::new();
    for f in [
        "docker-v1.2_docker18_dive-test.tar",
        "ggcr-tarball_kaniko_dive-test.tar",
    ] {
        env.ok(&["load", "-i", common::data(f).to_str().unwrap()]);
    }
    assert_eq!(
        env.inspect("75ae")["RepoTags"],
        serde_json::json!(["dive-test:latest"])
    );
    assert_eq!(
        env.inspect("sha256:ae16a51058a758c7963b2f9b23d1acfa201ce9cbefc8cb93845f8cd934fb144d")["RepoTags"],
        serde_json::json!(["dive-test:kaniko-latest"])
    );
    let err = env.fails(&["inspect", "nothing-here"]);
    assert!(err.contains("No such image: nothing-here"), "{err}");
}

#[test]
fn inspect_and_history_show_the_config() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker25-oci_ggcr-hello-world-v25.tar")
            .to_str()
            .unwrap(),
        "-t",
        "hello",
    ]);
    let v = env.inspect("hello");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/hello"]));
    assert_eq!(v["Architecture"], "arm64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Created"], "2023-05-02T16:49:27Z");
    assert_eq!(v["Size"], 10752);
    assert_eq!(v["RootFS"]["Type"], "layers");
    let h = env.ok(&["history", "--no-trunc", "--format", "json", "hello"]);
    let rows: Vec<serde_json::Value> = h
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["CreatedBy"], "CMD [\"/hello\"]");
    assert_eq!(rows[0]["Size"], "0B");
    assert_eq!(
        rows[0]["ID"],
        "sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44"
    );
    assert_eq!(rows[1]["CreatedBy"], "COPY hello / # buildkit");
    assert_eq!(rows[1]["Size"], "10.8kB");
    assert_eq!(rows[1]["ID"], "<missing>");
}

#[test]
fn fsck_finds_a_damaged_blob() {
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker24_scalibr-symlinks.tar")
            .to_str()
            .unwrap(),
    ]);
    let layer = env.inspect("symlinks")["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let p = env.root.join("blobs/sha256").join(&layer);
    let mut b = std::fs::read(&p).unwrap();
    b[600] ^= 1;
    std::fs::write(&p, b).unwrap();
    let out = env.cmd(&["fsck"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&layer) && text.contains("content has digest"),
        "{text}"
    );
}

#[test]
fn help_and_completions() {
    let env = Env::new();
    let help = env.ok(&["--help"]);
    for cmd in [
        "load",
        "save",
        "images",
        "tag",
        "rmi",
        "inspect",
        "history",
        "fsck",
        "gc",
        "completions",
    ] {
        assert!(
            help.contains(&format!("  {cmd} ")),
            "{cmd} missing from --help"
        );
    }
    assert!(
        env.ok(&["load", "--help"])
            .contains("--platform <OS/ARCH[/VARIANT]>")
    );
    assert!(env.ok(&["completions", "bash"]).contains("_hoist()"));
}

#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    use std::io::Read;
    let env = Env::new();
    env.ok(&[
        "load",
        "-i",
        common::data("docker-v1.2_docker18_dive-test.tar")
            .to_str()
            .unwrap(),
    ]);
    for args in [
        &["save", "dive-test"][..],
        &["export", "dive-test"][..],
        &["images"][..],
    ] {
        let mut child = env
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 10];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        // The reader goes away early, as `| head -c 10` does.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
