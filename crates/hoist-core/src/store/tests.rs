//! Store entries that point at a multi-platform index: one image to the user, every platform
//! kept by `gc` and verified by `fsck`.

use std::collections::BTreeMap;

use hoist_format::Digest;
use hoist_format::media_type::{self, ANNOTATION_DOCKER_REFERENCE_TYPE};
use hoist_format::oci::{Descriptor, DescriptorPlatform};
use hoist_format::platform::Platform;
use hoist_format::reference::Reference;

use super::{RemoveEvent, Store, StoreEntry};

/// A platform that is not the host's.
fn foreign() -> Platform {
    let p = if Platform::host().architecture == "s390x" {
        "linux/ppc64le"
    } else {
        "linux/s390x"
    };
    Platform::parse(p).unwrap()
}

fn put(store: &Store, bytes: &[u8]) -> Digest {
    let mut staging = store.staging().unwrap();
    let s = staging.stage_bytes(bytes).unwrap();
    staging.commit([&s]).unwrap();
    s.digest
}

/// One image (an uncompressed one-"layer" image for `p`); returns its index descriptor (with
/// platform) and its ID.
fn image(store: &Store, p: &Platform, tag: &str) -> (Descriptor, Digest) {
    // fsck and the store only hash layers; these bytes need not be a tar.
    let layer = format!("layer of {p} {tag}").into_bytes();
    let layer_digest = put(store, &layer);
    let config = format!(
        r#"{{"architecture":"{}","os":"{}","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#,
        p.architecture, p.os
    );
    let id = put(store, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{id}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{layer_digest}","size":{}}}]}}"#,
        media_type::OCI_MANIFEST,
        media_type::OCI_CONFIG,
        config.len(),
        media_type::OCI_LAYER,
        layer.len()
    );
    let digest = put(store, manifest.as_bytes());
    let mut d = Descriptor::new(media_type::OCI_MANIFEST, digest, manifest.len() as u64);
    d.platform = Some(DescriptorPlatform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        os_version: None,
        variant: None,
        extra: Default::default(),
    });
    (d, id)
}

/// An attestation entry for a manifest the store does not have (never pulled).
fn attestation() -> Descriptor {
    let mut d = Descriptor::new(
        media_type::OCI_MANIFEST,
        Digest::of(b"an attestation manifest hoist never pulled"),
        42,
    );
    d.annotations = Some(BTreeMap::from([(
        ANNOTATION_DOCKER_REFERENCE_TYPE.to_string(),
        "attestation-manifest".to_string(),
    )]));
    d.platform = Some(DescriptorPlatform {
        architecture: "unknown".into(),
        os: "unknown".into(),
        os_version: None,
        variant: None,
        extra: Default::default(),
    });
    d
}

/// Stores an index of `children` (byte-exact, pretty-printed as registries often serve them).
fn index(store: &Store, children: &[Descriptor]) -> Descriptor {
    let mut idx = hoist_format::oci::Index::new();
    idx.manifests = children.to_vec();
    let bytes = serde_json::to_vec_pretty(&idx).unwrap();
    let digest = put(store, &bytes);
    Descriptor::new(media_type::OCI_INDEX, digest, bytes.len() as u64)
}

fn name(n: &str) -> Reference {
    Reference::parse_normalized(n).unwrap().with_default_tag()
}

fn set_name(store: &Store, n: &str, desc: &Descriptor) {
    store
        .update_index(|entries| {
            let ids = store.ids_of(entries)?;
            Store::tag_entries(entries, &name(n), desc, &ids);
            Ok(())
        })
        .unwrap();
}

fn blob_count(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn an_index_entry_is_the_host_image_and_keeps_every_platform() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (other, other_id) = image(&store, &foreign(), "a");
    let (host, host_id) = image(&store, &Platform::host(), "a");
    // The host's platform second: it is chosen by platform, not by position.
    let idx = index(&store, &[other.clone(), attestation(), host.clone()]);
    set_name(&store, "multi:1", &idx);
    let blobs = blob_count(&store);
    assert_eq!(blobs, 7, "2 layers, 2 configs, 2 manifests, 1 index");

    let images = store.images().unwrap();
    assert_eq!(images.len(), 1);
    let (img, names) = &images[0];
    assert_eq!(img.id(), &host_id);
    assert_eq!(img.manifest_digest, host.digest);
    assert_eq!(img.index.as_ref().map(|d| &d.digest), Some(&idx.digest));
    assert_eq!(img.entry_descriptor(), idx);
    assert_eq!(names, &vec![name("multi:1")]);
    assert_eq!(store.resolve("multi:1").unwrap().0.id(), &host_id);
    let (by_id, by_id_names) = store.resolve(host_id.short()).unwrap();
    assert_eq!(by_id.index.as_ref().map(|d| &d.digest), Some(&idx.digest));
    assert_eq!(by_id_names, vec![name("multi:1")]);
    assert!(matches!(
        store.resolve(other_id.short()),
        Err(crate::Error::ImageNotFound(_))
    ));
    let ids = store.ids_of(&store.entries().unwrap()).unwrap();
    assert_eq!(ids.get(&idx.digest), Some(&host_id));

    // A new name points at the index too; the index.json entry keeps its media type.
    store.tag("multi:1", &name("multi:2")).unwrap();
    let entries = store.entries().unwrap();
    let e: Vec<&StoreEntry> = entries
        .iter()
        .filter(|e| e.name == Some(name("multi:2")))
        .collect();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].descriptor.digest, idx.digest);
    assert_eq!(e[0].descriptor.media_type, media_type::OCI_INDEX);

    // fsck verifies both platforms (a missing attestation is no problem); gc keeps them.
    let report = store.fsck().unwrap();
    assert_eq!(report.problems, vec![]);
    assert_eq!(report.blobs_checked, blobs);
    assert_eq!(store.gc().unwrap().blobs_removed, 0);
    assert_eq!(blob_count(&store), blobs);

    // A corrupt foreign config is found although the host's image is the one shown.
    let cfg = store.blob_path(&other_id);
    let good = std::fs::read(&cfg).unwrap();
    std::fs::write(&cfg, b"{}").unwrap();
    let problems = store.fsck().unwrap().problems;
    // The blob itself, and the image under each of the two names.
    assert_eq!(problems.len(), 3, "{problems:?}");
    std::fs::write(&cfg, good).unwrap();

    // Removing both names deletes the image; gc then frees every platform.
    assert_eq!(
        store.remove("multi:1", false).unwrap(),
        vec![RemoveEvent::Untagged(name("multi:1"))]
    );
    assert_eq!(
        store.remove("multi:2", false).unwrap(),
        vec![
            RemoveEvent::Untagged(name("multi:2")),
            RemoveEvent::Deleted(host_id)
        ]
    );
    assert_eq!(store.entries().unwrap().len(), 0);
    assert_eq!(store.gc().unwrap().blobs_removed, blobs);
}

#[test]
fn without_the_host_platform_the_first_held_image_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (first, first_id) = image(&store, &foreign(), "first");
    let (second, _) = image(&store, &foreign(), "second");
    let missing = Descriptor::new(
        media_type::OCI_MANIFEST,
        Digest::of(b"a manifest the store does not hold"),
        10,
    );
    let idx = index(&store, &[missing, first, second]);
    set_name(&store, "foreign:1", &idx);
    assert_eq!(store.resolve("foreign:1").unwrap().0.id(), &first_id);
    // fsck says what the index lacks.
    let problems = store.fsck().unwrap().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].problem.contains("missing"), "{problems:?}");
}

#[test]
fn nested_indexes_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (other, _) = image(&store, &foreign(), "n");
    let (host, host_id) = image(&store, &Platform::host(), "n");
    let inner = index(&store, &[other, host]);
    let outer = index(&store, &[inner]);
    set_name(&store, "nested:1", &outer);
    let (img, _) = store.resolve("nested:1").unwrap();
    assert_eq!(img.id(), &host_id);
    assert_eq!(img.entry_descriptor(), outer);
    assert_eq!(store.fsck().unwrap().problems, vec![]);
    assert_eq!(store.gc().unwrap().blobs_removed, 0);
    store.remove("nested:1", false).unwrap();
    assert_eq!(store.gc().unwrap().blobs_removed, 8);
}

#[test]
fn an_index_listing_no_held_image_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let idx = index(&store, &[attestation()]);
    store
        .update_index(|entries| {
            entries.push(StoreEntry {
                name: Some(name("empty:1")),
                descriptor: idx.clone(),
            });
            Ok(())
        })
        .unwrap();
    match store.resolve("empty:1") {
        Err(crate::Error::Store { reason, .. }) => {
            assert_eq!(
                reason,
                format!("index {} lists no image the store holds", idx.digest)
            );
        }
        other => panic!("{other:?}"),
    }
}
