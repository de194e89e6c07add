//! Media type strings of the OCI image spec and Docker's schema 2, and what they say about a blob.

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker uncompressed layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker zstd layer.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker foreign (non-distributable) gzip layer.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Annotation with the full image name (containerd, docker 25+).
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Annotation with the reference name (OCI): a tag (docker) or a full name (podman, skopeo).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Docker's annotation that marks BuildKit attestation manifests in an index.
pub const ANNOTATION_DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// The content of `oci-layout` every writer here produces (docker 25 writes exactly this).
pub const OCI_LAYOUT_CONTENT: &str = r#"{"imageLayoutVersion": "1.0.0"}"#;

/// True for index / manifest-list media types.
pub fn is_index(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
}

/// True for single-image manifest media types.
pub fn is_manifest(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

/// The compression of a stored layer, as its media type or its first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (one or more members, e.g. eStargz).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
    /// bzip2 (only as the outer compression of an archive or import input).
    Bzip2,
    /// xz (only as the outer compression of an archive or import input).
    Xz,
}

impl Compression {
    /// Detects compression by magic bytes, as moby's `DecompressStream` does. Needs up to the
    /// first 6 bytes; fewer bytes (a short or empty stream) mean uncompressed.
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
            // A zstd skippable frame: magic 0x184D2A50..=0x184D2A5F, little endian.
            || (head.len() >= 4 && head[1..4] == [0x2a, 0x4d, 0x18] && head[0] & 0xf0 == 0x50)
        {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    /// The OCI layer media type for a layer stored with this compression, if OCI has one.
    pub fn oci_layer_media_type(self) -> Option<&'static str> {
        match self {
            Compression::None => Some(OCI_LAYER),
            Compression::Gzip => Some(OCI_LAYER_GZIP),
            Compression::Zstd => Some(OCI_LAYER_ZSTD),
            Compression::Bzip2 | Compression::Xz => None,
        }
    }

    /// The compression a layer media type declares, or `None` when it is not a layer type.
    pub fn of_layer_media_type(mt: &str) -> Option<Self> {
        match mt {
            OCI_LAYER
            | DOCKER_LAYER
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar" => Some(Compression::None),
            OCI_LAYER_GZIP
            | DOCKER_LAYER_GZIP
            | DOCKER_LAYER_FOREIGN_GZIP
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
                Some(Compression::Gzip)
            }
            OCI_LAYER_ZSTD
            | DOCKER_LAYER_ZSTD
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_magic() {
        for (head, want) in [
            (&b"\x1f\x8b\x08\x00"[..], Compression::Gzip),
            (&b"\x28\xb5\x2f\xfd\x00"[..], Compression::Zstd),
            (&b"\x5a\x2a\x4d\x18\x00"[..], Compression::Zstd),
            (&b"BZh91AY"[..], Compression::Bzip2),
            (&b"\xfd7zXZ\x00\x00"[..], Compression::Xz),
            (&b"manifest.json\0"[..], Compression::None),
            (&b""[..], Compression::None),
        ] {
            assert_eq!(Compression::sniff(head), want, "{head:?}");
        }
    }

    #[test]
    fn layer_media_types() {
        assert_eq!(
            Compression::of_layer_media_type(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::of_layer_media_type(OCI_LAYER),
            Some(Compression::None)
        );
        assert_eq!(Compression::of_layer_media_type(OCI_CONFIG), None);
        assert_eq!(
            Compression::Zstd.oci_layer_media_type(),
            Some(OCI_LAYER_ZSTD)
        );
    }
}
