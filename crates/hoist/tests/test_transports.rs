//! Images read in place, without loading them: `export`, `analyze`, `diff`, `history` and
//! `inspect` of `docker-archive:FILE[:NAME]`, `oci-archive:FILE[:REF]` and `oci:DIR[:REF]` give
//! what they give for the same image loaded into the store, and write nothing under
//! `$HOIST_ROOT`; `images -i` lists what an archive or layout holds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{self, Env, expected};
use crate::test_export::{CorpusImage, corpus_images, tar_listing};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// hoist with `$HOIST_ROOT` at a path that does not exist (and must not, afterwards).
struct Storeless {
    dir: tempfile::TempDir,
}

impl Storeless {
    fn new() -> Storeless {
        Storeless {
            dir: tempfile::Builder::new()
                .prefix("hoist-storeless-")
                .tempdir()
                .unwrap(),
        }
    }

    /// `$HOIST_ROOT`, under a directory that does not exist either.
    fn root(&self) -> PathBuf {
        self.dir.path().join("absent/store")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::hoist_bin());
        c.env("HOIST_ROOT", self.root())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "hoist {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "hoist {args:?} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "hoist {args:?} panicked: {err}");
        err
    }

    /// Nothing was written under `$HOIST_ROOT` (not even its parent was made).
    fn assert_untouched(&self) {
        let absent = self.dir.path().join("absent");
        assert!(
            !absent.exists(),
            "{} was created: {:?}",
            absent.display(),
            common::snapshot_tree(&absent)
        );
    }
}

/// `docker-archive:` for docker archives (legacy v1, manifest.json, docker 25),
/// `oci-archive:` for OCI archives, `oci:` for layout directories; for a file holding
/// several images, the image's first name picks it (the platforms of an index are picked
/// with `--platform`).
fn transport_of(im: &CorpusImage, several: bool) -> String {
    let path = common::data(&im.file);
    let kind = if path.is_dir() {
        "oci"
    } else if im.file.starts_with("oci-archive_") {
        "oci-archive"
    } else {
        "docker-archive"
    };
    let mut loc = format!("{kind}:{}", path.display());
    if several {
        loc.push(':');
        loc.push_str(&im.names[0]);
    }
    loc
}

/// `analyze --format json` without the `image` member (the name as asked, which differs).
fn analysis(out: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(out).unwrap();
    v.as_object_mut().unwrap().remove("image").unwrap();
    v
}

/// Every corpus image through the transport that applies to its file, and through an `oci:`
/// layout `hoist copy` made of it: the same export, analysis, history and inspect as the
/// loaded image, no difference to it, and the store never created.
#[test]
fn every_corpus_image_read_in_place_equals_the_loaded_image() {
    let images = corpus_images();
    assert_eq!(images.len(), 30, "every image of the corpus");
    let mut kinds = BTreeSet::new();
    for (n, im) in images.iter().enumerate() {
        let several =
            im.platform.is_none() && images.iter().filter(|o| o.file == im.file).count() > 1;
        let platform: Vec<&str> = im
            .platform
            .iter()
            .flat_map(|p| ["--platform", p.as_str()])
            .collect();
        // The image loaded into a store: what reading it in place must equal.
        let loaded = Env::new();
        let file = common::data(&im.file);
        loaded.ok(&[&["load", "-i", s(&file)], platform.as_slice()].concat());

        let mut locations = vec![transport_of(im, several)];
        // The same image as an OCI layout (hoist copy reads uncompressed v1.2 and OCI
        // archives in place; a layout directory is one already).
        let layout = loaded.path("layout");
        let copyable =
            !file.is_dir() && !im.file.starts_with("legacy-v1_") && (im.file.ends_with(".tar"));
        if copyable {
            loaded.ok(&[
                "copy",
                &locations[0],
                &format!("oci:{}:copied", layout.display()),
            ]);
            locations.push(format!("oci:{}:copied", layout.display()));
        }

        for loc in &locations {
            kinds.insert(loc.split(':').next().unwrap().to_string());
            let what = format!("{} ({}) as {loc}", im.file, im.id);
            let sl = Storeless::new();
            let read = |args: &[&str]| -> String {
                sl.ok(&[args, platform.as_slice(), &[loc.as_str()]].concat())
            };

            let out = sl.path(&format!("export-{n}.tar"));
            read(&["export", "-o", s(&out)]);
            let want = std::fs::read_to_string(common::data(&im.tsv)).unwrap();
            assert_eq!(tar_listing(&out, &[]), want, "{what}: export != {}", im.tsv);

            assert_eq!(
                analysis(&read(&["analyze", "--format", "json"])),
                analysis(&loaded.ok(&["analyze", "--format", "json", &im.id])),
                "{what}: analyze"
            );
            assert_eq!(
                read(&["history", "--no-trunc", "--format", "json"]),
                loaded.ok(&["history", "--no-trunc", "--format", "json", &im.id]),
                "{what}: history"
            );
            let mut want: serde_json::Value =
                serde_json::from_str(&loaded.ok(&["inspect", &im.id])).unwrap();
            if loc.ends_with(":copied") {
                // What must differ: a bare ref name names no image (load's rule).
                want[0]["RepoTags"] = serde_json::json!([]);
            }
            let got: serde_json::Value = serde_json::from_str(&read(&["inspect"])).unwrap();
            assert_eq!(got, want, "{what}: inspect");
            // The same image read twice: no difference.
            assert_eq!(
                sl.ok(&[
                    &["diff"],
                    platform.as_slice(),
                    &[loc.as_str(), loc.as_str()]
                ]
                .concat()),
                "",
                "{what}: diff of itself"
            );
            sl.assert_untouched();

            // Against the loaded image, either way round: no difference.
            for args in [
                [loc.as_str(), im.id.as_str()],
                [im.id.as_str(), loc.as_str()],
            ] {
                assert_eq!(
                    loaded.ok(&[&["diff"], platform.as_slice(), &args].concat()),
                    "",
                    "{what}: diff {args:?}"
                );
            }
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["docker-archive", "oci", "oci-archive"]
    );
}

/// A difference is found through an archive too: two different images of the corpus.
#[test]
fn diff_between_two_archives_lists_the_changes() {
    let sl = Storeless::new();
    let derived = format!(
        "docker-archive:{}:corpus/dive-derived:v1",
        common::data("docker-v1.2_docker20_multi_dive-derived.tar").display()
    );
    let base = format!(
        "docker-archive:{}",
        common::data("docker-v1.2_docker18_dive-test.tar").display()
    );
    let from_archives = sl.ok(&["diff", &base, &derived]);
    sl.assert_untouched();
    let env = Env::new();
    for f in [
        "docker-v1.2_docker20_multi_dive-derived.tar",
        "docker-v1.2_docker18_dive-test.tar",
    ] {
        env.ok(&["load", "-i", s(&common::data(f))]);
    }
    let from_store = env.ok(&["diff", "dive-test:latest", "corpus/dive-derived:v1"]);
    assert!(!from_store.is_empty());
    assert_eq!(from_archives, from_store);
    // An archive against a store image: the same.
    assert_eq!(
        env.ok(&["diff", &base, "corpus/dive-derived:v1"]),
        from_store
    );
}

/// An archive holding several images and no NAME: refused, naming the file and every image
/// (an untagged one by its ID); nothing is written.
#[test]
fn several_images_and_no_name_is_refused_listing_them() {
    let sl = Storeless::new();
    let file = common::data("docker-v1.2_docker20_multi_dive-derived.tar");
    for cmd in ["export", "analyze", "history", "inspect"] {
        let err = sl.fails(&[cmd, &format!("docker-archive:{}", file.display())]);
        assert_eq!(
            err,
            format!(
                "hoist: error: reading docker-archive:{0}: invalid archive: {0}: it has 2 \
                 images: name one (corpus/dive-derived:alias, corpus/dive-derived:v1, \
                 dive-test:latest)\n",
                file.display()
            ),
            "{cmd}"
        );
    }
    // An OCI layout with a named image and an untagged one.
    let env = Env::new();
    let layout = env.path("two");
    let gzip = common::data("oci-archive_buildkit-gzip_dive.tar");
    let hello = common::data("docker25-oci_ggcr-hello-world-v25.tar");
    env.ok(&[
        "copy",
        &format!("oci-archive:{}", gzip.display()),
        &format!("oci:{}:one", layout.display()),
    ]);
    env.ok(&[
        "copy",
        &format!("docker-archive:{}", hello.display()),
        &format!("oci:{}", layout.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let untagged = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d.get("annotations").is_none())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let err = sl.fails(&["analyze", &format!("oci:{}", layout.display())]);
    assert_eq!(
        err,
        format!(
            "hoist: error: reading oci:{0}: invalid archive: {0}: it has 2 images: name one \
             (one, untagged manifest {untagged})\n",
            layout.display()
        )
    );
    // Named, each is read.
    let named = sl.ok(&["inspect", &format!("oci:{}:one", layout.display())]);
    let v: serde_json::Value = serde_json::from_str(&named).unwrap();
    assert_eq!(
        v[0]["Id"],
        "sha256:3eaccc100f866490f00ae82727b459a737af031dcf44c791d8aa714a70f24959"
    );
    // A docker archive (manifest.json only) with an untagged image among others: listed by
    // its ID.
    let two = env.path("two.tar");
    env.ok(&["load", "-i", s(&hello)]);
    env.ok(&[
        "load",
        "-i",
        s(&common::data("docker-v1.2_docker18_dive-test.tar")),
    ]);
    env.ok(&[
        "save",
        "--format",
        "docker-legacy",
        "-o",
        s(&two),
        "ee301c921b8a",
        "dive-test:latest",
    ]);
    let err = sl.fails(&["history", &format!("docker-archive:{}", two.display())]);
    assert_eq!(
        err,
        format!(
            "hoist: error: reading docker-archive:{0}: invalid archive: {0}: it has 2 images: \
             name one (dive-test:latest, untagged image \
             sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44)\n",
            two.display()
        )
    );
    // Named, the other is read.
    let named = sl.ok(&[
        "inspect",
        &format!("docker-archive:{}:dive-test", two.display()),
    ]);
    let v: serde_json::Value = serde_json::from_str(&named).unwrap();
    assert_eq!(
        v[0]["Id"],
        "sha256:75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a"
    );
    assert_eq!(v[0]["RepoTags"], serde_json::json!(["dive-test:latest"]));
    sl.assert_untouched();
}

/// The names `images -i` must list for an image of `expected.json`: its RepoTags as docker
/// shows them, or, where docker 20 named nothing, the names hoist's loader takes from the OCI
/// annotations (the ref name `sample:latest`, the containerd image name).
fn expected_names(file: &str, im: &serde_json::Value) -> BTreeSet<String> {
    let annotated = match file {
        "oci-archive_stereoscope-valid-oci.tar" => vec!["sample:latest"],
        "oci-layout-dir_docker-containerd-store_stereoscope-multiplatform" => {
            vec!["multi-platform:latest"]
        }
        _ => vec![],
    };
    let tags: Vec<String> = im["repo_tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let t = t.as_str().unwrap();
                    let last = t.rsplit('/').next().unwrap();
                    if last.contains(':') {
                        t.to_string()
                    } else {
                        format!("{t}:latest")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out: BTreeSet<String> = tags.into_iter().collect();
    out.extend(annotated.into_iter().map(str::to_string));
    if out.is_empty() {
        out.insert("<none>:<none>".into());
    }
    out
}

/// `images -i` of every corpus file lists exactly its images (every platform of an index), by
/// name and ID, with the platform and size `hoist images` and `inspect` show once loaded.
#[test]
fn images_input_lists_every_corpus_archive() {
    let sl = Storeless::new();
    let mut files = 0;
    for item in expected()["items"].as_array().unwrap() {
        let role = item["role"].as_str().unwrap();
        if role != "load" && role != "layout" {
            continue;
        }
        files += 1;
        let file = item["file"].as_str().unwrap();
        let path = common::data(file);
        let out = sl.ok(&["images", "-i", s(&path), "--no-trunc", "--format", "json"]);
        let mut got: BTreeSet<(String, String, String, String)> = BTreeSet::new();
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            got.insert((
                format!(
                    "{}:{}",
                    v["Repository"].as_str().unwrap(),
                    v["Tag"].as_str().unwrap()
                ),
                v["ID"].as_str().unwrap().to_string(),
                v["Platform"].as_str().unwrap().to_string(),
                v["Size"].as_str().unwrap().to_string(),
            ));
        }
        let mut want = BTreeSet::new();
        for im in item["images"].as_array().unwrap() {
            let id = im["config_digest"]
                .as_str()
                .or_else(|| im["docker20_image_id"].as_str())
                .unwrap();
            // Platform and size as the store shows the image once loaded.
            let env = Env::new();
            let mut load = vec!["load", "-i", s(&path)];
            let platform = im["platform"]["architecture"]
                .as_str()
                .map(|a| format!("linux/{a}"));
            if file.contains("multiplatform") {
                load.extend(["--platform", platform.as_deref().unwrap()]);
            }
            env.ok(&load);
            let inspect = env.inspect(id);
            let platform = format!(
                "{}/{}",
                inspect["Os"].as_str().unwrap(),
                inspect["Architecture"].as_str().unwrap()
            );
            let listed = env.ok(&["images", "--no-trunc", "--format", "json"]);
            let size = listed
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|v| v["ID"] == id)
                .unwrap()["Size"]
                .as_str()
                .unwrap()
                .to_string();
            for name in expected_names(file, im) {
                want.insert((name, id.to_string(), platform.clone(), size.clone()));
            }
        }
        assert_eq!(got, want, "images -i {file}");
    }
    assert_eq!(files, 25, "every archive and layout of the corpus");
    sl.assert_untouched();
}

/// `images -i`'s table and `-q`, exactly.
#[test]
fn images_input_table_and_quiet() {
    let sl = Storeless::new();
    let multi = common::data("docker-v1.2_docker20_multi_dive-derived.tar");
    assert_eq!(
        sl.ok(&["images", "-i", s(&multi)]),
        "REPOSITORY            TAG       IMAGE ID       PLATFORM      SIZE\n\
         corpus/dive-derived   alias     f52617ca55b5   linux/amd64   1.48MB\n\
         corpus/dive-derived   v1        f52617ca55b5   linux/amd64   1.48MB\n\
         dive-test             latest    75ae28b8ebf8   linux/amd64   1.47MB\n"
    );
    let layout = common::data("oci-layout-dir_docker-containerd-store_stereoscope-multiplatform");
    assert_eq!(
        sl.ok(&["images", "--input", s(&layout)]),
        "REPOSITORY       TAG       IMAGE ID       PLATFORM      SIZE\n\
         multi-platform   latest    549248a7ac95   linux/amd64   4.61kB\n\
         multi-platform   latest    3cd6022503ce   linux/arm64   4.61kB\n"
    );
    assert_eq!(
        sl.ok(&["images", "-q", "-i", s(&layout)]),
        "549248a7ac95\n3cd6022503ce\n"
    );
    // An attestation manifest in the index is no image.
    let env = Env::new();
    let (attested, _) = crate::test_registry_platforms::layout_with_attestation(&env);
    assert_eq!(
        sl.ok(&["images", "-q", "-i", s(&attested)]),
        "549248a7ac95\n3cd6022503ce\n"
    );
    let legacy = common::data("legacy-v1_moby-emptyLayer.tar");
    assert_eq!(
        sl.ok(&["images", "-i", s(&legacy)]),
        "REPOSITORY                  TAG            IMAGE ID       PLATFORM      SIZE\n\
         matthughes/library-centos   6-2015.03.20   a9e31d6f186f   linux/amd64   10.8kB\n"
    );
    // Not an image archive: the file and what is wrong.
    let rootfs = common::data("import-input_scalibr-escape.tar");
    assert_eq!(
        sl.fails(&["images", "-i", s(&rootfs)]),
        format!(
            "hoist: error: listing the images of {0}: invalid archive: {0}: the archive holds \
             no image\n",
            rootfs.display()
        )
    );
    sl.assert_untouched();
}
